//! `cargo xtask sandbox` (part of `test`): the engine built for
//! `wasm32-wasip1` and run under wasmtime. Adds the target if missing,
//! builds the guest (`strata-wasi`) in release, runs the sandbox tests (real models and the node suite
//! bit-identical to native, hostile models stopped by their limits), and
//! checks that `strata run --sandbox` writes the same bytes as a native run.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::{cargo, data_root, fetch_data, host_build, host_cargo, repo_root, run};

const TARGET: &str = "wasm32-wasip1";

fn ensure_target() -> anyhow::Result<()> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output().context("running rustup")?;
    if !String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) {
        run(Command::new("rustup").args(["target", "add", TARGET]))?;
    }
    Ok(())
}

/// Build the guest (`strata-wasi`, release, wasm32-wasip1) the sandbox
/// tests and `strata run --sandbox` load.
pub fn build_guest() -> anyhow::Result<()> {
    ensure_target()?;
    let start = Instant::now();
    run(cargo().args(["build", "-p", "strata-wasi", "--release", "--target", TARGET]))?;
    eprintln!("sandbox: guest built in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// `cargo xtask sandbox`: the guest, the sandbox tests and the CLI check
/// alone (`test` runs the same pieces, its sandbox tests inside the
/// workspace run).
pub fn sandbox() -> anyhow::Result<()> {
    fetch_data()?;
    let start = Instant::now();
    build_guest()?;
    let t = Instant::now();
    run(host_cargo("test").args(["--test", "sandbox", "--", "--nocapture"]).env("STRATA_DATA_DIR", data_root()))?;
    eprintln!("sandbox: tests in {:.1} s", t.elapsed().as_secs_f64());
    cli_matches_native()?;
    eprintln!("sandbox: everything in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// `strata run --sandbox` on a real model with its recorded input writes
/// the same `.npy` bytes as `strata run` natively.
pub fn cli_matches_native() -> anyhow::Result<()> {
    let case = data_root().join("onnx-models").join("ppocr_mobile_v2_cls");
    let dir = repo_root().join("target").join("sandbox-xtask");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let npy = dir.join("input.npy");
    run(Command::new(data_root().join("venv").join("bin").join("python"))
        .arg("-c")
        .arg("import sys, onnx, numpy; from onnx import numpy_helper as h; t = onnx.TensorProto(); t.ParseFromString(open(sys.argv[1], 'rb').read()); numpy.save(sys.argv[2], numpy.ascontiguousarray(h.to_array(t), dtype='<f4'))")
        .arg(case.join("test_data_set_0").join("input_0.pb"))
        .arg(&npy))?;
    let model = case.join("model.onnx");
    let input = format!("x={}", npy.display());
    host_build()?;
    let strata = repo_root().join("target").join("debug").join("strata");
    for (name, sandboxed) in [("native", false), ("sandbox", true)] {
        let mut c = Command::new(&strata);
        c.arg("run")
            .arg(&model)
            .args(["--backend", "reference", "--input", &input, "--output-dir"])
            .arg(dir.join(name));
        if sandboxed {
            c.args(["--sandbox", "--memory-limit-mib", "512", "--deadline", "60"]);
        }
        run(&mut c)?;
    }
    let mut compared = 0;
    for e in std::fs::read_dir(dir.join("native"))? {
        let e = e?;
        let native = std::fs::read(e.path())?;
        let sandboxed = std::fs::read(dir.join("sandbox").join(e.file_name()))
            .with_context(|| format!("the sandboxed run wrote no {:?}", e.file_name()))?;
        if native != sandboxed {
            bail!("strata run --sandbox wrote different bytes for {:?}", e.file_name());
        }
        compared += 1;
    }
    if compared == 0 {
        bail!("strata run wrote no outputs");
    }
    eprintln!("strata run --sandbox: {compared} output(s) byte-identical to the native run");
    Ok(())
}
