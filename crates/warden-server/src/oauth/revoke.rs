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

use crate::error::ApiError;
use crate::http::read_body;
use crate::oauth::OAuthState;
use crate::oauth::client_auth::authenticate;
use crate::oauth::form::Form;
use crate::oauth::grants::hash_refresh;
use crate::state::now;

/// The revocation endpoint.
pub async fn revoke<S: Store>(
    State(state): State<Arc<OAuthState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = now();
    let bytes = read_body(body, state.app.options.oauth.max_body_bytes).await?;
    let form = Form::parse(&headers, &bytes)?;
    let endpoint = format!("{}/oauth/revoke", state.app.options.issuer);
    let ip = crate::http::client_ip(peer.ip(), &headers, &state.app.options.trusted_proxies);
    let client = authenticate(&state, &headers, &form, ip, &endpoint, now).await?;
    let token = form.require("token")?;
    let client_id = client.client.client_id.as_str();

    if let Some(row) = state.app.store.find_refresh(&hash_refresh(token)).await? {
        if row.family.client_id == client_id && row.family.revoked_at.is_none() {
            let revoked = state.app.store.revoke_family(&row.family.id, now).await?;
            state.app.revoke(revoked);
            let event = EventKind::TokenRevoked {
                jti: None,
                family: Some(row.family.id),
                client_id: client_id.to_owned(),
                reason: "client_request".into(),
            };
            state.app.audit.record(AuditEvent::new(now, event)).await?;
        }
        return Ok(ok());
    }
    let verified = state
        .app
        .verify_own(now, |keys| keys.any_audience.verify(token, now))
        .await;
    if let Ok(verified) = verified {
        let c = verified.claims();
        if c.client_id() == Some(client_id)
            && let Some(jti) = c.jti()
        {
            // Always recorded in the store (idempotent): the in-memory set
            // may know of a revocation only from a notice, and the store
            // is what every replica and every restart trusts.
            let known = state.app.revocations.is_revoked(jti);
            state.app.store.revoke_token(jti, c.exp(), now).await?;
            if known {
                return Ok(ok());
            }
            state.app.revoke(vec![(jti.to_owned(), c.exp())]);
            let event = EventKind::TokenRevoked {
                jti: Some(jti.to_owned()),
                family: None,
                client_id: client_id.to_owned(),
                reason: "client_request".into(),
            };
            state.app.audit.record(AuditEvent::new(now, event)).await?;
        }
    }
    Ok(ok())
}

fn ok() -> Response {
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
