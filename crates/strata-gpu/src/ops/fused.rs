//! Fused nodes ([`strata_ir::ops::FusedOp`], made by the IR's fusion pass
//! when this backend compiles a partition with optimisation on, see
//! [`crate::GpuBackend::optimized`]).
//!
//! The elementwise program of a group becomes generated WGSL (`wgsl.rs`).
//! When the producer is a convolution or a matrix product, whose kernels
//! end in an `epilogue` hook, the program is compiled into the producer's
//! kernel and the whole group is ONE dispatch. Otherwise (another
//! producer, no producer, or operands that broadcast the output beyond
//! the producer's shape) the producer runs as its own node would and the
//! program is one more dispatch over the output. Pipelines are cached by
//! generated source, so groups with the same program share them.
//!
//! Scalar float constants (`x + 3`, Clip bounds, the halves of GELU) are
//! written into the source; every other operand is bound and read with
//! its broadcast strides.

use std::cell::Cell;

use strata_ir::ops::FusedOp;

use super::*;
use crate::kernels::MAX_RANK;
use crate::shape::{broadcast, bstrides, check_rank, put, u32c};

pub(crate) mod wgsl;

use wgsl::{Arg, EP, MAX_SLOTS};

/// How a fused node runs.
#[derive(Debug)]
pub(crate) struct Plan {
    producer: Option<Producer>,
    producer_inputs: usize,
    /// The node input bound as each operand of the program, in order.
    slots: Vec<usize>,
    /// Shapes of the inputs written into the source as constants (they
    /// still take part in broadcasting the output's shape).
    literal_shapes: Vec<Vec<usize>>,
    /// The program as a kernel of its own (the producer's output, when
    /// there is one, is its operand 0).
    standalone: Kernel,
}

#[derive(Debug)]
struct Producer {
    /// The producer as a node of its own (the fused node's producer inputs
    /// and output).
    node: Node,
    plan: Box<NodePlan>,
    /// The producer's kernels (one per entry point it may dispatch, in the
    /// order of `dispatch_out`'s `entry`) with the program as their
    /// epilogue; empty when the program runs after the producer.
    epilogue: Vec<Kernel>,
}

/// The value of `v` if it is a float32 constant with one element.
fn scalar_const(g: &Graph, v: ValueId) -> Option<(f32, Vec<usize>)> {
    let t = g.initializer(v).or_else(|| {
        g.nodes.iter().find_map(|n| match &n.op {
            Op::Tensor(T::Constant { value }) if n.outputs.contains(&Some(v)) => Some(value),
            _ => None,
        })
    })?;
    (t.dtype() == DType::F32 && t.numel() == 1).then(|| (t.to_f64_vec()[0] as f32, t.shape().to_vec()))
}

fn is_f32(g: &Graph, v: ValueId) -> bool {
    g.value(v).ty.dtype() == Some(DType::F32)
}

/// Whether `node` can be a step of a fused program on the GPU: a float32
/// elementwise operator the generator writes, Clip only with constant
/// bounds.
pub(crate) fn can_step(g: &Graph, node: &Node) -> bool {
    let Op::Elementwise(op) = &node.op else { return false };
    let bounds_const =
        !matches!(op, E::Clip { .. }) || node.inputs.iter().skip(1).flatten().all(|v| scalar_const(g, *v).is_some());
    wgsl::supported(op, node.inputs.len())
        && bounds_const
        && node.inputs.iter().flatten().all(|v| is_f32(g, *v))
        && node.outputs.iter().flatten().all(|v| is_f32(g, *v))
}

/// Whether `node` can be the producer of a fused group on the GPU: a
/// float32 single-output node of the Nn or Reduce families that runs here
/// (Dropout, whose output may be a view of its input, excluded).
pub(crate) fn can_produce(g: &Graph, node: &Node) -> bool {
    matches!(node.op, Op::Nn(_) | Op::Reduce(_))
        && !matches!(node.op, Op::Nn(NnOp::Dropout { .. }))
        && node.outputs.len() == 1
        && node.outputs.iter().flatten().all(|v| is_f32(g, *v))
        && plan_node(g, node, false, &mut Kernels::new(None)).is_ok_and(|p| p.narrow.iter().all(Option::is_none))
}

/// How the program reads each input after the producer's, and the node
/// inputs it binds (in operand order), and the shapes of the constants.
fn operands(g: &Graph, n: &Node, p: usize) -> (Vec<Arg>, Vec<usize>, Vec<Vec<usize>>) {
    let (mut args, mut slots, mut lits) = (Vec::new(), Vec::new(), Vec::new());
    for (i, v) in n.inputs.iter().enumerate().skip(p) {
        match v.and_then(|v| scalar_const(g, v)) {
            Some((x, shape)) => {
                args.push(Arg::Literal(x));
                lits.push(shape);
            }
            None => {
                args.push(Arg::Slot(slots.len() as u32));
                slots.push(i);
            }
        }
    }
    (args, slots, lits)
}

/// Whether fused node `n` binds few enough operands to run here (the
/// fusion pass does not count them; [`crate::GpuBackend::optimized`] fuses
/// shorter groups when a group does not fit).
pub(crate) fn fits(g: &Graph, n: &Node) -> bool {
    let Op::Fused(f) = &n.op else { return true };
    let (_, slots, _) = operands(g, n, f.producer_inputs as usize);
    slots.len() + usize::from(f.producer.is_some()) <= MAX_SLOTS.min(STORAGE_BUFFERS - 1)
}

/// Fuse the main graph of `m` with the GPU's rules, groups of at most
/// `max_steps` steps; returns how many fused nodes it holds. A group that
/// binds too many operands ([`fits`]) goes back to its nodes, which are
/// fused again with one step fewer, until every group fits.
pub(crate) fn fuse(m: &mut Model, max_steps: usize) -> usize {
    // Nodes are named by their index while fusing, so a group's members can
    // be found again (ONNX node names may be empty or repeated).
    let names: Vec<String> = m.main_graph().nodes.iter().map(|n| n.name.clone()).collect();
    let main = m.main;
    for (i, n) in m.graph_mut(main).nodes.iter_mut().enumerate() {
        n.name = i.to_string();
    }
    let base = m.main_graph().nodes.clone();
    let producer = |g: &Graph, n: &Node| can_produce(g, n);
    let step = |g: &Graph, n: &Node| can_step(g, n);
    for max_steps in (1..=max_steps).rev() {
        let rules = strata_ir::passes::FuseRules { producer: &producer, step: &step, max_steps };
        strata_ir::passes::fuse(m, &rules);
        let g = m.main_graph();
        let mut fit: Vec<bool> = g.nodes.iter().map(|n| fits(g, n)).collect();
        if fit.iter().all(|f| *f) {
            break;
        }
        // A group reading a value computed inside an undone group may hold
        // nodes that belong with it: it is undone too.
        let members = |n: &Node| match &n.op {
            Op::Fused(f) => f.members.iter().filter_map(|k| k.parse::<usize>().ok()).collect(),
            _ => Vec::new(),
        };
        loop {
            let undone: std::collections::HashSet<ValueId> = g
                .nodes
                .iter()
                .zip(&fit)
                .filter(|(_, f)| !**f)
                .flat_map(|(n, _)| members(n))
                .flat_map(|k| base[k].outputs.iter().flatten().copied())
                .collect();
            let mut changed = false;
            for (n, f) in g.nodes.iter().zip(fit.iter_mut()) {
                if *f && matches!(n.op, Op::Fused(_)) && n.inputs.iter().flatten().any(|v| undone.contains(v)) {
                    *f = false;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // The members stand where their group stood (its inputs are all
        // computed before its first member, its output read after it).
        let nodes = std::mem::take(&mut m.graph_mut(main).nodes);
        let mut again = Vec::with_capacity(nodes.len());
        for (n, fit) in nodes.into_iter().zip(fit) {
            match &n.op {
                Op::Fused(f) if !fit => {
                    again.extend(f.members.iter().filter_map(|k| k.parse::<usize>().ok()).map(|k| base[k].clone()));
                }
                _ => again.push(n),
            }
        }
        m.graph_mut(main).nodes = again;
    }
    let name = |k: &String| k.parse::<usize>().ok().and_then(|k| names.get(k)).cloned().unwrap_or_default();
    let mut made = 0;
    for n in &mut m.graph_mut(main).nodes {
        match &mut n.op {
            Op::Fused(f) => {
                f.members = f.members.iter().map(name).collect();
                n.name = f.members.join("+");
                made += 1;
            }
            _ => n.name = name(&n.name),
        }
    }
    made
}

/// Storage buffers per shader stage every WebGPU adapter offers.
const STORAGE_BUFFERS: usize = 8;

/// Plan a fused node.
pub(super) fn plan(v: &NodeView, f: &FusedOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    let (g, n) = (v.g, v.n);
    f.check(n.inputs.len())?;
    let p = f.producer_inputs as usize;
    for i in p..n.inputs.len() {
        if v.input(i).is_some() {
            match v.dt(i)? {
                DType::F32 => {}
                d => return Err(format!("fused input {i} is {d}; fused programs are float32 only")),
            }
        }
    }
    if !n.outputs.iter().flatten().all(|o| is_f32(g, *o)) {
        return Err("fused programs are float32 only".into());
    }
    let (args, slots, literal_shapes) = operands(g, n, p);
    let storage = k.storage_buffers();
    let has_producer = f.producer.is_some();
    if slots.len() + usize::from(has_producer) > MAX_SLOTS.min(storage - 1) {
        return Err(format!("a fused program with {} operands does not fit one kernel", slots.len()));
    }
    let producer = match &f.producer {
        None => None,
        Some(op) => {
            let node = Node {
                name: n.name.clone(),
                op: (**op).clone(),
                inputs: n.inputs[..p].to_vec(),
                outputs: n.outputs.clone(),
            };
            let plan = plan_node(g, &node, v.need_const, k)?;
            if plan.narrow.iter().any(Option::is_some) {
                return Err("a fused producer must compute float32".into());
            }
            let hook = match &plan.op {
                super::Plan::Conv(conv::Plan::Conv { .. }) => Some((Shader::Conv, &["conv2d", "conv2d_gemm"][..])),
                super::Plan::Conv(conv::Plan::ConvTranspose { .. }) => Some((Shader::Conv, &["conv_transpose2d"][..])),
                super::Plan::MatMul(_) => Some((Shader::Matmul, &["matmul"][..])),
                _ => None,
            };
            let epilogue = match hook {
                Some((shader, entries)) if slots.len() + wgsl::producer_bindings(shader) - 1 <= storage => {
                    let prog = wgsl::program(&f.steps, &args, slots.len(), wgsl::producer_bindings(shader))?;
                    let src = wgsl::with_epilogue(shader, &prog)?;
                    entries.iter().map(|&e| k.generated(src.clone(), e)).collect()
                }
                _ => Vec::new(),
            };
            Some(Producer { node, plan: Box::new(plan), epilogue })
        }
    };
    let standalone = k.generated(standalone_source(f, &args, slots.len(), has_producer)?, "fused");
    Ok(Plan { producer, producer_inputs: p, slots, literal_shapes, standalone })
}

/// The standalone kernel of program `f` over operands `args` (`slots` of
/// them bound): with a producer, its output is bound first, as operand 0.
fn standalone_source(
    f: &FusedOp,
    args: &[Arg],
    slots: usize,
    has_producer: bool,
) -> std::result::Result<String, String> {
    let shift = u32::from(has_producer);
    let shifted: Vec<Arg> = args
        .iter()
        .map(|a| match *a {
            Arg::Slot(j) => Arg::Slot(j + shift),
            lit => lit,
        })
        .collect();
    let prog = wgsl::program(&f.steps, &shifted, slots + shift as usize, wgsl::STANDALONE_BINDINGS)?;
    Ok(wgsl::standalone(&prog, has_producer))
}

/// The WGSL of a fused program, for shader validation in tests: the
/// standalone kernel (entry point `fused`) and, when `epilogue_of` names a
/// producer kernel with an epilogue hook (`Shader::Conv` or
/// `Shader::Matmul`), that kernel with the program as its epilogue.
/// `literal(k)` is the value of input `k` (after the producer's) when it
/// is a scalar constant.
#[doc(hidden)]
pub fn generate(
    f: &FusedOp,
    inputs: usize,
    literal: &dyn Fn(usize) -> Option<f32>,
    epilogue_of: Option<Shader>,
) -> std::result::Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut slots = 0u32;
    for i in 0..inputs {
        args.push(match literal(i) {
            Some(x) => Arg::Literal(x),
            None => {
                slots += 1;
                Arg::Slot(slots - 1)
            }
        });
    }
    let mut out = vec![standalone_source(f, &args, slots as usize, f.producer.is_some())?];
    if let Some(shader) = epilogue_of {
        let prog = wgsl::program(&f.steps, &args, slots as usize, wgsl::producer_bindings(shader))?;
        out.push(wgsl::with_epilogue(shader, &prog)?);
    }
    Ok(out)
}

/// A program attached to a producer's kernel for one run.
pub(crate) struct Epilogue<'a> {
    kernels: &'a [Kernel],
    operands: Vec<&'a GpuTensor>,
    literal_shapes: &'a [Vec<usize>],
    /// Set when the producer's dispatch ran the program.
    applied: Cell<bool>,
}

/// The program's parameters (from word [`EP`]) for output shape `out`;
/// `None` if the operands (and constants) broadcast beyond `out`.
fn program_params(out: &[usize], ops: &[&GpuTensor], literal_shapes: &[Vec<usize>]) -> Result<Option<Vec<u32>>> {
    let shapes: Vec<&[usize]> =
        ops.iter().map(|t| t.shape.as_slice()).chain(literal_shapes.iter().map(Vec::as_slice)).chain([out]).collect();
    if broadcast(&shapes)? != out {
        return Ok(None);
    }
    check_rank(out)?;
    let mut p = vec![0u32; 1 + MAX_RANK + (1 + MAX_RANK) * ops.len()];
    p[0] = u32c(out.len())?;
    put(&mut p, 1, out)?;
    for (j, t) in ops.iter().enumerate() {
        let base = 1 + MAX_RANK + (1 + MAX_RANK) * j;
        if t.shape != out {
            p[base] = 1;
            put(&mut p, base + 1, &bstrides(&t.shape, out))?;
        }
    }
    Ok(Some(p))
}

impl Exec<'_> {
    /// Record the dispatch of a producer kernel writing `y`: with the
    /// fused program as its epilogue when one is attached and its operands
    /// broadcast to `y`'s shape, else the plain kernel. `entry` says which
    /// of the producer's entry points `k` is (see [`Producer::epilogue`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dispatch_out(
        &self,
        ctx: &mut Ctx,
        k: &Kernel,
        entry: usize,
        params: &[u32],
        y: &GpuTensor,
        ins: &[&GpuTensor],
        groups: [u32; 3],
    ) -> Result<()> {
        if let Some(e) = self.epi
            && let Some(kernel) = e.kernels.get(entry)
            && params.len() <= EP
            && let Some(p) = program_params(&y.shape, &e.operands, e.literal_shapes)?
        {
            let mut all = params.to_vec();
            all.resize(EP, 0);
            all.extend(p);
            let mut bufs = ins.to_vec();
            bufs.extend(e.operands.iter().copied());
            e.applied.set(true);
            return ctx.dispatch(kernel, &all, y, &bufs, groups);
        }
        ctx.dispatch(k, params, y, ins, groups)
    }

    /// Run a fused node.
    pub(super) fn fused(&self, ctx: &mut Ctx, p: &Plan) -> Result<Vec<GpuTensor>> {
        let ops = p.slots.iter().map(|&i| self.input(i)).collect::<Result<Vec<_>>>()?;
        let Some(pr) = &p.producer else {
            return Ok(vec![self.program(ctx, &p.standalone, &ops, &p.literal_shapes)?]);
        };
        let epi = (!pr.epilogue.is_empty()).then(|| Epilogue {
            kernels: &pr.epilogue,
            operands: ops.clone(),
            literal_shapes: &p.literal_shapes,
            applied: Cell::new(false),
        });
        let ins = &self.ins[..p.producer_inputs.min(self.ins.len())];
        let ex = Exec { g: self.g, n: &pr.node, ins, node: self.node, epi: epi.as_ref() };
        let y = ex
            .run(ctx, &pr.plan.op)?
            .into_iter()
            .next()
            .ok_or_else(|| GpuError::Shape("the fused producer gave no output".into()))?;
        if epi.as_ref().is_some_and(|e| e.applied.get()) {
            return Ok(vec![y]);
        }
        let mut all = vec![&y];
        all.extend(ops);
        let out = self.program(ctx, &p.standalone, &all, &p.literal_shapes)?;
        // The producer's output is dead (unless it is a view of an input).
        if !self.ins.iter().flatten().any(|t| Arc::ptr_eq(&t.buf, &y.buf)) {
            ctx.release(y);
        }
        Ok(vec![out])
    }

    /// One dispatch of the standalone program over the broadcast shape of
    /// its operands.
    fn program(
        &self,
        ctx: &mut Ctx,
        k: &Kernel,
        ops: &[&GpuTensor],
        literal_shapes: &[Vec<usize>],
    ) -> Result<GpuTensor> {
        let shapes: Vec<&[usize]> =
            ops.iter().map(|t| t.shape.as_slice()).chain(literal_shapes.iter().map(Vec::as_slice)).collect();
        let out = broadcast(&shapes)?;
        let prm = program_params(&out, ops, literal_shapes)?
            .ok_or_else(|| GpuError::Shape("fused operands do not broadcast".into()))?;
        let y = ctx.alloc(DType::F32, out)?;
        let n = y.numel();
        let mut params = vec![0u32; EP];
        params[0] = u32c(n)?;
        params.extend(prm);
        ctx.dispatch_n(k, &params, &y, ops, n)?;
        Ok(y)
    }
}
