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
    /// Another key is already waiting to sign; one rotation at a time.
    #[error("key `{kid}` is already pending and signs from {from} (Unix time); retire it or wait")]
    AlreadyPending {
        /// The pending key.
        kid: String,
        /// When it starts signing.
        from: u64,
    },
    /// The active signing key cannot be retired.
    #[error("key `{0}` is the active signing key; rotate first")]
    ActiveKey(String),
    /// The key is already retired.
    #[error("key `{0}` is already retired")]
    AlreadyRetired(String),
    /// Tokens signed by the key may still be valid.
    #[error(
        "tokens signed by `{kid}` may be valid until {until} (Unix time); pass --force to retire it now and reject them"
    )]
    InOverlap {
        /// The key.
        kid: String,
        /// When its last token expires.
        until: u64,
    },
    /// Another process retired the key between the check and the write.
    #[error("key `{0}` was retired concurrently")]
    RetiredConcurrently(String),
}

impl KeyError {
    /// Whether the error is a rotation rule refusing the request (as
    /// opposed to a failure to carry it out).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            KeyError::AlreadyPending { .. }
                | KeyError::ActiveKey(_)
                | KeyError::AlreadyRetired(_)
                | KeyError::InOverlap { .. }
                | KeyError::RetiredConcurrently(_)
        )
    }
}
