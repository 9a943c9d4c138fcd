//! Typed audit events, their canonical bodies, and the audit vocabulary.
//!
//! An event is `{"time": <seconds>, "type": "<kind>", ...fields}`,
//! serialised by RFC 8785 ([`crate::jcs`]), so the same event always has the
//! same bytes and therefore, with its salt, the same leaf.
//!
//! # The vocabulary lives here
//! Everything the rest of Warden decides per event type is answered by
//! [`EventKind`] itself, by exhaustive matches (no catch-all arm): its
//! [`EventType`] and type name, and what storage indexes of it
//! ([`Indexed`]: subject, resource, actor, outcome). [`EventType::ALL`] lists every type. A new
//! event type is therefore a change here (the compiler points at each
//! match) plus the code that produces it; nothing outside this crate keeps
//! its own list. The names and columns are stored forever, so none of them
//! may change for an existing type.
//!
//! This module touches no storage: which columns exist and how they are
//! written belongs to `warden-store`.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The request was allowed.
    Allow,
    /// The request was denied.
    Deny,
}

impl Decision {
    /// `allow` or `deny`: the body's `decision` member and the stored
    /// outcome column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }

    /// The decision named `name` (`allow` or `deny`).
    pub fn parse(name: &str) -> Option<Self> {
        [Decision::Allow, Decision::Deny]
            .into_iter()
            .find(|d| d.as_str() == name)
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares [`EventType`] from one table of variants and names, so that
/// the list of types ([`EventType::ALL`]) and their names cannot drift
/// apart: Rust has no other way to enumerate an enum's variants.
macro_rules! event_types {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)+) => {
        /// The type of an event: one per [`EventKind`] variant. Its name
        /// ([`as_str`](Self::as_str)) is the body's `type` member and the
        /// stored `type` column.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($(#[doc = $doc])* $variant,)+
        }

        impl EventType {
            /// Every event type, in the order [`EventKind`] declares them.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            /// The name of every type, in the order of [`ALL`](Self::ALL):
            /// for lists of names, such as a search form's choices.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The type's name (`token_issued`, …), as bodies and the
            /// store's `type` column hold it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)+
                }
            }
        }
    };
}

event_types! {
    /// [`EventKind::TokenIssued`].
    TokenIssued => "token_issued",
    /// [`EventKind::TokenRefreshed`].
    TokenRefreshed => "token_refreshed",
    /// [`EventKind::TokenExchanged`].
    TokenExchanged => "token_exchanged",
    /// [`EventKind::TokenRevoked`].
    TokenRevoked => "token_revoked",
    /// [`EventKind::RefreshTokenReuseDetected`].
    RefreshTokenReuseDetected => "refresh_token_reuse_detected",
    /// [`EventKind::ClientAuthFailed`].
    ClientAuthFailed => "client_auth_failed",
    /// [`EventKind::KeyCreated`].
    KeyCreated => "key_created",
    /// [`EventKind::KeyRotated`].
    KeyRotated => "key_rotated",
    /// [`EventKind::KeyRetired`].
    KeyRetired => "key_retired",
    /// [`EventKind::AccessDecision`].
    AccessDecision => "access_decision",
    /// [`EventKind::RegistryChange`].
    RegistryChange => "registry_change",
    /// [`EventKind::Approval`].
    Approval => "approval",
    /// [`EventKind::AdminAction`].
    AdminAction => "admin_action",
    /// [`EventKind::RequestsRefused`].
    RequestsRefused => "requests_refused",
    /// [`EventKind::UpstreamFailure`].
    UpstreamFailure => "upstream_failure",
    /// [`EventKind::Erasure`].
    Erasure => "erasure",
    /// [`EventKind::SignIn`].
    SignIn => "sign_in",
    /// [`EventKind::GrantDecision`].
    GrantDecision => "grant_decision",
    /// [`EventKind::DpopRefused`].
    DpopRefused => "dpop_refused",
    /// [`EventKind::ActionApproval`].
    ActionApproval => "action_approval",
}

impl EventType {
    /// The type named `name`, if it is one of [`ALL`](Self::ALL). A stored
    /// name this version does not know (written by a newer one) is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
        /// Who ran the command (`user@host` of the operating system) for a
        /// token minted from the command line (`warden token issue`,
        /// `warden ui link`); absent for the token endpoint's grants.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_by: Option<String>,
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
    /// Requests refused by a limit, counted: one event per limit, key and
    /// window (the first refusal opens a one-minute window; the event is
    /// written when it ends, or at shutdown), never one per request, so a
    /// flood cannot flood the log.
    RequestsRefused {
        /// Which limit: `rate_limit` (a gateway route's limit, answered
        /// 429) or `failure_limit` (client authentication beyond the
        /// failed-authentication limit, answered 429 at the token
        /// endpoint).
        limit: String,
        /// The limited subject (`rate_limit`), or the client id presented
        /// (`failure_limit`; it may not exist).
        principal: String,
        /// The route (`rate_limit`); empty for `failure_limit`.
        #[serde(default)]
        route: String,
        /// The caller's address (`failure_limit`), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_ip: Option<IpAddr>,
        /// Requests refused in the window.
        count: u64,
        /// First refusal (Unix seconds).
        first_at: u64,
        /// Last refusal (Unix seconds).
        last_at: u64,
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
    /// A person signed in through an identity provider, or was refused.
    SignIn {
        /// The Warden subject (`user:…`), when the provider named the
        /// person; empty when it did not get that far.
        subject: String,
        /// How: `oidc:<provider>`.
        method: String,
        /// `allow` (signed in) or `deny` (refused).
        decision: Decision,
        /// Why it was refused (empty when signed in); never a token or code.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
        /// The roles the session carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
        /// `jti` of the session token issued.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jti: Option<String>,
        /// Address of the browser.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_ip: Option<IpAddr>,
    },
    /// A person approved or refused a client's request to act for them
    /// (the authorization-code consent page or a device code).
    GrantDecision {
        /// The person (`user:…`).
        subject: String,
        /// The client asking.
        client_id: String,
        /// `authorization_code` or `device_code`.
        flow: String,
        /// `allow` or `deny`.
        decision: Decision,
        /// The scope granted (or asked for, when refused).
        scope: String,
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
    /// A request was refused for its DPoP proof (RFC 9449): at the token
    /// endpoint, or with a DPoP-bound access token on the gateway or
    /// Warden's APIs. Never the proof or the token.
    DpopRefused {
        /// Whose token or client it was (`svc:trainer`, `user:alice`).
        principal: String,
        /// The OAuth client.
        client_id: String,
        /// Which rule refused it (missing proof, replayed, another key, …).
        reason: String,
        /// The method and path the proof had to be for (`POST /oauth/token`).
        endpoint: String,
        /// Address of the caller.
        source_ip: IpAddr,
    },
    /// A step of a person's approval of an agent's action (a policy's
    /// `@approval`): asked, notified, approved or denied, its single-use
    /// token handed out, used, refused, or expired; linked by
    /// `approval_id`. Never the token, the `auth_req_id` or the call's
    /// arguments (only their SHA-256).
    ActionApproval {
        /// The approval's public id (`apr_…`).
        approval_id: String,
        /// `requested`, `notified`, `notify_failed`, `approved`, `denied`,
        /// `token_issued`, `used`, `refused` or `expired`.
        step: String,
        /// The request's subject (the person an agent acts for, or the
        /// caller itself).
        subject: String,
        /// Agents acting for the subject, outermost first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        actor_chain: Vec<String>,
        /// The OAuth client asking.
        client_id: String,
        /// What the action is on (`Tool::"delete_dataset"`).
        resource: String,
        /// The action (`tool.call`).
        action: String,
        /// SHA-256 of the call's arguments (JCS), base64url.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arguments_sha256: Option<String>,
        /// Who may approve: roles, or `self`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvers: Vec<String>,
        /// The policies that asked for the approval.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        policy_ids: Vec<String>,
        /// The person who decided (approved, denied), when one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// Their reason, or why a use was refused or a notification failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Where a notification went (`webhook:NAME`, `email:NAME`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
}

/// What each kind is and which of its identifiers are indexed. Every match
/// here is exhaustive on purpose: a new kind does not compile until each
/// question is answered for it.
impl EventKind {
    /// The kind's type.
    pub const fn event_type(&self) -> EventType {
        match self {
            EventKind::TokenIssued { .. } => EventType::TokenIssued,
            EventKind::TokenRefreshed { .. } => EventType::TokenRefreshed,
            EventKind::TokenExchanged { .. } => EventType::TokenExchanged,
            EventKind::TokenRevoked { .. } => EventType::TokenRevoked,
            EventKind::RefreshTokenReuseDetected { .. } => EventType::RefreshTokenReuseDetected,
            EventKind::ClientAuthFailed { .. } => EventType::ClientAuthFailed,
            EventKind::KeyCreated { .. } => EventType::KeyCreated,
            EventKind::KeyRotated { .. } => EventType::KeyRotated,
            EventKind::KeyRetired { .. } => EventType::KeyRetired,
            EventKind::AccessDecision { .. } => EventType::AccessDecision,
            EventKind::RegistryChange { .. } => EventType::RegistryChange,
            EventKind::Approval { .. } => EventType::Approval,
            EventKind::AdminAction { .. } => EventType::AdminAction,
            EventKind::RequestsRefused { .. } => EventType::RequestsRefused,
            EventKind::UpstreamFailure { .. } => EventType::UpstreamFailure,
            EventKind::Erasure { .. } => EventType::Erasure,
            EventKind::SignIn { .. } => EventType::SignIn,
            EventKind::GrantDecision { .. } => EventType::GrantDecision,
            EventKind::DpopRefused { .. } => EventType::DpopRefused,
            EventKind::ActionApproval { .. } => EventType::ActionApproval,
        }
    }

    /// The type's name, as the body's `type` member holds it.
    pub const fn type_name(&self) -> &'static str {
        self.event_type().as_str()
    }

    /// The identifiers storage indexes for searching, decided per kind in
    /// one exhaustive match; see [`Indexed`] for what each field holds.
    pub fn indexed(&self) -> Indexed<'_> {
        let none = Indexed::NONE;
        match self {
            EventKind::TokenIssued { subject, .. }
            | EventKind::TokenRefreshed { subject, .. }
            | EventKind::RefreshTokenReuseDetected { subject, .. } => Indexed {
                subject: Some(subject),
                ..none
            },
            EventKind::TokenExchanged {
                subject, actor_chain, ..
            } => Indexed {
                subject: Some(subject),
                actor: outermost(actor_chain),
                ..none
            },
            EventKind::TokenRevoked { .. }
            | EventKind::ClientAuthFailed { .. }
            | EventKind::KeyCreated { .. }
            | EventKind::KeyRotated { .. }
            | EventKind::KeyRetired { .. } => none,
            EventKind::AccessDecision {
                principal,
                resource,
                actor_chain,
                decision,
                ..
            } => Indexed {
                subject: Some(principal),
                resource: Some(resource),
                actor: outermost(actor_chain),
                outcome: Some(*decision),
            },
            EventKind::RegistryChange {
                principal,
                resource,
                actor_chain,
                ..
            } => Indexed {
                subject: Some(principal),
                resource: Some(resource),
                actor: outermost(actor_chain),
                ..none
            },
            EventKind::Approval {
                approver,
                resource,
                requester_actors,
                ..
            } => Indexed {
                subject: Some(approver),
                resource: Some(resource),
                actor: outermost(requester_actors),
                ..none
            },
            EventKind::AdminAction { principal, target, .. } => Indexed {
                subject: Some(principal),
                resource: Some(target),
                ..none
            },
            EventKind::RequestsRefused { principal, .. } => Indexed {
                subject: Some(principal),
                ..none
            },
            EventKind::UpstreamFailure {
                principal, resource, ..
            } => Indexed {
                subject: Some(principal),
                resource: Some(resource),
                ..none
            },
            EventKind::SignIn { subject, decision, .. } => Indexed {
                subject: Some(subject.as_str()).filter(|s| !s.is_empty()),
                outcome: Some(*decision),
                ..none
            },
            EventKind::GrantDecision { subject, decision, .. } => Indexed {
                subject: Some(subject),
                outcome: Some(*decision),
                ..none
            },
            // Erasures recorded before `actor` existed read back as "".
            EventKind::Erasure { actor, .. } => Indexed {
                actor: Some(actor.as_str()).filter(|a| !a.is_empty()),
                ..none
            },
            EventKind::DpopRefused { principal, .. } => Indexed {
                subject: Some(principal),
                ..none
            },
            EventKind::ActionApproval {
                subject,
                resource,
                actor_chain,
                step,
                ..
            } => Indexed {
                subject: Some(subject),
                resource: Some(resource),
                actor: outermost(actor_chain),
                outcome: match step.as_str() {
                    "approved" | "used" => Some(Decision::Allow),
                    "denied" | "refused" => Some(Decision::Deny),
                    _ => None,
                },
            },
        }
    }

    /// [`Indexed::subject`].
    pub fn subject(&self) -> Option<&str> {
        self.indexed().subject
    }

    /// [`Indexed::resource`].
    pub fn resource(&self) -> Option<&str> {
        self.indexed().resource
    }

    /// [`Indexed::actor`].
    pub fn actor(&self) -> Option<&str> {
        self.indexed().actor
    }

    /// [`Indexed::outcome`].
    pub fn outcome(&self) -> Option<Decision> {
        self.indexed().outcome
    }
}

/// The first (outermost) actor of a delegation chain.
fn outermost(chain: &[String]) -> Option<&str> {
    chain.first().map(String::as_str)
}

/// What storage indexes of an event ([`EventKind::indexed`]), so that the
/// log can be searched without reading bodies. Stored beside each event
/// and backfilled by migrations, so never changed for an existing kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indexed<'a> {
    /// Whom the event is about: the token's `sub` for token events and
    /// refresh-token reuse, the principal for access decisions, registry
    /// changes, admin actions and upstream failures, the approver for
    /// approvals.
    pub subject: Option<&'a str>,
    /// What it acted on: the Cedar resource of access decisions, registry
    /// changes, approvals and upstream failures, the target of an admin
    /// action.
    pub resource: Option<&'a str>,
    /// Who acted for the subject: the outermost actor of a delegation (the
    /// agent acting for the subject) for access decisions, registry
    /// changes and token exchanges, the requester's outermost actor for
    /// approvals, and who asked for an erasure.
    pub actor: Option<&'a str>,
    /// The decision of an access decision.
    pub outcome: Option<Decision>,
}

impl Indexed<'_> {
    /// Nothing indexed.
    pub const NONE: Indexed<'static> = Indexed {
        subject: None,
        resource: None,
        actor: None,
        outcome: None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    /// One event of type `t`. No wildcard: a new type fails to compile
    /// here until it gets a sample, and every test below then covers it.
    fn sample(t: EventType) -> EventKind {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        match t {
            EventType::TokenIssued => EventKind::TokenIssued {
                subject: s("svc:trainer"),
                client_id: s("trainer"),
                jti: s("j-1"),
                kid: s("k-2026"),
                scope: s("inference.invoke"),
                audience: vec![s("inference")],
                grant: s("client_credentials"),
                expires_at: 1_800_000_300,
                issued_by: Some(s("alice@build-host")),
            },
            EventType::TokenRefreshed => EventKind::TokenRefreshed {
                subject: s("user:alice"),
                client_id: s("cli"),
                jti: s("j-2"),
                kid: s("k-2026"),
                family: s("fam-9"),
                scope: s("dataset.read"),
            },
            EventType::TokenExchanged => EventKind::TokenExchanged {
                subject: s("user:alice"),
                actor_chain: vec![s("agent:report-bot")],
                client_id: s("report-bot"),
                jti: s("j-3"),
                kid: s("k-2026"),
                scope: s("dataset.read"),
                audience: vec![s("registry")],
            },
            EventType::TokenRevoked => EventKind::TokenRevoked {
                jti: Some(s("j-1")),
                family: None,
                client_id: s("trainer"),
                reason: s("admin"),
            },
            EventType::RefreshTokenReuseDetected => EventKind::RefreshTokenReuseDetected {
                subject: s("user:alice"),
                client_id: s("cli"),
                family: s("fam-9"),
            },
            EventType::ClientAuthFailed => EventKind::ClientAuthFailed {
                client_id: s("trainer"),
                method: s("client_secret_basic"),
                reason: s("wrong credential"),
                source_ip: ip,
            },
            EventType::KeyCreated => EventKind::KeyCreated {
                kid: s("k-2027"),
                alg: s("EdDSA"),
            },
            EventType::KeyRotated => EventKind::KeyRotated {
                kid: s("k-2027"),
                previous_kid: Some(s("k-2026")),
                alg: s("EdDSA"),
            },
            EventType::KeyRetired => EventKind::KeyRetired { kid: s("k-2025") },
            EventType::AccessDecision => EventKind::AccessDecision {
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
            EventType::RegistryChange => EventKind::RegistryChange {
                principal: s("user:bob"),
                resource: s("ModelVersion::\"m@3\""),
                operation: s("promote"),
                digest: Some(s("sha256:00ff")),
                actor_chain: vec![s("agent:release-bot")],
                reason: Some(s("passed evaluation")),
                changes: vec![s("classification: pii -> internal")],
            },
            EventType::Approval => EventKind::Approval {
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
            EventType::AdminAction => EventKind::AdminAction {
                principal: s("user:root"),
                action: s("client.create"),
                target: s("trainer"),
            },
            EventType::RequestsRefused => EventKind::RequestsRefused {
                limit: s("rate_limit"),
                principal: s("agent:report-bot"),
                route: s("chat"),
                source_ip: None,
                count: 38,
                first_at: 1_700_000_000,
                last_at: 1_700_000_041,
            },
            EventType::UpstreamFailure => EventKind::UpstreamFailure {
                principal: s("user:alice"),
                resource: s("Model::\"m\""),
                route: s("chat"),
                request_id: s("r-1"),
                status: 504,
                reason: s("upstream read timed out"),
            },
            EventType::Erasure => EventKind::Erasure {
                index: 41,
                reason: s("gdpr-2026-17"),
                retention_overridden: false,
                actor: s("cli:root"),
            },
            EventType::SignIn => EventKind::SignIn {
                subject: s("user:alice@example.com"),
                method: s("oidc:corp"),
                decision: Decision::Allow,
                reason: String::new(),
                roles: vec![s("ml-engineer")],
                jti: Some(s("j-9")),
                source_ip: Some(ip),
            },
            EventType::GrantDecision => EventKind::GrantDecision {
                subject: s("user:alice@example.com"),
                client_id: s("warden-cli"),
                flow: s("device_code"),
                decision: Decision::Deny,
                scope: s("model.read"),
            },
            EventType::DpopRefused => EventKind::DpopRefused {
                principal: s("agent:report-bot"),
                client_id: s("report-bot"),
                reason: s("the DPoP proof was already used"),
                endpoint: s("POST /v1/chat/completions"),
                source_ip: ip,
            },
            EventType::ActionApproval => EventKind::ActionApproval {
                approval_id: s("apr_x"),
                step: s("approved"),
                subject: s("user:alice"),
                actor_chain: vec![s("agent:report-bot")],
                client_id: s("report-bot"),
                resource: s("Tool::\"delete_dataset\""),
                action: s("tool.call"),
                arguments_sha256: Some(s("47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")),
                approvers: vec![s("data-leads")],
                policy_ids: vec![s("tools.delete-needs-lead")],
                by: Some(s("user:lee")),
                reason: Some(s("ticket 42")),
                channel: None,
            },
        }
    }

    fn samples() -> Vec<EventKind> {
        EventType::ALL.iter().map(|t| sample(*t)).collect()
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
    fn every_type_is_listed_once_with_its_stored_name() {
        // The names are stored in every body and `type` column: pinned.
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, EventType::NAMES);
        assert_eq!(
            names,
            [
                "token_issued",
                "token_refreshed",
                "token_exchanged",
                "token_revoked",
                "refresh_token_reuse_detected",
                "client_auth_failed",
                "key_created",
                "key_rotated",
                "key_retired",
                "access_decision",
                "registry_change",
                "approval",
                "admin_action",
                "requests_refused",
                "upstream_failure",
                "erasure",
                "sign_in",
                "grant_decision",
                "dpop_refused",
                "action_approval",
            ]
        );
        for t in EventType::ALL {
            assert_eq!(sample(*t).event_type(), *t);
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(EventType::parse("token_minted"), None);
        assert_eq!(EventType::parse("Token_Issued"), None);
    }

    #[test]
    fn decisions_are_named_as_bodies_hold_them() {
        for d in [Decision::Allow, Decision::Deny] {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
            assert_eq!(Decision::parse(d.as_str()), Some(d));
            assert_eq!(d.to_string(), d.as_str());
        }
        assert_eq!(Decision::parse("maybe"), None);
    }

    /// The indexed identifiers of every sample: what the store has written
    /// to its `subject`, `resource`, `actor` and `outcome` columns (and
    /// migration 0006 backfilled) since those columns exist. Pinned.
    #[test]
    fn indexed_identifiers_by_type() {
        /// Type, subject, resource, actor, outcome.
        type Indexed<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let expected: [Indexed<'_>; 20] = [
            ("token_issued", Some("svc:trainer"), None, None, None),
            ("token_refreshed", Some("user:alice"), None, None, None),
            (
                "token_exchanged",
                Some("user:alice"),
                None,
                Some("agent:report-bot"),
                None,
            ),
            ("token_revoked", None, None, None, None),
            ("refresh_token_reuse_detected", Some("user:alice"), None, None, None),
            ("client_auth_failed", None, None, None, None),
            ("key_created", None, None, None, None),
            ("key_rotated", None, None, None, None),
            ("key_retired", None, None, None, None),
            (
                "access_decision",
                Some("user:alice"),
                Some("Endpoint::\"chat\""),
                Some("agent:report-bot"),
                Some("deny"),
            ),
            (
                "registry_change",
                Some("user:bob"),
                Some("ModelVersion::\"m@3\""),
                Some("agent:release-bot"),
                None,
            ),
            (
                "approval",
                Some("user:carol"),
                Some("ModelVersion::\"m@3\""),
                Some("agent:release-bot"),
                None,
            ),
            ("admin_action", Some("user:root"), Some("trainer"), None, None),
            ("requests_refused", Some("agent:report-bot"), None, None, None),
            ("upstream_failure", Some("user:alice"), Some("Model::\"m\""), None, None),
            ("erasure", None, None, Some("cli:root"), None),
            ("sign_in", Some("user:alice@example.com"), None, None, Some("allow")),
            (
                "grant_decision",
                Some("user:alice@example.com"),
                None,
                None,
                Some("deny"),
            ),
            ("dpop_refused", Some("agent:report-bot"), None, None, None),
            (
                "action_approval",
                Some("user:alice"),
                Some("Tool::\"delete_dataset\""),
                Some("agent:report-bot"),
                Some("allow"),
            ),
        ];
        let samples = samples();
        let got: Vec<_> = samples
            .iter()
            .map(|k| {
                (
                    k.type_name(),
                    k.subject(),
                    k.resource(),
                    k.actor(),
                    k.outcome().map(Decision::as_str),
                )
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn absent_actors_are_none() {
        let mut kinds = samples();
        for kind in &mut kinds {
            match kind {
                EventKind::AccessDecision { actor_chain, .. }
                | EventKind::RegistryChange { actor_chain, .. }
                | EventKind::TokenExchanged { actor_chain, .. }
                | EventKind::ActionApproval { actor_chain, .. } => actor_chain.clear(),
                EventKind::Approval { requester_actors, .. } => requester_actors.clear(),
                // Erasures recorded before `actor` existed read back as "".
                EventKind::Erasure { actor, .. } => actor.clear(),
                _ => {}
            }
        }
        assert!(kinds.iter().all(|k| k.actor().is_none()));
        let Some(EventKind::Erasure { actor, .. }) =
            AuditEvent::from_body(br#"{"index":3,"reason":"r","time":1,"type":"erasure"}"#)
                .ok()
                .map(|e| e.kind)
        else {
            panic!("an old erasure body no longer reads");
        };
        assert_eq!(actor, "");
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
            let name = kind.type_name();
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
            .find(|k| k.event_type() == EventType::AccessDecision)
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
        }) = samples()
            .into_iter()
            .find(|k| k.event_type() == EventType::AccessDecision)
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
