//! `/api/v1/models`: models, their versions and stages.
//!
//! Actions: `model.register` (create a model, add a version; on the
//! model), `model.read`, `model.promote` (move a version between
//! development, staging and archived, and open a promotion request to
//! production; on the version), `model.rollback` (on the model).
//! Production itself is reached only through approvals
//! ([`super::promotions`]) or a rollback.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_registry::{Model, ModelSpec, ModelVersion, ModelVersionSpec, PromotionRequest, RequestStatus, Stage};
use warden_store::{StageChange, Store};

use super::lookup::{model, model_version};
use super::{RegistryState, read_json, refresh_attributes, to_json, version_param};
use crate::access::{Caller, entities};
use crate::error::ApiError;

type AppRef<S> = State<Arc<RegistryState<S>>>;

/// The model's Cedar resource at its current stage.
async fn model_resource<S: Store>(state: &RegistryState<S>, m: &Model) -> Result<warden_policy::Resource, ApiError> {
    let versions = state.app.store.list_model_versions(&m.name).await?;
    Ok(entities::model(m, Stage::of_model(versions.iter().map(|v| v.stage))))
}

/// `POST /api/v1/models`
#[utoipa::path(post, path = "/api/v1/models", tag = "models", request_body = ModelSpec,
    responses((status = 201, body = Model), (status = 400), (status = 403), (status = 409)))]
pub async fn create<S: Store>(State(state): AppRef<S>, call: Caller, body: Body) -> Result<Response, ApiError> {
    let mut spec: ModelSpec = read_json(body).await?;
    if spec.tenant.is_none() {
        spec.tenant.clone_from(&call.tenant);
    }
    // A name the configuration's `[models]` catalog stages belongs to the
    // operator: registering it would change what the gateway allows.
    if state.app.options.model_stages.contains_key(&spec.name) {
        return Err(ApiError::conflict(format!(
            "model `{}` is staged by the `[models]` catalog of the configuration",
            spec.name
        )));
    }
    let model = spec.validate(call.principal.as_str(), call.now)?;
    let resource = entities::model(&model, Stage::Development);
    call.authorize_new(&state, "model.register", &resource).await?;
    let event = call.change_event(&resource.to_string(), "model.create", None, None);
    if !state.app.store.create_model(&model, || vec![event]).await? {
        let conflict = ApiError::conflict(format!("model `{}` already exists", model.name));
        return Err(match state.app.store.get_model(&model.name).await? {
            Some(existing) => {
                let existing = model_resource(&state, &existing).await?;
                call.name_taken(&state, "model.register", &resource, ("model.read", &existing), conflict)
                    .await
            }
            None => conflict,
        });
    }
    refresh_attributes(&state).await;
    Ok((StatusCode::CREATED, Json(to_json(&model)?)).into_response())
}

/// `GET /api/v1/models`: the models the caller may read, with their stage.
#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    responses((status = 200, description = "`{\"models\": [Model + stage]}`, only those the caller may read")))]
pub async fn list<S: Store>(State(state): AppRef<S>, call: Caller) -> Result<Json<Value>, ApiError> {
    let registry = state.access.policies.registry();
    let mut out = Vec::new();
    let all = state.app.store.list_models().await?;
    let total = all.len();
    for m in all {
        let stage = registry.model_stage(&m.name).unwrap_or(Stage::Development);
        if call.may(&state, "model.read", &entities::model(&m, stage)) {
            let mut v = to_json(&m)?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert("stage".into(), json!(stage));
            }
            out.push(v);
        }
    }
    call.audit_listing(&state, "model.read", "Model::*").await?;
    let hidden = total - out.len();
    Ok(Json(json!({ "models": out, "hidden": hidden })))
}

/// `GET /api/v1/models/{name}`: the model, its stage and versions.
#[utoipa::path(get, path = "/api/v1/models/{name}", tag = "models", params(("name" = String, Path)),
    responses((status = 200, description = "The model with `stage` and `versions`"), (status = 403), (status = 404)))]
pub async fn show<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let m = model(&state, &name).await?;
    let versions = state.app.store.list_model_versions(&name).await?;
    let stage = Stage::of_model(versions.iter().map(|v| v.stage));
    call.authorize(&state, "model.read", &entities::model(&m, stage))
        .await?;
    let mut body = to_json(&m)?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("stage".into(), json!(stage));
        obj.insert("versions".into(), to_json(&versions)?);
    }
    Ok(Json(body))
}

/// `POST /api/v1/models/{name}/versions`: registers a version in
/// `development`, with its training data as lineage.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions", tag = "models",
    params(("name" = String, Path)), request_body = ModelVersionSpec,
    responses((status = 201, body = ModelVersion), (status = 400), (status = 403), (status = 404)))]
pub async fn add_version<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let spec: ModelVersionSpec = read_json(body).await?;
    let digest = spec.validate()?;
    let m = model(&state, &name).await?;
    call.authorize(&state, "model.register", &model_resource(&state, &m).await?)
        .await?;
    super::datasets::authorize_sources(&state, &call, &spec.trained_from).await?;
    let version = state
        .app
        .store
        .add_model_version(&name, &spec, &digest, call.principal.as_str(), call.now, |added| {
            let resource = entities::model_version(&m, added).to_string();
            vec![call.change_event(&resource, "model.version.add", Some(digest.clone()), None)]
        })
        .await?;
    refresh_attributes(&state).await;
    Ok((StatusCode::CREATED, Json(to_json(&version)?)).into_response())
}

/// `GET /api/v1/models/{name}/versions`
#[utoipa::path(get, path = "/api/v1/models/{name}/versions", tag = "models", params(("name" = String, Path)),
    responses((status = 200, description = "`{\"versions\": [ModelVersion]}`, oldest first"), (status = 403), (status = 404)))]
pub async fn versions<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let m = model(&state, &name).await?;
    let versions = state.app.store.list_model_versions(&name).await?;
    let stage = Stage::of_model(versions.iter().map(|v| v.stage));
    call.authorize(&state, "model.read", &entities::model(&m, stage))
        .await?;
    Ok(Json(json!({ "versions": versions })))
}

/// `GET /api/v1/models/{name}/versions/{version}`
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}", tag = "models",
    params(("name" = String, Path), ("version" = u32, Path)),
    responses((status = 200, body = ModelVersion), (status = 403), (status = 404)))]
pub async fn version<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version = version_param(&version)?;
    let m = model(&state, &name).await?;
    let v = model_version(&state, &name, version).await?;
    call.authorize(&state, "model.read", &entities::model_version(&m, &v))
        .await?;
    Ok(Json(to_json(&v)?))
}

/// Body of a stage change, a promotion request or a rollback.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    /// The stage to move to (`development`, `staging`, `archived`); not
    /// for promotion requests or rollbacks.
    #[serde(default)]
    pub stage: Option<Stage>,
    /// Why (required).
    pub reason: String,
}

/// `POST /api/v1/models/{name}/versions/{version}/stage` with
/// `{"stage", "reason"}`: development ⇄ staging, or to archived.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/stage", tag = "models",
    params(("name" = String, Path), ("version" = u32, Path)), request_body = StageBody,
    responses((status = 200, body = ModelVersion), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn set_stage<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path((name, version)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let version = version_param(&version)?;
    let StageBody { stage, reason } = read_json(body).await?;
    let to = stage.ok_or_else(|| ApiError::invalid_request("`stage` is required"))?;
    let reason = warden_registry::check_reason("reason", &reason)?;
    let m = model(&state, &name).await?;
    let v = model_version(&state, &name, version).await?;
    call.authorize(&state, "model.promote", &entities::model_version(&m, &v))
        .await?;
    v.stage.check_transition(to)?;
    // A version under review stays in staging until its request closes:
    // otherwise the last approval would find it gone.
    let open = state
        .app
        .store
        .list_promotions(Some(&name), Some(RequestStatus::Open))
        .await?;
    if let Some(r) = open.iter().find(|r| r.version == version) {
        return Err(ApiError::conflict(format!(
            "promotion request `{}` for this version is open; reject it first",
            r.id
        )));
    }
    let change = StageChange {
        model: name.clone(),
        version,
        from: v.stage,
        to,
        by: call.principal.as_str().to_owned(),
        reason: reason.clone(),
        request_id: None,
        at: call.now,
    };
    let moved = ModelVersion {
        stage: to,
        stage_changed_at: call.now,
        ..v.clone()
    };
    let resource = entities::model_version(&m, &moved).to_string();
    let operation = format!("model.stage:{}->{}", v.stage.as_str(), to.as_str());
    let event = call.change_event(&resource, &operation, Some(moved.digest.clone()), Some(reason));
    state.app.store.set_stage(&change, || vec![event]).await?;
    refresh_attributes(&state).await;
    Ok(Json(to_json(&moved)?))
}

/// `POST /api/v1/models/{name}/versions/{version}/promotions` with
/// `{"reason"}`: asks for the version (in staging) to go to production;
/// it does once enough distinct principals approve.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/promotions", tag = "promotions",
    params(("name" = String, Path), ("version" = u32, Path)), request_body = StageBody,
    responses((status = 201, body = PromotionRequest), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn request_promotion<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path((name, version)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let version = version_param(&version)?;
    let StageBody { stage, reason } = read_json(body).await?;
    if stage.is_some_and(|s| s != Stage::Production) {
        return Err(ApiError::invalid_request(
            "a promotion request is for `production` only",
        ));
    }
    let reason = warden_registry::check_reason("reason", &reason)?;
    let m = model(&state, &name).await?;
    let v = model_version(&state, &name, version).await?;
    let resource = entities::model_version(&m, &v);
    call.authorize(&state, "model.promote", &resource).await?;
    let options = state.app.options.registry;
    let request = PromotionRequest {
        id: format!("pr-{}", crate::http::request_id::new()),
        model: name.clone(),
        version,
        requested_by: call.principal.as_str().to_owned(),
        requester_actors: call.actor_chain.clone(),
        reason: reason.clone(),
        status: RequestStatus::Open,
        required: options.required_approvals,
        approval_ttl: options.approval_ttl,
        created_at: call.now,
        closed_at: None,
    };
    let operation = format!("model.promotion.request:{}", request.id);
    let event = call.change_event(&resource.to_string(), &operation, Some(v.digest), Some(reason));
    state.app.store.open_promotion(&request, || vec![event]).await?;
    Ok((
        StatusCode::CREATED,
        Json(super::promotions::describe(&request, &[], call.now)),
    )
        .into_response())
}

/// `POST /api/v1/models/{name}/rollback` with `{"reason"}`: the
/// production version goes to archived and the one before it returns.
#[utoipa::path(post, path = "/api/v1/models/{name}/rollback", tag = "models",
    params(("name" = String, Path)), request_body = StageBody,
    responses((status = 200, description = "`{\"model\", \"from\", \"to\"}`"), (status = 403), (status = 404), (status = 409)))]
pub async fn rollback<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let StageBody { stage, reason } = read_json(body).await?;
    if stage.is_some() {
        return Err(ApiError::invalid_request("a rollback takes no `stage`"));
    }
    let reason = warden_registry::check_reason("reason", &reason)?;
    let m = model(&state, &name).await?;
    let resource = model_resource(&state, &m).await?;
    call.authorize(&state, "model.rollback", &resource).await?;
    let done = state
        .app
        .store
        .rollback(&name, call.principal.as_str(), &reason, call.now, |done| {
            let operation = format!("model.rollback:{}->{}", done.from, done.to);
            vec![call.change_event(&resource.to_string(), &operation, None, Some(reason.clone()))]
        })
        .await?;
    refresh_attributes(&state).await;
    Ok(Json(json!({"model": name, "from": done.from, "to": done.to})))
}

/// `GET /api/v1/models/{name}/history`: every stage change, oldest first.
#[utoipa::path(get, path = "/api/v1/models/{name}/history", tag = "models", params(("name" = String, Path)),
    responses((status = 200, description = "`{\"changes\": [StageChange]}`"), (status = 403), (status = 404)))]
pub async fn history<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let m = model(&state, &name).await?;
    call.authorize(&state, "model.read", &model_resource(&state, &m).await?)
        .await?;
    let changes = state.app.store.stage_history(&name).await?;
    Ok(Json(json!({ "changes": changes })))
}
