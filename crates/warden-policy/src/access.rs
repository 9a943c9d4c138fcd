//! The access matrix: for one principal (or one role), which actions it
//! may take on which resource types, under which conditions, and which
//! policies decide — for a compliance dashboard.
//!
//! Computed by deciding real requests with [`PolicyEngine::decide`], never
//! by Cedar's partial evaluation: for each action and each resource type
//! it applies to (from the schema), a small grid of representative
//! resources and contexts is decided, and the grid is summarised into a
//! few [`AccessCase`]s.
//!
//! # The grid
//! An attribute is varied only when the resource type has it and a policy
//! that can apply to the action names it (a policy that never names an
//! attribute cannot depend on it). The values come from the vocabularies
//! of the default schema:
//!
//! | what | values |
//! |---|---|
//! | `classification` | `public`, `internal`, `confidential`, `pii` |
//! | `allowed_purposes` | `[]`, `[P]`, `[another purpose]` |
//! | the request's `purpose` | none, `P` (fixed to `P` when the query states one) |
//! | `stage` | `development`, `staging`, `production`, `archived` |
//! | `tenant` | the principal's, another (only when the principal has one) |
//! | `owner` | the subject, someone else |
//! | `name` (tools) | a tool a `tool:NAME` scope grants, another (only when the query lists scopes) |
//!
//! `P` is the query's purpose, or `fraud-detection`. Other required
//! attributes get a fixed value. The context is a direct token (no `act`
//! chain) from the client `dashboard` at the given time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::engine::{NAMESPACE, PolicyEngine};
use crate::error::PolicyError;
use crate::request::{AttrValue, Principal, RequestContext, Resource, TOOL_SCOPE_PREFIX};

/// The `client_id` of the matrix's requests.
const CLIENT_ID: &str = "dashboard";
/// The purpose used when the query states none.
const EXAMPLE_PURPOSE: &str = "fraud-detection";
/// The id of every representative resource, and its name (a tool's name
/// is granted by `tool:example` when the query lists no scopes).
const EXAMPLE_ID: &str = "example";
/// A value for a required string attribute nothing varies.
const EXAMPLE_VALUE: &str = "example";
/// An owner who is not the subject.
const OTHER_OWNER: &str = "user:someone-else";
/// A tenant that is not the principal's.
const OTHER_TENANT: &str = "another-tenant";
/// A purpose that is not `P`.
const OTHER_PURPOSE: &str = "another-purpose";
/// A tool name no scope grants.
const OTHER_TOOL: &str = "another-tool";
const CLASSIFICATIONS: [&str; 4] = ["public", "internal", "confidential", "pii"];
const STAGES: [&str; 4] = ["development", "staging", "production", "archived"];

/// Who the matrix is for: a token's subject, roles and tenant, and what
/// the token and the request say.
///
/// Deserializes from JSON or a query string; every field has a default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessQuery {
    /// The subject, `user:NAME`, `svc:NAME` or `agent:NAME` (the kind
    /// matters: some policies are about agents). [`AccessQuery::role`]
    /// uses `user:probe`.
    pub subject: String,
    /// The roles.
    pub roles: Vec<String>,
    /// The tenant; when set, the matrix also varies the resource's tenant.
    pub tenant: Option<String>,
    /// The token's scopes. `None`: every action's scope is granted (and
    /// `tool:NAME` for the tool asked for), so the matrix shows what the
    /// roles allow.
    pub scopes: Option<Vec<String>>,
    /// The purpose the requests state. `None`: the matrix varies it
    /// (none, or one the dataset allows).
    pub purpose: Option<String>,
}

impl AccessQuery {
    /// The query for one role: subject `user:probe`, no tenant, every
    /// scope granted, the purpose varied.
    pub fn role(role: &str) -> Self {
        Self {
            subject: "user:probe".to_owned(),
            roles: vec![role.to_owned()],
            ..Self::default()
        }
    }
}

/// How often an action is allowed on a resource type across the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// In every case.
    Always,
    /// In some cases, not in others.
    Sometimes,
    /// In no case.
    Never,
    /// Not computed: no representative resource could be built or decided
    /// (a custom schema with an attribute type the matrix cannot fill);
    /// [`AccessRow::problem`] says why.
    Unknown,
}

/// One action on one resource type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRow {
    /// The action, e.g. `dataset.read`.
    pub action: String,
    /// The resource type, e.g. `Dataset` (the full name outside the
    /// `Warden` namespace).
    pub resource_type: String,
    /// Always, sometimes or never allowed.
    pub verdict: Verdict,
    /// The distinct outcomes and when each happens; the conditions do not
    /// overlap and together cover the grid.
    pub cases: Vec<AccessCase>,
    /// Why the row is [`Verdict::Unknown`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One outcome of an action on a resource type, and when it happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessCase {
    /// When, naming only the attributes that make a difference, e.g.
    /// `classification = pii, allowed_purposes = [fraud-detection], purpose
    /// = fraud-detection`; `any` when nothing does.
    pub condition: String,
    /// Whether the action is allowed then.
    pub allowed: bool,
    /// The deciding policies (sorted): the permits that grant it when
    /// allowed; the forbids that deny it otherwise (none: no permit
    /// matched).
    pub policy_ids: Vec<String>,
}

impl PolicyEngine {
    /// The access matrix of `query`: for every action the principal's
    /// kind may take (sorted) and every resource type it applies to
    /// (sorted), whether it is allowed, when, and by which policies; see
    /// the [module documentation](crate::access) for the requests decided.
    ///
    /// `time` is the requests' `context.time` (Unix seconds). Errors only
    /// for a subject that is not `user:`, `svc:` or `agent:`; a row whose
    /// requests could not be built or decided is [`Verdict::Unknown`].
    ///
    /// # Example
    /// ```
    /// use warden_policy::{AccessQuery, PolicyEngine, Verdict};
    ///
    /// let engine = PolicyEngine::builtin()?;
    /// let rows = engine.access(&AccessQuery::role("data-scientist"), 1_800_000_000)?;
    /// let row = rows
    ///     .iter()
    ///     .find(|r| r.action == "inference.invoke" && r.resource_type == "Model")
    ///     .expect("a row per action and resource type");
    /// assert_eq!(row.verdict, Verdict::Sometimes);
    /// let allowed: Vec<_> = row.cases.iter().filter(|c| c.allowed).collect();
    /// assert_eq!(allowed.len(), 1);
    /// assert_eq!(allowed[0].condition, "stage = production");
    /// assert_eq!(allowed[0].policy_ids, ["data-scientist.inference-production"]);
    /// # Ok::<(), warden_policy::PolicyError>(())
    /// ```
    pub fn access(&self, query: &AccessQuery, time: i64) -> Result<Vec<AccessRow>, PolicyError> {
        let principal = Principal::from_claims(&query.subject, query.roles.iter().cloned(), query.tenant.as_deref())?;
        let actions = self.actions();
        let scopes = match &query.scopes {
            Some(scopes) => scopes.clone(),
            None => actions
                .iter()
                .map(|a| (*a).to_owned())
                .chain([format!("{TOOL_SCOPE_PREFIX}{EXAMPLE_ID}")])
                .collect(),
        };
        let base = RequestContext {
            scopes,
            client_id: CLIENT_ID.to_owned(),
            purpose: query.purpose.clone(),
            time,
            ..RequestContext::default()
        };
        let mut rows = Vec::new();
        for action in actions {
            let Some(facts) = self.action_facts(action, principal.kind()) else {
                continue;
            };
            if !facts.applies {
                continue;
            }
            for full_type in &facts.resource_types {
                let resource_type = full_type
                    .strip_prefix(NAMESPACE)
                    .and_then(|rest| rest.strip_prefix("::"))
                    .filter(|base| !base.contains("::"))
                    .unwrap_or(full_type)
                    .to_owned();
                let grid = match self.shape(full_type) {
                    Some(Ok(attributes)) => Grid::new(query, &principal, &base, attributes, facts.policy_text),
                    Some(Err(problem)) => Err(problem.clone()),
                    None => Err(format!("the schema describes no entity type `{full_type}`")),
                };
                let row = grid.and_then(|grid| {
                    let outcomes = grid.decide(self, &principal, action, full_type, &base)?;
                    Ok((summarise(&grid.dims, &outcomes), verdict(&outcomes)))
                });
                rows.push(match row {
                    Ok((cases, verdict)) => AccessRow {
                        action: action.to_owned(),
                        resource_type,
                        verdict,
                        cases,
                        problem: None,
                    },
                    Err(problem) => AccessRow {
                        action: action.to_owned(),
                        resource_type,
                        verdict: Verdict::Unknown,
                        cases: Vec::new(),
                        problem: Some(problem),
                    },
                });
            }
        }
        Ok(rows)
    }
}

/// An entity type's attributes, or why the matrix cannot fill them.
pub(crate) type Shape = Result<Vec<Attribute>, String>;

/// One attribute of an entity type, as the schema declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute {
    name: String,
    kind: Kind,
    required: bool,
}

/// The attribute types the matrix can fill.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    String,
    Long,
    Bool,
    StringSet,
    /// Anything else (records, entities, extension types, common types),
    /// by its name.
    Other(String),
}

/// Every entity type's attributes, by full name (`Warden::Model`), read
/// from the schema text through its JSON form.
pub(crate) fn shapes(schema_text: &str) -> Result<HashMap<String, Shape>, String> {
    use serde_json::Value;

    let (fragment, _warnings) = cedar_policy::SchemaFragment::from_cedarschema_str(schema_text)
        .map_err(|e| format!("reading the schema's entity types: {e}"))?;
    let json = fragment
        .to_json_value()
        .map_err(|e| format!("reading the schema's entity types: {e}"))?;
    let mut shapes = HashMap::new();
    let Value::Object(namespaces) = json else {
        return Ok(shapes);
    };
    for (namespace, body) in &namespaces {
        let Some(Value::Object(types)) = body.get("entityTypes") else {
            continue;
        };
        for (name, definition) in types {
            let full = if namespace.is_empty() {
                name.clone()
            } else {
                format!("{namespace}::{name}")
            };
            let shape = match definition.get("shape") {
                None => Ok(Vec::new()),
                Some(shape) => match shape.get("attributes") {
                    Some(Value::Object(attributes)) => Ok(attributes
                        .iter()
                        .map(|(name, ty)| Attribute {
                            name: name.clone(),
                            kind: kind(ty),
                            required: ty.get("required").and_then(Value::as_bool).unwrap_or(true),
                        })
                        .collect()),
                    _ => Err(format!(
                        "`{full}`'s attributes are not a record the access matrix can read"
                    )),
                },
            };
            shapes.insert(full, shape);
        }
    }
    Ok(shapes)
}

/// The kind of an attribute type in the schema's JSON form.
fn kind(ty: &serde_json::Value) -> Kind {
    let field = |name: &str| ty.get(name).and_then(serde_json::Value::as_str).unwrap_or("");
    let named = match field("type") {
        "EntityOrCommon" => field("name"),
        "Set" => {
            return match ty.get("element").map(kind) {
                Some(Kind::String) => Kind::StringSet,
                _ => Kind::Other("Set".to_owned()),
            };
        }
        other => other,
    };
    match named.trim_start_matches("__cedar::") {
        "String" => Kind::String,
        "Long" => Kind::Long,
        "Bool" | "Boolean" => Kind::Bool,
        other => Kind::Other(other.to_owned()),
    }
}

/// What one dimension of the grid sets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A resource attribute.
    Attribute(String),
    /// The request's `purpose`.
    Purpose,
}

/// One dimension of the grid: the values tried, each with its label.
#[derive(Debug, Clone)]
struct Dim {
    name: String,
    target: Target,
    /// `None` leaves the attribute or purpose out.
    values: Vec<(Option<AttrValue>, String)>,
}

/// The representative requests for one action and resource type: fixed
/// attributes and the dimensions varied.
struct Grid {
    fixed: Resource,
    dims: Vec<Dim>,
}

impl Grid {
    fn new(
        query: &AccessQuery,
        principal: &Principal,
        base: &RequestContext,
        attributes: &[Attribute],
        policy_text: &str,
    ) -> Result<Self, String> {
        let named = |word: &str| mentions(policy_text, word);
        let purpose = query.purpose.clone().unwrap_or_else(|| EXAMPLE_PURPOSE.to_owned());
        let strings = |values: &[&str]| -> Vec<(Option<AttrValue>, String)> {
            values
                .iter()
                .map(|v| (Some(AttrValue::from(*v)), (*v).to_owned()))
                .collect()
        };
        let mut fixed = Resource::new("", EXAMPLE_ID);
        let mut dims = Vec::new();
        for attribute in attributes {
            let name = attribute.name.as_str();
            let varied = match (&attribute.kind, name) {
                (Kind::String, "classification") if named(name) => Some(strings(&CLASSIFICATIONS)),
                (Kind::String, "stage") if named(name) => Some(strings(&STAGES)),
                (Kind::StringSet, "allowed_purposes") if named(name) => Some(vec![
                    (Some(AttrValue::Set(Vec::new())), "[]".to_owned()),
                    (Some(AttrValue::Set(vec![purpose.clone()])), format!("[{purpose}]")),
                    (
                        Some(AttrValue::Set(vec![OTHER_PURPOSE.to_owned()])),
                        format!("[{OTHER_PURPOSE}]"),
                    ),
                ]),
                (Kind::String, "tenant") if named(name) => principal.tenant().map(|tenant| {
                    vec![
                        (Some(AttrValue::from(tenant)), tenant.to_owned()),
                        (Some(AttrValue::from(OTHER_TENANT)), OTHER_TENANT.to_owned()),
                    ]
                }),
                (Kind::String, "owner") if named(name) => Some(vec![
                    (Some(AttrValue::from(query.subject.as_str())), "the subject".to_owned()),
                    (Some(AttrValue::from(OTHER_OWNER)), "someone else".to_owned()),
                ]),
                (Kind::String, "name") if named(name) && query.scopes.is_some() => {
                    base.granted_tools().min().map(|tool| {
                        vec![
                            (Some(AttrValue::from(tool)), tool.to_owned()),
                            (Some(AttrValue::from(OTHER_TOOL)), OTHER_TOOL.to_owned()),
                        ]
                    })
                }
                _ => None,
            };
            if let Some(values) = varied {
                dims.push(Dim {
                    name: name.to_owned(),
                    target: Target::Attribute(name.to_owned()),
                    values,
                });
                continue;
            }
            if !attribute.required {
                continue;
            }
            let value = match (&attribute.kind, name) {
                (Kind::String, "classification") => AttrValue::from(CLASSIFICATIONS[0]),
                (Kind::String, "stage") => AttrValue::from(STAGES[0]),
                (Kind::String, "tenant") => AttrValue::from(principal.tenant().unwrap_or(EXAMPLE_VALUE)),
                (Kind::String, "owner") => AttrValue::from(OTHER_OWNER),
                (Kind::String, "name") => AttrValue::from(EXAMPLE_ID),
                (Kind::String, _) => AttrValue::from(EXAMPLE_VALUE),
                (Kind::Long, _) => AttrValue::Long(0),
                (Kind::Bool, _) => AttrValue::Bool(false),
                (Kind::StringSet, _) => AttrValue::Set(Vec::new()),
                (Kind::Other(ty), _) => {
                    return Err(format!(
                        "the required attribute `{name}` has a type (`{ty}`) the access matrix cannot fill"
                    ));
                }
            };
            fixed.attributes.insert(name.to_owned(), value);
        }
        if query.purpose.is_none() && named("purpose") {
            dims.push(Dim {
                name: "purpose".to_owned(),
                target: Target::Purpose,
                values: vec![
                    (None, "(none)".to_owned()),
                    (Some(AttrValue::from(purpose.as_str())), purpose.clone()),
                ],
            });
        }
        // The order the conditions name them in.
        let rank = |dim: &Dim| {
            [
                "classification",
                "allowed_purposes",
                "purpose",
                "stage",
                "tenant",
                "owner",
                "name",
            ]
            .iter()
            .position(|n| *n == dim.name)
            .unwrap_or(usize::MAX)
        };
        dims.sort_by_key(rank);
        Ok(Self { fixed, dims })
    }

    /// Decides every cell of the grid, in row-major order (the last
    /// dimension varies fastest).
    fn decide(
        &self,
        engine: &PolicyEngine,
        principal: &Principal,
        action: &str,
        full_type: &str,
        base: &RequestContext,
    ) -> Result<Vec<Outcome>, String> {
        let cells: usize = self.dims.iter().map(|d| d.values.len()).product();
        let mut outcomes = Vec::with_capacity(cells);
        let mut resource = self.fixed.clone();
        full_type.clone_into(&mut resource.type_name);
        let mut context = base.clone();
        for cell in 0..cells {
            for (dim, value) in self.dims.iter().zip(indices(&self.dims, cell)) {
                let value = dim.values.get(value).and_then(|(v, _)| v.clone());
                match (&dim.target, value) {
                    (Target::Attribute(name), Some(value)) => {
                        resource.attributes.insert(name.clone(), value);
                    }
                    (Target::Attribute(name), None) => {
                        resource.attributes.remove(name);
                    }
                    (Target::Purpose, Some(AttrValue::String(purpose))) => context.purpose = Some(purpose),
                    (Target::Purpose, _) => context.purpose = None,
                }
            }
            let decision = engine
                .decide(principal, action, &resource, &context)
                .map_err(|e| e.to_string())?;
            outcomes.push((decision.allowed, decision.policy_ids));
        }
        Ok(outcomes)
    }
}

/// A cell's outcome: allowed, and the deciding policy ids.
type Outcome = (bool, Vec<String>);

/// The value index of each dimension in cell number `cell`.
fn indices(dims: &[Dim], mut cell: usize) -> Vec<usize> {
    let mut out = vec![0; dims.len()];
    for (slot, dim) in out.iter_mut().zip(dims).rev() {
        let n = dim.values.len().max(1);
        *slot = cell % n;
        cell /= n;
    }
    out
}

/// The cell number of `indices`.
fn cell_of(dims: &[Dim], indices: &[usize]) -> usize {
    dims.iter()
        .zip(indices)
        .fold(0, |cell, (dim, i)| cell * dim.values.len().max(1) + i)
}

fn verdict(outcomes: &[Outcome]) -> Verdict {
    let allowed = outcomes.iter().filter(|(allowed, _)| *allowed).count();
    if allowed == outcomes.len() {
        Verdict::Always
    } else if allowed == 0 {
        Verdict::Never
    } else {
        Verdict::Sometimes
    }
}

/// A box of the grid: for each dimension, the value indices it spans.
type GridBox = Vec<Vec<usize>>;

/// Every cell of a box.
fn cells(dims: &[Dim], b: &GridBox) -> Vec<usize> {
    let mut out = vec![Vec::with_capacity(dims.len())];
    for values in b {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(*v);
                    next
                })
            })
            .collect();
    }
    out.iter().map(|ix| cell_of(dims, ix)).collect()
}

/// Covers the grid with disjoint boxes of equal outcome, greedily: from
/// each cell not yet covered, a box grows along each dimension in turn
/// while every cell it adds has the same outcome and is not yet covered.
/// Boxes of equal outcome that differ in one dimension only are then
/// merged.
fn summarise(dims: &[Dim], outcomes: &[Outcome]) -> Vec<AccessCase> {
    let mut covered = vec![false; outcomes.len()];
    let mut boxes: Vec<(GridBox, &Outcome)> = Vec::new();
    for (seed, outcome) in outcomes.iter().enumerate() {
        if covered.get(seed).copied().unwrap_or(true) {
            continue;
        }
        let mut b: GridBox = indices(dims, seed).into_iter().map(|i| vec![i]).collect();
        for d in 0..dims.len() {
            let count = dims.get(d).map_or(0, |dim| dim.values.len());
            for value in 0..count {
                let Some(span) = b.get(d) else { break };
                if span.contains(&value) {
                    continue;
                }
                let mut wider = b.clone();
                if let Some(span) = wider.get_mut(d) {
                    span.push(value);
                }
                let fits = cells(dims, &wider)
                    .iter()
                    .all(|c| !covered.get(*c).copied().unwrap_or(true) && outcomes.get(*c) == Some(outcome));
                if fits {
                    b = wider;
                }
            }
        }
        for c in cells(dims, &b) {
            if let Some(slot) = covered.get_mut(c) {
                *slot = true;
            }
        }
        boxes.push((b, outcome));
    }

    // Merge boxes of equal outcome that differ in one dimension only.
    let mut merged = true;
    while merged {
        merged = false;
        'search: for i in 0..boxes.len() {
            for j in i + 1..boxes.len() {
                let (Some((a, oa)), Some((b, ob))) = (boxes.get(i), boxes.get(j)) else {
                    continue;
                };
                if oa != ob {
                    continue;
                }
                let differing: Vec<usize> = (0..dims.len()).filter(|d| a.get(*d) != b.get(*d)).collect();
                if let [d] = differing[..] {
                    let extra = b.get(d).cloned().unwrap_or_default();
                    boxes.remove(j);
                    if let Some(span) = boxes.get_mut(i).and_then(|(a, _)| a.get_mut(d)) {
                        span.extend(extra);
                        span.sort_unstable();
                    }
                    merged = true;
                    break 'search;
                }
            }
        }
    }

    boxes
        .into_iter()
        .map(|(b, (allowed, policy_ids))| AccessCase {
            condition: condition(dims, &b),
            allowed: *allowed,
            policy_ids: policy_ids.clone(),
        })
        .collect()
}

/// `name = a or b, …` for the dimensions a box does not span entirely.
fn condition(dims: &[Dim], b: &GridBox) -> String {
    let parts: Vec<String> = dims
        .iter()
        .zip(b)
        .filter(|(dim, span)| span.len() < dim.values.len())
        .map(|(dim, span)| {
            let labels: Vec<&str> = span
                .iter()
                .filter_map(|i| dim.values.get(*i).map(|(_, label)| label.as_str()))
                .collect();
            format!("{} = {}", dim.name, labels.join(" or "))
        })
        .collect();
    if parts.is_empty() {
        "any".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Whether `text` has `word` as a whole identifier (not inside a longer
/// one such as `allowed_purposes`).
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text.get(..at).and_then(|s| s.chars().next_back());
        let after = text.get(at + word.len()..).and_then(|s| s.chars().next());
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    fn matrix(query: &AccessQuery) -> Vec<AccessRow> {
        PolicyEngine::builtin().unwrap().access(query, T0).unwrap()
    }

    fn row<'a>(rows: &'a [AccessRow], action: &str, resource_type: &str) -> &'a AccessRow {
        rows.iter()
            .find(|r| r.action == action && r.resource_type == resource_type)
            .unwrap_or_else(|| panic!("no row {action} on {resource_type}"))
    }

    fn granting(row: &AccessRow) -> Vec<&str> {
        let mut ids: Vec<&str> = row
            .cases
            .iter()
            .filter(|c| c.allowed)
            .flat_map(|c| c.policy_ids.iter().map(String::as_str))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    #[test]
    fn every_action_and_resource_type_of_the_schema_has_a_row() {
        let rows = matrix(&AccessQuery::role("auditor"));
        let engine = PolicyEngine::builtin().unwrap();
        for action in engine.actions() {
            assert!(rows.iter().any(|r| r.action == action), "{action}");
        }
        assert!(
            rows.iter()
                .all(|r| r.verdict != Verdict::Unknown && r.problem.is_none())
        );
        // dataset.read: Dataset and DatasetVersion; training.run: four types.
        assert_eq!(rows.iter().filter(|r| r.action == "training.run").count(), 4);
        assert_eq!(row(&rows, "dataset.read", "DatasetVersion").action, "dataset.read");
        let pairs: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.action.as_str(), r.resource_type.as_str()))
            .collect();
        let mut sorted = pairs.clone();
        sorted.sort_unstable();
        assert_eq!(pairs, sorted);
    }

    #[test]
    fn an_auditor_reads_and_changes_nothing() {
        let rows = matrix(&AccessQuery::role("auditor"));
        let audit = row(&rows, "audit.read", "AuditLog");
        assert_eq!(audit.verdict, Verdict::Always);
        assert_eq!(
            audit.cases,
            [AccessCase {
                condition: "any".into(),
                allowed: true,
                policy_ids: vec!["auditor.read".into()],
            }]
        );
        for (action, ty) in [
            ("policy.read", "PolicySet"),
            ("key.read", "KeyRing"),
            ("client.read", "Client"),
            ("model.read", "Model"),
            ("lineage.read", "Dataset"),
        ] {
            let r = row(&rows, action, ty);
            assert_eq!(
                (r.verdict, granting(r)),
                (Verdict::Always, vec!["auditor.read"]),
                "{action}"
            );
        }
        for (action, ty) in [
            ("model.approve", "Model"),
            ("model.approve", "ModelVersion"),
            ("dataset.write", "Dataset"),
            ("dataset.classify", "Dataset"),
        ] {
            let r = row(&rows, action, ty);
            assert_eq!(r.verdict, Verdict::Never, "{action}");
            assert_eq!(r.cases.len(), 1, "{r:?}");
            assert_eq!(r.cases[0].condition, "any");
            assert_eq!(r.cases[0].policy_ids, ["auditor.read-only"]);
        }
        // Not granted, not forbidden: the default deny.
        let invoke = row(&rows, "inference.invoke", "Endpoint");
        assert_eq!(invoke.verdict, Verdict::Never);
        assert!(invoke.cases.iter().all(|c| c.policy_ids.is_empty()));
    }

    #[test]
    fn a_data_scientist_calls_production_models_only() {
        let rows = matrix(&AccessQuery::role("data-scientist"));
        for ty in ["Model", "ModelVersion"] {
            let r = row(&rows, "inference.invoke", ty);
            assert_eq!(r.verdict, Verdict::Sometimes);
            let allowed: Vec<_> = r.cases.iter().filter(|c| c.allowed).collect();
            assert_eq!(allowed.len(), 1, "{r:#?}");
            assert_eq!(allowed[0].condition, "stage = production");
            assert_eq!(allowed[0].policy_ids, ["data-scientist.inference-production"]);
            let archived = r.cases.iter().find(|c| c.condition == "stage = archived").unwrap();
            assert_eq!(
                (archived.allowed, archived.policy_ids.as_slice()),
                (false, &["model.archived".to_owned()][..])
            );
        }
        // An endpoint has no stage: never.
        assert_eq!(row(&rows, "inference.invoke", "Endpoint").verdict, Verdict::Never);
    }

    #[test]
    fn a_data_scientist_reads_personal_data_only_for_an_allowed_purpose() {
        let rows = matrix(&AccessQuery::role("data-scientist"));
        let r = row(&rows, "dataset.read", "Dataset");
        assert_eq!(r.verdict, Verdict::Sometimes);
        let allowed: Vec<&str> = r
            .cases
            .iter()
            .filter(|c| c.allowed)
            .map(|c| c.condition.as_str())
            .collect();
        assert_eq!(
            allowed,
            [
                "classification = public or internal, allowed_purposes = []",
                "classification = public or internal or pii, allowed_purposes = [fraud-detection], purpose = fraud-detection",
            ],
            "{r:#?}"
        );
        assert_eq!(granting(r), ["data-scientist.read-datasets"]);
        // pii without a purpose the dataset allows is forbidden by the guard.
        let pii = r
            .cases
            .iter()
            .find(|c| c.condition == "classification = pii, allowed_purposes = []")
            .unwrap();
        assert_eq!(
            (pii.allowed, pii.policy_ids.as_slice()),
            (false, &["dataset.pii-purpose".to_owned()][..])
        );
        // The conditions partition the grid: 4 classifications × 3 purpose
        // lists × 2 purposes, each cell in exactly one case.
        assert!(r.cases.len() < 24);
    }

    #[test]
    fn a_stated_purpose_is_not_varied() {
        let query = AccessQuery {
            purpose: Some("billing".into()),
            ..AccessQuery::role("data-scientist")
        };
        let rows = matrix(&query);
        let r = row(&rows, "dataset.read", "Dataset");
        assert!(r.cases.iter().all(|c| !c.condition.contains("purpose = ")), "{r:#?}");
        let pii = r
            .cases
            .iter()
            .find(|c| c.allowed && c.condition.contains("pii"))
            .unwrap();
        assert!(pii.condition.ends_with("allowed_purposes = [billing]"), "{pii:?}");
    }

    #[test]
    fn an_admin_may_do_everything_the_guards_allow() {
        let rows = matrix(&AccessQuery::role("admin"));
        for r in &rows {
            assert_ne!(r.verdict, Verdict::Never, "{r:?}");
            for case in &r.cases {
                if case.allowed {
                    assert_eq!(case.policy_ids, ["admin.all"], "{r:?}");
                } else {
                    assert!(
                        case.policy_ids.iter().all(|id| {
                            ["dataset.purpose", "dataset.pii-purpose", "model.archived"].contains(&id.as_str())
                        }) && !case.policy_ids.is_empty(),
                        "{r:?}"
                    );
                }
            }
        }
        assert_eq!(row(&rows, "model.approve", "Model").verdict, Verdict::Always);
        assert_eq!(row(&rows, "policy.read", "PolicySet").verdict, Verdict::Always);
        assert_eq!(row(&rows, "inference.invoke", "Model").verdict, Verdict::Sometimes);
        assert_eq!(row(&rows, "dataset.read", "DatasetVersion").verdict, Verdict::Sometimes);
        assert_eq!(row(&rows, "dataset.write", "Dataset").verdict, Verdict::Always);
    }

    #[test]
    fn an_approver_approves_models_and_versions() {
        let rows = matrix(&AccessQuery::role("approver"));
        for ty in ["Model", "ModelVersion"] {
            let r = row(&rows, "model.approve", ty);
            assert_eq!((r.verdict, granting(r)), (Verdict::Always, vec!["approver.approve"]));
        }
        assert_eq!(row(&rows, "model.promote", "Model").verdict, Verdict::Never);
    }

    #[test]
    fn an_agent_never_approves() {
        let query = AccessQuery {
            subject: "agent:release-bot".into(),
            ..AccessQuery::role("approver")
        };
        let rows = matrix(&query);
        let r = row(&rows, "model.approve", "Model");
        assert_eq!(r.verdict, Verdict::Never);
        assert_eq!(r.cases[0].policy_ids, ["agent.never-approve"]);
        // Agents call the tools they are granted (every scope here).
        let tool = row(&rows, "tool.call", "Tool");
        assert_eq!(
            (tool.verdict, granting(tool)),
            (Verdict::Always, vec!["agent.tool-call"])
        );
    }

    #[test]
    fn scopes_and_tenants_are_varied_when_given() {
        let query = AccessQuery {
            subject: "agent:bot".into(),
            roles: vec!["auditor".into()],
            tenant: Some("acme".into()),
            scopes: Some(vec!["model.read".into(), "tool:search".into()]),
            purpose: None,
        };
        let rows = matrix(&query);
        let model = row(&rows, "model.read", "Model");
        assert_eq!(model.verdict, Verdict::Sometimes);
        let denied: Vec<_> = model.cases.iter().filter(|c| !c.allowed).collect();
        assert_eq!(denied.len(), 1, "{model:#?}");
        assert_eq!(denied[0].condition, "tenant = another-tenant");
        assert_eq!(denied[0].policy_ids, ["tenant.isolation"]);

        let audit = row(&rows, "audit.read", "AuditLog");
        assert_eq!(audit.verdict, Verdict::Never);
        assert_eq!(audit.cases[0].policy_ids, ["scope.audit.read"]);

        let tool = row(&rows, "tool.call", "Tool");
        assert_eq!(tool.verdict, Verdict::Sometimes);
        let allowed: Vec<_> = tool.cases.iter().filter(|c| c.allowed).collect();
        assert_eq!(allowed.len(), 1, "{tool:#?}");
        assert_eq!(allowed[0].condition, "name = search");
    }

    #[test]
    fn a_bad_subject_is_an_error() {
        let query = AccessQuery {
            subject: "alice".into(),
            ..AccessQuery::default()
        };
        let err = PolicyEngine::builtin().unwrap().access(&query, T0).unwrap_err();
        assert!(matches!(err, PolicyError::Subject(_)), "{err}");
    }

    #[test]
    fn unfillable_attributes_make_unknown_rows() {
        let schema = crate::builtin::SCHEMA.replace(
            "  entity AuditLog;",
            "  type Ref = { a: String };\n  entity AuditLog { since: Ref };",
        );
        assert_ne!(schema, crate::builtin::SCHEMA);
        let engine = PolicyEngine::from_sources(&schema, crate::builtin::POLICIES).unwrap();
        let rows = engine.access(&AccessQuery::role("auditor"), T0).unwrap();
        let r = row(&rows, "audit.read", "AuditLog");
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(r.problem.as_deref().is_some_and(|p| p.contains("since")), "{r:?}");
        assert_eq!(row(&rows, "model.read", "Model").verdict, Verdict::Always);
    }

    #[test]
    fn mentions_are_whole_identifiers() {
        assert!(mentions("resource.owner == x", "owner"));
        assert!(!mentions("resource.allowed_purposes", "purpose"));
        assert!(!mentions("resource.owners", "owner"));
        assert!(mentions("context has purpose", "purpose"));
    }

    #[test]
    fn the_matrix_of_one_role_is_fast() {
        let engine = PolicyEngine::builtin().unwrap();
        let query = AccessQuery {
            tenant: Some("acme".into()),
            ..AccessQuery::role("admin")
        };
        engine.access(&query, T0).unwrap();
        let start = std::time::Instant::now();
        let rows = engine.access(&query, T0).unwrap();
        let elapsed = start.elapsed();
        assert!(!rows.is_empty());
        // Generous for debug builds on a loaded machine; release is far below.
        assert!(elapsed < std::time::Duration::from_secs(2), "{elapsed:?}");
    }
}
