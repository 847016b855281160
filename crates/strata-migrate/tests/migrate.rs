//! Bring-up tests: with the plain reference as target every node passes; with
//! a fault injected in one node, both the per-operator and the staged phase
//! name exactly that node as the first divergence. On a small multi-layer
//! model built in code and on a real model of the `onnx-models` suite.

use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use strata::ir::ops::{ElementwiseOp, NnOp};
use strata::ir::{DType, Model, Op};
use strata::{Backend, Tensor, Value};
use strata_migrate::fault::FaultInjector;
use strata_migrate::{Report, StagePlan, Status, carve, per_operator, staged, staged_with};
use strata_test_support::ir::Builder;

/// Deterministic data in [-1, 1).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) as f64 / (1u64 << 31) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// x[1,2,8,8] → conv1 → relu1 → mm1 (·W[8,8]) → add1 (+b[8]) → relu2 → conv2 → add2 (+x) → y.
fn conv_mlp() -> Model {
    let mut b = Builder::new();
    b.graph_name("conv_mlp");
    let x = Tensor::from_f32(vec![1, 2, 8, 8], &[0.0; 128]).expect("input shape");
    b.input_exact("x", &x);
    for (name, shape, seed) in [
        ("w1", vec![4, 2, 3, 3], 1),
        ("b1", vec![4], 2),
        ("wm", vec![8, 8], 3),
        ("bm", vec![8], 4),
        ("w2", vec![2, 4, 3, 3], 5),
    ] {
        let n = shape.iter().product();
        b.weight(name, Tensor::from_f32(shape, &data(n, seed)).expect("weight"));
    }
    let conv = || {
        Op::Nn(NnOp::Conv {
            auto_pad: strata_ir::window::AutoPad::NotSet,
            dilations: None,
            group: 1,
            kernel_shape: Some(vec![3, 3]),
            pads: Some(vec![1, 1, 1, 1]),
            strides: None,
        })
    };
    let mut prev = "x".to_string();
    for (name, op, extra) in [
        ("conv1", conv(), &["w1", "b1"][..]),
        ("relu1", Op::Elementwise(ElementwiseOp::Relu {}), &[]),
        ("mm1", Op::Nn(NnOp::MatMul {}), &["wm"]),
        ("add1", Op::Elementwise(ElementwiseOp::Add {}), &["bm"]),
        ("relu2", Op::Elementwise(ElementwiseOp::Relu {}), &[]),
        ("conv2", conv(), &["w2"]),
        ("add2", Op::Elementwise(ElementwiseOp::Add {}), &["x"]),
    ] {
        let out = format!("{name}_out");
        let ins: Vec<&str> = std::iter::once(prev.as_str()).chain(extra.iter().copied()).collect();
        b.typed(&out, DType::F32).node_named(name, op, &ins, &[&out]);
        prev = out;
    }
    b.output(&prev).build_as_declared()
}

fn conv_mlp_inputs() -> Vec<(&'static str, Value)> {
    vec![("x", Value::Tensor(Tensor::from_f32(vec![1, 2, 8, 8], &data(128, 9)).expect("input")))]
}

fn reference() -> Arc<dyn Backend> {
    strata::create_backend("reference").expect("reference backend")
}

/// Names of the nodes that failed the per-operator phase.
fn failing(reports: &[strata_migrate::NodeReport]) -> Vec<String> {
    reports.iter().filter(|r| r.status != Status::Pass).map(|r| r.node.clone()).collect()
}

/// Run both phases of `model` against `target` and check the verdict:
/// `fault = None` means every node and stage must pass; `Some(x)` means `x`
/// alone fails per operator and is the first divergence of the staged phase.
fn check(
    model: &Model,
    inputs: &[(&str, Value)],
    target: Arc<dyn Backend>,
    plan: StagePlan,
    fault: Option<&str>,
) -> anyhow::Result<Report> {
    let carved = carve(model, inputs)?;
    let ops = per_operator(model, &carved, target.as_ref());
    ensure!(ops.len() == model.main_graph().nodes.len());
    let stages = staged_with(model, inputs, &carved, target.clone(), &plan, &mut |_| {})?;
    let report = Report::new("test", target.name(), format!("{plan:?}"), ops, stages);
    let s = &report.summary;
    match fault {
        None => {
            ensure!(failing(&report.per_operator).is_empty(), "failing: {:?}", failing(&report.per_operator));
            ensure!(s.passed == s.nodes && s.unsupported == 0);
            for st in &report.stages {
                ensure!(st.pass(), "stage {} diverges: {:?} {:?}", st.index, st.first_divergence, st.error);
                ensure!(
                    st.on_target == st.requested,
                    "stage {}: {} of {} on target",
                    st.index,
                    st.on_target,
                    st.requested
                );
            }
            ensure!(report.pass());
        }
        Some(x) => {
            ensure!(
                failing(&report.per_operator) == vec![x.to_string()],
                "failing: {:?}",
                failing(&report.per_operator)
            );
            ensure!(s.first_failing_operator.as_ref().map(|d| d.node.as_str()) == Some(x));
            let first = s.first_divergence.as_ref().context("no divergence found")?;
            ensure!(first.node == x, "first divergence {first:?}, expected {x}");
            let stage = first.stage.context("divergence without stage")?;
            // The first diverging stage is the first that moves x to the target.
            for st in &report.stages[..stage] {
                ensure!(st.pass(), "stage {} diverges before {x} moved", st.index);
            }
            let st = &report.stages[stage];
            let on = st.nodes.iter().find(|n| n.node == x).context("node missing")?;
            ensure!(on.backend == target.name(), "{x} ran on {}", on.backend);
            ensure!(!report.pass());
        }
    }
    // The report serialises and renders without external assets.
    let json = report.to_json()?;
    let back: Report = serde_json::from_str(&json)?;
    ensure!(back.summary == report.summary);
    let html = report.to_html();
    ensure!(html.contains("<svg") && html.contains("<script>") && !html.contains("http://") && !html.contains("src="));
    if let Some(x) = fault {
        ensure!(html.contains(x));
    }
    Ok(report)
}

#[test]
fn built_model_passes_on_the_reference_target() -> anyhow::Result<()> {
    let m = conv_mlp();
    check(&m, &conv_mlp_inputs(), reference(), StagePlan::Ranges(3), None)?;
    check(&m, &conv_mlp_inputs(), reference(), StagePlan::ByOp, None)?;
    // The name-based entry point resolves the target itself.
    let stages = staged(&m, &conv_mlp_inputs(), "reference", StagePlan::Ranges(7))?;
    ensure!(stages.len() == 7 && stages.iter().all(|s| s.pass()));
    Ok(())
}

#[test]
fn built_model_fault_is_named_in_both_phases() -> anyhow::Result<()> {
    let m = conv_mlp();
    for x in ["conv1", "mm1", "add2"] {
        let faulty: Arc<dyn Backend> = Arc::new(FaultInjector::new(reference(), x));
        let r = check(&m, &conv_mlp_inputs(), faulty.clone(), StagePlan::Ranges(3), Some(x))?;
        // Downstream values diverge too, but the first is x.
        ensure!(r.stages.last().is_some_and(|s| !s.outputs.iter().all(|o| o.comparison.pass)));
        check(&m, &conv_mlp_inputs(), faulty, StagePlan::ByOp, Some(x))?;
    }
    Ok(())
}

#[test]
fn bad_plans_and_inputs_are_errors() {
    let m = conv_mlp();
    assert!(StagePlan::Ranges(0).stages(&m).is_err());
    assert_eq!(StagePlan::Ranges(100).stages(&m).map(|s| s.len()).ok(), Some(7));
    assert!(carve(&m, &[]).is_err());
    let extra = vec![conv_mlp_inputs().remove(0), ("nope", Value::Tensor(Tensor::from_f32(vec![1], &[0.0]).unwrap()))];
    assert!(carve(&m, &extra).is_err());
}

fn real_model(case: &str) -> anyhow::Result<(Model, Vec<(String, Value)>)> {
    let dir = strata_conformance::data_root().join("onnx-models").join(case);
    let path = dir.join("model.onnx");
    if !path.exists() {
        bail!("{} is missing: run `cargo xtask fetch-data`", path.display());
    }
    let model = strata_onnx::import_path(&path)?;
    let g = model.main_graph();
    let mut inputs = Vec::new();
    for (k, &id) in g.inputs.iter().enumerate() {
        let f = dir.join("test_data_set_0").join(format!("input_{k}.pb"));
        let v =
            strata_onnx::decode_value(&std::fs::read(&f).with_context(|| f.display().to_string())?, &g.value(id).ty)?;
        inputs.push((g.value(id).name.clone(), v));
    }
    Ok((model, inputs))
}

#[test]
fn real_model_passes_and_names_an_injected_fault() -> anyhow::Result<()> {
    let (model, inputs) = real_model("ppocr_mobile_v2_cls")?;
    let inputs: Vec<(&str, Value)> = inputs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    check(&model, &inputs, reference(), StagePlan::Ranges(3), None)?;
    // A Conv in the middle of the network.
    let g = model.main_graph();
    let convs: Vec<&str> = g.nodes.iter().filter(|n| n.op.name() == "Conv").map(|n| n.name.as_str()).collect();
    ensure!(convs.len() > 4, "expected a convolutional model");
    let x = convs[convs.len() / 2];
    let faulty: Arc<dyn Backend> = Arc::new(FaultInjector::new(reference(), x));
    let r = check(&model, &inputs, faulty, StagePlan::Ranges(3), Some(x))?;
    println!("fault in {x}: first divergence {:?}", r.summary.first_divergence);
    Ok(())
}

/// The optimised CPU backend brought up on every real model: each node run
/// alone on carved reference activations must pass its tolerance rule (only
/// nodes with subgraphs may stay elsewhere), and every stage must agree.
#[test]
fn every_real_model_passes_per_operator_and_staged_on_the_cpu_backend() -> anyhow::Result<()> {
    let root = strata_conformance::data_root().join("onnx-models");
    let mut cases: Vec<String> = std::fs::read_dir(&root)
        .with_context(|| format!("{}: run `cargo xtask fetch-data`", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("model.onnx").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    ensure!(!cases.is_empty(), "no models in {}: run `cargo xtask fetch-data`", root.display());
    let cpu = strata::create_backend("cpu")?;
    for case in &cases {
        let (model, inputs) = real_model(case)?;
        let inputs: Vec<(&str, Value)> = inputs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let carved = carve(&model, &inputs)?;
        let ops = per_operator(&model, &carved, cpu.as_ref());
        let g = model.main_graph();
        for r in &ops {
            let node = g.nodes.iter().find(|n| n.name == r.node).context("report names an unknown node")?;
            match r.status {
                Status::Pass | Status::Host => {}
                Status::Unsupported if !node.op.subgraphs().is_empty() => {}
                other => bail!("{case}: node '{}' ({}) is {other:?} on cpu", r.node, node.op.name()),
            }
        }
        let stages = staged_with(&model, &inputs, &carved, cpu.clone(), &StagePlan::Ranges(3), &mut |_| {})?;
        for st in &stages {
            ensure!(st.pass(), "{case}: stage {} diverges: {:?} {:?}", st.index, st.first_divergence, st.error);
        }
        println!("{case}: {} nodes pass per operator and in 3 stages on cpu", ops.len());
    }
    Ok(())
}

/// On a backend that fuses (cpu), a stage runs the fused kernels: nodes
/// inside a fused group are judged by the group's output, and a fault inside
/// a group is reported at the group, naming it.
#[test]
fn a_fault_inside_a_fused_group_is_localised_to_the_group() -> anyhow::Result<()> {
    let m = conv_mlp();
    let cpu = strata::create_backend("cpu")?;
    let carved = carve(&m, &conv_mlp_inputs())?;
    // Fault-free: every stage passes with the groups fused.
    let stages = staged_with(&m, &conv_mlp_inputs(), &carved, cpu.clone(), &StagePlan::Ranges(2), &mut |_| {})?;
    ensure!(stages.iter().all(|s| s.pass()), "{:?}", stages.iter().map(|s| &s.first_divergence).collect::<Vec<_>>());
    let inside = stages.last().context("stages")?.nodes.iter().find(|n| n.node == "mm1").context("mm1")?;
    ensure!(
        inside.reason.is_none()
            && inside.outputs.iter().all(|o| o
                .comparison
                .message
                .as_deref()
                .is_some_and(|m| m.contains("fused group"))),
        "{inside:?}"
    );
    // A fault in MatMul, fused with the Add and Relu after it.
    let faulty: Arc<dyn Backend> = Arc::new(FaultInjector::new(cpu, "mm1"));
    let stages = staged_with(&m, &conv_mlp_inputs(), &carved, faulty, &StagePlan::Ranges(1), &mut |_| {})?;
    let first = stages[0].first_divergence.as_ref().context("the fault is found")?;
    ensure!(first.node == "mm1", "{first:?}");
    let node = stages[0].nodes.iter().find(|n| n.node == "mm1").context("mm1")?;
    ensure!(node.reason.as_deref().is_some_and(|r| r.contains("fused group mm1+")), "{node:?}");
    Ok(())
}

/// The tie-breaker on `conv_mlp` with burn as the third opinion, against the
/// optimised CPU target: returns the report and the JSON of the one failing node.
#[cfg(feature = "burn")]
fn judged(carved: &strata_migrate::Carved, target: Arc<dyn Backend>) -> anyhow::Result<(Report, String)> {
    let m = conv_mlp();
    let burn = strata::create_backend("burn")?;
    let ops = strata_migrate::per_operator_judged(&m, carved, target.as_ref(), Some(burn.as_ref()), &mut |_, _, _| {});
    let report = Report::new("conv_mlp", target.name(), "none", ops, vec![]);
    // Only the failing node is judged, by burn.
    for r in &report.per_operator {
        ensure!(r.third_opinion.is_some() == (r.status == Status::Fail), "node {}: {:?}", r.node, r.third_opinion);
    }
    let failing = report.per_operator.iter().find(|r| r.status == Status::Fail).context("no failing node")?;
    let json = serde_json::to_string_pretty(failing)?;
    println!("{json}");
    // The report round-trips and shows the opinion in JSON and HTML.
    let back: Report = serde_json::from_str(&report.to_json()?)?;
    ensure!(back == report);
    Ok((report, json))
}

#[cfg(feature = "burn")]
#[test]
fn third_opinion_blames_a_faulty_target() -> anyhow::Result<()> {
    use strata_migrate::Side;
    use strata_migrate::fault::FAULT_OFFSET;
    let m = conv_mlp();
    let carved = carve(&m, &conv_mlp_inputs())?;
    for x in ["conv1", "mm1"] {
        let target: Arc<dyn Backend> = Arc::new(FaultInjector::new(strata::create_backend("cpu")?, x));
        let (report, json) = judged(&carved, target)?;
        ensure!(failing(&report.per_operator) == vec![x.to_string()], "{:?}", failing(&report.per_operator));
        let r = report.per_operator.iter().find(|r| r.node == x).context("node")?;
        let o = r.third_opinion.as_ref().context("no opinion")?;
        ensure!(o.backend == "burn" && o.agrees_with == Side::Reference, "{o:?}");
        let (to_ref, to_target) = (o.vs_reference.context("vs ref")?, o.vs_target.context("vs target")?);
        // burn lands on the reference; the target is off by the injected fault.
        ensure!(to_ref < 1e-3, "burn vs reference {to_ref}");
        ensure!((to_target - FAULT_OFFSET).abs() < 1e-3, "burn vs target {to_target}");
        ensure!(json.contains("\"agrees_with\": \"reference\""));
        let t = report.summary.third_opinion.as_ref().context("no summary")?;
        ensure!((t.asked, t.reference, t.target, t.neither, t.unsupported) == (1, 1, 0, 0, 0), "{t:?}");
        let html = report.to_html();
        ensure!(html.contains("burn sides with reference") && html.contains("Third opinion"));
    }
    Ok(())
}

#[cfg(feature = "burn")]
#[test]
fn third_opinion_sides_with_the_target_against_a_faulty_reference() -> anyhow::Result<()> {
    use strata_migrate::Side;
    use strata_migrate::fault::{FAULT_OFFSET, carve_with_reference_fault};
    let m = conv_mlp();
    for x in ["conv2", "add1"] {
        let carved = carve_with_reference_fault(&m, &conv_mlp_inputs(), x)?;
        let (report, json) = judged(&carved, strata::create_backend("cpu")?)?;
        // Later nodes read the faulty value as their carved input, so only x fails.
        ensure!(failing(&report.per_operator) == vec![x.to_string()], "{:?}", failing(&report.per_operator));
        let r = report.per_operator.iter().find(|r| r.node == x).context("node")?;
        let o = r.third_opinion.as_ref().context("no opinion")?;
        ensure!(o.agrees_with == Side::Target, "{o:?}");
        let (to_ref, to_target) = (o.vs_reference.context("vs ref")?, o.vs_target.context("vs target")?);
        ensure!((to_ref - FAULT_OFFSET).abs() < 1e-3, "burn vs reference {to_ref}");
        ensure!(to_target < 1e-3, "burn vs target {to_target}");
        ensure!(json.contains("\"agrees_with\": \"target\""));
        let t = report.summary.third_opinion.as_ref().context("no summary")?;
        ensure!((t.asked, t.reference, t.target) == (1, 0, 1), "{t:?}");
        ensure!(report.to_html().contains("burn sides with target"));
    }
    Ok(())
}

/// Without a third opinion nothing is judged and the JSON has no such field.
#[test]
fn no_third_opinion_without_a_judge() -> anyhow::Result<()> {
    let m = conv_mlp();
    let carved = strata_migrate::fault::carve_with_reference_fault(&m, &conv_mlp_inputs(), "mm1")?;
    let ops = strata_migrate::per_operator_judged(&m, &carved, reference().as_ref(), None, &mut |_, _, _| {});
    ensure!(failing(&ops) == vec!["mm1".to_string()]);
    let report = Report::new("conv_mlp", "reference", "none", ops, vec![]);
    ensure!(report.summary.third_opinion.is_none());
    ensure!(!report.to_json()?.contains("third_opinion"));
    Ok(())
}
