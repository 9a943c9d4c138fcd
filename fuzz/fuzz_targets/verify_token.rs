//! Arbitrary bytes as a compact token: `TokenVerifier::verify` (at several
//! clock readings) and `verify_jws` must never panic, and must agree.
//!
//! The two keys are fixed test keys (below), so the seed tokens in
//! `fuzz/seeds/verify_token/` verify and the fuzzer starts past the
//! signature check.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use warden_jose::{
    Algorithm, AlgorithmSet, DEFAULT_MAX_TOKEN_BYTES, KeySet, SigningKey, TokenVerifier, TrustedIssuer, Validation,
    base64url, verify_jws,
};

/// Test-only keys (PKCS#8, base64url). They sign the seed tokens and nothing else.
const EDDSA_PKCS8: &str =
    "MFECAQEwBQYDK2VwBCIEII7MMPb7_l5-I7RKmkjYaUK4oOg5YMRZpO9O9H5E3KE3gSEAtVOcBgYWXenWBQdcZ0CzO5dkKzagWhGIZt2mUT6quoo";
const ES256_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdT-tuydb3nacxgUyiQfyaKyJ7LVHqZ0ZJ1WgIBluKt-hRANCAASJo4f1PTJlqmNMX4a63cQ7vJslgjYXoD5d2ratc99dco0Zzlzdm7Tq-6ob09lvnADZ-oku1ME_B2h6Ngvzjrkt";

const ISSUER: &str = "https://warden.example";
/// Seed tokens are valid from 1_800_000_000 for an hour.
const NOW: u64 = 1_800_000_060;

struct Env {
    keys: KeySet,
    verifier: TokenVerifier,
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let key = |alg, pkcs8: &str| {
        let der = base64url::decode(pkcs8).expect("test key is base64url");
        SigningKey::from_pkcs8(alg, &der)
            .expect("test key loads")
            .verifying_key()
            .clone()
    };
    let keys = KeySet::new([key(Algorithm::EdDSA, EDDSA_PKCS8), key(Algorithm::ES256, ES256_PKCS8)]).expect("key set");
    let verifier = TokenVerifier::new(
        [TrustedIssuer::new(ISSUER, keys.clone(), AlgorithmSet::asymmetric())],
        Validation::access_token("inference"),
    );
    Env { keys, verifier }
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let env = &*ENV;
    let jws = verify_jws(token, &env.keys, AlgorithmSet::asymmetric(), DEFAULT_MAX_TOKEN_BYTES);
    for now in [0, NOW, u64::MAX] {
        if let Ok(verified) = env.verifier.verify(token, now) {
            // The token verifier is strictly stricter than the JWS layer.
            let jws = jws.as_ref().expect("token verified but its JWS did not");
            assert_eq!(
                jws.header(),
                verified.header(),
                "JWS and token layers disagree on the header"
            );
            assert!(
                verified.claims().exp().saturating_add(warden_jose::MAX_LEEWAY) > now,
                "expired token accepted"
            );
        }
    }
});
