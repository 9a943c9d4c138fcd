//! Storage for human approvals of agent actions: backchannel
//! authentication requests (OpenID CIBA) a person approves or denies, and
//! the single use of the token an approval gives
//! (`migrations/*/0012_approvals.sql`).
//!
//! Every transition is one conditional `UPDATE`, so it happens once on
//! every replica: a person decides a pending request before it expires;
//! one poll by the client that asked takes the token of an approved one;
//! one gateway request uses that token; one sweep expires what ran out.
//! Polling faster than the request's interval is told apart by a
//! conditional update of `last_poll_at`, as for device grants. The
//! client's `auth_req_id` is kept as SHA-256 only.
//!
//! What is asked (`request`) is JSON the server writes and reads; the
//! store only keeps it.

use std::future::Future;

use sqlx::{ColumnIndex, Executor};

use crate::error::StoreError;
use crate::sql::{Dialect, Param, SqlStore, Value};
use crate::to_i64;

/// How long decided, used and expired requests are kept after they were
/// made (seconds): the dashboard and `warden approvals` show them for a
/// week; the audit log keeps them for good.
pub const KEEP_APPROVALS: u64 = 7 * 86_400;

/// Most requests one listing returns.
pub const MAX_LISTED: u32 = 500;

/// A request for approval to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    /// The public id (`apr_…`).
    pub id: String,
    /// SHA-256 of the client's `auth_req_id`.
    pub auth_req_hash: [u8; 32],
    /// The client that asked (the only one that may poll for the token).
    pub client_id: String,
    /// What is asked, and for whom (JSON, written by the server).
    pub request: String,
    /// When it was asked.
    pub created_at: u64,
    /// Until when a person may decide it.
    pub expires_at: u64,
    /// Seconds an approval stays usable from the moment it is given.
    pub token_ttl: u64,
    /// Least seconds between two polls.
    pub poll_interval: u64,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    /// Waiting for a person.
    Pending,
    /// Approved; its token is not handed out yet.
    Approved,
    /// Denied.
    Denied,
    /// Its single-use token was handed out.
    Issued,
    /// The gateway accepted its token (once).
    Used,
    /// Nobody decided in time, or the approval ran out unused.
    Expired,
}

impl ApprovalStatus {
    /// The stored name (`pending`, `approved`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Issued => "issued",
            ApprovalStatus::Used => "used",
            ApprovalStatus::Expired => "expired",
        }
    }

    /// The status a stored (or typed) name names.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ApprovalStatus::Pending,
            "approved" => ApprovalStatus::Approved,
            "denied" => ApprovalStatus::Denied,
            "issued" => ApprovalStatus::Issued,
            "used" => ApprovalStatus::Used,
            "expired" => ApprovalStatus::Expired,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored request for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The public id.
    pub id: String,
    /// The client that asked.
    pub client_id: String,
    /// What is asked, and for whom (JSON).
    pub request: String,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Who approved or denied it.
    pub decided_by: Option<String>,
    /// The roles the deciding person held then (JSON list).
    pub decided_roles: Option<String>,
    /// The reason they gave.
    pub reason: Option<String>,
    /// When they decided.
    pub decided_at: Option<u64>,
    /// When it was asked.
    pub created_at: u64,
    /// Until when a person may decide it.
    pub expires_at: u64,
    /// Seconds an approval stays usable.
    pub token_ttl: u64,
    /// Least seconds between two polls.
    pub poll_interval: u64,
    /// Until when the approval (and its token) is usable.
    pub usable_until: Option<u64>,
    /// The `jti` of the token handed out for it.
    pub token_jti: Option<String>,
    /// When the gateway accepted that token.
    pub used_at: Option<u64>,
}

/// A person's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalAnswer<'a> {
    /// Approve (true) or deny.
    pub approve: bool,
    /// Who answers.
    pub by: &'a str,
    /// The roles they hold (JSON list), recorded with the answer.
    pub roles: &'a str,
    /// Why.
    pub reason: &'a str,
}

/// What one poll of the token endpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalPoll {
    /// No such `auth_req_id`.
    Unknown,
    /// Polled again before its interval passed (CIBA `slow_down`).
    TooFast,
    /// This poll took the token of an approved request: the record is
    /// `issued` now, with the `jti` given.
    Taken(ApprovalRecord),
    /// The request as it stands (nothing taken).
    Found(ApprovalRecord),
}

/// Persistence of approval requests. Implemented by each backend.
pub trait ApprovalStore: Send + Sync {
    /// Stores a new request.
    fn insert_approval(&self, approval: &NewApproval) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The request `id` names, if any.
    fn approval(&self, id: &str) -> impl Future<Output = Result<Option<ApprovalRecord>, StoreError>> + Send;

    /// Requests, newest first: those with `status` (all when `None`), at
    /// most `limit` (capped at [`MAX_LISTED`]).
    fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ApprovalRecord>, StoreError>> + Send;

    /// A person's answer to a pending request at `now`; false when it is
    /// no longer pending or has expired. An approval is usable for the
    /// request's `token_ttl` from `now`.
    fn decide_approval(
        &self,
        id: &str,
        answer: &ApprovalAnswer<'_>,
        now: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One poll by `client_id` at `now`: an approved, still usable request
    /// of that client hands out its token once, recorded under `jti`.
    fn poll_approval(
        &self,
        auth_req_hash: &[u8; 32],
        client_id: &str,
        jti: &str,
        now: u64,
    ) -> impl Future<Output = Result<ApprovalPoll, StoreError>> + Send;

    /// Uses the token `jti` of request `id` at `now`: true for exactly one
    /// call while it is issued and usable; the record as it stands after.
    fn use_approval(
        &self,
        id: &str,
        jti: &str,
        now: u64,
    ) -> impl Future<Output = Result<(bool, Option<ApprovalRecord>), StoreError>> + Send;

    /// Spends an approved, still usable request at `now` for a call the
    /// gateway held open for the answer (no token is handed out): true
    /// for exactly one caller; `holder` is recorded as its token id.
    fn take_approval(&self, id: &str, holder: &str, now: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Expires what ran out by `now` (pending past `expires_at`; approved
    /// or issued past `usable_until`), at most `limit`: the records this
    /// call expired, with the status they had.
    fn expire_approvals(
        &self,
        now: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ApprovalRecord>, StoreError>> + Send;

    /// Deletes requests made more than [`KEEP_APPROVALS`] before `now`
    /// that are over (denied, used or expired).
    fn purge_approvals(&self, now: u64) -> impl Future<Output = Result<(), StoreError>> + Send;
}

type ApprovalSqlRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

fn time(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative approval {what}")))
}

fn record(row: ApprovalSqlRow) -> Result<ApprovalRecord, StoreError> {
    let (
        id,
        client_id,
        request,
        status,
        decided_by,
        decided_roles,
        reason,
        decided_at,
        created_at,
        expires_at,
        token_ttl,
        poll_interval,
        usable_until,
        token_jti,
        used_at,
    ) = row;
    Ok(ApprovalRecord {
        status: ApprovalStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("approval status `{status}`")))?,
        id,
        client_id,
        request,
        decided_by,
        decided_roles,
        reason,
        decided_at: decided_at.map(|v| time(v, "decided_at")).transpose()?,
        created_at: time(created_at, "created_at")?,
        expires_at: time(expires_at, "expires_at")?,
        token_ttl: time(token_ttl, "token_ttl")?,
        poll_interval: time(poll_interval, "poll_interval")?,
        usable_until: usable_until.map(|v| time(v, "usable_until")).transpose()?,
        token_jti,
        used_at: used_at.map(|v| time(v, "used_at")).transpose()?,
    })
}

/// A backend's SQL for [`ApprovalStore`]. Parameters are positional, in
/// the order each field's comment gives; selects return (id, client_id,
/// request, status, decided_by, decided_roles, reason, decided_at,
/// created_at, expires_at, token_ttl, poll_interval, usable_until,
/// token_jti, used_at).
pub(crate) struct ApprovalSql {
    /// (id, auth_req_hash, client_id, request, created_at, expires_at,
    /// token_ttl, poll_interval).
    pub insert: &'static str,
    /// (id) → its row.
    pub find: &'static str,
    /// (auth_req_hash) → its row.
    pub find_by_hash: &'static str,
    /// (limit) → every row, newest first.
    pub list: &'static str,
    /// (status, limit) → rows with that status, newest first.
    pub list_status: &'static str,
    /// (status, decided_by, decided_roles, reason, now, id): only a
    /// pending, unexpired request; `usable_until` = now + token_ttl when
    /// approved.
    pub decide: &'static str,
    /// (now, auth_req_hash): records a poll unless the last one was less
    /// than the interval ago.
    pub poll: &'static str,
    /// (jti, auth_req_hash, client_id, now): approved and usable → issued.
    pub issue: &'static str,
    /// (now, id, jti): issued and usable → used.
    pub use_token: &'static str,
    /// (holder, now, id): approved and usable → used, without a token.
    pub take: &'static str,
    /// (now, limit) → rows that ran out.
    pub expiring: &'static str,
    /// (id, status): that status → expired.
    pub expire: &'static str,
    /// (cutoff): deletes finished rows made before it.
    pub purge: &'static str,
}

impl<DB> ApprovalStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Value<DB>,
    String: Value<DB>,
    Option<String>: Value<DB>,
    Option<i64>: Value<DB>,
    for<'a> &'a str: Param<DB>,
    for<'a> &'a [u8]: Param<DB>,
{
    async fn insert_approval(&self, a: &NewApproval) -> Result<(), StoreError> {
        sqlx::query(DB::APPROVALS.insert)
            .bind(a.id.as_str())
            .bind(&a.auth_req_hash[..])
            .bind(a.client_id.as_str())
            .bind(a.request.as_str())
            .bind(to_i64(a.created_at)?)
            .bind(to_i64(a.expires_at)?)
            .bind(to_i64(a.token_ttl)?)
            .bind(to_i64(a.poll_interval)?)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        sqlx::query_as::<_, ApprovalSqlRow>(DB::APPROVALS.find)
            .bind(id)
            .fetch_optional(self.writer())
            .await?
            .map(record)
            .transpose()
    }

    async fn approvals(&self, status: Option<ApprovalStatus>, limit: u32) -> Result<Vec<ApprovalRecord>, StoreError> {
        let limit = i64::from(limit.min(MAX_LISTED));
        let rows = match status {
            Some(status) => {
                sqlx::query_as::<_, ApprovalSqlRow>(DB::APPROVALS.list_status)
                    .bind(status.as_str())
                    .bind(limit)
                    .fetch_all(self.writer())
                    .await?
            }
            None => {
                sqlx::query_as::<_, ApprovalSqlRow>(DB::APPROVALS.list)
                    .bind(limit)
                    .fetch_all(self.writer())
                    .await?
            }
        };
        rows.into_iter().map(record).collect()
    }

    async fn decide_approval(&self, id: &str, answer: &ApprovalAnswer<'_>, now: u64) -> Result<bool, StoreError> {
        let status = if answer.approve {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Denied
        };
        let done = sqlx::query(DB::APPROVALS.decide)
            .bind(status.as_str())
            .bind(answer.by)
            .bind(answer.roles)
            .bind(answer.reason)
            .bind(to_i64(now)?)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn poll_approval(
        &self,
        auth_req_hash: &[u8; 32],
        client_id: &str,
        jti: &str,
        now: u64,
    ) -> Result<ApprovalPoll, StoreError> {
        let find = || async {
            sqlx::query_as::<_, ApprovalSqlRow>(DB::APPROVALS.find_by_hash)
                .bind(&auth_req_hash[..])
                .fetch_optional(self.writer())
                .await?
                .map(record)
                .transpose()
        };
        let Some(found) = find().await? else {
            return Ok(ApprovalPoll::Unknown);
        };
        // Another client's poll changes nothing (not even the interval of
        // the client that asked).
        if found.client_id != client_id {
            return Ok(ApprovalPoll::Found(found));
        }
        let polled = sqlx::query(DB::APPROVALS.poll)
            .bind(to_i64(now)?)
            .bind(&auth_req_hash[..])
            .execute(self.writer())
            .await?;
        if DB::rows_affected(&polled) != 1 {
            return Ok(ApprovalPoll::TooFast);
        }
        let done = sqlx::query(DB::APPROVALS.issue)
            .bind(jti)
            .bind(&auth_req_hash[..])
            .bind(client_id)
            .bind(to_i64(now)?)
            .execute(self.writer())
            .await?;
        let taken = DB::rows_affected(&done) == 1;
        let Some(found) = find().await? else {
            return Ok(ApprovalPoll::Unknown);
        };
        Ok(if taken {
            ApprovalPoll::Taken(found)
        } else {
            ApprovalPoll::Found(found)
        })
    }

    async fn use_approval(&self, id: &str, jti: &str, now: u64) -> Result<(bool, Option<ApprovalRecord>), StoreError> {
        let done = sqlx::query(DB::APPROVALS.use_token)
            .bind(to_i64(now)?)
            .bind(id)
            .bind(jti)
            .execute(self.writer())
            .await?;
        let used = DB::rows_affected(&done) == 1;
        Ok((used, self.approval(id).await?))
    }

    async fn take_approval(&self, id: &str, holder: &str, now: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::APPROVALS.take)
            .bind(holder)
            .bind(to_i64(now)?)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn expire_approvals(&self, now: u64, limit: u32) -> Result<Vec<ApprovalRecord>, StoreError> {
        let candidates = sqlx::query_as::<_, ApprovalSqlRow>(DB::APPROVALS.expiring)
            .bind(to_i64(now)?)
            .bind(i64::from(limit.min(MAX_LISTED)))
            .fetch_all(self.writer())
            .await?;
        let mut expired = Vec::new();
        for row in candidates {
            let found = record(row)?;
            let done = sqlx::query(DB::APPROVALS.expire)
                .bind(found.id.as_str())
                .bind(found.status.as_str())
                .execute(self.writer())
                .await?;
            // Another replica's sweep (or a last-moment decision or use)
            // changed it first: not ours to report.
            if DB::rows_affected(&done) == 1 {
                expired.push(found);
            }
        }
        Ok(expired)
    }

    async fn purge_approvals(&self, now: u64) -> Result<(), StoreError> {
        sqlx::query(DB::APPROVALS.purge)
            .bind(to_i64(now.saturating_sub(KEEP_APPROVALS))?)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}

/// Checks the transitions on any backend: decided once and only while
/// pending and unexpired; polled no faster than the interval; the token
/// handed out once, to the client that asked; used once, while usable;
/// what ran out expired once.
#[cfg(test)]
pub(crate) async fn check_approvals<S: ApprovalStore>(store: &S) {
    let new = |id: &str, hash: u8| NewApproval {
        id: id.into(),
        auth_req_hash: [hash; 32],
        client_id: "agent-cli".into(),
        request: "{\"tool\":\"delete\"}".into(),
        created_at: 1000,
        expires_at: 1300,
        token_ttl: 120,
        poll_interval: 5,
    };
    store.insert_approval(&new("apr_a", 1)).await.unwrap();
    store.insert_approval(&new("apr_b", 2)).await.unwrap();
    store.insert_approval(&new("apr_c", 3)).await.unwrap();
    assert!(store.insert_approval(&new("apr_a", 4)).await.is_err(), "ids are unique");
    let a = store.approval("apr_a").await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.request.as_str()),
        (ApprovalStatus::Pending, "{\"tool\":\"delete\"}")
    );
    assert_eq!(store.approval("apr_x").await.unwrap(), None);

    // Polls: pending, then too fast, unknown.
    let ApprovalPoll::Found(p) = store.poll_approval(&[1; 32], "agent-cli", "j1", 1001).await.unwrap() else {
        panic!("first poll")
    };
    assert_eq!(p.status, ApprovalStatus::Pending);
    assert_eq!(
        store.poll_approval(&[1; 32], "agent-cli", "j1", 1003).await.unwrap(),
        ApprovalPoll::TooFast
    );
    assert_eq!(
        store.poll_approval(&[9; 32], "agent-cli", "j1", 1003).await.unwrap(),
        ApprovalPoll::Unknown
    );

    // Decided once.
    let yes = ApprovalAnswer {
        approve: true,
        by: "user:lee",
        roles: "[\"leads\"]",
        reason: "ticket 42",
    };
    assert!(store.decide_approval("apr_a", &yes, 1010).await.unwrap());
    let no = ApprovalAnswer {
        approve: false,
        ..yes.clone()
    };
    assert!(
        !store.decide_approval("apr_a", &no, 1011).await.unwrap(),
        "decided already"
    );
    assert!(store.decide_approval("apr_b", &no, 1011).await.unwrap());
    assert!(!store.decide_approval("apr_c", &yes, 1300).await.unwrap(), "expired");
    let a = store.approval("apr_a").await.unwrap().unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);
    assert_eq!(
        (a.decided_by.as_deref(), a.reason.as_deref()),
        (Some("user:lee"), Some("ticket 42"))
    );
    assert_eq!(a.usable_until, Some(1130));

    // Another client cannot take it; the one that asked takes it once.
    let ApprovalPoll::Found(p) = store.poll_approval(&[1; 32], "other", "j0", 1012).await.unwrap() else {
        panic!("another client's poll")
    };
    assert_eq!(p.status, ApprovalStatus::Approved);
    let ApprovalPoll::Taken(t) = store.poll_approval(&[1; 32], "agent-cli", "j1", 1020).await.unwrap() else {
        panic!("the token is taken")
    };
    assert_eq!((t.status, t.token_jti.as_deref()), (ApprovalStatus::Issued, Some("j1")));
    let ApprovalPoll::Found(p) = store.poll_approval(&[1; 32], "agent-cli", "j2", 1030).await.unwrap() else {
        panic!("a later poll")
    };
    assert_eq!(p.status, ApprovalStatus::Issued, "handed out once");

    // Used once, with its own jti only.
    assert!(!store.use_approval("apr_a", "j2", 1031).await.unwrap().0);
    let (used, after) = store.use_approval("apr_a", "j1", 1031).await.unwrap();
    assert!(used);
    assert_eq!(after.unwrap().used_at, Some(1031));
    assert!(!store.use_approval("apr_a", "j1", 1032).await.unwrap().0, "once");

    // Listings.
    let all = store.approvals(None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    let pending = store.approvals(Some(ApprovalStatus::Pending), 10).await.unwrap();
    assert_eq!(pending.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["apr_c"]);

    // Expiry: the pending one ran out at 1300; once.
    assert!(store.expire_approvals(1299, 10).await.unwrap().is_empty());
    let gone = store.expire_approvals(1300, 10).await.unwrap();
    assert_eq!(
        gone.iter().map(|r| (r.id.as_str(), r.status)).collect::<Vec<_>>(),
        [("apr_c", ApprovalStatus::Pending)]
    );
    assert!(store.expire_approvals(1400, 10).await.unwrap().is_empty(), "once");
    // An issued token unused past its time expires too, and cannot be used.
    store.insert_approval(&new("apr_d", 5)).await.unwrap();
    assert!(store.decide_approval("apr_d", &yes, 1100).await.unwrap());
    let ApprovalPoll::Taken(_) = store.poll_approval(&[5; 32], "agent-cli", "j5", 1101).await.unwrap() else {
        panic!("taken")
    };
    assert!(
        !store.use_approval("apr_d", "j5", 1220).await.unwrap().0,
        "past usable_until"
    );
    let gone = store.expire_approvals(1220, 10).await.unwrap();
    assert_eq!(
        gone.iter().map(|r| (r.id.as_str(), r.status)).collect::<Vec<_>>(),
        [("apr_d", ApprovalStatus::Issued)]
    );

    // A held call takes an approved request once, and only while usable.
    store.insert_approval(&new("apr_e", 6)).await.unwrap();
    assert!(
        !store.take_approval("apr_e", "held:r1", 1101).await.unwrap(),
        "not approved yet"
    );
    assert!(store.decide_approval("apr_e", &yes, 1101).await.unwrap());
    assert!(store.take_approval("apr_e", "held:r1", 1102).await.unwrap());
    assert!(!store.take_approval("apr_e", "held:r2", 1103).await.unwrap(), "once");
    let e = store.approval("apr_e").await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.token_jti.as_deref()),
        (ApprovalStatus::Used, Some("held:r1"))
    );

    // Purge: finished requests older than the keep window.
    store.purge_approvals(1000 + KEEP_APPROVALS + 1).await.unwrap();
    assert!(store.approvals(None, 10).await.unwrap().is_empty());
}
