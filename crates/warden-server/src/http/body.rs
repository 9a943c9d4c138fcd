//! Request bodies, read with a size cap: raw bytes for the form-encoded
//! token endpoints, JSON for the APIs.

use axum::body::{Body, Bytes};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Reads a body of at most `limit` bytes; 413 when larger.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}

/// Reads a JSON body of at most `limit` bytes into `T`; 400 naming the
/// problem (unknown fields included), 413 when too large.
pub async fn read_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, ApiError> {
    let bytes = read_body(body, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))
}
