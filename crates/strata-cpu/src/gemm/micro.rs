//! The register-block micro-kernels of [`super`]: portable, AVX2 + FMA,
//! AVX-512 (several panels at a time) and wasm simd128, and the
//! dispatchers that pick one by ISA and row count. Every variant sums each
//! element of `C` over `k` in order (fused on x86-64), so they give the
//! bits the module documentation promises.

#[cfg(target_arch = "x86_64")]
use super::Activation;
use super::{AView, Isa, MR, NR};

/// The epilogue finished in registers before a tile's last store: a
/// per-row bias (`bias[r]` for the tile's row `r`, none when null), then an
/// activation; the same operations as [`super::Epilogue::apply`], so the
/// same bits.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Finish {
    pub(crate) bias: *const f32,
    pub(crate) act: Activation,
}

#[cfg(target_arch = "x86_64")]
impl Finish {
    /// Nothing to finish (not the last pass over `k`, or no epilogue).
    pub(crate) const NONE: Finish = Finish { bias: std::ptr::null(), act: Activation::None };

    /// Row `r`'s vector `x` finished.
    ///
    /// # Safety
    /// AVX-512F is present; `bias` (when not null) holds row `r`.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn avx512(self, r: usize, x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        // SAFETY: the caller vouches for AVX-512F and the bias row.
        unsafe {
            let x = if self.bias.is_null() { x } else { _mm512_add_ps(x, _mm512_set1_ps(*self.bias.add(r))) };
            // Compares that are false for NaN, then selects: NaN passes.
            match self.act {
                Activation::None => x,
                Activation::Relu => {
                    let zero = _mm512_setzero_ps();
                    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero), x, zero)
                }
                Activation::Clip { lo, hi } => {
                    let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
                    let t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, lo), x, lo);
                    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(t, hi), t, hi)
                }
            }
        }
    }
}

/// `c[r·ldc + j] (+)= Σ_kk a[kk·MR + r] · b[kk·NR + j]` for `r < R` rows and
/// all `NR` columns, in order over `kk`; `load` continues sums already in `c`.
///
/// # Safety
/// `a` holds `kc·MR` values, `b` holds `kc·NR`, and `c` is valid for rows
/// `0..R` of `NR` values at stride `ldc`.
#[inline(always)]
unsafe fn micro_portable<const R: usize, const FMA: bool>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    let mut acc = [[0.0f32; NR]; R];
    if load {
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: row r of c is valid for NR values (caller).
            row.copy_from_slice(unsafe { std::slice::from_raw_parts(c.add(r * ldc), NR) });
        }
    }
    // SAFETY: a and b hold kc panels' steps (caller).
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, kc * MR), std::slice::from_raw_parts(b, kc * NR)) };
    for (av, bv) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for r in 0..R {
            for j in 0..NR {
                acc[r][j] = if FMA { av[r].mul_add(bv[j], acc[r][j]) } else { acc[r][j] + av[r] * bv[j] };
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), NR) }.copy_from_slice(row);
    }
}

/// `V` adjacent panels at once on AVX-512 (`panel.0` values apart, their
/// steps `panel.1` apart): `R` rows × `16·V` columns.
///
/// # Safety
/// As [`micro_portable`] for each panel, with `c` rows holding `16·V`
/// values, on a CPU with AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_avx512_wide<const R: usize, const PACKED: bool, const V: usize>(
    kc: usize,
    a: *const f32,
    rs: usize,
    ks: usize,
    b: *const f32,
    (panel, brs): (usize, usize),
    c: *mut f32,
    ldc: usize,
    load: bool,
    fin: Finish,
) {
    let (rs, ks) = if PACKED { (1, MR) } else { (rs, ks) };
    // SAFETY: step kk's 16 values of panel v are at b + v·panel + kk·brs.
    unsafe {
        avx512_rows::<R, V>(
            kc,
            a,
            rs,
            ks,
            #[inline(always)]
            |kk| std::array::from_fn(|v| b.add(v * panel + kk * brs)),
            std::array::from_fn(|v| c.add(16 * v)),
            [u16::MAX; V],
            ldc,
            load,
            fin,
        )
    }
}

/// `c[v][r·ldc + j] (+)= Σ_kk a[kk·ks + r·rs] · b(kk)[v][j]` for `R ≤ 6` rows and
/// `V` vectors of 16 columns (the lanes of `masks[v]` loaded and stored)
/// with AVX-512 and FMA (packed panels: `rs = 1, ks = MR`), in order over
/// `kk`, where `b_at(kk)` gives where step `kk`'s `V` vectors are (packed
/// panels for the GEMM, runs or pieces of lines of inputs for the direct
/// convolution): `R·V` accumulator registers, one broadcast of `a` and `V`
/// loads of `b` per step. The same operations per element as
/// [`avx2_rows`], so the same bits; `fin` finishes each vector before its
/// store. Inlined only into functions compiled for AVX-512F and FMA.
///
/// # Safety
/// AVX-512F and FMA are present; `a` holds the `kc` steps of `R` rows; all pointers
/// of `b_at(kk)` are readable for 16 values for `kk < kc`; each `c[v]`
/// holds rows `0..R` at stride `ldc` of the lanes its mask names.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx512_rows<const R: usize, const V: usize>(
    kc: usize,
    a: *const f32,
    rs: usize,
    ks: usize,
    b_at: impl Fn(usize) -> [*const f32; V],
    c: [*mut f32; V],
    masks: [u16; V],
    ldc: usize,
    load: bool,
    fin: Finish,
) {
    use std::arch::x86_64::*;
    // SAFETY: all pointer offsets stay within the ranges the caller vouches for.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; MR];
        if load {
            for r in 0..R {
                for v in 0..V {
                    acc[r][v] = _mm512_maskz_loadu_ps(masks[v], c[v].add(r * ldc));
                }
            }
        }
        let mut ap = a;
        for kk in 0..kc {
            let ps = b_at(kk);
            let mut bv = [_mm512_setzero_ps(); V];
            for v in 0..V {
                bv[v] = _mm512_loadu_ps(ps[v]);
            }
            for r in 0..R {
                let av = _mm512_set1_ps(*ap.add(r * rs));
                for v in 0..V {
                    acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
                }
            }
            ap = ap.add(ks);
        }
        for r in 0..R {
            for v in 0..V {
                _mm512_mask_storeu_ps(c[v].add(r * ldc), masks[v], fin.avx512(r, acc[r][v]));
            }
        }
    }
}

/// The AVX2 + FMA micro-kernel on the packed panel.
///
/// # Safety
/// As [`micro_portable`], on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_avx2<const R: usize, const PACKED: bool>(
    kc: usize,
    a: *const f32,
    rs: usize,
    ks: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    let (rs, ks) = if PACKED { (1, MR) } else { (rs, ks) };
    // SAFETY: step kk's 16 values of the packed panel are at b + kk·NR.
    unsafe { avx2_rows::<R>(kc, a, rs, ks, |kk| b.add(kk * NR), c, ldc, load) }
}

/// `c[r·ldc + j] (+)= Σ_kk a[kk·ks + r·rs] · b_at(kk)[j]` for `R ≤ 6` rows and
/// 16 columns with AVX2 and FMA (packed panels: `rs = 1, ks = MR`), in order over `kk` (the GEMM passes its
/// packed panel, the direct convolution its offset table): `2·R`
/// accumulator registers, one broadcast of `a` and two loads of `b` per
/// step. Inlined only into functions compiled for AVX2 and FMA.
///
/// # Safety
/// AVX2 and FMA are present; `a` holds the `kc` steps of `R` rows; `b_at(kk) .. + 16`
/// is readable for `kk < kc`; `c` rows `0..R` hold 16 values at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx2_rows<const R: usize>(
    kc: usize,
    a: *const f32,
    rs: usize,
    ks: usize,
    b_at: impl Fn(usize) -> *const f32,
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY: all pointer offsets stay within the ranges the caller vouches for.
    unsafe {
        let mut lo = [_mm256_setzero_ps(); MR];
        let mut hi = [_mm256_setzero_ps(); MR];
        if load {
            for r in 0..R {
                lo[r] = _mm256_loadu_ps(c.add(r * ldc));
                hi[r] = _mm256_loadu_ps(c.add(r * ldc + 8));
            }
        }
        let mut ap = a;
        for kk in 0..kc {
            let bp = b_at(kk);
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for r in 0..R {
                let av = _mm256_broadcast_ss(&*ap.add(r * rs));
                lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
            }
            ap = ap.add(ks);
        }
        for r in 0..R {
            _mm256_storeu_ps(c.add(r * ldc), lo[r]);
            _mm256_storeu_ps(c.add(r * ldc + 8), hi[r]);
        }
    }
}

/// The wasm simd128 micro-kernel: [`micro_portable`] without FMA (the same
/// bits), `R ≤ 6` rows × 16 columns.
///
/// # Safety
/// As [`micro_portable`].
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
unsafe fn micro_simd128<const R: usize>(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, load: bool) {
    // SAFETY: step kk's 16 values of the packed panel are at b + kk·NR.
    unsafe { simd128_rows::<R>(kc, a, |kk| b.add(kk * NR), c, ldc, load) }
}

/// `c[r·ldc + j] (+)= Σ_kk a[kk·MR + r] · b_at(kk)[j]` for `R ≤ 6` rows and
/// 16 columns on wasm simd128, a multiply then an add per step, in order
/// over `kk` (the GEMM passes its packed panel, the direct convolution its
/// offset table). Rows are taken three at a time, so the accumulators (4
/// vectors a row), the broadcasts of `a` and one vector of `b` fit the 16
/// vector registers engines map wasm onto; `b` is read once per row group,
/// from L1.
///
/// # Safety
/// `a` holds `kc·MR` values; `b_at(kk) .. + 16` is readable for `kk < kc`;
/// `c` rows `0..R` hold 16 values at stride `ldc`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub(crate) unsafe fn simd128_rows<const R: usize>(
    kc: usize,
    a: *const f32,
    b_at: impl Fn(usize) -> *const f32 + Copy,
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    let mut r0 = 0;
    while r0 < R {
        // SAFETY: rows r0.. of a's panel and of c are within the caller's ranges.
        unsafe {
            match R - r0 {
                1 => simd128_group::<1>(kc, a.add(r0), b_at, c.add(r0 * ldc), ldc, load),
                2 => simd128_group::<2>(kc, a.add(r0), b_at, c.add(r0 * ldc), ldc, load),
                _ => simd128_group::<3>(kc, a.add(r0), b_at, c.add(r0 * ldc), ldc, load),
            }
        }
        r0 += 3;
    }
}

/// `G ≤ 3` rows of [`simd128_rows`]; `a` points at the first of them inside
/// an `MR`-row panel.
///
/// # Safety
/// As [`simd128_rows`] for rows `0..G`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
unsafe fn simd128_group<const G: usize>(
    kc: usize,
    a: *const f32,
    b_at: impl Fn(usize) -> *const f32,
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    use core::arch::wasm32::*;
    // SAFETY: all pointer offsets stay within the ranges the caller vouches for.
    unsafe {
        let mut acc = [[f32x4_splat(0.0); 4]; G];
        if load {
            for (r, row) in acc.iter_mut().enumerate() {
                for (q, v) in row.iter_mut().enumerate() {
                    *v = v128_load(c.add(r * ldc + 4 * q) as *const v128);
                }
            }
        }
        let mut ap = a;
        for kk in 0..kc {
            let bp = b_at(kk);
            // The G broadcasts of `a` first, then `b` one vector at a time:
            // 4·G accumulators + G + 1 live vectors (16 for G = 3).
            let mut av = [f32x4_splat(0.0); G];
            for (r, v) in av.iter_mut().enumerate() {
                *v = v128_load32_splat(ap.add(r) as *const u32);
            }
            for q in 0..4 {
                let bq = v128_load(bp.add(4 * q) as *const v128);
                for r in 0..G {
                    acc[r][q] = f32x4_add(acc[r][q], f32x4_mul(av[r], bq));
                }
            }
            ap = ap.add(MR);
        }
        for (r, row) in acc.iter().enumerate() {
            for (q, v) in row.iter().enumerate() {
                v128_store(c.add(r * ldc + 4 * q) as *mut v128, *v);
            }
        }
    }
}

/// One register block: `rows ≤ MR` rows and `NR` columns of `c`.
///
/// # Safety
/// As [`micro_portable`] with `R = rows`, `ap` the steps of view `a` (packed
/// unless the ISA is AVX2 or AVX-512); the CPU supports `isa`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn micro(
    isa: Isa,
    rows: usize,
    kc: usize,
    a: AView,
    ap: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    macro_rules! by_rows {
        ($f:ident $(, $extra:tt)?) => {
            match rows {
                1 => $f::<1 $(, $extra)?>(kc, ap, b, c, ldc, load),
                2 => $f::<2 $(, $extra)?>(kc, ap, b, c, ldc, load),
                3 => $f::<3 $(, $extra)?>(kc, ap, b, c, ldc, load),
                4 => $f::<4 $(, $extra)?>(kc, ap, b, c, ldc, load),
                5 => $f::<5 $(, $extra)?>(kc, ap, b, c, ldc, load),
                _ => $f::<6 $(, $extra)?>(kc, ap, b, c, ldc, load),
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    macro_rules! strided {
        ($f:ident) => {{
            let (rs, ks) = (a.rs, a.ks);
            match (rows, a.is_packed()) {
                (1, true) => $f::<1, true>(kc, ap, rs, ks, b, c, ldc, load),
                (2, true) => $f::<2, true>(kc, ap, rs, ks, b, c, ldc, load),
                (3, true) => $f::<3, true>(kc, ap, rs, ks, b, c, ldc, load),
                (4, true) => $f::<4, true>(kc, ap, rs, ks, b, c, ldc, load),
                (5, true) => $f::<5, true>(kc, ap, rs, ks, b, c, ldc, load),
                (_, true) => $f::<6, true>(kc, ap, rs, ks, b, c, ldc, load),
                (1, false) => $f::<1, false>(kc, ap, rs, ks, b, c, ldc, load),
                (2, false) => $f::<2, false>(kc, ap, rs, ks, b, c, ldc, load),
                (3, false) => $f::<3, false>(kc, ap, rs, ks, b, c, ldc, load),
                (4, false) => $f::<4, false>(kc, ap, rs, ks, b, c, ldc, load),
                (5, false) => $f::<5, false>(kc, ap, rs, ks, b, c, ldc, load),
                (_, false) => $f::<6, false>(kc, ap, rs, ks, b, c, ldc, load),
            }
        }};
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = a;
    // SAFETY: forwarded contract; the ISA was detected at run time.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => strided!(micro_avx2),
            // (With AVX-512, a lone 16-column panel takes one 16-lane
            // register per row: the same fused steps, so the same bits.)
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => micro_wide::<1>(rows, kc, a, ap, b, (0, NR), c, ldc, load, Finish::NONE),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => by_rows!(micro_simd128),
            Isa::Generic => by_rows!(micro_portable, false),
        }
    }
}

/// [`micro`] over `V` adjacent full panels, `16·V` columns, each vector
/// finished by `fin` before its store; `panel` is (values from one panel
/// to the next, values from one step to the next): `(k·NR, NR)` for packed
/// panels, `(NR, ldb)` for a row-major right operand read in place.
///
/// # Safety
/// As [`micro_avx512_wide`] with `R = rows`; only called with `Isa::Avx512`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn micro_wide<const V: usize>(
    rows: usize,
    kc: usize,
    a: AView,
    ap: *const f32,
    b: *const f32,
    panel: (usize, usize),
    c: *mut f32,
    ldc: usize,
    load: bool,
    fin: Finish,
) {
    let (rs, ks) = (a.rs, a.ks);
    macro_rules! go {
        ($r:literal, $p:literal) => {
            micro_avx512_wide::<$r, $p, V>(kc, ap, rs, ks, b, panel, c, ldc, load, fin)
        };
    }
    // SAFETY: forwarded contract; the caller checked the ISA.
    unsafe {
        match (rows, a.is_packed()) {
            (1, true) => go!(1, true),
            (2, true) => go!(2, true),
            (3, true) => go!(3, true),
            (4, true) => go!(4, true),
            (5, true) => go!(5, true),
            (_, true) => go!(6, true),
            (1, false) => go!(1, false),
            (2, false) => go!(2, false),
            (3, false) => go!(3, false),
            (4, false) => go!(4, false),
            (5, false) => go!(5, false),
            (_, false) => go!(6, false),
        }
    }
}
