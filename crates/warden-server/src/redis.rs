//! The one way into Redis: every part that shares state across replicas
//! (gateway rate limits, failed-authentication counts, the fan-out of
//! changes, the CLI's announcements) opens its connections here, from the
//! one `redis_url`, with the same URL rules and timeouts.
//!
//! Keys and channels are named per deployment (the issuer), so several
//! Warden deployments can share one Redis without hearing each other.
//!
//! # What it must not touch
//! What is stored under the keys: each user owns its keys and scripts.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSub};

/// Longest wait for a connection to Redis.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why Redis cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    /// The URL is not one this build can use; the text never repeats a password.
    #[error("redis_url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL with its password masked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Redis did not answer in time or refused.
    #[error("Redis: {0}")]
    Unavailable(String),
}

/// Checks a `redis_url` without connecting: `redis://` or `redis+unix://`
/// (this build has no TLS to Redis). The error never repeats a password.
pub fn check_url(url: &str) -> Result<(), String> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "redis" | "redis+unix" | "unix" => {}
        "rediss" => return Err("rediss:// (TLS) is not supported by this build; use redis://".into()),
        _ => return Err("must start with redis:// or redis+unix://".into()),
    }
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| format!("not a valid Redis URL ({e})"))
}

/// A Redis server, by URL. Opening checks the URL; nothing connects until
/// a connection is asked for.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    /// The URL with its password masked, for logs.
    target: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Redis").field(&self.target).finish()
    }
}

impl Redis {
    /// The Redis at `url` (`redis://[:PASSWORD@]HOST:PORT[/DB]`).
    pub fn open(url: &str) -> Result<Self, RedisError> {
        let target = warden_store::redact_url(url);
        let invalid = |reason: String| RedisError::InvalidUrl {
            url: target.clone(),
            reason,
        };
        check_url(url).map_err(invalid)?;
        let client = redis::Client::open(url).map_err(|e| invalid(e.to_string()))?;
        Ok(Redis { client, target })
    }

    /// The URL with its password masked.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A self-reconnecting connection for commands on the request path:
    /// one attempt per reconnection and at most `response_timeout` per
    /// command, so no request waits through a backoff. Connects lazily
    /// (must be called within a Tokio runtime).
    pub fn commands(&self, response_timeout: Duration) -> Result<ConnectionManager, RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(0);
        ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| RedisError::Unavailable(e.to_string()))
    }

    /// A connection for publishing, made now (within [`CONNECT_TIMEOUT`]).
    pub async fn publisher(&self) -> Result<MultiplexedConnection, RedisError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| RedisError::Unavailable(format!("no connection within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| RedisError::Unavailable(e.to_string()))
    }

    /// A connection for subscribing, made now (within [`CONNECT_TIMEOUT`]).
    pub async fn subscriber(&self) -> Result<PubSub, RedisError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| RedisError::Unavailable(format!("no connection within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| RedisError::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_never_repeated() {
        assert!(Redis::open("redis://127.0.0.1:6379/2").is_ok());
        assert!(Redis::open("redis+unix:///run/redis.sock").is_ok());
        let e = Redis::open("rediss://:hunter2@h:6380").unwrap_err().to_string();
        assert!(e.contains("TLS") && !e.contains("hunter2"), "{e}");
        let e = Redis::open("http://:hunter2@h:6379").unwrap_err().to_string();
        assert!(e.contains("redis://") && !e.contains("hunter2"), "{e}");
        let r = Redis::open("redis://:hunter2@127.0.0.1:6379").unwrap();
        assert!(!format!("{r:?}").contains("hunter2"));
    }
}
