//! `FlexAttention` (domain `ai.onnx.preview`): scaled dot-product attention
//! over rank-4 inputs whose scores and probabilities can be rewritten by the
//! `score_mod` and `prob_mod` subgraphs.
//!
//! Scores, softmax and the final product are computed in the softmax type
//! (`softmax_precision`, else float32 for inputs narrower than float32 and
//! the input type otherwise), with each step rounded to it.

use strata_ir::{DType, GraphId};

use super::{float_type_code, floats, qkv, softmax_row};
use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, Ctx, one};
use crate::util::check_numel;
use crate::value::{Tensor, Value};

/// Run `FlexAttention`; the single output is `Y`.
pub fn flex_attention(
    scale: Option<f32>,
    score_mod: Option<GraphId>,
    prob_mod: Option<GraphId>,
    softmax_precision: Option<i64>,
    args: &Args,
    ctx: &dyn Ctx,
) -> KResult<Vec<Value>> {
    let (q, k, v) = (args.tensor(0)?, args.tensor(1)?, args.tensor(2)?);
    if q.rank() != 4 || k.rank() != 4 || v.rank() != 4 {
        bail!("Q, K and V must have rank 4, got shapes {:?}, {:?} and {:?}", q.shape, k.shape, v.shape);
    }
    let (q4, k4, v4, group) = qkv(q, k, v, None, None)?;
    let (batch, hq, lq, skv, dv) = (q4.b, q4.h, q4.s, k4.s, v4.d);
    let score_shape = vec![batch, hq, lq, skv];
    check_numel(&score_shape)?;
    check_numel(&[batch, hq, lq, dv])?;

    let t = q.dtype;
    let st = match softmax_precision {
        Some(code) => float_type_code(code, "softmax_precision")?,
        None if t == DType::F64 => DType::F64,
        None => DType::F32,
    };
    let r = |x: f64| t.round_float(x);
    let rs = |x: f64| st.round_float(x);
    let f32r = |x: f64| DType::F32.round_float(x);

    // Q and K are each scaled by sqrt(scale), taken in float32 then rounded
    // to the input type.
    let scale = match scale {
        Some(s) => f64::from(s),
        None => 1.0 / libm::sqrt(q4.d as f64),
    };
    let sqrt_scale = r(f32r(libm::sqrt(f32r(scale))));
    let qs: Vec<f64> = q4.v.iter().map(|&x| r(x * sqrt_scale)).collect();
    let ks: Vec<f64> = k4.v.iter().map(|&x| r(x * sqrt_scale)).collect();

    let mut scores = Vec::with_capacity(batch * hq * lq * skv);
    for b in 0..batch {
        for h in 0..hq {
            for i in 0..lq {
                for j in 0..skv {
                    let (qrow, krow) = (q4.idx(b, h, i, 0), k4.idx(b, h / group, j, 0));
                    let mut acc = 0.0;
                    for d in 0..q4.d {
                        acc += qs[qrow + d] * ks[krow + d];
                    }
                    scores.push(rs(r(acc)));
                }
            }
        }
    }
    if let Some(g) = score_mod {
        scores = run_mod(ctx, g, "score_mod", st, &score_shape, scores)?;
    }
    let mut probs = Vec::with_capacity(scores.len());
    for row in scores.chunks(skv.max(1)) {
        probs.extend(softmax_row(row, st, false));
    }
    if let Some(g) = prob_mod {
        probs = run_mod(ctx, g, "prob_mod", st, &score_shape, probs)?;
    }

    let mut y = Vec::with_capacity(batch * hq * lq * dv);
    for b in 0..batch {
        for h in 0..hq {
            for i in 0..lq {
                let prow = ((b * hq + h) * lq + i) * skv;
                for e in 0..dv {
                    let mut acc = 0.0;
                    for j in 0..skv {
                        acc += probs[prow + j] * rs(v4.at(b, h / group, j, e));
                    }
                    y.push(rs(acc));
                }
            }
        }
    }
    one(Tensor::from_f(v.dtype, vec![batch, hq, lq, dv], y)?)
}

/// Run a modifier subgraph on a `(batch, heads, q_seq, kv_seq)` tensor of
/// type `st`; it must return one float tensor of the same shape.
fn run_mod(ctx: &dyn Ctx, g: GraphId, name: &str, st: DType, shape: &[usize], x: Vec<f64>) -> KResult<Vec<f64>> {
    let input = Tensor::from_f(st, shape.to_vec(), x)?;
    let outs = ctx.run_subgraph(g, vec![Value::Tensor(input)])?;
    if outs.len() != 1 {
        bail!("{name} must produce exactly one output, got {}", outs.len());
    }
    let out = outs[0].tensor()?;
    if out.shape != shape {
        bail!("{name} output shape {:?} differs from its input shape {shape:?}", out.shape);
    }
    Ok(floats(out, name)?.iter().map(|&x| st.round_float(x)).collect())
}
