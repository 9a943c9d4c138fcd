//! `POST /oauth/introspect` (RFC 7662). The caller is an authenticated
//! client or presents an access token (bearer, or DPoP-bound with its
//! proof) with the introspection scope. A DPoP-bound token is reported
//! with `token_type` `DPoP` and its `cnf` (RFC 9449 §6.2).
//! Inactive, unknown, revoked, expired or foreign tokens all get exactly
//! `{"active":false}`. Foreign means: another issuer's token; for a
//! client-authenticated caller, an access token neither issued to it nor
//! meant for it (its id not in `aud`), or another client's refresh token.
//! A bearer caller with the introspection scope (a resource server) may
//! introspect any Warden access token.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use warden_store::Store;

use crate::access::{Accept, Caller, access_token};
use crate::error::ApiError;
use crate::http::{client_ip, read_body};
use crate::oauth::OAuthState;
use crate::oauth::client_auth::authenticate;
use crate::oauth::form::Form;
use crate::oauth::grants::{Grant, hash_refresh};
use crate::options::roles;
use crate::state::now;

/// The introspection endpoint.
pub async fn introspect<S: Store>(
    State(state): State<Arc<OAuthState<S>>>,
    parts: Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let now = now();
    let headers = &parts.headers;
    let bytes = read_body(body, state.app.options.oauth.max_body_bytes).await?;
    let form = Form::parse(headers, &bytes)?;
    let caller_client = if let Some((_, token)) = access_token(headers) {
        let caller = Caller::of_request(&*state, token, &parts, Accept::Warden).await?;
        caller.require(roles::ADMIN, &state.app.options.oauth.introspection_scope)?;
        None
    } else {
        let endpoint = format!("{}/oauth/introspect", state.app.options.issuer);
        let ip = client_ip::of_request(&parts, &state.app.options.trusted_proxies);
        let client = authenticate(&state, headers, &form, ip, &endpoint, now).await?.client;
        if client.kind == warden_store::oauth::ClientKind::Public {
            // It proves nothing about itself: anyone could ask in its name.
            return Err(ApiError::unauthorized_client(
                "a public client may not introspect tokens",
            ));
        }
        Some(client.client_id)
    };
    let token = form.require("token")?;
    let caller = caller_client.as_deref();
    let answer = match form.get("token_type_hint") {
        Some("refresh_token") => match refresh(&state, token, caller, now).await? {
            Some(v) => Some(v),
            None => access(&state, token, caller, now).await,
        },
        _ => match access(&state, token, caller, now).await {
            Some(v) => Some(v),
            None => refresh(&state, token, caller, now).await?,
        },
    };
    let mut response = Json(answer.unwrap_or_else(|| json!({"active": false}))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn access<S: Store>(state: &OAuthState<S>, token: &str, caller: Option<&str>, now: u64) -> Option<Value> {
    let verified = state
        .app
        .verify_own(now, |keys| keys.any_audience.verify(token, now))
        .await
        .ok()?;
    let c = verified.claims();
    if let Some(caller) = caller
        && c.client_id() != Some(caller)
        && !c.aud().iter().any(|a| a == caller)
    {
        return None;
    }
    // The issuer answers for its own clock: no leeway here, a token past
    // its `exp` is inactive.
    if c.exp() <= now || c.jti().is_none_or(|j| state.app.revocations.is_revoked(j)) {
        return None;
    }
    let mut v = json!({
        "active": true,
        "token_type": if c.cnf_jkt().is_some() { "DPoP" } else { "Bearer" },
        "iss": c.iss(),
        "sub": c.sub(),
        "aud": c.aud(),
        "exp": c.exp(),
        "iat": c.iat(),
        "nbf": c.nbf(),
        "jti": c.jti(),
        "client_id": c.client_id(),
        "scope": c.scopes().collect::<Vec<_>>().join(" "),
    });
    if let Some(obj) = v.as_object_mut() {
        if !c.roles().is_empty() {
            obj.insert("roles".into(), json!(c.roles()));
        }
        if let Some(act) = c.act() {
            obj.insert("act".into(), Value::Object(act.clone()));
        }
        if let Some(tenant) = c.raw().get("tenant") {
            obj.insert("tenant".into(), tenant.clone());
        }
        // RFC 9449 §6.2: the key a bound token is bound to.
        if let Some(cnf) = c.raw().get("cnf") {
            obj.insert("cnf".into(), cnf.clone());
        }
    }
    Some(v)
}

async fn refresh<S: Store>(
    state: &OAuthState<S>,
    token: &str,
    caller: Option<&str>,
    now: u64,
) -> Result<Option<Value>, ApiError> {
    let Some(row) = state.app.store.find_refresh(&hash_refresh(token)).await? else {
        return Ok(None);
    };
    let foreign = caller.is_some_and(|c| c != row.family.client_id);
    let live =
        row.used_at.is_none() && row.family.revoked_at.is_none() && now < row.expires_at && now < row.family.expires_at;
    if foreign || !live {
        return Ok(None);
    }
    let grant: Grant =
        serde_json::from_str(&row.grant_data).map_err(|_| ApiError::internal("stored grant is corrupt"))?;
    let mut v = json!({
        "active": true,
        "token_type": "refresh_token",
        "iss": state.app.options.issuer,
        "sub": grant.subject,
        "client_id": grant.client_id,
        "scope": grant.scopes.join(" "),
        "aud": grant.audience,
        "iat": row.issued_at,
        "exp": row.expires_at.min(row.family.expires_at),
    });
    if let (Some(jkt), Some(obj)) = (grant.jkt, v.as_object_mut()) {
        obj.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    Ok(Some(v))
}
