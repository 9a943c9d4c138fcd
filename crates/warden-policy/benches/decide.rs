//! Policy decision benchmarks, on the built-in set (37 policies, more than
//! the 20 of the budget in `docs/benchmarks.md`).
//!
//! - `build`: a request's parts from token claims (`Principal::from_claims`,
//!   `RequestContext` with the scope claim split, a `Resource` with two
//!   attributes): the work the gateway does before `decide`.
//! - `decide/<case>`: `PolicyEngine::decide` alone, the same request again
//!   and again: answered from the engine's memo of decisions.
//! - `decide-new-second/<case>`: the same with the context's `time` one
//!   second later every time, so every decision is Cedar's evaluation (the
//!   entities and the request's shape come checked from the engine's
//!   memos, as for the first request of each second at a gateway).
//! - `decide-first/<case>`: the first request of a principal and resource
//!   on a fresh engine (entities built and checked against the schema, the
//!   request checked, Cedar's evaluation); the fresh engine's build is
//!   outside the measurement.
//! - `build+decide/<case>`: both, per request.
//!
//! Then, with `--bench`, one thread making decisions over a mix of the cases
//! for 2 s and printing decisions/s (the budget: 50,000 verify + authorize
//! per core; a cached token verify is under 1 µs).
//!
//! Run on one core: `taskset -c 0 cargo bench -p warden-policy --bench decide`

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use warden_policy::{PolicyEngine, PolicyError, Principal, RequestContext, Resource};

const NOW: i64 = 1_800_000_000;

/// A request as the gateway sees it: claims and route facts.
struct Case {
    name: &'static str,
    sub: &'static str,
    roles: &'static [&'static str],
    scope: &'static str,
    act: &'static [&'static str],
    action: &'static str,
    resource: fn() -> Resource,
    allowed: bool,
}

const CASES: [Case; 3] = [
    Case {
        name: "ml-engineer-allow",
        sub: "user:alice",
        roles: &["ml-engineer"],
        scope: "inference.invoke models.read",
        act: &[],
        action: "inference.invoke",
        resource: || {
            Resource::new("Model", "fraud-v3")
                .with("stage", "development")
                .with("owner", "user:bob")
        },
        allowed: true,
    },
    Case {
        name: "data-scientist-deny",
        sub: "user:carol",
        roles: &["data-scientist"],
        scope: "inference.invoke dataset.read",
        act: &[],
        action: "inference.invoke",
        resource: || {
            Resource::new("Model", "fraud-v3")
                .with("stage", "staging")
                .with("owner", "user:bob")
        },
        allowed: false,
    },
    Case {
        name: "agent-tool-allow",
        sub: "user:alice",
        roles: &["data-scientist"],
        scope: "tool:search tool:fetch",
        act: &["agent:report-bot"],
        action: "tool.call",
        resource: || {
            Resource::new("Tool", "search")
                .with("name", "search")
                .with("server", "docs")
        },
        allowed: true,
    },
];

/// The parts of one request, built from its claims.
fn build(case: &Case) -> Result<(Principal, RequestContext, Resource), PolicyError> {
    let principal = Principal::from_claims(case.sub, case.roles.iter().copied(), None)?;
    let context = RequestContext {
        client_id: "notebook".to_owned(),
        actors: case.act.iter().map(|&a| a.to_owned()).collect(),
        source_ip: Some("192.0.2.7".to_owned()),
        time: NOW,
        route: Some("chat".to_owned()),
        ..RequestContext::default()
    }
    .with_scope_claim(case.scope);
    Ok((principal, context, (case.resource)()))
}

fn build_and_decide(engine: &PolicyEngine, case: &Case) -> Result<bool, PolicyError> {
    let (principal, context, resource) = build(case)?;
    Ok(engine.decide(&principal, case.action, &resource, &context)?.allowed)
}

fn run() -> Result<(), String> {
    let engine = PolicyEngine::builtin().map_err(|e| e.to_string())?;
    for case in &CASES {
        let allowed = build_and_decide(&engine, case).map_err(|e| format!("{}: {e}", case.name))?;
        if allowed != case.allowed {
            return Err(format!("{}: expected allowed = {}", case.name, case.allowed));
        }
    }
    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("build");
        group.throughput(Throughput::Elements(1));
        let [case, ..] = &CASES;
        group.bench_function("principal+context+resource", |b| {
            b.iter(|| build(black_box(case)).is_ok())
        });
        group.finish();
    }
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    for case in &CASES {
        let (principal, context, resource) = build(case).map_err(|e| e.to_string())?;
        group.bench_function(case.name, |b| {
            b.iter(|| {
                engine
                    .decide(black_box(&principal), case.action, black_box(&resource), &context)
                    .is_ok()
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("decide-new-second");
    group.throughput(Throughput::Elements(1));
    for case in &CASES {
        let (principal, mut context, resource) = build(case).map_err(|e| e.to_string())?;
        group.bench_function(case.name, |b| {
            b.iter(|| {
                context.time += 1;
                engine
                    .decide(black_box(&principal), case.action, black_box(&resource), &context)
                    .is_ok()
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("decide-first");
    group.throughput(Throughput::Elements(1));
    for case in &CASES {
        let (principal, context, resource) = build(case).map_err(|e| e.to_string())?;
        group.bench_function(case.name, |b| {
            b.iter_batched(
                PolicyEngine::builtin,
                // The engine is returned, so that dropping it is not measured.
                |fresh| {
                    let decided = fresh.as_ref().is_ok_and(|e| {
                        e.decide(black_box(&principal), case.action, black_box(&resource), &context)
                            .is_ok()
                    });
                    (fresh, decided)
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    let mut group = c.benchmark_group("build+decide");
    group.throughput(Throughput::Elements(1));
    for case in &CASES {
        group.bench_function(case.name, |b| {
            b.iter(|| build_and_decide(&engine, black_box(case)).is_ok())
        });
    }
    group.finish();
    c.final_summary();

    if std::env::args().any(|a| a == "--bench") {
        let start = Instant::now();
        let mut decisions = 0u64;
        while start.elapsed() < Duration::from_secs(2) {
            for case in &CASES {
                black_box(build_and_decide(&engine, case).is_ok());
            }
            decisions += CASES.len() as u64;
        }
        let rate = decisions as f64 / start.elapsed().as_secs_f64();
        println!(
            "\n{} policies, one thread: {rate:.0} build+decide decisions/s ({:.2} µs each)",
            engine.policy_count(),
            1e6 / rate
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("decide bench: {e}");
            ExitCode::FAILURE
        }
    }
}
