//! Reference kernels for the spatial part of `strata_ir::ops::NnOp` (see
//! `nn.rs`): convolutions (`conv`), pooling and ROI operators (`pool`),
//! matrix products (`matmul`) and resampling (`resample`).
//!
//! This file holds the dispatcher and the helpers the submodules share:
//! reading per-axis attributes, the sliding-window geometry of convolution
//! and pooling (output size and padding, including `auto_pad` and
//! `ceil_mode`) and a multi-index counter.

use strata_ir::ops::NnOp;

use crate::bail;
use crate::error::{KResult, KernelError};
use crate::ops::{Args, Ctx};
use crate::value::{Tensor, Value};
use strata_ir::window::{self, AutoPad};

mod conv;
mod matmul;
mod pool;
mod resample;

/// Run one operator of this part of the family.
pub fn run(op: &NnOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use pool::Reduce;
    match op {
        NnOp::Conv { auto_pad, dilations, group, kernel_shape, pads, strides } => {
            let geo = ConvAttrs { auto_pad: *auto_pad, dilations, kernel_shape, pads, strides };
            conv::conv(args, &geo, *group)
        }
        NnOp::ConvTranspose {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            output_padding,
            output_shape,
            pads,
            strides,
        } => {
            let geo = ConvAttrs { auto_pad: *auto_pad, dilations, kernel_shape, pads, strides };
            conv::conv_transpose(args, &geo, *group, output_padding, output_shape)
        }
        NnOp::DeformConv { dilations, group, kernel_shape, offset_group, pads, strides } => {
            let geo = ConvAttrs { auto_pad: AutoPad::NotSet, dilations, kernel_shape, pads, strides };
            conv::deform_conv(args, &geo, *group, *offset_group)
        }
        NnOp::Col2Im { dilations, pads, strides } => conv::col2im(args, dilations, pads, strides),
        NnOp::MaxPool { auto_pad, ceil_mode, dilations, kernel_shape, pads, storage_order, strides } => {
            let attrs =
                PoolAttrs { auto_pad: *auto_pad, ceil_mode: *ceil_mode, dilations, kernel_shape, pads, strides };
            pool::pool(args.tensor(0)?, &attrs, Reduce::Max { column_major: *storage_order != 0 })
        }
        NnOp::AveragePool { auto_pad, ceil_mode, count_include_pad, dilations, kernel_shape, pads, strides } => {
            let attrs =
                PoolAttrs { auto_pad: *auto_pad, ceil_mode: *ceil_mode, dilations, kernel_shape, pads, strides };
            pool::pool(args.tensor(0)?, &attrs, Reduce::Avg { count_include_pad: *count_include_pad })
        }
        NnOp::LpPool { auto_pad, ceil_mode, dilations, kernel_shape, p, pads, strides } => {
            let attrs =
                PoolAttrs { auto_pad: *auto_pad, ceil_mode: *ceil_mode, dilations, kernel_shape, pads, strides };
            pool::pool(args.tensor(0)?, &attrs, Reduce::Lp { p: *p })
        }
        NnOp::GlobalAveragePool {} => pool::global_pool(args.tensor(0)?, Reduce::Avg { count_include_pad: false }),
        NnOp::GlobalMaxPool {} => pool::global_pool(args.tensor(0)?, Reduce::Max { column_major: false }),
        NnOp::GlobalLpPool { p } => pool::global_pool(args.tensor(0)?, Reduce::Lp { p: *p }),
        NnOp::MaxUnpool { kernel_shape, pads, strides } => pool::max_unpool(args, kernel_shape, pads, strides),
        NnOp::MaxRoiPool { pooled_shape, spatial_scale } => {
            pool::max_roi_pool(args, pooled_shape, *spatial_scale as f64)
        }
        NnOp::RoiAlign {
            coordinate_transformation_mode,
            mode,
            output_height,
            output_width,
            sampling_ratio,
            spatial_scale,
        } => pool::roi_align(
            args,
            *coordinate_transformation_mode,
            *mode,
            (*output_height, *output_width),
            *sampling_ratio,
            *spatial_scale as f64,
        ),
        NnOp::Gemm { alpha, beta, transA, transB, broadcast: _ } => {
            matmul::gemm(args, *alpha as f64, *beta as f64, *transA != 0, *transB != 0)
        }
        NnOp::MatMul {} => matmul::matmul(args.tensor(0)?, args.tensor(1)?),
        NnOp::Einsum { equation } => matmul::einsum(args, equation),
        NnOp::GridSample { align_corners, mode, padding_mode } => {
            resample::grid_sample(args, *align_corners != 0, *mode, *padding_mode)
        }
        NnOp::AffineGrid { align_corners } => resample::affine_grid(args, *align_corners != 0),
        NnOp::Resize { .. } => match op.resize_attrs() {
            Some(attrs) => resample::resize(args, &attrs),
            None => bail!("Resize without Resize attributes"),
        },
        NnOp::Upsample { mode, scales } => resample::upsample(args, *mode, scales.as_deref()),
        // Routed here only by `nn.rs`, whose match names every operator.
        other => bail!("internal: {} is not an operator of this part of the family", other.name()),
    }
}

/// The geometry attributes shared by the convolution operators.
struct ConvAttrs<'a> {
    auto_pad: AutoPad,
    dilations: &'a Option<Vec<i64>>,
    kernel_shape: &'a Option<Vec<i64>>,
    pads: &'a Option<Vec<i64>>,
    strides: &'a Option<Vec<i64>>,
}

/// The geometry attributes shared by the pooling operators.
struct PoolAttrs<'a> {
    auto_pad: AutoPad,
    ceil_mode: bool,
    dilations: &'a Option<Vec<i64>>,
    kernel_shape: &'a [i64],
    pads: &'a Option<Vec<i64>>,
    strides: &'a Option<Vec<i64>>,
}

/// [`window::axis_attr`] as a kernel error.
fn axis_attr(v: &Option<Vec<i64>>, n: usize, default: i64, what: &str) -> KResult<Vec<usize>> {
    window::axis_attr(v, n, default, what).map_err(KernelError::new)
}

/// [`window::positive`] as a kernel error.
fn positive(v: &[i64], n: usize, what: &str) -> KResult<Vec<usize>> {
    window::positive(v, n, what).map_err(KernelError::new)
}

/// [`window::pads_attr`] as a kernel error.
fn pads_attr(pads: &Option<Vec<i64>>, n: usize) -> KResult<(Vec<i64>, Vec<i64>)> {
    window::pads_attr(pads, n).map_err(KernelError::new)
}

/// [`window::Window::new`] (geometry shared with every backend) as a kernel error.
fn window(
    input: &[usize],
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pads: &Option<Vec<i64>>,
    auto_pad: AutoPad,
    ceil_mode: bool,
) -> KResult<window::Window> {
    window::Window::new(input, kernel, strides, dilations, pads, auto_pad, ceil_mode).map_err(KernelError::new)
}

/// Advance a row-major multi-index over `shape`; false once it wraps back
/// to all zeros (every index has been visited).
fn next_index(idx: &mut [usize], shape: &[usize]) -> bool {
    for k in (0..shape.len()).rev() {
        idx[k] += 1;
        if idx[k] < shape[k] {
            return true;
        }
        idx[k] = 0;
    }
    false
}

/// Every multi-index of `shape` in row-major order.
fn all_indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut idx = vec![0; shape.len()];
    loop {
        out.push(idx.clone());
        if !next_index(&mut idx, shape) {
            break;
        }
    }
    out
}

/// Check that `x` has a batch axis, a channel axis and at least
/// `min_spatial` spatial axes; returns (N, C, spatial sizes).
fn split_nc(x: &Tensor, min_spatial: usize, what: &str) -> KResult<(usize, usize, Vec<usize>)> {
    if x.rank() < 2 + min_spatial {
        bail!("{what} must have rank at least {} (N, C, spatial...), got shape {:?}", 2 + min_spatial, x.shape);
    }
    Ok((x.shape[0], x.shape[1], x.shape[2..].to_vec()))
}
