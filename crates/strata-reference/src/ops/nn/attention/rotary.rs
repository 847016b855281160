//! `RotaryEmbedding` (opset 23): rotary positional embeddings (RoPE).
//!
//! The first `rotary_embedding_dim` values of every head are split into
//! pairs `(x1, x2)` (the two halves, or even/odd elements when interleaved)
//! and rotated by the position's angle:
//! `(cos * x1 - sin * x2, sin * x1 + cos * x2)`. The rest is copied.

use super::{Bhsd, floats, head_count};
use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, one};
use crate::value::Tensor;
use crate::value::Value;

/// Run `RotaryEmbedding`; the single output has the input's shape.
pub fn rotary_embedding(
    interleaved: bool,
    num_heads: Option<i64>,
    rotary_embedding_dim: i64,
    args: &Args,
) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let cos = args.tensor(1)?;
    let sin = args.tensor(2)?;
    let position_ids = args.opt_tensor(3)?;
    let dt = x.dtype;
    // Work on (batch, heads, seq, head_size) whatever the input layout.
    let heads = match x.rank() {
        3 => Some(head_count(num_heads, "num_heads")?),
        4 => None,
        r => bail!("input must have rank 3 or 4, got rank {r}"),
    };
    let mut x4 = Bhsd::from_tensor(x, heads, "input")?;
    let rot = match rotary_embedding_dim {
        0 => x4.d,
        n if n > 0 && n as usize <= x4.d && n % 2 == 0 => n as usize,
        n => bail!("rotary_embedding_dim {n} must be even and at most the head size {}", x4.d),
    };
    if rot % 2 != 0 {
        bail!("the rotated size {rot} must be even");
    }
    let half = rot / 2;
    let (cos_v, sin_v) = (floats(cos, "cos_cache")?, floats(sin, "sin_cache")?);
    if cos.shape != sin.shape {
        bail!("cos_cache {:?} and sin_cache {:?} must have the same shape", cos.shape, sin.shape);
    }
    if cos.shape.last() != Some(&half) {
        bail!("the last dimension of cos_cache/sin_cache {:?} must be rotary_embedding_dim / 2 = {half}", cos.shape);
    }
    let (batch, seq) = (x4.b, x4.s);
    // For each (batch, position) the offset of its row in the caches.
    let mut cache_row = Vec::with_capacity(batch * seq);
    match position_ids {
        Some(p) => {
            if p.shape != [batch, seq] {
                bail!("position_ids must have shape [{batch}, {seq}], got {:?}", p.shape);
            }
            if cos.rank() != 2 {
                bail!("with position_ids, cos_cache/sin_cache must be 2-D, got {:?}", cos.shape);
            }
            let max_pos = cos.shape[0];
            for id in p.to_i64()? {
                if id < 0 || id as u64 >= max_pos as u64 {
                    bail!("position id {id} is out of range for a cache of {max_pos} positions");
                }
                cache_row.push(id as usize * half);
            }
        }
        None => {
            if cos.shape != [batch, seq, half] {
                bail!(
                    "without position_ids, cos_cache/sin_cache must have shape [{batch}, {seq}, {half}], got {:?}",
                    cos.shape
                );
            }
            cache_row.extend((0..batch * seq).map(|n| n * half));
        }
    }

    let r = |v: f64| dt.round_float(v);
    for b in 0..batch {
        for h in 0..x4.h {
            for s in 0..seq {
                let row = cache_row[b * seq + s];
                let base = x4.idx(b, h, s, 0);
                for i in 0..half {
                    // Positions of the pair within the head.
                    let (p1, p2) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
                    let (x1, x2) = (x4.v[base + p1], x4.v[base + p2]);
                    let (c, s_) = (cos_v[row + i], sin_v[row + i]);
                    x4.v[base + p1] = r(r(c * x1) - r(s_ * x2));
                    x4.v[base + p2] = r(r(s_ * x1) + r(c * x2));
                }
            }
        }
    }
    let out = if x.rank() == 3 { x4.packed() } else { x4.v };
    one(Tensor::from_f(dt, x.shape.clone(), out)?)
}
