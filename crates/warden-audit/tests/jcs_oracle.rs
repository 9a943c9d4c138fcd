//! Differential test of our RFC 8785 writer against `serde_json_canonicalizer`
//! (a dev-dependency only) on random JSON documents: strings over all of
//! Unicode including controls and astral characters (which sort differently
//! in UTF-16 and UTF-8), safe integers, finite doubles of any bit pattern,
//! and nested arrays and objects. Both must write the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use warden_audit::jcs::{self, MAX_SAFE_INTEGER};

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,6}",
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just('\u{1f600}'),
                Just('\u{fb33}'),
                Just('\u{e000}'),
                Just('\u{7f}'),
                (0u8..0x20u8).prop_map(char::from)
            ],
            0..5
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    let safe = MAX_SAFE_INTEGER as i64;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-safe..=safe).prop_map(|i| Value::Number(i.into())),
        any::<u64>().prop_filter_map("finite", |bits| Number::from_f64(f64::from_bits(bits))
            .map(Value::Number)),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        arb_string().prop_map(Value::String),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((arb_string(), inner), 0..8)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn same_bytes_as_the_oracle(value in arb_value()) {
        let ours = jcs::to_vec(&value).unwrap();
        let theirs = serde_json_canonicalizer::to_vec(&value).unwrap();
        prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
    }

    #[test]
    fn output_parses_back_to_the_same_value(value in arb_value()) {
        let ours = jcs::to_vec(&value).unwrap();
        let back: Value = serde_json::from_slice(&ours).unwrap();
        // Canonical form is a fixed point. (The oracle re-canonicalises: an
        // integral double above 2^53 parses back as an integer ours refuses.)
        prop_assert_eq!(serde_json_canonicalizer::to_vec(&back).unwrap(), ours);
    }
}
