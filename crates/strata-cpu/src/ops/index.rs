//! Indexed data movement on every element type this backend holds (part
//! of the tensor family, built from `movement.rs`): GatherND, ScatterND,
//! ScatterElements (and the older Scatter), Compress, OneHot, EyeLike and
//! NonZero (data of any held type; scatter reductions on numbers held by
//! value). Every index is checked (negative ones count from the end of
//! their axis) before anything is written; values are moved exactly, and
//! scatter reductions are applied in index order on one thread, so the
//! result does not depend on the thread count.

use std::sync::Arc;

use strata_ir::DType;
use strata_ir::ops::tensor::ScatterReduction as Red;

use super::movement::take;
use super::{Ctx, Kernel, NodeInfo, input, strides, unsupported};
use crate::error::{Result, bail};
use crate::tensor::{CpuTensor, Data, is_half, zip_data};

/// The operators of this module, with their decoded attributes.
pub(super) enum Index {
    GatherNd {
        batch_dims: i64,
    },
    /// ScatterElements, or Scatter (no reduction).
    ScatterElements {
        axis: i64,
        red: Red,
    },
    ScatterNd {
        red: Red,
    },
    Compress {
        axis: Option<i64>,
    },
    OneHot {
        axis: i64,
    },
    EyeLike {
        dtype: DType,
        k: i64,
    },
    NonZero,
}

struct IndexKernel(Index);

/// Index `i` along an axis of `dim` elements (negative: from the end).
fn norm_index(i: i64, dim: usize) -> Result<usize> {
    let (j, d) = (i128::from(i), dim as i128);
    if j < -d || j >= d {
        bail!("index {i} is out of range for a dimension of size {dim}");
    }
    Ok(if j < 0 { (j + d) as usize } else { j as usize })
}

/// An element a scatter reduction can combine with the value it lands on.
trait Combine: Copy {
    fn combine(self, new: Self, red: Red) -> Result<Self>;
}

macro_rules! float_elem {
    ($t:ty) => {
        impl Combine for $t {
            fn combine(self, b: $t, red: Red) -> Result<$t> {
                Ok(match red {
                    Red::None => b,
                    Red::Add => self + b,
                    Red::Mul => self * b,
                    _ if self.is_nan() || b.is_nan() => <$t>::NAN,
                    Red::Max => self.max(b),
                    Red::Min => self.min(b),
                })
            }
        }
    };
}
float_elem!(f32);
float_elem!(f64);

macro_rules! int_elem {
    ($t:ty) => {
        impl Combine for $t {
            fn combine(self, b: $t, red: Red) -> Result<$t> {
                Ok(match red {
                    Red::None => b,
                    Red::Add => self.wrapping_add(b),
                    Red::Mul => self.wrapping_mul(b),
                    Red::Max => self.max(b),
                    Red::Min => self.min(b),
                })
            }
        }
    };
}
int_elem!(i64);
int_elem!(i32);
int_elem!(i16);
int_elem!(i8);
int_elem!(u64);
int_elem!(u32);
int_elem!(u16);
int_elem!(u8);

fn scatter_vec<T: Combine>(x: &[T], upd: &[T], pairs: &[(usize, usize)], red: Red) -> Result<Vec<T>> {
    let mut out = x.to_vec();
    for &(i, j) in pairs {
        out[i] = out[i].combine(upd[j], red)?;
    }
    Ok(out)
}

/// Whether a scatter reduction combines values of this type here: numbers
/// held by value at their own width (bool and the bit-pattern floats are
/// only replaced, float16 / bfloat16 reductions run widened to float32,
/// 4- and 2-bit integers would not wrap at their width).
fn reduces(d: DType) -> bool {
    use DType::*;
    matches!(d, F32 | F64 | I64 | I32 | I16 | I8 | U64 | U32 | U16 | U8)
}

/// Types held as float bit patterns (compared by value only once widened).
fn bit_float(d: DType) -> bool {
    use DType::*;
    is_half(d) || matches!(d, F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0 | F4E2M1)
}

/// `x` with `upd[j]` combined into element `i` for every `(i, j)`, in order.
fn scatter(x: &CpuTensor, upd: &CpuTensor, pairs: &[(usize, usize)], red: Red) -> Result<CpuTensor> {
    let mismatch = || format!("updates ({}) and data ({}) have different types", upd.dtype, x.dtype);
    if upd.dtype != x.dtype {
        bail!("{}", mismatch());
    }
    let data = if red == Red::None {
        // A pure move: any storage.
        zip_data!(&x.data, &upd.data, |a, b| replace(a, b, pairs), bail!("{}", mismatch()))
    } else {
        if !reduces(x.dtype) {
            bail!("reduction {red} is not supported for {}", x.dtype);
        }
        match (&x.data, &upd.data) {
            (Data::F32(a), Data::F32(b)) => Data::F32(Arc::new(scatter_vec(a, b, pairs, red)?)),
            (Data::F64(a), Data::F64(b)) => Data::F64(Arc::new(scatter_vec(a, b, pairs, red)?)),
            (Data::I64(a), Data::I64(b)) => Data::I64(Arc::new(scatter_vec(a, b, pairs, red)?)),
            (Data::I32(a), Data::I32(b)) => Data::I32(Arc::new(scatter_vec(a, b, pairs, red)?)),
            (Data::I16(a), Data::I16(b)) => Data::I16(Arc::new(scatter_vec(a, b, pairs, red)?)),
            (Data::I8(a), Data::I8(b)) => Data::I8(Arc::new(scatter_vec(a, b, pairs, red)?)),
            (Data::U64(a), Data::U64(b)) => Data::U64(Arc::new(scatter_vec(a, b, pairs, red)?)),
            (Data::U32(a), Data::U32(b)) => Data::U32(Arc::new(scatter_vec(a, b, pairs, red)?)),
            (Data::U16(a), Data::U16(b)) => Data::U16(Arc::new(scatter_vec(a, b, pairs, red)?)),
            (Data::U8(a), Data::U8(b)) => Data::U8(Arc::new(scatter_vec(a, b, pairs, red)?)),
            _ => bail!("reduction {red} is not supported for {}", x.dtype),
        }
    };
    Ok(CpuTensor { dtype: x.dtype, shape: x.shape.clone(), data })
}

/// `x` with element `i` replaced by `upd[j]` for every `(i, j)`, in order.
fn replace<T: Copy>(x: &[T], upd: &[T], pairs: &[(usize, usize)]) -> Vec<T> {
    let mut out = x.to_vec();
    for &(i, j) in pairs {
        out[i] = upd[j];
    }
    out
}

/// The flat offsets of the element positions of `ind`'s shape (row-major),
/// with coordinate `axis` replaced by the index there (ScatterElements):
/// `ind` must have `x`'s rank and fit inside it off `axis`.
fn element_targets(x: &[usize], ind: &CpuTensor, axis: usize) -> Result<Vec<usize>> {
    if ind.shape.len() != x.len() {
        bail!("indices have rank {} but data has rank {}", ind.shape.len(), x.len());
    }
    if (0..x.len()).any(|k| k != axis && ind.shape[k] > x[k]) {
        bail!("indices shape {:?} does not fit data shape {x:?}", ind.shape);
    }
    let idx = ind.to_i64()?;
    let (is, xs) = (strides(&ind.shape), strides(x));
    let mut out = Vec::with_capacity(idx.len());
    for (o, &j) in idx.iter().enumerate() {
        let mut off = 0;
        for d in 0..x.len() {
            let c = if d == axis { norm_index(j, x[axis])? } else { (o / is[d]) % ind.shape[d] };
            off += c * xs[d];
        }
        out.push(off);
    }
    Ok(out)
}

/// The index tuples of a GatherND / ScatterND `ind` resolved to flat
/// offsets inside one batch entry of `x`, and the tuple length.
fn nd_offsets(x: &[usize], ind: &CpuTensor, batch_dims: usize) -> Result<(Vec<usize>, usize)> {
    let q = ind.shape.len();
    if q == 0 {
        bail!("indices must have rank at least 1");
    }
    let m = ind.shape[q - 1];
    if batch_dims + m > x.len() {
        bail!("index tuples of length {m} (batch_dims {batch_dims}) exceed data rank {}", x.len());
    }
    let st = strides(x);
    let values = ind.to_i64()?;
    let tuples: usize = ind.shape[..q - 1].iter().product();
    let mut offsets = Vec::with_capacity(tuples);
    for t in 0..tuples {
        let mut off = 0;
        for k in 0..m {
            let a = batch_dims + k;
            off += norm_index(values[t * m + k], x[a])? * st[a];
        }
        offsets.push(off);
    }
    Ok((offsets, m))
}

fn gather_nd(ctx: &Ctx, x: &CpuTensor, ind: &CpuTensor, batch_dims: i64) -> Result<CpuTensor> {
    let (q, r) = (ind.shape.len(), x.shape.len());
    if batch_dims < 0 || (batch_dims > 0 && batch_dims as u64 >= q.min(r) as u64) {
        bail!("batch_dims {batch_dims} is out of range for data rank {r} and indices rank {q}");
    }
    let b = batch_dims as usize;
    if ind.shape[..b] != x.shape[..b] {
        bail!("batch dimensions of data {:?} and indices {:?} differ", x.shape, ind.shape);
    }
    let (offsets, m) = nd_offsets(&x.shape, ind, b)?;
    let mut shape = ind.shape[..q - 1].to_vec();
    shape.extend_from_slice(&x.shape[b + m..]);
    let n = ctx.check_numel(&shape)?;
    let slice: usize = x.shape[b + m..].iter().product();
    let batch: usize = x.shape[b..].iter().product();
    let per_batch: usize = ind.shape[b..q - 1].iter().product();
    let mut src = Vec::with_capacity(n);
    for (t, &off) in offsets.iter().enumerate() {
        let base = (t / per_batch.max(1)) * batch + off;
        src.extend(base..base + slice);
    }
    Ok(take(x, shape, &src))
}

fn scatter_nd(x: &CpuTensor, ind: &CpuTensor, upd: &CpuTensor, red: Red) -> Result<CpuTensor> {
    let (offsets, m) = nd_offsets(&x.shape, ind, 0)?;
    let mut want = ind.shape[..ind.shape.len() - 1].to_vec();
    want.extend_from_slice(&x.shape[m..]);
    if upd.shape != want {
        bail!("updates of shape {:?} should have shape {want:?}", upd.shape);
    }
    let slice: usize = x.shape[m..].iter().product();
    let pairs: Vec<(usize, usize)> =
        offsets.iter().enumerate().flat_map(|(t, &off)| (0..slice).map(move |j| (off + j, t * slice + j))).collect();
    scatter(x, upd, &pairs, red)
}

fn compress(x: &CpuTensor, cond: &CpuTensor, axis: Option<i64>) -> Result<CpuTensor> {
    if cond.shape.len() != 1 {
        bail!("condition must be 1-D, got shape {:?}", cond.shape);
    }
    let Data::Bool(c) = &cond.data else { bail!("condition must be bool, got {}", cond.dtype) };
    let (view, axis) = match axis {
        None => (vec![x.numel()], 0),
        Some(a) => (x.shape.clone(), super::axis(a, x.shape.len())?),
    };
    if view.is_empty() {
        bail!("cannot compress a scalar along an axis");
    }
    if c.len() > view[axis] {
        bail!("condition has {} entries for a dimension of size {}", c.len(), view[axis]);
    }
    let keep: Vec<usize> = (0..c.len()).filter(|&i| c[i] != 0).collect();
    let outer: usize = view[..axis].iter().product();
    let inner: usize = view[axis + 1..].iter().product();
    let mut src = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for &k in &keep {
            let s = (o * view[axis] + k) * inner;
            src.extend(s..s + inner);
        }
    }
    let mut shape = view;
    shape[axis] = keep.len();
    Ok(take(x, shape, &src))
}

fn one_hot(ctx: &Ctx, ind: &CpuTensor, depth: &CpuTensor, values: &CpuTensor, axis: i64) -> Result<CpuTensor> {
    let d = match &depth.data {
        Data::F32(v) if v.len() == 1 => f64::from(v[0]),
        Data::I64(v) if v.len() == 1 => v[0] as f64,
        Data::I32(v) if v.len() == 1 => f64::from(v[0]),
        _ => bail!("depth must be one number, got {} {:?}", depth.dtype, depth.shape),
    };
    if !(d >= 1.0 && d <= i64::MAX as f64) {
        bail!("depth must be a positive number, got {d}");
    }
    let depth = d as i64;
    if values.numel() != 2 {
        bail!("values must hold exactly two elements (off, on), got shape {:?}", values.shape);
    }
    let r = ind.shape.len() as i64;
    if axis < -r - 1 || axis > r {
        bail!("axis {axis} is out of range for output rank {}", r + 1);
    }
    let axis = if axis < 0 { axis + r + 1 } else { axis } as usize;
    // Float indices are truncated toward zero (`as` saturates).
    let idx: Vec<i64> = match &ind.data {
        Data::F32(v) => v.iter().map(|&f| f as i64).collect(),
        _ => ind.to_i64()?,
    };
    let mut shape = ind.shape.clone();
    shape.insert(axis, usize::try_from(depth).unwrap_or(usize::MAX));
    let n = ctx.check_numel(&shape)?;
    if n == 0 {
        // (An empty index tensor: no row to walk, however deep.)
        return Ok(take(values, shape, &[]));
    }
    let outer: usize = ind.shape[..axis].iter().product();
    let inner: usize = ind.shape[axis..].iter().product();
    let depth_n = depth as usize;
    let mut pick = Vec::with_capacity(n);
    for o in 0..outer {
        for class in 0..depth_n {
            pick.extend(idx[o * inner..(o + 1) * inner].iter().map(|&v| {
                let v = if v < 0 { v.wrapping_add(depth) } else { v };
                usize::from(v == class as i64)
            }));
        }
    }
    Ok(take(values, shape, &pick))
}

fn eye_like(ctx: &Ctx, x: &CpuTensor, dtype: DType, k: i64) -> Result<CpuTensor> {
    let [_, cols] = x.shape[..] else { bail!("input must be 2-D, got shape {:?}", x.shape) };
    let n = ctx.check_numel(&x.shape)?;
    let on = |i: usize| (i % cols.max(1)) as i128 - (i / cols.max(1)) as i128 == i128::from(k);
    let data = match dtype {
        DType::F32 => Data::F32(Arc::new((0..n).map(|i| if on(i) { 1.0 } else { 0.0 }).collect())),
        DType::I64 => Data::I64(Arc::new((0..n).map(|i| i64::from(on(i))).collect())),
        DType::I32 => Data::I32(Arc::new((0..n).map(|i| i32::from(on(i))).collect())),
        DType::Bool => Data::Bool(Arc::new((0..n).map(|i| u8::from(on(i))).collect())),
        DType::F64 => Data::F64(Arc::new((0..n).map(|i| if on(i) { 1.0 } else { 0.0 }).collect())),
        d => bail!("EyeLike to {d} is not supported here"),
    };
    Ok(CpuTensor { dtype, shape: x.shape.clone(), data })
}

/// The positions of the elements that are not zero (floats compare by
/// value: -0 is zero).
fn hits<T: Copy + PartialEq + Default>(v: &[T]) -> Vec<usize> {
    (0..v.len()).filter(|&i| v[i] != T::default()).collect()
}

fn nonzero(x: &CpuTensor) -> Result<CpuTensor> {
    let hits: Vec<usize> = match &x.data {
        Data::F32(v) => hits(v),
        Data::F64(v) => hits(v),
        Data::I64(v) => hits(v),
        Data::I32(v) => hits(v),
        Data::I16(v) => hits(v),
        Data::I8(v) => hits(v),
        Data::U64(v) => hits(v),
        Data::U32(v) => hits(v),
        Data::U16(v) => hits(v),
        Data::U8(v) | Data::Bool(v) => hits(v),
        // (float16 / bfloat16 run widened; see `build`.)
        Data::Half(_) | Data::Small(_) => bail!("NonZero of {} is not supported here", x.dtype),
    };
    // A scalar counts as a one-element vector.
    let shape = if x.shape.is_empty() { vec![1] } else { x.shape.clone() };
    let (r, n) = (shape.len(), hits.len());
    let st = strides(&shape);
    let mut out = vec![0i64; r * n];
    for (j, &flat) in hits.iter().enumerate() {
        for k in 0..r {
            out[k * n + j] = ((flat / st[k]) % shape[k]) as i64;
        }
    }
    Ok(CpuTensor::i64(vec![r, n], out))
}

impl Kernel for IndexKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let y = match &self.0 {
            Index::GatherNd { batch_dims } => gather_nd(ctx, x, input(inputs, 1)?, *batch_dims)?,
            Index::ScatterElements { axis, red } => {
                let (ind, upd) = (input(inputs, 1)?, input(inputs, 2)?);
                let ax = super::axis(*axis, x.shape.len())?;
                if upd.shape != ind.shape {
                    bail!("updates of shape {:?} do not match indices of shape {:?}", upd.shape, ind.shape);
                }
                let targets = element_targets(&x.shape, ind, ax)?;
                let pairs: Vec<(usize, usize)> = targets.into_iter().enumerate().map(|(j, i)| (i, j)).collect();
                scatter(x, upd, &pairs, *red)?
            }
            Index::ScatterNd { red } => scatter_nd(x, input(inputs, 1)?, input(inputs, 2)?, *red)?,
            Index::Compress { axis } => compress(x, input(inputs, 1)?, *axis)?,
            Index::OneHot { axis } => one_hot(ctx, x, input(inputs, 1)?, input(inputs, 2)?, *axis)?,
            Index::EyeLike { dtype, k } => eye_like(ctx, x, *dtype, *k)?,
            Index::NonZero => nonzero(x)?,
        };
        Ok(vec![y])
    }
}

/// An indexing node (element types already checked native by `movement::build`).
pub(super) fn build(ix: Index, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    let int_operand = |i: usize| -> Result<()> {
        match info.in_dtype(i) {
            Some(DType::I64 | DType::I32) => Ok(()),
            _ => Err(unsupported(format!("input {i} must be an int64 or int32 tensor"))),
        }
    };
    match &ix {
        Index::GatherNd { .. } => int_operand(1)?,
        Index::ScatterElements { red, .. } | Index::ScatterNd { red } => {
            int_operand(1)?;
            if info.in_dtype(2) != info.in_dtype(0) {
                return Err(unsupported("updates and data must have one type"));
            }
            if *red != Red::None && !info.in_dtype(0).is_some_and(reduces) {
                return Err(unsupported(format!("reduction {red} on {:?}", info.in_dtype(0))));
            }
        }
        Index::Compress { .. } => {
            if info.in_dtype(1) != Some(DType::Bool) {
                return Err(unsupported("the condition must be bool"));
            }
        }
        Index::OneHot { .. } => {
            for i in [0, 1] {
                if !matches!(info.in_dtype(i), Some(DType::F32 | DType::I64 | DType::I32)) {
                    return Err(unsupported(format!("input {i} must be numeric")));
                }
            }
        }
        Index::EyeLike { dtype, .. } => {
            if !matches!(dtype, DType::F32 | DType::F64 | DType::I64 | DType::I32 | DType::Bool) {
                return Err(unsupported(format!("EyeLike to {dtype}")));
            }
        }
        Index::NonZero => {
            if info.out_dtype(0) != Some(DType::I64) {
                return Err(unsupported("NonZero output must be int64"));
            }
            if info.in_dtype(0).is_some_and(bit_float) {
                return Err(unsupported("NonZero of a bit-pattern float"));
            }
        }
    }
    Ok(Box::new(IndexKernel(ix)))
}
