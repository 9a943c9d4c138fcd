//! `warden token issue | verify | inspect`.

use std::io::Read as _;

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use warden_audit::EventKind;
use warden_jose::issue::{AccessTokenClaims, encode, new_jti};
use warden_jose::{AlgorithmSet, JwkSet, KeySet, TokenVerifier, TrustedIssuer, Validation, base64url, strict_json};
use warden_server::notice::Notice;
use warden_store::Store;

use super::{Context, audit, now};
use crate::cli::{IssueArgs, RevokeArgs, TokenCommand, VerifyArgs};
use crate::exit::{Rejected, UsageError};
use crate::store_select::{StoreTask, with_store};

/// Subject namespaces (docs/tokens-and-keys.md), so that a user and a service
/// of the same name can never be confused.
const SUBJECT_KINDS: [&str; 3] = ["user:", "svc:", "agent:"];

/// Runs a token subcommand.
pub async fn run(cmd: TokenCommand, ctx: &Context) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Print(args) => super::login::print(args, ctx).await,
        TokenCommand::Issue(args) => {
            check_issue_args(&args, ctx)?;
            let token = with_store(
                &ctx.options.storage,
                false,
                IssueTask {
                    args,
                    ctx,
                    grant: "cli",
                },
            )
            .await?;
            println!("{token}");
            Ok(())
        }
        TokenCommand::Verify(args) => verify(args, ctx).await,
        TokenCommand::Inspect { token } => inspect(&read_token(&token)?),
        TokenCommand::Revoke(args) => {
            let revoked = with_store(&ctx.options.storage, false, RevokeTask { args, ctx }).await?;
            for notice in &revoked.notices {
                ctx.announce(notice.clone()).await;
            }
            println!("{}", revoked.summary);
            Ok(())
        }
    }
}

pub(crate) fn check_issue_args(args: &IssueArgs, ctx: &Context) -> anyhow::Result<()> {
    let valid_sub = SUBJECT_KINDS
        .iter()
        .any(|k| args.sub.strip_prefix(k).is_some_and(|name| !name.is_empty()));
    if !valid_sub {
        return Err(UsageError(format!(
            "--sub `{}` must be namespaced: user:NAME, svc:NAME or agent:NAME",
            args.sub
        ))
        .into());
    }
    if args.aud.iter().any(String::is_empty) {
        return Err(UsageError("--aud must not be empty".into()).into());
    }
    if let Some(ttl) = args.ttl
        && (ttl == 0 || ttl > ctx.options.max_ttl)
    {
        return Err(UsageError(format!(
            "--ttl must be between 1 and tokens.max_ttl ({})",
            ctx.options.max_ttl
        ))
        .into());
    }
    Ok(())
}

/// Issues one access token with the data dir's signing key and records
/// its issuance (`token_issued`, with the operator who ran the command) in
/// the audit log first: a token whose record could not be written is
/// never printed.
pub(crate) struct IssueTask<'a> {
    pub(crate) args: IssueArgs,
    pub(crate) ctx: &'a Context,
    /// The event's `grant`: `cli` for `warden token issue`.
    pub(crate) grant: &'static str,
}

impl StoreTask for IssueTask<'_> {
    type Output = String;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<String> {
        let now = now();
        let settings = &self.ctx.options;
        let key = self
            .ctx
            .key_manager(store.clone(), false)
            .await?
            .signing_key(now)
            .await?;
        let args = self.args;
        let claims = AccessTokenClaims {
            iss: args.iss.unwrap_or_else(|| settings.issuer.clone()),
            sub: args.sub,
            aud: args.aud,
            exp: now + args.ttl.unwrap_or(settings.default_ttl),
            iat: now,
            nbf: now,
            jti: new_jti()?,
            client_id: args.client_id,
            scope: args.scope.split_whitespace().collect::<Vec<_>>().join(" "),
            roles: args.roles,
            tenant: args.tenant,
            act: None,
            cnf: None,
            authorization_details: None,
        };
        let token = encode(&key, "at+jwt", &claims)?;
        let event = EventKind::TokenIssued {
            subject: claims.sub,
            client_id: claims.client_id,
            jti: claims.jti,
            kid: key.kid().to_owned(),
            scope: claims.scope,
            audience: claims.aud,
            grant: self.grant.to_owned(),
            expires_at: claims.exp,
            issued_by: Some(super::operator()),
        };
        audit::record(&store, now, vec![event])
            .await
            .context("the token was not issued")?;
        Ok(token)
    }
}

/// Reads the published keys of the data dir's store.
struct PublishedKeys<'a>(&'a Context);

impl StoreTask for PublishedKeys<'_> {
    type Output = KeySet;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<KeySet> {
        Ok(KeySet::new(self.0.published_keys(&store).await?)?)
    }
}

async fn verify(args: VerifyArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = &ctx.options;
    let algorithms = if args.algs.is_empty() {
        settings.algorithms
    } else {
        args.algs
            .iter()
            .map(|a| warden_jose::Algorithm::parse(a))
            .collect::<Result<AlgorithmSet, _>>()?
    };
    let leeway = args.leeway.unwrap_or(settings.leeway);
    let mut validation = Validation::access_token(args.aud.clone())
        .with_leeway(leeway)
        .map_err(|e| UsageError(format!("--leeway: {e}")))?
        .with_max_token_bytes(settings.max_token_bytes)
        .with_algorithms(algorithms);
    if !args.typs.is_empty() {
        validation = validation.with_typ(Some(args.typs.clone()));
    }
    let token = read_token(&args.token)?;
    let keys = match &args.jwks {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| UsageError(format!("reading --jwks {}: {e}", path.display())))?;
            let set = JwkSet::parse(&bytes).map_err(|e| UsageError(format!("--jwks {}: {e}", path.display())))?;
            for skipped in set.skipped() {
                eprintln!(
                    "warning: ignoring key {} in {}: {}",
                    skipped.kid.as_deref().unwrap_or("(no kid)"),
                    path.display(),
                    skipped.reason
                );
            }
            KeySet::new(set.into_keys()).map_err(|e| UsageError(format!("--jwks {}: {e}", path.display())))?
        }
        None => with_store(&settings.storage, false, PublishedKeys(ctx)).await?,
    };
    let verifier = TokenVerifier::new([TrustedIssuer::new(args.iss.clone(), keys, algorithms)], validation);
    match verifier.verify(&token, now()) {
        Ok(verified) => {
            println!("{}", serde_json::to_string_pretty(verified.claims().raw())?);
            Ok(())
        }
        Err(e) => Err(Rejected(e.to_string()).into()),
    }
}

/// Reads a token argument; `-` reads stdin. Surrounding whitespace is
/// dropped (a shell pipe adds a newline); anything else is kept as given.
fn read_token(arg: &str) -> anyhow::Result<String> {
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(1 << 20)
            .read_to_string(&mut text)
            .context("reading the token from stdin")?;
        Ok(text.trim().to_owned())
    } else {
        Ok(arg.trim().to_owned())
    }
}

fn inspect(token: &str) -> anyhow::Result<()> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        bail!("not a compact JWS: expected three dot-separated segments");
    };
    let decode = |segment: &str, name: &str| -> anyhow::Result<serde_json::Value> {
        let bytes = base64url::decode(segment).ok_or_else(|| anyhow!("{name} is not strict base64url"))?;
        let map =
            strict_json::parse_object(&bytes).map_err(|e| anyhow!("{name} is not a strict JSON object: {e:?}"))?;
        Ok(serde_json::Value::Object(map))
    };
    let out = json!({
        "UNVERIFIED": "the signature, issuer, audience and times were NOT checked; use `warden token verify`",
        "header": decode(h, "header")?,
        "claims": decode(p, "payload")?,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    eprintln!("UNVERIFIED: nothing about this token has been checked");
    Ok(())
}

/// What `warden token revoke` did.
struct Revoked {
    /// One line for people.
    summary: String,
    /// What the running replicas should apply at once.
    notices: Vec<Notice>,
}

/// Revokes a token in the store (running servers read revocations every
/// second, and hear of it at once over Redis when configured) and audits
/// it with the operator who ran the command.
struct RevokeTask<'a> {
    args: RevokeArgs,
    ctx: &'a Context,
}

impl StoreTask for RevokeTask<'_> {
    type Output = Revoked;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<Revoked> {
        let now = now();
        let reason = format!("revoked from the CLI by {}", super::operator());
        let longest = now + warden_server::options::TOKEN_TTL_CAP + warden_jose::MAX_LEEWAY;
        let (jti, exp) = match (self.args.jti, self.args.token) {
            (Some(jti), _) => {
                if jti.is_empty() || jti.len() > 128 {
                    return Err(UsageError("--jti must be 1 to 128 characters".into()).into());
                }
                (jti, self.args.until.unwrap_or(longest).min(longest))
            }
            (None, Some(token)) => {
                let token = read_token(&token)?;
                if token.starts_with("wrt_") {
                    let hash = warden_server::oauth::grants::hash_refresh(&token);
                    let row = store
                        .find_refresh(&hash)
                        .await?
                        .ok_or_else(|| anyhow!("no such refresh token"))?;
                    let revoked = store.revoke_family(&row.family.id, now).await?;
                    let event = EventKind::TokenRevoked {
                        jti: None,
                        family: Some(row.family.id.clone()),
                        client_id: row.family.client_id.clone(),
                        reason,
                    };
                    super::audit::record(&store, now, vec![event]).await?;
                    return Ok(Revoked {
                        summary: format!("revoked refresh-token family {}", row.family.id),
                        notices: revoked
                            .into_iter()
                            .map(|(jti, exp)| Notice::Revoked { jti, exp })
                            .collect(),
                    });
                }
                let keys = self.ctx.published_keys(&store).await?;
                let issuer = TrustedIssuer::new(
                    self.ctx.options.issuer.clone(),
                    KeySet::new(keys)?,
                    self.ctx.options.algorithms,
                );
                let validation = Validation::access_token(String::new())
                    .with_any_audience()
                    .with_leeway(self.ctx.options.leeway)?;
                let verified = TokenVerifier::new([issuer], validation)
                    .verify(&token, now)
                    .map_err(|e| Rejected(format!("not a live token of this Warden: {e}")))?;
                let claims = verified.claims();
                let jti = claims.jti().ok_or_else(|| anyhow!("the token has no jti"))?.to_owned();
                (jti, claims.exp())
            }
            (None, None) => return Err(UsageError("give --jti or --token".into()).into()),
        };
        store.revoke_token(&jti, exp, now).await?;
        let event = EventKind::TokenRevoked {
            jti: Some(jti.clone()),
            family: None,
            client_id: "warden-cli".into(),
            reason,
        };
        super::audit::record(&store, now, vec![event]).await?;
        Ok(Revoked {
            summary: format!("revoked token {jti} (kept until {})", super::rfc3339(exp)),
            notices: vec![Notice::Revoked { jti, exp }],
        })
    }
}
