//! The core every part of the server shares: the store, the options, the
//! signing and verification keys, the revocation list, the audit sink, the
//! metrics and the notices to other replicas. Built once by
//! [`crate::App::new`]; each room (`oauth/`, `gateway/`, `registry/`, …)
//! holds it beside its own state.
//!
//! # What it must not touch
//! Any room: nothing here knows about tokens' grants, routes, policies,
//! the registry or the dashboard.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use warden_jose::JoseError;
use warden_store::{KeyManager, Store};

use crate::audit_sink::AuditSink;
use crate::keys::{KeyCache, KeySnapshot};
use crate::metrics::Metrics;
use crate::notice::{Notice, Notices};
use crate::options::ServerOptions;
use crate::refusals::{Refusals, Refused};
use crate::revocation::Revocations;

/// The shared core.
#[derive(Debug)]
pub struct AppState<S> {
    /// The store.
    pub store: S,
    /// Configuration.
    pub options: ServerOptions,
    /// Signing and verification keys.
    pub keys: KeyCache,
    /// Key operations (rotation, opening the signing key).
    pub manager: KeyManager<S>,
    /// Revoked token ids.
    pub revocations: Revocations,
    /// Where audit events go.
    pub audit: Arc<dyn AuditSink>,
    /// Prometheus metrics (this server's own recorder).
    pub metrics: Metrics,
    /// Notices to the other replicas.
    pub notices: Notices,
    /// Requests refused by a limit, tallied for the audit log.
    pub refusals: Refusals,
    /// False while shutting down.
    ready: AtomicBool,
}

impl<S: Store> AppState<S> {
    /// Assembles the core.
    pub fn new(
        store: S,
        options: ServerOptions,
        keys: KeyCache,
        manager: KeyManager<S>,
        audit: Arc<dyn AuditSink>,
        metrics: Metrics,
        notices: Notices,
    ) -> Self {
        AppState {
            store,
            options,
            keys,
            manager,
            revocations: Revocations::default(),
            audit,
            metrics,
            notices,
            refusals: Refusals::new(),
            ready: AtomicBool::new(true),
        }
    }

    /// Counts a request refused by a limit; its window's event is recorded
    /// by [`Self::record_refusals`] when the window ends.
    pub async fn refused(&self, who: Refused, now: u64) {
        let overflow = self.refusals.note(who, now);
        self.record_refusals(overflow, now).await;
    }

    /// Records tallied refusals (ended windows, or all at shutdown), all at
    /// once so the sink commits them in as few batches as it can (a full
    /// table hands over thousands). A failure is logged: the refusals
    /// themselves were answered already.
    pub async fn record_refusals(&self, events: Vec<warden_audit::EventKind>, now: u64) {
        let records = events
            .into_iter()
            .map(|kind| self.audit.record(warden_audit::AuditEvent::new(now, kind)));
        for result in futures_util::future::join_all(records).await {
            if let Err(e) = result {
                tracing::error!(error = %e, "could not record refused requests in the audit log");
            }
        }
    }

    /// Verifies one of Warden's own tokens with `verify` against the keys
    /// in force. When the token names a `kid` this replica does not know —
    /// a key rotated a moment ago by another replica or the CLI — the keys
    /// are read again (concurrent callers share one read, at most one a
    /// second) and the token verified once more. Every path that verifies
    /// Warden tokens goes through here, so none refuses a fresh key.
    pub async fn verify_own<T>(
        &self,
        now: u64,
        verify: impl Fn(&Arc<KeySnapshot>) -> Result<T, JoseError>,
    ) -> Result<T, JoseError> {
        let seen = self.keys.get();
        match verify(&seen) {
            Err(JoseError::UnknownKid)
                if self
                    .keys
                    .reload_for_unknown_kid(&seen, &self.manager, &self.options, now)
                    .await =>
            {
                verify(&self.keys.get())
            }
            other => other,
        }
    }

    /// Applies revocations here at once (the revocation list and the
    /// verified-token caches) and tells the other replicas (over Redis
    /// when configured; else they read them from the store within a sync
    /// period). The caller has recorded them in the store first.
    pub fn revoke(&self, revoked: Vec<(String, u64)>) {
        let keys = self.keys.get();
        for (jti, exp) in revoked {
            keys.api.invalidate_jti(&jti);
            self.notices.publish(Notice::Revoked { jti: jti.clone(), exp });
            self.revocations.insert(jti, exp);
        }
    }

    /// Catches up with revocations recorded by other replicas (`full`:
    /// all of them) and drops their tokens from the verified-token cache;
    /// a failure is logged (the next sync retries).
    pub async fn sync_revocations(&self, now: u64, full: bool) {
        match self.revocations.sync(&self.store, now, full).await {
            Ok(fresh) => {
                let keys = self.keys.get();
                for jti in fresh {
                    keys.api.invalidate_jti(&jti);
                }
            }
            Err(e) => tracing::warn!(error = %e, "revocation sync failed"),
        }
    }

    /// Re-reads the keys from the store (a rotation elsewhere); a failure
    /// is logged.
    pub async fn reload_keys(&self, now: u64) {
        if let Err(e) = self.keys.reload(&self.manager, &self.options, now).await {
            tracing::warn!(error = %e, "key reload failed");
        }
    }

    /// Whether the server takes traffic.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks the server ready or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
