//! Models, their versions, and the stage lifecycle
//! `development → staging → production → archived`.
//!
//! Production is reached only through a promotion request with enough
//! approvals ([`crate::approval`]) or by a rollback to the version that was
//! in production before; a model has at most one production version.

use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::dataset::{check_owner, distinct_of_kind};
use crate::lineage::{NodeKind, NodeRef};
use crate::validate::{check_digest, check_name, check_text, check_uri};

/// Largest `metrics` object, serialised, in bytes.
pub const MAX_METRICS: usize = 64 * 1024;

/// Where a model version is in its lifecycle.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Just registered.
    Development,
    /// Being evaluated for production.
    Staging,
    /// Serving; at most one version per model.
    Production,
    /// Out of service; never invoked.
    Archived,
}

impl Stage {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Development => "development",
            Stage::Staging => "staging",
            Stage::Production => "production",
            Stage::Archived => "archived",
        }
    }

    /// Parses a stage name.
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "development" => Ok(Stage::Development),
            "staging" => Ok(Stage::Staging),
            "production" => Ok(Stage::Production),
            "archived" => Ok(Stage::Archived),
            _ => Err(RegistryError::invalid(
                "stage",
                "must be one of `development`, `staging`, `production`, `archived`",
            )),
        }
    }

    /// Whether a version may be moved directly (without approvals) from
    /// `self` to `to`: development ⇄ staging, and anything but archived to
    /// archived. Production is reached only by an approved promotion
    /// request or a rollback; archived versions only by a rollback.
    pub fn check_transition(self, to: Stage) -> Result<(), RegistryError> {
        let refuse = |hint| {
            Err(RegistryError::Transition {
                from: self.as_str(),
                to: to.as_str(),
                hint,
            })
        };
        match (self, to) {
            (a, b) if a == b => refuse(" (it is already there)"),
            (_, Stage::Production) => {
                refuse("; open a promotion request, which completes after the required approvals")
            }
            (Stage::Archived, _) => refuse("; an archived version returns to production only by a rollback"),
            (Stage::Development, Stage::Staging) | (Stage::Staging, Stage::Development) | (_, Stage::Archived) => {
                Ok(())
            }
            _ => refuse(""),
        }
    }

    /// The stage a model shows to policies: its most advanced live version
    /// (production, else staging, else development), `archived` when every
    /// version is, and `development` when it has none.
    pub fn of_model<I: IntoIterator<Item = Stage>>(versions: I) -> Stage {
        let rank = |s: Stage| match s {
            Stage::Production => 3,
            Stage::Staging => 2,
            Stage::Development => 1,
            Stage::Archived => 0,
        };
        versions
            .into_iter()
            .max_by_key(|s| rank(*s))
            .unwrap_or(Stage::Development)
    }
}

/// What a caller submits to create a model.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Unique name; also the `model` an OpenAI-style request names.
    pub name: String,
    /// Who answers for it; the creator when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// Its tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

impl ModelSpec {
    /// Checks every field and returns the model it creates.
    pub fn validate(self, creator: &str, now: u64) -> Result<Model, RegistryError> {
        check_name("name", &self.name)?;
        let owner = self.owner.unwrap_or_else(|| creator.to_owned());
        check_owner(&owner)?;
        if let Some(tenant) = &self.tenant {
            check_name("tenant", tenant)?;
        }
        if let Some(d) = &self.description {
            check_text("description", d)?;
        }
        Ok(Model {
            name: self.name,
            owner,
            tenant: self.tenant,
            description: self.description,
            created_by: creator.to_owned(),
            created_at: now,
        })
    }
}

/// A registered model.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// Unique name.
    pub name: String,
    /// Who answers for it.
    pub owner: String,
    /// Its tenant.
    pub tenant: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Who registered it.
    pub created_by: String,
    /// When.
    pub created_at: u64,
}

/// What a caller submits to register a model version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelVersionSpec {
    /// `sha256:<64 hex>` of the artifact.
    pub digest: String,
    /// Where the artifact lives.
    pub uri: String,
    /// E.g. `pytorch`, `onnx`.
    #[serde(default)]
    pub framework: Option<String>,
    /// Evaluation metrics (a JSON object, at most 64 KiB).
    #[serde(default = "empty_object")]
    pub metrics: serde_json::Value,
    /// The dataset versions it was trained on (`dataset:NAME@VERSION`).
    #[serde(default)]
    pub trained_from: Vec<NodeRef>,
    /// The training run that produced it.
    #[serde(default)]
    pub training_run: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl ModelVersionSpec {
    /// Checks the fields; returns the normalised digest.
    pub fn validate(&self) -> Result<String, RegistryError> {
        let digest = check_digest("digest", &self.digest)?;
        check_uri("uri", &self.uri)?;
        if let Some(f) = &self.framework {
            check_name("framework", f)?;
        }
        if let Some(run) = &self.training_run {
            if run.is_empty() || run.len() > 256 {
                return Err(RegistryError::invalid("training_run", "must be 1 to 256 characters"));
            }
            check_text("training_run", run)?;
        }
        if !self.metrics.is_object() {
            return Err(RegistryError::invalid("metrics", "must be a JSON object"));
        }
        if self.metrics.to_string().len() > MAX_METRICS {
            return Err(RegistryError::invalid("metrics", "must be at most 64 KiB"));
        }
        distinct_of_kind("trained_from", &self.trained_from, NodeKind::Dataset)?;
        Ok(digest)
    }
}

/// A registered model version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// The model's name.
    pub model: String,
    /// 1, 2, 3… in registration order.
    pub version: u32,
    /// `sha256:<64 hex>` of the artifact.
    pub digest: String,
    /// Where the artifact lives.
    pub uri: String,
    /// E.g. `pytorch`.
    pub framework: Option<String>,
    /// Evaluation metrics.
    pub metrics: serde_json::Value,
    /// The dataset versions it was trained on.
    pub trained_from: Vec<NodeRef>,
    /// The training run.
    pub training_run: Option<String>,
    /// Its stage.
    pub stage: Stage,
    /// Who registered it.
    pub created_by: String,
    /// When.
    pub created_at: u64,
    /// When its stage last changed.
    pub stage_changed_at: u64,
}

impl ModelVersion {
    /// Its lineage node.
    pub fn node(&self) -> NodeRef {
        NodeRef::model(&self.model, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stage::*;

    #[test]
    fn lifecycle() {
        Development.check_transition(Staging).unwrap();
        Staging.check_transition(Development).unwrap();
        for s in [Development, Staging, Production] {
            s.check_transition(Archived).unwrap();
        }
        for s in [Development, Staging, Archived] {
            let e = s.check_transition(Production).unwrap_err().to_string();
            assert!(e.contains("promotion request") || e.contains("rollback"), "{e}");
        }
        assert!(
            Archived
                .check_transition(Staging)
                .unwrap_err()
                .to_string()
                .contains("rollback")
        );
        assert!(Production.check_transition(Staging).is_err());
        assert!(Staging.check_transition(Staging).is_err());
    }

    #[test]
    fn model_stage_is_its_most_advanced_live_version() {
        assert_eq!(Stage::of_model([]), Development);
        assert_eq!(Stage::of_model([Archived, Archived]), Archived);
        assert_eq!(Stage::of_model([Archived, Development]), Development);
        assert_eq!(Stage::of_model([Staging, Production, Archived]), Production);
    }

    #[test]
    fn version_spec_checks() {
        let ok = || ModelVersionSpec {
            digest: format!("sha256:{}", "0f".repeat(32)),
            uri: "s3://models/fraud/1".into(),
            framework: Some("pytorch".into()),
            metrics: serde_json::json!({"auc": 0.93}),
            trained_from: vec![NodeRef::dataset("tx", 1)],
            training_run: Some("run-42".into()),
        };
        ok().validate().unwrap();
        let mut s = ok();
        s.metrics = serde_json::json!([1]);
        assert!(matches!(
            s.validate(),
            Err(RegistryError::Invalid { field: "metrics", .. })
        ));
        let mut s = ok();
        s.trained_from = vec![NodeRef::model("m", 1)];
        assert!(matches!(
            s.validate(),
            Err(RegistryError::Invalid {
                field: "trained_from",
                ..
            })
        ));
        let mut s = ok();
        s.metrics = serde_json::json!({"x": "y".repeat(MAX_METRICS)});
        assert!(s.validate().is_err());
        let spec: ModelVersionSpec =
            serde_json::from_str(&format!(r#"{{"digest":"{}","uri":"hf://o/m"}}"#, "aa".repeat(32))).unwrap();
        assert_eq!(spec.metrics, serde_json::json!({}));
    }

    #[test]
    fn model_spec_checks_owner_and_tenant() {
        let m = ModelSpec {
            name: "fraud".into(),
            owner: None,
            tenant: None,
            description: None,
        }
        .validate("user:bob", 5)
        .unwrap();
        assert_eq!((m.owner.as_str(), m.created_at), ("user:bob", 5));
        let bad = ModelSpec {
            name: "fraud".into(),
            owner: Some("bob".into()),
            tenant: None,
            description: None,
        };
        assert!(bad.validate("user:bob", 5).is_err());
    }
}
