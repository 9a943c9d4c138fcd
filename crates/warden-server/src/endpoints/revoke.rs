//! `POST /oauth/revoke` (RFC 7009). The client authenticates and may
//! revoke only tokens issued to it; the answer is 200 whether or not the
//! token was known (§2.2), so the endpoint reveals nothing. Revoking a
//! refresh token revokes its family and the access tokens issued from it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;

use super::read_body;
use crate::client_auth::authenticate;
use crate::error::ApiError;
use crate::form::Form;
use crate::grants::hash_refresh;
use crate::state::{AppState, now};

/// The revocation endpoint.
pub async fn revoke<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = now();
    let bytes = read_body(body, state.options.oauth.max_body_bytes).await?;
    let form = Form::parse(&headers, &bytes)?;
    let endpoint = format!("{}/oauth/revoke", state.options.issuer);
    let ip = crate::client_ip::client_ip(peer.ip(), &headers, &state.options.trusted_proxies);
    let client = authenticate(&state, &headers, &form, ip, &endpoint, now).await?;
    let token = form.require("token")?;
    let client_id = client.client.client_id.as_str();

    if let Some(row) = state.store.find_refresh(&hash_refresh(token)).await? {
        if row.family.client_id == client_id && row.family.revoked_at.is_none() {
            let revoked = state.store.revoke_family(&row.family.id, now).await?;
            revoke_locally(&state, revoked);
            let event = EventKind::TokenRevoked {
                jti: None,
                family: Some(row.family.id),
                client_id: client_id.to_owned(),
                reason: "client_request".into(),
            };
            state.audit.record(AuditEvent::new(now, event)).await?;
        }
        return Ok(ok());
    }
    if let Ok(verified) = state.keys.get().any_audience.verify(token, now) {
        let c = verified.claims();
        if c.client_id() == Some(client_id)
            && let Some(jti) = c.jti()
        {
            // Always recorded in the store (idempotent): the in-memory set
            // may know of a revocation only from a notice, and the store
            // is what every replica and every restart trusts.
            let known = state.revocations.is_revoked(jti);
            state.store.revoke_token(jti, c.exp(), now).await?;
            if known {
                return Ok(ok());
            }
            revoke_locally(&state, vec![(jti.to_owned(), c.exp())]);
            let event = EventKind::TokenRevoked {
                jti: Some(jti.to_owned()),
                family: None,
                client_id: client_id.to_owned(),
                reason: "client_request".into(),
            };
            state.audit.record(AuditEvent::new(now, event)).await?;
        }
    }
    Ok(ok())
}

/// Applies revocations to this replica at once and tells the others (over
/// Redis when configured; else they pick them up from the store within a
/// sync period).
pub fn revoke_locally<S: Store>(state: &AppState<S>, revoked: Vec<(String, u64)>) {
    let keys = state.keys.get();
    for (jti, exp) in revoked {
        keys.api.invalidate_jti(&jti);
        state
            .fanout
            .publish(crate::fanout::Notice::Revoked { jti: jti.clone(), exp });
        state.revocations.insert(jti, exp);
    }
}

fn ok() -> Response {
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
