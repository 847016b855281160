//! The WGSL kernel families (one file each in the top-level `shaders/`
//! folder, embedded at build time) and the constants they share (the op
//! codes of `elementwise.wgsl` and `integer.wgsl` live with their planner,
//! `ops/elementwise.rs`).

use std::sync::OnceLock;

use crate::ops::elementwise::{BroadcastParams, SwigluParams, UnaryParams, binary, unary};
use crate::ops::narrow::{NarrowParams, narrowing};
use crate::ops::quant::QuantParams;
use crate::ops::word_type;
use crate::wgsl::{Codes, Layout, Params};

/// A WGSL source file of `shaders/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shader {
    /// Unary, broadcasting binary and Where (`elementwise.wgsl`).
    Elementwise,
    /// Strided copies, Gather and Pad (`movement.wgsl`).
    Movement,
    /// Tiled batched matrix product (`matmul.wgsl`).
    Matmul,
    /// Direct 2-D convolution (`conv.wgsl`).
    Conv,
    /// 2-D max and average pooling (`pool.wgsl`).
    Pool,
    /// Reductions over axes (`reduce.wgsl`).
    Reduce,
    /// Softmax, LayerNormalization, BatchNormalization (`norm.wgsl`).
    Norm,
    /// Resize / Upsample of the last two axes (`resize.wgsl`).
    Resize,
    /// Scaled dot-product attention (`attention.wgsl`).
    Attention,
    /// NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss (`loss.wgsl`).
    Loss,
    /// ConstantOfShape, Range, EyeLike (`generate.wgsl`).
    Generate,
    /// Hardmax, LpNormalization, CumSum/CumProd, TopK along one axis (`rowwise.wgsl`).
    Rowwise,
    /// GridSample (`sample.wgsl`).
    Sample,
    /// ScatterElements, ScatterND, OneHot (`scatter.wgsl`).
    Scatter,
    /// SwiGLU (`math.wgsl`).
    Math,
    /// RotaryEmbedding (`rotary.wgsl`).
    Rotary,
    /// Max, average and Lp pooling over 1 to 3 spatial axes (`poolnd.wgsl`).
    PoolNd,
    /// GatherND, ReverseSequence (`index.wgsl`).
    Index,
    /// CausalConvWithState (`sequence.wgsl`).
    Sequence,
    /// LinearAttention (`linear_attention.wgsl`).
    LinearAttention,
    /// Cubic and antialiased Resize (`resize_taps.wgsl`).
    ResizeTaps,
    /// Einsum as one generic contraction (`einsum.wgsl`).
    Einsum,
    /// DFT along one axis (`dft.wgsl`).
    Dft,
    /// One time step of RNN, GRU and LSTM (`recurrent.wgsl`).
    Recurrent,
    /// Integer arithmetic with overflow and division-by-zero checks (`integer.wgsl`).
    Integer,
}

impl Shader {
    /// Every kernel family.
    pub const ALL: [Shader; 25] = [
        Shader::Elementwise,
        Shader::Movement,
        Shader::Matmul,
        Shader::Conv,
        Shader::Pool,
        Shader::Reduce,
        Shader::Norm,
        Shader::Resize,
        Shader::Attention,
        Shader::Loss,
        Shader::Generate,
        Shader::Rowwise,
        Shader::Sample,
        Shader::Scatter,
        Shader::Math,
        Shader::Rotary,
        Shader::PoolNd,
        Shader::Index,
        Shader::Sequence,
        Shader::LinearAttention,
        Shader::ResizeTaps,
        Shader::Einsum,
        Shader::Dft,
        Shader::Recurrent,
        Shader::Integer,
    ];

    /// File name in `shaders/`.
    pub fn name(self) -> &'static str {
        match self {
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Movement => "movement.wgsl",
            Shader::Matmul => "matmul.wgsl",
            Shader::Conv => "conv.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::Norm => "norm.wgsl",
            Shader::Resize => "resize.wgsl",
            Shader::Attention => "attention.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Generate => "generate.wgsl",
            Shader::Rowwise => "rowwise.wgsl",
            Shader::Sample => "sample.wgsl",
            Shader::Scatter => "scatter.wgsl",
            Shader::Math => "math.wgsl",
            Shader::Rotary => "rotary.wgsl",
            Shader::PoolNd => "poolnd.wgsl",
            Shader::Index => "index.wgsl",
            Shader::Sequence => "sequence.wgsl",
            Shader::LinearAttention => "linear_attention.wgsl",
            Shader::ResizeTaps => "resize_taps.wgsl",
            Shader::Einsum => "einsum.wgsl",
            Shader::Dft => "dft.wgsl",
            Shader::Recurrent => "recurrent.wgsl",
            Shader::Integer => "integer.wgsl",
        }
    }

    /// The module's whole WGSL source: `shaders/prelude.wgsl`, the
    /// family's generated parameter structs and op codes (as committed in
    /// `shaders/generated/`), then its own file.
    pub fn source(self) -> &'static str {
        static SOURCES: OnceLock<Vec<String>> = OnceLock::new();
        let all = SOURCES.get_or_init(|| {
            Shader::ALL.iter().map(|s| format!("{PRELUDE}\n{}\n{}", s.generated(), s.body())).collect()
        });
        let at = Shader::ALL.iter().position(|s| *s == self).expect("every shader is in ALL");
        &all[at]
    }

    /// The family's generated WGSL (what `shaders/generated/<name>` holds).
    pub fn generated(self) -> String {
        let (codes, layouts) = self.tables();
        let mut s = crate::wgsl::generate(codes, layouts);
        if matches!(self, Shader::Elementwise | Shader::Integer) {
            s.push_str(&crate::ops::elementwise::generated_functions(self));
        }
        s
    }

    /// The op-code tables and parameter layouts the family's kernels read.
    pub fn tables(self) -> (&'static [Codes], &'static [Layout]) {
        match self {
            Shader::Elementwise => (
                &[word_type::TABLE, unary::TABLE, binary::TABLE, narrowing::TABLE],
                &[UnaryParams::LAYOUT, BroadcastParams::LAYOUT, NarrowParams::LAYOUT, QuantParams::LAYOUT],
            ),
            Shader::Movement => {
                use crate::ops::movement as m;
                (
                    &[m::pad_mode::TABLE],
                    &[
                        m::CopyStridedParams::LAYOUT,
                        m::GatherParams::LAYOUT,
                        m::PadParams::LAYOUT,
                        m::TriluParams::LAYOUT,
                        m::GatherElementsParams::LAYOUT,
                    ],
                )
            }
            Shader::Matmul => (&[], &[crate::ops::matmul::MatmulParams::LAYOUT]),
            Shader::Conv => (&[], &[crate::ops::conv::ConvParams::LAYOUT]),
            Shader::Pool => (&[], &[crate::ops::pool::Pool2dParams::LAYOUT]),
            Shader::Reduce => {
                use crate::ops::reduce as m;
                (&[m::reduce_op::TABLE, m::arg_op::TABLE], &[m::ReduceParams::LAYOUT])
            }
            Shader::Norm => {
                use crate::ops::norm as m;
                (
                    &[m::softmax_mode::TABLE, m::layer_mode::TABLE],
                    &[m::SoftmaxParams::LAYOUT, m::LayerNormParams::LAYOUT, m::BatchNormParams::LAYOUT],
                )
            }
            Shader::Resize => {
                use crate::ops::resize as m;
                (&[m::interp::TABLE, m::nearest::TABLE], &[m::ResizeParams::LAYOUT])
            }
            Shader::Attention => {
                use crate::ops::attention as m;
                (&[m::mask_kind::TABLE, m::qk_output::TABLE], &[m::AttentionParams::LAYOUT])
            }
            Shader::Loss => {
                use crate::ops::loss as m;
                (&[], &[m::LossElemParams::LAYOUT, m::LossReduceParams::LAYOUT])
            }
            Shader::Generate => {
                use crate::ops::generate::{EyeParams, FillParams, RangeParams};
                (&[word_type::TABLE], &[FillParams::LAYOUT, RangeParams::LAYOUT, EyeParams::LAYOUT])
            }
            Shader::Rowwise => {
                use crate::ops::rowwise::{CumulateParams, HardmaxParams, LpNormParams, TopKParams};
                (
                    &[word_type::TABLE],
                    &[HardmaxParams::LAYOUT, LpNormParams::LAYOUT, CumulateParams::LAYOUT, TopKParams::LAYOUT],
                )
            }
            Shader::Sample => {
                use crate::ops::sample::{AffineGridParams, GridSampleParams, grid_mode, grid_padding};
                (&[grid_mode::TABLE, grid_padding::TABLE], &[GridSampleParams::LAYOUT, AffineGridParams::LAYOUT])
            }
            Shader::Scatter => {
                use crate::ops::scatter::{
                    OneHotParams, ScatterElementsParams, ScatterNdParams, TensorScatterParams, reduction,
                };
                (
                    &[word_type::TABLE, reduction::TABLE],
                    &[
                        ScatterElementsParams::LAYOUT,
                        ScatterNdParams::LAYOUT,
                        OneHotParams::LAYOUT,
                        TensorScatterParams::LAYOUT,
                    ],
                )
            }
            Shader::Math => (&[], &[SwigluParams::LAYOUT]),
            Shader::Rotary => (&[], &[crate::ops::attention::RotaryParams::LAYOUT]),
            Shader::PoolNd => {
                use crate::ops::pool::{Col2imParams, PoolNdParams, pool_mode};
                (&[pool_mode::TABLE], &[PoolNdParams::LAYOUT, Col2imParams::LAYOUT])
            }
            Shader::Index => {
                use crate::ops::index::{GatherNdParams, ReverseSequenceParams};
                (&[], &[GatherNdParams::LAYOUT, ReverseSequenceParams::LAYOUT])
            }
            Shader::Sequence => (&[], &[crate::ops::sequence::CausalConvParams::LAYOUT]),
            Shader::LinearAttention => (&[], &[crate::ops::sequence::LinearAttentionParams::LAYOUT]),
            Shader::ResizeTaps => {
                use crate::ops::resize as m;
                (&[m::interp::TABLE], &[m::ResizeParams::LAYOUT])
            }
            Shader::Einsum => (&[], &[crate::ops::einsum::EinsumParams::LAYOUT]),
            Shader::Dft => (&[], &[crate::ops::signal::DftParams::LAYOUT]),
            Shader::Recurrent => {
                use crate::ops::recurrent::{RecurrentParams, activation, step_mode};
                (&[step_mode::TABLE, activation::TABLE], &[RecurrentParams::LAYOUT])
            }
            Shader::Integer => {
                (&[word_type::TABLE, unary::TABLE, binary::TABLE], &[UnaryParams::LAYOUT, BroadcastParams::LAYOUT])
            }
        }
    }

    /// The family's own file in `shaders/`.
    pub fn body(self) -> &'static str {
        match self {
            Shader::Elementwise => include_str!("../../../shaders/elementwise.wgsl"),
            Shader::Movement => include_str!("../../../shaders/movement.wgsl"),
            Shader::Matmul => include_str!("../../../shaders/matmul.wgsl"),
            Shader::Conv => include_str!("../../../shaders/conv.wgsl"),
            Shader::Pool => include_str!("../../../shaders/pool.wgsl"),
            Shader::Reduce => include_str!("../../../shaders/reduce.wgsl"),
            Shader::Norm => include_str!("../../../shaders/norm.wgsl"),
            Shader::Resize => include_str!("../../../shaders/resize.wgsl"),
            Shader::Attention => include_str!("../../../shaders/attention.wgsl"),
            Shader::Loss => include_str!("../../../shaders/loss.wgsl"),
            Shader::Generate => include_str!("../../../shaders/generate.wgsl"),
            Shader::Rowwise => include_str!("../../../shaders/rowwise.wgsl"),
            Shader::Sample => include_str!("../../../shaders/sample.wgsl"),
            Shader::Scatter => include_str!("../../../shaders/scatter.wgsl"),
            Shader::Math => include_str!("../../../shaders/math.wgsl"),
            Shader::Rotary => include_str!("../../../shaders/rotary.wgsl"),
            Shader::PoolNd => include_str!("../../../shaders/poolnd.wgsl"),
            Shader::Index => include_str!("../../../shaders/index.wgsl"),
            Shader::Sequence => include_str!("../../../shaders/sequence.wgsl"),
            Shader::LinearAttention => include_str!("../../../shaders/linear_attention.wgsl"),
            Shader::ResizeTaps => include_str!("../../../shaders/resize_taps.wgsl"),
            Shader::Einsum => include_str!("../../../shaders/einsum.wgsl"),
            Shader::Dft => include_str!("../../../shaders/dft.wgsl"),
            Shader::Recurrent => include_str!("../../../shaders/recurrent.wgsl"),
            Shader::Integer => include_str!("../../../shaders/integer.wgsl"),
        }
    }
}

/// The start of every kernel module (`shaders/prelude.wgsl`).
pub const PRELUDE: &str = include_str!("../../../shaders/prelude.wgsl");

/// Words of kernel parameters per dispatch (the uniform block is
/// `array<vec4<u32>, 32>`).
pub(crate) const PARAM_WORDS: usize = 128;
/// Highest tensor rank the strided kernels index.
pub(crate) const MAX_RANK: usize = 8;
/// Invocations per 1-D workgroup.
pub(crate) const WG: u32 = 64;
/// Output tile edge of the tiled products (`matmul.wgsl`'s `TM`, the
/// implicit-GEMM convolution's too): one workgroup per TILE x TILE outputs.
pub(crate) const TILE: u32 = 64;

#[cfg(test)]
mod tests {
    use super::Shader;

    #[test]
    fn generated_wgsl_is_up_to_date() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders/generated");
        let update = std::env::var_os("STRATA_UPDATE_WGSL").is_some();
        if update {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for s in Shader::ALL {
            let path = dir.join(s.name());
            let fresh = s.generated();
            if update {
                std::fs::write(&path, &fresh).unwrap();
                continue;
            }
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                old == fresh,
                "{} is out of date with strata-gpu's wgsl tables; regenerate with `cargo xtask codegen`",
                path.display()
            );
        }
        let extra: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !Shader::ALL.iter().any(|s| s.name() == n))
            .collect();
        assert!(extra.is_empty(), "files in shaders/generated/ that no kernel family writes: {extra:?}");
    }
}
