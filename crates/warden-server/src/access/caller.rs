//! Who is calling: the [`Caller`] a verified token names, in the request
//! that presented it, and the axum extractors that produce one for
//! Warden's own APIs — [`Caller`] for any principal, [`Admin`] and
//! [`Auditor`] for principals acting themselves with Warden's own role or
//! scope.
//!
//! Extractors work in any room whose state gives the core and the access
//! layer ([`Context`](super::Context)); they authenticate with
//! [`authenticate`](super::authenticate()) for the issuer's audience, so
//! every API re-reads the keys once when a token names a key rotated a
//! moment ago elsewhere.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde_json::Value;
use warden_jose::VerifiedToken;

use super::Context;
use super::authenticate::{Accept, Presented, authenticate};
use super::delegation;
use crate::error::{ApiError, AuthError};
use crate::http::request_id::{self, RequestId};
use crate::options::{roles, scopes};
use crate::state::now;

/// Who is calling, from a verified token (Warden's own, or a trusted
/// external issuer's mapped to Warden subjects and roles), and the facts
/// of the request it came with.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `user:…`, `svc:…`, `agent:…`.
    pub principal: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The OAuth client (for external tokens: their `client_id`/`azp`,
    /// else the issuer).
    pub client_id: String,
    /// The `act` chain, outermost first; empty when acting for itself.
    pub actor_chain: Vec<String>,
    /// Tenant, if any.
    pub tenant: Option<String>,
    /// The token's `jti` (empty when an external token has none).
    pub jti: String,
    /// The token's expiry, Unix seconds.
    pub exp: u64,
    /// The purpose stated by the token's `purpose` claim or the request's
    /// `X-Warden-Purpose` header.
    pub purpose: Option<String>,
    /// This request's id (also in `X-Warden-Request-Id`).
    pub request_id: String,
    /// The client's address (behind trusted proxies, the one they name).
    pub source_ip: IpAddr,
    /// When the request was authenticated, Unix seconds.
    pub now: u64,
    /// The `authorization_details` of a single-use approval token (RFC
    /// 9396; only Warden's own tokens carry one): what a person approved,
    /// the only request the token is good for (`docs/approvals.md`).
    pub approved: Option<Value>,
}

impl Caller {
    /// The identity a verified Warden token states; `purpose` and the
    /// request's facts are the caller's to fill.
    pub(crate) fn from_warden(
        token: &VerifiedToken,
        request_id: String,
        source_ip: IpAddr,
        now: u64,
    ) -> Result<Self, AuthError> {
        let claims = token.claims();
        let act = claims.raw().get("act");
        let actor_chain = delegation::actors(act);
        // A delegated token names its actors; one that does not is refused
        // rather than read as the principal acting itself.
        if act.is_some() && actor_chain.is_empty() {
            return Err(AuthError::MissingClaim("act.sub"));
        }
        Ok(Caller {
            principal: claims.sub().ok_or(AuthError::MissingClaim("sub"))?.to_owned(),
            roles: claims.roles().to_vec(),
            scopes: claims.scopes().map(str::to_owned).collect(),
            client_id: claims
                .client_id()
                .ok_or(AuthError::MissingClaim("client_id"))?
                .to_owned(),
            actor_chain,
            tenant: claims.raw().get("tenant").and_then(Value::as_str).map(str::to_owned),
            jti: claims.jti().ok_or(AuthError::MissingClaim("jti"))?.to_owned(),
            exp: claims.exp(),
            purpose: None,
            request_id,
            source_ip,
            now,
            approved: claims.raw().get("authorization_details").cloned(),
        })
    }

    /// Whether an agent acts for the principal (the token has `act`).
    pub fn is_delegated(&self) -> bool {
        !self.actor_chain.is_empty()
    }

    /// Whether the caller has `role` among its roles or `scope` among its scopes.
    pub fn has(&self, role: &str, scope: &str) -> bool {
        self.roles.iter().any(|r| r == role) || self.scopes.iter().any(|s| s == scope)
    }

    /// Requires the principal itself (not an agent acting for it) with
    /// `role` or `scope`: Warden's own APIs (administration, audit,
    /// introspection) are never for an agent acting for someone.
    pub fn require(&self, role: &str, scope: &str) -> Result<(), ApiError> {
        if self.is_delegated() {
            return Err(ApiError::insufficient_scope(&format!(
                "a token of the principal itself (delegated tokens may not use this API; `{role}` or `{scope}`)"
            )));
        }
        if self.has(role, scope) {
            Ok(())
        } else {
            Err(ApiError::insufficient_scope(&format!(
                "the `{role}` role or the `{scope}` scope"
            )))
        }
    }

    /// The caller presenting `token` on one of Warden's own APIs (its
    /// bearer token: audience the issuer) or on the dashboard (its session
    /// token: [`Accept::Dashboard`]). The request id is the one
    /// `request_id::tag` gave the request (a fresh one otherwise).
    pub async fn of_request<C: Context>(
        ctx: &C,
        token: &str,
        parts: &Parts,
        accept: Accept<'_>,
    ) -> Result<Caller, ApiError> {
        let app = ctx.app();
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map_or_else(request_id::new, |r| r.0.clone());
        let source_ip = crate::http::client_ip::of_request(parts, &app.options.trusted_proxies);
        // The scheme the token came with: `DPoP` when it is the request's
        // `Authorization: DPoP` token, else a bearer token (a header or a
        // session cookie).
        let scheme = match access_token(&parts.headers) {
            Some((Scheme::Dpop, t)) if t == token => Scheme::Dpop,
            _ => Scheme::Bearer,
        };
        let presented = Presented {
            token,
            scheme,
            method: parts.method.as_str(),
            path: parts.uri.path(),
            headers: &parts.headers,
            request_id,
            source_ip,
        };
        Ok(authenticate(app, ctx.access(), presented, accept, now()).await?)
    }

    /// A caller for unit tests: `principal` with nothing else.
    #[cfg(test)]
    pub(crate) fn test(principal: &str) -> Self {
        Caller {
            principal: principal.to_owned(),
            roles: Vec::new(),
            scopes: Vec::new(),
            client_id: "c".into(),
            actor_chain: Vec::new(),
            tenant: None,
            jti: "j".into(),
            exp: 0,
            purpose: None,
            request_id: "r".into(),
            source_ip: IpAddr::from([127, 0, 0, 1]),
            now: 0,
            approved: None,
        }
    }
}

/// The bearer token of `headers`, if any (`Bearer` scheme, case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    match access_token(headers)? {
        (Scheme::Bearer, token) => Some(token),
        (Scheme::Dpop, _) => None,
    }
}

/// How an access token was presented (RFC 6750, RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer` (or a session cookie): no proof of possession.
    Bearer,
    /// `Authorization: DPoP`, with a `DPoP` proof header.
    Dpop,
}

/// The access token of `headers` and its scheme, if any (`Bearer` or
/// `DPoP`, case-insensitive).
pub fn access_token(headers: &HeaderMap) -> Option<(Scheme, &str)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((Scheme::Bearer, token.trim()))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some((Scheme::Dpop, token.trim()))
    } else {
        None
    }
}

impl<C: Context> FromRequestParts<Arc<C>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<C>) -> Result<Self, ApiError> {
        let (_, token) = access_token(&parts.headers).ok_or(AuthError::Missing)?;
        Caller::of_request(ctx.as_ref(), token, parts, Accept::Warden).await
    }
}

/// A caller holding the `admin` role or the `warden.admin` scope, acting
/// itself: the client admin API.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl<C: Context> FromRequestParts<Arc<C>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<C>) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, ctx).await?;
        caller.require(roles::ADMIN, scopes::ADMIN)?;
        Ok(Admin(caller))
    }
}

/// A caller holding the `auditor` role or the `audit.read` scope, acting
/// itself: the audit API.
#[derive(Debug, Clone)]
pub struct Auditor(pub Caller);

impl<C: Context> FromRequestParts<Arc<C>> for Auditor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<C>) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, ctx).await?;
        caller.require(roles::AUDITOR, scopes::AUDIT_READ)?;
        Ok(Auditor(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            axum::http::HeaderValue::from_static("bEaReR  abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        assert_eq!(access_token(&h), Some((Scheme::Bearer, "abc")));
        h.insert(header::AUTHORIZATION, axum::http::HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        assert_eq!(access_token(&h), None);
        h.insert(header::AUTHORIZATION, axum::http::HeaderValue::from_static("dpop xyz"));
        assert_eq!(bearer(&h), None, "a DPoP token is no bearer token");
        assert_eq!(access_token(&h), Some((Scheme::Dpop, "xyz")));
    }

    #[test]
    fn warden_apis_want_the_principal_itself() {
        let admin = Caller {
            roles: vec!["admin".into()],
            ..Caller::test("user:ada")
        };
        assert!(admin.require(roles::ADMIN, scopes::ADMIN).is_ok());
        assert!(admin.require(roles::AUDITOR, scopes::AUDIT_READ).is_err());
        let delegated = Caller {
            actor_chain: vec!["agent:bot".into()],
            ..admin
        };
        let e = delegated.require(roles::ADMIN, scopes::ADMIN).unwrap_err();
        assert_eq!(e.code, "insufficient_scope");
    }
}
