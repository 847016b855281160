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
    /// Shape inference: element types from the zero points, scales and
    /// `output_dtype` as ONNX defines them; shapes for the elementwise
    /// (de)quantisers and the matrix products (the convolutions' shapes
    /// stay unknown, like `Conv`'s).
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, ins: &[crate::shape::In]) -> crate::shape::Outs {
        use crate::shape::{first, same, t};
        use crate::types::Dim;
        let (_, s0) = first(ins);
        let dt = |i: usize| ins.get(i).and_then(|x| x.dtype());
        let shape = |i: usize| ins.get(i).and_then(|x| x.shape());
        Ok(match self {
            QuantOp::QuantizeLinear { output_dtype, .. } => {
                same(Some(dt(2).or(*output_dtype).unwrap_or(DType::U8)), s0)
            }
            QuantOp::DequantizeLinear { output_dtype, .. } => same(output_dtype.or(dt(1)), s0),
            QuantOp::DynamicQuantizeLinear {} => vec![
                Some(t(DType::U8, s0)),
                Some(t(DType::F32, Some(Vec::<Dim>::new()))),
                Some(t(DType::U8, Some(Vec::<Dim>::new()))),
            ],
            QuantOp::MatMulInteger {} => same(Some(DType::I32), crate::shape::matmul(shape(0), shape(1))?),
            QuantOp::QLinearMatMul {} => same(dt(7).or(dt(0)), crate::shape::matmul(shape(0), shape(3))?),
            QuantOp::ConvInteger { .. } => same(Some(DType::I32), None),
            QuantOp::QLinearConv { .. } => same(dt(7).or(dt(0)), None),
        })
    }

    /// The convolutions' geometry attributes, as [`crate::window`] reads them.
    pub fn window_attrs(&self) -> Option<crate::window::WindowAttrs> {
        match self {
            QuantOp::ConvInteger { auto_pad, dilations, kernel_shape, pads, strides, .. }
            | QuantOp::QLinearConv { auto_pad, dilations, kernel_shape, pads, strides, .. } => {
                Some(crate::window::WindowAttrs {
                    auto_pad: *auto_pad,
                    ceil_mode: false,
                    kernel_shape: kernel_shape.clone(),
                    strides: strides.clone(),
                    dilations: dilations.clone(),
                    pads: pads.clone(),
                })
            }
            QuantOp::QuantizeLinear { .. }
            | QuantOp::DequantizeLinear { .. }
            | QuantOp::DynamicQuantizeLinear {}
            | QuantOp::QLinearMatMul {}
            | QuantOp::MatMulInteger {} => None,
        }
    }
}
