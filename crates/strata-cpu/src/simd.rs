//! Running a kernel's inner loops compiled for the widest vector unit this
//! CPU has (AVX-512 or AVX2 on x86-64), chosen at run time; elsewhere (and on x86-64
//! without AVX2) the same code compiled for the baseline (SSE2, NEON, or
//! wasm `simd128` when the build enables it).
//!
//! Only the instruction set changes, never the operations: no fused
//! multiply-add is enabled here, so results are the same bits either way.

/// Run `f` compiled for AVX-512 (else AVX2) when the CPU has it. The wider instructions
/// reach only code inlined into it: pass a closure marked
/// `#[inline(always)]` whose loops are in it or in `#[inline(always)]`
/// helpers (an unmarked closure that grows large is kept out of line and
/// compiled for the baseline).
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { with_avx512(f) };
        }
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

/// # Safety
/// The CPU supports AVX-512F (and so AVX2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
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

/// `N` `f32` lanes, for kernels written once over lane vectors (the
/// channel-blocked depthwise convolution): a portable array, AVX on x86-64
/// ([`Avx8`] where the CPU has AVX2, [`Avx16`] where it has AVX-512) or
/// two `simd128` vectors on wasm. `mul_add` multiplies, then adds (never
/// fused), so every implementation gives the same bits.
pub trait Lanes<const N: usize>: Copy {
    /// All lanes zero.
    fn zero() -> Self;
    /// Load `N` values.
    fn load(x: &[f32; N]) -> Self;
    /// `self + x * k`, lane by lane.
    fn mul_add(self, x: Self, k: Self) -> Self;
    /// `self + x * k` rounded once (a fused multiply-add) where the type
    /// is one of the x86-64 vector types, which are then used only in code
    /// compiled with FMA on a CPU that has it; elsewhere [`Lanes::mul_add`].
    #[inline(always)]
    fn fused_mul_add(self, x: Self, k: Self) -> Self {
        self.mul_add(x, k)
    }
    /// Store the lanes.
    fn store(self, out: &mut [f32; N]);
}

impl<const N: usize> Lanes<N> for [f32; N] {
    #[inline(always)]
    fn zero() -> Self {
        [0.0; N]
    }
    #[inline(always)]
    fn load(x: &[f32; N]) -> Self {
        *x
    }
    #[inline(always)]
    fn mul_add(mut self, x: Self, k: Self) -> Self {
        for l in 0..N {
            self[l] += x[l] * k[l];
        }
        self
    }
    #[inline(always)]
    fn store(self, out: &mut [f32; N]) {
        *out = self;
    }
}

/// Eight lanes in one AVX register. Use only inside code that runs after
/// checking the CPU has AVX2 (compiled with it).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct Avx8(std::arch::x86_64::__m256);

#[cfg(target_arch = "x86_64")]
impl Lanes<8> for Avx8 {
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: used only where the CPU has AVX2 (see the type's doc).
        Avx8(unsafe { std::arch::x86_64::_mm256_setzero_ps() })
    }
    #[inline(always)]
    fn load(x: &[f32; 8]) -> Self {
        // SAFETY: as above; `x` holds eight values.
        Avx8(unsafe { std::arch::x86_64::_mm256_loadu_ps(x.as_ptr()) })
    }
    #[inline(always)]
    fn mul_add(self, x: Self, k: Self) -> Self {
        use std::arch::x86_64::{_mm256_add_ps, _mm256_mul_ps};
        // SAFETY: as above.
        Avx8(unsafe { _mm256_add_ps(self.0, _mm256_mul_ps(x.0, k.0)) })
    }
    #[inline(always)]
    fn fused_mul_add(self, x: Self, k: Self) -> Self {
        // SAFETY: as above, in code compiled with FMA (see the trait).
        Avx8(unsafe { std::arch::x86_64::_mm256_fmadd_ps(x.0, k.0, self.0) })
    }
    #[inline(always)]
    fn store(self, out: &mut [f32; 8]) {
        // SAFETY: as above; `out` holds eight values.
        unsafe { std::arch::x86_64::_mm256_storeu_ps(out.as_mut_ptr(), self.0) }
    }
}

/// Sixteen lanes in one AVX-512 register. Use only inside code that runs
/// after checking the CPU has AVX-512F (compiled with it).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct Avx16(std::arch::x86_64::__m512);

#[cfg(target_arch = "x86_64")]
impl Lanes<16> for Avx16 {
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: used only where the CPU has AVX-512F (see the type's doc).
        Avx16(unsafe { std::arch::x86_64::_mm512_setzero_ps() })
    }
    #[inline(always)]
    fn load(x: &[f32; 16]) -> Self {
        // SAFETY: as above; `x` holds sixteen values.
        Avx16(unsafe { std::arch::x86_64::_mm512_loadu_ps(x.as_ptr()) })
    }
    #[inline(always)]
    fn mul_add(self, x: Self, k: Self) -> Self {
        use std::arch::x86_64::{_mm512_add_ps, _mm512_mul_ps};
        // SAFETY: as above.
        Avx16(unsafe { _mm512_add_ps(self.0, _mm512_mul_ps(x.0, k.0)) })
    }
    #[inline(always)]
    fn fused_mul_add(self, x: Self, k: Self) -> Self {
        // SAFETY: as above, in code compiled with FMA (see the trait).
        Avx16(unsafe { std::arch::x86_64::_mm512_fmadd_ps(x.0, k.0, self.0) })
    }
    #[inline(always)]
    fn store(self, out: &mut [f32; 16]) {
        // SAFETY: as above; `out` holds sixteen values.
        unsafe { std::arch::x86_64::_mm512_storeu_ps(out.as_mut_ptr(), self.0) }
    }
}

/// Eight lanes in two `simd128` vectors.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[derive(Clone, Copy)]
pub struct Simd8(std::arch::wasm32::v128, std::arch::wasm32::v128);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Lanes<8> for Simd8 {
    #[inline(always)]
    fn zero() -> Self {
        let z = std::arch::wasm32::f32x4_splat(0.0);
        Simd8(z, z)
    }
    #[inline(always)]
    fn load(x: &[f32; 8]) -> Self {
        use std::arch::wasm32::v128_load;
        // SAFETY: `x` holds eight values (unaligned loads are allowed).
        unsafe { Simd8(v128_load(x.as_ptr() as *const _), v128_load(x.as_ptr().add(4) as *const _)) }
    }
    #[inline(always)]
    fn mul_add(self, x: Self, k: Self) -> Self {
        use std::arch::wasm32::{f32x4_add, f32x4_mul};
        Simd8(f32x4_add(self.0, f32x4_mul(x.0, k.0)), f32x4_add(self.1, f32x4_mul(x.1, k.1)))
    }
    #[inline(always)]
    fn store(self, out: &mut [f32; 8]) {
        use std::arch::wasm32::v128_store;
        // SAFETY: `out` holds eight values.
        unsafe {
            v128_store(out.as_mut_ptr() as *mut _, self.0);
            v128_store(out.as_mut_ptr().add(4) as *mut _, self.1);
        }
    }
}
