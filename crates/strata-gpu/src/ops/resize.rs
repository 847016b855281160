//! Resize and Upsample of the last two axes: nearest and linear with
//! `resize.wgsl`'s `resize2d`, cubic and antialiased with its `resize_taps` (which
//! takes the same parameters).

use super::*;
use crate::wgsl::{Params, wgsl_codes, wgsl_params};
use strata_ir::resample::UpsampleMode;

wgsl_codes! {
    /// `MODE` of `resize2d` (nearest, linear) and `KIND` of `resize_taps` (linear, cubic).
    pub(crate) mod interp: INTERP { NEAREST = 0, LINEAR = 1, CUBIC = 2 }
    /// Nearest rounding (`nearest_mode` of `ResizeParams`).
    pub(crate) mod nearest: NEAREST { ROUND_PREFER_FLOOR = 0, ROUND_PREFER_CEIL = 1, FLOOR = 2, CEIL = 3 }
}
use strata_ir::resample::{Coord, NearestMode, ResizeMode};

/// How a resize runs: one dispatch of `k` (`resize2d` or `resize_taps`)
/// with the coordinate transformation and nearest rounding codes.
#[derive(Debug)]
pub(crate) struct Plan {
    k: Kernel,
    coord: u32,
    near: u32,
    source: Source,
}

/// Where the output size comes from.
#[derive(Debug)]
enum Source {
    /// Resize: inputs 2 (scales) and 3 (sizes), through the IR's
    /// `resample::geometry` (axes, aspect-ratio policy) for the node's op.
    Resize { op: Box<NnOp> },
    /// Upsample: input 1, or the opset-7 `scales` attribute.
    Upsample { scales: Option<Vec<f32>> },
}

/// Plan Resize or Upsample.
pub(super) fn plan(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match o {
        NnOp::Resize { .. } => {
            let Some(a) = o.resize_attrs() else { return not_implemented(o.name()) };
            v.float(0)?;
            let taps = a.mode == ResizeMode::Cubic || a.antialias;
            let kind = match a.mode {
                ResizeMode::Nearest if taps => return Err("Resize mode 'nearest' with antialias".into()),
                ResizeMode::Nearest => interp::NEAREST,
                ResizeMode::Linear => interp::LINEAR,
                ResizeMode::Cubic => interp::CUBIC,
            };
            let coord = resize_coord_code(a.coordinate_transformation_mode)?;
            let near = resize_nearest_code(a.nearest_mode);
            v.host(2, "scales")?;
            v.host(3, "sizes")?;
            let k = if taps {
                k.get(
                    Shader::Resize,
                    "resize_taps",
                    &[
                        ("KIND", kind),
                        // Held as f32 by the IR: the same bits.
                        ("A_BITS", (a.cubic_coeff_a as f32).to_bits()),
                        ("EXCLUDE_OUTSIDE", u32::from(a.exclude_outside)),
                        ("ANTIALIAS", u32::from(a.antialias)),
                    ],
                )
            } else {
                k.get(Shader::Resize, "resize2d", &[("MODE", kind)])
            };
            Ok(Plan { k, coord, near, source: Source::Resize { op: Box::new(o.clone()) } })
        }
        NnOp::Upsample { mode, scales } => {
            v.float(0)?;
            v.host(1, "scales")?;
            let k = k.get(Shader::Resize, "resize2d", &[("MODE", resize_mode_code(*mode))]);
            // asymmetric coordinates, floor rounding
            Ok(Plan { k, coord: 1, near: nearest::FLOOR, source: Source::Upsample { scales: scales.clone() } })
        }
        other => not_implemented(other.name()),
    }
}

wgsl_params! {
    /// `resize2d` and `resize_taps`: `n` outputs, the last two axes from
    /// `h x w` to `oh x ow`; `coord_mode` and `nearest_mode` are the codes of
    /// `resize_coord_code` and `resize_nearest_code`; `resized_*` = scale *
    /// input length before rounding, bit 0/1 of `unit`: it is exactly 1.
    pub(crate) struct ResizeParams {
        n: u32, h: u32, w: u32, oh: u32, ow: u32, coord_mode: u32, nearest_mode: u32, unit: u32,
        scale_h: f32, scale_w: f32, resized_h: f32, resized_w: f32,
    }
}

/// `MODE` override of `resize.wgsl` for Upsample's `mode`.
fn resize_mode_code(mode: UpsampleMode) -> u32 {
    match mode {
        UpsampleMode::Nearest => interp::NEAREST,
        UpsampleMode::Linear => interp::LINEAR,
    }
}

/// Coordinate transformation code of `resize.wgsl`.
fn resize_coord_code(mode: Coord) -> std::result::Result<u32, String> {
    match mode {
        Coord::HalfPixel => Ok(0),
        Coord::Asymmetric => Ok(1),
        Coord::AlignCorners => Ok(2),
        Coord::PytorchHalfPixel => Ok(3),
        Coord::TfHalfPixelForNn => Ok(4),
        Coord::HalfPixelSymmetric => Ok(5),
        Coord::TfCropAndResize => {
            Err("Resize coordinate_transformation_mode 'tf_crop_and_resize' is not supported on the GPU".into())
        }
    }
}

/// Nearest rounding code of `resize.wgsl`.
fn resize_nearest_code(mode: NearestMode) -> u32 {
    match mode {
        NearestMode::RoundPreferFloor => nearest::ROUND_PREFER_FLOOR,
        NearestMode::RoundPreferCeil => nearest::ROUND_PREFER_CEIL,
        NearestMode::Floor => nearest::FLOOR,
        NearestMode::Ceil => nearest::CEIL,
    }
}

impl Exec<'_> {
    pub(super) fn resize(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let Plan { k, coord, near, source } = plan;
        match source {
            Source::Upsample { scales } => {
                let sc = match self.host(1) {
                    Some(t) => Some(t.to_f64_vec()),
                    None => scales.as_ref().map(|v| v.iter().map(|&x| f64::from(x)).collect()),
                };
                let (shape, sc) = self.upsample_shape(sc)?;
                self.resize2d(ctx, k, shape, sc, *coord, *near)
            }
            Source::Resize { op } => {
                let scales = self.host(2).filter(|t| t.numel() > 0).map(|t| t.to_f64_vec());
                let sizes = self.host(3).filter(|t| t.numel() > 0).map(|t| t.to_i64_vec());
                if self.has_input(2) && scales.is_none() && self.host(2).is_none()
                    || self.has_input(3) && sizes.is_none() && self.host(3).is_none()
                {
                    return Err(GpuError::Unsupported("Resize scales/sizes must be constants".into()));
                }
                let a = op.resize_attrs().ok_or_else(|| GpuError::Unsupported("Resize attributes".into()))?;
                let x = self.input(0)?;
                let g = strata_ir::resample::geometry(
                    &x.shape,
                    &a,
                    &strata_ir::resample::plan(&a),
                    None,
                    scales.as_deref(),
                    sizes.as_deref(),
                )
                .map_err(GpuError::Shape)?;
                self.resize2d(ctx, k, g.out_dims, g.scales, *coord, *near)
            }
        }
    }

    /// Upsample's output shape from its scales.
    fn upsample_shape(&self, scales: Option<Vec<f64>>) -> Result<(Vec<usize>, Vec<f64>)> {
        let x = self.input(0)?;
        let r = x.shape.len();
        let Some(sc) = scales else { return Err(GpuError::Shape("Upsample needs scales".into())) };
        if sc.len() != r || sc.iter().any(|&v| !(v > 0.0 && v.is_finite())) {
            return Err(GpuError::Shape(format!("invalid Upsample scales {sc:?}")));
        }
        let shape = sc
            .iter()
            .zip(&x.shape)
            .map(|(&s, &i)| {
                let o = (i as f64 * s).floor();
                if o > u32::MAX as f64 {
                    Err(GpuError::Limit("Upsample output too large".into()))
                } else {
                    Ok(o as usize)
                }
            })
            .collect::<Result<_>>()?;
        Ok((shape, sc))
    }

    /// Resize the last two axes of input 0 to `shape` with `sc` the scale per axis.
    fn resize2d(
        &self,
        ctx: &mut Ctx,
        k: &Kernel,
        shape: Vec<usize>,
        sc: Vec<f64>,
        coord: u32,
        near: u32,
    ) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let r = x.shape.len();
        if r < 2 || shape.len() != r || sc.len() != r {
            return Err(GpuError::Unsupported("Resize of rank < 2".into()));
        }
        if (0..r - 2).any(|i| shape[i] != x.shape[i]) {
            return Err(GpuError::Unsupported("Resize of axes other than the last two".into()));
        }
        let y = ctx.alloc(DType::F32, shape.clone())?;
        let n = y.numel();
        if n > 0 && x.numel() == 0 {
            return Err(GpuError::Shape("Resize of an empty tensor".into()));
        }
        let (rh, rw) = (sc[r - 2] * x.shape[r - 2] as f64, sc[r - 1] * x.shape[r - 1] as f64);
        let p = ResizeParams {
            n,
            h: x.shape[r - 2],
            w: x.shape[r - 1],
            oh: shape[r - 2],
            ow: shape[r - 1],
            coord_mode: coord as usize,
            nearest_mode: near as usize,
            unit: usize::from(rh == 1.0) | (usize::from(rw == 1.0) << 1),
            scale_h: sc[r - 2] as f32,
            scale_w: sc[r - 1] as f32,
            resized_h: rh as f32,
            resized_w: rw as f32,
        };
        ctx.dispatch_n(k, &p.words()?, &y, &[x], n)?;
        Ok(vec![y])
    }
}
