//! `warden approvals list | show | approve | deny`: people's approvals of
//! agents' calls on a running server (`/api/v1/approvals`), as the
//! signed-in person (`warden login`, or a token). The server decides who
//! may see and answer what; this command only reports its answers.

use serde_json::json;

use super::Context;
use super::registry_client::{Output, RegistryClient};
use crate::cli::{ApprovalsArgs, ApprovalsCommand};
use crate::exit::UsageError;

/// What a request shows.
const FIELDS: &[&str] = &[
    "id",
    "status",
    "subject",
    "actor_chain",
    "client_id",
    "route",
    "action",
    "resource",
    "tool",
    "digest",
    "binding_message",
    "approvers",
    "policy_ids",
    "created_at",
    "expires_at",
    "decided_by",
    "reason",
    "decided_at",
    "usable_until",
    "used_at",
];
/// Columns of the list.
const COLUMNS: &[&str] = &["id", "status", "subject", "resource", "approvers", "expires_at"];
/// The statuses `--status` takes.
const STATUSES: &[&str] = &["pending", "approved", "denied", "issued", "used", "expired", "all"];

/// Runs `warden approvals …`.
pub async fn run(args: ApprovalsArgs, ctx: &Context) -> anyhow::Result<()> {
    let out = Output::new(args.remote.json);
    let api = RegistryClient::new(&args.remote, ctx).await?;
    match args.command {
        ApprovalsCommand::List { status } => {
            if !STATUSES.contains(&status.as_str()) {
                return Err(UsageError(format!("--status must be one of {}", STATUSES.join(", "))).into());
            }
            let query: Vec<(&str, &str)> = if status == "all" {
                Vec::new()
            } else {
                vec![("status", status.as_str())]
            };
            out.list(&api.get(&["approvals"], &query).await?, "approvals", COLUMNS)
        }
        ApprovalsCommand::Show { id } => out.record(&api.get(&["approvals", &id], &[]).await?, FIELDS),
        ApprovalsCommand::Approve { id, reason } => {
            let answered = api
                .post(&["approvals", &id, "approve"], &json!({"reason": reason}))
                .await?;
            out.record(&answered, FIELDS)
        }
        ApprovalsCommand::Deny { id, reason } => {
            let answered = api
                .post(&["approvals", &id, "deny"], &json!({"reason": reason}))
                .await?;
            out.record(&answered, FIELDS)
        }
    }
}
