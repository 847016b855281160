//! Elementwise kernels: float activations and arithmetic with numpy
//! broadcasting, comparisons, `Where`, `Cast`. Transcendental functions come
//! from `libm`, so results are the same on every target.

use strata_ir::DType;
use strata_ir::ops::ElementwiseOp as E;
use strata_ir::ops::elementwise::{GeluApprox, ShiftDirection};

use super::cast::{BitCastKernel, CastKernel};
pub(crate) use super::logic::IdentityKernel;
use super::logic::{
    BitNotKernel, Compare, CompareKernel, FloatClassKernel, IntKernel, IntOp, NotKernel, PowMixedKernel, WhereKernel,
};
use super::{Ctx, Kernel, NodeInfo, broadcast, broadcast_strides, input, unsupported};
use crate::error::{Result, bail};
use crate::tensor::{CpuTensor, is_held};

/// A float activation with its parameters.
#[derive(Debug, Clone, Copy)]
pub(super) enum Unary {
    Abs,
    Neg,
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Sqrt,
    Erf,
    Reciprocal,
    Floor,
    Ceil,
    Round,
    Sign,
    Sin,
    Cos,
    Softplus,
    Softsign,
    HardSwish,
    Mish,
    HardSigmoid(f32, f32),
    LeakyRelu(f32),
    Elu(f32),
    Celu(f32),
    Selu(f32, f32),
    ThresholdedRelu(f32),
    Gelu,
    GeluTanh,
    Swish(f32),
    /// Shrink(bias, lambd).
    Shrink(f32, f32),
    /// Clip with bounds from attributes (inputs are read at run time).
    Clip(f32, f32),
    Acos,
    Acosh,
    Asin,
    Asinh,
    Atan,
    Atanh,
    Cosh,
    Sinh,
    Tan,
}

use crate::math::sigmoid;

fn softplus(x: f32) -> f32 {
    if x > 20.0 { x } else { libm::log1pf(libm::expf(x)) }
}

/// `min(max(x, lo), hi)`: with `lo > hi` everything becomes `hi`; NaN stays NaN.
fn clip(x: f32, lo: f32, hi: f32) -> f32 {
    let t = if x < lo { lo } else { x };
    if t > hi { hi } else { t }
}

impl Unary {
    /// The float function of a one-operand operator, if it is one.
    pub(super) fn of(op: &E) -> Option<Unary> {
        use Unary as U;
        Some(match op {
            E::Abs {} => U::Abs,
            E::Neg {} => U::Neg,
            E::Relu {} => U::Relu,
            E::Sigmoid {} => U::Sigmoid,
            E::Tanh {} => U::Tanh,
            E::Exp {} => U::Exp,
            E::Log {} => U::Log,
            E::Sqrt {} => U::Sqrt,
            E::Erf {} => U::Erf,
            E::Reciprocal {} => U::Reciprocal,
            E::Floor {} => U::Floor,
            E::Ceil {} => U::Ceil,
            E::Round {} => U::Round,
            E::Sign {} => U::Sign,
            E::Sin {} => U::Sin,
            E::Cos {} => U::Cos,
            E::Softplus {} => U::Softplus,
            E::Softsign {} => U::Softsign,
            E::HardSwish {} => U::HardSwish,
            E::Mish {} => U::Mish,
            E::HardSigmoid { alpha, beta } => U::HardSigmoid(*alpha, *beta),
            E::LeakyRelu { alpha } => U::LeakyRelu(*alpha),
            E::Elu { alpha } => U::Elu(*alpha),
            E::Celu { alpha } => U::Celu(*alpha),
            E::Selu { alpha, gamma } => U::Selu(*alpha, *gamma),
            E::ThresholdedRelu { alpha } => U::ThresholdedRelu(*alpha),
            E::Gelu { approximate: GeluApprox::None } => U::Gelu,
            E::Gelu { approximate: GeluApprox::Tanh } => U::GeluTanh,
            E::Swish { alpha } => U::Swish(*alpha),
            E::Shrink { bias, lambd } => U::Shrink(*bias, *lambd),
            E::Clip { min, max } => U::Clip(min.unwrap_or(f32::NEG_INFINITY), max.unwrap_or(f32::INFINITY)),
            E::Acos {} => U::Acos,
            E::Acosh {} => U::Acosh,
            E::Asin {} => U::Asin,
            E::Asinh {} => U::Asinh,
            E::Atan {} => U::Atan,
            E::Atanh {} => U::Atanh,
            E::Cosh {} => U::Cosh,
            E::Sinh {} => U::Sinh,
            E::Tan {} => U::Tan,
            // not a float function of one operand (`build` names every operator)
            _ => return None,
        })
    }

    /// Apply to every element (one loop per function, written out by a
    /// macro so the function's body sits inside the loop and vectorises;
    /// a closure or function item passed in may stay an out-of-line call).
    #[inline(always)]
    pub(super) fn apply(self, x: &[f32], out: &mut [f32]) {
        macro_rules! each {
            ($x:expr, $out:expr, |$v:ident| $body:expr) => {
                for (o, &$v) in $out.iter_mut().zip($x) {
                    *o = $body;
                }
            };
            ($x:expr, $out:expr, $f:path) => {
                for (o, &v) in $out.iter_mut().zip($x) {
                    *o = $f(v);
                }
            };
        }
        use Unary as U;
        match self {
            U::Abs => each!(x, out, f32::abs),
            U::Neg => each!(x, out, |v| -v),
            U::Relu => each!(x, out, |v| if v < 0.0 { 0.0 } else { v }),
            U::Sigmoid => each!(x, out, sigmoid),
            U::Tanh => each!(x, out, crate::math::tanh),
            U::Exp => each!(x, out, crate::math::exp),
            U::Log => each!(x, out, libm::logf),
            U::Sqrt => each!(x, out, f32::sqrt),
            U::Erf => each!(x, out, crate::math::erf),
            U::Reciprocal => each!(x, out, |v| 1.0 / v),
            U::Floor => each!(x, out, f32::floor),
            U::Ceil => each!(x, out, f32::ceil),
            U::Round => each!(x, out, f32::round_ties_even),
            U::Sign => each!(x, out, |v| {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    v
                }
            }),
            U::Sin => each!(x, out, libm::sinf),
            U::Cos => each!(x, out, libm::cosf),
            U::Softplus => each!(x, out, softplus),
            U::Softsign => each!(x, out, |v| v / (1.0 + v.abs())),
            U::HardSwish => each!(x, out, |v| v * clip(v / 6.0 + 0.5, 0.0, 1.0)),
            U::Mish => each!(x, out, |v| v * crate::math::tanh(softplus(v))),
            U::HardSigmoid(a, b) => each!(x, out, |v| clip(a * v + b, 0.0, 1.0)),
            U::LeakyRelu(a) => each!(x, out, |v| if v < 0.0 { a * v } else { v }),
            U::Elu(a) => each!(x, out, |v| if v < 0.0 { a * (libm::expf(v) - 1.0) } else { v }),
            U::Celu(a) => each!(x, out, |v| if v < 0.0 { a * (libm::expf(v / a) - 1.0) } else { v }),
            U::Selu(a, g) => each!(x, out, |v| if v <= 0.0 { g * (a * libm::expf(v) - a) } else { g * v }),
            U::ThresholdedRelu(a) => each!(x, out, |v| if v > a { v } else { 0.0 }),
            U::Gelu => each!(x, out, crate::math::gelu),
            U::GeluTanh => each!(x, out, |v| {
                let c = (2.0f32 / std::f32::consts::PI).sqrt();
                0.5 * v * (1.0 + crate::math::tanh(c * (v + 0.044_715 * v * v * v)))
            }),
            U::Swish(a) => each!(x, out, |v| v * sigmoid(a * v)),
            U::Shrink(b, l) => each!(x, out, |v| if v < -l {
                v + b
            } else if v > l {
                v - b
            } else {
                0.0
            }),
            U::Clip(lo, hi) => each!(x, out, |v| clip(v, lo, hi)),
            U::Acos => each!(x, out, libm::acosf),
            U::Acosh => each!(x, out, libm::acoshf),
            U::Asin => each!(x, out, libm::asinf),
            U::Asinh => each!(x, out, libm::asinhf),
            U::Atan => each!(x, out, libm::atanf),
            U::Atanh => each!(x, out, libm::atanhf),
            U::Cosh => each!(x, out, libm::coshf),
            U::Sinh => each!(x, out, libm::sinhf),
            U::Tan => each!(x, out, libm::tanf),
        }
    }
}

struct UnaryKernel(Unary);

/// Read an optional scalar bound input of Clip.
pub(super) fn bound(inputs: &[Option<&CpuTensor>], i: usize, default: f32) -> Result<f32> {
    match inputs.get(i).copied().flatten() {
        None => Ok(default),
        Some(t) => match t.as_f32()? {
            [v] => Ok(*v),
            _ => bail!("Clip bound must be a scalar, got shape {:?}", t.shape),
        },
    }
}

impl Kernel for UnaryKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let xv = x.as_f32()?;
        let op = match self.0 {
            Unary::Clip(lo, hi) => Unary::Clip(bound(inputs, 1, lo)?, bound(inputs, 2, hi)?),
            op => op,
        };
        let mut out = ctx.buffer(xv.len());
        const CHUNK: usize = 1 << 14;
        ctx.pool.for_each_chunk(&mut out, CHUNK, xv.len() * 8, |i, o| {
            crate::simd::vectorized(
                #[inline(always)]
                || op.apply(&xv[i * CHUNK..i * CHUNK + o.len()], o),
            );
        });
        Ok(vec![CpuTensor::f32(x.shape.clone(), out)])
    }
}

/// An operand of a lane-wise operation: one value per lane, or one value
/// for all lanes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    Slice(&'a [f32]),
    Scalar(f32),
}

/// A binary float operation.
#[derive(Debug, Clone, Copy)]
pub(super) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    PRelu,
    /// `Mod` on floats: C's `fmod` (`true`), or the divisor's sign.
    Mod(bool),
}

fn pow(a: f32, b: f32) -> f32 {
    if b == 2.0 {
        a * a
    } else if b == 1.0 {
        a
    } else {
        libm::powf(a, b)
    }
}

impl Binary {
    /// The binary operation of a two-input elementwise operator.
    pub(super) fn of(op: &E) -> Option<Binary> {
        Some(match op {
            E::Add {} | E::Sum {} => Binary::Add,
            E::Sub {} => Binary::Sub,
            E::Mul {} => Binary::Mul,
            E::Div {} => Binary::Div,
            E::Pow {} => Binary::Pow,
            E::Max {} => Binary::Max,
            E::Min {} => Binary::Min,
            E::PRelu {} => Binary::PRelu,
            E::Mod { fmod } => Binary::Mod(*fmod != 0),
            // not a float binary operation (`build` names every operator)
            _ => return None,
        })
    }

    /// `out[i] = f(a[i], b[i])`, where either side may be one value for
    /// all `i`; one monomorphised loop per operation and form.
    #[inline(always)]
    pub(super) fn apply(self, a: Arg, b: Arg, out: &mut [f32]) {
        #[inline(always)]
        fn each(a: Arg, b: Arg, out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
            match (a, b) {
                (Arg::Slice(a), Arg::Slice(b)) => {
                    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                        *o = f(x, y);
                    }
                }
                (Arg::Slice(a), Arg::Scalar(y)) => {
                    for (o, &x) in out.iter_mut().zip(a) {
                        *o = f(x, y);
                    }
                }
                (Arg::Scalar(x), Arg::Slice(b)) => {
                    for (o, &y) in out.iter_mut().zip(b) {
                        *o = f(x, y);
                    }
                }
                (Arg::Scalar(x), Arg::Scalar(y)) => out.fill(f(x, y)),
            }
        }
        match self {
            Binary::Add => each(a, b, out, |x, y| x + y),
            Binary::Sub => each(a, b, out, |x, y| x - y),
            Binary::Mul => each(a, b, out, |x, y| x * y),
            Binary::Div => each(a, b, out, |x, y| x / y),
            // A constant square (LayerNorm's variance) as one multiply,
            // the same value as `pow` (x·x is the correctly rounded x²).
            Binary::Pow if matches!(b, Arg::Scalar(y) if y == 2.0) => each(a, b, out, |x, _| x * x),
            other => each(a, b, out, |x, y| other.f(x, y)),
        }
    }

    #[inline(always)]
    fn f(self, a: f32, b: f32) -> f32 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Pow => pow(a, b),
            // Compares and selects (they vectorise on wasm too; `f32::max` does not).
            Binary::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else if a > b {
                    a
                } else {
                    b
                }
            }
            Binary::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else if a < b {
                    a
                } else {
                    b
                }
            }
            Binary::PRelu => {
                if a < 0.0 {
                    a * b
                } else {
                    a
                }
            }
            Binary::Mod(true) => libm::fmodf(a, b),
            Binary::Mod(false) => {
                let r = libm::fmodf(a, b);
                if b == 0.0 || r.is_nan() {
                    r
                } else if r == 0.0 {
                    0f32.copysign(b)
                } else if (b < 0.0) != (r < 0.0) {
                    r + b
                } else {
                    r
                }
            }
        }
    }
}

/// Walk a broadcast: call `f(offset_a, offset_b, out_index_start, len, step_a, step_b)`
/// for each innermost row of the output.
pub(super) fn for_rows(
    shape: &[usize],
    sa: &[usize],
    sb: &[usize],
    f: impl FnMut(usize, usize, usize, usize, usize, usize),
) {
    let rows: usize = shape[..shape.len().saturating_sub(1)].iter().product();
    for_rows_range(shape, sa, sb, 0, rows, f);
}

/// [`for_rows`] for output rows `r0..r1` only (a row is one innermost run).
pub(super) fn for_rows_range(
    shape: &[usize],
    sa: &[usize],
    sb: &[usize],
    r0: usize,
    r1: usize,
    mut f: impl FnMut(usize, usize, usize, usize, usize, usize),
) {
    let n: usize = shape.iter().product();
    if n == 0 || r0 >= r1 {
        return;
    }
    let rank = shape.len();
    if rank == 0 {
        f(0, 0, 0, 1, 0, 0);
        return;
    }
    let inner = shape[rank - 1];
    // Multi-index of row r0 over the outer axes.
    let mut idx = vec![0usize; rank - 1];
    let mut rem = r0;
    for d in (0..rank - 1).rev() {
        idx[d] = rem % shape[d];
        rem /= shape[d];
    }
    let mut o = r0 * inner;
    for _ in r0..r1 {
        let (mut oa, mut ob) = (0, 0);
        for (d, &i) in idx.iter().enumerate() {
            oa += i * sa[d];
            ob += i * sb[d];
        }
        f(oa, ob, o, inner, sa[rank - 1], sb[rank - 1]);
        o += inner;
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Rows per parallel chunk of a broadcast over rows of `inner` elements.
pub(super) fn rows_per_chunk(inner: usize) -> usize {
    (1usize << 14).div_ceil(inner.max(1)).max(1)
}

/// Apply `op` with broadcasting to f32 operands (dispatched once, so each
/// operation's loops are compiled, and vectorised, on their own).
fn binary_f32(ctx: &Ctx, op: Binary, a: &CpuTensor, b: &CpuTensor) -> Result<CpuTensor> {
    match op {
        Binary::Add => binary_with(ctx, |x, y| x + y, a, b),
        Binary::Sub => binary_with(ctx, |x, y| x - y, a, b),
        Binary::Mul => binary_with(ctx, |x, y| x * y, a, b),
        Binary::Div => binary_with(ctx, |x, y| x / y, a, b),
        // As in `Binary::apply`: a constant square is one multiply.
        Binary::Pow if b.as_f32().is_ok_and(|v| v == [2.0]) => binary_with(ctx, |x, _| x * x, a, b),
        other => binary_with(ctx, move |x, y| other.f(x, y), a, b),
    }
}

fn binary_with(
    ctx: &Ctx,
    f: impl Fn(f32, f32) -> f32 + Sync + Copy,
    a: &CpuTensor,
    b: &CpuTensor,
) -> Result<CpuTensor> {
    let (av, bv) = (a.as_f32()?, b.as_f32()?);
    let shape = broadcast(&a.shape, &b.shape)?;
    let n = ctx.check_numel(&shape)?;
    let mut out = ctx.buffer(n);
    if a.shape == b.shape {
        const CHUNK: usize = 1 << 14;
        ctx.pool.for_each_chunk(&mut out, CHUNK, n * 4, |i, o| {
            let s = i * CHUNK;
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for ((o, &x), &y) in o.iter_mut().zip(&av[s..]).zip(&bv[s..]) {
                        *o = f(x, y);
                    }
                },
            )
        });
    } else if bv.len() == 1 && av.len() == n {
        let y = bv[0];
        const CHUNK: usize = 1 << 14;
        ctx.pool.for_each_chunk(&mut out, CHUNK, n * 4, |i, o| {
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for (o, &x) in o.iter_mut().zip(&av[i * CHUNK..]) {
                        *o = f(x, y);
                    }
                },
            )
        });
    } else if av.len() == 1 && bv.len() == n {
        let x = av[0];
        const CHUNK: usize = 1 << 14;
        ctx.pool.for_each_chunk(&mut out, CHUNK, n * 4, |i, o| {
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for (o, &y) in o.iter_mut().zip(&bv[i * CHUNK..]) {
                        *o = f(x, y);
                    }
                },
            )
        });
    } else {
        let (sa, sb) = (broadcast_strides(&a.shape, &shape), broadcast_strides(&b.shape, &shape));
        let inner = *shape.last().unwrap_or(&1);
        let rpc = rows_per_chunk(inner);
        ctx.pool.for_each_chunk(&mut out, rpc * inner.max(1), n * 4, |ci, chunk| {
            let (r0, base) = (ci * rpc, ci * rpc * inner);
            for_rows_range(&shape, &sa, &sb, r0, r0 + chunk.len() / inner.max(1), |oa, ob, o, len, ta, tb| {
                let row = &mut chunk[o - base..o - base + len];
                match (ta, tb) {
                    (1, 1) => {
                        for ((r, &x), &y) in row.iter_mut().zip(&av[oa..oa + len]).zip(&bv[ob..ob + len]) {
                            *r = f(x, y);
                        }
                    }
                    (1, 0) => {
                        let y = bv[ob];
                        for (r, &x) in row.iter_mut().zip(&av[oa..oa + len]) {
                            *r = f(x, y);
                        }
                    }
                    (0, 1) => {
                        let x = av[oa];
                        for (r, &y) in row.iter_mut().zip(&bv[ob..ob + len]) {
                            *r = f(x, y);
                        }
                    }
                    _ => {
                        for (j, r) in row.iter_mut().enumerate() {
                            *r = f(av[oa + j * ta], bv[ob + j * tb]);
                        }
                    }
                }
            });
        });
    }
    Ok(CpuTensor::f32(shape, out))
}

/// Add/Sub/Mul/Div/Pow/PRelu, and variadic Max/Min/Sum/Mean (folded left to right).
struct BinaryKernel {
    op: Binary,
    /// Mean: divide the folded sum by the input count.
    mean: bool,
}

impl Kernel for BinaryKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let first = input(inputs, 0)?;
        let mut acc: Option<CpuTensor> = None;
        for i in 1..inputs.len() {
            let b = input(inputs, i)?;
            acc = Some(binary_f32(ctx, self.op, acc.as_ref().unwrap_or(first), b)?);
        }
        let mut out = match acc {
            Some(t) => t,
            None => CpuTensor::f32(first.shape.clone(), first.as_f32()?.to_vec()),
        };
        if self.mean {
            let k = inputs.len() as f32;
            let v: Vec<f32> = out.as_f32()?.iter().map(|x| x / k).collect();
            out = CpuTensor::f32(out.shape, v);
        }
        Ok(vec![out])
    }
}

/// The integer / bool / float64 form of a binary operator, when its operands
/// are not float32 (comparisons: any held type but float32).
fn int_build(op: &E, info: &NodeInfo) -> Option<Result<Box<dyn Kernel>>> {
    use DType::{Bool, F32, F64};
    let io = match op {
        E::Add {} => IntOp::Add,
        E::Sub {} => IntOp::Sub,
        E::Mul {} => IntOp::Mul,
        E::Div {} => IntOp::Div,
        E::Max {} if info.node.inputs.len() == 2 => IntOp::Max,
        E::Min {} if info.node.inputs.len() == 2 => IntOp::Min,
        E::Equal {} => IntOp::Cmp(Compare::Eq),
        E::Less {} => IntOp::Cmp(Compare::Lt),
        E::Greater {} => IntOp::Cmp(Compare::Gt),
        E::LessOrEqual {} => IntOp::Cmp(Compare::Le),
        E::GreaterOrEqual {} => IntOp::Cmp(Compare::Ge),
        E::And {} => IntOp::And,
        E::Or {} => IntOp::Or,
        E::Xor {} => IntOp::Xor,
        E::Mod { fmod } => IntOp::Mod { fmod: *fmod != 0 },
        E::BitShift { direction } => match direction {
            ShiftDirection::Left => IntOp::Shl,
            ShiftDirection::Right => IntOp::Shr,
        },
        E::BitwiseAnd {} => IntOp::BitAnd,
        E::BitwiseOr {} => IntOp::BitOr,
        E::BitwiseXor {} => IntOp::BitXor,
        // no integer / bool form (`build` names every operator)
        _ => return None,
    };
    let (a, b) = (info.in_dtype(0)?, info.in_dtype(1)?);
    let int = a.is_int() && a.bits() >= 8;
    let ok = a == b
        && match io {
            IntOp::Cmp(Compare::Eq) => a != F32 && is_held(a),
            IntOp::Cmp(_) => a != F32 && a != Bool && is_held(a),
            IntOp::And | IntOp::Or | IntOp::Xor => a == Bool,
            IntOp::Add | IntOp::Sub | IntOp::Mul | IntOp::Div | IntOp::Max | IntOp::Min => int || a == F64,
            IntOp::Mod { .. } => int || a == F64,
            IntOp::Shl | IntOp::Shr | IntOp::BitAnd | IntOp::BitOr | IntOp::BitXor => int,
        };
    ok.then(|| Ok(Box::new(IntKernel(io)) as Box<dyn Kernel>))
}

/// Build an elementwise kernel, or say why this backend does not run the
/// operator. The one match here names every operator.
#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn build(op: &E, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    use DType::F32;
    let no_kernel = || unsupported(format!("no {} kernel", op.name()));
    let unary = || -> Result<Box<dyn Kernel>> {
        let u = Unary::of(op).ok_or_else(no_kernel)?;
        info.require_dtypes(&[F32])?;
        Ok(Box::new(UnaryKernel(u)))
    };
    let binary = |op: Binary, mean: bool| -> Result<Box<dyn Kernel>> {
        info.require_dtypes(&[F32])?;
        Ok(Box::new(BinaryKernel { op, mean }))
    };
    let float_binary = || binary(Binary::of(op).ok_or_else(no_kernel)?, false);
    let compare = |c: Compare| -> Result<Box<dyn Kernel>> {
        if info.in_dtype(0) != Some(F32) || info.in_dtype(1) != Some(F32) {
            return Err(unsupported("comparisons run on float32 operands only"));
        }
        Ok(Box::new(CompareKernel(c)))
    };
    let float_class = |inf: Option<(bool, bool)>| -> Result<Box<dyn Kernel>> {
        let d = info.in_dtype(0).ok_or_else(no_kernel)?;
        if !d.is_float() || !is_held(d) {
            return Err(unsupported(format!("{} of {d}", op.name())));
        }
        Ok(Box::new(FloatClassKernel { inf }))
    };
    // Operators with an integer / bool form try it first.
    let int_or = |float: &dyn Fn() -> Result<Box<dyn Kernel>>| int_build(op, info).unwrap_or_else(float);
    match op {
        E::Abs {}
        | E::Neg {}
        | E::Relu {}
        | E::Sigmoid {}
        | E::Tanh {}
        | E::Exp {}
        | E::Log {}
        | E::Sqrt {}
        | E::Erf {}
        | E::Reciprocal {}
        | E::Floor {}
        | E::Ceil {}
        | E::Round {}
        | E::Sign {}
        | E::Sin {}
        | E::Cos {}
        | E::Softplus {}
        | E::Softsign {}
        | E::HardSwish {}
        | E::Mish {}
        | E::HardSigmoid { .. }
        | E::LeakyRelu { .. }
        | E::Elu { .. }
        | E::Celu { .. }
        | E::Selu { .. }
        | E::ThresholdedRelu { .. }
        | E::Gelu { .. }
        | E::Swish { .. }
        | E::Shrink { .. }
        | E::Clip { .. }
        | E::Acos {}
        | E::Acosh {}
        | E::Asin {}
        | E::Asinh {}
        | E::Atan {}
        | E::Atanh {}
        | E::Cosh {}
        | E::Sinh {}
        | E::Tan {} => unary(),
        E::Add {} | E::Sub {} | E::Mul {} | E::Div {} | E::Max {} | E::Min {} => int_or(&float_binary),
        E::Pow {} if info.in_dtype(0) != Some(F32) || info.in_dtype(1) != Some(F32) => {
            use DType::{I32, I64, U32, U64};
            let (x, y) = (info.in_dtype(0), info.in_dtype(1));
            let int = |d: Option<DType>| matches!(d, Some(I64 | I32 | U64 | U32));
            let ok = (x == Some(F32) && int(y)) || (matches!(x, Some(I64 | I32)) && (int(y) || y == Some(F32)));
            if !ok {
                return Err(unsupported(format!("Pow of {x:?} and {y:?}")));
            }
            Ok(Box::new(PowMixedKernel))
        }
        E::Sum {} | E::Pow {} | E::PRelu {} => float_binary(),
        E::Mean {} => binary(Binary::Add, true),
        E::Equal {} => int_or(&|| compare(Compare::Eq)),
        E::Less {} => int_or(&|| compare(Compare::Lt)),
        E::Greater {} => int_or(&|| compare(Compare::Gt)),
        E::LessOrEqual {} => int_or(&|| compare(Compare::Le)),
        E::GreaterOrEqual {} => int_or(&|| compare(Compare::Ge)),
        E::And {} | E::Or {} | E::Xor {} => int_or(&|| Err(no_kernel())),
        E::Where {} => {
            info.require_held()?;
            Ok(Box::new(WhereKernel))
        }
        E::Identity {} => {
            info.require_held()?;
            Ok(Box::new(IdentityKernel))
        }
        E::Cast { to, saturate, round_mode } => {
            info.require_held()?;
            Ok(Box::new(CastKernel { to: *to, saturate: *saturate != 0, round: *round_mode }))
        }
        E::CastLike { saturate, round_mode } => {
            info.require_held()?;
            let to = info.in_dtype(1).ok_or_else(|| unsupported("CastLike target has no known type"))?;
            Ok(Box::new(CastKernel { to, saturate: *saturate != 0, round: *round_mode }))
        }
        E::BitCast { to } => {
            info.require_held()?;
            Ok(Box::new(BitCastKernel(*to)))
        }
        E::Not {} => {
            info.require_dtypes(&[DType::Bool])?;
            Ok(Box::new(NotKernel))
        }
        E::Mod { .. } | E::BitShift { .. } | E::BitwiseAnd {} | E::BitwiseOr {} | E::BitwiseXor {} => {
            int_or(&float_binary)
        }
        E::BitwiseNot {} => {
            let d = info.in_dtype(0).ok_or_else(no_kernel)?;
            if !d.is_int() || d.bits() < 8 {
                return Err(unsupported(format!("BitwiseNot of {d}")));
            }
            Ok(Box::new(BitNotKernel))
        }
        E::IsNaN {} => float_class(None),
        E::IsInf { detect_negative, detect_positive } => {
            float_class(Some((*detect_negative != 0, *detect_positive != 0)))
        }
    }
}
