//! `NegativeLogLikelihoodLoss` and `SoftmaxCrossEntropyLoss` on the GPU
//! (`loss.wgsl`; the log-softmax over the class axis is `norm.wgsl`'s).

use super::*;
use crate::wgsl::{Params, wgsl_params};
use strata_ir::ops::reduce::LossReduction;

wgsl_params! {
    /// `loss_elem`: `count` (N * D) target elements, `classes` classes,
    /// `inner` (D) positions per image; targets equal to `ignore_index`
    /// (when `has_ignore_index`) count 0; class weights when `has_weight`.
    pub(crate) struct LossElemParams {
        count: u32, classes: u32, inner: u32, has_ignore_index: u32, ignore_index: i32, has_weight: u32,
    }
    /// `loss_reduce`: the sum of `count` losses, divided by the total weight when `mean`.
    pub(crate) struct LossReduceParams { count: u32, mean: u32 }
}

/// How a loss runs: SoftmaxCrossEntropyLoss's `log_softmax` first, then
/// `elem` per element and, unless `reduction` is none, `reduce`.
#[derive(Debug)]
pub(crate) struct Plan {
    log_softmax: Option<Kernel>,
    elem: Kernel,
    reduce: Kernel,
    ignore_index: Option<i64>,
    /// `Some(mean)` for the sum and mean reductions, `None` for none.
    reduction: Option<bool>,
}

/// Plan NegativeLogLikelihoodLoss or SoftmaxCrossEntropyLoss.
pub(super) fn plan(v: &NodeView, r: &R, k: &mut Kernels) -> std::result::Result<Plan, String> {
    let (ignore_index, reduction, sce) = match r {
        R::SoftmaxCrossEntropyLoss { ignore_index, reduction } => (ignore_index, reduction, true),
        R::NegativeLogLikelihoodLoss { ignore_index, reduction } => (ignore_index, reduction, false),
        other => return not_implemented(other.name()),
    };
    v.float(0)?;
    v.int(1, "target")?;
    if v.input(2).is_some() {
        v.float(2)?;
    }
    let reduction = match reduction {
        LossReduction::None => None,
        LossReduction::Sum => Some(false),
        LossReduction::Mean => Some(true),
    };
    Ok(Plan {
        log_softmax: sce.then(|| k.get(Shader::Norm, "softmax", &[("MODE", super::norm::softmax_mode::LOG)])),
        elem: k.get(Shader::Loss, "loss_elem", &[]),
        reduce: k.get(Shader::Loss, "loss_reduce", &[]),
        ignore_index: *ignore_index,
        reduction,
    })
}

impl Exec<'_> {
    /// The two losses: the loss (and SoftmaxCrossEntropyLoss's log-probabilities).
    pub(super) fn loss(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let Plan { log_softmax, elem, reduce, ignore_index, reduction } = plan;
        let x = self.input(0)?;
        let t = self.input(1)?;
        let w = self.opt_input(2);
        if x.shape.len() < 2 {
            return Err(GpuError::Shape(format!("loss input must have rank >= 2, got {:?}", x.shape)));
        }
        let (n, c) = (x.shape[0], x.shape[1]);
        let d: usize = x.shape[2..].iter().product();
        let mut tshape = vec![n];
        tshape.extend_from_slice(&x.shape[2..]);
        if t.shape != tshape {
            return Err(GpuError::Shape(format!("target {:?} does not match input {:?}", t.shape, x.shape)));
        }
        if w.is_some_and(|w| w.shape != [c]) {
            return Err(GpuError::Shape(format!("weight must have shape [{c}]")));
        }
        let logp = if let Some(log_softmax) = log_softmax {
            let lp = ctx.alloc(DType::F32, x.shape.clone())?;
            let rows = n * d;
            if c > 0 && rows > 0 {
                let p = super::norm::SoftmaxParams { rows, row_len: c, inner: d };
                ctx.dispatch_n(log_softmax, &p.words()?, &lp, &[x], rows)?;
            }
            lp
        } else {
            x.clone()
        };
        let count = n * d;
        let losses = ctx.alloc(DType::F32, tshape)?;
        let wts = ctx.alloc(DType::F32, vec![count])?;
        let ii = ignore_index.and_then(|v| i32::try_from(v).ok());
        let p = LossElemParams {
            count,
            classes: c,
            inner: d.max(1),
            has_ignore_index: usize::from(ii.is_some()),
            ignore_index: i64::from(ii.unwrap_or(0)),
            has_weight: usize::from(w.is_some()),
        };
        ctx.dispatch_n(elem, &p.words()?, &losses, &[&wts, &logp, t, w.unwrap_or(&logp)], count)?;
        let loss = match reduction {
            None => {
                ctx.release(wts);
                losses
            }
            Some(mean) => {
                let y = ctx.alloc(DType::F32, vec![])?;
                let p = LossReduceParams { count, mean: usize::from(*mean) };
                ctx.dispatch(reduce, &p.words()?, &y, &[&wts, &losses], [1, 1, 1])?;
                ctx.release(wts);
                ctx.release(losses);
                y
            }
        };
        let mut outs = vec![loss];
        if log_softmax.is_some() {
            outs.push(logp);
        }
        Ok(outs)
    }
}
