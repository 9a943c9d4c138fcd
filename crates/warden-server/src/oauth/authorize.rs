//! The authorization endpoint (RFC 6749 §4.1) for public clients, with
//! PKCE S256 required (RFC 7636, OAuth 2.0 Security BCP §2.1.1), the exact
//! redirect URI (any port on loopback, RFC 8252 §7.3), `state` required,
//! only `response_type=code` (no implicit or hybrid flow) and the issuer in
//! the response (RFC 9207).
//!
//! `GET /oauth/authorize` moves the browser into the dashboard
//! (`/ui/authorize`, where the person is signed in and answers); both
//! check a request with [`check`]. What the person approves becomes a
//! short-lived, single-use code (`AuthorizationStore`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use warden_store::Store;
use warden_store::oauth::{ClientKind, ClientRecord};

use crate::error::ApiError;
use crate::oauth::OAuthState;
use crate::oauth::clients::grant;
use crate::oauth::form::Form;
use crate::oauth::{pkce, redirect_uri};
use crate::state::AppState;

/// How long a code may wait to be redeemed (seconds).
pub const CODE_TTL: u64 = 60;

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The public client asking.
    pub client: ClientRecord,
    /// Where the answer goes (a registered URI).
    pub redirect_uri: String,
    /// The client's `state`, returned as is.
    pub state: String,
    /// The scopes the client may have of those asked (or all it may have).
    pub scopes: Vec<String>,
    /// The audiences asked for (or all the client may ask for).
    pub audiences: Vec<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
}

/// Why a request is refused, and how the refusal reaches its sender.
#[derive(Debug)]
pub enum Refusal {
    /// Shown to the person: the client or its redirect URI cannot be
    /// trusted, so nothing is sent there (RFC 6749 §4.1.2.1).
    Show(ApiError),
    /// Sent back to the client at its redirect URI.
    Redirect {
        /// The registered URI.
        redirect_uri: String,
        /// The client's `state`, if it sent one.
        state: Option<String>,
        /// The RFC 6749 §4.1.2.1 error code.
        error: &'static str,
        /// What was wrong.
        description: String,
    },
}

impl Refusal {
    /// The refusal as a response: a page, or a redirect to the client
    /// carrying `error`, `error_description`, `state` and `iss`.
    pub fn into_response_for(self, issuer: &str) -> Result<Response, ApiError> {
        match self {
            Refusal::Show(e) => Err(e),
            Refusal::Redirect {
                redirect_uri,
                state,
                error,
                description,
            } => {
                let mut params = vec![("error", error.to_owned()), ("error_description", description)];
                if let Some(state) = state {
                    params.push(("state", state));
                }
                params.push(("iss", issuer.to_owned()));
                Ok(redirect_to(&redirect_uri, &params))
            }
        }
    }
}

/// `uri` with `params` added to its query.
pub fn with_params(uri: &str, params: &[(&str, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", query.finish())
}

/// A 303 to `uri` with `params` added to its query.
pub fn redirect_to(uri: &str, params: &[(&str, String)]) -> Response {
    let mut response = Redirect::to(&with_params(uri, params)).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}

/// The audiences a person's token through `client` may carry: what was
/// asked (`resource`, `audience`) if the client may have all of it, else
/// every audience the client may ask for (the issuer when none is set),
/// so that a refresh token can later be narrowed to any of them.
pub fn people_audiences(form: &Form, client: &ClientRecord, issuer: &str) -> Result<Vec<String>, ApiError> {
    let allowed: Vec<String> = if client.audiences.is_empty() {
        vec![issuer.to_owned()]
    } else {
        client.audiences.clone()
    };
    let mut asked: Vec<String> = Vec::new();
    for a in form.all("resource").iter().chain(form.all("audience")) {
        if !asked.contains(a) {
            asked.push(a.clone());
        }
    }
    if asked.is_empty() {
        return Ok(allowed);
    }
    if let Some(bad) = asked.iter().find(|a| !allowed.contains(a)) {
        return Err(ApiError::invalid_target(format!(
            "client `{}` may not obtain tokens for `{bad}`",
            client.client_id
        )));
    }
    Ok(asked)
}

/// The scopes a person's token through `client` may carry: those asked
/// that the client may have (`invalid_scope` when none), or all it may
/// have when none are asked.
pub fn people_scopes(form: &Form, client: &ClientRecord) -> Result<Vec<String>, ApiError> {
    crate::oauth::grants::scopes(form, &client.scopes, &[&client.scopes])
}

/// Checks an authorization request (the query of `/oauth/authorize`).
pub async fn check<S: Store>(app: &AppState<S>, query: &str) -> Result<AuthorizationRequest, Refusal> {
    let form = Form::from_urlencoded(query.as_bytes()).map_err(Refusal::Show)?;
    let show = |m: &str| Refusal::Show(ApiError::invalid_request(m.to_owned()));
    let client_id = form.get("client_id").ok_or_else(|| show("client_id is required"))?;
    let client = match app.store.get_client(client_id).await {
        Ok(Some(c)) if !c.disabled && c.kind == ClientKind::Public => c,
        Ok(_) => return Err(show("the client is unknown, disabled or not a public client")),
        Err(e) => return Err(Refusal::Show(e.into())),
    };
    let redirect = form
        .get("redirect_uri")
        .ok_or_else(|| show("redirect_uri is required"))?;
    if !redirect_uri::matches(&client.redirect_uris, redirect) {
        return Err(show("redirect_uri is not registered for this client"));
    }
    // From here on, the client hears what was wrong.
    let state = form.get("state").map(str::to_owned);
    let refuse = |error: &'static str, description: String| Refusal::Redirect {
        redirect_uri: redirect.to_owned(),
        state: state.clone(),
        error,
        description,
    };
    if form.get("request").is_some() || form.get("request_uri").is_some() {
        return Err(refuse(
            "request_not_supported",
            "request objects are not supported".into(),
        ));
    }
    match form.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is served".into(),
            ));
        }
        None => return Err(refuse("invalid_request", "response_type is required".into())),
    }
    let Some(state) = state.clone() else {
        return Err(refuse("invalid_request", "state is required".into()));
    };
    let Some(challenge) = form.get("code_challenge") else {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: send code_challenge".into(),
        ));
    };
    if form.get("code_challenge_method") != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256 (plain is refused)".into(),
        ));
    }
    if !pkce::valid_challenge(challenge) {
        return Err(refuse(
            "invalid_request",
            "code_challenge is not an S256 challenge".into(),
        ));
    }
    if !client.grants.iter().any(|g| g == grant::AUTHORIZATION_CODE) {
        return Err(refuse(
            "unauthorized_client",
            "the client may not use the authorization_code grant".into(),
        ));
    }
    let scopes = people_scopes(&form, &client).map_err(|e| refuse("invalid_scope", e.description))?;
    let audiences =
        people_audiences(&form, &client, &app.options.issuer).map_err(|e| refuse("invalid_target", e.description))?;
    Ok(AuthorizationRequest {
        redirect_uri: redirect.to_owned(),
        client,
        state,
        scopes,
        audiences,
        code_challenge: challenge.to_owned(),
    })
}

/// `GET /oauth/authorize`: on to the dashboard's `/ui/authorize` with the
/// same request, where the person signs in and answers.
pub async fn authorize<S: Store>(State(state): State<Arc<OAuthState<S>>>, uri: Uri) -> Response {
    let query = uri.query().unwrap_or_default();
    let base = state.app.options.dashboard_base();
    let mut response = Redirect::to(&format!("{}/ui/authorize?{query}", base.trim_end_matches('/'))).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}
