//! Cedar resources for registry objects: the entity type, id and the
//! attributes the schema declares, built from what the store returned.
//!
//! Ids: `Dataset::"NAME"`, `DatasetVersion::"NAME@VERSION"`,
//! `Model::"NAME"`, `ModelVersion::"NAME@VERSION"`.

use warden_policy::Resource;
use warden_registry::{Dataset, Model, ModelVersion, Stage};

/// `Dataset::"NAME"` with its classification, owner, tenant and purposes.
pub fn dataset(d: &Dataset) -> Resource {
    with_tenant(
        Resource::new("Dataset", d.name.as_str())
            .with("classification", d.classification.as_str())
            .with("owner", d.owner.as_str())
            .with("allowed_purposes", d.allowed_purposes.clone()),
        d.tenant.as_deref(),
    )
}

/// `DatasetVersion::"NAME@VERSION"`, carrying its dataset's attributes.
pub fn dataset_version(d: &Dataset, version: u32) -> Resource {
    let mut r = dataset(d).with("dataset", d.name.as_str());
    r.type_name = "DatasetVersion".into();
    r.id = format!("{}@{version}", d.name);
    r
}

/// `Model::"NAME"` at `stage` (its most advanced live version's).
pub fn model(m: &Model, stage: Stage) -> Resource {
    with_tenant(
        Resource::new("Model", m.name.as_str())
            .with("stage", stage.as_str())
            .with("owner", m.owner.as_str()),
        m.tenant.as_deref(),
    )
}

/// `ModelVersion::"NAME@VERSION"` at its own stage.
pub fn model_version(m: &Model, v: &ModelVersion) -> Resource {
    with_tenant(
        Resource::new("ModelVersion", format!("{}@{}", m.name, v.version))
            .with("model", m.name.as_str())
            .with("stage", v.stage.as_str())
            .with("owner", m.owner.as_str()),
        m.tenant.as_deref(),
    )
}

fn with_tenant(r: Resource, tenant: Option<&str>) -> Resource {
    match tenant {
        Some(t) => r.with("tenant", t),
        None => r,
    }
}

/// The audit log's name of a resource: Cedar's entity syntax,
/// `DatasetVersion::"transactions@3"`.
pub fn display(r: &Resource) -> String {
    let id = serde_json::to_string(&r.id).unwrap_or_else(|_| format!("\"{}\"", r.id));
    format!("{}::{id}", r.type_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_policy::AttrValue;
    use warden_registry::{Classification, DatasetSpec, ModelSpec};

    #[test]
    fn dataset_versions_carry_their_dataset() {
        let d = DatasetSpec {
            name: "tx".into(),
            owner: None,
            classification: Classification::Pii,
            allowed_purposes: vec!["fraud".into()],
            tenant: Some("acme".into()),
            description: None,
        }
        .validate("user:a", 1)
        .unwrap();
        let r = dataset_version(&d, 3);
        assert_eq!(display(&r), "DatasetVersion::\"tx@3\"");
        assert_eq!(r.attributes["dataset"], AttrValue::String("tx".into()));
        assert_eq!(r.attributes["classification"], AttrValue::String("pii".into()));
        assert_eq!(r.attributes["tenant"], AttrValue::String("acme".into()));
        let m = ModelSpec {
            name: "fraud".into(),
            owner: None,
            tenant: None,
            description: None,
        }
        .validate("user:a", 1)
        .unwrap();
        let r = model(&m, Stage::Production);
        assert_eq!(r.attributes["stage"], AttrValue::String("production".into()));
        assert!(!r.attributes.contains_key("tenant"));
    }
}
