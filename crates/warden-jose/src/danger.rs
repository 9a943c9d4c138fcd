//! Hazardous opt-ins. Nothing here is used unless a caller names it.
//!
//! HS256 is symmetric: every party that can verify a token can also mint
//! one, and a verifier that lets a token's `alg` choose between HMAC and a
//! public key can be fooled into using a public key as an HMAC secret
//! (RS256→HS256 confusion). Warden keeps HS256 out of every default
//! allow-list, builds HMAC keys only here, and binds each one to `HS256`
//! alone, so an asymmetric key can never be used as an HMAC secret and an
//! HMAC key can never stand in for a public key.

use std::fmt;

use aws_lc_rs::{constant_time, hmac};
use zeroize::Zeroizing;

use crate::error::JoseError;
use crate::signing_key::SigningKey;
use crate::verifying_key::VerifyingKey;

/// Shortest HS256 secret accepted: 256 bits (RFC 7518 §3.2).
pub const MIN_HMAC_SECRET: usize = 32;

/// An HS256 secret.
#[derive(Clone)]
pub struct HmacKey {
    key: hmac::Key,
    secret: Zeroizing<Vec<u8>>,
}

impl HmacKey {
    /// Wraps a secret of at least 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self, JoseError> {
        if secret.len() < MIN_HMAC_SECRET {
            return Err(JoseError::InvalidJwk(format!(
                "HS256 secret is {} bytes; at least {MIN_HMAC_SECRET} are required",
                secret.len()
            )));
        }
        Ok(HmacKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            secret: Zeroizing::new(secret.to_vec()),
        })
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        hmac::sign(&self.key, message).as_ref().to_vec()
    }

    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.key, message, tag).is_ok()
    }

    pub(crate) fn same_secret(&self, other: &HmacKey) -> bool {
        constant_time::verify_slices_are_equal(&self.secret, &other.secret).is_ok()
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// An HS256 verifying key. A verifier still refuses HS256 tokens unless its
/// allow-list names [`crate::Algorithm::HS256`] too.
pub fn hs256_verifying_key(kid: impl Into<String>, key: HmacKey) -> VerifyingKey {
    VerifyingKey::hmac(kid, key)
}

/// An HS256 signing key.
pub fn hs256_signing_key(kid: impl Into<String>, key: HmacKey) -> SigningKey {
    SigningKey::hmac(kid.into(), key)
}

/// Builds an HS256 key from an `oct` JWK object (`k` member); `use`,
/// `key_ops` and `alg`, when present, must allow signatures with HS256.
pub fn hs256_key_from_jwk(jwk: &serde_json::Map<String, serde_json::Value>) -> Result<VerifyingKey, JoseError> {
    crate::jwk::hmac_from_object(jwk)
}
