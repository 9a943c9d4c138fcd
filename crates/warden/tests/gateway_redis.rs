//! Rate limits shared through Redis, with the real binary: two `warden
//! serve` processes on one PostgreSQL schema and one Redis apply one limit
//! to requests sent to one of them, then spread over both; with Redis
//! unreachable, a process falls back to its share of the limit
//! (`rate_limit.redis_fallback = "local"`) or refuses with 503
//! (`"deny"`), shows it in `/readyz`, and logs it once.
//!
//! Redis: `WARDEN_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). When
//! it does not answer, the shared-limit test is skipped, or fails if
//! `WARDEN_TEST_REQUIRE_REDIS` is set (and not `0`; `scripts/test` sets
//! it). Every test uses a route name of its own, so its Redis keys are its
//! own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use warden_test_support::binary::{Server, Warden};
use warden_test_support::db::{Backend, unique};
use warden_test_support::http::client_credentials;
use warden_test_support::net::free_port;
use warden_test_support::services;

/// An installation on `backend` with `warden.toml` (one rate-limited route
/// to `upstream`, named uniquely, so its Redis keys are this test's), two
/// replicas sharing the limits and `env`, and a client that may call the
/// route; its secret.
fn setup(backend: Backend, upstream: SocketAddr, env: &[(&str, &str)]) -> (Warden, String) {
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), backend)
        .env("WARDEN_LOG", "warn")
        .env("WARDEN_RATE_LIMIT_REPLICAS", "2");
    for (k, v) in env {
        w.set_env(k, *v);
    }
    w.write_config(&config(&unique("rl-"), upstream));
    let secret = w.create_client(&[
        "--name",
        "rl-app",
        "--kind",
        "service",
        "--scope",
        "inference.invoke",
        "--role",
        "ml-engineer",
    ]);
    (w, secret)
}

/// What these tests ask a running server.
trait Api {
    async fn readyz(&self) -> Value;
    async fn token(&self, client: &str, secret: &str) -> String;
}

impl Api for Server {
    async fn readyz(&self) -> Value {
        let r = reqwest::get(format!("{}/readyz", self.base())).await.unwrap();
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
    }

    async fn token(&self, client: &str, secret: &str) -> String {
        client_credentials(&reqwest::Client::new(), &self.base(), client, secret).await
    }
}

/// `warden.toml` with one route, burst 5 and 1/s, to `upstream`'s `/v1/models`.
fn config(route: &str, upstream: SocketAddr) -> String {
    format!(
        r#"issuer = "http://warden.test"

[[route]]
name = "{route}"
methods = ["GET"]
path_prefix = "/v1/models"
upstream = "http://{upstream}/v1/models"
action = "inference.invoke"
resource = {{ type = "Endpoint", id = {{ literal = "models" }} }}
scopes = ["inference.invoke"]
rate_limit = {{ per_second = 1.0, burst = 5 }}
kind = "openai"
"#
    )
}

/// Sends one request; returns the status and, for a 429, `Retry-After`.
async fn call(http: &reqwest::Client, server: &Server, token: &str) -> (u16, Option<String>, String) {
    let r = http
        .get(format!("{}/v1/models", server.base()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned();
    (status, retry, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_limit_through_redis() {
    let Some(redis) = services::redis() else { return };
    let (upstream, upstream_task) = warden_server::demo::spawn_demo_upstream().await.unwrap();
    // One PostgreSQL schema and one Redis; the data dir only holds the
    // master key both processes open.
    let (mut w, secret) = setup(Backend::Postgres, upstream, &[("WARDEN_REDIS_URL", &redis)]);
    let a = w.launch(&["serve"]).named("A").start();
    let b = w.launch(&["serve"]).named("B").start();
    for s in [&a, &b] {
        let ready = s.readyz().await;
        assert_eq!(
            ready["rate_limit"],
            serde_json::json!({"backend": "redis", "degraded": false, "fallback": "local"}),
            "{ready}"
        );
    }
    let token = a.token("rl-app", &secret).await;

    // Burst: every request to process A. One shared limit admits its burst
    // (5), plus one per second elapsed. A process applying only its local
    // share of the limit (burst ceil(5 / 2) = 3, 1 per 2 s) would admit at
    // most 4 here: spread evenly over both processes, two shares would
    // admit as many as one shared limit, so the load goes to one.
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut total = 0;
    for _ in 0..16 {
        let (status, retry, body) = call(&http, &a, &token).await;
        match status {
            200 => total += 1,
            429 => assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1), "{body}"),
            _ => panic!(
                "unexpected {status}: {body}\nA:\n{}\nB:\n{}",
                a.log_text(),
                b.log_text()
            ),
        }
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "too slow to tell the limits apart: {elapsed:?}"
    );
    let bound = 5 + 1 + elapsed.as_secs() as usize;
    assert!(
        (5..=bound).contains(&total),
        "A admitted {total} in {elapsed:?}: one shared limit admits 5 to {bound}, a local share at most 4"
    );

    // Steady rate: one request every 100 ms for 3 s more, alternating. In
    // all, one shared limit admits 5 + 1 per second since the start; two
    // separate limits would admit B's burst (5) on top.
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(4) {
        let server = if i % 2 == 0 { &a } else { &b };
        if call(&http, server, &token).await.0 == 200 {
            total += 1;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let expected = 5.0 + secs.floor();
    assert!(
        (total as f64 - expected).abs() <= 1.0,
        "admitted {total} in {secs:.2} s; one shared limit allows about {expected}"
    );
    for s in [&a, &b] {
        assert_eq!(s.readyz().await["rate_limit"]["degraded"], false);
        assert!(!s.log_text().contains("Redis is unreachable"), "{}", s.log_text());
    }

    drop((a, b));
    upstream_task.abort();
}

/// One process on SQLite whose Redis is a closed port.
async fn unreachable_redis(fallback: &str) -> (Warden, Server, String, tokio::task::JoinHandle<()>) {
    let (upstream, upstream_task) = warden_server::demo::spawn_demo_upstream().await.unwrap();
    let redis = format!("redis://127.0.0.1:{}", free_port());
    let (mut w, secret) = setup(
        Backend::Sqlite,
        upstream,
        &[
            ("WARDEN_REDIS_URL", &redis),
            ("WARDEN_RATE_LIMIT_REDIS_FALLBACK", fallback),
        ],
    );
    let server = w.start(&["serve"]);
    let token = server.token("rl-app", &secret).await;
    (w, server, token, upstream_task)
}

async fn wait_degraded(server: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = server.readyz().await;
        if ready["rate_limit"]["degraded"] == true {
            return ready;
        }
        assert!(Instant::now() < deadline, "never degraded: {ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_falls_back_to_local_share_and_logs_once() {
    let (_w, server, token, upstream) = unreachable_redis("local").await;
    let ready = wait_degraded(&server).await;
    assert_eq!(
        ready["status"], "ready",
        "a degraded limiter does not make the server unready"
    );
    assert_eq!(ready["rate_limit"]["fallback"], "local");
    let http = reqwest::Client::new();
    let mut admitted = 0;
    for _ in 0..10 {
        let (status, _, body) = call(&http, &server, &token).await;
        match status {
            200 => admitted += 1,
            429 => {}
            _ => panic!("unexpected {status}: {body}"),
        }
    }
    // This process's share: burst ceil(5 / 2) = 3 (and 1 per 2 s).
    assert!((3..=4).contains(&admitted), "admitted {admitted}");
    let log = server.log_text();
    assert_eq!(log.matches("Redis is unreachable").count(), 1, "logged once:\n{log}");
    upstream.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_in_deny_mode_answers_503() {
    let (_w, server, token, upstream) = unreachable_redis("deny").await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let (status, retry, body) = call(&http, &server, &token).await;
        assert_eq!(status, 503, "{body}");
        assert!(retry.is_some());
        let v: Value = serde_json::from_str(&body).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("rate limits cannot be checked"), "{body}");
    }
    let ready = wait_degraded(&server).await;
    assert_eq!(ready["rate_limit"]["fallback"], "deny");
    let log = server.log_text();
    assert_eq!(log.matches("Redis is unreachable").count(), 1, "logged once:\n{log}");
    upstream.abort();
}
