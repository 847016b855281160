//! Elementwise operators: unary and broadcasting binary float functions,
//! Where and casts (`elementwise.wgsl`), integer arithmetic with overflow
//! and division checks (`integer.wgsl`) and SwiGLU (`math.wgsl`).
//!
//! The float unary functions are one table, [`UNARY_F32`]: the WGSL
//! generator writes it as `elementwise.wgsl`'s `unary_f32` and fused
//! programs inline its rows. A new float activation is a row there and an
//! arm of [`unary_code`] (and its name in the planner's groups), all in
//! this file.

use super::*;
use crate::shape::{broadcast, bstrides, check_rank, f32w};
use crate::wgsl::{Params, wgsl_codes, wgsl_params};
use strata_ir::ops::elementwise::{GeluApprox, ShiftDirection};

wgsl_codes! {
    /// Unary op codes of `elementwise.wgsl` (`OP` override of `unary`, and
    /// of `integer.wgsl`'s): below 100 the float functions of
    /// [`UNARY_F32`] (a few also on integers), from 100 conversions and
    /// predicates whose output type differs from the input's.
    pub(crate) mod unary: UNARY {
        IDENTITY = 0,
        ABS = 1,
        NEG = 2,
        RELU = 3,
        SIGMOID = 4,
        TANH = 5,
        EXP = 6,
        LOG = 7,
        SQRT = 8,
        ERF = 9,
        GELU = 10,
        GELU_TANH = 11,
        LEAKY_RELU = 12,
        HARD_SIGMOID = 13,
        HARD_SWISH = 14,
        CLIP = 15,
        SOFTPLUS = 16,
        RECIPROCAL = 17,
        FLOOR = 18,
        CEIL = 19,
        ROUND = 20,
        SIN = 21,
        COS = 22,
        ELU = 23,
        SELU = 24,
        SOFTSIGN = 25,
        SIGN = 26,
        MISH = 27,
        SWISH = 28,
        CELU = 29,
        THRESHOLDED_RELU = 30,
        SCALE = 31,
        SHRINK = 32,
        ATAN = 33,
        TAN = 34,
        BITWISE_NOT = 35,
        ACOS = 36,
        ACOSH = 37,
        ASIN = 38,
        ASINH = 39,
        ATANH = 40,
        SINH = 41,
        COSH = 42,
        F32_TO_I32 = 100,
        I32_TO_F32 = 101,
        F32_TO_BOOL = 102,
        WORD_TO_BOOL = 103,
        BOOL_TO_F32 = 104,
        NOT = 105,
        IS_NAN = 106,
        IS_INF = 107,
        U32_TO_F32 = 108,
        COPY = 109,
    }

    /// Binary op codes of `elementwise.wgsl` and `integer.wgsl` (`OP`
    /// override of `binary`).
    pub(crate) mod binary: BINARY {
        ADD = 0,
        SUB = 1,
        MUL = 2,
        DIV = 3,
        POW = 4,
        MAX = 5,
        MIN = 6,
        EQ = 7,
        GT = 8,
        GE = 9,
        LT = 10,
        LE = 11,
        FMOD = 12,
        PRELU = 13,
        AND = 14,
        OR = 15,
        XOR = 16,
        MOD = 17,
        BIT_AND = 18,
        BIT_OR = 19,
        BIT_XOR = 20,
        SHIFT_LEFT = 21,
        SHIFT_RIGHT = 22,
    }
}

wgsl_params! {
    /// `unary` of `elementwise.wgsl` and `integer.wgsl` over `n` words: the
    /// operator's two parameters as words (f32 bits for the float
    /// functions, IsInf's flags, integer Clip's bounds), and for
    /// `integer.wgsl`'s checks the node's index.
    pub(crate) struct UnaryParams { n: u32, a: u32, b: u32, node: u32 }

    /// The broadcasting kernels (`binary` of both files, `where_select`):
    /// `n` outputs of `shape` (`rank` axes), each operand's strides over
    /// the output's axes (0 along broadcast axes); for `integer.wgsl`'s
    /// checks the operands' `bits` and the node's index.
    pub(crate) struct BroadcastParams {
        n: u32, rank: u32, shape: [u32; 8], a_strides: [u32; 8], b_strides: [u32; 8], c_strides: [u32; 8],
        bits: u32, node: u32,
    }

    /// `math.wgsl`'s `swiglu`.
    pub(crate) struct SwigluParams { n: u32, alpha: f32 }
}

/// The broadcast offsets of output element `i` in operands a, b and c:
/// generated into `elementwise.wgsl` and `integer.wgsl`.
const BROADCAST_OFFSETS: &str = "
fn offsets(i: u32) -> vec3<u32> {
    let p = broadcast_params();
    var rem = i;
    var o = vec3<u32>(0u, 0u, 0u);
    for (var d = p.rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = broadcast_params_shape(k);
        let coord = rem % dim;
        rem = rem / dim;
        o = o + coord * vec3<u32>(broadcast_params_a_strides(k), broadcast_params_b_strides(k), broadcast_params_c_strides(k));
    }
    return o;
}
";

/// The float unary functions, one row per `unary` code: its WGSL over
/// `{x}` and the operator's two parameters `{alpha}` and `{beta}` (see
/// [`unary_code`]). The generator writes them as `elementwise.wgsl`'s
/// `unary_f32` switch (parameters from the uniform block), and fused
/// programs inline them (parameters as literals), so both compute alike.
pub(crate) const UNARY_F32: [(u32, &str); 42] = [
    (unary::IDENTITY, "{x}"),
    (unary::ABS, "abs({x})"),
    (unary::NEG, "(-{x})"),
    (unary::RELU, "max({x}, 0.0)"),
    (unary::SIGMOID, "sigmoid_f({x})"),
    (unary::TANH, "tanh_f({x})"),
    (unary::EXP, "exp({x})"),
    (unary::LOG, "log_ieee({x})"),
    (unary::SQRT, "sqrt({x})"),
    (unary::ERF, "erf_f({x})"),
    (unary::GELU, "(0.5 * {x} * (1.0 + erf_f({x} * 0.7071067811865476)))"),
    (unary::GELU_TANH, "(0.5 * {x} * (1.0 + tanh_f(0.7978845608028654 * ({x} + 0.044715 * {x} * {x} * {x}))))"),
    (unary::LEAKY_RELU, "select({x}, {alpha} * {x}, {x} < 0.0)"),
    (unary::HARD_SIGMOID, "clamp({alpha} * {x} + {beta}, 0.0, 1.0)"),
    (unary::HARD_SWISH, "({x} * clamp({x} / 6.0 + 0.5, 0.0, 1.0))"),
    (unary::CLIP, "min(max({x}, {alpha}), {beta})"),
    (unary::SOFTPLUS, "softplus_f({x})"),
    (unary::RECIPROCAL, "(1.0 / {x})"),
    (unary::FLOOR, "floor({x})"),
    (unary::CEIL, "ceil({x})"),
    (unary::ROUND, "round({x})"),
    (unary::SIN, "sin({x})"),
    (unary::COS, "cos({x})"),
    (unary::ELU, "select({x}, {alpha} * (exp({x}) - 1.0), {x} < 0.0)"),
    (unary::SELU, "({beta} * select({x}, {alpha} * (exp({x}) - 1.0), {x} <= 0.0))"),
    (unary::SOFTSIGN, "({x} / (1.0 + abs({x})))"),
    (unary::SIGN, "sign({x})"),
    (unary::MISH, "({x} * tanh_f(softplus_f({x})))"),
    (unary::SWISH, "({x} * sigmoid_f({alpha} * {x}))"),
    (unary::CELU, "(max(0.0, {x}) + min(0.0, {alpha} * (exp({x} / {alpha}) - 1.0)))"),
    (unary::THRESHOLDED_RELU, "select(0.0, {x}, {x} > {alpha})"),
    (unary::SCALE, "({x} * {alpha})"),
    (unary::SHRINK, "select(select(0.0, {x} - {alpha}, {x} > {beta}), {x} + {alpha}, {x} < -{beta})"),
    (unary::ATAN, "atan({x})"),
    (unary::TAN, "tan({x})"),
    (unary::ACOS, "acos({x})"),
    (unary::ACOSH, "log({x} + sqrt({x} * {x} - 1.0))"),
    (unary::ASIN, "asin({x})"),
    (unary::ASINH, "asinh_f({x})"),
    (unary::ATANH, "atanh_f({x})"),
    (unary::SINH, "sinh_f({x})"),
    (unary::COSH, "cosh({x})"),
];

/// The WGSL of float unary function `code` applied to `x` with the
/// parameters `alpha` and `beta` (expressions), if it is one.
pub(crate) fn unary_f32_expr(code: u32, x: &str, alpha: &str, beta: &str) -> Option<String> {
    let (_, t) = UNARY_F32.iter().find(|(c, _)| *c == code)?;
    Some(t.replace("{x}", x).replace("{alpha}", alpha).replace("{beta}", beta))
}

/// The comparison ops and their WGSL operators: `compare_<type>(x, y)` in
/// the elementwise and integer kernels (1 when `x op y`).
const COMPARISONS: [(u32, &str); 5] =
    [(binary::EQ, "=="), (binary::GT, ">"), (binary::GE, ">="), (binary::LT, "<"), (binary::LE, "<=")];

/// The generated part of `elementwise.wgsl` besides its codes: the
/// `unary_f32` switch over [`UNARY_F32`].
pub(crate) fn generated_functions(shader: Shader) -> String {
    let mut s = String::from(BROADCAST_OFFSETS);
    for ty in ["f32", "i32", "u32"] {
        s.push_str(&format!("\nfn compare_{ty}(x: {ty}, y: {ty}) -> u32 {{\n    switch OP {{\n"));
        for (code, op) in COMPARISONS {
            let name = binary::TABLE.codes.iter().find(|(_, v)| *v == code).map_or("?", |(n, _)| n);
            s.push_str(&format!("        case BINARY_{name}: {{ return select(0u, 1u, x {op} y); }}\n"));
        }
        s.push_str("        default: { return 0u; }\n    }\n}\n");
    }
    if shader == Shader::Integer {
        return s;
    }
    s.push_str("\nfn unary_f32(x: f32, alpha: f32, beta: f32) -> f32 {\n    switch OP {\n");
    for (code, _) in UNARY_F32 {
        let name = unary::TABLE.codes.iter().find(|(_, v)| *v == code).map_or("?", |(n, _)| n);
        let e = unary_f32_expr(code, "x", "alpha", "beta").unwrap_or_default();
        s.push_str(&format!("        case UNARY_{name}: {{ return {e}; }}\n"));
    }
    s.push_str("        default: { return x; }\n    }\n}\n");
    s
}

/// How an elementwise node runs.
#[derive(Debug)]
pub(crate) enum Plan {
    /// The input itself (Identity).
    Identity,
    /// The input's words under the output's type (a Cast that changes no word).
    Retype,
    /// One `unary` dispatch with its two parameter words (attribute values
    /// of the activation, IsInf's flags).
    Unary { k: Kernel, a: u32, b: u32 },
    /// `unary` with Clip's bounds: inputs 1 and 2 read on the host when
    /// given, else the attributes.
    Clip { k: Kernel, min: Option<f32>, max: Option<f32> },
    /// One broadcasting `binary` dispatch.
    Binary { k: Kernel },
    /// Max/Min/Sum/Mean folded pairwise with `binary`; Mean then scales by
    /// 1/n with `scale`.
    Variadic { k: Kernel, scale: Option<Kernel> },
    /// `where_select` over three broadcast operands.
    Where { k: Kernel },
    /// `SwiGLU`: `A * sigmoid(alpha * A) * B`.
    SwiGlu { k: Kernel, alpha: f32 },
}

fn float_unary(k: &mut Kernels, op: u32, dt: u32) -> Kernel {
    k.get(Shader::Elementwise, "unary", &[("OP", op), ("DT", dt)])
}
fn float_binary(k: &mut Kernels, op: u32, dt: u32) -> Kernel {
    k.get(Shader::Elementwise, "binary", &[("OP", op), ("DT", dt)])
}
fn int_unary(k: &mut Kernels, op: u32, d: DType) -> Kernel {
    k.get(Shader::Integer, "unary", &[("OP", op), ("DT", dt_code(d)), ("CHECK", int_check_code(d))])
}
fn int_binary(k: &mut Kernels, op: u32, d: DType) -> Kernel {
    k.get(Shader::Integer, "binary", &[("OP", op), ("DT", dt_code(d)), ("CHECK", int_check_code(d))])
}

/// `CHECK` override of `integer.wgsl`: results of int64 (stored as i32) and
/// uint64 (stored as u32) arithmetic must fit their 32-bit storage.
fn int_check_code(d: DType) -> u32 {
    match d {
        DType::I64 => 1,
        DType::U64 => 2,
        _ => 0,
    }
}

/// Plan an elementwise operator.
#[deny(clippy::wildcard_enum_match_arm)]
pub(super) fn plan(v: &NodeView, e: &E, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match e {
        E::Identity {} => {
            v.dev(0)?;
            Ok(Plan::Identity)
        }
        E::Cast { to, .. } => cast_plan(k, v.dev(0)?, *to),
        E::CastLike { .. } => cast_plan(k, v.dev(0)?, v.dt(1)?),
        E::BitCast { to } => bitcast_plan(k, v.dev(0)?, *to),
        E::Not {} => {
            let d = v.dt(0)?;
            if d == DType::Bool {
                Ok(Plan::Unary { k: float_unary(k, unary::NOT, word_type::BOOL), a: 0, b: 0 })
            } else {
                Err(format!("Not on {d}"))
            }
        }
        E::BitwiseNot {} => {
            let d = v.dev(0)?;
            if !is_int_word(d) {
                return Err(format!("BitwiseNot on {d}"));
            }
            if d == DType::U64 {
                return Err("BitwiseNot on uint64 (results exceed the GPU's 32-bit storage)".into());
            }
            Ok(Plan::Unary { k: int_unary(k, unary::BITWISE_NOT, d), a: 0, b: 0 })
        }
        E::IsNaN {} => {
            v.float(0)?;
            Ok(Plan::Unary { k: float_unary(k, unary::IS_NAN, word_type::F32), a: 0, b: 0 })
        }
        E::IsInf { detect_negative, detect_positive } => {
            v.float(0)?;
            let (a, b) = (u32::from(*detect_negative != 0), u32::from(*detect_positive != 0));
            Ok(Plan::Unary { k: float_unary(k, unary::IS_INF, word_type::F32), a, b })
        }
        E::Where {} => {
            if v.dt(0)? != DType::Bool {
                return Err("Where condition must be bool".into());
            }
            let (a, b) = (v.dev(1)?, v.dev(2)?);
            if a != b {
                return Err(format!("Where branches differ in type ({a}, {b})"));
            }
            Ok(Plan::Where { k: k.get(Shader::Elementwise, "where_select", &[]) })
        }
        E::Max {} | E::Min {} | E::Sum {} | E::Mean {} => {
            let d = v.dev(0)?;
            for i in 0..v.n.inputs.len() {
                if v.dev(i)? != d {
                    return Err("inputs differ in type".into());
                }
            }
            if is_float_word(d) {
                let op = binary_code(e).ok_or_else(|| format!("{} has no binary kernel", e.name()))?;
                let scale = matches!(e, E::Mean {}).then(|| float_unary(k, unary::SCALE, word_type::F32));
                return Ok(Plan::Variadic { k: float_binary(k, op, word_type::F32), scale });
            }
            match int_binary_code(e) {
                Some(op) if is_int_word(d) => Ok(Plan::Variadic { k: int_binary(k, op, d), scale: None }),
                _ => Err(format!("{} on {d}", e.name())),
            }
        }
        E::Clip { min, max } => {
            let d = v.dev(0)?;
            if d == DType::Bool {
                return Err("Clip on bool".into());
            }
            v.host(1, "Clip min")?;
            v.host(2, "Clip max")?;
            let k = if is_float_word(d) {
                float_unary(k, unary::CLIP, word_type::F32)
            } else {
                int_unary(k, unary::CLIP, d)
            };
            Ok(Plan::Clip { k, min: *min, max: *max })
        }
        // a `unary` code (float, some integer types), else a two-input kernel
        E::Acos { .. }
        | E::Acosh { .. }
        | E::Asin { .. }
        | E::Asinh { .. }
        | E::Atanh { .. }
        | E::Sinh { .. }
        | E::Cosh { .. }
        | E::Abs { .. }
        | E::Atan { .. }
        | E::Ceil { .. }
        | E::Cos { .. }
        | E::Erf { .. }
        | E::Exp { .. }
        | E::Floor { .. }
        | E::Log { .. }
        | E::Neg { .. }
        | E::Reciprocal { .. }
        | E::Round { .. }
        | E::Sign { .. }
        | E::Sin { .. }
        | E::Sqrt { .. }
        | E::Tan { .. }
        | E::Tanh { .. }
        | E::Relu { .. }
        | E::Sigmoid { .. }
        | E::Softplus { .. }
        | E::Softsign { .. }
        | E::HardSwish { .. }
        | E::Mish { .. }
        | E::Elu { .. }
        | E::Celu { .. }
        | E::Selu { .. }
        | E::LeakyRelu { .. }
        | E::ThresholdedRelu { .. }
        | E::HardSigmoid { .. }
        | E::Gelu { .. }
        | E::Shrink { .. }
        | E::Swish { .. }
        | E::PRelu { .. }
        | E::Add { .. }
        | E::Sub { .. }
        | E::Mul { .. }
        | E::Div { .. }
        | E::Pow { .. }
        | E::Mod { .. }
        | E::BitShift { .. }
        | E::BitwiseAnd { .. }
        | E::BitwiseOr { .. }
        | E::BitwiseXor { .. }
        | E::Equal { .. }
        | E::Greater { .. }
        | E::GreaterOrEqual { .. }
        | E::Less { .. }
        | E::LessOrEqual { .. }
        | E::And { .. }
        | E::Or { .. }
        | E::Xor { .. } => coded(v, e, k),
    }
}

/// An operator with a `unary` code, else a two-input one.
fn coded(v: &NodeView, e: &E, k: &mut Kernels) -> std::result::Result<Plan, String> {
    if let Some((op, a, b)) = unary_code(e) {
        let d = v.dev(0)?;
        let (a, b) = (f32w(a), f32w(b));
        if is_float_word(d) {
            return Ok(Plan::Unary { k: float_unary(k, op, word_type::F32), a, b });
        }
        let int_ok = matches!(e, E::Abs {} | E::Neg {} | E::Relu {} | E::Sign {});
        if int_ok && is_int_word(d) {
            return Ok(Plan::Unary { k: int_unary(k, op, d), a, b });
        }
        return Err(format!("{} on {d} is not supported on the GPU (floats only)", e.name()));
    }
    binary_plan(v, e, k)
}

/// A two-input elementwise operator.
fn binary_plan(v: &NodeView, e: &E, k: &mut Kernels) -> std::result::Result<Plan, String> {
    let (a, b) = (v.dev(0)?, v.dev(1)?);
    if matches!(e, E::Pow {}) && is_float_word(a) && is_int_word(b) {
        // A float base with an integer exponent (converted to f32 in the kernel).
        let k =
            k.get(Shader::Elementwise, "binary", &[("OP", binary::POW), ("DT", word_type::F32), ("DTB", dt_code(b))]);
        return Ok(Plan::Binary { k });
    }
    if a != b {
        return Err(format!("inputs differ in type ({a}, {b})"));
    }
    let cmp = matches!(e, E::Equal {} | E::Greater {} | E::GreaterOrEqual {} | E::Less {} | E::LessOrEqual {});
    if is_int_word(a) {
        return match int_binary_code(e) {
            Some(op) => Ok(Plan::Binary { k: int_binary(k, op, a) }),
            None => Err(format!("{} on {a} is not supported on the GPU", e.name())),
        };
    }
    let float_code = if matches!(e, E::Mod { fmod: 0 }) { Some(binary::MOD) } else { binary_code(e) };
    let Some(op) = float_code else {
        return not_implemented(e.name());
    };
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
    Ok(Plan::Binary { k: float_binary(k, op, dt_code(a)) })
}

fn cast_plan(k: &mut Kernels, from: DType, to: DType) -> std::result::Result<Plan, String> {
    Ok(match cast_code(from, to)? {
        None => Plan::Retype,
        Some(op) => Plan::Unary { k: float_unary(k, op, word_type::F32), a: 0, b: 0 },
    })
}

/// `BitCast` on 32-bit words: between the 32-bit types the words are the
/// bits (a retyped view); between integer / bool types of one narrower
/// width, reinterpreting the bits is the wrapping cast.
fn bitcast_plan(k: &mut Kernels, from: DType, to: DType) -> std::result::Result<Plan, String> {
    use DType::{Bool, F32, I8, I16, I32, U8, U16, U32};
    if from.bits() != to.bits() {
        return Err(format!("cannot bit-cast {from} to {to}: sizes differ"));
    }
    match (from, to) {
        (F32 | I32 | U32, F32 | I32 | U32) => Ok(Plan::Retype),
        (I8 | U8 | Bool, I8 | U8) | (I16 | U16, I16 | U16) => cast_plan(k, from, to),
        _ => Err(format!("BitCast from {from} to {to} is not done on the GPU")),
    }
}

/// Plan `SwiGLU` (two float inputs of one type).
pub(super) fn plan_swiglu(v: &NodeView, alpha: f32, k: &mut Kernels) -> std::result::Result<Plan, String> {
    v.float(0)?;
    v.float(1)?;
    if v.dt(0)? != v.dt(1)? {
        return Err("SwiGLU inputs differ in type".into());
    }
    Ok(Plan::SwiGlu { k: k.get(Shader::Math, "swiglu", &[]), alpha })
}

impl Exec<'_> {
    pub(super) fn elementwise(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let out = self.out_dtype(0)?;
        match plan {
            Plan::Identity => Ok(vec![self.input(0)?.clone()]),
            Plan::Retype => {
                let x = self.input(0)?;
                Ok(vec![x.view(out, x.shape.clone())])
            }
            Plan::Unary { k, a, b } => Ok(vec![self.unary(ctx, k, self.input(0)?, *a, *b, out)?]),
            Plan::Binary { k } => Ok(vec![self.binary(ctx, k, self.input(0)?, self.input(1)?, out)?]),
            Plan::Where { k } => {
                let (c, a, b) = (self.input(0)?, self.input(1)?, self.input(2)?);
                let (p, shape) = broadcast_params(&[&c.shape, &a.shape, &b.shape])?;
                let y = ctx.alloc(out, shape)?;
                let n = y.numel();
                ctx.dispatch_n(k, &p.words()?, &y, &[c, a, b], n)?;
                Ok(vec![y])
            }
            Plan::Variadic { k, scale } => {
                let n = self.n.inputs.len();
                let mut acc = self.input(0)?.clone();
                for i in 1..n {
                    let next = self.binary(ctx, k, &acc, self.input(i)?, out)?;
                    if i > 1 {
                        ctx.release(acc);
                    }
                    acc = next;
                }
                if let (Some(scale), true) = (scale, n > 1) {
                    let m = self.unary(ctx, scale, &acc, f32w(1.0 / n as f32), 0, out)?;
                    ctx.release(acc);
                    acc = m;
                }
                Ok(vec![acc])
            }
            Plan::Clip { k, min, max } => {
                let x = self.input(0)?;
                let (a, b) = self.clip_bounds(x.dtype, *min, *max)?;
                Ok(vec![self.unary(ctx, k, x, a, b, out)?])
            }
            Plan::SwiGlu { k, alpha } => {
                let (a, b) = (self.input(0)?, self.input(1)?);
                if a.shape != b.shape {
                    return Err(GpuError::Shape(format!("SwiGLU inputs {:?} and {:?} differ", a.shape, b.shape)));
                }
                let y = ctx.alloc(a.dtype, a.shape.clone())?;
                let n = y.numel();
                ctx.dispatch_n(k, &SwigluParams { n, alpha: *alpha }.words()?, &y, &[a, b], n)?;
                Ok(vec![y])
            }
        }
    }

    /// Clip's two parameter words for input words of type `d`.
    fn clip_bounds(&self, d: DType, min: Option<f32>, max: Option<f32>) -> Result<(u32, u32)> {
        let scalar = |i: usize| -> Result<Option<f64>> {
            match self.host(i) {
                None if self.has_input(i) => Err(GpuError::Unsupported(format!("Clip input {i} must be a constant"))),
                None => Ok(None),
                Some(t) if t.numel() == 1 => Ok(Some(t.to_f64_vec()[0])),
                Some(_) => Err(GpuError::Shape(format!("Clip input {i} must be a scalar"))),
            }
        };
        let lo = scalar(1)?;
        let hi = scalar(2)?;
        Ok(if is_float_word(d) {
            let lo = lo.map(|v| v as f32).or(min).unwrap_or(f32::NEG_INFINITY);
            let hi = hi.map(|v| v as f32).or(max).unwrap_or(f32::INFINITY);
            (f32w(lo), f32w(hi))
        } else if word_class(d) == Some(Word::U32) {
            let lo = lo.map(|v| v as i64).unwrap_or(0).clamp(0, u32::MAX as i64);
            let hi = hi.map(|v| v as i64).unwrap_or(u32::MAX as i64).clamp(0, u32::MAX as i64);
            (lo as u32, hi as u32)
        } else {
            let lo = lo.map(|v| v as i64).unwrap_or(i64::from(i32::MIN)).clamp(i32::MIN as i64, i32::MAX as i64);
            let hi = hi.map(|v| v as i64).unwrap_or(i64::from(i32::MAX)).clamp(i32::MIN as i64, i32::MAX as i64);
            ((lo as i32) as u32, (hi as i32) as u32)
        })
    }

    fn unary(&self, ctx: &mut Ctx, k: &Kernel, x: &GpuTensor, a: u32, b: u32, out: DType) -> Result<GpuTensor> {
        let y = ctx.alloc(out, x.shape.clone())?;
        let n = x.numel();
        let p = UnaryParams { n, a: a as usize, b: b as usize, node: self.node as usize }.words()?;
        if k.checked {
            let st = ctx.status()?;
            ctx.dispatch_n(k, &p, &y, &[&st, x], n)?;
        } else {
            ctx.dispatch_n(k, &p, &y, &[x], n)?;
        }
        Ok(y)
    }

    fn binary(&self, ctx: &mut Ctx, k: &Kernel, a: &GpuTensor, b: &GpuTensor, out: DType) -> Result<GpuTensor> {
        let (p, shape) = broadcast_params(&[&a.shape, &b.shape])?;
        let y = ctx.alloc(out, shape)?;
        let n = y.numel();
        if k.checked {
            let p = BroadcastParams { bits: a.dtype.bits(), node: self.node as usize, ..p };
            let st = ctx.status()?;
            ctx.dispatch_n(k, &p.words()?, &y, &[&st, a, b], n)?;
        } else {
            ctx.dispatch_n(k, &p.words()?, &y, &[a, b], n)?;
        }
        Ok(y)
    }
}

/// The unary op code and its two float parameters for a float activation
/// (Clip's bounds come from inputs at run time when not attributes).
#[deny(clippy::wildcard_enum_match_arm)]
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
        E::Gelu { approximate: GeluApprox::None } => (GELU, 0.0, 0.0),
        E::Gelu { approximate: GeluApprox::Tanh } => (GELU_TANH, 0.0, 0.0),
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
        E::Acos {} => (ACOS, 0.0, 0.0),
        E::Acosh {} => (ACOSH, 0.0, 0.0),
        E::Asin {} => (ASIN, 0.0, 0.0),
        E::Asinh {} => (ASINH, 0.0, 0.0),
        E::Atanh {} => (ATANH, 0.0, 0.0),
        E::Sinh {} => (SINH, 0.0, 0.0),
        E::Cosh {} => (COSH, 0.0, 0.0),
        // no `unary` code
        E::Not { .. }
        | E::BitwiseNot { .. }
        | E::IsNaN { .. }
        | E::IsInf { .. }
        | E::PRelu { .. }
        | E::Add { .. }
        | E::Sub { .. }
        | E::Mul { .. }
        | E::Div { .. }
        | E::Pow { .. }
        | E::Mod { .. }
        | E::BitShift { .. }
        | E::BitwiseAnd { .. }
        | E::BitwiseOr { .. }
        | E::BitwiseXor { .. }
        | E::Equal { .. }
        | E::Greater { .. }
        | E::GreaterOrEqual { .. }
        | E::Less { .. }
        | E::LessOrEqual { .. }
        | E::And { .. }
        | E::Or { .. }
        | E::Xor { .. }
        | E::Max { .. }
        | E::Min { .. }
        | E::Mean { .. }
        | E::Sum { .. }
        | E::Where { .. }
        | E::Identity { .. }
        | E::Cast { .. }
        | E::CastLike { .. }
        | E::BitCast { .. } => return None,
    })
}

/// The binary op code of a two-input elementwise op.
#[deny(clippy::wildcard_enum_match_arm)]
fn binary_code(op: &E) -> Option<u32> {
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
        // no `binary` code
        E::Abs { .. }
        | E::Acos { .. }
        | E::Acosh { .. }
        | E::Asin { .. }
        | E::Asinh { .. }
        | E::Atan { .. }
        | E::Atanh { .. }
        | E::Ceil { .. }
        | E::Cos { .. }
        | E::Cosh { .. }
        | E::Erf { .. }
        | E::Exp { .. }
        | E::Floor { .. }
        | E::Log { .. }
        | E::Neg { .. }
        | E::Reciprocal { .. }
        | E::Round { .. }
        | E::Sign { .. }
        | E::Sin { .. }
        | E::Sinh { .. }
        | E::Sqrt { .. }
        | E::Tan { .. }
        | E::Tanh { .. }
        | E::Not { .. }
        | E::BitwiseNot { .. }
        | E::IsNaN { .. }
        | E::IsInf { .. }
        | E::Relu { .. }
        | E::Sigmoid { .. }
        | E::Softplus { .. }
        | E::Softsign { .. }
        | E::HardSwish { .. }
        | E::Mish { .. }
        | E::Elu { .. }
        | E::Celu { .. }
        | E::Selu { .. }
        | E::LeakyRelu { .. }
        | E::ThresholdedRelu { .. }
        | E::HardSigmoid { .. }
        | E::Gelu { .. }
        | E::Shrink { .. }
        | E::Swish { .. }
        | E::Clip { .. }
        | E::BitShift { .. }
        | E::BitwiseAnd { .. }
        | E::BitwiseOr { .. }
        | E::BitwiseXor { .. }
        | E::Where { .. }
        | E::Identity { .. }
        | E::Cast { .. }
        | E::CastLike { .. }
        | E::BitCast { .. }
        | E::Mod { .. } => return None,
    })
}

/// Parameters of the broadcasting kernels (`binary`, `where_select`) for
/// two or three operands, and the output shape.
fn broadcast_params(operands: &[&[usize]]) -> Result<(BroadcastParams, Vec<usize>)> {
    let shape = broadcast(operands)?;
    check_rank(&shape)?;
    let n = strata_ir::tensor::checked_numel(&shape).ok_or_else(|| GpuError::Limit("shape overflows".into()))?;
    let strides = |i: usize| operands.get(i).map(|s| bstrides(s, &shape)).unwrap_or_default();
    let p = BroadcastParams {
        n,
        rank: shape.len(),
        shape: shape.clone(),
        a_strides: strides(0),
        b_strides: strides(1),
        c_strides: strides(2),
        bits: 0,
        node: 0,
    };
    Ok((p, shape))
}

/// Cast plan: `None` = same words (alias with a new dtype), `Some(op)` = a
/// unary conversion of `elementwise.wgsl` (the result is then narrowed to
/// `to`, see `narrow::narrow_params`). Casts whose results could leave the 32-bit
/// storage of int64 / uint64 are refused.
fn cast_code(from: DType, to: DType) -> std::result::Result<Option<u32>, String> {
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

/// The `integer.wgsl` binary op code of an elementwise op on integers.
#[deny(clippy::wildcard_enum_match_arm)]
fn int_binary_code(e: &E) -> Option<u32> {
    use binary::*;
    match e {
        E::Mod { fmod } if *fmod != 1 => Some(MOD),
        E::BitwiseAnd {} => Some(BIT_AND),
        E::BitwiseOr {} => Some(BIT_OR),
        E::BitwiseXor {} => Some(BIT_XOR),
        E::BitShift { direction: ShiftDirection::Left } => Some(SHIFT_LEFT),
        E::BitShift { direction: ShiftDirection::Right } => Some(SHIFT_RIGHT),
        // Float-only (or bool-only) binaries.
        E::Mean {} | E::PRelu {} | E::And {} | E::Or {} | E::Xor {} => None,
        // as for floats
        E::Abs { .. }
        | E::Acos { .. }
        | E::Acosh { .. }
        | E::Asin { .. }
        | E::Asinh { .. }
        | E::Atan { .. }
        | E::Atanh { .. }
        | E::Ceil { .. }
        | E::Cos { .. }
        | E::Cosh { .. }
        | E::Erf { .. }
        | E::Exp { .. }
        | E::Floor { .. }
        | E::Log { .. }
        | E::Neg { .. }
        | E::Reciprocal { .. }
        | E::Round { .. }
        | E::Sign { .. }
        | E::Sin { .. }
        | E::Sinh { .. }
        | E::Sqrt { .. }
        | E::Tan { .. }
        | E::Tanh { .. }
        | E::Not { .. }
        | E::BitwiseNot { .. }
        | E::IsNaN { .. }
        | E::IsInf { .. }
        | E::Relu { .. }
        | E::Sigmoid { .. }
        | E::Softplus { .. }
        | E::Softsign { .. }
        | E::HardSwish { .. }
        | E::Mish { .. }
        | E::Elu { .. }
        | E::Celu { .. }
        | E::Selu { .. }
        | E::LeakyRelu { .. }
        | E::ThresholdedRelu { .. }
        | E::HardSigmoid { .. }
        | E::Gelu { .. }
        | E::Shrink { .. }
        | E::Swish { .. }
        | E::Clip { .. }
        | E::Add { .. }
        | E::Sub { .. }
        | E::Mul { .. }
        | E::Div { .. }
        | E::Pow { .. }
        | E::Equal { .. }
        | E::Greater { .. }
        | E::GreaterOrEqual { .. }
        | E::Less { .. }
        | E::LessOrEqual { .. }
        | E::Max { .. }
        | E::Min { .. }
        | E::Sum { .. }
        | E::Where { .. }
        | E::Identity { .. }
        | E::Cast { .. }
        | E::CastLike { .. }
        | E::BitCast { .. }
        | E::Mod { .. } => binary_code(e),
    }
}
