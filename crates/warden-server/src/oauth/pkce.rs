//! PKCE (RFC 7636) with the S256 method only: `plain` would hand the
//! verifier to whoever sees the authorization request. Pure.

use aws_lc_rs::digest;

/// The S256 challenge of `verifier`: base64url(SHA-256(verifier)).
pub fn s256(verifier: &str) -> String {
    warden_jose::base64url::encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Whether `verifier` is a well-formed code verifier: 43 to 128
/// characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` can be an S256 challenge: 43 base64url characters.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Whether `verifier` is the one `challenge` was made from (constant time).
pub fn verify(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier)
        && aws_lc_rs::constant_time::verify_slices_are_equal(s256(verifier).as_bytes(), challenge.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256(verifier), challenge);
        assert!(valid_challenge(challenge));
        assert!(verify(verifier, challenge));
        assert!(!verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", challenge));
        assert!(!verify(challenge, challenge), "the challenge is not its own verifier");
    }

    #[test]
    fn malformed_verifiers_and_challenges() {
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(valid_verifier(&"a".repeat(128)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(!valid_challenge("plain-challenge"));
        assert!(!valid_challenge(&format!("{}=", "a".repeat(42))));
    }
}
