//! The `burn` backend: the facade's [`Backend`] implementation over
//! `strata-burn` on burn-flex (enabled by the non-default `burn` cargo
//! feature).

use std::sync::Arc;

use strata_burn::{BurnError, FlexBackend, FlexGraph, FlexTensor};
use strata_ir::{GraphId, HostValue, Model, NodeId};

use crate::backend::{Backend, BoxFuture, CompiledPartition, DeviceValue, Support};
use crate::error::Error;

fn err(e: BurnError) -> Error {
    Error::Backend(format!("burn: {e}"))
}

/// Adapts [`FlexBackend`] (burn's CPU backend) to the facade's [`Backend`] trait.
#[derive(Debug, Clone, Default)]
pub struct BurnBackendAdapter {
    inner: FlexBackend,
}

impl BurnBackendAdapter {
    /// The burn backend on burn-flex's CPU device.
    pub fn new() -> Self {
        Self::default()
    }
}

struct BurnPartition {
    compiled: FlexGraph,
}

fn tensor_of(v: &DeviceValue) -> Result<&FlexTensor, Error> {
    v.payload
        .downcast_ref::<FlexTensor>()
        .ok_or_else(|| Error::Backend("burn backend was given a foreign device value".into()))
}

fn wrap(t: FlexTensor) -> DeviceValue {
    DeviceValue { backend: "burn".into(), payload: Box::new(t) }
}

impl CompiledPartition for BurnPartition {
    fn run<'a>(&'a self, inputs: Vec<&'a DeviceValue>) -> BoxFuture<'a, Result<Vec<DeviceValue>, Error>> {
        Box::pin(async move {
            let ins = inputs.iter().map(|v| tensor_of(v)).collect::<Result<Vec<_>, _>>()?;
            Ok(self.compiled.run(&ins).map_err(err)?.into_iter().map(wrap).collect())
        })
    }
}

impl Backend for BurnBackendAdapter {
    fn name(&self) -> &str {
        "burn"
    }
    fn supports(&self, model: &Model, graph: GraphId, node: NodeId) -> Support {
        match self.inner.supports(model, graph, node) {
            Ok(()) => Support::Yes,
            Err(r) => Support::No(r),
        }
    }
    fn compile(&self, model: Arc<Model>) -> Result<Box<dyn CompiledPartition>, Error> {
        Ok(Box::new(BurnPartition { compiled: self.inner.compile(model).map_err(err)? }))
    }
    fn is_device(&self) -> bool {
        false
    }
    fn upload(&self, v: &HostValue) -> Result<DeviceValue, Error> {
        let t = v
            .as_tensor()
            .ok_or_else(|| Error::Input(format!("the burn backend holds tensors only, got {}", v.describe())))?;
        Ok(wrap(self.inner.upload(t).map_err(|e| Error::Input(format!("burn: {e}")))?))
    }
    fn download<'a>(&'a self, v: &'a DeviceValue) -> BoxFuture<'a, Result<HostValue, Error>> {
        Box::pin(async move { Ok(HostValue::Tensor(tensor_of(v)?.to_host().map_err(err)?)) })
    }
}
