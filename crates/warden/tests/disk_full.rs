//! A full disk under the SQLite data dir, through the real server: while
//! the filesystem is full, token requests fail closed (503) and `/readyz`
//! answers 503; once space is freed the server recovers by itself, with no
//! restart: `/readyz` answers 200, tokens are issued again, a refresh token
//! whose rotation failed is redeemed normally (not taken for reuse), and
//! the audit log verifies with a `token_issued` event for every token
//! acknowledged.
//!
//! The data dir is a small tmpfs mounted for the test, which needs root
//! (as on CI); elsewhere the test says so and skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;

/// A tmpfs mounted at a fresh directory, unmounted when dropped.
struct Tmpfs {
    at: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it); `None`
    /// when mounting is not allowed here.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("data");
        std::fs::create_dir(&at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { at, _dir: dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let done = Command::new("umount").arg(&self.at).status();
        if !matches!(done, Ok(s) if s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.at).status();
        }
    }
}

/// Writes `path` until the filesystem has no room left.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let block = vec![0x55u8; chunk];
        while file.write_all(&block).is_ok() {}
    }
    let _ = file.sync_all();
}

fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = warden_jose::base64url::decode(payload).unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["jti"].as_str().unwrap().to_owned()
}

async fn token(http: &reqwest::Client, base: &str, secret: &str, form: &str) -> (u16, Value) {
    let r = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("rt", Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn ready(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn refresh_form(refresh_token: &str) -> String {
    let encoded: String = refresh_token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("grant_type=refresh_token&refresh_token={encoded}")
}

#[tokio::test]
async fn a_full_disk_fails_closed_and_recovers_without_a_restart() {
    let Some(tmpfs) = Tmpfs::mount("12m") else {
        return;
    };
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite)
        .env("WARDEN_LOG", "warn")
        .env("WARDEN_DATA_DIR", tmpfs.at.display().to_string());
    let secret = w.create_client(&[
        "--name",
        "rt",
        "--kind",
        "service",
        "--scope",
        "x",
        "--grant",
        "client_credentials",
        "--grant",
        "refresh_token",
    ]);
    let mut server = w.start(&["serve"]);
    let base = server.base();
    let http = reqwest::Client::new();
    let mut acknowledged = HashSet::new();
    let (status, issued) = token(&http, &base, &secret, "grant_type=client_credentials").await;
    assert_eq!(status, 200, "{issued}");
    acknowledged.insert(jti(issued["access_token"].as_str().unwrap()));
    let refresh_token = issued["refresh_token"].as_str().unwrap().to_owned();

    let filler = tmpfs.at.join("filler");
    fill(&filler);
    // Fail closed: no token without its audit record, and not ready.
    let (status, body) = token(&http, &base, &secret, "grant_type=client_credentials").await;
    assert_eq!(status, 503, "a token was issued on a full disk: {body}");
    let (status, body) = token(&http, &base, &secret, &refresh_form(&refresh_token)).await;
    assert_eq!(status, 503, "a refresh token was rotated on a full disk: {body}");
    let (status, body) = ready(&http, &base).await;
    assert_eq!(status, 503, "ready on a full disk: {body}");
    assert!(body.to_string().contains("audit log cannot be written"), "{body}");

    // Space comes back: ready again, by itself, within a bounded wait.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = ready(&http, &base).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still not ready after space was freed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..3 {
        let (status, body) = token(&http, &base, &secret, "grant_type=client_credentials").await;
        assert_eq!(status, 200, "writes did not recover: {body}\n{}", server.log_text());
        acknowledged.insert(jti(body["access_token"].as_str().unwrap()));
    }
    // The rotation that failed was not made: the same refresh token is
    // redeemed now, and its family is not revoked as reused.
    let (status, body) = token(&http, &base, &secret, &refresh_form(&refresh_token)).await;
    assert_eq!(status, 200, "the refresh retried after the failure was refused: {body}");
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = token(&http, &base, &secret, &refresh_form(&next)).await;
    assert_eq!(status, 200, "the family was revoked: {body}");
    assert!(
        !server.log_text().contains("non-zero transaction depth"),
        "{}",
        server.log_text()
    );
    server.stop();

    let logged: HashSet<String> = w
        .audit_events("token_issued")
        .iter()
        .filter_map(|body| body["jti"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<_> = acknowledged.difference(&logged).collect();
    assert!(
        missing.is_empty(),
        "acknowledged tokens missing from the log: {missing:?}"
    );
    assert_eq!(w.audit_events("token_refreshed").len(), 2);
    assert!(w.audit_events("refresh_token_reuse_detected").is_empty());
    let verify = w.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    drop(w);
    drop(tmpfs);
}
