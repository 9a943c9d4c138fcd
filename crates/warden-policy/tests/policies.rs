//! Integration tests of `warden-policy` through its public API.
//!
//! - `default_tests`: the shipped `policies/default.tests.toml` passes
//!   against the built-in set and covers every default policy.
//! - `load`: reading a policy directory, its errors, and reload.
//! - `test_file`: the policy test file format.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod default_tests {
    use std::collections::BTreeSet;

    use warden_policy::{DEFAULT_TESTS, Expected, PolicyEngine, run_tests};

    #[test]
    fn the_shipped_tests_pass_on_the_builtin_set() {
        let engine = PolicyEngine::builtin().unwrap();
        let results = run_tests(&engine, DEFAULT_TESTS).unwrap();
        let failures: Vec<_> = results
            .iter()
            .filter(|r| !r.passed())
            .map(|r| format!("{}: {}", r.name, r.failure.as_deref().unwrap_or("")))
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
        assert!(results.len() >= 40);
    }

    #[test]
    fn the_shipped_tests_cover_every_default_policy_both_ways() {
        let engine = PolicyEngine::builtin().unwrap();
        let results = run_tests(&engine, DEFAULT_TESTS).unwrap();
        let deciding: BTreeSet<&str> = results
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok())
            .flat_map(|d| d.policy_ids.iter().map(String::as_str))
            .collect();
        let all: BTreeSet<&str> = engine.policy_ids().iter().map(String::as_str).collect();
        let untested: Vec<_> = all.difference(&deciding).collect();
        assert!(untested.is_empty(), "policies no case exercises: {untested:?}");
        for expected in [Expected::Allow, Expected::Deny, Expected::Error] {
            assert!(results.iter().any(|r| r.expected == expected), "no {expected} case");
        }
    }
}

mod load {
    use std::fs;
    use std::path::Path;

    use warden_policy::{PolicyEngine, PolicyError, PolicySource, load};

    const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    #[test]
    fn the_shipped_directory_loads_to_the_builtin_set() {
        let loaded = load(Path::new(POLICIES)).unwrap();
        let builtin = PolicyEngine::builtin().unwrap();
        assert_eq!(loaded.policy_ids(), builtin.policy_ids());
        assert_eq!(loaded.source(), &PolicySource::Dir(POLICIES.into()));
        assert!(
            loaded
                .files()
                .iter()
                .all(|f| f.starts_with(POLICIES) && f.ends_with(".cedar"))
        );
    }

    #[test]
    fn problems_name_the_file_by_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(Path::new(POLICIES), dir.path());
        let bad = dir.path().join("default").join("zz-local.cedar");
        fs::write(
            &bad,
            "@id(\"local\")\npermit (principal, action, resource)\nwhen { resource.classification == 1 };\n",
        )
        .unwrap();
        let err = load(dir.path()).unwrap_err();
        let text = err.to_string();
        let expected = format!("{}:3:8: ", bad.display());
        assert!(text.contains(&expected), "{text}");
    }

    #[test]
    fn missing_schema_empty_dir_and_missing_dir_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(
            matches!(err, PolicyError::Io { ref path, .. } if path.ends_with("schema.cedarschema")),
            "{err}"
        );
        fs::copy(
            Path::new(POLICIES).join("schema.cedarschema"),
            dir.path().join("schema.cedarschema"),
        )
        .unwrap();
        fs::write(dir.path().join("notes.txt"), "not a policy").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, PolicyError::NoPolicies(_)), "{err}");
        assert!(err.to_string().starts_with("no policy files (`*.cedar`) in `"), "{err}");
        assert!(matches!(load(&dir.path().join("nope")), Err(PolicyError::Io { .. })));
    }

    #[test]
    fn hidden_entries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(Path::new(POLICIES), dir.path());
        fs::create_dir(dir.path().join(".old")).unwrap();
        fs::write(dir.path().join(".old").join("x.cedar"), "broken").unwrap();
        fs::write(dir.path().join(".x.cedar"), "broken").unwrap();
        assert!(load(dir.path()).is_ok());
    }

    #[test]
    fn reload_reads_the_directory_again_and_an_invalid_set_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(Path::new(POLICIES), dir.path());
        let engine = load(dir.path()).unwrap();
        let n = engine.policy_count();

        let extra = dir.path().join("extra.cedar");
        fs::write(
            &extra,
            "@id(\"extra\")\nforbid (principal, action, resource) when { context.time < 0 };\n",
        )
        .unwrap();
        let reloaded = engine.reload().unwrap();
        assert_eq!(reloaded.policy_count(), n + 1);

        fs::write(
            &extra,
            "@id(\"extra\")\nforbid (principal, action, resource) when { context.tim < 0 };\n",
        )
        .unwrap();
        let err = reloaded.reload().unwrap_err();
        assert!(matches!(err, PolicyError::Policies(_)), "{err}");
        // The engine in force is untouched.
        assert_eq!(reloaded.policy_count(), n + 1);

        let builtin = PolicyEngine::builtin().unwrap();
        assert_eq!(builtin.reload().unwrap().policy_ids(), builtin.policy_ids());
    }
}

mod test_file {
    use warden_policy::{PolicyEngine, PolicyError, run_tests};

    const CASE: &str = r#"
[[case]]
action = "inference.invoke"
expect = "allow"
policies = ["ml-engineer.inference"]
claims = { sub = "svc:trainer", roles = ["ml-engineer"], scope = "inference.invoke" }
resource = { type = "Model", id = "m", attributes = { stage = "development", owner = "svc:trainer" } }
"#;

    #[test]
    fn cases_without_a_name_are_numbered() {
        let results = run_tests(&PolicyEngine::builtin().unwrap(), CASE).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].name, "case 1");
        assert!(results[0].passed(), "{:?}", results[0].failure);
    }

    #[test]
    fn a_wrong_expectation_fails_with_a_reason() {
        let engine = PolicyEngine::builtin().unwrap();
        let results = run_tests(&engine, &CASE.replace("\"allow\"", "\"deny\"")).unwrap();
        assert_eq!(results[0].failure.as_deref(), Some("expected deny, got allow"));
        let results = run_tests(&engine, &CASE.replace("[\"ml-engineer.inference\"]", "[\"admin.all\"]")).unwrap();
        assert_eq!(
            results[0].failure.as_deref(),
            Some("expected policies [admin.all], got [ml-engineer.inference]")
        );
        let results = run_tests(&engine, &CASE.replace("stage = \"development\",", "")).unwrap();
        let failure = results[0].failure.as_deref().unwrap();
        assert!(
            failure.starts_with("expected allow, got an error: invalid request:"),
            "{failure}"
        );
    }

    #[test]
    fn malformed_files_are_errors_with_a_position() {
        let engine = PolicyEngine::builtin().unwrap();
        let err = run_tests(&engine, &CASE.replace("expect", "expected")).unwrap_err();
        assert!(matches!(err, PolicyError::TestFile(_)));
        assert!(err.to_string().contains("line"), "{err}");
        let err = run_tests(&engine, "# nothing\n").unwrap_err();
        assert_eq!(err.to_string(), "invalid policy test file: no `[[case]]` in the file");
    }
}
