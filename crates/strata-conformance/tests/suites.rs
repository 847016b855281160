//! Runs the conformance suites on every backend (reference, cpu, gpu; burn
//! with the `burn` feature) and checks every case against the backend's
//! expectation manifest: a listed-passing case that fails, or a
//! listed-failing case that passes, fails the test. Missing test data fails
//! loudly (run `cargo xtask fetch-data`).

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

// The burn backend (burn-flex on the CPU; `--features burn`), with
// reference fallback and strict.

#[cfg(feature = "burn")]
#[test]
fn onnx_node_suite_on_burn_with_fallback_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxNode, "burn", false)
}

#[cfg(feature = "burn")]
#[test]
fn onnx_node_suite_on_burn_strict_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxNode, "burn", true)
}

#[cfg(feature = "burn")]
#[test]
fn onnx_models_suite_on_burn_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxModels, "burn", false)
}

#[cfg(feature = "burn")]
#[test]
fn onnx_models_suite_on_burn_strict_matches_manifest() -> anyhow::Result<()> {
    run_suite_with(SuiteKind::OnnxModels, "burn", true)
}

/// The names of the dependency tables of a manifest that a library's users
/// link (`[dependencies]` and `[target.'cfg(..)'.dependencies]`); dev- and
/// build-dependencies are not among them.
fn is_linked_dependency_table(header: &str) -> bool {
    header == "dependencies" || (header.starts_with("target.") && header.ends_with(".dependencies"))
}

/// The crates under `crates/` whose manifest names `anyhow` as a linked
/// dependency, read line by line: a `[dependencies]` key `anyhow` (plain,
/// dotted or inline table) or a `[dependencies.anyhow]` table.
fn library_crates_linking_anyhow() -> Vec<String> {
    let crates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offenders = Vec::new();
    let mut libraries = 0;
    for entry in std::fs::read_dir(&crates).expect("reading crates/") {
        let dir = entry.expect("reading crates/").path();
        // A library crate has a `src/lib.rs`; binary-only crates (the CLI,
        // the benchmark) are edges, as are xtask and the examples, which
        // live outside `crates/`.
        if !dir.join("src/lib.rs").exists() {
            continue;
        }
        libraries += 1;
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("reading a crate manifest");
        let mut table = String::new();
        for line in manifest.lines().map(str::trim) {
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                table = header.trim().to_string();
                if table.strip_suffix(".anyhow").is_some_and(is_linked_dependency_table) {
                    offenders.push(dir.file_name().unwrap().to_string_lossy().into_owned());
                }
                continue;
            }
            let key = line.split(['=', '.', ' ']).next().unwrap_or("");
            if is_linked_dependency_table(&table) && key.trim_matches('"') == "anyhow" {
                offenders.push(dir.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    assert!(libraries >= 10, "found only {libraries} library crates under {}", crates.display());
    offenders.sort();
    offenders.dedup();
    offenders
}

#[test]
fn library_crates_do_not_link_anyhow() {
    let offenders = library_crates_linking_anyhow();
    assert!(
        offenders.is_empty(),
        "library crates use typed errors; `anyhow` belongs in binaries, xtask and tests (dev-dependencies) only, \
         but these name it under [dependencies]: {offenders:?}"
    );
}
