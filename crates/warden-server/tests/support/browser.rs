//! A browser for the dashboard's tests: a cookie jar that checks every
//! cookie's attributes, no redirects followed, same-origin headers.

use std::collections::HashMap;

use warden_store::Store;

use super::Server;

/// A browser: a cookie jar, no redirects followed, same-origin headers.
pub struct Browser<'a, S: Store> {
    server: &'a Server<S>,
    pub http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    pub origin: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl<'a, S: Store> Browser<'a, S> {
    pub fn new(server: &'a Server<S>) -> Self {
        Browser {
            server,
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            origin: Some(server.base.clone()),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn take(&mut self, r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        for c in headers.get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            assert!(attrs.contains("HttpOnly"), "{c}");
            assert!(attrs.contains("SameSite=Strict"), "{c}");
            assert!(attrs.contains("Path=/ui"), "{c}");
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let body = r.text().await.unwrap();
        Page { status, headers, body }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.server.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.server.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(super::form(fields));
        if let Some(o) = &self.origin {
            req = req.header("origin", o);
        }
        let r = req.send().await.unwrap();
        self.take(r).await
    }

    pub async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/ui/login").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        self.post("/ui/login", &[("csrf", &csrf), ("token", token)]).await
    }
}
