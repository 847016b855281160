//! The burn backends: the facade's [`Backend`] implementation over
//! `strata-burn`, as `burn` on burn-flex (the non-default `burn` cargo
//! feature) and as `burn-wgpu` on burn-wgpu (feature `burn-wgpu`).

use std::sync::Arc;

use strata_burn::{BurnBackend, BurnError, BurnTensor, CompiledGraph, TensorBackend};
use strata_ir::{GraphId, HostValue, Model, NodeId};

use crate::backend::{Backend, BoxFuture, CompiledPartition, DeviceValue, Support};
use crate::error::Error;

fn err(e: BurnError) -> Error {
    Error::Backend(format!("burn: {e}"))
}

/// Adapts a [`BurnBackend`] on burn's tensor backend `B` to the facade's
/// [`Backend`] trait, under the name it was created with.
pub struct BurnAdapter<B: TensorBackend> {
    inner: BurnBackend<B>,
    name: &'static str,
    device: bool,
}

impl<B: TensorBackend> BurnAdapter<B> {
    /// The engine on `B`'s default device, answering to `name`; `device`
    /// says whether its tensors live in separate device memory.
    pub fn new(name: &'static str, device: bool) -> Self {
        BurnAdapter { inner: BurnBackend::default(), name, device }
    }
}

impl<B: TensorBackend> std::fmt::Debug for BurnAdapter<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.name, self.inner)
    }
}

/// The `burn` backend: burn-flex, burn's portable CPU backend.
#[cfg(feature = "burn")]
pub type BurnBackendAdapter = BurnAdapter<strata_burn::Flex>;

/// The `burn-wgpu` backend: burn-wgpu, burn's GPU backend.
#[cfg(feature = "burn-wgpu")]
pub type BurnWgpuBackendAdapter = BurnAdapter<strata_burn::Wgpu>;

struct BurnPartition<B: TensorBackend> {
    compiled: CompiledGraph<B>,
    name: &'static str,
}

fn tensor_of<B: TensorBackend>(v: &DeviceValue) -> Result<&BurnTensor<B>, Error> {
    v.payload
        .downcast_ref::<BurnTensor<B>>()
        .ok_or_else(|| Error::Backend(format!("burn backend was given a foreign device value (from {})", v.backend)))
}

fn wrap<B: TensorBackend>(t: BurnTensor<B>, name: &str) -> DeviceValue {
    DeviceValue { backend: name.into(), payload: Box::new(t) }
}

impl<B: TensorBackend> CompiledPartition for BurnPartition<B> {
    fn run<'a>(&'a self, inputs: Vec<&'a DeviceValue>) -> BoxFuture<'a, Result<Vec<DeviceValue>, Error>> {
        Box::pin(async move {
            let ins = inputs.iter().map(|v| tensor_of::<B>(v)).collect::<Result<Vec<_>, _>>()?;
            Ok(self.compiled.run(&ins).map_err(err)?.into_iter().map(|t| wrap(t, self.name)).collect())
        })
    }
}

impl<B: TensorBackend> Backend for BurnAdapter<B> {
    fn name(&self) -> &str {
        self.name
    }
    fn supports(&self, model: &Model, graph: GraphId, node: NodeId) -> Support {
        match self.inner.supports(model, graph, node) {
            Ok(()) => Support::Yes,
            Err(r) => Support::No(r),
        }
    }
    fn compile(&self, model: Arc<Model>) -> Result<Box<dyn CompiledPartition>, Error> {
        Ok(Box::new(BurnPartition { compiled: self.inner.compile(model).map_err(err)?, name: self.name }))
    }
    fn is_device(&self) -> bool {
        self.device
    }
    fn upload(&self, v: &HostValue) -> Result<DeviceValue, Error> {
        let t = v
            .as_tensor()
            .ok_or_else(|| Error::Input(format!("the burn backend holds tensors only, got {}", v.describe())))?;
        Ok(wrap(self.inner.upload(t).map_err(|e| Error::Input(format!("burn: {e}")))?, self.name))
    }
    fn download<'a>(&'a self, v: &'a DeviceValue) -> BoxFuture<'a, Result<HostValue, Error>> {
        Box::pin(async move { Ok(HostValue::Tensor(tensor_of::<B>(v)?.to_host().map_err(err)?)) })
    }
}
