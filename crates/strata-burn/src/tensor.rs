//! Tensors held by the burn backend: one of burn's primitives (float, int
//! or bool) beside Strata's logical shape and element type (burn has no
//! rank 0: a scalar is burn shape `[1]`). float32, float64, float16 and
//! bfloat16 are burn's float primitive in that burn type (arithmetic runs
//! on float32; the others are moved, cast and compared), int64 and int32
//! its int primitive (as 64-bit integers, the declared type restored on
//! download), bool its bool primitive.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use burn_backend::tensor::{BoolTensor, FloatTensor, IntTensor};
use burn_backend::{Backend, BoolStore, FloatDType, IntDType, Shape, TensorMetadata};
use strata_ir::{DType, TensorData};

use crate::error::{BurnError, Result};

/// A burn primitive of one of the three kinds.
pub enum Prim<B: Backend> {
    Float(FloatTensor<B>),
    Int(IntTensor<B>),
    Bool(BoolTensor<B>),
}

impl<B: Backend> Clone for Prim<B> {
    fn clone(&self) -> Self {
        match self {
            Prim::Float(p) => Prim::Float(p.clone()),
            Prim::Int(p) => Prim::Int(p.clone()),
            Prim::Bool(p) => Prim::Bool(p.clone()),
        }
    }
}

impl<B: Backend> Prim<B> {
    /// The primitive's burn shape.
    pub(crate) fn burn_dims(&self) -> Vec<usize> {
        match self {
            Prim::Float(p) => p.shape().to_vec(),
            Prim::Int(p) => p.shape().to_vec(),
            Prim::Bool(p) => p.shape().to_vec(),
        }
    }
    pub(crate) fn reshape(self, s: Shape) -> Self {
        match self {
            Prim::Float(p) => Prim::Float(B::float_reshape(p, s)),
            Prim::Int(p) => Prim::Int(B::int_reshape(p, s)),
            Prim::Bool(p) => Prim::Bool(B::bool_reshape(p, s)),
        }
    }
    pub(crate) fn expand(self, s: Shape) -> Self {
        match self {
            Prim::Float(p) => Prim::Float(B::float_expand(p, s)),
            Prim::Int(p) => Prim::Int(B::int_expand(p, s)),
            Prim::Bool(p) => Prim::Bool(B::bool_expand(p, s)),
        }
    }
    pub(crate) fn permute(self, axes: &[usize]) -> Self {
        match self {
            Prim::Float(p) => Prim::Float(B::float_permute(p, axes)),
            Prim::Int(p) => Prim::Int(B::int_permute(p, axes)),
            Prim::Bool(p) => Prim::Bool(B::bool_permute(p, axes)),
        }
    }
    pub(crate) fn slice(self, s: &[burn_backend::Slice]) -> Self {
        match self {
            Prim::Float(p) => Prim::Float(B::float_slice(p, s)),
            Prim::Int(p) => Prim::Int(B::int_slice(p, s)),
            Prim::Bool(p) => Prim::Bool(B::bool_slice(p, s)),
        }
    }
    pub(crate) fn select(self, dim: usize, idx: IntTensor<B>) -> Self {
        match self {
            Prim::Float(p) => Prim::Float(B::float_select(p, dim, idx)),
            Prim::Int(p) => Prim::Int(B::int_select(p, dim, idx)),
            Prim::Bool(p) => Prim::Bool(B::bool_select(p, dim, idx)),
        }
    }
    /// `cond ? a : b` elementwise (operands of one burn shape and kind).
    pub(crate) fn choose(cond: BoolTensor<B>, a: Self, b: Self) -> std::result::Result<Self, String> {
        Ok(match (a, b) {
            (Prim::Float(a), Prim::Float(b)) => Prim::Float(B::float_mask_where(b, cond, a)),
            (Prim::Int(a), Prim::Int(b)) => Prim::Int(B::int_mask_where(b, cond, a)),
            (Prim::Bool(a), Prim::Bool(b)) => Prim::Bool(B::bool_mask_where(b, cond, a)),
            _ => return Err("operands of different kinds".into()),
        })
    }
    /// Concatenate primitives of one kind along `dim`.
    pub(crate) fn cat(parts: Vec<Self>, dim: usize) -> std::result::Result<Self, String> {
        let mut f = Vec::new();
        let mut i = Vec::new();
        let mut b = Vec::new();
        for p in parts {
            match p {
                Prim::Float(p) => f.push(p),
                Prim::Int(p) => i.push(p),
                Prim::Bool(p) => b.push(p),
            }
        }
        Ok(match (f.is_empty(), i.is_empty(), b.is_empty()) {
            (false, true, true) => Prim::Float(B::float_cat(f, dim)),
            (true, false, true) => Prim::Int(B::int_cat(i, dim)),
            (true, true, false) => Prim::Bool(B::bool_cat(b, dim)),
            _ => return Err("operands of different kinds".into()),
        })
    }
}

/// A tensor on a burn backend with its logical (Strata) shape and type.
pub struct BurnTensor<B: Backend> {
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
    pub(crate) prim: Prim<B>,
}

impl<B: Backend> Clone for BurnTensor<B> {
    fn clone(&self) -> Self {
        BurnTensor { shape: self.shape.clone(), dtype: self.dtype, prim: self.prim.clone() }
    }
}

impl<B: Backend> std::fmt::Debug for BurnTensor<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BurnTensor({}{:?})", self.dtype, self.shape)
    }
}

/// The shape burn holds for a logical shape: rank 0 becomes `[1]`.
pub(crate) fn burn_shape(shape: &[usize]) -> Shape {
    if shape.is_empty() { Shape::from(vec![1]) } else { Shape::from(shape.to_vec()) }
}

/// Whether this backend holds tensors of type `d`.
pub(crate) fn held(d: DType) -> bool {
    matches!(d, DType::F32 | DType::F64 | DType::F16 | DType::BF16 | DType::I64 | DType::I32 | DType::Bool)
}

/// burn's float type for a held float type (float32 for the others).
pub(crate) fn float_dtype(d: DType) -> FloatDType {
    match d {
        DType::F64 => FloatDType::F64,
        DType::F16 => FloatDType::F16,
        DType::BF16 => FloatDType::BF16,
        _ => FloatDType::F32,
    }
}

/// The int type burn holds integers as.
pub(crate) const INT: IntDType = IntDType::I64;
/// The bool store burn's comparisons write.
pub(crate) const BOOL: BoolStore = BoolStore::Native;
/// The float type burn holds floats as.
pub(crate) const FLOAT: FloatDType = FloatDType::F32;

impl<B: Backend> BurnTensor<B> {
    /// Wrap a float primitive whose burn shape holds the elements of `shape`.
    pub(crate) fn new(shape: Vec<usize>, prim: FloatTensor<B>) -> Self {
        BurnTensor { shape, dtype: DType::F32, prim: Prim::Float(prim) }
    }

    /// Wrap any primitive with its logical type.
    pub(crate) fn of(shape: Vec<usize>, dtype: DType, prim: Prim<B>) -> Self {
        BurnTensor { shape, dtype, prim }
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The logical element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The float primitive, or an error for other kinds.
    pub(crate) fn f(&self) -> std::result::Result<FloatTensor<B>, String> {
        match &self.prim {
            Prim::Float(p) => Ok(p.clone()),
            _ => Err(format!("expected a float32 tensor, got {}", self.dtype)),
        }
    }

    /// The int primitive, or an error for other kinds.
    pub(crate) fn i(&self) -> std::result::Result<IntTensor<B>, String> {
        match &self.prim {
            Prim::Int(p) => Ok(p.clone()),
            _ => Err(format!("expected an integer tensor, got {}", self.dtype)),
        }
    }

    /// The bool primitive, or an error for other kinds.
    pub(crate) fn b(&self) -> std::result::Result<BoolTensor<B>, String> {
        match &self.prim {
            Prim::Bool(p) => Ok(p.clone()),
            _ => Err(format!("expected a bool tensor, got {}", self.dtype)),
        }
    }

    /// The float primitive reshaped to `shape` in burn (same element count).
    pub(crate) fn reshaped(&self, shape: &[usize]) -> FloatTensor<B> {
        match self.reshaped_prim(shape) {
            Prim::Float(p) => p,
            _ => panic!("a {} tensor used as float32", self.dtype),
        }
    }

    /// The primitive reshaped to `shape` in burn (same element count).
    pub(crate) fn reshaped_prim(&self, shape: &[usize]) -> Prim<B> {
        let want = burn_shape(shape);
        if self.prim.burn_dims() == want.to_vec() { self.prim.clone() } else { self.prim.clone().reshape(want) }
    }

    /// The same elements under a new logical shape.
    pub(crate) fn with_shape(&self, shape: Vec<usize>) -> Self {
        let prim = self.reshaped_prim(&shape);
        BurnTensor { shape, dtype: self.dtype, prim }
    }

    /// Upload a host tensor (float32, int64, int32, bool).
    pub fn from_host(t: &TensorData, device: &B::Device) -> Result<Self> {
        let shape = burn_shape(t.shape());
        let prim = match t.dtype() {
            DType::F32 => {
                let bytes = t.bytes().ok_or_else(|| BurnError::Tensor("a float32 tensor without bytes".into()))?;
                let v: Vec<f32> =
                    bytes.as_slice().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                Prim::Float(B::float_from_data(burn_backend::TensorData::new(v, shape), device))
            }
            DType::F64 => Prim::Float(B::float_from_data(burn_backend::TensorData::new(t.to_f64_vec(), shape), device)),
            DType::F16 => {
                let v: Vec<burn_backend::f16> = t.to_f64_vec().into_iter().map(burn_backend::f16::from_f64).collect();
                Prim::Float(B::float_from_data(burn_backend::TensorData::new(v, shape), device))
            }
            DType::BF16 => {
                let v: Vec<burn_backend::bf16> = t.to_f64_vec().into_iter().map(burn_backend::bf16::from_f64).collect();
                Prim::Float(B::float_from_data(burn_backend::TensorData::new(v, shape), device))
            }
            DType::I64 | DType::I32 => {
                let v = t.to_i64_vec();
                Prim::Int(B::int_from_data(burn_backend::TensorData::new(v, shape), device))
            }
            DType::Bool => {
                let v: Vec<bool> = t.to_i64_vec().into_iter().map(|x| x != 0).collect();
                Prim::Bool(B::bool_from_data(burn_backend::TensorData::new(v, shape), device))
            }
            d => {
                return Err(BurnError::Tensor(format!(
                    "the burn backend holds float32/64, float16, bfloat16, int64, int32 and bool tensors, got {d}"
                )));
            }
        };
        Ok(BurnTensor { shape: t.shape().to_vec(), dtype: t.dtype(), prim })
    }

    /// The elements as 64-bit integers (integer and bool tensors), read back
    /// to the host: run-time shape, axes and index operands.
    pub(crate) fn host_ints(&self) -> std::result::Result<Vec<i64>, String> {
        let data = match &self.prim {
            Prim::Int(p) => block_on(B::int_into_data(p.clone())),
            Prim::Bool(p) => block_on(B::int_into_data(B::bool_into_int(p.clone(), INT))),
            Prim::Float(_) => return Err(format!("expected integers, got {}", self.dtype)),
        }
        .map_err(|e| format!("burn could not read a tensor back: {e:?}"))?;
        let v = data.convert::<i64>();
        let v = v.as_slice::<i64>().map_err(|e| format!("burn tensor data: {e:?}"))?;
        Ok(v[..self.shape.iter().product::<usize>().min(v.len())].to_vec())
    }

    /// The elements as f64, read back to the host (small scalar operands).
    pub(crate) fn host_f64(&self) -> std::result::Result<Vec<f64>, String> {
        match &self.prim {
            Prim::Float(p) => {
                let data = block_on(B::float_into_data(p.clone()))
                    .map_err(|e| format!("burn could not read a tensor back: {e:?}"))?
                    .convert::<f64>();
                Ok(data.as_slice::<f64>().map_err(|e| format!("burn tensor data: {e:?}"))?.to_vec())
            }
            _ => Ok(self.host_ints()?.into_iter().map(|x| x as f64).collect()),
        }
    }

    /// Download to a host tensor.
    pub fn to_host(&self) -> Result<TensorData> {
        let n: usize = self.shape.iter().product();
        if n == 0 {
            // Held as one element in burn (see `ops::movement::empty`).
            return TensorData::from_f64(self.dtype, self.shape.clone(), &[])
                .map_err(|e| BurnError::Tensor(e.to_string()));
        }
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> std::result::Result<_, String> {
            match &self.prim {
                Prim::Float(p) if self.dtype == DType::F32 => {
                    let data = block_on(B::float_into_data(p.clone()))
                        .map_err(|e| format!("burn could not read a tensor back: {e:?}"))?
                        .convert::<f32>();
                    let v = data.as_slice::<f32>().map_err(|e| format!("burn tensor data: {e:?}"))?.to_vec();
                    Ok((Some(v), None, None))
                }
                // Other float types through f64 (exact).
                Prim::Float(p) => {
                    let data = block_on(B::float_into_data(p.clone()))
                        .map_err(|e| format!("burn could not read a tensor back: {e:?}"))?
                        .convert::<f64>();
                    let v = data.as_slice::<f64>().map_err(|e| format!("burn tensor data: {e:?}"))?.to_vec();
                    Ok((None, None, Some(v)))
                }
                _ => Ok((None, Some(self.host_ints()?), None)),
            }
        }))
        .map_err(|_| BurnError::Tensor("burn panicked reading a tensor back".into()))?
        .map_err(BurnError::Tensor)?;
        let len = match &read {
            (Some(v), _, _) => v.len(),
            (_, Some(v), _) => v.len(),
            (_, _, Some(v)) => v.len(),
            _ => 0,
        };
        if len != n {
            return Err(BurnError::Tensor(format!("burn returned {len} elements for shape {:?}", self.shape)));
        }
        let shape = self.shape.clone();
        match read {
            (Some(v), _, _) => TensorData::from_f32(shape, &v),
            (_, _, Some(v)) => TensorData::from_f64(self.dtype, shape, &v),
            (None, Some(v), _) if self.dtype == DType::I64 => TensorData::from_i64(shape, &v),
            (None, Some(v), _) => {
                let f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
                TensorData::from_f64(self.dtype, shape, &f)
            }
            _ => unreachable!("one of the two reads is set"),
        }
        .map_err(|e| BurnError::Tensor(e.to_string()))
    }
}

/// Drive a future to completion on this thread (burn-flex's reads are ready at once).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
