//! Warden's token core: compact JWS and JWT parsing, verification and
//! signing, JWK/JWKS, and a verified-token cache.
//!
//! # What it owns
//! - [`TokenVerifier`] applies every rule of docs/tokens-and-keys.md § What verification checks, in order in order and
//!   is the only maker of [`VerifiedToken`].
//! - [`SigningKey`] and [`VerifyingKey`] are each bound to one [`Algorithm`];
//!   a verifier picks the key by (issuer, `kid`) and requires the header's
//!   `alg` to equal the key's.
//! - [`Jwk`] and [`JwkSet`] import and publish keys (RFC 7517, RFC 7638).
//! - [`VerifiedTokenCache`] skips repeated signature checks for the same
//!   token.
//! - [`dpop`] checks RFC 9449 DPoP proofs: the one place a key is taken
//!   from a token's header, and only to prove possession of it.
//!
//! # What it must not touch
//! No I/O, no clock, no async: time comes in as `now` (seconds since the
//! epoch), keys come in as bytes. The only dependency with side effects is
//! the crypto backend (`aws-lc-rs`), including its random generator.
//!
//! # Security defaults
//! Only EdDSA, ES256, ES384, RS256 and PS256 are allowed by default. HS256
//! lives in [`danger`] and must be asked for twice: an HMAC key can only be
//! made there, and the allow-list must name HS256 too. Tokens carrying
//! `jwk`, `jku`, `x5u` or `x5c` are refused; keys are never fetched or
//! taken from a token. Ed25519 follows the strict rules in
//! `ed25519_policy` (canonical, not small-order points).
//!
//! # Example
//! ```
//! use warden_jose::{Algorithm, AlgorithmSet, KeySet, SigningKey, TokenVerifier, TrustedIssuer, Validation};
//! use warden_jose::issue::{encode, AccessTokenClaims};
//!
//! let (key, _pkcs8) = SigningKey::generate(Algorithm::EdDSA)?;
//! let now = 1_800_000_000;
//! let claims = AccessTokenClaims {
//!     iss: "https://warden.example".into(), sub: "user:alice".into(),
//!     aud: vec!["inference".into()], exp: now + 300, iat: now, nbf: now,
//!     jti: "j1".into(), client_id: "cli".into(), scope: "inference.invoke".into(),
//!     roles: vec![], tenant: None, act: None, cnf: None, authorization_details: None,
//! };
//! let token = encode(&key, "at+jwt", &claims)?;
//!
//! let keys = KeySet::new([key.verifying_key().clone()])?;
//! let issuer = TrustedIssuer::new("https://warden.example", keys, AlgorithmSet::asymmetric());
//! let verifier = TokenVerifier::new([issuer], Validation::access_token("inference"));
//! let verified = verifier.verify(&token, now + 10)?;
//! assert_eq!(verified.claims().sub(), Some("user:alice"));
//! # Ok::<(), warden_jose::JoseError>(())
//! ```
#![deny(missing_docs)]

mod alg;
pub mod base64url;
mod cache;
mod claims;
mod compact;
pub mod danger;
pub mod dpop;
mod ed25519_policy;
mod error;
mod header;
pub mod issue;
mod jwk;
mod key_set;
mod roca;
mod signing_key;
pub mod strict_json;
mod validation;
mod verifier;
mod verifying_key;

pub use alg::{Algorithm, AlgorithmSet};
pub use cache::VerifiedTokenCache;
pub use claims::{Claims, MAX_NUMERIC_DATE};
pub use compact::{DEFAULT_MAX_TOKEN_BYTES, UnverifiedToken, VerifiedJws, verify_jws};
pub use error::{JoseError, Segment};
pub use header::Header;
pub use jwk::{Jwk, JwkSet, SkippedKey};
pub use key_set::KeySet;
pub use signing_key::{Pkcs8, SigningKey};
pub use validation::{ACCESS_TOKEN_TYPES, DEFAULT_LEEWAY, MAX_LEEWAY, Validation};
pub use verifier::{TokenVerifier, TrustedIssuer, VerifiedToken};
pub use verifying_key::{MAX_RSA_BITS, MIN_RSA_BITS, VerifyingKey};
