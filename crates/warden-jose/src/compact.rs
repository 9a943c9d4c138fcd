//! Compact JWS parsing and signature checking (RFC 7515 §7.1), the layer
//! below JWT claims: size cap, exactly three strict base64url segments, a
//! strict JSON header checked by [`Header::from_object`], key selection by
//! `kid`, and the signature.

use serde_json::{Map, Value};

use crate::alg::AlgorithmSet;
use crate::base64url;
use crate::error::{JoseError, Segment, bounded};
use crate::header::Header;
use crate::key_set::KeySet;
use crate::strict_json::{self, StrictJsonError};

/// Default cap on token length (8 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A compact JWS split and decoded, signature not yet checked.
pub(crate) struct Parsed<'a> {
    pub(crate) header: Header,
    pub(crate) signing_input: &'a str,
    pub(crate) payload: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

/// Maps a strict-JSON failure to the error for `segment`.
pub(crate) fn json_error(segment: Segment, e: StrictJsonError) -> JoseError {
    match e {
        StrictJsonError::Duplicate(name) => JoseError::DuplicateMember {
            segment,
            name: bounded(&name),
        },
        StrictJsonError::TooDeep => JoseError::NestingTooDeep(segment),
        StrictJsonError::Syntax(reason) => JoseError::InvalidJson {
            segment,
            reason: bounded_reason(&reason),
        },
    }
}

fn bounded_reason(reason: &str) -> String {
    reason
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Splits and decodes `token` and checks its header. The signature is not
/// checked yet; nothing from the payload is trusted.
pub(crate) fn parse(token: &str, max_len: usize, algorithms: AlgorithmSet) -> Result<Parsed<'_>, JoseError> {
    split(token, max_len, Some(algorithms))
}

/// [`parse`], checking the header's `alg` against `algorithms` when given
/// (before the payload and signature are decoded).
fn split(token: &str, max_len: usize, algorithms: Option<AlgorithmSet>) -> Result<Parsed<'_>, JoseError> {
    if token.len() > max_len {
        return Err(JoseError::TokenTooLarge {
            len: token.len(),
            max: max_len,
        });
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JoseError::Malformed(if token.split('.').count() == 5 {
            "five segments (JWE) are not accepted"
        } else {
            "expected three dot-separated segments"
        }));
    };
    let header_bytes = base64url::decode(h).ok_or(JoseError::InvalidBase64(Segment::Header))?;
    let header_map = strict_json::parse_object(&header_bytes).map_err(|e| json_error(Segment::Header, e))?;
    let header = Header::from_object(&header_map)?;
    if let Some(algorithms) = algorithms
        && !algorithms.contains(header.alg())
    {
        return Err(JoseError::AlgNotAllowed(header.alg()));
    }
    let payload = base64url::decode(p).ok_or(JoseError::InvalidBase64(Segment::Payload))?;
    let signature = base64url::decode(s).ok_or(JoseError::InvalidBase64(Segment::Signature))?;
    if signature.is_empty() {
        return Err(JoseError::InvalidSignature);
    }
    // INVARIANT: `h` and `p` are the first two segments, so this prefix is `h.p`.
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(JoseError::Malformed("truncated"))?;
    Ok(Parsed {
        header,
        signing_input,
        payload,
        signature,
    })
}

/// A compact JWS split and decoded once: its header checked as for any
/// token, its payload parsed as a strict JSON object, its signature **not
/// checked**. Nothing in it is trusted; its only use is to say which
/// verifier to ask ([`issuer`](Self::issuer)), which then verifies it
/// without decoding it again ([`crate::TokenVerifier::verify_unverified`]).
pub struct UnverifiedToken<'a> {
    pub(crate) token: &'a str,
    pub(crate) parsed: Parsed<'a>,
    pub(crate) payload: Map<String, Value>,
}

impl std::fmt::Debug for UnverifiedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnverifiedToken")
            .field("alg", &self.parsed.header.alg())
            .field("iss", &self.issuer())
            .finish_non_exhaustive()
    }
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes `token` (at most `max_len` bytes): three strict
    /// base64url segments, a header that passes every header rule (any
    /// algorithm Warden knows: each verifier checks its own allow-list),
    /// a strict JSON object as payload, a non-empty signature.
    pub fn parse(token: &'a str, max_len: usize) -> Result<Self, JoseError> {
        let parsed = split(token, max_len, None)?;
        let payload = parsed.payload_object()?;
        Ok(UnverifiedToken { token, parsed, payload })
    }

    /// The token as presented.
    pub fn as_str(&self) -> &'a str {
        self.token
    }

    /// The payload's `iss`, **unverified**: only to pick the verifier (which
    /// checks `iss` exactly, with the signature).
    pub fn issuer(&self) -> Option<&str> {
        self.payload.get("iss").and_then(Value::as_str)
    }
}

impl Parsed<'_> {
    /// Checks the signature with the key `keys` selects for this header.
    pub(crate) fn verify_signature(&self, keys: &KeySet) -> Result<(), JoseError> {
        let key = keys.select(self.header.kid())?;
        key.verify(self.header.alg(), self.signing_input.as_bytes(), &self.signature)
    }

    /// Parses the payload as a strict JSON object.
    pub(crate) fn payload_object(&self) -> Result<Map<String, Value>, JoseError> {
        strict_json::parse_object(&self.payload).map_err(|e| json_error(Segment::Payload, e))
    }
}

/// A JWS whose signature verified. Carries the header and raw payload.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    header: Header,
    payload: Vec<u8>,
}

impl VerifiedJws {
    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The payload bytes, covered by the signature.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Verifies a compact JWS with arbitrary payload: every header rule, the
/// algorithm allow-list, the key bound to the header's `alg`, and the
/// signature. No JWT claim is looked at; use [`crate::TokenVerifier`] for
/// tokens.
pub fn verify_jws(
    token: &str,
    keys: &KeySet,
    algorithms: AlgorithmSet,
    max_len: usize,
) -> Result<VerifiedJws, JoseError> {
    let parsed = parse(token, max_len, algorithms)?;
    parsed.verify_signature(keys)?;
    Ok(VerifiedJws {
        header: parsed.header,
        payload: parsed.payload,
    })
}
