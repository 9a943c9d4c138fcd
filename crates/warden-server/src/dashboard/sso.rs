//! Single sign-on: `GET /ui/login/{provider}` sends the browser to the
//! company's identity provider, `GET /ui/login/{provider}/callback` takes
//! it back, verifies who the provider vouched for and opens a dashboard
//! session for them, with roles from their groups.
//!
//! The sign-in in progress (`state`, `nonce`, PKCE verifier, where to
//! return) travels sealed in a `SameSite=Lax` cookie scoped to
//! `/ui/login/`, the only cookie the provider's redirect back may carry.
//! The session is then what a login link gives: a Warden access token for
//! the dashboard's audience, in the `SameSite=Strict` session cookie,
//! listed on the Sessions page and ended by signing out. Because a
//! `Strict` cookie set during a navigation that started at the provider
//! is not sent on that navigation's redirects, the callback answers with a
//! page that moves on by itself (a same-site navigation) instead of a
//! redirect.
//!
//! Every sign-in and every refusal that names a person is audited as
//! `sign_in`; refusals that name nobody (a forged or expired state) are
//! logged.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use warden_audit::{AuditEvent, Decision, EventKind};
use warden_store::{SessionRecord, Store};

use super::DashboardState;
use super::login::login_page;
use super::page::{ASSET_VERSION, UiError, render};
use super::session::{self, CSRF_COOKIE, SESSION_COOKIE};
use crate::error::ApiError;
use crate::login::provider::bounded;
use crate::login::{self, PENDING_TTL, Pending, Person};
use crate::oauth::grants::{Grant, jti, mint};
use crate::state::now;

/// The cookie carrying a sign-in in progress.
pub const PENDING_COOKIE: &str = "warden_signin";
/// The client id of the session tokens of people signed in through an
/// identity provider (login links and pasted tokens name `warden-ui`):
/// only such a session may approve an app acting for its person.
pub const SSO_CLIENT: &str = "warden-sso";
/// What a dashboard session may do, at most: the dashboard's own actions.
/// Roles and policies decide what the person may actually do.
pub const SESSION_SCOPES: [&str; 8] = [
    "audit.read",
    "dataset.read",
    "model.read",
    "model.approve",
    "lineage.read",
    "policy.read",
    "key.read",
    "client.read",
];

/// `?return_to=` of the start.
#[derive(Debug, Deserialize)]
pub struct StartQuery {
    /// Where to go after signing in (a local `/ui` path).
    pub return_to: Option<String>,
}

/// What the provider sends back.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's redirect URI for `name`: the dashboard's public base.
pub fn redirect_uri<S: Store>(state: &DashboardState<S>, name: &str) -> String {
    format!(
        "{}/ui/login/{name}/callback",
        state.app.options.dashboard_base().trim_end_matches('/')
    )
}

/// `Set-Cookie` for the sign-in in progress: `Lax`, so that the
/// provider's top-level redirect back carries it; only under
/// `/ui/login/`.
fn pending_cookie(value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{PENDING_COOKIE}={value}; Path=/ui/login/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .ok()
}

/// `GET /ui/login/{provider}`: starts signing in.
pub async fn start<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    Path(name): Path<String>,
    Query(query): Query<StartQuery>,
    headers: HeaderMap,
) -> Response {
    if state.ui.providers.get(&name).is_none() {
        return UiError::from(ApiError::not_found("there is no such identity provider")).into_response();
    }
    let return_to = query
        .return_to
        .filter(|p| login::safe_return(p))
        .unwrap_or_else(|| "/ui/".to_owned());
    let (st, nonce, verifier) = match (session::new_nonce(), session::new_nonce(), session::new_nonce()) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        _ => return UiError::from(ApiError::internal("no randomness available")).into_response(),
    };
    let url = match state
        .ui
        .providers
        .authorization_url(
            &name,
            &redirect_uri(&state, &name),
            &st,
            &nonce,
            &login::s256(&verifier),
        )
        .await
    {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(provider = %name, error = %e, "cannot start a sign-in");
            let message = format!("Signing in with {name} is unavailable right now: {e}");
            return login_page(&state, &headers, StatusCode::SERVICE_UNAVAILABLE, Some(&message), None);
        }
    };
    let pending = Pending {
        provider: name,
        state: st,
        nonce,
        verifier,
        return_to,
        expires_at: now() + PENDING_TTL,
    };
    let sealed = match state.ui.sealer.seal(&pending) {
        Ok(s) => s,
        Err(e) => return UiError::from(ApiError::internal(e.to_string())).into_response(),
    };
    let mut response = Redirect::to(&url).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Some(v) = pending_cookie(&sealed, PENDING_TTL, session::secure_cookies(&state)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `GET /ui/login/{provider}/callback`: finishes signing in.
pub async fn callback<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    Path(name): Path<String>,
    Query(answer): Query<Callback>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let headers = &parts.headers;
    let source_ip = crate::http::client_ip::of_request(&parts, &state.app.options.trusted_proxies);
    let secure = session::secure_cookies(&state);
    let refuse = |status: StatusCode, message: &str| {
        let mut response = login_page(&state, headers, status, Some(message), None);
        if let Some(v) = pending_cookie("", 0, secure) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        response
    };
    // The sign-in this browser started, for this provider, unexpired,
    // with the `state` it was sent with.
    let pending: Option<Pending> = session::cookie(headers, PENDING_COOKIE)
        .and_then(|sealed| state.ui.sealer.open(sealed).ok())
        .filter(|p: &Pending| p.provider == name && now() < p.expires_at);
    let Some(pending) = pending.filter(|p| {
        answer.state.as_deref().is_some_and(|s| {
            aws_lc_rs::constant_time::verify_slices_are_equal(s.as_bytes(), p.state.as_bytes()).is_ok()
        })
    }) else {
        tracing::warn!(provider = %name, %source_ip, "a sign-in callback without a matching sign-in in progress was refused");
        return refuse(
            StatusCode::BAD_REQUEST,
            "This sign-in expired or was not started in this browser. Sign in again.",
        );
    };
    let method = format!("oidc:{name}");
    let audit_refusal = |subject: String, reason: String| {
        let event = EventKind::SignIn {
            subject,
            method: method.clone(),
            decision: Decision::Deny,
            reason,
            roles: Vec::new(),
            jti: None,
            source_ip: Some(source_ip),
        };
        let app = Arc::clone(&state.app);
        async move {
            if let Err(e) = app.audit.record(AuditEvent::new(now(), event)).await {
                tracing::error!(error = %e, "a refused sign-in could not be audited");
            }
        }
    };
    if let Some(error) = &answer.error {
        let detail = bounded(answer.error_description.as_deref().unwrap_or_default());
        let reason = format!("the identity provider answered `{}` {detail}", bounded(error));
        audit_refusal(String::new(), reason.clone()).await;
        return refuse(StatusCode::UNAUTHORIZED, &format!("Sign-in failed: {reason}."));
    }
    let Some(code) = answer.code.as_deref().filter(|c| !c.is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The identity provider sent no code. Sign in again.",
        );
    };
    let claims = match state
        .ui
        .providers
        .exchange(
            &name,
            code,
            &pending.verifier,
            &redirect_uri(&state, &name),
            &pending.nonce,
            now(),
        )
        .await
    {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(provider = %name, error = %e, "a sign-in was refused");
            audit_refusal(String::new(), e.to_string()).await;
            return refuse(StatusCode::UNAUTHORIZED, &format!("Sign-in failed: {e}."));
        }
    };
    let Some(provider) = state.ui.providers.get(&name) else {
        return refuse(StatusCode::NOT_FOUND, "There is no such identity provider.");
    };
    let person = match login::person(provider, &claims.0) {
        Ok(p) => p,
        Err(refusal) => {
            // Named by the provider: audited under the name it gave.
            let named = claims
                .0
                .get("email")
                .or_else(|| claims.0.get("sub"))
                .and_then(|v| v.as_str())
                .map(|n| warden_registry::subject::canonical(&format!("user:{}", bounded(n))))
                .unwrap_or_default();
            audit_refusal(named, refusal.to_string()).await;
            return refuse(StatusCode::FORBIDDEN, &format!("You cannot sign in: {refusal}."));
        }
    };
    match open_session(&state, &person, &method, source_ip, headers).await {
        Ok((token, remaining)) => {
            let mut response = render(
                StatusCode::OK,
                &super::approve::MoveOn {
                    heading: "Signed in",
                    to: &pending.return_to,
                    version: ASSET_VERSION,
                },
            );
            let cookies = [
                session::set_cookie(SESSION_COOKIE, &token, remaining, secure),
                session::new_nonce()
                    .ok()
                    .and_then(|n| session::set_cookie(CSRF_COOKIE, &n, 60 * 60 * 24, secure)),
                pending_cookie("", 0, secure),
            ];
            for v in cookies.into_iter().flatten() {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
        Err(e) => UiError::from(e).into_response(),
    }
}

/// Mints the session token of `person`, records the session and audits
/// the sign-in (a sign-in that cannot be audited or recorded is refused).
/// Returns the token and its remaining lifetime.
async fn open_session<S: Store>(
    state: &DashboardState<S>,
    person: &Person,
    method: &str,
    source_ip: std::net::IpAddr,
    headers: &HeaderMap,
) -> Result<(String, u64), ApiError> {
    let app = &state.app;
    let t = now();
    let exp = t + app.options.max_ttl;
    let grant = Grant {
        subject: person.subject.clone(),
        client_id: SSO_CLIENT.to_owned(),
        scopes: SESSION_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        roles: person.roles.clone(),
        audience: vec![app.options.ui_audience()],
        act: None,
        tenant: None,
        jkt: None,
        authorization_details: None,
    };
    let minted = mint(app, &grant, jti()?, exp, t)?;
    let issued = EventKind::TokenIssued {
        subject: grant.subject.clone(),
        client_id: grant.client_id.clone(),
        jti: minted.jti.clone(),
        kid: minted.kid.clone(),
        scope: crate::oauth::scope::join(&grant.scopes),
        audience: grant.audience.clone(),
        grant: "sign_in".to_owned(),
        expires_at: minted.exp,
        issued_by: None,
    };
    let signed_in = EventKind::SignIn {
        subject: person.subject.clone(),
        method: method.to_owned(),
        decision: Decision::Allow,
        reason: String::new(),
        roles: person.roles.clone(),
        jti: Some(minted.jti.clone()),
        source_ip: Some(source_ip),
    };
    for event in [signed_in, issued] {
        app.audit
            .record(AuditEvent::new(t, event))
            .await
            .map_err(|_| ApiError::unavailable("the audit log is unavailable; nobody can sign in now"))?;
    }
    let user_agent = super::sessions::user_agent(headers);
    app.store
        .record_session(&SessionRecord {
            jti: minted.jti.clone(),
            subject: person.subject.clone(),
            client_id: SSO_CLIENT.to_owned(),
            issued_at: t,
            expires_at: exp,
            client_ip: Some(source_ip.to_string()),
            user_agent,
            ended_at: None,
        })
        .await?;
    Ok((minted.token, exp.saturating_sub(t)))
}
