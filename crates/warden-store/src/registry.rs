//! Storage for the governance registry: datasets, models, their versions,
//! lineage edges, stage history and four-eyes promotion requests.
//!
//! The rules (field checks, the stage lifecycle, who may vote) live in
//! `warden-registry`, a pure core; this module applies them inside
//! transactions so that concurrent callers on any number of replicas see
//! one order: version numbers are assigned without gaps or duplicates, a
//! version has at most one open promotion request, and of many concurrent
//! approvals exactly `required` are recorded.

use std::future::Future;

use warden_registry::{
    Ballot, Classification, Dataset, DatasetVersion, DatasetVersionSpec, Direction, Edge, Graph, Model, ModelVersion,
    ModelVersionSpec, NodeKind, NodeRef, PromotionRequest, RegistryError, RequestStatus, Stage, Vote, VoteOutcome,
    Voter, decide_vote,
};

use sqlx::{ColumnIndex, Encode, Executor};
use warden_audit::AuditEvent;

use crate::audit::commit_with_events;

use crate::sql::{Dialect, Param, SqlStore, Value};
use crate::{StoreError, to_i64};

/// One recorded stage change of a model version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageChange {
    /// The model.
    pub model: String,
    /// The version.
    pub version: u32,
    /// Its stage before.
    pub from: Stage,
    /// Its stage after.
    pub to: Stage,
    /// Who changed it (for a completed promotion: the last approver).
    pub by: String,
    /// Why.
    pub reason: String,
    /// The promotion request that caused it, if any.
    pub request_id: Option<String>,
    /// When.
    pub at: u64,
}

/// What [`RegistryStore::vote`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteResult {
    /// What the vote did.
    pub outcome: VoteOutcome,
    /// The request after the vote.
    pub request: PromotionRequest,
    /// The version that left production for `archived` when this vote
    /// completed the request, if there was one.
    pub archived: Option<u32>,
}

/// What [`RegistryStore::rollback`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollback {
    /// The version that was in production and is now archived.
    pub from: u32,
    /// The earlier production version that is in production again.
    pub to: u32,
}

/// Persistence of the governance registry. Every method that changes
/// something does it in one transaction, and takes `audit`: the audit
/// events that record the change, built from what it did (only when it did
/// something). They are appended to the audit log in the same transaction,
/// so the change and its record commit together or not at all.
///
/// Errors beyond the database's: [`StoreError::NotFound`] when a named
/// dataset, model, version or request does not exist (deleted datasets
/// count as absent for changes), [`StoreError::Conflict`] when the state
/// changed under the caller (a stage that is no longer the expected one,
/// an open request already there), [`StoreError::Registry`] when a
/// registry rule refuses (the four-eyes rule, a stage transition).
pub trait RegistryStore: Send + Sync {
    /// Stores a new dataset; false when the name is taken (deleted
    /// datasets keep their name).
    fn create_dataset(
        &self,
        dataset: &Dataset,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A dataset by name, deleted or not.
    fn get_dataset(&self, name: &str) -> impl Future<Output = Result<Option<Dataset>, StoreError>> + Send;
    /// Every dataset, by name; deleted ones only when asked.
    fn list_datasets(&self, include_deleted: bool) -> impl Future<Output = Result<Vec<Dataset>, StoreError>> + Send;
    /// Replaces owner, classification, allowed purposes, description and
    /// `updated_at` of the (undeleted) dataset `before` with those of
    /// `dataset`, only if the stored row still equals `before`
    /// (compare-and-set: two concurrent edits never silently undo each
    /// other). False when there is no such row: deleted, or changed since.
    fn update_dataset(
        &self,
        before: &Dataset,
        dataset: &Dataset,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Soft-deletes a dataset at `now` (versions and lineage stay); false
    /// when there is no undeleted dataset of that name.
    fn delete_dataset(
        &self,
        name: &str,
        now: u64,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Registers the next version of an undeleted dataset, with its
    /// lineage edges (parent → new version), and returns it. `digest` is
    /// the normalised digest (`spec.validate()`). Every parent must exist
    /// ([`StoreError::NotFound`] names the first that does not).
    fn add_dataset_version(
        &self,
        dataset: &str,
        spec: &DatasetVersionSpec,
        digest: &str,
        created_by: &str,
        now: u64,
        audit: impl FnOnce(&DatasetVersion) -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<DatasetVersion, StoreError>> + Send;
    /// One dataset version.
    fn get_dataset_version(
        &self,
        dataset: &str,
        version: u32,
    ) -> impl Future<Output = Result<Option<DatasetVersion>, StoreError>> + Send;
    /// A dataset's versions, oldest first.
    fn list_dataset_versions(
        &self,
        dataset: &str,
    ) -> impl Future<Output = Result<Vec<DatasetVersion>, StoreError>> + Send;

    /// Stores a new model; false when the name is taken.
    fn create_model(
        &self,
        model: &Model,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A model by name.
    fn get_model(&self, name: &str) -> impl Future<Output = Result<Option<Model>, StoreError>> + Send;
    /// Every model, by name.
    fn list_models(&self) -> impl Future<Output = Result<Vec<Model>, StoreError>> + Send;
    /// Registers the next version of a model in `development`, with its
    /// lineage edges (each `trained_from` dataset version → the new
    /// version, carrying `training_run`). Every dataset version named
    /// must exist.
    fn add_model_version(
        &self,
        model: &str,
        spec: &ModelVersionSpec,
        digest: &str,
        created_by: &str,
        now: u64,
        audit: impl FnOnce(&ModelVersion) -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<ModelVersion, StoreError>> + Send;
    /// One model version.
    fn get_model_version(
        &self,
        model: &str,
        version: u32,
    ) -> impl Future<Output = Result<Option<ModelVersion>, StoreError>> + Send;
    /// A model's versions, oldest first.
    fn list_model_versions(&self, model: &str) -> impl Future<Output = Result<Vec<ModelVersion>, StoreError>> + Send;
    /// The stage of every version of every model, as (model, stage) pairs:
    /// what the gateway's policy attributes are computed from.
    fn model_stages(&self) -> impl Future<Output = Result<Vec<(String, Stage)>, StoreError>> + Send;
    /// Moves a version from `from` to `to` (compare-and-set: a
    /// [`StoreError::Conflict`] when its stage is no longer `from`) and
    /// records the change. Checks `from.check_transition(to)`, so it never
    /// moves a version to production.
    fn set_stage(
        &self,
        change: &StageChange,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A model's stage changes, oldest first.
    fn stage_history(&self, model: &str) -> impl Future<Output = Result<Vec<StageChange>, StoreError>> + Send;

    /// Opens a promotion request. The version must be in `staging` and
    /// have no other open request ([`StoreError::Conflict`] otherwise).
    fn open_promotion(
        &self,
        request: &PromotionRequest,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A promotion request with its ballots, oldest first.
    fn get_promotion(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(PromotionRequest, Vec<Ballot>)>, StoreError>> + Send;
    /// Promotion requests, newest first, optionally of one model and status.
    fn list_promotions(
        &self,
        model: Option<&str>,
        status: Option<RequestStatus>,
    ) -> impl Future<Output = Result<Vec<PromotionRequest>, StoreError>> + Send;
    /// Casts a vote under the four-eyes rule (`warden_registry::decide_vote`),
    /// in one transaction that locks the request: the ballot is recorded
    /// (an expired approval by the same voter is replaced); a completing
    /// approval closes the request as approved, moves the version to
    /// production and the model's previous production version (if any) to
    /// archived, recording both stage changes with the request id; a
    /// rejection closes it as rejected.
    fn vote(
        &self,
        id: &str,
        voter: Voter<'_>,
        vote: Vote,
        reason: &str,
        now: u64,
        audit: impl FnOnce(&VoteResult) -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<VoteResult, StoreError>> + Send;
    /// Moves the model's production version to archived and the version
    /// its promotion replaced (still archived) back to production,
    /// recording both changes. Only an approved promotion can be rolled
    /// back, once: a version installed by a rollback stays until a new
    /// promotion, so one person can never bring back a version that was
    /// rolled back for cause. [`StoreError::Conflict`] when there is no
    /// production version or nothing to return to.
    fn rollback(
        &self,
        model: &str,
        by: &str,
        reason: &str,
        now: u64,
        audit: impl FnOnce(&Rollback) -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<Rollback, StoreError>> + Send;

    /// The lineage graph around `root`, walking `direction` at most
    /// `depth` edges; nodes and edges sorted. `root` must exist.
    fn lineage(
        &self,
        root: &NodeRef,
        direction: Direction,
        depth: u32,
    ) -> impl Future<Output = Result<Graph, StoreError>> + Send;
    /// Every dataset version and model version derived, at any depth, from
    /// `root` (not `root` itself), sorted: what an erasure request touches.
    fn impact(&self, root: &NodeRef) -> impl Future<Output = Result<Vec<NodeRef>, StoreError>> + Send;
}

/// A backend's SQL for [`RegistryStore`]. Parameters are positional, in
/// the order each field's comment gives.
pub(crate) struct RegistrySql {
    /// (name, owner, classification, allowed_purposes, tenant, description,
    /// created_by, created_at, updated_at); does nothing on a taken name.
    pub insert_dataset: &'static str,
    /// (name) → a [`DatasetRow`].
    pub get_dataset: &'static str,
    /// (include_deleted) → [`DatasetRow`]s by name.
    pub list_datasets: &'static str,
    /// (owner, classification, allowed_purposes, description, updated_at, name).
    pub update_dataset: &'static str,
    /// (deleted_at, name).
    pub delete_dataset: &'static str,
    /// (name) → (deleted_at,), locking the row until the transaction ends.
    pub lock_dataset: &'static str,
    /// (dataset) → (next version,).
    pub next_dataset_version: &'static str,
    /// (dataset, version) → (version,) when it exists.
    pub dataset_version_exists: &'static str,
    /// (dataset, version, digest, size, uri, created_by, created_at).
    pub insert_dataset_version: &'static str,
    /// (dataset, version) → a [`DatasetVersionRow`].
    pub get_dataset_version: &'static str,
    /// (dataset) → [`DatasetVersionRow`]s, oldest first.
    pub list_dataset_versions: &'static str,
    /// (dataset) → (version, from_node) for every edge into its versions.
    pub dataset_parents: &'static str,
    /// (to_node) → (from_node,).
    pub parents_of: &'static str,
    /// (from_node, to_node, training_run, recorded_by, created_at).
    pub insert_edge: &'static str,
    /// (name, owner, tenant, description, created_by, created_at); does
    /// nothing on a taken name.
    pub insert_model: &'static str,
    /// (name) → a [`ModelRow`].
    pub get_model: &'static str,
    /// () → [`ModelRow`]s by name.
    pub list_models: &'static str,
    /// (name) → (name,), locking the row until the transaction ends: every
    /// stage change of a model takes this lock first.
    pub lock_model: &'static str,
    /// (model) → (next version,).
    pub next_model_version: &'static str,
    /// (model, version, digest, uri, framework, metrics, training_run,
    /// stage, created_by, created_at, stage_changed_at).
    pub insert_model_version: &'static str,
    /// (model, version) → a [`ModelVersionRow`].
    pub get_model_version: &'static str,
    /// (model) → [`ModelVersionRow`]s, oldest first.
    pub list_model_versions: &'static str,
    /// (model) → (version, from_node) for every edge into its versions.
    pub model_parents: &'static str,
    /// () → (model, stage) of every version.
    pub model_stages: &'static str,
    /// (model, version) → (stage,).
    pub version_stage: &'static str,
    /// (to, changed_at, model, version, from): compare-and-set.
    pub move_stage: &'static str,
    /// (model) → (version,) of its production version.
    pub production_version: &'static str,
    /// (model, current production version) → (version,) to roll back to:
    /// the version the promotion that installed the current one archived.
    pub rollback_target: &'static str,
    /// (model, version, from_stage, to_stage, changed_by, reason,
    /// request_id, changed_at).
    pub insert_stage_change: &'static str,
    /// (model) → [`StageChangeRow`]s, oldest first.
    pub stage_history: &'static str,
    /// (model, version) → (id,) of its open request.
    pub open_request_of: &'static str,
    /// (id, model, version, requested_by, requester_actors, reason, status,
    /// required, approval_ttl, created_at, closed_at).
    pub insert_request: &'static str,
    /// (id) → a [`RequestRow`].
    pub get_request: &'static str,
    /// (id) → a [`RequestRow`], locking it until the transaction ends.
    pub get_request_locked: &'static str,
    /// (model or NULL, status or NULL) → [`RequestRow`]s, newest first.
    pub list_requests: &'static str,
    /// (status, closed_at, id).
    pub close_request: &'static str,
    /// (request_id) → [`BallotRow`]s, oldest first.
    pub ballots_of: &'static str,
    /// (request_id, voter, vote, reason, cast_at); replaces the voter's
    /// earlier ballot.
    pub upsert_ballot: &'static str,
    /// (frontier) → [`EdgeRow`]s leaving any node of the frontier.
    pub edges_from: &'static str,
    /// (frontier) → [`EdgeRow`]s entering any node of the frontier.
    pub edges_to: &'static str,
    /// (root) → (node,) for the root and every node downstream of it.
    pub downstream_closure: &'static str,
}

/// A row of `datasets`.
type DatasetRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
);
/// A row of `dataset_versions`.
type DatasetVersionRow = (String, i64, String, i64, String, String, i64);
/// A row of `models`.
type ModelRow = (String, String, Option<String>, Option<String>, String, i64);
/// A row of `model_versions`.
type ModelVersionRow = (
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
);
/// A row of `stage_changes` (without its id).
type StageChangeRow = (String, i64, String, String, String, String, Option<String>, i64);
/// A row of `promotion_requests`.
type RequestRow = (
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
);
/// A row of `ballots` (without the request id).
type BallotRow = (String, String, String, i64);
/// A row of `lineage_edges`.
type EdgeRow = (String, String, Option<String>, String, i64);

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn time(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(format_args!("negative {what}")))
}

fn version(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(format_args!("version {v} out of range")))
}

fn node(s: &str) -> Result<NodeRef, StoreError> {
    s.parse().map_err(|_| corrupt(format_args!("lineage node `{s}`")))
}

fn stage(s: &str) -> Result<Stage, StoreError> {
    Stage::parse(s).map_err(|_| corrupt(format_args!("stage `{s}`")))
}

pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(corrupt)
}

/// Sorted lineage nodes from their stored strings.
fn nodes(strings: impl IntoIterator<Item = String>) -> Result<Vec<NodeRef>, StoreError> {
    let mut out = strings.into_iter().map(|s| node(&s)).collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// Groups (version, from_node) rows by version, each group sorted.
fn parents_by_version(rows: Vec<(i64, String)>) -> Result<std::collections::BTreeMap<i64, Vec<NodeRef>>, StoreError> {
    let mut out: std::collections::BTreeMap<i64, Vec<NodeRef>> = std::collections::BTreeMap::new();
    for (v, from) in rows {
        out.entry(v).or_default().push(node(&from)?);
    }
    for list in out.values_mut() {
        list.sort();
    }
    Ok(out)
}

fn dataset_from_row(row: DatasetRow) -> Result<Dataset, StoreError> {
    let (name, owner, classification, purposes, tenant, description, created_by, created, updated, deleted) = row;
    Ok(Dataset {
        classification: Classification::parse(&classification)
            .map_err(|_| corrupt(format_args!("classification of dataset `{name}`")))?,
        allowed_purposes: serde_json::from_str(&purposes)
            .map_err(|_| corrupt(format_args!("allowed purposes of dataset `{name}`")))?,
        created_at: time(created, "created_at")?,
        updated_at: time(updated, "updated_at")?,
        deleted_at: deleted.map(|v| time(v, "deleted_at")).transpose()?,
        name,
        owner,
        tenant,
        description,
        created_by,
    })
}

fn dataset_version_from_row(row: DatasetVersionRow, parents: Vec<NodeRef>) -> Result<DatasetVersion, StoreError> {
    let (dataset, v, digest, size, uri, created_by, created) = row;
    Ok(DatasetVersion {
        dataset,
        version: version(v)?,
        digest,
        size: u64::try_from(size).map_err(|_| corrupt("negative dataset size"))?,
        uri,
        parents,
        created_by,
        created_at: time(created, "created_at")?,
    })
}

fn model_from_row(row: ModelRow) -> Result<Model, StoreError> {
    let (name, owner, tenant, description, created_by, created) = row;
    Ok(Model {
        name,
        owner,
        tenant,
        description,
        created_by,
        created_at: time(created, "created_at")?,
    })
}

fn model_version_from_row(row: ModelVersionRow, trained_from: Vec<NodeRef>) -> Result<ModelVersion, StoreError> {
    let (model, v, digest, uri, framework, metrics, training_run, st, created_by, created, changed) = row;
    Ok(ModelVersion {
        metrics: serde_json::from_str(&metrics)
            .map_err(|_| corrupt(format_args!("metrics of model `{model}` version {v}")))?,
        version: version(v)?,
        stage: stage(&st)?,
        created_at: time(created, "created_at")?,
        stage_changed_at: time(changed, "stage_changed_at")?,
        model,
        digest,
        uri,
        framework,
        trained_from,
        training_run,
        created_by,
    })
}

fn stage_change_from_row(row: StageChangeRow) -> Result<StageChange, StoreError> {
    let (model, v, from, to, by, reason, request_id, at) = row;
    Ok(StageChange {
        model,
        version: version(v)?,
        from: stage(&from)?,
        to: stage(&to)?,
        by,
        reason,
        request_id,
        at: time(at, "changed_at")?,
    })
}

fn request_from_row(row: RequestRow) -> Result<PromotionRequest, StoreError> {
    let (id, model, v, requested_by, actors, reason, status, required, ttl, created, closed) = row;
    Ok(PromotionRequest {
        requester_actors: serde_json::from_str(&actors)
            .map_err(|_| corrupt(format_args!("requester actors of promotion request `{id}`")))?,
        status: RequestStatus::parse(&status)
            .map_err(|_| corrupt(format_args!("status of promotion request `{id}`")))?,
        version: version(v)?,
        required: u32::try_from(required).map_err(|_| corrupt(format_args!("required of promotion request `{id}`")))?,
        approval_ttl: time(ttl, "approval_ttl")?,
        created_at: time(created, "created_at")?,
        closed_at: closed.map(|v| time(v, "closed_at")).transpose()?,
        id,
        model,
        requested_by,
        reason,
    })
}

fn ballot_from_row(row: BallotRow) -> Result<Ballot, StoreError> {
    let (voter, vote, reason, cast_at) = row;
    Ok(Ballot {
        vote: Vote::parse(&vote).map_err(|_| corrupt(format_args!("vote of `{voter}`")))?,
        cast_at: time(cast_at, "cast_at")?,
        voter,
        reason,
    })
}

fn edge_from_row(row: EdgeRow) -> Result<Edge, StoreError> {
    let (from, to, training_run, recorded_by, created) = row;
    Ok(Edge {
        from: node(&from)?,
        to: node(&to)?,
        training_run,
        recorded_by,
        created_at: time(created, "created_at")?,
    })
}

/// Refuses a parent that is not a dataset version: lineage edges run from
/// dataset versions only. (`spec.validate()` checks this too; the store
/// does not rely on it.)
fn check_parent_kind(field: &'static str, parent: &NodeRef) -> Result<(), StoreError> {
    if parent.kind == NodeKind::Dataset {
        Ok(())
    } else {
        Err(StoreError::Registry(RegistryError::Invalid {
            field,
            reason: format!("`{parent}` is not a dataset version"),
        }))
    }
}

/// The steps [`RegistryStore`]'s transactions share.
#[expect(private_bounds, reason = "only crate-private helpers live in this impl")]
impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Value<DB>,
    String: Value<DB>,
    bool: Param<DB>,
    for<'a> &'a str: Param<DB>,
    // Not `Param`: an optional borrowed value encodes only for its own lifetime.
    for<'a> Option<&'a str>: Encode<'a, DB>,
    Option<i64>: Param<DB>,
{
    /// Commits `tx` with the events `audit` builds when the one statement
    /// it ran `changed` a row; otherwise rolls it back. Returns `changed`.
    async fn commit_if_changed(
        &self,
        tx: sqlx::Transaction<'_, DB>,
        changed: bool,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> Result<bool, StoreError> {
        if changed {
            commit_with_events(self, tx, audit()).await?;
        } else {
            tx.rollback().await?;
        }
        Ok(changed)
    }

    /// Fails with `NotFound` unless `node` is a stored version.
    async fn registry_require_node(conn: &mut DB::Connection, node: &NodeRef) -> Result<(), StoreError> {
        let sql = match node.kind {
            NodeKind::Dataset => DB::REGISTRY.dataset_version_exists,
            NodeKind::Model => DB::REGISTRY.get_model_version,
        };
        let found = sqlx::query(sql)
            .bind(&node.name)
            .bind(i64::from(node.version))
            .fetch_optional(&mut *conn)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!("{} version `{node}`", node.kind.as_str()))),
        }
    }

    /// Locks a model (every stage change takes this lock first, so
    /// they apply one at a time per model on every replica).
    async fn registry_lock_model(conn: &mut DB::Connection, model: &str) -> Result<(), StoreError> {
        let found: Option<(String,)> = sqlx::query_as(DB::REGISTRY.lock_model)
            .bind(model)
            .fetch_optional(&mut *conn)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!("model `{model}`"))),
        }
    }

    /// Checks that every parent exists, then records the edges
    /// parent → `to`.
    async fn registry_add_edges(
        conn: &mut DB::Connection,
        field: &'static str,
        parents: &[NodeRef],
        to: &NodeRef,
        training_run: Option<&str>,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        for parent in parents {
            check_parent_kind(field, parent)?;
            Self::registry_require_node(&mut *conn, parent).await?;
        }
        let to = to.to_string();
        for parent in parents {
            sqlx::query(DB::REGISTRY.insert_edge)
                .bind(parent.to_string())
                .bind(&to)
                .bind(training_run)
                .bind(by)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Moves a version from `from` to `to` if it is still in `from`;
    /// true when it moved.
    async fn registry_move(
        conn: &mut DB::Connection,
        model: &str,
        version: u32,
        from: Stage,
        to: Stage,
        at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::REGISTRY.move_stage)
            .bind(to.as_str())
            .bind(at)
            .bind(model)
            .bind(i64::from(version))
            .bind(from.as_str())
            .execute(&mut *conn)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn registry_record_change(conn: &mut DB::Connection, c: &StageChange) -> Result<(), StoreError> {
        sqlx::query(DB::REGISTRY.insert_stage_change)
            .bind(&c.model)
            .bind(i64::from(c.version))
            .bind(c.from.as_str())
            .bind(c.to.as_str())
            .bind(&c.by)
            .bind(&c.reason)
            .bind(c.request_id.as_deref())
            .bind(to_i64(c.at)?)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Moves a version and records the change, or fails with a
    /// `Conflict` when it is not in `change.from` any more.
    async fn registry_apply(conn: &mut DB::Connection, change: &StageChange) -> Result<(), StoreError> {
        let at = to_i64(change.at)?;
        if !Self::registry_move(&mut *conn, &change.model, change.version, change.from, change.to, at).await? {
            let node = NodeRef::model(&change.model, change.version);
            return Err(StoreError::Conflict(format!(
                "model version `{node}` is no longer in `{}`",
                change.from.as_str()
            )));
        }
        Self::registry_record_change(&mut *conn, change).await
    }
}

/// One body for every backend, over its [`RegistrySql`].
///
/// # Lineage walks
/// [`RegistryStore::lineage`] walks breadth first, one query per level:
/// the frontier (nodes first reached at the previous level) goes in as one
/// parameter and the edges leaving it come back. A node joins the next
/// frontier only the first time it is seen, so each node is expanded once
/// and each edge read once, and a node reachable by several paths is
/// reached at its shortest distance. A single recursive CTE carrying the
/// depth in its rows would deduplicate (node, depth) pairs only, and on a
/// diamond-heavy DAG expand a node once per distinct path length; the
/// level loop costs at most `depth` round trips (each an indexed lookup
/// per frontier node) instead.
///
/// [`RegistryStore::impact`] has no depth, so it is one recursive CTE over
/// bare node strings: `UNION` (not `UNION ALL`) drops a row already
/// produced, so again each node is expanded once.
impl<DB> RegistryStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Value<DB>,
    String: Value<DB>,
    bool: Param<DB>,
    for<'a> &'a str: Param<DB>,
    // Not `Param`: an optional borrowed value encodes only for its own lifetime.
    for<'a> Option<&'a str>: Encode<'a, DB>,
    Option<i64>: Param<DB>,
{
    async fn create_dataset(
        &self,
        d: &Dataset,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        let done = sqlx::query(DB::REGISTRY.insert_dataset)
            .bind(&d.name)
            .bind(&d.owner)
            .bind(d.classification.as_str())
            .bind(json_text(&d.allowed_purposes)?)
            .bind(d.tenant.as_deref())
            .bind(d.description.as_deref())
            .bind(&d.created_by)
            .bind(to_i64(d.created_at)?)
            .bind(to_i64(d.updated_at)?)
            .execute(&mut *tx)
            .await?;
        self.commit_if_changed(tx, DB::rows_affected(&done) == 1, audit).await
    }

    async fn get_dataset(&self, name: &str) -> Result<Option<Dataset>, StoreError> {
        sqlx::query_as::<_, DatasetRow>(DB::REGISTRY.get_dataset)
            .bind(name)
            .fetch_optional(self.reader())
            .await?
            .map(dataset_from_row)
            .transpose()
    }

    async fn list_datasets(&self, include_deleted: bool) -> Result<Vec<Dataset>, StoreError> {
        sqlx::query_as::<_, DatasetRow>(DB::REGISTRY.list_datasets)
            .bind(include_deleted)
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(dataset_from_row)
            .collect()
    }

    async fn update_dataset(
        &self,
        before: &Dataset,
        d: &Dataset,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        let done = sqlx::query(DB::REGISTRY.update_dataset)
            .bind(&d.owner)
            .bind(d.classification.as_str())
            .bind(json_text(&d.allowed_purposes)?)
            .bind(d.description.as_deref())
            .bind(to_i64(d.updated_at)?)
            .bind(&d.name)
            .bind(&before.owner)
            .bind(before.classification.as_str())
            .bind(json_text(&before.allowed_purposes)?)
            .bind(before.description.as_deref())
            .bind(to_i64(before.updated_at)?)
            .execute(&mut *tx)
            .await?;
        self.commit_if_changed(tx, DB::rows_affected(&done) == 1, audit).await
    }

    async fn delete_dataset(
        &self,
        name: &str,
        now: u64,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        let done = sqlx::query(DB::REGISTRY.delete_dataset)
            .bind(to_i64(now)?)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        self.commit_if_changed(tx, DB::rows_affected(&done) == 1, audit).await
    }

    async fn add_dataset_version(
        &self,
        dataset: &str,
        spec: &DatasetVersionSpec,
        digest: &str,
        created_by: &str,
        now: u64,
        audit: impl FnOnce(&DatasetVersion) -> Vec<AuditEvent> + Send,
    ) -> Result<DatasetVersion, StoreError> {
        let now_i = to_i64(now)?;
        let size = to_i64(spec.size)?;
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        let live: Option<(Option<i64>,)> = sqlx::query_as(DB::REGISTRY.lock_dataset)
            .bind(dataset)
            .fetch_optional(&mut *tx)
            .await?;
        if !matches!(live, Some((None,))) {
            return Err(StoreError::NotFound(format!("dataset `{dataset}`")));
        }
        let (next,): (i64,) = sqlx::query_as(DB::REGISTRY.next_dataset_version)
            .bind(dataset)
            .fetch_one(&mut *tx)
            .await?;
        let version = version(next)?;
        sqlx::query(DB::REGISTRY.insert_dataset_version)
            .bind(dataset)
            .bind(next)
            .bind(digest)
            .bind(size)
            .bind(&spec.uri)
            .bind(created_by)
            .bind(now_i)
            .execute(&mut *tx)
            .await?;
        let node = NodeRef::dataset(dataset, version);
        Self::registry_add_edges(&mut *tx, "parents", &spec.parents, &node, None, created_by, now_i).await?;
        let mut parents = spec.parents.clone();
        parents.sort();
        let added = DatasetVersion {
            dataset: dataset.to_owned(),
            version,
            digest: digest.to_owned(),
            size: spec.size,
            uri: spec.uri.clone(),
            parents,
            created_by: created_by.to_owned(),
            created_at: now,
        };
        commit_with_events(self, tx, audit(&added)).await?;
        Ok(added)
    }

    async fn get_dataset_version(&self, dataset: &str, version: u32) -> Result<Option<DatasetVersion>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        let Some(row) = sqlx::query_as::<_, DatasetVersionRow>(DB::REGISTRY.get_dataset_version)
            .bind(dataset)
            .bind(i64::from(version))
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let parents: Vec<(String,)> = sqlx::query_as(DB::REGISTRY.parents_of)
            .bind(NodeRef::dataset(dataset, version).to_string())
            .fetch_all(&mut *conn)
            .await?;
        let parents = nodes(parents.into_iter().map(|(p,)| p))?;
        dataset_version_from_row(row, parents).map(Some)
    }

    async fn list_dataset_versions(&self, dataset: &str) -> Result<Vec<DatasetVersion>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        let rows = sqlx::query_as::<_, DatasetVersionRow>(DB::REGISTRY.list_dataset_versions)
            .bind(dataset)
            .fetch_all(&mut *conn)
            .await?;
        let edges: Vec<(i64, String)> = sqlx::query_as(DB::REGISTRY.dataset_parents)
            .bind(dataset)
            .fetch_all(&mut *conn)
            .await?;
        let mut parents = parents_by_version(edges)?;
        rows.into_iter()
            .map(|row| {
                let p = parents.remove(&row.1).unwrap_or_default();
                dataset_version_from_row(row, p)
            })
            .collect()
    }

    async fn create_model(
        &self,
        m: &Model,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        let done = sqlx::query(DB::REGISTRY.insert_model)
            .bind(&m.name)
            .bind(&m.owner)
            .bind(m.tenant.as_deref())
            .bind(m.description.as_deref())
            .bind(&m.created_by)
            .bind(to_i64(m.created_at)?)
            .execute(&mut *tx)
            .await?;
        self.commit_if_changed(tx, DB::rows_affected(&done) == 1, audit).await
    }

    async fn get_model(&self, name: &str) -> Result<Option<Model>, StoreError> {
        sqlx::query_as::<_, ModelRow>(DB::REGISTRY.get_model)
            .bind(name)
            .fetch_optional(self.reader())
            .await?
            .map(model_from_row)
            .transpose()
    }

    async fn list_models(&self) -> Result<Vec<Model>, StoreError> {
        sqlx::query_as::<_, ModelRow>(DB::REGISTRY.list_models)
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(model_from_row)
            .collect()
    }

    async fn add_model_version(
        &self,
        model: &str,
        spec: &ModelVersionSpec,
        digest: &str,
        created_by: &str,
        now: u64,
        audit: impl FnOnce(&ModelVersion) -> Vec<AuditEvent> + Send,
    ) -> Result<ModelVersion, StoreError> {
        let now_i = to_i64(now)?;
        let metrics = json_text(&spec.metrics)?;
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        Self::registry_lock_model(&mut *tx, model).await?;
        let (next,): (i64,) = sqlx::query_as(DB::REGISTRY.next_model_version)
            .bind(model)
            .fetch_one(&mut *tx)
            .await?;
        let version = version(next)?;
        let stage = Stage::Development;
        sqlx::query(DB::REGISTRY.insert_model_version)
            .bind(model)
            .bind(next)
            .bind(digest)
            .bind(&spec.uri)
            .bind(spec.framework.as_deref())
            .bind(&metrics)
            .bind(spec.training_run.as_deref())
            .bind(stage.as_str())
            .bind(created_by)
            .bind(now_i)
            .bind(now_i)
            .execute(&mut *tx)
            .await?;
        let node = NodeRef::model(model, version);
        Self::registry_add_edges(
            &mut *tx,
            "trained_from",
            &spec.trained_from,
            &node,
            spec.training_run.as_deref(),
            created_by,
            now_i,
        )
        .await?;
        let mut trained_from = spec.trained_from.clone();
        trained_from.sort();
        let added = ModelVersion {
            model: model.to_owned(),
            version,
            digest: digest.to_owned(),
            uri: spec.uri.clone(),
            framework: spec.framework.clone(),
            metrics: spec.metrics.clone(),
            trained_from,
            training_run: spec.training_run.clone(),
            stage,
            created_by: created_by.to_owned(),
            created_at: now,
            stage_changed_at: now,
        };
        commit_with_events(self, tx, audit(&added)).await?;
        Ok(added)
    }

    async fn get_model_version(&self, model: &str, version: u32) -> Result<Option<ModelVersion>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        let Some(row) = sqlx::query_as::<_, ModelVersionRow>(DB::REGISTRY.get_model_version)
            .bind(model)
            .bind(i64::from(version))
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let parents: Vec<(String,)> = sqlx::query_as(DB::REGISTRY.parents_of)
            .bind(NodeRef::model(model, version).to_string())
            .fetch_all(&mut *conn)
            .await?;
        let parents = nodes(parents.into_iter().map(|(p,)| p))?;
        model_version_from_row(row, parents).map(Some)
    }

    async fn list_model_versions(&self, model: &str) -> Result<Vec<ModelVersion>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        let rows = sqlx::query_as::<_, ModelVersionRow>(DB::REGISTRY.list_model_versions)
            .bind(model)
            .fetch_all(&mut *conn)
            .await?;
        let edges: Vec<(i64, String)> = sqlx::query_as(DB::REGISTRY.model_parents)
            .bind(model)
            .fetch_all(&mut *conn)
            .await?;
        let mut parents = parents_by_version(edges)?;
        rows.into_iter()
            .map(|row| {
                let p = parents.remove(&row.1).unwrap_or_default();
                model_version_from_row(row, p)
            })
            .collect()
    }

    async fn model_stages(&self) -> Result<Vec<(String, Stage)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(DB::REGISTRY.model_stages)
            .fetch_all(self.reader())
            .await?;
        rows.into_iter()
            .map(|(m, s)| {
                let s = Stage::parse(&s).map_err(|_| StoreError::Corrupt(format!("stage of model `{m}`")))?;
                Ok((m, s))
            })
            .collect()
    }

    async fn set_stage(
        &self,
        change: &StageChange,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> Result<(), StoreError> {
        change.from.check_transition(change.to)?;
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        Self::registry_lock_model(&mut *tx, &change.model).await?;
        let at = to_i64(change.at)?;
        if !Self::registry_move(&mut *tx, &change.model, change.version, change.from, change.to, at).await? {
            let node = NodeRef::model(&change.model, change.version);
            let current: Option<(String,)> = sqlx::query_as(DB::REGISTRY.version_stage)
                .bind(&change.model)
                .bind(i64::from(change.version))
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match current {
                None => StoreError::NotFound(format!("model version `{node}`")),
                Some((now,)) => StoreError::Conflict(format!(
                    "model version `{node}` is in `{now}`, not `{}`",
                    change.from.as_str()
                )),
            });
        }
        Self::registry_record_change(&mut *tx, change).await?;
        commit_with_events(self, tx, audit()).await
    }

    async fn stage_history(&self, model: &str) -> Result<Vec<StageChange>, StoreError> {
        sqlx::query_as::<_, StageChangeRow>(DB::REGISTRY.stage_history)
            .bind(model)
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(stage_change_from_row)
            .collect()
    }

    async fn open_promotion(
        &self,
        r: &PromotionRequest,
        audit: impl FnOnce() -> Vec<AuditEvent> + Send,
    ) -> Result<(), StoreError> {
        if r.required == 0 {
            return Err(StoreError::Registry(RegistryError::Invalid {
                field: "required",
                reason: "must be at least 1".into(),
            }));
        }
        let node = NodeRef::model(&r.model, r.version);
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        Self::registry_lock_model(&mut *tx, &r.model).await?;
        let current: Option<(String,)> = sqlx::query_as(DB::REGISTRY.version_stage)
            .bind(&r.model)
            .bind(i64::from(r.version))
            .fetch_optional(&mut *tx)
            .await?;
        match current {
            None => return Err(StoreError::NotFound(format!("model version `{node}`"))),
            Some((s,)) if s != Stage::Staging.as_str() => {
                return Err(StoreError::Conflict(format!(
                    "model version `{node}` is in `{s}`: only a version in `staging` can be promoted"
                )));
            }
            Some(_) => {}
        }
        let open: Option<(String,)> = sqlx::query_as(DB::REGISTRY.open_request_of)
            .bind(&r.model)
            .bind(i64::from(r.version))
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((id,)) = open {
            return Err(StoreError::Conflict(format!(
                "model version `{node}` already has an open promotion request `{id}`"
            )));
        }
        sqlx::query(DB::REGISTRY.insert_request)
            .bind(&r.id)
            .bind(&r.model)
            .bind(i64::from(r.version))
            .bind(&r.requested_by)
            .bind(json_text(&r.requester_actors)?)
            .bind(&r.reason)
            .bind(r.status.as_str())
            .bind(i64::from(r.required))
            .bind(to_i64(r.approval_ttl)?)
            .bind(to_i64(r.created_at)?)
            .bind(r.closed_at.map(to_i64).transpose()?)
            .execute(&mut *tx)
            .await?;
        commit_with_events(self, tx, audit()).await
    }

    async fn get_promotion(&self, id: &str) -> Result<Option<(PromotionRequest, Vec<Ballot>)>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        let Some(row) = sqlx::query_as::<_, RequestRow>(DB::REGISTRY.get_request)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let request = request_from_row(row)?;
        let ballots = sqlx::query_as::<_, BallotRow>(DB::REGISTRY.ballots_of)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(ballot_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((request, ballots)))
    }

    async fn list_promotions(
        &self,
        model: Option<&str>,
        status: Option<RequestStatus>,
    ) -> Result<Vec<PromotionRequest>, StoreError> {
        sqlx::query_as::<_, RequestRow>(DB::REGISTRY.list_requests)
            .bind(model)
            .bind(status.map(RequestStatus::as_str))
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(request_from_row)
            .collect()
    }

    async fn vote(
        &self,
        id: &str,
        voter: Voter<'_>,
        vote: Vote,
        reason: &str,
        now: u64,
        audit: impl FnOnce(&VoteResult) -> Vec<AuditEvent> + Send,
    ) -> Result<VoteResult, StoreError> {
        let now_i = to_i64(now)?;
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        let Some(row) = sqlx::query_as::<_, RequestRow>(DB::REGISTRY.get_request_locked)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(StoreError::NotFound(format!("promotion request `{id}`")));
        };
        let mut request = request_from_row(row)?;
        let ballots = sqlx::query_as::<_, BallotRow>(DB::REGISTRY.ballots_of)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(ballot_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let outcome = decide_vote(&request, &ballots, voter, vote, now)?;
        sqlx::query(DB::REGISTRY.upsert_ballot)
            .bind(id)
            .bind(voter.subject)
            .bind(vote.as_str())
            .bind(reason)
            .bind(now_i)
            .execute(&mut *tx)
            .await?;
        let mut archived = None;
        match outcome {
            VoteOutcome::Recorded { .. } => {}
            VoteOutcome::Rejected => request.status = RequestStatus::Rejected,
            VoteOutcome::Completed { .. } => {
                request.status = RequestStatus::Approved;
                let model = request.model.clone();
                Self::registry_lock_model(&mut *tx, &model).await?;
                let node = NodeRef::model(&model, request.version);
                let current: Option<(String,)> = sqlx::query_as(DB::REGISTRY.version_stage)
                    .bind(&model)
                    .bind(i64::from(request.version))
                    .fetch_optional(&mut *tx)
                    .await?;
                match current {
                    Some((s,)) if s == Stage::Staging.as_str() => {}
                    Some((s,)) => {
                        return Err(StoreError::Conflict(format!(
                            "model version `{node}` is in `{s}`, no longer in `staging`: \
                             the request cannot complete; reject it and open a new one"
                        )));
                    }
                    None => return Err(StoreError::NotFound(format!("model version `{node}`"))),
                }
                let change = |version, from, to| StageChange {
                    model: model.clone(),
                    version,
                    from,
                    to,
                    by: voter.subject.to_owned(),
                    reason: request.reason.clone(),
                    request_id: Some(request.id.clone()),
                    at: now,
                };
                let production: Option<(i64,)> = sqlx::query_as(DB::REGISTRY.production_version)
                    .bind(&model)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some((previous,)) = production {
                    let previous = version(previous)?;
                    Self::registry_apply(&mut *tx, &change(previous, Stage::Production, Stage::Archived)).await?;
                    archived = Some(previous);
                }
                Self::registry_apply(&mut *tx, &change(request.version, Stage::Staging, Stage::Production)).await?;
            }
        }
        if request.status != RequestStatus::Open {
            request.closed_at = Some(now);
            sqlx::query(DB::REGISTRY.close_request)
                .bind(request.status.as_str())
                .bind(now_i)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let result = VoteResult {
            outcome,
            request,
            archived,
        };
        commit_with_events(self, tx, audit(&result)).await?;
        Ok(result)
    }

    async fn rollback(
        &self,
        model: &str,
        by: &str,
        reason: &str,
        now: u64,
        audit: impl FnOnce(&Rollback) -> Vec<AuditEvent> + Send,
    ) -> Result<Rollback, StoreError> {
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        Self::registry_lock_model(&mut *tx, model).await?;
        let Some((current,)): Option<(i64,)> = sqlx::query_as(DB::REGISTRY.production_version)
            .bind(model)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(StoreError::Conflict(format!(
                "model `{model}` has no production version"
            )));
        };
        let Some((target,)): Option<(i64,)> = sqlx::query_as(DB::REGISTRY.rollback_target)
            .bind(model)
            .bind(current)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(StoreError::Conflict(format!(
                "model `{model}` has nothing to roll back to: only the version its production version's promotion replaced can return, once (a rolled-back version goes back to production only through a new promotion request)"
            )));
        };
        let (from, to) = (version(current)?, version(target)?);
        let change = |version, from, to| StageChange {
            model: model.to_owned(),
            version,
            from,
            to,
            by: by.to_owned(),
            reason: reason.to_owned(),
            request_id: None,
            at: now,
        };
        // Archive first: a model never has two production versions,
        // not even inside this transaction (a unique index says so).
        Self::registry_apply(&mut *tx, &change(from, Stage::Production, Stage::Archived)).await?;
        Self::registry_apply(&mut *tx, &change(to, Stage::Archived, Stage::Production)).await?;
        let done = Rollback { from, to };
        commit_with_events(self, tx, audit(&done)).await?;
        Ok(done)
    }

    async fn lineage(&self, root: &NodeRef, direction: Direction, depth: u32) -> Result<Graph, StoreError> {
        let mut conn = self.reader().acquire().await?;
        Self::registry_require_node(&mut *conn, root).await?;
        let (sql, downstream) = match direction {
            Direction::Downstream => (DB::REGISTRY.edges_from, true),
            Direction::Upstream => (DB::REGISTRY.edges_to, false),
        };
        let mut seen = std::collections::HashSet::new();
        seen.insert(root.to_string());
        let mut frontier = vec![root.to_string()];
        let mut rows: Vec<EdgeRow> = Vec::new();
        for _ in 0..depth {
            if frontier.is_empty() {
                break;
            }
            let level: Vec<EdgeRow> = sqlx::query_as(sql)
                .bind(DB::node_list(&frontier)?)
                .fetch_all(&mut *conn)
                .await?;
            frontier.clear();
            for row in &level {
                let far = if downstream { &row.1 } else { &row.0 };
                if seen.insert(far.clone()) {
                    frontier.push(far.clone());
                }
            }
            rows.extend(level);
        }
        let mut edges = rows.into_iter().map(edge_from_row).collect::<Result<Vec<_>, _>>()?;
        edges.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
        Ok(Graph {
            root: root.clone(),
            direction,
            depth,
            nodes: nodes(seen)?,
            edges,
        })
    }

    async fn impact(&self, root: &NodeRef) -> Result<Vec<NodeRef>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        Self::registry_require_node(&mut *conn, root).await?;
        let root = root.to_string();
        let rows: Vec<(String,)> = sqlx::query_as(DB::REGISTRY.downstream_closure)
            .bind(&root)
            .fetch_all(&mut *conn)
            .await?;
        nodes(rows.into_iter().map(|(n,)| n).filter(|n| *n != root))
    }
}
