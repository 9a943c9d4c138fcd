//! `warden model create | list | show | version add | version show | stage |
//! promote | approve | reject | rollback | history | promotions`: models in
//! the governance registry of a running server (`/api/v1/models`,
//! `/api/v1/promotions`).
//!
//! Production is reached only by four-eyes promotion: `promote` opens a
//! request and prints its id; other principals `approve` it, each once,
//! until the server's `registry.required_approvals` is met. The server
//! enforces that rule; this command only reports its answers.

use serde_json::{Value, json};
use warden_registry::{ModelSpec, ModelVersionSpec, NodeKind, NodeRef};

use super::Context;
use super::registry_client::{Output, RegistryClient, cell, emit, file_digest, name_arg, version_arg};
use crate::cli::{ModelArgs, ModelCommand, ModelVersionAddArgs, ModelVersionCommand};
use crate::exit::UsageError;

/// What a model shows.
const MODEL_FIELDS: &[&str] = &[
    "name",
    "stage",
    "owner",
    "tenant",
    "description",
    "created_by",
    "created_at",
];
/// Columns of the model list.
const MODEL_COLUMNS: &[&str] = &["name", "stage", "owner", "tenant", "created_at"];
/// What a version shows.
const VERSION_FIELDS: &[&str] = &[
    "model",
    "version",
    "stage",
    "digest",
    "uri",
    "framework",
    "trained_from",
    "training_run",
    "metrics",
    "created_by",
    "created_at",
    "stage_changed_at",
];
/// Columns of a model's versions.
const VERSION_COLUMNS: &[&str] = &["version", "stage", "digest", "framework", "trained_from", "created_at"];
/// What a promotion request shows.
const PROMOTION_FIELDS: &[&str] = &[
    "id",
    "model",
    "version",
    "status",
    "approvals",
    "required",
    "requested_by",
    "reason",
    "created_at",
    "closed_at",
];
/// Columns of the promotion list.
const PROMOTION_COLUMNS: &[&str] = &[
    "id",
    "model",
    "version",
    "status",
    "required",
    "requested_by",
    "created_at",
];
/// Columns of a request's ballots.
const BALLOT_COLUMNS: &[&str] = &["voter", "vote", "reason", "cast_at"];
/// Columns of a stage history.
const HISTORY_COLUMNS: &[&str] = &["at", "version", "from", "to", "by", "reason", "request_id"];

/// Runs a model subcommand.
pub async fn run(args: ModelArgs, ctx: &Context) -> anyhow::Result<()> {
    let out = Output::new(args.remote.json);
    let api = RegistryClient::new(&args.remote, ctx).await?;
    match args.command {
        ModelCommand::Create(a) => {
            let spec = ModelSpec {
                name: name_arg(&a.name)?.to_owned(),
                owner: a.owner,
                tenant: a.tenant,
                description: a.description,
            };
            out.record(&api.post(&["models"], &spec).await?, MODEL_FIELDS)
        }
        ModelCommand::List => out.list(&api.get(&["models"], &[]).await?, "models", MODEL_COLUMNS),
        ModelCommand::Show { name } => {
            let shown = api.get(&["models", name_arg(&name)?], &[]).await?;
            out.record_and_list(&shown, MODEL_FIELDS, "versions", VERSION_COLUMNS)
        }
        ModelCommand::Version(ModelVersionCommand::Add(a)) => add_version(&api, out, a).await,
        ModelCommand::Version(ModelVersionCommand::Show { target }) => {
            let node = model_version(&target)?;
            let number = node.version.to_string();
            let shown = api.get(&["models", &node.name, "versions", &number], &[]).await?;
            out.record(&shown, VERSION_FIELDS)
        }
        ModelCommand::Stage { target, stage, reason } => {
            let node = model_version(&target)?;
            let number = node.version.to_string();
            let body = json!({"stage": stage, "reason": reason});
            let moved = api
                .post(&["models", &node.name, "versions", &number, "stage"], &body)
                .await?;
            out.record(&moved, &["model", "version", "stage", "stage_changed_at"])
        }
        ModelCommand::Promote { target, reason } => {
            let node = model_version(&target)?;
            let number = node.version.to_string();
            let body = json!({"reason": reason});
            let request = api
                .post(&["models", &node.name, "versions", &number, "promotions"], &body)
                .await?;
            if out.json() {
                return out.record(&request, PROMOTION_FIELDS);
            }
            // The id alone on stdout, for `ID=$(warden model promote …)`.
            let id = cell(&request, "id");
            emit(&format!("{id}\n"))?;
            eprintln!(
                "opened promotion request {id} for {node} to production: it needs {} approvals by principals \
                 other than you (`warden model approve {id} --reason …`)",
                cell(&request, "required")
            );
            Ok(())
        }
        ModelCommand::Approve { id, reason } => vote(&api, out, &id, "approve", reason).await,
        ModelCommand::Reject { id, reason } => vote(&api, out, &id, "reject", reason).await,
        ModelCommand::Rollback { name, reason } => {
            let done = api
                .post(&["models", name_arg(&name)?, "rollback"], &json!({"reason": reason}))
                .await?;
            out.record(&done, &["model", "from", "to"])?;
            if !out.json() {
                eprintln!(
                    "{name}@{} is archived; {name}@{} is in production again",
                    cell(&done, "from"),
                    cell(&done, "to")
                );
            }
            Ok(())
        }
        ModelCommand::History { name } => {
            let history = api.get(&["models", name_arg(&name)?, "history"], &[]).await?;
            out.list(&history, "changes", HISTORY_COLUMNS)
        }
        ModelCommand::Promotions { id: Some(id), .. } => {
            let request = api.get(&["promotions", &id], &[]).await?;
            out.record_and_list(&request, PROMOTION_FIELDS, "ballots", BALLOT_COLUMNS)
        }
        ModelCommand::Promotions {
            id: None,
            model,
            status,
        } => {
            let mut query = Vec::new();
            if let Some(m) = &model {
                query.push(("model", name_arg(m)?));
            }
            if let Some(s) = &status {
                query.push(("status", s.as_str()));
            }
            out.list(
                &api.get(&["promotions"], &query).await?,
                "promotions",
                PROMOTION_COLUMNS,
            )
        }
    }
}

async fn add_version(api: &RegistryClient, out: Output, a: ModelVersionAddArgs) -> anyhow::Result<()> {
    let digest = match (a.content.digest, a.content.file) {
        (Some(digest), None) => digest,
        (None, Some(path)) => file_digest(&path)?.0,
        _ => return Err(UsageError("give --digest or --file".into()).into()),
    };
    let metrics = match a.metrics {
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => v,
            _ => return Err(UsageError("--metrics must be a JSON object, e.g. '{\"auc\":0.91}'".into()).into()),
        },
        None => json!({}),
    };
    let trained_from = a
        .trained_from
        .iter()
        .map(|d| version_arg(NodeKind::Dataset, d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let spec = ModelVersionSpec {
        digest,
        uri: a.uri,
        framework: a.framework,
        metrics,
        trained_from,
        training_run: a.training_run,
    };
    let added = api.post(&["models", name_arg(&a.name)?, "versions"], &spec).await?;
    out.record(&added, VERSION_FIELDS)
}

/// Casts `vote` on promotion request `id` and prints the request after it.
async fn vote(api: &RegistryClient, out: Output, id: &str, vote: &str, reason: String) -> anyhow::Result<()> {
    let after = api.post(&["promotions", id, vote], &json!({"reason": reason})).await?;
    let mut fields = vec!["outcome"];
    fields.extend_from_slice(PROMOTION_FIELDS);
    out.record(&after, &fields)?;
    if !out.json() {
        let node = format!("{}@{}", cell(&after, "model"), cell(&after, "version"));
        match after.get("outcome").and_then(Value::as_str) {
            Some("completed") => eprintln!("{node} is in production"),
            Some("recorded") => eprintln!(
                "approval recorded: {} of {} needed",
                cell(&after, "approvals"),
                cell(&after, "required")
            ),
            Some("rejected") => eprintln!("the request is rejected; {node} stays where it was"),
            _ => {}
        }
    }
    Ok(())
}

fn model_version(text: &str) -> anyhow::Result<NodeRef> {
    version_arg(NodeKind::Model, text)
}
