//! A request's resource: its id, read from a literal, the path, the query
//! or a prefix of the JSON body, and the body to forward — the prefix that
//! was read, then the rest as it arrives, watched so that a body which
//! turns ambiguous later (a second `model` key past the prefix) aborts the
//! upload instead of reaching the upstream.

use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::request::Parts;
use futures_util::StreamExt;
use serde_json::Value;

use super::extract::{self, BodyTarget, ExtractError};
use super::forward::UpstreamBody;
use super::reply::GatewayError;
use super::route::Route;
use crate::options::IdSource;

/// The resource id, the body to forward, and what watches it.
pub(super) struct Resource {
    /// The id of the route's resource type.
    pub id: String,
    /// What goes upstream.
    pub body: UpstreamBody,
    /// The JSON-RPC request's id (MCP routes), for error replies.
    pub jsonrpc_id: Option<Value>,
    /// An MCP protocol message rather than a tool call.
    pub mcp_protocol: bool,
    /// Set when the body watch aborted the upload.
    pub aborted: Arc<OnceLock<ExtractError>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether the request has a body at all (HTTP/1.1: `Content-Length` or
/// `Transfer-Encoding`; hyper reports an absent or empty one as ended).
fn has_body(body: &Body) -> bool {
    !body.is_end_stream() && body.size_hint().exact() != Some(0)
}

fn passthrough(body: Body) -> UpstreamBody {
    if has_body(&body) {
        UpstreamBody::stream(body.into_data_stream())
    } else {
        UpstreamBody::Empty
    }
}

pub(super) async fn read_resource(
    max_body_prefix: usize,
    route: &Route,
    rest: &str,
    parts: &Parts,
    body: Body,
) -> Result<Resource, GatewayError> {
    let simple = |id: String, body: Body| Resource {
        id,
        body: passthrough(body),
        jsonrpc_id: None,
        mcp_protocol: false,
        aborted: Arc::default(),
    };
    let target = match &route.config().resource.id {
        IdSource::Literal(id) => return Ok(simple(id.clone(), body)),
        IdSource::PathSegment(i) => return Ok(simple(extract::path_segment(rest, *i)?, body)),
        IdSource::Query(name) => return Ok(simple(extract::query_param(parts.uri.query(), name)?, body)),
        // An MCP GET (the server's event stream) or DELETE (end of session) has no body.
        IdSource::McpToolName if !has_body(&body) => {
            return Ok(Resource {
                mcp_protocol: true,
                ..simple(parts.method.as_str().to_owned(), body)
            });
        }
        IdSource::McpToolName => BodyTarget::McpToolName,
        IdSource::JsonField(_) => BodyTarget::Field(route.json_path()),
    };
    extract::check_json_body(&parts.headers)?;
    read_body_resource(max_body_prefix, target, body).await
}

/// Reads at most `max` bytes of the body for the resource id; the body is
/// then forwarded whole: the prefix, then the rest as it arrives, watched.
async fn read_body_resource(max: usize, target: BodyTarget<'_>, body: Body) -> Result<Resource, GatewayError> {
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut complete = false;
    while buffer.len() < max {
        match stream.next().await {
            Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
            Some(Err(_)) => return Err(ExtractError::BodyRead.into()),
            None => {
                complete = true;
                break;
            }
        }
    }
    let extra = if buffer.len() > max {
        buffer.split_off(max)
    } else {
        Vec::new()
    };
    let scan = extract::scan_prefix(target, &buffer, complete)?;
    let aborted: Arc<OnceLock<ExtractError>> = Arc::default();
    let body = match scan.rest {
        None => UpstreamBody::Full(Bytes::from(buffer)),
        Some(mut watch) => {
            watch.feed(&extra)?;
            let flag = Arc::clone(&aborted);
            let head = futures_util::stream::iter(
                [Bytes::from(buffer), Bytes::from(extra)]
                    .into_iter()
                    .filter(|b| !b.is_empty())
                    .map(Ok::<Bytes, BoxError>),
            );
            let tail = stream.map(move |chunk| -> Result<Bytes, BoxError> {
                let chunk = chunk?;
                if let Err(e) = watch.feed(&chunk) {
                    tracing::warn!(error = %e, "aborting the upstream request: the body turned ambiguous");
                    let _ = flag.set(e.clone());
                    return Err(Box::new(e));
                }
                Ok(chunk)
            });
            UpstreamBody::stream(head.chain(tail))
        }
    };
    Ok(Resource {
        id: scan.facts.resource_id,
        body,
        jsonrpc_id: scan.facts.jsonrpc_id,
        mcp_protocol: scan.facts.mcp_protocol,
        aborted,
    })
}
