//! Applying changes made elsewhere: a notice from another replica is
//! applied at once (a revocation) or turns into a reload (keys, registry
//! attributes, policies); reconciliation re-reads everything from the
//! store, after every (re)subscription and periodically, so a missed
//! notice heals within seconds.
//!
//! Reloads asked for by notices are coalesced: at most one at a time per
//! kind, at most four a second, so a flood of notices costs a bounded
//! amount of work. A revocation's `exp` is clamped to the longest token
//! lifetime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use warden_store::Store;

use crate::access::Access;
use crate::notice::Notice;
use crate::oauth::clients::Clients;
use crate::state::{AppState, now};

/// Least time between two reloads of one kind asked for by notices.
const RELOAD_SPACING: Duration = Duration::from_millis(250);

/// What a replica updates when something changed elsewhere.
#[derive(Debug)]
pub struct Replica<S> {
    /// The shared core (revocations, keys).
    pub app: Arc<AppState<S>>,
    /// Policies and registry attributes.
    pub access: Arc<Access>,
    /// The client cache.
    pub clients: Arc<Clients>,
    reloads: Reloads,
}

/// Reloads asked for by notices and not yet done.
#[derive(Debug, Default)]
struct Reloads {
    keys: AtomicBool,
    registry: AtomicBool,
    policies: AtomicBool,
    wake: tokio::sync::Notify,
}

impl<S: Store> Replica<S> {
    /// The parts a replica keeps in step.
    pub fn new(app: Arc<AppState<S>>, access: Arc<Access>, clients: Arc<Clients>) -> Self {
        Replica {
            app,
            access,
            clients,
            reloads: Reloads::default(),
        }
    }

    /// Applies a notice from another replica: a revocation or a client
    /// change at once, a reload by flagging it for [`Replica::reload_loop`].
    pub fn apply(&self, notice: Notice) {
        let flag = match notice {
            Notice::Revoked { jti, exp } => {
                // Never held past the longest lifetime a token can have.
                let cap = now()
                    .saturating_add(self.app.options.max_ttl)
                    .saturating_add(warden_jose::MAX_LEEWAY);
                self.app.keys.get().api.invalidate_jti(&jti);
                self.app.revocations.insert(jti, exp.min(cap));
                return;
            }
            Notice::Client { client_id } => {
                self.clients.forget(&client_id);
                return;
            }
            Notice::Heartbeat => return,
            Notice::Keys => &self.reloads.keys,
            Notice::Registry => &self.reloads.registry,
            Notice::Policies => &self.reloads.policies,
        };
        flag.store(true, Ordering::Relaxed);
        self.reloads.wake.notify_one();
    }

    /// Does the flagged reloads, one at a time and at most four a second:
    /// a flood of notices costs as much as a few. Runs until aborted.
    pub async fn reload_loop(self: Arc<Self>) {
        let reloads = &self.reloads;
        loop {
            reloads.wake.notified().await;
            if reloads.keys.swap(false, Ordering::Relaxed) {
                self.app.reload_keys(now()).await;
            }
            if reloads.registry.swap(false, Ordering::Relaxed)
                && let Err(e) = self.access.refresh_attributes(&self.app.store).await
            {
                tracing::warn!(error = %e, "registry refresh after a fan-out notice failed");
            }
            if reloads.policies.swap(false, Ordering::Relaxed) {
                let policies = Arc::clone(&self.access.policies);
                match tokio::task::spawn_blocking(move || policies.reload()).await {
                    Ok(Ok(count)) => tracing::info!(count, "policies reloaded after a fan-out notice"),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "policy reload after a fan-out notice refused; the policies in force stay");
                    }
                    Err(e) => tracing::error!(error = %e, "policy reload task failed"),
                }
            }
            tokio::time::sleep(RELOAD_SPACING).await;
        }
    }

    /// Catches up with the store: revocations in full, keys, registry
    /// attributes.
    pub async fn reconcile(&self) {
        let now = now();
        self.app.sync_revocations(now, true).await;
        self.app.reload_keys(now).await;
        if let Err(e) = self.access.refresh_attributes(&self.app.store).await {
            tracing::warn!(error = %e, "registry refresh failed");
        }
    }
}
