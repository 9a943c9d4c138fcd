//! Periodic work, in one place, each step logged and retried on its next
//! tick:
//! - every `replicas.sync_interval` (default 1 s): revocations recorded
//!   elsewhere (all of them every 30 syncs); every 5 syncs the signing keys
//!   (a rotation elsewhere); every 5 syncs too, in its own task so a slow
//!   registry never delays the rest, the registry attributes the policies
//!   read. (The Redis fan-out applies such changes at once; this is the
//!   catch-up.)
//! - every 5 s: a scheduled rotation when `keys.rotate_every` says the
//!   signing key is due; approval requests and approvals that ran out
//!   expired and audited (`approvals/sweep.rs`);
//! - every second: the tallies of refused requests whose one-minute
//!   window ended, into the audit log;
//! - every 300 s: purging expired rows (revocations, assertion ids,
//!   refresh families, dashboard sessions);
//! - the audit sequencer (`audit_sequencer.rs`, its own task): the queue
//!   integrated into the Merkle log and a checkpoint signed every
//!   `audit.checkpoint_interval`, by the replica holding its lease;
//! - every 2 s with a policy directory: reloading the policies when their
//!   files changed and then stayed unchanged for one more check.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use warden_audit::{AuditEvent, EventKind};
use warden_store::{AuditSigner, Store};

use crate::access::Access;
use crate::audit_sequencer;
use crate::notice::Notice;
use crate::state::{AppState, now};

/// Starts every periodic task; they run until aborted.
pub fn spawn<S: Store>(
    app: &Arc<AppState<S>>,
    access: &Arc<Access>,
    signer: &Arc<AuditSigner>,
    queued: Arc<Notify>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(upkeep(Arc::clone(app))),
        tokio::spawn(refresh_registry(Arc::clone(app), Arc::clone(access))),
        tokio::spawn(audit_sequencer::run(Arc::clone(app), Arc::clone(signer), queued)),
    ];
    if let Some(dir) = &app.options.policy_dir {
        tasks.push(tokio::spawn(watch_policies(
            Arc::clone(app),
            Arc::clone(access),
            dir.clone(),
        )));
    }
    tasks
}

fn ticker(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

/// Revocations, keys and purging, on a one-second clock.
async fn upkeep<S: Store>(app: Arc<AppState<S>>) {
    let mut tick = ticker(Duration::from_secs(1));
    let sync_every = app.options.replicas.sync_interval.as_secs().max(1);
    let (mut n, mut syncs): (u64, u64) = (0, 0);
    loop {
        tick.tick().await;
        let t = now();
        app.record_refusals(app.refusals.ended(t), t).await;
        if n.is_multiple_of(sync_every) {
            app.sync_revocations(t, syncs.is_multiple_of(30)).await;
            if syncs.is_multiple_of(5) {
                app.reload_keys(t).await;
            }
            syncs += 1;
        }
        if n.is_multiple_of(5) {
            rotate_if_due(&app, t).await;
            if let Err(e) = crate::approvals::sweep::sweep(&app, t).await {
                tracing::warn!(error = %e, "expiring approval requests failed");
            }
        }
        n += 1;
        if n.is_multiple_of(300) {
            if let Err(e) = app.store.purge_expired(t).await {
                tracing::warn!(error = %e, "purging expired rows failed");
            }
            if let Err(e) = app.store.purge_sessions(t).await {
                tracing::warn!(error = %e, "purging expired dashboard sessions failed");
            }
            if let Err(e) = app.store.purge_authorizations(t).await {
                tracing::warn!(error = %e, "purging expired authorization codes and device grants failed");
            }
        }
    }
}

/// Re-reads the registry attributes the policies see, picking up other
/// replicas' changes (this process's own refresh them at once).
async fn refresh_registry<S: Store>(app: Arc<AppState<S>>, access: Arc<Access>) {
    let mut tick = ticker(app.options.replicas.sync_interval.saturating_mul(5));
    loop {
        tick.tick().await;
        if let Err(e) = access.refresh_attributes(&app.store).await {
            tracing::warn!(error = %e, "could not refresh registry attributes");
        }
    }
}

/// Rotates the signing key when it is older than `keys.rotate_every`.
async fn rotate_if_due<S: Store>(app: &AppState<S>, now: u64) {
    let every = app.options.rotate_every;
    if every == 0 {
        return;
    }
    let Ok(list) = app.manager.list(now).await else {
        return;
    };
    let newest = list
        .iter()
        .filter(|(r, _)| r.retired_at.is_none())
        .map(|(r, _)| r.created_at)
        .max();
    if newest.is_some_and(|created| now < created + every) {
        return;
    }
    let previous = app.keys.get().signing.as_ref().map(|k| k.kid().to_owned());
    match app.manager.rotate(app.options.key_algorithm, now, false).await {
        Ok(record) => {
            tracing::info!(kid = %record.kid, "rotated the signing key on schedule");
            app.notices.publish(Notice::Keys);
            let event = EventKind::KeyRotated {
                kid: record.kid.clone(),
                previous_kid: previous,
                alg: record.alg.as_str().to_owned(),
            };
            if let Err(e) = app.audit.record(AuditEvent::new(now, event)).await {
                tracing::error!(error = %e, "could not audit the scheduled rotation");
            }
        }
        Err(e) => tracing::warn!(error = %e, "scheduled rotation refused"),
    }
}

/// What identifies the policy files' contents cheaply: every `.cedar` and
/// `.cedarschema` file under `dir` with its length and modification time.
fn policy_fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten().take(10_000) {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if meta.is_dir() {
                if stack.len() < 64 {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "cedar" || e == "cedarschema") {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// Reloads the policies when their files change and then stay unchanged
/// for one more check (every 2 s); an invalid set is logged and never
/// replaces the one in force. Each reload is audited.
async fn watch_policies<S: Store>(app: Arc<AppState<S>>, access: Arc<Access>, dir: PathBuf) {
    let mut seen = policy_fingerprint(&dir);
    let mut pending: Option<Vec<_>> = None;
    let mut tick = ticker(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let now_seen = policy_fingerprint(&dir);
        if now_seen == seen {
            pending = None;
            continue;
        }
        // Reload only once the files have stopped changing for a whole
        // tick: a copy or rename in progress could leave a valid set that
        // lacks some `forbid` rules.
        if pending.as_ref() != Some(&now_seen) {
            pending = Some(now_seen);
            continue;
        }
        pending = None;
        seen = now_seen;
        access.reload_policies(&app, "file change").await;
    }
}
