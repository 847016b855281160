//! Convolution and transposed convolution on f32 (part of the `nn`
//! family), and the 3-D window geometry they share with pooling.
//!
//! Convolution runs on the packed GEMM with im2col produced segment by
//! segment straight into the GEMM's panels (`gemm::Rhs::Fill`; pointwise
//! convolutions read the input in place, `gemm::Rhs::Rows`), bias added in the GEMM's
//! epilogue. Depthwise convolution runs directly, eight channels at a time
//! in channel-blocked layout. Spatial operators of rank 1–3 are all handled
//! as 3-D (missing axes have size 1).

use strata_ir::window::{FixedWindow, WindowAttrs, axis_attr, positive};

use super::conv_direct::{direct_fits, direct_offsets, run_direct};
use super::nn::kerr;
use super::{Ctx, Kernel, input, unsupported};
use crate::error::{Result, bail};
use crate::gemm::{Activation, Epilogue, NR, PackedA, PackedB, Rhs, gemm, gemm_with};
use crate::simd::Lanes;
use crate::tensor::CpuTensor;

// ------------------------------------------------------------------ Conv

/// A window over 3 spatial axes (rank-1 and rank-2 geometry padded with
/// leading unit axes, see [`FixedWindow`]), with the number of axes the
/// operator has.
pub(super) struct Win3 {
    geo: FixedWindow<3>,
    pub(super) rank: usize,
    /// The output's spatial sizes as the operator defines them (the axes
    /// of `geo` may be rotated, see [`Win3::innermost_nontrivial`]).
    spatial_out: [usize; 3],
}

impl std::ops::Deref for Win3 {
    type Target = FixedWindow<3>;
    fn deref(&self) -> &FixedWindow<3> {
        &self.geo
    }
}

impl Win3 {
    /// The geometry of `kernel` under the attributes `geo` over spatial
    /// input sizes `in_sp`, as 3-D.
    pub(super) fn new(geo: &WindowAttrs, in_sp: &[usize], kernel: Vec<usize>) -> Result<Win3> {
        let n = in_sp.len();
        if !(1..=3).contains(&n) {
            return Err(unsupported(format!("{n} spatial axes (this backend takes 1 to 3)")));
        }
        let w = geo.window(in_sp, kernel).map_err(kerr)?;
        let geo = w.fixed::<3>(in_sp).ok_or_else(|| unsupported("more than 3 spatial axes"))?;
        let mut r = Win3 { geo, rank: n, spatial_out: geo.out };
        r.innermost_nontrivial();
        Ok(r)
    }
}

impl Win3 {
    pub(super) fn out_size(&self) -> usize {
        self.out.iter().product()
    }
    pub(super) fn in_size(&self) -> usize {
        self.input.iter().product()
    }
    pub(super) fn taps(&self) -> usize {
        self.kernel.iter().product()
    }
    /// Input coordinate on axis `i` for output `o` and tap `k` (maybe outside).
    #[inline(always)]
    pub(super) fn pos(&self, i: usize, o: usize, k: usize) -> i64 {
        o as i64 * self.strides[i] as i64 - self.pad_begin[i] + k as i64 * self.dilations[i] as i64
    }
    pub(super) fn out_spatial(&self) -> &[usize] {
        &self.spatial_out[3 - self.rank..]
    }
    /// Move trailing axes where nothing happens (size 1 in and out, kernel
    /// 1, no padding) to the front, so the innermost axis is one the window
    /// slides along (e.g. a `k × 1` kernel over `H × 1`): kernels walk rows
    /// of the innermost axis, and a size-1 axis would make every row one
    /// element long. Moving size-1 axes leaves the memory layout unchanged.
    fn innermost_nontrivial(&mut self) {
        for _ in 0..2 {
            let g = &mut self.geo;
            let trivial = |i: usize| {
                g.input[i] == 1 && g.out[i] == 1 && g.kernel[i] == 1 && g.pad_begin[i] == 0 && g.pad_end[i] == 0
            };
            if !trivial(2) || (trivial(0) && trivial(1)) {
                return;
            }
            fn rot<T: Copy>(a: &mut [T; 3]) {
                *a = [a[2], a[0], a[1]];
            }
            rot(&mut g.input);
            rot(&mut g.out);
            rot(&mut g.kernel);
            rot(&mut g.strides);
            rot(&mut g.dilations);
            rot(&mut g.pad_begin);
            rot(&mut g.pad_end);
        }
    }
    pub(super) fn is_pointwise(&self) -> bool {
        self.kernel == [1; 3] && self.strides == [1; 3] && self.pad_begin == [0; 3] && self.pad_end == [0; 3]
    }
}

/// im2col for the columns `j0 .. j0 + width` (output positions), straight
/// into the GEMM's packed panels: row `ci · taps + tap`, one panel of `NR`
/// output positions after another. Output positions are walked as runs
/// along the innermost axis, so rows are copied in contiguous pieces.
pub(super) fn im2col_fill(w: &Win3, x: &[f32], channels: usize, j0: usize, width: usize, dst: &mut [f32]) {
    let (taps, in_size) = (w.taps(), w.in_size());
    let rows = channels * taps;
    if rows == 0 {
        return;
    }
    let (ow_n, iw_n) = (w.out[2], w.input[2] as i64);
    let (s, d, p) = (w.strides[2] as i64, w.dilations[2] as i64, w.pad_begin[2]);
    // Per tap: (kd, kh, kw) and the output columns [lo, hi) reading inside the row.
    let tap_at: Vec<([usize; 3], usize, usize)> = (0..taps)
        .map(|t| {
            let k3 = [t / (w.kernel[1] * w.kernel[2]), (t / w.kernel[2]) % w.kernel[1], t % w.kernel[2]];
            let off = k3[2] as i64 * d - p;
            let lo = if off >= 0 { 0 } else { ((-off + s - 1) / s).min(ow_n as i64) };
            let hi = if iw_n - 1 - off < 0 { 0 } else { ((iw_n - 1 - off) / s + 1).min(ow_n as i64) };
            (k3, lo as usize, (hi.max(lo)) as usize)
        })
        .collect();
    for (q, panel) in dst.chunks_exact_mut(rows * NR).take(width.div_ceil(NR)).enumerate() {
        let c0 = j0 + q * NR;
        let pw = NR.min(j0 + width - c0);
        // Runs of this panel's columns along the innermost axis: (lane, od, oh, ow0, len).
        let mut runs = [(0usize, 0usize, 0usize, 0usize, 0usize); NR];
        let mut nruns = 0;
        let mut lane = 0;
        while lane < pw {
            let j = c0 + lane;
            let (od, oh, ow) = (j / (w.out[1] * ow_n), (j / ow_n) % w.out[1], j % ow_n);
            let len = (ow_n - ow).min(pw - lane);
            runs[nruns] = (lane, od, oh, ow, len);
            nruns += 1;
            lane += len;
        }
        for ci in 0..channels {
            let xs = &x[ci * in_size..(ci + 1) * in_size];
            for (t, &(k3, lo, hi)) in tap_at.iter().enumerate() {
                let r = ci * taps + t;
                let row = &mut panel[r * NR..(r + 1) * NR];
                row[pw..].fill(0.0);
                for &(lane, od, oh, ow0, len) in &runs[..nruns] {
                    let dst = &mut row[lane..lane + len];
                    let id = w.pos(0, od, k3[0]);
                    let ih = w.pos(1, oh, k3[1]);
                    if id < 0 || id as usize >= w.input[0] || ih < 0 || ih as usize >= w.input[1] {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &xs[(id as usize * w.input[1] + ih as usize) * w.input[2]..][..w.input[2]];
                    // Inside: output columns [a, b) of this run.
                    let (a, b) = (lo.clamp(ow0, ow0 + len), hi.clamp(ow0, ow0 + len));
                    if s == 1 && len == NR && a == ow0 && b == ow0 + NR {
                        // A whole panel row from one input row (fixed size: no call to memcpy).
                        let start = (a as i64 + k3[2] as i64 * d - p) as usize;
                        if let (Ok(to), Ok(from)) =
                            (<&mut [f32; NR]>::try_from(&mut *dst), <&[f32; NR]>::try_from(&src[start..start + NR]))
                        {
                            *to = *from;
                            continue;
                        }
                    }
                    dst[..a - ow0].fill(0.0);
                    dst[b - ow0..].fill(0.0);
                    if a < b {
                        let start = (a as i64 * s + k3[2] as i64 * d - p) as usize;
                        let out = &mut dst[a - ow0..b - ow0];
                        if s == 1 {
                            out.copy_from_slice(&src[start..start + (b - a)]);
                        } else {
                            for (i, o) in out.iter_mut().enumerate() {
                                *o = src[start + i * s as usize];
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) struct ConvKernel {
    pub(super) geo: WindowAttrs,
    pub(super) group: usize,
    /// Weights packed per group, with the weight shape they came from.
    pub(super) packed_w: Option<(Vec<usize>, Vec<PackedA>)>,
    /// The constant weights transposed (`cg·taps × m/g` per group) for
    /// outputs of few positions ([`few_positions`]), packed on first use.
    pub(super) transposed_w: std::sync::OnceLock<Vec<PackedB>>,
}

/// Whether a convolution of `cols` output positions per image runs as the
/// transposed product: positions as the rows (`MR` at a time) and output
/// channels as the columns (`NR` at a time), instead of channels as rows
/// and positions as columns, where all but `cols` of each panel's `NR`
/// columns would be padding (silero-vad's encoder: 1 to 4 positions).
/// Each output is the same sum over the same products in the same order,
/// so the bits are those of the other paths.
pub(super) fn few_positions(cols: usize, channels: usize, depth: usize) -> bool {
    cols <= NR / 2 || (cols < 4 * NR && channels >= 2 * NR && depth >= 2 * NR)
}

/// `W` of shape `[m, cg, taps...]` transposed per group into `cg·taps × m/g`
/// right operands, subnormals flushed as for the packed left operands.
fn pack_transposed(wv: &[f32], wshape: &[usize], group: usize) -> Vec<PackedB> {
    let mut v = wv.to_vec();
    crate::gemm::flush_subnormals(&mut v);
    let m = wshape[0];
    let kk: usize = wshape[1..].iter().product();
    let mg = m / group.max(1);
    (0..group).map(|g| PackedB::pack(&v[g * mg * kk..], kk, mg, 1, kk)).collect()
}

pub(super) fn pack_weights(wv: &[f32], wshape: &[usize], group: usize) -> Vec<PackedA> {
    let m = wshape[0];
    let kk: usize = wshape[1..].iter().product();
    let mg = m / group.max(1);
    (0..group).map(|g| PackedA::pack(&wv[g * mg * kk..], mg, kk, kk, 1)).collect()
}

impl Kernel for ConvKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        self.run_with(ctx, inputs, Activation::None)
    }

    fn run_activated(
        &self,
        ctx: &Ctx,
        inputs: &[Option<&CpuTensor>],
        act: Activation,
    ) -> Option<Result<Vec<CpuTensor>>> {
        Some(self.run_with(ctx, inputs, act))
    }
}

impl ConvKernel {
    /// The convolution, `act` applied to each block of the output as it is finished.
    fn run_with(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>], act: Activation) -> Result<Vec<CpuTensor>> {
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
        if let Some(ks) = &self.geo.kernel_shape
            && positive(ks, kernel.len(), "kernel_shape").map_err(kerr)? != kernel
        {
            bail!("kernel_shape {ks:?} does not match W of shape {:?}", wt.shape);
        }
        let w = Win3::new(&self.geo, &x.shape[2..], kernel)?;
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
        let mut y = ctx.buffer(n * m * cols);
        if cg == 1 && mg == 1 && super::depthwise::applies(&w) && super::depthwise::finite(wv) {
            // Depthwise over rows that fill vectors: plane by plane, padded.
            let taps = w.taps();
            let plan = super::depthwise::Plan::new(&w);
            ctx.pool.for_each_chunk(&mut y, cols, n * m * cols * taps * 2, |i, out| {
                let ch = i % m;
                let xs = &xv[i * in_size..(i + 1) * in_size];
                plan.plane(xs, &wv[ch * taps..(ch + 1) * taps], bias.map(|b| b[ch]), act, out);
            });
        } else if cg == 1 && mg == 1 && blocked_depthwise(&w) {
            // Depthwise, eight channels at a time.
            let work = n * m * cols * w.taps() * 2;
            for (b, yb) in y.chunks_exact_mut(m * cols).enumerate() {
                let xb = &xv[b * m * in_size..(b + 1) * m * in_size];
                let cb = channel_block();
                ctx.pool.for_each_chunk(yb, cb * cols, work / n.max(1), |blk, out| {
                    depthwise_block(&w, xb, wv, bias, blk * cb, out);
                    act.apply(out);
                });
            }
        } else if cg == 1 && mg == 1 {
            // Depthwise: one kernel per channel, run directly.
            let taps = w.taps();
            ctx.pool.for_each_chunk(&mut y, cols, n * m * cols * taps * 2, |i, out| {
                let ch = i % m;
                let xs = &xv[i * in_size..(i + 1) * in_size];
                let ws = &wv[ch * taps..(ch + 1) * taps];
                crate::simd::vectorized(
                    #[inline(always)]
                    || {
                        depthwise(&w, xs, ws, out);
                        if let Some(bias) = bias {
                            out.iter_mut().for_each(|v| *v += bias[ch]);
                        }
                        act.apply(out);
                    },
                );
            });
        } else {
            let runtime_w;
            let packed: &[PackedA] = match &self.packed_w {
                Some((shape, p)) if *shape == wt.shape => p,
                _ => {
                    runtime_w = pack_weights(wv, &wt.shape, g);
                    &runtime_w
                }
            };
            if cols > 0
                && few_positions(cols, mg, rows)
                && self.packed_w.as_ref().is_some_and(|(shape, _)| *shape == wt.shape)
            {
                let packed = self.transposed_w.get_or_init(|| pack_transposed(wv, &wt.shape, g));
                // The im2col panel (rows × NR) read as positions × rows, then
                // the product (positions × mg) written back transposed.
                let mut panel = vec![0.0f32; rows * NR];
                let mut a = vec![0.0f32; cols * rows];
                let mut t = vec![0.0f32; cols * mg];
                for b in 0..n {
                    for (gi, pb) in packed.iter().enumerate() {
                        let xs = &xv[(b * c + gi * cg) * in_size..(b * c + (gi + 1) * cg) * in_size];
                        for j0 in (0..cols).step_by(NR) {
                            let width = NR.min(cols - j0);
                            im2col_fill(&w, xs, cg, j0, width, &mut panel);
                            for (j, row) in a.chunks_exact_mut(rows).skip(j0).take(width).enumerate() {
                                row.iter_mut().zip(panel.chunks_exact(NR)).for_each(|(v, p)| *v = p[j]);
                            }
                        }
                        crate::gemm::gemm_rows(
                            ctx.pool,
                            &a,
                            cols,
                            rows,
                            rows,
                            Rhs::Packed(pb),
                            &mut t,
                            mg,
                            &Epilogue::default(),
                        );
                        let ys = &mut y[(b * m + gi * mg) * cols..(b * m + (gi + 1) * mg) * cols];
                        for (co, yr) in ys.chunks_exact_mut(cols).enumerate() {
                            let bv = bias.map(|bv| bv[gi * mg + co]);
                            for (j, o) in yr.iter_mut().enumerate() {
                                *o = t[j * mg + co];
                                if let Some(bv) = bv {
                                    *o += bv;
                                }
                            }
                            act.apply(yr);
                        }
                    }
                }
                return Ok(vec![CpuTensor::f32(out_shape, y)]);
            }
            let pointwise = w.is_pointwise();
            let direct = !pointwise && direct_fits(w.out[2]) && crate::direct::available();
            let offsets = if direct { direct_offsets(&w, cg) } else { Vec::new() };
            for b in 0..n {
                for (gi, pa) in packed.iter().enumerate() {
                    let xs = &xv[(b * c + gi * cg) * in_size..(b * c + (gi + 1) * cg) * in_size];
                    if direct {
                        let ys = &mut y[(b * m + gi * mg) * cols..(b * m + (gi + 1) * mg) * cols];
                        let epi = Epilogue { row_bias: bias.map(|bv| &bv[gi * mg..(gi + 1) * mg]), activation: act };
                        run_direct(ctx.pool, &w, xs, cg, &offsets, pa, ys, &epi);
                        continue;
                    }
                    let fill = |j0: usize, width: usize, dst: &mut [f32]| im2col_fill(&w, xs, cg, j0, width, dst);
                    let rhs = if pointwise {
                        Rhs::Rows { data: &xs[..rows * cols], k: rows, n: cols, ldb: cols }
                    } else {
                        Rhs::Fill { k: rows, n: cols, fill: &fill }
                    };
                    let ys = &mut y[(b * m + gi * mg) * cols..(b * m + (gi + 1) * mg) * cols];
                    let epi = Epilogue { row_bias: bias.map(|bv| &bv[gi * mg..(gi + 1) * mg]), activation: act };
                    gemm_with(ctx.pool, pa, rhs, ys, cols, &epi);
                }
            }
        }
        Ok(vec![CpuTensor::f32(out_shape, y)])
    }
}

/// Channels per block of the channel-blocked depthwise convolution: one
/// vector register's lanes (sixteen with AVX-512, else eight). Every
/// channel's sums are the same whatever the block size.
fn channel_block() -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        return 16;
    }
    8
}

/// Whether a depthwise convolution runs channel-blocked ([`depthwise_block`]):
/// when rows are short or strided, so that per-row vectors would be short.
fn blocked_depthwise(w: &Win3) -> bool {
    w.out[2] < 64 || w.strides[2] != 1
}

/// Depthwise convolution of channels `c0 .. c0 + out.len() / out_size` of
/// one image (`x`: all its channels; `k`: all weights, `taps` per channel):
/// the channels are transposed into a channel-blocked copy (`CB` lanes per
/// position, `CB` from [`channel_block`]), so every output position is one
/// `CB`-lane sum over its taps, in kernel order, then the bias; the same
/// sums as [`depthwise`].
fn depthwise_block(w: &Win3, x: &[f32], k: &[f32], bias: Option<&[f32]>, c0: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if channel_block() == 16 {
        return depthwise_block_lanes::<16>(w, x, k, bias, c0, out);
    }
    depthwise_block_lanes::<8>(w, x, k, bias, c0, out)
}

/// [`depthwise_block`] with `CB` channels per block.
fn depthwise_block_lanes<const CB: usize>(
    w: &Win3,
    x: &[f32],
    k: &[f32],
    bias: Option<&[f32]>,
    c0: usize,
    out: &mut [f32],
) {
    let (in_size, out_size, taps) = (w.in_size(), w.out_size(), w.taps());
    let nch = out.len() / out_size.max(1);
    if nch == 0 {
        return;
    }
    DW_SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let (xs, ks) = &mut *scratch;
        // Reused per thread: lanes past `nch` keep stale values, which are
        // computed with but never stored.
        if xs.len() < in_size * CB {
            xs.resize(in_size * CB, 0.0);
        }
        if ks.len() < taps * CB {
            ks.resize(taps * CB, 0.0);
        }
        let xb = &mut xs.as_chunks_mut::<CB>().0[..in_size];
        let kb = &mut ks.as_chunks_mut::<CB>().0[..taps];
        for l in 0..nch {
            let plane = &x[(c0 + l) * in_size..(c0 + l + 1) * in_size];
            for (v, &s) in xb.iter_mut().zip(plane) {
                v[l] = s;
            }
        }
        for l in 0..nch {
            for (t, v) in kb.iter_mut().enumerate() {
                v[l] = k[(c0 + l) * taps + t];
            }
        }
        let blocked = Blocked { xb, kb, bias, c0, nch };
        #[cfg(target_arch = "x86_64")]
        {
            if CB == 16 {
                // SAFETY: 16 lanes are chosen only where the CPU has AVX-512F.
                return unsafe { depthwise_block_avx512(w, &blocked, out) };
            }
            if CB == 8 && std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { depthwise_block_avx2(w, &blocked, out) };
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if CB == 8 {
            return depthwise_blocked_wasm(w, &blocked, out);
        }
        #[allow(unreachable_code)]
        depthwise_blocked::<CB, [f32; CB]>(w, &blocked, out)
    })
}

thread_local! {
    /// Per-thread channel-blocked input and weights of [`depthwise_block`].
    static DW_SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The channel-blocked operands of one block of channels: input `xb` and
/// weights `kb` (`nch` channels from `c0` in their lanes), the bias.
struct Blocked<'a, const CB: usize> {
    xb: &'a [[f32; CB]],
    kb: &'a [[f32; CB]],
    bias: Option<&'a [f32]>,
    c0: usize,
    nch: usize,
}

#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
impl<const CB: usize> Blocked<'_, CB> {
    /// The same operands typed as `N` lanes per position (the kernels
    /// monomorphised for one lane count); the caller's `CB` equals `N`.
    fn relaned<const N: usize>(&self) -> Blocked<'_, N> {
        debug_assert_eq!(CB, N);
        Blocked {
            xb: self.xb.as_flattened().as_chunks::<N>().0,
            kb: self.kb.as_flattened().as_chunks::<N>().0,
            bias: self.bias,
            c0: self.c0,
            nch: self.nch,
        }
    }
}

/// [`depthwise_blocked`] on simd128 (eight lanes only).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn depthwise_blocked_wasm<const CB: usize>(w: &Win3, b: &Blocked<CB>, out: &mut [f32]) {
    let b8 = b.relaned::<8>();
    depthwise_blocked::<8, crate::simd::Simd8>(w, &b8, out)
}

/// [`depthwise_blocked`] on AVX-512 registers (no FMA: the same bits).
///
/// # Safety
/// The CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn depthwise_block_avx512<const CB: usize>(w: &Win3, b: &Blocked<CB>, out: &mut [f32]) {
    let b16 = b.relaned::<16>();
    depthwise_blocked::<16, crate::simd::Avx16>(w, &b16, out)
}

/// [`depthwise_blocked`] on AVX registers (no FMA: the same bits).
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn depthwise_block_avx2<const CB: usize>(w: &Win3, b: &Blocked<CB>, out: &mut [f32]) {
    let b8 = b.relaned::<8>();
    depthwise_blocked::<8, crate::simd::Avx8>(w, &b8, out)
}

/// Every output position of the block as one `CB`-lane sum over its taps,
/// in kernel order, then the bias; the same sums as [`depthwise`].
#[inline(always)]
fn depthwise_blocked<const CB: usize, L: Lanes<CB>>(w: &Win3, b: &Blocked<CB>, out: &mut [f32]) {
    let Blocked { xb, kb, bias, c0, nch } = *b;
    let out_size = w.out_size();
    let mut bb = [0.0f32; CB];
    if let Some(bias) = bias {
        bb[..nch].copy_from_slice(&bias[c0..c0 + nch]);
    }
    // Valid tap range on one axis for output coordinate `o`.
    let range = |axis: usize, o: usize| -> (usize, usize) {
        let (mut lo, mut hi) = (w.kernel[axis], 0);
        for kk in 0..w.kernel[axis] {
            let i = w.pos(axis, o, kk);
            if i >= 0 && (i as usize) < w.input[axis] {
                lo = lo.min(kk);
                hi = kk + 1;
            }
        }
        (lo, hi.max(lo))
    };
    let kw_range: Vec<(usize, usize)> = (0..w.out[2]).map(|ow| range(2, ow)).collect();
    let full_kw = (0, w.kernel[2]);
    let mut opos = 0;
    for od in 0..w.out[0] {
        let (kd0, kd1) = range(0, od);
        for oh in 0..w.out[1] {
            let (kh0, kh1) = range(1, oh);
            let mut ow = 0;
            while ow < w.out[2] {
                // Runs of columns whose every tap is inside the row load each
                // tap's weights once for all of them, their sums in registers
                // (eight sums hide the latency of the additions); edge columns
                // go one by one. Each sum adds its taps in kernel order.
                let full = |n: usize| ow + n <= w.out[2] && kw_range[ow..ow + n].iter().all(|r| *r == full_kw);
                let geo = DwRow { w, xb, kb, kd: (kd0, kd1), kh: (kh0, kh1), od, oh, ow };
                let cols = if full(8) {
                    dw_columns::<CB, L, 8>(&geo, full_kw, &bb, bias.is_some(), nch, out, out_size, opos)
                } else if full(4) {
                    dw_columns::<CB, L, 4>(&geo, full_kw, &bb, bias.is_some(), nch, out, out_size, opos)
                } else {
                    dw_columns::<CB, L, 1>(&geo, kw_range[ow], &bb, bias.is_some(), nch, out, out_size, opos)
                };
                opos += cols;
                ow += cols;
            }
        }
    }
}

/// Where a step of [`depthwise_blocked`] is: the channel-blocked input
/// and weights, the valid depth and height tap ranges, the output row and
/// its first column.
struct DwRow<'a, const CB: usize> {
    w: &'a Win3,
    xb: &'a [[f32; CB]],
    kb: &'a [[f32; CB]],
    kd: (usize, usize),
    kh: (usize, usize),
    od: usize,
    oh: usize,
    ow: usize,
}

/// `R` consecutive output columns from `g.ow` over the width taps `kw`
/// (all of them inside the row for every column), written to `out`
/// (channel-major, `out_size` per channel, from position `opos`); returns `R`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dw_columns<const CB: usize, L: Lanes<CB>, const R: usize>(
    g: &DwRow<CB>,
    kw: (usize, usize),
    bb: &[f32; CB],
    has_bias: bool,
    nch: usize,
    out: &mut [f32],
    out_size: usize,
    opos: usize,
) -> usize {
    let w = g.w;
    let (step, dil) = (w.strides[2], w.dilations[2]);
    let first = g.ow as i64 * step as i64 - w.pad_begin[2];
    let mut acc = [L::zero(); R];
    for kd in g.kd.0..g.kd.1 {
        let id = w.pos(0, g.od, kd) as usize;
        for kh in g.kh.0..g.kh.1 {
            let ih = w.pos(1, g.oh, kh) as usize;
            let row = &g.xb[(id * w.input[1] + ih) * w.input[2]..][..w.input[2]];
            let trow = &g.kb[(kd * w.kernel[1] + kh) * w.kernel[2]..][..w.kernel[2]];
            for (t, kv) in trow.iter().enumerate().take(kw.1).skip(kw.0) {
                let xs = &row[(first + (t * dil) as i64) as usize..][..(R - 1) * step + 1];
                let kv = L::load(kv);
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = a.mul_add(L::load(&xs[j * step]), kv);
                }
            }
        }
    }
    let mut sums = [0.0f32; CB];
    for (j, a) in acc.iter().enumerate() {
        a.store(&mut sums);
        for l in 0..nch {
            out[l * out_size + opos + j] = if has_bias { sums[l] + bb[l] } else { sums[l] };
        }
    }
    R
}

/// One channel of a depthwise convolution. Row by row: for each kernel tap
/// the range of output columns whose input lies inside the image is added
/// in one pass (contiguous, so it vectorises, when the stride is 1). Each
/// output still sums its taps in kernel order.
#[inline(always)]
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
pub(super) struct ConvTransposeKernel {
    pub(super) geo: WindowAttrs,
    pub(super) group: usize,
    pub(super) output_padding: Option<Vec<i64>>,
    pub(super) output_shape: Option<Vec<i64>>,
    pub(super) packed_w: Option<(Vec<usize>, Vec<PackedA>)>,
}

/// Per group, `Wᵀ` (rows: output channel × tap, columns: input channel).
pub(super) fn pack_weights_t(wv: &[f32], wshape: &[usize], group: usize) -> Vec<PackedA> {
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
        if let Some(ks) = &self.geo.kernel_shape
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Pool;
    use strata_ir::window::AutoPad;

    #[test]
    fn few_positions_give_the_bits_of_the_other_paths() {
        // (input length, kernel, stride, pad, channels, output channels, group, batch)
        let cases = [
            (4, 3, 1, 1, 129, 128, 1, 1),
            (4, 3, 2, 1, 128, 64, 1, 2),
            (2, 3, 2, 1, 64, 64, 1, 1),
            (1, 1, 1, 0, 32, 20, 1, 1),
            (8, 3, 1, 1, 12, 18, 3, 1),
            (9, 5, 1, 0, 7, 33, 1, 1),
            // More positions than one panel holds, many channels.
            (25, 1, 1, 0, 64, 96, 1, 1),
            (40, 3, 1, 1, 32, 64, 1, 2),
            (63, 3, 1, 1, 40, 70, 1, 1),
        ];
        for (len, k, s, p, c, m, g, n) in cases {
            let geo = WindowAttrs {
                auto_pad: AutoPad::NotSet,
                ceil_mode: false,
                kernel_shape: None,
                strides: Some(vec![s]),
                dilations: Some(vec![1]),
                pads: Some(vec![p, p]),
            };
            let x = CpuTensor::f32(
                vec![n, c, len],
                (0..n * c * len).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect(),
            );
            let wshape = vec![m, c / g, k];
            let wv: Vec<f32> = (0..m * c / g * k).map(|i| ((i * 53 % 89) as f32 - 44.0) / 23.0).collect();
            let wt = CpuTensor::f32(wshape.clone(), wv.clone());
            let bias = CpuTensor::f32(vec![m], (0..m).map(|i| i as f32 * 0.1 - 1.0).collect());
            let with_packed = ConvKernel {
                geo: geo.clone(),
                group: g,
                packed_w: Some((wshape.clone(), pack_weights(&wv, &wshape, g))),
                transposed_w: Default::default(),
            };
            // Without constant weights the few-positions path is not taken.
            let plain = ConvKernel { geo, group: g, packed_w: None, transposed_w: Default::default() };
            let cols = (len + 2 * p as usize - k) / s as usize + 1;
            assert!(few_positions(cols, m / g, c / g * k));
            for threads in [1, 2] {
                let pool = Pool::new(threads);
                let ctx = Ctx { pool: &pool, max_elements: usize::MAX, spare: None };
                let args = [Some(&x), Some(&wt), Some(&bias)];
                let got = with_packed.run(&ctx, &args).expect("few positions");
                let want = plain.run(&ctx, &args).expect("im2col");
                assert!(with_packed.transposed_w.get().is_some(), "case {len} {k} {s} took the transposed path");
                let bits = |t: &CpuTensor| t.as_f32().expect("f32").iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(got[0].shape, want[0].shape);
                assert_eq!(bits(&got[0]), bits(&want[0]), "length {len}, kernel {k}, stride {s}, {threads} threads");
            }
        }
    }
}
