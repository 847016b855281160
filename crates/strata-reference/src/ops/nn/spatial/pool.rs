//! Pooling: MaxPool, AveragePool, LpPool, their global forms, MaxUnpool,
//! MaxRoiPool and RoiAlign.

use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, one};
use crate::util::{check_numel, strides as row_strides};
use crate::value::{Data, Tensor, Value};
use strata_ir::ops::nn::{RoiCoord, RoiPool};

use super::{WindowAttrs, attrs_window, axis_attr, next_index, pads_attr, positive, split_nc};

/// How a pooling window is reduced to one value.
#[derive(Clone, Copy)]
pub(super) enum Reduce {
    /// Largest value; the index output is row-major, or column-major over
    /// the spatial axes (`storage_order = 1`).
    Max { column_major: bool },
    /// Mean; the divisor counts the padding positions the window covers
    /// when `count_include_pad`, else only the input elements.
    Avg { count_include_pad: bool },
    /// `(sum |x|^p)^(1/p)`.
    Lp { p: i64 },
}

/// One input element a window covers: its flat spatial index in row-major
/// and in column-major order (the latter for MaxPool's `storage_order`).
#[derive(Clone, Copy)]
struct Tap {
    row: usize,
    col: usize,
}

/// Reduce the window `taps` of the plane starting at `base`; `covered`
/// counts every position of the window inside the padded input. Returns the
/// value and, for Max, the chosen tap's flat index (row- or column-major,
/// offset by `base`), or -1 for an empty window.
fn reduce_window(how: Reduce, xv: &[f64], base: usize, taps: &[Tap], covered: usize, lowest: f64) -> (f64, i64) {
    match how {
        Reduce::Max { column_major } => {
            let mut best: Option<(f64, Tap)> = None;
            for &t in taps {
                let v = xv[base + t.row];
                // The first of equal maxima wins.
                if best.is_none_or(|(b, _)| v > b) {
                    best = Some((v, t));
                }
            }
            match best {
                Some((v, t)) => (v, (base + if column_major { t.col } else { t.row }) as i64),
                None => (lowest, -1),
            }
        }
        Reduce::Avg { count_include_pad } => {
            let mut sum = 0.0;
            for t in taps {
                sum += xv[base + t.row];
            }
            let count = if count_include_pad { covered } else { taps.len() };
            (sum / count as f64, -1)
        }
        Reduce::Lp { p } => {
            let mut sum = 0.0;
            for t in taps {
                sum += libm::pow(xv[base + t.row].abs(), p as f64);
            }
            (libm::pow(sum, 1.0 / p as f64), -1)
        }
    }
}

/// Column-major strides of a shape (first axis fastest).
fn col_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in 1..shape.len() {
        s[i] = s[i - 1] * shape[i - 1];
    }
    s
}

/// The smallest value of `x`'s type: what Max gives for an empty window.
fn lowest_of(x: &Tensor) -> f64 {
    match x.dtype.int_range() {
        Some((lo, _)) => lo as f64,
        None => f64::NEG_INFINITY,
    }
}

/// MaxPool, AveragePool and LpPool over a sliding window. MaxPool also
/// returns the flat index of each maximum (second output).
pub(super) fn pool(x: &Tensor, a: &WindowAttrs, how: Reduce) -> KResult<Vec<Value>> {
    let (n, c, in_sp) = split_nc(x, 1, "X")?;
    let nsp = in_sp.len();
    if let Reduce::Lp { p } = how
        && p <= 0
    {
        bail!("p must be positive, got {p}");
    }
    let kernel = positive(a.kernel_shape.as_deref().unwrap_or_default(), nsp, "kernel_shape")?;
    // Every output element visits the whole kernel: bound that work.
    check_numel(&kernel)?;
    let win = attrs_window(a, &in_sp, kernel)?;
    let mut out_shape = vec![n, c];
    out_shape.extend(&win.out);
    check_numel(&out_shape)?;

    // MaxPool also takes 8-bit integers; every such value is exact in f64.
    let xv = x.to_f64()?;
    let lowest = lowest_of(x);
    let (rs, cs) = (row_strides(&in_sp), col_strides(&in_sp));
    let in_size: usize = in_sp.iter().product();
    let out_size: usize = win.out.iter().product();
    let total: usize = out_shape.iter().product();
    let mut y = vec![0.0; total];
    let mut ind = vec![0i64; total];
    let mut opos = vec![0usize; nsp];
    for o_flat in 0..out_size {
        // Window positions inside the input (taps) and inside the padded input (covered).
        let mut taps = Vec::new();
        let mut covered = 0;
        let mut k = vec![0usize; nsp];
        loop {
            let (mut inside, mut in_pad) = (true, true);
            let (mut row, mut col) = (0, 0);
            for i in 0..nsp {
                let p = win.input_pos(i, opos[i], k[i]);
                if p < -win.pad_begin[i] || p >= in_sp[i] as i64 + win.pad_end[i] {
                    in_pad = false;
                }
                if p < 0 || p >= in_sp[i] as i64 {
                    inside = false;
                } else {
                    row += p as usize * rs[i];
                    col += p as usize * cs[i];
                }
            }
            if in_pad {
                covered += 1;
            }
            if inside {
                taps.push(Tap { row, col });
            }
            if !next_index(&mut k, &win.kernel) {
                break;
            }
        }
        for plane in 0..n * c {
            let (v, i) = reduce_window(how, &xv, plane * in_size, &taps, covered, lowest);
            y[plane * out_size + o_flat] = v;
            ind[plane * out_size + o_flat] = i;
        }
        next_index(&mut opos, &win.out);
    }
    let mut outs = vec![Value::Tensor(Tensor::from_f64_any(x.dtype, out_shape.clone(), y)?)];
    if let Reduce::Max { .. } = how {
        outs.push(Value::Tensor(Tensor::i64s(out_shape, ind)?));
    }
    Ok(outs)
}

/// GlobalMaxPool, GlobalAveragePool and GlobalLpPool: one window covering
/// all spatial axes. Output shape `(N, C, 1, ..., 1)`.
pub(super) fn global_pool(x: &Tensor, how: Reduce) -> KResult<Vec<Value>> {
    let (n, c, in_sp) = split_nc(x, 0, "X")?;
    if let Reduce::Lp { p } = how
        && p <= 0
    {
        bail!("p must be positive, got {p}");
    }
    let xv = x.to_f64()?;
    let in_size: usize = in_sp.iter().product();
    let taps: Vec<Tap> = (0..in_size).map(|i| Tap { row: i, col: i }).collect();
    let lowest = lowest_of(x);
    let y = (0..n * c).map(|plane| reduce_window(how, &xv, plane * in_size, &taps, in_size, lowest).0).collect();
    let mut out_shape = vec![n, c];
    out_shape.extend(std::iter::repeat_n(1, in_sp.len()));
    one(Tensor::from_f64_any(x.dtype, out_shape, y)?)
}

/// MaxUnpool: scatter `X` into a zero tensor at the flat positions `I`
/// (as produced by MaxPool's index output).
///
/// The indices address the tensor of the inferred shape
/// `(in - 1) * stride - pads + kernel`; when the optional `output_shape`
/// input asks for a larger tensor, that result sits at its start and the
/// rest is zero (as the ONNX reference implementation does).
pub(super) fn max_unpool(
    args: &Args,
    kernel_shape: &[i64],
    pads: &Option<Vec<i64>>,
    strides: &Option<Vec<i64>>,
) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let ind = args.tensor(1)?;
    let (n, c, in_sp) = split_nc(x, 1, "X")?;
    let nsp = in_sp.len();
    if ind.shape != x.shape {
        bail!("indices shape {:?} differs from X shape {:?}", ind.shape, x.shape);
    }
    let kernel = positive(kernel_shape, nsp, "kernel_shape")?;
    let strides = axis_attr(strides, nsp, 1, "strides")?;
    let (pb, pe) = pads_attr(pads, nsp)?;
    let mut inferred = vec![n, c];
    for i in 0..nsp {
        let size = (in_sp[i] as i128 - 1) * strides[i] as i128 - pb[i] as i128 - pe[i] as i128 + kernel[i] as i128;
        match usize::try_from(size) {
            Ok(v) => inferred.push(v),
            Err(_) => bail!("inferred output size {size} along spatial axis {i} is out of range"),
        }
    }
    check_numel(&inferred)?;
    let out_shape = match args.opt_tensor(2)? {
        None => inferred.clone(),
        Some(t) => {
            let s = crate::util::to_dims(&t.to_i64()?, "output_shape")?;
            if s.len() != x.rank() {
                bail!("output_shape has {} values, expected {}", s.len(), x.rank());
            }
            if s.iter().zip(&inferred).any(|(a, b)| a < b) {
                bail!("output_shape {s:?} is smaller than the inferred shape {inferred:?}");
            }
            s
        }
    };
    check_numel(&out_shape)?;

    // Destination of each element of X in the output.
    let inferred_size: usize = inferred.iter().product();
    let out_strides = row_strides(&out_shape);
    let inferred_strides = row_strides(&inferred);
    let mut dest = Vec::with_capacity(x.numel());
    for &i in ind.to_i64()?.iter() {
        let Ok(i) = usize::try_from(i) else { bail!("index {i} is negative") };
        if i >= inferred_size {
            bail!("index {i} is out of range for the unpooled shape {inferred:?}");
        }
        // Re-address the index from the inferred shape into the output shape.
        let mut flat = 0;
        let mut rest = i;
        for (&is, &os) in inferred_strides.iter().zip(&out_strides) {
            flat += rest / is * os;
            rest %= is;
        }
        dest.push(flat);
    }
    let mut y = Tensor::zeros(x.dtype, out_shape)?;
    match (&mut y.data, &x.data) {
        (Data::F(d), Data::F(s)) => dest.iter().zip(s).for_each(|(&i, &v)| d[i] = v),
        (Data::I(d), Data::I(s)) => dest.iter().zip(s).for_each(|(&i, &v)| d[i] = v),
        (Data::B(d), Data::B(s)) => dest.iter().zip(s).for_each(|(&i, &v)| d[i] = v),
        _ => bail!("MaxUnpool does not support {} data", x.dtype),
    }
    one(y)
}

/// MaxRoiPool: for each region `[batch, x1, y1, x2, y2]` (scaled by
/// `spatial_scale` and rounded to whole pixels), the maximum of each cell
/// of a `pooled_shape` grid over the region; 0 for an empty cell.
pub(super) fn max_roi_pool(args: &Args, pooled_shape: &[i64], spatial_scale: f64) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let rois = args.tensor(1)?;
    if x.rank() != 4 {
        bail!("X must have rank 4 (N, C, H, W), got shape {:?}", x.shape);
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    if rois.rank() != 2 || rois.shape[1] != 5 {
        bail!("rois must have shape (num_rois, 5), got {:?}", rois.shape);
    }
    let pooled = positive(pooled_shape, 2, "pooled_shape")?;
    let (ph, pw) = (pooled[0], pooled[1]);
    let r = rois.shape[0];
    let out_shape = vec![r, c, ph, pw];
    check_numel(&out_shape)?;
    let (xv, rv) = (x.f()?, rois.to_f64()?);
    let mut y = vec![0.0; out_shape.iter().product()];
    for ri in 0..r {
        let roi = &rv[ri * 5..ri * 5 + 5];
        let b = roi[0];
        if !(b >= 0.0 && b < n as f64) {
            bail!("roi {ri} has batch index {b}, out of range for {n} images");
        }
        let b = b as usize;
        // Region corners in whole pixels (round half away from zero).
        let corner = |v: f64| libm::round(v * spatial_scale) as i64;
        let (x1, y1, x2, y2) = (corner(roi[1]), corner(roi[2]), corner(roi[3]), corner(roi[4]));
        let roi_h = y2.saturating_sub(y1).saturating_add(1).max(1) as f64;
        let roi_w = x2.saturating_sub(x1).saturating_add(1).max(1) as f64;
        let (bin_h, bin_w) = (roi_h / ph as f64, roi_w / pw as f64);
        for ch in 0..c {
            let plane = &xv[(b * c + ch) * h * w..(b * c + ch + 1) * h * w];
            for i in 0..ph {
                let hs = ((libm::floor(i as f64 * bin_h) as i64).saturating_add(y1)).clamp(0, h as i64) as usize;
                let he = ((libm::ceil((i + 1) as f64 * bin_h) as i64).saturating_add(y1)).clamp(0, h as i64) as usize;
                for j in 0..pw {
                    let ws = ((libm::floor(j as f64 * bin_w) as i64).saturating_add(x1)).clamp(0, w as i64) as usize;
                    let we =
                        ((libm::ceil((j + 1) as f64 * bin_w) as i64).saturating_add(x1)).clamp(0, w as i64) as usize;
                    let mut best: Option<f64> = None;
                    for yy in hs..he {
                        for xx in ws..we {
                            let v = plane[yy * w + xx];
                            if best.is_none_or(|m| v > m) {
                                best = Some(v);
                            }
                        }
                    }
                    y[((ri * c + ch) * ph + i) * pw + j] = best.unwrap_or(0.0);
                }
            }
        }
    }
    one(Tensor::from_f(x.dtype, out_shape, y)?)
}

/// One bilinear sample of RoiAlign: four (flat position, weight) corners.
type Sample = [(usize, f64); 4];

/// The bilinear sample of an `h` x `w` plane at (`y`, `x`), following the
/// RoiAlign convention: points more than one pixel outside give nothing,
/// others are clamped into the plane.
fn roi_sample(h: usize, w: usize, y: f64, x: f64) -> Option<Sample> {
    if y < -1.0 || y > h as f64 || x < -1.0 || x > w as f64 {
        return None;
    }
    let (mut y, mut x) = (y.max(0.0), x.max(0.0));
    let (mut y_lo, mut x_lo) = (y as usize, x as usize);
    let (y_hi, x_hi);
    if y_lo >= h - 1 {
        y_lo = h - 1;
        y_hi = h - 1;
        y = y_lo as f64;
    } else {
        y_hi = y_lo + 1;
    }
    if x_lo >= w - 1 {
        x_lo = w - 1;
        x_hi = w - 1;
        x = x_lo as f64;
    } else {
        x_hi = x_lo + 1;
    }
    let (ly, lx) = (y - y_lo as f64, x - x_lo as f64);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    Some([
        (y_lo * w + x_lo, hy * hx),
        (y_lo * w + x_hi, hy * lx),
        (y_hi * w + x_lo, ly * hx),
        (y_hi * w + x_hi, ly * lx),
    ])
}

/// RoiAlign: each output cell averages (or takes the maximum of) a regular
/// grid of bilinear samples inside its part of the region of interest.
///
/// In `max` mode the maximum is taken over the weighted corner values of
/// the samples, as the reference implementations do.
pub(super) fn roi_align(
    args: &Args,
    coordinate_transformation_mode: RoiCoord,
    mode: RoiPool,
    (output_height, output_width): (i64, i64),
    sampling_ratio: i64,
    spatial_scale: f64,
) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let rois = args.tensor(1)?;
    let batch = args.tensor(2)?;
    if x.rank() != 4 {
        bail!("X must have rank 4 (N, C, H, W), got shape {:?}", x.shape);
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    if rois.rank() != 2 || rois.shape[1] != 4 {
        bail!("rois must have shape (num_rois, 4), got {:?}", rois.shape);
    }
    let r = rois.shape[0];
    if batch.shape != [r] {
        bail!("batch_indices must have shape [{r}], got {:?}", batch.shape);
    }
    let half_pixel = coordinate_transformation_mode == RoiCoord::HalfPixel;
    let is_max = mode == RoiPool::Max;
    let pooled = positive(&[output_height, output_width], 2, "output_height/output_width")?;
    let (ph, pw) = (pooled[0], pooled[1]);
    if sampling_ratio < 0 {
        bail!("sampling_ratio must not be negative, got {sampling_ratio}");
    }
    let out_shape = vec![r, c, ph, pw];
    check_numel(&out_shape)?;
    if h == 0 || w == 0 {
        bail!("X has an empty spatial axis, shape {:?}", x.shape);
    }
    let (xv, rv, bv) = (x.f()?, rois.to_f64()?, batch.to_i64()?);
    let offset = if half_pixel { 0.5 } else { 0.0 };
    let mut y = vec![0.0; out_shape.iter().product()];
    for ri in 0..r {
        let b = match usize::try_from(bv[ri]) {
            Ok(b) if b < n => b,
            _ => bail!("batch index {} of roi {ri} is out of range for {n} images", bv[ri]),
        };
        let roi = &rv[ri * 4..ri * 4 + 4];
        let (x0, y0) = (roi[0] * spatial_scale - offset, roi[1] * spatial_scale - offset);
        let (x1, y1) = (roi[2] * spatial_scale - offset, roi[3] * spatial_scale - offset);
        let (mut roi_w, mut roi_h) = (x1 - x0, y1 - y0);
        if !half_pixel {
            // Malformed regions are forced to at least 1x1.
            roi_w = roi_w.max(1.0);
            roi_h = roi_h.max(1.0);
        }
        let (bin_h, bin_w) = (roi_h / ph as f64, roi_w / pw as f64);
        let grid = |bin: f64| -> KResult<usize> {
            if sampling_ratio > 0 {
                return Ok(sampling_ratio as usize);
            }
            let g = libm::ceil(bin);
            if g.is_nan() || g >= 1e9 {
                bail!("region {ri} is too large to sample");
            }
            Ok(if g > 0.0 { g as usize } else { 0 })
        };
        let (gh, gw) = (grid(bin_h)?, grid(bin_w)?);
        check_numel(&[r, c, ph, pw, gh, gw])?;
        let count = (gh * gw).max(1) as f64;
        for i in 0..ph {
            for j in 0..pw {
                // Sample points of this cell, shared by all channels.
                let mut samples = Vec::with_capacity(gh * gw);
                for iy in 0..gh {
                    let yy = y0 + i as f64 * bin_h + (iy as f64 + 0.5) * bin_h / gh as f64;
                    for ix in 0..gw {
                        let xx = x0 + j as f64 * bin_w + (ix as f64 + 0.5) * bin_w / gw as f64;
                        samples.push(roi_sample(h, w, yy, xx));
                    }
                }
                for ch in 0..c {
                    let plane = &xv[(b * c + ch) * h * w..(b * c + ch + 1) * h * w];
                    let mut acc = 0.0;
                    let mut best: Option<f64> = None;
                    for s in &samples {
                        // A sample outside the feature map contributes zeros.
                        let corners = s.unwrap_or([(0, 0.0); 4]);
                        if is_max {
                            let v = corners.iter().map(|&(p, wt)| wt * plane[p]).fold(f64::NEG_INFINITY, f64::max);
                            best = Some(best.map_or(v, |m| m.max(v)));
                        } else {
                            for &(p, wt) in &corners {
                                acc += wt * plane[p];
                            }
                        }
                    }
                    y[((ri * c + ch) * ph + i) * pw + j] = if is_max { best.unwrap_or(0.0) } else { acc / count };
                }
            }
        }
    }
    one(Tensor::from_f(x.dtype, out_shape, y)?)
}
