//! Reductions over axes and softmax-like normalisations on f32.

use strata_ir::DType;
use strata_ir::ops::ReduceOp as R;

use super::{Ctx, Kernel, NodeInfo, input, strides, unsupported};
use crate::error::{Result, bail};
use crate::tensor::CpuTensor;

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
            for i in 0..inner {
                let max = (0..len).map(|j| xs[j * inner + i]).fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0f32;
                for j in 0..len {
                    let e = crate::math::exp(xs[j * inner + i] - max);
                    out[j * inner + i] = e;
                    sum += e;
                }
                if log {
                    let ls = libm::logf(sum);
                    for j in 0..len {
                        out[j * inner + i] = xs[j * inner + i] - max - ls;
                    }
                } else {
                    for j in 0..len {
                        out[j * inner + i] /= sum;
                    }
                }
            }
        });
        Ok(vec![CpuTensor::f32(x.shape.clone(), y)])
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
            _ => 0.0,
        };
        let how = self.how;
        let step = |a: f32, v: f32| -> f32 {
            match how {
                How::Sum | How::Mean => a + v,
                How::SumSquare => a + v * v,
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
                // in the same order as the general walk below.
                let r: usize = x.shape[lo..=hi].iter().product();
                let inner: usize = x.shape[hi + 1..].iter().product();
                ctx.pool.for_each_chunk(&mut acc, inner.max(1), xv.len(), |o, out| {
                    let xs = &xv[o * r * inner..(o + 1) * r * inner];
                    if inner == 1 {
                        out[0] = xs.iter().fold(init, |a, &v| step(a, v));
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
        if let How::Mean = self.how {
            acc.iter_mut().for_each(|a| *a /= count as f32);
        }
        let shape =
            if self.keepdims { out_kept } else { (0..rank).filter(|&i| !reduced[i]).map(|i| x.shape[i]).collect() };
        Ok(vec![CpuTensor::f32(shape, acc)])
    }
}

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
        other => Err(unsupported(format!("no {} kernel", other.name()))),
    }
}
