//! `warden policy validate | test`, the real binary run as a user would, in
//! a temp dir with no config and no `WARDEN_*` variables but a data dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fs;
use std::path::Path;

use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;

const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../warden-policy/policies");

/// A fresh temp dir to run `warden` in (its working directory).
fn warden() -> Warden {
    Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

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
fn validate_counts_the_builtin_set_and_a_directory() {
    let w = warden();
    let out = w.run(&["policy", "validate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("OK: 37 policies in 8 files"),
        "{}",
        text(&out.stdout)
    );
    let out = w.run(&["policy", "validate", "--dir", POLICIES]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("OK: 37 policies in 8 files"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn the_default_tests_pass() {
    let w = warden();
    let file = format!("{POLICIES}/default.tests.toml");
    for args in [
        vec!["policy", "test", &file],
        vec!["policy", "test", &file, "--dir", POLICIES],
    ] {
        let out = w.run(&args);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains("PASS  data-scientist is denied a non-production model  deny (no policy matched)"));
        assert!(stdout.contains("PASS  agent is denied a tool without the tool scope  deny [scope.tool]"));
        assert!(!stdout.contains("FAIL"), "{stdout}");
        assert!(stdout.trim_end().ends_with("cases passed"), "{stdout}");
    }
}

#[test]
fn a_failing_case_exits_1_and_says_why() {
    let w = warden();
    let file = w.dir().join("t.toml");
    fs::write(
        &file,
        r#"[[case]]
name = "data scientists may promote"
action = "model.promote"
expect = "allow"
claims = { sub = "user:carol", roles = ["data-scientist"], scope = "model.promote" }
resource = { type = "Model", id = "m", attributes = { stage = "staging" } }
"#,
    )
    .unwrap();
    let out = w.run(&["policy", "test", "t.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout)
            .contains("FAIL  data scientists may promote  expected allow, got deny; deny (no policy matched)"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("FAILED: 1 of 1 cases failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn invalid_policies_and_schemas_exit_1_naming_file_and_line() {
    let w = warden();
    let dir = w.dir().join("policies");
    copy_dir(Path::new(POLICIES), &dir);
    let local = dir.join("local.cedar");
    fs::write(
        &local,
        "@id(\"typo\")\npermit (principal, action == Warden::Action::\"model.read\", resource)\nwhen { resource.stag == \"x\" };\n",
    )
    .unwrap();
    let out = w.run(&["policy", "validate", "--dir", "policies"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("policies/local.cedar:3:8: for policy `typo`, attribute `stag`"),
        "{stderr}"
    );
    assert!(stderr.contains("help: did you mean `stage`?"), "{stderr}");

    fs::remove_file(&local).unwrap();
    let schema = dir.join("schema.cedarschema");
    let broken = fs::read_to_string(&schema)
        .unwrap()
        .replacen("classification: String", "classification: Strin", 1);
    fs::write(&schema, broken).unwrap();
    let out = w.run(&["policy", "validate", "--dir", "policies"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("invalid schema:\n  policies/schema.cedarschema:"),
        "{stderr}"
    );
    assert!(stderr.contains("Strin"), "{stderr}");
}

#[test]
fn an_unreadable_directory_exits_2() {
    let w = warden();
    let out = w.run(&["policy", "validate", "--dir", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("reading `nope/schema.cedarschema`"),
        "{}",
        text(&out.stderr)
    );
}
