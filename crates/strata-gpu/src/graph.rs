//! Compiled partitions and their execution.
//!
//! [`CompiledGraph::new`] checks every node, creates every pipeline and
//! uploads the constants (weights stay resident), and computes a liveness
//! plan: the step after which each intermediate is dead. A run resolves
//! shapes on the host from the actual input shapes, records all dispatches
//! (reusing dead intermediates' buffers within the run), then encodes them in
//! ONE command encoder and ONE compute pass, and submits once. Nothing is
//! read back: outputs stay on the device until downloaded.

use std::collections::HashMap;
use std::sync::Arc;

use strata_ir::ops::TensorOp as T;
use strata_ir::{Model, Node, NodeId, Op, TensorData, ValueId};

use crate::ctx::Ctx;
use crate::device::{GpuDevice, GpuTensor, word_class};
use crate::error::{GpuError, Result};
use crate::kernels::Shader;
use crate::ops::narrow::{NarrowParams, narrowing};
use crate::ops::{self, Exec, Kernel, Kernels, NodePlan};
use crate::wgsl::Params;

struct Step {
    node: usize,
    /// The node's plan: its kernels and decoded parameters, and the
    /// `narrow` parameters per output.
    plan: NodePlan,
    /// A kernel may report an error (a range check or a division), so the
    /// run reads the status buffer back.
    fallible: bool,
    /// Test-only: the `narrow` kernel deliberately corrupts this node's
    /// outputs ([`crate::inject_fault`]).
    fault: bool,
}

/// A partition compiled for one device.
pub struct CompiledGraph {
    dev: Arc<GpuDevice>,
    model: Arc<Model>,
    steps: Vec<Step>,
    /// Constants uploaded at compile time.
    pub(crate) consts: HashMap<ValueId, GpuTensor>,
    /// Constants kept on the host (shapes, axes, pads, scalars).
    pub(crate) host: HashMap<ValueId, TensorData>,
    /// Why a constant could not be uploaded (used only if a kernel needs it on the device).
    pub(crate) not_uploaded: HashMap<ValueId, String>,
    /// Per step, the values read for the last time there.
    dead_after: Vec<Vec<ValueId>>,
    /// The in-place `narrow` kernel, when some step needs it.
    narrow: Option<Kernel>,
    /// Dispatches of the last run.
    last_dispatches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for CompiledGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompiledGraph({} steps)", self.steps.len())
    }
}

fn node_err(n: &Node, e: GpuError) -> GpuError {
    let msg = format!("node '{}' ({}): {e}", n.name, n.op.name());
    match e {
        GpuError::DeviceLost(_) => GpuError::DeviceLost(msg),
        GpuError::Limit(_) => GpuError::Limit(msg),
        GpuError::Unsupported(_) => GpuError::Unsupported(msg),
        GpuError::Value(_) => GpuError::Value(msg),
        GpuError::Wgpu(_) => GpuError::Wgpu(msg),
        _ => GpuError::Shape(msg),
    }
}

impl CompiledGraph {
    /// Compile the main graph of `model` for `dev`.
    pub fn new(dev: Arc<GpuDevice>, model: Arc<Model>) -> Result<CompiledGraph> {
        dev.check()?;
        let g = model.main_graph();
        let mut host = HashMap::new();
        for n in &g.nodes {
            for v in n.inputs.iter().flatten() {
                if let Some(t) = g.initializer(*v) {
                    host.insert(*v, t.clone());
                }
            }
            if let Op::Tensor(T::Constant { value }) = &n.op
                && let Some(Some(o)) = n.outputs.first()
            {
                host.insert(*o, value.clone());
            }
        }
        for v in &g.outputs {
            if let Some(t) = g.initializer(*v) {
                host.insert(*v, t.clone());
            }
        }
        let mut steps = Vec::with_capacity(g.nodes.len());
        for (i, n) in g.nodes.iter().enumerate() {
            let mut kernels = Kernels::new(Some(&dev));
            let plan = ops::plan(&model, model.main, NodeId(i as u32), false, &mut kernels)
                .map_err(|r| GpuError::Unsupported(format!("node '{}' ({}): {r}", n.name, n.op.name())))?;
            let fallible = kernels.finish()?;
            // A fault injected into a member of a fused group corrupts the group's output.
            let fault = crate::fault_node()
                .is_some_and(|f| f == n.name || matches!(&n.op, Op::Fused(fo) if fo.members.contains(&f)));
            steps.push(Step { node: i, plan, fallible, fault });
        }
        let narrow = if steps.iter().any(|s| s.fault || s.plan.narrow.iter().any(Option::is_some)) {
            let mut kernels = Kernels::new(Some(&dev));
            let k = kernels.get(Shader::Elementwise, "narrow", &[]);
            kernels.finish()?;
            Some(k)
        } else {
            None
        };
        let mut consts = HashMap::new();
        let mut not_uploaded = HashMap::new();
        for (v, t) in &host {
            match dev.upload(t) {
                Ok(gt) => {
                    consts.insert(*v, gt);
                }
                Err(GpuError::Value(m)) => {
                    not_uploaded.insert(*v, m);
                }
                Err(e) => return Err(e),
            }
        }
        let mut last: HashMap<ValueId, usize> = HashMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            for v in n.inputs.iter().flatten() {
                last.insert(*v, i);
            }
        }
        for (i, n) in g.nodes.iter().enumerate() {
            for v in n.outputs.iter().flatten() {
                last.entry(*v).or_insert(i);
            }
        }
        let mut dead_after = vec![Vec::new(); g.nodes.len()];
        for (v, i) in last {
            if !g.outputs.contains(&v) {
                dead_after[i].push(v);
            }
        }
        Ok(CompiledGraph {
            dev,
            model,
            steps,
            consts,
            host,
            not_uploaded,
            dead_after,
            narrow,
            last_dispatches: Default::default(),
        })
    }

    /// The device this partition was compiled for.
    pub fn device(&self) -> &Arc<GpuDevice> {
        &self.dev
    }

    /// The model (partition) this was compiled from.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Dispatches the last run of this partition recorded (the process-wide
    /// totals are [`crate::counters`]).
    pub fn last_dispatches(&self) -> u64 {
        self.last_dispatches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The fused nodes of this partition: (operator names joined by `+`,
    /// the names of the nodes each replaces), in graph order.
    pub fn fused_groups(&self) -> Vec<(String, Vec<String>)> {
        self.model
            .main_graph()
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Fused(f) => Some((f.kinds(), f.members.clone())),
                _ => None,
            })
            .collect()
    }

    /// Run with the main graph's inputs (in order); returns its outputs,
    /// still on the device.
    pub async fn run(&self, inputs: &[&GpuTensor]) -> Result<Vec<GpuTensor>> {
        self.dev.check()?;
        let g = self.model.main_graph();
        if inputs.len() != g.inputs.len() {
            return Err(GpuError::Shape(format!("expected {} inputs, got {}", g.inputs.len(), inputs.len())));
        }
        let mut env: HashMap<ValueId, GpuTensor> = HashMap::new();
        for (v, t) in g.inputs.iter().zip(inputs) {
            if t.device_id != self.dev.id {
                return Err(GpuError::DeviceLost(format!(
                    "input '{}' lives on another (lost) device; upload it again",
                    g.value(*v).name
                )));
            }
            env.insert(*v, (*t).clone());
        }
        let mut ctx = Ctx::new(&self.dev);
        for (si, step) in self.steps.iter().enumerate() {
            let n = g.node(NodeId(step.node as u32));
            let ins: Vec<Option<GpuTensor>> =
                n.inputs.iter().map(|o| o.and_then(|v| env.get(&v).or_else(|| self.consts.get(&v)).cloned())).collect();
            let ex = Exec { g: self, n, ins: &ins, node: step.node as u32, epi: None };
            if step.fallible {
                ctx.read_status = true;
            }
            let outs = ex.run(&mut ctx, &step.plan.op).map_err(|e| node_err(n, e))?;
            let outs = self.settle(&mut ctx, step, n, &ins, outs).map_err(|e| node_err(n, e))?;
            for (o, t) in n.outputs.iter().zip(outs) {
                if let Some(o) = o {
                    ctx.retain(&t);
                    env.insert(*o, t);
                }
            }
            drop(ins);
            for v in &self.dead_after[si] {
                if let Some(t) = env.remove(v) {
                    ctx.release(t);
                }
            }
        }
        let status = ctx.status.clone().filter(|_| ctx.read_status);
        self.last_dispatches.store(ctx.recorded() as u64, std::sync::atomic::Ordering::Relaxed);
        ctx.submit().await?;
        if let Some(st) = status {
            self.check_status(&st).await?;
        }
        let mut outs = Vec::with_capacity(g.outputs.len());
        for v in &g.outputs {
            let t =
                env.get(v).or_else(|| self.consts.get(v)).cloned().ok_or_else(|| {
                    GpuError::Shape(format!("output '{}' was not produced on the GPU", g.value(*v).name))
                })?;
            outs.push(t);
        }
        Ok(outs)
    }
}

impl CompiledGraph {
    /// Give a node's outputs the element types the IR declares (kernels
    /// computing in f32, i32 or u32 may allocate their outputs with the
    /// computing type) and narrow computed values to them in place.
    fn settle(
        &self,
        ctx: &mut Ctx,
        step: &Step,
        n: &Node,
        ins: &[Option<GpuTensor>],
        outs: Vec<GpuTensor>,
    ) -> Result<Vec<GpuTensor>> {
        let g = self.model.main_graph();
        let mut res = Vec::with_capacity(outs.len());
        for (k, t) in outs.into_iter().enumerate() {
            let Some(v) = n.outputs.get(k).copied().flatten() else {
                res.push(t);
                continue;
            };
            let declared = g.value(v).ty.dtype().unwrap_or(t.dtype);
            let t = if t.dtype == declared {
                t
            } else if word_class(t.dtype) == word_class(declared) {
                t.view(declared, t.shape.clone())
            } else {
                return Err(GpuError::Shape(format!("output {k} computed as {}, declared {declared}", t.dtype)));
            };
            // An output sharing an input's buffer holds that input's
            // (already exact) values.
            let aliased = ins.iter().flatten().any(|i| Arc::ptr_eq(&i.buf, &t.buf));
            if let (Some(p), Some(pipe), false) = (step.plan.narrow.get(k).cloned().flatten(), &self.narrow, aliased) {
                let numel = t.numel();
                ctx.dispatch_n(pipe, &NarrowParams { n: numel, ..p }.words()?, &t, &[], numel)?;
            }
            if let (true, Some(pipe)) = (step.fault, &self.narrow) {
                if aliased {
                    return Err(GpuError::Unsupported(
                        "a fault cannot be injected into a node whose output is a view of its input".into(),
                    ));
                }
                let numel = t.numel();
                let float = usize::from(word_class(t.dtype) == Some(crate::device::Word::F32));
                let p = NarrowParams { n: numel, kind: narrowing::FAULT as usize, float, ..Default::default() };
                ctx.dispatch_n(pipe, &p.words()?, &t, &[], numel)?;
            }
            res.push(t);
        }
        Ok(res)
    }

    /// After a run with integer kernels: fail if one reported an overflow of
    /// the 32-bit storage of int64/uint64 or a division by zero.
    async fn check_status(&self, st: &GpuTensor) -> Result<()> {
        let words = self.dev.download(st).await?.to_i64_vec();
        let (bits, node) = (words.first().copied().unwrap_or(0), words.get(1).copied().unwrap_or(-1));
        if bits == 0 {
            return Ok(());
        }
        let g = self.model.main_graph();
        let what = match usize::try_from(node).ok().filter(|&i| i < g.nodes.len()) {
            Some(i) => format!("node '{}' ({})", g.nodes[i].name, g.nodes[i].op.name()),
            None => "a node".to_string(),
        };
        let why = if bits & 1 != 0 {
            "an int64/uint64 result does not fit in the 32 bits the GPU computes integers in"
        } else {
            "integer division by zero"
        };
        Err(GpuError::Value(format!("{what}: {why}")))
    }
}
