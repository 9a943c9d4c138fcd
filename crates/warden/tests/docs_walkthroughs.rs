//! The walk-throughs in `docs/` and the README's tour, run as printed
//! against the real `warden` binary, so that the documentation stays true:
//!
//! - `docs/gateway.md` § Try it: `warden serve --demo` and every step of
//!   the demo walk-through (curl against the gateway, `warden audit tail`);
//!   each curl step must also be one that `warden serve --demo` prints;
//! - `README.md` § A ten-line tour, against its own `warden serve --demo`;
//! - `docs/audit-log.md` § Walk-through: the audit CLI in an empty
//!   directory, then the audit API of a `warden serve` on the same data;
//! - `docs/tokens-and-keys.md` § Try it: keys, tokens, rotations and a
//!   JWKS exported after them, then the page's PyJWT example (when PyJWT
//!   is installed);
//! - every relative link and `#anchor` of the README and `docs/` leads to
//!   a file and a heading (the screenshots included);
//! - every TOML block of `docs/` that is a configuration file loads with
//!   `warden config check` (the real loader), the complete file of
//!   `docs/configuration.md` resolves to the values it shows, and its key
//!   table names every key and its environment variable.
//!
//! Each walk-through's `sh` blocks are read from the page and sent, one
//! command at a time, to one bash process (so variables carry from step
//! to step), in a fresh temp dir holding a `warden.toml` that sets the
//! listen address to a free loopback port; the pages' default address
//! `127.0.0.1:8080` is replaced by that port, and `wsec_…` placeholders by
//! the secrets the server printed. Each command must match exactly one
//! expected outcome of the test, and each expected outcome must be met by
//! some command, so a command added to a page without a check here fails.
//!
//! Needs `bash` and `curl`. curl reads `max-time` from a `.curlrc` in the
//! temp dir (`CURL_HOME`), and every wait has a deadline.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_warden");
/// The address the pages show; the tests use a free port instead.
const DOC_ADDR: &str = "127.0.0.1:8080";
/// Longest wait for one command of a walk-through.
const STEP_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest wait for a server to print that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- pages

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// The text of `## heading` (up to the next `## ` heading) in `text`.
fn section<'t>(text: &'t str, heading: &str) -> &'t str {
    let marker = format!("\n## {heading}\n");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no section `## {heading}`"))
        + 1;
    let rest = &text[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// The fenced blocks of `text` whose info string is `lang`, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Inside a block: whether it is wanted, and its text so far.
    let mut inside: Option<(bool, String)> = None;
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut inside, fence) {
            (None, true) => inside = Some((line.trim() == format!("```{lang}"), String::new())),
            (None, false) => {}
            (Some((wanted, block)), true) => {
                if *wanted {
                    out.push(std::mem::take(block));
                }
                inside = None;
            }
            (Some((_, block)), false) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    out
}

/// The shell commands of the `sh` blocks of `text`: lines joined at a
/// trailing `\`, without blank and comment-only lines.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for block in blocks(text, "sh") {
        let mut command = String::new();
        for line in block.lines() {
            if command.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
                continue;
            }
            match line.strip_suffix('\\') {
                Some(part) => {
                    command.push_str(part);
                    command.push_str("\\\n");
                }
                None => {
                    command.push_str(line);
                    out.push(std::mem::take(&mut command));
                }
            }
        }
        assert!(command.is_empty(), "a block ends in a continuation: {command}");
    }
    out
}

/// A command as one line, for comparisons and messages.
fn one_line(command: &str) -> String {
    command
        .replace("\\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command without its trailing comment (a `#` that starts a word
/// outside quotes).
fn without_comment(command: &str) -> String {
    let (mut quote, mut prev_space, mut out) = (None, true, String::new());
    for c in command.chars() {
        match (quote, c) {
            (None, '#') if prev_space => break,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        prev_space = c.is_whitespace();
        out.push(c);
    }
    out.trim_end().to_owned()
}

// ---------------------------------------------------------------- processes

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn bin_dir() -> PathBuf {
    Path::new(BIN).parent().unwrap().to_path_buf()
}

/// `PATH` with the binary's directory first, so `warden` is this build.
fn path_var() -> String {
    format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default())
}

fn require_tools() {
    for tool in ["bash", "curl"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "the documentation walk-throughs need `{tool}` on PATH");
    }
}

/// A temp dir with a `warden.toml` that puts the listen address (and so
/// the issuer) on a free port, and a `.curlrc` that bounds every curl.
struct Dir {
    dir: tempfile::TempDir,
    port: u16,
}

impl Dir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("warden.toml"),
            format!("listen = \"127.0.0.1:{port}\"\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join(".curlrc"), "max-time = 60\n").unwrap();
        Dir { dir, port }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A command with this dir as its working directory and home, and no
    /// `WARDEN_*` variable from the test's environment.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.path())
            .env_clear()
            .env("PATH", path_var())
            .env("HOME", self.path())
            .env("CURL_HOME", self.path())
            .env("LANG", "C.UTF-8")
            .env("WARDEN_LOG", "error");
        cmd
    }
}

/// Lines of a child's stream, through a channel.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running `warden serve`, stopped on drop.
struct Server {
    child: Child,
    /// What it printed to stderr up to "listening" (and, with `--demo`,
    /// the whole walk-through).
    printed: String,
}

impl Server {
    fn start(dir: &Dir, args: &[&str]) -> Self {
        let mut child = dir
            .command(BIN)
            .args(args)
            .env("WARDEN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = lines_of(child.stderr.take().unwrap());
        let demo = args.contains(&"--demo");
        let deadline = Instant::now() + START_TIMEOUT;
        let mut printed = String::new();
        // `--demo` prints its walk-through in one piece after it listens;
        // its last command is the MCP call of `search_datasets`.
        let done = |text: &str| {
            if demo {
                text.contains(r#""name":"search_datasets""#)
            } else {
                text.contains("warden listening on")
            }
        };
        while !done(&printed) {
            match stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    printed.push_str(&line);
                    printed.push('\n');
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "`warden {}` did not start ({e:?}); it printed:\n{printed}",
                        args.join(" ")
                    );
                }
            }
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || while stderr.recv().is_ok() {});
        Server { child, printed }
    }

    /// The value of `NAME='…'` in what the server printed.
    fn printed_value(&self, name: &str) -> String {
        let prefix = format!("{name}='");
        self.printed
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.strip_suffix('\'')))
            .unwrap_or_else(|| panic!("the server printed no {name}:\n{}", self.printed))
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one command did.
#[derive(Debug)]
struct Outcome {
    command: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "`{}` failed: {self:#?}", one_line(&self.command));
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}): {self:#?}", one_line(&self.command)))
    }

    fn says(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "`{}` did not print {text:?}: {self:#?}",
            one_line(&self.command)
        );
        self
    }
}

/// One bash process fed one command at a time, so that variables carry
/// from step to step as in a terminal.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Shell {
    fn new(dir: &Dir) -> Self {
        let mut child = dir
            .command("bash")
            .args(["--noprofile", "--norc"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Shell {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Runs `command` (its stdin is /dev/null unless it redirects it) and
    /// returns its exit code and output.
    fn run(&mut self, command: &str) -> Outcome {
        let script = format!("{{ {command}\n}} </dev/null\nprintf '\\n@@done %d\\n' $?\nprintf '\\n@@done\\n' >&2\n");
        self.stdin.write_all(script.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
        let deadline = Instant::now() + STEP_TIMEOUT;
        let (stdout, code) = Self::until_marker(&self.stdout, deadline, command);
        let (stderr, _) = Self::until_marker(&self.stderr, deadline, command);
        Outcome {
            command: command.to_owned(),
            code: code.unwrap_or(-1),
            stdout,
            stderr,
        }
    }

    fn until_marker(lines: &Receiver<String>, deadline: Instant, command: &str) -> (String, Option<i32>) {
        let mut seen = Vec::new();
        loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with("@@done") => {
                    let code = line.strip_prefix("@@done ").and_then(|c| c.trim().parse().ok());
                    return (seen.join("\n"), code);
                }
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "`{}` ran past {STEP_TIMEOUT:?}; so far: {}",
                        one_line(command),
                        seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => panic!("bash exited during `{}`", one_line(command)),
            }
        }
    }

    /// The value of a shell variable.
    fn var(&mut self, name: &str) -> String {
        self.run(&format!("printf '%s' \"${name}\"")).stdout
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- walk-throughs

/// What the test does with a command of a page.
enum Step<'a> {
    /// Run it in the shell, then check it (the usize counts earlier
    /// commands that matched the same pattern).
    Run(&'a dyn Fn(&Outcome, usize, &mut Shell)),
    /// The test does this itself (starting a server).
    Start,
    /// Not run: the test provides the same thing (the README's alias of
    /// `warden` to the release build).
    Provided,
}

/// Runs `commands` in `shell`: each must match exactly one pattern of
/// `steps` (a substring of the command without its comment, or of the
/// comment when the pattern starts with `#`), and each pattern must match
/// at least one command. `start` runs for `Step::Start`.
fn walk(
    page: &str,
    commands: &[String],
    steps: &[(&str, Step<'_>)],
    shell: &mut Shell,
    substitute: &dyn Fn(&str) -> String,
    start: &mut dyn FnMut(&str),
) {
    let mut used = vec![0usize; steps.len()];
    for command in commands {
        let code = without_comment(command);
        let comment = command[code.len()..].to_owned();
        let matches: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, (pattern, _))| match pattern.strip_prefix('#') {
                Some(p) => comment.contains(p),
                None => code.contains(pattern),
            })
            .map(|(i, _)| i)
            .collect();
        let [i] = matches[..] else {
            panic!(
                "{page}: the command `{}` matches {} of the test's steps: add or fix its check in {}",
                one_line(command),
                matches.len(),
                file!()
            )
        };
        match &steps[i].1 {
            Step::Run(check) => {
                let outcome = shell.run(&substitute(command));
                check(&outcome, used[i], shell);
            }
            Step::Start => start(command),
            Step::Provided => {}
        }
        used[i] += 1;
    }
    for ((pattern, _), n) in steps.iter().zip(&used) {
        assert!(
            *n > 0,
            "{page}: no command matches the test's step `{pattern}`: was it removed?"
        );
    }
}

/// Replaces the pages' address by the test's.
fn on_port(dir: &Dir) -> impl Fn(&str) -> String + '_ {
    move |command: &str| command.replace(DOC_ADDR, &dir.addr())
}

fn is_jwt(text: &str) -> bool {
    text.starts_with("eyJ") && text.split('.').count() == 3
}

/// The checks of the demo walk-through, shared by the gateway page and the
/// README's tour.
fn chat_allowed(o: &Outcome) {
    let reply = o.ok().json();
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(text.contains("svc:demo-app"), "{reply}");
    assert_eq!(reply["warden"]["subject"], "svc:demo-app", "{reply}");
    assert_eq!(reply["warden"]["authorization_seen"], false, "{reply}");
}

fn token_assigned(var: &'static str) -> impl Fn(&Outcome, usize, &mut Shell) {
    move |o, _, shell| {
        o.ok();
        let token = shell.var(var);
        assert!(is_jwt(&token), "`{}` left {var}={token:?}", one_line(&o.command));
    }
}

#[test]
fn gateway_demo_walkthrough_runs_as_printed() {
    require_tools();
    let page = repo_file("docs/gateway.md");
    let commands = commands(section(&page, "Try it: the gateway demo"));
    let dir = Dir::new();
    let mut shell = Shell::new(&dir);
    let mut server: Option<Server> = None;

    let secret = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
    };
    let token = token_assigned("TOKEN");
    let agent = token_assigned("AGENT");
    let small = |o: &Outcome, _: usize, _: &mut Shell| chat_allowed(o);
    let stream = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
        let chunks: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("data: {")).collect();
        assert!(chunks.len() > 3, "a streamed reply in several chunks: {o:#?}");
        assert!(o.stdout.trim_end().ends_with("data: [DONE]"), "{o:#?}");
    };
    let forbidden = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok().says("HTTP/1.1 403 Forbidden");
        let body = o.stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["type"], "permission_error", "{body}");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
    };
    let tail = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
        let rows: Vec<&str> = o.stdout.lines().skip(1).collect();
        assert_eq!(rows.len(), 4, "{o:#?}");
        assert!(rows[0].contains("token_issued"), "{o:#?}");
        let allowed = rows.iter().filter(|r| r.contains("decision=allow")).count();
        assert_eq!(allowed, 2, "{o:#?}");
        assert!(
            rows[3].contains("decision=deny") && rows[3].contains(r#"policy_ids=["model.archived"]"#),
            "{o:#?}"
        );
    };
    let echo = |o: &Outcome, _: usize, _: &mut Shell| {
        let reply = o.ok().json();
        assert_eq!(reply["result"]["content"][0]["text"], "hi", "{reply}");
    };
    let refused_tool = |o: &Outcome, _: usize, _: &mut Shell| {
        let reply = o.ok().json();
        assert_eq!(reply["id"], 2, "{reply}");
        assert_eq!(reply["error"]["message"], "forbidden", "{reply}");
    };
    let steps: Vec<(&str, Step<'_>)> = vec![
        ("warden serve --demo", Step::Start),
        ("WARDEN=http://127.0.0.1:8080", Step::Run(&secret)),
        ("APP_SECRET=", Step::Run(&secret)),
        ("AGENT_SECRET=", Step::Run(&secret)),
        ("TOKEN=$(curl", Step::Run(&token)),
        ("\"model\":\"demo-small\"", Step::Run(&small)),
        ("\"stream\":true", Step::Run(&stream)),
        ("\"model\":\"forbidden-model\"", Step::Run(&forbidden)),
        ("warden audit tail -n 4", Step::Run(&tail)),
        ("AGENT=$(curl", Step::Run(&agent)),
        ("\"name\":\"echo\"", Step::Run(&echo)),
        ("\"name\":\"search_datasets\"", Step::Run(&refused_tool)),
    ];
    let printed = std::cell::RefCell::new(String::new());
    let secrets = std::cell::RefCell::new(BTreeMap::new());
    let substitute = |command: &str| {
        let mut command = on_port(&dir)(command);
        for (name, value) in secrets.borrow().iter() {
            command = command.replace(&format!("{name}='wsec_…'"), &format!("{name}='{value}'"));
        }
        command
    };
    walk(
        "docs/gateway.md",
        &commands,
        &steps,
        &mut shell,
        &substitute,
        &mut |command| {
            assert_eq!(without_comment(command), "warden serve --demo");
            let s = Server::start(&dir, &["serve", "--demo"]);
            for name in ["APP_SECRET", "AGENT_SECRET"] {
                secrets.borrow_mut().insert(name, s.printed_value(name));
            }
            *printed.borrow_mut() = s.printed.clone();
            server = Some(s);
        },
    );
    assert!(server.is_some());

    // The page shows what `warden serve --demo` prints: every curl step and
    // token request of the page is one of the printed commands.
    let printed_commands: Vec<String> = commands_of_printed(&printed.borrow());
    for command in &commands {
        let code = one_line(&without_comment(command));
        if code.contains("curl") {
            assert!(
                printed_commands.contains(&code),
                "docs/gateway.md shows `{code}`, which `warden serve --demo` does not print:\n{}",
                printed.borrow()
            );
        }
    }
}

/// The shell commands in the walk-through `warden serve --demo` printed.
fn commands_of_printed(printed: &str) -> Vec<String> {
    let start = printed.find("\nWARDEN=").expect("the printed walk-through") + 1;
    let block = format!("```sh\n{}```\n", &printed[start..]);
    commands(&block).iter().map(|c| one_line(&without_comment(c))).collect()
}

#[test]
fn readme_tour_runs_as_printed() {
    require_tools();
    let readme = repo_file("README.md");
    let commands = commands(section(&readme, "A ten-line tour"));
    let dir = Dir::new();
    let server = Server::start(&dir, &["serve", "--demo"]);
    let app_secret = server.printed_value("APP_SECRET");
    let mut shell = Shell::new(&dir);

    let ok = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
    };
    let token = token_assigned("TOKEN");
    let small = |o: &Outcome, _: usize, _: &mut Shell| chat_allowed(o);
    let forbidden = |o: &Outcome, _: usize, _: &mut Shell| {
        assert_eq!(o.ok().stdout.trim(), "403", "{o:#?}");
    };
    let tail = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
        let rows: Vec<&str> = o.stdout.lines().skip(1).collect();
        assert_eq!(rows.len(), 3, "{o:#?}");
        assert!(rows[0].contains("token_issued"), "{o:#?}");
        assert!(rows[1].contains("decision=allow"), "{o:#?}");
        assert!(rows[2].contains("decision=deny"), "{o:#?}");
    };
    let link = |o: &Outcome, _: usize, _: &mut Shell| {
        let url = o.ok().stdout.trim().to_owned();
        let token = url.split_once("/ui/login#token=").map(|(_, t)| t).unwrap_or_default();
        assert!(is_jwt(token), "a sign-in link: {o:#?}");
    };
    let steps: Vec<(&str, Step<'_>)> = vec![
        ("alias warden=", Step::Provided),
        ("WARDEN=http://127.0.0.1:8080", Step::Run(&ok)),
        ("APP_SECRET=", Step::Run(&ok)),
        ("TOKEN=$(curl", Step::Run(&token)),
        ("\"model\":\"demo-small\"", Step::Run(&small)),
        ("\"model\":\"forbidden-model\"", Step::Run(&forbidden)),
        ("warden audit tail -n 3", Step::Run(&tail)),
        ("warden ui link --sub user:audrey --role auditor", Step::Run(&link)),
    ];
    // The alias points at the release build scripts/demo made; the test's
    // PATH puts this build's `warden` first instead.
    let alias = commands.iter().find(|c| c.starts_with("alias warden=")).unwrap();
    assert_eq!(
        without_comment(alias),
        r#"alias warden="${CARGO_TARGET_DIR:-$PWD/target}/release/warden""#
    );
    let substitute =
        |command: &str| on_port(&dir)(command).replace("APP_SECRET='wsec_…'", &format!("APP_SECRET='{app_secret}'"));
    walk(
        "README.md",
        &commands,
        &steps,
        &mut shell,
        &substitute,
        &mut |_| unreachable!(),
    );
}

#[test]
fn audit_walkthrough_runs_as_printed() {
    require_tools();
    let page = repo_file("docs/audit-log.md");
    let commands = commands(section(&page, "Walk-through"));
    let dir = Dir::new();
    let mut shell = Shell::new(&dir);
    let mut server: Option<Server> = None;

    let kid = |o: &Outcome, _: usize, _: &mut Shell| {
        assert_eq!(o.ok().stdout.trim().len(), 43, "a key id: {o:#?}");
    };
    let client = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok().says("client_id: trainer\n");
    };
    let vkey = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
        let vkey = std::fs::read_to_string(dir.path().join("audit.vkey")).unwrap();
        let parts: Vec<&str> = vkey.trim().split('+').collect();
        assert!(
            parts.len() >= 3 && parts[0].ends_with("/audit") && parts[1].len() == 8,
            "{vkey}"
        );
    };
    let checkpoint = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok().says("/audit\n3\n").says("\n— ");
    };
    let tail = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok().says("key_created").says("key_rotated").says("admin_action");
    };
    let rotated = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok().says("key_rotated");
        assert_eq!(
            o.stdout.lines().count(),
            2,
            "a header and the one key_rotated event: {o:#?}"
        );
    };
    let admin = |o: &Outcome, _: usize, _: &mut Shell| {
        let event = o.ok().json();
        assert_eq!(event["type"], "admin_action", "{event}");
        assert_eq!(event["index"], 2, "{event}");
    };
    let export = |o: &Outcome, _: usize, _: &mut Shell| {
        use std::os::unix::fs::PermissionsExt as _;
        o.ok();
        let meta = std::fs::metadata(dir.path().join("audit.jsonl")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    };
    let verify_before = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok().says("audit log OK (database): 3 events, 0 erased");
    };
    let verify_after = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok().says("audit log OK (database): 4 events, 1 erased");
    };
    let verify_export = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok().says("audit log OK (audit.jsonl): 3 events, 0 erased");
    };
    let refused = |o: &Outcome, _: usize, _: &mut Shell| {
        assert_eq!(o.code, 1, "{o:#?}");
        assert!(o.stderr.contains("within the retention period"), "{o:#?}");
    };
    let erased = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
    };
    let ok = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
    };
    let auditor = token_assigned("AUDITOR");
    let events = |o: &Outcome, _: usize, _: &mut Shell| {
        let page = o.ok().json();
        let events = page["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{page}");
        assert_eq!(events[0]["type"], "key_rotated", "{page}");
        assert_eq!(events[0]["index"], 1, "{page}");
    };
    let api_checkpoint = |o: &Outcome, _: usize, _: &mut Shell| {
        let cp = o.ok().json();
        assert!(cp["size"].as_u64().unwrap() >= 3, "{cp}");
        assert!(cp["note"].as_str().unwrap().contains("/audit\n"), "{cp}");
    };
    let inclusion = |o: &Outcome, _: usize, _: &mut Shell| {
        let proof = o.ok().json();
        assert_eq!(
            (proof["index"].as_u64(), proof["size"].as_u64()),
            (Some(1), Some(4)),
            "{proof}"
        );
        assert_eq!(proof["proof"].as_array().map(Vec::len), Some(2), "{proof}");
    };
    let consistency = |o: &Outcome, _: usize, _: &mut Shell| {
        let proof = o.ok().json();
        assert!(
            proof["from_root"].is_string() && proof["to_root"].is_string(),
            "{proof}"
        );
        assert!(!proof["proof"].as_array().unwrap().is_empty(), "{proof}");
    };
    let steps: Vec<(&str, Step<'_>)> = vec![
        ("warden keys rotate", Step::Run(&kid)),
        ("warden client create --name trainer", Step::Run(&client)),
        ("warden audit vkey > audit.vkey", Step::Run(&vkey)),
        ("warden audit checkpoint", Step::Run(&checkpoint)),
        ("warden audit tail -n 20", Step::Run(&tail)),
        ("warden audit query --type key_rotated", Step::Run(&rotated)),
        ("warden audit query --type admin_action --json", Step::Run(&admin)),
        ("warden audit export", Step::Run(&export)),
        ("#against its own log key", Step::Run(&verify_before)),
        ("#audit log OK (database): 4 events, 1 erased", Step::Run(&verify_after)),
        ("warden audit verify --export", Step::Run(&verify_export)),
        ("#refused within retention", Step::Run(&refused)),
        ("--override-retention", Step::Run(&erased)),
        ("warden serve", Step::Start),
        ("ISS=http://127.0.0.1:8080", Step::Run(&ok)),
        ("AUDITOR=$(warden token issue", Step::Run(&auditor)),
        ("/api/v1/audit/events?type=key_rotated", Step::Run(&events)),
        ("/api/v1/audit/checkpoint", Step::Run(&api_checkpoint)),
        ("/api/v1/audit/proof/inclusion?index=1&size=4", Step::Run(&inclusion)),
        ("/api/v1/audit/proof/consistency?from=3&to=4", Step::Run(&consistency)),
    ];
    walk(
        "docs/audit-log.md",
        &commands,
        &steps,
        &mut shell,
        &on_port(&dir),
        &mut |command| {
            assert_eq!(without_comment(command), "warden serve");
            server = Some(Server::start(&dir, &["serve"]));
        },
    );
    assert!(server.is_some());
}

#[test]
fn tokens_and_keys_walkthrough_runs_as_printed() {
    require_tools();
    let page = repo_file("docs/tokens-and-keys.md");
    let commands = commands(section(&page, "Try it"));
    let dir = Dir::new();
    let mut shell = Shell::new(&dir);

    let first = |o: &Outcome, _: usize, shell: &mut Shell| {
        o.ok();
        assert_eq!(shell.var("FIRST").len(), 43, "a key id in FIRST: {o:#?}");
    };
    let next = |o: &Outcome, _: usize, shell: &mut Shell| {
        o.ok();
        assert_eq!(shell.var("NEXT").len(), 43, "a key id in NEXT: {o:#?}");
    };
    let list = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok().says("KID").says("active");
    };
    let issue = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
        let token = std::fs::read_to_string(dir.path().join("token.txt")).unwrap();
        assert!(is_jwt(token.trim()), "{token}");
    };
    let inspect = |o: &Outcome, _: usize, _: &mut Shell| {
        let shown = o.ok().json();
        assert_eq!(shown["header"]["typ"], "at+jwt", "{shown}");
        assert!(shown["UNVERIFIED"].is_string(), "{shown}");
    };
    // The token signed by FIRST verifies, until FIRST is retired by force.
    let verify_store = |o: &Outcome, nth: usize, _: &mut Shell| {
        if nth == 0 {
            assert_eq!(o.ok().json()["sub"], "user:alice", "{o:#?}");
        } else {
            assert_eq!(o.code, 1, "{o:#?}");
            assert!(o.stderr.starts_with("token rejected: no key with this `kid`"), "{o:#?}");
        }
    };
    let jwks = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
        let set: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("jwks.json")).unwrap()).unwrap();
        assert!(!set["keys"].as_array().unwrap().is_empty(), "{set}");
    };
    // Each time: the token of the moment, against the JWKS exported after it.
    let verify_jwks = |o: &Outcome, _: usize, _: &mut Shell| {
        let claims = o.ok().json();
        assert_eq!(claims["sub"], "user:alice", "{claims}");
        assert_eq!(claims["scope"], "inference.invoke model.read", "{claims}");
    };
    let ok = |o: &Outcome, _: usize, _: &mut Shell| {
        o.ok();
    };
    let steps: Vec<(&str, Step<'_>)> = vec![
        ("FIRST=$(warden keys rotate)", Step::Run(&first)),
        ("warden keys list", Step::Run(&list)),
        ("warden token issue --sub user:alice", Step::Run(&issue)),
        ("warden token inspect - < token.txt", Step::Run(&inspect)),
        (
            "warden token verify --iss http://127.0.0.1:8080 --aud inference - < token.txt",
            Step::Run(&verify_store),
        ),
        ("warden keys jwks > jwks.json", Step::Run(&jwks)),
        ("warden token verify --jwks jwks.json", Step::Run(&verify_jwks)),
        ("NEXT=$(warden keys rotate --alg ES256)", Step::Run(&next)),
        ("warden keys retire \"$NEXT\"", Step::Run(&ok)),
        ("warden keys rotate --immediately", Step::Run(&ok)),
        ("warden keys retire --force \"$FIRST\"", Step::Run(&ok)),
        ("warden keys sweep", Step::Run(&ok)),
    ];
    walk(
        "docs/tokens-and-keys.md",
        &commands,
        &steps,
        &mut shell,
        &on_port(&dir),
        &mut |_| unreachable!(),
    );

    // The PyJWT example verifies the last token against the last JWKS, in
    // the same directory (skipped, as the PyJWT test in cli.rs is, where
    // PyJWT is not installed; ./scripts/test installs it).
    // python3 with the test's own environment (user site-packages, pyenv).
    let python3 = || {
        let mut cmd = Command::new("python3");
        cmd.current_dir(dir.path());
        cmd
    };
    let pyjwt = python3()
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !pyjwt {
        eprintln!("skipping the PyJWT example: PyJWT not installed (run ./scripts/test to install it)");
        return;
    }
    let python = blocks(&page, "python");
    let [python] = &python[..] else {
        panic!("one Python example in docs/tokens-and-keys.md")
    };
    let out = python3().args(["-c", &on_port(&dir)(python)]).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && printed.contains("'sub': 'user:alice'"),
        "the PyJWT example failed: {printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- configuration

/// Runs `warden --config FILE config check` on `toml` in a fresh dir. A
/// `[[login]]` provider's relative `client_secret_file` is made there
/// first (mode 0600), as the reader following the page would have it.
fn config_check(toml: &str) -> Outcome {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = Dir::new();
    let file = dir.path().join("checked.toml");
    std::fs::write(&file, toml).unwrap();
    if let Ok(table) = toml.parse::<toml::Table>()
        && let Some(toml::Value::Array(logins)) = table.get("login")
    {
        for secret in logins.iter().filter_map(|l| l.get("client_secret_file")?.as_str()) {
            if Path::new(secret).is_relative() {
                let path = dir.path().join(secret);
                std::fs::write(&path, "a-client-secret").unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
    let out = dir
        .command(BIN)
        .arg("--config")
        .arg(&file)
        .args(["config", "check"])
        .output()
        .unwrap();
    Outcome {
        command: format!("warden --config <block> config check\n{toml}"),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `a.b = value` for every leaf of a TOML table.
fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(t) => flatten(&path, t, out),
            v => {
                out.insert(path, v.clone());
            }
        }
    }
}

/// The `key = value` lines `warden config check` printed, as TOML values.
fn resolved_values(printed: &str) -> BTreeMap<String, toml::Value> {
    let mut out = BTreeMap::new();
    for line in printed.lines() {
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        if let Ok(table) = format!("v = {value}").parse::<toml::Table>() {
            out.insert(key.to_owned(), table["v"].clone());
        }
    }
    out
}

#[test]
fn every_configuration_block_in_the_docs_loads() {
    let mut checked = 0;
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for block in blocks(&text, "toml") {
            // Policy test cases are TOML too; they run in the next test.
            if block.contains("[[case]]") {
                continue;
            }
            let out = config_check(&block);
            assert!(
                out.code == 0 && out.stderr.contains("configuration OK"),
                "a configuration block of {} does not load: {out:#?}",
                page.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} configuration blocks found");
}

#[test]
fn the_policy_test_case_in_the_docs_passes() {
    let page = repo_file("docs/policies.md");
    let cases: Vec<String> = blocks(&page, "toml")
        .into_iter()
        .filter(|b| b.contains("[[case]]"))
        .collect();
    assert_eq!(cases.len(), 1);
    let dir = Dir::new();
    std::fs::write(dir.path().join("cases.toml"), &cases[0]).unwrap();
    let out = dir
        .command(BIN)
        .args(["policy", "test", "cases.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_configuration_reference_is_the_loader_s() {
    let page = repo_file("docs/configuration.md");
    let complete = blocks(section(&page, "A complete file"), "toml");
    let [complete] = &complete[..] else {
        panic!("one complete file")
    };
    let out = config_check(complete);
    out.ok();

    // What the file sets is what the loader resolved, and the default.
    let mut written = BTreeMap::new();
    flatten("", &complete.parse::<toml::Table>().unwrap(), &mut written);
    let resolved = resolved_values(&out.stdout);
    let defaults = config_check("");
    let defaults = resolved_values(&defaults.ok().stdout);
    assert!(resolved.len() > 20, "{}", out.stdout);
    for (key, value) in &written {
        if let Some(seen) = resolved.get(key) {
            assert_eq!(seen, value, "`{key}` in the complete file resolves to {seen}");
            assert_eq!(
                defaults.get(key),
                Some(value),
                "`{key}` in the complete file is not the default"
            );
        }
    }

    // Every key the loader prints, and every key of the file, is in the
    // key table, with the environment variable derived from its name.
    let table = section(&page, "Keys");
    let mut keys: Vec<&String> = resolved.keys().chain(written.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let env = format!("WARDEN_{}", key.replace('.', "_").to_ascii_uppercase());
        let row = format!("| `{key}` | `{env}` |");
        assert!(
            table.contains(&row),
            "docs/configuration.md has no row starting `{row}`"
        );
    }
    // And every row's variable is one the loader accepts.
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let env = row.split('|').nth(2).unwrap().trim().trim_matches('`');
        let out = Dir::new()
            .command(BIN)
            .env(env, "")
            .args(["config", "check"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("unknown environment variable"),
            "docs/configuration.md names {env}, which the loader does not know: {stderr}"
        );
    }
}

// ---------------------------------------------------------------- links

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// The link targets of a Markdown text (outside code blocks and code spans).
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let target = &rest[at + 2..];
            let end = target.find(')').unwrap_or(target.len());
            out.push(target[..end].to_owned());
            rest = &target[end..];
        }
    }
    out
}

#[test]
fn links_between_the_pages_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut pages = vec![root.join("README.md")];
    // `docs/` and its folders (the sign-in provider pages).
    let mut docs: Vec<PathBuf> = Vec::new();
    for dir in std::iter::once(root.join("docs")).chain(
        std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir()),
    ) {
        docs.extend(
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "md")),
        );
    }
    docs.sort();
    pages.extend(docs);
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (path, anchor) = link.split_once('#').unwrap_or((link.as_str(), ""));
            let target = if path.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(path)
            };
            assert!(target.exists(), "{}: the link `{link}` leads nowhere", page.display());
            if !anchor.is_empty() {
                let headings = anchors(&std::fs::read_to_string(&target).unwrap());
                assert!(
                    headings.iter().any(|h| h == anchor),
                    "{}: no heading `#{anchor}` in {}",
                    page.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} links");
}

// ---------------------------------------------------------------- the readers

#[test]
fn pages_are_read_as_a_shell_would() {
    let text = "x\n## A\n```sh\n# c\nA=1   # one\nb \\\n  c\n\n```\n```text\nnot\n```\n## B\n```sh\nd\n```\n";
    assert_eq!(commands(section(text, "A")), ["A=1   # one", "b \\\n  c"]);
    assert_eq!(one_line("b \\\n  c"), "b c");
    assert_eq!(without_comment(r#"echo '#x' "a # b" # c"#), r#"echo '#x' "a # b""#);
    assert_eq!(blocks(text, "text"), ["not\n"]);
    assert_eq!(slug("Try it: the gateway demo"), "try-it-the-gateway-demo");
    assert_eq!(slug(" The server's layout"), "the-servers-layout");
    assert_eq!(links("[a](b.md#c) `[x](y)` ![i](s/i.png)"), ["b.md#c", "s/i.png"]);
}
