//! Storing an approval request and answering with its [`Ticket`]: the
//! public id, the CIBA `auth_req_id` (a secret of the asking client, kept
//! as SHA-256 only), when it expires, how often to poll, and where a
//! person approves it. Audited as `action_approval` step `requested`.

use std::sync::Arc;

use serde_json::{Value, json};
use warden_audit::{AuditEvent, EventKind};
use warden_jose::issue::new_jti;
use warden_store::Store;
use warden_store::approvals::NewApproval;
use zeroize::Zeroizing;

use super::asked::Asked;
use super::notify::{Announcement, Notifier};
use super::{POLL_INTERVAL, REQUEST_TTL};
use crate::error::ApiError;
use crate::secret;
use crate::state::AppState;

/// What the asking client is told.
#[derive(Debug)]
pub struct Ticket {
    /// The approval's public id (`apr_…`).
    pub id: String,
    /// The CIBA `auth_req_id` to poll the token endpoint with.
    pub auth_req_id: Zeroizing<String>,
    /// Seconds a person has to answer.
    pub expires_in: u64,
    /// Least seconds between polls.
    pub interval: u64,
    /// The dashboard page where it is answered.
    pub approve_at: String,
    /// What is asked.
    pub asked: Asked,
}

impl Ticket {
    /// The `approval` member of an `approval_required` answer.
    pub fn to_json(&self, issuer: &str) -> Value {
        json!({
            "id": self.id,
            "auth_req_id": self.auth_req_id.as_str(),
            "expires_in": self.expires_in,
            "interval": self.interval,
            "token_endpoint": format!("{issuer}/oauth/token"),
            "grant_type": crate::approvals::redeem::CIBA_GRANT,
            "approve_at": self.approve_at,
            "approvers": self.asked.approvers,
            "acting_for": self.asked.acting_for(),
            "authorization_details": self.asked.details,
        })
    }
}

/// Stores `asked` as a new request, usable for `token_ttl` seconds once
/// approved, audits it, and tells its approvers through `notifier`. 503
/// when the log cannot be written: nobody is asked to approve what the
/// log does not show.
pub async fn ask<S: Store>(
    app: &Arc<AppState<S>>,
    notifier: &Arc<Notifier>,
    asked: Asked,
    token_ttl: u64,
    now: u64,
) -> Result<Ticket, ApiError> {
    let id = format!(
        "apr_{}",
        new_jti().map_err(|_| ApiError::internal("random generator failed"))?
    );
    let auth_req_id = Zeroizing::new(secret::new("wcb_")?);
    let request = asked.to_json()?;
    app.store
        .insert_approval(&NewApproval {
            id: id.clone(),
            auth_req_hash: secret::stored_hash(&auth_req_id),
            client_id: asked.client_id.clone(),
            request,
            created_at: now,
            expires_at: now + REQUEST_TTL,
            token_ttl,
            poll_interval: POLL_INTERVAL,
        })
        .await?;
    app.audit
        .record(event(&id, "requested", &asked, None, None, now))
        .await
        .map_err(|_| ApiError::unavailable("the audit log cannot be written; nothing was asked"))?;
    let approve_at = format!(
        "{}/ui/approvals/{id}",
        app.options.dashboard_base().trim_end_matches('/')
    );
    tracing::info!(approval_id = %id, subject = %asked.subject, resource = %asked.resource, "approval requested");
    notifier.announce(
        app,
        Announcement {
            id: id.clone(),
            asked: asked.clone(),
            approve_at: approve_at.clone(),
            expires_at: now + REQUEST_TTL,
        },
    );
    Ok(Ticket {
        id,
        auth_req_id,
        expires_in: REQUEST_TTL,
        interval: POLL_INTERVAL,
        approve_at,
        asked,
    })
}

/// The `action_approval` event of `step` on the request `id`.
pub fn event(id: &str, step: &str, asked: &Asked, by: Option<&str>, reason: Option<&str>, now: u64) -> AuditEvent {
    AuditEvent::new(
        now,
        EventKind::ActionApproval {
            approval_id: id.to_owned(),
            step: step.to_owned(),
            subject: asked.subject.clone(),
            actor_chain: asked.actor_chain.clone(),
            client_id: asked.client_id.clone(),
            resource: asked.resource.clone(),
            action: asked.action.clone(),
            arguments_sha256: asked.digest(),
            approvers: asked.approvers.clone(),
            policy_ids: asked.policy_ids.clone(),
            by: by.map(str::to_owned),
            reason: reason.map(str::to_owned),
            channel: None,
        },
    )
}
