//! GridSample on f32 (part of the `nn` family), 1-D to 3-D: `X` read at the
//! normalised coordinates of `grid` (last axis ordered x, y, z: innermost
//! spatial axis first) with nearest, (multi)linear or (bi)cubic
//! interpolation. Source coordinates and weights are computed in f64 once
//! per grid point, as the reference does, and shared by every channel;
//! each output sums its taps in f64, in the reference's order.

use strata_ir::DType;
use strata_ir::resample::{SampleMode, SamplePadding, cubic_kernel};

use super::{Ctx, Kernel, NodeInfo, input, strides, unsupported};
use crate::error::{Result, bail};
use crate::tensor::CpuTensor;

struct GridSampleKernel {
    align_corners: bool,
    mode: SampleMode,
    padding: SamplePadding,
}

/// Reflect `x` into `[lo, hi]` by bouncing off the borders.
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    let fold = |d: f64, near: f64, far: f64, sign: f64| {
        let n = libm::floor(d / range);
        let r = d - n * range;
        if n % 2.0 == 0.0 { near + sign * r } else { far - sign * r }
    };
    if x < lo {
        fold(lo - x, lo, hi, 1.0)
    } else if x > hi {
        fold(x - hi, hi, lo, -1.0)
    } else {
        x
    }
}

impl GridSampleKernel {
    /// The source coordinate along axis `i` (of `len` elements) of the
    /// normalised grid value `norm`, after rounding (nearest) and padding.
    fn coord(&self, norm: f64, len: usize, (lo, hi): (f64, f64)) -> f64 {
        let len = len as f64;
        let mut v =
            if self.align_corners { (norm + 1.0) / 2.0 * (len - 1.0) } else { ((norm + 1.0) * len - 1.0) / 2.0 };
        if self.mode == SampleMode::Nearest {
            v = v.round_ties_even();
        }
        if v < lo || v > hi {
            v = match self.padding {
                SamplePadding::Border => v.clamp(0.0, len - 1.0),
                SamplePadding::Reflection => reflect(v, lo, hi),
                SamplePadding::Zeros => v,
            };
        }
        v
    }

    /// Integer position `p` along an axis of `d` elements after padding, or
    /// `None` (zero padding outside).
    fn fetch(&self, p: i64, d: usize, (lo, hi): (f64, f64)) -> Option<usize> {
        let d = d as i64;
        let q = match self.padding {
            SamplePadding::Zeros if p < 0 || p >= d => return None,
            SamplePadding::Zeros => p,
            SamplePadding::Border => p.clamp(0, d - 1),
            SamplePadding::Reflection => (reflect(p as f64, lo, hi) as i64).clamp(0, d - 1),
        };
        Some(q as usize)
    }
}

impl Kernel for GridSampleKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let grid = input(inputs, 1)?;
        if x.shape.len() < 3 {
            bail!("X must have rank ≥ 3 (N, C, spatial...), got {:?}", x.shape);
        }
        let (n, c, in_sp) = (x.shape[0], x.shape[1], &x.shape[2..]);
        let nsp = in_sp.len();
        if grid.shape.len() != nsp + 2 || grid.shape[0] != n || grid.shape[nsp + 1] != nsp {
            bail!("grid must have shape (N, spatial..., {nsp}) with N = {n}, got {:?}", grid.shape);
        }
        let out_sp = &grid.shape[1..=nsp];
        let mut out_shape = vec![n, c];
        out_shape.extend_from_slice(out_sp);
        let total = ctx.check_numel(&out_shape)?;
        if in_sp.contains(&0) && total > 0 {
            bail!("cannot sample from X with an empty spatial axis, shape {:?}", x.shape);
        }
        let (xv, gv) = (x.as_f32()?, grid.as_f32()?);
        let in_size: usize = in_sp.iter().product();
        let out_size: usize = out_sp.iter().product();
        let st = strides(in_sp);
        let border: Vec<(f64, f64)> = in_sp
            .iter()
            .map(|&d| if self.align_corners { (0.0, d as f64 - 1.0) } else { (-0.5, d as f64 - 0.5) })
            .collect();
        let mut y = vec![0.0f32; total];
        let block = c * out_size;
        if block == 0 {
            return Ok(vec![CpuTensor::f32(out_shape, y)]);
        }
        let taps_per_axis: usize = match self.mode {
            SampleMode::Nearest => 1,
            SampleMode::Linear => 2,
            SampleMode::Cubic => 4,
        };
        let work = total * taps_per_axis.pow(nsp as u32) * 2;
        // One image per item: the taps of each grid point, then every channel.
        ctx.pool.for_each_chunk(&mut y, block, work, |b, out| {
            let mut per_axis: Vec<Vec<(Option<usize>, f64)>> = vec![Vec::with_capacity(4); nsp];
            let mut taps: Vec<(Option<usize>, f64)> = Vec::new();
            for o in 0..out_size {
                let g = &gv[(b * out_size + o) * nsp..(b * out_size + o + 1) * nsp];
                for (i, axis) in per_axis.iter_mut().enumerate() {
                    axis.clear();
                    let v = self.coord(f64::from(g[nsp - 1 - i]), in_sp[i], border[i]);
                    let at = |p: i64| self.fetch(p, in_sp[i], border[i]).map(|q| q * st[i]);
                    match self.mode {
                        // `as` saturates: a huge or NaN coordinate cannot wrap.
                        SampleMode::Nearest => axis.push((at(v as i64), 1.0)),
                        SampleMode::Linear | SampleMode::Cubic => {
                            let fl = libm::floor(v);
                            let (t, base) = (v - fl, fl as i64);
                            if self.mode == SampleMode::Cubic {
                                for k in -1..=2i64 {
                                    axis.push((at(base.saturating_add(k)), cubic_kernel(t - k as f64, -0.75)));
                                }
                            } else {
                                axis.push((at(base), 1.0 - t));
                                axis.push((at(base.saturating_add(1)), t));
                            }
                        }
                    }
                }
                // Every combination of one tap per axis, the last axis fastest.
                taps.clear();
                taps.push((Some(0), 1.0));
                for axis in &per_axis {
                    let prev = std::mem::take(&mut taps);
                    for &(off, w) in &prev {
                        for &(p, aw) in axis {
                            taps.push((off.zip(p).map(|(a, b)| a + b), w * aw));
                        }
                    }
                }
                for ch in 0..c {
                    let plane = &xv[(b * c + ch) * in_size..(b * c + ch + 1) * in_size];
                    let mut acc = 0.0f64;
                    for &(off, w) in &taps {
                        if let Some(f) = off {
                            acc += w * f64::from(plane[f]);
                        }
                    }
                    out[ch * out_size + o] = acc as f32;
                }
            }
        });
        Ok(vec![CpuTensor::f32(out_shape, y)])
    }
}

/// A GridSample node.
pub(crate) fn build(
    align_corners: bool,
    mode: SampleMode,
    padding: SamplePadding,
    info: &NodeInfo,
) -> Result<Box<dyn Kernel>> {
    info.require_dtypes(&[DType::F32]).map_err(|_| unsupported("GridSample runs on float32 X and grid only"))?;
    Ok(Box::new(GridSampleKernel { align_corners, mode, padding }))
}
