//! `warden config check`.

use warden_store::redact_url;

use super::Context;
use crate::cli::ConfigCommand;

/// Runs a config subcommand. Reaching it means the config already loaded
/// and validated; this prints the resolved values (no secrets).
pub fn run(cmd: ConfigCommand, ctx: &Context) {
    match cmd {
        ConfigCommand::Check => {
            let s = &ctx.settings;
            println!("data_dir = {:?}", s.data_dir.display().to_string());
            println!("database_url = {:?}", redact_url(&s.database_url));
            if let Some(schema) = &s.database_schema {
                println!("database_schema = {schema:?}");
            }
            println!("issuer = {:?}", s.issuer);
            println!("tokens.default_ttl = {}", s.default_ttl);
            println!("tokens.max_ttl = {}", s.max_ttl);
            println!("tokens.leeway = {}", s.leeway);
            println!("tokens.max_bytes = {}", s.max_bytes);
            let algs: Vec<_> = s.algorithms.iter().map(|a| format!("{:?}", a.as_str())).collect();
            println!("tokens.algorithms = [{}]", algs.join(", "));
            println!("keys.algorithm = {:?}", s.key_algorithm.as_str());
            println!("keys.publish_lead = {}", s.publish_lead);
            println!(
                "master_key = {}",
                if ctx.master_key_env.is_some() {
                    "from WARDEN_MASTER_KEY"
                } else {
                    "from <data_dir>/master.key"
                }
            );
            eprintln!("configuration OK");
        }
    }
}
