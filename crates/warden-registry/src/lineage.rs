//! Lineage: versions as nodes, derivations as edges.
//!
//! A node is one version: `dataset:NAME@VERSION` or `model:NAME@VERSION`.
//! Edges run from what was used to what was made: dataset version →
//! dataset version (a derived dataset) and dataset version → model version
//! (training data). Every edge is recorded with the version it leads to,
//! whose parents must already exist, so the graph is acyclic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::validate::check_name;

/// The kind of a lineage node.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A dataset version.
    Dataset,
    /// A model version.
    Model,
}

impl NodeKind {
    /// `dataset` or `model`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Dataset => "dataset",
            NodeKind::Model => "model",
        }
    }

    /// Parses `dataset` or `model` (the `{kind}` of lineage URLs).
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "dataset" | "datasets" => Ok(NodeKind::Dataset),
            "model" | "models" => Ok(NodeKind::Model),
            _ => Err(RegistryError::invalid("kind", "must be `dataset` or `model`")),
        }
    }
}

/// One version in the lineage graph. Serialised as its string form,
/// `dataset:transactions@3`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeRef {
    /// Dataset or model.
    pub kind: NodeKind,
    /// The dataset's or model's name.
    pub name: String,
    /// The version number (from 1).
    pub version: u32,
}

impl NodeRef {
    /// `dataset:NAME@VERSION`.
    pub fn dataset(name: &str, version: u32) -> Self {
        NodeRef {
            kind: NodeKind::Dataset,
            name: name.to_owned(),
            version,
        }
    }

    /// `model:NAME@VERSION`.
    pub fn model(name: &str, version: u32) -> Self {
        NodeRef {
            kind: NodeKind::Model,
            name: name.to_owned(),
            version,
        }
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}@{}", self.kind.as_str(), self.name, self.version)
    }
}

impl FromStr for NodeRef {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            RegistryError::invalid(
                "node",
                format!(
                    "`{}` is not `dataset:NAME@VERSION` or `model:NAME@VERSION`",
                    truncate(s)
                ),
            )
        };
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let (name, version) = rest.rsplit_once('@').ok_or_else(bad)?;
        let kind = match kind {
            "dataset" => NodeKind::Dataset,
            "model" => NodeKind::Model,
            _ => return Err(bad()),
        };
        check_name("node", name)?;
        let version: u32 = version.parse().map_err(|_| bad())?;
        if version == 0 || version.to_string() != rest.rsplit_once('@').map_or("", |(_, v)| v) {
            return Err(bad());
        }
        Ok(NodeRef {
            kind,
            name: name.to_owned(),
            version,
        })
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for NodeRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^(dataset|model):[A-Za-z0-9][A-Za-z0-9._-]*@[1-9][0-9]*$"))
            .examples([serde_json::json!("dataset:transactions@3")])
            .description(Some(
                "A dataset or model version: `dataset:NAME@VERSION` or `model:NAME@VERSION`",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for NodeRef {}

impl Serialize for NodeRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A derivation: `to` was made from `from`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// What was used.
    pub from: NodeRef,
    /// What was made.
    pub to: NodeRef,
    /// The training run, for dataset → model edges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_run: Option<String>,
    /// Who recorded it.
    pub recorded_by: String,
    /// When.
    pub created_at: u64,
}

/// Which way to walk from a node.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Towards what it was made from.
    Upstream,
    /// Towards what was made from it.
    Downstream,
}

impl Direction {
    /// Parses `upstream` or `downstream`.
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "upstream" => Ok(Direction::Upstream),
            "downstream" => Ok(Direction::Downstream),
            _ => Err(RegistryError::invalid(
                "direction",
                "must be `upstream` or `downstream`",
            )),
        }
    }
}

/// Deepest walk a lineage query may ask for.
pub const MAX_DEPTH: u32 = 100;
/// Depth of a lineage query that names none.
pub const DEFAULT_DEPTH: u32 = 10;

/// The part of the graph a query reached.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    /// Where the walk started.
    pub root: NodeRef,
    /// Which way it went.
    pub direction: Direction,
    /// How deep it went.
    pub depth: u32,
    /// Every node reached, the root included, sorted.
    pub nodes: Vec<NodeRef>,
    /// Every edge walked, sorted by (from, to).
    pub edges: Vec<Edge>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_round_trip() {
        for s in ["dataset:transactions@3", "model:fraud-v1.2@12", "dataset:a@1"] {
            let n: NodeRef = s.parse().unwrap();
            assert_eq!(n.to_string(), s);
            assert_eq!(serde_json::to_string(&n).unwrap(), format!("\"{s}\""));
        }
        let n: NodeRef = "model:m@2".parse().unwrap();
        assert_eq!(n, NodeRef::model("m", 2));
    }

    #[test]
    fn malformed_nodes_are_refused() {
        for s in [
            "",
            "dataset:x",
            "dataset:@1",
            "dataset:x@0",
            "dataset:x@01",
            "dataset:x@-1",
            "table:x@1",
            "dataset:a b@1",
            "dataset:x@1@2",
            "model:x@99999999999",
            "dataset:x@+1",
        ] {
            assert!(s.parse::<NodeRef>().is_err(), "{s:?}");
        }
        assert!(serde_json::from_str::<NodeRef>("\"dataset:x\"").is_err());
    }

    #[test]
    fn kinds_and_directions_parse() {
        assert_eq!(NodeKind::parse("datasets").unwrap(), NodeKind::Dataset);
        assert_eq!(NodeKind::parse("model").unwrap(), NodeKind::Model);
        assert!(NodeKind::parse("table").is_err());
        assert_eq!(Direction::parse("upstream").unwrap(), Direction::Upstream);
        assert!(Direction::parse("up").is_err());
    }
}
