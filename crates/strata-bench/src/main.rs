//! Benchmark: run each real model of the `onnx-models` suite on Strata, on
//! tract (the `tract-onnx` crate, used only here) and on onnxruntime (the pip
//! package, timed by `tests/scripts/bench_ort.py`) in one run, with the same
//! inputs, and print latencies and ratios.
//!
//! Usage: strata-bench [--backend NAME] [--threads N] [--iterations N] [--filter SUBSTRING]
//!
//! `--threads` sets Strata's `cpu` backend kernel threads (0: one per core,
//! as onnxruntime and tract use by default).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use strata::{Session, SessionOptions, Value};
use strata_conformance::{SuiteKind, data_root, load_suite};
use tract_onnx::prelude::*;

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..).map(|i| dir.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.exists()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut() -> anyhow::Result<()>>(iterations: usize, mut f: F) -> anyhow::Result<(f64, f64)> {
    f()?; // warm-up
    let mut t = Vec::new();
    for _ in 0..iterations {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    let min = t.iter().cloned().fold(f64::INFINITY, f64::min);
    Ok((min, median(t)))
}

fn to_tract(v: &Value) -> anyhow::Result<TValue> {
    let Value::Tensor(t) = v else { bail!("only tensor inputs are benchmarked") };
    let shape = t.shape().to_vec();
    let tensor: Tensor = match t.dtype() {
        strata::DType::F32 => {
            let v: Vec<f32> = t.to_f64_vec().into_iter().map(|x| x as f32).collect();
            tract_ndarray::ArrayD::from_shape_vec(shape, v)?.into()
        }
        strata::DType::I64 => {
            let v: Vec<i64> = t.to_i64_vec();
            tract_ndarray::ArrayD::from_shape_vec(shape, v)?.into()
        }
        strata::DType::I32 => {
            let v: Vec<i32> = t.to_i64_vec().into_iter().map(|x| x as i32).collect();
            tract_ndarray::ArrayD::from_shape_vec(shape, v)?.into()
        }
        d => bail!("dtype {d} not handled by the benchmark"),
    };
    Ok(tensor.into_tvalue())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1).cloned());
    let backend = get("--backend").unwrap_or_else(|| "reference".into());
    let threads: usize = get("--threads").map(|s| s.parse()).transpose()?.unwrap_or(0);
    let iterations: usize = get("--iterations").map(|s| s.parse()).transpose()?.unwrap_or(5);
    let filter = get("--filter");
    let root = data_root();
    let cases = load_suite(SuiteKind::OnnxModels, &root)?;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // onnxruntime timings, from the same input files.
    let py = root.join("venv").join("bin").join("python");
    let ort_out = Command::new(&py)
        .arg(repo.join("tests/scripts/bench_ort.py"))
        .arg(root.join("onnx-models"))
        .arg(iterations.to_string())
        .output()
        .context("running tests/scripts/bench_ort.py (run `cargo xtask fetch-data` first)")?;
    if !ort_out.status.success() {
        bail!("bench_ort.py failed: {}", String::from_utf8_lossy(&ort_out.stderr));
    }
    let ort: serde_json::Value = serde_json::from_slice(&ort_out.stdout)?;
    println!(
        "{:<24} {:>14} {:>14} {:>14} {:>12} {:>12}",
        "model", format!("strata-{backend}"), "onnxruntime", "tract", "vs ort", "vs tract"
    );
    for case in &cases {
        if filter.as_ref().is_some_and(|f| !case.name.contains(f.as_str())) {
            continue;
        }
        let ds = &case.data_sets[0];
        let model_path = case.dir.join("model.onnx");
        let session = Session::from_path(&model_path, SessionOptions { backends: vec![backend.clone()], threads, ..Default::default() })?;
        let mut feeds = Vec::new();
        for (k, f) in numbered(ds, "input").iter().enumerate() {
            let info = &session.inputs()[k];
            feeds.push((info.name.clone(), strata_onnx::decode_value(&std::fs::read(f)?, &info.ty)?));
        }
        let refs: Vec<(&str, Value)> = feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let strata_ms = time(iterations, || {
            session.run(&refs)?;
            Ok(())
        });
        let tract_ms = (|| -> anyhow::Result<(f64, f64)> {
            let mut m = tract_onnx::onnx().model_for_path(&model_path)?;
            for (k, (_, v)) in feeds.iter().enumerate() {
                // Type and shape only: a value fact would let tract fold the whole graph away.
                let t = to_tract(v)?.into_tensor();
                m = m.with_input_fact(k, InferenceFact::dt_shape(t.datum_type(), t.shape()))?;
            }
            let plan = m.into_optimized()?.into_runnable()?;
            let inputs: TVec<TValue> = feeds.iter().map(|(_, v)| to_tract(v)).collect::<anyhow::Result<_>>()?;
            time(iterations, || {
                plan.run(inputs.clone())?;
                Ok(())
            })
        })();
        let ort_ms = ort[&case.name]["median_ms"].as_f64();
        let fmt = |r: &anyhow::Result<(f64, f64)>| match r {
            Ok((_, med)) => format!("{med:.2} ms"),
            Err(e) => format!("err: {}", e.to_string().chars().take(20).collect::<String>()),
        };
        let ratio = |other: Option<f64>| match (&strata_ms, other) {
            (Ok((_, s)), Some(o)) if o > 0.0 => format!("{:.2}x", s / o),
            _ => "-".into(),
        };
        println!(
            "{:<24} {:>14} {:>14} {:>14} {:>12} {:>12}",
            case.name,
            fmt(&strata_ms),
            ort_ms.map(|v| format!("{v:.2} ms")).unwrap_or_else(|| "-".into()),
            fmt(&tract_ms),
            ratio(ort_ms),
            ratio(tract_ms.as_ref().ok().map(|t| t.1)),
        );
    }
    println!("(median latency over {iterations} runs after one warm-up; ratio = strata / anchor, lower is better)");
    println!("(strata --threads {threads}, 0 = one per core; {} cores here)", std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(())
}
