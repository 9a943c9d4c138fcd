//! The default schema and policies, compiled in for when no policy
//! directory is configured. The same files are the starting point for a
//! directory of one's own: copy `policies/` and edit.

/// `policies/schema.cedarschema`.
pub(crate) const SCHEMA: &str = include_str!("../policies/schema.cedarschema");

/// `policies/default/*.cedar`, as (file name, text).
pub(crate) const POLICIES: [(&str, &str); 8] = [
    ("admin.cedar", include_str!("../policies/default/admin.cedar")),
    ("agents.cedar", include_str!("../policies/default/agents.cedar")),
    ("approver.cedar", include_str!("../policies/default/approver.cedar")),
    ("auditor.cedar", include_str!("../policies/default/auditor.cedar")),
    (
        "data-scientist.cedar",
        include_str!("../policies/default/data-scientist.cedar"),
    ),
    ("guards.cedar", include_str!("../policies/default/guards.cedar")),
    (
        "ml-engineer.cedar",
        include_str!("../policies/default/ml-engineer.cedar"),
    ),
    ("scopes.cedar", include_str!("../policies/default/scopes.cedar")),
];

/// `policies/default.tests.toml`: the default set's policy tests.
pub const DEFAULT_TESTS: &str = include_str!("../policies/default.tests.toml");
