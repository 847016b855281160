//! Errors of the GPU backend.

/// Everything that can go wrong on the GPU backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No GPU adapter is available (no driver, or the browser has no WebGPU).
    #[error("no GPU adapter available: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("could not create a GPU device: {0}")]
    RequestDevice(String),
    /// The device was lost (driver reset, GPU removed, browser tab in the
    /// background...). Recover with [`crate::GpuBackend::recover`], which
    /// creates a new device; compiled partitions re-upload their weights.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// A tensor or dispatch would exceed a limit of the adapter.
    #[error("{0}")]
    Limit(String),
    /// The node, its types or its attributes are not supported.
    #[error("{0}")]
    Unsupported(String),
    /// A tensor value cannot be represented on the GPU (e.g. int64 out of i32 range).
    #[error("{0}")]
    Value(String),
    /// Shapes or inputs are inconsistent at run time.
    #[error("{0}")]
    Shape(String),
    /// wgpu reported a validation or out-of-memory error.
    #[error("GPU error: {0}")]
    Wgpu(String),
    /// Reading a buffer back failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, GpuError>;
