//! Token encoding: the header Warden writes and a signature over it.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::base64url;
use crate::error::JoseError;
use crate::header::Header;
use crate::signing_key::SigningKey;

/// The claims of a Warden access token (RFC 9068 profile,
/// `docs/tokens-and-keys.md`). Times are seconds since the Unix epoch.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccessTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject, namespaced (`user:alice`, `svc:trainer`, `agent:bot`).
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Unique token id.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// Roles.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// RFC 8693 delegation chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
    /// RFC 7800 / RFC 9449 confirmation: the DPoP key the token is bound
    /// to. A bound token is accepted only with a proof signed by that key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// RFC 9396 §9.1: what a person approved this token for (a list of
    /// authorization details). A token with it is good only for exactly
    /// that, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
}

/// The `cnf` claim of a DPoP-bound token (RFC 9449 §6.1).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Confirmation {
    /// RFC 7638 SHA-256 thumbprint of the client's DPoP public key.
    pub jkt: String,
}

/// A fresh `jti`: 128 random bits, base64url.
pub fn new_jti() -> Result<String, JoseError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| JoseError::Crypto("random jti"))?;
    Ok(base64url::encode(&bytes))
}

/// Signs `claims` with `key` as a compact JWS whose header is
/// `{"alg","kid","typ"}`.
pub fn encode<C: Serialize>(key: &SigningKey, typ: &str, claims: &C) -> Result<String, JoseError> {
    let payload = serde_json::to_vec(claims).map_err(|_| JoseError::Crypto("claims serialisation"))?;
    let header = Header::to_json(key.alg(), key.kid(), typ);
    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 400);
    base64url::encode_into(&header, &mut token);
    token.push('.');
    base64url::encode_into(&payload, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    base64url::encode_into(&signature, &mut token);
    Ok(token)
}

/// Signs an arbitrary claims object (for tests and tools).
pub fn encode_map(key: &SigningKey, typ: &str, claims: &Map<String, Value>) -> Result<String, JoseError> {
    encode(key, typ, claims)
}
