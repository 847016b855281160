//! Quantisation operators and integer convolution / matrix products.

use crate::dtype::DType;
use crate::window::AutoPad;

crate::op_family! {
    /// Quantisation operators.
    pub enum QuantOp {
        QuantizeLinear { axis: i64 = 1, block_size: i64 = 0, output_dtype: Option<DType>, saturate: i64 = 1, precision: Option<DType> },
        DequantizeLinear { axis: i64 = 1, block_size: i64 = 0, output_dtype: Option<DType> },
        DynamicQuantizeLinear {},
        QLinearConv { auto_pad: AutoPad = AutoPad::NotSet, dilations: Option<Vec<i64>>, group: i64 = 1,
               kernel_shape: Option<Vec<i64>>, pads: Option<Vec<i64>>, strides: Option<Vec<i64>> },
        ConvInteger { auto_pad: AutoPad = AutoPad::NotSet, dilations: Option<Vec<i64>>, group: i64 = 1,
               kernel_shape: Option<Vec<i64>>, pads: Option<Vec<i64>>, strides: Option<Vec<i64>> },
        QLinearMatMul {},
        MatMulInteger {},
    }
}

impl QuantOp {
    /// Shape inference: this family's output types stay unknown.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, _ins: &[crate::shape::In]) -> crate::shape::Outs {
        match self {
            QuantOp::QuantizeLinear { .. }
            | QuantOp::DequantizeLinear { .. }
            | QuantOp::DynamicQuantizeLinear { .. }
            | QuantOp::QLinearConv { .. }
            | QuantOp::ConvInteger { .. }
            | QuantOp::QLinearMatMul { .. }
            | QuantOp::MatMulInteger { .. } => Ok(vec![None]),
        }
    }
}
