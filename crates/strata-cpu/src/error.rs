//! Errors of the CPU backend.

/// Why the CPU backend cannot compile or run something.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CpuError {
    /// Not supported by this backend (placement falls back elsewhere).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A kernel failed on its inputs (shapes, indices, limits).
    #[error("{0}")]
    Kernel(String),
    /// A kernel failed at a named node.
    #[error("node '{node}' ({op}): {message}")]
    Node { node: String, op: String, message: String },
}

pub type Result<T, E = CpuError> = std::result::Result<T, E>;

/// Fail with a kernel error built from a format string.
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::error::CpuError::Kernel(format!($($t)*))) };
}
pub(crate) use bail;
