//! Crash safety of the audit log through the real server: issue tokens
//! under concurrent load, SIGKILL `warden serve` mid-load, restart it, and
//! check that every token whose response was received has its
//! `token_issued` event in the log, and that the log verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the server keeps its data: a database URL and, for PostgreSQL, a schema.
struct Db {
    url: String,
    schema: Option<String>,
}

fn warden(data: &Path, db: &Db, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WARDEN_DATA_DIR", data)
        .env("WARDEN_DATABASE_URL", &db.url)
        .env("WARDEN_LOG", "error");
    if let Some(schema) = &db.schema {
        cmd.env("WARDEN_DATABASE_SCHEMA", schema);
    }
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start(data: &Path, db: &Db, port: u16) -> Child {
    let mut child = warden(data, db, &["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/readyz")).send().await
            && r.status() == 200
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not become ready");
}

fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = warden_jose::base64url::decode(payload).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["jti"].as_str().unwrap().to_owned()
}

async fn crash_and_recover(db: &Db, data: &Path) {
    let out = warden(
        data,
        db,
        &[
            "client", "create", "--name", "load", "--kind", "service", "--scope", "x",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .to_owned();
    let port = free_port();
    let mut server = start(data, db, port).await;

    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let http = reqwest::Client::new();
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (http, secret, acked) = (http.clone(), secret.clone(), Arc::clone(&acknowledged));
        workers.push(tokio::spawn(async move {
            for _ in 0..2000 {
                let sent = http
                    .post(format!("http://127.0.0.1:{port}/oauth/token"))
                    .basic_auth("load", Some(&secret))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                if response.status() != 200 {
                    break;
                }
                let Ok(body) = response.bytes().await else { break };
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                acked.lock().unwrap().insert(jti(v["access_token"].as_str().unwrap()));
            }
        }));
    }
    // Let load build up, then kill the server without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 300 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} tokens before the kill", acked.len());

    // Restart: the log must hold every acknowledged issuance and verify.
    let mut server = start(data, db, port).await;
    let out = warden(
        data,
        db,
        &[
            "audit",
            "query",
            "--type",
            "token_issued",
            "--limit",
            "100000",
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logged: HashSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            // `body` is the event's canonical JSON text.
            let body: serde_json::Value = serde_json::from_str(v["body"].as_str()?).ok()?;
            body["jti"].as_str().map(str::to_owned)
        })
        .collect();
    let missing: Vec<_> = acked.difference(&logged).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged tokens missing from the log (of {})",
        missing.len(),
        acked.len()
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let verify = warden(data, db, &["audit", "verify"]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loses_no_acknowledged_event_on_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = Db {
        url: format!("sqlite://{}", data.join("warden.db").display()),
        schema: None,
    };
    crash_and_recover(&db, &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_loses_no_acknowledged_event_on_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let base =
        std::env::var("WARDEN_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    let schema = format!("t_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>());
    let db = Db {
        url: base.clone(),
        schema: Some(schema.clone()),
    };
    crash_and_recover(&db, &data).await;
    let pool = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&pool)
        .await
        .unwrap();
}
