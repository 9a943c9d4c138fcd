//! Real AI SDKs through the gateway of a real `warden serve --demo` on a
//! random loopback port (temporary data dir):
//! - the official OpenAI Python SDK (`openai`), with a Warden access token
//!   (client_credentials) as its API key: models listed, a completion
//!   carrying the verified identity, a streamed completion arriving chunk
//!   by chunk, `forbidden-model` refused with `PermissionDeniedError`
//!   (403, OpenAI-shaped), a missing scope and a non-token key refused;
//! - the official MCP SDK client (`@modelcontextprotocol/sdk`, Streamable
//!   HTTP) as the demo agent: initialize, tools listed, `echo` called, and
//!   `search_datasets` (not granted) refused with a JSON-RPC error; a token
//!   without `tools.call` refused at initialize;
//! - the walk-through `warden serve --demo` prints, run as printed by bash
//!   with curl.
//!
//! The scripts live in `tests/interop/python/openai_gateway.py` and
//! `tests/interop/node-mcp/mcp_client.mjs`; their packages are pinned in
//! `requirements-gateway.txt` and `package.json` + `package-lock.json`
//! there, installed into `<target dir>/interop-cache/` keyed by a hash of
//! the pins (as `interop_clients.rs` does). When python3 (3.11 or later),
//! pip, node, npm, bash or curl is missing, or an install fails, the test
//! fails if `WARDEN_TEST_REQUIRE_INTEROP` is set and otherwise skips with
//! a loud message.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod peers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use peers::{probe, run_bounded};
use serde_json::Value;
use warden_test_support::binary::{Server, Warden};
use warden_test_support::db::Backend;
use warden_test_support::services::{self, REQUIRE_INTEROP as REQUIRE_VAR};

const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

fn interop_dir() -> PathBuf {
    peers::repo_root().join("tests/interop")
}

/// `node_modules` with the pinned MCP SDK, or why not.
fn mcp_node_modules(logs: &Path) -> Result<PathBuf, String> {
    let major = peers::node_major()?;
    if major < 20 {
        return Err(format!("node {major} is too old: the test needs node 20 or later"));
    }
    peers::npm_ci_cached(&interop_dir().join("node-mcp"), "node-mcp", logs, INSTALL_TIMEOUT)
}

/// A `--target` dir with the pinned openai SDK, or why not.
fn openai_packages(logs: &Path) -> Result<PathBuf, String> {
    peers::pip_install_cached(
        &interop_dir().join("python/requirements-gateway.txt"),
        "python-gateway",
        11,
        "the pinned openai SDK needs it",
        logs,
        INSTALL_TIMEOUT,
    )
}

/// `warden serve --demo` in a temporary data dir, killed when dropped.
struct Demo {
    /// Declared first, so the server stops before its data dir goes.
    serve: Server,
    w: Warden,
}

impl Demo {
    /// Starts on a free loopback port and waits for `/readyz`.
    fn start() -> Demo {
        let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite);
        let serve = w.launch(&["serve", "--demo"]).named("serve-demo").start();
        Demo { serve, w }
    }

    fn log_text(&self) -> String {
        self.serve.log_text()
    }

    /// A demo client's secret, from the printed walk-through
    /// (`APP_SECRET='…'`).
    fn secret(&self, var: &str) -> String {
        let log = self.log_text();
        let prefix = format!("{var}='");
        log.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix('\''))
            .unwrap_or_else(|| panic!("no {var} in the serve log:\n{log}"))
            .to_owned()
    }

    /// The walk-through's shell lines, from `WARDEN=` to the end.
    fn walkthrough(&self) -> String {
        let log = self.log_text();
        let start = log.find("\nWARDEN=").expect("the walk-through is printed") + 1;
        log[start..].to_owned()
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GATEWAY_URL", self.serve.base()),
            ("DEMO_APP_ID", "demo-app".into()),
            ("DEMO_APP_SECRET", self.secret("APP_SECRET")),
            ("DEMO_AGENT_ID", "demo-agent".into()),
            ("DEMO_AGENT_SECRET", self.secret("AGENT_SECRET")),
        ]
    }

    fn logs(&self) -> PathBuf {
        let logs = self.w.path("logs");
        std::fs::create_dir_all(&logs).unwrap();
        logs
    }

    /// The access decisions in the audit log, as JSON.
    fn decisions(&self) -> Vec<Value> {
        self.w
            .ok(&[
                "audit",
                "query",
                "--type",
                "access_decision",
                "--limit",
                "10000",
                "--json",
            ])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The audited decisions (`allow` / `deny`) of `principal` on `resource`
/// (`Model::"demo-large"`) through `route`.
fn decisions_for(decisions: &[Value], route: &str, principal: &str, resource: &str) -> Vec<String> {
    decisions
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e["body"].as_str()?).ok())
        .filter(|b| b["route"] == route && b["principal"] == principal && b["resource"] == resource)
        .map(|b| b["decision"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Fails with everything needed to see why: each failure, the client's
/// output and the server's log.
fn report(failures: &[String], demo: &Demo) {
    assert!(
        failures.is_empty(),
        "gateway SDK failures:\n{}\n--- warden serve --demo log\n{}",
        failures.join("\n\n"),
        demo.log_text()
    );
}

#[test]
fn openai_python_sdk_through_the_demo_gateway() {
    let demo = Demo::start();
    let logs = demo.logs();
    let pkgs = match openai_packages(&logs) {
        Ok(p) => p,
        Err(why) => return services::unavailable(REQUIRE_VAR, "Python openai SDK gateway", &why),
    };
    let mut cmd = Command::new("python3");
    cmd.arg(interop_dir().join("python/openai_gateway.py"))
        .env("PYTHONPATH", &pkgs)
        .env("PYTHONNOUSERSITE", "1")
        .envs(demo.env());
    let out = run_bounded(cmd, &logs, "python-openai", CLIENT_TIMEOUT).unwrap();
    eprintln!("{}{}", out.stdout, out.stderr);
    let mut failures = Vec::new();
    if !out.success() || !out.stdout.contains("all checks passed") {
        failures.push(format!("python openai SDK: {}", out.describe()));
    }
    // The denial is audited (with the deciding policies the client was not told).
    let decisions = demo.decisions();
    let app = "svc:demo-app";
    let denied = decisions_for(&decisions, "demo-chat", app, r#"Model::"forbidden-model""#);
    if denied != ["deny"] {
        failures.push(format!(
            "audited decisions on forbidden-model: {denied:?}, expected [\"deny\"]"
        ));
    }
    let allowed = decisions_for(&decisions, "demo-chat", app, r#"Model::"demo-large""#);
    if allowed != ["allow"] {
        failures.push(format!(
            "audited decisions on demo-large: {allowed:?}, expected [\"allow\"]"
        ));
    }
    report(&failures, &demo);
}

#[test]
fn mcp_sdk_client_through_the_demo_gateway() {
    let demo = Demo::start();
    let logs = demo.logs();
    let modules = match mcp_node_modules(&logs) {
        Ok(m) => m,
        Err(why) => return services::unavailable(REQUIRE_VAR, "Node MCP SDK gateway", &why),
    };
    // The script runs from a scratch dir whose node_modules links to the
    // cached install, so ESM resolution finds the pinned packages.
    let run_dir = demo.w.dir().join("node-mcp");
    std::fs::create_dir_all(&run_dir).unwrap();
    let src = interop_dir().join("node-mcp");
    std::fs::copy(src.join("mcp_client.mjs"), run_dir.join("mcp_client.mjs")).unwrap();
    std::fs::copy(src.join("package.json"), run_dir.join("package.json")).unwrap();
    std::os::unix::fs::symlink(modules, run_dir.join("node_modules")).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg("mcp_client.mjs").current_dir(&run_dir).envs(demo.env());
    let out = run_bounded(cmd, &logs, "node-mcp", CLIENT_TIMEOUT).unwrap();
    eprintln!("{}{}", out.stdout, out.stderr);
    let mut failures = Vec::new();
    if !out.success() || !out.stdout.contains("all checks passed") {
        failures.push(format!("node MCP SDK: {}", out.describe()));
    }
    let decisions = demo.decisions();
    let agent = "agent:demo-agent";
    let echo = decisions_for(&decisions, "demo-mcp", agent, r#"Tool::"echo""#);
    if echo != ["allow"] {
        failures.push(format!(
            "audited decisions on the echo tool: {echo:?}, expected [\"allow\"]"
        ));
    }
    let search = decisions_for(&decisions, "demo-mcp", agent, r#"Tool::"search_datasets""#);
    if search != ["deny"] {
        failures.push(format!(
            "audited decisions on search_datasets: {search:?}, expected [\"deny\"]"
        ));
    }
    report(&failures, &demo);
}

#[test]
fn the_printed_demo_walkthrough_runs_as_printed() {
    let mut demo = Demo::start();
    let logs = demo.logs();
    if probe("bash", &["--version"]).is_none() || probe("curl", &["--version"]).is_none() {
        return services::unavailable(REQUIRE_VAR, "demo walk-through gateway", "`bash` or `curl` not found");
    }
    let script = demo.walkthrough();
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script]).current_dir(demo.w.dir());
    let out = run_bounded(cmd, &logs, "walkthrough", CLIENT_TIMEOUT).unwrap();
    let text = &out.stdout;
    let mut failures = Vec::new();
    let mut expect = |what: &str, ok: bool| {
        if !ok {
            failures.push(what.to_owned());
        }
    };
    expect("the script runs", out.success());
    expect(
        "2. a model answers, greeting the verified subject",
        text.contains("\"content\":\"Hello svc:demo-app, this is demo-small"),
    );
    expect(
        "3. a stream of chunks ending in [DONE]",
        text.contains("\"object\":\"chat.completion.chunk\"") && text.contains("data: [DONE]"),
    );
    expect(
        "4. forbidden-model is refused with 403",
        text.contains("HTTP/1.1 403") && !text.contains("this is forbidden-model"),
    );
    expect(
        "5. the audit tail shows access decisions",
        text.contains("access_decision"),
    );
    expect("6. the agent's echo answers", text.contains(r#""text":"hi""#));
    expect(
        "6. the agent is refused search_datasets with a JSON-RPC error",
        text.contains(r#""code":-32001"#) && !text.contains("transactions-2025"),
    );
    let stopped = demo.serve.stop();
    assert!(
        failures.is_empty(),
        "walk-through steps failed: {failures:?}\n--- script\n{script}\n--- output\n{}\n--- warden serve --demo log\n{}",
        out.describe(),
        demo.log_text()
    );
    assert!(
        stopped.is_some_and(|s| s.success()) && demo.log_text().contains("warden stopped"),
        "warden serve --demo did not stop cleanly ({stopped:?}):\n{}",
        demo.log_text()
    );
}
