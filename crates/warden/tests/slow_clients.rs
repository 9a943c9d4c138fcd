//! Slow and vanished clients against the real `warden serve` (SQLite in a
//! temp dir, a free loopback port): a client that sends half a request
//! head is cut after `server.header_read_timeout`, a kept-alive connection
//! after `server.idle_timeout`; beyond `server.max_connections` new
//! connections wait instead of exhausting the process; and SIGTERM's drain
//! ends after `server.shutdown_grace` even while a client holds a
//! connection open, with the last audit checkpoint signed.
//!
//! Every wait here is bounded; the deadlines are many times the configured
//! timeouts, so they tell "closed by Warden" from "held open" without
//! timing anything.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use warden_test_support::binary::{Server, Warden};
use warden_test_support::db::Backend;

/// Far past every timeout these tests configure (1 s, 2 s): only a
/// connection Warden never closes takes this long.
const PATIENCE: Duration = Duration::from_secs(20);

/// A server with the test's limits: heads within `header_read_timeout`
/// seconds, idle 2 s, `max_connections`, a 2 s drain. The installation
/// is returned beside it (declared first, dropped last).
fn start(header_read_timeout: u64, max_connections: usize) -> (Warden, Server) {
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite).env("WARDEN_LOG", "warn");
    w.write_config(&format!(
        "[server]\nheader_read_timeout = {header_read_timeout}\nidle_timeout = 2\nmax_connections = {max_connections}\n\
         shutdown_grace = 2\n\n[audit]\ncheckpoint_interval = 3600\n"
    ));
    let server = w.start(&["serve"]);
    (w, server)
}

/// The status line of `GET path` on a fresh connection, if one is answered.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines().next().map(str::to_owned)
}

/// A connection that sent half a request head and nothing more.
fn slowloris(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n").unwrap();
    s
}

/// Waits (bounded) for the server to close `s`: a read of 0 bytes, or a
/// reset. False if it is still open after [`PATIENCE`].
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 1024];
    let started = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408-style answer or leftovers of a response: keep reading.
            Ok(_) if started.elapsed() < PATIENCE => {}
            Ok(_) => return false,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn half_sent_heads_and_idle_connections_are_closed() {
    let (_w, server) = start(1, 64);
    let addr = server.addr();
    let mut slow: Vec<TcpStream> = (0..20).map(|_| slowloris(addr)).collect();
    let mut silent = TcpStream::connect(addr).unwrap();
    // A complete request on a kept-alive connection, then silence.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    for (i, s) in slow.iter_mut().enumerate() {
        assert!(
            closed_by_server(s),
            "half-sent head #{i} still open:\n{}",
            server.log_text()
        );
    }
    assert!(
        closed_by_server(&mut silent),
        "a connection that sent nothing is still open"
    );
    assert!(
        closed_by_server(&mut idle),
        "an idle kept-alive connection is still open"
    );
    assert_eq!(get(addr, "/healthz").as_deref(), Some("HTTP/1.1 200 OK"));
}

#[test]
fn beyond_the_cap_connections_wait_and_the_server_keeps_answering() {
    let (_w, server) = start(1, 4);
    let addr = server.addr();
    // Four slow clients take every slot; a fifth connection waits in the
    // backlog and is served once the header timeout frees a slot.
    let mut slow: Vec<TcpStream> = (0..4).map(|_| slowloris(addr)).collect();
    let started = Instant::now();
    let answer = get(addr, "/healthz");
    assert_eq!(answer.as_deref(), Some("HTTP/1.1 200 OK"), "{}", server.log_text());
    eprintln!("a fifth connection was served after {:?}", started.elapsed());
    for s in &mut slow {
        assert!(closed_by_server(s));
    }
    // Many more than the cap at once: the process never runs out of
    // anything, and answers once they are gone.
    let mut crowd: Vec<TcpStream> = (0..12).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for s in &mut crowd {
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    }
    for s in &mut crowd {
        assert!(closed_by_server(s));
    }
    assert_eq!(get(addr, "/readyz").as_deref(), Some("HTTP/1.1 200 OK"));
}

#[test]
fn a_client_that_never_leaves_cannot_hold_the_drain() {
    // Heads may take an hour here: only the drain deadline ends the
    // connection the client holds.
    let (w, mut server) = start(3600, 64);
    // The log holds the first key's event, not yet checkpointed.
    let holder = slowloris(server.addr());
    let status = server.stop_within(PATIENCE);
    let log = server.log_text();
    assert!(
        status.is_some_and(|s| s.success()),
        "warden serve did not stop after its drain deadline while a client held a connection:\n{log}"
    );
    drop(holder);
    assert!(log.contains("warden stopped"), "{log}");
    // The server signed the last checkpoint after its drain (checkpoints
    // are hourly here): the CLI finds nothing new to sign.
    let out = w.run(&["audit", "checkpoint"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no new events"), "{stderr}");
}
