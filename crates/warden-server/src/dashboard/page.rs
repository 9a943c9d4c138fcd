//! What every dashboard page shares: the chrome (navigation, the signed-in
//! person, the sign-out form), HTML responses with the session's cookies,
//! error pages, the security headers and the embedded assets.

use askama::Template;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use warden_policy::Resource;
use warden_store::Store;

use super::DashboardState;
use super::session::{self, NoSession, Session};
use crate::error::ApiError;

/// The dashboard's Content-Security-Policy: only this origin's scripts,
/// styles and requests; no inline script or style, no framing, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Version stamped on asset URLs (a new binary, new URLs).
pub const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One entry of the navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Where it goes.
    pub href: &'static str,
    /// Its label.
    pub label: &'static str,
    /// Whether it is the current section.
    pub current: bool,
}

/// The sections, in order: `(key, href, label)`.
const SECTIONS: [(&str, &str, &str); 7] = [
    ("audit", "/ui/audit", "Audit"),
    ("lineage", "/ui/lineage", "Lineage"),
    ("models", "/ui/models", "Models"),
    ("access", "/ui/access", "Access"),
    ("keys", "/ui/keys", "Keys and clients"),
    ("sessions", "/ui/sessions", "Sessions"),
    ("approvals", "/ui/approvals", "Approvals"),
];

/// The frame around every signed-in page.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page title.
    pub title: String,
    /// The signed-in subject.
    pub principal: String,
    /// Its roles, comma-separated.
    pub roles: String,
    /// The CSRF token for forms.
    pub csrf: String,
    /// The sections this person may open.
    pub nav: Vec<NavItem>,
    /// Asset URL version.
    pub version: &'static str,
}

impl Chrome {
    /// The chrome of section `current` for `session`. Sections guarded by
    /// one resource (audit log, policies, keys) are listed only when the
    /// policies allow them; lineage and models are decided per object.
    pub fn new<S: Store>(
        state: &DashboardState<S>,
        session: &Session,
        current: &str,
        title: impl Into<String>,
    ) -> Self {
        let call = &session.call;
        let nav = SECTIONS
            .iter()
            .filter(|(key, _, _)| match *key {
                "audit" => call.may(state, "audit.read", &audit_log()),
                "access" => call.may(state, "policy.read", &policy_set()),
                "keys" => call.may(state, "key.read", &key_ring()),
                _ => true,
            })
            .map(|(key, href, label)| NavItem {
                href,
                label,
                current: *key == current,
            })
            .collect();
        Chrome {
            title: title.into(),
            principal: session.principal().to_owned(),
            roles: call.roles.join(", "),
            csrf: session.csrf.clone(),
            nav,
            version: ASSET_VERSION,
        }
    }
}

/// The audit log as a Cedar resource.
pub fn audit_log() -> Resource {
    Resource::new("AuditLog", "main")
}

/// The policy set as a Cedar resource.
pub fn policy_set() -> Resource {
    Resource::new("PolicySet", "active")
}

/// The signing keys as a Cedar resource.
pub fn key_ring() -> Resource {
    Resource::new("KeyRing", "signing")
}

/// A page's response, with the session's new CSRF cookie when it had none.
pub fn html<S: Store>(state: &DashboardState<S>, session: &Session, template: &impl Template) -> Response {
    let mut response = render(StatusCode::OK, template);
    if let Some(nonce) = &session.new_nonce
        && let Some(v) = session::set_cookie(
            session::CSRF_COOKIE,
            nonce,
            60 * 60 * 24,
            session::secure_cookies(state),
        )
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Renders `template` with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// An error page inside the chrome.
#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    message: &'a str,
}

/// An error page without chrome (no session), or an htmx fragment.
#[derive(Template)]
#[template(path = "ui/error_bare.html")]
struct BareError<'a> {
    status: u16,
    heading: &'a str,
    message: &'a str,
    fragment: bool,
    version: &'static str,
}

/// A failed dashboard request, shown as a page with the API's status.
#[derive(Debug)]
pub struct UiError(Box<UiFailure>);

#[derive(Debug)]
struct UiFailure {
    error: ApiError,
    chrome: Option<Chrome>,
    fragment: bool,
}

impl UiError {
    /// `error`, shown inside the page's chrome.
    pub fn within(error: ApiError, chrome: Chrome, headers: &HeaderMap) -> Self {
        UiError(Box::new(UiFailure {
            error,
            chrome: Some(chrome),
            fragment: is_htmx(headers),
        }))
    }
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        UiError(Box::new(UiFailure {
            error,
            chrome: None,
            fragment: false,
        }))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let failure = *self.0;
        let status = failure.error.status;
        let heading = match status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "That request is not valid",
            StatusCode::CONFLICT => "That conflicts with a change made meanwhile",
            StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
            StatusCode::UNAUTHORIZED => "Sign in again",
            _ => "Something went wrong",
        };
        let message = failure.error.description.as_str();
        let mut response = match failure.chrome {
            Some(mut chrome) if !failure.fragment => {
                chrome.title = heading.to_owned();
                render(
                    status,
                    &ErrorPage {
                        chrome,
                        status: status.as_u16(),
                        message,
                    },
                )
            }
            _ => render(
                status,
                &BareError {
                    status: status.as_u16(),
                    heading,
                    message,
                    fragment: failure.fragment,
                    version: ASSET_VERSION,
                },
            ),
        };
        if failure.fragment {
            // htmx swaps error responses only when told where: the alert
            // region of the page.
            response
                .headers_mut()
                .insert("hx-retarget", HeaderValue::from_static("#alerts"));
            response
                .headers_mut()
                .insert("hx-reswap", HeaderValue::from_static("innerHTML"));
        }
        response
    }
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            NoSession::SignIn { return_to: None, .. } => Redirect::to("/ui/login").into_response(),
            NoSession::SignIn {
                return_to: Some(path), ..
            } => {
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", &path)
                    .finish();
                Redirect::to(&format!("/ui/login?{query}")).into_response()
            }
            NoSession::Error(e) => UiError::from(e).into_response(),
        }
    }
}

/// Any other path under `/ui`: 404.
pub async fn not_found() -> UiError {
    UiError::from(ApiError::not_found("there is no such dashboard page"))
}

/// Whether the request was made by htmx (wants a fragment).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// Adds the dashboard's security headers to every response under `/ui`.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: with no referrer at all Chromium
    // sends `Origin: null` on form posts, which the origin check refuses.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The embedded assets: `(name, content type, bytes)`.
const ASSETS: [(&str, &str, &[u8]); 3] = [
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/htmx.min.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
];

/// `GET /ui/assets/{file}`: an embedded asset (URLs carry the version, so
/// browsers may keep them a day).
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
