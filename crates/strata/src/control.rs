//! Host control flow: the `If`, `Loop` and `Scan` nodes a session runs
//! itself when a device backend is in use. The host reads the condition or
//! the trip count, feeds each iteration and slices or stacks the scanned
//! values; every branch or body is a session of its own, whose nodes are
//! placed like a model's, so their compute runs on the fast backends (and
//! `strict` placement holds inside them too).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use strata_ir::ops::{ControlOp, Op};
use strata_ir::{GraphId, HostValue, Model, Node, TensorData, ValueId};
use strata_reference::Tensor;
use strata_reference::ops::control::iterate::{ScanInputs, ScanOutputs, empty_scan_output, loop_runs};

use crate::backend::Backend;
use crate::error::Error;
use crate::session::{Session, SessionOptions};

/// A map keyed by value handle, hashed by one multiplication (the
/// session's per-run maps; handles are small dense integers, so SipHash's
/// protection buys nothing there).
pub(crate) type ValueMap<T> = HashMap<ValueId, T, std::hash::BuildHasherDefault<IdHasher>>;

/// The hasher of [`ValueMap`].
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A branch or body: its session and the outer values it captures (fed to
/// its first inputs, in this order; its own formal inputs follow).
pub(crate) type Branch = (Box<Session>, Vec<ValueId>);

/// What the host runs for one control-flow node.
pub(crate) enum Control {
    /// Runs the branch the condition (input 0) chooses.
    If { branches: [Branch; 2] },
    /// Inputs `(M?, cond?, v_initial...)`; body `(iter, cond, v...) -> (cond, v..., scan...)`.
    Loop { body: Branch },
    /// Inputs `(state..., scan_input...)`; body `(state..., slice...) -> (state..., scan_out...)`.
    Scan { body: Branch, num_scan_inputs: usize, axes: ScanAxes },
}

/// Scan's per-input and per-output axes and directions (missing entries are 0).
pub(crate) struct ScanAxes {
    in_axes: Vec<i64>,
    in_dirs: Vec<i64>,
    out_axes: Vec<i64>,
    out_dirs: Vec<i64>,
}

/// A control-flow node the host runs, with its node's input and output slots.
pub(crate) struct HostControl {
    pub control: Control,
    pub node: String,
    pub inputs: Vec<Option<ValueId>>,
    pub outputs: Vec<Option<ValueId>>,
}

/// The subgraphs of a node the host can run as control flow, with their
/// labels in the placement report; `None` for other nodes.
pub(crate) fn host_subgraphs(n: &Node) -> Option<Vec<(&'static str, GraphId)>> {
    match &n.op {
        Op::Control(ControlOp::If { then_branch, else_branch }) => {
            Some(vec![("then_branch", *then_branch), ("else_branch", *else_branch)])
        }
        Op::Control(ControlOp::Loop { body } | ControlOp::Scan { body, .. }) => Some(vec![("body", *body)]),
        _ => None,
    }
}

/// Build what the host runs for control-flow node `n`, given its branch or
/// body sessions (in the order of [`host_subgraphs`]).
pub(crate) fn host_control(n: &Node, mut sessions: Vec<Branch>) -> Result<HostControl, Error> {
    let bad = || Error::Placement(format!("node '{}' ({}) has the wrong number of subgraphs", n.name, n.op.name()));
    let control = match &n.op {
        Op::Control(ControlOp::If { .. }) => {
            let (Some(e), Some(t)) = (sessions.pop(), sessions.pop()) else { return Err(bad()) };
            Control::If { branches: [t, e] }
        }
        Op::Control(ControlOp::Loop { .. }) => Control::Loop { body: sessions.pop().ok_or_else(bad)? },
        Op::Control(ControlOp::Scan {
            num_scan_inputs,
            scan_input_axes,
            scan_input_directions,
            scan_output_axes,
            scan_output_directions,
            ..
        }) => {
            let m = usize::try_from(*num_scan_inputs).ok().filter(|m| (1..=n.inputs.len()).contains(m)).ok_or_else(
                || {
                    Error::Placement(format!(
                        "node '{}' (Scan): num_scan_inputs {num_scan_inputs} does not fit its {} inputs",
                        n.name,
                        n.inputs.len()
                    ))
                },
            )?;
            let list = |l: &Option<Vec<i64>>| l.clone().unwrap_or_default();
            Control::Scan {
                body: sessions.pop().ok_or_else(bad)?,
                num_scan_inputs: m,
                axes: ScanAxes {
                    in_axes: list(scan_input_axes),
                    in_dirs: list(scan_input_directions),
                    out_axes: list(scan_output_axes),
                    out_dirs: list(scan_output_directions),
                },
            }
        }
        _ => return Err(bad()),
    };
    Ok(HostControl { control, node: n.name.clone(), inputs: n.inputs.clone(), outputs: n.outputs.clone() })
}

impl HostControl {
    /// The branch or body sessions, labelled as in the placement report.
    pub fn branches(&self) -> Vec<(&'static str, &Session)> {
        match &self.control {
            Control::If { branches: [t, e] } => vec![("then_branch", &*t.0), ("else_branch", &*e.0)],
            Control::Loop { body } | Control::Scan { body, .. } => vec![("body", &*body.0)],
        }
    }

    /// The outer values the partition reads: the node's inputs, then the
    /// branches' captures (each once).
    pub fn reads(&self) -> Vec<ValueId> {
        let bodies: Vec<&Branch> = match &self.control {
            Control::If { branches } => branches.iter().collect(),
            Control::Loop { body } | Control::Scan { body, .. } => vec![body],
        };
        let mut reads = Vec::new();
        for v in self.inputs.iter().flatten().chain(bodies.iter().flat_map(|b| &b.1)) {
            if !reads.contains(v) {
                reads.push(*v);
            }
        }
        reads
    }

    /// Run with the values of [`HostControl::reads`]; returns one value per
    /// output slot (`None` for omitted outputs).
    pub async fn run(&self, vals: &ValueMap<HostValue>, max_iterations: u64) -> Result<Vec<Option<HostValue>>, Error> {
        let ins: Vec<Option<&HostValue>> = self.inputs.iter().map(|v| v.and_then(|v| vals.get(&v))).collect();
        let n_out = self.outputs.len();
        let outs = match &self.control {
            Control::If { branches } => {
                let cond = match ins.first().copied().flatten() {
                    Some(HostValue::Tensor(t)) if t.numel() == 1 => t.to_f64_vec()[0] != 0.0,
                    Some(other) => {
                        return Err(
                            self.fail(format!("the condition must be a one-element tensor, got {}", other.describe()))
                        );
                    }
                    None => return Err(self.fail("the condition is missing".into())),
                };
                let branch = &branches[usize::from(!cond)];
                let outs = self.run_body(branch, vals, Vec::new()).await?;
                if outs.len() != n_out {
                    return Err(self.fail(format!(
                        "branch '{}' gives {} outputs, the node declares {n_out}",
                        branch.0.model().main_graph().name,
                        outs.len()
                    )));
                }
                outs
            }
            Control::Loop { body } => self.run_loop(body, &ins, vals, max_iterations).await?,
            Control::Scan { body, num_scan_inputs, axes } => {
                self.run_scan(body, *num_scan_inputs, axes, &ins, vals).await?
            }
        };
        Ok(self.outputs.iter().zip(outs.into_iter().map(Some).chain(std::iter::repeat(None))).map(|(_, v)| v).collect())
    }

    fn fail(&self, msg: String) -> Error {
        let op = match self.control {
            Control::If { .. } => "If",
            Control::Loop { .. } => "Loop",
            Control::Scan { .. } => "Scan",
        };
        Error::Backend(format!("node '{}' ({op}): {msg}", self.node))
    }

    /// Run a branch or body with its captures and `formals`.
    async fn run_body(
        &self,
        (session, caps): &Branch,
        vals: &ValueMap<HostValue>,
        formals: Vec<HostValue>,
    ) -> Result<Vec<HostValue>, Error> {
        let mut args = Vec::with_capacity(caps.len() + formals.len());
        for v in caps {
            let h = vals.get(v).ok_or_else(|| self.fail("a captured value is not available".into()))?;
            args.push(h.clone());
        }
        args.extend(formals);
        if args.len() != session.inputs().len() {
            return Err(self.fail(format!("its body takes {} inputs, {} given", session.inputs().len(), args.len())));
        }
        let feeds: Vec<(&str, HostValue)> =
            session.inputs().iter().zip(args).map(|(info, v)| (info.name.as_str(), v)).collect();
        let outs = Box::pin(session.run_async(&feeds)).await?;
        Ok(outs.into_iter().map(|(_, v)| v).collect())
    }

    /// Loop, by the rules of `strata_reference::ops::control::iterate`.
    async fn run_loop(
        &self,
        body: &Branch,
        ins: &[Option<&HostValue>],
        vals: &ValueMap<HostValue>,
        max_iterations: u64,
    ) -> Result<Vec<HostValue>, Error> {
        let scalar = |v: Option<&HostValue>, what: &str| -> Result<Option<i64>, Error> {
            match v {
                None => Ok(None),
                Some(HostValue::Tensor(t)) if t.numel() == 1 && t.dtype().is_int() => Ok(Some(t.to_i64_vec()[0])),
                Some(HostValue::Tensor(t)) if t.numel() == 1 && t.dtype() == strata_ir::DType::Bool => {
                    Ok(Some(i64::from(t.to_f64_vec()[0] != 0.0)))
                }
                Some(other) => Err(self.fail(format!("{what} must be a single number, got {}", other.describe()))),
            }
        };
        let max_trips = scalar(ins.first().copied().flatten(), "M")?;
        let cond_input = scalar(ins.get(1).copied().flatten(), "cond")?.map(|c| c != 0);
        let mut carried = Vec::new();
        for (i, v) in ins.iter().enumerate().skip(2) {
            carried.push(v.ok_or_else(|| self.fail(format!("loop-carried input {i} is missing")))?.clone());
        }
        let n_carried = carried.len();
        let mut cond = cond_input.unwrap_or(true);
        let mut scans = ScanOutputs::default();
        let mut iter: i64 = 0;
        while loop_runs(max_trips, cond_input, cond, iter, max_iterations).map_err(|e| self.fail(e.to_string()))? {
            let mut formals = vec![tensor(TensorData::from_i64(vec![], &[iter]))?, bool_scalar(cond)?];
            formals.append(&mut carried);
            let outs = self.run_body(body, vals, formals).await?;
            if outs.len() < 1 + n_carried {
                return Err(self.fail(format!(
                    "its body returned {} values, expected at least {}",
                    outs.len(),
                    1 + n_carried
                )));
            }
            let mut outs = outs.into_iter();
            cond = scalar(outs.next().as_ref(), "the body's condition")?.is_some_and(|c| c != 0);
            carried = outs.by_ref().take(n_carried).collect();
            self.collect_scans(&mut scans, outs.collect())?;
            iter += 1;
        }
        let mut outputs = carried;
        if iter == 0 {
            for j in n_carried..self.outputs.len() {
                outputs.push(self.empty_output(body, 1 + j)?);
            }
        } else {
            let stacked = scans.stack_loop().map_err(|e| self.fail(format!("stacking scan outputs: {e}")))?;
            outputs.extend(stacked.iter().map(host_tensor).collect::<Result<Vec<_>, _>>()?);
        }
        Ok(outputs)
    }

    /// Scan (opset 9 and later), by the rules of `strata_reference::ops::control::iterate`.
    async fn run_scan(
        &self,
        body: &Branch,
        m: usize,
        axes: &ScanAxes,
        ins: &[Option<&HostValue>],
        vals: &ValueMap<HostValue>,
    ) -> Result<Vec<HostValue>, Error> {
        let n = ins.len() - m;
        let mut states = Vec::with_capacity(n);
        for (i, v) in ins.iter().take(n).enumerate() {
            states.push(v.ok_or_else(|| self.fail(format!("state input {i} is missing")))?.clone());
        }
        let mut tensors = Vec::with_capacity(m);
        for (j, v) in ins.iter().skip(n).enumerate() {
            match v {
                Some(HostValue::Tensor(t)) => tensors.push(ref_tensor(t)?),
                _ => return Err(self.fail(format!("scan input {j} must be a tensor"))),
            }
        }
        let refs: Vec<&Tensor> = tensors.iter().collect();
        let scan_in =
            ScanInputs::new(&refs, Some(&axes.in_axes), Some(&axes.in_dirs)).map_err(|e| self.fail(e.to_string()))?;
        let mut scans = ScanOutputs::default();
        for it in 0..scan_in.len() {
            let mut formals = std::mem::take(&mut states);
            for slice in scan_in.slices(it).map_err(|e| self.fail(e.to_string()))? {
                formals.push(host_tensor(&slice)?);
            }
            let outs = self.run_body(body, vals, formals).await?;
            if outs.len() < n {
                return Err(self.fail(format!("its body returned {} values, expected at least {n}", outs.len())));
            }
            let mut outs = outs.into_iter();
            states = outs.by_ref().take(n).collect();
            self.collect_scans(&mut scans, outs.collect())?;
        }
        let mut outputs = states;
        if scan_in.is_empty() {
            for j in n..self.outputs.len() {
                outputs.push(self.empty_output(body, j)?);
            }
        }
        let stacked = scans
            .stack_scan(Some(&axes.out_axes), Some(&axes.out_dirs))
            .map_err(|e| self.fail(format!("stacking scan outputs: {e}")))?;
        outputs.extend(stacked.iter().map(host_tensor).collect::<Result<Vec<_>, _>>()?);
        Ok(outputs)
    }

    /// Append one iteration's scan values.
    fn collect_scans(&self, scans: &mut ScanOutputs, vals: Vec<HostValue>) -> Result<(), Error> {
        let mut ts = Vec::with_capacity(vals.len());
        for v in vals {
            match v {
                HostValue::Tensor(t) => ts.push(ref_tensor(&t)?),
                _ => return Err(self.fail("scan outputs must be tensors".into())),
            }
        }
        scans.push(ts).map_err(|e| self.fail(format!("scan outputs: {e}")))
    }

    /// Output `i` of a body that never ran (see `iterate::empty_scan_output`).
    fn empty_output(&self, (session, _): &Branch, i: usize) -> Result<HostValue, Error> {
        let ty = session.outputs().get(i).map(|o| o.ty.clone());
        host_tensor(&empty_scan_output(ty.as_ref()).map_err(|e| self.fail(e.to_string()))?)
    }
}

fn ref_tensor(t: &TensorData) -> Result<Tensor, Error> {
    Tensor::from_host(t).map_err(|e| Error::Backend(e.to_string()))
}

fn host_tensor(t: &Tensor) -> Result<HostValue, Error> {
    t.to_host().map(HostValue::Tensor).map_err(|e| Error::Backend(e.to_string()))
}

fn tensor(t: Result<TensorData, strata_ir::IrError>) -> Result<HostValue, Error> {
    Ok(HostValue::Tensor(t?))
}

fn bool_scalar(b: bool) -> Result<HostValue, Error> {
    tensor(TensorData::from_bytes(
        strata_ir::DType::Bool,
        vec![],
        strata_ir::tensor::Buffer::from_vec(vec![u8::from(b)]),
    ))
}

/// A session for subgraph `gid` (an `If` branch or a loop body): it becomes
/// the main graph, and the outer values it captures become its first inputs
/// (returned, as outer value ids, in input order).
pub(crate) fn branch_session(
    model: &Model,
    gid: GraphId,
    backends: &[Arc<dyn Backend>],
    options: &SessionOptions,
    outer_meta: &HashSet<ValueId>,
) -> Result<Branch, Error> {
    let outer_g = model.main_graph();
    let mut sub = model.clone();
    sub.main = gid;
    // Only the branch and the graphs nested in it belong to the branch's
    // model: the others are emptied (ids stay valid), so the branch's
    // passes neither walk nor copy them (a model with many `If`s would
    // otherwise fold every graph once per branch).
    let mut keep = vec![false; sub.graphs.len()];
    let mut todo = vec![gid];
    while let Some(id) = todo.pop() {
        match keep.get_mut(id.0 as usize) {
            Some(k) if !*k => *k = true,
            _ => continue,
        }
        todo.extend(sub.graph(id).nodes.iter().flat_map(|n| n.op.subgraphs()));
    }
    for (i, g) in sub.graphs.iter_mut().enumerate() {
        if !keep[i] {
            *g = strata_ir::Graph { name: std::mem::take(&mut g.name), ..Default::default() };
        }
    }
    let g = sub.graph_mut(gid);
    let caps = std::mem::take(&mut g.captures);
    let mut inputs = Vec::new();
    let mut outer = Vec::new();
    let mut meta = HashSet::new();
    for (o, inner) in caps {
        // Outer weights are weights of the branch too (so they fold and
        // count as small constants); other captures become inputs.
        if let Some(t) = outer_g.initializer(o) {
            g.initializers.push((inner, t.clone()));
            continue;
        }
        if outer_meta.contains(&o) {
            meta.insert(inner);
        }
        inputs.push(inner);
        outer.push(o);
    }
    inputs.append(&mut g.inputs);
    g.inputs = inputs;
    // A branch of a target node (staged bring-up) moves to the target whole.
    let options = SessionOptions { target_nodes: None, ..options.clone() };
    Ok((Box::new(Session::build(sub, backends.to_vec(), options, meta)?), outer))
}
