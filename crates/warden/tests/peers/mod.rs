//! Helpers for the tests that drive real third-party programs (node, npm,
//! pip, Chromium) against the real `warden` binary: bounded runs with their
//! output in files, probes for installed tools, a cache of pinned installs
//! under the target dir, the "required here, skipped loudly elsewhere"
//! rule, and `warden serve` as a child process on a free loopback port.
//!
//! Shared by `tests/interop_clients.rs`, `tests/gateway_sdk.rs` and
//! `tests/dashboard_browser.rs` (`mod peers;`). Each test crate uses a
//! subset, hence `dead_code` is allowed.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The target dir: the binary is `<target dir>/<profile>/warden`.
pub fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_warden"));
    bin.parent()
        .and_then(Path::parent)
        .expect("the binary lives in <target>/<profile>/")
        .to_path_buf()
}

/// `<target dir>/interop-cache`, where pinned installs are kept.
pub fn cache_dir() -> PathBuf {
    target_dir().join("interop-cache")
}

/// Whether the environment variable `var` is set (by `scripts/test`), which
/// makes a missing tool a failure rather than a skip.
pub fn required(var: &str) -> bool {
    std::env::var_os(var).is_some()
}

/// `what` cannot run here: a failure when `require_var` is set, a loud
/// skip otherwise.
pub fn unavailable(require_var: &str, what: &str, why: &str) {
    assert!(
        !required(require_var),
        "{what} is required ({require_var} is set) but unavailable: {why}"
    );
    eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!! SKIPPING the {what} test: {why}");
    eprintln!("!! ./scripts/test installs what it needs and makes this a failure.");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
}

/// A command's outcome: `None` status when it ran past its timeout (and
/// was killed).
pub struct Outcome {
    /// The exit status, `None` when it was killed at its timeout.
    pub status: Option<ExitStatus>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Outcome {
    /// Whether it exited with status 0 in time.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Its status and output, for a failure message.
    pub fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "timed out and was killed".into(),
        };
        format!("{status}\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` with stdin closed and its output in files under `logs`,
/// killing it after `timeout`. `Err` when it cannot be started.
pub fn run_bounded(mut cmd: Command, logs: &Path, name: &str, timeout: Duration) -> std::io::Result<Outcome> {
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
pub fn probe(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// 16 hex digits of a SHA-256 over length-prefixed `parts`.
pub fn hash_hex(parts: &[&[u8]]) -> String {
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
pub fn cached_install(name: &str, install: impl FnOnce(&Path) -> Result<(), String>) -> Result<PathBuf, String> {
    let cache = cache_dir();
    let dir = cache.join(name);
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("creating {}: {e}", cache.display()))?;
    let staging = cache.join(format!("{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("creating {}: {e}", staging.display()))?;
    eprintln!("peers: installing {name} into {} (first run only)", dir.display());
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

/// The major version of `node`, or why there is none.
pub fn node_major() -> Result<u32, String> {
    let version = probe("node", &["--version"]).ok_or("`node` not found (Debian: apt-get install nodejs)")?;
    version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("cannot read the node version `{version}`"))
}

/// `node_modules` installed with `npm ci` from the `package.json` and
/// `package-lock.json` in `src`, cached under `<prefix>-<hash of both>`,
/// or why not.
pub fn npm_ci_cached(src: &Path, prefix: &str, logs: &Path, timeout: Duration) -> Result<PathBuf, String> {
    probe("npm", &["--version"]).ok_or("`npm` not found (Debian: apt-get install npm)")?;
    let manifest = std::fs::read(src.join("package.json")).map_err(|e| format!("{}: {e}", src.display()))?;
    let lock = std::fs::read(src.join("package-lock.json")).map_err(|e| format!("{}: {e}", src.display()))?;
    let name = format!("{prefix}-{}", hash_hex(&[&manifest, &lock]));
    let dir = cached_install(&name, |staging| {
        std::fs::write(staging.join("package.json"), &manifest).map_err(|e| e.to_string())?;
        std::fs::write(staging.join("package-lock.json"), &lock).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(staging)
            .env("npm_config_update_notifier", "false");
        let out = run_bounded(cmd, logs, &format!("{prefix}-npm-ci"), timeout).map_err(|e| format!("npm ci: {e}"))?;
        if out.success() {
            Ok(())
        } else {
            Err(format!("npm ci failed: {}", out.describe()))
        }
    })?;
    Ok(dir.join("node_modules"))
}

/// A free loopback address, as the OS picks it (free when picked: another
/// process may still take it before the server binds).
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Status code of `GET path` on `addr`, with short timeouts.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    let text = std::str::from_utf8(&head).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// `warden serve` (or `serve --demo`) as a child process on a loopback
/// port, its stderr in a log file; stopped with SIGTERM when dropped.
pub struct Serve {
    child: Option<Child>,
    log: PathBuf,
    addr: SocketAddr,
    stop_timeout: Duration,
}

impl Serve {
    /// Spawns `command(addr, attempt)` (a `warden serve` command for
    /// `addr`, its stdout already directed) on a free loopback port with
    /// its stderr in `dir/serve-<attempt>.log`, and waits up to
    /// `ready_timeout` for `/readyz`. Tries three ports, in case another
    /// process takes the one picked between its probe and the server's
    /// bind; panics with "`what` did not become ready" after that.
    /// `stop_timeout` bounds the wait for a graceful exit on SIGTERM.
    pub fn start(
        what: &str,
        dir: &Path,
        ready_timeout: Duration,
        stop_timeout: Duration,
        mut command: impl FnMut(SocketAddr, u32) -> Command,
    ) -> Serve {
        let mut last = String::new();
        for attempt in 0..3 {
            let addr = free_port();
            let log = dir.join(format!("serve-{attempt}.log"));
            let child = command(addr, attempt)
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut serve = Serve {
                child: Some(child),
                log,
                addr,
                stop_timeout,
            };
            match serve.wait_ready(ready_timeout) {
                Ok(()) => return serve,
                Err(e) => {
                    last = format!("{e}\n{}", serve.log_text());
                    drop(serve);
                }
            }
        }
        panic!("{what} did not become ready: {last}");
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
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
        Err(format!("no 200 from /readyz within {timeout:?}"))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: its issuer and base URL.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything it has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait (bounded) for a graceful exit; SIGKILL if it
    /// does not come. The exit status when it stopped by itself, `None`
    /// when it had to be killed or was already stopped.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdin(Stdio::null())
            .status();
        let deadline = Instant::now() + self.stop_timeout;
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

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
