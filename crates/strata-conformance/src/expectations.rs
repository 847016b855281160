//! Per-backend expectation manifests.
//!
//! A manifest is a text file listing the cases expected to fail on one
//! backend, one per line: `case_name  # reason`. Blank lines and lines
//! starting with `#` are comments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The expected failures of one suite on one backend.
#[derive(Debug, Default, Clone)]
pub struct Expectations {
    pub path: PathBuf,
    pub failing: BTreeMap<String, String>,
}

impl Expectations {
    /// The manifest path for a suite and backend under `root` (the repo's `tests/expectations`).
    pub fn path_for(root: &Path, suite: &str, backend: &str) -> PathBuf {
        root.join(suite).join(format!("{backend}.txt"))
    }

    /// Load a manifest; a missing file means "nothing is expected to fail".
    pub fn load(path: &Path) -> Result<Expectations> {
        let mut failing = BTreeMap::new();
        if path.exists() {
            for line in std::fs::read_to_string(path).map_err(Error::read(path))?.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, reason) = match line.split_once('#') {
                    Some((n, r)) => (n.trim(), r.trim()),
                    None => (line, ""),
                };
                failing.insert(name.to_string(), reason.to_string());
            }
        }
        Ok(Expectations { path: path.to_path_buf(), failing })
    }

    /// Write the manifest.
    pub fn save(&self, header: &str) -> Result<()> {
        if let Some(d) = self.path.parent() {
            std::fs::create_dir_all(d).map_err(Error::write(d))?;
        }
        let mut s = String::new();
        for l in header.lines() {
            s.push_str("# ");
            s.push_str(l);
            s.push('\n');
        }
        for (name, reason) in &self.failing {
            let reason: String = reason.chars().filter(|c| *c != '\n' && *c != '\r').take(200).collect();
            s.push_str(&format!("{name}  # {reason}\n"));
        }
        std::fs::write(&self.path, s).map_err(Error::write(&self.path))?;
        Ok(())
    }
}
