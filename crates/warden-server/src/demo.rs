//! The embedded demo upstream of `warden serve --demo`: a tiny AI API to
//! put the gateway in front of, served on its own loopback port.
//!
//! # What it serves
//! - An OpenAI-compatible API: `POST /v1/chat/completions` (a JSON
//!   completion, or with `"stream": true` server-sent events in OpenAI's
//!   chunk format, one word about every 100 ms, then `data: [DONE]`) and
//!   `GET /v1/models[/ID]` listing [`MODELS`].
//! - A small MCP server speaking Streamable HTTP on `POST /mcp`:
//!   `initialize`, `ping`, `tools/list` and `tools/call` with two tools,
//!   `echo` and `search_datasets`. Every answer is one `application/json`
//!   JSON-RPC response (notifications get `202 Accepted`); there is no
//!   session and no server-to-client stream (`GET /mcp` is 405, which MCP
//!   clients read as "no stream offered").
//!
//! # What it tells
//! Every response says what Warden sent it, so that a demo (or a test)
//! shows the gateway's work: the verified identity headers it received in
//! `X-Demo-Warden-Subject`, `X-Demo-Warden-Actor`, `X-Demo-Warden-Scopes`
//! and `X-Demo-Warden-Request-Id`, and `X-Demo-Authorization: present |
//! absent` (Warden removes the client's token unless a route forwards
//! it). A JSON chat completion also carries them in a `warden` field, and
//! the reply greets the subject.
//!
//! It keeps no state and needs no credentials: it trusts whoever can reach
//! its loopback port, like a real upstream behind a gateway would.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The models `GET /v1/models` lists. `forbidden-model` works here like
/// the others: refusing it is the gateway's job (a Cedar policy).
pub const MODELS: [&str; 3] = ["demo-small", "demo-large", "forbidden-model"];

/// The MCP tools `tools/list` lists.
pub const TOOLS: [&str; 2] = ["echo", "search_datasets"];

/// MCP protocol versions it speaks, newest first; `initialize` echoes the
/// client's when it is one of them, and offers the newest otherwise.
pub const MCP_PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Time between two streamed chunks.
pub const CHUNK_INTERVAL: Duration = Duration::from_millis(100);

/// The Unix time every response claims to have been created at (the
/// demo keeps no clock, so its answers are reproducible).
const CREATED: u64 = 1_767_225_600;

/// Warden's identity headers (their default names) and the response
/// headers that echo them.
const ECHOED: [(&str, &str); 4] = [
    ("x-warden-subject", "x-demo-warden-subject"),
    ("x-warden-actor", "x-demo-warden-actor"),
    ("x-warden-scopes", "x-demo-warden-scopes"),
    ("x-warden-request-id", "x-demo-warden-request-id"),
];

/// The demo's datasets, for `search_datasets`: (name, classification, description).
const DATASETS: [(&str, &str, &str); 4] = [
    (
        "transactions-2025",
        "confidential",
        "Card transactions, 2025, for fraud models",
    ),
    (
        "support-tickets",
        "pii",
        "Customer support tickets with names and emails",
    ),
    (
        "public-benchmarks",
        "public",
        "Open evaluation sets for language models",
    ),
    ("fraud-labels", "internal", "Analyst labels for flagged transactions"),
];

/// The demo upstream's routes.
pub fn router() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/mcp", post(mcp).get(mcp_no_stream).delete(mcp_no_stream))
        .route("/healthz", get(|| async { "ok" }))
}

/// Serves [`router`] on an ephemeral port of 127.0.0.1 until the returned
/// task is aborted.
pub async fn spawn_demo_upstream() -> Result<(SocketAddr, JoinHandle<()>), std::io::Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router()).await {
            tracing::error!(error = %e, "the demo upstream stopped");
        }
    });
    Ok((addr, task))
}

/// What Warden told the upstream about the caller.
struct Seen {
    /// (echo header name, value) for each identity header received.
    identity: Vec<(&'static str, HeaderValue)>,
    authorization: bool,
}

impl Seen {
    fn of(headers: &HeaderMap) -> Seen {
        Seen {
            identity: ECHOED
                .iter()
                .filter_map(|(from, to)| headers.get(*from).map(|v| (*to, v.clone())))
                .collect(),
            authorization: headers.contains_key(header::AUTHORIZATION),
        }
    }

    fn get(&self, warden_header: &str) -> Option<&str> {
        let echo = ECHOED.iter().find(|(from, _)| *from == warden_header)?.1;
        self.identity
            .iter()
            .find(|(name, _)| *name == echo)
            .and_then(|(_, v)| v.to_str().ok())
    }

    fn subject(&self) -> Option<&str> {
        self.get("x-warden-subject")
    }

    fn json(&self) -> Value {
        json!({
            "subject": self.get("x-warden-subject"),
            "actor": self.get("x-warden-actor"),
            "scopes": self.get("x-warden-scopes"),
            "request_id": self.get("x-warden-request-id"),
            "authorization_seen": self.authorization,
        })
    }

    /// Adds the echo headers to `response`.
    fn stamp(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        for (name, value) in &self.identity {
            headers.insert(HeaderName::from_static(name), value.clone());
        }
        let auth = if self.authorization { "present" } else { "absent" };
        headers.insert("x-demo-authorization", HeaderValue::from_static(auth));
        response
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body.to_string(),
    )
        .into_response()
}

/// An error in OpenAI's shape.
fn openai_error(status: StatusCode, kind: &str, param: Option<&str>, code: &str, message: String) -> Response {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}),
    )
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "warden-demo"})
}

async fn list_models(headers: HeaderMap) -> Response {
    let data: Vec<Value> = MODELS.iter().map(|m| model_object(m)).collect();
    Seen::of(&headers).stamp(json_response(StatusCode::OK, &json!({"object": "list", "data": data})))
}

async fn get_model(headers: HeaderMap, Path(id): Path<String>) -> Response {
    let response = if MODELS.contains(&id.as_str()) {
        json_response(StatusCode::OK, &model_object(&id))
    } else {
        unknown_model(&id)
    };
    Seen::of(&headers).stamp(response)
}

fn unknown_model(id: &str) -> Response {
    openai_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("model"),
        "model_not_found",
        format!("The model `{id}` does not exist"),
    )
}

/// The text of the last user message, at most `words` words.
fn last_user_text(request: &Value, words: usize) -> Option<String> {
    let messages = request.get("messages")?.as_array()?;
    let message = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    let text = match message.get("content")? {
        Value::String(s) => s.clone(),
        // Content parts: keep the text ones.
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => return None,
    };
    let mut kept: Vec<&str> = text.split_whitespace().take(words + 1).collect();
    if kept.is_empty() {
        return None;
    }
    if kept.len() > words {
        kept.truncate(words);
        kept.push("…");
    }
    Some(kept.join(" "))
}

/// The demo's reply, as the words it is streamed in (each but the first
/// with its leading space).
fn reply_words(model: &str, subject: Option<&str>, said: Option<&str>) -> Vec<String> {
    let mut text = match subject {
        Some(who) => format!("Hello {who}, this is {model} answering through Warden."),
        None => format!("Hello, this is {model} (no Warden identity reached me)."),
    };
    if let Some(said) = said {
        text.push_str(&format!(" You said: {said}"));
    }
    let mut words = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        words.push(if i == 0 { word.to_owned() } else { format!(" {word}") });
    }
    words
}

async fn chat_completions(headers: HeaderMap, body: Bytes) -> Response {
    let seen = Seen::of(&headers);
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return seen.stamp(openai_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                "invalid_json",
                "The body must be a JSON object".into(),
            ));
        }
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return seen.stamp(openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("model"),
            "missing_model",
            "`model` is required".into(),
        ));
    };
    if !MODELS.contains(&model) {
        return seen.stamp(unknown_model(model));
    }
    let said = last_user_text(&request, 12);
    let words = reply_words(model, seen.subject(), said.as_deref());
    let id = format!("chatcmpl-demo-{}", seen.get("x-warden-request-id").unwrap_or("direct"));
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if stream {
        return seen.stamp(stream_reply(id, model.to_owned(), words));
    }
    let content: String = words.concat();
    let prompt_tokens = said.as_deref().map_or(0, |s| s.split_whitespace().count());
    let body = json!({
        "id": id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": words.len(),
            "total_tokens": prompt_tokens + words.len(),
        },
        "warden": seen.json(),
    });
    seen.stamp(json_response(StatusCode::OK, &body))
}

/// One `data:` event of a chat completion stream.
fn chunk_event(id: &str, model: &str, delta: &Value, finish: Option<&str>) -> Bytes {
    let chunk = json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    Bytes::from(format!("data: {chunk}\n\n"))
}

/// Server-sent events: the role at once, then a word every
/// [`CHUNK_INTERVAL`], the finish reason, and `[DONE]`.
fn stream_reply(id: String, model: String, words: Vec<String>) -> Response {
    let mut events = vec![chunk_event(
        &id,
        &model,
        &json!({"role": "assistant", "content": ""}),
        None,
    )];
    events.extend(
        words
            .iter()
            .map(|w| chunk_event(&id, &model, &json!({"content": w}), None)),
    );
    events.push(chunk_event(&id, &model, &json!({}), Some("stop")));
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let stream = futures_util::stream::unfold((events.into_iter(), true), |(mut rest, first)| async move {
        let event = rest.next()?;
        if !first {
            tokio::time::sleep(CHUNK_INTERVAL).await;
        }
        Some((Ok::<_, Infallible>(event), (rest, false)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

// --- MCP ---

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

async fn mcp_no_stream(headers: HeaderMap) -> Response {
    let response = (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        "this MCP server answers POST requests with JSON and offers no event stream",
    )
        .into_response();
    Seen::of(&headers).stamp(response)
}

async fn mcp(headers: HeaderMap, body: Bytes) -> Response {
    let seen = Seen::of(&headers);
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            let error = rpc_error(&Value::Null, PARSE_ERROR, "Parse error: the body is not JSON");
            return seen.stamp(json_response(StatusCode::BAD_REQUEST, &error));
        }
    };
    // A batch (protocol versions before 2025-06-18) answers as an array.
    let answer = match &parsed {
        Value::Array(batch) if !batch.is_empty() => {
            let answers: Vec<Value> = batch.iter().filter_map(mcp_message).collect();
            (!answers.is_empty()).then(|| Value::Array(answers))
        }
        other => mcp_message(other),
    };
    let response = match answer {
        Some(answer) => json_response(StatusCode::OK, &answer),
        // Only notifications and responses: accepted, nothing to say.
        None => StatusCode::ACCEPTED.into_response(),
    };
    seen.stamp(response)
}

/// The answer to one JSON-RPC message; `None` for a notification or a
/// response (which need none).
fn mcp_message(message: &Value) -> Option<Value> {
    let Some(object) = message.as_object() else {
        return Some(rpc_error(&Value::Null, INVALID_REQUEST, "Invalid Request"));
    };
    let method = object.get("method").and_then(Value::as_str);
    let id = object.get("id");
    let (Some(method), Some(id)) = (method, id) else {
        // A notification (no id) or a response to us (no method).
        return if object.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
            && (method.is_some() || object.contains_key("result") || object.contains_key("error"))
        {
            None
        } else {
            Some(rpc_error(&Value::Null, INVALID_REQUEST, "Invalid Request"))
        };
    };
    let params = object.get("params").cloned().unwrap_or_else(|| json!({}));
    Some(match method {
        "initialize" => rpc_result(id, initialize(&params)),
        "ping" => rpc_result(id, json!({})),
        "tools/list" => rpc_result(id, json!({"tools": tool_list()})),
        "tools/call" => match call_tool(&params) {
            Ok(result) => rpc_result(id, result),
            Err(message) => rpc_error(id, INVALID_PARAMS, &message),
        },
        other => rpc_error(id, METHOD_NOT_FOUND, &format!("Method not found: {other}")),
    })
}

fn initialize(params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|v| MCP_PROTOCOL_VERSIONS.contains(v))
        .unwrap_or(MCP_PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "warden-demo-mcp", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "A demo MCP server behind Warden: `echo` returns its text, \
                         `search_datasets` searches a small made-up catalogue.",
    })
}

fn tool_list() -> Value {
    json!([
        {
            "name": "echo",
            "description": "Returns the text it is given.",
            "inputSchema": {
                "type": "object",
                "properties": {"text": {"type": "string", "description": "What to echo."}},
                "required": ["text"],
            },
        },
        {
            "name": "search_datasets",
            "description": "Searches the demo dataset catalogue by name or description.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Words to look for."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10},
                },
                "required": ["query"],
            },
        },
    ])
}

fn text_result(text: String) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

fn call_tool(params: &Value) -> Result<Value, String> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or("`params.name` is required")?;
    let args = params.get("arguments").cloned().unwrap_or_else(|| json!({}));
    match name {
        "echo" => {
            let text = args
                .get("text")
                .and_then(Value::as_str)
                .ok_or("echo: `text` (a string) is required")?;
            Ok(text_result(text.to_owned()))
        }
        "search_datasets" => {
            let query = args
                .get("query")
                .and_then(Value::as_str)
                .ok_or("search_datasets: `query` (a string) is required")?
                .to_lowercase();
            let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(5).clamp(1, 10);
            let hits: Vec<Value> = DATASETS
                .iter()
                .filter(|(name, _, about)| {
                    query
                        .split_whitespace()
                        .any(|w| name.contains(w) || about.to_lowercase().contains(w))
                })
                .take(usize::try_from(limit).unwrap_or(5))
                .map(|(name, class, about)| json!({"name": name, "classification": class, "description": about}))
                .collect();
            let text = serde_json::to_string(&hits).map_err(|e| e.to_string())?;
            Ok(json!({
                "content": [{"type": "text", "text": text}],
                "structuredContent": {"datasets": hits},
                "isError": false,
            }))
        }
        other => Err(format!("Unknown tool: {other}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use std::time::Instant;

    use futures_util::StreamExt;

    use super::*;

    async fn start() -> (String, JoinHandle<()>) {
        let (addr, task) = spawn_demo_upstream().await.unwrap();
        (format!("http://{addr}"), task)
    }

    #[tokio::test]
    async fn chat_completion_json_and_identity_echo() {
        let (base, task) = start().await;
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .header("x-warden-subject", "svc:demo-app")
            .header("x-warden-request-id", "abc")
            .body(r#"{"model":"demo-small","messages":[{"role":"user","content":"hi there"}]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-demo-warden-subject"], "svc:demo-app");
        assert_eq!(r.headers()["x-demo-authorization"], "absent");
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["id"], "chatcmpl-demo-abc");
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(text.starts_with("Hello svc:demo-app, this is demo-small") && text.ends_with("hi there"));
        assert_eq!(v["warden"]["subject"], "svc:demo-app");
        assert_eq!(v["warden"]["authorization_seen"], false);

        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .body(r#"{"model":"gpt-9","messages":[]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");

        let r = http.get(format!("{base}/v1/models")).send().await.unwrap();
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, MODELS);
        task.abort();
    }

    #[tokio::test]
    async fn chat_completion_streams_chunks_apart() {
        let (base, task) = start().await;
        let start = Instant::now();
        let r = reqwest::Client::new()
            .post(format!("{base}/v1/chat/completions"))
            .body(r#"{"model":"demo-large","stream":true,"messages":[{"role":"user","content":"x"}]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/event-stream");
        let mut stream = r.bytes_stream();
        let mut arrivals = Vec::new();
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            arrivals.push(start.elapsed());
            text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        let mut content = String::new();
        for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if line == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["object"], "chat.completion.chunk");
            if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
                content.push_str(c);
            }
        }
        assert_eq!(
            content,
            "Hello, this is demo-large (no Warden identity reached me). You said: x"
        );
        // The first event comes at once, the last well after it.
        assert!(arrivals.len() >= 5, "{arrivals:?}");
        assert!(arrivals[arrivals.len() - 1] - arrivals[0] >= CHUNK_INTERVAL * 5);
        task.abort();
    }

    async fn rpc(http: &reqwest::Client, base: &str, body: Value) -> (StatusCode, Option<Value>) {
        let r = http
            .post(format!("{base}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).ok())
    }

    #[tokio::test]
    async fn mcp_initialize_list_and_call() {
        let (base, task) = start().await;
        let http = reqwest::Client::new();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}});
        let (status, v) = rpc(&http, &base, init).await;
        assert_eq!(status, 200);
        assert_eq!(v.unwrap()["result"]["protocolVersion"], "2025-06-18");
        let future = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2099-01-01"}});
        let (_, v) = rpc(&http, &base, future).await;
        assert_eq!(v.unwrap()["result"]["protocolVersion"], MCP_PROTOCOL_VERSIONS[0]);

        let (status, v) = rpc(
            &http,
            &base,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        assert_eq!((status, v), (StatusCode::ACCEPTED, None));

        let (_, v) = rpc(
            &http,
            &base,
            json!({"jsonrpc": "2.0", "id": "l", "method": "tools/list"}),
        )
        .await;
        let v = v.unwrap();
        assert_eq!(v["id"], "l");
        let names: Vec<&str> = v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, TOOLS);

        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "ping"}}});
        let (_, v) = rpc(&http, &base, call).await;
        assert_eq!(v.unwrap()["result"]["content"][0]["text"], "ping");
        let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "search_datasets", "arguments": {"query": "fraud"}}});
        let (_, v) = rpc(&http, &base, call).await;
        let v = v.unwrap();
        assert_eq!(
            v["result"]["structuredContent"]["datasets"].as_array().unwrap().len(),
            2
        );
        let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "rm"}});
        let (_, v) = rpc(&http, &base, call).await;
        assert_eq!(v.unwrap()["error"]["code"], INVALID_PARAMS);
        let (_, v) = rpc(
            &http,
            &base,
            json!({"jsonrpc": "2.0", "id": 5, "method": "resources/list"}),
        )
        .await;
        assert_eq!(v.unwrap()["error"]["code"], METHOD_NOT_FOUND);

        let r = http.get(format!("{base}/mcp")).send().await.unwrap();
        assert_eq!(r.status(), 405);
        task.abort();
    }
}
