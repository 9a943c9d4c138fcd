//! `warden serve`: maps the settings onto the server's options, opens the
//! store and runs the server until SIGTERM or SIGINT.

use anyhow::Context as _;
use warden_server::options::{AuditOptions, FederatedIssuer, JwksLocation, OAuthOptions};
use warden_server::{App, ServerOptions};
use warden_store::Store;

use super::Context;
use crate::config::{JwksSource, Settings};
use crate::store_select::{StoreTask, with_store};

/// Runs the server.
pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    with_store(&ctx.settings, true, ServeTask { ctx }).await
}

/// The server's options from validated settings.
pub fn options(ctx: &Context) -> ServerOptions {
    let s: &Settings = &ctx.settings;
    ServerOptions {
        issuer: s.issuer.clone(),
        default_ttl: s.default_ttl,
        max_ttl: s.max_ttl,
        leeway: s.leeway,
        max_token_bytes: s.max_bytes,
        algorithms: s.algorithms,
        key_algorithm: s.key_algorithm,
        rotation: ctx.rotation_policy(),
        rotate_every: s.rotate_every,
        oauth: OAuthOptions {
            refresh_idle_ttl: s.oauth.refresh_idle_ttl,
            refresh_absolute_ttl: s.oauth.refresh_absolute_ttl,
            refresh_grace: s.oauth.refresh_grace,
            max_delegation_depth: s.oauth.max_delegation_depth,
            max_body_bytes: s.oauth.max_body_bytes,
            auth_failures_per_minute: s.oauth.auth_failures_per_minute,
            assertion_max_ttl: s.oauth.assertion_max_ttl,
            introspection_scope: s.oauth.introspection_scope.clone(),
        },
        audit: AuditOptions {
            origin: s.audit.origin.clone(),
            origin_explicit: s.audit.origin_explicit,
            checkpoint_interval: s.audit.checkpoint_interval,
        },
        federation: s
            .federation
            .iter()
            .map(|f| FederatedIssuer {
                issuer: f.issuer.clone(),
                jwks: match &f.jwks {
                    JwksSource::Url(u) => JwksLocation::Url(u.clone()),
                    JwksSource::File(p) => JwksLocation::File(p.clone()),
                },
                algorithms: f.algorithms,
                audience: f.audience.clone(),
                typ: f.typ.clone(),
                role_claim: f.role_claim.clone(),
                roles: f.roles.clone(),
                scope_claim: f.scope_claim.clone(),
                subject_kind: f.subject_kind.clone(),
            })
            .collect(),
        routes: s.routes.clone(),
    }
}

struct ServeTask<'a> {
    ctx: &'a Context,
}

impl StoreTask for ServeTask<'_> {
    type Output = ();

    async fn run<S: Store>(self, store: S) -> anyhow::Result<()> {
        let ctx = self.ctx;
        let master = ctx.master_key(true)?;
        let backend = store.backend();
        let app = App::new(store, master, options(ctx))
            .await
            .context("starting the server")?;
        let listener = warden_server::bind(ctx.settings.listen)
            .await
            .with_context(|| format!("listening on {}", ctx.settings.listen))?;
        let local = listener.local_addr().context("reading the bound address")?;
        eprintln!(
            "warden listening on http://{local} (issuer {}, {backend} store)",
            ctx.settings.issuer
        );
        eprintln!(
            "  metadata: {}/.well-known/oauth-authorization-server",
            ctx.settings.issuer
        );
        eprintln!("  audit log verifier key: {}", app.vkey());
        app.serve(listener, shutdown_signal()).await?;
        eprintln!("warden stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
