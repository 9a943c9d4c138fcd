//! `GET|POST /ui/login` and `POST /ui/logout`.
//!
//! Signing in takes a Warden access token in a form (pasted, or filled in
//! from a login link's fragment by `app.js`, so the token never reaches a
//! server log or a `Referer`; the person confirms whom the link signs in
//! as). Sign-ins are audited, and so are refusals of a valid token that is
//! not a person's own; a token that does not verify names nobody and is
//! only refused. Signing out revokes the session's token everywhere.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use warden_store::Store;

use super::DashboardState;
use super::form::{field, read_form};
use super::page::{ASSET_VERSION, UiError, render};
use super::session::{self, CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, Session};
use crate::access::{Accept, Caller};
use crate::state::now;

/// The action sign-ins are audited under.
pub const SIGN_IN_ACTION: &str = "dashboard.sign-in";
/// The rule that refuses tokens that are not a person's own.
pub const PEOPLE_ONLY_POLICY_ID: &str = "warden.dashboard-people-only";

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage<'a> {
    csrf: String,
    message: Option<&'a str>,
    version: &'static str,
    /// (link, button text) per identity provider.
    providers: Vec<(String, String)>,
}

/// `?return_to=` of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// The page to come back to.
    pub return_to: Option<String>,
}

/// Renders the sign-in page: a button per identity provider (coming back
/// to `return_to`), and the token form, with a CSRF nonce cookie bound to
/// no session.
pub(super) fn login_page<S: Store>(
    state: &DashboardState<S>,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&str>,
    return_to: Option<&str>,
) -> Response {
    let (nonce, fresh) = match session::cookie(headers, CSRF_COOKIE) {
        Some(n) if n.len() >= 16 => (n.to_owned(), false),
        _ => match session::new_nonce() {
            Ok(n) => (n, true),
            Err(e) => return UiError::from(e).into_response(),
        },
    };
    let csrf = state.ui.csrf.token(&nonce, "");
    let providers = state
        .ui
        .providers
        .list()
        .map(|p| (start_link(&p.name, return_to), p.display_name.clone()))
        .collect();
    let mut response = render(
        status,
        &LoginPage {
            csrf,
            message,
            version: ASSET_VERSION,
            providers,
        },
    );
    if fresh && let Some(v) = session::set_cookie(CSRF_COOKIE, &nonce, 60 * 60 * 24, session::secure_cookies(state)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Where a provider's button leads.
fn start_link(provider: &str, return_to: Option<&str>) -> String {
    match return_to {
        Some(path) => {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", path)
                .finish();
            format!("/ui/login/{provider}?{query}")
        }
        None => format!("/ui/login/{provider}"),
    }
}

/// `GET /ui/login`: the sign-in page; sent here from a page that needs a
/// session (`return_to`) with exactly one identity provider configured,
/// straight on to that provider.
pub async fn form<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let return_to = query.return_to.filter(|p| crate::login::safe_return(p));
    let mut providers = state.ui.providers.list();
    if let (Some(path), Some(only), None) = (&return_to, providers.next(), providers.next()) {
        return Redirect::to(&start_link(&only.name, Some(path))).into_response();
    }
    login_page(&state, &headers, StatusCode::OK, None, return_to.as_deref())
}

/// `POST /ui/login` with `token` and `csrf`.
pub async fn sign_in<S: Store>(State(state): State<Arc<DashboardState<S>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    if let Err(e) = session::same_origin(headers, state.app.options.dashboard_origin()) {
        return UiError::from(e).into_response();
    }
    let fields = match read_form(body).await {
        Ok(f) => f,
        Err(e) => return UiError::from(e).into_response(),
    };
    let nonce = session::cookie(headers, CSRF_COOKIE).unwrap_or_default();
    let presented = field(&fields, CSRF_FIELD).unwrap_or_default();
    if !state.ui.csrf.check(nonce, "", presented) {
        return login_page(
            &state,
            headers,
            StatusCode::FORBIDDEN,
            Some("The form expired or was not sent from this page. Try again."),
            None,
        );
    }
    let token = field(&fields, "token").unwrap_or_default().trim();
    if token.is_empty() {
        return login_page(
            &state,
            headers,
            StatusCode::BAD_REQUEST,
            Some("Paste an access token."),
            None,
        );
    }
    let call = match Caller::of_request(&*state, token, &parts, Accept::Dashboard).await {
        Ok(call) => call,
        Err(e) if e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::BAD_REQUEST => {
            let message = format!("That token cannot sign in: {}.", e.description);
            return login_page(&state, headers, StatusCode::UNAUTHORIZED, Some(&message), None);
        }
        Err(e) => return UiError::from(e).into_response(),
    };
    if let Err(reason) = session::person(&call) {
        call.record_denial(&state, SIGN_IN_ACTION, "Dashboard::\"ui\"", PEOPLE_ONLY_POLICY_ID)
            .await;
        return login_page(&state, headers, StatusCode::FORBIDDEN, Some(&reason), None);
    }
    if let Err(e) = call.audit_listing(&state, SIGN_IN_ACTION, "Dashboard::\"ui\"").await {
        return UiError::from(e).into_response();
    }
    // Listed on the Sessions page, on every replica: a sign-in that
    // cannot be recorded is refused.
    if let Err(e) = super::sessions::record_sign_in(&state.app, &call, headers).await {
        return UiError::from(e).into_response();
    }
    let remaining = call.exp.saturating_sub(now());
    let secure = session::secure_cookies(&state);
    // The first section this person may open.
    let landing = if call.may(&state, "audit.read", &super::page::audit_log()) {
        "/ui/audit"
    } else {
        "/ui/models"
    };
    let mut response = Redirect::to(landing).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    // A fresh nonce at sign-in: a nonce planted before cannot follow the
    // session.
    let cookies = [
        session::set_cookie(SESSION_COOKIE, token, remaining, secure),
        session::new_nonce()
            .ok()
            .and_then(|n| session::set_cookie(CSRF_COOKIE, &n, 60 * 60 * 24, secure)),
    ];
    for v in cookies.into_iter().flatten() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `POST /ui/logout` with `csrf`: ends the session — its token is revoked
/// (every replica refuses it from then on, on the dashboard and anywhere
/// else), its row marked ended, and this browser forgets it. Audited as
/// `token_revoked`, reason `logout`.
pub async fn sign_out<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    request: Request,
) -> Response {
    if let Err(e) = session.read_form(&state, request).await {
        return UiError::from(e).into_response();
    }
    let call = &session.call;
    if let Err(e) = super::sessions::end_session(&state.app, &call.jti, call.exp, &call.client_id, "logout").await {
        return UiError::from(e).into_response();
    }
    super::sessions::signed_out(&state)
}
