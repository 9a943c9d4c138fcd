//! Strict base64url (RFC 7515 §2, RFC 4648 §5): no padding, no characters
//! outside the alphabet, and canonical trailing bits, so that every byte
//! string has exactly one accepted encoding.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes strict base64url; `None` on any deviation.
pub fn decode(input: &str) -> Option<Vec<u8>> {
    STRICT.decode(input.as_bytes()).ok()
}

/// Encodes as unpadded base64url.
pub fn encode(input: &[u8]) -> String {
    STRICT.encode(input)
}

/// Appends the unpadded base64url encoding of `input` to `out`.
pub fn encode_into(input: &[u8], out: &mut String) {
    STRICT.encode_string(input, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_padding_and_foreign_characters() {
        assert_eq!(decode("QQ").as_deref(), Some(&b"A"[..]));
        assert!(decode("QQ==").is_none());
        assert!(decode("QQ=").is_none());
        assert!(decode("Q+Q").is_none());
        assert!(decode("Q/Q").is_none());
        assert!(decode("Q Q").is_none());
        assert!(decode("Q\nQ").is_none());
        assert!(decode("QQ?").is_none());
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // "QQ" is canonical for "A"; "QR".."QZ" decode to the same byte with junk bits.
        assert!(decode("QR").is_none());
        assert!(decode("QZ").is_none());
    }

    #[test]
    fn rejects_impossible_lengths() {
        assert!(decode("Q").is_none());
        assert!(decode("QUFBQ").is_none());
    }

    #[test]
    fn round_trips() {
        for len in 0..40u8 {
            let data: Vec<u8> = (0..len).collect();
            assert_eq!(decode(&encode(&data)), Some(data));
        }
    }
}
