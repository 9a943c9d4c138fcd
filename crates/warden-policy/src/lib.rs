//! Warden's authorization core: a Cedar schema, the default policies, and
//! decisions with the ids of the policies that made them.
//!
//! # What it owns
//! - [`PolicyEngine`]: a schema and a policy set validated against it in
//!   strict mode ([`PolicyEngine::from_sources`], [`PolicyEngine::builtin`],
//!   [`load`]), and [`PolicyEngine::decide`], which returns a [`Decision`]
//!   naming the deciding policies by their `@id` annotation.
//! - Requests from token claims: [`Principal::from_claims`] (`user:`,
//!   `svc:`, `agent:` subjects; roles as `Role` parents),
//!   [`RequestContext`] (scopes, client, `act` chain, purpose, source IP,
//!   time, route, [`Tenancy`]) and [`Resource`] (type, id, attributes).
//! - The schema and default policies under `policies/`, compiled in.
//! - Policies that ask a person ([`approval`]): `@approval("GROUP")` and
//!   `@approval_ttl("SECONDS")` on a permit; an allow they decide carries
//!   an [`ApprovalNeed`] in [`Decision::approval`].
//! - The access matrix ([`access`]): [`PolicyEngine::access`] tells which
//!   actions a role or principal may take on which resource types, when,
//!   and by which policies, by deciding representative requests.
//! - Policy tests: [`run_tests`] runs a TOML file of example requests
//!   against expected decisions (format in [`policy_test`]).
//! - [`PolicyError`], with [`SourceProblem`]s that name file, line and
//!   column.
//!
//! # What it must not touch
//! No network, no async, no clock: the request's `time` is given. The only
//! file reading is [`load`] and [`PolicyEngine::reload`], in `load.rs`.
//! Swapping engines, watching files and mapping errors to HTTP statuses
//! belong to `warden-server`. Cedar's partial evaluation and other
//! experimental features are never enabled: a decision is always a full
//! evaluation of concrete values.
//!
//! # Failing closed
//! Cedar denies unless a `permit` matches and no `forbid` does. On top of
//! that, [`decide`](PolicyEngine::decide) checks the request against the
//! schema and returns an error (the caller denies) for an unknown action or
//! entity type or a missing or mistyped attribute, and it denies when any
//! policy fails to evaluate, since Cedar skips a failing `forbid`.
//!
//! # Example
//! ```
//! use warden_policy::{PolicyEngine, Principal, RequestContext, Resource};
//!
//! let engine = PolicyEngine::builtin()?;
//! let alice = Principal::from_claims("user:alice", ["data-scientist"], None)?;
//! let context = RequestContext { client_id: "notebook".into(), time: 1_800_000_000, ..Default::default() }
//!     .with_scope_claim("inference.invoke");
//! let model = |stage: &str| Resource::new("Model", "fraud-v2").with("stage", stage).with("owner", "user:bob");
//!
//! let decision = engine.decide(&alice, "inference.invoke", &model("production"), &context)?;
//! assert!(decision.allowed);
//! assert_eq!(decision.policy_ids, ["data-scientist.inference-production"]);
//!
//! let decision = engine.decide(&alice, "inference.invoke", &model("staging"), &context)?;
//! assert!(!decision.allowed);
//! assert!(decision.policy_ids.is_empty()); // no permit matched: default deny
//! # Ok::<(), warden_policy::PolicyError>(())
//! ```
#![deny(missing_docs)]

pub mod access;
pub mod approval;
mod builtin;
mod cache;
mod diagnostic;
mod engine;
mod error;
mod load;
pub mod policy_test;
mod request;

pub use access::{AccessCase, AccessQuery, AccessRow, Verdict};
pub use approval::{ApprovalNeed, ApprovalSpec};
pub use builtin::DEFAULT_TESTS;
pub use engine::{Decision, NAMESPACE, PolicyEngine, PolicySource, SCHEMA_FILE};
pub use error::{PolicyError, SourceProblem};
pub use load::load;
pub use policy_test::{CaseResult, Expected, run_tests};
pub use request::{AttrValue, Principal, PrincipalKind, RequestContext, Resource, TOOL_SCOPE_PREFIX, Tenancy};

#[cfg(test)]
mod tests;
