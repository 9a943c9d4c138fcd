//! Arbitrary bytes through the strict JSON parser: it must never panic, and
//! whatever it accepts serde_json must accept too, as the same object (the
//! strict parser only ever refuses more).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_jose::strict_json::parse_object;

fuzz_target!(|data: &[u8]| {
    let Ok(strict) = parse_object(data) else {
        return;
    };
    let plain: serde_json::Value =
        serde_json::from_slice(data).unwrap_or_else(|e| panic!("strict parser accepted what serde_json refuses: {e}"));
    assert_eq!(
        plain,
        serde_json::Value::Object(strict),
        "strict and plain parses differ"
    );
});
