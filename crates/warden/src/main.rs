//! The `warden` binary: parses the command line, loads the configuration,
//! and dispatches to one module per command. No logic of its own.

mod cli;
mod command;
mod config;
mod exit;
mod store_select;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::command::Context;
use crate::exit::UsageError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => exit::report(&err),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    // The master key leaves the environment map at once, into a buffer that
    // is wiped on drop.
    let master_key_env = env.remove("WARDEN_MASTER_KEY").map(zeroize::Zeroizing::new);
    let mut config = config::load(cli.config.as_deref(), &env).map_err(|e| UsageError(format!("{e:#}")))?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if let Command::Serve(args) = &cli.command
        && let Some(listen) = &args.listen
    {
        config.listen = listen.clone();
    }
    if let Some(url) = cli.database_url {
        config.database_url = Some(url);
    }
    let settings = config.validate().map_err(|e| UsageError(format!("{e:#}")))?;
    let ctx = Context {
        settings,
        master_key_env,
    };
    match cli.command {
        Command::Keys(cmd) => command::keys::run(cmd, &ctx).await,
        Command::Token(cmd) => command::token::run(cmd, &ctx).await,
        Command::Config(cmd) => {
            command::config::run(cmd, &ctx);
            Ok(())
        }
        Command::Audit(cmd) => command::audit::run(cmd, &ctx).await,
        Command::Serve(args) => command::serve::run(&ctx, &args).await,
        Command::Client(cmd) => command::client::run(cmd, &ctx).await,
        Command::Policy(cmd) => command::policy::run(cmd),
    }
}
