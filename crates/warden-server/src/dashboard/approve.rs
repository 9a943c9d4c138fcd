//! Where a signed-in person answers a client that asks to act for them:
//! `/ui/authorize` (the authorization-code flow's consent, reached through
//! `GET /oauth/authorize`) and `/ui/device` (a device's user code, RFC
//! 8628). Approving gives the client the person's roles and the scopes the
//! client may have; every answer is audited as `grant_decision`.
//!
//! A person without a session is sent to sign in first (to the identity
//! provider) and comes back to the same question. The request is checked
//! again when the answer is posted: nothing in the form is trusted but the
//! CSRF token.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use warden_audit::{AuditEvent, Decision, EventKind};
use warden_store::Store;
use warden_store::authorization::{DeviceStatus, NewCode};
use warden_store::oauth::ClientKind;

use super::DashboardState;
use super::form::field;
use super::page::{Chrome, UiError, html};
use super::session::{NoSession, Session};
use crate::error::ApiError;
use crate::oauth::authorize::{self, AuthorizationRequest, CODE_TTL, Refusal, with_params};
use crate::oauth::device::normalise_user_code;
use crate::oauth::grants::Grant;
use crate::oauth::grants::people::code_hash;
use crate::oauth::scope;
use crate::state::now;

/// What is asked, as the page shows it.
struct Ask {
    client_id: String,
    scopes: String,
    audiences: String,
    user_code: Option<String>,
    /// Hidden form fields that name the request.
    hidden: Vec<(&'static str, String)>,
}

/// The page that moves the browser on to the client after an answer. A
/// redirect would do, were it not for the dashboard's `form-action
/// 'self'`: Chromium and WebKit apply it to the redirects that follow a
/// form's submission, and the client's redirect URI is another origin.
#[derive(Template)]
#[template(path = "ui/move_on.html")]
pub(super) struct MoveOn<'a> {
    pub(super) heading: &'a str,
    pub(super) to: &'a str,
    pub(super) version: &'static str,
}

fn move_on(to: &str) -> Response {
    super::page::render(
        StatusCode::OK,
        &MoveOn {
            heading: "Back to the app",
            to,
            version: super::page::ASSET_VERSION,
        },
    )
}

#[derive(Template)]
#[template(path = "ui/approve.html")]
struct ApprovePage {
    chrome: Chrome,
    heading: &'static str,
    subject: String,
    roles: String,
    action: &'static str,
    ask: Option<Ask>,
    message: Option<String>,
    done: Option<String>,
    enter_code: bool,
}

fn page<S: Store>(
    state: &DashboardState<S>,
    session: &Session,
    heading: &'static str,
    action: &'static str,
) -> ApprovePage {
    ApprovePage {
        chrome: Chrome::new(state, session, "", heading),
        heading,
        subject: session.call.principal.clone(),
        roles: session.call.roles.join(", "),
        action,
        ask: None,
        message: None,
        done: None,
        enter_code: false,
    }
}

/// Whether `session` may approve an app acting for its person: only a
/// session signed in through the identity provider, never a break-glass
/// one (a login link, a pasted token), which could turn a narrow,
/// short-lived token into a long-lived sign-in.
fn may_approve(session: &Session) -> Result<(), String> {
    if session.call.client_id == super::sso::SSO_CLIENT {
        Ok(())
    } else {
        Err(
            "Approving an app needs a session signed in through your identity provider; \
             a login-link or pasted-token session cannot. Sign out and sign in with your company account."
                .to_owned(),
        )
    }
}

/// What a person grants: themselves, with their roles and tenant, for
/// the scopes and audiences asked.
fn person_grant(session: &Session, client_id: &str, scopes: Vec<String>, audience: Vec<String>) -> Grant {
    Grant {
        subject: session.call.principal.clone(),
        client_id: client_id.to_owned(),
        scopes,
        roles: session.call.roles.clone(),
        audience,
        act: None,
        tenant: session.call.tenant.clone(),
        jkt: None,
        authorization_details: None,
    }
}

async fn audit_decision<S: Store>(
    state: &DashboardState<S>,
    session: &Session,
    client_id: &str,
    flow: &str,
    decision: Decision,
    scope: String,
) -> Result<(), ApiError> {
    let event = EventKind::GrantDecision {
        subject: session.call.principal.clone(),
        client_id: client_id.to_owned(),
        flow: flow.to_owned(),
        decision,
        scope,
    };
    state
        .app
        .audit
        .record(AuditEvent::new(now(), event))
        .await
        .map(|_| ())
        .map_err(|_| ApiError::unavailable("the audit log is unavailable; nothing was granted"))
}

/// `GET /ui/authorize?…`: the request is checked before anything else
/// (a bad client or redirect URI is shown, the rest sent back to the
/// client), then the person signs in if needed, then is asked.
pub async fn authorize_form<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    uri: Uri,
    session: Result<Session, NoSession>,
) -> Response {
    let query = uri.query().unwrap_or_default();
    let request = match authorize::check(&state.app, query).await {
        Ok(r) => r,
        Err(refusal) => return refused(&state, refusal),
    };
    let session = match session {
        Ok(s) => s,
        Err(no) => return no.into_response(),
    };
    let mut p = page(&state, &session, "Allow access?", "/ui/authorize");
    if let Err(why) = may_approve(&session) {
        p.message = Some(why);
        return with_status(html(&state, &session, &p), StatusCode::FORBIDDEN);
    }
    p.ask = Some(Ask {
        client_id: request.client.client_id.clone(),
        scopes: scope::join(&request.scopes),
        audiences: request.audiences.join(", "),
        user_code: None,
        hidden: vec![("request", query.to_owned())],
    });
    html(&state, &session, &p)
}

fn refused<S: Store>(state: &DashboardState<S>, refusal: Refusal) -> Response {
    match refusal.into_response_for(&state.app.options.issuer) {
        Ok(redirect) => redirect,
        Err(e) => UiError::from(e).into_response(),
    }
}

/// `POST /ui/authorize` with `request`, `decision` and `csrf`.
pub async fn authorize_answer<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    request: Request,
) -> Response {
    let fields = match session.read_form(&state, request).await {
        Ok(f) => f,
        Err(e) => return UiError::from(e).into_response(),
    };
    if let Err(why) = may_approve(&session) {
        return UiError::from(ApiError::access_denied(why)).into_response();
    }
    let query = field(&fields, "request").unwrap_or_default();
    let asked = match authorize::check(&state.app, query).await {
        Ok(r) => r,
        Err(refusal) => return refused(&state, refusal),
    };
    let issuer = state.app.options.issuer.clone();
    let allow = field(&fields, "decision") == Some("allow");
    let decision = if allow { Decision::Allow } else { Decision::Deny };
    let scope_text = scope::join(&asked.scopes);
    if let Err(e) = audit_decision(
        &state,
        &session,
        &asked.client.client_id,
        "authorization_code",
        decision,
        scope_text,
    )
    .await
    {
        return UiError::from(e).into_response();
    }
    if !allow {
        return move_on(&with_params(
            &asked.redirect_uri,
            &[
                ("error", "access_denied".to_owned()),
                ("error_description", "the person refused".to_owned()),
                ("state", asked.state.clone()),
                ("iss", issuer),
            ],
        ));
    }
    match issue_code(&state, &session, &asked).await {
        Ok(code) => move_on(&with_params(
            &asked.redirect_uri,
            &[("code", code), ("state", asked.state.clone()), ("iss", issuer)],
        )),
        Err(e) => UiError::from(e).into_response(),
    }
}

/// Stores a code for what the person approved; returns it.
async fn issue_code<S: Store>(
    state: &DashboardState<S>,
    session: &Session,
    asked: &AuthorizationRequest,
) -> Result<String, ApiError> {
    let code = crate::oauth::grants::random_secret("wac_")?;
    let grant = person_grant(
        session,
        &asked.client.client_id,
        asked.scopes.clone(),
        asked.audiences.clone(),
    );
    let t = now();
    state
        .app
        .store
        .insert_code(&NewCode {
            code_hash: code_hash(&code),
            client_id: asked.client.client_id.clone(),
            redirect_uri: asked.redirect_uri.clone(),
            code_challenge: asked.code_challenge.clone(),
            grant_data: crate::oauth::grants::grant_data(&grant)?,
            issued_at: t,
            expires_at: t + CODE_TTL,
        })
        .await?;
    Ok(code)
}

/// `?user_code=` of the device page.
#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    /// The code the device shows.
    pub user_code: Option<String>,
}

/// `GET /ui/device[?user_code=…]`: asks for the code, or shows what the
/// device with that code asks for.
pub async fn device_form<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    Query(query): Query<DeviceQuery>,
) -> Response {
    let mut p = page(&state, &session, "Sign in a device", "/ui/device");
    if let Err(why) = may_approve(&session) {
        p.message = Some(why);
        return with_status(html(&state, &session, &p), StatusCode::FORBIDDEN);
    }
    match query.user_code.as_deref() {
        None => p.enter_code = true,
        Some(typed) => match pending_device(&state, typed).await {
            Ok(Some(ask)) => p.ask = Some(ask),
            Ok(None) => {
                p.enter_code = true;
                p.message =
                    Some("That code is unknown, expired or already answered. Check the code on your device.".into());
            }
            Err(e) => return UiError::from(e).into_response(),
        },
    }
    html(&state, &session, &p)
}

/// The pending, unexpired grant of a typed user code, as the page asks it.
async fn pending_device<S: Store>(state: &DashboardState<S>, typed: &str) -> Result<Option<Ask>, ApiError> {
    let Some(code) = normalise_user_code(typed) else {
        return Ok(None);
    };
    let Some(grant) = state.app.store.find_device_grant(&code).await? else {
        return Ok(None);
    };
    if grant.status != DeviceStatus::Pending || now() >= grant.expires_at {
        return Ok(None);
    }
    let audiences: Vec<String> = serde_json::from_str(&grant.audiences).unwrap_or_default();
    Ok(Some(Ask {
        client_id: grant.client_id,
        scopes: grant.scopes,
        audiences: audiences.join(", "),
        user_code: Some(code.clone()),
        hidden: vec![("user_code", code)],
    }))
}

/// `POST /ui/device` with `user_code`, `decision` and `csrf`.
pub async fn device_answer<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    request: Request,
) -> Response {
    let fields = match session.read_form(&state, request).await {
        Ok(f) => f,
        Err(e) => return UiError::from(e).into_response(),
    };
    if let Err(why) = may_approve(&session) {
        return UiError::from(ApiError::access_denied(why)).into_response();
    }
    let mut p = page(&state, &session, "Sign in a device", "/ui/device");
    let typed = field(&fields, "user_code").unwrap_or_default();
    let found = match normalise_user_code(typed) {
        Some(code) => match state.app.store.find_device_grant(&code).await {
            Ok(g) => g.map(|g| (code, g)),
            Err(e) => return UiError::from(ApiError::from(e)).into_response(),
        },
        None => None,
    };
    let Some((code, grant)) = found.filter(|(_, g)| g.status == DeviceStatus::Pending && now() < g.expires_at) else {
        p.enter_code = true;
        p.message = Some("That code is unknown, expired or already answered.".into());
        return with_status(html(&state, &session, &p), StatusCode::BAD_REQUEST);
    };
    // The client must still be an enabled public client.
    let client_ok = matches!(
        state.app.store.get_client(&grant.client_id).await,
        Ok(Some(c)) if !c.disabled && c.kind == ClientKind::Public
    );
    let allow = field(&fields, "decision") == Some("allow") && client_ok;
    let decision = if allow { Decision::Allow } else { Decision::Deny };
    if let Err(e) = audit_decision(
        &state,
        &session,
        &grant.client_id,
        "device_code",
        decision,
        grant.scopes.clone(),
    )
    .await
    {
        return UiError::from(e).into_response();
    }
    let data = if allow {
        let audiences: Vec<String> = serde_json::from_str(&grant.audiences).unwrap_or_default();
        let scopes = scope::parse(&grant.scopes).unwrap_or_default();
        match crate::oauth::grants::grant_data(&person_grant(&session, &grant.client_id, scopes, audiences)) {
            Ok(d) => Some(d),
            Err(e) => return UiError::from(e).into_response(),
        }
    } else {
        None
    };
    match state
        .app
        .store
        .decide_device_grant(&code, &session.call.principal, data.as_deref(), now())
        .await
    {
        Ok(true) => {
            p.done = Some(if allow {
                "Approved. Go back to your device: it is signed in.".into()
            } else {
                "Refused. The device gets no access.".into()
            });
            html(&state, &session, &p)
        }
        Ok(false) => {
            p.enter_code = true;
            p.message = Some("That code was answered or expired meanwhile.".into());
            with_status(html(&state, &session, &p), StatusCode::CONFLICT)
        }
        Err(e) => UiError::from(ApiError::from(e)).into_response(),
    }
}

fn with_status(mut response: Response, status: StatusCode) -> Response {
    *response.status_mut() = status;
    response
}
