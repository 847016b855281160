//! Runs the conformance suites on every backend (reference, cpu, gpu) and checks every
//! case against the backend's expectation manifest: a listed-passing case
//! that fails, or a listed-failing case that passes, fails the test. Missing
//! test data fails loudly (run `cargo xtask fetch-data`).

use std::path::PathBuf;

use strata::SessionOptions;
use strata_conformance::{Expectations, SuiteKind, check, data_root, load_suite, run_cases};

fn expectations_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/expectations")
}

fn run_suite(kind: SuiteKind, backend: &str) -> anyhow::Result<()> {
    run_suite_with(kind, backend, false)
}

fn run_suite_with(kind: SuiteKind, backend: &str, strict: bool) -> anyhow::Result<()> {
    let cases = load_suite(kind, &data_root())?;
    let label = if strict { format!("{backend}-strict") } else { backend.to_string() };
    let exp = Expectations::load(&Expectations::path_for(&expectations_dir(), kind.name(), &label))?;
    let options = SessionOptions { backends: vec![backend.into()], strict, ..Default::default() };
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let results = run_cases(cases, &options, kind.tolerance(), jobs, &|_, _| {});
    let c = check(&results, &exp);
    println!("{} on {label}: {} passed, {} failed (of {})", kind.name(), c.passed, c.total - c.passed, c.total);
    for (n, m) in &c.unexpected_failures {
        println!("UNEXPECTED FAILURE {n}: {}", m.lines().next().unwrap_or(""));
    }
    for n in &c.unexpected_passes {
        println!("UNEXPECTED PASS {n} (remove it from the manifest)");
    }
    anyhow::ensure!(
        c.ok(),
        "{}: {} unexpected failures, {} unexpected passes; regenerate with `strata conformance --suite {} --backend {backend}{} --update-expectations` if intended",
        kind.name(),
        c.unexpected_failures.len(),
        c.unexpected_passes.len(),
        kind.name(),
        if strict { " --strict" } else { "" }
    );
    Ok(())
}

#[test]
fn onnx_node_suite_on_reference_matches_manifest() -> anyhow::Result<()> {
    run_suite(SuiteKind::OnnxNode, "reference")
}

#[test]
fn onnx_models_suite_on_reference_matches_manifest() -> anyhow::Result<()> {
    run_suite(SuiteKind::OnnxModels, "reference")
}

// The GPU backend runs on whatever adapter wgpu finds (in CI: Mesa's lavapipe
// software Vulkan device). Without an adapter these fail: GPU tests are never
// skipped silently.

#[test]
fn onnx_node_suite_on_gpu_with_fallback_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxNode, "gpu", false)
}

#[test]
fn onnx_node_suite_on_gpu_strict_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxNode, "gpu", true)
}

#[test]
fn onnx_models_suite_on_gpu_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxModels, "gpu", false)
}

#[test]
fn onnx_models_suite_on_gpu_strict_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxModels, "gpu", true)
}

// The optimised CPU backend, with reference fallback and strict.

#[test]
fn onnx_node_suite_on_cpu_with_fallback_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxNode, "cpu", false)
}

#[test]
fn onnx_node_suite_on_cpu_strict_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxNode, "cpu", true)
}

#[test]
fn onnx_models_suite_on_cpu_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxModels, "cpu", false)
}

#[test]
fn onnx_models_suite_on_cpu_strict_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxModels, "cpu", true)
}
