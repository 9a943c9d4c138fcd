//! Deciding and auditing on Warden's own APIs (the registry API and the
//! dashboard): every decision, allowed or denied, lands in the audit log
//! with the deciding policy ids and the stated purpose. An allowed call
//! proceeds only once its decision is durable (a log that cannot be
//! written answers 503: fail closed); a denial is answered whatever the
//! log says.

use warden_audit::Decision;
use warden_policy::Resource;

use super::{AccessRequest, Caller, Context};
use crate::error::ApiError;

/// The route name decisions on Warden's own APIs are audited under.
pub const WARDEN_API_ROUTE: &str = "registry";

impl Caller {
    fn request<'a>(&'a self, action: &'a str, resource: &'a Resource) -> AccessRequest<'a> {
        AccessRequest {
            caller: self,
            action,
            resource,
            route: WARDEN_API_ROUTE,
            required_scopes: &[],
        }
    }

    /// Whether the policies allow `action` on `resource` (no audit event:
    /// for filtering what a listing or a page shows).
    pub fn may<C: Context>(&self, ctx: &C, action: &str, resource: &Resource) -> bool {
        ctx.access().policies.decide(&self.request(action, resource)).allowed
    }

    /// Decides `action` on `resource` and audits the decision. Denied: 403
    /// (or 404, see [`denial`]). Allowed but the log cannot be written: 503.
    pub async fn authorize<C: Context>(&self, ctx: &C, action: &str, resource: &Resource) -> Result<(), ApiError> {
        let request = self.request(action, resource);
        let decision = ctx.access().policies.decide(&request);
        let app = ctx.app();
        let recorded = app
            .audit
            .record(request.event(decision.outcome(), decision.policy_ids.clone()))
            .await;
        app.metrics.registry_decision(action, decision.allowed);
        if !decision.allowed {
            if let Err(e) = recorded {
                tracing::error!(error = %e, "a denial could not be audited");
            }
            return Err(denial(action, resource, &decision.policy_ids));
        }
        recorded.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "audit log unavailable; refusing the call");
            ApiError::unavailable("the audit log is unavailable; nothing was done")
        })
    }

    /// Audits a denial decided outside the policies (the four-eyes rule).
    /// The caller is refused whatever the log says.
    pub async fn record_denial<C: Context>(&self, ctx: &C, action: &str, resource: &str, policy_id: &str) {
        let event = self.decision_event(
            action,
            resource,
            WARDEN_API_ROUTE,
            Decision::Deny,
            vec![policy_id.to_owned()],
        );
        let app = ctx.app();
        app.metrics.registry_decision(action, false);
        if let Err(e) = app.audit.record(event).await {
            tracing::error!(error = %e, "a denial could not be audited");
        }
    }

    /// Audits an allowed listing (one event for the whole list, `what`
    /// naming it, e.g. `Dataset::*`).
    pub async fn audit_listing<C: Context>(&self, ctx: &C, action: &str, what: &str) -> Result<(), ApiError> {
        let event = self.decision_event(action, what, WARDEN_API_ROUTE, Decision::Allow, Vec::new());
        ctx.app()
            .audit
            .record(event)
            .await
            .map(|_| ())
            .map_err(|_| ApiError::unavailable("the audit log is unavailable; nothing was done"))
    }
}

/// The answer to a denial: `insufficient_scope` (RFC 6750, with a
/// challenge) when the token lacks the action's scope; 404 for another
/// tenant's object (a 403 would confirm its name); else `access_denied`,
/// with a hint when a purpose would help. The deciding policy ids go to
/// the audit log, not the body.
fn denial(action: &str, resource: &Resource, policy_ids: &[String]) -> ApiError {
    if policy_ids.iter().any(|p| p.strip_prefix("scope.") == Some(action)) {
        return ApiError::insufficient_scope(&format!("the `{action}` scope"));
    }
    if action.ends_with(".read") && policy_ids.iter().any(|p| p == "tenant.isolation") {
        return ApiError::not_found(format!("{resource} not found"));
    }
    let mut text = format!("the policies do not allow `{action}` on {resource}");
    if policy_ids
        .iter()
        .any(|p| p == "dataset.purpose" || p == "dataset.pii-purpose")
    {
        text.push_str(&format!(
            "; state one of the dataset's allowed purposes in `{}`",
            super::purpose::HEADER
        ));
    }
    ApiError::access_denied(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_say_what_would_help_and_hide_other_tenants() {
        let r = Resource::new("Dataset", "payroll");
        assert_eq!(
            denial("dataset.read", &r, &["scope.dataset.read".into()]).code,
            "insufficient_scope"
        );
        assert_eq!(
            denial("dataset.read", &r, &["tenant.isolation".into()]).status.as_u16(),
            404
        );
        let e = denial("dataset.read", &r, &["dataset.pii-purpose".into()]);
        assert!(e.description.contains("x-warden-purpose"), "{}", e.description);
    }
}
