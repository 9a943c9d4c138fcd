//! `POST /api/v1/admin/revocations`: an administrator revokes any token —
//! a dashboard session, a token the CLI issued, another client's token —
//! where `/oauth/revoke` lets a client revoke only its own.
//!
//! The body names the token (`{"token": "eyJ…"}` or a refresh token
//! `{"token": "wrt_…"}`, whose family goes with it) or only its id
//! (`{"jti": "…"}`, with `"expires_at"` when known; otherwise the
//! revocation is kept for the longest lifetime any token can have). The
//! revocation is recorded in the store first, applied here at once,
//! announced to the other replicas, and audited as `token_revoked` with
//! the administrator named in the reason.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;

use super::AdminState;
use crate::access::Admin;
use crate::error::ApiError;
use crate::http::read_json;
use crate::oauth::grants::hash_refresh;
use crate::options::TOKEN_TTL_CAP;

/// Largest body read.
const MAX_BODY: usize = 16 * 1024;

/// What to revoke.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revocation {
    /// A Warden access token, or a refresh token.
    token: Option<String>,
    /// An access token's id.
    jti: Option<String>,
    /// Its expiry (Unix seconds), with `jti`.
    expires_at: Option<u64>,
}

/// `POST /api/v1/admin/revocations`.
pub async fn revoke<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    Admin(admin): Admin,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: Revocation = read_json(body, MAX_BODY).await?;
    let now = admin.now;
    let app = &state.app;
    let reason = format!("revoked by {}", admin.principal);
    let record = |jti: Option<String>, family: Option<String>| {
        let event = EventKind::TokenRevoked {
            jti,
            family,
            client_id: admin.client_id.clone(),
            reason: reason.clone(),
        };
        async move { app.audit.record(AuditEvent::new(now, event)).await }
    };
    let (jti, exp) = match (request.token, request.jti, request.expires_at) {
        (Some(token), None, None) if token.starts_with("wrt_") => {
            let Some(row) = app.store.find_refresh(&hash_refresh(&token)).await? else {
                return Err(ApiError::not_found("no such refresh token"));
            };
            let revoked = app.store.revoke_family(&row.family.id, now).await?;
            app.revoke(revoked);
            record(None, Some(row.family.id.clone())).await?;
            return Ok(Json(json!({"family": row.family.id})));
        }
        (Some(token), None, None) => {
            let verified = app
                .verify_own(now, |keys| keys.any_audience.verify(&token, now))
                .await
                .map_err(|e| ApiError::invalid_request(format!("`token` is not a live Warden token: {e}")))?;
            let claims = verified.claims();
            let jti = claims
                .jti()
                .ok_or_else(|| ApiError::invalid_request("`token` has no jti"))?;
            (jti.to_owned(), claims.exp())
        }
        (None, Some(jti), expires_at) if !jti.is_empty() && jti.len() <= 128 => {
            // Past the longest lifetime any token has, it is gone anyway.
            let longest = now + TOKEN_TTL_CAP + warden_jose::MAX_LEEWAY;
            (jti, expires_at.unwrap_or(longest).min(longest))
        }
        _ => {
            return Err(ApiError::invalid_request(
                "give `token`, or `jti` (1 to 128 characters) with an optional `expires_at`",
            ));
        }
    };
    app.store.revoke_token(&jti, exp, now).await?;
    app.revoke(vec![(jti.clone(), exp)]);
    record(Some(jti.clone()), None).await?;
    Ok(Json(json!({"jti": jti, "until": exp})))
}
