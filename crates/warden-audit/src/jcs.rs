//! RFC 8785 JSON Canonicalization Scheme (JCS) for event bodies.
//!
//! Written here, over `serde_json::Value`, rather than taken from a crate.
//! `serde_json_canonicalizer` 0.4 (the maintained candidate; `serde_jcs`
//! is older and has open reports of RFC deviations) passes the reference
//! vectors at the top level but, in this crate's tests, wrote `null` for a
//! NaN inside an array where §3.2.2.3 requires an error, and it re-parses
//! every member name to sort it: an access-decision body took about 9 µs
//! against 0.5 µs for plain `serde_json`, a whole core at the log's
//! 100,000 events/s budget. It stays as a dev-dependency oracle: a property
//! test compares both on random documents.
//!
//! The rules (§3.2): no whitespace; object members sorted by the UTF-16
//! code units of their names; strings escaped only where JSON must
//! (`"`, `\`, and U+0000..U+001F as `\b \t \n \f \r` or `\u00xx`);
//! numbers written as ECMAScript's `Number.prototype.toString` writes a
//! double. That last part is the hard one, and it is delegated to `ryu-js`
//! (an ECMAScript-compliant Ryū; RFC 8785 names Ryū as compatible); integers up
//! to 2^53 are written as their digits, which is what ECMAScript prints.
//!
//! Stricter than the RFC requires, as I-JSON (RFC 7493) advises: NaN and
//! infinities are refused wherever they occur, and so are integers beyond
//! ±(2^53 - 1), which a double would silently round so that two different
//! events could share a body.

use std::fmt;

use serde::Serialize;
use serde::ser;
use serde_json::Value;

use crate::error::AuditError;

/// The largest integer every JSON reader holds exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Serialises `value` in RFC 8785 canonical form.
///
/// Fails on maps with non-string keys, NaN or infinite floats, and integers
/// outside ±[`MAX_SAFE_INTEGER`].
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, AuditError> {
    // Checked before the conversion, which would turn NaN into `null`.
    value
        .serialize(NumberCheck)
        .map_err(|e| AuditError::Canonicalization(e.0))?;
    let tree = serde_json::to_value(value).map_err(|e| AuditError::Canonicalization(e.to_string()))?;
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, &tree)?;
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), AuditError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            // Whatever order the map keeps, JCS wants UTF-16 code unit order
            // (it differs from UTF-8 byte order above U+FFFF).
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_unstable_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, (name, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, name);
                out.push(b':');
                write_value(out, member)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) -> Result<(), AuditError> {
    if let Some(u) = n.as_u64() {
        check_integer(i128::from(u)).map_err(|e| AuditError::Canonicalization(e.0))?;
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        check_integer(i128::from(i)).map_err(|e| AuditError::Canonicalization(e.0))?;
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        let f = n
            .as_f64()
            .ok_or_else(|| AuditError::Canonicalization(format!("`{n}` is not a double")))?;
        check_float(f).map_err(|e| AuditError::Canonicalization(e.0))?;
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes());
    }
    Ok(())
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut run_start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x09 => Some(b"\\t"),
            0x0a => Some(b"\\n"),
            0x0c => Some(b"\\f"),
            0x0d => Some(b"\\r"),
            0x00..=0x1f => None,
            _ => continue,
        };
        // Copy the unescaped run before this byte; every byte that needs an
        // escape is ASCII, so the run ends on a character boundary.
        out.extend_from_slice(s.as_bytes().get(run_start..i).unwrap_or_default());
        run_start = i + 1;
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
                out.push(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
            }
        }
    }
    out.extend_from_slice(s.as_bytes().get(run_start..).unwrap_or_default());
    out.push(b'"');
}

/// Why [`NumberCheck`] refused a value.
#[derive(Debug)]
struct NumberError(String);

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NumberError {}

impl ser::Error for NumberError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

fn check_integer(n: i128) -> Checked {
    if n.unsigned_abs() <= u128::from(MAX_SAFE_INTEGER) {
        Ok(())
    } else {
        Err(NumberError(format!("integer `{n}` is outside ±(2^53 - 1)")))
    }
}

fn check_float(f: f64) -> Checked {
    if f.is_finite() {
        Ok(())
    } else {
        Err(NumberError(format!("`{f}` is not a JSON number")))
    }
}

/// A serialiser that writes nothing and only checks numbers.
struct NumberCheck;

type Checked = Result<(), NumberError>;

impl ser::Serializer for NumberCheck {
    type Ok = ();
    type Error = NumberError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, _: bool) -> Checked {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> Checked {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> Checked {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> Checked {
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Checked {
        check_integer(i128::from(v))
    }
    fn serialize_i128(self, v: i128) -> Checked {
        check_integer(v)
    }
    fn serialize_u8(self, _: u8) -> Checked {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> Checked {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> Checked {
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Checked {
        check_integer(i128::from(v))
    }
    fn serialize_u128(self, v: u128) -> Checked {
        match i128::try_from(v) {
            Ok(v) => check_integer(v),
            Err(_) => Err(NumberError(format!("integer `{v}` is outside ±(2^53 - 1)"))),
        }
    }
    fn serialize_f32(self, v: f32) -> Checked {
        check_float(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Checked {
        check_float(v)
    }
    fn serialize_char(self, _: char) -> Checked {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> Checked {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Checked {
        Ok(())
    }
    fn serialize_none(self) -> Checked {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Checked {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Checked {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Checked {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Checked {
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Checked {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Checked {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, NumberError> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, NumberError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, NumberError> {
        Ok(self)
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self, NumberError> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, NumberError> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, NumberError> {
        Ok(self)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self, NumberError> {
        Ok(self)
    }
}

/// Every compound checks each element with a fresh [`NumberCheck`].
macro_rules! check_elements {
    ($($trait:ident :: $method:ident ( $($key:ty)? )),* $(,)?) => {$(
        impl ser::$trait for NumberCheck {
            type Ok = ();
            type Error = NumberError;
            fn $method<T: ?Sized + Serialize>(&mut self, $(_: $key,)? value: &T) -> Checked {
                value.serialize(NumberCheck)
            }
            fn end(self) -> Checked {
                Ok(())
            }
        }
    )*};
}

check_elements!(
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);

impl ser::SerializeMap for NumberCheck {
    type Ok = ();
    type Error = NumberError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Checked {
        key.serialize(NumberCheck)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Checked {
        value.serialize(NumberCheck)
    }
    fn end(self) -> Checked {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(json: &str) -> String {
        let value: Value = serde_json::from_str(json).unwrap();
        String::from_utf8(to_vec(&value).unwrap()).unwrap()
    }

    // Input and expected output of each file in `testdata/` of
    // cyberphone/json-canonicalization, the RFC 8785 authors' reference.
    #[test]
    fn reference_arrays() {
        assert_eq!(
            canon(r#"[ 56, { "d": true, "10": null, "1": [ ] } ]"#),
            r#"[56,{"1":[],"10":null,"d":true}]"#
        );
    }

    #[test]
    fn reference_french() {
        assert_eq!(
            canon(
                r#"{ "peach": "This sorting order", "péché": "is wrong according to French",
                     "pêche": "but canonicalization MUST", "sin": "ignore locale" }"#
            ),
            r#"{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ignore locale"}"#
        );
    }

    #[test]
    fn reference_structures() {
        assert_eq!(
            canon(
                r#"{ "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0}, "10": { }, "": "empty", "a": { },
                     "111": [ {"e": "yes","E": "no" } ], "A": { } }"#
            ),
            r#"{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"no","e":"yes"}],"A":{},"a":{}}"#
        );
    }

    #[test]
    fn reference_unicode_is_not_normalised() {
        assert_eq!(
            canon(r#"{ "Unnormalized Unicode":"A\u030a" }"#),
            "{\"Unnormalized Unicode\":\"A\u{30a}\"}"
        );
    }

    #[test]
    fn reference_values() {
        assert_eq!(
            canon(
                r#"{ "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
                     "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
                     "literals": [null, true, false] }"#
            ),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn reference_weird_sorts_by_utf16_code_units() {
        assert_eq!(
            canon(
                r#"{ "\u20ac": "Euro Sign", "\r": "Carriage Return", "\u000a": "Newline", "1": "One",
                     "\u0080": "Control\u007f", "\ud83d\ude02": "Smiley",
                     "\u00f6": "Latin Small Letter O With Diaeresis",
                     "\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge" }"#
            ),
            "{\"\\n\":\"Newline\",\"\\r\":\"Carriage Return\",\"1\":\"One\",\"</script>\":\"Browser Challenge\",\
             \"\u{80}\":\"Control\u{7f}\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\
             \"😂\":\"Smiley\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    // RFC 8785 §3.2.3: U+1F600 (UTF-16 D83D DE00) sorts before U+FB33, the
    // opposite of code point order.
    #[test]
    fn rfc_sorting_example() {
        assert_eq!(
            canon(
                r#"{ "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
                     "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
                     "\u00f6": "Latin Small Letter O With Diaeresis" }"#
            ),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
             \"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\
             \"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    /// RFC 8785 Appendix B: IEEE 754 bit patterns and their JCS form.
    #[test]
    fn rfc_appendix_b_numbers() {
        let samples: [(u64, &str); 24] = [
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, want) in samples {
            let got = to_vec(&f64::from_bits(bits)).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want, "bits {bits:016x}");
        }
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        for bits in [0x7fffffffffffffff_u64, 0x7ff0000000000000, 0xfff0000000000000] {
            assert!(matches!(
                to_vec(&f64::from_bits(bits)),
                Err(AuditError::Canonicalization(_))
            ));
            assert!(to_vec(&[f64::from_bits(bits)]).is_err(), "inside an array too");
        }
    }

    #[test]
    fn integers_beyond_double_precision_are_refused() {
        assert_eq!(to_vec(&MAX_SAFE_INTEGER).unwrap(), b"9007199254740991");
        assert_eq!(to_vec(&-(MAX_SAFE_INTEGER as i64)).unwrap(), b"-9007199254740991");
        assert!(to_vec(&(MAX_SAFE_INTEGER + 1)).is_err());
        assert!(to_vec(&u64::MAX).is_err());
        assert!(to_vec(&serde_json::json!({"a": [1, {"b": i64::MIN}]})).is_err());
    }

    #[test]
    fn integers_are_written_as_doubles() {
        assert_eq!(
            to_vec(&serde_json::json!([1, -0, 1e2, 100u16])).unwrap(),
            b"[1,0,100,100]"
        );
    }
}
