//! Discovery: RFC 8414 authorization-server metadata (also served as the
//! OpenID configuration, with the fields that apply) and the JWKS.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use warden_store::Store;

use crate::oauth::OAuthState;
use crate::oauth::client_auth::method;
use crate::oauth::clients::grant;

/// The metadata document. `issuer` is exactly the tokens' `iss`.
pub fn document<S: Store>(state: &OAuthState<S>) -> Value {
    let issuer = &state.app.options.issuer;
    let algs: Vec<&str> = state.app.options.algorithms.iter().map(|a| a.as_str()).collect();
    // Client assertions are checked against every asymmetric algorithm.
    let assertion_algs: Vec<&str> = warden_jose::AlgorithmSet::asymmetric()
        .iter()
        .map(|a| a.as_str())
        .collect();
    let dpop_algs: Vec<&str> = state.access.dpop.algorithms().iter().map(|a| a.as_str()).collect();
    let auth_methods = [method::BASIC, method::POST, method::PRIVATE_KEY_JWT];
    let token_auth_methods = [method::BASIC, method::POST, method::PRIVATE_KEY_JWT, method::NONE];
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device_authorization"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "grant_types_supported": grant::ALL,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": token_auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": token_auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "access_token_signing_alg_values_supported": algs,
        // RFC 9449 §5.1: DPoP proofs are checked with the tokens' algorithms.
        "dpop_signing_alg_values_supported": dpop_algs,
        // OpenID CIBA Core §4 and RFC 9396 §10: people approving agents'
        // calls (docs/approvals.md).
        "backchannel_authentication_endpoint": format!("{issuer}/oauth/bc-authorize"),
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": false,
        "authorization_details_types_supported": ["tool_call", "api_call"],
    })
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn oauth_server<S: Store>(State(state): State<Arc<OAuthState<S>>>) -> Response {
    cached(Json(document(&state)).into_response(), 300)
}

/// `GET /.well-known/openid-configuration`: the same document (Warden
/// issues no ID tokens; the OAuth fields apply).
pub async fn openid_configuration<S: Store>(State(state): State<Arc<OAuthState<S>>>) -> Response {
    cached(Json(document(&state)).into_response(), 300)
}

/// `GET /.well-known/jwks.json`: every published key (pending, active and
/// in overlap), so that a relying party refetching at most every minute
/// always knows the next key before it signs.
pub async fn jwks<S: Store>(State(state): State<Arc<OAuthState<S>>>) -> Response {
    let mut r = Json(state.app.keys.get().jwks.clone()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    cached(r, 60)
}

fn cached(mut r: Response, seconds: u32) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={seconds}")) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    r
}
