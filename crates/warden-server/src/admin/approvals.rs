//! `/api/v1/approvals`: people's approvals of agents' actions
//! (`docs/approvals.md`), for `warden approvals` and any other client of a
//! signed-in person.
//!
//! - `GET /api/v1/approvals?status=pending&limit=50`: the requests the
//!   caller may see (those it may answer, its own, and all of them for
//!   administrators and auditors), newest first;
//! - `GET /api/v1/approvals/{id}`: one (404 when not visible);
//! - `POST /api/v1/approvals/{id}/approve` and `/deny` with
//!   `{"reason": "…"}`: the caller's answer (a person acting themselves,
//!   in one of the approving groups; 403 otherwise, audited).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_store::Store;
use warden_store::approvals::{ApprovalStatus, MAX_LISTED};

use super::AdminState;
use crate::access::Caller;
use crate::approvals::{self, Asked, view};
use crate::error::ApiError;
use crate::http::read_json;

/// Largest body read.
const MAX_BODY: usize = 8 * 1024;

/// An answer's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    reason: String,
}

fn person(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_delegated() {
        return Err(ApiError::insufficient_scope(
            "a token of the person themselves (delegated tokens may not use this API)",
        ));
    }
    Ok(())
}

/// `GET /api/v1/approvals`.
pub async fn list<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    person(&caller)?;
    let mut status = None;
    let mut limit = 50;
    for (name, value) in &query {
        match name.as_str() {
            "status" => {
                status = Some(ApprovalStatus::parse(value).ok_or_else(|| {
                    ApiError::invalid_request("status must be pending, approved, denied, issued, used or expired")
                })?);
            }
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LISTED).contains(n))
                    .ok_or_else(|| ApiError::invalid_request(format!("limit must be 1..={MAX_LISTED}")))?;
            }
            other => return Err(ApiError::invalid_request(format!("unknown parameter `{other}`"))),
        }
    }
    let records = state.app.store.approvals(status, MAX_LISTED).await?;
    let mut shown = Vec::new();
    for record in records {
        let Ok(asked) = Asked::from_json(&record.request) else {
            tracing::error!(approval_id = %record.id, "a stored approval request is corrupt; not listed");
            continue;
        };
        if view::visible_to(&caller, &record, &asked) {
            shown.push(view::to_json(&record, &asked));
            if shown.len() >= limit as usize {
                break;
            }
        }
    }
    Ok(Json(json!({ "approvals": shown })))
}

/// `GET /api/v1/approvals/{id}`.
pub async fn show<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    person(&caller)?;
    let missing = || ApiError::not_found(format!("approval request `{id}` not found"));
    let record = state.app.store.approval(&id).await?.ok_or_else(missing)?;
    let asked = Asked::from_json(&record.request)?;
    if !view::visible_to(&caller, &record, &asked) {
        return Err(missing());
    }
    Ok(Json(view::to_json(&record, &asked)))
}

/// `POST /api/v1/approvals/{id}/approve`.
pub async fn approve<S: Store>(
    state: State<Arc<AdminState<S>>>,
    caller: Caller,
    id: Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    decide(state, caller, id, body, true).await
}

/// `POST /api/v1/approvals/{id}/deny`.
pub async fn deny<S: Store>(
    state: State<Arc<AdminState<S>>>,
    caller: Caller,
    id: Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    decide(state, caller, id, body, false).await
}

async fn decide<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
    approve: bool,
) -> Result<Json<Value>, ApiError> {
    let answer: Answer = read_json(body, MAX_BODY).await?;
    let record = approvals::answer(&state.app, &caller, &id, approve, &answer.reason, caller.now).await?;
    let asked = Asked::from_json(&record.request)?;
    Ok(Json(view::to_json(&record, &asked)))
}
