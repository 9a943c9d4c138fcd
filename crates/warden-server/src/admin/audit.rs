//! The read-only audit API under `/api/v1/audit`, for tokens with the
//! `auditor` role or the `audit.read` scope: events, those still queued
//! for the sequencer (pending), the latest signed checkpoint, and RFC 9162
//! inclusion and consistency proofs (over integrated events).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use warden_store::{EventQuery, Store};

use super::AdminState;
use crate::access::Auditor;
use crate::error::ApiError;

/// Largest page of events.
const MAX_LIMIT: u32 = 1000;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Query of `GET /api/v1/audit/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    from: Option<u64>,
    limit: Option<u32>,
    #[serde(rename = "type")]
    kind: Option<String>,
    subject: Option<String>,
    resource: Option<String>,
    /// The outermost actor of a delegation (`agent:report-bot`).
    actor: Option<String>,
    /// `allow` or `deny` (access decisions only).
    decision: Option<String>,
    since: Option<u64>,
    until: Option<u64>,
}

/// `GET /api/v1/audit/events`.
pub async fn events<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    _: Auditor,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    if q.decision.as_deref().is_some_and(|d| d != "allow" && d != "deny") {
        return Err(ApiError::invalid_request("`decision` must be `allow` or `deny`"));
    }
    let found = state
        .app
        .store
        .events(&EventQuery {
            from: q.from.unwrap_or(0),
            limit,
            kind: q.kind,
            subject: q.subject,
            resource: q.resource,
            actor: q.actor,
            outcome: q.decision,
            since: q.since,
            until: q.until,
            ..EventQuery::default()
        })
        .await?;
    let next = found.last().map(|e| e.index + 1);
    let items: Vec<Value> = found
        .into_iter()
        .map(|e| {
            let (event, salt) = match &e.content {
                Some((body, salt)) => (
                    serde_json::from_slice::<Value>(body).unwrap_or(Value::Null),
                    Some(b64(salt.as_bytes())),
                ),
                None => (Value::Null, None),
            };
            json!({
                "index": e.index,
                "time": e.time,
                "type": e.kind,
                "subject": e.subject,
                "resource": e.resource,
                "event": event,
                "salt": salt,
                "leaf_hash": b64(&e.leaf_hash),
                "erased": e.erasure.as_ref().map(|x| json!({"at": x.at, "reason": x.reason})),
            })
        })
        .collect();
    Ok(Json(json!({"events": items, "next_from": next})))
}

/// Query of `GET /api/v1/audit/pending`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    /// Only events whose receipt is above this one (paging).
    after: Option<u64>,
    limit: Option<u32>,
}

/// `GET /api/v1/audit/pending`: events acknowledged and queued, not yet
/// in the Merkle log (no index, no proof yet), oldest first, with the
/// queue's depth and lag.
pub async fn pending<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    _: Auditor,
    query: Result<Query<PendingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let store = &state.app.store;
    let status = store.queue_status().await?;
    let queued = store.queued_events(q.after.unwrap_or(0), limit).await?;
    let items: Vec<Value> = queued
        .into_iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "queued_at_ms": e.queued_at_ms,
                "time": e.time,
                "type": e.kind,
                "subject": e.subject,
                "resource": e.resource,
                "event": serde_json::from_slice::<Value>(&e.body).unwrap_or(Value::Null),
                "salt": b64(e.salt.as_bytes()),
                "leaf_hash": b64(&e.leaf_hash),
            })
        })
        .collect();
    let next_after = items.last().and_then(|e| e.get("seq").cloned());
    Ok(Json(json!({
        "next_after": next_after,
        "depth": status.depth,
        "lag_ms": status.lag_ms(crate::state::now_ms()),
        "events": items,
    })))
}

/// `GET /api/v1/audit/checkpoint`: the latest signed checkpoint.
pub async fn checkpoint<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    _: Auditor,
) -> Result<Json<Value>, ApiError> {
    let Some(cp) = state.app.store.latest_checkpoint().await? else {
        return Err(ApiError::not_found("no checkpoint has been signed yet"));
    };
    Ok(Json(json!({"size": cp.size, "time": cp.time, "note": cp.note})))
}

/// Query of the inclusion proof.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    index: u64,
    size: u64,
}

/// `GET /api/v1/audit/proof/inclusion?index=&size=`.
pub async fn inclusion<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    _: Auditor,
    query: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let proof = state.app.store.inclusion_proof(q.index, q.size).await?;
    let root = state.app.store.root_at(q.size).await?;
    let leaf = state.app.store.leaf_hashes(q.index..q.index + 1).await?;
    Ok(Json(json!({
        "index": q.index,
        "size": q.size,
        "leaf_hash": leaf.first().map(|h| b64(h)),
        "root": b64(&root),
        "proof": proof.iter().map(|h| b64(h)).collect::<Vec<_>>(),
    })))
}

/// Query of the consistency proof.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// `GET /api/v1/audit/proof/consistency?from=&to=`.
pub async fn consistency<S: Store>(
    State(state): State<Arc<AdminState<S>>>,
    _: Auditor,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let proof = state.app.store.consistency_proof(q.from, q.to).await?;
    let old = state.app.store.root_at(q.from).await?;
    let new = state.app.store.root_at(q.to).await?;
    Ok(Json(json!({
        "from": q.from,
        "to": q.to,
        "from_root": b64(&old),
        "to_root": b64(&new),
        "proof": proof.iter().map(|h| b64(h)).collect::<Vec<_>>(),
    })))
}
