//! The real `warden` binary, run as a user would, on every backend:
//! SQLite in a temp data dir, and PostgreSQL in a fresh schema per test
//! (`WARDEN_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; unreachable means failure).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;
use warden_test_support::services::{self, REQUIRE_INTEROP};

const ISS: &str = "http://127.0.0.1:8080";
const ALGS: [&str; 5] = ["EdDSA", "ES256", "ES384", "RS256", "PS256"];

/// A fresh installation of this crate's `warden` on `backend`.
fn warden(backend: Backend) -> Warden {
    Warden::new(env!("CARGO_BIN_EXE_warden"), backend)
}

/// `warden token issue` for user:alice (audience `inference`), with `extra`.
trait Issue {
    fn issue(&self, extra: &[&str]) -> String;
}

impl Issue for Warden {
    fn issue(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "token",
            "issue",
            "--sub",
            "user:alice",
            "--aud",
            "inference",
            "--scope",
            "inference.invoke",
            "--role",
            "ml-engineer",
        ];
        args.extend_from_slice(extra);
        self.ok(&args).trim().to_string()
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn header_kid(token: &str) -> String {
    let h = warden_jose_b64(token.split('.').next().unwrap());
    h["kid"].as_str().unwrap().to_string()
}

fn warden_jose_b64(segment: &str) -> Value {
    use std::process::Command as C;
    let _ = C::new("true");
    let bytes = base64_url_decode(segment);
    serde_json::from_slice(&bytes).unwrap()
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    let table = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url"),
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = acc << 6 | table(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

// --- the feature tests, each run on both backends ---

fn issue_and_verify_every_alg(b: Backend) {
    let w = warden(b);
    for alg in ALGS {
        w.ok(&["keys", "rotate", "--alg", alg, "--immediately"]);
        let token = w.issue(&[]);
        let claims: Value =
            serde_json::from_str(&w.ok(&["token", "verify", "--iss", ISS, "--aud", "inference", &token])).unwrap();
        assert_eq!(claims["sub"], "user:alice", "{alg}");
        assert_eq!(claims["scope"], "inference.invoke");
        assert_eq!(claims["roles"][0], "ml-engineer");
        assert!(claims["jti"].as_str().unwrap().len() >= 22);
        assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 300);
        // Also from stdin, and against an exported JWKS file.
        let out = w.run_stdin(
            &["token", "verify", "--iss", ISS, "--aud", "inference", "-"],
            &format!("{token}\n"),
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let jwks = w.ok(&["keys", "jwks"]);
        let file = w.dir().join("jwks.json");
        std::fs::write(&file, jwks).unwrap();
        w.ok(&[
            "token",
            "verify",
            "--jwks",
            file.to_str().unwrap(),
            "--iss",
            ISS,
            "--aud",
            "inference",
            &token,
        ]);
        // The allow-list is honoured.
        let other = if alg == "EdDSA" { "ES256" } else { "EdDSA" };
        let out = w.run(&[
            "token",
            "verify",
            "--alg",
            other,
            "--iss",
            ISS,
            "--aud",
            "inference",
            &token,
        ]);
        assert_eq!(code(&out), 1, "{alg}: {}", stderr(&out));
        assert!(stderr(&out).contains("not allowed"), "{}", stderr(&out));
    }
}

fn rejections_exit_1_with_one_line(b: Backend) {
    let w = warden(b);
    w.ok(&["keys", "rotate"]);
    let token = w.issue(&[]);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--iss".into(),
                "https://evil.example".into(),
                "--aud".into(),
                "inference".into(),
                token.clone(),
            ],
            "issuer",
        ),
        (
            vec![
                "--iss".into(),
                ISS.into(),
                "--aud".into(),
                "training".into(),
                token.clone(),
            ],
            "audience",
        ),
        (
            vec![
                "--iss".into(),
                ISS.into(),
                "--aud".into(),
                "inference".into(),
                format!("{token}x"),
            ],
            "base64url",
        ),
        (
            vec![
                "--iss".into(),
                ISS.into(),
                "--aud".into(),
                "inference".into(),
                "not.a.token".into(),
            ],
            "header",
        ),
        (
            vec![
                "--iss".into(),
                ISS.into(),
                "--aud".into(),
                "inference".into(),
                "--typ".into(),
                "JWT".into(),
                token.clone(),
            ],
            "typ",
        ),
    ];
    for (args, word) in cases {
        let mut full = vec!["token", "verify"];
        full.extend(args.iter().map(String::as_str));
        let out = w.run(&full);
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with("token rejected:") && err.contains(word),
            "{word}: {err}"
        );
        assert!(out.stdout.is_empty(), "nothing on stdout when rejected");
    }
    // A token signed by a key this data dir does not know.
    let other = warden(Backend::Sqlite);
    other.ok(&["keys", "rotate"]);
    let foreign = other.issue(&[]);
    let out = w.run(&["token", "verify", "--iss", ISS, "--aud", "inference", &foreign]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("kid"), "{}", stderr(&out));
}

fn usage_errors_exit_2(b: Backend) {
    let w = warden(b);
    w.ok(&["keys", "rotate"]);
    let token = w.issue(&[]);
    for args in [
        vec!["token", "verify", "--aud", "inference", token.as_str()],
        vec![
            "token",
            "verify",
            "--iss",
            ISS,
            "--aud",
            "inference",
            "--leeway",
            "61",
            token.as_str(),
        ],
        vec![
            "token",
            "verify",
            "--jwks",
            "/nonexistent/jwks.json",
            "--iss",
            ISS,
            "--aud",
            "x",
            token.as_str(),
        ],
        vec![
            "token",
            "verify",
            "--alg",
            "HS256",
            "--iss",
            ISS,
            "--aud",
            "x",
            token.as_str(),
        ],
        vec![
            "token",
            "verify",
            "--alg",
            "none",
            "--iss",
            ISS,
            "--aud",
            "x",
            token.as_str(),
        ],
        vec!["token", "issue", "--sub", "alice", "--aud", "x"],
        vec!["token", "issue", "--sub", "user:alice", "--aud", "x", "--ttl", "3601"],
        vec!["keys", "rotate", "--alg", "HS256"],
        vec!["frobnicate"],
    ] {
        let out = w.run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
}

fn rotation_with_overlap(b: Backend) {
    let w = warden(b);
    let first = w.ok(&["keys", "rotate"]).trim().to_string();
    let second = w.ok(&["keys", "rotate", "--alg", "ES256"]).trim().to_string();
    let jwks: Value = serde_json::from_str(&w.ok(&["keys", "jwks"])).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&first.as_str()) && kids.contains(&second.as_str()),
        "both published: {kids:?}"
    );
    assert_eq!(
        header_kid(&w.issue(&[])),
        first,
        "the new key is published before it signs"
    );
    let list: Value = serde_json::from_str(&w.ok(&["keys", "list", "--json"])).unwrap();
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "pending"]);
    // A second pending key is refused; the active key cannot be retired.
    assert_eq!(code(&w.run(&["keys", "rotate"])), 1);
    let out = w.run(&["keys", "retire", &first]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("active signing key"), "{}", stderr(&out));
    // Cancelling the pending key withdraws it from the JWKS.
    w.ok(&["keys", "retire", &second]);
    let jwks: Value = serde_json::from_str(&w.ok(&["keys", "jwks"])).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    // An immediate rotation signs at once and keeps the old key published (overlap).
    let third = w.ok(&["keys", "rotate", "--immediately"]).trim().to_string();
    assert_eq!(header_kid(&w.issue(&[])), third);
    let out = w.run(&["keys", "retire", &first]);
    assert_eq!(code(&out), 1, "overlap needs --force");
    assert!(stderr(&out).contains("--force"));
    let old_token_jwks: Value = serde_json::from_str(&w.ok(&["keys", "jwks"])).unwrap();
    assert_eq!(old_token_jwks["keys"].as_array().unwrap().len(), 2);
    w.ok(&["keys", "retire", "--force", &first]);
    assert_eq!(code(&w.run(&["keys", "retire", &first])), 1, "already retired");
}

fn master_key_protection(b: Backend) {
    let w = warden(b);
    w.ok(&["keys", "rotate"]);
    let key_file = w.data_dir().join("master.key");
    let master = std::fs::read_to_string(&key_file).unwrap();
    // A wrong master key is a clear error, never a silent new key.
    let mut wrong = w.command(&["token", "issue", "--sub", "user:a", "--aud", "x"]);
    wrong.env("WARDEN_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let out = wrong.output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("master key"), "{}", stderr(&out));
    // The right key from the environment works.
    let mut right = w.command(&["token", "issue", "--sub", "user:a", "--aud", "x"]);
    right.env("WARDEN_MASTER_KEY", master.trim());
    assert!(right.output().unwrap().status.success());
    // A key file readable by others is refused.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = w.run(&["token", "issue", "--sub", "user:a", "--aud", "x"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A master key is created only for a store that never had one: with
    // the file gone, every command (`serve` and `keys rotate` included)
    // fails instead of writing a new, stray key that stands in the way of
    // restoring the real one.
    let saved = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    for args in [
        vec!["token", "issue", "--sub", "user:a", "--aud", "x"],
        vec!["keys", "sweep"],
        vec!["keys", "rotate"],
        vec!["serve"],
    ] {
        let out = run_bounded(w.command(&args).env("WARDEN_LISTEN", "127.0.0.1:0"));
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("there is none at"), "{}", stderr(&out));
        assert!(stderr(&out).contains("restore master.key"), "{}", stderr(&out));
        assert!(!key_file.exists(), "{args:?} created a master key");
    }
    std::fs::write(&key_file, saved).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Runs `cmd` to its end, killing it (and failing) after 60 s: a command
/// expected to refuse must not start serving instead.
fn run_bounded(cmd: &mut std::process::Command) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("still running after 60 s: {:?}", child.wait_with_output().unwrap());
}

fn secrets_never_printed(b: Backend) {
    let w = warden(b);
    let mut transcript = Vec::new();
    for args in [
        vec!["keys", "rotate"],
        vec!["keys", "rotate", "--alg", "RS256", "--immediately"],
        vec!["keys", "list"],
        vec!["keys", "list", "--json"],
        vec!["keys", "jwks"],
        vec!["config", "check"],
        vec!["token", "issue", "--sub", "svc:trainer", "--aud", "x"],
    ] {
        let out = w.command(&args).env("WARDEN_LOG", "trace").output().unwrap();
        transcript.extend(out.stdout);
        transcript.extend(out.stderr);
    }
    let master = std::fs::read_to_string(w.data_dir().join("master.key")).unwrap();
    let text = String::from_utf8_lossy(&transcript);
    assert!(!text.contains(master.trim()), "master key printed");
    for private in ["\"d\"", "PRIVATE KEY", "\"p\":", "\"q\":"] {
        assert!(!text.contains(private), "private member {private} printed");
    }
    if let Backend::Postgres = b {
        let out = w.run(&["config", "check"]);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("password"));
    }
}

warden_test_support::each_backend! {
    by_backend;
    #[test]
    issue_and_verify_every_alg,
    rejections_exit_1_with_one_line,
    usage_errors_exit_2,
    rotation_with_overlap,
    master_key_protection,
    secrets_never_printed;
}

#[test]
fn help_everywhere() {
    let w = warden(Backend::Sqlite);
    for args in [
        vec!["--help"],
        vec!["keys", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["keys", "retire", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "jwks", "--help"],
        vec!["token", "--help"],
        vec!["token", "issue", "--help"],
        vec!["token", "verify", "--help"],
        vec!["token", "inspect", "--help"],
        vec!["config", "check", "--help"],
    ] {
        let out = w.run(&args);
        assert_eq!(code(&out), 0, "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
}

#[test]
fn inspect_is_marked_unverified() {
    let w = warden(Backend::Sqlite);
    w.ok(&["keys", "rotate"]);
    let token = w.issue(&[]);
    let out: Value = serde_json::from_str(&w.ok(&["token", "inspect", &token])).unwrap();
    assert!(out["UNVERIFIED"].as_str().unwrap().contains("NOT checked"));
    assert_eq!(out["header"]["typ"], "at+jwt");
    assert_eq!(out["claims"]["sub"], "user:alice");
    assert_eq!(code(&w.run(&["token", "inspect", "abc"])), 2);
}

#[test]
fn read_only_commands_need_keys_and_create_nothing() {
    let w = warden(Backend::Sqlite);
    for args in [
        vec!["token", "verify", "--iss", ISS, "--aud", "x", "a.b.c"],
        vec!["keys", "list"],
        vec!["keys", "jwks"],
        vec!["token", "issue", "--sub", "user:a", "--aud", "x"],
    ] {
        let out = w.run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("keys rotate"), "{}", stderr(&out));
        assert!(!w.data_dir().exists(), "{args:?} created the data dir");
    }
}

#[test]
fn rotate_refuses_an_algorithm_verification_would_reject() {
    let w = warden(Backend::Sqlite);
    let out = w
        .command(&["keys", "rotate", "--alg", "RS256"])
        .env("WARDEN_TOKENS_ALGORITHMS", "EdDSA")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("tokens.algorithms"), "{}", stderr(&out));
}

#[test]
fn config_errors_name_the_key() {
    let w = warden(Backend::Sqlite);
    let file = w.dir().join("warden.toml");
    std::fs::write(&file, "[tokens]\nleway = 10\n").unwrap();
    let out = w.run(&["config", "check"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("leway"), "{}", stderr(&out));
    std::fs::write(&file, "[tokens]\nleeway = 90\n").unwrap();
    let out = w.run(&["config", "check"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("tokens.leeway"), "{}", stderr(&out));
    std::fs::write(&file, "[tokens]\nleeway = 10\n").unwrap();
    assert!(w.ok(&["config", "check"]).contains("tokens.leeway = 10"));
    let out = w
        .command(&["config", "check"])
        .env("WARDEN_TOKENS_LEEWAY", "20")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tokens.leeway = 20"),
        "env overrides file"
    );
    let out = w
        .command(&["config", "check"])
        .env("WARDEN_TOKEN_LEEWAY", "20")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("WARDEN_TOKEN_LEEWAY"));
}

/// PyJWT, an independent implementation, verifies Warden's tokens against
/// `warden keys jwks` for every algorithm. `scripts/test` installs PyJWT
/// and sets WARDEN_TEST_REQUIRE_INTEROP, which turns a missing PyJWT into
/// a failure.
#[test]
fn pyjwt_verifies_warden_tokens() {
    let probe = Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        return services::unavailable(
            REQUIRE_INTEROP,
            "PyJWT interoperability",
            "PyJWT with cryptography is not installed (pip install 'pyjwt[crypto]')",
        );
    }
    let w = warden(Backend::Sqlite);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyjwt_verify.py");
    for alg in ALGS {
        w.ok(&["keys", "rotate", "--alg", alg, "--immediately"]);
        let token = w.issue(&[]);
        let jwks = w.dir().join("jwks.json");
        std::fs::write(&jwks, w.ok(&["keys", "jwks"])).unwrap();
        let out = Command::new("python3")
            .arg(&script)
            .args([jwks.to_str().unwrap(), ISS, "inference", &token])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "PyJWT rejected the {alg} token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(claims["sub"], "user:alice", "{alg}");
        // And PyJWT rejects a tampered one, so the check is real.
        let mut bad = token.clone().into_bytes();
        let i = bad.len() - 5;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let out = Command::new("python3")
            .arg(&script)
            .args([
                jwks.to_str().unwrap(),
                ISS,
                "inference",
                std::str::from_utf8(&bad).unwrap(),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{alg}: tampered token accepted by PyJWT");
    }
}
