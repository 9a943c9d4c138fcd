//! Serving HTTP/1.1 connections with limits a slow or hostile client cannot
//! get past: how long a request head may take, how long a connection may
//! idle, how many connections are served at once, and how long a shutdown
//! waits for them.
//!
//! Each connection has a watchdog that closes it when:
//! - no complete request head arrived within `header_read_timeout` of the
//!   connection opening, or of the first byte of the next head (a client
//!   sending `POST /oauth/token HTTP/1.1\r\nHost: x\r\n` and nothing more);
//! - it stayed idle between requests for `idle_timeout`;
//! - a response could not be written for `idle_timeout` (a client that
//!   stopped reading). A request that is merely slow to answer (an upstream
//!   thinking) is never cut: request bodies and upstreams have their own
//!   read timeouts.
//!
//! At most `max_connections` are served at once (in all: a dashboard on a
//! listener of its own shares the cap, [`Budget`]); beyond it, new ones wait
//! in the listen backlog until one closes (never the process: file
//! descriptors stay for the store and the upstreams). On shutdown no new
//! connection is accepted, each open one finishes its request in flight
//! and closes, and after `shutdown_grace` the rest are closed, so a
//! client that never leaves cannot hold the drain (and the final audit
//! checkpoint) hostage.
//!
//! hyper's own header-read timer also runs while a kept-alive connection
//! waits for its next request, which would make the idle timeout the
//! header timeout; it is off, and the watchdog keeps the two apart.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::metrics::Metrics;
use crate::options::ConnectionLimits;

/// Longest sleep of a connection's watchdog between two looks at it.
const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// The connection cap of one server, shared by its listeners (the main
/// one and the dashboard's): at most `max_connections` open in all.
#[derive(Debug, Clone)]
pub struct Budget {
    permits: Arc<Semaphore>,
    open: Arc<AtomicUsize>,
    max_connections: usize,
}

impl Budget {
    /// The cap `limits` sets (derived from the open-file limit when unset).
    pub fn new(limits: &ConnectionLimits) -> Self {
        let max_connections = limits.max_connections.unwrap_or_else(default_max_connections).max(1);
        Budget {
            permits: Arc::new(Semaphore::new(max_connections)),
            open: Arc::new(AtomicUsize::new(0)),
            max_connections,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`
/// resolves; `draining` runs once no new connection is accepted. Returns
/// when every connection closed or the drain deadline passed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send,
    draining: impl FnOnce(),
) -> io::Result<()> {
    serve_within(
        listener,
        router,
        limits,
        &Budget::new(&limits),
        metrics,
        shutdown,
        draining,
    )
    .await
}

/// As [`serve`], counting connections against `budget`, which other
/// listeners of the server share.
pub async fn serve_within(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    budget: &Budget,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send,
    draining: impl FnOnce(),
) -> io::Result<()> {
    let max_connections = budget.max_connections;
    tracing::info!(max_connections, addr = ?listener.local_addr().ok(), "serving connections");
    let permits = Arc::clone(&budget.permits);
    let open = Arc::clone(&budget.open);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut warned_full: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        if permits.available_permits() == 0 && warned_full.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            warned_full = Some(Instant::now());
            tracing::warn!(
                max_connections,
                "the connection cap is reached: new connections wait until one closes"
            );
        }
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a connection reset before
                    // it was accepted: never fatal; pause so a persistent
                    // error does not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (router, metrics, open, stopping) = (router.clone(), metrics.clone(), Arc::clone(&open), stopping.clone());
        connections.spawn(async move {
            metrics.connections_open(open.fetch_add(1, Ordering::Relaxed) + 1);
            connection(stream, peer, router, limits, &metrics, stopping).await;
            metrics.connections_open(open.fetch_sub(1, Ordering::Relaxed).saturating_sub(1));
            drop(permit);
        });
    }
    drop(listener);
    draining();
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace = ?limits.shutdown_grace,
            "the drain deadline passed: closing the connections still open"
        );
        for _ in 0..connections.len() {
            metrics.connection_closed("drain_deadline");
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// Serves one connection until it ends, the watchdog closes it, or the
/// drain closes it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    metrics: &Metrics,
    mut stopping: watch::Receiver<bool>,
) {
    let watch = Arc::new(Watch::new(Instant::now()));
    let io = TokioIo::new(Watched {
        inner: stream,
        watch: Arc::clone(&watch),
    });
    let service = {
        let watch = Arc::clone(&watch);
        tower::service_fn(move |request: hyper::Request<Incoming>| {
            let (router, watch) = (router.clone(), Arc::clone(&watch));
            async move {
                let guard = InFlight::start(watch);
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                let response = router.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| Tracked { body, _guard: guard }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let conn = builder.serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut draining = *stopping.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let now = Instant::now();
        let look = watch
            .deadline(&limits)
            .map_or(now + WATCH_PERIOD, |(d, _)| d.min(now + WATCH_PERIOD));
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stopping.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(look) => {
                if let Some((deadline, reason)) = watch.deadline(&limits)
                    && Instant::now() >= deadline
                {
                    tracing::debug!(%peer, reason, "closing the connection");
                    metrics.connection_closed(reason);
                    return;
                }
            }
        }
    }
}

/// What a connection's watchdog knows of it.
#[derive(Debug)]
struct Watch {
    state: Mutex<WatchState>,
}

#[derive(Debug)]
struct WatchState {
    accepted: Instant,
    /// Requests whose response has not been sent in full.
    in_flight: u32,
    /// Whether a request was served (idle, rather than new).
    served: bool,
    /// When the last response was sent in full.
    idle_since: Instant,
    /// When the first byte of a request head arrived, while no request
    /// is in flight.
    head_started: Option<Instant>,
    /// Since when a write of the response has been waiting on the client.
    write_blocked: Option<Instant>,
}

impl Watch {
    fn new(now: Instant) -> Self {
        Watch {
            state: Mutex::new(WatchState {
                accepted: now,
                in_flight: 0,
                served: false,
                idle_since: now,
                head_started: None,
                write_blocked: None,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut WatchState) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    /// When the connection is to be closed, and why; `None` while a
    /// request is answered normally.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        self.with(|s| {
            if s.in_flight > 0 {
                return s.write_blocked.map(|t| (t + limits.idle_timeout, "write_stalled"));
            }
            Some(match s.head_started {
                Some(t) => (t + limits.header_read_timeout, "header_timeout"),
                None if s.served => (s.idle_since + limits.idle_timeout, "idle_timeout"),
                None => (s.accepted + limits.header_read_timeout, "header_timeout"),
            })
        })
    }

    fn read_some(&self) {
        self.with(|s| {
            if s.in_flight == 0 && s.head_started.is_none() {
                s.head_started = Some(Instant::now());
            }
        });
    }

    fn write_pending(&self) {
        self.with(|s| {
            s.write_blocked.get_or_insert_with(Instant::now);
        });
    }

    fn wrote(&self) {
        self.with(|s| s.write_blocked = None);
    }
}

/// A request in flight on its connection, until its response body is
/// sent in full (or dropped).
struct InFlight(Arc<Watch>);

impl InFlight {
    fn start(watch: Arc<Watch>) -> Self {
        watch.with(|s| {
            s.in_flight += 1;
            s.served = true;
            s.head_started = None;
        });
        InFlight(watch)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.with(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight == 0 {
                s.idle_since = Instant::now();
                s.write_blocked = None;
            }
        });
    }
}

/// A response body that ends its request's [`InFlight`] when dropped.
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The client's socket, reporting reads and stalled writes to the watchdog.
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.read_some();
        }
        polled
    }
}

impl Watched {
    fn after_write(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => self.watch.write_pending(),
            Poll::Ready(Ok(n)) if *n > 0 => self.watch.wrote(),
            Poll::Ready(_) => {}
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection cap when none is configured: half of what the open-file
/// limit leaves after 64 descriptors for the store, listeners and logs
/// (each connection may hold one more to an upstream), at least 16.
pub fn default_max_connections() -> usize {
    let soft = open_file_limit().unwrap_or(1024);
    (soft.saturating_sub(64) / 2).clamp(16, 65_536)
}

#[cfg(unix)]
fn open_file_limit() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current.and_then(|n| usize::try_from(n).ok())
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_connections: Some(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_connection_has_a_deadline_unless_answering() {
        let t0 = Instant::now();
        let w = Arc::new(Watch::new(t0));
        let l = limits();
        assert_eq!(
            w.deadline(&l),
            Some((t0 + l.header_read_timeout, "header_timeout")),
            "new"
        );
        let request = InFlight::start(Arc::clone(&w));
        assert_eq!(w.deadline(&l), None, "answering");
        w.write_pending();
        assert_eq!(w.deadline(&l).map(|(_, r)| r), Some("write_stalled"));
        w.wrote();
        assert_eq!(w.deadline(&l), None);
        drop(request);
        assert_eq!(w.deadline(&l).map(|(_, r)| r), Some("idle_timeout"), "kept alive");
        w.read_some();
        assert_eq!(w.deadline(&l).map(|(_, r)| r), Some("header_timeout"), "a head begun");
    }

    #[test]
    fn the_default_cap_leaves_descriptors_for_the_rest() {
        let cap = default_max_connections();
        assert!((16..=65_536).contains(&cap), "{cap}");
        if let Some(limit) = open_file_limit() {
            assert!(cap * 2 + 64 <= limit.max(2 * 16 + 64), "{cap} for {limit}");
        }
    }
}
