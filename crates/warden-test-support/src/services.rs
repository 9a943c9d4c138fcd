//! The services the tests talk to, and what happens when one is missing.
//!
//! PostgreSQL ([`pg_url`], [`postgres_answers`]) is never optional: a test
//! that needs it and cannot reach it fails. Redis, and the third-party
//! tools of the interoperability and browser tests, are optional on a
//! developer's machine and required where `scripts/test` runs. One rule
//! decides, for every `WARDEN_TEST_REQUIRE_*` variable ([`required`]):
//!
//! - set to anything but `0` (and not empty): the service is required,
//!   and its absence fails the test ([`unavailable`] panics);
//! - unset, empty or `0`: a test that cannot run is skipped, with a
//!   printed reason ([`unavailable`] prints it and returns).
//!
//! ```no_run
//! use warden_test_support::services;
//!
//! // Redis's URL, or `None` after a printed skip (or a failure, when
//! // WARDEN_TEST_REQUIRE_REDIS requires Redis).
//! let Some(redis) = services::redis() else { return };
//! println!("using {redis}");
//! ```

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// Makes a missing Redis a failure.
pub const REQUIRE_REDIS: &str = "WARDEN_TEST_REQUIRE_REDIS";
/// Makes a missing interoperability tool (node, npm, python3, pip,
/// PyJWT, bash, curl) or a failed install of its pinned packages a failure.
pub const REQUIRE_INTEROP: &str = "WARDEN_TEST_REQUIRE_INTEROP";
/// Makes a missing browser tool (node, npm, Chromium) a failure.
pub const REQUIRE_BROWSER: &str = "WARDEN_TEST_REQUIRE_BROWSER";

/// How long a probe waits for a connection or an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the environment variable `var` requires its service: set to
/// anything but `0`, and not empty.
pub fn required(var: &str) -> bool {
    requires(std::env::var_os(var).as_deref())
}

/// The rule of [`required`] on a variable's value.
fn requires(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// `what` cannot run here because of `why`: fails the test when `var`
/// requires it ([`required`]), otherwise prints a loud notice that the
/// test is skipped and returns (the caller then returns too).
pub fn unavailable(var: &str, what: &str, why: &str) {
    assert!(
        !required(var),
        "{what} is required ({var} is set) but unavailable: {why}"
    );
    eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!! SKIPPING the {what} test: {why}");
    eprintln!("!! Set {var}=1 to make this a failure; ./scripts/test does, and installs what it needs.");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
}

/// The PostgreSQL the tests use: `WARDEN_TEST_POSTGRES_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn pg_url() -> String {
    std::env::var("WARDEN_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The Redis the tests use: `WARDEN_TEST_REDIS_URL`, default
/// `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("WARDEN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether something accepts connections at the host and port of the
/// PostgreSQL URL `url` (a URL naming no host, such as a Unix socket
/// path, is taken as reachable and left to the connection itself).
pub fn postgres_answers(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| format!("not a PostgreSQL URL: {url}"))?;
    let Some(addr) = authority(rest, 5432) else {
        return Ok(());
    };
    TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .map(drop)
        .map_err(|e| format!("{addr}: {e}"))
}

/// Whether the Redis at `url` answers `PING` (a Redis without a password,
/// as on the test machines).
pub fn redis_answers(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| format!("not a redis:// URL: {url}"))?;
    let addr = authority(rest, 6379).ok_or_else(|| format!("no host in {url}"))?;
    let mut s = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(|e| e.to_string())?;
    s.write_all(b"PING\r\n").map_err(|e| format!("{addr}: {e}"))?;
    let mut answer = [0u8; 7];
    s.read_exact(&mut answer).map_err(|e| format!("{addr}: {e}"))?;
    if &answer == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(format!(
            "{addr} answered {:?} to PING",
            String::from_utf8_lossy(&answer)
        ))
    }
}

/// Redis for a test that needs it: its URL when it answers; otherwise
/// `None` after [`unavailable`] (a printed skip, or a failure when
/// `WARDEN_TEST_REQUIRE_REDIS` requires Redis).
pub fn redis() -> Option<String> {
    let url = redis_url();
    match redis_answers(&url) {
        Ok(()) => Some(url),
        Err(why) => {
            unavailable(REQUIRE_REDIS, "Redis", &format!("no answer at {url}: {why}"));
            None
        }
    }
}

/// The socket address of `[user[:password]@]host[:port][/...]`, if it
/// names a host.
fn authority(rest: &str, default_port: u16) -> Option<SocketAddr> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let hostport = rest.get(..end)?.rsplit('@').next()?;
    if hostport.is_empty() {
        return None;
    }
    let with_port = if hostport.ends_with(']') || !hostport.contains(':') {
        format!("{hostport}:{default_port}")
    } else {
        hostport.to_owned()
    };
    with_port.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_read_as_the_urls_say() {
        let addr = |s: &str, port| authority(s, port).map(|a| a.to_string());
        assert_eq!(
            addr("postgres@127.0.0.1:5432/test", 1).as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(addr("127.0.0.1/test", 5432).as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(addr("u:p@127.0.0.1:6380", 6379).as_deref(), Some("127.0.0.1:6380"));
        assert_eq!(addr("[::1]:7000/0", 6379).as_deref(), Some("[::1]:7000"));
        assert_eq!(addr("/test?host=/run/postgresql", 5432), None);
    }

    #[test]
    fn the_require_rule() {
        let rule = |v: Option<&str>| requires(v.map(std::ffi::OsStr::new));
        assert!(!rule(None), "unset");
        assert!(!rule(Some("")), "empty");
        assert!(!rule(Some("0")), "0");
        assert!(rule(Some("1")));
        assert!(rule(Some("yes")));
    }
}
