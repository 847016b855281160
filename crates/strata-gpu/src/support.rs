//! What the GPU backend runs: per node, the kernels (pipelines) it needs, or
//! a precise reason why it cannot run here.

use strata_ir::dtype::E8M0Round;
use strata_ir::ops::{ElementwiseOp as E, NnOp, QuantOp, ReduceOp as R, TensorOp as T};
use strata_ir::{DType, Graph, GraphId, Model, Node, NodeId, Op, ValueId, ValueType};

use crate::device::{Word, gpu_dtype, word_class};
use crate::kernels::{Shader, binary, unary};

mod ext;
pub(crate) mod recurrent;

/// A pipeline a node needs: shader, entry point and override constants.
pub(crate) type Spec = (Shader, &'static str, Vec<(&'static str, u32)>);

/// Word interpretation code of the `DT` override: 0 f32, 1 i32, 2 bool,
/// 3 u32 (by the element type's storage class, [`word_class`]).
pub(crate) fn dt_code(d: DType) -> u32 {
    match word_class(d) {
        Some(Word::F32) => 0,
        Some(Word::Bool) => 2,
        Some(Word::U32) => 3,
        _ => 1,
    }
}

/// Is `d` stored as f32 words (float32 and the narrower float types)?
pub(crate) fn is_float_word(d: DType) -> bool {
    word_class(d) == Some(Word::F32)
}

/// Is `d` an integer type stored as i32 or u32 words?
pub(crate) fn is_int_word(d: DType) -> bool {
    matches!(word_class(d), Some(Word::I32 | Word::U32))
}

/// `CHECK` override of `integer.wgsl`: results of int64 (stored as i32) and
/// uint64 (stored as u32) arithmetic must fit their 32-bit storage.
pub(crate) fn int_check_code(d: DType) -> u32 {
    match d {
        DType::I64 => 1,
        DType::U64 => 2,
        _ => 0,
    }
}

/// Can the `integer.wgsl` pipeline `entry` with these overrides report an
/// error (range-checked int64/uint64 arithmetic, or a division or modulo)?
pub(crate) fn int_kernel_may_fail(entry: &str, overrides: &[(&'static str, u32)]) -> bool {
    let get = |k: &str| overrides.iter().find(|(n, _)| *n == k).map(|&(_, v)| v);
    get("CHECK").is_some_and(|c| c != 0)
        || (entry == "binary" && matches!(get("OP"), Some(binary::DIV | binary::FMOD | binary::MOD)))
}

fn int_unary_spec(op: u32, d: DType) -> Spec {
    (Shader::Integer, "unary", vec![("OP", op), ("DT", dt_code(d)), ("CHECK", int_check_code(d))])
}
fn int_binary_spec(op: u32, d: DType) -> Spec {
    (Shader::Integer, "binary", vec![("OP", op), ("DT", dt_code(d)), ("CHECK", int_check_code(d))])
}

/// Parameters of the in-place `narrow` kernel (`elementwise.wgsl`) after
/// [n]: what makes a computed 32-bit word exactly representable in `d`
/// (wrap integers to the type's width, round floats to nearest even with
/// the type's overflow rules; `saturate` is Cast's attribute for the float8
/// kinds, `e8m0` its rounding of float8e8m0, nearest for other ops). `None` when every word already is (f32, i32, u32, bool, and the
/// 64-bit integers, whose range is checked instead).
pub(crate) fn narrow_params(d: DType, saturate: bool, e8m0: E8M0Round) -> Option<[u32; 5]> {
    use DType::*;
    // round_small: mantissa bits, minimum normal exponent, largest finite value, flags.
    let small = |man: u32, emin: i32, max: f32, flags: u32| Some([3, man, emin as u32, max.to_bits(), flags]);
    let sat = if saturate { 4 } else { 0 };
    match d {
        I2 | I4 | I8 | I16 | U2 | U4 | U8 | U16 => Some([1, d.bits() as u32, u32::from(d.is_signed_int()), 0, 0]),
        BF16 => Some([2, 0, 0, 0, 0]),
        F16 => small(10, -14, 65504.0, 1),
        F8E4M3FN => small(3, -6, 448.0, sat),
        F8E4M3FNUZ => small(3, -7, 240.0, 2 | sat),
        F8E5M2 => small(2, -14, 57344.0, 1 | sat),
        F8E5M2FNUZ => small(2, -15, 57344.0, 2 | sat),
        F4E2M1 => small(1, 0, 6.0, 8),
        F8E8M0 => {
            let mode = match e8m0 {
                E8M0Round::Up => 0,
                E8M0Round::Down => 1,
                E8M0Round::Nearest => 2,
            };
            Some([4, mode, u32::from(saturate), 0, 0])
        }
        _ => None,
    }
}

fn unary_spec(op: u32, dt: u32) -> Spec {
    (Shader::Elementwise, "unary", vec![("OP", op), ("DT", dt)])
}
fn binary_spec(op: u32, dt: u32) -> Spec {
    (Shader::Elementwise, "binary", vec![("OP", op), ("DT", dt)])
}
fn copy_spec() -> Spec {
    (Shader::Movement, "copy_strided", vec![])
}

/// The unary op code and its two float parameters for a float activation
/// (Clip's bounds come from inputs at run time when not attributes).
pub(crate) fn unary_code(op: &E) -> Option<(u32, f32, f32)> {
    use unary::*;
    Some(match op {
        E::Abs {} => (ABS, 0.0, 0.0),
        E::Neg {} => (NEG, 0.0, 0.0),
        E::Relu {} => (RELU, 0.0, 0.0),
        E::Sigmoid {} => (SIGMOID, 0.0, 0.0),
        E::Tanh {} => (TANH, 0.0, 0.0),
        E::Exp {} => (EXP, 0.0, 0.0),
        E::Log {} => (LOG, 0.0, 0.0),
        E::Sqrt {} => (SQRT, 0.0, 0.0),
        E::Erf {} => (ERF, 0.0, 0.0),
        E::Gelu { approximate } if approximate == "none" => (GELU, 0.0, 0.0),
        E::Gelu { approximate } if approximate == "tanh" => (GELU_TANH, 0.0, 0.0),
        E::LeakyRelu { alpha } => (LEAKY_RELU, *alpha, 0.0),
        E::HardSigmoid { alpha, beta } => (HARD_SIGMOID, *alpha, *beta),
        E::HardSwish {} => (HARD_SWISH, 0.0, 0.0),
        E::Clip { min, max } => (CLIP, min.unwrap_or(f32::NEG_INFINITY), max.unwrap_or(f32::INFINITY)),
        E::Softplus {} => (SOFTPLUS, 0.0, 0.0),
        E::Reciprocal {} => (RECIPROCAL, 0.0, 0.0),
        E::Floor {} => (FLOOR, 0.0, 0.0),
        E::Ceil {} => (CEIL, 0.0, 0.0),
        E::Round {} => (ROUND, 0.0, 0.0),
        E::Sin {} => (SIN, 0.0, 0.0),
        E::Cos {} => (COS, 0.0, 0.0),
        E::Tan {} => (TAN, 0.0, 0.0),
        E::Atan {} => (ATAN, 0.0, 0.0),
        E::Elu { alpha } => (ELU, *alpha, 0.0),
        E::Selu { alpha, gamma } => (SELU, *alpha, *gamma),
        E::Softsign {} => (SOFTSIGN, 0.0, 0.0),
        E::Sign {} => (SIGN, 0.0, 0.0),
        E::Mish {} => (MISH, 0.0, 0.0),
        E::Swish { alpha } => (SWISH, *alpha, 0.0),
        E::Celu { alpha } => (CELU, *alpha, 0.0),
        E::ThresholdedRelu { alpha } => (THRESHOLDED_RELU, *alpha, 0.0),
        E::Shrink { bias, lambd } => (SHRINK, *bias, *lambd),
        _ => return None,
    })
}

/// The binary op code of a two-input elementwise op.
pub(crate) fn binary_code(op: &E) -> Option<u32> {
    use binary::*;
    Some(match op {
        E::Add {} | E::Sum {} | E::Mean {} => ADD,
        E::Sub {} => SUB,
        E::Mul {} => MUL,
        E::Div {} => DIV,
        E::Pow {} => POW,
        E::Max {} => MAX,
        E::Min {} => MIN,
        E::Equal {} => EQ,
        E::Greater {} => GT,
        E::GreaterOrEqual {} => GE,
        E::Less {} => LT,
        E::LessOrEqual {} => LE,
        E::Mod { fmod: 1 } => FMOD,
        E::PRelu {} => PRELU,
        E::And {} => AND,
        E::Or {} => OR,
        E::Xor {} => XOR,
        _ => return None,
    })
}

/// Cast plan: `None` = same words (alias with a new dtype), `Some(op)` = a
/// unary conversion of `elementwise.wgsl` (the result is then narrowed to
/// `to`, see [`narrow_params`]). Casts whose results could leave the 32-bit
/// storage of int64 / uint64 are refused.
pub(crate) fn cast_code(from: DType, to: DType) -> Result<Option<u32>, String> {
    let (Some(wf), Some(wt)) = (word_class(from), word_class(to)) else {
        return Err(format!("Cast {from} -> {to} is not supported on the GPU"));
    };
    if from == to {
        return Ok(None);
    }
    let copy_or_alias = |exact: bool| if exact { None } else { Some(unary::COPY) };
    Ok(match (wf, wt) {
        (Word::F32, Word::F32) => copy_or_alias(to == DType::F32),
        (Word::F32, Word::Bool) => Some(unary::F32_TO_BOOL),
        (Word::F32, _) => {
            if matches!(to, DType::I64 | DType::U64) {
                return Err(format!("Cast {from} -> {to} is not done on the GPU (results could exceed 32 bits)"));
            }
            Some(unary::F32_TO_I32)
        }
        (Word::I32, Word::F32) => Some(unary::I32_TO_F32),
        (Word::U32, Word::F32) => Some(unary::U32_TO_F32),
        (Word::Bool, Word::F32) => Some(unary::BOOL_TO_F32),
        (Word::I32 | Word::U32, Word::Bool) => Some(unary::WORD_TO_BOOL),
        (Word::Bool, _) => None,
        (Word::I32 | Word::U32, Word::I32 | Word::U32) => {
            // Words hold the value (i32) or its bits (u32): the same words
            // serve when every value of `from` is a value of `to`, or when
            // `to` is 32 bits wide and wraps (int32, uint32).
            let (lo, hi) = from.int_range().unwrap_or((0, 0));
            let (tlo, thi) = to.int_range().unwrap_or((0, 0));
            let contained = tlo <= lo && hi <= thi;
            let wraps32 = matches!(to, DType::I32 | DType::U32);
            if matches!(to, DType::I64 | DType::U64) && !contained {
                return Err(format!("Cast {from} -> {to} is not done on the GPU (results could leave 32-bit storage)"));
            }
            copy_or_alias(contained || wraps32)
        }
    })
}

/// Per output of node `n`: the `narrow` parameters its computed values
/// need before they are exact in the output's type. Data movement copies
/// values that are exact already and needs none.
pub(crate) fn narrow_plan(g: &Graph, n: &Node) -> Vec<Option<[u32; 5]>> {
    let moves = matches!(
        n.op,
        Op::Tensor(
            T::Constant { .. }
                | T::Reshape { .. }
                | T::Flatten { .. }
                | T::Squeeze { .. }
                | T::Unsqueeze { .. }
                | T::Transpose { .. }
                | T::Concat { .. }
                | T::Slice { .. }
                | T::Split { .. }
                | T::Gather { .. }
                | T::GatherElements { .. }
                | T::Expand {}
                | T::Tile {}
                | T::Pad { .. }
                | T::DepthToSpace { .. }
                | T::SpaceToDepth { .. }
                | T::Trilu { .. }
        ) | Op::Elementwise(E::Identity {} | E::Where {})
            | Op::Nn(NnOp::Dropout { .. })
    );
    let saturate = match &n.op {
        Op::Elementwise(E::Cast { saturate, .. } | E::CastLike { saturate, .. })
        | Op::Quant(QuantOp::QuantizeLinear { saturate, .. }) => *saturate != 0,
        _ => false,
    };
    let e8m0 = match &n.op {
        Op::Elementwise(E::Cast { round_mode, .. } | E::CastLike { round_mode, .. }) => {
            E8M0Round::parse(round_mode).unwrap_or(E8M0Round::Nearest)
        }
        _ => E8M0Round::Nearest,
    };
    n.outputs
        .iter()
        .map(|o| {
            if moves {
                return None;
            }
            narrow_params(g.value((*o)?).ty.dtype()?, saturate, e8m0)
        })
        .collect()
}

/// Is `v` a constant of graph `g` (an initializer or the output of a Constant node)?
pub(crate) fn is_const(g: &Graph, v: ValueId) -> bool {
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

struct NodeView<'a> {
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
    fn dt(&self, i: usize) -> Result<DType, String> {
        let v = self.input(i).ok_or_else(|| format!("input {i} is missing"))?;
        match &self.g.value(v).ty {
            ValueType::Tensor { dtype, .. } => Ok(*dtype),
            t => Err(format!("input '{}' has type {t}, not a tensor of known type", self.g.value(v).name)),
        }
    }
    /// A device operand: a tensor of a GPU element type.
    fn dev(&self, i: usize) -> Result<DType, String> {
        let d = self.dt(i)?;
        if gpu_dtype(d) { Ok(d) } else { Err(format!("input {i} is {d}; {GPU_TYPES}")) }
    }
    /// A float operand (float32, or a narrower float type computed in f32).
    fn float(&self, i: usize) -> Result<(), String> {
        match self.dt(i)? {
            d if is_float_word(d) => Ok(()),
            d => Err(format!("input {i} is {d}; this kernel is for floats only")),
        }
    }
    /// Optional input `i` is read on the host (a shape, axes, bounds...).
    /// It must be a constant, or an int64 tensor of rank <= 1: those are
    /// never computed on the GPU (see [`check`]), so they arrive uploaded
    /// from the host and carry a host copy.
    fn host(&self, i: usize, what: &str) -> Result<(), String> {
        match self.input(i) {
            Some(v)
                if self.need_const
                    && !is_const(self.g, v)
                    && !arrives_with_host_copy(self.g, v)
                    && !ext::small_graph_input(self.g, v) =>
            {
                Err(format!("{what} (input {i}) is computed at run time; the GPU needs it constant"))
            }
            _ => Ok(()),
        }
    }
    fn rank(&self, i: usize) -> Option<usize> {
        self.input(i).and_then(|v| rank_of(self.g, v))
    }
    fn only_first_output(&self) -> Result<(), String> {
        if self.n.outputs.iter().skip(1).any(|o| o.is_some()) {
            Err("only the first output is computed on the GPU".into())
        } else {
            Ok(())
        }
    }
}

/// The element types the GPU runs, for reasons.
const GPU_TYPES: &str = "the GPU runs float32/16, bfloat16, float8/4, integers (64-bit ones range-checked) and bool";

/// The pipelines node `node` needs, or why the GPU cannot run it.
pub(crate) fn check(model: &Model, graph: GraphId, node: NodeId, need_const: bool) -> Result<Vec<Spec>, String> {
    let g = model.graph(graph);
    let n = g.node(node);
    let v = NodeView { g, n, need_const };
    if let Op::Tensor(T::Shape { .. } | T::Size {}) = &n.op {
        return Err("shape metadata (int64) is left to the CPU".into());
    }
    for o in n.outputs.iter().flatten() {
        match &g.value(*o).ty {
            ValueType::Tensor { dtype, .. } if gpu_dtype(*dtype) => {}
            ValueType::Tensor { dtype, .. } => {
                return Err(format!("output '{}' is {dtype}; {GPU_TYPES}", g.value(*o).name));
            }
            t => return Err(format!("output '{}' has type {t}, not a tensor of known type", g.value(*o).name)),
        }
        if is_small_i64(g, *o)
            && !matches!(
                n.op,
                Op::Tensor(T::Constant { .. }) | Op::Reduce(R::ArgMax { .. } | R::ArgMin { .. } | R::TopK { .. })
            )
        {
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
    match &n.op {
        Op::Elementwise(e) => check_elementwise(&v, e),
        Op::Tensor(t) => check_tensor(&v, t),
        Op::Nn(o) => check_nn(&v, o),
        Op::Reduce(r) => check_reduce(&v, r),
        Op::Signal(sg) => ext::signal(&v, sg),
        Op::Quant(q @ (QuantOp::QuantizeLinear { .. } | QuantOp::DequantizeLinear { .. })) => check_quant(&v, q),
        other => Err(format!("operator {} is not implemented on the GPU", other.name())),
    }
}

/// The `integer.wgsl` binary op code of an elementwise op on integers.
fn int_binary_code(e: &E) -> Option<u32> {
    use binary::*;
    Some(match e {
        E::Add {} | E::Sum {} => ADD,
        E::Sub {} => SUB,
        E::Mul {} => MUL,
        E::Div {} => DIV,
        E::Pow {} => POW,
        E::Max {} => MAX,
        E::Min {} => MIN,
        E::Equal {} => EQ,
        E::Greater {} => GT,
        E::GreaterOrEqual {} => GE,
        E::Less {} => LT,
        E::LessOrEqual {} => LE,
        E::Mod { fmod: 1 } => FMOD,
        E::Mod { .. } => MOD,
        E::BitwiseAnd {} => BIT_AND,
        E::BitwiseOr {} => BIT_OR,
        E::BitwiseXor {} => BIT_XOR,
        E::BitShift { direction } if direction == "LEFT" => SHIFT_LEFT,
        E::BitShift { direction } if direction == "RIGHT" => SHIFT_RIGHT,
        _ => return None,
    })
}

fn check_elementwise(v: &NodeView, e: &E) -> Result<Vec<Spec>, String> {
    match e {
        E::Identity {} => {
            v.dev(0)?;
            Ok(vec![])
        }
        E::Cast { to, .. } => Ok(cast_code(v.dev(0)?, *to)?.map(|op| vec![unary_spec(op, 0)]).unwrap_or_default()),
        E::CastLike { .. } => Ok(cast_code(v.dev(0)?, v.dt(1)?)?.map(|op| vec![unary_spec(op, 0)]).unwrap_or_default()),
        E::Not {} => match v.dt(0)? {
            DType::Bool => Ok(vec![unary_spec(unary::NOT, 2)]),
            d => Err(format!("Not on {d}")),
        },
        E::BitwiseNot {} => {
            let d = v.dev(0)?;
            if !is_int_word(d) {
                return Err(format!("BitwiseNot on {d}"));
            }
            if d == DType::U64 {
                return Err("BitwiseNot on uint64 (results exceed the GPU's 32-bit storage)".into());
            }
            Ok(vec![int_unary_spec(unary::BITWISE_NOT, d)])
        }
        E::IsNaN {} => {
            v.float(0)?;
            Ok(vec![unary_spec(unary::IS_NAN, 0)])
        }
        E::IsInf { .. } => {
            v.float(0)?;
            Ok(vec![unary_spec(unary::IS_INF, 0)])
        }
        E::Where {} => {
            if v.dt(0)? != DType::Bool {
                return Err("Where condition must be bool".into());
            }
            let (a, b) = (v.dev(1)?, v.dev(2)?);
            if a != b {
                return Err(format!("Where branches differ in type ({a}, {b})"));
            }
            Ok(vec![(Shader::Elementwise, "where_select", vec![])])
        }
        E::Max {} | E::Min {} | E::Sum {} | E::Mean {} => {
            let d = v.dev(0)?;
            for i in 0..v.n.inputs.len() {
                if v.dev(i)? != d {
                    return Err("inputs differ in type".into());
                }
            }
            if is_float_word(d) {
                let mut specs = vec![binary_spec(binary_code(e).expect("variadic code"), 0)];
                if matches!(e, E::Mean {}) {
                    specs.push(unary_spec(unary::SCALE, 0));
                }
                return Ok(specs);
            }
            match int_binary_code(e) {
                Some(op) if is_int_word(d) => Ok(vec![int_binary_spec(op, d)]),
                _ => Err(format!("{} on {d}", e.name())),
            }
        }
        E::Clip { .. } => {
            let d = v.dev(0)?;
            if d == DType::Bool {
                return Err("Clip on bool".into());
            }
            v.host(1, "Clip min")?;
            v.host(2, "Clip max")?;
            if is_float_word(d) {
                Ok(vec![unary_spec(unary::CLIP, 0)])
            } else {
                Ok(vec![int_unary_spec(unary::CLIP, d)])
            }
        }
        _ if crate::graph::math::math_code(e).is_some() => ext::elementwise(v, e),
        _ => {
            if let Some((op, _, _)) = unary_code(e) {
                let d = v.dev(0)?;
                if is_float_word(d) {
                    return Ok(vec![unary_spec(op, 0)]);
                }
                let int_ok = matches!(e, E::Abs {} | E::Neg {} | E::Relu {} | E::Sign {});
                if int_ok && is_int_word(d) {
                    return Ok(vec![int_unary_spec(op, d)]);
                }
                return Err(format!("{} on {d} is not supported on the GPU (floats only)", e.name()));
            }
            let (a, b) = (v.dev(0)?, v.dev(1)?);
            if matches!(e, E::Pow {}) && is_float_word(a) && is_int_word(b) {
                // A float base with an integer exponent (converted to f32 in the kernel).
                return Ok(vec![(
                    Shader::Elementwise,
                    "binary",
                    vec![("OP", binary::POW), ("DT", 0), ("DTB", dt_code(b))],
                )]);
            }
            if a != b {
                return Err(format!("inputs differ in type ({a}, {b})"));
            }
            let cmp = matches!(e, E::Equal {} | E::Greater {} | E::GreaterOrEqual {} | E::Less {} | E::LessOrEqual {});
            if is_int_word(a) {
                return match int_binary_code(e) {
                    Some(op) => Ok(vec![int_binary_spec(op, a)]),
                    None => Err(format!("{} on {a} is not supported on the GPU", e.name())),
                };
            }
            let float_code = match e {
                E::Mod { fmod: 0 } => Some(binary::MOD),
                _ => binary_code(e),
            };
            if let Some(op) = float_code {
                let logic = matches!(e, E::And {} | E::Or {} | E::Xor {});
                let ok = if logic {
                    a == DType::Bool
                } else if cmp {
                    a != DType::Bool || matches!(e, E::Equal {})
                } else {
                    is_float_word(a)
                };
                if !ok {
                    return Err(format!("{} on {a} is not supported on the GPU", e.name()));
                }
                return Ok(vec![binary_spec(op, dt_code(a))]);
            }
            ext::elementwise(v, e)
        }
    }
}

fn check_tensor(v: &NodeView, t: &T) -> Result<Vec<Spec>, String> {
    match t {
        T::Constant { value } => {
            if gpu_dtype(value.dtype()) {
                Ok(vec![])
            } else {
                Err(format!("constant of type {}", value.dtype()))
            }
        }
        T::Reshape { .. } | T::Expand {} => {
            v.dev(0)?;
            if v.input(1).is_some() {
                v.host(1, "shape")?;
            } else if matches!(t, T::Expand {}) {
                return Err("Expand without a shape".into());
            }
            Ok(if matches!(t, T::Expand {}) { vec![copy_spec()] } else { vec![] })
        }
        T::Flatten { .. } => {
            v.dev(0)?;
            Ok(vec![])
        }
        T::Squeeze { .. } | T::Unsqueeze { .. } => {
            v.dev(0)?;
            v.host(1, "axes")?;
            Ok(vec![])
        }
        T::Transpose { .. } => {
            v.dev(0)?;
            Ok(vec![copy_spec()])
        }
        T::Concat { .. } => {
            let d = v.dev(0)?;
            for i in 0..v.n.inputs.len() {
                if v.dev(i)? != d {
                    return Err("Concat inputs differ in type".into());
                }
            }
            Ok(vec![copy_spec()])
        }
        T::Slice { .. } => {
            v.dev(0)?;
            for (i, w) in [(1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")] {
                v.host(i, w)?;
            }
            Ok(vec![copy_spec()])
        }
        T::Split { .. } => {
            v.dev(0)?;
            v.host(1, "split")?;
            Ok(vec![copy_spec()])
        }
        T::Gather { .. } => {
            v.dev(0)?;
            match v.dt(1)? {
                DType::I32 | DType::I64 => {}
                d => return Err(format!("Gather indices of type {d}")),
            }
            Ok(vec![(Shader::Movement, "gather", vec![])])
        }
        T::DepthToSpace { mode, .. } => {
            v.dev(0)?;
            if mode != "DCR" && mode != "CRD" {
                return Err(format!("DepthToSpace mode '{mode}'"));
            }
            Ok(vec![copy_spec()])
        }
        T::SpaceToDepth { mode, .. } => {
            v.dev(0)?;
            if mode != "DCR" && mode != "CRD" {
                return Err(format!("SpaceToDepth mode '{mode}'"));
            }
            Ok(vec![copy_spec()])
        }
        T::Tile {} => {
            v.dev(0)?;
            v.host(1, "repeats")?;
            Ok(vec![copy_spec()])
        }
        T::Trilu { .. } => {
            v.dev(0)?;
            v.host(1, "k")?;
            Ok(vec![(Shader::Movement, "trilu", vec![])])
        }
        T::GatherElements { .. } => {
            v.dev(0)?;
            match v.dt(1)? {
                DType::I32 | DType::I64 => {}
                d => return Err(format!("GatherElements indices of type {d}")),
            }
            Ok(vec![(Shader::Movement, "gather_elements", vec![])])
        }
        T::Pad { mode, .. } => {
            v.dev(0)?;
            v.host(1, "pads")?;
            v.host(2, "constant_value")?;
            v.host(3, "axes")?;
            let m = match mode.as_str() {
                "constant" => 0,
                "edge" => 1,
                "reflect" => 2,
                other => return Err(format!("Pad mode '{other}' is not supported on the GPU")),
            };
            Ok(vec![(Shader::Movement, "pad", vec![("PAD_MODE", m)])])
        }
        other => ext::tensor(v, other),
    }
}

fn spatial_rank(v: &NodeView, kernel_rank: Option<usize>) -> Result<(), String> {
    match v.rank(0).or_else(|| v.rank(1)).or(kernel_rank.map(|k| k + 2)) {
        Some(3 | 4) => Ok(()),
        Some(r) => Err(format!("only 1-D and 2-D spatial kernels run on the GPU (input rank {r})")),
        None => Err("input rank unknown".into()),
    }
}

fn auto_pad_ok(a: &str) -> Result<(), String> {
    match a {
        "NOTSET" | "VALID" | "SAME_UPPER" | "SAME_LOWER" => Ok(()),
        other => Err(format!("auto_pad '{other}'")),
    }
}

fn check_nn(v: &NodeView, o: &NnOp) -> Result<Vec<Spec>, String> {
    match o {
        NnOp::MatMul {} => {
            v.float(0)?;
            v.float(1)?;
            Ok(vec![(Shader::Matmul, "matmul", vec![])])
        }
        NnOp::Gemm { .. } => {
            v.float(0)?;
            v.float(1)?;
            if v.input(2).is_some() {
                v.float(2)?;
            }
            Ok(vec![(Shader::Matmul, "matmul", vec![])])
        }
        NnOp::Conv { auto_pad, kernel_shape, .. } => {
            v.float(0)?;
            v.float(1)?;
            if v.input(2).is_some() {
                v.float(2)?;
            }
            auto_pad_ok(auto_pad.as_str())?;
            spatial_rank(v, kernel_shape.as_ref().map(Vec::len))?;
            Ok(vec![(Shader::Conv, "conv2d", vec![])])
        }
        NnOp::ConvTranspose { auto_pad, kernel_shape, output_shape, .. } => {
            v.float(0)?;
            v.float(1)?;
            if v.input(2).is_some() {
                v.float(2)?;
            }
            if auto_pad.as_str() != "NOTSET" && auto_pad.as_str() != "VALID" {
                return Err(format!("ConvTranspose auto_pad '{auto_pad}' is not supported on the GPU"));
            }
            if output_shape.is_some() {
                return Err("ConvTranspose with output_shape is not supported on the GPU".into());
            }
            spatial_rank(v, kernel_shape.as_ref().map(Vec::len))?;
            Ok(vec![(Shader::Conv, "conv_transpose2d", vec![])])
        }
        NnOp::Resize {
            antialias,
            coordinate_transformation_mode,
            keep_aspect_ratio_policy,
            mode,
            nearest_mode,
            ..
        } => {
            if mode.as_str() == "cubic" || *antialias {
                return ext::resize_taps(v, o);
            }
            v.float(0)?;
            if *antialias {
                return Err("Resize with antialias".into());
            }
            if keep_aspect_ratio_policy.as_str() != "stretch" {
                return Err(format!("Resize keep_aspect_ratio_policy '{keep_aspect_ratio_policy}'"));
            }
            resize_coord_code(coordinate_transformation_mode.as_str())?;
            resize_nearest_code(nearest_mode.as_str())?;
            v.host(2, "scales")?;
            v.host(3, "sizes")?;
            Ok(vec![(Shader::Resize, "resize2d", vec![("MODE", resize_mode_code(mode.as_str())?)])])
        }
        NnOp::Upsample { mode, .. } => {
            v.float(0)?;
            v.host(1, "scales")?;
            Ok(vec![(Shader::Resize, "resize2d", vec![("MODE", resize_mode_code(mode)?)])])
        }
        NnOp::MaxPool { auto_pad, kernel_shape, .. } | NnOp::AveragePool { auto_pad, kernel_shape, .. } => {
            if ext::pool_nd_needed(v) {
                return ext::pool_nd(v);
            }
            v.float(0)?;
            v.only_first_output()?;
            auto_pad_ok(auto_pad.as_str())?;
            spatial_rank(v, Some(kernel_shape.len()))?;
            let mode = u32::from(matches!(o, NnOp::AveragePool { .. }));
            Ok(vec![(Shader::Pool, "pool2d", vec![("MODE", mode)])])
        }
        NnOp::GlobalAveragePool {} | NnOp::GlobalMaxPool {} => {
            v.float(0)?;
            let op = if matches!(o, NnOp::GlobalAveragePool {}) { 1 } else { 2 };
            Ok(vec![(Shader::Reduce, "reduce", vec![("OP", op)])])
        }
        NnOp::BatchNormalization { training_mode, .. } => {
            if *training_mode != 0 {
                return Err("BatchNormalization in training mode".into());
            }
            v.only_first_output()?;
            for i in 0..5 {
                v.float(i)?;
            }
            Ok(vec![(Shader::Norm, "batch_norm", vec![])])
        }
        NnOp::LayerNormalization { .. } | NnOp::RMSNormalization { .. } => {
            v.float(0)?;
            v.float(1)?;
            if v.input(2).is_some() {
                v.float(2)?;
            }
            let rms = u32::from(matches!(o, NnOp::RMSNormalization { .. }));
            Ok(vec![
                (Shader::Norm, "layer_norm", vec![("MODE", rms)]),
                (Shader::Norm, "row_stats", vec![("MODE", rms)]),
            ])
        }
        NnOp::Dropout { .. } => {
            v.dev(0)?;
            if let Some(t) = v.input(2) {
                match v.g.initializer(t) {
                    Some(c) if c.to_i64_vec().iter().all(|&x| x == 0) => {}
                    None if !v.need_const => {}
                    _ => return Err("Dropout in training mode (training_mode input not a constant false)".into()),
                }
            }
            // The inference mask (all true) is a fill.
            Ok(if v.n.outputs.get(1).copied().flatten().is_some() {
                vec![(Shader::Generate, "fill", vec![])]
            } else {
                vec![]
            })
        }
        NnOp::RNN { .. } | NnOp::GRU { .. } | NnOp::LSTM { .. } => recurrent::check(v, o),
        other => ext::nn(v, other),
    }
}

/// QuantizeLinear's working precision as the `round_work` code of
/// `elementwise.wgsl` (0 f32, 1 f16, 2 bf16): the `precision` attribute, or
/// the input's type when it equals the scale's, else float32.
pub(crate) fn quant_work(x: DType, scale: DType, precision: Option<DType>) -> Result<u32, String> {
    let work = precision.unwrap_or(if x == scale { x } else { DType::F32 });
    match work {
        DType::F32 => Ok(0),
        DType::F16 => Ok(1),
        DType::BF16 => Ok(2),
        d => Err(format!("QuantizeLinear in {d} precision is not done on the GPU")),
    }
}

fn check_quant(v: &NodeView, q: &QuantOp) -> Result<Vec<Spec>, String> {
    let out = v.n.outputs.first().copied().flatten().and_then(|o| v.g.value(o).ty.dtype());
    let out = out.ok_or("output of unknown type")?;
    match q {
        QuantOp::QuantizeLinear { precision, .. } => {
            v.float(0)?;
            v.float(1)?;
            quant_work(v.dt(0)?, v.dt(1)?, *precision)?;
            let float_out =
                matches!(out, DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F4E2M1);
            let int_out = matches!(
                out,
                DType::U8 | DType::I8 | DType::U16 | DType::I16 | DType::U4 | DType::I4 | DType::U2 | DType::I2
            );
            if !float_out && !int_out {
                return Err(format!("QuantizeLinear to {out}"));
            }
            let zdt = if v.input(2).is_some() { dt_code(v.dev(2)?) } else { 0 };
            Ok(vec![(Shader::Elementwise, "quantize", vec![("DT", zdt)])])
        }
        QuantOp::DequantizeLinear { .. } => {
            let x = v.dev(0)?;
            v.float(1)?;
            if x == DType::I32 || !(word_class(x) == Some(Word::I32) || is_float_word(x)) {
                return Err(format!("DequantizeLinear of {x} is not done on the GPU"));
            }
            if !is_float_word(out) {
                return Err(format!("DequantizeLinear to {out}"));
            }
            if v.input(2).is_some() {
                v.dev(2)?;
            }
            Ok(vec![(Shader::Elementwise, "dequantize", vec![("DT", dt_code(x))])])
        }
        other => Err(format!("operator {} is not implemented on the GPU", other.name())),
    }
}

/// Reduce op code of `reduce.wgsl` for a reduction operator.
pub(crate) fn reduce_code(r: &R) -> Option<u32> {
    Some(match r {
        R::ReduceSum { .. } => 0,
        R::ReduceMean { .. } => 1,
        R::ReduceMax { .. } => 2,
        R::ReduceMin { .. } => 3,
        R::ReduceProd { .. } => 4,
        R::ReduceSumSquare { .. } => 5,
        R::ReduceL1 { .. } => 6,
        R::ReduceL2 { .. } => 7,
        R::ReduceLogSum { .. } => 8,
        R::ReduceLogSumExp { .. } => 9,
        _ => return None,
    })
}

fn check_reduce(v: &NodeView, r: &R) -> Result<Vec<Spec>, String> {
    if let Some(code) = reduce_code(r) {
        v.float(0)?;
        v.host(1, "axes")?;
        return Ok(vec![(Shader::Reduce, "reduce", vec![("OP", code)])]);
    }
    match r {
        R::Softmax { .. } | R::SoftmaxLegacy { .. } => {
            v.float(0)?;
            Ok(vec![(Shader::Norm, "softmax", vec![("MODE", 0)])])
        }
        R::ArgMax { .. } | R::ArgMin { .. } => {
            v.float(0)?;
            let op = u32::from(matches!(r, R::ArgMin { .. }));
            Ok(vec![(Shader::Reduce, "arg_reduce", vec![("OP", op)])])
        }
        R::LogSoftmax { .. } | R::LogSoftmaxLegacy { .. } => {
            v.float(0)?;
            Ok(vec![(Shader::Norm, "softmax", vec![("MODE", 1)])])
        }
        other => ext::reduce(v, other),
    }
}

/// `MODE` override of `resize.wgsl`.
pub(crate) fn resize_mode_code(mode: &str) -> Result<u32, String> {
    match mode {
        "nearest" => Ok(0),
        "linear" | "bilinear" => Ok(1),
        other => Err(format!("Resize mode '{other}' is not supported on the GPU")),
    }
}

/// Coordinate transformation code of `resize.wgsl`.
pub(crate) fn resize_coord_code(mode: &str) -> Result<u32, String> {
    match mode {
        "half_pixel" => Ok(0),
        "asymmetric" => Ok(1),
        "align_corners" => Ok(2),
        "pytorch_half_pixel" => Ok(3),
        "tf_half_pixel_for_nn" => Ok(4),
        "half_pixel_symmetric" => Ok(5),
        other => Err(format!("Resize coordinate_transformation_mode '{other}' is not supported on the GPU")),
    }
}

/// Nearest rounding code of `resize.wgsl`.
pub(crate) fn resize_nearest_code(mode: &str) -> Result<u32, String> {
    match mode {
        "round_prefer_floor" => Ok(0),
        "round_prefer_ceil" => Ok(1),
        "floor" => Ok(2),
        "ceil" => Ok(3),
        other => Err(format!("Resize nearest_mode '{other}' is not supported on the GPU")),
    }
}
