//! The gateway: requests that match no Warden endpoint but a configured
//! route are verified, authorized, rate-limited, audited and streamed to
//! the route's upstream.
//!
//! # The request path
//! [`handle`] reads top to bottom, each step a named call returning a
//! typed [`GatewayError`]:
//! 1. **match**: [`route::check_path`], then the longest prefix
//!    ([`RouteTable::find`]); none → 404;
//! 2. **authenticate**: the Bearer token, verified for the route's
//!    audience (the issuer by default) and not revoked → else 401;
//! 3. **resource**: the id from a literal, the path, the query or a body
//!    prefix ([`extract`]) → else 400;
//! 4. **scopes**: every scope of the route → else 403 `insufficient_scope`;
//! 5. **authorize**: the [`Authorizer`] (Cedar, or [`ScopeOnlyAuthorizer`]
//!    by default) → else 403, the reason recorded only in the audit log;
//! 6. **limit**: the route's GCRA limit per subject and client → else 429;
//! 7. **audit**: an `access_decision` event, durable before anything is
//!    forwarded → else 503 (fail closed);
//! 8. **forward**: streamed both ways ([`forward`]) → 502/504 when the
//!    upstream fails.
//!
//! Denials at steps 4 and 5 are audited too. Every response carries
//! Warden's request id (`X-Warden-Request-Id` by default), which is also
//! sent upstream and recorded in the audit event.
//!
//! Each request is served in a `gateway` log span carrying that id, and
//! counted in [`crate::metrics`] by route name, decision and status, with
//! its verify, authorize and upstream steps timed.
//!
//! # Layout
//! - [`route`]: `[[route]]` configuration and matching (pure);
//! - [`extract`]: resource ids from paths, queries and body prefixes (pure);
//! - [`authz`]: the authorization interface;
//! - [`limit`]: rate limiting; [`redis_limit`]: limits shared by replicas;
//! - [`auth`]: bearer tokens per audience;
//! - [`forward`]: header hygiene and streaming;
//! - [`reply`]: errors in the route's shape (HTTP, OpenAI, MCP JSON-RPC).
//!
//! # Not here (yet)
//! Tokens of trusted external issuers are not accepted on routes (only
//! Warden's own); `/.well-known/oauth-protected-resource` metadata and the
//! `resource_metadata` challenge parameter.

pub mod auth;
pub mod authz;

/// The resource id recorded for a request refused before its resource was read.
pub const UNREAD_RESOURCE: &str = "(not read)";

/// Policy id recorded for MCP protocol messages admitted by route scopes.
pub const MCP_PROTOCOL_POLICY_ID: &str = "warden.mcp-protocol";
pub mod cedar;
pub mod extract;
pub mod forward;
pub mod limit;
pub mod redis_limit;
pub mod reply;
pub mod route;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::Value;
use tracing::Instrument as _;
use warden_audit::{AuditEvent, Decision, EventKind};
use warden_jose::VerifiedToken;
use warden_store::Store;

use self::auth::{AudienceVerifiers, AuthError};
pub use self::authz::{AccessRequest, Authorizer, AuthzDecision, ResourceRef, ScopeOnlyAuthorizer};
use self::extract::{BodyTarget, ExtractError};
use self::forward::{ForwardTimeouts, Forwarder, Identity, IdentityHeaders, Origin, UpstreamBody};
pub use self::limit::{LimiterStatus, LocalRateLimiter, RateKey, RateLimiter, Refusal};
pub use self::reply::GatewayError;
use self::route::Route;
pub use self::route::{IdSource, RateLimit, ResourceSpec, RouteConfig, RouteError, RouteKind, RouteTable};
use crate::bearer::bearer;
use crate::state::{AppState, now};

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
    verifiers: AudienceVerifiers,
    settings: GatewaySettings,
    /// `X-Forwarded-Proto`: the scheme of Warden's public URL.
    proto: &'static str,
}

impl Gateway {
    /// Validates `routes` and builds the gateway for the server whose
    /// public URL (and default token audience) is `issuer`, with the
    /// [`ScopeOnlyAuthorizer`] and a [`LocalRateLimiter`].
    pub fn new(routes: Vec<RouteConfig>, issuer: &str, settings: GatewaySettings) -> Result<Self, GatewayBuildError> {
        let routes = RouteTable::new(routes)?;
        let limiter = Arc::new(LocalRateLimiter::new(&routes));
        let forwarder = Forwarder::new(settings.timeouts).map_err(|e| GatewayBuildError::Client(e.to_string()))?;
        let audiences = routes.routes().iter().filter_map(|r| r.config().audience.clone());
        let verifiers = AudienceVerifiers::new(issuer, audiences);
        Ok(Gateway {
            routes,
            authorizer: Arc::new(ScopeOnlyAuthorizer),
            limiter,
            forwarder,
            verifiers,
            settings,
            proto: if issuer.starts_with("https:") { "https" } else { "http" },
        })
    }

    /// Uses `authorizer` (the Cedar engine) instead of the default.
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = authorizer;
        self
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

/// What [`handle`] needs: the server's state and the gateway.
#[derive(Debug)]
pub struct GatewayContext<S> {
    /// The server's shared state.
    pub app: Arc<AppState<S>>,
    /// The gateway.
    pub gateway: Arc<Gateway>,
}

impl<S> Clone for GatewayContext<S> {
    fn clone(&self) -> Self {
        GatewayContext {
            app: Arc::clone(&self.app),
            gateway: Arc::clone(&self.gateway),
        }
    }
}

/// Where a route's RFC 9728 metadata is served.
pub fn resource_metadata_url(issuer: &str, path_prefix: &str) -> String {
    format!("{issuer}/.well-known/oauth-protected-resource{path_prefix}")
}

/// The RFC 9728 protected-resource metadata of the route whose prefix is
/// `path_prefix` (empty: the first route's audience as a whole).
pub fn resource_metadata(gateway: &Gateway, issuer: &str, path_prefix: &str) -> Option<Value> {
    let routes = gateway.routes.routes();
    let route = if path_prefix.is_empty() {
        routes.first()
    } else {
        routes.iter().find(|r| r.config().path_prefix == path_prefix)
    }?;
    let config = route.config();
    let resource = config.audience.clone().unwrap_or_else(|| issuer.to_owned());
    let mut scopes: Vec<&str> = config.scopes.iter().map(String::as_str).collect();
    scopes.sort_unstable();
    Some(serde_json::json!({
        "resource": resource,
        "authorization_servers": [issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": scopes,
        "resource_name": config.name,
    }))
}

/// A router that sends every request to [`handle`]: the server's fallback.
pub fn router<S: Store>(app: Arc<AppState<S>>, gateway: Arc<Gateway>) -> Router {
    Router::new()
        .fallback(handle::<S>)
        .with_state(GatewayContext { app, gateway })
}

/// A failure, with what is needed to answer it in the route's shape.
struct Failure {
    error: GatewayError,
    kind: route::RouteKind,
    jsonrpc_id: Option<Value>,
}

impl Failure {
    fn at(kind: route::RouteKind) -> impl Fn(GatewayError) -> Failure {
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
    let request_id = new_request_id();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let span = tracing::info_span!("gateway", request_id = %request_id);
    let served = serve(&ctx.app, &ctx.gateway, request, &request_id)
        .instrument(span.clone())
        .await;
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
    if response.status() == axum::http::StatusCode::UNAUTHORIZED
        && let Some(matched) = ctx.gateway.routes.find(&method, &path)
    {
        let url = resource_metadata_url(&ctx.app.options.issuer, &matched.route.config().path_prefix);
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

async fn serve<S: Store>(
    app: &AppState<S>,
    gateway: &Gateway,
    request: Request,
    request_id: &str,
) -> Result<Response, Failure> {
    let (parts, body) = request.into_parts();
    let plain = Failure::at(route::RouteKind::Http);
    let path = parts.uri.path();
    route::check_path(path).map_err(|e| plain(e.into()))?;
    let matched = gateway
        .routes
        .find(&parts.method, path)
        .ok_or_else(|| plain(GatewayError::NoRoute))?;
    let route = matched.route;
    let config = route.config();
    let fail = Failure::at(config.kind);
    let now = now();

    let verifying = std::time::Instant::now();
    let token = authenticate(app, gateway, &parts.headers, route, now).await;
    app.metrics.verify_time(verifying.elapsed());
    let token = token.map_err(&fail)?;
    // The route's scopes are checked before any body is read, so a token
    // that may not use the route cannot make Warden buffer its body; the
    // denial is audited with the resource type and an unread id. MCP routes
    // read the (small) JSON-RPC prefix first: their errors must carry the
    // request's id.
    let missing_scope = || config.scopes.iter().find(|s| !token.scopes.contains(s)).cloned();
    if config.kind != route::RouteKind::Mcp
        && let Some(missing) = missing_scope()
    {
        let access = access_request(app, &token, route, UNREAD_RESOURCE.to_owned(), &parts, request_id);
        let policy = vec![ScopeOnlyAuthorizer::POLICY_ID.to_owned()];
        record_denial(app, &token, &access, policy, now).await;
        return Err(fail(GatewayError::InsufficientScope(missing)));
    }
    let resource = read_resource(gateway, route, matched.rest, &parts, body)
        .await
        .map_err(&fail)?;
    let fail = |error| Failure {
        error,
        kind: config.kind,
        jsonrpc_id: resource.jsonrpc_id.clone(),
    };
    let access = access_request(app, &token, route, resource.id.clone(), &parts, request_id);
    if let Some(missing) = missing_scope() {
        let policy = vec![ScopeOnlyAuthorizer::POLICY_ID.to_owned()];
        record_denial(app, &token, &access, policy, now).await;
        return Err(fail(GatewayError::InsufficientScope(missing)));
    }

    // MCP protocol messages (initialize, tools/list, notifications) name no
    // tool: the route's scopes admit them, and they are audited as such;
    // every `tools/call` goes to the policies.
    let decision = if resource.mcp_protocol {
        AuthzDecision {
            allowed: true,
            policy_ids: vec![MCP_PROTOCOL_POLICY_ID.to_owned()],
        }
    } else {
        let authorizing = std::time::Instant::now();
        let decision = gateway.authorizer.authorize(&access);
        app.metrics.authorize_time(authorizing.elapsed());
        decision
    };
    if !decision.allowed {
        tracing::info!(request_id, route = %access.route, principal = %access.principal,
            resource = %access.resource, policies = ?decision.policy_ids, "access denied");
        record_denial(app, &token, &access, decision.policy_ids, now).await;
        return Err(fail(GatewayError::Forbidden));
    }
    let key = RateKey {
        subject: access.principal.clone(),
        client_id: access.client_id.clone(),
        route: access.route.clone(),
    };
    gateway
        .limiter
        .check(&key)
        .await
        .map_err(|refusal| fail(refusal.into()))?;
    app.audit
        .record(access_event(&token, &access, Decision::Allow, decision.policy_ids, now))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, request_id, "audit append failed; not forwarding");
            fail(GatewayError::AuditUnavailable)
        })?;

    let identity = Identity {
        subject: &access.principal,
        actors: &access.actor_chain,
        scopes: &access.scopes,
        request_id,
    };
    let origin = Origin {
        peer: peer(&parts),
        proto: gateway.proto,
    };
    let headers = forward::upstream_headers(
        &parts.headers,
        &gateway.settings.identity_headers,
        &identity,
        &origin,
        config.forward_authorization,
    )
    .map_err(|e| fail(e.into()))?;
    let url = route.upstream_url(matched.rest, parts.uri.query());
    let sending = std::time::Instant::now();
    let sent = gateway
        .forwarder
        .send(parts.method.clone(), url, headers, resource.body)
        .await;
    app.metrics.upstream_time(&access.route, sending.elapsed());
    match sent {
        Ok(response) => Ok(response),
        // The body watch aborted the upload: the client's body was at fault.
        Err(_) if resource.aborted.get().is_some() => Err(fail(GatewayError::BadRequest(
            resource.aborted.get().cloned().unwrap_or(ExtractError::BodyRead),
        ))),
        Err(e) => {
            let error: GatewayError = e.into();
            let status = error.status().as_u16();
            let event = EventKind::UpstreamFailure {
                principal: access.principal.clone(),
                resource: access.resource.to_string(),
                route: access.route.clone(),
                request_id: request_id.to_owned(),
                status,
                reason: error.to_string().chars().take(200).collect(),
            };
            tracing::warn!(request_id, route = %access.route, status, error = %error, "upstream failed");
            if let Err(e) = app.audit.record(AuditEvent::new(now, event)).await {
                tracing::error!(error = %e, request_id, "could not audit the upstream failure");
            }
            Err(fail(error))
        }
    }
}

/// Who is calling, from a verified token: Warden's own, or a trusted
/// external issuer's (`[[federation]]`, mapped to Warden subjects and roles).
#[derive(Debug, Clone)]
pub struct Caller {
    /// `user:…`, `svc:…`, `agent:…`.
    pub principal: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The OAuth client (for external tokens: their `client_id`/`azp`, else the issuer).
    pub client_id: String,
    /// The `act` chain, outermost first.
    pub actor_chain: Vec<String>,
    /// Tenant, if any.
    pub tenant: Option<String>,
    /// The token's `jti` (empty when an external token has none).
    pub jti: String,
    /// The purpose stated by the request's `X-Warden-Purpose` header or
    /// the token's `purpose` claim (set once the request is read).
    pub purpose: Option<String>,
}

impl Caller {
    pub(crate) fn from_warden(token: &VerifiedToken) -> Result<Self, AuthError> {
        let claims = token.claims();
        Ok(Caller {
            principal: claims.sub().ok_or(AuthError::MissingClaim("sub"))?.to_owned(),
            roles: claims.roles().to_vec(),
            scopes: claims.scopes().map(str::to_owned).collect(),
            client_id: claims
                .client_id()
                .ok_or(AuthError::MissingClaim("client_id"))?
                .to_owned(),
            actor_chain: crate::grants::token_exchange::actors(claims.raw().get("act")),
            tenant: claims.raw().get("tenant").and_then(Value::as_str).map(str::to_owned),
            jti: claims.jti().ok_or(AuthError::MissingClaim("jti"))?.to_owned(),
            purpose: None,
        })
    }
}

/// Verifies the bearer token — a Warden token for the route's audience, or
/// a trusted external issuer's token for the audience configured for that
/// issuer — and checks that it is not revoked.
async fn authenticate<S: Store>(
    app: &AppState<S>,
    gateway: &Gateway,
    headers: &HeaderMap,
    route: &Route,
    now: u64,
) -> Result<Caller, GatewayError> {
    let token = bearer(headers).ok_or(AuthError::Missing)?;
    let issuer = crate::federation::peek_issuer(token);
    if let Some(iss) = issuer.as_deref()
        && iss != app.options.issuer
        && app.federation.trusts(iss)
    {
        let id = app.federation.verify(token, now).await.map_err(|e| {
            tracing::info!(issuer = iss, error = %e, "external token refused");
            AuthError::External("the external token is invalid".into())
        })?;
        // A federated token reaches only routes that name its audience: a
        // token the IdP issued for something else never crosses over.
        if route.config().audience.as_deref() != Some(id.audience.as_str()) {
            return Err(AuthError::External("tokens of this issuer are not accepted on this route".into()).into());
        }
        if id.jti.as_deref().is_some_and(|j| app.revocations.is_revoked(j)) {
            return Err(AuthError::Revoked.into());
        }
        return Ok(Caller {
            principal: id.subject,
            roles: id.roles,
            scopes: id.scopes,
            client_id: id.client_id.unwrap_or(id.issuer),
            actor_chain: Vec::new(),
            tenant: None,
            jti: id.jti.unwrap_or_default(),
            // A malformed purpose states none: personal data stays closed.
            purpose: crate::purpose::stated(headers, None).ok().flatten(),
        });
    }
    let keys = app.keys.get();
    let audience = route.config().audience.as_deref();
    let (mut verified, cache_hit) = gateway
        .verifiers
        .verify_traced(&keys, &app.options, audience, token, now);
    app.metrics.token_cache(cache_hit);
    // A key rotated on another replica (or by the CLI) a moment ago: read
    // the keys again, at most once a second, and retry once.
    if matches!(verified, Err(AuthError::Invalid(warden_jose::JoseError::UnknownKid)))
        && app
            .keys
            .reload_for_unknown_kid(&keys, &app.manager, &app.options, now)
            .await
    {
        verified = gateway
            .verifiers
            .verify_traced(&app.keys.get(), &app.options, audience, token, now)
            .0;
    }
    let verified = verified?;
    let mut caller = Caller::from_warden(&verified)?;
    caller.purpose = crate::purpose::stated(headers, Some(verified.claims().raw()))
        .ok()
        .flatten();
    if app.revocations.is_revoked(&caller.jti) {
        return Err(AuthError::Revoked.into());
    }
    Ok(caller)
}

/// The resource id, the body to forward, and what watches it.
struct Resource {
    id: String,
    body: UpstreamBody,
    jsonrpc_id: Option<Value>,
    /// An MCP protocol message rather than a tool call.
    mcp_protocol: bool,
    /// Set when the body watch aborted the upload.
    aborted: Arc<OnceLock<ExtractError>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether the request has a body at all (HTTP/1.1: `Content-Length` or
/// `Transfer-Encoding`; hyper reports an absent or empty one as ended).
fn has_body(body: &Body) -> bool {
    !body.is_end_stream() && body.size_hint().exact() != Some(0)
}

fn passthrough(body: Body) -> UpstreamBody {
    if has_body(&body) {
        UpstreamBody::stream(body.into_data_stream())
    } else {
        UpstreamBody::Empty
    }
}

async fn read_resource(
    gateway: &Gateway,
    route: &Route,
    rest: &str,
    parts: &Parts,
    body: Body,
) -> Result<Resource, GatewayError> {
    let simple = |id: String, body: Body| Resource {
        id,
        body: passthrough(body),
        jsonrpc_id: None,
        mcp_protocol: false,
        aborted: Arc::default(),
    };
    let target = match &route.config().resource.id {
        IdSource::Literal(id) => return Ok(simple(id.clone(), body)),
        IdSource::PathSegment(i) => return Ok(simple(extract::path_segment(rest, *i)?, body)),
        IdSource::Query(name) => return Ok(simple(extract::query_param(parts.uri.query(), name)?, body)),
        // An MCP GET (the server's event stream) or DELETE (end of session) has no body.
        IdSource::McpToolName if !has_body(&body) => {
            return Ok(Resource {
                mcp_protocol: true,
                ..simple(parts.method.as_str().to_owned(), body)
            });
        }
        IdSource::McpToolName => BodyTarget::McpToolName,
        IdSource::JsonField(_) => BodyTarget::Field(route.json_path()),
    };
    extract::check_json_body(&parts.headers)?;
    read_body_resource(gateway.settings.max_body_prefix, target, body).await
}

/// Reads at most `max` bytes of the body for the resource id; the body is
/// then forwarded whole: the prefix, then the rest as it arrives, watched.
async fn read_body_resource(max: usize, target: BodyTarget<'_>, body: Body) -> Result<Resource, GatewayError> {
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut complete = false;
    while buffer.len() < max {
        match stream.next().await {
            Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
            Some(Err(_)) => return Err(ExtractError::BodyRead.into()),
            None => {
                complete = true;
                break;
            }
        }
    }
    let extra = if buffer.len() > max {
        buffer.split_off(max)
    } else {
        Vec::new()
    };
    let scan = extract::scan_prefix(target, &buffer, complete)?;
    let aborted: Arc<OnceLock<ExtractError>> = Arc::default();
    let body = match scan.rest {
        None => UpstreamBody::Full(Bytes::from(buffer)),
        Some(mut watch) => {
            watch.feed(&extra)?;
            let flag = Arc::clone(&aborted);
            let head = futures_util::stream::iter(
                [Bytes::from(buffer), Bytes::from(extra)]
                    .into_iter()
                    .filter(|b| !b.is_empty())
                    .map(Ok::<Bytes, BoxError>),
            );
            let tail = stream.map(move |chunk| -> Result<Bytes, BoxError> {
                let chunk = chunk?;
                if let Err(e) = watch.feed(&chunk) {
                    tracing::warn!(error = %e, "aborting the upstream request: the body turned ambiguous");
                    let _ = flag.set(e.clone());
                    return Err(Box::new(e));
                }
                Ok(chunk)
            });
            UpstreamBody::stream(head.chain(tail))
        }
    };
    Ok(Resource {
        id: scan.facts.resource_id,
        body,
        jsonrpc_id: scan.facts.jsonrpc_id,
        mcp_protocol: scan.facts.mcp_protocol,
        aborted,
    })
}

fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

fn access_request<S: Store>(
    app: &AppState<S>,
    token: &Caller,
    route: &Route,
    resource_id: String,
    parts: &Parts,
    request_id: &str,
) -> AccessRequest {
    let config = route.config();
    AccessRequest {
        principal: token.principal.clone(),
        roles: token.roles.clone(),
        scopes: token.scopes.clone(),
        client_id: token.client_id.clone(),
        actor_chain: token.actor_chain.clone(),
        tenant: token.tenant.clone(),
        action: config.action.clone(),
        resource: ResourceRef {
            type_name: config.resource.type_name.clone(),
            id: resource_id,
        },
        required_scopes: config.scopes.clone(),
        route: config.name.clone(),
        source_ip: crate::client_ip::client_ip(
            peer(parts).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            &parts.headers,
            &app.options.trusted_proxies,
        ),
        request_id: request_id.to_owned(),
        purpose: token.purpose.clone(),
    }
}

fn access_event(
    token: &Caller,
    access: &AccessRequest,
    decision: Decision,
    policy_ids: Vec<String>,
    now: u64,
) -> AuditEvent {
    AuditEvent::new(
        now,
        EventKind::AccessDecision {
            principal: access.principal.clone(),
            actor_chain: access.actor_chain.clone(),
            client_id: access.client_id.clone(),
            jti: token.jti.clone(),
            action: access.action.clone(),
            resource: access.resource.to_string(),
            decision,
            policy_ids,
            request_id: access.request_id.clone(),
            route: access.route.clone(),
            source_ip: access.source_ip,
            upstream_status: None,
            purpose: access.purpose.clone(),
        },
    )
}

/// Records a denial. The request is refused whatever happens here, so a
/// failed append is logged rather than turned into a 503.
async fn record_denial<S: Store>(
    app: &AppState<S>,
    token: &Caller,
    access: &AccessRequest,
    policy_ids: Vec<String>,
    now: u64,
) {
    let event = access_event(token, access, Decision::Deny, policy_ids, now);
    if let Err(e) = app.audit.record(event).await {
        tracing::error!(error = %e, request_id = %access.request_id, "could not audit a denial");
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
    status: axum::http::StatusCode,
    started: std::time::Instant,
) {
    let elapsed = started.elapsed();
    let route = ctx.gateway.routes.find(method, path).map(|m| m.route.name());
    let route = route.unwrap_or(crate::metrics::NO_ROUTE);
    let metrics = &ctx.app.metrics;
    metrics.gateway_request(route, forwarded, status, elapsed);
    if !forwarded && status == axum::http::StatusCode::TOO_MANY_REQUESTS {
        metrics.rate_limited(route);
    }
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(route, status = status.as_u16(), forwarded, micros, "gateway request"));
}

/// A random request id: 16 bytes, hex.
fn new_request_id() -> String {
    crate::request_id::new()
}
