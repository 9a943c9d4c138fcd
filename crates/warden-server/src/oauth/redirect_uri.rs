//! Redirect URIs of public clients (RFC 6749 §3.1.2, RFC 8252 §7, OAuth
//! 2.0 Security BCP §4.1): what may be registered, and whether a request's
//! URI is a registered one. Exact string comparison, except that a
//! loopback IP redirect (`http://127.0.0.1/…`, `http://[::1]/…`) matches
//! with any port, because a command-line tool listens on whatever port is
//! free (RFC 8252 §7.3). Pure.

use reqwest::Url;

/// Why a redirect URI cannot be registered.
pub fn check_registrable(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("redirect URI `{uri}` is not an absolute URI: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("redirect URI `{uri}` must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("redirect URI `{uri}` must not hold credentials"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_ip(&url) => Ok(()),
        "http" => Err(format!(
            "redirect URI `{uri}`: plain http only on a loopback IP (http://127.0.0.1/… or http://[::1]/…; not localhost, RFC 8252 §8.3)"
        )),
        // A private-use scheme (RFC 8252 §7.1): reverse domain notation.
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(format!(
            "redirect URI `{uri}`: scheme `{scheme}` is neither https, loopback http, nor a reverse-domain private-use scheme"
        )),
    }
}

fn is_loopback_ip(url: &Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1" | "[::1]"))
}

/// Whether `presented` is one of `registered`.
pub fn matches(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    // Only a URI already in its parsed form (no control characters the
    // parser would drop, no dot-segments it would resolve), so that what
    // matched is exactly what is used.
    let Ok(p) = Url::parse(presented) else {
        return false;
    };
    if p.as_str() != presented || p.scheme() != "http" || !is_loopback_ip(&p) || p.fragment().is_some() {
        return false;
    }
    let mut without_port = p;
    if without_port.set_port(None).is_err() {
        return false;
    }
    registered.iter().any(|r| r == without_port.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_may_be_registered() {
        for ok in [
            "https://notebook.example/callback",
            "http://127.0.0.1/callback",
            "http://[::1]:8400/cb",
            "com.example.warden:/callback",
        ] {
            assert!(check_registrable(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://notebook.example/callback",
            "http://localhost/callback",
            "https://notebook.example/cb#frag",
            "https://user:pw@notebook.example/cb",
            "javascript:alert(1)",
            "/relative",
            "warden:/cb",
        ] {
            assert!(check_registrable(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_match_and_any_port_on_loopback() {
        let registered = vec![
            "https://notebook.example/callback".to_owned(),
            "http://127.0.0.1/callback".to_owned(),
        ];
        assert!(matches(&registered, "https://notebook.example/callback"));
        assert!(!matches(&registered, "https://notebook.example/callback/"));
        assert!(!matches(&registered, "https://notebook.example/callback?x=1"));
        assert!(!matches(&registered, "https://notebook.example:8443/callback"));
        assert!(matches(&registered, "http://127.0.0.1:53117/callback"));
        assert!(matches(&registered, "http://127.0.0.1/callback"));
        assert!(!matches(&registered, "http://127.0.0.1:53117/other"));
        assert!(!matches(&registered, "http://[::1]:53117/callback"), "another host");
        assert!(!matches(&registered, "http://user@127.0.0.1:53117/callback"));
        assert!(!matches(&registered, "http://127.0.0.1:53117/callback#x"));
        assert!(
            !matches(&registered, "http://127.0.0.1:53117/call\nback"),
            "dropped by the parser"
        );
        assert!(
            !matches(&registered, "http://127.0.0.1:53117/x/../callback"),
            "a dot-segment"
        );
        assert!(
            !matches(&registered, "HTTP://127.0.0.1:53117/callback"),
            "not in parsed form"
        );
        assert!(!matches(&registered, "https://evil.example/callback"));
    }
}
