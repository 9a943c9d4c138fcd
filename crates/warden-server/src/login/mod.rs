//! People sign in through their company's identity provider: Warden is an
//! OpenID Connect relying party of each `[[login]]` provider
//! (docs/sign-in.md).
//!
//! # Layout
//! - `provider.rs`: discovery, keys, the authorization request and the
//!   code exchange whose ID token is verified by the strict core plus the
//!   OpenID checks (`nonce`, `azp`, `at_hash`).
//! - `identity.rs` (pure): a verified ID token's claims → the person in
//!   Warden's terms (subject, roles from groups), or why they are refused.
//! - `seal.rs`: the sealed cookie that carries a sign-in in progress.
//!
//! The dashboard's `sso.rs` drives the browser through these and opens the
//! session.
//!
//! # What it must not touch
//! The store, tokens, sessions and the audit log: it says who someone is,
//! never what they may do or what was recorded.

pub mod identity;
pub mod provider;
pub mod seal;

use serde::{Deserialize, Serialize};

pub use self::identity::{Person, Refusal, person};
pub use self::provider::{IdClaims, ProviderError, Providers, secure_url};
pub use self::seal::{SealError, Sealer};

/// How long a person has to finish signing in at the provider (seconds).
pub const PENDING_TTL: u64 = 600;

/// A sign-in in progress, carried sealed in the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The provider's name.
    pub provider: String,
    /// The `state` sent to it.
    pub state: String,
    /// The `nonce` its ID token must carry.
    pub nonce: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// The local path to return to afterwards.
    pub return_to: String,
    /// When it expires (Unix seconds).
    pub expires_at: u64,
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    crate::oauth::pkce::s256(verifier)
}

/// Whether `path` is a place in the dashboard to return to after signing
/// in: a local `/ui` path, never another site (`//evil`, `/\evil`) and
/// nothing a header could not carry.
pub fn safe_return(path: &str) -> bool {
    (path == "/ui" || path.starts_with("/ui/") || path.starts_with("/ui?"))
        && !path.contains("//")
        && !path.contains('\\')
        && path.len() <= 2048
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636() {
        // RFC 7636, Appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn only_local_dashboard_paths_are_returned_to() {
        for ok in ["/ui", "/ui/audit", "/ui/models/m?x=1", "/ui/device?user_code=ABCD-EFGH"] {
            assert!(safe_return(ok), "{ok}");
        }
        for bad in [
            "https://evil.example/ui/",
            "//evil.example/ui/",
            "/ui//evil.example",
            "/ui/\\evil",
            "/uix",
            "/gateway",
            "/ui/a b",
            "/ui/\r\nSet-Cookie:x",
            "",
        ] {
            assert!(!safe_return(bad), "{bad}");
        }
    }
}
