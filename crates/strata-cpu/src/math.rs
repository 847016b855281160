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
}
