//! `strata conformance`: run a suite on a backend and check it against the
//! backend's expectation manifest.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use regex::Regex;
use strata::SessionOptions;
use strata_conformance::{
    Case, CaseResult, Expectations, Outcome, SuiteKind, data_root, load_suite, op_of_case, run_case,
};

#[derive(clap::Args)]
pub struct Args {
    /// onnx-node, onnx-models or all.
    #[arg(long, default_value = "onnx-node")]
    suite: String,
    #[arg(long, default_value = "reference")]
    backend: String,
    /// Every compute node must run on the backend (no fallback).
    #[arg(long)]
    strict: bool,
    /// Only cases whose name matches this regex.
    #[arg(long)]
    filter: Option<String>,
    /// Write per-case results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Rewrite the expectation manifest from this run.
    #[arg(long)]
    update_expectations: bool,
    /// Where the manifests live (default: tests/expectations of this repository).
    #[arg(long)]
    expectations_dir: Option<PathBuf>,
    /// Test data root (default: $STRATA_DATA_DIR or ~/.cache/strata).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Worker threads.
    #[arg(long)]
    jobs: Option<usize>,
    /// Print every failing case with its message.
    #[arg(long, short)]
    verbose: bool,
}

fn expectations_root(arg: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p.clone());
    }
    if let Ok(p) = std::env::var("STRATA_EXPECTATIONS_DIR") {
        return Ok(p.into());
    }
    let mut dir = std::env::current_dir()?;
    loop {
        let cand = dir.join("tests").join("expectations");
        if cand.is_dir() {
            return Ok(cand);
        }
        if !dir.pop() {
            bail!("cannot find tests/expectations; pass --expectations-dir");
        }
    }
}

fn run_suite(kind: SuiteKind, a: &Args) -> anyhow::Result<bool> {
    let root = a.data_dir.clone().unwrap_or_else(data_root);
    let mut cases = load_suite(kind, &root)?;
    if let Some(f) = &a.filter {
        let re = Regex::new(f).with_context(|| format!("bad --filter regex '{f}'"))?;
        cases.retain(|c| re.is_match(&c.name));
    }
    let backend_label = if a.strict { format!("{}-strict", a.backend) } else { a.backend.clone() };
    let exp_path = Expectations::path_for(&expectations_root(&a.expectations_dir)?, kind.name(), &backend_label);
    let mut exp = Expectations::load(&exp_path)?;
    let options = SessionOptions { backends: vec![a.backend.clone()], strict: a.strict, ..Default::default() };
    let tol = kind.tolerance();
    let total = cases.len();
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let results: Arc<Mutex<Vec<(CaseResult, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let cases = Arc::new(cases);
    let tty = std::io::stderr().is_terminal();
    eprintln!("suite {} on backend {backend_label}: {total} cases, {jobs} threads", kind.name());
    let mut handles = Vec::new();
    for _ in 0..jobs {
        let (next, done, results, cases, options) =
            (next.clone(), done.clone(), results.clone(), cases.clone(), options.clone());
        handles.push(std::thread::Builder::new().stack_size(64 << 20).spawn(move || {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases.len() {
                    break;
                }
                let c: &Case = &cases[i];
                let r = run_case(c, &options, tol);
                let op = op_of_case(c);
                results.lock().unwrap().push((r, op));
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                if tty {
                    let w = 40;
                    let filled = d * w / total.max(1);
                    eprint!("\r[{}{}] {d}/{total}", "#".repeat(filled), " ".repeat(w - filled));
                } else if d % 200 == 0 || d == total {
                    eprintln!("  {d}/{total}");
                }
            }
        })?);
    }
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
    }
    if tty {
        eprintln!();
    }
    let mut results = Arc::try_unwrap(results).unwrap().into_inner().unwrap();
    results.sort_by(|x, y| x.0.name.cmp(&y.0.name));
    // Base op for expanded cases.
    let base_op: BTreeMap<String, String> = results.iter().map(|(r, op)| (r.name.clone(), op.clone())).collect();
    let mut table: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut statuses = serde_json::Map::new();
    let (mut passed, mut unexpected_fail, mut unexpected_pass) = (0, Vec::new(), Vec::new());
    for (r, op) in &results {
        let op = if let Some(base) = r.name.find("_expanded").map(|i| &r.name[..i]) {
            format!("{} (expanded)", base_op.get(base).cloned().unwrap_or_else(|| op.clone()))
        } else {
            op.clone()
        };
        let e = table.entry(op).or_default();
        e.1 += 1;
        let listed = exp.failing.contains_key(&r.name);
        let status = match (&r.outcome, listed) {
            (Outcome::Pass, false) => "pass",
            (Outcome::Pass, true) => {
                unexpected_pass.push(r.name.clone());
                "pass"
            }
            (_, true) => "expected-fail",
            (Outcome::Fail(_), false) => {
                unexpected_fail.push((r.name.clone(), r.outcome.message().to_string()));
                "fail"
            }
            (Outcome::Error(_), false) => {
                unexpected_fail.push((r.name.clone(), r.outcome.message().to_string()));
                "error"
            }
        };
        if r.outcome.is_pass() {
            passed += 1;
            e.0 += 1;
        }
        if a.verbose && !r.outcome.is_pass() {
            println!("  {:<60} {}", r.name, r.outcome.message().lines().next().unwrap_or(""));
        }
        statuses.insert(r.name.clone(), serde_json::Value::String(status.into()));
    }
    println!("{:<40} {:>6} {:>6}", "op", "pass", "total");
    for (op, (p, t)) in &table {
        println!("{:<40} {:>6} {:>6}{}", op, p, t, if p < t { "  *" } else { "" });
    }
    println!("{}: {passed} passed, {} failed (of {total}) on {backend_label}", kind.name(), total - passed);
    if let Some(path) = &a.json {
        let doc = serde_json::json!({"suite": kind.name(), "backend": backend_label, "passed": passed, "total": total, "cases": statuses});
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    if a.update_expectations {
        let whole = a.filter.is_none();
        if whole {
            exp.failing.clear();
        }
        for (r, _) in &results {
            if r.outcome.is_pass() {
                exp.failing.remove(&r.name);
            } else {
                exp.failing.insert(r.name.clone(), r.outcome.message().lines().next().unwrap_or("").to_string());
            }
        }
        exp.save(&format!(
            "Cases of suite '{}' expected to fail on backend '{backend_label}', with the reason.\nRegenerate with: strata conformance --suite {} --backend {}{} --update-expectations",
            kind.name(),
            kind.name(),
            a.backend,
            if a.strict { " --strict" } else { "" }
        ))?;
        println!("updated {} ({} expected failures)", exp.path.display(), exp.failing.len());
        return Ok(true);
    }
    let mut ok = true;
    if !unexpected_fail.is_empty() {
        ok = false;
        println!("{} case(s) failed that the manifest {} expects to pass:", unexpected_fail.len(), exp_path.display());
        for (n, m) in unexpected_fail.iter().take(50) {
            println!("  {n}: {}", m.lines().next().unwrap_or(""));
        }
    }
    if !unexpected_pass.is_empty() {
        ok = false;
        println!("{} case(s) passed that the manifest lists as failing (update it):", unexpected_pass.len());
        for n in unexpected_pass.iter().take(50) {
            println!("  {n}");
        }
    }
    std::io::stdout().flush()?;
    Ok(ok)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let kinds = match a.suite.as_str() {
        "all" => vec![SuiteKind::OnnxNode, SuiteKind::OnnxModels],
        s => vec![SuiteKind::parse(s).with_context(|| format!("unknown suite '{s}' (onnx-node, onnx-models, all)"))?],
    };
    let mut ok = true;
    for k in kinds {
        ok &= run_suite(k, &a)?;
    }
    if !ok {
        bail!("conformance results do not match the expectation manifests");
    }
    Ok(())
}
