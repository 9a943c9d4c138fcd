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

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn interop_dir() -> PathBuf {
    repo_root().join("tests/interop")
}

/// `<target dir>/interop-cache`: the binary is `<target dir>/<profile>/warden`.
fn cache_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_warden"));
    let target = bin
        .parent()
        .and_then(Path::parent)
        .expect("the binary lives in <target>/<profile>/");
    target.join("interop-cache")
}

fn required() -> bool {
    std::env::var_os("WARDEN_TEST_REQUIRE_INTEROP").is_some()
}

/// A client cannot run here: a failure when the interop tests are
/// required, a loud skip otherwise.
fn unavailable(what: &str, why: &str) {
    assert!(
        !required(),
        "{what} is required (WARDEN_TEST_REQUIRE_INTEROP is set) but unavailable: {why}"
    );
    eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!! SKIPPING the {what} gateway test: {why}");
    eprintln!("!! ./scripts/test installs what it needs and makes this a failure.");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
}

/// A command's outcome: `None` status when it ran past its timeout (and
/// was killed).
struct Outcome {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "timed out and was killed".into(),
        };
        format!("{status}\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` with stdin closed and its output in files under `logs`,
/// killing it after `timeout`. `Err` when it cannot be started.
fn run_bounded(mut cmd: Command, logs: &Path, name: &str, timeout: Duration) -> std::io::Result<Outcome> {
    let out_path = logs.join(format!("{name}.stdout"));
    let err_path = logs.join(format!("{name}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?);
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Ok(Outcome {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// Output of `program args` when it runs and succeeds.
fn probe(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn hash_hex(parts: &[&[u8]]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    ctx.finish().as_ref().iter().take(8).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Installs into `<cache>/<name>` once: `install` fills a staging dir that
/// is renamed into place only when it succeeded, so a present dir is
/// complete and concurrent runs do not see half an install.
fn cached_install(name: &str, install: impl FnOnce(&Path) -> Result<(), String>) -> Result<PathBuf, String> {
    let cache = cache_dir();
    let dir = cache.join(name);
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("creating {}: {e}", cache.display()))?;
    let staging = cache.join(format!("{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("creating {}: {e}", staging.display()))?;
    eprintln!("gateway sdk: installing {name} into {} (first run only)", dir.display());
    if let Err(e) = install(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if std::fs::rename(&staging, &dir).is_err() {
        // Another run installed the same pins first.
        let _ = std::fs::remove_dir_all(&staging);
    }
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!("{} missing after install", dir.display()))
    }
}

/// `node_modules` with the pinned MCP SDK, or why not.
fn mcp_node_modules(logs: &Path) -> Result<PathBuf, String> {
    let version = probe("node", &["--version"]).ok_or("`node` not found (Debian: apt-get install nodejs)")?;
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!("node {version} is too old: the test needs node 20 or later"));
    }
    probe("npm", &["--version"]).ok_or("`npm` not found (Debian: apt-get install npm)")?;
    let src = interop_dir().join("node-mcp");
    let manifest = std::fs::read(src.join("package.json")).map_err(|e| e.to_string())?;
    let lock = std::fs::read(src.join("package-lock.json")).map_err(|e| e.to_string())?;
    let name = format!("node-mcp-{}", hash_hex(&[&manifest, &lock]));
    let dir = cached_install(&name, |staging| {
        std::fs::write(staging.join("package.json"), &manifest).map_err(|e| e.to_string())?;
        std::fs::write(staging.join("package-lock.json"), &lock).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(staging)
            .env("npm_config_update_notifier", "false");
        let out = run_bounded(cmd, logs, "npm-ci-mcp", INSTALL_TIMEOUT).map_err(|e| format!("npm ci: {e}"))?;
        if out.success() {
            Ok(())
        } else {
            Err(format!("npm ci failed: {}", out.describe()))
        }
    })?;
    Ok(dir.join("node_modules"))
}

/// A `--target` dir with the pinned openai SDK, or why not.
fn openai_packages(logs: &Path) -> Result<PathBuf, String> {
    let version = probe(
        "python3",
        &[
            "-c",
            "import sys; assert sys.version_info >= (3, 11); print(sys.version)",
        ],
    )
    .ok_or("`python3` 3.11 or later not found (the pinned openai SDK needs it)")?;
    probe("python3", &["-m", "pip", "--version"])
        .ok_or("`python3 -m pip` not found (Debian: apt-get install python3-pip)")?;
    let requirements = interop_dir().join("python/requirements-gateway.txt");
    let pins = std::fs::read(&requirements).map_err(|e| e.to_string())?;
    let name = format!("python-gateway-{}", hash_hex(&[&pins, version.as_bytes()]));
    cached_install(&name, |staging| {
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(["--only-binary=:all:", "--target"])
        .arg(staging)
        .arg("-r")
        .arg(&requirements);
        let out =
            run_bounded(cmd, logs, "pip-install-gateway", INSTALL_TIMEOUT).map_err(|e| format!("pip install: {e}"))?;
        if out.success() {
            Ok(())
        } else {
            Err(format!("pip install failed: {}", out.describe()))
        }
    })
}

/// `warden serve --demo` in a temporary data dir, stopped with SIGTERM
/// when dropped.
struct Demo {
    dir: tempfile::TempDir,
    child: Option<Child>,
    log: PathBuf,
    addr: SocketAddr,
}

impl Demo {
    fn command(dir: &Path, addr: SocketAddr, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.args(args).current_dir(dir).stdin(Stdio::null());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WARDEN_") && !k.starts_with("WARDEN_TEST_")) {
            cmd.env_remove(k);
        }
        cmd.env("WARDEN_DATA_DIR", dir.join("data"));
        // The issuer is http://<listen>.
        cmd.env("WARDEN_LISTEN", addr.to_string());
        cmd
    }

    /// Starts on a free loopback port and waits for `/readyz`. Tries three
    /// ports, in case another process takes the one picked between its
    /// probe and the server's bind.
    fn start() -> Demo {
        let mut dir = tempfile::tempdir().unwrap();
        let mut last = String::new();
        for attempt in 0..3 {
            let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
            let log = dir.path().join(format!("serve-{attempt}.log"));
            let child = Demo::command(dir.path(), addr, &["serve", "--demo"])
                .stdout(std::fs::File::create(dir.path().join("serve.stdout")).unwrap())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut demo = Demo {
                dir,
                child: Some(child),
                log,
                addr,
            };
            match demo.wait_ready() {
                Ok(()) => return demo,
                Err(e) => {
                    last = format!("{e}\n{}", demo.log_text());
                    let _ = demo.stop();
                    dir = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
                }
            }
        }
        panic!("warden serve --demo did not become ready: {last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("warden serve exited early: {status}"));
            }
            // Ready, and it is this server (its log names the address).
            if http_status(self.addr, "/readyz") == Some(200)
                && self
                    .log_text()
                    .contains(&format!("warden listening on http://{}", self.addr))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("no 200 from /readyz within {READY_TIMEOUT:?}"))
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
            ("GATEWAY_URL", self.base()),
            ("DEMO_APP_ID", "demo-app".into()),
            ("DEMO_APP_SECRET", self.secret("APP_SECRET")),
            ("DEMO_AGENT_ID", "demo-agent".into()),
            ("DEMO_AGENT_SECRET", self.secret("AGENT_SECRET")),
        ]
    }

    fn logs(&self) -> PathBuf {
        let logs = self.dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        logs
    }

    /// The access decisions in the audit log, as JSON.
    fn decisions(&self) -> Vec<Value> {
        let out = Demo::command(
            self.dir.path(),
            self.addr,
            &[
                "audit",
                "query",
                "--type",
                "access_decision",
                "--limit",
                "10000",
                "--json",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "audit query: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// SIGTERM, then wait (bounded) for a graceful exit; SIGKILL if it
    /// does not come.
    fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdin(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Status code of `GET path` on `addr`, with short timeouts.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    let text = std::str::from_utf8(&head).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
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
        Err(why) => return unavailable("Python openai SDK", &why),
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
        Err(why) => return unavailable("Node MCP SDK", &why),
    };
    // The script runs from a scratch dir whose node_modules links to the
    // cached install, so ESM resolution finds the pinned packages.
    let run_dir = demo.dir.path().join("node-mcp");
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
        return unavailable("demo walk-through", "`bash` or `curl` not found");
    }
    let script = demo.walkthrough();
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script]).current_dir(demo.dir.path());
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
    let stopped = demo.stop();
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
