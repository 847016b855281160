//! Normalisation on f32: inference-mode BatchNormalization,
//! LayerNormalization and RMSNormalization, GroupNormalization and
//! InstanceNormalization (built by `nn.rs`).

use super::{Ctx, Kernel, broadcast, broadcast_strides, input, strides};
use crate::error::{CpuError, Result, bail};
use crate::tensor::CpuTensor;

/// Inference-mode BatchNormalization: `y = (x - mean[c]) · a[c] + B[c]`.
pub(super) struct BatchNormKernel {
    pub(super) epsilon: f32,
}

impl Kernel for BatchNormKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if x.shape.len() < 2 {
            bail!("BatchNormalization needs X of rank ≥ 2, got {:?}", x.shape);
        }
        let c = x.shape[1];
        let mut p = Vec::with_capacity(4);
        for (i, name) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            let t = input(inputs, i)?;
            if t.shape != [c] {
                bail!("BatchNormalization {name} must have shape [{c}], got {:?}", t.shape);
            }
            p.push(t.as_f32()?);
        }
        // y = (x - mean) · a + B: subtracting the mean first keeps the
        // result accurate where x · a and the bias would cancel.
        let a: Vec<f32> = (0..c).map(|i| p[0][i] / (p[3][i] + self.epsilon).sqrt()).collect();
        let (mean, bias) = (p[2], p[1]);
        let xv = x.as_f32()?;
        let plane: usize = x.shape[2..].iter().product();
        let mut y = vec![0.0f32; xv.len()];
        ctx.pool.for_each_chunk(&mut y, plane, xv.len() * 2, |i, out| {
            let ch = i % c;
            for (o, &v) in out.iter_mut().zip(&xv[i * plane..]) {
                *o = (v - mean[ch]) * a[ch] + bias[ch];
            }
        });
        Ok(vec![CpuTensor::f32(x.shape.clone(), y)])
    }
}

/// LayerNormalization (and RMSNormalization: no mean, no bias) over the
/// trailing axes from `axis`; LayerNormalization also gives the Mean and
/// InvStdDev outputs.
pub(super) struct LayerNormKernel {
    pub(super) axis: i64,
    pub(super) epsilon: f32,
    pub(super) rms: bool,
}

impl Kernel for LayerNormKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let ax = super::axis(self.axis, x.shape.len())?;
        let inner: usize = x.shape[ax..].iter().product();
        let outer: usize = x.shape[..ax].iter().product();
        let xv = x.as_f32()?;
        let norm_shape = &x.shape[ax..];
        let read = |i: usize| -> Result<Option<(&[f32], Vec<usize>)>> {
            match inputs.get(i).copied().flatten() {
                None => Ok(None),
                Some(t) => {
                    if broadcast(&t.shape, norm_shape)? != norm_shape {
                        bail!("normalisation parameter of shape {:?} does not broadcast to {norm_shape:?}", t.shape);
                    }
                    Ok(Some((t.as_f32()?, broadcast_strides(&t.shape, norm_shape))))
                }
            }
        };
        let scale = read(1)?.ok_or_else(|| CpuError::Kernel("the normalisation needs a scale".into()))?;
        let bias = if self.rms { None } else { read(2)? };
        // Parameters expanded to the normalised shape once.
        let expand = |(v, s): &(&[f32], Vec<usize>)| -> Vec<f32> {
            let st = strides(norm_shape);
            (0..inner)
                .map(|j| {
                    let off: usize = (0..st.len()).map(|d| (j / st[d]) % norm_shape[d] * s[d]).sum();
                    v[off]
                })
                .collect()
        };
        let sc = expand(&scale);
        let bi = bias.as_ref().map(expand);
        let (eps, rms) = (self.epsilon, self.rms);
        let mut y = vec![0.0f32; xv.len()];
        // Per row: (mean, 1 / std).
        let stats: Vec<(f32, f32)> = ctx.pool.map(outer, xv.len() * 4, |i| {
            let row = &xv[i * inner..(i + 1) * inner];
            let n = inner as f32;
            let mean = if rms { 0.0 } else { row.iter().sum::<f32>() / n };
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            (mean, 1.0 / (var + eps).sqrt())
        });
        ctx.pool.for_each_chunk(&mut y, inner.max(1), xv.len() * 2, |i, out| {
            let row = &xv[i * inner..i * inner + out.len()];
            let (mean, inv) = stats[i];
            for (j, (o, &v)) in out.iter_mut().zip(row).enumerate() {
                *o = (v - mean) * inv * sc[j] + bi.as_ref().map_or(0.0, |b| b[j]);
            }
        });
        let mut stat_shape = x.shape[..ax].to_vec();
        stat_shape.extend(std::iter::repeat_n(1, x.shape.len() - ax));
        Ok(vec![
            CpuTensor::f32(x.shape.clone(), y),
            CpuTensor::f32(stat_shape.clone(), stats.iter().map(|s| s.0).collect()),
            CpuTensor::f32(stat_shape, stats.iter().map(|s| s.1).collect()),
        ])
    }
}

/// GroupNormalization, and InstanceNormalization as one group per channel:
/// statistics over (channels of the group × spatial), then a per-channel
/// scale and bias.
pub(super) struct GroupNormKernel {
    pub(super) epsilon: f32,
    /// `None`: one group per channel (InstanceNormalization).
    pub(super) groups: Option<usize>,
}

impl Kernel for GroupNormKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if x.shape.len() < 2 {
            bail!("normalisation input must have rank ≥ 2, got {:?}", x.shape);
        }
        let c = x.shape[1];
        let g = self.groups.unwrap_or(c);
        if g == 0 || c % g != 0 {
            bail!("num_groups {g} must be positive and divide the {c} channels");
        }
        let per_group = c / g;
        let per_channel = |i: usize, what: &str| -> Result<Vec<f32>> {
            let t = input(inputs, i)?;
            let v = t.as_f32()?;
            if v.len() == c {
                Ok(v.to_vec())
            } else if v.len() == g && self.groups.is_some() {
                Ok((0..c).map(|k| v[k / per_group]).collect())
            } else {
                bail!("{what} must have one value per channel ({c}), got shape {:?}", t.shape)
            }
        };
        let (scale, bias) = (per_channel(1, "scale")?, per_channel(2, "bias")?);
        let plane: usize = x.shape[2..].iter().product();
        let block = per_group * plane;
        let xv = x.as_f32()?;
        let mut y = vec![0.0f32; xv.len()];
        let eps = self.epsilon;
        ctx.pool.for_each_chunk(&mut y, block.max(1), xv.len() * 4, |i, out| {
            let xs = &xv[i * block..i * block + out.len()];
            let n = block as f32;
            let mean = xs.iter().sum::<f32>() / n;
            let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + eps).sqrt();
            let c0 = (i % g) * per_group;
            for (j, (o, &v)) in out.iter_mut().zip(xs).enumerate() {
                let k = c0 + j / plane.max(1);
                *o = (v - mean) * inv * scale[k] + bias[k];
            }
        });
        Ok(vec![CpuTensor::f32(x.shape.clone(), y)])
    }
}

/// Local response normalisation across channels: each value divided by
/// `(bias + alpha / size · Σ x²)^beta` over the `size` channels around its
/// own (clipped at the ends), summed in channel order.
pub(super) struct LrnKernel {
    pub(super) alpha: f32,
    pub(super) beta: f32,
    pub(super) bias: f32,
    pub(super) size: usize,
}

impl Kernel for LrnKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if x.shape.len() < 2 {
            bail!("LRN needs X of rank ≥ 2 (N, C, ...), got {:?}", x.shape);
        }
        let xv = x.as_f32()?;
        let c = x.shape[1];
        let plane: usize = x.shape[2..].iter().product();
        let (before, after) = ((self.size - 1) / 2, self.size / 2);
        let scale = self.alpha / self.size as f32;
        let mut y = vec![0.0f32; xv.len()];
        // One output plane (image b, channel ch) per item.
        ctx.pool.for_each_chunk(&mut y, plane.max(1), xv.len() * (self.size + 8), |i, out| {
            let (b, ch) = (i / c.max(1), i % c.max(1));
            let (lo, hi) = (ch.saturating_sub(before), (ch + after).min(c - 1));
            let at = |k: usize| &xv[(b * c + k) * plane..(b * c + k + 1) * plane];
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    out.fill(0.0);
                    for k in lo..=hi {
                        for (o, &v) in out.iter_mut().zip(at(k)) {
                            *o += v * v;
                        }
                    }
                },
            );
            for (o, &v) in out.iter_mut().zip(at(ch)) {
                *o = v / libm::powf(self.bias + scale * *o, self.beta);
            }
        });
        Ok(vec![CpuTensor::f32(x.shape.clone(), y)])
    }
}

/// Dropout at inference: the input unchanged and, when asked for, a mask
/// of all true.
pub(super) struct DropoutKernel {
    pub(super) mask: bool,
}

impl Kernel for DropoutKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let mut outs = vec![x.clone()];
        if self.mask {
            let n = ctx.check_numel(&x.shape)?;
            outs.push(CpuTensor {
                dtype: strata_ir::DType::Bool,
                shape: x.shape.clone(),
                data: crate::tensor::Data::Bool(std::sync::Arc::new(vec![1; n])),
            });
        }
        Ok(outs)
    }
}

/// What [`AxesNormKernel`] divides by.
#[derive(Debug, Clone, Copy)]
pub(super) enum AxesNorm {
    /// LpNormalization (p = 1 or 2) along one axis: `x / ‖x‖_p` (0 where
    /// the norm is 0).
    Lp(i64),
    /// MeanVarianceNormalization: `(x - mean) / (std + 1e-9)`, population
    /// variance.
    MeanVariance,
}

/// LpNormalization and MeanVarianceNormalization: statistics over `axes`
/// accumulated in f64 in input order (one pass per statistic, on one
/// thread), then each element mapped on its own.
pub(super) struct AxesNormKernel {
    pub(super) axes: Vec<i64>,
    pub(super) how: AxesNorm,
}

/// Each element's group (flat index over the shape with `reduced` axes
/// kept as 1), in input order.
fn group_of(shape: &[usize], reduced: &[bool]) -> (Vec<usize>, usize) {
    let kept: Vec<usize> = shape.iter().zip(reduced).map(|(&d, &r)| if r { 1 } else { d }).collect();
    let ks = strides(&kept);
    let n: usize = shape.iter().product();
    let mut idx = vec![0usize; shape.len()];
    let mut of = Vec::with_capacity(n);
    for _ in 0..n {
        of.push((0..shape.len()).filter(|&d| !reduced[d]).map(|d| idx[d] * ks[d]).sum());
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    (of, kept.iter().product())
}

impl Kernel for AxesNormKernel {
    fn run(&self, _ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let rank = x.shape.len();
        let mut reduced = vec![false; rank];
        for &a in &self.axes {
            let i = super::axis(a, rank)?;
            if reduced[i] {
                bail!("axis {a} is given twice");
            }
            reduced[i] = true;
        }
        let xv = x.as_f32()?;
        let (of, groups) = group_of(&x.shape, &reduced);
        let mut s = vec![0.0f64; groups];
        let y: Vec<f32> = match self.how {
            AxesNorm::Lp(p) => {
                for (&v, &g) in xv.iter().zip(&of) {
                    let v = f64::from(v);
                    s[g] += if p == 1 { v.abs() } else { v * v };
                }
                let norm: Vec<f64> = s.into_iter().map(|a| if p == 1 { a } else { a.sqrt() }).collect();
                xv.iter()
                    .zip(&of)
                    .map(|(&v, &g)| if norm[g] == 0.0 { 0.0 } else { (f64::from(v) / norm[g]) as f32 })
                    .collect()
            }
            AxesNorm::MeanVariance => {
                let mut count = vec![0usize; groups];
                for (&v, &g) in xv.iter().zip(&of) {
                    s[g] += f64::from(v);
                    count[g] += 1;
                }
                let mean: Vec<f64> = s.iter().zip(&count).map(|(&s, &c)| s / c as f64).collect();
                let mut sq = vec![0.0f64; groups];
                for (&v, &g) in xv.iter().zip(&of) {
                    let d = f64::from(v) - mean[g];
                    sq[g] += d * d;
                }
                let den: Vec<f64> = sq.iter().zip(&count).map(|(&s, &c)| (s / c as f64).sqrt() + 1e-9).collect();
                xv.iter().zip(&of).map(|(&v, &g)| ((f64::from(v) - mean[g]) / den[g]) as f32).collect()
            }
        };
        Ok(vec![CpuTensor::f32(x.shape.clone(), y)])
    }
}
