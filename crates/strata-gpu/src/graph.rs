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
use std::num::NonZeroU64;
use std::sync::Arc;

use strata_ir::ops::{ElementwiseOp as E, NnOp, ReduceOp as R, TensorOp as T};
use strata_ir::{DType, Model, Node, NodeId, Op, TensorData, ValueId};

use crate::device::{BufKind, GpuDevice, GpuTensor, PooledBuffer, size_class, word_class};
use crate::error::{GpuError, Result};
use crate::kernels::{MAX_RANK, PARAM_WORDS, Shader, TILE, WG};
use crate::support::{self, cast_code};

mod attention;
mod einsum;
mod ext;
mod generate;
mod index;
mod loss;
pub(crate) mod math;
mod pool;
mod quant;
mod recurrent;
mod rowwise;
pub(crate) mod sample;
pub(crate) mod scatter;
mod sequence;
mod signal;

struct Step {
    node: usize,
    pipes: Vec<Arc<wgpu::ComputePipeline>>,
    /// Per pipeline: an `integer.wgsl` kernel, bound to the run's status buffer.
    checked: Vec<bool>,
    /// Per pipeline: a kernel that may report an error (a range check or a
    /// division), so the run reads the status buffer back.
    fallible: Vec<bool>,
    /// Per output: `narrow` parameters when computed values must be
    /// narrowed to the output's element type.
    narrow: Vec<Option<[u32; 5]>>,
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
    consts: HashMap<ValueId, GpuTensor>,
    /// Constants kept on the host (shapes, axes, pads, scalars).
    host: HashMap<ValueId, TensorData>,
    /// Why a constant could not be uploaded (used only if a kernel needs it on the device).
    not_uploaded: HashMap<ValueId, String>,
    /// Per step, the values read for the last time there.
    dead_after: Vec<Vec<ValueId>>,
    /// The in-place `narrow` kernel, when some step needs it.
    narrow: Option<Arc<wgpu::ComputePipeline>>,
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
            let specs = support::check(&model, model.main, NodeId(i as u32), false)
                .map_err(|r| GpuError::Unsupported(format!("node '{}' ({}): {r}", n.name, n.op.name())))?;
            let mut pipes = Vec::with_capacity(specs.len());
            let mut checked = Vec::with_capacity(specs.len());
            let mut fallible = Vec::with_capacity(specs.len());
            for (shader, entry, ov) in specs {
                pipes.push(dev.pipeline(shader, entry, &ov)?);
                checked.push(shader == Shader::Integer);
                fallible.push(shader == Shader::Integer && support::int_kernel_may_fail(entry, &ov));
            }
            let narrow = support::narrow_plan(g, n);
            let fault = crate::fault_node().is_some_and(|f| f == n.name);
            steps.push(Step { node: i, pipes, checked, fallible, narrow, fault });
        }
        let narrow = if steps.iter().any(|s| s.fault || s.narrow.iter().any(Option::is_some)) {
            Some(dev.pipeline(Shader::Elementwise, "narrow", &[])?)
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
        Ok(CompiledGraph { dev, model, steps, consts, host, not_uploaded, dead_after, narrow })
    }

    /// The device this partition was compiled for.
    pub fn device(&self) -> &Arc<GpuDevice> {
        &self.dev
    }

    /// The model (partition) this was compiled from.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
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
        let mut ctx = Ctx {
            dev: &self.dev,
            free: Vec::new(),
            cmds: Vec::new(),
            refs: HashMap::new(),
            status: None,
            read_status: false,
        };
        for (si, step) in self.steps.iter().enumerate() {
            let n = g.node(NodeId(step.node as u32));
            let ins: Vec<Option<GpuTensor>> =
                n.inputs.iter().map(|o| o.and_then(|v| env.get(&v).or_else(|| self.consts.get(&v)).cloned())).collect();
            let ex = Exec { g: self, n, ins: &ins, pipes: &step.pipes, checked: &step.checked, node: step.node as u32 };
            if step.fallible.iter().any(|&f| f) {
                ctx.read_status = true;
            }
            let outs = ex.run(&mut ctx).map_err(|e| node_err(n, e))?;
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
            if let (Some(p), Some(pipe), false) = (step.narrow.get(k).copied().flatten(), &self.narrow, aliased) {
                let numel = t.numel();
                ctx.dispatch_n(pipe, &[u32c(numel)?, p[0], p[1], p[2], p[3], p[4]], &t, &[], numel)?;
            }
            if let (true, Some(pipe)) = (step.fault, &self.narrow) {
                if aliased {
                    return Err(GpuError::Unsupported(
                        "a fault cannot be injected into a node whose output is a view of its input".into(),
                    ));
                }
                let numel = t.numel();
                let float = u32::from(word_class(t.dtype) == Some(crate::device::Word::F32));
                ctx.dispatch_n(pipe, &[u32c(numel)?, 5, float, 0, 0, 0], &t, &[], numel)?;
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

/// One recorded dispatch.
struct Cmd {
    pipe: Arc<wgpu::ComputePipeline>,
    params: Vec<u32>,
    bufs: Vec<(Arc<PooledBuffer>, u64)>,
    groups: [u32; 3],
}

/// State of one run: recorded dispatches and buffers freed during it.
///
/// Liveness is tracked by counting, per buffer allocated in this run, the
/// values of the run that refer to it (a reshape shares its input's
/// buffer). Recorded commands also hold the buffers, so a dead buffer is
/// not dropped: it goes to `free` and is handed to a later allocation of the
/// same size class. The GPU executes dispatches in order, so the new
/// writer runs after the last reader. Buffers return to the shared pool
/// only after the submit.
struct Ctx<'a> {
    dev: &'a GpuDevice,
    free: Vec<Arc<PooledBuffer>>,
    cmds: Vec<Cmd>,
    /// Live value references per buffer allocated in this run.
    refs: HashMap<*const PooledBuffer, usize>,
    /// Error flags of `integer.wgsl` kernels ([bits, lowest failing node]),
    /// created by the first such dispatch.
    status: Option<GpuTensor>,
    /// Some dispatch may set a status flag: read it back after the submit.
    read_status: bool,
}

impl Ctx<'_> {
    fn alloc(&mut self, dtype: DType, shape: Vec<usize>) -> Result<GpuTensor> {
        let n = strata_ir::tensor::checked_numel(&shape)
            .ok_or_else(|| GpuError::Limit(format!("shape {shape:?} overflows")))?;
        let bytes = (n.max(1) as u64).checked_mul(4).ok_or_else(|| GpuError::Limit("tensor too large".into()))?;
        let class = size_class(bytes);
        let buf = match self.free.iter().position(|b| b.class() == class && b.kind() == BufKind::Storage) {
            Some(i) => self.free.swap_remove(i),
            None => Arc::new(self.dev.acquire(BufKind::Storage, bytes)?),
        };
        self.refs.insert(Arc::as_ptr(&buf), 0);
        Ok(GpuTensor { buf, dtype, shape, device_id: self.dev.id, host: None, inexact: None })
    }

    /// The run's status buffer (two words, initialised to [0, u32::MAX]).
    fn status(&mut self) -> Result<GpuTensor> {
        if let Some(s) = &self.status {
            return Ok(s.clone());
        }
        let buf = self.dev.acquire(BufKind::Storage, 8)?;
        self.dev.queue.write_buffer(buf.buffer(), 0, bytemuck::cast_slice(&[0u32, u32::MAX]));
        let t = GpuTensor {
            buf: Arc::new(buf),
            dtype: DType::U32,
            shape: vec![2],
            device_id: self.dev.id,
            host: None,
            inexact: None,
        };
        self.status = Some(t.clone());
        Ok(t)
    }

    /// A value of the run now refers to `t`'s buffer.
    fn retain(&mut self, t: &GpuTensor) {
        if let Some(c) = self.refs.get_mut(&Arc::as_ptr(&t.buf)) {
            *c += 1;
        }
    }

    /// A value referring to `t`'s buffer is dead (or `t` was a temporary
    /// never bound to a value); the buffer is free once nothing refers to it.
    /// Buffers not allocated in this run (inputs, constants) are never freed.
    fn release(&mut self, t: GpuTensor) {
        let key = Arc::as_ptr(&t.buf);
        if let Some(c) = self.refs.get_mut(&key) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.refs.remove(&key);
                self.free.push(t.buf);
            }
        }
    }

    /// Workgroup counts for `n` invocations of a 64-wide kernel, folded
    /// into 2-D when 1-D would exceed the per-dimension limit.
    fn groups(&self, n: usize) -> Result<[u32; 3]> {
        let max = self.dev.limits.max_compute_workgroups_per_dimension.max(1) as usize;
        let wg = n.div_ceil(WG as usize);
        if wg <= max {
            return Ok([wg as u32, 1, 1]);
        }
        let y = wg.div_ceil(max);
        if y > max {
            return Err(GpuError::Limit(format!(
                "{n} elements exceed the dispatch limit ({max}^2 workgroups of {WG})"
            )));
        }
        Ok([max as u32, y as u32, 1])
    }

    fn dispatch(
        &mut self,
        pipe: &Arc<wgpu::ComputePipeline>,
        params: &[u32],
        out: &GpuTensor,
        ins: &[&GpuTensor],
        groups: [u32; 3],
    ) {
        let mut bufs = vec![(out.buf.clone(), out.byte_len())];
        for t in ins {
            bufs.push((t.buf.clone(), t.byte_len()));
        }
        self.cmds.push(Cmd { pipe: pipe.clone(), params: params.to_vec(), bufs, groups });
    }

    fn dispatch_n(
        &mut self,
        pipe: &Arc<wgpu::ComputePipeline>,
        params: &[u32],
        out: &GpuTensor,
        ins: &[&GpuTensor],
        n: usize,
    ) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let g = self.groups(n)?;
        self.dispatch(pipe, params, out, ins, g);
        Ok(())
    }

    async fn submit(mut self) -> Result<()> {
        if self.cmds.is_empty() {
            return Ok(());
        }
        let dev = self.dev;
        let align = u64::from(dev.limits.min_uniform_buffer_offset_alignment).max(4);
        let block = ((PARAM_WORDS * 4) as u64).next_multiple_of(align);
        let total =
            block.checked_mul(self.cmds.len() as u64).ok_or_else(|| GpuError::Limit("too many dispatches".into()))?;
        let mut bytes = vec![0u8; total as usize];
        for (i, c) in self.cmds.iter().enumerate() {
            let off = i * block as usize;
            bytes[off..off + c.params.len() * 4].copy_from_slice(bytemuck::cast_slice(&c.params));
        }
        let pbuf = dev.acquire(BufKind::Uniform, total)?;
        dev.queue.write_buffer(pbuf.buffer(), 0, &bytes);
        let oom = dev.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = dev.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut groups = Vec::with_capacity(self.cmds.len());
        for (i, c) in self.cmds.iter().enumerate() {
            let layout = c.pipe.get_bind_group_layout(0);
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: pbuf.buffer(),
                    offset: i as u64 * block,
                    size: NonZeroU64::new((PARAM_WORDS * 4) as u64),
                }),
            }];
            for (j, (b, size)) in c.bufs.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: j as u32 + 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: b.buffer(),
                        offset: 0,
                        size: NonZeroU64::new(*size),
                    }),
                });
            }
            groups.push(dev.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &entries,
            }));
        }
        let mut enc =
            dev.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("strata-gpu run") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for (c, bg) in self.cmds.iter().zip(&groups) {
                pass.set_pipeline(&c.pipe);
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(c.groups[0], c.groups[1], c.groups[2]);
            }
        }
        dev.queue.submit([enc.finish()]);
        crate::count_submit(self.cmds.len() as u64);
        let v = val.pop().await;
        let o = oom.pop().await;
        self.free.clear();
        if let Some(e) = v {
            return Err(GpuError::Wgpu(e.to_string()));
        }
        if let Some(e) = o {
            return Err(GpuError::Wgpu(format!("out of memory: {e}")));
        }
        dev.check()
    }
}

fn u32c(x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| GpuError::Limit(format!("size {x} exceeds 32-bit GPU indexing")))
}

fn contiguous(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

fn broadcast(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let r = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; r];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[r - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(GpuError::Shape(format!("shapes {shapes:?} do not broadcast")));
            }
        }
    }
    Ok(out)
}

/// Strides of `shape` read as `out` under broadcasting (0 along broadcast axes).
fn bstrides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let cs = contiguous(shape);
    let off = out.len() - shape.len();
    (0..out.len()).map(|i| if i < off || shape[i - off] == 1 { 0 } else { cs[i - off] }).collect()
}

fn check_rank(shape: &[usize]) -> Result<()> {
    if shape.len() > MAX_RANK {
        Err(GpuError::Unsupported(format!("rank {} exceeds the GPU kernels' limit of {MAX_RANK}", shape.len())))
    } else {
        Ok(())
    }
}

fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(GpuError::Shape(format!("axis {axis} out of range for rank {rank}")))
    }
}

fn put(p: &mut [u32], at: usize, vals: &[usize]) -> Result<()> {
    for (i, &v) in vals.iter().enumerate() {
        p[at + i] = u32c(v)?;
    }
    Ok(())
}

fn f32w(x: f32) -> u32 {
    x.to_bits()
}

/// One node's execution: resolves shapes, allocates outputs, records dispatches.
struct Exec<'a> {
    g: &'a CompiledGraph,
    n: &'a Node,
    ins: &'a [Option<GpuTensor>],
    pipes: &'a [Arc<wgpu::ComputePipeline>],
    /// Per pipeline: an `integer.wgsl` kernel (status buffer bound first, node index in the parameters).
    checked: &'a [bool],
    /// Index of the node in the graph.
    node: u32,
}

impl Exec<'_> {
    fn input(&self, i: usize) -> Result<&GpuTensor> {
        if let Some(Some(t)) = self.ins.get(i) {
            if let Some(why) = &t.inexact {
                return Err(GpuError::Value(format!("input {i}: {why}")));
            }
            return Ok(t);
        }
        let why = self
            .n
            .inputs
            .get(i)
            .copied()
            .flatten()
            .and_then(|v| self.g.not_uploaded.get(&v))
            .cloned()
            .unwrap_or_else(|| "not available on the GPU".into());
        Err(GpuError::Value(format!("input {i}: {why}")))
    }
    fn opt_input(&self, i: usize) -> Option<&GpuTensor> {
        self.ins.get(i).and_then(|o| o.as_ref())
    }
    /// A host operand: a constant of the partition, or the host copy of a
    /// small tensor uploaded from another partition.
    fn host(&self, i: usize) -> Option<&TensorData> {
        let v = self.n.inputs.get(i).copied().flatten()?;
        self.g.host.get(&v).or_else(|| self.ins.get(i).and_then(|t| t.as_ref()).and_then(|t| t.host.as_ref()))
    }
    fn host_i64(&self, i: usize) -> Result<Option<Vec<i64>>> {
        match self.n.inputs.get(i).copied().flatten() {
            None => Ok(None),
            Some(_) => match self.host(i) {
                Some(t) => Ok(Some(t.to_i64_vec())),
                None => Err(GpuError::Unsupported(format!(
                    "input {i} must be a constant (or a small tensor uploaded from the host)"
                ))),
            },
        }
    }
    fn out_dtype(&self, k: usize) -> Result<DType> {
        self.n
            .outputs
            .get(k)
            .copied()
            .flatten()
            .and_then(|v| self.g.model.main_graph().value(v).ty.dtype())
            .ok_or_else(|| GpuError::Shape(format!("output {k} has no known type")))
    }

    fn run(&self, ctx: &mut Ctx) -> Result<Vec<GpuTensor>> {
        match &self.n.op {
            Op::Elementwise(e) => self.elementwise(ctx, e),
            Op::Tensor(t) => self.tensor(ctx, t),
            Op::Nn(o) => self.nn(ctx, o),
            Op::Reduce(r) => self.reduce_family(ctx, r),
            Op::Quant(q) => self.quant(ctx, q),
            Op::Signal(sg) => self.signal_ext(ctx, sg),
            other => Err(GpuError::Unsupported(format!("operator {}", other.name()))),
        }
    }

    fn unary(&self, ctx: &mut Ctx, pipe: usize, x: &GpuTensor, a: u32, b: u32, out: DType) -> Result<GpuTensor> {
        let y = ctx.alloc(out, x.shape.clone())?;
        let n = x.numel();
        if self.checked[pipe] {
            let st = ctx.status()?;
            ctx.dispatch_n(&self.pipes[pipe], &[u32c(n)?, a, b, self.node], &y, &[&st, x], n)?;
        } else {
            ctx.dispatch_n(&self.pipes[pipe], &[u32c(n)?, a, b], &y, &[x], n)?;
        }
        Ok(y)
    }

    fn binary(&self, ctx: &mut Ctx, pipe: usize, a: &GpuTensor, b: &GpuTensor, out: DType) -> Result<GpuTensor> {
        let shape = broadcast(&[&a.shape, &b.shape])?;
        check_rank(&shape)?;
        let y = ctx.alloc(out, shape.clone())?;
        let n = y.numel();
        let mut p = vec![0u32; 34];
        p[0] = u32c(n)?;
        p[1] = shape.len() as u32;
        put(&mut p, 2, &shape)?;
        put(&mut p, 10, &bstrides(&a.shape, &shape))?;
        put(&mut p, 18, &bstrides(&b.shape, &shape))?;
        if self.checked[pipe] {
            p[26] = a.dtype.bits() as u32;
            p[27] = self.node;
            let st = ctx.status()?;
            ctx.dispatch_n(&self.pipes[pipe], &p, &y, &[&st, a, b], n)?;
        } else {
            ctx.dispatch_n(&self.pipes[pipe], &p, &y, &[a, b], n)?;
        }
        Ok(y)
    }

    fn elementwise(&self, ctx: &mut Ctx, e: &E) -> Result<Vec<GpuTensor>> {
        let out = self.out_dtype(0)?;
        match e {
            E::Identity {} => Ok(vec![self.input(0)?.clone()]),
            _ if math::math_code(e).is_some() => self.unary_math(ctx),
            E::Cast { .. } | E::CastLike { .. } => {
                let x = self.input(0)?;
                match cast_code(x.dtype, out).map_err(GpuError::Unsupported)? {
                    None => Ok(vec![x.view(out, x.shape.clone())]),
                    Some(_) => Ok(vec![self.unary(ctx, 0, x, 0, 0, out)?]),
                }
            }
            E::Not {} | E::IsNaN {} | E::BitwiseNot {} => Ok(vec![self.unary(ctx, 0, self.input(0)?, 0, 0, out)?]),
            E::IsInf { detect_negative, detect_positive } => Ok(vec![self.unary(
                ctx,
                0,
                self.input(0)?,
                u32::from(*detect_negative != 0),
                u32::from(*detect_positive != 0),
                out,
            )?]),
            E::Where {} => {
                let (c, a, b) = (self.input(0)?, self.input(1)?, self.input(2)?);
                let shape = broadcast(&[&c.shape, &a.shape, &b.shape])?;
                check_rank(&shape)?;
                let y = ctx.alloc(out, shape.clone())?;
                let n = y.numel();
                let mut p = vec![0u32; 34];
                p[0] = u32c(n)?;
                p[1] = shape.len() as u32;
                put(&mut p, 2, &shape)?;
                put(&mut p, 10, &bstrides(&c.shape, &shape))?;
                put(&mut p, 18, &bstrides(&a.shape, &shape))?;
                put(&mut p, 26, &bstrides(&b.shape, &shape))?;
                ctx.dispatch_n(&self.pipes[0], &p, &y, &[c, a, b], n)?;
                Ok(vec![y])
            }
            E::Max {} | E::Min {} | E::Sum {} | E::Mean {} => {
                let k = self.n.inputs.len();
                let mut acc = self.input(0)?.clone();
                for i in 1..k {
                    let next = self.binary(ctx, 0, &acc, self.input(i)?, out)?;
                    if i > 1 {
                        ctx.release(acc);
                    }
                    acc = next;
                }
                if matches!(e, E::Mean {}) && k > 1 {
                    let m = self.unary(ctx, 1, &acc, f32w(1.0 / k as f32), 0, out)?;
                    ctx.release(acc);
                    acc = m;
                }
                Ok(vec![acc])
            }
            E::Clip { min, max } => {
                let x = self.input(0)?;
                let scalar = |i: usize| -> Result<Option<f64>> {
                    match self.host(i) {
                        None if self.n.inputs.get(i).copied().flatten().is_some() => {
                            Err(GpuError::Unsupported(format!("Clip input {i} must be a constant")))
                        }
                        None => Ok(None),
                        Some(t) if t.numel() == 1 => Ok(Some(t.to_f64_vec()[0])),
                        Some(_) => Err(GpuError::Shape(format!("Clip input {i} must be a scalar"))),
                    }
                };
                let lo = scalar(1)?;
                let hi = scalar(2)?;
                let (a, b) = if support::is_float_word(x.dtype) {
                    let lo = lo.map(|v| v as f32).or(*min).unwrap_or(f32::NEG_INFINITY);
                    let hi = hi.map(|v| v as f32).or(*max).unwrap_or(f32::INFINITY);
                    (f32w(lo), f32w(hi))
                } else if word_class(x.dtype) == Some(crate::device::Word::U32) {
                    let lo = lo.map(|v| v as i64).unwrap_or(0).clamp(0, u32::MAX as i64);
                    let hi = hi.map(|v| v as i64).unwrap_or(u32::MAX as i64).clamp(0, u32::MAX as i64);
                    (lo as u32, hi as u32)
                } else {
                    let lo =
                        lo.map(|v| v as i64).unwrap_or(i64::from(i32::MIN)).clamp(i32::MIN as i64, i32::MAX as i64);
                    let hi =
                        hi.map(|v| v as i64).unwrap_or(i64::from(i32::MAX)).clamp(i32::MIN as i64, i32::MAX as i64);
                    ((lo as i32) as u32, (hi as i32) as u32)
                };
                Ok(vec![self.unary(ctx, 0, x, a, b, out)?])
            }
            _ => {
                if let Some((_, a, b)) = support::unary_code(e) {
                    return Ok(vec![self.unary(ctx, 0, self.input(0)?, f32w(a), f32w(b), out)?]);
                }
                Ok(vec![self.binary(ctx, 0, self.input(0)?, self.input(1)?, out)?])
            }
        }
    }

    /// Strided copy of `shape` from `src` into `dst`.
    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        ctx: &mut Ctx,
        dst: &GpuTensor,
        src: &GpuTensor,
        shape: &[usize],
        in_off: i64,
        in_strides: &[i64],
        out_off: usize,
        out_strides: &[usize],
    ) -> Result<()> {
        check_rank(shape)?;
        let n = strata_ir::tensor::checked_numel(shape).ok_or_else(|| GpuError::Limit("shape overflows".into()))?;
        let mut p = vec![0u32; 28];
        p[0] = u32c(n)?;
        p[1] = shape.len() as u32;
        p[2] = i32::try_from(in_off).map_err(|_| GpuError::Limit("offset exceeds i32".into()))? as u32;
        p[3] = u32c(out_off)?;
        put(&mut p, 4, shape)?;
        for (i, s) in in_strides.iter().enumerate() {
            p[12 + i] = i32::try_from(*s).map_err(|_| GpuError::Limit("stride exceeds i32".into()))? as u32;
        }
        put(&mut p, 20, out_strides)?;
        ctx.dispatch_n(&self.pipes[0], &p, dst, &[src], n)
    }

    fn tensor(&self, ctx: &mut Ctx, t: &T) -> Result<Vec<GpuTensor>> {
        let out = self.out_dtype(0)?;
        match t {
            T::Constant { .. } => {
                let v = self.n.outputs[0].ok_or_else(|| GpuError::Shape("Constant without output".into()))?;
                let c = self.g.consts.get(&v).cloned();
                c.map(|c| vec![c]).ok_or_else(|| {
                    GpuError::Value(
                        self.g.not_uploaded.get(&v).cloned().unwrap_or_else(|| "constant not uploaded".into()),
                    )
                })
            }
            T::Reshape { allowzero, shape } => {
                let x = self.input(0)?;
                let spec = match self.host_i64(1)? {
                    Some(s) => s,
                    None => shape.clone().ok_or_else(|| GpuError::Shape("Reshape without a shape".into()))?,
                };
                let mut dims = Vec::with_capacity(spec.len());
                let mut infer = None;
                for (i, &d) in spec.iter().enumerate() {
                    if d == -1 {
                        if infer.replace(i).is_some() {
                            return Err(GpuError::Shape("more than one -1 in Reshape".into()));
                        }
                        dims.push(1);
                    } else if d == 0 && *allowzero == 0 {
                        dims.push(
                            *x.shape.get(i).ok_or_else(|| GpuError::Shape("0 in Reshape beyond input rank".into()))?,
                        );
                    } else if d < 0 {
                        return Err(GpuError::Shape(format!("invalid Reshape dimension {d}")));
                    } else {
                        dims.push(usize::try_from(d).map_err(|_| GpuError::Shape("dimension too large".into()))?);
                    }
                }
                let known =
                    strata_ir::tensor::checked_numel(&dims).ok_or_else(|| GpuError::Shape("shape overflows".into()))?;
                if let Some(i) = infer {
                    if known == 0 || x.numel() % known != 0 {
                        return Err(GpuError::Shape(format!("cannot reshape {:?} to {spec:?}", x.shape)));
                    }
                    dims[i] = x.numel() / known;
                }
                if strata_ir::tensor::checked_numel(&dims) != Some(x.numel()) {
                    return Err(GpuError::Shape(format!("cannot reshape {:?} to {spec:?}", x.shape)));
                }
                Ok(vec![x.view(out, dims)])
            }
            T::Flatten { axis } => {
                let x = self.input(0)?;
                let r = x.shape.len() as i64;
                let a = if *axis < 0 { axis + r } else { *axis };
                if !(0..=r).contains(&a) {
                    return Err(GpuError::Shape(format!("Flatten axis {axis} out of range")));
                }
                let a = a as usize;
                let outer: usize = x.shape[..a].iter().product();
                let inner: usize = x.shape[a..].iter().product();
                Ok(vec![x.view(out, vec![outer, inner])])
            }
            T::Squeeze { axes } => {
                let x = self.input(0)?;
                let axes = match self.host_i64(1)? {
                    Some(a) => Some(a),
                    None => axes.clone(),
                };
                let r = x.shape.len();
                let drop: Vec<usize> = match axes {
                    Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
                    None => (0..r).filter(|&i| x.shape[i] == 1).collect(),
                };
                for &d in &drop {
                    if x.shape[d] != 1 {
                        return Err(GpuError::Shape(format!("cannot squeeze axis {d} of size {}", x.shape[d])));
                    }
                }
                let dims = (0..r).filter(|i| !drop.contains(i)).map(|i| x.shape[i]).collect();
                Ok(vec![x.view(out, dims)])
            }
            T::Unsqueeze { axes } => {
                let x = self.input(0)?;
                let axes = match self.host_i64(1)? {
                    Some(a) => a,
                    None => axes.clone().ok_or_else(|| GpuError::Shape("Unsqueeze without axes".into()))?,
                };
                let r = x.shape.len() + axes.len();
                let mut ins: Vec<usize> = axes.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?;
                ins.sort_unstable();
                ins.dedup();
                if ins.len() != axes.len() {
                    return Err(GpuError::Shape("repeated Unsqueeze axis".into()));
                }
                let mut src = x.shape.iter();
                let dims = (0..r).map(|i| if ins.contains(&i) { 1 } else { *src.next().unwrap_or(&1) }).collect();
                Ok(vec![x.view(out, dims)])
            }
            T::Transpose { perm } => {
                let x = self.input(0)?;
                let r = x.shape.len();
                let perm: Vec<usize> = match perm {
                    Some(p) => p.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
                    None => (0..r).rev().collect(),
                };
                let mut seen = vec![false; r];
                if perm.len() != r || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
                    return Err(GpuError::Shape(format!("invalid permutation {perm:?}")));
                }
                let cs = contiguous(&x.shape);
                let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
                let is: Vec<i64> = perm.iter().map(|&p| cs[p] as i64).collect();
                let y = ctx.alloc(out, shape.clone())?;
                self.copy(ctx, &y, x, &shape, 0, &is, 0, &contiguous(&shape))?;
                Ok(vec![y])
            }
            T::Concat { axis } => {
                let first = self.input(0)?;
                let r = first.shape.len();
                let a = norm_axis(*axis, r)?;
                let mut shape = first.shape.clone();
                shape[a] = 0;
                for i in 0..self.n.inputs.len() {
                    let t = self.input(i)?;
                    if t.shape.len() != r || (0..r).any(|k| k != a && t.shape[k] != first.shape[k]) {
                        return Err(GpuError::Shape(format!(
                            "Concat shapes {:?} and {:?} differ",
                            first.shape, t.shape
                        )));
                    }
                    shape[a] += t.shape[a];
                }
                let y = ctx.alloc(out, shape.clone())?;
                let os = contiguous(&shape);
                let mut at = 0usize;
                for i in 0..self.n.inputs.len() {
                    let t = self.input(i)?;
                    let is: Vec<i64> = contiguous(&t.shape).iter().map(|&s| s as i64).collect();
                    self.copy(ctx, &y, t, &t.shape, 0, &is, at * os[a], &os)?;
                    at += t.shape[a];
                }
                Ok(vec![y])
            }
            T::Slice { starts, ends, axes } => {
                let x = self.input(0)?;
                let r = x.shape.len();
                let starts = self
                    .host_i64(1)?
                    .or_else(|| starts.clone())
                    .ok_or_else(|| GpuError::Shape("Slice without starts".into()))?;
                let ends = self
                    .host_i64(2)?
                    .or_else(|| ends.clone())
                    .ok_or_else(|| GpuError::Shape("Slice without ends".into()))?;
                let axes =
                    self.host_i64(3)?.or_else(|| axes.clone()).unwrap_or_else(|| (0..starts.len() as i64).collect());
                let steps = self.host_i64(4)?.unwrap_or_else(|| vec![1; starts.len()]);
                if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
                    return Err(GpuError::Shape("Slice starts/ends/axes/steps differ in length".into()));
                }
                let cs = contiguous(&x.shape);
                let mut shape = x.shape.clone();
                let mut is: Vec<i64> = cs.iter().map(|&s| s as i64).collect();
                let mut off = 0i64;
                for k in 0..starts.len() {
                    let a = norm_axis(axes[k], r)?;
                    let dim = x.shape[a] as i64;
                    let step = steps[k];
                    if step == 0 {
                        return Err(GpuError::Shape("Slice step 0".into()));
                    }
                    let fix = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
                    let (s, e) = if step > 0 {
                        (fix(starts[k]).clamp(0, dim), fix(ends[k]).clamp(0, dim))
                    } else {
                        (fix(starts[k]).clamp(0, dim - 1), fix(ends[k]).clamp(-1, dim - 1))
                    };
                    let len = if step > 0 {
                        if e > s { (e - s + step - 1) / step } else { 0 }
                    } else if s > e {
                        (s - e + (-step) - 1) / (-step)
                    } else {
                        0
                    };
                    shape[a] = len as usize;
                    if len > 0 {
                        off += s * cs[a] as i64;
                    }
                    is[a] = cs[a] as i64 * step;
                }
                let y = ctx.alloc(out, shape.clone())?;
                self.copy(ctx, &y, x, &shape, off, &is, 0, &contiguous(&shape))?;
                Ok(vec![y])
            }
            T::Split { axis, num_outputs, split } => {
                let x = self.input(0)?;
                let a = norm_axis(*axis, x.shape.len())?;
                let dim = x.shape[a];
                let k = self.n.outputs.len();
                let sizes: Vec<usize> = match self.host_i64(1)?.or_else(|| split.clone()) {
                    Some(s) => s
                        .iter()
                        .map(|&v| usize::try_from(v).map_err(|_| GpuError::Shape("negative split".into())))
                        .collect::<Result<_>>()?,
                    None => {
                        let parts = num_outputs.map(|n| n as usize).unwrap_or(k).max(1);
                        let each = dim.div_ceil(parts);
                        (0..parts).map(|i| each.min(dim.saturating_sub(i * each))).collect()
                    }
                };
                if sizes.iter().sum::<usize>() != dim || sizes.len() != k {
                    return Err(GpuError::Shape(format!(
                        "split {sizes:?} does not match axis size {dim} and {k} outputs"
                    )));
                }
                let cs = contiguous(&x.shape);
                let is: Vec<i64> = cs.iter().map(|&s| s as i64).collect();
                let mut res = Vec::with_capacity(k);
                let mut at = 0usize;
                for &sz in &sizes {
                    let mut shape = x.shape.clone();
                    shape[a] = sz;
                    let y = ctx.alloc(x.dtype, shape.clone())?;
                    self.copy(ctx, &y, x, &shape, (at * cs[a]) as i64, &is, 0, &contiguous(&shape))?;
                    at += sz;
                    res.push(y);
                }
                Ok(res)
            }
            T::Expand {} => {
                let x = self.input(0)?;
                let spec = self.host_i64(1)?.ok_or_else(|| GpuError::Shape("Expand without shape".into()))?;
                let spec: Vec<usize> = spec
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| GpuError::Shape("negative dimension".into())))
                    .collect::<Result<_>>()?;
                let shape = broadcast(&[&x.shape, &spec])?;
                let is: Vec<i64> = bstrides(&x.shape, &shape).iter().map(|&s| s as i64).collect();
                let y = ctx.alloc(out, shape.clone())?;
                self.copy(ctx, &y, x, &shape, 0, &is, 0, &contiguous(&shape))?;
                Ok(vec![y])
            }
            T::Gather { axis } => {
                let x = self.input(0)?;
                let idx = self.input(1)?;
                let a = norm_axis(*axis, x.shape.len())?;
                let dim = x.shape[a];
                if let Some(h) = self.host(1) {
                    for v in h.to_i64_vec() {
                        if v < -(dim as i64) || v >= dim as i64 {
                            return Err(GpuError::Value(format!("Gather index {v} out of range for axis size {dim}")));
                        }
                    }
                }
                let mut shape = x.shape[..a].to_vec();
                shape.extend_from_slice(&idx.shape);
                shape.extend_from_slice(&x.shape[a + 1..]);
                let y = ctx.alloc(out, shape)?;
                let n = y.numel();
                if n > 0 && dim == 0 {
                    return Err(GpuError::Value("Gather from an empty axis".into()));
                }
                let inner: usize = x.shape[a + 1..].iter().product();
                let p = [u32c(n)?, u32c(dim)?, u32c(inner.max(1))?, u32c(idx.numel().max(1))?];
                ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, idx], n)?;
                Ok(vec![y])
            }
            T::DepthToSpace { blocksize, mode } | T::SpaceToDepth { blocksize, mode } => {
                let x = self.input(0)?;
                if x.shape.len() != 4 {
                    return Err(GpuError::Shape(format!("{} needs a 4-D input", t.name())));
                }
                let b = usize::try_from(*blocksize)
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| GpuError::Shape("bad blocksize".into()))?;
                let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                let (view, perm, shape) = if matches!(t, T::DepthToSpace { .. }) {
                    if c % (b * b) != 0 {
                        return Err(GpuError::Shape(format!("channels {c} not divisible by blocksize^2")));
                    }
                    let cc = c / (b * b);
                    let shape = vec![n, cc, h * b, w * b];
                    if mode == "CRD" {
                        (vec![n, cc, b, b, h, w], [0, 1, 4, 2, 5, 3], shape)
                    } else {
                        (vec![n, b, b, cc, h, w], [0, 3, 4, 1, 5, 2], shape)
                    }
                } else {
                    if h % b != 0 || w % b != 0 {
                        return Err(GpuError::Shape(format!("spatial size {h}x{w} not divisible by blocksize {b}")));
                    }
                    let perm = if mode == "CRD" { [0, 1, 3, 5, 2, 4] } else { [0, 3, 5, 1, 2, 4] };
                    (vec![n, c, h / b, b, w / b, b], perm, vec![n, c * b * b, h / b, w / b])
                };
                let cs = contiguous(&view);
                let oshape: Vec<usize> = perm.iter().map(|&p| view[p]).collect();
                let is: Vec<i64> = perm.iter().map(|&p| cs[p] as i64).collect();
                let y = ctx.alloc(out, shape)?;
                self.copy(ctx, &y, x, &oshape, 0, &is, 0, &contiguous(&oshape))?;
                Ok(vec![y])
            }
            T::Tile {} => {
                let x = self.input(0)?;
                let r = x.shape.len();
                let reps = self.host_i64(1)?.ok_or_else(|| GpuError::Shape("Tile without repeats".into()))?;
                if reps.len() != r {
                    return Err(GpuError::Shape(format!("Tile repeats has {} entries for rank {r}", reps.len())));
                }
                if 2 * r > MAX_RANK {
                    return Err(GpuError::Unsupported(format!(
                        "Tile of rank {r} (at most {} on the GPU)",
                        MAX_RANK / 2
                    )));
                }
                let reps: Vec<usize> = reps
                    .iter()
                    .map(|&v| usize::try_from(v).map_err(|_| GpuError::Shape(format!("negative repeat {v}"))))
                    .collect::<Result<_>>()?;
                let cs = contiguous(&x.shape);
                let mut view = Vec::with_capacity(2 * r);
                let mut is = Vec::with_capacity(2 * r);
                let mut shape = Vec::with_capacity(r);
                for k in 0..r {
                    view.extend([reps[k], x.shape[k]]);
                    is.extend([0, cs[k] as i64]);
                    shape.push(
                        reps[k]
                            .checked_mul(x.shape[k])
                            .ok_or_else(|| GpuError::Limit("Tile output overflows".into()))?,
                    );
                }
                let y = ctx.alloc(out, shape)?;
                self.copy(ctx, &y, x, &view, 0, &is, 0, &contiguous(&view))?;
                Ok(vec![y])
            }
            T::Trilu { upper } => {
                let x = self.input(0)?;
                let r = x.shape.len();
                if r < 2 {
                    return Err(GpuError::Shape("Trilu needs rank >= 2".into()));
                }
                let k = match self.host_i64(1)? {
                    Some(v) => *v.first().ok_or_else(|| GpuError::Shape("empty k".into()))?,
                    None => 0,
                };
                let k = k.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                let y = ctx.alloc(out, x.shape.clone())?;
                let n = y.numel();
                let p = [u32c(n)?, u32c(x.shape[r - 2])?, u32c(x.shape[r - 1])?, k as u32, u32::from(*upper != 0)];
                ctx.dispatch_n(&self.pipes[0], &p, &y, &[x], n)?;
                Ok(vec![y])
            }
            T::GatherElements { axis } => {
                let (x, idx) = (self.input(0)?, self.input(1)?);
                let r = x.shape.len();
                check_rank(&x.shape)?;
                let a = norm_axis(*axis, r)?;
                if idx.shape.len() != r {
                    return Err(GpuError::Shape(format!(
                        "GatherElements indices rank {} != data rank {r}",
                        idx.shape.len()
                    )));
                }
                let dim = x.shape[a];
                if let Some(h) = self.host(1)
                    && let Some(v) = h.to_i64_vec().into_iter().find(|&v| v < -(dim as i64) || v >= dim as i64)
                {
                    return Err(GpuError::Value(format!("GatherElements index {v} out of range for axis size {dim}")));
                }
                let y = ctx.alloc(out, idx.shape.clone())?;
                let n = y.numel();
                if n > 0 && dim == 0 {
                    return Err(GpuError::Value("GatherElements from an empty axis".into()));
                }
                let mut p = vec![0u32; 20];
                put(&mut p, 0, &[n, r, a, dim])?;
                put(&mut p, 4, &idx.shape)?;
                put(&mut p, 12, &contiguous(&x.shape))?;
                ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, idx], n)?;
                Ok(vec![y])
            }
            T::Pad { pads, value, .. } => {
                let x = self.input(0)?;
                let r = x.shape.len();
                check_rank(&x.shape)?;
                let pads = self
                    .host_i64(1)?
                    .or_else(|| pads.clone())
                    .ok_or_else(|| GpuError::Shape("Pad without pads".into()))?;
                let axes: Vec<usize> = match self.host_i64(3)? {
                    Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
                    None => (0..r).collect(),
                };
                if pads.len() != 2 * axes.len() {
                    return Err(GpuError::Shape(format!("{} pads for {} axes", pads.len(), axes.len())));
                }
                let mut begin = vec![0i64; r];
                let mut end = vec![0i64; r];
                for (k, &a) in axes.iter().enumerate() {
                    begin[a] = pads[k];
                    end[a] = pads[k + axes.len()];
                }
                let mut shape = Vec::with_capacity(r);
                for i in 0..r {
                    let d = x.shape[i] as i64 + begin[i] + end[i];
                    if d < 0 {
                        return Err(GpuError::Shape("negative padded size".into()));
                    }
                    if x.shape[i] == 0 && d > 0 && !matches!(t, T::Pad { mode, .. } if mode == "constant") {
                        return Err(GpuError::Shape("edge/reflect padding of an empty axis".into()));
                    }
                    shape.push(d as usize);
                }
                let cv = match self.host(2) {
                    Some(h) if h.numel() >= 1 => h.to_f64_vec()[0],
                    _ => f64::from(value.unwrap_or(0.0)),
                };
                let word = match word_class(x.dtype) {
                    Some(crate::device::Word::F32) => f32w(cv as f32),
                    Some(crate::device::Word::Bool) => u32::from(cv != 0.0),
                    Some(crate::device::Word::U32) => (cv as i64).clamp(0, u32::MAX as i64) as u32,
                    _ => (cv as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32 as u32,
                };
                let y = ctx.alloc(out, shape.clone())?;
                let n = y.numel();
                let mut p = vec![0u32; 36];
                p[0] = u32c(n)?;
                p[1] = r as u32;
                p[2] = word;
                put(&mut p, 4, &shape)?;
                put(&mut p, 12, &x.shape)?;
                for i in 0..r {
                    p[20 + i] = i32::try_from(begin[i]).map_err(|_| GpuError::Limit("pad exceeds i32".into()))? as u32;
                }
                put(&mut p, 28, &contiguous(&x.shape))?;
                ctx.dispatch_n(&self.pipes[0], &p, &y, &[x], n)?;
                Ok(vec![y])
            }
            other => self.tensor_ext(ctx, other),
        }
    }

    fn matmul(&self, ctx: &mut Ctx, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        if a.shape.is_empty() || b.shape.is_empty() {
            return Err(GpuError::Shape("MatMul of a scalar".into()));
        }
        let a2 = if a.shape.len() == 1 { vec![1, a.shape[0]] } else { a.shape.clone() };
        let b2 = if b.shape.len() == 1 { vec![b.shape[0], 1] } else { b.shape.clone() };
        let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
        let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
        if k != k2 {
            return Err(GpuError::Shape(format!("MatMul shapes {:?} and {:?} do not match", a.shape, b.shape)));
        }
        let ab = &a2[..a2.len() - 2];
        let bb = &b2[..b2.len() - 2];
        let batch = broadcast(&[ab, bb])?;
        check_rank(&batch)?;
        let bs_a: Vec<usize> = bstrides(ab, &batch).iter().map(|s| s * m * k).collect();
        let bs_b: Vec<usize> = bstrides(bb, &batch).iter().map(|s| s * k * n).collect();
        let mut shape = batch.clone();
        if a.shape.len() > 1 {
            shape.push(m);
        }
        if b.shape.len() > 1 {
            shape.push(n);
        }
        let y = ctx.alloc(DType::F32, shape)?;
        let nb: usize = batch.iter().product();
        let p = self.mm_params(m, n, k, nb, &batch, &bs_a, &bs_b, false, false, None, 1.0, 0.0)?;
        self.mm_dispatch(ctx, &p, &y, a, b, b, m, n, nb)?;
        Ok(y)
    }

    #[allow(clippy::too_many_arguments)]
    fn mm_params(
        &self,
        m: usize,
        n: usize,
        k: usize,
        nb: usize,
        batch: &[usize],
        bs_a: &[usize],
        bs_b: &[usize],
        ta: bool,
        tb: bool,
        c: Option<(usize, usize)>,
        alpha: f32,
        beta: f32,
    ) -> Result<Vec<u32>> {
        let mut p = vec![0u32; 40];
        put(&mut p, 0, &[m, n, k, nb, batch.len()])?;
        p[5] = u32::from(ta);
        p[6] = u32::from(tb);
        p[7] = u32::from(c.is_some());
        p[8] = f32w(alpha);
        p[9] = f32w(beta);
        if let Some((sm, sn)) = c {
            put(&mut p, 10, &[sm, sn])?;
        }
        put(&mut p, 16, batch)?;
        put(&mut p, 24, bs_a)?;
        put(&mut p, 32, bs_b)?;
        // Products must stay addressable in 32 bits.
        u32c(nb.saturating_mul(m).saturating_mul(n))?;
        u32c(nb.saturating_mul(m).saturating_mul(k))?;
        u32c(nb.saturating_mul(k).saturating_mul(n))?;
        Ok(p)
    }

    #[allow(clippy::too_many_arguments)]
    fn mm_dispatch(
        &self,
        ctx: &mut Ctx,
        p: &[u32],
        y: &GpuTensor,
        a: &GpuTensor,
        b: &GpuTensor,
        c: &GpuTensor,
        m: usize,
        n: usize,
        nb: usize,
    ) -> Result<()> {
        if m == 0 || n == 0 || nb == 0 {
            return Ok(());
        }
        let max = ctx.dev.limits.max_compute_workgroups_per_dimension as usize;
        let gx = n.div_ceil(TILE as usize);
        let gy = m.div_ceil(TILE as usize);
        if gx > max || gy > max || nb > max {
            return Err(GpuError::Limit(format!(
                "matrix product {nb}x{m}x{n} exceeds the dispatch limit of {max} workgroups per dimension"
            )));
        }
        ctx.dispatch(&self.pipes[0], p, y, &[a, b, c], [gx as u32, gy as u32, nb as u32]);
        Ok(())
    }

    fn nn(&self, ctx: &mut Ctx, o: &NnOp) -> Result<Vec<GpuTensor>> {
        match o {
            NnOp::MatMul {} => Ok(vec![self.matmul(ctx, self.input(0)?, self.input(1)?)?]),
            NnOp::Gemm { alpha, beta, transA, transB, .. } => {
                let (a, b) = (self.input(0)?, self.input(1)?);
                if a.shape.len() != 2 || b.shape.len() != 2 {
                    return Err(GpuError::Shape("Gemm needs 2-D inputs".into()));
                }
                let (ta, tb) = (*transA != 0, *transB != 0);
                let (m, k) = if ta { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
                let (k2, n) = if tb { (b.shape[1], b.shape[0]) } else { (b.shape[0], b.shape[1]) };
                if k != k2 {
                    return Err(GpuError::Shape(format!("Gemm shapes {:?} and {:?} do not match", a.shape, b.shape)));
                }
                let c = self.opt_input(2);
                let cs = match c {
                    Some(c) => {
                        if broadcast(&[&c.shape, &[m, n]])? != [m, n] {
                            return Err(GpuError::Shape(format!(
                                "Gemm C {:?} does not broadcast to [{m}, {n}]",
                                c.shape
                            )));
                        }
                        let s = bstrides(&c.shape, &[m, n]);
                        Some((s[0], s[1]))
                    }
                    None => None,
                };
                let y = ctx.alloc(DType::F32, vec![m, n])?;
                let p = self.mm_params(m, n, k, 1, &[], &[], &[], ta, tb, cs, *alpha, *beta)?;
                self.mm_dispatch(ctx, &p, &y, a, b, c.unwrap_or(a), m, n, 1)?;
                Ok(vec![y])
            }
            NnOp::Conv { auto_pad, dilations, group, pads, strides, .. } => {
                let (x, w) = (self.input(0)?, self.input(1)?);
                let r = x.shape.len();
                if !(r == 3 || r == 4) || w.shape.len() != r {
                    return Err(GpuError::Unsupported(format!(
                        "Conv of rank {r} input and rank {} weights",
                        w.shape.len()
                    )));
                }
                let g = usize::try_from(*group)
                    .ok()
                    .filter(|&g| g > 0)
                    .ok_or_else(|| GpuError::Shape("bad group".into()))?;
                let (nb, c) = (x.shape[0], x.shape[1]);
                let m = w.shape[0];
                if c % g != 0 || m % g != 0 || w.shape[1] * g != c {
                    return Err(GpuError::Shape(format!("Conv channels: input {c}, weights {:?}, group {g}", w.shape)));
                }
                let kernel = &w.shape[2..];
                let sp = Spatial::new(&x.shape[2..], kernel, strides, dilations, pads, auto_pad.as_str(), false)?;
                let bias = self.opt_input(2);
                if let Some(b) = bias
                    && b.numel() != m
                {
                    return Err(GpuError::Shape(format!("Conv bias has {} elements, expected {m}", b.numel())));
                }
                let mut shape = vec![nb, m];
                shape.extend_from_slice(&sp.out[2 - sp.rank..]);
                let y = ctx.alloc(DType::F32, shape)?;
                let n = y.numel();
                let mut p = vec![0u32; 17];
                put(&mut p, 0, &[n, c, sp.inp[0], sp.inp[1], m, sp.out[0], sp.out[1], sp.k[0], sp.k[1]])?;
                put(&mut p, 9, &[sp.s[0], sp.s[1], sp.d[0], sp.d[1], sp.pb[0], sp.pb[1], g])?;
                p[16] = u32::from(bias.is_some());
                ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, w, bias.unwrap_or(w)], n)?;
                Ok(vec![y])
            }
            NnOp::ConvTranspose { dilations, group, output_padding, pads, strides, .. } => {
                let (x, w) = (self.input(0)?, self.input(1)?);
                let r = x.shape.len();
                if !(r == 3 || r == 4) || w.shape.len() != r {
                    return Err(GpuError::Unsupported(format!("ConvTranspose of rank {r}")));
                }
                let g = usize::try_from(*group)
                    .ok()
                    .filter(|&g| g > 0)
                    .ok_or_else(|| GpuError::Shape("bad group".into()))?;
                let (nb, c) = (x.shape[0], x.shape[1]);
                if w.shape[0] != c || c % g != 0 {
                    return Err(GpuError::Shape(format!("ConvTranspose channels: input {c}, weights {:?}", w.shape)));
                }
                let m = w.shape[1] * g;
                let k = r - 2;
                let list = |v: &Option<Vec<i64>>, n: usize, def: i64| -> Result<Vec<usize>> {
                    let v = v.clone().unwrap_or_else(|| vec![def; n]);
                    if v.len() != n {
                        return Err(GpuError::Shape("attribute length does not match the kernel rank".into()));
                    }
                    v.iter()
                        .map(|&x| usize::try_from(x).map_err(|_| GpuError::Shape(format!("negative attribute {x}"))))
                        .collect()
                };
                let s = list(strides, k, 1)?;
                let d = list(dilations, k, 1)?;
                let p = list(pads, 2 * k, 0)?;
                let op = list(output_padding, k, 0)?;
                if s.contains(&0) || d.contains(&0) {
                    return Err(GpuError::Shape("zero stride or dilation".into()));
                }
                let mut geo = [[1usize, 1, 1, 1, 0, 1]; 2]; // in, out, kernel, stride, pad_begin, dilation
                for i in 0..k {
                    let j = i + 2 - k;
                    let (inp, ker) = (x.shape[2 + i], w.shape[2 + i]);
                    let full = s[i]
                        .checked_mul(inp.saturating_sub(1))
                        .and_then(|v| v.checked_add(op[i]))
                        .and_then(|v| v.checked_add(d[i] * ker.saturating_sub(1) + 1))
                        .ok_or_else(|| GpuError::Shape("output size overflows".into()))?;
                    let out = full
                        .checked_sub(p[i] + p[i + k])
                        .filter(|&o| o > 0)
                        .ok_or_else(|| GpuError::Shape("non-positive output size".into()))?;
                    geo[j] = [inp, out, ker, s[i], p[i], d[i]];
                }
                let bias = self.opt_input(2);
                if bias.is_some_and(|b| b.numel() != m) {
                    return Err(GpuError::Shape(format!("ConvTranspose bias must have {m} elements")));
                }
                let mut shape = vec![nb, m];
                shape.extend((2 - k..2).map(|j| geo[j][1]));
                let y = ctx.alloc(DType::F32, shape)?;
                let n = y.numel();
                let mut prm = vec![0u32; 17];
                put(&mut prm, 0, &[n, c, geo[0][0], geo[1][0], m, geo[0][1], geo[1][1], geo[0][2], geo[1][2]])?;
                put(&mut prm, 9, &[geo[0][3], geo[1][3], geo[0][5], geo[1][5], geo[0][4], geo[1][4], g])?;
                prm[16] = u32::from(bias.is_some());
                ctx.dispatch_n(&self.pipes[0], &prm, &y, &[x, w, bias.unwrap_or(w)], n)?;
                Ok(vec![y])
            }
            NnOp::Resize { axes, coordinate_transformation_mode, nearest_mode, .. } => {
                let coord = support::resize_coord_code(coordinate_transformation_mode.as_str())
                    .map_err(GpuError::Unsupported)?;
                let near = support::resize_nearest_code(nearest_mode.as_str()).map_err(GpuError::Unsupported)?;
                let scales = self.host(2).filter(|t| t.numel() > 0).map(|t| t.to_f64_vec());
                let sizes = self.host(3).filter(|t| t.numel() > 0).map(|t| t.to_i64_vec());
                if self.n.inputs.get(2).copied().flatten().is_some() && scales.is_none() && self.host(2).is_none()
                    || self.n.inputs.get(3).copied().flatten().is_some() && sizes.is_none() && self.host(3).is_none()
                {
                    return Err(GpuError::Unsupported("Resize scales/sizes must be constants".into()));
                }
                // With `axes`, scales/sizes cover only those axes: expand them to every axis.
                let (scales, sizes) = match axes {
                    None => (scales, sizes),
                    Some(ax) => {
                        let x = self.input(0)?;
                        let r = x.shape.len();
                        let ax: Vec<usize> = ax.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?;
                        let expand_f = |v: Vec<f64>| -> Result<Vec<f64>> {
                            if v.len() != ax.len() {
                                return Err(GpuError::Shape("Resize scales do not match axes".into()));
                            }
                            let mut full = vec![1.0; r];
                            ax.iter().zip(v).for_each(|(&a, s)| full[a] = s);
                            Ok(full)
                        };
                        let expand_i = |v: Vec<i64>| -> Result<Vec<i64>> {
                            if v.len() != ax.len() {
                                return Err(GpuError::Shape("Resize sizes do not match axes".into()));
                            }
                            let mut full: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
                            ax.iter().zip(v).for_each(|(&a, s)| full[a] = s);
                            Ok(full)
                        };
                        (scales.map(expand_f).transpose()?, sizes.map(expand_i).transpose()?)
                    }
                };
                self.resize(ctx, scales, sizes, coord, near)
            }
            NnOp::Upsample { scales, .. } => {
                let sc = match self.host(1) {
                    Some(t) => Some(t.to_f64_vec()),
                    None => scales.as_ref().map(|v| v.iter().map(|&x| f64::from(x)).collect()),
                };
                self.resize(ctx, sc, None, 1, 2)
            }
            NnOp::MaxPool { auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, .. }
            | NnOp::AveragePool { auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, .. } => {
                let x = self.input(0)?;
                let r = x.shape.len();
                if r == 5 || self.n.outputs.get(1).copied().flatten().is_some() {
                    return self.pool_nd(ctx, o);
                }
                if !(r == 3 || r == 4) {
                    return Err(GpuError::Unsupported(format!("pooling of rank {r} input")));
                }
                let kernel: Vec<usize> = kernel_shape
                    .iter()
                    .map(|&k| usize::try_from(k).map_err(|_| GpuError::Shape("bad kernel".into())))
                    .collect::<Result<_>>()?;
                let sp = Spatial::new(&x.shape[2..], &kernel, strides, dilations, pads, auto_pad.as_str(), *ceil_mode)?;
                let include = matches!(o, NnOp::AveragePool { count_include_pad: true, .. });
                let mut shape = x.shape[..2].to_vec();
                shape.extend_from_slice(&sp.out[2 - sp.rank..]);
                let y = ctx.alloc(DType::F32, shape)?;
                let n = y.numel();
                let mut p = vec![0u32; 16];
                put(&mut p, 0, &[n, sp.inp[0], sp.inp[1], sp.out[0], sp.out[1], sp.k[0], sp.k[1], sp.s[0], sp.s[1]])?;
                put(&mut p, 9, &[sp.d[0], sp.d[1], sp.pb[0], sp.pb[1], usize::from(include), sp.pe[0], sp.pe[1]])?;
                ctx.dispatch_n(&self.pipes[0], &p, &y, &[x], n)?;
                Ok(vec![y])
            }
            NnOp::GlobalAveragePool {} | NnOp::GlobalMaxPool {} => {
                let x = self.input(0)?;
                let axes: Vec<usize> = (2..x.shape.len()).collect();
                Ok(vec![self.reduce(ctx, x, &axes, true)?])
            }
            NnOp::BatchNormalization { epsilon, .. } => {
                let x = self.input(0)?;
                if x.shape.len() < 2 {
                    return Err(GpuError::Shape("BatchNormalization input of rank < 2".into()));
                }
                let c = x.shape[1];
                let ps: Vec<&GpuTensor> = (1..5).map(|i| self.input(i)).collect::<Result<_>>()?;
                if ps.iter().any(|t| t.numel() != c) {
                    return Err(GpuError::Shape(format!("BatchNormalization parameters must have {c} elements")));
                }
                let inner: usize = x.shape[2..].iter().product();
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                let n = y.numel();
                let p = [u32c(n)?, u32c(c)?, u32c(inner.max(1))?, f32w(*epsilon)];
                ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, ps[0], ps[1], ps[2], ps[3]], n)?;
                Ok(vec![y])
            }
            NnOp::LayerNormalization { axis, epsilon, .. } | NnOp::RMSNormalization { axis, epsilon, .. } => {
                let x = self.input(0)?;
                let a = norm_axis(*axis, x.shape.len())?;
                let l: usize = x.shape[a..].iter().product();
                let rows: usize = x.shape[..a].iter().product();
                let s = self.input(1)?;
                let b = self.opt_input(2);
                if s.numel() != l || b.is_some_and(|b| b.numel() != l) {
                    return Err(GpuError::Unsupported("normalisation with broadcast scale or bias".into()));
                }
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                let p = [u32c(rows)?, u32c(l)?, f32w(*epsilon), u32::from(b.is_some()), 0];
                if l > 0 {
                    ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, s, b.unwrap_or(s)], rows)?;
                }
                let mut outs = vec![y];
                // Optional Mean and InvStdDev outputs: shape [d0..d(axis-1), 1, ..., 1].
                for k in 1..self.n.outputs.len() {
                    let mut shape = x.shape[..a].to_vec();
                    shape.resize(x.shape.len(), 1);
                    let st = ctx.alloc(DType::F32, shape)?;
                    if self.n.outputs[k].is_some() && l > 0 {
                        let mut p2 = p;
                        p2[4] = u32::from(k == 2);
                        ctx.dispatch_n(&self.pipes[1], &p2, &st, &[x], rows)?;
                    }
                    outs.push(st);
                }
                Ok(outs)
            }
            NnOp::Dropout { .. } => {
                if self.n.inputs.get(2).copied().flatten().is_some() {
                    match self.host(2) {
                        Some(t) if t.to_i64_vec().iter().all(|&x| x == 0) => {}
                        _ => return Err(GpuError::Unsupported("Dropout in training mode".into())),
                    }
                }
                self.dropout_inference(ctx)
            }
            NnOp::RNN { .. } | NnOp::GRU { .. } | NnOp::LSTM { .. } => self.recurrent(ctx, o),
            other => self.nn_ext(ctx, other),
        }
    }

    fn resize(
        &self,
        ctx: &mut Ctx,
        scales: Option<Vec<f64>>,
        sizes: Option<Vec<i64>>,
        coord: u32,
        near: u32,
    ) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let r = x.shape.len();
        if r < 2 {
            return Err(GpuError::Unsupported("Resize of rank < 2".into()));
        }
        let (shape, sc): (Vec<usize>, Vec<f64>) = match (sizes, scales) {
            (Some(sz), _) => {
                if sz.len() != r {
                    return Err(GpuError::Shape(format!("Resize sizes has {} entries for rank {r}", sz.len())));
                }
                let shape: Vec<usize> = sz
                    .iter()
                    .map(|&v| usize::try_from(v).map_err(|_| GpuError::Shape(format!("negative size {v}"))))
                    .collect::<Result<_>>()?;
                let sc =
                    shape.iter().zip(&x.shape).map(|(&o, &i)| if i == 0 { 1.0 } else { o as f64 / i as f64 }).collect();
                (shape, sc)
            }
            (None, Some(sc)) => {
                if sc.len() != r || sc.iter().any(|&v| !(v > 0.0 && v.is_finite())) {
                    return Err(GpuError::Shape(format!("invalid Resize scales {sc:?}")));
                }
                let shape = sc
                    .iter()
                    .zip(&x.shape)
                    .map(|(&s, &i)| {
                        let o = (i as f64 * s).floor();
                        if o > u32::MAX as f64 {
                            Err(GpuError::Limit("Resize output too large".into()))
                        } else {
                            Ok(o as usize)
                        }
                    })
                    .collect::<Result<_>>()?;
                (shape, sc)
            }
            (None, None) => return Err(GpuError::Shape("Resize needs scales or sizes".into())),
        };
        if (0..r - 2).any(|i| shape[i] != x.shape[i]) {
            return Err(GpuError::Unsupported("Resize of axes other than the last two".into()));
        }
        let y = ctx.alloc(DType::F32, shape.clone())?;
        let n = y.numel();
        if n > 0 && x.numel() == 0 {
            return Err(GpuError::Shape("Resize of an empty tensor".into()));
        }
        let mut p = vec![0u32; 12];
        put(&mut p, 0, &[n, x.shape[r - 2], x.shape[r - 1], shape[r - 2], shape[r - 1]])?;
        let (rh, rw) = (sc[r - 2] * x.shape[r - 2] as f64, sc[r - 1] * x.shape[r - 1] as f64);
        p[7] = u32::from(rh == 1.0) | (u32::from(rw == 1.0) << 1);
        p[10] = f32w(rh as f32);
        p[11] = f32w(rw as f32);
        p[5] = coord;
        p[6] = near;
        p[8] = f32w(sc[r - 2] as f32);
        p[9] = f32w(sc[r - 1] as f32);
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[x], n)?;
        Ok(vec![y])
    }

    fn reduce(&self, ctx: &mut Ctx, x: &GpuTensor, axes: &[usize], keepdims: bool) -> Result<GpuTensor> {
        check_rank(&x.shape)?;
        let r = x.shape.len();
        let cs = contiguous(&x.shape);
        let keep: Vec<usize> = (0..r).map(|i| if axes.contains(&i) { 1 } else { x.shape[i] }).collect();
        let red: Vec<usize> = (0..r).map(|i| if axes.contains(&i) { x.shape[i] } else { 1 }).collect();
        let red_n: usize = red.iter().product();
        let shape: Vec<usize> =
            if keepdims { keep.clone() } else { (0..r).filter(|i| !axes.contains(i)).map(|i| x.shape[i]).collect() };
        let y = ctx.alloc(DType::F32, shape)?;
        let n = y.numel();
        let mut p = vec![0u32; 36];
        put(&mut p, 0, &[n, r, red_n])?;
        put(&mut p, 4, &keep)?;
        put(&mut p, 12, &cs)?;
        put(&mut p, 20, &red)?;
        put(&mut p, 28, &cs)?;
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[x], n)?;
        Ok(y)
    }

    fn reduce_family(&self, ctx: &mut Ctx, r: &R) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let rank = x.shape.len();
        if let Some(p) = r.reduce_params() {
            let ax = self.host_i64(1)?.or_else(|| p.axes.map(<[i64]>::to_vec)).unwrap_or_default();
            let list: Vec<usize> = if ax.is_empty() {
                if p.noop_with_empty_axes {
                    return Ok(vec![x.clone()]);
                }
                (0..rank).collect()
            } else {
                ax.iter().map(|&a| norm_axis(a, rank)).collect::<Result<_>>()?
            };
            return Ok(vec![self.reduce(ctx, x, &list, p.keepdims)?]);
        }
        match r {
            R::Softmax { axis } | R::LogSoftmax { axis } | R::SoftmaxLegacy { axis } | R::LogSoftmaxLegacy { axis } => {
                let legacy = matches!(r, R::SoftmaxLegacy { .. } | R::LogSoftmaxLegacy { .. });
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                if rank == 0 {
                    return Err(GpuError::Shape("softmax of a scalar".into()));
                }
                let a = norm_axis(*axis, rank)?;
                let (l, inner) = if legacy {
                    (x.shape[a..].iter().product::<usize>(), 1usize)
                } else {
                    (x.shape[a], x.shape[a + 1..].iter().product::<usize>())
                };
                if l == 0 || inner == 0 {
                    return Ok(vec![y]);
                }
                let rows = x.numel() / l;
                ctx.dispatch_n(&self.pipes[0], &[u32c(rows)?, u32c(l)?, u32c(inner)?], &y, &[x], rows)?;
                Ok(vec![y])
            }
            R::ArgMax { axis, keepdims, select_last_index } | R::ArgMin { axis, keepdims, select_last_index } => {
                check_rank(&x.shape)?;
                let a = norm_axis(*axis, rank)?;
                if x.shape[a] == 0 {
                    return Err(GpuError::Shape("arg reduction over an empty axis".into()));
                }
                let cs = contiguous(&x.shape);
                let keep: Vec<usize> = (0..rank).map(|i| if i == a { 1 } else { x.shape[i] }).collect();
                let red: Vec<usize> = (0..rank).map(|i| if i == a { x.shape[i] } else { 1 }).collect();
                let shape: Vec<usize> = if *keepdims != 0 {
                    keep.clone()
                } else {
                    (0..rank).filter(|&i| i != a).map(|i| x.shape[i]).collect()
                };
                let y = ctx.alloc(self.out_dtype(0)?, shape)?;
                let n = y.numel();
                let mut p = vec![0u32; 36];
                put(&mut p, 0, &[n, rank, x.shape[a], usize::from(*select_last_index != 0)])?;
                put(&mut p, 4, &keep)?;
                put(&mut p, 12, &cs)?;
                put(&mut p, 20, &red)?;
                put(&mut p, 28, &cs)?;
                ctx.dispatch_n(&self.pipes[0], &p, &y, &[x], n)?;
                Ok(vec![y])
            }
            other => self.reduce_ext(ctx, other),
        }
    }
}

/// Resolved 2-D window geometry (1-D problems get a leading unit axis).
struct Spatial {
    rank: usize,
    inp: [usize; 2],
    out: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    pb: [usize; 2],
    pe: [usize; 2],
}

impl Spatial {
    fn new(
        inp: &[usize],
        kernel: &[usize],
        strides: &Option<Vec<i64>>,
        dilations: &Option<Vec<i64>>,
        pads: &Option<Vec<i64>>,
        auto_pad: &str,
        ceil: bool,
    ) -> Result<Spatial> {
        let r = inp.len();
        if kernel.len() != r || !(1..=2).contains(&r) {
            return Err(GpuError::Shape(format!("kernel {kernel:?} does not match spatial input {inp:?}")));
        }
        let pos = |v: &Option<Vec<i64>>, what: &str, allow_zero: bool| -> Result<Vec<usize>> {
            match v {
                None => Ok(vec![if allow_zero { 0 } else { 1 }; r]),
                Some(v) => v
                    .iter()
                    .map(|&x| usize::try_from(x).ok().filter(|&x| allow_zero || x > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| GpuError::Shape(format!("invalid {what} {v:?}"))),
            }
        };
        let s = pos(strides, "strides", false)?;
        let d = pos(dilations, "dilations", false)?;
        let p = match pads {
            Some(_) => pos(pads, "pads", true)?,
            None => vec![0; 2 * r],
        };
        if s.len() != r || d.len() != r || p.len() != 2 * r {
            return Err(GpuError::Shape("strides/dilations/pads do not match the kernel rank".into()));
        }
        let mut sp =
            Spatial { rank: r, inp: [1; 2], out: [1; 2], k: [1; 2], s: [1; 2], d: [1; 2], pb: [0; 2], pe: [0; 2] };
        for i in 0..r {
            let j = i + 2 - r;
            let ext = d[i]
                .checked_mul(kernel[i].saturating_sub(1))
                .and_then(|v| v.checked_add(1))
                .ok_or_else(|| GpuError::Shape("kernel overflows".into()))?;
            let (pb, pe) = match auto_pad {
                "SAME_UPPER" | "SAME_LOWER" => {
                    let o = inp[i].div_ceil(s[i]);
                    let total = ((o.saturating_sub(1)) * s[i] + ext).saturating_sub(inp[i]);
                    if auto_pad == "SAME_UPPER" {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    }
                }
                "VALID" => (0, 0),
                _ => (p[i], p[i + r]),
            };
            let padded = inp[i] + pb + pe;
            if padded < ext {
                return Err(GpuError::Shape(format!("window {ext} larger than padded input {padded}")));
            }
            let span = padded - ext;
            let mut o = if ceil { span.div_ceil(s[i]) + 1 } else { span / s[i] + 1 };
            if ceil && (o - 1) * s[i] >= inp[i] + pb {
                o -= 1;
            }
            sp.inp[j] = inp[i];
            sp.out[j] = o;
            sp.k[j] = kernel[i];
            sp.s[j] = s[i];
            sp.d[j] = d[i];
            sp.pb[j] = pb;
            sp.pe[j] = pe;
        }
        Ok(sp)
    }
}
