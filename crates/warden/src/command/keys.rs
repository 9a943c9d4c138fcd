//! `warden keys list | rotate | retire | sweep | jwks`. Rotations and
//! retirements are recorded in the audit log before they are reported.

use serde_json::json;
use warden_audit::EventKind;
use warden_jose::{Algorithm, JwkSet};
use warden_keys::{KeyState, Keyring};
use warden_store::Store;

use super::{Context, audit, now, rfc3339};
use crate::cli::KeysCommand;
use crate::exit::UsageError;
use crate::store_select::{StoreTask, with_store};

/// Runs a keys subcommand.
pub async fn run(cmd: KeysCommand, ctx: &Context) -> anyhow::Result<()> {
    let creates = matches!(cmd, KeysCommand::Rotate { .. });
    with_store(&ctx.options.storage, creates, KeysTask { cmd, ctx }).await
}

struct KeysTask<'a> {
    cmd: KeysCommand,
    ctx: &'a Context,
}

impl StoreTask for KeysTask<'_> {
    type Output = ();

    async fn run<S: Store>(self, store: S) -> anyhow::Result<()> {
        let now = now();
        let ctx = self.ctx;
        match self.cmd {
            KeysCommand::List { json } => {
                let ring = Keyring::new(store.list_keys().await?, ctx.options.rotation);
                print_list(&ring, now, json);
            }
            KeysCommand::Jwks => {
                let ring = Keyring::new(store.list_keys().await?, ctx.options.rotation);
                let keys = ring
                    .published(now)
                    .into_iter()
                    .map(|r| r.verifying_key())
                    .collect::<Result<Vec<_>, _>>()?;
                println!("{}", serde_json::to_string_pretty(&JwkSet::from_keys(keys).to_json())?);
            }
            KeysCommand::Rotate { alg, immediately } => {
                let alg = match alg {
                    Some(name) => Algorithm::parse(&name)?,
                    None => ctx.options.key_algorithm,
                };
                if !ctx.options.algorithms.contains(alg) {
                    return Err(UsageError(format!(
                        "--alg {alg} is not in tokens.algorithms: tokens it signs would be rejected"
                    ))
                    .into());
                }
                let manager = ctx.key_manager(store, true).await?;
                let previous = manager.keyring().await?.signing(now).ok().map(|r| r.kid.clone());
                let record = manager.rotate(alg, now, immediately).await?;
                let mut events = vec![EventKind::KeyCreated {
                    kid: record.kid.clone(),
                    alg: alg.as_str().to_owned(),
                }];
                if record.activates_at <= now {
                    events.push(EventKind::KeyRotated {
                        kid: record.kid.clone(),
                        previous_kid: previous,
                        alg: alg.as_str().to_owned(),
                    });
                }
                audit::record(manager.store(), now, events).await?;
                ctx.announce(warden_server::notice::Notice::Keys).await;
                println!("{}", record.kid);
                if record.activates_at <= now {
                    eprintln!("created {alg} key {}: published and signing now", record.kid);
                } else {
                    eprintln!(
                        "created {alg} key {}: published now, signs from {} (after the {} s publication lead)",
                        record.kid,
                        rfc3339(record.activates_at),
                        record.activates_at - now
                    );
                }
            }
            KeysCommand::Retire { kid, force } => {
                let manager = ctx.key_manager(store, false).await?;
                manager.retire(&kid, now, force).await?;
                audit::record(manager.store(), now, vec![EventKind::KeyRetired { kid: kid.clone() }]).await?;
                ctx.announce(warden_server::notice::Notice::Keys).await;
                eprintln!("retired key {kid}: it is no longer published");
            }
            KeysCommand::Sweep => {
                let manager = ctx.key_manager(store, false).await?;
                let retired = manager.sweep(now).await?;
                let events = retired
                    .iter()
                    .map(|kid| EventKind::KeyRetired { kid: kid.clone() })
                    .collect();
                audit::record(manager.store(), now, events).await?;
                for kid in &retired {
                    println!("{kid}");
                }
                eprintln!("retired {} expired key(s)", retired.len());
            }
        }
        Ok(())
    }
}

fn state_detail(state: KeyState) -> String {
    match state {
        KeyState::Pending { from } => format!("signs from {}", rfc3339(from)),
        KeyState::Overlap { until } => format!("published until {}", rfc3339(until)),
        KeyState::Retired { at } => format!("retired {}", rfc3339(at)),
        KeyState::Active | KeyState::Expired => String::new(),
    }
}

fn print_list(ring: &Keyring, now: u64, json: bool) {
    let states = ring.states(now);
    if json {
        let rows: Vec<_> = states
            .iter()
            .map(|(r, s)| {
                json!({
                    "kid": r.kid, "alg": r.alg.as_str(), "state": s.name(),
                    "created_at": r.created_at, "activates_at": r.activates_at, "retired_at": r.retired_at,
                    "published": s.is_published(),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    if states.is_empty() {
        eprintln!("no keys yet: create one with `warden keys rotate`");
        return;
    }
    println!("{:<44}  {:<6}  {:<8}  {:<20}  DETAIL", "KID", "ALG", "STATE", "CREATED");
    for (r, s) in states {
        println!(
            "{:<44}  {:<6}  {:<8}  {:<20}  {}",
            r.kid,
            r.alg,
            s.name(),
            rfc3339(r.created_at),
            state_detail(s)
        );
    }
}
