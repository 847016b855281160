//! Test-only helpers shared by Strata's test suites. This crate is never
//! published and is used only as a `[dev-dependencies]` entry.
//!
//! - [`onnx`]: ONNX models built from `strata-onnx`'s protobuf structs
//!   (value infos, nodes, whole models encoded to bytes, hand-encoded
//!   nested subgraphs, values to feed them).

pub mod onnx;
