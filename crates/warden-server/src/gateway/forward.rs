//! Forwarding to the upstream: header hygiene (pure functions, tested
//! here) and the streaming proxy itself.
//!
//! # Streaming
//! Neither body is buffered: the request body goes to the upstream as it
//! arrives (after the prefix read for a resource id, sent first and
//! unchanged), and the response body comes back chunk by chunk through
//! `Body::from_stream`, with `X-Accel-Buffering: no` so that a buffering
//! proxy in front of Warden (nginx) passes server-sent events on at once.
//!
//! # Timeouts
//! A connect timeout, and a read timeout that restarts at every read from
//! the upstream. There is deliberately no whole-response timeout: a model
//! may stream for minutes, and only silence means it is stuck. The read
//! timeout also bounds the wait for the response headers, counted from the
//! start of the request (so it must exceed the slowest non-streaming answer
//! plus the upload of the request body).
//!
//! # What the upstream sees
//! - No hop-by-hop headers (`Connection`, `Keep-Alive`, `Proxy-*`, `TE`,
//!   `Trailer`, `Transfer-Encoding`, `Upgrade`, and any header `Connection`
//!   names), so upgrades (WebSocket) are not proxied.
//! - `Host` of the upstream URL; the client's `Host` in `X-Forwarded-Host`,
//!   its address in `X-Forwarded-For` (appended to the chain a trusted
//!   proxy sent; a client's own `X-Forwarded-For` is never passed on), and
//!   `X-Forwarded-Proto` from Warden's public URL (the issuer).
//! - No identity header from the client: every `X-Warden-*` header and any
//!   configured name is removed, then the verified identity is added
//!   ([`IdentityHeaders`]).
//! - No `Authorization` and no `DPoP` proof, unless the route sets
//!   `forward_authorization`.
//! - No redirects followed, no proxy, no decompression: the response is
//!   the upstream's, byte for byte (`Accept: */*` is added when the client
//!   sent no `Accept`).
//!
//! # What the client sees
//! The upstream's answer without hop-by-hop headers, without any
//! `Set-Cookie` aimed at Warden's own cookies (a `warden_` name or a path
//! under the dashboard's `/ui`, which shares Warden's origin), and with
//! `X-Content-Type-Options: nosniff`.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use futures_util::TryStream;

/// Default time allowed to connect to an upstream.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default longest silence from an upstream (per read, not per response).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);

/// The prefix of headers reserved for Warden's verified identity.
const IDENTITY_PREFIX: &str = "x-warden-";

/// Names of the verified identity headers, and client headers to strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    /// The token's subject. Default `X-Warden-Subject`.
    pub subject: HeaderName,
    /// The delegation chain, outermost actor first, comma-separated.
    /// Default `X-Warden-Actor`; absent without delegation.
    pub actor: HeaderName,
    /// The token's scopes, space-separated. Default `X-Warden-Scopes`.
    pub scopes: HeaderName,
    /// Warden's request id. Default `X-Warden-Request-Id`.
    pub request_id: HeaderName,
    /// More client headers to remove (besides `X-Warden-*` and the four above).
    pub strip: Vec<HeaderName>,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            subject: HeaderName::from_static("x-warden-subject"),
            actor: HeaderName::from_static("x-warden-actor"),
            scopes: HeaderName::from_static("x-warden-scopes"),
            request_id: HeaderName::from_static("x-warden-request-id"),
            strip: Vec::new(),
        }
    }
}

/// Client headers that would change how the upstream sees the request
/// (its path, method or client) and are never forwarded: the upstream must
/// serve exactly what was authorized.
const REWRITING: [&str; 9] = [
    "forwarded",
    "x-real-ip",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Whether two header names are one as CGI-style servers see them:
/// `X_Warden_Actor` and `X-Warden-Actor` both become `HTTP_X_WARDEN_ACTOR`,
/// so names are compared with `_` read as `-` (without allocating: this
/// runs for every header of every request).
fn same_name(a: &[u8], b: &[u8]) -> bool {
    let dash = |c: &u8| if *c == b'_' { b'-' } else { *c };
    a.len() == b.len() && a.iter().map(dash).eq(b.iter().map(dash))
}

/// Whether `name` starts with `prefix`, `_` read as `-`.
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| same_name(head, prefix.as_bytes()))
}

impl IdentityHeaders {
    fn is_identity(&self, name: &HeaderName) -> bool {
        let n = name.as_str();
        let same = |other: &str| same_name(other.as_bytes(), n.as_bytes());
        has_prefix(n, IDENTITY_PREFIX)
            || [&self.subject, &self.actor, &self.scopes, &self.request_id]
                .iter()
                .any(|h| same(h.as_str()))
            || self.strip.iter().any(|h| same(h.as_str()))
            || REWRITING.iter().any(|r| same(r))
            || has_prefix(n, "x-forwarded-")
    }
}

/// The verified identity sent upstream.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The token's subject.
    pub subject: &'a str,
    /// The delegation chain, outermost first.
    pub actors: &'a [String],
    /// The token's scopes.
    pub scopes: &'a [String],
    /// Warden's id of this request.
    pub request_id: &'a str,
}

/// Where the request came from, for `X-Forwarded-*`.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The client's address, when known.
    pub peer: Option<IpAddr>,
    /// Whether the peer is one of the configured `trusted_proxies`, whose
    /// `X-Forwarded-For` is passed on (extended with the peer); any other
    /// client's own `X-Forwarded-For` is replaced by its address.
    pub peer_is_proxy: bool,
    /// `http` or `https`: the scheme clients use to reach Warden.
    pub proto: &'a str,
}

/// A header value that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the verified {0} cannot be sent as a header value")]
pub struct HeaderError(pub &'static str);

/// Whether `name` is hop-by-hop (RFC 9110 §7.6.1), or a `Proxy-*` header.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    ) || name.as_str().starts_with("proxy-")
}

/// The headers named by `Connection` (which are hop-by-hop too).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect()
}

/// Removes hop-by-hop headers and those `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_named(headers) {
        headers.remove(name);
    }
    let hop: Vec<HeaderName> = headers.keys().filter(|n| is_hop_by_hop(n)).cloned().collect();
    for name in hop {
        headers.remove(name);
    }
}

fn value(text: &str, what: &'static str) -> Result<HeaderValue, HeaderError> {
    HeaderValue::from_bytes(text.as_bytes()).map_err(|_| HeaderError(what))
}

/// The headers sent upstream for a request that arrived with `incoming`.
pub fn upstream_headers(
    incoming: &HeaderMap,
    names: &IdentityHeaders,
    identity: &Identity<'_>,
    origin: &Origin<'_>,
    forward_authorization: bool,
) -> Result<HeaderMap, HeaderError> {
    let x_forwarded_for = HeaderName::from_static("x-forwarded-for");
    let x_forwarded_host = HeaderName::from_static("x-forwarded-host");
    let x_forwarded_proto = HeaderName::from_static("x-forwarded-proto");
    let connection = connection_named(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 7);
    for (name, v) in incoming {
        let drop = is_hop_by_hop(name)
            || connection.contains(name)
            || names.is_identity(name)
            || *name == header::HOST
            // Warden's server already answered `100-continue`; the upstream
            // gets the body without waiting.
            || *name == header::EXPECT
            || ((*name == header::AUTHORIZATION || name.as_str() == crate::dpop::DPOP_HEADER) && !forward_authorization)
            || *name == x_forwarded_for
            || *name == x_forwarded_host
            || *name == x_forwarded_proto;
        if !drop {
            out.append(name.clone(), v.clone());
        }
    }
    // The chain a trusted proxy sent, then the peer, in one string.
    let mut chain = String::new();
    if origin.peer_is_proxy {
        for hop in incoming
            .get_all(&x_forwarded_for)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            if !chain.is_empty() {
                chain.push_str(", ");
            }
            chain.push_str(hop);
        }
    }
    if let Some(ip) = origin.peer {
        use std::fmt::Write as _;
        if !chain.is_empty() {
            chain.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = write!(chain, "{ip}");
    }
    if !chain.is_empty() {
        out.insert(x_forwarded_for, value(&chain, "client address")?);
    }
    if let Some(host) = incoming.get(header::HOST) {
        out.insert(x_forwarded_host, host.clone());
    }
    out.insert(x_forwarded_proto, value(origin.proto, "scheme")?);
    out.insert(names.subject.clone(), value(identity.subject, "subject")?);
    // Always sent, empty when there is nothing to say, so that no header a
    // client managed to smuggle past the strip can stand in for them.
    out.insert(names.actor.clone(), value(&identity.actors.join(","), "actor chain")?);
    out.insert(names.scopes.clone(), value(&identity.scopes.join(" "), "scopes")?);
    out.insert(names.request_id.clone(), value(identity.request_id, "request id")?);
    Ok(out)
}

/// Prefix of Warden's own cookie names (the dashboard's session and CSRF
/// cookies); an upstream may never set one.
pub const WARDEN_COOKIE_PREFIX: &str = "warden_";

/// Whether an upstream's `Set-Cookie` would reach Warden's own cookies: a
/// name with Warden's prefix, or a path under the dashboard's `/ui`
/// (which shares Warden's origin with every gateway route).
fn touches_warden_cookies(set_cookie: &HeaderValue) -> bool {
    let text = String::from_utf8_lossy(set_cookie.as_bytes()).to_ascii_lowercase();
    let mut parts = text.split(';');
    let name = parts
        .next()
        .and_then(|p| p.split('=').next())
        .unwrap_or_default()
        .trim();
    let ui_path = parts.filter_map(|a| a.trim().strip_prefix("path=")).any(|p| {
        let p = p.trim().trim_matches('"');
        p == "/ui" || p.starts_with("/ui/") || p == "/" && name.starts_with(WARDEN_COOKIE_PREFIX)
    });
    name.starts_with(WARDEN_COOKIE_PREFIX) || ui_path
}

/// The upstream's response headers as sent to the client: hop-by-hop
/// headers and cookies aimed at Warden's own removed, and `nosniff` so a
/// browser never reads an upstream's answer as another type than declared.
pub fn client_headers(mut upstream: HeaderMap) -> HeaderMap {
    strip_hop_by_hop(&mut upstream);
    let cookies: Vec<HeaderValue> = upstream.get_all(header::SET_COOKIE).iter().cloned().collect();
    if cookies.iter().any(touches_warden_cookies) {
        upstream.remove(header::SET_COOKIE);
        for cookie in cookies.into_iter().filter(|c| !touches_warden_cookies(c)) {
            upstream.append(header::SET_COOKIE, cookie);
        }
        tracing::warn!("an upstream tried to set a cookie of Warden's dashboard; removed");
    }
    upstream.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    upstream.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    upstream
}

/// Why the upstream gave no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No connection (refused, unreachable, TLS failed): 502.
    #[error("the upstream cannot be reached")]
    Connect,
    /// Connecting or a read took too long: 504.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// The exchange failed after connecting: 502.
    #[error("the upstream failed to answer")]
    Failed,
}

/// Timeouts of upstream connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardTimeouts {
    /// Time allowed to connect.
    pub connect: Duration,
    /// Longest silence on a read (restarts at every read).
    pub read: Duration,
}

impl Default for ForwardTimeouts {
    fn default() -> Self {
        ForwardTimeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            read: DEFAULT_READ_TIMEOUT,
        }
    }
}

/// The HTTP client that talks to upstreams.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: reqwest::Client,
}

/// A request body for the upstream: none, or a stream of chunks.
pub enum UpstreamBody {
    /// The request has no body (no `Content-Length` or `Transfer-Encoding`).
    Empty,
    /// These bytes, all of it.
    Full(Bytes),
    /// A stream, sent as it arrives.
    Stream(reqwest::Body),
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamBody::Empty => f.write_str("Empty"),
            UpstreamBody::Full(b) => write!(f, "Full({} bytes)", b.len()),
            UpstreamBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl UpstreamBody {
    /// A body streamed from `stream`.
    pub fn stream<S>(stream: S) -> Self
    where
        S: TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        UpstreamBody::Stream(reqwest::Body::wrap_stream(stream))
    }
}

impl Forwarder {
    /// A client with `timeouts`: no proxy, no redirects, no decompression,
    /// no cookies.
    pub fn new(timeouts: ForwardTimeouts) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .tcp_nodelay(true)
            .build()?;
        Ok(Forwarder { client })
    }

    /// Sends the request and streams the response back. `Content-Length`
    /// from the client is kept, so a streamed body keeps its framing.
    pub async fn send(
        &self,
        method: Method,
        url: reqwest::Url,
        headers: HeaderMap,
        body: UpstreamBody,
    ) -> Result<Response, UpstreamError> {
        let mut request = reqwest::Request::new(method, url);
        *request.headers_mut() = headers;
        match body {
            UpstreamBody::Empty => {}
            UpstreamBody::Full(bytes) => *request.body_mut() = Some(reqwest::Body::from(bytes)),
            UpstreamBody::Stream(stream) => *request.body_mut() = Some(stream),
        }
        let mut upstream = self.client.execute(request).await.map_err(classify)?;
        let status = StatusCode::from_u16(upstream.status().as_u16()).map_err(|_| UpstreamError::Failed)?;
        // Taken, not copied: the body stream needs nothing of them.
        let headers = client_headers(std::mem::take(upstream.headers_mut()));
        let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

fn classify(e: reqwest::Error) -> UpstreamError {
    tracing::warn!(error = %e, "upstream request failed");
    if e.is_timeout() {
        UpstreamError::Timeout
    } else if e.is_connect() {
        UpstreamError::Connect
    } else {
        UpstreamError::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn identity<'a>(actors: &'a [String], scopes: &'a [String]) -> Identity<'a> {
        Identity {
            subject: "user:alice",
            actors,
            scopes,
            request_id: "req-1",
        }
    }

    const ORIGIN: Origin<'static> = Origin {
        peer_is_proxy: true,
        peer: Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7))),
        proto: "https",
    };

    #[test]
    fn request_headers_are_cleaned_and_identity_added() {
        let h = incoming(&[
            ("host", "warden.example"),
            ("expect", "100-continue"),
            ("authorization", "Bearer secret"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-warden-subject", "user:root"),
            ("X-Warden-Anything", "spoof"),
            ("x-user", "spoof"),
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-proto", "gopher"),
            ("content-type", "application/json"),
            ("content-length", "12"),
            ("accept", "text/event-stream"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ]);
        let names = IdentityHeaders {
            strip: vec![HeaderName::from_static("x-user")],
            ..IdentityHeaders::default()
        };
        let actors = vec!["agent:bot".to_owned(), "agent:inner".to_owned()];
        let scopes = vec!["a".to_owned(), "b".to_owned()];
        let out = upstream_headers(&h, &names, &identity(&actors, &scopes), &ORIGIN, false).unwrap();
        for gone in [
            "host",
            "expect",
            "authorization",
            "connection",
            "x-secret-hop",
            "keep-alive",
            "proxy-authorization",
            "te",
            "transfer-encoding",
            "upgrade",
            "x-warden-anything",
            "x-user",
        ] {
            assert!(!out.contains_key(gone), "{gone} was forwarded");
        }
        assert_eq!(out["x-warden-subject"], "user:alice");
        assert_eq!(out["x-warden-actor"], "agent:bot,agent:inner");
        assert_eq!(out["x-warden-scopes"], "a b");
        assert_eq!(out["x-warden-request-id"], "req-1");
        assert_eq!(out["x-forwarded-for"], "198.51.100.1, 192.0.2.7");
        assert_eq!(out["x-forwarded-host"], "warden.example");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["content-length"], "12");
        assert_eq!(out["accept"], "text/event-stream");
        assert_eq!(out.get_all("cookie").iter().count(), 2);
        assert_eq!(out.get_all("x-warden-subject").iter().count(), 1);

        // A client that is no trusted proxy does not get to name the client.
        let direct = Origin {
            peer_is_proxy: false,
            ..ORIGIN
        };
        let out = upstream_headers(&h, &names, &identity(&[], &[]), &direct, false).unwrap();
        assert_eq!(out["x-forwarded-for"], "192.0.2.7");

        let kept = upstream_headers(&h, &names, &identity(&[], &[]), &ORIGIN, true).unwrap();
        assert_eq!(kept["authorization"], "Bearer secret");
        // Always present, empty when there is no actor or scope.
        assert_eq!(
            (&kept["x-warden-actor"], &kept["x-warden-scopes"]),
            (&"".parse().unwrap(), &"".parse().unwrap())
        );
    }

    #[test]
    fn upstreams_cannot_set_wardens_cookies() {
        let mut h = HeaderMap::new();
        for c in [
            "warden_session=x; Path=/ui; HttpOnly",
            "WARDEN_CSRF=y",
            "theirs=1; Path=/ui/audit",
            "app=1; Path=/v1; Secure",
            "pref=2",
        ] {
            h.append(header::SET_COOKIE, HeaderValue::from_static(c));
        }
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        let out = client_headers(h);
        let kept: Vec<&str> = out
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(kept, ["app=1; Path=/v1; Secure", "pref=2"]);
        assert_eq!(out["x-content-type-options"], "nosniff");
    }

    #[test]
    fn configured_names_replace_the_defaults() {
        let names = IdentityHeaders {
            subject: HeaderName::from_static("x-user"),
            ..IdentityHeaders::default()
        };
        let h = incoming(&[("x-user", "spoof")]);
        let out = upstream_headers(&h, &names, &identity(&[], &[]), &ORIGIN, false).unwrap();
        assert_eq!(out["x-user"], "user:alice");
        assert!(!out.contains_key("x-warden-subject"));
    }

    #[test]
    fn unsendable_identity_is_an_error() {
        let bad = Identity {
            subject: "user:a\nX-Injected: 1",
            ..identity(&[], &[])
        };
        let e = upstream_headers(&HeaderMap::new(), &IdentityHeaders::default(), &bad, &ORIGIN, false);
        assert_eq!(e, Err(HeaderError("subject")));
    }

    #[test]
    fn response_headers_lose_hop_by_hop_and_gain_no_buffering() {
        let h = incoming(&[
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/event-stream"),
            ("x-request-id", "up-1"),
        ]);
        let out = client_headers(h);
        assert!(!out.contains_key("connection") && !out.contains_key("x-hop"));
        assert!(!out.contains_key("transfer-encoding"));
        assert_eq!(out["content-type"], "text/event-stream");
        assert_eq!(out["x-accel-buffering"], "no");
    }
}
