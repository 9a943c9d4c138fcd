//! Step 5b of the request path: a call the policies allow only with a
//! person's approval (`docs/approvals.md`). Without an approval token it
//! is not forwarded: an approval request is stored and the caller is told
//! its id, what is asked and how to get the token
//! ([`GatewayError::ApprovalRequired`]). With one, the token must name
//! exactly this call and be used for the first time
//! ([`approvals::redeem`]). An approval token is good for nothing else.
//!
//! With `approval_wait` on the route, the call is held open (up to that
//! many seconds) for the answer: approved in time, it goes on and the
//! approval is spent; denied, it is refused; otherwise the caller gets the
//! approval request as without the wait.
//!
//! What identifies the call: for MCP `tools/call`, the tool and the
//! canonical JSON of its arguments; elsewhere, the route, method, path,
//! resource and the body's bytes. Either way the body must be whole
//! within the prefix the gateway reads (`gateway.max_body_prefix`):
//! nothing more is ever buffered.

use std::sync::Arc;

use axum::http::request::Parts;
use serde_json::Value;
use warden_policy::ApprovalNeed;
use warden_store::Store;

use super::forward::UpstreamBody;
use super::reply::GatewayError;
use crate::access::{AccessRequest, Caller};
use crate::approvals::notify::Notifier;
use crate::approvals::redeem::Held;
use crate::approvals::{self, Asked, asked};
use crate::options::{RouteConfig, RouteKind};
use crate::state::AppState;

/// What the call is: its authorization detail, or why it cannot be told.
pub(super) fn call_detail(
    config: &RouteConfig,
    access: &AccessRequest<'_>,
    parts: &Parts,
    body: &UpstreamBody,
    max_body_prefix: usize,
) -> Result<Value, GatewayError> {
    let bytes: &[u8] = match body {
        UpstreamBody::Empty => &[],
        UpstreamBody::Full(b) => b,
        UpstreamBody::Stream(_) => return Err(GatewayError::ApprovalBodyTooLarge(max_body_prefix)),
    };
    match config.kind {
        RouteKind::Mcp => asked::tool_call(&config.name, &access.resource.id, bytes).map_err(|e| {
            tracing::info!(error = %e, "a tool call that needs approval could not be identified");
            GatewayError::BadRequest(super::extract::ExtractError::NotJson("the tool call's arguments"))
        }),
        _ => Ok(asked::api_call(
            &config.name,
            parts.method.as_str(),
            parts.uri.path_and_query().map_or(parts.uri.path(), |pq| pq.as_str()),
            &access.resource.to_string(),
            bytes,
        )),
    }
}

/// Lets the call through (`Ok`) or answers why not. `need` is what the
/// decision asks for; `detail` the call ([`call_detail`]), read only when
/// an approval is involved.
pub(super) async fn gate<S: Store>(
    app: &Arc<AppState<S>>,
    notifier: &Arc<Notifier>,
    caller: &Caller,
    access: &AccessRequest<'_>,
    config: &RouteConfig,
    need: Option<&ApprovalNeed>,
    detail: impl FnOnce() -> Result<Value, GatewayError>,
) -> Result<(), GatewayError> {
    match (need, caller.approved.is_some()) {
        (None, false) => Ok(()),
        (need, true) => {
            let detail = detail()?;
            approvals::redeem::redeem(app, caller, need, &detail)
                .await
                .map_err(GatewayError::ApprovalRefused)
        }
        (Some(need), false) => {
            let detail = detail()?;
            let audience = config.audience.clone().unwrap_or_else(|| app.options.issuer.clone());
            let mut asked = Asked::of_call(
                caller,
                &config.name,
                &config.action,
                access.resource.to_string(),
                vec![audience],
            );
            asked.details = vec![detail];
            asked.approvers = need.groups.clone();
            asked.policy_ids = need.policy_ids.clone();
            let ticket = approvals::ask(app, notifier, asked, need.ttl, caller.now).await.map_err(|e| {
                tracing::error!(error = %e.description, request_id = %caller.request_id, "an approval could not be asked for");
                GatewayError::ApprovalUnavailable
            })?;
            if config.approval_wait > 0 {
                match approvals::redeem::hold(app, caller, &ticket.id, need, config.approval_wait).await {
                    Held::Approved => return Ok(()),
                    Held::Denied => {
                        return Err(GatewayError::ApprovalRefused("a person denied this call".into()));
                    }
                    Held::Unanswered => {}
                }
            }
            Err(GatewayError::ApprovalRequired(Box::new(
                ticket.to_json(&app.options.issuer),
            )))
        }
    }
}
