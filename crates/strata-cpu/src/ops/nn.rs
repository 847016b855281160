//! Matrix products and pooling on f32 (normalisation kernels in
//! `norm.rs`), and the `nn` family's kernel builder.
//!
//! MatMul, Gemm and Conv all end in the packed GEMM (`crate::gemm`);
//! constant right-hand sides (MatMul/Gemm) and convolution weights are
//! packed once when the node is compiled. The convolution kernels live in
//! `conv.rs`; pooling shares their 3-D window geometry.

use strata_ir::ops::NnOp as N;
use strata_ir::window::{WindowAttrs, positive};
use strata_ir::{DType, TensorData};

use super::conv::{ConvKernel, ConvTransposeKernel, Win3, pack_weights, pack_weights_t};
use super::norm::{
    AxesNorm, AxesNormKernel, BatchNormKernel, DropoutKernel, GroupNormKernel, LayerNormKernel, LrnKernel,
};
use super::{Ctx, Kernel, NodeInfo, broadcast, broadcast_strides, input, strides, unsupported};
use crate::error::{CpuError, Result, bail};
use crate::gemm::{Epilogue, PackedA, PackedB, Rhs, flush_subnormals, gemm, gemm_rows};
use crate::tensor::CpuTensor;

/// A message from the IR's shared geometry as a kernel error.
pub(crate) fn kerr(e: String) -> CpuError {
    CpuError::Kernel(e)
}

/// A constant weight of a product (MatMul, Gemm, Conv, ConvTranspose) as
/// float32, prepared for packing: subnormal values flushed to zero (see
/// [`flush_subnormals`]).
fn const_weights(t: &TensorData) -> Result<Vec<f32>> {
    let mut v = CpuTensor::from_host(t)?.as_f32()?.to_vec();
    flush_subnormals(&mut v);
    Ok(v)
}

// ---------------------------------------------------------------- MatMul

/// `MatMul` with numpy batch broadcasting; a constant 2-D right operand is
/// packed at compile time.
struct MatMulKernel {
    packed_b: Option<(Vec<usize>, PackedB)>,
}

/// Split a MatMul operand shape into (batch dims, rows, cols) with the ONNX
/// 1-D promotion rules.
fn mat_dims(shape: &[usize], left: bool) -> (Vec<usize>, usize, usize) {
    match shape.len() {
        0 => (vec![], 1, 1),
        1 if left => (vec![], 1, shape[0]),
        1 => (vec![], shape[0], 1),
        r => (shape[..r - 2].to_vec(), shape[r - 2], shape[r - 1]),
    }
}

impl Kernel for MatMulKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let a = input(inputs, 0)?;
        let b = input(inputs, 1)?;
        if a.shape.is_empty() || b.shape.is_empty() {
            bail!("MatMul operands must have rank at least 1, got {:?} and {:?}", a.shape, b.shape);
        }
        let (ab, m, k) = mat_dims(&a.shape, true);
        let (bb, k2, n) = mat_dims(&b.shape, false);
        if k != k2 {
            bail!("MatMul inner dimensions differ: {:?} × {:?}", a.shape, b.shape);
        }
        let batch = broadcast(&ab, &bb)?;
        let mut out_shape = batch.clone();
        if a.shape.len() > 1 {
            out_shape.push(m);
        }
        if b.shape.len() > 1 {
            out_shape.push(n);
        }
        ctx.check_numel(&out_shape)?;
        let (av, bv) = (a.as_f32()?, b.as_f32()?);
        let nb: usize = batch.iter().product();
        let (sa, sb) = (broadcast_strides(&ab, &batch), broadcast_strides(&bb, &batch));
        let bs = strides(&batch);
        let mut out = ctx.buffer(nb * m * n);
        for bi in 0..nb {
            let (mut oa, mut ob) = (0, 0);
            for d in 0..batch.len() {
                let idx = (bi / bs[d]) % batch[d];
                oa += idx * sa[d];
                ob += idx * sb[d];
            }
            let a_rows = &av[oa * m * k..];
            let c = &mut out[bi * m * n..(bi + 1) * m * n];
            let epi = Epilogue::default();
            match &self.packed_b {
                Some((shape, pb)) if *shape == b.shape => {
                    gemm_rows(ctx.pool, a_rows, m, k, k, Rhs::Packed(pb), c, n, &epi)
                }
                _ => {
                    // The right operand as it is (read in place or filled
                    // segment by segment by the GEMM).
                    let rows = Rhs::Rows { data: &bv[ob * k * n..(ob + 1) * k * n], k, n, ldb: n };
                    gemm_rows(ctx.pool, a_rows, m, k, k, rows, c, n, &epi);
                }
            }
        }
        Ok(vec![CpuTensor::f32(out_shape, out)])
    }
}

// ------------------------------------------------------------------ Gemm

/// `Y = alpha · op(A) · op(B) + beta · C`.
struct GemmKernel {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
    packed_b: Option<(Vec<usize>, PackedB)>,
}

fn pack_gemm_b(bv: &[f32], shape: &[usize], trans: bool) -> Result<PackedB> {
    let [r, c] = shape else { bail!("Gemm B must be 2-D, got shape {shape:?}") };
    Ok(if trans { PackedB::pack(bv, *c, *r, 1, *c) } else { PackedB::pack(bv, *r, *c, *c, 1) })
}

impl Kernel for GemmKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let a = input(inputs, 0)?;
        let b = input(inputs, 1)?;
        let [ar, ac] = a.shape[..] else { bail!("Gemm A must be 2-D, got shape {:?}", a.shape) };
        let [br, bc] = b.shape[..] else { bail!("Gemm B must be 2-D, got shape {:?}", b.shape) };
        let (m, k) = if self.trans_a { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if self.trans_b { (bc, br) } else { (br, bc) };
        if k != k2 {
            bail!("Gemm inner dimensions differ: A {:?}, B {:?}", a.shape, b.shape);
        }
        ctx.check_numel(&[m, n])?;
        let av = a.as_f32()?;
        let mut y = ctx.buffer(m * n);
        let runtime_b;
        let pb = match &self.packed_b {
            Some((shape, pb)) if *shape == b.shape => pb,
            _ => {
                runtime_b = pack_gemm_b(b.as_f32()?, &b.shape, self.trans_b)?;
                &runtime_b
            }
        };
        if self.trans_a {
            gemm(ctx.pool, &PackedA::pack(av, m, k, 1, m), pb, &mut y, n);
        } else {
            gemm_rows(ctx.pool, av, m, k, k, Rhs::Packed(pb), &mut y, n, &Epilogue::default());
        }
        if self.alpha != 1.0 {
            y.iter_mut().for_each(|v| *v *= self.alpha);
        }
        if let Some(c) = inputs.get(2).copied().flatten() {
            let cv = c.as_f32()?;
            let shape = [m, n];
            if broadcast(&c.shape, &shape)? != shape {
                bail!("Gemm C of shape {:?} does not broadcast to [{m}, {n}]", c.shape);
            }
            let cs = broadcast_strides(&c.shape, &shape);
            for i in 0..m {
                for j in 0..n {
                    y[i * n + j] += self.beta * cv[i * cs[0] + j * cs[1]];
                }
            }
        }
        Ok(vec![CpuTensor::f32(vec![m, n], y)])
    }
}

// --------------------------------------------------------------- Pooling

#[derive(Debug, Clone, Copy)]
enum PoolKind {
    Max,
    Avg {
        count_include_pad: bool,
    },
    /// `(Σ |x|^p)^(1/p)` over the taps inside the input (padding adds 0).
    Lp {
        p: i32,
    },
}

/// `|v|^p` of an LpPool tap.
#[inline(always)]
fn lp_pow(v: f32, p: i32) -> f32 {
    match p {
        1 => v.abs(),
        2 => v * v,
        _ => v.abs().powi(p),
    }
}

struct PoolKernel {
    geo: WindowAttrs,
    kind: PoolKind,
}

impl Kernel for PoolKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if x.shape.len() < 3 {
            bail!("pooling needs X of rank ≥ 3 (N, C, spatial...), got {:?}", x.shape);
        }
        let nsp = x.shape.len() - 2;
        let ks = self.geo.kernel_shape.as_deref().unwrap_or_default();
        let kernel = positive(ks, nsp, "kernel_shape").map_err(kerr)?;
        ctx.check_numel(&kernel)?;
        let w = Win3::new(&self.geo, &x.shape[2..], kernel)?;
        let mut out_shape = x.shape[..2].to_vec();
        out_shape.extend_from_slice(w.out_spatial());
        ctx.check_numel(&out_shape)?;
        let xv = x.as_f32()?;
        let (in_size, cols) = (w.in_size(), w.out_size());
        let mut y = vec![0.0f32; x.shape[0] * x.shape[1] * cols];
        let kind = self.kind;
        let work = y.len() * w.taps();
        ctx.pool.for_each_chunk(&mut y, cols, work, |i, out| {
            crate::simd::vectorized(
                #[inline(always)]
                || pool_plane(&w, kind, &xv[i * in_size..(i + 1) * in_size], out),
            );
        });
        Ok(vec![CpuTensor::f32(out_shape, y)])
    }
}

/// One plane of a pooling window. Row by row: each kernel tap whose input
/// row exists updates the run of output columns whose input column exists
/// in one pass (no per-tap bounds tests). Every output still takes its taps
/// in kernel order, so sums round as a tap-by-tap loop would; a NaN tap
/// makes a max NaN.
#[inline(always)]
fn pool_plane(w: &Win3, kind: PoolKind, x: &[f32], out: &mut [f32]) {
    let max = matches!(kind, PoolKind::Max);
    // A NaN input makes its windows' max NaN: only then the slower test.
    // (A fold, not `any`: it vectorises.)
    let nan_aware = max && x.iter().fold(false, |n, v| n | v.is_nan());
    out.fill(if max { f32::NEG_INFINITY } else { 0.0 });
    let inside = |axis: usize, o: usize, k: usize| {
        let p = w.pos(axis, o, k);
        p >= 0 && (p as usize) < w.input[axis]
    };
    let in_pad = |axis: usize, o: usize, k: usize| {
        let p = w.pos(axis, o, k);
        p >= -w.pad_begin[axis] && p < w.input[axis] as i64 + w.pad_end[axis]
    };
    let count = |axis: usize, o: usize, f: &dyn Fn(usize, usize, usize) -> bool| {
        (0..w.kernel[axis]).filter(|&k| f(axis, o, k)).count()
    };
    let ow_n = w.out[2];
    // Output columns [lo, hi) whose input column exists, for each tap kw.
    let cols: Vec<(usize, usize)> = (0..w.kernel[2])
        .map(|kw| {
            let mut valid = (0..ow_n).filter(|&ow| inside(2, ow, kw));
            let lo = valid.next().unwrap_or(0);
            let hi = valid.next_back().map_or(if inside(2, lo, kw) { lo + 1 } else { lo }, |l| l + 1);
            (lo, hi)
        })
        .collect();
    // Avg: taps counted along the width axis, per output column.
    let (w_taps, w_cover): (Vec<usize>, Vec<usize>) = if max {
        Default::default()
    } else {
        (0..ow_n).map(|ow| (count(2, ow, &inside), count(2, ow, &in_pad))).unzip()
    };
    let (s2, d2, p2) = (w.strides[2] as i64, w.dilations[2] as i64, w.pad_begin[2]);
    for od in 0..w.out[0] {
        for oh in 0..w.out[1] {
            let row = &mut out[(od * w.out[1] + oh) * ow_n..][..ow_n];
            for kd in (0..w.kernel[0]).filter(|&kd| inside(0, od, kd)) {
                let d = w.pos(0, od, kd) as usize;
                for kh in (0..w.kernel[1]).filter(|&kh| inside(1, oh, kh)) {
                    let h = w.pos(1, oh, kh) as usize;
                    let xrow = &x[(d * w.input[1] + h) * w.input[2]..][..w.input[2]];
                    for (kw, &(lo, hi)) in cols.iter().enumerate() {
                        let off = kw as i64 * d2 - p2;
                        let at = |ow: usize| (ow as i64 * s2 + off) as usize;
                        if max && nan_aware {
                            for ow in lo..hi {
                                let v = xrow[at(ow)];
                                let m = &mut row[ow];
                                if v.is_nan() || v > *m {
                                    *m = v;
                                }
                            }
                        } else if max {
                            // Branch-free: the plane holds no NaN.
                            for ow in lo..hi {
                                let v = xrow[at(ow)];
                                let m = &mut row[ow];
                                *m = if v > *m { v } else { *m };
                            }
                        } else if let PoolKind::Lp { p } = kind {
                            for ow in lo..hi {
                                row[ow] += lp_pow(xrow[at(ow)], p);
                            }
                        } else {
                            for ow in lo..hi {
                                row[ow] += xrow[at(ow)];
                            }
                        }
                    }
                }
            }
            if let PoolKind::Lp { p } = kind {
                for v in row.iter_mut() {
                    *v = match p {
                        1 => *v,
                        2 => v.sqrt(),
                        _ => libm::powf(*v, 1.0 / p as f32),
                    };
                }
            }
            if let PoolKind::Avg { count_include_pad } = kind {
                let (dh_taps, dh_cover) =
                    (count(0, od, &inside) * count(1, oh, &inside), count(0, od, &in_pad) * count(1, oh, &in_pad));
                for (ow, v) in row.iter_mut().enumerate() {
                    let n = if count_include_pad { dh_cover * w_cover[ow] } else { dh_taps * w_taps[ow] };
                    *v /= n as f32;
                }
            }
        }
    }
}

/// The largest value of `p` (NaN if any is NaN), in sixteen lanes so the
/// loop vectorises (the maximum does not depend on the order).
#[inline(always)]
fn plane_max(p: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; 16];
    let mut nan = false;
    let mut chunks = p.chunks_exact(16);
    for c in &mut chunks {
        for l in 0..16 {
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
            nan |= c[l].is_nan();
        }
    }
    let mut best = f32::NEG_INFINITY;
    for &v in m.iter().chain(chunks.remainder()) {
        best = if v > best { v } else { best };
        nan |= v.is_nan();
    }
    if nan { f32::NAN } else { best }
}

struct GlobalPoolKernel {
    max: bool,
}

impl Kernel for GlobalPoolKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if x.shape.len() < 2 {
            bail!("global pooling needs X of rank ≥ 2, got {:?}", x.shape);
        }
        let xv = x.as_f32()?;
        let plane: usize = x.shape[2..].iter().product();
        let planes = x.shape[0] * x.shape[1];
        let mut y = vec![0.0f32; planes];
        let max = self.max;
        ctx.pool.for_each_chunk(&mut y, 64, xv.len(), |i, out| {
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for (j, o) in out.iter_mut().enumerate() {
                        let p = &xv[(i * 64 + j) * plane..(i * 64 + j + 1) * plane];
                        *o = if max { plane_max(p) } else { crate::simd::sum_lanes(p, |v| v) / plane as f32 };
                    }
                },
            )
        });
        let mut shape = x.shape[..2].to_vec();
        shape.extend(std::iter::repeat_n(1, x.shape.len() - 2));
        Ok(vec![CpuTensor::f32(shape, y)])
    }
}

#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn build(op: &N, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    let f32_only = || info.require_dtypes(&[DType::F32]);
    let outputs = info.node.outputs.iter().flatten().count();
    let geo = || op.window_attrs().ok_or_else(|| unsupported("no window attributes"));
    Ok(match op {
        N::MatMul {} => {
            f32_only()?;
            let packed_b = match info.constant(1) {
                Some(t) if t.shape().len() == 2 => {
                    let (k, n) = (t.shape()[0], t.shape()[1]);
                    Some((t.shape().to_vec(), PackedB::pack(&const_weights(t)?, k, n, n, 1)))
                }
                _ => None,
            };
            Box::new(MatMulKernel { packed_b })
        }
        N::Gemm { alpha, beta, transA, transB, .. } => {
            f32_only()?;
            let packed_b = match info.constant(1) {
                Some(t) => Some((t.shape().to_vec(), pack_gemm_b(&const_weights(t)?, t.shape(), *transB != 0)?)),
                None => None,
            };
            Box::new(GemmKernel { alpha: *alpha, beta: *beta, trans_a: *transA != 0, trans_b: *transB != 0, packed_b })
        }
        N::Conv { group, .. } => {
            f32_only()?;
            let group = usize::try_from(*group).ok().filter(|&g| g >= 1).ok_or_else(|| unsupported("group < 1"))?;
            let packed_w = match info.constant(1) {
                Some(t) if t.shape().len() >= 3 && group > 0 && t.shape()[0] % group == 0 => {
                    Some((t.shape().to_vec(), pack_weights(&const_weights(t)?, t.shape(), group)))
                }
                _ => None,
            };
            Box::new(ConvKernel { geo: geo()?, group, packed_w, transposed_w: Default::default() })
        }
        N::ConvTranspose { group, output_padding, output_shape, .. } => {
            f32_only()?;
            let group = usize::try_from(*group).ok().filter(|&g| g >= 1).ok_or_else(|| unsupported("group < 1"))?;
            let packed_w = match info.constant(1) {
                Some(t) if t.shape().len() >= 3 && t.shape()[0] % group == 0 => {
                    Some((t.shape().to_vec(), pack_weights_t(&const_weights(t)?, t.shape(), group)))
                }
                _ => None,
            };
            Box::new(ConvTransposeKernel {
                geo: geo()?,
                group,
                output_padding: output_padding.clone(),
                output_shape: output_shape.clone(),
                packed_w,
            })
        }
        N::Resize { .. } => return super::resize::build(op, info),
        N::Attention { .. }
        | N::FlexAttention { .. }
        | N::RotaryEmbedding { .. }
        | N::LinearAttention { .. }
        | N::CausalConvWithState { .. }
        | N::SwiGLU { .. } => {
            return super::attention::build(op, info);
        }
        N::MaxPool { .. } => {
            f32_only()?;
            if outputs > 1 {
                return Err(unsupported("MaxPool with the Indices output"));
            }
            Box::new(PoolKernel { geo: geo()?, kind: PoolKind::Max })
        }
        N::AveragePool { count_include_pad, .. } => {
            f32_only()?;
            Box::new(PoolKernel { geo: geo()?, kind: PoolKind::Avg { count_include_pad: *count_include_pad } })
        }
        N::LpPool { p, .. } => {
            f32_only()?;
            let p =
                i32::try_from(*p).ok().filter(|&p| p > 0).ok_or_else(|| unsupported("LpPool p must be positive"))?;
            Box::new(PoolKernel { geo: geo()?, kind: PoolKind::Lp { p } })
        }
        N::LpNormalization { axis, p } => {
            f32_only()?;
            if !matches!(p, 1 | 2) {
                return Err(unsupported(format!("LpNormalization p = {p} (1 or 2)")));
            }
            Box::new(AxesNormKernel { axes: vec![*axis], how: AxesNorm::Lp(*p) })
        }
        N::MeanVarianceNormalization { axes } => {
            f32_only()?;
            Box::new(AxesNormKernel { axes: axes.clone(), how: AxesNorm::MeanVariance })
        }
        N::GridSample { align_corners, mode, padding_mode } => {
            return super::sample::build(*align_corners != 0, *mode, *padding_mode, info);
        }
        N::GlobalAveragePool {} | N::GlobalMaxPool {} => {
            f32_only()?;
            Box::new(GlobalPoolKernel { max: matches!(op, N::GlobalMaxPool {}) })
        }
        N::BatchNormalization { epsilon, training_mode, .. } => {
            f32_only()?;
            if *training_mode != 0 || outputs > 1 {
                return Err(unsupported("BatchNormalization in training mode"));
            }
            Box::new(BatchNormKernel { epsilon: *epsilon })
        }
        N::LayerNormalization { axis, epsilon, stash_type } => {
            f32_only()?;
            if *stash_type != 1 {
                return Err(unsupported(format!("stash_type {stash_type}")));
            }
            Box::new(LayerNormKernel { axis: *axis, epsilon: *epsilon, rms: false })
        }
        N::InstanceNormalization { epsilon } => {
            f32_only()?;
            Box::new(GroupNormKernel { epsilon: *epsilon, groups: None })
        }
        N::GroupNormalization { epsilon, num_groups, stash_type } => {
            f32_only()?;
            if *stash_type != 1 {
                return Err(unsupported(format!("stash_type {stash_type}")));
            }
            let groups = usize::try_from(*num_groups).map_err(|_| unsupported("num_groups < 0"))?;
            Box::new(GroupNormKernel { epsilon: *epsilon, groups: Some(groups) })
        }
        N::RMSNormalization { axis, epsilon, stash_type } => {
            f32_only()?;
            if *stash_type != 1 || outputs > 1 {
                return Err(unsupported(format!("stash_type {stash_type}")));
            }
            Box::new(LayerNormKernel { axis: *axis, epsilon: *epsilon, rms: true })
        }
        N::LSTM { .. } => {
            let attrs = op.recurrent_attrs().map_err(unsupported)?;
            return super::recurrent::build_lstm(info, &attrs);
        }
        N::Dropout { .. } => {
            info.require_native()?;
            // Inference only: training_mode absent, or a constant false.
            if info.has_input(2) {
                let off = info.constant(2).is_some_and(|t| t.to_f64_vec().iter().all(|&m| m == 0.0));
                if !off {
                    return Err(unsupported("Dropout in training mode (or with training_mode computed at run time)"));
                }
            }
            if outputs > 1 {
                Box::new(DropoutKernel { mask: true })
            } else {
                Box::new(super::elementwise::IdentityKernel)
            }
        }
        N::LRN { alpha, beta, bias, size } => {
            f32_only()?;
            let size = usize::try_from(*size).ok().filter(|&s| s > 0).ok_or_else(|| unsupported("LRN size < 1"))?;
            Box::new(LrnKernel { alpha: *alpha, beta: *beta, bias: *bias, size })
        }
        N::Einsum { equation } => {
            let d = info.in_dtype(0);
            if !matches!(d, Some(DType::F32 | DType::F64)) {
                return Err(unsupported(format!("Einsum of {d:?} (this kernel takes float32, float64)")));
            }
            info.require_dtypes(&[d.unwrap_or(DType::F32)])?;
            Box::new(EinsumKernel(equation.clone()))
        }
        // not supported here
        N::DeformConv { .. }
        | N::GlobalLpPool { .. }
        | N::MaxUnpool { .. }
        | N::MaxRoiPool { .. }
        | N::RoiAlign { .. }
        | N::Col2Im { .. }
        | N::Det { .. }
        | N::AffineGrid { .. }
        | N::Upsample { .. }
        | N::NonMaxSuppression { .. }
        | N::RNN { .. }
        | N::GRU { .. }
        | N::Adagrad { .. }
        | N::Adam { .. }
        | N::Momentum { .. } => return Err(unsupported(format!("no {} kernel", op.name()))),
    })
}

// ---------------------------------------------------------------- Einsum

/// `Einsum` on float32 / float64 from the IR's resolved contraction: per
/// output element, the products of the operands summed over the summed
/// variables in lexicographic order, in f64 (the reference's order, so
/// float64 results are its bits).
struct EinsumKernel(strata_ir::einsum::Equation);

impl Kernel for EinsumKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let ts: Vec<&CpuTensor> =
            inputs.iter().map(|t| t.ok_or_else(|| kerr("Einsum input missing".into()))).collect::<Result<_>>()?;
        let Some(first) = ts.first() else { bail!("Einsum needs at least one input") };
        let shapes: Vec<&[usize]> = ts.iter().map(|t| &t.shape[..]).collect();
        let c = self.0.resolve(&shapes).map_err(kerr)?;
        let n_out = ctx.check_numel(&c.out_shape)?;
        if let Some(t) = ts.iter().find(|t| !matches!(t.dtype, DType::F32 | DType::F64) || t.dtype != first.dtype) {
            bail!("Einsum input of type {} (the first is {})", t.dtype, first.dtype);
        }
        let ops: Vec<Vec<f64>> = ts.iter().map(|t| t.to_f64_vec()).collect();
        let sum_sizes: Vec<usize> = c.sum_vars.iter().map(|&v| c.sizes[v]).collect();
        let n_sum: usize = sum_sizes.iter().product();
        let out_strides = strides(&c.out_shape);
        let mut out = vec![0f64; n_out];
        for (o, slot) in out.iter_mut().enumerate() {
            // The operands' offsets for this output element.
            let base: Vec<usize> = c
                .steps
                .iter()
                .map(|st| {
                    c.out_vars.iter().enumerate().map(|(i, &v)| (o / out_strides[i] % c.out_shape[i]) * st[v]).sum()
                })
                .collect();
            let mut acc = 0f64;
            for s in 0..n_sum {
                let mut prod = 1f64;
                for (k, op) in ops.iter().enumerate() {
                    let (mut rem, mut off) = (s, base[k]);
                    for (j, &v) in c.sum_vars.iter().enumerate().rev() {
                        off += rem % sum_sizes[j] * c.steps[k][v];
                        rem /= sum_sizes[j];
                    }
                    prod *= op[off];
                }
                acc += prod;
            }
            *slot = acc;
        }
        let data = match first.dtype {
            DType::F64 => crate::tensor::Data::F64(std::sync::Arc::new(out)),
            _ => crate::tensor::Data::F32(std::sync::Arc::new(out.into_iter().map(|x| x as f32).collect())),
        };
        Ok(vec![CpuTensor { dtype: first.dtype, shape: c.out_shape, data }])
    }
}
