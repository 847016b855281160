//! Errors of the burn backend.

/// Why the burn backend cannot compile or run something.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BurnError {
    /// Not supported by this backend (placement falls back elsewhere).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A value could not be moved in or out (type, shape, data).
    #[error("{0}")]
    Tensor(String),
    /// A step failed at a named node (shapes, attributes).
    #[error("node '{node}' ({op}): {message}")]
    Node { node: String, op: String, message: String },
    /// burn panicked while running a named node.
    #[error("node '{node}' ({op}): burn panicked: {message}")]
    Panicked { node: String, op: String, message: String },
}

pub type Result<T, E = BurnError> = std::result::Result<T, E>;
