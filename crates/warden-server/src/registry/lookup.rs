//! Registry objects by name, 404 when absent: what every handler reads
//! before it decides.

use warden_registry::{Dataset, Model, ModelVersion, NodeRef};
use warden_store::Store;

use super::RegistryState;
use crate::error::ApiError;

/// A dataset by name, 404 when absent or deleted.
pub async fn live_dataset<S: Store>(state: &RegistryState<S>, name: &str) -> Result<Dataset, ApiError> {
    match state.app.store.get_dataset(name).await? {
        Some(d) if d.deleted_at.is_none() => Ok(d),
        _ => Err(ApiError::not_found(format!("dataset `{name}` not found"))),
    }
}

/// A model by name, 404 when absent.
pub async fn model<S: Store>(state: &RegistryState<S>, name: &str) -> Result<Model, ApiError> {
    state
        .app
        .store
        .get_model(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model `{name}` not found")))
}

/// A model version, 404 when absent.
pub async fn model_version<S: Store>(
    state: &RegistryState<S>,
    name: &str,
    version: u32,
) -> Result<ModelVersion, ApiError> {
    state
        .app
        .store
        .get_model_version(name, version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model version `{}` not found", NodeRef::model(name, version))))
}
