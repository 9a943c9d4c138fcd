//! RFC 9728 protected-resource metadata of the gateway's routes, at
//! `/.well-known/oauth-protected-resource[/<route prefix>]`: which
//! authorization server protects a route, its resource (audience) and
//! scopes. A 401 from a route names this document in its challenge.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::Gateway;
use crate::error::ApiError;

/// Where a route's RFC 9728 metadata is served.
pub fn resource_metadata_url(issuer: &str, path_prefix: &str) -> String {
    format!("{issuer}/.well-known/oauth-protected-resource{path_prefix}")
}

/// The metadata of the route whose prefix is `path_prefix` (empty: the
/// first route's audience as a whole).
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
    Some(json!({
        "resource": resource,
        "authorization_servers": [issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": scopes,
        "resource_name": config.name,
    }))
}

/// What the metadata handlers answer from: the issuer and the gateway,
/// when routes are configured.
#[derive(Debug, Clone)]
struct Resources {
    issuer: String,
    gateway: Option<Arc<Gateway>>,
}

/// The metadata routes (404 for every path when no route is configured).
pub fn routes(issuer: &str, gateway: Option<Arc<Gateway>>) -> Router {
    Router::new()
        .route("/.well-known/oauth-protected-resource", get(root))
        .route("/.well-known/oauth-protected-resource/{*path}", get(path))
        .with_state(Resources {
            issuer: issuer.to_owned(),
            gateway,
        })
}

async fn root(State(r): State<Resources>) -> Response {
    answer(&r, "")
}

async fn path(State(r): State<Resources>, Path(path): Path<String>) -> Response {
    answer(&r, &format!("/{path}"))
}

fn answer(r: &Resources, prefix: &str) -> Response {
    match r.gateway.as_ref().and_then(|g| resource_metadata(g, &r.issuer, prefix)) {
        Some(doc) => {
            let mut response = Json(doc).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            response
        }
        None => ApiError::not_found("no protected resource at this path").into_response(),
    }
}
