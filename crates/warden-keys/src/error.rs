//! The one error type of `warden-keys`. Messages never contain key bytes.

/// Errors from sealing, opening and rotating keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The master key is not base64 of exactly 32 bytes.
    #[error("master key must be base64 of exactly 32 bytes")]
    MalformedMasterKey,
    /// The sealed key was made under another master key.
    #[error("the master key does not match the one these keys were sealed with (fingerprint {expected}, got {actual})")]
    WrongMasterKey {
        /// Fingerprint recorded in the sealed key.
        expected: String,
        /// Fingerprint of the master key given.
        actual: String,
    },
    /// The sealed bytes are damaged or were moved to another key record.
    #[error("sealed key `{0}` failed authentication (corrupted or tampered with)")]
    Tampered(String),
    /// Randomness or AEAD failure in the crypto backend.
    #[error("crypto backend failure during {0}")]
    Crypto(&'static str),
    /// A token-core error (key generation or import).
    #[error(transparent)]
    Jose(#[from] warden_jose::JoseError),
    /// No key may sign now.
    #[error("no active signing key: run `warden keys rotate`")]
    NoSigningKey,
    /// The kid names no key.
    #[error("no key with kid `{0}`")]
    UnknownKid(String),
    /// The request breaks a rotation rule; the message says which.
    #[error("{0}")]
    Rotation(String),
}
