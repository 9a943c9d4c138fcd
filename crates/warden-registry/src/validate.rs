//! Field checks shared by datasets, models and approvals.

use crate::RegistryError;

/// Longest name, in bytes.
pub const MAX_NAME: usize = 128;
/// Longest free text (description, reason), in bytes.
pub const MAX_TEXT: usize = 4096;
/// Longest storage URI, in bytes.
pub const MAX_URI: usize = 2048;

/// A dataset or model name: 1–128 of `a-z A-Z 0-9 . _ -`, starting with a
/// letter or digit. Names appear in URLs, Cedar entity ids and lineage
/// references (`dataset:NAME@3`), so nothing that needs escaping.
pub fn check_name(field: &'static str, name: &str) -> Result<(), RegistryError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(RegistryError::invalid(
            field,
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let all_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !first_ok || !all_ok {
        return Err(RegistryError::invalid(
            field,
            "may hold only letters, digits, `.`, `_` and `-`, and must start with a letter or digit",
        ));
    }
    Ok(())
}

/// A content digest: `sha256:` followed by 64 lowercase hex digits. A bare
/// 64-digit hex string is accepted and normalised; anything else (another
/// algorithm, upper case, wrong length) is refused.
pub fn check_digest(field: &'static str, digest: &str) -> Result<String, RegistryError> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RegistryError::invalid(
            field,
            "must be `sha256:` followed by 64 lowercase hex digits",
        ));
    }
    Ok(format!("sha256:{hex}"))
}

/// A storage URI: `scheme:rest`, at most 2048 bytes, no whitespace or
/// control characters. Warden records where data lives; it never fetches it.
pub fn check_uri(field: &'static str, uri: &str) -> Result<(), RegistryError> {
    if uri.is_empty() || uri.len() > MAX_URI {
        return Err(RegistryError::invalid(
            field,
            format!("must be 1 to {MAX_URI} characters"),
        ));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RegistryError::invalid(
            field,
            "must not contain spaces or control characters",
        ));
    }
    let scheme_ok = uri.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok {
        return Err(RegistryError::invalid(
            field,
            "must be a URI with a scheme, e.g. `s3://bucket/key`",
        ));
    }
    Ok(())
}

/// A reason (required for every promotion step) or other free text: 1–4096
/// bytes after trimming, no control characters but newlines and tabs.
pub fn check_reason(field: &'static str, text: &str) -> Result<String, RegistryError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RegistryError::invalid(field, "is required"));
    }
    check_text(field, text)?;
    Ok(text.to_owned())
}

/// Optional free text: at most 4096 bytes, no control characters but
/// newlines and tabs.
pub(crate) fn check_text(field: &'static str, text: &str) -> Result<(), RegistryError> {
    if text.len() > MAX_TEXT {
        return Err(RegistryError::invalid(
            field,
            format!("must be at most {MAX_TEXT} bytes"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(RegistryError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A principal as the registry records it (`user:…`, `svc:…`, `agent:…`).
pub(crate) fn check_principal(field: &'static str, sub: &str) -> Result<(), RegistryError> {
    let ok = ["user:", "svc:", "agent:"]
        .iter()
        .any(|p| sub.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
    if !ok || sub.len() > MAX_NAME + 8 || sub.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            field,
            "must be `user:NAME`, `svc:NAME` or `agent:NAME`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "fraud-detector", "tx_2024.v1", "0day"] {
            check_name("name", ok).unwrap();
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "a@1", "é", &"a".repeat(129)] {
            let e = check_name("name", bad).unwrap_err();
            assert!(matches!(e, RegistryError::Invalid { field: "name", .. }), "{bad}");
        }
    }

    #[test]
    fn digests_are_normalised_sha256() {
        let hex = "ab".repeat(32);
        assert_eq!(check_digest("digest", &hex).unwrap(), format!("sha256:{hex}"));
        assert_eq!(
            check_digest("digest", &format!("sha256:{hex}")).unwrap(),
            format!("sha256:{hex}")
        );
        for bad in [
            "".to_owned(),
            "AB".repeat(32),
            format!("sha512:{hex}"),
            "ab".repeat(31),
            format!("sha256:{hex}0"),
        ] {
            assert!(check_digest("digest", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uris() {
        for ok in [
            "s3://bucket/key",
            "file:///data/x.parquet",
            "hf://org/model",
            "gs://b/o?x=1",
        ] {
            check_uri("uri", ok).unwrap();
        }
        for bad in ["", "no-scheme", "s3:", "1x://a", "s3://a b", "s3://a\nb", "://x"] {
            assert!(check_uri("uri", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reasons_are_required_and_trimmed() {
        assert_eq!(check_reason("reason", "  ok \n").unwrap(), "ok");
        assert!(check_reason("reason", "   ").is_err());
        assert!(check_reason("reason", "a\u{7}b").is_err());
        assert!(check_reason("reason", &"x".repeat(MAX_TEXT + 1)).is_err());
        check_reason("reason", "line one\nline two\tok").unwrap();
    }

    #[test]
    fn principals() {
        for ok in ["user:alice", "svc:trainer", "agent:bot"] {
            check_principal("p", ok).unwrap();
        }
        for bad in ["alice", "user:", "root:x", "user:a\nb"] {
            assert!(check_principal("p", bad).is_err(), "{bad:?}");
        }
    }
}
