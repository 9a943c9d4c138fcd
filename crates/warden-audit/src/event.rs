//! Typed audit events and their canonical bodies.
//!
//! An event is `{"time": <seconds>, "type": "<kind>", ...fields}`,
//! serialised by RFC 8785 ([`crate::jcs`]), so the same event always has the
//! same bytes and therefore, with its salt, the same leaf.
//!
//! # What an event may hold
//! Identifiers only: subjects, client ids, token ids (`jti`), refresh-token
//! family ids, key ids (`kid`), scopes, audiences, policy ids, routes,
//! addresses. **Never** a token, a client secret, a password, a private key
//! or any other credential or key material, not even hashed: the log is
//! read by auditors and exported, and a body outlives the secret's
//! rotation. Every field below was chosen so that the whole event can be
//! shown to an auditor; a test checks that no member is named like a
//! credential.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::AuditError;
use crate::jcs;
use crate::leaf::EventLeaf;

/// One audit event: when it happened and what happened.
///
/// Holds identifiers only, never tokens, secrets or key material (see
/// [the crate documentation](crate#what-never-goes-in-an-event)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When, in seconds since the Unix epoch; given by the caller (this
    /// crate reads no clock).
    pub time: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl AuditEvent {
    /// An event of `kind` at `time` (seconds since the Unix epoch).
    pub fn new(time: u64, kind: EventKind) -> Self {
        Self { time, kind }
    }

    /// The canonical (RFC 8785) bytes of the event: what the leaf commits to.
    pub fn body(&self) -> Result<Vec<u8>, AuditError> {
        jcs::to_vec(self)
    }

    /// The body sealed under a fresh random salt, ready to append.
    pub fn seal(&self) -> Result<EventLeaf, AuditError> {
        EventLeaf::seal(self.body()?)
    }

    /// Reads an event back from its body, for display. Checking a body
    /// against the log uses the bytes, never this parse.
    pub fn from_body(body: &[u8]) -> Result<Self, AuditError> {
        serde_json::from_slice(body).map_err(|e| AuditError::Canonicalization(e.to_string()))
    }
}

/// The outcome of an access decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The request was allowed.
    Allow,
    /// The request was denied.
    Deny,
}

/// What happened, with the identifiers an auditor needs.
///
/// Never tokens, secrets or key material: see
/// [the crate documentation](crate#what-never-goes-in-an-event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The token service issued an access token.
    TokenIssued {
        /// The token's `sub`.
        subject: String,
        /// The client it was issued to.
        client_id: String,
        /// The token's `jti`.
        jti: String,
        /// `kid` of the signing key.
        kid: String,
        /// The granted scope (space-separated).
        scope: String,
        /// The token's `aud`.
        audience: Vec<String>,
        /// The OAuth grant type used.
        grant: String,
        /// The token's `exp`.
        expires_at: u64,
    },
    /// A refresh-token grant issued a new access token and rotated the
    /// refresh token.
    TokenRefreshed {
        /// The token's `sub`.
        subject: String,
        /// The client that refreshed.
        client_id: String,
        /// `jti` of the new access token.
        jti: String,
        /// `kid` of the signing key.
        kid: String,
        /// Id of the refresh-token family (not the refresh token).
        family: String,
        /// The granted scope.
        scope: String,
    },
    /// RFC 8693 token exchange: an actor obtained a token for a subject.
    TokenExchanged {
        /// `sub` of the new token (the user acted for).
        subject: String,
        /// The delegation chain, outermost actor first.
        actor_chain: Vec<String>,
        /// The client that asked.
        client_id: String,
        /// `jti` of the new token.
        jti: String,
        /// `kid` of the signing key.
        kid: String,
        /// The granted scope.
        scope: String,
        /// The new token's `aud`.
        audience: Vec<String>,
    },
    /// A token or refresh-token family was revoked.
    TokenRevoked {
        /// `jti` of the revoked access token, if one was named.
        jti: Option<String>,
        /// The revoked refresh-token family, if one was named.
        family: Option<String>,
        /// The client that asked.
        client_id: String,
        /// Why (e.g. `client_request`, `admin`).
        reason: String,
    },
    /// A spent refresh token was presented again; its family was revoked.
    RefreshTokenReuseDetected {
        /// The family's subject.
        subject: String,
        /// The family's client.
        client_id: String,
        /// Id of the revoked family.
        family: String,
    },
    /// A client failed to authenticate at the token service.
    ClientAuthFailed {
        /// The client id presented (it may not exist).
        client_id: String,
        /// The authentication method tried (e.g. `client_secret_basic`).
        method: String,
        /// Why it failed, without the presented credential.
        reason: String,
        /// Address of the caller.
        source_ip: IpAddr,
    },
    /// A signing key was generated.
    KeyCreated {
        /// Its `kid`.
        kid: String,
        /// The algorithm it is bound to.
        alg: String,
    },
    /// A new key became the signing key.
    KeyRotated {
        /// `kid` of the new signing key.
        kid: String,
        /// `kid` of the key it replaced, if any.
        previous_kid: Option<String>,
        /// The algorithm of the new key.
        alg: String,
    },
    /// A key was withdrawn from the published set.
    KeyRetired {
        /// Its `kid`.
        kid: String,
    },
    /// The gateway authorised or refused a request.
    AccessDecision {
        /// The principal (`user:…`, `svc:…`, `agent:…`).
        principal: String,
        /// Actors that acted for the principal, outermost first.
        actor_chain: Vec<String>,
        /// The client of the token.
        client_id: String,
        /// `jti` of the token presented.
        jti: String,
        /// The Cedar action.
        action: String,
        /// The Cedar resource.
        resource: String,
        /// The outcome.
        decision: Decision,
        /// Ids of the policies that decided it.
        policy_ids: Vec<String>,
        /// The request id.
        request_id: String,
        /// The gateway route matched.
        route: String,
        /// Address of the caller.
        source_ip: IpAddr,
        /// Status the upstream answered, if the request was forwarded.
        upstream_status: Option<u16>,
        /// The purpose the caller stated (`X-Warden-Purpose`), when it
        /// stated one; recorded for reads of personal data.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        purpose: Option<String>,
    },
    /// A dataset, model, version or lineage edge was created or changed.
    RegistryChange {
        /// Who made the change.
        principal: String,
        /// What changed (e.g. `ModelVersion::"m/3"`).
        resource: String,
        /// The change (e.g. `create`, `promote`, `delete`).
        operation: String,
        /// Content digest of the version, if it has one.
        digest: Option<String>,
        /// Actors that acted for the principal, outermost first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        actor_chain: Vec<String>,
        /// Why, when the change needs a reason (stage changes, rollbacks,
        /// promotion requests, deletions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Each changed field with its old and new value, for metadata
        /// edits (`classification: pii -> internal`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<String>,
    },
    /// A principal voted on a request (four-eyes promotion): approved or
    /// rejected it.
    Approval {
        /// Who voted.
        approver: String,
        /// Who asked.
        requester: String,
        /// The `act` chain of the requester's token, outermost first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        requester_actors: Vec<String>,
        /// What the request is about (e.g. `ModelVersion::"m@3"`).
        resource: String,
        /// The action asked for (e.g. `model.promote`).
        action: String,
        /// `approve` or `reject`.
        vote: String,
        /// Why.
        reason: String,
        /// The request's id.
        request_id: String,
        /// Approvals that count after this vote, and how many are needed.
        approvals: u32,
        /// Approvals needed.
        required: u32,
    },
    /// An administrator changed configuration, clients or policies.
    AdminAction {
        /// The administrator.
        principal: String,
        /// The action (e.g. `client.create`).
        action: String,
        /// What it acted on.
        target: String,
    },
    /// The gateway forwarded an allowed request and the upstream failed
    /// (refused, reset or timed out); the client got `status`.
    UpstreamFailure {
        /// The principal of the request.
        principal: String,
        /// The Cedar resource.
        resource: String,
        /// The gateway route.
        route: String,
        /// The request id.
        request_id: String,
        /// Status answered to the client (502 or 504).
        status: u16,
        /// What failed, without request data.
        reason: String,
    },
    /// The body of an earlier event was erased; its leaf stays.
    Erasure {
        /// Log index of the erased event.
        index: u64,
        /// Why (e.g. a GDPR request reference).
        reason: String,
        /// Whether the event was younger than the configured retention and
        /// the erasure needed an explicit override.
        #[serde(default)]
        retention_overridden: bool,
        /// Who asked, as the caller identified itself (e.g. `cli:alice`).
        #[serde(default)]
        actor: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    /// The name each variant serialises as. No wildcard: a new variant
    /// fails to compile here until it gets a sample below.
    fn type_name(kind: &EventKind) -> &'static str {
        match kind {
            EventKind::TokenIssued { .. } => "token_issued",
            EventKind::TokenRefreshed { .. } => "token_refreshed",
            EventKind::TokenExchanged { .. } => "token_exchanged",
            EventKind::TokenRevoked { .. } => "token_revoked",
            EventKind::RefreshTokenReuseDetected { .. } => "refresh_token_reuse_detected",
            EventKind::ClientAuthFailed { .. } => "client_auth_failed",
            EventKind::KeyCreated { .. } => "key_created",
            EventKind::KeyRotated { .. } => "key_rotated",
            EventKind::KeyRetired { .. } => "key_retired",
            EventKind::AccessDecision { .. } => "access_decision",
            EventKind::RegistryChange { .. } => "registry_change",
            EventKind::Approval { .. } => "approval",
            EventKind::AdminAction { .. } => "admin_action",
            EventKind::UpstreamFailure { .. } => "upstream_failure",
            EventKind::Erasure { .. } => "erasure",
        }
    }

    const KINDS: usize = 15;

    fn samples() -> Vec<EventKind> {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        vec![
            EventKind::TokenIssued {
                subject: s("svc:trainer"),
                client_id: s("trainer"),
                jti: s("j-1"),
                kid: s("k-2026"),
                scope: s("inference.invoke"),
                audience: vec![s("inference")],
                grant: s("client_credentials"),
                expires_at: 1_800_000_300,
            },
            EventKind::TokenRefreshed {
                subject: s("user:alice"),
                client_id: s("cli"),
                jti: s("j-2"),
                kid: s("k-2026"),
                family: s("fam-9"),
                scope: s("dataset.read"),
            },
            EventKind::TokenExchanged {
                subject: s("user:alice"),
                actor_chain: vec![s("agent:report-bot")],
                client_id: s("report-bot"),
                jti: s("j-3"),
                kid: s("k-2026"),
                scope: s("dataset.read"),
                audience: vec![s("registry")],
            },
            EventKind::TokenRevoked {
                jti: Some(s("j-1")),
                family: None,
                client_id: s("trainer"),
                reason: s("admin"),
            },
            EventKind::RefreshTokenReuseDetected {
                subject: s("user:alice"),
                client_id: s("cli"),
                family: s("fam-9"),
            },
            EventKind::ClientAuthFailed {
                client_id: s("trainer"),
                method: s("client_secret_basic"),
                reason: s("wrong credential"),
                source_ip: ip,
            },
            EventKind::KeyCreated {
                kid: s("k-2027"),
                alg: s("EdDSA"),
            },
            EventKind::KeyRotated {
                kid: s("k-2027"),
                previous_kid: Some(s("k-2026")),
                alg: s("EdDSA"),
            },
            EventKind::KeyRetired { kid: s("k-2025") },
            EventKind::AccessDecision {
                principal: s("user:alice"),
                actor_chain: vec![s("agent:report-bot")],
                client_id: s("report-bot"),
                jti: s("j-3"),
                action: s("inference.invoke"),
                resource: s("Endpoint::\"chat\""),
                decision: Decision::Deny,
                policy_ids: vec![s("policy0"), s("policy4")],
                request_id: s("req-77"),
                route: s("/v1/chat"),
                source_ip: ip,
                upstream_status: None,
                purpose: None,
            },
            EventKind::RegistryChange {
                principal: s("user:bob"),
                resource: s("ModelVersion::\"m@3\""),
                operation: s("promote"),
                digest: Some(s("sha256:00ff")),
                actor_chain: vec![s("agent:release-bot")],
                reason: Some(s("passed evaluation")),
                changes: vec![s("classification: pii -> internal")],
            },
            EventKind::Approval {
                approver: s("user:carol"),
                requester: s("user:bob"),
                requester_actors: vec![s("agent:release-bot")],
                resource: s("ModelVersion::\"m@3\""),
                action: s("model.promote"),
                vote: s("approve"),
                reason: s("metrics reviewed"),
                request_id: s("pr-1"),
                approvals: 1,
                required: 2,
            },
            EventKind::AdminAction {
                principal: s("user:root"),
                action: s("client.create"),
                target: s("trainer"),
            },
            EventKind::UpstreamFailure {
                principal: s("user:alice"),
                resource: s("Model::\"m\""),
                route: s("chat"),
                request_id: s("r-1"),
                status: 504,
                reason: s("upstream read timed out"),
            },
            EventKind::Erasure {
                index: 41,
                reason: s("gdpr-2026-17"),
                retention_overridden: false,
                actor: s("cli:root"),
            },
        ]
    }

    fn member_names(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(members) => {
                for (name, v) in members {
                    out.push(name.clone());
                    member_names(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| member_names(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_kind_has_a_sample() {
        let mut names: Vec<_> = samples().iter().map(type_name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS);
    }

    #[test]
    fn no_event_has_a_member_named_like_a_credential() {
        for kind in samples() {
            let body = AuditEvent::new(1_800_000_000, kind).body().unwrap();
            let mut names = Vec::new();
            member_names(&serde_json::from_slice(&body).unwrap(), &mut names);
            for name in names {
                let lower = name.to_lowercase();
                for banned in ["token", "secret", "password", "private", "credential", "key_material"] {
                    assert!(!lower.contains(banned), "member `{name}` looks like a credential");
                }
            }
        }
    }

    #[test]
    fn bodies_are_canonical_and_tagged() {
        for kind in samples() {
            let name = type_name(&kind);
            let event = AuditEvent::new(1_800_000_000, kind);
            let body = event.body().unwrap();
            let value: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(value["type"], name);
            assert_eq!(value["time"], 1_800_000_000u64);
            assert_eq!(jcs::to_vec(&value).unwrap(), body, "{name}: body is already canonical");
            assert_eq!(AuditEvent::from_body(&body).unwrap(), event, "{name}: round trip");
        }
    }

    #[test]
    fn access_decision_body_is_stable() {
        let kind = samples()
            .into_iter()
            .find(|k| type_name(k) == "access_decision")
            .unwrap();
        let body = AuditEvent::new(1_800_000_000, kind).body().unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"action":"inference.invoke","actor_chain":["agent:report-bot"],"client_id":"report-bot","decision":"deny","jti":"j-3","policy_ids":["policy0","policy4"],"principal":"user:alice","request_id":"req-77","resource":"Endpoint::\"chat\"","route":"/v1/chat","source_ip":"192.0.2.7","time":1800000000,"type":"access_decision","upstream_status":null}"#
        );
    }

    #[test]
    fn a_stated_purpose_joins_the_body_and_its_absence_changes_nothing() {
        let Some(EventKind::AccessDecision {
            principal,
            actor_chain,
            client_id,
            jti,
            action,
            resource,
            decision,
            policy_ids,
            request_id,
            route,
            source_ip,
            upstream_status,
            ..
        }) = samples().into_iter().find(|k| type_name(k) == "access_decision")
        else {
            panic!("no access_decision sample");
        };
        let kind = EventKind::AccessDecision {
            principal,
            actor_chain,
            client_id,
            jti,
            action,
            resource,
            decision,
            policy_ids,
            request_id,
            route,
            source_ip,
            upstream_status,
            purpose: Some(s("fraud-detection")),
        };
        let body = String::from_utf8(AuditEvent::new(1_800_000_000, kind).body().unwrap()).unwrap();
        assert!(
            body.contains(r#""principal":"user:alice","purpose":"fraud-detection","request_id""#),
            "{body}"
        );
    }

    #[test]
    fn times_beyond_double_precision_are_refused() {
        let event = AuditEvent::new(u64::MAX, EventKind::KeyRetired { kid: s("k") });
        assert!(matches!(event.body(), Err(AuditError::Canonicalization(_))));
    }
}
