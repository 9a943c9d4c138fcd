//! Request ids: one per request to the gateway and to the token service,
//! answered in `X-Warden-Request-Id` and carried by the `tracing` span the
//! request is served in, so that every log line it causes (JSON logs:
//! `span.request_id`) can be tied to the response and, for the gateway,
//! to its audit event.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// The response header naming the request id on Warden's own endpoints
/// (the gateway's name is configurable, with this default).
pub const HEADER: &str = "x-warden-request-id";

/// A random request id: 16 bytes, hex.
pub fn new() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Only for correlation, never for security: a clock-based id will do.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        return format!("{nanos:032x}");
    }
    hex::encode(bytes)
}

/// A request's id, as a request extension for handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware of Warden's own endpoints (token service, registry):
/// serves the request in a span with a fresh `request_id`, hands the id to
/// handlers as a [`RequestId`] extension, and answers it in [`HEADER`].
pub async fn tag(mut request: Request, next: Next) -> Response {
    let id = new();
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("oauth", request_id = %id, endpoint = %request.uri().path());
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let (a, b) = (super::new(), super::new());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
