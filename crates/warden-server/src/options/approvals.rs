//! `[approvals]`: who hears about requests for a person's approval
//! (`docs/approvals.md`), resolved. `[[approvals.notify]]` entries name an
//! approver group and where to tell its members: a webhook (JSON, or the
//! Slack-compatible shape) and e-mail addresses, sent through
//! `[approvals.smtp]`. The binary reads the SMTP password from its file;
//! nothing here does I/O.

use serde::{Deserialize, Serialize};

use super::login::ClientSecret;

/// The group a notify entry names to hear about every request.
pub const EVERY_GROUP: &str = "*";

/// What approvals need besides the policies.
#[derive(Debug, Clone, Default)]
pub struct ApprovalOptions {
    /// Where each group hears about requests.
    pub notify: Vec<NotifyTarget>,
    /// The mail server for `email` targets.
    pub smtp: Option<SmtpOptions>,
}

/// `[[approvals.notify]]`: one group's channels.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// The approver group (a role, `self`), or `*` for every request.
    pub group: String,
    /// An `https://` (or loopback `http://`) URL each request is POSTed to.
    /// It may hold a secret (Slack's do): it is never logged or audited.
    #[serde(default)]
    pub webhook: Option<String>,
    /// The webhook's body: `json` (default) or `slack`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// E-mail addresses told of each request (needs `[approvals.smtp]`).
    #[serde(default)]
    pub email: Vec<String>,
}

impl std::fmt::Debug for NotifyTarget {
    /// Without the webhook's URL, which may hold a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyTarget")
            .field("group", &self.group)
            .field("webhook", &self.webhook.as_ref().map(|_| "<redacted>"))
            .field("format", &self.format)
            .field("email", &self.email)
            .finish()
    }
}

/// A webhook's body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"type": "approval_requested", "approval": {…}, "approve_at": URL}`.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` and `blocks`).
    Slack,
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// None: only for a relay on this machine.
    None,
}

/// `[approvals.smtp]`, resolved.
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    /// The server's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The sender (`Warden <warden@example.com>`).
    pub from: String,
    /// Connection protection.
    pub tls: SmtpTls,
    /// User name and password, when the server wants them.
    pub credentials: Option<(String, ClientSecret)>,
}
