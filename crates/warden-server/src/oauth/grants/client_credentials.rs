//! RFC 6749 §4.4: a client obtains a token for itself.

use axum::response::Response;
use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;

use super::{
    Grant, Possession, audiences, check_grant, gets_refresh_tokens, jti, mint, scopes, start_family, token_response,
};
use crate::error::ApiError;
use crate::oauth::OAuthState;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::clients::grant;
use crate::oauth::form::Form;

/// Issues a token whose subject is the client itself, bound to the DPoP
/// key the request proved possession of, if any.
pub async fn grant<S: Store>(
    state: &OAuthState<S>,
    client: Authenticated,
    form: &Form,
    possession: &Possession,
    now: u64,
) -> Result<Response, ApiError> {
    check_grant(&client.client, grant::CLIENT_CREDENTIALS)?;
    let c = &client.client;
    let granted = scopes(form, &c.scopes, &[&c.scopes])?;
    let grant = Grant {
        subject: client.subject(),
        client_id: c.client_id.clone(),
        scopes: granted,
        roles: c.roles.clone(),
        audience: audiences(form, c, &state.app.options.issuer)?,
        act: None,
        // The client's own tenant: its tokens reach what the tenant policies
        // allow that tenant, and (under strict tenancy) a client of no
        // tenant only what belongs to none.
        tenant: c.tenant.clone(),
        jkt: possession.jkt.clone(),
        authorization_details: None,
    };
    let minted = mint(&state.app, &grant, jti()?, now + state.app.options.default_ttl, now)?;
    let refresh = if gets_refresh_tokens(c) {
        let absolute = now + state.app.options.oauth.refresh_absolute_ttl;
        Some(start_family(state, &grant, &minted, absolute, now).await?)
    } else {
        None
    };
    let event = EventKind::TokenIssued {
        subject: grant.subject.clone(),
        client_id: grant.client_id.clone(),
        jti: minted.jti.clone(),
        kid: minted.kid.clone(),
        scope: crate::oauth::scope::join(&grant.scopes),
        audience: grant.audience.clone(),
        grant: grant::CLIENT_CREDENTIALS.to_owned(),
        expires_at: minted.exp,
        issued_by: None,
    };
    state.app.audit.record(AuditEvent::new(now, event)).await?;
    state.clients.touch(&state.app.store, &c.client_id, now).await;
    Ok(token_response(&minted, &grant.scopes, refresh, None, now))
}
