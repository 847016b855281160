//! The `gpu` backend: the facade's [`Backend`] implementation over
//! `strata-gpu` (enabled by the `gpu` cargo feature).
//!
//! One device is shared by every session of the process (pipelines and
//! pooled buffers are reused across sessions). Natively it is created on
//! first use; if no adapter exists, creating the backend fails with a clear
//! error. In browsers nothing may block, so the device is created by
//! awaiting [`GpuBackendAdapter::init`] before the session is built.

use std::sync::{Arc, OnceLock};

use strata_gpu::{GpuBackend, GpuError, GpuTensor};
use strata_ir::{GraphId, HostValue, Model, NodeId};

use crate::backend::{Backend, BoxFuture, CompiledPartition, DeviceValue, Support};
use crate::error::Error;

fn err(e: GpuError) -> Error {
    Error::Backend(format!("gpu: {e}"))
}

/// The process-wide GPU backend, or why there is none (set once).
static SHARED: OnceLock<Result<Arc<GpuBackend>, String>> = OnceLock::new();

fn unavailable(e: &str) -> Error {
    Error::Backend(format!("gpu backend unavailable: {e}"))
}

/// The process-wide GPU backend (created once; natively on first use).
fn shared() -> Result<Arc<GpuBackend>, Error> {
    #[cfg(not(target_family = "wasm"))]
    let r = SHARED.get_or_init(|| crate::backend::block_on(GpuBackend::new()).map(Arc::new).map_err(|e| e.to_string()));
    #[cfg(target_family = "wasm")]
    let r = SHARED.get().ok_or_else(|| {
        Error::Backend(
            "gpu backend not initialized: await GpuBackendAdapter::init() before creating the session".into(),
        )
    })?;
    r.clone().map_err(|e| unavailable(&e))
}

/// Adapts [`GpuBackend`] to the facade's [`Backend`] trait.
#[derive(Debug, Clone)]
pub struct GpuBackendAdapter {
    inner: Arc<GpuBackend>,
    optimize: bool,
}

impl GpuBackendAdapter {
    /// The shared GPU backend (creates the device on first use).
    pub fn new() -> Result<Self, Error> {
        Ok(GpuBackendAdapter { inner: shared()?, optimize: true })
    }

    /// Fold and fuse nodes when compiling ([`crate::SessionOptions::optimize`],
    /// on by default; see `strata_gpu::GpuBackend::optimized`).
    pub fn with_optimize(self, on: bool) -> Self {
        GpuBackendAdapter { optimize: on, ..self }
    }

    /// Create the shared device without blocking (required in browsers, where
    /// adapter and device requests resolve on the event loop; natively the
    /// same as [`GpuBackendAdapter::new`] but awaited). After it resolves,
    /// sessions naming the `gpu` backend use this device. A failure (no
    /// adapter, no WebGPU) is remembered and returned by later calls.
    pub async fn init() -> Result<Self, Error> {
        if SHARED.get().is_none() {
            let created = GpuBackend::new().await.map(Arc::new).map_err(|e| e.to_string());
            // Another caller may have finished first; keep whichever came first.
            let _ = SHARED.set(created);
        }
        Self::new()
    }

    /// Replace a lost device by a new one without blocking (browsers; natively
    /// a lost device is replaced when a partition is compiled again). Sessions
    /// must be created again afterwards.
    pub async fn recover(&self) -> Result<(), Error> {
        self.inner.recover().await.map_err(err)
    }

    /// True once the shared device was lost (recover, then create sessions again).
    pub fn is_lost(&self) -> bool {
        self.inner.device().is_lost()
    }

    /// Adapter name, API and device type, for diagnostics.
    pub fn adapter_info(&self) -> String {
        self.inner.device().adapter_info()
    }
}

struct GpuPartition {
    compiled: strata_gpu::CompiledGraph,
}

fn tensor_of(v: &DeviceValue) -> Result<&GpuTensor, Error> {
    v.payload
        .downcast_ref::<GpuTensor>()
        .ok_or_else(|| Error::Backend("gpu backend was given a foreign device value".into()))
}

impl CompiledPartition for GpuPartition {
    fn run<'a>(&'a self, inputs: Vec<&'a DeviceValue>) -> BoxFuture<'a, Result<Vec<DeviceValue>, Error>> {
        Box::pin(async move {
            let ins = inputs.iter().map(|v| tensor_of(v)).collect::<Result<Vec<_>, _>>()?;
            let outs = self.compiled.run(&ins).await.map_err(err)?;
            Ok(outs.into_iter().map(|t| DeviceValue { backend: "gpu".into(), payload: Box::new(t) }).collect())
        })
    }
    fn fused_groups(&self) -> Vec<(String, Vec<String>)> {
        self.compiled.fused_groups()
    }
}

impl Backend for GpuBackendAdapter {
    fn name(&self) -> &str {
        "gpu"
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        let (dispatches, submits) = strata_gpu::counters();
        vec![("dispatches", dispatches), ("submits", submits)]
    }
    fn supports(&self, model: &Model, graph: GraphId, node: NodeId) -> Support {
        match self.inner.supports(model, graph, node) {
            Ok(()) => Support::Yes,
            Err(r) => Support::No(r),
        }
    }
    fn compile(&self, model: Arc<Model>) -> Result<Box<dyn CompiledPartition>, Error> {
        let model = if self.optimize { GpuBackend::optimized(model) } else { model };
        Ok(Box::new(GpuPartition { compiled: self.inner.compile(model).map_err(err)? }))
    }
    fn upload(&self, v: &HostValue) -> Result<DeviceValue, Error> {
        let t = v
            .as_tensor()
            .ok_or_else(|| Error::Input(format!("the gpu backend holds tensors only, got {}", v.describe())))?;
        Ok(DeviceValue { backend: "gpu".into(), payload: Box::new(self.inner.upload(t).map_err(err)?) })
    }
    fn download<'a>(&'a self, v: &'a DeviceValue) -> BoxFuture<'a, Result<HostValue, Error>> {
        Box::pin(async move { Ok(HostValue::Tensor(self.inner.download(tensor_of(v)?).await.map_err(err)?)) })
    }
}
