//! Changes to the registry, audited: each change a call makes is recorded
//! as a `registry_change` or `approval` event carrying the new state,
//! appended by the store in the change's own transaction (a change whose
//! record cannot be written is not made, and is answered 503), and the
//! policies' view of the registry is refreshed here and on the other
//! replicas.
//!
//! Decisions on registry calls are audited by the access layer
//! ([`Caller::authorize`]) before anything is done.

use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;

use super::RegistryState;
use crate::access::Caller;
use crate::notice::Notice;

impl Caller {
    /// The `registry_change` event of a change this call makes, for the
    /// store to append in the change's own transaction: the change and its
    /// record commit together or not at all.
    pub fn change_event(
        &self,
        resource: &str,
        operation: &str,
        digest: Option<String>,
        reason: Option<String>,
    ) -> AuditEvent {
        self.edit_event(resource, operation, digest, reason, Vec::new())
    }

    /// As [`Caller::change_event`], with the changed fields' old and new values.
    pub fn edit_event(
        &self,
        resource: &str,
        operation: &str,
        digest: Option<String>,
        reason: Option<String>,
        changes: Vec<String>,
    ) -> AuditEvent {
        self.event(EventKind::RegistryChange {
            principal: self.principal.clone(),
            resource: resource.to_owned(),
            operation: operation.to_owned(),
            digest,
            actor_chain: self.actor_chain.clone(),
            reason,
            changes,
        })
    }

    /// `event` at this call's time.
    pub fn event(&self, event: EventKind) -> AuditEvent {
        AuditEvent::new(self.now, event)
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
