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
//! Operators live in one module per family (`src/ops/`: elementwise,
//! movement, matmul, conv, pool, norm, reduce, resize, attention,
//! recurrent, ...). A family's planning function is the only place that
//! decides whether a node runs here: it returns the node's typed plan (the
//! pipelines it dispatches, by name, and its decoded attributes) or the
//! reason it cannot run. The support query is that planning step without a
//! device; compiling is the same step with the device's pipelines; running
//! a node matches on its plan. Convolution and pooling geometry comes from
//! `strata_ir::window`, shared with the other backends.
//!
//! With optimisation on ([`GpuBackend::optimized`], which the facade runs
//! before compiling), groups of nodes made by `strata_ir::passes::fuse` run
//! as generated WGSL: the elementwise program of a group is one kernel, or
//! the epilogue of the convolution or matrix-product kernel producing its
//! input, so a group costs one dispatch (`src/ops/fused.rs`).
//!
//! Tensors on the device are arrays of 32-bit words, one per element, in
//! one of four storage classes ([`Word`], [`word_class`]): `f32` for
//! float32 and, widened, float16, bfloat16, the float8 kinds (e4m3fn,
//! e4m3fnuz, e5m2, e5m2fnuz, e8m0) and float4e2m1; `i32` for int32, the narrower
//! integers (int2 to int16, uint2 to uint16) and int64; `u32` for uint32
//! and uint64; `u32` 0/1 for bool. int64 and uint64 values are range-checked
//! into 32 bits on upload (an error names the first value that does not
//! fit, nothing is truncated silently); upload and download convert between
//! the host encoding and the words. Kernels compute in f32, i32 or u32; a
//! node that computes values (not data movement) of a narrower type is
//! followed by an in-place `narrow` dispatch that makes every stored word
//! exactly representable in the type: round to nearest even for the float
//! types (integer bit manipulation, so adapters without `shader-f16` work
//! alike; overflow to infinity, NaN or the largest value per the type, and
//! Cast's `saturate` for float8), two's-complement wrap-around for the
//! small integers (as numpy). Integer arithmetic (`integer.wgsl`) checks in
//! the kernel that int64 / uint64 results fit their 32-bit storage and that
//! no division is by zero, and the run fails with [`GpuError::Value`]
//! naming the node otherwise. Shapes live on the host; kernels get them as
//! parameters, so one pipeline serves every shape.
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

mod ctx;
mod device;
mod error;
mod graph;
mod kernels;
mod ops;
mod shape;
pub mod wgsl;

use std::sync::{Arc, RwLock};

use strata_ir::{GraphId, Model, NodeId, TensorData};

pub use device::{GpuDevice, GpuTensor, Word, gpu_dtype, word_class};
pub use error::{GpuError, Result};
pub use graph::CompiledGraph;
pub use kernels::Shader;
#[doc(hidden)]
pub use ops::fused::generate as fused_wgsl;

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
        ops::plan(model, graph, node, true, &mut ops::Kernels::new(None)).map(|_| ())
    }

    /// Most elementwise steps in one fused group.
    const MAX_FUSED_STEPS: usize = 16;

    /// The model to compile for `model` with optimisation on (the facade's
    /// `SessionOptions::optimize`): per-channel affine maps after a Conv
    /// (an inference BatchNormalization, Mul/Add/Sub by per-channel weights)
    /// folded into the Conv (`strata_ir::passes::fold_conv_affine`) and
    /// decomposed hard-sigmoid / hard-swish recognised
    /// (`strata_ir::passes::recognize_activations`, with GELU in its erf and
    /// tanh forms; results differ by
    /// rounding), then producers (Conv, ConvTranspose,
    /// MatMul, Gemm, and other float32 Nn / Reduce nodes) and the float32
    /// elementwise nodes after them, or elementwise chains, fused into one
    /// node each (`strata_ir::passes::fuse` with this backend's rules) that
    /// runs as one generated kernel (conv and matrix products: the program
    /// inside the producer's kernel) or the producer's and one more. A group
    /// binding more operands than a kernel may goes back to its nodes, which
    /// are fused again in shorter groups. The same model when nothing
    /// changes.
    pub fn optimized(model: Arc<Model>) -> Arc<Model> {
        let mut m = (*model).clone();
        let folded = strata_ir::passes::fold_conv_affine(&mut m) + strata_ir::passes::recognize_activations(&mut m);
        let fused = ops::fused::fuse(&mut m, Self::MAX_FUSED_STEPS);
        if fused + folded == 0 { model } else { Arc::new(m) }
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

static FAULT: RwLock<Option<String>> = RwLock::new(None);

/// Test-only hook for bring-up tools: from now on, partitions compiled with
/// a node named `node` corrupt that node's outputs on the device (the
/// in-place `narrow` kernel perturbs them in the same command stream), so a
/// migration report can be shown to name exactly that node. `None` turns it
/// off. Process-wide; never use it outside tests.
#[doc(hidden)]
pub fn inject_fault(node: Option<&str>) {
    *FAULT.write().unwrap_or_else(|e| e.into_inner()) = node.map(str::to_string);
}

pub(crate) fn fault_node() -> Option<String> {
    FAULT.read().unwrap_or_else(|e| e.into_inner()).clone()
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
