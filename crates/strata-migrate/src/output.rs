//! Writing a [`Report`] to disk: its JSON form and its HTML page side by side.

use std::path::Path;

use crate::MigrateError;
use crate::report::Report;

impl Report {
    /// Write `report.json` and `report.html` into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> Result<(), MigrateError> {
        let io = |p: &Path, e: std::io::Error| MigrateError::Io(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let json = dir.join("report.json");
        std::fs::write(&json, self.to_json()?).map_err(|e| io(&json, e))?;
        let html = dir.join("report.html");
        std::fs::write(&html, self.to_html()).map_err(|e| io(&html, e))?;
        Ok(())
    }
}
