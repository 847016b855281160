//! Depthwise convolution one channel plane at a time, in the plane's own
//! layout (part of the `nn` family, called by [`super::conv`]).
//!
//! The plane is copied into a zero-padded scratch plane (with a stride `s`
//! along rows, each padded row split into its `s` phases; the padding is
//! zeroed once per [`Plan`] and thread); then every output vector (`N`
//! consecutive outputs of one output row, or of a flat run over short
//! rows) is the sum over the taps, in kernel order, of `N` consecutive
//! padded-input values at a fixed offset per tap times the tap's weight.
//! Several vectors are computed together (their sums in registers, each
//! tap's weight loaded once for all of them), and no layout is transposed;
//! the bias and a Relu/Clip activation finish each vector as it is stored.
//! Each step is a fused multiply-add on x86-64 with FMA, as in the GEMM
//! (see [`crate::gemm::fused`]), else a multiply then an add.
//!
//! A tap that falls in the padding adds `0 · k`, which is `±0` for a
//! finite weight, and adding `±0` to a non-zero sum leaves it unchanged:
//! the sums are those of the kernels that skip such taps (only a sum that
//! is zero may differ in sign). Channels with a non-finite weight (where
//! `0 · k` is NaN) are left to those kernels.

use super::conv::Win3;
use super::conv_direct::{Phases, direct_offsets, phased_row};
use crate::gemm::Activation;
use crate::simd::Lanes;

/// Output vectors computed together: independent sums that hide the
/// latency of the additions.
const RUN: usize = 6;

/// Whether this path applies to `w` and suits it: no negative padding,
/// and output rows that fill at least one vector and three quarters of the
/// vectors they take, or short rows that suit a flat run ([`flat`]; other
/// short rows run faster with channels in the lanes, [`super::conv`]'s
/// blocked path).
pub(super) fn applies(w: &Win3) -> bool {
    let ow = w.out[2];
    w.pad_begin.iter().chain(&w.pad_end).all(|&p| p >= 0) && (fills(ow, 8) || fills(ow, lanes(ow)) || flat(w))
}

/// Whether short rows are computed as one flat run per plane (see
/// [`Plan`]): unit stride along the height, at least half the positions
/// of the padded rows are outputs, and the run fills three vectors
/// (smaller planes run faster with channels in the lanes).
fn flat(w: &Win3) -> bool {
    let ow = w.out[2];
    let rl = phased_row(w).1;
    !(fills(ow, 8) || fills(ow, lanes(ow))) && w.strides[1] == 1 && ow > 0 && 2 * ow >= rl && w.out[1] * rl >= 48
}

/// Whether rows of `ow` outputs fill at least one `n`-lane vector and
/// three quarters of the vectors they take.
fn fills(ow: usize, n: usize) -> bool {
    ow >= n && 4 * ow >= 3 * ow.div_ceil(n) * n
}

/// Lanes per vector for rows of `ow` outputs: sixteen where the CPU has
/// AVX-512 and the rows fill them, else eight.
fn lanes(ow: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && crate::gemm::fused() && fills(ow, 16) {
        return 16;
    }
    let _ = ow;
    8
}

/// Whether every weight of a channel is finite (see the module documentation).
pub(super) fn finite(k: &[f32]) -> bool {
    k.iter().all(|v| v.is_finite())
}

/// The padded planes of one depthwise window, laid out once for every
/// channel of a run (see [`Plan::plane`]).
///
/// Rows too short to fill vectors ([`flat`]) are computed as one flat run
/// over each padded plane: with unit stride along the height, output
/// `(oh, ow)` reads from `oh·rl + ow` (`rl` a stored row's length), so
/// consecutive positions `v = oh·rl + ow` of the run are the outputs,
/// plus `rl − ow_n` positions per row past its end, computed and dropped.
pub(super) struct Plan<'w> {
    w: &'w Win3,
    /// Each tap's offset from an output vector's base, in kernel order.
    offs: Vec<usize>,
    /// Padded height, stored row length, phase length.
    hp: usize,
    rl: usize,
    pl: usize,
    /// Values of the padded scratch plane (room for the last vector's reads).
    len: usize,
    flat: bool,
    /// Tells the scratch planes of one plan from another's.
    id: u64,
    phases: Phases,
}

impl<'w> Plan<'w> {
    /// The layout of `w`'s padded planes, for every channel of a run.
    pub(super) fn new(w: &'w Win3) -> Plan<'w> {
        let pad = |i: usize| (w.pad_begin[i].max(0) + w.pad_end[i].max(0)) as usize;
        let [dp, hp] = [0, 1].map(|i| w.input[i] + pad(i));
        let [od_n, oh_n, ow_n] = w.out;
        // A padded row is stored as its `s` phases (columns c ≡ 0, 1, … mod the
        // stride `s` along rows), one after another, `pl` values each: output
        // column `o` reads padded column `o·s + t` at `(t mod s)·pl + o + t div s`,
        // so the columns a vector reads are consecutive for any stride (the
        // direct convolution's layout, one channel).
        let (pl, rl) = phased_row(w);
        let offs = direct_offsets(w, 1);
        let flat = flat(w);
        let last_base = (od_n.saturating_sub(1) * w.strides[0] * hp + oh_n.saturating_sub(1) * w.strides[1]) * rl;
        // The last vector (at most 16 lanes) reads up to 16 values from its
        // base, which is at most the row's width (a flat run: the stored
        // row's) from the row's base, at every tap.
        let row_reads = if flat { rl } else { ow_n };
        let len =
            (last_base + row_reads.div_ceil(16) * 16 + offs.iter().max().copied().unwrap_or(0) + 16).max(dp * hp * rl);
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let phases = Phases::new(w);
        Plan { w, offs, hp, rl, pl, len, flat, id, phases }
    }

    /// One channel: `out[o] = act(Σ_taps x[o + tap] · k[tap] (+ bias))` for
    /// every output position of the window, `x` the channel's input plane and `k` its
    /// taps in kernel order (the activation applied to each vector just stored).
    pub(super) fn plane(&self, x: &[f32], k: &[f32], bias: Option<f32>, act: Activation, out: &mut [f32]) {
        let w = self.w;
        let [od_n, oh_n, ow_n] = w.out;
        let (hp, rl, pl) = (self.hp, self.rl, self.pl);
        if od_n * oh_n * ow_n == 0 || out.len() < od_n * oh_n * ow_n || k.len() < self.offs.len() {
            return;
        }
        let s = rl / pl;
        let [d, h, wd] = w.input;
        let (pd, ph, pw) = (w.pad_begin[0] as usize, w.pad_begin[1] as usize, w.pad_begin[2] as usize);
        SCRATCH.with_borrow_mut(|(xp, layout)| {
            // The padding is zeroed when the scratch plane takes a new
            // plan; the plan's channels overwrite only the values.
            if *layout != self.id {
                xp.clear();
                xp.resize(self.len, 0.0);
                *layout = self.id;
            }
            let plane = hp * rl;
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for z in 0..d {
                        for y in 0..h {
                            let row = (z + pd) * plane + (y + ph) * rl;
                            let src = &x[(z * h + y) * wd..][..wd];
                            if s == 1 {
                                copy_row(src, &mut xp[row + pw..row + pw + wd]);
                            } else {
                                self.phases.copy(src, &mut xp[row..row + rl]);
                            }
                        }
                    }
                },
            );
            let p = Padded { xp, offs: &self.offs, taps: &k[..self.offs.len()], hp, rl, bias, act };
            if self.flat {
                let run = (oh_n * rl).next_multiple_of(16);
                let mut virt = FLAT.with_borrow_mut(std::mem::take);
                virt.resize(run, 0.0);
                for (od, dst) in out.chunks_exact_mut(oh_n * ow_n).take(od_n).enumerate() {
                    flat_run(&p, od * w.strides[0] * hp * rl, &mut virt);
                    for (row, o) in virt.chunks_exact(rl).zip(dst.chunks_exact_mut(ow_n)) {
                        copy_row(&row[..ow_n], o);
                    }
                }
                FLAT.with_borrow_mut(|v| *v = virt);
                return;
            }
            #[cfg(target_arch = "x86_64")]
            {
                if lanes(ow_n) == 16 {
                    // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked by `lanes`).
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
}

/// `dst.copy_from_slice(src)` for short rows: eight values at a time, the
/// last eight ending at the row's end (rewriting some values with the same
/// ones), instead of a library call per row.
#[inline(always)]
fn copy_row(src: &[f32], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    if n < 8 {
        for (d, s) in dst[..n].iter_mut().zip(&src[..n]) {
            *d = *s;
        }
        return;
    }
    let mut i = 0;
    loop {
        let at = i.min(n - 8);
        let d: &mut [f32; 8] = (&mut dst[at..at + 8]).try_into().expect("8 values");
        *d = src[at..at + 8].try_into().expect("8 values");
        if at + 8 == n {
            break;
        }
        i += 8;
    }
}

/// The flat run of [`Plan::plane`] from padded position `base`: `virt[v]` is the
/// sum over the taps at `base + v` (then the bias), `virt.len()` a
/// multiple of 16.
fn flat_run(p: &Padded, base: usize, virt: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && crate::gemm::fused() {
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked just above).
            return unsafe { flat_avx512(p, base, virt) };
        }
        if crate::gemm::fused() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { flat_avx2(p, base, virt) };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return flat_lanes::<8, crate::simd::Simd8>(p, base, virt);
    #[allow(unreachable_code)]
    flat_lanes::<8, [f32; 8]>(p, base, virt)
}

/// [`flat_lanes`] on AVX-512 registers, with FMA.
///
/// # Safety
/// The CPU supports AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn flat_avx512(p: &Padded, base: usize, virt: &mut [f32]) {
    flat_lanes::<16, crate::simd::Avx16>(p, base, virt)
}

/// [`flat_lanes`] on AVX registers, with FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn flat_avx2(p: &Padded, base: usize, virt: &mut [f32]) {
    flat_lanes::<8, crate::simd::Avx8>(p, base, virt)
}

/// [`flat_run`] with `N`-lane vectors of type `L`, `RUN` vectors at a time
/// and the rest in groups of four, two and one.
#[inline(always)]
fn flat_lanes<const N: usize, L: Lanes<N>>(p: &Padded, base: usize, virt: &mut [f32]) {
    let vecs = virt.len() / N;
    let max_off = p.offs.iter().max().copied().unwrap_or(0);
    assert!(base + vecs * N + max_off <= p.xp.len(), "padded plane too short");
    let mut v = 0;
    while v + RUN <= vecs {
        flat_group::<N, L, RUN>(p, base, v, virt);
        v += RUN;
    }
    if v + 4 <= vecs {
        flat_group::<N, L, 4>(p, base, v, virt);
        v += 4;
    }
    if v + 2 <= vecs {
        flat_group::<N, L, 2>(p, base, v, virt);
        v += 2;
    }
    if v < vecs {
        flat_group::<N, L, 1>(p, base, v, virt);
    }
}

/// Vectors `first .. first + G` of a flat run (their reads inside the
/// padded plane: asserted by [`flat_lanes`]).
#[inline(always)]
fn flat_group<const N: usize, L: Lanes<N>, const G: usize>(p: &Padded, base: usize, first: usize, virt: &mut [f32]) {
    let bias_v = L::load(&[p.bias.unwrap_or(0.0); N]);
    let one = L::load(&[1.0; N]);
    // SAFETY: every read ends at or before base + vecs·N + max_off (asserted by the caller).
    let bases: [*const f32; G] = std::array::from_fn(|j| unsafe { p.xp.as_ptr().add(base + (first + j) * N) });
    let mut acc = [L::zero(); G];
    for (&kv, &off) in p.taps.iter().zip(p.offs) {
        let kv = L::load(&[kv; N]);
        for j in 0..G {
            let v = unsafe { &*(bases[j].add(off) as *const [f32; N]) };
            acc[j] = acc[j].fused_mul_add(L::load(v), kv);
        }
    }
    for (j, a) in acc.iter().enumerate() {
        // `sum + 1 · bias` is `sum + bias` exactly.
        let v = if p.bias.is_some() { a.mul_add(one, bias_v) } else { *a };
        let at = (first + j) * N;
        let dst: &mut [f32; N] = (&mut virt[at..at + N]).try_into().expect("N values");
        v.store(dst);
        p.act.apply(dst);
    }
}

thread_local! {
    /// Per-thread flat run of [`Plan::plane`].
    static FLAT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Per-thread padded plane and the plan its padding was zeroed for.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, u64)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// One padded channel plane: the values (with room for the last vector's
/// reads), each tap's offset from an output vector's base and its weight,
/// the padded height, the length of a stored row, the bias, the activation.
struct Padded<'a> {
    xp: &'a [f32],
    offs: &'a [usize],
    taps: &'a [f32],
    hp: usize,
    rl: usize,
    bias: Option<f32>,
    act: Activation,
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

/// The sums of [`Plan::plane`] with `N`-lane vectors of type `L`.
#[inline(always)]
fn plane_lanes<const N: usize, L: Lanes<N>>(w: &Win3, p: &Padded, out: &mut [f32]) {
    let [_, oh_n, ow_n] = w.out;
    let rows = w.out[0] * oh_n;
    let per_row = ow_n.div_ceil(N);
    let total = rows * per_row;
    let (hp, rl) = (p.hp, p.rl);
    let row_base = |od: usize, oh: usize| (od * w.strides[0] * hp + oh * w.strides[1]) * rl;
    let max_off = p.offs.iter().max().copied().unwrap_or(0);
    if total == 0 || ow_n < N {
        return;
    }
    // The last vector's reads end inside the padded plane.
    let last = row_base(w.out[0] - 1, oh_n - 1) + (per_row - 1) * N;
    assert!(last + max_off + N <= p.xp.len(), "padded plane too short");
    let bias_v = L::load(&[p.bias.unwrap_or(0.0); N]);
    let one = L::load(&[1.0; N]);
    // The output vectors in order, walked without divisions: (input base,
    // output position) of vector `col` of output row (od, oh).
    let (mut od, mut oh, mut col, mut out_row) = (0, 0, 0, 0);
    for first in (0..total).step_by(RUN) {
        // A short last run repeats its last vector (computed twice, stored twice).
        let mut jobs = [(0usize, 0usize); RUN];
        for j in 0..RUN {
            if first + j >= total {
                jobs[j] = jobs[j - 1];
                continue;
            }
            // A row's last vector ends at the row's end (overlapping the one
            // before: those outputs are computed twice, the same bits).
            let at = (col * N).min(ow_n - N);
            jobs[j] = (row_base(od, oh) + at, out_row + at);
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
            let (_, o) = jobs[j];
            // `sum + 1 · bias` is `sum + bias` exactly.
            let v = if p.bias.is_some() { acc[j].mul_add(one, bias_v) } else { acc[j] };
            let dst: &mut [f32; N] = (&mut out[o..o + N]).try_into().expect("N values");
            v.store(dst);
            p.act.apply(dst);
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
            // Short rows: flat runs over the padded plane.
            (vec![10, 10], vec![3, 3], vec![1, 1], vec![1, 1], vec![1, 1, 1, 1]),
            (vec![6, 6], vec![3, 3], vec![1, 1], vec![1, 1], vec![1, 1, 1, 1]),
            (vec![7, 7], vec![5, 5], vec![1, 1], vec![1, 1], vec![2, 2, 2, 2]),
            (vec![9, 13], vec![3, 3], vec![1, 2], vec![2, 1], vec![2, 1, 2, 1]),
            (vec![3, 6, 6], vec![3, 3, 3], vec![2, 1, 1], vec![1, 1, 1], vec![1, 1, 1, 1, 1, 1]),
            (vec![8, 5], vec![3, 3], vec![1, 1], vec![1, 1], vec![1, 1, 1, 1]),
            (vec![16, 3], vec![1, 1], vec![1, 1], vec![1, 1], vec![0, 0, 0, 0]),
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
                Plan::new(&w).plane(&x, &k, bias, Activation::None, &mut out);
                let want = naive(&w, &x, &k, bias);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&out), bits(&want), "{:?} {:?} bias {bias:?}", w.input, w.kernel);
            }
        }
        assert!(ran >= 13, "only {ran} cases took the padded path");
    }
}
