//! `Einsum` on the GPU (`einsum.wgsl`): the equation, parsed at import,
//! is resolved against the operand shapes by the IR
//! (`strata_ir::einsum::Equation::resolve`: index variables and
//! per-operand steps); one generic contraction kernel sums the products.

use strata_ir::einsum::Equation;

use super::*;
use crate::kernels::MAX_RANK;
use crate::wgsl::wgsl_params;

wgsl_params! {
    /// `einsum.wgsl`: `n` outputs; the output variables' sizes
    /// (`n_out_vars` of them) and the summed variables' (`n_sum_vars`);
    /// operand k's steps for the output variables at `out_steps[8 k ..]`
    /// and for the summed ones at `sum_steps[8 k ..]`.
    pub(crate) struct EinsumParams {
        n: u32, n_out_vars: u32, n_sum_vars: u32, n_operands: u32,
        out_sizes: [u32; 8], sum_sizes: [u32; 8], out_steps: [u32; 32], sum_steps: [u32; 32],
    }
}

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
        let mut out_steps = vec![0; MAX_RANK * MAX_OPERANDS];
        let mut sum_steps = vec![0; MAX_RANK * MAX_OPERANDS];
        for (k, step) in c.steps.iter().enumerate() {
            for (j, &v) in out_vars.iter().enumerate() {
                out_steps[MAX_RANK * k + j] = step[v];
            }
            for (j, &v) in sum_vars.iter().enumerate() {
                sum_steps[MAX_RANK * k + j] = step[v];
            }
        }
        let y = ctx.alloc(inputs[0].dtype, out_shape.clone())?;
        let n = y.numel();
        let p = EinsumParams {
            n,
            n_out_vars: out_vars.len(),
            n_sum_vars: sum_vars.len(),
            n_operands: c.steps.len(),
            out_sizes: out_shape,
            sum_sizes: sum_vars.iter().map(|&v| sizes[v]).collect(),
            out_steps,
            sum_steps,
        };
        let mut ins = inputs.clone();
        while ins.len() < MAX_OPERANDS {
            ins.push(inputs[0]);
        }
        ctx.dispatch_n(&plan.k, &p.words()?, &y, &ins, n)?;
        Ok(vec![y])
    }
}
