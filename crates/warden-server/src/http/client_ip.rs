//! The client's address when Warden runs behind load balancers: the TCP
//! peer, unless the peer is a configured trusted proxy (`trusted_proxies`),
//! in which case `X-Forwarded-For` is read from the right, skipping trusted
//! proxies, and the first address that is not one is the client.
//!
//! Only trusted hops are believed: a client cannot claim another address
//! by sending its own `X-Forwarded-For`, since the proxy appends the real
//! peer after it and the walk stops at the first untrusted address. A
//! malformed entry stops the walk at the last address known to be real.
//! The result names the caller in failed-authentication limits and in
//! audit events.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

/// The TCP peer axum recorded for a request, if any (none when a router
/// is called without a listener, as in tests).
pub fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The client of a request (the unspecified address when no peer is
/// known).
pub fn of_request(parts: &Parts, trusted: &[IpNet]) -> IpAddr {
    client_ip(
        peer(parts).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        &parts.headers,
        trusted,
    )
}

/// The client behind `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    fn xff(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let lb: Vec<IpNet> = ["10.0.0.0/8".parse(), "127.0.0.1/32".parse()]
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        // Directly connected client: its header is ignored.
        assert_eq!(client_ip(ip("203.0.113.9"), &xff(&["1.2.3.4"]), &lb), ip("203.0.113.9"));
        // Through the balancer: the address it appended.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &xff(&["203.0.113.9"]), &lb),
            ip("203.0.113.9")
        );
        // A spoofed entry to the left of the real one is not believed.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &xff(&["6.6.6.6, 203.0.113.9"]), &lb),
            ip("203.0.113.9")
        );
        // Two trusted hops, split over two header lines.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &xff(&["198.51.100.7", "10.1.2.3"]), &lb),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last real address.
        assert_eq!(client_ip(ip("10.0.0.5"), &xff(&["nonsense"]), &lb), ip("10.0.0.5"));
        // No trusted proxies configured: always the peer.
        assert_eq!(client_ip(ip("10.0.0.5"), &xff(&["203.0.113.9"]), &[]), ip("10.0.0.5"));
        // Only trusted hops: the leftmost of them.
        assert_eq!(client_ip(ip("10.0.0.5"), &xff(&["10.0.0.9"]), &lb), ip("10.0.0.9"));
    }
}
