//! Loopback ports and a bare HTTP probe.
//!
//! [`free_addr`] and [`free_port`] ask the OS for a port nobody listens on:
//! free when picked, though another process may take it before the caller
//! binds it (the launcher in [`crate::binary`] retries on a new port when
//! that happens). The same port serves as "a port with nothing behind it",
//! for an upstream or a Redis that is down. [`http_status`] reads the
//! status of one `GET` without an HTTP client, with short timeouts.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A free loopback address (`127.0.0.1:PORT`), as the OS picks it.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
}

/// A free loopback port: see [`free_addr`]. Nothing listens on it, so it
/// also stands for a service that is down.
pub fn free_port() -> u16 {
    free_addr().port()
}

/// The status code of `GET path` on `addr` (HTTP/1.1, `Connection:
/// close`; an HTTP/1.0 answer will do), or `None` when nothing answers
/// within a couple of seconds.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    // "HTTP/1.x NNN"
    let text = std::str::from_utf8(&head).ok()?;
    text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}
