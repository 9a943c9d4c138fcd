//! The Sessions page: `GET /ui/sessions` lists the signed-in person's
//! active dashboard sessions (when each was signed in, when it expires,
//! the address and browser it signed in from, which one is this one) and
//! their sign-ins through apps and the command line (`warden login`: a
//! refresh-token family each, with when it was last used);
//! `POST /ui/sessions/end` with `jti` and `csrf` ends a session,
//! `POST /ui/sessions/end-sign-in` with `id` and `csrf` a sign-in.
//!
//! Sessions are recorded in the store at sign-in (`login.rs`), so every
//! replica lists the same ones and they survive a restart. Ending one is
//! what signing out does: its token is revoked (store first, then here,
//! then announced to the other replicas), its row marked ended, and a
//! `token_revoked` event recorded. Administrators (the `admin` role or
//! the `warden.admin` scope, as for `POST /api/v1/admin/revocations`) see
//! and end everyone's sessions; anyone else asking about a session not
//! their own is told there is no such session.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use warden_audit::{AuditEvent, EventKind};
use warden_store::{SessionRecord, Store};

use super::DashboardState;
use super::form::field;
use super::page::{Chrome, UiError, html};
use super::session::{self, CSRF_COOKIE, SESSION_COOKIE, Session};
use crate::access::Caller;
use crate::error::ApiError;
use crate::options::{roles, scopes};
use crate::state::AppState;
use crate::time::readable as time;

/// Most sessions listed in one table.
const MAX_LISTED: u32 = 500;

/// The policy id a refused "end someone else's session" is audited under.
pub const OWN_SESSIONS_POLICY_ID: &str = "warden.dashboard-own-sessions";
/// The action ending a session is audited under when refused.
pub const END_ACTION: &str = "dashboard.session.end";

/// One session's row.
#[derive(Debug)]
pub struct SessionRow {
    jti: String,
    subject: String,
    signed_in: String,
    expires: String,
    client_ip: String,
    user_agent: String,
    current: bool,
}

/// One sign-in through an app or the command line.
#[derive(Debug)]
pub struct SignInRow {
    id: String,
    subject: String,
    client_id: String,
    started: String,
    last_used: String,
    expires: String,
}

fn sign_in_row((f, last): (warden_store::oauth::Family, u64)) -> SignInRow {
    SignInRow {
        started: time(f.created_at),
        last_used: time(last),
        expires: time(f.expires_at),
        id: f.id,
        subject: f.subject,
        client_id: f.client_id,
    }
}

/// The live sign-ins of `subject` (of every person when `None`).
async fn sign_ins<S: Store>(app: &AppState<S>, subject: Option<&str>, now: u64) -> Result<Vec<SignInRow>, ApiError> {
    Ok(app
        .store
        .live_families(subject, now, MAX_LISTED)
        .await?
        .into_iter()
        .filter(|(f, _)| f.subject.starts_with("user:"))
        .map(sign_in_row)
        .collect())
}

#[derive(Template)]
#[template(path = "ui/sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    mine: Vec<SessionRow>,
    everyone: Option<Vec<SessionRow>>,
    my_sign_ins: Vec<SignInRow>,
    all_sign_ins: Option<Vec<SignInRow>>,
    ended: Option<String>,
}

/// `?ended=JTI` after ending one.
#[derive(Debug, Deserialize)]
pub struct Shown {
    ended: Option<String>,
}

fn row(s: SessionRecord, current: &str) -> SessionRow {
    SessionRow {
        current: s.jti == current,
        signed_in: time(s.issued_at),
        expires: time(s.expires_at),
        client_ip: s.client_ip.unwrap_or_else(|| "not recorded".to_owned()),
        user_agent: s.user_agent.unwrap_or_else(|| "not recorded".to_owned()),
        subject: s.subject,
        jti: s.jti,
    }
}

/// Whether the caller administers Warden (and so everyone's sessions).
fn is_admin(call: &Caller) -> bool {
    call.require(roles::ADMIN, scopes::ADMIN).is_ok()
}

/// `GET /ui/sessions`.
pub async fn page<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    Query(shown): Query<Shown>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "sessions", "Sessions");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let call = &session.call;
    let store = &state.app.store;
    let mine = store
        .active_sessions(Some(&call.principal), call.now, MAX_LISTED)
        .await
        .map_err(|e| within(e.into()))?
        .into_iter()
        .map(|s| row(s, &call.jti))
        .collect();
    let everyone = if is_admin(call) {
        call.audit_listing(&state, "session.read", "Session::*")
            .await
            .map_err(within)?;
        Some(
            store
                .active_sessions(None, call.now, MAX_LISTED)
                .await
                .map_err(|e| within(e.into()))?
                .into_iter()
                .map(|s| row(s, &call.jti))
                .collect(),
        )
    } else {
        None
    };
    let my_sign_ins = sign_ins(&state.app, Some(&call.principal), call.now)
        .await
        .map_err(within)?;
    let all_sign_ins = if everyone.is_some() {
        Some(sign_ins(&state.app, None, call.now).await.map_err(within)?)
    } else {
        None
    };
    let page = SessionsPage {
        chrome,
        mine,
        everyone,
        my_sign_ins,
        all_sign_ins,
        ended: shown.ended.filter(|j| !j.is_empty() && j.len() <= 128),
    };
    Ok(html(&state, &session, &page))
}

/// The field `name` (1 to 128 characters: what to end) of a form posted
/// from this page, once its origin and CSRF token are checked.
async fn posted_name<S: Store>(
    state: &DashboardState<S>,
    session: &Session,
    request: Request,
    name: &str,
) -> Result<String, ApiError> {
    let fields = session.read_form(state, request).await?;
    let value = field(&fields, name).unwrap_or_default().trim();
    if value.is_empty() || value.len() > 128 {
        return Err(ApiError::invalid_request(format!("name the one to end (`{name}`)")));
    }
    Ok(value.to_owned())
}

/// `POST /ui/sessions/end` with `jti` and `csrf`: ends one of the
/// person's sessions (any session, for an administrator). Ending the
/// current one signs this browser out.
pub async fn end<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    request: Request,
) -> Result<Response, UiError> {
    let headers = request.headers().clone();
    let chrome = Chrome::new(&state, &session, "sessions", "Sessions");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let jti = posted_name(&state, &session, request, "jti").await.map_err(within)?;
    let jti = jti.as_str();
    let call = &session.call;
    let missing = || ApiError::not_found("there is no such active session");
    let found = state
        .app
        .store
        .find_session(jti)
        .await
        .map_err(|e| within(e.into()))?
        .filter(|s| s.ended_at.is_none() && s.expires_at > call.now);
    let Some(target) = found else {
        return Err(within(missing()));
    };
    if target.subject != call.principal && !is_admin(call) {
        // Not theirs: refused as if it did not exist (its id says nothing
        // to them), and audited.
        call.record_denial(
            &state,
            END_ACTION,
            &format!("Session::\"{}\"", target.jti),
            OWN_SESSIONS_POLICY_ID,
        )
        .await;
        return Err(within(missing()));
    }
    let reason = if target.subject == call.principal {
        "session ended by its owner".to_owned()
    } else {
        format!("session of {} ended by {}", target.subject, call.principal)
    };
    end_session(&state.app, &target.jti, target.expires_at, &call.client_id, &reason)
        .await
        .map_err(within)?;
    if target.jti == call.jti {
        return Ok(signed_out(&state));
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("ended", &target.jti)
        .finish();
    let mut response = Redirect::to(&format!("/ui/sessions?{query}")).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    Ok(response)
}

/// `POST /ui/sessions/end-sign-in` with `id` and `csrf`: ends one of the
/// person's sign-ins through an app or the command line (anyone's, for an
/// administrator): its refresh tokens and the access tokens issued from
/// them are revoked on every replica. Audited as `token_revoked`.
pub async fn end_sign_in<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    request: Request,
) -> Result<Response, UiError> {
    let headers = request.headers().clone();
    let chrome = Chrome::new(&state, &session, "sessions", "Sessions");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let id = posted_name(&state, &session, request, "id").await.map_err(within)?;
    let call = &session.call;
    let scope = if is_admin(call) {
        None
    } else {
        Some(call.principal.as_str())
    };
    let live = sign_ins(&state.app, scope, call.now).await.map_err(within)?;
    let Some(target) = live.into_iter().find(|r| r.id == id) else {
        // Not theirs, or not live: the same answer.
        return Err(within(ApiError::not_found("there is no such active sign-in")));
    };
    let now = crate::state::now();
    let revoked = state
        .app
        .store
        .revoke_family(&target.id, now)
        .await
        .map_err(|e| within(e.into()))?;
    state.app.revoke(revoked);
    let reason = if target.subject == call.principal {
        "sign-in ended by its owner".to_owned()
    } else {
        format!("sign-in of {} ended by {}", target.subject, call.principal)
    };
    let event = EventKind::TokenRevoked {
        jti: None,
        family: Some(target.id.clone()),
        client_id: target.client_id.clone(),
        reason,
    };
    state
        .app
        .audit
        .record(AuditEvent::new(now, event))
        .await
        .map_err(|e| within(e.into()))?;
    let mut response = Redirect::to("/ui/sessions").into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    Ok(response)
}

/// A redirect to the sign-in form that makes this browser forget its
/// session and CSRF nonce.
pub fn signed_out<S: Store>(state: &DashboardState<S>) -> Response {
    let secure = session::secure_cookies(state);
    let mut response = Redirect::to("/ui/login").into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        if let Some(v) = session::set_cookie(name, "", 0, secure) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// Ends the session of token `jti` (valid until `exp`): the revocation is
/// recorded in the store first (what every replica and restart trusts),
/// then applied here and announced; the session's row is marked ended;
/// the end is audited as `token_revoked` with `reason`. `client_id` is
/// the client of the one who asked.
pub async fn end_session<S: Store>(
    app: &AppState<S>,
    jti: &str,
    exp: u64,
    client_id: &str,
    reason: &str,
) -> Result<(), ApiError> {
    let now = crate::state::now();
    app.store.revoke_token(jti, exp, now).await?;
    app.revoke(vec![(jti.to_owned(), exp)]);
    if let Err(e) = app.store.end_session(jti, now).await {
        // The token is revoked, which is what ends the session; the list
        // leaves revoked sessions out all the same.
        tracing::warn!(error = %e, "a session's end was not recorded on its row; its token is revoked");
    }
    let event = EventKind::TokenRevoked {
        jti: Some(jti.to_owned()),
        family: None,
        client_id: client_id.to_owned(),
        reason: reason.to_owned(),
    };
    if let Err(e) = app.audit.record(AuditEvent::new(now, event)).await {
        tracing::error!(error = %e, "the end of a session was not audited; it is ended all the same");
    }
    Ok(())
}

/// The browser's `User-Agent`, without control characters, if it sent one.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|ua| !ua.is_empty())
}

/// Records the sign-in of `call` from a browser sending `headers`.
pub async fn record_sign_in<S: Store>(app: &AppState<S>, call: &Caller, headers: &HeaderMap) -> Result<(), ApiError> {
    let user_agent = user_agent(headers);
    let record = SessionRecord {
        jti: call.jti.clone(),
        subject: call.principal.clone(),
        client_id: call.client_id.clone(),
        issued_at: call.now,
        expires_at: call.exp,
        client_ip: Some(call.source_ip.to_string()),
        user_agent,
        ended_at: None,
    };
    app.store.record_session(&record).await?;
    Ok(())
}
