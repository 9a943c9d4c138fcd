//! `/api/v1/lineage/{kind}/{name@version}/upstream|downstream?depth=`:
//! the graph around a dataset or model version.
//!
//! Reading lineage is its own action, `lineage.read`: names and edges are
//! metadata, not the data, so the purpose rule of `dataset.read` does not
//! apply, while tenant isolation does. Nodes whose dataset or model the
//! caller may not see are left out with their edges and counted in
//! `hidden`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_registry::{Direction, NodeKind, NodeRef};
use warden_store::Store;

use super::RegistryState;
use crate::access::{Caller, entities};
use crate::error::ApiError;

/// Query of a lineage walk.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DepthQuery {
    /// Edges to walk (1–100, default 10).
    depth: Option<u32>,
}

/// The nodes of `nodes` whose dataset or model the caller may read the
/// lineage of (decided once per dataset or model, from the registry
/// snapshot; unknown ones are hidden).
pub fn visible_nodes<S: Store>(state: &RegistryState<S>, call: &Caller, nodes: Vec<NodeRef>) -> Vec<NodeRef> {
    let registry = state.access.policies.registry();
    let mut seen: HashMap<(NodeKind, String), bool> = HashMap::new();
    nodes
        .into_iter()
        .filter(|n| {
            *seen.entry((n.kind, n.name.clone())).or_insert_with(|| {
                registry
                    .lineage_resource(n.kind, &n.name)
                    .is_some_and(|r| call.may(state, "lineage.read", &r))
            })
        })
        .collect()
}

/// `GET /api/v1/lineage/{kind}/{id}/{direction}`
#[utoipa::path(get, path = "/api/v1/lineage/{kind}/{id}/{direction}", tag = "lineage",
    params(("kind" = String, Path, description = "`dataset` or `model`"),
        ("id" = String, Path, description = "`NAME@VERSION`"),
        ("direction" = String, Path, description = "`upstream` or `downstream`"), DepthQuery),
    responses((status = 200, description = "`{\"root\", \"direction\", \"depth\", \"nodes\", \"edges\", \"hidden\"}`"),
        (status = 400), (status = 403), (status = 404)))]
pub async fn walk<S: Store>(
    State(state): State<Arc<RegistryState<S>>>,
    call: Caller,
    Path((kind, id, direction)): Path<(String, String, String)>,
    query: Result<Query<DepthQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let kind = NodeKind::parse(&kind)?;
    let direction = Direction::parse(&direction)?;
    let depth = q.depth.unwrap_or(warden_registry::lineage::DEFAULT_DEPTH);
    if !(1..=warden_registry::lineage::MAX_DEPTH).contains(&depth) {
        return Err(ApiError::invalid_request(format!(
            "`depth` must be 1 to {}",
            warden_registry::lineage::MAX_DEPTH
        )));
    }
    let root: NodeRef = format!("{}:{id}", kind.as_str()).parse()?;
    let (graph, hidden) = visible_graph(&state, &call, &root, direction, depth).await?;
    Ok(Json(json!({
        "root": graph.root,
        "direction": graph.direction,
        "depth": graph.depth,
        "nodes": graph.nodes,
        "edges": graph.edges,
        "hidden": hidden,
    })))
}

/// Walks from `root` after `lineage.read` on it (audited), keeping the
/// nodes and edges the caller may see; the count of hidden nodes.
pub async fn visible_graph<S: Store>(
    state: &RegistryState<S>,
    call: &Caller,
    root: &NodeRef,
    direction: Direction,
    depth: u32,
) -> Result<(warden_registry::Graph, usize), ApiError> {
    let resource = root_resource(state, root).await?;
    call.authorize(state, "lineage.read", &resource).await?;
    let mut graph = state.app.store.lineage(root, direction, depth).await?;
    let total = graph.nodes.len();
    graph.nodes = visible_nodes(state, call, std::mem::take(&mut graph.nodes));
    let hidden = total - graph.nodes.len();
    let keep: HashSet<&NodeRef> = graph.nodes.iter().collect();
    let edges: Vec<_> = std::mem::take(&mut graph.edges)
        .into_iter()
        .filter(|e| keep.contains(&e.from) && keep.contains(&e.to))
        .collect();
    graph.edges = edges;
    Ok((graph, hidden))
}

/// The Cedar resource of a lineage root (a version), 404 when absent.
pub(super) async fn root_resource<S: Store>(
    state: &RegistryState<S>,
    root: &NodeRef,
) -> Result<warden_policy::Resource, ApiError> {
    // The same answers as the lookups of the dataset and model routes: a
    // tenant denial on the root is answered as its parent's absence.
    let missing = || ApiError::not_found(format!("`{root}` not found"));
    match root.kind {
        NodeKind::Dataset => {
            let d = state
                .app
                .store
                .get_dataset(&root.name)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("dataset `{}` not found", root.name)))?;
            Ok(entities::dataset_version(&d, root.version))
        }
        NodeKind::Model => {
            let m = state
                .app
                .store
                .get_model(&root.name)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("model `{}` not found", root.name)))?;
            let v = state
                .app
                .store
                .get_model_version(&root.name, root.version)
                .await?
                .ok_or_else(missing)?;
            Ok(entities::model_version(&m, &v))
        }
    }
}
