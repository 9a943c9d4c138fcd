//! Discovery: RFC 8414 authorization-server metadata (also served as the
//! OpenID configuration, with the fields that apply) and the JWKS.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use warden_store::Store;

use crate::client_auth::method;
use crate::clients::grant;
use crate::state::AppState;

/// The metadata document. `issuer` is exactly the tokens' `iss`.
pub fn document<S: Store>(state: &AppState<S>) -> Value {
    let issuer = &state.options.issuer;
    let algs: Vec<&str> = state.options.algorithms.iter().map(|a| a.as_str()).collect();
    // Client assertions are checked against every asymmetric algorithm.
    let assertion_algs: Vec<&str> = warden_jose::AlgorithmSet::asymmetric()
        .iter()
        .map(|a| a.as_str())
        .collect();
    let auth_methods = [method::BASIC, method::POST, method::PRIVATE_KEY_JWT];
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "grant_types_supported": grant::ALL,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "access_token_signing_alg_values_supported": algs,
    })
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn oauth_server<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    cached(Json(document(&state)).into_response(), 300)
}

/// `GET /.well-known/openid-configuration`: the same document (Warden
/// issues no ID tokens; the OAuth fields apply).
pub async fn openid_configuration<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    cached(Json(document(&state)).into_response(), 300)
}

/// `GET /.well-known/jwks.json`: every published key (pending, active and
/// in overlap), so that a relying party refetching at most every minute
/// always knows the next key before it signs.
pub async fn jwks<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    let mut r = Json(state.keys.get().jwks.clone()).into_response();
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

/// `GET /.well-known/oauth-protected-resource[/<route path>]` (RFC 9728):
/// which authorization server protects a gateway route, its resource
/// (audience) and scopes. 404 when no route has that path.
pub async fn protected_resource<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    gateway: Option<Arc<crate::gateway::Gateway>>,
    path: &str,
) -> Response {
    let found = gateway.and_then(|g| crate::gateway::resource_metadata(&g, &state.options.issuer, path));
    match found {
        Some(doc) => cached(Json(doc).into_response(), 300),
        None => crate::error::ApiError::not_found("no protected resource at this path").into_response(),
    }
}
