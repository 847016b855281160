//! Elementwise operators: unary math, activations, binary arithmetic,
//! comparison and logic, variadic ops, and type conversion.

use crate::dtype::{DType, E8M0Round};

crate::attr::attr_enum! {
    /// Gelu's `approximate`: the exact `erf` form or the `tanh` approximation.
    pub enum GeluApprox {
        None = "none",
        Tanh = "tanh",
    }
}

crate::attr::attr_enum! {
    /// BitShift's `direction`.
    pub enum ShiftDirection {
        Left = "LEFT",
        Right = "RIGHT",
    }
}

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
        Gelu { approximate: GeluApprox = GeluApprox::None },
        Shrink { bias: f32 = 0.0, lambd: f32 = 0.5 },
        Swish { alpha: f32 = 1.0 },
        PRelu {},
        /// Clip; `min`/`max` attributes are the pre-opset-11 form.
        Clip { min: Option<f32>, max: Option<f32> },
        // binary arithmetic
        Add {}, Sub {}, Mul {}, Div {}, Pow {},
        Mod { fmod: i64 = 0 },
        BitShift { direction: ShiftDirection },
        BitwiseAnd {}, BitwiseOr {}, BitwiseXor {},
        // comparison / logic
        Equal {}, Greater {}, GreaterOrEqual {}, Less {}, LessOrEqual {}, And {}, Or {}, Xor {},
        // variadic
        Max {}, Min {}, Mean {}, Sum {},
        Where {},
        // conversion
        Identity {},
        Cast { to: DType, saturate: i64 = 1, round_mode: E8M0Round = E8M0Round::Up },
        CastLike { saturate: i64 = 1, round_mode: E8M0Round = E8M0Round::Up },
        BitCast { to: DType },
    }
}

use crate::shape::{In, Outs, broadcast_all, first, same, t};

impl ElementwiseOp {
    /// Shape inference: output types from the inputs' (the first input's
    /// shape, or the inputs broadcast together).
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, ins: &[In]) -> Outs {
        use ElementwiseOp as E;
        let (d0, s0) = first(ins);
        Ok(match self {
            // unary: the input's type
            E::Abs {}
            | E::Acos {}
            | E::Acosh {}
            | E::Asin {}
            | E::Asinh {}
            | E::Atan {}
            | E::Atanh {}
            | E::Ceil {}
            | E::Cos {}
            | E::Cosh {}
            | E::Erf {}
            | E::Exp {}
            | E::Floor {}
            | E::Log {}
            | E::Neg {}
            | E::Reciprocal {}
            | E::Round {}
            | E::Sign {}
            | E::Sin {}
            | E::Sinh {}
            | E::Sqrt {}
            | E::Tan {}
            | E::Tanh {}
            | E::BitwiseNot {}
            | E::Relu {}
            | E::Sigmoid {}
            | E::Softplus {}
            | E::Softsign {}
            | E::HardSwish {}
            | E::Mish {}
            | E::Elu { .. }
            | E::Celu { .. }
            | E::Selu { .. }
            | E::LeakyRelu { .. }
            | E::ThresholdedRelu { .. }
            | E::HardSigmoid { .. }
            | E::Gelu { .. }
            | E::Shrink { .. }
            | E::Swish { .. }
            | E::Clip { .. } => same(d0, s0),
            // broadcasting: the first input's element type
            E::Add {}
            | E::Sub {}
            | E::Mul {}
            | E::Div {}
            | E::Pow {}
            | E::Mod { .. }
            | E::BitShift { .. }
            | E::BitwiseAnd {}
            | E::BitwiseOr {}
            | E::BitwiseXor {}
            | E::Max {}
            | E::Min {}
            | E::Mean {}
            | E::Sum {}
            | E::PRelu {} => same(d0, broadcast_all(ins)?),
            E::Equal {}
            | E::Greater {}
            | E::GreaterOrEqual {}
            | E::Less {}
            | E::LessOrEqual {}
            | E::And {}
            | E::Or {}
            | E::Xor {} => vec![Some(t(DType::Bool, broadcast_all(ins)?))],
            E::IsNaN {} | E::IsInf { .. } | E::Not {} => vec![Some(t(DType::Bool, s0))],
            E::Where {} => {
                let d = ins.get(1).and_then(|i| i.dtype());
                vec![d.map(|d| Ok::<_, String>(t(d, broadcast_all(ins)?))).transpose()?]
            }
            E::Cast { to, .. } | E::BitCast { to } => vec![Some(t(*to, s0))],
            E::CastLike { .. } => vec![ins.get(1).and_then(|i| i.dtype()).map(|d| t(d, s0))],
            E::Identity {} => vec![ins.first().and_then(|i| i.ty.cloned())],
        })
    }

    /// How far a backend's float32 result may be from the correctly
    /// rounded one, in units in the last place; `None` if the operator is
    /// exact (selection, sign manipulation, rounding, comparison, logic,
    /// conversion). The conformance policy (`strata-conformance`'s
    /// `tolerance.rs`) applies it, doubled for narrower floats.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn ulp_budget(&self) -> Option<u64> {
        use ElementwiseOp as E;
        Some(match self {
            E::Abs {}
            | E::Neg {}
            | E::Relu {}
            | E::Ceil {}
            | E::Floor {}
            | E::Round {}
            | E::Sign {}
            | E::Max {}
            | E::Min {}
            | E::Where {}
            | E::Clip { .. }
            | E::Identity {}
            | E::Cast { .. }
            | E::CastLike { .. }
            | E::BitCast { .. }
            | E::IsNaN {}
            | E::IsInf { .. }
            | E::Not {}
            | E::BitwiseNot {}
            | E::BitShift { .. }
            | E::BitwiseAnd {}
            | E::BitwiseOr {}
            | E::BitwiseXor {}
            | E::Equal {}
            | E::Greater {}
            | E::GreaterOrEqual {}
            | E::Less {}
            | E::LessOrEqual {}
            | E::And {}
            | E::Or {}
            | E::Xor {}
            | E::ThresholdedRelu { .. } => return None,
            E::Add {} | E::Sub {} | E::Mul {} | E::LeakyRelu { .. } | E::PRelu {} | E::Shrink { .. } => 2,
            E::HardSigmoid { .. } | E::HardSwish {} | E::Mean {} | E::Sum {} | E::Mod { .. } => 4,
            E::Div {} | E::Sqrt {} | E::Reciprocal {} | E::Softsign {} => 4,
            E::Exp {}
            | E::Log {}
            | E::Tanh {}
            | E::Sigmoid {}
            | E::Erf {}
            | E::Elu { .. }
            | E::Celu { .. }
            | E::Selu { .. }
            | E::Softplus {}
            | E::Swish { .. }
            | E::Sinh {}
            | E::Cosh {}
            | E::Asinh {}
            | E::Acosh {}
            | E::Atanh {} => 16,
            E::Pow {}
            | E::Gelu { .. }
            | E::Mish {}
            | E::Sin {}
            | E::Cos {}
            | E::Tan {}
            | E::Asin {}
            | E::Acos {}
            | E::Atan {} => 64,
        })
    }
}
