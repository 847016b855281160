//! Errors of the reference backend.

/// A kernel's failure (the interpreter adds the node and operator).
#[derive(Debug, Clone, PartialEq)]
pub struct KernelError(pub String);

impl KernelError {
    pub fn new(m: impl Into<String>) -> Self {
        KernelError(m.into())
    }
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An error running a graph on the reference backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// A node failed; names the node and operator.
    #[error("node '{node}' ({op}): {message}")]
    Node { node: String, op: String, message: String },
    /// The inputs do not match the graph.
    #[error("{0}")]
    Input(String),
}

/// Shorthand used by kernels.
pub type KResult<T> = Result<T, KernelError>;

/// Return early with a kernel error built from a format string.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::KernelError::new(format!($($arg)*))) };
}
