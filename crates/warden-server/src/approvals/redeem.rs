//! The gateway's check of an approval token: a request whose decision
//! needs a person's approval passes only with the single-use token an
//! approval gave, for exactly the call approved, once. Anything else about
//! such a token is refused and audited (`action_approval` step `refused`);
//! its one use is audited as `used`.

use serde_json::Value;
use warden_policy::ApprovalNeed;
use warden_store::Store;
use warden_store::approvals::{ApprovalRecord, ApprovalStatus};

use super::ask::event;
use super::asked::{APPROVAL_ID, Asked, may_answer, recorded_need};
use crate::access::Caller;
use crate::state::AppState;

/// The CIBA grant type (OpenID CIBA Core §10.1).
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// The approval a token names, if it names exactly one detail with an id.
pub fn approval_of(approved: &Value) -> Option<(&str, Value)> {
    let [detail] = approved.as_array()?.as_slice() else {
        return None;
    };
    let id = detail.get(APPROVAL_ID)?.as_str()?;
    let mut bare = detail.clone();
    bare.as_object_mut()?.remove(APPROVAL_ID);
    Some((id, bare))
}

/// Whether `caller`'s approval token lets this request through: the call
/// (`detail`) is the one approved, the approval still satisfies `need`
/// (what the policies in force ask now; when they ask nothing, what was
/// recorded with the request), the token is the one handed out for it,
/// and this is its first use. `Err` says why not (no secret in it).
pub async fn redeem<S: Store>(
    app: &AppState<S>,
    caller: &Caller,
    need: Option<&ApprovalNeed>,
    detail: &Value,
) -> Result<(), String> {
    let approved = caller.approved.as_ref().ok_or_else(|| "no approval token".to_owned())?;
    let Some((id, bare)) = approval_of(approved) else {
        return Err("the token's authorization_details name no single approval".into());
    };
    let record = match app.store.approval(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(format!("approval `{id}` is unknown")),
        Err(e) => {
            tracing::error!(error = %e, approval_id = id, "approval lookup failed; refusing");
            return Err("approvals cannot be checked now".into());
        }
    };
    let asked = Asked::from_json(&record.request).map_err(|e| e.description)?;
    let refuse = |why: String| {
        let asked = asked.clone();
        async move {
            let refused = event(id, "refused", &asked, Some(&caller.principal), Some(&why), caller.now);
            if let Err(e) = app.audit.record(refused).await {
                tracing::error!(error = %e, approval_id = id, "a refused approval token could not be audited");
            }
            Err(why)
        }
    };
    if &bare != detail {
        return refuse("the token approves another call (tool, arguments, route or body differ)".into()).await;
    }
    if record.token_jti.as_deref() != Some(caller.jti.as_str())
        || record.client_id != caller.client_id
        || asked.subject != caller.principal
    {
        return refuse("the token is not the one handed out for this approval".into()).await;
    }
    let recorded = recorded_need(&asked, record.token_ttl);
    let by = match still_approved(&record, &asked, need.unwrap_or(&recorded)) {
        Ok(by) => by,
        Err(why) => return refuse(why).await,
    };
    match app.store.use_approval(id, &caller.jti, caller.now).await {
        Ok((true, _)) => {}
        Ok((false, after)) => {
            let why = match after.map(|r| r.status) {
                Some(ApprovalStatus::Used) => "the approval was already used",
                _ => "the approval expired",
            };
            return refuse(why.into()).await;
        }
        Err(e) => {
            tracing::error!(error = %e, approval_id = id, "approval use failed; refusing");
            return Err("approvals cannot be checked now".into());
        }
    }
    if let Err(e) = app
        .audit
        .record(event(id, "used", &asked, Some(&by), None, caller.now))
        .await
    {
        tracing::error!(error = %e, approval_id = id, "an approval's use could not be audited");
    }
    Ok(())
}

/// The person who gave `record`'s approval, when it still lets the call
/// through under `need` (what the policies in force ask); else why not.
fn still_approved(record: &ApprovalRecord, asked: &Asked, need: &ApprovalNeed) -> Result<String, String> {
    let (Some(by), Some(roles)) = (record.decided_by.as_deref(), record.decided_roles.as_deref()) else {
        return Err("the approval has no approver".into());
    };
    // Roles that cannot be read are none: the check then fails closed.
    let roles: Vec<String> = serde_json::from_str(roles).unwrap_or_default();
    may_answer(need, asked, by, &roles)
        .map_err(|why| format!("the approval no longer satisfies the policies: {why}"))?;
    Ok(by.to_owned())
}

/// What holding a call open for the answer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Approved in time (and still satisfying the policies): the approval
    /// is spent on this call, which may go on.
    Approved,
    /// A person denied it.
    Denied,
    /// No usable answer in time (or the agent took the token meanwhile).
    Unanswered,
}

/// How often a held call looks for the answer.
const HOLD_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Holds `caller`'s call open (at most `wait` seconds) for the answer to
/// request `id`; an approval that satisfies `need` is spent on it once
/// (audited as `used`). Nothing is buffered here: the call's body was
/// read whole before it was asked.
pub async fn hold<S: Store>(app: &AppState<S>, caller: &Caller, id: &str, need: &ApprovalNeed, wait: u64) -> Held {
    let rounds = wait.saturating_mul(4);
    for _ in 0..rounds {
        tokio::time::sleep(HOLD_POLL).await;
        let record = match app.store.approval(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Held::Unanswered,
            Err(e) => {
                tracing::error!(error = %e, approval_id = id, "approval lookup failed while holding a call");
                return Held::Unanswered;
            }
        };
        match record.status {
            ApprovalStatus::Pending => continue,
            ApprovalStatus::Denied => return Held::Denied,
            ApprovalStatus::Approved => {}
            _ => return Held::Unanswered,
        }
        let Ok(asked) = Asked::from_json(&record.request) else {
            return Held::Unanswered;
        };
        let now = crate::state::now();
        let by = match still_approved(&record, &asked, need) {
            Ok(by) => by,
            Err(why) => {
                let refused = event(id, "refused", &asked, record.decided_by.as_deref(), Some(&why), now);
                if let Err(e) = app.audit.record(refused).await {
                    tracing::error!(error = %e, approval_id = id, "a refused held call could not be audited");
                }
                return Held::Unanswered;
            }
        };
        let holder = format!("held:{}", caller.request_id);
        return match app.store.take_approval(id, &holder, now).await {
            Ok(true) => {
                let used = event(id, "used", &asked, Some(&by), Some("the held call went on"), now);
                if let Err(e) = app.audit.record(used).await {
                    tracing::error!(error = %e, approval_id = id, "an approval's use could not be audited");
                }
                Held::Approved
            }
            Ok(false) => Held::Unanswered,
            Err(e) => {
                tracing::error!(error = %e, approval_id = id, "spending an approval failed");
                Held::Unanswered
            }
        };
    }
    Held::Unanswered
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_token_names_one_approval() {
        let d = json!([{"type": "tool_call", "tool": "rm", "approval_id": "apr_1"}]);
        let (id, bare) = approval_of(&d).unwrap();
        assert_eq!((id, bare), ("apr_1", json!({"type": "tool_call", "tool": "rm"})));
        assert!(approval_of(&json!([{"type": "tool_call"}])).is_none());
        assert!(approval_of(&json!([{"approval_id": "a"}, {"approval_id": "b"}])).is_none());
        assert!(approval_of(&json!({"approval_id": "a"})).is_none());
    }
}
