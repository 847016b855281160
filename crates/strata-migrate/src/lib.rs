//! Top-down bring-up of a new Strata backend.
//!
//! The whole model first runs on the reference backend; then:
//!
//! 1. [`carve`]: record every main-graph node's real inputs and outputs from
//!    a reference run;
//! 2. [`per_operator`]: run each node alone on the target backend with its
//!    carved inputs and compare with its carved outputs (errors do not
//!    cascade); nodes the target does not support are reported as
//!    unsupported, not as failures;
//! 3. [`staged`]: move nodes to the target in cumulative stages (by
//!    topological range or by op kind), run the mixed graph end to end with a
//!    [`strata::Session`] whose placement puts the stage's nodes on the target
//!    and the rest on the reference, and compare every intermediate value and
//!    the final outputs with the reference run; name the first stage and node
//!    that diverge;
//! 4. [`Report`]: both phases as JSON and as a self-contained HTML page.
//!
//! Every comparison uses the tolerance policy of
//! [`strata_conformance::tolerance`]. [`fault::FaultInjector`] wraps any
//! backend and perturbs the outputs of one named node, to prove that the
//! report names exactly that node.

pub mod fault;
mod html;
mod output;
pub mod report;
pub mod third;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use strata::ir::{Graph, GraphId, Model, NodeId, ValueId};
use strata::{Backend, Session, SessionOptions, Support, Value, block_on};
use strata_conformance::tolerance::{Comparison, Rule, compare_with_rule, node_rule};

pub use report::{Divergence, NodeReport, OutputReport, Report, StageReport, Status, Summary};
pub use third::{Side, ThirdOpinion, ThirdSummary};

/// Errors of the bring-up tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The reference run used for carving failed.
    #[error("reference run failed: {0}")]
    Reference(String),
    /// Inputs do not match the model.
    #[error("invalid input: {0}")]
    Input(String),
    /// The stage plan cannot be applied to the model.
    #[error("invalid stage plan: {0}")]
    Plan(String),
    /// Creating a backend or a session failed.
    #[error(transparent)]
    Strata(#[from] strata::Error),
    /// Writing a report failed.
    #[error("{0}")]
    Io(String),
}

/// Every value of the main graph seen in one reference run.
#[derive(Debug, Clone, Default)]
pub struct Carved {
    /// Host value of each main-graph value, by [`ValueId`] index (graph
    /// inputs and node outputs; `None` for initializers, unused optional
    /// outputs and values of other graphs).
    pub values: Vec<Option<Value>>,
    /// The model's final outputs, in order.
    pub outputs: Vec<Value>,
}

impl Carved {
    /// The value of `id` in the main graph: carved, or the initializer.
    pub fn value(&self, g: &Graph, id: ValueId) -> Option<Value> {
        if let Some(Some(v)) = self.values.get(id.0 as usize) {
            return Some(v.clone());
        }
        g.initializer(id).map(|t| Value::Tensor(t.clone()))
    }

    /// Inputs of node `n` of the main graph, by position.
    pub fn node_inputs(&self, g: &Graph, n: NodeId) -> Vec<Option<Value>> {
        g.node(n).inputs.iter().map(|o| o.and_then(|id| self.value(g, id))).collect()
    }

    /// Outputs of node `n` of the main graph, by position.
    pub fn node_outputs(&self, g: &Graph, n: NodeId) -> Vec<Option<Value>> {
        g.node(n).outputs.iter().map(|o| o.and_then(|id| self.value(g, id))).collect()
    }
}

struct Recorder<'a> {
    main: GraphId,
    graph: &'a Graph,
    values: Vec<Option<Value>>,
    error: Option<String>,
}

impl strata_reference::Observer for Recorder<'_> {
    fn on_node(
        &mut self,
        graph: GraphId,
        node: NodeId,
        _inputs: &[Option<strata_reference::Value>],
        outputs: &[Option<strata_reference::Value>],
    ) {
        if graph != self.main || self.error.is_some() {
            return;
        }
        let n = self.graph.node(node);
        for (slot, v) in n.outputs.iter().zip(outputs) {
            if let (Some(id), Some(v)) = (slot, v) {
                match v.to_host() {
                    Ok(h) => self.values[id.0 as usize] = Some(h),
                    Err(e) => self.error = Some(format!("node '{}': {}", n.name, e.0)),
                }
            }
        }
    }
}

/// Order named inputs as the model's main graph declares them.
fn ordered_inputs(model: &Model, inputs: &[(&str, Value)]) -> Result<Vec<Value>, MigrateError> {
    let g = model.main_graph();
    let mut out = Vec::with_capacity(g.inputs.len());
    for &id in &g.inputs {
        let name = &g.value(id).name;
        let v = inputs
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| MigrateError::Input(format!("missing input '{name}'")))?;
        out.push(v.1.clone());
    }
    if let Some((n, _)) = inputs.iter().find(|(n, _)| !g.inputs.iter().any(|&id| g.value(id).name == *n)) {
        return Err(MigrateError::Input(format!("'{n}' is not an input of the model")));
    }
    Ok(out)
}

/// Run `model` on the reference interpreter and record every main-graph
/// value (graph inputs and all node outputs).
pub fn carve(model: &Model, inputs: &[(&str, Value)]) -> Result<Carved, MigrateError> {
    model.validate().map_err(|e| MigrateError::Reference(e.to_string()))?;
    let g = model.main_graph();
    let host = ordered_inputs(model, inputs)?;
    let mut rec = Recorder { main: model.main, graph: g, values: vec![None; g.values.len()], error: None };
    for (&id, v) in g.inputs.iter().zip(&host) {
        rec.values[id.0 as usize] = Some(v.clone());
    }
    let ins = host
        .iter()
        .map(strata_reference::Value::from_host)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| MigrateError::Input(e.0))?;
    let outs = {
        let interp = strata_reference::Interpreter::new(model)
            .map_err(|e| MigrateError::Reference(e.to_string()))?
            .with_observer(&mut rec);
        interp.run_graph(model.main, ins, vec![]).map_err(|e| MigrateError::Reference(e.to_string()))?
    };
    if let Some(e) = rec.error {
        return Err(MigrateError::Reference(e));
    }
    let outputs =
        outs.iter().map(|v| v.to_host().map_err(|e| MigrateError::Reference(e.0))).collect::<Result<Vec<_>, _>>()?;
    Ok(Carved { values: rec.values, outputs })
}

/// Node `n` of the main graph as a model of its own: its non-constant inputs
/// (and values its subgraphs capture) become graph inputs, the initializers
/// it reads stay initializers, its outputs are the graph outputs. Returns the
/// model and its input value ids.
pub fn single_node_model(model: &Model, n: NodeId) -> (Model, Vec<ValueId>) {
    let g = model.main_graph();
    let node = g.node(n);
    let mut reads: Vec<ValueId> = node.inputs.iter().flatten().copied().collect();
    for sg in node.op.subgraphs() {
        reads.extend(model.graph(sg).captures.iter().map(|(o, _)| *o));
    }
    let mut inputs: Vec<ValueId> = Vec::new();
    let mut consts: Vec<ValueId> = Vec::new();
    for v in reads {
        if g.initializer(v).is_some() {
            if !consts.contains(&v) {
                consts.push(v);
            }
        } else if !inputs.contains(&v) {
            inputs.push(v);
        }
    }
    let mut sub = model.clone();
    let main = sub.graph_mut(model.main);
    main.nodes = vec![node.clone()];
    main.initializers.retain(|(v, _)| consts.contains(v) && !inputs.contains(v));
    main.inputs = inputs.clone();
    main.outputs = node.outputs.iter().flatten().copied().collect();
    (sub, inputs)
}

fn as_refs(v: &[Option<Value>]) -> Vec<Option<&Value>> {
    v.iter().map(|o| o.as_ref()).collect()
}

/// Compare a node's actual outputs (by position) with its carved outputs,
/// under the tolerance policy for the node's operator. In a staged run
/// (`staged`), a float output also carries the rounding error of every
/// upstream node that ran on the target, so it passes if it meets either the
/// node's own rule or the end-to-end rule of the policy
/// ([`strata_conformance::tolerance::propagated_rule`]).
fn compare_node(
    g: &Graph,
    n: NodeId,
    carved_in: &[Option<Value>],
    carved_out: &[Option<Value>],
    actual: &[Option<Value>],
    staged: bool,
) -> Vec<OutputReport> {
    let node = g.node(n);
    let (ins, outs) = (as_refs(carved_in), as_refs(carved_out));
    let mut reports = Vec::new();
    for (i, slot) in node.outputs.iter().enumerate() {
        let Some(id) = slot else { continue };
        let name = g.value(*id).name.clone();
        let expected = carved_out.get(i).and_then(|v| v.as_ref());
        let got = actual.get(i).and_then(|v| v.as_ref());
        let comparison = match (got, expected) {
            (Some(a), Some(e)) => {
                let dtype = e.as_tensor().map(|t| t.dtype()).unwrap_or(strata::DType::F32);
                let (rule, scale) = node_rule(&node.op, dtype, &ins, &outs);
                let own = compare_with_rule(a, e, rule, scale);
                match strata_conformance::tolerance::propagated_rule(dtype) {
                    Some((loose, loose_scale)) if staged && !own.pass => {
                        let c = compare_with_rule(a, e, loose, loose_scale(e));
                        if c.pass { c } else { own }
                    }
                    _ => own,
                }
            }
            (None, _) => missing(Rule::Exact, "the target produced no value"),
            (Some(_), None) => missing(Rule::Exact, "the reference run produced no value"),
        };
        reports.push(OutputReport { name, comparison });
    }
    reports
}

fn missing(rule: Rule, why: &str) -> Comparison {
    Comparison {
        rule: rule.describe(),
        pass: false,
        max_abs: f64::MAX,
        max_rel: f64::MAX,
        max_ulp: u64::MAX,
        elements: 0,
        mismatches: 0,
        message: Some(why.to_string()),
    }
}

/// Run one node alone on `target` with its carved inputs; also returns the
/// target's outputs by position when it ran.
fn run_single(
    model: &Model,
    carved: &Carved,
    n: NodeId,
    target: &dyn Backend,
    host: &[Option<String>],
) -> (NodeReport, Option<Vec<Option<Value>>>) {
    let g = model.main_graph();
    let node = g.node(n);
    let mut report = NodeReport::new(n.0 as usize, &node.name, node.op.name(), target.name());
    if let Err(reason) = supports_alone(model, n, target) {
        let host = if target.is_device() { host.get(n.0 as usize).cloned().flatten() } else { None };
        report.status = if host.is_some() { Status::Host } else { Status::Unsupported };
        report.reason = Some(match host {
            Some(why) => format!("{why} ({}: {reason})", target.name()),
            None => reason,
        });
        return (report, None);
    }
    let result = run_alone(model, carved, n, target);
    match result {
        Err(e) => {
            report.status = Status::Error;
            report.reason = Some(e);
            (report, None)
        }
        Ok(actual) => {
            let carved_in = carved.node_inputs(g, n);
            let carved_out = carved.node_outputs(g, n);
            report.set_outputs(compare_node(g, n, &carved_in, &carved_out, &actual, false));
            (report, Some(actual))
        }
    }
}

/// Whether `target` runs node `n` alone (as [`single_node_model`]), or why not.
fn supports_alone(model: &Model, n: NodeId, target: &dyn Backend) -> Result<(), String> {
    let (sub, _) = single_node_model(model, n);
    match target.supports(&sub, sub.main, NodeId(0)) {
        Support::No(reason) => Err(reason),
        Support::Yes => Ok(()),
    }
}

/// Node `n` alone on `target` with its carved inputs: its outputs by position.
fn run_alone(model: &Model, carved: &Carved, n: NodeId, target: &dyn Backend) -> Result<Vec<Option<Value>>, String> {
    let g = model.main_graph();
    let node = g.node(n);
    let (sub, input_ids) = single_node_model(model, n);
    {
        let mut staged = Vec::with_capacity(input_ids.len());
        for &id in &input_ids {
            let v = carved.value(g, id).ok_or_else(|| format!("no carved value for input '{}'", g.value(id).name))?;
            staged.push(target.upload(&v).map_err(|e| format!("upload: {e}"))?);
        }
        let compiled = target.compile(Arc::new(sub)).map_err(|e| format!("compile: {e}"))?;
        let outs = block_on(compiled.run(staged.iter().collect())).map_err(|e| format!("run: {e}"))?;
        let mut host = Vec::with_capacity(outs.len());
        for d in &outs {
            host.push(block_on(target.download(d)).map_err(|e| format!("download: {e}"))?);
        }
        // Map the flattened graph outputs back to output positions.
        let mut it = host.into_iter();
        Ok(node.outputs.iter().map(|o| o.and_then(|_| it.next())).collect())
    }
}

/// Run every main-graph node alone on `target` with its carved inputs and
/// compare with its carved outputs.
pub fn per_operator(model: &Model, carved: &Carved, target: &dyn Backend) -> Vec<NodeReport> {
    per_operator_with_progress(model, carved, target, &mut |_, _, _| {})
}

/// [`per_operator`], calling `progress(done, total, report)` after each node.
pub fn per_operator_with_progress(
    model: &Model,
    carved: &Carved,
    target: &dyn Backend,
    progress: &mut dyn FnMut(usize, usize, &NodeReport),
) -> Vec<NodeReport> {
    per_operator_judged(model, carved, target, None, progress)
}

/// [`per_operator_with_progress`] with a third opinion: wherever the target
/// and the reference disagree beyond tolerance, `third` (another backend,
/// such as `burn`, resolved with [`strata::create_backend`]) runs the node
/// on the same carved inputs, and the report records which of the two it
/// agrees with ([`third::ThirdOpinion`]).
pub fn per_operator_judged(
    model: &Model,
    carved: &Carved,
    target: &dyn Backend,
    third: Option<&dyn Backend>,
    progress: &mut dyn FnMut(usize, usize, &NodeReport),
) -> Vec<NodeReport> {
    let g = model.main_graph();
    let total = g.nodes.len();
    let mut reports = Vec::with_capacity(total);
    // Host work by design (control flow, shape bookkeeping), found once.
    let host = strata::host_side_nodes(model);
    for n in g.node_ids() {
        let (mut r, actual) = run_single(model, carved, n, target, &host);
        if let (Some(judge), Some(actual), Status::Fail) = (third, &actual, r.status) {
            r.third_opinion = Some(third::judge(model, carved, n, judge, actual));
        }
        progress(reports.len() + 1, total, &r);
        reports.push(r);
    }
    reports
}

/// How nodes move to the target, stage by stage. Stages are cumulative:
/// stage `k` places on the target every node of stages `0..=k`, so the first
/// diverging stage is the one that introduced the faulty node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StagePlan {
    /// Split the main graph's nodes (in topological order) into this many
    /// ranges of (nearly) equal size.
    Ranges(usize),
    /// One stage per op kind, in order of first appearance.
    ByOp,
}

/// One stage of a plan: its label and the (cumulative) nodes on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Human-readable label (`nodes 0..141`, `+Conv`).
    pub label: String,
    /// Names of the main-graph nodes placed on the target.
    pub nodes: BTreeSet<String>,
}

impl StagePlan {
    /// The stages of this plan for `model`.
    pub fn stages(&self, model: &Model) -> Result<Vec<Stage>, MigrateError> {
        let g = model.main_graph();
        let len = g.nodes.len();
        let mut stages = Vec::new();
        match self {
            StagePlan::Ranges(0) => return Err(MigrateError::Plan("the number of stages must be at least 1".into())),
            StagePlan::Ranges(n) => {
                let n = (*n).min(len.max(1));
                let mut set = BTreeSet::new();
                for k in 0..n {
                    let (start, end) = (k * len / n, (k + 1) * len / n);
                    set.extend(g.nodes[start..end].iter().map(|x| x.name.clone()));
                    stages.push(Stage { label: format!("nodes {start}..{end}"), nodes: set.clone() });
                }
            }
            StagePlan::ByOp => {
                let mut kinds: Vec<&str> = Vec::new();
                for x in &g.nodes {
                    if !kinds.contains(&x.op.name()) {
                        kinds.push(x.op.name());
                    }
                }
                let mut set = BTreeSet::new();
                for k in kinds {
                    set.extend(g.nodes.iter().filter(|x| x.op.name() == k).map(|x| x.name.clone()));
                    stages.push(Stage { label: format!("+{k}"), nodes: set.clone() });
                }
            }
        }
        Ok(stages)
    }
}

/// A copy of `model` whose main graph also outputs every node output (after
/// the original outputs, in topological order). Returns the model and, for
/// each graph output, its value id.
pub fn expose_all_values(model: &Model) -> (Model, Vec<ValueId>) {
    expose_values_except(model, &BTreeSet::new())
}

/// [`expose_all_values`] except the values in `hidden`.
pub fn expose_values_except(model: &Model, hidden: &BTreeSet<ValueId>) -> (Model, Vec<ValueId>) {
    let mut m = model.clone();
    let main = m.graph_mut(model.main);
    let mut seen: BTreeSet<ValueId> = main.outputs.iter().copied().collect();
    let extra: Vec<ValueId> = main.nodes.iter().flat_map(|n| n.outputs.iter().flatten().copied()).collect();
    for v in extra {
        if !hidden.contains(&v) && seen.insert(v) {
            main.outputs.push(v);
        }
    }
    let outs = main.outputs.clone();
    (m, outs)
}

/// Nodes that `target` runs inside a fused group, except each group's last
/// (whose output is the group's): node name → (the group's nodes joined by
/// `+`, the group's last node). Reads the groups of a session placed like
/// the stage, on the model as given (only its outputs exposed).
fn fused_members(
    model: &Model,
    target: &Arc<dyn Backend>,
    options: &SessionOptions,
) -> HashMap<String, (String, String)> {
    let Ok(s) = Session::from_model_with_backends(model.clone(), vec![target.clone()], options.clone()) else {
        return HashMap::new();
    };
    let mut members = HashMap::new();
    for group in s.fused_groups() {
        let label = group.nodes.join("+");
        // A group that ends in a node of the target's own (not in the
        // model) is left exposed.
        if let Some((last, rest)) = group.nodes.split_last()
            && model.main_graph().nodes.iter().any(|n| n.name == *last)
        {
            for n in rest {
                members.insert(n.clone(), (label.clone(), last.clone()));
            }
        }
    }
    members
}

/// Resolve `target_name` with [`strata::create_backend`], carve a reference
/// run and run the staged comparison ([`staged_with`]).
pub fn staged(
    model: &Model,
    inputs: &[(&str, Value)],
    target_name: &str,
    stages: StagePlan,
) -> Result<Vec<StageReport>, MigrateError> {
    let target = strata::create_backend(target_name)?;
    let carved = carve(model, inputs)?;
    staged_with(model, inputs, &carved, target, &stages, &mut |_| {})
}

/// Run each stage of `plan` as a [`Session`] whose placement puts the
/// stage's nodes on `target` (when it supports them) and the rest on the
/// reference; compare every node output and the final outputs with
/// `carved`. `progress` is called after each stage.
pub fn staged_with(
    model: &Model,
    inputs: &[(&str, Value)],
    carved: &Carved,
    target: Arc<dyn Backend>,
    plan: &StagePlan,
    progress: &mut dyn FnMut(&StageReport),
) -> Result<Vec<StageReport>, MigrateError> {
    let stages = plan.stages(model)?;
    let g = model.main_graph();
    let mut names = BTreeSet::new();
    if let Some(n) = g.nodes.iter().find(|n| !names.insert(n.name.as_str())) {
        return Err(MigrateError::Plan(format!("node name '{}' is not unique; placement is by name", n.name)));
    }
    let mut reports = Vec::with_capacity(stages.len());
    for (si, stage) in stages.into_iter().enumerate() {
        let mut report = StageReport {
            index: si,
            label: stage.label.clone(),
            requested: stage.nodes.len(),
            on_target: 0,
            nodes: Vec::new(),
            outputs: Vec::new(),
            first_divergence: None,
            error: None,
        };
        // No folding: the staged graph must keep the carved graph's nodes one for one.
        let options =
            SessionOptions { target_nodes: Some(stage.nodes.clone()), fold_constants: false, ..Default::default() };
        // Values the target fuses away stay unexposed, so the stage runs the
        // fused kernels a user's session runs; a node inside a fused group is
        // judged by the group's output, and a fault there names the group.
        let fused = fused_members(model, &target, &options);
        let hidden: BTreeSet<ValueId> = g
            .nodes
            .iter()
            .filter(|n| fused.contains_key(n.name.as_str()))
            .flat_map(|n| n.outputs.iter().flatten().copied())
            .collect();
        let (exposed, out_ids) = expose_values_except(model, &hidden);
        let run = Session::from_model_with_backends(exposed, vec![target.clone()], options)
            .and_then(|s| Ok((s.placement().to_vec(), s.run(inputs)?)));
        match run {
            Err(e) => report.error = Some(e.to_string()),
            Ok((placement, outs)) => {
                report.on_target =
                    placement.iter().filter(|p| p.backend == target.name() && stage.nodes.contains(&p.node)).count();
                let by_id: HashMap<ValueId, Value> =
                    out_ids.iter().copied().zip(outs.into_iter().map(|(_, v)| v)).collect();
                for n in g.node_ids() {
                    let node = g.node(n);
                    let p = &placement[n.0 as usize];
                    let mut r = NodeReport::new(n.0 as usize, &node.name, node.op.name(), &p.backend);
                    if !fused.contains_key(node.name.as_str()) {
                        let actual: Vec<Option<Value>> =
                            node.outputs.iter().map(|o| o.and_then(|id| by_id.get(&id).cloned())).collect();
                        let carved_in = carved.node_inputs(g, n);
                        let carved_out = carved.node_outputs(g, n);
                        r.set_outputs(compare_node(g, n, &carved_in, &carved_out, &actual, true));
                    }
                    report.nodes.push(r);
                }
                // Members of a fused group take the verdict of its output.
                for i in 0..report.nodes.len() {
                    let Some((label, last)) = fused.get(report.nodes[i].node.as_str()) else { continue };
                    let Some(end) = report.nodes.iter().find(|r| r.node == *last) else { continue };
                    let outputs: Vec<OutputReport> = g.nodes[i]
                        .outputs
                        .iter()
                        .flatten()
                        .map(|v| {
                            let mut comparison =
                                end.outputs.first().map(|o| o.comparison.clone()).unwrap_or_else(|| {
                                    missing(Rule::Exact, "the fused group's output was not compared")
                                });
                            let judged = format!("inside fused group {label}, judged by its output");
                            comparison.message = Some(match comparison.message.take() {
                                Some(m) => format!("{judged}: {m}"),
                                None => judged,
                            });
                            OutputReport { name: g.value(*v).name.clone(), comparison }
                        })
                        .collect();
                    report.nodes[i].set_outputs(outputs);
                }
                report.first_divergence =
                    report.nodes.iter().find(|r| r.status == Status::Fail).map(|r| Divergence::at(r, Some(si)));
                for (k, &id) in g.outputs.iter().enumerate() {
                    let name = g.value(id).name.clone();
                    let producer = g.nodes.iter().position(|x| x.outputs.contains(&Some(id)));
                    let rule = producer.map(|i| report.nodes[i].outputs.iter().find(|o| o.name == name));
                    let comparison = match (rule.flatten(), by_id.get(&id), carved.outputs.get(k)) {
                        (Some(o), _, _) => o.comparison.clone(),
                        (None, Some(a), Some(e)) => compare_with_rule(a, e, Rule::Exact, 0.0),
                        _ => missing(Rule::Exact, "output not computed"),
                    };
                    report.outputs.push(OutputReport { name, comparison });
                }
            }
        }
        progress(&report);
        reports.push(report);
    }
    Ok(reports)
}
