//! Reductions, scans along an axis, softmax-like normalisations, top-k and losses.

crate::attr::attr_enum! {
    /// The losses' `reduction`: per element, summed, or averaged (weighted).
    pub enum LossReduction {
        None = "none",
        Sum = "sum",
        Mean = "mean",
    }
}

crate::op_family! {
    /// Reductions and related operators.
    pub enum ReduceOp {
        /// `axes` attribute is the pre-opset-18 (13 for ReduceSum) form; later it is input 1.
        ReduceSum { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ReduceMean { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ReduceMax { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ReduceMin { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ReduceProd { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ReduceL1 { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ReduceL2 { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ReduceLogSum { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ReduceLogSumExp { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ReduceSumSquare { axes: Option<Vec<i64>>, keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 },
        ArgMax { axis: i64 = 0, keepdims: i64 = 1, select_last_index: i64 = 0 },
        ArgMin { axis: i64 = 0, keepdims: i64 = 1, select_last_index: i64 = 0 },
        CumSum { exclusive: i64 = 0, reverse: i64 = 0 },
        CumProd { exclusive: i64 = 0, reverse: i64 = 0 },
        /// Opset ≥ 13 semantics: normalise along one axis.
        Softmax { axis: i64 = -1 },
        LogSoftmax { axis: i64 = -1 },
        Hardmax { axis: i64 = -1 },
        /// Opset < 13 semantics: flatten to 2-D at `axis`, normalise each row.
        SoftmaxLegacy { axis: i64 = 1 },
        LogSoftmaxLegacy { axis: i64 = 1 },
        HardmaxLegacy { axis: i64 = 1 },
        /// `k` attribute is the pre-opset-10 form.
        TopK { axis: i64 = -1, largest: i64 = 1, sorted: i64 = 1, k: Option<i64> },
        SoftmaxCrossEntropyLoss { ignore_index: Option<i64>, reduction: LossReduction = LossReduction::Mean },
        NegativeLogLikelihoodLoss { ignore_index: Option<i64>, reduction: LossReduction = LossReduction::Mean },
    }
}

/// The attributes shared by the ten `Reduce*` operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReduceParams<'a> {
    /// The `axes` attribute (older opsets; later opsets take input 1).
    pub axes: Option<&'a [i64]>,
    pub keepdims: bool,
    pub noop_with_empty_axes: bool,
}

impl ReduceOp {
    /// The common attributes of a `Reduce*` operator; `None` for the others.
    pub fn reduce_params(&self) -> Option<ReduceParams<'_>> {
        use ReduceOp::*;
        match self {
            ReduceSum { axes, keepdims, noop_with_empty_axes }
            | ReduceMean { axes, keepdims, noop_with_empty_axes }
            | ReduceMax { axes, keepdims, noop_with_empty_axes }
            | ReduceMin { axes, keepdims, noop_with_empty_axes }
            | ReduceProd { axes, keepdims, noop_with_empty_axes }
            | ReduceL1 { axes, keepdims, noop_with_empty_axes }
            | ReduceL2 { axes, keepdims, noop_with_empty_axes }
            | ReduceLogSum { axes, keepdims, noop_with_empty_axes }
            | ReduceLogSumExp { axes, keepdims, noop_with_empty_axes }
            | ReduceSumSquare { axes, keepdims, noop_with_empty_axes } => Some(ReduceParams {
                axes: axes.as_deref(),
                keepdims: *keepdims != 0,
                noop_with_empty_axes: *noop_with_empty_axes != 0,
            }),
            _ => None,
        }
    }
}

use crate::dtype::DType;
use crate::shape::{In, Outs, first, reduce_shape, same, t};

impl ReduceOp {
    /// Shape inference: the input shape with the reduced axes kept as 1 or
    /// dropped; scans and normalisations keep it.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, ins: &[In]) -> Outs {
        use ReduceOp::*;
        let (d0, s0) = first(ins);
        let keep = |k: &i64| *k != 0;
        Ok(match self {
            ReduceSum { .. }
            | ReduceMean { .. }
            | ReduceMax { .. }
            | ReduceMin { .. }
            | ReduceProd { .. }
            | ReduceL1 { .. }
            | ReduceL2 { .. }
            | ReduceLogSum { .. }
            | ReduceLogSumExp { .. }
            | ReduceSumSquare { .. } => {
                let Some(p) = self.reduce_params() else { return Ok(same(d0, None)) };
                let axes = match ins.get(1).map(|i| i.ints()) {
                    Some(Some(a)) => Some(a),
                    Some(None) => return Ok(same(d0, None)),
                    None => p.axes.map(<[i64]>::to_vec),
                };
                same(d0, reduce_shape(s0.as_deref(), axes, p.keepdims, p.noop_with_empty_axes))
            }
            ArgMax { axis, keepdims, .. } | ArgMin { axis, keepdims, .. } => {
                vec![Some(t(DType::I64, reduce_shape(s0.as_deref(), Some(vec![*axis]), keep(keepdims), false)))]
            }
            TopK { .. } => vec![d0.map(|d| t(d, None)), Some(t(DType::I64, None))],
            SoftmaxCrossEntropyLoss { .. } | NegativeLogLikelihoodLoss { .. } => {
                vec![d0.map(|d| t(d, None)), d0.map(|d| t(d, None))]
            }
            CumSum { .. }
            | CumProd { .. }
            | Softmax { .. }
            | LogSoftmax { .. }
            | Hardmax { .. }
            | SoftmaxLegacy { .. }
            | LogSoftmaxLegacy { .. }
            | HardmaxLegacy { .. } => same(d0, s0),
        })
    }
}
