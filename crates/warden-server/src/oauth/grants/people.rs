//! The grants a person approved for a public client: `authorization_code`
//! (RFC 6749 §4.1.3 with the PKCE verifier, RFC 7636 §4.6) and
//! `device_code` (RFC 8628 §3.4–3.5). Each gives a short-lived access
//! token for the person, with the roles they signed in with, and a
//! rotating refresh token; the grant itself is spent on every replica.
//!
//! A code presented twice is a replay: the refresh-token family its first
//! redemption started is revoked, with the access tokens issued from it
//! (RFC 6749 §4.1.2).

use axum::response::Response;
use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;
use warden_store::authorization::{CodeRedeemed, DevicePoll, DeviceStatus};

use super::{Grant, Possession, check_grant, jti, mint, signing_ready, start_family_with_id, token_response};
use crate::error::ApiError;
use crate::oauth::OAuthState;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::clients::grant;
use crate::oauth::form::Form;
use crate::oauth::{pkce, scope};

/// The SHA-256 a code or device code is stored under.
pub fn code_hash(code: &str) -> [u8; 32] {
    super::hash_refresh(code)
}

/// `grant_type=authorization_code`.
pub async fn authorization_code<S: Store>(
    state: &OAuthState<S>,
    client: Authenticated,
    form: &Form,
    possession: &Possession,
    now: u64,
) -> Result<Response, ApiError> {
    check_grant(&client.client, grant::AUTHORIZATION_CODE)?;
    let code = form.require("code")?;
    let redirect = form.require("redirect_uri")?;
    let verifier = form.require("code_verifier")?;
    signing_ready(&state.app)?;
    let hash = code_hash(code);
    let row = match state.app.store.redeem_code(&hash, now).await? {
        CodeRedeemed::Fresh(row) => row,
        CodeRedeemed::Reused(row) => {
            if let Some(family) = &row.family {
                let revoked = state.app.store.revoke_family(family, now).await?;
                state.app.revoke(revoked);
                let event = EventKind::TokenRevoked {
                    jti: None,
                    family: Some(family.clone()),
                    client_id: row.client_id.clone(),
                    reason: "authorization_code_replayed".into(),
                };
                state.app.audit.record(AuditEvent::new(now, event)).await?;
            }
            tracing::warn!(client_id = %row.client_id, "an authorization code was presented again; what it issued is revoked");
            return Err(ApiError::invalid_grant(
                "the code was already used; the tokens issued for it are revoked",
            ));
        }
        CodeRedeemed::Expired => return Err(ApiError::invalid_grant("the code has expired")),
        CodeRedeemed::Unknown => return Err(ApiError::invalid_grant("the code is invalid")),
    };
    // The code is spent from here on, whatever follows: a failed check
    // does not leave it for another try.
    if row.client_id != client.client.client_id {
        return Err(ApiError::invalid_grant("the code was issued to another client"));
    }
    if row.redirect_uri != redirect {
        return Err(ApiError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !pkce::verify(verifier, &row.code_challenge) {
        return Err(ApiError::invalid_grant(
            "the code_verifier does not match the code_challenge",
        ));
    }
    let granted: Grant =
        serde_json::from_str(&row.grant_data).map_err(|_| ApiError::internal("stored grant is corrupt"))?;
    let (response, family) = issue(state, &granted, possession, "authorization_code", now).await?;
    state.app.store.set_code_family(&hash, &family).await?;
    Ok(response)
}

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
pub async fn device_code<S: Store>(
    state: &OAuthState<S>,
    client: Authenticated,
    form: &Form,
    possession: &Possession,
    now: u64,
) -> Result<Response, ApiError> {
    check_grant(&client.client, grant::DEVICE_CODE)?;
    let device_code = form.require("device_code")?;
    signing_ready(&state.app)?;
    let grant = match state
        .app
        .store
        .poll_device_grant(&code_hash(device_code), &client.client.client_id, now)
        .await?
    {
        DevicePoll::Unknown => return Err(ApiError::invalid_grant("the device code is invalid")),
        DevicePoll::TooFast => return Err(ApiError::slow_down()),
        DevicePoll::Found(g) => g,
    };
    if grant.client_id != client.client.client_id {
        return Err(ApiError::invalid_grant("the device code was issued to another client"));
    }
    match grant.status {
        DeviceStatus::Issued => Err(ApiError::invalid_grant("the device code was already used")),
        DeviceStatus::Denied => Err(ApiError::device_denied()),
        _ if now >= grant.expires_at => Err(ApiError::expired_token()),
        DeviceStatus::Pending => Err(ApiError::authorization_pending()),
        DeviceStatus::Approved => {
            let data = grant
                .grant_data
                .ok_or_else(|| ApiError::internal("an approved device grant has no grant"))?;
            let granted: Grant =
                serde_json::from_str(&data).map_err(|_| ApiError::internal("stored grant is corrupt"))?;
            issue(state, &granted, possession, "device_code", now)
                .await
                .map(|(r, _)| r)
        }
    }
}

/// The access token and refresh token of what a person granted, bound to
/// the client's DPoP key when it proved one (RFC 9449), audited as
/// `token_issued` with `label` as the grant; returns the response and the
/// refresh-token family.
async fn issue<S: Store>(
    state: &OAuthState<S>,
    granted: &Grant,
    possession: &Possession,
    label: &str,
    now: u64,
) -> Result<(Response, String), ApiError> {
    let granted = &Grant {
        jkt: possession.jkt.clone(),
        ..granted.clone()
    };
    let o = &state.app.options;
    let minted = mint(&state.app, granted, jti()?, now + o.default_ttl, now)?;
    let (refresh, family) =
        start_family_with_id(state, granted, &minted, now + o.oauth.refresh_absolute_ttl, now).await?;
    let event = EventKind::TokenIssued {
        subject: granted.subject.clone(),
        client_id: granted.client_id.clone(),
        jti: minted.jti.clone(),
        kid: minted.kid.clone(),
        scope: scope::join(&granted.scopes),
        audience: granted.audience.clone(),
        grant: label.to_owned(),
        expires_at: minted.exp,
        issued_by: None,
    };
    state.app.audit.record(AuditEvent::new(now, event)).await?;
    Ok((
        token_response(&minted, &granted.scopes, Some(refresh), None, now),
        family,
    ))
}
