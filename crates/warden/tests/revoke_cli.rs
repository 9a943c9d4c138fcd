//! `warden token revoke` against a running `warden serve` (SQLite in a temp
//! dir): a token the CLI issued, revoked by the token itself or by its id,
//! is refused by the running server within its sync period, and the
//! revocation is audited with the operator who ran it.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;

/// Far past the server's one-second revocation sync.
const PATIENCE: Duration = Duration::from_secs(15);

/// `warden ARGS` with `stdin`, which must succeed; its stdout.
fn stdin_ok(w: &Warden, args: &[&str], stdin: &str) -> String {
    let out = w.run_stdin(args, stdin);
    assert!(
        out.status.success(),
        "warden {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn status(http: &reqwest::Client, url: &str, token: &str) -> u16 {
    match http.get(url).bearer_auth(token).send().await {
        Ok(r) => r.status().as_u16(),
        Err(e) => {
            eprintln!("GET {url}: {e:?}");
            0
        }
    }
}

async fn refused_within(http: &reqwest::Client, url: &str, token: &str) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if status(http, url, token).await == 401 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_revokes_any_token_and_the_running_server_refuses_it() {
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite)
        .env("WARDEN_LOG", "warn")
        .env("USER", "ops-tester");
    w.ok(&["keys", "rotate"]);
    let server = w.start(&["serve"]);
    let issuer = server.base();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let events = format!("{issuer}/api/v1/audit/events?type=token_revoked");
    let issue = || {
        w.ok(&[
            "token",
            "issue",
            "--sub",
            "user:ada",
            "--aud",
            &issuer,
            "--scope",
            "audit.read",
            "--role",
            "auditor",
        ])
    };
    let by_token = issue().trim().to_owned();
    let by_jti = issue().trim().to_owned();
    let deadline = Instant::now() + PATIENCE;
    while status(&http, &events, &by_token).await != 200 {
        assert!(
            Instant::now() < deadline,
            "warden serve never answered 200 ({}):\n{}",
            status(&http, &events, &by_token).await,
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&http, &events, &by_jti).await, 200);

    let said = stdin_ok(&w, &["token", "revoke", "--token", "-"], &by_token);
    assert!(said.starts_with("revoked token "), "{said}");
    assert!(
        refused_within(&http, &events, &by_token).await,
        "the revoked token still works"
    );
    assert_eq!(status(&http, &events, &by_jti).await, 200, "only that token");

    let inspected = stdin_ok(&w, &["token", "inspect", "-"], &by_jti);
    let jti = inspected
        .split("\"jti\":")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap()
        .to_owned();
    w.ok(&["token", "revoke", "--jti", &jti]);
    assert!(
        refused_within(&http, &events, &by_jti).await,
        "revoked by jti, it still works"
    );

    // Refused: neither or both of --jti and --token, a forged token.
    assert_eq!(w.run(&["token", "revoke"]).status.code(), Some(2));
    assert_eq!(
        w.run(&["token", "revoke", "--jti", "a", "--token", "b"]).status.code(),
        Some(2)
    );
    assert_eq!(
        w.run(&["token", "revoke", "--token", "e30.e30.e30"]).status.code(),
        Some(1)
    );

    // Both are in the audit log, with who ran the command.
    let admin = w
        .ok(&[
            "token",
            "issue",
            "--sub",
            "user:root",
            "--aud",
            &issuer,
            "--scope",
            "audit.read",
            "--role",
            "auditor",
        ])
        .trim()
        .to_owned();
    let text = http
        .get(&events)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let reasons: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"]["reason"].as_str())
        .collect();
    assert_eq!(reasons.len(), 2, "{body}");
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("revoked from the CLI by ops-tester@")),
        "{reasons:?}"
    );
}
