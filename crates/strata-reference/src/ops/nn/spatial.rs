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
use strata_ir::window::{self, WindowAttrs};

mod conv;
mod matmul;
mod pool;
mod resample;

/// Run one operator of this part of the family.
pub fn run(op: &NnOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use pool::Reduce;
    match op {
        NnOp::Conv { group, .. } => conv::conv(args, &window_attrs(op)?, *group),
        NnOp::ConvTranspose { group, output_padding, output_shape, .. } => {
            conv::conv_transpose(args, &window_attrs(op)?, *group, output_padding, output_shape)
        }
        NnOp::DeformConv { group, offset_group, .. } => {
            conv::deform_conv(args, &window_attrs(op)?, *group, *offset_group)
        }
        NnOp::Col2Im { .. } => conv::col2im(args, &window_attrs(op)?),
        NnOp::MaxPool { storage_order, .. } => {
            pool::pool(args.tensor(0)?, &window_attrs(op)?, Reduce::Max { column_major: *storage_order != 0 })
        }
        NnOp::AveragePool { count_include_pad, .. } => {
            pool::pool(args.tensor(0)?, &window_attrs(op)?, Reduce::Avg { count_include_pad: *count_include_pad })
        }
        NnOp::LpPool { p, .. } => pool::pool(args.tensor(0)?, &window_attrs(op)?, Reduce::Lp { p: *p }),
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

/// The window geometry attributes of a convolution or pooling operator
/// (`NnOp::window_attrs`).
fn window_attrs(op: &NnOp) -> KResult<WindowAttrs> {
    match op.window_attrs() {
        Some(a) => Ok(a),
        None => bail!("internal: {} has no window attributes", op.name()),
    }
}

/// [`WindowAttrs::window`] (geometry shared with every backend) as a kernel error.
fn attrs_window(a: &WindowAttrs, input: &[usize], kernel: Vec<usize>) -> KResult<window::Window> {
    a.window(input, kernel).map_err(KernelError::new)
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
