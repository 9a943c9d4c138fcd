//! The Access page: for a chosen role, or a principal with its roles,
//! which actions it may take on which resource types, computed by
//! evaluating the policies in force (`warden_policy::PolicyEngine::access`),
//! and which policy grants (or forbids) each. Needs `policy.read`.

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use warden_policy::{AccessQuery, AccessRow, Verdict};
use warden_store::Store;

use super::DashboardState;
use super::page::{Chrome, UiError, html, policy_set};
use super::session::Session;
use crate::error::ApiError;

/// Most roles one matrix is computed for.
const MAX_ROLES: usize = 10;

/// Roles offered even before any client or token names them: the
/// default policies' roles.
const KNOWN_ROLES: [&str; 5] = ["admin", "approver", "auditor", "data-scientist", "ml-engineer"];

/// Query of the Access page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AccessForm {
    /// A role to show alone.
    pub role: String,
    /// Or a principal (`user:NAME`, `svc:NAME`, `agent:NAME`, or a client
    /// id, whose configured roles are used).
    pub principal: String,
    /// The principal's roles, comma-separated (for `user:` principals).
    pub roles: String,
    /// The principal's tenant.
    pub tenant: String,
}

/// A row as the page shows it.
#[derive(Debug)]
pub struct RowView {
    action: String,
    resource_type: String,
    verdict: &'static str,
    /// When it is allowed, and the granting policies.
    allowed: Vec<(String, String)>,
    /// When it is denied, and the forbidding policies (none: no permit).
    denied: Vec<(String, String)>,
    /// Why the row could not be computed.
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/access.html")]
struct AccessPage {
    chrome: Chrome,
    form: AccessForm,
    roles: Vec<String>,
    subject: String,
    subject_roles: String,
    rows: Vec<RowView>,
    asked: bool,
    policies: usize,
}

fn row_view(r: &AccessRow) -> RowView {
    RowView {
        action: r.action.clone(),
        resource_type: r.resource_type.clone(),
        verdict: match r.verdict {
            Verdict::Always => "always",
            Verdict::Sometimes => "sometimes",
            Verdict::Never => "never",
            Verdict::Unknown => "unknown",
        },
        allowed: cases(r, true),
        denied: cases(r, false),
        problem: r.problem.clone(),
    }
}

fn cases(r: &AccessRow, allowed: bool) -> Vec<(String, String)> {
    r.cases
        .iter()
        .filter(|c| c.allowed == allowed)
        .map(|c| (c.condition.clone(), c.policy_ids.join(", ")))
        .collect()
}

/// `GET /ui/access?role=` or `?principal=&roles=&tenant=`
pub async fn page<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
    query: Result<Query<AccessForm>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "access", "Access");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    session
        .call
        .authorize(&state, "policy.read", &policy_set())
        .await
        .map_err(within)?;
    let Query(form) = query.map_err(|e| within(ApiError::invalid_request(e.body_text())))?;
    // Client ids and roles are the Keys page's to show: only with
    // `client.read`.
    let clients = if session
        .call
        .may(&state, "client.read", &warden_policy::Resource::new("Client", "*"))
    {
        state.app.store.list_clients().await.map_err(|e| within(e.into()))?
    } else {
        Vec::new()
    };
    let mut roles: BTreeSet<String> = KNOWN_ROLES.iter().map(|r| (*r).to_owned()).collect();
    roles.extend(clients.iter().flat_map(|c| c.roles.iter().cloned()));
    roles.extend(session.call.roles.iter().cloned());
    let split = |s: &str| -> Vec<String> {
        s.split([',', ' '])
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if split(&form.roles).len() > MAX_ROLES || form.roles.len() + form.principal.len() + form.tenant.len() > 1024 {
        return Err(within(ApiError::invalid_request(format!(
            "at most {MAX_ROLES} roles, and names of reasonable length"
        ))));
    }
    let principal = form.principal.trim();
    let (subject, subject_roles, tenant) = if !principal.is_empty() {
        // A client id: its configured roles (what its tokens carry).
        let bare = principal
            .strip_prefix("svc:")
            .or_else(|| principal.strip_prefix("agent:"))
            .unwrap_or(principal);
        match clients.iter().find(|c| c.client_id == bare) {
            Some(c) if form.roles.trim().is_empty() => (
                format!(
                    "{}:{}",
                    if c.kind.as_str() == "agent" { "agent" } else { "svc" },
                    c.client_id
                ),
                c.roles.clone(),
                form.tenant.trim().to_owned(),
            ),
            _ => {
                if !principal.contains(':') {
                    return Err(within(ApiError::invalid_request(
                        "a principal is user:NAME, svc:NAME, agent:NAME or a registered client id",
                    )));
                }
                (principal.to_owned(), split(&form.roles), form.tenant.trim().to_owned())
            }
        }
    } else if !form.role.trim().is_empty() {
        (
            "user:probe".to_owned(),
            vec![form.role.trim().to_owned()],
            form.tenant.trim().to_owned(),
        )
    } else {
        (String::new(), Vec::new(), String::new())
    };
    let asked = !subject.is_empty();
    let engine = state
        .access
        .policies
        .engine()
        .ok_or_else(|| within(ApiError::unavailable("no policies are loaded")))?;
    let rows = if asked {
        let q = AccessQuery {
            subject: subject.clone(),
            roles: subject_roles.clone(),
            tenant: (!tenant.is_empty()).then_some(tenant),
            scopes: None,
            purpose: None,
        };
        let now = i64::try_from(session.call.now).unwrap_or(i64::MAX);
        // Hundreds of Cedar decisions: off the async workers.
        let computed = {
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || engine.access(&q, now))
                .await
                .map_err(|_| within(ApiError::internal("the access matrix could not be computed")))?
        };
        computed
            .map_err(|e| within(ApiError::invalid_request(e.to_string())))?
            .iter()
            .map(row_view)
            .collect()
    } else {
        Vec::new()
    };
    let page = AccessPage {
        chrome,
        form,
        roles: roles.into_iter().collect(),
        subject,
        subject_roles: subject_roles.join(", "),
        rows,
        asked,
        policies: engine.policy_count(),
    };
    Ok(html(&state, &session, &page))
}
