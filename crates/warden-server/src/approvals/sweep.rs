//! Expiring what ran out: requests nobody answered in time, and
//! approvals whose token was not taken or not used before it ran out.
//! Each is expired once across replicas (a conditional update) and
//! audited as `action_approval` step `expired`; finished requests older
//! than a week are then deleted (the audit log keeps them).

use warden_store::Store;
use warden_store::approvals::{ApprovalStatus, MAX_LISTED};

use super::ask::event;
use super::asked::Asked;
use crate::state::AppState;

/// Expires and audits what ran out by `now`; returns how many.
pub async fn sweep<S: Store>(app: &AppState<S>, now: u64) -> Result<usize, warden_store::StoreError> {
    let expired = app.store.expire_approvals(now, MAX_LISTED).await?;
    for record in &expired {
        let why = match record.status {
            ApprovalStatus::Pending => "nobody answered in time",
            ApprovalStatus::Approved => "approved, but its token was never taken",
            _ => "approved, but its token was never used",
        };
        let asked = match Asked::from_json(&record.request) {
            Ok(a) => a,
            Err(_) => {
                tracing::error!(approval_id = %record.id, "an expired approval request is corrupt");
                continue;
            }
        };
        if let Err(e) = app
            .audit
            .record(event(&record.id, "expired", &asked, None, Some(why), now))
            .await
        {
            tracing::error!(error = %e, approval_id = %record.id, "an approval's expiry could not be audited");
        }
    }
    app.store.purge_approvals(now).await?;
    Ok(expired.len())
}
