//! Real third-party OAuth clients against a real `warden serve` on a
//! random loopback port: Node's `openid-client` (discovery,
//! client_credentials, refresh, token exchange, revocation, introspection;
//! tokens verified by `jose` through the served JWKS) and Python's
//! `authlib` (client_credentials with client_secret_basic and
//! client_secret_post and with private_key_jwt on EdDSA and ES256 keys,
//! assertion replay refused; tokens verified by PyJWT through the served
//! JWKS). The scripts live in `tests/interop/{node,python}` at the
//! repository root.
//!
//! Their packages are installed from npm and PyPI with the versions pinned
//! there (`npm ci`, `pip install --target`) into
//! `<target dir>/interop-cache/`, keyed by a hash of the pin files, so
//! later runs reuse them. When node, npm, python3 or pip is missing, or an
//! install fails, the test fails if `WARDEN_TEST_REQUIRE_INTEROP` is set
//! (`scripts/test` sets it) and otherwise skips that client with a loud
//! message.
//!
//! SQLite store only: the OAuth surface is the same on both backends,
//! whose differences the storage and CLI suites cover.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod peers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use peers::run_bounded;
use serde_json::Value;
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;
use warden_test_support::services::{self, REQUIRE_INTEROP as REQUIRE_VAR};

const AUDIENCE: &str = "inference";
const SUBJECT: &str = "user:alice";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

fn interop_dir() -> PathBuf {
    peers::repo_root().join("tests/interop")
}

/// `node_modules` with the pinned openid-client and jose, or why not.
fn node_modules(logs: &Path) -> Result<PathBuf, String> {
    let major = peers::node_major()?;
    if major < 20 {
        return Err(format!(
            "node {major} is too old: openid-client 6 needs node 20 or later"
        ));
    }
    peers::npm_ci_cached(&interop_dir().join("node"), "node", logs, INSTALL_TIMEOUT)
}

/// A `--target` dir with the pinned authlib and PyJWT, or why not.
fn python_packages(logs: &Path) -> Result<PathBuf, String> {
    peers::pip_install_cached(
        &interop_dir().join("python/requirements.txt"),
        "python",
        10,
        "the pinned authlib needs it",
        logs,
        INSTALL_TIMEOUT,
    )
}

/// `warden client create --json ARGS`: the client record.
fn create_client(w: &Warden, args: &[&str]) -> Value {
    let mut all = vec!["client", "create", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&w.ok(&all)).unwrap()
}

fn str_field(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .to_string()
}

#[test]
fn real_oauth_clients_interoperate_with_warden_serve() {
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite);
    let logs = w.path("logs");
    std::fs::create_dir_all(&logs).unwrap();

    let node = match node_modules(&logs) {
        Ok(modules) => Some(modules),
        Err(why) => {
            services::unavailable(REQUIRE_VAR, "Node openid-client/jose interoperability", &why);
            None
        }
    };
    let python = match python_packages(&logs) {
        Ok(pkgs) => Some(pkgs),
        Err(why) => {
            services::unavailable(REQUIRE_VAR, "Python authlib/PyJWT interoperability", &why);
            None
        }
    };
    if node.is_none() && python.is_none() {
        return;
    }

    // Clients, registered with the CLI before the server starts.
    let service = create_client(
        &w,
        &[
            "--name",
            "trainer",
            "--kind",
            "service",
            "--scope",
            "inference.invoke training.run",
            "--role",
            "ml-engineer",
            "--audience",
            AUDIENCE,
            "--grant",
            "client_credentials",
            "--grant",
            "refresh_token",
        ],
    );
    let agent = create_client(
        &w,
        &[
            "--name",
            "helper",
            "--kind",
            "agent",
            "--scope",
            "inference.invoke",
            "--audience",
            AUDIENCE,
            "--grant",
            "token_exchange",
            "--grant",
            "refresh_token",
        ],
    );
    let interop_py = interop_dir().join("python/interop.py");
    let key_dir = w.dir().join("client-keys");
    if let Some(pkgs) = &python {
        // private_key_jwt clients: the script generates the key pairs and
        // Warden registers only their public JWKS.
        let mut cmd = Command::new("python3");
        cmd.arg(&interop_py).arg("keygen").arg(&key_dir).env("PYTHONPATH", pkgs);
        let out = run_bounded(cmd, &logs, "python-keygen", CLIENT_TIMEOUT).unwrap();
        assert!(out.success(), "python keygen failed: {}", out.describe());
        for (name, file) in [("signer-eddsa", "eddsa"), ("signer-es256", "es256")] {
            let jwks = key_dir.join(format!("{file}.jwks.json"));
            let record = create_client(
                &w,
                &[
                    "--name",
                    name,
                    "--kind",
                    "service",
                    "--scope",
                    "inference.invoke",
                    "--audience",
                    AUDIENCE,
                    "--auth",
                    "private_key_jwt",
                    "--jwks",
                    jwks.to_str().unwrap(),
                ],
            );
            assert!(
                record.get("client_secret").is_none(),
                "a private_key_jwt client got a secret"
            );
        }
    }

    let mut server = w.start(&["serve"]);
    let issuer = server.base();
    eprintln!("interop: warden serve ready at {issuer}");
    let subject_token = w
        .ok(&[
            "token",
            "issue",
            "--sub",
            SUBJECT,
            "--aud",
            AUDIENCE,
            "--scope",
            "inference.invoke",
            "--ttl",
            "600",
        ])
        .trim()
        .to_string();

    let common = [
        ("INTEROP_ISSUER", issuer.clone()),
        ("INTEROP_AUDIENCE", AUDIENCE.to_string()),
        ("INTEROP_SERVICE_CLIENT_ID", str_field(&service, "client_id")),
        ("INTEROP_SERVICE_CLIENT_SECRET", str_field(&service, "client_secret")),
    ];
    let mut failures = Vec::new();

    if let Some(modules) = &node {
        // The script runs from a scratch dir whose node_modules links to
        // the cached install, so ESM resolution finds the pinned packages.
        let run_dir = w.dir().join("node");
        std::fs::create_dir_all(&run_dir).unwrap();
        std::fs::copy(interop_dir().join("node/interop.mjs"), run_dir.join("interop.mjs")).unwrap();
        std::fs::copy(interop_dir().join("node/package.json"), run_dir.join("package.json")).unwrap();
        std::os::unix::fs::symlink(modules, run_dir.join("node_modules")).unwrap();
        let mut cmd = Command::new("node");
        cmd.arg("interop.mjs")
            .current_dir(&run_dir)
            .envs(common.iter().cloned())
            .env("INTEROP_AGENT_CLIENT_ID", str_field(&agent, "client_id"))
            .env("INTEROP_AGENT_CLIENT_SECRET", str_field(&agent, "client_secret"))
            .env("INTEROP_SUBJECT", SUBJECT)
            .env("INTEROP_SUBJECT_TOKEN", &subject_token);
        let out = run_bounded(cmd, &logs, "node-interop", CLIENT_TIMEOUT).unwrap();
        eprintln!("{}{}", out.stdout, out.stderr);
        if !out.success() || !out.stdout.contains("all checks passed") {
            failures.push(format!("node openid-client/jose: {}", out.describe()));
        }
    }

    if let Some(pkgs) = &python {
        let mut cmd = Command::new("python3");
        cmd.arg(&interop_py)
            .arg("run")
            .env("PYTHONPATH", pkgs)
            .env("PYTHONNOUSERSITE", "1")
            .envs(common.iter().cloned())
            .env("INTEROP_EDDSA_CLIENT_ID", "signer-eddsa")
            .env("INTEROP_ES256_CLIENT_ID", "signer-es256")
            .env("INTEROP_KEY_DIR", &key_dir);
        let out = run_bounded(cmd, &logs, "python-interop", CLIENT_TIMEOUT).unwrap();
        eprintln!("{}{}", out.stdout, out.stderr);
        if !out.success() || !out.stdout.contains("all checks passed") {
            failures.push(format!("python authlib/PyJWT: {}", out.describe()));
        }
    }

    let status = server.stop();
    let log = server.log_text();
    assert!(
        failures.is_empty(),
        "interoperability failures:\n{}\n--- warden serve log\n{log}",
        failures.join("\n\n")
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "warden serve did not stop cleanly on SIGTERM ({status:?}):\n{log}"
    );
    assert!(
        log.contains("warden stopped"),
        "no graceful shutdown in the log:\n{log}"
    );
}
