//! Ed25519 point edge cases under Warden's strict policy (as ed25519-dalek
//! `verify_strict`): non-canonical and small-order encodings of `A` (the
//! public key) and `R` are refused, on top of RFC 8032's `S < L` and the
//! cofactorless equation. A key refused by [`VerifyingKey::ed25519`] counts
//! as a rejection.
//!
//! - C2SP CCTV `ed25519vectors.json`: every vector verifies under *some*
//!   rule; Warden must reject those flagged `low_order_A`, `low_order_R`,
//!   `non_canonical_A`, `non_canonical_R` or `low_order_residue` and accept
//!   the rest (including mixed-order points, `low_order_component_*`).
//! - ed25519-speccheck `cases.json`: only vector 3 verifies (the README's
//!   "Dalek strict" row).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use serde_json::Value;
use support::{Tally, hex, read_json, s};
use warden_jose::{Algorithm, JoseError, VerifyingKey};

const REJECT_FLAGS: [&str; 5] = [
    "low_order_A",
    "low_order_R",
    "non_canonical_A",
    "non_canonical_R",
    "low_order_residue",
];

fn verify(key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), JoseError> {
    VerifyingKey::ed25519("k", key)?.verify(Algorithm::EdDSA, msg, sig)
}

fn flags(v: &Value) -> Vec<&str> {
    v["flags"]
        .as_array()
        .map(|f| f.iter().map(|x| x.as_str().unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn cctv_ed25519_vectors_strict_policy() {
    let data = read_json("cctv-ed25519/ed25519/ed25519vectors.json");
    let vectors = data.as_array().expect("a list of vectors");
    let mut tally = Tally::new("CCTV ed25519vectors.json");
    let mut expected_accepts = 0;
    for v in vectors {
        let number = v["number"].as_u64().unwrap();
        let f = flags(v);
        let expect_ok = !f.iter().any(|flag| REJECT_FLAGS.contains(flag));
        expected_accepts += usize::from(expect_ok);
        // The message is the UTF-8 text itself, not hex.
        let got = verify(&hex(s(v, "key")), s(v, "msg").as_bytes(), &hex(s(v, "sig")));
        tally.check(format!("vector {number}"), expect_ok, &got, &format!("{f:?}"));

        // A low-order or non-canonical A must already be refused at import.
        if f.iter().any(|x| *x == "low_order_A" || *x == "non_canonical_A") {
            let import = VerifyingKey::ed25519("k", &hex(s(v, "key")));
            if !matches!(import, Err(JoseError::InvalidJwk(_))) {
                tally.fail(format!("vector {number}: small-order A imported ({f:?})"));
            }
        }
    }
    // Guard against a vacuous pass: 43 vectors (mixed-order points only) verify.
    assert_eq!(expected_accepts, 43, "vectors Warden must accept");
    tally.finish(914);
}

#[test]
fn speccheck_only_vector_3_verifies() {
    let data = read_json("ed25519-speccheck/cases.json");
    let cases = data.as_array().expect("a list of cases");
    let mut tally = Tally::new("ed25519-speccheck cases.json");
    for (i, case) in cases.iter().enumerate() {
        let got = verify(
            &hex(s(case, "pub_key")),
            &hex(s(case, "message")),
            &hex(s(case, "signature")),
        );
        tally.check(format!("vector {i}"), i == 3, &got, "Dalek strict row");
    }
    tally.finish(12);
}
