//! Errors of the IR crate.

/// An error raised while building, validating or (de)serialising IR.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IrError {
    /// A tensor's bytes, shape or type are inconsistent.
    #[error("invalid tensor: {0}")]
    Tensor(String),
    /// An attribute is missing, unknown or has the wrong type.
    #[error("node '{node}' ({op}): {message}")]
    Attribute { node: String, op: String, message: String },
    /// The graph is malformed (names a node or value).
    #[error("invalid graph: {0}")]
    Graph(String),
    /// Type or shape inference found a contradiction.
    #[error("node '{node}' ({op}): {message}")]
    Inference { node: String, op: String, message: String },
    /// A `.strata` artifact could not be read.
    #[error("invalid .strata artifact: {0}")]
    Artifact(String),
}
