//! RFC examples as conformance tests:
//!
//! - RFC 7520 (JOSE Cookbook JSON): §4.1 RS256 verifies with the §3.3 key
//!   bound to RS256; §4.4 HS256 verifies only with the `danger` opt-in;
//!   §4.2 PS384 and §4.3 ES512 are refused as unsupported; detached content
//!   (§4.5) and every JSON serialization are refused; every §5 JWE and the
//!   §6 nested JWE are refused by `verify_jws`, while the §6 inner PS256 JWS
//!   verifies as a JWS but is no access token.
//! - RFC 7797 `b64:false` examples are refused (draft-era files per README
//!   caveat 6, and the final RFC values recomputed there).
//! - RFC 8037 A.4/A.5 (`curve25519/jws.json`): EdDSA verifies, A.3
//!   thumbprint; the X25519 key of `curve25519/ecdh-es.json` is refused.
//! - RFC 7515 App. A.1 (HS256, CRLF in the header: the signing input is the
//!   received bytes), A.5 / RFC 7519 §6.1 unsecured JWT, App. E `crit`.
//! - RFC 7638 §3.1 thumbprint of the RFC 7517 App. A.1 RSA key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use serde_json::{Value, json};
use support::{b64url, obj, public_part, read_json, s, sign_raw};
use warden_jose::{
    Algorithm, AlgorithmSet, DEFAULT_MAX_TOKEN_BYTES, JoseError, Jwk, KeySet, SigningKey, TokenVerifier, TrustedIssuer,
    Validation, VerifiedJws, VerifyingKey, danger, verify_jws,
};

const FRODO: &str = "It’s a dangerous business, Frodo, going out your door. You step onto the road, and if you don't keep your feet, there’s no knowing where you might be swept off to.";

fn hs256_allowed() -> AlgorithmSet {
    let mut algs = AlgorithmSet::asymmetric();
    algs.insert(Algorithm::HS256);
    algs
}

fn jws(token: &str, key: VerifyingKey, algs: AlgorithmSet) -> Result<VerifiedJws, JoseError> {
    verify_jws(token, &KeySet::new([key]).unwrap(), algs, DEFAULT_MAX_TOKEN_BYTES)
}

fn jws_with(token: &str, keys: &KeySet) -> Result<VerifiedJws, JoseError> {
    verify_jws(token, keys, hs256_allowed(), DEFAULT_MAX_TOKEN_BYTES)
}

/// RFC 7520 §3.3, bound to `alg`.
fn bilbo_rsa(alg: Algorithm) -> VerifyingKey {
    let jwk = read_json("jose-cookbook/jwk/3_3.rsa_public_key.json");
    Jwk::from_object(obj(&jwk))
        .unwrap()
        .to_verifying_key(Some(alg))
        .unwrap()
}

/// RFC 7520 §3.5 through the HS256 opt-in.
fn cookbook_hmac() -> VerifyingKey {
    let jwk = read_json("jose-cookbook/jwk/3_5.symmetric_key_mac_computation.json");
    danger::hs256_key_from_jwk(obj(&jwk)).unwrap()
}

/// Every key Warden could hold for the cookbook examples.
fn all_cookbook_keys() -> KeySet {
    // Distinct kids so that both RSA bindings fit in one set.
    let rs = bilbo_rsa(Algorithm::RS256);
    let jwk = read_json("jose-cookbook/jwk/3_3.rsa_public_key.json");
    let mut ps_jwk = obj(&jwk).clone();
    ps_jwk.insert("kid".into(), json!("bilbo-ps256"));
    let ps = Jwk::from_object(&ps_jwk)
        .unwrap()
        .to_verifying_key(Some(Algorithm::PS256))
        .unwrap();
    let (ed, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
    KeySet::new([rs, ps, cookbook_hmac(), ed.verifying_key().clone()]).unwrap()
}

#[test]
fn rfc7520_4_1_rs256_verifies() {
    let ex = read_json("jose-cookbook/jws/4_1.rsa_v15_signature.json");
    let compact = s(&ex["output"], "compact");
    let verified = jws(compact, bilbo_rsa(Algorithm::RS256), AlgorithmSet::asymmetric()).unwrap();
    assert_eq!(verified.payload(), FRODO.as_bytes());
    assert_eq!(verified.header().alg(), Algorithm::RS256);
    assert_eq!(verified.header().kid(), Some("bilbo.baggins@hobbiton.example"));

    // The same key bound to PS256 must not verify an RS256 signature.
    assert_eq!(
        jws(compact, bilbo_rsa(Algorithm::PS256), AlgorithmSet::asymmetric()).map(|_| ()),
        Err(JoseError::KeyAlgMismatch {
            key: Algorithm::PS256,
            token: Algorithm::RS256
        })
    );
    // An RSA JWK with no `alg` needs the caller to name one.
    let jwk = read_json("jose-cookbook/jwk/3_3.rsa_public_key.json");
    assert!(matches!(
        Jwk::from_object(obj(&jwk)).unwrap().to_verifying_key(None),
        Err(JoseError::InvalidJwk(_))
    ));
    // Private JWKs are never accepted where a public key is expected.
    let private = read_json("jose-cookbook/jwk/3_4.rsa_private_key.json");
    assert!(matches!(
        Jwk::from_object(obj(&private))
            .unwrap()
            .to_verifying_key(Some(Algorithm::RS256)),
        Err(JoseError::InvalidJwk(_))
    ));
    // The private key's public part is the §3.3 key.
    let public = Jwk::from_object(&public_part(obj(&private)))
        .unwrap()
        .to_verifying_key(Some(Algorithm::RS256))
        .unwrap();
    assert_eq!(public, bilbo_rsa(Algorithm::RS256));

    // A modified payload does not verify.
    let tampered = compact.replacen(".SXTigJlz", ".SXTigJly", 1);
    assert_ne!(tampered, compact);
    assert_eq!(
        jws(&tampered, bilbo_rsa(Algorithm::RS256), AlgorithmSet::asymmetric()).map(|_| ()),
        Err(JoseError::InvalidSignature)
    );
}

#[test]
fn rfc7520_4_4_hs256_verifies_only_with_opt_in() {
    let ex = read_json("jose-cookbook/jws/4_4.hmac-sha2_integrity_protection.json");
    let compact = s(&ex["output"], "compact");
    let verified = jws(compact, cookbook_hmac(), hs256_allowed()).unwrap();
    assert_eq!(verified.payload(), FRODO.as_bytes());
    assert_eq!(
        jws(compact, cookbook_hmac(), AlgorithmSet::asymmetric()).map(|_| ()),
        Err(JoseError::AlgNotAllowed(Algorithm::HS256))
    );
    // The ordinary JWK path refuses symmetric keys.
    let jwk = read_json("jose-cookbook/jwk/3_5.symmetric_key_mac_computation.json");
    assert!(matches!(
        Jwk::from_object(obj(&jwk)).unwrap().to_verifying_key(None),
        Err(JoseError::InvalidJwk(_))
    ));
    // §3.6: an encryption key (`use: enc`, `alg: A256GCM`) is no HS256 key.
    let enc = read_json("jose-cookbook/jwk/3_6.symmetric_key_encryption.json");
    assert!(matches!(
        danger::hs256_key_from_jwk(obj(&enc)),
        Err(JoseError::InvalidJwk(_))
    ));
}

#[test]
fn rfc7520_unsupported_algorithms_are_refused() {
    let keys = all_cookbook_keys();
    for (file, alg) in [
        ("jose-cookbook/jws/4_2.rsa-pss_signature.json", "PS384"),
        ("jose-cookbook/jws/4_3.ecdsa_signature.json", "ES512"),
    ] {
        let ex = read_json(file);
        let got = jws_with(s(&ex["output"], "compact"), &keys).map(|_| ());
        assert_eq!(got, Err(JoseError::UnsupportedAlg(alg.into())), "{file}");
    }
    // The P-521 keys of §3.1 / §3.2 cannot be imported.
    for file in [
        "jose-cookbook/jwk/3_1.ec_public_key.json",
        "jose-cookbook/jwk/3_2.ec_private_key.json",
    ] {
        let jwk = read_json(file);
        let public = Jwk::from_object(&public_part(obj(&jwk))).unwrap();
        for expected in [None, Some(Algorithm::ES256), Some(Algorithm::ES384)] {
            assert!(
                matches!(public.to_verifying_key(expected), Err(JoseError::InvalidJwk(_))),
                "{file} {expected:?}"
            );
        }
    }
}

#[test]
fn rfc7520_detached_and_json_serializations_are_refused() {
    let keys = all_cookbook_keys();
    // §4.5: detached payload; the empty payload segment is not what was signed.
    let ex = read_json("jose-cookbook/jws/4_5.signature_with_detached_content.json");
    assert_eq!(
        jws_with(s(&ex["output"], "compact"), &keys).map(|_| ()),
        Err(JoseError::InvalidSignature)
    );
    let mut refused = 0;
    for file in [
        "jose-cookbook/jws/4_1.rsa_v15_signature.json",
        "jose-cookbook/jws/4_4.hmac-sha2_integrity_protection.json",
        "jose-cookbook/jws/4_5.signature_with_detached_content.json",
        "jose-cookbook/jws/4_6.protecting_specific_header_fields.json",
        "jose-cookbook/jws/4_7.protecting_content_only.json",
        "jose-cookbook/jws/4_8.multiple_signatures.json",
    ] {
        let ex = read_json(file);
        for form in ["json", "json_flat"] {
            let Some(v) = ex["output"].get(form) else {
                continue;
            };
            let text = serde_json::to_string(v).unwrap();
            let got = jws_with(&text, &keys).map(|_| ());
            assert!(matches!(got, Err(JoseError::Malformed(_))), "{file} {form}: {got:?}");
            refused += 1;
        }
    }
    assert_eq!(refused, 11, "JSON serializations checked");
}

#[test]
fn rfc7520_jwe_examples_are_refused() {
    let keys = all_cookbook_keys();
    let dir = support::data_path("jose-cookbook/jwe");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 13, "RFC 7520 §5 has 13 JWE examples");
    let (mut compact, mut json_forms) = (0, 0);
    for name in &files {
        let ex = read_json(&format!("jose-cookbook/jwe/{name}"));
        let output = &ex["output"];
        if let Some(token) = output.get("compact").and_then(Value::as_str) {
            compact += 1;
            let got = jws_with(token, &keys).map(|_| ());
            assert!(
                matches!(got, Err(JoseError::Malformed(m)) if m.contains("JWE")),
                "{name}: {got:?}"
            );
        }
        for form in ["json", "json_flat"] {
            if let Some(v) = output.get(form) {
                json_forms += 1;
                let got = jws_with(&serde_json::to_string(v).unwrap(), &keys).map(|_| ());
                assert!(got.is_err(), "{name} {form}");
            }
        }
    }
    assert_eq!((compact, json_forms), (9, 25));
}

#[test]
fn rfc7520_6_nested_jwt() {
    let ex = read_json("jose-cookbook/6.nesting_signatures_and_encryption.json");
    let outer = s(&ex["encrypt"]["output"], "compact");
    let keys = all_cookbook_keys();
    assert!(matches!(jws_with(outer, &keys), Err(JoseError::Malformed(_))));

    // The inner PS256 JWS verifies as a JWS...
    let inner = s(&ex["encrypt"]["input"], "plaintext");
    assert_eq!(inner, s(&ex["sign"]["output"], "compact"));
    let signer = Jwk::from_object(&public_part(obj(&ex["sign"]["input"]["key"])))
        .unwrap()
        .to_verifying_key(Some(Algorithm::PS256))
        .unwrap();
    let verified = jws(inner, signer.clone(), AlgorithmSet::asymmetric()).unwrap();
    assert_eq!(verified.payload(), s(&ex["sign"]["input"], "payload").as_bytes());
    assert_eq!(verified.header().typ(), Some("JWT"));

    // ...but is no access token: wrong `typ`, and even where `JWT` is the
    // expected type it lacks `aud` (its `exp` is in 2011 as well).
    let issuer = || {
        TrustedIssuer::new(
            "hobbiton.example",
            KeySet::new([signer.clone()]).unwrap(),
            AlgorithmSet::asymmetric(),
        )
    };
    let now = 1_800_000_000;
    let at = TokenVerifier::new([issuer()], Validation::access_token("api"));
    assert!(matches!(at.verify(inner, now), Err(JoseError::WrongTyp { found, .. }) if found == "JWT"));
    let jwt = TokenVerifier::new(
        [issuer()],
        Validation::access_token("api").with_typ(Some(vec!["JWT".into()])),
    );
    assert_eq!(jwt.verify(inner, now).map(|_| ()), Err(JoseError::MissingClaim("aud")));
}

#[test]
fn rfc7797_unencoded_payloads_are_refused() {
    let ex = read_json("jose-cookbook/rfc7797/4.2.hmac-sha2_b64_false.json");
    let key = danger::hs256_key_from_jwk(obj(&ex["input"]["key"])).unwrap();
    let keys = KeySet::new([key]).unwrap();

    // RFC 7797 §4.1, the b64:true counterpart, verifies with the same key:
    // the refusals below are about `b64`, not the key.
    let b64_true = "eyJhbGciOiJIUzI1NiJ9.JC4wMg.5mvfOroL-g7HyqJoozehmsaqmvTYGEq5jTI1gVvoEoQ";
    assert_eq!(jws_with(b64_true, &keys).unwrap().payload(), b"$.02");

    // RFC 7797 §4.2 final values (README caveat 6) and the draft-era file:
    // the unencoded payload `$.02` holds a dot, so neither is even three
    // segments.
    let final_42 =
        "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19.$.02.A5dxf2s96_n5FLueVuW1Z_vh161FwXZC4YLPff6dmDY";
    assert!(matches!(jws_with(final_42, &keys), Err(JoseError::Malformed(_))));
    let draft = format!(
        "{}.{}.{}",
        s(&ex["signing"], "protected_b64u"),
        s(&ex["input"], "payload"),
        s(&ex["signing"], "sig")
    );
    assert!(matches!(jws_with(&draft, &keys), Err(JoseError::Malformed(_))));

    // `b64:false` without `crit` (the draft header) over a dot-free payload,
    // properly MACed: refused for `b64` itself.
    let secret = support::b64url_decode(s(&ex["input"]["key"], "k"));
    let signer = danger::hs256_signing_key("", danger::HmacKey::new(&secret).unwrap());
    let unencoded = support::sign_segments(&signer, s(&ex["signing"], "protected_b64u"), "JC4wMg");
    assert_eq!(
        jws_with(&unencoded, &keys).map(|_| ()),
        Err(JoseError::UnencodedPayload)
    );

    // The compact example of the second file (spaces in the payload).
    let ex2 = read_json("jose-cookbook/rfc7797/hmac-sha2_b64_false.json");
    assert_eq!(
        jws_with(s(&ex2["output"], "compact"), &keys).map(|_| ()),
        Err(JoseError::UnsupportedCrit("b64".into()))
    );
}

#[test]
fn rfc8037_ed25519() {
    let ex = read_json("jose-cookbook/curve25519/jws.json");
    let jwk = Jwk::from_object(&public_part(obj(&ex["input"]["key"]))).unwrap();
    // RFC 8037 A.3.
    assert_eq!(jwk.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    let key = jwk.to_verifying_key(None).unwrap();
    assert_eq!(key.alg(), Algorithm::EdDSA);
    assert_eq!(
        key.kid(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        "kid defaults to the thumbprint"
    );
    let verified = jws(s(&ex["output"], "compact"), key.clone(), AlgorithmSet::asymmetric()).unwrap();
    assert_eq!(verified.payload(), b"Example of Ed25519 signing");
    // EdDSA is bound to the key: not usable under any other alg.
    assert!(matches!(
        jwk.to_verifying_key(Some(Algorithm::ES256)),
        Err(JoseError::InvalidJwk(_))
    ));

    // X25519 keys are ECDH keys, never EdDSA keys.
    let ecdh = read_json("jose-cookbook/curve25519/ecdh-es.json");
    for x25519 in [
        &ecdh["input"]["key"],
        &ecdh["encrypting_key"]["epk"],
        &ecdh["encrypting_content"]["protected"]["epk"],
    ] {
        assert_eq!(s(x25519, "crv"), "X25519");
        let jwk = Jwk::from_object(&public_part(obj(x25519))).unwrap();
        for expected in [None, Some(Algorithm::EdDSA)] {
            assert!(
                matches!(jwk.to_verifying_key(expected), Err(JoseError::InvalidJwk(_))),
                "{x25519} {expected:?}"
            );
        }
        // Even relabelled as Ed25519 with `use: enc` it is refused.
        let mut relabelled = public_part(obj(x25519));
        relabelled.insert("crv".into(), json!("Ed25519"));
        if relabelled.contains_key("use") {
            assert!(Jwk::from_object(&relabelled).unwrap().to_verifying_key(None).is_err());
        }
    }
    let compact = s(&ecdh["output"], "compact");
    assert!(matches!(
        jws_with(compact, &all_cookbook_keys()),
        Err(JoseError::Malformed(_))
    ));
}

/// RFC 7515 App. A.1 / RFC 7519 §3.1 (transcribed from the RFC).
const A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const A1_KEY: &str = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
/// The A.1 payload: `{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}`.
const A1_PAYLOAD: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

fn a1_key() -> VerifyingKey {
    danger::hs256_key_from_jwk(obj(&json!({"kty": "oct", "k": A1_KEY}))).unwrap()
}

#[test]
fn rfc7515_a1_hs256_with_crlf_header() {
    let verified = jws(A1_TOKEN, a1_key(), hs256_allowed()).unwrap();
    assert_eq!(verified.header().typ(), Some("JWT"));
    assert_eq!(
        verified.payload(),
        b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"
    );
    // The signing input is the received bytes: the same header re-serialised
    // without the CRLF does not verify with the A.1 signature.
    let sig = A1_TOKEN.rsplit('.').next().unwrap();
    let reserialised = format!("{}.{A1_PAYLOAD}.{sig}", b64url(br#"{"typ":"JWT","alg":"HS256"}"#));
    assert_eq!(
        jws(&reserialised, a1_key(), hs256_allowed()).map(|_| ()),
        Err(JoseError::InvalidSignature)
    );

    // As a token it is refused: `typ` is JWT, and where JWT is accepted the
    // claims lack `aud` (and `exp` is in 2011).
    let issuer = || TrustedIssuer::new("joe", KeySet::new([a1_key()]).unwrap(), hs256_allowed());
    let validation = Validation::access_token("api").with_algorithms(hs256_allowed());
    let now = 1_800_000_000;
    let at = TokenVerifier::new([issuer()], validation.clone());
    assert!(matches!(at.verify(A1_TOKEN, now), Err(JoseError::WrongTyp { .. })));
    let jwt = TokenVerifier::new([issuer()], validation.with_typ(Some(vec!["JWT".into()])));
    assert_eq!(
        jwt.verify(A1_TOKEN, now).map(|_| ()),
        Err(JoseError::MissingClaim("aud"))
    );
    // Without the allow-list opt-in, HS256 is refused before anything else.
    let default = TokenVerifier::new([issuer()], Validation::access_token("api"));
    assert_eq!(
        default.verify(A1_TOKEN, now).map(|_| ()),
        Err(JoseError::AlgNotAllowed(Algorithm::HS256))
    );
}

#[test]
fn rfc7515_a5_unsecured_jwt_is_refused() {
    // RFC 7515 App. A.5 and RFC 7519 §6.1: `{"alg":"none"}`, empty signature.
    let unsecured = format!("eyJhbGciOiJub25lIn0.{A1_PAYLOAD}.");
    assert!(unsecured.starts_with(&b64url(br#"{"alg":"none"}"#)));
    assert_eq!(
        jws(&unsecured, a1_key(), hs256_allowed()).map(|_| ()),
        Err(JoseError::AlgNone)
    );
    let issuer = TrustedIssuer::new("joe", KeySet::new([a1_key()]).unwrap(), hs256_allowed());
    let verifier = TokenVerifier::new(
        [issuer],
        Validation::access_token("api")
            .with_typ(None)
            .with_algorithms(hs256_allowed()),
    );
    assert_eq!(
        verifier.verify(&unsecured, 1_300_000_000).map(|_| ()),
        Err(JoseError::AlgNone)
    );
}

#[test]
fn rfc7515_appendix_e_crit_is_refused() {
    let header =
        br#"{"alg":"none","crit":["http://example.invalid/UNDEFINED"],"http://example.invalid/UNDEFINED":true}"#;
    let token = format!("{}.{}.", b64url(header), b64url(b"payload"));
    assert!(jws(&token, a1_key(), hs256_allowed()).is_err());
    assert_eq!(
        jws(&token, a1_key(), hs256_allowed()).map(|_| ()),
        Err(JoseError::AlgNone)
    );

    // The same `crit` on a properly signed EdDSA token.
    let (key, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let header =
        br#"{"alg":"EdDSA","crit":["http://example.invalid/UNDEFINED"],"http://example.invalid/UNDEFINED":true}"#;
    let token = sign_raw(&key, header, b"payload");
    let got = jws(&token, key.verifying_key().clone(), AlgorithmSet::asymmetric()).map(|_| ());
    assert!(
        matches!(got, Err(JoseError::UnsupportedCrit(ref c)) if c.starts_with("http://example.invalid/")),
        "{got:?}"
    );
}

#[test]
fn rfc7638_3_1_thumbprint() {
    // RFC 7517 App. A.1 RSA key (n and thumbprint checked against RFC 7638 §3.1).
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    let parsed = Jwk::from_object(obj(&jwk)).unwrap();
    assert_eq!(parsed.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    let key = parsed.to_verifying_key(None).unwrap();
    assert_eq!((key.alg(), key.kid()), (Algorithm::RS256, "2011-04-29"));
    // The thumbprint depends on the required members only.
    let mut bare = obj(&jwk).clone();
    bare.remove("alg");
    bare.remove("kid");
    assert_eq!(Jwk::from_object(&bare).unwrap().thumbprint(), parsed.thumbprint());
}
