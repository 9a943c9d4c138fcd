//! People approving agents' actions: what a policy's `@approval("GROUP")`
//! sets in motion (`docs/approvals.md`).
//!
//! A gateway request whose decision needs a person's approval is not
//! forwarded: an approval request is stored ([`ask`]) and the caller gets
//! its id, what is asked (RFC 9396 authorization details: the tool and a
//! hash of its arguments, or the route, method, path and a hash of the
//! body), who may approve, and a CIBA `auth_req_id` to poll the token
//! endpoint with (`urn:openid:params:grant-type:ciba`, in `oauth/`). A
//! signed-in person of an approving group answers ([`answer`]) on the
//! dashboard or through `/api/v1/approvals`; the client's next poll gets a
//! short-lived token whose `authorization_details` name exactly the call
//! approved, and the gateway accepts that token for that call once
//! ([`redeem`]). What runs out unused is expired and audited ([`sweep`]).
//! Every step is an `action_approval` audit event, linked by the id.
//!
//! # Layout
//! - `asked.rs`: [`Asked`], what is asked and for whom (stored as JSON),
//!   and the authorization details of a call.
//! - `ask.rs`: storing a request and answering with its [`Ticket`].
//! - `answer.rs`: a person's approval or denial, with who may give it.
//! - `notify.rs`: telling approvers (webhooks, Slack, e-mail).
//! - `redeem.rs`: the gateway's check of an approval token, and its one use.
//! - `sweep.rs`: expiring what ran out.
//! - `view.rs`: requests as people see them, and who sees which.
//!
//! # What it must not touch
//! HTTP routing and the token service: `oauth/` turns an approval into a
//! token; `gateway/`, `admin/` and `dashboard/` call in here.

pub mod answer;
pub mod ask;
pub mod asked;
pub mod notify;
pub mod redeem;
pub mod sweep;
pub mod view;

pub use self::answer::answer;
pub use self::ask::{Ticket, ask};
pub use self::asked::Asked;

/// How long a person has to answer a request (seconds).
pub const REQUEST_TTL: u64 = 600;
/// Least seconds between two polls of the token endpoint (CIBA `interval`).
pub const POLL_INTERVAL: u64 = 5;
/// The JSON-RPC error code of an MCP call that needs approval (Warden's
/// codes: -32001 refused, -32002 rate limited, -32003 approval required).
pub const JSONRPC_APPROVAL_REQUIRED: i64 = -32003;
/// Longest reason a person may give (characters).
pub const MAX_REASON_CHARS: usize = 500;
/// Longest CIBA `binding_message` (characters).
pub const MAX_BINDING_MESSAGE_CHARS: usize = 200;
