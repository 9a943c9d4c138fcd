//! The Approvals page: `GET /ui/approvals` lists the requests the signed-in
//! person may answer (pending, soonest to expire first, refreshed every
//! few seconds) and the recent ones they may see; `GET
//! /ui/approvals/{id}` shows one — what is asked, by which agent, for
//! whom, why (the binding message and the policies), until when — with
//! approve and deny buttons and a reason; `POST
//! /ui/approvals/{id}/approve` and `/deny` answer it (CSRF-checked).
//!
//! The answer is the one `approvals::answer` gives the API: a person
//! acting themselves, in an approving group, never the request's own
//! subject or agent; refusals are audited. An approval link in a
//! notification opens this page; it never approves by itself.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use warden_store::Store;
use warden_store::approvals::{ApprovalRecord, ApprovalStatus, MAX_LISTED};

use super::DashboardState;
use super::form::field;
use super::page::{Chrome, UiError, html};
use super::session::Session;
use crate::approvals::{self, Asked, view};
use crate::error::ApiError;
use crate::time::readable as time;

/// Most requests listed.
const LISTED: u32 = 200;

/// One request as a row or a page.
#[derive(Debug)]
pub struct ApprovalRow {
    id: String,
    status: &'static str,
    what: String,
    resource: String,
    route: String,
    subject: String,
    agents: String,
    approvers: String,
    policies: String,
    digest: String,
    binding_message: String,
    requested: String,
    expires: String,
    decided: String,
    answerable: bool,
}

fn row(record: &ApprovalRecord, asked: &Asked, answerable: bool) -> ApprovalRow {
    let decided = match (&record.decided_by, record.decided_at) {
        (Some(by), Some(at)) => format!(
            "{} by {by}, {}: {}",
            record.status,
            time(at),
            record.reason.as_deref().unwrap_or("")
        ),
        _ => String::new(),
    };
    ApprovalRow {
        id: record.id.clone(),
        status: record.status.as_str(),
        what: match asked.tool() {
            Some(tool) => format!("call the tool `{tool}`"),
            None => format!("{} {}", asked.action, asked.resource),
        },
        resource: asked.resource.clone(),
        route: asked.route.clone(),
        subject: asked.subject.clone(),
        agents: asked.actor_chain.join(" → "),
        approvers: asked.approvers.join(", "),
        policies: asked.policy_ids.join(", "),
        digest: asked.digest().unwrap_or_default(),
        binding_message: asked.binding_message.clone().unwrap_or_default(),
        requested: time(record.created_at),
        expires: time(record.expires_at),
        decided,
        answerable,
    }
}

#[derive(Template)]
#[template(path = "ui/approvals.html")]
struct ApprovalsPage {
    chrome: Chrome,
    pending: Vec<ApprovalRow>,
    recent: Vec<ApprovalRow>,
}

#[derive(Template)]
#[template(path = "ui/approval.html")]
struct ApprovalPage {
    chrome: Chrome,
    r: ApprovalRow,
}

/// `GET /ui/approvals`.
pub async fn page<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "approvals", "Approvals");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let call = &session.call;
    // Every pending request first (so none drops out behind many decided
    // ones), then the most recent of all.
    let store = &state.app.store;
    let mut records = store
        .approvals(Some(ApprovalStatus::Pending), MAX_LISTED)
        .await
        .map_err(|e| within(e.into()))?;
    records.extend(
        store
            .approvals(None, LISTED)
            .await
            .map_err(|e| within(e.into()))?
            .into_iter()
            .filter(|r| r.status != ApprovalStatus::Pending),
    );
    let (mut pending, mut recent) = (Vec::new(), Vec::new());
    for record in &records {
        let Ok(asked) = Asked::from_json(&record.request) else {
            tracing::error!(approval_id = %record.id, "a stored approval request is corrupt; not listed");
            continue;
        };
        if !view::visible_to(call, record, &asked) {
            continue;
        }
        let answerable = view::answerable_by(call, record, &asked, call.now);
        if answerable {
            pending.push(row(record, &asked, true));
        } else {
            recent.push(row(record, &asked, false));
        }
    }
    pending.sort_by(|a, b| a.expires.cmp(&b.expires));
    Ok(html(
        &state,
        &session,
        &ApprovalsPage {
            chrome,
            pending,
            recent,
        },
    ))
}

/// `GET /ui/approvals/{id}`.
pub async fn approval<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "approvals", "Approval request");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let call = &session.call;
    let missing = || ApiError::not_found(format!("approval request `{id}` not found"));
    let record = state
        .app
        .store
        .approval(&id)
        .await
        .map_err(|e| within(e.into()))?
        .ok_or_else(|| within(missing()))?;
    let asked = Asked::from_json(&record.request).map_err(within)?;
    if !view::visible_to(call, &record, &asked) {
        return Err(within(missing()));
    }
    let answerable = view::answerable_by(call, &record, &asked, call.now);
    let r = row(&record, &asked, answerable);
    Ok(html(&state, &session, &ApprovalPage { chrome, r }))
}

/// `POST /ui/approvals/{id}/approve`.
pub async fn approve<S: Store>(
    state: State<Arc<DashboardState<S>>>,
    session: Session,
    id: Path<String>,
    request: Request,
) -> Result<Response, UiError> {
    decide(state, session, id, request, true).await
}

/// `POST /ui/approvals/{id}/deny`.
pub async fn deny<S: Store>(
    state: State<Arc<DashboardState<S>>>,
    session: Session,
    id: Path<String>,
    request: Request,
) -> Result<Response, UiError> {
    decide(state, session, id, request, false).await
}

async fn decide<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    Path(id): Path<String>,
    request: Request,
    approve: bool,
) -> Result<Response, UiError> {
    let headers = request.headers().clone();
    let chrome = Chrome::new(&state, &session, "approvals", "Approval request");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let fields = session.read_form(&state, request).await.map_err(within)?;
    let reason = field(&fields, "reason").unwrap_or_default();
    let call = &session.call;
    let record = approvals::answer(&state.app, call, &id, approve, reason, call.now)
        .await
        .map_err(within)?;
    debug_assert!(record.status != ApprovalStatus::Pending);
    let mut response = Redirect::to(&format!("/ui/approvals/{}", record.id)).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    Ok(response)
}
