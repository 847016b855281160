//! Reductions over axes and softmax-like normalisations on f32.

use strata_ir::DType;
use strata_ir::ops::ReduceOp as R;

use super::{Ctx, Kernel, NodeInfo, input, strides, unsupported};
use crate::error::{Result, bail};
use crate::tensor::{CpuTensor, Data};

// --------------------------------------------------------------- Softmax

struct SoftmaxKernel {
    axis: i64,
    log: bool,
    /// Opset < 13: normalise over every axis from `axis` on (2-D coercion).
    legacy: bool,
}

impl Kernel for SoftmaxKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let xv = x.as_f32()?;
        let rank = x.shape.len();
        let (len, inner) = if rank == 0 {
            (1, 1)
        } else {
            let ax = super::axis(self.axis, rank)?;
            if self.legacy {
                (x.shape[ax..].iter().product(), 1)
            } else {
                (x.shape[ax], x.shape[ax + 1..].iter().product())
            }
        };
        let mut y = vec![0.0f32; xv.len()];
        let log = self.log;
        let block = (len * inner).max(1);
        ctx.pool.for_each_chunk(&mut y, block, xv.len() * 8, |o, out| {
            let xs = &xv[o * block..o * block + out.len()];
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    if inner == 1 { softmax_row(xs, out, log) } else { softmax_strided(xs, out, len, inner, log) }
                },
            )
        });
        Ok(vec![CpuTensor::f32(x.shape.clone(), y)])
    }
}

/// Lanes of the partial maxima and sums of [`softmax_row`].
const LANES: usize = 8;

/// Softmax (or log-softmax) of one contiguous row: the maximum and the sum
/// of exponentials each kept in `LANES` partial results (combined in a
/// fixed order), so every pass vectorises.
#[inline(always)]
fn softmax_row(xs: &[f32], out: &mut [f32], log: bool) {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            // (A compare and a select: vectorises on wasm too, unlike `f32::max`.)
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    let max = chunks.remainder().iter().fold(m.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)), |a, &b| a.max(b));
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = crate::math::exp(x - max);
    }
    let mut s = [0.0f32; LANES];
    let mut chunks = out.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            s[l] += c[l];
        }
    }
    let sum = chunks.remainder().iter().fold(s.iter().sum::<f32>(), |a, &b| a + b);
    if log {
        let ls = libm::logf(sum);
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = x - max - ls;
        }
    } else {
        for o in out.iter_mut() {
            *o /= sum;
        }
    }
}

/// Softmax along an axis with `inner` elements after it: `len` rows of
/// `inner` lanes, each lane normalised on its own (vectorised across lanes).
#[inline(always)]
fn softmax_strided(xs: &[f32], out: &mut [f32], len: usize, inner: usize, log: bool) {
    let mut max = vec![f32::NEG_INFINITY; inner];
    for row in xs.chunks_exact(inner).take(len) {
        for (m, &x) in max.iter_mut().zip(row) {
            *m = if x > *m { x } else { *m };
        }
    }
    let mut sum = vec![0.0f32; inner];
    for (orow, row) in out.chunks_exact_mut(inner).zip(xs.chunks_exact(inner)) {
        for (((o, &x), &m), s) in orow.iter_mut().zip(row).zip(&max).zip(sum.iter_mut()) {
            let e = crate::math::exp(x - m);
            *o = e;
            *s += e;
        }
    }
    if log {
        let ls: Vec<f32> = sum.iter().map(|&s| libm::logf(s)).collect();
        for (orow, row) in out.chunks_exact_mut(inner).zip(xs.chunks_exact(inner)) {
            for (((o, &x), &m), &l) in orow.iter_mut().zip(row).zip(&max).zip(&ls) {
                *o = x - m - l;
            }
        }
    } else {
        for orow in out.chunks_exact_mut(inner) {
            for (o, &s) in orow.iter_mut().zip(&sum) {
                *o /= s;
            }
        }
    }
}

// ------------------------------------------------------------- ReduceXxx

#[derive(Debug, Clone, Copy)]
enum How {
    Sum,
    Mean,
    Max,
    Min,
    SumSquare,
    Prod,
    L1,
    L2,
    LogSum,
}

struct ReduceKernel {
    how: How,
    axes_attr: Option<Vec<i64>>,
    keepdims: bool,
    noop_with_empty_axes: bool,
}

impl Kernel for ReduceKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let rank = x.shape.len();
        let axes = match inputs.get(1).copied().flatten() {
            Some(t) => t.to_i64()?,
            None => self.axes_attr.clone().unwrap_or_default(),
        };
        if axes.is_empty() && self.noop_with_empty_axes {
            return Ok(vec![x.clone()]);
        }
        let mut reduced = vec![axes.is_empty(); rank];
        for &a in &axes {
            let i = super::axis(a, rank)?;
            if reduced[i] && !axes.is_empty() {
                bail!("axis {a} is given twice");
            }
            reduced[i] = true;
        }
        let out_kept: Vec<usize> = (0..rank).map(|i| if reduced[i] { 1 } else { x.shape[i] }).collect();
        let n_out: usize = out_kept.iter().product();
        ctx.check_numel(&out_kept)?;
        let xv = x.as_f32()?;
        let count = xv.len().checked_div(n_out).unwrap_or(0);
        let init = match self.how {
            How::Max => f32::NEG_INFINITY,
            How::Min => f32::INFINITY,
            How::Prod => 1.0,
            _ => 0.0,
        };
        let how = self.how;
        let step = |a: f32, v: f32| -> f32 {
            match how {
                How::Sum | How::Mean | How::LogSum => a + v,
                How::SumSquare | How::L2 => a + v * v,
                How::L1 => a + v.abs(),
                How::Prod => a * v,
                How::Max if !a.is_nan() && (v.is_nan() || v > a) => v,
                How::Min if !a.is_nan() && (v.is_nan() || v < a) => v,
                How::Max | How::Min => a,
            }
        };
        let mut acc = vec![init; n_out];
        let lo = reduced.iter().position(|&r| r);
        let hi = reduced.iter().rposition(|&r| r);
        match (lo, hi) {
            (Some(lo), Some(hi)) if reduced[lo..=hi].iter().all(|&r| r) => {
                // One contiguous block of axes: out[o][i] = fold over r of x[o][r][i],
                // in the same order as the general walk below (sums over the
                // innermost axis: in lanes, see `sum_lanes`).
                let r: usize = x.shape[lo..=hi].iter().product();
                let inner: usize = x.shape[hi + 1..].iter().product();
                ctx.pool.for_each_chunk(&mut acc, inner.max(1), xv.len(), |o, out| {
                    let xs = &xv[o * r * inner..(o + 1) * r * inner];
                    if inner == 1 {
                        use crate::simd::{sum_lanes, vectorized};
                        // Sums in lanes (vectorised); the others in order.
                        out[0] = match how {
                            How::Sum | How::Mean | How::LogSum => vectorized(
                                #[inline(always)]
                                || sum_lanes(xs, |v| v),
                            ),
                            How::SumSquare | How::L2 => vectorized(
                                #[inline(always)]
                                || sum_lanes(xs, |v| v * v),
                            ),
                            How::L1 => vectorized(
                                #[inline(always)]
                                || sum_lanes(xs, f32::abs),
                            ),
                            How::Max | How::Min | How::Prod => xs.iter().fold(init, |a, &v| step(a, v)),
                        };
                    } else {
                        for row in xs.chunks_exact(inner) {
                            for (a, &v) in out.iter_mut().zip(row) {
                                *a = step(*a, v);
                            }
                        }
                    }
                });
            }
            _ => {
                let os = strides(&out_kept);
                // Input is walked in order; each element lands in its output slot.
                let mut idx = vec![0usize; rank];
                for &v in xv.iter() {
                    let mut o = 0;
                    for d in 0..rank {
                        if !reduced[d] {
                            o += idx[d] * os[d];
                        }
                    }
                    acc[o] = step(acc[o], v);
                    for d in (0..rank).rev() {
                        idx[d] += 1;
                        if idx[d] < x.shape[d] {
                            break;
                        }
                        idx[d] = 0;
                    }
                }
            }
        }
        match self.how {
            How::Mean => acc.iter_mut().for_each(|a| *a /= count as f32),
            How::L2 => acc.iter_mut().for_each(|a| *a = a.sqrt()),
            How::LogSum => acc.iter_mut().for_each(|a| *a = libm::logf(*a)),
            _ => {}
        }
        let shape =
            if self.keepdims { out_kept } else { (0..rank).filter(|&i| !reduced[i]).map(|i| x.shape[i]).collect() };
        Ok(vec![CpuTensor::f32(shape, acc)])
    }
}

// ---------------------------------------------------- CumSum / CumProd

/// Running sum (or product) along the axis given by input 1; floats are
/// accumulated in f64 and each output rounded once (as the reference does),
/// integers wrap. Lines along the axis are walked `inner` lanes at a time.
struct CumulativeKernel {
    exclusive: bool,
    reverse: bool,
    product: bool,
}

impl CumulativeKernel {
    /// One block (`len` rows of `inner` lanes) of values `x` into `out`.
    fn block<T: Copy, A: Copy>(
        &self,
        x: &[T],
        out: &mut [T],
        inner: usize,
        (zero, one): (A, A),
        step: impl Fn(A, T, bool) -> A,
        back: impl Fn(A) -> T,
    ) {
        let len = x.len() / inner.max(1);
        let mut acc = vec![if self.product { one } else { zero }; inner];
        for r in 0..len {
            let row = if self.reverse { len - 1 - r } else { r };
            let (xs, os) = (&x[row * inner..(row + 1) * inner], &mut out[row * inner..(row + 1) * inner]);
            for ((a, &v), o) in acc.iter_mut().zip(xs).zip(os.iter_mut()) {
                let next = step(*a, v, self.product);
                *o = back(if self.exclusive { *a } else { next });
                *a = next;
            }
        }
    }
}

impl Kernel for CumulativeKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let a = input(inputs, 1)?.to_i64()?;
        if x.shape.is_empty() || a.len() != 1 {
            bail!("CumSum needs an input of rank ≥ 1 and one axis, got {:?} and {} axes", x.shape, a.len());
        }
        let ax = super::axis(a[0], x.shape.len())?;
        let inner: usize = x.shape[ax + 1..].iter().product();
        let block = (x.shape[ax] * inner).max(1);
        let data = match &x.data {
            Data::F32(v) => {
                let mut out = vec![0.0f32; v.len()];
                ctx.pool.for_each_chunk(&mut out, block, v.len(), |o, ys| {
                    let step = |a: f64, v: f32, p: bool| if p { a * f64::from(v) } else { a + f64::from(v) };
                    self.block(&v[o * block..o * block + ys.len()], ys, inner, (0.0, 1.0), step, |a| a as f32);
                });
                Data::F32(std::sync::Arc::new(out))
            }
            Data::I64(v) => {
                let mut out = vec![0i64; v.len()];
                ctx.pool.for_each_chunk(&mut out, block, v.len(), |o, ys| {
                    let step = |a: i64, v: i64, p: bool| if p { a.wrapping_mul(v) } else { a.wrapping_add(v) };
                    self.block(&v[o * block..o * block + ys.len()], ys, inner, (0, 1), step, |a| a);
                });
                Data::I64(std::sync::Arc::new(out))
            }
            Data::I32(v) => {
                let mut out = vec![0i32; v.len()];
                ctx.pool.for_each_chunk(&mut out, block, v.len(), |o, ys| {
                    let step = |a: i32, v: i32, p: bool| if p { a.wrapping_mul(v) } else { a.wrapping_add(v) };
                    self.block(&v[o * block..o * block + ys.len()], ys, inner, (0, 1), step, |a| a);
                });
                Data::I32(std::sync::Arc::new(out))
            }
            Data::F64(v) => {
                let mut out = vec![0.0f64; v.len()];
                ctx.pool.for_each_chunk(&mut out, block, v.len(), |o, ys| {
                    let step = |a: f64, v: f64, p: bool| if p { a * v } else { a + v };
                    self.block(&v[o * block..o * block + ys.len()], ys, inner, (0.0, 1.0), step, |a| a);
                });
                Data::F64(std::sync::Arc::new(out))
            }
            _ => bail!("CumSum of {}", x.dtype),
        };
        Ok(vec![CpuTensor { dtype: x.dtype, shape: x.shape.clone(), data }])
    }
}

// ------------------------------------------------------- ArgMax / ArgMin

/// Index of the first (or last) largest / smallest element along an axis;
/// NaN counts as larger than every number.
struct ArgKernel {
    axis: i64,
    keepdims: bool,
    last: bool,
    max: bool,
}

/// Total order key: NaN above +∞.
fn key(v: f32) -> (bool, f32) {
    (v.is_nan(), if v.is_nan() { 0.0 } else { v })
}

impl Kernel for ArgKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if x.shape.is_empty() {
            bail!("input must have rank >= 1");
        }
        let ax = super::axis(self.axis, x.shape.len())?;
        let (outer, len, inner) =
            (x.shape[..ax].iter().product::<usize>(), x.shape[ax], x.shape[ax + 1..].iter().product::<usize>());
        if len == 0 {
            bail!("cannot take the arg-extreme over an empty axis {ax}");
        }
        let better = |c: std::cmp::Ordering| {
            use std::cmp::Ordering::*;
            match c {
                Greater => self.max,
                Less => !self.max,
                Equal => self.last,
            }
        };
        let cmp_at = |i: usize, j: usize| -> std::cmp::Ordering {
            match &x.data {
                crate::tensor::Data::F32(v) => key(v[i]).partial_cmp(&key(v[j])).unwrap_or(std::cmp::Ordering::Equal),
                crate::tensor::Data::I64(v) => v[i].cmp(&v[j]),
                crate::tensor::Data::I32(v) => v[i].cmp(&v[j]),
                crate::tensor::Data::Bool(v) => v[i].cmp(&v[j]),
                // `build` admits only the types above.
                _ => std::cmp::Ordering::Equal,
            }
        };
        let mut out = vec![0i64; outer * inner];
        ctx.pool.for_each_chunk(&mut out, inner.max(1), outer * len * inner, |o, row| {
            for (i, slot) in row.iter_mut().enumerate() {
                let at = |j: usize| (o * len + j) * inner + i;
                let mut best = 0;
                for j in 1..len {
                    if better(cmp_at(at(j), at(best))) {
                        best = j;
                    }
                }
                *slot = best as i64;
            }
        });
        let mut shape = x.shape.clone();
        if self.keepdims {
            shape[ax] = 1;
        } else {
            shape.remove(ax);
        }
        Ok(vec![CpuTensor::i64(shape, out)])
    }
}

// ------------------------------------------------------------------ TopK

/// The `k` largest (or smallest) elements along an axis, in order, and
/// their indices; equal elements keep index order; NaN above every number.
struct TopKKernel {
    axis: i64,
    largest: bool,
    attr_k: Option<i64>,
}

impl Kernel for TopKKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let k = match inputs.get(1).copied().flatten() {
            Some(t) => match t.to_i64()?[..] {
                [k] => k,
                _ => bail!("k must hold one value, got shape {:?}", t.shape),
            },
            None => self.attr_k.ok_or_else(|| crate::error::CpuError::Kernel("k is missing".into()))?,
        };
        if x.shape.is_empty() {
            bail!("input must have rank >= 1");
        }
        let ax = super::axis(self.axis, x.shape.len())?;
        let (outer, len, inner) =
            (x.shape[..ax].iter().product::<usize>(), x.shape[ax], x.shape[ax + 1..].iter().product::<usize>());
        if k < 0 || k as u64 > len as u64 {
            bail!("k = {k} is out of range for axis {ax} of size {len}");
        }
        let k = k as usize;
        let mut shape = x.shape.clone();
        shape[ax] = k;
        let n = ctx.check_numel(&shape)?;
        let xv = x.as_f32()?;
        let mut vals = vec![0.0f32; n];
        let mut idx = vec![0i64; n];
        let largest = self.largest;
        let mut pos: Vec<usize> = Vec::with_capacity(len);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| xv[(o * len + j) * inner + i];
                pos.clear();
                pos.extend(0..len);
                // A stable sort keeps equal elements in index order.
                pos.sort_by(|&a, &b| {
                    let c = key(at(a)).partial_cmp(&key(at(b))).unwrap_or(std::cmp::Ordering::Equal);
                    if largest { c.reverse() } else { c }
                });
                for (r, &p) in pos.iter().take(k).enumerate() {
                    let dst = (o * k + r) * inner + i;
                    vals[dst] = at(p);
                    idx[dst] = p as i64;
                }
            }
        }
        Ok(vec![CpuTensor::f32(shape.clone(), vals), CpuTensor::i64(shape, idx)])
    }
}

#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn build(op: &R, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    let softmax = |axis: i64, log: bool, legacy: bool| -> Result<Box<dyn Kernel>> {
        info.require_dtypes(&[DType::F32])?;
        Ok(Box::new(SoftmaxKernel { axis, log, legacy }))
    };
    let reduce = |how: How, axes: &Option<Vec<i64>>, keepdims: i64, noop: i64| -> Result<Box<dyn Kernel>> {
        if info.in_dtype(0) != Some(DType::F32) || info.out_dtype(0) != Some(DType::F32) {
            return Err(unsupported("reductions run on float32 only"));
        }
        if info.has_input(1) && !matches!(info.in_dtype(1), Some(DType::I64)) {
            return Err(unsupported("axes input must be int64"));
        }
        Ok(Box::new(ReduceKernel {
            how,
            axes_attr: axes.clone(),
            keepdims: keepdims != 0,
            noop_with_empty_axes: noop != 0,
        }))
    };
    match op {
        R::Softmax { axis } => softmax(*axis, false, false),
        R::LogSoftmax { axis } => softmax(*axis, true, false),
        R::SoftmaxLegacy { axis } => softmax(*axis, false, true),
        R::LogSoftmaxLegacy { axis } => softmax(*axis, true, true),
        R::ReduceSum { axes, keepdims, noop_with_empty_axes } => {
            reduce(How::Sum, axes, *keepdims, *noop_with_empty_axes)
        }
        R::ReduceMean { axes, keepdims, noop_with_empty_axes } => {
            reduce(How::Mean, axes, *keepdims, *noop_with_empty_axes)
        }
        R::ReduceMax { axes, keepdims, noop_with_empty_axes } => {
            reduce(How::Max, axes, *keepdims, *noop_with_empty_axes)
        }
        R::ReduceMin { axes, keepdims, noop_with_empty_axes } => {
            reduce(How::Min, axes, *keepdims, *noop_with_empty_axes)
        }
        R::ReduceSumSquare { axes, keepdims, noop_with_empty_axes } => {
            reduce(How::SumSquare, axes, *keepdims, *noop_with_empty_axes)
        }
        R::ReduceProd { axes, keepdims, noop_with_empty_axes } => {
            reduce(How::Prod, axes, *keepdims, *noop_with_empty_axes)
        }
        R::ReduceL1 { axes, keepdims, noop_with_empty_axes } => reduce(How::L1, axes, *keepdims, *noop_with_empty_axes),
        R::ReduceL2 { axes, keepdims, noop_with_empty_axes } => reduce(How::L2, axes, *keepdims, *noop_with_empty_axes),
        R::ReduceLogSum { axes, keepdims, noop_with_empty_axes } => {
            reduce(How::LogSum, axes, *keepdims, *noop_with_empty_axes)
        }
        R::TopK { axis, largest, sorted: _, k } => {
            if info.in_dtype(0) != Some(DType::F32) || (info.has_input(1) && info.in_dtype(1) != Some(DType::I64)) {
                return Err(unsupported("TopK runs on float32 values with an int64 k"));
            }
            Ok(Box::new(TopKKernel { axis: *axis, largest: *largest != 0, attr_k: *k }))
        }
        R::ArgMax { axis, keepdims, select_last_index } | R::ArgMin { axis, keepdims, select_last_index } => {
            info.require_native()?;
            if info.out_dtype(0) != Some(DType::I64) {
                return Err(unsupported("ArgMax / ArgMin output must be int64"));
            }
            Ok(Box::new(ArgKernel {
                axis: *axis,
                keepdims: *keepdims != 0,
                last: *select_last_index != 0,
                max: matches!(op, R::ArgMax { .. }),
            }))
        }
        R::CumSum { exclusive, reverse } | R::CumProd { exclusive, reverse } => {
            info.require_dtypes(&[DType::F32, DType::F64, DType::I64, DType::I32])?;
            Ok(Box::new(CumulativeKernel {
                exclusive: *exclusive != 0,
                reverse: *reverse != 0,
                product: matches!(op, R::CumProd { .. }),
            }))
        }
        // not supported here
        R::ReduceLogSumExp { .. }
        | R::Hardmax { .. }
        | R::HardmaxLegacy { .. }
        | R::SoftmaxCrossEntropyLoss { .. }
        | R::NegativeLogLikelihoodLoss { .. } => Err(unsupported(format!("no {} kernel", op.name()))),
    }
}
