//! Datasets and their versions. Warden records metadata (digest, size,
//! where the bytes live, who registered them, what they derive from); it
//! never stores or fetches the data.

use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::lineage::{NodeKind, NodeRef};
use crate::validate::{check_digest, check_name, check_principal, check_text, check_uri};

/// How sensitive a dataset is. `pii` datasets are read only for one of
/// their allowed purposes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Anyone with read access.
    Public,
    /// Inside the organisation.
    Internal,
    /// Named people and services only.
    Confidential,
    /// Personal data: read only for an allowed purpose, which is audited.
    Pii,
}

impl Classification {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Confidential => "confidential",
            Classification::Pii => "pii",
        }
    }

    /// Parses `public`, `internal`, `confidential` or `pii`.
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "public" => Ok(Classification::Public),
            "internal" => Ok(Classification::Internal),
            "confidential" => Ok(Classification::Confidential),
            "pii" => Ok(Classification::Pii),
            _ => Err(RegistryError::invalid(
                "classification",
                "must be one of `public`, `internal`, `confidential`, `pii`",
            )),
        }
    }
}

/// What a caller submits to create a dataset.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Unique name (`a-z A-Z 0-9 . _ -`).
    pub name: String,
    /// Who answers for it (`user:…`, `svc:…`, `team:…`); the creator when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// Sensitivity.
    pub classification: Classification,
    /// Purposes it may be used for. A `pii` dataset with none can be read by
    /// no one until some are added.
    #[serde(default)]
    pub allowed_purposes: Vec<String>,
    /// The tenant it belongs to; principals of another tenant never see it.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

impl DatasetSpec {
    /// Checks every field and returns the dataset it creates, owned by
    /// `owner` or else `creator`, with purposes sorted and deduplicated.
    pub fn validate(self, creator: &str, now: u64) -> Result<Dataset, RegistryError> {
        check_name("name", &self.name)?;
        let owner = self.owner.unwrap_or_else(|| creator.to_owned());
        check_owner(&owner)?;
        if let Some(tenant) = &self.tenant {
            check_name("tenant", tenant)?;
        }
        if let Some(d) = &self.description {
            check_text("description", d)?;
        }
        Ok(Dataset {
            name: self.name,
            owner,
            classification: self.classification,
            allowed_purposes: purposes(self.allowed_purposes)?,
            tenant: self.tenant,
            description: self.description,
            created_by: creator.to_owned(),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
    }
}

/// A change to a dataset's metadata: the fields present replace the
/// current ones. Name and tenant never change.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetPatch {
    /// New owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// New classification.
    #[serde(default)]
    pub classification: Option<Classification>,
    /// New allowed purposes (replacing the old ones).
    #[serde(default)]
    pub allowed_purposes: Option<Vec<String>>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
}

impl DatasetPatch {
    /// The fields it changes, for the audit event.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.owner.is_some() {
            out.push("owner");
        }
        if self.classification.is_some() {
            out.push("classification");
        }
        if self.allowed_purposes.is_some() {
            out.push("allowed_purposes");
        }
        if self.description.is_some() {
            out.push("description");
        }
        out
    }
}

/// A registered dataset.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// Unique name.
    pub name: String,
    /// Who answers for it.
    pub owner: String,
    /// Sensitivity.
    pub classification: Classification,
    /// Purposes it may be used for (sorted, unique).
    pub allowed_purposes: Vec<String>,
    /// Its tenant.
    pub tenant: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Who registered it.
    pub created_by: String,
    /// When (Unix seconds).
    pub created_at: u64,
    /// When its metadata last changed.
    pub updated_at: u64,
    /// When it was deleted (soft: versions and lineage stay).
    pub deleted_at: Option<u64>,
}

impl Dataset {
    /// The dataset with `patch` applied at `now`.
    pub fn patched(&self, patch: DatasetPatch, now: u64) -> Result<Dataset, RegistryError> {
        if patch.fields().is_empty() {
            return Err(RegistryError::invalid("body", "names no field to change"));
        }
        let mut next = self.clone();
        if let Some(owner) = patch.owner {
            check_owner(&owner)?;
            next.owner = owner;
        }
        if let Some(c) = patch.classification {
            next.classification = c;
        }
        if let Some(p) = patch.allowed_purposes {
            next.allowed_purposes = purposes(p)?;
        }
        if let Some(d) = patch.description {
            check_text("description", &d)?;
            next.description = Some(d);
        }
        next.updated_at = now;
        Ok(next)
    }
}

/// What a caller submits to register a version of a dataset.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetVersionSpec {
    /// `sha256:<64 hex>` of the content.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the content lives (`s3://…`, `file://…`).
    pub uri: String,
    /// Dataset versions it was derived from (`dataset:NAME@VERSION`).
    #[serde(default)]
    pub parents: Vec<NodeRef>,
}

impl DatasetVersionSpec {
    /// Checks the fields; returns the normalised digest. Parents must be
    /// dataset versions, each named once (their existence is the store's
    /// check).
    pub fn validate(&self) -> Result<String, RegistryError> {
        let digest = check_digest("digest", &self.digest)?;
        check_uri("uri", &self.uri)?;
        if i64::try_from(self.size).is_err() {
            return Err(RegistryError::invalid("size", "is too large"));
        }
        distinct_of_kind("parents", &self.parents, NodeKind::Dataset)?;
        Ok(digest)
    }
}

/// A registered dataset version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetVersion {
    /// The dataset's name.
    pub dataset: String,
    /// 1, 2, 3… in registration order.
    pub version: u32,
    /// `sha256:<64 hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the content lives.
    pub uri: String,
    /// The dataset versions it derives from.
    pub parents: Vec<NodeRef>,
    /// Who registered it.
    pub created_by: String,
    /// When.
    pub created_at: u64,
}

impl DatasetVersion {
    /// Its lineage node.
    pub fn node(&self) -> NodeRef {
        NodeRef::dataset(&self.dataset, self.version)
    }
}

pub(crate) fn check_owner(owner: &str) -> Result<(), RegistryError> {
    if let Some(team) = owner.strip_prefix("team:") {
        return check_name("owner", team);
    }
    check_principal("owner", owner)
        .map_err(|_| RegistryError::invalid("owner", "must be `user:NAME`, `svc:NAME`, `agent:NAME` or `team:NAME`"))
}

fn purposes(mut list: Vec<String>) -> Result<Vec<String>, RegistryError> {
    if list.len() > 64 {
        return Err(RegistryError::invalid(
            "allowed_purposes",
            "holds more than 64 purposes",
        ));
    }
    for p in &list {
        check_name("allowed_purposes", p)?;
    }
    list.sort();
    list.dedup();
    Ok(list)
}

/// Checks that `nodes` are all of `kind` and named once each.
pub(crate) fn distinct_of_kind(field: &'static str, nodes: &[NodeRef], kind: NodeKind) -> Result<(), RegistryError> {
    if nodes.len() > 256 {
        return Err(RegistryError::invalid(field, "names more than 256 versions"));
    }
    for (i, n) in nodes.iter().enumerate() {
        if n.kind != kind {
            return Err(RegistryError::invalid(
                field,
                format!("`{n}` is not a {} version", kind.as_str()),
            ));
        }
        if nodes.iter().take(i).any(|m| m == n) {
            return Err(RegistryError::invalid(field, format!("names `{n}` twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DatasetSpec {
        DatasetSpec {
            name: "transactions".into(),
            owner: None,
            classification: Classification::Pii,
            allowed_purposes: vec!["fraud".into(), "audit".into(), "fraud".into()],
            tenant: Some("acme".into()),
            description: Some("card transactions".into()),
        }
    }

    #[test]
    fn create_defaults_owner_and_sorts_purposes() {
        let d = spec().validate("user:alice", 10).unwrap();
        assert_eq!(d.owner, "user:alice");
        assert_eq!(d.allowed_purposes, ["audit", "fraud"]);
        assert_eq!((d.created_at, d.updated_at, d.deleted_at), (10, 10, None));
    }

    #[test]
    fn bad_fields_are_named() {
        let mut s = spec();
        s.owner = Some("alice".into());
        assert!(matches!(
            s.validate("user:a", 0),
            Err(RegistryError::Invalid { field: "owner", .. })
        ));
        let mut s = spec();
        s.allowed_purposes = vec!["a b".into()];
        assert!(matches!(
            s.validate("user:a", 0),
            Err(RegistryError::Invalid {
                field: "allowed_purposes",
                ..
            })
        ));
        let mut s = spec();
        s.tenant = Some("".into());
        assert!(matches!(
            s.validate("user:a", 0),
            Err(RegistryError::Invalid { field: "tenant", .. })
        ));
        let json = r#"{"name":"x","classification":"secret"}"#;
        assert!(serde_json::from_str::<DatasetSpec>(json).is_err());
        let json = r#"{"name":"x","classification":"pii","extra":1}"#;
        assert!(serde_json::from_str::<DatasetSpec>(json).is_err());
    }

    #[test]
    fn patch_changes_only_named_fields() {
        let d = spec().validate("user:alice", 10).unwrap();
        let p = DatasetPatch {
            classification: Some(Classification::Internal),
            owner: Some("team:fraud".into()),
            ..Default::default()
        };
        assert_eq!(p.fields(), ["owner", "classification"]);
        let n = d.patched(p, 20).unwrap();
        assert_eq!(
            (n.classification, n.owner.as_str(), n.updated_at),
            (Classification::Internal, "team:fraud", 20)
        );
        assert_eq!((n.name, n.tenant, n.created_at), (d.name.clone(), d.tenant.clone(), 10));
        assert!(d.patched(DatasetPatch::default(), 30).is_err());
    }

    #[test]
    fn version_spec_checks_parents() {
        let mut v = DatasetVersionSpec {
            digest: "ab".repeat(32),
            size: 5,
            uri: "s3://b/k".into(),
            parents: vec![NodeRef::dataset("raw", 1)],
        };
        assert_eq!(v.validate().unwrap(), format!("sha256:{}", "ab".repeat(32)));
        v.parents.push(NodeRef::dataset("raw", 1));
        assert!(v.validate().unwrap_err().to_string().contains("twice"));
        v.parents = vec![NodeRef::model("m", 1)];
        assert!(v.validate().unwrap_err().to_string().contains("not a dataset version"));
        v.parents = vec![];
        v.size = u64::MAX;
        assert!(v.validate().is_err());
    }

    #[test]
    fn classifications_round_trip() {
        for c in [
            Classification::Public,
            Classification::Internal,
            Classification::Confidential,
            Classification::Pii,
        ] {
            assert_eq!(Classification::parse(c.as_str()).unwrap(), c);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{}\"", c.as_str()));
        }
        assert!(Classification::parse("secret").is_err());
    }
}
