//! Tensors held by the burn backend: burn's float primitive beside
//! Strata's logical shape (burn has no rank 0: a scalar is burn shape `[1]`).

use std::future::Future;
use std::task::{Context, Poll, Waker};

use burn_backend::tensor::FloatTensor;
use burn_backend::{Backend, Shape, TensorMetadata};
use strata_ir::{DType, TensorData};

use crate::error::{BurnError, Result};

/// A float32 tensor on a burn backend with its logical (Strata) shape.
pub struct BurnTensor<B: Backend> {
    pub(crate) shape: Vec<usize>,
    pub(crate) prim: FloatTensor<B>,
}

impl<B: Backend> Clone for BurnTensor<B> {
    fn clone(&self) -> Self {
        BurnTensor { shape: self.shape.clone(), prim: self.prim.clone() }
    }
}

impl<B: Backend> std::fmt::Debug for BurnTensor<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BurnTensor(float32{:?})", self.shape)
    }
}

/// The shape burn holds for a logical shape: rank 0 becomes `[1]`.
pub(crate) fn burn_shape(shape: &[usize]) -> Shape {
    if shape.is_empty() { Shape::from(vec![1]) } else { Shape::from(shape.to_vec()) }
}

impl<B: Backend> BurnTensor<B> {
    /// Wrap a primitive whose burn shape holds the elements of `shape`.
    pub(crate) fn new(shape: Vec<usize>, prim: FloatTensor<B>) -> Self {
        BurnTensor { shape, prim }
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The primitive reshaped to `shape` in burn (same element count).
    pub(crate) fn reshaped(&self, shape: &[usize]) -> FloatTensor<B> {
        let want = burn_shape(shape);
        if self.prim.shape() == want { self.prim.clone() } else { B::float_reshape(self.prim.clone(), want) }
    }

    /// Upload a host tensor (float32 only).
    pub fn from_host(t: &TensorData, device: &B::Device) -> Result<Self> {
        if t.dtype() != DType::F32 {
            return Err(BurnError::Tensor(format!("the burn backend holds float32 tensors only, got {}", t.dtype())));
        }
        let bytes = t.bytes().ok_or_else(|| BurnError::Tensor("a float32 tensor without bytes".into()))?;
        let v: Vec<f32> =
            bytes.as_slice().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let data = burn_backend::TensorData::new(v, burn_shape(t.shape()));
        Ok(BurnTensor { shape: t.shape().to_vec(), prim: B::float_from_data(data, device) })
    }

    /// Download to a host tensor.
    pub fn to_host(&self) -> Result<TensorData> {
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            block_on(B::float_into_data(self.prim.clone())).map(|d| d.convert::<f32>())
        }))
        .map_err(|_| BurnError::Tensor("burn panicked reading a tensor back".into()))?;
        let data = read.map_err(|e| BurnError::Tensor(format!("burn could not read a tensor back: {e:?}")))?;
        let v = data.as_slice::<f32>().map_err(|e| BurnError::Tensor(format!("burn tensor data: {e:?}")))?;
        let n: usize = self.shape.iter().product();
        if v.len() != n {
            return Err(BurnError::Tensor(format!("burn returned {} elements for shape {:?}", v.len(), self.shape)));
        }
        TensorData::from_f32(self.shape.clone(), v).map_err(|e| BurnError::Tensor(e.to_string()))
    }
}

/// Drive a future to completion on this thread (burn-flex's reads are ready at once).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
