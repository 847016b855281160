//! `LinearAttention` (opset 27): recurrent linear attention over packed
//! `(batch, time, heads * size)` inputs, run token by token.
//!
//! Per key/value head the state `S` (`d_k x d_v`) evolves as
//! - `linear`:      `S = S + k ⊗ v`
//! - `gated`:       `S = exp(g) * S + k ⊗ v`
//! - `delta`:       `S = S + k ⊗ beta * (v - Sᵀk)`
//! - `gated_delta`: `S = exp(g) * S`, then as `delta`
//!
//! and each query head of the group reads `o = scale * qᵀS`.

use super::{Bhsd, floats};
use crate::bail;
use crate::error::KResult;
use crate::ops::Args;
use crate::util::check_numel;
use crate::value::{Tensor, Value};

/// Run `LinearAttention`; outputs are `output, present_state`.
pub fn linear_attention(
    q_num_heads: i64,
    kv_num_heads: i64,
    scale: f32,
    update_rule: strata_ir::ops::nn::LinearUpdate,
    args: &Args,
) -> KResult<Vec<Value>> {
    let (gating, delta) = update_rule.gating_and_delta();
    if q_num_heads <= 0 || kv_num_heads <= 0 || q_num_heads % kv_num_heads != 0 {
        bail!("q_num_heads ({q_num_heads}) must be a positive multiple of kv_num_heads ({kv_num_heads})");
    }
    let (hq, hkv) = (q_num_heads as usize, kv_num_heads as usize);
    let group = hq / hkv;

    let (query, key, value) = (args.tensor(0)?, args.tensor(1)?, args.tensor(2)?);
    let past = args.opt_tensor(3)?;
    let decay = args.opt_tensor(4)?;
    let beta = args.opt_tensor(5)?;
    for (name, t) in [("query", query), ("key", key), ("value", value)] {
        if t.rank() != 3 {
            bail!("{name} must have rank 3 (batch, time, heads * size), got {:?}", t.shape);
        }
    }
    match (gating, decay.is_some()) {
        (true, false) => bail!("update_rule '{update_rule}' requires the decay input"),
        (false, true) => bail!("update_rule '{update_rule}' does not take a decay input"),
        _ => {}
    }
    match (delta, beta.is_some()) {
        (true, false) => bail!("update_rule '{update_rule}' requires the beta input"),
        (false, true) => bail!("update_rule '{update_rule}' does not take a beta input"),
        _ => {}
    }
    let q4 = Bhsd::from_tensor(query, Some(hq), "query")?;
    let k4 = Bhsd::from_tensor(key, Some(hkv), "key")?;
    let v4 = Bhsd::from_tensor(value, Some(hkv), "value")?;
    let (batch, time, dk, dv) = (q4.b, q4.s, q4.d, v4.d);
    if (k4.b, k4.s, k4.d) != (batch, time, dk) || (v4.b, v4.s) != (batch, time) {
        bail!(
            "query {:?}, key {:?} and value {:?} do not agree in batch, time and key size",
            query.shape,
            key.shape,
            value.shape
        );
    }
    let state_shape = vec![batch, hkv, dk, dv];
    check_numel(&state_shape)?;

    // decay: per-head (last dim hkv) or per-key-dimension (last dim hkv * dk).
    let decay_v = match decay {
        Some(t) => {
            let per_dim = t.shape.len() == 3 && t.shape[2] == hkv * dk;
            let per_head = t.shape.len() == 3 && t.shape[2] == hkv;
            if t.shape.len() != 3 || t.shape[0] != batch || t.shape[1] != time || !(per_dim || per_head) {
                bail!(
                    "decay must have shape [{batch}, {time}, {hkv}] or [{batch}, {time}, {}], got {:?}",
                    hkv * dk,
                    t.shape
                );
            }
            Some((floats(t, "decay")?, t.shape[2]))
        }
        None => None,
    };
    // beta: per-head (last dim hkv) or shared (last dim 1).
    let beta_v = match beta {
        Some(t) => {
            if t.shape.len() != 3
                || t.shape[0] != batch
                || t.shape[1] != time
                || !(t.shape[2] == hkv || t.shape[2] == 1)
            {
                bail!("beta must have shape [{batch}, {time}, {hkv}] or [{batch}, {time}, 1], got {:?}", t.shape);
            }
            Some((floats(t, "beta")?, t.shape[2]))
        }
        None => None,
    };
    let (mut state, state_type) = match past {
        Some(p) => {
            if p.shape != state_shape {
                bail!("past_state must have shape {state_shape:?}, got {:?}", p.shape);
            }
            (floats(p, "past_state")?.to_vec(), p.dtype)
        }
        None => (vec![0.0; batch * hkv * dk * dv], query.dtype),
    };
    let scale = if scale == 0.0 { 1.0 / libm::sqrt(dk as f64) } else { f64::from(scale) };

    let mut out = Bhsd { b: batch, h: hq, s: time, d: dv, v: vec![0.0; batch * hq * time * dv] };
    for b in 0..batch {
        for hk in 0..hkv {
            // This head's state, S[d][m] at s0 + d * dv + m.
            let s0 = (b * hkv + hk) * dk * dv;
            for t in 0..time {
                if let Some((g, last)) = decay_v {
                    for d in 0..dk {
                        let gi = (b * time + t) * last + if last == hkv { hk } else { hk * dk + d };
                        let factor = libm::exp(g[gi]);
                        for m in 0..dv {
                            state[s0 + d * dv + m] *= factor;
                        }
                    }
                }
                // The value written into the state for this token.
                let mut write: Vec<f64> = (0..dv).map(|m| v4.at(b, hk, t, m)).collect();
                if let Some((beta, last)) = beta_v {
                    let bt = beta[(b * time + t) * last + if last == 1 { 0 } else { hk }];
                    for (m, w) in write.iter_mut().enumerate() {
                        let mut retrieved = 0.0;
                        for d in 0..dk {
                            retrieved += state[s0 + d * dv + m] * k4.at(b, hk, t, d);
                        }
                        *w = bt * (*w - retrieved);
                    }
                }
                for d in 0..dk {
                    let kd = k4.at(b, hk, t, d);
                    for (m, w) in write.iter().enumerate() {
                        state[s0 + d * dv + m] += kd * w;
                    }
                }
                for h in hk * group..(hk + 1) * group {
                    for m in 0..dv {
                        let mut acc = 0.0;
                        for d in 0..dk {
                            acc += q4.at(b, h, t, d) * state[s0 + d * dv + m];
                        }
                        let o = out.idx(b, h, t, m);
                        out.v[o] = scale * acc;
                    }
                }
            }
        }
    }
    Ok(vec![
        Value::Tensor(Tensor::from_f(query.dtype, vec![batch, time, hq * dv], out.packed())?),
        Value::Tensor(Tensor::from_f(state_type, state_shape, state)?),
    ])
}
