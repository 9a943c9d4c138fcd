//! RFC 6749 §6 with rotation (OAuth 2.0 Security BCP §4.14): every
//! redemption spends the presented token and returns its successor;
//! presenting a spent token revokes the whole family and every access
//! token issued from it.

use axum::response::Response;
use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;
use warden_store::oauth::{NewRefresh, Redeemed};

use super::{
    Grant, Possession, check_grant, hash_refresh, jti, mint, new_refresh_token, signing_ready, token_response,
};
use crate::dpop::{self, DpopRefusal, Refused};
use crate::error::ApiError;
use crate::oauth::OAuthState;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::clients::grant;
use crate::oauth::form::Form;
use crate::oauth::scope;

/// Redeems a refresh token. One whose grant is DPoP-bound needs a proof
/// by the same key, and its access token is bound to it; an unbound one
/// presented with a proof gets an access token bound to the proof's key.
pub async fn grant<S: Store>(
    state: &OAuthState<S>,
    client: Authenticated,
    form: &Form,
    possession: &Possession,
    now: u64,
) -> Result<Response, ApiError> {
    check_grant(&client.client, grant::REFRESH_TOKEN)?;
    let presented = form.require("refresh_token")?;
    // Refuse before spending the token if no key could sign its successor's
    // access token (the client could retry with the same refresh token).
    signing_ready(&state.app)?;
    let hash = hash_refresh(presented);
    let Some(row) = state.app.store.find_refresh(&hash).await? else {
        return Err(ApiError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        ));
    };
    if row.family.client_id != client.client.client_id {
        return Err(ApiError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let stored: Grant =
        serde_json::from_str(&row.grant_data).map_err(|_| ApiError::internal("stored grant is corrupt"))?;
    // Checked before the token is spent: a refusal leaves it usable by
    // its holder, with the right key.
    let binding = match (&stored.jkt, &possession.jkt) {
        (Some(bound), Some(proved)) if bound != proved => Err(DpopRefusal::WrongKey),
        (Some(_), None) => Err(DpopRefusal::Missing),
        (_, proved) => Ok(proved.clone()),
    };
    let jkt = match binding {
        Ok(jkt) => jkt,
        Err(refusal) => {
            let who = Refused {
                principal: &stored.subject,
                client_id: &stored.client_id,
                method: "POST",
                path: "/oauth/token",
                source_ip: possession.source_ip,
            };
            dpop::audit_refusal(&state.app, &refusal, who, now).await;
            return Err(refusal.token_endpoint_error());
        }
    };
    // A narrower scope may be asked for this access token (RFC 6749 §6);
    // the refresh token keeps the original grant. A scope beyond it is an
    // error, never silently dropped.
    if let Some(asked) = form.get("scope") {
        let asked =
            scope::parse(asked).map_err(|bad| ApiError::invalid_scope(format!("`{bad}` is not a valid scope")))?;
        if let Some(extra) = asked.iter().find(|s| !stored.scopes.contains(s)) {
            return Err(ApiError::invalid_scope(format!(
                "`{extra}` was not granted to this refresh token"
            )));
        }
    }
    let access_scopes = super::scopes(form, &stored.scopes, &[&stored.scopes])?;
    let o = &state.app.options;
    let exp = (now + o.default_ttl).min(row.family.expires_at);
    let access_jti = jti()?;
    let (token, token_hash) = new_refresh_token()?;
    let next = NewRefresh {
        token_hash,
        grant_data: row.grant_data.clone(),
        issued_at: now,
        expires_at: (now + o.oauth.refresh_idle_ttl).min(row.family.expires_at),
        access_jti: access_jti.clone(),
        access_exp: exp,
    };
    // Likewise a narrower audience (RFC 8707 §2.2): any of the granted
    // ones, never another.
    let mut access_audience: Vec<String> = Vec::new();
    for a in form.all("resource").iter().chain(form.all("audience")) {
        if !stored.audience.contains(a) {
            return Err(ApiError::invalid_target(format!(
                "`{a}` is not an audience of this refresh token"
            )));
        }
        if !access_audience.contains(a) {
            access_audience.push(a.clone());
        }
    }
    if access_audience.is_empty() {
        access_audience = stored.audience.clone();
    }
    let access = Grant {
        scopes: access_scopes,
        audience: access_audience,
        jkt,
        authorization_details: None,
        ..stored
    };
    // Signed before the redemption, so that the rotation, its audit record
    // and the token it returns are decided together: the store appends the
    // record in the rotation's own transaction, and a rotation whose record
    // cannot be written is not made (the client's retry with the same
    // refresh token is then a plain redemption, not reuse).
    let minted = mint(&state.app, &access, access_jti, exp, now)?;
    let audit = |redeemed: &Redeemed| match redeemed {
        Redeemed::Rotated { row } => vec![AuditEvent::new(
            now,
            EventKind::TokenRefreshed {
                subject: access.subject.clone(),
                client_id: access.client_id.clone(),
                jti: minted.jti.clone(),
                kid: minted.kid.clone(),
                family: row.family.id.clone(),
                scope: scope::join(&access.scopes),
            },
        )],
        Redeemed::Reused { family, .. } => vec![AuditEvent::new(
            now,
            EventKind::RefreshTokenReuseDetected {
                subject: family.subject.clone(),
                client_id: family.client_id.clone(),
                family: family.id.clone(),
            },
        )],
        Redeemed::Unknown | Redeemed::Expired | Redeemed::Revoked => Vec::new(),
    };
    match state
        .app
        .store
        .redeem_refresh(&hash, &next, now, o.oauth.refresh_grace, audit)
        .await?
    {
        Redeemed::Rotated { .. } => {
            state.clients.touch(&state.app.store, &access.client_id, now).await;
            Ok(token_response(&minted, &access.scopes, Some(token), None, now))
        }
        Redeemed::Reused { family, revoked } => {
            state.app.revoke(revoked);
            tracing::warn!(family = %family.id, client_id = %family.client_id, "refresh token reuse detected; family revoked");
            Err(ApiError::invalid_grant(
                "the refresh token was already used; its family is revoked",
            ))
        }
        Redeemed::Unknown | Redeemed::Expired | Redeemed::Revoked => Err(ApiError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        )),
    }
}
