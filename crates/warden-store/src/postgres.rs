//! The replica backend: PostgreSQL, shared by any number of stateless
//! `warden serve` processes, and all of its SQL.
//!
//! # Layout
//! Connecting; then PostgreSQL's [`Dialect`]: one SQL table per concern
//! (keys, settings, OAuth, audit, registry, sessions, in that order) and the audit
//! log's array inserts and subtree lookup, kept in small statements (see
//! [`STATEMENT_BYTES`]). The bodies that run this SQL are the concerns'
//! own, shared with SQLite. Migrations are in `migrations/postgres`.

use std::ops::Range;
use std::str::FromStr as _;

use sqlx::Postgres;
use sqlx::Row as _;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPoolOptions, PgQueryResult};
use warden_audit::{Hash, Subtree};

use crate::approvals::ApprovalSql;
use crate::audit::{AuditSql, BatchPlan, PreparedEvent, subtrees_from_rows};
use crate::audit_queue::{leaf_hashes_of, now_ms};
use crate::authorization::AuthorizationSql;
use crate::error::StoreError;
use crate::keys::KeySql;
use crate::oauth::OAuthSql;
use crate::registry::RegistrySql;
use crate::sessions::SessionSql;
use crate::settings::SettingsSql;
use crate::sql::{Dialect, SqlStore, discard_if_in_transaction};
use crate::{Store, to_i64};

/// PostgreSQL-backed store.
pub type PgStore = SqlStore<Postgres>;

/// How long a request waits for a database connection before failing.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl PgStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects to `url` with every table in `schema` (created when
    /// absent): isolated tests, or several deployments in one database.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::InvalidSchemaName(schema.to_owned()));
        }
        let options = PgConnectOptions::from_str(url)?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        // INVARIANT: `schema` was checked to be [A-Za-z0-9_]+ above.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")))
            .execute(&admin)
            .await?;
        admin.close().await;
        Self::connect_with(options.options([("search_path", schema)])).await
    }

    async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        // While PostgreSQL is down, a request waits at most this long for a
        // connection and then fails closed (503), instead of hanging for
        // sqlx's default 30 s; the pool reconnects by itself when it is back.
        // A replica that freezes or loses its network while holding a lock
        // (the audit log's state row, a registry model) must not stall the
        // others until TCP notices (hours): waiting for a lock gives up
        // after 5 s, and a transaction left idle is ended after 15 s.
        let options = options.options([("lock_timeout", "5s"), ("idle_in_transaction_session_timeout", "15s")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .after_release(discard_if_in_transaction::<Postgres>)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        // One pool serves both: PostgreSQL has no single-writer rule to keep.
        Ok(SqlStore::new(pool.clone(), pool))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.writer().close().await;
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        Postgres::BACKEND
    }
}

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";
    const BEGIN: &'static str = "BEGIN";
    const KEYS: KeySql = KEYS;
    const SETTINGS: SettingsSql = SETTINGS;
    const OAUTH: OAuthSql = OAUTH;
    const AUDIT: AuditSql = AUDIT;
    const REGISTRY: RegistrySql = REGISTRY;
    const SESSIONS: SessionSql = SESSIONS;
    const AUTHORIZATION: AuthorizationSql = AUTHORIZATION;
    const APPROVALS: ApprovalSql = APPROVALS;

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    /// A `text[]`.
    type NodeList<'a> = &'a [String];

    fn node_list(nodes: &[String]) -> Result<&[String], StoreError> {
        Ok(nodes)
    }

    async fn append_events(conn: &mut PgConnection, events: &[PreparedEvent]) -> Result<Range<u64>, StoreError> {
        insert_events(conn, events).await
    }

    async fn subtrees(store: &PgStore, nodes: &[Subtree]) -> Result<Vec<Hash>, StoreError> {
        select_subtrees(store, nodes).await
    }

    async fn enqueue_events(conn: &mut PgConnection, events: &[PreparedEvent]) -> Result<Vec<u64>, StoreError> {
        queue_events(conn, events).await
    }

    async fn integrate_queued(conn: &mut PgConnection, max: usize) -> Result<Range<u64>, StoreError> {
        integrate_queued(conn, max).await
    }
}

const KEYS: KeySql = KeySql {
    insert: "INSERT INTO signing_keys (kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    list: "SELECT kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private \
            FROM signing_keys ORDER BY activates_at, generation",
    retire: "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
    bind_master: "INSERT INTO settings (name, value) VALUES ('master_key_fingerprint', $1) ON CONFLICT (name) DO NOTHING",
    master: "SELECT value FROM settings WHERE name = 'master_key_fingerprint'",
};

const SETTINGS: SettingsSql = SettingsSql {
    get: "SELECT value FROM settings WHERE name = $1",
    insert_if_absent: "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    lease: "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until < $3",
};

const OAUTH: OAuthSql = OAuthSql {
    insert_client: "INSERT INTO oauth_clients (client_id, kind, grants, scopes, roles, audiences, auth_method, secret_hash, jwks, disabled, created_at, updated_at, tenant, redirect_uris, require_dpop) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (client_id) DO NOTHING",
    get_client: "SELECT client_id, kind, grants, scopes, roles, audiences, auth_method, secret_hash, jwks, disabled, created_at, updated_at, last_used_at, tenant, redirect_uris, require_dpop FROM oauth_clients WHERE client_id = $1",
    list_clients: "SELECT client_id, kind, grants, scopes, roles, audiences, auth_method, secret_hash, jwks, disabled, created_at, updated_at, last_used_at, tenant, redirect_uris, require_dpop FROM oauth_clients ORDER BY client_id",
    set_disabled: "UPDATE oauth_clients SET disabled = $1, updated_at = $2 WHERE client_id = $3",
    set_secret: "UPDATE oauth_clients SET secret_hash = $1, updated_at = $2 WHERE client_id = $3 AND auth_method = 'secret'",
    touch: "UPDATE oauth_clients SET last_used_at = $1 WHERE client_id = $2",
    insert_family: "INSERT INTO refresh_families (id, client_id, subject, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    insert_refresh: "INSERT INTO refresh_tokens (token_hash, family, seq, grant_data, issued_at, expires_at, access_jti, access_exp) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    find_refresh: "SELECT t.token_hash, t.family, t.seq, t.grant_data, t.issued_at, t.expires_at, t.access_jti, t.access_exp, t.used_at, t.grace_used, f.client_id, f.subject, f.created_at, f.expires_at, f.revoked_at FROM refresh_tokens AS t JOIN refresh_families AS f ON f.id = t.family WHERE t.token_hash = $1",
    find_refresh_locked: "SELECT t.token_hash, t.family, t.seq, t.grant_data, t.issued_at, t.expires_at, t.access_jti, t.access_exp, t.used_at, t.grace_used, f.client_id, f.subject, f.created_at, f.expires_at, f.revoked_at FROM refresh_tokens AS t JOIN refresh_families AS f ON f.id = t.family WHERE t.token_hash = $1 FOR UPDATE OF t, f",
    successor: "SELECT used_at FROM refresh_tokens WHERE family = $1 AND seq = $2",
    max_seq: "SELECT MAX(seq) FROM refresh_tokens WHERE family = $1",
    mark_used: "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    mark_successor: "UPDATE refresh_tokens SET used_at = $1 WHERE family = $2 AND seq = $3 AND used_at IS NULL RETURNING access_jti, access_exp",
    mark_grace: "UPDATE refresh_tokens SET grace_used = 1 WHERE token_hash = $1",
    revoke_family: "UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    family_jtis: "SELECT access_jti, access_exp FROM refresh_tokens WHERE family = $1 AND access_exp + 60 > $2",
    live_families_of: "SELECT f.id, f.client_id, f.subject, f.created_at, f.expires_at, f.revoked_at, COALESCE((SELECT MAX(t.issued_at) FROM refresh_tokens AS t WHERE t.family = f.id), f.created_at) FROM refresh_families AS f WHERE f.subject LIKE 'user:%' AND f.subject = $1 AND f.revoked_at IS NULL AND f.expires_at > $2 ORDER BY f.created_at DESC, f.id LIMIT $3",
    live_families_all: "SELECT f.id, f.client_id, f.subject, f.created_at, f.expires_at, f.revoked_at, COALESCE((SELECT MAX(t.issued_at) FROM refresh_tokens AS t WHERE t.family = f.id), f.created_at) FROM refresh_families AS f WHERE f.subject LIKE 'user:%' AND f.revoked_at IS NULL AND f.expires_at > $1 ORDER BY f.created_at DESC, f.id LIMIT $2",
    revoke_token: "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
    revocations_since: "SELECT jti, expires_at FROM revoked_tokens WHERE revoked_at >= $1 AND expires_at + 60 > $2",
    consume_assertion: "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING",
    purge: &[
        "DELETE FROM revoked_tokens WHERE expires_at + 60 <= $1",
        "DELETE FROM client_assertions WHERE expires_at + 60 <= $1",
        "DELETE FROM refresh_tokens WHERE family IN (SELECT id FROM refresh_families WHERE expires_at <= $1 OR revoked_at + 3660 <= $1)",
        "DELETE FROM refresh_families WHERE expires_at <= $1 OR revoked_at + 3660 <= $1",
    ],
};

const AUDIT: AuditSql = AuditSql {
    leaf_hashes: "SELECT idx, leaf_hash FROM audit_events WHERE idx >= $1 AND idx < $2 ORDER BY idx",
    activity: "SELECT $1::int8 + ((time - $1::int8) / $2::int8) * $2::int8, type, outcome, COUNT(*) \
                FROM audit_events WHERE time >= $1 AND time < $3 GROUP BY 1, 2, 3",
    put_checkpoint: "INSERT INTO audit_checkpoints (size, time, note) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
    checkpoints: "SELECT size, time, note FROM audit_checkpoints WHERE size >= $1 ORDER BY size LIMIT $2",
    erase: "UPDATE audit_events SET body = NULL, salt = NULL, erased_at = $1, erasure_reason = $2 \
             WHERE idx = $3 AND erased_at IS NULL",
    erased: "SELECT erased_at FROM audit_events WHERE idx = $1",
    put_probe: "INSERT INTO settings (name, value) VALUES ('audit_write_probe', $1) \
                ON CONFLICT (name) DO UPDATE SET value = excluded.value",
};

/// Largest audit insert statement, in bytes of row data. sqlx 0.9.0
/// leaves Nagle's algorithm on (sqlx issue #4335): a message that goes out
/// in more than one write waits for the server's delayed ACK, ~40 ms, on
/// every TCP connection. Keeping each statement under one write avoids it;
/// the extra round trips cost far less (a large batch went from ~1,000 to
/// several thousand audited requests/s over TCP). Remove when sqlx sets
/// TCP_NODELAY.
const STATEMENT_BYTES: usize = 6 * 1024;
/// Merkle nodes per insert (~60 bytes each), for the same reason.
const NODES_PER_STATEMENT: usize = 96;

/// Bytes an event takes in the insert's arrays besides its strings and
/// body: a 4-byte length before each of its 10 elements, plus `idx` and
/// `time` (8 bytes each), salt and leaf hash (32 each).
const ROW_BYTES: usize = 10 * 4 + 8 + 8 + 32 + 32;

/// Bytes `e` takes in the insert's arrays.
fn row_bytes(e: &PreparedEvent) -> usize {
    ROW_BYTES
        + e.kind().len()
        + e.subject().map_or(0, str::len)
        + e.resource().map_or(0, str::len)
        + e.outcome().map_or(0, str::len)
        + e.actor().map_or(0, str::len)
        + e.body().len()
}

/// Splits `events` into runs whose row data stays under [`STATEMENT_BYTES`]
/// (at least one event per run).
fn statement_chunks(events: &[PreparedEvent]) -> Vec<&[PreparedEvent]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in events.iter().enumerate() {
        let size = row_bytes(e);
        if i > start && bytes + size > STATEMENT_BYTES {
            chunks.extend(events.get(start..i));
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    chunks.extend(events.get(start..));
    chunks
}

/// [`Dialect::append_events`]: the state row is locked `FOR UPDATE` before it is
/// read, so appenders on every replica take turns; events and subtrees
/// go in as arrays, one statement each. The caller's transaction commits.
async fn insert_events(tx: &mut PgConnection, events: &[PreparedEvent]) -> Result<Range<u64>, StoreError> {
    let (size, frontier): (i64, Vec<u8>) =
        sqlx::query_as("SELECT size, frontier FROM audit_state WHERE id = 0 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
    let plan = BatchPlan::new(size, &frontier, events.iter().map(PreparedEvent::leaf_hash))?;
    let mut first = to_i64(plan.start)?;
    for chunk in statement_chunks(events) {
        let idx: Vec<i64> = (first..).take(chunk.len()).collect();
        first = first.saturating_add(i64::try_from(chunk.len()).unwrap_or(i64::MAX));
        let insert = sqlx::query(
            "INSERT INTO audit_events (idx, time, type, subject, resource, outcome, actor, body, salt, leaf_hash) \
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
                                  $7::text[], $8::bytea[], $9::bytea[], $10::bytea[])",
        )
        .bind(idx);
        bind_event_columns(insert, chunk).execute(&mut *tx).await?;
    }
    finish_batch(tx, &plan).await?;
    Ok(plan.range())
}

/// Stores what a batch completes besides its events: the subtrees and
/// the new state.
async fn finish_batch(tx: &mut PgConnection, plan: &BatchPlan) -> Result<(), StoreError> {
    for nodes in plan.nodes.chunks(NODES_PER_STATEMENT) {
        let levels: Vec<i32> = nodes
            .iter()
            .map(|(level, ..)| i32::try_from(*level).map_err(|_| StoreError::OutOfRange(u64::from(*level))))
            .collect::<Result<_, _>>()?;
        let indices: Vec<i64> = nodes.iter().map(|(_, idx, _)| to_i64(*idx)).collect::<Result<_, _>>()?;
        let hashes: Vec<&[u8]> = nodes.iter().map(|(.., hash)| hash.as_slice()).collect();
        sqlx::query(
            "INSERT INTO audit_nodes (level, idx, hash) SELECT * FROM UNNEST($1::int4[], $2::int8[], $3::bytea[])",
        )
        .bind(levels)
        .bind(indices)
        .bind(hashes)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE audit_state SET size = $1, frontier = $2 WHERE id = 0")
        .bind(to_i64(plan.frontier.size())?)
        .bind(plan.frontier.to_bytes())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Queue receipts per statement of an integration (8 bytes each, under
/// [`STATEMENT_BYTES`]).
const SEQS_PER_STATEMENT: usize = 512;

/// [`Dialect::integrate_queued`]: the state row is locked first, so
/// sequencers take turns; each then reads the oldest receipts still queued
/// (a row another sequencer integrated meanwhile is gone by the time the
/// lock is granted). Only the leaf hashes come out of the database (to
/// plan the tree); the rows move into `audit_events` by `INSERT …
/// SELECT`, numbered in `seq` order, and are deleted from the queue.
async fn integrate_queued(tx: &mut PgConnection, max: usize) -> Result<Range<u64>, StoreError> {
    let (size, frontier): (i64, Vec<u8>) =
        sqlx::query_as("SELECT size, frontier FROM audit_state WHERE id = 0 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
    let limit = i64::try_from(max).map_err(|_| StoreError::OutOfRange(u64::MAX))?;
    let leaves: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT seq, leaf_hash FROM audit_queue ORDER BY seq LIMIT $1")
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    let hashes = leaf_hashes_of(&leaves)?;
    let plan = BatchPlan::new(size, &frontier, hashes.iter())?;
    if hashes.is_empty() {
        return Ok(plan.range());
    }
    let mut first = plan.start;
    for chunk in leaves.chunks(SEQS_PER_STATEMENT) {
        let seqs: Vec<i64> = chunk.iter().map(|(seq, _)| *seq).collect();
        let moved = sqlx::query(
            "INSERT INTO audit_events (idx, time, type, subject, resource, outcome, actor, body, salt, leaf_hash) \
             SELECT $2 + o.n - 1, q.time, q.type, q.subject, q.resource, q.outcome, q.actor, q.body, q.salt, q.leaf_hash \
             FROM UNNEST($1::int8[]) WITH ORDINALITY AS o(seq, n) JOIN audit_queue AS q ON q.seq = o.seq",
        )
        .bind(&seqs)
        .bind(to_i64(first)?)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let deleted = sqlx::query("DELETE FROM audit_queue WHERE seq = ANY($1::int8[])")
            .bind(&seqs)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if moved != seqs.len() as u64 || deleted != moved {
            return Err(StoreError::Corrupt(format!(
                "integrating {} queued audit events moved {moved} and deleted {deleted}",
                seqs.len()
            )));
        }
        first += moved;
    }
    finish_batch(tx, &plan).await?;
    Ok(plan.range())
}

/// Binds the arrays of `chunk`'s columns, in the order both `audit_events`
/// and `audit_queue` inserts take them after their first: time, type,
/// subject, resource, outcome, actor, body, salt, leaf hash.
fn bind_event_columns<'q>(
    query: sqlx::query::Query<'q, Postgres, PgArguments>,
    chunk: &[PreparedEvent],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    query
        .bind(chunk.iter().map(PreparedEvent::time).collect::<Vec<_>>())
        .bind(chunk.iter().map(PreparedEvent::kind).collect::<Vec<_>>())
        .bind(chunk.iter().map(PreparedEvent::subject).collect::<Vec<_>>())
        .bind(chunk.iter().map(PreparedEvent::resource).collect::<Vec<_>>())
        .bind(chunk.iter().map(PreparedEvent::outcome).collect::<Vec<_>>())
        .bind(chunk.iter().map(PreparedEvent::actor).collect::<Vec<_>>())
        .bind(chunk.iter().map(PreparedEvent::body).collect::<Vec<_>>())
        .bind(chunk.iter().map(PreparedEvent::salt_bytes).collect::<Vec<_>>())
        .bind(chunk.iter().map(|e| e.leaf_hash().as_slice()).collect::<Vec<_>>())
}

/// [`Dialect::enqueue_events`]: array inserts kept under
/// [`STATEMENT_BYTES`] each, no lock but the new rows' (the identity
/// sequence hands out `seq` without waiting for any commit), so replicas
/// queue side by side. `WITH ORDINALITY` keeps the receipts in `events`
/// order.
async fn queue_events(tx: &mut PgConnection, events: &[PreparedEvent]) -> Result<Vec<u64>, StoreError> {
    let queued_at = now_ms();
    let mut receipts = Vec::with_capacity(events.len());
    for chunk in statement_chunks(events) {
        let insert = sqlx::query(
            "INSERT INTO audit_queue (queued_at, time, type, subject, resource, outcome, actor, body, salt, leaf_hash) \
             SELECT $1, u.time, u.type, u.subject, u.resource, u.outcome, u.actor, u.body, u.salt, u.leaf_hash \
             FROM UNNEST($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                         $8::bytea[], $9::bytea[], $10::bytea[]) \
                  WITH ORDINALITY AS u(time, type, subject, resource, outcome, actor, body, salt, leaf_hash, n) \
             ORDER BY u.n RETURNING seq",
        )
        .bind(queued_at);
        let rows = bind_event_columns(insert, chunk).fetch_all(&mut *tx).await?;
        for row in rows {
            let seq: i64 = row.try_get(0)?;
            receipts.push(u64::try_from(seq).map_err(|_| StoreError::Corrupt("negative audit queue sequence".into()))?);
        }
    }
    if receipts.len() != events.len() {
        return Err(StoreError::Corrupt(format!(
            "{} audit events queued, {} receipts",
            events.len(),
            receipts.len()
        )));
    }
    Ok(receipts)
}

/// [`Dialect::subtrees`]: positions go
/// in as arrays, so the statement text never changes.
async fn select_subtrees(store: &PgStore, nodes: &[Subtree]) -> Result<Vec<Hash>, StoreError> {
    let inner = || nodes.iter().filter(|n| n.level > 0);
    let levels: Vec<i32> = inner()
        .map(|n| i32::try_from(n.level).map_err(|_| StoreError::OutOfRange(u64::from(n.level))))
        .collect::<Result<_, _>>()?;
    let indices: Vec<i64> = inner().map(|n| to_i64(n.index)).collect::<Result<_, _>>()?;
    let leaves: Vec<i64> = nodes
        .iter()
        .filter(|n| n.level == 0)
        .map(|n| to_i64(n.index))
        .collect::<Result<_, _>>()?;
    let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT n.level::int8, n.idx, n.hash FROM audit_nodes AS n \
         JOIN UNNEST($1::int4[], $2::int8[]) AS q(level, idx) ON n.level = q.level AND n.idx = q.idx \
         UNION ALL \
         SELECT 0::int8, e.idx, e.leaf_hash FROM audit_events AS e WHERE e.idx = ANY($3::int8[])",
    )
    .bind(levels)
    .bind(indices)
    .bind(leaves)
    .fetch_all(store.reader())
    .await?;
    subtrees_from_rows(nodes, rows)
}

const REGISTRY: RegistrySql = RegistrySql {
    insert_dataset: "INSERT INTO datasets (name, owner, classification, allowed_purposes, tenant, description, created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING",
    get_dataset: "SELECT name, owner, classification, allowed_purposes, tenant, description, created_by, created_at, updated_at, deleted_at \
                  FROM datasets WHERE name = $1",
    list_datasets: "SELECT name, owner, classification, allowed_purposes, tenant, description, created_by, created_at, updated_at, deleted_at \
                    FROM datasets WHERE $1 OR deleted_at IS NULL ORDER BY name",
    update_dataset: "UPDATE datasets SET owner = $1, classification = $2, allowed_purposes = $3, description = $4, updated_at = $5 \
                     WHERE name = $6 AND deleted_at IS NULL AND owner = $7 AND classification = $8 \
                     AND allowed_purposes = $9 AND description IS NOT DISTINCT FROM $10 AND updated_at = $11",
    delete_dataset: "UPDATE datasets SET deleted_at = $1 WHERE name = $2 AND deleted_at IS NULL",
    lock_dataset: "SELECT deleted_at FROM datasets WHERE name = $1 FOR UPDATE",
    next_dataset_version: "SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset = $1",
    dataset_version_exists: "SELECT version FROM dataset_versions WHERE dataset = $1 AND version = $2",
    insert_dataset_version: "INSERT INTO dataset_versions (dataset, version, digest, size, uri, created_by, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
    get_dataset_version: "SELECT dataset, version, digest, size, uri, created_by, created_at FROM dataset_versions \
                          WHERE dataset = $1 AND version = $2",
    list_dataset_versions: "SELECT dataset, version, digest, size, uri, created_by, created_at FROM dataset_versions \
                            WHERE dataset = $1 ORDER BY version",
    dataset_parents: "SELECT v.version, e.from_node FROM dataset_versions AS v \
                      JOIN lineage_edges AS e ON e.to_node = 'dataset:' || v.dataset || '@' || v.version WHERE v.dataset = $1",
    parents_of: "SELECT from_node FROM lineage_edges WHERE to_node = $1",
    insert_edge: "INSERT INTO lineage_edges (from_node, to_node, training_run, recorded_by, created_at) VALUES ($1, $2, $3, $4, $5)",
    insert_model: "INSERT INTO models (name, owner, tenant, description, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (name) DO NOTHING",
    get_model: "SELECT name, owner, tenant, description, created_by, created_at FROM models WHERE name = $1",
    list_models: "SELECT name, owner, tenant, description, created_by, created_at FROM models ORDER BY name",
    lock_model: "SELECT name FROM models WHERE name = $1 FOR UPDATE",
    next_model_version: "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model = $1",
    insert_model_version: "INSERT INTO model_versions (model, version, digest, uri, framework, metrics, training_run, stage, created_by, created_at, stage_changed_at) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    get_model_version: "SELECT model, version, digest, uri, framework, metrics, training_run, stage, created_by, created_at, stage_changed_at \
                        FROM model_versions WHERE model = $1 AND version = $2",
    list_model_versions: "SELECT model, version, digest, uri, framework, metrics, training_run, stage, created_by, created_at, stage_changed_at \
                          FROM model_versions WHERE model = $1 ORDER BY version",
    model_parents: "SELECT v.version, e.from_node FROM model_versions AS v \
                    JOIN lineage_edges AS e ON e.to_node = 'model:' || v.model || '@' || v.version WHERE v.model = $1",
    model_stages: "SELECT model, stage FROM model_versions ORDER BY model, version",
    version_stage: "SELECT stage FROM model_versions WHERE model = $1 AND version = $2",
    move_stage: "UPDATE model_versions SET stage = $1, stage_changed_at = $2 WHERE model = $3 AND version = $4 AND stage = $5",
    production_version: "SELECT version FROM model_versions WHERE model = $1 AND stage = 'production'",
    // The version the promotion that installed the current production
    // version archived; none when a rollback installed it.
    rollback_target: "SELECT a.version FROM stage_changes AS a \
                      JOIN model_versions AS v ON v.model = a.model AND v.version = a.version \
                      WHERE a.model = $1 AND a.from_stage = 'production' AND a.to_stage = 'archived' \
                      AND v.stage = 'archived' AND a.request_id IS NOT NULL \
                      AND a.request_id = (SELECT p.request_id FROM stage_changes AS p \
                      WHERE p.model = $1 AND p.version = $2 AND p.to_stage = 'production' ORDER BY p.id DESC LIMIT 1)",
    insert_stage_change: "INSERT INTO stage_changes (model, version, from_stage, to_stage, changed_by, reason, request_id, changed_at) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    stage_history: "SELECT model, version, from_stage, to_stage, changed_by, reason, request_id, changed_at \
                    FROM stage_changes WHERE model = $1 ORDER BY id",
    open_request_of: "SELECT id FROM promotion_requests WHERE model = $1 AND version = $2 AND status = 'open'",
    insert_request: "INSERT INTO promotion_requests (id, model, version, requested_by, requester_actors, reason, status, required, approval_ttl, created_at, closed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    get_request: "SELECT id, model, version, requested_by, requester_actors, reason, status, required, approval_ttl, created_at, closed_at \
                  FROM promotion_requests WHERE id = $1",
    get_request_locked: "SELECT id, model, version, requested_by, requester_actors, reason, status, required, approval_ttl, created_at, closed_at \
                         FROM promotion_requests WHERE id = $1 FOR UPDATE",
    list_requests: "SELECT id, model, version, requested_by, requester_actors, reason, status, required, approval_ttl, created_at, closed_at \
                    FROM promotion_requests WHERE ($1::text IS NULL OR model = $1) AND ($2::text IS NULL OR status = $2) \
                    ORDER BY created_at DESC, id",
    close_request: "UPDATE promotion_requests SET status = $1, closed_at = $2 WHERE id = $3 AND status = 'open'",
    ballots_of: "SELECT voter, vote, reason, cast_at FROM ballots WHERE request_id = $1 ORDER BY cast_at, voter",
    upsert_ballot: "INSERT INTO ballots (request_id, voter, vote, reason, cast_at) VALUES ($1, $2, $3, $4, $5) \
                    ON CONFLICT (request_id, voter) DO UPDATE SET vote = excluded.vote, reason = excluded.reason, cast_at = excluded.cast_at",
    edges_from: "SELECT from_node, to_node, training_run, recorded_by, created_at FROM lineage_edges WHERE from_node = ANY($1::text[])",
    edges_to: "SELECT from_node, to_node, training_run, recorded_by, created_at FROM lineage_edges WHERE to_node = ANY($1::text[])",
    // `OFFSET 0` keeps the lateral subquery from being flattened into a
    // join, so each node is one index lookup: without fresh statistics
    // (a table just filled) the planner otherwise hash-joins a full scan
    // of the edges on every level (15x slower at 100,000 edges).
    downstream_closure: "WITH RECURSIVE reach(node) AS (SELECT $1::text UNION \
                         SELECT x.to_node FROM reach CROSS JOIN LATERAL \
                         (SELECT e.to_node FROM lineage_edges AS e WHERE e.from_node = reach.node OFFSET 0) AS x) \
                         SELECT node FROM reach",
};

const AUTHORIZATION: AuthorizationSql = AuthorizationSql {
    insert_code: "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, code_challenge, grant_data, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    spend_code: "UPDATE authorization_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
    find_code: "SELECT client_id, redirect_uri, code_challenge, grant_data, expires_at, used_at, family FROM authorization_codes WHERE code_hash = $1",
    set_code_family: "UPDATE authorization_codes SET family = $1 WHERE code_hash = $2",
    insert_device: "INSERT INTO device_grants (device_hash, user_code, client_id, scopes, audiences, issued_at, expires_at, poll_interval) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_code) DO NOTHING",
    find_device: "SELECT user_code, client_id, scopes, audiences, status, grant_data, subject, expires_at, poll_interval FROM device_grants WHERE user_code = $1",
    find_device_by_hash: "SELECT user_code, client_id, scopes, audiences, status, grant_data, subject, expires_at, poll_interval FROM device_grants WHERE device_hash = $1",
    decide_device: "UPDATE device_grants SET status = $1, grant_data = $2, subject = $3 WHERE user_code = $4 AND status = 'pending' AND expires_at > $5",
    poll_device: "UPDATE device_grants SET last_poll_at = $1 WHERE device_hash = $2 AND (last_poll_at IS NULL OR last_poll_at + poll_interval <= $1)",
    issue_device: "UPDATE device_grants SET status = 'issued' WHERE device_hash = $1 AND status = 'approved' AND client_id = $2",
    purge_codes: "DELETE FROM authorization_codes WHERE expires_at < $1",
    purge_devices: "DELETE FROM device_grants WHERE expires_at < $1",
};

const SESSIONS: SessionSql = SessionSql {
    insert: "INSERT INTO dashboard_sessions (jti, subject, client_id, issued_at, expires_at, client_ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (jti) DO UPDATE SET client_ip = excluded.client_ip, user_agent = excluded.user_agent",
    active_of: "SELECT s.jti, s.subject, s.client_id, s.issued_at, s.expires_at, s.client_ip, s.user_agent, s.ended_at FROM dashboard_sessions AS s WHERE s.subject = $1 AND s.ended_at IS NULL AND s.expires_at > $2 AND NOT EXISTS (SELECT 1 FROM revoked_tokens AS r WHERE r.jti = s.jti) ORDER BY s.issued_at DESC, s.jti LIMIT $3",
    active_all: "SELECT s.jti, s.subject, s.client_id, s.issued_at, s.expires_at, s.client_ip, s.user_agent, s.ended_at FROM dashboard_sessions AS s WHERE s.ended_at IS NULL AND s.expires_at > $1 AND NOT EXISTS (SELECT 1 FROM revoked_tokens AS r WHERE r.jti = s.jti) ORDER BY s.issued_at DESC, s.jti LIMIT $2",
    find: "SELECT s.jti, s.subject, s.client_id, s.issued_at, s.expires_at, s.client_ip, s.user_agent, s.ended_at FROM dashboard_sessions AS s WHERE s.jti = $1",
    end: "UPDATE dashboard_sessions SET ended_at = $1 WHERE jti = $2 AND ended_at IS NULL",
    purge: "DELETE FROM dashboard_sessions WHERE expires_at + 60 <= $1",
};

const APPROVALS: ApprovalSql = ApprovalSql {
    insert: "INSERT INTO approvals (id, auth_req_hash, client_id, request, created_at, expires_at, token_ttl, poll_interval) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    find: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals WHERE id = $1",
    find_by_hash: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals WHERE auth_req_hash = $1",
    list: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals ORDER BY created_at DESC, id DESC LIMIT $1",
    list_status: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals WHERE status = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    decide: "UPDATE approvals SET status = $1, decided_by = $2, decided_roles = $3, reason = $4, decided_at = $5, usable_until = CASE WHEN $1 = 'approved' THEN $5 + token_ttl ELSE NULL END WHERE id = $6 AND status = 'pending' AND expires_at > $5",
    poll: "UPDATE approvals SET last_poll_at = $1 WHERE auth_req_hash = $2 AND (last_poll_at IS NULL OR last_poll_at + poll_interval <= $1)",
    issue: "UPDATE approvals SET status = 'issued', token_jti = $1 WHERE auth_req_hash = $2 AND client_id = $3 AND status = 'approved' AND usable_until > $4",
    use_token: "UPDATE approvals SET status = 'used', used_at = $1 WHERE id = $2 AND token_jti = $3 AND status = 'issued' AND usable_until > $1",
    take: "UPDATE approvals SET status = 'used', token_jti = $1, used_at = $2 WHERE id = $3 AND status = 'approved' AND usable_until > $2",
    expiring: "SELECT id, client_id, request, status, decided_by, decided_roles, reason, decided_at, created_at, expires_at, token_ttl, poll_interval, usable_until, token_jti, used_at FROM approvals WHERE (status = 'pending' AND expires_at <= $1) OR (status IN ('approved', 'issued') AND usable_until <= $1) ORDER BY created_at LIMIT $2",
    expire: "UPDATE approvals SET status = 'expired' WHERE id = $1 AND status = $2",
    purge: "DELETE FROM approvals WHERE created_at < $1 AND status IN ('denied', 'used', 'expired')",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditStore as _;
    use warden_audit::{AuditEvent, Decision, EventKind};

    fn access(i: u64, body_pad: usize) -> PreparedEvent {
        let event = AuditEvent::new(
            i,
            EventKind::AccessDecision {
                principal: "user:alice".into(),
                actor_chain: Vec::new(),
                client_id: "cli".into(),
                jti: format!("j-{i}"),
                action: "inference.invoke".into(),
                resource: "Endpoint::\"chat\"".into(),
                decision: Decision::Deny,
                policy_ids: Vec::new(),
                request_id: "r".repeat(body_pad),
                route: "/v1/chat".into(),
                source_ip: std::net::IpAddr::from([192, 0, 2, 1]),
                upstream_status: None,
                purpose: None,
            },
        );
        PreparedEvent::seal(&event).unwrap()
    }

    #[tokio::test]
    async fn a_schema_name_outside_the_safe_set_is_refused_before_connecting() {
        for bad in ["", "a-b", "x\"; DROP SCHEMA public; --", "é"] {
            let err = PgStore::connect_in_schema("postgres://unreachable.invalid/db", bad)
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::InvalidSchemaName(ref s) if s == bad), "{err}");
        }
    }

    /// A store in a new schema `t_PREFIX_<random>` of PostgreSQL at
    /// `WARDEN_TEST_POSTGRES_URL`, as the storage suites use.
    async fn fresh_schema(prefix: &str) -> (PgStore, String) {
        let url = std::env::var("WARDEN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b).unwrap();
        let schema = format!("t_{prefix}_{}", hex::encode(b));
        let store = PgStore::connect_in_schema(&url, &schema).await.unwrap();
        (store, schema)
    }

    /// Drops the schema [`fresh_schema`] made and closes the store.
    async fn drop_schema(store: PgStore, schema: &str) {
        let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(store.writer())
            .await
            .unwrap();
        store.close().await;
    }

    /// Purging drops revoked refresh families (the shared check, here).
    #[tokio::test]
    async fn purge_drops_revoked_families() {
        let (store, schema) = fresh_schema("purge").await;
        crate::oauth::check_purge_of_revoked_families(&store).await;
        drop_schema(store, &schema).await;
    }

    /// A `COMMIT` that fails (here a deferred unique constraint; a full
    /// disk does the same) ends the transaction on PostgreSQL: the
    /// connection goes back to the pool outside any transaction and the
    /// next write on it works.
    #[tokio::test]
    async fn a_failed_commit_does_not_poison_the_connection() {
        use sqlx::Connection as _;
        let (store, schema) = fresh_schema("commit").await;
        let mut conn = store.writer().acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("CREATE TABLE deferred (x int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO deferred VALUES (1), (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert!(tx.commit().await.is_err(), "the deferred check fails at COMMIT");
        let tx = conn.begin().await.unwrap();
        tx.commit().await.unwrap();
        drop(conn);
        store.probe_audit().await.unwrap();
        assert_eq!(crate::AuditStore::audit_failure(&store), None);
        drop_schema(store, &schema).await;
    }

    #[tokio::test]
    async fn authorization_codes_and_device_grants() {
        let (store, schema) = fresh_schema("authz").await;
        crate::authorization::check_authorizations(&store).await;
        drop_schema(store, &schema).await;
    }

    #[tokio::test]
    async fn approvals_are_decided_taken_and_used_once() {
        let (store, schema) = fresh_schema("approvals").await;
        crate::approvals::check_approvals(&store).await;
        drop_schema(store, &schema).await;
    }

    #[tokio::test]
    async fn dashboard_sessions() {
        let (store, schema) = fresh_schema("sessions").await;
        crate::sessions::check_sessions(&store).await;
        drop_schema(store, &schema).await;
    }

    #[test]
    fn statements_stay_under_the_bound() {
        let e = access(1, 10);
        assert_eq!(
            row_bytes(&e),
            ROW_BYTES
                + "access_decision".len()
                + "user:alice".len()
                + "Endpoint::\"chat\"".len()
                + "deny".len()
                + e.body().len()
        );
        let events: Vec<_> = (0..200).map(|i| access(i, (i as usize * 37) % 900)).collect();
        let chunks = statement_chunks(&events);
        assert!(chunks.len() > 1);
        let mut joined = Vec::new();
        for chunk in &chunks {
            assert!(chunk.iter().map(row_bytes).sum::<usize>() <= STATEMENT_BYTES);
            joined.extend(chunk.iter().cloned());
        }
        assert_eq!(joined, events);
        // An event larger than the bound goes alone.
        let big = [access(1, 10), access(2, 7000), access(3, 10)];
        let sizes: Vec<usize> = statement_chunks(&big).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![1, 1, 1]);
    }
}
