//! `warden ui link`: a login link for the compliance dashboard.
//!
//! The link is `URL/ui/login#token=…`: the fragment stays in the browser
//! (it is never sent in a request, so never in an access log or a
//! `Referer`); the sign-in page moves it into its form and removes it from
//! the address bar. Anyone holding the link holds the token until it
//! expires: send it like a password, keep `--ttl` short.

use crate::cli::{IssueArgs, UiCommand, UiLinkArgs};
use crate::command::Context;
use crate::command::token::{IssueTask, check_issue_args};
use crate::exit::UsageError;
use crate::store_select::with_store;

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
    let token = with_store(
        &ctx.options.storage,
        false,
        IssueTask {
            args: issue,
            ctx,
            // Whoever made a link, and for whom, is traceable.
            grant: "dashboard_login_link",
        },
    )
    .await?;
    println!("{base}/ui/login#token={token}");
    eprintln!(
        "valid for {} s; whoever holds this link signs in as that person until then",
        args.ttl
    );
    Ok(())
}
