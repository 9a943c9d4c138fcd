//! PostgreSQL going away under a running `warden serve`, on a private
//! PostgreSQL cluster this test creates (initdb in a temp dir, a random
//! loopback port), so the machine's shared server is never disturbed:
//!
//! - while it is down, token issuance fails closed with 503
//!   `temporarily_unavailable` within a few seconds (never a hang), and
//!   `/readyz` says the store is unreachable; what needs no database goes
//!   on (`/healthz`, the JWKS, so resource servers keep verifying);
//! - when it is back, issuance recovers without restarting Warden;
//! - under load from 8 workers across the outage, no acknowledged audit
//!   event is lost: every token answered 200 has its `token_issued` event,
//!   and the log verifies.
//!
//! Needs PostgreSQL's server binaries (Debian `postgresql`, installed by
//! `scripts/test`); as root they run as the `postgres` user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;
use warden_test_support::net::free_port;

/// PostgreSQL's server binaries: `pg_ctl` beside `initdb`.
fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|b| b.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as `postgres` when we are root (PostgreSQL refuses root).
fn as_pg_user(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A private PostgreSQL cluster.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn create(root: &Path) -> Cluster {
        let dir = root.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(root)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let out = as_pg_user(pg_bin("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let cluster = Cluster { dir, port: free_port() };
        cluster.start();
        cluster
    }

    fn ctl(&self, args: &[&str]) -> std::process::Output {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        as_pg_user(pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&self.dir)
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .args(args)
            .output()
            .unwrap()
    }

    fn start(&self) {
        let out = self.ctl(&["-w", "-t", "30", "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        let out = self.ctl(&["-w", "-m", "immediate", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.ctl(&["-w", "-m", "immediate", "stop"]);
    }
}

/// Whether `/readyz` answers 200 within 30 s.
async fn wait_ready(http: &reqwest::Client, base: &str) -> bool {
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn issue(http: &reqwest::Client, base: &str, secret: &str) -> (u16, serde_json::Value) {
    let r = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("svc", Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_fails_closed_while_postgres_is_down_and_recovers_without_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let cluster = Cluster::create(root.path());
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite)
        .env("WARDEN_DATABASE_URL", cluster.url())
        .env("WARDEN_DATABASE_SCHEMA", "warden")
        .env("WARDEN_LOG", "error");
    let secret = w.create_client(&["--name", "svc", "--kind", "service", "--scope", "x"]);
    let server = w.start(&["serve"]);
    let base = server.base();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // Load from 8 workers throughout: before, during and after the outage.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (http, base, secret) = (http.clone(), base.clone(), secret.clone());
        let (acked, stop) = (std::sync::Arc::clone(&acked), std::sync::Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            for _ in 0..100_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let (status, body) = issue(&http, &base, &secret).await;
                match status {
                    200 => {
                        acked
                            .lock()
                            .unwrap()
                            .insert(jti(body["access_token"].as_str().unwrap()));
                    }
                    503 => tokio::time::sleep(Duration::from_millis(100)).await,
                    other => panic!("unexpected {other}: {body}"),
                }
            }
        }));
    }
    let count =
        |acked: &std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>| acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&acked) < 200 {
        assert!(Instant::now() < deadline, "the load never got going");
        assert!(!workers.iter().any(|w| w.is_finished()), "a worker stopped early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    cluster.stop();
    // The client record is cached for 5 s; past that, issuance needs the
    // database. Every answer is a prompt 503, never a hang or a token.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before_probe = count(&acked);
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = issue(&http, &base, &secret).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    }
    assert_eq!(
        count(&acked),
        before_probe,
        "no token is issued while the database is down"
    );
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let text = ready.text().await.unwrap();
    assert!(text.contains("store unreachable"), "{text}");
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let jwks = http.get(format!("{base}/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(jwks.status(), 200, "resource servers keep verifying");

    cluster.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&acked) < before_probe + 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        count(&acked) >= before_probe + 200,
        "issuance did not recover without a restart"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(wait_ready(&http, &base).await, "readyz did not recover");
    drop(server);

    let out = w.run(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let logged: std::collections::HashSet<String> =
        w.audit_events("token_issued").iter().filter_map(find_jti).collect();
    let acked = acked.lock().unwrap();
    let lost: Vec<_> = acked.difference(&logged).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged tokens have no event, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    eprintln!("{} tokens acknowledged, {} issuance events", acked.len(), logged.len());
}

fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&warden_jose::base64url::decode(payload).unwrap()).unwrap();
    v["jti"].as_str().unwrap().to_owned()
}

/// The `jti` anywhere in an event body.
fn find_jti(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Object(m) => m
            .get("jti")
            .and_then(|j| j.as_str().map(str::to_owned))
            .or_else(|| m.values().find_map(find_jti)),
        _ => None,
    }
}
