//! The embedded backend: one SQLite file in WAL mode, and all of its SQL.
//!
//! Writes go through a pool of exactly one connection, so SQLite never
//! sees two writers and never answers `SQLITE_BUSY` to a write; reads use a
//! separate pool and run beside the writer, as WAL allows. `synchronous =
//! FULL` makes every commit durable before it returns, because Warden
//! acknowledges actions only after recording them.
//!
//! # Layout
//! Connecting; then SQLite's [`Dialect`]: one SQL table per concern (keys,
//! settings, OAuth, audit, registry, sessions, in that order) and the audit log's
//! multi-row insert and subtree lookup. The bodies that run this SQL are
//! the concerns' own, shared with PostgreSQL. Migrations are in
//! `migrations/sqlite`.

use std::ops::Range;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::query_builder::Separated;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteSynchronous,
};
use warden_audit::{Hash, Subtree};

use crate::approvals::ApprovalSql;
use crate::audit::{AuditSql, BatchPlan, PreparedEvent, runs, subtrees_from_rows};
use crate::audit_queue::{leaf_hashes_of, now_ms};
use crate::authorization::AuthorizationSql;
use crate::error::StoreError;
use crate::keys::KeySql;
use crate::oauth::OAuthSql;
use crate::registry::{RegistrySql, json_text};
use crate::sessions::SessionSql;
use crate::settings::SettingsSql;
use crate::sql::{Dialect, SqlStore, discard_if_in_transaction};
use crate::{Store, create_private_file, to_i64};

/// SQLite-backed store.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqliteStore {
    /// Opens (creating with mode 0600 when absent) the database at `url`
    /// (`sqlite://PATH`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let file = options.get_filename();
        if file != Path::new(":memory:") {
            create_private_file(file)?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(discard_if_in_transaction::<Sqlite>)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqlStore::new(writer, reader))
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        self.reader().close().await;
        self.writer().close().await;
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        Sqlite::BACKEND
    }
}

/// The file an `sqlite:` URL names (`None` for in-memory databases).
pub fn database_path(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?;
    let file = options.get_filename();
    Ok((file != Path::new(":memory:")).then(|| file.to_path_buf()))
}

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    const KEYS: KeySql = KEYS;
    const SETTINGS: SettingsSql = SETTINGS;
    const OAUTH: OAuthSql = OAUTH;
    const AUDIT: AuditSql = AUDIT;
    const REGISTRY: RegistrySql = REGISTRY;
    const SESSIONS: SessionSql = SESSIONS;
    const AUTHORIZATION: AuthorizationSql = AUTHORIZATION;
    const APPROVALS: ApprovalSql = APPROVALS;

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// A JSON array, for `json_each`.
    type NodeList<'a> = String;

    fn node_list(nodes: &[String]) -> Result<String, StoreError> {
        json_text(nodes)
    }

    async fn append_events(conn: &mut SqliteConnection, events: &[PreparedEvent]) -> Result<Range<u64>, StoreError> {
        insert_events(conn, events).await
    }

    async fn subtrees(store: &SqliteStore, nodes: &[Subtree]) -> Result<Vec<Hash>, StoreError> {
        select_subtrees(store, nodes).await
    }

    async fn enqueue_events(conn: &mut SqliteConnection, events: &[PreparedEvent]) -> Result<Vec<u64>, StoreError> {
        queue_events(conn, events).await
    }

    async fn integrate_queued(conn: &mut SqliteConnection, max: usize) -> Result<Range<u64>, StoreError> {
        integrate_queued(conn, max).await
    }
}

const KEYS: KeySql = KeySql {
    insert: "INSERT INTO signing_keys (kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private) \
              VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    list: "SELECT kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private \
            FROM signing_keys ORDER BY activates_at, generation",
    retire: "UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL",
    bind_master: "INSERT INTO settings (name, value) VALUES ('master_key_fingerprint', ?) ON CONFLICT (name) DO NOTHING",
    master: "SELECT value FROM settings WHERE name = 'master_key_fingerprint'",
};

const SETTINGS: SettingsSql = SettingsSql {
    get: "SELECT value FROM settings WHERE name = ?",
    insert_if_absent: "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
    lease: "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until < ?3",
};

const OAUTH: OAuthSql = OAuthSql {
    insert_client: "INSERT INTO oauth_clients (client_id, kind, grants, scopes, roles, audiences, auth_method, secret_hash, jwks, disabled, created_at, updated_at, tenant, redirect_uris, require_dpop) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO NOTHING",
    get_client: "SELECT client_id, kind, grants, scopes, roles, audiences, auth_method, secret_hash, jwks, disabled, created_at, updated_at, last_used_at, tenant, redirect_uris, require_dpop FROM oauth_clients WHERE client_id = ?",
    list_clients: "SELECT client_id, kind, grants, scopes, roles, audiences, auth_method, secret_hash, jwks, disabled, created_at, updated_at, last_used_at, tenant, redirect_uris, require_dpop FROM oauth_clients ORDER BY client_id",
    set_disabled: "UPDATE oauth_clients SET disabled = ?, updated_at = ? WHERE client_id = ?",
    set_secret: "UPDATE oauth_clients SET secret_hash = ?, updated_at = ? WHERE client_id = ? AND auth_method = 'secret'",
    touch: "UPDATE oauth_clients SET last_used_at = ? WHERE client_id = ?",
    insert_family: "INSERT INTO refresh_families (id, client_id, subject, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    insert_refresh: "INSERT INTO refresh_tokens (token_hash, family, seq, grant_data, issued_at, expires_at, access_jti, access_exp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    find_refresh: "SELECT t.token_hash, t.family, t.seq, t.grant_data, t.issued_at, t.expires_at, t.access_jti, t.access_exp, t.used_at, t.grace_used, f.client_id, f.subject, f.created_at, f.expires_at, f.revoked_at FROM refresh_tokens AS t JOIN refresh_families AS f ON f.id = t.family WHERE t.token_hash = ?",
    find_refresh_locked: "SELECT t.token_hash, t.family, t.seq, t.grant_data, t.issued_at, t.expires_at, t.access_jti, t.access_exp, t.used_at, t.grace_used, f.client_id, f.subject, f.created_at, f.expires_at, f.revoked_at FROM refresh_tokens AS t JOIN refresh_families AS f ON f.id = t.family WHERE t.token_hash = ?",
    successor: "SELECT used_at FROM refresh_tokens WHERE family = ? AND seq = ?",
    max_seq: "SELECT MAX(seq) FROM refresh_tokens WHERE family = ?",
    mark_used: "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
    mark_successor: "UPDATE refresh_tokens SET used_at = ? WHERE family = ? AND seq = ? AND used_at IS NULL RETURNING access_jti, access_exp",
    mark_grace: "UPDATE refresh_tokens SET grace_used = 1 WHERE token_hash = ?",
    revoke_family: "UPDATE refresh_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
    family_jtis: "SELECT access_jti, access_exp FROM refresh_tokens WHERE family = ? AND access_exp + 60 > ?",
    live_families_of: "SELECT f.id, f.client_id, f.subject, f.created_at, f.expires_at, f.revoked_at, COALESCE((SELECT MAX(t.issued_at) FROM refresh_tokens AS t WHERE t.family = f.id), f.created_at) FROM refresh_families AS f WHERE f.subject LIKE 'user:%' AND f.subject = ? AND f.revoked_at IS NULL AND f.expires_at > ? ORDER BY f.created_at DESC, f.id LIMIT ?",
    live_families_all: "SELECT f.id, f.client_id, f.subject, f.created_at, f.expires_at, f.revoked_at, COALESCE((SELECT MAX(t.issued_at) FROM refresh_tokens AS t WHERE t.family = f.id), f.created_at) FROM refresh_families AS f WHERE f.subject LIKE 'user:%' AND f.revoked_at IS NULL AND f.expires_at > ? ORDER BY f.created_at DESC, f.id LIMIT ?",
    revoke_token: "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING",
    revocations_since: "SELECT jti, expires_at FROM revoked_tokens WHERE revoked_at >= ? AND expires_at + 60 > ?",
    consume_assertion: "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT (client_id, jti) DO NOTHING",
    purge: &[
        "DELETE FROM revoked_tokens WHERE expires_at + 60 <= ?1",
        "DELETE FROM client_assertions WHERE expires_at + 60 <= ?1",
        "DELETE FROM refresh_tokens WHERE family IN (SELECT id FROM refresh_families WHERE expires_at <= ?1 OR revoked_at + 3660 <= ?1)",
        "DELETE FROM refresh_families WHERE expires_at <= ?1 OR revoked_at + 3660 <= ?1",
    ],
};

const AUDIT: AuditSql = AuditSql {
    leaf_hashes: "SELECT idx, leaf_hash FROM audit_events WHERE idx >= ? AND idx < ? ORDER BY idx",
    activity: "SELECT ?1 + ((time - ?1) / ?2) * ?2, type, outcome, COUNT(*) FROM audit_events \
                WHERE time >= ?1 AND time < ?3 GROUP BY 1, 2, 3",
    put_checkpoint: "INSERT INTO audit_checkpoints (size, time, note) VALUES (?, ?, ?) ON CONFLICT (size) DO NOTHING",
    checkpoints: "SELECT size, time, note FROM audit_checkpoints WHERE size >= ? ORDER BY size LIMIT ?",
    erase: "UPDATE audit_events SET body = NULL, salt = NULL, erased_at = ?, erasure_reason = ? \
             WHERE idx = ? AND erased_at IS NULL",
    erased: "SELECT erased_at FROM audit_events WHERE idx = ?",
    put_probe: "INSERT INTO settings (name, value) VALUES ('audit_write_probe', ?) \
                ON CONFLICT (name) DO UPDATE SET value = excluded.value",
};

/// Most events (10 columns each) and subtrees (3 columns) in one multi-row
/// `INSERT`, well under SQLite's 32,766 bound parameters.
const EVENTS_PER_INSERT: usize = 256;
const NODES_PER_INSERT: usize = 512;

/// [`Dialect::append_events`]: the caller's `BEGIN IMMEDIATE` took the
/// write lock before the state is read, so even another process writing the
/// same file cannot interleave; events and subtrees go in as multi-row
/// `INSERT`s.
async fn insert_events(tx: &mut SqliteConnection, events: &[PreparedEvent]) -> Result<Range<u64>, StoreError> {
    let (size, frontier): (i64, Vec<u8>) = sqlx::query_as("SELECT size, frontier FROM audit_state WHERE id = 0")
        .fetch_one(&mut *tx)
        .await?;
    let plan = BatchPlan::new(size, &frontier, events.iter().map(PreparedEvent::leaf_hash))?;
    let first = to_i64(plan.start)?;
    let numbered: Vec<(i64, &PreparedEvent)> = (first..).zip(events).collect();
    for run in runs(&numbered, EVENTS_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO audit_events (idx, time, type, subject, resource, outcome, actor, body, salt, leaf_hash) ",
        );
        insert.push_values(run, |mut row, (idx, e)| {
            row.push_bind(*idx);
            push_event(&mut row, e);
        });
        insert.build().execute(&mut *tx).await?;
    }
    finish_batch(tx, &plan).await?;
    Ok(plan.range())
}

/// Binds an event's columns, in the order both `audit_events` and
/// `audit_queue` inserts name them after their first: time, type,
/// subject, resource, outcome, actor, body, salt, leaf hash.
fn push_event(row: &mut Separated<'_, Sqlite, &'static str>, e: &PreparedEvent) {
    row.push_bind(e.time())
        .push_bind(e.kind())
        .push_bind(e.subject())
        .push_bind(e.resource())
        .push_bind(e.outcome())
        .push_bind(e.actor())
        .push_bind(e.body())
        .push_bind(e.salt_bytes())
        .push_bind(e.leaf_hash().as_slice());
}

/// Stores what a batch completes besides its events: the subtrees and
/// the new state.
async fn finish_batch(tx: &mut SqliteConnection, plan: &BatchPlan) -> Result<(), StoreError> {
    let nodes = plan
        .nodes
        .iter()
        .map(|(level, idx, hash)| Ok((i64::from(*level), to_i64(*idx)?, hash)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    for run in runs(&nodes, NODES_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO audit_nodes (level, idx, hash) ");
        insert.push_values(run, |mut row, (level, idx, hash)| {
            row.push_bind(*level).push_bind(*idx).push_bind(hash.as_slice());
        });
        insert.build().execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE audit_state SET size = ?, frontier = ? WHERE id = 0")
        .bind(to_i64(plan.frontier.size())?)
        .bind(plan.frontier.to_bytes())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// [`Dialect::integrate_queued`]: the caller's `BEGIN IMMEDIATE` holds the
/// write lock, so the oldest `max` rows are the lowest `seq`s and no
/// lower one can appear meanwhile: the batch is every row from the first
/// `seq` read to the last. Only their leaf hashes come out of the
/// database (to plan the tree); the rows move into `audit_events` by one
/// `INSERT … SELECT`, numbered in `seq` order.
async fn integrate_queued(tx: &mut SqliteConnection, max: usize) -> Result<Range<u64>, StoreError> {
    let limit = i64::try_from(max).map_err(|_| StoreError::OutOfRange(u64::MAX))?;
    let leaves: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT seq, leaf_hash FROM audit_queue ORDER BY seq LIMIT ?")
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    let (Some((first_seq, _)), Some((last_seq, _))) = (leaves.first(), leaves.last()) else {
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM audit_state WHERE id = 0")
            .fetch_one(&mut *tx)
            .await?;
        let size = u64::try_from(size).map_err(|_| StoreError::Corrupt("audit_state size is negative".into()))?;
        return Ok(size..size);
    };
    let (first_seq, last_seq) = (*first_seq, *last_seq);
    let hashes = leaf_hashes_of(&leaves)?;
    let (size, frontier): (i64, Vec<u8>) = sqlx::query_as("SELECT size, frontier FROM audit_state WHERE id = 0")
        .fetch_one(&mut *tx)
        .await?;
    let plan = BatchPlan::new(size, &frontier, hashes.iter())?;
    // Receipts are consecutive unless a queueing transaction rolled back
    // (AUTOINCREMENT skips its numbers): then number rows by their rank.
    let consecutive = usize::try_from(last_seq - first_seq).ok() == Some(hashes.len() - 1);
    let numbering = if consecutive {
        "INSERT INTO audit_events (idx, time, type, subject, resource, outcome, actor, body, salt, leaf_hash) \
         SELECT ?1 + (seq - ?2), time, type, subject, resource, outcome, actor, body, salt, leaf_hash \
         FROM audit_queue WHERE seq BETWEEN ?2 AND ?3"
    } else {
        "INSERT INTO audit_events (idx, time, type, subject, resource, outcome, actor, body, salt, leaf_hash) \
         SELECT ?1 + ROW_NUMBER() OVER (ORDER BY seq) - 1, time, type, subject, resource, outcome, actor, body, salt, leaf_hash \
         FROM audit_queue WHERE seq BETWEEN ?2 AND ?3 ORDER BY seq"
    };
    let moved = sqlx::query(numbering)
        .bind(to_i64(plan.start)?)
        .bind(first_seq)
        .bind(last_seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let deleted = sqlx::query("DELETE FROM audit_queue WHERE seq BETWEEN ? AND ?")
        .bind(first_seq)
        .bind(last_seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if moved != hashes.len() as u64 || deleted != moved {
        return Err(StoreError::Corrupt(format!(
            "integrating {} queued audit events moved {moved} and deleted {deleted}",
            hashes.len()
        )));
    }
    finish_batch(tx, &plan).await?;
    Ok(plan.range())
}

/// [`Dialect::enqueue_events`]: multi-row `INSERT`s on the single writer.
/// Its transaction is the only one writing, so the batch's rows take
/// consecutive `seq`s ending at the last one inserted.
async fn queue_events(tx: &mut SqliteConnection, events: &[PreparedEvent]) -> Result<Vec<u64>, StoreError> {
    let queued_at = now_ms();
    let mut last = 0i64;
    for run in runs(events, EVENTS_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO audit_queue (queued_at, time, type, subject, resource, outcome, actor, body, salt, leaf_hash) ",
        );
        insert.push_values(run, |mut row, e| {
            row.push_bind(queued_at);
            push_event(&mut row, e);
        });
        last = insert.build().execute(&mut *tx).await?.last_insert_rowid();
    }
    let count = i64::try_from(events.len()).map_err(|_| StoreError::OutOfRange(u64::MAX))?;
    let first = last - count + 1;
    (first..=last)
        .map(|seq| u64::try_from(seq).map_err(|_| StoreError::Corrupt("negative audit queue sequence".into())))
        .collect()
}

/// [`Dialect::subtrees`]: the positions
/// go in as JSON arrays so that the statement text never changes.
async fn select_subtrees(store: &SqliteStore, nodes: &[Subtree]) -> Result<Vec<Hash>, StoreError> {
    let inner: Vec<String> = nodes
        .iter()
        .filter(|n| n.level > 0)
        .map(|n| format!("[{},{}]", n.level, n.index))
        .collect();
    let leaves: Vec<String> = nodes
        .iter()
        .filter(|n| n.level == 0)
        .map(|n| n.index.to_string())
        .collect();
    let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT n.level, n.idx, n.hash FROM json_each(?1) AS j \
         JOIN audit_nodes AS n ON n.level = j.value ->> 0 AND n.idx = j.value ->> 1 \
         UNION ALL \
         SELECT 0, e.idx, e.leaf_hash FROM json_each(?2) AS k JOIN audit_events AS e ON e.idx = k.value",
    )
    .bind(format!("[{}]", inner.join(",")))
    .bind(format!("[{}]", leaves.join(",")))
    .fetch_all(store.reader())
    .await?;
    subtrees_from_rows(nodes, rows)
}

const REGISTRY: RegistrySql = RegistrySql {
    insert_dataset: "INSERT INTO datasets (name, owner, classification, allowed_purposes, tenant, description, created_by, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (name) DO NOTHING",
    get_dataset: "SELECT name, owner, classification, allowed_purposes, tenant, description, created_by, created_at, updated_at, deleted_at \
                  FROM datasets WHERE name = ?1",
    list_datasets: "SELECT name, owner, classification, allowed_purposes, tenant, description, created_by, created_at, updated_at, deleted_at \
                    FROM datasets WHERE ?1 OR deleted_at IS NULL ORDER BY name",
    update_dataset: "UPDATE datasets SET owner = ?1, classification = ?2, allowed_purposes = ?3, description = ?4, updated_at = ?5 \
                     WHERE name = ?6 AND deleted_at IS NULL AND owner = ?7 AND classification = ?8 \
                     AND allowed_purposes = ?9 AND description IS ?10 AND updated_at = ?11",
    delete_dataset: "UPDATE datasets SET deleted_at = ?1 WHERE name = ?2 AND deleted_at IS NULL",
    lock_dataset: "SELECT deleted_at FROM datasets WHERE name = ?1",
    next_dataset_version: "SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset = ?1",
    dataset_version_exists: "SELECT version FROM dataset_versions WHERE dataset = ?1 AND version = ?2",
    insert_dataset_version: "INSERT INTO dataset_versions (dataset, version, digest, size, uri, created_by, created_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    get_dataset_version: "SELECT dataset, version, digest, size, uri, created_by, created_at FROM dataset_versions \
                          WHERE dataset = ?1 AND version = ?2",
    list_dataset_versions: "SELECT dataset, version, digest, size, uri, created_by, created_at FROM dataset_versions \
                            WHERE dataset = ?1 ORDER BY version",
    dataset_parents: "SELECT v.version, e.from_node FROM dataset_versions AS v \
                      JOIN lineage_edges AS e ON e.to_node = 'dataset:' || v.dataset || '@' || v.version WHERE v.dataset = ?1",
    parents_of: "SELECT from_node FROM lineage_edges WHERE to_node = ?1",
    insert_edge: "INSERT INTO lineage_edges (from_node, to_node, training_run, recorded_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    insert_model: "INSERT INTO models (name, owner, tenant, description, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                   ON CONFLICT (name) DO NOTHING",
    get_model: "SELECT name, owner, tenant, description, created_by, created_at FROM models WHERE name = ?1",
    list_models: "SELECT name, owner, tenant, description, created_by, created_at FROM models ORDER BY name",
    lock_model: "SELECT name FROM models WHERE name = ?1",
    next_model_version: "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model = ?1",
    insert_model_version: "INSERT INTO model_versions (model, version, digest, uri, framework, metrics, training_run, stage, created_by, created_at, stage_changed_at) \
                           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    get_model_version: "SELECT model, version, digest, uri, framework, metrics, training_run, stage, created_by, created_at, stage_changed_at \
                        FROM model_versions WHERE model = ?1 AND version = ?2",
    list_model_versions: "SELECT model, version, digest, uri, framework, metrics, training_run, stage, created_by, created_at, stage_changed_at \
                          FROM model_versions WHERE model = ?1 ORDER BY version",
    model_parents: "SELECT v.version, e.from_node FROM model_versions AS v \
                    JOIN lineage_edges AS e ON e.to_node = 'model:' || v.model || '@' || v.version WHERE v.model = ?1",
    model_stages: "SELECT model, stage FROM model_versions ORDER BY model, version",
    version_stage: "SELECT stage FROM model_versions WHERE model = ?1 AND version = ?2",
    move_stage: "UPDATE model_versions SET stage = ?1, stage_changed_at = ?2 WHERE model = ?3 AND version = ?4 AND stage = ?5",
    production_version: "SELECT version FROM model_versions WHERE model = ?1 AND stage = 'production'",
    // The version the promotion that installed the current production
    // version archived; none when a rollback installed it.
    rollback_target: "SELECT a.version FROM stage_changes AS a \
                      JOIN model_versions AS v ON v.model = a.model AND v.version = a.version \
                      WHERE a.model = ?1 AND a.from_stage = 'production' AND a.to_stage = 'archived' \
                      AND v.stage = 'archived' AND a.request_id IS NOT NULL \
                      AND a.request_id = (SELECT p.request_id FROM stage_changes AS p \
                      WHERE p.model = ?1 AND p.version = ?2 AND p.to_stage = 'production' ORDER BY p.id DESC LIMIT 1)",
    insert_stage_change: "INSERT INTO stage_changes (model, version, from_stage, to_stage, changed_by, reason, request_id, changed_at) \
                          VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    stage_history: "SELECT model, version, from_stage, to_stage, changed_by, reason, request_id, changed_at \
                    FROM stage_changes WHERE model = ?1 ORDER BY id",
    open_request_of: "SELECT id FROM promotion_requests WHERE model = ?1 AND version = ?2 AND status = 'open'",
    insert_request: "INSERT INTO promotion_requests (id, model, version, requested_by, requester_actors, reason, status, required, approval_ttl, created_at, closed_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    get_request: "SELECT id, model, version, requested_by, requester_actors, reason, status, required, approval_ttl, created_at, closed_at \
                  FROM promotion_requests WHERE id = ?1",
    get_request_locked: "SELECT id, model, version, requested_by, requester_actors, reason, status, required, approval_ttl, created_at, closed_at \
                         FROM promotion_requests WHERE id = ?1",
    list_requests: "SELECT id, model, version, requested_by, requester_actors, reason, status, required, approval_ttl, created_at, closed_at \
                    FROM promotion_requests WHERE (?1 IS NULL OR model = ?1) AND (?2 IS NULL OR status = ?2) \
                    ORDER BY created_at DESC, id",
    close_request: "UPDATE promotion_requests SET status = ?1, closed_at = ?2 WHERE id = ?3 AND status = 'open'",
    ballots_of: "SELECT voter, vote, reason, cast_at FROM ballots WHERE request_id = ?1 ORDER BY cast_at, voter",
    upsert_ballot: "INSERT INTO ballots (request_id, voter, vote, reason, cast_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                    ON CONFLICT (request_id, voter) DO UPDATE SET vote = excluded.vote, reason = excluded.reason, cast_at = excluded.cast_at",
    // CROSS JOIN keeps the frontier as the outer loop, so each of its
    // nodes is one index lookup.
    edges_from: "SELECT e.from_node, e.to_node, e.training_run, e.recorded_by, e.created_at \
                 FROM json_each(?1) AS f CROSS JOIN lineage_edges AS e WHERE e.from_node = f.value",
    edges_to: "SELECT e.from_node, e.to_node, e.training_run, e.recorded_by, e.created_at \
               FROM json_each(?1) AS f CROSS JOIN lineage_edges AS e WHERE e.to_node = f.value",
    downstream_closure: "WITH RECURSIVE reach(node) AS (SELECT ?1 UNION \
                         SELECT e.to_node FROM reach CROSS JOIN lineage_edges AS e WHERE e.from_node = reach.node) \
                         SELECT node FROM reach",
};

const AUTHORIZATION: AuthorizationSql = AuthorizationSql {
    insert_code: "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, code_challenge, grant_data, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    spend_code: "UPDATE authorization_codes SET used_at = ?1 WHERE code_hash = ?2 AND used_at IS NULL",
    find_code: "SELECT client_id, redirect_uri, code_challenge, grant_data, expires_at, used_at, family FROM authorization_codes WHERE code_hash = ?1",
    set_code_family: "UPDATE authorization_codes SET family = ?1 WHERE code_hash = ?2",
    insert_device: "INSERT INTO device_grants (device_hash, user_code, client_id, scopes, audiences, issued_at, expires_at, poll_interval) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (user_code) DO NOTHING",
    find_device: "SELECT user_code, client_id, scopes, audiences, status, grant_data, subject, expires_at, poll_interval FROM device_grants WHERE user_code = ?1",
    find_device_by_hash: "SELECT user_code, client_id, scopes, audiences, status, grant_data, subject, expires_at, poll_interval FROM device_grants WHERE device_hash = ?1",
    decide_device: "UPDATE device_grants SET status = ?1, grant_data = ?2, subject = ?3 WHERE user_code = ?4 AND status = 'pending' AND expires_at > ?5",
    poll_device: "UPDATE device_grants SET last_poll_at = ?1 WHERE device_hash = ?2 AND (last_poll_at IS NULL OR last_poll_at + poll_interval <= ?1)",
    issue_device: "UPDATE device_grants SET status = 'issued' WHERE device_hash = ?1 AND status = 'approved' AND client_id = ?2",
    purge_codes: "DELETE FROM authorization_codes WHERE expires_at < ?1",
    purge_devices: "DELETE FROM device_grants WHERE expires_at < ?1",
};

const SESSIONS: SessionSql = SessionSql {
    insert: "INSERT INTO dashboard_sessions (jti, subject, client_id, issued_at, expires_at, client_ip, user_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (jti) DO UPDATE SET client_ip = excluded.client_ip, user_agent = excluded.user_agent",
    active_of: "SELECT s.jti, s.subject, s.client_id, s.issued_at, s.expires_at, s.client_ip, s.user_agent, s.ended_at FROM dashboard_sessions AS s WHERE s.subject = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2 AND NOT EXISTS (SELECT 1 FROM revoked_tokens AS r WHERE r.jti = s.jti) ORDER BY s.issued_at DESC, s.jti LIMIT ?3",
    active_all: "SELECT s.jti, s.subject, s.client_id, s.issued_at, s.expires_at, s.client_ip, s.user_agent, s.ended_at FROM dashboard_sessions AS s WHERE s.ended_at IS NULL AND s.expires_at > ?1 AND NOT EXISTS (SELECT 1 FROM revoked_tokens AS r WHERE r.jti = s.jti) ORDER BY s.issued_at DESC, s.jti LIMIT ?2",
    find: "SELECT s.jti, s.subject, s.client_id, s.issued_at, s.expires_at, s.client_ip, s.user_agent, s.ended_at FROM dashboard_sessions AS s WHERE s.jti = ?1",
    end: "UPDATE dashboard_sessions SET ended_at = ?1 WHERE jti = ?2 AND ended_at IS NULL",
    purge: "DELETE FROM dashboard_sessions WHERE expires_at + 60 <= ?1",
};

const APPROVALS: ApprovalSql = ApprovalSql {
    insert: "INSERT INTO approvals (id, auth_req_hash, client_id, request, created_at, expires_at, token_ttl, poll_interval) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    find: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals WHERE id = ?1",
    find_by_hash: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals WHERE auth_req_hash = ?1",
    list: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals ORDER BY created_at DESC, id DESC LIMIT ?1",
    list_status: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals WHERE status = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
    decide: "UPDATE approvals SET status = ?1, decided_by = ?2, decided_roles = ?3, reason = ?4, decided_at = ?5, usable_until = CASE WHEN ?1 = 'approved' THEN ?5 + token_ttl ELSE NULL END WHERE id = ?6 AND status = 'pending' AND expires_at > ?5",
    poll: "UPDATE approvals SET last_poll_at = ?1 WHERE auth_req_hash = ?2 AND (last_poll_at IS NULL OR last_poll_at + poll_interval <= ?1)",
    issue: "UPDATE approvals SET status = 'issued', token_jti = ?1 WHERE auth_req_hash = ?2 AND client_id = ?3 AND status = 'approved' AND usable_until > ?4",
    use_token: "UPDATE approvals SET status = 'used', used_at = ?1 WHERE id = ?2 AND token_jti = ?3 AND status = 'issued' AND usable_until > ?1",
    take: "UPDATE approvals SET status = 'used', token_jti = ?1, used_at = ?2 WHERE id = ?3 AND status = 'approved' AND usable_until > ?2",
    expiring: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals WHERE (status = 'pending' AND expires_at <= ?1) OR (status IN ('approved', 'issued') AND usable_until <= ?1) ORDER BY created_at LIMIT ?2",
    expire: "UPDATE approvals SET status = 'expired' WHERE id = ?1 AND status = ?2",
    purge: "DELETE FROM approvals WHERE created_at < ?1 AND status IN ('denied', 'used', 'expired')",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditStore as _;

    /// SQLite ends a transaction by itself on some failures (`SQLITE_FULL`
    /// at `COMMIT` among them); the `COMMIT` then fails, and so does the
    /// `ROLLBACK` the dropped transaction queues. Here the transaction is
    /// ended behind sqlx's back the same way. The single writer connection
    /// must not stay "inside" it: the next write works, with no restart.
    #[tokio::test]
    async fn a_transaction_that_sqlite_ended_by_itself_does_not_wedge_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let mut tx = store.writer().begin_with(Sqlite::BEGIN).await.unwrap();
        sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
        assert!(tx.commit().await.is_err(), "COMMIT outside a transaction fails");
        crate::settings::SettingsStore::insert_setting_if_absent(&store, "probe", "1")
            .await
            .unwrap();
        store.probe_audit().await.unwrap();
        assert_eq!(store.audit_failure(), None);
        store.close().await;
    }

    #[tokio::test]
    async fn purge_drops_revoked_families() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        crate::oauth::check_purge_of_revoked_families(&store).await;
        store.close().await;
    }

    #[tokio::test]
    async fn approvals_are_decided_taken_and_used_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        crate::approvals::check_approvals(&store).await;
        store.close().await;
    }

    #[tokio::test]
    async fn authorization_codes_and_device_grants() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        crate::authorization::check_authorizations(&store).await;
        store.close().await;
    }

    #[tokio::test]
    async fn dashboard_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        crate::sessions::check_sessions(&store).await;
        store.close().await;
    }
}
