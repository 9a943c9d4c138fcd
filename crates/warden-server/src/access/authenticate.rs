//! The one way a presented token becomes a [`Caller`]: Warden's own
//! tokens (verified strictly against the published keys, through the
//! per-audience verified-token caches) and, where a gateway route accepts
//! them, tokens of trusted external issuers (`[[federation]]`); both
//! checked against the revocation list, with the stated purpose read.
//!
//! A Warden token naming a `kid` this replica does not know makes it read
//! the keys again once ([`AppState::verify_own`]): a key rotated a moment
//! ago by another replica or the CLI is accepted everywhere at once.
//!
//! A DPoP-bound token (`cnf.jkt`, RFC 9449) is accepted only as
//! `Authorization: DPoP` with a proof for this request's method and URL
//! (the issuer's URL and the request's path, so it holds behind a proxy)
//! signed by the bound key; the `DPoP` scheme only with a bound token.
//! Each refusal is audited (`dpop_refused`). An unbound bearer token costs
//! one claim lookup more than before.

use std::net::IpAddr;

use axum::http::HeaderMap;
use warden_store::Store;

use warden_jose::{DEFAULT_MAX_TOKEN_BYTES, UnverifiedToken};

use super::federation::{ExternalIdentity, FederationError};
use super::{Access, Caller, Scheme, purpose};
use crate::dpop::{self, DpopRefusal, Refused};
use crate::error::AuthError;
use crate::state::AppState;

/// Which tokens a request may present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept<'a> {
    /// Warden's own APIs: Warden tokens for the issuer's audience.
    Warden,
    /// The dashboard: a session token (`warden ui link`, audience the
    /// issuer's `/ui`) or, pasted at sign-in, a Warden token for the
    /// issuer's audience.
    Dashboard,
    /// A gateway route: Warden tokens for its audience (`None`: the
    /// issuer), or a trusted external issuer's tokens when that issuer's
    /// configured audience is the route's.
    Route(Option<&'a str>),
}

/// A token and the request it came with.
#[derive(Debug)]
pub struct Presented<'a> {
    /// The compact JWS.
    pub token: &'a str,
    /// How it was presented: `Bearer` (or a cookie) or `DPoP`.
    pub scheme: Scheme,
    /// The request's method (what a DPoP proof must name).
    pub method: &'a str,
    /// The request's path (a DPoP proof names the issuer's URL and it).
    pub path: &'a str,
    /// The request's headers (`X-Warden-Purpose`).
    pub headers: &'a HeaderMap,
    /// The request's id.
    pub request_id: String,
    /// The client's address.
    pub source_ip: IpAddr,
}

/// Verifies `presented` as `accept` allows and names the caller. Refused:
/// a token that fails verification, is revoked, lacks `sub`, `jti` or
/// `client_id`, comes from an issuer the request may not use, whose
/// stated purpose is malformed or contradicts the token's, or that is
/// DPoP-bound and lacks its valid proof. A token sent with the `DPoP`
/// scheme is refused with a `DPoP` challenge.
pub async fn authenticate<S: Store>(
    app: &AppState<S>,
    access: &Access,
    presented: Presented<'_>,
    accept: Accept<'_>,
    now: u64,
) -> Result<Caller, AuthError> {
    let scheme = presented.scheme;
    match authenticate_as(app, access, presented, accept, now).await {
        Err(e) if scheme == Scheme::Dpop && !matches!(e, AuthError::Dpop(..) | AuthError::Purpose(_)) => {
            Err(AuthError::UnderDpop(Box::new(e), access.dpop.algorithms()))
        }
        other => other,
    }
}

async fn authenticate_as<S: Store>(
    app: &AppState<S>,
    access: &Access,
    presented: Presented<'_>,
    accept: Accept<'_>,
    now: u64,
) -> Result<Caller, AuthError> {
    let Presented {
        token,
        scheme,
        method,
        path,
        headers,
        request_id,
        source_ip,
    } = presented;
    // Where external issuers are trusted, a route's token is looked up in
    // the verified-token caches first (an external issuer's, then Warden's
    // own for the route): a token either knows is not decoded at all.
    // Otherwise it is decoded once, unverified, to pick the verifier by its
    // `iss`, which then checks it without decoding it again. Elsewhere only
    // Warden's own tokens are accepted and nothing is decoded beforehand.
    let mut decoded = None;
    if let Accept::Route(audience) = accept
        && !access.federation.is_empty()
    {
        let external = match access.federation.cached(token, now) {
            Some(known) => Some(known.map(|id| (id, true))),
            None if access
                .audiences
                .knows(&app.keys.get(), &app.options, audience, token, now) =>
            {
                None
            }
            None => {
                decoded = UnverifiedToken::parse(token, app.options.max_token_bytes.max(DEFAULT_MAX_TOKEN_BYTES)).ok();
                match decoded.as_ref() {
                    Some(d)
                        if d.issuer()
                            .is_some_and(|iss| iss != app.options.issuer && access.federation.trusts(iss)) =>
                    {
                        Some(access.federation.verify_decoded(d, now).await)
                    }
                    _ => None,
                }
            }
        };
        if let Some(verified) = external {
            return federated(app, verified, audience, headers, request_id, source_ip, now);
        }
    }
    let ui = app.options.ui_audience();
    let audience = match accept {
        Accept::Warden => None,
        Accept::Dashboard => Some(ui.as_str()),
        Accept::Route(audience) => audience,
    };
    let verified = app
        .verify_own(now, |keys| {
            let (verified, hit) = access
                .audiences
                .verify(keys, &app.options, audience, token, decoded.as_ref(), now);
            if matches!(accept, Accept::Route(_)) {
                app.metrics.token_cache(hit);
            }
            match verified {
                Err(warden_jose::JoseError::AudienceMismatch) if accept == Accept::Dashboard => {
                    access.audiences.verify(keys, &app.options, None, token, None, now).0
                }
                other => other,
            }
        })
        .await
        .map_err(AuthError::Invalid)?;
    let mut caller = Caller::from_warden(&verified, request_id, source_ip, now)?;
    if caller.approved.is_some() && !matches!(accept, Accept::Route(_)) {
        return Err(AuthError::ApprovalOnly);
    }
    if app.revocations.is_revoked(&caller.jti) {
        return Err(AuthError::Revoked);
    }
    let claims = verified.claims();
    if claims.is_bound() || scheme == Scheme::Dpop {
        let proof = Proof {
            token,
            scheme,
            method,
            path,
            headers,
        };
        if let Err(refusal) = check_binding(app, access, claims, &proof, now).await {
            let who = Refused {
                principal: &caller.principal,
                client_id: &caller.client_id,
                method,
                path,
                source_ip,
            };
            dpop::audit_refusal(app, &refusal, who, now).await;
            return Err(AuthError::Dpop(refusal, access.dpop.algorithms()));
        }
    }
    caller.purpose = purpose::stated(headers, Some(verified.claims().raw())).map_err(AuthError::Purpose)?;
    Ok(caller)
}

/// The caller of an external issuer's token, verified (or refused) by
/// `verified`; also says whether the verified-token cache answered.
fn federated<S: Store>(
    app: &AppState<S>,
    verified: Result<(ExternalIdentity, bool), FederationError>,
    audience: Option<&str>,
    headers: &HeaderMap,
    request_id: String,
    source_ip: IpAddr,
    now: u64,
) -> Result<Caller, AuthError> {
    let (id, hit) = verified.map_err(|e| {
        tracing::info!(error = %e, "external token refused");
        AuthError::External("the external token is invalid".into())
    })?;
    app.metrics.token_cache(hit);
    // A federated token reaches only routes that name its audience: a
    // token the IdP issued for something else never crosses over.
    if audience != Some(id.audience.as_str()) {
        return Err(AuthError::External(
            "tokens of this issuer are not accepted on this route".into(),
        ));
    }
    if id.jti.as_deref().is_some_and(|j| app.revocations.is_revoked(j)) {
        return Err(AuthError::Revoked);
    }
    Ok(Caller {
        principal: id.subject,
        roles: id.roles,
        scopes: id.scopes,
        client_id: id.client_id.unwrap_or(id.issuer),
        actor_chain: Vec::new(),
        tenant: None,
        jti: id.jti.unwrap_or_default(),
        exp: id.exp,
        purpose: purpose::stated(headers, None).map_err(AuthError::Purpose)?,
        request_id,
        source_ip,
        now,
        // Approvals are Warden's to give: another issuer's
        // `authorization_details` are not read.
        approved: None,
    })
}

/// What a DPoP check needs of the request.
struct Proof<'a> {
    token: &'a str,
    scheme: Scheme,
    method: &'a str,
    path: &'a str,
    headers: &'a HeaderMap,
}

/// RFC 9449 §7: a bound token with the `DPoP` scheme and a proof by its
/// key for this request; the `DPoP` scheme with a bound token only.
async fn check_binding<S: Store>(
    app: &AppState<S>,
    access: &Access,
    claims: &warden_jose::Claims,
    p: &Proof<'_>,
    now: u64,
) -> Result<(), DpopRefusal> {
    match (p.scheme, claims.cnf_jkt()) {
        (Scheme::Bearer, _) => Err(DpopRefusal::BoundAsBearer),
        (Scheme::Dpop, None) if claims.is_bound() => Err(DpopRefusal::UnsupportedBinding),
        (Scheme::Dpop, None) => Err(DpopRefusal::NotBound),
        (Scheme::Dpop, Some(jkt)) => {
            let proof = dpop::proof_header(p.headers)?.ok_or(DpopRefusal::Missing)?;
            let url = format!("{}{}", app.options.issuer, p.path);
            access
                .dpop
                .check(proof, p.method, &url, Some(p.token), Some(jkt), now)
                .await?;
            Ok(())
        }
    }
}
