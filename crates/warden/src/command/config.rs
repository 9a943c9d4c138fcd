//! `warden config check`.

use warden_server::options::JwksLocation;
use warden_store::redact_url;

use super::Context;
use crate::cli::ConfigCommand;

/// Runs a config subcommand. Reaching it means the config already loaded
/// and validated; this prints the resolved values (no secrets).
pub fn run(cmd: ConfigCommand, ctx: &Context) {
    match cmd {
        ConfigCommand::Check => {
            let s = &ctx.options;
            println!("data_dir = {:?}", s.storage.data_dir.display().to_string());
            println!("database_url = {:?}", redact_url(&s.storage.database_url));
            if let Some(schema) = &s.storage.database_schema {
                println!("database_schema = {schema:?}");
            }
            println!("listen = \"{}\"", s.listen);
            println!("issuer = {:?}", s.issuer);
            println!("tokens.default_ttl = {}", s.default_ttl);
            println!("tokens.max_ttl = {}", s.max_ttl);
            println!("tokens.leeway = {}", s.leeway);
            println!("tokens.max_bytes = {}", s.max_token_bytes);
            let algs: Vec<_> = s.algorithms.iter().map(|a| format!("{:?}", a.as_str())).collect();
            println!("tokens.algorithms = [{}]", algs.join(", "));
            println!("keys.algorithm = {:?}", s.key_algorithm.as_str());
            println!("keys.publish_lead = {}", s.rotation.publish_lead);
            println!("keys.rotate_every = {}", s.rotate_every);
            println!("audit.origin = {:?}", s.audit.origin);
            println!("audit.checkpoint_interval = {}", s.audit.checkpoint_interval);
            println!("audit.retention_days = {}", s.audit.retention / 86_400);
            let o = &s.oauth;
            println!("oauth.refresh_idle_ttl = {}", o.refresh_idle_ttl);
            println!("oauth.refresh_absolute_ttl = {}", o.refresh_absolute_ttl);
            println!("oauth.refresh_grace = {}", o.refresh_grace);
            println!("oauth.max_delegation_depth = {}", o.max_delegation_depth);
            println!("oauth.max_body_bytes = {}", o.max_body_bytes);
            println!("oauth.auth_failures_per_minute = {}", o.auth_failures_per_minute);
            println!("oauth.assertion_max_ttl = {}", o.assertion_max_ttl);
            println!("oauth.introspection_scope = {:?}", o.introspection_scope);
            println!("dpop.leeway = {}", s.dpop.leeway);
            println!("dpop.max_age = {}", s.dpop.max_age);
            println!("dpop.require_nonce = {}", s.dpop.require_nonce);
            if let Some(url) = &s.redis_url {
                println!("redis_url = {:?}", redact_url(url));
            }
            println!("rate_limit.redis_fallback = {:?}", s.rate_limit.redis_fallback.as_str());
            println!("rate_limit.replicas = {}", s.rate_limit.replicas);
            println!("replicas.sync_interval = {}", s.replicas.sync_interval.as_secs());
            let proxies: Vec<_> = s.trusted_proxies.iter().map(|p| format!("\"{p}\"")).collect();
            println!("trusted_proxies = [{}]", proxies.join(", "));
            println!("registry.required_approvals = {}", s.registry.required_approvals);
            println!("registry.approval_ttl = {}", s.registry.approval_ttl);
            println!("log.format = {:?}", format!("{:?}", s.log_format).to_lowercase());
            println!("metrics.enabled = {}", s.metrics.enabled);
            if let Some(addr) = s.metrics.listen {
                println!("metrics.listen = \"{addr}\"");
            }
            match s.dashboard.listen {
                Some(addr) => println!("dashboard.listen = \"{addr}\""),
                None => println!("dashboard: on the main listener"),
            }
            if let Some(url) = &s.dashboard.url {
                println!("dashboard.url = {url:?}");
            }
            match &s.policy_dir {
                Some(dir) => println!("policy_dir = {:?}", dir.display().to_string()),
                None => println!("policy_dir: the built-in policies"),
            }
            println!("tenancy = {:?}", s.tenancy.as_str());
            for (model, stage) in &s.model_stages {
                println!("models.{model} = {stage:?}");
            }
            for r in &s.routes {
                println!(
                    "route: name={:?} path_prefix={:?} upstream={:?} action={:?} kind={:?}",
                    r.name, r.path_prefix, r.upstream, r.action, r.kind
                );
            }
            for f in &s.federation {
                let source = match &f.jwks {
                    JwksLocation::Url(u) => u.clone(),
                    JwksLocation::File(p) => p.display().to_string(),
                };
                let algs: Vec<_> = f.algorithms.iter().map(|a| a.as_str()).collect();
                println!(
                    "federation: issuer={:?} jwks={source:?} algorithms={algs:?} audience={:?} typ={:?} subject_kind={:?} role_claim={:?} roles={:?} scope_claim={:?}",
                    f.issuer, f.audience, f.typ, f.subject_kind, f.role_claim, f.roles, f.scope_claim
                );
            }
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
