//! The CPU backend's tensors: typed element vectors (not bytes), shared
//! without copies between the values of a run.
//!
//! Every fixed-width element type is held: float32, int64, int32 and bool
//! are what most kernels compute on; the other integer types and float64
//! have vectors of their own type; float16 and bfloat16 are held as their
//! 16-bit patterns and the 8- and 4-bit floats as one element's bits per
//! byte (kernels widen them to float32 to compute); 4- and 2-bit integers
//! are unpacked to one value per byte. Strings and complex numbers are not
//! held (their nodes run elsewhere).

use std::sync::Arc;

use strata_ir::{Buffer, DType, TensorData};

use crate::error::CpuError;

/// Element storage of the types this backend holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Arc<Vec<f32>>),
    I64(Arc<Vec<i64>>),
    I32(Arc<Vec<i32>>),
    /// Bool as 0 / 1.
    Bool(Arc<Vec<u8>>),
    F64(Arc<Vec<f64>>),
    U64(Arc<Vec<u64>>),
    U32(Arc<Vec<u32>>),
    I16(Arc<Vec<i16>>),
    U16(Arc<Vec<u16>>),
    /// int8, and int4 / int2 values (one per byte).
    I8(Arc<Vec<i8>>),
    /// uint8, and uint4 / uint2 values (one per byte).
    U8(Arc<Vec<u8>>),
    /// float16 and bfloat16 bit patterns.
    Half(Arc<Vec<u16>>),
    /// float8 (all five kinds) and float4e2m1 bit patterns, one per byte.
    Small(Arc<Vec<u8>>),
}

/// Element types this backend can hold (and move, cast and compare).
pub fn is_held(d: DType) -> bool {
    !matches!(d, DType::String | DType::C64 | DType::C128)
}

/// Whether a type is held as 16-bit float patterns ([`Data::Half`]).
pub fn is_half(d: DType) -> bool {
    matches!(d, DType::F16 | DType::BF16)
}

/// Apply a generic data-movement function to whichever vector `$d` holds.
macro_rules! map_data {
    ($d:expr, |$v:ident| $body:expr) => {{
        use std::sync::Arc;
        use $crate::tensor::Data as D;
        match $d {
            D::F32($v) => D::F32(Arc::new($body)),
            D::I64($v) => D::I64(Arc::new($body)),
            D::I32($v) => D::I32(Arc::new($body)),
            D::Bool($v) => D::Bool(Arc::new($body)),
            D::F64($v) => D::F64(Arc::new($body)),
            D::U64($v) => D::U64(Arc::new($body)),
            D::U32($v) => D::U32(Arc::new($body)),
            D::I16($v) => D::I16(Arc::new($body)),
            D::U16($v) => D::U16(Arc::new($body)),
            D::I8($v) => D::I8(Arc::new($body)),
            D::U8($v) => D::U8(Arc::new($body)),
            D::Half($v) => D::Half(Arc::new($body)),
            D::Small($v) => D::Small(Arc::new($body)),
        }
    }};
}
pub(crate) use map_data;

/// Evaluate `$body` with `$v` bound to whichever slice `$d` holds (the
/// body must type-check for every element type).
macro_rules! with_data {
    ($d:expr, |$v:ident| $body:expr) => {{
        use $crate::tensor::Data as D;
        match $d {
            D::F32($v) => $body,
            D::I64($v) => $body,
            D::I32($v) => $body,
            D::Bool($v) => $body,
            D::F64($v) => $body,
            D::U64($v) => $body,
            D::U32($v) => $body,
            D::I16($v) => $body,
            D::U16($v) => $body,
            D::I8($v) => $body,
            D::U8($v) => $body,
            D::Half($v) => $body,
            D::Small($v) => $body,
        }
    }};
}

/// Combine two tensors of the same storage with a generic function of
/// their two vectors giving a vector of that type (e.g. `Where`, `Concat`).
macro_rules! zip_data {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr, $mismatch:expr) => {{
        use std::sync::Arc;
        use $crate::tensor::Data as D;
        match ($a, $b) {
            (D::F32($x), D::F32($y)) => D::F32(Arc::new($body)),
            (D::I64($x), D::I64($y)) => D::I64(Arc::new($body)),
            (D::I32($x), D::I32($y)) => D::I32(Arc::new($body)),
            (D::Bool($x), D::Bool($y)) => D::Bool(Arc::new($body)),
            (D::F64($x), D::F64($y)) => D::F64(Arc::new($body)),
            (D::U64($x), D::U64($y)) => D::U64(Arc::new($body)),
            (D::U32($x), D::U32($y)) => D::U32(Arc::new($body)),
            (D::I16($x), D::I16($y)) => D::I16(Arc::new($body)),
            (D::U16($x), D::U16($y)) => D::U16(Arc::new($body)),
            (D::I8($x), D::I8($y)) => D::I8(Arc::new($body)),
            (D::U8($x), D::U8($y)) => D::U8(Arc::new($body)),
            (D::Half($x), D::Half($y)) => D::Half(Arc::new($body)),
            (D::Small($x), D::Small($y)) => D::Small(Arc::new($body)),
            _ => $mismatch,
        }
    }};
}
pub(crate) use zip_data;

impl Data {
    pub fn len(&self) -> usize {
        with_data!(self, |v| v.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes one element takes here.
    pub fn elem_bytes(&self) -> usize {
        fn size<T>(_: &[T]) -> usize {
            std::mem::size_of::<T>()
        }
        with_data!(self, |v| size(v))
    }
}

/// Element types with a storage vector: the slice a [`Data`] holds when
/// it is of this element type (u16 covers `U16` and `Half`; u8 covers
/// `U8`, `Bool` and `Small`).
pub(crate) trait Elem: Copy + Send + Sync + 'static {
    fn of(d: &Data) -> Option<&[Self]>;
}

macro_rules! elem {
    ($t:ty, $($var:ident)|+) => {
        impl Elem for $t {
            fn of(d: &Data) -> Option<&[$t]> {
                match d {
                    $(Data::$var(v) => Some(v),)+
                    _ => None,
                }
            }
        }
    };
}
elem!(f32, F32);
elem!(f64, F64);
elem!(i64, I64);
elem!(u64, U64);
elem!(i32, I32);
elem!(u32, U32);
elem!(i16, I16);
elem!(u16, U16 | Half);
elem!(i8, I8);
elem!(u8, U8 | Bool | Small);

/// Little-endian elements of `N` bytes each.
fn le<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    b.chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

/// A dense tensor on the CPU backend.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Data,
}

impl CpuTensor {
    pub fn f32(shape: Vec<usize>, v: Vec<f32>) -> CpuTensor {
        CpuTensor { dtype: DType::F32, shape, data: Data::F32(Arc::new(v)) }
    }
    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> CpuTensor {
        CpuTensor { dtype: DType::I64, shape, data: Data::I64(Arc::new(v)) }
    }
    pub fn numel(&self) -> usize {
        self.data.len()
    }
    /// The f32 elements, or an error naming what was found.
    pub fn as_f32(&self) -> Result<&[f32], CpuError> {
        match &self.data {
            Data::F32(v) => Ok(v),
            _ => Err(CpuError::Kernel(format!("expected a float tensor, got {}", self.dtype))),
        }
    }
    /// Every element as f64: floats (the bit-pattern types decoded by the
    /// IR's encodings) exactly, integers converted, bool as 0 / 1.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        fn wide<T: Copy + Into<f64>>(v: &[T]) -> Vec<f64> {
            v.iter().map(|&x| x.into()).collect()
        }
        let decode = |b: u32| strata_ir::dtype::decode_float_bits(self.dtype, b);
        match &self.data {
            Data::F32(v) => wide(v),
            Data::F64(v) => v.to_vec(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I32(v) => wide(v),
            Data::U32(v) => wide(v),
            Data::I16(v) => wide(v),
            Data::U16(v) => wide(v),
            Data::I8(v) => wide(v),
            Data::U8(v) | Data::Bool(v) => wide(v),
            Data::Half(v) => v.iter().map(|&x| decode(x as u32)).collect(),
            Data::Small(v) => v.iter().map(|&x| decode(x as u32)).collect(),
        }
    }
    /// The elements of an integer tensor as i64 (shapes, axes, indices).
    pub fn to_i64(&self) -> Result<Vec<i64>, CpuError> {
        match &self.data {
            Data::I64(v) => Ok(v.to_vec()),
            Data::I32(v) => Ok(v.iter().map(|&x| x as i64).collect()),
            _ => Err(CpuError::Kernel(format!("expected an integer tensor, got {}", self.dtype))),
        }
    }
    /// Same data, another shape of the same element count.
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<CpuTensor, CpuError> {
        if strata_ir::tensor::checked_numel(&shape) != Some(self.numel()) {
            return Err(CpuError::Kernel(format!("cannot reshape {:?} to {shape:?}", self.shape)));
        }
        Ok(CpuTensor { dtype: self.dtype, shape, data: self.data.clone() })
    }

    /// From a host tensor (a copy into typed storage).
    pub fn from_host(t: &TensorData) -> Result<CpuTensor, CpuError> {
        let bytes = t.bytes().ok_or_else(|| CpuError::Unsupported(format!("{} tensors", t.dtype())))?.as_slice();
        let shape = t.shape().to_vec();
        let n = t.numel();
        let data = match t.dtype() {
            DType::F32 => Data::F32(Arc::new(le(bytes, f32::from_le_bytes))),
            DType::I64 => Data::I64(Arc::new(le(bytes, i64::from_le_bytes))),
            DType::I32 => Data::I32(Arc::new(le(bytes, i32::from_le_bytes))),
            DType::Bool => Data::Bool(Arc::new(bytes.iter().map(|&b| u8::from(b != 0)).collect())),
            DType::F64 => Data::F64(Arc::new(le(bytes, f64::from_le_bytes))),
            DType::U64 => Data::U64(Arc::new(le(bytes, u64::from_le_bytes))),
            DType::U32 => Data::U32(Arc::new(le(bytes, u32::from_le_bytes))),
            DType::I16 => Data::I16(Arc::new(le(bytes, i16::from_le_bytes))),
            DType::U16 => Data::U16(Arc::new(le(bytes, u16::from_le_bytes))),
            DType::I8 => Data::I8(Arc::new(bytes.iter().map(|&b| b as i8).collect())),
            DType::U8 => Data::U8(Arc::new(bytes.to_vec())),
            DType::F16 | DType::BF16 => Data::Half(Arc::new(le(bytes, u16::from_le_bytes))),
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F8E8M0 => {
                Data::Small(Arc::new(bytes.to_vec()))
            }
            DType::F4E2M1 => Data::Small(Arc::new((0..n).map(|i| (bytes[i / 2] >> (4 * (i % 2))) & 0xF).collect())),
            DType::I4 | DType::I2 => Data::I8(Arc::new(t.to_i128_vec().into_iter().map(|v| v as i8).collect())),
            DType::U4 | DType::U2 => Data::U8(Arc::new(t.to_i128_vec().into_iter().map(|v| v as u8).collect())),
            d => return Err(CpuError::Unsupported(format!("{d} tensors"))),
        };
        if data.len() != n {
            return Err(CpuError::Kernel(format!("{} bytes do not hold {n} {} elements", bytes.len(), t.dtype())));
        }
        Ok(CpuTensor { dtype: t.dtype(), shape, data })
    }

    /// To a host tensor (little-endian bytes).
    pub fn to_host(&self) -> Result<TensorData, CpuError> {
        let err = |e: strata_ir::IrError| CpuError::Kernel(e.to_string());
        if self.dtype.bits() < 8 && self.dtype.is_int() {
            let vals: Vec<i128> = match &self.data {
                Data::I8(v) => v.iter().map(|&x| x as i128).collect(),
                Data::U8(v) => v.iter().map(|&x| x as i128).collect(),
                _ => return Err(CpuError::Kernel(format!("{} held in the wrong storage", self.dtype))),
            };
            return TensorData::from_i128(self.dtype, self.shape.clone(), &vals).map_err(err);
        }
        let bytes: Vec<u8> = match &self.data {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U16(v) | Data::Half(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Data::Small(v) if self.dtype.bits() == 4 => {
                v.chunks(2).map(|p| (p[0] & 0xF) | (p.get(1).copied().unwrap_or(0) & 0xF) << 4).collect()
            }
            Data::U8(v) | Data::Bool(v) | Data::Small(v) => v.to_vec(),
        };
        TensorData::from_bytes(self.dtype, self.shape.clone(), Buffer::from_vec(bytes)).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_round_trip_is_exact() {
        let t = TensorData::from_f32(vec![2, 2], &[1.0, -0.0, f32::NAN, 3.5]).unwrap();
        let back = CpuTensor::from_host(&t).unwrap().to_host().unwrap();
        assert_eq!(back.bytes().unwrap().as_slice(), t.bytes().unwrap().as_slice());
        let i = TensorData::from_i64(vec![3], &[i64::MIN, 0, i64::MAX]).unwrap();
        assert_eq!(CpuTensor::from_host(&i).unwrap().to_host().unwrap(), i);
    }
}
