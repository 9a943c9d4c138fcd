//! `POST /oauth/token` (RFC 6749 §3.2).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use warden_store::Store;

use crate::error::ApiError;
use crate::http::read_body;
use crate::oauth::OAuthState;
use crate::oauth::client_auth::authenticate;
use crate::oauth::clients::grant;
use crate::oauth::form::Form;
use crate::oauth::grants;
use crate::state::now;

/// The `grant` label of a request whose grant type is missing or not
/// supported.
pub const UNKNOWN_GRANT: &str = "unknown";

/// The `grant` metric label of a supported grant type (short for the
/// token-exchange URN).
fn grant_label(grant_type: &str) -> &'static str {
    match grant_type {
        grant::CLIENT_CREDENTIALS => "client_credentials",
        grant::REFRESH_TOKEN => "refresh_token",
        grant::TOKEN_EXCHANGE => "token_exchange",
        grant::AUTHORIZATION_CODE => "authorization_code",
        grant::DEVICE_CODE => "device_code",
        _ => UNKNOWN_GRANT,
    }
}

/// The token endpoint: [`issue`], counted and logged by grant and outcome.
pub async fn token<S: Store>(
    State(state): State<Arc<OAuthState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut label = UNKNOWN_GRANT;
    let result = issue(&state, peer, &headers, body, &mut label).await;
    match &result {
        Ok(_) => {
            state.app.metrics.token_issued(label);
            tracing::info!(grant = label, "token issued");
        }
        Err(e) => {
            state.app.metrics.token_failed(label, e.code);
            tracing::info!(
                grant = label,
                error = e.code,
                status = e.status.as_u16(),
                "token request refused"
            );
        }
    }
    result
}

/// Reads the form, authenticates the client and runs the grant; sets
/// `label` once the grant type is known.
async fn issue<S: Store>(
    state: &OAuthState<S>,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    label: &mut &'static str,
) -> Result<Response, ApiError> {
    let now = now();
    let bytes = read_body(body, state.app.options.oauth.max_body_bytes).await?;
    let form = Form::parse(headers, &bytes)?;
    let grant_type = form.require("grant_type")?;
    if !grant::ALL.contains(&grant_type) {
        return Err(ApiError::unsupported_grant_type(format!(
            "grant_type `{}` is not supported",
            grant_type.chars().take(80).collect::<String>()
        )));
    }
    *label = grant_label(grant_type);
    let endpoint = format!("{}/oauth/token", state.app.options.issuer);
    let ip = crate::http::client_ip(peer.ip(), headers, &state.app.options.trusted_proxies);
    let client = authenticate(state, headers, &form, ip, &endpoint, now).await?;
    match grant_type {
        grant::CLIENT_CREDENTIALS => grants::client_credentials::grant(state, client, &form, now).await,
        grant::REFRESH_TOKEN => grants::refresh::grant(state, client, &form, now).await,
        grant::AUTHORIZATION_CODE => grants::people::authorization_code(state, client, &form, now).await,
        grant::DEVICE_CODE => grants::people::device_code(state, client, &form, now).await,
        _ => grants::token_exchange::grant(state, client, &form, now).await,
    }
}
