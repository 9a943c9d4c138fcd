//! The admin API for clients, under `/api/v1/admin/clients`, for tokens
//! with the `admin` role or the `warden.admin` scope. Every change is
//! audited (who, what, which client); secrets appear once, in the response
//! that created them.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warden_audit::{AuditEvent, EventKind};
use warden_store::Store;

use super::AdminState;
use crate::access::Admin;
use crate::error::ApiError;
use crate::http::read_body;
use crate::notice::Notice;
use crate::oauth::clients::{self, ClientSpec};

async fn audit_admin<S: Store>(
    state: &AdminState<S>,
    principal: &str,
    action: &str,
    target: &str,
    now: u64,
) -> Result<(), ApiError> {
    let event = EventKind::AdminAction {
        principal: principal.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
    };
    state.app.audit.record(AuditEvent::new(now, event)).await?;
    Ok(())
}

/// `GET /api/v1/admin/clients`.
pub async fn list<S: Store>(State(state): State<Arc<AdminState<S>>>, _: Admin) -> Result<Response, ApiError> {
    let all = state.app.store.list_clients().await?;
    Ok(Json(json!({"clients": all.iter().map(clients::describe).collect::<Vec<_>>()})).into_response())
}

/// `GET /api/v1/admin/clients/{id}`.
pub async fn show<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<Response, ApiError> {
    let client = state
        .app
        .store
        .get_client(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no client `{id}`")))?;
    Ok(Json(clients::describe(&client)).into_response())
}

/// `POST /api/v1/admin/clients` with a [`ClientSpec`] as JSON.
pub async fn create<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    Admin(admin): Admin,
    body: Body,
) -> Result<Response, ApiError> {
    let now = admin.now;
    let bytes = read_body(body, state.app.options.oauth.max_body_bytes).await?;
    let spec: ClientSpec =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid_request(format!("invalid client JSON: {e}")))?;
    let (record, secret) = clients::create(&state.app.store, &state.clients.hasher, &spec, now).await?;
    audit_admin(&state, &admin.principal, "client.create", &record.client_id, now).await?;
    let mut body = clients::describe(&record);
    if let (Some(secret), Some(obj)) = (secret, body.as_object_mut()) {
        obj.insert("client_secret".into(), json!(secret.0.as_str()));
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /api/v1/admin/clients/{id}/disable`.
pub async fn disable<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    Path(id): Path<String>,
    admin: Admin,
) -> Result<Response, ApiError> {
    set_disabled(state, id, admin, true).await
}

/// `POST /api/v1/admin/clients/{id}/enable`.
pub async fn enable<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    Path(id): Path<String>,
    admin: Admin,
) -> Result<Response, ApiError> {
    set_disabled(state, id, admin, false).await
}

async fn set_disabled<S: Store>(
    state: Arc<AdminState<S>>,
    id: String,
    Admin(admin): Admin,
    disabled: bool,
) -> Result<Response, ApiError> {
    let now = admin.now;
    clients::set_disabled(&state.app.store, &id, disabled, now).await?;
    state.clients.forget(&id);
    state.app.notices.publish(Notice::Client { client_id: id.clone() });
    let action = if disabled { "client.disable" } else { "client.enable" };
    audit_admin(&state, &admin.principal, action, &id, now).await?;
    Ok(Json(json!({"client_id": id, "disabled": disabled})).into_response())
}

/// `POST /api/v1/admin/clients/{id}/rotate-secret`.
pub async fn rotate_secret<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    Path(id): Path<String>,
    Admin(admin): Admin,
) -> Result<Response, ApiError> {
    let now = admin.now;
    let secret = clients::rotate_secret(&state.app.store, &state.clients.hasher, &id, now).await?;
    state.clients.forget(&id);
    state.app.notices.publish(Notice::Client { client_id: id.clone() });
    audit_admin(&state, &admin.principal, "client.rotate_secret", &id, now).await?;
    Ok(Json(json!({"client_id": id, "client_secret": secret.0.as_str()})).into_response())
}
