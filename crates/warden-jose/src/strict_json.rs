//! Strict JSON for token segments and JWKs: the top level must be an
//! object, no object may repeat a member name (RFC 7515 §5.2 and RFC 8725
//! §3.1 let implementations reject duplicates; accepting them lets two
//! parsers disagree about what a token says), nesting is bounded, and
//! trailing bytes are rejected.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Deepest nesting of arrays and objects accepted in a token segment.
pub const MAX_DEPTH: usize = 20;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Not JSON, or not an object at the top level.
    Syntax(String),
    /// An object repeats this member.
    Duplicate(String),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Parses `bytes` as a JSON object under the strict rules.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let state = State::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed { state: &state }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match value {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(StrictJsonError::Syntax("top level is not an object".into())),
        Err(e) => match (state.duplicate.take(), state.too_deep.get()) {
            (Some(name), _) => Err(StrictJsonError::Duplicate(name)),
            (None, true) => Err(StrictJsonError::TooDeep),
            (None, false) => Err(StrictJsonError::Syntax(e.to_string())),
        },
    }
}

/// What the visitor found, reported beside serde's error. Depth is counted
/// here rather than by a pre-scan: serde_json's own recursion limit (128)
/// keeps the stack safe until the visitor refuses at [`MAX_DEPTH`].
#[derive(Default)]
struct State {
    duplicate: Cell<Option<String>>,
    depth: Cell<usize>,
    too_deep: Cell<bool>,
}

impl State {
    fn enter<E: de::Error>(&self) -> Result<(), E> {
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            self.too_deep.set(true);
            return Err(E::custom("nesting too deep"));
        }
        self.depth.set(depth);
        Ok(())
    }

    fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }
}

#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    state: &'a State,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.state.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        self.state.leave();
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        self.state.enter()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                self.state.duplicate.set(Some(key));
                return Err(de::Error::custom("duplicate member"));
            }
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        self.state.leave();
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_objects() {
        let map = parse_object(br#"{"a":1,"b":{"c":[1,2,{"d":null}]}}"#).unwrap();
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert_eq!(
            parse_object(br#"{"a":1,"a":2}"#),
            Err(StrictJsonError::Duplicate("a".into()))
        );
        assert_eq!(
            parse_object(br#"{"x":{"b":1,"b":1}}"#),
            Err(StrictJsonError::Duplicate("b".into()))
        );
        assert_eq!(
            parse_object(br#"{"x":[{"c":1,"c":1}]}"#),
            Err(StrictJsonError::Duplicate("c".into()))
        );
        // Escapes that decode to the same name are duplicates too.
        assert_eq!(
            parse_object(br#"{"alg":1,"\u0061lg":2}"#),
            Err(StrictJsonError::Duplicate("alg".into()))
        );
    }

    #[test]
    fn rejects_non_objects_and_trailing_bytes() {
        assert!(matches!(parse_object(b"[1]"), Err(StrictJsonError::Syntax(_))));
        assert!(matches!(parse_object(b"\"a\""), Err(StrictJsonError::Syntax(_))));
        assert!(matches!(parse_object(b"{} {}"), Err(StrictJsonError::Syntax(_))));
        assert!(matches!(parse_object(b"{}x"), Err(StrictJsonError::Syntax(_))));
        assert!(matches!(parse_object(b""), Err(StrictJsonError::Syntax(_))));
        assert!(matches!(
            parse_object(br#"{"a":"\ud800"}"#),
            Err(StrictJsonError::Syntax(_))
        ));
    }

    #[test]
    fn rejects_deep_nesting() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_object(deep.as_bytes()), Err(StrictJsonError::TooDeep));
        let brackets_in_strings = format!("{{\"a\":\"{}\"}}", "[".repeat(100));
        assert!(parse_object(brackets_in_strings.as_bytes()).is_ok());
    }
}
