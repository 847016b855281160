//! Reference kernels for `strata_ir::ops::NnOp`, split in two files:
//! `spatial` (convolution, pooling, matrix products, resampling, ROI ops)
//! `attention` (attention variants, rotary embeddings, gated units) and
//! `layers` (normalisation, recurrent layers, detection,
//! training optimisers and the rest).

use strata_ir::ops::NnOp;

use super::{Args, Ctx};
use crate::error::KResult;
use crate::value::Value;

mod attention;
mod layers;
mod spatial;

/// Run one operator of this family: every operator is named here, routed
/// to the submodule holding its kernel (whose own match names only its
/// operators).
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &NnOp, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use NnOp::*;
    match op {
        Conv { .. }
        | ConvTranspose { .. }
        | DeformConv { .. }
        | MaxPool { .. }
        | AveragePool { .. }
        | LpPool { .. }
        | GlobalAveragePool { .. }
        | GlobalMaxPool { .. }
        | GlobalLpPool { .. }
        | MaxUnpool { .. }
        | MaxRoiPool { .. }
        | RoiAlign { .. }
        | Col2Im { .. }
        | Gemm { .. }
        | MatMul { .. }
        | Einsum { .. }
        | GridSample { .. }
        | AffineGrid { .. }
        | Resize { .. }
        | Upsample { .. } => spatial::run(op, args, ctx),
        Attention { .. }
        | RotaryEmbedding { .. }
        | FlexAttention { .. }
        | LinearAttention { .. }
        | CausalConvWithState { .. }
        | SwiGLU { .. } => attention::run(op, args, ctx),
        BatchNormalization { .. }
        | InstanceNormalization { .. }
        | LayerNormalization { .. }
        | GroupNormalization { .. }
        | RMSNormalization { .. }
        | LpNormalization { .. }
        | MeanVarianceNormalization { .. }
        | LRN { .. }
        | Dropout { .. }
        | Det { .. }
        | NonMaxSuppression { .. }
        | RNN { .. }
        | GRU { .. }
        | LSTM { .. }
        | Adagrad { .. }
        | Adam { .. }
        | Momentum { .. } => layers::run(op, args, ctx),
    }
}
