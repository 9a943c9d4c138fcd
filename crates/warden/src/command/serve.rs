//! `warden serve`: opens the store and runs the server with the resolved
//! configuration until SIGTERM or SIGINT.
//!
//! `warden serve --demo` also starts the built-in demo upstream
//! ([`warden_server::demo`]) on a loopback port, adds routes to it
//! ([`demo_routes`]), registers the demo clients when absent and renews
//! their secrets ([`register_demo_clients`]), and prints a copy-pasteable
//! walk-through. Without `--demo` nothing of it happens; a server with no
//! routes only prints a hint that `--demo` exists.

use std::net::SocketAddr;

use anyhow::Context as _;
use warden_audit::{AuditEvent, EventKind};
use warden_server::App;
use warden_server::oauth::clients::{self, ClientError, ClientSpec};
use warden_server::options::{IdSource, RateLimit, ResourceSpec, RouteConfig, RouteKind};
use warden_store::Store;
use warden_store::oauth::ClientKind;

use super::{Context, now};
use crate::cli::ServeArgs;
use crate::store_select::{StoreTask, with_store};

/// Runs the server.
pub async fn run(ctx: &Context, args: &ServeArgs) -> anyhow::Result<()> {
    with_store(&ctx.options.storage, true, ServeTask { ctx, demo: args.demo }).await
}

struct ServeTask<'a> {
    ctx: &'a Context,
    demo: bool,
}

impl StoreTask for ServeTask<'_> {
    type Output = ();

    async fn run<S: Store>(self, store: S) -> anyhow::Result<()> {
        let ctx = self.ctx;
        let master = ctx.store_master_key(&store, true).await?;
        let backend = store.backend();
        let mut options = ctx.options.clone();
        let demo = if self.demo {
            let (addr, task) = warden_server::demo::spawn_demo_upstream()
                .await
                .context("starting the demo upstream")?;
            options.routes.extend(demo_routes(addr));
            for (model, stage) in DEMO_MODEL_STAGES {
                options
                    .model_stages
                    .entry(model.to_owned())
                    .or_insert_with(|| stage.to_owned());
            }
            Some((addr, task))
        } else {
            None
        };
        let app = App::new(store, master, options).await.context(if self.demo {
            "starting the server (with the --demo routes /v1/chat, /v1/models and /mcp)"
        } else {
            "starting the server"
        })?;
        reload_on_sighup(&app);
        let secrets = match demo {
            Some(_) => Some(register_demo_clients(&app).await?),
            None => None,
        };
        let listener = warden_server::bind(ctx.options.listen)
            .await
            .with_context(|| format!("listening on {}", ctx.options.listen))?;
        let local = listener.local_addr().context("reading the bound address")?;
        eprintln!(
            "warden listening on http://{local} (issuer {}, {backend} store)",
            ctx.options.issuer
        );
        eprintln!(
            "  metadata: {}/.well-known/oauth-authorization-server",
            ctx.options.issuer
        );
        eprintln!("  audit log verifier key: {}", app.vkey());
        eprintln!(
            "  dashboard: {}/ui/{} (sign in with a link from `warden ui link --sub user:NAME --role auditor`)",
            ctx.options.dashboard_base().trim_end_matches('/'),
            if ctx.options.dashboard.listen.is_some() {
                ", on its own listener"
            } else {
                ""
            }
        );
        if let Some(url) = &ctx.options.redis_url {
            let r = &ctx.options.rate_limit;
            eprintln!(
                "  rate limits: shared through Redis at {} (while it is unreachable: {}, replicas {})",
                warden_store::redact_url(url),
                r.redis_fallback.as_str(),
                r.replicas
            );
        }
        match (ctx.options.metrics.enabled, ctx.options.metrics.listen) {
            (true, Some(addr)) => eprintln!("  metrics: http://{addr}/metrics"),
            (true, None) => eprintln!("  metrics: http://{local}/metrics (a token with the metrics.read scope)"),
            (false, _) => {}
        }
        match (&demo, &secrets) {
            (Some((addr, _)), Some(secrets)) => eprintln!("{}", walkthrough(ctx, *addr, local, secrets)),
            _ if ctx.options.routes.is_empty() => eprintln!(
                "  no gateway routes are configured ([[route]] in warden.toml); \
                 `warden serve --demo` adds a built-in demo upstream, routes and clients"
            ),
            _ => {}
        }
        let served = app.serve(listener, shutdown_signal()).await;
        if let Some((_, task)) = demo {
            task.abort();
        }
        served?;
        eprintln!("warden stopped");
        Ok(())
    }
}

/// The demo service client: calls models, and MCP tools only if a policy
/// lets a service do so.
pub const DEMO_APP: &str = "demo-app";
/// The demo agent: calls the MCP tool `echo` (`tool:echo`) and no other.
pub const DEMO_AGENT: &str = "demo-agent";

/// Stages of the demo models in the model catalog (unless the
/// configuration names them): `forbidden-model` is archived, which policy
/// forbids invoking.
pub const DEMO_MODEL_STAGES: [(&str, &str); 3] = [
    ("demo-small", "production"),
    ("demo-large", "production"),
    ("forbidden-model", "archived"),
];

/// The routes of `--demo`, to the demo upstream at `upstream`. Their
/// tokens' audience is the issuer (no `audience`).
pub fn demo_routes(upstream: SocketAddr) -> Vec<RouteConfig> {
    let route = |name: &str, methods: &[&str], prefix: &str, action: &str, resource: ResourceSpec| RouteConfig {
        name: name.to_owned(),
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        path_prefix: prefix.to_owned(),
        upstream: format!("http://{upstream}{prefix}"),
        audience: None,
        action: action.to_owned(),
        resource,
        scopes: Vec::new(),
        rate_limit: None,
        forward_authorization: false,
        approval_wait: 0,
        kind: RouteKind::Openai,
    };
    vec![
        RouteConfig {
            scopes: vec!["inference.invoke".into()],
            rate_limit: Some(RateLimit {
                per_second: 20.0,
                burst: 40,
            }),
            ..route(
                "demo-chat",
                &["POST"],
                "/v1/chat",
                "inference.invoke",
                ResourceSpec {
                    type_name: "Model".into(),
                    id: IdSource::JsonField("model".into()),
                },
            )
        },
        RouteConfig {
            scopes: vec!["inference.invoke".into()],
            ..route(
                "demo-models",
                &["GET"],
                "/v1/models",
                "inference.invoke",
                ResourceSpec {
                    type_name: "Endpoint".into(),
                    id: IdSource::Literal("models".into()),
                },
            )
        },
        RouteConfig {
            scopes: vec!["tools.call".into()],
            kind: RouteKind::Mcp,
            ..route(
                "demo-mcp",
                &[],
                "/mcp",
                "tool.call",
                ResourceSpec {
                    type_name: "Tool".into(),
                    id: IdSource::McpToolName,
                },
            )
        },
    ]
}

/// The demo clients: (spec, what it is for).
fn demo_clients() -> [ClientSpec; 2] {
    let spec = |name: &str, kind, scopes: &str, roles: &[&str]| ClientSpec {
        name: name.to_owned(),
        kind,
        grants: vec!["client_credentials".into()],
        scopes: vec![scopes.to_owned()],
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        audiences: Vec::new(),
        auth: "secret".into(),
        jwks: None,
        tenant: None,
        redirect_uris: Vec::new(),
        require_dpop: false,
    };
    [
        spec(
            DEMO_APP,
            ClientKind::Service,
            "inference.invoke tools.call",
            &["ml-engineer"],
        ),
        spec(DEMO_AGENT, ClientKind::Agent, "tools.call tool:echo", &[]),
    ]
}

/// The demo clients' secrets, in the order of [`demo_clients`].
pub struct DemoSecrets(Vec<(String, clients::IssuedSecret)>);

impl DemoSecrets {
    fn get(&self, client_id: &str) -> &str {
        self.0
            .iter()
            .find(|(id, _)| id == client_id)
            .map_or("", |(_, s)| s.0.as_str())
    }
}

/// Registers the demo clients that do not exist yet, and gives the others
/// a new secret (a secret is shown only once, and the walk-through needs
/// it). Clients that exist keep their settings. Each change is audited.
async fn register_demo_clients<S: Store>(app: &App<S>) -> anyhow::Result<DemoSecrets> {
    let (state, hasher) = (app.state(), &app.clients().hasher);
    let now = now();
    let mut secrets = Vec::new();
    for spec in demo_clients() {
        let (action, secret) = match clients::create(&state.store, hasher, &spec, now).await {
            Ok((_, Some(secret))) => ("client.create", secret),
            Err(ClientError::Exists(_)) => {
                let secret = clients::rotate_secret(&state.store, hasher, &spec.name, now)
                    .await
                    .with_context(|| format!("renewing the secret of the demo client `{}`", spec.name))?;
                app.clients().forget(&spec.name);
                ("client.rotate_secret", secret)
            }
            Ok((_, None)) => anyhow::bail!("the demo client `{}` got no secret", spec.name),
            Err(e) => return Err(e).with_context(|| format!("registering the demo client `{}`", spec.name)),
        };
        let event = EventKind::AdminAction {
            principal: "warden:demo".into(),
            action: action.into(),
            target: spec.name.clone(),
        };
        state
            .audit
            .record(AuditEvent::new(now, event))
            .await
            .map_err(|e| anyhow::anyhow!("auditing the demo client `{}`: {e}", spec.name))?;
        secrets.push((spec.name, secret));
    }
    Ok(DemoSecrets(secrets))
}

/// The `--demo` walk-through: shell lines that work as printed.
fn walkthrough(ctx: &Context, upstream: SocketAddr, local: SocketAddr, secrets: &DemoSecrets) -> String {
    let s = &ctx.options;
    // The issuer is the public URL; when it is not this machine's, talk to
    // the socket directly.
    let base = if s.issuer.starts_with("http://") {
        s.issuer.clone()
    } else {
        format!("http://{local}")
    };
    let warden = std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
        .filter(|p| !p.contains([' ', '\'', '"', '$']))
        .unwrap_or_else(|| "warden".into());
    let data_dir = std::fs::canonicalize(&s.storage.data_dir).unwrap_or_else(|_| s.storage.data_dir.clone());
    let default_db = warden_server::options::StorageOptions::embedded(s.storage.data_dir.clone()).database_url;
    let audit = if s.storage.database_url == default_db {
        format!("{warden} audit tail -n 4 --data-dir '{}'", data_dir.display())
    } else {
        format!("{warden} audit tail -n 4   # with this server's --config / --database-url")
    };
    let token = |client: &str, secret: &str, var: &str| {
        format!(
            "{var}=$(curl -s -u \"{client}:${secret}\" -d grant_type=client_credentials \"$WARDEN/oauth/token\" \\\n    \
             | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')"
        )
    };
    // `; echo`: the JSON answers end without a newline.
    let chat = |flags: &str, model: &str, stream: bool| {
        let (field, end) = if stream {
            (r#""stream":true,"#, "")
        } else {
            ("", "; echo")
        };
        format!(
            "curl {flags} \"$WARDEN/v1/chat/completions\" -H \"Authorization: Bearer $TOKEN\" \\\n    \
             -H 'Content-Type: application/json' \\\n    \
             -d '{{\"model\":\"{model}\",{field}\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'{end}"
        )
    };
    let mcp = |body: &str| {
        format!(
            "curl -s \"$WARDEN/mcp\" -H \"Authorization: Bearer $AGENT\" -H 'Content-Type: application/json' \\\n    \
             -H 'Accept: application/json, text/event-stream' \\\n    -d '{body}'; echo"
        )
    };
    let lines = [
        String::new(),
        format!("Demo: an OpenAI-compatible API and an MCP server run at http://{upstream}, behind these routes:"),
        "  POST /v1/chat/...  model from the body's \"model\"; scope inference.invoke; 20/s, burst 40".into(),
        "  GET  /v1/models    scope inference.invoke; models demo-small and demo-large (production), \
         forbidden-model (archived)"
            .into(),
        "  /mcp               MCP tools/call by tool name; scope tools.call (tool:NAME per tool)".into(),
        format!(
            "Clients (secrets renewed on every start): {DEMO_APP} (service, role ml-engineer, scopes inference.invoke tools.call),"
        ),
        format!("  {DEMO_AGENT} (agent, scopes tools.call tool:echo)"),
        String::new(),
        "Try it: paste these lines into another shell (bash, with curl):".into(),
        String::new(),
        format!("WARDEN={base}"),
        format!("APP_SECRET='{}'", secrets.get(DEMO_APP)),
        format!("AGENT_SECRET='{}'", secrets.get(DEMO_AGENT)),
        String::new(),
        format!("# 1. a token for {DEMO_APP} (OAuth client_credentials)"),
        token(DEMO_APP, "APP_SECRET", "TOKEN"),
        String::new(),
        "# 2. call a model".into(),
        chat("-s", "demo-small", false),
        String::new(),
        "# 3. stream a reply, word by word (server-sent events)".into(),
        chat("-sN", "demo-large", true),
        String::new(),
        "# 4. be denied forbidden-model (archived in the demo's model catalog): 403, the reason only in the audit log"
            .into(),
        chat("-s -i", "forbidden-model", false),
        String::new(),
        "# 5. the audit events: each access decision with the deciding policies".into(),
        audit,
        String::new(),
        format!("# 6. MCP as the agent {DEMO_AGENT}: echo is allowed, search_datasets is not"),
        token(DEMO_AGENT, "AGENT_SECRET", "AGENT"),
        mcp(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#),
        mcp(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search_datasets","arguments":{"query":"fraud"}}}"#,
        ),
        String::new(),
    ];
    lines.join("\n")
}

/// Reloads the Cedar policies on SIGHUP (an invalid set is refused and
/// logged; the one in force stays).
fn reload_on_sighup<S: Store>(app: &App<S>) {
    #[cfg(unix)]
    {
        let (access, state) = (std::sync::Arc::clone(app.access()), std::sync::Arc::clone(app.state()));
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                access.reload_policies(&state, "SIGHUP").await;
            }
        });
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
