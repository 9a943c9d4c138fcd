//! `warden ui link`: a login link for the compliance dashboard.
//!
//! The link is `URL/ui/login#token=…`: the fragment stays in the browser
//! (it is never sent in a request, so never in an access log or a
//! `Referer`); the sign-in page moves it into its form and removes it from
//! the address bar. Anyone holding the link holds the token until it
//! expires: send it like a password, keep `--ttl` short.

use anyhow::Context as _;
use serde_json::Value;
use warden_audit::EventKind;
use warden_jose::base64url;
use warden_store::Store;

use crate::cli::{IssueArgs, UiCommand, UiLinkArgs};
use crate::command::token::{IssueTask, check_issue_args};
use crate::command::{Context, audit, now};
use crate::exit::UsageError;
use crate::store_select::{StoreTask, with_store};

/// Runs a `warden ui` subcommand.
pub async fn run(cmd: UiCommand, ctx: &Context) -> anyhow::Result<()> {
    match cmd {
        UiCommand::Link(args) => link(args, ctx).await,
    }
}

async fn link(args: UiLinkArgs, ctx: &Context) -> anyhow::Result<()> {
    if args.sub.strip_prefix("user:").is_none_or(str::is_empty) {
        return Err(UsageError(format!(
            "--sub `{}` must be a person, user:NAME (the dashboard refuses services and agents)",
            args.sub
        ))
        .into());
    }
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| ctx.options.dashboard_base())
        .trim_end_matches('/')
        .to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(UsageError(format!("--url `{base}` must start with http:// or https://")).into());
    }
    let issue = IssueArgs {
        sub: args.sub,
        aud: vec![ctx.options.ui_audience()],
        scope: args.scope,
        roles: args.roles,
        ttl: Some(args.ttl),
        iss: None,
        client_id: "warden-ui".to_owned(),
        tenant: args.tenant,
    };
    check_issue_args(&issue, ctx)?;
    let token = with_store(&ctx.options.storage, false, LinkTask { args: issue, ctx }).await?;
    println!("{base}/ui/login#token={token}");
    eprintln!(
        "valid for {} s; whoever holds this link signs in as that person until then",
        args.ttl
    );
    Ok(())
}

/// Issues the login token and records its issuance in the audit log
/// (grant `dashboard_login_link`): whoever made a link, and for whom, is
/// traceable.
struct LinkTask<'a> {
    args: IssueArgs,
    ctx: &'a Context,
}

impl StoreTask for LinkTask<'_> {
    type Output = String;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<String> {
        let token = IssueTask {
            args: self.args,
            ctx: self.ctx,
        }
        .run(store.clone())
        .await?;
        let part = |i: usize| -> anyhow::Result<Value> {
            let text = token.split('.').nth(i).context("the issued token is malformed")?;
            let bytes = base64url::decode(text).context("the issued token is malformed")?;
            Ok(serde_json::from_slice(&bytes)?)
        };
        let (header, claims) = (part(0)?, part(1)?);
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let event = EventKind::TokenIssued {
            subject: text(&claims, "sub"),
            client_id: text(&claims, "client_id"),
            jti: text(&claims, "jti"),
            kid: text(&header, "kid"),
            scope: text(&claims, "scope"),
            audience: claims
                .get("aud")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            grant: "dashboard_login_link".to_owned(),
            expires_at: claims.get("exp").and_then(Value::as_u64).unwrap_or(0),
        };
        audit::record(&store, now(), vec![event]).await?;
        Ok(token)
    }
}
