//! The gateway: requests that match no Warden endpoint but a configured
//! route are verified, authorized, rate-limited, audited and streamed to
//! the route's upstream.
//!
//! # The request path
//! [`serve`] reads top to bottom, one call a step, each returning a typed
//! [`GatewayError`]:
//! 1. **match**: the path is checked ([`route::check_path`]) and the
//!    longest prefix wins ([`RouteTable::find`]) → else 404;
//! 2. **authenticate**: the access token (bearer, or DPoP with its proof), Warden's for the route's
//!    audience (the issuer by default) or a trusted external issuer's for
//!    the same audience, not revoked ([`crate::access::authenticate()`]) →
//!    else 401;
//! 3. **route scopes**, before any body is read (a token that may not use
//!    the route cannot make Warden buffer its body) → else 403
//!    `insufficient_scope`; MCP routes check after step 4, since their
//!    errors carry the JSON-RPC id;
//! 4. **resource**: the id from a literal, the path, the query or a body
//!    prefix (`resource.rs`) → else 400;
//! 5. **authorize**: the [`Authorizer`] (Cedar, or [`ScopeOnlyAuthorizer`]
//!    by default) → else 403, the reason recorded only in the audit log;
//! 6. **limit**: the route's GCRA limit per subject and client → else 429;
//!    then, when the policies allow the call only with a person's
//!    approval (`@approval`), the approval: asked for (403
//!    `approval_required`; a JSON-RPC error on MCP routes), or the
//!    single-use approval token checked and spent (`approval.rs`);
//! 7. **audit**: an `access_decision` event, durable before anything is
//!    forwarded → else 503 (fail closed);
//! 8. **forward**: streamed both ways ([`forward`]) → 502/504 when the
//!    upstream fails, audited as `upstream_failure`.
//!
//! Denials at steps 3 and 5 are audited too. Every response carries
//! Warden's request id (`X-Warden-Request-Id` by default), which is also
//! sent upstream and recorded in the audit event. Each request is served
//! in a `gateway` log span carrying that id, and counted in
//! [`crate::metrics`] by route name, decision and status, with its verify,
//! authorize and upstream steps timed.
//!
//! # Layout
//! - [`route`]: matching routes (pure); their configuration is
//!   [`crate::options::route`];
//! - [`extract`]: resource ids from paths, queries and body prefixes
//!   (pure); `resource.rs`: reading the body prefix and watching the rest;
//! - [`limit`]: rate limiting; [`redis_limit`]: limits shared by replicas;
//! - [`forward`]: header hygiene and streaming;
//! - [`reply`]: errors in the route's shape (HTTP, OpenAI, MCP JSON-RPC);
//! - [`metadata`]: RFC 9728 protected-resource metadata;
//! - `approval.rs`: calls that need a person's approval; [`backchannel`]:
//!   `/oauth/bc-authorize`, asking for an approval ahead of the call
//!   (OpenID CIBA), which needs the routes and the policies.

mod approval;
pub mod backchannel;
pub mod extract;
pub mod forward;
pub mod limit;
pub mod metadata;
pub mod redis_limit;
pub mod reply;
mod resource;
pub mod route;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;
use tracing::Instrument as _;
use warden_audit::{AuditEvent, Decision, EventKind};
use warden_policy::Resource;
use warden_store::Store;

use self::extract::ExtractError;
use self::forward::{ForwardTimeouts, Forwarder, Identity, IdentityHeaders, Origin};
pub use self::limit::{LimiterStatus, LocalRateLimiter, RateKey, RateLimiter, Refusal};
pub use self::reply::GatewayError;
use self::route::{Matched, Route};
pub use self::route::{RouteError, RouteTable};
use crate::access::{Accept, Access, Caller, Presented, access_token, authenticate};
pub use crate::access::{AccessRequest, Authorizer, AuthzDecision, ScopeOnlyAuthorizer};
use crate::approvals::notify::Notifier;
use crate::error::AuthError;
use crate::http::client_ip;
use crate::options::{RouteConfig, RouteKind};
use crate::refusals::{Limit, Refused};
use crate::state::{AppState, now};

/// The resource id recorded for a request refused before its resource was read.
pub const UNREAD_RESOURCE: &str = "(not read)";

/// Policy id recorded for MCP protocol messages admitted by route scopes.
pub const MCP_PROTOCOL_POLICY_ID: &str = "warden.mcp-protocol";

/// Tunables of the gateway beyond its routes.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Longest body prefix read for a resource id (default 1 MiB).
    pub max_body_prefix: usize,
    /// Upstream connect and read timeouts.
    pub timeouts: ForwardTimeouts,
    /// Names of the identity headers, and client headers to strip.
    pub identity_headers: IdentityHeaders,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            max_body_prefix: extract::DEFAULT_MAX_PREFIX,
            timeouts: ForwardTimeouts::default(),
            identity_headers: IdentityHeaders::default(),
        }
    }
}

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GatewayBuildError {
    /// A route is invalid.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The upstream HTTP client could not be built.
    #[error("building the upstream HTTP client: {0}")]
    Client(String),
    /// The shared rate limiter is misconfigured.
    #[error("rate limiter: {0}")]
    RateLimiter(String),
}

/// The routes and what serving them needs.
#[derive(Debug)]
pub struct Gateway {
    routes: RouteTable,
    authorizer: Arc<dyn Authorizer>,
    limiter: Arc<dyn RateLimiter>,
    forwarder: Forwarder,
    settings: GatewaySettings,
    /// `X-Forwarded-Proto`: the scheme of Warden's public URL.
    proto: &'static str,
    /// Who hears about calls that wait for a person's approval.
    notifier: Arc<Notifier>,
}

impl Gateway {
    /// Validates `routes` and builds the gateway for the server whose
    /// public URL (and default token audience) is `issuer`, with the
    /// [`ScopeOnlyAuthorizer`] and a [`LocalRateLimiter`].
    pub fn new(routes: Vec<RouteConfig>, issuer: &str, settings: GatewaySettings) -> Result<Self, GatewayBuildError> {
        let routes = RouteTable::new(routes)?;
        let limiter = Arc::new(LocalRateLimiter::new(&routes));
        let forwarder = Forwarder::new(settings.timeouts).map_err(|e| GatewayBuildError::Client(e.to_string()))?;
        Ok(Gateway {
            routes,
            authorizer: Arc::new(ScopeOnlyAuthorizer),
            limiter,
            forwarder,
            settings,
            proto: if issuer.starts_with("https:") { "https" } else { "http" },
            notifier: Arc::new(Notifier::none()),
        })
    }

    /// Uses `authorizer` (the Cedar engine) instead of the default.
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// Tells approvers through `notifier` (`[[approvals.notify]]`).
    pub fn with_notifier(mut self, notifier: Arc<Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Who hears about calls that wait for a person's approval.
    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    /// Uses `limiter` (a shared one) instead of the local one.
    pub fn with_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// The rate limiter in use.
    pub fn limiter(&self) -> Arc<dyn RateLimiter> {
        Arc::clone(&self.limiter)
    }

    /// The routes.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The settings.
    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }
}

/// What [`handle`] needs: the core, the access layer and the gateway.
#[derive(Debug)]
pub struct GatewayContext<S> {
    /// The shared core.
    pub app: Arc<AppState<S>>,
    /// Who may do what.
    pub access: Arc<Access>,
    /// The gateway.
    pub gateway: Arc<Gateway>,
}

impl<S> Clone for GatewayContext<S> {
    fn clone(&self) -> Self {
        GatewayContext {
            app: Arc::clone(&self.app),
            access: Arc::clone(&self.access),
            gateway: Arc::clone(&self.gateway),
        }
    }
}

/// A router that sends every request to [`handle`]: the server's fallback.
pub fn router<S: Store>(ctx: GatewayContext<S>) -> Router {
    Router::new().fallback(handle::<S>).with_state(ctx)
}

/// A failure, with what is needed to answer it in the route's shape.
struct Failure {
    error: GatewayError,
    kind: RouteKind,
    jsonrpc_id: Option<Value>,
}

impl Failure {
    fn at(kind: RouteKind) -> impl Fn(GatewayError) -> Failure {
        move |error| Failure {
            error,
            kind,
            jsonrpc_id: None,
        }
    }
}

/// The gateway handler (the server's fallback when routes are configured).
pub async fn handle<S: Store>(State(ctx): State<GatewayContext<S>>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let request_id = crate::http::request_id::new();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let span = tracing::info_span!("gateway", request_id = %request_id);
    let served = serve(&ctx, request, &request_id).instrument(span.clone()).await;
    // Forwarded: authorized and sent upstream (whose failure is a 502/504).
    let (mut response, forwarded) = match served {
        Ok(response) => (response, true),
        Err(f) => (
            f.error.reply(f.kind, f.jsonrpc_id.as_ref()),
            matches!(f.error, GatewayError::Upstream(_)),
        ),
    };
    observe(&ctx, &span, &method, &path, forwarded, response.status(), started);
    // RFC 9728 §5.1: a 401 names where the route's protected-resource
    // metadata is, so a client can find the authorization server.
    if response.status() == StatusCode::UNAUTHORIZED
        && let Some(matched) = ctx.gateway.routes.find(&method, &path)
    {
        let url = metadata::resource_metadata_url(&ctx.app.options.issuer, &matched.route.config().path_prefix);
        let header = axum::http::header::WWW_AUTHENTICATE;
        let challenge = response
            .headers()
            .get(&header)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(challenge) = challenge
            && let Ok(v) = HeaderValue::from_str(&format!("{challenge}, resource_metadata=\"{url}\""))
        {
            response.headers_mut().insert(header, v);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        let name = ctx.gateway.settings.identity_headers.request_id.clone();
        response.headers_mut().insert(name, value);
    }
    response
}

/// The steps of the module documentation, one call each.
async fn serve<S: Store>(ctx: &GatewayContext<S>, request: Request, request_id: &str) -> Result<Response, Failure> {
    let (app, gateway) = (&*ctx.app, &*ctx.gateway);
    let (parts, body) = request.into_parts();
    // 1. match
    let matched = matching(gateway, &parts).map_err(Failure::at(RouteKind::Http))?;
    let route = matched.route;
    let config = route.config();
    let fail = Failure::at(config.kind);
    // 2. authenticate
    let caller = identify(ctx, &parts, route, request_id).await.map_err(&fail)?;
    // 3. route scopes, before the body is read
    if config.kind != RouteKind::Mcp {
        let unread = Resource::new(config.resource.type_name.clone(), UNREAD_RESOURCE);
        require_scopes(app, &caller, route, &unread).await.map_err(&fail)?;
    }
    // 4. resource
    let resource = resource::read_resource(gateway.settings.max_body_prefix, route, matched.rest, &parts, body)
        .await
        .map_err(&fail)?;
    let jsonrpc_id = resource.jsonrpc_id.clone();
    let fail = |error| Failure {
        error,
        kind: config.kind,
        jsonrpc_id: jsonrpc_id.clone(),
    };
    let target = Resource::new(config.resource.type_name.clone(), resource.id.clone());
    require_scopes(app, &caller, route, &target).await.map_err(fail)?;
    // 5. authorize
    let access = AccessRequest {
        caller: &caller,
        action: &config.action,
        resource: &target,
        route: &config.name,
        required_scopes: &config.scopes,
    };
    let decision = authorize(app, gateway, &access, resource.mcp_protocol)
        .await
        .map_err(fail)?;
    // 6. limit
    limit(app, gateway, &caller, route).await.map_err(fail)?;
    // 6b. approval
    let max_prefix = gateway.settings.max_body_prefix;
    let detail = || approval::call_detail(config, &access, &parts, &resource.body, max_prefix);
    approval::gate(
        &ctx.app,
        &gateway.notifier,
        &caller,
        &access,
        config,
        decision.approval.as_ref(),
        detail,
    )
    .await
    .map_err(fail)?;
    // 7. audit
    app.audit
        .record(access.event(Decision::Allow, decision.policy_ids))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, request_id, "audit append failed; not forwarding");
            fail(GatewayError::AuditUnavailable)
        })?;
    // 8. forward
    forward(ctx, &parts, &matched, &caller, &target, resource)
        .await
        .map_err(fail)
}

/// Step 1: the route of a request whose path is unambiguous.
fn matching<'a>(gateway: &'a Gateway, parts: &'a Parts) -> Result<Matched<'a>, GatewayError> {
    let path = parts.uri.path();
    route::check_path(path)?;
    gateway.routes.find(&parts.method, path).ok_or(GatewayError::NoRoute)
}

/// Step 2: who calls, by a token the route accepts.
async fn identify<S: Store>(
    ctx: &GatewayContext<S>,
    parts: &Parts,
    route: &Route,
    request_id: &str,
) -> Result<Caller, GatewayError> {
    let app = &*ctx.app;
    let verifying = std::time::Instant::now();
    let caller = match access_token(&parts.headers) {
        Some((scheme, token)) => {
            let presented = Presented {
                token,
                scheme,
                method: parts.method.as_str(),
                path: parts.uri.path(),
                headers: &parts.headers,
                request_id: request_id.to_owned(),
                source_ip: client_ip::of_request(parts, &app.options.trusted_proxies),
            };
            let accept = Accept::Route(route.config().audience.as_deref());
            authenticate(app, &ctx.access, presented, accept, now()).await
        }
        None => Err(AuthError::Missing),
    };
    app.metrics.verify_time(verifying.elapsed());
    Ok(caller?)
}

/// Steps 3 and 4: the token holds every scope of the route; a denial is
/// audited with `resource` (an unread id before the body is read).
async fn require_scopes<S: Store>(
    app: &AppState<S>,
    caller: &Caller,
    route: &Route,
    resource: &Resource,
) -> Result<(), GatewayError> {
    let config = route.config();
    let Some(missing) = config.scopes.iter().find(|s| !caller.scopes.contains(s)) else {
        return Ok(());
    };
    let access = AccessRequest {
        caller,
        action: &config.action,
        resource,
        route: &config.name,
        required_scopes: &config.scopes,
    };
    record_denial(app, &access, vec![ScopeOnlyAuthorizer::POLICY_ID.to_owned()]).await;
    Err(GatewayError::InsufficientScope(missing.clone()))
}

/// Step 5: the authorizer's decision; a denial is audited. MCP protocol
/// messages (initialize, tools/list, notifications) name no tool: the
/// route's scopes admit them, and they are audited as such; every
/// `tools/call` goes to the policies.
async fn authorize<S: Store>(
    app: &AppState<S>,
    gateway: &Gateway,
    access: &AccessRequest<'_>,
    mcp_protocol: bool,
) -> Result<AuthzDecision, GatewayError> {
    if mcp_protocol {
        return Ok(AuthzDecision {
            allowed: true,
            policy_ids: vec![MCP_PROTOCOL_POLICY_ID.to_owned()],
            approval: None,
        });
    }
    let authorizing = std::time::Instant::now();
    let decision = gateway.authorizer.authorize(access);
    app.metrics.authorize_time(authorizing.elapsed());
    if decision.allowed {
        return Ok(decision);
    }
    let caller = access.caller;
    tracing::info!(request_id = %caller.request_id, route = access.route, principal = %caller.principal,
        resource = %access.resource, policies = ?decision.policy_ids, "access denied");
    record_denial(app, access, decision.policy_ids).await;
    Err(GatewayError::Forbidden)
}

/// Step 6: the route's rate limit for this subject and client.
async fn limit<S: Store>(
    app: &AppState<S>,
    gateway: &Gateway,
    caller: &Caller,
    route: &Route,
) -> Result<(), GatewayError> {
    let key = RateKey {
        subject: caller.principal.clone(),
        client_id: caller.client_id.clone(),
        route: route.name().to_owned(),
    };
    let checked = gateway.limiter.check(&key).await;
    if let Err(Refusal::Limited(_)) = checked {
        let who = Refused {
            limit: Limit::Rate,
            principal: key.subject,
            route: key.route,
            source_ip: None,
        };
        app.refused(who, now()).await;
    }
    checked.map_err(GatewayError::from)
}

/// Step 8: the request upstream, its answer streamed back; a failure of
/// the upstream is audited.
async fn forward<S: Store>(
    ctx: &GatewayContext<S>,
    parts: &Parts,
    matched: &Matched<'_>,
    caller: &Caller,
    target: &Resource,
    resource: resource::Resource,
) -> Result<Response, GatewayError> {
    let (app, gateway) = (&*ctx.app, &*ctx.gateway);
    let route = matched.route;
    let identity = Identity {
        subject: &caller.principal,
        actors: &caller.actor_chain,
        scopes: &caller.scopes,
        request_id: &caller.request_id,
    };
    let peer = client_ip::peer(parts);
    let origin = Origin {
        peer,
        peer_is_proxy: peer.is_some_and(|ip| app.options.trusted_proxies.iter().any(|n| n.contains(&ip))),
        proto: gateway.proto,
    };
    let headers = forward::upstream_headers(
        &parts.headers,
        &gateway.settings.identity_headers,
        &identity,
        &origin,
        route.config().forward_authorization,
    )?;
    let url = route.upstream_url(matched.rest, parts.uri.query());
    let sending = std::time::Instant::now();
    let sent = gateway
        .forwarder
        .send(parts.method.clone(), url, headers, resource.body)
        .await;
    app.metrics.upstream_time(route.name(), sending.elapsed());
    match sent {
        Ok(response) => Ok(response),
        // The body watch aborted the upload: the client's body was at fault.
        Err(_) if resource.aborted.get().is_some() => Err(GatewayError::BadRequest(
            resource.aborted.get().cloned().unwrap_or(ExtractError::BodyRead),
        )),
        Err(e) => {
            let error: GatewayError = e.into();
            let status = error.status().as_u16();
            let event = EventKind::UpstreamFailure {
                principal: caller.principal.clone(),
                resource: target.to_string(),
                route: route.name().to_owned(),
                request_id: caller.request_id.clone(),
                status,
                reason: error.to_string().chars().take(200).collect(),
            };
            tracing::warn!(request_id = %caller.request_id, route = route.name(), status, error = %error, "upstream failed");
            if let Err(e) = app.audit.record(AuditEvent::new(caller.now, event)).await {
                tracing::error!(error = %e, request_id = %caller.request_id, "could not audit the upstream failure");
            }
            Err(error)
        }
    }
}

/// Records a denial. The request is refused whatever happens here, so a
/// failed append is logged rather than turned into a 503.
async fn record_denial<S: Store>(app: &AppState<S>, access: &AccessRequest<'_>, policy_ids: Vec<String>) {
    if let Err(e) = app.audit.record(access.event(Decision::Deny, policy_ids)).await {
        tracing::error!(error = %e, request_id = %access.caller.request_id, "could not audit a denial");
    }
}

/// Counts and logs a request answered with `status` (metrics by route name,
/// never by path).
fn observe<S>(
    ctx: &GatewayContext<S>,
    span: &tracing::Span,
    method: &axum::http::Method,
    path: &str,
    forwarded: bool,
    status: StatusCode,
    started: std::time::Instant,
) {
    let elapsed = started.elapsed();
    let route = ctx.gateway.routes.find(method, path).map(|m| m.route.name());
    let route = route.unwrap_or(crate::metrics::NO_ROUTE);
    let metrics = &ctx.app.metrics;
    metrics.gateway_request(route, forwarded, status, elapsed);
    if !forwarded && status == StatusCode::TOO_MANY_REQUESTS {
        metrics.rate_limited(route);
    }
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(route, status = status.as_u16(), forwarded, micros, "gateway request"));
}
