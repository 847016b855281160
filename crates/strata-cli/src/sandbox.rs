//! `strata run --sandbox`: parse, validate and run an untrusted model inside
//! the wasm32 build of the engine under wasmtime (`strata-sandbox`), with a
//! memory cap and a deadline. Only in builds with the `sandbox` feature; other
//! builds say so when the flag is used.

use std::path::Path;

/// The sandbox options of `strata run`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Parse, validate and run the model inside the wasm sandbox (for
    /// untrusted models; needs a build with the `sandbox` feature). Every
    /// input must be given with --input.
    #[arg(long)]
    pub sandbox: bool,
    /// Memory cap of the sandbox, in MiB (at most 4096).
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    pub memory_limit_mib: usize,
    /// Deadline of the sandboxed run, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub deadline: f64,
}

/// Run `model` in the sandbox and report like `strata run`.
#[cfg(feature = "sandbox")]
pub fn run(
    model: Option<&Path>,
    backend: &str,
    inputs: &[String],
    dims: &[String],
    output_dir: Option<&Path>,
    json: bool,
    args: &Args,
) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};

    use anyhow::{Context, bail};
    use strata::{Value, npy};
    use strata_sandbox::{GuestOptions, Sandbox, SandboxOptions};

    let Some(model) = model else { bail!("--sandbox needs a MODEL file") };
    if backend != "reference" {
        bail!("--sandbox runs the reference backend only (got --backend {backend})");
    }
    if !(args.deadline.is_finite() && args.deadline > 0.0) {
        bail!("--deadline must be a positive number of seconds");
    }
    let mut session = GuestOptions::default();
    for d in dims {
        let (k, v) = crate::parse_kv(d, "--dim")?;
        session.dims.push((k, v.parse().with_context(|| format!("--dim {d}: not a number"))?));
    }
    let mut feeds: Vec<(String, Value)> = Vec::new();
    for s in inputs {
        let (k, f) = crate::parse_kv(s, "--input")?;
        let bytes = std::fs::read(&f).with_context(|| format!("reading {f}"))?;
        feeds.push((k, Value::Tensor(npy::read(&bytes).with_context(|| format!("reading {f}"))?)));
    }
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let options = SandboxOptions {
        memory_limit_bytes: args.memory_limit_mib.saturating_mul(1 << 20),
        deadline: Duration::from_secs_f64(args.deadline),
        session,
    };
    let t0 = Instant::now();
    let sandbox = Sandbox::new(options)?;
    let compile_s = t0.elapsed().as_secs_f64();
    let refs: Vec<(&str, Value)> = feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let t1 = Instant::now();
    let outs = sandbox.run(&bytes, &refs).with_context(|| format!("running {} in the sandbox", model.display()))?;
    let run_s = t1.elapsed().as_secs_f64();
    if let Some(dir) = output_dir {
        std::fs::create_dir_all(dir)?;
        for (name, v) in &outs {
            let t = v.as_tensor().with_context(|| format!("output '{name}' is not a tensor; cannot write .npy"))?;
            std::fs::write(dir.join(format!("{}.npy", crate::sanitize(name))), npy::write(t)?)?;
        }
    }
    if json {
        let o: Vec<serde_json::Value> = outs
            .iter()
            .map(|(n, v)| serde_json::json!({"name": n, "summary": crate::summary(v), "shape": v.as_tensor().map(|t| t.shape().to_vec()), "dtype": v.as_tensor().map(|t| t.dtype().name())}))
            .collect();
        let summary = serde_json::json!({"backend": backend, "sandbox": true, "compile_seconds": compile_s, "run_seconds": run_s, "outputs": o});
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("model: {}", model.display());
        println!("backend: {backend} (wasm sandbox: {} MiB, {} s)", args.memory_limit_mib, args.deadline);
        for (n, v) in &feeds {
            println!("input  {n}: {}", crate::summary(v));
        }
        for (n, v) in &outs {
            println!("output {n}: {}", crate::summary(v));
        }
        println!("compile {:.3} ms, load + run {:.3} ms", compile_s * 1e3, run_s * 1e3);
    }
    Ok(())
}

/// Builds without the `sandbox` feature: a clear error.
#[cfg(not(feature = "sandbox"))]
pub fn run(
    _model: Option<&Path>,
    _backend: &str,
    _inputs: &[String],
    _dims: &[String],
    _output_dir: Option<&Path>,
    _json: bool,
    _args: &Args,
) -> anyhow::Result<()> {
    anyhow::bail!(
        "--sandbox is not in this build of strata: rebuild with `cargo build -p strata-cli --features sandbox` \
         (and build the guest with `cargo xtask sandbox`)"
    )
}
