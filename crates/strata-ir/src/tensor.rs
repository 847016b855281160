//! Host tensors as the IR holds them: element type, shape and raw
//! little-endian bytes (or strings), shared without copying.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dtype::{DType, DTypeClass, decode_float_bits, encode_float_bits};
use crate::error::IrError;

/// A shared, immutable byte range. Cloning is cheap; the bytes may live in a
/// `Vec`, a memory map or any other owner.
#[derive(Clone)]
pub struct Buffer {
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
    offset: usize,
    len: usize,
}

impl Buffer {
    /// Wrap an owned vector.
    pub fn from_vec(v: Vec<u8>) -> Self {
        let len = v.len();
        Buffer { owner: Arc::new(v), offset: 0, len }
    }
    /// Wrap any shared owner of bytes (for example a memory map) without copying.
    pub fn from_owner(owner: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Self {
        let len = (*owner).as_ref().len();
        Buffer { owner, offset: 0, len }
    }
    /// A sub-range of this buffer, sharing the same owner.
    pub fn slice(&self, offset: usize, len: usize) -> Option<Buffer> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        Some(Buffer { owner: self.owner.clone(), offset: self.offset + offset, len })
    }
    pub fn as_slice(&self) -> &[u8] {
        &(*self.owner).as_ref()[self.offset..self.offset + self.len]
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({} bytes)", self.len)
    }
}

impl PartialEq for Buffer {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Storage {
    Bytes(Buffer),
    Strings(Arc<Vec<String>>),
}

/// A dense host tensor. Numbers are stored little-endian in their ONNX
/// layout (sub-byte types packed low bits first).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorData {
    dtype: DType,
    shape: Vec<usize>,
    storage: Storage,
}

/// Number of elements of a shape, or `None` on overflow.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

impl TensorData {
    /// A tensor over raw bytes; the length must match the shape exactly.
    pub fn from_bytes(dtype: DType, shape: Vec<usize>, bytes: Buffer) -> Result<Self, IrError> {
        if dtype == DType::String {
            return Err(IrError::Tensor("string tensors are not stored as bytes".into()));
        }
        let n = checked_numel(&shape).ok_or_else(|| IrError::Tensor(format!("shape {shape:?} overflows")))?;
        let need = dtype.byte_len(n).ok_or_else(|| IrError::Tensor(format!("shape {shape:?} overflows")))?;
        if need != bytes.len() {
            return Err(IrError::Tensor(format!(
                "{dtype} tensor of shape {shape:?} needs {need} bytes, got {}",
                bytes.len()
            )));
        }
        Ok(TensorData { dtype, shape, storage: Storage::Bytes(bytes) })
    }

    /// A string tensor.
    pub fn from_strings(shape: Vec<usize>, strings: Vec<String>) -> Result<Self, IrError> {
        let n = checked_numel(&shape).ok_or_else(|| IrError::Tensor(format!("shape {shape:?} overflows")))?;
        if n != strings.len() {
            return Err(IrError::Tensor(format!(
                "string tensor of shape {shape:?} needs {n} strings, got {}",
                strings.len()
            )));
        }
        Ok(TensorData { dtype: DType::String, shape, storage: Storage::Strings(Arc::new(strings)) })
    }

    /// Build from f64 values, rounding to `dtype` (float types), or wrapping
    /// (integer types). Complex types take interleaved (re, im) pairs.
    pub fn from_f64(dtype: DType, shape: Vec<usize>, values: &[f64]) -> Result<Self, IrError> {
        Self::from_f64_sat(dtype, shape, values, false)
    }

    /// Like [`TensorData::from_f64`], with saturation for narrow float types.
    pub fn from_f64_sat(dtype: DType, shape: Vec<usize>, values: &[f64], saturate: bool) -> Result<Self, IrError> {
        let n = checked_numel(&shape).ok_or_else(|| IrError::Tensor(format!("shape {shape:?} overflows")))?;
        let per = if dtype.class() == DTypeClass::Complex { 2 } else { 1 };
        if values.len() != n * per {
            return Err(IrError::Tensor(format!("{} values for shape {shape:?}", values.len())));
        }
        let mut w = Writer::new(dtype, n);
        match dtype.class() {
            DTypeClass::Float | DTypeClass::Complex => {
                for &v in values {
                    w.push_float(v, saturate);
                }
            }
            DTypeClass::SignedInt | DTypeClass::UnsignedInt | DTypeClass::Bool => {
                for &v in values {
                    w.push_int(v as i128);
                }
            }
            DTypeClass::String => return Err(IrError::Tensor("from_f64 on a string tensor".into())),
        }
        Self::from_bytes(dtype, shape, Buffer::from_vec(w.finish()))
    }

    /// Build an integer (or bool) tensor from i128 values, wrapping to `dtype`.
    pub fn from_i128(dtype: DType, shape: Vec<usize>, values: &[i128]) -> Result<Self, IrError> {
        let n = checked_numel(&shape).ok_or_else(|| IrError::Tensor(format!("shape {shape:?} overflows")))?;
        if values.len() != n {
            return Err(IrError::Tensor(format!("{} values for shape {shape:?}", values.len())));
        }
        if !(dtype.is_int() || dtype == DType::Bool) {
            return Self::from_f64(dtype, shape, &values.iter().map(|&v| v as f64).collect::<Vec<_>>());
        }
        let mut w = Writer::new(dtype, n);
        for &v in values {
            w.push_int(v);
        }
        Self::from_bytes(dtype, shape, Buffer::from_vec(w.finish()))
    }

    /// A scalar or 1-D convenience for f32 data.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Result<Self, IrError> {
        let mut b = Vec::with_capacity(values.len() * 4);
        for v in values {
            b.extend_from_slice(&v.to_le_bytes());
        }
        Self::from_bytes(DType::F32, shape, Buffer::from_vec(b))
    }

    /// An i64 tensor.
    pub fn from_i64(shape: Vec<usize>, values: &[i64]) -> Result<Self, IrError> {
        let mut b = Vec::with_capacity(values.len() * 8);
        for v in values {
            b.extend_from_slice(&v.to_le_bytes());
        }
        Self::from_bytes(DType::I64, shape, Buffer::from_vec(b))
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Raw bytes (None for string tensors).
    pub fn bytes(&self) -> Option<&Buffer> {
        match &self.storage {
            Storage::Bytes(b) => Some(b),
            Storage::Strings(_) => None,
        }
    }
    /// Strings (None for numeric tensors).
    pub fn strings(&self) -> Option<&[String]> {
        match &self.storage {
            Storage::Strings(s) => Some(s),
            Storage::Bytes(_) => None,
        }
    }
    /// Same data with another shape of equal element count.
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<Self, IrError> {
        if checked_numel(&shape) != Some(self.numel()) {
            return Err(IrError::Tensor(format!("cannot reshape {:?} to {shape:?}", self.shape)));
        }
        Ok(TensorData { dtype: self.dtype, shape, storage: self.storage.clone() })
    }

    fn raw_bits(&self, i: usize) -> u64 {
        let b = match &self.storage {
            Storage::Bytes(b) => b.as_slice(),
            Storage::Strings(_) => return 0,
        };
        let bits = self.dtype.bits();
        if bits < 8 {
            let per = 8 / bits;
            let byte = b[i / per];
            let shift = (i % per) * bits;
            ((byte >> shift) & ((1u8 << bits) - 1)) as u64
        } else {
            let n = bits / 8;
            let mut v = 0u64;
            for (k, &byte) in b[i * n..i * n + n.min(8)].iter().enumerate() {
                v |= (byte as u64) << (8 * k);
            }
            v
        }
    }

    /// All elements as f64 (integers converted, bool as 0/1, complex as
    /// interleaved pairs). Strings give an empty vector.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        let n = self.numel();
        match self.dtype.class() {
            DTypeClass::Float => (0..n)
                .map(|i| {
                    let bits = self.raw_bits(i);
                    match self.dtype {
                        DType::F64 => f64::from_bits(bits),
                        d => decode_float_bits(d, bits as u32),
                    }
                })
                .collect(),
            DTypeClass::Complex => {
                let Some(b) = self.bytes() else { return vec![] };
                let b = b.as_slice();
                if self.dtype == DType::C64 {
                    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()
                } else {
                    b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
                }
            }
            DTypeClass::SignedInt | DTypeClass::UnsignedInt | DTypeClass::Bool => {
                self.to_i128_vec().into_iter().map(|v| v as f64).collect()
            }
            DTypeClass::String => vec![],
        }
    }

    /// All elements as i128 (integer and bool types; floats are truncated toward zero).
    pub fn to_i128_vec(&self) -> Vec<i128> {
        let n = self.numel();
        match self.dtype.class() {
            DTypeClass::SignedInt => {
                let bits = self.dtype.bits() as u32;
                (0..n)
                    .map(|i| {
                        let raw = self.raw_bits(i) as i128;
                        let m = 1i128 << bits;
                        if raw >= m / 2 { raw - m } else { raw }
                    })
                    .collect()
            }
            DTypeClass::UnsignedInt => (0..n).map(|i| self.raw_bits(i) as i128).collect(),
            DTypeClass::Bool => (0..n).map(|i| (self.raw_bits(i) != 0) as i128).collect(),
            DTypeClass::Float | DTypeClass::Complex => self.to_f64_vec().into_iter().map(|v| v as i128).collect(),
            DTypeClass::String => vec![],
        }
    }

    /// Integer elements as i64 (for shapes, axes, indices).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        self.to_i128_vec().into_iter().map(|v| v as i64).collect()
    }
}

/// Packs elements of one type into little-endian bytes.
struct Writer {
    dtype: DType,
    out: Vec<u8>,
    count: usize,
}

impl Writer {
    fn new(dtype: DType, n: usize) -> Self {
        Writer { dtype, out: Vec::with_capacity(dtype.byte_len(n).unwrap_or(0)), count: 0 }
    }
    fn push_bits(&mut self, bits: u64) {
        let nb = self.dtype.bits();
        if nb < 8 {
            let per = 8 / nb;
            if self.count.is_multiple_of(per) {
                self.out.push(0);
            }
            let last = self.out.last_mut().unwrap();
            *last |= ((bits as u8) & ((1u8 << nb) - 1)) << ((self.count % per) * nb);
        } else {
            self.out.extend_from_slice(&bits.to_le_bytes()[..nb / 8]);
        }
        self.count += 1;
    }
    fn push_float(&mut self, v: f64, saturate: bool) {
        match self.dtype {
            DType::F64 | DType::C128 => self.out.extend_from_slice(&v.to_le_bytes()),
            DType::F32 | DType::C64 => self.out.extend_from_slice(&(v as f32).to_le_bytes()),
            d => {
                let bits = encode_float_bits(d, v, saturate);
                self.push_bits(bits as u64);
                return;
            }
        }
        self.count += 1;
    }
    fn push_int(&mut self, v: i128) {
        let w = if self.dtype == DType::Bool { (v != 0) as i128 } else { self.dtype.wrap_int(v) };
        self.push_bits(w as u64);
    }
    fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[derive(Serialize, Deserialize)]
enum TensorRepr {
    Bytes {
        dtype: DType,
        shape: Vec<usize>,
        #[serde(with = "bytes_serde")]
        bytes: Vec<u8>,
    },
    Strings {
        shape: Vec<usize>,
        strings: Vec<String>,
    },
}

mod bytes_serde {
    use serde::{Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}

impl Serialize for TensorData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let repr = match &self.storage {
            Storage::Bytes(b) => {
                TensorRepr::Bytes { dtype: self.dtype, shape: self.shape.clone(), bytes: b.as_slice().to_vec() }
            }
            Storage::Strings(st) => TensorRepr::Strings { shape: self.shape.clone(), strings: (**st).clone() },
        };
        repr.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match TensorRepr::deserialize(d)? {
            TensorRepr::Bytes { dtype, shape, bytes } => {
                TensorData::from_bytes(dtype, shape, Buffer::from_vec(bytes)).map_err(serde::de::Error::custom)
            }
            TensorRepr::Strings { shape, strings } => {
                TensorData::from_strings(shape, strings).map_err(serde::de::Error::custom)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_int4_roundtrip() {
        let t = TensorData::from_i128(DType::I4, vec![3], &[-8, 7, -1]).unwrap();
        assert_eq!(t.bytes().unwrap().len(), 2);
        assert_eq!(t.to_i128_vec(), vec![-8, 7, -1]);
        let u = TensorData::from_i128(DType::U2, vec![5], &[0, 1, 2, 3, 1]).unwrap();
        assert_eq!(u.to_i128_vec(), vec![0, 1, 2, 3, 1]);
    }

    #[test]
    fn byte_length_is_checked() {
        assert!(TensorData::from_bytes(DType::F32, vec![2], Buffer::from_vec(vec![0; 7])).is_err());
    }
}
