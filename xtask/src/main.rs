//! Project automation: `cargo xtask <command>`. The same commands run
//! locally and in CI.
//!
//! - `fetch-data`: make a Python venv outside the repo, install the pinned
//!   `onnx`, `onnxruntime` and `numpy`, write the ONNX node cases and build the
//!   real-model suite from pip wheels (nothing large is committed).
//! - `test`: fetch data if missing, check formatting and lints, run every
//!   test (the cpu backend's also on wasm simd128 under Node's WASI).
//! - `lint`: `cargo fmt --check` and `cargo clippy --all-targets -D warnings`.
//! - `bench`: the real models on Strata, onnxruntime and tract in one run
//!   (a worker process per runtime, interleaved rounds, 1 and 2 threads),
//!   reported as latency ratios, peak RSS and load times
//!   (`crates/strata-bench`, its own workspace).
//! - `bench-web`: the real models in headless Chromium, Strata (wasm cpu,
//!   WebGPU) against onnxruntime-web (wasm, webgpu) in interleaved rounds,
//!   reported as ratios with WebGPU dispatches per node (`web/bench/`).
//! - `web [VARIANT...]`: build the npm package in `web/` (wasm variants,
//!   sizes vs budget, written to `web/pkg/sizes.json`; default all variants).
//! - `examples`: build and run the Rust and C examples, compare their
//!   output, and run the C one under valgrind (part of `test`).
//! - `fuzz [SECONDS]`: fuzz the model loaders (default one minute; not in CI).
//! - `sandbox`: the engine built for wasm32-wasip1 under wasmtime (`sandbox.rs`; part of `test`).
//! - `serve [--port N]`: serve `web/` and the test data on 127.0.0.1 (`serve.rs`).

mod sandbox;
mod serve;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const PY_PACKAGES: &[&str] = &["onnx==1.23.2", "onnxruntime==1.32.0", "numpy==2.4.6", "ml_dtypes==0.5.4"];
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
        // Generated data depends on these versions (expected outputs come
        // from onnx and ml_dtypes): make it again after they change.
        for set in ["onnx-node", "onnx-models", "browser-fixtures"] {
            let _ = std::fs::remove_file(root.join(set).join("COMPLETE"));
        }
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
    if !root.join("browser-fixtures").join("COMPLETE").exists() {
        run(Command::new(&py)
            .arg(scripts.join("export_browser_fixtures.py"))
            .arg(root.join("onnx-models"))
            .arg(root.join("browser-fixtures")))?;
    }
    eprintln!("test data ready in {}", root.display());
    Ok(())
}

/// The optional host features `test` turns on in every host-side cargo
/// command (the `burn` backend on burn-flex, the wasmtime sandbox): one
/// feature set for clippy, the tests, the examples and the CLI checks, so
/// each dependency is compiled once per profile, not once per command.
const TEST_FEATURES: &str = "strata/burn,strata-burn/flex,strata-conformance/burn,strata-migrate/burn,\
strata-cli/burn,strata-cli/sandbox,strata-sandbox/wasmtime";

/// `cargo <sub> --workspace --features TEST_FEATURES`.
fn host_cargo(sub: &str) -> Command {
    let mut c = cargo();
    c.args([sub, "--workspace", "--features", TEST_FEATURES]);
    c
}

/// Build what the examples and the CLI checks run (the workspace's
/// libraries, binaries and tests, with the test features: after
/// `cargo test` this only links the binaries it did not need).
fn host_build() -> anyhow::Result<()> {
    run(host_cargo("build").args(["--lib", "--bins", "--tests"]))
}

fn lint() -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(host_cargo("clippy").args(["--all-targets", "--", "-D", "warnings"]))?;
    // The default build (no optional features) must compile too.
    run(cargo().args(["check", "--workspace"]))?;
    Ok(())
}

/// The IR, the reference and the CPU backend must build for the browser target.
fn check_wasm() -> anyhow::Result<()> {
    run(cargo().args([
        "check",
        "-p",
        "strata-ir",
        "-p",
        "strata-reference",
        "-p",
        "strata-cpu",
        "--target",
        "wasm32-unknown-unknown",
    ]))
}

/// The cpu backend's own tests built for wasm with simd128 (its explicit
/// simd128 GEMM and convolution kernels, bit for bit against the portable
/// order), run on V8 through Node's WASI (`tests/scripts/wasi-run.mjs`).
fn wasm_kernel_tests() -> anyhow::Result<()> {
    let root = repo_root();
    let runner = format!("node --no-warnings {}", root.join("tests").join("scripts").join("wasi-run.mjs").display());
    run(cargo()
        .args(["test", "--release", "-p", "strata-cpu", "--target", "wasm32-wasip1", "--target-dir"])
        .arg(root.join("target").join("wasi-test"))
        .env("CARGO_TARGET_WASM32_WASIP1_RUNNER", runner)
        .env("RUSTFLAGS", "-C target-feature=+simd128"))
}

/// Run one step of `test`, then say how long it took (CI's time budget is
/// spent step by step).
fn step(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    f()?;
    eprintln!("xtask: step '{name}' took {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn test() -> anyhow::Result<()> {
    step("fetch-data", fetch_data)?;
    step("lint", lint)?;
    step("wasm check", check_wasm)?;
    step("wasm kernel tests", wasm_kernel_tests)?;
    step("metal check", check_metal)?;
    step("burn-wgpu check", check_burn_wgpu)?;
    // The sandbox tests (in the workspace run) load the wasip1 guest.
    step("sandbox guest", sandbox::build_guest)?;
    step(
        "workspace tests (burn and sandbox included)",
        || run(host_cargo("test").env("STRATA_DATA_DIR", data_root())),
    )?;
    step("examples", examples)?;
    step("sandbox CLI check", sandbox::cli_matches_native)?;
    step("web package", || web(&[]))?;
    step("web tests", web_tests)?;
    Ok(())
}

/// burn's GPU backend (burn-wgpu) must type-check with the engine and the
/// facade's `burn-wgpu` backend. Only checked: a build of its dependency
/// tree would cost CI more than its budget allows, and the burn-flex run
/// already covers the engine's logic.
fn check_burn_wgpu() -> anyhow::Result<()> {
    run(cargo().args(["check", "-p", "strata", "-p", "strata-burn", "--features", "strata/burn-wgpu"]))
}

/// The GPU crate must type-check for Metal (it cannot run here).
fn check_metal() -> anyhow::Result<()> {
    run(cargo().args(["check", "-p", "strata-gpu", "--target", "aarch64-apple-darwin"]))
}

/// The npm package's tests: the README example in Node, then every real
/// model in headless Chromium (Debian's, driven by playwright-core).
fn web_tests() -> anyhow::Result<()> {
    let web = repo_root().join("web");
    run(Command::new("npm").current_dir(&web).arg("test").env("STRATA_DATA_DIR", data_root()))?;
    run(Command::new("node").current_dir(&web).arg("tests/browser.mjs").env("STRATA_DATA_DIR", data_root()))?;
    // The ONNX node suite inside Chromium, checked against the browser manifests.
    for backend in ["cpu", "webgpu", "webgpu-strict"] {
        run(Command::new("node")
            .current_dir(&web)
            .args(["tests/browser-suite.mjs", "--backend", backend])
            .env("STRATA_DATA_DIR", data_root()))?;
    }
    Ok(())
}

/// Build and run the examples: `examples/rust-classify` and the C program
/// `examples/c-classify/main.c` compiled with the system `cc` against the
/// static C library; both classify the PP-OCR text-direction model's
/// recorded input and must print the same line. The C program also runs
/// under valgrind, which must report no errors and no leaks.
fn examples() -> anyhow::Result<()> {
    fetch_data()?;
    let root = repo_root();
    let case = data_root().join("onnx-models").join("ppocr_mobile_v2_cls");
    let model = case.join("model.onnx");
    let out_dir = root.join("target").join("examples-xtask");
    std::fs::create_dir_all(&out_dir)?;
    // The recorded input (a TensorProto) as .npy, which both programs read.
    let npy = out_dir.join("ppocr_cls_input.npy");
    let py = data_root().join("venv").join("bin").join("python");
    run(Command::new(&py)
        .arg("-c")
        .arg("import sys, onnx, numpy; from onnx import numpy_helper as h; t = onnx.TensorProto(); t.ParseFromString(open(sys.argv[1], 'rb').read()); numpy.save(sys.argv[2], numpy.ascontiguousarray(h.to_array(t), dtype='<f4'))")
        .arg(case.join("test_data_set_0").join("input_0.pb"))
        .arg(&npy))?;
    // The README's C excerpt must be code of the example (which is compiled below).
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let c_src = std::fs::read_to_string(root.join("examples").join("c-classify").join("main.c"))?;
    let excerpt =
        readme.split("```c\n").nth(1).and_then(|r| r.split("```").next()).context("README has no C excerpt")?;
    for line in excerpt.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains("...")) {
        if !c_src.lines().any(|c| c.trim() == line) {
            bail!("README's C excerpt line {line:?} is not in examples/c-classify/main.c");
        }
    }
    host_build()?;
    let exe = out_dir.join("c-classify");
    run(Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-I"])
        .arg(root.join("crates").join("strata-capi").join("include"))
        .arg(root.join("examples").join("c-classify").join("main.c"))
        .arg(root.join("target").join("debug").join("libstrata_capi.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe))?;
    let output = |cmd: &mut Command| -> anyhow::Result<String> {
        eprintln!("$ {cmd:?}");
        let o = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
        if !o.status.success() {
            bail!("{cmd:?} failed ({}): {}", o.status, String::from_utf8_lossy(&o.stderr));
        }
        Ok(String::from_utf8(o.stdout)?)
    };
    let rust_out = output(Command::new(root.join("target").join("debug").join("rust-classify")).arg(&model).arg(&npy))?;
    let c_out = output(Command::new(&exe).arg(&model).arg(&npy))?;
    eprint!("rust-classify: {rust_out}c-classify:    {c_out}");
    if rust_out != c_out || !rust_out.starts_with("top class=") {
        bail!("the examples disagree:\n  rust: {rust_out:?}\n  c:    {c_out:?}");
    }
    run(Command::new("valgrind")
        .args(["--error-exitcode=1", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect,possible", "-q"])
        .arg(&exe)
        .arg(&model)
        .arg(&npy))?;
    eprintln!("examples agree; the C example is clean under valgrind");
    Ok(())
}

fn bench(extra: &[String]) -> anyhow::Result<()> {
    fetch_data()?;
    let manifest = repo_root().join("crates").join("strata-bench").join("Cargo.toml");
    // The burn backend is a feature of the benchmark too: on only when asked for.
    let backends = extra.iter().position(|a| a == "--backend").and_then(|i| extra.get(i + 1));
    let burn = backends.is_some_and(|b| b.split(',').any(|b| b.trim() == "burn"));
    run(cargo()
        .args(["run", "--release", "--manifest-path"])
        .arg(&manifest)
        .args(if burn { &["--features", "burn"][..] } else { &[] })
        .arg("--")
        .args(extra)
        .env("STRATA_DATA_DIR", data_root()))
}

/// `cargo xtask bench-web [ARGS]`: the browser benchmark (`web/bench/bench.mjs`):
/// builds the `cpu-full` and `webgpu-full` variants, installs the benchmark's
/// own npm dependencies (onnxruntime-web, never a dependency of the package),
/// serves `web/` and the data, and runs the real models in headless Chromium.
fn bench_web(extra: &[String]) -> anyhow::Result<()> {
    fetch_data()?;
    let root = repo_root();
    let web_dir = root.join("web");
    let kinds = extra.iter().position(|a| a == "--kinds").and_then(|i| extra.get(i + 1)).map(String::as_str);
    let variants: Vec<String> = match kinds {
        Some("wasm") => vec!["cpu-full".into()],
        Some("webgpu") => vec!["webgpu-full".into()],
        _ => vec!["cpu-full".into(), "webgpu-full".into()],
    };
    web(&variants)?;
    let bench_dir = web_dir.join("bench");
    if !bench_dir.join("node_modules").join("onnxruntime-web").exists() {
        run(Command::new("npm").current_dir(&bench_dir).args(["ci", "--no-audit", "--no-fund"]))?;
    }
    let roots =
        serve::Roots { web: web_dir.clone(), data: data_root(), expectations: root.join("tests").join("expectations") };
    let addr = serve::spawn(roots, 0)?;
    run(Command::new("node")
        .current_dir(&web_dir)
        .arg("bench/bench.mjs")
        .args(extra)
        .env("STRATA_BENCH_URL", format!("http://{addr}"))
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

/// Wasm variants of the npm package: (name, cargo features of strata-wasm).
/// `webgpu-full` adds the WebGPU backend (strata-gpu on wgpu's browser backend).
const WEB_VARIANTS: &[(&str, &str)] = &[("cpu-full", "onnx"), ("cpu-artifact", ""), ("webgpu-full", "onnx,webgpu")];
const WASM_BINDGEN_VERSION: &str = "0.2.130";

/// Size of a file after `gzip -9`.
fn gzip_len(path: &Path) -> anyhow::Result<usize> {
    let out = Command::new("gzip").arg("-9").arg("-c").arg(path).output().context("running gzip")?;
    if !out.status.success() {
        bail!("gzip failed on {}", path.display());
    }
    Ok(out.stdout.len())
}

/// Build the npm package in `web/`: every variant with simd128, bound with
/// wasm-bindgen (exact crate version), shrunk with wasm-opt from npm
/// `binaryen`, sizes checked against `web/size-budget.json` and written to
/// `web/pkg/sizes.json`. `only`: variant names to build (empty: all).
fn web(only: &[String]) -> anyhow::Result<()> {
    let root = repo_root();
    let web = root.join("web");
    if let Some(unknown) = only.iter().find(|v| !WEB_VARIANTS.iter().any(|(n, _)| n == v)) {
        let known: Vec<&str> = WEB_VARIANTS.iter().map(|(n, _)| *n).collect();
        bail!("unknown web variant '{unknown}' (known: {})", known.join(", "));
    }
    let have_bindgen = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(WASM_BINDGEN_VERSION))
        .unwrap_or(false);
    if !have_bindgen {
        run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", WASM_BINDGEN_VERSION]))?;
    }
    if !web.join("node_modules").join(".bin").join("wasm-opt").exists() {
        run(Command::new("npm").current_dir(&web).args(["ci", "--no-audit", "--no-fund"]))?;
    }
    let budget: std::collections::HashMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(web.join("size-budget.json"))?)?;
    let mut over = Vec::new();
    println!("{:<14} {:>12} {:>12} {:>12}", "variant", "raw bytes", "gzip bytes", "budget");
    // Sizes of every variant built so far (a partial build updates its own rows).
    let sizes_path = web.join("pkg").join("sizes.json");
    let mut sizes: serde_json::Map<String, serde_json::Value> =
        std::fs::read_to_string(&sizes_path).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
    for (name, features) in WEB_VARIANTS.iter().filter(|(n, _)| only.is_empty() || only.iter().any(|o| o == n)) {
        let target_dir = root.join("target").join("wasm");
        let mut build = cargo();
        build
            .args([
                "build",
                "-p",
                "strata-wasm",
                "--target",
                "wasm32-unknown-unknown",
                "--profile",
                "wasm",
                "--no-default-features",
            ])
            .arg("--target-dir")
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+simd128");
        if !features.is_empty() {
            build.args(["--features", features]);
        }
        run(&mut build)?;
        let wasm = target_dir.join("wasm32-unknown-unknown").join("wasm").join("strata_wasm.wasm");
        let out = web.join("pkg").join(name);
        let _ = std::fs::remove_dir_all(&out);
        run(Command::new("wasm-bindgen").args(["--target", "web", "--out-dir"]).arg(&out).arg(&wasm))?;
        let bg = out.join("strata_wasm_bg.wasm");
        run(Command::new(web.join("node_modules").join(".bin").join("wasm-opt"))
            .args(["-Oz", "--strip-debug", "--strip-producers"])
            // The features Rust's wasm32 output uses (not --all-features: that lets
            // wasm-opt emit proposals such as stringref that browsers reject).
            .args([
                "--enable-bulk-memory",
                "--enable-nontrapping-float-to-int",
                "--enable-sign-ext",
                "--enable-reference-types",
                "--enable-multivalue",
                "--enable-mutable-globals",
                "--enable-simd",
                "-o",
            ])
            .arg(&bg)
            .arg(&bg))?;
        let bytes = std::fs::read(&bg)?;
        let gz = gzip_len(&bg)?;
        let limit = budget.get(*name).and_then(|v| v.as_u64()).context(format!("no budget for {name}"))?;
        println!("{name:<14} {:>12} {gz:>12} {limit:>12}", bytes.len());
        sizes.insert(name.to_string(), serde_json::json!({ "raw": bytes.len(), "gzip": gz, "budget": limit }));
        if gz as u64 > limit {
            over.push(format!("{name}: {gz} bytes gzip > budget {limit}"));
        }
    }
    std::fs::write(&sizes_path, serde_json::to_string_pretty(&sizes)? + "\n")?;
    if !over.is_empty() {
        bail!("wasm size budget exceeded: {}", over.join("; "));
    }
    Ok(())
}

/// Rewrite the committed generated files from their Rust sources: the
/// WGSL parameter structs and op codes of `shaders/generated/` (strata-gpu's
/// `wgsl` tables) and the C header (`crates/strata-capi/include/strata.h`).
/// The tests that compare them (run by `cargo xtask test`) fail when stale.
fn codegen() -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["test", "-p", "strata-gpu", "--lib", "generated_wgsl_is_up_to_date"]).env("STRATA_UPDATE_WGSL", "1");
    run(&mut c)?;
    let mut c = cargo();
    c.args(["test", "-p", "strata-capi", "--test", "capi", "header_is_up_to_date"]).env("STRATA_UPDATE_HEADER", "1");
    run(&mut c)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fetch-data") => fetch_data(),
        Some("test") => test(),
        Some("lint") => lint(),
        Some("bench") => bench(&args[1..]),
        Some("examples") => examples(),
        Some("sandbox") => sandbox::sandbox(),
        Some("web") => web(&args[1..]),
        Some("bench-web") => bench_web(&args[1..]),
        Some("serve") => serve::main(&args[1..]),
        Some("codegen") => codegen(),
        Some("fuzz") => fuzz(args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(60)),
        _ => {
            eprintln!(
                "usage: cargo xtask <fetch-data | test | lint | codegen | examples | sandbox | web [VARIANT...] | serve [--port N] | fuzz [SECONDS] | bench [--backend cpu[,burn]] [--threads 1,2] [--rounds N] [--filter S] | bench-web [--kinds wasm,webgpu] [--rounds N] [--gpu-rounds N] [--filter S] [--json PATH]>"
            );
            std::process::exit(2);
        }
    }
}
