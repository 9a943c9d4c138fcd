//! The leaf an event becomes: a salted commitment to its body.
//!
//! ```text
//! commitment = SHA-256(salt || body)        salt: 32 random bytes per event
//! leaf hash  = SHA-256(0x00 || commitment)  (RFC 9162 leaf hash of the commitment)
//! ```
//!
//! The tree holds only leaf hashes, so erasing an event (GDPR) deletes its
//! body and salt and keeps its leaf hash: every root, checkpoint and proof
//! stays valid, and the erased entry can no longer be checked against its
//! content. The salt is what makes erasure real: without it, anyone holding
//! a guess of a low-entropy body (a user id, an action) could confirm it
//! against the kept leaf hash.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::error::AuditError;
use crate::merkle::{self, Hash};

/// Length of a salt in bytes.
pub const SALT_LEN: usize = 32;

/// The random per-event salt of a commitment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Salt([u8; SALT_LEN]);

impl std::fmt::Debug for Salt {
    // Kept out of logs: with the body it re-opens the commitment.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(..)")
    }
}

impl Salt {
    /// A fresh salt from the system random generator.
    pub fn random() -> Result<Self, AuditError> {
        Self::generate(&SystemRandom::new())
    }

    /// A fresh salt from `rng`.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, AuditError> {
        let mut bytes = [0u8; SALT_LEN];
        rng.fill(&mut bytes).map_err(|_| AuditError::Random)?;
        Ok(Self(bytes))
    }

    /// A salt read back from storage.
    pub fn from_bytes(bytes: [u8; SALT_LEN]) -> Self {
        Self(bytes)
    }

    /// The salt bytes, for storage beside the body.
    pub fn as_bytes(&self) -> &[u8; SALT_LEN] {
        &self.0
    }
}

/// `SHA-256(salt || body)`: the bytes the tree's leaf commits to.
pub fn commitment(salt: &Salt, body: &[u8]) -> Hash {
    merkle::sha256(&[&salt.0, body])
}

/// The leaf hash of an event: `SHA-256(0x00 || SHA-256(salt || body))`.
pub fn event_leaf_hash(salt: &Salt, body: &[u8]) -> Hash {
    merkle::leaf_hash(&commitment(salt, body))
}

/// An event body sealed for the log: the body, its salt and its leaf hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLeaf {
    body: Vec<u8>,
    salt: Salt,
    leaf_hash: Hash,
}

impl EventLeaf {
    /// Seals `body` (the event's canonical bytes) under a fresh random salt.
    pub fn seal(body: Vec<u8>) -> Result<Self, AuditError> {
        Ok(Self::with_salt(body, Salt::random()?))
    }

    /// Seals `body` under a given salt (tests, re-verification).
    pub fn with_salt(body: Vec<u8>, salt: Salt) -> Self {
        let leaf_hash = event_leaf_hash(&salt, &body);
        Self { body, salt, leaf_hash }
    }

    /// The canonical event body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The salt.
    pub fn salt(&self) -> &Salt {
        &self.salt
    }

    /// The leaf hash to append to the tree.
    pub fn leaf_hash(&self) -> &Hash {
        &self.leaf_hash
    }

    /// Body, salt and leaf hash, for storage.
    pub fn into_parts(self) -> (Vec<u8>, Salt, Hash) {
        (self.body, self.salt, self.leaf_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_hash_is_rfc9162_leaf_of_salted_commitment() {
        let salt = Salt::from_bytes([7; SALT_LEN]);
        let body = br#"{"time":1,"type":"key_retired","kid":"k1"}"#;
        let inner = merkle::sha256(&[&[7; SALT_LEN], body]);
        assert_eq!(commitment(&salt, body), inner);
        assert_eq!(event_leaf_hash(&salt, body), merkle::sha256(&[&[0], &inner]));
        let leaf = EventLeaf::with_salt(body.to_vec(), salt);
        assert_eq!(leaf.leaf_hash(), &merkle::leaf_hash(&inner));
    }

    #[test]
    fn salts_are_random_and_hide_the_body() {
        let a = EventLeaf::seal(b"same body".to_vec()).unwrap();
        let b = EventLeaf::seal(b"same body".to_vec()).unwrap();
        assert_ne!(a.salt(), b.salt());
        assert_ne!(
            a.leaf_hash(),
            b.leaf_hash(),
            "equal bodies must not be linkable by leaf hash"
        );
        assert_eq!(format!("{:?}", a.salt()), "Salt(..)");
    }

    #[test]
    fn any_change_to_body_or_salt_changes_the_leaf() {
        let salt = Salt::from_bytes([1; SALT_LEN]);
        let leaf = event_leaf_hash(&salt, b"body");
        assert_ne!(event_leaf_hash(&salt, b"bodY"), leaf);
        assert_ne!(event_leaf_hash(&Salt::from_bytes([2; SALT_LEN]), b"body"), leaf);
    }
}
