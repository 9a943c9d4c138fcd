//! Client authentication at the token, revocation and introspection
//! endpoints: `client_secret_basic`, `client_secret_post` (RFC 6749 §2.3.1)
//! and `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9).
//!
//! Exactly one method per request. Every failure is charged to the client
//! id and the source address (too many in a minute gives 429), recorded in
//! the audit log without the presented credential, and answered
//! `invalid_client` with nothing said about which part was wrong.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use warden_audit::{AuditEvent, EventKind};
use warden_jose::{AlgorithmSet, JwkSet, KeySet, TokenVerifier, TrustedIssuer, Validation};
use warden_store::Store;
use warden_store::oauth::{ClientAuth, ClientRecord};

use crate::error::ApiError;
use crate::oauth::OAuthState;
use crate::oauth::form::Form;
use crate::refusals::{Limit, Refused};

/// RFC 7523 client assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Method names as RFC 8414 lists them.
pub mod method {
    /// HTTP Basic.
    pub const BASIC: &str = "client_secret_basic";
    /// Form parameters.
    pub const POST: &str = "client_secret_post";
    /// RFC 7523 assertion.
    pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";
    /// A public client: its id only.
    pub const NONE: &str = "none";
}

/// An authenticated client.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Its record.
    pub client: ClientRecord,
    /// How it authenticated.
    pub method: &'static str,
}

impl Authenticated {
    /// The subject of its own tokens (`svc:<id>` or `agent:<id>`).
    pub fn subject(&self) -> String {
        format!("{}:{}", self.client.kind.subject_prefix(), self.client.client_id)
    }
}

enum Presented<'a> {
    Secret {
        client_id: String,
        secret: String,
        method: &'static str,
    },
    Assertion {
        client_id: String,
        assertion: &'a str,
    },
    /// Only a `client_id`: a public client (RFC 6749 §2.1), which must be
    /// registered as one.
    Public {
        client_id: String,
    },
    /// Credentials that cannot be read, or none at all: a failure charged
    /// to the source address only.
    Unreadable {
        method: &'static str,
        reason: &'static str,
    },
}

fn form_decode(part: &str) -> String {
    form_urlencoded::parse(format!("v={part}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn presented<'a>(headers: &HeaderMap, form: &'a Form) -> Result<Presented<'a>, ApiError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials);
    let post = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let count = usize::from(basic.is_some()) + usize::from(post.is_some()) + usize::from(assertion.is_some());
    if count > 1 {
        return Err(ApiError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    if let Some(encoded) = basic {
        let unreadable = Presented::Unreadable {
            method: method::BASIC,
            reason: "malformed Basic credentials",
        };
        let Some(decoded) = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            return Ok(unreadable);
        };
        let Some((id, secret)) = decoded.split_once(':') else {
            return Ok(unreadable);
        };
        let client_id = form_decode(id);
        if let Some(form_id) = form.get("client_id")
            && form_id != client_id
        {
            return Err(ApiError::invalid_request(
                "client_id differs from the authenticated client",
            ));
        }
        return Ok(Presented::Secret {
            client_id,
            secret: form_decode(secret),
            method: method::BASIC,
        });
    }
    if let Some(secret) = post {
        return Ok(Presented::Secret {
            client_id: form.require("client_id")?.to_owned(),
            secret: secret.to_owned(),
            method: method::POST,
        });
    }
    if let Some(assertion) = assertion {
        if form.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(ApiError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let Some(claimed) = crate::access::federation::peek_issuer(assertion) else {
            return Ok(Presented::Unreadable {
                method: method::PRIVATE_KEY_JWT,
                reason: "assertion malformed",
            });
        };
        if let Some(form_id) = form.get("client_id")
            && form_id != claimed
        {
            return Err(ApiError::invalid_request(
                "client_id differs from the assertion's issuer",
            ));
        }
        return Ok(Presented::Assertion {
            client_id: claimed,
            assertion,
        });
    }
    if let Some(client_id) = form.get("client_id") {
        return Ok(Presented::Public {
            client_id: client_id.to_owned(),
        });
    }
    Ok(Presented::Unreadable {
        method: method::NONE,
        reason: "no client authentication",
    })
}

/// Authenticates the calling client. `endpoint` is the URL the request was
/// sent to (an accepted assertion audience besides the issuer and the token
/// endpoint).
pub async fn authenticate<S: Store>(
    state: &OAuthState<S>,
    headers: &HeaderMap,
    form: &Form,
    source_ip: IpAddr,
    endpoint: &str,
    now: u64,
) -> Result<Authenticated, ApiError> {
    let presented = presented(headers, form)?;
    let (client_id, method) = match &presented {
        Presented::Secret { client_id, method, .. } => (client_id.clone(), *method),
        Presented::Assertion { client_id, .. } => (client_id.clone(), method::PRIVATE_KEY_JWT),
        Presented::Public { client_id } => (client_id.clone(), method::NONE),
        Presented::Unreadable { method, .. } => (String::new(), *method),
    };
    // The credential is checked first: a valid one is never refused, so no
    // one can lock a client out by failing in its name. Failures are
    // charged to the (well-formed) client id and to the source address.
    let outcome = match &presented {
        Presented::Unreadable { reason, .. } => Err(*reason),
        _ if !crate::oauth::clients::valid_client_id(&client_id) => Err("unknown client"),
        _ => {
            let cached = state.clients.get(&state.app.store, &client_id).await?;
            match check(state, cached, &presented, endpoint, now).await {
                // The cached record may predate a secret rotated elsewhere
                // (another replica or the CLI): the new secret works at
                // once, checked against the store before it fails.
                Err("wrong secret") => {
                    let fresh = state.clients.read(&state.app.store, &client_id).await?;
                    check(state, fresh, &presented, endpoint, now).await
                }
                other => other,
            }
        }
    };
    let reason = match outcome {
        Ok(client) => return Ok(Authenticated { client, method }),
        Err(reason) => reason,
    };
    let client_key = if crate::oauth::clients::valid_client_id(&client_id) {
        format!("client:{client_id}")
    } else {
        "client:-".to_owned()
    };
    let ip_key = format!("ip:{source_ip}");
    let keys = [client_key.as_str(), ip_key.as_str()];
    if let Some(wait) = state.failures.fail(&keys, now).await {
        tracing::warn!(client_id, %source_ip, reason, "client authentication failed again within the failure limit");
        let who = Refused {
            limit: Limit::AuthFailures,
            principal: client_id.chars().take(64).collect(),
            route: String::new(),
            source_ip: Some(source_ip),
        };
        state.app.refused(who, now).await;
        return Err(ApiError::too_many_failures(wait));
    }
    tracing::info!(client_id, method, reason, %source_ip, "client authentication failed");
    let event = EventKind::ClientAuthFailed {
        client_id: client_id.chars().take(64).collect(),
        method: method.to_owned(),
        reason: reason.to_owned(),
        source_ip,
    };
    state.app.audit.record(AuditEvent::new(now, event)).await?;
    // Say what was wrong with an assertion's form (it holds no secret);
    // never whether a client exists or a secret was close.
    let description = if reason.starts_with("assertion") && reason != "assertion invalid" {
        format!("client authentication failed: {reason}")
    } else if reason == "no client authentication" {
        "client authentication is required".to_owned()
    } else {
        "client authentication failed".to_owned()
    };
    Err(ApiError::invalid_client(description))
}

/// Checks `presented` against the client's record.
async fn check<S: Store>(
    state: &OAuthState<S>,
    record: Option<ClientRecord>,
    presented: &Presented<'_>,
    endpoint: &str,
    now: u64,
) -> Result<ClientRecord, &'static str> {
    match (record, presented) {
        (None, _) => Err("unknown client"),
        (Some(c), _) if c.disabled => Err("client disabled"),
        (Some(c), Presented::Secret { secret, .. }) => match &c.auth {
            ClientAuth::Secret { hash } if state.clients.hasher.matches(secret, hash) => Ok(c),
            ClientAuth::Secret { .. } => Err("wrong secret"),
            ClientAuth::PrivateKeyJwt { .. } => Err("client must use private_key_jwt"),
            ClientAuth::None => Err("a public client has no secret"),
        },
        (Some(c), Presented::Public { .. }) => match c.auth {
            ClientAuth::None => Ok(c),
            _ => Err("no client authentication"),
        },
        (Some(c), Presented::Assertion { assertion, .. }) => {
            check_assertion(state, &c, assertion, endpoint, now).await.map(|()| c)
        }
        (Some(_), Presented::Unreadable { reason, .. }) => Err(*reason),
    }
}

async fn check_assertion<S: Store>(
    state: &OAuthState<S>,
    client: &ClientRecord,
    assertion: &str,
    endpoint: &str,
    now: u64,
) -> Result<(), &'static str> {
    let ClientAuth::PrivateKeyJwt { jwks } = &client.auth else {
        return Err("client must use a client secret");
    };
    let keys = JwkSet::parse(jwks.as_bytes())
        .ok()
        .and_then(|set| KeySet::new(set.into_keys()).ok())
        .ok_or("registered JWKS unusable")?;
    let validation = Validation::access_token(String::new())
        .with_any_audience()
        .with_typ(None)
        .with_required(true, true, false)
        .with_leeway(state.app.options.leeway)
        .map_err(|_| "leeway")?;
    let verifier = TokenVerifier::new(
        [TrustedIssuer::new(
            client.client_id.clone(),
            keys,
            AlgorithmSet::asymmetric(),
        )],
        validation,
    );
    let verified = verifier.verify(assertion, now).map_err(|_| "assertion invalid")?;
    let claims = verified.claims();
    if claims.sub() != Some(client.client_id.as_str()) {
        return Err("assertion sub is not the client");
    }
    let issuer = &state.app.options.issuer;
    let token_endpoint = format!("{issuer}/oauth/token");
    if !claims
        .aud()
        .iter()
        .any(|a| a == issuer || *a == token_endpoint || a == endpoint)
    {
        return Err("assertion audience is not this server");
    }
    if claims.exp() > now + state.app.options.oauth.assertion_max_ttl + state.app.options.leeway {
        return Err("assertion lifetime too long");
    }
    let jti = claims.jti().ok_or("assertion without jti")?;
    match state
        .app
        .store
        .consume_assertion(&client.client_id, jti, claims.exp())
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err("assertion replayed"),
        Err(e) => {
            tracing::error!(error = %e, "cannot record client assertion id");
            Err("assertion could not be recorded")
        }
    }
}
