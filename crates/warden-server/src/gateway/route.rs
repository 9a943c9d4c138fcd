//! Gateway routes: what `[[route]]` tables in `warden.toml` say, checked
//! once at start ([`RouteTable::new`]) and matched on every request. Pure:
//! no I/O, no clock.
//!
//! # The TOML shape
//!
//! ```toml
//! [[route]]
//! name = "openai"                      # unique; names the route in audit events
//! methods = ["POST"]                   # optional; empty or absent = any method
//! path_prefix = "/v1/chat"             # matched on a path-segment boundary
//! upstream = "http://127.0.0.1:8000"   # the rest of the path is appended to this
//! audience = "https://ai.example"      # optional; default: the issuer
//! action = "invoke"                    # the Cedar action
//! resource = { type = "Model", id = { json_field = "model" } }
//! scopes = ["inference.invoke"]        # all required
//! rate_limit = { per_second = 5.0, burst = 10 }   # optional; per subject, client and route
//! forward_authorization = false        # default false: `Authorization` is removed
//! kind = "openai"                      # http (default) | openai | mcp: the shape of error bodies
//! ```
//!
//! The resource id comes from one of:
//! - `id = { literal = "chat" }`: always this id;
//! - `id = { path_segment = 0 }`: the first path segment after the prefix
//!   (percent-decoded);
//! - `id = { query = "model" }`: a query parameter (given exactly once);
//! - `id = { json_field = "model" }`: a string field of the JSON body, by a
//!   dotted path (`"input.model"`), read from at most the body prefix;
//! - `id = "mcp_tool_name"`: MCP JSON-RPC: `tools/call` gives
//!   `params.name`, any other method gives the method name itself
//!   (`tools/list`); only on `kind = "mcp"` routes.
//!
//! # Matching
//! The longest prefix whose method filter accepts the request wins. A
//! prefix matches on a segment boundary only: `/v1/chat` matches
//! `/v1/chat` and `/v1/chat/completions`, never `/v1/chatter`. The part of
//! the path after the prefix is appended to the upstream URL's path, so
//! `upstream = "http://up/base"` turns `/v1/chat/completions` into
//! `http://up/base/completions`; the query is kept. Paths with dot
//! segments (`..`, `%2e%2e`), encoded slashes or backslashes are refused
//! before matching ([`check_path`]), so the path Warden authorized is the
//! path the upstream serves.

use std::collections::HashSet;

use axum::http::Method;

use crate::options::route::{IdSource, RouteConfig, RouteKind};

/// Path prefixes served by Warden itself; no route may claim them.
const RESERVED_PREFIXES: [&str; 6] = [
    "/oauth",
    "/.well-known",
    "/api/v1/admin",
    "/api/v1/audit",
    "/healthz",
    "/readyz",
];

/// Longest key of a dotted JSON path, in bytes (bounds what the body
/// scanner keeps to compare keys).
pub const MAX_JSON_KEY_BYTES: usize = 256;

/// Why the routes cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A field of one route is invalid.
    #[error("route `{route}`: `{field}` {reason}")]
    Invalid {
        /// The route's name.
        route: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Two routes share a name.
    #[error("route `{0}` is defined twice")]
    DuplicateName(String),
    /// Two routes would match the same requests.
    #[error("routes `{first}` and `{second}` both match `{prefix}` for the same methods")]
    Overlap {
        /// The first route.
        first: String,
        /// The second route.
        second: String,
        /// Their prefix.
        prefix: String,
    },
}

/// The longest `approval_wait` (seconds).
pub const MAX_APPROVAL_WAIT: u64 = 300;

fn invalid(route: &str, field: &'static str, reason: impl Into<String>) -> RouteError {
    RouteError::Invalid {
        route: route.to_owned(),
        field,
        reason: reason.into(),
    }
}

/// A validated route, ready to match.
#[derive(Debug, Clone)]
pub struct Route {
    config: RouteConfig,
    /// The prefix without a trailing slash (`""` for `/`).
    prefix: String,
    methods: Vec<Method>,
    /// The upstream URL, with no trailing slash on its path.
    upstream: reqwest::Url,
    json_path: Vec<String>,
}

impl Route {
    /// The configuration it was built from.
    pub fn config(&self) -> &RouteConfig {
        &self.config
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The dotted JSON path of an `id = { json_field = … }` resource, split.
    pub fn json_path(&self) -> &[String] {
        &self.json_path
    }

    /// The upstream URL for `rest` (the path after the prefix, empty or
    /// starting with `/`) and `query` (without `?`).
    pub fn upstream_url(&self, rest: &str, query: Option<&str>) -> reqwest::Url {
        let mut url = self.upstream.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        let path = format!("{base}{rest}");
        url.set_path(if path.is_empty() { "/" } else { &path });
        url.set_query(query);
        url
    }

    fn accepts(&self, method: &Method) -> bool {
        self.methods.is_empty() || self.methods.contains(method)
    }

    /// The rest of `path` after the prefix, if the prefix matches on a
    /// segment boundary.
    fn rest<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }
}

/// A request's route and the path after the prefix.
#[derive(Debug, Clone, Copy)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'a Route,
    /// The path after the prefix: empty or starting with `/`.
    pub rest: &'a str,
}

/// Every route, checked, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Validates `configs`; the error names the route and the field.
    pub fn new(configs: Vec<RouteConfig>) -> Result<Self, RouteError> {
        let mut names = HashSet::new();
        let mut routes = Vec::with_capacity(configs.len());
        for config in configs {
            if !names.insert(config.name.clone()) {
                return Err(RouteError::DuplicateName(config.name));
            }
            routes.push(compile(config)?);
        }
        for (i, a) in routes.iter().enumerate() {
            for b in routes.iter().skip(i + 1) {
                let same_methods =
                    a.methods.is_empty() || b.methods.is_empty() || a.methods.iter().any(|m| b.methods.contains(m));
                if a.prefix == b.prefix && same_methods {
                    return Err(RouteError::Overlap {
                        first: a.config.name.clone(),
                        second: b.config.name.clone(),
                        prefix: a.config.path_prefix.clone(),
                    });
                }
            }
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(RouteTable { routes })
    }

    /// The routes, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The route for `method` and `path` (check the path with
    /// [`check_path`] first).
    pub fn find<'a>(&'a self, method: &Method, path: &'a str) -> Option<Matched<'a>> {
        self.routes
            .iter()
            .filter(|r| r.accepts(method))
            .find_map(|route| route.rest(path).map(|rest| Matched { route, rest }))
    }
}

/// Why a request path is refused before matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not an absolute path.
    #[error("the path must start with `/`")]
    NotAbsolute,
    /// A `.` or `..` segment, plain or percent-encoded.
    #[error("the path has a dot segment")]
    DotSegment,
    /// `%2F`, `%5C` or `\`, which some servers read as separators.
    #[error("the path has an encoded slash or a backslash")]
    HiddenSeparator,
    /// An empty segment (`//`), a `;` path parameter, a NUL, or a
    /// percent-encoded unreserved character: forms that some servers
    /// normalise into another path than the one matched.
    #[error("the path has an empty segment, `;`, a NUL or an encoded unreserved character")]
    Ambiguous,
}

/// Refuses paths that an upstream could resolve to somewhere other than
/// where they matched: dot segments (`/v1/../admin`, `%2e%2e`), encoded
/// slashes and backslashes.
pub fn check_path(path: &str) -> Result<(), PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path.contains('\\') {
        return Err(PathError::HiddenSeparator);
    }
    for segment in path.split('/') {
        let lower = segment.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return Err(PathError::HiddenSeparator);
        }
        let decoded = lower.replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err(PathError::DotSegment);
        }
    }
    if path.contains("//") || path.contains(';') || path.contains('\0') {
        return Err(PathError::Ambiguous);
    }
    let bytes = path.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
            let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) else {
                return Err(PathError::Ambiguous);
            };
            let decoded = u8::try_from(h * 16 + l).unwrap_or(0);
            if decoded == 0 || decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded) {
                return Err(PathError::Ambiguous);
            }
        }
    }
    Ok(())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A Cedar type name: identifiers joined by `::`.
fn is_type_name(s: &str) -> bool {
    !s.is_empty()
        && s.split("::").all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn compile(config: RouteConfig) -> Result<Route, RouteError> {
    let name = config.name.as_str();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(invalid(
            name,
            "name",
            "must be non-empty ASCII letters, digits, `.`, `_` or `-`",
        ));
    }
    let prefix = compile_prefix(name, &config.path_prefix)?;
    if config.approval_wait > MAX_APPROVAL_WAIT {
        return Err(invalid(
            name,
            "approval_wait",
            format!("must be at most {MAX_APPROVAL_WAIT} seconds"),
        ));
    }
    let mut methods = Vec::new();
    for m in &config.methods {
        let upper = m.to_ascii_uppercase();
        if !is_token(&upper) {
            return Err(invalid(name, "methods", format!("has an invalid method `{m}`")));
        }
        let method =
            Method::from_bytes(upper.as_bytes()).map_err(|_| invalid(name, "methods", format!("has `{m}`")))?;
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    let upstream = compile_upstream(name, &config.upstream)?;
    if config.audience.as_deref().is_some_and(str::is_empty) {
        return Err(invalid(
            name,
            "audience",
            "must not be empty (leave it out for the issuer)",
        ));
    }
    if config.action.trim().is_empty() {
        return Err(invalid(name, "action", "must not be empty"));
    }
    if config.forward_authorization && config.audience.is_none() {
        return Err(invalid(
            name,
            "forward_authorization",
            "needs the route's own `audience`: a token for the issuer would let the upstream replay it on every \
             default-audience route and on Warden's own APIs",
        ));
    }
    if !is_type_name(&config.resource.type_name) {
        return Err(invalid(
            name,
            "resource.type",
            format!("`{}` is not a Cedar type name", config.resource.type_name),
        ));
    }
    let json_path = compile_id(name, &config.resource.id, config.kind)?;
    if let Some(bad) = config.scopes.iter().find(|s| !crate::oauth::scope::is_scope_token(s)) {
        return Err(invalid(name, "scopes", format!("has an invalid scope `{bad}`")));
    }
    if let Some(limit) = &config.rate_limit {
        if limit.period().is_none() {
            return Err(invalid(
                name,
                "rate_limit.per_second",
                "must be a positive number of at most 1e9",
            ));
        }
        if limit.burst == 0 {
            return Err(invalid(name, "rate_limit.burst", "must be at least 1"));
        }
    }
    Ok(Route {
        prefix,
        methods,
        upstream,
        json_path,
        config,
    })
}

fn compile_prefix(name: &str, prefix: &str) -> Result<String, RouteError> {
    if !prefix.starts_with('/') {
        return Err(invalid(name, "path_prefix", "must start with `/`"));
    }
    if prefix.contains(['?', '#', '%', '*', '{', '}']) || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            name,
            "path_prefix",
            "must be a plain path (no query, fragment, percent-encoding, wildcard or space)",
        ));
    }
    if check_path(prefix).is_err() || prefix.contains("//") {
        return Err(invalid(name, "path_prefix", "must not have dot or empty segments"));
    }
    let trimmed = prefix.trim_end_matches('/');
    if let Some(reserved) = RESERVED_PREFIXES
        .iter()
        .find(|r| trimmed == **r || trimmed.starts_with(&format!("{r}/")))
    {
        return Err(invalid(
            name,
            "path_prefix",
            format!("lies under `{reserved}`, served by Warden itself"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn compile_upstream(name: &str, upstream: &str) -> Result<reqwest::Url, RouteError> {
    let url = reqwest::Url::parse(upstream).map_err(|e| invalid(name, "upstream", format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(name, "upstream", "must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(name, "upstream", "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(name, "upstream", "must not hold credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(name, "upstream", "must not have a query or fragment"));
    }
    Ok(url)
}

fn compile_id(name: &str, id: &IdSource, kind: RouteKind) -> Result<Vec<String>, RouteError> {
    match id {
        IdSource::Literal(value) if value.is_empty() => Err(invalid(name, "resource.id.literal", "must not be empty")),
        IdSource::Query(param) if param.is_empty() => Err(invalid(name, "resource.id.query", "must not be empty")),
        IdSource::JsonField(path) => {
            let keys: Vec<String> = path.split('.').map(str::to_owned).collect();
            if keys.iter().any(|k| k.is_empty() || k.len() > MAX_JSON_KEY_BYTES) {
                return Err(invalid(
                    name,
                    "resource.id.json_field",
                    format!("`{path}` must be keys of 1 to {MAX_JSON_KEY_BYTES} bytes joined by `.`"),
                ));
            }
            Ok(keys)
        }
        IdSource::McpToolName if kind != RouteKind::Mcp => {
            Err(invalid(name, "resource.id", "`mcp_tool_name` needs `kind = \"mcp\"`"))
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::options::route::{RateLimit, ResourceSpec};

    fn route(name: &str, prefix: &str, methods: &[&str]) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            path_prefix: prefix.into(),
            upstream: "http://127.0.0.1:9/base/".into(),
            audience: None,
            action: "invoke".into(),
            resource: ResourceSpec {
                type_name: "Model".into(),
                id: IdSource::Literal("m".into()),
            },
            scopes: vec!["inference.invoke".into()],
            rate_limit: None,
            forward_authorization: false,
            approval_wait: 0,
            kind: RouteKind::Http,
        }
    }

    fn name_of(t: &RouteTable, method: Method, path: &str) -> Option<(String, String)> {
        t.find(&method, path)
            .map(|m| (m.route.name().to_owned(), m.rest.to_owned()))
    }

    #[test]
    fn longest_prefix_on_segment_boundary_and_method_filter() {
        let t = RouteTable::new(vec![
            route("all", "/", &[]),
            route("v1", "/v1", &[]),
            route("chat", "/v1/chat/", &["post"]),
        ])
        .unwrap();
        let s = |n: &str, r: &str| Some((n.to_owned(), r.to_owned()));
        assert_eq!(
            name_of(&t, Method::POST, "/v1/chat/completions"),
            s("chat", "/completions")
        );
        assert_eq!(name_of(&t, Method::POST, "/v1/chat"), s("chat", ""));
        assert_eq!(
            name_of(&t, Method::GET, "/v1/chat/completions"),
            s("v1", "/chat/completions")
        );
        assert_eq!(name_of(&t, Method::POST, "/v1/chatter"), s("v1", "/chatter"));
        assert_eq!(name_of(&t, Method::GET, "/v10"), s("all", "/v10"));
        let only = RouteTable::new(vec![route("v1", "/v1", &["GET"])]).unwrap();
        assert!(only.find(&Method::GET, "/v10").is_none());
        assert!(only.find(&Method::DELETE, "/v1").is_none());
    }

    #[test]
    fn upstream_urls_append_the_rest() {
        let t = RouteTable::new(vec![route("chat", "/v1/chat", &[])]).unwrap();
        let m = t.find(&Method::POST, "/v1/chat/completions").unwrap();
        assert_eq!(
            m.route.upstream_url(m.rest, Some("a=1")).as_str(),
            "http://127.0.0.1:9/base/completions?a=1"
        );
        assert_eq!(m.route.upstream_url("", None).as_str(), "http://127.0.0.1:9/base");
        let mut root = route("root", "/x", &[]);
        root.upstream = "http://h".into();
        let t = RouteTable::new(vec![root]).unwrap();
        assert_eq!(t.routes()[0].upstream_url("", None).as_str(), "http://h/");
    }

    #[test]
    fn validation_names_route_and_field() {
        let cases: Vec<(RouteConfig, &str)> = vec![
            (route("a b", "/x", &[]), "`name`"),
            (route("r", "x", &[]), "`path_prefix`"),
            (route("r", "/x/../y", &[]), "`path_prefix`"),
            (route("r", "/oauth/x", &[]), "`path_prefix`"),
            (route("r", "/x", &["GE T"]), "`methods`"),
            (
                RouteConfig {
                    upstream: "ftp://h".into(),
                    ..route("r", "/x", &[])
                },
                "`upstream`",
            ),
            (
                RouteConfig {
                    upstream: "http://u:p@h".into(),
                    ..route("r", "/x", &[])
                },
                "`upstream`",
            ),
            (
                RouteConfig {
                    scopes: vec!["bad\"scope".into()],
                    ..route("r", "/x", &[])
                },
                "`scopes`",
            ),
            (
                RouteConfig {
                    rate_limit: Some(RateLimit {
                        per_second: 0.0,
                        burst: 1,
                    }),
                    ..route("r", "/x", &[])
                },
                "`rate_limit.per_second`",
            ),
            (
                RouteConfig {
                    rate_limit: Some(RateLimit {
                        per_second: 1.0,
                        burst: 0,
                    }),
                    ..route("r", "/x", &[])
                },
                "`rate_limit.burst`",
            ),
            (
                RouteConfig {
                    resource: ResourceSpec {
                        type_name: "Model".into(),
                        id: IdSource::JsonField("a..b".into()),
                    },
                    ..route("r", "/x", &[])
                },
                "`resource.id.json_field`",
            ),
            (
                RouteConfig {
                    resource: ResourceSpec {
                        type_name: "Tool".into(),
                        id: IdSource::McpToolName,
                    },
                    ..route("r", "/x", &[])
                },
                "`resource.id`",
            ),
            (
                RouteConfig {
                    resource: ResourceSpec {
                        type_name: "1Model".into(),
                        id: IdSource::PathSegment(0),
                    },
                    ..route("r", "/x", &[])
                },
                "`resource.type`",
            ),
        ];
        for (config, field) in cases {
            let e = RouteTable::new(vec![config]).unwrap_err().to_string();
            assert!(e.starts_with("route `") && e.contains(field), "{e}");
        }
        let dup = RouteTable::new(vec![route("a", "/x", &[]), route("a", "/y", &[])]).unwrap_err();
        assert_eq!(dup, RouteError::DuplicateName("a".into()));
        let overlap = RouteTable::new(vec![route("a", "/x", &["GET"]), route("b", "/x/", &[])]).unwrap_err();
        assert!(matches!(overlap, RouteError::Overlap { .. }));
        assert!(RouteTable::new(vec![route("a", "/x", &["GET"]), route("b", "/x", &["POST"])]).is_ok());
    }

    #[test]
    fn paths_that_could_resolve_elsewhere_are_refused() {
        assert_eq!(check_path("/v1/../admin"), Err(PathError::DotSegment));
        assert_eq!(check_path("/v1/%2E%2e/admin"), Err(PathError::DotSegment));
        assert_eq!(check_path("/v1/./x"), Err(PathError::DotSegment));
        assert_eq!(check_path("/v1/a%2Fb"), Err(PathError::HiddenSeparator));
        assert_eq!(check_path("/v1\\x"), Err(PathError::HiddenSeparator));
        assert_eq!(check_path("*"), Err(PathError::NotAbsolute));
        assert!(check_path("/v1/a..b/.well").is_ok());
    }

    #[test]
    fn toml_shape_deserializes() {
        #[derive(serde::Deserialize)]
        struct File {
            route: Vec<RouteConfig>,
        }
        let text = r#"
            [[route]]
            name = "mcp"
            path_prefix = "/mcp"
            upstream = "http://127.0.0.1:9000"
            action = "call_tool"
            resource = { type = "Tool", id = "mcp_tool_name" }
            kind = "mcp"
            rate_limit = { per_second = 0.5, burst = 3 }

            [[route]]
            name = "openai"
            methods = ["POST"]
            path_prefix = "/v1/chat"
            upstream = "http://127.0.0.1:8000"
            audience = "https://ai.example"
            action = "invoke"
            resource = { type = "Model", id = { json_field = "model" } }
            scopes = ["inference.invoke"]
            forward_authorization = true
            kind = "openai"
        "#;
        let file: File = toml::from_str(text).unwrap();
        let [mcp, openai] = &file.route[..] else {
            panic!("two routes")
        };
        assert_eq!(mcp.resource.id, IdSource::McpToolName);
        assert_eq!(mcp.kind, RouteKind::Mcp);
        assert!(mcp.methods.is_empty() && !mcp.forward_authorization && mcp.audience.is_none());
        assert_eq!(mcp.rate_limit.unwrap().period(), Some(Duration::from_secs(2)));
        assert_eq!(openai.resource.id, IdSource::JsonField("model".into()));
        assert_eq!(openai.kind, RouteKind::Openai);
        assert!(openai.forward_authorization);
        assert!(RouteTable::new(file.route).is_ok());
        let typo = "name = \"o\"\npath_prefix = \"/v1\"\nupstream = \"http://h\"\naction = \"a\"\n\
                    resource = { type = \"M\", id = { literal = \"x\" } }\ncolour = 1\n";
        assert!(
            toml::from_str::<RouteConfig>(typo).is_err(),
            "unknown fields are refused"
        );
    }
}
