//! Arbitrary bytes as a JWK Set: `JwkSet::parse` must never panic, and every
//! key it accepts must survive publication: `Jwk::from_verifying_key`, then
//! the emitted JSON parsed again (alone and in a set) yields the same key
//! with the same `kid`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_jose::{Jwk, JwkSet};

fuzz_target!(|data: &[u8]| {
    let Ok(set) = JwkSet::parse(data) else {
        return;
    };
    for key in set.keys() {
        let jwk = Jwk::from_verifying_key(key).expect("an imported key has a public JWK");
        let json = serde_json::to_vec(&jwk.to_json()).expect("JWK serialises");

        let again = Jwk::parse(&json)
            .and_then(|j| j.to_verifying_key(None))
            .unwrap_or_else(|e| panic!("published JWK does not re-import: {e}"));
        assert_eq!(again.kid(), key.kid(), "kid changed across publication");
        assert_eq!(again.alg(), key.alg(), "alg changed across publication");
        assert!(again == *key, "key material changed across publication");

        let doc = format!(r#"{{"keys":[{}]}}"#, String::from_utf8_lossy(&json));
        let reset = JwkSet::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("published set does not re-import: {e}"));
        let kids: Vec<&str> = reset.keys().iter().map(|k| k.kid()).collect();
        assert_eq!(kids, [key.kid()], "kid changed across set publication");
    }
});
