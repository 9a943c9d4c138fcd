//! The audit sequencer: moves queued events into the Merkle log and signs
//! its checkpoints, on one replica at a time.
//!
//! Requests only wait for their event to be queued durably (see
//! `warden_store::audit_queue`); the replica that holds the
//! [`SEQUENCER_LEASE`] integrates the queue in batches of up to
//! [`MAX_INTEGRATION_BATCH`] — at once when this process queued something,
//! and every [`poll_interval`] for what other replicas queued — and signs
//! a checkpoint every `audit.checkpoint_interval`. The lease is held for
//! [`LEASE_TTL`] seconds and renewed every second, so when the holder dies
//! another replica carries on within a few seconds; the queue keeps every
//! acknowledged event meanwhile. Two holders at once (a paused process
//! whose lease lapsed) stay correct: each batch locks the log's state row.
//!
//! Every replica samples the queue each second for `/metrics`
//! (`warden_audit_queue_depth`, `warden_audit_integration_lag_seconds`);
//! `/readyz` reads it itself and reports the server unready while the
//! oldest queued event has waited longer than `audit.max_integration_delay`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use warden_store::audit_queue::MAX_INTEGRATION_BATCH;
use warden_store::{AuditSigner, Store, StoreError};

use crate::replicas::Lease;
use crate::state::{AppState, now, now_ms};

/// The lease whose holder integrates the audit queue and signs checkpoints.
pub const SEQUENCER_LEASE: &str = "audit-sequencer";

/// Seconds the sequencer lease is held; renewed every second.
pub const LEASE_TTL: u64 = 3;

/// Batches one round integrates at most before the loop looks at its lease
/// and its clock again.
const BATCHES_PER_ROUND: usize = 64;

/// How often the holder looks for events other replicas queued: a tenth
/// of the delay bound, at most 100 ms.
pub fn poll_interval(max_delay: Duration) -> Duration {
    (max_delay / 10).clamp(Duration::from_millis(5), Duration::from_millis(100))
}

/// Runs the sequencer until aborted. `queued` is notified when this
/// process queued events.
pub async fn run<S: Store>(app: Arc<AppState<S>>, signer: Arc<AuditSigner>, queued: Arc<Notify>) {
    let lease = Lease::new(SEQUENCER_LEASE);
    let poll = poll_interval(app.options.audit.max_integration_delay);
    let mut holder = false;
    let mut last_second: Option<Instant> = None;
    let mut last_checkpoint = now();
    let mut failing = false;
    loop {
        tokio::select! {
            () = queued.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
        if last_second.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            last_second = Some(Instant::now());
            holder = match lease.hold(&app.store, now(), LEASE_TTL).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(error = %e, "audit sequencer lease unavailable");
                    false
                }
            };
            sample_queue(&app).await;
        }
        if !holder {
            continue;
        }
        // Logged when integration starts failing and when it recovers, not
        // at every poll in between (the lag on `/readyz` shows it too).
        match integrate_round(&app).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("integrating the audit queue works again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "integrating the audit queue failed; retrying at every poll");
            }
            Err(e) => tracing::debug!(error = %e, "integrating the audit queue still fails"),
        }
        let t = now();
        if t >= last_checkpoint + app.options.audit.checkpoint_interval {
            last_checkpoint = t;
            match warden_store::sign_checkpoint(&app.store, &signer, t).await {
                Ok(Some(cp)) => tracing::debug!(size = cp.size, "signed audit checkpoint"),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "signing the audit checkpoint failed"),
            }
        }
    }
}

/// Integrates queued events until the queue is empty or
/// [`BATCHES_PER_ROUND`] batches were moved; returns how many events.
async fn integrate_round<S: Store>(app: &AppState<S>) -> Result<u64, StoreError> {
    let mut total = 0;
    for _ in 0..BATCHES_PER_ROUND {
        let done = app.store.integrate(MAX_INTEGRATION_BATCH).await?;
        total += done.count();
        app.metrics.audit_integrated(done.count());
        if done.count() < MAX_INTEGRATION_BATCH as u64 {
            break;
        }
    }
    Ok(total)
}

/// Integrates everything queued (bounded), for a shutdown: the writer is
/// closed, so nothing this process queued is left behind. Another replica
/// integrating at the same time is harmless.
pub async fn drain<S: Store>(app: &AppState<S>) {
    for _ in 0..BATCHES_PER_ROUND {
        match integrate_round(app).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not integrate the audit queue at shutdown; the next sequencer will");
                break;
            }
        }
    }
}

/// Puts the queue's depth and lag into the metrics.
async fn sample_queue<S: Store>(app: &AppState<S>) {
    match app.store.queue_status().await {
        Ok(status) => app.metrics.audit_queue(status.depth, status.lag_ms(now_ms())),
        Err(e) => tracing::debug!(error = %e, "could not read the audit queue"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_a_tenth_of_the_bound_within_limits() {
        assert_eq!(poll_interval(Duration::from_secs(1)), Duration::from_millis(100));
        assert_eq!(poll_interval(Duration::from_secs(60)), Duration::from_millis(100));
        assert_eq!(poll_interval(Duration::from_millis(200)), Duration::from_millis(20));
        assert_eq!(poll_interval(Duration::ZERO), Duration::from_millis(5));
    }
}
