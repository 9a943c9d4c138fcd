//! The Models page: every model the person may read with its versions by
//! stage, the open promotion requests with their ballots (approve or
//! reject with a reason, for those allowed), and a model's history.
//!
//! Listing and voting call the registry API's handlers, so the policies,
//! the four-eyes rule and the audit events are exactly the API's.

use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use warden_registry::{Ballot, ModelVersion, PromotionRequest, Stage};
use warden_store::Store;

use super::DashboardState;
use super::form::{field, read_form};
use super::page::{Chrome, UiError, html};
use super::session::{CSRF_FIELD, Session};
use crate::access::entities;
use crate::error::ApiError;
use crate::registry::{models, promotions};
use crate::time::readable as time;

const STAGES: [Stage; 4] = [Stage::Development, Stage::Staging, Stage::Production, Stage::Archived];

/// A version as a card shows it.
#[derive(Debug)]
pub struct VersionView {
    version: u32,
    digest: String,
    created: String,
    by: String,
}

/// One model with its versions per stage (in [`STAGES`] order).
#[derive(Debug)]
pub struct ModelView {
    name: String,
    owner: String,
    stage: String,
    columns: Vec<(&'static str, Vec<VersionView>)>,
}

/// A promotion request with its ballots and what this person may do.
#[derive(Debug)]
pub struct RequestView {
    id: String,
    model: String,
    version: u32,
    requested_by: String,
    reason: String,
    status: String,
    created: String,
    approvals: u64,
    required: u32,
    ballots: Vec<(String, String, String, String)>,
    may_vote: bool,
    mine: bool,
    my_vote: Option<String>,
}

async fn request_view<S: Store>(
    state: &DashboardState<S>,
    session: &Session,
    v: &Value,
) -> Result<Option<RequestView>, ApiError> {
    let Ok(req) = serde_json::from_value::<PromotionRequest>(v.clone()) else {
        return Ok(None);
    };
    let ballots: Vec<Ballot> = v
        .get("ballots")
        .and_then(|b| serde_json::from_value(b.clone()).ok())
        .unwrap_or_default();
    let mine = req.requested_by == session.principal();
    let Some(model) = state.app.store.get_model(&req.model).await? else {
        return Ok(None);
    };
    let Some(version) = state.app.store.get_model_version(&req.model, req.version).await? else {
        return Ok(None);
    };
    let action = if mine { "model.promote" } else { "model.approve" };
    let voted = ballots
        .iter()
        .find(|b| warden_registry::subject::same(&b.voter, session.principal()));
    let may_vote = voted.is_none()
        && session
            .call
            .may(state, action, &entities::model_version(&model, &version));
    Ok(Some(RequestView {
        id: req.id.clone(),
        model: req.model.clone(),
        version: req.version,
        requested_by: req.requested_by.clone(),
        reason: req.reason.clone(),
        status: req.status.as_str().to_owned(),
        created: time(req.created_at),
        approvals: v.get("approvals").and_then(Value::as_u64).unwrap_or(0),
        required: req.required,
        ballots: ballots
            .iter()
            .map(|b| {
                (
                    b.voter.clone(),
                    b.vote.as_str().to_owned(),
                    b.reason.clone(),
                    time(b.cast_at),
                )
            })
            .collect(),
        may_vote,
        mine,
        my_vote: voted.map(|b| format!("You voted {} on {}.", b.vote.as_str(), time(b.cast_at))),
    }))
}

async fn request_views<S: Store>(
    state: &DashboardState<S>,
    session: &Session,
    listed: &Value,
) -> Result<Vec<RequestView>, ApiError> {
    let mut out = Vec::new();
    for v in listed.get("promotions").and_then(Value::as_array).into_iter().flatten() {
        if let Some(view) = request_view(state, session, v).await? {
            out.push(view);
        }
    }
    Ok(out)
}

/// Query of the Models page: the request a vote was just cast on.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Voted {
    /// The request voted on.
    pub voted: String,
}

#[derive(Template)]
#[template(path = "ui/models.html")]
struct ModelsPage {
    chrome: Chrome,
    models: Vec<ModelView>,
    hidden: u64,
    requests: Vec<RequestView>,
    notice: Option<String>,
}

/// `GET /ui/models`
pub async fn page<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
    voted: Query<Voted>,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "models", "Models");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let Json(listed) = models::list(State(Arc::clone(&state.registry)), session.call.clone())
        .await
        .map_err(within)?;
    let mut views = Vec::new();
    for m in listed.get("models").and_then(Value::as_array).into_iter().flatten() {
        let Ok(model) = serde_json::from_value::<warden_registry::Model>(m.clone()) else {
            continue;
        };
        let versions = state
            .app
            .store
            .list_model_versions(&model.name)
            .await
            .map_err(|e| within(e.into()))?;
        views.push(model_view(&state, &session, &model, m, &versions));
    }
    let Json(open) = promotions::list(
        State(Arc::clone(&state.registry)),
        session.call.clone(),
        Ok(Query(promotions::ListQuery {
            model: None,
            status: Some("open".into()),
        })),
    )
    .await
    .map_err(within)?;
    let requests = request_views(&state, &session, &open).await.map_err(within)?;
    // What became of the request voted on, read back (the query string
    // only names it): nothing is shown for a request without this
    // person's ballot.
    let notice = if voted.voted.is_empty() {
        None
    } else {
        match state
            .app
            .store
            .get_promotion(&voted.voted)
            .await
            .map_err(|e| within(e.into()))?
        {
            Some((req, ballots))
                if ballots
                    .iter()
                    .any(|b| warden_registry::subject::same(&b.voter, session.principal())) =>
            {
                Some(match req.status.as_str() {
                    "approved" => format!(
                        "Approved: request {} has its approvals and {} v{} is in production.",
                        req.id, req.model, req.version
                    ),
                    "rejected" => format!("Rejected: request {} is closed.", req.id),
                    _ => format!(
                        "Your approval of request {} was recorded; it needs more approvals.",
                        req.id
                    ),
                })
            }
            _ => None,
        }
    };
    let page = ModelsPage {
        chrome,
        models: views,
        hidden: listed.get("hidden").and_then(Value::as_u64).unwrap_or(0),
        requests,
        notice,
    };
    Ok(html(&state, &session, &page))
}

fn model_view<S: Store>(
    state: &DashboardState<S>,
    session: &Session,
    model: &warden_registry::Model,
    listed: &Value,
    versions: &[ModelVersion],
) -> ModelView {
    let columns = STAGES
        .iter()
        .map(|stage| {
            let in_stage = versions
                .iter()
                .filter(|v| v.stage == *stage)
                .filter(|v| {
                    session
                        .call
                        .may(state, "model.read", &entities::model_version(model, v))
                })
                .map(|v| VersionView {
                    version: v.version,
                    digest: v.digest.chars().take(19).collect(),
                    created: time(v.created_at),
                    by: v.created_by.clone(),
                })
                .collect();
            (stage.as_str(), in_stage)
        })
        .collect();
    ModelView {
        name: model.name.clone(),
        owner: model.owner.clone(),
        stage: listed
            .get("stage")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        columns,
    }
}

#[derive(Template)]
#[template(path = "ui/model.html")]
struct ModelPage {
    chrome: Chrome,
    model: ModelView,
    versions: Vec<(u32, String, String, String, String)>,
    history: Vec<(String, u32, String, String, String, String)>,
    requests: Vec<RequestView>,
}

/// `GET /ui/models/{name}`: versions, stage history and every promotion
/// request of one model.
pub async fn model<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "models", format!("Model {name}"));
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let Json(shown) = models::show(
        State(Arc::clone(&state.registry)),
        session.call.clone(),
        Path(name.clone()),
    )
    .await
    .map_err(within)?;
    let model: warden_registry::Model =
        serde_json::from_value(shown.clone()).map_err(|_| within(ApiError::internal("could not read the model")))?;
    let versions: Vec<ModelVersion> = shown
        .get("versions")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let Json(history) = models::history(
        State(Arc::clone(&state.registry)),
        session.call.clone(),
        Path(name.clone()),
    )
    .await
    .map_err(within)?;
    let Json(all) = promotions::list(
        State(Arc::clone(&state.registry)),
        session.call.clone(),
        Ok(Query(promotions::ListQuery {
            model: Some(name.clone()),
            status: None,
        })),
    )
    .await
    .map_err(within)?;
    let page = ModelPage {
        model: model_view(&state, &session, &model, &shown, &versions),
        versions: versions
            .iter()
            .map(|v| {
                (
                    v.version,
                    v.stage.as_str().to_owned(),
                    v.digest.clone(),
                    v.trained_from
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    time(v.created_at),
                )
            })
            .collect(),
        history: history
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                (
                    time(c.get("at").and_then(Value::as_u64).unwrap_or(0)),
                    u32::try_from(c.get("version").and_then(Value::as_u64).unwrap_or(0)).unwrap_or(0),
                    format!("{} → {}", s("from"), s("to")),
                    s("by"),
                    s("reason"),
                    s("request_id"),
                )
            })
            .collect(),
        requests: request_views(&state, &session, &all).await.map_err(within)?,
        chrome,
    };
    Ok(html(&state, &session, &page))
}

/// `POST /ui/promotions/{id}/{approve|reject}` with `reason` and `csrf`:
/// the registry API's vote; back to the Models page with its outcome.
pub async fn vote<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    Path((id, vote)): Path<(String, String)>,
    request: Request,
) -> Result<Response, UiError> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let chrome = Chrome::new(&state, &session, "models", "Models");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), headers);
    let fields = read_form(body).await.map_err(within)?;
    session
        .check_csrf(&state, headers, field(&fields, CSRF_FIELD).unwrap_or_default())
        .map_err(within)?;
    let reason = field(&fields, "reason").unwrap_or_default().trim().to_owned();
    if reason.is_empty() {
        return Err(within(ApiError::invalid_request("give a reason for your vote")));
    }
    let json = serde_json::json!({ "reason": reason }).to_string();
    let state_ref = State(Arc::clone(&state.registry));
    let call = session.call.clone();
    let Json(result) = match vote.as_str() {
        "approve" => promotions::approve(state_ref, call, Path(id.clone()), Body::from(json)).await,
        "reject" => promotions::reject(state_ref, call, Path(id.clone()), Body::from(json)).await,
        _ => return Err(within(ApiError::not_found("the vote must be approve or reject"))),
    }
    .map_err(within)?;
    let _ = result;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("voted", &id)
        .finish();
    let target = format!("/ui/models?{query}");
    let mut response = Redirect::to(&target).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    Ok(response)
}
