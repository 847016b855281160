//! NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (log-softmax over
//! the class axis, then the same loss; optional log-probabilities output):
//! the target class of every element gathered along axis 1, weighted per
//! class, `ignore_index` elements masked out (their index and mask are
//! worked out on the host from the targets), reduced as `none`, `sum` or
//! `mean` (divided by the total weight).

use burn_backend::tensor::FloatTensor;
use burn_backend::{Backend, TensorData};
use strata_ir::DType;
use strata_ir::ops::ReduceOp as R;
use strata_ir::ops::reduce::LossReduction;

use super::{NodeInfo, Out, Unsupported, input, numel};
use crate::tensor::{BurnTensor, burn_shape};

/// A compiled loss node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loss {
    softmax: bool,
    ignore_index: Option<i64>,
    reduction: LossReduction,
}

/// Plan the losses (`None`: another operator).
pub(crate) fn plan(op: &R, info: &NodeInfo) -> Option<Result<Loss, Unsupported>> {
    let (softmax, ignore_index, reduction) = match op {
        R::NegativeLogLikelihoodLoss { ignore_index, reduction } => (false, *ignore_index, *reduction),
        R::SoftmaxCrossEntropyLoss { ignore_index, reduction } => (true, *ignore_index, *reduction),
        _ => return None,
    };
    let check = || -> Result<Loss, Unsupported> {
        if info.in_dtype(0) != Some(DType::F32) {
            return Err("loss of non-float32 scores".into());
        }
        if !matches!(info.in_dtype(1), Some(DType::I64 | DType::I32)) {
            return Err("loss targets are not int64/int32".into());
        }
        info.require_held(&[])?;
        Ok(Loss { softmax, ignore_index, reduction })
    };
    Some(check())
}

impl Loss {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Out<B> {
        let (x, target) = (input(ins, 0)?, input(ins, 1)?);
        let s = &x.shape;
        if s.len() < 2 || numel(s)? == 0 {
            return Err(format!("scores of shape {s:?}"));
        }
        let (n, c) = (s[0], s[1]);
        let mut ts = vec![n];
        ts.extend_from_slice(&s[2..]);
        if target.shape != ts {
            return Err(format!("targets {:?} for scores {s:?}", target.shape));
        }
        let scores = if self.softmax { B::log_softmax(x.f()?, 1) } else { x.f()? };
        // Class indices, ignored elements pointing at class 0 with mask 0.
        let t = target.host_ints()?;
        let mut idx = Vec::with_capacity(t.len());
        let mut keep = Vec::with_capacity(t.len());
        for &v in &t {
            if Some(v) == self.ignore_index {
                idx.push(0);
                keep.push(0.0f32);
            } else if (0..c as i64).contains(&v) {
                idx.push(v);
                keep.push(1.0);
            } else {
                return Err(format!("target {v} is out of range for {c} classes"));
            }
        }
        let mut gs = ts.clone();
        gs.insert(1, 1);
        let ids = B::int_from_data(TensorData::new(idx.clone(), burn_shape(&gs)), device);
        let picked = BurnTensor::<B>::new(gs, B::float_gather(1, scores.clone(), ids)).reshaped(&ts);
        let mut w: FloatTensor<B> = B::float_from_data(TensorData::new(keep, burn_shape(&ts)), device);
        if let Some(weight) = ins.get(2).copied().flatten() {
            if weight.shape != [c] {
                return Err(format!("weights of shape {:?} for {c} classes", weight.shape));
            }
            let flat = B::int_from_data(TensorData::new(idx, vec![t.len()]), device);
            let per = BurnTensor::<B>::new(vec![t.len()], B::float_select(weight.f()?, 0, flat)).reshaped(&ts);
            w = B::float_mul(w, per);
        }
        let loss = B::float_neg(B::float_mul(picked, w.clone()));
        let out = match self.reduction {
            LossReduction::None => BurnTensor::new(ts.clone(), loss),
            LossReduction::Sum => BurnTensor::new(vec![], B::float_sum(loss)),
            LossReduction::Mean => BurnTensor::new(vec![], B::float_div(B::float_sum(loss), B::float_sum(w))),
        };
        let mut outs = vec![out];
        if self.softmax {
            outs.push(BurnTensor::new(s.clone(), scores));
        }
        Ok(outs)
    }
}
