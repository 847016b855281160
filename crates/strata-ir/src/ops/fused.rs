//! Fused operators: one node standing for a group of nodes that a backend
//! runs in one pass (made by [`crate::passes::fuse`], never by an importer).
//!
//! A fused node has an optional *producer* (any single-output operator,
//! typically Conv, Gemm or MatMul), whose inputs are the node's first
//! `producer_inputs` inputs, and a *program* of elementwise steps applied to
//! its output: each step is an IR elementwise operator with its attributes,
//! whose arguments are the producer's output, an earlier step's result or
//! one of the node's other inputs. The node's single output is the last
//! step's result, broadcast like the unfused nodes would have broadcast it.
//! Running the producer and then each step with the plain kernels gives
//! exactly the unfused result; that is what the reference backend does.

use serde::{Deserialize, Serialize};

use super::{ElementwiseOp, Op};

/// An argument of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operand {
    /// The producer's output.
    Producer,
    /// Input `producer_inputs + i` of the node.
    Input(u32),
    /// The result of step `i` (an earlier one).
    Step(u32),
    /// An omitted optional argument (e.g. Clip without `min`).
    Absent,
}

/// One elementwise operation of a fused program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub op: ElementwiseOp,
    pub args: Vec<Operand>,
}

/// A producer and an elementwise program on its output (see the module
/// documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedOp {
    pub producer: Option<Box<Op>>,
    /// How many of the node's inputs belong to the producer.
    pub producer_inputs: u32,
    /// The steps, in evaluation order; at least one.
    pub steps: Vec<Step>,
    /// Names of the nodes this one replaces, in graph order (for reports).
    pub members: Vec<String>,
}

impl FusedOp {
    /// Operator names of the group, joined by `+` (e.g. `Conv+Add+Clip`).
    pub fn kinds(&self) -> String {
        self.producer
            .iter()
            .map(|p| p.name())
            .chain(self.steps.iter().map(|s| s.op.name()))
            .collect::<Vec<_>>()
            .join("+")
    }

    /// Whether every operand names something that exists: the producer
    /// only if there is one, inputs within `inputs` (the node's input
    /// count), steps before the one reading them.
    pub fn check(&self, inputs: usize) -> Result<(), String> {
        if self.steps.is_empty() {
            return Err("a fused node needs at least one step".into());
        }
        let p = self.producer_inputs as usize;
        if p > inputs || (self.producer.is_none() && p != 0) {
            return Err(format!("fused node: {p} producer inputs of {inputs}"));
        }
        for (i, s) in self.steps.iter().enumerate() {
            for a in &s.args {
                let ok = match *a {
                    Operand::Producer => self.producer.is_some(),
                    Operand::Input(j) => p + (j as usize) < inputs,
                    Operand::Step(j) => (j as usize) < i,
                    Operand::Absent => true,
                };
                if !ok {
                    return Err(format!("fused node: step {i} ({}) reads {a:?}, which does not exist", s.op.name()));
                }
            }
        }
        Ok(())
    }
}
