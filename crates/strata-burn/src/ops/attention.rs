//! `Attention` (opsets 23+): scaled dot-product attention from burn's
//! matmul, softmax and broadcast arithmetic — 3-D inputs split into heads,
//! grouped-query heads (each key/value head repeated for its query group),
//! the KV cache (`past_key`/`past_value` concatenated, or
//! `nonpad_kv_seqlen`), boolean or additive masks (a shorter key axis
//! padded with masked positions), bottom-right causal and sliding-window
//! masking (their 0/-inf bias worked out on the host from the geometry),
//! soft capping, rows whose every key is masked giving zeros, and the four
//! `qk_matmul_output` modes.

use burn_backend::tensor::FloatTensor;
use burn_backend::{Backend, Scalar, Shape, TensorData, TensorMetadata};
use strata_ir::DType;
use strata_ir::ops::NnOp as N;
use strata_ir::ops::nn::AttentionAttrs;

use super::{NodeInfo, Out, Unsupported, input};
use crate::tensor::{BOOL, BurnTensor, FLOAT, Prim};

/// A compiled Attention node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attention {
    p: AttentionAttrs,
}

/// Plan Attention (`None`: another operator).
pub(crate) fn plan(op: &N, info: &NodeInfo) -> Option<Result<Attention, Unsupported>> {
    let p = op.attention_attrs()?;
    let check = || -> Result<Attention, Unsupported> {
        for i in [0, 1, 2, 4, 5] {
            if info.has_input(i) && info.in_dtype(i) != Some(DType::F32) {
                return Err("Attention on non-float32 tensors".into());
            }
        }
        if !(0..=3).contains(&p.qk_matmul_output_mode) {
            return Err("qk_matmul_output_mode out of range".into());
        }
        info.require_held(&[])?;
        Ok(Attention { p })
    };
    Some(check())
}

/// `[b, s, heads·d]` (rank 3) or `[b, h, s, d]` as burn `[b, h, s, d]`.
fn heads<B: Backend>(t: &BurnTensor<B>, n: Option<i64>, what: &str) -> Result<(FloatTensor<B>, [usize; 4]), String> {
    match (t.shape.as_slice(), n) {
        ([b, s, hd], Some(h)) if h > 0 && hd % h as usize == 0 => {
            let h = h as usize;
            let d = hd / h;
            let p = B::float_permute(t.reshaped(&[*b, *s, h, d]), &[0, 2, 1, 3]);
            Ok((p, [*b, h, *s, d]))
        }
        ([b, h, s, d], _) => Ok((t.f()?, [*b, *h, *s, *d])),
        (s, _) => Err(format!("{what} of shape {s:?} (or head count missing)")),
    }
}

fn dims<B: Backend>(p: &FloatTensor<B>) -> Vec<usize> {
    p.shape().to_vec()
}

impl Attention {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Out<B> {
        let p = &self.p;
        let q_in = input(ins, 0)?;
        let rank = q_in.shape.len();
        let (q, [b, hq, sq, d]) = heads(q_in, p.q_num_heads, "Q")?;
        let (mut k, [kb, hk, _, kd]) = heads(input(ins, 1)?, p.kv_num_heads, "K")?;
        let (mut v, [vb, vh, _, dv]) = heads(input(ins, 2)?, p.kv_num_heads, "V")?;
        if kb != b || vb != b || vh != hk || kd != d || hk == 0 || hq % hk != 0 {
            return Err("Q, K and V do not agree in batch, heads or head size".into());
        }
        let (pk, pv) = (ins.get(4).copied().flatten(), ins.get(5).copied().flatten());
        let past = match (pk, pv) {
            (Some(pk), Some(pv)) => {
                let (pkp, ps) = heads(pk, None, "past_key")?;
                let (pvp, _) = heads(pv, None, "past_value")?;
                k = B::float_cat(vec![pkp, k], 2);
                v = B::float_cat(vec![pvp, v], 2);
                ps[2]
            }
            (None, None) => 0,
            _ => return Err("past_key and past_value must be given together".into()),
        };
        let nonpad = match ins.get(6).copied().flatten() {
            Some(t) if pk.is_some() => return Err(format!("nonpad_kv_seqlen {:?} with a past", t.shape)),
            Some(t) => Some(t.host_ints()?),
            None => None,
        };
        let kv = dims::<B>(&k)[2];
        let (present_k, present_v) = (k.clone(), v.clone());
        // Grouped-query: each key/value head serves `group` query heads in a row.
        let group = hq / hk;
        let repeat = |t: FloatTensor<B>, e: usize| {
            if group == 1 {
                return t;
            }
            let t = B::float_reshape(t, Shape::from(vec![b, hk, 1, kv, e]));
            let t = B::float_expand(t, Shape::from(vec![b, hk, group, kv, e]));
            B::float_reshape(t, Shape::from(vec![b, hq, kv, e]))
        };
        let (kx, vx) = (repeat(k, d), repeat(v, dv));
        let scale = p.scale.map_or(1.0 / (d as f64).sqrt(), f64::from);
        let s = Scalar::from(scale.sqrt() as f32);
        let raw = B::float_matmul(B::float_mul_scalar(q, s), B::float_swap_dims(B::float_mul_scalar(kx, s), 2, 3));
        let full = Shape::from(vec![b, hq, sq, kv]);
        let capped = if p.softcap > 0.0 {
            let c = Scalar::from(p.softcap);
            B::float_mul_scalar(B::float_tanh(B::float_div_scalar(raw.clone(), c)), c)
        } else {
            raw.clone()
        };
        // The additive bias: the mask, then causal/window/padding geometry.
        let mut bias = B::float_zeros(full.clone(), device, FLOAT);
        if let Some(m) = ins.get(3).copied().flatten() {
            let mr = m.shape.len();
            if mr == 0 || mr > 4 {
                return Err(format!("attn_mask of shape {:?}", m.shape));
            }
            let mut ms = vec![1usize; 4 - mr];
            ms.extend_from_slice(&m.shape);
            if ms[3] > kv || (0..3).any(|i| ms[i] != 1 && ms[i] != [b, hq, sq][i]) {
                return Err(format!("attn_mask {:?} does not fit {:?}", m.shape, [b, hq, sq, kv]));
            }
            let mb = match &m.prim {
                Prim::Bool(keep) => {
                    let zeros = B::float_zeros(Shape::from(m.shape.clone()), device, FLOAT);
                    let keep = B::bool_reshape(keep.clone(), Shape::from(m.shape.clone()));
                    B::float_mask_fill(zeros, B::bool_not(keep), Scalar::from(f32::NEG_INFINITY))
                }
                Prim::Float(f) => f.clone(),
                Prim::Int(_) => return Err("integer attn_mask".into()),
            };
            let mut mb = B::float_reshape(mb, Shape::from(ms.clone()));
            if ms[3] < kv {
                let pads = [(0, 0), (0, 0), (0, 0), (0, kv - ms[3])];
                mb = B::float_pad(mb, &pads, burn_backend::ops::PadMode::Constant(f32::NEG_INFINITY));
            }
            bias = B::float_add(bias, B::float_expand(mb, full.clone()));
        }
        let windowed = p.left_window_size >= 0 || p.right_window_size >= 0;
        if p.is_causal || windowed || nonpad.is_some() {
            let mut g = vec![0.0f32; b * sq * kv];
            for bi in 0..b {
                let offset = match &nonpad {
                    Some(n) => n[bi] - sq as i64,
                    None => past as i64,
                };
                for i in 0..sq {
                    let pos = i as i64 + offset;
                    for j in 0..kv {
                        let (jj, dist) = (j as i64, pos - j as i64);
                        let masked = (p.is_causal && jj > pos)
                            || (p.left_window_size >= 0 && dist > p.left_window_size)
                            || (p.right_window_size >= 0 && -dist > p.right_window_size)
                            || nonpad.as_ref().is_some_and(|n| jj >= n[bi]);
                        if masked {
                            g[(bi * sq + i) * kv + j] = f32::NEG_INFINITY;
                        }
                    }
                }
            }
            let gb = B::float_from_data(TensorData::new(g, vec![b, 1, sq, kv]), device);
            bias = B::float_add(bias, B::float_expand(gb, full.clone()));
        }
        let with_bias = B::float_add(capped.clone(), bias.clone());
        let mut probs = B::softmax(with_bias.clone(), 3);
        // Rows whose every key is masked give zeros.
        let dead = B::float_equal_elem(B::float_max_dim(bias, 3), Scalar::from(f32::NEG_INFINITY), BOOL);
        probs = B::float_mask_fill(probs, B::bool_expand(dead, full), Scalar::from(0.0f32));
        let y = B::float_matmul(probs.clone(), vx);
        let y = if rank == 3 {
            let t = B::float_permute(y, &[0, 2, 1, 3]);
            BurnTensor::<B>::new(vec![b, sq, hq, dv], t).with_shape(vec![b, sq, hq * dv])
        } else {
            BurnTensor::new(vec![b, hq, sq, dv], y)
        };
        let qk = match p.qk_matmul_output_mode {
            0 => raw,
            1 => capped,
            2 => with_bias,
            _ => probs,
        };
        Ok(vec![
            y,
            BurnTensor::new(vec![b, hk, kv, d], present_k),
            BurnTensor::new(vec![b, hk, kv, dv], present_v),
            BurnTensor::new(vec![b, hq, sq, kv], qk),
        ])
    }
}
