//! `/api/v1/promotions`: four-eyes promotion requests and their votes.
//!
//! Voting needs `model.approve` on the model version from the policies,
//! and then the four-eyes rule (`warden_registry::decide_vote`), which no
//! policy can relax: never the requester, never an agent, never through a
//! delegated token, one approval per principal, expired approvals do not
//! count. A vote the rule refuses is audited as a denial by
//! [`FOUR_EYES_POLICY_ID`].

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_audit::EventKind;
use warden_registry::{Ballot, PromotionRequest, RegistryError, RequestStatus, Vote, VoteOutcome, Voter};
use warden_store::{Store, StoreError, VoteResult};

use super::lookup::{model, model_version};
use super::{RegistryState, read_json, refresh_attributes};
use crate::access::{Caller, entities};
use crate::error::ApiError;

type AppRef<S> = State<Arc<RegistryState<S>>>;

/// Policy id recorded when the four-eyes rule refuses a vote.
pub const FOUR_EYES_POLICY_ID: &str = "warden.four-eyes";
/// Policy id recorded for a vote on a request that is no longer open.
pub const CLOSED_POLICY_ID: &str = "warden.request-closed";

/// A request as the API shows it: its fields, its ballots, and how many
/// approvals count now.
pub fn describe(request: &PromotionRequest, ballots: &[Ballot], now: u64) -> Value {
    let counting = ballots.iter().filter(|b| b.counts(request.approval_ttl, now)).count();
    let mut v = serde_json::to_value(request).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("ballots".into(), json!(ballots));
        obj.insert("approvals".into(), json!(counting));
    }
    v
}

/// Query of `GET /api/v1/promotions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this model's requests.
    pub model: Option<String>,
    /// Only requests in this status (`open`, `approved`, `rejected`).
    pub status: Option<String>,
}

/// `GET /api/v1/promotions?model=&status=`: requests on models the caller
/// may read, newest first.
#[utoipa::path(get, path = "/api/v1/promotions", tag = "promotions", params(ListQuery),
    responses((status = 200, description = "`{\"promotions\": [PromotionRequest]}`")))]
pub async fn list<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let status = q.status.as_deref().map(RequestStatus::parse).transpose()?;
    let found = state.app.store.list_promotions(q.model.as_deref(), status).await?;
    let registry = state.access.policies.registry();
    let mut visible = Vec::new();
    for r in &found {
        let readable = registry
            .resource("Model", &r.model)
            .is_some_and(|res| call.may(&state, "model.read", &res));
        if readable {
            let ballots = state
                .app
                .store
                .get_promotion(&r.id)
                .await?
                .map(|(_, b)| b)
                .unwrap_or_default();
            visible.push(describe(r, &ballots, call.now));
        }
    }
    call.audit_listing(&state, "model.read", "PromotionRequest::*").await?;
    let hidden = found.len() - visible.len();
    Ok(Json(json!({ "promotions": visible, "hidden": hidden })))
}

async fn request<S: Store>(state: &RegistryState<S>, id: &str) -> Result<(PromotionRequest, Vec<Ballot>), ApiError> {
    state
        .app
        .store
        .get_promotion(id)
        .await?
        .ok_or_else(|| missing_request(id))
}

fn missing_request(id: &str) -> ApiError {
    ApiError::not_found(format!("promotion request `{id}` not found"))
}

/// A request about a model a tenant policy hides from the caller is as
/// missing as one that does not exist: the same answer, naming the request
/// (the only name in the path), not the model.
fn hidden_as_missing(id: &str) -> impl Fn(ApiError) -> ApiError + '_ {
    move |e| {
        if e.status == axum::http::StatusCode::NOT_FOUND {
            missing_request(id)
        } else {
            e
        }
    }
}

/// `GET /api/v1/promotions/{id}`
#[utoipa::path(get, path = "/api/v1/promotions/{id}", tag = "promotions", params(("id" = String, Path)),
    responses((status = 200, description = "The request with `ballots` and `approvals`"), (status = 403), (status = 404)))]
pub async fn show<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (req, ballots) = request(&state, &id).await?;
    let m = model(&state, &req.model).await?;
    let v = model_version(&state, &req.model, req.version).await?;
    call.authorize(&state, "model.read", &entities::model_version(&m, &v))
        .await
        .map_err(hidden_as_missing(&id))?;
    Ok(Json(describe(&req, &ballots, call.now)))
}

/// Body of a vote.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    /// Why (required).
    pub reason: String,
}

/// `POST /api/v1/promotions/{id}/approve` with `{"reason"}`.
#[utoipa::path(post, path = "/api/v1/promotions/{id}/approve", tag = "promotions",
    params(("id" = String, Path)), request_body = VoteBody,
    responses((status = 200, description = "The request after the vote; `outcome` is `recorded` or `completed`"),
        (status = 403, description = "Denied by the policies or the four-eyes rule"), (status = 404), (status = 409)))]
pub async fn approve<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    vote(state, call, id, body, Vote::Approve).await
}

/// `POST /api/v1/promotions/{id}/reject` with `{"reason"}`: closes the
/// request. An approver rejects with `model.approve`; the requester may
/// withdraw their own with `model.promote`.
#[utoipa::path(post, path = "/api/v1/promotions/{id}/reject", tag = "promotions",
    params(("id" = String, Path)), request_body = VoteBody,
    responses((status = 200, description = "The rejected request"), (status = 403), (status = 404), (status = 409)))]
pub async fn reject<S: Store>(
    State(state): AppRef<S>,
    call: Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    vote(state, call, id, body, Vote::Reject).await
}

async fn vote<S: Store>(
    state: Arc<RegistryState<S>>,
    call: Caller,
    id: String,
    body: Body,
    vote: Vote,
) -> Result<Json<Value>, ApiError> {
    let VoteBody { reason } = read_json(body).await?;
    let reason = warden_registry::check_reason("reason", &reason)?;
    let (req, _) = request(&state, &id).await?;
    let m = model(&state, &req.model).await?;
    let v = model_version(&state, &req.model, req.version).await?;
    let resource = entities::model_version(&m, &v);
    let shown = resource.to_string();
    // The requester may withdraw their own request with the right to make
    // it; every other vote needs the right to approve.
    let withdrawal = vote == Vote::Reject && req.requested_by == call.principal.as_str();
    let action = if withdrawal { "model.promote" } else { "model.approve" };
    call.authorize(&state, action, &resource)
        .await
        .map_err(hidden_as_missing(&id))?;
    let voter = Voter {
        subject: call.principal.as_str(),
        actors: &call.actor_chain,
    };
    // The approval, and for a completing one the stage changes, are
    // appended in the vote's own transaction.
    let audit = |result: &VoteResult| {
        let approvals = match result.outcome {
            VoteOutcome::Recorded { approvals, .. } | VoteOutcome::Completed { approvals, .. } => approvals,
            VoteOutcome::Rejected => 0,
        };
        let mut events = vec![call.event(EventKind::Approval {
            approver: call.principal.as_str().to_owned(),
            requester: req.requested_by.clone(),
            requester_actors: req.requester_actors.clone(),
            resource: shown.clone(),
            action: "model.promote".into(),
            vote: vote.as_str().into(),
            reason: reason.clone(),
            request_id: id.clone(),
            approvals,
            required: req.required,
        })];
        if matches!(result.outcome, VoteOutcome::Completed { .. }) {
            if let Some(old) = result.archived {
                let old_ref = warden_policy::Resource::new("ModelVersion", format!("{}@{old}", req.model)).to_string();
                let op = "model.stage:production->archived";
                events.push(call.change_event(&old_ref, op, None, Some(format!("replaced by promotion {id}"))));
            }
            events.push(call.change_event(
                &shown,
                "model.stage:staging->production",
                Some(v.digest.clone()),
                Some(format!("promotion {id} approved")),
            ));
        }
        events
    };
    let result = match state.app.store.vote(&id, voter, vote, &reason, call.now, audit).await {
        Ok(r) => r,
        Err(StoreError::Registry(rule)) => {
            let policy = match rule {
                RegistryError::Closed(_) => CLOSED_POLICY_ID,
                _ => FOUR_EYES_POLICY_ID,
            };
            call.record_denial(&state, action, &shown, policy).await;
            return Err(rule.into());
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = match result.outcome {
        VoteOutcome::Recorded { .. } => "recorded",
        VoteOutcome::Completed { .. } => "completed",
        VoteOutcome::Rejected => "rejected",
    };
    if matches!(result.outcome, VoteOutcome::Completed { .. }) {
        refresh_attributes(&state).await;
    }
    // The vote is committed and audited: a failure to read the ballots
    // back must not read as "nothing was changed".
    let ballots = match state.app.store.get_promotion(&id).await {
        Ok(Some((_, b))) => b,
        _ => Vec::new(),
    };
    let mut body = describe(&result.request, &ballots, call.now);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("outcome".into(), json!(outcome));
    }
    Ok(Json(body))
}
