//! The WGSL kernel families (one file each in the top-level `shaders/`
//! folder, embedded at build time) and their op codes.

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
}

impl Shader {
    /// Every kernel family.
    pub const ALL: [Shader; 7] = [
        Shader::Elementwise,
        Shader::Movement,
        Shader::Matmul,
        Shader::Conv,
        Shader::Pool,
        Shader::Reduce,
        Shader::Norm,
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
        }
    }

    /// The WGSL source.
    pub fn source(self) -> &'static str {
        match self {
            Shader::Elementwise => include_str!("../../../shaders/elementwise.wgsl"),
            Shader::Movement => include_str!("../../../shaders/movement.wgsl"),
            Shader::Matmul => include_str!("../../../shaders/matmul.wgsl"),
            Shader::Conv => include_str!("../../../shaders/conv.wgsl"),
            Shader::Pool => include_str!("../../../shaders/pool.wgsl"),
            Shader::Reduce => include_str!("../../../shaders/reduce.wgsl"),
            Shader::Norm => include_str!("../../../shaders/norm.wgsl"),
            Shader::Resize => include_str!("../../../shaders/resize.wgsl"),
        }
    }
}

/// Words of kernel parameters per dispatch (the uniform block is
/// `array<vec4<u32>, 32>`).
pub(crate) const PARAM_WORDS: usize = 128;
/// Highest tensor rank the strided kernels index.
pub(crate) const MAX_RANK: usize = 8;
/// Invocations per 1-D workgroup.
pub(crate) const WG: u32 = 64;
/// Matmul tile edge.
pub(crate) const TILE: u32 = 16;

/// Unary op codes of `elementwise.wgsl` (`OP` override of `unary`).
pub(crate) mod unary {
    pub const ABS: u32 = 1;
    pub const NEG: u32 = 2;
    pub const RELU: u32 = 3;
    pub const SIGMOID: u32 = 4;
    pub const TANH: u32 = 5;
    pub const EXP: u32 = 6;
    pub const LOG: u32 = 7;
    pub const SQRT: u32 = 8;
    pub const ERF: u32 = 9;
    pub const GELU: u32 = 10;
    pub const GELU_TANH: u32 = 11;
    pub const LEAKY_RELU: u32 = 12;
    pub const HARD_SIGMOID: u32 = 13;
    pub const HARD_SWISH: u32 = 14;
    pub const CLIP: u32 = 15;
    pub const SOFTPLUS: u32 = 16;
    pub const RECIPROCAL: u32 = 17;
    pub const FLOOR: u32 = 18;
    pub const CEIL: u32 = 19;
    pub const ROUND: u32 = 20;
    pub const SIN: u32 = 21;
    pub const COS: u32 = 22;
    pub const ELU: u32 = 23;
    pub const SELU: u32 = 24;
    pub const SOFTSIGN: u32 = 25;
    pub const SIGN: u32 = 26;
    pub const MISH: u32 = 27;
    pub const SWISH: u32 = 28;
    pub const CELU: u32 = 29;
    pub const THRESHOLDED_RELU: u32 = 30;
    pub const SCALE: u32 = 31;
    pub const SHRINK: u32 = 32;
    pub const ATAN: u32 = 33;
    pub const TAN: u32 = 34;
    pub const F32_TO_I32: u32 = 100;
    pub const I32_TO_F32: u32 = 101;
    pub const F32_TO_BOOL: u32 = 102;
    pub const WORD_TO_BOOL: u32 = 103;
    pub const BOOL_TO_F32: u32 = 104;
    pub const NOT: u32 = 105;
    pub const IS_NAN: u32 = 106;
    pub const IS_INF: u32 = 107;
}

/// Binary op codes of `elementwise.wgsl` (`OP` override of `binary`).
pub(crate) mod binary {
    pub const ADD: u32 = 0;
    pub const SUB: u32 = 1;
    pub const MUL: u32 = 2;
    pub const DIV: u32 = 3;
    pub const POW: u32 = 4;
    pub const MAX: u32 = 5;
    pub const MIN: u32 = 6;
    pub const EQ: u32 = 7;
    pub const GT: u32 = 8;
    pub const GE: u32 = 9;
    pub const LT: u32 = 10;
    pub const LE: u32 = 11;
    pub const FMOD: u32 = 12;
    pub const PRELU: u32 = 13;
    pub const AND: u32 = 14;
    pub const OR: u32 = 15;
    pub const XOR: u32 = 16;
}
