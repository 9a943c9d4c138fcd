//! A person's answer to an approval request: approve or deny, with a
//! reason. Only a signed-in person (`user:…`, acting themselves) of one of
//! the request's approving groups may answer, never the request's own
//! subject or agent (unless the group is `self` and they are the person it
//! acts for). Every answer and every refused attempt is audited.

use warden_store::Store;
use warden_store::approvals::{ApprovalAnswer, ApprovalRecord, ApprovalStatus};

use super::MAX_REASON_CHARS;
use super::ask::event;
use super::asked::{Asked, may_answer, recorded_need};
use crate::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `person` approves (`approve`) or denies request `id` with `reason`, at
/// `now`; the record as it stands after.
pub async fn answer<S: Store>(
    app: &AppState<S>,
    person: &Caller,
    id: &str,
    approve: bool,
    reason: &str,
    now: u64,
) -> Result<ApprovalRecord, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid_request("give a reason for the answer"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid_request(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let record = app
        .store
        .approval(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("approval request `{id}` not found")))?;
    let asked = Asked::from_json(&record.request)?;
    let need = recorded_need(&asked, record.token_ttl);
    let refusal = if person.is_delegated() {
        Err("an agent acting for a person may not answer approval requests".to_owned())
    } else if person.client_id == asked.client_id {
        Err("a token issued to the asking client may not answer its request".to_owned())
    } else if asked.tenant.is_some() && person.tenant != asked.tenant {
        Err("only a person of the request's tenant may answer it".to_owned())
    } else {
        may_answer(&need, &asked, &person.principal, &person.roles)
    };
    if let Err(why) = refusal {
        let refused = event(id, "refused", &asked, Some(&person.principal), Some(&why), now);
        if let Err(e) = app.audit.record(refused).await {
            tracing::error!(error = %e, approval_id = id, "a refused answer could not be audited");
        }
        return Err(ApiError::access_denied(why));
    }
    if record.status != ApprovalStatus::Pending || now >= record.expires_at {
        return Err(ApiError::conflict(format!(
            "approval request `{id}` is {}; it can no longer be answered",
            if record.status == ApprovalStatus::Pending {
                "expired".to_owned()
            } else {
                record.status.to_string()
            }
        )));
    }
    let roles = serde_json::to_string(&person.roles).map_err(|_| ApiError::internal("roles serialisation failed"))?;
    let decided = app
        .store
        .decide_approval(
            id,
            &ApprovalAnswer {
                approve,
                by: &person.principal,
                roles: &roles,
                reason,
            },
            now,
        )
        .await?;
    if !decided {
        return Err(ApiError::conflict(format!(
            "approval request `{id}` was answered or expired a moment ago"
        )));
    }
    let step = if approve { "approved" } else { "denied" };
    // The answer is stored: a log that cannot take its record is logged
    // loudly, and the token's use is audited again when it comes.
    if let Err(e) = app
        .audit
        .record(event(id, step, &asked, Some(&person.principal), Some(reason), now))
        .await
    {
        tracing::error!(error = %e, approval_id = id, "an approval answer could not be audited");
    }
    tracing::info!(approval_id = id, by = %person.principal, step, "approval answered");
    app.store
        .approval(id)
        .await?
        .ok_or_else(|| ApiError::internal("an answered approval request vanished"))
}
