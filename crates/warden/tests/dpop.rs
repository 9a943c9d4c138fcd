//! DPoP (RFC 9449) with the real binary.
//!
//! - A Python client whose proofs `joserfc` builds (pinned in
//!   `tests/interop/python/requirements.txt`, installed as
//!   `interop_clients.rs` does) against `warden serve` on a random
//!   loopback port with a gateway route to the demo upstream: binding,
//!   the gateway, the registry API, introspection, and each refusal
//!   (`tests/interop/python/dpop.py`). Every refusal is then found in the
//!   audit log as `dpop_refused`, without the token. Without python3 or
//!   pip the test skips loudly, or fails when `WARDEN_TEST_REQUIRE_INTEROP`
//!   is set.
//! - Two replicas on one PostgreSQL schema and one Redis: a proof used on
//!   one is refused on the other. Skipped without Redis, or failing when
//!   `WARDEN_TEST_REQUIRE_REDIS` is set.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod peers;

use std::process::Command;
use std::time::Duration;

use peers::run_bounded;
use serde_json::Value;
use warden_jose::dpop::sign_proof;
use warden_jose::{Algorithm, SigningKey};
use warden_test_support::binary::{Server, Warden};
use warden_test_support::db::{Backend, unique};
use warden_test_support::services::{self, REQUIRE_INTEROP};

const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// `warden.toml` with `issuer` (when given) and one GET route to the
/// demo upstream's `/v1/models`, named `route`.
fn config(issuer: Option<&str>, route: &str, upstream: std::net::SocketAddr) -> String {
    let issuer = issuer.map(|i| format!("issuer = \"{i}\"\n")).unwrap_or_default();
    format!(
        r#"{issuer}
[[route]]
name = "{route}"
methods = ["GET"]
path_prefix = "/v1/models"
upstream = "http://{upstream}/v1/models"
action = "inference.invoke"
resource = {{ type = "Endpoint", id = {{ literal = "models" }} }}
scopes = ["inference.invoke"]
kind = "http"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joserfc_client_gets_and_uses_bound_tokens() {
    let (upstream, _task) = warden_server::demo::spawn_demo_upstream().await.unwrap();
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite).env("WARDEN_LOG", "warn");
    let logs = w.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let packages = match peers::pip_install_cached(
        &peers::repo_root().join("tests/interop/python/requirements.txt"),
        "python",
        10,
        "the pinned joserfc needs it",
        &logs,
        INSTALL_TIMEOUT,
    ) {
        Ok(p) => p,
        Err(why) => {
            services::unavailable(REQUIRE_INTEROP, "Python joserfc DPoP interoperability", &why);
            return;
        }
    };
    w.write_config(&config(None, "models", upstream));
    let secret = w.create_client(&[
        "--name",
        "trainer",
        "--kind",
        "service",
        "--grant",
        "client_credentials",
        "--grant",
        "refresh_token",
        "--scope",
        "inference.invoke dataset.read warden.introspect",
        "--role",
        "ml-engineer",
    ]);
    let strict_secret = w.create_client(&[
        "--name",
        "strict-agent",
        "--kind",
        "agent",
        "--require-dpop",
        "--grant",
        "client_credentials",
        "--grant",
        "refresh_token",
        "--scope",
        "inference.invoke",
        "--role",
        "ml-engineer",
    ]);
    let shown: Value = serde_json::from_str(&w.ok(&["client", "show", "strict-agent"])).unwrap();
    assert_eq!(shown["require_dpop"], true, "{shown}");
    let list = w.ok(&["client", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("strict-agent") && l.contains("secret+dpop")),
        "{list}"
    );

    let mut server = w.start(&["serve"]);
    let mut cmd = Command::new("python3");
    cmd.arg(peers::repo_root().join("tests/interop/python/dpop.py"))
        .env("PYTHONPATH", &packages)
        .env("PYTHONNOUSERSITE", "1")
        .env("DPOP_ISSUER", server.base())
        .env("DPOP_ROUTE", "/v1/models")
        .env("DPOP_CLIENT_ID", "trainer")
        .env("DPOP_CLIENT_SECRET", &secret)
        .env("DPOP_STRICT_ID", "strict-agent")
        .env("DPOP_STRICT_SECRET", &strict_secret);
    let out = run_bounded(cmd, &logs, "python-dpop", CLIENT_TIMEOUT).unwrap();
    eprintln!("{}{}", out.stdout, out.stderr);
    assert!(
        out.success() && out.stdout.contains("all checks passed"),
        "python joserfc DPoP client: {}\n--- warden serve log\n{}",
        out.describe(),
        server.log_text()
    );
    assert!(server.stop().is_some_and(|s| s.success()), "{}", server.log_text());

    // Every refusal is on record (8 on the gateway, 2 at the token
    // endpoint), naming the client and the reason, never the token.
    let events = w.audit_events("dpop_refused");
    assert_eq!(events.len(), 10, "{events:#?}");
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    for expected in [
        "a DPoP proof is required",
        "the DPoP proof was already used",
        "the DPoP proof is for another HTTP method",
        "the DPoP proof is for another URL",
        "the DPoP proof is too old",
        "the DPoP proof has no `ath` for the access token",
        "the DPoP proof is signed by another key than the one the token is bound to",
        "a DPoP-bound access token must be sent with the DPoP scheme and a proof",
    ] {
        assert!(reasons.contains(&expected), "{expected} not in {reasons:#?}");
    }
    for e in &events {
        let text = e.to_string();
        assert!(!text.contains("eyJ"), "a token or proof in the audit log: {text}");
    }
}

/// A token for `client` bound to `key`, from `server` (issuer `issuer`).
async fn bound_token(http: &reqwest::Client, server: &Server, issuer: &str, key: &SigningKey, secret: &str) -> String {
    let proof = sign_proof(
        key,
        "POST",
        &format!("{issuer}/oauth/token"),
        warden_server::state::now(),
        &unique("t-"),
        None,
        None,
    )
    .unwrap();
    let r = http
        .post(format!("{}/oauth/token", server.base()))
        .basic_auth("dpop-app", Some(secret))
        .header("DPoP", proof)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get_models(http: &reqwest::Client, server: &Server, token: &str, proof: &str) -> (u16, String) {
    let r = http
        .get(format!("{}/v1/models", server.base()))
        .header("authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_replay_cache_through_redis() {
    let Some(redis) = services::redis() else { return };
    let (upstream, _task) = warden_server::demo::spawn_demo_upstream().await.unwrap();
    // Behind one public URL: proofs name it, whichever replica answers.
    let issuer = format!("http://{}.warden.test", unique("dpop-"));
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Postgres)
        .env("WARDEN_LOG", "warn")
        .env("WARDEN_REDIS_URL", redis);
    w.write_config(&config(Some(&issuer), "dpop-models", upstream));
    let secret = w.create_client(&[
        "--name",
        "dpop-app",
        "--kind",
        "service",
        "--scope",
        "inference.invoke",
        "--role",
        "ml-engineer",
    ]);
    let a = w.launch(&["serve"]).named("A").start();
    let b = w.launch(&["serve"]).named("B").start();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (key, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let token = bound_token(&http, &a, &issuer, &key, &secret).await;
    let url = format!("{issuer}/v1/models");
    let proof = sign_proof(
        &key,
        "GET",
        &url,
        warden_server::state::now(),
        &unique("p-"),
        Some(&token),
        None,
    )
    .unwrap();
    let (status, body) = get_models(&http, &a, &token, &proof).await;
    assert_eq!(status, 200, "{body}\nA:\n{}", a.log_text());
    let (status, body) = get_models(&http, &b, &token, &proof).await;
    assert_eq!(status, 401, "a proof used on A was accepted on B: {body}");
    assert!(body.contains("invalid_dpop_proof"), "{body}");
    // A fresh proof is accepted on B.
    let fresh = sign_proof(
        &key,
        "GET",
        &url,
        warden_server::state::now(),
        &unique("p-"),
        Some(&token),
        None,
    )
    .unwrap();
    let (status, body) = get_models(&http, &b, &token, &fresh).await;
    assert_eq!(status, 200, "{body}\nB:\n{}", b.log_text());
    drop((a, b));
}
