//! `/api/v1/datasets`: datasets and their versions.
//!
//! Actions: `dataset.create` (on the dataset to be), `dataset.read`,
//! `dataset.write` (owner, description and new versions),
//! `dataset.classify` (classification and allowed purposes),
//! `dataset.delete` (soft).
//! Reading a `pii` dataset needs a purpose among its allowed purposes
//! (`X-Warden-Purpose` or the token's `purpose` claim); it is recorded in
//! the audit event.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_registry::{Dataset, DatasetPatch, DatasetSpec, DatasetVersionSpec, NodeRef};
use warden_store::Store;

use super::lookup::live_dataset;
use super::{RegistryState, read_json, refresh_attributes, to_json, version_param};
use crate::access::{Caller, entities};
use crate::error::ApiError;

type AppRef<S> = State<Arc<RegistryState<S>>>;

/// `POST /api/v1/datasets`
#[utoipa::path(post, path = "/api/v1/datasets", tag = "datasets",
    request_body = DatasetSpec,
    responses((status = 201, body = Dataset), (status = 400), (status = 403), (status = 409)))]
pub async fn create<S: Store>(State(state): AppRef<S>, call: Caller, body: Body) -> Result<Response, ApiError> {
    let mut spec: DatasetSpec = read_json(body).await?;
    // A tenant's principal creates inside its tenant unless it says otherwise
    // (and the tenant policy refuses another one).
    if spec.tenant.is_none() {
        spec.tenant.clone_from(&call.tenant);
    }
    let dataset = spec.validate(call.principal.as_str(), call.now)?;
    let resource = entities::dataset(&dataset);
    call.authorize_new(&state, "dataset.create", &resource).await?;
    let event = call.change_event(&resource.to_string(), "dataset.create", None, None);
    if !state.app.store.create_dataset(&dataset, || vec![event]).await? {
        let conflict = ApiError::conflict(format!("dataset `{}` already exists", dataset.name));
        return Err(match state.app.store.get_dataset(&dataset.name).await? {
            Some(existing) => {
                let existing = entities::dataset(&existing);
                call.name_taken(
                    &state,
                    "dataset.create",
                    &resource,
                    ("dataset.read", &existing),
                    conflict,
                )
                .await
            }
            None => conflict,
        });
    }
    refresh_attributes(&state).await;
    Ok((StatusCode::CREATED, Json(to_json(&dataset)?)).into_response())
}

/// `GET /api/v1/datasets`: the datasets the caller may read.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets",
    responses((status = 200, description = "`{\"datasets\": [Dataset]}`, only those the caller may read")))]
pub async fn list<S: Store>(State(state): AppRef<S>, call: Caller) -> Result<Json<Value>, ApiError> {
    let all = state.app.store.list_datasets(false).await?;
    let visible: Vec<&Dataset> = all
        .iter()
        .filter(|d| call.may(&state, "dataset.read", &entities::dataset(d)))
        .collect();
    call.audit_listing(&state, "dataset.read", "Dataset::*").await?;
    let hidden = all.len() - visible.len();
    Ok(Json(json!({ "datasets": visible, "hidden": hidden })))
}

/// `GET /api/v1/datasets/{name}`: the dataset and its versions.
#[utoipa::path(get, path = "/api/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path)),
    responses((status = 200, description = "The dataset with `versions`"), (status = 403), (status = 404)))]
pub async fn show<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let dataset = live_dataset(&state, &name).await?;
    call.authorize(&state, "dataset.read", &entities::dataset(&dataset))
        .await?;
    let versions = state.app.store.list_dataset_versions(&name).await?;
    let mut body = to_json(&dataset)?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("versions".into(), to_json(&versions)?);
    }
    Ok(Json(body))
}

/// `PATCH /api/v1/datasets/{name}`: owner and description
/// (`dataset.write`); classification and allowed purposes
/// (`dataset.classify`). Compare-and-set: 409 when it changed meanwhile.
#[utoipa::path(patch, path = "/api/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path)), request_body = DatasetPatch,
    responses((status = 200, body = Dataset), (status = 400), (status = 403), (status = 404)))]
pub async fn update<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let patch: DatasetPatch = read_json(body).await?;
    let dataset = live_dataset(&state, &name).await?;
    // Classification and purposes decide who may read the data: changing
    // them is `dataset.classify` (admins by default), not a mere edit.
    let action = if patch.classification.is_some() || patch.allowed_purposes.is_some() {
        "dataset.classify"
    } else {
        "dataset.write"
    };
    call.authorize(&state, action, &entities::dataset(&dataset)).await?;
    let next = dataset.patched(patch, call.now)?;
    // The new attributes must be allowed too: nobody relabels a dataset
    // into one they could not have created.
    call.authorize(&state, action, &entities::dataset(&next)).await?;
    let resource = entities::dataset(&next).to_string();
    let changes = changed_fields(&dataset, &next);
    let event = call.edit_event(&resource, "dataset.update", None, None, changes);
    if !state.app.store.update_dataset(&dataset, &next, || vec![event]).await? {
        return Err(match state.app.store.get_dataset(&name).await? {
            Some(d) if d.deleted_at.is_none() => {
                ApiError::conflict(format!("dataset `{name}` changed meanwhile; read it again and retry"))
            }
            _ => ApiError::not_found(format!("dataset `{name}` not found")),
        });
    }
    refresh_attributes(&state).await;
    Ok(Json(to_json(&next)?))
}

/// `field: old -> new` for each field an update changed.
fn changed_fields(before: &Dataset, after: &Dataset) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |field: &str, old: String, new: String| {
        if old != new {
            out.push(format!("{field}: {old} -> {new}"));
        }
    };
    note("owner", before.owner.clone(), after.owner.clone());
    note(
        "classification",
        before.classification.as_str().to_owned(),
        after.classification.as_str().to_owned(),
    );
    note(
        "allowed_purposes",
        format!("{:?}", before.allowed_purposes),
        format!("{:?}", after.allowed_purposes),
    );
    note(
        "description",
        format!("{:?}", before.description),
        format!("{:?}", after.description),
    );
    out
}

/// Query of `DELETE /api/v1/datasets/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Why (recorded in the audit event).
    reason: Option<String>,
}

/// `DELETE /api/v1/datasets/{name}?reason=`: soft delete; versions and
/// lineage stay.
#[utoipa::path(delete, path = "/api/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path), ("reason" = Option<String>, Query)),
    responses((status = 200), (status = 403), (status = 404)))]
pub async fn delete<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let reason = q
        .reason
        .map(|r| warden_registry::check_reason("reason", &r))
        .transpose()?;
    let dataset = live_dataset(&state, &name).await?;
    let resource = entities::dataset(&dataset);
    call.authorize(&state, "dataset.delete", &resource).await?;
    let event = call.change_event(&resource.to_string(), "dataset.delete", None, reason);
    if !state.app.store.delete_dataset(&name, call.now, || vec![event]).await? {
        return Err(ApiError::not_found(format!("dataset `{name}` not found")));
    }
    refresh_attributes(&state).await;
    Ok(Json(json!({"name": name, "deleted_at": call.now})))
}

/// `POST /api/v1/datasets/{name}/versions`
#[utoipa::path(post, path = "/api/v1/datasets/{name}/versions", tag = "datasets",
    params(("name" = String, Path)), request_body = DatasetVersionSpec,
    responses((status = 201, body = warden_registry::DatasetVersion), (status = 400), (status = 403), (status = 404)))]
pub async fn add_version<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let spec: DatasetVersionSpec = read_json(body).await?;
    let digest = spec.validate()?;
    let dataset = live_dataset(&state, &name).await?;
    call.authorize(&state, "dataset.write", &entities::dataset(&dataset))
        .await?;
    authorize_sources(&state, &call, &spec.parents).await?;
    let version = state
        .app
        .store
        .add_dataset_version(&name, &spec, &digest, call.principal.as_str(), call.now, |added| {
            let resource = entities::dataset_version(&dataset, added.version).to_string();
            vec![call.change_event(&resource, "dataset.version.add", Some(digest.clone()), None)]
        })
        .await?;
    Ok((StatusCode::CREATED, Json(to_json(&version)?)).into_response())
}

/// Recording that something derives from a dataset version needs
/// `lineage.read` on it: nobody links to data they may not see (another
/// tenant's, for one). A missing version is left to the store, which
/// answers 404; a version a tenant policy hides gets the same answer.
pub(super) async fn authorize_sources<S: Store>(
    state: &RegistryState<S>,
    call: &Caller,
    sources: &[NodeRef],
) -> Result<(), ApiError> {
    // One decision per dataset: its versions share its attributes.
    let mut seen = std::collections::BTreeSet::new();
    for source in sources.iter().filter(|s| seen.insert(s.name.as_str())) {
        if let Some(d) = state.app.store.get_dataset(&source.name).await? {
            call.authorize(state, "lineage.read", &entities::dataset_version(&d, source.version))
                .await
                .map_err(|e| {
                    if e.status == StatusCode::NOT_FOUND {
                        warden_store::StoreError::NotFound(format!("dataset version `{source}`")).into()
                    } else {
                        e
                    }
                })?;
        }
    }
    Ok(())
}

/// `GET /api/v1/datasets/{name}/versions`
#[utoipa::path(get, path = "/api/v1/datasets/{name}/versions", tag = "datasets",
    params(("name" = String, Path)),
    responses((status = 200, description = "`{\"versions\": [DatasetVersion]}`"), (status = 403), (status = 404)))]
pub async fn versions<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let dataset = live_dataset(&state, &name).await?;
    call.authorize(&state, "dataset.read", &entities::dataset(&dataset))
        .await?;
    let versions = state.app.store.list_dataset_versions(&name).await?;
    Ok(Json(json!({ "versions": versions })))
}

/// `GET /api/v1/datasets/{name}/versions/{version}`
#[utoipa::path(get, path = "/api/v1/datasets/{name}/versions/{version}", tag = "datasets",
    params(("name" = String, Path), ("version" = u32, Path)),
    responses((status = 200, body = warden_registry::DatasetVersion), (status = 403), (status = 404)))]
pub async fn version<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version = version_param(&version)?;
    let dataset = live_dataset(&state, &name).await?;
    call.authorize(&state, "dataset.read", &entities::dataset_version(&dataset, version))
        .await?;
    let found = state
        .app
        .store
        .get_dataset_version(&name, version)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "dataset version `{}` not found",
                NodeRef::dataset(&name, version)
            ))
        })?;
    Ok(Json(to_json(&found)?))
}

/// `GET /api/v1/datasets/{name}/versions/{version}/impact`: every dataset
/// and model version derived from it, at any depth (what an erasure of
/// this version touches). Nodes the caller may not see are counted in
/// `hidden`, not named.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/versions/{version}/impact", tag = "lineage",
    params(("name" = String, Path), ("version" = u32, Path)),
    responses((status = 200, description = "`{\"root\", \"datasets\": [node], \"models\": [node], \"hidden\": n}`"), (status = 403), (status = 404)))]
pub async fn impact<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version = version_param(&version)?;
    let root = NodeRef::dataset(&name, version);
    let resource = super::lineage::root_resource(&state, &root).await?;
    call.authorize(&state, "lineage.read", &resource).await?;
    let nodes = state.app.store.impact(&root).await?;
    let total = nodes.len();
    let visible = super::lineage::visible_nodes(&state, &call, nodes);
    let (datasets, models): (Vec<_>, Vec<_>) = visible
        .into_iter()
        .partition(|n| n.kind == warden_registry::NodeKind::Dataset);
    let hidden = total - datasets.len() - models.len();
    Ok(Json(json!({
        "root": root,
        "datasets": datasets,
        "models": models,
        "hidden": hidden,
    })))
}
