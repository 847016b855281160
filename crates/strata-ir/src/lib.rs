//! Strata's shared IR.
//!
//! Owns the representation every importer produces and every backend
//! consumes: element types ([`DType`]), host tensors ([`TensorData`]),
//! operators with typed attributes ([`ops::Op`]), graphs in arenas
//! ([`Model`], [`Graph`]), validation, and graph passes. It knows nothing of
//! protobuf, ONNX files or any device API, and builds for
//! `wasm32-unknown-unknown`.

pub mod artifact;
pub mod attr;
pub mod dtype;
pub mod einsum;
pub mod error;
pub mod graph;
pub mod infer;
pub mod ops;
pub mod passes;
pub mod resample;
pub mod shape;
pub mod tensor;
pub mod types;
pub mod value;
pub mod window;

pub use attr::{AttrReader, AttrValue};
pub use dtype::DType;
pub use error::IrError;
pub use graph::{Dim, Graph, GraphId, Model, Node, NodeId, Value, ValueId, ValueType};
pub use ops::Op;
pub use tensor::{Buffer, TensorData};
pub use value::HostValue;
