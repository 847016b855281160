//! The WGSL kernel families (one file each in the top-level `shaders/`
//! folder, embedded at build time) and the constants they share (the op
//! codes of `elementwise.wgsl` and `integer.wgsl` live with their planner,
//! `ops/elementwise.rs`).

use std::sync::OnceLock;

use crate::ops::elementwise::{BroadcastParams, SwigluParams, UnaryParams, binary, unary};
use crate::ops::narrow::{NarrowParams, narrowing};
use crate::ops::quant::QuantParams;
use crate::ops::word_type;
use crate::wgsl::{Family, Params, Part, each, read, tiled, write};

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
    /// Resize / Upsample of the last two axes, cubic and antialiased too (`resize.wgsl`).
    Resize,
    /// Scaled dot-product attention (`attention.wgsl`).
    Attention,
    /// NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss (`loss.wgsl`).
    Loss,
    /// ConstantOfShape, Range, EyeLike, window functions (`generate.wgsl`).
    Generate,
    /// Hardmax, LpNormalization, CumSum/CumProd, TopK along one axis (`rowwise.wgsl`).
    Rowwise,
    /// GridSample (`sample.wgsl`).
    Sample,
    /// ScatterElements, ScatterND, OneHot (`scatter.wgsl`).
    Scatter,
    /// SwiGLU, the training optimisers and Det (`math.wgsl`).
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
    pub const ALL: [Shader; 24] = [
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
        let mut s = crate::wgsl::generate(&self.family());
        if matches!(self, Shader::Elementwise | Shader::Integer) {
            s.push_str(&crate::ops::elementwise::generated_functions(self));
        }
        s
    }

    /// What the family's WGSL shares with the Rust side: op-code tables,
    /// parameter layouts, storage bindings (in the order a dispatch passes
    /// its buffers) and generated entry points.
    pub fn family(self) -> Family {
        match self {
            Shader::Elementwise => {
                const {
                    Family {
                        codes: &[word_type::TABLE, unary::TABLE, binary::TABLE, narrowing::TABLE],
                        layouts: &[
                            UnaryParams::LAYOUT,
                            BroadcastParams::LAYOUT,
                            NarrowParams::LAYOUT,
                            QuantParams::LAYOUT,
                        ],
                        bindings: &[write("out", "u32"), read("a", "u32"), read("b", "u32"), read("c", "u32")],
                        entries: &[
                            each("unary", &UnaryParams::LAYOUT, "n"),
                            each("binary", &BroadcastParams::LAYOUT, "n"),
                            each("where_select", &BroadcastParams::LAYOUT, "n"),
                            each("narrow", &NarrowParams::LAYOUT, "n"),
                            each("quantize", &QuantParams::LAYOUT, "n"),
                            each("dequantize", &QuantParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Movement => {
                use crate::ops::movement as m;
                const {
                    Family {
                        codes: &[m::pad_mode::TABLE],
                        layouts: &[
                            m::CopyStridedParams::LAYOUT,
                            m::GatherParams::LAYOUT,
                            m::PadParams::LAYOUT,
                            m::TriluParams::LAYOUT,
                            m::GatherElementsParams::LAYOUT,
                        ],
                        bindings: &[write("out", "u32"), read("src", "u32"), read("idx", "i32")],
                        entries: &[
                            each("copy_strided", &m::CopyStridedParams::LAYOUT, "n"),
                            each("gather", &m::GatherParams::LAYOUT, "n"),
                            each("pad", &m::PadParams::LAYOUT, "n"),
                            each("trilu", &m::TriluParams::LAYOUT, "n"),
                            each("gather_elements", &m::GatherElementsParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Matmul => {
                const {
                    Family {
                        codes: &[],
                        layouts: &[crate::ops::matmul::MatmulParams::LAYOUT],
                        bindings: &[write("out", "f32"), read("a", "f32"), read("b", "f32"), read("c", "f32")],
                        entries: &[tiled("matmul")],
                        parts: &[TILED],
                    }
                }
            }
            Shader::Conv => {
                use crate::ops::conv::ConvParams;
                const {
                    Family {
                        codes: &[],
                        layouts: &[ConvParams::LAYOUT],
                        bindings: &[write("out", "f32"), read("x", "f32"), read("w", "f32"), read("bias", "f32")],
                        entries: &[
                            tiled("conv2d_gemm"),
                            each("conv2d", &ConvParams::LAYOUT, "n"),
                            each("conv_transpose2d", &ConvParams::LAYOUT, "n"),
                        ],
                        parts: &[TILED],
                    }
                }
            }
            Shader::Pool => {
                use crate::ops::pool::Pool2dParams;
                const {
                    Family {
                        codes: &[],
                        layouts: &[Pool2dParams::LAYOUT],
                        bindings: &[write("out", "f32"), read("x", "f32")],
                        entries: &[each("pool2d", &Pool2dParams::LAYOUT, "n")],
                        parts: &[],
                    }
                }
            }
            Shader::Reduce => {
                use crate::ops::reduce as m;
                const {
                    Family {
                        codes: &[m::reduce_op::TABLE, m::arg_op::TABLE, word_type::TABLE],
                        layouts: &[m::ReduceParams::LAYOUT],
                        bindings: &[write("out", "u32"), read("x", "f32")],
                        entries: &[
                            each("reduce", &m::ReduceParams::LAYOUT, "n"),
                            each("arg_reduce", &m::ReduceParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Norm => {
                use crate::ops::norm as m;
                const {
                    Family {
                        codes: &[m::softmax_mode::TABLE, m::layer_mode::TABLE],
                        layouts: &[
                            m::SoftmaxParams::LAYOUT,
                            m::LayerNormParams::LAYOUT,
                            m::BatchNormParams::LAYOUT,
                            m::LrnParams::LAYOUT,
                        ],
                        bindings: &[
                            write("out", "f32"),
                            read("x", "f32"),
                            read("s", "f32"),
                            read("b", "f32"),
                            read("mean", "f32"),
                            read("variance", "f32"),
                        ],
                        entries: &[
                            each("softmax", &m::SoftmaxParams::LAYOUT, "rows"),
                            each("layer_norm", &m::LayerNormParams::LAYOUT, "rows"),
                            each("row_stats", &m::LayerNormParams::LAYOUT, "rows"),
                            each("batch_norm", &m::BatchNormParams::LAYOUT, "n"),
                            each("lrn", &m::LrnParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Resize => {
                use crate::ops::resize as m;
                const {
                    Family {
                        codes: &[m::interp::TABLE, m::nearest::TABLE],
                        layouts: &[m::ResizeParams::LAYOUT],
                        bindings: &[write("out", "f32"), read("x", "f32")],
                        entries: &[
                            each("resize2d", &m::ResizeParams::LAYOUT, "n"),
                            each("resize_taps", &m::ResizeParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Attention => {
                use crate::ops::attention as m;
                const {
                    Family {
                        codes: &[m::mask_kind::TABLE, m::qk_output::TABLE],
                        layouts: &[m::AttentionParams::LAYOUT],
                        bindings: &[
                            write("out", "f32"),
                            write("scratch", "f32"),
                            write("qk", "f32"),
                            read("q", "f32"),
                            read("k", "f32"),
                            read("v", "f32"),
                            read("mask", "u32"),
                            read("nonpad", "i32"),
                        ],
                        entries: &[each("attention", &m::AttentionParams::LAYOUT, "rows")],
                        parts: &[],
                    }
                }
            }
            Shader::Loss => {
                use crate::ops::loss as m;
                const {
                    Family {
                        codes: &[],
                        layouts: &[m::LossElemParams::LAYOUT, m::LossReduceParams::LAYOUT],
                        bindings: &[
                            write("out", "f32"),
                            write("aux", "f32"),
                            read("src", "f32"),
                            read("tgt", "i32"),
                            read("wt", "f32"),
                        ],
                        entries: &[each("loss_elem", &m::LossElemParams::LAYOUT, "count")],
                        parts: &[],
                    }
                }
            }
            Shader::Generate => {
                use crate::ops::generate::{EyeParams, FillParams, RangeParams, WindowParams};
                const {
                    Family {
                        codes: &[word_type::TABLE],
                        layouts: &[FillParams::LAYOUT, RangeParams::LAYOUT, EyeParams::LAYOUT, WindowParams::LAYOUT],
                        bindings: &[write("out", "u32")],
                        entries: &[
                            each("fill", &FillParams::LAYOUT, "n"),
                            each("range", &RangeParams::LAYOUT, "n"),
                            each("eye", &EyeParams::LAYOUT, "n"),
                            each("window", &WindowParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Rowwise => {
                use crate::ops::rowwise::{CumulateParams, HardmaxParams, LpNormParams, TopKParams};
                const {
                    Family {
                        codes: &[word_type::TABLE],
                        layouts: &[
                            HardmaxParams::LAYOUT,
                            LpNormParams::LAYOUT,
                            CumulateParams::LAYOUT,
                            TopKParams::LAYOUT,
                        ],
                        bindings: &[write("out", "u32"), read("x", "u32"), write("idx", "i32")],
                        entries: &[
                            each("hardmax", &HardmaxParams::LAYOUT, "lines"),
                            each("lp_norm", &LpNormParams::LAYOUT, "lines"),
                            each("cumulate", &CumulateParams::LAYOUT, "lines"),
                            each("top_k", &TopKParams::LAYOUT, "lines"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Sample => {
                use crate::ops::sample::{AffineGridParams, GridSampleParams, grid_mode, grid_padding};
                const {
                    Family {
                        codes: &[grid_mode::TABLE, grid_padding::TABLE],
                        layouts: &[GridSampleParams::LAYOUT, AffineGridParams::LAYOUT],
                        bindings: &[write("out", "f32"), read("x", "f32"), read("grid", "f32")],
                        entries: &[
                            each("grid_sample", &GridSampleParams::LAYOUT, "n"),
                            each("affine_grid", &AffineGridParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Scatter => {
                use crate::ops::scatter::{
                    OneHotParams, ScatterElementsParams, ScatterNdParams, TensorScatterParams, reduction,
                };
                const {
                    Family {
                        codes: &[word_type::TABLE, reduction::TABLE],
                        layouts: &[
                            ScatterElementsParams::LAYOUT,
                            ScatterNdParams::LAYOUT,
                            OneHotParams::LAYOUT,
                            TensorScatterParams::LAYOUT,
                        ],
                        bindings: &[write("out", "u32"), read("idx", "u32"), read("upd", "u32")],
                        entries: &[
                            each("scatter_elements", &ScatterElementsParams::LAYOUT, "lines"),
                            each("scatter_nd", &ScatterNdParams::LAYOUT, "slice"),
                            each("one_hot", &OneHotParams::LAYOUT, "n"),
                            each("tensor_scatter", &TensorScatterParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Math => {
                use crate::ops::linalg::DetParams;
                use crate::ops::training::OptimizerParams;
                const {
                    Family {
                        codes: &[],
                        layouts: &[SwigluParams::LAYOUT, OptimizerParams::LAYOUT, DetParams::LAYOUT],
                        bindings: &[
                            write("out", "f32"),
                            read("a", "f32"),
                            read("b", "f32"),
                            read("c", "f32"),
                            read("d", "f32"),
                        ],
                        entries: &[
                            each("swiglu", &SwigluParams::LAYOUT, "n"),
                            each("optimizer", &OptimizerParams::LAYOUT, "n"),
                            each("det", &DetParams::LAYOUT, "count"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Rotary => {
                use crate::ops::attention::RotaryParams;
                const {
                    Family {
                        codes: &[],
                        layouts: &[RotaryParams::LAYOUT],
                        bindings: &[
                            write("out", "f32"),
                            read("x", "f32"),
                            read("cos_cache", "f32"),
                            read("sin_cache", "f32"),
                            read("pos", "i32"),
                        ],
                        entries: &[each("rotary", &RotaryParams::LAYOUT, "n")],
                        parts: &[],
                    }
                }
            }
            Shader::PoolNd => {
                use crate::ops::pool::{Col2imParams, PoolNdParams, pool_mode};
                const {
                    Family {
                        codes: &[pool_mode::TABLE],
                        layouts: &[PoolNdParams::LAYOUT, Col2imParams::LAYOUT],
                        bindings: &[write("out", "f32"), read("x", "f32"), write("idx", "i32")],
                        entries: &[
                            each("pool_nd", &PoolNdParams::LAYOUT, "n"),
                            each("col2im", &Col2imParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Index => {
                use crate::ops::index::{GatherNdParams, ReverseSequenceParams};
                const {
                    Family {
                        codes: &[],
                        layouts: &[GatherNdParams::LAYOUT, ReverseSequenceParams::LAYOUT],
                        bindings: &[write("out", "u32"), read("src", "u32"), read("idx", "i32")],
                        entries: &[
                            each("gather_nd", &GatherNdParams::LAYOUT, "n"),
                            each("reverse_sequence", &ReverseSequenceParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
            }
            Shader::Sequence => {
                const {
                    Family {
                        codes: &[],
                        layouts: &[crate::ops::sequence::CausalConvParams::LAYOUT],
                        bindings: &[
                            write("out", "f32"),
                            write("state", "f32"),
                            read("x", "f32"),
                            read("w", "f32"),
                            read("bias", "f32"),
                            read("past", "f32"),
                        ],
                        entries: &[],
                        parts: &[],
                    }
                }
            }
            Shader::LinearAttention => {
                use crate::ops::sequence::LinearAttentionParams;
                const {
                    Family {
                        codes: &[],
                        layouts: &[LinearAttentionParams::LAYOUT],
                        bindings: &[
                            write("out", "f32"),
                            write("state", "f32"),
                            read("q", "f32"),
                            read("k", "f32"),
                            read("v", "f32"),
                            read("past", "f32"),
                            read("decay", "f32"),
                            read("beta", "f32"),
                        ],
                        entries: &[each("linear_attention", &LinearAttentionParams::LAYOUT, "n")],
                        parts: &[],
                    }
                }
            }
            Shader::Einsum => {
                use crate::ops::einsum::EinsumParams;
                const {
                    Family {
                        codes: &[],
                        layouts: &[EinsumParams::LAYOUT],
                        bindings: &[
                            write("out", "f32"),
                            read("a0", "f32"),
                            read("a1", "f32"),
                            read("a2", "f32"),
                            read("a3", "f32"),
                        ],
                        entries: &[each("einsum", &EinsumParams::LAYOUT, "n")],
                        parts: &[],
                    }
                }
            }
            Shader::Dft => {
                use crate::ops::signal::DftParams;
                const {
                    Family {
                        codes: &[],
                        layouts: &[DftParams::LAYOUT],
                        bindings: &[write("out", "f32"), read("x", "f32")],
                        entries: &[each("dft", &DftParams::LAYOUT, "n")],
                        parts: &[],
                    }
                }
            }
            Shader::Recurrent => {
                use crate::ops::recurrent::{RecurrentParams, activation, step_mode};
                const {
                    Family {
                        codes: &[step_mode::TABLE, activation::TABLE],
                        layouts: &[RecurrentParams::LAYOUT],
                        bindings: &[
                            write("state", "f32"),
                            write("y", "f32"),
                            read("xw", "f32"),
                            read("rec", "f32"),
                            read("bias", "f32"),
                            read("peep", "f32"),
                            read("lens", "i32"),
                        ],
                        entries: &[each("recurrent_step", &RecurrentParams::LAYOUT, "n")],
                        parts: &[],
                    }
                }
            }
            Shader::Integer => {
                const {
                    Family {
                        codes: &[word_type::TABLE, unary::TABLE, binary::TABLE],
                        layouts: &[UnaryParams::LAYOUT, BroadcastParams::LAYOUT],
                        bindings: &[
                            write("out", "u32"),
                            write("status", "atomic<u32>"),
                            read("a", "u32"),
                            read("b", "u32"),
                        ],
                        entries: &[
                            each("unary", &UnaryParams::LAYOUT, "n"),
                            each("binary", &BroadcastParams::LAYOUT, "n"),
                        ],
                        parts: &[],
                    }
                }
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
/// The tiled product of `matmul.wgsl` and `conv.wgsl`'s implicit GEMM.
pub(crate) const TILED: Part = Part {
    file: "shared/tile.wgsl",
    text: include_str!("../../../shaders/shared/tile.wgsl"),
    consts: &[("TM", TILE), ("TK", 16), ("NI", 256)],
};
/// Invocations per 1-D workgroup.
pub(crate) const WG: u32 = 64;
/// Output tile edge of the tiled products (`matmul.wgsl`'s `TM`, the
/// implicit-GEMM convolution's too): one workgroup per TILE x TILE outputs.
pub(crate) const TILE: u32 = 64;

#[cfg(test)]
mod tests {
    use super::Shader;
    use crate::wgsl::EntryKind;

    #[test]
    fn family_tables_are_consistent() {
        for s in Shader::ALL {
            let f = s.family();
            f.check().unwrap_or_else(|e| panic!("{}: {e}", s.name()));
            for e in f.entries {
                let body = match e.kind {
                    EntryKind::PerItem { .. } => format!("fn {}_at(", e.entry),
                    EntryKind::Tile => format!("fn {}_tile(", e.entry),
                };
                assert!(s.body().contains(&body), "{} has no `{body}` for its generated entry point", s.name());
            }
            assert!(!s.body().contains("@binding("), "{} declares bindings the table should hold", s.name());
        }
    }

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
