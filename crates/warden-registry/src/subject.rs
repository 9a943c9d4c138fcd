//! The one form in which principals' subjects compare.
//!
//! A subject (`user:eve`, `svc:trainer`, `agent:report-bot`) is stored and
//! shown as the token carried it, but every comparison that decides who
//! someone is — the four-eyes rule, "already voted", "the actor is the
//! subject" — compares [`canonical`] forms: Unicode NFKC (so a full-width
//! `ｅｖｅ` is `eve`) and then lower case. `user:Eve` and `user:eve` are one
//! person; an identity provider that tells two people apart only by case
//! cannot be used with Warden.

use unicode_normalization::UnicodeNormalization as _;

/// `subject` in the form comparisons use: NFKC, then lower case.
pub fn canonical(subject: &str) -> String {
    subject.nfkc().collect::<String>().to_lowercase()
}

/// Whether `a` and `b` name the same principal.
pub fn same(a: &str, b: &str) -> bool {
    a == b || canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_compatibility_forms_name_one_principal() {
        assert!(same("user:Eve", "user:eve"));
        assert!(same("USER:EVE", "user:eve"));
        assert!(same("user:ｅｖｅ", "user:eve"));
        assert!(same("user:e\u{301}ve", "user:\u{e9}ve"));
        assert!(!same("user:eve", "user:eva"));
        assert!(!same("user:eve", "agent:eve"));
        assert!(!same("user:eve", "user:eve "));
    }
}
