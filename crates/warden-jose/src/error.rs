//! The one error type of `warden-jose`.
//!
//! Every variant names the rule that failed. Messages are safe to show to the
//! caller that presented the token: they never contain key material, and they
//! echo caller input only in bounded, sanitised form.

use crate::alg::Algorithm;

/// Which part of a compact JWS a parse error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The protected header (first segment).
    Header,
    /// The payload (second segment).
    Payload,
    /// The signature (third segment).
    Signature,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Segment::Header => "header",
            Segment::Payload => "payload",
            Segment::Signature => "signature",
        })
    }
}

/// Errors from parsing, verifying or signing tokens and keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The token is longer than the configured cap.
    #[error("token is {len} bytes, more than the {max}-byte limit")]
    TokenTooLarge {
        /// Length of the presented token.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The token is not three dot-separated segments.
    #[error("token is not a compact JWS: {0}")]
    Malformed(&'static str),
    /// A segment is not strict, unpadded, canonical base64url.
    #[error("{0} segment is not strict base64url")]
    InvalidBase64(Segment),
    /// A segment is not the JSON this position requires.
    #[error("{segment} is not valid JSON: {reason}")]
    InvalidJson {
        /// The segment that failed to parse.
        segment: Segment,
        /// Why, in bounded form.
        reason: String,
    },
    /// A JSON object in the token repeats a member name.
    #[error("{segment} repeats the member `{name}`")]
    DuplicateMember {
        /// The segment holding the duplicate.
        segment: Segment,
        /// The repeated name (truncated).
        name: String,
    },
    /// JSON nested deeper than allowed.
    #[error("{0} nests JSON deeper than allowed")]
    NestingTooDeep(Segment),
    /// `alg` is `none` in any spelling: unsecured tokens are never accepted.
    #[error("unsecured tokens (`alg` none) are never accepted")]
    AlgNone,
    /// `alg` is missing or not a string.
    #[error("header has no string `alg`")]
    MissingAlg,
    /// `alg` names an algorithm Warden does not implement.
    #[error("algorithm `{0}` is not supported")]
    UnsupportedAlg(String),
    /// `alg` is supported but not in the caller's allow-list.
    #[error("algorithm `{0}` is not allowed here")]
    AlgNotAllowed(Algorithm),
    /// `typ` is missing when the token kind requires one.
    #[error("header has no `typ`; expected `{expected}`")]
    MissingTyp {
        /// The first accepted value.
        expected: String,
    },
    /// `typ` does not name this token kind.
    #[error("header `typ` is `{found}`; expected `{expected}`")]
    WrongTyp {
        /// The first accepted value.
        expected: String,
        /// The value found (truncated).
        found: String,
    },
    /// The header lists a critical extension Warden does not understand.
    #[error("header marks `{0}` critical and it is not understood")]
    UnsupportedCrit(String),
    /// The header is malformed in some other way.
    #[error("header member `{0}` is malformed")]
    InvalidHeader(&'static str),
    /// The header carries key material or a key URL; those are never trusted.
    #[error("header member `{0}` (embedded key or key URL) is never accepted")]
    EmbeddedKey(&'static str),
    /// RFC 7797 unencoded payloads are not supported (and JWTs must not use them).
    #[error("unencoded payloads (`b64` false) are not supported")]
    UnencodedPayload,
    /// The header names a nested token or encryption, which access tokens never use.
    #[error("nested or encrypted tokens are not accepted (`{0}` header)")]
    NestedOrEncrypted(&'static str),
    /// No key set is configured for the token's issuer.
    #[error("issuer is not trusted")]
    UntrustedIssuer,
    /// The token has no `kid` and the issuer has more than one key.
    #[error("header has no `kid` and the issuer has more than one key")]
    MissingKid,
    /// No key of the issuer has this `kid`.
    #[error("no key with this `kid` for the issuer")]
    UnknownKid,
    /// The key found is bound to another algorithm than the header's.
    #[error("key is bound to `{key}` but the token says `{token}`")]
    KeyAlgMismatch {
        /// The key's bound algorithm.
        key: Algorithm,
        /// The header's algorithm.
        token: Algorithm,
    },
    /// The signature does not verify.
    #[error("signature is invalid")]
    InvalidSignature,
    /// A required claim is absent.
    #[error("claim `{0}` is required")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or an out-of-range value.
    #[error("claim `{claim}` is invalid: {reason}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `iss` differs from the expected issuer.
    #[error("issuer does not match")]
    IssuerMismatch,
    /// `aud` does not contain this audience.
    #[error("audience does not match")]
    AudienceMismatch,
    /// `exp` is in the past (beyond leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future (beyond leeway).
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// The configured leeway exceeds the hard cap.
    #[error("leeway of {0} s exceeds the 60 s maximum")]
    LeewayTooLarge(u64),
    /// A JWK or JWKS is unusable; the reason names the rule.
    #[error("invalid JWK: {0}")]
    InvalidJwk(String),
    /// The key set holds the same `kid` twice, or mixes key kinds ambiguously.
    #[error("ambiguous key set: {0}")]
    AmbiguousKeySet(String),
    /// An RSA key is too small.
    #[error("RSA key of {0} bits is too small (minimum 2048)")]
    WeakRsaKey(usize),
    /// A key does not suit the requested use (e.g. HMAC for an asymmetric alg).
    #[error("key cannot be used with `{0}`")]
    KeyUnsuitable(Algorithm),
    /// Key generation or signing failed inside the crypto backend.
    #[error("crypto backend failure during {0}")]
    Crypto(&'static str),
}

/// Shortens caller-supplied text for error messages: at most 32 characters,
/// control characters replaced.
pub(crate) fn bounded(text: &str) -> String {
    text.chars()
        .take(32)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
