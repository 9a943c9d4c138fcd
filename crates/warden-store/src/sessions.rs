//! Dashboard sessions (`dashboard_sessions`,
//! `migrations/*/0008_dashboard_sessions.sql`): one row per session token
//! signed in, so that a person sees their sessions, and an administrator
//! anyone's, from any replica and after a restart.
//!
//! The session is still its token: what ends it is the revocation of its
//! `jti` (`revoked_tokens`, [`OAuthStore::revoke_token`](crate::OAuthStore::revoke_token)),
//! which every replica applies. A row is bookkeeping beside it: who signed
//! in, when, from where, until when, and when it was ended. A session is
//! *active* while its row is not ended, its token not expired and its `jti`
//! not revoked (by whatever path: sign-out, an administrator, the CLI).
//!
//! Here: the trait, its SQL table [`SessionSql`] and its one body over
//! every backend.

use std::future::Future;

use sqlx::{ColumnIndex, Executor};

use crate::error::StoreError;
use crate::sql::{Dialect, Param, SqlStore, Value};
use crate::to_i64;

/// Longest user agent kept (characters); longer ones are cut.
pub const MAX_USER_AGENT: usize = 256;

/// One dashboard session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session token's `jti`.
    pub jti: String,
    /// Who signed in (`user:NAME`).
    pub subject: String,
    /// The client the token names.
    pub client_id: String,
    /// When it was signed in, Unix seconds.
    pub issued_at: u64,
    /// When its token expires, Unix seconds.
    pub expires_at: u64,
    /// The client address it signed in from, if known.
    pub client_ip: Option<String>,
    /// The browser's `User-Agent` at sign-in, if sent (at most
    /// [`MAX_USER_AGENT`] characters).
    pub user_agent: Option<String>,
    /// When it was ended, if it was.
    pub ended_at: Option<u64>,
}

/// Persistence of dashboard sessions. Implemented by each backend.
pub trait SessionStore: Send + Sync {
    /// Records a sign-in. Signing in again with the same token (another
    /// browser) keeps the first sign-in time and takes the new address
    /// and user agent.
    fn record_session(&self, session: &SessionRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The active sessions — not ended, not expired at `now`, not revoked —
    /// of `subject`, or of everyone when `None`; newest first, at most
    /// `limit`.
    fn active_sessions(
        &self,
        subject: Option<&str>,
        now: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SessionRecord>, StoreError>> + Send;

    /// One session by `jti`, ended or not (expired ones until purged).
    fn find_session(&self, jti: &str) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;

    /// Marks a session ended at `now`; false when there is no such session
    /// or it was already ended.
    fn end_session(&self, jti: &str, now: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes sessions whose token expired more than 60 s (the largest
    /// leeway) before `now`.
    fn purge_sessions(&self, now: u64) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A row of `dashboard_sessions` as both backends read it.
type SessionRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn time(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative session {what}")))
}

fn from_row(row: SessionRow) -> Result<SessionRecord, StoreError> {
    let (jti, subject, client_id, issued_at, expires_at, client_ip, user_agent, ended_at) = row;
    Ok(SessionRecord {
        jti,
        subject,
        client_id,
        issued_at: time(issued_at, "issued_at")?,
        expires_at: time(expires_at, "expires_at")?,
        client_ip,
        user_agent,
        ended_at: ended_at.map(|v| time(v, "ended_at")).transpose()?,
    })
}

/// `text` cut to at most `max` characters.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A backend's SQL for [`SessionStore`]. Parameters are positional, in the
/// order each field's comment gives; the selects return a [`SessionRow`]
/// (jti, subject, client_id, issued_at, expires_at, client_ip, user_agent,
/// ended_at).
pub(crate) struct SessionSql {
    /// (jti, subject, client_id, issued_at, expires_at, client_ip,
    /// user_agent); on a known `jti` updates only the address and user
    /// agent.
    pub insert: &'static str,
    /// (subject, now, limit) → active rows of `subject`, newest first.
    pub active_of: &'static str,
    /// (now, limit) → every active row, newest first.
    pub active_all: &'static str,
    /// (jti) → its row.
    pub find: &'static str,
    /// (ended_at, jti); only a session not yet ended.
    pub end: &'static str,
    /// (now): deletes rows expired more than 60 s before.
    pub purge: &'static str,
}

impl<DB> SessionStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Value<DB>,
    String: Value<DB>,
    Option<String>: Value<DB>,
    Option<i64>: Value<DB>,
    for<'a> &'a str: Param<DB>,
{
    async fn record_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(DB::SESSIONS.insert)
            .bind(s.jti.as_str())
            .bind(s.subject.as_str())
            .bind(s.client_id.as_str())
            .bind(to_i64(s.issued_at)?)
            .bind(to_i64(s.expires_at)?)
            .bind(s.client_ip.clone())
            .bind(s.user_agent.as_deref().map(|ua| cut(ua, MAX_USER_AGENT)))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn active_sessions(
        &self,
        subject: Option<&str>,
        now: u64,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let now = to_i64(now)?;
        let limit = i64::from(limit);
        // From the writer: a session recorded or ended a moment ago is
        // listed as it is now.
        let rows: Vec<SessionRow> = match subject {
            Some(subject) => {
                sqlx::query_as(DB::SESSIONS.active_of)
                    .bind(subject)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(self.writer())
                    .await?
            }
            None => {
                sqlx::query_as(DB::SESSIONS.active_all)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(self.writer())
                    .await?
            }
        };
        rows.into_iter().map(from_row).collect()
    }

    async fn find_session(&self, jti: &str) -> Result<Option<SessionRecord>, StoreError> {
        sqlx::query_as::<_, SessionRow>(DB::SESSIONS.find)
            .bind(jti)
            .fetch_optional(self.writer())
            .await?
            .map(from_row)
            .transpose()
    }

    async fn end_session(&self, jti: &str, now: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::SESSIONS.end)
            .bind(to_i64(now)?)
            .bind(jti)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn purge_sessions(&self, now: u64) -> Result<(), StoreError> {
        sqlx::query(DB::SESSIONS.purge)
            .bind(to_i64(now)?)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}

/// Checks the session rules on any backend: sign-ins are listed per
/// person and for everyone, newest first; an ended, revoked or expired
/// session is not active; purging deletes expired rows only.
#[cfg(test)]
pub(crate) async fn check_sessions<S: SessionStore + crate::OAuthStore>(store: &S) {
    let session = |jti: &str, subject: &str, at: u64, exp: u64| SessionRecord {
        jti: jti.to_owned(),
        subject: subject.to_owned(),
        client_id: "warden-ui".to_owned(),
        issued_at: at,
        expires_at: exp,
        client_ip: Some("127.0.0.1".to_owned()),
        user_agent: Some("x".repeat(MAX_USER_AGENT + 10)),
        ended_at: None,
    };
    let jtis = |v: Vec<SessionRecord>| v.into_iter().map(|s| s.jti).collect::<Vec<_>>();
    store
        .record_session(&session("a1", "user:a", 1000, 5000))
        .await
        .unwrap();
    store
        .record_session(&session("a2", "user:a", 1100, 5000))
        .await
        .unwrap();
    store
        .record_session(&session("a3", "user:a", 1200, 1500))
        .await
        .unwrap();
    store
        .record_session(&session("b1", "user:b", 1050, 5000))
        .await
        .unwrap();
    // Again with the same token, from elsewhere: one session, first time kept.
    let mut again = session("a1", "user:a", 1300, 5000);
    again.client_ip = Some("10.0.0.9".to_owned());
    store.record_session(&again).await.unwrap();
    let a1 = store.find_session("a1").await.unwrap().unwrap();
    assert_eq!((a1.issued_at, a1.client_ip.as_deref()), (1000, Some("10.0.0.9")));
    assert_eq!(a1.user_agent.map(|u| u.len()), Some(MAX_USER_AGENT));

    assert_eq!(
        jtis(store.active_sessions(Some("user:a"), 1400, 10).await.unwrap()),
        ["a3", "a2", "a1"]
    );
    assert_eq!(
        jtis(store.active_sessions(Some("user:a"), 1500, 10).await.unwrap()),
        ["a2", "a1"],
        "an expired session is not active"
    );
    assert_eq!(
        jtis(store.active_sessions(None, 1500, 10).await.unwrap()),
        ["a2", "b1", "a1"]
    );
    assert_eq!(store.active_sessions(None, 1500, 1).await.unwrap().len(), 1);
    assert!(store.end_session("a2", 1600).await.unwrap());
    assert!(!store.end_session("a2", 1700).await.unwrap(), "ended once");
    assert!(!store.end_session("zz", 1700).await.unwrap());
    assert_eq!(store.find_session("a2").await.unwrap().unwrap().ended_at, Some(1600));
    store.revoke_token("b1", 5000, 1600).await.unwrap();
    assert_eq!(
        jtis(store.active_sessions(None, 1600, 10).await.unwrap()),
        ["a1"],
        "ended and revoked sessions are not active"
    );
    store.purge_sessions(1559).await.unwrap();
    assert!(store.find_session("a3").await.unwrap().is_some(), "purged too early");
    store.purge_sessions(1560).await.unwrap();
    assert!(store.find_session("a3").await.unwrap().is_none());
    assert!(store.find_session("a1").await.unwrap().is_some());
}
