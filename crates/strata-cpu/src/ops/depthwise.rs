//! Depthwise convolution one channel plane at a time, in the plane's own
//! layout (part of the `nn` family, called by [`super::conv`]).
//!
//! The plane is copied once into a zero-padded scratch plane (with a
//! stride `s` along rows, each padded row split into its `s` phases); then
//! every output vector (`N` consecutive outputs of one output row) is the
//! sum over the taps, in kernel order, of `N` consecutive padded-input
//! values at a fixed offset per tap times the tap's weight. Several vectors are
//! computed together (their sums in registers, each tap's weight loaded
//! once for all of them), and no layout is transposed. Each step is a
//! fused multiply-add on x86-64 with FMA, as in the GEMM (see
//! [`crate::gemm::fused`]), else a multiply then an add.
//!
//! A tap that falls in the padding adds `0 · k`, which is `±0` for a
//! finite weight, and adding `±0` to a non-zero sum leaves it unchanged:
//! the sums are those of the kernels that skip such taps (only a sum that
//! is zero may differ in sign). Channels with a non-finite weight (where
//! `0 · k` is NaN) are left to those kernels.

use super::conv::Win3;
use crate::simd::Lanes;

/// Output vectors computed together: independent sums that hide the
/// latency of the additions.
const RUN: usize = 6;

/// Whether this path applies to `w` and suits it: no negative padding,
/// and output rows that fill at least one vector and three quarters of the
/// vectors they take (shorter rows run faster with channels in the lanes,
/// [`super::conv`]'s blocked path).
pub(super) fn applies(w: &Win3) -> bool {
    let n = lanes();
    let ow = w.out[2];
    w.pad_begin.iter().chain(&w.pad_end).all(|&p| p >= 0) && ow >= n && 4 * ow >= 3 * ow.div_ceil(n) * n
}

/// Lanes of this CPU's vectors here.
fn lanes() -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && crate::gemm::fused() {
        return 16;
    }
    8
}

/// Whether every weight of a channel is finite (see the module documentation).
pub(super) fn finite(k: &[f32]) -> bool {
    k.iter().all(|v| v.is_finite())
}

/// One channel: `out[o] = Σ_taps x[o + tap] · k[tap]` (then `+ bias`) for
/// every output position of `w`, `x` the channel's input plane and `k` its
/// taps in kernel order.
pub(super) fn plane(w: &Win3, x: &[f32], k: &[f32], bias: Option<f32>, out: &mut [f32]) {
    let pad = |i: usize| (w.pad_begin[i] as usize, w.pad_end[i] as usize);
    let [dp, hp, wp] = [0, 1, 2].map(|i| w.input[i] + pad(i).0 + pad(i).1);
    let [od_n, oh_n, ow_n] = w.out;
    let rows = od_n * oh_n;
    if rows * ow_n == 0 || out.len() < rows * ow_n {
        return;
    }
    // A padded row is stored as its `s` phases (columns c ≡ 0, 1, … mod the
    // stride `s` along rows), one after another, `pl` values each: output
    // column `o` reads padded column `o·s + t` at `(t mod s)·pl + o + t div s`,
    // so the columns a vector reads are consecutive for any stride.
    let s = w.strides[2];
    let pl = wp.div_ceil(s);
    let rl = s * pl;
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let (xp, offs) = &mut *scratch;
        offs.clear();
        for kd in 0..w.kernel[0] {
            for kh in 0..w.kernel[1] {
                for kw in 0..w.kernel[2] {
                    let t = kw * w.dilations[2];
                    offs.push((kd * w.dilations[0] * hp + kh * w.dilations[1]) * rl + (t % s) * pl + t / s);
                }
            }
        }
        let last_base = ((od_n - 1) * w.strides[0] * hp + (oh_n - 1) * w.strides[1]) * rl;
        // The last vector (at most 16 lanes) reads up to 16 values from its
        // base, which is at most the row's width from the row's base, at every tap.
        let len = (last_base + ow_n.div_ceil(16) * 16 + offs.iter().max().copied().unwrap_or(0) + 16).max(dp * hp * rl);
        // Only the padding is zeroed: every other value is copied over.
        xp.resize(len, 0.0);
        let [d, h, wd] = w.input;
        let (pd, ph, pw) = (pad(0).0, pad(1).0, pad(2).0);
        let plane = hp * rl;
        xp[..pd * plane + ph * rl].fill(0.0);
        for z in 0..d {
            let zp = (z + pd) * plane;
            if z > 0 {
                // The bottom padding of the previous depth slice and the top of this one.
                xp[zp - (hp - ph - h) * rl..zp + ph * rl].fill(0.0);
            }
            for y in 0..h {
                let row = zp + (y + ph) * rl;
                let src = &x[(z * h + y) * wd..][..wd];
                if s == 1 {
                    xp[row..row + pw].fill(0.0);
                    xp[row + pw..row + pw + wd].copy_from_slice(src);
                    xp[row + pw + wd..row + wp].fill(0.0);
                } else {
                    let dst = &mut xp[row..row + rl];
                    for (ph, phase) in dst.chunks_exact_mut(pl).enumerate() {
                        for (j, d) in phase.iter_mut().enumerate() {
                            // Padded column `ph + j·s`, input column that minus `pw`.
                            let c = (ph + j * s).wrapping_sub(pw);
                            *d = if c < wd { src[c] } else { 0.0 };
                        }
                    }
                }
            }
        }
        xp[(d + pd) * plane - (hp - ph - h) * rl..].fill(0.0);
        let p = Padded { xp, offs, taps: &k[..offs.len()], hp, rl, bias };
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") && crate::gemm::fused() {
                // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked just above).
                return unsafe { plane_avx512(w, &p, out) };
            }
            if crate::gemm::fused() {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { plane_avx2(w, &p, out) };
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return plane_lanes::<8, crate::simd::Simd8>(w, &p, out);
        #[allow(unreachable_code)]
        plane_lanes::<8, [f32; 8]>(w, &p, out)
    })
}

thread_local! {
    /// Per-thread padded plane and tap offsets.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<usize>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// One padded channel plane: the values (with room for the last vector's
/// reads), each tap's offset from an output vector's base and its weight,
/// the padded height, the length of a stored row, the bias.
struct Padded<'a> {
    xp: &'a [f32],
    offs: &'a [usize],
    taps: &'a [f32],
    hp: usize,
    rl: usize,
    bias: Option<f32>,
}

/// [`plane_lanes`] on AVX-512 registers, with FMA.
///
/// # Safety
/// The CPU supports AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn plane_avx512(w: &Win3, p: &Padded, out: &mut [f32]) {
    plane_lanes::<16, crate::simd::Avx16>(w, p, out)
}

/// [`plane_lanes`] on AVX registers, with FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn plane_avx2(w: &Win3, p: &Padded, out: &mut [f32]) {
    plane_lanes::<8, crate::simd::Avx8>(w, p, out)
}

/// The sums of [`plane`] with `N`-lane vectors of type `L`.
#[inline(always)]
fn plane_lanes<const N: usize, L: Lanes<N>>(w: &Win3, p: &Padded, out: &mut [f32]) {
    let [_, oh_n, ow_n] = w.out;
    let rows = w.out[0] * oh_n;
    let per_row = ow_n.div_ceil(N);
    let total = rows * per_row;
    let (hp, rl) = (p.hp, p.rl);
    let row_base = |od: usize, oh: usize| (od * w.strides[0] * hp + oh * w.strides[1]) * rl;
    let max_off = p.offs.iter().max().copied().unwrap_or(0);
    if total == 0 {
        return;
    }
    // The last vector's reads end inside the padded plane.
    let last = row_base(w.out[0] - 1, oh_n - 1) + (per_row - 1) * N;
    assert!(last + max_off + N <= p.xp.len(), "padded plane too short");
    let bias_v = L::load(&[p.bias.unwrap_or(0.0); N]);
    let one = L::load(&[1.0; N]);
    // The output vectors in order, walked without divisions: (input base,
    // output position, valid lanes) of vector `col` of output row (od, oh).
    let (mut od, mut oh, mut col, mut out_row) = (0, 0, 0, 0);
    for first in (0..total).step_by(RUN) {
        // A short last run repeats its last vector (computed twice, stored twice).
        let mut jobs = [(0usize, 0usize, 0usize); RUN];
        for j in 0..RUN {
            if first + j >= total {
                jobs[j] = jobs[j - 1];
                continue;
            }
            jobs[j] = (row_base(od, oh) + col * N, out_row + col * N, N.min(ow_n - col * N));
            col += 1;
            if col == per_row {
                (col, oh, out_row) = (0, oh + 1, out_row + ow_n);
                if oh == oh_n {
                    (oh, od) = (0, od + 1);
                }
            }
        }
        // SAFETY (here and below): bases grow with the vector's index, so
        // every read ends at or before the last vector's base + max_off + N
        // (asserted).
        let bases: [*const f32; RUN] = std::array::from_fn(|j| unsafe { p.xp.as_ptr().add(jobs[j].0) });
        let mut acc = [L::zero(); RUN];
        for (&kv, &off) in p.taps.iter().zip(p.offs) {
            let kv = L::load(&[kv; N]);
            for j in 0..RUN {
                let v = unsafe { &*(bases[j].add(off) as *const [f32; N]) };
                acc[j] = acc[j].fused_mul_add(L::load(v), kv);
            }
        }
        for j in 0..RUN {
            let (_, o, valid) = jobs[j];
            // `sum + 1 · bias` is `sum + bias` exactly.
            let v = if p.bias.is_some() { acc[j].mul_add(one, bias_v) } else { acc[j] };
            if valid == N {
                let dst: &mut [f32; N] = (&mut out[o..o + N]).try_into().expect("N values");
                v.store(dst);
            } else {
                let mut tmp = [0.0f32; N];
                v.store(&mut tmp);
                out[o..o + valid].copy_from_slice(&tmp[..valid]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_ir::window::{AutoPad, WindowAttrs};

    /// Each output as the sum of its in-range taps in kernel order (one
    /// rounding per step where [`plane`] fuses), then the bias.
    fn naive(w: &Win3, x: &[f32], k: &[f32], bias: Option<f32>) -> Vec<f32> {
        let fused = cfg!(target_arch = "x86_64") && crate::gemm::fused();
        let mut out = Vec::new();
        for od in 0..w.out[0] {
            for oh in 0..w.out[1] {
                for ow in 0..w.out[2] {
                    let mut s = 0.0f32;
                    for (t, &kv) in k.iter().enumerate() {
                        let kk = [t / (w.kernel[1] * w.kernel[2]), (t / w.kernel[2]) % w.kernel[1], t % w.kernel[2]];
                        let i = [w.pos(0, od, kk[0]), w.pos(1, oh, kk[1]), w.pos(2, ow, kk[2])];
                        if (0..3).any(|a| i[a] < 0 || i[a] as usize >= w.input[a]) {
                            continue;
                        }
                        let xv = x[(i[0] as usize * w.input[1] + i[1] as usize) * w.input[2] + i[2] as usize];
                        s = if fused { xv.mul_add(kv, s) } else { s + xv * kv };
                    }
                    out.push(bias.map_or(s, |b| s + b));
                }
            }
        }
        out
    }

    #[test]
    fn padded_planes_give_the_sums_of_the_in_range_taps() {
        // (input spatial, kernel, strides, dilations, pads begin+end)
        type Case = (Vec<usize>, Vec<usize>, Vec<i64>, Vec<i64>, Vec<i64>);
        let cases: Vec<Case> = vec![
            (vec![12, 40], vec![5, 5], vec![1, 1], vec![1, 1], vec![2, 2, 2, 2]),
            (vec![9, 70], vec![3, 3], vec![2, 1], vec![1, 2], vec![1, 0, 1, 3]),
            (vec![5, 33], vec![1, 4], vec![1, 1], vec![1, 1], vec![0, 2, 0, 1]),
            (vec![100], vec![7], vec![1], vec![3], vec![9, 9]),
            (vec![9, 64], vec![3, 3], vec![2, 2], vec![1, 1], vec![1, 1, 1, 1]),
            (vec![6, 97], vec![3, 5], vec![1, 3], vec![1, 2], vec![0, 3, 1, 2]),
            (vec![3, 4, 48], vec![2, 3, 3], vec![1, 2, 1], vec![2, 1, 1], vec![1, 1, 1, 0, 1, 1]),
        ];
        let mut seed = 7u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        let mut ran = 0;
        for (sp, ks, st, dil, pads) in cases {
            let geo = WindowAttrs {
                auto_pad: AutoPad::NotSet,
                ceil_mode: false,
                kernel_shape: None,
                strides: Some(st),
                dilations: Some(dil),
                pads: Some(pads),
            };
            let w = Win3::new(&geo, &sp, ks).expect("window");
            let x: Vec<f32> = (0..w.in_size()).map(|_| rnd()).collect();
            let k: Vec<f32> = (0..w.taps()).map(|_| rnd()).collect();
            assert!(finite(&k));
            if !applies(&w) {
                continue;
            }
            ran += 1;
            for bias in [None, Some(0.375)] {
                // Stale values in the scratch plane from the last case must not leak.
                let mut out = vec![f32::NAN; w.out_size()];
                plane(&w, &x, &k, bias, &mut out);
                let want = naive(&w, &x, &k, bias);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&out), bits(&want), "{:?} {:?} bias {bias:?}", w.input, w.kernel);
            }
        }
        assert!(ran >= 6, "only {ran} cases took the padded path");
    }
}
