//! RFC 8693 token exchange: the calling client (typically an AI agent)
//! obtains a token to act for a subject (a user), never as the subject.
//!
//! - `subject_token`: a Warden access token (any audience) or a token from
//!   a trusted external issuer (`[[federation]]`).
//! - `actor_token` (optional): the calling agent's own Warden token; it
//!   must have been issued to the calling client. Without it the actor is
//!   the calling client.
//! - Result: `sub` = the subject, `act` = `{sub: actor, act: previous act}`,
//!   scope = requested ∩ subject's ∩ the client's allowed, lifetime no
//!   longer than the subject token's remaining lifetime, `may_act` honoured,
//!   delegation depth capped. Bad tokens and policy refusals are
//!   `invalid_request` (RFC 8693 §2.2.2), bad audiences `invalid_target`.
//! - Tenants: the new token carries the subject token's `tenant`, never
//!   another and never none when the subject has one. A client of a
//!   tenant acts only for subjects of that same tenant (`invalid_request`
//!   otherwise): an agent of `acme` never obtains a token for a user of
//!   `globex`, nor for a user of no tenant, whose token could reach more
//!   than `acme`'s resources. A client of no tenant may act for anyone;
//!   its token is then the subject's, tenant included.
//! - The new token is for one of the *client's registered* audiences, never
//!   Warden itself, and carries the subject's roles except Warden's own
//!   (`admin`, `auditor`): a delegated token can reach AI APIs for a user,
//!   never administer Warden or read its audit log as that user (the admin
//!   and audit APIs also refuse any token with `act`).

use axum::response::Response;
use serde_json::{Value, json};
use warden_audit::{AuditEvent, EventKind};
use warden_jose::VerifiedToken;
use warden_store::Store;
use warden_store::oauth::ClientRecord;

use super::{
    ACCESS_TOKEN_TYPE, Grant, JWT_TOKEN_TYPE, Possession, audiences, check_grant, gets_refresh_tokens, jti, mint,
    start_family, token_response,
};
use crate::access::delegation;
use crate::error::ApiError;
use crate::oauth::OAuthState;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::clients::grant;
use crate::oauth::form::Form;
use crate::options::roles;

/// What the subject token says.
struct Subject {
    subject: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    act: Option<Value>,
    tenant: Option<String>,
    exp: u64,
    may_act: Option<Value>,
    /// The audiences of a Warden subject token; `None` for a trusted
    /// external issuer's, whose configured audience is Warden itself.
    audience: Option<Vec<String>>,
}

fn from_warden(token: &VerifiedToken) -> Result<Subject, ApiError> {
    let c = token.claims();
    Ok(Subject {
        subject: c.sub().unwrap_or_default().to_owned(),
        scopes: c.scopes().map(str::to_owned).collect(),
        roles: c.roles().to_vec(),
        act: c.act().map(|m| Value::Object(m.clone())),
        tenant: c.raw().get("tenant").and_then(Value::as_str).map(str::to_owned),
        exp: c.exp(),
        may_act: c.raw().get("may_act").cloned(),
        audience: Some(c.aud().to_vec()),
    })
}

/// Whether `client` may exchange `subject`'s token at all: a Warden token
/// must have been meant for it — its `aud` names the client or an
/// audience the client is registered for — or have been issued to be
/// delegated (a `may_act` naming who may act, checked later); a
/// dashboard session's token never is. A trusted external issuer's token
/// is, by configuration, issued for Warden.
fn check_meant_for(subject: &Subject, client: &ClientRecord, ui_audience: &str) -> Result<(), ApiError> {
    let Some(aud) = &subject.audience else {
        return Ok(());
    };
    if aud.iter().any(|a| a == ui_audience) {
        return Err(ApiError::invalid_request(
            "subject_token is a dashboard session's; it cannot be exchanged",
        ));
    }
    let named = aud
        .iter()
        .any(|a| *a == client.client_id || client.audiences.contains(a));
    if named || subject.may_act.is_some() {
        Ok(())
    } else {
        Err(ApiError::invalid_request(format!(
            "subject_token was not issued for client `{}`: its `aud` must name the client or one of its registered \
             audiences, or it must carry `may_act`",
            client.client_id
        )))
    }
}

/// When the subject is itself a Warden client (`svc:`/`agent:`), the
/// delegated token may only be for audiences that client could have been
/// issued itself: delegation never widens what a principal reaches.
async fn check_subject_could_reach<S: Store>(
    state: &OAuthState<S>,
    subject: &str,
    audience: &[String],
) -> Result<(), ApiError> {
    let Some(client_id) = subject.strip_prefix("svc:").or_else(|| subject.strip_prefix("agent:")) else {
        return Ok(());
    };
    let own = match state.clients.get(&state.app.store, client_id).await? {
        Some(c) if !c.disabled => c.audiences,
        _ => {
            return Err(ApiError::invalid_request(format!(
                "the subject `{subject}` is no active client"
            )));
        }
    };
    match audience.iter().find(|a| !own.contains(a)) {
        Some(a) => Err(ApiError::invalid_target(format!(
            "`{subject}` could not obtain tokens for `{a}` itself, so no one obtains them for it"
        ))),
        None => Ok(()),
    }
}

/// A client of a tenant acts only for subjects of the same tenant: the
/// delegated token carries the subject's tenant, and must never let an
/// actor reach beyond its own.
fn check_tenant(client: &ClientRecord, subject: &Subject) -> Result<(), ApiError> {
    match &client.tenant {
        Some(own) if subject.tenant.as_ref() != Some(own) => Err(ApiError::invalid_request(format!(
            "client `{}` belongs to tenant `{own}` and acts only for subjects of that tenant",
            client.client_id
        ))),
        _ => Ok(()),
    }
}

fn check_type(form: &Form, name: &str) -> Result<(), ApiError> {
    match form.get(name) {
        Some(ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE) => Ok(()),
        Some(other) => Err(ApiError::invalid_request(format!(
            "{name} `{other}` is not supported: use {ACCESS_TOKEN_TYPE} or {JWT_TOKEN_TYPE}"
        ))),
        None => Err(ApiError::invalid_request(format!("parameter `{name}` is required"))),
    }
}

/// A DPoP-bound subject token (RFC 9449) is exchanged only with a proof by
/// its key (`proved`): a stolen bound token must not become a fresh one.
async fn verify_subject<S: Store>(
    state: &OAuthState<S>,
    token: &str,
    proved: Option<&str>,
    now: u64,
) -> Result<Subject, ApiError> {
    let issuer = crate::access::federation::peek_issuer(token);
    if issuer.as_deref() == Some(state.app.options.issuer.as_str()) {
        let verified = state
            .app
            .verify_own(now, |keys| keys.any_audience.verify(token, now))
            .await
            .map_err(|e| ApiError::invalid_request(format!("subject_token is invalid: {e}")))?;
        if verified
            .claims()
            .jti()
            .is_some_and(|j| state.app.revocations.is_revoked(j))
        {
            return Err(ApiError::invalid_request("subject_token is revoked"));
        }
        // A single-use approval token is good for its one call, never as
        // the grounds of another token.
        if verified.claims().raw().get("authorization_details").is_some() {
            return Err(ApiError::invalid_request(
                "subject_token is an approval token: it is good only for the call a person approved",
            ));
        }
        let bound = verified
            .claims()
            .raw()
            .get("cnf")
            .map(|cnf| cnf.get("jkt").and_then(serde_json::Value::as_str));
        match bound {
            None => {}
            Some(Some(jkt)) if proved == Some(jkt) => {}
            Some(_) => {
                return Err(ApiError::invalid_request(
                    "subject_token is DPoP-bound: exchange it with a DPoP proof by its key",
                ));
            }
        }
        return from_warden(&verified);
    }
    if issuer.as_deref().is_some_and(|i| state.access.federation.trusts(i)) {
        let id = state
            .access
            .federation
            .verify(token, now)
            .await
            .map_err(|e| ApiError::invalid_request(format!("subject_token: {e}")))?;
        return Ok(Subject {
            subject: id.subject,
            scopes: id.scopes,
            roles: id.roles,
            act: None,
            tenant: None,
            exp: id.exp,
            may_act: id.may_act,
            audience: None,
        });
    }
    Err(ApiError::invalid_request(
        "subject_token is not from Warden or a trusted issuer",
    ))
}

/// Exchanges a subject token (and optional actor token) for a delegated token.
pub async fn grant<S: Store>(
    state: &OAuthState<S>,
    client: Authenticated,
    form: &Form,
    possession: &Possession,
    now: u64,
) -> Result<Response, ApiError> {
    check_grant(&client.client, grant::TOKEN_EXCHANGE)?;
    if let Some(t) = form.get("requested_token_type")
        && t != ACCESS_TOKEN_TYPE
    {
        return Err(ApiError::invalid_request(format!(
            "requested_token_type `{t}` is not supported: only {ACCESS_TOKEN_TYPE}"
        )));
    }
    let subject_token = form.require("subject_token")?;
    check_type(form, "subject_token_type")?;
    let subject = verify_subject(state, subject_token, possession.jkt.as_deref(), now).await?;

    let mut actor_exp = u64::MAX;
    let actor = match form.get("actor_token") {
        Some(actor_token) => {
            check_type(form, "actor_token_type")?;
            let verified = state
                .app
                .verify_own(now, |keys| keys.any_audience.verify(actor_token, now))
                .await
                .map_err(|e| ApiError::invalid_request(format!("actor_token is invalid: {e}")))?;
            let c = verified.claims();
            if c.jti().is_some_and(|j| state.app.revocations.is_revoked(j)) {
                return Err(ApiError::invalid_request("actor_token is revoked"));
            }
            if c.raw().get("authorization_details").is_some() {
                return Err(ApiError::invalid_request(
                    "actor_token is an approval token: it is good only for the call a person approved",
                ));
            }
            // The actor token must be the calling client's own token, not
            // one it holds for somebody else: otherwise an agent could name
            // any subject it ever acted for as the actor and vanish from the chain.
            if c.client_id() != Some(client.client.client_id.as_str())
                || c.sub() != Some(client.subject().as_str())
                || c.act().is_some()
            {
                return Err(ApiError::invalid_request(
                    "actor_token must be the calling client's own token (its sub, not delegated)",
                ));
            }
            actor_exp = c.exp();
            client.subject()
        }
        None if form.get("actor_token_type").is_some() => {
            return Err(ApiError::invalid_request("actor_token_type without actor_token"));
        }
        None => client.subject(),
    };
    if warden_registry::subject::same(&actor, &subject.subject) {
        return Err(ApiError::invalid_request("the actor and the subject are the same"));
    }
    if delegation::actors(subject.act.as_ref())
        .iter()
        .any(|a| warden_registry::subject::same(a, &actor))
    {
        return Err(ApiError::invalid_request(format!(
            "`{actor}` already acts in the subject token's delegation chain"
        )));
    }
    if !delegation::may_act_allows(subject.may_act.as_ref(), &actor) {
        return Err(ApiError::invalid_request(format!(
            "`{actor}` may not act for `{}` (may_act)",
            subject.subject
        )));
    }
    let new_depth = delegation::depth(subject.act.as_ref()) + 1;
    let max = state.app.options.oauth.max_delegation_depth;
    if new_depth > max {
        return Err(ApiError::invalid_request(format!(
            "the delegation chain would be {new_depth} deep; at most {max} is allowed"
        )));
    }
    let c = &client.client;
    check_tenant(c, &subject)?;
    let granted = super::scopes(form, &subject.scopes, &[&subject.scopes, &c.scopes])?;
    if granted.is_empty() {
        return Err(ApiError::invalid_scope("the subject and the client share no scope"));
    }
    let exp = (now + state.app.options.default_ttl).min(subject.exp).min(actor_exp);
    if exp <= now {
        return Err(ApiError::invalid_request("subject_token has expired"));
    }
    let mut act = json!({"sub": actor});
    if let (Some(prev), Some(obj)) = (subject.act.clone(), act.as_object_mut()) {
        obj.insert("act".into(), prev);
    }
    if c.audiences.is_empty() {
        return Err(ApiError::invalid_target(format!(
            "client `{}` has no registered audience to obtain delegated tokens for",
            c.client_id
        )));
    }
    let audience = audiences(form, c, &state.app.options.issuer)?;
    if audience.contains(&state.app.options.issuer) {
        return Err(ApiError::invalid_target(
            "delegated tokens are never issued for Warden itself",
        ));
    }
    check_meant_for(&subject, c, &state.app.options.ui_audience())?;
    check_subject_could_reach(state, &subject.subject, &audience).await?;
    let roles = subject
        .roles
        .into_iter()
        .filter(|r| r != roles::ADMIN && r != roles::AUDITOR)
        .collect();
    let grant = Grant {
        subject: subject.subject,
        client_id: c.client_id.clone(),
        scopes: granted,
        roles,
        audience,
        act: Some(act),
        tenant: subject.tenant,
        // Bound to the calling client's key when it sent a proof: the
        // delegated token is the agent's to use, with the agent's key.
        jkt: possession.jkt.clone(),
        authorization_details: None,
    };
    let minted = mint(&state.app, &grant, jti()?, exp, now)?;
    let refresh = if gets_refresh_tokens(c) {
        let absolute = (now + state.app.options.oauth.refresh_absolute_ttl).min(subject.exp);
        Some(start_family(state, &grant, &minted, absolute, now).await?)
    } else {
        None
    };
    let event = EventKind::TokenExchanged {
        subject: grant.subject.clone(),
        actor_chain: delegation::actors(grant.act.as_ref()),
        client_id: grant.client_id.clone(),
        jti: minted.jti.clone(),
        kid: minted.kid.clone(),
        scope: crate::oauth::scope::join(&grant.scopes),
        audience: grant.audience.clone(),
    };
    state.app.audit.record(AuditEvent::new(now, event)).await?;
    state.clients.touch(&state.app.store, &c.client_id, now).await;
    Ok(token_response(
        &minted,
        &grant.scopes,
        refresh,
        Some(ACCESS_TOKEN_TYPE),
        now,
    ))
}
