//! Reference kernels for `strata_ir::ops::SignalOp`: discrete Fourier
//! transforms, short-time Fourier transforms, window functions and the mel
//! filter bank.
//!
//! Transforms are the direct O(n²) sums of their definitions, computed in
//! f64 with `libm` trigonometry (angles reduced modulo the transform length
//! first) and summed in index order, then rounded to the output type.

use strata_ir::DType;
use strata_ir::ops::SignalOp;

use super::{Args, Ctx, one};
use crate::bail;
use crate::error::KResult;
use crate::util::{check_numel, strides, unravel};
use crate::value::{Tensor, Value};

/// Run one operator of this family.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &SignalOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    match op {
        SignalOp::DFT { axis, inverse, onesided } => one(dft(args, *axis, *inverse != 0, *onesided != 0)?),
        SignalOp::STFT { onesided } => one(stft(args, *onesided != 0)?),
        SignalOp::HannWindow { output_datatype, periodic } => {
            // sin²(πn/N) = 0.5 - 0.5·cos(2πn/N); written as the ONNX formula.
            one(window(args, *output_datatype, *periodic != 0, |n, d| {
                let s = libm::sin(std::f64::consts::PI * n / d);
                s * s
            })?)
        }
        SignalOp::HammingWindow { output_datatype, periodic } => {
            let alpha = 25.0 / 46.0;
            one(window(args, *output_datatype, *periodic != 0, move |n, d| {
                alpha - (1.0 - alpha) * libm::cos(2.0 * std::f64::consts::PI * n / d)
            })?)
        }
        SignalOp::BlackmanWindow { output_datatype, periodic } => {
            one(window(args, *output_datatype, *periodic != 0, |n, d| {
                let pi = std::f64::consts::PI;
                0.42 - 0.5 * libm::cos(2.0 * pi * n / d) + 0.08 * libm::cos(4.0 * pi * n / d)
            })?)
        }
        SignalOp::MelWeightMatrix { output_datatype } => one(mel_weight_matrix(args, *output_datatype)?),
    }
}

// ---------------------------------------------------------------------------
// Fourier transforms

/// e^(sign · 2πi · k·n / len) as (cos, sin), with k·n reduced modulo `len`.
fn twiddle(k: usize, n: usize, len: usize, sign: f64) -> (f64, f64) {
    let r = ((k as u128 * n as u128) % len as u128) as f64;
    let angle = sign * 2.0 * std::f64::consts::PI * r / len as f64;
    (libm::cos(angle), libm::sin(angle))
}

/// Forward (`sign = -1`) or unnormalised backward (`sign = +1`) DFT of
/// length `len` of a complex sequence, zero-padded or truncated to `len`;
/// returns the first `bins` outputs.
fn dft_1d(re: &[f64], im: &[f64], len: usize, bins: usize, sign: f64) -> (Vec<f64>, Vec<f64>) {
    let used = re.len().min(len);
    let mut out_re = Vec::with_capacity(bins);
    let mut out_im = Vec::with_capacity(bins);
    for k in 0..bins {
        let (mut sr, mut si) = (0.0, 0.0);
        for n in 0..used {
            let (c, s) = twiddle(k, n, len, sign);
            sr += re[n] * c - im[n] * s;
            si += re[n] * s + im[n] * c;
        }
        out_re.push(sr);
        out_im.push(si);
    }
    (out_re, out_im)
}

/// Inverse real DFT of length `len` from the one-sided spectrum `re + i·im`
/// (numpy `irfft`). The full spectrum is the Hermitian extension
/// `Y[len - k] = conj(Y[k])`, so each bin strictly between DC and Nyquist
/// contributes twice its real part: `x[n] = (1/len) Σ_k w_k Re(Y[k] e^(2πikn/len))`
/// with `w_k = 1` for DC and (even `len`) Nyquist, else 2. The imaginary
/// parts of DC and Nyquist are ignored; missing bins are zero, extra bins
/// beyond `len / 2` are dropped.
fn irfft_1d(re: &[f64], im: &[f64], len: usize) -> Vec<f64> {
    let half = len / 2 + 1;
    let bins = re.len().min(half);
    let mut out = Vec::with_capacity(len);
    for n in 0..len {
        let mut acc = 0.0;
        for k in 0..bins {
            let edge = k == 0 || (len.is_multiple_of(2) && k == len / 2);
            let (w, yi) = if edge { (1.0, 0.0) } else { (2.0, im[k]) };
            let (c, s) = twiddle(k, n, len, 1.0);
            acc += w * (re[k] * c - yi * s);
        }
        out.push(acc / len as f64);
    }
    out
}

fn dft(args: &Args, axis_attr: Option<i64>, inverse: bool, onesided: bool) -> KResult<Tensor> {
    let x = args.tensor(0)?;
    if !x.dtype.is_float() {
        bail!("input must be a float tensor, got {}", x.dtype);
    }
    let r = x.rank();
    // Opset 17-19: attribute; opset 20: optional input (default -2).
    let axis = match (axis_attr, args.opt_tensor(2)?) {
        (Some(a), _) => Some(a),
        (None, Some(t)) => Some(t.scalar_i64()?),
        (None, None) => None,
    };
    let dft_length = args.opt_tensor(1)?.map(|t| t.scalar_i64()).transpose()?;
    let geo = strata_ir::ops::signal::dft_geometry(&x.shape, axis, dft_length, inverse, onesided)
        .map_err(crate::KernelError::new)?;
    let strata_ir::ops::signal::DftGeometry { axis: ax, n_in, len, out_len, complex_in, out_shape, .. } = geo;
    check_numel(&out_shape)?;

    let xv = x.f()?;
    let in_strides = strides(&x.shape);
    let out_strides = strides(&out_shape);
    let mut out = vec![0.0; out_shape.iter().product()];
    // Every line along `ax`: iterate over the other dimensions except the last.
    let mut outer_shape = x.shape[..r - 1].to_vec();
    outer_shape[ax] = 1;
    let outer: usize = outer_shape.iter().product();
    for o in 0..outer {
        let idx = unravel(o, &outer_shape);
        let base_in: usize = idx.iter().zip(&in_strides).map(|(i, s)| i * s).sum();
        let base_out: usize = idx.iter().zip(&out_strides).map(|(i, s)| i * s).sum();
        let re: Vec<f64> = (0..n_in).map(|n| xv[base_in + n * in_strides[ax]]).collect();
        let im: Vec<f64> =
            (0..n_in).map(|n| if complex_in { xv[base_in + n * in_strides[ax] + 1] } else { 0.0 }).collect();
        if inverse && onesided {
            let y = irfft_1d(&re, &im, len);
            for (k, v) in y.into_iter().enumerate() {
                out[base_out + k * out_strides[ax]] = v;
            }
        } else {
            let sign = if inverse { 1.0 } else { -1.0 };
            let (yr, yi) = dft_1d(&re, &im, len, out_len, sign);
            let scale = if inverse { len as f64 } else { 1.0 };
            for k in 0..out_len {
                out[base_out + k * out_strides[ax]] = yr[k] / scale;
                out[base_out + k * out_strides[ax] + 1] = yi[k] / scale;
            }
        }
    }
    Tensor::from_f(x.dtype, out_shape, out)
}

fn stft(args: &Args, onesided: bool) -> KResult<Tensor> {
    let x = args.tensor(0)?;
    if !x.dtype.is_float() {
        bail!("signal must be a float tensor, got {}", x.dtype);
    }
    if x.rank() != 3 || !matches!(x.shape[2], 1 | 2) {
        bail!("signal must have shape [batch, length, 1 or 2], got {:?}", x.shape);
    }
    let (batch, sig_len, complex_in) = (x.shape[0], x.shape[1], x.shape[2] == 2);
    let step = args.tensor(1)?.scalar_i64()?;
    if step < 1 {
        bail!("frame_step must be positive, got {step}");
    }
    let step = step as usize;
    let window = args.opt_tensor(2)?;
    if let Some(w) = window
        && w.rank() != 1
    {
        bail!("window must be 1-D, got shape {:?}", w.shape);
    }
    let frame_len = match (args.opt_tensor(3)?, window) {
        (Some(t), w) => {
            let l = t.scalar_i64()?;
            if l < 1 {
                bail!("frame_length must be positive, got {l}");
            }
            if let Some(w) = w
                && w.shape[0] != l as usize
            {
                bail!("window length {} differs from frame_length {l}", w.shape[0]);
            }
            l as usize
        }
        (None, Some(w)) => w.shape[0],
        (None, None) => sig_len,
    };
    if frame_len == 0 || frame_len > sig_len {
        bail!("frame length {frame_len} must be in 1..={sig_len} (the signal length)");
    }
    let weights: Vec<f64> = match window {
        Some(w) => w.to_f64()?,
        None => vec![1.0; frame_len],
    };
    let n_frames = 1 + (sig_len - frame_len) / step;
    let bins = if onesided { frame_len / 2 + 1 } else { frame_len };
    let out_shape = vec![batch, n_frames, bins, 2];
    check_numel(&out_shape)?;
    let xv = x.f()?;
    let c = x.shape[2];
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for b in 0..batch {
        for f in 0..n_frames {
            // The windowed frame, rounded to the signal's type as the
            // reference multiplies in that type.
            let mut re = Vec::with_capacity(frame_len);
            let mut im = Vec::with_capacity(frame_len);
            for i in 0..frame_len {
                let at = (b * sig_len + f * step + i) * c;
                re.push(x.dtype.round_float(xv[at] * weights[i]));
                im.push(if complex_in { x.dtype.round_float(xv[at + 1] * weights[i]) } else { 0.0 });
            }
            let (yr, yi) = dft_1d(&re, &im, frame_len, bins, -1.0);
            for k in 0..bins {
                out.push(yr[k]);
                out.push(yi[k]);
            }
        }
    }
    Tensor::from_f(x.dtype, out_shape, out)
}

// ---------------------------------------------------------------------------
// Windows and mel filters

/// A window of the length given by input 0: `f(n, N)` for n in 0..size,
/// with N = size (periodic) or size - 1 (symmetric).
fn window(args: &Args, dtype: DType, periodic: bool, f: impl Fn(f64, f64) -> f64) -> KResult<Tensor> {
    if !dtype.is_float() && !dtype.is_int() {
        bail!("output_datatype must be numeric, got {dtype}");
    }
    let size = args.tensor(0)?.scalar_i64()?;
    if size < 0 {
        bail!("window size must not be negative, got {size}");
    }
    let size = size as usize;
    check_numel(&[size])?;
    let denom = if periodic { size as f64 } else { size as f64 - 1.0 };
    let v = (0..size).map(|n| f(n as f64, denom)).collect();
    Tensor::from_f64_any(dtype, vec![size], v)
}

fn mel_weight_matrix(args: &Args, dtype: DType) -> KResult<Tensor> {
    if !dtype.is_float() && !dtype.is_int() {
        bail!("output_datatype must be numeric, got {dtype}");
    }
    let num_mel = args.tensor(0)?.scalar_i64()?;
    let dft_len = args.tensor(1)?.scalar_i64()?;
    let rate = args.tensor(2)?.scalar_i64()?;
    let (lower_t, upper_t) = (args.tensor(3)?, args.tensor(4)?);
    if num_mel < 1 || dft_len < 1 || rate < 1 {
        bail!("num_mel_bins ({num_mel}), dft_length ({dft_len}) and sample_rate ({rate}) must be positive");
    }
    let (num_mel, dft_len) = (num_mel as usize, dft_len as usize);
    let n_spec = dft_len / 2 + 1;
    let out_shape = vec![n_spec, num_mel];
    check_numel(&out_shape)?;
    // hertz -> mel in the edges' own float type (as the reference does),
    // the rest in f64.
    let to_mel = |t: &Tensor| -> KResult<f64> {
        let d = t.dtype;
        if !d.is_float() {
            bail!("edge frequencies must be float, got {d}");
        }
        let hz = t.scalar_f64()?;
        let l = d.round_float(libm::log1p(d.round_float(hz / 700.0)));
        Ok(d.round_float(2595.0 * l) / libm::log(10.0))
    };
    let (low_mel, high_mel) = (to_mel(lower_t)?, to_mel(upper_t)?);
    let mel_step = (high_mel - low_mel) / (num_mel + 2) as f64;
    let mut points = Vec::with_capacity(num_mel + 2);
    for i in 0..num_mel + 2 {
        let mel = i as f64 * mel_step + low_mel;
        let hz = 700.0 * libm::expm1(mel / 2595.0 * libm::log(10.0));
        let bin = libm::floor((dft_len as f64 + 1.0) * hz / rate as f64);
        if !(0.0..n_spec as f64).contains(&bin) {
            bail!("mel frequency {hz} Hz falls outside the {n_spec} spectrogram bins");
        }
        points.push(bin as usize);
    }
    if points.windows(2).any(|w| w[1] < w[0]) {
        bail!("lower_edge_hertz must not exceed upper_edge_hertz");
    }
    let mut out = vec![0.0f64; n_spec * num_mel];
    for i in 0..num_mel {
        let (lo, center, hi) = (points[i], points[i + 1], points[i + 2]);
        if center == lo {
            out[center * num_mel + i] = 1.0;
        } else {
            for j in lo..=center {
                out[j * num_mel + i] = (j - lo) as f64 / (center - lo) as f64;
            }
        }
        if hi > center {
            for j in center..hi {
                out[j * num_mel + i] = (hi - j) as f64 / (hi - center) as f64;
            }
        }
    }
    Tensor::from_f64_any(dtype, out_shape, out)
}
