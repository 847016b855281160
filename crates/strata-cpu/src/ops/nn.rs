//! Matrix products, convolution and pooling on f32 (normalisation kernels
//! in `norm.rs`), and the family's `build`.
//!
//! MatMul, Gemm and Conv all end in the packed GEMM (`crate::gemm`);
//! constant right-hand sides (MatMul/Gemm) and convolution weights are
//! packed once when the node is compiled. Convolution lowers to im2col per
//! (batch, group) except depthwise convolution, which runs directly. Spatial
//! operators of rank 1–3 are all handled as 3-D (missing axes have size 1).

use strata_ir::ops::NnOp as N;
use strata_ir::window::{AutoPad, Window, axis_attr, positive};
use strata_ir::{DType, TensorData};

use super::norm::{BatchNormKernel, GroupNormKernel, LayerNormKernel};
use super::{Ctx, Kernel, NodeInfo, broadcast, broadcast_strides, input, strides, unsupported};
use crate::error::{CpuError, Result, bail};
use crate::gemm::{NR, PackedA, PackedB, gemm};
use crate::tensor::CpuTensor;

/// A message from the IR's shared geometry as a kernel error.
pub(crate) fn kerr(e: String) -> CpuError {
    CpuError::Kernel(e)
}

/// The f32 values of a weight known at compile time.
fn const_f32(t: &TensorData) -> Result<Vec<f32>> {
    Ok(CpuTensor::from_host(t)?.as_f32()?.to_vec())
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
        let mut out = vec![0.0f32; nb * m * n];
        let mut packed_cache: Option<(usize, PackedB)> = None;
        for bi in 0..nb {
            let (mut oa, mut ob) = (0, 0);
            for d in 0..batch.len() {
                let idx = (bi / bs[d]) % batch[d];
                oa += idx * sa[d];
                ob += idx * sb[d];
            }
            let pa = PackedA::pack(&av[oa * m * k..], m, k, k, 1);
            let c = &mut out[bi * m * n..(bi + 1) * m * n];
            match &self.packed_b {
                Some((shape, pb)) if *shape == b.shape => gemm(ctx.pool, &pa, pb, c, n),
                _ => {
                    if packed_cache.as_ref().is_none_or(|(o, _)| *o != ob) {
                        packed_cache = Some((ob, PackedB::pack(&bv[ob * k * n..], k, n, n, 1)));
                    }
                    if let Some((_, pb)) = &packed_cache {
                        gemm(ctx.pool, &pa, pb, c, n);
                    }
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
        let pa = if self.trans_a { PackedA::pack(av, m, k, 1, m) } else { PackedA::pack(av, m, k, k, 1) };
        let mut y = vec![0.0f32; m * n];
        match &self.packed_b {
            Some((shape, pb)) if *shape == b.shape => gemm(ctx.pool, &pa, pb, &mut y, n),
            _ => gemm(ctx.pool, &pa, &pack_gemm_b(b.as_f32()?, &b.shape, self.trans_b)?, &mut y, n),
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

// ------------------------------------------------------------------ Conv

/// The geometry attributes of a convolution or pooling node.
#[derive(Debug, Clone)]
struct Geometry {
    auto_pad: AutoPad,
    ceil_mode: bool,
    kernel: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
    dilations: Option<Vec<i64>>,
    pads: Option<Vec<i64>>,
}

/// A window over 3 spatial axes (rank-1 and rank-2 geometry padded with
/// leading unit axes), with the input and output sizes.
struct Win3 {
    input: [usize; 3],
    out: [usize; 3],
    kernel: [usize; 3],
    strides: [usize; 3],
    dilations: [usize; 3],
    pad_begin: [i64; 3],
    pad_end: [i64; 3],
    rank: usize,
}

impl Geometry {
    fn window(&self, in_sp: &[usize], kernel: Vec<usize>) -> Result<Win3> {
        let n = in_sp.len();
        if !(1..=3).contains(&n) {
            return Err(unsupported(format!("{n} spatial axes (this backend takes 1 to 3)")));
        }
        let w = Window::new(
            in_sp,
            kernel,
            axis_attr(&self.strides, n, 1, "strides").map_err(kerr)?,
            axis_attr(&self.dilations, n, 1, "dilations").map_err(kerr)?,
            &self.pads,
            self.auto_pad,
            self.ceil_mode,
        )
        .map_err(kerr)?;
        let lead = 3 - n;
        let mut r = Win3 {
            input: [1; 3],
            out: [1; 3],
            kernel: [1; 3],
            strides: [1; 3],
            dilations: [1; 3],
            pad_begin: [0; 3],
            pad_end: [0; 3],
            rank: n,
        };
        for i in 0..n {
            r.input[lead + i] = in_sp[i];
            r.out[lead + i] = w.out[i];
            r.kernel[lead + i] = w.kernel[i];
            r.strides[lead + i] = w.strides[i];
            r.dilations[lead + i] = w.dilations[i];
            r.pad_begin[lead + i] = w.pad_begin[i];
            r.pad_end[lead + i] = w.pad_end[i];
        }
        Ok(r)
    }
}

impl Win3 {
    fn out_size(&self) -> usize {
        self.out.iter().product()
    }
    fn in_size(&self) -> usize {
        self.input.iter().product()
    }
    fn taps(&self) -> usize {
        self.kernel.iter().product()
    }
    /// Input coordinate on axis `i` for output `o` and tap `k` (maybe outside).
    #[inline(always)]
    fn pos(&self, i: usize, o: usize, k: usize) -> i64 {
        o as i64 * self.strides[i] as i64 - self.pad_begin[i] + k as i64 * self.dilations[i] as i64
    }
    fn out_spatial(&self) -> &[usize] {
        &self.out[3 - self.rank..]
    }
    fn is_pointwise(&self) -> bool {
        self.kernel == [1; 3] && self.strides == [1; 3] && self.pad_begin == [0; 3] && self.pad_end == [0; 3]
    }
}

/// im2col straight into the GEMM's packed layout: row `ci · taps + tap`,
/// column = output position; each panel (`NR` output positions) is filled
/// by one worker.
fn im2col_packed(pool: &crate::pool::Pool, w: &Win3, x: &[f32], channels: usize) -> PackedB {
    let (taps, cols, in_size) = (w.taps(), w.out_size(), w.in_size());
    let rows = channels * taps;
    let mut pb = PackedB::zeros(rows, cols);
    let panel_len = NR * rows;
    pool.for_each_chunk(pb.data_mut(), panel_len.max(1), rows * cols * 2, |p, panel| {
        let width = NR.min(cols - p * NR);
        // Output coordinates of this panel's columns.
        let mut at = [[0i64; 3]; NR];
        for (c, o) in at.iter_mut().enumerate().take(width) {
            let j = p * NR + c;
            let (od, oh, ow) = (j / (w.out[1] * w.out[2]), (j / w.out[2]) % w.out[1], j % w.out[2]);
            *o = [w.pos(0, od, 0), w.pos(1, oh, 0), w.pos(2, ow, 0)];
        }
        for r in 0..rows {
            let (ci, tap) = (r / taps, r % taps);
            let (kd, kh, kw) =
                (tap / (w.kernel[1] * w.kernel[2]), (tap / w.kernel[2]) % w.kernel[1], tap % w.kernel[2]);
            let off = [(kd * w.dilations[0]) as i64, (kh * w.dilations[1]) as i64, (kw * w.dilations[2]) as i64];
            let xs = &x[ci * in_size..(ci + 1) * in_size];
            let dst = &mut panel[r * NR..r * NR + width];
            for (d, o) in dst.iter_mut().zip(&at) {
                let (pd, ph, pw) = (o[0] + off[0], o[1] + off[1], o[2] + off[2]);
                *d = if pd >= 0
                    && (pd as usize) < w.input[0]
                    && ph >= 0
                    && (ph as usize) < w.input[1]
                    && pw >= 0
                    && (pw as usize) < w.input[2]
                {
                    xs[(pd as usize * w.input[1] + ph as usize) * w.input[2] + pw as usize]
                } else {
                    0.0
                };
            }
        }
    });
    pb
}

struct ConvKernel {
    geo: Geometry,
    group: usize,
    /// Weights packed per group, with the weight shape they came from.
    packed_w: Option<(Vec<usize>, Vec<PackedA>)>,
}

fn pack_weights(wv: &[f32], wshape: &[usize], group: usize) -> Vec<PackedA> {
    let m = wshape[0];
    let kk: usize = wshape[1..].iter().product();
    let mg = m / group.max(1);
    (0..group).map(|g| PackedA::pack(&wv[g * mg * kk..], mg, kk, kk, 1)).collect()
}

impl Kernel for ConvKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let wt = input(inputs, 1)?;
        if x.shape.len() < 3 || wt.shape.len() != x.shape.len() {
            bail!("Conv needs X of rank ≥ 3 and W of the same rank, got {:?} and {:?}", x.shape, wt.shape);
        }
        let (n, c) = (x.shape[0], x.shape[1]);
        let (m, cg) = (wt.shape[0], wt.shape[1]);
        let g = self.group;
        if g == 0 || c != cg * g || m % g != 0 {
            bail!("Conv channels do not match: X has {c}, W {:?} with group {g}", wt.shape);
        }
        let kernel = wt.shape[2..].to_vec();
        if let Some(ks) = &self.geo.kernel
            && positive(ks, kernel.len(), "kernel_shape").map_err(kerr)? != kernel
        {
            bail!("kernel_shape {ks:?} does not match W of shape {:?}", wt.shape);
        }
        let w = self.geo.window(&x.shape[2..], kernel)?;
        let mut out_shape = vec![n, m];
        out_shape.extend_from_slice(w.out_spatial());
        ctx.check_numel(&out_shape)?;
        let (rows, cols) = (cg * w.taps(), w.out_size());
        let mg = m / g;
        let bias = match inputs.get(2).copied().flatten() {
            Some(b) if b.shape == [m] => Some(b.as_f32()?),
            Some(b) => bail!("Conv bias must have shape [{m}], got {:?}", b.shape),
            None => None,
        };
        let xv = x.as_f32()?;
        let wv = wt.as_f32()?;
        let in_size = w.in_size();
        let mut y = vec![0.0f32; n * m * cols];
        if cg == 1 && mg == 1 {
            // Depthwise: one kernel per channel, run directly.
            let taps = w.taps();
            ctx.pool.for_each_chunk(&mut y, cols, n * m * cols * taps * 2, |i, out| {
                let ch = i % m;
                let xs = &xv[i * in_size..(i + 1) * in_size];
                let ws = &wv[ch * taps..(ch + 1) * taps];
                depthwise(&w, xs, ws, out);
            });
        } else {
            ctx.check_numel(&[rows, cols])?;
            let runtime_w;
            let packed: &[PackedA] = match &self.packed_w {
                Some((shape, p)) if *shape == wt.shape => p,
                _ => {
                    runtime_w = pack_weights(wv, &wt.shape, g);
                    &runtime_w
                }
            };
            for b in 0..n {
                for (gi, pa) in packed.iter().enumerate() {
                    let xs = &xv[(b * c + gi * cg) * in_size..(b * c + (gi + 1) * cg) * in_size];
                    let pb = if w.is_pointwise() {
                        PackedB::pack(xs, rows, cols, cols, 1)
                    } else {
                        im2col_packed(ctx.pool, &w, xs, cg)
                    };
                    let ys = &mut y[(b * m + gi * mg) * cols..(b * m + (gi + 1) * mg) * cols];
                    gemm(ctx.pool, pa, &pb, ys, cols);
                }
            }
        }
        if let Some(bias) = bias {
            for (i, plane) in y.chunks_exact_mut(cols.max(1)).enumerate() {
                let bv = bias[i % m];
                plane.iter_mut().for_each(|v| *v += bv);
            }
        }
        Ok(vec![CpuTensor::f32(out_shape, y)])
    }
}

/// One channel of a depthwise convolution. Row by row: for each kernel tap
/// the range of output columns whose input lies inside the image is added
/// in one pass (contiguous, so it vectorises, when the stride is 1). Each
/// output still sums its taps in kernel order.
fn depthwise(w: &Win3, x: &[f32], k: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    let (ow_n, iw_n) = (w.out[2] as i64, w.input[2] as i64);
    let (s, d, p) = (w.strides[2] as i64, w.dilations[2] as i64, w.pad_begin[2]);
    // Output column range [lo, hi) reading inside the input for tap `kw`.
    let range = |kw: usize| -> (usize, usize) {
        let off = kw as i64 * d - p;
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let hi = if iw_n - 1 - off < 0 { 0 } else { ((iw_n - 1 - off) / s + 1).min(ow_n) };
        (lo.min(ow_n) as usize, hi.max(lo.min(ow_n)) as usize)
    };
    let ranges: Vec<(usize, usize)> = (0..w.kernel[2]).map(range).collect();
    for od in 0..w.out[0] {
        for kd in 0..w.kernel[0] {
            let id = w.pos(0, od, kd);
            if id < 0 || id as usize >= w.input[0] {
                continue;
            }
            for oh in 0..w.out[1] {
                let orow = &mut out[(od * w.out[1] + oh) * w.out[2]..(od * w.out[1] + oh + 1) * w.out[2]];
                for kh in 0..w.kernel[1] {
                    let ih = w.pos(1, oh, kh);
                    if ih < 0 || ih as usize >= w.input[1] {
                        continue;
                    }
                    let irow = &x[(id as usize * w.input[1] + ih as usize) * w.input[2]..][..w.input[2]];
                    let krow = &k[(kd * w.kernel[1] + kh) * w.kernel[2]..][..w.kernel[2]];
                    for (kw, &kv) in krow.iter().enumerate() {
                        let (lo, hi) = ranges[kw];
                        if lo >= hi {
                            continue;
                        }
                        let start = (lo as i64 * s + kw as i64 * d - p) as usize;
                        if s == 1 {
                            for (o, &v) in orow[lo..hi].iter_mut().zip(&irow[start..start + (hi - lo)]) {
                                *o += v * kv;
                            }
                        } else {
                            for (j, o) in orow[lo..hi].iter_mut().enumerate() {
                                *o += irow[start + j * s as usize] * kv;
                            }
                        }
                    }
                }
            }
        }
    }
}

// --------------------------------------------------------- ConvTranspose

/// Transposed convolution: per (batch, group) `col = Wᵀ · X` on the GEMM,
/// then every column scattered into the output (col2im).
struct ConvTransposeKernel {
    geo: Geometry,
    group: usize,
    output_padding: Option<Vec<i64>>,
    output_shape: Option<Vec<i64>>,
    packed_w: Option<(Vec<usize>, Vec<PackedA>)>,
}

/// Per group, `Wᵀ` (rows: output channel × tap, columns: input channel).
fn pack_weights_t(wv: &[f32], wshape: &[usize], group: usize) -> Vec<PackedA> {
    let c = wshape[0];
    let mk: usize = wshape[1..].iter().product();
    let cg = c / group.max(1);
    (0..group).map(|g| PackedA::pack(&wv[g * cg * mk..], mk, cg, 1, mk)).collect()
}

/// Pad a per-axis list to 3 axes (leading unit axes).
fn to3<T: Copy>(v: &[T], fill: T) -> [T; 3] {
    let mut r = [fill; 3];
    r[3 - v.len()..].copy_from_slice(v);
    r
}

impl Kernel for ConvTransposeKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let wt = input(inputs, 1)?;
        if x.shape.len() < 3 || x.shape.len() > 5 || wt.shape.len() != x.shape.len() {
            bail!("ConvTranspose needs X of rank 3 to 5 and W of the same rank, got {:?} and {:?}", x.shape, wt.shape);
        }
        let (n, c) = (x.shape[0], x.shape[1]);
        let g = self.group;
        if wt.shape[0] != c || c % g != 0 {
            bail!("ConvTranspose channels do not match: X has {c}, W {:?} with group {g}", wt.shape);
        }
        let (mg, cg) = (wt.shape[1], c / g);
        let m = mg * g;
        let in_sp = &x.shape[2..];
        let nsp = in_sp.len();
        let kernel = wt.shape[2..].to_vec();
        if let Some(ks) = &self.geo.kernel
            && positive(ks, nsp, "kernel_shape").map_err(kerr)? != kernel
        {
            bail!("kernel_shape {ks:?} does not match W of shape {:?}", wt.shape);
        }
        let strides = axis_attr(&self.geo.strides, nsp, 1, "strides").map_err(kerr)?;
        let dilations = axis_attr(&self.geo.dilations, nsp, 1, "dilations").map_err(kerr)?;
        let (out_sp, pad_begin) = strata_ir::window::transpose_geometry(
            in_sp,
            &kernel,
            &strides,
            &dilations,
            &self.geo.pads,
            self.geo.auto_pad,
            &self.output_padding,
            &self.output_shape,
        )
        .map_err(kerr)?;
        let mut out_shape = vec![n, m];
        out_shape.extend_from_slice(&out_sp);
        ctx.check_numel(&out_shape)?;
        let bias = match inputs.get(2).copied().flatten() {
            Some(b) if b.shape == [m] => Some(b.as_f32()?),
            Some(b) => bail!("ConvTranspose bias must have shape [{m}], got {:?}", b.shape),
            None => None,
        };
        let taps: usize = kernel.iter().product();
        let in_size: usize = in_sp.iter().product();
        let out_size: usize = out_sp.iter().product();
        ctx.check_numel(&[mg * taps, in_size])?;
        let runtime_w;
        let packed: &[PackedA] = match &self.packed_w {
            Some((shape, p)) if *shape == wt.shape => p,
            _ => {
                runtime_w = pack_weights_t(wt.as_f32()?, &wt.shape, g);
                &runtime_w
            }
        };
        let (i3, o3, k3) = (to3(in_sp, 1), to3(&out_sp, 1), to3(&kernel, 1));
        let (s3, d3, p3) = (to3(&strides, 1), to3(&dilations, 1), to3(&pad_begin, 0));
        let xv = x.as_f32()?;
        let mut y = vec![0.0f32; n * m * out_size];
        let mut col = vec![0.0f32; mg * taps * in_size];
        for b in 0..n {
            for (gi, pa) in packed.iter().enumerate() {
                let xs = &xv[(b * c + gi * cg) * in_size..(b * c + (gi + 1) * cg) * in_size];
                gemm(ctx.pool, pa, &PackedB::pack(xs, cg, in_size, in_size, 1), &mut col, in_size);
                let ys = &mut y[(b * m + gi * mg) * out_size..(b * m + (gi + 1) * mg) * out_size];
                let col = &col;
                ctx.pool.for_each_chunk(ys, out_size.max(1), mg * taps * in_size, |oc, plane| {
                    for t in 0..taps {
                        let (kd, kh, kw) = (t / (k3[1] * k3[2]), (t / k3[2]) % k3[1], t % k3[2]);
                        let row = &col[(oc * taps + t) * in_size..(oc * taps + t + 1) * in_size];
                        let mut i = 0;
                        for id in 0..i3[0] {
                            let od = (id * s3[0] + kd * d3[0]) as i64 - p3[0];
                            for ih in 0..i3[1] {
                                let oh = (ih * s3[1] + kh * d3[1]) as i64 - p3[1];
                                let ok = od >= 0 && (od as usize) < o3[0] && oh >= 0 && (oh as usize) < o3[1];
                                for iw in 0..i3[2] {
                                    let ow = (iw * s3[2] + kw * d3[2]) as i64 - p3[2];
                                    if ok && ow >= 0 && (ow as usize) < o3[2] {
                                        plane[(od as usize * o3[1] + oh as usize) * o3[2] + ow as usize] += row[i];
                                    }
                                    i += 1;
                                }
                            }
                        }
                    }
                });
            }
        }
        if let Some(bias) = bias {
            for (i, plane) in y.chunks_exact_mut(out_size.max(1)).enumerate() {
                let bv = bias[i % m];
                plane.iter_mut().for_each(|v| *v += bv);
            }
        }
        Ok(vec![CpuTensor::f32(out_shape, y)])
    }
}

// --------------------------------------------------------------- Pooling

#[derive(Debug, Clone, Copy)]
enum PoolKind {
    Max,
    Avg { count_include_pad: bool },
}

struct PoolKernel {
    geo: Geometry,
    kind: PoolKind,
}

impl Kernel for PoolKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if x.shape.len() < 3 {
            bail!("pooling needs X of rank ≥ 3 (N, C, spatial...), got {:?}", x.shape);
        }
        let nsp = x.shape.len() - 2;
        let ks = self.geo.kernel.as_deref().unwrap_or(&[]);
        let kernel = positive(ks, nsp, "kernel_shape").map_err(kerr)?;
        ctx.check_numel(&kernel)?;
        let w = self.geo.window(&x.shape[2..], kernel)?;
        let mut out_shape = x.shape[..2].to_vec();
        out_shape.extend_from_slice(w.out_spatial());
        ctx.check_numel(&out_shape)?;
        let xv = x.as_f32()?;
        let (in_size, cols) = (w.in_size(), w.out_size());
        let mut y = vec![0.0f32; x.shape[0] * x.shape[1] * cols];
        let kind = self.kind;
        let work = y.len() * w.taps();
        ctx.pool.for_each_chunk(&mut y, cols, work, |i, out| {
            pool_plane(&w, kind, &xv[i * in_size..(i + 1) * in_size], out);
        });
        Ok(vec![CpuTensor::f32(out_shape, y)])
    }
}

fn pool_plane(w: &Win3, kind: PoolKind, x: &[f32], out: &mut [f32]) {
    let mut o = 0;
    for od in 0..w.out[0] {
        for oh in 0..w.out[1] {
            for ow in 0..w.out[2] {
                let (mut max, mut sum, mut taps, mut covered) = (f32::NEG_INFINITY, 0.0f32, 0usize, 0usize);
                let mut nan = false;
                for kd in 0..w.kernel[0] {
                    let d = w.pos(0, od, kd);
                    let d_pad = d >= -w.pad_begin[0] && d < w.input[0] as i64 + w.pad_end[0];
                    let d_in = d >= 0 && (d as usize) < w.input[0];
                    for kh in 0..w.kernel[1] {
                        let h = w.pos(1, oh, kh);
                        let h_pad = h >= -w.pad_begin[1] && h < w.input[1] as i64 + w.pad_end[1];
                        let h_in = h >= 0 && (h as usize) < w.input[1];
                        for kw in 0..w.kernel[2] {
                            let xw = w.pos(2, ow, kw);
                            let w_pad = xw >= -w.pad_begin[2] && xw < w.input[2] as i64 + w.pad_end[2];
                            if d_pad && h_pad && w_pad {
                                covered += 1;
                            }
                            if d_in && h_in && xw >= 0 && (xw as usize) < w.input[2] {
                                let v = x[(d as usize * w.input[1] + h as usize) * w.input[2] + xw as usize];
                                nan |= v.is_nan();
                                if v > max {
                                    max = v;
                                }
                                sum += v;
                                taps += 1;
                            }
                        }
                    }
                }
                out[o] = match kind {
                    PoolKind::Max if nan => f32::NAN,
                    PoolKind::Max => max,
                    PoolKind::Avg { count_include_pad } => {
                        let count = if count_include_pad { covered } else { taps };
                        sum / count as f32
                    }
                };
                o += 1;
            }
        }
    }
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
            for (j, o) in out.iter_mut().enumerate() {
                let p = &xv[(i * 64 + j) * plane..(i * 64 + j + 1) * plane];
                *o = if max {
                    let (mut m, mut nan) = (f32::NEG_INFINITY, false);
                    for &v in p {
                        m = if v > m { v } else { m };
                        nan |= v.is_nan();
                    }
                    if nan { f32::NAN } else { m }
                } else {
                    p.iter().sum::<f32>() / plane as f32
                };
            }
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
    let geo = |auto_pad: &AutoPad,
               ceil_mode: bool,
               kernel: Option<Vec<i64>>,
               s: &Option<Vec<i64>>,
               d: &Option<Vec<i64>>,
               p: &Option<Vec<i64>>| Geometry {
        auto_pad: *auto_pad,
        ceil_mode,
        kernel,
        strides: s.clone(),
        dilations: d.clone(),
        pads: p.clone(),
    };
    Ok(match op {
        N::MatMul {} => {
            f32_only()?;
            let packed_b = match info.constant(1) {
                Some(t) if t.shape().len() == 2 => {
                    let (k, n) = (t.shape()[0], t.shape()[1]);
                    Some((t.shape().to_vec(), PackedB::pack(&const_f32(t)?, k, n, n, 1)))
                }
                _ => None,
            };
            Box::new(MatMulKernel { packed_b })
        }
        N::Gemm { alpha, beta, transA, transB, .. } => {
            f32_only()?;
            let packed_b = match info.constant(1) {
                Some(t) => Some((t.shape().to_vec(), pack_gemm_b(&const_f32(t)?, t.shape(), *transB != 0)?)),
                None => None,
            };
            Box::new(GemmKernel { alpha: *alpha, beta: *beta, trans_a: *transA != 0, trans_b: *transB != 0, packed_b })
        }
        N::Conv { auto_pad, dilations, group, kernel_shape, pads, strides } => {
            f32_only()?;
            let group = usize::try_from(*group).ok().filter(|&g| g >= 1).ok_or_else(|| unsupported("group < 1"))?;
            let packed_w = match info.constant(1) {
                Some(t) if t.shape().len() >= 3 && group > 0 && t.shape()[0] % group == 0 => {
                    Some((t.shape().to_vec(), pack_weights(&const_f32(t)?, t.shape(), group)))
                }
                _ => None,
            };
            let geo = geo(auto_pad, false, kernel_shape.clone(), strides, dilations, pads);
            Box::new(ConvKernel { geo, group, packed_w })
        }
        N::ConvTranspose { auto_pad, dilations, group, kernel_shape, output_padding, output_shape, pads, strides } => {
            f32_only()?;
            let group = usize::try_from(*group).ok().filter(|&g| g >= 1).ok_or_else(|| unsupported("group < 1"))?;
            let packed_w = match info.constant(1) {
                Some(t) if t.shape().len() >= 3 && t.shape()[0] % group == 0 => {
                    Some((t.shape().to_vec(), pack_weights_t(&const_f32(t)?, t.shape(), group)))
                }
                _ => None,
            };
            let geo = geo(auto_pad, false, kernel_shape.clone(), strides, dilations, pads);
            Box::new(ConvTransposeKernel {
                geo,
                group,
                output_padding: output_padding.clone(),
                output_shape: output_shape.clone(),
                packed_w,
            })
        }
        N::Resize { .. } => return super::resize::build(op, info),
        N::MaxPool { auto_pad, ceil_mode, dilations, kernel_shape, pads, storage_order: _, strides } => {
            f32_only()?;
            if outputs > 1 {
                return Err(unsupported("MaxPool with the Indices output"));
            }
            let geo = geo(auto_pad, *ceil_mode, Some(kernel_shape.clone()), strides, dilations, pads);
            Box::new(PoolKernel { geo, kind: PoolKind::Max })
        }
        N::AveragePool { auto_pad, ceil_mode, count_include_pad, dilations, kernel_shape, pads, strides } => {
            f32_only()?;
            let geo = geo(auto_pad, *ceil_mode, Some(kernel_shape.clone()), strides, dilations, pads);
            Box::new(PoolKernel { geo, kind: PoolKind::Avg { count_include_pad: *count_include_pad } })
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
            if outputs > 1 || info.has_input(2) {
                return Err(unsupported("Dropout with a mask output or training_mode input"));
            }
            Box::new(super::elementwise::IdentityKernel)
        }
        // not supported here
        N::DeformConv { .. }
        | N::LpPool { .. }
        | N::GlobalLpPool { .. }
        | N::MaxUnpool { .. }
        | N::MaxRoiPool { .. }
        | N::RoiAlign { .. }
        | N::Col2Im { .. }
        | N::LpNormalization { .. }
        | N::MeanVarianceNormalization { .. }
        | N::LRN { .. }
        | N::Einsum { .. }
        | N::Det { .. }
        | N::GridSample { .. }
        | N::AffineGrid { .. }
        | N::Upsample { .. }
        | N::Attention { .. }
        | N::RotaryEmbedding { .. }
        | N::SwiGLU { .. }
        | N::CausalConvWithState { .. }
        | N::LinearAttention { .. }
        | N::FlexAttention { .. }
        | N::NonMaxSuppression { .. }
        | N::RNN { .. }
        | N::GRU { .. }
        | N::Adagrad { .. }
        | N::Adam { .. }
        | N::Momentum { .. } => return Err(unsupported(format!("no {} kernel", op.name()))),
    })
}
