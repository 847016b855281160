//! Fused nodes ([`strata_ir::ops::FusedOp`]): the producer, then each step,
//! each run by its own reference kernel, exactly as the unfused nodes.

use strata_ir::Op;
use strata_ir::ops::FusedOp;
use strata_ir::ops::fused::Operand;

use super::{Args, Ctx, run};
use crate::error::{KResult, KernelError};
use crate::value::Value;

/// Run a fused node.
pub fn run_fused(f: &FusedOp, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    let p = f.producer_inputs as usize;
    let produced = match &f.producer {
        Some(op) => {
            let pargs = Args { vals: args.vals.iter().take(p).cloned().collect() };
            let mut outs = run(op, &pargs, ctx)?;
            if outs.is_empty() {
                return Err(KernelError::new(format!("fused producer {} gave no output", op.name())));
            }
            Some(outs.swap_remove(0))
        }
        None => None,
    };
    let mut results: Vec<Value> = Vec::with_capacity(f.steps.len());
    for (i, step) in f.steps.iter().enumerate() {
        let vals = step
            .args
            .iter()
            .map(|a| match *a {
                Operand::Producer => produced.clone(),
                Operand::Input(j) => args.vals.get(p + j as usize).cloned().flatten(),
                Operand::Step(j) => results.get(j as usize).cloned(),
                Operand::Absent => None,
            })
            .collect();
        let mut outs = run(&Op::Elementwise(step.op.clone()), &Args { vals }, ctx)
            .map_err(|e| KernelError::new(format!("fused step {i} ({}): {e}", step.op.name())))?;
        if outs.is_empty() {
            return Err(KernelError::new(format!("fused step {i} gave no output")));
        }
        results.push(outs.swap_remove(0));
    }
    results.pop().map(|v| vec![v]).ok_or_else(|| KernelError::new("a fused node without steps".to_string()))
}
