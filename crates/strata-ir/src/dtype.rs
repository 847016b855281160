//! Element types and their bit-level encodings.
//!
//! Every ONNX tensor element type has a [`DType`]. This module also owns the
//! conversion of packed and narrow floating-point encodings (float8, float4,
//! 2/4-bit integers) to and from wider numbers, so that every crate decodes
//! them the same way.

use serde::{Deserialize, Serialize};

/// A tensor element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    F8E4M3FN,
    F8E4M3FNUZ,
    F8E5M2,
    F8E5M2FNUZ,
    F8E8M0,
    F4E2M1,
    I2,
    U2,
    I4,
    U4,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Bool,
    String,
    C64,
    C128,
}

/// Broad class of an element type, used to pick kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DTypeClass {
    Float,
    SignedInt,
    UnsignedInt,
    Bool,
    String,
    Complex,
}

impl DType {
    /// All element types.
    pub const ALL: &'static [DType] = &[
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::F8E4M3FN,
        DType::F8E4M3FNUZ,
        DType::F8E5M2,
        DType::F8E5M2FNUZ,
        DType::F8E8M0,
        DType::F4E2M1,
        DType::I2,
        DType::U2,
        DType::I4,
        DType::U4,
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
        DType::Bool,
        DType::String,
        DType::C64,
        DType::C128,
    ];

    /// The ONNX `TensorProto.DataType` code of this type.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::String => 8,
            DType::Bool => 9,
            DType::F16 => 10,
            DType::F64 => 11,
            DType::U32 => 12,
            DType::U64 => 13,
            DType::C64 => 14,
            DType::C128 => 15,
            DType::BF16 => 16,
            DType::F8E4M3FN => 17,
            DType::F8E4M3FNUZ => 18,
            DType::F8E5M2 => 19,
            DType::F8E5M2FNUZ => 20,
            DType::U4 => 21,
            DType::I4 => 22,
            DType::F4E2M1 => 23,
            DType::F8E8M0 => 24,
            DType::U2 => 25,
            DType::I2 => 26,
        }
    }

    /// The type with ONNX `TensorProto.DataType` code `code`.
    pub fn from_onnx_code(code: i64) -> Option<DType> {
        DType::ALL.iter().copied().find(|d| i64::from(d.onnx_code()) == code)
    }

    /// Lower-case name as used in ONNX docs and `.npy` descriptions.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F8E4M3FN => "float8e4m3fn",
            DType::F8E4M3FNUZ => "float8e4m3fnuz",
            DType::F8E5M2 => "float8e5m2",
            DType::F8E5M2FNUZ => "float8e5m2fnuz",
            DType::F8E8M0 => "float8e8m0",
            DType::F4E2M1 => "float4e2m1",
            DType::I2 => "int2",
            DType::U2 => "uint2",
            DType::I4 => "int4",
            DType::U4 => "uint4",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::I32 => "int32",
            DType::U32 => "uint32",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::Bool => "bool",
            DType::String => "string",
            DType::C64 => "complex64",
            DType::C128 => "complex128",
        }
    }

    /// The class of this type.
    pub fn class(self) -> DTypeClass {
        use DType::*;
        match self {
            F32 | F64 | F16 | BF16 | F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0 | F4E2M1 => DTypeClass::Float,
            I2 | I4 | I8 | I16 | I32 | I64 => DTypeClass::SignedInt,
            U2 | U4 | U8 | U16 | U32 | U64 => DTypeClass::UnsignedInt,
            Bool => DTypeClass::Bool,
            String => DTypeClass::String,
            C64 | C128 => DTypeClass::Complex,
        }
    }

    pub fn is_float(self) -> bool {
        self.class() == DTypeClass::Float
    }
    pub fn is_int(self) -> bool {
        matches!(self.class(), DTypeClass::SignedInt | DTypeClass::UnsignedInt)
    }
    pub fn is_signed_int(self) -> bool {
        self.class() == DTypeClass::SignedInt
    }
    pub fn is_complex(self) -> bool {
        self.class() == DTypeClass::Complex
    }
    pub fn is_unsigned_int(self) -> bool {
        self.class() == DTypeClass::UnsignedInt
    }

    /// Storage size in bits of one element (strings: 0, they are not packed).
    pub fn bits(self) -> usize {
        use DType::*;
        match self {
            I2 | U2 => 2,
            I4 | U4 | F4E2M1 => 4,
            I8 | U8 | Bool | F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0 => 8,
            I16 | U16 | F16 | BF16 => 16,
            I32 | U32 | F32 => 32,
            I64 | U64 | F64 | C64 => 64,
            C128 => 128,
            String => 0,
        }
    }

    /// Bytes needed to store `n` elements (packed types round up).
    pub fn byte_len(self, n: usize) -> Option<usize> {
        n.checked_mul(self.bits()).map(|b| b.div_ceil(8))
    }

    /// Inclusive integer range of an integer type, as i128.
    pub fn int_range(self) -> Option<(i128, i128)> {
        use DType::*;
        Some(match self {
            I2 => (-2, 1),
            U2 => (0, 3),
            I4 => (-8, 7),
            U4 => (0, 15),
            I8 => (i8::MIN as i128, i8::MAX as i128),
            U8 => (0, u8::MAX as i128),
            I16 => (i16::MIN as i128, i16::MAX as i128),
            U16 => (0, u16::MAX as i128),
            I32 => (i32::MIN as i128, i32::MAX as i128),
            U32 => (0, u32::MAX as i128),
            I64 => (i64::MIN as i128, i64::MAX as i128),
            U64 => (0, u64::MAX as i128),
            Bool => (0, 1),
            _ => return None,
        })
    }

    /// Wrap an integer into this integer type's range (two's complement).
    pub fn wrap_int(self, v: i128) -> i128 {
        let bits = match self.bits() {
            0 => return v,
            b => b as u32,
        };
        if bits >= 128 {
            return v;
        }
        let m = 1i128 << bits;
        let r = v.rem_euclid(m);
        if self.is_signed_int() && r >= m / 2 { r - m } else { r }
    }

    /// Round an f64 to the nearest value representable in this float type
    /// (round-to-nearest-even, overflow to infinity where the type has one,
    /// else to NaN; "saturating" conversions are done by the caller).
    pub fn round_float(self, v: f64) -> f64 {
        match self {
            DType::F64 => v,
            DType::F32 | DType::C64 => v as f32 as f64,
            DType::F16 => half::f16::from_bits(f64_to_f16_bits(v)).to_f64(),
            DType::BF16 => half::bf16::from_bits(f64_to_bf16_bits(v)).to_f64(),
            DType::C128 => v,
            d if d.is_float() => decode_float_bits(d, encode_float_bits(d, v, false)),
            _ => v,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of a small IEEE-like float format.
struct MiniFloat {
    exp_bits: u32,
    man_bits: u32,
    bias: i32,
    /// Has infinities (only E5M2).
    has_inf: bool,
    /// "FNUZ" style: no negative zero, 0x80 is the only NaN.
    uz: bool,
    /// E4M3FN style: only all-ones exponent+mantissa is NaN; no infinity.
    fn_style: bool,
}

fn minifloat(d: DType) -> Option<MiniFloat> {
    Some(match d {
        DType::F8E4M3FN => MiniFloat { exp_bits: 4, man_bits: 3, bias: 7, has_inf: false, uz: false, fn_style: true },
        DType::F8E4M3FNUZ => MiniFloat { exp_bits: 4, man_bits: 3, bias: 8, has_inf: false, uz: true, fn_style: true },
        DType::F8E5M2 => MiniFloat { exp_bits: 5, man_bits: 2, bias: 15, has_inf: true, uz: false, fn_style: false },
        DType::F8E5M2FNUZ => MiniFloat { exp_bits: 5, man_bits: 2, bias: 16, has_inf: false, uz: true, fn_style: true },
        DType::F4E2M1 => MiniFloat { exp_bits: 2, man_bits: 1, bias: 1, has_inf: false, uz: false, fn_style: false },
        _ => return None,
    })
}

impl MiniFloat {
    fn total_bits(&self) -> u32 {
        1 + self.exp_bits + self.man_bits
    }
    fn is_nan(&self, bits: u32) -> bool {
        let sign = 1u32 << (self.exp_bits + self.man_bits);
        let mag = bits & (sign - 1);
        let all = sign - 1;
        if self.uz {
            bits == sign
        } else if self.has_inf {
            let exp_all = ((1 << self.exp_bits) - 1) << self.man_bits;
            (mag & exp_all) == exp_all && (mag & ((1 << self.man_bits) - 1)) != 0
        } else if self.fn_style {
            mag == all
        } else {
            false // float4e2m1 has no NaN
        }
    }
    fn decode(&self, bits: u32) -> f64 {
        if self.is_nan(bits) {
            return f64::NAN;
        }
        let sign_bit = 1u32 << (self.exp_bits + self.man_bits);
        let neg = bits & sign_bit != 0;
        let e = (bits >> self.man_bits) & ((1 << self.exp_bits) - 1);
        let m = bits & ((1 << self.man_bits) - 1);
        if self.has_inf && e == (1 << self.exp_bits) - 1 {
            return if neg { f64::NEG_INFINITY } else { f64::INFINITY };
        }
        let frac = m as f64 / (1u32 << self.man_bits) as f64;
        let mag = if e == 0 { frac * 2f64.powi(1 - self.bias) } else { (1.0 + frac) * 2f64.powi(e as i32 - self.bias) };
        if neg { -mag } else { mag }
    }
    /// Largest finite magnitude's bit pattern (without sign).
    fn max_bits(&self) -> u32 {
        let sign = 1u32 << (self.exp_bits + self.man_bits);
        if self.has_inf {
            // exponent all-ones is inf/nan: max is exp=all-1, mantissa all ones
            (((1 << self.exp_bits) - 2) << self.man_bits) | ((1 << self.man_bits) - 1)
        } else if self.fn_style && !self.uz {
            sign - 2
        } else {
            sign - 1
        }
    }
    fn nan_bits(&self) -> u32 {
        let sign = 1u32 << (self.exp_bits + self.man_bits);
        if self.uz {
            sign
        } else if self.has_inf {
            (((1 << self.exp_bits) - 1) << self.man_bits) | 1
        } else {
            (sign << 1) - 1
        }
    }
    fn encode(&self, v: f64, saturate: bool) -> u32 {
        let sign = 1u32 << (self.exp_bits + self.man_bits);
        if v.is_nan() {
            // float4e2m1 has neither NaN nor infinity. ONNX (via ml_dtypes)
            // maps NaN to a zero whose sign is the opposite of the NaN's sign
            // bit: +NaN becomes -0 (0x8) and -NaN becomes +0 (0x0).
            if !self.has_inf && !self.fn_style && !self.uz {
                return if v.is_sign_negative() { 0 } else { sign };
            }
            return self.nan_bits();
        }
        let neg = v.is_sign_negative();
        let a = v.abs();
        let sbit = if neg { sign } else { 0 };
        let max_val = self.decode(self.max_bits());
        if a.is_infinite() {
            if saturate || (!self.has_inf && !self.fn_style) {
                return sbit | self.max_bits();
            }
            return if self.has_inf {
                sbit | (((1 << self.exp_bits) - 1) << self.man_bits)
            } else {
                self.nan_bits() | if self.uz { 0 } else { sbit }
            };
        }
        // Enumerate all finite non-negative codes and pick nearest (ties to even code).
        // Formats are tiny (≤ 256 codes), so this stays obviously correct.
        let mut best_code = 0u32;
        let mut best_err = f64::INFINITY;
        for code in 0..=self.max_bits() {
            if self.is_nan(code) {
                continue;
            }
            let val = self.decode(code);
            if !val.is_finite() {
                continue;
            }
            let err = (val - a).abs();
            if err < best_err || (err == best_err && code % 2 == 0) {
                best_err = err;
                best_code = code;
            }
        }
        if a > max_val {
            // Values beyond max: round-to-nearest may still land on max if within half ulp.
            let max_code = self.max_bits();
            let below = self.decode(max_code - 1);
            let half_ulp = (max_val - below) / 2.0;
            // Exactly half way past the maximum rounds to even: down to the
            // maximum when its code is even (E4M3FN's 448), else up into
            // overflow (E5M2's 57344 -> inf).
            let overflows = a > max_val + half_ulp || (a == max_val + half_ulp && max_code % 2 == 1);
            if !saturate && overflows {
                if self.has_inf {
                    return sbit | (((1 << self.exp_bits) - 1) << self.man_bits);
                }
                if self.fn_style {
                    return self.nan_bits() | if self.uz { 0 } else { sbit };
                }
            }
            best_code = max_code;
        }
        if best_code == 0 && self.uz {
            return 0; // no negative zero
        }
        sbit | best_code
    }
}

crate::attr::attr_enum! {
    /// How a conversion to float8e8m0 (a bare power-of-two exponent) rounds
    /// a value that is not a power of two (Cast's `round_mode`).
    pub enum E8M0Round {
        /// Towards +infinity in magnitude (the ONNX default).
        Up = "up",
        /// Towards zero in magnitude (truncate the mantissa).
        Down = "down",
        /// To the nearer power of two, a mantissa of exactly 1.5 rounding up.
        Nearest = "nearest",
    }
}

/// Encode to float8e8m0 the way ONNX does (`onnx.numpy_helper.to_float8e8m0`):
/// the value is first converted to float32; its sign is ignored and its
/// biased exponent becomes the code, rounded up by one according to `mode`
/// and the mantissa bits. NaN and infinity (also float32 overflow) give
/// 0xFF (NaN). With `saturate` rounding never carries past 0xFE (2^127);
/// without it 0xFE may round up to 0xFF (NaN).
pub fn encode_e8m0_bits(v: f64, saturate: bool, mode: E8M0Round) -> u32 {
    let bits = (v as f32).to_bits();
    let exponent = (bits >> 23) & 0xFF;
    if exponent == 0xFF {
        return 0xFF;
    }
    let mantissa = bits & 0x7F_FFFF;
    let round_up = match mode {
        E8M0Round::Down => false,
        E8M0Round::Up => mantissa != 0,
        E8M0Round::Nearest => {
            // guard = first mantissa bit; round = second; sticky = all below
            // the guard; for subnormals (exponent 0) a tie rounds down.
            let guard = bits & 0x40_0000 != 0;
            let round = bits & 0x20_0000 != 0;
            let sticky = bits & 0x1F_FFFF != 0;
            guard && (round || sticky || exponent > 0)
        }
    };
    if round_up && !(saturate && exponent == 0xFE) { exponent + 1 } else { exponent }
}

fn encode_e8m0(v: f64, saturate: bool) -> u32 {
    encode_e8m0_bits(v, saturate, E8M0Round::Nearest)
}

/// Decode the bit pattern of one element of a narrow float type to f64.
pub fn decode_float_bits(d: DType, bits: u32) -> f64 {
    match d {
        DType::F8E8M0 => {
            if bits & 0xFF == 0xFF {
                f64::NAN
            } else {
                2f64.powi((bits & 0xFF) as i32 - 127)
            }
        }
        DType::F16 => half::f16::from_bits(bits as u16).to_f64(),
        DType::BF16 => half::bf16::from_bits(bits as u16).to_f64(),
        DType::F32 => f32::from_bits(bits) as f64,
        _ => match minifloat(d) {
            Some(mf) => mf.decode(bits & ((1 << mf.total_bits()) - 1)),
            None => f64::NAN,
        },
    }
}

/// float16 bits of an f64, rounded once to nearest-even, identically on
/// every target. (`half`'s `from_f64` goes through f32 on x86 with F16C,
/// rounding twice, and its software path drops the low mantissa bits before
/// rounding.) NaNs keep their sign and top payload bits and become quiet.
fn f64_to_f16_bits(v: f64) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 48) & 0x8000) as u16;
    if v.is_nan() {
        return sign | 0x7e00 | ((bits >> 42) & 0x3ff) as u16;
    }
    let a = v.abs();
    // Unbiased exponent; float16 subnormals share the quantum of 2^-14.
    let e = (((bits >> 52) & 0x7ff) as i32 - 1023).max(-14);
    if e > 15 {
        return sign | 0x7c00;
    }
    // Scaling by a power of two is exact; r is the rounded significand in
    // units of the float16 quantum 2^(e-10), at most 2048.
    let r = (a / 2f64.powi(e - 10)).round_ties_even() as u32;
    // The encoding is contiguous: r = 2048 carries into the exponent (or
    // into infinity above 65504), subnormals are r below 1024 at e = -14.
    let mag = if r < 1024 { r } else { (((e + 15) as u32) << 10) + (r - 1024) };
    sign | mag.min(0x7c00) as u16
}

/// bfloat16 bits of an f64, rounded once to nearest-even. (`half`'s
/// `from_f64` truncates to f32 first, which can round the wrong way.) The
/// f64 is first narrowed to f32 rounding to odd (truncation, with the last
/// bit set when inexact), which keeps enough bits for the second rounding
/// to be exact.
fn f64_to_bf16_bits(v: f64) -> u16 {
    if v.is_nan() {
        return ((v as f32).to_bits() >> 16) as u16 | 0x40;
    }
    let mut f = v as f32;
    if f as f64 != v {
        if (f as f64).abs() > v.abs() {
            f = f32::from_bits(f.to_bits() - 1);
        }
        f = f32::from_bits(f.to_bits() | 1);
    }
    let b = f.to_bits();
    (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// Encode an f64 to the bit pattern of a narrow float type, rounding to
/// nearest-even. With `saturate`, out-of-range values clamp to the largest
/// finite value instead of becoming inf/NaN.
pub fn encode_float_bits(d: DType, v: f64, saturate: bool) -> u32 {
    match d {
        DType::F8E8M0 => encode_e8m0(v, saturate),
        DType::F16 => f64_to_f16_bits(v) as u32,
        DType::BF16 => f64_to_bf16_bits(v) as u32,
        DType::F32 => (v as f32).to_bits(),
        _ => match minifloat(d) {
            Some(mf) => mf.encode(v, saturate),
            None => 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float16_rounds_once_on_every_target() {
        // Just above the midpoint of 1 and the next float16: rounds up. Going
        // through f32 first (hardware F16C) would land on the midpoint and
        // round to even (1.0) instead.
        let v = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!(DType::F16.round_float(v), 1.0 + 2f64.powi(-10));
        assert_eq!(encode_float_bits(DType::F16, v, false), 0x3c01);
        // Every finite float16 encodes to itself; midpoints to neighbours go
        // to the even one, and anything past a midpoint to the far side.
        for h in 0u16..0x7c00 {
            for sign in [0, 0x8000] {
                let x = half::f16::from_bits(h | sign).to_f64();
                assert_eq!(f64_to_f16_bits(x), h | sign, "{x}");
            }
            if h == 0x7bff {
                continue; // the largest finite value: its upper neighbour is infinity (checked below)
            }
            let (lo, hi) = (half::f16::from_bits(h).to_f64(), half::f16::from_bits(h + 1).to_f64());
            let mid = (lo + hi) / 2.0;
            let even = if h % 2 == 0 { h } else { h + 1 };
            assert_eq!(f64_to_f16_bits(mid), even, "midpoint {mid}");
            assert_eq!(f64_to_f16_bits(mid + (hi - lo) * 1e-9), h + 1, "above {mid}");
            assert_eq!(f64_to_f16_bits(mid - (hi - lo) * 1e-9), h, "below {mid}");
        }
        assert_eq!(f64_to_f16_bits(65519.99), 0x7bff);
        assert_eq!(f64_to_f16_bits(65520.0), 0x7c00);
        assert_eq!(f64_to_f16_bits(-1e300), 0xfc00);
        assert_eq!(f64_to_f16_bits(f64::INFINITY), 0x7c00);
        assert_eq!(f64_to_f16_bits(1e-300), 0);
        assert_eq!(f64_to_f16_bits(-0.0), 0x8000);
        assert_eq!(f64_to_f16_bits(f64::NAN) & 0x7e00, 0x7e00);
    }

    #[test]
    fn bfloat16_rounds_once_to_nearest_even() {
        let cases = [
            (f32::from_bits(0x3700_8001) as f64, 0x3701),
            (f32::from_bits(0x3700_8000) as f64, 0x3700),
            (f32::from_bits(0x3701_8000) as f64, 0x3702),
            (f32::from_bits(0x3700_7fff) as f64, 0x3700),
            // Above the f32 midpoint below a bfloat16 midpoint: the f32
            // rounding would land on the midpoint and round to even.
            (f32::from_bits(0x3f80_8000) as f64 + 1e-12, 0x3f81),
            (1e300, 0x7f80),
            (-1e300, 0xff80),
            (1e-300, 0),
            (f64::INFINITY, 0x7f80),
        ];
        for (v, bits) in cases {
            assert_eq!(f64_to_bf16_bits(v), bits, "{v}");
        }
        assert!(half::bf16::from_bits(f64_to_bf16_bits(f64::NAN)).is_nan());
        for h in 0..0x7f80u16 {
            let x = half::bf16::from_bits(h).to_f64();
            assert_eq!(f64_to_bf16_bits(x), h);
            assert_eq!(f64_to_bf16_bits(-x), h | 0x8000);
        }
    }

    #[test]
    fn e4m3fn_roundtrip_and_limits() {
        for code in 0..256u32 {
            let v = decode_float_bits(DType::F8E4M3FN, code);
            if v.is_nan() {
                continue;
            }
            assert_eq!(encode_float_bits(DType::F8E4M3FN, v, false), code, "code {code} value {v}");
        }
        assert_eq!(decode_float_bits(DType::F8E4M3FN, 0x7E), 448.0);
        assert_eq!(encode_float_bits(DType::F8E4M3FN, 1e6, true), 0x7E);
        assert!(decode_float_bits(DType::F8E4M3FN, encode_float_bits(DType::F8E4M3FN, 1e6, false)).is_nan());
        assert_eq!(encode_float_bits(DType::F8E4M3FN, 464.0, false), 0x7E);
        assert!(decode_float_bits(DType::F8E4M3FN, encode_float_bits(DType::F8E4M3FN, 464.1, false)).is_nan());
        assert_eq!(decode_float_bits(DType::F8E5M2, encode_float_bits(DType::F8E5M2, 61440.0, false)), f64::INFINITY);
        assert!(decode_float_bits(DType::F8E4M3FNUZ, encode_float_bits(DType::F8E4M3FNUZ, 248.0, false)).is_nan());
    }

    #[test]
    fn e5m2_inf_and_fnuz() {
        assert_eq!(decode_float_bits(DType::F8E5M2, 0x7C), f64::INFINITY);
        assert_eq!(decode_float_bits(DType::F8E5M2, 0x7B), 57344.0);
        assert!(decode_float_bits(DType::F8E4M3FNUZ, 0x80).is_nan());
        assert_eq!(decode_float_bits(DType::F8E4M3FNUZ, 0x7F), 240.0);
        assert_eq!(decode_float_bits(DType::F8E5M2FNUZ, 0x7F), 57344.0);
        assert_eq!(decode_float_bits(DType::F4E2M1, 0x7), 6.0);
        assert_eq!(decode_float_bits(DType::F4E2M1, 0xF), -6.0);
    }

    #[test]
    fn e8m0_rounding() {
        let e = |v: f64, sat: bool, m: E8M0Round| encode_e8m0_bits(v, sat, m);
        assert_eq!(e(1.0, true, E8M0Round::Up), 127);
        assert_eq!(e(1.25, true, E8M0Round::Up), 128);
        assert_eq!(e(1.75, true, E8M0Round::Down), 127);
        assert_eq!(e(1.5, true, E8M0Round::Nearest), 128);
        assert_eq!(e(1.49, true, E8M0Round::Nearest), 127);
        assert_eq!(e(-2.0, true, E8M0Round::Up), 128);
        assert_eq!(e(0.0, true, E8M0Round::Up), 0);
        assert_eq!(e(f64::INFINITY, true, E8M0Round::Up), 0xFF);
        assert_eq!(e(1.5 * 2f64.powi(127), true, E8M0Round::Up), 0xFE);
        assert_eq!(e(1.5 * 2f64.powi(127), false, E8M0Round::Up), 0xFF);
        assert!(decode_float_bits(DType::F8E8M0, 0xFF).is_nan());
        assert_eq!(decode_float_bits(DType::F8E8M0, 127), 1.0);
    }

    #[test]
    fn float4_nan_and_inf() {
        assert_eq!(encode_float_bits(DType::F4E2M1, f64::NAN, false), 0x8);
        assert_eq!(encode_float_bits(DType::F4E2M1, -f64::NAN, false), 0x0);
        assert_eq!(encode_float_bits(DType::F4E2M1, f64::INFINITY, false), 0x7);
        assert_eq!(encode_float_bits(DType::F4E2M1, f64::NEG_INFINITY, false), 0xF);
        assert_eq!(encode_float_bits(DType::F4E2M1, 1e6, false), 0x7);
    }

    #[test]
    fn wrap() {
        assert_eq!(DType::I8.wrap_int(128), -128);
        assert_eq!(DType::U8.wrap_int(-1), 255);
        assert_eq!(DType::I4.wrap_int(8), -8);
    }
}
