//! Unit tests of the engine: loading, diagnostics, decisions.

use crate::{PolicyEngine, PolicyError, Principal, RequestContext, Resource, builtin};

const T0: i64 = 1_800_000_000;

fn engine() -> PolicyEngine {
    PolicyEngine::builtin().unwrap()
}

fn ctx(scope: &str) -> RequestContext {
    RequestContext {
        client_id: "c".into(),
        time: T0,
        ..Default::default()
    }
    .with_scope_claim(scope)
}

fn model(stage: &str) -> Resource {
    Resource::new("Model", "m")
        .with("stage", stage)
        .with("owner", "user:bob")
}

fn user(roles: &[&str]) -> Principal {
    Principal::from_claims("user:alice", roles.iter().copied(), None).unwrap()
}

/// The built-in policies with one file replaced or added.
fn with_file(name: &str, text: &str) -> Result<PolicyEngine, PolicyError> {
    let mut files: Vec<(&str, &str)> = builtin::POLICIES.iter().copied().filter(|(n, _)| *n != name).collect();
    files.push((name, text));
    PolicyEngine::from_sources(builtin::SCHEMA, files)
}

fn policy_problems(result: Result<PolicyEngine, PolicyError>) -> Vec<crate::SourceProblem> {
    match result {
        Err(PolicyError::Policies(problems)) => problems,
        Err(other) => panic!("expected policy problems, got {other}"),
        Ok(_) => panic!("expected policy problems, got a valid set"),
    }
}

#[test]
fn the_builtin_set_loads_without_warnings() {
    let engine = engine();
    assert_eq!(engine.policy_count(), 37);
    assert_eq!(engine.files().len(), builtin::POLICIES.len());
    assert!(engine.warnings().is_empty(), "{:?}", engine.warnings());
    assert_eq!(engine.actions().len(), 18);
    assert!(engine.policy_ids().iter().any(|id| id == "admin.all"));
}

#[test]
fn the_engine_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<PolicyEngine>();
    let a = engine();
    let b = a.clone();
    assert!(std::ptr::eq(a.policy_ids(), b.policy_ids()));
}

#[test]
fn decisions_name_the_deciding_policies() {
    let engine = engine();
    let d = engine
        .decide(
            &user(&["ml-engineer"]),
            "inference.invoke",
            &model("development"),
            &ctx("inference.invoke"),
        )
        .unwrap();
    assert!(d.allowed);
    assert_eq!(d.policy_ids, ["ml-engineer.inference"]);
    assert!(d.errors.is_empty());

    let d = engine
        .decide(
            &user(&["ml-engineer"]),
            "inference.invoke",
            &model("development"),
            &ctx(""),
        )
        .unwrap();
    assert!(!d.allowed);
    assert_eq!(d.policy_ids, ["scope.inference.invoke"]);

    let d = engine
        .decide(
            &user(&[]),
            "inference.invoke",
            &model("production"),
            &ctx("inference.invoke"),
        )
        .unwrap();
    assert!(!d.allowed);
    assert!(d.policy_ids.is_empty());
}

#[test]
fn roles_accumulate_and_repeat_harmlessly() {
    let p = user(&["data-scientist", "ml-engineer", "ml-engineer"]);
    let d = engine()
        .decide(&p, "inference.invoke", &model("staging"), &ctx("inference.invoke"))
        .unwrap();
    assert!(d.allowed);
    assert_eq!(d.policy_ids, ["ml-engineer.inference"]);
}

#[test]
fn unknown_actions_and_types_are_errors() {
    let engine = engine();
    let p = user(&["admin"]);
    let err = engine
        .decide(&p, "inference.run", &model("production"), &ctx(""))
        .unwrap_err();
    assert!(
        matches!(err, PolicyError::UnknownAction(ref a) if a == "inference.run"),
        "{err}"
    );
    let err = engine
        .decide(&p, "inference.invoke", &Resource::new("Modle", "m"), &ctx(""))
        .unwrap_err();
    assert!(
        matches!(err, PolicyError::UnknownEntityType(ref t) if t == "Modle"),
        "{err}"
    );
    assert_eq!(err.to_string(), "unknown entity type `Modle`");
}

#[test]
fn requests_that_do_not_fit_the_schema_are_errors() {
    let engine = engine();
    let p = user(&["admin"]);
    let scope = ctx("inference.invoke audit.read");
    // Missing required attribute.
    let err = engine.decide(
        &p,
        "inference.invoke",
        &Resource::new("Model", "m").with("owner", "o"),
        &scope,
    );
    let msg = err.unwrap_err().to_string();
    assert!(msg.starts_with("invalid request:") && msg.contains("stage"), "{msg}");
    // Optional attributes may be left out.
    let bare = Resource::new("Model", "m").with("stage", "x");
    assert!(engine.decide(&p, "inference.invoke", &bare, &scope).unwrap().allowed);
    // Mistyped attribute.
    let err = engine.decide(&p, "inference.invoke", &model("production").with("tenant", 7), &scope);
    assert!(err.unwrap_err().to_string().contains("tenant"));
    // Undeclared attribute.
    let err = engine.decide(
        &p,
        "inference.invoke",
        &model("production").with("colour", "red"),
        &scope,
    );
    assert!(err.unwrap_err().to_string().contains("colour"));
    // A resource type the action does not apply to.
    let err = engine.decide(&p, "audit.read", &model("production"), &scope);
    assert!(matches!(err, Err(PolicyError::Request(_))));
    // The qualified type name is accepted too.
    let full = Resource {
        type_name: "Warden::AuditLog".into(),
        ..Resource::new("", "log")
    };
    assert!(engine.decide(&p, "audit.read", &full, &scope).unwrap().allowed);
}

#[test]
fn tool_calls_need_the_tool_scope() {
    let engine = engine();
    let agent = Principal::from_claims("agent:report-bot", Vec::<String>::new(), None).unwrap();
    let tool = Resource::new("Tool", "search")
        .with("name", "search")
        .with("server", "docs");
    let d = engine.decide(&agent, "tool.call", &tool, &ctx("tool:search")).unwrap();
    assert_eq!(
        (d.allowed, d.policy_ids.as_slice()),
        (true, &["agent.tool-call".to_owned()][..])
    );
    let d = engine
        .decide(&agent, "tool.call", &tool, &ctx("tool:fetch tool.call"))
        .unwrap();
    assert_eq!(
        (d.allowed, d.policy_ids.as_slice()),
        (false, &["scope.tool".to_owned()][..])
    );
}

#[test]
fn a_permit_that_asks_for_approval_makes_the_allow_need_it() {
    let text = r#"@id("tools.delete-needs-lead")
@approval("data-leads")
@approval_ttl("120")
permit (principal, action == Warden::Action::"tool.call", resource)
when { resource.name == "delete_dataset" };"#;
    let engine = with_file("approvals.cedar", text).unwrap();
    assert_eq!(engine.approval_policies().len(), 1);
    let agent = Principal::from_claims("agent:report-bot", Vec::<String>::new(), None).unwrap();
    let tool = |name: &str| Resource::new("Tool", name).with("name", name).with("server", "docs");
    // The broad agent permit allows it too: the approval still holds.
    let d = engine
        .decide(
            &agent,
            "tool.call",
            &tool("delete_dataset"),
            &ctx("tool:delete_dataset"),
        )
        .unwrap();
    assert!(d.allowed);
    let need = d.approval.expect("an approval is needed");
    assert_eq!(need.groups, ["data-leads"]);
    assert_eq!(need.ttl, 120);
    assert_eq!(need.policy_ids, ["tools.delete-needs-lead"]);
    // Another tool: no approval.
    let d = engine
        .decide(&agent, "tool.call", &tool("search"), &ctx("tool:search"))
        .unwrap();
    assert_eq!((d.allowed, d.approval), (true, None));
    // A deny never carries one.
    let d = engine
        .decide(&agent, "tool.call", &tool("delete_dataset"), &ctx("tool:search"))
        .unwrap();
    assert_eq!((d.allowed, d.approval), (false, None));
}

#[test]
fn malformed_approval_annotations_are_policy_problems() {
    let forbid = r#"@id("no")
@approval("leads")
forbid (principal, action == Warden::Action::"tool.call", resource);"#;
    let problems = policy_problems(with_file("bad.cedar", forbid));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("policy `no`"), "{}", problems[0].message);
    assert!(
        problems[0].message.contains("`permit` policies"),
        "{}",
        problems[0].message
    );
    assert_eq!(problems[0].line, Some(1));
    let ttl = r#"@id("ttl")
@approval_ttl("60")
permit (principal, action == Warden::Action::"tool.call", resource);"#;
    let problems = policy_problems(with_file("bad.cedar", ttl));
    assert!(
        problems[0].message.contains("needs `@approval"),
        "{}",
        problems[0].message
    );
}

#[test]
fn a_policy_that_fails_to_evaluate_denies() {
    // Overflow is an evaluation error; Cedar skips the failing forbid and
    // would allow.
    let overflow = r#"@id("overflow")
forbid (principal, action, resource) when { context.time * 9223372036854775807 > 0 };"#;
    let engine = with_file("overflow.cedar", overflow).unwrap();
    let d = engine
        .decide(
            &user(&["admin"]),
            "inference.invoke",
            &model("production"),
            &ctx("inference.invoke"),
        )
        .unwrap();
    assert!(!d.allowed);
    assert_eq!(d.policy_ids, ["overflow"]);
    assert_eq!(d.errors.len(), 1);
    assert!(d.errors[0].contains("overflow"), "{:?}", d.errors);
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let problems = policy_problems(with_file(
        "broken.cedar",
        "// x\n@id(\"b\")\npermit (principal, action resource);\n",
    ));
    assert_eq!(problems.len(), 1);
    let p = &problems[0];
    assert_eq!((p.file.as_str(), p.line, p.column), ("broken.cedar", Some(3), Some(27)));
    let text = PolicyError::Policies(problems.clone()).to_string();
    assert!(
        text.starts_with("invalid policies:\n  broken.cedar:3:27: unexpected token `resource`"),
        "{text}"
    );
    assert!(text.contains("3 | permit (principal, action resource);"), "{text}");
}

#[test]
fn an_unknown_attribute_names_file_line_and_column_with_a_hint() {
    let text = "@id(\"typo\")\npermit (principal, action == Warden::Action::\"model.read\", resource)\nwhen { resource.stag == \"production\" };\n";
    let problems = policy_problems(with_file("typo.cedar", text));
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!((p.file.as_str(), p.line, p.column), ("typo.cedar", Some(3), Some(8)));
    assert!(
        p.message.contains("`typo`") && p.message.contains("stag"),
        "{}",
        p.message
    );
    assert!(p.help.as_deref().is_some_and(|h| h.contains("stage")), "{p:?}");
}

#[test]
fn unknown_entity_types_and_actions_in_policies_are_refused() {
    let text = "@id(\"a\")\npermit (principal, action == Warden::Action::\"model.delete\", resource);\n\n@id(\"b\")\npermit (principal is Warden::Robot, action, resource);\n";
    let problems = policy_problems(with_file("unknown.cedar", text));
    let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [Some(2), Some(5)], "{problems:?}");
}

#[test]
fn every_policy_needs_an_id() {
    let text = "@id(\"ok\")\npermit (principal, action, resource) when { false };\n\n  permit (principal, action, resource);\n";
    let problems = policy_problems(with_file("noid.cedar", text));
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        "noid.cedar:4:3: policy has no `@id(\"…\")` annotation"
    );
}

#[test]
fn ids_are_unique_across_files() {
    let text = "@id(\"admin.all\")\nforbid (principal, action, resource);\n";
    let problems = policy_problems(with_file("zz.cedar", text));
    assert_eq!(
        problems[0].to_string(),
        "zz.cedar:1:1: duplicate policy id `admin.all` (first in `admin.cedar`)"
    );
}

#[test]
fn every_problem_in_every_file_is_reported() {
    let files = [
        ("a.cedar", "permit (principal, action, resource);"),
        ("b.cedar", "permit (principal,"),
    ];
    let problems = policy_problems(PolicyEngine::from_sources(builtin::SCHEMA, files));
    let files: Vec<_> = problems.iter().map(|p| p.file.as_str()).collect();
    assert_eq!(files, ["a.cedar", "b.cedar"], "{problems:?}");

    let files = [
        (
            "c.cedar",
            "@id(\"c\") permit (principal, action, resource) when { resource.nope };",
        ),
        (
            "d.cedar",
            "\n@id(\"d\") permit (principal, action, resource) when { principal.nope };",
        ),
    ];
    let mut problems = policy_problems(PolicyEngine::from_sources(builtin::SCHEMA, files));
    problems.sort_by(|a, b| a.file.cmp(&b.file));
    problems.dedup_by(|a, b| a.file == b.file);
    let at: Vec<_> = problems.iter().map(|p| (p.file.as_str(), p.line)).collect();
    assert_eq!(at, [("c.cedar", Some(1)), ("d.cedar", Some(2))], "{problems:?}");
}

#[test]
fn templates_are_refused() {
    let problems = policy_problems(with_file(
        "t.cedar",
        "@id(\"t\") permit (principal == ?principal, action, resource);",
    ));
    assert!(problems[0].message.contains("templates"), "{problems:?}");
}

#[test]
fn schema_errors_name_line_and_column() {
    let schema = "namespace Warden {\n  entity Role;\n  entity User in [Role] { tenant?: Strin };\n}\n";
    let err = PolicyEngine::from_sources(schema, [("x.cedar", "")]).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("invalid schema:\n  schema.cedarschema"), "{text}");
    assert!(text.contains("Strin"), "{text}");

    let err = PolicyEngine::from_sources("namespace Warden { entity User; }", [("x.cedar", "")]).unwrap_err();
    assert!(err.to_string().contains("no entity type `Warden::Service`"), "{err}");

    let err = PolicyEngine::from_sources("namespace Warden { entity User oops }", [("x.cedar", "")]).unwrap_err();
    match err {
        PolicyError::Schema(problems) => assert_eq!((problems[0].line, problems[0].column), (Some(1), Some(32))),
        other => panic!("{other}"),
    }
}

#[test]
fn action_groups_are_honoured_in_scopes_and_conditions() {
    // The default schema with `model.read` in a group `read`.
    let schema = builtin::SCHEMA.replace(
        "action \"model.read\", \"model.register\"",
        "action \"read\";\n  action \"model.read\" in [\"read\"] appliesTo {\n    principal: [User, Service, Agent],\n    \
         resource: [Model, ModelVersion],\n    context: Context,\n  };\n  action \"model.register\"",
    );
    assert_ne!(schema, builtin::SCHEMA);
    let policies = r#"
@id("readers")
permit (principal in Warden::Role::"reader", action in Warden::Action::"read", resource);

@id("no-archived-reads")
forbid (principal, action, resource) when { action in Warden::Action::"read" && resource.stage == "archived" };
"#;
    let engine = PolicyEngine::from_sources(&schema, [("g.cedar", policies)]).unwrap();
    let reader = Principal::from_claims("user:r", ["reader"], None).unwrap();
    let none = RequestContext::default();
    let d = engine
        .decide(&reader, "model.read", &model("production"), &none)
        .unwrap();
    assert_eq!(
        (d.allowed, d.policy_ids.as_slice()),
        (true, &["readers".to_owned()][..])
    );
    let d = engine.decide(&reader, "model.read", &model("archived"), &none).unwrap();
    assert_eq!(
        (d.allowed, d.policy_ids.as_slice()),
        (false, &["no-archived-reads".to_owned()][..])
    );
    let d = engine
        .decide(&reader, "model.promote", &model("production"), &none)
        .unwrap();
    assert!(!d.allowed && d.policy_ids.is_empty());
}

#[test]
fn strict_tenancy_needs_a_schema_that_declares_it() {
    use crate::Tenancy;
    engine().check_tenancy(Tenancy::Strict).unwrap();
    // A schema of one's own written before the attribute existed: fine in
    // the default mode, refused (rather than denying everything) in strict.
    let old = builtin::SCHEMA.replace("tenancy?: String,", "");
    assert_ne!(old, builtin::SCHEMA);
    let files: Vec<(&str, &str)> = builtin::POLICIES
        .iter()
        .copied()
        .filter(|(n, _)| *n != "guards.cedar")
        .collect();
    let engine = PolicyEngine::from_sources(&old, files).unwrap();
    engine.check_tenancy(Tenancy::Shared).unwrap();
    let err = engine.check_tenancy(Tenancy::Strict).unwrap_err();
    assert!(err.to_string().contains("tenancy?: String"), "{err}");
    let d = engine
        .decide(
            &user(&["ml-engineer"]),
            "inference.invoke",
            &model("production"),
            &ctx("inference.invoke"),
        )
        .unwrap();
    assert!(d.allowed, "shared mode does not put `tenancy` in the context");
}

#[test]
fn strict_tenancy_keeps_tenantless_principals_to_tenantless_resources() {
    use crate::Tenancy;
    let admin = user(&["admin"]);
    let tenant_model = model("production").with("tenant", "acme");
    let shared = ctx("model.read");
    let strict = RequestContext {
        tenancy: Tenancy::Strict,
        ..ctx("model.read")
    };
    assert!(
        engine()
            .decide(&admin, "model.read", &tenant_model, &shared)
            .unwrap()
            .allowed
    );
    let d = engine().decide(&admin, "model.read", &tenant_model, &strict).unwrap();
    assert_eq!(
        (d.allowed, d.policy_ids.as_slice()),
        (false, &["tenant.strict".to_owned()][..])
    );
    assert!(
        engine()
            .decide(&admin, "model.read", &model("production"), &strict)
            .unwrap()
            .allowed
    );
    let acme = Principal::from_claims("user:a", ["admin"], Some("acme")).unwrap();
    assert!(
        engine()
            .decide(&acme, "model.read", &tenant_model, &strict)
            .unwrap()
            .allowed
    );
}

/// The engine remembers decisions and entities between requests: every
/// input must still be seen. Each pair below differs in one input only,
/// and a memo keyed on less than all of them would answer the second
/// request with the first one's decision.
#[test]
fn remembered_decisions_follow_every_input() {
    let policies = r#"
@id("before-noon")
permit (principal in Warden::Role::"clock", action == Warden::Action::"inference.invoke", resource)
when { context.time < 43200 };

@id("acme-only")
permit (principal in Warden::Role::"tenant", action == Warden::Action::"inference.invoke", resource)
when { principal has tenant && principal.tenant == "acme" };

@id("fraud-purpose")
permit (principal in Warden::Role::"purpose", action == Warden::Action::"inference.invoke", resource)
when { context has purpose && context.purpose == "fraud" };
"#;
    let engine = with_file("memo.cedar", policies).unwrap();
    let allowed =
        |p: &Principal, r: &Resource, c: &RequestContext| engine.decide(p, "inference.invoke", r, c).unwrap().allowed;
    let c = ctx("inference.invoke");
    // The resource's attributes (a registry change): production, then staging.
    let ds = user(&["data-scientist"]);
    for _ in 0..2 {
        assert!(allowed(&ds, &model("production"), &c));
        assert!(!allowed(&ds, &model("staging"), &c));
    }
    // The principal's roles.
    assert!(!allowed(&user(&["auditor"]), &model("staging"), &c));
    assert!(allowed(&user(&["ml-engineer"]), &model("staging"), &c));
    // The principal's tenant (an attribute of the principal entity).
    let tenant = |t: &str| Principal::from_claims("user:alice", ["tenant"], Some(t)).unwrap();
    assert!(allowed(&tenant("acme"), &model("staging"), &c));
    assert!(!allowed(&tenant("other"), &model("staging"), &c));
    // The context: its time, then its purpose.
    let clock = user(&["clock"]);
    let at = |time| RequestContext { time, ..c.clone() };
    assert!(allowed(&clock, &model("staging"), &at(100)));
    assert!(!allowed(&clock, &model("staging"), &at(50_000)));
    let purpose = user(&["purpose"]);
    let stated = |p: &str| RequestContext {
        purpose: Some(p.to_owned()),
        ..c.clone()
    };
    assert!(allowed(&purpose, &model("staging"), &stated("fraud")));
    assert!(!allowed(&purpose, &model("staging"), &stated("marketing")));
    // The action.
    let d = engine.decide(&ds, "model.promote", &model("production"), &c).unwrap();
    assert!(!d.allowed);
}

/// A reloaded engine decides with the new policies, never from what the
/// old ones decided.
#[test]
fn a_reload_forgets_what_the_old_policies_decided() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schema.cedarschema"), builtin::SCHEMA).unwrap();
    let permit = r#"@id("all") permit (principal, action == Warden::Action::"inference.invoke", resource);"#;
    std::fs::write(dir.path().join("p.cedar"), permit).unwrap();
    let engine = crate::load(dir.path()).unwrap();
    let p = user(&["anyone"]);
    let c = ctx("inference.invoke");
    assert!(engine.decide(&p, "inference.invoke", &model("x"), &c).unwrap().allowed);
    let forbid = format!(
        "{permit}\n@id(\"none\") forbid (principal, action == Warden::Action::\"inference.invoke\", resource);"
    );
    std::fs::write(dir.path().join("p.cedar"), forbid).unwrap();
    let reloaded = engine.reload().unwrap();
    let d = reloaded.decide(&p, "inference.invoke", &model("x"), &c).unwrap();
    assert_eq!((d.allowed, d.policy_ids), (false, vec!["none".to_owned()]));
    // The old engine, still held by whoever had it, answers as before.
    assert!(engine.decide(&p, "inference.invoke", &model("x"), &c).unwrap().allowed);
}

/// The schema's request check runs once per request shape; an empty set
/// fits any set type, so emptiness is part of the shape: a schema whose
/// `scopes` are numbers accepts a request without scopes, and still
/// refuses the next one with scopes.
#[test]
fn the_request_check_is_remembered_per_shape() {
    let schema = builtin::SCHEMA.replace("scopes: Set<String>,", "scopes: Set<Long>,");
    assert_ne!(schema, builtin::SCHEMA);
    let policies = r#"@id("all") permit (principal, action == Warden::Action::"inference.invoke", resource);"#;
    let engine = PolicyEngine::from_sources(&schema, [("p.cedar", policies)]).unwrap();
    let p = user(&["anyone"]);
    for _ in 0..2 {
        let none = RequestContext {
            time: T0,
            ..Default::default()
        };
        assert!(
            engine
                .decide(&p, "inference.invoke", &model("x"), &none)
                .unwrap()
                .allowed
        );
        let err = engine
            .decide(&p, "inference.invoke", &model("x"), &ctx("inference.invoke"))
            .unwrap_err();
        assert!(matches!(err, PolicyError::Request(_)), "{err}");
    }
}
