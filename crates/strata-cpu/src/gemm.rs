//! Single-precision matrix multiplication on packed operands.
//!
//! `C = A · B` with `A` packed in panels of [`MR`] rows and `B` in panels of
//! [`NR`] columns (each panel `K` deep, interleaved so the micro-kernel reads
//! both sequentially). The micro-kernel keeps an `MR × NR` block of `C` in
//! registers; it is plain Rust that the compiler vectorises (SSE2 or AVX2 on
//! x86-64, chosen at run time; NEON on arm64; simd128 in browsers). Every
//! element of `C` is the sum over `k = 0, 1, …, K-1` in that order, on every
//! target and for every thread count, and products are never fused with
//! adds: results are bit-identical across machines and thread counts.
//!
//! Work is split into tiles of at most [`TILE_ROWS`] rows × [`TILE_COLS`]
//! columns; threads compute tiles into their own buffers, which are then
//! copied into `C`.

use crate::pool::Pool;

/// Rows of a packed `A` panel (and of the register block).
pub const MR: usize = 4;
/// Columns of a packed `B` panel (and of the register block).
pub const NR: usize = 16;
/// Rows of one unit of parallel work.
const TILE_ROWS: usize = 64;
/// Columns of one unit of parallel work (a multiple of `NR`).
const TILE_COLS: usize = 256;

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
                for kk in 0..k {
                    dst[kk * MR + r] = src[i * rs + kk * cs];
                }
            }
        }
        PackedA { m, k, data }
    }
    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * MR * self.k..(p + 1) * MR * self.k]
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

impl PackedB {
    /// Pack `k × n` values where element `(kk, j)` is `src[kk·rs + j·cs]`.
    pub fn pack(src: &[f32], k: usize, n: usize, rs: usize, cs: usize) -> PackedB {
        let mut b = PackedB::zeros(k, n);
        let panels = n.div_ceil(NR);
        for p in 0..panels {
            let dst = &mut b.data[p * NR * k..(p + 1) * NR * k];
            let width = NR.min(n - p * NR);
            for kk in 0..k {
                let row = &mut dst[kk * NR..kk * NR + width];
                if cs == 1 {
                    let s = kk * rs + p * NR;
                    row.copy_from_slice(&src[s..s + width]);
                } else {
                    for (c, x) in row.iter_mut().enumerate() {
                        *x = src[kk * rs + (p * NR + c) * cs];
                    }
                }
            }
        }
        b
    }
    /// A zeroed packed operand, to be filled through [`PackedB::data_mut`].
    pub fn zeros(k: usize, n: usize) -> PackedB {
        PackedB { k, n, data: vec![0.0; n.div_ceil(NR) * NR * k] }
    }
    /// The panels' storage, for filling in place: panel `p` is the
    /// `k × NR` row-major chunk at `p · k · NR` (columns past `n` stay zero).
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * NR * self.k..(p + 1) * NR * self.k]
    }
}

/// An `MR × NR` block of accumulators.
type Block = [[f32; NR]; MR];

/// Depth of one pass over `k`: an A panel (`MR × KC`) and a B panel
/// (`KC × NR`) stay in the L1 cache while a block is computed.
const KC: usize = 256;

/// One `MR × NR` block: add the sum over `k` of `a[kk] ⊗ b[kk]`, in order,
/// to the accumulators (carried across passes over `k`, so every element is
/// still one sequential sum).
#[inline(always)]
fn block_generic(k: usize, a: &[f32], b: &[f32], acc_io: &mut Block) {
    let mut acc = *acc_io;
    for (av, bv) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(k) {
        let av: &[f32; MR] = av.try_into().unwrap_or(&[0.0; MR]);
        let bv: &[f32; NR] = bv.try_into().unwrap_or(&[0.0; NR]);
        for r in 0..MR {
            for c in 0..NR {
                acc[r][c] += av[r] * bv[c];
            }
        }
    }
    *acc_io = acc;
}

/// [`block_generic`] with fused multiply-adds (one rounding per step).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn block_fused(k: usize, a: &[f32], b: &[f32], acc_io: &mut Block) {
    let mut acc = *acc_io;
    for (av, bv) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(k) {
        let av: &[f32; MR] = av.try_into().unwrap_or(&[0.0; MR]);
        let bv: &[f32; NR] = bv.try_into().unwrap_or(&[0.0; NR]);
        for r in 0..MR {
            for c in 0..NR {
                acc[r][c] = av[r].mul_add(bv[c], acc[r][c]);
            }
        }
    }
    *acc_io = acc;
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn block_avx2_fma(k: usize, a: &[f32], b: &[f32], acc: &mut Block) {
    block_fused(k, a, b, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn block_avx512_fma(k: usize, a: &[f32], b: &[f32], acc: &mut Block) {
    block_fused(k, a, b, acc)
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

/// The micro-kernel, on the widest vector unit this CPU has.
#[inline]
fn block(k: usize, a: &[f32], b: &[f32], acc: &mut Block) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
            return unsafe { block_avx512_fma(k, a, b, acc) };
        }
        if fused() {
            // SAFETY: the CPU supports AVX2 and FMA (checked by `fused`).
            return unsafe { block_avx2_fma(k, a, b, acc) };
        }
    }
    block_generic(k, a, b, acc)
}

/// `C = A · B` into `c` (row-major, row stride `ldc`, `m` rows and `n`
/// columns written; other elements untouched).
pub fn gemm(pool: &Pool, a: &PackedA, b: &PackedB, c: &mut [f32], ldc: usize) {
    let (m, n, k) = (a.m, b.n, a.k);
    debug_assert_eq!(a.k, b.k);
    if m == 0 || n == 0 {
        return;
    }
    let row_tiles = m.div_ceil(TILE_ROWS);
    let col_tiles = n.div_ceil(TILE_COLS);
    let tile = |t: usize| -> Vec<f32> {
        let (r0, c0) = ((t / col_tiles) * TILE_ROWS, (t % col_tiles) * TILE_COLS);
        let (rows, cols) = (TILE_ROWS.min(m - r0), TILE_COLS.min(n - c0));
        let (pa0, pa1) = (r0 / MR, (r0 + rows).div_ceil(MR));
        let (pb0, pb1) = (c0 / NR, (c0 + cols).div_ceil(NR));
        let mut blocks = vec![[[0.0f32; NR]; MR]; (pa1 - pa0) * (pb1 - pb0)];
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            for pb in pb0..pb1 {
                let bp = &b.panel(pb)[k0 * NR..(k0 + kc) * NR];
                for pa in pa0..pa1 {
                    let ap = &a.panel(pa)[k0 * MR..(k0 + kc) * MR];
                    block(kc, ap, bp, &mut blocks[(pb - pb0) * (pa1 - pa0) + (pa - pa0)]);
                }
            }
        }
        let mut out = vec![0.0f32; rows * cols];
        for pb in pb0..pb1 {
            for pa in pa0..pa1 {
                let acc = &blocks[(pb - pb0) * (pa1 - pa0) + (pa - pa0)];
                for r in 0..MR.min(m - pa * MR) {
                    let i = pa * MR + r - r0;
                    let j0 = pb * NR - c0;
                    let w = NR.min(cols - j0);
                    out[i * cols + j0..i * cols + j0 + w].copy_from_slice(&acc[r][..w]);
                }
            }
        }
        out
    };
    let work = 2 * m * n * k;
    if row_tiles * col_tiles == 1 {
        let out = tile(0);
        for i in 0..m {
            c[i * ldc..i * ldc + n].copy_from_slice(&out[i * n..(i + 1) * n]);
        }
        return;
    }
    let tiles = pool.map(row_tiles * col_tiles, work, tile);
    for (t, out) in tiles.iter().enumerate() {
        let (r0, c0) = ((t / col_tiles) * TILE_ROWS, (t % col_tiles) * TILE_COLS);
        let cols = TILE_COLS.min(n - c0);
        for (i, row) in out.chunks_exact(cols).enumerate() {
            let s = (r0 + i) * ldc + c0;
            c[s..s + cols].copy_from_slice(row);
        }
    }
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

    #[test]
    fn matches_the_naive_order_bit_for_bit_for_any_shape_and_thread_count_fused_or_not() {
        let mut seed = 1u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        for &(m, n, k) in
            &[(1, 1, 1), (3, 17, 5), (4, 16, 8), (67, 300, 33), (130, 5, 70), (5, 513, 2), (2, 3, 0), (9, 40, 600)]
        {
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
            let want = naive(m, n, k, &a, &b);
            for threads in [1, 2, 5] {
                let mut c = vec![f32::NAN; m * n];
                gemm(&Pool::new(threads), &PackedA::pack(&a, m, k, k, 1), &PackedB::pack(&b, k, n, n, 1), &mut c, n);
                assert_eq!(
                    c.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "{m}x{n}x{k} on {threads} threads"
                );
            }
        }
    }
}
