//! Resampling: Resize, Upsample, GridSample and AffineGrid.
//!
//! Resize is separable: it resamples one axis at a time, each output
//! coordinate mapped back to a source coordinate and read as a weighted
//! sum of source elements (nearest, linear or cubic weights, optionally
//! widened for antialiasing). Intermediate results stay in f64.

use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, one};
use crate::util::{check_numel, norm_axes, strides as row_strides};
use crate::value::{Tensor, Value, data_class};

use super::{all_indices, next_index, split_nc};

/// Attributes of Resize (each field is the ONNX attribute of that name).
pub(super) struct ResizeAttrs<'a> {
    pub antialias: bool,
    pub axes: Option<&'a [i64]>,
    pub coordinate_transformation_mode: &'a str,
    pub cubic_coeff_a: f64,
    pub exclude_outside: bool,
    pub extrapolation_value: f64,
    pub keep_aspect_ratio_policy: &'a str,
    pub mode: &'a str,
    pub nearest_mode: &'a str,
}

/// How an output coordinate maps back to a source coordinate.
#[derive(Clone, Copy, PartialEq)]
enum Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
    /// Resize-11 only.
    TfHalfPixelForNn,
}

/// Rounding of a source coordinate in nearest mode.
#[derive(Clone, Copy, PartialEq)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Upsample and Resize-10: floor when enlarging, ceil when shrinking.
    Simple,
}

/// Interpolation along one axis.
#[derive(Clone, Copy, PartialEq)]
enum Interp {
    Nearest(Nearest),
    Linear,
    Cubic(f64),
}

/// Everything that decides how one axis is resampled.
struct AxisPlan {
    interp: Interp,
    coord: Coord,
    antialias: bool,
    exclude_outside: bool,
    extrapolation_value: f64,
}

/// Source coordinate of output index `y` along an axis of `len_in`
/// elements resized by `scale` to `len_out` elements. `roi` is the
/// (start, end) crop for tf_crop_and_resize.
fn source_coord(coord: Coord, y: usize, scale: f64, len_in: usize, len_out: usize, roi: (f64, f64)) -> f64 {
    let y = y as f64;
    let len_in_f = len_in as f64;
    // The resized length before rounding to whole elements.
    let len_resized = scale * len_in_f;
    match coord {
        Coord::HalfPixel => (y + 0.5) / scale - 0.5,
        Coord::HalfPixelSymmetric => {
            let adjustment = len_out as f64 / len_resized;
            let offset = len_in_f / 2.0 * (1.0 - adjustment);
            offset + (y + 0.5) / scale - 0.5
        }
        Coord::PytorchHalfPixel => {
            if len_resized == 1.0 {
                -0.5
            } else {
                (y + 0.5) / scale - 0.5
            }
        }
        Coord::AlignCorners => {
            if len_resized == 1.0 {
                0.0
            } else {
                y * (len_in_f - 1.0) / (len_resized - 1.0)
            }
        }
        Coord::Asymmetric => y / scale,
        Coord::TfHalfPixelForNn => (y + 0.5) / scale,
        Coord::TfCropAndResize => {
            let (start, end) = roi;
            let x = if len_resized == 1.0 {
                (end - start) * (len_in_f - 1.0) / 2.0
            } else {
                y * (end - start) * (len_in_f - 1.0) / (len_resized - 1.0)
            };
            x + start * (len_in_f - 1.0)
        }
    }
}

/// Keys' cubic convolution kernel with parameter `a` at distance `d`.
fn cubic_kernel(d: f64, a: f64) -> f64 {
    let d = d.abs();
    if d <= 1.0 {
        ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    } else if d < 2.0 {
        ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    } else {
        0.0
    }
}

/// The source elements (index, possibly outside `[0, len_in)`) and weights
/// that make up output index `y`, or `None` when it takes the
/// extrapolation value.
fn axis_weights(
    plan: &AxisPlan,
    y: usize,
    scale: f64,
    len_in: usize,
    len_out: usize,
    roi: (f64, f64),
) -> Option<Vec<(i64, f64)>> {
    let x = source_coord(plan.coord, y, scale, len_in, len_out, roi);
    if plan.coord == Coord::TfCropAndResize && (x < 0.0 || x > len_in as f64 - 1.0) {
        return None;
    }
    let fl = libm::floor(x);
    let base = fl as i64;
    let frac = x - fl;
    let mut taps: Vec<(i64, f64)> = match plan.interp {
        Interp::Nearest(rounding) => {
            let up = match rounding {
                _ if frac == 0.0 => false,
                Nearest::RoundPreferFloor => frac > 0.5,
                Nearest::RoundPreferCeil => frac >= 0.5,
                Nearest::Floor => false,
                Nearest::Ceil => true,
                Nearest::Simple => scale < 1.0,
            };
            vec![(base.saturating_add(up as i64), 1.0)]
        }
        // Antialiasing when shrinking widens the kernel by 1/scale and
        // renormalises it; otherwise the plain kernel is used.
        Interp::Linear | Interp::Cubic(_) => {
            let (support, kernel): (f64, Box<dyn Fn(f64) -> f64>) = match plan.interp {
                Interp::Cubic(a) => (2.0, Box::new(move |d| cubic_kernel(d, a))),
                _ => (1.0, Box::new(|d: f64| (1.0 - d.abs()).max(0.0))),
            };
            let k_scale = if plan.antialias { scale.min(1.0) } else { 1.0 };
            let reach = libm::ceil(support / k_scale) as i64;
            let mut taps = Vec::new();
            for j in base.saturating_sub(reach)..=base.saturating_add(reach + 1) {
                let w = kernel((j as f64 - x) * k_scale);
                if w != 0.0 {
                    taps.push((j, w));
                }
            }
            if plan.antialias {
                let total: f64 = taps.iter().map(|t| t.1).sum();
                if total != 0.0 {
                    taps.iter_mut().for_each(|t| t.1 /= total);
                }
            }
            taps
        }
    };
    if plan.exclude_outside && !matches!(plan.interp, Interp::Nearest(_)) {
        taps.retain(|&(j, _)| j >= 0 && j < len_in as i64);
        let total: f64 = taps.iter().map(|t| t.1).sum();
        if total != 0.0 {
            taps.iter_mut().for_each(|t| t.1 /= total);
        }
    }
    Some(taps)
}

/// For each output index along one axis: the source elements (index
/// clamped into the input, so the edge repeats) and weights to combine, or
/// `None` for the extrapolation value.
type AxisTable = Vec<Option<Vec<(usize, f64)>>>;

/// The tables of every axis that changes, in increasing axis order.
fn axis_tables(
    shape: &[usize],
    out_dims: &[usize],
    scales: &[f64],
    roi: &[(f64, f64)],
    plan: &AxisPlan,
) -> KResult<Vec<(usize, AxisTable)>> {
    let mut tables = Vec::new();
    for axis in 0..shape.len() {
        let (len_in, len_out) = (shape[axis], out_dims[axis]);
        let identity = (scales[axis] - 1.0).abs() <= 1e-9
            && len_out == len_in
            && (plan.coord != Coord::TfCropAndResize || roi[axis] == (0.0, 1.0));
        if identity || len_out == 0 {
            if len_out != len_in {
                tables.push((axis, Vec::new()));
            }
            continue;
        }
        if len_in == 0 {
            bail!("cannot resize the empty axis {axis} to {len_out} elements");
        }
        let table = (0..len_out)
            .map(|y| {
                axis_weights(plan, y, scales[axis], len_in, len_out, roi[axis])
                    .map(|taps| taps.into_iter().map(|(j, w)| (j.clamp(0, len_in as i64 - 1) as usize, w)).collect())
            })
            .collect();
        tables.push((axis, table));
    }
    Ok(tables)
}

/// Apply one axis table to `data` of shape `shape` (updated in place).
fn apply_table<T: Copy>(
    data: &[T],
    shape: &mut [usize],
    axis: usize,
    table: &AxisTable,
    mut combine: impl FnMut(Option<&[(usize, f64)]>, &dyn Fn(usize) -> T) -> T,
) -> Vec<T> {
    let len_in = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * table.len() * inner);
    for o in 0..outer {
        for entry in table {
            for i in 0..inner {
                let at = |j: usize| data[(o * len_in + j) * inner + i];
                out.push(combine(entry.as_deref(), &at));
            }
        }
    }
    shape[axis] = table.len();
    out
}

/// Resample every axis of `x` whose size or scale changes.
///
/// Nearest mode moves elements exactly (any type) unless some output takes
/// the extrapolation value; otherwise values are combined in f64 and the
/// output built in `x`'s type (integers rounded half to even and
/// saturated).
fn resample(x: &Tensor, out_dims: &[usize], scales: &[f64], roi: &[(f64, f64)], plan: &AxisPlan) -> KResult<Tensor> {
    check_numel(out_dims)?;
    let tables = axis_tables(&x.shape, out_dims, scales, roi, plan)?;
    let nearest = matches!(plan.interp, Interp::Nearest(_));
    if nearest && tables.iter().all(|(_, t)| t.iter().all(|e| e.is_some())) {
        // Follow the flat source index of every element through the axes.
        let mut shape = x.shape.clone();
        let mut idx: Vec<usize> = (0..x.numel()).collect();
        for (axis, table) in &tables {
            idx = apply_table(&idx, &mut shape, *axis, table, |taps, at| match taps {
                Some([(j, _), ..]) => at(*j),
                _ => 0,
            });
        }
        return Tensor::new(x.dtype, shape, x.data.gather(&idx));
    }
    let mut shape = x.shape.clone();
    let mut data = x.to_f64()?;
    for (axis, table) in &tables {
        data = apply_table(&data, &mut shape, *axis, table, |taps, at| match taps {
            None => plan.extrapolation_value,
            Some(taps) => {
                let mut acc = 0.0;
                for &(j, w) in taps {
                    acc += w * at(j);
                }
                acc
            }
        });
    }
    match data_class(x.dtype) {
        'f' => Ok(Tensor::from_f(x.dtype, shape, data)?),
        'i' => {
            let (lo, hi) = x.dtype.int_range().unwrap_or((i128::MIN, i128::MAX));
            let v = data.into_iter().map(|v| (v.round_ties_even() as i128).clamp(lo, hi)).collect();
            Ok(Tensor::from_i(x.dtype, shape, v)?)
        }
        _ => bail!("cannot interpolate {} data", x.dtype),
    }
}

/// A present, non-empty optional input.
fn given(args: &Args, i: usize) -> KResult<Option<&Tensor>> {
    Ok(args.opt_tensor(i)?.filter(|t| t.numel() > 0))
}

/// Resize (opset 11+): inputs X, roi, scales, sizes.
pub(super) fn resize(args: &Args, a: &ResizeAttrs) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let r = x.rank();
    let axes: Vec<usize> = match a.axes {
        Some(ax) => norm_axes(ax, r)?,
        None => (0..r).collect(),
    };
    let coord = match a.coordinate_transformation_mode {
        "half_pixel" => Coord::HalfPixel,
        "half_pixel_symmetric" => Coord::HalfPixelSymmetric,
        "pytorch_half_pixel" => Coord::PytorchHalfPixel,
        "align_corners" => Coord::AlignCorners,
        "asymmetric" => Coord::Asymmetric,
        "tf_crop_and_resize" => Coord::TfCropAndResize,
        "tf_half_pixel_for_nn" => Coord::TfHalfPixelForNn,
        other => bail!("unknown coordinate_transformation_mode '{other}'"),
    };
    let interp = match a.mode {
        "nearest" => Interp::Nearest(match a.nearest_mode {
            "round_prefer_floor" => Nearest::RoundPreferFloor,
            "round_prefer_ceil" => Nearest::RoundPreferCeil,
            "floor" => Nearest::Floor,
            "ceil" => Nearest::Ceil,
            other => bail!("unknown nearest_mode '{other}'"),
        }),
        "linear" => Interp::Linear,
        "cubic" => Interp::Cubic(a.cubic_coeff_a),
        other => bail!("unknown mode '{other}'"),
    };

    // Region of interest per axis (only tf_crop_and_resize reads it).
    let mut roi = vec![(0.0, 1.0); r];
    if coord == Coord::TfCropAndResize {
        let Some(t) = given(args, 1)? else { bail!("tf_crop_and_resize needs the roi input") };
        let v = t.to_f64()?;
        if v.len() != 2 * axes.len() {
            bail!("roi has {} values, expected {}", v.len(), 2 * axes.len());
        }
        for (i, &ax) in axes.iter().enumerate() {
            roi[ax] = (v[i], v[axes.len() + i]);
        }
    }

    let mut scales = vec![1.0; r];
    let mut out_dims = x.shape.clone();
    match (given(args, 2)?, given(args, 3)?) {
        (Some(s), None) => {
            let s = s.to_f64()?;
            if s.len() != axes.len() {
                bail!("scales has {} values, expected {}", s.len(), axes.len());
            }
            for (&ax, &sc) in axes.iter().zip(&s) {
                out_dims[ax] = scaled_len(x.shape[ax], sc)?;
                scales[ax] = sc;
            }
        }
        (None, Some(sz)) => {
            let sz = crate::util::to_dims(&sz.to_i64()?, "sizes")?;
            if sz.len() != axes.len() {
                bail!("sizes has {} values, expected {}", sz.len(), axes.len());
            }
            for (&ax, &d) in axes.iter().zip(&sz) {
                if x.shape[ax] == 0 {
                    bail!("cannot resize the empty axis {ax}");
                }
                scales[ax] = d as f64 / x.shape[ax] as f64;
                out_dims[ax] = d;
            }
            let pick = match a.keep_aspect_ratio_policy {
                "stretch" => None,
                "not_larger" => Some(f64::min as fn(f64, f64) -> f64),
                "not_smaller" => Some(f64::max as fn(f64, f64) -> f64),
                other => bail!("unknown keep_aspect_ratio_policy '{other}'"),
            };
            if let Some(pick) = pick
                && let Some(common) = axes.iter().map(|&ax| scales[ax]).reduce(pick)
            {
                // One scale for all axes; sizes rounded half up.
                for &ax in &axes {
                    scales[ax] = common;
                    out_dims[ax] = libm::floor(common * x.shape[ax] as f64 + 0.5) as usize;
                }
            }
        }
        (Some(_), Some(_)) => bail!("only one of scales and sizes may be given"),
        (None, None) => bail!("one of scales and sizes must be given"),
    }
    let plan = AxisPlan {
        interp,
        coord,
        antialias: a.antialias && !matches!(interp, Interp::Nearest(_)),
        exclude_outside: a.exclude_outside,
        extrapolation_value: a.extrapolation_value,
    };
    one(resample(x, &out_dims, &scales, &roi, &plan)?)
}

/// Output length `floor(len * scale)`, checking the scale.
fn scaled_len(len: usize, scale: f64) -> KResult<usize> {
    if !(scale > 0.0 && scale.is_finite()) {
        bail!("scales must be positive, got {scale}");
    }
    let v = libm::floor(len as f64 * scale);
    if v >= 9.0e15 {
        bail!("scaled size {v} is too large");
    }
    Ok(v as usize)
}

/// Upsample (and Resize-10): scale every axis by `scales` (an input, or
/// the opset-7 attribute) with asymmetric coordinates; `nearest` takes
/// floor when enlarging and ceil when shrinking, `linear` interpolates.
pub(super) fn upsample(args: &Args, mode: &str, attr_scales: Option<&[f32]>) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let scales: Vec<f64> = match given(args, 1)? {
        Some(t) => t.to_f64()?,
        None => match attr_scales {
            Some(s) => s.iter().map(|&v| v as f64).collect(),
            None => bail!("scales must be given as an input or attribute"),
        },
    };
    if scales.len() != x.rank() {
        bail!("scales has {} values, expected {}", scales.len(), x.rank());
    }
    let interp = match mode {
        "nearest" => Interp::Nearest(Nearest::Simple),
        "linear" | "bilinear" => Interp::Linear,
        other => bail!("unknown mode '{other}'"),
    };
    let out_dims = x.shape.iter().zip(&scales).map(|(&d, &s)| scaled_len(d, s)).collect::<KResult<Vec<_>>>()?;
    let plan = AxisPlan {
        interp,
        coord: Coord::Asymmetric,
        antialias: false,
        exclude_outside: false,
        extrapolation_value: 0.0,
    };
    let roi = vec![(0.0, 1.0); x.rank()];
    one(resample(x, &out_dims, &scales, &roi, &plan)?)
}

/// GridSample padding modes.
#[derive(Clone, Copy, PartialEq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

/// Reflect `x` into `[lo, hi]` by bouncing off the borders.
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    if x < lo {
        let d = lo - x;
        let n = libm::floor(d / range);
        let r = d - n * range;
        if n % 2.0 == 0.0 { lo + r } else { hi - r }
    } else if x > hi {
        let d = x - hi;
        let n = libm::floor(d / range);
        let r = d - n * range;
        if n % 2.0 == 0.0 { hi - r } else { lo + r }
    } else {
        x
    }
}

/// GridSample: read `X` at the normalised coordinates of `grid` (last
/// axis ordered x, y, z: innermost spatial axis first) with nearest,
/// (multi)linear or (bi)cubic interpolation.
pub(super) fn grid_sample(args: &Args, align_corners: bool, mode: &str, padding_mode: &str) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let grid = args.tensor(1)?;
    let (n, c, in_sp) = split_nc(x, 1, "X")?;
    let nsp = in_sp.len();
    if grid.rank() != nsp + 2 || grid.shape[0] != n || grid.shape[nsp + 1] != nsp {
        bail!("grid must have shape (N, spatial..., {nsp}) with N = {n}, got {:?}", grid.shape);
    }
    #[derive(PartialEq)]
    enum Mode {
        Nearest,
        Linear,
        Cubic,
    }
    let mode = match mode {
        "nearest" => Mode::Nearest,
        "linear" | "bilinear" => Mode::Linear,
        "cubic" | "bicubic" => Mode::Cubic,
        other => bail!("unknown mode '{other}'"),
    };
    let padding = match padding_mode {
        "zeros" => Padding::Zeros,
        "border" => Padding::Border,
        "reflection" => Padding::Reflection,
        other => bail!("unknown padding_mode '{other}'"),
    };
    let out_sp = grid.shape[1..=nsp].to_vec();
    let mut out_shape = vec![n, c];
    out_shape.extend(&out_sp);
    check_numel(&out_shape)?;
    if in_sp.contains(&0) && out_shape.iter().product::<usize>() > 0 {
        bail!("cannot sample from X with an empty spatial axis, shape {:?}", x.shape);
    }
    let (xv, gv) = (x.f()?, grid.to_f64()?);
    let in_size: usize = in_sp.iter().product();
    let out_size: usize = out_sp.iter().product();
    let st = row_strides(&in_sp);
    // Borders of the valid coordinate range per axis.
    let border: Vec<(f64, f64)> =
        in_sp.iter().map(|&d| if align_corners { (0.0, d as f64 - 1.0) } else { (-0.5, d as f64 - 0.5) }).collect();
    // The element at integer position `pos` of a plane after padding, or
    // None for zero padding outside.
    let fetch_index = |pos: &[i64]| -> Option<usize> {
        let mut flat = 0;
        for i in 0..nsp {
            let d = in_sp[i] as i64;
            let p = match padding {
                Padding::Zeros if pos[i] < 0 || pos[i] >= d => return None,
                Padding::Zeros => pos[i],
                Padding::Border => pos[i].clamp(0, d - 1),
                Padding::Reflection => (reflect(pos[i] as f64, border[i].0, border[i].1) as i64).clamp(0, d - 1),
            };
            flat += p as usize * st[i];
        }
        Some(flat)
    };
    let mut y = vec![0.0; out_shape.iter().product()];
    for b in 0..n {
        for o in 0..out_size {
            // Source coordinate per spatial axis (grid lists them innermost first).
            let g = &gv[(b * out_size + o) * nsp..(b * out_size + o + 1) * nsp];
            let mut coord = vec![0.0; nsp];
            for i in 0..nsp {
                let norm = g[nsp - 1 - i];
                let len = in_sp[i] as f64;
                let mut v =
                    if align_corners { (norm + 1.0) / 2.0 * (len - 1.0) } else { ((norm + 1.0) * len - 1.0) / 2.0 };
                if mode == Mode::Nearest {
                    v = v.round_ties_even();
                }
                let (lo, hi) = border[i];
                if v < lo || v > hi {
                    v = match padding {
                        Padding::Border => v.clamp(0.0, len - 1.0),
                        Padding::Reflection => reflect(v, lo, hi),
                        Padding::Zeros => v,
                    };
                }
                coord[i] = v;
            }
            // (integer position, weight) pairs to combine.
            let mut taps: Vec<(Vec<i64>, f64)> = Vec::new();
            match mode {
                Mode::Nearest => taps.push((coord.iter().map(|&v| v as i64).collect(), 1.0)),
                Mode::Linear | Mode::Cubic => {
                    let cubic = mode == Mode::Cubic;
                    // Per axis: neighbour offsets from floor(coord) and their weights.
                    let per_axis: Vec<Vec<(i64, f64)>> = coord
                        .iter()
                        .map(|&v| {
                            let fl = libm::floor(v);
                            let t = v - fl;
                            let base = fl as i64;
                            if cubic {
                                (-1..=2).map(|k| (base.saturating_add(k), cubic_kernel(t - k as f64, -0.75))).collect()
                            } else {
                                vec![(base, 1.0 - t), (base.saturating_add(1), t)]
                            }
                        })
                        .collect();
                    let counts: Vec<usize> = per_axis.iter().map(|a| a.len()).collect();
                    for combo in all_indices(&counts) {
                        let pos = combo.iter().enumerate().map(|(i, &k)| per_axis[i][k].0).collect();
                        let w = combo.iter().enumerate().map(|(i, &k)| per_axis[i][k].1).product();
                        taps.push((pos, w));
                    }
                }
            }
            for ch in 0..c {
                let base = (b * c + ch) * in_size;
                let mut acc = 0.0;
                for (pos, w) in &taps {
                    if let Some(f) = fetch_index(pos) {
                        acc += w * xv[base + f];
                    }
                }
                y[(b * c + ch) * out_size + o] = acc;
            }
        }
    }
    one(Tensor::from_f(x.dtype, out_shape, y)?)
}

/// AffineGrid: the sampling grid of an affine transform `theta` (N, 2, 3)
/// or (N, 3, 4) over an output of `size` (N, C, H, W) or (N, C, D, H, W).
/// Output `(N, H, W, 2)` or `(N, D, H, W, 3)`, last axis ordered x, y(, z).
pub(super) fn affine_grid(args: &Args, align_corners: bool) -> KResult<Vec<Value>> {
    let theta = args.tensor(0)?;
    let size = crate::util::to_dims(&args.tensor(1)?.to_i64()?, "size")?;
    let nsp = match size.len() {
        4 => 2,
        5 => 3,
        k => bail!("size must have 4 or 5 values, got {k}"),
    };
    let n = size[0];
    if theta.shape != [n, nsp, nsp + 1] {
        bail!("theta must have shape [{n}, {nsp}, {}], got {:?}", nsp + 1, theta.shape);
    }
    let sp = size[2..].to_vec();
    let mut out_shape = vec![n];
    out_shape.extend(&sp);
    out_shape.push(nsp);
    check_numel(&out_shape)?;
    let tv = theta.f()?;
    // Normalised coordinate of element `i` of an axis of `len` elements.
    let base = |i: usize, len: usize| -> f64 {
        if align_corners {
            if len <= 1 { -1.0 } else { -1.0 + 2.0 * i as f64 / (len - 1) as f64 }
        } else {
            -1.0 + (2 * i + 1) as f64 / len as f64
        }
    };
    let mut y = Vec::with_capacity(out_shape.iter().product());
    let points: usize = sp.iter().product();
    for b in 0..n {
        let t = &tv[b * nsp * (nsp + 1)..(b + 1) * nsp * (nsp + 1)];
        let mut idx = vec![0usize; nsp];
        for _ in 0..points {
            // Homogeneous point (x, y[, z], 1): x follows the last axis.
            let mut p: Vec<f64> = (0..nsp).map(|k| base(idx[nsp - 1 - k], sp[nsp - 1 - k])).collect();
            p.push(1.0);
            for row in 0..nsp {
                let mut acc = 0.0;
                for (col, &pv) in p.iter().enumerate() {
                    acc += t[row * (nsp + 1) + col] * pv;
                }
                y.push(acc);
            }
            next_index(&mut idx, &sp);
        }
    }
    one(Tensor::from_f(theta.dtype, out_shape, y)?)
}
