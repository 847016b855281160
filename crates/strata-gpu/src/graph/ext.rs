//! Routing of the operator families added beside the original kernels:
//! the family matches of `graph.rs` fall through to these, which call the
//! per-family modules (`attention`, `loss`, `generate`, ...).

use super::*;

impl Exec<'_> {
    /// Neural-network operators not handled in `graph.rs`.
    pub(super) fn nn_ext(&self, ctx: &mut Ctx, o: &NnOp) -> Result<Vec<GpuTensor>> {
        match o {
            NnOp::Attention { .. } => self.attention(ctx, o),
            NnOp::FlexAttention { scale, score_mod: None, prob_mod: None, softmax_precision } => {
                // Without score/probability modifiers FlexAttention is plain
                // scaled dot-product attention of 4-D inputs.
                let plain = NnOp::Attention {
                    is_causal: 0,
                    kv_num_heads: None,
                    q_num_heads: None,
                    qk_matmul_output_mode: 0,
                    scale: *scale,
                    softcap: 0.0,
                    softmax_precision: *softmax_precision,
                    left_window_size: -1,
                    right_window_size: -1,
                };
                if self.input(0)?.shape.len() != 4 {
                    return Err(GpuError::Shape("FlexAttention inputs must have rank 4".into()));
                }
                self.attention(ctx, &plain)
            }
            NnOp::LpNormalization { axis, p } => self.lp_norm(ctx, *axis, *p),
            NnOp::SwiGLU { alpha } => self.swiglu(ctx, *alpha),
            NnOp::LpPool { .. } => self.pool_nd(ctx, o),
            NnOp::CausalConvWithState { activation } => self.causal_conv(ctx, activation),
            NnOp::LinearAttention { .. } => self.linear_attention(ctx, o),
            NnOp::AffineGrid { align_corners } => self.affine_grid(ctx, *align_corners),
            NnOp::Einsum { equation } => self.einsum(ctx, equation),
            NnOp::Col2Im { dilations, pads, strides } => self.col2im(ctx, dilations, pads, strides),
            NnOp::RotaryEmbedding { interleaved, num_heads, rotary_embedding_dim } => {
                self.rotary(ctx, *interleaved, *num_heads, *rotary_embedding_dim)
            }
            NnOp::GridSample { align_corners, mode, padding_mode } => {
                self.grid_sample(ctx, *align_corners, mode, padding_mode)
            }
            other => Err(GpuError::Unsupported(format!("operator {}", other.name()))),
        }
    }

    /// Tensor operators not handled in `graph.rs`.
    pub(super) fn tensor_ext(&self, ctx: &mut Ctx, t: &T) -> Result<Vec<GpuTensor>> {
        match t {
            T::ConstantOfShape { .. } | T::Range {} | T::EyeLike { .. } => self.generate(ctx, t),
            T::ScatterElements { axis, .. } | T::Scatter { axis } => self.scatter_elements(ctx, *axis),
            T::ScatterND { .. } => self.scatter_nd(ctx),
            T::TensorScatter { axis, mode } => self.tensor_scatter(ctx, *axis, mode),
            T::OneHot { axis } => self.one_hot(ctx, *axis),
            T::GatherND { batch_dims } => self.gather_nd(ctx, *batch_dims),
            T::ReverseSequence { batch_axis, time_axis } => self.reverse_sequence(ctx, *batch_axis, *time_axis),
            T::CenterCropPad { axes } => self.center_crop_pad(ctx, axes),
            other => Err(GpuError::Unsupported(format!("operator {}", other.name()))),
        }
    }

    /// Signal-processing operators.
    pub(super) fn signal_ext(&self, ctx: &mut Ctx, s: &strata_ir::ops::SignalOp) -> Result<Vec<GpuTensor>> {
        use strata_ir::ops::SignalOp;
        match s {
            SignalOp::DFT { axis, inverse, onesided } => self.dft(ctx, *axis, *inverse != 0, *onesided != 0),
            other => Err(GpuError::Unsupported(format!("operator {}", other.name()))),
        }
    }

    /// Reduction-family operators not handled in `graph.rs`.
    pub(super) fn reduce_ext(&self, ctx: &mut Ctx, r: &R) -> Result<Vec<GpuTensor>> {
        match r {
            R::SoftmaxCrossEntropyLoss { .. } | R::NegativeLogLikelihoodLoss { .. } => self.loss(ctx, r),
            R::Hardmax { axis } => self.hardmax(ctx, *axis, false),
            R::HardmaxLegacy { axis } => self.hardmax(ctx, *axis, true),
            R::CumSum { exclusive, reverse } => self.cumulate(ctx, false, *exclusive, *reverse),
            R::CumProd { exclusive, reverse } => self.cumulate(ctx, true, *exclusive, *reverse),
            R::TopK { axis, largest, .. } => self.top_k(ctx, *axis, *largest),
            other => Err(GpuError::Unsupported(format!("operator {}", other.name()))),
        }
    }
}
