//! Storage for the grants people approve: authorization codes (RFC 6749
//! §4.1 with PKCE) and device authorization grants (RFC 8628)
//! (`migrations/*/0009_people_sign_in.sql`).
//!
//! Both are single use, on every replica: a code is redeemed by the one
//! `UPDATE … WHERE used_at IS NULL` that changes its row, a device grant
//! hands out its token by the one `UPDATE … WHERE status = 'approved'` that
//! does. Polling faster than the grant's interval is told apart in the same
//! way, by a conditional update of `last_poll_at`. Codes and device codes
//! are kept as SHA-256 only.
//!
//! Here: the trait, its SQL table [`AuthorizationSql`] and its one body
//! over every backend.

use std::future::Future;

use sqlx::{ColumnIndex, Executor};

use crate::error::StoreError;
use crate::sql::{Dialect, Param, SqlStore, Value};
use crate::to_i64;

/// An authorization code to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    /// SHA-256 of the code.
    pub code_hash: [u8; 32],
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was sent to (the token request must repeat it).
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// JSON the tokens are built from.
    pub grant_data: String,
    /// When it was issued.
    pub issued_at: u64,
    /// When it expires.
    pub expires_at: u64,
}

/// A stored authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was sent to.
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// JSON the tokens are built from.
    pub grant_data: String,
    /// When it expires.
    pub expires_at: u64,
    /// The refresh-token family its redemption started, if any.
    pub family: Option<String>,
}

/// What presenting a code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedeemed {
    /// This presentation redeemed it (it is spent now).
    Fresh(CodeRow),
    /// It had been redeemed before: a replay. `family` is what the first
    /// redemption started, for the caller to revoke.
    Reused(CodeRow),
    /// Past its expiry (and now spent).
    Expired,
    /// No such code.
    Unknown,
}

/// A device authorization to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeviceGrant {
    /// SHA-256 of the device code.
    pub device_hash: [u8; 32],
    /// The code the person types (unique while stored).
    pub user_code: String,
    /// The client that asked.
    pub client_id: String,
    /// The scopes asked for (space-separated).
    pub scopes: String,
    /// The audiences asked for (JSON list).
    pub audiences: String,
    /// When it was issued.
    pub issued_at: u64,
    /// When it expires.
    pub expires_at: u64,
    /// Least seconds between two polls.
    pub poll_interval: u64,
}

/// Where a device grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for a person.
    Pending,
    /// A person approved it; the token is not handed out yet.
    Approved,
    /// A person refused it.
    Denied,
    /// Its token was handed out.
    Issued,
}

impl DeviceStatus {
    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => DeviceStatus::Pending,
            "approved" => DeviceStatus::Approved,
            "denied" => DeviceStatus::Denied,
            "issued" => DeviceStatus::Issued,
            other => return Err(StoreError::Corrupt(format!("device grant status `{other}`"))),
        })
    }
}

/// A stored device grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    /// The code the person types.
    pub user_code: String,
    /// The client that asked.
    pub client_id: String,
    /// The scopes asked for (space-separated).
    pub scopes: String,
    /// The audiences asked for (JSON list).
    pub audiences: String,
    /// Where it stands.
    pub status: DeviceStatus,
    /// What the approving person granted (JSON), once approved.
    pub grant_data: Option<String>,
    /// Who approved or denied it.
    pub subject: Option<String>,
    /// When it expires.
    pub expires_at: u64,
    /// Least seconds between two polls.
    pub poll_interval: u64,
}

/// What one poll of the token endpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// No such device code.
    Unknown,
    /// Polled again before its interval passed (RFC 8628 `slow_down`).
    TooFast,
    /// The grant as it stands; `Approved` means this poll took the token
    /// (the row is now `issued`).
    Found(DeviceGrant),
}

/// Persistence of authorization codes and device grants. Implemented by
/// each backend.
pub trait AuthorizationStore: Send + Sync {
    /// Stores a new authorization code.
    fn insert_code(&self, code: &NewCode) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Redeems a code at `now`: exactly one presentation gets `Fresh`.
    fn redeem_code(
        &self,
        code_hash: &[u8; 32],
        now: u64,
    ) -> impl Future<Output = Result<CodeRedeemed, StoreError>> + Send;

    /// Records the refresh-token family a code's redemption started.
    fn set_code_family(
        &self,
        code_hash: &[u8; 32],
        family: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new device grant; false when its user code is taken.
    fn insert_device_grant(&self, grant: &NewDeviceGrant) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The grant a person's user code names, if any.
    fn find_device_grant(
        &self,
        user_code: &str,
    ) -> impl Future<Output = Result<Option<DeviceGrant>, StoreError>> + Send;

    /// A person's answer to a pending grant: approved with `grant_data`,
    /// or denied when `None`. False when it is no longer pending or has
    /// expired at `now`.
    fn decide_device_grant(
        &self,
        user_code: &str,
        subject: &str,
        grant_data: Option<&str>,
        now: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One poll by the device at `now`, for `client_id`: an approved grant
    /// is handed out only to the client it was issued to.
    fn poll_device_grant(
        &self,
        device_hash: &[u8; 32],
        client_id: &str,
        now: u64,
    ) -> impl Future<Output = Result<DevicePoll, StoreError>> + Send;

    /// Deletes codes and device grants expired more than an hour before
    /// `now` (a replayed code is recognised, and its family revoked, for
    /// that long).
    fn purge_authorizations(&self, now: u64) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// How long spent and expired rows are kept, so a replay within it is
/// recognised as one.
pub const KEEP_AFTER_EXPIRY: u64 = 3600;

type CodeSqlRow = (String, String, String, String, i64, Option<i64>, Option<String>);
type DeviceSqlRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

fn time(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

fn code_from_row(row: CodeSqlRow) -> Result<(CodeRow, Option<u64>), StoreError> {
    let (client_id, redirect_uri, code_challenge, grant_data, expires_at, used_at, family) = row;
    Ok((
        CodeRow {
            client_id,
            redirect_uri,
            code_challenge,
            grant_data,
            expires_at: time(expires_at, "code expires_at")?,
            family,
        },
        used_at.map(|v| time(v, "code used_at")).transpose()?,
    ))
}

fn device_from_row(row: DeviceSqlRow) -> Result<DeviceGrant, StoreError> {
    let (user_code, client_id, scopes, audiences, status, grant_data, subject, expires_at, interval) = row;
    Ok(DeviceGrant {
        user_code,
        client_id,
        scopes,
        audiences,
        status: DeviceStatus::parse(&status)?,
        grant_data,
        subject,
        expires_at: time(expires_at, "device grant expires_at")?,
        poll_interval: time(interval, "device grant interval")?,
    })
}

/// A backend's SQL for [`AuthorizationStore`]. Parameters are positional,
/// in the order each field's comment gives. Code selects return
/// (client_id, redirect_uri, code_challenge, grant_data, expires_at,
/// used_at, family); device selects (user_code, client_id, scopes,
/// audiences, status, grant_data, subject, expires_at, poll_interval).
pub(crate) struct AuthorizationSql {
    /// (code_hash, client_id, redirect_uri, code_challenge, grant_data,
    /// issued_at, expires_at).
    pub insert_code: &'static str,
    /// (now, code_hash); only while unused.
    pub spend_code: &'static str,
    /// (code_hash) → its row.
    pub find_code: &'static str,
    /// (family, code_hash).
    pub set_code_family: &'static str,
    /// (device_hash, user_code, client_id, scopes, audiences, issued_at,
    /// expires_at, poll_interval); does nothing on a taken user code.
    pub insert_device: &'static str,
    /// (user_code) → its row.
    pub find_device: &'static str,
    /// (device_hash) → its row.
    pub find_device_by_hash: &'static str,
    /// (status, grant_data, subject, user_code, now); only a pending,
    /// unexpired grant.
    pub decide_device: &'static str,
    /// (now, device_hash): records a poll unless the last one was less
    /// than the interval ago.
    pub poll_device: &'static str,
    /// (device_hash, client_id): approved → issued.
    pub issue_device: &'static str,
    /// (cutoff): deletes codes expired before it.
    pub purge_codes: &'static str,
    /// (cutoff): deletes device grants expired before it.
    pub purge_devices: &'static str,
}

impl<DB> AuthorizationStore for SqlStore<DB>
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
    Option<String>: Param<DB>,
{
    async fn insert_code(&self, c: &NewCode) -> Result<(), StoreError> {
        sqlx::query(DB::AUTHORIZATION.insert_code)
            .bind(&c.code_hash[..])
            .bind(c.client_id.as_str())
            .bind(c.redirect_uri.as_str())
            .bind(c.code_challenge.as_str())
            .bind(c.grant_data.as_str())
            .bind(to_i64(c.issued_at)?)
            .bind(to_i64(c.expires_at)?)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn redeem_code(&self, code_hash: &[u8; 32], now: u64) -> Result<CodeRedeemed, StoreError> {
        let spent = sqlx::query(DB::AUTHORIZATION.spend_code)
            .bind(to_i64(now)?)
            .bind(&code_hash[..])
            .execute(self.writer())
            .await?;
        let won = DB::rows_affected(&spent) == 1;
        let Some(row) = sqlx::query_as::<_, CodeSqlRow>(DB::AUTHORIZATION.find_code)
            .bind(&code_hash[..])
            .fetch_optional(self.writer())
            .await?
        else {
            return Ok(CodeRedeemed::Unknown);
        };
        let (row, _) = code_from_row(row)?;
        Ok(if !won {
            CodeRedeemed::Reused(row)
        } else if now >= row.expires_at {
            CodeRedeemed::Expired
        } else {
            CodeRedeemed::Fresh(row)
        })
    }

    async fn set_code_family(&self, code_hash: &[u8; 32], family: &str) -> Result<(), StoreError> {
        sqlx::query(DB::AUTHORIZATION.set_code_family)
            .bind(family)
            .bind(&code_hash[..])
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn insert_device_grant(&self, g: &NewDeviceGrant) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::AUTHORIZATION.insert_device)
            .bind(&g.device_hash[..])
            .bind(g.user_code.as_str())
            .bind(g.client_id.as_str())
            .bind(g.scopes.as_str())
            .bind(g.audiences.as_str())
            .bind(to_i64(g.issued_at)?)
            .bind(to_i64(g.expires_at)?)
            .bind(to_i64(g.poll_interval)?)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn find_device_grant(&self, user_code: &str) -> Result<Option<DeviceGrant>, StoreError> {
        sqlx::query_as::<_, DeviceSqlRow>(DB::AUTHORIZATION.find_device)
            .bind(user_code)
            .fetch_optional(self.writer())
            .await?
            .map(device_from_row)
            .transpose()
    }

    async fn decide_device_grant(
        &self,
        user_code: &str,
        subject: &str,
        grant_data: Option<&str>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let status = if grant_data.is_some() { "approved" } else { "denied" };
        let done = sqlx::query(DB::AUTHORIZATION.decide_device)
            .bind(status)
            .bind(grant_data.map(str::to_owned))
            .bind(subject)
            .bind(user_code)
            .bind(to_i64(now)?)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn poll_device_grant(
        &self,
        device_hash: &[u8; 32],
        client_id: &str,
        now: u64,
    ) -> Result<DevicePoll, StoreError> {
        let polled = sqlx::query(DB::AUTHORIZATION.poll_device)
            .bind(to_i64(now)?)
            .bind(&device_hash[..])
            .execute(self.writer())
            .await?;
        let in_time = DB::rows_affected(&polled) == 1;
        let Some(row) = sqlx::query_as::<_, DeviceSqlRow>(DB::AUTHORIZATION.find_device_by_hash)
            .bind(&device_hash[..])
            .fetch_optional(self.writer())
            .await?
        else {
            return Ok(DevicePoll::Unknown);
        };
        let mut grant = device_from_row(row)?;
        if !in_time {
            return Ok(DevicePoll::TooFast);
        }
        if grant.status == DeviceStatus::Approved && grant.client_id == client_id {
            let issued = sqlx::query(DB::AUTHORIZATION.issue_device)
                .bind(&device_hash[..])
                .bind(client_id)
                .execute(self.writer())
                .await?;
            if DB::rows_affected(&issued) != 1 {
                // Another poll took it a moment ago.
                grant.status = DeviceStatus::Issued;
            }
        }
        Ok(DevicePoll::Found(grant))
    }

    async fn purge_authorizations(&self, now: u64) -> Result<(), StoreError> {
        let cutoff = to_i64(now.saturating_sub(KEEP_AFTER_EXPIRY))?;
        sqlx::query(DB::AUTHORIZATION.purge_codes)
            .bind(cutoff)
            .execute(self.writer())
            .await?;
        sqlx::query(DB::AUTHORIZATION.purge_devices)
            .bind(cutoff)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}

/// Checks the single-use rules on any backend: a code redeems once, a
/// replay is told apart and names the family to revoke, an expired code is
/// refused; a device grant is decided once, polled no faster than its
/// interval, and hands out its token once.
#[cfg(test)]
pub(crate) async fn check_authorizations<S: AuthorizationStore>(store: &S) {
    let code = NewCode {
        code_hash: [7; 32],
        client_id: "cli".into(),
        redirect_uri: "http://127.0.0.1/callback".into(),
        code_challenge: "challenge".into(),
        grant_data: "{}".into(),
        issued_at: 1000,
        expires_at: 1060,
    };
    store.insert_code(&code).await.unwrap();
    assert!(matches!(
        store.redeem_code(&[8; 32], 1010).await.unwrap(),
        CodeRedeemed::Unknown
    ));
    let CodeRedeemed::Fresh(row) = store.redeem_code(&[7; 32], 1010).await.unwrap() else {
        panic!("first redemption")
    };
    assert_eq!((row.client_id.as_str(), row.family.as_deref()), ("cli", None));
    store.set_code_family(&[7; 32], "fam-1").await.unwrap();
    let CodeRedeemed::Reused(row) = store.redeem_code(&[7; 32], 1011).await.unwrap() else {
        panic!("replay")
    };
    assert_eq!(row.family.as_deref(), Some("fam-1"));
    let late = NewCode {
        code_hash: [9; 32],
        ..code.clone()
    };
    store.insert_code(&late).await.unwrap();
    assert!(matches!(
        store.redeem_code(&[9; 32], 1060).await.unwrap(),
        CodeRedeemed::Expired
    ));

    let grant = NewDeviceGrant {
        device_hash: [1; 32],
        user_code: "BCDF-GHJK".into(),
        client_id: "cli".into(),
        scopes: "model.read".into(),
        audiences: "[]".into(),
        issued_at: 1000,
        expires_at: 1600,
        poll_interval: 5,
    };
    assert!(store.insert_device_grant(&grant).await.unwrap());
    let taken = NewDeviceGrant {
        device_hash: [2; 32],
        ..grant.clone()
    };
    assert!(!store.insert_device_grant(&taken).await.unwrap(), "user code taken");
    let DevicePoll::Found(g) = store.poll_device_grant(&[1; 32], "cli", 1005).await.unwrap() else {
        panic!("first poll")
    };
    assert_eq!(g.status, DeviceStatus::Pending);
    assert_eq!(
        store.poll_device_grant(&[1; 32], "cli", 1007).await.unwrap(),
        DevicePoll::TooFast
    );
    assert_eq!(
        store.poll_device_grant(&[3; 32], "cli", 1007).await.unwrap(),
        DevicePoll::Unknown
    );
    assert!(
        store
            .decide_device_grant("BCDF-GHJK", "user:alice", Some("{\"x\":1}"), 1008)
            .await
            .unwrap()
    );
    assert!(
        !store
            .decide_device_grant("BCDF-GHJK", "user:mallory", None, 1009)
            .await
            .unwrap(),
        "decided once"
    );
    let found = store.find_device_grant("BCDF-GHJK").await.unwrap().unwrap();
    assert_eq!(found.subject.as_deref(), Some("user:alice"));
    let DevicePoll::Found(g) = store.poll_device_grant(&[1; 32], "cli", 1013).await.unwrap() else {
        panic!("approved poll")
    };
    assert_eq!(
        (g.status, g.grant_data.as_deref()),
        (DeviceStatus::Approved, Some("{\"x\":1}"))
    );
    let DevicePoll::Found(g) = store.poll_device_grant(&[1; 32], "cli", 1020).await.unwrap() else {
        panic!("after issue")
    };
    assert_eq!(g.status, DeviceStatus::Issued, "handed out once");
    // Another client's poll never takes an approved grant.
    let other = NewDeviceGrant {
        device_hash: [5; 32],
        user_code: "VWXZ-BCDF".into(),
        ..grant.clone()
    };
    assert!(store.insert_device_grant(&other).await.unwrap());
    assert!(
        store
            .decide_device_grant("VWXZ-BCDF", "user:alice", Some("{}"), 1030)
            .await
            .unwrap()
    );
    let DevicePoll::Found(g) = store.poll_device_grant(&[5; 32], "mallory", 1031).await.unwrap() else {
        panic!("another client's poll")
    };
    assert_eq!((g.status, g.client_id.as_str()), (DeviceStatus::Approved, "cli"));
    let DevicePoll::Found(g) = store.poll_device_grant(&[5; 32], "cli", 1040).await.unwrap() else {
        panic!("the client's poll")
    };
    assert_eq!(
        g.status,
        DeviceStatus::Approved,
        "still there for its own client, who takes it now"
    );
    // An expired grant cannot be approved.
    let old = NewDeviceGrant {
        device_hash: [4; 32],
        user_code: "LMNP-QRST".into(),
        expires_at: 1100,
        ..grant
    };
    assert!(store.insert_device_grant(&old).await.unwrap());
    assert!(
        !store
            .decide_device_grant("LMNP-QRST", "user:alice", Some("{}"), 1100)
            .await
            .unwrap()
    );
    store.purge_authorizations(1101 + KEEP_AFTER_EXPIRY).await.unwrap();
    assert!(matches!(
        store.redeem_code(&[7; 32], 5000).await.unwrap(),
        CodeRedeemed::Unknown
    ));
    assert!(store.find_device_grant("LMNP-QRST").await.unwrap().is_none());
    assert!(
        store.find_device_grant("BCDF-GHJK").await.unwrap().is_some(),
        "not yet purged"
    );
}
