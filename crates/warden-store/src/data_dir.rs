//! The data directory and the master key file in it.
//!
//! The directory is created with mode 0700 and `master.key` with 0600 on
//! first run. A key file that group or others can read is refused: the
//! master key decrypts every signing key, so a readable copy is a leaked
//! one.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use warden_keys::MasterKey;

use crate::error::StoreError;

/// Name of the master key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Name of the embedded database file inside the data directory.
pub const DATABASE_FILE: &str = "warden.db";

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// The `WARDEN_MASTER_KEY` environment variable.
    Environment,
    /// An existing key file.
    File(PathBuf),
    /// A key file created on this run.
    Created(PathBuf),
}

/// A data directory that exists and is private to its owner.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// Opens `path`, creating it with mode 0700 when absent.
    pub fn open_or_create(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        if !path.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(StoreError::io(&path))?;
        }
        let meta = fs::metadata(&path).map_err(StoreError::io(&path))?;
        if !meta.is_dir() {
            return Err(StoreError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "data dir is not a directory"),
            });
        }
        Ok(DataDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The default database URL: an SQLite file in this directory.
    pub fn default_database_url(&self) -> String {
        format!("sqlite://{}", self.path.join(DATABASE_FILE).display())
    }

    /// Resolves the master key: from `from_env` (the value of
    /// `WARDEN_MASTER_KEY`) when given, else from `master.key`, which is
    /// created (0600) when absent if `create` is set. Only the command that
    /// makes the first signing key should create it: a stray key made by
    /// another command would bind a fresh shared database to one machine.
    pub fn master_key(&self, from_env: Option<&str>, create: bool) -> Result<(MasterKey, MasterKeySource), StoreError> {
        if let Some(text) = from_env {
            return Ok((MasterKey::from_base64(text)?, MasterKeySource::Environment));
        }
        let file = self.path.join(MASTER_KEY_FILE);
        if file.exists() {
            return Ok((read_key_file(&file)?, MasterKeySource::File(file)));
        }
        if !create {
            return Err(StoreError::NoMasterKey(file));
        }
        let key = MasterKey::generate()?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .map_err(StoreError::io(&file))?;
        out.write_all(key.to_base64().as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.sync_all())
            .map_err(StoreError::io(&file))?;
        Ok((key, MasterKeySource::Created(file)))
    }
}

/// Reads a key file after checking that only its owner can read it.
pub fn read_key_file(path: &Path) -> Result<MasterKey, StoreError> {
    check_private(path)?;
    let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(StoreError::io(path))?);
    Ok(MasterKey::from_base64(&text)?)
}

/// Refuses a file whose mode lets group or others read, write or run it.
pub fn check_private(path: &Path) -> Result<(), StoreError> {
    let mode = fs::metadata(path).map_err(StoreError::io(path))?.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StoreError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Creates `path` empty with mode 0600 if it does not exist, so that a
/// database file is never world-readable, not even for a moment.
pub fn create_private_file(path: &Path) -> Result<(), StoreError> {
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn creates_private_dir_and_key_then_reuses_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open_or_create(tmp.path().join("data")).unwrap();
        assert_eq!(fs::metadata(dir.path()).unwrap().mode() & 0o777, 0o700);
        let (first, source) = dir.master_key(None, true).unwrap();
        assert!(matches!(source, MasterKeySource::Created(_)));
        let file = dir.path().join(MASTER_KEY_FILE);
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        let (again, source) = dir.master_key(None, true).unwrap();
        assert!(matches!(source, MasterKeySource::File(_)));
        assert_eq!(first.fingerprint(), again.fingerprint());
    }

    #[test]
    fn refuses_a_readable_key_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open_or_create(tmp.path()).unwrap();
        dir.master_key(None, true).unwrap();
        let file = dir.path().join(MASTER_KEY_FILE);
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
            let err = dir.master_key(None, true).unwrap_err();
            assert!(matches!(err, StoreError::InsecurePermissions { .. }), "{mode:o}");
            assert!(err.to_string().contains("readable by group or others"), "{err}");
        }
        fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(dir.master_key(None, true).is_ok());
    }

    #[test]
    fn environment_key_wins_and_is_validated() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open_or_create(tmp.path()).unwrap();
        let key = MasterKey::generate().unwrap();
        let (got, source) = dir.master_key(Some(&key.to_base64()), true).unwrap();
        assert_eq!(source, MasterKeySource::Environment);
        assert_eq!(got.fingerprint(), key.fingerprint());
        assert!(!dir.path().join(MASTER_KEY_FILE).exists());
        assert!(dir.master_key(Some("too-short"), true).is_err());
        assert!(matches!(dir.master_key(None, false), Err(StoreError::NoMasterKey(_))));
    }
}
