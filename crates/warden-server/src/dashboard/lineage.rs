//! The Lineage page: the graph of dataset and model versions around a
//! chosen node (upstream, downstream or both), and the erasure-impact view
//! of a dataset version. Each walk is the registry API's own
//! (`lineage.read` on the node, audited; nodes the person may not see are
//! left out and counted).

use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use warden_registry::{Direction, NodeKind, NodeRef};
use warden_store::Store;

use super::DashboardState;
use super::graph::{self, Layout, NODE_H, NODE_W};
use super::page::{Chrome, UiError, html};
use super::session::Session;
use crate::error::ApiError;
use crate::registry::lineage::visible_graph;

/// Most versions offered in the picker.
const MAX_PICKER: usize = 300;

/// Query of the Lineage page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LineageQuery {
    /// `dataset:NAME@V` or `model:NAME@V`.
    pub node: String,
    /// `upstream`, `downstream` or `both` (default).
    pub direction: String,
    /// Edges to walk each way (1–20, default 5).
    pub depth: Option<u32>,
}

#[derive(Template)]
#[template(path = "ui/lineage.html")]
struct LineagePage {
    chrome: Chrome,
    query: LineageQuery,
    picker: Vec<String>,
    graph: Option<Layout>,
    node_w: i64,
    node_h: i64,
    hidden: usize,
    depth: u32,
    edges: Vec<(String, String)>,
    is_dataset: bool,
}

/// Versions the person may see the lineage of, for the picker: datasets
/// and models filtered by the policies first (one decision each, from the
/// registry snapshot), then their versions, at most [`MAX_PICKER`] in all.
async fn picker<S: Store>(state: &DashboardState<S>, session: &Session) -> Result<Vec<String>, ApiError> {
    let registry = state.access.policies.registry();
    let may = |kind: NodeKind, name: &str| {
        registry
            .lineage_resource(kind, name)
            .is_some_and(|r| session.call.may(state, "lineage.read", &r))
    };
    let mut nodes = Vec::new();
    for d in state.app.store.list_datasets(false).await? {
        if nodes.len() >= MAX_PICKER {
            break;
        }
        if may(NodeKind::Dataset, &d.name) {
            for v in state.app.store.list_dataset_versions(&d.name).await? {
                nodes.push(NodeRef::dataset(&d.name, v.version).to_string());
            }
        }
    }
    for m in state.app.store.list_models().await? {
        if nodes.len() >= MAX_PICKER {
            break;
        }
        if may(NodeKind::Model, &m.name) {
            for v in state.app.store.list_model_versions(&m.name).await? {
                nodes.push(v.node().to_string());
            }
        }
    }
    nodes.truncate(MAX_PICKER);
    session.call.audit_listing(state, "lineage.read", "Lineage::*").await?;
    Ok(nodes)
}

/// `GET /ui/lineage?node=&direction=&depth=`
pub async fn page<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
    query: Result<Query<LineageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "lineage", "Lineage");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let Query(query) = query.map_err(|e| within(ApiError::invalid_request(e.body_text())))?;
    let picker = picker(&state, &session).await.map_err(within)?;
    let depth = query.depth.unwrap_or(5);
    if !(1..=20).contains(&depth) {
        return Err(within(ApiError::invalid_request("`depth` must be 1 to 20")));
    }
    let (graph, hidden, edges, is_dataset) = if query.node.trim().is_empty() {
        (None, 0, Vec::new(), false)
    } else {
        let root: NodeRef = query
            .node
            .trim()
            .parse()
            .map_err(|e: warden_registry::RegistryError| within(ApiError::invalid_request(e.to_string())))?;
        let (up, down) = match query.direction.as_str() {
            "upstream" => (true, false),
            "downstream" => (false, true),
            "" | "both" => (true, true),
            _ => {
                return Err(within(ApiError::invalid_request(
                    "`direction` must be upstream, downstream or both",
                )));
            }
        };
        let mut hidden = 0;
        let mut walk =
            |g: Result<(warden_registry::Graph, usize), ApiError>| -> Result<Vec<warden_registry::Edge>, UiError> {
                let (g, h) = g.map_err(within)?;
                hidden += h;
                Ok(g.edges)
            };
        let upstream = if up {
            walk(visible_graph(&state.registry, &session.call, &root, Direction::Upstream, depth).await)?
        } else {
            Vec::new()
        };
        let downstream = if down {
            walk(visible_graph(&state.registry, &session.call, &root, Direction::Downstream, depth).await)?
        } else {
            Vec::new()
        };
        let layout = graph::layout(&root, &upstream, &downstream);
        let edges = layout.edges.clone();
        (Some(layout), hidden, edges, root.kind == NodeKind::Dataset)
    };
    let page = LineagePage {
        chrome,
        query,
        picker,
        graph,
        node_w: NODE_W,
        node_h: NODE_H,
        hidden,
        depth,
        edges,
        is_dataset,
    };
    Ok(html(&state, &session, &page))
}

/// Query of the impact view.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ImpactQuery {
    /// `dataset:NAME@V`.
    pub node: String,
}

#[derive(Template)]
#[template(path = "ui/impact.html")]
struct ImpactPage {
    chrome: Chrome,
    node: String,
    datasets: Vec<String>,
    models: Vec<String>,
    hidden: u64,
}

/// `GET /ui/lineage/impact?node=dataset:NAME@V`: what an erasure of that
/// version touches (the registry API's impact query).
pub async fn impact<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
    query: Result<Query<ImpactQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "lineage", "Erasure impact");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let Query(query) = query.map_err(|e| within(ApiError::invalid_request(e.body_text())))?;
    let root: NodeRef = query
        .node
        .trim()
        .parse()
        .map_err(|e: warden_registry::RegistryError| within(ApiError::invalid_request(e.to_string())))?;
    if root.kind != NodeKind::Dataset {
        return Err(within(ApiError::invalid_request(
            "the erasure impact is computed for a dataset version (dataset:NAME@V)",
        )));
    }
    let Json(found) = crate::registry::datasets::impact(
        State(Arc::clone(&state.registry)),
        session.call.clone(),
        Path((root.name.clone(), root.version.to_string())),
    )
    .await
    .map_err(within)?;
    let list = |k: &str| -> Vec<String> {
        found
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let page = ImpactPage {
        chrome,
        node: root.to_string(),
        datasets: list("datasets"),
        models: list("models"),
        hidden: found.get("hidden").and_then(Value::as_u64).unwrap_or(0),
    };
    Ok(html(&state, &session, &page))
}
