//! Test-only helpers shared by Strata's test suites. This crate is never
//! published and is used only as a `[dev-dependencies]` entry.
//!
//! - [`onnx`]: ONNX models built from `strata-onnx`'s protobuf structs
//!   (value infos, nodes, whole models encoded to bytes, hand-encoded
//!   nested subgraphs, values to feed them).
//! - [`ir`]: IR models built directly ([`ir::Builder`], one-node models).
//! - [`harness`]: a model on a backend under test against the reference
//!   backend, under explicit tolerances ([`harness::check_against_reference`]).

pub mod harness;
pub mod ir;
pub mod onnx;
