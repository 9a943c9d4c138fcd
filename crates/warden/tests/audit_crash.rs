//! Crash safety of the audit log through the real server: issue tokens
//! under concurrent load, SIGKILL `warden serve` mid-load (events queued
//! and not yet integrated among them), restart it, let its sequencer
//! integrate the queue, and check that every token whose response was
//! received has its `token_issued` event in the log, and that the log
//! verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;

fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = warden_jose::base64url::decode(payload).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["jti"].as_str().unwrap().to_owned()
}

async fn crash_and_recover(backend: Backend) {
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), backend).env("WARDEN_LOG", "error");
    let secret = w.create_client(&["--name", "load", "--kind", "service", "--scope", "x"]);
    let mut server = w.start(&["serve"]);
    let (addr, base) = (server.addr(), server.base());

    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let http = reqwest::Client::new();
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (http, secret, acked, base) = (http.clone(), secret.clone(), Arc::clone(&acknowledged), base.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..2000 {
                let sent = http
                    .post(format!("{base}/oauth/token"))
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
    server.kill();
    for w in workers {
        w.await.unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} tokens before the kill", acked.len());

    // Restart on the same address: the log must hold every acknowledged
    // issuance and verify.
    let mut server = w.launch(&["serve"]).on(addr).start();
    // What was queued before the kill is integrated by the restarted
    // server's sequencer: wait until its queue is empty.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = http.get(format!("{}/readyz", server.base())).send().await.unwrap();
        let ready: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        if ready["audit_queue"]["depth"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the queue was never integrated: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // `body` is the event's canonical JSON text.
    let logged: HashSet<String> = w
        .audit_events("token_issued")
        .iter()
        .filter_map(|body| body["jti"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<_> = acked.difference(&logged).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged tokens missing from the log (of {})",
        missing.len(),
        acked.len()
    );
    server.kill();
    let verify = w.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loses_no_acknowledged_event_on_sigkill() {
    crash_and_recover(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_loses_no_acknowledged_event_on_sigkill() {
    crash_and_recover(Backend::Postgres).await;
}
