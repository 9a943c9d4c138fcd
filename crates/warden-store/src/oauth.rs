//! Storage for the OAuth token service: clients, refresh-token families,
//! revoked token ids and single-use client-assertion ids.
//!
//! Both backends share one body (the impls at the end) and differ only in
//! their SQL ([`OAuthSql`]). The rules that decide what a presented refresh token may do
//! are a pure function, [`decide`], so they are tested without a database;
//! [`OAuthStore::redeem_refresh`] applies its answer inside one
//! transaction, so that of many concurrent redemptions of one token exactly
//! one rotates it, on either backend.

use std::future::Future;

use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Executor};

use warden_audit::AuditEvent;

use crate::audit::commit_with_events;
use crate::sql::{Dialect, Param, SqlStore, Value};
use crate::{StoreError, to_i64};

/// What a client is: a service (`svc:<id>`), an AI agent (`agent:<id>`),
/// or a public client (a CLI, a notebook) that only obtains tokens for the
/// people who sign in through it and has no identity of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// A service or job.
    Service,
    /// An AI agent.
    Agent,
    /// A public client: no secret, tokens only for people (`user:<name>`).
    Public,
}

impl ClientKind {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Service => "service",
            ClientKind::Agent => "agent",
            ClientKind::Public => "public",
        }
    }

    /// The subject namespace of its own tokens. A public client has no
    /// tokens of its own; its namespace (`public`) never reaches a token.
    pub fn subject_prefix(self) -> &'static str {
        match self {
            ClientKind::Service => "svc",
            ClientKind::Agent => "agent",
            ClientKind::Public => "public",
        }
    }

    /// Parses `service` or `agent`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "service" => Some(ClientKind::Service),
            "agent" => Some(ClientKind::Agent),
            "public" => Some(ClientKind::Public),
            _ => None,
        }
    }
}

/// How a client proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// A server-generated secret, kept as HMAC-SHA256 under the server pepper.
    Secret {
        /// HMAC-SHA256(pepper, secret).
        hash: [u8; 32],
    },
    /// RFC 7523 client assertions signed by a key in this public JWKS.
    PrivateKeyJwt {
        /// The client's public JWKS (JSON).
        jwks: String,
    },
    /// A public client (RFC 6749 §2.1): it proves nothing; what protects
    /// its grants is PKCE and the exact redirect URI, or the person
    /// approving a device code.
    None,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret { .. } => f.write_str("Secret { hash: <redacted> }"),
            ClientAuth::PrivateKeyJwt { jwks } => f.debug_struct("PrivateKeyJwt").field("jwks", jwks).finish(),
            ClientAuth::None => f.write_str("None"),
        }
    }
}

impl ClientAuth {
    /// `secret` or `private_key_jwt`.
    pub fn method(&self) -> &'static str {
        match self {
            ClientAuth::Secret { .. } => "secret",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
            ClientAuth::None => "none",
        }
    }
}

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// Its id; also the name in its subject (`svc:<id>`).
    pub client_id: String,
    /// Service or agent.
    pub kind: ClientKind,
    /// Grant types it may use (`client_credentials`, `refresh_token`,
    /// `urn:ietf:params:oauth:grant-type:token-exchange`).
    pub grants: Vec<String>,
    /// Scopes it may be granted.
    pub scopes: Vec<String>,
    /// Roles put in its tokens.
    pub roles: Vec<String>,
    /// Audiences it may ask for; the first is the default.
    pub audiences: Vec<String>,
    /// How it authenticates.
    pub auth: ClientAuth,
    /// Disabled clients cannot authenticate.
    pub disabled: bool,
    /// When it was registered.
    pub created_at: u64,
    /// When it last changed.
    pub updated_at: u64,
    /// When it last obtained a token (updated at most once a minute).
    pub last_used_at: Option<u64>,
    /// The tenant its own tokens carry (`tenant` claim); `None`: no tenant.
    pub tenant: Option<String>,
    /// Where the authorization-code flow may send a person back to
    /// (public clients; exact match, any port on a loopback address).
    pub redirect_uris: Vec<String>,
    /// Whether the token endpoint requires a DPoP proof (RFC 9449) from it.
    pub require_dpop: bool,
}

/// A refresh-token family: every token rotated from one original grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// Random id (never the token).
    pub id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The subject of its access tokens.
    pub subject: String,
    /// When the first token was issued.
    pub created_at: u64,
    /// Absolute expiry: no token of the family is valid after it.
    pub expires_at: u64,
    /// When the family was revoked, if it was.
    pub revoked_at: Option<u64>,
}

/// A refresh token to store: the hash of the opaque value and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefresh {
    /// SHA-256 of the opaque token.
    pub token_hash: [u8; 32],
    /// JSON the next access token is built from (scope, audience, roles, act, tenant).
    pub grant_data: String,
    /// When it was issued.
    pub issued_at: u64,
    /// Idle expiry.
    pub expires_at: u64,
    /// `jti` of the access token issued with it.
    pub access_jti: String,
    /// `exp` of that access token.
    pub access_exp: u64,
}

/// A stored refresh token with its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRow {
    /// SHA-256 of the opaque token.
    pub token_hash: [u8; 32],
    /// Its family.
    pub family: Family,
    /// Position in the family (0 = the original).
    pub seq: u64,
    /// What it grants.
    pub grant_data: String,
    /// When it was issued.
    pub issued_at: u64,
    /// Idle expiry.
    pub expires_at: u64,
    /// `jti` of the access token issued with it.
    pub access_jti: String,
    /// `exp` of that access token.
    pub access_exp: u64,
    /// When it was redeemed, if it was.
    pub used_at: Option<u64>,
    /// Whether its one grace retry was spent.
    pub grace_used: bool,
}

/// What a presented refresh token may do, by [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Unspent and valid: rotate it.
    Rotate,
    /// Spent moments ago and its successor never used: a retry after a
    /// lost response, allowed once within the grace period.
    GraceRetry,
    /// Spent: someone replays it. Revoke the family.
    Reuse,
    /// Past its idle or absolute expiry.
    Expired,
    /// Its family was revoked.
    Revoked,
}

/// The state of a token's successor, for the grace rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Successor {
    /// The successor is the newest token of the family.
    pub is_newest: bool,
    /// The successor was redeemed.
    pub used: bool,
}

/// Decides what a presented refresh token may do.
///
/// Order matters: a revoked family stays revoked; past the family's
/// absolute expiry nothing is valid; then a *spent* token is reuse even
/// after its own idle expiry (a thief who kept rotating must not be hidden
/// by the victim coming back late); only an unspent token can be idle-expired.
pub fn decide(row: &RefreshRow, successor: Option<Successor>, now: u64, grace: u64) -> Verdict {
    if row.family.revoked_at.is_some() {
        return Verdict::Revoked;
    }
    if now >= row.family.expires_at {
        return Verdict::Expired;
    }
    let Some(used_at) = row.used_at else {
        return if now >= row.expires_at {
            Verdict::Expired
        } else {
            Verdict::Rotate
        };
    };
    let within_grace = grace > 0 && now.saturating_sub(used_at) <= grace && !row.grace_used;
    match successor {
        Some(Successor {
            is_newest: true,
            used: false,
        }) if within_grace => Verdict::GraceRetry,
        _ => Verdict::Reuse,
    }
}

/// The outcome of [`OAuthStore::redeem_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The token was rotated; `row` is what it granted (now spent).
    Rotated {
        /// The presented token's row as it was.
        row: RefreshRow,
    },
    /// A spent token was replayed: the family is now revoked, with the
    /// access tokens issued from it.
    Reused {
        /// The revoked family.
        family: Family,
        /// `(jti, exp)` of the access tokens now revoked.
        revoked: Vec<(String, u64)>,
    },
    /// Unknown token.
    Unknown,
    /// Expired token (idle or absolute).
    Expired,
    /// Token of a revoked family (revoked earlier).
    Revoked,
}

/// The token service's storage.
pub trait OAuthStore: Send + Sync {
    /// Registers a client; false when the id is taken.
    fn insert_client(&self, client: &ClientRecord) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// One client by id.
    fn get_client(&self, client_id: &str) -> impl Future<Output = Result<Option<ClientRecord>, StoreError>> + Send;
    /// Every client, by id.
    fn list_clients(&self) -> impl Future<Output = Result<Vec<ClientRecord>, StoreError>> + Send;
    /// Enables or disables a client; false when there is no such client.
    fn set_client_disabled(
        &self,
        client_id: &str,
        disabled: bool,
        now: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Replaces a secret client's secret hash; false when there is no such
    /// secret client.
    fn set_client_secret(
        &self,
        client_id: &str,
        hash: &[u8; 32],
        now: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records that a client obtained a token.
    fn touch_client(&self, client_id: &str, now: u64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts a family with its first token.
    fn start_family(&self, family: &Family, first: &NewRefresh) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A refresh token by hash, with its family.
    fn find_refresh(
        &self,
        token_hash: &[u8; 32],
    ) -> impl Future<Output = Result<Option<RefreshRow>, StoreError>> + Send;
    /// Redeems a refresh token in one transaction: by [`decide`], rotates it
    /// (storing `next` as the family's newest token), or on reuse revokes the
    /// family and the access tokens issued from it. The events `audit`
    /// builds from what was done (rotated or reused) are appended to the
    /// audit log in the same transaction: a rotation whose record fails is
    /// not made, so the client's retry with the same token is no reuse.
    fn redeem_refresh(
        &self,
        token_hash: &[u8; 32],
        next: &NewRefresh,
        now: u64,
        grace: u64,
        audit: impl FnOnce(&Redeemed) -> Vec<AuditEvent> + Send,
    ) -> impl Future<Output = Result<Redeemed, StoreError>> + Send;
    /// Revokes a family and the access tokens issued from it; returns
    /// those tokens' `(jti, exp)`.
    fn revoke_family(
        &self,
        family_id: &str,
        now: u64,
    ) -> impl Future<Output = Result<Vec<(String, u64)>, StoreError>> + Send;

    /// The live refresh-token families of people (subject `user:…`; not
    /// revoked, not past their absolute expiry at `now`) of `subject`, or
    /// of every person when `None`, newest first, at most `limit`, each
    /// with when it was last used (its newest token's issue time): the
    /// sign-ins a person can end. Services' own families are not listed.
    fn live_families(
        &self,
        subject: Option<&str>,
        now: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(Family, u64)>, StoreError>> + Send;

    /// Revokes an access token until its `exp`.
    fn revoke_token(&self, jti: &str, exp: u64, now: u64) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Revocations recorded at or after `since` whose tokens are not past
    /// `exp` plus the largest verification leeway (60 s).
    fn revocations_since(
        &self,
        since: u64,
        now: u64,
    ) -> impl Future<Output = Result<Vec<(String, u64)>, StoreError>> + Send;
    /// Records a client assertion's `jti`; false when it was seen before.
    fn consume_assertion(
        &self,
        client_id: &str,
        jti: &str,
        exp: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes revocations and assertion ids past `exp` + 60 s (the largest
    /// leeway, during which a verifier could still accept them), families
    /// past their absolute expiry, and revoked families once every access
    /// token they issued has expired (1 h cap + 60 s).
    fn purge_expired(&self, now: u64) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A row of `oauth_clients` as both backends read it.
type ClientRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<Vec<u8>>,
    Option<String>,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    String,
    i64,
);

/// A row of `refresh_tokens` joined with its family.
type RefreshJoinRow = (
    Vec<u8>,
    String,
    i64,
    String,
    i64,
    i64,
    String,
    i64,
    Option<i64>,
    i64,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

fn time(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

fn list(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt(format!("client {what} is not a JSON list")))
}

fn list_json(items: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn hash32(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

fn client_from_row(row: ClientRow) -> Result<ClientRecord, StoreError> {
    let (
        client_id,
        kind,
        grants,
        scopes,
        roles,
        audiences,
        method,
        hash,
        jwks,
        disabled,
        created,
        updated,
        used,
        tenant,
        redirect_uris,
        require_dpop,
    ) = row;
    let kind = ClientKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("client `{client_id}` kind")))?;
    let auth = match (method.as_str(), hash, jwks) {
        ("secret", Some(hash), None) => ClientAuth::Secret {
            hash: hash32(&hash, "client secret hash")?,
        },
        ("private_key_jwt", None, Some(jwks)) => ClientAuth::PrivateKeyJwt { jwks },
        ("none", None, None) if kind == ClientKind::Public => ClientAuth::None,
        _ => return Err(StoreError::Corrupt(format!("client `{client_id}` authentication"))),
    };
    Ok(ClientRecord {
        kind,
        grants: list(&grants, "grants")?,
        scopes: list(&scopes, "scopes")?,
        roles: list(&roles, "roles")?,
        audiences: list(&audiences, "audiences")?,
        auth,
        disabled: disabled != 0,
        created_at: time(created, "created_at")?,
        updated_at: time(updated, "updated_at")?,
        last_used_at: used.map(|v| time(v, "last_used_at")).transpose()?,
        client_id,
        tenant,
        redirect_uris: list(&redirect_uris, "redirect_uris")?,
        require_dpop: require_dpop != 0,
    })
}

fn refresh_from_row(row: RefreshJoinRow) -> Result<RefreshRow, StoreError> {
    let (
        hash,
        family,
        seq,
        grant_data,
        issued_at,
        expires_at,
        access_jti,
        access_exp,
        used_at,
        grace_used,
        client_id,
        subject,
        f_created,
        f_expires,
        f_revoked,
    ) = row;
    Ok(RefreshRow {
        token_hash: hash32(&hash, "refresh token hash")?,
        family: Family {
            id: family,
            client_id,
            subject,
            created_at: time(f_created, "family created_at")?,
            expires_at: time(f_expires, "family expires_at")?,
            revoked_at: f_revoked.map(|v| time(v, "family revoked_at")).transpose()?,
        },
        seq: time(seq, "seq")?,
        grant_data,
        issued_at: time(issued_at, "issued_at")?,
        expires_at: time(expires_at, "expires_at")?,
        access_jti,
        access_exp: time(access_exp, "access_exp")?,
        used_at: used_at.map(|v| time(v, "used_at")).transpose()?,
        grace_used: grace_used != 0,
    })
}

fn pairs(rows: Vec<(String, i64)>) -> Result<Vec<(String, u64)>, StoreError> {
    rows.into_iter().map(|(j, e)| Ok((j, time(e, "exp")?))).collect()
}

/// A backend's SQL for [`OAuthStore`]. Parameters are positional, in the
/// order each field's comment gives.
pub(crate) struct OAuthSql {
    /// (client_id, kind, grants, scopes, roles, audiences, auth_method,
    /// secret_hash, jwks, disabled, created_at, updated_at, tenant,
    /// redirect_uris); does nothing
    /// require_dpop); does nothing
    /// on a taken id.
    pub insert_client: &'static str,
    /// (client_id) → a [`ClientRow`].
    pub get_client: &'static str,
    /// () → [`ClientRow`]s by id.
    pub list_clients: &'static str,
    /// (disabled, updated_at, client_id).
    pub set_disabled: &'static str,
    /// (secret_hash, updated_at, client_id); secret clients only.
    pub set_secret: &'static str,
    /// (last_used_at, client_id).
    pub touch: &'static str,
    /// (id, client_id, subject, created_at, expires_at).
    pub insert_family: &'static str,
    /// (token_hash, family, seq, grant_data, issued_at, expires_at,
    /// access_jti, access_exp).
    pub insert_refresh: &'static str,
    /// (token_hash) → a [`RefreshJoinRow`].
    pub find_refresh: &'static str,
    /// (token_hash) → a [`RefreshJoinRow`], locking the token and its
    /// family until the transaction ends.
    pub find_refresh_locked: &'static str,
    /// (family, seq) → (used_at,) of that token.
    pub successor: &'static str,
    /// (family) → (highest seq,).
    pub max_seq: &'static str,
    /// (used_at, token_hash); only an unspent token.
    pub mark_used: &'static str,
    /// (used_at, family, seq) → (access_jti, access_exp) of the token it
    /// spent; only an unspent one.
    pub mark_successor: &'static str,
    /// (token_hash): its one grace retry is spent.
    pub mark_grace: &'static str,
    /// (revoked_at, id); only an unrevoked family.
    pub revoke_family: &'static str,
    /// (family, now) → (access_jti, access_exp) of its tokens still within
    /// the largest leeway.
    pub family_jtis: &'static str,
    /// (subject, now, limit) → (id, client_id, subject, created_at,
    /// expires_at, revoked_at, last_used) of its live families.
    pub live_families_of: &'static str,
    /// (now, limit) → the same, for everyone.
    pub live_families_all: &'static str,
    /// (jti, expires_at, revoked_at); does nothing when already revoked.
    pub revoke_token: &'static str,
    /// (since, now) → (jti, expires_at).
    pub revocations_since: &'static str,
    /// (client_id, jti, expires_at); does nothing when already seen.
    pub consume_assertion: &'static str,
    /// Each takes (now) only, used as often as the statement needs it, and
    /// runs in this order in one transaction.
    pub purge: &'static [&'static str],
}

/// The helpers [`OAuthStore`]'s transactions share.
#[expect(private_bounds, reason = "only crate-private helpers live in this impl")]
impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Value<DB>,
    String: Value<DB>,
    for<'a> &'a str: Param<DB>,
    for<'a> &'a [u8]: Param<DB>,
{
    async fn revoke_family_in(
        tx: &mut sqlx::Transaction<'_, DB>,
        family_id: &str,
        now: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = &DB::OAUTH;
        sqlx::query(sql.revoke_family)
            .bind(now)
            .bind(family_id)
            .execute(&mut **tx)
            .await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(sql.family_jtis)
            .bind(family_id)
            .bind(now)
            .fetch_all(&mut **tx)
            .await?;
        for (jti, exp) in &rows {
            sqlx::query(sql.revoke_token)
                .bind(jti)
                .bind(exp)
                .bind(now)
                .execute(&mut **tx)
                .await?;
        }
        pairs(rows)
    }

    async fn insert_refresh_in(
        tx: &mut sqlx::Transaction<'_, DB>,
        family: &str,
        seq: i64,
        r: &NewRefresh,
    ) -> Result<(), StoreError> {
        sqlx::query(DB::OAUTH.insert_refresh)
            .bind(&r.token_hash[..])
            .bind(family)
            .bind(seq)
            .bind(&r.grant_data)
            .bind(to_i64(r.issued_at)?)
            .bind(to_i64(r.expires_at)?)
            .bind(&r.access_jti)
            .bind(to_i64(r.access_exp)?)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

impl<DB> OAuthStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    for<'a> &'a str: Param<DB>,
    for<'a> &'a [u8]: Param<DB>,
    Option<String>: Param<DB>,
    Option<Vec<u8>>: Param<DB>,
{
    async fn insert_client(&self, c: &ClientRecord) -> Result<bool, StoreError> {
        let (hash, jwks) = match &c.auth {
            ClientAuth::Secret { hash } => (Some(hash.to_vec()), None),
            ClientAuth::PrivateKeyJwt { jwks } => (None, Some(jwks.clone())),
            ClientAuth::None => (None, None),
        };
        let done = sqlx::query(DB::OAUTH.insert_client)
            .bind(&c.client_id)
            .bind(c.kind.as_str())
            .bind(list_json(&c.grants)?)
            .bind(list_json(&c.scopes)?)
            .bind(list_json(&c.roles)?)
            .bind(list_json(&c.audiences)?)
            .bind(c.auth.method())
            .bind(hash)
            .bind(jwks)
            .bind(i64::from(c.disabled))
            .bind(to_i64(c.created_at)?)
            .bind(to_i64(c.updated_at)?)
            .bind(c.tenant.clone())
            .bind(list_json(&c.redirect_uris)?)
            .bind(i64::from(c.require_dpop))
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        sqlx::query_as::<_, ClientRow>(DB::OAUTH.get_client)
            .bind(client_id)
            .fetch_optional(self.reader())
            .await?
            .map(client_from_row)
            .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        sqlx::query_as::<_, ClientRow>(DB::OAUTH.list_clients)
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(client_from_row)
            .collect()
    }

    async fn set_client_disabled(&self, client_id: &str, disabled: bool, now: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::OAUTH.set_disabled)
            .bind(i64::from(disabled))
            .bind(to_i64(now)?)
            .bind(client_id)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn set_client_secret(&self, client_id: &str, hash: &[u8; 32], now: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::OAUTH.set_secret)
            .bind(&hash[..])
            .bind(to_i64(now)?)
            .bind(client_id)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn touch_client(&self, client_id: &str, now: u64) -> Result<(), StoreError> {
        sqlx::query(DB::OAUTH.touch)
            .bind(to_i64(now)?)
            .bind(client_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn start_family(&self, f: &Family, first: &NewRefresh) -> Result<(), StoreError> {
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        sqlx::query(DB::OAUTH.insert_family)
            .bind(&f.id)
            .bind(&f.client_id)
            .bind(&f.subject)
            .bind(to_i64(f.created_at)?)
            .bind(to_i64(f.expires_at)?)
            .execute(&mut *tx)
            .await?;
        Self::insert_refresh_in(&mut tx, &f.id, 0, first).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_refresh(&self, token_hash: &[u8; 32]) -> Result<Option<RefreshRow>, StoreError> {
        sqlx::query_as::<_, RefreshJoinRow>(DB::OAUTH.find_refresh)
            .bind(&token_hash[..])
            .fetch_optional(self.reader())
            .await?
            .map(refresh_from_row)
            .transpose()
    }

    async fn redeem_refresh(
        &self,
        token_hash: &[u8; 32],
        next: &NewRefresh,
        now: u64,
        grace: u64,
        audit: impl FnOnce(&Redeemed) -> Vec<AuditEvent> + Send,
    ) -> Result<Redeemed, StoreError> {
        let now_i = to_i64(now)?;
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        let Some(row) = sqlx::query_as::<_, RefreshJoinRow>(DB::OAUTH.find_refresh_locked)
            .bind(&token_hash[..])
            .fetch_optional(&mut *tx)
            .await?
            .map(refresh_from_row)
            .transpose()?
        else {
            return Ok(Redeemed::Unknown);
        };
        let seq = to_i64(row.seq)?;
        let successor = if row.used_at.is_some() {
            let (max_seq,): (i64,) = sqlx::query_as(DB::OAUTH.max_seq)
                .bind(&row.family.id)
                .fetch_one(&mut *tx)
                .await?;
            let next_used: Option<(Option<i64>,)> = sqlx::query_as(DB::OAUTH.successor)
                .bind(&row.family.id)
                .bind(seq + 1)
                .fetch_optional(&mut *tx)
                .await?;
            next_used.map(|(used,)| Successor {
                is_newest: max_seq == seq + 1,
                used: used.is_some(),
            })
        } else {
            None
        };
        let reused = |family: Family, revoked| {
            let mut family = family;
            family.revoked_at = Some(now);
            Redeemed::Reused { family, revoked }
        };
        let redeemed = match decide(&row, successor, now, grace) {
            Verdict::Revoked => return Ok(Redeemed::Revoked),
            Verdict::Expired => return Ok(Redeemed::Expired),
            Verdict::Reuse => {
                let revoked = Self::revoke_family_in(&mut tx, &row.family.id, now_i).await?;
                reused(row.family, revoked)
            }
            Verdict::Rotate => {
                let done = sqlx::query(DB::OAUTH.mark_used)
                    .bind(now_i)
                    .bind(&token_hash[..])
                    .execute(&mut *tx)
                    .await?;
                if DB::rows_affected(&done) != 1 {
                    // Spent by a concurrent redemption between our read and write.
                    let revoked = Self::revoke_family_in(&mut tx, &row.family.id, now_i).await?;
                    reused(row.family, revoked)
                } else {
                    Self::insert_refresh_in(&mut tx, &row.family.id, seq + 1, next).await?;
                    Redeemed::Rotated { row }
                }
            }
            Verdict::GraceRetry => {
                sqlx::query(DB::OAUTH.mark_grace)
                    .bind(&token_hash[..])
                    .execute(&mut *tx)
                    .await?;
                // The successor was never received: it is spent now,
                // and the access token issued with it revoked.
                let superseded: Option<(String, i64)> = sqlx::query_as(DB::OAUTH.mark_successor)
                    .bind(now_i)
                    .bind(&row.family.id)
                    .bind(seq + 1)
                    .fetch_optional(&mut *tx)
                    .await?;
                match superseded {
                    None => {
                        // Redeemed concurrently after all: reuse.
                        let revoked = Self::revoke_family_in(&mut tx, &row.family.id, now_i).await?;
                        reused(row.family, revoked)
                    }
                    Some((lost_jti, lost_exp)) => {
                        sqlx::query(DB::OAUTH.revoke_token)
                            .bind(&lost_jti)
                            .bind(lost_exp)
                            .bind(now_i)
                            .execute(&mut *tx)
                            .await?;
                        Self::insert_refresh_in(&mut tx, &row.family.id, seq + 2, next).await?;
                        Redeemed::Rotated { row }
                    }
                }
            }
        };
        commit_with_events(self, tx, audit(&redeemed)).await?;
        Ok(redeemed)
    }

    async fn revoke_family(&self, family_id: &str, now: u64) -> Result<Vec<(String, u64)>, StoreError> {
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        let revoked = Self::revoke_family_in(&mut tx, family_id, to_i64(now)?).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn live_families(
        &self,
        subject: Option<&str>,
        now: u64,
        limit: u32,
    ) -> Result<Vec<(Family, u64)>, StoreError> {
        type Row = (String, String, String, i64, i64, Option<i64>, i64);
        let now = to_i64(now)?;
        let limit = i64::from(limit);
        let rows: Vec<Row> = match subject {
            Some(subject) => {
                sqlx::query_as(DB::OAUTH.live_families_of)
                    .bind(subject)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(self.writer())
                    .await?
            }
            None => {
                sqlx::query_as(DB::OAUTH.live_families_all)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(self.writer())
                    .await?
            }
        };
        rows.into_iter()
            .map(|(id, client_id, subject, created, expires, revoked, last)| {
                Ok((
                    Family {
                        id,
                        client_id,
                        subject,
                        created_at: time(created, "family created_at")?,
                        expires_at: time(expires, "family expires_at")?,
                        revoked_at: revoked.map(|v| time(v, "family revoked_at")).transpose()?,
                    },
                    time(last, "family last use")?,
                ))
            })
            .collect()
    }

    async fn revoke_token(&self, jti: &str, exp: u64, now: u64) -> Result<(), StoreError> {
        sqlx::query(DB::OAUTH.revoke_token)
            .bind(jti)
            .bind(to_i64(exp)?)
            .bind(to_i64(now)?)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn revocations_since(&self, since: u64, now: u64) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(DB::OAUTH.revocations_since)
            .bind(to_i64(since)?)
            .bind(to_i64(now)?)
            .fetch_all(self.reader())
            .await?;
        pairs(rows)
    }

    async fn consume_assertion(&self, client_id: &str, jti: &str, exp: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::OAUTH.consume_assertion)
            .bind(client_id)
            .bind(jti)
            .bind(to_i64(exp)?)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn purge_expired(&self, now: u64) -> Result<(), StoreError> {
        let now = to_i64(now)?;
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        for purge in DB::OAUTH.purge {
            sqlx::query(*purge).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Checks on any backend that purging deletes a revoked family once every
/// access token it issued has expired (revocation + 1 h + 60 s), before
/// its absolute expiry, and keeps a live one. SQLite once bound only the
/// first of the statement's two `now`s and kept revoked families until
/// their absolute expiry.
#[cfg(test)]
pub(crate) async fn check_purge_of_revoked_families<S: OAuthStore>(store: &S) {
    let family = |id: &str| Family {
        id: id.to_owned(),
        client_id: "c".into(),
        subject: "svc:c".into(),
        created_at: 1000,
        expires_at: 1_000_000,
        revoked_at: None,
    };
    let token = |n: u8| NewRefresh {
        token_hash: [n; 32],
        grant_data: "{}".into(),
        issued_at: 1000,
        expires_at: 900_000,
        access_jti: format!("j{n}"),
        access_exp: 1300,
    };
    store.start_family(&family("revoked"), &token(1)).await.unwrap();
    store.start_family(&family("live"), &token(2)).await.unwrap();
    store.revoke_family("revoked", 2000).await.unwrap();
    // Services' families are not people's sign-ins.
    assert!(store.live_families(Some("svc:c"), 2000, 10).await.unwrap().is_empty());
    let person = |id: &str| Family {
        subject: "user:p".into(),
        ..family(id)
    };
    store.start_family(&person("p-revoked"), &token(3)).await.unwrap();
    store.start_family(&person("p-live"), &token(4)).await.unwrap();
    store.revoke_family("p-revoked", 2000).await.unwrap();
    // Only the live family is a live sign-in, last used when its newest
    // token was issued.
    let live = store.live_families(Some("user:p"), 2000, 10).await.unwrap();
    assert_eq!(
        live.iter().map(|(f, last)| (f.id.as_str(), *last)).collect::<Vec<_>>(),
        [("p-live", 1000)]
    );
    assert_eq!(store.live_families(None, 2000, 10).await.unwrap().len(), 1);
    assert!(
        store
            .live_families(Some("svc:other"), 2000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store.live_families(None, 1_000_000, 10).await.unwrap().is_empty(),
        "past its absolute expiry"
    );
    store.purge_expired(2000 + 3659).await.unwrap();
    assert!(
        store.find_refresh(&[1; 32]).await.unwrap().is_some(),
        "purged too early"
    );
    store.purge_expired(2000 + 3660).await.unwrap();
    assert!(
        store.find_refresh(&[1; 32]).await.unwrap().is_none(),
        "a revoked family outlived its access tokens"
    );
    assert!(
        store.find_refresh(&[2; 32]).await.unwrap().is_some(),
        "a live family was purged"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(used_at: Option<u64>, grace_used: bool) -> RefreshRow {
        RefreshRow {
            token_hash: [7; 32],
            family: Family {
                id: "f".into(),
                client_id: "c".into(),
                subject: "svc:c".into(),
                created_at: 1000,
                expires_at: 5000,
                revoked_at: None,
            },
            seq: 0,
            grant_data: "{}".into(),
            issued_at: 1000,
            expires_at: 2000,
            access_jti: "j".into(),
            access_exp: 1300,
            used_at,
            grace_used,
        }
    }

    const FRESH: Option<Successor> = Some(Successor {
        is_newest: true,
        used: false,
    });

    #[test]
    fn unspent_rotates_until_expiry() {
        assert_eq!(decide(&row(None, false), None, 1500, 0), Verdict::Rotate);
        assert_eq!(decide(&row(None, false), None, 2000, 0), Verdict::Expired);
        let mut r = row(None, false);
        r.expires_at = 9000;
        assert_eq!(decide(&r, None, 5000, 0), Verdict::Expired, "absolute expiry wins");
    }

    #[test]
    fn spent_is_reuse_without_grace() {
        assert_eq!(decide(&row(Some(1500), false), FRESH, 1501, 0), Verdict::Reuse);
        assert_eq!(
            decide(&row(Some(1500), false), FRESH, 2500, 0),
            Verdict::Reuse,
            "still reuse after the token's own idle expiry"
        );
    }

    #[test]
    fn grace_allows_one_retry_of_the_newest_predecessor() {
        assert_eq!(decide(&row(Some(1500), false), FRESH, 1505, 10), Verdict::GraceRetry);
        assert_eq!(decide(&row(Some(1500), false), FRESH, 1511, 10), Verdict::Reuse, "late");
        assert_eq!(decide(&row(Some(1500), true), FRESH, 1505, 10), Verdict::Reuse, "twice");
        let used = Some(Successor {
            is_newest: true,
            used: true,
        });
        assert_eq!(
            decide(&row(Some(1500), false), used, 1505, 10),
            Verdict::Reuse,
            "successor used"
        );
        let older = Some(Successor {
            is_newest: false,
            used: false,
        });
        assert_eq!(
            decide(&row(Some(1500), false), older, 1505, 10),
            Verdict::Reuse,
            "not the newest"
        );
    }

    #[test]
    fn revoked_family_stays_revoked() {
        let mut r = row(None, false);
        r.family.revoked_at = Some(1200);
        assert_eq!(decide(&r, None, 1500, 0), Verdict::Revoked);
    }
}
