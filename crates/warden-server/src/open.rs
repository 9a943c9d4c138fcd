//! [`App::new`]: opening everything the server needs over a store — the
//! signing keys (creating the first one on an empty store), the audit log
//! and its checkpoint key, the policies, the gateway, Redis — and building
//! each room's state from them.

use std::sync::Arc;

use warden_audit::{AuditEvent, EventKind};
use warden_keys::MasterKey;
use warden_store::{AuditSigner, AuditWriter, KeyManager, Store, StoreError, WriterOptions};

use crate::access::{Access, CedarAuthorizer, RegistryAttributes};
use crate::admin::AdminState;
use crate::dashboard::{DashboardState, UiState};
use crate::dpop::Dpop;
use crate::gateway::{Gateway, GatewaySettings};
use crate::keys::KeyCache;
use crate::metrics::Metrics;
use crate::notice::Notices;
use crate::oauth::OAuthState;
use crate::oauth::clients::{Clients, SecretHasher};
use crate::oauth::failures::FailureLimiter;
use crate::options::ServerOptions;
use crate::redis::Redis;
use crate::registry::RegistryState;
use crate::replicas::{Fanout, NoticeKey, Replica};
use crate::state::{AppState, now};
use crate::{App, AuditSink, MerkleSink, ServerError};

impl<S: Store> App<S> {
    /// Opens everything the server needs over `store`: binds the master key,
    /// loads the signing keys (creating the first one when there is none),
    /// the audit-log key and the revocation list.
    pub async fn new(store: S, master: MasterKey, options: ServerOptions) -> Result<Self, ServerError> {
        let now = now();
        let manager = KeyManager::open(store.clone(), master.clone(), options.rotation).await?;
        let metrics = Metrics::new(&options.metrics);
        let writer = AuditWriter::spawn_with_recorder(store.clone(), WriterOptions::default(), metrics.recorder());
        let sink = MerkleSink::new(writer);
        create_first_key(&manager, &sink, &options, now).await?;
        let keys = KeyCache::load(&manager, &options, now).await?;
        let signer = Arc::new(open_signer(&store, &master, &options).await?);
        let redis = options.redis_url.as_deref().map(Redis::open).transpose()?;
        let (notices, queue) = match &redis {
            Some(_) => {
                let (notices, queue) = Notices::queue();
                (notices, Some(queue))
            }
            None => (Notices::none(), None),
        };

        let policies = open_policies(&store, &options).await?;
        let dpop = Dpop::new(
            &options.dpop,
            options.algorithms,
            master.derive("dpop nonce").as_slice(),
            redis.as_ref(),
            &options.issuer,
        );
        let access = Arc::new(Access::new(&options, Arc::clone(&policies), dpop)?);
        let gateway = build_gateway(&options, &policies)?;
        let failures = match &redis {
            Some(redis) => FailureLimiter::shared(options.oauth.auth_failures_per_minute, redis, &options.issuer),
            None => FailureLimiter::new(options.oauth.auth_failures_per_minute),
        };
        let clients = Arc::new(Clients::new(SecretHasher::from_master(&master)));
        let options_login = options.login.clone();
        let issuer = options.issuer.clone();
        let audit: Arc<dyn AuditSink> = Arc::new(sink.clone());
        let app = Arc::new(AppState::new(store, options, keys, manager, audit, metrics, notices));
        app.revocations.sync(&app.store, now, true).await?;

        let replica = Arc::new(Replica::new(
            Arc::clone(&app),
            Arc::clone(&access),
            Arc::clone(&clients),
        ));
        let fanout = match (redis, queue) {
            (Some(redis), Some(queue)) => Some(Arc::new(Fanout::new(
                redis,
                &issuer,
                NoticeKey::from_master(&master),
                queue,
            ))),
            _ => None,
        };
        let registry = Arc::new(RegistryState {
            app: Arc::clone(&app),
            access: Arc::clone(&access),
        });
        Ok(App {
            oauth: Arc::new(OAuthState {
                app: Arc::clone(&app),
                access: Arc::clone(&access),
                clients: Arc::clone(&clients),
                failures,
            }),
            admin: Arc::new(AdminState {
                app: Arc::clone(&app),
                access: Arc::clone(&access),
                clients: Arc::clone(&clients),
            }),
            dashboard: Arc::new(DashboardState::new(
                Arc::clone(&registry),
                UiState::new(&master, &signer, options_login)?,
            )),
            registry,
            gateway,
            replica,
            fanout,
            clients,
            access,
            app,
            sink,
            signer,
        })
    }
}

/// Creates the first signing key of an empty store (audited). Replicas
/// starting together on an empty database race to create it; the losers
/// use the winner's.
async fn create_first_key<S: Store>(
    manager: &KeyManager<S>,
    sink: &MerkleSink,
    options: &ServerOptions,
    now: u64,
) -> Result<(), ServerError> {
    if manager.keyring().await?.signing(now).is_ok() || !manager.list(now).await?.is_empty() {
        return Ok(());
    }
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
            Ok(())
        }
        Err(e) if !manager.list(now).await?.is_empty() => {
            tracing::info!(error = %e, "another replica created the first signing key");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The audit log's checkpoint key, created with the log. When no origin is
/// configured the log keeps the one it was created with.
async fn open_signer<S: Store>(
    store: &S,
    master: &MasterKey,
    options: &ServerOptions,
) -> Result<AuditSigner, StoreError> {
    match AuditSigner::load_or_create(store, master, &options.audit.origin, true).await {
        Err(StoreError::AuditOriginMismatch { stored, .. }) if !options.audit.origin_explicit => {
            AuditSigner::load_or_create(store, master, &stored, true).await
        }
        other => other,
    }
}

/// The Cedar policies (the configured directory or the built-in set) over
/// the registry's attributes as stored now.
async fn open_policies<S: Store>(store: &S, options: &ServerOptions) -> Result<Arc<CedarAuthorizer>, ServerError> {
    let engine = match &options.policy_dir {
        Some(dir) => warden_policy::load(dir)?,
        None => warden_policy::PolicyEngine::builtin()?,
    };
    engine.check_tenancy(options.tenancy)?;
    tracing::info!(policies = engine.policy_count(), tenancy = %options.tenancy, "policies loaded");
    let registry = Arc::new(RegistryAttributes::default());
    registry.refresh(store).await?;
    Ok(Arc::new(
        CedarAuthorizer::new(engine, options.model_stages.clone(), registry).with_tenancy(options.tenancy),
    ))
}

/// The gateway of the configured routes (none: no gateway), deciding with
/// `policies`, its limits shared through Redis when `redis_url` is set.
fn build_gateway(
    options: &ServerOptions,
    policies: &Arc<CedarAuthorizer>,
) -> Result<Option<Arc<Gateway>>, ServerError> {
    if options.routes.is_empty() {
        return Ok(None);
    }
    let notifier = crate::approvals::notify::Notifier::new(&options.approvals)?;
    let mut gateway = Gateway::new(options.routes.clone(), &options.issuer, GatewaySettings::default())?
        .with_authorizer(Arc::clone(policies) as Arc<dyn crate::access::Authorizer>)
        .with_notifier(Arc::new(notifier));
    if let Some(limiter) = crate::gateway::redis_limit::from_options(options, gateway.routes())? {
        gateway = gateway.with_limiter(limiter);
    }
    Ok(Some(Arc::new(gateway)))
}
