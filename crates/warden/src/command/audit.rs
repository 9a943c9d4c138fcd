//! `warden audit vkey | checkpoint | tail | query | export | verify | erase`.
//!
//! # Export format (`--format jsonl`)
//! One JSON object per line, in this order:
//! 1. a header: `{"kind":"header","format":"warden-audit-export","version":1,
//!    "origin":…,"size":N,"root":"<base64>","exported_at":…}`;
//! 2. every checkpoint of size at most N, by size:
//!    `{"kind":"checkpoint","size":…,"time":…,"note":"<signed note>"}`;
//! 3. the events 0 … N-1, by index: `{"kind":"event","index":…,"time":…,
//!    "type":…,"subject":…,"resource":…,"body":"<canonical JSON text>",
//!    "salt":"<hex>","leaf_hash":"<hex>","erased":false,"erased_at":null,
//!    "erasure_reason":null}`. The body is the exact bytes the leaf commits
//!    to, as a JSON string (`body_base64` instead when they are not UTF-8);
//!    an erased event has `"body":null,"salt":null,"erased":true` and when
//!    and why.
//!
//! `tail` and `query --json` print event objects of the same form.
//!
//! # Verification
//! [`warden_store::audit_verify`] does it: [`warden_audit::verify_log`]'s
//! cryptography (leaves from bodies, the tree, every checkpoint's
//! signature, root and consistency) and what only a whole log can show
//! (the `time` and `type` beside each body are the body's, every erased
//! body is accounted for by an `erasure` event, and the log has as many
//! events as its stored state, or the export's header, says, with the
//! same root). This module feeds it the database or an export file, draws
//! the progress bar and prints the verdict.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal as _, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use warden_audit::{AuditEvent, EventKind, Hash, NoteSigner, NoteVerifier, Record, Salt, VerifyReport};
use warden_store::audit::{Erasure, MAX_PAGE};
use warden_store::audit_queue::MAX_COUNTED_DEPTH;
use warden_store::audit_verify::{self, Entry, QueueVerdict, VerifyError, VerifyOutcome, VerifyProgress};
use warden_store::{
    AuditSigner, AuditStore, EventQuery, PreparedEvent, QueuedEvent, Store, StoreError, StoredEvent, sign_checkpoint,
};

use super::{Context, now, rfc3339};
use crate::cli::{AuditCommand, AuditQueryArgs, ExportFormat};
use crate::exit::{Refused, UsageError};
use crate::store_select::{StoreTask, with_store};
use crate::text::printable;

/// The `format` member of an export's header.
const EXPORT_FORMAT: &str = "warden-audit-export";
/// The `version` member of an export's header.
const EXPORT_VERSION: u32 = 1;
/// Longest erasure reason accepted.
const MAX_REASON: usize = 1000;

/// Runs an audit subcommand.
pub async fn run(cmd: AuditCommand, ctx: &Context) -> anyhow::Result<()> {
    if let AuditCommand::Verify {
        export: Some(path),
        vkey,
    } = &cmd
    {
        let verifier = match vkey {
            Some(vkey) => parse_vkey(vkey)?,
            None => with_store(&ctx.options.storage, false, VerifierTask { ctx })
                .await
                .map_err(|e| {
                    UsageError(format!(
                        "give --vkey to verify an export: an auditor checks it against the verifier key they \
                         trust (`warden audit vkey` prints it); without it the database's key is used, but \
                         it could not be loaded: {e:#}"
                    ))
                })?,
        };
        return verify_export(path.clone(), verifier).await;
    }
    with_store(&ctx.options.storage, false, AuditTask { cmd, ctx }).await
}

/// Records `kinds` at `time` in the audit log, in one durable transaction:
/// it returns only once they are committed. Commands call it after their
/// action and before reporting success.
pub async fn record<S: AuditStore>(store: &S, time: u64, kinds: Vec<EventKind>) -> anyhow::Result<Range<u64>> {
    let events = kinds
        .into_iter()
        .map(|kind| PreparedEvent::seal(&AuditEvent::new(time, kind)))
        .collect::<Result<Vec<_>, _>>()?;
    store
        .append_batch(&events)
        .await
        .context("recording the action in the audit log")
}

/// Opens (with `create`, makes) the log key. An origin derived from the
/// issuer (`audit.origin` not set) yields to the one the log was created
/// with, as in `warden serve`; a configured one must match it.
pub async fn load_signer<S: Store>(store: &S, ctx: &Context, create: bool) -> anyhow::Result<AuditSigner> {
    let master = ctx.master_key(false)?;
    let audit = &ctx.options.audit;
    match AuditSigner::load_or_create(store, &master, &audit.origin, create).await {
        Err(StoreError::AuditOriginMismatch { stored, .. }) if !audit.origin_explicit => {
            Ok(AuditSigner::load_or_create(store, &master, &stored, create).await?)
        }
        other => Ok(other?),
    }
}

/// The origin of this database's log: the configured one, or when none is
/// configured, the stored key's (read without the master key).
async fn origin_of<S: Store>(store: &S, ctx: &Context) -> anyhow::Result<String> {
    let audit = &ctx.options.audit;
    if !audit.origin_explicit
        && let Some(stored) = AuditSigner::stored_origin(store).await?
    {
        return Ok(stored);
    }
    Ok(audit.origin.clone())
}

fn parse_vkey(vkey: &str) -> anyhow::Result<NoteVerifier> {
    Ok(NoteVerifier::from_vkey(vkey.trim()).map_err(|e| UsageError(format!("--vkey: {e}")))?)
}

/// Loads the database's log key (never creating it) and returns its verifier.
struct VerifierTask<'a> {
    ctx: &'a Context,
}

impl StoreTask for VerifierTask<'_> {
    type Output = NoteVerifier;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<NoteVerifier> {
        Ok(load_signer(&store, self.ctx, false).await?.verifier())
    }
}

struct AuditTask<'a> {
    cmd: AuditCommand,
    ctx: &'a Context,
}

impl StoreTask for AuditTask<'_> {
    type Output = ();

    async fn run<S: Store>(self, store: S) -> anyhow::Result<()> {
        let ctx = self.ctx;
        match self.cmd {
            AuditCommand::Vkey => {
                println!("{}", load_signer(&store, ctx, true).await?.vkey());
            }
            AuditCommand::Checkpoint => {
                let signer = load_signer(&store, ctx, true).await?;
                match sign_checkpoint(&store, &signer, now()).await? {
                    Some(cp) => {
                        print!("{}", cp.note);
                        eprintln!("signed a checkpoint of size {}", cp.size);
                    }
                    None => match store.latest_checkpoint().await? {
                        Some(cp) => {
                            print!("{}", cp.note);
                            eprintln!(
                                "no new events: the latest checkpoint (size {}, signed {}) stands",
                                cp.size,
                                rfc3339(cp.time)
                            );
                        }
                        None => eprintln!("the audit log is empty: nothing to sign"),
                    },
                }
            }
            AuditCommand::Tail { lines, json } => {
                let size = store.size().await?;
                let count = u64::from(lines);
                let query = EventQuery::page(size.saturating_sub(count), 0);
                print_events(&store, query, count, json).await?;
            }
            AuditCommand::Query(args) => {
                let query = query_of(&args)?;
                print_events(&store, query, args.limit, args.json).await?;
            }
            AuditCommand::Export { format, out } => {
                let ExportFormat::Jsonl = format;
                export(&store, &origin_of(&store, ctx).await?, out.as_deref()).await?;
            }
            AuditCommand::Verify { export: _, vkey } => {
                let verifier = match vkey {
                    Some(vkey) => Some(parse_vkey(&vkey)?),
                    None => None,
                };
                verify_store(store, verifier, ctx).await?;
            }
            AuditCommand::Erase {
                index,
                reason,
                override_retention,
            } => erase(&store, ctx, index, &reason, override_retention).await?,
        }
        Ok(())
    }
}

// --- tail and query ---

fn query_of(args: &AuditQueryArgs) -> anyhow::Result<EventQuery> {
    let time = |flag: &str, value: &Option<String>| -> anyhow::Result<Option<u64>> {
        value
            .as_deref()
            .map(|v| {
                warden_server::time::parse(v).ok_or_else(|| {
                    UsageError(format!(
                        "{flag} `{v}`: expected Unix seconds or RFC 3339 UTC (2026-01-31T12:00:00Z)"
                    ))
                })
            })
            .transpose()
            .map_err(Into::into)
    };
    Ok(EventQuery {
        from: args.from,
        limit: 0,
        kind: args.kind.clone(),
        subject: args.subject.clone(),
        resource: args.resource.clone(),
        actor: args.actor.clone(),
        outcome: args.decision.clone(),
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
        ..EventQuery::default()
    })
}

/// Calls `each` on the events `query` selects, a page at a time, at most
/// `limit` of them, and only those below `end` when given.
async fn for_each_event<S: AuditStore>(
    store: &S,
    mut query: EventQuery,
    limit: u64,
    end: Option<u64>,
    mut each: impl FnMut(&StoredEvent) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut remaining = limit;
    while remaining > 0 && end.is_none_or(|end| query.from < end) {
        let page_limit = u32::try_from(remaining).unwrap_or(MAX_PAGE).min(MAX_PAGE);
        query.limit = page_limit;
        let page = store.events(&query).await?;
        let Some(last) = page.last() else { break };
        query.from = last.index + 1;
        let full = page.len() == page_limit as usize;
        for event in page.iter().filter(|e| end.is_none_or(|end| e.index < end)) {
            each(event)?;
            remaining -= 1;
        }
        if !full {
            break;
        }
    }
    Ok(())
}

async fn print_events<S: AuditStore>(store: &S, query: EventQuery, limit: u64, json: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut any = false;
    if !json {
        writeln!(out, "{:<8}  {:<20}  {:<28}  DETAIL", "INDEX", "TIME", "TYPE")?;
    }
    let mut printed = 0u64;
    for_each_event(store, query.clone(), limit, None, |event| {
        any = true;
        printed += 1;
        if json {
            serde_json::to_writer(&mut out, &EventLine::of(event))?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:<8}  {:<20}  {:<28}  {}",
                event.index,
                rfc3339(event.time),
                event.kind,
                detail(
                    event.content.as_ref().map(|(body, _)| body.as_slice()),
                    event.erasure.as_ref()
                )
            )?;
        }
        Ok(())
    })
    .await?;
    // Then what is acknowledged but not yet integrated: `pending`, no index.
    for_each_pending(store, limit.saturating_sub(printed), |event| {
        if !event.matches(&query) {
            return Ok(false);
        }
        any = true;
        if json {
            serde_json::to_writer(&mut out, &PendingLine::of(event))?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:<8}  {:<20}  {:<28}  {}",
                "pending",
                rfc3339(event.time),
                event.kind,
                detail(Some(&event.body), None)
            )?;
        }
        Ok(true)
    })
    .await?;
    out.flush()?;
    if !any {
        eprintln!("no events");
    }
    Ok(())
}

/// Calls `each` on queued events, oldest first, until it has accepted
/// (returned `true` for) `limit` of them or the queue ends.
async fn for_each_pending<S: AuditStore>(
    store: &S,
    limit: u64,
    mut each: impl FnMut(&QueuedEvent) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let (mut after, mut remaining) = (0, limit);
    // Bounded: each page moves `after` past at least one receipt.
    for _ in 0..=(MAX_COUNTED_DEPTH / u64::from(MAX_PAGE) + 1) {
        if remaining == 0 {
            break;
        }
        let page = store.queued_events(after, MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let full = page.len() == MAX_PAGE as usize;
        for event in &page {
            if remaining > 0 && each(event)? {
                remaining -= 1;
            }
        }
        if !full {
            break;
        }
    }
    Ok(())
}

/// The members of an event other than its time and type, `name=value`.
fn detail(content: Option<&[u8]>, erasure: Option<&Erasure>) -> String {
    let Some(body) = content else {
        return match erasure {
            Some(e) => format!("[erased {}: {}]", rfc3339(e.at), printable(&e.reason)),
            None => "[erased]".into(),
        };
    };
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(members) => members
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "time" | "type"))
            .map(|(name, value)| match value {
                serde_json::Value::String(s) => format!("{}={}", printable(name), printable(s)),
                other => format!("{}={}", printable(name), printable(&other.to_string())),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => "[body is not a JSON object]".into(),
    }
}

// --- export ---

/// The header line of an export.
#[derive(Debug, Serialize)]
struct HeaderLine<'a> {
    kind: &'static str,
    format: &'static str,
    version: u32,
    origin: &'a str,
    size: u64,
    root: String,
    exported_at: u64,
}

/// A checkpoint line of an export.
#[derive(Debug, Serialize)]
struct CheckpointLine<'a> {
    kind: &'static str,
    size: u64,
    time: u64,
    note: &'a str,
}

/// An event line of an export, and of `tail`/`query --json`.
#[derive(Debug, Serialize)]
struct EventLine<'a> {
    kind: &'static str,
    index: u64,
    time: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
    subject: Option<&'a str>,
    resource: Option<&'a str>,
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    salt: Option<String>,
    leaf_hash: String,
    erased: bool,
    erased_at: Option<u64>,
    erasure_reason: Option<&'a str>,
}

impl<'a> EventLine<'a> {
    fn of(event: &'a StoredEvent) -> Self {
        let (body, body_base64, salt) = match &event.content {
            Some((body, salt)) => match std::str::from_utf8(body) {
                Ok(text) => (Some(text), None, Some(hex::encode(salt.as_bytes()))),
                Err(_) => (None, Some(STANDARD.encode(body)), Some(hex::encode(salt.as_bytes()))),
            },
            None => (None, None, None),
        };
        EventLine {
            kind: "event",
            index: event.index,
            time: event.time,
            event_type: &event.kind,
            subject: event.subject.as_deref(),
            resource: event.resource.as_deref(),
            body,
            body_base64,
            salt,
            leaf_hash: hex::encode(event.leaf_hash),
            erased: event.content.is_none(),
            erased_at: event.erasure.as_ref().map(|e| e.at),
            erasure_reason: event.erasure.as_ref().map(|e| e.reason.as_str()),
        }
    }
}

/// A queued event not yet in the log: a line of an export (after the
/// events) and of `tail`/`query --json`. It has a receipt, no index.
#[derive(Debug, Serialize)]
struct PendingLine<'a> {
    kind: &'static str,
    seq: u64,
    queued_at_ms: u64,
    time: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
    subject: Option<&'a str>,
    resource: Option<&'a str>,
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    salt: String,
    leaf_hash: String,
}

impl<'a> PendingLine<'a> {
    fn of(event: &'a QueuedEvent) -> Self {
        let (body, body_base64) = match std::str::from_utf8(&event.body) {
            Ok(text) => (Some(text), None),
            Err(_) => (None, Some(STANDARD.encode(&event.body))),
        };
        PendingLine {
            kind: "pending",
            seq: event.seq,
            queued_at_ms: event.queued_at_ms,
            time: event.time,
            event_type: &event.kind,
            subject: event.subject.as_deref(),
            resource: event.resource.as_deref(),
            body,
            body_base64,
            salt: hex::encode(event.salt.as_bytes()),
            leaf_hash: hex::encode(event.leaf_hash),
        }
    }
}

/// Creates `path` with mode 0600 (an existing file is truncated and its
/// mode reset): an export holds every body and salt.
fn create_private(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    Ok(file)
}

async fn export<S: AuditStore>(store: &S, origin: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let sink: Box<dyn Write> = match out {
        Some(path) => Box::new(create_private(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::with_capacity(1 << 16, sink);
    // The tree head first: the checkpoints and events written are those of
    // this size, whatever is appended meanwhile.
    let head = store.tree_head().await?;
    write_line(
        &mut sink,
        &HeaderLine {
            kind: "header",
            format: EXPORT_FORMAT,
            version: EXPORT_VERSION,
            origin,
            size: head.size,
            root: STANDARD.encode(head.root),
            exported_at: now(),
        },
    )?;
    let mut checkpoints = 0u64;
    let mut from_size = 0;
    loop {
        let page = store.checkpoints(from_size, MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        from_size = last.size + 1;
        let full = page.len() == MAX_PAGE as usize;
        for cp in page.iter().filter(|cp| cp.size <= head.size) {
            write_line(
                &mut sink,
                &CheckpointLine {
                    kind: "checkpoint",
                    size: cp.size,
                    time: cp.time,
                    note: &cp.note,
                },
            )?;
            checkpoints += 1;
        }
        if !full || from_size > head.size {
            break;
        }
    }
    let mut events = 0u64;
    for_each_event(store, EventQuery::page(0, 0), u64::MAX, Some(head.size), |event| {
        events += 1;
        write_line(&mut sink, &EventLine::of(event))
    })
    .await?;
    // Events acknowledged but not yet integrated: after the log, as
    // pending (no checkpoint covers them yet). One integrated meanwhile
    // may appear in neither part; a later export has it.
    let mut pending = 0u64;
    for_each_pending(store, u64::MAX, |event| {
        pending += 1;
        write_line(&mut sink, &PendingLine::of(event))?;
        Ok(true)
    })
    .await?;
    sink.flush().context("writing the export")?;
    eprintln!(
        "exported {events} events, {checkpoints} checkpoints (tree size {}) and {pending} pending events{}",
        head.size,
        out.map(|p| format!(" to {}", p.display())).unwrap_or_default()
    );
    Ok(())
}

fn write_line(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value).context("writing the export")?;
    out.write_all(b"\n").context("writing the export")?;
    Ok(())
}

// --- verify ---

/// Why reading an export stopped (see [`audit_verify::Stop`]).
type Stop = audit_verify::Stop<std::io::Error>;

/// The progress bar of a verification, on a terminal.
struct Bar(ProgressBar);

impl VerifyProgress for Bar {
    fn total(&self, events: u64) {
        self.0.set_length(events);
    }

    fn checked(&self, events: u64) {
        self.0.set_position(events);
    }
}

/// A progress bar on stderr when it is a terminal, else a hidden one; its
/// length is set by [`VerifyProgress::total`].
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("verifying {bar:40} {pos}/{len} events ({per_sec}, {eta} left)") {
        bar.set_style(style);
    }
    bar
}

/// Prints the verdict: a summary and exit 0, or the first problem and exit 1.
fn report(outcome: VerifyOutcome, verifier: &NoteVerifier, source: &str) -> anyhow::Result<()> {
    match outcome {
        VerifyOutcome::Verified(report) => {
            println!(
                "audit log OK ({source}): {} events, {} erased, {} checkpoints verified with key {}+{:08x}",
                report.leaves,
                report.erased,
                report.checkpoints,
                verifier.name(),
                verifier.key_id()
            );
            println!("root at size {}: {}", report.leaves, STANDARD.encode(report.root));
            Ok(())
        }
        VerifyOutcome::Failed(message) => {
            Err(Refused(format!("audit log verification FAILED ({source}): {message}")).into())
        }
    }
}

/// The verifier of a log that has no key yet, so no checkpoint: any key
/// does, since there is no signature to check.
fn keyless_verifier(origin: &str) -> anyhow::Result<NoteVerifier> {
    use aws_lc_rs::signature::Ed25519KeyPair;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("key generation failed"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("key generation failed"))?;
    Ok(NoteSigner::new(origin, pair)?.verifier()?)
}

async fn verify_store<S: Store>(store: S, verifier: Option<NoteVerifier>, ctx: &Context) -> anyhow::Result<()> {
    let (verifier, keyless) = match verifier {
        Some(verifier) => (verifier, false),
        None => match load_signer(&store, ctx, false).await {
            Ok(signer) => (signer.verifier(), false),
            // Without a key there can be no checkpoint: the library refuses
            // the log (with this same error) if it finds one.
            Err(e) if matches!(e.downcast_ref::<StoreError>(), Some(StoreError::NoAuditKey)) => {
                (keyless_verifier(&ctx.options.audit.origin)?, true)
            }
            Err(e) => return Err(e),
        },
    };
    let bar = progress_bar();
    let progress = Arc::new(Bar(bar.clone()));
    let outcome = if keyless {
        audit_verify::verify_keyless_store_log(store.clone(), verifier.clone(), progress).await
    } else {
        audit_verify::verify_store_log(store.clone(), verifier.clone(), progress).await
    };
    bar.finish_and_clear();
    let outcome = outcome.map_err(|e| match e {
        VerifyError::Read(e) => anyhow::Error::new(e).context("reading the audit log"),
        VerifyError::Task(e) => anyhow::Error::new(e).context("the verification task failed"),
        VerifyError::Store(e) => anyhow::Error::new(e),
        other => anyhow::Error::new(other),
    })?;
    report(outcome, &verifier, "database")?;
    // Acknowledged events not yet in the tree: no checkpoint covers them
    // yet, but each must be sealed as it will be integrated.
    match audit_verify::verify_queue(&store).await? {
        QueueVerdict::Verified { queued: 0 } => println!("queue: empty (every acknowledged event is integrated)"),
        QueueVerdict::Verified { queued } => println!(
            "queue: {queued} events pending integration, each sealed correctly (the next checkpoints will cover them)"
        ),
        QueueVerdict::Failed(message) => {
            return Err(Refused(format!("audit log verification FAILED (database): {message}")).into());
        }
    }
    Ok(())
}

/// Any line of an export, as read back.
#[derive(Debug, Deserialize)]
struct ExportLine<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    // header
    format: Option<Cow<'a, str>>,
    version: Option<u32>,
    origin: Option<Cow<'a, str>>,
    root: Option<Cow<'a, str>>,
    // checkpoint and header
    size: Option<u64>,
    note: Option<String>,
    // event (and checkpoint: time); pending: seq instead of index
    index: Option<u64>,
    seq: Option<u64>,
    time: Option<u64>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    body: Option<Cow<'a, str>>,
    body_base64: Option<Cow<'a, str>>,
    salt: Option<Cow<'a, str>>,
    leaf_hash: Option<Cow<'a, str>>,
    erased: Option<bool>,
}

/// The header of an export.
#[derive(Debug)]
struct ExportHeader {
    origin: String,
    size: u64,
    root: Hash,
}

/// An export's header, its checkpoints (`(size, note)`), and a reader of
/// its events.
type OpenedExport<R> = (ExportHeader, Vec<(u64, String)>, ExportReader<R>);

/// Reads an export: the header, then the checkpoints, then a stream of
/// its events.
struct ExportReader<R> {
    lines: std::io::Lines<R>,
    line: u64,
    first_event: Option<Entry>,
    /// Pending lines read and checked so far; after the first, no event
    /// line may follow.
    pending: Arc<AtomicU64>,
}

fn bad_line(line: u64, what: impl std::fmt::Display) -> Stop {
    Stop::Bad(format!("export line {line}: {what}"))
}

impl<R: BufRead> ExportReader<R> {
    /// Reads the header and the checkpoints (and the first event line).
    fn open(reader: R) -> Result<OpenedExport<R>, Stop> {
        let mut this = ExportReader {
            lines: reader.lines(),
            line: 0,
            first_event: None,
            pending: Arc::new(AtomicU64::new(0)),
        };
        let header = match this.next_line()? {
            Some(text) => this.header(&text)?,
            None => return Err(bad_line(1, "the file is empty")),
        };
        let mut checkpoints = Vec::new();
        while let Some(text) = this.next_line()? {
            let parsed = this.parse(&text)?;
            match parsed.kind.as_ref() {
                "checkpoint" => {
                    let note = parsed
                        .note
                        .ok_or_else(|| bad_line(this.line, "checkpoint without a note"))?;
                    let size = parsed
                        .size
                        .ok_or_else(|| bad_line(this.line, "checkpoint without a size"))?;
                    checkpoints.push((size, note));
                }
                "event" => {
                    this.first_event = Some(this.entry(parsed)?);
                    break;
                }
                // A log with no events, only pending ones.
                "pending" => this.check_pending(parsed)?,
                other => return Err(bad_line(this.line, format_args!("unexpected `{other}` line"))),
            }
        }
        Ok((header, checkpoints, this))
    }

    fn next_line(&mut self) -> Result<Option<String>, Stop> {
        match self.lines.next() {
            None => Ok(None),
            Some(Ok(text)) => {
                self.line += 1;
                Ok(Some(text))
            }
            Some(Err(e)) => Err(Stop::Failed(e)),
        }
    }

    fn parse<'t>(&self, text: &'t str) -> Result<ExportLine<'t>, Stop> {
        serde_json::from_str(text).map_err(|e| bad_line(self.line, format_args!("not an export line: {e}")))
    }

    fn header(&self, text: &str) -> Result<ExportHeader, Stop> {
        let line = self.parse(text)?;
        if line.kind != "header" || line.format.as_deref() != Some(EXPORT_FORMAT) {
            return Err(bad_line(self.line, "not a Warden audit export (no header)"));
        }
        if line.version != Some(EXPORT_VERSION) {
            return Err(bad_line(self.line, "unsupported export version"));
        }
        let root = line
            .root
            .and_then(|r| STANDARD.decode(r.as_bytes()).ok())
            .and_then(|r| Hash::try_from(r.as_slice()).ok())
            .ok_or_else(|| bad_line(self.line, "header root is not 32 bytes of base64"))?;
        Ok(ExportHeader {
            origin: line.origin.map(Cow::into_owned).unwrap_or_default(),
            size: line.size.ok_or_else(|| bad_line(self.line, "header without a size"))?,
            root,
        })
    }

    /// Checks a pending line: its leaf hash must be its salted body's, and
    /// its time and type the body's. No checkpoint covers it yet.
    fn check_pending(&self, line: ExportLine<'_>) -> Result<(), Stop> {
        let at = self.line;
        let seq = line.seq.ok_or_else(|| bad_line(at, "pending event without a seq"))?;
        let time = line.time;
        let kind = line.event_type.clone();
        let entry = self
            .entry(ExportLine {
                kind: Cow::Borrowed("event"),
                index: Some(seq),
                erased: Some(false),
                ..line
            })
            .map_err(|stop| match stop {
                Stop::Bad(message) => Stop::Bad(message.replace("log entry", "pending event")),
                other => other,
            })?;
        let Some((body, salt)) = &entry.record.content else {
            return Err(bad_line(at, "pending event without a body"));
        };
        if warden_audit::leaf::event_leaf_hash(salt, body) != entry.record.leaf_hash {
            return Err(Stop::Bad(format!(
                "pending event {seq} (export line {at}): the leaf hash is not that of its body"
            )));
        }
        match AuditEvent::from_body(body) {
            Ok(event) if Some(event.time) == time && Some(event.kind.type_name()) == kind.as_deref() => {}
            _ => {
                return Err(Stop::Bad(format!(
                    "pending event {seq} (export line {at}): the time or type is not its body's"
                )));
            }
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn entry(&self, line: ExportLine<'_>) -> Result<Entry, Stop> {
        let at = self.line;
        if line.kind != "event" {
            return Err(bad_line(at, format_args!("`{}` line among the events", line.kind)));
        }
        let index = line.index.ok_or_else(|| bad_line(at, "event without an index"))?;
        let bad = |what: &str| Stop::Bad(format!("log entry {index} (export line {at}): {what}"));
        let leaf_hash = line
            .leaf_hash
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|h| Hash::try_from(h.as_slice()).ok())
            .ok_or_else(|| bad("leaf_hash is not 32 bytes of hex"))?;
        let body = match (line.body, line.body_base64) {
            (Some(text), None) => Some(text.into_owned().into_bytes()),
            (None, Some(b64)) => Some(
                STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|_| bad("body_base64 is not base64"))?,
            ),
            (None, None) => None,
            (Some(_), Some(_)) => return Err(bad("both body and body_base64")),
        };
        let salt = line
            .salt
            .map(|s| {
                hex::decode(s.as_bytes())
                    .ok()
                    .and_then(|s| <[u8; 32]>::try_from(s.as_slice()).ok())
                    .map(Salt::from_bytes)
                    .ok_or_else(|| bad("salt is not 32 bytes of hex"))
            })
            .transpose()?;
        let content = match (body, salt) {
            (Some(body), Some(salt)) => Some((body, salt)),
            (None, None) => None,
            _ => return Err(bad("a body without a salt, or a salt without a body")),
        };
        if line.erased.unwrap_or(false) != content.is_none() {
            return Err(bad("the erased flag disagrees with the body"));
        }
        Ok(Entry {
            record: Record {
                index,
                leaf_hash,
                content,
            },
            time: line.time.ok_or_else(|| bad("event without a time"))?,
            kind: line.event_type.ok_or_else(|| bad("event without a type"))?,
        })
    }
}

impl<R: BufRead> Iterator for ExportReader<R> {
    type Item = Result<Entry, Stop>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(first) = self.first_event.take() {
            return Some(Ok(first));
        }
        loop {
            let text = match self.next_line() {
                Ok(text) => text?,
                Err(stop) => return Some(Err(stop)),
            };
            let line = match self.parse(&text) {
                Ok(line) => line,
                Err(stop) => return Some(Err(stop)),
            };
            if line.kind == "pending" {
                if let Err(stop) = self.check_pending(line) {
                    return Some(Err(stop));
                }
                continue;
            }
            if self.pending.load(Ordering::Relaxed) > 0 {
                return Some(Err(bad_line(self.line, "an event line after the pending events")));
            }
            return Some(self.entry(line));
        }
    }
}

async fn verify_export(path: PathBuf, verifier: NoteVerifier) -> anyhow::Result<()> {
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let checked_verifier = verifier.clone();
    let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<(VerifyOutcome, u64)> {
        let (header, checkpoints, events) = match ExportReader::open(BufReader::with_capacity(1 << 16, file)) {
            Ok(opened) => opened,
            Err(stop) => return Ok((export_outcome(Err(stop))?, 0)),
        };
        let pending = Arc::clone(&events.pending);
        if header.origin != checked_verifier.name() {
            return Err(UsageError(format!(
                "this export is of log `{}`, but the verifier key is for `{}`",
                header.origin,
                checked_verifier.name()
            ))
            .into());
        }
        let bar = progress_bar();
        let progress = Bar(bar.clone());
        progress.total(header.size);
        let verdict = audit_verify::verify_entries(
            events,
            &checkpoints,
            &checked_verifier,
            Some((header.size, header.root)),
            "the export's header",
            &progress,
        );
        bar.finish_and_clear();
        Ok((export_outcome(verdict)?, pending.load(Ordering::Relaxed)))
    })
    .await
    .context("the verification task failed")??;
    let (outcome, pending) = outcome;
    report(outcome, &verifier, &path.display().to_string())?;
    if pending > 0 {
        println!("pending: {pending} events not yet integrated when exported, each sealed correctly");
    }
    Ok(())
}

/// The outcome of verifying an export; an error when it could not be read.
fn export_outcome(verdict: Result<VerifyReport, Stop>) -> anyhow::Result<VerifyOutcome> {
    VerifyOutcome::from_verdict(verdict).map_err(|e| anyhow::Error::new(e).context("reading the export"))
}

// --- erase ---

/// Who asks for an erasure, as recorded: the OS user running the CLI.
fn actor() -> String {
    match std::env::var("USER") {
        Ok(user) if !user.is_empty() && !user.chars().any(char::is_control) => format!("cli:{user}"),
        _ => "cli".into(),
    }
}

async fn erase<S: AuditStore>(
    store: &S,
    ctx: &Context,
    index: u64,
    reason: &str,
    override_retention: bool,
) -> anyhow::Result<()> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(UsageError(format!(
            "--reason must be one line of 1 to {MAX_REASON} bytes (e.g. the request's reference)"
        ))
        .into());
    }
    let size = store.size().await?;
    if index >= size {
        return Err(StoreError::AuditBeyondEnd { requested: index, size }.into());
    }
    let event = store
        .events(&EventQuery::page(index, 1))
        .await?
        .into_iter()
        .find(|e| e.index == index)
        .ok_or_else(|| StoreError::Corrupt(format!("audit event {index} is missing")))?;
    if let Some(erasure) = &event.erasure {
        return Err(Refused(format!(
            "event {index} was already erased on {}: {}",
            rfc3339(erasure.at),
            erasure.reason
        ))
        .into());
    }
    if event.kind == "erasure" {
        return Err(Refused(format!(
            "event {index} records an erasure: erasure events are kept, they account for the bodies removed"
        ))
        .into());
    }
    let now = now();
    let retention = ctx.options.audit.retention;
    let kept_until = event.time.saturating_add(retention);
    let within_retention = now < kept_until;
    if within_retention && !override_retention {
        return Err(Refused(format!(
            "event {index} ({}) is within the retention period (audit.retention_days = {}) until {}: \
             pass --override-retention to erase it anyway (the override is recorded in the log)",
            rfc3339(event.time),
            retention / 86_400,
            rfc3339(kept_until)
        ))
        .into());
    }
    // The erasure event goes first: if the erasure then fails, the log
    // holds a record of an erasure that did not happen (harmless, and
    // `erase` can be run again), never a body gone without a record.
    let recorded = record(
        store,
        now,
        vec![EventKind::Erasure {
            index,
            reason: reason.to_owned(),
            retention_overridden: within_retention,
            actor: actor(),
        }],
    )
    .await?;
    if !store.erase(index, reason, now).await? {
        eprintln!("event {index} was erased concurrently");
        return Ok(());
    }
    eprintln!(
        "erased the body and salt of event {index} (its leaf hash stays); recorded as event {}{}",
        recorded.start,
        if within_retention {
            ", with the retention override"
        } else {
            ""
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::Ed25519KeyPair;
    use warden_audit::{Checkpoint, Frontier};
    use warden_store::audit_verify::{ProgressCounter, verify_entries};

    const ORIGIN: &str = "test.example/audit";

    fn signer() -> NoteSigner {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        NoteSigner::new(ORIGIN, Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()).unwrap()
    }

    /// A log of `n` key events as the store would hold it.
    fn log(n: u64) -> Vec<StoredEvent> {
        (0..n)
            .map(|i| {
                let kind = EventKind::KeyRetired { kid: format!("k{i}") };
                let (body, salt, leaf_hash) = AuditEvent::new(1_000 + i, kind).seal().unwrap().into_parts();
                StoredEvent {
                    index: i,
                    time: 1_000 + i,
                    kind: "key_retired".into(),
                    subject: None,
                    resource: None,
                    content: Some((body, salt)),
                    leaf_hash,
                    erasure: None,
                }
            })
            .collect()
    }

    fn root(events: &[StoredEvent]) -> Hash {
        let mut f = Frontier::new();
        for e in events {
            f.push(e.leaf_hash).unwrap();
        }
        f.root()
    }

    fn verify(
        events: Vec<StoredEvent>,
        checkpoints: &[(u64, String)],
        signer: &NoteSigner,
    ) -> Result<VerifyReport, String> {
        let expected = (events.len() as u64, root(&events));
        verify_entries(
            events.into_iter().map(|e| Ok(Entry::from(e))),
            checkpoints,
            &signer.verifier().unwrap(),
            Some(expected),
            "the state",
            &ProgressCounter::new(),
        )
        .map_err(|stop| match stop {
            Stop::Bad(m) => m,
            Stop::Failed(e) => panic!("{e}"),
        })
    }

    fn erase_at(events: &mut Vec<StoredEvent>, index: u64, with_record: bool) {
        let e = &mut events[index as usize];
        e.content = None;
        e.erasure = Some(warden_store::audit::Erasure {
            at: 5,
            reason: "gdpr".into(),
        });
        if with_record {
            let n = events.len() as u64;
            let kind = EventKind::Erasure {
                index,
                reason: "gdpr".into(),
                retention_overridden: false,
                actor: "cli".into(),
            };
            let (body, salt, leaf_hash) = AuditEvent::new(2_000, kind).seal().unwrap().into_parts();
            events.push(StoredEvent {
                index: n,
                time: 2_000,
                kind: "erasure".into(),
                subject: None,
                resource: None,
                content: Some((body, salt)),
                leaf_hash,
                erasure: None,
            });
        }
    }

    #[test]
    fn an_intact_log_verifies_with_its_checkpoints() {
        let signer = signer();
        let events = log(10);
        let cps = vec![
            (4, Checkpoint::new(ORIGIN, 4, root(&events[..4])).sign(&signer).unwrap()),
            (10, Checkpoint::new(ORIGIN, 10, root(&events)).sign(&signer).unwrap()),
        ];
        let report = verify(events, &cps, &signer).unwrap();
        assert_eq!((report.leaves, report.erased, report.checkpoints), (10, 0, 2));
    }

    #[test]
    fn a_recorded_erasure_passes_and_a_silent_one_is_named() {
        let signer = signer();
        let mut events = log(6);
        erase_at(&mut events, 2, true);
        let report = verify(events, &[], &signer).unwrap();
        assert_eq!((report.leaves, report.erased), (7, 1));

        let mut events = log(6);
        erase_at(&mut events, 3, false);
        let err = verify(events, &[], &signer).unwrap_err();
        assert!(err.contains("log entry 3") && err.contains("no erasure event"), "{err}");
    }

    #[test]
    fn columns_must_agree_with_the_body() {
        let signer = signer();
        let mut events = log(5);
        events[2].kind = "token_issued".into();
        let err = verify(events, &[], &signer).unwrap_err();
        assert!(err.contains("log entry 2") && err.contains("type"), "{err}");
        // A changed body is reported as tampered, not as a column problem.
        let mut events = log(5);
        events[1].time = 7;
        if let Some((body, _)) = &mut events[1].content {
            body[10] ^= 1;
        }
        let err = verify(events, &[], &signer).unwrap_err();
        assert!(err.contains("log entry 1") && err.contains("do not hash"), "{err}");
    }

    #[test]
    fn the_claimed_size_and_root_are_checked() {
        let signer = signer();
        let events = log(5);
        let claimed = (6, root(&events));
        let err = verify_entries(
            events.into_iter().map(|e| Ok(Entry::from(e))),
            &[],
            &signer.verifier().unwrap(),
            Some(claimed),
            "the state",
            &ProgressCounter::new(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Stop::Bad(m) if m.contains("log entry 5: missing")),
            "{err:?}"
        );
    }

    fn export_text(events: &[StoredEvent], checkpoints: &[(u64, String)]) -> Vec<u8> {
        let mut out = Vec::new();
        write_line(
            &mut out,
            &HeaderLine {
                kind: "header",
                format: EXPORT_FORMAT,
                version: EXPORT_VERSION,
                origin: ORIGIN,
                size: events.len() as u64,
                root: STANDARD.encode(root(events)),
                exported_at: 1,
            },
        )
        .unwrap();
        for (size, note) in checkpoints {
            write_line(
                &mut out,
                &CheckpointLine {
                    kind: "checkpoint",
                    size: *size,
                    time: 1,
                    note,
                },
            )
            .unwrap();
        }
        for e in events {
            write_line(&mut out, &EventLine::of(e)).unwrap();
        }
        out
    }

    fn verify_export_text(text: &[u8], signer: &NoteSigner) -> Result<VerifyReport, String> {
        let (header, checkpoints, events) = ExportReader::open(text).map_err(|s| format!("{s:?}"))?;
        assert_eq!(header.origin, ORIGIN);
        verify_entries(
            events,
            &checkpoints,
            &signer.verifier().unwrap(),
            Some((header.size, header.root)),
            "the export's header",
            &ProgressCounter::new(),
        )
        .map_err(|stop| match stop {
            Stop::Bad(m) => m,
            Stop::Failed(e) => panic!("{e}"),
        })
    }

    #[test]
    fn exports_round_trip_and_tampering_is_named() {
        let signer = signer();
        let mut events = log(9);
        erase_at(&mut events, 4, true);
        let cp = Checkpoint::new(ORIGIN, 10, root(&events)).sign(&signer).unwrap();
        let text = export_text(&events, &[(10, cp)]);
        let report = verify_export_text(&text, &signer).unwrap();
        assert_eq!((report.leaves, report.erased, report.checkpoints), (10, 1, 1));

        // One character of one body changed.
        let lines: Vec<&str> = std::str::from_utf8(&text).unwrap().lines().collect();
        let target = lines.iter().position(|l| l.contains("\"index\":6,")).unwrap();
        let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        tampered[target] = tampered[target].replace("k6", "k7");
        let err = verify_export_text(tampered.join("\n").as_bytes(), &signer).unwrap_err();
        assert!(err.contains("log entry 6"), "{err}");

        // A line dropped.
        let mut dropped: Vec<&str> = lines.clone();
        dropped.remove(target);
        let err = verify_export_text(dropped.join("\n").as_bytes(), &signer).unwrap_err();
        assert!(err.contains("log entry 6"), "{err}");

        // Garbage.
        let err = verify_export_text(b"{\"kind\":\"header\"}\n", &signer).unwrap_err();
        assert!(err.contains("export line 1"), "{err}");
    }
}
