//! A refusal sent before the request's body was read closes the
//! connection.
//!
//! Many refusals (no token, a denial, a duplicate `Content-Type`) are
//! answered without reading the body. hyper then cannot reuse the
//! connection and closes it, but a client that did not hear so may send
//! its next request on it and see the connection reset. Answering such a
//! refusal with `Connection: close` tells the client first, as nginx does
//! for requests it refuses before their body.

use axum::extract::Request;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Middleware: an error answer to a request that carried a body gets
/// `Connection: close`.
pub async fn close_after_refusal(request: Request, next: Next) -> Response {
    let has_body = carries_body(request.headers());
    let mut response = next.run(request).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Whether the request announced a body: chunked, or a non-zero length.
fn carries_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING) || headers.get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_announced_by_length_or_chunking() {
        let mut h = HeaderMap::new();
        assert!(!carries_body(&h));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        assert!(!carries_body(&h));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert!(carries_body(&h));
        let mut h = HeaderMap::new();
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert!(carries_body(&h));
    }
}
