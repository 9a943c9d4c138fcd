//! The `warden` binary: parses the command line, loads the configuration,
//! and dispatches to one module per command. No logic of its own.

mod cli;
mod command;
mod config;
mod exit;
mod store_select;
mod text;

use std::process::ExitCode;

/// mimalloc: the request path allocates many small short-lived objects
/// (headers, JSON, Cedar requests); glibc malloc took ~20% of gateway CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::command::Context;
use warden_server::options::LogFormat;

use crate::exit::UsageError;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    // The registry commands' server and token (read by clap from the
    // environment) are not config keys; the token leaves the map at once.
    env.remove("WARDEN_SERVER");
    drop(env.remove("WARDEN_TOKEN").map(zeroize::Zeroizing::new));
    let mut config = config::load(cli.config.as_deref(), &env).map_err(|e| UsageError(format!("{e:#}")))?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    // `--listen` moves this process only; without `issuer` configured the
    // issuer follows it, and other commands would sign for another one.
    let mut issuer_from_flag = false;
    if let Command::Serve(args) = &cli.command
        && let Some(listen) = &args.listen
    {
        config.listen = listen.clone();
        issuer_from_flag = config.issuer.as_deref().is_none_or(str::is_empty);
    }
    if let Some(url) = cli.database_url {
        config.database_url = Some(url);
    }
    let options = config.resolve().map_err(|e| UsageError(format!("{e:#}")))?;
    // Nothing logs before this point: configuration errors are returned.
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG").unwrap_or_else(|_| "warn".into());
    if tracing::subscriber::set_global_default(subscriber(options.log_format, filter, std::io::stderr)).is_err() {
        eprintln!("warning: a log subscriber was already installed");
    }
    for name in config::ignored_env(&env) {
        tracing::debug!(variable = name, "ignored: a Kubernetes service link, not a config key");
    }
    if issuer_from_flag {
        eprintln!(
            "note: the issuer is {} because of --listen; set `issuer` (or WARDEN_ISSUER) to it for the other \
             warden commands, or their tokens name another issuer",
            options.issuer
        );
    }
    let ctx = Context {
        options,
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
        Command::Dataset(args) => command::dataset::run(args, &ctx).await,
        Command::Model(args) => command::model::run(args, &ctx).await,
        Command::Approvals(args) => command::approvals::run(args, &ctx).await,
        Command::Lineage(args) => command::lineage::run(args, &ctx).await,
        Command::Ui(cmd) => command::ui::run(cmd, &ctx).await,
        Command::Login(args) => command::login::login(args, &ctx).await,
        Command::Logout(args) => command::login::logout(args, &ctx).await,
        Command::Session(cmd) => command::session::run(cmd, &ctx).await,
    }
}

/// The log subscriber: events at or above `filter` (`WARDEN_LOG`, default
/// `warn`) written to `writer` as text, or as one JSON object per line
/// (`log.format = "json"`, `WARDEN_LOG_FORMAT=json`) with the event's
/// fields under `fields` and the enclosing spans' fields under `span`
/// (innermost) and `spans` (all), so a gateway or token-service line
/// carries its `request_id`.
fn subscriber<W>(
    format: LogFormat,
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    fn log_in_span(format: LogFormat) -> String {
        let buffer = Buffer::default();
        let sub = subscriber(format, "info".into(), buffer.clone());
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("gateway", request_id = "0123abcd");
            span.in_scope(|| tracing::info!(route = "chat", status = 200u16, "gateway request"));
            tracing::debug!("filtered out");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_carry_the_request_id_of_their_span() {
        let out = log_in_span(LogFormat::Json);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "gateway request");
        assert_eq!(line["fields"]["route"], "chat");
        assert_eq!(line["fields"]["status"], 200);
        assert_eq!(line["span"]["name"], "gateway");
        assert_eq!(line["span"]["request_id"], "0123abcd");
        assert_eq!(line["spans"][0]["request_id"], "0123abcd");
        assert!(line["timestamp"].is_string());
    }

    #[test]
    fn text_lines_are_not_json() {
        let out = log_in_span(LogFormat::Text);
        assert!(
            out.contains("gateway request") && out.contains("request_id") && out.contains("0123abcd"),
            "{out}"
        );
        assert!(serde_json::from_str::<serde_json::Value>(out.trim()).is_err());
    }
}
