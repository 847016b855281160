//! Finding and running suite cases.

use std::path::{Path, PathBuf};
use std::time::Instant;

use strata::{Session, SessionOptions, Value};

use crate::compare::{Tolerance, compare_values};
use crate::error::{Error, Result};

/// The suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteKind {
    /// ONNX backend node cases (`onnx==1.23.2`), compared with the onnx runner's rule.
    OnnxNode,
    /// Real pretrained models, compared with onnxruntime's outputs.
    OnnxModels,
}

impl SuiteKind {
    pub fn name(self) -> &'static str {
        match self {
            SuiteKind::OnnxNode => "onnx-node",
            SuiteKind::OnnxModels => "onnx-models",
        }
    }
    pub fn parse(s: &str) -> Option<SuiteKind> {
        match s {
            "onnx-node" => Some(SuiteKind::OnnxNode),
            "onnx-models" => Some(SuiteKind::OnnxModels),
            _ => None,
        }
    }
    pub fn tolerance(self) -> Tolerance {
        match self {
            SuiteKind::OnnxNode => Tolerance::ONNX,
            SuiteKind::OnnxModels => Tolerance::MODELS,
        }
    }
}

/// One case: a model and its data sets.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub data_sets: Vec<PathBuf>,
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// Ran, but outputs differ.
    Fail(String),
    /// Could not load or run.
    Error(String),
}

impl Outcome {
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass)
    }
    pub fn message(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Fail(m) | Outcome::Error(m) => m,
        }
    }
}

/// A case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub outcome: Outcome,
    pub seconds: f64,
}

/// Where fetched test data lives: `$STRATA_DATA_DIR`, else `~/.cache/strata`.
pub fn data_root() -> PathBuf {
    if let Ok(d) = std::env::var("STRATA_DATA_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".cache").join("strata")
}

/// List a suite's cases. A missing or incomplete data set is an error.
pub fn load_suite(kind: SuiteKind, root: &Path) -> Result<Vec<Case>> {
    let dir = root.join(kind.name());
    if !dir.join("COMPLETE").exists() {
        return Err(Error::MissingData { suite: kind.name(), dir });
    }
    let mut cases = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(Error::read(&dir))? {
        let p = e.map_err(Error::read(&dir))?.path();
        if !p.is_dir() {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let mut data_sets: Vec<PathBuf> = std::fs::read_dir(&p)
            .map_err(Error::read(&p))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.is_dir() && d.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
            .collect();
        data_sets.sort();
        cases.push(Case { name, dir: p, data_sets });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    let marker = dir.join("COMPLETE");
    let expected: usize = std::fs::read_to_string(&marker).map_err(Error::read(&marker))?.trim().parse().unwrap_or(0);
    if cases.len() != expected {
        return Err(Error::CaseCount { suite: kind.name(), dir, found: cases.len(), expected });
    }
    Ok(cases)
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("{prefix}_{i}.pb"));
        if !p.exists() {
            break;
        }
        v.push(p);
    }
    v
}

fn run_case_inner(case: &Case, options: &SessionOptions, tol: Tolerance) -> Outcome {
    let model = match strata_onnx::import_path(&case.dir.join("model.onnx")) {
        Ok(m) => m,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let session = match Session::from_model(model, options.clone()) {
        Ok(s) => s,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    if case.data_sets.is_empty() {
        return Outcome::Error("case has no test data sets".into());
    }
    for ds in &case.data_sets {
        let ds_name = ds.file_name().unwrap().to_string_lossy().into_owned();
        let input_files = numbered(ds, "input");
        let output_files = numbered(ds, "output");
        let mut feeds: Vec<(String, Value)> = Vec::new();
        for (i, f) in input_files.iter().enumerate() {
            let Some(info) = session.inputs().get(i) else {
                return Outcome::Error(format!("{ds_name}: more input files than model inputs"));
            };
            let bytes = match std::fs::read(f) {
                Ok(b) => b,
                Err(e) => return Outcome::Error(format!("{}: {e}", f.display())),
            };
            match strata_onnx::decode_value(&bytes, &info.ty) {
                Ok(v) => feeds.push((info.name.clone(), v)),
                Err(e) => return Outcome::Error(format!("{ds_name}: input {i}: {e}")),
            }
        }
        let refs: Vec<(&str, Value)> = feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let outs = match session.run(&refs) {
            Ok(o) => o,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        if outs.len() != output_files.len() {
            return Outcome::Fail(format!("{ds_name}: {} outputs, expected {}", outs.len(), output_files.len()));
        }
        for (i, f) in output_files.iter().enumerate() {
            let info = &session.outputs()[i];
            let bytes = match std::fs::read(f) {
                Ok(b) => b,
                Err(e) => return Outcome::Error(format!("{}: {e}", f.display())),
            };
            let expected = match strata_onnx::decode_value(&bytes, &info.ty) {
                Ok(v) => v,
                Err(e) => return Outcome::Error(format!("{ds_name}: expected output {i}: {e}")),
            };
            if let Err(m) = compare_values(&outs[i].1, &expected, tol) {
                return Outcome::Fail(format!("{ds_name}: output '{}': {m}", info.name));
            }
        }
    }
    Outcome::Pass
}

/// Run one case; panics inside the engine are caught and reported as errors.
pub fn run_case(case: &Case, options: &SessionOptions, tol: Tolerance) -> CaseResult {
    let start = Instant::now();
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case_inner(case, options, tol))) {
        Ok(o) => o,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Outcome::Error(format!("PANIC: {msg}"))
        }
    };
    CaseResult { name: case.name.clone(), outcome, seconds: start.elapsed().as_secs_f64() }
}

/// The operator a case tests: the op of a single-node model; for composite
/// models (expanded functions) the op of the base case's name.
pub fn op_of_case(case: &Case) -> String {
    let ops = strata_onnx::import_path(&case.dir.join("model.onnx"))
        .map(|m| m.main_graph().nodes.iter().map(|n| n.op.name().to_string()).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut distinct = ops.clone();
    distinct.dedup();
    if distinct.len() == 1 {
        return distinct.remove(0);
    }
    "(composite)".into()
}
