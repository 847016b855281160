//! Strata's reference CPU backend.
//!
//! Owns a kernel for every operator of the IR, written in plain safe Rust
//! for obviousness, never for speed, and the interpreter that runs graphs
//! with them. Results are deterministic and bit-identical on every target:
//! floats are computed in `f64` (then rounded to their declared type) with
//! transcendental functions from the `libm` crate, and every reduction sums
//! in a fixed order. It is the oracle other backends are tested against.

#![forbid(unsafe_code)]

pub mod error;
pub mod fold;
pub mod interp;
pub mod ops;
pub mod util;
pub mod value;

pub use error::{KernelError, ReferenceError};
pub use fold::ConstEvaluator;
pub use interp::{Interpreter, Observer};
pub use value::{Data, Tensor, Value};

use strata_ir::{HostValue, Model};

/// Run a model's main graph on host values.
pub fn run_model(model: &Model, inputs: &[HostValue]) -> Result<Vec<HostValue>, ReferenceError> {
    let interp = Interpreter::new(model)?;
    let ins =
        inputs.iter().map(Value::from_host).collect::<Result<Vec<_>, _>>().map_err(|e| ReferenceError::Input(e.0))?;
    let outs = interp.run_graph(model.main, ins, vec![])?;
    outs.iter().map(|v| v.to_host().map_err(|e| ReferenceError::Input(e.0))).collect()
}
