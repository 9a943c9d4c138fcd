//! The Audit page: searchable events (newest first), an event's detail
//! with its inclusion proof checked against the latest signed checkpoint,
//! "verify the whole log" with progress, and allow/deny decisions over
//! time. Everything here needs `audit.read` on the audit log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use warden_audit::leaf::event_leaf_hash;
use warden_audit::{Checkpoint, Decision, EventType, NoteVerifier, verify_inclusion};
use warden_store::audit_verify::{VerifyOutcome, VerifyProgress, verify_store_log};
use warden_store::{EventQuery, Store, StoredEvent};

use super::DashboardState;
use super::chart::{self, Chart};
use super::form::{field, read_form};
use super::page::{self, Chrome, UiError, audit_log, html};
use super::session::{CSRF_FIELD, Session};
use crate::error::ApiError;
use crate::time::readable as time;

/// Events per page.
const PAGE: u32 = 50;
/// The longest range the chart covers (90 days).
const MAX_CHART_SPAN: u64 = 90 * 86_400;
/// Verification jobs remembered (finished ones are dropped oldest first).
const MAX_JOBS: usize = 16;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Checks `audit.read` on the audit log, audited; the page's chrome.
async fn authorize<S: Store>(
    state: &DashboardState<S>,
    session: &Session,
    headers: &HeaderMap,
    title: &str,
) -> Result<Chrome, UiError> {
    let chrome = Chrome::new(state, session, "audit", title);
    session
        .call
        .authorize(state, "audit.read", &audit_log())
        .await
        .map_err(|e| UiError::within(e, chrome.clone(), headers))?;
    Ok(chrome)
}

/// The search form's fields (all optional; empty means any).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Search {
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Subject column (the principal, client or key).
    pub subject: String,
    /// The outermost actor (an agent acting for the subject).
    pub actor: String,
    /// Resource column.
    pub resource: String,
    /// `allow` or `deny` (access decisions).
    pub decision: String,
    /// From this date (`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`, UTC).
    pub since: String,
    /// Before this date.
    pub until: String,
    /// Show events before this index (the next page).
    pub before: Option<u64>,
}

impl Search {
    fn query_string(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("type", &self.kind),
            ("subject", &self.subject),
            ("actor", &self.actor),
            ("resource", &self.resource),
            ("decision", &self.decision),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

/// One row of the events table.
#[derive(Debug)]
pub struct Row {
    index: u64,
    time: String,
    kind: String,
    subject: String,
    actor: String,
    resource: String,
    decision: String,
    erased: bool,
}

fn row(e: &StoredEvent) -> Row {
    let body: Value = e
        .content
        .as_ref()
        .and_then(|(b, _)| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let actor = match body.get("actor_chain").and_then(Value::as_array) {
        Some(chain) if !chain.is_empty() => chain.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" → "),
        _ => text("actor"),
    };
    Row {
        index: e.index,
        time: time(e.time),
        kind: e.kind.clone(),
        subject: e.subject.clone().unwrap_or_default(),
        actor,
        resource: e.resource.clone().unwrap_or_default(),
        decision: text("decision"),
        erased: e.content.is_none(),
    }
}

#[derive(Template)]
#[template(path = "ui/audit.html")]
struct AuditPage {
    chrome: Chrome,
    search: Search,
    types: &'static [&'static str],
    rows: Vec<Row>,
    older: Option<String>,
    newest: Option<String>,
    size: u64,
    chart: Chart,
    chart_from: String,
    chart_to: String,
    checkpoint: Option<(u64, String)>,
    /// Events queued and not yet integrated, and the oldest one's wait in
    /// milliseconds.
    pending: (u64, u64),
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_request(e.to_string())
}

/// `GET /ui/audit?type=&subject=&resource=&decision=&since=&until=&before=`
pub async fn page<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
    query: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, UiError> {
    let chrome = authorize(&state, &session, &headers, "Audit log").await?;
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let Query(search) = query.map_err(|e| within(ApiError::invalid_request(e.body_text())))?;
    let date = |text: &str, name: &str| -> Result<Option<u64>, UiError> {
        if text.is_empty() {
            return Ok(None);
        }
        crate::time::parse(text).map(Some).ok_or_else(|| {
            within(bad(format!(
                "`{name}` must be a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)"
            )))
        })
    };
    let since = date(&search.since, "since")?;
    let until = date(&search.until, "until")?;
    let outcome = match search.decision.as_str() {
        "" => None,
        text => match Decision::parse(text) {
            Some(d) => Some(d.as_str().to_owned()),
            None => return Err(within(bad("`decision` must be allow or deny"))),
        },
    };
    let some = |s: &String| (!s.is_empty()).then(|| s.trim().to_owned());
    let head = state.app.store.tree_head().await.map_err(|e| within(e.into()))?;
    let found = state
        .app
        .store
        .events(&EventQuery {
            from: 0,
            limit: PAGE,
            kind: some(&search.kind),
            subject: some(&search.subject),
            actor: some(&search.actor),
            resource: some(&search.resource),
            since,
            until,
            before: Some(search.before.unwrap_or(head.size)),
            outcome,
        })
        .await
        .map_err(|e| within(e.into()))?;
    let rows: Vec<Row> = found.iter().map(row).collect();
    let qs = search.query_string();
    let join = |extra: String| {
        if qs.is_empty() {
            format!("/ui/audit?{extra}")
        } else {
            format!("/ui/audit?{qs}&{extra}")
        }
    };
    let older = (found.len() == PAGE as usize)
        .then(|| found.last().map(|e| join(format!("before={}", e.index))))
        .flatten();
    let newest = search.before.is_some().then(|| {
        if qs.is_empty() {
            "/ui/audit".to_owned()
        } else {
            format!("/ui/audit?{qs}")
        }
    });
    // Decisions over the last 24 hours, by hour (or the searched range, at
    // most its last 90 days: the chart groups every event it covers).
    let now = session.call.now;
    let to = until.unwrap_or(now - now % 3600 + 3600);
    let from = since
        .unwrap_or(to.saturating_sub(24 * 3600))
        .min(to.saturating_sub(1))
        .max(to.saturating_sub(MAX_CHART_SPAN));
    let span = to - from;
    let bucket = if span <= 2 * 86_400 {
        3600
    } else {
        span.div_ceil(48).div_ceil(3600) * 3600
    };
    let from = from - from % bucket;
    let buckets = u32::try_from((to - from).div_ceil(bucket)).unwrap_or(48).clamp(1, 96);
    let activity = state
        .app
        .store
        .audit_activity(from, from + u64::from(buckets) * bucket, bucket)
        .await
        .map_err(|e| within(e.into()))?;
    let label = |t: u64| {
        let full = time(t);
        if bucket < 86_400 {
            full.get(11..16).unwrap_or_default().to_owned()
        } else {
            full.get(5..10).unwrap_or_default().to_owned()
        }
    };
    let chart = chart::decisions(&activity, from, bucket, buckets, label);
    let checkpoint = state
        .app
        .store
        .latest_checkpoint()
        .await
        .map_err(|e| within(e.into()))?
        .map(|c| (c.size, time(c.time)));
    let queue = state.app.store.queue_status().await.map_err(|e| within(e.into()))?;
    let pending = (queue.depth, queue.lag_ms(crate::state::now_ms()));
    let page = AuditPage {
        chrome,
        search,
        types: EventType::NAMES,
        rows,
        older,
        newest,
        size: head.size,
        chart,
        chart_from: time(from),
        chart_to: time(from + u64::from(buckets) * bucket),
        checkpoint,
        pending,
    };
    Ok(html(&state, &session, &page))
}

/// What the detail page shows of an inclusion check.
#[derive(Debug)]
pub struct ProofView {
    /// Whether everything checked out.
    pub verified: bool,
    /// What was checked, or what failed.
    pub summary: String,
    /// The checkpoint's size and signing time.
    pub checkpoint_size: u64,
    /// When it was signed.
    pub checkpoint_time: String,
    /// The signed note.
    pub note: String,
    /// The root it signs (base64).
    pub root: String,
    /// The proof's hashes (base64).
    pub path: Vec<String>,
}

#[derive(Template)]
#[template(path = "ui/audit_event.html")]
struct EventPage {
    chrome: Chrome,
    row: Row,
    body: String,
    leaf_hash: String,
    body_matches: Option<bool>,
    erasure: Option<(String, String)>,
    proof: Option<ProofView>,
    pending: bool,
    vkey: String,
}

/// Checks that leaf `index` with `leaf_hash` is in the tree the latest
/// checkpoint signs: the note's signature with the log's key, then the
/// RFC 9162 inclusion proof against the signed root (not the store's).
pub fn check_inclusion(
    verifier: &NoteVerifier,
    note: &str,
    signed_at: u64,
    index: u64,
    leaf_hash: &warden_audit::Hash,
    proof: Result<Vec<warden_audit::Hash>, String>,
) -> ProofView {
    let mut view = ProofView {
        verified: false,
        summary: String::new(),
        checkpoint_size: 0,
        checkpoint_time: time(signed_at),
        note: note.to_owned(),
        root: String::new(),
        path: Vec::new(),
    };
    let checkpoint = match Checkpoint::open(note, verifier) {
        Ok(c) => c,
        Err(e) => {
            view.summary = format!("The latest checkpoint does not verify with the log's key: {e}");
            return view;
        }
    };
    view.checkpoint_size = checkpoint.size;
    view.root = b64(&checkpoint.root);
    let proof = match proof {
        Ok(p) => p,
        Err(e) => {
            view.summary = format!("No inclusion proof could be read: {e}");
            return view;
        }
    };
    view.path = proof.iter().map(|h| b64(h)).collect();
    match verify_inclusion(leaf_hash, index, checkpoint.size, &proof, &checkpoint.root) {
        Ok(()) => {
            view.verified = true;
            view.summary = format!(
                "Event {index} is included in the log of {} events whose root the checkpoint signs; \
                 the checkpoint's signature verifies with the log's key.",
                checkpoint.size
            );
        }
        Err(e) => view.summary = format!("The inclusion proof does NOT verify against the signed root: {e}"),
    }
    view
}

/// `GET /ui/audit/events/{index}`
pub async fn event<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
    Path(index): Path<String>,
) -> Result<Response, UiError> {
    let chrome = authorize(&state, &session, &headers, "Audit event").await?;
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let index: u64 = index
        .parse()
        .map_err(|_| within(bad("the event index must be a number")))?;
    let found = state
        .app
        .store
        .events(&EventQuery::page(index, 1))
        .await
        .map_err(|e| within(e.into()))?;
    let Some(e) = found.into_iter().find(|e| e.index == index) else {
        return Err(within(ApiError::not_found(format!("there is no event {index}"))));
    };
    let (body, body_matches) = match &e.content {
        Some((b, salt)) => {
            let pretty = serde_json::from_slice::<Value>(b)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| String::from_utf8_lossy(b).into_owned());
            (pretty, Some(event_leaf_hash(salt, b) == e.leaf_hash))
        }
        None => (String::new(), None),
    };
    let latest = state
        .app
        .store
        .latest_checkpoint()
        .await
        .map_err(|e| within(e.into()))?;
    let (proof, pending) = match latest {
        Some(cp) if cp.size > index => {
            let path = state
                .app
                .store
                .inclusion_proof(index, cp.size)
                .await
                .map_err(|e| e.to_string());
            (
                Some(check_inclusion(
                    &state.ui.verifier,
                    &cp.note,
                    cp.time,
                    index,
                    &e.leaf_hash,
                    path,
                )),
                false,
            )
        }
        _ => (None, true),
    };
    let page = EventPage {
        chrome: Chrome {
            title: format!("Audit event {index}"),
            ..chrome.clone()
        },
        row: row(&e),
        body,
        leaf_hash: b64(&e.leaf_hash),
        body_matches,
        erasure: e.erasure.as_ref().map(|x| (time(x.at), x.reason.clone())),
        proof,
        pending,
        vkey: state.ui.vkey.clone(),
    };
    Ok(html(&state, &session, &page))
}

/// A running or finished verification of the whole log.
#[derive(Debug, Default)]
pub struct VerifyJob {
    total: AtomicU64,
    checked: AtomicU64,
    outcome: Mutex<Option<Result<String, String>>>,
    started: u64,
    by: String,
}

impl VerifyProgress for VerifyJob {
    fn total(&self, n: u64) {
        self.total.store(n, Ordering::Relaxed);
    }
    fn checked(&self, n: u64) {
        self.checked.store(n, Ordering::Relaxed);
    }
}

/// The verification jobs of this replica, by id.
#[derive(Debug, Default)]
pub struct VerifyJobs(Mutex<Vec<(String, Arc<VerifyJob>)>>);

impl VerifyJobs {
    fn get(&self, id: &str) -> Option<Arc<VerifyJob>> {
        let jobs = self.0.lock().ok()?;
        jobs.iter().find(|(k, _)| k == id).map(|(_, j)| Arc::clone(j))
    }

    /// The running job, or `make()`'s new one (`true`), under one lock:
    /// at most one verification runs at a time on a replica.
    fn join_or_insert(
        &self,
        make: impl FnOnce() -> (String, Arc<VerifyJob>),
    ) -> Option<(String, Arc<VerifyJob>, bool)> {
        let mut jobs = self.0.lock().ok()?;
        let running = jobs
            .iter()
            .find(|(_, j)| j.outcome.lock().map(|o| o.is_none()).unwrap_or(false));
        if let Some((k, j)) = running {
            return Some((k.clone(), Arc::clone(j), false));
        }
        if jobs.len() >= MAX_JOBS {
            jobs.remove(0);
        }
        let (id, job) = make();
        jobs.push((id.clone(), Arc::clone(&job)));
        Some((id, job, true))
    }
}

#[derive(Template)]
#[template(path = "ui/verify.html")]
struct VerifyFragment {
    id: String,
    total: u64,
    checked: u64,
    percent: u64,
    outcome: Option<Result<String, String>>,
    started: String,
    by: String,
}

fn fragment(id: &str, job: &VerifyJob) -> VerifyFragment {
    let total = job.total.load(Ordering::Relaxed);
    let outcome = job.outcome.lock().ok().and_then(|o| o.clone());
    let checked = if outcome.is_some() {
        total
    } else {
        job.checked.load(Ordering::Relaxed).min(total)
    };
    VerifyFragment {
        id: id.to_owned(),
        total,
        checked,
        percent: (checked * 100)
            .checked_div(total)
            .unwrap_or(if outcome.is_some() { 100 } else { 0 }),
        outcome,
        started: time(job.started),
        by: job.by.clone(),
    }
}

/// `POST /ui/audit/verify` (CSRF): starts verifying the whole log (or joins
/// the verification already running) and answers its progress fragment.
pub async fn start_verify<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    request: Request,
) -> Result<Response, UiError> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let fields = read_form(body).await?;
    let chrome = Chrome::new(&state, &session, "audit", "Audit log");
    session
        .check_csrf(&state, headers, field(&fields, CSRF_FIELD).unwrap_or_default())
        .map_err(|e| UiError::within(e, chrome.clone(), headers))?;
    session
        .call
        .authorize(&state, "audit.read", &audit_log())
        .await
        .map_err(|e| UiError::within(e, chrome.clone(), headers))?;
    let started = session.call.now;
    let by = session.principal().to_owned();
    let Some((id, job, fresh)) = state.ui.jobs.join_or_insert(|| {
        let job = Arc::new(VerifyJob {
            started,
            by,
            ..VerifyJob::default()
        });
        (crate::http::request_id::new(), job)
    }) else {
        return Err(UiError::within(
            ApiError::internal("verification jobs unavailable"),
            chrome,
            headers,
        ));
    };
    if fresh {
        let store = state.app.store.clone();
        let verifier = state.ui.verifier.clone();
        let running = Arc::clone(&job);
        tokio::spawn(async move {
            let progress: Arc<dyn VerifyProgress> = running.clone();
            let result = match verify_store_log(store, verifier, progress).await {
                Ok(VerifyOutcome::Verified(r)) => Ok(format!(
                    "The audit log verifies: {} events ({} erased), {} signed checkpoints, root {}.",
                    r.leaves,
                    r.erased,
                    r.checkpoints,
                    b64(&r.root)
                )),
                Ok(VerifyOutcome::Failed(problem)) => Err(format!("Verification FAILED: {problem}")),
                Err(e) => {
                    tracing::error!(error = %e, "the dashboard's log verification could not read the log");
                    Err("The log could not be read to the end; see the server log, and try again.".to_owned())
                }
            };
            if let Ok(mut o) = running.outcome.lock() {
                *o = Some(result);
            }
        });
    }
    Ok(page::render(axum::http::StatusCode::OK, &fragment(&id, &job)).into_response())
}

/// `GET /ui/audit/verify/{job}`: the progress fragment (polled by htmx
/// until the job ends). Not audited per poll: starting it was.
pub async fn verify_status<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "audit", "Audit log");
    if !session.call.may(&state, "audit.read", &audit_log()) {
        return Err(UiError::within(
            ApiError::access_denied("reading the audit log is not allowed"),
            chrome,
            &headers,
        ));
    }
    let Some(job) = state.ui.jobs.get(&id) else {
        return Err(UiError::within(
            ApiError::not_found("that verification is not known here (it may have run on another replica)"),
            chrome,
            &headers,
        ));
    };
    Ok(page::render(axum::http::StatusCode::OK, &fragment(&id, &job)).into_response())
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::Ed25519KeyPair;
    use warden_audit::{MemoryTree, NoteSigner, merkle};

    use super::*;

    fn signer(name: &str) -> NoteSigner {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        NoteSigner::new(name, Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()).unwrap()
    }

    fn leaves(n: u8) -> Vec<warden_audit::Hash> {
        (0..n).map(|i| merkle::leaf_hash(&[i])).collect()
    }

    #[test]
    fn a_proof_verifies_only_against_the_signed_root_and_key() {
        let log = signer("warden.test/audit");
        let all = leaves(7);
        let tree = MemoryTree::from_leaves(all.clone());
        let note = Checkpoint::new("warden.test/audit", 7, merkle::root(&all))
            .sign(&log)
            .unwrap();
        let proof = |i: u64| Ok(merkle::inclusion_proof(&tree, i, 7).unwrap());
        let verifier = log.verifier().unwrap();

        let ok = check_inclusion(&verifier, &note, 0, 3, &all[3], proof(3));
        assert!(ok.verified, "{}", ok.summary);
        assert_eq!((ok.checkpoint_size, ok.path.len()), (7, 3));

        // Another leaf at that index (a changed event), or another index.
        let changed = merkle::leaf_hash(b"changed");
        assert!(!check_inclusion(&verifier, &note, 0, 3, &changed, proof(3)).verified);
        assert!(!check_inclusion(&verifier, &note, 0, 4, &all[3], proof(3)).verified);
        // A checkpoint signed by another key, or a note edited after signing.
        let other = signer("warden.test/audit").verifier().unwrap();
        let refused = check_inclusion(&other, &note, 0, 3, &all[3], proof(3));
        assert!(
            !refused.verified && refused.summary.contains("does not verify"),
            "{}",
            refused.summary
        );
        let forged = note.replacen("\n7\n", "\n6\n", 1);
        assert!(!check_inclusion(&verifier, &forged, 0, 3, &all[3], proof(3)).verified);
        // A proof for another tree (the store's, rewritten) does not fit the signed root.
        let mut rewritten = all.clone();
        rewritten[6] = changed;
        let other_tree = MemoryTree::from_leaves(rewritten);
        let path = Ok(merkle::inclusion_proof(&other_tree, 3, 7).unwrap());
        assert!(!check_inclusion(&verifier, &note, 0, 3, &all[3], path).verified);
        // No proof at all.
        assert!(!check_inclusion(&verifier, &note, 0, 3, &all[3], Err("down".into())).verified);
    }
}
