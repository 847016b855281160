//! The operator families: one module per family, each with ONE planning
//! function per node and the code that runs the plan.
//!
//! [`plan`] is both the support query and the first step of compilation:
//! for a node it returns either a [`NodePlan`] (the family's typed plan,
//! naming each pipeline it dispatches and the attribute values decoded for
//! it) or the reason the GPU cannot run the node. [`crate::GpuBackend::supports`]
//! plans without a device (pipelines are only described); compiling plans
//! with the device (pipelines are created). Running a node is a match on its
//! plan ([`Exec::run`]), never on the operator again, so the two cannot
//! disagree.

use std::sync::Arc;

use strata_ir::ops::{ElementwiseOp as E, NnOp, QuantOp, ReduceOp as R, SignalOp, TensorOp as T};
use strata_ir::{DType, Graph, GraphId, Model, Node, NodeId, Op, TensorData, ValueId, ValueType};

use crate::ctx::Ctx;
use crate::device::{GpuDevice, GpuTensor, Word, gpu_dtype, word_class};
use crate::error::{GpuError, Result};
use crate::graph::CompiledGraph;
use crate::kernels::Shader;
use crate::wgsl::Params;
use elementwise::binary;

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod einsum;
pub(crate) mod elementwise;
pub(crate) mod fused;
pub(crate) mod generate;
pub(crate) mod index;
pub(crate) mod linalg;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod movement;
pub(crate) mod narrow;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod quant;
pub(crate) mod recurrent;
pub(crate) mod reduce;
pub(crate) mod resize;
pub(crate) mod rowwise;
pub(crate) mod sample;
pub(crate) mod scatter;
pub(crate) mod sequence;
pub(crate) mod signal;
pub(crate) mod training;

/// A compute pipeline a plan dispatches. Created when the plan is made for
/// a device; a plan made for a support query only names it.
#[derive(Debug)]
pub(crate) struct Kernel {
    pipe: Option<Arc<wgpu::ComputePipeline>>,
    /// An `integer.wgsl` kernel: the run's status buffer is bound before the
    /// inputs and the node index is a parameter.
    pub(crate) checked: bool,
}

impl Kernel {
    /// The pipeline (always there in a compiled graph).
    pub(crate) fn pipe(&self) -> Result<&Arc<wgpu::ComputePipeline>> {
        self.pipe.as_ref().ok_or_else(|| GpuError::Wgpu("a kernel of the plan was not created".into()))
    }
}

/// Makes the [`Kernel`]s of one node's plan.
pub(crate) struct Kernels<'a> {
    dev: Option<&'a GpuDevice>,
    /// The first pipeline that could not be created.
    err: Option<GpuError>,
    /// Some kernel may report an error through the status buffer.
    fallible: bool,
}

impl<'a> Kernels<'a> {
    /// Kernels created on `dev`, or only described (`None`, support queries).
    pub(crate) fn new(dev: Option<&'a GpuDevice>) -> Kernels<'a> {
        Kernels { dev, err: None, fallible: false }
    }

    /// The pipeline of `entry` in `shader` with these override constants.
    pub(crate) fn get(&mut self, shader: Shader, entry: &'static str, overrides: &[(&'static str, u32)]) -> Kernel {
        let checked = shader == Shader::Integer;
        if checked && int_kernel_may_fail(entry, overrides) {
            self.fallible = true;
        }
        let pipe = match self.dev {
            Some(d) if self.err.is_none() => match d.pipeline(shader, entry, overrides) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.err = Some(e);
                    None
                }
            },
            _ => None,
        };
        Kernel { pipe, checked }
    }

    /// The pipeline of `entry` in generated WGSL `source` (a fused program).
    pub(crate) fn generated(&mut self, source: String, entry: &'static str) -> Kernel {
        let pipe = match self.dev {
            Some(d) if self.err.is_none() => match d.generated_pipeline(&source, entry) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.err = Some(e);
                    None
                }
            },
            _ => None,
        };
        Kernel { pipe, checked: false }
    }

    /// Storage buffers a kernel may bind (WebGPU's default without a device).
    pub(crate) fn storage_buffers(&self) -> usize {
        self.dev.map_or(8, |d| d.limits.max_storage_buffers_per_shader_stage as usize)
    }

    /// `copy_strided` of `movement.wgsl`, used by several families.
    pub(crate) fn copy(&mut self) -> Kernel {
        self.get(Shader::Movement, "copy_strided", &[])
    }

    /// After planning on a device: the first pipeline error, and whether a
    /// kernel may report an error at run time.
    pub(crate) fn finish(self) -> Result<bool> {
        match self.err {
            Some(e) => Err(e),
            None => Ok(self.fallible),
        }
    }
}

/// Can the `integer.wgsl` pipeline `entry` with these overrides report an
/// error (range-checked int64/uint64 arithmetic, or a division or modulo)?
fn int_kernel_may_fail(entry: &str, overrides: &[(&'static str, u32)]) -> bool {
    let get = |k: &str| overrides.iter().find(|(n, _)| *n == k).map(|&(_, v)| v);
    get("CHECK").is_some_and(|c| c != 0)
        || (entry == "binary" && matches!(get("OP"), Some(binary::DIV | binary::FMOD | binary::MOD)))
}

/// Word interpretation code of the `DT` override: 0 f32, 1 i32, 2 bool,
/// 3 u32 (by the element type's storage class, [`word_class`]).
pub(crate) fn dt_code(d: DType) -> u32 {
    match word_class(d) {
        Some(Word::F32) => word_type::F32,
        Some(Word::Bool) => word_type::BOOL,
        Some(Word::U32) => word_type::U32,
        _ => word_type::I32,
    }
}

/// Whether `dt_code` gave f32 or i32 words (the kinds with arithmetic in
/// every kernel).
pub(crate) fn is_f32_or_i32(code: u32) -> bool {
    code == word_type::F32 || code == word_type::I32
}

crate::wgsl::wgsl_codes! {
    /// How a kernel reads its 32-bit words (`DT` / `DTB` overrides): the
    /// storage classes of [`Word`].
    pub(crate) mod word_type: DT { F32 = 0, I32 = 1, BOOL = 2, U32 = 3 }
}

/// Is `d` stored as f32 words (float32 and the narrower float types)?
pub(crate) fn is_float_word(d: DType) -> bool {
    word_class(d) == Some(Word::F32)
}

/// Is `d` an integer type stored as i32 or u32 words?
pub(crate) fn is_int_word(d: DType) -> bool {
    matches!(word_class(d), Some(Word::I32 | Word::U32))
}

/// Is `v` a constant of graph `g` (an initializer or the output of a Constant node)?
fn is_const(g: &Graph, v: ValueId) -> bool {
    g.initializer(v).is_some()
        || g.nodes.iter().any(|n| matches!(n.op, Op::Tensor(T::Constant { .. })) && n.outputs.contains(&Some(v)))
}

/// Small int64 tensors are never computed on the GPU except by
/// ArgMax/ArgMin and TopK (indices), so they arrive uploaded from the host, with a host copy.
fn arrives_with_host_copy(g: &Graph, v: ValueId) -> bool {
    is_small_i64(g, v) && !from_arg_reduce(g, v)
}

/// Is `v` computed by ArgMax/ArgMin/TopK (the only GPU ops with small int64 outputs)?
fn from_arg_reduce(g: &Graph, v: ValueId) -> bool {
    g.nodes.iter().any(|n| {
        matches!(n.op, Op::Reduce(R::ArgMax { .. } | R::ArgMin { .. } | R::TopK { .. })) && n.outputs.contains(&Some(v))
    })
}

/// Is `n` shape bookkeeping (see [`strata_ir::passes::is_bookkeeping`])
/// whose results other nodes read? Those stay on the host, so that a
/// kernel taking them as host operands (Range bounds, a Pad value) finds a
/// host copy; the whole-graph analysis runs only for nodes whose outputs
/// are all small.
fn is_host_metadata(g: &Graph, n: &Node) -> bool {
    let own_inputs = n.inputs.iter().flatten().copied().collect();
    strata_ir::passes::is_bookkeeping(g, n, &own_inputs)
        && n.outputs.iter().flatten().any(|o| g.nodes.iter().any(|m| m.inputs.contains(&Some(*o))))
        && strata_ir::passes::is_bookkeeping(g, n, &strata_ir::passes::metadata_values(g))
}

/// Is `v` a small input of the graph? Graph inputs are never computed on
/// the GPU: they are uploaded from the host, and small uploads keep a host
/// copy (see `GpuTensor::host`), so kernels may read them as host operands
/// (runtime Clip bounds, Pad values, Resize scales...).
fn small_graph_input(g: &Graph, v: ValueId) -> bool {
    g.inputs.contains(&v)
        && match &g.value(v).ty {
            ValueType::Tensor { shape: Some(s), .. } => s
                .iter()
                .try_fold(1usize, |acc, d| match d {
                    strata_ir::Dim::Known(k) => usize::try_from(*k).ok().and_then(|k| acc.checked_mul(k)),
                    _ => None,
                })
                .is_some_and(|n| n <= crate::device::HOST_COPY_MAX),
            _ => false,
        }
}

fn rank_of(g: &Graph, v: ValueId) -> Option<usize> {
    match &g.value(v).ty {
        ValueType::Tensor { shape: Some(s), .. } => Some(s.len()),
        _ => None,
    }
}

fn is_small_i64(g: &Graph, v: ValueId) -> bool {
    match &g.value(v).ty {
        ValueType::Tensor { dtype: DType::I64, shape } => match shape {
            None => true,
            Some(s) => s.len() <= 1,
        },
        _ => false,
    }
}

/// A node as the planning functions see it: its graph, and whether host
/// operands must be constants.
pub(crate) struct NodeView<'a> {
    g: &'a Graph,
    n: &'a Node,
    /// Placement queries see the whole model and require host operands to
    /// be constants; a compiled partition may receive them as inputs
    /// (uploaded with a host copy), so compilation does not re-check that.
    need_const: bool,
}

impl NodeView<'_> {
    fn input(&self, i: usize) -> Option<ValueId> {
        self.n.inputs.get(i).copied().flatten()
    }
    fn dt(&self, i: usize) -> std::result::Result<DType, String> {
        let v = self.input(i).ok_or_else(|| format!("input {i} is missing"))?;
        match &self.g.value(v).ty {
            ValueType::Tensor { dtype, .. } => Ok(*dtype),
            t => Err(format!("input '{}' has type {t}, not a tensor of known type", self.g.value(v).name)),
        }
    }
    /// A device operand: a tensor of a GPU element type.
    fn dev(&self, i: usize) -> std::result::Result<DType, String> {
        let d = self.dt(i)?;
        if gpu_dtype(d) { Ok(d) } else { Err(format!("input {i} is {d}; {GPU_TYPES}")) }
    }
    /// A float operand (float32, or a narrower float type computed in f32).
    fn float(&self, i: usize) -> std::result::Result<(), String> {
        match self.dt(i)? {
            d if is_float_word(d) => Ok(()),
            d => Err(format!("input {i} is {d}; this kernel is for floats only")),
        }
    }
    /// An integer operand of type int32 or int64.
    fn int(&self, i: usize, what: &str) -> std::result::Result<(), String> {
        match self.dt(i)? {
            DType::I32 | DType::I64 => Ok(()),
            d => Err(format!("{what} of type {d}")),
        }
    }
    /// Optional input `i` is read on the host (a shape, axes, bounds...).
    /// It must be a constant, an int64 tensor of rank <= 1 or another
    /// metadata value (a scalar computed from shapes): those are never
    /// computed on the GPU (see [`plan`]), so they arrive uploaded from the
    /// host and carry a host copy.
    fn host(&self, i: usize, what: &str) -> std::result::Result<(), String> {
        match self.input(i) {
            Some(v)
                if self.need_const
                    && !is_const(self.g, v)
                    && !arrives_with_host_copy(self.g, v)
                    && !small_graph_input(self.g, v)
                    && !strata_ir::passes::metadata_values(self.g).contains(&v) =>
            {
                Err(format!("{what} (input {i}) is computed at run time; the GPU needs it constant"))
            }
            _ => Ok(()),
        }
    }
    fn rank(&self, i: usize) -> Option<usize> {
        self.input(i).and_then(|v| rank_of(self.g, v))
    }
    /// Is output `k` wanted?
    fn wants(&self, k: usize) -> bool {
        self.n.outputs.get(k).copied().flatten().is_some()
    }
    fn only_first_output(&self) -> std::result::Result<(), String> {
        if self.n.outputs.iter().skip(1).any(|o| o.is_some()) {
            Err("only the first output is computed on the GPU".into())
        } else {
            Ok(())
        }
    }
}

/// The element types the GPU runs, for reasons.
const GPU_TYPES: &str = "the GPU runs float32/16, bfloat16, float8/4, integers (64-bit ones range-checked) and bool";

fn not_implemented<P>(name: &str) -> std::result::Result<P, String> {
    Err(format!("operator {name} is not implemented on the GPU"))
}

/// How one node runs: its family's plan, and the `narrow` parameters per
/// output.
#[derive(Debug)]
pub(crate) struct NodePlan {
    pub(crate) op: Plan,
    /// Per output: what makes its computed words exact in the output's type.
    pub(crate) narrow: Vec<Option<narrow::NarrowParams>>,
}

/// A node's plan, by family.
#[derive(Debug)]
pub(crate) enum Plan {
    Elementwise(elementwise::Plan),
    Movement(movement::Plan),
    Generate(generate::Plan),
    Index(index::Plan),
    Scatter(scatter::Plan),
    MatMul(matmul::Plan),
    Einsum(einsum::Plan),
    Conv(conv::Plan),
    Pool(pool::Plan),
    Norm(norm::Plan),
    Reduce(reduce::Plan),
    Resize(resize::Plan),
    Sample(sample::Plan),
    Attention(attention::Plan),
    Sequence(sequence::Plan),
    Recurrent(recurrent::Plan),
    Signal(signal::Plan),
    Quant(quant::Plan),
    Loss(loss::Plan),
    Training(training::Plan),
    Det(linalg::Plan),
    Fused(Box<fused::Plan>),
}

/// Plan node `node` of graph `graph`: the kernels and parameters it runs
/// with, or why the GPU cannot run it. `k` creates the kernels (with a
/// device) or only names them (support queries).
#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn plan(
    model: &Model,
    graph: GraphId,
    node: NodeId,
    need_const: bool,
    k: &mut Kernels,
) -> std::result::Result<NodePlan, String> {
    let g = model.graph(graph);
    plan_node(g, g.node(node), need_const, k)
}

/// [`plan`] for node `n` of graph `g` (which may be a node made for a fused
/// group's producer, not in the graph).
#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn plan_node(
    g: &Graph,
    n: &Node,
    need_const: bool,
    k: &mut Kernels,
) -> std::result::Result<NodePlan, String> {
    let v = NodeView { g, n, need_const };
    if let Op::Tensor(T::Shape { .. } | T::Size {}) = &n.op {
        return Err("shape metadata (int64) is left to the CPU".into());
    }
    if need_const && is_host_metadata(g, n) {
        return Err("a small value computed from shapes, read by other nodes: left to the host".into());
    }
    for o in n.outputs.iter().flatten() {
        let ty = &g.value(*o).ty;
        match ty.dtype() {
            Some(dtype) if gpu_dtype(dtype) => {}
            Some(dtype) => return Err(format!("output '{}' is {dtype}; {GPU_TYPES}", g.value(*o).name)),
            None => return Err(format!("output '{}' has type {ty}, not a tensor of known type", g.value(*o).name)),
        }
        if is_small_i64(g, *o)
            && !matches!(
                n.op,
                Op::Tensor(T::Constant { .. }) | Op::Reduce(R::ArgMax { .. } | R::ArgMin { .. } | R::TopK { .. })
            )
            && (g.nodes.iter().any(|m| m.inputs.contains(&Some(*o)))
                || strata_ir::passes::is_bookkeeping(g, n, &strata_ir::passes::metadata_values(g)))
        {
            // Shape metadata, or a small int64 vector read by other nodes
            // (usually as a shape operand, which the GPU takes from the
            // host); one that is only a result is computed here.
            return Err("int64 output of rank <= 1 looks like shape metadata; left to the CPU".into());
        }
    }
    // A constant the GPU could not hold exactly (such as the INT64_MIN / MAX
    // "to the end" bounds of Slice) stays on the host.
    if let Op::Tensor(T::Constant { value }) = &n.op
        && matches!(value.dtype(), DType::I64 | DType::U64 | DType::U32)
        && let Some(x) = value.to_i128_vec().into_iter().find(|x| i32::try_from(*x).is_err())
    {
        return Err(format!("constant value {x} does not fit in the 32 bits the GPU holds integers in"));
    }
    let op = match &n.op {
        Op::Elementwise(e) => Plan::Elementwise(elementwise::plan(&v, e, k)?),
        Op::Tensor(t) => movement::plan(&v, t, k)?,
        Op::Nn(o) => match o {
            NnOp::MatMul {} | NnOp::Gemm { .. } => Plan::MatMul(matmul::plan(&v, o, k)?),
            NnOp::Einsum { equation } => Plan::Einsum(einsum::plan(&v, equation, k)?),
            NnOp::Conv { .. } | NnOp::ConvTranspose { .. } => Plan::Conv(conv::plan(&v, o, k)?),
            NnOp::MaxPool { .. } | NnOp::AveragePool { .. } | NnOp::LpPool { .. } | NnOp::Col2Im { .. } => {
                Plan::Pool(pool::plan(&v, o, k)?)
            }
            NnOp::GlobalAveragePool {} | NnOp::GlobalMaxPool {} => Plan::Reduce(reduce::plan_global_pool(&v, o, k)?),
            NnOp::BatchNormalization { .. }
            | NnOp::LayerNormalization { .. }
            | NnOp::RMSNormalization { .. }
            | NnOp::InstanceNormalization { .. }
            | NnOp::GroupNormalization { .. }
            | NnOp::LRN { .. }
            | NnOp::LpNormalization { .. } => Plan::Norm(norm::plan(&v, o, k)?),
            NnOp::Resize { .. } | NnOp::Upsample { .. } => Plan::Resize(resize::plan(&v, o, k)?),
            NnOp::GridSample { .. } | NnOp::AffineGrid { .. } => Plan::Sample(sample::plan(&v, o, k)?),
            NnOp::Attention { .. } | NnOp::FlexAttention { .. } | NnOp::RotaryEmbedding { .. } => {
                Plan::Attention(attention::plan(&v, o, k)?)
            }
            NnOp::CausalConvWithState { .. } | NnOp::LinearAttention { .. } => {
                Plan::Sequence(sequence::plan(&v, o, k)?)
            }
            NnOp::RNN { .. } | NnOp::GRU { .. } | NnOp::LSTM { .. } => Plan::Recurrent(recurrent::plan(&v, o, k)?),
            NnOp::SwiGLU { alpha } => Plan::Elementwise(elementwise::plan_swiglu(&v, *alpha, k)?),
            NnOp::Dropout { .. } => Plan::Generate(generate::plan_dropout(&v, k)?),
            NnOp::Det {} => Plan::Det(linalg::plan(&v, k)?),
            NnOp::Adagrad { .. } | NnOp::Adam { .. } | NnOp::Momentum { .. } => {
                Plan::Training(training::plan(&v, o, k)?)
            }
            // not supported here
            NnOp::DeformConv { .. }
            | NnOp::GlobalLpPool { .. }
            | NnOp::MaxUnpool { .. }
            | NnOp::MaxRoiPool { .. }
            | NnOp::RoiAlign { .. }
            | NnOp::MeanVarianceNormalization { .. }
            | NnOp::NonMaxSuppression { .. } => return not_implemented(o.name()),
        },
        Op::Reduce(r) => match r {
            R::Softmax { .. }
            | R::SoftmaxLegacy { .. }
            | R::LogSoftmax { .. }
            | R::LogSoftmaxLegacy { .. }
            | R::Hardmax { .. }
            | R::HardmaxLegacy { .. } => Plan::Norm(norm::plan_rowwise(&v, r, k)?),
            R::SoftmaxCrossEntropyLoss { .. } | R::NegativeLogLikelihoodLoss { .. } => {
                Plan::Loss(loss::plan(&v, r, k)?)
            }
            R::ReduceSum { .. }
            | R::ReduceMean { .. }
            | R::ReduceMax { .. }
            | R::ReduceMin { .. }
            | R::ReduceProd { .. }
            | R::ReduceL1 { .. }
            | R::ReduceL2 { .. }
            | R::ReduceLogSum { .. }
            | R::ReduceLogSumExp { .. }
            | R::ReduceSumSquare { .. }
            | R::ArgMax { .. }
            | R::ArgMin { .. }
            | R::CumSum { .. }
            | R::CumProd { .. }
            | R::TopK { .. } => Plan::Reduce(reduce::plan(&v, r, k)?),
        },
        Op::Signal(SignalOp::HannWindow { output_datatype, periodic }) => {
            Plan::Generate(generate::plan_window(&v, 0, *output_datatype, *periodic, k)?)
        }
        Op::Signal(SignalOp::HammingWindow { output_datatype, periodic }) => {
            Plan::Generate(generate::plan_window(&v, 1, *output_datatype, *periodic, k)?)
        }
        Op::Signal(SignalOp::BlackmanWindow { output_datatype, periodic }) => {
            Plan::Generate(generate::plan_window(&v, 2, *output_datatype, *periodic, k)?)
        }
        Op::Signal(s) => Plan::Signal(signal::plan(&v, s, k)?),
        Op::Quant(q @ (QuantOp::QuantizeLinear { .. } | QuantOp::DequantizeLinear { .. })) => {
            Plan::Quant(quant::plan(&v, q, k)?)
        }
        // not supported here
        Op::Quant(
            QuantOp::DynamicQuantizeLinear { .. }
            | QuantOp::QLinearConv { .. }
            | QuantOp::ConvInteger { .. }
            | QuantOp::QLinearMatMul { .. }
            | QuantOp::MatMulInteger { .. },
        )
        // Whole families not run here (control flow runs in the session,
        // around the partitions; the others fall back to the reference).
        | Op::Control(_)
        | Op::Text(_)
        | Op::Ml(_)
        | Op::Random(_) => return not_implemented(n.op.name()),
        Op::Fused(f) => Plan::Fused(Box::new(fused::plan(&v, f, k)?)),
    };
    Ok(NodePlan { op, narrow: narrow::plan(g, n) })
}

/// One node's execution: resolves shapes, allocates outputs, records the
/// dispatches of its plan.
pub(crate) struct Exec<'a> {
    pub(crate) g: &'a CompiledGraph,
    pub(crate) n: &'a Node,
    pub(crate) ins: &'a [Option<GpuTensor>],
    /// Index of the node in the graph.
    pub(crate) node: u32,
    /// A fused program the node's producer kernel applies before it stores
    /// (when this node is a fused group's producer).
    pub(crate) epi: Option<&'a fused::Epilogue<'a>>,
}

impl Exec<'_> {
    /// Record the node's dispatches; returns its outputs.
    pub(crate) fn run(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::Elementwise(p) => self.elementwise(ctx, p),
            Plan::Movement(p) => self.movement(ctx, p),
            Plan::Generate(p) => self.generate(ctx, p),
            Plan::Index(p) => self.index(ctx, p),
            Plan::Scatter(p) => self.scatter(ctx, p),
            Plan::MatMul(p) => self.matmul_family(ctx, p),
            Plan::Einsum(p) => self.einsum(ctx, p),
            Plan::Conv(p) => self.conv(ctx, p),
            Plan::Pool(p) => self.pool(ctx, p),
            Plan::Norm(p) => self.norm(ctx, p),
            Plan::Reduce(p) => self.reduce_family(ctx, p),
            Plan::Resize(p) => self.resize(ctx, p),
            Plan::Sample(p) => self.sample(ctx, p),
            Plan::Attention(p) => self.attention_family(ctx, p),
            Plan::Sequence(p) => self.sequence(ctx, p),
            Plan::Recurrent(p) => self.recurrent(ctx, p),
            Plan::Signal(p) => self.signal(ctx, p),
            Plan::Quant(p) => self.quant(ctx, p),
            Plan::Loss(p) => self.loss(ctx, p),
            Plan::Training(p) => self.optimizer(ctx, p),
            Plan::Det(p) => self.det(ctx, p),
            Plan::Fused(p) => self.fused(ctx, p),
        }
    }

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
    fn has_input(&self, i: usize) -> bool {
        self.n.inputs.get(i).copied().flatten().is_some()
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
            .and_then(|v| self.g.model().main_graph().value(v).ty.dtype())
            .ok_or_else(|| GpuError::Shape(format!("output {k} has no known type")))
    }
    fn wants(&self, k: usize) -> bool {
        self.n.outputs.get(k).copied().flatten().is_some()
    }
}
