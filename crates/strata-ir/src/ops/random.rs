//! Random generators: their outputs are not functions of their inputs, so
//! they are never constant-folded ([`super::Op::is_deterministic`]) and are
//! compared by shape and type only.

use crate::dtype::DType;
use crate::shape::{In, Outs, t};
use crate::types::Dim;

crate::op_family! {
    /// Random generators.
    pub enum RandomOp {
        RandomNormal { dtype: DType = DType::F32, mean: f32 = 0.0, scale: f32 = 1.0, seed: Option<f32>, shape: Vec<i64> },
        RandomUniform { dtype: DType = DType::F32, high: f32 = 1.0, low: f32 = 0.0, seed: Option<f32>, shape: Vec<i64> },
        RandomNormalLike { dtype: Option<DType>, mean: f32 = 0.0, scale: f32 = 1.0, seed: Option<f32> },
        RandomUniformLike { dtype: Option<DType>, high: f32 = 1.0, low: f32 = 0.0, seed: Option<f32> },
        Bernoulli { dtype: Option<DType>, seed: Option<f32> },
        Multinomial { dtype: DType = DType::I32, sample_size: i64 = 1, seed: Option<f32> },
    }
}

impl RandomOp {
    /// Shape inference: the generators with a `shape` attribute give it;
    /// the others' output types stay unknown.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, _ins: &[In]) -> Outs {
        Ok(match self {
            RandomOp::RandomNormal { dtype, shape, .. } | RandomOp::RandomUniform { dtype, shape, .. } => {
                vec![Some(t(*dtype, Some(shape.iter().map(|&d| Dim::Known(d.max(0) as u64)).collect())))]
            }
            RandomOp::RandomNormalLike { .. }
            | RandomOp::RandomUniformLike { .. }
            | RandomOp::Bernoulli { .. }
            | RandomOp::Multinomial { .. } => vec![None],
        })
    }
}
