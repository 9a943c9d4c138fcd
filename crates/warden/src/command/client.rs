//! `warden client create | list | show | disable | enable | rotate-secret`:
//! client administration on the store directly (the admin HTTP API does
//! the same over the network). Changes are audited as `cli` admin actions.

use anyhow::anyhow;
use warden_audit::EventKind;
use warden_server::oauth::clients::{self, ClientSpec, SecretHasher};
use warden_store::Store;
use warden_store::oauth::ClientKind;

use super::{Context, audit, now, rfc3339};
use crate::cli::{ClientCommand, ClientCreateArgs};
use crate::exit::UsageError;
use crate::store_select::{StoreTask, with_store};

/// Runs a client subcommand.
pub async fn run(cmd: ClientCommand, ctx: &Context) -> anyhow::Result<()> {
    with_store(
        &ctx.options.storage,
        matches!(cmd, ClientCommand::Create(_)),
        ClientTask { cmd, ctx },
    )
    .await
}

struct ClientTask<'a> {
    cmd: ClientCommand,
    ctx: &'a Context,
}

fn spec(args: &ClientCreateArgs) -> anyhow::Result<ClientSpec> {
    let jwks = match &args.jwks {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| UsageError(format!("--jwks {}: {e}", path.display())))?;
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| UsageError(format!("--jwks {}: not JSON: {e}", path.display())))?,
            )
        }
        None => None,
    };
    Ok(ClientSpec {
        name: args.name.clone(),
        kind: ClientKind::parse(&args.kind)
            .ok_or_else(|| UsageError("--kind must be service, agent or public".into()))?,
        grants: args.grants.clone(),
        scopes: args.scopes.clone(),
        roles: args.roles.clone(),
        audiences: args.audiences.clone(),
        auth: args.auth.clone(),
        jwks,
        tenant: args.tenant.clone(),
        redirect_uris: args.redirect_uris.clone(),
        require_dpop: args.require_dpop,
    })
}

/// The secret hasher of the store's master key (checked against the
/// fingerprint the store recorded).
async fn hasher<S: Store>(ctx: &Context, store: &S, create: bool) -> anyhow::Result<SecretHasher> {
    let master = ctx.store_master_key(store, create).await?;
    warden_store::KeyManager::open(store.clone(), master.clone(), ctx.options.rotation).await?;
    Ok(SecretHasher::from_master(&master))
}

fn admin_event(action: &str, target: &str) -> EventKind {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    EventKind::AdminAction {
        principal: format!("cli:{user}"),
        action: action.to_owned(),
        target: target.to_owned(),
    }
}

fn usage(e: clients::ClientError) -> anyhow::Error {
    match e {
        clients::ClientError::Invalid(m) => UsageError(m).into(),
        clients::ClientError::Exists(_) | clients::ClientError::NotFound(_) => UsageError(e.to_string()).into(),
        other => anyhow!(other),
    }
}

impl StoreTask for ClientTask<'_> {
    type Output = ();

    async fn run<S: Store>(self, store: S) -> anyhow::Result<()> {
        let now = now();
        match self.cmd {
            ClientCommand::Create(args) => {
                let spec = spec(&args)?;
                let hasher = hasher(self.ctx, &store, true).await?;
                let (record, secret) = clients::create(&store, &hasher, &spec, now).await.map_err(usage)?;
                audit::record(&store, now, vec![admin_event("client.create", &record.client_id)]).await?;
                if args.json {
                    let mut v = clients::describe(&record);
                    if let (Some(s), Some(obj)) = (&secret, v.as_object_mut()) {
                        obj.insert("client_secret".into(), serde_json::Value::String(s.0.to_string()));
                    }
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    println!("client_id: {}", record.client_id);
                    if let Some(s) = &secret {
                        println!("client_secret: {}", s.0.as_str());
                        eprintln!(
                            "store the secret now: it is not shown again (`warden client rotate-secret` makes a new one)"
                        );
                    }
                }
            }
            ClientCommand::List { json } => {
                let all = store.list_clients().await?;
                if json {
                    let v: Vec<_> = all.iter().map(clients::describe).collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    println!(
                        "{:<24} {:<8} {:<16} {:<16} {:<9} {:<22} GRANTS",
                        "CLIENT_ID", "KIND", "TENANT", "AUTH", "STATUS", "LAST_USED"
                    );
                    for c in &all {
                        let grants: Vec<&str> = c
                            .grants
                            .iter()
                            .map(|g| {
                                if g == clients::grant::TOKEN_EXCHANGE {
                                    "token_exchange"
                                } else {
                                    g.as_str()
                                }
                            })
                            .collect();
                        println!(
                            "{:<24} {:<8} {:<16} {:<16} {:<9} {:<22} {}",
                            c.client_id,
                            c.kind.as_str(),
                            c.tenant.as_deref().unwrap_or("-"),
                            if c.require_dpop {
                                format!("{}+dpop", c.auth.method())
                            } else {
                                c.auth.method().to_owned()
                            },
                            if c.disabled { "disabled" } else { "enabled" },
                            c.last_used_at.map_or_else(|| "never".to_owned(), rfc3339),
                            grants.join(",")
                        );
                    }
                }
            }
            ClientCommand::Show { client_id } => {
                let c = store
                    .get_client(&client_id)
                    .await?
                    .ok_or_else(|| UsageError(format!("no client `{client_id}`")))?;
                println!("{}", serde_json::to_string_pretty(&clients::describe(&c))?);
            }
            ClientCommand::Disable { client_id } => {
                clients::set_disabled(&store, &client_id, true, now)
                    .await
                    .map_err(usage)?;
                audit::record(&store, now, vec![admin_event("client.disable", &client_id)]).await?;
                self.ctx
                    .announce(warden_server::notice::Notice::Client {
                        client_id: client_id.clone(),
                    })
                    .await;
                eprintln!(
                    "client `{client_id}` disabled (replicas told over Redis when configured; otherwise within 5 s)"
                );
            }
            ClientCommand::Enable { client_id } => {
                clients::set_disabled(&store, &client_id, false, now)
                    .await
                    .map_err(usage)?;
                audit::record(&store, now, vec![admin_event("client.enable", &client_id)]).await?;
                self.ctx
                    .announce(warden_server::notice::Notice::Client {
                        client_id: client_id.clone(),
                    })
                    .await;
                eprintln!("client `{client_id}` enabled");
            }
            ClientCommand::RotateSecret { client_id } => {
                let hasher = hasher(self.ctx, &store, false).await?;
                let secret = clients::rotate_secret(&store, &hasher, &client_id, now)
                    .await
                    .map_err(usage)?;
                audit::record(&store, now, vec![admin_event("client.rotate_secret", &client_id)]).await?;
                self.ctx
                    .announce(warden_server::notice::Notice::Client {
                        client_id: client_id.clone(),
                    })
                    .await;
                println!("client_secret: {}", secret.0.as_str());
            }
        }
        Ok(())
    }
}
