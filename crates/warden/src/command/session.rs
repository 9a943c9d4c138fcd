//! `warden session list|revoke`: the sessions people have open — dashboard
//! sessions (a session token each) and sign-ins of public clients such as
//! `warden login` (a refresh-token family each) — and ending them, one or
//! all of a person's (when someone leaves, or a laptop is lost).
//!
//! Ending is a revocation in the store: running servers apply it within a
//! second (at once over Redis when configured), and it is audited with the
//! operator who ran the command.

use serde_json::json;
use warden_audit::EventKind;
use warden_server::notice::Notice;
use warden_store::Store;

use super::{Context, now, rfc3339};
use crate::cli::{SessionCommand, SessionRevokeArgs};
use crate::exit::UsageError;
use crate::store_select::{StoreTask, with_store};

/// Most sessions listed.
const LIMIT: u32 = 1000;

/// One open session, as listed.
struct Open {
    kind: &'static str,
    id: String,
    subject: String,
    client_id: String,
    started: u64,
    last_used: Option<u64>,
    expires: u64,
}

/// `warden session …`.
pub async fn run(cmd: SessionCommand, ctx: &Context) -> anyhow::Result<()> {
    match cmd {
        SessionCommand::List { subject, json } => {
            let open = with_store(&ctx.options.storage, false, ListTask { subject }).await?;
            if json {
                for s in &open {
                    println!(
                        "{}",
                        json!({"kind": s.kind, "id": s.id, "subject": s.subject, "client_id": s.client_id,
                            "started_at": s.started, "last_used_at": s.last_used, "expires_at": s.expires})
                    );
                }
                return Ok(());
            }
            if open.is_empty() {
                eprintln!("no open sessions");
                return Ok(());
            }
            println!(
                "{:<10} {:<36} {:<14} {:<21} {:<21} ID",
                "KIND", "SUBJECT", "CLIENT", "STARTED", "LAST USED"
            );
            for s in &open {
                println!(
                    "{:<10} {:<36} {:<14} {:<21} {:<21} {}",
                    s.kind,
                    s.subject,
                    s.client_id,
                    rfc3339(s.started),
                    s.last_used.map_or_else(|| "-".to_owned(), rfc3339),
                    s.id
                );
            }
            Ok(())
        }
        SessionCommand::Revoke(args) => {
            if args.id.is_none() == args.subject.is_none() {
                return Err(UsageError("give exactly one of --id and --subject".into()).into());
            }
            let (ended, notices) = with_store(&ctx.options.storage, false, RevokeTask { args }).await?;
            for notice in notices {
                ctx.announce(notice).await;
            }
            println!("ended {ended} session(s)");
            Ok(())
        }
    }
}

struct ListTask {
    subject: Option<String>,
}

impl StoreTask for ListTask {
    type Output = Vec<Open>;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<Vec<Open>> {
        let t = now();
        let subject = self.subject.as_deref().map(warden_registry::subject::canonical);
        let mut open: Vec<Open> = store
            .active_sessions(subject.as_deref(), t, LIMIT)
            .await?
            .into_iter()
            .map(|s| Open {
                kind: "dashboard",
                id: s.jti,
                subject: s.subject,
                client_id: s.client_id,
                started: s.issued_at,
                last_used: None,
                expires: s.expires_at,
            })
            .collect();
        for (family, last) in store.live_families(subject.as_deref(), t, LIMIT).await? {
            open.push(Open {
                kind: "sign-in",
                id: family.id,
                subject: family.subject,
                client_id: family.client_id,
                started: family.created_at,
                last_used: Some(last),
                expires: family.expires_at,
            });
        }
        open.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| a.id.cmp(&b.id)));
        Ok(open)
    }
}

struct RevokeTask {
    args: SessionRevokeArgs,
}

impl StoreTask for RevokeTask {
    type Output = (usize, Vec<Notice>);

    async fn run<S: Store>(self, store: S) -> anyhow::Result<(usize, Vec<Notice>)> {
        let t = now();
        let reason = format!("session ended from the CLI by {}", super::operator());
        let subject = self.args.subject.as_deref().map(warden_registry::subject::canonical);
        let mut events = Vec::new();
        let mut notices = Vec::new();
        let dashboard = match (&self.args.id, &subject) {
            (Some(id), _) => store
                .find_session(id)
                .await?
                .filter(|s| s.ended_at.is_none())
                .into_iter()
                .collect(),
            (None, subject) => store.active_sessions(subject.as_deref(), t, LIMIT).await?,
        };
        for s in &dashboard {
            store.revoke_token(&s.jti, s.expires_at, t).await?;
            store.end_session(&s.jti, t).await?;
            notices.push(Notice::Revoked {
                jti: s.jti.clone(),
                exp: s.expires_at,
            });
            events.push(EventKind::TokenRevoked {
                jti: Some(s.jti.clone()),
                family: None,
                client_id: s.client_id.clone(),
                reason: reason.clone(),
            });
        }
        // Every one, in rounds of LIMIT (bounded: a round that ends
        // nothing ends the loop).
        let mut families = Vec::new();
        for _ in 0..1000 {
            let round: Vec<_> = store
                .live_families(subject.as_deref(), t, LIMIT)
                .await?
                .into_iter()
                .map(|(f, _)| f)
                .filter(|f| self.args.id.as_ref().is_none_or(|id| *id == f.id))
                .filter(|f| {
                    !families
                        .iter()
                        .any(|done: &warden_store::oauth::Family| done.id == f.id)
                })
                .collect();
            if round.is_empty() {
                break;
            }
            for f in &round {
                let revoked = store.revoke_family(&f.id, t).await?;
                notices.extend(revoked.into_iter().map(|(jti, exp)| Notice::Revoked { jti, exp }));
                events.push(EventKind::TokenRevoked {
                    jti: None,
                    family: Some(f.id.clone()),
                    client_id: f.client_id.clone(),
                    reason: reason.clone(),
                });
            }
            families.extend(round);
        }
        let ended = dashboard.len() + families.len();
        if ended == 0 {
            return Err(UsageError(match (&self.args.id, &subject) {
                (Some(id), _) => format!("no open session {id}"),
                (None, Some(s)) => format!("{s} has no open session"),
                (None, None) => "nothing to end".to_owned(),
            })
            .into());
        }
        super::audit::record(&store, t, events).await?;
        Ok((ended, notices))
    }
}
