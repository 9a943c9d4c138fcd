//! Strict `application/x-www-form-urlencoded` request bodies (RFC 6749 §3.2,
//! appendix B): parameters sent without a value are treated as omitted, and
//! no parameter may repeat except those RFC 8707 lets repeat.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};

use crate::error::ApiError;

/// Parameters that may appear more than once (RFC 8707 `resource`, RFC 8693 `audience`).
const REPEATABLE: [&str; 2] = ["resource", "audience"];

/// A parsed form.
#[derive(Debug, Default)]
pub struct Form {
    single: BTreeMap<String, String>,
    repeated: BTreeMap<String, Vec<String>>,
}

impl Form {
    /// Parses `body`, which must be sent as `application/x-www-form-urlencoded`.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        if headers.get_all(header::CONTENT_TYPE).iter().count() > 1 {
            return Err(ApiError::invalid_request("Content-Type is given more than once"));
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(ApiError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Self::from_urlencoded(body)
    }

    /// Parses a query string (an authorization request) by the same rules.
    pub fn from_urlencoded(body: &[u8]) -> Result<Self, ApiError> {
        let mut form = Form::default();
        for (name, value) in form_urlencoded::parse(body) {
            if value.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&name.as_ref()) {
                form.repeated
                    .entry(name.into_owned())
                    .or_default()
                    .push(value.into_owned());
            } else if form.single.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(ApiError::invalid_request(format!("parameter `{name}` is repeated")));
            }
        }
        Ok(form)
    }

    /// A single-valued parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    /// A required single-valued parameter.
    pub fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::invalid_request(format!("parameter `{name}` is required")))
    }

    /// Every value of a repeatable parameter.
    pub fn all(&self, name: &str) -> &[String] {
        self.repeated.get(name).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        h
    }

    #[test]
    fn parses_and_refuses_repeats() {
        let f = Form::parse(
            &headers(),
            b"grant_type=client_credentials&scope=a+b&resource=x&resource=y&empty=",
        )
        .unwrap();
        assert_eq!(f.get("scope"), Some("a b"));
        assert_eq!(f.all("resource"), ["x", "y"]);
        assert_eq!(f.get("empty"), None);
        assert!(Form::parse(&headers(), b"scope=a&scope=b").is_err());
        assert!(Form::parse(&HeaderMap::new(), b"scope=a").is_err());
    }
}
