//! The CPU backend's tensors: typed element vectors (not bytes), shared
//! without copies between the values of a run.

use std::sync::Arc;

use strata_ir::{Buffer, DType, TensorData};

use crate::error::CpuError;

/// Element storage of the types this backend computes on.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Arc<Vec<f32>>),
    I64(Arc<Vec<i64>>),
    I32(Arc<Vec<i32>>),
    /// Bool as 0 / 1.
    Bool(Arc<Vec<u8>>),
}

/// Element types held natively (others stay on other backends).
pub fn is_native(d: DType) -> bool {
    matches!(d, DType::F32 | DType::I64 | DType::I32 | DType::Bool)
}

/// Apply a generic data-movement function to whichever vector `$d` holds.
macro_rules! map_data {
    ($d:expr, |$v:ident| $body:expr) => {
        match $d {
            $crate::tensor::Data::F32($v) => $crate::tensor::Data::F32(std::sync::Arc::new($body)),
            $crate::tensor::Data::I64($v) => $crate::tensor::Data::I64(std::sync::Arc::new($body)),
            $crate::tensor::Data::I32($v) => $crate::tensor::Data::I32(std::sync::Arc::new($body)),
            $crate::tensor::Data::Bool($v) => $crate::tensor::Data::Bool(std::sync::Arc::new($body)),
        }
    };
}
pub(crate) use map_data;

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
        let data = match t.dtype() {
            DType::F32 => Data::F32(Arc::new(
                bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            )),
            DType::I64 => Data::I64(Arc::new(
                bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect(),
            )),
            DType::I32 => Data::I32(Arc::new(
                bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            )),
            DType::Bool => Data::Bool(Arc::new(bytes.iter().map(|&b| u8::from(b != 0)).collect())),
            d => return Err(CpuError::Unsupported(format!("{d} tensors"))),
        };
        Ok(CpuTensor { dtype: t.dtype(), shape, data })
    }

    /// To a host tensor (little-endian bytes).
    pub fn to_host(&self) -> Result<TensorData, CpuError> {
        let bytes: Vec<u8> = match &self.data {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bool(v) => v.clone().to_vec(),
        };
        TensorData::from_bytes(self.dtype, self.shape.clone(), Buffer::from_vec(bytes))
            .map_err(|e| CpuError::Kernel(e.to_string()))
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
