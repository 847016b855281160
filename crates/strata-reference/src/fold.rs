//! Constant folding with reference kernels: the reference backend is the
//! [`strata_ir::passes::Evaluator`] used by the IR's folding passes.

use strata_ir::passes::Evaluator;
use strata_ir::{GraphId, Node, TensorData, ValueType};

use crate::error::{KResult, KernelError};
use crate::ops::{self, Args, Ctx};
use crate::value::{Tensor, Value};

/// Evaluates nodes on constant inputs with the reference kernels.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConstEvaluator;

struct FoldCtx<'a>(&'a Node);

impl Ctx for FoldCtx<'_> {
    fn n_outputs(&self) -> usize {
        self.0.outputs.len()
    }
    fn output_used(&self, i: usize) -> bool {
        matches!(self.0.outputs.get(i), Some(Some(_)))
    }
    fn run_subgraph(&self, _g: GraphId, _inputs: Vec<Value>) -> KResult<Vec<Value>> {
        Err(KernelError::new("subgraphs are not folded"))
    }
    fn subgraph_input_type(&self, _g: GraphId, _i: usize) -> Option<ValueType> {
        None
    }
    fn subgraph_output_type(&self, _g: GraphId, _i: usize) -> Option<ValueType> {
        None
    }
}

impl Evaluator for ConstEvaluator {
    fn eval(&self, node: &Node, inputs: &[Option<TensorData>]) -> Option<Vec<TensorData>> {
        let mut vals = Vec::with_capacity(inputs.len());
        for i in inputs {
            vals.push(match i {
                Some(t) => Some(Value::Tensor(Tensor::from_host(t).ok()?)),
                None => None,
            });
        }
        let outs = ops::run(&node.op, &Args { vals }, &FoldCtx(node)).ok()?;
        outs.iter().map(|v| v.tensor().ok()?.to_host().ok()).collect()
    }
}
