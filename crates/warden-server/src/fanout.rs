//! Fan-out between replicas over Redis pub/sub: what one replica changes,
//! the others apply within milliseconds instead of at their next periodic
//! sync.
//!
//! Notices: a revoked token (`jti`, `exp`), new keys, a policy reload, a
//! registry change, a changed client. Each carries the sending replica's
//! id, so a replica ignores its own. Delivery is best effort (Redis
//! pub/sub keeps nothing): the periodic reconciliation from the store
//! stays (revocations every second, in full every 30 s; keys and registry
//! attributes every 5 s), and after every (re)subscription a replica
//! reconciles at once, so a missed notice heals within seconds.
//!
//! Publishing never blocks a request: notices go through a bounded queue
//! to one publisher task (a full queue drops the notice, with a warning;
//! reconciliation covers it). Without `redis_url` there is no fan-out.
//!
//! Whoever can publish on Redis must not be able to steer Warden: every
//! notice carries a time and an HMAC-SHA256 under a key derived from the
//! master key (which every replica and the CLI share); a notice that is
//! unsigned, forged, older than 30 s, larger than 1 KiB or malformed is
//! dropped and logged. A revocation's `exp` is clamped to the longest token
//! lifetime. Reloads asked for by notices (keys, registry, policies) are
//! coalesced: at most one at a time per kind, at most four a second, so a
//! flood of notices costs a bounded amount of work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_lc_rs::hmac;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use warden_store::Store;

use crate::state::AppState;

/// Notices queued for publication before new ones are dropped.
const QUEUE: usize = 10_000;
/// Longest wait before resubscribing after Redis failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Largest notice read; anything bigger is dropped unparsed.
const MAX_NOTICE: usize = 1024;
/// Oldest (and furthest in the future) a notice may be, in seconds.
const MAX_AGE: u64 = 30;
/// Longest `jti` a revocation notice may carry.
const MAX_JTI: usize = 128;
/// Least time between two reloads of one kind asked for by notices.
const RELOAD_SPACING: Duration = Duration::from_millis(250);
/// How often a replica sends itself a heartbeat through Redis.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A subscription that has not carried our own heartbeat for this long is
/// presumed dead (a half-open connection) and replaced.
const SILENCE: u64 = 15;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// A token was revoked until `exp`.
    Revoked {
        /// Its `jti`.
        jti: String,
        /// Its expiry (Unix seconds).
        exp: u64,
    },
    /// Signing keys changed (rotation, retirement).
    Keys,
    /// The policies were reloaded.
    Policies,
    /// A dataset, model or version changed.
    Registry,
    /// A client changed (disabled, enabled, new secret).
    Client {
        /// Its id.
        client_id: String,
    },
    /// A replica checking its own subscription (ignored by the others).
    Heartbeat,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    /// When it was sent (Unix seconds).
    at: u64,
    #[serde(flatten)]
    notice: Notice,
}

/// The key notices are signed with: derived from the master key.
#[derive(Clone)]
pub struct NoticeKey(hmac::Key);

impl std::fmt::Debug for NoticeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoticeKey(<redacted>)")
    }
}

impl NoticeKey {
    /// The fan-out key of the deployment sealed under `master`.
    pub fn from_master(master: &warden_keys::MasterKey) -> Self {
        let key = master.derive("fan-out notices");
        NoticeKey(hmac::Key::new(hmac::HMAC_SHA256, key.as_slice()))
    }

    /// `<base64url tag>.<json>`.
    fn seal(&self, envelope: &Envelope) -> Option<String> {
        let json = serde_json::to_string(envelope).ok()?;
        let tag = hmac::sign(&self.0, json.as_bytes());
        Some(format!("{}.{json}", warden_jose::base64url::encode(tag.as_ref())))
    }

    /// The envelope of a sealed notice, if its tag, size and time check out.
    fn open(&self, text: &str, now: u64) -> Result<Envelope, &'static str> {
        if text.len() > MAX_NOTICE {
            return Err("too large");
        }
        let (tag, json) = text.split_once('.').ok_or("unsigned")?;
        let tag = warden_jose::base64url::decode(tag).ok_or("malformed tag")?;
        hmac::verify(&self.0, json.as_bytes(), &tag).map_err(|_| "bad signature")?;
        let env: Envelope = serde_json::from_str(json).map_err(|_| "malformed")?;
        if env.at.abs_diff(now) > MAX_AGE {
            return Err("stale");
        }
        if let Notice::Revoked { jti, .. } = &env.notice
            && (jti.is_empty() || jti.len() > MAX_JTI)
        {
            return Err("bad jti");
        }
        Ok(env)
    }
}

/// The publishing side, held in the shared state.
#[derive(Debug, Clone)]
pub struct Fanout {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    replica: String,
    channel: String,
    url: String,
    key: NoticeKey,
    queue: mpsc::Sender<Notice>,
    receiver: std::sync::Mutex<Option<mpsc::Receiver<Notice>>>,
    /// Whether the subscription is up.
    subscribed: AtomicBool,
    /// When our own heartbeat last came back (Unix seconds).
    heard: std::sync::atomic::AtomicU64,
}

/// The pub/sub channel of the deployment whose tokens `issuer` issues
/// (replicas of another deployment on the same Redis never hear it).
pub fn channel(issuer: &str) -> String {
    format!("warden:fanout:{issuer}")
}

impl Fanout {
    /// No fan-out (no `redis_url`).
    pub fn disabled() -> Self {
        Fanout { inner: None }
    }

    /// Fan-out over the Redis at `url` for the deployment of `issuer`,
    /// notices signed with `key`. Nothing connects until [`spawn`] runs.
    pub fn new(url: &str, issuer: &str, key: NoticeKey) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        Fanout {
            inner: Some(Arc::new(Inner {
                replica: crate::request_id::new(),
                channel: channel(issuer),
                url: url.to_owned(),
                key,
                queue,
                receiver: std::sync::Mutex::new(Some(receiver)),
                subscribed: AtomicBool::new(false),
                heard: std::sync::atomic::AtomicU64::new(0),
            })),
        }
    }

    /// Whether notices go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// For `/readyz`: `null` without fan-out, else whether this replica is
    /// subscribed and how long ago its own heartbeat came back. A replica
    /// without fan-out still works (it reconciles from the store), so this
    /// never makes it unready.
    pub fn status(&self, now: u64) -> serde_json::Value {
        match &self.inner {
            None => serde_json::Value::Null,
            Some(inner) => {
                let heard = inner.heard.load(Ordering::Relaxed);
                serde_json::json!({
                    "subscribed": inner.subscribed.load(Ordering::Relaxed),
                    "heartbeat_age_seconds": (heard > 0).then(|| now.saturating_sub(heard)),
                })
            }
        }
    }

    /// Queues `notice` for the other replicas.
    pub fn publish(&self, notice: Notice) {
        if let Some(inner) = &self.inner
            && inner.queue.try_send(notice).is_err()
        {
            tracing::warn!("fan-out queue full or closed; other replicas catch up at their next sync");
        }
    }
}

/// Announces `notice` to the running replicas from outside a server (the
/// CLI after it rotates a key or changes a client): one `PUBLISH`, with a
/// 3 s limit. An error says what failed; callers only warn, since the
/// replicas reconcile from the store periodically anyway.
pub async fn announce(url: &str, issuer: &str, key: &NoticeKey, notice: Notice) -> Result<(), String> {
    let body = key
        .seal(&Envelope {
            from: "cli".into(),
            at: crate::state::now(),
            notice,
        })
        .ok_or("could not encode the notice")?;
    let publish = async {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PUBLISH")
            .arg(channel(issuer))
            .arg(&body)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(3), publish)
        .await
        .map_err(|_| "Redis did not answer within 3 s".to_owned())?
}

/// Starts the publisher and the subscriber; both run until aborted.
pub fn spawn<S: Store>(state: Arc<AppState<S>>) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(inner) = state.fanout.inner.clone() else {
        return Vec::new();
    };
    let client = match redis::Client::open(inner.url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "fan-out disabled: invalid redis_url");
            return Vec::new();
        }
    };
    let receiver = inner.receiver.lock().ok().and_then(|mut r| r.take());
    let mut tasks = Vec::new();
    if let Some(receiver) = receiver {
        tasks.push(tokio::spawn(publish_loop(client.clone(), Arc::clone(&inner), receiver)));
    }
    let fanout = state.fanout.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            fanout.publish(Notice::Heartbeat);
        }
    }));
    tasks.push(tokio::spawn(subscribe_loop(client, inner, state)));
    tasks
}

async fn publish_loop(client: redis::Client, inner: Arc<Inner>, mut receiver: mpsc::Receiver<Notice>) {
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    while let Some(notice) = receiver.recv().await {
        let envelope = Envelope {
            from: inner.replica.clone(),
            at: crate::state::now(),
            notice,
        };
        let Some(body) = inner.key.seal(&envelope) else {
            continue;
        };
        if connection.is_none() {
            connection = client.get_multiplexed_async_connection().await.ok();
        }
        let Some(conn) = connection.as_mut() else {
            tracing::warn!("fan-out: Redis unreachable; a notice is dropped (other replicas reconcile from the store)");
            continue;
        };
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&inner.channel)
            .arg(&body)
            .query_async(conn)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "fan-out publish failed; a notice is dropped");
            connection = None;
        }
    }
}

async fn subscribe_loop<S: Store>(client: redis::Client, inner: Arc<Inner>, state: Arc<AppState<S>>) {
    let reloads = Arc::new(Reloads::default());
    tokio::spawn(reload_loop(Arc::clone(&reloads), Arc::clone(&state)));
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&inner.channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    tracing::info!(channel = %inner.channel, "fan-out subscribed");
                    // Whatever was published while unsubscribed is lost:
                    // reconcile from the store now.
                    reconcile(&state).await;
                    inner.subscribed.store(true, Ordering::Relaxed);
                    inner.heard.store(crate::state::now(), Ordering::Relaxed);
                    state.metrics.fanout_subscribed(true);
                    let mut messages = pubsub.into_on_message();
                    loop {
                        // Our own heartbeat comes back every few seconds; a
                        // silent subscription is a dead connection.
                        let next = tokio::time::timeout(HEARTBEAT, messages.next()).await;
                        let silent = crate::state::now().saturating_sub(inner.heard.load(Ordering::Relaxed)) > SILENCE;
                        let msg = match next {
                            Ok(Some(msg)) => msg,
                            Ok(None) => break,
                            Err(_) if silent => {
                                tracing::warn!("fan-out: no heartbeat through Redis for {SILENCE} s");
                                break;
                            }
                            Err(_) => continue,
                        };
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        match inner.key.open(&payload, crate::state::now()) {
                            Ok(env) if env.from == inner.replica => {
                                inner.heard.store(crate::state::now(), Ordering::Relaxed);
                            }
                            Ok(env) => apply(&state, &reloads, env.notice),
                            Err(why) => tracing::warn!(why, "fan-out: notice dropped"),
                        }
                    }
                    inner.subscribed.store(false, Ordering::Relaxed);
                    state.metrics.fanout_subscribed(false);
                    tracing::warn!("fan-out subscription lost; resubscribing");
                }
                Err(e) => tracing::warn!(error = %e, "fan-out subscribe failed"),
            },
            Err(e) => tracing::warn!(error = %e, "fan-out: Redis unreachable"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Reloads asked for by notices and not yet done.
#[derive(Debug, Default)]
struct Reloads {
    keys: AtomicBool,
    registry: AtomicBool,
    policies: AtomicBool,
    wake: tokio::sync::Notify,
}

/// Applies a notice from another replica: a revocation at once, a reload
/// by flagging it for [`reload_loop`].
fn apply<S: Store>(state: &AppState<S>, reloads: &Reloads, notice: Notice) {
    let flag = match notice {
        Notice::Revoked { jti, exp } => {
            // Never held past the longest lifetime a token can have.
            let cap = crate::state::now()
                .saturating_add(state.options.max_ttl)
                .saturating_add(warden_jose::MAX_LEEWAY);
            state.keys.get().api.invalidate_jti(&jti);
            state.revocations.insert(jti, exp.min(cap));
            return;
        }
        Notice::Client { client_id } => {
            state.forget_client(&client_id);
            return;
        }
        Notice::Heartbeat => return,
        Notice::Keys => &reloads.keys,
        Notice::Registry => &reloads.registry,
        Notice::Policies => &reloads.policies,
    };
    flag.store(true, Ordering::Relaxed);
    reloads.wake.notify_one();
}

/// Does the flagged reloads, one at a time and at most four a second: a
/// flood of notices costs as much as a few.
async fn reload_loop<S: Store>(reloads: Arc<Reloads>, state: Arc<AppState<S>>) {
    loop {
        reloads.wake.notified().await;
        let now = crate::state::now();
        if reloads.keys.swap(false, Ordering::Relaxed)
            && let Err(e) = state.keys.reload(&state.manager, &state.options, now).await
        {
            tracing::warn!(error = %e, "key reload after a fan-out notice failed");
        }
        if reloads.registry.swap(false, Ordering::Relaxed)
            && let Err(e) = state.policies.registry().refresh(&state.store).await
        {
            tracing::warn!(error = %e, "registry refresh after a fan-out notice failed");
        }
        if reloads.policies.swap(false, Ordering::Relaxed) {
            let policies = Arc::clone(&state.policies);
            match tokio::task::spawn_blocking(move || policies.reload()).await {
                Ok(Ok(count)) => tracing::info!(count, "policies reloaded after a fan-out notice"),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "policy reload after a fan-out notice refused; the policies in force stay");
                }
                Err(e) => tracing::error!(error = %e, "policy reload task failed"),
            }
        }
        tokio::time::sleep(RELOAD_SPACING).await;
    }
}

/// Catches up with the store: revocations in full, keys, registry.
async fn reconcile<S: Store>(state: &AppState<S>) {
    let now = crate::state::now();
    state.sync_revocations(now, true).await;
    if let Err(e) = state.keys.reload(&state.manager, &state.options, now).await {
        tracing::warn!(error = %e, "key reload failed");
    }
    if let Err(e) = state.policies.registry().refresh(&state.store).await {
        tracing::warn!(error = %e, "registry refresh failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_signed_fresh_and_small() {
        let key = NoticeKey::from_master(&warden_keys::MasterKey::from_bytes([7; 32]));
        let env = Envelope {
            from: "r1".into(),
            at: 1000,
            notice: Notice::Revoked {
                jti: "j".into(),
                exp: 5,
            },
        };
        let sealed = key.seal(&env).unwrap_or_default();
        assert!(
            sealed.ends_with(r#"{"from":"r1","at":1000,"kind":"revoked","jti":"j","exp":5}"#),
            "{sealed}"
        );
        let back = key.open(&sealed, 1010).map(|e| (e.from, e.notice));
        assert_eq!(back, Ok(("r1".to_owned(), env.notice.clone())));
        assert_eq!(key.open(&sealed, 1031).map(|_| ()), Err("stale"));
        let other = NoticeKey::from_master(&warden_keys::MasterKey::from_bytes([8; 32]));
        assert_eq!(other.open(&sealed, 1010).map(|_| ()), Err("bad signature"));
        let (tag, json) = sealed.split_once('.').unwrap_or_default();
        let forged = format!("{tag}.{}", json.replace("\"j\"", "\"k\""));
        assert_eq!(key.open(&forged, 1010).map(|_| ()), Err("bad signature"));
        assert_eq!(key.open(json, 1010).map(|_| ()), Err("unsigned"));
        assert_eq!(key.open(&format!("!!.{json}"), 1010).map(|_| ()), Err("malformed tag"));
        assert_eq!(
            key.open(&"x".repeat(MAX_NOTICE + 1), 1010).map(|_| ()),
            Err("too large")
        );
        let long = Envelope {
            from: "r1".into(),
            at: 1000,
            notice: Notice::Revoked {
                jti: "j".repeat(MAX_JTI + 1),
                exp: 5,
            },
        };
        assert_eq!(
            key.open(&key.seal(&long).unwrap_or_default(), 1000).map(|_| ()),
            Err("bad jti")
        );
        assert_eq!(channel("https://w.example"), "warden:fanout:https://w.example");
        assert!(!Fanout::disabled().is_enabled());
    }
}
