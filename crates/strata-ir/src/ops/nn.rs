//! Neural-network operators: convolution, pooling, normalisation, matrix
//! products, attention, resampling, recurrent layers, detection helpers
//! and training optimisers.

use super::recurrent::{Activation, Direction};
use crate::einsum::Equation;
use crate::resample::{
    AspectRatioPolicy, Coord, NearestMode, ResizeAttrs, ResizeMode, SampleMode, SamplePadding, UpsampleMode,
};
use crate::types::GraphId;
use crate::window::{AutoPad, WindowAttrs};

/// `Attention`'s attributes, decoded once for every backend
/// ([`NnOp::attention_attrs`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionAttrs {
    /// Mask keys after the query's position.
    pub is_causal: bool,
    /// Query heads when the inputs are 3-D.
    pub q_num_heads: Option<i64>,
    /// Key/value heads when the inputs are 3-D.
    pub kv_num_heads: Option<i64>,
    /// Which intermediate the optional fourth output holds.
    pub qk_matmul_output_mode: i64,
    /// Scale of the scores (default `1/sqrt(head size)`).
    pub scale: Option<f32>,
    /// Soft cap of the scores (`softcap * tanh(s / softcap)`), 0 for none.
    pub softcap: f32,
    /// Precision of the softmax (an ONNX data type), default the input's.
    pub softmax_precision: Option<i64>,
    /// Keys visible before the query's position (-1: all).
    pub left_window_size: i64,
    /// Keys visible after the query's position (-1: all).
    pub right_window_size: i64,
}

crate::attr::attr_enum! {
    /// Momentum's `mode`: the classic update or Nesterov's.
    pub enum MomentumMode {
        Standard = "standard",
        Nesterov = "nesterov",
    }
}

crate::attr::attr_enum! {
    /// RoiAlign's `coordinate_transformation_mode`: whether the box
    /// corners are shifted by half a pixel.
    pub enum RoiCoord {
        HalfPixel = "half_pixel",
        OutputHalfPixel = "output_half_pixel",
    }
}

crate::attr::attr_enum! {
    /// RoiAlign's `mode`: average or maximum of the samples of a bin.
    pub enum RoiPool {
        Avg = "avg",
        Max = "max",
    }
}

crate::attr::attr_enum! {
    /// CausalConvWithState's `activation` after the convolution.
    pub enum ConvStateActivation {
        None = "none",
        Silu = "silu" | "swish",
    }
}

crate::attr::attr_enum! {
    /// LinearAttention's `update_rule`: whether the state decays (gated)
    /// and whether it is updated by the delta rule.
    pub enum LinearUpdate {
        Linear = "linear",
        Gated = "gated",
        Delta = "delta",
        GatedDelta = "gated_delta",
    }
}

impl LinearUpdate {
    /// `(gated, delta)`: which of the decay and beta inputs the rule reads.
    pub fn gating_and_delta(self) -> (bool, bool) {
        match self {
            LinearUpdate::Linear => (false, false),
            LinearUpdate::Gated => (true, false),
            LinearUpdate::Delta => (false, true),
            LinearUpdate::GatedDelta => (true, true),
        }
    }
}

crate::op_family! {
    /// Neural-network operators.
    pub enum NnOp {
        Conv { auto_pad: AutoPad = AutoPad::NotSet, dilations: Option<Vec<i64>>, group: i64 = 1,
               kernel_shape: Option<Vec<i64>>, pads: Option<Vec<i64>>, strides: Option<Vec<i64>> },
        ConvTranspose { auto_pad: AutoPad = AutoPad::NotSet, dilations: Option<Vec<i64>>, group: i64 = 1,
               kernel_shape: Option<Vec<i64>>, output_padding: Option<Vec<i64>>, output_shape: Option<Vec<i64>>,
               pads: Option<Vec<i64>>, strides: Option<Vec<i64>> },
        DeformConv { dilations: Option<Vec<i64>>, group: i64 = 1, kernel_shape: Option<Vec<i64>>,
               offset_group: i64 = 1, pads: Option<Vec<i64>>, strides: Option<Vec<i64>> },
        MaxPool { auto_pad: AutoPad = AutoPad::NotSet, ceil_mode: bool = false, dilations: Option<Vec<i64>>,
               kernel_shape: Vec<i64>, pads: Option<Vec<i64>>, storage_order: i64 = 0, strides: Option<Vec<i64>> },
        AveragePool { auto_pad: AutoPad = AutoPad::NotSet, ceil_mode: bool = false, count_include_pad: bool = false,
               dilations: Option<Vec<i64>>, kernel_shape: Vec<i64>, pads: Option<Vec<i64>>, strides: Option<Vec<i64>> },
        LpPool { auto_pad: AutoPad = AutoPad::NotSet, ceil_mode: bool = false, dilations: Option<Vec<i64>>,
               kernel_shape: Vec<i64>, p: i64 = 2, pads: Option<Vec<i64>>, strides: Option<Vec<i64>> },
        GlobalAveragePool {}, GlobalMaxPool {},
        GlobalLpPool { p: i64 = 2 },
        MaxUnpool { kernel_shape: Vec<i64>, pads: Option<Vec<i64>>, strides: Option<Vec<i64>> },
        MaxRoiPool { pooled_shape: Vec<i64>, spatial_scale: f32 = 1.0 },
        RoiAlign { coordinate_transformation_mode: RoiCoord = RoiCoord::HalfPixel, mode: RoiPool = RoiPool::Avg,
               output_height: i64 = 1, output_width: i64 = 1, sampling_ratio: i64 = 0, spatial_scale: f32 = 1.0 },
        Col2Im { dilations: Option<Vec<i64>>, pads: Option<Vec<i64>>, strides: Option<Vec<i64>> },
        BatchNormalization { epsilon: f32 = 1e-5, momentum: f32 = 0.9, training_mode: i64 = 0, spatial: Option<i64> },
        InstanceNormalization { epsilon: f32 = 1e-5 },
        LayerNormalization { axis: i64 = -1, epsilon: f32 = 1e-5, stash_type: i64 = 1 },
        GroupNormalization { epsilon: f32 = 1e-5, num_groups: i64, stash_type: i64 = 1 },
        RMSNormalization { axis: i64 = -1, epsilon: f32 = 1e-5, stash_type: i64 = 1 },
        LpNormalization { axis: i64 = -1, p: i64 = 2 },
        MeanVarianceNormalization { axes: Vec<i64> = vec![0, 2, 3] },
        LRN { alpha: f32 = 1e-4, beta: f32 = 0.75, bias: f32 = 1.0, size: i64 },
        /// `ratio` and `is_test` attributes are the pre-opset-12 form.
        Dropout { seed: Option<i64>, ratio: Option<f32>, is_test: Option<i64> },
        Gemm { alpha: f32 = 1.0, beta: f32 = 1.0, transA: i64 = 0, transB: i64 = 0, broadcast: Option<i64> },
        MatMul {},
        Einsum { equation: Equation },
        Det {},
        GridSample { align_corners: i64 = 0, mode: SampleMode = SampleMode::Linear, padding_mode: SamplePadding = SamplePadding::Zeros },
        AffineGrid { align_corners: i64 = 0 },
        Resize { antialias: bool = false, axes: Option<Vec<i64>>, coordinate_transformation_mode: Coord = Coord::HalfPixel,
               cubic_coeff_a: f32 = -0.75, exclude_outside: bool = false, extrapolation_value: f32 = 0.0,
               keep_aspect_ratio_policy: AspectRatioPolicy = AspectRatioPolicy::Stretch, mode: ResizeMode = ResizeMode::Nearest,
               nearest_mode: NearestMode = NearestMode::RoundPreferFloor },
        /// Upsample (and Resize-10): `scales` attribute is the opset-7 form.
        Upsample { mode: UpsampleMode = UpsampleMode::Nearest, scales: Option<Vec<f32>> },
        Attention { is_causal: i64 = 0, kv_num_heads: Option<i64>, q_num_heads: Option<i64>,
               qk_matmul_output_mode: i64 = 0, scale: Option<f32>, softcap: f32 = 0.0,
               softmax_precision: Option<i64>, left_window_size: i64 = -1, right_window_size: i64 = -1 },
        RotaryEmbedding { interleaved: i64 = 0, num_heads: Option<i64>, rotary_embedding_dim: i64 = 0 },
        SwiGLU { alpha: f32 = 1.0 },
        CausalConvWithState { activation: ConvStateActivation = ConvStateActivation::None },
        /// `scale` 0.0 means `1/sqrt(d_k)`; `chunk_size` is a tuning hint without effect on results.
        LinearAttention { chunk_size: i64 = 64, kv_num_heads: i64, q_num_heads: i64, scale: f32 = 0.0,
               update_rule: LinearUpdate = LinearUpdate::GatedDelta },
        /// Domain `ai.onnx.preview`.
        FlexAttention { prob_mod: Option<GraphId>, scale: Option<f32>, score_mod: Option<GraphId>,
               softmax_precision: Option<i64> },
        NonMaxSuppression { center_point_box: i64 = 0 },
        RNN { activation_alpha: Option<Vec<f32>>, activation_beta: Option<Vec<f32>>, activations: Option<Vec<Activation>>,
               clip: Option<f32>, direction: Direction = Direction::Forward, hidden_size: Option<i64>, layout: i64 = 0 },
        GRU { activation_alpha: Option<Vec<f32>>, activation_beta: Option<Vec<f32>>, activations: Option<Vec<Activation>>,
               clip: Option<f32>, direction: Direction = Direction::Forward, hidden_size: Option<i64>, layout: i64 = 0,
               linear_before_reset: bool = false },
        LSTM { activation_alpha: Option<Vec<f32>>, activation_beta: Option<Vec<f32>>, activations: Option<Vec<Activation>>,
               clip: Option<f32>, direction: Direction = Direction::Forward, hidden_size: Option<i64>, layout: i64 = 0,
               input_forget: bool = false },
        Adagrad { decay_factor: f32 = 0.0, epsilon: f32 = 1e-6, norm_coefficient: f32 = 0.0 },
        Adam { alpha: f32 = 0.9, beta: f32 = 0.999, epsilon: f32 = 1e-6, norm_coefficient: f32 = 0.0, norm_coefficient_post: f32 = 0.0 },
        Momentum { alpha: f32, beta: f32, mode: MomentumMode, norm_coefficient: f32 },
    }
}

impl NnOp {
    /// Subgraphs held by this operator.
    pub fn subgraphs(&self) -> Vec<GraphId> {
        match self {
            NnOp::FlexAttention { prob_mod, score_mod, .. } => {
                prob_mod.iter().chain(score_mod.iter()).copied().collect()
            }
            _ => vec![],
        }
    }

    /// Resize's decoded attributes; `None` for any other operator.
    /// `Attention`'s attributes, and `FlexAttention`'s in the same form
    /// (no causal mask, no windows, no softcap, heads from the shapes).
    pub fn attention_attrs(&self) -> Option<AttentionAttrs> {
        match self {
            NnOp::Attention {
                is_causal,
                kv_num_heads,
                q_num_heads,
                qk_matmul_output_mode,
                scale,
                softcap,
                softmax_precision,
                left_window_size,
                right_window_size,
            } => Some(AttentionAttrs {
                is_causal: *is_causal != 0,
                q_num_heads: *q_num_heads,
                kv_num_heads: *kv_num_heads,
                qk_matmul_output_mode: *qk_matmul_output_mode,
                scale: *scale,
                softcap: *softcap,
                softmax_precision: *softmax_precision,
                left_window_size: *left_window_size,
                right_window_size: *right_window_size,
            }),
            NnOp::FlexAttention { scale, softmax_precision, .. } => Some(AttentionAttrs {
                is_causal: false,
                q_num_heads: None,
                kv_num_heads: None,
                qk_matmul_output_mode: 0,
                scale: *scale,
                softcap: 0.0,
                softmax_precision: *softmax_precision,
                left_window_size: -1,
                right_window_size: -1,
            }),
            _ => None,
        }
    }

    pub fn resize_attrs(&self) -> Option<ResizeAttrs<'_>> {
        match self {
            NnOp::Resize {
                antialias,
                axes,
                coordinate_transformation_mode,
                cubic_coeff_a,
                exclude_outside,
                extrapolation_value,
                keep_aspect_ratio_policy,
                mode,
                nearest_mode,
            } => Some(ResizeAttrs {
                antialias: *antialias,
                axes: axes.as_deref(),
                coordinate_transformation_mode: *coordinate_transformation_mode,
                cubic_coeff_a: *cubic_coeff_a as f64,
                exclude_outside: *exclude_outside,
                extrapolation_value: *extrapolation_value as f64,
                keep_aspect_ratio_policy: *keep_aspect_ratio_policy,
                mode: *mode,
                nearest_mode: *nearest_mode,
            }),
            _ => None,
        }
    }

    /// The window geometry attributes of a convolution (`Conv`,
    /// `ConvTranspose`, `DeformConv`), pooling (`MaxPool`, `AveragePool`,
    /// `LpPool`) or `Col2Im` node (whose kernel is its `block_shape` input);
    /// `None` for any other operator.
    pub fn window_attrs(&self) -> Option<WindowAttrs> {
        let attrs = |auto_pad: &AutoPad,
                     ceil_mode: bool,
                     kernel_shape: Option<&Vec<i64>>,
                     strides: &Option<Vec<i64>>,
                     dilations: &Option<Vec<i64>>,
                     pads: &Option<Vec<i64>>| WindowAttrs {
            auto_pad: *auto_pad,
            ceil_mode,
            kernel_shape: kernel_shape.cloned(),
            strides: strides.clone(),
            dilations: dilations.clone(),
            pads: pads.clone(),
        };
        match self {
            NnOp::Conv { auto_pad, dilations, kernel_shape, pads, strides, .. }
            | NnOp::ConvTranspose { auto_pad, dilations, kernel_shape, pads, strides, .. } => {
                Some(attrs(auto_pad, false, kernel_shape.as_ref(), strides, dilations, pads))
            }
            NnOp::DeformConv { dilations, kernel_shape, pads, strides, .. } => {
                Some(attrs(&AutoPad::NotSet, false, kernel_shape.as_ref(), strides, dilations, pads))
            }
            NnOp::Col2Im { dilations, pads, strides } => {
                Some(attrs(&AutoPad::NotSet, false, None, strides, dilations, pads))
            }
            NnOp::MaxPool { auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, .. }
            | NnOp::AveragePool { auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, .. }
            | NnOp::LpPool { auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, .. } => {
                Some(attrs(auto_pad, *ceil_mode, Some(kernel_shape), strides, dilations, pads))
            }
            _ => None,
        }
    }

    /// Checks between attributes that their types alone cannot express
    /// (run at import and when an artifact is read).
    pub fn check(&self) -> Result<(), String> {
        match self {
            NnOp::RNN { .. } | NnOp::GRU { .. } | NnOp::LSTM { .. } => self.recurrent_attrs().map(drop),
            _ => Ok(()),
        }
    }
}

use crate::dtype::DType;
use crate::shape::{In, Outs, first, same, t};
use crate::types::Dim;

impl NnOp {
    /// Shape inference for matrix products, normalisations, global pooling
    /// and recurrent layers; the others give the first input's element type
    /// with an unknown shape.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, ins: &[In]) -> Outs {
        use NnOp as N;
        let (d0, s0) = first(ins);
        Ok(match self {
            N::MatMul {} => {
                let (a, b) = (ins.first().and_then(|i| i.shape()), ins.get(1).and_then(|i| i.shape()));
                same(d0, crate::shape::matmul(a, b)?)
            }
            N::Gemm { transA, transB, .. } => {
                let (a, b) = (ins.first().and_then(|i| i.shape()), ins.get(1).and_then(|i| i.shape()));
                let shape = match (a, b) {
                    (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => {
                        let m = if *transA != 0 { &a[1] } else { &a[0] };
                        let n = if *transB != 0 { &b[0] } else { &b[1] };
                        Some(vec![m.clone(), n.clone()])
                    }
                    _ => None,
                };
                same(d0, shape)
            }
            N::BatchNormalization { .. }
            | N::InstanceNormalization { .. }
            | N::LpNormalization { .. }
            | N::MeanVarianceNormalization { .. }
            | N::LRN { .. }
            | N::LayerNormalization { .. }
            | N::GroupNormalization { .. }
            | N::RMSNormalization { .. } => same(d0, s0),
            N::Dropout { .. } => vec![d0.map(|d| t(d, s0.clone())), Some(t(DType::Bool, s0))],
            N::GlobalAveragePool {} | N::GlobalMaxPool {} | N::GlobalLpPool { .. } => same(
                d0,
                s0.map(|s| s.iter().enumerate().map(|(i, d)| if i >= 2 { Dim::Known(1) } else { d.clone() }).collect()),
            ),
            N::NonMaxSuppression { .. } => vec![Some(t(DType::I64, Some(vec![Dim::Unknown, Dim::Known(3)])))],
            N::RNN { direction, hidden_size, layout, .. }
            | N::GRU { direction, hidden_size, layout, .. }
            | N::LSTM { direction, hidden_size, layout, .. } => {
                // Y, Y_h (and Y_c for LSTM), from X [seq, batch, input]
                // (layout 0) or [batch, seq, input] (layout 1).
                let dirs = Dim::Known(direction.num_directions() as u64);
                let h = hidden_size.filter(|h| *h > 0).map_or(Dim::Unknown, |h| Dim::Known(h as u64));
                let x = s0.filter(|s| s.len() == 3);
                let (y, yh) = match (x, *layout) {
                    (Some(x), 0) => (
                        Some(vec![x[0].clone(), dirs.clone(), x[1].clone(), h.clone()]),
                        Some(vec![dirs, x[1].clone(), h]),
                    ),
                    (Some(x), 1) => (
                        Some(vec![x[0].clone(), x[1].clone(), dirs.clone(), h.clone()]),
                        Some(vec![x[0].clone(), dirs, h]),
                    ),
                    _ => (None, None),
                };
                let mut outs = vec![d0.map(|d| t(d, y)), d0.map(|d| t(d, yh.clone()))];
                if matches!(self, N::LSTM { .. }) {
                    outs.push(d0.map(|d| t(d, yh)));
                }
                outs
            }
            N::Conv { .. }
            | N::ConvTranspose { .. }
            | N::DeformConv { .. }
            | N::MaxPool { .. }
            | N::AveragePool { .. }
            | N::LpPool { .. }
            | N::MaxUnpool { .. }
            | N::MaxRoiPool { .. }
            | N::RoiAlign { .. }
            | N::Col2Im { .. }
            | N::Einsum { .. }
            | N::Det {}
            | N::GridSample { .. }
            | N::AffineGrid { .. }
            | N::Resize { .. }
            | N::Upsample { .. }
            | N::Attention { .. }
            | N::RotaryEmbedding { .. }
            | N::SwiGLU { .. }
            | N::CausalConvWithState { .. }
            | N::LinearAttention { .. }
            | N::FlexAttention { .. }
            | N::Adagrad { .. }
            | N::Adam { .. }
            | N::Momentum { .. } => same(d0, None),
        })
    }
}
