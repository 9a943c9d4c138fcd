//! Bearer tokens (RFC 6750) on Warden's own APIs (admin, audit,
//! introspection): a Warden access token whose `aud` holds the issuer,
//! verified strictly, not revoked, and holding the role or scope asked.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use warden_jose::VerifiedToken;
use warden_store::Store;

use crate::error::ApiError;
use crate::state::AppState;

/// The bearer token of `headers`, if any (`Bearer` scheme, case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Verifies the request's bearer token for Warden's APIs.
pub fn caller<S: Store>(state: &AppState<S>, headers: &HeaderMap, now: u64) -> Result<Arc<VerifiedToken>, ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::missing_token)?;
    verify(state, token, now)
}

/// Verifies `token` for Warden's APIs (the bearer header's or the
/// dashboard session's): strictly, against the API keys, not revoked.
pub fn verify<S: Store>(state: &AppState<S>, token: &str, now: u64) -> Result<Arc<VerifiedToken>, ApiError> {
    let keys = state.keys.get();
    let verified = keys
        .api
        .verify(token, now)
        .map_err(|e| ApiError::invalid_token(format!("the access token is invalid: {e}")))?;
    if verified.claims().jti().is_some_and(|j| state.revocations.is_revoked(j)) {
        return Err(ApiError::invalid_token("the access token is revoked"));
    }
    Ok(verified)
}

/// Whether the request's bearer token names a `kid` this replica does not
/// know (so re-reading the keys might help).
pub fn unknown_kid(keys: &crate::keys::KeySnapshot, headers: &HeaderMap, now: u64) -> bool {
    bearer(headers).is_some_and(|t| unknown_kid_in(keys, t, now))
}

/// Whether `token` names a `kid` this replica does not know.
pub fn unknown_kid_in(keys: &crate::keys::KeySnapshot, token: &str, now: u64) -> bool {
    matches!(keys.api.verify(token, now), Err(warden_jose::JoseError::UnknownKid))
}

/// Whether the token has `role` among its roles or `scope` among its scopes.
pub fn has(token: &VerifiedToken, role: &str, scope: &str) -> bool {
    let c = token.claims();
    c.roles().iter().any(|r| r == role) || c.scopes().any(|s| s == scope)
}

/// Verifies the bearer token and requires `role` or `scope`. Delegated
/// tokens (with `act`) are refused: Warden's own APIs (administration,
/// audit, introspection) are for principals acting themselves, never for
/// an agent acting for one.
pub fn require<S: Store>(
    state: &AppState<S>,
    headers: &HeaderMap,
    role: &str,
    scope: &str,
    now: u64,
) -> Result<Arc<VerifiedToken>, ApiError> {
    let token = caller(state, headers, now)?;
    if token.claims().act().is_some() {
        return Err(ApiError::insufficient_scope(&format!(
            "a token of the principal itself (delegated tokens may not use this API; `{role}` or `{scope}`)"
        )));
    }
    if has(&token, role, scope) {
        Ok(token)
    } else {
        Err(ApiError::insufficient_scope(&format!(
            "the `{role}` role or the `{scope}` scope"
        )))
    }
}
