//! The keys of one issuer, looked up by `kid`.

use std::collections::HashMap;

use crate::error::JoseError;
use crate::verifying_key::VerifyingKey;

/// Verifying keys of one issuer, indexed by key id.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<String, VerifyingKey>,
}

impl KeySet {
    /// Builds a set; a repeated `kid` makes the set ambiguous and is refused.
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Result<Self, JoseError> {
        let mut by_kid = HashMap::new();
        for key in keys {
            let kid = key.kid().to_owned();
            if by_kid.insert(kid, key).is_some() {
                return Err(JoseError::AmbiguousKeySet("a `kid` appears twice".into()));
            }
        }
        Ok(KeySet { by_kid })
    }

    /// Selects the key for a header `kid`. A token without `kid` is accepted
    /// only when the set holds exactly one key, so that the choice is never
    /// a guess.
    pub fn select(&self, kid: Option<&str>) -> Result<&VerifyingKey, JoseError> {
        match kid {
            Some(kid) => self.by_kid.get(kid).ok_or(JoseError::UnknownKid),
            None if self.by_kid.len() == 1 => self.by_kid.values().next().ok_or(JoseError::UnknownKid),
            None => Err(JoseError::MissingKid),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.by_kid.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }

    /// The keys, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.by_kid.values()
    }
}
