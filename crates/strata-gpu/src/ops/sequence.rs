//! `CausalConvWithState` (`sequence.wgsl`) and `LinearAttention`
//! (`linear_attention.wgsl`) on the GPU: operators carrying a state along
//! the sequence.

use super::*;
use crate::wgsl::wgsl_params;

wgsl_params! {
    /// `sequence.wgsl`'s `causal_conv`: `n_out` outputs (batch, `channels`,
    /// `len`), then `n_state` state values; `k` taps; flags 0 or 1.
    pub(crate) struct CausalConvParams {
        n_out: u32, n_state: u32, channels: u32, len: u32, k: u32, has_bias: u32, has_past: u32, silu: u32,
    }
}

/// How a sequence operator runs: one dispatch.
#[derive(Debug)]
pub(crate) enum Plan {
    /// `causal_conv`, with a SiLU activation or none.
    CausalConv { k: Kernel, silu: bool },
    /// `linear_attention` with the update rule's gating and delta terms.
    LinearAttention { k: Kernel, kv_num_heads: i64, q_num_heads: i64, scale: f32, gating: bool, delta: bool },
}

/// Plan CausalConvWithState or LinearAttention (float operands).
pub(super) fn plan(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match o {
        NnOp::CausalConvWithState { activation } => {
            for i in [0, 1, 2, 3] {
                if i < 2 || v.input(i).is_some() {
                    v.float(i)?;
                }
            }
            let silu = *activation == strata_ir::ops::nn::ConvStateActivation::Silu;
            Ok(Plan::CausalConv { k: k.get(Shader::Sequence, "causal_conv", &[]), silu })
        }
        NnOp::LinearAttention { kv_num_heads, q_num_heads, scale, update_rule, .. } => {
            for i in 0..6 {
                if i < 3 || v.input(i).is_some() {
                    v.float(i)?;
                }
            }
            let (gating, delta) = update_rule.gating_and_delta();
            Ok(Plan::LinearAttention {
                k: k.get(Shader::LinearAttention, "linear_attention", &[]),
                kv_num_heads: *kv_num_heads,
                q_num_heads: *q_num_heads,
                scale: *scale,
                gating,
                delta,
            })
        }
        other => not_implemented(other.name()),
    }
}

impl Exec<'_> {
    pub(super) fn sequence(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::CausalConv { k, silu } => self.causal_conv(ctx, k, *silu),
            Plan::LinearAttention { k, kv_num_heads, q_num_heads, scale, gating, delta } => {
                self.linear_attention(ctx, k, *kv_num_heads, *q_num_heads, *scale, *gating, *delta)
            }
        }
    }

    /// `CausalConvWithState`: outputs `output` and `present_state`.
    fn causal_conv(&self, ctx: &mut Ctx, kern: &Kernel, silu: bool) -> Result<Vec<GpuTensor>> {
        let (x, w) = (self.input(0)?, self.input(1)?);
        let (bias, past) = (self.opt_input(2), self.opt_input(3));
        let &[b, c, l] = x.shape.as_slice() else {
            return Err(GpuError::Shape(format!("input must be (batch, channels, length), got {:?}", x.shape)));
        };
        if w.shape.len() != 3 || w.shape[0] != c || w.shape[1] != 1 || w.shape[2] == 0 {
            return Err(GpuError::Shape(format!("weight must be [{c}, 1, k], got {:?}", w.shape)));
        }
        let k = w.shape[2];
        if bias.is_some_and(|t| t.shape != [c]) || past.is_some_and(|t| t.shape != [b, c, k - 1]) {
            return Err(GpuError::Shape("bias or past_state shape does not match".into()));
        }
        let y = ctx.alloc(x.dtype, x.shape.clone())?;
        let st = ctx.alloc(x.dtype, vec![b, c, k - 1])?;
        let (n_out, n_state) = (y.numel(), st.numel());
        let p = CausalConvParams {
            n_out,
            n_state,
            channels: c,
            len: l,
            k,
            has_bias: usize::from(bias.is_some()),
            has_past: usize::from(past.is_some()),
            silu: usize::from(silu),
        };
        ctx.dispatch_n(kern, &p.words()?, &y, &[&st, x, w, bias.unwrap_or(w), past.unwrap_or(w)], n_out + n_state)?;
        Ok(vec![y, st])
    }
}

impl Exec<'_> {
    /// `LinearAttention` (`linear_attention.wgsl`): outputs `output` and `present_state`.
    #[allow(clippy::too_many_arguments)]
    fn linear_attention(
        &self,
        ctx: &mut Ctx,
        kern: &Kernel,
        kv_num_heads: i64,
        q_num_heads: i64,
        scale: f32,
        gating: bool,
        delta: bool,
    ) -> Result<Vec<GpuTensor>> {
        if q_num_heads <= 0 || kv_num_heads <= 0 || q_num_heads % kv_num_heads != 0 {
            return Err(GpuError::Shape("q_num_heads must be a positive multiple of kv_num_heads".into()));
        }
        let (hq, hkv) = (q_num_heads as usize, kv_num_heads as usize);
        let (q, k, v) = (self.input(0)?, self.input(1)?, self.input(2)?);
        let (past, decay, beta) = (self.opt_input(3), self.opt_input(4), self.opt_input(5));
        if gating != decay.is_some() || delta != beta.is_some() {
            return Err(GpuError::Shape("the update rule does not match the decay/beta inputs".into()));
        }
        let (&[b, t, qh], &[kb, kt, kh], &[vb, vt, vh]) = (q.shape.as_slice(), k.shape.as_slice(), v.shape.as_slice())
        else {
            return Err(GpuError::Shape("query, key and value must have rank 3".into()));
        };
        if qh % hq != 0 || kh % hkv != 0 || vh % hkv != 0 || (kb, kt, vb, vt) != (b, t, b, t) || kh / hkv != qh / hq {
            return Err(GpuError::Shape(format!(
                "query {:?}, key {:?}, value {:?} do not agree",
                q.shape, k.shape, v.shape
            )));
        }
        let (dk, dv) = (qh / hq, vh / hkv);
        let glast = match decay {
            Some(g)
                if g.shape.len() == 3
                    && g.shape[0] == b
                    && g.shape[1] == t
                    && (g.shape[2] == hkv || g.shape[2] == hkv * dk) =>
            {
                g.shape[2]
            }
            Some(g) => return Err(GpuError::Shape(format!("decay shape {:?}", g.shape))),
            None => 0,
        };
        let blast = match beta {
            Some(x)
                if x.shape.len() == 3
                    && x.shape[0] == b
                    && x.shape[1] == t
                    && (x.shape[2] == hkv || x.shape[2] == 1) =>
            {
                x.shape[2]
            }
            Some(x) => return Err(GpuError::Shape(format!("beta shape {:?}", x.shape))),
            None => 0,
        };
        let sshape = vec![b, hkv, dk, dv];
        if past.is_some_and(|p| p.shape != sshape) {
            return Err(GpuError::Shape(format!("past_state must have shape {sshape:?}")));
        }
        let scale = if scale == 0.0 { 1.0 / (dk as f32).sqrt() } else { scale };
        let y = ctx.alloc(q.dtype, vec![b, t, hq * dv])?;
        let st = ctx.alloc(past.map_or(q.dtype, |p| p.dtype), sshape)?;
        let n = b * hkv * dv;
        let p = LinearAttentionParams {
            n,
            kv_heads: hkv,
            time: t,
            d_k: dk,
            d_v: dv,
            group: hq / hkv,
            decay_last: glast,
            beta_last: blast,
            has_past: usize::from(past.is_some()),
            scale,
            q_heads: hq,
        };
        ctx.dispatch_n(
            kern,
            &crate::wgsl::Params::words(&p)?,
            &y,
            &[&st, q, k, v, past.unwrap_or(q), decay.unwrap_or(q), beta.unwrap_or(q)],
            n,
        )?;
        Ok(vec![y, st])
    }
}

crate::wgsl::wgsl_params! {
    /// `linear_attention`: `n` (batch * kv_heads * d_v) state columns, over
    /// `time` steps, `group` query heads per KV head; the last dimension of
    /// decay and beta (0 = none), whether a past state is bound.
    pub(crate) struct LinearAttentionParams {
        n: u32, kv_heads: u32, time: u32, d_k: u32, d_v: u32, group: u32,
        decay_last: u32, beta_last: u32, has_past: u32, scale: f32, q_heads: u32,
    }
}
