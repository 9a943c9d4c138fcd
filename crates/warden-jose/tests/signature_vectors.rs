//! Wycheproof signature-layer vectors through [`VerifyingKey`] constructors
//! and [`VerifyingKey::verify`]:
//!
//! - `ed25519_test.json` (EdDSA), keys from `publicKey.pk`;
//! - `ecdsa_secp256r1_sha256_p1363_test.json` (ES256) and
//!   `ecdsa_secp384r1_sha384_p1363_test.json` (ES384), keys from
//!   `publicKey.wx`/`wy` (r‖s signatures, as JWS uses them);
//! - `rsa_signature_2048_sha256_test.json` (RS256), keys from
//!   `publicKey.modulus`/`publicExponent`. The e = 3 keys (tcId 258, 259) are
//!   refused at import by design (exponent at least 65537), which counts as
//!   rejection; the one `acceptable` vector (tcId 8, DigestInfo without the
//!   NULL parameter) is rejected: Warden accepts only the DER encoding.
//! - `rsa_pss_2048_sha256_mgf1_32_test.json` (PS256 as RFC 7518 §3.5
//!   defines it) and `rsa_pss_2048_sha256_mgf1_0_test.json`, which must be
//!   rejected entirely (PS256 fixes the salt at 32 bytes) except tcId 69,
//!   whose signature was re-made with a 32-byte salt and so is a PS256 one.
//!
//! Where a group also carries a JWK, importing it must give the same key
//! (or fail exactly when the raw import fails).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use serde_json::Value;
use support::{Tally, arr, hex, obj, read_json, s, tc_id};
use warden_jose::{Algorithm, JoseError, Jwk, VerifyingKey};

/// Big-endian integer bytes without leading zero octets.
fn unsigned(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Big-endian integer left-padded to exactly `len` bytes.
fn fixed(bytes: &[u8], len: usize) -> Vec<u8> {
    let v = unsigned(bytes);
    assert!(v.len() <= len, "coordinate longer than {len} bytes");
    let mut out = vec![0u8; len - v.len()];
    out.extend_from_slice(v);
    out
}

/// Builds the group key from raw fields and, when the group has a JWK,
/// checks the JWK path agrees.
fn group_key(
    group: &Value,
    alg: Algorithm,
    raw: impl FnOnce(&Value) -> Result<VerifyingKey, JoseError>,
    jwk_member: &str,
) -> Result<VerifyingKey, JoseError> {
    let raw_key = raw(&group["publicKey"]);
    if let Some(jwk) = group.get(jwk_member) {
        let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or_default();
        assert_eq!(kid, "none", "Wycheproof JWKs use kid `none`");
        let via_jwk = Jwk::from_object(obj(jwk)).and_then(|j| j.to_verifying_key(Some(alg)));
        match (&raw_key, &via_jwk) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "JWK and raw key differ"),
            (Err(_), Err(_)) => {}
            _ => panic!("raw import {raw_key:?} and JWK import {via_jwk:?} disagree"),
        }
    }
    raw_key
}

/// Runs every vector of `file` and returns the tally plus the tcIds whose
/// key was refused at import.
fn run(
    file: &str,
    alg: Algorithm,
    jwk_member: &str,
    raw: fn(&Value) -> Result<VerifyingKey, JoseError>,
    expected: fn(u64, &str) -> bool,
) -> (Tally, Vec<u64>) {
    let data = read_json(file);
    let mut tally = Tally::new(file);
    let mut refused_at_import = Vec::new();
    for group in arr(&data, "testGroups") {
        let key = group_key(group, alg, raw, jwk_member);
        for t in arr(group, "tests") {
            let tc = tc_id(t);
            let msg = hex(s(t, "msg"));
            let sig = hex(s(t, "sig"));
            let got = match &key {
                Ok(key) => key.verify(alg, &msg, &sig),
                Err(e) => {
                    refused_at_import.push(tc);
                    Err(e.clone())
                }
            };
            let note = format!("{} {:?} {}", s(t, "result"), t["flags"], t["comment"]);
            tally.check(format!("tcId {tc}"), expected(tc, s(t, "result")), &got, &note);
        }
    }
    (tally, refused_at_import)
}

fn valid_only(_: u64, result: &str) -> bool {
    assert_ne!(result, "acceptable", "unexpected acceptable vector");
    result == "valid"
}

fn ed25519_raw(pk: &Value) -> Result<VerifyingKey, JoseError> {
    VerifyingKey::ed25519("none", &hex(s(pk, "pk")))
}

fn p256_raw(pk: &Value) -> Result<VerifyingKey, JoseError> {
    VerifyingKey::ec(
        Algorithm::ES256,
        "none",
        &fixed(&hex(s(pk, "wx")), 32),
        &fixed(&hex(s(pk, "wy")), 32),
    )
}

fn p384_raw(pk: &Value) -> Result<VerifyingKey, JoseError> {
    VerifyingKey::ec(
        Algorithm::ES384,
        "none",
        &fixed(&hex(s(pk, "wx")), 48),
        &fixed(&hex(s(pk, "wy")), 48),
    )
}

fn rsa_raw(alg: Algorithm, pk: &Value) -> Result<VerifyingKey, JoseError> {
    VerifyingKey::rsa(
        alg,
        "none",
        unsigned(&hex(s(pk, "modulus"))),
        unsigned(&hex(s(pk, "publicExponent"))),
    )
}

#[test]
fn ed25519() {
    let (tally, refused) = run(
        "wycheproof/testvectors_v1/ed25519_test.json",
        Algorithm::EdDSA,
        "publicKeyJwk",
        ed25519_raw,
        valid_only,
    );
    assert!(refused.is_empty(), "no Ed25519 key is refused: {refused:?}");
    tally.finish(151);
}

#[test]
fn ecdsa_p256_sha256_p1363() {
    let (tally, refused) = run(
        "wycheproof/testvectors_v1/ecdsa_secp256r1_sha256_p1363_test.json",
        Algorithm::ES256,
        "publicKeyJwk",
        p256_raw,
        valid_only,
    );
    assert!(refused.is_empty(), "no P-256 key is refused: {refused:?}");
    tally.finish(262);
}

#[test]
fn ecdsa_p384_sha384_p1363() {
    let (tally, refused) = run(
        "wycheproof/testvectors_v1/ecdsa_secp384r1_sha384_p1363_test.json",
        Algorithm::ES384,
        "publicKeyJwk",
        p384_raw,
        valid_only,
    );
    assert!(refused.is_empty(), "no P-384 key is refused: {refused:?}");
    tally.finish(280);
}

#[test]
fn rsa_pkcs1_2048_sha256() {
    fn expected(tc: u64, result: &str) -> bool {
        match (tc, result) {
            // e = 3 keys: refused at import by design.
            (258 | 259, "valid") => false,
            // MissingNull: `acceptable` upstream; Warden accepts only DER DigestInfo.
            (8, "acceptable") => false,
            (_, "acceptable") => panic!("tcId {tc}: undocumented acceptable vector"),
            (_, r) => r == "valid",
        }
    }
    let (tally, refused) = run(
        "wycheproof/testvectors_v1/rsa_signature_2048_sha256_test.json",
        Algorithm::RS256,
        "keyJwk",
        |pk| rsa_raw(Algorithm::RS256, pk),
        expected,
    );
    assert_eq!(refused, [258, 259], "exactly the e = 3 keys are refused at import");
    tally.finish(259);
}

#[test]
fn rsa_pss_2048_sha256_mgf1_salt32() {
    let (tally, refused) = run(
        "wycheproof/testvectors_v1/rsa_pss_2048_sha256_mgf1_32_test.json",
        Algorithm::PS256,
        "publicKeyJwk",
        |pk| rsa_raw(Algorithm::PS256, pk),
        valid_only,
    );
    assert!(refused.is_empty(), "the PS256 key imports: {refused:?}");
    tally.finish(108);
}

#[test]
fn rsa_pss_2048_sha256_mgf1_salt0_is_not_ps256() {
    let (tally, refused) = run(
        "wycheproof/testvectors_v1/rsa_pss_2048_sha256_mgf1_0_test.json",
        Algorithm::PS256,
        "publicKeyJwk",
        |pk| rsa_raw(Algorithm::PS256, pk),
        // tcId 69 ("s_len changed to 32", invalid for sLen = 0) is a genuine
        // salt-32 signature, i.e. exactly a PS256 signature: it must verify.
        |tc, _| tc == 69,
    );
    assert!(refused.is_empty(), "the key imports; only the salt length differs");
    tally.finish(103);
}

/// A key verifies only the algorithm it is bound to.
#[test]
fn keys_are_bound_to_their_algorithm() {
    let data = read_json("wycheproof/testvectors_v1/rsa_pss_2048_sha256_mgf1_32_test.json");
    let group = &arr(&data, "testGroups")[0];
    let t = &arr(group, "tests")[0];
    assert_eq!(s(t, "result"), "valid");
    let (msg, sig) = (hex(s(t, "msg")), hex(s(t, "sig")));
    let ps = rsa_raw(Algorithm::PS256, &group["publicKey"]).unwrap();
    assert_eq!(ps.verify(Algorithm::PS256, &msg, &sig), Ok(()));
    assert_eq!(
        ps.verify(Algorithm::RS256, &msg, &sig),
        Err(JoseError::KeyAlgMismatch {
            key: Algorithm::PS256,
            token: Algorithm::RS256
        })
    );
    let rs = rsa_raw(Algorithm::RS256, &group["publicKey"]).unwrap();
    assert_eq!(
        rs.verify(Algorithm::RS256, &msg, &sig),
        Err(JoseError::InvalidSignature),
        "a PSS signature is not a PKCS#1 v1.5 signature"
    );
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384, Algorithm::HS256] {
        assert!(
            matches!(VerifyingKey::rsa(alg, "k", &[1; 256], &[1, 0, 1]), Err(JoseError::KeyUnsuitable(a)) if a == alg),
            "{alg}"
        );
    }
}
