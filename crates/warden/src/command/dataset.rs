//! `warden dataset create | list | show | update | delete | version add |
//! version list | version show`: datasets in the governance registry of a
//! running server (`/api/v1/datasets`). Warden records what a dataset is
//! and where it lives, never its content: `--file` only computes a digest.

use warden_registry::{Classification, DatasetPatch, DatasetSpec, DatasetVersionSpec, NodeKind};

use super::Context;
use super::registry_client::{Output, RegistryClient, file_digest, name_arg, version_arg};
use crate::cli::{DatasetArgs, DatasetCommand, DatasetVersionAddArgs, DatasetVersionCommand};
use crate::exit::UsageError;

/// What a dataset shows.
const DATASET_FIELDS: &[&str] = &[
    "name",
    "classification",
    "allowed_purposes",
    "owner",
    "tenant",
    "description",
    "created_by",
    "created_at",
    "updated_at",
];
/// Columns of the dataset list.
const DATASET_COLUMNS: &[&str] = &[
    "name",
    "classification",
    "allowed_purposes",
    "owner",
    "tenant",
    "updated_at",
];
/// What a version shows.
const VERSION_FIELDS: &[&str] = &[
    "dataset",
    "version",
    "digest",
    "size",
    "uri",
    "parents",
    "created_by",
    "created_at",
];
/// Columns of a version list.
const VERSION_COLUMNS: &[&str] = &[
    "version",
    "digest",
    "size",
    "uri",
    "parents",
    "created_by",
    "created_at",
];

/// Runs a dataset subcommand.
pub async fn run(args: DatasetArgs, ctx: &Context) -> anyhow::Result<()> {
    let out = Output::new(args.remote.json);
    let api = RegistryClient::new(&args.remote, ctx).await?;
    match args.command {
        DatasetCommand::Create(a) => {
            let spec = DatasetSpec {
                name: name_arg(&a.name)?.to_owned(),
                owner: a.owner,
                classification: classification(&a.classification)?,
                allowed_purposes: a.allowed_purposes,
                tenant: a.tenant,
                description: a.description,
            };
            let created = api.post(&["datasets"], &spec).await?;
            out.record(&created, DATASET_FIELDS)
        }
        DatasetCommand::List => out.list(&api.get(&["datasets"], &[]).await?, "datasets", DATASET_COLUMNS),
        DatasetCommand::Show { name } => {
            let shown = api.get(&["datasets", name_arg(&name)?], &[]).await?;
            out.record_and_list(&shown, DATASET_FIELDS, "versions", VERSION_COLUMNS)
        }
        DatasetCommand::Update(a) => {
            let patch = DatasetPatch {
                owner: a.owner,
                classification: a.classification.as_deref().map(classification).transpose()?,
                allowed_purposes: match (a.clear_allowed_purposes, a.allowed_purposes.is_empty()) {
                    (true, _) => Some(Vec::new()),
                    (false, false) => Some(a.allowed_purposes),
                    (false, true) => None,
                },
                description: a.description,
            };
            if patch.fields().is_empty() {
                return Err(UsageError(
                    "nothing to change: give --owner, --classification, --allowed-purpose, \
                     --clear-allowed-purposes or --description"
                        .into(),
                )
                .into());
            }
            let updated = api.patch(&["datasets", name_arg(&a.name)?], &patch).await?;
            out.record(&updated, DATASET_FIELDS)
        }
        DatasetCommand::Delete { name, reason } => {
            let query: Vec<(&str, &str)> = reason.as_deref().map(|r| ("reason", r)).into_iter().collect();
            let deleted = api.delete(&["datasets", name_arg(&name)?], &query).await?;
            out.record(&deleted, &["name", "deleted_at"])
        }
        DatasetCommand::Version(DatasetVersionCommand::Add(a)) => add_version(&api, out, a).await,
        DatasetCommand::Version(DatasetVersionCommand::List { name }) => {
            let versions = api.get(&["datasets", name_arg(&name)?, "versions"], &[]).await?;
            out.list(&versions, "versions", VERSION_COLUMNS)
        }
        DatasetCommand::Version(DatasetVersionCommand::Show { target }) => {
            let node = version_arg(NodeKind::Dataset, &target)?;
            let number = node.version.to_string();
            let shown = api.get(&["datasets", &node.name, "versions", &number], &[]).await?;
            out.record(&shown, VERSION_FIELDS)
        }
    }
}

async fn add_version(api: &RegistryClient, out: Output, a: DatasetVersionAddArgs) -> anyhow::Result<()> {
    let (digest, size) = match (a.content.digest, a.content.file, a.size) {
        (Some(digest), None, Some(size)) => (digest, size),
        (None, Some(path), None) => file_digest(&path)?,
        _ => return Err(UsageError("give --digest with --size, or --file".into()).into()),
    };
    let parents = a
        .parents
        .iter()
        .map(|p| version_arg(NodeKind::Dataset, p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let spec = DatasetVersionSpec {
        digest,
        size,
        uri: a.uri,
        parents,
    };
    let added = api.post(&["datasets", name_arg(&a.name)?, "versions"], &spec).await?;
    out.record(&added, VERSION_FIELDS)
}

fn classification(text: &str) -> anyhow::Result<Classification> {
    Ok(Classification::parse(text).map_err(|e| UsageError(format!("--classification: {e}")))?)
}
