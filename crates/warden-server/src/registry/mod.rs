//! The governance registry API under `/api/v1`: datasets, models, their
//! versions and stages, four-eyes promotion, lineage, and the OpenAPI
//! document of it all at `/api/v1/openapi.json`.
//!
//! Every call presents a Warden access token (audience: the issuer) and
//! becomes a [`Caller`](crate::access::Caller); it is decided by the Cedar
//! policies with the resource's attributes as stored, and every decision
//! and change is audited.
//!
//! # Layout
//! - `changes.rs`: audit events of changes, and refreshing what the
//!   policies know of the registry.
//! - One module per resource: `datasets.rs`, `models.rs`,
//!   `promotions.rs`, `lineage.rs`; `openapi.rs` collects their docs.
//! - Cedar resources of registry objects are the access layer's
//!   (`access/entities.rs`, `access/attributes.rs`).

mod changes;
pub mod datasets;
pub mod lineage;
mod lookup;
pub mod models;
pub mod openapi;
pub mod promotions;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::middleware::from_fn;
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use warden_store::Store;

pub use self::changes::refresh_attributes;
use crate::access::{Access, Context};
use crate::error::ApiError;
use crate::http::request_id;
use crate::state::AppState;

/// What the registry API needs: the core and the access layer.
#[derive(Debug)]
pub struct RegistryState<S> {
    /// The shared core.
    pub app: Arc<AppState<S>>,
    /// Who may do what.
    pub access: Arc<Access>,
}

impl<S: Store> Context for RegistryState<S> {
    type Store = S;
    fn app(&self) -> &AppState<S> {
        &self.app
    }
    fn access(&self) -> &Access {
        &self.access
    }
}

/// Largest JSON body the registry API reads.
pub const MAX_BODY: usize = 256 * 1024;

/// The registry routes.
pub fn routes<S: Store>(state: Arc<RegistryState<S>>) -> Router {
    Router::new()
        .route("/api/v1/datasets", get(datasets::list::<S>).post(datasets::create::<S>))
        .route(
            "/api/v1/datasets/{name}",
            get(datasets::show::<S>)
                .patch(datasets::update::<S>)
                .delete(datasets::delete::<S>),
        )
        .route(
            "/api/v1/datasets/{name}/versions",
            get(datasets::versions::<S>).post(datasets::add_version::<S>),
        )
        .route(
            "/api/v1/datasets/{name}/versions/{version}",
            get(datasets::version::<S>),
        )
        .route(
            "/api/v1/datasets/{name}/versions/{version}/impact",
            get(datasets::impact::<S>),
        )
        .route("/api/v1/models", get(models::list::<S>).post(models::create::<S>))
        .route("/api/v1/models/{name}", get(models::show::<S>))
        .route(
            "/api/v1/models/{name}/versions",
            get(models::versions::<S>).post(models::add_version::<S>),
        )
        .route("/api/v1/models/{name}/versions/{version}", get(models::version::<S>))
        .route(
            "/api/v1/models/{name}/versions/{version}/stage",
            post(models::set_stage::<S>),
        )
        .route(
            "/api/v1/models/{name}/versions/{version}/promotions",
            post(models::request_promotion::<S>),
        )
        .route("/api/v1/models/{name}/rollback", post(models::rollback::<S>))
        .route("/api/v1/models/{name}/history", get(models::history::<S>))
        .route("/api/v1/promotions", get(promotions::list::<S>))
        .route("/api/v1/promotions/{id}", get(promotions::show::<S>))
        .route("/api/v1/promotions/{id}/approve", post(promotions::approve::<S>))
        .route("/api/v1/promotions/{id}/reject", post(promotions::reject::<S>))
        .route("/api/v1/lineage/{kind}/{id}/{direction}", get(lineage::walk::<S>))
        .layer(from_fn(request_id::tag))
        .route("/api/v1/openapi.json", get(openapi::document))
        .with_state(state)
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes into `T`; 400 naming
/// the problem (unknown fields included), 413 when too large.
pub(crate) async fn read_json<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    crate::http::read_json(body, MAX_BODY).await
}

/// Serialises a response value.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|_| ApiError::internal("could not serialise the response"))
}

/// A `{version}` path segment: a positive integer.
pub(crate) fn version_param(text: &str) -> Result<u32, ApiError> {
    match text.parse::<u32>() {
        Ok(v) if v > 0 && v.to_string() == text => Ok(v),
        _ => Err(ApiError::invalid_request(format!(
            "version `{}` must be a positive integer",
            text.chars().take(20).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_canonical_positive_integers() {
        assert_eq!(version_param("3").unwrap(), 3);
        for bad in ["0", "-1", "03", "+3", "x", "", "99999999999"] {
            assert!(version_param(bad).is_err(), "{bad}");
        }
    }
}
