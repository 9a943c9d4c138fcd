//! The Keys and clients page: signing keys with their state and overlap
//! expiry (`key.read` on the key ring), clients with their grants, scopes
//! and last use (`client.read`), and token issuance and denial rates from
//! the audit log. No key material is ever shown: ids, algorithms and
//! times only.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use warden_audit::{Decision, EventType};
use warden_keys::KeyState;
use warden_policy::Resource;
use warden_store::Store;

use super::DashboardState;
use super::page::{Chrome, UiError, html, key_ring};
use super::session::Session;
use crate::error::ApiError;
use crate::time::readable as time;

/// Which activity rows a rate counts.
type Pick = dyn Fn(&warden_store::ActivityCount) -> bool;

/// A signing key's row.
#[derive(Debug)]
pub struct KeyRow {
    kid: String,
    alg: String,
    state: &'static str,
    created: String,
    note: String,
}

/// A client's row.
#[derive(Debug)]
pub struct ClientRow {
    id: String,
    kind: String,
    grants: String,
    scopes: String,
    roles: String,
    auth: &'static str,
    dpop: bool,
    disabled: bool,
    last_used: String,
}

/// One rate line: what, last hour, last 24 hours.
#[derive(Debug)]
pub struct Rate {
    label: &'static str,
    hour: u64,
    day: u64,
    per_minute: String,
}

#[derive(Template)]
#[template(path = "ui/keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    clients: Option<Vec<ClientRow>>,
    rates: Option<Vec<Rate>>,
}

fn key_row(record: &warden_keys::KeyRecord, state: KeyState) -> KeyRow {
    let note = match state {
        KeyState::Pending { from } => format!("signs from {}", time(from)),
        KeyState::Active => "signs new tokens".to_owned(),
        KeyState::Overlap { until } => format!("verifies until {} (overlap), then retirable", time(until)),
        KeyState::Expired => "no valid token can carry it; removed at the next sweep".to_owned(),
        KeyState::Retired { at } => format!("withdrawn {}", time(at)),
    };
    KeyRow {
        kid: record.kid.clone(),
        alg: record.alg.as_str().to_owned(),
        state: state.name(),
        created: time(record.created_at),
        note,
    }
}

/// `GET /ui/keys`
pub async fn page<S: Store>(
    State(state): State<Arc<DashboardState<S>>>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let chrome = Chrome::new(&state, &session, "keys", "Keys and clients");
    let within = |e: ApiError| UiError::within(e, chrome.clone(), &headers);
    let call = &session.call;
    call.authorize(&state, "key.read", &key_ring()).await.map_err(within)?;
    let now = call.now;
    let mut keys: Vec<KeyRow> = state
        .app
        .manager
        .list(now)
        .await
        .map_err(|e| within(e.into()))?
        .iter()
        .map(|(r, s)| key_row(r, *s))
        .collect();
    keys.reverse();
    // Clients are their own resource: a person may see keys but not
    // clients (their names say what runs where).
    let clients = if call.may(&state, "client.read", &Resource::new("Client", "*")) {
        call.audit_listing(&state, "client.read", "Client::*")
            .await
            .map_err(within)?;
        let all = state.app.store.list_clients().await.map_err(|e| within(e.into()))?;
        Some(
            all.iter()
                .map(|c| ClientRow {
                    id: c.client_id.clone(),
                    kind: c.kind.as_str().to_owned(),
                    grants: c.grants.join(", "),
                    scopes: c.scopes.join(" "),
                    roles: c.roles.join(", "),
                    auth: match c.auth {
                        warden_store::oauth::ClientAuth::Secret { .. } => "client secret",
                        warden_store::oauth::ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
                        warden_store::oauth::ClientAuth::None => "none (public client)",
                    },
                    dpop: c.require_dpop,
                    disabled: c.disabled,
                    last_used: c.last_used_at.map_or_else(|| "never".to_owned(), time),
                })
                .collect(),
        )
    } else {
        None
    };
    // The rates come from the audit log: only for those who may read it.
    let rates = if call.may(&state, "audit.read", &super::page::audit_log()) {
        Some(rates(&state, now).await.map_err(within)?)
    } else {
        None
    };
    let page = KeysPage {
        chrome,
        keys,
        clients,
        rates,
    };
    Ok(html(&state, &session, &page))
}

/// Token issuance and denials over the last hour and day.
async fn rates<S: Store>(state: &DashboardState<S>, now: u64) -> Result<Vec<Rate>, ApiError> {
    let since = now.saturating_sub(86_400);
    let activity = state.app.store.audit_activity(since, now + 1, 3600).await?;
    let hour_start = now.saturating_sub(3600);
    let count = |pick: &Pick, from: u64| -> u64 {
        activity
            .iter()
            .filter(|a| a.bucket_start + 3600 > from && pick(a))
            .map(|a| a.count)
            .sum()
    };
    let lines: [(&'static str, Box<Pick>); 5] = [
        (
            "Access tokens issued",
            Box::new(|a| a.kind == EventType::TokenIssued.as_str()),
        ),
        ("Refreshed", Box::new(|a| a.kind == EventType::TokenRefreshed.as_str())),
        (
            "Exchanged (delegation)",
            Box::new(|a| a.kind == EventType::TokenExchanged.as_str()),
        ),
        (
            "Requests denied",
            Box::new(|a| {
                a.kind == EventType::AccessDecision.as_str() && a.outcome.as_deref() == Some(Decision::Deny.as_str())
            }),
        ),
        (
            "Failed client authentications",
            Box::new(|a| a.kind == EventType::ClientAuthFailed.as_str()),
        ),
    ];
    Ok(lines
        .iter()
        .map(|(label, pick)| {
            let hour = count(pick.as_ref(), hour_start);
            let day = count(pick.as_ref(), since);
            Rate {
                label,
                hour,
                day,
                per_minute: format!("{:.1}", hour as f64 / 60.0),
            }
        })
        .collect())
}
