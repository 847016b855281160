//! ONNX importer for Strata.
//!
//! Owns everything ONNX-file-specific: the protobuf message structs (written
//! here as `prost` derives carrying the specification's field numbers), the
//! registry that maps ONNX operators and opset versions to IR operators,
//! external data, sparse tensors, model-local functions, and the decoding of
//! ONNX test-data files. It produces [`strata_ir::Model`]; runtime-only
//! builds do not link it.

pub mod convert;
pub mod error;
pub mod import;
pub mod proto;
pub mod registry;

pub use convert::{decode_tensor, decode_value, tensor_from_proto};
pub use error::OnnxError;
pub use import::{import_bytes, import_path};
