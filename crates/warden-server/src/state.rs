//! What every handler shares: the store, the keys, the revocation list,
//! the audit sink and the limits. Built once by [`crate::App`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use warden_store::oauth::ClientRecord;
use warden_store::{KeyManager, Store};

use crate::audit_sink::AuditSink;
use crate::clients::SecretHasher;
use crate::error::ApiError;
use crate::failures::FailureLimiter;
use crate::federation::Federation;
use crate::gateway::cedar::CedarAuthorizer;
use crate::keys::KeyCache;
use crate::metrics::Metrics;
use crate::options::ServerOptions;
use crate::revocation::Revocations;

/// How long a client record read from the store is trusted (a change on
/// another replica takes effect within this; local changes at once).
const CLIENT_TTL: Duration = Duration::from_secs(5);

/// Shared server state.
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
    /// Trusted external issuers.
    pub federation: Federation,
    /// Client-secret hashing.
    pub hasher: SecretHasher,
    /// Failed-authentication limits.
    pub failures: FailureLimiter,
    /// Prometheus metrics (this App's own recorder).
    pub metrics: Metrics,
    /// The Cedar policies, for the gateway and the registry API.
    pub policies: Arc<CedarAuthorizer>,
    /// Notices to the other replicas (Redis pub/sub), when configured.
    pub fanout: crate::fanout::Fanout,
    /// The dashboard's keys and jobs.
    pub ui: crate::dashboard::UiState,
    /// Recently read clients.
    clients: Mutex<HashMap<String, (ClientRecord, Instant)>>,
    /// Client ids whose last use was recorded recently, and when.
    touched: Mutex<HashMap<String, u64>>,
    /// False while shutting down or while the store is unreachable.
    ready: AtomicBool,
}

impl<S: Store> AppState<S> {
    /// Assembles the state.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: S,
        options: ServerOptions,
        keys: KeyCache,
        manager: KeyManager<S>,
        audit: Arc<dyn AuditSink>,
        federation: Federation,
        hasher: SecretHasher,
        metrics: Metrics,
        policies: Arc<CedarAuthorizer>,
        fanout: crate::fanout::Fanout,
        ui: crate::dashboard::UiState,
    ) -> Self {
        let limit = options.oauth.auth_failures_per_minute;
        let failures = match options.redis_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => FailureLimiter::shared(limit, url, &options.issuer),
            None => FailureLimiter::new(limit),
        };
        AppState {
            store,
            options,
            keys,
            manager,
            revocations: Revocations::default(),
            audit,
            federation,
            hasher,
            failures,
            metrics,
            policies,
            fanout,
            ui,
            clients: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(true),
        }
    }

    /// A client by id, from a short-lived cache.
    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, ApiError> {
        if let Ok(cache) = self.clients.lock()
            && let Some((record, at)) = cache.get(client_id)
            && at.elapsed() < CLIENT_TTL
        {
            return Ok(Some(record.clone()));
        }
        let record = self.store.get_client(client_id).await?;
        if let (Some(r), Ok(mut cache)) = (&record, self.clients.lock()) {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(client_id.to_owned(), (r.clone(), Instant::now()));
        }
        Ok(record)
    }

    /// Forgets a cached client after a local change.
    pub fn forget_client(&self, client_id: &str) {
        if let Ok(mut cache) = self.clients.lock() {
            cache.remove(client_id);
        }
    }

    /// Records a client's use, at most once a minute per client.
    pub async fn touch_client(&self, client_id: &str, now: u64) {
        let due = match self.touched.lock() {
            Ok(mut touched) => {
                let due = touched.get(client_id).is_none_or(|t| now >= t + 60);
                if due {
                    touched.insert(client_id.to_owned(), now);
                }
                due
            }
            Err(_) => false,
        };
        if due && let Err(e) = self.store.touch_client(client_id, now).await {
            tracing::warn!(error = %e, client_id, "could not record client use");
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
