//! `warden lineage upstream | downstream | impact`: the lineage graph of a
//! running server's registry (`/api/v1/lineage`, and the erasure impact
//! of a dataset version). Nodes the caller may not see are not named; the
//! server counts them in `hidden`, which is shown when not zero.

use serde_json::Value;
use warden_registry::{NodeKind, NodeRef};

use super::Context;
use super::registry_client::{Output, RegistryClient, cell, emit, node_arg, print_json, table, version_arg};
use crate::cli::{LineageArgs, LineageCommand};

/// What a walk shows about itself.
const WALK_FIELDS: &[&str] = &["root", "direction", "depth", "nodes"];
/// Columns of a walk's edges.
const EDGE_COLUMNS: &[&str] = &["from", "to", "training_run", "recorded_by", "created_at"];

/// Runs a lineage subcommand.
pub async fn run(args: LineageArgs, ctx: &Context) -> anyhow::Result<()> {
    let out = Output::new(args.remote.json);
    let api = RegistryClient::new(&args.remote, ctx).await?;
    match args.command {
        LineageCommand::Upstream { node, depth } => walk(&api, out, &node_arg(&node)?, "upstream", depth).await,
        LineageCommand::Downstream { node, depth } => walk(&api, out, &node_arg(&node)?, "downstream", depth).await,
        LineageCommand::Impact { node } => {
            let node = version_arg(NodeKind::Dataset, &node)?;
            let number = node.version.to_string();
            let impact = api
                .get(&["datasets", &node.name, "versions", &number, "impact"], &[])
                .await?;
            if out.json() {
                return print_json(&impact);
            }
            let mut rows = Vec::new();
            for (key, kind) in [("datasets", "dataset"), ("models", "model")] {
                for n in impact.get(key).and_then(Value::as_array).into_iter().flatten() {
                    rows.push(vec![kind.to_owned(), n.as_str().unwrap_or_default().to_owned()]);
                }
            }
            if out.terminal() {
                if rows.is_empty() {
                    eprintln!("nothing derives from {node}");
                } else {
                    emit(&table(&["KIND".into(), "DERIVED".into()], &rows))?;
                }
            } else {
                emit(&format!(
                    "root: {}\ndatasets: {}\nmodels: {}\n",
                    cell(&impact, "root"),
                    cell(&impact, "datasets"),
                    cell(&impact, "models")
                ))?;
            }
            hidden_note(&impact);
            Ok(())
        }
    }
}

async fn walk(
    api: &RegistryClient,
    out: Output,
    root: &NodeRef,
    direction: &str,
    depth: Option<u32>,
) -> anyhow::Result<()> {
    let kind = root.kind.as_str();
    let id = format!("{}@{}", root.name, root.version);
    let depth = depth.map(|d| d.to_string());
    let query: Vec<(&str, &str)> = depth.as_deref().map(|d| ("depth", d)).into_iter().collect();
    let graph = api.get(&["lineage", kind, &id, direction], &query).await?;
    if out.json() {
        return print_json(&graph);
    }
    let edges = graph
        .get("edges")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if edges.is_empty() {
        out.record(&graph, WALK_FIELDS)?;
        eprintln!("no {direction} lineage from {root}");
    } else {
        out.record_and_list(&graph, WALK_FIELDS, "edges", EDGE_COLUMNS)?;
    }
    hidden_note(&graph);
    Ok(())
}

/// Says on stderr how many nodes were left out, if any.
fn hidden_note(answer: &Value) {
    if let Some(n) = answer.get("hidden").and_then(Value::as_u64).filter(|n| *n > 0) {
        eprintln!("{n} more not shown: you may not read their lineage");
    }
}
