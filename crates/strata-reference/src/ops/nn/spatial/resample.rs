//! Resampling: Resize, Upsample, GridSample and AffineGrid.
//!
//! Resize is separable: it resamples one axis at a time, each output
//! coordinate mapped back to a source coordinate and read as a weighted
//! sum of source elements (nearest, linear or cubic weights, optionally
//! widened for antialiasing). Intermediate results stay in f64.

use strata_ir::resample::{self, AxisPlan, AxisTable, Interp, ResizeAttrs, axis_tables, cubic_kernel};
use strata_ir::resample::{SampleMode, SamplePadding as Padding, UpsampleMode};

use crate::bail;
use crate::error::{KResult, KernelError};
use crate::ops::{Args, one};
use crate::util::{check_numel, strides as row_strides};
use crate::value::{Tensor, Value, data_class};

use super::{all_indices, next_index, split_nc};

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
    let tables = axis_tables(&x.shape, out_dims, scales, roi, plan).map_err(KernelError::new)?;
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
    let plan = resample::plan(a);
    let roi = given(args, 1)?.map(|t| t.to_f64()).transpose()?;
    let scales = given(args, 2)?.map(|t| t.to_f64()).transpose()?;
    let sizes = given(args, 3)?.map(|t| t.to_i64()).transpose()?;
    let g = resample::geometry(&x.shape, a, &plan, roi.as_deref(), scales.as_deref(), sizes.as_deref())
        .map_err(KernelError::new)?;
    one(resample(x, &g.out_dims, &g.scales, &g.roi, &plan)?)
}

/// [`resample::scaled_len`] as a kernel error.
fn scaled_len(len: usize, scale: f64) -> KResult<usize> {
    resample::scaled_len(len, scale).map_err(KernelError::new)
}

/// Upsample (and Resize-10): scale every axis by `scales` (an input, or
/// the opset-7 attribute) with asymmetric coordinates; `nearest` takes
/// floor when enlarging and ceil when shrinking, `linear` interpolates.
pub(super) fn upsample(args: &Args, mode: UpsampleMode, attr_scales: Option<&[f32]>) -> KResult<Vec<Value>> {
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
    let out_dims = x.shape.iter().zip(&scales).map(|(&d, &s)| scaled_len(d, s)).collect::<KResult<Vec<_>>>()?;
    let plan = AxisPlan::upsample(mode);
    let roi = vec![(0.0, 1.0); x.rank()];
    one(resample(x, &out_dims, &scales, &roi, &plan)?)
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
pub(super) fn grid_sample(args: &Args, align_corners: bool, mode: SampleMode, padding: Padding) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let grid = args.tensor(1)?;
    let (n, c, in_sp) = split_nc(x, 1, "X")?;
    let nsp = in_sp.len();
    if grid.rank() != nsp + 2 || grid.shape[0] != n || grid.shape[nsp + 1] != nsp {
        bail!("grid must have shape (N, spatial..., {nsp}) with N = {n}, got {:?}", grid.shape);
    }
    use SampleMode as Mode;
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
