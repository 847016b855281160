//! Strata: a portable ML inference runtime.
//!
//! This facade crate is the one public Rust API. It owns [`Session`] (load a
//! model, inspect its inputs and outputs, run it), the [`Backend`] trait that
//! every backend implements, backend selection and placement, and the
//! executor that runs a graph whose nodes are placed on different backends,
//! moving values across the boundaries asynchronously.
//!
//! ```
//! use strata::{Session, SessionOptions, Tensor, Value};
//! # fn main() -> Result<(), strata::Error> {
//! let session = Session::from_model(strata::examples::tiny_mlp(), SessionOptions::default())?;
//! let x = Tensor::from_f32(vec![1, 4], &[1.0, 2.0, 3.0, 4.0])?;
//! let out = session.run(&[("x", Value::Tensor(x))])?;
//! assert_eq!(out[0].0, "y");
//! # Ok(()) }
//! ```

mod backend;
#[cfg(any(feature = "burn", feature = "burn-wgpu"))]
mod burn;
mod control;
#[cfg(feature = "cpu")]
mod cpu;
mod error;
pub mod examples;
#[cfg(feature = "gpu")]
mod gpu;
pub mod npy;
mod options;
mod session;

pub use backend::{Backend, CompiledPartition, DeviceValue, ReferenceBackend, Support, block_on};
#[cfg(any(feature = "burn", feature = "burn-wgpu"))]
pub use burn::BurnAdapter;
#[cfg(feature = "burn")]
pub use burn::BurnBackendAdapter;
#[cfg(feature = "burn-wgpu")]
pub use burn::BurnWgpuBackendAdapter;
#[cfg(feature = "cpu")]
pub use cpu::CpuBackendAdapter;
pub use error::Error;
#[cfg(feature = "gpu")]
pub use gpu::GpuBackendAdapter;
pub use session::{
    FusedGroup, IoInfo, Placement, ProfileEntry, Session, SessionOptions, host_side_nodes, load_model_bytes,
};
/// Test-only: make the GPU backend's kernels corrupt one node's outputs (see
/// `strata_gpu::inject_fault`), for proving bring-up reports.
#[cfg(feature = "gpu")]
#[doc(hidden)]
pub use strata_gpu::inject_fault as inject_gpu_fault;
pub use strata_ir::{DType, Dim, HostValue as Value, Model, TensorData as Tensor, ValueType};

/// Re-export of the IR crate for tools that need the graph itself.
pub use strata_ir as ir;

/// The backend sessions use unless told otherwise: the optimised `cpu`
/// backend when it is built (the `cpu` feature, on by default), else the
/// `reference` backend. Nodes it cannot run fall back to the reference,
/// visibly in [`Session::placement`], unless `strict` is set.
pub const DEFAULT_BACKEND: &str = if cfg!(feature = "cpu") { "cpu" } else { "reference" };

/// Names of the backends this build knows: the default first, then the
/// reference (the oracle), then device backends.
pub fn backend_names() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "cpu") {
        names.push("cpu");
    }
    names.push("reference");
    if cfg!(feature = "gpu") {
        names.push("gpu");
    }
    if cfg!(feature = "burn") {
        names.push("burn");
    }
    if cfg!(feature = "burn-wgpu") {
        names.push("burn-wgpu");
    }
    names
}

/// Create a backend by its stable name, with default options.
pub fn create_backend(name: &str) -> Result<std::sync::Arc<dyn Backend>, Error> {
    create_backend_with(name, &SessionOptions::default())
}

/// Create a backend by its stable name, configured from session options
/// (thread count and resource limits).
pub fn create_backend_with(name: &str, options: &SessionOptions) -> Result<std::sync::Arc<dyn Backend>, Error> {
    let _ = options;
    match name {
        "reference" => Ok(std::sync::Arc::new(ReferenceBackend)),
        #[cfg(feature = "cpu")]
        "cpu" => Ok(std::sync::Arc::new(
            CpuBackendAdapter::new(options.threads, options.max_tensor_elements, options.max_memory_bytes)
                .with_profiling(options.profile)
                .with_optimize(options.optimize),
        )),
        #[cfg(not(feature = "cpu"))]
        "cpu" => Err(Error::Backend("backend 'cpu' is not in this build (enable the `cpu` feature)".into())),
        #[cfg(feature = "gpu")]
        "gpu" => Ok(std::sync::Arc::new(GpuBackendAdapter::new()?.with_optimize(options.optimize))),
        #[cfg(not(feature = "gpu"))]
        "gpu" => Err(Error::Backend("backend 'gpu' is not in this build (enable the `gpu` feature)".into())),
        #[cfg(feature = "burn")]
        "burn" => Ok(std::sync::Arc::new(BurnBackendAdapter::new("burn", false))),
        #[cfg(not(feature = "burn"))]
        "burn" => Err(Error::Backend("backend 'burn' is not in this build (enable the `burn` feature)".into())),
        #[cfg(feature = "burn-wgpu")]
        "burn-wgpu" => Ok(std::sync::Arc::new(BurnWgpuBackendAdapter::new("burn-wgpu", true))),
        #[cfg(not(feature = "burn-wgpu"))]
        "burn-wgpu" => {
            Err(Error::Backend("backend 'burn-wgpu' is not in this build (enable the `burn-wgpu` feature)".into()))
        }
        other => {
            Err(Error::Backend(format!("unknown backend '{other}' (known: reference, cpu, gpu, burn, burn-wgpu)")))
        }
    }
}
