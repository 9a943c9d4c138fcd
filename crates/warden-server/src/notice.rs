//! Notices of changes that the other replicas should apply at once
//! (a revocation, new keys, a policy reload, a registry change, a changed
//! client), and the handle every part publishes them through.
//!
//! Publishing never blocks and never fails a request: a notice goes into a
//! bounded queue that the fan-out (`replicas/fanout.rs`) drains to Redis;
//! a full queue drops it with a warning, and the replicas' periodic
//! reconciliation from the store covers what was dropped. Without
//! `redis_url` nothing is queued at all.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Notices queued for publication before new ones are dropped.
const QUEUE: usize = 10_000;

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

/// Where notices go: the fan-out's queue, or nowhere.
#[derive(Debug, Clone)]
pub struct Notices {
    queue: Option<mpsc::Sender<Notice>>,
}

impl Notices {
    /// Notices that go nowhere (no `redis_url`).
    pub fn none() -> Self {
        Notices { queue: None }
    }

    /// A handle and the queue behind it, which the fan-out drains.
    pub fn queue() -> (Self, mpsc::Receiver<Notice>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (Notices { queue: Some(sender) }, receiver)
    }

    /// Whether notices go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues `notice` for the other replicas.
    pub fn publish(&self, notice: Notice) {
        if let Some(queue) = &self.queue
            && queue.try_send(notice).is_err()
        {
            tracing::warn!("fan-out queue full or closed; other replicas catch up at their next sync");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_notices_reach_the_queue_and_none_go_nowhere() {
        let (notices, mut queue) = Notices::queue();
        notices.publish(Notice::Keys);
        assert_eq!(queue.try_recv().ok(), Some(Notice::Keys));
        let nowhere = Notices::none();
        assert!(!nowhere.is_enabled());
        nowhere.publish(Notice::Keys);
    }
}
