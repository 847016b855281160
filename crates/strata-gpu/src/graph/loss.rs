//! `NegativeLogLikelihoodLoss` and `SoftmaxCrossEntropyLoss` on the GPU
//! (`loss.wgsl`; the log-softmax over the class axis is `norm.wgsl`'s).

use super::*;

impl Exec<'_> {
    /// The two losses. Pipelines: SCE 0 log-softmax, then (both) `loss_elem`
    /// and `loss_reduce`.
    pub(super) fn loss(&self, ctx: &mut Ctx, r: &R) -> Result<Vec<GpuTensor>> {
        let (ignore_index, reduction, sce) = match r {
            R::SoftmaxCrossEntropyLoss { ignore_index, reduction } => (ignore_index, reduction, true),
            R::NegativeLogLikelihoodLoss { ignore_index, reduction } => (ignore_index, reduction, false),
            other => return Err(GpuError::Unsupported(format!("operator {}", other.name()))),
        };
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
        let base = usize::from(sce);
        let logp = if sce {
            let lp = ctx.alloc(DType::F32, x.shape.clone())?;
            let rows = n * d;
            if c > 0 && rows > 0 {
                ctx.dispatch_n(&self.pipes[0], &[u32c(rows)?, u32c(c)?, u32c(d)?], &lp, &[x], rows)?;
            }
            lp
        } else {
            x.clone()
        };
        let count = n * d;
        let losses = ctx.alloc(DType::F32, tshape)?;
        let wts = ctx.alloc(DType::F32, vec![count])?;
        let ii = ignore_index.and_then(|v| i32::try_from(v).ok());
        let p = [
            u32c(count)?,
            u32c(c)?,
            u32c(d.max(1))?,
            u32::from(ii.is_some()),
            ii.unwrap_or(0) as u32,
            u32::from(w.is_some()),
        ];
        ctx.dispatch_n(&self.pipes[base], &p, &losses, &[&wts, &logp, t, w.unwrap_or(&logp)], count)?;
        let loss = match reduction.as_str() {
            "none" => {
                ctx.release(wts);
                losses
            }
            "sum" | "mean" => {
                let y = ctx.alloc(DType::F32, vec![])?;
                let p = [u32c(count)?, u32::from(reduction == "mean")];
                ctx.dispatch(&self.pipes[base + 1], &p, &y, &[&wts, &losses], [1, 1, 1]);
                ctx.release(wts);
                ctx.release(losses);
                y
            }
            other => return Err(GpuError::Unsupported(format!("reduction '{other}'"))),
        };
        let mut outs = vec![loss];
        if sce {
            outs.push(logp);
        }
        Ok(outs)
    }
}
