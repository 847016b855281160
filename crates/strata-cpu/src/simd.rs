//! Running a kernel's inner loops compiled for the widest vector unit this
//! CPU has (AVX2 on x86-64), chosen at run time; elsewhere (and on x86-64
//! without AVX2) the same code compiled for the baseline (SSE2, NEON, or
//! wasm `simd128` when the build enables it).
//!
//! Only the instruction set changes, never the operations: no fused
//! multiply-add is enabled here, so results are the same bits either way.

/// Run `f` compiled for AVX2 when the CPU has it. The wider instructions
/// reach only code inlined into it: pass a closure marked
/// `#[inline(always)]` whose loops are in it or in `#[inline(always)]`
/// helpers (an unmarked closure that grows large is kept out of line and
/// compiled for the baseline).
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Lanes of the partial sums of [`sum_lanes`].
pub const LANES: usize = 8;

/// `Σ f(x)` over `xs` in `LANES` partial sums (lane `l` takes the elements
/// at `l`, `l + LANES`, ...), added together in lane order, then the
/// remainder in order: a fixed order, so the result depends only on `xs`,
/// and the loop vectorises (a single running sum would be one long chain of
/// dependent additions).
#[inline(always)]
pub fn sum_lanes(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut s = [0.0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            s[l] += f(c[l]);
        }
    }
    chunks.remainder().iter().fold(s.iter().sum::<f32>(), |a, &v| a + f(v))
}
