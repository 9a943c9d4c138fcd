//! `grant_type=urn:openid:params:grant-type:ciba` (OpenID CIBA Core 1.0
//! §10–11, poll mode): the client that asked for an approval polls with
//! its `auth_req_id` and, once a person approved, gets one short-lived,
//! single-use access token whose `authorization_details` (RFC 9396) name
//! exactly the call approved (`docs/approvals.md`). Before that:
//! `authorization_pending`; polling faster than the interval:
//! `slow_down`; denied: `access_denied`; run out: `expired_token`; a
//! token already handed out: `invalid_grant`.

use axum::response::Response;
use serde_json::Value;
use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;
use warden_store::approvals::{ApprovalPoll, ApprovalStatus};

use super::{Grant, Possession, check_grant, jti, mint, no_store, signing_ready, token_body};
use crate::approvals::Asked;
use crate::approvals::ask::event;
use crate::error::ApiError;
use crate::oauth::OAuthState;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::clients::grant;
use crate::oauth::form::Form;
use crate::oauth::scope;

/// `grant_type=urn:openid:params:grant-type:ciba`.
pub async fn grant<S: Store>(
    state: &OAuthState<S>,
    client: Authenticated,
    form: &Form,
    possession: &Possession,
    now: u64,
) -> Result<Response, ApiError> {
    check_grant(&client.client, grant::CIBA)?;
    let auth_req_id = form.require("auth_req_id")?;
    signing_ready(&state.app)?;
    let client_id = &client.client.client_id;
    let token_jti = jti()?;
    let record = match state
        .app
        .store
        .poll_approval(&crate::secret::stored_hash(auth_req_id), client_id, &token_jti, now)
        .await?
    {
        ApprovalPoll::Unknown => return Err(ApiError::invalid_grant("the auth_req_id is invalid")),
        ApprovalPoll::TooFast => return Err(ApiError::slow_down()),
        ApprovalPoll::Found(r) if &r.client_id != client_id => {
            return Err(ApiError::invalid_grant("the auth_req_id was issued to another client"));
        }
        ApprovalPoll::Found(r) => {
            return Err(match r.status {
                ApprovalStatus::Pending if now >= r.expires_at => ApiError::approval_expired(),
                ApprovalStatus::Pending => ApiError::authorization_pending(),
                ApprovalStatus::Denied => ApiError::approval_denied(),
                ApprovalStatus::Expired | ApprovalStatus::Approved => ApiError::approval_expired(),
                ApprovalStatus::Issued | ApprovalStatus::Used => {
                    ApiError::invalid_grant("the auth_req_id was already used")
                }
            });
        }
        ApprovalPoll::Taken(r) => r,
    };
    let asked = Asked::from_json(&record.request)?;
    // Until the approval runs out, and never past the longest any token
    // may live (revocations and retired keys are kept that long).
    let exp = record
        .usable_until
        .unwrap_or(now)
        .min(now + state.app.options.max_ttl)
        .max(now + 1);
    let details = asked.token_details(&record.id);
    let granted = Grant {
        subject: asked.subject.clone(),
        client_id: asked.client_id.clone(),
        scopes: asked.scopes.clone(),
        roles: asked.roles.clone(),
        audience: asked.audience.clone(),
        act: asked.act(),
        tenant: asked.tenant.clone(),
        jkt: possession.jkt.clone(),
        authorization_details: Some(details.clone()),
    };
    let minted = mint(&state.app, &granted, token_jti, exp, now)?;
    let issued = EventKind::TokenIssued {
        subject: granted.subject.clone(),
        client_id: granted.client_id.clone(),
        jti: minted.jti.clone(),
        kid: minted.kid.clone(),
        scope: scope::join(&granted.scopes),
        audience: granted.audience.clone(),
        grant: "ciba".to_owned(),
        expires_at: minted.exp,
        issued_by: None,
    };
    let audit = &state.app.audit;
    audit.record(AuditEvent::new(now, issued)).await?;
    audit
        .record(event(
            &record.id,
            "token_issued",
            &asked,
            record.decided_by.as_deref(),
            None,
            now,
        ))
        .await?;
    // RFC 9396 §7: the token response repeats what the token is for.
    let mut body = token_body(&minted, &granted.scopes, now);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("authorization_details".into(), details);
    }
    Ok(no_store(body))
}

/// Whether `v` is a JSON array of objects, each with a string `type`
/// (RFC 9396 §2).
pub fn valid_details(v: &Value) -> bool {
    v.as_array().is_some_and(|items| {
        !items.is_empty()
            && items
                .iter()
                .all(|d| d.get("type").and_then(Value::as_str).is_some_and(|t| !t.is_empty()))
    })
}
