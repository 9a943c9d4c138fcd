//! The grants of `POST /oauth/token`, one module each, and what they share:
//! choosing scopes and audiences, minting the access token, starting a
//! refresh-token family, and the RFC 6749 §5.1 response.

pub mod ciba;
pub mod client_credentials;
pub mod people;
pub mod refresh;
pub mod token_exchange;

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warden_jose::issue::{AccessTokenClaims, Confirmation, encode, new_jti};
use warden_store::Store;
use warden_store::oauth::{ClientRecord, Family, NewRefresh};

use crate::error::ApiError;
use crate::oauth::OAuthState;
use crate::oauth::form::Form;
use crate::oauth::scope;
use crate::state::AppState;

/// RFC 8693 token type of access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 token type of JWTs.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 token type of refresh tokens.
pub const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";

/// Prefix of refresh tokens, so they are recognisable in secret scanners.
const REFRESH_PREFIX: &str = "wrt_";

/// What an access token grants; also what a refresh token remembers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Grant {
    /// `sub`.
    pub subject: String,
    /// `client_id`.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// `aud`.
    pub audience: Vec<String>,
    /// RFC 8693 `act`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
    /// Tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The DPoP key (RFC 7638 thumbprint) its access tokens are bound to
    /// (`cnf.jkt`, RFC 9449); a refresh token keeps it, so its redemption
    /// needs a proof by the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// RFC 9396 authorization details of a single-use approval token
    /// (`docs/approvals.md`): what a person approved, and nothing else.
    /// Never on a refresh token's grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
}

/// What a token request proved with its `DPoP` header (RFC 9449 §5), and
/// where it came from (for the audit record of a refusal).
#[derive(Debug, Clone)]
pub struct Possession {
    /// The thumbprint of the key the request's proof was signed with;
    /// `None` without a proof.
    pub jkt: Option<String>,
    /// The caller's address.
    pub source_ip: std::net::IpAddr,
}

/// A signed access token.
#[derive(Debug)]
pub struct Minted {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// `kid` of the key that signed it.
    pub kid: String,
    /// Its `exp`.
    pub exp: u64,
    /// Whether it is DPoP-bound (`token_type` `DPoP`).
    pub dpop: bool,
}

/// The audiences to issue for: what was asked (`resource` / `audience`,
/// RFC 8707 / RFC 8693) if the client may have all of it, else
/// `invalid_target`; nothing asked gives the client's first audience.
pub fn audiences(form: &Form, client: &ClientRecord, issuer: &str) -> Result<Vec<String>, ApiError> {
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
        return Ok(allowed.into_iter().take(1).collect());
    }
    if let Some(bad) = asked.iter().find(|a| !allowed.contains(a)) {
        return Err(ApiError::invalid_target(format!(
            "client `{}` may not obtain tokens for `{bad}`",
            client.client_id
        )));
    }
    Ok(asked)
}

/// The scopes to grant: the request (or everything allowed when none is
/// asked) narrowed by every limit; `invalid_scope` when a request leaves
/// nothing.
pub fn scopes(form: &Form, default: &[String], limits: &[&[String]]) -> Result<Vec<String>, ApiError> {
    let requested = match form.get("scope") {
        Some(s) => scope::parse(s).map_err(|bad| ApiError::invalid_scope(format!("`{bad}` is not a valid scope")))?,
        None => default.to_vec(),
    };
    let granted = scope::narrow(&requested, limits);
    if granted.is_empty() && form.get("scope").is_some() {
        return Err(ApiError::invalid_scope("none of the requested scopes may be granted"));
    }
    Ok(granted)
}

/// Signs an access token for `grant` expiring at `exp`, with `jti`.
pub fn mint<S: Store>(app: &AppState<S>, grant: &Grant, jti: String, exp: u64, now: u64) -> Result<Minted, ApiError> {
    let keys = app.keys.get();
    let Some(key) = keys.signing.as_ref() else {
        tracing::error!("no active signing key");
        return Err(no_signing_key());
    };
    let claims = AccessTokenClaims {
        iss: app.options.issuer.clone(),
        sub: grant.subject.clone(),
        aud: grant.audience.clone(),
        exp,
        iat: now,
        nbf: now,
        jti: jti.clone(),
        client_id: grant.client_id.clone(),
        scope: scope::join(&grant.scopes),
        roles: grant.roles.clone(),
        tenant: grant.tenant.clone(),
        act: grant.act.clone(),
        cnf: grant.jkt.clone().map(|jkt| Confirmation { jkt }),
        authorization_details: grant.authorization_details.clone(),
    };
    let token = encode(key, "at+jwt", &claims).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        ApiError::internal("the token could not be signed")
    })?;
    Ok(Minted {
        token,
        jti,
        kid: key.kid().to_owned(),
        exp,
        dpop: grant.jkt.is_some(),
    })
}

/// 503 unless a key can sign: checked by a grant before it spends what
/// it redeems (a code, a refresh token, an approval), so that the client
/// can try again once a key is active.
pub fn signing_ready<S: Store>(app: &AppState<S>) -> Result<(), ApiError> {
    if app.keys.get().signing.is_some() {
        Ok(())
    } else {
        Err(no_signing_key())
    }
}

fn no_signing_key() -> ApiError {
    ApiError::unavailable("no signing key is active; run `warden keys rotate`")
}

/// A fresh `jti`.
pub fn jti() -> Result<String, ApiError> {
    new_jti().map_err(|_| ApiError::internal("random generator failed"))
}

/// A fresh opaque secret: `prefix` and 256 random bits, base64url
/// (refresh tokens, authorization codes, device codes).
pub fn random_secret(prefix: &str) -> Result<String, ApiError> {
    crate::secret::new(prefix)
}

/// A fresh opaque refresh token (256 random bits) and its SHA-256.
pub fn new_refresh_token() -> Result<(String, [u8; 32]), ApiError> {
    let token = random_secret(REFRESH_PREFIX)?;
    let hash = hash_refresh(&token);
    Ok((token, hash))
}

/// SHA-256 of a refresh token, as stored.
pub fn hash_refresh(token: &str) -> [u8; 32] {
    crate::secret::stored_hash(token)
}

/// Starts a refresh-token family for `grant`, whose first access token is
/// `access`; the family ends at `family_expires_at`. Returns the token.
pub async fn start_family<S: Store>(
    state: &OAuthState<S>,
    grant: &Grant,
    access: &Minted,
    family_expires_at: u64,
    now: u64,
) -> Result<String, ApiError> {
    start_family_with_id(state, grant, access, family_expires_at, now)
        .await
        .map(|(token, _)| token)
}

/// [`start_family`], also returning the family's id.
pub async fn start_family_with_id<S: Store>(
    state: &OAuthState<S>,
    grant: &Grant,
    access: &Minted,
    family_expires_at: u64,
    now: u64,
) -> Result<(String, String), ApiError> {
    let (token, hash) = new_refresh_token()?;
    let family = Family {
        id: jti()?,
        client_id: grant.client_id.clone(),
        subject: grant.subject.clone(),
        created_at: now,
        expires_at: family_expires_at,
        revoked_at: None,
    };
    let first = NewRefresh {
        token_hash: hash,
        grant_data: grant_data(grant)?,
        issued_at: now,
        expires_at: (now + state.app.options.oauth.refresh_idle_ttl).min(family_expires_at),
        access_jti: access.jti.clone(),
        access_exp: access.exp,
    };
    state.app.store.start_family(&family, &first).await?;
    Ok((token, family.id))
}

/// The stored form of a grant.
pub fn grant_data(grant: &Grant) -> Result<String, ApiError> {
    serde_json::to_string(grant).map_err(|_| ApiError::internal("grant serialisation failed"))
}

/// The RFC 6749 §5.1 success response (`no-store`).
pub fn token_response(
    minted: &Minted,
    scopes: &[String],
    refresh: Option<String>,
    issued_token_type: Option<&str>,
    now: u64,
) -> Response {
    let mut body = token_body(minted, scopes, now);
    if let Some(obj) = body.as_object_mut() {
        if let Some(r) = refresh {
            obj.insert("refresh_token".into(), Value::String(r));
        }
        if let Some(t) = issued_token_type {
            obj.insert("issued_token_type".into(), Value::String(t.to_owned()));
        }
    }
    no_store(body)
}

/// The members every token response has (RFC 6749 §5.1).
pub fn token_body(minted: &Minted, scopes: &[String], now: u64) -> Value {
    json!({
        "access_token": minted.token,
        "token_type": if minted.dpop { "DPoP" } else { "Bearer" },
        "expires_in": minted.exp.saturating_sub(now),
        "scope": scope::join(scopes),
    })
}

/// `body` as a token response: JSON, never cached.
pub fn no_store(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Whether the client may use `grant_type`.
pub fn check_grant(client: &ClientRecord, grant_type: &str) -> Result<(), ApiError> {
    if client.grants.iter().any(|g| g == grant_type) {
        Ok(())
    } else {
        Err(ApiError::unauthorized_client(format!(
            "client `{}` may not use the {grant_type} grant",
            client.client_id
        )))
    }
}

/// Whether the client gets refresh tokens (it holds the refresh_token grant).
pub fn gets_refresh_tokens(client: &ClientRecord) -> bool {
    client
        .grants
        .iter()
        .any(|g| g == crate::oauth::clients::grant::REFRESH_TOKEN)
}
