//! The signed-in person's credentials on this machine: one entry per
//! server (by issuer) with the refresh token `warden login` obtained and
//! the last access token, in `~/.config/warden/credentials`
//! (`$XDG_CONFIG_HOME/warden/credentials`, or `$WARDEN_CREDENTIALS`),
//! mode 0600, replaced atomically. Whoever reads it acts as the person:
//! it is refused when others may read it.
//!
//! Refreshing rotates the refresh token (and presenting a spent one
//! revokes the whole sign-in), so every read-refresh-write happens under
//! an exclusive lock of `<file>.lock`: two commands run at once take turns
//! instead of revoking each other.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};

/// The environment variable naming another credentials file.
pub const ENV: &str = "WARDEN_CREDENTIALS";

/// One server's credentials.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The public client signed in through.
    pub client_id: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The revocation endpoint.
    pub revocation_endpoint: String,
    /// The rotating refresh token.
    pub refresh_token: String,
    /// Who signed in (from the first access token; for display).
    pub subject: String,
    /// The last access token, with its audience, scope and expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<CachedAccess>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("client_id", &self.client_id)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// An access token kept for reuse until shortly before it expires.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CachedAccess {
    /// The token.
    pub token: String,
    /// What `--aud` asked for it (empty: the default).
    pub aud: Vec<String>,
    /// What `--scope` asked for it (empty: the default).
    pub scope: String,
    /// Its expiry, Unix seconds.
    pub expires_at: u64,
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// By issuer.
    pub servers: BTreeMap<String, Entry>,
}

/// Where the credentials live.
pub fn path() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::home_dir()
            .ok_or_else(|| anyhow!("no home directory: set {ENV} to the credentials file to use"))?
            .join(".config"),
    };
    Ok(config.join("warden").join("credentials"))
}

/// The file, locked until dropped.
pub struct Locked {
    path: PathBuf,
    _lock: File,
    /// What it holds.
    pub credentials: Credentials,
}

impl Locked {
    /// Opens (or starts) the credentials at `path`, waiting for the lock.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let lock_path = lock_path(path);
        let lock = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
        let credentials = match std::fs::read(path) {
            Ok(bytes) => {
                check_private(path)?;
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a Warden credentials file", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Credentials::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Locked {
            path: path.to_path_buf(),
            _lock: lock,
            credentials,
        })
    }

    /// Writes the credentials back: a new 0600 file renamed over the old.
    pub fn save(&self) -> anyhow::Result<()> {
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        let mut file = private_options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let text = serde_json::to_vec_pretty(&self.credentials)?;
        let written = file.write_all(&text).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", tmp.display()));
        }
        std::fs::rename(&tmp, &self.path).with_context(|| format!("replacing {}", self.path.display()))
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

#[cfg(unix)]
fn private_options() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

#[cfg(not(unix))]
fn private_options() -> OpenOptions {
    OpenOptions::new()
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
    }
}

/// Refuses a credentials file others may read or write.
fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {:o}): whoever reads it acts as you; run `chmod 600 {}` or `warden logout`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(refresh: &str) -> Entry {
        Entry {
            client_id: "warden-cli".into(),
            token_endpoint: "http://127.0.0.1:8080/oauth/token".into(),
            revocation_endpoint: "http://127.0.0.1:8080/oauth/revoke".into(),
            refresh_token: refresh.into(),
            subject: "user:alice@example.com".into(),
            access: None,
        }
    }

    #[test]
    fn saved_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("credentials");
        {
            let mut locked = Locked::open(&path).unwrap();
            assert!(locked.credentials.servers.is_empty());
            locked.credentials.servers.insert("http://a".into(), entry("wrt_1"));
            locked.save().unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let locked = Locked::open(&path).unwrap();
        assert_eq!(locked.credentials.servers["http://a"].refresh_token, "wrt_1");
        assert!(!format!("{:?}", locked.credentials).contains("wrt_1"), "never printed");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, "{\"servers\":{}}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Locked::open(&path).err().unwrap().to_string();
        assert!(e.contains("readable by others"), "{e}");
    }
}
