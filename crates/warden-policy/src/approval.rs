//! Policies that ask a person: the `@approval("GROUP")` and
//! `@approval_ttl("SECONDS")` annotations of a `permit`, and what a
//! decision needs because of them ([`ApprovalNeed`]).
//!
//! `@approval("fraud-leads")` on a permit means: what this policy allows,
//! it allows only with the approval of a signed-in person holding the role
//! `fraud-leads`, who is neither the request's subject nor the agent
//! acting for it. `@approval("self")` asks the person the request acts for
//! (the token's subject when an agent acts for a person) — the classic
//! backchannel approval on one's own device. `@approval_ttl("600")` says
//! how long an approval stays usable (default
//! [`DEFAULT_APPROVAL_TTL`], between [`MIN_APPROVAL_TTL`] and
//! [`MAX_APPROVAL_TTL`]).
//!
//! Failing closed: when several permits allow a request and any of them
//! asks for approval, the request needs it (an approval by any of the
//! named groups; the shortest time to live). A broad permit never lifts
//! the approval a narrow one asks for.
//!
//! Pure: no I/O, no clock.

use std::collections::BTreeSet;

/// The annotation that asks for a person's approval.
pub const APPROVAL_ANNOTATION: &str = "approval";
/// The annotation that says how long an approval stays usable.
pub const APPROVAL_TTL_ANNOTATION: &str = "approval_ttl";
/// The approver group meaning "the person the request acts for".
pub const SELF_APPROVER: &str = "self";
/// Seconds an approval stays usable when the policy does not say.
pub const DEFAULT_APPROVAL_TTL: u64 = 300;
/// The shortest `@approval_ttl` accepted (seconds).
pub const MIN_APPROVAL_TTL: u64 = 30;
/// The longest `@approval_ttl` accepted (seconds): an hour, the longest
/// any Warden token lives.
pub const MAX_APPROVAL_TTL: u64 = 3_600;

/// What one policy's annotations ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSpec {
    /// The role an approver must hold, or [`SELF_APPROVER`].
    pub group: String,
    /// Seconds an approval stays usable.
    pub ttl: u64,
}

/// What an allowed decision still needs before the request may proceed:
/// a person's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalNeed {
    /// The groups whose members may approve (any one suffices), sorted;
    /// [`SELF_APPROVER`] among them means the person the request acts for.
    pub groups: Vec<String>,
    /// Seconds the approval stays usable: the shortest the deciding
    /// policies ask.
    pub ttl: u64,
    /// The `@id` of the policies that ask for it, sorted.
    pub policy_ids: Vec<String>,
}

impl ApprovalNeed {
    /// The need of an allow decided by `specs` (each deciding permit's id
    /// with its spec, if it has one); `None` when no deciding permit asks.
    pub fn of<'a>(specs: impl IntoIterator<Item = (&'a str, Option<&'a ApprovalSpec>)>) -> Option<Self> {
        let mut groups = BTreeSet::new();
        let mut policy_ids = BTreeSet::new();
        let mut ttl = MAX_APPROVAL_TTL;
        for (id, spec) in specs {
            if let Some(spec) = spec {
                groups.insert(spec.group.clone());
                policy_ids.insert(id.to_owned());
                ttl = ttl.min(spec.ttl);
            }
        }
        if groups.is_empty() {
            return None;
        }
        Some(Self {
            groups: groups.into_iter().collect(),
            ttl,
            policy_ids: policy_ids.into_iter().collect(),
        })
    }

    /// Whether a person with `roles` may approve: a member of one of the
    /// groups, or, when `self` is among them, the person the request acts
    /// for. The caller also checks that the approver is neither the
    /// request's subject nor its agent, except for a `self` approval.
    pub fn approver_qualifies(&self, approver: &str, roles: &[String], acting_for: Option<&str>) -> bool {
        self.groups.iter().any(|g| {
            if g == SELF_APPROVER {
                acting_for == Some(approver)
            } else {
                roles.iter().any(|r| r == g)
            }
        })
    }
}

/// Reads a policy's approval annotations: `Ok(None)` when it has none, an
/// error (one line, for the policy's diagnostic) when they are malformed.
///
/// `effect_is_permit` is whether the policy is a `permit`: a `forbid`
/// cannot ask for approval (it denies; nothing would be approved).
pub fn read_annotations(
    approval: Option<&str>,
    ttl: Option<&str>,
    effect_is_permit: bool,
) -> Result<Option<ApprovalSpec>, String> {
    let Some(group) = approval else {
        if ttl.is_some() {
            return Err(format!(
                "`@{APPROVAL_TTL_ANNOTATION}` needs `@{APPROVAL_ANNOTATION}(\"GROUP\")` on the same policy"
            ));
        }
        return Ok(None);
    };
    if !effect_is_permit {
        return Err(format!(
            "`@{APPROVAL_ANNOTATION}` is for `permit` policies: a `forbid` has nothing to approve"
        ));
    }
    let group = group.trim();
    if !is_group_name(group) {
        return Err(format!(
            "`@{APPROVAL_ANNOTATION}(\"{group}\")`: name one role (letters, digits, `-`, `_`, `.`, `:`) or `{SELF_APPROVER}`"
        ));
    }
    let ttl = match ttl {
        None => DEFAULT_APPROVAL_TTL,
        Some(text) => {
            let seconds: u64 = text
                .trim()
                .parse()
                .map_err(|_| format!("`@{APPROVAL_TTL_ANNOTATION}(\"{text}\")` is not a number of seconds"))?;
            if !(MIN_APPROVAL_TTL..=MAX_APPROVAL_TTL).contains(&seconds) {
                return Err(format!(
                    "`@{APPROVAL_TTL_ANNOTATION}(\"{seconds}\")` is outside {MIN_APPROVAL_TTL}..={MAX_APPROVAL_TTL} seconds"
                ));
            }
            seconds
        }
    };
    Ok(Some(ApprovalSpec {
        group: group.to_owned(),
        ttl,
    }))
}

/// Whether `name` can be a role (as roles appear in tokens).
fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_read_and_checked() {
        assert_eq!(read_annotations(None, None, true), Ok(None));
        assert_eq!(
            read_annotations(Some("fraud-leads"), None, true),
            Ok(Some(ApprovalSpec {
                group: "fraud-leads".into(),
                ttl: DEFAULT_APPROVAL_TTL
            }))
        );
        assert_eq!(
            read_annotations(Some("self"), Some("600"), true).map(|s| s.map(|s| s.ttl)),
            Ok(Some(600))
        );
        for (approval, ttl, permit, needle) in [
            (None, Some("60"), true, "needs `@approval"),
            (Some("leads"), None, false, "for `permit` policies"),
            (Some(""), None, true, "name one role"),
            (Some("two roles"), None, true, "name one role"),
            (Some("leads"), Some("soon"), true, "not a number"),
            (Some("leads"), Some("5"), true, "outside 30..=3600"),
            (Some("leads"), Some("3601"), true, "outside 30..=3600"),
        ] {
            let e = read_annotations(approval, ttl, permit).unwrap_err();
            assert!(e.contains(needle), "{approval:?} {ttl:?}: {e}");
        }
    }

    #[test]
    fn the_strictest_deciding_policy_wins() {
        let leads = ApprovalSpec {
            group: "leads".into(),
            ttl: 600,
        };
        let own = ApprovalSpec {
            group: "self".into(),
            ttl: 120,
        };
        assert_eq!(ApprovalNeed::of([("broad", None)]), None);
        let need = ApprovalNeed::of([("broad", None), ("b", Some(&leads)), ("a", Some(&own))]).unwrap();
        assert_eq!(need.groups, ["leads", "self"]);
        assert_eq!(need.ttl, 120);
        assert_eq!(need.policy_ids, ["a", "b"]);
    }

    #[test]
    fn who_may_approve() {
        let need = ApprovalNeed::of([(
            "p",
            Some(&ApprovalSpec {
                group: "leads".into(),
                ttl: 60,
            }),
        )])
        .unwrap();
        assert!(need.approver_qualifies("user:lee", &["leads".into()], Some("user:ada")));
        assert!(!need.approver_qualifies("user:ada", &["analyst".into()], Some("user:ada")));
        let own = ApprovalNeed::of([(
            "p",
            Some(&ApprovalSpec {
                group: "self".into(),
                ttl: 60,
            }),
        )])
        .unwrap();
        assert!(own.approver_qualifies("user:ada", &[], Some("user:ada")));
        assert!(!own.approver_qualifies("user:lee", &["leads".into()], Some("user:ada")));
        assert!(!own.approver_qualifies("user:ada", &[], None), "nobody to act for");
    }
}
