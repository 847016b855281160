//! The optimisers of the `ai.onnx.preview.training` domain: Adagrad, Adam
//! and Momentum (standard and Nesterov).
//!
//! Each takes the learning rate `R` and step count `T` (scalars), then `n`
//! tensors of each kind grouped by kind (all X, then all G, ...), and
//! returns the updated tensors grouped the same way (all X_new, then ...).
//! Every update is element-wise over tensors of equal shape.

use crate::bail;
use crate::error::KResult;
use crate::ops::Args;
use crate::value::{Tensor, Value};

/// The common inputs: learning rate, step count and the `kinds` groups of
/// `n` tensors (`groups[kind][i]`).
struct Inputs<'a> {
    r: f64,
    t: i64,
    groups: Vec<Vec<&'a Tensor>>,
}

fn inputs<'a>(args: &'a Args, kinds: usize, op: &str) -> KResult<Inputs<'a>> {
    let r = args.tensor(0)?.scalar_f64()?;
    let t = args.tensor(1)?.scalar_i64()?;
    let rest = args.len().saturating_sub(2);
    if rest == 0 || !rest.is_multiple_of(kinds) {
        bail!("{op} needs R, T and {kinds} groups of equally many tensors, got {} inputs", args.len());
    }
    let n = rest / kinds;
    let mut groups = Vec::with_capacity(kinds);
    for k in 0..kinds {
        let mut g = Vec::with_capacity(n);
        for i in 0..n {
            let t = args.tensor(2 + k * n + i)?;
            if t.f().is_err() {
                bail!("{op}: input {} must be a floating-point tensor, got {}", 2 + k * n + i, t.dtype);
            }
            g.push(t);
        }
        groups.push(g);
    }
    for i in 0..n {
        for g in &groups[1..] {
            if g[i].shape != groups[0][i].shape {
                bail!("{op}: tensor {i} has shapes {:?} and {:?} in different groups", groups[0][i].shape, g[i].shape);
            }
        }
    }
    Ok(Inputs { r, t, groups })
}

/// Apply `update` element-wise to tensor `i` of every group; it receives
/// the group values and returns the new values of the first `n_out` groups.
fn apply(inp: &Inputs, n_out: usize, update: impl Fn(&[f64]) -> Vec<f64>) -> KResult<Vec<Value>> {
    let n = inp.groups[0].len();
    let mut outs: Vec<Vec<Value>> = vec![Vec::with_capacity(n); n_out];
    for i in 0..n {
        let len = inp.groups[0][i].numel();
        let mut new = vec![Vec::with_capacity(len); n_out];
        for e in 0..len {
            let vals: Vec<f64> = inp.groups.iter().map(|g| g[i].f().map(|v| v[e])).collect::<Result<_, _>>()?;
            for (o, v) in new.iter_mut().zip(update(&vals)) {
                o.push(v);
            }
        }
        for (k, v) in new.into_iter().enumerate() {
            // Output group k updates input group k (skipping the gradients).
            let like = inp.groups[if k == 0 { 0 } else { k + 1 }][i];
            outs[k].push(Value::Tensor(Tensor::from_f(like.dtype, like.shape.clone(), v)?));
        }
    }
    Ok(outs.into_iter().flatten().collect())
}

/// Adagrad: inputs R, T, X..., G..., H...; outputs X_new..., H_new....
pub fn adagrad(args: &Args, decay_factor: f64, epsilon: f64, norm_coefficient: f64) -> KResult<Vec<Value>> {
    let inp = inputs(args, 3, "Adagrad")?;
    let r = inp.r / (1.0 + inp.t as f64 * decay_factor);
    apply(&inp, 2, |v| {
        let (x, g, h) = (v[0], v[1], v[2]);
        let g = norm_coefficient * x + g;
        let h_new = h + g * g;
        vec![x - r * g / (libm::sqrt(h_new) + epsilon), h_new]
    })
}

/// Adam: inputs R, T, X..., G..., V..., H...; outputs X_new..., V_new...,
/// H_new....
pub fn adam(
    args: &Args,
    alpha: f64,
    beta: f64,
    epsilon: f64,
    norm_coefficient: f64,
    norm_coefficient_post: f64,
) -> KResult<Vec<Value>> {
    let inp = inputs(args, 4, "Adam")?;
    // Bias correction of the moments from the second step on.
    let r = if inp.t > 0 {
        let t = inp.t as f64;
        inp.r * libm::sqrt(1.0 - libm::pow(beta, t)) / (1.0 - libm::pow(alpha, t))
    } else {
        inp.r
    };
    apply(&inp, 3, |v| {
        let (x, g, m, h) = (v[0], v[1], v[2], v[3]);
        let g = norm_coefficient * x + g;
        let m_new = alpha * m + (1.0 - alpha) * g;
        let h_new = beta * h + (1.0 - beta) * g * g;
        let x_new = x - r * m_new / (libm::sqrt(h_new) + epsilon);
        vec![(1.0 - norm_coefficient_post) * x_new, m_new, h_new]
    })
}

/// Momentum: inputs R, T, X..., G..., V...; outputs X_new..., V_new....
pub fn momentum(
    args: &Args,
    alpha: f64,
    beta: f64,
    mode: strata_ir::ops::nn::MomentumMode,
    norm_coefficient: f64,
) -> KResult<Vec<Value>> {
    let nesterov = mode == strata_ir::ops::nn::MomentumMode::Nesterov;
    let inp = inputs(args, 3, "Momentum")?;
    // The gradient's coefficient is 1 on the first step.
    let beta = if inp.t > 0 { beta } else { 1.0 };
    let r = inp.r;
    apply(&inp, 2, |v| {
        let (x, g, m) = (v[0], v[1], v[2]);
        let g = norm_coefficient * x + g;
        let m_new = alpha * m + beta * g;
        let x_new = if nesterov { x - r * (g + alpha * m_new) } else { x - r * m_new };
        vec![x_new, m_new]
    })
}
