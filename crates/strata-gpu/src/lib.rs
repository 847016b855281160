//! Strata's GPU backend on wgpu (Vulkan, Metal, DX12, WebGPU).
//!
//! This crate owns everything that runs IR nodes on a GPU: device and
//! adapter selection ([`GpuDevice`]), the buffer pool (freed buffers reused
//! by size class), the pipeline cache (keyed by shader, entry point and
//! override constants), the WGSL kernels (one file per family in the
//! top-level `shaders/` folder, embedded at build time), the support query
//! with reasons ([`GpuBackend::supports`]) and compiled partitions
//! ([`CompiledGraph`]). It sees only the IR and does not depend on the
//! `strata` facade (which wraps it as the `gpu` backend).
//!
//! Tensors on the device are arrays of 32-bit words: float32 as `f32`,
//! int32 as `i32`, int64 as `i32` (range-checked on upload, never silently
//! truncated), bool as `u32` 0/1. Shapes live on the host; kernels get them
//! as parameters, so one pipeline serves every shape.
//!
//! # Device loss
//!
//! wgpu reports a lost device through a callback (and validation or
//! out-of-memory errors through error scopes around each submit); from then
//! on runs and downloads on that device fail with [`GpuError::DeviceLost`].
//! Recovery: [`GpuBackend::compile`] and [`GpuBackend::upload`] replace a
//! lost device by a new one (natively; on the web await
//! [`GpuBackend::recover`] first), so compiling the partition again
//! re-creates its pipelines and re-uploads its weights from the
//! [`strata_ir::Model`] it keeps ([`CompiledGraph::model`]). Tensors of the
//! old device are rejected with `DeviceLost` and must be uploaded again.

mod device;
mod error;
mod graph;
mod kernels;
mod support;

use std::sync::{Arc, RwLock};

use strata_ir::{GraphId, Model, NodeId, TensorData};

pub use device::{GpuDevice, GpuTensor, gpu_dtype};
pub use error::{GpuError, Result};
pub use graph::CompiledGraph;
pub use kernels::Shader;

/// The GPU backend: a device (replaceable after a loss) and the operations
/// the facade needs.
#[derive(Debug)]
pub struct GpuBackend {
    device: RwLock<Arc<GpuDevice>>,
}

impl GpuBackend {
    /// Open the default adapter and create a device.
    pub async fn new() -> Result<GpuBackend> {
        Ok(GpuBackend { device: RwLock::new(Arc::new(GpuDevice::new().await?)) })
    }

    /// The current device.
    pub fn device(&self) -> Arc<GpuDevice> {
        self.device.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replace a lost device by a new one. Partitions compiled before must be
    /// compiled again and tensors uploaded again.
    pub async fn recover(&self) -> Result<()> {
        let d = Arc::new(GpuDevice::new().await?);
        *self.device.write().unwrap_or_else(|e| e.into_inner()) = d;
        Ok(())
    }

    /// The current device, replaced first if it was lost. Natively the new
    /// device is created synchronously; on the web (where nothing may block)
    /// this returns [`GpuError::DeviceLost`] and the caller awaits
    /// [`GpuBackend::recover`].
    fn live_device(&self) -> Result<Arc<GpuDevice>> {
        let d = self.device();
        if !d.is_lost() {
            return Ok(d);
        }
        #[cfg(not(target_family = "wasm"))]
        {
            pollster::block_on(self.recover())?;
            Ok(self.device())
        }
        #[cfg(target_family = "wasm")]
        {
            Err(GpuError::DeviceLost("the GPU device was lost; await GpuBackend::recover()".into()))
        }
    }

    /// `Ok(())` if node `node` of graph `graph` can run on the GPU, else the
    /// reason (operator, element type, attribute, non-constant shape input...).
    pub fn supports(&self, model: &Model, graph: GraphId, node: NodeId) -> std::result::Result<(), String> {
        support::check(model, graph, node, true).map(|_| ())
    }

    /// Compile a partition: pipelines are created and weights uploaded now.
    /// If the device was lost, a new one is created first (so compiling a
    /// partition again is how a session recovers, weights re-uploaded).
    pub fn compile(&self, model: Arc<Model>) -> Result<CompiledGraph> {
        CompiledGraph::new(self.live_device()?, model)
    }

    /// Copy a host tensor to the device (replacing a lost device first).
    pub fn upload(&self, t: &TensorData) -> Result<GpuTensor> {
        self.live_device()?.upload(t)
    }

    /// Copy a device tensor to the host (asynchronous readback).
    pub async fn download(&self, t: &GpuTensor) -> Result<TensorData> {
        self.device().download(t).await
    }
}

static DISPATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static SUBMITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn count_submit(dispatches: u64) {
    use std::sync::atomic::Ordering::Relaxed;
    DISPATCHES.fetch_add(dispatches, Relaxed);
    SUBMITS.fetch_add(1, Relaxed);
}

/// Process-wide totals since start: `(dispatches, queue submits)`, for
/// benchmarks (`strata bench` reports them per run).
pub fn counters() -> (u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    (DISPATCHES.load(Relaxed), SUBMITS.load(Relaxed))
}
