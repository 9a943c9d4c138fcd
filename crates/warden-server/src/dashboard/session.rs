//! Dashboard sessions and CSRF protection.
//!
//! # Sessions
//! A person signs in with a Warden access token (pasted, or carried in the
//! fragment of a login link made by `warden ui link`): a token for the
//! issuer's audience whose subject is `user:NAME` and that acts for nobody
//! (no `act`). The session is that token, kept in an `HttpOnly`,
//! `SameSite=Strict` cookie scoped to `/ui` that expires with it; every
//! request verifies it again exactly as the API verifies a bearer token
//! (signature, expiry, revocation), so a revoked token ends its sessions at
//! once. Each sign-in is also recorded in the store (`sessions.rs`), so a
//! person can list their sessions and end one from any replica; the token
//! and its revocation stay what decides whether a session is open.
//!
//! # CSRF
//! Every state change is a `POST` that carries a token derived from a
//! random per-browser nonce (cookie `warden_csrf`) and the session's `jti`
//! with an HMAC key derived from the master key (the signed double-submit
//! pattern): another site can neither read the nonce nor compute the tag.
//! On top, a `POST` whose `Origin` is not this server's, or that the
//! browser labels cross-site, is refused before anything else is read.

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use warden_store::Store;

use super::DashboardState;
use crate::access::{Accept, Caller};
use crate::error::ApiError;

/// The session cookie (the access token).
pub const SESSION_COOKIE: &str = "warden_session";
/// The CSRF nonce cookie.
pub const CSRF_COOKIE: &str = "warden_csrf";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The key of CSRF tags, derived from the master key (replicas share it).
pub struct CsrfKey(hmac::Key);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    /// The key for `master`.
    pub fn from_master(master: &warden_keys::MasterKey) -> Self {
        let key = master.derive("dashboard csrf");
        CsrfKey(hmac::Key::new(hmac::HMAC_SHA256, key.as_slice()))
    }

    /// The CSRF token of a browser's `nonce` and session `jti` (empty
    /// before sign-in).
    pub fn token(&self, nonce: &str, jti: &str) -> String {
        let tag = hmac::sign(&self.0, &message(nonce, jti));
        warden_jose::base64url::encode(tag.as_ref())
    }

    /// Whether `presented` is the token of `nonce` and `jti` (constant time).
    pub fn check(&self, nonce: &str, jti: &str, presented: &str) -> bool {
        if nonce.len() < 16 {
            return false;
        }
        warden_jose::base64url::decode(presented)
            .is_some_and(|tag| hmac::verify(&self.0, &message(nonce, jti), &tag).is_ok())
    }
}

fn message(nonce: &str, jti: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(nonce.len() + jti.len() + 16);
    m.extend_from_slice(b"warden-ui-csrf\0");
    m.extend_from_slice(nonce.as_bytes());
    m.push(0);
    m.extend_from_slice(jti.as_bytes());
    m
}

/// A new random nonce (32 bytes, base64url).
pub fn new_nonce() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ApiError::internal("no randomness available"))?;
    Ok(warden_jose::base64url::encode(&bytes))
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for the dashboard's path. `secure` when the issuer
/// is `https`; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

/// Whether cookies must be `Secure` (the dashboard's public URL, or the
/// issuer, is served over TLS).
pub fn secure_cookies<S: Store>(state: &DashboardState<S>) -> bool {
    state.app.options.dashboard_secure()
}

/// Refuses a state-changing request that did not come from this origin:
/// `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` that
/// is neither `public`'s (the public URL, behind a proxy that rewrites
/// `Host`: [`ServerOptions::dashboard_origin`](crate::ServerOptions::dashboard_origin))
/// nor `http(s)://` + the request's `Host`. An opaque `Origin: null`
/// passes only when the browser also says `Sec-Fetch-Site: same-origin`
/// (a privacy setting can make a same-origin form send `null`).
pub fn same_origin(headers: &HeaderMap, public: Option<&str>) -> Result<(), ApiError> {
    let denied = || ApiError::access_denied("cross-site requests cannot change anything");
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = site
        && !matches!(site, "same-origin" | "none")
    {
        return Err(denied());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| denied())?;
        if origin == "null" && site == Some("same-origin") {
            return Ok(());
        }
        if public.is_some_and(|url| origin.eq_ignore_ascii_case(origin_of(url))) {
            return Ok(());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(denied)?;
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .ok_or_else(denied)?;
        if !origin_host.eq_ignore_ascii_case(host) {
            return Err(denied());
        }
    }
    Ok(())
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> &str {
    let Some(i) = url.find("://") else { return url };
    match url.get(i + 3..).and_then(|rest| rest.find('/')) {
        Some(j) => url.get(..i + 3 + j).unwrap_or(url),
        None => url,
    }
}

/// A signed-in person's request: the verified call (as the API would
/// build it from a bearer token), the CSRF token for its forms, and the
/// nonce cookie to set when the browser had none.
#[derive(Debug, Clone)]
pub struct Session {
    /// The call, for authorization and audit.
    pub call: Caller,
    /// The token forms must carry.
    pub csrf: String,
    /// A fresh nonce to set as [`CSRF_COOKIE`] (the browser had none).
    pub new_nonce: Option<String>,
    /// The nonce the CSRF token is bound to.
    pub nonce: String,
}

/// Why a request has no session.
#[derive(Debug)]
pub enum NoSession {
    /// No cookie, or a token that no longer verifies: sign in, then come
    /// back to `return_to` (the page asked for, when it was a `GET`).
    SignIn {
        /// Why.
        reason: String,
        /// Where to come back to.
        return_to: Option<String>,
    },
    /// Something else failed.
    Error(ApiError),
}

impl<S: Store> FromRequestParts<Arc<DashboardState<S>>> for Session {
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<DashboardState<S>>) -> Result<Self, NoSession> {
        let return_to = (parts.method == axum::http::Method::GET)
            .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_owned()))
            .flatten()
            .filter(|p| crate::login::safe_return(p));
        let sign_in = |reason: String| NoSession::SignIn {
            reason,
            return_to: return_to.clone(),
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(sign_in("Sign in to continue.".to_owned()));
        };
        let token = token.to_owned();
        let call = match Caller::of_request(state.as_ref(), &token, parts, Accept::Dashboard).await {
            Ok(call) => call,
            Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => {
                return Err(sign_in(format!(
                    "Your session ended ({}). Sign in again.",
                    e.description
                )));
            }
            Err(e) => return Err(NoSession::Error(e)),
        };
        if let Err(reason) = person(&call) {
            return Err(sign_in(reason));
        }
        let (nonce, new_nonce) = match cookie(&parts.headers, CSRF_COOKIE) {
            Some(n) if n.len() >= 16 => (n.to_owned(), None),
            _ => {
                let n = new_nonce().map_err(NoSession::Error)?;
                (n.clone(), Some(n))
            }
        };
        let csrf = state.ui.csrf.token(&nonce, &call.jti);
        Ok(Session {
            call,
            csrf,
            new_nonce,
            nonce,
        })
    }
}

/// Whether a call may hold a dashboard session: a person (`user:`)
/// acting for themselves, with a `jti` to bind CSRF tokens to.
pub fn person(call: &Caller) -> Result<(), String> {
    let c = call;
    if !c.principal.starts_with("user:") {
        return Err("The dashboard is for people: sign in with a token whose subject is user:NAME.".to_owned());
    }
    if !c.actor_chain.is_empty() {
        return Err("A delegated token (with an act claim) cannot open a dashboard session.".to_owned());
    }
    if c.jti.is_empty() {
        return Err("The token has no jti.".to_owned());
    }
    Ok(())
}

impl Session {
    /// Checks a form's CSRF token and the request's origin.
    pub fn check_csrf<S: Store>(
        &self,
        state: &DashboardState<S>,
        headers: &HeaderMap,
        presented: &str,
    ) -> Result<(), ApiError> {
        same_origin(headers, state.app.options.dashboard_origin())?;
        if self.new_nonce.is_some() || !state.ui.csrf.check(&self.nonce, &self.call.jti, presented) {
            return Err(ApiError::access_denied(
                "the form's CSRF token is missing or invalid; reload the page and try again",
            ));
        }
        Ok(())
    }

    /// The fields of a form this session posted, once its origin and CSRF
    /// token are checked: what every state change on the dashboard reads.
    pub async fn read_form<S: Store>(
        &self,
        state: &DashboardState<S>,
        request: axum::extract::Request,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let (parts, body) = request.into_parts();
        let fields = super::form::read_form(body).await?;
        self.check_csrf(
            state,
            &parts.headers,
            super::form::field(&fields, CSRF_FIELD).unwrap_or_default(),
        )?;
        Ok(fields)
    }

    /// The signed-in subject.
    pub fn principal(&self) -> &str {
        &self.call.principal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CsrfKey {
        CsrfKey::from_master(&warden_keys::MasterKey::from_bytes([9; 32]))
    }

    #[test]
    fn csrf_tokens_bind_nonce_and_session() {
        let k = key();
        let nonce = "0123456789abcdef0123";
        let t = k.token(nonce, "jti-1");
        assert!(k.check(nonce, "jti-1", &t));
        assert!(!k.check(nonce, "jti-2", &t), "another session");
        assert!(!k.check("fedcba9876543210fedc", "jti-1", &t), "another browser");
        assert!(!k.check(nonce, "jti-1", ""), "empty");
        assert!(!k.check(nonce, "jti-1", "not base64!"), "garbage");
        assert!(!k.check("short", "jti-1", &k.token("short", "jti-1")), "short nonce");
        let other = CsrfKey::from_master(&warden_keys::MasterKey::from_bytes([8; 32]));
        assert!(!other.check(nonce, "jti-1", &t), "another deployment");
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; warden_csrf=xyz; warden_csrf2=no"),
        );
        assert_eq!(cookie(&h, "warden_csrf"), Some("xyz"));
        assert_eq!(cookie(&h, "warden"), None);
        assert_eq!(cookie(&h, "a"), Some("1"));
    }

    #[test]
    fn cross_origin_posts_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(
            same_origin(&h, Some("https://warden.example")).is_ok(),
            "no Origin: a same-origin form in an old browser"
        );
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h, Some("https://warden.example")).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(same_origin(&h, Some("https://warden.example")).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(
            same_origin(&h, Some("https://warden.example")).is_err(),
            "an opaque origin, unvouched for"
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(
            same_origin(&h, Some("https://warden.example")).is_ok(),
            "an opaque origin the browser calls same-origin"
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(same_origin(&h, Some("https://warden.example")).is_err());
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(same_origin(&h, Some("https://warden.example")).is_err());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h, Some("https://warden.example")).is_ok());
        // Behind a proxy that rewrites Host: the issuer's origin.
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("10.0.0.5:8080"));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://warden.example"));
        assert!(same_origin(&h, Some("https://warden.example")).is_ok());
        assert!(same_origin(&h, Some("https://warden.example/base/")).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("https://warden.example.evil"));
        assert!(same_origin(&h, Some("https://warden.example")).is_err());
        // On a listener of its own without a public URL: only the
        // request's own origin, never the issuer's (the gateway's).
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8081"));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h, None).is_err(), "the main listener's origin");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8081"));
        assert!(same_origin(&h, None).is_ok());
    }
}
