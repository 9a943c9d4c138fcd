//! Helpers for the tests that drive real third-party programs (node, npm,
//! pip, Chromium) against the real `warden` binary: bounded runs with their
//! output in files, probes for installed tools, and a cache of pinned npm
//! and pip installs under the target dir. The binary itself, the "required
//! here, skipped loudly elsewhere" rule and the ports are
//! `warden_test_support`'s.
//!
//! Shared by `tests/interop_clients.rs`, `tests/gateway_sdk.rs`,
//! `tests/dashboard_browser.rs` and `tests/oidc_provider.rs` (`mod
//! peers;`); [`oidc`] is the test OpenID Connect identity provider. Each
//! test crate uses a subset, hence `dead_code` is allowed.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod oidc;
pub mod people;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
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

/// A `--target` dir with the packages pinned in `requirements` installed
/// by pip (binary wheels only), cached under `<prefix>-<hash of the pins
/// and the Python version>`, or why not. Needs python3 3.`min_minor` or
/// later (`needed_by` says why, in the message when it is older).
pub fn pip_install_cached(
    requirements: &Path,
    prefix: &str,
    min_minor: u32,
    needed_by: &str,
    logs: &Path,
    timeout: Duration,
) -> Result<PathBuf, String> {
    let check = format!("import sys; assert sys.version_info >= (3, {min_minor}); print(sys.version)");
    let version = probe("python3", &["-c", &check])
        .ok_or_else(|| format!("`python3` 3.{min_minor} or later not found ({needed_by})"))?;
    probe("python3", &["-m", "pip", "--version"])
        .ok_or("`python3 -m pip` not found (Debian: apt-get install python3-pip)")?;
    let pins = std::fs::read(requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    let name = format!("{prefix}-{}", hash_hex(&[&pins, version.as_bytes()]));
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
        .arg(requirements);
        let out = run_bounded(cmd, logs, &format!("{prefix}-pip-install"), timeout)
            .map_err(|e| format!("pip install: {e}"))?;
        if out.success() {
            Ok(())
        } else {
            Err(format!("pip install failed: {}", out.describe()))
        }
    })
}

/// `tests/browser`: the Playwright scenarios and their pinned
/// `playwright-core`.
pub fn browser_dir() -> PathBuf {
    repo_root().join("tests/browser")
}

/// The Chromium to drive: `$CHROMIUM`, else Debian's.
pub fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Node with `playwright-core` installed (into the cache, bounded), and
/// Chromium; the install's dir, or why not.
pub fn browser_tools(logs: &Path) -> Result<PathBuf, String> {
    let major = node_major()?;
    if major < 20 {
        return Err(format!(
            "node {major} is too old: playwright-core needs node 20 or later"
        ));
    }
    let chromium = chromium();
    probe(&chromium, &["--version"])
        .ok_or_else(|| format!("`{chromium}` does not run (Debian: apt-get install chromium chromium-driver)"))?;
    npm_ci_cached(&browser_dir(), "browser-node", logs, Duration::from_secs(300))
}
