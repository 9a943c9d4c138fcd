//! What an approval request asks, and for whom ([`Asked`], stored as the
//! request's JSON), and the RFC 9396 authorization details that name one
//! call exactly.
//!
//! Detail types:
//! - `tool_call`: an MCP `tools/call` — `route`, `tool`, and
//!   `arguments_sha256`, the SHA-256 (base64url) of the call's `arguments`
//!   in JSON canonical form (RFC 8785), so key order and spacing do not
//!   matter and any change of a value does;
//! - `api_call`: any other gateway route — `route`, `method`, `path`
//!   (with the query), `resource` and `body_sha256`, the SHA-256 of the
//!   body's bytes.
//!
//! The token an approval gives carries these details with the approval's
//! id added (`approval_id`); the gateway compares them, without that id,
//! to the details of the request it is presented with.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use warden_jose::base64url;
use warden_policy::ApprovalNeed;
use warden_policy::approval::SELF_APPROVER;

use crate::access::Caller;
use crate::error::ApiError;

/// The detail type of an MCP tool call.
pub const TOOL_CALL: &str = "tool_call";
/// The detail type of any other gateway call.
pub const API_CALL: &str = "api_call";
/// The member of a token's detail naming the approval it came from.
pub const APPROVAL_ID: &str = "approval_id";

/// What is asked, and for whom: stored with the request, shown to
/// approvers, and the identity of the single-use token an approval gives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Asked {
    /// The request's subject (the person an agent acts for, or the caller).
    pub subject: String,
    /// Agents acting for the subject, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actor_chain: Vec<String>,
    /// The OAuth client asking.
    pub client_id: String,
    /// The caller's roles, scopes and tenant: the token repeats them.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The audience the token is for (the route's).
    pub audience: Vec<String>,
    /// The gateway route.
    pub route: String,
    /// The action (`tool.call`).
    pub action: String,
    /// What it is on, in Cedar syntax (`Tool::"delete_dataset"`).
    pub resource: String,
    /// The RFC 9396 authorization details of the call (one object).
    pub details: Vec<Value>,
    /// Who may approve: roles, or `self`.
    pub approvers: Vec<String>,
    /// The policies that asked.
    pub policy_ids: Vec<String>,
    /// A short text shown to the approver (CIBA `binding_message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_message: Option<String>,
    /// The gateway request that asked, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Asked {
    /// What `caller` asks on `route`, to be approved by `need`'s groups.
    pub fn of_call(caller: &Caller, route: &str, action: &str, resource: String, audience: Vec<String>) -> Self {
        Asked {
            subject: caller.principal.clone(),
            actor_chain: caller.actor_chain.clone(),
            client_id: caller.client_id.clone(),
            roles: caller.roles.clone(),
            scopes: caller.scopes.clone(),
            tenant: caller.tenant.clone(),
            audience,
            route: route.to_owned(),
            action: action.to_owned(),
            resource,
            details: Vec::new(),
            approvers: Vec::new(),
            policy_ids: Vec::new(),
            binding_message: None,
            request_id: Some(caller.request_id.clone()),
        }
    }

    /// The person the request acts for: the subject when an agent acts
    /// for it (a `self` approval is theirs to give).
    pub fn acting_for(&self) -> Option<&str> {
        (!self.actor_chain.is_empty() && self.subject.starts_with("user:")).then_some(self.subject.as_str())
    }

    /// The SHA-256 of the call's arguments or body, for the audit log.
    pub fn digest(&self) -> Option<String> {
        let detail = self.details.first()?;
        detail
            .get("arguments_sha256")
            .or_else(|| detail.get("body_sha256"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The tool of a `tool_call`, for display.
    pub fn tool(&self) -> Option<&str> {
        self.details.first()?.get("tool").and_then(Value::as_str)
    }

    /// The request as stored.
    pub fn to_json(&self) -> Result<String, ApiError> {
        serde_json::to_string(self).map_err(|_| ApiError::internal("the approval request could not be serialised"))
    }

    /// A stored request.
    pub fn from_json(text: &str) -> Result<Self, ApiError> {
        serde_json::from_str(text).map_err(|_| ApiError::internal("a stored approval request is corrupt"))
    }

    /// The `act` claim the token repeats: the chain, outermost first,
    /// nested as RFC 8693 §4.1 writes it.
    pub fn act(&self) -> Option<Value> {
        self.actor_chain.iter().rev().fold(None, |inner, sub| {
            let mut act = Map::new();
            act.insert("sub".into(), Value::String(sub.clone()));
            if let Some(inner) = inner {
                act.insert("act".into(), inner);
            }
            Some(Value::Object(act))
        })
    }

    /// The authorization details a token for approval `id` carries.
    pub fn token_details(&self, id: &str) -> Value {
        Value::Array(
            self.details
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    if let Some(object) = d.as_object_mut() {
                        object.insert(APPROVAL_ID.into(), Value::String(id.to_owned()));
                    }
                    d
                })
                .collect(),
        )
    }
}

/// Whether `person` (with `roles`) may answer a request of `asked` under
/// `need`: a person (`user:…`), in one of the groups, and neither the
/// request's subject nor one of its agents — unless the group is `self`
/// and they are the person the request acts for. `Err` says why not.
pub fn may_answer(need: &ApprovalNeed, asked: &Asked, person: &str, roles: &[String]) -> Result<(), String> {
    if !person.starts_with("user:") {
        return Err("only a person (`user:…`) may answer an approval request".into());
    }
    let acting_for = asked.acting_for();
    let same = warden_registry::subject::same;
    let own = same(person, &asked.subject) || asked.actor_chain.iter().any(|a| same(a, person));
    let as_self = need.groups.iter().any(|g| g == SELF_APPROVER) && acting_for.is_some_and(|a| same(a, person));
    if own && !as_self {
        return Err("the request's own subject or agent may not approve it".into());
    }
    if !need.approver_qualifies(person, roles, acting_for) && !as_self {
        return Err(format!(
            "only {} may answer this request",
            need.groups
                .iter()
                .map(|g| if g == SELF_APPROVER {
                    "the person it acts for".to_owned()
                } else {
                    format!("a member of `{g}`")
                })
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    Ok(())
}

/// The need recorded with a request (its groups; `ttl` as stored).
pub fn recorded_need(asked: &Asked, ttl: u64) -> ApprovalNeed {
    ApprovalNeed {
        groups: asked.approvers.clone(),
        ttl,
        policy_ids: asked.policy_ids.clone(),
    }
}

/// SHA-256 of `bytes`, base64url.
pub fn sha256(bytes: &[u8]) -> String {
    base64url::encode(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// The `tool_call` detail of an MCP `tools/call` body: the tool and the
/// digest of its `arguments` (absent: `null`) in canonical form.
pub fn tool_call(route: &str, tool: &str, body: &[u8]) -> Result<Value, String> {
    let message: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    let arguments = message
        .get("params")
        .and_then(|p| p.get("arguments"))
        .cloned()
        .unwrap_or(Value::Null);
    let canonical = warden_audit::jcs::to_vec(&arguments)
        .map_err(|_| "the arguments cannot be put in canonical form".to_owned())?;
    Ok(json!({
        "type": TOOL_CALL,
        "route": route,
        "tool": tool,
        "arguments_sha256": sha256(&canonical),
    }))
}

/// The `api_call` detail of any other gateway request.
pub fn api_call(route: &str, method: &str, path: &str, resource: &str, body: &[u8]) -> Value {
    json!({
        "type": API_CALL,
        "route": route,
        "method": method,
        "path": path,
        "resource": resource,
        "body_sha256": sha256(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked() -> Asked {
        let caller = Caller {
            actor_chain: vec!["agent:bot".into()],
            ..Caller::test("user:ada")
        };
        let mut a = Asked::of_call(&caller, "tools", "tool.call", "Tool::\"rm\"".into(), vec!["aud".into()]);
        a.approvers = vec!["leads".into()];
        a
    }

    #[test]
    fn argument_digests_ignore_layout_and_see_every_value() {
        let a = tool_call("r", "rm", br#"{"params":{"name":"rm","arguments":{"a":1,"b":[true]}}}"#).unwrap();
        let b = tool_call(
            "r",
            "rm",
            br#"{ "params" : { "arguments" : { "b":[ true ], "a" : 1 }, "name":"rm" } }"#,
        )
        .unwrap();
        assert_eq!(a, b);
        let c = tool_call("r", "rm", br#"{"params":{"name":"rm","arguments":{"a":2,"b":[true]}}}"#).unwrap();
        assert_ne!(a["arguments_sha256"], c["arguments_sha256"]);
        let none = tool_call("r", "rm", br#"{"params":{"name":"rm"}}"#).unwrap();
        assert_eq!(none["arguments_sha256"], sha256(b"null"));
        assert!(tool_call("r", "rm", b"{").is_err());
    }

    #[test]
    fn who_may_answer() {
        let a = asked();
        let need = recorded_need(&a, 60);
        let leads = vec!["leads".to_owned()];
        assert!(may_answer(&need, &a, "user:lee", &leads).is_ok());
        assert!(may_answer(&need, &a, "user:lee", &[]).unwrap_err().contains("`leads`"));
        assert!(
            may_answer(&need, &a, "user:ada", &leads)
                .unwrap_err()
                .contains("own subject")
        );
        assert!(
            may_answer(&need, &a, "agent:bot", &leads)
                .unwrap_err()
                .contains("only a person")
        );
        let mut own = a.clone();
        own.approvers = vec!["self".into()];
        let need = recorded_need(&own, 60);
        assert!(may_answer(&need, &own, "user:ada", &[]).is_ok());
        assert!(may_answer(&need, &own, "user:lee", &leads).is_err());
    }

    #[test]
    fn the_act_claim_nests_outermost_first() {
        let mut a = asked();
        a.actor_chain = vec!["agent:outer".into(), "agent:inner".into()];
        assert_eq!(
            a.act(),
            Some(json!({"sub": "agent:outer", "act": {"sub": "agent:inner"}}))
        );
        let d = a.token_details("apr_1");
        assert_eq!(d, json!([]));
        a.details = vec![json!({"type": "tool_call"})];
        assert_eq!(
            a.token_details("apr_1"),
            json!([{"type": "tool_call", "approval_id": "apr_1"}])
        );
        assert_eq!(Asked::from_json(&a.to_json().unwrap()).unwrap(), a);
    }
}
