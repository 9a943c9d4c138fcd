//! The server's shared error types and the one place they become HTTP
//! answers: RFC 6749 §5.2 bodies for the token service, RFC 6750 §3
//! challenges for bearer-protected APIs.
//!
//! Every error a handler returns is an [`ApiError`]; its body is always
//! `{"error": CODE, "error_description": TEXT}` with `Cache-Control:
//! no-store`, and 401s carry `WWW-Authenticate`. Descriptions name the rule
//! that failed, never a credential. Every conversion into an [`ApiError`]
//! is below, so an error means the same status wherever it is raised: a
//! missing registry object is 404, a conflicting change 409, a broken rule
//! 400 or 403, a proof outside the log 400, and storage itself 503 (logged
//! here, never described to the client). The gateway answers in its
//! routes' shapes from these same statuses and codes (`gateway/reply.rs`);
//! the dashboard renders them as pages (`dashboard/page.rs`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warden_jose::JoseError;
use warden_registry::RegistryError;
use warden_store::StoreError;

use crate::audit_sink::AuditSinkError;

/// Why a bearer token (or a dashboard session's token) was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token.
    #[error("a Bearer access token is required")]
    Missing,
    /// It failed verification.
    #[error("the access token is invalid: {0}")]
    Invalid(JoseError),
    /// It was revoked.
    #[error("the access token is revoked")]
    Revoked,
    /// It has no `sub`, `jti` or `client_id`.
    #[error("the access token has no `{0}`")]
    MissingClaim(&'static str),
    /// A single-use approval token presented anywhere but the gateway
    /// route it approves a call on.
    #[error("this token is good only for the one call a person approved, on its gateway route")]
    ApprovalOnly,
    /// A trusted external issuer's token failed verification, or is not
    /// accepted where it was presented.
    #[error("{0}")]
    External(String),
    /// The stated purpose is malformed or contradicts the token's.
    #[error("{0}")]
    Purpose(String),
    /// A DPoP-bound token without its valid proof, or a proof out of place
    /// (RFC 9449 §7); the algorithms proofs may use.
    #[error("{0}")]
    Dpop(crate::dpop::DpopRefusal, warden_jose::AlgorithmSet),
    /// Any other refusal of a token sent with the `DPoP` scheme: answered
    /// the same, with a `DPoP` challenge instead of a `Bearer` one (RFC
    /// 9449 §7.1).
    #[error("{0}")]
    UnderDpop(Box<AuthError>, warden_jose::AlgorithmSet),
}

/// Why a client registration or change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request is invalid; the message says which field.
    #[error("{0}")]
    Invalid(String),
    /// A client with this id exists.
    #[error("client `{0}` already exists")]
    Exists(String),
    /// No such client.
    #[error("no client `{0}`")]
    NotFound(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
}

/// An error answered to an HTTP client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {description}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// RFC 6749 / 6750 / 7009 / 8693 error code.
    pub code: &'static str,
    /// Human-readable reason (no secrets).
    pub description: String,
    /// `WWW-Authenticate` value, for 401s.
    pub challenge: Option<String>,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// `DPoP-Nonce`: the nonce a DPoP proof must carry (RFC 9449 §8, §9).
    pub dpop_nonce: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            description: description.into(),
            challenge: None,
            retry_after: None,
            dpop_nonce: None,
        }
    }

    /// 400 `invalid_request`: a malformed or incomplete request.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 400 with another RFC 6749 §5.2-style code (RFC 9449's
    /// `invalid_dpop_proof`, `use_dpop_nonce`).
    pub fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    /// 401 with a `DPoP` challenge (RFC 9449 §7.1): `code` is
    /// `invalid_dpop_proof`, `use_dpop_nonce` or `invalid_token`; `algs`
    /// the space-separated algorithms proofs may use.
    pub fn dpop_challenge(code: &'static str, description: impl Into<String>, algs: &str) -> Self {
        let description = description.into();
        let mut e = Self::new(StatusCode::UNAUTHORIZED, code, description.clone());
        e.challenge = Some(format!(
            "DPoP realm=\"warden\", error=\"{code}\", error_description=\"{}\", algs=\"{}\"",
            quote_safe(&description),
            quote_safe(algs)
        ));
        e
    }

    /// 401 `invalid_client`: client authentication failed. The challenge
    /// names HTTP Basic, the one header scheme the token endpoint takes
    /// (RFC 6749 §5.2: required when the client used the header, and the
    /// way to say which schemes are supported otherwise).
    pub fn invalid_client(description: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
        e.challenge = Some("Basic realm=\"warden\", charset=\"UTF-8\"".to_owned());
        e
    }

    /// 400 `invalid_grant`: the grant (refresh token, subject token) is
    /// invalid, expired, revoked or another client's.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// 400 `authorization_pending` (RFC 8628 §3.5): nobody answered the
    /// device code yet; poll again after the interval.
    pub fn authorization_pending() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "the person has not answered yet",
        )
    }

    /// 400 `slow_down` (RFC 8628 §3.5): polled before the interval passed;
    /// add 5 seconds to it.
    pub fn slow_down() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "slow_down",
            "polled too fast: wait 5 seconds longer between polls",
        )
    }

    /// 400 `expired_token` (RFC 8628 §3.5): the device code expired.
    pub fn expired_token() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "the device code expired; start again",
        )
    }

    /// 400 `access_denied` (RFC 8628 §3.5): the person refused.
    pub fn device_denied() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "access_denied", "the person refused")
    }

    /// 400 `expired_token` (CIBA §11): the approval request ran out
    /// before a person approved it, or its approval ran out unused.
    pub fn approval_expired() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "the approval request expired; ask again",
        )
    }

    /// 400 `access_denied` (CIBA §11): the person denied the request.
    pub fn approval_denied() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "access_denied",
            "the person denied the request",
        )
    }

    /// 400 `invalid_authorization_details` (RFC 9396 §5): the details are
    /// malformed, of an unknown type, or name what cannot be asked.
    pub fn invalid_authorization_details(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_authorization_details", description)
    }

    /// 400 `invalid_binding_message` (CIBA §13): too long or unprintable.
    pub fn new_invalid_binding_message(max_chars: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_binding_message",
            format!("binding_message must be at most {max_chars} printable characters"),
        )
    }

    /// 403 `access_denied` at the backchannel endpoint (CIBA §13).
    pub fn bc_access_denied(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "access_denied", description)
    }

    /// 403 `approval_required`: the policies allow this only with a
    /// person's approval (`docs/approvals.md`).
    pub fn approval_required(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "approval_required", description)
    }

    /// 400 `unauthorized_client`: the client may not use this grant.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    /// 400 `unsupported_grant_type`.
    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", description)
    }

    /// 400 `invalid_scope`.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// 400 `invalid_target` (RFC 8707 / RFC 8693): an audience or resource
    /// the client may not ask for.
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    /// 400 `unsupported_token_type` (RFC 7009 / RFC 8693).
    pub fn unsupported_token_type(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_token_type", description)
    }

    /// 401 `invalid_token` with a Bearer challenge (RFC 6750 §3.1).
    pub fn invalid_token(description: impl Into<String>) -> Self {
        let description = description.into();
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description.clone());
        e.challenge = Some(format!(
            "Bearer realm=\"warden\", error=\"invalid_token\", error_description=\"{}\"",
            quote_safe(&description)
        ));
        e
    }

    /// 401 with a bare Bearer challenge: no token was sent (RFC 6750 §3.1
    /// says no error code then; the body still says `invalid_token`).
    pub fn missing_token() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a Bearer access token is required",
        );
        e.challenge = Some("Bearer realm=\"warden\"".to_owned());
        e
    }

    /// 403 `insufficient_scope` (RFC 6750 §3.1), naming what would do.
    pub fn insufficient_scope(needed: &str) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this requires {needed}"),
        );
        e.challenge = Some(format!(
            "Bearer realm=\"warden\", error=\"insufficient_scope\", error_description=\"this requires {}\"",
            quote_safe(needed)
        ));
        e
    }

    /// 403 `access_denied`: the policies (or a registry rule) refuse the
    /// request. The description names the action and resource, never the
    /// policies (those are in the audit event).
    pub fn access_denied(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "access_denied", description)
    }

    /// 404 `not_found`.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", description)
    }

    /// 409 `conflict`.
    pub fn conflict(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", description)
    }

    /// 429: too many failed authentications.
    pub fn too_many_failures(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_client",
            "too many failed client authentications; retry later",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 413: the body is larger than the configured cap.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("request body exceeds {limit} bytes"),
        )
    }

    /// 503 `temporarily_unavailable`: storage or the audit log cannot be
    /// written, so nothing was issued (fail closed).
    pub fn unavailable(description: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", description);
        e.retry_after = Some(1);
        e
    }

    /// 500 `server_error`. Log the cause; the client sees only this.
    pub fn internal(description: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", description)
    }
}

/// Removes what cannot appear in a quoted-string of a challenge.
fn quote_safe(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
        .collect()
}

impl From<StoreError> for ApiError {
    /// What the caller can act on keeps its meaning; anything else is
    /// storage failing, logged and answered 503 without detail.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Registry(rule) => rule.into(),
            StoreError::AuditBeyondEnd { .. } | StoreError::Audit(_) | StoreError::InvalidQuery(_) => {
                ApiError::invalid_request(e.to_string())
            }
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::unavailable("storage is unavailable; nothing was changed")
            }
        }
    }
}

impl From<RegistryError> for ApiError {
    /// A registry rule: a malformed object or a stage move the lifecycle
    /// forbids is 400, the four-eyes rule 403, a closed request 409.
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid { .. } | RegistryError::Transition { .. } => {
                ApiError::invalid_request(e.to_string())
            }
            RegistryError::FourEyes(_) => ApiError::access_denied(e.to_string()),
            RegistryError::Closed(_) => ApiError::conflict(e.to_string()),
        }
    }
}

impl From<AuditSinkError> for ApiError {
    /// Fail closed: what was to be recorded is not done.
    fn from(e: AuditSinkError) -> Self {
        tracing::error!(error = %e, "audit append failed; refusing the action");
        ApiError::unavailable("the audit log cannot be written; nothing was issued or changed")
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => ApiError::missing_token(),
            AuthError::Purpose(m) => ApiError::invalid_request(m),
            AuthError::Dpop(refusal, algs) => refusal.resource_error(algs),
            AuthError::UnderDpop(inner, algs) => {
                let mut e = ApiError::from(*inner);
                if e.status == StatusCode::UNAUTHORIZED {
                    let names: Vec<&str> = algs.iter().map(|a| a.as_str()).collect();
                    e.challenge = ApiError::dpop_challenge(e.code, e.description.clone(), &names.join(" ")).challenge;
                }
                e
            }
            other => ApiError::invalid_token(other.to_string()),
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid(m) => ApiError::invalid_request(m),
            ClientError::Exists(_) => ApiError::conflict(e.to_string()),
            ClientError::NotFound(_) => ApiError::not_found(e.to_string()),
            ClientError::Store(s) => s.into(),
            ClientError::Random => ApiError::internal("random generator failed"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(nonce) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            headers.insert(crate::dpop::NONCE_HEADER, nonce);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_header_safe() {
        let e = ApiError::invalid_token("bad \"quote\"\n and \\ newline");
        let c = e.challenge.unwrap();
        assert!(HeaderValue::from_str(&c).is_ok(), "{c}");
        assert!(c.contains("error=\"invalid_token\""));
    }

    #[test]
    fn a_store_error_means_the_same_everywhere() {
        let status = |e: StoreError| ApiError::from(e).status;
        assert_eq!(
            status(StoreError::NotFound("dataset `x`".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(status(StoreError::Conflict("stage moved".into())), StatusCode::CONFLICT);
        assert_eq!(
            status(StoreError::AuditBeyondEnd { requested: 9, size: 3 }),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status(StoreError::Corrupt("x".into())), StatusCode::SERVICE_UNAVAILABLE);
        let unavailable = ApiError::from(StoreError::Corrupt("secret detail".into()));
        assert!(!unavailable.description.contains("secret detail"));
        assert_eq!(
            status(StoreError::Registry(RegistryError::FourEyes("self"))),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn body_and_headers() {
        let r = ApiError::invalid_client("nope").into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            r.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    }
}
