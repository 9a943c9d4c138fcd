//! `warden login`, `warden logout` and `warden token print`: a person
//! signs in to a server from the command line and scripts and SDKs get
//! fresh access tokens from what they signed in with.
//!
//! `warden login` uses the device authorization grant (RFC 8628): it shows
//! a URL and a code, the person approves in a browser (anywhere), and the
//! command polls for its tokens. With `--browser` it uses the
//! authorization-code flow with PKCE and a loopback redirect (RFC 8252):
//! it listens on `127.0.0.1`, on a free port, for the one redirect back.
//! Either way the refresh token is kept in the credentials file
//! (`credentials.rs`), never printed.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use zeroize::Zeroizing;

use super::Context;
use super::credentials::{self, CachedAccess, Entry, Locked};
use crate::cli::{LoginArgs, LogoutArgs, TokenPrintArgs};
use crate::exit::UsageError;

/// The client `warden login` signs in through unless told otherwise.
pub const DEFAULT_CLIENT: &str = "warden-cli";
/// Longest wait for the browser's redirect with `--browser`.
const BROWSER_WAIT: Duration = Duration::from_secs(300);
/// An access token is reused while it has at least this long to live.
const REUSE_MARGIN: u64 = 60;
/// Largest answer read from the server.
const MAX_ANSWER: usize = 1024 * 1024;

/// The server's endpoints (RFC 8414 metadata).
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    token_endpoint: String,
    revocation_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
}

/// A token endpoint's answer.
#[derive(Default, Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")
}

fn now() -> u64 {
    super::now()
}

/// The server's base URL: `--server`, else the configured issuer.
fn server(arg: Option<&str>, ctx: &Context) -> String {
    arg.unwrap_or(&ctx.options.issuer).trim_end_matches('/').to_owned()
}

async fn read_json(response: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.context("reading the server's answer")?;
    if bytes.len() > MAX_ANSWER {
        bail!("the server's answer is larger than {MAX_ANSWER} bytes");
    }
    if bytes.is_empty() {
        // RFC 7009: revocation answers 200 with no body.
        return Ok((status, Value::Null));
    }
    let value = serde_json::from_slice(&bytes).map_err(|_| anyhow!("the server answered {status} without JSON"))?;
    Ok((status, value))
}

async fn metadata(http: &reqwest::Client, server: &str) -> anyhow::Result<Metadata> {
    let url = format!("{server}/.well-known/oauth-authorization-server");
    let response = http.get(&url).send().await.with_context(|| format!("reaching {url}"))?;
    let (status, value) = read_json(response).await?;
    if status != 200 {
        bail!("{url} answered {status}");
    }
    let meta: Metadata =
        serde_json::from_value(value).with_context(|| format!("{url} is not OAuth server metadata"))?;
    check_metadata(&meta, server)?;
    Ok(meta)
}

/// The server must be the issuer it names (RFC 8414 §3.3), and every
/// endpoint must be its own: otherwise a server could have the sign-in
/// stored under another's name, or the refresh token sent elsewhere.
fn check_metadata(meta: &Metadata, server: &str) -> anyhow::Result<()> {
    if meta.issuer != server {
        bail!(
            "{server} names itself `{}`; sign in with --server {} if that is the server you mean",
            meta.issuer,
            meta.issuer
        );
    }
    let own = format!("{}/", meta.issuer);
    let endpoints = [
        Some(&meta.token_endpoint),
        Some(&meta.revocation_endpoint),
        meta.device_authorization_endpoint.as_ref(),
        meta.authorization_endpoint.as_ref(),
    ];
    if let Some(foreign) = endpoints.into_iter().flatten().find(|e| !e.starts_with(&own)) {
        bail!("the server's metadata names an endpoint elsewhere ({foreign}); refusing to sign in");
    }
    if !warden_server::login::secure_url(&meta.issuer) {
        bail!(
            "{} is plain http on a non-loopback address: refusing to send credentials to it",
            meta.issuer
        );
    }
    Ok(())
}

async fn post_form(http: &reqwest::Client, url: &str, fields: &[(&str, &str)]) -> anyhow::Result<(u16, Value)> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    let body = form.finish();
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .with_context(|| format!("reaching {url}"))?;
    read_json(response).await
}

fn random() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow!("no randomness available"))?;
    Ok(warden_jose::base64url::encode(&bytes))
}

/// The `sub` of an access token, read without verifying (for display).
fn subject_of(token: &str) -> String {
    token
        .split('.')
        .nth(1)
        .and_then(warden_jose::base64url::decode)
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("sub").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

fn oauth_error(answer: &TokenAnswer) -> String {
    let code = answer.error.as_deref().unwrap_or("error");
    match &answer.error_description {
        Some(d) => format!("{code}: {d}"),
        None => code.to_owned(),
    }
}

/// `warden login`.
pub async fn login(args: LoginArgs, ctx: &Context) -> anyhow::Result<()> {
    let server = server(args.server.as_deref(), ctx);
    let http = http()?;
    let meta = metadata(&http, &server).await?;
    let answer = if args.browser {
        browser_flow(&http, &meta, &args).await?
    } else {
        device_flow(&http, &meta, &args).await?
    };
    let (Some(access), Some(refresh)) = (answer.access_token, answer.refresh_token) else {
        bail!("the server answered without an access token and a refresh token");
    };
    let subject = subject_of(&access);
    let path = credentials::path()?;
    let mut locked = Locked::open(&path)?;
    locked.credentials.servers.insert(
        meta.issuer.clone(),
        Entry {
            client_id: args.client.clone(),
            token_endpoint: meta.token_endpoint,
            revocation_endpoint: meta.revocation_endpoint,
            refresh_token: refresh,
            subject: subject.clone(),
            access: Some(CachedAccess {
                token: access,
                aud: Vec::new(),
                scope: String::new(),
                expires_at: now() + answer.expires_in.unwrap_or(0),
            }),
        },
    );
    locked.save()?;
    eprintln!("signed in to {} as {subject}", meta.issuer);
    Ok(())
}

async fn device_flow(http: &reqwest::Client, meta: &Metadata, args: &LoginArgs) -> anyhow::Result<TokenAnswer> {
    let endpoint = meta
        .device_authorization_endpoint
        .as_deref()
        .ok_or_else(|| anyhow!("{} does not offer the device flow; try --browser", meta.issuer))?;
    let mut fields = vec![("client_id", args.client.as_str())];
    if let Some(scope) = &args.scope {
        fields.push(("scope", scope));
    }
    let (status, v) = post_form(http, endpoint, &fields).await?;
    if status != 200 {
        let answer: TokenAnswer = serde_json::from_value(v).unwrap_or_default();
        return Err(refused(&args.client, &oauth_error(&answer)));
    }
    let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(device_code), Some(user_code), Some(uri)) =
        (field("device_code"), field("user_code"), field("verification_uri"))
    else {
        bail!("the device authorization answer lacks device_code, user_code or verification_uri");
    };
    let device_code = Zeroizing::new(device_code);
    let expires_in = v.get("expires_in").and_then(Value::as_u64).unwrap_or(600).min(3600);
    let mut interval = v.get("interval").and_then(Value::as_u64).unwrap_or(5).clamp(1, 60);
    match field("verification_uri_complete") {
        Some(complete) => eprintln!("To sign in, open {complete}\nand check that it shows the code {user_code}."),
        None => eprintln!("To sign in, open {uri}\nand enter the code {user_code}."),
    }
    eprintln!("Waiting for you to approve (at most {expires_in} s)…");
    let deadline = Instant::now() + Duration::from_secs(expires_in);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let (status, v) = post_form(
            http,
            &meta.token_endpoint,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &device_code),
                ("client_id", &args.client),
            ],
        )
        .await?;
        let answer: TokenAnswer =
            serde_json::from_value(v).map_err(|_| anyhow!("the token endpoint answered {status} without a token"))?;
        match (status, answer.error.as_deref()) {
            (200, _) => return Ok(answer),
            (_, Some("authorization_pending")) => {}
            (_, Some("slow_down")) => interval += 5,
            (_, Some("access_denied")) => bail!("the sign-in was refused in the browser"),
            (_, Some("expired_token")) => bail!("the code expired before it was approved; run `warden login` again"),
            _ => return Err(refused(&args.client, &oauth_error(&answer))),
        }
    }
    bail!("the code expired before it was approved; run `warden login` again")
}

fn refused(client: &str, why: &str) -> anyhow::Error {
    if why.starts_with("invalid_client") {
        anyhow!(
            "the server does not know the public client `{client}` ({why}); an administrator registers it with \
             `warden client create --name {client} --kind public --redirect-uri http://127.0.0.1/callback`"
        )
    } else {
        anyhow!("the sign-in was refused: {why}")
    }
}

async fn browser_flow(http: &reqwest::Client, meta: &Metadata, args: &LoginArgs) -> anyhow::Result<TokenAnswer> {
    let endpoint = meta
        .authorization_endpoint
        .as_deref()
        .ok_or_else(|| anyhow!("{} does not offer the authorization-code flow", meta.issuer))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("listening on 127.0.0.1 for the browser's redirect")?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let state = random()?;
    let verifier = Zeroizing::new(random()?);
    let challenge = warden_server::oauth::pkce::s256(&verifier);
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &args.client)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if let Some(scope) = &args.scope {
        query.append_pair("scope", scope);
    }
    let url = format!("{endpoint}?{}", query.finish());
    eprintln!("To sign in, open this URL in your browser:\n{url}");
    let params = tokio::time::timeout(BROWSER_WAIT, wait_for_redirect(&listener, &state))
        .await
        .map_err(|_| anyhow!("no answer from the browser within {} s", BROWSER_WAIT.as_secs()))??;
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    // RFC 9207: the answer must come from the server asked.
    if get("iss") != Some(meta.issuer.as_str()) {
        bail!("the browser came back from another issuer; nothing was saved");
    }
    if let Some(error) = get("error") {
        bail!(
            "the sign-in was refused: {error} {}",
            get("error_description").unwrap_or_default()
        );
    }
    let code = Zeroizing::new(
        get("code")
            .ok_or_else(|| anyhow!("the browser came back without a code"))?
            .to_owned(),
    );
    let (status, v) = post_form(
        http,
        &meta.token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", &args.client),
        ],
    )
    .await?;
    let answer: TokenAnswer =
        serde_json::from_value(v).map_err(|_| anyhow!("the token endpoint answered {status} without a token"))?;
    if status != 200 {
        return Err(refused(&args.client, &oauth_error(&answer)));
    }
    Ok(answer)
}

/// Accepts connections on `listener` until one is `GET /callback?…` with
/// this sign-in's `state` (anything else, such as another local program
/// guessing the port, is answered 404 and ignored); answers it with a
/// short page and returns its query parameters.
async fn wait_for_redirect(listener: &tokio::net::TcpListener, state: &str) -> anyhow::Result<Vec<(String, String)>> {
    // Bounded by the caller's timeout; each connection by a small read.
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
                Ok(Ok(n)) => n,
                _ => 0,
            };
            let Some(read) = chunk.get(..n).filter(|r| !r.is_empty()) else {
                break;
            };
            head.extend_from_slice(read);
        }
        let head = String::from_utf8_lossy(&head);
        let target = head
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_default()
            .to_owned();
        let Some(query) = target.strip_prefix("/callback?") else {
            let _ = stream
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
            continue;
        };
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let ours = params.iter().any(|(k, v)| {
            k == "state" && aws_lc_rs::constant_time::verify_slices_are_equal(v.as_bytes(), state.as_bytes()).is_ok()
        });
        if !ours {
            let _ = stream
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
            continue;
        }
        let page =
            "<!doctype html><title>Warden</title><p>Signed in. You can close this tab and go back to the terminal.</p>";
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                )
                .as_bytes(),
            )
            .await;
        return Ok(params);
    }
}

/// A fresh access token for the person signed in to `server`: the cached
/// one when it matches and has a minute left, else one from the refresh
/// token (rotated and saved). `aud` and `scope` narrow it.
pub async fn access_token(server: &str, aud: &[String], scope: Option<&str>) -> anyhow::Result<Zeroizing<String>> {
    let path = credentials::path()?;
    let mut locked = Locked::open(&path)?;
    let issuer = server.trim_end_matches('/');
    let Some(entry) = locked.credentials.servers.get(issuer).cloned() else {
        return Err(UsageError(format!(
            "not signed in to {issuer}: run `warden login --server {issuer}`"
        ))
        .into());
    };
    let scope_key = scope.unwrap_or_default().to_owned();
    if let Some(cached) = &entry.access
        && cached.aud == aud
        && cached.scope == scope_key
        && cached.expires_at > now() + REUSE_MARGIN
    {
        return Ok(Zeroizing::new(cached.token.clone()));
    }
    let http = http()?;
    let mut fields = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", entry.refresh_token.as_str()),
        ("client_id", entry.client_id.as_str()),
    ];
    for a in aud {
        fields.push(("resource", a));
    }
    if let Some(s) = scope {
        fields.push(("scope", s));
    }
    let (status, v) = post_form(&http, &entry.token_endpoint, &fields).await?;
    let answer: TokenAnswer =
        serde_json::from_value(v).map_err(|_| anyhow!("the token endpoint answered {status} without a token"))?;
    let (200, Some(access), Some(refresh)) = (status, answer.access_token.clone(), answer.refresh_token.clone()) else {
        if answer.error.as_deref() == Some("invalid_grant") {
            // The sign-in ended (expired, revoked, signed out elsewhere).
            locked.credentials.servers.remove(issuer);
            locked.save()?;
            return Err(UsageError(format!(
                "your sign-in to {issuer} ended ({}); run `warden login` again",
                oauth_error(&answer)
            ))
            .into());
        }
        bail!("refreshing the access token failed: {}", oauth_error(&answer));
    };
    let updated = Entry {
        refresh_token: refresh,
        access: Some(CachedAccess {
            token: access.clone(),
            aud: aud.to_vec(),
            scope: scope_key,
            expires_at: now() + answer.expires_in.unwrap_or(0),
        }),
        ..entry
    };
    locked.credentials.servers.insert(issuer.to_owned(), updated);
    locked.save()?;
    Ok(Zeroizing::new(access))
}

/// `warden token print`.
pub async fn print(args: TokenPrintArgs, ctx: &Context) -> anyhow::Result<()> {
    let server = server(args.server.as_deref(), ctx);
    let token = access_token(&server, &args.aud, args.scope.as_deref()).await?;
    println!("{}", token.as_str());
    Ok(())
}

/// `warden logout`: revokes the sign-in (its refresh-token family and
/// the access tokens issued from it) and forgets it.
pub async fn logout(args: LogoutArgs, ctx: &Context) -> anyhow::Result<()> {
    let server = server(args.server.as_deref(), ctx);
    let path = credentials::path()?;
    let mut locked = Locked::open(&path)?;
    let Some(entry) = locked.credentials.servers.get(&server).cloned() else {
        eprintln!("not signed in to {server}");
        return Ok(());
    };
    let http = http()?;
    let revoked = post_form(
        &http,
        &entry.revocation_endpoint,
        &[
            ("token", entry.refresh_token.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", entry.client_id.as_str()),
        ],
    )
    .await;
    locked.credentials.servers.remove(&server);
    locked.save()?;
    match revoked {
        Ok((200, _)) => {
            eprintln!("signed out of {server}: the sign-in is revoked and forgotten");
            Ok(())
        }
        Ok((status, v)) => bail!("forgotten here, but the server refused to revoke the sign-in ({status}: {v})"),
        Err(e) => Err(e.context("forgotten here, but the server could not be reached to revoke the sign-in")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(issuer: &str, token: &str) -> Metadata {
        Metadata {
            issuer: issuer.to_owned(),
            token_endpoint: token.to_owned(),
            revocation_endpoint: format!("{issuer}/oauth/revoke"),
            device_authorization_endpoint: Some(format!("{issuer}/oauth/device_authorization")),
            authorization_endpoint: None,
        }
    }

    #[test]
    fn a_server_must_be_the_issuer_it_names_with_endpoints_of_its_own() {
        let ok = meta("https://warden.example", "https://warden.example/oauth/token");
        assert!(check_metadata(&ok, "https://warden.example").is_ok());
        let e = check_metadata(&ok, "https://typo.example").unwrap_err().to_string();
        assert!(e.contains("names itself"), "{e}");
        let elsewhere = meta("https://warden.example", "https://evil.example/oauth/token");
        assert!(check_metadata(&elsewhere, "https://warden.example").is_err());
        let prefix = meta("https://warden.example", "https://warden.example.evil/oauth/token");
        assert!(check_metadata(&prefix, "https://warden.example").is_err());
        let plain = meta("http://warden.example", "http://warden.example/oauth/token");
        assert!(
            check_metadata(&plain, "http://warden.example").is_err(),
            "plain http off loopback"
        );
        let local = meta("http://127.0.0.1:8080", "http://127.0.0.1:8080/oauth/token");
        assert!(check_metadata(&local, "http://127.0.0.1:8080").is_ok());
    }
}
