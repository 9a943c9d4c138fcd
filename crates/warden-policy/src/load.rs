//! The crate's only file reading: a policy directory into a
//! [`PolicyEngine`], and reloading an engine from where it came from.

use std::fs;
use std::path::{Path, PathBuf};

use crate::engine::{PolicyEngine, PolicySource, SCHEMA_FILE};
use crate::error::PolicyError;

/// Reads `DIR/schema.cedarschema` and every `*.cedar` file under `DIR`
/// (subdirectories included, hidden entries skipped, in path order) and
/// builds an engine from them, as [`PolicyEngine::from_sources`] does.
/// Problems name each file by its path (`DIR/…/NAME.cedar`).
///
/// The crate's own `policies/` directory loads to the built-in set.
pub fn load(dir: &Path) -> Result<PolicyEngine, PolicyError> {
    let schema_path = dir.join(SCHEMA_FILE);
    let schema = read(&schema_path)?;
    let mut paths = Vec::new();
    collect_policy_files(dir, MAX_DEPTH, &mut paths)?;
    if paths.is_empty() {
        return Err(PolicyError::NoPolicies(dir.to_owned()));
    }
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for path in &paths {
        files.push((path.display().to_string(), read(path)?));
    }
    PolicyEngine::build(
        &schema_path.display().to_string(),
        &schema,
        files,
        PolicySource::Dir(dir.to_owned()),
    )
}

impl PolicyEngine {
    /// A fresh engine from the same place as this one: the directory is
    /// read again; the built-in set and engines built from texts come back
    /// unchanged. On error the caller keeps `self` in force.
    pub fn reload(&self) -> Result<PolicyEngine, PolicyError> {
        match self.source() {
            PolicySource::Dir(dir) => load(dir),
            PolicySource::Builtin | PolicySource::Texts => Ok(self.clone()),
        }
    }
}

/// How deep `load` descends; a symbolic-link loop ends here with an error.
const MAX_DEPTH: usize = 16;

fn collect_policy_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    if depth == 0 {
        return Err(io_error(
            dir,
            std::io::Error::other(format!(
                "more than {MAX_DEPTH} directory levels (a symbolic-link loop?)"
            )),
        ));
    }
    let entries = fs::read_dir(dir).map_err(|source| io_error(dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links, as a configuration directory managed by
        // a deployment tool (a Kubernetes ConfigMap) is made of them.
        let meta = fs::metadata(&path).map_err(|source| io_error(&path, source))?;
        if meta.is_dir() {
            collect_policy_files(&path, depth - 1, out)?;
        } else if meta.is_file() && path.extension().is_some_and(|ext| ext == "cedar") {
            out.push(path);
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, PolicyError> {
    fs::read_to_string(path).map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, error: std::io::Error) -> PolicyError {
    PolicyError::Io {
        path: PathBuf::from(path),
        error,
    }
}
