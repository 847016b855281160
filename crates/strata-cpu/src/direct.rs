//! Direct convolution on AVX2 with FMA and on wasm simd128: no im2col at
//! all.
//!
//! The input is copied once into a zero-padded buffer (with a stride `s`
//! along the innermost axis, each row stored as its `s` phases, so the
//! inputs of consecutive outputs are consecutive); then, for a run of
//! 16 consecutive outputs of one output row, the im2col column of reduction
//! index `k = ci · taps + tap` is 16 *consecutive* padded-input values at
//! `base(row) + offset[k]`. The micro-kernel reads them straight from the
//! padded input through the offset table (an indirect GEMM), with the
//! packed weights as the left operand. Each output is still the sum over
//! `k` in order with one FMA per step (on wasm, a multiply then an add, as
//! the wasm GEMM), exactly as the packed GEMM computes it, so the bits are
//! those of the im2col path.

// Elsewhere the direct path never runs (`available` is false).
#![cfg_attr(
    not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))),
    allow(dead_code, unused_imports)
)]

use crate::gemm::{Epilogue, MC, MR, NR, PackedA, tile};
use crate::pool::Pool;

/// The shape of one direct convolution (one image, one group).
pub(crate) struct Direct<'a> {
    /// Padded input: `channels × dp × hp × wp`, plus at least `NR` zeros
    /// after it (a partial run at the end of a row reads past its row).
    pub xp: &'a [f32],
    /// Offset of reduction index `k` from a run's base position.
    pub offsets: &'a [usize],
    /// Output sizes (depth, height, width) and strides along depth and
    /// height (the width stride is taken by the phased rows); the padded
    /// height `hp` and the stored length `wp` of a row.
    pub out: [usize; 3],
    pub stride: [usize; 2],
    pub hp: usize,
    pub wp: usize,
}

/// Whether the direct path runs on this CPU.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::gemm::fused()
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    {
        false
    }
}

#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    ldc: usize,
}
// SAFETY: items write disjoint regions of C; `conv` returns only after all.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `C = epilogue(A · im2col(x))` for `d` (see the module documentation):
/// `c` is `a.m` rows of `out` positions each, row stride `ldc`.
pub(crate) fn conv(pool: &Pool, a: &PackedA, d: &Direct, c: &mut [f32], ldc: usize, epi: &Epilogue) {
    let (m, k) = (a.m, a.k);
    let [od, oh, ow] = d.out;
    let n = od * oh * ow;
    if m == 0 || n == 0 {
        return;
    }
    assert!(available(), "direct convolution needs AVX2 and FMA, or simd128");
    assert!(d.offsets.len() == k && c.len() >= (m - 1) * ldc + n, "direct convolution operands");
    // Items: ranges of about 256 output positions (whole lines when lines
    // are short) and, when those are too few to share, blocks of rows.
    let cw = if ow >= 256 { 256 } else { ow * (256 / ow).max(1) };
    let col_items = n.div_ceil(cw);
    let row_blocks = if col_items >= 2 * pool.threads() { 1 } else { m.div_ceil(MC) };
    let rows_per = if row_blocks == 1 { m } else { MC };
    let out = Out { ptr: c.as_mut_ptr(), ldc };
    #[cfg(target_arch = "x86_64")]
    let wide = std::is_x86_feature_detected!("avx512f");
    pool.for_each_index(row_blocks * col_items, 2 * m * n * k.max(1), |i| {
        let (rb, ci) = (i / col_items, i % col_items);
        let (r0, r1) = (rb * rows_per, ((rb + 1) * rows_per).min(m));
        let (j0, j1) = (ci * cw, ((ci + 1) * cw).min(n));
        // SAFETY: AVX2 and FMA are present (checked above); the item's
        // region (rows r0..r1, columns j0..j1) is its own.
        // (On wasm, simd128 is part of this build.)
        #[cfg(target_arch = "x86_64")]
        unsafe {
            if wide { item_avx512(a, d, r0, r1, j0, j1, out, epi) } else { item(a, d, r0, r1, j0, j1, out, epi) }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        unsafe {
            item(a, d, r0, r1, j0, j1, out, epi)
        }
        #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
        let _ = (r0, r1, j0, j1, out, epi);
    });
}

/// Rows `r0 .. r1` (`r0` a multiple of `MR`) × output positions `j0 .. j1`.
///
/// Compiled for AVX2 and FMA on x86-64 (the closures inside inherit them,
/// so the micro-kernel's intrinsics inline); simd128 is a build-wide feature.
///
/// # Safety
/// The micro-kernel's instructions are present; C holds those rows and columns.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
#[allow(clippy::too_many_arguments)]
unsafe fn item(a: &PackedA, d: &Direct, r0: usize, r1: usize, j0: usize, j1: usize, out: Out, epi: &Epilogue) {
    // SAFETY: forwarded.
    unsafe { item_body::<false>(a, d, r0, r1, j0, j1, out, epi) }
}

/// [`item`] compiled for AVX-512: runs of 32 outputs where a line has them.
///
/// # Safety
/// As [`item`], on a CPU with AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn item_avx512(a: &PackedA, d: &Direct, r0: usize, r1: usize, j0: usize, j1: usize, out: Out, epi: &Epilogue) {
    // SAFETY: forwarded.
    unsafe { item_body::<true>(a, d, r0, r1, j0, j1, out, epi) }
}

/// The body of [`item`]; `WIDE` (AVX-512 only) takes runs of 32 outputs
/// with [`crate::gemm::avx512_rows`] where the line and the item have them.
///
/// # Safety
/// As [`item`]; with `WIDE`, AVX-512F is present.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn item_body<const WIDE: bool>(
    a: &PackedA,
    d: &Direct,
    r0: usize,
    r1: usize,
    j0: usize,
    j1: usize,
    out: Out,
    epi: &Epilogue,
) {
    let k = a.k;
    let [_, oh, ow] = d.out;
    let mut edge = [0.0f32; MR * NR];
    let depth = crate::gemm::pass_depth(k);
    for k0 in (0..k).step_by(depth) {
        let kc = depth.min(k - k0);
        let offs = &d.offsets[k0..k0 + kc];
        for m0 in (r0 / MR..r1.div_ceil(MR)).step_by(MC / MR) {
            let m1 = (m0 + MC / MR).min(r1.div_ceil(MR));
            let mut j = j0;
            while j < j1 {
                let (line, x0) = (j / ow, j % ow);
                let (z, y) = (line / oh, line % oh);
                let b = d.xp[(z * d.stride[0] * d.hp + y * d.stride[1]) * d.wp + x0..].as_ptr();
                #[cfg(target_arch = "x86_64")]
                if WIDE && ow - x0 >= 2 * NR && j1 - j >= 2 * NR {
                    // Runs of 64 outputs where the line has them, else 32.
                    let v4 = ow - x0 >= 4 * NR && j1 - j >= 4 * NR;
                    for pa in m0..m1 {
                        let ap = a.panel(pa)[k0 * MR..].as_ptr();
                        let rows = MR.min(r1 - pa * MR);
                        // SAFETY: as below; the run's 32 or 64 inputs per step lie
                        // inside its line of the padded input (the line has that
                        // many more outputs).
                        unsafe {
                            let cp = out.ptr.add(pa * MR * out.ldc + j);
                            if v4 {
                                micro_wide::<4>(rows, kc, ap, b, offs, cp, out.ldc, k0 > 0);
                            } else {
                                micro_wide::<2>(rows, kc, ap, b, offs, cp, out.ldc, k0 > 0);
                            }
                        }
                    }
                    j += if v4 { 4 * NR } else { 2 * NR };
                    continue;
                }
                #[cfg(target_arch = "x86_64")]
                if WIDE && j + NR.min(ow - x0) < j1 {
                    // Lines too short for those runs (or their ends): two
                    // pieces of up to 16 outputs, this one and the next
                    // (maybe on the next line), lanes past a piece masked.
                    let cols = NR.min(ow - x0);
                    let j2 = j + cols;
                    let (line2, x2) = (j2 / ow, j2 % ow);
                    let (z2, y2) = (line2 / oh, line2 % oh);
                    let b2 = d.xp[(z2 * d.stride[0] * d.hp + y2 * d.stride[1]) * d.wp + x2..].as_ptr();
                    let cols2 = NR.min(ow - x2).min(j1 - j2);
                    let mask = |n: usize| ((1u32 << n) - 1) as u16;
                    for pa in m0..m1 {
                        let ap = a.panel(pa)[k0 * MR..].as_ptr();
                        let rows = MR.min(r1 - pa * MR);
                        // SAFETY: each piece reads 16 inputs per step from its
                        // line of the padded input (a short piece reads past
                        // its line into the next, or the buffer's NR-value
                        // tail, as the 16-wide tiles below do) and writes
                        // only its own outputs, inside this item.
                        unsafe {
                            let row = out.ptr.add(pa * MR * out.ldc);
                            micro_pieces::<2>(
                                rows,
                                kc,
                                ap,
                                [b, b2],
                                offs,
                                [row.add(j), row.add(j2)],
                                [mask(cols), mask(cols2)],
                                out.ldc,
                                k0 > 0,
                            );
                        }
                    }
                    j = j2 + cols2;
                    continue;
                }
                let cols = NR.min(ow - x0).min(j1 - j);
                for pa in m0..m1 {
                    let ap = a.panel(pa)[k0 * MR..].as_ptr();
                    let rows = MR.min(r1 - pa * MR);
                    // SAFETY: offsets stay inside the padded input plus its
                    // NR-value tail; C's region is this item's.
                    unsafe {
                        let cp = out.ptr.add(pa * MR * out.ldc + j);
                        // (Marked so the micro-kernel inlines into the
                        // caller compiled for AVX2 or AVX-512.)
                        tile(
                            rows,
                            cols,
                            cp,
                            out.ldc,
                            k0 > 0,
                            &mut edge,
                            #[inline(always)]
                            |c, ldc| micro(rows, kc, ap, b, offs, c, ldc, k0 > 0),
                        );
                    }
                }
                j += cols;
            }
        }
    }
    if k == 0 {
        for r in r0..r1 {
            // SAFETY: as above.
            unsafe { std::slice::from_raw_parts_mut(out.ptr.add(r * out.ldc + j0), j1 - j0) }.fill(0.0);
        }
    }
    if !epi.is_identity() {
        for r in r0..r1 {
            // SAFETY: as above.
            let row = unsafe { std::slice::from_raw_parts_mut(out.ptr.add(r * out.ldc + j0), j1 - j0) };
            epi.apply(r, row);
        }
    }
}

/// Dispatch on the number of rows (1 to 6).
///
/// # Safety
/// As [`micro_rows`].
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn micro(
    rows: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    offs: &[usize],
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    // SAFETY: forwarded.
    unsafe {
        match rows {
            1 => micro_rows::<1>(kc, a, b, offs, c, ldc, load),
            2 => micro_rows::<2>(kc, a, b, offs, c, ldc, load),
            3 => micro_rows::<3>(kc, a, b, offs, c, ldc, load),
            4 => micro_rows::<4>(kc, a, b, offs, c, ldc, load),
            5 => micro_rows::<5>(kc, a, b, offs, c, ldc, load),
            _ => micro_rows::<6>(kc, a, b, offs, c, ldc, load),
        }
    }
}

/// Dispatch on the number of rows for `16·V` columns on AVX-512.
///
/// # Safety
/// As [`micro_rows`] for `16·V` columns (`b + offs[kk] .. + 16·V`
/// readable), on a CPU with AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_wide<const V: usize>(
    rows: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    offs: &[usize],
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    // SAFETY: forwarded (16·V consecutive inputs and outputs).
    unsafe {
        micro_pieces::<V>(
            rows,
            kc,
            a,
            std::array::from_fn(|v| b.add(NR * v)),
            offs,
            std::array::from_fn(|v| c.add(NR * v)),
            [u16::MAX; V],
            ldc,
            load,
        )
    }
}

/// `V` pieces of up to 16 outputs on AVX-512, anywhere: piece `v` reads
/// step `kk`'s inputs at `b[v] + offs[kk]` and adds into the lanes of
/// `masks[v]` at `c[v]` (rows at stride `ldc`).
///
/// # Safety
/// As [`micro_wide`] for each piece: 16 values readable at every
/// `b[v] + offs[kk]`, the masked lanes of `c[v]`'s rows writable.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_pieces<const V: usize>(
    rows: usize,
    kc: usize,
    a: *const f32,
    b: [*const f32; V],
    offs: &[usize],
    c: [*mut f32; V],
    masks: [u16; V],
    ldc: usize,
    load: bool,
) {
    let offs = &offs[..kc];
    macro_rules! rows {
        ($r:literal) => {
            // SAFETY: forwarded; the kernel asks for kk < kc = offs.len().
            unsafe {
                crate::gemm::avx512_rows::<$r, V>(
                    kc,
                    a,
                    1,
                    MR,
                    #[inline(always)]
                    |kk| {
                        let o = *offs.get_unchecked(kk);
                        std::array::from_fn(|v| b[v].add(o))
                    },
                    c,
                    masks,
                    ldc,
                    load,
                    crate::gemm::Finish::NONE,
                )
            }
        };
    }
    match rows {
        1 => rows!(1),
        2 => rows!(2),
        3 => rows!(3),
        4 => rows!(4),
        5 => rows!(5),
        _ => rows!(6),
    }
}

/// `R` rows × 16 columns: step `kk` adds `a[kk·MR + r] · b[offs[kk] + j]`
/// (the GEMM's AVX2 kernel reading step `kk`'s values through the table).
///
/// # Safety
/// AVX2 and FMA; `a` holds `kc·MR` values; `b + offs[kk] .. + 16` is
/// readable for every `kk < kc`; `c` rows `0..R` hold 16 values at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn micro_rows<const R: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    offs: &[usize],
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    let offs = &offs[..kc];
    // SAFETY: forwarded; the kernel asks for kk < kc = offs.len().
    unsafe { crate::gemm::avx2_rows::<R>(kc, a, 1, MR, |kk| b.add(*offs.get_unchecked(kk)), c, ldc, load) }
}

/// The simd128 variant of [`micro_rows`]: the GEMM's simd128 kernel
/// reading step `kk`'s 16 values at `b + offs[kk]`.
///
/// # Safety
/// As [`micro_rows`], without the AVX2 requirement.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
unsafe fn micro_rows<const R: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    offs: &[usize],
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    let offs = &offs[..kc];
    // SAFETY: forwarded; the kernel asks for kk < kc = offs.len(), and every
    // b + offs[kk] .. + 16 is readable (caller).
    unsafe { crate::gemm::simd128_rows::<R>(kc, a, |kk| b.add(*offs.get_unchecked(kk)), c, ldc, load) }
}
