//! The recurrent and elementwise part of the attention-style operators on
//! f32: `LinearAttention` (a state per key/value head, carried token by
//! token), `CausalConvWithState` (a depthwise causal convolution carrying
//! its last inputs) and `SwiGLU`. The recurrences accumulate in f64 and
//! round once, as the reference does: they are small, and an f32 state
//! drifts over long sequences.

use strata_ir::ops::nn::LinearUpdate;

use super::{Bhsd, head_count, opt, outputs};
use crate::error::{Result, bail};
use crate::ops::{Ctx, Kernel, input};
use crate::tensor::CpuTensor;

// ----------------------------------------------------- LinearAttention

pub(super) struct LinearAttentionKernel {
    pub q_num_heads: i64,
    pub kv_num_heads: i64,
    pub scale: f32,
    pub update_rule: LinearUpdate,
    pub want: Vec<bool>,
}

/// A `[batch, time, last]` per-token side input (decay or beta) whose last
/// dimension must be one of `lasts`.
fn side_input<'t>(t: &'t CpuTensor, what: &str, batch: usize, time: usize, lasts: &[usize]) -> Result<&'t [f32]> {
    match t.shape[..] {
        [b, tt, last] if b == batch && tt == time && lasts.contains(&last) => t.as_f32(),
        _ => {
            let alts: Vec<String> = lasts.iter().map(|l| format!("[{batch}, {time}, {l}]")).collect();
            bail!("{what} must have shape {}, got {:?}", alts.join(" or "), t.shape)
        }
    }
}

impl Kernel for LinearAttentionKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (gating, delta) = self.update_rule.gating_and_delta();
        let (qn, kvn) = (self.q_num_heads, self.kv_num_heads);
        if qn <= 0 || kvn <= 0 || qn % kvn != 0 {
            bail!("q_num_heads ({qn}) must be a positive multiple of kv_num_heads ({kvn})");
        }
        let (hq, hkv) = (head_count(Some(qn), "q_num_heads")?, head_count(Some(kvn), "kv_num_heads")?);
        let group = hq / hkv;
        let (query, key, value) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let (past, decay, beta) = (opt(inputs, 3), opt(inputs, 4), opt(inputs, 5));
        for (name, t) in [("query", query), ("key", key), ("value", value)] {
            if t.shape.len() != 3 {
                bail!("{name} must have rank 3 (batch, time, heads * size), got {:?}", t.shape);
            }
        }
        let rule = self.update_rule;
        match (gating, decay.is_some()) {
            (true, false) => bail!("update_rule '{rule}' requires the decay input"),
            (false, true) => bail!("update_rule '{rule}' does not take a decay input"),
            _ => {}
        }
        match (delta, beta.is_some()) {
            (true, false) => bail!("update_rule '{rule}' requires the beta input"),
            (false, true) => bail!("update_rule '{rule}' does not take a beta input"),
            _ => {}
        }
        let q4 = Bhsd::of(&query.shape, Some(hq), "query")?;
        let k4 = Bhsd::of(&key.shape, Some(hkv), "key")?;
        let v4 = Bhsd::of(&value.shape, Some(hkv), "value")?;
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
        ctx.check_numel(&state_shape)?;
        ctx.check_numel(&[batch, time, hq, dv])?;
        let decay = match decay {
            Some(t) => Some((side_input(t, "decay", batch, time, &[hkv, hkv * dk])?, t.shape[2])),
            None => None,
        };
        let beta = match beta {
            Some(t) => Some((side_input(t, "beta", batch, time, &[hkv, 1])?, t.shape[2])),
            None => None,
        };
        let mut state: Vec<f64> = match past {
            Some(p) => {
                if p.shape != state_shape {
                    bail!("past_state must have shape {state_shape:?}, got {:?}", p.shape);
                }
                p.as_f32()?.iter().map(|&x| f64::from(x)).collect()
            }
            None => vec![0.0; batch * hkv * dk * dv],
        };
        let scale = if self.scale == 0.0 { 1.0 / (dk as f64).sqrt() } else { f64::from(self.scale) };
        let (qv, kv_, vv) = (query.as_f32()?, key.as_f32()?, value.as_f32()?);

        // One item per (batch, key/value head): its state and output rows.
        let chunk = dk * dv;
        let outs = std::sync::Mutex::new(vec![0.0f32; batch * time * hq * dv]);
        let work = (batch * hkv * time).saturating_mul(chunk).saturating_mul(3 + group);
        ctx.pool.for_each_chunk(&mut state, chunk.max(1), work, |item, st| {
            let (b, hk) = (item / hkv, item % hkv);
            let mut write = vec![0.0f64; dv];
            let mut o = vec![0.0f32; time * group * dv];
            for t in 0..time {
                let krow = &kv_[k4.row(b, hk, t)..][..dk];
                if let Some((g, last)) = decay {
                    for d in 0..dk {
                        let gi = (b * time + t) * last + if last == hkv { hk } else { hk * dk + d };
                        let factor = f64::from(g[gi]).exp();
                        st[d * dv..(d + 1) * dv].iter_mut().for_each(|s| *s *= factor);
                    }
                }
                let vrow = &vv[v4.row(b, hk, t)..][..dv];
                write.iter_mut().zip(vrow).for_each(|(w, &x)| *w = f64::from(x));
                if let Some((bt, last)) = beta {
                    let bt = f64::from(bt[(b * time + t) * last + if last == 1 { 0 } else { hk }]);
                    let mut retrieved = vec![0.0f64; dv];
                    for (d, &kd) in krow.iter().enumerate() {
                        let kd = f64::from(kd);
                        for (r, &s) in retrieved.iter_mut().zip(&st[d * dv..(d + 1) * dv]) {
                            *r += s * kd;
                        }
                    }
                    for (w, r) in write.iter_mut().zip(&retrieved) {
                        *w = bt * (*w - r);
                    }
                }
                for (d, &kd) in krow.iter().enumerate() {
                    let kd = f64::from(kd);
                    for (s, &w) in st[d * dv..(d + 1) * dv].iter_mut().zip(&write) {
                        *s += kd * w;
                    }
                }
                for gi in 0..group {
                    let qrow = &qv[q4.row(b, hk * group + gi, t)..][..dk];
                    let mut acc = vec![0.0f64; dv];
                    for (d, &qd) in qrow.iter().enumerate() {
                        let qd = f64::from(qd);
                        for (a, &s) in acc.iter_mut().zip(&st[d * dv..(d + 1) * dv]) {
                            *a += qd * s;
                        }
                    }
                    let orow = &mut o[(t * group + gi) * dv..][..dv];
                    orow.iter_mut().zip(&acc).for_each(|(x, &a)| *x = (scale * a) as f32);
                }
            }
            if let Ok(mut out) = outs.lock() {
                for t in 0..time {
                    for gi in 0..group {
                        let at = ((b * time + t) * hq + hk * group + gi) * dv;
                        out[at..at + dv].copy_from_slice(&o[(t * group + gi) * dv..][..dv]);
                    }
                }
            }
        });
        let out = outs.into_inner().unwrap_or_default();
        let present = state.iter().map(|&x| x as f32).collect();
        let made =
            vec![Some(CpuTensor::f32(vec![batch, time, hq * dv], out)), Some(CpuTensor::f32(state_shape, present))];
        Ok(outputs(&self.want, made))
    }
}

// ------------------------------------------------- CausalConvWithState

pub(super) struct CausalConvKernel {
    pub silu: bool,
}

impl Kernel for CausalConvKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (x, w) = (input(inputs, 0)?, input(inputs, 1)?);
        let (bias, past) = (opt(inputs, 2), opt(inputs, 3));
        let &[batch, channels, len] = &x.shape[..] else {
            bail!("input must have rank 3 (batch, channels, length), got {:?}", x.shape)
        };
        let k = match w.shape[..] {
            [c, 1, k] if c == channels && k >= 1 => k,
            _ => bail!("weight must have shape [{channels}, 1, k] with k >= 1, got {:?}", w.shape),
        };
        let bias = match bias {
            Some(b) if b.shape != [channels] => bail!("bias must have shape [{channels}], got {:?}", b.shape),
            Some(b) => Some(b.as_f32()?),
            None => None,
        };
        let past = match past {
            Some(p) if p.shape != [batch, channels, k - 1] => {
                bail!("past_state must have shape [{batch}, {channels}, {}], got {:?}", k - 1, p.shape)
            }
            Some(p) => Some(p.as_f32()?),
            None => None,
        };
        ctx.check_numel(&[batch, channels, k - 1])?;
        let (xv, wv) = (x.as_f32()?, w.as_f32()?);
        let silu = self.silu;
        let mut y = vec![0.0f32; batch * channels * len];
        let mut present = vec![0.0f32; batch * channels * (k - 1)];
        let work = y.len().saturating_mul(k);
        // One (batch, channel) sequence per item; its carried state after.
        let padded_of = |bc: usize| -> Vec<f32> {
            let mut padded = match past {
                Some(p) => p[bc * (k - 1)..(bc + 1) * (k - 1)].to_vec(),
                None => vec![0.0; k - 1],
            };
            padded.extend_from_slice(&xv[bc * len..(bc + 1) * len]);
            padded
        };
        ctx.pool.for_each_chunk(&mut y, len.max(1), work, |bc, out| {
            let c = bc % channels;
            let padded = padded_of(bc);
            let taps = &wv[c * k..(c + 1) * k];
            let b0 = bias.map_or(0.0, |b| f64::from(b[c]));
            for (l, o) in out.iter_mut().enumerate() {
                let acc: f64 = taps.iter().zip(&padded[l..l + k]).map(|(&t, &x)| f64::from(t) * f64::from(x)).sum();
                let v = (acc + b0) as f32;
                *o = if silu { v * crate::math::sigmoid(v) } else { v };
            }
        });
        if k > 1 {
            for (bc, st) in present.chunks_exact_mut(k - 1).enumerate() {
                st.copy_from_slice(&padded_of(bc)[len..]);
            }
        }
        Ok(vec![CpuTensor::f32(x.shape.clone(), y), CpuTensor::f32(vec![batch, channels, k - 1], present)])
    }
}

// -------------------------------------------------------------- SwiGLU

/// `Y = A · sigmoid(alpha · A) · B` for equal shapes.
pub(super) struct SwiGluKernel {
    pub alpha: f32,
}

impl Kernel for SwiGluKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        const CHUNK: usize = 4096;
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        if a.shape != b.shape {
            bail!("A {:?} and B {:?} must have identical shapes (no broadcasting)", a.shape, b.shape);
        }
        let (av, bv) = (a.as_f32()?, b.as_f32()?);
        let mut y = vec![0.0f32; av.len()];
        let alpha = self.alpha;
        let work = av.len().saturating_mul(16);
        ctx.pool.for_each_chunk(&mut y, CHUNK, work, |i, out| {
            let (xa, xb) = (&av[i * CHUNK..][..out.len()], &bv[i * CHUNK..][..out.len()]);
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for ((o, &x), &g) in out.iter_mut().zip(xa).zip(xb) {
                        *o = x * crate::math::sigmoid(alpha * x) * g;
                    }
                },
            )
        });
        Ok(vec![CpuTensor::f32(a.shape.clone(), y)])
    }
}
