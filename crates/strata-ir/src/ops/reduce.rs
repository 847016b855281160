//! Reductions, scans along an axis, softmax-like normalisations, top-k and losses.

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
        SoftmaxCrossEntropyLoss { ignore_index: Option<i64>, reduction: String = "mean".into() },
        NegativeLogLikelihoodLoss { ignore_index: Option<i64>, reduction: String = "mean".into() },
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
