//! Losses on f32: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
//!
//! Input 0 is `[N, C, d1..dk]` (log-probabilities for NLL, scores for SCE,
//! whose log-softmax over axis 1 is taken first and is its optional second
//! output), input 1 the int64 / int32 class targets `[N, d1..dk]`, optional
//! input 2 the per-class weights `[C]`. Each element's loss is
//! `-w[t] · logp[n, t, d]`, 0 where the target is `ignore_index`; "sum"
//! adds them, "mean" divides that sum by the sum of the weights used. Sums
//! are accumulated in f64 in row-major order, on one thread, so the result
//! does not depend on the thread count.

use strata_ir::DType;
use strata_ir::ops::reduce::LossReduction;

use super::{Ctx, Kernel, NodeInfo, input, unsupported};
use crate::error::{Result, bail};
use crate::tensor::CpuTensor;

struct LossKernel {
    softmax: bool,
    ignore_index: Option<i64>,
    reduction: LossReduction,
}

/// Log-softmax over axis 1 of one `[C, d]` block, each of the `d` lines
/// shifted by its maximum; the sum of exponentials is accumulated in f64.
fn log_softmax_block(xs: &[f32], out: &mut [f32], c: usize, d: usize) {
    for j in 0..d {
        let max = (0..c).fold(f32::NEG_INFINITY, |m, k| m.max(xs[k * d + j]));
        let sum = (0..c).fold(0.0f64, |s, k| s + f64::from(libm::expf(xs[k * d + j] - max)));
        let ls = libm::log(sum) as f32;
        for k in 0..c {
            out[k * d + j] = (xs[k * d + j] - max) - ls;
        }
    }
}

impl Kernel for LossKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let target = input(inputs, 1)?;
        let weight = inputs.get(2).copied().flatten();
        if x.shape.len() < 2 {
            bail!("input must have rank >= 2 ([N, C, ...]), got shape {:?}", x.shape);
        }
        let (n, c) = (x.shape[0], x.shape[1]);
        let d: usize = x.shape[2..].iter().product();
        let mut want = vec![n];
        want.extend_from_slice(&x.shape[2..]);
        if target.shape != want {
            bail!("target shape {:?} does not match input shape {:?} (expected {want:?})", target.shape, x.shape);
        }
        let xv = x.as_f32()?;
        let tv = target.to_i64()?;
        let wv = match weight {
            Some(w) if w.shape != [c] => bail!("weight shape {:?} does not match the {c} classes", w.shape),
            Some(w) => Some(w.as_f32()?),
            None => None,
        };
        let log_prob = if self.softmax {
            let mut out = vec![0.0f32; xv.len()];
            let block = c * d;
            if block > 0 {
                ctx.pool.for_each_chunk(&mut out, block, xv.len() * 8, |i, ys| {
                    log_softmax_block(&xv[i * block..(i + 1) * block], ys, c, d);
                });
            }
            Some(out)
        } else {
            None
        };
        let logp: &[f32] = log_prob.as_deref().unwrap_or(xv);
        let mut losses = Vec::with_capacity(n * d);
        let (mut total, mut wsum) = (0.0f64, 0.0f64);
        for ni in 0..n {
            for di in 0..d {
                let t = tv[ni * d + di];
                if self.ignore_index == Some(t) {
                    losses.push(0.0f32);
                    continue;
                }
                if t < 0 || t as u64 >= c as u64 {
                    bail!("target {t} is out of range for {c} classes");
                }
                let t = t as usize;
                let w = wv.map_or(1.0, |w| w[t]);
                let l = -f64::from(w) * f64::from(logp[(ni * c + t) * d + di]);
                losses.push(l as f32);
                total += l;
                wsum += f64::from(w);
            }
        }
        let loss = match self.reduction {
            LossReduction::None => CpuTensor::f32(target.shape.clone(), losses),
            LossReduction::Sum => CpuTensor::f32(vec![], vec![total as f32]),
            // Zero total weight gives 0/0 = NaN, as the reference does.
            LossReduction::Mean => CpuTensor::f32(vec![], vec![(total / wsum) as f32]),
        };
        let mut outs = vec![loss];
        if let Some(lp) = log_prob {
            outs.push(CpuTensor::f32(x.shape.clone(), lp));
        }
        Ok(outs)
    }
}

/// A loss node: SoftmaxCrossEntropyLoss (`softmax`) or
/// NegativeLogLikelihoodLoss, routed here by `reduce::build`.
pub(crate) fn build(
    softmax: bool,
    ignore_index: Option<i64>,
    reduction: LossReduction,
    info: &NodeInfo,
) -> Result<Box<dyn Kernel>> {
    if info.in_dtype(0) != Some(DType::F32) || info.out_dtype(0) != Some(DType::F32) {
        return Err(unsupported("losses run on float32 only"));
    }
    if !matches!(info.in_dtype(1), Some(DType::I64 | DType::I32)) {
        return Err(unsupported("the target must be int64 or int32"));
    }
    if info.has_input(2) && info.in_dtype(2) != Some(DType::F32) {
        return Err(unsupported("the weights must be float32"));
    }
    if info.node.outputs.get(1).copied().flatten().is_some() && info.out_dtype(1) != Some(DType::F32) {
        return Err(unsupported("log_prob must be float32"));
    }
    Ok(Box::new(LossKernel { softmax, ignore_index, reduction }))
}
