//! [`PolicyEngine`]: a schema and a strictly validated policy set, and
//! [`PolicyEngine::decide`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;

use crate::access::{self, Shape};
use crate::approval::{self, APPROVAL_ANNOTATION, APPROVAL_TTL_ANNOTATION, ApprovalNeed, ApprovalSpec};
use crate::cache::Memo;
use crate::diagnostic;
use crate::error::{PolicyError, SourceProblem};
use crate::request::{AttrValue, Principal, PrincipalKind, RequestContext, Resource, Tenancy};

/// The schema's namespace: entity types are `Warden::User`, `Warden::Model`…
pub const NAMESPACE: &str = "Warden";
/// The file name schema problems are reported under.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// The annotation that names a policy: `@id("ml-engineer.inference")`.
const ID_ANNOTATION: &str = "id";
/// The entity type of roles, parents of principals.
const ROLE_TYPE: &str = "Role";
/// Most decisions an engine remembers ([`Memos::decisions`]).
const DECISION_MEMO: usize = 8192;
/// Most entity sets an engine remembers ([`Memos::entities`]).
const ENTITIES_MEMO: usize = 4096;
/// Most request shapes an engine remembers ([`Memos::shapes`]); there are
/// few (actions × principal types × resource types × optional parts).
const SHAPE_MEMO: usize = 4096;

/// Where an engine's schema and policies came from, so that it can be
/// reloaded from the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The set built into the crate ([`PolicyEngine::builtin`]).
    Builtin,
    /// A directory read by [`load`](crate::load).
    Dir(PathBuf),
    /// Texts handed to [`PolicyEngine::from_sources`].
    Texts,
}

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The `@id` of the policies that decided, sorted: for an allow the
    /// permits that matched; for a deny the forbids that matched (none:
    /// no permit matched, the default deny) and any policy that failed to
    /// evaluate.
    pub policy_ids: Vec<String>,
    /// Policies that failed to evaluate, with Cedar's message. Any error
    /// denies: Cedar skips a failing policy, and a skipped `forbid` might
    /// have applied.
    pub errors: Vec<String>,
    /// For an allow: the person's approval the deciding permits ask for
    /// (`@approval`, see [`crate::approval`]) before the request may
    /// proceed; `None` when none asks (and always for a deny).
    pub approval: Option<ApprovalNeed>,
}

/// A schema and a policy set that validates against it in strict mode,
/// ready to decide requests.
///
/// Immutable, `Send + Sync`, and cheap to clone (one `Arc`): a server keeps
/// the engine in force behind an atomic pointer and swaps in the result of
/// [`reload`](Self::reload) only when that is `Ok`, so an invalid set never
/// replaces a valid one.
#[derive(Clone)]
pub struct PolicyEngine {
    inner: Arc<Inner>,
}

struct Inner {
    schema: Schema,
    authorizer: Authorizer,
    /// `inference.invoke` → its uid and the policies whose scope can match it.
    actions: HashMap<String, ActionSlice>,
    /// The schema's action entities, when it has action groups (so that
    /// `action in Warden::Action::"group"` sees them); without groups an
    /// action's only ancestor is itself and the entities are not needed.
    action_entities: Option<Entities>,
    /// `Model` and `Warden::Model` → `Warden::Model`.
    types: HashMap<String, EntityTypeName>,
    /// `Warden::Model` → its attributes, for the access matrix.
    shapes: HashMap<String, Shape>,
    /// The principal types, by [`PrincipalKind`], and `Role`.
    user: EntityTypeName,
    service: EntityTypeName,
    agent: EntityTypeName,
    role: EntityTypeName,
    policy_ids: Vec<String>,
    /// `@id` → what its `@approval` annotations ask for.
    approvals: HashMap<String, ApprovalSpec>,
    files: Vec<String>,
    warnings: Vec<String>,
    source: PolicySource,
    memos: Memos,
}

/// What an engine remembers between requests (see `cache.rs`): built
/// anew with every engine, so a reload forgets everything.
///
/// Building a request's entities and checking them and the request against
/// the schema cost more than Cedar's evaluation; none of it changes while
/// the inputs do not.
struct Memos {
    /// Every input of [`PolicyEngine::decide`] → its decision. Cedar's
    /// answer is a function of the policies and schema (this engine's), the
    /// principal, action and resource with their attributes, and the
    /// context, which are the key; the context's `time` is in it too, so an
    /// entry serves at most the requests of one second.
    decisions: Memo<DecisionKey, Decision>,
    /// A principal (subject, roles, tenant) and a resource (type, id,
    /// attributes) → their entities with the schema's action entities,
    /// checked against the schema once.
    entities: Memo<EntitiesKey, Arc<Entities>>,
    /// Request shapes that passed the schema's request check. The check
    /// reads the action, the principal and resource types, and the
    /// context's type: which optional attributes are present, and which
    /// sets are empty (an empty set fits any set type). Every other context
    /// value has the one type [`cedar_context`] gives it, so a request of a
    /// known shape passes without being checked again.
    shapes: Memo<RequestShape, ()>,
}

impl Memos {
    fn new() -> Self {
        Memos {
            decisions: Memo::new(DECISION_MEMO),
            entities: Memo::new(ENTITIES_MEMO),
            shapes: Memo::new(SHAPE_MEMO),
        }
    }
}

/// The key of [`Memos::decisions`].
#[derive(Hash, PartialEq, Eq)]
struct DecisionKey {
    principal: Principal,
    action: String,
    resource: Resource,
    context: RequestContext,
}

/// A [`DecisionKey`] borrowed: hashes as the key does (fields in the same
/// order, `&str` as `String`).
#[derive(Hash)]
struct DecisionQuery<'a> {
    principal: &'a Principal,
    action: &'a str,
    resource: &'a Resource,
    context: &'a RequestContext,
}

impl PartialEq<DecisionQuery<'_>> for DecisionKey {
    fn eq(&self, q: &DecisionQuery<'_>) -> bool {
        self.principal == *q.principal
            && self.action == q.action
            && self.resource == *q.resource
            && self.context == *q.context
    }
}

impl DecisionQuery<'_> {
    fn to_key(&self) -> DecisionKey {
        DecisionKey {
            principal: self.principal.clone(),
            action: self.action.to_owned(),
            resource: self.resource.clone(),
            context: self.context.clone(),
        }
    }
}

/// The key of [`Memos::entities`].
#[derive(Hash, PartialEq, Eq)]
struct EntitiesKey {
    principal: Principal,
    resource: Resource,
}

/// An [`EntitiesKey`] borrowed.
#[derive(Hash)]
struct EntitiesQuery<'a> {
    principal: &'a Principal,
    resource: &'a Resource,
}

impl PartialEq<EntitiesQuery<'_>> for EntitiesKey {
    fn eq(&self, q: &EntitiesQuery<'_>) -> bool {
        self.principal == *q.principal && self.resource == *q.resource
    }
}

/// What the schema's request check reads (see [`Memos::shapes`]).
#[derive(Hash, PartialEq, Eq)]
struct RequestShape {
    action: EntityUid,
    principal: PrincipalKind,
    resource: EntityTypeName,
    /// Present: purpose, source IP, route, strict tenancy; non-empty:
    /// scopes, granted tools, actors.
    context: [bool; 7],
}

impl RequestShape {
    fn of(action: &EntityUid, principal: PrincipalKind, resource: &EntityTypeName, c: &RequestContext) -> Self {
        RequestShape {
            action: action.clone(),
            principal,
            resource: resource.clone(),
            context: [
                c.purpose.is_some(),
                c.source_ip.is_some(),
                c.route.is_some(),
                c.tenancy == Tenancy::Strict,
                !c.scopes.is_empty(),
                c.granted_tools().next().is_some(),
                !c.actors.is_empty(),
            ],
        }
    }
}

/// One action and the policies that can apply to it.
///
/// Cedar's authorizer evaluates every policy of the set it is given, and
/// its per-policy cost dominates a decision. A policy whose action scope
/// cannot match the request's action evaluates to false without error, so
/// leaving it out changes nothing: each action gets the slice of policies
/// whose scope is `action`, names it, or names a group it belongs to. With
/// the default set that is about a fifth of the policies.
struct ActionSlice {
    uid: EntityUid,
    policies: PolicySet,
    /// The slice's policy texts, one after the other: the access matrix
    /// varies an attribute only when some policy of the slice names it.
    text: String,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("source", &self.inner.source)
            .field("files", &self.inner.files)
            .field("policy_ids", &self.inner.policy_ids)
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Parses `schema_text` (Cedar schema syntax) and every `(file name,
    /// policy text)`, and validates the policies against the schema in
    /// strict mode.
    ///
    /// Every policy needs an `@id("…")` annotation, unique across files:
    /// decisions report policies by it. Templates are refused. The schema
    /// must declare the principal types `Warden::User`, `Warden::Service`,
    /// `Warden::Agent` and `Warden::Role`. Errors list every problem found,
    /// each with file, line and column.
    pub fn from_sources<N, T>(schema_text: &str, files: impl IntoIterator<Item = (N, T)>) -> Result<Self, PolicyError>
    where
        N: AsRef<str>,
        T: AsRef<str>,
    {
        Self::build(SCHEMA_FILE, schema_text, files, PolicySource::Texts)
    }

    /// [`from_sources`](Self::from_sources), reporting schema problems under
    /// `schema_file` and remembering `source`.
    pub(crate) fn build<N, T>(
        schema_file: &str,
        schema_text: &str,
        files: impl IntoIterator<Item = (N, T)>,
        source: PolicySource,
    ) -> Result<Self, PolicyError>
    where
        N: AsRef<str>,
        T: AsRef<str>,
    {
        let (schema, schema_warnings) = Schema::from_cedarschema_str(schema_text)
            .map_err(|e| PolicyError::Schema(diagnostic::problems(schema_file, schema_text, &e)))?;
        let mut warnings: Vec<String> = schema_warnings.map(|w| format!("{schema_file}: {w}")).collect();
        let types = entity_types(&schema);
        let shapes = access::shapes(schema_text)
            .map_err(|e| PolicyError::Schema(vec![SourceProblem::in_file(schema_file, e)]))?;
        let required = |name: &str| {
            types.get(name).cloned().ok_or_else(|| {
                PolicyError::Schema(vec![SourceProblem::in_file(
                    schema_file,
                    format!("the schema declares no entity type `{NAMESPACE}::{name}`"),
                )])
            })
        };
        let (user, service, agent, role) = (
            required(PrincipalKind::User.type_name())?,
            required(PrincipalKind::Service.type_name())?,
            required(PrincipalKind::Agent.type_name())?,
            required(ROLE_TYPE)?,
        );

        let mut sources = Sources::default();
        for (name, text) in files {
            sources.add_file(name.as_ref(), text.as_ref());
        }

        // Validate every policy that parsed and has a unique id, even when
        // others did not, so that one run reports every problem.
        let validation = Validator::new(schema.clone()).validate(&sources.set, ValidationMode::Strict);
        let mut problems = std::mem::take(&mut sources.problems);
        for error in validation.validation_errors() {
            let problem = sources.problem(error.policy_id(), error);
            // Strict validation checks each policy once per (principal,
            // action, resource) type combination, so one mistake is often
            // reported several times at the same place: keep the first.
            let seen = problems.iter().any(|p| {
                p.file == problem.file && p.line.is_some() && (p.line, p.column) == (problem.line, problem.column)
            });
            if !seen {
                problems.push(problem);
            }
        }
        if !problems.is_empty() {
            problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            return Err(PolicyError::Policies(problems));
        }
        warnings.extend(
            validation
                .validation_warnings()
                .map(|w| sources.problem(w.policy_id(), w).to_string()),
        );

        let action_entities = schema
            .action_entities()
            .map_err(|e| PolicyError::Schema(vec![SourceProblem::in_file(schema_file, e.to_string())]))?;
        let mut actions = HashMap::new();
        for uid in schema.actions().filter(|uid| uid.type_name().namespace() == NAMESPACE) {
            let groups: HashSet<&EntityUid> = action_entities.ancestors(uid).into_iter().flatten().collect();
            let mut slice = PolicySet::new();
            let mut text = String::new();
            for policy in sources.set.policies().filter(|p| may_apply(p, uid, &groups)) {
                text.push_str(&policy.to_string());
                text.push('\n');
                slice.add(policy.clone()).map_err(|e| {
                    PolicyError::Policies(vec![SourceProblem::in_file(
                        sources.file_of(policy.id()),
                        e.to_string(),
                    )])
                })?;
            }
            let slice = ActionSlice {
                uid: uid.clone(),
                policies: slice,
                text,
            };
            actions.insert(uid.id().unescaped().to_owned(), slice);
        }
        let action_entities = schema.action_groups().next().is_some().then_some(action_entities);
        let mut policy_ids: Vec<String> = sources.origin.keys().cloned().collect();
        policy_ids.sort();
        Ok(Self {
            inner: Arc::new(Inner {
                schema,
                authorizer: Authorizer::new(),
                actions,
                action_entities,
                types,
                shapes,
                user,
                service,
                agent,
                role,
                policy_ids,
                approvals: sources.approvals,
                files: sources.files.into_keys().collect(),
                warnings,
                source,
                memos: Memos::new(),
            }),
        })
    }

    /// Decides whether `principal` may do `action` (e.g. `inference.invoke`)
    /// on `resource` in `context`.
    ///
    /// The request is checked against the schema first: an unknown action
    /// or entity type, a resource type the action does not apply to, or a
    /// missing or mistyped attribute is an error, and the caller denies.
    pub fn decide(
        &self,
        principal: &Principal,
        action: &str,
        resource: &Resource,
        context: &RequestContext,
    ) -> Result<Decision, PolicyError> {
        let query = DecisionQuery {
            principal,
            action,
            resource,
            context,
        };
        let memo = &self.inner.memos.decisions;
        if let Some(decision) = memo.get(&query) {
            return Ok(decision);
        }
        let decision = self.evaluate(principal, action, resource, context)?;
        memo.insert(query.to_key(), decision.clone());
        Ok(decision)
    }

    /// [`decide`](Self::decide) without its memo of decisions.
    fn evaluate(
        &self,
        principal: &Principal,
        action: &str,
        resource: &Resource,
        context: &RequestContext,
    ) -> Result<Decision, PolicyError> {
        let inner = &*self.inner;
        let action = inner
            .actions
            .get(action)
            .ok_or_else(|| PolicyError::UnknownAction(action.to_owned()))?;
        let resource_type = inner
            .types
            .get(&resource.type_name)
            .ok_or_else(|| PolicyError::UnknownEntityType(resource.type_name.clone()))?;

        let principal_uid = EntityUid::from_type_name_and_id(
            inner.principal_type(principal.kind()).clone(),
            EntityId::new(principal.name()),
        );
        let resource_uid = EntityUid::from_type_name_and_id(resource_type.clone(), EntityId::new(&resource.id));
        let entities = self.entities(principal, &principal_uid, resource, &resource_uid)?;

        // The schema checks a request's types only: once per shape.
        let shape = RequestShape::of(&action.uid, principal.kind(), resource_type, context);
        let checked = inner.memos.shapes.get(&shape).is_some();
        let request = Request::new(
            principal_uid,
            action.uid.clone(),
            resource_uid,
            cedar_context(context)?,
            (!checked).then_some(&inner.schema),
        )
        .map_err(request_error)?;
        if !checked {
            inner.memos.shapes.insert(shape, ());
        }
        let response = inner.authorizer.is_authorized(&request, &action.policies, &entities);

        let diagnostics = response.diagnostics();
        let mut policy_ids: Vec<String> = diagnostics.reason().map(ToString::to_string).collect();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        let allowed = response.decision() == cedar_policy::Decision::Allow && errors.is_empty();
        if !errors.is_empty() {
            if response.decision() == cedar_policy::Decision::Allow {
                policy_ids.clear();
            }
            policy_ids.extend(diagnostics.errors().map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(e) => e.policy_id().to_string(),
            }));
        }
        policy_ids.sort();
        policy_ids.dedup();
        let approval = if allowed {
            ApprovalNeed::of(policy_ids.iter().map(|id| (id.as_str(), inner.approvals.get(id))))
        } else {
            None
        };
        Ok(Decision {
            allowed,
            policy_ids,
            errors,
            approval,
        })
    }

    /// The entities of a request: the principal with its roles, the
    /// resource, and the schema's action entities when it has groups;
    /// checked against the schema when first built, then remembered.
    fn entities(
        &self,
        principal: &Principal,
        principal_uid: &EntityUid,
        resource: &Resource,
        resource_uid: &EntityUid,
    ) -> Result<Arc<Entities>, PolicyError> {
        let inner = &*self.inner;
        let query = EntitiesQuery { principal, resource };
        if let Some(entities) = inner.memos.entities.get(&query) {
            return Ok(entities);
        }
        let role_uids: HashSet<EntityUid> = principal
            .roles()
            .iter()
            .map(|r| EntityUid::from_type_name_and_id(inner.role.clone(), EntityId::new(r)))
            .collect();
        let principal_attrs: HashMap<String, RestrictedExpression> = principal
            .tenant()
            .map(|t| ("tenant".to_owned(), RestrictedExpression::new_string(t.to_owned())))
            .into_iter()
            .collect();
        let resource_attrs = resource
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), restricted(value)))
            .collect();

        let mut entities = Vec::with_capacity(role_uids.len() + 2);
        entities.extend(
            role_uids
                .iter()
                .map(|uid| Entity::new_no_attrs(uid.clone(), HashSet::new())),
        );
        entities.push(Entity::new(principal_uid.clone(), principal_attrs, role_uids).map_err(request_error)?);
        entities.push(Entity::new(resource_uid.clone(), resource_attrs, HashSet::new()).map_err(request_error)?);
        // `add_entities` checks them against the schema (attribute types,
        // required attributes, parent types) without adding the schema's
        // action entities, which `from_entities` would.
        let base = inner.action_entities.clone().unwrap_or_else(Entities::empty);
        let entities = Arc::new(
            base.add_entities(entities, Some(&inner.schema))
                .map_err(request_error)?,
        );
        inner.memos.entities.insert(
            EntitiesKey {
                principal: principal.clone(),
                resource: resource.clone(),
            },
            Arc::clone(&entities),
        );
        Ok(entities)
    }

    /// The set built into the crate: `policies/schema.cedarschema` and
    /// `policies/default/*.cedar`.
    pub fn builtin() -> Result<Self, PolicyError> {
        Self::build(
            SCHEMA_FILE,
            crate::builtin::SCHEMA,
            crate::builtin::POLICIES,
            PolicySource::Builtin,
        )
    }

    /// Whether requests in `tenancy` fit the schema: strict tenancy puts
    /// the attribute `tenancy` in every request's context, which the
    /// schema's context type must declare (`tenancy?: String`, as the
    /// built-in schema does); otherwise every decision would be an error.
    /// Checked once for every action, with a request of the first
    /// principal and resource type it applies to.
    pub fn check_tenancy(&self, tenancy: Tenancy) -> Result<(), PolicyError> {
        if tenancy == Tenancy::Shared {
            return Ok(());
        }
        let inner = &*self.inner;
        let context = RequestContext {
            tenancy,
            ..RequestContext::default()
        };
        let mut actions: Vec<&ActionSlice> = inner.actions.values().collect();
        actions.sort_by_key(|a| a.uid.to_string());
        for action in actions {
            let principal = inner
                .schema
                .principals_for_action(&action.uid)
                .and_then(|mut t| t.next());
            let resource = inner
                .schema
                .resources_for_action(&action.uid)
                .and_then(|mut t| t.next());
            let (Some(principal), Some(resource)) = (principal, resource) else {
                continue;
            };
            Request::new(
                EntityUid::from_type_name_and_id(principal.clone(), EntityId::new("probe")),
                action.uid.clone(),
                EntityUid::from_type_name_and_id(resource.clone(), EntityId::new("probe")),
                cedar_context(&context)?,
                Some(&inner.schema),
            )
            .map_err(|e| {
                PolicyError::Request(format!(
                    "tenancy `strict` needs the schema's request context to declare `tenancy?: String` ({})",
                    request_error_text(e)
                ))
            })?;
        }
        Ok(())
    }

    /// Where it came from.
    pub fn source(&self) -> &PolicySource {
        &self.inner.source
    }

    /// Number of policies.
    pub fn policy_count(&self) -> usize {
        self.inner.policy_ids.len()
    }

    /// Every policy's `@id`, sorted.
    pub fn policy_ids(&self) -> &[String] {
        &self.inner.policy_ids
    }

    /// The policies that ask for a person's approval (`@approval`), by
    /// `@id`, sorted.
    pub fn approval_policies(&self) -> Vec<(&str, &ApprovalSpec)> {
        let mut all: Vec<(&str, &ApprovalSpec)> = self
            .inner
            .approvals
            .iter()
            .map(|(id, spec)| (id.as_str(), spec))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// The policy files, sorted by name.
    pub fn files(&self) -> &[String] {
        &self.inner.files
    }

    /// Every action the schema declares (`inference.invoke`, …), sorted.
    pub fn actions(&self) -> Vec<&str> {
        let mut actions: Vec<&str> = self.inner.actions.keys().map(String::as_str).collect();
        actions.sort_unstable();
        actions
    }

    /// Number of entity types the schema declares.
    pub fn entity_type_count(&self) -> usize {
        self.inner.schema.entity_types().count()
    }

    /// Schema and validation warnings (policies that can never apply, …);
    /// they do not stop loading.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// What the access matrix needs to know about `action`: the resource
    /// types it applies to (full names, sorted), whether principals of
    /// `kind` may take it, and the text of the policies that can apply.
    pub(crate) fn action_facts(&self, action: &str, kind: PrincipalKind) -> Option<ActionFacts<'_>> {
        let inner = &*self.inner;
        let slice = inner.actions.get(action)?;
        let principal = inner.principal_type(kind);
        let applies = inner
            .schema
            .principals_for_action(&slice.uid)
            .is_some_and(|mut types| types.any(|t| t == principal));
        let mut resource_types: Vec<String> = inner
            .schema
            .resources_for_action(&slice.uid)
            .into_iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        resource_types.sort();
        Some(ActionFacts {
            applies,
            resource_types,
            policy_text: &slice.text,
        })
    }

    /// The attributes of the entity type `full_name` (`Warden::Model`).
    pub(crate) fn shape(&self, full_name: &str) -> Option<&Shape> {
        self.inner.shapes.get(full_name)
    }
}

/// See [`PolicyEngine::action_facts`].
pub(crate) struct ActionFacts<'a> {
    /// Whether principals of the asked kind may take the action.
    pub(crate) applies: bool,
    /// The resource types, full names, sorted.
    pub(crate) resource_types: Vec<String>,
    /// The policies that can apply, as text.
    pub(crate) policy_text: &'a str,
}

impl Inner {
    fn principal_type(&self, kind: PrincipalKind) -> &EntityTypeName {
        match kind {
            PrincipalKind::User => &self.user,
            PrincipalKind::Service => &self.service,
            PrincipalKind::Agent => &self.agent,
        }
    }
}

/// The schema's entity types, under their full name and, in the
/// [`NAMESPACE`], also their base name.
fn entity_types(schema: &Schema) -> HashMap<String, EntityTypeName> {
    let mut types = HashMap::new();
    for ty in schema.entity_types() {
        if ty.namespace() == NAMESPACE {
            types.insert(ty.basename().to_owned(), ty.clone());
        }
        types.insert(ty.to_string(), ty.clone());
    }
    types
}

/// Policies gathered from files: the combined set, renamed by `@id`, and
/// where each came from.
#[derive(Default)]
struct Sources {
    set: PolicySet,
    /// File name → text.
    files: BTreeMap<String, String>,
    /// `@id` → file name.
    origin: HashMap<String, String>,
    /// `@id` → its approval annotations, for the policies that have them.
    approvals: HashMap<String, ApprovalSpec>,
    problems: Vec<SourceProblem>,
}

impl Sources {
    fn add_file(&mut self, file: &str, text: &str) {
        self.files.insert(file.to_owned(), text.to_owned());
        let parsed = match PolicySet::from_str(text) {
            Ok(set) => set,
            Err(errors) => {
                self.problems
                    .extend(errors.iter().map(|e| diagnostic::problem(file, text, e)));
                return;
            }
        };
        if parsed.templates().next().is_some() {
            self.problems.push(SourceProblem::in_file(
                file,
                "policy templates are not supported: write static policies",
            ));
        }
        // Cedar names a file's policies `policy0`, `policy1`… in the order
        // they appear; walk them in that order so that each one's text is
        // found after the previous one's.
        let mut policies: Vec<_> = parsed.policies().collect();
        policies.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(0)
        });
        let mut cursor = 0;
        for policy in policies {
            let policy_text = policy.to_string();
            let offset = text
                .get(cursor..)
                .and_then(|rest| rest.find(policy_text.as_str()))
                .map(|i| cursor + i);
            if let Some(offset) = offset {
                cursor = offset + policy_text.len();
            }
            let at = |message: String| locate(file, text, offset, message);
            let Some(id) = policy.annotation(ID_ANNOTATION) else {
                self.problems
                    .push(at("policy has no `@id(\"…\")` annotation".to_owned()));
                continue;
            };
            if id.trim().is_empty() {
                self.problems.push(at("policy has an empty `@id`".to_owned()));
                continue;
            }
            if let Some(first) = self.origin.get(id) {
                self.problems
                    .push(at(format!("duplicate policy id `{id}` (first in `{first}`)")));
                continue;
            }
            match approval::read_annotations(
                policy.annotation(APPROVAL_ANNOTATION),
                policy.annotation(APPROVAL_TTL_ANNOTATION),
                policy.effect() == cedar_policy::Effect::Permit,
            ) {
                Ok(Some(spec)) => {
                    self.approvals.insert(id.to_owned(), spec);
                }
                Ok(None) => {}
                Err(message) => {
                    self.problems.push(at(format!("policy `{id}`: {message}")));
                    continue;
                }
            }
            match self.set.add(policy.new_id(PolicyId::new(id))) {
                Ok(()) => {
                    self.origin.insert(id.to_owned(), file.to_owned());
                }
                Err(e) => self.problems.push(at(e.to_string())),
            }
        }
    }

    /// The file the policy `id` came from.
    fn file_of(&self, id: &PolicyId) -> &str {
        self.origin.get(AsRef::<str>::as_ref(id)).map_or("?", String::as_str)
    }

    /// A diagnostic about the policy `id`, positioned in its file.
    fn problem(&self, id: &PolicyId, diag: &dyn Diagnostic) -> SourceProblem {
        let file = self.file_of(id);
        let text = self.files.get(file).map_or("", String::as_str);
        diagnostic::problem(file, text, diag)
    }
}

/// Whether `policy`'s action scope can match `action`, a member of `groups`.
fn may_apply(policy: &Policy, action: &EntityUid, groups: &HashSet<&EntityUid>) -> bool {
    match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => &uid == action,
        ActionConstraint::In(uids) => uids.iter().any(|uid| uid == action || groups.contains(uid)),
    }
}

/// A problem at byte `offset` of `text` (the start of a policy), or about
/// the whole file when the offset is unknown.
fn locate(file: &str, text: &str, offset: Option<usize>, message: String) -> SourceProblem {
    let mut problem = SourceProblem::in_file(file, message);
    if let Some(offset) = offset
        && let Some(before) = text.get(..offset)
    {
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        problem.line = Some(before.matches('\n').count() + 1);
        problem.column = text.get(line_start..offset).map(|s| s.chars().count() + 1);
    }
    problem
}

fn restricted(value: &AttrValue) -> RestrictedExpression {
    match value {
        AttrValue::Bool(b) => RestrictedExpression::new_bool(*b),
        AttrValue::Long(n) => RestrictedExpression::new_long(*n),
        AttrValue::String(s) => RestrictedExpression::new_string(s.clone()),
        AttrValue::Set(items) => {
            RestrictedExpression::new_set(items.iter().map(|s| RestrictedExpression::new_string(s.clone())))
        }
    }
}

fn cedar_context(context: &RequestContext) -> Result<Context, PolicyError> {
    let strings = |items: &mut dyn Iterator<Item = &str>| {
        RestrictedExpression::new_set(
            items
                .map(|s| RestrictedExpression::new_string(s.to_owned()))
                .collect::<Vec<_>>(),
        )
    };
    let depth = i64::try_from(context.actors.len()).unwrap_or(i64::MAX);
    let mut pairs = vec![
        (
            "scopes".to_owned(),
            strings(&mut context.scopes.iter().map(String::as_str)),
        ),
        ("granted_tools".to_owned(), strings(&mut context.granted_tools())),
        (
            "client_id".to_owned(),
            RestrictedExpression::new_string(context.client_id.clone()),
        ),
        (
            "actors".to_owned(),
            strings(&mut context.actors.iter().map(String::as_str)),
        ),
        ("delegation_depth".to_owned(), RestrictedExpression::new_long(depth)),
        ("time".to_owned(), RestrictedExpression::new_long(context.time)),
    ];
    if context.tenancy == Tenancy::Strict {
        pairs.push((
            "tenancy".to_owned(),
            RestrictedExpression::new_string(Tenancy::Strict.as_str().to_owned()),
        ));
    }
    for (name, value) in [
        ("purpose", &context.purpose),
        ("source_ip", &context.source_ip),
        ("route", &context.route),
    ] {
        if let Some(value) = value {
            pairs.push((name.to_owned(), RestrictedExpression::new_string(value.clone())));
        }
    }
    Context::from_pairs(pairs).map_err(request_error)
}

/// A Cedar request-building error as one readable line: the message and
/// its causes, then the hint.
fn request_error<E: Diagnostic>(e: E) -> PolicyError {
    PolicyError::Request(request_error_text(e))
}

/// See [`request_error`].
fn request_error_text<E: Diagnostic>(e: E) -> String {
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    if let Some(help) = e.help() {
        message.push_str(&format!(" ({help})"));
    }
    message
}
