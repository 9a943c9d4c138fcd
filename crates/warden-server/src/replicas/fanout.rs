//! Fan-out between replicas over Redis pub/sub: what one replica changes,
//! the others apply within milliseconds instead of at their next periodic
//! sync.
//!
//! Notices ([`Notice`]): a revoked token (`jti`, `exp`), new keys, a
//! policy reload, a registry change, a changed client. Each carries the sending replica's
//! id, so a replica ignores its own. Delivery is best effort (Redis
//! pub/sub keeps nothing): the periodic reconciliation from the store
//! stays (revocations every second, in full every 30 s; keys and registry
//! attributes every 5 s), and after every (re)subscription a replica
//! reconciles at once, so a missed notice heals within seconds.
//!
//! Publishing never blocks a request: notices go through a bounded queue
//! ([`Notices`]) to one publisher task (a full queue drops the notice, with
//! a warning; reconciliation covers it). Without `redis_url` there is no
//! fan-out. Applying a notice is the replica's (`reconcile.rs`).
//!
//! Whoever can publish on Redis must not be able to steer Warden: every
//! notice carries a time and an HMAC-SHA256 under a key derived from the
//! master key (which every replica and the CLI share); a notice that is
//! unsigned, forged, older than 30 s, larger than 1 KiB or malformed is
//! dropped and logged. A revocation's `exp` is clamped to the longest token
//! lifetime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aws_lc_rs::hmac;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use warden_store::Store;

use super::Replica;
use crate::notice::{Notice, Notices};
use crate::redis::Redis;
use crate::state::now;
/// Longest wait before resubscribing after Redis failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Largest notice read; anything bigger is dropped unparsed.
const MAX_NOTICE: usize = 1024;
/// Oldest (and furthest in the future) a notice may be, in seconds.
const MAX_AGE: u64 = 30;
/// Longest `jti` a revocation notice may carry.
const MAX_JTI: usize = 128;
/// How often a replica sends itself a heartbeat through Redis.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A subscription that has not carried our own heartbeat for this long is
/// presumed dead (a half-open connection) and replaced.
const SILENCE: u64 = 15;

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

/// The fan-out of one replica: publishes what the [`Notices`] queue
/// carries and applies what the other replicas publish.
#[derive(Debug)]
pub struct Fanout {
    replica: String,
    channel: String,
    redis: Redis,
    key: NoticeKey,
    /// The queue's receiving end, taken by the publisher when it starts.
    queue: std::sync::Mutex<Option<mpsc::Receiver<Notice>>>,
    /// Whether the subscription is up.
    subscribed: AtomicBool,
    /// When our own heartbeat last came back (Unix seconds).
    heard: AtomicU64,
}

/// The pub/sub channel of the deployment whose tokens `issuer` issues
/// (replicas of another deployment on the same Redis never hear it).
pub fn channel(issuer: &str) -> String {
    format!("warden:fanout:{issuer}")
}

impl Fanout {
    /// The fan-out over `redis` for the deployment of `issuer`, notices
    /// signed with `key`; the other end of `queue` is the [`Notices`] every
    /// part publishes through. Nothing connects until [`Fanout::spawn`].
    pub fn new(redis: Redis, issuer: &str, key: NoticeKey, queue: mpsc::Receiver<Notice>) -> Self {
        Fanout {
            replica: crate::http::request_id::new(),
            channel: channel(issuer),
            redis,
            key,
            queue: std::sync::Mutex::new(Some(queue)),
            subscribed: AtomicBool::new(false),
            heard: AtomicU64::new(0),
        }
    }

    /// For `/readyz`: whether this replica is subscribed and how long ago
    /// its own heartbeat came back. A replica without fan-out still works
    /// (it reconciles from the store), so this never makes it unready.
    pub fn status(&self, now: u64) -> serde_json::Value {
        let heard = self.heard.load(Ordering::Relaxed);
        serde_json::json!({
            "subscribed": self.subscribed.load(Ordering::Relaxed),
            "heartbeat_age_seconds": (heard > 0).then(|| now.saturating_sub(heard)),
        })
    }

    /// Starts the publisher, the heartbeat and the subscriber, which
    /// applies notices to `replica`; all run until aborted.
    pub fn spawn<S: Store>(self: &Arc<Self>, replica: Arc<Replica<S>>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let queue = self.queue.lock().ok().and_then(|mut q| q.take());
        if let Some(queue) = queue {
            tasks.push(tokio::spawn(Arc::clone(self).publish_loop(queue)));
        }
        let notices = replica.app.notices.clone();
        tasks.push(tokio::spawn(heartbeat(notices)));
        tasks.push(tokio::spawn(Arc::clone(&replica).reload_loop()));
        tasks.push(tokio::spawn(Arc::clone(self).subscribe_loop(replica)));
        tasks
    }

    async fn publish_loop(self: Arc<Self>, mut queue: mpsc::Receiver<Notice>) {
        let mut connection: Option<redis::aio::MultiplexedConnection> = None;
        while let Some(notice) = queue.recv().await {
            let envelope = Envelope {
                from: self.replica.clone(),
                at: now(),
                notice,
            };
            let Some(body) = self.key.seal(&envelope) else {
                continue;
            };
            if connection.is_none() {
                connection = self.redis.publisher().await.ok();
            }
            let Some(conn) = connection.as_mut() else {
                tracing::warn!(
                    "fan-out: Redis unreachable; a notice is dropped (other replicas reconcile from the store)"
                );
                continue;
            };
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(&body)
                .query_async(conn)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "fan-out publish failed; a notice is dropped");
                connection = None;
            }
        }
    }

    async fn subscribe_loop<S: Store>(self: Arc<Self>, replica: Arc<Replica<S>>) {
        let metrics = &replica.app.metrics;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.redis.subscriber().await {
                Ok(mut pubsub) => match pubsub.subscribe(&self.channel).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        tracing::info!(channel = %self.channel, "fan-out subscribed");
                        // Whatever was published while unsubscribed is lost:
                        // reconcile from the store now.
                        replica.reconcile().await;
                        self.subscribed.store(true, Ordering::Relaxed);
                        self.heard.store(now(), Ordering::Relaxed);
                        metrics.fanout_subscribed(true);
                        let mut messages = pubsub.into_on_message();
                        loop {
                            // Our own heartbeat comes back every few seconds; a
                            // silent subscription is a dead connection.
                            let next = tokio::time::timeout(HEARTBEAT, messages.next()).await;
                            let silent = now().saturating_sub(self.heard.load(Ordering::Relaxed)) > SILENCE;
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
                            match self.key.open(&payload, now()) {
                                Ok(env) if env.from == self.replica => {
                                    self.heard.store(now(), Ordering::Relaxed);
                                }
                                Ok(env) => replica.apply(env.notice),
                                Err(why) => tracing::warn!(why, "fan-out: notice dropped"),
                            }
                        }
                        self.subscribed.store(false, Ordering::Relaxed);
                        metrics.fanout_subscribed(false);
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
}

/// Sends this replica a heartbeat through Redis every [`HEARTBEAT`].
async fn heartbeat(notices: Notices) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        notices.publish(Notice::Heartbeat);
    }
}

/// Announces `notice` to the running replicas from outside a server (the
/// CLI after it rotates a key or changes a client): one `PUBLISH`, with a
/// 3 s limit. An error says what failed; callers only warn, since the
/// replicas reconcile from the store periodically anyway.
pub async fn announce(redis: &Redis, issuer: &str, key: &NoticeKey, notice: Notice) -> Result<(), String> {
    let body = key
        .seal(&Envelope {
            from: "cli".into(),
            at: now(),
            notice,
        })
        .ok_or("could not encode the notice")?;
    let publish = async {
        let mut conn = redis.publisher().await.map_err(|e| e.to_string())?;
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
    }
}
