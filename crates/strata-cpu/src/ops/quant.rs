//! Quantisation: `QuantizeLinear` / `DequantizeLinear` (per tensor, per
//! axis, blocked), `DynamicQuantizeLinear`, and the integer products
//! `MatMulInteger`, `QLinearMatMul`, `ConvInteger`, `QLinearConv`.
//!
//! Results equal the reference's bit for bit: float steps are rounded to
//! the type ONNX computes them in (float32 for float32 operands; other
//! combinations are computed in f64 and rounded to that type, exactly as
//! the reference does), integer accumulation is exact (i32 while it cannot
//! overflow, else i64, wrapped to int32 at the end), and rounding to
//! integers is half to even.

use std::sync::Arc;

use strata_ir::DType;
use strata_ir::dtype::encode_float_bits;
use strata_ir::ops::QuantOp as Q;
use strata_ir::window::WindowAttrs;

use super::conv::Win3;
use super::{Ctx, Kernel, NodeInfo, broadcast, broadcast_strides, input, strides, unsupported};
use crate::error::{CpuError, Result, bail};
use crate::tensor::{CpuTensor, Data};

/// Integer elements as i32 (8- and 16-bit types and narrower).
fn int_values(t: &CpuTensor, what: &str) -> Result<Vec<i32>> {
    Ok(match &t.data {
        Data::I8(v) => v.iter().map(|&x| x as i32).collect(),
        Data::U8(v) => v.iter().map(|&x| x as i32).collect(),
        Data::I16(v) => v.iter().map(|&x| x as i32).collect(),
        Data::U16(v) => v.iter().map(|&x| x as i32).collect(),
        Data::I32(v) => v.to_vec(),
        _ => bail!("{what}: expected an 8- or 16-bit integer tensor, got {}", t.dtype),
    })
}

/// The float type numpy computes a binary operation of two float types in.
fn promote(a: DType, b: DType) -> DType {
    if a == b {
        a
    } else if a == DType::F64 || b == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// For every element of `x_shape`, the flat index of its quantisation
/// parameter of shape `p_shape`: per tensor, per axis or blocked.
fn param_index(x_shape: &[usize], p_shape: &[usize], axis: i64, block: i64, what: &str) -> Result<Vec<usize>> {
    let n: usize = x_shape.iter().product();
    if p_shape.iter().product::<usize>() == 1 {
        return Ok(vec![0; n]);
    }
    if block < 0 {
        bail!("block_size must not be negative, got {block}");
    }
    if x_shape.is_empty() {
        bail!("{what} of shape {p_shape:?} needs an axis, but the input is a scalar");
    }
    let ax = super::axis(axis, x_shape.len())?;
    let inner: usize = x_shape[ax + 1..].iter().product();
    let len = x_shape[ax];
    if block == 0 {
        if p_shape != [len] {
            bail!("{what} of shape {p_shape:?} must be a scalar or a 1-D tensor of length {len} (axis {ax})");
        }
        return Ok((0..n).map(|f| (f / inner.max(1)) % len.max(1)).collect());
    }
    let bs = block as usize;
    let mut want = x_shape.to_vec();
    want[ax] = len.div_ceil(bs);
    if p_shape != want.as_slice() {
        bail!("{what} of shape {p_shape:?} does not match blocks of {bs} along axis {ax} of {x_shape:?}");
    }
    let outer_stride = want[ax] * inner;
    Ok((0..n)
        .map(|f| {
            let (o, r) = (f / (len * inner).max(1), f % (len * inner).max(1));
            let (a, i) = (r / inner.max(1), r % inner.max(1));
            o * outer_stride + (a / bs) * inner + i
        })
        .collect())
}

/// Values in the storage of integer type `to` (already in its range).
fn int_data(to: DType, v: Vec<i64>) -> Result<Data> {
    Ok(match to {
        DType::U8 | DType::U4 | DType::U2 => Data::U8(Arc::new(v.into_iter().map(|x| x as u8).collect())),
        DType::I8 | DType::I4 | DType::I2 => Data::I8(Arc::new(v.into_iter().map(|x| x as i8).collect())),
        DType::U16 => Data::U16(Arc::new(v.into_iter().map(|x| x as u16).collect())),
        DType::I16 => Data::I16(Arc::new(v.into_iter().map(|x| x as i16).collect())),
        DType::I32 => Data::I32(Arc::new(v.into_iter().map(|x| x as i32).collect())),
        d => bail!("{d} is not a quantised integer type"),
    })
}

/// Float values rounded to `to` (float32/64, float16/bfloat16).
fn float_data(to: DType, v: Vec<f64>) -> Result<Data> {
    Ok(match to {
        DType::F32 => Data::F32(Arc::new(v.into_iter().map(|x| x as f32).collect())),
        DType::F64 => Data::F64(Arc::new(v)),
        DType::F16 | DType::BF16 => {
            Data::Half(Arc::new(v.into_iter().map(|x| encode_float_bits(to, x, false) as u16).collect()))
        }
        d => bail!("{d} is not a float output type"),
    })
}

fn is_float8(d: DType) -> bool {
    matches!(d, DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ)
}

// ------------------------------------------------------------ Q / DQ

struct QuantizeKernel {
    axis: i64,
    block: i64,
    to: DType,
    saturate: bool,
    precision: Option<DType>,
}

/// How per-tensor or per-axis parameters repeat over a tensor of shape
/// `x_shape`: runs of `inner` consecutive elements share one parameter,
/// and run `r` takes parameter `r % len`. `None` for blocked parameters
/// (and shapes that do not fit, left to the general path to report).
fn runs(x_shape: &[usize], p_shape: &[usize], axis: i64, block: i64) -> Option<(usize, usize)> {
    let n: usize = x_shape.iter().product();
    if p_shape.iter().product::<usize>() == 1 {
        return Some((n.max(1), 1));
    }
    let ax = super::axis(axis, x_shape.len()).ok()?;
    (block == 0 && p_shape == [x_shape[ax]]).then(|| (x_shape[ax + 1..].iter().product::<usize>().max(1), x_shape[ax]))
}

/// Integer elements of an 8-bit tensor as f32 (exact), or `None`.
fn small_ints(t: &CpuTensor) -> Option<Vec<f32>> {
    match &t.data {
        Data::U8(v) => Some(v.iter().map(|&x| x as f32).collect()),
        Data::I8(v) => Some(v.iter().map(|&x| x as f32).collect()),
        _ => None,
    }
}

/// QuantizeLinear of float32 by float32 scales to uint8 / int8, per
/// tensor or per axis: `clamp(rint(x / s) + z)` in float32 (a NaN quotient
/// counts as 0), the same values as the general path, in vectors.
fn quantize_f32(k: &QuantizeKernel, x: &CpuTensor, s: &CpuTensor, zp: Option<&CpuTensor>) -> Option<CpuTensor> {
    let (Data::F32(xv), Data::F32(sv)) = (&x.data, &s.data) else { return None };
    if !matches!(k.to, DType::U8 | DType::I8) || !matches!(k.precision, None | Some(DType::F32)) {
        return None;
    }
    let (inner, len) = runs(&x.shape, &s.shape, k.axis, k.block)?;
    let zv = match zp {
        Some(z) if z.dtype == k.to && z.shape == s.shape => small_ints(z)?,
        Some(_) => return None,
        None => vec![0.0; sv.len()],
    };
    // Every value is clamped into the type's range before the cast.
    macro_rules! quantize {
        ($t:ty, $lo:expr, $hi:expr) => {{
            let mut q: Vec<$t> = vec![0; xv.len()];
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for (r, (src, dst)) in xv.chunks(inner).zip(q.chunks_mut(inner)).enumerate() {
                        let (sc, z) = (sv[r % len], zv[r % len]);
                        for (o, &v) in dst.iter_mut().zip(src) {
                            let t = (v / sc).round_ties_even();
                            let t = if t.is_nan() { 0.0 } else { t };
                            // SAFETY: a finite value in the type's range (NaN became 0).
                            *o = unsafe { (t + z).clamp($lo, $hi).to_int_unchecked::<i32>() } as $t;
                        }
                    }
                },
            );
            q
        }};
    }
    let data = if k.to == DType::U8 {
        Data::U8(Arc::new(quantize!(u8, 0.0, 255.0)))
    } else {
        Data::I8(Arc::new(quantize!(i8, -128.0, 127.0)))
    };
    Some(CpuTensor { dtype: k.to, shape: x.shape.clone(), data })
}

impl Kernel for QuantizeKernel {
    fn run(&self, _ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (x, s) = (input(inputs, 0)?, input(inputs, 1)?);
        let zp = inputs.get(2).copied().flatten();
        if let Some(t) = quantize_f32(self, x, s, zp) {
            return Ok(vec![t]);
        }
        let s_idx = param_index(&x.shape, &s.shape, self.axis, self.block, "y_scale")?;
        let z_idx = zp.map(|z| param_index(&x.shape, &z.shape, self.axis, self.block, "y_zero_point")).transpose()?;
        let (sv, zv) = (s.to_f64_vec(), zp.map(CpuTensor::to_f64_vec).unwrap_or_default());
        let zero = |k: usize| z_idx.as_ref().map_or(0.0, |zi| zv[zi[k]]);
        let x_float = if x.dtype.is_float() { x.dtype } else { DType::F64 };
        let work = self.precision.unwrap_or_else(|| promote(x_float, s.dtype));
        // The quotient in the working type (float32 directly when it is one).
        let quot: Vec<f64> = match (&x.data, work) {
            (Data::F32(xv), DType::F32) if s.dtype == DType::F32 => {
                xv.iter().enumerate().map(|(k, &v)| (v / sv[s_idx[k]] as f32) as f64).collect()
            }
            _ => x
                .to_f64_vec()
                .iter()
                .enumerate()
                .map(|(k, &v)| work.round_float(work.round_float(v) / work.round_float(sv[s_idx[k]])))
                .collect(),
        };
        let to = self.to;
        let data = if let Some((lo, hi)) = to.int_range() {
            let (lo, hi) = (lo as i64, hi as i64);
            int_data(
                to,
                quot.iter()
                    .enumerate()
                    .map(|(k, &q)| (q.round_ties_even() as i64).saturating_add(zero(k) as i64).clamp(lo, hi))
                    .collect(),
            )?
        } else {
            let sat = self.saturate || to == DType::F4E2M1;
            Data::Small(Arc::new(
                quot.iter()
                    .enumerate()
                    .map(|(k, &q)| encode_float_bits(to, work.round_float(q + zero(k)), sat) as u8)
                    .collect(),
            ))
        };
        Ok(vec![CpuTensor { dtype: to, shape: x.shape.clone(), data }])
    }
}

struct DequantizeKernel {
    axis: i64,
    block: i64,
    to: DType,
}

impl Kernel for DequantizeKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (x, s) = (input(inputs, 0)?, input(inputs, 1)?);
        // Float8 zero points are zero by definition and ignored.
        let zp = inputs.get(2).copied().flatten().filter(|_| !is_float8(x.dtype));
        if let Some(z) = zp
            && z.dtype != x.dtype
        {
            bail!("zero point type {} differs from the input type {}", z.dtype, x.dtype);
        }
        if let Some(t) = dequantize_f32(ctx, self, x, s, zp) {
            return Ok(vec![t]);
        }
        let s_idx = param_index(&x.shape, &s.shape, self.axis, self.block, "x_scale")?;
        let z_idx = zp.map(|z| param_index(&x.shape, &z.shape, self.axis, self.block, "x_zero_point")).transpose()?;
        let (xv, sv, zv) = (x.to_f64_vec(), s.to_f64_vec(), zp.map(CpuTensor::to_f64_vec).unwrap_or_default());
        let work = if x.dtype == DType::I32 || s.dtype == DType::F64 { DType::F64 } else { DType::F32 };
        let out: Vec<f64> = match work {
            DType::F32 => (0..xv.len())
                .map(|k| {
                    let z = z_idx.as_ref().map_or(0.0, |zi| zv[zi[k]]);
                    (((xv[k] - z) as f32) * sv[s_idx[k]] as f32) as f64
                })
                .collect(),
            _ => (0..xv.len())
                .map(|k| {
                    let z = z_idx.as_ref().map_or(0.0, |zi| zv[zi[k]]);
                    work.round_float(work.round_float(xv[k] - z) * sv[s_idx[k]])
                })
                .collect(),
        };
        Ok(vec![CpuTensor { dtype: self.to, shape: x.shape.clone(), data: float_data(self.to, out)? }])
    }
}

/// DequantizeLinear of uint8 / int8 by float32 scales to float32, per
/// tensor or per axis: `(x − z) · s` in float32 (exact difference), the
/// same values as the general path, in vectors.
fn dequantize_f32(
    ctx: &Ctx,
    k: &DequantizeKernel,
    x: &CpuTensor,
    s: &CpuTensor,
    zp: Option<&CpuTensor>,
) -> Option<CpuTensor> {
    let Data::F32(sv) = &s.data else { return None };
    if k.to != DType::F32 || !matches!(x.dtype, DType::U8 | DType::I8) {
        return None;
    }
    let (inner, len) = runs(&x.shape, &s.shape, k.axis, k.block)?;
    let zv = match zp {
        Some(z) if z.shape == s.shape => small_ints(z)?,
        Some(_) => return None,
        None => vec![0.0; sv.len()],
    };
    let mut out = ctx.buffer(x.numel());
    macro_rules! dequantize {
        ($xv:expr) => {
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for (r, (src, dst)) in $xv.chunks(inner).zip(out.chunks_mut(inner)).enumerate() {
                        let (sc, z) = (sv[r % len], zv[r % len]);
                        for (o, &v) in dst.iter_mut().zip(src) {
                            *o = (v as f32 - z) * sc;
                        }
                    }
                },
            )
        };
    }
    match &x.data {
        Data::U8(xv) => dequantize!(xv),
        Data::I8(xv) => dequantize!(xv),
        _ => return None,
    }
    Some(CpuTensor::f32(x.shape.clone(), out))
}

struct DynamicQuantizeKernel;

impl Kernel for DynamicQuantizeKernel {
    fn run(&self, _ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let xv = x.as_f32()?;
        // The range always includes zero; NaNs are skipped.
        // In sixteen lanes (min and max are exact in any order).
        let (lo, hi) = crate::simd::vectorized(
            #[inline(always)]
            || {
                let (mut lo, mut hi) = ([0.0f32; 16], [0.0f32; 16]);
                let chunks = xv.chunks_exact(16);
                let rest = chunks.remainder();
                for c in chunks {
                    for l in 0..16 {
                        hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
                        lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
                    }
                }
                let hi = hi.iter().chain(rest).fold(0.0f32, |a, &b| if b > a { b } else { a });
                let lo = lo.iter().chain(rest).fold(0.0f32, |a, &b| if b < a { b } else { a });
                (lo, hi)
            },
        );
        let range = if hi == lo { 1.0 } else { hi - lo };
        let scale = range / 255.0;
        let zp = (0.0 - lo / scale).clamp(0.0, 255.0).round_ties_even();
        let mut q = vec![0.0f32; xv.len()];
        crate::simd::vectorized(
            #[inline(always)]
            || {
                for (o, &v) in q.iter_mut().zip(xv) {
                    *o = ((v / scale).round_ties_even() + zp).clamp(0.0, 255.0);
                }
            },
        );
        let y: Vec<u8> = q.iter().map(|&v| v as u8).collect();
        Ok(vec![
            CpuTensor { dtype: DType::U8, shape: x.shape.clone(), data: Data::U8(Arc::new(y)) },
            CpuTensor::f32(vec![], vec![scale]),
            CpuTensor { dtype: DType::U8, shape: vec![], data: Data::U8(Arc::new(vec![zp as u8])) },
        ])
    }
}

// ------------------------------------------------------ integer products

/// `t`'s integer values minus its zero point, broadcast numpy-style; a
/// 1-D zero point of the row count is taken per row when `per_row`.
fn minus_zero_point(t: &CpuTensor, zp: Option<&CpuTensor>, per_row: bool, what: &str) -> Result<Vec<i32>> {
    let mut v = int_values(t, what)?;
    let Some(z) = zp else { return Ok(v) };
    let zv = int_values(z, what)?;
    if zv.len() == 1 {
        v.iter_mut().for_each(|a| *a -= zv[0]);
        return Ok(v);
    }
    let r = t.shape.len();
    let mut z_shape = z.shape.clone();
    if per_row && z.shape.len() == 1 && r >= 2 && z.shape[0] == t.shape[r - 2] {
        z_shape = vec![z.shape[0], 1];
    }
    if broadcast(&t.shape, &z_shape)? != t.shape {
        bail!("{what} zero point of shape {:?} does not fit input shape {:?}", z.shape, t.shape);
    }
    let (zs, ts) = (broadcast_strides(&z_shape, &t.shape), strides(&t.shape));
    for (f, a) in v.iter_mut().enumerate() {
        let j: usize = ts.iter().zip(&zs).zip(&t.shape).map(|((&s, &q), &d)| (f / s % d.max(1)) * q).sum();
        *a -= zv[j];
    }
    Ok(v)
}

/// `out[m × n] = a[m × k] · b[k × n]` exactly (i32 accumulators when no sum
/// can overflow them, else i64), wrapped to int32 as ONNX's int32 output.
fn int_gemm(a: &[i32], b: &[i32], (m, k, n): (usize, usize, usize), out: &mut [i32]) {
    let amax = a.iter().map(|x| x.unsigned_abs() as u64).max().unwrap_or(0);
    let bmax = b.iter().map(|x| x.unsigned_abs() as u64).max().unwrap_or(0);
    let fits = (amax * bmax).checked_mul(k as u64).is_some_and(|t| t < i32::MAX as u64);
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        if fits {
            row.fill(0);
            for p in 0..k {
                let x = a[i * k + p];
                if x != 0 {
                    for (o, &y) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                        *o += x * y;
                    }
                }
            }
        } else {
            let mut acc = vec![0i64; n];
            for p in 0..k {
                let x = a[i * k + p] as i64;
                for (o, &y) in acc.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                    *o += x * y as i64;
                }
            }
            row.iter_mut().zip(&acc).for_each(|(o, &s)| *o = s as i32);
        }
    }
}

/// The most steps of an integer product whose float32 sums are exact: every
/// product and partial sum is an integer below 2^24 in magnitude when
/// `max|a| · max|b| · depth < 2^24` (8-bit operands minus their zero
/// points: 256 steps). `None` when not even one step fits.
fn exact_f32_depth(a: &[i32], b: &[i32], k: usize) -> Option<usize> {
    let amax = a.iter().map(|x| x.unsigned_abs() as u64).max().unwrap_or(0);
    let bmax = b.iter().map(|x| x.unsigned_abs() as u64).max().unwrap_or(0);
    let depth = ((1u64 << 24) - 1) / (amax * bmax).max(1);
    (depth >= 1 && k > 0).then(|| (depth as usize).min(k).min(crate::gemm::KC))
}

/// `out = a · b` exactly (as [`int_gemm`]) from float32 copies of the
/// integer operands: the float GEMM over `depth` steps at a time (exact:
/// see [`exact_f32_depth`]), `rhs(p, k0, kc)` the right operand of pass `p`
/// (steps `k0 .. k0 + kc`); the passes' sums added in int32, wrapping as
/// ONNX's int32 output does (the same result as a wider sum wrapped once).
fn float_int_gemm<'b>(
    ctx: &Ctx,
    a: &[f32],
    (m, k, n): (usize, usize, usize),
    depth: usize,
    rhs: impl Fn(usize, usize, usize) -> crate::gemm::Rhs<'b>,
    out: &mut [i32],
) {
    out.fill(0);
    let mut c = ctx.buffer(m * n);
    for (p, k0) in (0..k).step_by(depth).enumerate() {
        let kc = depth.min(k - k0);
        let epi = crate::gemm::Epilogue::default();
        crate::gemm::gemm_rows(ctx.pool, &a[k0..], m, kc, k, rhs(p, k0, kc), &mut c, n, &epi);
        // Exact integers below 2^24 in magnitude.
        crate::simd::vectorized(
            #[inline(always)]
            || out.iter_mut().zip(&c).for_each(|(s, &v)| *s = s.wrapping_add(v as i32)),
        );
    }
}

/// The right operand of a pass over steps `k0 .. k0 + kc` of the row-major
/// `k × n` matrix `b`, read in place.
fn rows_of(b: &[f32], n: usize, k0: usize, kc: usize) -> crate::gemm::Rhs<'_> {
    crate::gemm::Rhs::Rows { data: &b[k0 * n..(k0 + kc) * n], k: kc, n, ldb: n }
}

/// Batched integer `matmul` with numpy broadcasting and 1-D promotion.
fn int_matmul(
    ctx: &Ctx,
    a: &[i32],
    a_shape: &[usize],
    b: &[i32],
    b_shape: &[usize],
) -> Result<(Vec<usize>, Vec<i32>, usize, usize)> {
    if a_shape.is_empty() || b_shape.is_empty() {
        bail!("matmul inputs must have rank >= 1");
    }
    let a2: Vec<usize> = if a_shape.len() == 1 { vec![1, a_shape[0]] } else { a_shape.to_vec() };
    let b2: Vec<usize> = if b_shape.len() == 1 { vec![b_shape[0], 1] } else { b_shape.to_vec() };
    let (m, k, k2, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        bail!("matmul inner dimensions differ: {a_shape:?} and {b_shape:?}");
    }
    let (ab, bb) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let batch = broadcast(ab, bb)?;
    let mut full = batch.clone();
    full.extend([m, n]);
    let total = ctx.check_numel(&full)?;
    let (sa, sb, bs) = (broadcast_strides(ab, &batch), broadcast_strides(bb, &batch), strides(&batch));
    let mut out = vec![0i32; total];
    let offsets = |bi: usize| {
        let (mut oa, mut ob) = (0, 0);
        for d in 0..batch.len() {
            let idx = (bi / bs[d]) % batch[d];
            oa += idx * sa[d];
            ob += idx * sb[d];
        }
        (oa, ob)
    };
    if let Some(depth) = exact_f32_depth(a, b, k) {
        // Each product on the float GEMM (which shares out the work itself).
        let (af, bf): (Vec<f32>, Vec<f32>) =
            (a.iter().map(|&v| v as f32).collect(), b.iter().map(|&v| v as f32).collect());
        for (bi, o) in out.chunks_exact_mut((m * n).max(1)).enumerate() {
            let (oa, ob) = offsets(bi);
            let b = &bf[ob * k * n..(ob + 1) * k * n];
            float_int_gemm(
                ctx,
                &af[oa * m * k..(oa + 1) * m * k],
                (m, k, n),
                depth,
                |_, k0, kc| rows_of(b, n, k0, kc),
                o,
            );
        }
    } else {
        ctx.pool.for_each_chunk(&mut out, (m * n).max(1), total * k, |bi, o| {
            let (oa, ob) = offsets(bi);
            int_gemm(&a[oa * m * k..(oa + 1) * m * k], &b[ob * k * n..(ob + 1) * k * n], (m, k, n), o);
        });
    }
    let mut shape = batch;
    if a_shape.len() > 1 {
        shape.push(m);
    }
    if b_shape.len() > 1 {
        shape.push(n);
    }
    Ok((shape, out, m, n))
}

/// `rint(acc · factor + zp)` clamped to the output type.
fn requantize(acc: i32, factor: f64, zp: f64, (lo, hi): (f64, f64)) -> i64 {
    (acc as f64 * factor + zp).round_ties_even().clamp(lo, hi) as i64
}

/// A scalar parameter's value.
fn scalar(t: &CpuTensor, what: &str) -> Result<f64> {
    match t.to_f64_vec()[..] {
        [v] => Ok(v),
        _ => bail!("{what} must be a scalar, got shape {:?}", t.shape),
    }
}

/// Output type and range of a QLinear product: its zero point's type.
fn qlinear_out(x: &CpuTensor, y_zp: Option<&CpuTensor>) -> Result<(DType, (f64, f64))> {
    let to = y_zp.map_or(x.dtype, |z| z.dtype);
    match to.int_range() {
        Some((lo, hi)) if matches!(to, DType::U8 | DType::I8) => Ok((to, (lo as f64, hi as f64))),
        _ => bail!("output type must be uint8 or int8, got {to}"),
    }
}

struct MatMulIntegerKernel {
    /// QLinearMatMul (scales and zero points around the product).
    qlinear: bool,
    /// A constant 2-D right operand, prepared once.
    const_b: Option<ConstB>,
}

/// A constant `k × n` right operand minus its zero point as float32
/// panels of at most `depth` steps each, `depth` such that the products
/// with any 8-bit left operand sum exactly (see [`exact_f32_depth`]).
struct ConstB {
    shape: Vec<usize>,
    panels: Vec<crate::gemm::PackedB>,
    depth: usize,
}

impl ConstB {
    fn new(b: &CpuTensor, zp: Option<&CpuTensor>) -> Option<ConstB> {
        let [k, n] = b.shape[..] else { return None };
        let bv = minus_zero_point(b, zp, false, "B").ok()?;
        let bmax = bv.iter().map(|x| x.unsigned_abs() as u64).max().unwrap_or(0);
        let depth = (((1u64 << 24) - 1) / (255 * bmax).max(1)).min(crate::gemm::KC as u64) as usize;
        if depth == 0 || k == 0 {
            return None;
        }
        let bf: Vec<f32> = bv.iter().map(|&v| v as f32).collect();
        let panels = (0..k)
            .step_by(depth)
            .map(|k0| crate::gemm::PackedB::pack(&bf[k0 * n..], depth.min(k - k0), n, n, 1))
            .collect();
        Some(ConstB { shape: b.shape.clone(), panels, depth })
    }

    /// `a` (8-bit, any rank, minus its zero point) times this operand, as
    /// int32: (shape, values, rows, columns).
    fn product(
        &self,
        ctx: &Ctx,
        a: &CpuTensor,
        a_zp: Option<&CpuTensor>,
    ) -> Result<(Vec<usize>, Vec<i32>, usize, usize)> {
        let ([k, n], Some(&ka)) = ([self.shape[0], self.shape[1]], a.shape.last()) else {
            bail!("matmul inputs must have rank >= 1");
        };
        if ka != k {
            bail!("matmul inner dimensions differ: {:?} and {:?}", a.shape, self.shape);
        }
        let m = a.numel() / k.max(1);
        // A per-tensor zero point is subtracted in float32 (exact); others broadcast as in general.
        let scalar_zp = a_zp.map_or(Some(0.0), |z| small_ints(z).filter(|v| v.len() == 1).map(|v| v[0]));
        let af: Vec<f32> = match (&a.data, scalar_zp) {
            (Data::U8(v), Some(z)) => v.iter().map(|&x| x as f32 - z).collect(),
            (Data::I8(v), Some(z)) => v.iter().map(|&x| x as f32 - z).collect(),
            _ => minus_zero_point(a, a_zp, true, "A")?.iter().map(|&v| v as f32).collect(),
        };
        let mut shape = a.shape[..a.shape.len() - 1].to_vec();
        shape.push(n);
        ctx.check_numel(&shape)?;
        let mut acc = vec![0i32; m * n];
        let packed = |p: usize, _, _| crate::gemm::Rhs::Packed(&self.panels[p]);
        float_int_gemm(ctx, &af, (m, k, n), self.depth, packed, &mut acc);
        Ok((shape, acc, m, n))
    }
}

impl Kernel for MatMulIntegerKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let opt = |i: usize| inputs.get(i).copied().flatten();
        let (ia, iaz, ib, ibz) = if self.qlinear { (0, 2, 3, 5) } else { (0, 2, 1, 3) };
        let (a, b) = (input(inputs, ia)?, input(inputs, ib)?);
        let (shape, acc, m, n) = match &self.const_b {
            Some(cb) if cb.shape == b.shape && matches!(a.dtype, DType::U8 | DType::I8) => {
                cb.product(ctx, a, opt(iaz))?
            }
            _ => {
                let av = minus_zero_point(a, opt(iaz), true, "A")?;
                let bv = minus_zero_point(b, opt(ibz), false, "B")?;
                int_matmul(ctx, &av, &a.shape, &bv, &b.shape)?
            }
        };
        if !self.qlinear {
            return Ok(vec![CpuTensor { dtype: DType::I32, shape, data: Data::I32(Arc::new(acc)) }]);
        }
        let (a_s, b_s, y_s, y_zp) = (input(inputs, 1)?, input(inputs, 4)?, input(inputs, 6)?, opt(7));
        let (to, range) = qlinear_out(a, y_zp)?;
        let (asv, bsv) = (a_s.to_f64_vec(), b_s.to_f64_vec());
        if (asv.len() != 1 && asv.len() != m) || (bsv.len() != 1 && bsv.len() != n) {
            bail!("a_scale / b_scale must be scalars or per-row / per-column vectors");
        }
        let sd = promote(a_s.dtype, promote(b_s.dtype, y_s.dtype));
        let (ys, yz) = (scalar(y_s, "y_scale")?, y_zp.map_or(Ok(0.0), |z| scalar(z, "y_zero_point"))?);
        let pick = |v: &[f64], i: usize| if v.len() == 1 { v[0] } else { v[i] };
        let out = acc
            .iter()
            .enumerate()
            .map(|(f, &c)| {
                let (i, j) = ((f / n.max(1)) % m.max(1), f % n.max(1));
                let factor = sd.round_float(sd.round_float(pick(&asv, i) * pick(&bsv, j)) / ys);
                requantize(c, factor, yz, range)
            })
            .collect();
        Ok(vec![CpuTensor { dtype: to, shape, data: int_data(to, out)? }])
    }
}

struct ConvIntegerKernel {
    geo: WindowAttrs,
    group: usize,
    qlinear: bool,
}

/// Weights minus a per-tensor or per-output-channel zero point.
fn weights_minus_zero_point(w: &CpuTensor, zp: Option<&CpuTensor>) -> Result<Vec<i32>> {
    let mut v = int_values(w, "W")?;
    let Some(z) = zp else { return Ok(v) };
    let zv = int_values(z, "W zero point")?;
    let m = *w.shape.first().ok_or_else(|| CpuError::Kernel("W must not be a scalar".into()))?;
    if zv.len() != 1 && (z.shape.len() != 1 || zv.len() != m) {
        bail!("W zero point of shape {:?} must be a scalar or have {m} elements", z.shape);
    }
    let per = v.len().checked_div(m).unwrap_or(1).max(1);
    v.iter_mut().enumerate().for_each(|(f, a)| *a -= if zv.len() == 1 { zv[0] } else { zv[f / per] });
    Ok(v)
}

impl Kernel for ConvIntegerKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let opt = |i: usize| inputs.get(i).copied().flatten();
        let (ix, ixz, iw, iwz) = if self.qlinear { (0, 2, 3, 5) } else { (0, 2, 1, 3) };
        let (x, w) = (input(inputs, ix)?, input(inputs, iw)?);
        if opt(ixz).is_some_and(|z| z.numel() != 1) {
            bail!("x_zero_point must be a scalar");
        }
        if x.shape.len() < 3 || w.shape.len() != x.shape.len() {
            bail!("X {:?} and W {:?} must have the same rank, at least 3", x.shape, w.shape);
        }
        let xv = minus_zero_point(x, opt(ixz), false, "X")?;
        let wv = weights_minus_zero_point(w, opt(iwz))?;
        let (batch, c_in, c_out, g) = (x.shape[0], x.shape[1], w.shape[0], self.group);
        if c_in % g != 0 || c_out % g != 0 || w.shape[1] * g != c_in {
            bail!("channels do not match: X {:?}, W {:?}, group {g}", x.shape, w.shape);
        }
        let win = Win3::new(&self.geo, &x.shape[2..], w.shape[2..].to_vec())?;
        let (cin_g, cout_g, taps, out_n, in_n) = (c_in / g, c_out / g, win.taps(), win.out_size(), win.in_size());
        let mut shape = vec![batch, c_out];
        shape.extend_from_slice(win.out_spatial());
        let total = ctx.check_numel(&shape)?;
        let kk = cin_g * taps;
        ctx.check_numel(&[kk, out_n])?;
        let mut acc = vec![0i32; total];
        for nb in 0..batch {
            for gi in 0..g {
                // Columns: (channel, tap) rows by output positions, zero in padding.
                let mut cols = vec![0i32; kk * out_n];
                for c in 0..cin_g {
                    let plane = &xv[(nb * c_in + gi * cin_g + c) * in_n..][..in_n];
                    for t in 0..taps {
                        let kt =
                            [t / (win.kernel[1] * win.kernel[2]), t / win.kernel[2] % win.kernel[1], t % win.kernel[2]];
                        let row = &mut cols[(c * taps + t) * out_n..][..out_n];
                        for (o, r) in row.iter_mut().enumerate() {
                            let ot = [o / (win.out[1] * win.out[2]), o / win.out[2] % win.out[1], o % win.out[2]];
                            let p = [win.pos(0, ot[0], kt[0]), win.pos(1, ot[1], kt[1]), win.pos(2, ot[2], kt[2])];
                            if (0..3).all(|i| (0..win.input[i] as i64).contains(&p[i])) {
                                *r = plane
                                    [(p[0] as usize * win.input[1] + p[1] as usize) * win.input[2] + p[2] as usize];
                            }
                        }
                    }
                }
                let wg = &wv[gi * cout_g * kk..(gi + 1) * cout_g * kk];
                let dst = &mut acc[(nb * c_out + gi * cout_g) * out_n..][..cout_g * out_n];
                int_gemm(wg, &cols, (cout_g, kk, out_n), dst);
            }
        }
        if !self.qlinear {
            return Ok(vec![CpuTensor { dtype: DType::I32, shape, data: Data::I32(Arc::new(acc)) }]);
        }
        let (x_s, w_s, y_s, y_zp) = (input(inputs, 1)?, input(inputs, 4)?, input(inputs, 6)?, opt(7));
        let (to, range) = qlinear_out(x, y_zp)?;
        if let Some(b) = opt(8) {
            let bv = int_values(b, "B")?;
            if bv.len() != c_out {
                bail!("bias has {} elements, expected {c_out}", bv.len());
            }
            acc.chunks_mut(out_n.max(1)).enumerate().for_each(|(r, row)| {
                row.iter_mut().for_each(|a| *a = a.wrapping_add(bv[r % c_out]));
            });
        }
        let wsv = w_s.to_f64_vec();
        if wsv.len() != 1 && wsv.len() != c_out {
            bail!("w_scale must be a scalar or have {c_out} elements");
        }
        let sd = promote(x_s.dtype, promote(w_s.dtype, y_s.dtype));
        let (xs, ys) = (scalar(x_s, "x_scale")?, scalar(y_s, "y_scale")?);
        let yz = y_zp.map_or(Ok(0.0), |z| scalar(z, "y_zero_point"))?;
        let out = acc
            .iter()
            .enumerate()
            .map(|(f, &c)| {
                let m = (f / out_n.max(1)) % c_out.max(1);
                let ws = if wsv.len() == 1 { wsv[0] } else { wsv[m] };
                requantize(c, sd.round_float(sd.round_float(xs * ws) / ys), yz, range)
            })
            .collect();
        Ok(vec![CpuTensor { dtype: to, shape, data: int_data(to, out)? }])
    }
}

/// A constant 2-D right operand (input `b`, zero point input `zp` constant
/// or absent) prepared for the float GEMM, when its products fit.
fn const_b(info: &NodeInfo, b: usize, zp: usize) -> Option<ConstB> {
    let bt = CpuTensor::from_host(info.constant(b)?).ok()?;
    let zt = match info.has_input(zp) {
        true => Some(CpuTensor::from_host(info.constant(zp)?).ok()?),
        false => None,
    };
    ConstB::new(&bt, zt.as_ref())
}

/// Build a quantisation kernel, or say why this backend does not run it.
#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn build(op: &Q, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    info.require_held()?;
    let int8 = |i: usize| -> Result<()> {
        match info.in_dtype(i) {
            Some(DType::U8 | DType::I8) => Ok(()),
            None if !info.has_input(i) => Ok(()),
            d => Err(unsupported(format!("input {i} is {d:?}; this kernel takes uint8 / int8"))),
        }
    };
    // An integer type of at most `bits` bits, or a float8 / float4 type.
    let quantised = |d: DType, bits: usize| (d.is_int() && d.bits() <= bits) || is_float8(d) || d == DType::F4E2M1;
    let float_param = |i: usize| -> Result<()> {
        match info.in_dtype(i) {
            Some(d) if d.is_float() => Ok(()),
            d => Err(unsupported(format!("input {i} is {d:?}; scales must be float"))),
        }
    };
    Ok(match op {
        Q::QuantizeLinear { axis, block_size, output_dtype: _, saturate, precision } => {
            float_param(1)?;
            let to = info.out_dtype(0).ok_or_else(|| unsupported("output type unknown"))?;
            if !quantised(to, 16) {
                return Err(unsupported(format!("{to} is not a quantised type")));
            }
            if !info.in_dtype(0).is_some_and(|d| d.is_float() || d.is_int()) {
                return Err(unsupported("x must be numeric"));
            }
            Box::new(QuantizeKernel {
                axis: *axis,
                block: *block_size,
                to,
                saturate: *saturate != 0,
                precision: *precision,
            })
        }
        Q::DequantizeLinear { axis, block_size, output_dtype: _ } => {
            float_param(1)?;
            let x = info.in_dtype(0).ok_or_else(|| unsupported("x type unknown"))?;
            if !quantised(x, 32) {
                return Err(unsupported(format!("{x} is not a quantised type")));
            }
            let to = info.out_dtype(0).ok_or_else(|| unsupported("output type unknown"))?;
            if !matches!(to, DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
                return Err(unsupported(format!("output type {to}")));
            }
            Box::new(DequantizeKernel { axis: *axis, block: *block_size, to })
        }
        Q::DynamicQuantizeLinear {} => {
            if info.in_dtype(0) != Some(DType::F32) {
                return Err(unsupported("DynamicQuantizeLinear takes float32"));
            }
            Box::new(DynamicQuantizeKernel)
        }
        Q::MatMulInteger {} => {
            (0..4).try_for_each(int8)?;
            Box::new(MatMulIntegerKernel { qlinear: false, const_b: const_b(info, 1, 3) })
        }
        Q::QLinearMatMul {} => {
            [0, 2, 3, 5, 7].into_iter().try_for_each(int8)?;
            [1, 4, 6].into_iter().try_for_each(float_param)?;
            Box::new(MatMulIntegerKernel { qlinear: true, const_b: const_b(info, 3, 5) })
        }
        Q::ConvInteger { group, .. } | Q::QLinearConv { group, .. } => {
            let qlinear = matches!(op, Q::QLinearConv { .. });
            let geo = op.window_attrs().ok_or_else(|| unsupported("no window"))?;
            let group = usize::try_from(*group).ok().filter(|&g| g > 0).ok_or_else(|| unsupported("group < 1"))?;
            if qlinear {
                [0, 2, 3, 5, 7].into_iter().try_for_each(int8)?;
                [1, 4, 6].into_iter().try_for_each(float_param)?;
                if info.has_input(8) && info.in_dtype(8) != Some(DType::I32) {
                    return Err(unsupported("bias must be int32"));
                }
            } else {
                (0..4).try_for_each(int8)?;
            }
            Box::new(ConvIntegerKernel { geo, group, qlinear })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Pool;

    #[test]
    fn integer_products_on_the_float_gemm_are_exact() {
        let mut seed = 3u32;
        let mut rnd = |lo: i32, hi: i32| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            lo + (seed >> 8) as i32 % (hi - lo + 1)
        };
        // (m, k, n): one pass, several passes with a short last one, a row vector.
        for (m, k, n) in [(5, 40, 33), (7, 700, 50), (1, 300, 17)] {
            // Extremes of uint8 / int8 minus zero points included.
            let a: Vec<i32> = (0..m * k).map(|i| if i % 13 == 0 { 255 } else { rnd(-255, 255) }).collect();
            let b: Vec<i32> = (0..k * n).map(|i| if i % 11 == 0 { -255 } else { rnd(-255, 255) }).collect();
            let mut want = vec![0i32; m * n];
            int_gemm(&a, &b, (m, k, n), &mut want);
            let depth = exact_f32_depth(&a, &b, k).expect("8-bit operands fit");
            assert!(depth <= 258);
            for threads in [1, 2] {
                let pool = Pool::new(threads);
                let ctx = Ctx { pool: &pool, max_elements: usize::MAX, spare: None };
                let (af, bf): (Vec<f32>, Vec<f32>) =
                    (a.iter().map(|&v| v as f32).collect(), b.iter().map(|&v| v as f32).collect());
                let mut got = vec![0i32; m * n];
                float_int_gemm(&ctx, &af, (m, k, n), depth, |_, k0, kc| rows_of(&bf, n, k0, kc), &mut got);
                assert_eq!(got, want, "{m}x{k}x{n} on {threads} threads");
            }
        }
        // 16-bit operands do not fit one step.
        assert_eq!(exact_f32_depth(&[40_000], &[40_000], 4), None);
    }

    #[test]
    fn constant_right_operands_give_the_integer_products() {
        let mut seed = 9u32;
        let mut byte = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 13) as u8
        };
        let u8s = |shape: Vec<usize>, v: Vec<u8>| CpuTensor { dtype: DType::U8, shape, data: Data::U8(Arc::new(v)) };
        let i8s = |shape: Vec<usize>, v: Vec<u8>| CpuTensor {
            dtype: DType::I8,
            shape,
            data: Data::I8(Arc::new(v.into_iter().map(|x| x as i8).collect())),
        };
        let pool = Pool::new(2);
        let ctx = Ctx { pool: &pool, max_elements: usize::MAX, spare: None };
        // (A shape, k, n, A zero point shape): batched A, a row vector, per-row zero points, two passes.
        for (a_shape, k, n, zshape) in
            [(vec![2, 3, 40], 40, 33, vec![]), (vec![300], 300, 20, vec![]), (vec![4, 520], 520, 18, vec![4])]
        {
            let a = u8s(a_shape.clone(), (0..a_shape.iter().product::<usize>()).map(|_| byte()).collect());
            let az = u8s(zshape.clone(), (0..zshape.iter().product::<usize>().max(1)).map(|_| byte()).collect());
            let mut bvals: Vec<u8> = (0..k * n).map(|_| byte()).collect();
            bvals[0] = 0x80; // -128
            let b = i8s(vec![k, n], bvals);
            let bz = i8s(vec![n], (0..n).map(|_| byte()).collect());
            let cb = ConstB::new(&b, Some(&bz)).expect("8-bit weights");
            let got = cb.product(&ctx, &a, Some(&az)).expect("product");
            let av = minus_zero_point(&a, Some(&az), true, "A").expect("A");
            let bv = minus_zero_point(&b, Some(&bz), false, "B").expect("B");
            let want = int_matmul(&ctx, &av, &a.shape, &bv, &b.shape).expect("int");
            assert_eq!((got.0, got.1), (want.0, want.1), "A {a_shape:?}, k {k}, n {n}");
        }
    }
}
