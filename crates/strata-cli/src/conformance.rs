//! `strata conformance`: run a suite on a backend and check it against the
//! backend's expectation manifest.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use regex::Regex;
use strata::SessionOptions;
use strata_conformance::{Expectations, SuiteKind, check, data_root, load_suite, run_cases};

#[derive(clap::Args)]
pub struct Args {
    /// onnx-node, onnx-models or all.
    #[arg(long, default_value = "onnx-node")]
    suite: String,
    #[arg(long, default_value = strata::DEFAULT_BACKEND)]
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
    let tty = std::io::stderr().is_terminal();
    eprintln!("suite {} on backend {backend_label}: {total} cases, {jobs} threads", kind.name());
    let progress = move |d: usize, total: usize| {
        if tty {
            let w = 40;
            let filled = d * w / total.max(1);
            eprint!("\r[{}{}] {d}/{total}", "#".repeat(filled), " ".repeat(w - filled));
        } else if d.is_multiple_of(200) || d == total {
            eprintln!("  {d}/{total}");
        }
    };
    let results = run_cases(cases, &options, tol, jobs, &progress);
    if tty {
        eprintln!();
    }
    let base_op: BTreeMap<String, String> = results.iter().map(|r| (r.result.name.clone(), r.op.clone())).collect();
    let checked = check(&results, &exp);
    let mut table: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in &results {
        let op = if let Some(base) = r.result.name.find("_expanded").map(|i| &r.result.name[..i]) {
            format!("{} (expanded)", base_op.get(base).cloned().unwrap_or_else(|| r.op.clone()))
        } else {
            r.op.clone()
        };
        let e = table.entry(op).or_default();
        e.1 += 1;
        if r.result.outcome.is_pass() {
            e.0 += 1;
        } else if a.verbose {
            println!("  {:<60} {}", r.result.name, r.result.outcome.message().lines().next().unwrap_or(""));
        }
    }
    let passed = checked.passed;
    let statuses: serde_json::Map<String, serde_json::Value> =
        checked.statuses.iter().map(|(n, s)| (n.clone(), serde_json::Value::String((*s).into()))).collect();
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
        // Keep hand-written reasons of cases that still fail; new failures get their error message.
        let previous = exp.failing.clone();
        if a.filter.is_none() {
            exp.failing.clear();
        }
        for r in &results {
            let r = &r.result;
            if r.outcome.is_pass() {
                exp.failing.remove(&r.name);
            } else {
                // Engine messages always contain ": "; a reason without one was
                // written by hand and is kept.
                let reason = previous
                    .get(&r.name)
                    .filter(|p| !p.is_empty() && !p.contains(": "))
                    .cloned()
                    .unwrap_or_else(|| r.outcome.message().lines().next().unwrap_or("").to_string());
                exp.failing.insert(r.name.clone(), reason);
            }
        }
        exp.save(&format!(
            "Cases of suite '{}' expected to fail on backend '{backend_label}', with the reason.\nReasons written by hand (without ': ') are kept when the list is regenerated.\nRegenerate with: strata conformance --suite {} --backend {}{} --update-expectations",
            kind.name(),
            kind.name(),
            a.backend,
            if a.strict { " --strict" } else { "" }
        ))?;
        println!("updated {} ({} expected failures)", exp.path.display(), exp.failing.len());
        return Ok(true);
    }
    let mut ok = true;
    if !checked.unexpected_failures.is_empty() {
        ok = false;
        println!(
            "{} case(s) failed that the manifest {} expects to pass:",
            checked.unexpected_failures.len(),
            exp_path.display()
        );
        for (n, m) in checked.unexpected_failures.iter().take(50) {
            println!("  {n}: {}", m.lines().next().unwrap_or(""));
        }
    }
    if !checked.unexpected_passes.is_empty() {
        ok = false;
        println!("{} case(s) passed that the manifest lists as failing (update it):", checked.unexpected_passes.len());
        for n in checked.unexpected_passes.iter().take(50) {
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
