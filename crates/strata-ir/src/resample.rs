//! Resampling geometry shared by every backend's Resize: attribute
//! parsing, output sizes from `scales` or `sizes`, and per-axis tables of
//! source indices and weights (nearest, linear, cubic, antialias,
//! `exclude_outside`, every coordinate transformation mode). Pure `f64`
//! arithmetic on attribute and operand values: backends only apply the
//! tables to their data, one axis at a time.

/// Attributes of Resize (each field is the ONNX attribute of that name),
/// decoded at import; see [`crate::ops::NnOp::resize_attrs`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResizeAttrs<'a> {
    pub antialias: bool,
    pub axes: Option<&'a [i64]>,
    pub coordinate_transformation_mode: Coord,
    pub cubic_coeff_a: f64,
    pub exclude_outside: bool,
    pub extrapolation_value: f64,
    pub keep_aspect_ratio_policy: AspectRatioPolicy,
    pub mode: ResizeMode,
    pub nearest_mode: NearestMode,
}

crate::attr::attr_enum! {
    /// How an output coordinate maps back to a source coordinate (Resize's
    /// `coordinate_transformation_mode`).
    pub enum Coord {
        HalfPixel = "half_pixel",
        HalfPixelSymmetric = "half_pixel_symmetric",
        PytorchHalfPixel = "pytorch_half_pixel",
        AlignCorners = "align_corners",
        Asymmetric = "asymmetric",
        TfCropAndResize = "tf_crop_and_resize",
        /// Resize-11 only.
        TfHalfPixelForNn = "tf_half_pixel_for_nn",
    }
}

crate::attr::attr_enum! {
    /// Resize's interpolation `mode`.
    pub enum ResizeMode {
        Nearest = "nearest",
        Linear = "linear",
        Cubic = "cubic",
    }
}

crate::attr::attr_enum! {
    /// GridSample's `mode` (opset 16 spells the last two `bilinear` and
    /// `bicubic`).
    pub enum SampleMode {
        Nearest = "nearest",
        Linear = "linear" | "bilinear",
        Cubic = "cubic" | "bicubic",
    }
}

crate::attr::attr_enum! {
    /// GridSample's `padding_mode`: what a grid point outside the input reads.
    pub enum SamplePadding {
        Zeros = "zeros",
        Border = "border",
        Reflection = "reflection",
    }
}

crate::attr::attr_enum! {
    /// Upsample's `mode` (its first version spelled linear `bilinear`).
    pub enum UpsampleMode {
        Nearest = "nearest",
        Linear = "linear" | "bilinear",
    }
}

crate::attr::attr_enum! {
    /// Resize's `nearest_mode`: rounding of a source coordinate in nearest mode.
    pub enum NearestMode {
        RoundPreferFloor = "round_prefer_floor",
        RoundPreferCeil = "round_prefer_ceil",
        Floor = "floor",
        Ceil = "ceil",
    }
}

crate::attr::attr_enum! {
    /// Resize's `keep_aspect_ratio_policy` (applies when `sizes` is given).
    pub enum AspectRatioPolicy {
        Stretch = "stretch",
        NotLarger = "not_larger",
        NotSmaller = "not_smaller",
    }
}

/// Rounding of a source coordinate in nearest mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Upsample and Resize-10: floor when enlarging, ceil when shrinking.
    Simple,
}

/// Interpolation along one axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Interp {
    Nearest(Nearest),
    Linear,
    Cubic(f64),
}

/// Everything that decides how one axis is resampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisPlan {
    pub interp: Interp,
    pub coord: Coord,
    pub antialias: bool,
    pub exclude_outside: bool,
    pub extrapolation_value: f64,
}

/// Source coordinate of output index `y` along an axis of `len_in`
/// elements resized by `scale` to `len_out` elements. `roi` is the
/// (start, end) crop for tf_crop_and_resize.
pub fn source_coord(coord: Coord, y: usize, scale: f64, len_in: usize, len_out: usize, roi: (f64, f64)) -> f64 {
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
pub fn cubic_kernel(d: f64, a: f64) -> f64 {
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
pub fn axis_weights(
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
    let fl = x.floor();
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
            let reach = (support / k_scale).ceil() as i64;
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
pub type AxisTable = Vec<Option<Vec<(usize, f64)>>>;

/// The tables of every axis that changes, in increasing axis order.
pub fn axis_tables(
    shape: &[usize],
    out_dims: &[usize],
    scales: &[f64],
    roi: &[(f64, f64)],
    plan: &AxisPlan,
) -> Result<Vec<(usize, AxisTable)>, String> {
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
            return Err(format!("cannot resize the empty axis {axis} to {len_out} elements"));
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

/// Resize's decoded mode attributes as a per-axis plan.
pub fn plan(a: &ResizeAttrs) -> AxisPlan {
    let interp = match a.mode {
        ResizeMode::Nearest => Interp::Nearest(match a.nearest_mode {
            NearestMode::RoundPreferFloor => Nearest::RoundPreferFloor,
            NearestMode::RoundPreferCeil => Nearest::RoundPreferCeil,
            NearestMode::Floor => Nearest::Floor,
            NearestMode::Ceil => Nearest::Ceil,
        }),
        ResizeMode::Linear => Interp::Linear,
        ResizeMode::Cubic => Interp::Cubic(a.cubic_coeff_a),
    };
    AxisPlan {
        interp,
        coord: a.coordinate_transformation_mode,
        antialias: a.antialias && !matches!(interp, Interp::Nearest(_)),
        exclude_outside: a.exclude_outside,
        extrapolation_value: a.extrapolation_value,
    }
}

impl AxisPlan {
    /// Upsample (and Resize-10): asymmetric coordinates; `nearest` takes
    /// floor when enlarging and ceil when shrinking, `linear` interpolates.
    pub fn upsample(mode: UpsampleMode) -> AxisPlan {
        let interp = match mode {
            UpsampleMode::Nearest => Interp::Nearest(Nearest::Simple),
            UpsampleMode::Linear => Interp::Linear,
        };
        AxisPlan {
            interp,
            coord: Coord::Asymmetric,
            antialias: false,
            exclude_outside: false,
            extrapolation_value: 0.0,
        }
    }
}

/// Output length `floor(len * scale)`, checking the scale.
pub fn scaled_len(len: usize, scale: f64) -> Result<usize, String> {
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(format!("scales must be positive, got {scale}"));
    }
    let v = (len as f64 * scale).floor();
    if v >= 9.0e15 {
        return Err(format!("scaled size {v} is too large"));
    }
    Ok(v as usize)
}

/// Where Resize's output lands: per axis of `shape`, the output length,
/// the scale and the region of interest, from the `axes` attribute and the
/// operand values (`roi`, `scales`, `sizes`; empty operands count as absent).
pub struct Geometry {
    pub out_dims: Vec<usize>,
    pub scales: Vec<f64>,
    pub roi: Vec<(f64, f64)>,
}

/// Work out Resize's [`Geometry`].
pub fn geometry(
    shape: &[usize],
    a: &ResizeAttrs,
    plan: &AxisPlan,
    roi: Option<&[f64]>,
    scales: Option<&[f64]>,
    sizes: Option<&[i64]>,
) -> Result<Geometry, String> {
    let r = shape.len();
    let axes: Vec<usize> = match a.axes {
        Some(ax) => {
            let mut out = Vec::with_capacity(ax.len());
            for &v in ax {
                let i = if v < 0 { v + r as i64 } else { v };
                if !(0..r as i64).contains(&i) || out.contains(&(i as usize)) {
                    return Err(format!("axes {ax:?} are invalid for rank {r}"));
                }
                out.push(i as usize);
            }
            out
        }
        None => (0..r).collect(),
    };
    let mut g = Geometry { out_dims: shape.to_vec(), scales: vec![1.0; r], roi: vec![(0.0, 1.0); r] };
    if plan.coord == Coord::TfCropAndResize {
        let Some(v) = roi.filter(|v| !v.is_empty()) else {
            return Err("tf_crop_and_resize needs the roi input".into());
        };
        if v.len() != 2 * axes.len() {
            return Err(format!("roi has {} values, expected {}", v.len(), 2 * axes.len()));
        }
        for (i, &ax) in axes.iter().enumerate() {
            g.roi[ax] = (v[i], v[axes.len() + i]);
        }
    }
    match (scales.filter(|s| !s.is_empty()), sizes.filter(|s| !s.is_empty())) {
        (Some(s), None) => {
            if s.len() != axes.len() {
                return Err(format!("scales has {} values, expected {}", s.len(), axes.len()));
            }
            for (&ax, &sc) in axes.iter().zip(s) {
                g.out_dims[ax] = scaled_len(shape[ax], sc)?;
                g.scales[ax] = sc;
            }
        }
        (None, Some(sz)) => {
            if sz.len() != axes.len() {
                return Err(format!("sizes has {} values, expected {}", sz.len(), axes.len()));
            }
            for (&ax, &d) in axes.iter().zip(sz) {
                let d = usize::try_from(d).map_err(|_| format!("sizes must not be negative, got {sz:?}"))?;
                if shape[ax] == 0 {
                    return Err(format!("cannot resize the empty axis {ax}"));
                }
                g.scales[ax] = d as f64 / shape[ax] as f64;
                g.out_dims[ax] = d;
            }
            let pick = match a.keep_aspect_ratio_policy {
                AspectRatioPolicy::NotLarger => Some(f64::min as fn(f64, f64) -> f64),
                AspectRatioPolicy::NotSmaller => Some(f64::max as fn(f64, f64) -> f64),
                AspectRatioPolicy::Stretch => None,
            };
            if let Some(pick) = pick
                && let Some(common) = axes.iter().map(|&ax| g.scales[ax]).reduce(pick)
            {
                // One scale for all axes; sizes rounded half up.
                for &ax in &axes {
                    g.scales[ax] = common;
                    g.out_dims[ax] = (common * shape[ax] as f64 + 0.5).floor() as usize;
                }
            }
        }
        (Some(_), Some(_)) => return Err("only one of scales and sizes may be given".into()),
        (None, None) => return Err("one of scales and sizes must be given".into()),
    }
    Ok(g)
}
