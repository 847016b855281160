//! Kernels, one module per op family (mirroring `strata_ir::ops`).

use strata_ir::{GraphId, Op};

use crate::error::{KResult, KernelError};
use crate::value::{Tensor, Value};

pub mod control;
pub mod elementwise;
pub mod fused;
pub mod ml;
pub mod nn;
pub mod quant;
pub mod random;
pub mod reduce;
pub mod signal;
pub mod tensor;
pub mod text;

/// A node's inputs by position (`None` where an optional input is omitted).
pub struct Args {
    pub vals: Vec<Option<Value>>,
}

impl Args {
    /// Number of positional inputs (including omitted ones).
    pub fn len(&self) -> usize {
        self.vals.len()
    }
    pub fn is_empty(&self) -> bool {
        self.vals.is_empty()
    }
    /// A required tensor input.
    pub fn tensor(&self, i: usize) -> KResult<&Tensor> {
        match self.vals.get(i) {
            Some(Some(v)) => v.tensor().map_err(|e| KernelError::new(format!("input {i}: {e}"))),
            _ => Err(KernelError::new(format!("missing required input {i}"))),
        }
    }
    /// An optional tensor input.
    pub fn opt_tensor(&self, i: usize) -> KResult<Option<&Tensor>> {
        match self.vals.get(i) {
            Some(Some(v)) => v.tensor().map(Some).map_err(|e| KernelError::new(format!("input {i}: {e}"))),
            _ => Ok(None),
        }
    }
    /// A required input of any kind.
    pub fn value(&self, i: usize) -> KResult<&Value> {
        match self.vals.get(i) {
            Some(Some(v)) => Ok(v),
            _ => Err(KernelError::new(format!("missing required input {i}"))),
        }
    }
    /// An optional input of any kind.
    pub fn opt_value(&self, i: usize) -> Option<&Value> {
        self.vals.get(i).and_then(|v| v.as_ref())
    }
    /// All present tensor inputs (variadic ops).
    pub fn tensors(&self) -> KResult<Vec<&Tensor>> {
        self.vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.as_ref().map(|v| v.tensor().map_err(|e| KernelError::new(format!("input {i}: {e}"))))
            })
            .collect()
    }
}

/// What a kernel can ask of the interpreter.
pub trait Ctx {
    /// Number of outputs the node declares (including omitted ones).
    fn n_outputs(&self) -> usize;
    /// Whether output `i` is used (not omitted).
    fn output_used(&self, i: usize) -> bool;
    /// Run a subgraph of this node with formal inputs; captured outer values
    /// are supplied by the interpreter.
    fn run_subgraph(&self, g: GraphId, inputs: Vec<Value>) -> KResult<Vec<Value>>;
    /// Declared type of a subgraph's formal input `i`.
    fn subgraph_input_type(&self, g: GraphId, i: usize) -> Option<strata_ir::ValueType>;
    /// Declared type of a subgraph's output `i`.
    fn subgraph_output_type(&self, g: GraphId, i: usize) -> Option<strata_ir::ValueType>;
}

/// A single-output result.
pub fn one(t: Tensor) -> KResult<Vec<Value>> {
    Ok(vec![Value::Tensor(t)])
}

/// Run one operator.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &Op, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    match op {
        Op::Elementwise(o) => elementwise::run(o, args, ctx),
        Op::Reduce(o) => reduce::run(o, args, ctx),
        Op::Nn(o) => nn::run(o, args, ctx),
        Op::Tensor(o) => tensor::run(o, args, ctx),
        Op::Quant(o) => quant::run(o, args, ctx),
        Op::Control(o) => control::run(o, args, ctx),
        Op::Text(o) => text::run(o, args, ctx),
        Op::Signal(o) => signal::run(o, args, ctx),
        Op::Ml(o) => ml::run(o, args, ctx),
        Op::Fused(f) => fused::run_fused(f, args, ctx),
        Op::Random(o) => random::run(o, args, ctx),
    }
}
