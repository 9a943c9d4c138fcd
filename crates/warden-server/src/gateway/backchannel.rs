//! `POST /oauth/bc-authorize` (OpenID CIBA Core 1.0 §7, poll mode): an
//! agent's client asks ahead for a person's approval of one MCP tool call
//! it will make for them, instead of waiting for the gateway to refuse it.
//!
//! The client authenticates as at the token endpoint and must hold the
//! `ciba` grant. It names the person with `login_hint` (`user:…`), may
//! give a `binding_message` shown to the approver, and says exactly what
//! it asks with `authorization_details` (RFC 9396): one `tool_call` with
//! the gateway `route`, the `tool` and `arguments_sha256` (the SHA-256 of
//! the arguments' canonical JSON, RFC 8785, base64url). The call is
//! decided now, as the agent acting for the person (no roles of the
//! person are assumed): refused when the policies would refuse it, or
//! when they ask a group other than the person (nothing here proves the
//! person let the agent act for them, so only the person may approve:
//! such calls come as the person's delegated call through the gateway).
//! Otherwise the person named answers (`self`). The answer:
//! `auth_req_id`, `expires_in`, `interval`; the token then comes from the
//! CIBA grant.
//!
//! It lives beside the gateway because it needs the routes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use warden_policy::approval::{DEFAULT_APPROVAL_TTL, SELF_APPROVER};
use warden_policy::{ApprovalNeed, Resource};
use warden_store::Store;

use super::Gateway;
use crate::access::{AccessRequest, Authorizer, Caller};
use crate::approvals::asked::{TOOL_CALL, sha256};
use crate::approvals::{self, Asked, MAX_BINDING_MESSAGE_CHARS};
use crate::error::ApiError;
use crate::http::read_body;
use crate::oauth::OAuthState;
use crate::oauth::client_auth::authenticate;
use crate::oauth::clients::grant;
use crate::oauth::form::Form;
use crate::oauth::grants::{check_grant, no_store, scopes};
use crate::options::RouteKind;
use crate::state::now;

/// What the endpoint needs.
struct Backchannel<S> {
    oauth: Arc<OAuthState<S>>,
    gateway: Option<Arc<Gateway>>,
}

/// `/oauth/bc-authorize`.
pub fn routes<S: Store>(oauth: Arc<OAuthState<S>>, gateway: Option<Arc<Gateway>>) -> Router {
    Router::new()
        .route("/oauth/bc-authorize", post(bc_authorize::<S>))
        .with_state(Arc::new(Backchannel { oauth, gateway }))
}

async fn bc_authorize<S: Store>(
    State(state): State<Arc<Backchannel<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = now();
    let oauth = &*state.oauth;
    let app = &oauth.app;
    let bytes = read_body(body, app.options.oauth.max_body_bytes).await?;
    let form = Form::parse(&headers, &bytes)?;
    let endpoint = format!("{}/oauth/bc-authorize", app.options.issuer);
    let ip = crate::http::client_ip(peer.ip(), &headers, &app.options.trusted_proxies);
    let client = authenticate(oauth, &headers, &form, ip, &endpoint, now).await?;
    check_grant(&client.client, grant::CIBA)?;

    let person = form.require("login_hint")?;
    if !person.starts_with("user:") || person.len() > 256 || person.chars().any(char::is_control) {
        return Err(ApiError::invalid_request("login_hint must name a person: `user:NAME`"));
    }
    for hint in ["id_token_hint", "login_hint_token", "user_code"] {
        if form.get(hint).is_some() {
            return Err(ApiError::invalid_request(format!(
                "`{hint}` is not supported: name the person with login_hint"
            )));
        }
    }
    let binding_message = match form.get("binding_message") {
        Some(m) if m.chars().count() > MAX_BINDING_MESSAGE_CHARS || m.chars().any(char::is_control) => {
            return Err(ApiError::new_invalid_binding_message(MAX_BINDING_MESSAGE_CHARS));
        }
        other => other.map(str::to_owned),
    };
    let details: Value = serde_json::from_str(form.require("authorization_details")?)
        .map_err(|_| ApiError::invalid_authorization_details("authorization_details is not JSON"))?;
    let (route_name, tool, digest) = tool_call(&details)?;
    let gateway = state
        .gateway
        .as_ref()
        .ok_or_else(|| ApiError::invalid_authorization_details("this server has no gateway routes"))?;
    let route = gateway
        .routes()
        .routes()
        .iter()
        .find(|r| r.name() == route_name && r.config().kind == RouteKind::Mcp)
        .ok_or_else(|| ApiError::invalid_authorization_details(format!("no MCP route `{route_name}`")))?;
    let config = route.config();
    let c = &client.client;
    let granted = scopes(&form, &c.scopes, &[&c.scopes])?;

    // The agent acting for the person, as its delegated token would.
    let caller = Caller {
        principal: person.to_owned(),
        roles: Vec::new(),
        scopes: granted,
        client_id: c.client_id.clone(),
        actor_chain: vec![client.subject()],
        tenant: c.tenant.clone(),
        jti: String::new(),
        exp: now,
        purpose: None,
        request_id: crate::http::request_id::new(),
        source_ip: ip,
        now,
        approved: None,
    };
    let resource = Resource::new(config.resource.type_name.clone(), tool.clone());
    let access = AccessRequest {
        caller: &caller,
        action: &config.action,
        resource: &resource,
        route: &config.name,
        required_scopes: &config.scopes,
    };
    let decision = oauth.access.policies.authorize(&access);
    if !decision.allowed {
        tracing::info!(client_id = %c.client_id, person, tool, policies = ?decision.policy_ids,
            "a backchannel request for a call the policies refuse");
        return Err(ApiError::bc_access_denied(
            "the policies do not allow this call for this person, approved or not",
        ));
    }
    // Nothing proves here that the person ever let this agent act for
    // them but their own approval: the person named answers, always. A
    // call whose policies ask someone else (a group) must come as the
    // person's delegated call through the gateway, which asks that group.
    let need = match decision.approval {
        None => ApprovalNeed {
            groups: vec![SELF_APPROVER.to_owned()],
            ttl: DEFAULT_APPROVAL_TTL,
            policy_ids: Vec::new(),
        },
        Some(need) if need.groups.iter().any(|g| g == SELF_APPROVER) => ApprovalNeed {
            groups: vec![SELF_APPROVER.to_owned()],
            ..need
        },
        Some(need) => {
            return Err(ApiError::bc_access_denied(format!(
                "this call needs the approval of {}, not only the person's: make it with a token the person \
                 delegated to the agent, and the gateway asks them",
                need.groups.join(" or ")
            )));
        }
    };
    let audience = config.audience.clone().unwrap_or_else(|| app.options.issuer.clone());
    let mut asked = Asked::of_call(
        &caller,
        &config.name,
        &config.action,
        resource.to_string(),
        vec![audience],
    );
    asked.details = vec![json!({
        "type": TOOL_CALL,
        "route": config.name,
        "tool": tool,
        "arguments_sha256": digest,
    })];
    asked.approvers = need.groups.clone();
    asked.policy_ids = need.policy_ids.clone();
    asked.binding_message = binding_message;
    asked.request_id = None;
    let ticket = approvals::ask(app, gateway.notifier(), asked, need.ttl, now).await?;
    Ok(no_store(json!({
        "auth_req_id": ticket.auth_req_id.as_str(),
        "expires_in": ticket.expires_in,
        "interval": ticket.interval,
        "approval_id": ticket.id,
    })))
}

/// The route, tool and arguments digest of the one `tool_call` asked.
fn tool_call(details: &Value) -> Result<(String, String, String), ApiError> {
    let bad = |text: &str| ApiError::invalid_authorization_details(text);
    let [detail] = details.as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err(bad("authorization_details must be a list of exactly one object"));
    };
    let field = |name: &str| {
        detail
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && v.len() <= 256)
            .map(str::to_owned)
            .ok_or_else(|| bad(&format!("the detail needs a string `{name}`")))
    };
    if field("type")? != TOOL_CALL {
        return Err(bad(&format!("only `{TOOL_CALL}` details can be asked for here")));
    }
    let digest = field("arguments_sha256")?;
    if digest.len() != sha256(b"").len() || warden_jose::base64url::decode(&digest).is_none() {
        return Err(bad("arguments_sha256 must be a base64url SHA-256 (43 characters)"));
    }
    let known = ["type", "route", "tool", "arguments_sha256"];
    if let Some(other) = detail
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        return Err(bad(&format!("unknown member `{other}` in the detail")));
    }
    Ok((field("route")?, field("tool")?, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tool_call_is_read() {
        let d = sha256(b"null");
        let ok = json!([{"type": "tool_call", "route": "tools", "tool": "rm", "arguments_sha256": d}]);
        assert_eq!(tool_call(&ok).unwrap(), ("tools".into(), "rm".into(), d.clone()));
        for bad in [
            json!([]),
            json!({"type": "tool_call"}),
            json!([{"type": "api_call", "route": "r", "tool": "t", "arguments_sha256": d}]),
            json!([{"type": "tool_call", "route": "r", "tool": "t", "arguments_sha256": "short"}]),
            json!([{"type": "tool_call", "route": "r", "tool": "t", "arguments_sha256": d, "extra": 1}]),
            json!([{"type": "tool_call", "route": "r", "arguments_sha256": d}]),
        ] {
            let e = tool_call(&bad).unwrap_err();
            assert_eq!(e.code, "invalid_authorization_details", "{bad}");
        }
    }
}
