//! Elementwise operators: unary math, activations, binary arithmetic,
//! comparison and logic, variadic ops, and type conversion.

use crate::dtype::DType;

crate::op_family! {
    /// Elementwise operators.
    pub enum ElementwiseOp {
        // unary math
        Abs {}, Acos {}, Acosh {}, Asin {}, Asinh {}, Atan {}, Atanh {}, Ceil {}, Cos {}, Cosh {},
        Erf {}, Exp {}, Floor {}, Log {}, Neg {}, Reciprocal {}, Round {}, Sign {}, Sin {}, Sinh {},
        Sqrt {}, Tan {}, Tanh {}, Not {}, BitwiseNot {}, IsNaN {},
        IsInf { detect_negative: i64 = 1, detect_positive: i64 = 1 },
        // activations
        Relu {}, Sigmoid {}, Softplus {}, Softsign {}, HardSwish {}, Mish {},
        Elu { alpha: f32 = 1.0 },
        Celu { alpha: f32 = 1.0 },
        Selu { alpha: f32 = 1.673_263_2, gamma: f32 = 1.050_701 },
        LeakyRelu { alpha: f32 = 0.01 },
        ThresholdedRelu { alpha: f32 = 1.0 },
        HardSigmoid { alpha: f32 = 0.2, beta: f32 = 0.5 },
        Gelu { approximate: String = "none".into() },
        Shrink { bias: f32 = 0.0, lambd: f32 = 0.5 },
        Swish { alpha: f32 = 1.0 },
        PRelu {},
        /// Clip; `min`/`max` attributes are the pre-opset-11 form.
        Clip { min: Option<f32>, max: Option<f32> },
        // binary arithmetic
        Add {}, Sub {}, Mul {}, Div {}, Pow {},
        Mod { fmod: i64 = 0 },
        BitShift { direction: String },
        BitwiseAnd {}, BitwiseOr {}, BitwiseXor {},
        // comparison / logic
        Equal {}, Greater {}, GreaterOrEqual {}, Less {}, LessOrEqual {}, And {}, Or {}, Xor {},
        // variadic
        Max {}, Min {}, Mean {}, Sum {},
        Where {},
        // conversion
        Identity {},
        Cast { to: DType, saturate: i64 = 1, round_mode: String = "up".into() },
        CastLike { saturate: i64 = 1, round_mode: String = "up".into() },
        BitCast { to: DType },
    }
}
