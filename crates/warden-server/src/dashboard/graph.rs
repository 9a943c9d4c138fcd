//! Layout of a lineage graph around one node, as SVG geometry (pure).
//!
//! Columns are distances from the chosen node: what it was made from to
//! the left (upstream), what was made from it to the right (downstream),
//! each node in the column of its shortest distance, sorted by name within
//! a column. Edges are curves from the right side of what was used to the
//! left side of what was made.

use std::collections::{BTreeMap, HashMap, VecDeque};

use warden_registry::{Edge, NodeKind, NodeRef};

/// Node box width.
pub const NODE_W: i64 = 190;
/// Node box height.
pub const NODE_H: i64 = 42;
const COL_GAP: i64 = 70;
const ROW_GAP: i64 = 18;
const MARGIN: i64 = 12;

/// A node placed on the canvas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The node.
    pub node: String,
    /// `dataset` or `model`.
    pub kind: &'static str,
    /// Name shown (the dataset or model name, cut to fit).
    pub name: String,
    /// Its version.
    pub version: u32,
    /// Top-left corner.
    pub x: i64,
    /// Top.
    pub y: i64,
    /// Signed distance from the root (upstream negative).
    pub layer: i64,
    /// Whether it is the chosen node.
    pub root: bool,
}

/// The laid-out graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Canvas width.
    pub width: i64,
    /// Canvas height.
    pub height: i64,
    /// Nodes.
    pub nodes: Vec<Placed>,
    /// SVG path data of each edge (`M … C …`), with a description.
    pub edges: Vec<(String, String)>,
}

/// Shortest distances from `root` along `edges`, walking from `to` to
/// `from` (upstream) or from `from` to `to` (downstream).
fn distances(root: &NodeRef, edges: &[Edge], upstream: bool) -> HashMap<NodeRef, i64> {
    let mut next: HashMap<&NodeRef, Vec<&NodeRef>> = HashMap::new();
    for e in edges {
        let (a, b) = if upstream { (&e.to, &e.from) } else { (&e.from, &e.to) };
        next.entry(a).or_default().push(b);
    }
    let mut dist = HashMap::from([(root.clone(), 0i64)]);
    let mut queue = VecDeque::from([root.clone()]);
    while let Some(n) = queue.pop_front() {
        let d = dist.get(&n).copied().unwrap_or(0);
        for m in next.get(&n).into_iter().flatten() {
            if !dist.contains_key(*m) {
                dist.insert((*m).clone(), d + 1);
                queue.push_back((*m).clone());
            }
        }
    }
    dist
}

/// Lays out `root` with the `upstream` and `downstream` edges found
/// around it (either may be empty). Nodes reachable by neither are left
/// out.
pub fn layout(root: &NodeRef, upstream: &[Edge], downstream: &[Edge]) -> Layout {
    let mut layer: HashMap<NodeRef, i64> = HashMap::new();
    for (n, d) in distances(root, upstream, true) {
        layer.insert(n, -d);
    }
    for (n, d) in distances(root, downstream, false) {
        // A node both upstream and downstream would be a cycle, which the
        // registry refuses; keep the first placement if it ever happens.
        layer.entry(n).or_insert(d);
    }
    let mut columns: BTreeMap<i64, Vec<NodeRef>> = BTreeMap::new();
    for (n, l) in &layer {
        columns.entry(*l).or_default().push(n.clone());
    }
    for col in columns.values_mut() {
        col.sort();
    }
    let min_layer = columns.keys().next().copied().unwrap_or(0);
    let rows = columns.values().map(Vec::len).max().unwrap_or(1).max(1);
    let height = 2 * MARGIN + i64::try_from(rows).unwrap_or(1) * (NODE_H + ROW_GAP) - ROW_GAP;
    let mut nodes = Vec::new();
    let mut at: HashMap<NodeRef, (i64, i64)> = HashMap::new();
    for (l, col) in &columns {
        let x = MARGIN + (l - min_layer) * (NODE_W + COL_GAP);
        let used = i64::try_from(col.len()).unwrap_or(1) * (NODE_H + ROW_GAP) - ROW_GAP;
        let top = (height - used) / 2;
        for (i, n) in col.iter().enumerate() {
            let y = top + i64::try_from(i).unwrap_or(0) * (NODE_H + ROW_GAP);
            at.insert(n.clone(), (x, y));
            nodes.push(Placed {
                node: n.to_string(),
                kind: match n.kind {
                    NodeKind::Dataset => "dataset",
                    NodeKind::Model => "model",
                },
                name: shorten(&n.name, 22),
                version: n.version,
                x,
                y,
                layer: *l,
                root: n == root,
            });
        }
    }
    let columns_n = columns.len().max(1);
    let width = 2 * MARGIN + i64::try_from(columns_n).unwrap_or(1) * (NODE_W + COL_GAP) - COL_GAP;
    let mut seen = std::collections::HashSet::new();
    let mut edges = Vec::new();
    for e in upstream.iter().chain(downstream) {
        if !seen.insert((&e.from, &e.to)) {
            continue;
        }
        let (Some(&(fx, fy)), Some(&(tx, ty))) = (at.get(&e.from), at.get(&e.to)) else {
            continue;
        };
        let (x1, y1) = (fx + NODE_W, fy + NODE_H / 2);
        let (x2, y2) = (tx, ty + NODE_H / 2);
        let bend = ((x2 - x1).abs() / 2).max(30);
        edges.push((
            format!("M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}", x1 + bend, x2 - bend),
            format!("{} → {}", e.from, e.to),
        ));
    }
    Layout {
        width,
        height,
        nodes,
        edges,
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: &str, to: &str) -> Edge {
        Edge {
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            training_run: None,
            recorded_by: "user:x".into(),
            created_at: 0,
        }
    }

    #[test]
    fn columns_follow_shortest_distance() {
        let root: NodeRef = "dataset:clean@1".parse().unwrap();
        // raw@1 → clean@1 and raw@1 → feat@1 → clean@1 (a diamond): raw is one step up.
        let up = [
            edge("dataset:raw@1", "dataset:clean@1"),
            edge("dataset:feat@1", "dataset:clean@1"),
            edge("dataset:raw@1", "dataset:feat@1"),
        ];
        let down = [edge("dataset:clean@1", "model:fraud@2")];
        let l = layout(&root, &up, &down);
        let layer = |n: &str| l.nodes.iter().find(|p| p.node == n).map(|p| p.layer);
        assert_eq!(layer("dataset:raw@1"), Some(-1));
        assert_eq!(layer("dataset:feat@1"), Some(-1));
        assert_eq!(layer("dataset:clean@1"), Some(0));
        assert_eq!(layer("model:fraud@2"), Some(1));
        assert_eq!(l.edges.len(), 4);
        assert!(l.nodes.iter().filter(|p| p.root).count() == 1);
        // Upstream is left of the root, downstream right.
        let x = |n: &str| l.nodes.iter().find(|p| p.node == n).map(|p| p.x).unwrap();
        assert!(x("dataset:raw@1") < x("dataset:clean@1") && x("dataset:clean@1") < x("model:fraud@2"));
        // Nothing overlaps within a column.
        assert_ne!(
            l.nodes.iter().find(|p| p.node == "dataset:raw@1").map(|p| p.y),
            l.nodes.iter().find(|p| p.node == "dataset:feat@1").map(|p| p.y)
        );
        assert!(l.width >= 3 * NODE_W && l.height >= 2 * NODE_H);
    }

    #[test]
    fn a_lone_node_is_drawn_alone() {
        let root: NodeRef = "model:m@1".parse().unwrap();
        let l = layout(&root, &[], &[]);
        assert_eq!(l.nodes.len(), 1);
        assert!(l.edges.is_empty());
        assert_eq!(shorten("abcdefghij", 5), "abcd…");
    }
}
