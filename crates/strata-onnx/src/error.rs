//! Importer errors.

/// An error importing an ONNX model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The bytes are not a valid protobuf message.
    #[error("cannot decode ONNX protobuf: {0}")]
    Decode(String),
    /// The model is well-formed protobuf but not a valid model.
    #[error("invalid ONNX model: {0}")]
    Invalid(String),
    /// A node uses an operator, attribute, type or opset we do not support.
    #[error("node '{node}' (op '{op}', domain '{domain}', opset {opset}): {message}")]
    Node { node: String, op: String, domain: String, opset: i64, message: String },
    /// Something else we do not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Reading the file failed.
    #[error("{0}")]
    Io(String),
    /// The IR rejected the imported graph.
    #[error(transparent)]
    Ir(#[from] strata_ir::IrError),
}
