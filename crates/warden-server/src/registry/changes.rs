//! Changes to the registry, audited: each change a call makes is recorded
//! after it is made, as a `registry_change` or `approval` event carrying
//! the new state, and the policies' view of the registry is refreshed here
//! and on the other replicas.
//!
//! Decisions on registry calls are audited by the access layer
//! ([`Caller::authorize`]) before anything is done.

use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;

use super::RegistryState;
use crate::access::{Caller, Context};
use crate::error::ApiError;
use crate::notice::Notice;

impl Caller {
    /// Audits a change that was made. It is already in the store, so a
    /// log failure is answered 503 (the caller retries or checks) and
    /// logged loudly.
    pub async fn audit_change<C: Context>(
        &self,
        ctx: &C,
        resource: &str,
        operation: &str,
        digest: Option<String>,
        reason: Option<String>,
    ) -> Result<(), ApiError> {
        self.audit_edit(ctx, resource, operation, digest, reason, Vec::new())
            .await
    }

    /// As [`Caller::audit_change`], with the changed fields' old and new values.
    pub async fn audit_edit<C: Context>(
        &self,
        ctx: &C,
        resource: &str,
        operation: &str,
        digest: Option<String>,
        reason: Option<String>,
        changes: Vec<String>,
    ) -> Result<(), ApiError> {
        let event = EventKind::RegistryChange {
            principal: self.principal.clone(),
            resource: resource.to_owned(),
            operation: operation.to_owned(),
            digest,
            actor_chain: self.actor_chain.clone(),
            reason,
            changes,
        };
        self.record(ctx, event).await
    }

    /// Records `event` at this call's time; 503 when the log fails.
    pub async fn record<C: Context>(&self, ctx: &C, event: EventKind) -> Result<(), ApiError> {
        ctx.app()
            .audit
            .record(AuditEvent::new(self.now, event))
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = %e, request_id = %self.request_id, "a registry change was made but could not be audited");
                ApiError::unavailable("the change was made but the audit log is unavailable")
            })
    }
}

/// Re-reads the registry attributes the policies see, after a change, and
/// tells the other replicas to.
pub async fn refresh_attributes<S: Store>(state: &RegistryState<S>) {
    if let Err(e) = state.access.refresh_attributes(&state.app.store).await {
        tracing::warn!(error = %e, "could not refresh registry attributes; they catch up within 5 s");
    }
    state.app.notices.publish(Notice::Registry);
}
