//! Reference kernels for `strata_ir::ops::QuantOp`: linear (de)quantisation
//! and the integer / quantised convolution and matrix products.
//!
//! Quantisation parameters (scale, zero point) are per tensor, per axis or
//! per block; [`param_index`] maps every element of the data tensor to the
//! parameter element it uses. Arithmetic follows the ONNX reference
//! implementation: quotients and products are rounded to the float type the
//! reference computes them in, and rounding to integers is half to even.

use strata_ir::DType;
use strata_ir::dtype::{decode_float_bits, encode_float_bits};
use strata_ir::ops::QuantOp;
use strata_ir::window::AutoPad;

use super::{Args, Ctx, one};
use crate::bail;
use crate::error::KResult;
use crate::util::{broadcast_map, broadcast_shapes, check_numel, norm_axis, strides, unravel};
use crate::value::{Tensor, Value};

/// Run one operator of this family.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &QuantOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    match op {
        QuantOp::QuantizeLinear { axis, block_size, output_dtype, saturate, precision } => {
            one(quantize_linear(args, *axis, *block_size, *output_dtype, *saturate != 0, *precision)?)
        }
        QuantOp::DequantizeLinear { axis, block_size, output_dtype } => {
            one(dequantize_linear(args, *axis, *block_size, *output_dtype)?)
        }
        QuantOp::DynamicQuantizeLinear {} => dynamic_quantize_linear(args.tensor(0)?),
        QuantOp::MatMulInteger {} => one(matmul_integer(args)?),
        QuantOp::QLinearMatMul {} => one(qlinear_matmul(args)?),
        QuantOp::ConvInteger { auto_pad, dilations, group, kernel_shape, pads, strides } => {
            let attrs = ConvAttrs { auto_pad: *auto_pad, dilations, group: *group, kernel_shape, pads, strides };
            one(conv_integer(args, &attrs)?)
        }
        QuantOp::QLinearConv { auto_pad, dilations, group, kernel_shape, pads, strides } => {
            let attrs = ConvAttrs { auto_pad: *auto_pad, dilations, group: *group, kernel_shape, pads, strides };
            one(qlinear_conv(args, &attrs)?)
        }
    }
}

// ---------------------------------------------------------------------------
// Shared helpers

/// The float type numpy computes a binary operation of two float types in.
fn promote_float(a: DType, b: DType) -> DType {
    if a == b {
        a
    } else if a == DType::F64 || b == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// Round half to even (numpy `rint`).
fn rint(v: f64) -> f64 {
    v.round_ties_even()
}

/// For every element of a tensor of shape `x_shape`, the flat index of the
/// quantisation parameter (scale or zero point) of shape `p_shape` it uses:
/// per tensor (one element), per axis (1-D of length `x_shape[axis]`) or
/// blocked (`p_shape` equals `x_shape` except along `axis`, where it is
/// `ceil(x_shape[axis] / block_size)`).
fn param_index(x_shape: &[usize], p_shape: &[usize], axis: i64, block_size: i64, what: &str) -> KResult<Vec<usize>> {
    let n: usize = x_shape.iter().product();
    let p_n: usize = p_shape.iter().product();
    if p_n == 1 {
        return Ok(vec![0; n]);
    }
    if block_size < 0 {
        bail!("block_size must not be negative, got {block_size}");
    }
    let ax = norm_axis(axis, x_shape.len())?;
    if ax >= x_shape.len() {
        bail!("{what} of shape {p_shape:?} needs an axis, but the input is a scalar");
    }
    if block_size == 0 {
        if p_shape.len() != 1 || p_shape[0] != x_shape[ax] {
            bail!(
                "{what} of shape {p_shape:?} must be a scalar or a 1-D tensor of length {} (axis {ax} of input shape {x_shape:?})",
                x_shape[ax]
            );
        }
        return Ok((0..n).map(|f| unravel(f, x_shape)[ax]).collect());
    }
    let bs = block_size as usize;
    let mut want = x_shape.to_vec();
    want[ax] = x_shape[ax].div_ceil(bs);
    if p_shape != want.as_slice() {
        bail!(
            "{what} of shape {p_shape:?} does not match blocked quantisation of input shape {x_shape:?} (axis {ax}, block_size {bs}): expected {want:?}"
        );
    }
    let p_strides = strides(p_shape);
    Ok((0..n)
        .map(|f| {
            let mut idx = unravel(f, x_shape);
            idx[ax] /= bs;
            idx.iter().zip(&p_strides).map(|(i, s)| i * s).sum()
        })
        .collect())
}

/// Whether a dtype is one of the float8 kinds.
fn is_float8(d: DType) -> bool {
    matches!(d, DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ)
}

// ---------------------------------------------------------------------------
// QuantizeLinear / DequantizeLinear

fn quantize_linear(
    args: &Args,
    axis: i64,
    block_size: i64,
    output_dtype: Option<DType>,
    saturate: bool,
    precision: Option<DType>,
) -> KResult<Tensor> {
    let (x, scale, zp) = (args.tensor(0)?, args.tensor(1)?, args.opt_tensor(2)?);
    if !x.dtype.is_float() && !x.dtype.is_int() {
        bail!("x must be numeric, got {}", x.dtype);
    }
    if !scale.dtype.is_float() {
        bail!("y_scale must be a float tensor, got {}", scale.dtype);
    }
    let to = match (zp, output_dtype) {
        (Some(z), Some(o)) if z.dtype != o => {
            bail!("output_dtype {o} differs from the zero point's type {}", z.dtype)
        }
        (Some(z), _) => z.dtype,
        (None, Some(o)) => o,
        (None, None) => DType::U8,
    };
    let int_out =
        matches!(to, DType::U8 | DType::I8 | DType::U16 | DType::I16 | DType::U4 | DType::I4 | DType::U2 | DType::I2);
    if !int_out && !is_float8(to) && to != DType::F4E2M1 {
        bail!("{to} is not a quantised type");
    }
    if let Some(p) = precision
        && !p.is_float()
    {
        bail!("precision must be a float type, got {p}");
    }
    let s_idx = param_index(&x.shape, &scale.shape, axis, block_size, "y_scale")?;
    let z_idx = match zp {
        Some(z) => Some(param_index(&x.shape, &z.shape, axis, block_size, "y_zero_point")?),
        None => None,
    };
    let xv = x.to_f64()?;
    let sv = scale.to_f64()?;
    let zv = match zp {
        Some(z) => z.to_f64()?,
        None => vec![],
    };
    // numpy divides integer data by a float scale in float64.
    let x_float = if x.dtype.is_float() { x.dtype } else { DType::F64 };
    let work = precision.unwrap_or_else(|| promote_float(x_float, scale.dtype));
    let n = xv.len();
    let mut q = Vec::with_capacity(n);
    for k in 0..n {
        let s = work.round_float(sv[s_idx[k]]);
        let v = work.round_float(work.round_float(xv[k]) / s);
        let z = z_idx.as_ref().map_or(0.0, |zi| zv[zi[k]]);
        q.push((v, z));
    }
    if int_out {
        let (lo, hi) = to.int_range().expect("integer type");
        let out = q
            .iter()
            .map(|&(v, z)| {
                // `as` saturates (NaN gives 0), so huge values clamp below.
                let i = (rint(v) as i128).saturating_add(z as i128);
                i.clamp(lo, hi)
            })
            .collect();
        return Tensor::from_i(to, x.shape.clone(), out);
    }
    // float8 and float4: add the zero point (zero for float8 in practice),
    // then convert; float4e2m1 always saturates (it has no inf or NaN).
    let out = q
        .iter()
        .map(|&(v, z)| {
            let y = work.round_float(v + z);
            decode_float_bits(to, encode_float_bits(to, y, saturate || to == DType::F4E2M1))
        })
        .collect();
    Tensor::from_f(to, x.shape.clone(), out)
}

fn dequantize_linear(args: &Args, axis: i64, block_size: i64, output_dtype: Option<DType>) -> KResult<Tensor> {
    let (x, scale, zp) = (args.tensor(0)?, args.tensor(1)?, args.opt_tensor(2)?);
    if !scale.dtype.is_float() {
        bail!("x_scale must be a float tensor, got {}", scale.dtype);
    }
    if !x.dtype.is_int() && !is_float8(x.dtype) && x.dtype != DType::F4E2M1 {
        bail!("x must be a quantised type, got {}", x.dtype);
    }
    let to = output_dtype.unwrap_or(scale.dtype);
    if !to.is_float() {
        bail!("output_dtype must be a float type, got {to}");
    }
    // Float8 zero points are required to be zero and are ignored.
    let zp = if is_float8(x.dtype) { None } else { zp };
    if let Some(z) = zp
        && z.dtype != x.dtype
    {
        bail!("zero point type {} differs from the input type {}", z.dtype, x.dtype);
    }
    let s_idx = param_index(&x.shape, &scale.shape, axis, block_size, "x_scale")?;
    let z_idx = match zp {
        Some(z) => Some(param_index(&x.shape, &z.shape, axis, block_size, "x_zero_point")?),
        None => None,
    };
    let xv = x.to_f64()?;
    let sv = scale.to_f64()?;
    let zv = match zp {
        Some(z) => z.to_f64()?,
        None => vec![],
    };
    // The reference computes (float32(x) - zero_point) * scale in float32,
    // or float64 where numpy promotes to it (int32 data, float64 scale).
    let work = if x.dtype == DType::I32 || scale.dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let out = (0..xv.len())
        .map(|k| {
            let z = z_idx.as_ref().map_or(0.0, |zi| zv[zi[k]]);
            let dx = work.round_float(xv[k] - z);
            work.round_float(dx * sv[s_idx[k]])
        })
        .collect();
    Tensor::from_f(to, x.shape.clone(), out)
}

fn dynamic_quantize_linear(x: &Tensor) -> KResult<Vec<Value>> {
    let xv = x.f().map_err(|_| crate::error::KernelError::new(format!("x must be float, got {}", x.dtype)))?;
    let f = DType::F32;
    // The range always includes zero.
    let mut maxx = 0.0f64;
    let mut minx = 0.0f64;
    for &v in xv {
        if v > maxx {
            maxx = v;
        }
        if v < minx {
            minx = v;
        }
    }
    let (maxx, minx) = (f.round_float(maxx), f.round_float(minx));
    let (qmin, qmax) = (0.0, 255.0);
    let range = if maxx == minx { 1.0 } else { f.round_float(maxx - minx) };
    let scale = f.round_float(range / (qmax - qmin));
    let initial_zp = f.round_float(qmin - f.round_float(minx / scale));
    let zp = rint(initial_zp.clamp(qmin, qmax));
    let y = xv.iter().map(|&v| (rint(f.round_float(v / scale)) + zp).clamp(qmin, qmax) as i128).collect();
    Ok(vec![
        Value::Tensor(Tensor::from_i(DType::U8, x.shape.clone(), y)?),
        Value::Tensor(Tensor::from_f(x.dtype, vec![], vec![scale])?),
        Value::Tensor(Tensor::from_i(DType::U8, vec![], vec![zp as i128])?),
    ])
}

// ---------------------------------------------------------------------------
// Integer matrix products

/// Integer values of `t` minus its zero point `zp`, broadcast numpy-style
/// onto `t`'s shape. A 1-D zero point of length `rows` (> 1) for a matrix
/// input is taken per row (shape `[rows, 1]`) when `per_row` is set.
fn minus_zero_point(t: &Tensor, zp: Option<&Tensor>, per_row: bool, what: &str) -> KResult<Vec<i128>> {
    let v = int_values(t, what)?;
    let Some(z) = zp else { return Ok(v) };
    let zv = int_values(z, what)?;
    if z.numel() == 1 {
        return Ok(v.iter().map(|&a| a - zv[0]).collect());
    }
    let mut z_shape = z.shape.clone();
    if per_row && z.rank() == 1 && t.rank() >= 2 && z.shape[0] == t.shape[t.rank() - 2] {
        z_shape = vec![z.shape[0], 1];
    }
    let shape = broadcast_shapes(&[&t.shape, &z_shape])?;
    if shape != t.shape {
        bail!("{what} zero point of shape {:?} does not fit input shape {:?}", z.shape, t.shape);
    }
    let map = broadcast_map(&z_shape, &t.shape);
    Ok(v.iter().zip(&map).map(|(&a, &j)| a - zv[j]).collect())
}

fn int_values(t: &Tensor, what: &str) -> KResult<Vec<i128>> {
    match t.i() {
        Ok(v) => Ok(v.to_vec()),
        Err(_) => bail!("{what}: expected an integer tensor, got {}", t.dtype),
    }
}

/// Numpy `matmul` of two integer tensors (1-D operands promoted and the
/// added dimension removed, batch dimensions broadcast).
fn int_matmul(a: &[i128], a_shape: &[usize], b: &[i128], b_shape: &[usize]) -> KResult<(Vec<usize>, Vec<i128>)> {
    if a_shape.is_empty() || b_shape.is_empty() {
        bail!("matmul inputs must have rank >= 1");
    }
    let a2: Vec<usize> = if a_shape.len() == 1 { vec![1, a_shape[0]] } else { a_shape.to_vec() };
    let b2: Vec<usize> = if b_shape.len() == 1 { vec![b_shape[0], 1] } else { b_shape.to_vec() };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        bail!("matmul inner dimensions differ: {a_shape:?} and {b_shape:?}");
    }
    let batch = broadcast_shapes(&[&a2[..a2.len() - 2], &b2[..b2.len() - 2]])?;
    let a_map = broadcast_map(&a2[..a2.len() - 2], &batch);
    let b_map = broadcast_map(&b2[..b2.len() - 2], &batch);
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    check_numel(&out_shape)?;
    let mut out = Vec::new();
    for (ai, bi) in a_map.iter().zip(&b_map) {
        for i in 0..m {
            for j in 0..n {
                let mut acc: i128 = 0;
                for p in 0..k {
                    acc += a[ai * m * k + i * k + p] * b[bi * k * n + p * n + j];
                }
                out.push(acc);
            }
        }
    }
    // Drop the dimensions added for 1-D operands.
    let mut shape = batch;
    if a_shape.len() > 1 {
        shape.push(m);
    }
    if b_shape.len() > 1 {
        shape.push(n);
    }
    Ok((shape, out))
}

fn matmul_integer(args: &Args) -> KResult<Tensor> {
    let (a, b) = (args.tensor(0)?, args.tensor(1)?);
    let av = minus_zero_point(a, args.opt_tensor(2)?, true, "A")?;
    let bv = minus_zero_point(b, args.opt_tensor(3)?, false, "B")?;
    let (shape, out) = int_matmul(&av, &a.shape, &bv, &b.shape)?;
    Tensor::from_i(DType::I32, shape, out)
}

/// Requantise integer accumulators: `rint(acc * factor + zero_point)`
/// clipped to the output type.
fn requantize(acc: i128, factor: f64, zp: f64, to: DType) -> i128 {
    let (lo, hi) = to.int_range().expect("integer type");
    let v = rint(acc as f64 * factor + zp);
    v.clamp(lo as f64, hi as f64) as i128
}

/// A per-tensor or 1-D per-channel parameter's value for channel `c`.
fn per_channel(v: &[f64], c: usize) -> f64 {
    if v.len() == 1 { v[0] } else { v[c] }
}

fn qlinear_matmul(args: &Args) -> KResult<Tensor> {
    let (a, a_s, a_zp) = (args.tensor(0)?, args.tensor(1)?, args.opt_tensor(2)?);
    let (b, b_s, b_zp) = (args.tensor(3)?, args.tensor(4)?, args.opt_tensor(5)?);
    let (y_s, y_zp) = (args.tensor(6)?, args.opt_tensor(7)?);
    let to = y_zp.map_or(a.dtype, |z| z.dtype);
    if !matches!(to, DType::U8 | DType::I8) {
        bail!("output type must be uint8 or int8, got {to}");
    }
    if y_s.numel() != 1 || y_zp.is_some_and(|z| z.numel() != 1) {
        bail!("y_scale and y_zero_point must be scalars");
    }
    let av = minus_zero_point(a, a_zp, true, "a")?;
    let bv = minus_zero_point(b, b_zp, false, "b")?;
    let (shape, acc) = int_matmul(&av, &a.shape, &bv, &b.shape)?;
    // Scales: per tensor, a per row (M) or b per column (N).
    let (asv, bsv) = (a_s.to_f64()?, b_s.to_f64()?);
    let m = if a.rank() >= 2 { a.shape[a.rank() - 2] } else { 1 };
    let n = if b.rank() >= 2 { b.shape[b.rank() - 1] } else { 1 };
    if (asv.len() != 1 && asv.len() != m) || (bsv.len() != 1 && bsv.len() != n) {
        bail!("a_scale / b_scale must be scalars or per-row / per-column vectors");
    }
    let sd = promote_float(a_s.dtype, promote_float(b_s.dtype, y_s.dtype));
    let ys = y_s.scalar_f64()?;
    let yz = y_zp.map_or(Ok(0.0), |z| z.scalar_f64())?;
    let out = acc
        .iter()
        .enumerate()
        .map(|(f, &c)| {
            let (i, j) = ((f / n) % m, f % n);
            let factor = sd.round_float(sd.round_float(per_channel(&asv, i) * per_channel(&bsv, j)) / ys);
            requantize(c, factor, yz, to)
        })
        .collect();
    Tensor::from_i(to, shape, out)
}

// ---------------------------------------------------------------------------
// Integer convolution

/// Convolution attributes shared by ConvInteger and QLinearConv.
struct ConvAttrs<'a> {
    auto_pad: AutoPad,
    dilations: &'a Option<Vec<i64>>,
    group: i64,
    kernel_shape: &'a Option<Vec<i64>>,
    pads: &'a Option<Vec<i64>>,
    strides: &'a Option<Vec<i64>>,
}

/// Direct N-d integer convolution of `x` (`[N, C, D1..]`) with `w`
/// (`[M, C/group, k1..]`) plus an optional per-output-channel bias.
fn int_conv(
    x: &[i128],
    x_shape: &[usize],
    w: &[i128],
    w_shape: &[usize],
    bias: Option<&[i128]>,
    a: &ConvAttrs,
) -> KResult<(Vec<usize>, Vec<i128>)> {
    if x_shape.len() < 3 {
        bail!("X must have rank >= 3, got shape {x_shape:?}");
    }
    if w_shape.len() != x_shape.len() {
        bail!("W shape {w_shape:?} does not match X shape {x_shape:?}");
    }
    let nsp = x_shape.len() - 2;
    let (batch, c_in) = (x_shape[0], x_shape[1]);
    let c_out = w_shape[0];
    if a.group < 1 {
        bail!("group must be positive, got {}", a.group);
    }
    let group = a.group as usize;
    if c_in % group != 0 || !c_out.is_multiple_of(group) || w_shape[1] * group != c_in {
        bail!("channels do not match: X {x_shape:?}, W {w_shape:?}, group {group}");
    }
    let k_sp = &w_shape[2..];
    if let Some(ks) = a.kernel_shape
        && (ks.len() != nsp || ks.iter().zip(k_sp).any(|(&k, &w)| k < 0 || k as usize != w))
    {
        bail!("kernel_shape {ks:?} does not match W shape {w_shape:?}");
    }
    let positive = |v: &Option<Vec<i64>>, name: &str| -> KResult<Vec<usize>> {
        match v {
            None => Ok(vec![1; nsp]),
            Some(v) if v.len() == nsp && v.iter().all(|&s| s > 0) => Ok(v.iter().map(|&s| s as usize).collect()),
            Some(v) => bail!("{name} {v:?} must be {nsp} positive values"),
        }
    };
    let st = positive(a.strides, "strides")?;
    let dl = positive(a.dilations, "dilations")?;
    let in_sp = &x_shape[2..];
    // Extent of a dilated kernel; sizes beyond u32 are rejected so that no
    // index arithmetic below can overflow.
    let too_big = |v: usize| v > u32::MAX as usize;
    if st.iter().chain(&dl).any(|&v| too_big(v)) || a.pads.iter().flatten().any(|&p| p > u32::MAX as i64) {
        bail!("strides, dilations and pads must be below 2^32");
    }
    let eff_k: Vec<usize> = (0..nsp).map(|i| (k_sp[i].max(1) - 1) * dl[i] + 1).collect();
    let mut pad_begin = vec![0usize; nsp];
    let mut out_sp = vec![0usize; nsp];
    match a.auto_pad {
        AutoPad::NotSet => {
            let pads = match a.pads {
                None => vec![0; 2 * nsp],
                Some(p) if p.len() == 2 * nsp && p.iter().all(|&v| v >= 0) => p.iter().map(|&v| v as usize).collect(),
                Some(p) => bail!("pads {p:?} must be {} non-negative values", 2 * nsp),
            };
            for i in 0..nsp {
                pad_begin[i] = pads[i];
                let padded = in_sp[i] + pads[i] + pads[i + nsp];
                out_sp[i] = if padded >= eff_k[i] { (padded - eff_k[i]) / st[i] + 1 } else { 0 };
            }
        }
        AutoPad::Valid => {
            for i in 0..nsp {
                out_sp[i] = if in_sp[i] >= eff_k[i] { (in_sp[i] - eff_k[i]) / st[i] + 1 } else { 0 };
            }
        }
        AutoPad::SameUpper | AutoPad::SameLower => {
            for i in 0..nsp {
                out_sp[i] = in_sp[i].div_ceil(st[i]);
                let need = (out_sp[i].max(1) - 1) * st[i] + eff_k[i];
                let total = need.saturating_sub(in_sp[i]);
                pad_begin[i] = if a.auto_pad == AutoPad::SameUpper { total / 2 } else { total.div_ceil(2) };
            }
        }
    }
    if let Some(b) = bias
        && b.len() != c_out
    {
        bail!("bias has {} elements, expected {c_out}", b.len());
    }
    let mut out_shape = vec![batch, c_out];
    out_shape.extend(&out_sp);
    check_numel(&out_shape)?;
    let (cin_g, cout_g) = (c_in / group, c_out / group);
    let in_spatial: usize = in_sp.iter().product();
    let k_n: usize = k_sp.iter().product();
    let out_n: usize = out_sp.iter().product();
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for nb in 0..batch {
        for m in 0..c_out {
            let g = m / cout_g;
            for o in 0..out_n {
                let o_idx = unravel(o, &out_sp);
                let mut acc: i128 = bias.map_or(0, |b| b[m]);
                for c in 0..cin_g {
                    let ic = g * cin_g + c;
                    for kf in 0..k_n {
                        let k_idx = unravel(kf, k_sp);
                        // Input position of this kernel tap; skip padding.
                        let mut flat = 0usize;
                        let mut inside = true;
                        for i in 0..nsp {
                            let p = (o_idx[i] * st[i] + k_idx[i] * dl[i]) as i64 - pad_begin[i] as i64;
                            if !(0..in_sp[i] as i64).contains(&p) {
                                inside = false;
                                break;
                            }
                            flat = flat * in_sp[i] + p as usize;
                        }
                        if inside {
                            let xv = x[(nb * c_in + ic) * in_spatial + flat];
                            let wv = w[(m * cin_g + c) * k_n + kf];
                            acc += xv * wv;
                        }
                    }
                }
                out.push(acc);
            }
        }
    }
    Ok((out_shape, out))
}

/// Integer values of a weight tensor minus a per-tensor or per-output-channel
/// zero point.
fn weights_minus_zero_point(w: &Tensor, zp: Option<&Tensor>) -> KResult<Vec<i128>> {
    let v = int_values(w, "W")?;
    let Some(z) = zp else { return Ok(v) };
    let zv = int_values(z, "W zero point")?;
    if w.rank() == 0 {
        bail!("W must not be a scalar");
    }
    let m = w.shape[0];
    if zv.len() != 1 && (z.rank() != 1 || zv.len() != m) {
        bail!("W zero point of shape {:?} must be a scalar or have {m} elements", z.shape);
    }
    let per = v.len().checked_div(m).unwrap_or(1);
    Ok(v.iter().enumerate().map(|(f, &a)| a - if zv.len() == 1 { zv[0] } else { zv[f / per] }).collect())
}

fn conv_integer(args: &Args, a: &ConvAttrs) -> KResult<Tensor> {
    let (x, w) = (args.tensor(0)?, args.tensor(1)?);
    let x_zp = args.opt_tensor(2)?;
    if x_zp.is_some_and(|z| z.numel() != 1) {
        bail!("x_zero_point must be a scalar");
    }
    let xv = minus_zero_point(x, x_zp, false, "X")?;
    let wv = weights_minus_zero_point(w, args.opt_tensor(3)?)?;
    let (shape, out) = int_conv(&xv, &x.shape, &wv, &w.shape, None, a)?;
    Tensor::from_i(DType::I32, shape, out)
}

fn qlinear_conv(args: &Args, a: &ConvAttrs) -> KResult<Tensor> {
    let (x, x_s, x_zp) = (args.tensor(0)?, args.tensor(1)?, args.opt_tensor(2)?);
    let (w, w_s, w_zp) = (args.tensor(3)?, args.tensor(4)?, args.opt_tensor(5)?);
    let (y_s, y_zp) = (args.tensor(6)?, args.opt_tensor(7)?);
    let bias = args.opt_tensor(8)?;
    let to = y_zp.map_or(x.dtype, |z| z.dtype);
    if !matches!(to, DType::U8 | DType::I8) {
        bail!("output type must be uint8 or int8, got {to}");
    }
    if x_s.numel() != 1
        || y_s.numel() != 1
        || x_zp.is_some_and(|z| z.numel() != 1)
        || y_zp.is_some_and(|z| z.numel() != 1)
    {
        bail!("x_scale, x_zero_point, y_scale and y_zero_point must be scalars");
    }
    let xv = minus_zero_point(x, x_zp, false, "x")?;
    let wv = weights_minus_zero_point(w, w_zp)?;
    let bv = match bias {
        Some(b) => Some(int_values(b, "B")?),
        None => None,
    };
    let (shape, acc) = int_conv(&xv, &x.shape, &wv, &w.shape, bv.as_deref(), a)?;
    let wsv = w_s.to_f64()?;
    let c_out = shape[1];
    if wsv.len() != 1 && wsv.len() != c_out {
        bail!("w_scale must be a scalar or have {c_out} elements");
    }
    let sd = promote_float(x_s.dtype, promote_float(w_s.dtype, y_s.dtype));
    let (xs, ys) = (x_s.scalar_f64()?, y_s.scalar_f64()?);
    let yz = y_zp.map_or(Ok(0.0), |z| z.scalar_f64())?;
    let spatial: usize = shape[2..].iter().product();
    let out = acc
        .iter()
        .enumerate()
        .map(|(f, &c)| {
            let m = f.checked_div(spatial).map_or(0, |q| q % c_out);
            let factor = sd.round_float(sd.round_float(xs * per_channel(&wsv, m)) / ys);
            requantize(c, factor, yz, to)
        })
        .collect();
    Tensor::from_i(to, shape, out)
}
