//! `warden policy validate | test`.
//!
//! Both work on the policy directory given by `--dir` (its
//! `schema.cedarschema` and every `*.cedar` under it), or on the built-in
//! set when there is none. Exit 1 when the set is invalid or a test case
//! fails; 2 when a file cannot be read.

use std::path::Path;

use anyhow::Context as _;
use warden_policy::{CaseResult, Decision, PolicyEngine, PolicyError, load, run_tests};

use crate::cli::PolicyCommand;
use crate::exit::{Refused, UsageError};

/// Runs a policy subcommand.
pub fn run(cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Validate { dir } => {
            let engine = engine(dir.as_deref())?;
            for warning in engine.warnings() {
                eprintln!("warning: {warning}");
            }
            println!(
                "OK: {} policies in {} files, schema with {} entity types and {} actions ({})",
                engine.policy_count(),
                engine.files().len(),
                engine.entity_type_count(),
                engine.actions().len(),
                dir.as_deref()
                    .map_or_else(|| "built-in set".to_owned(), |d| d.display().to_string()),
            );
            for (id, spec) in engine.approval_policies() {
                println!(
                    "approval: `{id}` allows only with the approval of {} (usable {} s)",
                    if spec.group == warden_policy::approval::SELF_APPROVER {
                        "the person the agent acts for".to_owned()
                    } else {
                        format!("a member of `{}`", spec.group)
                    },
                    spec.ttl
                );
            }
            Ok(())
        }
        PolicyCommand::Test { file, dir } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading `{}`", file.display()))?;
            let engine = engine(dir.as_deref())?;
            let results = run_tests(&engine, &text).map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
            for result in &results {
                println!("{}", line(result));
            }
            let failed = results.iter().filter(|r| !r.passed()).count();
            if failed > 0 {
                return Err(Refused(format!("FAILED: {failed} of {} cases failed", results.len())).into());
            }
            println!("ok: all {} cases passed", results.len());
            Ok(())
        }
    }
}

/// The engine of `dir`, or the built-in one. An invalid set is a negative
/// answer (exit 1); an unreadable file is not (exit 2).
fn engine(dir: Option<&Path>) -> anyhow::Result<PolicyEngine> {
    let result = match dir {
        Some(dir) => load(dir),
        None => PolicyEngine::builtin(),
    };
    result.map_err(|e| match e {
        PolicyError::Io { .. } => anyhow::Error::new(e),
        invalid => Refused(invalid.to_string()).into(),
    })
}

/// `PASS  name  allow [ids]`, or `FAIL  name  why`.
fn line(result: &CaseResult) -> String {
    let outcome = match &result.outcome {
        Ok(decision) => decided(decision),
        Err(e) => format!("no decision: {e}"),
    };
    match &result.failure {
        None => format!("PASS  {}  {outcome}", result.name),
        Some(why) => format!("FAIL  {}  {why}; {outcome}", result.name),
    }
}

fn decided(d: &Decision) -> String {
    let verdict = if d.allowed { "allow" } else { "deny" };
    if d.policy_ids.is_empty() {
        format!("{verdict} (no policy matched)")
    } else {
        format!("{verdict} [{}]", d.policy_ids.join(", "))
    }
}
