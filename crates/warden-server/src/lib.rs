//! Warden's HTTP server: the OAuth 2.0 token service (RFC 6749, 7009,
//! 7523, 7662, 8414, 8693, 9068), the client admin API and the read-only
//! audit API, on axum.
//!
//! # Layout
//! - [`App`] (this file): assembles the state, the router and the
//!   background work (key reload and rotation, revocation sync, purging,
//!   signed audit checkpoints), and serves with graceful shutdown.
//! - `endpoints/`: one module per endpoint group; `grants/`: one module per
//!   grant of the token endpoint.
//! - [`registry`]: the governance registry API; [`dashboard`]: the
//!   compliance dashboard under `/ui` (templates in `templates/ui/`,
//!   embedded assets in `assets/`).
//! - [`gateway`]: the routes to upstream AI APIs, served as the router's
//!   fallback when any are configured.
//! - [`demo`]: the built-in demo upstream of `warden serve --demo` (an
//!   OpenAI-compatible API and an MCP server), on its own loopback port.
//! - Pure helpers: [`scope`] (RFC 6749 scopes), [`form`] (strict form
//!   bodies), [`failures`] (failed-authentication limits), [`error`] (RFC
//!   6749/6750 error bodies).
//! - Shells over the store: [`clients`], [`client_auth`], [`keys`],
//!   [`revocation`], [`federation`], [`audit_sink`].
//! - Observability: [`metrics`] (each App's own Prometheus recorder and
//!   `GET /metrics`, on the main listener or `metrics.listen`),
//!   [`request_id`] (request ids and log spans of the token endpoints).
//!
//! # What it must not touch
//! Token parsing and signature rules (warden-jose), storage SQL
//! (warden-store), Merkle hashing (warden-audit). Secrets never reach logs,
//! audit events or error bodies.

pub mod audit_sink;
pub mod bearer;
pub mod client_auth;
pub mod client_ip;
pub mod clients;
pub mod dashboard;
pub mod demo;
pub mod endpoints;
pub mod error;
pub mod failures;
pub mod fanout;
pub mod federation;
pub mod form;
pub mod gateway;
pub mod grants;
pub mod keys;
pub mod metrics;
pub mod options;
pub mod purpose;
pub mod registry;
pub mod request_id;
pub mod revocation;
pub mod scope;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use warden_audit::{AuditEvent, EventKind};
use warden_keys::MasterKey;
use warden_store::{AuditSigner, AuditWriter, KeyManager, OAuthStore, Store, StoreError, WriterOptions};

pub use crate::audit_sink::{AuditSink, MerkleSink};
pub use crate::options::ServerOptions;
use crate::state::{AppState, now};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A trusted issuer is misconfigured.
    #[error(transparent)]
    Federation(#[from] federation::FederationError),
    /// The policies are invalid.
    #[error(transparent)]
    Policy(#[from] warden_policy::PolicyError),
    /// A gateway route is misconfigured.
    #[error(transparent)]
    Gateway(#[from] gateway::GatewayBuildError),
    /// Binding or serving failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// The assembled server.
pub struct App<S: Store> {
    state: Arc<AppState<S>>,
    sink: MerkleSink,
    signer: Arc<AuditSigner>,
    gateway: Option<Arc<gateway::Gateway>>,
    policies: Arc<gateway::cedar::CedarAuthorizer>,
}

impl<S: Store> std::fmt::Debug for App<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("issuer", &self.state.options.issuer)
            .finish_non_exhaustive()
    }
}

impl<S: Store> App<S> {
    /// Opens everything the server needs over `store`: binds the master key,
    /// loads the signing keys (creating the first one when there is none),
    /// the audit-log key and the revocation list.
    pub async fn new(store: S, master: MasterKey, options: ServerOptions) -> Result<Self, ServerError> {
        let now = now();
        let manager = KeyManager::open(store.clone(), master.clone(), options.rotation).await?;
        let metrics = metrics::Metrics::new(&options.metrics);
        let writer = AuditWriter::spawn_with_recorder(store.clone(), WriterOptions::default(), metrics.recorder());
        let sink = MerkleSink::new(writer);
        if manager.keyring().await?.signing(now).is_err() && manager.list(now).await?.is_empty() {
            match manager.rotate(options.key_algorithm, now, true).await {
                Ok(record) => {
                    tracing::info!(kid = %record.kid, alg = %record.alg, "created the first signing key");
                    let event = EventKind::KeyCreated {
                        kid: record.kid.clone(),
                        alg: record.alg.as_str().to_owned(),
                    };
                    sink.record(AuditEvent::new(now, event))
                        .await
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                }
                // Replicas starting together on an empty database race to
                // create it; the losers use the winner's.
                Err(e) if !manager.list(now).await?.is_empty() => {
                    tracing::info!(error = %e, "another replica created the first signing key");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let keys = keys::KeyCache::load(&manager, &options, now).await?;
        let origin = &options.audit.origin;
        let signer = match AuditSigner::load_or_create(&store, &master, origin, true).await {
            // Not configured: the log keeps the origin it was created with.
            Err(StoreError::AuditOriginMismatch { stored, .. }) if !options.audit.origin_explicit => {
                AuditSigner::load_or_create(&store, &master, &stored, true).await?
            }
            other => other?,
        };
        let signer = Arc::new(signer);
        let federation = federation::Federation::new(options.federation.clone())?;
        let engine = match &options.policy_dir {
            Some(dir) => warden_policy::load(dir)?,
            None => warden_policy::PolicyEngine::builtin()?,
        };
        tracing::info!(policies = engine.policy_count(), "policies loaded");
        let registry = Arc::new(registry::attributes::RegistryAttributes::default());
        registry.refresh(&store).await?;
        let policies = Arc::new(gateway::cedar::CedarAuthorizer::new(
            engine,
            options.model_stages.clone(),
            registry,
        ));
        let gateway = if options.routes.is_empty() {
            None
        } else {
            let settings = gateway::GatewaySettings::default();
            let mut built = gateway::Gateway::new(options.routes.clone(), &options.issuer, settings)?
                .with_authorizer(policies.clone());
            // `redis_url` set: limits shared by every replica on that Redis.
            if let Some(limiter) = gateway::redis_limit::from_options(&options, built.routes())? {
                built = built.with_limiter(limiter);
            }
            Some(Arc::new(built))
        };
        let hasher = clients::SecretHasher::from_master(&master);
        let fanout = match options.redis_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => fanout::Fanout::new(url, &options.issuer, fanout::NoticeKey::from_master(&master)),
            None => fanout::Fanout::disabled(),
        };
        let state = AppState::new(
            store,
            options,
            keys,
            manager,
            Arc::new(sink.clone()),
            federation,
            hasher,
            metrics,
            policies.clone(),
            fanout,
            dashboard::UiState::new(&master, &signer),
        );
        state.revocations.sync(&state.store, now, true).await?;
        Ok(App {
            state: Arc::new(state),
            sink,
            signer,
            gateway,
            policies,
        })
    }

    /// The Cedar policies in force (with `reload`).
    pub fn policies(&self) -> Arc<gateway::cedar::CedarAuthorizer> {
        self.policies.clone()
    }

    /// Serves `gateway` (built with another authorizer, rate limiter or
    /// settings) instead of the one built from `options.routes`.
    pub fn with_gateway(mut self, gateway: gateway::Gateway) -> Self {
        self.gateway = Some(Arc::new(gateway));
        self
    }

    /// The gateway, when routes are configured.
    pub fn gateway(&self) -> Option<&Arc<gateway::Gateway>> {
        self.gateway.as_ref()
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &Arc<AppState<S>> {
        &self.state
    }

    /// The audit log's verifier key (`warden audit vkey`).
    pub fn vkey(&self) -> String {
        self.signer.vkey()
    }

    /// The HTTP routes; requests matching none go to the gateway when it
    /// has routes, and are answered 404 otherwise.
    pub fn router(&self) -> Router {
        use axum::middleware::from_fn;
        use endpoints::{admin, audit, health, introspect, metadata, revoke, token};
        let router = Router::new()
            .route("/healthz", get(health::healthz))
            .route("/readyz", {
                let limiter = self.gateway.as_ref().map(|g| g.limiter());
                get(move |state| health::readyz::<S>(state, limiter))
            })
            .route(
                "/.well-known/oauth-authorization-server",
                get(metadata::oauth_server::<S>),
            )
            .route(
                "/.well-known/openid-configuration",
                get(metadata::openid_configuration::<S>),
            )
            .route("/.well-known/jwks.json", get(metadata::jwks::<S>))
            .route(
                "/.well-known/oauth-protected-resource",
                get(protected_resource_root::<S>),
            )
            .route(
                "/.well-known/oauth-protected-resource/{*path}",
                get(protected_resource_path::<S>),
            )
            .route("/oauth/token", post(token::token::<S>).layer(from_fn(request_id::tag)))
            .route(
                "/oauth/revoke",
                post(revoke::revoke::<S>).layer(from_fn(request_id::tag)),
            )
            .route(
                "/oauth/introspect",
                post(introspect::introspect::<S>).layer(from_fn(request_id::tag)),
            )
            .route("/api/v1/admin/clients", get(admin::list::<S>).post(admin::create::<S>))
            .route("/api/v1/admin/clients/{id}", get(admin::show::<S>))
            .route("/api/v1/admin/clients/{id}/disable", post(admin::disable::<S>))
            .route("/api/v1/admin/clients/{id}/enable", post(admin::enable::<S>))
            .route(
                "/api/v1/admin/clients/{id}/rotate-secret",
                post(admin::rotate_secret::<S>),
            )
            .route("/api/v1/audit/events", get(audit::events::<S>))
            .route("/api/v1/audit/checkpoint", get(audit::checkpoint::<S>))
            .route("/api/v1/audit/proof/inclusion", get(audit::inclusion::<S>))
            .route("/api/v1/audit/proof/consistency", get(audit::consistency::<S>))
            .merge(registry::routes::<S>())
            .merge(dashboard::routes::<S>());
        let metrics_here = self.state.options.metrics.enabled && self.state.options.metrics.listen.is_none();
        let router = if metrics_here {
            router.route("/metrics", metrics::route(self.state.metrics.clone()))
        } else {
            router
        };
        let router = match &self.gateway {
            Some(g) => router.fallback_service(gateway::router(Arc::clone(&self.state), Arc::clone(g))),
            None => router.fallback(|| async { error::ApiError::not_found("no such endpoint") }),
        };
        router
            .layer(axum::Extension(GatewayExt(self.gateway.clone())))
            .with_state(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `shutdown` resolves, then stops taking
    /// connections, lets requests in flight finish, flushes the audit log
    /// and signs a last checkpoint.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let metrics_listener = match self.state.options.metrics.listen {
            Some(addr) if self.state.options.metrics.enabled => Some(bind(addr).await?),
            _ => None,
        };
        let metrics_task = metrics::spawn(self.state.metrics.clone(), metrics_listener);
        let background = tokio::spawn(background(Arc::clone(&self.state), Arc::clone(&self.signer)));
        let registry_refresh = tokio::spawn(refresh_registry(Arc::clone(&self.state)));
        let fanout_tasks = fanout::spawn(Arc::clone(&self.state));
        let watcher = match &self.state.options.policy_dir {
            Some(dir) => Some(tokio::spawn(watch_policies(
                Arc::clone(&self.state),
                Arc::clone(&self.policies),
                dir.clone(),
            ))),
            _ => None,
        };
        let router = self.router();
        let state = Arc::clone(&self.state);
        let result = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown.await;
                state.set_ready(false);
                tracing::info!("shutting down: draining requests in flight");
            })
            .await;
        background.abort();
        registry_refresh.abort();
        for task in fanout_tasks {
            task.abort();
        }
        metrics_task.abort();
        if let Some(w) = watcher {
            w.abort();
        }
        self.sink.close().await;
        if let Err(e) = warden_store::sign_checkpoint(&self.state.store, &self.signer, now()).await {
            tracing::warn!(error = %e, "could not sign the final checkpoint");
        }
        result.map_err(ServerError::Io)
    }
}

/// The gateway a protected-resource handler answers for, as an extension.
#[derive(Clone)]
struct GatewayExt(Option<Arc<gateway::Gateway>>);

impl std::fmt::Debug for GatewayExt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayExt")
    }
}

async fn protected_resource_root<S: Store>(
    state: axum::extract::State<Arc<AppState<S>>>,
    axum::Extension(GatewayExt(g)): axum::Extension<GatewayExt>,
) -> axum::response::Response {
    endpoints::metadata::protected_resource(state, g, "").await
}

async fn protected_resource_path<S: Store>(
    state: axum::extract::State<Arc<AppState<S>>>,
    axum::Extension(GatewayExt(g)): axum::Extension<GatewayExt>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> axum::response::Response {
    endpoints::metadata::protected_resource(state, g, &format!("/{path}")).await
}

/// Periodic work, each step logged and retried on its next tick.
/// Re-reads the registry attributes the policies see every 5 s, picking up
/// other replicas' changes (this process's own refresh them at once). Its
/// own task, so a slow registry never delays revocation sync.
async fn refresh_registry<S: Store>(state: Arc<AppState<S>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = state.policies.registry().refresh(&state.store).await {
            tracing::warn!(error = %e, "could not refresh registry attributes");
        }
    }
}

/// The lease whose holder signs the periodic audit checkpoints.
pub const CHECKPOINT_LEASE: &str = "audit-checkpointer";

async fn background<S: Store>(state: Arc<AppState<S>>, signer: Arc<AuditSigner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    let mut last_checkpoint = now();
    // Checkpoints are signed by one replica at a time: the holder of the
    // `audit-checkpointer` lease (held for three intervals, renewed at
    // each). Any replica's checkpoint would be consistent (they all sign
    // prefixes of one tree), but one signer keeps the log of checkpoints
    // free of duplicates and races.
    let me = request_id::new();
    loop {
        tick.tick().await;
        n += 1;
        let t = now();
        state.sync_revocations(t, n.is_multiple_of(30)).await;
        if n.is_multiple_of(5) {
            rotate_if_due(&state, t).await;
            if let Err(e) = state.keys.reload(&state.manager, &state.options, t).await {
                tracing::warn!(error = %e, "key reload failed");
            }
        }
        if n.is_multiple_of(300)
            && let Err(e) = state.store.purge_expired(t).await
        {
            tracing::warn!(error = %e, "purging expired rows failed");
        }
        let interval = state.options.audit.checkpoint_interval;
        if t >= last_checkpoint + interval {
            last_checkpoint = t;
            match state
                .store
                .try_lease(CHECKPOINT_LEASE, &me, t, interval.saturating_mul(3))
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "checkpoint lease unavailable");
                    continue;
                }
            }
            match warden_store::sign_checkpoint(&state.store, &signer, t).await {
                Ok(Some(cp)) => tracing::debug!(size = cp.size, "signed audit checkpoint"),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "signing the audit checkpoint failed"),
            }
        }
    }
}

/// What identifies the policy files' contents cheaply: every `.cedar` and
/// `.cedarschema` file under `dir` with its length and modification time.
fn policy_fingerprint(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten().take(10_000) {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if meta.is_dir() {
                if stack.len() < 64 {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "cedar" || e == "cedarschema") {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// Reloads the policies when their files change and then stay unchanged
/// for one more check (every 2 s); an invalid set is logged and never
/// replaces the one in force. Each reload is audited.
async fn watch_policies<S: Store>(
    state: Arc<AppState<S>>,
    policies: Arc<gateway::cedar::CedarAuthorizer>,
    dir: std::path::PathBuf,
) {
    let mut seen = policy_fingerprint(&dir);
    let mut pending: Option<Vec<_>> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now_seen = policy_fingerprint(&dir);
        if now_seen == seen {
            pending = None;
            continue;
        }
        // Reload only once the files have stopped changing for a whole
        // tick: a copy or rename in progress could leave a valid set that
        // lacks some `forbid` rules.
        if pending.as_ref() != Some(&now_seen) {
            pending = Some(now_seen);
            continue;
        }
        pending = None;
        seen = now_seen;
        reload_policies(&state, &policies, "file change").await;
    }
}

/// Reloads the policies now (SIGHUP or a file change); keeps the set in
/// force when the new one is invalid. Returns whether it was replaced.
pub async fn reload_policies<S: Store>(
    state: &AppState<S>,
    policies: &gateway::cedar::CedarAuthorizer,
    trigger: &str,
) -> bool {
    match policies.reload() {
        Ok(count) => {
            tracing::warn!(count, trigger, "policies reloaded");
            state.fanout.publish(fanout::Notice::Policies);
            let event = EventKind::AdminAction {
                principal: "warden".into(),
                action: "policy.reload".into(),
                target: format!("{count} policies ({trigger})"),
            };
            if let Err(e) = state.audit.record(AuditEvent::new(now(), event)).await {
                tracing::error!(error = %e, "could not audit the policy reload");
            }
            true
        }
        Err(e) => {
            tracing::error!(trigger, error = %e, "policy reload refused; the previous policies stay in force");
            false
        }
    }
}

/// Rotates the signing key when it is older than `keys.rotate_every`.
async fn rotate_if_due<S: Store>(state: &AppState<S>, now: u64) {
    let every = state.options.rotate_every;
    if every == 0 {
        return;
    }
    let Ok(list) = state.manager.list(now).await else {
        return;
    };
    let newest = list
        .iter()
        .filter(|(r, _)| r.retired_at.is_none())
        .map(|(r, _)| r.created_at)
        .max();
    if newest.is_some_and(|created| now < created + every) {
        return;
    }
    let previous = state.keys.get().signing.as_ref().map(|k| k.kid().to_owned());
    match state.manager.rotate(state.options.key_algorithm, now, false).await {
        Ok(record) => {
            tracing::info!(kid = %record.kid, "rotated the signing key on schedule");
            state.fanout.publish(fanout::Notice::Keys);
            let event = EventKind::KeyRotated {
                kid: record.kid.clone(),
                previous_kid: previous,
                alg: record.alg.as_str().to_owned(),
            };
            if let Err(e) = state.audit.record(AuditEvent::new(now, event)).await {
                tracing::error!(error = %e, "could not audit the scheduled rotation");
            }
        }
        Err(e) => tracing::warn!(error = %e, "scheduled rotation refused"),
    }
}

/// Binds `addr` (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    Ok(TcpListener::bind(addr).await?)
}

/// Convenience for tests: the store's revocations since `since`.
pub async fn revocations<S: OAuthStore>(store: &S, since: u64) -> Result<Vec<(String, u64)>, StoreError> {
    store.revocations_since(since, now()).await
}
