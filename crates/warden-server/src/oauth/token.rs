//! `POST /oauth/token` (RFC 6749 §3.2), with DPoP proofs (RFC 9449 §5):
//! a valid `DPoP` header binds the issued access token to the proof's key.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use warden_store::Store;

use crate::dpop::{self, DpopRefusal, Refused};
use crate::error::ApiError;
use crate::http::read_body;
use crate::oauth::OAuthState;
use crate::oauth::client_auth::{Authenticated, authenticate};
use crate::oauth::clients::grant;
use crate::oauth::form::Form;
use crate::oauth::grants::{self, Possession};
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
        grant::CIBA => "ciba",
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
    let possession = Possession {
        jkt: proved_key(state, headers, &client, &endpoint, ip, now).await?,
        source_ip: ip,
    };
    match grant_type {
        grant::CLIENT_CREDENTIALS => grants::client_credentials::grant(state, client, &form, &possession, now).await,
        grant::REFRESH_TOKEN => grants::refresh::grant(state, client, &form, &possession, now).await,
        grant::AUTHORIZATION_CODE => grants::people::authorization_code(state, client, &form, &possession, now).await,
        grant::DEVICE_CODE => grants::people::device_code(state, client, &form, &possession, now).await,
        grant::CIBA => grants::ciba::grant(state, client, &form, &possession, now).await,
        _ => grants::token_exchange::grant(state, client, &form, &possession, now).await,
    }
}

/// The DPoP key the request proved possession of (RFC 9449 §5): its
/// thumbprint when a valid proof for this endpoint came with it, `None`
/// without a proof. Refused, and audited, when the proof is invalid,
/// replayed or lacks a required nonce, or is missing for a client that
/// must send one.
async fn proved_key<S: Store>(
    state: &OAuthState<S>,
    headers: &HeaderMap,
    client: &Authenticated,
    endpoint: &str,
    ip: IpAddr,
    now: u64,
) -> Result<Option<String>, ApiError> {
    let checked = match dpop::proof_header(headers) {
        Ok(Some(proof)) => state
            .access
            .dpop
            .check(proof, "POST", endpoint, None, None, now)
            .await
            .map(|p| Some(p.jkt().to_owned())),
        Ok(None) if client.client.require_dpop => Err(DpopRefusal::Missing),
        Ok(None) => Ok(None),
        Err(refusal) => Err(refusal),
    };
    match checked {
        Ok(jkt) => Ok(jkt),
        Err(refusal) => {
            let subject = client.subject();
            let who = Refused {
                principal: &subject,
                client_id: &client.client.client_id,
                method: "POST",
                path: "/oauth/token",
                source_ip: ip,
            };
            dpop::audit_refusal(&state.app, &refusal, who, now).await;
            Err(refusal.token_endpoint_error())
        }
    }
}
