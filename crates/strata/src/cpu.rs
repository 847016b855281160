//! The `cpu` backend: the facade's [`Backend`] implementation over
//! `strata-cpu` (enabled by the `cpu` cargo feature, on by default).

use std::sync::Arc;

use strata_cpu::{CpuBackend, CpuError, CpuTensor};
use strata_ir::{GraphId, HostValue, Model, NodeId};

use crate::backend::{Backend, BoxFuture, CompiledPartition, DeviceValue, Support};
use crate::error::Error;

fn err(e: CpuError) -> Error {
    Error::Backend(format!("cpu: {e}"))
}

/// Adapts [`CpuBackend`] to the facade's [`Backend`] trait.
#[derive(Debug, Clone)]
pub struct CpuBackendAdapter {
    inner: CpuBackend,
}

impl CpuBackendAdapter {
    /// A CPU backend on `threads` threads (0: one per core) with the
    /// session's tensor and memory limits.
    pub fn new(threads: usize, max_tensor_elements: usize, max_memory_bytes: u64) -> Self {
        CpuBackendAdapter {
            inner: CpuBackend::new(threads)
                .with_max_elements(max_tensor_elements)
                .with_max_live_bytes(max_memory_bytes),
        }
    }

    /// Time every node of every run ([`crate::Session::profile`]).
    pub fn with_profiling(self, on: bool) -> Self {
        CpuBackendAdapter { inner: self.inner.with_profiling(on) }
    }

    /// Fuse nodes when compiling ([`crate::SessionOptions::optimize`]).
    pub fn with_optimize(self, on: bool) -> Self {
        CpuBackendAdapter { inner: self.inner.with_optimize(on) }
    }

    /// Threads the kernels use.
    pub fn threads(&self) -> usize {
        self.inner.threads()
    }
}

struct CpuPartition {
    compiled: strata_cpu::CompiledGraph,
}

fn tensor_of(v: &DeviceValue) -> Result<&CpuTensor, Error> {
    v.payload
        .downcast_ref::<CpuTensor>()
        .ok_or_else(|| Error::Backend("cpu backend was given a foreign device value".into()))
}

fn wrap(t: CpuTensor) -> DeviceValue {
    DeviceValue { backend: "cpu".into(), payload: Box::new(t) }
}

impl CompiledPartition for CpuPartition {
    fn run<'a>(&'a self, inputs: Vec<&'a DeviceValue>) -> BoxFuture<'a, Result<Vec<DeviceValue>, Error>> {
        Box::pin(async move {
            let ins = inputs.iter().map(|v| tensor_of(v)).collect::<Result<Vec<_>, _>>()?;
            Ok(self.compiled.run(&ins).map_err(err)?.into_iter().map(wrap).collect())
        })
    }
    fn profile(&self) -> Vec<(String, String, u64, u64)> {
        self.compiled.profile()
    }
    fn fused_groups(&self) -> Vec<(String, Vec<String>)> {
        self.compiled.fused_groups()
    }
}

impl Backend for CpuBackendAdapter {
    fn name(&self) -> &str {
        "cpu"
    }
    fn supports(&self, model: &Model, graph: GraphId, node: NodeId) -> Support {
        match self.inner.supports(model, graph, node) {
            Ok(()) => Support::Yes,
            Err(r) => Support::No(r),
        }
    }
    fn compile(&self, model: Arc<Model>) -> Result<Box<dyn CompiledPartition>, Error> {
        Ok(Box::new(CpuPartition { compiled: self.inner.compile(model).map_err(err)? }))
    }
    fn is_device(&self) -> bool {
        false
    }
    fn upload(&self, v: &HostValue) -> Result<DeviceValue, Error> {
        let t = v
            .as_tensor()
            .ok_or_else(|| Error::Input(format!("the cpu backend holds tensors only, got {}", v.describe())))?;
        Ok(wrap(CpuTensor::from_host(t).map_err(|e| Error::Input(format!("cpu: {e}")))?))
    }
    fn download<'a>(&'a self, v: &'a DeviceValue) -> BoxFuture<'a, Result<HostValue, Error>> {
        Box::pin(async move { Ok(HostValue::Tensor(tensor_of(v)?.to_host().map_err(err)?)) })
    }
}
