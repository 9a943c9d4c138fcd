//! Deciding and auditing on Warden's own APIs (the registry API and the
//! dashboard): every decision, allowed or denied, lands in the audit log
//! with the deciding policy ids and the stated purpose. An allowed call
//! proceeds only once its decision is durable (a log that cannot be
//! written answers 503: fail closed); a denial is answered whatever the
//! log says.
//!
//! Tenants: a denial by a tenant policy (an `@id` starting with `tenant.`,
//! such as `tenant.isolation` and `tenant.strict`) on an existing object
//! is answered exactly as if the object did not exist (404, the body a
//! missing object gets), whatever the action, so that another tenant's
//! names are never confirmed; the audit event keeps the deciding policy.
//! Creating an object under a name another tenant's object holds is
//! refused as a policy denial of the create (403), never as "already
//! exists", and audited with [`NAME_TAKEN_POLICY_ID`] and the tenant
//! policy that hides the existing object.

use warden_audit::Decision;
use warden_policy::Resource;

use super::{AccessRequest, Caller, Context};
use crate::error::ApiError;

/// The route name decisions on Warden's own APIs are audited under.
pub const WARDEN_API_ROUTE: &str = "registry";

/// Policy id audited when a create is refused because another tenant's
/// object holds the name (with the tenant policy that hides it).
pub const NAME_TAKEN_POLICY_ID: &str = "registry.name-taken";

/// Policy id audited when Warden's own APIs refuse what a policy allows
/// only with a person's approval (they take none: only gateway routes do).
pub const APPROVAL_UNSUPPORTED_POLICY_ID: &str = "warden.approval-unsupported";

/// Whether `policy_id` is a tenant policy, whose denials look like "not
/// found": `tenant.isolation`, `tenant.strict` and any of one's own named
/// `tenant.…`.
pub fn is_tenant_policy(policy_id: &str) -> bool {
    policy_id.starts_with("tenant.")
}

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
        let decision = ctx.access().policies.decide(&self.request(action, resource));
        decision.allowed && decision.approval.is_none()
    }

    /// The tenant policies that keep `resource` from the caller for
    /// `action` (empty when none does, whether or not it is allowed). No
    /// audit event.
    pub fn tenant_denial<C: Context>(&self, ctx: &C, action: &str, resource: &Resource) -> Vec<String> {
        let decision = ctx.access().policies.decide(&self.request(action, resource));
        if decision.allowed {
            return Vec::new();
        }
        decision
            .policy_ids
            .into_iter()
            .filter(|p| is_tenant_policy(p))
            .collect()
    }

    /// Decides `action` on the existing `resource` and audits the
    /// decision. Denied: 403, or 404 exactly as for a missing object when
    /// a tenant policy denied (see [`denial`]). Allowed but the log cannot
    /// be written: 503.
    pub async fn authorize<C: Context>(&self, ctx: &C, action: &str, resource: &Resource) -> Result<(), ApiError> {
        self.authorize_as(ctx, action, resource, true).await
    }

    /// [`authorize`](Self::authorize) for an object about to be created
    /// with the attributes the caller gave it: a tenant denial is a plain
    /// 403 (the caller named the tenant; nothing exists to hide).
    pub async fn authorize_new<C: Context>(&self, ctx: &C, action: &str, resource: &Resource) -> Result<(), ApiError> {
        self.authorize_as(ctx, action, resource, false).await
    }

    async fn authorize_as<C: Context>(
        &self,
        ctx: &C,
        action: &str,
        resource: &Resource,
        exists: bool,
    ) -> Result<(), ApiError> {
        let request = self.request(action, resource);
        let mut decision = ctx.access().policies.decide(&request);
        let app = ctx.app();
        // Warden's own APIs take no approvals yet: what a policy allows
        // only with a person's approval is refused here (fail closed),
        // audited with the policies that asked and [`APPROVAL_UNSUPPORTED_POLICY_ID`].
        let needs_approval = decision.allowed && decision.approval.is_some();
        if needs_approval {
            decision.allowed = false;
            decision.policy_ids.push(APPROVAL_UNSUPPORTED_POLICY_ID.to_owned());
        }
        let recorded = app
            .audit
            .record(request.event(decision.outcome(), decision.policy_ids.clone()))
            .await;
        app.metrics.registry_decision(action, decision.allowed);
        if !decision.allowed {
            if let Err(e) = recorded {
                tracing::error!(error = %e, "a denial could not be audited");
            }
            if needs_approval {
                return Err(ApiError::approval_required(format!(
                    "the policies allow `{action}` on {resource} only with a person's approval, \
                     which Warden's own APIs do not take: only gateway routes do"
                )));
            }
            return Err(denial(action, resource, &decision.policy_ids, exists));
        }
        recorded.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "audit log unavailable; refusing the call");
            ApiError::unavailable("the audit log is unavailable; nothing was done")
        })
    }

    /// Audits a denial decided outside the policies (the four-eyes rule).
    /// The caller is refused whatever the log says.
    pub async fn record_denial<C: Context>(&self, ctx: &C, action: &str, resource: &str, policy_id: &str) {
        self.record_denial_by(ctx, action, resource, vec![policy_id.to_owned()])
            .await;
    }

    /// [`record_denial`](Self::record_denial) with several reasons.
    pub async fn record_denial_by<C: Context>(&self, ctx: &C, action: &str, resource: &str, policy_ids: Vec<String>) {
        let event = self.decision_event(action, resource, WARDEN_API_ROUTE, Decision::Deny, policy_ids);
        let app = ctx.app();
        app.metrics.registry_decision(action, false);
        if let Err(e) = app.audit.record(event).await {
            tracing::error!(error = %e, "a denial could not be audited");
        }
    }

    /// The answer to a create that found `name` taken by `existing`: the
    /// `conflict` (409) when the caller may see it; when a tenant policy
    /// hides it for `read_action`, the refusal a policy denial of `action`
    /// on `new` gets (403), audited with [`NAME_TAKEN_POLICY_ID`] and that
    /// policy, so that the answer never confirms another tenant's name.
    pub async fn name_taken<C: Context>(
        &self,
        ctx: &C,
        action: &str,
        new: &Resource,
        (read_action, existing): (&str, &Resource),
        conflict: ApiError,
    ) -> ApiError {
        let hidden = self.tenant_denial(ctx, read_action, existing);
        if hidden.is_empty() {
            return conflict;
        }
        let mut reasons = vec![NAME_TAKEN_POLICY_ID.to_owned()];
        reasons.extend(hidden);
        self.record_denial_by(ctx, action, &new.to_string(), reasons).await;
        access_denied(action, new, &[])
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

/// The answer to a denial: for an existing object a tenant policy keeps
/// from the caller, exactly the answer to a missing one ([`missing`]: a
/// 403, or even `insufficient_scope`, would confirm its name); else
/// `insufficient_scope` (RFC 6750, with a challenge) when the token lacks
/// the action's scope; else `access_denied`, with a hint when a purpose
/// would help. The deciding policy ids go to the audit log, not the body.
fn denial(action: &str, resource: &Resource, policy_ids: &[String], exists: bool) -> ApiError {
    if exists && policy_ids.iter().any(|p| is_tenant_policy(p)) {
        return missing(resource);
    }
    if policy_ids.iter().any(|p| p.strip_prefix("scope.") == Some(action)) {
        return ApiError::insufficient_scope(&format!("the `{action}` scope"));
    }
    access_denied(action, resource, policy_ids)
}

/// What the registry answers for a missing object: a version of another
/// tenant's dataset or model is as missing as the dataset or model itself
/// (the routes look the parent up first), so the answer names the parent.
pub fn missing(resource: &Resource) -> ApiError {
    let parent = |attribute: &str| match resource.attributes.get(attribute) {
        Some(warden_policy::AttrValue::String(name)) => name.clone(),
        _ => resource.id.clone(),
    };
    match resource.type_name.as_str() {
        "Dataset" => ApiError::not_found(format!("dataset `{}` not found", resource.id)),
        "DatasetVersion" => ApiError::not_found(format!("dataset `{}` not found", parent("dataset"))),
        "Model" => ApiError::not_found(format!("model `{}` not found", resource.id)),
        "ModelVersion" => ApiError::not_found(format!("model `{}` not found", parent("model"))),
        _ => ApiError::not_found(format!("{resource} not found")),
    }
}

/// `access_denied` for `action` on `resource`, with a hint when a purpose
/// would help.
pub fn access_denied(action: &str, resource: &Resource, policy_ids: &[String]) -> ApiError {
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
            denial("dataset.read", &r, &["scope.dataset.read".into()], true).code,
            "insufficient_scope"
        );
        let e = denial("dataset.read", &r, &["dataset.pii-purpose".into()], true);
        assert!(e.description.contains("x-warden-purpose"), "{}", e.description);
        // Another tenant's object, whatever the action and even with the
        // scope missing too, is answered as a missing one.
        for action in ["dataset.read", "dataset.write", "dataset.classify", "dataset.delete"] {
            for ids in [
                vec!["tenant.isolation".to_owned()],
                vec!["tenant.strict".to_owned()],
                vec![format!("scope.{action}"), "tenant.isolation".to_owned()],
            ] {
                let e = denial(action, &r, &ids, true);
                assert_eq!(
                    (e.status.as_u16(), e.code, e.description.as_str()),
                    (404, "not_found", "dataset `payroll` not found"),
                    "{action} {ids:?}"
                );
            }
        }
        // Creating under a tenant one named oneself: a plain refusal.
        assert_eq!(
            denial("dataset.create", &r, &["tenant.isolation".into()], false).code,
            "access_denied"
        );
        let v = Resource::new("ModelVersion", "m@2").with("model", "m");
        assert_eq!(missing(&v).description, "model `m` not found");
        let v = Resource::new("DatasetVersion", "payroll@2").with("dataset", "payroll");
        assert_eq!(missing(&v).description, "dataset `payroll` not found");
    }
}
