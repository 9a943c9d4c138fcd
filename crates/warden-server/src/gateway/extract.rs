//! Resource ids from a request: a path segment, a query parameter, or a
//! field of a JSON body read from at most a prefix of the body. Pure.
//!
//! # Why a scanner, and not `serde_json::from_slice`
//! The body is forwarded whole and unbuffered, while Warden decides on
//! what its first bytes say (at most [`DEFAULT_MAX_PREFIX`] by default). A
//! field can therefore be read from a prefix that is not a whole document,
//! so [`JsonScanner`] walks the JSON structure incrementally and records
//! where the watched values lie.
//!
//! Warden and the upstream must read the *same* value. JSON parsers
//! disagree on duplicate keys (Python and JavaScript keep the last,
//! others the first) and some match keys loosely (Go's `encoding/json`
//! ignores case, with Unicode folding), so on every object along a watched
//! path the scanner refuses, as ambiguous:
//! - a watched key given twice (`{"model":"a","model":"b"}`), and
//! - a key that differs from a watched key only by case or folding, or by
//!   control or invisible characters (`"MODEL"`, `"ſtream"` for `"stream"`,
//!   `"model\u0000"`), even given once.
//!
//! Keys are compared after decoding escapes (`"mod\u0065l"` is `model`).
//! When the body is longer than the prefix, the scanner keeps watching the
//! rest as it streams to the upstream ([`BodyWatch`]); a duplicate found
//! there aborts the upstream request mid-body, so the upstream never
//! receives a complete document that says something else.

use std::ops::Range;

use serde_json::Value;

/// Default longest body prefix read to find a resource id: 1 MiB.
pub const DEFAULT_MAX_PREFIX: usize = 1 << 20;
/// Deepest nesting the scanner follows (deeper documents are refused).
const MAX_DEPTH: usize = 512;
/// Longest raw (escaped) key kept for comparison. Watched keys are at most
/// [`super::route::MAX_JSON_KEY_BYTES`] bytes, and an escape spells a byte
/// in at most 12 (`\uD83D\uDE00` for four bytes), so no longer key can
/// decode to one; longer keys are skipped.
const MAX_RAW_KEY: usize = 12 * super::route::MAX_JSON_KEY_BYTES + 2;
/// Longest watched value kept (a resource id or a JSON-RPC id).
const MAX_VALUE: usize = 64 * 1024;

/// Why no resource id could be read; answered as 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The body is not declared as plain JSON (a form or multipart body, or a
    /// compressed one, could mean another resource to the upstream).
    #[error("the body must be sent as uncompressed JSON: {0}")]
    NotDeclaredJson(&'static str),
    /// The body is not (a prefix of) one JSON document.
    #[error("the body is not JSON: {0}")]
    NotJson(&'static str),
    /// The body is JSON but not an object.
    #[error("the body is not a JSON object")]
    NotAnObject,
    /// The field is absent.
    #[error("the body has no `{0}`")]
    FieldMissing(String),
    /// The field is not within the prefix read.
    #[error("`{field}` is not within the first {limit} bytes of the body")]
    BeyondPrefix {
        /// The dotted field.
        field: String,
        /// The prefix length.
        limit: usize,
    },
    /// The field is not a string.
    #[error("`{0}` must be a string")]
    NotAString(String),
    /// The field's value is too long to be an id.
    #[error("`{0}` is too long")]
    ValueTooLong(String),
    /// A key on the path is given twice or differs from it only by case.
    #[error("the body gives `{0}` more than once or in another case")]
    Ambiguous(String),
    /// The path has too few segments.
    #[error("the path has no segment {0} after the route's prefix")]
    MissingSegment(usize),
    /// The query parameter is absent.
    #[error("the query has no `{0}`")]
    MissingQuery(String),
    /// The query parameter is given more than once.
    #[error("the query gives `{0}` more than once")]
    AmbiguousQuery(String),
    /// A percent-encoded id is not UTF-8 or is empty.
    #[error("the resource id in the {0} is empty or not percent-encoded UTF-8")]
    BadEncoding(&'static str),
    /// The body could not be read.
    #[error("the request body could not be read")]
    BodyRead,
}

/// Decodes `%XX` escapes (not `+`: this is for paths). Refuses invalid
/// escapes and non-UTF-8 results.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `index`th segment of `rest` (the path after a route's prefix),
/// percent-decoded.
pub fn path_segment(rest: &str, index: usize) -> Result<String, ExtractError> {
    let segment = rest
        .split('/')
        .skip(1)
        .nth(index)
        .filter(|s| !s.is_empty())
        .ok_or(ExtractError::MissingSegment(index))?;
    percent_decode(segment)
        .filter(|s| !s.is_empty())
        .ok_or(ExtractError::BadEncoding("path"))
}

/// The query parameter `name`, which must appear exactly once: frameworks
/// disagree on which of several wins.
pub fn query_param(query: Option<&str>, name: &str) -> Result<String, ExtractError> {
    let mut found = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == name {
            if found.is_some() {
                return Err(ExtractError::AmbiguousQuery(name.to_owned()));
            }
            found = Some(value.into_owned());
        }
    }
    found
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ExtractError::MissingQuery(name.to_owned()))
}

/// What a body is read for.
#[derive(Debug, Clone, Copy)]
pub enum BodyTarget<'a> {
    /// A string field by path (`["input", "model"]`).
    Field(&'a [String]),
    /// MCP JSON-RPC: `tools/call` → `params.name`, other methods → the
    /// method. The request's `id` is read too.
    McpToolName,
}

/// What the body prefix said.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyFacts {
    /// The resource id.
    pub resource_id: String,
    /// The JSON-RPC `id` (MCP only), for error replies.
    pub jsonrpc_id: Option<Value>,
    /// An MCP protocol message (`initialize`, `tools/list`, notifications,
    /// responses), not a `tools/call`: it names no tool to authorize.
    pub mcp_protocol: bool,
}

/// The facts of a body prefix, and the watch to keep over the rest of the
/// body when the prefix was not all of it.
#[derive(Debug)]
pub struct PrefixScan {
    /// What the prefix said.
    pub facts: BodyFacts,
    /// `Some` when the body continues past the prefix.
    pub rest: Option<BodyWatch>,
}

/// Keeps checking the body after the prefix: feed every later chunk; an
/// error means the upstream request must be aborted.
#[derive(Debug)]
pub struct BodyWatch(JsonScanner);

impl BodyWatch {
    /// Checks the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ExtractError> {
        self.0.feed(chunk)
    }
}

fn mcp_paths() -> Vec<Vec<String>> {
    [&["method"][..], &["params", "name"], &["id"]]
        .iter()
        .map(|p| p.iter().map(|k| (*k).to_owned()).collect())
        .collect()
}

/// Reads the resource id from `prefix`, the first bytes of the body
/// (`complete` when it is the whole body).
pub fn scan_prefix(target: BodyTarget<'_>, prefix: &[u8], complete: bool) -> Result<PrefixScan, ExtractError> {
    let paths = match target {
        BodyTarget::Field(path) => vec![path.to_vec()],
        BodyTarget::McpToolName => mcp_paths(),
    };
    let mut scanner = JsonScanner::new(paths);
    scanner.feed(prefix)?;
    if complete {
        scanner.finish()?;
    }
    if scanner.root_is_object == Some(false) {
        return Err(ExtractError::NotAnObject);
    }
    let limit = prefix.len();
    let value = |i: usize| -> Result<Option<Value>, ExtractError> {
        let field = scanner.dotted(i);
        match scanner.value_range(i) {
            Some(range) => {
                let bytes = prefix.get(range).ok_or(ExtractError::NotJson("internal offsets"))?;
                if bytes.len() > MAX_VALUE {
                    return Err(ExtractError::ValueTooLong(field));
                }
                serde_json::from_slice(bytes)
                    .map(Some)
                    .map_err(|_| ExtractError::NotJson("invalid value"))
            }
            None if scanner.value_started(i) || !complete => Err(ExtractError::BeyondPrefix { field, limit }),
            None => Ok(None),
        }
    };
    let string = |i: usize| -> Result<String, ExtractError> {
        match value(i)? {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(_) => Err(ExtractError::NotAString(scanner.dotted(i))),
            None => Err(ExtractError::FieldMissing(scanner.dotted(i))),
        }
    };
    let facts = match target {
        BodyTarget::Field(_) => BodyFacts {
            resource_id: string(0)?,
            jsonrpc_id: None,
            mcp_protocol: false,
        },
        BodyTarget::McpToolName => {
            // The id only shapes error replies: absent or beyond the prefix is null.
            let jsonrpc_id = value(2).ok().flatten();
            // A JSON-RPC response from the client (to a server request) has no method.
            let method = match value(0)? {
                None => "response".to_owned(),
                Some(_) => string(0)?,
            };
            let is_call = method == "tools/call";
            // Only session plumbing skips the policies; every other method
            // (resources/read, prompts/get, vendor methods, …) is decided as
            // a `tool.call` on a Tool named after the method, which the
            // default policies deny unless a `tool:<method>` scope grants it.
            let protocol = matches!(method.as_str(), "initialize" | "ping" | "tools/list" | "response")
                || method.starts_with("notifications/");
            let resource_id = if is_call { string(1)? } else { method };
            BodyFacts {
                resource_id,
                jsonrpc_id,
                mcp_protocol: protocol,
            }
        }
    };
    Ok(PrefixScan {
        facts,
        rest: (!complete).then_some(BodyWatch(scanner)),
    })
}

/// Lexer state between bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// A value is expected.
    Value,
    /// After `[`: a value or `]`.
    ArrayFirst,
    /// After `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value: `,`, a closing bracket, or (at the top) the end.
    After,
    /// Inside a string.
    Str { key: bool, escape: bool },
    /// Inside a number or literal.
    Scalar,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    object: bool,
    /// Watches whose path leads through this object (bit i = watch i).
    on_path: u64,
    /// Watches whose key at this depth was already seen here.
    seen: u64,
}

/// An incremental scanner of one JSON document that records where the
/// values of a few watched key paths lie and refuses ambiguous keys along
/// them. It checks structure, not every token: values it records are
/// parsed strictly afterwards, and the upstream parses the rest.
#[derive(Debug)]
pub struct JsonScanner {
    paths: Vec<Vec<String>>,
    folded: Vec<Vec<String>>,
    stack: Vec<Frame>,
    lex: Lex,
    /// Offset of the next byte.
    pos: usize,
    /// Raw bytes of the key being read, when it is on a watched path.
    key: Option<Vec<u8>>,
    /// Watches for which the next value is the value (capture it).
    next_capture: u64,
    /// Watches for which the next value, if an object, is on their path.
    next_on_path: u64,
    starts: Vec<Option<usize>>,
    ends: Vec<Option<usize>>,
    /// (watch, depth) of values being captured.
    capturing: Vec<(usize, usize)>,
    root_is_object: Option<bool>,
}

/// A key as the loosest parser might match it: case folded, control and
/// invisible format characters dropped (`"model\u0000"` or
/// `"mo\u200bdel"` is `model` to some).
fn fold(key: &str) -> String {
    key.chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'))
        .collect::<String>()
        .to_lowercase()
        .to_uppercase()
}

fn bits(mask: u64) -> impl Iterator<Item = usize> {
    (0..64).filter(move |i| mask & (1u64 << i) != 0)
}

impl JsonScanner {
    /// A scanner watching `paths` (at most 64, each non-empty).
    pub fn new(mut paths: Vec<Vec<String>>) -> Self {
        paths.retain(|p| !p.is_empty());
        paths.truncate(64);
        let n = paths.len();
        let folded = paths.iter().map(|p| p.iter().map(|k| fold(k)).collect()).collect();
        JsonScanner {
            folded,
            stack: Vec::new(),
            lex: Lex::Value,
            pos: 0,
            key: None,
            next_capture: 0,
            next_on_path: if n == 64 { u64::MAX } else { (1u64 << n) - 1 },
            starts: vec![None; n],
            ends: vec![None; n],
            capturing: Vec::new(),
            root_is_object: None,
            paths,
        }
    }

    fn dotted(&self, i: usize) -> String {
        self.paths.get(i).map(|p| p.join(".")).unwrap_or_default()
    }

    /// Byte range of watch `i`'s value, once complete.
    pub fn value_range(&self, i: usize) -> Option<Range<usize>> {
        Some(self.starts.get(i).copied()??..self.ends.get(i).copied()??)
    }

    /// Whether watch `i`'s value has started (complete or not).
    pub fn value_started(&self, i: usize) -> bool {
        self.starts.get(i).is_some_and(Option::is_some)
    }

    /// Scans the next bytes of the document.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ExtractError> {
        for &b in chunk {
            self.step(b)?;
            self.pos += 1;
        }
        Ok(())
    }

    /// Declares the end of the document.
    pub fn finish(&mut self) -> Result<(), ExtractError> {
        if self.lex == Lex::Scalar {
            self.end_value(self.pos);
        }
        match (self.lex, self.stack.is_empty(), self.root_is_object) {
            (_, _, None) => Err(ExtractError::NotJson("the body is empty")),
            (Lex::After, true, _) => Ok(()),
            _ => Err(ExtractError::NotJson("the document is incomplete")),
        }
    }

    fn step(&mut self, b: u8) -> Result<(), ExtractError> {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        match self.lex {
            Lex::Str { key, escape } => self.string_byte(b, key, escape)?,
            Lex::Scalar => {
                if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.') {
                    return Ok(());
                }
                self.end_value(self.pos);
                return self.step(b);
            }
            _ if ws => {}
            Lex::Value => self.begin_value(b)?,
            Lex::ArrayFirst if b == b']' => self.close(false)?,
            Lex::ArrayFirst => self.begin_value(b)?,
            Lex::ObjectFirst if b == b'}' => self.close(true)?,
            Lex::ObjectFirst | Lex::Key if b == b'"' => self.begin_key(),
            Lex::Colon if b == b':' => self.lex = Lex::Value,
            Lex::After => match (b, self.stack.last().map(|f| f.object)) {
                (b',', Some(true)) => self.lex = Lex::Key,
                (b',', Some(false)) => self.lex = Lex::Value,
                (b'}', Some(true)) => self.close(true)?,
                (b']', Some(false)) => self.close(false)?,
                (_, None) => return Err(ExtractError::NotJson("trailing data after the document")),
                _ => return Err(ExtractError::NotJson("unexpected character")),
            },
            _ => return Err(ExtractError::NotJson("unexpected character")),
        }
        Ok(())
    }

    fn begin_value(&mut self, b: u8) -> Result<(), ExtractError> {
        if self.stack.is_empty() {
            if self.root_is_object.is_some() {
                return Err(ExtractError::NotJson("trailing data after the document"));
            }
            self.root_is_object = Some(b == b'{');
        }
        let capture = std::mem::take(&mut self.next_capture);
        let on_path = std::mem::take(&mut self.next_on_path);
        for i in bits(capture) {
            if let Some(start) = self.starts.get_mut(i) {
                *start = Some(self.pos);
            }
            self.capturing.push((i, self.stack.len()));
        }
        match b {
            b'{' | b'[' => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ExtractError::NotJson("nested too deeply"));
                }
                let object = b == b'{';
                self.stack.push(Frame {
                    object,
                    on_path: if object { on_path } else { 0 },
                    seen: 0,
                });
                self.lex = if object { Lex::ObjectFirst } else { Lex::ArrayFirst };
            }
            b'"' => {
                self.lex = Lex::Str {
                    key: false,
                    escape: false,
                }
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => self.lex = Lex::Scalar,
            _ => return Err(ExtractError::NotJson("unexpected character")),
        }
        Ok(())
    }

    fn close(&mut self, object: bool) -> Result<(), ExtractError> {
        match self.stack.pop() {
            Some(f) if f.object == object => {
                self.end_value(self.pos + 1);
                Ok(())
            }
            _ => Err(ExtractError::NotJson("mismatched brackets")),
        }
    }

    /// A value ended just before `end`.
    fn end_value(&mut self, end: usize) {
        let depth = self.stack.len();
        let ends = &mut self.ends;
        self.capturing.retain(|&(i, d)| {
            if d != depth {
                return true;
            }
            if let Some(slot) = ends.get_mut(i) {
                *slot = Some(end);
            }
            false
        });
        self.lex = Lex::After;
    }

    fn begin_key(&mut self) {
        let on_path = self.stack.last().map_or(0, |f| f.on_path);
        self.key = (on_path != 0).then(|| vec![b'"']);
        self.lex = Lex::Str {
            key: true,
            escape: false,
        };
    }

    fn string_byte(&mut self, b: u8, key: bool, escape: bool) -> Result<(), ExtractError> {
        if key && let Some(raw) = &mut self.key {
            if raw.len() < MAX_RAW_KEY {
                raw.push(b);
            } else {
                self.key = None;
            }
        }
        match (escape, b) {
            (true, _) => self.lex = Lex::Str { key, escape: false },
            (false, b'\\') => self.lex = Lex::Str { key, escape: true },
            (false, b'"') if key => {
                self.end_key()?;
                self.lex = Lex::Colon;
            }
            (false, b'"') => self.end_value(self.pos + 1),
            _ => {}
        }
        Ok(())
    }

    fn end_key(&mut self) -> Result<(), ExtractError> {
        self.next_capture = 0;
        self.next_on_path = 0;
        let Some(raw) = self.key.take() else {
            return Ok(());
        };
        let depth = self.stack.len().saturating_sub(1);
        let Some(frame) = self.stack.last_mut() else {
            return Ok(());
        };
        let key: String = serde_json::from_slice(&raw).map_err(|_| ExtractError::NotJson("invalid key"))?;
        let folded = fold(&key);
        for i in bits(frame.on_path) {
            let (Some(path), Some(folded_path)) = (self.paths.get(i), self.folded.get(i)) else {
                continue;
            };
            if folded_path.get(depth) != Some(&folded) {
                continue;
            }
            let bit = 1u64 << i;
            let ambiguous =
                || ExtractError::Ambiguous(path.iter().take(depth + 1).cloned().collect::<Vec<_>>().join("."));
            if path.get(depth) != Some(&key) || frame.seen & bit != 0 {
                return Err(ambiguous());
            }
            frame.seen |= bit;
            if path.len() == depth + 1 {
                self.next_capture |= bit;
            } else {
                self.next_on_path |= bit;
            }
        }
        Ok(())
    }
}

/// Whether headers declare an uncompressed JSON body: `Content-Type`
/// `application/json` or `*/*+json`, and no `Content-Encoding` other than
/// `identity`. The resource id read from the body is then the one the
/// upstream sees.
pub fn check_json_body(headers: &axum::http::HeaderMap) -> Result<(), ExtractError> {
    // Two Content-Type headers may be read differently here and upstream.
    if headers.get_all(axum::http::header::CONTENT_TYPE).iter().count() > 1 {
        return Err(ExtractError::NotDeclaredJson("Content-Type is given more than once"));
    }
    let media = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .ok_or(ExtractError::NotDeclaredJson("Content-Type is missing"))?;
    if media != "application/json" && !(media.contains('/') && media.ends_with("+json")) {
        return Err(ExtractError::NotDeclaredJson("Content-Type is not application/json"));
    }
    for encoding in headers.get_all(axum::http::header::CONTENT_ENCODING) {
        let identity = encoding.to_str().is_ok_and(|e| {
            e.split(',')
                .all(|t| t.trim().eq_ignore_ascii_case("identity") || t.trim().is_empty())
        });
        if !identity {
            return Err(ExtractError::NotDeclaredJson("Content-Encoding is not identity"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(path: &str) -> Vec<String> {
        path.split('.').map(str::to_owned).collect()
    }

    fn id(path: &str, body: &str) -> Result<String, ExtractError> {
        let p = field(path);
        scan_prefix(BodyTarget::Field(&p), body.as_bytes(), true).map(|s| s.facts.resource_id)
    }

    #[test]
    fn finds_fields_anywhere_in_order() {
        assert_eq!(id("model", r#"{"model":"gpt-4o"}"#).unwrap(), "gpt-4o");
        assert_eq!(
            id(
                "model",
                r#" { "messages" : [{"model":"x"}], "n": -1.5e3, "ok": true, "model" : "m\u00e9" } "#
            )
            .unwrap(),
            "mé"
        );
        assert_eq!(
            id("input.model", r#"{"input":{"a":{"model":"no"},"model":"yes"}}"#).unwrap(),
            "yes"
        );
        assert_eq!(id("model", r#"{"mod\u0065l":"escaped"}"#).unwrap(), "escaped");
        assert_eq!(id("model", r#"{"x":"a \"model\": \\","model":"m"}"#).unwrap(), "m");
    }

    #[test]
    fn typed_errors() {
        assert_eq!(
            id("model", r#"{"other":1}"#),
            Err(ExtractError::FieldMissing("model".into()))
        );
        assert_eq!(
            id("model", r#"{"model":1}"#),
            Err(ExtractError::NotAString("model".into()))
        );
        assert_eq!(
            id("model", r#"{"model":""}"#),
            Err(ExtractError::NotAString("model".into()))
        );
        assert_eq!(id("model", r#"[{"model":"m"}]"#), Err(ExtractError::NotAnObject));
        assert!(matches!(id("model", ""), Err(ExtractError::NotJson(_))));
        assert!(matches!(id("model", "model=x"), Err(ExtractError::NotJson(_))));
        assert!(matches!(
            id("model", r#"{"model":"m"} {}"#),
            Err(ExtractError::NotJson(_))
        ));
        assert!(matches!(id("model", r#"{"model":"m""#), Err(ExtractError::NotJson(_))));
        assert!(matches!(id("model", r#"{"model":"m"]"#), Err(ExtractError::NotJson(_))));
        assert!(matches!(
            id("model", r#"{"model":tru}"#),
            Err(ExtractError::NotAString(_)) | Err(ExtractError::NotJson(_))
        ));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(id("model", &deep), Err(ExtractError::NotJson(_))));
    }

    #[test]
    fn ambiguous_keys_are_refused() {
        let amb = Err(ExtractError::Ambiguous("model".into()));
        assert_eq!(id("model", r#"{"model":"a","model":"b"}"#), amb);
        assert_eq!(id("model", r#"{"MODEL":"b"}"#), amb);
        assert_eq!(id("model", r#"{"model":"a","Model":"b"}"#), amb);
        assert_eq!(id("model", r#"{"model":"a","mod\u0065l":"b"}"#), amb);
        assert_eq!(id("model", r#"{"model":"a","model\u0000":"b"}"#), amb);
        assert_eq!(id("model", r#"{"model\u0000":"b","model":"a"}"#), amb);
        assert_eq!(id("model", r#"{"mo\u200bdel":"b"}"#), amb);
        assert_eq!(
            id("stream", r#"{"\u017ftream":"b"}"#),
            Err(ExtractError::Ambiguous("stream".into()))
        );
        assert_eq!(
            id("input.model", r#"{"input":{"model":"a"},"input":{"model":"b"}}"#),
            Err(ExtractError::Ambiguous("input".into()))
        );
        // Off the path, duplicates are the upstream's business.
        assert_eq!(id("model", r#"{"a":{"model":1,"model":2},"model":"m"}"#).unwrap(), "m");
    }

    #[test]
    fn prefixes_and_the_rest_of_the_body() {
        let p = field("model");
        let body = format!(r#"{{"model":"small","messages":"{}","stream":true}}"#, "x".repeat(100));
        let (head, tail) = body.as_bytes().split_at(40);
        let scan = scan_prefix(BodyTarget::Field(&p), head, false).unwrap();
        assert_eq!(scan.facts.resource_id, "small");
        let mut watch = scan.rest.unwrap();
        watch.feed(tail).unwrap();

        let late = format!(r#"{{"messages":"{}","model":"m"}}"#, "x".repeat(100));
        let e = scan_prefix(BodyTarget::Field(&p), &late.as_bytes()[..40], false).unwrap_err();
        assert_eq!(
            e,
            ExtractError::BeyondPrefix {
                field: "model".into(),
                limit: 40
            }
        );
        let cut = r#"{"model":"a-very-long-model-name"}"#;
        let e = scan_prefix(BodyTarget::Field(&p), &cut.as_bytes()[..15], false).unwrap_err();
        assert!(matches!(e, ExtractError::BeyondPrefix { .. }));

        let smuggled = format!(r#"{{"model":"small","pad":"{}","model":"large"}}"#, "x".repeat(100));
        let (head, tail) = smuggled.as_bytes().split_at(30);
        let mut watch = scan_prefix(BodyTarget::Field(&p), head, false).unwrap().rest.unwrap();
        let mut result = Ok(());
        for byte in tail.chunks(7) {
            result = result.and_then(|()| watch.feed(byte));
        }
        assert_eq!(result, Err(ExtractError::Ambiguous("model".into())));
    }

    #[test]
    fn mcp_tool_names() {
        let mcp = |body: &str| scan_prefix(BodyTarget::McpToolName, body.as_bytes(), true).map(|s| s.facts);
        let call = mcp(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"name":"x"}}}"#,
        )
        .unwrap();
        assert_eq!(call.resource_id, "search");
        assert_eq!(call.jsonrpc_id, Some(serde_json::json!(7)));
        let list = mcp(r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#).unwrap();
        assert_eq!(
            (list.resource_id.as_str(), list.jsonrpc_id),
            ("tools/list", Some(serde_json::json!("a")))
        );
        let note = mcp(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(
            (note.resource_id.as_str(), note.jsonrpc_id),
            ("notifications/initialized", None)
        );
        assert_eq!(
            mcp(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap().resource_id,
            "response"
        );
        assert_eq!(
            mcp(r#"{"id":1,"method":"tools/call","params":{}}"#),
            Err(ExtractError::FieldMissing("params.name".into()))
        );
        assert_eq!(
            mcp(r#"{"id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}"#),
            Err(ExtractError::Ambiguous("params.name".into()))
        );
        assert_eq!(
            mcp(r#"{"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#),
            Err(ExtractError::Ambiguous("method".into()))
        );
    }

    #[test]
    fn path_and_query_ids() {
        assert_eq!(path_segment("/gpt-4o/chat", 0).unwrap(), "gpt-4o");
        assert_eq!(path_segment("/a/caf%C3%A9", 1).unwrap(), "café");
        assert_eq!(path_segment("/a", 1), Err(ExtractError::MissingSegment(1)));
        assert_eq!(path_segment("", 0), Err(ExtractError::MissingSegment(0)));
        assert_eq!(path_segment("/%FF", 0), Err(ExtractError::BadEncoding("path")));
        assert_eq!(path_segment("/%zz", 0), Err(ExtractError::BadEncoding("path")));
        assert_eq!(query_param(Some("model=a%20b&x=1"), "model").unwrap(), "a b");
        assert_eq!(
            query_param(None, "model"),
            Err(ExtractError::MissingQuery("model".into()))
        );
        assert_eq!(
            query_param(Some("model=a&model=b"), "model"),
            Err(ExtractError::AmbiguousQuery("model".into()))
        );
    }
}
