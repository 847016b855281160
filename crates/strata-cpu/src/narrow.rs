//! float16 and bfloat16 held as bits: exact widening to f32 and
//! round-to-nearest-even narrowing back, and the tensor-level versions used
//! to run nodes on those types through the float32 kernels.

use std::sync::Arc;

use strata_ir::DType;

use crate::error::{Result, bail};
use crate::tensor::{CpuTensor, Data};

/// The f32 value of float16 bits (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if man == 0 => sign,
        // Subnormal: man · 2^-24, exact in f32.
        0 => {
            let v = man as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        0x1f => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// float16 bits of an f32, rounded to nearest-even (overflow to infinity;
/// NaNs stay NaN, quiet, with their sign and top payload bits).
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return if man == 0 { sign | 0x7c00 } else { sign | 0x7e00 | (man >> 13) as u16 };
    }
    // Unbiased exponent, clamped to the float16 subnormal range.
    let e = exp - 127;
    if e > 15 {
        return sign | 0x7c00;
    }
    if e < -25 {
        return sign; // below half the smallest subnormal: rounds to zero
    }
    // Significand with its implicit bit (f32 subnormals are far below here).
    let sig = man | 0x80_0000;
    // Bits to drop: 13 for normals, more for float16 subnormals.
    let shift = if e < -14 { (13 + (-14 - e)) as u32 } else { 13 };
    let kept = sig >> shift;
    let rest = sig & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let rounded = kept + u32::from(rest > half || (rest == half && kept & 1 == 1));
    let mag = if e < -14 {
        rounded // subnormal encoding; a carry into 0x400 is the smallest normal
    } else {
        (((e + 15) as u32) << 10) + (rounded - 0x400)
    };
    sign | mag.min(0x7c00) as u16
}

/// The f32 value of bfloat16 bits (exact).
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// bfloat16 bits of an f32, rounded to nearest-even (NaNs stay quiet NaNs).
pub fn f32_to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) as u16) | 0x40;
    }
    let round = 0x7fff + ((b >> 16) & 1);
    (b.wrapping_add(round) >> 16) as u16
}

/// A float16 / bfloat16 tensor as float32 (other tensors unchanged).
pub(crate) fn widen(t: &CpuTensor) -> Result<CpuTensor> {
    let Data::Half(v) = &t.data else { return Ok(t.clone()) };
    let out: Vec<f32> = match t.dtype {
        DType::F16 => v.iter().map(|&h| f16_to_f32(h)).collect(),
        DType::BF16 => v.iter().map(|&h| bf16_to_f32(h)).collect(),
        d => bail!("{d} held as 16-bit float bits"),
    };
    Ok(CpuTensor::f32(t.shape.clone(), out))
}

/// A float32 tensor rounded to `to` (float16 or bfloat16).
pub(crate) fn narrow(t: CpuTensor, to: DType) -> Result<CpuTensor> {
    let v = t.as_f32()?;
    let out: Vec<u16> = match to {
        DType::F16 => v.iter().map(|&x| f32_to_f16(x)).collect(),
        DType::BF16 => v.iter().map(|&x| f32_to_bf16(x)).collect(),
        d => bail!("cannot narrow float32 to {d}"),
    };
    Ok(CpuTensor { dtype: to, shape: t.shape, data: Data::Half(Arc::new(out)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_ir::dtype::{decode_float_bits, encode_float_bits};

    #[test]
    fn every_half_widens_exactly() {
        for h in 0..=u16::MAX {
            for d in [DType::F16, DType::BF16] {
                let w = if d == DType::F16 { f16_to_f32(h) } else { bf16_to_f32(h) };
                let r = decode_float_bits(d, h as u32);
                assert!(w as f64 == r || (w.is_nan() && r.is_nan()), "{d} {h:#x}: {w} vs {r}");
            }
        }
    }

    #[test]
    fn narrowing_rounds_like_the_ir() {
        // Every float16 value, the midpoints around it and their neighbours,
        // and a sweep of f32 bit patterns across the whole range.
        let mut xs: Vec<f32> = Vec::new();
        for h in 0..0x7c00u16 {
            let v = f16_to_f32(h);
            let up = f16_to_f32(h + 1);
            let mid = ((v as f64 + up as f64) / 2.0) as f32;
            xs.extend([v, -v, mid, -mid, f32::from_bits(mid.to_bits() + 1), f32::from_bits(mid.to_bits() - 1)]);
        }
        xs.extend((0..200_000u32).map(|i| f32::from_bits(i.wrapping_mul(21_474))));
        xs.extend([f32::INFINITY, f32::NEG_INFINITY, 65520.0, 65519.99, 1e-8, -1e-8, f32::MAX, f32::MIN_POSITIVE]);
        for x in xs {
            for d in [DType::F16, DType::BF16] {
                let ours = if d == DType::F16 { f32_to_f16(x) } else { f32_to_bf16(x) } as u32;
                let ir = encode_float_bits(d, x as f64, false);
                if x.is_nan() {
                    assert!(decode_float_bits(d, ours).is_nan(), "{d} {x}");
                } else {
                    assert_eq!(ours, ir, "{d} {x} ({:#x})", x.to_bits());
                }
            }
        }
    }
}
