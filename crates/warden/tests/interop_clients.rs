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

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const AUDIENCE: &str = "inference";
const SUBJECT: &str = "user:alice";
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
    eprintln!("!! SKIPPING the {what} interoperability test: {why}");
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
    eprintln!("interop: installing {name} into {} (first run only)", dir.display());
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

/// `node_modules` with the pinned openid-client and jose, or why not.
fn node_modules(logs: &Path) -> Result<PathBuf, String> {
    let version = probe("node", &["--version"]).ok_or("`node` not found (Debian: apt-get install nodejs)")?;
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!(
            "node {version} is too old: openid-client 6 needs node 20 or later"
        ));
    }
    probe("npm", &["--version"]).ok_or("`npm` not found (Debian: apt-get install npm)")?;
    let src = interop_dir().join("node");
    let manifest = std::fs::read(src.join("package.json")).map_err(|e| e.to_string())?;
    let lock = std::fs::read(src.join("package-lock.json")).map_err(|e| e.to_string())?;
    let name = format!("node-{}", hash_hex(&[&manifest, &lock]));
    let dir = cached_install(&name, |staging| {
        std::fs::write(staging.join("package.json"), &manifest).map_err(|e| e.to_string())?;
        std::fs::write(staging.join("package-lock.json"), &lock).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(staging)
            .env("npm_config_update_notifier", "false");
        let out = run_bounded(cmd, logs, "npm-ci", INSTALL_TIMEOUT).map_err(|e| format!("npm ci: {e}"))?;
        if out.success() {
            Ok(())
        } else {
            Err(format!("npm ci failed: {}", out.describe()))
        }
    })?;
    Ok(dir.join("node_modules"))
}

/// A `--target` dir with the pinned authlib and PyJWT, or why not.
fn python_packages(logs: &Path) -> Result<PathBuf, String> {
    let version = probe(
        "python3",
        &[
            "-c",
            "import sys; assert sys.version_info >= (3, 10); print(sys.version)",
        ],
    )
    .ok_or("`python3` 3.10 or later not found")?;
    probe("python3", &["-m", "pip", "--version"])
        .ok_or("`python3 -m pip` not found (Debian: apt-get install python3-pip)")?;
    let requirements = interop_dir().join("python/requirements.txt");
    let pins = std::fs::read(&requirements).map_err(|e| e.to_string())?;
    let name = format!("python-{}", hash_hex(&[&pins, version.as_bytes()]));
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
        let out = run_bounded(cmd, logs, "pip-install", INSTALL_TIMEOUT).map_err(|e| format!("pip install: {e}"))?;
        if out.success() {
            Ok(())
        } else {
            Err(format!("pip install failed: {}", out.describe()))
        }
    })
}

/// A data dir and the environment every `warden` command of this test gets.
struct Warden {
    dir: tempfile::TempDir,
    listen: Option<SocketAddr>,
}

impl Warden {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.args(args).current_dir(self.dir.path()).stdin(Stdio::null());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WARDEN_") && !k.starts_with("WARDEN_TEST_")) {
            cmd.env_remove(k);
        }
        cmd.env("WARDEN_DATA_DIR", self.dir.path().join("data"));
        if let Some(addr) = self.listen {
            // The issuer is http://<listen>, for `token issue` as for `serve`.
            cmd.env("WARDEN_LISTEN", addr.to_string());
        }
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "warden {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn create_client(&self, args: &[&str]) -> Value {
        let mut all = vec!["client", "create", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

/// `warden serve`, stopped with SIGTERM when dropped.
struct Server {
    child: Option<Child>,
    log: PathBuf,
    issuer: String,
}

impl Server {
    /// Starts `warden serve` on a free loopback port and waits for
    /// `/readyz`. Tries three ports, in case another process takes the one
    /// picked between its probe and the server's bind.
    fn start(w: &mut Warden) -> Server {
        let mut last = String::new();
        for attempt in 0..3 {
            let addr = {
                let probe = TcpListener::bind("127.0.0.1:0").unwrap();
                probe.local_addr().unwrap()
            };
            w.listen = Some(addr);
            let log = w.dir.path().join(format!("serve-{attempt}.log"));
            let child = w
                .command(&["serve"])
                .stdout(std::fs::File::create(w.dir.path().join("serve.stdout")).unwrap())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut server = Server {
                child: Some(child),
                log,
                issuer: format!("http://{addr}"),
            };
            match server.wait_ready(addr) {
                Ok(()) => return server,
                Err(e) => {
                    last = format!("{e}\n{}", server.log_text());
                    drop(server);
                }
            }
        }
        panic!("warden serve did not become ready: {last}");
    }

    fn wait_ready(&mut self, addr: SocketAddr) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("warden serve exited early: {status}"));
            }
            // Ready, and it is this server (its log names the address).
            if http_status(addr, "/readyz") == Some(200)
                && self.log_text().contains(&format!("warden listening on http://{addr}"))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("no 200 from /readyz within {READY_TIMEOUT:?}"))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait (bounded) for a graceful exit; SIGKILL if it
    /// does not come. Returns the exit status when it stopped by itself.
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

impl Drop for Server {
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

fn str_field(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .to_string()
}

#[test]
fn real_oauth_clients_interoperate_with_warden_serve() {
    let mut w = Warden {
        dir: tempfile::tempdir().unwrap(),
        listen: None,
    };
    let logs = w.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();

    let node = match node_modules(&logs) {
        Ok(modules) => Some(modules),
        Err(why) => {
            unavailable("Node openid-client/jose", &why);
            None
        }
    };
    let python = match python_packages(&logs) {
        Ok(pkgs) => Some(pkgs),
        Err(why) => {
            unavailable("Python authlib/PyJWT", &why);
            None
        }
    };
    if node.is_none() && python.is_none() {
        return;
    }

    // Clients, registered with the CLI before the server starts.
    let service = w.create_client(&[
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
    ]);
    let agent = w.create_client(&[
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
    ]);
    let interop_py = interop_dir().join("python/interop.py");
    let key_dir = w.dir.path().join("client-keys");
    if let Some(pkgs) = &python {
        // private_key_jwt clients: the script generates the key pairs and
        // Warden registers only their public JWKS.
        let mut cmd = Command::new("python3");
        cmd.arg(&interop_py).arg("keygen").arg(&key_dir).env("PYTHONPATH", pkgs);
        let out = run_bounded(cmd, &logs, "python-keygen", CLIENT_TIMEOUT).unwrap();
        assert!(out.success(), "python keygen failed: {}", out.describe());
        for (name, file) in [("signer-eddsa", "eddsa"), ("signer-es256", "es256")] {
            let jwks = key_dir.join(format!("{file}.jwks.json"));
            let record = w.create_client(&[
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
            ]);
            assert!(
                record.get("client_secret").is_none(),
                "a private_key_jwt client got a secret"
            );
        }
    }

    let mut server = Server::start(&mut w);
    let issuer = server.issuer.clone();
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
        let run_dir = w.dir.path().join("node");
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
