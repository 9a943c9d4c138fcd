//! DPoP proofs (RFC 9449): checking the `DPoP` header a client sends to
//! prove it holds the private key its token is bound to.
//!
//! Pure, like the rest of the crate: the caller gives the request's method
//! and URL, the access token presented with it (if any) and `now`; the
//! replay cache and nonces are the server's.
//!
//! What [`check_proof`] refuses, in order:
//! - a proof longer than [`MAX_PROOF_BYTES`], or not three strict
//!   base64url segments with a strict JSON header and payload;
//! - a header without `typ: dpop+jwt`, with an `alg` outside the allowed
//!   asymmetric set, or otherwise breaking Warden's header rules (`crit`,
//!   `jku`, `x5u`, `x5c`, `b64`, `enc`, `zip`, nested tokens);
//! - a `jwk` that is missing, not a public asymmetric key (private
//!   members, `oct`), weak or contradicting `alg`;
//! - a signature that does not verify with that key;
//! - missing or mistyped `jti` (at most [`MAX_JTI_BYTES`]), `htm`, `htu`,
//!   `iat`; an `htm` other than the request's method, an `htu` other than
//!   the request's URL (scheme, host, port and path; query and fragment
//!   ignored, RFC 9449 §4.3); an `iat` beyond the leeway in the future or
//!   older than the maximum age;
//! - when an access token is presented, an `ath` that is missing or is not
//!   base64url(SHA-256(token)).
//!
//! The result names the key by its RFC 7638 thumbprint (`jkt`), which
//! the token's `cnf.jkt` must equal.

use aws_lc_rs::digest;
use serde_json::{Map, Value};

use crate::alg::{Algorithm, AlgorithmSet};
use crate::base64url;
use crate::compact::json_error;
use crate::error::{JoseError, Segment};
use crate::header::Header;
use crate::jwk::Jwk;
use crate::signing_key::SigningKey;
use crate::strict_json;

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";
/// Longest proof accepted: room for an RSA-4096 `jwk` and the claims.
pub const MAX_PROOF_BYTES: usize = 4 * 1024;
/// Longest `jti` accepted (RFC 9449 asks for at least 96 random bits; a
/// bound keeps the replay cache's entries small).
pub const MAX_JTI_BYTES: usize = 128;
/// Default seconds a proof's `iat` may lie in the future (clock skew).
pub const DEFAULT_PROOF_LEEWAY: u64 = 60;
/// Default seconds a proof stays acceptable after its `iat`.
pub const DEFAULT_PROOF_MAX_AGE: u64 = 300;
/// Hard cap on the maximum age: the replay cache must hold every `jti`
/// this long.
pub const MAX_PROOF_MAX_AGE: u64 = 3600;

/// Why a DPoP proof was refused. Messages are safe to return to the
/// client: they name the rule, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The proof is longer than [`MAX_PROOF_BYTES`].
    #[error("the DPoP proof is longer than {MAX_PROOF_BYTES} bytes")]
    TooLarge,
    /// Not a well-formed compact JWS, or its header breaks a rule.
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(JoseError),
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's `typ` must be `dpop+jwt`")]
    WrongTyp,
    /// `alg` is not one of the allowed asymmetric algorithms.
    #[error("the DPoP proof's algorithm `{0}` is not allowed")]
    AlgNotAllowed(Algorithm),
    /// No `jwk` header, or not an object.
    #[error("the DPoP proof has no `jwk` header object")]
    MissingJwk,
    /// The `jwk` is not a usable public key for `alg`.
    #[error("the DPoP proof's `jwk` is unusable: {0}")]
    InvalidJwk(JoseError),
    /// The signature does not verify with the `jwk`.
    #[error("the DPoP proof's signature is invalid")]
    InvalidSignature,
    /// A required claim is missing or of the wrong type.
    #[error("the DPoP proof's `{0}` claim is missing or malformed")]
    InvalidClaim(&'static str),
    /// `jti` is longer than [`MAX_JTI_BYTES`].
    #[error("the DPoP proof's `jti` is longer than {MAX_JTI_BYTES} bytes")]
    JtiTooLong,
    /// `htm` is not the request's method.
    #[error("the DPoP proof is for another HTTP method")]
    MethodMismatch,
    /// `htu` is not the request's URL.
    #[error("the DPoP proof is for another URL")]
    UrlMismatch,
    /// `iat` is too far in the future.
    #[error("the DPoP proof was issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the maximum age.
    #[error("the DPoP proof is too old")]
    Stale,
    /// An access token was presented and the proof has no `ath`.
    #[error("the DPoP proof has no `ath` for the access token")]
    MissingAth,
    /// `ath` is not the hash of the presented access token.
    #[error("the DPoP proof's `ath` does not match the access token")]
    AthMismatch,
}

/// The time rules of proofs and the algorithms they may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofRules {
    /// Seconds `iat` may be ahead of `now`.
    pub leeway: u64,
    /// Seconds after `iat` the proof is still accepted.
    pub max_age: u64,
    /// Allowed algorithms; symmetric ones are never accepted whatever this says.
    pub algorithms: AlgorithmSet,
}

impl Default for ProofRules {
    fn default() -> Self {
        ProofRules {
            leeway: DEFAULT_PROOF_LEEWAY,
            max_age: DEFAULT_PROOF_MAX_AGE,
            algorithms: AlgorithmSet::asymmetric(),
        }
    }
}

/// The request a proof must be for.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// The HTTP method (`GET`, `POST`, …), compared exactly.
    pub method: &'a str,
    /// The request's URL as the client reached it (`https://host/path`);
    /// query and fragment are ignored.
    pub url: &'a str,
    /// The access token presented with the proof, if any: `ath` must then
    /// be its hash.
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check of [`check_proof`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    jkt: String,
    jti: String,
    iat: u64,
    nonce: Option<String>,
    alg: Algorithm,
}

impl DpopProof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key (the `cnf.jkt` of
    /// tokens bound to it).
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The proof's unique id, for the replay cache.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// When the client made it.
    pub fn iat(&self) -> u64 {
        self.iat
    }

    /// The server nonce it carries, if any (checked by the server).
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The algorithm it is signed with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }
}

/// base64url(SHA-256(`access_token`)): the `ath` of proofs sent with it.
pub fn access_token_hash(access_token: &str) -> String {
    base64url::encode(digest::digest(&digest::SHA256, access_token.as_bytes()).as_ref())
}

/// Checks `proof` for `target` at `now` under `rules`; see the module
/// documentation for every rule.
pub fn check_proof(
    proof: &str,
    target: &ProofTarget<'_>,
    rules: &ProofRules,
    now: u64,
) -> Result<DpopProof, DpopError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(DpopError::TooLarge);
    }
    let malformed = DpopError::Malformed;
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(JoseError::Malformed("expected three dot-separated segments")));
    };
    let header_bytes = base64url::decode(h).ok_or(malformed(JoseError::InvalidBase64(Segment::Header)))?;
    let mut header_map =
        strict_json::parse_object(&header_bytes).map_err(|e| malformed(json_error(Segment::Header, e)))?;
    // The one place a key comes from the token itself: take it out, and
    // check what remains by the rules every Warden header follows.
    let jwk = match header_map.remove("jwk") {
        Some(Value::Object(jwk)) => jwk,
        _ => return Err(DpopError::MissingJwk),
    };
    let header = Header::from_object(&header_map).map_err(malformed)?;
    if !header.typ().is_some_and(|t| t.eq_ignore_ascii_case(DPOP_TYP)) {
        return Err(DpopError::WrongTyp);
    }
    let alg = header.alg();
    if !alg.is_asymmetric() || !rules.algorithms.contains(alg) {
        return Err(DpopError::AlgNotAllowed(alg));
    }
    let key = Jwk::from_object(&jwk)
        .and_then(|jwk| Ok((jwk.to_verifying_key(Some(alg))?, jwk)))
        .map_err(DpopError::InvalidJwk);
    let (key, jwk) = key?;
    let signature = base64url::decode(s).ok_or(malformed(JoseError::InvalidBase64(Segment::Signature)))?;
    // INVARIANT: `h` and `p` are the first two segments, so this prefix is `h.p`.
    let signing_input = proof
        .get(..h.len() + 1 + p.len())
        .ok_or(malformed(JoseError::Malformed("truncated")))?;
    if signature.is_empty() || key.verify(alg, signing_input.as_bytes(), &signature).is_err() {
        return Err(DpopError::InvalidSignature);
    }
    let payload = base64url::decode(p).ok_or(malformed(JoseError::InvalidBase64(Segment::Payload)))?;
    let claims = strict_json::parse_object(&payload).map_err(|e| malformed(json_error(Segment::Payload, e)))?;

    let jti = string_claim(&claims, "jti")?;
    if jti.is_empty() {
        return Err(DpopError::InvalidClaim("jti"));
    }
    if jti.len() > MAX_JTI_BYTES {
        return Err(DpopError::JtiTooLong);
    }
    if string_claim(&claims, "htm")? != target.method {
        return Err(DpopError::MethodMismatch);
    }
    let htu = string_claim(&claims, "htu")?;
    match (normalize_htu(htu), normalize_htu(target.url)) {
        (Some(a), Some(b)) if a == b => {}
        _ => return Err(DpopError::UrlMismatch),
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
            .ok_or(DpopError::InvalidClaim("iat"))?,
        _ => return Err(DpopError::InvalidClaim("iat")),
    };
    if iat > now.saturating_add(rules.leeway) {
        return Err(DpopError::IssuedInFuture);
    }
    if now > iat.saturating_add(rules.max_age) {
        return Err(DpopError::Stale);
    }
    if let Some(token) = target.access_token {
        let ath = match claims.get("ath") {
            None => return Err(DpopError::MissingAth),
            Some(Value::String(ath)) => ath,
            Some(_) => return Err(DpopError::InvalidClaim("ath")),
        };
        if *ath != access_token_hash(token) {
            return Err(DpopError::AthMismatch);
        }
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(DpopError::InvalidClaim("nonce")),
    };
    Ok(DpopProof {
        jkt: jwk.thumbprint(),
        jti: jti.to_owned(),
        iat,
        nonce,
        alg,
    })
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, DpopError> {
    match claims.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(DpopError::InvalidClaim(name)),
    }
}

/// An `htu` reduced to what RFC 9449 §4.3 compares: scheme and host in
/// lower case, the port (the scheme's default made explicit) and the path
/// (`/` when empty); query and fragment dropped. `None` for anything but
/// an absolute `http`/`https` URL without user info.
pub fn normalize_htu(url: &str) -> Option<(String, String, u16, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    // The port follows the last `:` outside an IPv6 literal's brackets.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            let port = if port.is_empty() {
                default_port
            } else {
                port.parse::<u16>().ok()?
            };
            (host, port)
        }
        _ => (authority, default_port),
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme, host.to_ascii_lowercase(), port, path.to_owned()))
}

/// Signs a DPoP proof with `key` for `method` and `url` (for tests and
/// tools; clients bring their own library). `access_token` adds its
/// `ath`, `nonce` the server's nonce.
pub fn sign_proof(
    key: &SigningKey,
    method: &str,
    url: &str,
    iat: u64,
    jti: &str,
    access_token: Option<&str>,
    nonce: Option<&str>,
) -> Result<String, JoseError> {
    let jwk = Jwk::from_verifying_key(key.verifying_key())?.to_json();
    let header = serde_json::json!({"typ": DPOP_TYP, "alg": key.alg().as_str(), "jwk": jwk});
    let mut claims = serde_json::json!({"jti": jti, "htm": method, "htu": url, "iat": iat});
    if let Some(obj) = claims.as_object_mut() {
        if let Some(token) = access_token {
            obj.insert("ath".into(), Value::from(access_token_hash(token)));
        }
        if let Some(nonce) = nonce {
            obj.insert("nonce".into(), Value::from(nonce));
        }
    }
    let header = serde_json::to_vec(&header).map_err(|_| JoseError::Crypto("header serialisation"))?;
    let claims = serde_json::to_vec(&claims).map_err(|_| JoseError::Crypto("claims serialisation"))?;
    let mut proof = String::new();
    base64url::encode_into(&header, &mut proof);
    proof.push('.');
    base64url::encode_into(&claims, &mut proof);
    let signature = key.sign(proof.as_bytes())?;
    proof.push('.');
    base64url::encode_into(&signature, &mut proof);
    Ok(proof)
}

/// The `jkt` of `key`'s public key: what a token bound to it carries.
pub fn key_thumbprint(key: &SigningKey) -> Result<String, JoseError> {
    Ok(Jwk::from_verifying_key(key.verifying_key())?.thumbprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 9449 §4.1 Figure 2 (a proof for the token endpoint) and §7.1
    // Figure 13 (a proof for a resource request, with the access token of
    // that figure), both signed with the ES256 key whose thumbprint §6.1
    // Figure 9 gives. Copied from RFC 9449 with the line folding undone.
    const RFC_HEADER: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19";
    const RFC_TOKEN_PROOF_REST: &str = "eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
    const RFC_RESOURCE_PROOF_REST: &str = "eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
    const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    const URL: &str = "https://warden.example/v1/models";
    const NOW: u64 = 1_800_000_000;

    fn target<'a>(method: &'a str, url: &'a str, token: Option<&'a str>) -> ProofTarget<'a> {
        ProofTarget {
            method,
            url,
            access_token: token,
        }
    }

    fn key(alg: Algorithm) -> SigningKey {
        SigningKey::generate(alg).unwrap().0
    }

    fn check(proof: &str, t: &ProofTarget<'_>, now: u64) -> Result<DpopProof, DpopError> {
        check_proof(proof, t, &ProofRules::default(), now)
    }

    /// A proof with `header` and `claims` as given, signed by `key`.
    fn forge(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let mut proof = String::new();
        base64url::encode_into(&serde_json::to_vec(header).unwrap(), &mut proof);
        proof.push('.');
        base64url::encode_into(&serde_json::to_vec(claims).unwrap(), &mut proof);
        let sig = key.sign(proof.as_bytes()).unwrap();
        proof.push('.');
        base64url::encode_into(&sig, &mut proof);
        proof
    }

    fn public_jwk(key: &SigningKey) -> Value {
        Jwk::from_verifying_key(key.verifying_key()).unwrap().to_json()
    }

    #[test]
    fn the_rfc_9449_examples_verify_with_the_rfc_thumbprint() {
        let proof = format!("{RFC_HEADER}.{RFC_TOKEN_PROOF_REST}");
        let t = target("POST", "https://server.example.com/token", None);
        let p = check(&proof, &t, 1_562_262_616).unwrap();
        assert_eq!(p.jkt(), RFC_JKT);
        assert_eq!(p.jti(), "-BwC3ESc6acc2lTc");
        assert_eq!(p.alg(), Algorithm::ES256);

        let proof = format!("{RFC_HEADER}.{RFC_RESOURCE_PROOF_REST}");
        let t = target(
            "GET",
            "https://resource.example.org/protectedresource",
            Some(RFC_ACCESS_TOKEN),
        );
        let p = check(&proof, &t, 1_562_262_618).unwrap();
        assert_eq!(p.jkt(), RFC_JKT);
        assert_eq!(
            access_token_hash(RFC_ACCESS_TOKEN),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
        // The same proof with another token, method, URL or time.
        let other = target(
            "GET",
            "https://resource.example.org/protectedresource",
            Some("another-token"),
        );
        assert_eq!(check(&proof, &other, 1_562_262_618), Err(DpopError::AthMismatch));
        let post = target(
            "POST",
            "https://resource.example.org/protectedresource",
            Some(RFC_ACCESS_TOKEN),
        );
        assert_eq!(check(&proof, &post, 1_562_262_618), Err(DpopError::MethodMismatch));
        assert_eq!(check(&proof, &t, 1_562_262_618 + 301), Err(DpopError::Stale));
    }

    #[test]
    fn every_allowed_algorithm_round_trips_and_names_its_key() {
        for alg in Algorithm::ASYMMETRIC {
            let k = key(alg);
            let proof = sign_proof(&k, "GET", URL, NOW, "j1", Some("tok"), Some("n1")).unwrap();
            let p = check(&proof, &target("GET", URL, Some("tok")), NOW).unwrap();
            assert_eq!(p.jkt(), key_thumbprint(&k).unwrap(), "{alg}");
            assert_eq!((p.jti(), p.iat(), p.nonce(), p.alg()), ("j1", NOW, Some("n1"), alg));
        }
    }

    #[test]
    fn method_url_and_time_must_match_the_request() {
        let k = key(Algorithm::EdDSA);
        let proof = sign_proof(&k, "GET", URL, NOW, "j1", None, None).unwrap();
        let get = |url| target("GET", url, None);
        assert!(check(&proof, &get(URL), NOW).is_ok());
        assert!(check(&proof, &get("HTTPS://Warden.Example:443/v1/models?x=1#f"), NOW).is_ok());
        assert_eq!(
            check(&proof, &target("get", URL, None), NOW),
            Err(DpopError::MethodMismatch)
        );
        assert_eq!(
            check(&proof, &target("POST", URL, None), NOW),
            Err(DpopError::MethodMismatch)
        );
        for other in [
            "https://warden.example/v1/models/",
            "https://warden.example/v1/Models",
            "http://warden.example/v1/models",
            "https://warden.example:8443/v1/models",
            "https://evil.example/v1/models",
            "not a url",
        ] {
            assert_eq!(check(&proof, &get(other), NOW), Err(DpopError::UrlMismatch), "{other}");
        }
        assert!(check(&proof, &get(URL), NOW + 300).is_ok());
        assert_eq!(check(&proof, &get(URL), NOW + 301), Err(DpopError::Stale));
        assert!(check(&proof, &get(URL), NOW - 60).is_ok());
        assert_eq!(check(&proof, &get(URL), NOW - 61), Err(DpopError::IssuedInFuture));
        let strict = ProofRules {
            leeway: 0,
            max_age: 10,
            ..ProofRules::default()
        };
        assert_eq!(check_proof(&proof, &get(URL), &strict, NOW + 11), Err(DpopError::Stale));
    }

    #[test]
    fn ath_is_required_with_a_token_and_must_hash_it() {
        let k = key(Algorithm::ES256);
        let without = sign_proof(&k, "GET", URL, NOW, "j1", None, None).unwrap();
        assert_eq!(
            check(&without, &target("GET", URL, Some("tok")), NOW),
            Err(DpopError::MissingAth)
        );
        let with = sign_proof(&k, "GET", URL, NOW, "j1", Some("tok"), None).unwrap();
        assert_eq!(
            check(&with, &target("GET", URL, Some("tok2")), NOW),
            Err(DpopError::AthMismatch)
        );
        // At the token endpoint no token is presented: `ath` is not looked at.
        assert!(check(&with, &target("GET", URL, None), NOW).is_ok());
    }

    #[test]
    fn header_rules() {
        let k = key(Algorithm::ES256);
        let claims = serde_json::json!({"jti": "j", "htm": "GET", "htu": URL, "iat": NOW});
        let jwk = public_jwk(&k);
        let t = target("GET", URL, None);
        let cases: Vec<(Value, DpopError)> = vec![
            (serde_json::json!({"alg": "ES256", "jwk": jwk}), DpopError::WrongTyp),
            (
                serde_json::json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}),
                DpopError::WrongTyp,
            ),
            (
                serde_json::json!({"typ": "dpop+jwt", "alg": "ES256"}),
                DpopError::MissingJwk,
            ),
            (
                serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": "x"}),
                DpopError::MissingJwk,
            ),
            (
                serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk, "jku": "https://x"}),
                DpopError::Malformed(JoseError::EmbeddedKey("jku")),
            ),
            (
                serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk, "crit": ["x"], "x": 1}),
                DpopError::Malformed(JoseError::UnsupportedCrit("x".into())),
            ),
            (
                serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}),
                DpopError::Malformed(JoseError::AlgNone),
            ),
            (
                serde_json::json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}),
                DpopError::AlgNotAllowed(Algorithm::HS256),
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(check(&forge(&k, &header, &claims), &t, NOW), Err(expected), "{header}");
        }
        // The key must be the one the `alg` names, and public.
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES384", "jwk": jwk});
        assert!(matches!(
            check(&forge(&k, &header, &claims), &t, NOW),
            Err(DpopError::InvalidJwk(_))
        ));
        let mut private = jwk.clone();
        private["d"] = Value::from("AAAA");
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private});
        let e = check(&forge(&k, &header, &claims), &t, NOW).unwrap_err();
        assert!(e.to_string().contains("private member"), "{e}");
        let oct = serde_json::json!({"kty": "oct", "k": "AAAA"});
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": oct});
        assert!(matches!(
            check(&forge(&k, &header, &claims), &t, NOW),
            Err(DpopError::InvalidJwk(_))
        ));
        // Only the key of the `jwk` verifies: a proof naming another key fails.
        let other = key(Algorithm::ES256);
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&other)});
        assert_eq!(
            check(&forge(&k, &header, &claims), &t, NOW),
            Err(DpopError::InvalidSignature)
        );
        // An allow-list without the algorithm.
        let rules = ProofRules {
            algorithms: AlgorithmSet::from_iter([Algorithm::EdDSA]),
            ..ProofRules::default()
        };
        let proof = sign_proof(&k, "GET", URL, NOW, "j", None, None).unwrap();
        assert_eq!(
            check_proof(&proof, &t, &rules, NOW),
            Err(DpopError::AlgNotAllowed(Algorithm::ES256))
        );
    }

    #[test]
    fn claim_rules() {
        let k = key(Algorithm::EdDSA);
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": public_jwk(&k)});
        let t = target("GET", URL, None);
        let base = serde_json::json!({"jti": "j", "htm": "GET", "htu": URL, "iat": NOW});
        for (name, bad, expected) in [
            ("jti", Value::Null, DpopError::InvalidClaim("jti")),
            ("jti", Value::from(""), DpopError::InvalidClaim("jti")),
            ("jti", Value::from("x".repeat(129)), DpopError::JtiTooLong),
            ("htm", Value::from(1), DpopError::InvalidClaim("htm")),
            ("htu", Value::Null, DpopError::InvalidClaim("htu")),
            ("iat", Value::from("now"), DpopError::InvalidClaim("iat")),
            ("iat", Value::from(-5), DpopError::InvalidClaim("iat")),
            ("nonce", Value::from(5), DpopError::InvalidClaim("nonce")),
        ] {
            let mut claims = base.clone();
            if bad.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = bad;
            }
            assert_eq!(check(&forge(&k, &header, &claims), &t, NOW), Err(expected), "{name}");
        }
        let mut claims = base.clone();
        claims["iat"] = Value::from(NOW as f64 + 0.5);
        assert!(check(&forge(&k, &header, &claims), &t, NOW).is_ok());
    }

    #[test]
    fn malformed_proofs_are_refused_before_any_key_is_used() {
        let t = target("GET", URL, None);
        assert_eq!(
            check(&"a".repeat(MAX_PROOF_BYTES + 1), &t, NOW),
            Err(DpopError::TooLarge)
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.AA", "e30.e30.AA"] {
            assert!(check(bad, &t, NOW).is_err(), "{bad}");
        }
        let k = key(Algorithm::EdDSA);
        let proof = sign_proof(&k, "GET", URL, NOW, "j", None, None).unwrap();
        let mut tampered = proof.clone();
        tampered.pop();
        tampered.push(if proof.ends_with('A') { 'B' } else { 'A' });
        assert!(check(&tampered, &t, NOW).is_err());
        let (head, _) = proof.rsplit_once('.').unwrap();
        assert_eq!(check(&format!("{head}."), &t, NOW), Err(DpopError::InvalidSignature));
    }

    #[test]
    fn htu_normalisation() {
        assert_eq!(
            normalize_htu("https://Example.COM"),
            Some(("https".into(), "example.com".into(), 443, "/".into()))
        );
        assert_eq!(
            normalize_htu("http://[::1]:8080/a?b"),
            Some(("http".into(), "[::1]".into(), 8080, "/a".into()))
        );
        assert_eq!(normalize_htu("http://[::1]/a").map(|n| n.2), Some(80));
        assert_eq!(normalize_htu("http://u:p@h/a"), None);
        assert_eq!(normalize_htu("ftp://h/a"), None);
        assert_eq!(normalize_htu("http://h:99999/"), None);
        assert_eq!(normalize_htu("http:///a"), None);
    }
}
