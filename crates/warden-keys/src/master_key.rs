//! The master key that seals every signing key at rest.

use std::fmt;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::KeyError;

/// A 256-bit master key (key-encryption key). `Debug` and `Display` never
/// show it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }

    /// Parses standard base64 of exactly 32 bytes (surrounding whitespace
    /// is ignored, as a key file ends with a newline).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let decoded = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| KeyError::MalformedMasterKey)?);
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::MalformedMasterKey)?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// A fresh random master key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KeyError::Crypto("master key generation"))?;
        let key = MasterKey::from_bytes(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(key)
    }

    /// Standard base64, for writing the key file. Wipe the result after use.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_slice()))
    }

    /// A public, non-reversible identifier of this key (8 bytes of
    /// HMAC-SHA-256 under the key, hex), to tell keys apart in errors.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.fingerprint_bytes())
    }

    pub(crate) fn fingerprint_bytes(&self) -> [u8; 8] {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, self.0.as_slice()),
            b"warden master key fingerprint v1",
        );
        let mut out = [0u8; 8];
        for (o, t) in out.iter_mut().zip(tag.as_ref()) {
            *o = *t;
        }
        out
    }

    /// A 32-byte subkey for one `purpose` (HMAC-SHA-256 under the master
    /// key), e.g. the pepper of client secrets. Distinct purposes give
    /// independent keys; none reveals the master key.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.as_slice());
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(b"warden derived key v1\0");
        ctx.update(purpose.as_bytes());
        let tag = ctx.sign();
        let mut out = Zeroizing::new([0u8; 32]);
        for (o, t) in out.iter_mut().zip(tag.as_ref()) {
            *o = *t;
        }
        out
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(<redacted>, fingerprint {})", self.fingerprint())
    }
}
