//! HTTP handlers, one module per endpoint group. Each handler reads the
//! request, calls into the grants, store or keys, and answers; errors are
//! [`crate::error::ApiError`]s.

pub mod admin;
pub mod audit;
pub mod health;
pub mod introspect;
pub mod metadata;
pub mod revoke;
pub mod token;

use axum::body::{Body, Bytes};

use crate::error::ApiError;

/// Reads a body of at most `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}
