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

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use warden_store::Store;

use crate::state::AppState;

/// Notices queued for publication before new ones are dropped.
const QUEUE: usize = 10_000;
/// Longest wait before resubscribing after Redis failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    notice: Notice,
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
    queue: mpsc::Sender<Notice>,
    receiver: std::sync::Mutex<Option<mpsc::Receiver<Notice>>>,
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

    /// Fan-out over the Redis at `url` for the deployment of `issuer`.
    /// Nothing connects until [`spawn`] runs.
    pub fn new(url: &str, issuer: &str) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        Fanout {
            inner: Some(Arc::new(Inner {
                replica: crate::request_id::new(),
                channel: channel(issuer),
                url: url.to_owned(),
                queue,
                receiver: std::sync::Mutex::new(Some(receiver)),
            })),
        }
    }

    /// Whether notices go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
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
pub async fn announce(url: &str, issuer: &str, notice: Notice) -> Result<(), String> {
    let body = serde_json::to_string(&Envelope {
        from: "cli".into(),
        notice,
    })
    .map_err(|e| e.to_string())?;
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
    tasks.push(tokio::spawn(subscribe_loop(client, inner, state)));
    tasks
}

async fn publish_loop(client: redis::Client, inner: Arc<Inner>, mut receiver: mpsc::Receiver<Notice>) {
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    while let Some(notice) = receiver.recv().await {
        let body = match serde_json::to_string(&Envelope {
            from: inner.replica.clone(),
            notice,
        }) {
            Ok(b) => b,
            Err(_) => continue,
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
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        match serde_json::from_str::<Envelope>(&payload) {
                            Ok(env) if env.from != inner.replica => apply(&state, env.notice).await,
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "fan-out: unreadable notice ignored"),
                        }
                    }
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

/// Applies a notice from another replica.
async fn apply<S: Store>(state: &AppState<S>, notice: Notice) {
    let now = crate::state::now();
    match notice {
        Notice::Revoked { jti, exp } => {
            state.keys.get().api.invalidate_jti(&jti);
            state.revocations.insert(jti, exp);
        }
        Notice::Keys => {
            if let Err(e) = state.keys.reload(&state.manager, &state.options, now).await {
                tracing::warn!(error = %e, "key reload after a fan-out notice failed");
            }
        }
        Notice::Policies => match state.policies.reload() {
            Ok(count) => tracing::info!(count, "policies reloaded after a fan-out notice"),
            Err(e) => {
                tracing::error!(error = %e, "policy reload after a fan-out notice refused; the policies in force stay")
            }
        },
        Notice::Registry => {
            if let Err(e) = state.policies.registry().refresh(&state.store).await {
                tracing::warn!(error = %e, "registry refresh after a fan-out notice failed");
            }
        }
        Notice::Client { client_id } => state.forget_client(&client_id),
    }
}

/// Catches up with the store: revocations in full, keys, registry.
async fn reconcile<S: Store>(state: &AppState<S>) {
    let now = crate::state::now();
    match state.revocations.sync(&state.store, now, true).await {
        Ok(fresh) => {
            let keys = state.keys.get();
            for jti in fresh {
                keys.api.invalidate_jti(&jti);
            }
        }
        Err(e) => tracing::warn!(error = %e, "revocation sync failed"),
    }
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
    fn notices_round_trip_with_their_sender() {
        let env = Envelope {
            from: "r1".into(),
            notice: Notice::Revoked {
                jti: "j".into(),
                exp: 5,
            },
        };
        let text = serde_json::to_string(&env).unwrap_or_default();
        assert_eq!(text, r#"{"from":"r1","kind":"revoked","jti":"j","exp":5}"#);
        let back: Envelope = serde_json::from_str(&text).unwrap_or(Envelope {
            from: String::new(),
            notice: Notice::Keys,
        });
        assert_eq!((back.from.as_str(), back.notice), ("r1", env.notice));
        assert_eq!(channel("https://w.example"), "warden:fanout:https://w.example");
        assert!(!Fanout::disabled().is_enabled());
    }
}
