//! Single-precision matrix multiplication on packed operands.
//!
//! `C = A · B` with `A` packed in panels of [`MR`] rows and `B` in panels of
//! [`NR`] columns (each panel `K` deep, interleaved so the micro-kernel reads
//! both sequentially). The micro-kernel keeps up to `MR × NR` elements of `C`
//! in registers (on x86-64 with AVX2 and FMA: twelve 8-lane registers,
//! written with intrinsics; with AVX-512, two panels at a time, `MR × 2·NR`
//! in twelve 16-lane registers; elsewhere plain Rust that the compiler
//! vectorises: NEON on arm64, simd128 in browsers).
//! Every element of `C` is the sum over `k = 0, 1, …, K-1` in that order, on
//! every target and for every thread count and work split (passes over `k`
//! carry the partial sums through `C` itself), so results are
//! bit-identical across thread counts. With FMA every step is rounded once,
//! without it twice ([`fused`]).
//!
//! The right operand is either packed once ([`Rhs::Packed`], e.g. constant
//! weights) or produced segment by segment by a fill function
//! ([`Rhs::Fill`], e.g. convolution's im2col): a segment is a few panels of
//! columns sized to stay in the L2 cache, filled into a per-thread buffer,
//! so the whole expanded matrix never exists. Work is split into (row
//! block, column segment) items run on the pool; each item writes its own
//! region of `C` and applies the [`Epilogue`] (bias, activation) to it while
//! it is still in cache.

use std::cell::RefCell;

use crate::pool::Pool;

/// Rows of a packed `A` panel (and of the register block).
pub const MR: usize = 6;
/// Columns of a packed `B` panel (and of the register block).
pub const NR: usize = 16;
/// Depth of one pass over `k`: an A panel (`MR × KC`) and a B panel
/// (`KC × NR`) stay in the L1 cache while a block is computed.
pub(crate) const KC: usize = 256;
/// The depth of each pass over `k`: at most [`KC`], the passes as even as
/// possible (a depth of 257 is two passes of 129 and 128, not 256 and a
/// pass of one step that reloads C for a single multiply-add). Passes only
/// carry partial sums through C, so the bits do not depend on this.
pub(crate) fn pass_depth(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC).max(1)).max(1)
}

/// Rows of A per block of one pass over `k` (multiple of `MR`): an
/// `MC × KC` slice of A (120 KiB) stays in the L2 cache.
pub(crate) const MC: usize = 20 * MR;
/// Bytes of one filled right-hand segment (mostly in the L2 cache; one
/// `KC`-deep slice of it is what a pass reads).
const SEGMENT_BYTES: usize = 256 * 1024;
/// Fewest columns in a filled segment, so A is read once per few panels.
const MIN_SEGMENT: usize = 4 * NR;
/// Most columns in one segment.
const MAX_SEGMENT: usize = 512;
/// Rows of a row block when rows are split between items (multiple of `MR`).
const ROW_BLOCK: usize = 8 * MR;

/// The left operand, packed: panel `p` holds rows `p·MR .. p·MR+MR` as
/// `K` groups of `MR` values (rows past `m` are zero).
#[derive(Debug, Clone, PartialEq)]
pub struct PackedA {
    pub m: usize,
    pub k: usize,
    data: Vec<f32>,
}

impl PackedA {
    /// Pack `m × k` values where element `(i, kk)` is `src[i·rs + kk·cs]`.
    pub fn pack(src: &[f32], m: usize, k: usize, rs: usize, cs: usize) -> PackedA {
        let panels = m.div_ceil(MR);
        let mut data = vec![0.0; panels * MR * k];
        for p in 0..panels {
            let dst = &mut data[p * MR * k..(p + 1) * MR * k];
            for r in 0..MR.min(m - p * MR) {
                let i = p * MR + r;
                if cs == 1 {
                    for (kk, &v) in src[i * rs..i * rs + k].iter().enumerate() {
                        dst[kk * MR + r] = v;
                    }
                } else {
                    for kk in 0..k {
                        dst[kk * MR + r] = src[i * rs + kk * cs];
                    }
                }
            }
        }
        PackedA { m, k, data }
    }
    // (Read by the direct convolution, which only x86-64 and wasm simd128 build.)
    #[cfg_attr(
        not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))),
        allow(dead_code)
    )]
    pub(crate) fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * MR * self.k..(p + 1) * MR * self.k]
    }
}

/// Flush subnormal values (magnitude below `f32::MIN_POSITIVE`, 2⁻¹²⁶) to
/// zero of the same sign. Used on constant weights when they are prepared
/// for the GEMM: on x86 every multiply-add that meets a subnormal operand
/// or produces a subnormal result takes a microcode assist (about a
/// hundred cycles instead of half of one), and trained weights hold them
/// (PP-OCRv4's squeeze-and-excitation convolutions: a fifth of their
/// weights, which made a 120×480 product run at 3 GFLOP/s). A subnormal
/// weight's product with any activation is below 2⁻¹²⁶·|x|, far inside the
/// error bound of a sum (which grows with the sum of the magnitudes of its
/// products), so results stay within every tolerance the backends keep.
pub(crate) fn flush_subnormals(v: &mut [f32]) {
    for x in v.iter_mut() {
        if x.is_subnormal() {
            *x = 0.0f32.copysign(*x);
        }
    }
}

/// How the micro-kernels read the left operand: element `(i, kk)` at
/// `data[(i / MR)·panel + (i % MR)·rs + kk·ks]`. Packed panels have
/// `rs = 1, ks = MR`; a row-major matrix read in place (AVX2 and AVX-512
/// kernels only) has `panel = MR·lda, rs = lda, ks = 1`.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct AView<'a> {
    data: &'a [f32],
    m: usize,
    k: usize,
    panel: usize,
    rs: usize,
    ks: usize,
}

impl<'a> AView<'a> {
    fn packed(a: &'a PackedA) -> AView<'a> {
        AView { data: &a.data, m: a.m, k: a.k, panel: MR * a.k, rs: 1, ks: MR }
    }
    #[cfg(target_arch = "x86_64")]
    fn is_packed(&self) -> bool {
        self.rs == 1 && self.ks == MR
    }
    /// Step `k0` of panel `p`.
    fn at(&self, p: usize, k0: usize) -> *const f32 {
        self.data[p * self.panel + k0 * self.ks..].as_ptr()
    }
}

/// The right operand, packed: panel `p` holds columns `p·NR .. p·NR+NR` as
/// `K` groups of `NR` values (columns past `n` are zero).
#[derive(Debug, Clone, PartialEq)]
pub struct PackedB {
    pub k: usize,
    pub n: usize,
    data: Vec<f32>,
}

/// Fill the panels of columns `j0 .. j0 + width` of a `k × n` matrix whose
/// element `(kk, j)` is `src[kk·rs + j·cs]` into `dst` (panel after panel,
/// each `k × NR`, lanes past the last column zero).
pub fn fill_strided(src: &[f32], k: usize, rs: usize, cs: usize, j0: usize, width: usize, dst: &mut [f32]) {
    if k == 0 {
        return;
    }
    let panels = width.div_ceil(NR);
    if cs == 1 {
        // Each source row read once, in order; its values go to every
        // panel (fixed-size copies: vector moves, not a call per row).
        for kk in 0..k {
            let row = &src[kk * rs + j0..kk * rs + j0 + width];
            for q in 0..panels {
                let d: &mut [f32; NR] = (&mut dst[(q * k + kk) * NR..][..NR]).try_into().expect("NR lanes");
                match row[q * NR..].first_chunk::<NR>() {
                    Some(full) => *d = *full,
                    None => {
                        let w = width - q * NR;
                        d[..w].copy_from_slice(&row[q * NR..]);
                        d[w..].fill(0.0);
                    }
                }
            }
        }
        return;
    }
    for (q, panel) in dst.chunks_exact_mut(k * NR).take(panels).enumerate() {
        let c0 = j0 + q * NR;
        let w = NR.min(j0 + width - c0);
        for (kk, row) in panel.chunks_exact_mut(NR).enumerate() {
            for (c, x) in row[..w].iter_mut().enumerate() {
                *x = src[kk * rs + (c0 + c) * cs];
            }
            row[w..].fill(0.0);
        }
    }
}

impl PackedB {
    /// Pack `k × n` values where element `(kk, j)` is `src[kk·rs + j·cs]`.
    pub fn pack(src: &[f32], k: usize, n: usize, rs: usize, cs: usize) -> PackedB {
        let mut data = vec![0.0; n.div_ceil(NR) * NR * k];
        if k > 0 {
            fill_strided(src, k, rs, cs, 0, n, &mut data);
        }
        PackedB { k, n, data }
    }
}

/// Fills the panels of columns `j0 .. j0 + width` (`width` a multiple of
/// [`NR`] except at the last column) into the slice: panel after panel,
/// each `k × NR` row-major, lanes past the last column zero.
pub type FillFn<'a> = dyn Fn(usize, usize, &mut [f32]) + Sync + 'a;

/// The right operand of a product.
pub enum Rhs<'a> {
    /// Packed once, e.g. constant weights.
    Packed(&'a PackedB),
    /// Produced segment by segment (`k` rows, `n` columns).
    Fill { k: usize, n: usize, fill: &'a FillFn<'a> },
    /// Every segment of a `Fill`, `width` columns each, filled in turn
    /// into one buffer (segment `s` at `s · width · k`).
    Filled { data: &'a [f32], k: usize, n: usize, width: usize },
    /// A row-major `k × n` matrix (row stride `ldb`), read in place by the
    /// AVX-512 kernels (two panels at a time; the last columns of a segment
    /// that do not fill two panels are packed), filled segment by segment
    /// elsewhere. The same bits either way.
    Rows { data: &'a [f32], k: usize, n: usize, ldb: usize },
}

impl Rhs<'_> {
    fn dims(&self) -> (usize, usize) {
        match self {
            Rhs::Packed(b) => (b.k, b.n),
            Rhs::Fill { k, n, .. } | Rhs::Filled { k, n, .. } | Rhs::Rows { k, n, .. } => (*k, *n),
        }
    }
}

/// Element-wise activation applied to finished outputs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    /// `min(max(x, lo), hi)`.
    Clip {
        lo: f32,
        hi: f32,
    },
}

impl Activation {
    #[inline(always)]
    pub(crate) fn apply(self, row: &mut [f32]) {
        match self {
            Activation::None => {}
            // The same compares and selects as the elementwise kernels
            // (Relu keeps -0 and NaN; Clip passes NaN through), so an
            // activation applied here gives their bits.
            Activation::Relu => row.iter_mut().for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v }),
            Activation::Clip { lo, hi } => row.iter_mut().for_each(|v| {
                let t = if *v < lo { lo } else { *v };
                *v = if t > hi { hi } else { t };
            }),
        }
    }
}

/// What happens to each element of `C` once its sum is complete: add a
/// per-row bias, then an activation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// `bias[i]` is added to row `i`.
    pub row_bias: Option<&'a [f32]>,
    pub activation: Activation,
}

impl Epilogue<'_> {
    pub(crate) fn is_identity(&self) -> bool {
        self.row_bias.is_none() && self.activation == Activation::None
    }

    /// Finish (part of) row `r` of `C`.
    #[inline(always)]
    pub(crate) fn apply(&self, r: usize, row: &mut [f32]) {
        if let Some(bias) = self.row_bias {
            let bv = bias[r];
            row.iter_mut().for_each(|v| *v += bv);
        }
        self.activation.apply(row);
    }
}

/// Whether this CPU's micro-kernel fuses multiply and add (x86-64 with
/// FMA). Each output element is summed over `k` in order either way, so
/// results never depend on the thread count or the tiling; with FMA they
/// are rounded once per step instead of twice (more accurate, and the last
/// bits differ from a machine without FMA).
pub fn fused() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The micro-kernel variants.
#[derive(Clone, Copy, PartialEq)]
enum Isa {
    Generic,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// wasm32 with simd128 (decided at compile time: wasm has no run-time
    /// feature detection). No fused multiply-add, so the same bits as `Generic`.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
}

fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && fused() {
            return Isa::Avx512;
        }
        if fused() {
            return Isa::Avx2;
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return Isa::Simd128;
    #[allow(unreachable_code)]
    Isa::Generic
}

mod micro;

#[cfg(target_arch = "x86_64")]
pub(crate) use micro::Finish;
use micro::micro;
#[cfg(target_arch = "x86_64")]
use micro::micro_wide;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) use micro::simd128_rows;
#[cfg(target_arch = "x86_64")]
pub(crate) use micro::{avx2_rows, avx512_rows};

/// Run a register-block kernel `kernel(c, ldc)` on a tile of `rows × cols`
/// of C at `cp` (`cols ≤ NR`): in place when the tile is `NR` wide, else
/// through the full-width scratch block `edge` (the partial sums copied in
/// first when `load`, the results copied out after).
///
/// # Safety
/// `cp` is valid for `rows` rows of `cols` values at stride `ldc`.
#[inline(always)]
pub(crate) unsafe fn tile(
    rows: usize,
    cols: usize,
    cp: *mut f32,
    ldc: usize,
    load: bool,
    edge: &mut [f32; MR * NR],
    kernel: impl FnOnce(*mut f32, usize),
) {
    if cols == NR {
        return kernel(cp, ldc);
    }
    let e = edge.as_mut_ptr();
    // SAFETY: rows ≤ MR and cols < NR fit the scratch block; cp's range is the caller's.
    unsafe {
        if load {
            for r in 0..rows {
                std::ptr::copy_nonoverlapping(cp.add(r * ldc), e.add(r * NR), cols);
            }
        }
        kernel(e, NR);
        for r in 0..rows {
            std::ptr::copy_nonoverlapping(e.add(r * NR), cp.add(r * ldc), cols);
        }
    }
}

/// A raw view of `C` shared by the items of one product; items write
/// disjoint regions.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    ldc: usize,
}
// SAFETY: items write disjoint regions, and `gemm_with` does not return
// before every item is done.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

thread_local! {
    /// Per-thread buffer for filled segments of the right operand.
    static SEGMENT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Where a block's right operand is: packed panels from its first column,
/// or (AVX-512 only) rows read in place from its first column (`data`, row
/// stride `ldb`) for the pairs of panels that fit, the columns from `split`
/// on packed in `tail`.
#[derive(Clone, Copy)]
enum Panels<'a> {
    Packed(&'a [f32]),
    Rows { data: &'a [f32], ldb: usize, split: usize, tail: &'a [f32] },
}

/// Rows `r0 .. r1` (whole panels, or up to `m`) × columns `j0 .. j0 + w`.
#[allow(clippy::too_many_arguments)]
fn block(
    isa: Isa,
    a: AView,
    panels: Panels,
    k: usize,
    r0: usize,
    r1: usize,
    j0: usize,
    w: usize,
    out: Out,
    epi: &Epilogue,
) {
    let mut edge = [0.0f32; MR * NR];
    let depth = pass_depth(k);
    // The epilogue of each tile once its last pass is done (while in cache).
    let finish = |r0: usize, rows: usize, c0: usize, cols: usize| {
        if !epi.is_identity() {
            for r in r0..r0 + rows {
                // SAFETY: the tile's rows are inside C and belong to this item.
                let row = unsafe { std::slice::from_raw_parts_mut(out.ptr.add(r * out.ldc + c0), cols) };
                epi.apply(r, row);
            }
        }
    };
    for k0 in (0..k).step_by(depth) {
        let kc = depth.min(k - k0);
        let last = k0 + kc == k;
        // Rows in blocks of MC (an `MC × KC` slice of A stays in L2 while
        // every B panel of the segment passes over it).
        for m0 in (r0 / MR..r1.div_ceil(MR)).step_by(MC / MR) {
            let m1 = (m0 + MC / MR).min(r1.div_ceil(MR));
            let mut q = 0;
            while q < w.div_ceil(NR) {
                // This panel's step k0, and the (panel, step) distances of the wide kernel.
                #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
                let (bp, dist) = match panels {
                    Panels::Rows { data, ldb, split, .. } if q * NR < split => {
                        (data[k0 * ldb + q * NR..].as_ptr(), (NR, ldb))
                    }
                    Panels::Rows { split, tail, .. } => {
                        (tail[(q - split / NR) * k * NR + k0 * NR..].as_ptr(), (k * NR, NR))
                    }
                    Panels::Packed(p) => (p[q * k * NR + k0 * NR..].as_ptr(), (k * NR, NR)),
                };
                // On AVX-512, two full panels at a time (32 columns; four
                // would take the B slab of a pass out of L1, measured no faster).
                #[cfg(target_arch = "x86_64")]
                // (For rows read in place these are exactly the pairs before
                // `split`; the packed rest is narrower than a pair.)
                if isa == Isa::Avx512 && w >= (q + 2) * NR {
                    for pa in m0..m1 {
                        let ap = a.at(pa, k0);
                        let rows = MR.min(r1 - pa * MR);
                        // The epilogue in registers after the last pass.
                        let fin = match (last, epi.row_bias) {
                            (false, _) => Finish::NONE,
                            (true, bias) => Finish {
                                bias: bias.map_or(std::ptr::null(), |b| b[pa * MR..].as_ptr()),
                                act: epi.activation,
                            },
                        };
                        // SAFETY: as below, for 32 columns of C (both panels are full);
                        // the bias (asserted by `run`) holds every row of C.
                        unsafe {
                            let cp = out.ptr.add(pa * MR * out.ldc + j0 + q * NR);
                            micro_wide::<2>(rows, kc, a, ap, bp, dist, cp, out.ldc, k0 > 0, fin);
                        }
                    }
                    q += 2;
                    continue;
                }
                let cols = NR.min(w - q * NR);
                for pa in m0..m1 {
                    let ap = a.at(pa, k0);
                    let rows = MR.min(r1 - pa * MR);
                    // SAFETY: the region is inside C (checked by `gemm_with`) and
                    // belongs to this item alone; panels hold k steps.
                    unsafe {
                        let cp = out.ptr.add(pa * MR * out.ldc + j0 + q * NR);
                        tile(rows, cols, cp, out.ldc, k0 > 0, &mut edge, |c, ldc| {
                            micro(isa, rows, kc, a, ap, bp, c, ldc, k0 > 0)
                        });
                    }
                    if last {
                        finish(pa * MR, rows, j0 + q * NR, cols);
                    }
                }
                q += 1;
            }
        }
    }
    if k == 0 {
        for r in r0..r1 {
            // SAFETY: as above.
            unsafe { std::slice::from_raw_parts_mut(out.ptr.add(r * out.ldc + j0), w) }.fill(0.0);
        }
        finish(r0, r1 - r0, j0, w);
    }
}

/// `C = A · B` into `c` (row-major, row stride `ldc`, `m` rows and `n`
/// columns written; other elements untouched).
pub fn gemm(pool: &Pool, a: &PackedA, b: &PackedB, c: &mut [f32], ldc: usize) {
    gemm_with(pool, a, Rhs::Packed(b), c, ldc, &Epilogue::default());
}

/// `C = epilogue(A · B)`; see the module documentation.
///
/// # Panics
/// If the operands' depths differ or `c` is too short for `m` rows of
/// stride `ldc` (callers size `C` from the same shapes).
pub fn gemm_with(pool: &Pool, a: &PackedA, b: Rhs, c: &mut [f32], ldc: usize, epi: &Epilogue) {
    run(pool, AView::packed(a), isa(), b, c, ldc, epi)
}

/// [`gemm_with`] with the left operand a row-major `m × k` matrix `a`
/// (row stride `lda`) as it is: the AVX2 and AVX-512 kernels read it in
/// place (no packing per call); other CPUs pack it first. The same bits
/// either way.
///
/// # Panics
/// As [`gemm_with`], and if `a` is too short for `m` rows of stride `lda`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows(
    pool: &Pool,
    a: &[f32],
    m: usize,
    k: usize,
    lda: usize,
    b: Rhs,
    c: &mut [f32],
    ldc: usize,
    epi: &Epilogue,
) {
    #[cfg(target_arch = "x86_64")]
    if let isa @ (Isa::Avx2 | Isa::Avx512) = isa() {
        assert!(lda >= k && (m == 0 || a.len() >= (m - 1) * lda + k), "gemm left operand too small");
        let view = AView { data: a, m, k, panel: MR * lda, rs: lda, ks: 1 };
        return run(pool, view, isa, b, c, ldc, epi);
    }
    gemm_with(pool, &PackedA::pack(a, m, k, lda, 1), b, c, ldc, epi)
}

/// The body of [`gemm_with`] and [`gemm_rows`].
fn run(pool: &Pool, a: AView, isa: Isa, b: Rhs, c: &mut [f32], ldc: usize, epi: &Epilogue) {
    let (k, n) = b.dims();
    let m = a.m;
    assert_eq!(a.k, k, "gemm operands of different depth");
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "gemm output too small");
    if let Rhs::Rows { data, ldb, .. } = b {
        assert!(ldb >= n && (k == 0 || data.len() >= (k - 1) * ldb + n), "gemm right operand too small");
        #[cfg(target_arch = "x86_64")]
        let in_place = isa == Isa::Avx512;
        #[cfg(not(target_arch = "x86_64"))]
        let in_place = false;
        if !in_place {
            let fill = |j0: usize, w: usize, dst: &mut [f32]| fill_strided(data, k, ldb, 1, j0, w, dst);
            return run(pool, a, isa, Rhs::Fill { k, n, fill: &fill }, c, ldc, epi);
        }
    }
    if let Some(bias) = epi.row_bias {
        assert!(bias.len() >= m, "gemm bias too short");
    }
    let seg = match b {
        Rhs::Packed(_) | Rhs::Rows { .. } => MAX_SEGMENT,
        Rhs::Filled { width, .. } => {
            assert!(width > 0 && width % NR == 0, "gemm segment width {width} is not a multiple of {NR}");
            width
        }
        // Never wider than the product (a 1x1 image is one column).
        // Whole pairs of panels, which AVX-512 takes two at a time.
        Rhs::Fill { .. } => (SEGMENT_BYTES / 4 / k.max(1) / (2 * NR) * (2 * NR))
            .clamp(MIN_SEGMENT, MAX_SEGMENT)
            .min(n.div_ceil(NR) * NR),
    };
    let segments = n.div_ceil(seg);
    // Split rows too when there are too few column segments to share.
    let row_blocks = if segments >= 2 * pool.threads() { 1 } else { m.div_ceil(ROW_BLOCK) };
    let rows_per = if row_blocks == 1 { m.div_ceil(MR) * MR } else { ROW_BLOCK };
    // Rows split into blocks would each fill the same segments again: fill
    // every segment once first (in parallel), then multiply from those
    // panels. (The same panels, so the same bits.)
    let filled: Vec<f32>;
    let b = match b {
        Rhs::Fill { fill, .. } if row_blocks > 1 => {
            let per = seg * k;
            let mut buf = vec![0.0f32; segments * per];
            pool.for_each_chunk(&mut buf, per.max(1), k * n, |s, dst| {
                let (j0, w) = (s * seg, seg.min(n - s * seg));
                fill(j0, w, &mut dst[..w.div_ceil(NR) * NR * k]);
            });
            filled = buf;
            Rhs::Filled { data: &filled, k, n, width: seg }
        }
        other => other,
    };
    let out = Out { ptr: c.as_mut_ptr(), ldc };
    let item = |i: usize| {
        let (rb, s) = (i / segments, i % segments);
        let (r0, r1) = (rb * rows_per, ((rb + 1) * rows_per).min(m));
        let (j0, w) = (s * seg, seg.min(n - s * seg));
        match &b {
            Rhs::Packed(pb) => {
                let panels = &pb.data[(j0 / NR) * NR * k..];
                block(isa, a, Panels::Packed(panels), k, r0, r1, j0, w, out, epi);
            }
            Rhs::Filled { data, .. } => block(isa, a, Panels::Packed(&data[s * seg * k..]), k, r0, r1, j0, w, out, epi),
            Rhs::Fill { fill, .. } => SEGMENT.with(|buf| {
                let mut buf = buf.borrow_mut();
                let len = w.div_ceil(NR) * NR * k;
                if buf.len() < len {
                    buf.resize(len, 0.0);
                }
                fill(j0, w, &mut buf[..len]);
                block(isa, a, Panels::Packed(&buf[..len]), k, r0, r1, j0, w, out, epi);
            }),
            &Rhs::Rows { data, ldb, .. } => SEGMENT.with(|buf| {
                // Pairs of panels in place; the rest packed.
                let split = w / (2 * NR) * (2 * NR);
                let mut buf = buf.borrow_mut();
                let len = (w - split).div_ceil(NR) * NR * k;
                if buf.len() < len {
                    buf.resize(len, 0.0);
                }
                fill_strided(data, k, ldb, 1, j0 + split, w - split, &mut buf[..len]);
                let panels = Panels::Rows { data: &data[j0..], ldb, split, tail: &buf[..len] };
                block(isa, a, panels, k, r0, r1, j0, w, out, epi);
            }),
        }
    };
    pool.for_each_index(row_blocks * segments, 2 * m * n * k.max(1), item);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f32;
                for kk in 0..k {
                    s = if fused() {
                        a[i * k + kk].mul_add(b[kk * n + j], s)
                    } else {
                        s + a[i * k + kk] * b[kk * n + j]
                    };
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn matches_the_naive_order_bit_for_bit_for_any_shape_and_thread_count_fused_or_not() {
        let mut seed = 1u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 17, 5),
            (4, 16, 8),
            (6, 16, 300),
            (67, 300, 33),
            (130, 5, 70),
            (5, 513, 2),
            (2, 3, 0),
            (9, 40, 600),
            (1, 1000, 64),
            (100, 1100, 20),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
            let want = naive(m, n, k, &a, &b);
            let pa = PackedA::pack(&a, m, k, k, 1);
            for threads in [1, 2, 5] {
                let pool = Pool::new(threads);
                let mut c = vec![f32::NAN; m * n];
                gemm(&pool, &pa, &PackedB::pack(&b, k, n, n, 1), &mut c, n);
                assert_eq!(bits(&c), bits(&want), "{m}x{n}x{k} on {threads} threads, packed");
                let fill = |j0: usize, w: usize, dst: &mut [f32]| fill_strided(&b, k, n, 1, j0, w, dst);
                let mut c = vec![f32::NAN; m * n];
                gemm_with(&pool, &pa, Rhs::Fill { k, n, fill: &fill }, &mut c, n, &Epilogue::default());
                assert_eq!(bits(&c), bits(&want), "{m}x{n}x{k} on {threads} threads, filled");
                // The right operand read in place, also from rows with padding.
                let wide: Vec<f32> = b.chunks(n).flat_map(|r| r.iter().copied().chain([5.0; 7])).collect();
                for (src, ldb) in [(&b, n), (&wide, n + 7)] {
                    let mut c = vec![f32::NAN; m * n];
                    let rows = Rhs::Rows { data: src, k, n, ldb };
                    gemm_with(&pool, &pa, rows, &mut c, n, &Epilogue::default());
                    assert_eq!(bits(&c), bits(&want), "{m}x{n}x{k} on {threads} threads, rows at stride {ldb}");
                }
                // The left operand read in place, also from rows with padding.
                let padded: Vec<f32> = a.chunks(k.max(1)).flat_map(|r| r.iter().copied().chain([7.0; 3])).collect();
                for (src, lda) in [(&a, k), (&padded, k + 3)] {
                    if k == 0 {
                        break;
                    }
                    let mut c = vec![f32::NAN; m * n];
                    let pb = PackedB::pack(&b, k, n, n, 1);
                    gemm_rows(&pool, src, m, k, lda, Rhs::Packed(&pb), &mut c, n, &Epilogue::default());
                    assert_eq!(bits(&c), bits(&want), "{m}x{n}x{k} on {threads} threads, rows at stride {lda}");
                }
            }
        }
    }

    #[test]
    fn epilogues_finished_in_registers_give_the_bits_of_the_row_epilogue() {
        // Wide enough for the two-panel AVX-512 tiles, with NaN, -0 and
        // values on both sides of the clip bounds, in every pass depth.
        for (m, n, k) in [(13, 70, 5), (7, 96, 300)] {
            let a: Vec<f32> =
                (0..m * k).map(|i| if i % 97 == 3 { f32::NAN } else { (i % 11) as f32 * 0.3 - 1.5 }).collect();
            let b: Vec<f32> = (0..k * n).map(|i| if i % 89 == 5 { -0.0 } else { (i % 7) as f32 * 0.5 - 1.5 }).collect();
            let bias: Vec<f32> = (0..m).map(|i| i as f32 * 0.75 - 4.0).collect();
            let plain = naive(m, n, k, &a, &b);
            for act in [Activation::None, Activation::Relu, Activation::Clip { lo: -1.0, hi: 2.5 }] {
                for row_bias in [None, Some(&bias[..])] {
                    let epi = Epilogue { row_bias, activation: act };
                    let mut want = plain.clone();
                    for (i, row) in want.chunks_exact_mut(n).enumerate() {
                        epi.apply(i, row);
                    }
                    let mut c = vec![f32::NAN; m * n];
                    let pb = PackedB::pack(&b, k, n, n, 1);
                    gemm_with(&Pool::new(1), &PackedA::pack(&a, m, k, k, 1), Rhs::Packed(&pb), &mut c, n, &epi);
                    assert_eq!(bits(&c), bits(&want), "{m}x{n}x{k} {act:?} bias {}", row_bias.is_some());
                }
            }
        }
    }

    #[test]
    fn the_epilogue_adds_the_row_bias_then_activates_and_leaves_other_columns_alone() {
        let (m, n, k) = (7, 21, 3);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.25 - 2.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
        let bias: Vec<f32> = (0..m).map(|i| i as f32 - 3.0).collect();
        let plain = naive(m, n, k, &a, &b);
        let ldc = n + 2;
        let mut c = vec![9.0f32; m * ldc];
        let epi = Epilogue { row_bias: Some(&bias), activation: Activation::Clip { lo: -1.0, hi: 4.0 } };
        gemm_with(
            &Pool::new(2),
            &PackedA::pack(&a, m, k, k, 1),
            Rhs::Packed(&PackedB::pack(&b, k, n, n, 1)),
            &mut c,
            ldc,
            &epi,
        );
        for i in 0..m {
            for j in 0..ldc {
                let want = if j < n { (plain[i * n + j] + bias[i]).clamp(-1.0, 4.0) } else { 9.0 };
                assert_eq!(c[i * ldc + j], want, "({i}, {j})");
            }
        }
    }
}
