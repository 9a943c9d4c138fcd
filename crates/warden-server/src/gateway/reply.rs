//! Every gateway error, and the one place it becomes a response.
//!
//! Status, code and headers come from [`ApiError`] (RFC 6750 challenges,
//! `Retry-After`, `Cache-Control: no-store`); the body takes the route's
//! shape:
//!
//! | kind     | body |
//! |----------|------|
//! | `http`   | `{"error": CODE, "error_description": TEXT}` |
//! | `openai` | `{"error": {"message": TEXT, "type": TYPE, "param": null, "code": CODE}}` |
//! | `mcp`    | `{"jsonrpc": "2.0", "id": ID, "error": {"code": N, "message": CODE, "data": {"error_description": TEXT}}}` |
//!
//! JSON-RPC codes: -32600 for a malformed request (400), -32001 for
//! authentication and authorization failures (401, 403), -32002 for rate
//! limiting (429), -32603 for Warden's or the upstream's failures (5xx).
//! The id is the request's when the body was read, `null` otherwise.
//!
//! A call that needs a person's approval (`approval_required`) is 403 on
//! HTTP and OpenAI routes, with an `approval` member beside the error; on
//! MCP routes it is a JSON-RPC error with code -32003 in an HTTP 200 (so
//! that MCP clients report it as the tool's error, not a transport
//! failure), the approval in `error.data.approval`.
//!
//! A denial's body never says why: the deciding policies go to the audit
//! log.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::extract::ExtractError;
use super::forward::{HeaderError, UpstreamError};
use super::route::PathError;
use crate::error::{ApiError, AuthError};
use crate::options::RouteKind;

/// Why the gateway answered instead of the upstream.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// No route matches.
    #[error("no route matches the request")]
    NoRoute,
    /// The path could resolve elsewhere upstream.
    #[error(transparent)]
    BadPath(#[from] PathError),
    /// The bearer token was refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The token lacks a scope of the route.
    #[error("the token lacks `{0}`")]
    InsufficientScope(String),
    /// No resource id could be read.
    #[error(transparent)]
    BadRequest(#[from] ExtractError),
    /// The authorizer denied the request.
    #[error("the request is not allowed")]
    Forbidden,
    /// Over the route's rate limit; retry after this many seconds.
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    /// The shared rate limiter is unreachable and fails closed (`rate_limit.redis_fallback = "deny"`).
    #[error("rate limits cannot be checked (the shared limit store is unreachable); the request was not forwarded")]
    RateLimiterUnavailable,
    /// The audit log cannot be written, so nothing was forwarded.
    #[error("the audit log cannot be written; the request was not forwarded")]
    AuditUnavailable,
    /// The upstream failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The verified identity cannot be sent upstream.
    #[error(transparent)]
    Identity(#[from] HeaderError),
    /// The policies allow the call only with a person's approval: asked
    /// for; the approval request (id, `auth_req_id`, what, who, where).
    #[error("this call needs a person's approval; it was asked for")]
    ApprovalRequired(Box<Value>),
    /// An approval token that does not let this call through.
    #[error("{0}")]
    ApprovalRefused(String),
    /// A call that needs approval with a body longer than the prefix the
    /// gateway reads (its digest could not be taken without buffering).
    #[error("a call that needs approval must have a body of at most {0} bytes")]
    ApprovalBodyTooLarge(usize),
    /// Approvals cannot be stored or read now.
    #[error("approvals cannot be asked for now; the request was not forwarded")]
    ApprovalUnavailable,
}

impl From<super::limit::Refusal> for GatewayError {
    fn from(refusal: super::limit::Refusal) -> Self {
        match refusal {
            super::limit::Refusal::Limited(secs) => GatewayError::RateLimited(secs),
            super::limit::Refusal::Unavailable => GatewayError::RateLimiterUnavailable,
        }
    }
}

impl GatewayError {
    fn api_error(&self) -> ApiError {
        let plain = |status, code| ApiError {
            status,
            code,
            description: self.to_string(),
            challenge: None,
            retry_after: None,
            dpop_nonce: None,
        };
        match self {
            GatewayError::NoRoute => ApiError::not_found(self.to_string()),
            GatewayError::BadPath(_) | GatewayError::BadRequest(_) => ApiError::invalid_request(self.to_string()),
            GatewayError::Auth(e) => e.clone().into(),
            GatewayError::InsufficientScope(needed) => ApiError::insufficient_scope(&format!("the `{needed}` scope")),
            GatewayError::Forbidden => plain(StatusCode::FORBIDDEN, "forbidden"),
            GatewayError::RateLimited(secs) => ApiError {
                retry_after: Some(*secs),
                ..plain(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            },
            GatewayError::AuditUnavailable | GatewayError::RateLimiterUnavailable => {
                ApiError::unavailable(self.to_string())
            }
            GatewayError::Upstream(UpstreamError::Timeout) => plain(StatusCode::GATEWAY_TIMEOUT, "gateway_timeout"),
            GatewayError::Upstream(_) => plain(StatusCode::BAD_GATEWAY, "bad_gateway"),
            GatewayError::Identity(_) => ApiError::internal(self.to_string()),
            GatewayError::ApprovalRequired(_) => ApiError::approval_required(self.to_string()),
            GatewayError::ApprovalRefused(_) => ApiError::access_denied(self.to_string()),
            GatewayError::ApprovalBodyTooLarge(_) => plain(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
            GatewayError::ApprovalUnavailable => ApiError::unavailable(self.to_string()),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.api_error().status
    }

    /// The response for a route of `kind`; `jsonrpc_id` is the MCP
    /// request's id, when the body was read.
    pub fn reply(&self, kind: RouteKind, jsonrpc_id: Option<&Value>) -> Response {
        let api = self.api_error();
        let approval = match self {
            GatewayError::ApprovalRequired(a) => Some(a.as_ref().clone()),
            _ => None,
        };
        let body = match (kind, approval) {
            (RouteKind::Http, None) => return api.into_response(),
            (RouteKind::Http, Some(approval)) => json!({
                "error": api.code,
                "error_description": api.description,
                "approval": approval,
            }),
            (RouteKind::Openai, approval) => {
                let mut body = json!({"error": {
                    "message": api.description,
                    "type": openai_type(api.status),
                    "param": null,
                    "code": api.code,
                }});
                if let (Some(approval), Some(obj)) = (approval, body.as_object_mut()) {
                    obj.insert("approval".into(), approval);
                }
                body
            }
            (RouteKind::Mcp, None) => json!({
                "jsonrpc": "2.0",
                "id": jsonrpc_id.cloned().unwrap_or(Value::Null),
                "error": {
                    "code": jsonrpc_code(api.status),
                    "message": api.code,
                    "data": {"error_description": api.description},
                },
            }),
            (RouteKind::Mcp, Some(approval)) => {
                // A JSON-RPC error in an HTTP 200: the tool's answer, not a
                // failure of the transport.
                let body = json!({
                    "jsonrpc": "2.0",
                    "id": jsonrpc_id.cloned().unwrap_or(Value::Null),
                    "error": {
                        "code": crate::approvals::JSONRPC_APPROVAL_REQUIRED,
                        "message": api.code,
                        "data": {"error_description": api.description, "approval": approval},
                    },
                });
                let mut response = axum::Json(body).into_response();
                response.headers_mut().insert(
                    axum::http::header::CACHE_CONTROL,
                    axum::http::HeaderValue::from_static("no-store"),
                );
                return response;
            }
        };
        let mut response = api.into_response();
        *response.body_mut() = Body::from(body.to_string());
        response.headers_mut().remove(axum::http::header::CONTENT_LENGTH);
        response
    }
}

/// OpenAI's error `type` for a status.
fn openai_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

/// The JSON-RPC error code for a status.
fn jsonrpc_code(status: StatusCode) -> i64 {
    match status.as_u16() {
        400 => -32600,
        401 | 403 => -32001,
        429 => -32002,
        _ => -32603,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    async fn body(r: Response) -> Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn shapes_per_kind() {
        let denied = GatewayError::Forbidden;
        let http = denied.reply(RouteKind::Http, None);
        assert_eq!(http.status(), 403);
        assert_eq!(
            body(http).await,
            json!({"error": "forbidden", "error_description": "the request is not allowed"})
        );

        let openai = denied.reply(RouteKind::Openai, None);
        assert_eq!(openai.headers()[header::CONTENT_TYPE], "application/json");
        let b = body(openai).await;
        assert_eq!(
            (b["error"]["type"].as_str(), b["error"]["code"].as_str()),
            (Some("permission_error"), Some("forbidden"))
        );
        assert!(b["error"]["param"].is_null());

        let mcp = denied.reply(RouteKind::Mcp, Some(&json!(7)));
        assert_eq!(mcp.status(), 403);
        let b = body(mcp).await;
        assert_eq!(b["jsonrpc"], "2.0");
        assert_eq!(b["id"], 7);
        assert_eq!(b["error"]["code"], -32001);
        assert_eq!(b["error"]["message"], "forbidden");
    }

    #[tokio::test]
    async fn approval_required_per_kind() {
        let asked = GatewayError::ApprovalRequired(Box::new(json!({"id": "apr_1"})));
        let mcp = asked.reply(RouteKind::Mcp, Some(&json!("x")));
        assert_eq!(mcp.status(), 200, "an MCP tool error, not a transport failure");
        let b = body(mcp).await;
        assert_eq!(
            (
                b["id"].as_str(),
                b["error"]["code"].as_i64(),
                b["error"]["message"].as_str()
            ),
            (Some("x"), Some(-32003), Some("approval_required"))
        );
        assert_eq!(b["error"]["data"]["approval"]["id"], "apr_1");
        let http = asked.reply(RouteKind::Http, None);
        assert_eq!(http.status(), 403);
        let b = body(http).await;
        assert_eq!(
            (b["error"].as_str(), b["approval"]["id"].as_str()),
            (Some("approval_required"), Some("apr_1"))
        );
        let openai = asked.reply(RouteKind::Openai, None);
        assert_eq!(openai.status(), 403);
        let b = body(openai).await;
        assert_eq!(b["error"]["code"], "approval_required");
        assert_eq!(b["approval"]["id"], "apr_1");
        let refused = GatewayError::ApprovalRefused("the approval was already used".into()).reply(RouteKind::Mcp, None);
        assert_eq!(refused.status(), 403);
        assert_eq!(body(refused).await["error"]["code"], -32001);
        assert_eq!(GatewayError::ApprovalBodyTooLarge(10).status(), 413);
    }

    #[tokio::test]
    async fn statuses_and_headers() {
        let r = GatewayError::InsufficientScope("inference.invoke".into()).reply(RouteKind::Mcp, None);
        assert_eq!(r.status(), 403);
        let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.contains("error=\"insufficient_scope\"") && challenge.contains("inference.invoke"));
        assert!(body(r).await["id"].is_null());

        let r = GatewayError::RateLimited(3).reply(RouteKind::Openai, None);
        assert_eq!(
            (r.status().as_u16(), r.headers()[header::RETRY_AFTER].to_str().unwrap()),
            (429, "3")
        );

        let r = GatewayError::RateLimiterUnavailable.reply(RouteKind::Openai, None);
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        let b = body(r).await;
        let message = b["error"]["message"].as_str().unwrap();
        assert!(message.contains("rate limits cannot be checked"), "{message}");

        let r = GatewayError::Auth(AuthError::Revoked).reply(RouteKind::Http, None);
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );

        let r = GatewayError::Upstream(UpstreamError::Timeout).reply(RouteKind::Http, None);
        assert_eq!(r.status(), 504);
        assert_eq!(body(r).await["error"], "gateway_timeout");
        let r = GatewayError::Upstream(UpstreamError::Connect).reply(RouteKind::Http, None);
        assert_eq!(r.status(), 502);
        assert_eq!(body(r).await["error"], "bad_gateway");
    }
}
