//! Hand-written attacks against [`TokenVerifier`] with
//! [`Validation::access_token`]: every malicious token is built by hand
//! (base64url of the exact JSON wanted) and, where the attack needs it,
//! carries a *valid* signature by a trusted key, so each test shows that the
//! rule rejected the token, not a bad signature. Each case asserts the
//! specific [`JoseError`] variant.
//!
//! Covered: `alg: none` in every spelling; RS256→HS256 key confusion; a key
//! of another algorithm picked via `kid`; embedded `jwk`/`jku`/`x5u`/`x5c`;
//! `crit`; `b64: false`; duplicate JSON members (plain and escaped) in header
//! and payload; non-canonical base64url in each segment (padding, `+`/`/`,
//! trailing bits, whitespace); oversize tokens; deep nesting; psychic ECDSA
//! signatures; malformed NumericDates; `iss`/`aud`/`typ` mismatches; missing
//! `jti`/`sub`/`iat`; time rules and leeway bounds; JWE and nested tokens;
//! a token signed by an untrusted key under a trusted `kid`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::sync::LazyLock;

use serde_json::{Value, json};
use support::{b64std, b64url, b64url_decode, sign_json, sign_raw, sign_segments};
use warden_jose::danger::{self, HmacKey};
use warden_jose::strict_json::MAX_DEPTH;
use warden_jose::{
    Algorithm, AlgorithmSet, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, JoseError, Jwk, KeySet, MAX_LEEWAY,
    MAX_NUMERIC_DATE, Segment, SigningKey, TokenVerifier, TrustedIssuer, Validation, VerifiedTokenCache, VerifyingKey,
    verify_jws,
};

const ISS: &str = "https://issuer.example";
const AUD: &str = "inference";
const NOW: u64 = 1_800_000_000;

/// Asserts that `$e` matches `$p`, printing the outcome otherwise.
macro_rules! assert_rejects {
    ($e:expr, $p:pat $(if $g:expr)?) => {{
        let outcome = $e;
        assert!(
            matches!(outcome, Err($p) $(if $g)?),
            "{}: expected Err({}), got {:?}",
            stringify!($e),
            stringify!($p),
            outcome
        );
    }};
}

struct Keys {
    ed: SigningKey,
    es256: SigningKey,
    es384: SigningKey,
    rs: SigningKey,
    /// The RS256 key's private half, also usable as a PS256 signer.
    rs_pkcs8: Vec<u8>,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let (rs, pkcs8) = SigningKey::generate(Algorithm::RS256).unwrap();
    Keys {
        ed: SigningKey::generate(Algorithm::EdDSA).unwrap().0,
        es256: SigningKey::generate(Algorithm::ES256).unwrap().0,
        es384: SigningKey::generate(Algorithm::ES384).unwrap().0,
        rs,
        rs_pkcs8: pkcs8.to_vec(),
    }
});

fn keys() -> &'static Keys {
    &KEYS
}

fn trusted_keys() -> Vec<VerifyingKey> {
    let k = keys();
    [&k.ed, &k.es256, &k.es384, &k.rs]
        .into_iter()
        .map(|s| s.verifying_key().clone())
        .collect()
}

fn hs256_allowed() -> AlgorithmSet {
    let mut algs = AlgorithmSet::asymmetric();
    algs.insert(Algorithm::HS256);
    algs
}

/// The verifier under attack: one trusted issuer with every test key.
fn verifier() -> TokenVerifier {
    verifier_with(Validation::access_token(AUD))
}

fn verifier_with(validation: Validation) -> TokenVerifier {
    let issuer = TrustedIssuer::new(ISS, KeySet::new(trusted_keys()).unwrap(), AlgorithmSet::asymmetric());
    TokenVerifier::new([issuer], validation)
}

fn verify(token: &str) -> Result<(), JoseError> {
    verifier().verify(token, NOW).map(|_| ())
}

/// The header Warden writes for `key`.
fn header(key: &SigningKey) -> Value {
    json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": "at+jwt"})
}

/// Valid access-token claims at `NOW`.
fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "user:alice", "aud": [AUD],
        "exp": NOW + 300, "iat": NOW, "nbf": NOW,
        "jti": "jti-1", "client_id": "cli", "scope": "inference.invoke"
    })
}

fn with(mut v: Value, name: &str, value: Value) -> Value {
    v[name] = value;
    v
}

fn without(mut v: Value, name: &str) -> Value {
    v.as_object_mut().unwrap().remove(name);
    v
}

/// Raw JSON text of the valid claims with `name` set to the raw JSON `raw`
/// (which may be something serde_json cannot represent, like `1e400`).
fn claims_text_with(name: &str, raw: &str) -> String {
    let mut members: Vec<(String, String)> = claims()
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    match members.iter_mut().find(|(k, _)| k == name) {
        Some(m) => m.1 = raw.to_owned(),
        None => members.push((name.to_owned(), raw.to_owned())),
    }
    let body: Vec<String> = members.iter().map(|(k, v)| format!("{}:{v}", json!(k))).collect();
    format!("{{{}}}", body.join(","))
}

fn ed_token(header: &Value, payload: &Value) -> String {
    sign_json(&keys().ed, header, payload)
}

#[test]
fn control_hand_built_tokens_verify() {
    let k = keys();
    for key in [&k.ed, &k.es256, &k.es384, &k.rs] {
        let token = sign_json(key, &header(key), &claims());
        let verified = verifier().verify(&token, NOW).unwrap();
        assert_eq!(verified.claims().sub(), Some("user:alice"));
        assert_eq!(verified.header().alg(), key.alg());
    }
    // The raw-text claims builder produces the same valid token.
    let text = claims_text_with("jti", "\"jti-1\"");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), claims());
    let token = sign_raw(&k.ed, &serde_json::to_vec(&header(&k.ed)).unwrap(), text.as_bytes());
    assert_eq!(verify(&token), Ok(()));
}

#[test]
fn alg_none_in_every_spelling() {
    let k = keys();
    for name in ["none", "None", "NONE", "nOnE", "NoNe"] {
        for h in [
            json!({"alg": name, "typ": "at+jwt"}),
            json!({"alg": name, "kid": k.ed.kid(), "typ": "at+jwt"}),
        ] {
            let hp = format!(
                "{}.{}",
                b64url(h.to_string().as_bytes()),
                b64url(claims().to_string().as_bytes())
            );
            let unsigned = format!("{hp}.");
            let with_sig = format!("{hp}.{}", b64url(&k.ed.sign(hp.as_bytes()).unwrap()));
            for token in [&unsigned, &with_sig] {
                assert_eq!(verify(token), Err(JoseError::AlgNone), "{name}: {token}");
                let all = verifier_with(Validation::access_token(AUD).with_algorithms(hs256_allowed()));
                assert_eq!(all.verify(token, NOW).map(|_| ()), Err(JoseError::AlgNone));
                assert_rejects!(
                    verify_jws(
                        token,
                        &KeySet::new(trusted_keys()).unwrap(),
                        hs256_allowed(),
                        DEFAULT_MAX_TOKEN_BYTES
                    ),
                    JoseError::AlgNone
                );
            }
        }
    }
}

/// Minimal DER for an RSA public key, to build the "public key as HMAC
/// secret" variants an attacker would try.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(bytes);
    der(0x02, &v)
}

fn rsa_public_key_encodings(key: &VerifyingKey) -> Vec<(&'static str, Vec<u8>)> {
    let jwk = Jwk::from_verifying_key(key).unwrap().to_json();
    let n = b64url_decode(jwk["n"].as_str().unwrap());
    let e = b64url_decode(jwk["e"].as_str().unwrap());
    let pkcs1 = der(0x30, &[der_uint(&n), der_uint(&e)].concat());
    let rsa_oid = hex_bytes("2a864886f70d010101");
    let algid = der(0x30, &[der(0x06, &rsa_oid), vec![0x05, 0x00]].concat());
    let spki = der(0x30, &[algid, der(0x03, &[&[0u8][..], &pkcs1].concat())].concat());
    let body = b64std(&spki);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    );
    let pkcs1_pem = format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        b64std(&pkcs1)
    );
    vec![
        ("modulus", n),
        ("pkcs1 der", pkcs1),
        ("spki der", spki),
        ("spki pem", pem.into_bytes()),
        ("pkcs1 pem", pkcs1_pem.into_bytes()),
        ("jwk json", serde_json::to_vec(&jwk).unwrap()),
    ]
}

fn hex_bytes(s: &str) -> Vec<u8> {
    support::hex(s)
}

#[test]
fn rs256_to_hs256_confusion() {
    let k = keys();
    let rsa = k.rs.verifying_key();
    let rsa_only = || KeySet::new([rsa.clone()]).unwrap();
    for (what, secret) in rsa_public_key_encodings(rsa) {
        let signer = danger::hs256_signing_key(k.rs.kid(), HmacKey::new(&secret).unwrap());
        let h = json!({"alg": "HS256", "kid": k.rs.kid(), "typ": "at+jwt"});
        let token = sign_json(&signer, &h, &claims());

        // Default allow-list: HS256 is not even considered.
        assert_eq!(
            verify(&token),
            Err(JoseError::AlgNotAllowed(Algorithm::HS256)),
            "{what}"
        );

        // HS256 allowed by the validation but not for this issuer.
        let v = verifier_with(Validation::access_token(AUD).with_algorithms(hs256_allowed()));
        assert_eq!(
            v.verify(&token, NOW).map(|_| ()),
            Err(JoseError::AlgNotAllowed(Algorithm::HS256)),
            "{what}"
        );

        // HS256 allowed everywhere: the RSA key is bound to RS256 and is never an HMAC secret.
        let issuer = TrustedIssuer::new(ISS, rsa_only(), hs256_allowed());
        let v = TokenVerifier::new([issuer], Validation::access_token(AUD).with_algorithms(hs256_allowed()));
        assert_eq!(
            v.verify(&token, NOW).map(|_| ()),
            Err(JoseError::KeyAlgMismatch {
                key: Algorithm::RS256,
                token: Algorithm::HS256
            }),
            "{what}"
        );
        assert_rejects!(
            verify_jws(&token, &rsa_only(), hs256_allowed(), DEFAULT_MAX_TOKEN_BYTES),
            JoseError::KeyAlgMismatch {
                key: Algorithm::RS256,
                token: Algorithm::HS256
            }
        );
    }
}

#[test]
fn kid_naming_a_key_of_another_algorithm() {
    let k = keys();
    // Token says EdDSA (validly signed by the Ed25519 key) but names the ES256 key.
    let h = json!({"alg": "EdDSA", "kid": k.es256.kid(), "typ": "at+jwt"});
    assert_eq!(
        verify(&ed_token(&h, &claims())),
        Err(JoseError::KeyAlgMismatch {
            key: Algorithm::ES256,
            token: Algorithm::EdDSA
        })
    );
    // ES384 signature under the ES256 key's kid.
    let h = json!({"alg": "ES384", "kid": k.es256.kid(), "typ": "at+jwt"});
    assert_eq!(
        verify(&sign_json(&k.es384, &h, &claims())),
        Err(JoseError::KeyAlgMismatch {
            key: Algorithm::ES256,
            token: Algorithm::ES384
        })
    );
    // A *valid* PS256 signature by the RSA key, whose JWK binds it to RS256.
    let ps = SigningKey::from_pkcs8(Algorithm::PS256, &k.rs_pkcs8).unwrap();
    assert_eq!(ps.kid(), k.rs.kid(), "same key material, same thumbprint");
    let h = json!({"alg": "PS256", "kid": k.rs.kid(), "typ": "at+jwt"});
    let token = sign_json(&ps, &h, &claims());
    assert_eq!(
        verify(&token),
        Err(JoseError::KeyAlgMismatch {
            key: Algorithm::RS256,
            token: Algorithm::PS256
        })
    );
    // Control: the same token verifies for an issuer whose key is bound to PS256.
    let issuer = TrustedIssuer::new(
        ISS,
        KeySet::new([ps.verifying_key().clone()]).unwrap(),
        AlgorithmSet::asymmetric(),
    );
    let v = TokenVerifier::new([issuer], Validation::access_token(AUD));
    assert!(v.verify(&token, NOW).is_ok());
}

#[test]
fn embedded_keys_and_key_urls() {
    let k = keys();
    let right_jwk = Jwk::from_verifying_key(k.ed.verifying_key()).unwrap().to_json();
    let cases = [
        ("jwk", right_jwk.clone()),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIBszCCAVmgAwIBAgIUQ0FBQUFBQUFBQUFBQUFBQUFBQUE="])),
    ];
    for (member, value) in cases {
        let mut h = header(&k.ed);
        h[member] = value.clone();
        let token = ed_token(&h, &claims());
        assert_eq!(verify(&token), Err(JoseError::EmbeddedKey(member)), "{member}");
        // Also without a kid, where a naive verifier would fall back to the embedded key.
        let h = without(h, "kid");
        assert_eq!(
            verify(&ed_token(&h, &claims())),
            Err(JoseError::EmbeddedKey(member)),
            "{member}"
        );
    }
    // An embedded key of the attacker's own, with a matching signature.
    let (attacker, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let mut h = json!({"alg": "EdDSA", "typ": "at+jwt"});
    h["jwk"] = Jwk::from_verifying_key(attacker.verifying_key()).unwrap().to_json();
    assert_eq!(
        verify(&sign_json(&attacker, &h, &claims())),
        Err(JoseError::EmbeddedKey("jwk"))
    );
}

#[test]
fn crit_and_unencoded_payloads() {
    let k = keys();
    let h = with(with(header(&k.ed), "crit", json!(["exp"])), "exp", json!(NOW + 300));
    assert_eq!(
        verify(&ed_token(&h, &claims())),
        Err(JoseError::UnsupportedCrit("exp".into()))
    );
    let h = with(with(header(&k.ed), "crit", json!(["b64"])), "b64", json!(false));
    assert_eq!(
        verify(&ed_token(&h, &claims())),
        Err(JoseError::UnsupportedCrit("b64".into()))
    );
    let h = with(with(header(&k.ed), "crit", json!(["b64"])), "b64", json!(true));
    assert_eq!(
        verify(&ed_token(&h, &claims())),
        Err(JoseError::UnsupportedCrit("b64".into()))
    );
    for bad in [json!([]), json!("exp"), json!([5]), json!(null)] {
        let h = with(header(&k.ed), "crit", bad.clone());
        assert_eq!(
            verify(&ed_token(&h, &claims())),
            Err(JoseError::InvalidHeader("crit")),
            "{bad}"
        );
    }
    // b64 other than true, with or without crit.
    for b64 in [json!(false), json!("false"), json!(0), json!(null)] {
        let h = with(header(&k.ed), "b64", b64.clone());
        assert_eq!(
            verify(&ed_token(&h, &claims())),
            Err(JoseError::UnencodedPayload),
            "{b64}"
        );
    }
    // `b64: true` is the default encoding and changes nothing.
    let h = with(header(&k.ed), "b64", json!(true));
    assert_eq!(verify(&ed_token(&h, &claims())), Ok(()));
}

#[test]
fn duplicate_members_in_header_and_payload() {
    let k = keys();
    let kid = k.ed.kid();
    let claims_text = claims().to_string();
    let headers = [
        (
            format!(r#"{{"alg":"EdDSA","alg":"none","kid":"{kid}","typ":"at+jwt"}}"#),
            "alg",
        ),
        (
            format!(r#"{{"alg":"none","alg":"EdDSA","kid":"{kid}","typ":"at+jwt"}}"#),
            "alg",
        ),
        (
            format!(r#"{{"alg":"EdDSA","\u0061lg":"HS256","kid":"{kid}","typ":"at+jwt"}}"#),
            "alg",
        ),
        (
            format!(r#"{{"alg":"EdDSA","kid":"{kid}","kid":"other","typ":"at+jwt"}}"#),
            "kid",
        ),
        (
            format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"at+jwt","typ":"JWT"}}"#),
            "typ",
        ),
        (
            format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"at+jwt","t\u0079p":"at+jwt"}}"#),
            "typ",
        ),
    ];
    for (h, name) in headers {
        let token = sign_raw(&k.ed, h.as_bytes(), claims_text.as_bytes());
        assert_eq!(
            verify(&token),
            Err(JoseError::DuplicateMember {
                segment: Segment::Header,
                name: name.into()
            }),
            "{h}"
        );
    }
    let header_text = header(&k.ed).to_string();
    let body = claims_text.trim_end_matches('}');
    let payloads = [
        (format!(r#"{body},"sub":"user:admin"}}"#), "sub"),
        (format!(r#"{body},"s\u0075b":"user:admin"}}"#), "sub"),
        (format!(r#"{body},"iss":"https://evil.example"}}"#), "iss"),
        (format!(r#"{body},"aud":"other"}}"#), "aud"),
        (format!(r#"{body},"exp":{}}}"#, NOW + 100_000), "exp"),
        (format!(r#"{body},"act":{{"sub":"agent:a","sub":"agent:b"}}}}"#), "sub"),
    ];
    for (p, name) in payloads {
        let token = sign_raw(&k.ed, header_text.as_bytes(), p.as_bytes());
        assert_eq!(
            verify(&token),
            Err(JoseError::DuplicateMember {
                segment: Segment::Payload,
                name: name.into()
            }),
            "{p}"
        );
    }
}

/// A valid token whose header and payload segments have a length that is
/// not a multiple of 4 and contain `-` or `_`, and whose signature contains
/// `-` or `_`, so that every non-canonical variant below is meaningful.
fn canonical_parts() -> (String, String, String) {
    let k = keys();
    let usable = |seg: &str| !seg.len().is_multiple_of(4) && seg.contains(['-', '_']);
    // Three `?` (0x3f) in a row: one is the last byte of a triplet, which encodes as `_`.
    let h = (0..100)
        .map(|i| {
            b64url(
                with(header(&k.ed), "n", json!(format!("{}???", "x".repeat(i))))
                    .to_string()
                    .as_bytes(),
            )
        })
        .find(|h| usable(h))
        .expect("a header with - or _");
    for i in 0..1_000 {
        let p = b64url(
            with(claims(), "jti", json!(format!("jti-{i}???")))
                .to_string()
                .as_bytes(),
        );
        if !usable(&p) {
            continue;
        }
        let token = sign_segments(&k.ed, &h, &p);
        let sig = token.rsplit('.').next().unwrap().to_owned();
        if sig.contains(['-', '_']) && !sig.len().is_multiple_of(4) {
            assert_eq!(verify(&token), Ok(()));
            return (h, p, sig);
        }
    }
    panic!("no usable payload found");
}

/// Non-canonical spellings of a base64url segment that a lenient decoder
/// maps to the same (or nearly the same) bytes.
fn non_canonical_variants(seg: &str) -> Vec<(&'static str, String)> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pad = "=".repeat((4 - seg.len() % 4) % 4);
    let last = *seg.as_bytes().last().unwrap();
    let value = ALPHABET.iter().position(|c| *c == last).unwrap();
    // Canonical encodings have zero unused low bits; set the lowest one.
    let trailing = format!("{}{}", &seg[..seg.len() - 1], char::from(ALPHABET[value ^ 1]));
    let mid = seg.len() / 2;
    vec![
        ("padding", format!("{seg}{pad}")),
        ("double padding", format!("{seg}{pad}==")),
        ("standard alphabet", seg.replace('-', "+").replace('_', "/")),
        ("trailing bits", trailing),
        ("inner space", format!("{} {}", &seg[..mid], &seg[mid..])),
        ("trailing newline", format!("{seg}\n")),
        ("leading tab", format!("\t{seg}")),
        ("CRLF", format!("{}\r\n{}", &seg[..mid], &seg[mid..])),
    ]
}

#[test]
fn non_canonical_base64url_in_each_segment() {
    let k = keys();
    let (h, p, sig) = canonical_parts();
    for (what, bad_h) in non_canonical_variants(&h) {
        // Re-signed over the exact bytes sent: only the encoding rule can refuse it.
        let token = sign_segments(&k.ed, &bad_h, &p);
        assert_eq!(
            verify(&token),
            Err(JoseError::InvalidBase64(Segment::Header)),
            "header {what}"
        );
    }
    for (what, bad_p) in non_canonical_variants(&p) {
        let token = sign_segments(&k.ed, &h, &bad_p);
        assert_eq!(
            verify(&token),
            Err(JoseError::InvalidBase64(Segment::Payload)),
            "payload {what}"
        );
    }
    for (what, bad_s) in non_canonical_variants(&sig) {
        let token = format!("{h}.{p}.{bad_s}");
        assert_eq!(
            verify(&token),
            Err(JoseError::InvalidBase64(Segment::Signature)),
            "signature {what}"
        );
    }
}

#[test]
fn oversize_tokens_are_refused_before_parsing() {
    let k = keys();
    let max = DEFAULT_MAX_TOKEN_BYTES;
    assert_eq!(max, 8 * 1024);
    // Not even a JWS: the size rule must fire first.
    for junk in ["a".repeat(max + 1), ".".repeat(max + 1), "\u{0}".repeat(max + 1)] {
        assert_eq!(verify(&junk), Err(JoseError::TokenTooLarge { len: max + 1, max }));
    }
    assert!(
        matches!(verify(&"a".repeat(max)), Err(JoseError::Malformed(_))),
        "exactly 8 KiB is parsed"
    );

    // A validly signed token just over the cap.
    let mut filler = String::new();
    let token = loop {
        let t = ed_token(&header(&k.ed), &with(claims(), "filler", json!(filler)));
        if t.len() > max {
            break t;
        }
        filler.push('x');
    };
    // base64url grows by one or two characters per byte: at most 2 over.
    assert!(token.len() <= max + 2, "just over the cap: {}", token.len());
    assert_eq!(verify(&token), Err(JoseError::TokenTooLarge { len: token.len(), max }));
    let roomy = verifier_with(Validation::access_token(AUD).with_max_token_bytes(2 * max));
    assert!(roomy.verify(&token, NOW).is_ok(), "only the size rule refused it");
    assert_rejects!(
        verify_jws(
            &token,
            &KeySet::new(trusted_keys()).unwrap(),
            AlgorithmSet::asymmetric(),
            max
        ),
        JoseError::TokenTooLarge { .. }
    );
    let cache = VerifiedTokenCache::new(verifier(), 16);
    assert_rejects!(cache.verify(&token, NOW), JoseError::TokenTooLarge { .. });
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn deep_nesting() {
    let k = keys();
    let h = header(&k.ed).to_string();
    // The claims object is one level; `x` adds `depth` more.
    let at_limit = claims_text_with("x", &nested(MAX_DEPTH - 1));
    assert_eq!(verify(&sign_raw(&k.ed, h.as_bytes(), at_limit.as_bytes())), Ok(()));
    for depth in [MAX_DEPTH, 100, 2000] {
        let p = claims_text_with("x", &nested(depth));
        assert_eq!(
            verify(&sign_raw(&k.ed, h.as_bytes(), p.as_bytes())),
            Err(JoseError::NestingTooDeep(Segment::Payload)),
            "depth {depth}"
        );
    }
    let deep_header = format!(
        r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt","x":{}}}"#,
        k.ed.kid(),
        nested(200)
    );
    assert_eq!(
        verify(&sign_raw(
            &k.ed,
            deep_header.as_bytes(),
            claims().to_string().as_bytes()
        )),
        Err(JoseError::NestingTooDeep(Segment::Header))
    );
    // Brackets inside strings are not nesting.
    let p = claims_text_with("x", &json!("[".repeat(500)).to_string());
    assert_eq!(verify(&sign_raw(&k.ed, h.as_bytes(), p.as_bytes())), Ok(()));
}

#[test]
fn psychic_and_malformed_ecdsa_signatures() {
    let k = keys();
    let p256_n = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let p384_n =
        hex_bytes("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973");
    for (key, n) in [(&k.es256, p256_n), (&k.es384, p384_n)] {
        let size = n.len();
        let hp = format!(
            "{}.{}",
            b64url(header(key).to_string().as_bytes()),
            b64url(claims().to_string().as_bytes())
        );
        let genuine = key.sign(hp.as_bytes()).unwrap();
        assert_eq!(verify(&format!("{hp}.{}", b64url(&genuine))), Ok(()), "control");
        let (r, s) = genuine.split_at(size);
        let one = {
            let mut v = vec![0u8; size];
            v[size - 1] = 1;
            v
        };
        let zero = vec![0u8; size];
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("r = s = 0", [zero.clone(), zero.clone()].concat()),
            ("r = s = n", [n.clone(), n.clone()].concat()),
            ("r = 0, genuine s", [zero.clone(), s.to_vec()].concat()),
            ("genuine r, s = 0", [r.to_vec(), zero.clone()].concat()),
            ("genuine r, s = n", [r.to_vec(), n.clone()].concat()),
            ("r = s = 1", [one.clone(), one.clone()].concat()),
            ("r = n, s = 1", [n.clone(), one.clone()].concat()),
            ("truncated", genuine[..2 * size - 1].to_vec()),
            ("extended", [genuine.clone(), vec![0]].concat()),
            ("one byte", vec![0]),
        ];
        for (what, sig) in bad {
            let token = format!("{hp}.{}", b64url(&sig));
            assert_eq!(verify(&token), Err(JoseError::InvalidSignature), "{} {what}", key.alg());
        }
        // An empty signature segment.
        assert_eq!(verify(&format!("{hp}.")), Err(JoseError::InvalidSignature));
    }
}

#[test]
fn malformed_numeric_dates() {
    let k = keys();
    let h = header(&k.ed).to_string();
    let bad = [
        "\"1800000000\"",
        "1800000000.5",
        "1800000000.0",
        "1.0",
        "1e9",
        "1E9",
        "true",
        "null",
        "-1",
        "-1800000000",
        "253402300800",
        "18446744073709551615",
        "18446744073709551616",
        "[1800000000]",
        "{\"t\":1800000000}",
    ];
    for claim in ["exp", "nbf", "iat"] {
        for raw in bad {
            let token = sign_raw(&k.ed, h.as_bytes(), claims_text_with(claim, raw).as_bytes());
            assert_rejects!(verify(&token), JoseError::InvalidClaim { claim: c, .. } if c == claim);
        }
        // 1e400 does not fit an f64: the payload is refused as JSON.
        let token = sign_raw(&k.ed, h.as_bytes(), claims_text_with(claim, "1e400").as_bytes());
        assert_rejects!(
            verify(&token),
            JoseError::InvalidJson {
                segment: Segment::Payload,
                ..
            }
        );
    }
    // The bounds themselves.
    assert_eq!(MAX_NUMERIC_DATE, 253_402_300_799);
    let far = with(claims(), "exp", json!(MAX_NUMERIC_DATE));
    assert_eq!(verify(&ed_token(&header(&k.ed), &far)), Ok(()));
    let zero = with(with(claims(), "nbf", json!(0)), "iat", json!(0));
    assert_eq!(verify(&ed_token(&header(&k.ed), &zero)), Ok(()));
}

#[test]
fn issuer_audience_and_type_mismatches() {
    let k = keys();
    let h = header(&k.ed);
    let token = |c: Value| ed_token(&h, &c);
    for iss in [
        "https://evil.example",
        "https://issuer.example/",
        "HTTPS://issuer.example",
        "",
    ] {
        assert_eq!(
            verify(&token(with(claims(), "iss", json!(iss)))),
            Err(JoseError::UntrustedIssuer),
            "{iss}"
        );
    }
    assert_rejects!(
        verify(&token(with(claims(), "iss", json!(42)))),
        JoseError::InvalidClaim { claim: "iss", .. }
    );
    assert_rejects!(
        verify(&token(with(claims(), "iss", json!([ISS])))),
        JoseError::InvalidClaim { claim: "iss", .. }
    );
    assert_eq!(
        verify(&token(without(claims(), "iss"))),
        Err(JoseError::MissingClaim("iss"))
    );

    for aud in [
        json!(["other", "another"]),
        json!("other"),
        json!("Inference"),
        json!(["inference "]),
    ] {
        assert_eq!(
            verify(&token(with(claims(), "aud", aud.clone()))),
            Err(JoseError::AudienceMismatch),
            "{aud}"
        );
    }
    for aud in [json!([]), json!([AUD, 5]), json!(5), json!({"aud": AUD})] {
        assert_rejects!(
            verify(&token(with(claims(), "aud", aud.clone()))),
            JoseError::InvalidClaim { claim: "aud", .. }
        );
    }
    assert_eq!(
        verify(&token(without(claims(), "aud"))),
        Err(JoseError::MissingClaim("aud"))
    );
    assert_eq!(
        verify(&token(with(claims(), "aud", json!(AUD)))),
        Ok(()),
        "a single string audience"
    );
    assert_eq!(verify(&token(with(claims(), "aud", json!(["other", AUD])))), Ok(()));

    let typed = |typ: Option<Value>| {
        let mut h = header(&k.ed);
        match typ {
            Some(t) => h["typ"] = t,
            None => {
                h.as_object_mut().unwrap().remove("typ");
            }
        }
        ed_token(&h, &claims())
    };
    for typ in [
        "JWT",
        "at+jwt ",
        " at+jwt",
        "jwt",
        "application/jwt",
        "at+jwt;q=1",
        "application/at+jwt+x",
    ] {
        assert_rejects!(verify(&typed(Some(json!(typ)))), JoseError::WrongTyp { .. });
    }
    // Media types compare case-insensitively (RFC 7515 §4.1.9).
    for typ in ["at+JWT", "AT+JWT", "Application/At+Jwt"] {
        assert_eq!(verify(&typed(Some(json!(typ)))), Ok(()), "{typ}");
    }
    assert_rejects!(verify(&typed(None)), JoseError::MissingTyp { .. });
    assert_eq!(verify(&typed(Some(json!(5)))), Err(JoseError::InvalidHeader("typ")));
    assert_eq!(verify(&typed(Some(json!("application/at+jwt")))), Ok(()));
}

#[test]
fn required_claims() {
    let k = keys();
    let token = |c: Value| ed_token(&header(&k.ed), &c);
    for name in ["jti", "sub", "iat"] {
        assert_eq!(
            verify(&token(without(claims(), name))),
            Err(JoseError::MissingClaim(name)),
            "{name}"
        );
    }
    for name in ["jti", "sub"] {
        assert_eq!(
            verify(&token(with(claims(), name, json!("")))),
            Err(JoseError::MissingClaim(name)),
            "{name}"
        );
        assert_rejects!(verify(&token(with(claims(), name, json!(5)))), JoseError::InvalidClaim { claim: c, .. } if c == name);
    }
    assert_eq!(
        verify(&token(without(claims(), "exp"))),
        Err(JoseError::MissingClaim("exp"))
    );
    // Only the access-token profile requires them.
    let lax = verifier_with(Validation::access_token(AUD).with_required(false, false, false));
    let bare = without(without(without(claims(), "jti"), "sub"), "iat");
    assert!(lax.verify(&token(bare), NOW).is_ok());
}

#[test]
fn time_rules_and_leeway() {
    let k = keys();
    let at = |c: Value, v: &TokenVerifier| v.verify(&ed_token(&header(&k.ed), &c), NOW).map(|_| ());
    let default = verifier();
    assert_eq!(DEFAULT_LEEWAY, 30);
    assert_eq!(default.validation().leeway(), 30);
    // exp: 29 s of skew tolerated, 30 and 31 not.
    assert_eq!(at(with(claims(), "exp", json!(NOW - 29)), &default), Ok(()));
    assert_eq!(
        at(with(claims(), "exp", json!(NOW - 30)), &default),
        Err(JoseError::Expired)
    );
    assert_eq!(
        at(with(claims(), "exp", json!(NOW - 31)), &default),
        Err(JoseError::Expired)
    );
    assert_eq!(
        at(with(claims(), "exp", json!(NOW - 100_000)), &default),
        Err(JoseError::Expired)
    );
    // nbf and iat in the future.
    assert_eq!(at(with(claims(), "nbf", json!(NOW + 29)), &default), Ok(()));
    assert_eq!(
        at(with(claims(), "nbf", json!(NOW + 31)), &default),
        Err(JoseError::NotYetValid)
    );
    assert_eq!(at(with(claims(), "iat", json!(NOW + 29)), &default), Ok(()));
    assert_eq!(
        at(with(claims(), "iat", json!(NOW + 31)), &default),
        Err(JoseError::IssuedInFuture)
    );

    // An explicit leeway of 30 behaves the same; 0 and 60 move the bounds.
    let v30 = verifier_with(Validation::access_token(AUD).with_leeway(30).unwrap());
    assert_eq!(at(with(claims(), "exp", json!(NOW - 29)), &v30), Ok(()));
    assert_eq!(
        at(with(claims(), "exp", json!(NOW - 31)), &v30),
        Err(JoseError::Expired)
    );
    let v0 = verifier_with(Validation::access_token(AUD).with_leeway(0).unwrap());
    assert_eq!(at(with(claims(), "exp", json!(NOW)), &v0), Err(JoseError::Expired));
    assert_eq!(at(with(claims(), "exp", json!(NOW + 1)), &v0), Ok(()));
    assert_eq!(
        at(with(claims(), "nbf", json!(NOW + 1)), &v0),
        Err(JoseError::NotYetValid)
    );
    assert_eq!(
        at(with(claims(), "iat", json!(NOW + 1)), &v0),
        Err(JoseError::IssuedInFuture)
    );
    let v60 = verifier_with(Validation::access_token(AUD).with_leeway(MAX_LEEWAY).unwrap());
    assert_eq!(at(with(claims(), "exp", json!(NOW - 59)), &v60), Ok(()));
    assert_eq!(
        at(with(claims(), "exp", json!(NOW - 61)), &v60),
        Err(JoseError::Expired)
    );

    // The leeway cap.
    assert_eq!(MAX_LEEWAY, 60);
    for too_much in [61, 3600, u64::MAX] {
        assert_eq!(
            Validation::access_token(AUD).with_leeway(too_much).map(|_| ()),
            Err(JoseError::LeewayTooLarge(too_much))
        );
    }
}

#[test]
fn jwe_and_nested_tokens() {
    let k = keys();
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64url(br#"{"alg":"RSA-OAEP","enc":"A256GCM","typ":"at+jwt"}"#),
        b64url(&[1; 256]),
        b64url(&[2; 12]),
        b64url(claims().to_string().as_bytes()),
        b64url(&[3; 16])
    );
    assert_rejects!(verify(&jwe), JoseError::Malformed(m) if m.contains("JWE"));
    for n in [1, 2, 4, 6] {
        let token = vec!["eyJhbGciOiJFZERTQSJ9"; n].join(".");
        assert_rejects!(verify(&token), JoseError::Malformed(_));
    }
    // Three segments but a JWE or nested-token header, validly signed.
    let cases = [
        ("enc", json!("A256GCM"), "enc"),
        ("zip", json!("DEF"), "zip"),
        ("cty", json!("JWT"), "cty"),
        ("cty", json!("jwt"), "cty"),
    ];
    for (member, value, reported) in cases {
        let h = with(header(&k.ed), member, value);
        assert_eq!(
            verify(&ed_token(&h, &claims())),
            Err(JoseError::NestedOrEncrypted(reported))
        );
    }
    // A JWS wrapped as the payload of another JWS is not a claims object.
    let inner = ed_token(&header(&k.ed), &claims());
    let outer = sign_raw(&k.ed, header(&k.ed).to_string().as_bytes(), inner.as_bytes());
    assert_rejects!(
        verify(&outer),
        JoseError::InvalidJson {
            segment: Segment::Payload,
            ..
        }
    );
}

#[test]
fn header_shape() {
    let k = keys();
    let p = claims().to_string();
    let raw = |h: &str| verify(&sign_raw(&k.ed, h.as_bytes(), p.as_bytes()));
    assert_eq!(raw(r#"{"kid":"x","typ":"at+jwt"}"#), Err(JoseError::MissingAlg));
    assert_eq!(raw(r#"{"alg":5,"typ":"at+jwt"}"#), Err(JoseError::MissingAlg));
    assert_eq!(raw(r#"{"alg":["EdDSA"],"typ":"at+jwt"}"#), Err(JoseError::MissingAlg));
    for alg in ["eddsa", "EdDSA ", "Ed25519", "ES512", "HS512", "RS384"] {
        let h = json!({"alg": alg, "typ": "at+jwt"}).to_string();
        assert_rejects!(raw(&h), JoseError::UnsupportedAlg(_));
    }
    assert_eq!(
        raw(&json!({"alg": "EdDSA", "kid": 7, "typ": "at+jwt"}).to_string()),
        Err(JoseError::InvalidHeader("kid"))
    );
    for not_object in ["[]", "\"EdDSA\"", "", "{} {}", "{\"alg\":\"EdDSA\"} x"] {
        assert_rejects!(
            raw(not_object),
            JoseError::InvalidJson {
                segment: Segment::Header,
                ..
            }
        );
    }
    let h = header(&k.ed).to_string();
    for not_object in ["[]", "42", "", "{}{}", "not json"] {
        let token = sign_raw(&k.ed, h.as_bytes(), not_object.as_bytes());
        assert_rejects!(
            verify(&token),
            JoseError::InvalidJson {
                segment: Segment::Payload,
                ..
            }
        );
    }
    // Allow-list on the verifier.
    let mut es_only = AlgorithmSet::EMPTY;
    es_only.insert(Algorithm::ES256);
    let v = verifier_with(Validation::access_token(AUD).with_algorithms(es_only));
    let token = ed_token(&header(&k.ed), &claims());
    assert_eq!(
        v.verify(&token, NOW).map(|_| ()),
        Err(JoseError::AlgNotAllowed(Algorithm::EdDSA))
    );
}

#[test]
fn untrusted_keys_and_kid_selection() {
    let k = keys();
    // An attacker's own keys, presented under the trusted kids.
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384] {
        let (attacker, _) = SigningKey::generate(alg).unwrap();
        let trusted = [&k.ed, &k.es256, &k.es384]
            .into_iter()
            .find(|t| t.alg() == alg)
            .unwrap();
        let h = json!({"alg": alg.as_str(), "kid": trusted.kid(), "typ": "at+jwt"});
        assert_eq!(
            verify(&sign_json(&attacker, &h, &claims())),
            Err(JoseError::InvalidSignature),
            "{alg}"
        );
        // Under its own kid it is simply unknown.
        assert_eq!(
            verify(&sign_json(&attacker, &header(&attacker), &claims())),
            Err(JoseError::UnknownKid)
        );
    }
    // No kid: refused when the issuer has several keys, accepted with one.
    let h = without(header(&k.ed), "kid");
    let token = ed_token(&h, &claims());
    assert_eq!(verify(&token), Err(JoseError::MissingKid));
    let single = TrustedIssuer::new(
        ISS,
        KeySet::new([k.ed.verifying_key().clone()]).unwrap(),
        AlgorithmSet::asymmetric(),
    );
    let v = TokenVerifier::new([single], Validation::access_token(AUD));
    assert!(v.verify(&token, NOW).is_ok());
    // A kid that is not a string.
    let h = with(header(&k.ed), "kid", json!(null));
    assert_eq!(verify(&ed_token(&h, &claims())), Err(JoseError::InvalidHeader("kid")));
    // Claims are not trusted before the signature: an untrusted signer cannot
    // get past the issuer's key even with perfect claims.
    let (attacker, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let h = json!({"alg": "EdDSA", "typ": "at+jwt"});
    assert_eq!(verify(&sign_json(&attacker, &h, &claims())), Err(JoseError::MissingKid));
    assert!(matches!(
        v.verify(&sign_json(&attacker, &h, &claims()), NOW),
        Err(JoseError::InvalidSignature)
    ));
}
