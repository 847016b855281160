//! Project automation: `cargo xtask <command>`. The same commands run
//! locally and in CI.
//!
//! - `fetch-data`: make a Python venv outside the repo, install the pinned
//!   `onnx`, `onnxruntime` and `numpy`, write the ONNX node cases and build the
//!   real-model suite from pip wheels (nothing large is committed).
//! - `test`: fetch data if missing, check formatting and lints, run every test.
//! - `lint`: `cargo fmt --check` and `cargo clippy --all-targets -D warnings`.
//! - `bench`: the real models on Strata, onnxruntime and tract in one run,
//!   reported as latency ratios (`crates/strata-bench`, its own workspace).
//! - `fuzz [SECONDS]`: fuzz the model loaders (default one minute; not in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const PY_PACKAGES: &[&str] = &["onnx==1.23.2", "onnxruntime==1.32.0", "numpy==2.4.6"];
const WHEELS: &[&str] = &["magika==1.0.3", "silero-vad==6.2.3", "rapidocr-onnxruntime==1.4.4"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repo").to_path_buf()
}

fn data_root() -> PathBuf {
    if let Ok(d) = std::env::var("STRATA_DATA_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".cache").join("strata")
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("command failed ({status}): {cmd:?}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(repo_root());
    c
}

fn fetch_data() -> anyhow::Result<()> {
    let root = data_root();
    std::fs::create_dir_all(&root)?;
    let venv = root.join("venv");
    let py = venv.join("bin").join("python");
    let stamp = venv.join("strata-packages.txt");
    let want = PY_PACKAGES.join("\n");
    if !py.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        run(Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(PY_PACKAGES))?;
        std::fs::write(&stamp, &want)?;
    }
    let scripts = repo_root().join("tests").join("scripts");
    if !root.join("onnx-node").join("COMPLETE").exists() {
        run(Command::new(&py).arg(scripts.join("make_node_cases.py")).arg(root.join("onnx-node")))?;
    }
    if !root.join("onnx-models").join("COMPLETE").exists() {
        let wheels = root.join("wheels");
        std::fs::create_dir_all(&wheels)?;
        run(Command::new(&py)
            .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps", "-d"])
            .arg(&wheels)
            .args(WHEELS))?;
        run(Command::new(&py).arg(scripts.join("make_model_cases.py")).arg(&wheels).arg(root.join("onnx-models")))?;
    }
    eprintln!("test data ready in {}", root.display());
    Ok(())
}

fn lint() -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    Ok(())
}

/// The IR and the reference backend must build for the browser target.
fn check_wasm() -> anyhow::Result<()> {
    run(cargo().args(["check", "-p", "strata-ir", "-p", "strata-reference", "--target", "wasm32-unknown-unknown"]))
}

fn test() -> anyhow::Result<()> {
    fetch_data()?;
    lint()?;
    check_wasm()?;
    run(cargo().args(["test", "--workspace"]).env("STRATA_DATA_DIR", data_root()))?;
    Ok(())
}

fn bench(extra: &[String]) -> anyhow::Result<()> {
    fetch_data()?;
    let manifest = repo_root().join("crates").join("strata-bench").join("Cargo.toml");
    run(cargo()
        .args(["run", "--release", "--manifest-path"])
        .arg(&manifest)
        .arg("--")
        .args(extra)
        .env("STRATA_DATA_DIR", data_root()))
}

/// Fuzz the model loaders for `seconds` (needs `cargo install cargo-fuzz`;
/// uses `RUSTC_BOOTSTRAP` so the stable toolchain can build libFuzzer targets).
fn fuzz(seconds: u64) -> anyhow::Result<()> {
    let have = Command::new("cargo").args(["fuzz", "--version"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !have {
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    run(Command::new("cargo").current_dir(repo_root().join("crates").join("strata")).env("RUSTC_BOOTSTRAP", "1").args(
        [
            "fuzz",
            "run",
            "--sanitizer",
            "none",
            "load_model",
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=4096",
        ],
    ))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fetch-data") => fetch_data(),
        Some("test") => test(),
        Some("lint") => lint(),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz(args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(60)),
        _ => {
            eprintln!(
                "usage: cargo xtask <fetch-data | test | lint | fuzz [SECONDS] | bench [--backend NAME] [--iterations N] [--filter S]>"
            );
            std::process::exit(2);
        }
    }
}
