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
use crate::error::KResult;
use crate::ops::{Args, Ctx};
use crate::value::{Tensor, Value};

mod conv;
mod matmul;
mod pool;
mod resample;

/// Run one operator of this part of the family.
pub fn run(op: &NnOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use pool::Reduce;
    match op {
        NnOp::Conv { auto_pad, dilations, group, kernel_shape, pads, strides } => {
            let geo = ConvAttrs { auto_pad, dilations, kernel_shape, pads, strides };
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
            let geo = ConvAttrs { auto_pad, dilations, kernel_shape, pads, strides };
            conv::conv_transpose(args, &geo, *group, output_padding, output_shape)
        }
        NnOp::DeformConv { dilations, group, kernel_shape, offset_group, pads, strides } => {
            let notset = String::from("NOTSET");
            let geo = ConvAttrs { auto_pad: &notset, dilations, kernel_shape, pads, strides };
            conv::deform_conv(args, &geo, *group, *offset_group)
        }
        NnOp::Col2Im { dilations, pads, strides } => conv::col2im(args, dilations, pads, strides),
        NnOp::MaxPool { auto_pad, ceil_mode, dilations, kernel_shape, pads, storage_order, strides } => {
            let attrs = PoolAttrs { auto_pad, ceil_mode: *ceil_mode != 0, dilations, kernel_shape, pads, strides };
            pool::pool(args.tensor(0)?, &attrs, Reduce::Max { column_major: *storage_order != 0 })
        }
        NnOp::AveragePool { auto_pad, ceil_mode, count_include_pad, dilations, kernel_shape, pads, strides } => {
            let attrs = PoolAttrs { auto_pad, ceil_mode: *ceil_mode != 0, dilations, kernel_shape, pads, strides };
            pool::pool(args.tensor(0)?, &attrs, Reduce::Avg { count_include_pad: *count_include_pad != 0 })
        }
        NnOp::LpPool { auto_pad, ceil_mode, dilations, kernel_shape, p, pads, strides } => {
            let attrs = PoolAttrs { auto_pad, ceil_mode: *ceil_mode != 0, dilations, kernel_shape, pads, strides };
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
            coordinate_transformation_mode,
            mode,
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
            resample::grid_sample(args, *align_corners != 0, mode, padding_mode)
        }
        NnOp::AffineGrid { align_corners } => resample::affine_grid(args, *align_corners != 0),
        NnOp::Resize {
            antialias,
            axes,
            coordinate_transformation_mode,
            cubic_coeff_a,
            exclude_outside,
            extrapolation_value,
            keep_aspect_ratio_policy,
            mode,
            nearest_mode,
        } => {
            let attrs = resample::ResizeAttrs {
                antialias: *antialias != 0,
                axes: axes.as_deref(),
                coordinate_transformation_mode,
                cubic_coeff_a: *cubic_coeff_a as f64,
                exclude_outside: *exclude_outside != 0,
                extrapolation_value: *extrapolation_value as f64,
                keep_aspect_ratio_policy,
                mode,
                nearest_mode,
            };
            resample::resize(args, &attrs)
        }
        NnOp::Upsample { mode, scales } => resample::upsample(args, mode, scales.as_deref()),
        other => bail!("no reference kernel for {}", other.name()),
    }
}

/// The geometry attributes shared by the convolution operators.
struct ConvAttrs<'a> {
    auto_pad: &'a str,
    dilations: &'a Option<Vec<i64>>,
    kernel_shape: &'a Option<Vec<i64>>,
    pads: &'a Option<Vec<i64>>,
    strides: &'a Option<Vec<i64>>,
}

/// The geometry attributes shared by the pooling operators.
struct PoolAttrs<'a> {
    auto_pad: &'a str,
    ceil_mode: bool,
    dilations: &'a Option<Vec<i64>>,
    kernel_shape: &'a [i64],
    pads: &'a Option<Vec<i64>>,
    strides: &'a Option<Vec<i64>>,
}

/// A per-spatial-axis attribute of `n` values that must each be at least 1
/// (strides, dilations, kernel sizes); `default` when absent.
fn axis_attr(v: &Option<Vec<i64>>, n: usize, default: i64, what: &str) -> KResult<Vec<usize>> {
    match v {
        None => Ok(vec![default as usize; n]),
        Some(v) => positive(v, n, what),
    }
}

/// Largest stride, dilation, kernel size or padding accepted. Far beyond
/// any real model, it keeps all window index arithmetic inside `i64`.
const MAX_GEOMETRY: i64 = 1 << 32;

/// Check that `v` has `n` values, each at least 1 (and at most
/// [`MAX_GEOMETRY`]).
fn positive(v: &[i64], n: usize, what: &str) -> KResult<Vec<usize>> {
    if v.len() != n {
        bail!("{what} has {} values, expected {n} (one per spatial axis)", v.len());
    }
    v.iter()
        .map(|&d| {
            if !(1..=MAX_GEOMETRY).contains(&d) {
                bail!("{what} must be positive (and at most {MAX_GEOMETRY}), got {v:?}");
            }
            Ok(d as usize)
        })
        .collect()
}

/// The `pads` attribute as (begin, end) per spatial axis; zeros when absent.
fn pads_attr(pads: &Option<Vec<i64>>, n: usize) -> KResult<(Vec<i64>, Vec<i64>)> {
    match pads {
        None => Ok((vec![0; n], vec![0; n])),
        Some(p) => {
            if p.len() != 2 * n {
                bail!("pads has {} values, expected {} (begin and end per spatial axis)", p.len(), 2 * n);
            }
            if p.iter().any(|&v| !(0..=MAX_GEOMETRY).contains(&v)) {
                bail!("pads must not be negative (nor above {MAX_GEOMETRY}), got {p:?}");
            }
            Ok((p[..n].to_vec(), p[n..].to_vec()))
        }
    }
}

/// Where a sliding window (kernel) sits over the spatial axes: output size
/// and the padding before and after the input, per spatial axis.
struct Window {
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pad_begin: Vec<i64>,
    pad_end: Vec<i64>,
    out: Vec<usize>,
}

impl Window {
    /// Work out the window geometry for spatial input sizes `input`.
    ///
    /// `auto_pad` is NOTSET (explicit `pads`), VALID (no padding) or
    /// SAME_UPPER / SAME_LOWER (output size `ceil(input / stride)`, the
    /// padding split evenly with the odd one at the end / at the start).
    /// With `ceil_mode` the output size is rounded up, dropping a last
    /// window that would start in the end padding.
    #[allow(clippy::too_many_arguments)]
    fn new(
        input: &[usize],
        kernel: Vec<usize>,
        strides: Vec<usize>,
        dilations: Vec<usize>,
        pads: &Option<Vec<i64>>,
        auto_pad: &str,
        ceil_mode: bool,
    ) -> KResult<Window> {
        let n = input.len();
        let (mut pad_begin, mut pad_end) = pads_attr(pads, n)?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            // i128 keeps every product of attribute values from overflowing.
            let (len, k, s, d) = (input[i] as i128, kernel[i] as i128, strides[i] as i128, dilations[i] as i128);
            let extent = (k - 1) * d + 1;
            let size = match auto_pad {
                "NOTSET" | "" => {
                    let span = len + pad_begin[i] as i128 + pad_end[i] as i128 - extent;
                    if span < 0 {
                        bail!("kernel extent {extent} is larger than padded input size along spatial axis {i}");
                    }
                    if ceil_mode {
                        let mut size = (span + s - 1) / s + 1;
                        // The last window must start inside the input or the begin padding.
                        if (size - 1) * s >= len + pad_begin[i] as i128 {
                            size -= 1;
                        }
                        size
                    } else {
                        span / s + 1
                    }
                }
                "VALID" => {
                    pad_begin[i] = 0;
                    pad_end[i] = 0;
                    let span = len - extent;
                    if span < 0 {
                        bail!("kernel extent {extent} is larger than input size {len} along spatial axis {i}");
                    }
                    span / s + 1
                }
                "SAME_UPPER" | "SAME_LOWER" => {
                    let size = (len + s - 1) / s;
                    let total = ((size - 1) * s + extent - len).max(0);
                    let small = total / 2;
                    let (b, e) = if auto_pad == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                    pad_begin[i] = i64::try_from(b).map_err(|_| crate::error::KernelError::new("padding too large"))?;
                    pad_end[i] = i64::try_from(e).map_err(|_| crate::error::KernelError::new("padding too large"))?;
                    size
                }
                other => bail!("unknown auto_pad '{other}'"),
            };
            match usize::try_from(size) {
                Ok(v) => out.push(v),
                Err(_) => bail!("output size {size} along spatial axis {i} is out of range"),
            }
        }
        Ok(Window { kernel, strides, dilations, pad_begin, pad_end, out })
    }

    /// Input coordinate along axis `i` of kernel tap `k` of output position
    /// `o` (negative or past the end when it falls in the padding).
    fn input_pos(&self, i: usize, o: usize, k: usize) -> i64 {
        o as i64 * self.strides[i] as i64 - self.pad_begin[i] + k as i64 * self.dilations[i] as i64
    }
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
