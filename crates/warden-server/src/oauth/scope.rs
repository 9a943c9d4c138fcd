//! OAuth scopes (RFC 6749 §3.3): parsing and narrowing. Pure.

/// Whether `token` is a valid scope-token: `1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Parses a space-separated scope string; `None` names the first invalid token.
pub fn parse(scope: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        if !is_scope_token(token) {
            return Err(token.chars().take(40).collect());
        }
        if !out.iter().any(|t| t == token) {
            out.push(token.to_owned());
        }
    }
    Ok(out)
}

/// The scopes of `requested` that every one of `limits` allows, in request order.
pub fn narrow(requested: &[String], limits: &[&[String]]) -> Vec<String> {
    requested
        .iter()
        .filter(|s| limits.iter().all(|allowed| allowed.contains(s)))
        .cloned()
        .collect()
}

/// Joins scopes into the space-separated form.
pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn parses_and_dedups() {
        assert_eq!(parse("a  b a").unwrap(), v(&["a", "b"]));
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
        assert!(parse("ok bad\"quote").is_err());
        assert!(parse("tab\there").is_err());
        assert!(parse("back\\slash").is_err());
    }

    #[test]
    fn narrows_to_the_intersection_in_request_order() {
        let allowed = v(&["read", "write", "admin"]);
        let subject = v(&["write", "read"]);
        assert_eq!(
            narrow(&v(&["write", "read", "x"]), &[&allowed, &subject]),
            v(&["write", "read"])
        );
        assert!(narrow(&v(&["admin"]), &[&allowed, &subject]).is_empty());
    }
}
