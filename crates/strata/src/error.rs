//! The facade's error type.

/// Any error from loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model could not be loaded.
    #[error("cannot load model: {0}")]
    Load(String),
    /// The model is not valid IR.
    #[error(transparent)]
    Ir(#[from] strata_ir::IrError),
    /// Inputs given to `run` do not match the model.
    #[error("invalid input: {0}")]
    Input(String),
    /// A backend failed (the message names the node when there is one).
    #[error("{0}")]
    Backend(String),
    /// Strict placement was requested and some node has no backend.
    #[error("strict placement: {0}")]
    Placement(String),
    /// An I/O error.
    #[error("{0}")]
    Io(String),
}
