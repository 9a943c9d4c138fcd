//! Telling approvers that a request waits (`[[approvals.notify]]`): a
//! webhook per group (JSON, or Slack's incoming-webhook shape) and e-mail
//! through `[approvals.smtp]`. Each message says what is asked, for whom,
//! by which agent, until when, and links to the request's dashboard page
//! — which only opens it: nothing is approved by following a link.
//!
//! Sending never holds up the request that asked: each channel is sent
//! in its own task, with a timeout and one retry, and audited as
//! `action_approval` step `notified` or `notify_failed` with the channel
//! (`webhook:GROUP`, `email:GROUP`) — never the webhook's URL, which may
//! hold a secret.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};
use warden_audit::EventKind;
use warden_store::Store;

use super::ask::event;
use super::asked::Asked;
use crate::options::approvals::EVERY_GROUP;
use crate::options::{ApprovalOptions, SmtpTls, WebhookFormat};
use crate::state::AppState;

/// How long one delivery may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before the one retry.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Why the notification settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A setting is wrong; the text names it.
    #[error("[approvals]: {0}")]
    Invalid(String),
}

/// One group's channels, checked.
#[derive(Debug, Clone)]
struct Channel {
    group: String,
    webhook: Option<(reqwest::Url, WebhookFormat)>,
    email: Vec<Mailbox>,
}

/// What a request is announced with.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// The approval's id.
    pub id: String,
    /// What is asked.
    pub asked: Asked,
    /// The dashboard page of the request.
    pub approve_at: String,
    /// Until when it may be answered (Unix seconds).
    pub expires_at: u64,
}

/// The configured channels, and what sends on them.
pub struct Notifier {
    channels: Vec<Channel>,
    http: reqwest::Client,
    mail: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("groups", &self.channels.iter().map(|c| &c.group).collect::<Vec<_>>())
            .field("mail", &self.mail.is_some())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Nobody is told (no `[[approvals.notify]]`).
    pub fn none() -> Self {
        Notifier {
            channels: Vec::new(),
            http: reqwest::Client::new(),
            mail: None,
        }
    }

    /// The channels `options` configure, checked: webhook URLs are
    /// `https://` (or `http://` to a loopback address), e-mail addresses
    /// parse, e-mail needs `[approvals.smtp]`.
    pub fn new(options: &ApprovalOptions) -> Result<Self, NotifyError> {
        let bad = |m: String| NotifyError::Invalid(m);
        let mut channels = Vec::new();
        for (n, target) in options.notify.iter().enumerate() {
            let at = format!("approvals.notify[{n}] (group `{}`)", target.group);
            if target.group.trim().is_empty() {
                return Err(bad(format!("{at}: `group` is empty")));
            }
            let webhook = match &target.webhook {
                None => None,
                Some(text) => {
                    let url = reqwest::Url::parse(text).map_err(|_| bad(format!("{at}: `webhook` is not a URL")))?;
                    let loopback = url.host_str().is_some_and(|h| {
                        h.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<std::net::IpAddr>()
                            .map_or(h == "localhost", |ip| ip.is_loopback())
                    });
                    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
                        return Err(bad(format!(
                            "{at}: `webhook` must be https:// (http:// only to this machine)"
                        )));
                    }
                    Some((url, target.format))
                }
            };
            let email = target
                .email
                .iter()
                .map(|a| {
                    a.parse::<Mailbox>()
                        .map_err(|_| bad(format!("{at}: `{a}` is not an e-mail address")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if !email.is_empty() && options.smtp.is_none() {
                return Err(bad(format!("{at}: `email` needs an [approvals.smtp] server")));
            }
            if webhook.is_none() && email.is_empty() {
                return Err(bad(format!("{at}: give a `webhook`, `email`, or both")));
            }
            channels.push(Channel {
                group: target.group.trim().to_owned(),
                webhook,
                email,
            });
        }
        let mail = match &options.smtp {
            None => None,
            Some(smtp) => {
                let from = smtp
                    .from
                    .parse::<Mailbox>()
                    .map_err(|_| bad(format!("approvals.smtp.from: `{}` is not an e-mail address", smtp.from)))?;
                let local = smtp
                    .host
                    .parse::<std::net::IpAddr>()
                    .map_or(smtp.host == "localhost", |ip| ip.is_loopback());
                if smtp.tls == SmtpTls::None && !local {
                    return Err(bad(
                        "approvals.smtp: `tls = \"none\"` is only for a relay on this machine (127.0.0.1, ::1, localhost)"
                            .into(),
                    ));
                }
                let builder = match smtp.tls {
                    SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
                    SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)),
                }
                .map_err(|e| bad(format!("approvals.smtp: {e}")))?;
                let mut builder = builder.port(smtp.port).timeout(Some(SEND_TIMEOUT));
                if let Some((user, password)) = &smtp.credentials {
                    builder = builder.credentials(Credentials::new(user.clone(), password.0.to_string()));
                }
                Some((builder.build(), from))
            }
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(SEND_TIMEOUT)
            .build()
            .map_err(|e| bad(format!("the webhook client: {e}")))?;
        Ok(Notifier { channels, http, mail })
    }

    /// Whether any channel is configured.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Tells every channel of the request's groups (and `*`), each in its
    /// own task; returns at once.
    pub fn announce<S: Store>(self: &Arc<Self>, app: &Arc<AppState<S>>, announcement: Announcement) {
        for (n, channel) in self.channels.iter().enumerate() {
            let listens = channel.group == EVERY_GROUP || announcement.asked.approvers.contains(&channel.group);
            if !listens {
                continue;
            }
            if channel.webhook.is_some() {
                self.spawn(app, &announcement, n, Via::Webhook);
            }
            if !channel.email.is_empty() {
                self.spawn(app, &announcement, n, Via::Email);
            }
        }
    }

    fn spawn<S: Store>(self: &Arc<Self>, app: &Arc<AppState<S>>, announcement: &Announcement, n: usize, via: Via) {
        let (notifier, app, announcement) = (Arc::clone(self), Arc::clone(app), announcement.clone());
        tokio::spawn(async move {
            let Some(channel) = notifier.channels.get(n) else {
                return;
            };
            let mut outcome = notifier.send(channel, &announcement, via).await;
            if outcome.is_err() {
                tokio::time::sleep(RETRY_AFTER).await;
                outcome = notifier.send(channel, &announcement, via).await;
            }
            let name = format!("{}:{}", via.name(), channel.group);
            let (step, reason) = match &outcome {
                Ok(()) => ("notified", None),
                Err(why) => {
                    tracing::warn!(approval_id = %announcement.id, channel = %name, error = %why, "an approver could not be told");
                    ("notify_failed", Some(why.clone()))
                }
            };
            let mut event = event(
                &announcement.id,
                step,
                &announcement.asked,
                None,
                reason.as_deref(),
                crate::state::now(),
            );
            if let EventKind::ActionApproval { channel, .. } = &mut event.kind {
                *channel = Some(name);
            }
            if let Err(e) = app.audit.record(event).await {
                tracing::error!(error = %e, approval_id = %announcement.id, "a notification could not be audited");
            }
        });
    }

    async fn send(&self, channel: &Channel, a: &Announcement, via: Via) -> Result<(), String> {
        match via {
            Via::Webhook => {
                let Some((url, format)) = &channel.webhook else {
                    return Ok(());
                };
                let body = match format {
                    WebhookFormat::Json => json_body(a),
                    WebhookFormat::Slack => slack_body(a),
                };
                let r = self
                    .http
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .map_err(|e| format!("the webhook could not be reached: {}", without_url(&e)))?;
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("the webhook answered {}", r.status().as_u16()))
                }
            }
            Via::Email => {
                let Some((transport, from)) = &self.mail else {
                    return Err("no mail server is configured".into());
                };
                let mut message = Message::builder().from(from.clone()).subject(subject(a));
                for to in &channel.email {
                    message = message.to(to.clone());
                }
                let message = message
                    .body(text(a))
                    .map_err(|e| format!("the message could not be built: {e}"))?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("the mail server refused or failed: {e}"))
            }
        }
    }
}

/// Which channel of a group.
#[derive(Debug, Clone, Copy)]
enum Via {
    Webhook,
    Email,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Webhook => "webhook",
            Via::Email => "email",
        }
    }
}

/// A reqwest error's text without the URL (which may hold a secret).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// One line: what is asked, for whom, by which agent.
fn headline(a: &Announcement) -> String {
    let asked = &a.asked;
    let what = match asked.tool() {
        Some(tool) => format!("call the tool `{tool}`"),
        None => format!("`{}` on {}", asked.action, asked.resource),
    };
    let by = asked.actor_chain.first().map_or_else(
        || asked.subject.clone(),
        |agent| format!("{agent} (for {})", asked.subject),
    );
    format!("{by} asks to {what}")
}

fn subject(a: &Announcement) -> String {
    format!("Approval needed: {}", headline(a))
}

fn text(a: &Announcement) -> String {
    let asked = &a.asked;
    let mut out = format!(
        "{}.\n\nRequest: {}\nRoute: {}\nWho may answer: {}\nPolicies: {}\nAnswer before: {}\n",
        headline(a),
        a.id,
        asked.route,
        asked.approvers.join(", "),
        asked.policy_ids.join(", "),
        crate::time::readable(a.expires_at),
    );
    if let Some(message) = &asked.binding_message {
        out.push_str(&format!("Message: {message}\n"));
    }
    out.push_str(&format!(
        "\nReview it and answer here, signed in (opening the link approves nothing):\n{}\n",
        a.approve_at
    ));
    out
}

fn json_body(a: &Announcement) -> Value {
    let asked = &a.asked;
    json!({
        "type": "approval_requested",
        "approval": {
            "id": a.id,
            "subject": asked.subject,
            "actor_chain": asked.actor_chain,
            "client_id": asked.client_id,
            "route": asked.route,
            "action": asked.action,
            "resource": asked.resource,
            "tool": asked.tool(),
            "digest": asked.digest(),
            "approvers": asked.approvers,
            "policy_ids": asked.policy_ids,
            "binding_message": asked.binding_message,
            "expires_at": a.expires_at,
        },
        "approve_at": a.approve_at,
    })
}

/// Text Slack shows as written: `&`, `<` and `>` escaped, so that a tool
/// name or subject cannot add a link or a mention.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn slack_body(a: &Announcement) -> Value {
    let headline = slack_escape(&headline(a));
    let text = format!("{headline}. <{}|Review {}>", a.approve_at, a.id);
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Approval needed*\n{headline}")}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
                "Who may answer: {} · before {}",
                slack_escape(&a.asked.approvers.join(", ")),
                crate::time::readable(a.expires_at)
            )}]},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Review"}, "url": a.approve_at}]},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::NotifyTarget;

    fn target(group: &str, webhook: Option<&str>, email: &[&str]) -> NotifyTarget {
        NotifyTarget {
            group: group.into(),
            webhook: webhook.map(str::to_owned),
            format: WebhookFormat::Json,
            email: email.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    fn options(targets: Vec<NotifyTarget>) -> ApprovalOptions {
        ApprovalOptions {
            notify: targets,
            smtp: None,
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(Notifier::new(&options(vec![target("leads", Some("https://hooks.example/x"), &[])])).is_ok());
        assert!(Notifier::new(&options(vec![target("leads", Some("http://127.0.0.1:9/x"), &[])])).is_ok());
        for (t, needle) in [
            (target("leads", Some("http://hooks.example/x"), &[]), "https://"),
            (target("leads", Some("not a url"), &[]), "not a URL"),
            (target("leads", None, &["lee@example.com"]), "[approvals.smtp]"),
            (target("leads", None, &[]), "give a `webhook`"),
            (target(" ", Some("https://h.example"), &[]), "empty"),
        ] {
            let e = Notifier::new(&options(vec![t])).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn plain_smtp_only_to_this_machine() {
        let smtp = |host: &str| ApprovalOptions {
            notify: Vec::new(),
            smtp: Some(crate::options::SmtpOptions {
                host: host.into(),
                port: 25,
                from: "w@example.com".into(),
                tls: SmtpTls::None,
                credentials: None,
            }),
        };
        assert!(Notifier::new(&smtp("127.0.0.1")).is_ok());
        let e = Notifier::new(&smtp("smtp.example.com")).unwrap_err().to_string();
        assert!(e.contains("only for a relay on this machine"), "{e}");
    }

    #[test]
    fn messages_say_what_and_link_without_secrets() {
        let caller = crate::access::Caller {
            actor_chain: vec!["agent:bot".into()],
            ..crate::access::Caller::test("user:ada")
        };
        let mut asked = Asked::of_call(&caller, "tools", "tool.call", "Tool::\"rm\"".into(), vec![]);
        asked.details = vec![json!({"type": "tool_call", "tool": "rm", "arguments_sha256": "abc"})];
        asked.approvers = vec!["leads".into()];
        let a = Announcement {
            id: "apr_1".into(),
            asked,
            approve_at: "https://w.example/ui/approvals/apr_1".into(),
            expires_at: 1_800_000_000,
        };
        assert_eq!(headline(&a), "agent:bot (for user:ada) asks to call the tool `rm`");
        assert!(text(&a).contains("https://w.example/ui/approvals/apr_1"));
        assert_eq!(json_body(&a)["approval"]["digest"], "abc");
        let slack = slack_body(&a);
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .contains("<https://w.example/ui/approvals/apr_1|Review apr_1>")
        );
        let mut evil = a.clone();
        evil.asked.details = vec![json!({"type": "tool_call", "tool": "x <https://evil.example|click>"})];
        let text = slack_body(&evil)["text"].as_str().unwrap().to_owned();
        assert!(!text.contains("<https://evil"), "{text}");
    }
}
