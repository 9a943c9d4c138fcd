//! Delegation chains (RFC 8693 `act`): who acts for whom, how deep, and
//! whom a subject lets act for it (`may_act`). Pure.

use serde_json::Value;

/// Longest chain read; deeper nesting is cut (the token service never
/// issues chains longer than `oauth.max_delegation_depth`, at most 8).
const MAX_CHAIN: usize = 64;

/// Number of actors in an `act` chain.
pub fn depth(act: Option<&Value>) -> u32 {
    let mut n = 0;
    let mut cur = act;
    while let Some(Value::Object(obj)) = cur {
        n += 1;
        cur = obj.get("act");
        if n > MAX_CHAIN as u32 {
            break;
        }
    }
    n
}

/// The actors of a chain, outermost first.
pub fn actors(act: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = act;
    while let Some(Value::Object(obj)) = cur {
        if let Some(Value::String(sub)) = obj.get("sub") {
            out.push(sub.clone());
        }
        cur = obj.get("act");
        if out.len() > MAX_CHAIN {
            break;
        }
    }
    out
}

/// Whether `may_act` (RFC 8693 §4.4) lets `actor` act. Absent: yes.
/// `{"sub": "agent:x"}` or `{"sub": ["agent:x", "agent:y"]}`.
pub fn may_act_allows(may_act: Option<&Value>, actor: &str) -> bool {
    match may_act {
        None => true,
        Some(Value::Object(obj)) => match obj.get("sub") {
            Some(Value::String(s)) => warden_registry::subject::same(s, actor),
            Some(Value::Array(list)) => list
                .iter()
                .any(|v| v.as_str().is_some_and(|s| warden_registry::subject::same(s, actor))),
            _ => false,
        },
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn chains() {
        let act = json!({"sub": "agent:b", "act": {"sub": "agent:a"}});
        assert_eq!(depth(Some(&act)), 2);
        assert_eq!(depth(None), 0);
        assert_eq!(actors(Some(&act)), ["agent:b", "agent:a"]);
    }

    #[test]
    fn may_act() {
        assert!(may_act_allows(None, "agent:x"));
        assert!(may_act_allows(Some(&json!({"sub": "agent:x"})), "agent:x"));
        assert!(!may_act_allows(Some(&json!({"sub": "agent:y"})), "agent:x"));
        assert!(may_act_allows(Some(&json!({"sub": ["agent:y", "agent:x"]})), "agent:x"));
        assert!(!may_act_allows(Some(&json!("agent:x")), "agent:x"));
    }
}
