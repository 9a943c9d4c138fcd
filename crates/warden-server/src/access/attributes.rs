//! The registry's attributes as the gateway's policies see them: a
//! snapshot of every dataset (deleted ones marked) and model (with its
//! stage), read from the
//! store at start, after every registry change this process makes, and
//! every few seconds (changes made by other replicas).
//!
//! Lookups are synchronous and lock-free in effect (an `Arc` swap under a
//! short read lock), since the gateway decides on its request path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use warden_policy::Resource;
use warden_registry::{Dataset, Model, NodeKind, Stage};
use warden_store::{Store, StoreError};

use super::entities;

/// Cached registry attributes.
#[derive(Debug, Default)]
pub struct RegistryAttributes {
    snapshot: RwLock<Arc<Snapshot>>,
    /// One refresh at a time, so that a slow, older read never replaces a
    /// newer snapshot.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Snapshot {
    datasets: HashMap<String, Dataset>,
    models: HashMap<String, (Model, Stage)>,
}

impl RegistryAttributes {
    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().map(|s| Arc::clone(&s)).unwrap_or_default()
    }

    /// The Cedar resource for an entity the registry knows: `Dataset`,
    /// `DatasetVersion` (`NAME@VERSION`) and `Model`; `None` otherwise,
    /// deleted datasets included (the gateway serves no deleted data).
    pub fn resource(&self, type_name: &str, id: &str) -> Option<Resource> {
        let snap = self.current();
        let live = |name: &str| snap.datasets.get(name).filter(|d| d.deleted_at.is_none());
        match type_name {
            "Dataset" => live(id).map(entities::dataset),
            "DatasetVersion" => {
                let (name, version) = id.rsplit_once('@')?;
                let version: u32 = version.parse().ok()?;
                live(name).map(|d| entities::dataset_version(d, version))
            }
            "Model" => snap.models.get(id).map(|(m, stage)| entities::model(m, *stage)),
            _ => None,
        }
    }

    /// The `Dataset` or `Model` resource a lineage node belongs to,
    /// deleted datasets included: an erasure request must see everything
    /// derived from the data, whatever was deleted since.
    pub fn lineage_resource(&self, kind: NodeKind, name: &str) -> Option<Resource> {
        let snap = self.current();
        match kind {
            NodeKind::Dataset => snap.datasets.get(name).map(entities::dataset),
            NodeKind::Model => snap.models.get(name).map(|(m, stage)| entities::model(m, *stage)),
        }
    }

    /// A model's stage, if the registry knows it.
    pub fn model_stage(&self, name: &str) -> Option<Stage> {
        self.current().models.get(name).map(|(_, s)| *s)
    }

    /// Replaces the models the snapshot knows (tests: a registry change
    /// without a store).
    #[cfg(test)]
    pub(crate) fn set_models(&self, models: impl IntoIterator<Item = (Model, Stage)>) {
        let datasets = self.current().datasets.clone();
        let models = models.into_iter().map(|(m, s)| (m.name.clone(), (m, s))).collect();
        if let Ok(mut slot) = self.snapshot.write() {
            *slot = Arc::new(Snapshot { datasets, models });
        }
    }

    /// Re-reads every dataset and model from the store.
    pub async fn refresh<S: Store>(&self, store: &S) -> Result<(), StoreError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let datasets = store
            .list_datasets(true)
            .await?
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        let mut stages: HashMap<String, Vec<Stage>> = HashMap::new();
        for (model, stage) in store.model_stages().await? {
            stages.entry(model).or_default().push(stage);
        }
        let models = store
            .list_models()
            .await?
            .into_iter()
            .map(|m| {
                let stage = Stage::of_model(stages.remove(&m.name).unwrap_or_default());
                (m.name.clone(), (m, stage))
            })
            .collect();
        if let Ok(mut slot) = self.snapshot.write() {
            *slot = Arc::new(Snapshot { datasets, models });
        }
        Ok(())
    }
}
