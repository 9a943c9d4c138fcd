//! Policy tests: example requests with the decisions they must get, run
//! by `warden policy test FILE`.
//!
//! # Format (TOML)
//! Each `[[case]]` is one request built from token claims, as the gateway
//! builds it, and the decision it must get. Unknown keys are errors.
//!
//! ```toml
//! [[case]]
//! name = "ml-engineer calls a development model"   # default "case N"
//! action = "inference.invoke"
//! expect = "allow"               # "allow", "deny", or "error" (the request
//!                                # does not fit the schema; callers deny)
//! policies = ["ml-engineer.inference"]   # optional: the exact deciding @ids
//!
//! [case.claims]
//! sub = "user:alice"             # user:NAME, svc:NAME or agent:NAME
//! roles = ["ml-engineer"]        # default []
//! scope = "inference.invoke"     # space-separated, as in the token; default ""
//! client_id = "notebook"         # default "test-client"
//! act = ["agent:report-bot"]     # the act chain, current actor first; default []
//! tenant = "acme"                # optional
//!
//! [case.resource]
//! type = "Model"                 # a schema entity type, `Model` or `Warden::Model`
//! id = "gpt-4o"
//! attributes = { stage = "development", owner = "user:bob" }
//!
//! [case.context]                 # optional
//! purpose = "fraud-detection"    # optional
//! source_ip = "192.0.2.7"        # optional
//! time = 1800000000              # Unix seconds; default 0
//! route = "chat"                 # optional
//! tenancy = "strict"             # the server's tenancy: "shared" (default) or "strict"
//! ```
//!
//! Attribute values are strings, integers, booleans or arrays of strings.

use std::fmt;

use serde::Deserialize;

use crate::engine::{Decision, PolicyEngine};
use crate::error::PolicyError;
use crate::request::{Principal, RequestContext, Resource, Tenancy};

/// The decision a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    /// Allowed.
    Allow,
    /// Denied (by a `forbid`, or because no `permit` matched).
    Deny,
    /// No decision: the request does not fit the schema.
    Error,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Error => "error",
        })
    }
}

/// The result of one case.
#[derive(Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// What it expected.
    pub expected: Expected,
    /// The decision, or why there was none.
    pub outcome: Result<Decision, PolicyError>,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

impl CaseResult {
    /// Whether the outcome is the expected one.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: Option<String>,
    action: String,
    expect: Expected,
    policies: Option<Vec<String>>,
    claims: Claims,
    resource: Resource,
    #[serde(default)]
    context: ContextExtras,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scope: String,
    #[serde(default = "default_client_id")]
    client_id: String,
    #[serde(default)]
    act: Vec<String>,
    tenant: Option<String>,
}

fn default_client_id() -> String {
    "test-client".to_owned()
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextExtras {
    purpose: Option<String>,
    source_ip: Option<String>,
    #[serde(default)]
    time: i64,
    route: Option<String>,
    #[serde(default)]
    tenancy: Tenancy,
}

/// Parses a policy test file (see the [module docs](self)) and runs every
/// case against `engine`, in order.
pub fn run_tests(engine: &PolicyEngine, text: &str) -> Result<Vec<CaseResult>, PolicyError> {
    let file: TestFile =
        toml::from_str(text).map_err(|e| PolicyError::TestFile(e.to_string().trim_end().to_owned()))?;
    if file.cases.is_empty() {
        return Err(PolicyError::TestFile("no `[[case]]` in the file".to_owned()));
    }
    Ok(file
        .cases
        .into_iter()
        .enumerate()
        .map(|(i, case)| run_case(engine, i + 1, case))
        .collect())
}

fn run_case(engine: &PolicyEngine, number: usize, case: Case) -> CaseResult {
    let name = case.name.unwrap_or_else(|| format!("case {number}"));
    let context = RequestContext {
        client_id: case.claims.client_id,
        actors: case.claims.act,
        purpose: case.context.purpose,
        source_ip: case.context.source_ip,
        time: case.context.time,
        route: case.context.route,
        tenancy: case.context.tenancy,
        ..RequestContext::default()
    }
    .with_scope_claim(&case.claims.scope);
    let outcome = Principal::from_claims(&case.claims.sub, case.claims.roles, case.claims.tenant.as_deref())
        .and_then(|principal| engine.decide(&principal, &case.action, &case.resource, &context));
    let failure = match (&outcome, case.expect) {
        (Err(_), Expected::Error) => None,
        (Err(e), expected) => Some(format!("expected {expected}, got an error: {e}")),
        (Ok(decision), expected) => {
            let got = if decision.allowed {
                Expected::Allow
            } else {
                Expected::Deny
            };
            if got != expected {
                Some(format!("expected {expected}, got {got}"))
            } else {
                case.policies.and_then(|mut want| {
                    want.sort();
                    want.dedup();
                    (want != decision.policy_ids).then(|| {
                        format!(
                            "expected policies [{}], got [{}]",
                            want.join(", "),
                            decision.policy_ids.join(", ")
                        )
                    })
                })
            }
        }
    };
    CaseResult {
        name,
        expected: case.expect,
        outcome,
        failure,
    }
}
