//! Property tests over every algorithm Warden signs with (EdDSA, ES256,
//! ES384, RS256, PS256):
//!
//! - random access-token claims survive `issue::encode` → `TokenVerifier`
//!   unchanged;
//! - changing any single character of a valid token (at a random index, to a
//!   different character) makes it fail;
//! - the verified-token cache answers with exactly what the verifier says,
//!   stops answering at `exp`, and `invalidate_jti` removes every token with
//!   that `jti`.
//!
//! The RSA key is generated once and shared by RS256 and PS256.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;
use warden_jose::issue::{AccessTokenClaims, encode};
use warden_jose::{
    Algorithm, AlgorithmSet, DEFAULT_MAX_TOKEN_BYTES, KeySet, SigningKey, TokenVerifier, TrustedIssuer, Validation,
    VerifiedTokenCache, verify_jws,
};

const ISS: &str = "https://warden.example";
const AUD: &str = "inference";
const NOW: u64 = 1_800_000_000;

static SIGNERS: LazyLock<Vec<SigningKey>> = LazyLock::new(|| {
    let (rs256, pkcs8) = SigningKey::generate(Algorithm::RS256).unwrap();
    let ps256 = SigningKey::from_pkcs8(Algorithm::PS256, &pkcs8).unwrap();
    vec![
        SigningKey::generate(Algorithm::EdDSA).unwrap().0,
        SigningKey::generate(Algorithm::ES256).unwrap().0,
        SigningKey::generate(Algorithm::ES384).unwrap().0,
        rs256,
        ps256,
    ]
});

/// One verifier per signer, trusting only that signer's public key.
static VERIFIERS: LazyLock<Vec<TokenVerifier>> = LazyLock::new(|| {
    SIGNERS
        .iter()
        .map(|key| {
            let keys = KeySet::new([key.verifying_key().clone()]).unwrap();
            let issuer = TrustedIssuer::new(ISS, keys, AlgorithmSet::asymmetric());
            TokenVerifier::new([issuer], Validation::access_token(AUD))
        })
        .collect()
});

fn alg_index() -> impl Strategy<Value = usize> {
    0..Algorithm::ASYMMETRIC.len()
}

prop_compose! {
    fn access_claims()(
        sub in "\\PC{1,16}",
        other_aud in prop::collection::vec("[a-z]{1,8}", 0..3),
        aud_pos in any::<Index>(),
        lifetime in 1u64..100_000,
        age in 0u64..1_000,
        jti in "[A-Za-z0-9_-]{1,22}",
        client_id in "[a-z][a-z0-9-]{0,10}",
        scopes in prop::collection::vec("[a-z][a-z.]{0,11}", 0..4),
        roles in prop::collection::vec("\\PC{1,8}", 0..4),
        tenant in prop::option::of("[a-z]{1,8}"),
    ) -> AccessTokenClaims {
        let mut aud = other_aud;
        aud.insert(aud_pos.index(aud.len() + 1), AUD.to_owned());
        AccessTokenClaims {
            iss: ISS.into(),
            sub: format!("user:{sub}"),
            aud,
            exp: NOW + lifetime,
            iat: NOW - age,
            nbf: NOW - age,
            jti,
            client_id,
            scope: scopes.join(" "),
            roles,
            tenant,
            act: None,
            cnf: None,
            authorization_details: None,
        }
    }
}

/// A character different from `orig`, drawn from ASCII or any Unicode.
fn replacement() -> impl Strategy<Value = char> {
    prop_oneof![(0u8..0x80).prop_map(char::from), any::<char>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sign_verify_round_trip(alg in alg_index(), claims in access_claims()) {
        let key = &SIGNERS[alg];
        prop_assert_eq!(key.alg(), Algorithm::ASYMMETRIC[alg]);
        let token = encode(key, "at+jwt", &claims).unwrap();
        let verified = VERIFIERS[alg].verify(&token, NOW).unwrap();

        let header = verified.header();
        prop_assert_eq!(header.alg(), key.alg());
        prop_assert_eq!(header.kid(), Some(key.kid()));
        prop_assert_eq!(header.typ(), Some("at+jwt"));

        let c = verified.claims();
        let expected = serde_json::to_value(&claims).unwrap();
        prop_assert_eq!(&Value::Object(c.raw().clone()), &expected);
        prop_assert_eq!(c.iss(), claims.iss.as_str());
        prop_assert_eq!(c.sub(), Some(claims.sub.as_str()));
        prop_assert_eq!(c.aud(), claims.aud.as_slice());
        prop_assert_eq!(c.exp(), claims.exp);
        prop_assert_eq!(c.iat(), Some(claims.iat));
        prop_assert_eq!(c.nbf(), Some(claims.nbf));
        prop_assert_eq!(c.jti(), Some(claims.jti.as_str()));
        prop_assert_eq!(c.client_id(), Some(claims.client_id.as_str()));
        prop_assert_eq!(c.roles(), claims.roles.as_slice());
        let scopes: Vec<&str> = claims.scope.split(' ').filter(|s| !s.is_empty()).collect();
        prop_assert_eq!(c.scopes().collect::<Vec<_>>(), scopes);

        // The same token is a valid JWS for the key, with the same payload.
        let keys = KeySet::new([key.verifying_key().clone()]).unwrap();
        let jws = verify_jws(&token, &keys, AlgorithmSet::asymmetric(), DEFAULT_MAX_TOKEN_BYTES).unwrap();
        prop_assert_eq!(serde_json::from_slice::<Value>(jws.payload()).unwrap(), expected);
    }

    #[test]
    fn any_single_character_change_is_rejected(
        alg in alg_index(),
        claims in access_claims(),
        at in any::<Index>(),
        with in replacement(),
    ) {
        let key = &SIGNERS[alg];
        let token = encode(key, "at+jwt", &claims).unwrap();
        prop_assert!(token.is_ascii());
        let i = at.index(token.len());
        let orig = char::from(token.as_bytes()[i]);
        let with = if with == orig { if orig == 'A' { 'B' } else { 'A' } } else { with };
        let mut tampered = String::with_capacity(token.len() + 4);
        tampered.push_str(&token[..i]);
        tampered.push(with);
        tampered.push_str(&token[i + 1..]);
        prop_assert_ne!(&tampered, &token);

        let got = VERIFIERS[alg].verify(&tampered, NOW);
        prop_assert!(got.is_err(), "index {} {:?} -> {:?} accepted", i, orig, with);
        let keys = KeySet::new([key.verifying_key().clone()]).unwrap();
        let jws = verify_jws(&tampered, &keys, AlgorithmSet::asymmetric(), DEFAULT_MAX_TOKEN_BYTES);
        prop_assert!(jws.is_err(), "index {} {:?} -> {:?} accepted as JWS", i, orig, with);
        // The original still verifies: the rejection is the tampering's doing.
        prop_assert!(VERIFIERS[alg].verify(&token, NOW).is_ok());
    }

    #[test]
    fn cache_agrees_with_verifier_and_expires(alg in alg_index(), claims in access_claims()) {
        let key = &SIGNERS[alg];
        let verifier = &VERIFIERS[alg];
        let token = encode(key, "at+jwt", &claims).unwrap();
        let direct = verifier.verify(&token, NOW).unwrap();
        let cache = VerifiedTokenCache::new(verifier.clone(), 64);

        let first = cache.verify(&token, NOW).unwrap();
        prop_assert_eq!(&*first, &direct);
        prop_assert_eq!(cache.len(), 1);
        let hit = cache.get(&token, NOW).expect("cached");
        prop_assert_eq!(&*hit, &direct);
        prop_assert_eq!(&*cache.verify(&token, NOW + 1).unwrap(), &direct);

        // Served until just before `exp`, never at or after it.
        prop_assert!(cache.get(&token, claims.exp - 1).is_some());
        prop_assert!(cache.get(&token, claims.exp).is_none());
        prop_assert!(cache.is_empty(), "an expired entry is dropped");
        // Within the verifier's leeway the token still verifies, but is not cached.
        let late = cache.verify(&token, claims.exp + 10).unwrap();
        prop_assert_eq!(&*late, &direct);
        prop_assert!(cache.is_empty(), "a token past exp is not cached");
        prop_assert!(cache.get(&token, claims.exp + 10).is_none());

        // Revocation by jti.
        cache.verify(&token, NOW).unwrap();
        prop_assert_eq!(cache.invalidate_jti(&format!("{}-other", claims.jti)), 0);
        prop_assert_eq!(cache.len(), 1);
        prop_assert_eq!(cache.invalidate_jti(&claims.jti), 1);
        prop_assert!(cache.get(&token, NOW).is_none());
        prop_assert!(cache.is_empty());

        // A tampered token is never answered from the cache.
        cache.verify(&token, NOW).unwrap();
        let tampered = format!("{token}x");
        prop_assert!(cache.verify(&tampered, NOW).is_err());
        prop_assert_eq!(cache.len(), 1);
    }
}

/// ECDSA signatures are randomised: two tokens with the same `jti` are two
/// cache entries, and revoking the `jti` removes both.
#[test]
fn invalidate_jti_removes_every_token_with_that_jti() {
    let idx = Algorithm::ASYMMETRIC
        .iter()
        .position(|a| *a == Algorithm::ES256)
        .unwrap();
    let (key, verifier) = (&SIGNERS[idx], &VERIFIERS[idx]);
    let claims = AccessTokenClaims {
        iss: ISS.into(),
        sub: "user:alice".into(),
        aud: vec![AUD.into()],
        exp: NOW + 300,
        iat: NOW,
        nbf: NOW,
        jti: "shared-jti".into(),
        client_id: "cli".into(),
        scope: String::new(),
        roles: vec![],
        tenant: None,
        act: None,
        cnf: None,
        authorization_details: None,
    };
    let a = encode(key, "at+jwt", &claims).unwrap();
    let b = encode(key, "at+jwt", &claims).unwrap();
    assert_ne!(a, b);
    let cache = VerifiedTokenCache::new(verifier.clone(), 64);
    cache.verify(&a, NOW).unwrap();
    cache.verify(&b, NOW).unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.invalidate_jti("shared-jti"), 2);
    assert!(cache.is_empty());
    assert_eq!(cache.invalidate_jti("shared-jti"), 0, "already gone");
    cache.verify(&a, NOW).unwrap();
    assert!(cache.get(&a, NOW).is_some(), "cached again after a fresh verification");
    cache.clear();
    assert!(cache.is_empty());
}
