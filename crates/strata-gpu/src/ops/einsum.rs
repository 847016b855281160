//! `Einsum` on the GPU (`einsum.wgsl`): the equation, parsed at import,
//! is resolved against the operand shapes by the IR
//! (`strata_ir::einsum::Equation::resolve`: index variables and
//! per-operand steps); one generic contraction kernel sums the products.

use strata_ir::einsum::Equation;

use super::*;
use crate::kernels::MAX_RANK;
use crate::shape::{put, u32c};

/// How an Einsum runs: one `einsum` contraction; the equation (parsed at
/// import) is resolved against the operand shapes at run time.
#[derive(Debug)]
pub(crate) struct Plan {
    k: Kernel,
    equation: Equation,
}

/// Plan an Einsum of 1 to 4 float operands of one type.
pub(super) fn plan(v: &NodeView, equation: &Equation, k: &mut Kernels) -> std::result::Result<Plan, String> {
    let n = v.n.inputs.len();
    if n == 0 || n > MAX_OPERANDS {
        return Err(format!("Einsum of {n} operands (the GPU kernel takes 1 to 4)"));
    }
    let d = v.dt(0)?;
    for i in 0..n {
        v.float(i)?;
        if v.dt(i)? != d {
            return Err("Einsum operands differ in type".into());
        }
    }
    Ok(Plan { k: k.get(Shader::Einsum, "einsum", &[]), equation: equation.clone() })
}

/// Most operands and index variables the kernel takes.
const MAX_OPERANDS: usize = 4;

impl Exec<'_> {
    /// `Einsum` on up to four float operands.
    pub(super) fn einsum(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let equation = &plan.equation;
        let inputs: Vec<&GpuTensor> = (0..self.n.inputs.len()).map(|i| self.input(i)).collect::<Result<_>>()?;
        if inputs.is_empty() || inputs.len() > MAX_OPERANDS {
            return Err(GpuError::Unsupported(format!("Einsum of {} operands", inputs.len())));
        }
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| &t.shape[..]).collect();
        let c = equation.resolve(&shapes).map_err(GpuError::Shape)?;
        let (sizes, out_vars, sum_vars, out_shape) = (&c.sizes, &c.out_vars, &c.sum_vars, c.out_shape.clone());
        if out_vars.len() > MAX_RANK || sum_vars.len() > MAX_RANK {
            return Err(GpuError::Unsupported("Einsum with more than 8 output or summed indices".into()));
        }
        let mut p = vec![0u32; 20 + 16 * MAX_OPERANDS];
        for step in &c.steps {
            let k = p[3] as usize;
            let o: Vec<usize> = out_vars.iter().map(|&v| step[v]).collect();
            let s: Vec<usize> = sum_vars.iter().map(|&v| step[v]).collect();
            put(&mut p, 20 + 16 * k, &o)?;
            put(&mut p, 28 + 16 * k, &s)?;
            p[3] += 1;
        }
        let y = ctx.alloc(inputs[0].dtype, out_shape.clone())?;
        let n = y.numel();
        p[0] = u32c(n)?;
        p[1] = out_vars.len() as u32;
        p[2] = sum_vars.len() as u32;
        put(&mut p, 4, &out_shape)?;
        put(&mut p, 12, &sum_vars.iter().map(|&v| sizes[v]).collect::<Vec<_>>())?;
        let mut ins = inputs.clone();
        while ins.len() < MAX_OPERANDS {
            ins.push(inputs[0]);
        }
        ctx.dispatch_n(&plan.k, &p, &y, &ins, n)?;
        Ok(vec![y])
    }
}
