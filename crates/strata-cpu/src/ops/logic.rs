//! Comparisons, integer and bool arithmetic, `Not`, `Where`, `Cast` and
//! `Identity` (built by `elementwise.rs`).

use std::sync::Arc;

use strata_ir::DType;

use super::elementwise::{for_rows, for_rows_range, rows_per_chunk};
use super::{Ctx, Kernel, broadcast, broadcast_strides, input};
use crate::error::{CpuError, Result, bail};
use crate::tensor::{CpuTensor, Data};

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

/// Integer and bool arithmetic, comparisons and logic (shape computations).
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
    if matches!(op, IntOp::Div) && b.0.contains(&T::default()) && !a.0.is_empty() {
        bail!("integer division by zero");
    }
    if !matches!(op, IntOp::Add | IntOp::Sub | IntOp::Mul | IntOp::Div | IntOp::Max | IntOp::Min) {
        bail!("{op:?} is not an arithmetic operation");
    }
    zip_broadcast(ctx, a, b, |p, q| wrap(op, p, q))
}

macro_rules! wrapping {
    ($t:ty) => {
        |op: IntOp, x: $t, y: $t| -> $t {
            match op {
                IntOp::Add => x.wrapping_add(y),
                IntOp::Sub => x.wrapping_sub(y),
                IntOp::Mul => x.wrapping_mul(y),
                IntOp::Div if y == 0 => 0,
                IntOp::Div => x.wrapping_div(y),
                IntOp::Max => x.max(y),
                IntOp::Min => x.min(y),
                _ => 0,
            }
        }
    };
}

impl Kernel for IntKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let op = self.0;
        let bools =
            |(shape, v): (Vec<usize>, Vec<u8>)| CpuTensor { dtype: DType::Bool, shape, data: Data::Bool(Arc::new(v)) };
        let t = match (&a.data, &b.data, op) {
            (Data::I64(x), Data::I64(y), IntOp::Cmp(c)) => {
                bools(compare_broadcast(ctx, c, (x, &a.shape), (y, &b.shape))?)
            }
            (Data::I32(x), Data::I32(y), IntOp::Cmp(c)) => {
                bools(compare_broadcast(ctx, c, (x, &a.shape), (y, &b.shape))?)
            }
            (Data::Bool(x), Data::Bool(y), IntOp::Cmp(c)) => {
                bools(compare_broadcast(ctx, c, (x, &a.shape), (y, &b.shape))?)
            }
            (Data::Bool(x), Data::Bool(y), IntOp::And) => {
                bools(zip_broadcast(ctx, (x, &a.shape), (y, &b.shape), |p, q| u8::from(p != 0 && q != 0))?)
            }
            (Data::Bool(x), Data::Bool(y), IntOp::Or) => {
                bools(zip_broadcast(ctx, (x, &a.shape), (y, &b.shape), |p, q| u8::from(p != 0 || q != 0))?)
            }
            (Data::Bool(x), Data::Bool(y), IntOp::Xor) => {
                bools(zip_broadcast(ctx, (x, &a.shape), (y, &b.shape), |p, q| u8::from((p != 0) != (q != 0)))?)
            }
            (Data::I64(x), Data::I64(y), _) => {
                let (shape, v) = int_arith(ctx, op, (x, &a.shape), (y, &b.shape), wrapping!(i64))?;
                CpuTensor::i64(shape, v)
            }
            (Data::I32(x), Data::I32(y), _) => {
                let (shape, v) = int_arith(ctx, op, (x, &a.shape), (y, &b.shape), wrapping!(i32))?;
                CpuTensor { dtype: DType::I32, shape, data: Data::I32(Arc::new(v)) }
            }
            _ => bail!("{op:?} on {} and {}", a.dtype, b.dtype),
        };
        Ok(vec![t])
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

/// `Where(cond, x, y)` for any native element type.
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
pub(super) struct CastKernel(pub(super) DType);

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
