//! The gateway end to end with the real binary: `warden serve` with
//! `[[route]]`s from a config file in front of a stub upstream on loopback,
//! and every outcome a client can meet: allowed, denied by policy (reason in
//! the audit log, not the body), no token, expired, revoked, wrong audience,
//! insufficient scope, rate-limited, upstream down, and streaming that is
//! not buffered.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{Value, json};
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;
use warden_test_support::http::client_credentials as token;
use warden_test_support::net::free_port;

/// The stub upstream: `/echo/...` answers the headers it received; `/sse`
/// sends five events 150 ms apart and records when it sent the last.
async fn upstream(last_sent: Arc<Mutex<Option<Instant>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route(
            "/echo/{*rest}",
            axum::routing::any(|req: Request| async move {
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                    .collect();
                axum::Json(json!({"headers": headers}))
            }),
        )
        .route(
            "/sse",
            axum::routing::get(move || {
                let last_sent = Arc::clone(&last_sent);
                async move {
                    let stream = futures_util::stream::iter(0..5).then(move |i| {
                        let last_sent = Arc::clone(&last_sent);
                        async move {
                            if i > 0 {
                                tokio::time::sleep(Duration::from_millis(150)).await;
                            }
                            if i == 4 {
                                *last_sent.lock().unwrap() = Some(Instant::now());
                            }
                            Ok::<_, std::convert::Infallible>(format!("data: chunk {i}\n\n"))
                        }
                    });
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(stream))
                        .unwrap()
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// The config: five routes to the stub upstream at `up` (one to a closed
/// port, `down`), and no leeway on token times.
fn config(up: &str, down: u16) -> String {
    format!(
        r#"[tokens]
leeway = 0
[models]
"prod-model" = "production"

[[route]]
name = "echo"
path_prefix = "/echo"
upstream = "{up}/echo"
action = "inference.invoke"
resource = {{ type = "Model", id = {{ path_segment = 0 }} }}
scopes = ["inference.invoke"]

[[route]]
name = "limited"
path_prefix = "/limited"
upstream = "{up}/echo"
action = "inference.invoke"
resource = {{ type = "Model", id = {{ literal = "prod-model" }} }}
scopes = ["inference.invoke"]
rate_limit = {{ per_second = 0.01, burst = 1 }}

[[route]]
name = "partner"
path_prefix = "/partner"
upstream = "{up}/echo"
audience = "https://partner.example"
action = "inference.invoke"
resource = {{ type = "Model", id = {{ literal = "prod-model" }} }}
scopes = ["inference.invoke"]

[[route]]
name = "down"
path_prefix = "/down"
upstream = "http://127.0.0.1:{down}"
action = "inference.invoke"
resource = {{ type = "Model", id = {{ literal = "prod-model" }} }}
scopes = ["inference.invoke"]

[[route]]
name = "stream"
path_prefix = "/stream"
upstream = "{up}/sse"
action = "inference.invoke"
resource = {{ type = "Model", id = {{ literal = "prod-model" }} }}
scopes = ["inference.invoke"]
"#
    )
}

/// Registers a service client; returns its secret.
fn client(w: &Warden, name: &str, scope: &str, role: &str) -> String {
    w.create_client(&["--name", name, "--kind", "service", "--scope", scope, "--role", role])
}

/// The `exp` claim of a JWT (not verified).
fn exp(token: &str) -> u64 {
    let claims = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&warden_jose::base64url::decode(claims).unwrap()).unwrap();
    claims["exp"].as_u64().unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn get(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_through_the_real_binary() {
    let last_sent = Arc::new(Mutex::new(None));
    let up = upstream(Arc::clone(&last_sent)).await;
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite).env("WARDEN_LOG", "error");
    w.write_config(&config(&up, free_port()));
    let app = client(&w, "app", "inference.invoke", "ml-engineer");
    let analyst = client(&w, "analyst", "inference.invoke", "data-scientist");
    let narrow = client(&w, "narrow", "dataset.read", "ml-engineer");
    let mut server = w.start(&["serve"]);
    let base = server.base();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // Allowed, with the verified identity forwarded and Authorization removed.
    let t = token(&http, &base, "app", &app).await;
    let (status, _, body) = get(&http, &format!("{base}/echo/any-model"), Some(&t)).await;
    assert_eq!(status, 200);
    assert_eq!(body["headers"]["x-warden-subject"], "svc:app");
    assert!(body["headers"].get("authorization").is_none());

    // Denied by policy: a data scientist and a model that is not in production.
    let ta = token(&http, &base, "analyst", &analyst).await;
    assert_eq!(get(&http, &format!("{base}/echo/prod-model"), Some(&ta)).await.0, 200);
    let (status, _, body) = get(&http, &format!("{base}/echo/experimental"), Some(&ta)).await;
    assert_eq!(status, 403);
    assert!(
        !body.to_string().contains("data-scientist"),
        "no reason in the body: {body}"
    );

    // No token, wrong audience, insufficient scope.
    let (status, headers, _) = get(&http, &format!("{base}/echo/x"), None).await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("resource_metadata=")
    );
    assert_eq!(get(&http, &format!("{base}/partner/x"), Some(&t)).await.0, 401);
    let tn = token(&http, &base, "narrow", &narrow).await;
    let (status, headers, _) = get(&http, &format!("{base}/echo/x"), Some(&tn)).await;
    assert_eq!(status, 403);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    // Expired (leeway 0 in this config): the same token is accepted while
    // it is valid, and refused once its `exp` has passed.
    let short = w.ok(&[
        "token",
        "issue",
        "--sub",
        "user:x",
        "--aud",
        &base,
        "--scope",
        "inference.invoke",
        "--role",
        "ml-engineer",
        "--ttl",
        "3",
    ]);
    let short = short.trim();
    let (status, _, body) = get(&http, &format!("{base}/echo/x"), Some(short)).await;
    assert_eq!(status, 200, "the short-lived token before it expired: {body}");
    // Wait (bounded by the token's lifetime) until its `exp` is a whole
    // second in the past.
    let expires = exp(short);
    while unix_now() <= expires {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(&http, &format!("{base}/echo/x"), Some(short)).await.0, 401);

    // Rate-limited.
    assert_eq!(get(&http, &format!("{base}/limited/x"), Some(&t)).await.0, 200);
    let (status, headers, _) = get(&http, &format!("{base}/limited/x"), Some(&t)).await;
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
    for _ in 0..4 {
        assert_eq!(get(&http, &format!("{base}/limited/x"), Some(&t)).await.0, 429);
    }

    // Upstream down.
    let (status, _, body) = get(&http, &format!("{base}/down/x"), Some(&t)).await;
    assert_eq!((status, body["error"].as_str()), (502, Some("bad_gateway")));

    // Streaming: the first event arrives before the upstream sends its last.
    let response = http.get(format!("{base}/stream")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first_at = Instant::now();
    assert!(String::from_utf8_lossy(&first).contains("chunk 0"));
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).contains("chunk 4"));
    let last = last_sent.lock().unwrap().expect("the upstream sent its last event");
    assert!(first_at < last, "the first event was held back until the stream ended");

    // Revoked: refused at once.
    let form = format!("token={t}");
    let r = http
        .post(format!("{base}/oauth/revoke"))
        .basic_auth("app", Some(&app))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&http, &format!("{base}/echo/x"), Some(&t)).await.0, 401);

    // The audit log holds the decisions, with the deciding policies.
    let decisions = w.audit_events("access_decision");
    let deny = decisions
        .iter()
        .find(|d| d["resource"] == "Model::\"experimental\"")
        .expect("the denial is audited");
    assert_eq!(deny["decision"], "deny");
    assert_eq!(deny["principal"], "svc:analyst");
    let allow = decisions.iter().find(|d| d["principal"] == "svc:app").unwrap();
    assert_eq!(allow["policy_ids"], json!(["ml-engineer.inference"]));
    assert_eq!(w.audit_events("upstream_failure").len(), 1);

    // The five 429s are one event with their count, written when the
    // window ends or, as here, at shutdown.
    assert!(
        w.audit_events("requests_refused").is_empty(),
        "the window is still open"
    );
    assert!(server.stop().is_some_and(|s| s.success()));
    let refused = w.audit_events("requests_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (
            &refused[0]["limit"],
            &refused[0]["principal"],
            &refused[0]["route"],
            &refused[0]["count"]
        ),
        (&json!("rate_limit"), &json!("svc:app"), &json!("limited"), &json!(5))
    );
}
