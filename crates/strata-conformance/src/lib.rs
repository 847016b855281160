//! Conformance suites for Strata.
//!
//! Owns the suites (`onnx-node`: the ONNX backend node cases; `onnx-models`:
//! real pretrained models with onnxruntime's outputs), how they are found on
//! disk, the comparison rules (and the per-operator tolerance policy used
//! when bringing up a backend), running a case on a chosen backend, and the
//! per-backend expectation manifests (which cases are known to fail, and why).

pub mod compare;
pub mod error;
pub mod expectations;
pub mod runner;
pub mod suite;
pub mod tolerance;

pub use compare::{Tolerance, compare_values};
pub use error::{Error, Result};
pub use expectations::Expectations;
pub use runner::{Check, Ran, check, run_cases};
pub use suite::{Case, CaseResult, Outcome, SuiteKind, data_root, load_suite, op_of_case, run_case};
pub use tolerance::{Comparison, Rule, compare_with_rule, node_rule, rule_for};
