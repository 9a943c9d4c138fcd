//! Opaque secrets Warden hands to clients — refresh tokens, authorization
//! and device codes, CIBA `auth_req_id`s: 256 random bits behind a prefix
//! that secret scanners recognise, stored only as their SHA-256.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::error::ApiError;

/// A fresh secret: `prefix` then 256 random bits, base64url.
pub fn new(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::internal("random generator failed"))?;
    Ok(format!("{prefix}{}", warden_jose::base64url::encode(&bytes)))
}

/// The SHA-256 a secret is stored and looked up under.
pub fn stored_hash(secret: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}
