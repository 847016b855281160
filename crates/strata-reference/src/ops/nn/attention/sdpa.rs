//! `Attention` (opsets 23-25): scaled dot-product attention with 3-D or
//! 4-D inputs, grouped-query heads, boolean or additive masks, a KV cache
//! (`past_key`/`past_value` or `nonpad_kv_seqlen`), bottom-right causal and
//! sliding-window masking, soft capping and the `qk_matmul_output` debug
//! output.
//!
//! Intermediate results are rounded to the input type at the same points as
//! the spec's reference implementation, so half-precision inputs match it.

use strata_ir::DType;

use super::{Bhsd, float_type_code, head_count, nan_max, qkv, softmax_row};
use crate::bail;
use crate::error::KResult;
use crate::ops::Args;
use crate::util::check_numel;
use crate::value::{Tensor, Value};

/// The attention attributes (decoded in the IR).
pub use strata_ir::ops::nn::AttentionAttrs as Params;

/// The attention mask as an additive bias, with its shape left-padded to
/// rank 4 for broadcasting against `(batch, q_heads, q_seq, kv_seq)`.
struct MaskBias {
    shape: [usize; 4],
    /// `0`/`-inf` for a boolean mask, the values of a float mask.
    bias: Vec<f64>,
}

impl MaskBias {
    fn new(m: &Tensor, target: [usize; 4]) -> KResult<MaskBias> {
        if m.rank() == 0 || m.rank() > 4 {
            bail!("attn_mask must have rank 1 to 4, got shape {:?}", m.shape);
        }
        let bias: Vec<f64> = if m.dtype == DType::Bool {
            m.b()?.iter().map(|&keep| if keep { 0.0 } else { f64::NEG_INFINITY }).collect()
        } else if m.dtype.is_float() {
            m.f()?.to_vec()
        } else {
            bail!("attn_mask must be bool or floating-point, got {}", m.dtype);
        };
        let mut shape = [1usize; 4];
        shape[4 - m.rank()..].copy_from_slice(&m.shape);
        for axis in 0..3 {
            if shape[axis] != 1 && shape[axis] != target[axis] {
                bail!("attn_mask shape {:?} does not broadcast to {target:?}", m.shape);
            }
        }
        // A shorter last axis is padded with masked (-inf) positions.
        if shape[3] > target[3] {
            bail!("attn_mask shape {:?} has more keys than the total sequence length {}", m.shape, target[3]);
        }
        Ok(MaskBias { shape, bias })
    }

    /// The mask's bias for query `i` of head `h` in batch `b` against key `j`.
    fn at(&self, b: usize, h: usize, i: usize, j: usize) -> f64 {
        if j >= self.shape[3] {
            return f64::NEG_INFINITY;
        }
        let pick = |x: usize, n: usize| if n == 1 { 0 } else { x };
        let [s0, s1, s2, s3] = self.shape;
        let flat = ((pick(b, s0) * s1 + pick(h, s1)) * s2 + pick(i, s2)) * s3 + j;
        self.bias[flat]
    }
}

/// Run `Attention`; outputs are `Y, present_key, present_value, qk_matmul_output`.
pub fn attention(p: &Params, args: &Args) -> KResult<Vec<Value>> {
    let q = args.tensor(0)?;
    let k = args.tensor(1)?;
    let v = args.tensor(2)?;
    let mask = args.opt_tensor(3)?;
    let past_key = args.opt_tensor(4)?;
    let past_value = args.opt_tensor(5)?;
    let nonpad = args.opt_tensor(6)?;

    let t1 = q.dtype;
    let rank = q.rank();
    if k.rank() != rank || v.rank() != rank {
        bail!("Q, K and V must have the same rank, got {}, {} and {}", rank, k.rank(), v.rank());
    }
    let (q_heads, kv_heads) = match rank {
        3 => (Some(head_count(p.q_num_heads, "q_num_heads")?), Some(head_count(p.kv_num_heads, "kv_num_heads")?)),
        4 => (None, None),
        r => bail!("Q, K and V must have rank 3 or 4, got rank {r}"),
    };
    let (q4, k4, v4, group) = qkv(q, k, v, q_heads, kv_heads)?;

    // The KV cache: internal (past_* concatenated with K/V) or external.
    let (past_len, keys, values) = match (past_key, past_value) {
        (Some(pk), Some(pv)) => {
            if nonpad.is_some() {
                bail!("nonpad_kv_seqlen cannot be combined with past_key/past_value");
            }
            if pk.rank() != 4 || pv.rank() != 4 {
                bail!("past_key and past_value must have rank 4");
            }
            let pk4 = Bhsd::from_tensor(pk, None, "past_key")?;
            let pv4 = Bhsd::from_tensor(pv, None, "past_value")?;
            if pk4.s != pv4.s {
                bail!("past_key and past_value sequence lengths differ ({} vs {})", pk4.s, pv4.s);
            }
            (pk4.s, pk4.concat_seq(&k4, "past_key")?, pv4.concat_seq(&v4, "past_value")?)
        }
        (None, None) => (0, k4, v4),
        _ => bail!("past_key and past_value must be given together"),
    };
    let nonpad: Option<Vec<i64>> = match nonpad {
        Some(t) => {
            if t.dtype != DType::I64 || t.numel() != q4.b {
                bail!("nonpad_kv_seqlen must be int64 of shape ({},), got {} {:?}", q4.b, t.dtype, t.shape);
            }
            Some(t.to_i64()?)
        }
        None => None,
    };

    let (batch, hq, sq, kv) = (q4.b, q4.h, q4.s, keys.s);
    let dv = values.d;
    check_numel(&[batch, hq, sq, kv])?;
    check_numel(&[batch, hq, sq, dv])?;
    let mask = match mask {
        Some(m) => Some(MaskBias::new(m, [batch, hq, sq, kv])?),
        None => None,
    };
    let softmax_type = match p.softmax_precision {
        Some(code) => float_type_code(code, "softmax_precision")?,
        None => t1,
    };
    if !(0..=3).contains(&p.qk_matmul_output_mode) {
        bail!("qk_matmul_output_mode must be 0, 1, 2 or 3, got {}", p.qk_matmul_output_mode);
    }
    if p.left_window_size < -1 || p.right_window_size < -1 {
        bail!("window sizes must be -1 or nonnegative");
    }

    let r = |x: f64| t1.round_float(x);
    // Q and K are each scaled by sqrt(scale) (rounded to the input type).
    let scale = match p.scale {
        Some(s) => f64::from(s),
        None => 1.0 / libm::sqrt(q4.d as f64),
    };
    let sqrt_scale = r(libm::sqrt(scale));
    let qs: Vec<f64> = q4.v.iter().map(|&x| r(x * sqrt_scale)).collect();
    let ks: Vec<f64> = keys.v.iter().map(|&x| r(x * sqrt_scale)).collect();

    // Number of valid keys before the query block, per batch (may be negative).
    let offset = |b: usize| -> i128 {
        match &nonpad {
            Some(n) if past_key.is_none() => i128::from(n[b]) - sq as i128,
            _ => past_len as i128,
        }
    };
    // The additive bias of every (query, key) pair: mask, causal frontier,
    // sliding window and padding, summed in that order.
    let bias_at = |b: usize, h: usize, i: usize, j: usize| -> f64 {
        let mut bias = mask.as_ref().map_or(0.0, |m| m.at(b, h, i, j));
        let pos = i as i128 + offset(b);
        let (j, dist) = (j as i128, pos - j as i128);
        if p.is_causal && j > pos {
            bias += f64::NEG_INFINITY;
        }
        let (left, right) = (i128::from(p.left_window_size), i128::from(p.right_window_size));
        if (left >= 0 && dist > left) || (right >= 0 && -dist > right) {
            bias += f64::NEG_INFINITY;
        }
        if let Some(n) = &nonpad
            && j >= i128::from(n[b])
        {
            bias += f64::NEG_INFINITY;
        }
        bias
    };

    let mut y = vec![0.0; batch * hq * sq * dv];
    let mut qk_out = vec![0.0; batch * hq * sq * kv];
    for b in 0..batch {
        for h in 0..hq {
            let hk = h / group;
            for i in 0..sq {
                let qrow = q4.idx(b, h, i, 0);
                let mut raw = Vec::with_capacity(kv);
                for j in 0..kv {
                    let krow = keys.idx(b, hk, j, 0);
                    let mut acc = 0.0;
                    for d in 0..q4.d {
                        acc += qs[qrow + d] * ks[krow + d];
                    }
                    raw.push(r(acc));
                }
                let capped: Vec<f64> = if p.softcap > 0.0 {
                    let c = f64::from(p.softcap);
                    raw.iter().map(|&x| r(r(libm::tanh(r(x / c))) * c)).collect()
                } else {
                    raw.clone()
                };
                let bias: Vec<f64> = (0..kv).map(|j| bias_at(b, h, i, j)).collect();
                let with_bias: Vec<f64> = capped.iter().zip(&bias).map(|(&x, &m)| r(x + m)).collect();
                let logits: Vec<f64> = with_bias.iter().map(|&x| softmax_type.round_float(x)).collect();
                let mut probs = softmax_row(&logits, softmax_type, true);
                // A query whose every key is masked by the bias outputs zeros.
                if nan_max(&bias) == f64::NEG_INFINITY {
                    probs.iter_mut().for_each(|x| *x = 0.0);
                }
                let probs: Vec<f64> = probs.into_iter().map(r).collect();

                let exposed = match p.qk_matmul_output_mode {
                    0 => &raw,
                    1 => &capped,
                    2 => &with_bias,
                    _ => &probs,
                };
                let out_row = ((b * hq + h) * sq + i) * kv;
                qk_out[out_row..out_row + kv].copy_from_slice(exposed);

                for e in 0..dv {
                    let mut acc = 0.0;
                    for (j, &pj) in probs.iter().enumerate() {
                        acc += pj * values.at(b, hk, j, e);
                    }
                    y[((b * hq + h) * sq + i) * dv + e] = acc;
                }
            }
        }
    }

    let y4 = Bhsd { b: batch, h: hq, s: sq, d: dv, v: y };
    let y_tensor = if rank == 3 {
        Tensor::from_f(t1, vec![batch, sq, hq * dv], y4.packed())?
    } else {
        Tensor::from_f(t1, y4.shape(), y4.v)?
    };
    Ok(vec![
        Value::Tensor(y_tensor),
        Value::Tensor(Tensor::from_f(k.dtype, keys.shape(), keys.v)?),
        Value::Tensor(Tensor::from_f(v.dtype, values.shape(), values.v)?),
        Value::Tensor(Tensor::from_f(t1, vec![batch, hq, sq, kv], qk_out)?),
    ])
}
