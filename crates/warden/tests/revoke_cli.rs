//! `warden token revoke` against a running `warden serve` (SQLite in a temp
//! dir): a token the CLI issued, revoked by the token itself or by its id,
//! is refused by the running server within its sync period, and the
//! revocation is audited with the operator who ran it.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Far past the server's one-second revocation sync.
const PATIENCE: Duration = Duration::from_secs(15);

fn warden(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WARDEN_CONFIG", dir.join("warden.toml"))
        .env("WARDEN_DATA_DIR", dir.join("data"))
        .env("WARDEN_LOG", "warn")
        .env("USER", "ops-tester");
    cmd
}

fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = warden(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(dir, args, stdin);
    assert!(
        out.status.success(),
        "warden {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn status(http: &reqwest::Client, url: &str, token: &str) -> u16 {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
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
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.path().join("warden.toml"),
        format!("listen = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    ok(dir.path(), &["keys", "rotate"], None);
    let _serve = Serve(
        warden(dir.path())
            .args(["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let events = format!("{issuer}/api/v1/audit/events?type=token_revoked");
    let issue = || {
        ok(
            dir.path(),
            &[
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
            ],
            None,
        )
    };
    let by_token = issue();
    let by_jti = issue();
    let deadline = Instant::now() + PATIENCE;
    while status(&http, &events, &by_token).await != 200 {
        assert!(Instant::now() < deadline, "warden serve never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&http, &events, &by_jti).await, 200);

    let said = ok(dir.path(), &["token", "revoke", "--token", "-"], Some(&by_token));
    assert!(said.starts_with("revoked token "), "{said}");
    assert!(
        refused_within(&http, &events, &by_token).await,
        "the revoked token still works"
    );
    assert_eq!(status(&http, &events, &by_jti).await, 200, "only that token");

    let inspected = ok(dir.path(), &["token", "inspect", "-"], Some(&by_jti));
    let jti = inspected
        .split("\"jti\":")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap()
        .to_owned();
    ok(dir.path(), &["token", "revoke", "--jti", &jti], None);
    assert!(
        refused_within(&http, &events, &by_jti).await,
        "revoked by jti, it still works"
    );

    // Refused: neither or both of --jti and --token, a forged token.
    assert_eq!(run(dir.path(), &["token", "revoke"], None).status.code(), Some(2));
    assert_eq!(
        run(dir.path(), &["token", "revoke", "--jti", "a", "--token", "b"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(dir.path(), &["token", "revoke", "--token", "e30.e30.e30"], None)
            .status
            .code(),
        Some(1)
    );

    // Both are in the audit log, with who ran the command.
    let admin = ok(
        dir.path(),
        &[
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
        ],
        None,
    );
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
