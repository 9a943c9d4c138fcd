//! What `warden dataset | model | lineage` share: [`RegistryClient`], the
//! one place that calls the registry API of a running server, and
//! [`Output`], the one place that prints its answers.
//!
//! # Calls
//! Every call goes to `<server>/api/v1/…` with the access token as
//! `Authorization: Bearer` (a header marked sensitive) and, when given,
//! `X-Warden-Purpose`. The token is never printed, logged or put in an
//! error. Redirects are not followed (they would carry the token
//! elsewhere) and no proxy is taken from the environment, as for the
//! gateway's own upstream client; plain `http://` to a host other than
//! loopback draws a warning.
//!
//! # Exit statuses
//! The server answers errors as `{"error": CODE, "error_description":
//! TEXT}`. A 4xx answer is the server saying no (a policy denial, the
//! four-eyes rule, a missing or malformed thing, an invalid token): it is
//! printed as `error: TEXT (CODE, HTTP STATUS)` and exits 1. An
//! unreachable server, a 5xx or an answer that is not the API's could not
//! be judged: exit 2 (see `exit.rs`).
//!
//! # Output
//! `--json` prints the server's JSON as it came. Otherwise lists are
//! aligned tables when standard output is a terminal, and everything else
//! (and lists piped elsewhere) is `key: value` lines, records separated by
//! a blank line. Times are shown in RFC 3339.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;
use warden_registry::{NodeKind, NodeRef};
use zeroize::Zeroizing;

use super::{Context, rfc3339};
use crate::cli::RemoteArgs;
use crate::exit::{Refused, UsageError};

/// The purpose header (`warden_server::access::purpose::HEADER`).
const PURPOSE_HEADER: &str = "x-warden-purpose";
/// Largest answer read from the server.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// A client of one server's registry API, as one principal.
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    authorization: HeaderValue,
    purpose: Option<HeaderValue>,
}

impl RegistryClient {
    /// The client `remote` describes: `--server` (default: the configured
    /// issuer), the token from `--token`, `WARDEN_TOKEN` or `--token-file`,
    /// else one from the person's sign-in (`warden login`) for the server's
    /// own audience, and `--purpose`. A missing or unusable token is a
    /// usage error.
    pub async fn new(remote: &RemoteArgs, ctx: &Context) -> anyhow::Result<Self> {
        let server = remote.server.as_deref().unwrap_or(&ctx.options.issuer);
        let base = server_url(server)?;
        let token = match (&remote.token, &remote.token_file) {
            (_, Some(path)) => read_token(path)?,
            (Some(token), None) => Zeroizing::new(token.0.trim().to_owned()),
            (None, None) => {
                let issuer = server.trim_end_matches('/').to_owned();
                super::login::access_token(&issuer, std::slice::from_ref(&issuer), None)
                    .await
                    .map_err(|e| {
                        UsageError(format!(
                            "no access token: run `warden login`, give --token-file FILE, or set WARDEN_TOKEN ({e})"
                        ))
                    })?
            }
        };
        if token.is_empty() {
            return Err(UsageError("the access token is empty".into()).into());
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.as_str()))
            .map_err(|_| UsageError("the access token holds characters an HTTP header cannot carry".into()))?;
        authorization.set_sensitive(true);
        let purpose = remote
            .purpose
            .as_deref()
            .map(|p| {
                HeaderValue::from_str(p).map_err(|_| UsageError(format!("--purpose `{}` is not a name", clean(p))))
            })
            .transpose()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(RegistryClient {
            http,
            base,
            authorization,
            purpose,
        })
    }

    /// `GET /api/v1/<path>?<query>`.
    pub async fn get(&self, path: &[&str], query: &[(&str, &str)]) -> anyhow::Result<Value> {
        self.send(Method::GET, path, query, None).await
    }

    /// `POST /api/v1/<path>` with `body` as JSON.
    pub async fn post<B: Serialize>(&self, path: &[&str], body: &B) -> anyhow::Result<Value> {
        self.send(Method::POST, path, &[], Some(serde_json::to_vec(body)?))
            .await
    }

    /// `PATCH /api/v1/<path>` with `body` as JSON.
    pub async fn patch<B: Serialize>(&self, path: &[&str], body: &B) -> anyhow::Result<Value> {
        self.send(Method::PATCH, path, &[], Some(serde_json::to_vec(body)?))
            .await
    }

    /// `DELETE /api/v1/<path>?<query>`.
    pub async fn delete(&self, path: &[&str], query: &[(&str, &str)]) -> anyhow::Result<Value> {
        self.send(Method::DELETE, path, query, None).await
    }

    /// The URL of `/api/v1/<path>`, each element one percent-encoded segment.
    fn url(&self, path: &[&str], query: &[(&str, &str)]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("the server URL `{}` cannot take a path", self.base))?
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Value> {
        let url = self.url(path, query)?;
        let mut request = self
            .http
            .request(method, url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(purpose) = &self.purpose {
            request = request.header(PURPOSE_HEADER, purpose.clone());
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| anyhow!("could not reach the server at {}: {}", self.base, reqwest_cause(&e)))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| anyhow!("reading the server's answer: {}", reqwest_cause(&e)))?
        {
            if bytes.len() + chunk.len() > MAX_RESPONSE {
                return Err(anyhow!("the server's answer is larger than {MAX_RESPONSE} bytes"));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|_| {
                anyhow!(
                    "the answer of {url} is not JSON (HTTP {}): is `{}` a Warden server?",
                    status.as_u16(),
                    self.base
                )
            });
        }
        Err(api_error(status, &bytes))
    }
}

/// The error for a non-2xx answer: [`Refused`] (exit 1) for 4xx, a plain
/// error (exit 2) otherwise.
fn api_error(status: StatusCode, body: &[u8]) -> anyhow::Error {
    let parsed: Option<(String, String)> = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let code = v.get("error")?.as_str()?.to_owned();
        let description = v
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Some((code, description))
    });
    let (code, description) = parsed.unwrap_or_else(|| {
        (
            "unexpected_response".to_owned(),
            format!(
                "the server answered {} without a Warden error body",
                status.canonical_reason().unwrap_or("an error")
            ),
        )
    });
    let line = format!("{} ({}, HTTP {})", clean(&description), clean(&code), status.as_u16());
    if status.is_client_error() {
        Refused(format!("error: {line}")).into()
    } else {
        anyhow!(line)
    }
}

/// The innermost cause of a transport error (reqwest's own message is
/// only "error sending request").
fn reqwest_cause(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    if e.is_timeout() {
        text = format!("timed out ({text})");
    }
    text
}

/// Parses and checks `--server`: http(s), no credentials, query or fragment.
fn server_url(text: &str) -> anyhow::Result<Url> {
    let bad = |why: &str| UsageError(format!("--server `{}`: {why}", clean(text)));
    let url = Url::parse(text.trim_end_matches('/')).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http:// or https:// URL").into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not hold credentials (the token authenticates)").into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment").into());
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if url.scheme() == "http" && !loopback {
        eprintln!("warning: sending the access token to {url} over plain http");
    }
    Ok(url)
}

/// The token in `path` (`-`: standard input), trimmed.
fn read_token(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| UsageError(format!("--token-file {}: {e}", path.display())))?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

pub use crate::text::printable as clean;

// --- arguments ---

/// A version argument of `kind`: `NAME@VERSION` or `KIND:NAME@VERSION`.
pub fn version_arg(kind: NodeKind, text: &str) -> anyhow::Result<NodeRef> {
    let full = match text.split_once(':') {
        Some(_) => text.to_owned(),
        None => format!("{}:{text}", kind.as_str()),
    };
    let node: NodeRef = full.parse().map_err(|e| UsageError(format!("{e}")))?;
    if node.kind != kind {
        return Err(UsageError(format!(
            "`{}` is not a {} version (NAME@VERSION or {}:NAME@VERSION)",
            clean(text),
            kind.as_str(),
            kind.as_str()
        ))
        .into());
    }
    Ok(node)
}

/// A lineage node argument: `dataset:NAME@VERSION` or `model:NAME@VERSION`.
pub fn node_arg(text: &str) -> anyhow::Result<NodeRef> {
    if !text.contains(':') {
        return Err(UsageError(format!(
            "`{}`: say which, dataset:NAME@VERSION or model:NAME@VERSION",
            clean(text)
        ))
        .into());
    }
    Ok(text.parse().map_err(|e| UsageError(format!("{e}")))?)
}

/// A dataset or model name argument, checked before it goes in a URL.
pub fn name_arg(text: &str) -> anyhow::Result<&str> {
    warden_registry::check_name("name", text).map_err(|e| UsageError(format!("{e}")))?;
    Ok(text)
}

/// The SHA-256 digest (`sha256:<hex>`) and size of the file at `path`.
pub fn file_digest(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file = std::fs::File::open(path).map_err(|e| UsageError(format!("--file {}: {e}", path.display())))?;
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| UsageError(format!("--file {}: {e}", path.display())))?;
        let Some(read) = buffer.get(..n) else { break };
        if read.is_empty() {
            break;
        }
        context.update(read);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(context.finish())), size))
}

// --- output ---

/// How answers are printed: `--json`, or text for a terminal or a pipe.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    terminal: bool,
}

impl Output {
    /// Output as `--json` says, tables only when standard output is a terminal.
    pub fn new(json: bool) -> Self {
        Output {
            json,
            terminal: std::io::stdout().is_terminal(),
        }
    }

    /// Whether `--json` was given.
    pub fn json(self) -> bool {
        self.json
    }

    /// Whether standard output is a terminal (and `--json` was not given).
    pub fn terminal(self) -> bool {
        self.terminal && !self.json
    }

    /// Prints `value`: as JSON, or its `fields` as `key: value` lines.
    pub fn record(self, value: &Value, fields: &[&str]) -> anyhow::Result<()> {
        if self.json {
            return print_json(value);
        }
        emit(&record_text(value, fields))
    }

    /// Prints the list at `value[key]`: as JSON (the whole `value`), or its
    /// `columns` as a table or records. An empty list says so on stderr.
    pub fn list(self, value: &Value, key: &str, columns: &[&str]) -> anyhow::Result<()> {
        if self.json {
            return print_json(value);
        }
        let rows = rows_of(value, key);
        if rows.is_empty() {
            eprintln!("no {key}");
            return Ok(());
        }
        emit(&self.rows_text(rows, columns))
    }

    /// Prints `value`'s `fields`, then the list at `value[key]` with its
    /// `columns` (or the whole `value` as JSON).
    pub fn record_and_list(self, value: &Value, fields: &[&str], key: &str, columns: &[&str]) -> anyhow::Result<()> {
        if self.json {
            return print_json(value);
        }
        let mut text = record_text(value, fields);
        let rows = rows_of(value, key);
        if !rows.is_empty() {
            text.push('\n');
            if self.terminal {
                text.push_str(&format!("{key}:\n"));
            }
            text.push_str(&self.rows_text(rows, columns));
        }
        emit(&text)
    }

    /// `rows` as an aligned table (terminal) or `key: value` records.
    pub fn rows_text(self, rows: &[Value], columns: &[&str]) -> String {
        if !self.terminal {
            return rows
                .iter()
                .map(|row| record_text(row, columns))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let header: Vec<String> = columns.iter().map(|c| c.to_ascii_uppercase()).collect();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| columns.iter().map(|c| cell(row, c)).collect())
            .collect();
        table(&header, &cells)
    }
}

/// An aligned table: columns two spaces apart, the last one not padded.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(c);
            if i < last {
                out.push_str(&" ".repeat(w.saturating_sub(c.chars().count()) + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut text = line(header);
    for row in rows {
        text.push_str(&line(row));
    }
    text
}

fn rows_of<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// `key: value` lines for `fields` of `value`.
fn record_text(value: &Value, fields: &[&str]) -> String {
    fields.iter().map(|f| format!("{f}: {}\n", cell(value, f))).collect()
}

/// One field shown as text: `-` when absent or null, lists joined with
/// `,`, Unix times (`*_at`, `at`) in RFC 3339.
pub fn cell(value: &Value, field: &str) -> String {
    match value.get(field) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => clean(s),
        Some(Value::Number(n)) if field == "at" || field.ends_with("_at") => {
            n.as_u64().map_or_else(|| n.to_string(), rfc3339)
        }
        Some(Value::Array(items)) if items.is_empty() => "-".into(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => clean(s),
                other => clean(&other.to_string()),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => clean(&other.to_string()),
    }
}

/// Prints `value` as indented JSON.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    emit(&text)
}

/// Writes `text` to standard output; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn versions_take_either_form() {
        assert_eq!(
            version_arg(NodeKind::Dataset, "transactions@1").unwrap(),
            NodeRef::dataset("transactions", 1)
        );
        assert_eq!(
            version_arg(NodeKind::Model, "model:fraud@2").unwrap(),
            NodeRef::model("fraud", 2)
        );
        for bad in ["fraud", "fraud@0", "model:fraud@1", "a/b@1", "x@1@2", ""] {
            assert!(version_arg(NodeKind::Dataset, bad).is_err(), "{bad}");
        }
        assert!(node_arg("fraud@1").is_err());
        assert_eq!(node_arg("model:fraud@1").unwrap(), NodeRef::model("fraud", 1));
        assert!(name_arg("../etc").is_err());
    }

    #[test]
    fn server_urls_are_checked() {
        assert_eq!(
            server_url("http://127.0.0.1:8080/").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        for bad in ["ftp://x", "http://u:p@x", "http://x/?a=1", "not a url"] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_map_to_exit_statuses() {
        let body = br#"{"error":"access_denied","error_description":"no \u001b[31mway"}"#;
        let e = api_error(StatusCode::FORBIDDEN, body);
        let refused = e.downcast_ref::<Refused>().unwrap();
        assert_eq!(refused.0, "error: no \\u{1b}[31mway (access_denied, HTTP 403)");
        let e = api_error(StatusCode::SERVICE_UNAVAILABLE, b"<html>");
        assert!(e.downcast_ref::<Refused>().is_none());
        assert!(e.to_string().contains("unexpected_response, HTTP 503"), "{e}");
    }

    #[test]
    fn cells_and_tables() {
        let v = json!({"a": null, "b": ["x", "y"], "created_at": 0, "n": 3, "s": "t"});
        assert_eq!(cell(&v, "a"), "-");
        assert_eq!(cell(&v, "missing"), "-");
        assert_eq!(cell(&v, "b"), "x,y");
        assert_eq!(cell(&v, "created_at"), "1970-01-01T00:00:00Z");
        assert_eq!(cell(&v, "n"), "3");
        let t = table(
            &["NAME".into(), "STAGE".into()],
            &[vec!["fraud".into(), "production".into()], vec!["x".into(), "-".into()]],
        );
        assert_eq!(t, "NAME   STAGE\nfraud  production\nx      -\n");
    }
}
