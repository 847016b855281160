//! Vectorisable f32 transcendental functions: plain arithmetic and bit
//! operations only (no table lookups, no calls, no branches the compiler
//! cannot turn into selects), so loops over them vectorise and give the
//! same bits on every target. Accuracy is checked against `libm` in the
//! tests below (a few ULP).

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so that `n · LN2_HI` is exact for |n| < 2^11.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `e^r - 1` for |r| ≤ 0.35 (Taylor series to degree 9, nested).
#[inline(always)]
fn expm1_reduced(r: f32) -> f32 {
    let mut p = 1.0 + r * (1.0 / 9.0);
    p = 1.0 + r * (1.0 / 8.0) * p;
    p = 1.0 + r * (1.0 / 7.0) * p;
    p = 1.0 + r * (1.0 / 6.0) * p;
    p = 1.0 + r * (1.0 / 5.0) * p;
    p = 1.0 + r * (1.0 / 4.0) * p;
    p = 1.0 + r * (1.0 / 3.0) * p;
    p = 1.0 + r * 0.5 * p;
    r * p
}

/// 1.5 · 2^23: adding it rounds a float of magnitude below 2^22 to an
/// integer held in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;

/// The integer `n` of `t = n + MAGIC` (|n| < 2^22), read from the bits:
/// unlike `as i32` (a saturating conversion), integer arithmetic that
/// vectorises.
#[inline(always)]
fn int_of(t: f32) -> i32 {
    t.to_bits() as i32 - MAGIC.to_bits() as i32
}

/// `e^x` for `x` in [-87, 88] (callers clamp), about 1 ULP.
#[inline(always)]
fn exp_in_range(x: f32) -> f32 {
    // n = round(x / ln 2) by the 1.5 · 2^23 trick (exact for |n| < 2^22).
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let scale = f32::from_bits(((int_of(t) + 127) as u32) << 23);
    (1.0 + expm1_reduced(r)) * scale
}

/// `e^x` over the whole f32 range (overflow to infinity, gradual
/// underflow through subnormals to zero), about 1 ULP.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // (Comparisons and selects rather than `clamp`/`min`: LLVM does not
    // vectorise `minnum`/`maxnum` for wasm simd128. The same values, NaN
    // included.)
    let c = if x < -104.0 { -104.0 } else { x };
    let c = if c > 88.75 { 88.75 } else { c };
    let t = c * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = (c - n * LN2_HI) - n * LN2_LO;
    // 2^n as two factors, each a normal float, so results may be subnormal.
    let n = int_of(t);
    let (n1, n2) = (n / 2, n - n / 2);
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    let v = (1.0 + expm1_reduced(r)) * s1 * s2;
    if x > 88.72284 {
        f32::INFINITY
    } else if x < -103.97208 {
        0.0
    } else {
        v
    }
}

/// Logistic function without overflow: `e^{-|x|}` is at most 1.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 { s } else { e * s }
}

/// `a.min(k)` for a non-NaN bound `k` (NaN gives `k`), as a compare and a
/// select (which vectorise on every target; `f32::min` does not on wasm).
#[inline(always)]
fn below(a: f32, k: f32) -> f32 {
    if a < k { a } else { k }
}

/// `tanh(x)`, within a few ULP of the correctly rounded value.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // Small |x|: the odd Taylor series to x^15 (the next term is below
    // 1e-10 of the sum for |x| ≤ 0.35), no division.
    let h = below(a, 0.35);
    let z = h * h;
    let mut p = -929_569.0 / 638_512_875.0;
    p = 21_844.0 / 6_081_075.0 + z * p;
    p = -1_382.0 / 155_925.0 + z * p;
    p = 62.0 / 2_835.0 + z * p;
    p = -17.0 / 315.0 + z * p;
    p = 2.0 / 15.0 + z * p;
    p = -1.0 / 3.0 + z * p;
    let small = h + h * (z * p);
    // Larger |x|: 1 - 2 / (e^{2|x|} + 1); beyond 9.1 the result rounds to 1.
    let big = 1.0 - 2.0 / (exp_in_range(2.0 * below(a, 10.0)) + 1.0);
    let t = if a <= 0.35 { small } else { big };
    let t = if x.is_nan() { x } else { t };
    f32::copysign(t, x)
}

/// Below this `|x|`, `erf(x)` is `x·P(x²)`; above, `1 − erfc(|x|)`.
const ERF_SPLIT: f32 = 0.875;
/// `erf(a)/a` on `[0, 0.875]` as a polynomial in `a²` (fitted here by
/// reweighted least squares on relative error; 9e-10 in f64).
/// (The first coefficient is the fit's, one f32 step from 2/√π.)
#[allow(clippy::approx_constant)]
const ERF_SMALL: [f32; 7] =
    [1.128_379_1, -0.376_126_32, 0.112_837_06, -0.026_860_515, 0.005_204_771, -0.000_819_430_9, 8.623_567e-5];
/// `erfc(a)·e^{a²}` on `[0.875, 10]` as a polynomial in `r = 1/(1 + a/2)`
/// (fitted the same way; 8e-8 relative in f64).
const ERFC_LARGE: [f32; 9] = [
    -2.830_213e-6,
    0.282_167_76,
    0.281_321_8,
    0.251_065_67,
    0.164_606_1,
    0.091_389_39,
    0.042_913_646,
    -0.197_631_24,
    0.084_643_77,
];

#[inline(always)]
fn horner<const N: usize>(c: &[f32; N], x: f32) -> f32 {
    let mut p = c[N - 1];
    for &k in c[..N - 1].iter().rev() {
        p = p * x + k;
    }
    p
}

/// `v²` as `hi + lo` with `hi` exact (`v` cut to 12 significant bits) and
/// `lo` the small rest, so `e^{-v²}` is taken as `e^{-hi}·e^{-lo}` without
/// the error of a rounded square (which grows with `v²`).
#[inline(always)]
fn split_square(v: f32) -> (f32, f32) {
    let hi = f32::from_bits(v.to_bits() & 0xFFFF_F000);
    let lo = v - hi;
    (hi * hi, (2.0 * hi) * lo + lo * lo)
}

/// `erfc(a)` for `a ≥ 0.875` given `a² = sq.0 + sq.1`.
#[inline(always)]
fn erfc_large(a: f32, sq: (f32, f32)) -> f32 {
    let r = 1.0 / (1.0 + 0.5 * a);
    exp(-sq.0) * exp(-sq.1) * horner(&ERFC_LARGE, r)
}

/// `erf(x)` within 3 ULP, branch-free (compares and selects), so loops of
/// it vectorise.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let small = a * horner(&ERF_SMALL, a * a);
    let large = 1.0 - erfc_large(a, split_square(a));
    let v = if a < ERF_SPLIT { small } else { large };
    // Beyond 4 the result rounds to 1 (NaN stays NaN: it compares false).
    let v = if a >= 4.0 { 1.0 } else { v };
    f32::copysign(v, x)
}

/// GELU, `v/2·(1 + erf(v/√2))`, within 16 ULP: for negative `v` the sum is
/// `erfc(|v|/√2)`, taken directly (no cancellation), with `v²/2` split as
/// in [`split_square`] from `v` itself (not from the rounded `v/√2`).
#[inline(always)]
pub fn gelu(v: f32) -> f32 {
    let z = v * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let (hi, lo) = split_square(v);
    let e = a * horner(&ERF_SMALL, a * a);
    let c = erfc_large(a, (0.5 * hi, 0.5 * lo));
    // erfc is below f32's range there (and `lo` may be NaN for infinite v).
    let c = if a >= 10.0 { 0.0 } else { c };
    let below_split = a < ERF_SPLIT;
    let s = if z >= 0.0 {
        1.0 + if below_split { e } else { 1.0 - c }
    } else if below_split {
        1.0 - e
    } else {
        c
    };
    0.5 * v * s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        let key = |v: f32| {
            let i = v.to_bits() as i32;
            if i < 0 { i32::MIN - i } else { i }
        };
        key(a).abs_diff(key(b))
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_everywhere() {
        let mut worst = (0, 0.0f32);
        let mut x = -110.0f32;
        while x <= 90.0 {
            let u = ulps(exp(x), libm::expf(x));
            if u > worst.0 && libm::expf(x) >= f32::MIN_POSITIVE {
                worst = (u, x);
            }
            x += 0.000_93;
        }
        assert!(worst.0 <= 2, "worst error {} ulp at {}", worst.0, worst.1);
        for v in [0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, 89.0, -105.0] {
            assert_eq!(exp(v).to_bits(), libm::expf(v).to_bits(), "exp({v})");
        }
        assert!(exp(f32::NAN).is_nan());
        // Subnormal results stay close.
        assert!((exp(-100.0) - libm::expf(-100.0)).abs() <= 2.0 * f32::from_bits(1));
    }

    #[test]
    fn tanh_is_within_four_ulp_of_libm_everywhere() {
        let mut worst = (0, 0.0f32);
        let mut x = -20.0f32;
        while x <= 20.0 {
            for v in [x, x * 1e-3, x * 1e-7] {
                let u = ulps(tanh(v), libm::tanhf(v));
                if u > worst.0 {
                    worst = (u, v);
                }
            }
            x += 0.000_37;
        }
        assert!(worst.0 <= 4, "worst error {} ulp at {}", worst.0, worst.1);
        for v in [0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE / 4.0, 1e30, -1e30] {
            assert_eq!(tanh(v).to_bits(), libm::tanhf(v).to_bits(), "tanh({v})");
        }
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn erf_and_gelu_are_within_their_ulp_bounds_everywhere() {
        let gelu64 = |v: f64| 0.5 * v * libm::erfc(-v / std::f64::consts::SQRT_2);
        let (mut worst_erf, mut worst_gelu) = ((0, 0.0f32), (0, 0.0f32));
        let mut x = -14.0f32;
        while x <= 14.0 {
            for v in [x, x * 1e-3, x * 1e-9] {
                let u = ulps(erf(v), libm::erf(f64::from(v)) as f32);
                if u > worst_erf.0 {
                    worst_erf = (u, v);
                }
                let want = gelu64(f64::from(v)) as f32;
                let u = ulps(gelu(v), want);
                if u > worst_gelu.0 && want.abs() >= f32::MIN_POSITIVE {
                    worst_gelu = (u, v);
                }
            }
            x += 0.000_41;
        }
        assert!(worst_erf.0 <= 3, "erf: worst error {} ulp at {}", worst_erf.0, worst_erf.1);
        assert!(worst_gelu.0 <= 16, "gelu: worst error {} ulp at {}", worst_gelu.0, worst_gelu.1);
        for v in [0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, f32::MIN_POSITIVE] {
            assert_eq!(erf(v).to_bits(), libm::erff(v).to_bits(), "erf({v})");
        }
        assert!(erf(f32::NAN).is_nan() && gelu(f32::NAN).is_nan());
        assert_eq!(gelu(f32::INFINITY), f32::INFINITY);
        assert_eq!((gelu(0.0), gelu(-20.0)), (0.0, 0.0));
    }
}
