//! Normalisation kernels: BatchNormalization, InstanceNormalization,
//! LayerNormalization, GroupNormalization, RMSNormalization,
//! LpNormalization, MeanVarianceNormalization and LRN.
//!
//! Every statistic is computed in f64 by summing the elements of a group in
//! row-major order; the mean comes first and the (population) variance is
//! the mean of the squared deviations from it.

use strata_ir::DType;

use super::{float_input, opt_float_input};
use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, Ctx, one};
use crate::util::{broadcast_map, broadcast_shapes, norm_axes, norm_axis, strides, unravel};
use crate::value::{Tensor, Value};

/// Reduction groups of a tensor of `shape` reduced over `axes`: for every
/// element (row-major) the flat index of its group among the kept
/// dimensions, and the number of groups.
fn groups(shape: &[usize], axes: &[usize]) -> (Vec<usize>, usize) {
    let kept: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let n_groups: usize = kept.iter().product();
    let kept_strides = strides(&kept);
    let n: usize = shape.iter().product();
    let mut of = Vec::with_capacity(n);
    for flat in 0..n {
        let idx = unravel(flat, shape);
        let g: usize =
            idx.iter().zip(&kept).zip(&kept_strides).map(|((&i, &k), &s)| if k == 1 { 0 } else { i * s }).sum();
        of.push(g);
    }
    (of, n_groups)
}

/// Mean and population variance of each group (see [`groups`]).
fn group_stats(x: &[f64], of: &[usize], n_groups: usize) -> (Vec<f64>, Vec<f64>) {
    let mut count = vec![0usize; n_groups];
    let mut sum = vec![0.0; n_groups];
    for (&v, &g) in x.iter().zip(of) {
        sum[g] += v;
        count[g] += 1;
    }
    let mean: Vec<f64> = sum.iter().zip(&count).map(|(&s, &c)| s / c as f64).collect();
    let mut sq = vec![0.0; n_groups];
    for (&v, &g) in x.iter().zip(of) {
        let d = v - mean[g];
        sq[g] += d * d;
    }
    let var = sq.iter().zip(&count).map(|(&s, &c)| s / c as f64).collect();
    (mean, var)
}

/// A per-channel parameter: a float tensor of exactly `c` elements.
fn channel_param(t: &Tensor, c: usize, what: &str) -> KResult<Vec<f64>> {
    if t.numel() != c {
        bail!("{what} must have {c} elements (one per channel), got shape {:?}", t.shape);
    }
    Ok(t.f()?.to_vec())
}

/// A parameter broadcast (unidirectionally) to `shape`, one value per
/// element of that shape.
fn broadcast_param(t: &Tensor, shape: &[usize], what: &str) -> KResult<Vec<f64>> {
    if t.rank() > shape.len() || broadcast_shapes(&[shape, &t.shape])? != shape {
        bail!("{what} of shape {:?} does not broadcast to the input shape {shape:?}", t.shape);
    }
    let v = t.f()?;
    Ok(broadcast_map(&t.shape, shape).into_iter().map(|i| v[i]).collect())
}

/// The channel (axis 1) of every element of a tensor of rank >= 2.
fn channel_of(shape: &[usize]) -> Vec<usize> {
    let n: usize = shape.iter().product();
    let inner: usize = shape[2..].iter().product();
    (0..n).map(|i| (i / inner.max(1)) % shape[1]).collect()
}

/// Check the input is `N x C x ...` and return `C`.
fn channels(x: &Tensor, op: &str) -> KResult<usize> {
    if x.rank() < 2 {
        bail!("{op} needs an input of rank >= 2 (N x C x ...), got shape {:?}", x.shape);
    }
    Ok(x.shape[1])
}

/// BatchNormalization. In inference mode it normalises with the given
/// running statistics; in training mode (the attribute, or more than one
/// output requested as in opsets before 14) with the batch statistics, and
/// also returns the updated running mean and variance, then the batch
/// mean and variance.
pub fn batch_norm(args: &Args, ctx: &dyn Ctx, eps: f64, momentum: f64, training: bool) -> KResult<Vec<Value>> {
    let x = float_input(args, 0, "X")?;
    let c = channels(x, "BatchNormalization")?;
    let scale = channel_param(float_input(args, 1, "scale")?, c, "scale")?;
    let bias = channel_param(float_input(args, 2, "B")?, c, "B")?;
    let mean_t = float_input(args, 3, "input_mean")?;
    let var_t = float_input(args, 4, "input_var")?;
    let run_mean = channel_param(mean_t, c, "input_mean")?;
    let run_var = channel_param(var_t, c, "input_var")?;
    let xv = x.f()?;
    let ch = channel_of(&x.shape);
    let normalise = |mean: &[f64], var: &[f64]| -> Vec<f64> {
        xv.iter().zip(&ch).map(|(&v, &k)| scale[k] * (v - mean[k]) / libm::sqrt(var[k] + eps) + bias[k]).collect()
    };
    if !training && ctx.n_outputs() <= 1 {
        return one(Tensor::from_f(x.dtype, x.shape.clone(), normalise(&run_mean, &run_var))?);
    }
    let axes: Vec<usize> = (0..x.rank()).filter(|&a| a != 1).collect();
    let (of, n_groups) = groups(&x.shape, &axes);
    let (batch_mean, batch_var) = group_stats(xv, &of, n_groups);
    let y = normalise(&batch_mean, &batch_var);
    let new_mean: Vec<f64> =
        run_mean.iter().zip(&batch_mean).map(|(&r, &b)| r * momentum + b * (1.0 - momentum)).collect();
    let new_var: Vec<f64> =
        run_var.iter().zip(&batch_var).map(|(&r, &b)| r * momentum + b * (1.0 - momentum)).collect();
    let stat = |v: Vec<f64>, dt: DType| Tensor::from_f(dt, vec![c], v).map(Value::Tensor);
    Ok(vec![
        Value::Tensor(Tensor::from_f(x.dtype, x.shape.clone(), y)?),
        stat(new_mean, mean_t.dtype)?,
        stat(new_var, var_t.dtype)?,
        stat(batch_mean, mean_t.dtype)?,
        stat(batch_var, var_t.dtype)?,
    ])
}

/// InstanceNormalization: normalise each (n, c) slice over the spatial
/// dimensions, then apply the per-channel scale and bias.
pub fn instance_norm(args: &Args, eps: f64) -> KResult<Vec<Value>> {
    let x = float_input(args, 0, "input")?;
    let c = channels(x, "InstanceNormalization")?;
    let scale = channel_param(float_input(args, 1, "scale")?, c, "scale")?;
    let bias = channel_param(float_input(args, 2, "B")?, c, "B")?;
    let axes: Vec<usize> = (2..x.rank()).collect();
    let (of, n_groups) = groups(&x.shape, &axes);
    let (mean, var) = group_stats(x.f()?, &of, n_groups);
    let ch = channel_of(&x.shape);
    let y = x
        .f()?
        .iter()
        .zip(&of)
        .zip(&ch)
        .map(|((&v, &g), &k)| scale[k] * (v - mean[g]) / libm::sqrt(var[g] + eps) + bias[k])
        .collect();
    one(Tensor::from_f(x.dtype, x.shape.clone(), y)?)
}

/// The float dtype named by a `stash_type` attribute.
fn stash_dtype(stash_type: i64) -> KResult<DType> {
    match DType::from_onnx_code(stash_type) {
        Some(d) if d.is_float() => Ok(d),
        _ => bail!("stash_type {stash_type} is not a floating-point type"),
    }
}

/// LayerNormalization over the dimensions `axis..rank`. Outputs Y, then
/// Mean and InvStdDev (shape of X with the normalised dimensions set to 1,
/// type `stash_type`).
pub fn layer_norm(args: &Args, axis: i64, eps: f64, stash_type: i64) -> KResult<Vec<Value>> {
    let x = float_input(args, 0, "X")?;
    let axis = norm_axis(axis, x.rank())?;
    let stash = stash_dtype(stash_type)?;
    let scale = broadcast_param(float_input(args, 1, "Scale")?, &x.shape, "Scale")?;
    let bias = match opt_float_input(args, 2, "B")? {
        Some(b) => Some(broadcast_param(b, &x.shape, "B")?),
        None => None,
    };
    let axes: Vec<usize> = (axis..x.rank()).collect();
    let (of, n_groups) = groups(&x.shape, &axes);
    let (mean, var) = group_stats(x.f()?, &of, n_groups);
    let inv_std: Vec<f64> = var.iter().map(|&v| 1.0 / libm::sqrt(v + eps)).collect();
    let y = x
        .f()?
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let g = of[i];
            let n = (v - mean[g]) * inv_std[g] * scale[i];
            match &bias {
                Some(b) => n + b[i],
                None => n,
            }
        })
        .collect();
    let stat_shape: Vec<usize> = x.shape.iter().enumerate().map(|(i, &d)| if i < axis { d } else { 1 }).collect();
    Ok(vec![
        Value::Tensor(Tensor::from_f(x.dtype, x.shape.clone(), y)?),
        Value::Tensor(Tensor::from_f(stash, stat_shape.clone(), mean)?),
        Value::Tensor(Tensor::from_f(stash, stat_shape, inv_std)?),
    ])
}

/// GroupNormalization: channels split into `num_groups` groups, each
/// normalised with the statistics of its channels and spatial positions.
/// Scale and bias are per channel (opset 21) or, in the opset-18 form,
/// per group.
pub fn group_norm(args: &Args, eps: f64, num_groups: i64) -> KResult<Vec<Value>> {
    let x = float_input(args, 0, "X")?;
    let c = channels(x, "GroupNormalization")?;
    if num_groups <= 0 || c % num_groups as usize != 0 {
        bail!("num_groups {num_groups} must be positive and divide the {c} channels");
    }
    let g = num_groups as usize;
    let per_group = c / g;
    let scale_t = float_input(args, 1, "scale")?;
    let bias_t = float_input(args, 2, "bias")?;
    // Expand per-group parameters (opset 18) to one value per channel.
    let per_channel = |t: &Tensor, what: &str| -> KResult<Vec<f64>> {
        if t.numel() == c {
            channel_param(t, c, what)
        } else if t.numel() == g {
            let v = channel_param(t, g, what)?;
            Ok((0..c).map(|k| v[k / per_group]).collect())
        } else {
            bail!("{what} must have one value per channel ({c}), got shape {:?}", t.shape)
        }
    };
    let scale = per_channel(scale_t, "scale")?;
    let bias = per_channel(bias_t, "bias")?;
    // View X as [N, G, C/G * spatial] and reduce the last dimension.
    let inner: usize = x.shape[2..].iter().product();
    let view = [x.shape[0], g, per_group * inner];
    let (of, n_groups) = groups(&view, &[2]);
    let (mean, var) = group_stats(x.f()?, &of, n_groups);
    let ch = channel_of(&x.shape);
    let y = x
        .f()?
        .iter()
        .zip(&of)
        .zip(&ch)
        .map(|((&v, &grp), &k)| scale[k] * (v - mean[grp]) / libm::sqrt(var[grp] + eps) + bias[k])
        .collect();
    one(Tensor::from_f(x.dtype, x.shape.clone(), y)?)
}

/// RMSNormalization over the dimensions `axis..rank`:
/// `x / sqrt(mean(x^2) + epsilon) * scale`.
pub fn rms_norm(args: &Args, axis: i64, eps: f64) -> KResult<Vec<Value>> {
    let x = float_input(args, 0, "X")?;
    let axis = norm_axis(axis, x.rank())?;
    let scale = broadcast_param(float_input(args, 1, "scale")?, &x.shape, "scale")?;
    let axes: Vec<usize> = (axis..x.rank()).collect();
    let (of, n_groups) = groups(&x.shape, &axes);
    let xv = x.f()?;
    let mut sum_sq = vec![0.0; n_groups];
    let mut count = vec![0usize; n_groups];
    for (&v, &g) in xv.iter().zip(&of) {
        sum_sq[g] += v * v;
        count[g] += 1;
    }
    let inv_rms: Vec<f64> = sum_sq.iter().zip(&count).map(|(&s, &n)| 1.0 / libm::sqrt(s / n as f64 + eps)).collect();
    let y = xv.iter().enumerate().map(|(i, &v)| v * inv_rms[of[i]] * scale[i]).collect();
    one(Tensor::from_f(x.dtype, x.shape.clone(), y)?)
}

/// LpNormalization along one axis (p = 1 or 2); a zero norm gives zeros.
pub fn lp_norm(args: &Args, axis: i64, p: i64) -> KResult<Vec<Value>> {
    let x = float_input(args, 0, "input")?;
    let axis = norm_axis(axis, x.rank())?;
    if p != 1 && p != 2 {
        bail!("p must be 1 or 2, got {p}");
    }
    let (of, n_groups) = groups(&x.shape, &[axis]);
    let xv = x.f()?;
    let mut acc = vec![0.0; n_groups];
    for (&v, &g) in xv.iter().zip(&of) {
        acc[g] += if p == 1 { v.abs() } else { v * v };
    }
    let norm: Vec<f64> = acc.into_iter().map(|a| if p == 1 { a } else { libm::sqrt(a) }).collect();
    let y = xv.iter().zip(&of).map(|(&v, &g)| if norm[g] == 0.0 { 0.0 } else { v / norm[g] }).collect();
    one(Tensor::from_f(x.dtype, x.shape.clone(), y)?)
}

/// MeanVarianceNormalization: `(x - mean) / (std + 1e-9)` over `axes`.
pub fn mean_variance_norm(args: &Args, axes: &[i64]) -> KResult<Vec<Value>> {
    let x = float_input(args, 0, "X")?;
    let axes = norm_axes(axes, x.rank())?;
    let (of, n_groups) = groups(&x.shape, &axes);
    let (mean, var) = group_stats(x.f()?, &of, n_groups);
    let y = x.f()?.iter().zip(&of).map(|(&v, &g)| (v - mean[g]) / (libm::sqrt(var[g]) + 1e-9)).collect();
    one(Tensor::from_f(x.dtype, x.shape.clone(), y)?)
}

/// LRN: each element divided by `(bias + alpha / size * s)^beta`, where `s`
/// is the sum of squares over a window of `size` neighbouring channels
/// (`floor((size-1)/2)` before, `ceil((size-1)/2)` after).
pub fn lrn(args: &Args, alpha: f64, beta: f64, bias: f64, size: i64) -> KResult<Vec<Value>> {
    let x = float_input(args, 0, "X")?;
    let c = channels(x, "LRN")?;
    if size <= 0 {
        bail!("size must be positive, got {size}");
    }
    let before = ((size - 1) / 2) as usize;
    let after = (size as usize) / 2; // == ceil((size - 1) / 2)
    let stride = strides(&x.shape)[1];
    let xv = x.f()?;
    let y = xv
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / stride) % c;
            let base = i - ch * stride;
            let lo = ch.saturating_sub(before);
            let hi = (ch + after).min(c - 1);
            let s: f64 = (lo..=hi).map(|k| xv[base + k * stride] * xv[base + k * stride]).sum();
            v / libm::pow(bias + alpha / size as f64 * s, beta)
        })
        .collect();
    one(Tensor::from_f(x.dtype, x.shape.clone(), y)?)
}
