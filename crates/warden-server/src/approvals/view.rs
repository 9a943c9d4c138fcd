//! Approval requests as people see them: the JSON of the API and the
//! command line, and who may see which (the people who may answer it,
//! the person it is for, administrators and auditors).

use serde_json::{Value, json};
use warden_store::approvals::ApprovalRecord;

use super::asked::{Asked, may_answer, recorded_need};
use crate::access::Caller;
use crate::options::roles;

/// Whether `caller` may see the request: it may answer it, it is the
/// request's subject, or it administers or audits Warden.
pub fn visible_to(caller: &Caller, record: &ApprovalRecord, asked: &Asked) -> bool {
    if caller.is_delegated() {
        return false;
    }
    if caller.roles.iter().any(|r| r == roles::ADMIN || r == roles::AUDITOR) {
        return true;
    }
    if asked.tenant.is_some() && caller.tenant != asked.tenant {
        return false;
    }
    warden_registry::subject::same(&caller.principal, &asked.subject)
        || may_answer(
            &recorded_need(asked, record.token_ttl),
            asked,
            &caller.principal,
            &caller.roles,
        )
        .is_ok()
}

/// Whether `caller` may answer it now (for showing the buttons).
pub fn answerable_by(caller: &Caller, record: &ApprovalRecord, asked: &Asked, now: u64) -> bool {
    record.status == warden_store::approvals::ApprovalStatus::Pending
        && now < record.expires_at
        && !caller.is_delegated()
        && caller.client_id != asked.client_id
        && (asked.tenant.is_none() || caller.tenant == asked.tenant)
        && may_answer(
            &recorded_need(asked, record.token_ttl),
            asked,
            &caller.principal,
            &caller.roles,
        )
        .is_ok()
}

/// The request as the API shows it (never the `auth_req_id` or a token).
pub fn to_json(record: &ApprovalRecord, asked: &Asked) -> Value {
    json!({
        "id": record.id,
        "status": record.status.as_str(),
        "subject": asked.subject,
        "actor_chain": asked.actor_chain,
        "acting_for": asked.acting_for(),
        "client_id": record.client_id,
        "route": asked.route,
        "action": asked.action,
        "resource": asked.resource,
        "tool": asked.tool(),
        "digest": asked.digest(),
        "authorization_details": asked.details,
        "approvers": asked.approvers,
        "policy_ids": asked.policy_ids,
        "binding_message": asked.binding_message,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "approval_ttl": record.token_ttl,
        "decided_by": record.decided_by,
        "reason": record.reason,
        "decided_at": record.decided_at,
        "usable_until": record.usable_until,
        "used_at": record.used_at,
    })
}
