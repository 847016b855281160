//! The `strata` command-line tool: run, inspect and compile models, run the
//! conformance suites and benchmarks. Backend names are stable:
//! `reference`, `cpu`, `gpu`.

mod conformance;
mod migrate;
mod sandbox;

use strata::npy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use strata::{DType, Dim, Session, SessionOptions, Tensor, Value, ValueType};

#[derive(Parser)]
#[command(name = "strata", version, about = "Strata: run ONNX models everywhere, provably right")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a model (.onnx or .strata); without MODEL, runs the built-in example MLP.
    Run {
        model: Option<PathBuf>,
        /// Backend to prefer (default: cpu; reference under --sandbox).
        #[arg(long)]
        backend: Option<String>,
        /// Fail instead of falling back to another backend.
        #[arg(long)]
        strict: bool,
        /// Threads for the cpu backend's kernels (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// NAME=FILE.npy
        #[arg(long = "input", value_name = "NAME=FILE.npy")]
        inputs: Vec<String>,
        /// Symbolic dimension value, NAME=VALUE
        #[arg(long = "dim", value_name = "NAME=VALUE")]
        dims: Vec<String>,
        #[arg(long)]
        output_dir: Option<PathBuf>,
        /// Print a JSON summary.
        #[arg(long)]
        json: bool,
        /// Run the model as written: no fusion of nodes by the backend.
        #[arg(long)]
        no_optimize: bool,
        #[command(flatten)]
        sandbox: sandbox::Args,
    },
    /// Show inputs, outputs, opsets, op histogram and placement per backend.
    Inspect {
        model: PathBuf,
        #[arg(long)]
        backend: Option<String>,
        /// Run the model as written: no fusion of nodes by the backend.
        #[arg(long)]
        no_optimize: bool,
    },
    /// Compile a model to a .strata artifact.
    Compile {
        model: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run a conformance suite.
    Conformance(conformance::Args),
    /// Bring up a backend: per-operator and staged comparison with the reference.
    Migrate(migrate::Args),
    /// Benchmark a model: warm-up, then min/median latency and throughput.
    Bench {
        model: Option<PathBuf>,
        #[arg(long, default_value = strata::DEFAULT_BACKEND)]
        backend: String,
        /// Threads for the cpu backend's kernels (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long = "input", value_name = "NAME=FILE.npy")]
        inputs: Vec<String>,
        #[arg(long = "dim", value_name = "NAME=VALUE")]
        dims: Vec<String>,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        #[arg(long)]
        json: bool,
        /// Print where the time goes: per op kind and the slowest nodes.
        #[arg(long)]
        profile: bool,
        /// With --profile: how many of the slowest nodes to list.
        #[arg(long, default_value_t = 15)]
        top: usize,
        /// Run the model as written: no fusion of nodes by the backend.
        #[arg(long)]
        no_optimize: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run { model, backend, inputs, dims, output_dir, json, sandbox, .. } if sandbox.sandbox => {
            let backend = backend.as_deref().unwrap_or("reference");
            sandbox::run(model.as_deref(), backend, &inputs, &dims, output_dir.as_deref(), json, &sandbox)
        }
        Cmd::Run { model, backend, strict, threads, inputs, dims, output_dir, json, no_optimize, .. } => {
            let backend = backend.as_deref().unwrap_or(strata::DEFAULT_BACKEND);
            let opts = SessionOptions { threads, optimize: !no_optimize, ..options(backend, strict) };
            cmd_run(model.as_deref(), opts, &inputs, &dims, output_dir.as_deref(), json)
        }
        Cmd::Inspect { model, backend, no_optimize } => cmd_inspect(&model, backend.as_deref(), !no_optimize),
        Cmd::Compile { model, output } => cmd_compile(&model, &output),
        Cmd::Conformance(a) => conformance::run(a),
        Cmd::Migrate(a) => migrate::run(a),
        Cmd::Bench { model, backend, threads, inputs, dims, warmup, iterations, json, profile, top, no_optimize } => {
            let opts = SessionOptions { threads, profile, optimize: !no_optimize, ..options(&backend, false) };
            let report = Report { json, top };
            cmd_bench(model.as_deref(), opts, &inputs, &dims, warmup, iterations, report)
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn options(backend: &str, strict: bool) -> SessionOptions {
    SessionOptions { backends: vec![backend.to_string()], strict, ..Default::default() }
}

fn load(model: Option<&Path>, opts: SessionOptions) -> anyhow::Result<Session> {
    match model {
        Some(p) => Session::from_path(p, opts).with_context(|| format!("loading {}", p.display())),
        None => Ok(Session::from_model(strata::examples::tiny_mlp(), opts)?),
    }
}

fn parse_kv(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s.split_once('=').with_context(|| format!("{what} must be NAME=VALUE, got '{s}'"))?;
    Ok((k.to_string(), v.to_string()))
}

/// Deterministic data for a declared input type.
fn generate(name: &str, ty: &ValueType, dims: &HashMap<String, usize>) -> anyhow::Result<Value> {
    let ValueType::Tensor { dtype, shape } = ty else {
        bail!("input '{name}' is not a tensor ({ty}); give it with --input");
    };
    let shape: Vec<usize> = shape
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|d| match d {
            Dim::Known(n) => *n as usize,
            Dim::Sym(s) => dims.get(s).copied().unwrap_or(1),
            Dim::Unknown => 1,
        })
        .collect();
    let n: usize = shape.iter().product();
    if n > 1 << 28 {
        bail!("input '{name}' would have {n} elements; set smaller --dim values");
    }
    let mut state: u64 =
        0x9E37_79B9_7F4A_7C15 ^ name.bytes().fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64));
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let t = match dtype {
        DType::String => Tensor::from_strings(shape, (0..n).map(|i| format!("s{i}")).collect())?,
        d if d.is_float() => Tensor::from_f64(*d, shape, &(0..n).map(|_| next() * 2.0 - 1.0).collect::<Vec<_>>())?,
        DType::Bool => Tensor::from_i128(DType::Bool, shape, &(0..n).map(|i| (i % 2) as i128).collect::<Vec<_>>())?,
        d => Tensor::from_i128(*d, shape, &(0..n).map(|_| (next() * 10.0) as i128).collect::<Vec<_>>())?,
    };
    Ok(Value::Tensor(t))
}

fn feeds(session: &Session, inputs: &[String], dims: &[String]) -> anyhow::Result<Vec<(String, Value)>> {
    let mut given = HashMap::new();
    for s in inputs {
        let (k, f) = parse_kv(s, "--input")?;
        let bytes = std::fs::read(&f).with_context(|| format!("reading {f}"))?;
        let t = npy::read(&bytes).with_context(|| format!("reading {f}"))?;
        given.insert(k, Value::Tensor(t));
    }
    let mut dimmap = HashMap::new();
    for s in dims {
        let (k, v) = parse_kv(s, "--dim")?;
        dimmap.insert(k, v.parse::<usize>().with_context(|| format!("--dim {s}: not a number"))?);
    }
    let mut out = Vec::new();
    for info in session.inputs() {
        let v = match given.remove(&info.name) {
            Some(v) => v,
            None => generate(&info.name, &info.ty, &dimmap)?,
        };
        out.push((info.name.clone(), v));
    }
    if let Some(k) = given.keys().next() {
        let known: Vec<&str> = session.inputs().iter().map(|i| i.name.as_str()).collect();
        bail!("--input names '{k}', which is not an input of the model (inputs: {known:?})");
    }
    Ok(out)
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

fn summary(v: &Value) -> String {
    match v {
        Value::Tensor(t) if t.dtype() == DType::String => {
            format!("{}{:?} {:?}", t.dtype(), t.shape(), t.strings().unwrap_or(&[]).iter().take(4).collect::<Vec<_>>())
        }
        Value::Tensor(t) => {
            let v = t.to_f64_vec();
            let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.6}")).collect();
            format!("{}{:?} [{}{}]", t.dtype(), t.shape(), head.join(", "), if v.len() > 6 { ", ..." } else { "" })
        }
        other => other.describe(),
    }
}

fn cmd_run(
    model: Option<&Path>,
    mut opts: SessionOptions,
    inputs: &[String],
    dims: &[String],
    output_dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    for d in dims {
        let (k, v) = parse_kv(d, "--dim")?;
        opts.dims.push((k, v.parse().with_context(|| format!("--dim {d}: not a number"))?));
    }
    let backend = opts.backends.join(",");
    let session = load(model, opts)?;
    let load_s = t0.elapsed().as_secs_f64();
    let feeds = feeds(&session, inputs, dims)?;
    let refs: Vec<(&str, Value)> = feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let t1 = Instant::now();
    let outs = session.run(&refs)?;
    let run_s = t1.elapsed().as_secs_f64();
    if let Some(dir) = output_dir {
        std::fs::create_dir_all(dir)?;
        for (name, v) in &outs {
            let t = v.as_tensor().with_context(|| format!("output '{name}' is not a tensor; cannot write .npy"))?;
            std::fs::write(dir.join(format!("{}.npy", sanitize(name))), npy::write(t)?)?;
        }
    }
    if json {
        let o: Vec<serde_json::Value> = outs
            .iter()
            .map(|(n, v)| serde_json::json!({"name": n, "summary": summary(v), "shape": v.as_tensor().map(|t| t.shape().to_vec()), "dtype": v.as_tensor().map(|t| t.dtype().name())}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"backend": backend, "load_seconds": load_s, "run_seconds": run_s, "outputs": o})
            )?
        );
    } else {
        println!("model: {}", model.map(|p| p.display().to_string()).unwrap_or_else(|| "(built-in tiny MLP)".into()));
        println!("backend: {backend}");
        for (n, v) in &feeds {
            println!("input  {n}: {}", summary(v));
        }
        for (n, v) in &outs {
            println!("output {n}: {}", summary(v));
        }
        println!("load {:.3} ms, run {:.3} ms", load_s * 1e3, run_s * 1e3);
    }
    Ok(())
}

fn cmd_inspect(model: &Path, backend: Option<&str>, optimize: bool) -> anyhow::Result<()> {
    let m = strata::ir::Model::clone(Session::from_path(model, SessionOptions::default())?.model());
    let g = m.main_graph();
    println!("model: {}", model.display());
    println!("producer: {}", m.producer);
    println!(
        "opsets: {}",
        m.opsets
            .iter()
            .map(|(d, v)| format!("{}={v}", if d.is_empty() { "ai.onnx" } else { d }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for &i in &g.inputs {
        println!("input  {}: {}", g.value(i).name, g.value(i).ty);
    }
    for &o in &g.outputs {
        println!("output {}: {}", g.value(o).name, g.value(o).ty);
    }
    let mut hist: std::collections::BTreeMap<&str, usize> = Default::default();
    for gr in &m.graphs {
        for n in &gr.nodes {
            *hist.entry(n.op.name()).or_default() += 1;
        }
    }
    println!("nodes: {} in main graph, {} graphs in all", g.nodes.len(), m.graphs.len());
    for (op, c) in &hist {
        println!("  {op:<28} {c}");
    }
    let names: Vec<String> = match backend {
        Some(b) => vec![b.to_string()],
        None => strata::backend_names().into_iter().map(String::from).collect(),
    };
    for b in names {
        match Session::from_model(
            m.clone(),
            SessionOptions { backends: vec![b.clone()], strict: false, optimize, ..Default::default() },
        ) {
            Ok(s) => {
                let off: Vec<_> = s.placement().iter().filter(|p| p.backend != b).collect();
                println!("backend {b}: {} of {} nodes placed", s.placement().len() - off.len(), s.placement().len());
                for p in off {
                    println!("  {} ({}) -> {}: {}", p.node, p.op, p.backend, p.reason);
                }
                let fused = s.fused_groups();
                if !fused.is_empty() {
                    let nodes: usize = fused.iter().map(|f| f.nodes.len()).sum();
                    println!("  fused: {nodes} nodes into {} groups", fused.len());
                    for f in fused {
                        println!("    {} [{}]: {}", f.ops, f.backend, f.nodes.join(", "));
                    }
                }
            }
            Err(e) => println!("backend {b}: unavailable: {e}"),
        }
    }
    Ok(())
}

fn cmd_compile(model: &Path, output: &Path) -> anyhow::Result<()> {
    let s = Session::from_path(model, SessionOptions::default())?;
    let bytes = strata::ir::artifact::write(s.model())?;
    std::fs::write(output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    println!("wrote {} ({} bytes)", output.display(), bytes.len());
    Ok(())
}

/// How `strata bench` reports: JSON or text, and (with `--profile`) how
/// many of the slowest nodes to list.
struct Report {
    json: bool,
    top: usize,
}

fn cmd_bench(
    model: Option<&Path>,
    opts: SessionOptions,
    inputs: &[String],
    dims: &[String],
    warmup: usize,
    iterations: usize,
    Report { json, top }: Report,
) -> anyhow::Result<()> {
    let backend = opts.backends.join(",");
    let profile = opts.profile;
    let session = load(model, opts)?;
    let feeds = feeds(&session, inputs, dims)?;
    let refs: Vec<(&str, Value)> = feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    for _ in 0..warmup {
        session.run(&refs)?;
    }
    let mut times = Vec::with_capacity(iterations);
    let prof0 = session.profile();
    let (up0, down0) = session.transfer_counts();
    let counters0 = session.backend_counters();
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        session.run(&refs)?;
        times.push(t.elapsed().as_secs_f64());
    }
    let runs = times.len() as f64;
    let (up1, down1) = session.transfer_counts();
    let per_run = |a: u64, b: u64| (b - a) as f64 / runs;
    let counters: Vec<(String, f64)> = session
        .backend_counters()
        .into_iter()
        .zip(counters0)
        .map(|((b, k, v1), (_, _, v0))| (format!("{b} {k}"), per_run(v0, v1)))
        .collect();
    let placed: std::collections::BTreeMap<&str, usize> =
        session.placement().iter().fold(Default::default(), |mut m, p| {
            *m.entry(p.backend.as_str()).or_default() += 1;
            m
        });
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (min, median) = (times[0], times[times.len() / 2]);
    let (uploads, downloads) = (per_run(up0, up1), per_run(down0, down1));
    // Time per run of each node (or partition), warm-up runs excluded.
    let prof: Vec<(String, String, String, f64)> = session
        .profile()
        .into_iter()
        .zip(prof0)
        .map(|(p1, p0)| {
            let ms = (p1.total.saturating_sub(p0.total)).as_secs_f64() * 1e3 / runs;
            (p1.node, p1.op, p1.backend, ms)
        })
        .collect();
    let total_ms: f64 = prof.iter().map(|p| p.3).sum::<f64>().max(1e-12);
    let mut by_op: Vec<(String, usize, f64)> = Vec::new();
    for (_, op, _, ms) in &prof {
        match by_op.iter_mut().find(|e| e.0 == *op) {
            Some(e) => {
                e.1 += 1;
                e.2 += ms;
            }
            None => by_op.push((op.clone(), 1, *ms)),
        }
    }
    by_op.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut slowest: Vec<&(String, String, String, f64)> = prof.iter().collect();
    slowest.sort_by(|a, b| b.3.total_cmp(&a.3));
    slowest.truncate(top);
    if json {
        let c: serde_json::Map<String, serde_json::Value> =
            counters.iter().map(|(k, v)| (format!("{k} per run"), serde_json::json!(v))).collect();
        println!(
            "{}",
            serde_json::json!({"backend": backend, "iterations": times.len(), "min_ms": min * 1e3, "median_ms": median * 1e3,
            "throughput_per_s": 1.0 / median, "uploads_per_run": uploads, "downloads_per_run": downloads,
            "placement": placed, "counters": c,
            "profile": profile.then(|| serde_json::json!({
                "by_op": by_op.iter().map(|(op, n, ms)| serde_json::json!({"op": op, "nodes": n, "ms_per_run": ms})).collect::<Vec<_>>(),
                "slowest": slowest.iter().map(|(node, op, b, ms)| serde_json::json!({"node": node, "op": op, "backend": b, "ms_per_run": ms})).collect::<Vec<_>>(),
            }))})
        );
    } else {
        println!("backend {backend}: {} iterations after {warmup} warm-up", times.len());
        println!("min {:.3} ms, median {:.3} ms, throughput {:.2} runs/s", min * 1e3, median * 1e3, 1.0 / median);
        println!(
            "placement: {}",
            placed.iter().map(|(b, n)| format!("{n} nodes on {b}")).collect::<Vec<_>>().join(", ")
        );
        println!("host->device transfers per run: {uploads:.1}, device->host per run: {downloads:.1}");
        for (k, v) in &counters {
            println!("{k} per run: {v:.1}");
        }
        if profile {
            println!();
            println!("time per op kind (ms per run; partitions of backends that do not time nodes count as one):");
            println!("  {:<28} {:>6} {:>10} {:>7}", "op", "nodes", "ms/run", "share");
            for (op, n, ms) in &by_op {
                println!("  {op:<28} {n:>6} {ms:>10.3} {:>6.1}%", 100.0 * ms / total_ms);
            }
            println!("slowest {} nodes:", slowest.len());
            println!("  {:<36} {:<20} {:<10} {:>10} {:>7}", "node", "op", "backend", "ms/run", "share");
            for (node, op, b, ms) in &slowest {
                println!("  {node:<36} {op:<20} {b:<10} {ms:>10.3} {:>6.1}%", 100.0 * ms / total_ms);
            }
            println!("(sum of timed work {total_ms:.3} ms per run, against a median run of {:.3} ms)", median * 1e3);
        }
    }
    Ok(())
}
