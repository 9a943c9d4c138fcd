//! The real `warden` binary, run as a user would.
//!
//! A [`Warden`] is an installation in a temp dir of its own: a data dir
//! (`<dir>/data`), a config file when the test writes one
//! (`<dir>/warden.toml`), a PostgreSQL schema on [`Backend::Postgres`], and
//! the environment every command gets. Commands see only that
//! environment (and `PATH`): never the caller's `WARDEN_*` variables.
//!
//! - CLI commands: [`Warden::command`], [`Warden::run`], [`Warden::ok`]
//!   (success required, stdout returned), [`Warden::create_client`],
//!   [`Warden::audit_events`], in the temp dir as working directory.
//! - `warden serve`: [`Warden::start`] (or [`Warden::launch`], to add
//!   environment, a fixed address or a name) starts it on a free loopback
//!   port (`WARDEN_LISTEN`) and returns a [`Server`] once it is ready: its
//!   banner (`warden listening on http://ADDR`) names the address and
//!   `GET /readyz` answers 200, polled, within 60 s. When the process
//!   exits before that (another process took the port between the pick
//!   and the bind), the launch tries up to two more ports. The server's
//!   stdout and stderr go to files in the temp dir
//!   ([`Server::log_text`]) and every failure message shows them. Later
//!   CLI commands get the same `WARDEN_LISTEN`, so the issuer they derive
//!   is the server's.
//! - Dropping a [`Server`] kills the process (SIGKILL);
//!   [`Server::stop`] stops it as an orchestrator would (SIGTERM, then a
//!   bounded wait). Dropping the [`Warden`] drops its schema and removes
//!   its temp dir; drop its servers first (declare them after it).
//!
//! ```no_run
//! use warden_test_support::binary::Warden;
//! use warden_test_support::db::Backend;
//!
//! let bin = "path/to/warden"; // env!("CARGO_BIN_EXE_warden") in crates/warden/tests
//! let mut w = Warden::new(bin, Backend::Sqlite).env("WARDEN_LOG", "error");
//! w.write_config("[tokens]\nleeway = 0\n");
//! let secret = w.create_client(&["--name", "app", "--kind", "service", "--scope", "x"]);
//! let mut server = w.start(&["serve"]);
//! let token = w.ok(&["token", "issue", "--sub", "user:a", "--aud", &server.base(), "--scope", "x"]);
//! assert!(server.stop().is_some_and(|s| s.success()), "{}", server.log_text());
//! # let _ = (secret, token);
//! ```

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::db::{Backend, PgSchema};
use crate::net;

/// How long a launch waits for readiness by default.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Server::stop`] waits for an exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often readiness and exits are polled.
const POLL: Duration = Duration::from_millis(25);
/// Ports a launch tries when the server exits before it is ready.
const ATTEMPTS: usize = 3;

/// A `warden` installation in a temp dir, and the environment of every
/// command run against it.
#[derive(Debug)]
pub struct Warden {
    bin: PathBuf,
    backend: Backend,
    env: Vec<(String, String)>,
    listen: Option<SocketAddr>,
    launched: usize,
    schema: Option<PgSchema>,
    dir: tempfile::TempDir,
}

impl Warden {
    /// A fresh installation of the binary at `bin` on `backend`: a temp
    /// dir with the data dir `<dir>/data` (`WARDEN_DATA_DIR`), and on
    /// PostgreSQL a fresh schema (`WARDEN_DATABASE_URL`,
    /// `WARDEN_DATABASE_SCHEMA`), dropped with the installation.
    pub fn new(bin: impl AsRef<Path>, backend: Backend) -> Warden {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let mut w = Warden {
            bin: bin.as_ref().to_path_buf(),
            backend,
            env: Vec::new(),
            listen: None,
            launched: 0,
            schema: None,
            dir,
        };
        let data = w.dir.path().join("data");
        w.set_env("WARDEN_DATA_DIR", data.display().to_string());
        if backend == Backend::Postgres {
            let schema = PgSchema::fresh();
            w.set_env("WARDEN_DATABASE_URL", schema.url());
            w.set_env("WARDEN_DATABASE_SCHEMA", schema.name());
            w.schema = Some(schema);
        }
        w
    }

    /// With `key=value` in every command's environment.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Warden {
        self.set_env(key, value);
        self
    }

    /// Sets `key=value` in every later command's environment.
    pub fn set_env(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.env.push((key.to_owned(), value)),
        }
    }

    /// Writes `toml` to `<dir>/warden.toml` and points every later command
    /// at it (`WARDEN_CONFIG`); returns its path. Leave `listen` out: the
    /// launch sets it.
    pub fn write_config(&mut self, toml: &str) -> PathBuf {
        let path = self.path("warden.toml");
        std::fs::write(&path, toml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self.set_env("WARDEN_CONFIG", path.display().to_string());
        path
    }

    /// The temp dir: the commands' working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The data dir (`WARDEN_DATA_DIR`).
    pub fn data_dir(&self) -> PathBuf {
        self.var("WARDEN_DATA_DIR")
            .map_or_else(|| self.path("data"), PathBuf::from)
    }

    /// The backend it was made for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Its PostgreSQL schema, `None` on SQLite.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_ref().map(PgSchema::name)
    }

    /// The database URL the commands use: `WARDEN_DATABASE_URL`, or the
    /// SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        self.var("WARDEN_DATABASE_URL")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir().join("warden.db").display()))
    }

    /// The address of the last server started, which later commands get
    /// as `WARDEN_LISTEN`.
    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen
    }

    fn var(&self, key: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `warden ARGS` in the temp dir, with only this installation's
    /// environment (and `PATH`), stdin closed.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(addr) = self.listen {
            cmd.env("WARDEN_LISTEN", addr.to_string());
        }
        cmd
    }

    /// Runs `warden ARGS` to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", self.bin.display()))
    }

    /// Runs `warden ARGS` with `stdin` as its standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", self.bin.display()));
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin.as_bytes())
                .expect("writing to the command's stdin");
        }
        child.wait_with_output().expect("waiting for the command")
    }

    /// Runs `warden ARGS`, requires exit 0, and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "warden {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 on stdout")
    }

    /// `warden client create ARGS` (which must succeed): the secret it
    /// prints (`client_secret: …`).
    pub fn create_client(&self, args: &[&str]) -> String {
        let mut all = vec!["client", "create"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        out.lines()
            .find_map(|l| l.strip_prefix("client_secret: "))
            .unwrap_or_else(|| panic!("no client_secret in the output of {all:?}:\n{out}"))
            .to_owned()
    }

    /// The bodies of every audit event of type `kind`, oldest first (from
    /// `warden audit query --type KIND --json`, which must succeed).
    pub fn audit_events(&self, kind: &str) -> Vec<Value> {
        self.ok(&["audit", "query", "--type", kind, "--limit", "100000000", "--json"])
            .lines()
            .map(|line| {
                let event: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"));
                let body = event
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("no body in {event}"));
                serde_json::from_str(body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {body}"))
            })
            .collect()
    }

    /// A launch of `warden ARGS` (normally `serve`), to adjust before
    /// [`Launch::start`].
    pub fn launch(&mut self, args: &[&str]) -> Launch<'_> {
        Launch {
            warden: self,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
            addr: None,
            name: None,
            ready_timeout: READY_TIMEOUT,
            ready_path: "/readyz".to_owned(),
        }
    }

    /// Starts `warden ARGS` on a free loopback port and waits until it is
    /// ready: see [`Launch::start`].
    pub fn start(&mut self, args: &[&str]) -> Server {
        self.launch(args).start()
    }
}

/// A process about to be started by [`Warden::launch`].
#[derive(Debug)]
#[must_use = "a launch does nothing until `start`"]
pub struct Launch<'a> {
    warden: &'a mut Warden,
    args: Vec<String>,
    env: Vec<(String, String)>,
    addr: Option<SocketAddr>,
    name: Option<String>,
    ready_timeout: Duration,
    ready_path: String,
}

impl Launch<'_> {
    /// With `key=value` in this process's environment (over the
    /// installation's).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// On `addr` rather than a free port (a restart on the same address):
    /// one attempt only.
    pub fn on(mut self, addr: SocketAddr) -> Self {
        self.addr = Some(addr);
        self
    }

    /// Named `name` in messages and log file names (default `serve`).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Waits up to `timeout` for readiness (default 60 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Ready when `GET path` answers 200 (default `/readyz`).
    pub fn ready_path(mut self, path: &str) -> Self {
        self.ready_path = path.to_owned();
        self
    }

    /// Starts the process with `WARDEN_LISTEN` set to a free loopback
    /// address, its stdout and stderr in `<dir>/<name>-<n>.stdout` and
    /// `.log`, and waits (polling) until its banner names that address
    /// and `GET /readyz` answers 200. When it exits first, tries another
    /// port, three in all; panics with its log when it does not become
    /// ready.
    pub fn start(self) -> Server {
        let name = self.name.clone().unwrap_or_else(|| "serve".to_owned());
        let attempts = if self.addr.is_some() { 1 } else { ATTEMPTS };
        let mut failures = Vec::new();
        for _ in 0..attempts {
            let addr = self.addr.unwrap_or_else(net::free_addr);
            self.warden.launched += 1;
            let n = self.warden.launched;
            let stdout = self.warden.path(&format!("{name}-{n}.stdout"));
            let stderr = self.warden.path(&format!("{name}-{n}.log"));
            let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
            let mut cmd = self.warden.command(&args);
            for (k, v) in &self.env {
                cmd.env(k, v);
            }
            cmd.env("WARDEN_LISTEN", addr.to_string())
                .stdout(std::fs::File::create(&stdout).expect("creating the stdout file"))
                .stderr(std::fs::File::create(&stderr).expect("creating the log file"));
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("starting {} {args:?}: {e}", self.warden.bin.display()));
            let mut server = Server {
                name: name.clone(),
                addr,
                child: Some(child),
                stdout,
                stderr,
            };
            match server.wait_ready(&self.ready_path, self.ready_timeout) {
                Ok(()) => {
                    self.warden.listen = Some(addr);
                    return server;
                }
                Err(Unready::Exited(status)) => {
                    failures.push(format!(
                        "on {addr}: exited ({status}) before it was ready\n{}",
                        server.log_text()
                    ));
                }
                Err(Unready::TimedOut) => {
                    failures.push(format!(
                        "on {addr}: not ready (banner and GET {} = 200) within {:?}\n{}",
                        self.ready_path,
                        self.ready_timeout,
                        server.log_text()
                    ));
                    break;
                }
            }
        }
        panic!(
            "{name} ({:?}) did not become ready:\n{}",
            self.args,
            failures.join("\n---\n")
        );
    }
}

/// Why a server is not ready.
enum Unready {
    Exited(ExitStatus),
    TimedOut,
}

/// A running `warden` process started by [`Launch::start`]; killed
/// (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Server {
    name: String,
    addr: SocketAddr,
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Server {
    fn wait_ready(&mut self, path: &str, timeout: Duration) -> Result<(), Unready> {
        let deadline = Instant::now() + timeout;
        let banner = format!("warden listening on http://{}", self.addr);
        loop {
            if let Some(status) = self.exited() {
                return Err(Unready::Exited(status));
            }
            if self.log_text().contains(&banner) && net::http_status(self.addr, path) == Some(200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Unready::TimedOut);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Its name (given to [`Launch::named`], default `serve`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`: its base URL (and, unless configured otherwise, its
    /// issuer).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything it has written to stderr so far (the banner and the log).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Everything it has written to stdout so far.
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Its exit status, if it has exited (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends `signal` (as `kill` takes it: `-TERM`, `-KILL`, `-HUP`, …)
    /// and returns at once.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .stdin(Stdio::null())
                .status();
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it as an orchestrator would: SIGTERM, then up to 30 s for it
    /// to exit (draining, flushing the audit log), then SIGKILL. The exit
    /// status when it exited by itself; `None` when it had to be killed or
    /// was already stopped.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.stop_within(STOP_TIMEOUT)
    }

    /// As [`Server::stop`], waiting up to `timeout` after SIGTERM.
    pub fn stop_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.as_ref()?;
        if let Some(status) = self.exited() {
            self.child = None;
            return Some(status);
        }
        self.signal("-TERM");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(POLL);
        }
        self.kill();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
