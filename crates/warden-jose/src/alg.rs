//! The algorithms Warden signs and verifies, and sets of them.

use crate::error::{JoseError, bounded};

/// A JWS algorithm (RFC 7518 / RFC 8037) that Warden implements.
///
/// `HS256` exists for the explicit opt-in in [`crate::danger`]; no default
/// allow-list contains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// ECDSA P-256 with SHA-256, 64-byte r‖s signatures.
    ES256,
    /// ECDSA P-384 with SHA-384, 96-byte r‖s signatures.
    ES384,
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of 2048 bits or more.
    RS256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    PS256,
    /// HMAC-SHA-256: symmetric, only behind [`crate::danger`].
    HS256,
}

impl Algorithm {
    /// Every asymmetric algorithm, the default allow-list.
    pub const ASYMMETRIC: [Algorithm; 5] = [
        Algorithm::EdDSA,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::PS256,
    ];

    /// The registered JWA name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
            Algorithm::HS256 => "HS256",
        }
    }

    /// Parses a header `alg`. Names are case-sensitive (RFC 7515 §4.1.1);
    /// `none` in any case is refused with its own error.
    pub fn parse(name: &str) -> Result<Self, JoseError> {
        Ok(match name {
            "EdDSA" => Algorithm::EdDSA,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "RS256" => Algorithm::RS256,
            "PS256" => Algorithm::PS256,
            "HS256" => Algorithm::HS256,
            other if other.trim().eq_ignore_ascii_case("none") => return Err(JoseError::AlgNone),
            other => return Err(JoseError::UnsupportedAlg(bounded(other))),
        })
    }

    /// Whether the algorithm uses a public/private key pair.
    pub fn is_asymmetric(self) -> bool {
        self != Algorithm::HS256
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = JoseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::parse(s)
    }
}

/// A small set of algorithms: an allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgorithmSet(u8);

impl AlgorithmSet {
    /// The empty set.
    pub const EMPTY: AlgorithmSet = AlgorithmSet(0);

    fn bit(alg: Algorithm) -> u8 {
        1 << (alg as u8)
    }

    /// The default allow-list: every asymmetric algorithm, never HS256.
    pub fn asymmetric() -> Self {
        Algorithm::ASYMMETRIC.into_iter().collect()
    }

    /// Adds an algorithm.
    pub fn insert(&mut self, alg: Algorithm) {
        self.0 |= Self::bit(alg);
    }

    /// Whether `alg` is in the set.
    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & Self::bit(alg) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        [
            Algorithm::EdDSA,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::HS256,
        ]
        .into_iter()
        .filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<T: IntoIterator<Item = Algorithm>>(iter: T) -> Self {
        let mut set = AlgorithmSet::EMPTY;
        for alg in iter {
            set.insert(alg);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_refused_in_every_spelling() {
        for name in ["none", "None", "NONE", "nOnE", " none"] {
            assert_eq!(Algorithm::parse(name), Err(JoseError::AlgNone), "{name}");
        }
    }

    #[test]
    fn names_are_case_sensitive() {
        assert!(matches!(Algorithm::parse("eddsa"), Err(JoseError::UnsupportedAlg(_))));
        assert!(matches!(Algorithm::parse("rs256"), Err(JoseError::UnsupportedAlg(_))));
        assert_eq!(Algorithm::parse("ES384"), Ok(Algorithm::ES384));
    }

    #[test]
    fn default_set_excludes_hs256() {
        let set = AlgorithmSet::asymmetric();
        assert!(!set.contains(Algorithm::HS256));
        assert_eq!(set.iter().count(), 5);
    }
}
