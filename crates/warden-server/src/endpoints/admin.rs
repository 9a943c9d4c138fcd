//! The admin API for clients, under `/api/v1/admin/clients`, for tokens
//! with the `admin` role or the `warden.admin` scope. Every change is
//! audited (who, what, which client); secrets appear once, in the response
//! that created them.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;

use super::read_body;
use crate::bearer;
use crate::clients::{self, ClientError, ClientSpec};
use crate::error::ApiError;
use crate::options::{roles, scopes};
use crate::state::{AppState, now};

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid(m) => ApiError::invalid_request(m),
            ClientError::Exists(_) => ApiError::conflict(e.to_string()),
            ClientError::NotFound(_) => ApiError::not_found(e.to_string()),
            ClientError::Store(s) => s.into(),
            ClientError::Random => ApiError::internal("random generator failed"),
        }
    }
}

fn admin<S: Store>(state: &AppState<S>, headers: &HeaderMap, now: u64) -> Result<String, ApiError> {
    let token = bearer::require(state, headers, roles::ADMIN, scopes::ADMIN, now)?;
    Ok(token.claims().sub().unwrap_or_default().to_owned())
}

async fn audit_admin<S: Store>(
    state: &AppState<S>,
    principal: String,
    action: &str,
    target: &str,
    now: u64,
) -> Result<(), ApiError> {
    let event = EventKind::AdminAction {
        principal,
        action: action.to_owned(),
        target: target.to_owned(),
    };
    state.audit.record(AuditEvent::new(now, event)).await?;
    Ok(())
}

/// `GET /api/v1/admin/clients`.
pub async fn list<S: Store>(State(state): State<Arc<AppState<S>>>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&state, &headers, now())?;
    let all = state.store.list_clients().await?;
    Ok(Json(json!({"clients": all.iter().map(clients::describe).collect::<Vec<_>>()})).into_response())
}

/// `GET /api/v1/admin/clients/{id}`.
pub async fn show<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&state, &headers, now())?;
    let client = state
        .store
        .get_client(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no client `{id}`")))?;
    Ok(Json(clients::describe(&client)).into_response())
}

/// `POST /api/v1/admin/clients` with a [`ClientSpec`] as JSON.
pub async fn create<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = now();
    let principal = admin(&state, &headers, now)?;
    let bytes = read_body(body, state.options.oauth.max_body_bytes).await?;
    let spec: ClientSpec =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid_request(format!("invalid client JSON: {e}")))?;
    let (record, secret) = clients::create(&state.store, &state.hasher, &spec, now).await?;
    audit_admin(&state, principal, "client.create", &record.client_id, now).await?;
    let mut body = clients::describe(&record);
    if let (Some(secret), Some(obj)) = (secret, body.as_object_mut()) {
        obj.insert("client_secret".into(), json!(secret.0.as_str()));
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /api/v1/admin/clients/{id}/disable`.
pub async fn disable<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_disabled(state, id, headers, true).await
}

/// `POST /api/v1/admin/clients/{id}/enable`.
pub async fn enable<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_disabled(state, id, headers, false).await
}

async fn set_disabled<S: Store>(
    state: Arc<AppState<S>>,
    id: String,
    headers: HeaderMap,
    disabled: bool,
) -> Result<Response, ApiError> {
    let now = now();
    let principal = admin(&state, &headers, now)?;
    clients::set_disabled(&state.store, &id, disabled, now).await?;
    state.forget_client(&id);
    state
        .fanout
        .publish(crate::fanout::Notice::Client { client_id: id.clone() });
    let action = if disabled { "client.disable" } else { "client.enable" };
    audit_admin(&state, principal, action, &id, now).await?;
    Ok(Json(json!({"client_id": id, "disabled": disabled})).into_response())
}

/// `POST /api/v1/admin/clients/{id}/rotate-secret`.
pub async fn rotate_secret<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = now();
    let principal = admin(&state, &headers, now)?;
    let secret = clients::rotate_secret(&state.store, &state.hasher, &id, now).await?;
    state.forget_client(&id);
    state
        .fanout
        .publish(crate::fanout::Notice::Client { client_id: id.clone() });
    audit_admin(&state, principal, "client.rotate_secret", &id, now).await?;
    Ok(Json(json!({"client_id": id, "client_secret": secret.0.as_str()})).into_response())
}
