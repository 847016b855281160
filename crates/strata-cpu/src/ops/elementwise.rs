//! Elementwise kernels: float activations and arithmetic with numpy
//! broadcasting, comparisons, `Where`, `Cast`. Transcendental functions come
//! from `libm`, so results are the same on every target.

use std::sync::Arc;

use strata_ir::DType;
use strata_ir::ops::ElementwiseOp as E;

use super::{Ctx, Kernel, NodeInfo, broadcast, broadcast_strides, input, unsupported};
use crate::error::{CpuError, Result, bail};
use crate::tensor::{CpuTensor, Data};

/// A float activation with its parameters.
#[derive(Debug, Clone, Copy)]
enum Unary {
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
    /// Clip with bounds from attributes (inputs are read at run time).
    Clip(f32, f32),
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
    /// Apply to every element (one monomorphised loop per function).
    fn apply(self, x: &[f32], out: &mut [f32]) {
        fn each(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = f(v);
            }
        }
        use Unary as U;
        match self {
            U::Abs => each(x, out, f32::abs),
            U::Neg => each(x, out, |v| -v),
            U::Relu => each(x, out, |v| if v < 0.0 { 0.0 } else { v }),
            U::Sigmoid => each(x, out, sigmoid),
            U::Tanh => each(x, out, crate::math::tanh),
            U::Exp => each(x, out, crate::math::exp),
            U::Log => each(x, out, libm::logf),
            U::Sqrt => each(x, out, f32::sqrt),
            U::Erf => each(x, out, libm::erff),
            U::Reciprocal => each(x, out, |v| 1.0 / v),
            U::Floor => each(x, out, f32::floor),
            U::Ceil => each(x, out, f32::ceil),
            U::Round => each(x, out, f32::round_ties_even),
            U::Sign => each(x, out, |v| {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    v
                }
            }),
            U::Sin => each(x, out, libm::sinf),
            U::Cos => each(x, out, libm::cosf),
            U::Softplus => each(x, out, softplus),
            U::Softsign => each(x, out, |v| v / (1.0 + v.abs())),
            U::HardSwish => each(x, out, |v| v * clip(v / 6.0 + 0.5, 0.0, 1.0)),
            U::Mish => each(x, out, |v| v * crate::math::tanh(softplus(v))),
            U::HardSigmoid(a, b) => each(x, out, |v| clip(a * v + b, 0.0, 1.0)),
            U::LeakyRelu(a) => each(x, out, |v| if v < 0.0 { a * v } else { v }),
            U::Elu(a) => each(x, out, |v| if v < 0.0 { a * (libm::expf(v) - 1.0) } else { v }),
            U::Celu(a) => each(x, out, |v| if v < 0.0 { a * (libm::expf(v / a) - 1.0) } else { v }),
            U::Selu(a, g) => each(x, out, |v| if v <= 0.0 { g * (a * libm::expf(v) - a) } else { g * v }),
            U::ThresholdedRelu(a) => each(x, out, |v| if v > a { v } else { 0.0 }),
            U::Gelu => each(x, out, |v| 0.5 * v * (1.0 + libm::erff(v * std::f32::consts::FRAC_1_SQRT_2))),
            U::GeluTanh => each(x, out, |v| {
                let c = (2.0f32 / std::f32::consts::PI).sqrt();
                0.5 * v * (1.0 + crate::math::tanh(c * (v + 0.044_715 * v * v * v)))
            }),
            U::Swish(a) => each(x, out, |v| v * sigmoid(a * v)),
            U::Clip(lo, hi) => each(x, out, |v| clip(v, lo, hi)),
        }
    }
}

struct UnaryKernel(Unary);

/// Read an optional scalar bound input of Clip.
fn bound(inputs: &[Option<&CpuTensor>], i: usize, default: f32) -> Result<f32> {
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
        let mut out = vec![0.0f32; xv.len()];
        const CHUNK: usize = 1 << 14;
        ctx.pool.for_each_chunk(&mut out, CHUNK, xv.len() * 8, |i, o| {
            op.apply(&xv[i * CHUNK..i * CHUNK + o.len()], o);
        });
        Ok(vec![CpuTensor::f32(x.shape.clone(), out)])
    }
}

/// A binary float operation.
#[derive(Debug, Clone, Copy)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    PRelu,
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
    #[inline(always)]
    fn f(self, a: f32, b: f32) -> f32 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Pow => pow(a, b),
            Binary::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            Binary::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
            Binary::PRelu => {
                if a < 0.0 {
                    a * b
                } else {
                    a
                }
            }
        }
    }
}

/// Walk a broadcast: call `f(offset_a, offset_b, out_index_start, len, step_a, step_b)`
/// for each innermost row of the output.
fn for_rows(shape: &[usize], sa: &[usize], sb: &[usize], f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
    let rows: usize = shape[..shape.len().saturating_sub(1)].iter().product();
    for_rows_range(shape, sa, sb, 0, rows, f);
}

/// [`for_rows`] for output rows `r0..r1` only (a row is one innermost run).
fn for_rows_range(
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
fn rows_per_chunk(inner: usize) -> usize {
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
    let mut out = vec![0.0f32; n];
    if a.shape == b.shape {
        const CHUNK: usize = 1 << 14;
        ctx.pool.for_each_chunk(&mut out, CHUNK, n * 4, |i, o| {
            let s = i * CHUNK;
            for ((o, &x), &y) in o.iter_mut().zip(&av[s..]).zip(&bv[s..]) {
                *o = f(x, y);
            }
        });
    } else if bv.len() == 1 && av.len() == n {
        let y = bv[0];
        const CHUNK: usize = 1 << 14;
        ctx.pool.for_each_chunk(&mut out, CHUNK, n * 4, |i, o| {
            for (o, &x) in o.iter_mut().zip(&av[i * CHUNK..]) {
                *o = f(x, y);
            }
        });
    } else if av.len() == 1 && bv.len() == n {
        let x = av[0];
        const CHUNK: usize = 1 << 14;
        ctx.pool.for_each_chunk(&mut out, CHUNK, n * 4, |i, o| {
            for (o, &y) in o.iter_mut().zip(&bv[i * CHUNK..]) {
                *o = f(x, y);
            }
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

/// A float comparison giving bools.
#[derive(Debug, Clone, Copy)]
enum Compare {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

struct CompareKernel(Compare);

impl Kernel for CompareKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let (av, bv) = (a.as_f32()?, b.as_f32()?);
        let shape = broadcast(&a.shape, &b.shape)?;
        let n = ctx.check_numel(&shape)?;
        let (sa, sb) = (broadcast_strides(&a.shape, &shape), broadcast_strides(&b.shape, &shape));
        let mut out = vec![0u8; n];
        let c = self.0;
        for_rows(&shape, &sa, &sb, |oa, ob, o, len, ta, tb| {
            for j in 0..len {
                let (x, y) = (av[oa + j * ta], bv[ob + j * tb]);
                out[o + j] = u8::from(match c {
                    Compare::Eq => x == y,
                    Compare::Lt => x < y,
                    Compare::Gt => x > y,
                    Compare::Le => x <= y,
                    Compare::Ge => x >= y,
                });
            }
        });
        Ok(vec![CpuTensor { dtype: DType::Bool, shape, data: Data::Bool(Arc::new(out)) }])
    }
}

/// Apply `f` elementwise with numpy broadcasting (any element types).
fn zip_broadcast<T: Copy + Sync, U: Copy + Default + Send>(
    ctx: &Ctx,
    a: (&[T], &[usize]),
    b: (&[T], &[usize]),
    f: impl Fn(T, T) -> Result<U> + Sync,
) -> Result<(Vec<usize>, Vec<U>)> {
    let shape = broadcast(a.1, b.1)?;
    let n = ctx.check_numel(&shape)?;
    let (sa, sb) = (broadcast_strides(a.1, &shape), broadcast_strides(b.1, &shape));
    let mut out = vec![U::default(); n];
    let failed = std::sync::Mutex::new(None);
    let inner = *shape.last().unwrap_or(&1);
    let rpc = rows_per_chunk(inner);
    ctx.pool.for_each_chunk(&mut out, rpc * inner.max(1), n * 4, |ci, chunk| {
        let (r0, base) = (ci * rpc, ci * rpc * inner);
        for_rows_range(&shape, &sa, &sb, r0, r0 + chunk.len() / inner.max(1), |oa, ob, o, len, ta, tb| {
            for (j, slot) in chunk[o - base..o - base + len].iter_mut().enumerate() {
                match f(a.0[oa + j * ta], b.0[ob + j * tb]) {
                    Ok(v) => *slot = v,
                    Err(e) => {
                        if let Ok(mut g) = failed.lock() {
                            g.get_or_insert(e);
                        }
                    }
                }
            }
        });
    });
    match failed.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok((shape, out)),
    }
}

/// Integer and bool arithmetic, comparisons and logic (shape computations).
#[derive(Debug, Clone, Copy)]
enum IntOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Cmp(Compare),
    And,
    Or,
    Xor,
}

struct IntKernel(IntOp);

fn int_arith(op: IntOp, x: i64, y: i64) -> Result<i64> {
    Ok(match op {
        IntOp::Add => x.wrapping_add(y),
        IntOp::Sub => x.wrapping_sub(y),
        IntOp::Mul => x.wrapping_mul(y),
        IntOp::Div if y == 0 => bail!("integer division by zero"),
        IntOp::Div => x.wrapping_div(y),
        IntOp::Max => x.max(y),
        IntOp::Min => x.min(y),
        _ => bail!("not an arithmetic operation"),
    })
}

fn cmp<T: PartialOrd>(c: Compare, x: T, y: T) -> u8 {
    u8::from(match c {
        Compare::Eq => x == y,
        Compare::Lt => x < y,
        Compare::Gt => x > y,
        Compare::Le => x <= y,
        Compare::Ge => x >= y,
    })
}

impl Kernel for IntKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let op = self.0;
        let bools =
            |(shape, v): (Vec<usize>, Vec<u8>)| CpuTensor { dtype: DType::Bool, shape, data: Data::Bool(Arc::new(v)) };
        let t = match (&a.data, &b.data, op) {
            (Data::I64(x), Data::I64(y), IntOp::Cmp(c)) => {
                bools(zip_broadcast(ctx, (x, &a.shape), (y, &b.shape), |p, q| Ok(cmp(c, p, q)))?)
            }
            (Data::I32(x), Data::I32(y), IntOp::Cmp(c)) => {
                bools(zip_broadcast(ctx, (x, &a.shape), (y, &b.shape), |p, q| Ok(cmp(c, p, q)))?)
            }
            (Data::Bool(x), Data::Bool(y), IntOp::Cmp(c)) => {
                bools(zip_broadcast(ctx, (x, &a.shape), (y, &b.shape), |p, q| Ok(cmp(c, p, q)))?)
            }
            (Data::Bool(x), Data::Bool(y), IntOp::And | IntOp::Or | IntOp::Xor) => {
                bools(zip_broadcast(ctx, (x, &a.shape), (y, &b.shape), |p, q| {
                    Ok(u8::from(match op {
                        IntOp::And => p != 0 && q != 0,
                        IntOp::Or => p != 0 || q != 0,
                        _ => (p != 0) != (q != 0),
                    }))
                })?)
            }
            (Data::I64(x), Data::I64(y), _) => {
                let (shape, v) = zip_broadcast(ctx, (x, &a.shape), (y, &b.shape), |p, q| int_arith(op, p, q))?;
                CpuTensor::i64(shape, v)
            }
            (Data::I32(x), Data::I32(y), _) => {
                let (shape, v) = zip_broadcast(ctx, (x, &a.shape), (y, &b.shape), |p, q| {
                    Ok(int_arith(op, p.into(), q.into())? as i32)
                })?;
                CpuTensor { dtype: DType::I32, shape, data: Data::I32(Arc::new(v)) }
            }
            _ => bail!("{op:?} on {} and {}", a.dtype, b.dtype),
        };
        Ok(vec![t])
    }
}

/// `Not` on bools.
struct NotKernel;

impl Kernel for NotKernel {
    fn run(&self, _ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let Data::Bool(v) = &x.data else { bail!("Not takes bool, got {}", x.dtype) };
        Ok(vec![CpuTensor {
            dtype: DType::Bool,
            shape: x.shape.clone(),
            data: Data::Bool(Arc::new(v.iter().map(|&b| 1 - b.min(1)).collect())),
        }])
    }
}

/// `Where(cond, x, y)` for any native element type.
struct WhereKernel;

impl Kernel for WhereKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (c, x, y) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let Data::Bool(cv) = &c.data else { bail!("Where condition must be bool") };
        let shape = broadcast(&broadcast(&c.shape, &x.shape)?, &y.shape)?;
        let n = ctx.check_numel(&shape)?;
        let (sc, sx, sy) = (
            broadcast_strides(&c.shape, &shape),
            broadcast_strides(&x.shape, &shape),
            broadcast_strides(&y.shape, &shape),
        );
        let st = super::strides(&shape);
        let offs = |i: usize, s: &[usize]| {
            st.iter().zip(&shape).zip(s).map(|((&t, &d), &k)| (i / t % d.max(1)) * k).sum::<usize>()
        };
        fn pick<T: Copy>(n: usize, cv: &[u8], xv: &[T], yv: &[T], offs: &dyn Fn(usize, u8) -> [usize; 3]) -> Vec<T> {
            (0..n)
                .map(|i| {
                    let [oc, ox, oy] = offs(i, 0);
                    if cv[oc] != 0 { xv[ox] } else { yv[oy] }
                })
                .collect()
        }
        let offsets = |i: usize, _: u8| [offs(i, &sc), offs(i, &sx), offs(i, &sy)];
        let data = match (&x.data, &y.data) {
            (Data::F32(a), Data::F32(b)) => Data::F32(Arc::new(pick(n, cv, a, b, &offsets))),
            (Data::I64(a), Data::I64(b)) => Data::I64(Arc::new(pick(n, cv, a, b, &offsets))),
            (Data::I32(a), Data::I32(b)) => Data::I32(Arc::new(pick(n, cv, a, b, &offsets))),
            (Data::Bool(a), Data::Bool(b)) => Data::Bool(Arc::new(pick(n, cv, a, b, &offsets))),
            _ => bail!("Where branches have different types"),
        };
        Ok(vec![CpuTensor { dtype: x.dtype, shape, data }])
    }
}

/// `f` over every element, in parallel chunks for large inputs.
fn par_map<T: Copy + Sync, U: Copy + Default + Send>(ctx: &Ctx, v: &[T], f: impl Fn(T) -> U + Sync) -> Vec<U> {
    const CHUNK: usize = 1 << 14;
    let mut out = vec![U::default(); v.len()];
    ctx.pool.for_each_chunk(&mut out, CHUNK, v.len() * 2, |i, o| {
        for (o, &x) in o.iter_mut().zip(&v[i * CHUNK..]) {
            *o = f(x);
        }
    });
    out
}

/// `Cast` between float32, int64, int32 and bool.
struct CastKernel(DType);

impl Kernel for CastKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let to = self.0;
        if x.dtype == to {
            return Ok(vec![x.clone()]);
        }
        let data = match (&x.data, to) {
            (Data::F32(v), DType::I64) => Data::I64(Arc::new(par_map(ctx, v, |f| f as i64))),
            (Data::F32(v), DType::I32) => Data::I32(Arc::new(par_map(ctx, v, |f| f as i32))),
            (Data::F32(v), DType::Bool) => Data::Bool(Arc::new(par_map(ctx, v, |f| u8::from(f != 0.0)))),
            (Data::I64(v), DType::F32) => Data::F32(Arc::new(par_map(ctx, v, |i| i as f32))),
            (Data::I64(v), DType::I32) => Data::I32(Arc::new(par_map(ctx, v, |i| i as i32))),
            (Data::I64(v), DType::Bool) => Data::Bool(Arc::new(par_map(ctx, v, |i| u8::from(i != 0)))),
            (Data::I32(v), DType::F32) => Data::F32(Arc::new(par_map(ctx, v, |i| i as f32))),
            (Data::I32(v), DType::I64) => Data::I64(Arc::new(par_map(ctx, v, i64::from))),
            (Data::I32(v), DType::Bool) => Data::Bool(Arc::new(par_map(ctx, v, |i| u8::from(i != 0)))),
            (Data::Bool(v), DType::F32) => Data::F32(Arc::new(par_map(ctx, v, f32::from))),
            (Data::Bool(v), DType::I64) => Data::I64(Arc::new(par_map(ctx, v, i64::from))),
            (Data::Bool(v), DType::I32) => Data::I32(Arc::new(par_map(ctx, v, i32::from))),
            _ => return Err(CpuError::Kernel(format!("cannot cast {} to {to}", x.dtype))),
        };
        Ok(vec![CpuTensor { dtype: to, shape: x.shape.clone(), data }])
    }
}

/// Identity (and inference-time Dropout): the same value, no copy.
pub(crate) struct IdentityKernel;

impl Kernel for IdentityKernel {
    fn run(&self, _ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        Ok(vec![x.clone()])
    }
}

/// The integer / bool kernel of a binary operator, when its operands are
/// integers (or bools for the logical operators).
fn int_kernel(io: IntOp, info: &NodeInfo) -> Option<Box<dyn Kernel>> {
    use DType::{Bool, I32, I64};
    let (a, b) = (info.in_dtype(0)?, info.in_dtype(1)?);
    let ok = a == b
        && match io {
            IntOp::Cmp(Compare::Eq) => matches!(a, I64 | I32 | Bool),
            IntOp::Cmp(_) => matches!(a, I64 | I32),
            IntOp::And | IntOp::Or | IntOp::Xor => a == Bool,
            _ => matches!(a, I64 | I32),
        };
    ok.then(|| Box::new(IntKernel(io)) as Box<dyn Kernel>)
}

/// Compile an elementwise node: every operator of the family is named
/// here, the last group being those this backend does not run.
#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn build(op: &E, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    use DType::F32;
    use Unary as U;
    let none = || -> Result<Box<dyn Kernel>> { Err(unsupported(format!("no {} kernel", op.name()))) };
    let unary = |u: Unary| -> Result<Box<dyn Kernel>> {
        info.require_dtypes(&[F32])?;
        Ok(Box::new(UnaryKernel(u)))
    };
    let binary = |op: Binary, mean: bool| -> Result<Box<dyn Kernel>> {
        info.require_dtypes(&[F32])?;
        Ok(Box::new(BinaryKernel { op, mean }))
    };
    let compare = |c: Compare| -> Result<Box<dyn Kernel>> {
        if info.in_dtype(0) != Some(F32) || info.in_dtype(1) != Some(F32) {
            return Err(unsupported("comparisons run on float32 operands only"));
        }
        Ok(Box::new(CompareKernel(c)))
    };
    // The integer / bool kernel when the operands are such, else `float`.
    let int_or = |io: IntOp, float: &dyn Fn() -> Result<Box<dyn Kernel>>| match int_kernel(io, info) {
        Some(k) => Ok(k),
        None => float(),
    };
    let two_inputs = info.node.inputs.len() == 2;
    match op {
        E::Abs {} => unary(U::Abs),
        E::Neg {} => unary(U::Neg),
        E::Relu {} => unary(U::Relu),
        E::Sigmoid {} => unary(U::Sigmoid),
        E::Tanh {} => unary(U::Tanh),
        E::Exp {} => unary(U::Exp),
        E::Log {} => unary(U::Log),
        E::Sqrt {} => unary(U::Sqrt),
        E::Erf {} => unary(U::Erf),
        E::Reciprocal {} => unary(U::Reciprocal),
        E::Floor {} => unary(U::Floor),
        E::Ceil {} => unary(U::Ceil),
        E::Round {} => unary(U::Round),
        E::Sign {} => unary(U::Sign),
        E::Sin {} => unary(U::Sin),
        E::Cos {} => unary(U::Cos),
        E::Softplus {} => unary(U::Softplus),
        E::Softsign {} => unary(U::Softsign),
        E::HardSwish {} => unary(U::HardSwish),
        E::Mish {} => unary(U::Mish),
        E::HardSigmoid { alpha, beta } => unary(U::HardSigmoid(*alpha, *beta)),
        E::LeakyRelu { alpha } => unary(U::LeakyRelu(*alpha)),
        E::Elu { alpha } => unary(U::Elu(*alpha)),
        E::Celu { alpha } => unary(U::Celu(*alpha)),
        E::Selu { alpha, gamma } => unary(U::Selu(*alpha, *gamma)),
        E::ThresholdedRelu { alpha } => unary(U::ThresholdedRelu(*alpha)),
        E::Gelu { approximate } => match approximate.as_str() {
            "none" => unary(U::Gelu),
            "tanh" => unary(U::GeluTanh),
            _ => none(),
        },
        E::Swish { alpha } => unary(U::Swish(*alpha)),
        E::Clip { min, max } => unary(U::Clip(min.unwrap_or(f32::NEG_INFINITY), max.unwrap_or(f32::INFINITY))),
        E::Add {} => int_or(IntOp::Add, &|| binary(Binary::Add, false)),
        E::Sub {} => int_or(IntOp::Sub, &|| binary(Binary::Sub, false)),
        E::Mul {} => int_or(IntOp::Mul, &|| binary(Binary::Mul, false)),
        E::Div {} => int_or(IntOp::Div, &|| binary(Binary::Div, false)),
        E::Max {} if two_inputs => int_or(IntOp::Max, &|| binary(Binary::Max, false)),
        E::Min {} if two_inputs => int_or(IntOp::Min, &|| binary(Binary::Min, false)),
        E::Max {} => binary(Binary::Max, false),
        E::Min {} => binary(Binary::Min, false),
        E::Sum {} => binary(Binary::Add, false),
        E::Pow {} => binary(Binary::Pow, false),
        E::Mean {} => binary(Binary::Add, true),
        E::PRelu {} => binary(Binary::PRelu, false),
        E::Equal {} => int_or(IntOp::Cmp(Compare::Eq), &|| compare(Compare::Eq)),
        E::Less {} => int_or(IntOp::Cmp(Compare::Lt), &|| compare(Compare::Lt)),
        E::Greater {} => int_or(IntOp::Cmp(Compare::Gt), &|| compare(Compare::Gt)),
        E::LessOrEqual {} => int_or(IntOp::Cmp(Compare::Le), &|| compare(Compare::Le)),
        E::GreaterOrEqual {} => int_or(IntOp::Cmp(Compare::Ge), &|| compare(Compare::Ge)),
        E::And {} => int_or(IntOp::And, &none),
        E::Or {} => int_or(IntOp::Or, &none),
        E::Xor {} => int_or(IntOp::Xor, &none),
        E::Where {} => {
            info.require_native()?;
            Ok(Box::new(WhereKernel))
        }
        E::Identity {} => {
            info.require_native()?;
            Ok(Box::new(IdentityKernel))
        }
        E::Cast { to, .. } => {
            info.require_native()?;
            Ok(Box::new(CastKernel(*to)))
        }
        E::CastLike { .. } => {
            info.require_native()?;
            let to = info.in_dtype(1).ok_or_else(|| unsupported("CastLike target has no known type"))?;
            Ok(Box::new(CastKernel(to)))
        }
        E::Not {} => {
            info.require_dtypes(&[DType::Bool])?;
            Ok(Box::new(NotKernel))
        }
        // not supported here
        E::Acos { .. }
        | E::Acosh { .. }
        | E::Asin { .. }
        | E::Asinh { .. }
        | E::Atan { .. }
        | E::Atanh { .. }
        | E::Cosh { .. }
        | E::Sinh { .. }
        | E::Tan { .. }
        | E::BitwiseNot { .. }
        | E::IsNaN { .. }
        | E::IsInf { .. }
        | E::Shrink { .. }
        | E::Mod { .. }
        | E::BitShift { .. }
        | E::BitwiseAnd { .. }
        | E::BitwiseOr { .. }
        | E::BitwiseXor { .. }
        | E::BitCast { .. } => none(),
    }
}
