//! `strata migrate`: top-down bring-up of a backend. Carves a reference run,
//! runs each node alone on the target, then moves nodes to the target in
//! stages and reports the first stage and node where the model diverges.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use strata::{Backend, Session, SessionOptions, Value};
use strata_migrate::fault::{FAULT_ENV, FaultInjector};
use strata_migrate::{Report, StagePlan, Status};

/// Arguments of `strata migrate`.
#[derive(clap::Args)]
pub struct Args {
    /// The model (.onnx or .strata).
    model: PathBuf,
    /// The backend being brought up (stable name: reference, cpu, gpu, burn).
    #[arg(long)]
    target: String,
    /// NAME=FILE.npy (inputs not given get deterministic data).
    #[arg(long = "input", value_name = "NAME=FILE.npy")]
    inputs: Vec<String>,
    /// Symbolic dimension value, NAME=VALUE.
    #[arg(long = "dim", value_name = "NAME=VALUE")]
    dims: Vec<String>,
    /// Move nodes to the target in N cumulative stages of equal topological ranges (default 4).
    #[arg(long, value_name = "N", conflicts_with = "by_op")]
    stages: Option<usize>,
    /// Move nodes to the target one op kind at a time (cumulative).
    #[arg(long)]
    by_op: bool,
    /// Write report.json and report.html into DIR.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Testing aid: make the target's kernel for NODE wrong on purpose
    /// (the environment variable STRATA_MIGRATE_INJECT_FAULT does the same).
    #[arg(long, value_name = "NODE", hide = true)]
    inject_fault: Option<String>,
    /// Tie-breaker: where the target and the reference disagree, run this
    /// backend (e.g. `burn`) on the same carved inputs and report which of
    /// the two it agrees with.
    #[arg(long, value_name = "BACKEND")]
    third_opinion: Option<String>,
    /// Testing aid: make the reference run's kernel for NODE wrong on purpose.
    #[arg(long, value_name = "NODE", hide = true)]
    inject_reference_fault: Option<String>,
}

/// Run `strata migrate`; fails (after writing the report) when the model diverges.
pub fn run(a: Args) -> anyhow::Result<()> {
    let mut opts = SessionOptions::default();
    for d in &a.dims {
        let (k, v) = super::parse_kv(d, "--dim")?;
        opts.dims.push((k, v.parse().with_context(|| format!("--dim {d}: not a number"))?));
    }
    let session = Session::from_path(&a.model, opts).with_context(|| format!("loading {}", a.model.display()))?;
    let model = session.model().clone();
    let feeds = super::feeds(&session, &a.inputs, &a.dims)?;
    let inputs: Vec<(&str, Value)> = feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let mut target: Arc<dyn Backend> = strata::create_backend(&a.target)?;
    let fault = a.inject_fault.clone().or_else(|| std::env::var(FAULT_ENV).ok().filter(|s| !s.is_empty()));
    if let Some(node) = &fault {
        if !model.main_graph().nodes.iter().any(|n| n.name == *node) {
            bail!("cannot inject a fault: the main graph has no node named '{node}'");
        }
        eprintln!("warning: injecting a fault into node '{node}' on {}", a.target);
        if a.target == "gpu" {
            // Inside the GPU backend: its kernels corrupt the node's outputs.
            strata::inject_gpu_fault(Some(node));
        } else {
            target = Arc::new(FaultInjector::new(target, node.clone()));
        }
    }
    let plan = if a.by_op { StagePlan::ByOp } else { StagePlan::Ranges(a.stages.unwrap_or(4)) };
    let plan_text = match &plan {
        StagePlan::Ranges(n) => format!("{n} topological ranges"),
        _ => "by op kind".to_string(),
    };
    let n = model.main_graph().nodes.len();
    println!("model: {} ({n} nodes), target: {}, stages: {plan_text}", a.model.display(), target.name());

    let third: Option<Arc<dyn Backend>> = match &a.third_opinion {
        Some(name) => Some(strata::create_backend(name).with_context(|| format!("--third-opinion {name}"))?),
        None => None,
    };

    eprint!("carving a reference run...");
    let carved = match &a.inject_reference_fault {
        Some(node) => {
            eprintln!("warning: injecting a fault into node '{node}' of the reference run");
            strata_migrate::fault::carve_with_reference_fault(&model, &inputs, node)?
        }
        None => strata_migrate::carve(&model, &inputs)?,
    };
    eprintln!(" done");

    let mut err = std::io::stderr();
    let judge = third.as_deref();
    let ops = strata_migrate::per_operator_judged(&model, &carved, target.as_ref(), judge, &mut |done, total, r| {
        let _ = write!(err, "\rper operator: {done}/{total}");
        if matches!(r.status, Status::Fail | Status::Error) {
            let _ = writeln!(
                err,
                "\r{} #{} {} ({}): {}",
                r.status.as_str().to_uppercase(),
                r.index,
                r.node,
                r.op,
                r.reason.as_deref().unwrap_or("")
            );
        }
        if let Some(o) = &r.third_opinion {
            let _ = writeln!(err, "  third opinion: {}", o.describe());
        }
        let _ = err.flush();
    });
    eprintln!();

    let stages = strata_migrate::staged_with(&model, &inputs, &carved, target.clone(), &plan, &mut |s| {
        let verdict = match (&s.error, &s.first_divergence) {
            (Some(e), _) => format!("error: {e}"),
            (None, Some(d)) => format!("diverges at #{} {} ({})", d.index, d.node, d.op),
            (None, None) if s.pass() => "pass".to_string(),
            (None, None) => "final outputs differ".to_string(),
        };
        eprintln!("stage {} [{}]: {} of {} nodes on target: {verdict}", s.index, s.label, s.on_target, s.requested);
    })?;

    let report = Report::new(a.model.display().to_string(), target.name(), plan_text, ops, stages);
    let s = &report.summary;
    println!(
        "per operator: {} passed, {} failed, {} unsupported, {} host work (of {})",
        s.passed, s.failed, s.unsupported, s.host, s.nodes
    );
    for (status, label) in [(Status::Unsupported, "unsupported"), (Status::Host, "host")] {
        for r in report.per_operator.iter().filter(|r| r.status == status).take(10) {
            println!("  {label} #{} {} ({}): {}", r.index, r.node, r.op, r.reason.as_deref().unwrap_or(""));
        }
    }
    if let Some(d) = &s.first_failing_operator {
        println!("first failing operator: #{} {} ({})", d.index, d.node, d.op);
    }
    if let Some(t) = &s.third_opinion {
        println!(
            "third opinion ({}) on {} failing operators: {} side with the reference (target wrong), {} with the target (reference suspect), {} with neither, {} not run",
            t.backend, t.asked, t.reference, t.target, t.neither, t.unsupported
        );
        for r in report.per_operator.iter().filter(|r| r.third_opinion.is_some()).take(20) {
            if let Some(o) = &r.third_opinion {
                println!("  #{} {} ({}): {}", r.index, r.node, r.op, o.describe());
            }
        }
    } else if let Some(b) = &a.third_opinion {
        println!("third opinion ({b}): no failing operator to judge");
    }
    println!("stages: {} of {} passed", s.stages_passed, s.stages);
    match (&s.first_divergence, &s.first_stage_error) {
        (Some(d), _) => println!(
            "first divergence: stage {} node #{} {} ({})",
            d.stage.map_or_else(|| "?".into(), |x| x.to_string()),
            d.index,
            d.node,
            d.op
        ),
        (None, Some((i, e))) => println!("first stage error: stage {i}: {e}"),
        (None, None) => println!("first divergence: none"),
    }
    if let Some(dir) = &a.report {
        report.write(dir)?;
        println!("report: {} and {}", dir.join("report.json").display(), dir.join("report.html").display());
    }
    if !report.pass() {
        bail!("the model diverges on {}", target.name());
    }
    Ok(())
}
