//! Helpers shared by the integration tests: locating the read-only test
//! data, decoding hex and base64url independently of the library under test,
//! building compact tokens by hand, and tallying vector outcomes so that a
//! test reports every mismatch at once and cannot pass vacuously.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fmt::{Debug, Display};
use std::path::PathBuf;

use serde_json::{Map, Value};
use warden_jose::SigningKey;

/// The third-party test vectors kept in the repository (`testdata/`, with their licences and sources in `testdata/README.md`).
pub const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

/// Absolute path of a file under the test data directory.
pub fn data_path(rel: &str) -> PathBuf {
    PathBuf::from(TESTDATA).join(rel)
}

/// Reads a test data file; a missing file fails the test loudly.
pub fn read_bytes(rel: &str) -> Vec<u8> {
    let path = data_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test data file {} is missing or unreadable ({e}); it belongs in the \
             repository's testdata/ directory",
            path.display()
        )
    })
}

/// Reads and parses a JSON test data file.
pub fn read_json(rel: &str) -> Value {
    let bytes = read_bytes(rel);
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{rel} is not valid JSON: {e}"))
}

/// Decodes lower- or upper-case hex.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex: {s}")))
        .collect()
}

const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const STD_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode_with(input: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Unpadded base64url (RFC 4648 §5), written here so that test inputs do not
/// depend on the encoder under test.
pub fn b64url(input: &[u8]) -> String {
    encode_with(input, URL_ALPHABET, false)
}

/// Padded standard base64 (RFC 4648 §4), for PEM text.
pub fn b64std(input: &[u8]) -> String {
    encode_with(input, STD_ALPHABET, true)
}

/// Decodes unpadded base64url written by the test data authors. Panics on
/// anything else: this is for trusted key material, not for token inputs.
pub fn b64url_decode(s: &str) -> Vec<u8> {
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for c in s.bytes() {
        let v = URL_ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("not base64url: {s}")) as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out
}

/// A JSON value as an object.
pub fn obj(v: &Value) -> &Map<String, Value> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {v}"))
}

/// A string member of a JSON object.
pub fn s<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected string member `{name}` in {v}"))
}

/// An array member of a JSON object.
pub fn arr<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    v.get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("expected array member `{name}`"))
}

/// The `tcId` of a Wycheproof test.
pub fn tc_id(t: &Value) -> u64 {
    t.get("tcId")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("test without integer tcId: {t}"))
}

/// Removes the private members of a JWK (RFC 7518 §6), leaving its public part.
pub fn public_part(jwk: &Map<String, Value>) -> Map<String, Value> {
    let mut out = jwk.clone();
    for m in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        out.remove(m);
    }
    out
}

/// The `alg` of a compact token's header, decoded leniently for bookkeeping.
pub fn header_alg(token: &str) -> Option<String> {
    let first = token.split('.').next()?;
    if first.is_empty() || !first.bytes().all(|c| URL_ALPHABET.contains(&c)) {
        return None;
    }
    let header: Value = serde_json::from_slice(&b64url_decode(first)).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// Joins already-encoded segments.
pub fn join(segments: &[&str]) -> String {
    segments.join(".")
}

/// Signs `h.p` (already-encoded segments, used verbatim) with `key`.
pub fn sign_segments(key: &SigningKey, h: &str, p: &str) -> String {
    let signing_input = format!("{h}.{p}");
    let sig = key.sign(signing_input.as_bytes()).expect("signing");
    format!("{signing_input}.{}", b64url(&sig))
}

/// Builds a compact JWS from raw header and payload bytes, signed by `key`
/// over exactly the bytes it emits.
pub fn sign_raw(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    sign_segments(key, &b64url(header), &b64url(payload))
}

/// Builds a compact JWS from JSON header and payload values, signed by `key`.
pub fn sign_json(key: &SigningKey, header: &Value, payload: &Value) -> String {
    sign_raw(
        key,
        &serde_json::to_vec(header).unwrap(),
        &serde_json::to_vec(payload).unwrap(),
    )
}

/// Counts vector outcomes and collects every mismatch.
#[derive(Default)]
pub struct Tally {
    name: String,
    checked: usize,
    accepted: usize,
    rejected: usize,
    failures: Vec<String>,
}

impl Tally {
    /// A tally for one vector file or topic.
    pub fn new(name: &str) -> Self {
        Tally {
            name: name.to_owned(),
            ..Tally::default()
        }
    }

    /// Records one case: `expect_ok` is the expected verdict, `actual` what
    /// the library did.
    pub fn check<T, E: Debug>(&mut self, id: impl Display, expect_ok: bool, actual: &Result<T, E>, note: &str) {
        self.checked += 1;
        match actual {
            Ok(_) => self.accepted += 1,
            Err(_) => self.rejected += 1,
        }
        match (expect_ok, actual) {
            (true, Err(e)) => self
                .failures
                .push(format!("{id}: expected accept, got Err({e:?}) [{note}]")),
            (false, Ok(_)) => self.failures.push(format!("{id}: expected reject, got Ok [{note}]")),
            _ => {}
        }
    }

    /// Records a failure found by a side check.
    pub fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    /// Cases checked so far.
    pub fn checked(&self) -> usize {
        self.checked
    }

    /// Panics listing every mismatch, then checks that exactly
    /// `expected_cases` cases were looked at.
    pub fn finish(self, expected_cases: usize) {
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} cases disagree with the expected verdict:\n  {}",
            self.name,
            self.failures.len(),
            self.checked,
            self.failures.join("\n  ")
        );
        assert_eq!(
            self.checked, expected_cases,
            "{}: number of cases checked (accepted {}, rejected {})",
            self.name, self.accepted, self.rejected
        );
    }
}
