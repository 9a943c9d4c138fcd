//! Warden's Ed25519 verification rules: strict, as ed25519-dalek's
//! `verify_strict`.
//!
//! Warden rejects non-canonical encodings of `A` (the public key) and `R`
//! (the first half of a signature) and rejects `A` and `R` of small order,
//! on top of the backend's RFC 8032 checks (`S < L`, cofactorless equation).
//!
//! Why strict and not ZIP-215: ZIP-215 exists so that every node of a
//! consensus system accepts exactly the same signatures, including odd
//! ones. Warden has no consensus to keep; what it needs is that a signature
//! binds one key and one message. A small-order public key verifies
//! signatures on many messages, so accepting one would let a crafted JWK
//! "sign" tokens nobody made. Refusing these points costs nothing for keys
//! any honest signer generates.

/// The low-order points of edwards25519 in every encoding, canonical or
/// not (list from C2SP CCTV `ed25519/README.md`).
const LOW_ORDER: [[u8; 32]; 14] = [
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("0000000000000000000000000000000000000000000000000000000000000080"),
    hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex32("0100000000000000000000000000000000000000000000000000000000000080"),
    hex32("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
];

#[expect(
    clippy::indexing_slicing,
    reason = "only called in consts on 64-digit literals: any bad index fails the build, not a request"
)]
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0,
        }
    }
    let bytes = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(bytes[2 * i]) << 4 | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

/// Whether the y coordinate encoded in `p` (sign bit cleared) is at least
/// the field prime 2^255 - 19, i.e. the encoding is not canonical.
fn y_is_non_canonical(p: &[u8; 32]) -> bool {
    let [first, middle @ .., last] = p;
    *first >= 0xed && middle.iter().all(|b| *b == 0xff) && last & 0x7f == 0x7f
}

/// Checks a point encoding (`A` or `R`): canonical and not of small order.
pub(crate) fn check_point(p: &[u8; 32]) -> Result<(), &'static str> {
    if y_is_non_canonical(p) {
        return Err("is a non-canonical encoding");
    }
    if LOW_ORDER.contains(p) {
        return Err("is a point of small order");
    }
    Ok(())
}

/// Checks the `R` half of a 64-byte signature; other lengths fail later in
/// the backend.
pub(crate) fn check_signature(signature: &[u8]) -> Result<(), &'static str> {
    match signature.first_chunk::<32>() {
        Some(r) if signature.len() == 64 => check_point(r),
        _ => Err("has the wrong length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_low_order_encoding_is_refused() {
        for p in LOW_ORDER {
            assert!(check_point(&p).is_err());
        }
    }

    #[test]
    fn non_canonical_y_is_refused() {
        let mut p = [0xffu8; 32];
        p[0] = 0xf0;
        p[31] = 0x7f;
        assert_eq!(check_point(&p), Err("is a non-canonical encoding"));
        p[31] = 0xff;
        assert_eq!(check_point(&p), Err("is a non-canonical encoding"));
        p[0] = 0xec;
        p[31] = 0x7f;
        // p - 1 is canonical but of order 2.
        assert_eq!(check_point(&p), Err("is a point of small order"));
    }
}
