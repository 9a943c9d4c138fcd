//! Leases: work that one replica at a time must do (the audit sequencer,
//! `audit_sequencer.rs`) is done by the holder of a named lease in the
//! store, held for a few intervals and renewed at each; when the holder
//! stops, another replica takes it over once it lapses.

use warden_store::{Store, StoreError};

/// One replica's claim on a named lease.
#[derive(Debug, Clone)]
pub struct Lease {
    name: &'static str,
    /// This replica's id (random per process).
    holder: String,
}

impl Lease {
    /// This process's claim on lease `name`.
    pub fn new(name: &'static str) -> Self {
        Lease {
            name,
            holder: crate::http::request_id::new(),
        }
    }

    /// Takes or renews the lease for `ttl` seconds from `now`; false when
    /// another replica holds it.
    pub async fn hold<S: Store>(&self, store: &S, now: u64, ttl: u64) -> Result<bool, StoreError> {
        store.try_lease(self.name, &self.holder, now, ttl).await
    }
}
