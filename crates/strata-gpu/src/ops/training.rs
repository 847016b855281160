//! The optimisers of the `ai.onnx.preview.training` domain on the GPU
//! (`optimizer` of `math.wgsl`): Adagrad, Adam and Momentum (standard and
//! Nesterov), element-wise over each group of tensors. The learning rate
//! and step count are read on the host, which folds them (decay, bias
//! correction, the first step's gradient coefficient) into one rate.

use super::*;
use crate::wgsl::wgsl_params;
use strata_ir::ops::nn::MomentumMode;

wgsl_params! {
    /// `math.wgsl`'s `optimizer` over `n` elements: optimiser `kind` (0
    /// Adagrad, 1 Adam, 2 Momentum, 3 Nesterov momentum), the output group
    /// it writes (`which`: 0 the new X, 1 and 2 the new state), the folded
    /// rate `r` and the attributes.
    pub(crate) struct OptimizerParams {
        n: u32, kind: u32, which: u32, r: f32, epsilon: f32, norm: f32, norm_post: f32, alpha: f32, beta: f32,
    }
}

/// How an optimiser runs: one `optimizer` dispatch per output tensor.
#[derive(Debug)]
pub(crate) struct Plan {
    k: Kernel,
    op: NnOp,
    /// Input groups (X, G and one or two states).
    kinds: usize,
}

/// Plan Adagrad, Adam or Momentum: float tensors, R and T read on the host.
pub(super) fn plan(v: &NodeView, op: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    let kinds = match op {
        NnOp::Adagrad { .. } | NnOp::Momentum { .. } => 3,
        NnOp::Adam { .. } => 4,
        other => return not_implemented(other.name()),
    };
    v.host(0, "R")?;
    v.host(1, "T")?;
    let rest = v.n.inputs.len().saturating_sub(2);
    if rest == 0 || !rest.is_multiple_of(kinds) {
        return Err(format!("{} needs {kinds} equal groups of tensors after R and T", op.name()));
    }
    for i in 2..v.n.inputs.len() {
        v.float(i)?;
    }
    Ok(Plan { k: k.get(Shader::Math, "optimizer", &[]), op: op.clone(), kinds })
}

impl Exec<'_> {
    pub(super) fn optimizer(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let scalar = |i: usize| match self.host(i) {
            Some(t) if t.numel() == 1 => Ok(t.to_f64_vec()[0]),
            _ => Err(GpuError::Shape(format!("input {i} (R or T) must be a scalar known on the host"))),
        };
        let (r, t) = (scalar(0)?, scalar(1)? as i64);
        let mut p = OptimizerParams::default();
        // The rate folded on the host in f64, as the reference does.
        match &plan.op {
            NnOp::Adagrad { decay_factor, epsilon, norm_coefficient } => {
                p.kind = 0;
                p.r = (r / (1.0 + t as f64 * f64::from(*decay_factor))) as f32;
                (p.epsilon, p.norm) = (*epsilon, *norm_coefficient);
            }
            NnOp::Adam { alpha, beta, epsilon, norm_coefficient, norm_coefficient_post } => {
                p.kind = 1;
                let (a, b) = (f64::from(*alpha), f64::from(*beta));
                let r = if t > 0 { r * (1.0 - b.powf(t as f64)).sqrt() / (1.0 - a.powf(t as f64)) } else { r };
                p.r = r as f32;
                (p.epsilon, p.norm, p.norm_post, p.alpha, p.beta) =
                    (*epsilon, *norm_coefficient, *norm_coefficient_post, *alpha, *beta);
            }
            NnOp::Momentum { alpha, beta, mode, norm_coefficient } => {
                p.kind = if *mode == MomentumMode::Nesterov { 3 } else { 2 };
                p.r = r as f32;
                // The gradient's coefficient is 1 on the first step.
                (p.alpha, p.beta, p.norm) = (*alpha, if t > 0 { *beta } else { 1.0 }, *norm_coefficient);
            }
            other => return Err(GpuError::Unsupported(format!("{} is not an optimiser", other.name()))),
        }
        let n = (self.n.inputs.len() - 2) / plan.kinds;
        let group = |kind: usize, i: usize| self.input(2 + kind * n + i);
        let mut outs: Vec<Vec<GpuTensor>> = vec![Vec::with_capacity(n); plan.kinds - 1];
        for i in 0..n {
            let ins: Vec<&GpuTensor> = (0..plan.kinds).map(|kind| group(kind, i)).collect::<Result<_>>()?;
            if ins.iter().any(|t| t.shape != ins[0].shape) {
                return Err(GpuError::Shape(format!("tensor {i} has different shapes in different groups")));
            }
            // Bindings a (X), b (G), c (first state), d (second state; X again when there is none).
            let bound = [ins[0], ins[1], ins[2], *ins.get(3).unwrap_or(&ins[0])];
            for (which, out) in outs.iter_mut().enumerate() {
                // Output group `which` updates input group 0 (X) or `which + 1` (a state).
                let like = if which == 0 { ins[0] } else { ins[which + 1] };
                let y = ctx.alloc(like.dtype, like.shape.clone())?;
                let len = y.numel();
                let q = OptimizerParams { n: len, which, ..p.clone() };
                ctx.dispatch_n(&plan.k, &q.words()?, &y, &bound, len)?;
                out.push(y);
            }
        }
        Ok(outs.into_iter().flatten().collect())
    }
}
