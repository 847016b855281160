//! Comparisons, integer and bool arithmetic, `Not`, `Where` and `Identity`
//! (built by `elementwise.rs`).

use std::sync::Arc;

use strata_ir::DType;

use super::elementwise::{for_rows, for_rows_range, rows_per_chunk};
use super::{Ctx, Kernel, broadcast, broadcast_strides, input};
use crate::error::{Result, bail};
use crate::tensor::{CpuTensor, Data, zip_data};

/// A float comparison giving bools.
#[derive(Debug, Clone, Copy)]
pub(super) enum Compare {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

pub(super) struct CompareKernel(pub(super) Compare);

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

/// Apply `f` elementwise with numpy broadcasting (any element types). Runs
/// of the innermost axis where each operand is contiguous or repeated get
/// a loop of their own (so they vectorise).
fn zip_broadcast<T: Copy + Sync, U: Copy + Default + Send>(
    ctx: &Ctx,
    a: (&[T], &[usize]),
    b: (&[T], &[usize]),
    f: impl Fn(T, T) -> U + Sync,
) -> Result<(Vec<usize>, Vec<U>)> {
    let shape = broadcast(a.1, b.1)?;
    let n = ctx.check_numel(&shape)?;
    let (sa, sb) = (broadcast_strides(a.1, &shape), broadcast_strides(b.1, &shape));
    let mut out = vec![U::default(); n];
    let inner = *shape.last().unwrap_or(&1);
    let rpc = rows_per_chunk(inner);
    ctx.pool.for_each_chunk(&mut out, rpc * inner.max(1), n * 4, |ci, chunk| {
        let (r0, base) = (ci * rpc, ci * rpc * inner);
        for_rows_range(&shape, &sa, &sb, r0, r0 + chunk.len() / inner.max(1), |oa, ob, o, len, ta, tb| {
            let dst = &mut chunk[o - base..o - base + len];
            match (ta, tb) {
                (1, 1) => dst.iter_mut().zip(&a.0[oa..oa + len]).zip(&b.0[ob..ob + len]).for_each(|((d, &x), &y)| {
                    *d = f(x, y);
                }),
                (0, 1) => {
                    let x = a.0[oa];
                    dst.iter_mut().zip(&b.0[ob..ob + len]).for_each(|(d, &y)| *d = f(x, y));
                }
                (1, 0) => {
                    let y = b.0[ob];
                    dst.iter_mut().zip(&a.0[oa..oa + len]).for_each(|(d, &x)| *d = f(x, y));
                }
                _ => {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = f(a.0[oa + j * ta], b.0[ob + j * tb]);
                    }
                }
            }
        });
    });
    Ok((shape, out))
}

/// [`zip_broadcast`] of a comparison, dispatched once (each comparison's
/// loops compiled on their own).
fn compare_broadcast<T: Copy + Sync + PartialOrd>(
    ctx: &Ctx,
    c: Compare,
    a: (&[T], &[usize]),
    b: (&[T], &[usize]),
) -> Result<(Vec<usize>, Vec<u8>)> {
    match c {
        Compare::Eq => zip_broadcast(ctx, a, b, |p, q| u8::from(p == q)),
        Compare::Lt => zip_broadcast(ctx, a, b, |p, q| u8::from(p < q)),
        Compare::Gt => zip_broadcast(ctx, a, b, |p, q| u8::from(p > q)),
        Compare::Le => zip_broadcast(ctx, a, b, |p, q| u8::from(p <= q)),
        Compare::Ge => zip_broadcast(ctx, a, b, |p, q| u8::from(p >= q)),
    }
}

/// Integer and bool arithmetic, comparisons and logic (shape computations
/// and integer models), on every integer type of at least 8 bits; the
/// comparisons on every held type; float64 arithmetic.
#[derive(Debug, Clone, Copy)]
pub(super) enum IntOp {
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
    /// `Mod`: the sign of the divisor (`fmod = 0`) or of the dividend.
    Mod {
        fmod: bool,
    },
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
}

impl IntOp {
    fn arithmetic(self) -> bool {
        !matches!(self, IntOp::Cmp(_) | IntOp::And | IntOp::Or | IntOp::Xor)
    }
}

pub(super) struct IntKernel(pub(super) IntOp);

/// Integer arithmetic (wrapping), dispatched once; division by zero is an
/// error, found before any work.
fn int_arith<T: Copy + Sync + Default + Send + PartialEq>(
    ctx: &Ctx,
    op: IntOp,
    a: (&[T], &[usize]),
    b: (&[T], &[usize]),
    wrap: fn(IntOp, T, T) -> T,
) -> Result<(Vec<usize>, Vec<T>)> {
    if matches!(op, IntOp::Div | IntOp::Mod { .. }) && b.0.contains(&T::default()) && !a.0.is_empty() {
        bail!("integer division by zero");
    }
    if !op.arithmetic() {
        bail!("{op:?} is not an arithmetic operation");
    }
    zip_broadcast(ctx, a, b, |p, q| wrap(op, p, q))
}

/// The wrapping integer function of an operation on one type; the result
/// for a zero divisor is never used (`int_arith` refuses it first).
macro_rules! wrapping {
    ($t:ty) => {
        |op: IntOp, x: $t, y: $t| -> $t {
            const BITS: i128 = <$t>::BITS as i128;
            let neg = |v: $t| (v as i128) < 0;
            match op {
                IntOp::Add => x.wrapping_add(y),
                IntOp::Sub => x.wrapping_sub(y),
                IntOp::Mul => x.wrapping_mul(y),
                IntOp::Div | IntOp::Mod { .. } if y == 0 => 0,
                IntOp::Div => x.wrapping_div(y),
                IntOp::Mod { fmod } => {
                    let r = x.wrapping_rem(y);
                    if !fmod && r != 0 && neg(r) != neg(y) { r.wrapping_add(y) } else { r }
                }
                IntOp::Max => x.max(y),
                IntOp::Min => x.min(y),
                // Shift amounts outside [0, bits) give 0 (-1 for a right
                // shift of a negative value); right shifts are arithmetic.
                IntOp::Shl | IntOp::Shr if !(0..BITS).contains(&(y as i128)) => {
                    if matches!(op, IntOp::Shr) && neg(x) {
                        (-1i128) as $t
                    } else {
                        0
                    }
                }
                IntOp::Shl => x << (y as u32),
                IntOp::Shr => x >> (y as u32),
                IntOp::BitAnd => x & y,
                IntOp::BitOr => x | y,
                IntOp::BitXor => x ^ y,
                IntOp::Cmp(_) | IntOp::And | IntOp::Or | IntOp::Xor => 0,
            }
        }
    };
}

/// Float64 arithmetic (as the reference computes it).
fn f64_fn(op: IntOp, x: f64, y: f64) -> f64 {
    match op {
        IntOp::Add => x + y,
        IntOp::Sub => x - y,
        IntOp::Mul => x * y,
        IntOp::Div => x / y,
        IntOp::Max | IntOp::Min if x.is_nan() || y.is_nan() => f64::NAN,
        IntOp::Max => x.max(y),
        IntOp::Min => x.min(y),
        IntOp::Mod { fmod: true } => libm::fmod(x, y),
        IntOp::Mod { fmod: false } => {
            let r = libm::fmod(x, y);
            if y == 0.0 || r.is_nan() {
                r
            } else if r == 0.0 {
                0f64.copysign(y)
            } else if (y < 0.0) != (r < 0.0) {
                r + y
            } else {
                r
            }
        }
        _ => f64::NAN,
    }
}

impl Kernel for IntKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        if a.dtype != b.dtype {
            bail!("{:?} on {} and {}", self.0, a.dtype, b.dtype);
        }
        let op = self.0;
        let bools =
            |(shape, v): (Vec<usize>, Vec<u8>)| CpuTensor { dtype: DType::Bool, shape, data: Data::Bool(Arc::new(v)) };
        let (sa, sb) = (&a.shape[..], &b.shape[..]);
        macro_rules! by_type {
            ($($var:ident : $t:ty),*) => {
                match (&a.data, &b.data, op) {
                    (Data::Bool(x), Data::Bool(y), IntOp::And) => {
                        bools(zip_broadcast(ctx, (x, sa), (y, sb), |p, q| u8::from(p != 0 && q != 0))?)
                    }
                    (Data::Bool(x), Data::Bool(y), IntOp::Or) => {
                        bools(zip_broadcast(ctx, (x, sa), (y, sb), |p, q| u8::from(p != 0 || q != 0))?)
                    }
                    (Data::Bool(x), Data::Bool(y), IntOp::Xor) => {
                        bools(zip_broadcast(ctx, (x, sa), (y, sb), |p, q| u8::from((p != 0) != (q != 0)))?)
                    }
                    (Data::Bool(x), Data::Bool(y), IntOp::Cmp(c)) => bools(compare_broadcast(ctx, c, (x, sa), (y, sb))?),
                    (Data::F32(x), Data::F32(y), IntOp::Cmp(c)) => bools(compare_broadcast(ctx, c, (x, sa), (y, sb))?),
                    (Data::F64(x), Data::F64(y), IntOp::Cmp(c)) => bools(compare_broadcast(ctx, c, (x, sa), (y, sb))?),
                    (Data::F64(x), Data::F64(y), _) => {
                        let (shape, v) = zip_broadcast(ctx, (x, sa), (y, sb), |p, q| f64_fn(op, p, q))?;
                        CpuTensor { dtype: a.dtype, shape, data: Data::F64(Arc::new(v)) }
                    }
                    (Data::Half(_) | Data::Small(_), _, IntOp::Cmp(c)) => {
                        let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
                        bools(compare_broadcast(ctx, c, (&x, sa), (&y, sb))?)
                    }
                    $(
                        (Data::$var(x), Data::$var(y), IntOp::Cmp(c)) => {
                            bools(compare_broadcast(ctx, c, (x, sa), (y, sb))?)
                        }
                        (Data::$var(x), Data::$var(y), _) => {
                            let (shape, v) = int_arith(ctx, op, (x, sa), (y, sb), wrapping!($t))?;
                            CpuTensor { dtype: a.dtype, shape, data: Data::$var(Arc::new(v)) }
                        }
                    )*
                    _ => bail!("{op:?} on {} and {}", a.dtype, b.dtype),
                }
            };
        }
        let t = by_type!(I64: i64, I32: i32, U64: u64, U32: u32, I16: i16, U16: u16, I8: i8, U8: u8);
        Ok(vec![t])
    }
}

/// `BitwiseNot` on integers.
pub(super) struct BitNotKernel;

impl Kernel for BitNotKernel {
    fn run(&self, _ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if !x.dtype.is_int() || x.dtype.bits() < 8 {
            bail!("BitwiseNot takes an integer tensor, got {}", x.dtype);
        }
        fn not<T: Copy + std::ops::Not<Output = T>>(v: &[T]) -> Arc<Vec<T>> {
            Arc::new(v.iter().map(|&e| !e).collect())
        }
        let data = match &x.data {
            Data::I64(v) => Data::I64(not(v)),
            Data::I32(v) => Data::I32(not(v)),
            Data::U64(v) => Data::U64(not(v)),
            Data::U32(v) => Data::U32(not(v)),
            Data::I16(v) => Data::I16(not(v)),
            Data::U16(v) => Data::U16(not(v)),
            Data::I8(v) => Data::I8(not(v)),
            Data::U8(v) => Data::U8(not(v)),
            _ => bail!("BitwiseNot takes an integer tensor, got {}", x.dtype),
        };
        Ok(vec![CpuTensor { dtype: x.dtype, shape: x.shape.clone(), data }])
    }
}

/// `IsNaN` and `IsInf` (which signs) on float tensors.
pub(super) struct FloatClassKernel {
    /// `None` for IsNaN; `(negative, positive)` infinities for IsInf.
    pub inf: Option<(bool, bool)>,
}

impl Kernel for FloatClassKernel {
    fn run(&self, _ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if !x.dtype.is_float() {
            bail!("{} is not a float type", x.dtype);
        }
        let v = x.to_f64_vec();
        let test = |f: f64| match self.inf {
            None => f.is_nan(),
            Some((neg, pos)) => f.is_infinite() && ((f < 0.0 && neg) || (f > 0.0 && pos)),
        };
        let out = v.iter().map(|&f| u8::from(test(f))).collect();
        Ok(vec![CpuTensor { dtype: DType::Bool, shape: x.shape.clone(), data: Data::Bool(Arc::new(out)) }])
    }
}

/// `Not` on bools.
pub(super) struct NotKernel;

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

/// `Where(cond, x, y)` for any held element type.
pub(super) struct WhereKernel;

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
        if x.dtype != y.dtype {
            bail!("Where branches have different types: {} and {}", x.dtype, y.dtype);
        }
        let data =
            zip_data!(&x.data, &y.data, |a, b| pick(n, cv, a, b, &offsets), bail!("Where branches differ in storage"));
        Ok(vec![CpuTensor { dtype: x.dtype, shape, data }])
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

/// `Pow` with an integer operand: a float32 base with an integer exponent
/// (float32 `powf`), an integer base with a float exponent (f64 `pow`,
/// truncated and wrapped) or an integer one (repeated wrapping products,
/// 0 for negative exponents), as the reference computes it.
pub(super) struct PowMixedKernel;

impl Kernel for PowMixedKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let ints = |t: &CpuTensor| -> Result<Vec<i64>> {
            Ok(match &t.data {
                Data::I64(v) => v.to_vec(),
                Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
                Data::U64(v) => v.iter().map(|&x| x as i64).collect(),
                Data::U32(v) => v.iter().map(|&x| x as i64).collect(),
                _ => bail!("Pow operand of type {}", t.dtype),
            })
        };
        let (sa, sb) = (&a.shape[..], &b.shape[..]);
        let (shape, wide): (Vec<usize>, Vec<i64>) = match (&a.data, &b.data) {
            (Data::F32(x), Data::F32(_)) => {
                bail!("Pow of two float32 tensors has its own kernel ({} elements)", x.len())
            }
            (Data::F32(x), _) => {
                let y: Vec<f32> = ints(b)?.iter().map(|&e| e as f32).collect();
                let (shape, v) = zip_broadcast(ctx, (x, sa), (&y, sb), libm::powf)?;
                return Ok(vec![CpuTensor { dtype: a.dtype, shape, data: Data::F32(Arc::new(v)) }]);
            }
            (_, Data::F32(y)) => {
                let x: Vec<f64> = ints(a)?.iter().map(|&v| v as f64).collect();
                let y: Vec<f64> = y.iter().map(|&e| e as f64).collect();
                let (shape, v) = zip_broadcast(ctx, (&x, sa), (&y, sb), |p, q| libm::pow(p, q) as i64 as f64)?;
                (shape, v.into_iter().map(|v| v as i64).collect())
            }
            _ => zip_broadcast(ctx, (&ints(a)?, sa), (&ints(b)?, sb), |p, q| {
                if q < 0 { 0 } else { p.wrapping_pow(q.min(128) as u32) }
            })?,
        };
        let data = match a.dtype {
            DType::I64 => Data::I64(Arc::new(wide)),
            DType::I32 => Data::I32(Arc::new(wide.into_iter().map(|v| v as i32).collect())),
            d => bail!("Pow base of type {d}"),
        };
        Ok(vec![CpuTensor { dtype: a.dtype, shape, data }])
    }
}
