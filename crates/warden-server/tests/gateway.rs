//! The gateway over real HTTP: Warden on a random loopback port in front
//! of a stub upstream (an SSE endpoint sending a chunk every 200 ms, and a
//! JSON echo of every request's method, path, headers and body), on
//! SQLite. Covers: allowed, denied (audited, reason not in the body), no
//! token, expired, revoked, wrong audience, insufficient scope, rate
//! limited, upstream down, streaming, header hygiene, bodies larger than
//! the prefix, and MCP and OpenAI error shapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Server, claims};
use warden_server::gateway::forward::ForwardTimeouts;
use warden_server::gateway::{AccessRequest, Authorizer, AuthzDecision, Gateway, GatewaySettings, ScopeOnlyAuthorizer};
use warden_server::options::{IdSource, RateLimit, ResourceSpec, RouteConfig, RouteKind};
use warden_store::sqlite::SqliteStore;

/// Body prefix read for resource ids in these tests (small, so that "a
/// body larger than the prefix" stays small).
const PREFIX: usize = 16 * 1024;
/// Longest upstream silence (the SSE endpoint pauses 200 ms, `/slow` 3 s).
const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// Chunks sent by the upstream's SSE endpoint, 200 ms apart.
const SSE_CHUNKS: u32 = 5;

/// The stub upstream.
struct Upstream {
    base: String,
    /// When the SSE endpoint handed over its last chunk.
    last_sent: Arc<Mutex<Option<Instant>>>,
}

async fn upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let last_sent = Arc::new(Mutex::new(None));
    let app = Router::new()
        .route("/sse", get(sse))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .fallback(echo)
        .with_state(Arc::clone(&last_sent));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Upstream { base, last_sent }
}

async fn sse(State(last_sent): State<Arc<Mutex<Option<Instant>>>>) -> Response {
    let chunks = futures_util::stream::unfold(0u32, move |i| {
        let last_sent = Arc::clone(&last_sent);
        async move {
            if i == SSE_CHUNKS {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if i == SSE_CHUNKS - 1 {
                *last_sent.lock().unwrap() = Some(Instant::now());
            }
            Some((Ok::<_, Infallible>(Bytes::from(format!("data: {i}\n\n"))), i + 1))
        }
    });
    ([("content-type", "text/event-stream")], Body::from_stream(chunks)).into_response()
}

/// Echoes the request as JSON; a body that fails to arrive whole is a 400.
async fn echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "incomplete body").into_response();
    };
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    axum::Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&bytes),
    }))
    .into_response()
}

/// Denies the resource ids named `forbidden…` (policy `deny-forbidden`),
/// and otherwise decides on scopes alone.
#[derive(Debug)]
struct TestAuthorizer;

impl Authorizer for TestAuthorizer {
    fn authorize(&self, request: &AccessRequest<'_>) -> AuthzDecision {
        if request.resource.id.starts_with("forbidden") {
            return AuthzDecision {
                allowed: false,
                policy_ids: vec!["deny-forbidden".into()],
                approval: None,
            };
        }
        ScopeOnlyAuthorizer.authorize(request)
    }
}

fn route(name: &str, prefix: &str, upstream: &str, type_name: &str, id: IdSource) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        methods: Vec::new(),
        path_prefix: prefix.into(),
        upstream: upstream.into(),
        audience: None,
        action: "invoke".into(),
        resource: ResourceSpec {
            type_name: type_name.into(),
            id,
        },
        scopes: vec!["inference.invoke".into()],
        rate_limit: None,
        forward_authorization: false,
        approval_wait: 0,
        kind: RouteKind::Http,
    }
}

fn routes(up: &Upstream, down_port: u16) -> Vec<RouteConfig> {
    let b = &up.base;
    vec![
        route("echo", "/echo", b, "Service", IdSource::PathSegment(0)),
        route(
            "sse",
            "/stream",
            &format!("{b}/sse"),
            "Service",
            IdSource::Literal("sse".into()),
        ),
        RouteConfig {
            kind: RouteKind::Openai,
            methods: vec!["POST".into()],
            ..route(
                "openai",
                "/v1",
                &format!("{b}/openai"),
                "Model",
                IdSource::JsonField("model".into()),
            )
        },
        RouteConfig {
            kind: RouteKind::Mcp,
            action: "call_tool".into(),
            ..route("mcp", "/mcp", &format!("{b}/mcp"), "Tool", IdSource::McpToolName)
        },
        RouteConfig {
            rate_limit: Some(RateLimit {
                per_second: 0.01,
                burst: 2,
            }),
            ..route("limited", "/limited", b, "Service", IdSource::Literal("limited".into()))
        },
        RouteConfig {
            audience: Some("https://ai.example".into()),
            ..route("aud", "/aud", b, "Service", IdSource::Query("model".into()))
        },
        RouteConfig {
            forward_authorization: true,
            audience: Some("https://fwd.example".into()),
            ..route("fwd", "/fwd", b, "Service", IdSource::Literal("fwd".into()))
        },
        route(
            "slow",
            "/slow",
            &format!("{b}/slow"),
            "Service",
            IdSource::Literal("slow".into()),
        ),
        route(
            "down",
            "/down",
            &format!("http://127.0.0.1:{down_port}"),
            "Service",
            IdSource::Literal("down".into()),
        ),
    ]
}

async fn setup() -> (Server<SqliteStore>, Upstream) {
    let up = upstream().await;
    let configured = routes(&up, warden_test_support::net::free_port());
    let srv = support::start_sqlite_with(
        |o| o.routes = configured,
        |app, opts| {
            let settings = GatewaySettings {
                max_body_prefix: PREFIX,
                timeouts: ForwardTimeouts {
                    connect: Duration::from_secs(2),
                    read: READ_TIMEOUT,
                },
                ..GatewaySettings::default()
            };
            let gateway = Gateway::new(opts.routes.clone(), &opts.issuer, settings)
                .unwrap()
                .with_authorizer(Arc::new(TestAuthorizer));
            app.with_gateway(gateway)
        },
    )
    .await;
    (srv, up)
}

fn token(srv: &Server<SqliteStore>, scope: &str) -> String {
    srv.user_token("user:alice", &[&srv.base], scope, &["ml-engineer"], 300, None)
}

/// A response: status, headers, and the body as JSON (or a JSON string).
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Reply { status, headers, body }
}

async fn access_decisions(srv: &Server<SqliteStore>) -> Vec<Value> {
    srv.integrate_audit().await;
    let r = srv
        .get(
            "/api/v1/audit/events?type=access_decision&limit=1000",
            Some(&srv.auditor_token()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].clone())
        .collect()
}

/// The status of a GET of `path` sent byte for byte.
async fn raw_status(srv: &Server<SqliteStore>, path: &str, token: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = srv.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

fn challenge(r: &Reply) -> &str {
    r.headers["www-authenticate"].to_str().unwrap()
}

/// An allowed request reaches the upstream with the rest of the path and
/// the query, and is audited with the deciding policy and the request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_and_audited() {
    let (srv, _up) = setup().await;
    let t = token(&srv, "inference.invoke");
    let r = send(srv.http.get(format!("{}/echo/svc-a/x?y=1", srv.base)).bearer_auth(&t)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["path"], "/svc-a/x");
    assert_eq!(r.body["query"], "y=1");
    assert_eq!(r.headers["x-accel-buffering"], "no");
    let request_id = r.headers["x-warden-request-id"].to_str().unwrap().to_owned();
    assert_eq!(r.body["headers"]["x-warden-request-id"][0], request_id.as_str());

    let events = access_decisions(&srv).await;
    let e = events.iter().find(|e| e["request_id"] == request_id.as_str()).unwrap();
    assert_eq!(e["decision"], "allow");
    assert_eq!(e["principal"], "user:alice");
    assert_eq!(e["client_id"], "warden-cli");
    assert_eq!(e["resource"], "Service::\"svc-a\"");
    assert_eq!(e["action"], "invoke");
    assert_eq!(e["route"], "echo");
    assert_eq!(e["policy_ids"], json!([ScopeOnlyAuthorizer::POLICY_ID]));
    assert_eq!(e["source_ip"], "127.0.0.1");
    assert_eq!(e["jti"], claims(&t)["jti"]);
    assert!(e["upstream_status"].is_null());

    let none = send(srv.http.get(format!("{}/nowhere", srv.base)).bearer_auth(&t)).await;
    assert_eq!((none.status, none.body["error"].as_str()), (404, Some("not_found")));
    // Paths an upstream could resolve elsewhere (sent raw: clients normalize them).
    for path in ["/echo/../oauth/token", "/echo/%2e%2E/x", "/echo/a%2Fb"] {
        assert_eq!(raw_status(&srv, path, &t).await, 400, "{path}");
    }
    // A stated purpose is read as on the registry API: a malformed one,
    // or one contradicting the purpose the token was issued for, is a 400
    // (it used to be ignored here), and nothing reaches the upstream.
    let purposed = srv.user_token(
        "user:alice",
        &[&srv.base],
        "inference.invoke",
        &[],
        300,
        Some(("purpose", json!("research"))),
    );
    for (token, purpose) in [(&t, "not a purpose"), (&purposed, "marketing")] {
        let r = send(
            srv.http
                .get(format!("{}/echo/svc-a/x", srv.base))
                .bearer_auth(token)
                .header("x-warden-purpose", purpose),
        )
        .await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (400, Some("invalid_request")),
            "{purpose}"
        );
    }
    let same = send(
        srv.http
            .get(format!("{}/echo/svc-a/x", srv.base))
            .bearer_auth(&purposed)
            .header("x-warden-purpose", "research"),
    )
    .await;
    assert_eq!(same.status, 200, "a header may repeat the token's purpose");
    // Warden's own endpoints still answer.
    assert_eq!(srv.get("/healthz", None).await.status, 200);
    srv.stop().await;
}

/// Every authentication failure is a 401 with a Bearer challenge; a
/// missing scope is a 403 naming it; nothing reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_scope_failures() {
    let (srv, _up) = setup().await;
    let url = format!("{}/echo/svc", srv.base);

    let none = send(srv.http.get(&url)).await;
    assert_eq!((none.status, none.body["error"].as_str()), (401, Some("invalid_token")));
    assert!(challenge(&none).starts_with("Bearer"));
    // RFC 9728: the challenge says where the route's metadata is, and it is there.
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/echo", srv.base);
    assert!(
        challenge(&none).contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{}",
        challenge(&none)
    );
    let metadata = send(srv.http.get(&metadata_url)).await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.body["resource"], srv.base.as_str());
    assert_eq!(metadata.body["authorization_servers"], json!([srv.base]));
    assert_eq!(metadata.body["scopes_supported"], json!(["inference.invoke"]));
    let nowhere = send(
        srv.http
            .get(format!("{}/.well-known/oauth-protected-resource/nope", srv.base)),
    )
    .await;
    assert_eq!(nowhere.status, 404);

    let now = warden_server::state::now();
    let expired = srv.user_token(
        "user:alice",
        &[&srv.base],
        "inference.invoke",
        &[],
        300,
        Some(("exp", json!(now - 120))),
    );
    let r = send(srv.http.get(&url).bearer_auth(&expired)).await;
    assert_eq!(r.status, 401);
    assert!(challenge(&r).contains("error=\"invalid_token\""), "{}", challenge(&r));

    let revoked = token(&srv, "inference.invoke");
    assert_eq!(send(srv.http.get(&url).bearer_auth(&revoked)).await.status, 200);
    let c = claims(&revoked);
    srv.state
        .revocations
        .insert(c["jti"].as_str().unwrap().to_owned(), c["exp"].as_u64().unwrap());
    let r = send(srv.http.get(&url).bearer_auth(&revoked)).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error_description"].as_str().unwrap().contains("revoked"));

    let other_aud = srv.user_token(
        "user:alice",
        &["https://other.example"],
        "inference.invoke",
        &[],
        300,
        None,
    );
    assert_eq!(send(srv.http.get(&url).bearer_auth(&other_aud)).await.status, 401);
    // The route with its own audience takes only tokens for it.
    let aud_url = format!("{}/aud?model=m1", srv.base);
    let issuer_aud = token(&srv, "inference.invoke");
    assert_eq!(send(srv.http.get(&aud_url).bearer_auth(&issuer_aud)).await.status, 401);
    let ai = srv.user_token(
        "user:alice",
        &["https://ai.example"],
        "inference.invoke",
        &[],
        300,
        None,
    );
    let r = send(srv.http.get(&aud_url).bearer_auth(&ai)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let missing_query = send(srv.http.get(format!("{}/aud", srv.base)).bearer_auth(&ai)).await;
    assert_eq!(missing_query.status, 400);

    let unscoped = token(&srv, "dataset.read");
    let r = send(srv.http.get(&url).bearer_auth(&unscoped)).await;
    assert_eq!((r.status, r.body["error"].as_str()), (403, Some("insufficient_scope")));
    assert!(challenge(&r).contains("error=\"insufficient_scope\""));
    assert!(challenge(&r).contains("inference.invoke"));
    let denied = access_decisions(&srv).await;
    assert!(
        denied
            .iter()
            .any(|e| e["decision"] == "deny" && e["policy_ids"] == json!([ScopeOnlyAuthorizer::POLICY_ID]))
    );
    srv.stop().await;
}

/// A denial by the authorizer is a 403 whose body does not say why; the
/// audit event names the deciding policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_are_audited_not_explained() {
    let (srv, _up) = setup().await;
    let t = token(&srv, "inference.invoke");
    let r = send(srv.http.get(format!("{}/echo/forbidden-svc", srv.base)).bearer_auth(&t)).await;
    assert_eq!((r.status, r.body["error"].as_str()), (403, Some("forbidden")));
    assert!(!r.body.to_string().contains("deny-forbidden"));
    let request_id = r.headers["x-warden-request-id"].to_str().unwrap();
    let events = access_decisions(&srv).await;
    let e = events.iter().find(|e| e["request_id"] == request_id).unwrap();
    assert_eq!(e["decision"], "deny");
    assert_eq!(e["policy_ids"], json!(["deny-forbidden"]));
    assert_eq!(e["resource"], "Service::\"forbidden-svc\"");
    // The audit API finds it by decision, as the CLI and the dashboard do.
    let ok = send(srv.http.get(format!("{}/echo/svc-a", srv.base)).bearer_auth(&t)).await;
    assert_eq!(ok.status, 200);
    let auditor = srv.auditor_token();
    srv.integrate_audit().await;
    let by = |decision: &str| {
        let path = format!("/api/v1/audit/events?type=access_decision&decision={decision}");
        let (srv, auditor) = (&srv, &auditor);
        async move { srv.get(&path, Some(auditor)).await }
    };
    let denied = by("deny").await;
    let decisions: Vec<&Value> = denied.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event"]["decision"])
        .collect();
    assert_eq!(decisions, [&json!("deny")], "{}", denied.body);
    let allowed = by("allow").await.body;
    assert!(
        allowed["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"]["decision"] == "allow")
    );
    assert_eq!(by("maybe").await.status, 400);
    srv.stop().await;
}

/// The third request within the burst of two is a 429 with `Retry-After`;
/// limits are per subject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited() {
    let (srv, _up) = setup().await;
    let t = token(&srv, "inference.invoke");
    let url = format!("{}/limited", srv.base);
    for _ in 0..2 {
        assert_eq!(send(srv.http.get(&url).bearer_auth(&t)).await.status, 200);
    }
    let r = send(srv.http.get(&url).bearer_auth(&t)).await;
    assert_eq!((r.status, r.body["error"].as_str()), (429, Some("rate_limited")));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    let bob = srv.user_token("user:bob", &[&srv.base], "inference.invoke", &[], 300, None);
    assert_eq!(send(srv.http.get(&url).bearer_auth(&bob)).await.status, 200);
    srv.stop().await;
}

/// An upstream that refuses connections gives a 502, one silent for longer
/// than the read timeout a 504, both with a JSON body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_or_silent() {
    let (srv, _up) = setup().await;
    let t = token(&srv, "inference.invoke");
    let r = send(srv.http.get(format!("{}/down/x", srv.base)).bearer_auth(&t)).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.body["error"], "bad_gateway");
    assert!(r.body["error_description"].is_string());
    let r = send(srv.http.get(format!("{}/slow", srv.base)).bearer_auth(&t)).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.body["error"], "gateway_timeout");
    // Both failures are audited.
    srv.integrate_audit().await;
    let failures = srv
        .get("/api/v1/audit/events?type=upstream_failure", Some(&srv.auditor_token()))
        .await;
    let statuses: Vec<&Value> = failures.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event"]["status"])
        .collect();
    assert_eq!(statuses, [&json!(502), &json!(504)]);
    srv.stop().await;
}

/// Server-sent events reach the client as the upstream produces them: the
/// first chunk arrives before the upstream has even sent its last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_is_not_buffered() {
    let (srv, up) = setup().await;
    let t = token(&srv, "inference.invoke");
    let r = srv
        .http
        .get(format!("{}/stream", srv.base))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    let mut arrivals: Vec<(Instant, Bytes)> = Vec::new();
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        arrivals.push((Instant::now(), chunk.unwrap()));
    }
    let text: Vec<u8> = arrivals.iter().flat_map(|(_, b)| b.to_vec()).collect();
    let expected: String = (0..SSE_CHUNKS).map(|i| format!("data: {i}\n\n")).collect();
    assert_eq!(String::from_utf8(text).unwrap(), expected);
    let last_sent = up.last_sent.lock().unwrap().expect("the upstream sent its last chunk");
    let (first_arrival, first) = &arrivals[0];
    assert!(first.starts_with(b"data: 0"));
    assert!(
        *first_arrival < last_sent,
        "the first chunk arrived {:?} after the upstream sent its last",
        first_arrival.duration_since(last_sent)
    );
    assert!(arrivals.len() > 1, "chunks arrived separately");
    srv.stop().await;
}

/// The upstream sees the verified identity, not the client's claims about
/// it, and no `Authorization` unless the route forwards it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers() {
    let (srv, _up) = setup().await;
    let delegated = srv.user_token(
        "user:alice",
        &[&srv.base],
        "inference.invoke dataset.read",
        &[],
        300,
        Some(("act", json!({"sub": "agent:bot", "act": {"sub": "agent:inner"}}))),
    );
    let r = send(
        srv.http
            .get(format!("{}/echo/svc", srv.base))
            .bearer_auth(&delegated)
            .header("x-warden-subject", "user:root")
            .header("X-Warden-Actor", "agent:evil")
            .header("x-warden-roles", "admin")
            .header("connection", "x-drop-me")
            .header("x-drop-me", "1")
            .header("x-keep-me", "1"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let h = &r.body["headers"];
    assert!(h.get("authorization").is_none());
    assert_eq!(h["x-warden-subject"], json!(["user:alice"]));
    assert_eq!(h["x-warden-actor"], json!(["agent:bot,agent:inner"]));
    assert_eq!(h["x-warden-scopes"], json!(["inference.invoke dataset.read"]));
    assert!(h.get("x-warden-roles").is_none());
    assert!(h.get("x-drop-me").is_none());
    assert_eq!(h["x-keep-me"], json!(["1"]));
    assert_eq!(h["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(h["x-forwarded-proto"], json!(["http"]));
    assert_eq!(h["x-forwarded-host"][0], srv.base.trim_start_matches("http://"));
    let events = access_decisions(&srv).await;
    assert!(
        events
            .iter()
            .any(|e| e["actor_chain"] == json!(["agent:bot", "agent:inner"]))
    );

    let t = srv.user_token(
        "user:alice",
        &["https://fwd.example"],
        "inference.invoke",
        &["ml-engineer"],
        300,
        None,
    );
    let r = send(srv.http.get(format!("{}/fwd", srv.base)).bearer_auth(&t)).await;
    assert_eq!(r.body["headers"]["authorization"], json!([format!("Bearer {t}")]));
    srv.stop().await;
}

/// OpenAI routes: `model` is read from a body larger than the prefix, the
/// whole body reaches the upstream unchanged; denials and bad bodies are
/// answered in OpenAI's error shape; a second `model` past the prefix
/// aborts the upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_bodies() {
    let (srv, _up) = setup().await;
    let t = token(&srv, "inference.invoke");
    let url = format!("{}/v1/chat/completions", srv.base);
    let filler = "x".repeat(3 * PREFIX);
    // Written out: `json!` would sort the keys, putting `messages` first.
    let body = format!(
        r#"{{"model": "small-model", "messages": [{{"role": "user", "content": "{filler}"}}], "stream": true}}"#
    );
    assert!(body.len() > PREFIX);
    // Two Content-Type headers, even alike, may be read differently here
    // and upstream: refused.
    let twice = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .header("content-type", "text/plain")
            .body(body.clone()),
    )
    .await;
    assert_eq!(twice.status, 400, "{}", twice.body);
    // Refused before its body was read: the connection is not reused (the
    // client hears so, instead of meeting a reset on its next request).
    assert_eq!(twice.headers["connection"], "close");
    let r = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .body(body.clone()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["path"], "/openai/chat/completions");
    assert_eq!(
        r.body["body"].as_str().unwrap(),
        body,
        "the body was forwarded unchanged"
    );
    assert_eq!(r.body["headers"]["content-length"], json!([body.len().to_string()]));
    let events = access_decisions(&srv).await;
    assert!(events.iter().any(|e| e["resource"] == "Model::\"small-model\""));

    // The same, streamed in chunks with no length.
    let chunks: Vec<Result<Bytes, Infallible>> = body
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let r = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["body"].as_str().unwrap(), body);

    let forbidden = json!({"model": "forbidden-model", "messages": []}).to_string();
    let r = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .body(forbidden),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"]["type"], "permission_error");
    assert_eq!(r.body["error"]["code"], "forbidden");

    let late = json!({"messages": [{"content": filler}], "model": "small-model"}).to_string();
    assert!(late.find("model").unwrap() > PREFIX);
    let r = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .body(late),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");

    let smuggled = format!(r#"{{"model":"small-model","pad":"{filler}","model":"forbidden-model"}}"#);
    let r = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .body(smuggled),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("more than once"));

    let not_json = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .body("model=x"),
    )
    .await;
    assert_eq!(not_json.status, 400);
    let no_token = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await;
    assert_eq!(
        (no_token.status, &no_token.body["error"]["type"]),
        (401, &json!("authentication_error"))
    );
    srv.stop().await;
}

/// MCP routes: the resource is the tool of `tools/call` (or the method),
/// and denials are JSON-RPC errors carrying the request's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tool_calls() {
    let (srv, _up) = setup().await;
    let t = token(&srv, "inference.invoke");
    let url = format!("{}/mcp", srv.base);
    let call = |tool: &str, id: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
            .to_string()
    };
    let r = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .body(call("search", json!(1))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["path"], "/mcp");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    assert_eq!(
        send(
            srv.http
                .post(&url)
                .header("content-type", "application/json")
                .bearer_auth(&t)
                .body(list)
        )
        .await
        .status,
        200
    );

    let r = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .body(call("forbidden_tool", json!("call-7"))),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        json!({"jsonrpc": "2.0", "id": "call-7", "error": {"code": -32001, "message": "forbidden",
            "data": {"error_description": "the request is not allowed"}}})
    );
    let events = access_decisions(&srv).await;
    let resources: Vec<&str> = events.iter().filter_map(|e| e["resource"].as_str()).collect();
    for expected in ["Tool::\"search\"", "Tool::\"tools/list\"", "Tool::\"forbidden_tool\""] {
        assert!(resources.contains(&expected), "{resources:?}");
    }
    let e = events
        .iter()
        .find(|e| e["resource"] == "Tool::\"forbidden_tool\"")
        .unwrap();
    assert_eq!(
        (e["decision"].as_str(), e["action"].as_str()),
        (Some("deny"), Some("call_tool"))
    );

    let no_token = send(
        srv.http
            .post(&url)
            .header("content-type", "application/json")
            .body(call("search", json!(3))),
    )
    .await;
    assert_eq!(no_token.status, 401);
    assert_eq!(no_token.body["error"]["code"], -32001);
    srv.stop().await;
}

/// The Cedar engine decides gateway requests: the built-in policies, the
/// model catalog's stages, and the deciding policy ids in the audit event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cedar_policies_decide_routes() {
    let up = upstream().await;
    let b = up.base.clone();
    let srv = support::start_sqlite(move |o| {
        o.routes = vec![RouteConfig {
            kind: RouteKind::Openai,
            methods: vec!["POST".into()],
            action: "inference.invoke".into(),
            ..route(
                "chat",
                "/v1",
                &format!("{b}/openai"),
                "Model",
                IdSource::JsonField("model".into()),
            )
        }];
        o.model_stages = [("prod-model".to_owned(), "production".to_owned())]
            .into_iter()
            .collect();
    })
    .await;
    let call = |token: String, model: &str| {
        let req = srv
            .http
            .post(format!("{}/v1/chat/completions", srv.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(json!({"model": model, "messages": []}).to_string());
        send(req)
    };
    let ds = srv.user_token(
        "user:dana",
        &[&srv.base],
        "inference.invoke",
        &["data-scientist"],
        300,
        None,
    );
    let ml = srv.user_token(
        "user:eve",
        &[&srv.base],
        "inference.invoke",
        &["ml-engineer"],
        300,
        None,
    );
    assert_eq!(call(ds.clone(), "prod-model").await.status, 200);
    let denied = call(ds, "experimental").await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["error"]["type"], "permission_error", "{}", denied.body);
    assert!(
        !denied.body.to_string().contains("production"),
        "the reason stays in the audit log"
    );
    assert_eq!(call(ml, "experimental").await.status, 200);
    let decisions = access_decisions(&srv).await;
    let policy_ids: Vec<Value> = decisions.iter().map(|d| d["policy_ids"].clone()).collect();
    assert_eq!(
        policy_ids,
        [
            json!(["data-scientist.inference-production"]),
            json!([]),
            json!(["ml-engineer.inference"])
        ]
    );
    assert_eq!(decisions[1]["decision"], "deny");
    srv.stop().await;
}

/// A trusted external issuer's token (`[[federation]]`) reaches a route:
/// its subject and roles are mapped, and the policies decide as for
/// Warden's own tokens; an untrusted issuer's is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_issuer_tokens_on_routes() {
    use warden_jose::{Algorithm, Jwk, SigningKey};
    let up = upstream().await;
    let (idp, _) = SigningKey::generate(Algorithm::ES256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("idp.json");
    let doc = json!({"keys": [Jwk::from_verifying_key(idp.verifying_key()).unwrap().to_json()]});
    std::fs::write(&jwks, doc.to_string()).unwrap();
    let b = up.base.clone();
    let srv = support::start_sqlite(move |o| {
        o.routes = vec![
            RouteConfig {
                action: "inference.invoke".into(),
                audience: Some("warden".into()),
                ..route("ext", "/echo", &b, "Model", IdSource::Literal("m".into()))
            },
            RouteConfig {
                action: "inference.invoke".into(),
                ..route("own", "/own", &b, "Model", IdSource::Literal("m".into()))
            },
        ];
        o.federation.push(warden_server::options::FederatedIssuer {
            issuer: "https://idp.example".into(),
            jwks: warden_server::options::JwksLocation::File(jwks),
            algorithms: warden_jose::AlgorithmSet::asymmetric(),
            audience: "warden".into(),
            typ: vec!["JWT".into()],
            role_claim: "groups".into(),
            roles: [("ml-team".to_owned(), "ml-engineer".to_owned())].into_iter().collect(),
            scope_claim: "scope".into(),
            subject_kind: "user".into(),
        });
    })
    .await;
    let now = warden_server::state::now();
    let idp_token = |iss: &str, groups: &[&str]| {
        let claims = json!({"iss": iss, "sub": "alice", "aud": "warden", "exp": now + 120, "iat": now,
            "jti": format!("ext-{iss}-{}", groups.len()), "azp": "corp-portal", "groups": groups, "scope": "inference.invoke"});
        warden_jose::issue::encode(&idp, "JWT", &claims).unwrap()
    };
    let url = format!("{}/echo/x", srv.base);
    let ok_token = idp_token("https://idp.example", &["ml-team"]);
    let ok = send(srv.http.get(&url).bearer_auth(&ok_token)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let no_role = send(
        srv.http
            .get(&url)
            .bearer_auth(idp_token("https://idp.example", &["sales"])),
    )
    .await;
    assert_eq!(no_role.status, 403);
    let rogue = send(
        srv.http
            .get(&url)
            .bearer_auth(idp_token("https://rogue.example", &["ml-team"])),
    )
    .await;
    assert_eq!(rogue.status, 401);
    let decisions = access_decisions(&srv).await;
    assert_eq!(decisions[0]["principal"], "user:alice");
    assert_eq!(decisions[0]["client_id"], "corp-portal");
    assert_eq!(decisions[0]["decision"], "allow");
    assert_eq!(decisions[1]["decision"], "deny");
    // The same token again: from the issuer's verified-token cache. Once
    // its `jti` is revoked it is refused, cached or not.
    let again = send(srv.http.get(&url).bearer_auth(&ok_token)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    srv.state
        .revoke(vec![("ext-https://idp.example-1".to_owned(), now + 120)]);
    let revoked = send(srv.http.get(&url).bearer_auth(&ok_token)).await;
    assert_eq!(revoked.status, 401, "{}", revoked.body);
    srv.stop().await;
}

/// What a cold review found: bodies read for a resource id must be declared
/// JSON; ambiguous paths are refused; only MCP session plumbing skips the
/// policies; headers that rewrite the request or spoof identity (also with
/// underscores) never reach the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_confusion_is_refused() {
    let (srv, _up) = setup().await;
    let t = token(&srv, "inference.invoke");
    let openai = format!("{}/v1/chat/completions", srv.base);
    let form = send(
        srv.http
            .post(&openai)
            .header("content-type", "application/x-www-form-urlencoded")
            .bearer_auth(&t)
            .body(r#"{"model":"gpt","x":"&model=forbidden&"}"#),
    )
    .await;
    assert_eq!(form.status, 400, "{}", form.body);
    let gzip = send(
        srv.http
            .post(&openai)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .bearer_auth(&t)
            .body(r#"{"model":"gpt"}"#),
    )
    .await;
    assert_eq!(gzip.status, 400);
    for path in ["/echo//svc", "/echo/svc;x=1", "/ech%6f/svc", "/echo/%00"] {
        assert_eq!(raw_status(&srv, path, &t).await, 400, "{path}");
    }
    let read = json!({"jsonrpc": "2.0", "id": 9, "method": "resources/read", "params": {"uri": "file:///etc/passwd"}});
    let r = send(
        srv.http
            .post(format!("{}/mcp", srv.base))
            .header("content-type", "application/json")
            .bearer_auth(&t)
            .body(read.to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let decisions = access_decisions(&srv).await;
    let read_decision = decisions
        .iter()
        .find(|d| d["resource"] == "Tool::\"resources/read\"")
        .unwrap();
    assert_eq!(
        read_decision["policy_ids"],
        json!([ScopeOnlyAuthorizer::POLICY_ID]),
        "resources/read went to the authorizer, not past it as protocol plumbing"
    );
    let echoed = send(
        srv.http
            .get(format!("{}/echo/svc", srv.base))
            .bearer_auth(&t)
            .header("X_Warden_Actor", "agent:spoofed")
            .header("X-Original-URL", "/admin")
            .header("X-HTTP-Method-Override", "DELETE")
            .header("Forwarded", "for=203.0.113.9"),
    )
    .await;
    assert_eq!(echoed.status, 200);
    let h = &echoed.body["headers"];
    for name in [
        "x_warden_actor",
        "x-original-url",
        "x-http-method-override",
        "forwarded",
    ] {
        assert!(h.get(name).is_none(), "{name} reached the upstream: {h}");
    }
    assert_eq!(
        h["x-warden-actor"],
        json!([""]),
        "always sent, empty without delegation"
    );
    srv.stop().await;
}

/// A trusted issuer whose keys could not be read at first use is asked
/// again after 1 s, 2 s, 4 s … (up to a minute), not locked out for a
/// minute: once its JWKS appears, its tokens pass within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_whose_keys_were_unreachable_is_retried_with_backoff() {
    use warden_jose::{Algorithm, Jwk, SigningKey};
    let up = upstream().await;
    let (idp, _) = SigningKey::generate(Algorithm::ES256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("idp.json");
    let b = up.base.clone();
    let file = jwks.clone();
    let srv = support::start_sqlite(move |o| {
        o.routes = vec![RouteConfig {
            action: "inference.invoke".into(),
            audience: Some("warden".into()),
            ..route("ext", "/echo", &b, "Model", IdSource::Literal("m".into()))
        }];
        o.federation.push(warden_server::options::FederatedIssuer {
            issuer: "https://idp.example".into(),
            jwks: warden_server::options::JwksLocation::File(file),
            algorithms: warden_jose::AlgorithmSet::asymmetric(),
            audience: "warden".into(),
            typ: vec!["JWT".into()],
            role_claim: "groups".into(),
            roles: [("ml-team".to_owned(), "ml-engineer".to_owned())].into_iter().collect(),
            scope_claim: "scope".into(),
            subject_kind: "user".into(),
        });
    })
    .await;
    let now = warden_server::state::now();
    let claims = json!({"iss": "https://idp.example", "sub": "alice", "aud": "warden", "exp": now + 120,
        "iat": now, "jti": "ext-backoff", "groups": ["ml-team"], "scope": "inference.invoke"});
    let token = warden_jose::issue::encode(&idp, "JWT", &claims).unwrap();
    let url = format!("{}/echo/x", srv.base);
    let call = || send(srv.http.get(&url).bearer_auth(&token));
    assert_eq!(call().await.status, 401, "no keys yet");
    let doc = json!({"keys": [Jwk::from_verifying_key(idp.verifying_key()).unwrap().to_json()]});
    std::fs::write(&jwks, doc.to_string()).unwrap();
    let started = std::time::Instant::now();
    let mut status = 0;
    // The first retries come after 1 s and 2 s; a minute's lock-out would
    // never pass within this bound.
    while started.elapsed() < std::time::Duration::from_secs(20) {
        status = call().await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "the issuer's keys were never fetched again");
    eprintln!(
        "the issuer's tokens passed {:?} after its keys appeared",
        started.elapsed()
    );
    srv.stop().await;
}
