//! Benchmark: every real model of the `onnx-models` suite on Strata, on
//! onnxruntime (the pip package, `tests/scripts/bench_ort_worker.py`) and on
//! tract (the `tract-onnx` crate, used only here), side by side.
//!
//! Usage: strata-bench [--backend NAME[,NAME...]] [--threads 1,2] [--rounds N] [--filter SUBSTRING] [--pause-ms MS]
//!
//! Per model and thread count, each runtime is its own worker process (so
//! its load time and peak memory are its own): the worker loads the model,
//! runs it once to warm up, then runs it once per request. The driver
//! interleaves the requests (one run of each runtime per round, the order
//! rotating between rounds; before each run a short pause, then a wait until
//! no worker process uses the CPU, so no runtime's spinning threads steal
//! the next one's cores), and prints median
//! latencies, Strata/anchor ratios and their geometric means, peak RSS and
//! load times. The same inputs (`test_data_set_0`) are given to all.
//! `--backend cpu,burn` measures several of Strata's backends in the same
//! rounds, each in its own worker and each reported against the anchors
//! (`burn` needs the `burn` feature, which `cargo xtask bench` turns on
//! when the list names it).
//!
//! Threads: Strata's `cpu` backend kernel threads, onnxruntime's intra-op
//! threads, tract's matrix-product executor (the only part tract runs on
//! several threads).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strata::{Session, SessionOptions, Value};
use strata_conformance::{SuiteKind, data_root, load_suite};
use tract_onnx::prelude::*;

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..).map(|i| dir.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.exists()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Resident-set figures of this process from `/proc/self/status`, in KiB:
/// (current, peak). Zero where the system has no such file.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn to_tract(v: &Value) -> anyhow::Result<TValue> {
    let Value::Tensor(t) = v else { bail!("only tensor inputs are benchmarked") };
    let shape = t.shape().to_vec();
    let tensor: Tensor = match t.dtype() {
        strata::DType::F32 => {
            let v: Vec<f32> = t.to_f64_vec().into_iter().map(|x| x as f32).collect();
            tract_ndarray::ArrayD::from_shape_vec(shape, v)?.into()
        }
        strata::DType::I64 => tract_ndarray::ArrayD::from_shape_vec(shape, t.to_i64_vec())?.into(),
        strata::DType::I32 => {
            let v: Vec<i32> = t.to_i64_vec().into_iter().map(|x| x as i32).collect();
            tract_ndarray::ArrayD::from_shape_vec(shape, v)?.into()
        }
        d => bail!("dtype {d} not handled by the benchmark"),
    };
    Ok(tensor.into_tvalue())
}

/// The inputs of a case, decoded with the types the model declares.
fn case_inputs(model: &Path, ds: &Path) -> anyhow::Result<Vec<(String, Value)>> {
    let m = strata_onnx::import_path(model)?;
    let g = m.main_graph();
    let mut feeds = Vec::new();
    for (k, f) in numbered(ds, "input").iter().enumerate() {
        let v = g.value(*g.inputs.get(k).context("more input files than model inputs")?);
        feeds.push((v.name.clone(), strata_onnx::decode_value(&std::fs::read(f)?, &v.ty)?));
    }
    Ok(feeds)
}

/// Worker side: load, warm up, say `ready LOAD_MS BASE_KIB`, then answer
/// `run` with the run's milliseconds and `quit` with `rss PEAK_KIB`.
/// Inputs come as `input_K.npy` files in `npy_dir` (written by the driver),
/// so no worker imports the model twice.
fn worker(runtime: &str, model: &Path, npy_dir: &Path, threads: usize, backend: &str) -> anyhow::Result<()> {
    let (base_kib, _) = rss_kib();
    let mut feeds: Vec<Value> = Vec::new();
    for k in 0.. {
        let f = npy_dir.join(format!("input_{k}.npy"));
        if !f.exists() {
            break;
        }
        feeds.push(Value::Tensor(strata::npy::read(&std::fs::read(&f)?)?));
    }
    let start = Instant::now();
    let mut run: Box<dyn FnMut() -> anyhow::Result<()>> = match runtime {
        "strata" => {
            let opts = SessionOptions { backends: vec![backend.to_string()], threads, ..Default::default() };
            let session = Session::from_path(model, opts)?;
            let refs: Vec<(String, Value)> =
                session.inputs().iter().map(|i| i.name.clone()).zip(feeds.iter().cloned()).collect();
            Box::new(move || {
                let r: Vec<(&str, Value)> = refs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
                session.run(&r)?;
                Ok(())
            })
        }
        "tract" => {
            if threads > 1 {
                tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::multithread(
                    threads,
                ));
            }
            let mut m = tract_onnx::onnx().model_for_path(model)?;
            for (k, v) in feeds.iter().enumerate() {
                // Type and shape only: a value fact would let tract fold the whole graph away.
                let t = to_tract(v)?.into_tensor();
                m = m.with_input_fact(k, InferenceFact::dt_shape(t.datum_type(), t.shape()))?;
            }
            let plan = m.into_optimized()?.into_runnable()?;
            let inputs: TVec<TValue> = feeds.iter().map(to_tract).collect::<anyhow::Result<_>>()?;
            Box::new(move || {
                plan.run(inputs.clone())?;
                Ok(())
            })
        }
        other => bail!("unknown runtime {other}"),
    };
    run()?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {load_ms:.3} {base_kib}")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        match line?.trim() {
            "run" => {
                let s = Instant::now();
                run()?;
                writeln!(out, "{:.6}", s.elapsed().as_secs_f64() * 1e3)?;
            }
            _ => {
                writeln!(out, "rss {}", rss_kib().1)?;
                out.flush()?;
                return Ok(());
            }
        }
        out.flush()?;
    }
    Ok(())
}

/// A running worker process (driver side).
struct Worker {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    load_ms: f64,
    base_kib: u64,
    times: Vec<f64>,
    peak_kib: u64,
}

impl Worker {
    fn start(name: String, mut cmd: Command) -> Result<Worker, String> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("no pipes".into());
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.first() != Some(&"ready") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            let _ = child.wait();
            let msg = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("exited").to_string();
            return Err(msg);
        }
        let load_ms = parts.get(1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        let base_kib = parts.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(Worker { name, child, stdin, stdout, load_ms, base_kib, times: Vec::new(), peak_kib: 0 })
    }

    fn run_once(&mut self) -> anyhow::Result<()> {
        writeln!(self.stdin, "run")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        self.times.push(line.trim().parse().with_context(|| format!("{}: bad answer {line:?}", self.name))?);
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        writeln!(self.stdin, "quit")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        self.peak_kib = line.trim().strip_prefix("rss ").and_then(|v| v.parse().ok()).unwrap_or(0);
        let _ = self.child.wait();
        Ok(())
    }
}

/// One runtime's figures on one model at one thread count.
#[derive(Clone)]
struct Figures {
    median_ms: f64,
    /// Every run's time, in round order.
    times: Vec<f64>,
    load_ms: f64,
    peak_mib: f64,
    model_mib: f64,
}

/// Default pause before each run.
const PAUSE_MS: u64 = 5;
/// Longest wait for the workers to go idle before a run.
const QUIET_TIMEOUT_MS: u64 = 1000;

/// Nanoseconds of CPU time all threads of process `pid` have used, from
/// `/proc/PID/task/*/schedstat`; `None` where the system has no such files.
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Wait until no worker process uses the CPU (less than 5% of one core
/// over a 5 ms window), at most [`QUIET_TIMEOUT_MS`]: a runtime whose
/// threads keep spinning after its run (onnxruntime's intra-op workers spin
/// for tens of milliseconds) would otherwise take cores from the next
/// runtime's run. Returns the time waited.
fn wait_quiet(pids: &[u32]) -> Duration {
    let start = Instant::now();
    let window = Duration::from_millis(5);
    let used = || pids.iter().map(|&p| cpu_ns(p)).sum::<Option<u64>>();
    let Some(mut before) = used() else { return Duration::ZERO };
    while start.elapsed() < Duration::from_millis(QUIET_TIMEOUT_MS) {
        std::thread::sleep(window);
        let Some(now) = used() else { break };
        if now.saturating_sub(before) < window.as_nanos() as u64 / 20 {
            break;
        }
        before = now;
    }
    start.elapsed()
}

fn geomean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1).cloned());
    let backend_arg = get("--backend").unwrap_or_else(|| "cpu".into());
    if let Some(rt) = get("--worker") {
        let model = PathBuf::from(get("--model").context("--model")?);
        let ds = PathBuf::from(get("--data").context("--data")?);
        let threads = get("--threads").map(|s| s.parse()).transpose()?.unwrap_or(1);
        return worker(&rt, &model, &ds, threads, &backend_arg);
    }
    // Strata's backends to measure (`--backend cpu,burn`), each beside the anchors.
    let backends: Vec<String> =
        backend_arg.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if backends.is_empty() {
        bail!("--backend takes a list such as cpu or cpu,burn");
    }
    for b in &backends {
        if !strata::backend_names().contains(&b.as_str()) {
            bail!("backend {b:?} is not in this build of the benchmark (known: {:?})", strata::backend_names());
        }
    }
    let threads: Vec<usize> = get("--threads")
        .unwrap_or_else(|| "1,2".into())
        .split(',')
        .map(|s| s.trim().parse().context("--threads takes a list such as 1,2"))
        .collect::<anyhow::Result<_>>()?;
    let rounds: usize = get("--rounds").or_else(|| get("--iterations")).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let filter = get("--filter");
    let pause = Duration::from_millis(get("--pause-ms").map(|s| s.parse()).transpose()?.unwrap_or(PAUSE_MS));
    let root = data_root();
    let cases = load_suite(SuiteKind::OnnxModels, &root)?;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join("venv").join("bin").join("python");
    let me = std::env::current_exe()?;
    let tmp = std::env::temp_dir().join(format!("strata-bench-{}", std::process::id()));
    // The runtimes, in column order: Strata's backends, then the anchors.
    let names: Vec<String> =
        backends.iter().map(|b| format!("strata {b}")).chain(["onnxruntime".into(), "tract".into()]).collect();
    let (ort_i, tract_i) = (backends.len(), backends.len() + 1);
    // results[thread index] = (model, figures per runtime)
    type Row = (String, Vec<Option<Figures>>);
    let mut results: Vec<Vec<Row>> = vec![Vec::new(); threads.len()];
    for case in &cases {
        if filter.as_ref().is_some_and(|f| !case.name.contains(f.as_str())) {
            continue;
        }
        let model = case.dir.join("model.onnx");
        let ds = case.data_sets[0].clone();
        // onnxruntime reads the same inputs as .npy files.
        let npy_dir = tmp.join(&case.name);
        std::fs::create_dir_all(&npy_dir)?;
        for (k, (_, v)) in case_inputs(&model, &ds)?.iter().enumerate() {
            let Value::Tensor(t) = v else { bail!("{}: only tensor inputs are benchmarked", case.name) };
            std::fs::write(npy_dir.join(format!("input_{k}.npy")), strata::npy::write(t)?)?;
        }
        for (ti, &t) in threads.iter().enumerate() {
            let rust = |rt: &str, backend: &str| {
                let mut c = Command::new(&me);
                c.args(["--worker", rt, "--backend", backend, "--threads", &t.to_string(), "--model"])
                    .arg(&model)
                    .arg("--data")
                    .arg(&npy_dir);
                c
            };
            let mut ort = Command::new(&py);
            ort.arg(repo.join("tests/scripts/bench_ort_worker.py")).arg(&model).arg(&npy_dir).arg(t.to_string());
            let mut cmds: Vec<Command> = backends.iter().map(|b| rust("strata", b)).collect();
            cmds.push(ort);
            cmds.push(rust("tract", "cpu"));
            let mut workers: Vec<Option<Worker>> = Vec::new();
            for (name, cmd) in names.iter().zip(cmds) {
                match Worker::start(name.clone(), cmd) {
                    Ok(w) => workers.push(Some(w)),
                    Err(e) => {
                        println!("  {} {name} ({t} threads): cannot run: {e}", case.name);
                        workers.push(None);
                    }
                }
            }
            let mut waited = Duration::ZERO;
            for r in 0..rounds {
                for k in 0..workers.len() {
                    let i = (k + r) % workers.len();
                    let pids: Vec<u32> = workers.iter().flatten().map(|w| w.child.id()).collect();
                    if let Some(w) = workers[i].as_mut() {
                        std::thread::sleep(pause);
                        waited += wait_quiet(&pids);
                        if let Err(e) = w.run_once() {
                            println!("  {} {} failed: {e:#}", case.name, w.name);
                            workers[i] = None;
                        }
                    }
                }
            }
            let runs = (rounds * workers.iter().flatten().count()).max(1) as u32;
            println!(
                "  {} ({t} thread(s)): {:.1} ms per run waited for the workers to go idle",
                case.name,
                (waited / runs).as_secs_f64() * 1e3
            );
            let mut figs: Vec<Option<Figures>> = Vec::new();
            for w in workers.iter_mut() {
                figs.push(match w {
                    Some(w) if !w.times.is_empty() => {
                        w.finish()?;
                        Some(Figures {
                            median_ms: median(w.times.clone()),
                            times: w.times.clone(),
                            load_ms: w.load_ms,
                            peak_mib: w.peak_kib as f64 / 1024.0,
                            model_mib: w.peak_kib.saturating_sub(w.base_kib) as f64 / 1024.0,
                        })
                    }
                    _ => None,
                });
            }
            results[ti].push((case.name.clone(), figs));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let ms = |f: &Option<Figures>| f.as_ref().map_or("-".into(), |f| format!("{:.2}", f.median_ms));
    // The median over rounds of the ratio of the two runs of a round: the
    // runs of one round are milliseconds apart, so a change of the machine's
    // speed between rounds (this VM moves by 30% and more over seconds)
    // cancels out; the ratio of the medians where the rounds do not pair up.
    let ratio = |a: &Option<Figures>, b: &Option<Figures>| match (a, b) {
        (Some(a), Some(b)) if a.times.len() == b.times.len() && b.times.iter().all(|&t| t > 0.0) => {
            Some(median(a.times.iter().zip(&b.times).map(|(x, y)| x / y).collect()))
        }
        (Some(a), Some(b)) if b.median_ms > 0.0 => Some(a.median_ms / b.median_ms),
        _ => None,
    };
    let show = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}x"));
    let mem = |f: &Option<Figures>| f.as_ref().map_or("-".into(), |f| format!("{:.0}/{:.0}", f.peak_mib, f.model_mib));
    let load = |f: &Option<Figures>| f.as_ref().map_or("-".into(), |f| format!("{:.0}", f.load_ms));
    // Short column labels: the backend's name, `ort`, `tract`.
    let label = |i: usize| match i {
        i if i == ort_i => "ort".to_string(),
        i if i == tract_i => "tract".to_string(),
        i => backends[i].clone(),
    };
    for (ti, t) in threads.iter().enumerate() {
        println!();
        println!("## {t} thread(s), strata --backend {backend_arg}, median of {rounds} interleaved rounds");
        let mut head = format!("{:<22}", "model");
        for i in 0..names.len() {
            head += &format!(" {:>9}", label(i));
        }
        for b in &backends {
            head += &format!(" {:>11} {:>13}", format!("{b}/ort"), format!("{b}/tract"));
        }
        for i in 0..names.len() {
            head += &format!(" {:>11}", format!("RSS {}", label(i)));
        }
        for i in 0..names.len() {
            head += &format!(" {:>9}", format!("load {}", label(i)));
        }
        println!("{head}");
        let mut vs: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); backends.len()];
        for (name, figs) in &results[ti] {
            let mut line = format!("{name:<22}");
            for f in figs {
                line += &format!(" {:>9}", ms(f));
            }
            for (bi, v) in vs.iter_mut().enumerate() {
                let (ro, rt) = (ratio(&figs[bi], &figs[ort_i]), ratio(&figs[bi], &figs[tract_i]));
                v.0.extend(ro);
                v.1.extend(rt);
                line += &format!(" {:>11} {:>13}", show(ro), show(rt));
            }
            for f in figs {
                line += &format!(" {:>11}", mem(f));
            }
            for f in figs {
                line += &format!(" {:>9}", load(f));
            }
            println!("{line}");
        }
        for (b, (vo, vt)) in backends.iter().zip(&vs) {
            println!(
                "geometric mean: strata {b}/onnxruntime {} over {} models, strata {b}/tract {} over {} models",
                show(geomean(vo)),
                vo.len(),
                show(geomean(vt)),
                vt.len()
            );
        }
    }
    if threads.len() >= 2 {
        println!();
        println!("## speed-up from {} to {} threads (latency ratio)", threads[0], threads[threads.len() - 1]);
        let last = threads.len() - 1;
        let up = |a: &Option<Figures>, b: &Option<Figures>| match (a, b) {
            (Some(a), Some(b)) if b.median_ms > 0.0 => format!("{:.2}x", a.median_ms / b.median_ms),
            _ => "-".into(),
        };
        for (k, (name, figs)) in results[0].iter().enumerate() {
            let mut line = format!("{name:<22}");
            for i in (0..backends.len()).chain([ort_i]) {
                line += &format!(" {} {:>7} ", names[i], up(&figs[i], &results[last][k].1[i]));
            }
            println!("{}", line.trim_end());
        }
    }
    println!();
    println!(
        "(times in ms, medians; X/ort and X/tract are medians of per-round ratios; RSS in MiB as peak/peak minus \
         the worker's RSS before loading; load = load + first run, ms)"
    );
    println!("({} cores here)", std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(())
}
