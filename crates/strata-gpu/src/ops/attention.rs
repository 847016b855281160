//! `Attention` (opsets 23-24) on the GPU: the host resolves layouts (3-D or
//! 4-D inputs, grouped-query heads, the KV cache, the mask's broadcast) and
//! `attention.wgsl` computes one query row per invocation. With
//! `past_key`/`past_value` the caches are concatenated with K and V into
//! `present_key`/`present_value` by strided copies first, and the scores
//! read those. Float masks of any float type are read as the f32 words
//! they are stored in.

use super::*;
use crate::shape::contiguous;
use crate::wgsl::{Params, wgsl_params};
use strata_ir::ops::nn::AttentionAttrs;

crate::wgsl::wgsl_codes! {
    /// `AttentionParams::mask_kind`: no mask, an additive float mask, or a
    /// boolean mask of the keys to keep.
    pub(crate) mod mask_kind: MASK { NONE = 0, ADDITIVE = 1, BOOL = 2 }

    /// `AttentionParams::qk_mode`: what the optional `qk_matmul_output`
    /// holds (Attention's `qk_matmul_output_mode` 0 to 3), or nothing.
    pub(crate) mod qk_output: QK { RAW = 0, CAPPED = 1, BIASED = 2, PROBABILITIES = 3, NONE = 4 }
}

wgsl_params! {
    /// `attention`: `rows` (batch * q_heads * q_seq) query rows over `kv`
    /// keys; head sizes `head_size` (Q, K) and `v_head_size`; `group` query
    /// heads per KV head; element strides (batch, head, position) of Q, K,
    /// V and Y. The mask: `mask_kind` (a [`mask_kind`] code), its strides
    /// (batch, head, query) and its length along the keys (shorter =
    /// masked). `sqrt_scale` scales Q and K; `softcap` 0 = off; windows -1
    /// = off; `qk_mode` a [`qk_output`] code.
    pub(crate) struct AttentionParams {
        rows: u32, q_heads: u32, q_seq: u32, kv: u32, head_size: u32, v_head_size: u32, group: u32,
        q_strides: [u32; 3], k_strides: [u32; 3], v_strides: [u32; 3], y_strides: [u32; 3],
        mask_kind: u32, mask_strides: [u32; 3], mask_len: u32,
        sqrt_scale: f32, softcap: f32, is_causal: u32, left_window: i32, right_window: i32,
        past_len: i32, has_nonpad: u32, qk_mode: u32,
    }
    /// `rotary`: `n` elements, `heads` heads of `head_size` over `seq`
    /// positions, the first `rotated` values of a head rotated; `three_d`:
    /// (batch, seq, heads * head_size) rather than (batch, heads, seq, head_size).
    pub(crate) struct RotaryParams {
        n: u32, heads: u32, seq: u32, head_size: u32, rotated: u32, interleaved: u32, three_d: u32, has_position_ids: u32,
    }
}

/// How an attention-family node runs.
#[derive(Debug)]
pub(crate) enum Plan {
    /// `Attention`, and `FlexAttention` without modifiers (plain scaled
    /// dot-product attention of 4-D inputs): caches concatenated by
    /// `copy`, then one `attend` dispatch.
    Attention { copy: Kernel, attend: Kernel, attrs: AttentionAttrs, flex: bool },
    /// `RotaryEmbedding` (`rotary.wgsl`).
    Rotary { k: Kernel, interleaved: bool, num_heads: Option<i64>, dim: i64 },
}

fn softmax_precision_ok(op: &str, p: Option<i64>) -> std::result::Result<(), String> {
    match p {
        Some(p) if !matches!(p, 1 | 11) => {
            Err(format!("{op} softmax_precision {p} (the GPU computes the softmax in float32)"))
        }
        _ => Ok(()),
    }
}

/// Plan `Attention`, `FlexAttention` or `RotaryEmbedding`.
pub(super) fn plan(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match o {
        NnOp::Attention { softmax_precision, .. } => {
            for i in 0..3 {
                v.float(i)?;
            }
            if v.dt(0)? == DType::BF16 {
                // The ONNX function rounds every step to bfloat16; the fused
                // kernel keeps f32 intermediates, a bfloat16 ulp apart.
                return Err("Attention in bfloat16 (the fused kernel keeps float32 intermediates)".into());
            }
            if v.input(3).is_some() {
                match v.dt(3)? {
                    DType::Bool => {}
                    d if is_float_word(d) => {}
                    d => return Err(format!("attn_mask of type {d}")),
                }
            }
            for i in [4, 5] {
                if v.input(i).is_some() {
                    v.float(i)?;
                }
            }
            if v.input(6).is_some() {
                v.int(6, "nonpad_kv_seqlen")?;
            }
            softmax_precision_ok("Attention", *softmax_precision)?;
            let attrs = o.attention_attrs().ok_or("Attention attributes")?;
            Ok(Plan::Attention {
                copy: k.copy(),
                attend: k.get(Shader::Attention, "attention", &[]),
                attrs,
                flex: false,
            })
        }
        NnOp::FlexAttention { score_mod, prob_mod, softmax_precision, .. } => {
            if score_mod.is_some() || prob_mod.is_some() {
                return Err("FlexAttention with score_mod/prob_mod subgraphs is not run on the GPU".into());
            }
            for i in 0..3 {
                v.float(i)?;
            }
            softmax_precision_ok("FlexAttention", *softmax_precision)?;
            let attrs = o.attention_attrs().ok_or("FlexAttention attributes")?;
            Ok(Plan::Attention {
                copy: k.copy(),
                attend: k.get(Shader::Attention, "attention", &[]),
                attrs,
                flex: true,
            })
        }
        NnOp::RotaryEmbedding { interleaved, num_heads, rotary_embedding_dim } => {
            for i in 0..3 {
                v.float(i)?;
            }
            if v.input(3).is_some() {
                v.int(3, "position_ids")?;
            }
            Ok(Plan::Rotary {
                k: k.get(Shader::Rotary, "rotary", &[]),
                interleaved: *interleaved != 0,
                num_heads: *num_heads,
                dim: *rotary_embedding_dim,
            })
        }
        other => not_implemented(other.name()),
    }
}

/// `(batch, heads, seq, size)` view of a Q/K/V-like tensor: sizes and the
/// strides of the first three axes (the size axis is contiguous).
struct Bhsd {
    b: usize,
    h: usize,
    s: usize,
    d: usize,
    st: [usize; 3],
}

impl Bhsd {
    fn new(t: &GpuTensor, heads: Option<i64>, what: &str) -> Result<Bhsd> {
        match t.shape.as_slice() {
            &[b, h, s, d] => Ok(Bhsd { b, h, s, d, st: [h * s * d, s * d, d] }),
            &[b, s, hidden] => {
                let h = match heads {
                    Some(h) if h > 0 => h as usize,
                    _ => return Err(GpuError::Shape(format!("{what}: 3-D input needs a positive head count"))),
                };
                if hidden % h != 0 {
                    return Err(GpuError::Shape(format!("{what}: {hidden} is not divisible by {h} heads")));
                }
                let d = hidden / h;
                Ok(Bhsd { b, h, s, d, st: [s * hidden, d, hidden] })
            }
            other => Err(GpuError::Shape(format!("{what} must have rank 3 or 4, got shape {other:?}"))),
        }
    }
}

impl Exec<'_> {
    pub(super) fn attention_family(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::Attention { copy, attend, attrs, flex } => {
                if *flex && self.input(0)?.shape.len() != 4 {
                    return Err(GpuError::Shape("FlexAttention inputs must have rank 4".into()));
                }
                self.attention(ctx, copy, attend, attrs)
            }
            Plan::Rotary { k, interleaved, num_heads, dim } => self.rotary(ctx, k, *interleaved, *num_heads, *dim),
        }
    }

    fn attention(&self, ctx: &mut Ctx, copy: &Kernel, attend: &Kernel, a: &AttentionAttrs) -> Result<Vec<GpuTensor>> {
        let (q, k, v) = (self.input(0)?, self.input(1)?, self.input(2)?);
        let rank = q.shape.len();
        if k.shape.len() != rank || v.shape.len() != rank {
            return Err(GpuError::Shape("Q, K and V must have the same rank".into()));
        }
        let q4 = Bhsd::new(q, a.q_num_heads, "Q")?;
        let k4 = Bhsd::new(k, a.kv_num_heads, "K")?;
        let v4 = Bhsd::new(v, a.kv_num_heads, "V")?;
        if k4.b != q4.b || v4.b != q4.b || k4.h != v4.h || k4.s != v4.s || k4.d != q4.d {
            return Err(GpuError::Shape(format!("Q {:?}, K {:?} and V {:?} do not agree", q.shape, k.shape, v.shape)));
        }
        if k4.h == 0 || q4.h % k4.h != 0 {
            return Err(GpuError::Shape("query heads must be a multiple of key/value heads".into()));
        }
        if !(0..=3).contains(&a.qk_matmul_output_mode) || a.left_window_size < -1 || a.right_window_size < -1 {
            return Err(GpuError::Shape("invalid qk_matmul_output_mode or window size".into()));
        }
        let mask = self.opt_input(3);
        let past = (self.opt_input(4), self.opt_input(5));
        let nonpad = self.opt_input(6);
        let want = |i: usize| self.wants(i);

        // Keys and values: K/V themselves, or the present caches.
        let (batch, hk) = (k4.b, k4.h);
        let (mut kst, mut vst) = (k4.st, v4.st);
        let mut kbuf = k.clone();
        let mut vbuf = v.clone();
        let mut past_len = 0usize;
        let mut outs_kv: Vec<GpuTensor> = Vec::new();
        match past {
            (Some(pk), Some(pv)) => {
                if nonpad.is_some() {
                    return Err(GpuError::Shape("nonpad_kv_seqlen cannot be combined with a past cache".into()));
                }
                if pk.shape.len() != 4 || pv.shape.len() != 4 || pk.shape[2] != pv.shape[2] {
                    return Err(GpuError::Shape("past_key and past_value must be rank 4 of equal length".into()));
                }
                past_len = pk.shape[2];
                for (cache, new, nb, which) in [(pk, k, &k4, 0), (pv, v, &v4, 1)] {
                    if cache.shape[0] != batch || cache.shape[1] != hk || cache.shape[3] != nb.d {
                        return Err(GpuError::Shape(format!(
                            "past cache {:?} does not match the new entries",
                            cache.shape
                        )));
                    }
                    let total = past_len + nb.s;
                    let shape = vec![batch, hk, total, nb.d];
                    let pres = ctx.alloc(DType::F32, shape.clone())?;
                    let os = contiguous(&shape);
                    let pshape = [batch, hk, past_len, nb.d];
                    let ps = contiguous(&pshape);
                    let is: Vec<i64> = ps.iter().map(|&x| x as i64).collect();
                    self.copy(ctx, copy, &pres, cache, &pshape, 0, &is, 0, &os)?;
                    let nshape = [batch, hk, nb.s, nb.d];
                    let is: Vec<i64> = [nb.st[0], nb.st[1], nb.st[2], 1].iter().map(|&x| x as i64).collect();
                    self.copy(ctx, copy, &pres, new, &nshape, 0, &is, past_len * nb.d, &os)?;
                    let st = [os[0], os[1], os[2]];
                    if which == 0 {
                        kst = st;
                        kbuf = pres.clone();
                    } else {
                        vst = st;
                        vbuf = pres.clone();
                    }
                    outs_kv.push(pres);
                }
            }
            (None, None) => {
                for (new, nb) in [(k, &k4), (v, &v4)] {
                    let shape = vec![batch, hk, nb.s, nb.d];
                    if rank == 4 {
                        outs_kv.push(new.clone());
                    } else {
                        let pres = ctx.alloc(DType::F32, shape.clone())?;
                        if want(1) || want(2) {
                            let is: Vec<i64> = [nb.st[0], nb.st[1], nb.st[2], 1].iter().map(|&x| x as i64).collect();
                            self.copy(ctx, copy, &pres, new, &shape, 0, &is, 0, &contiguous(&shape))?;
                        }
                        outs_kv.push(pres);
                    }
                }
            }
            _ => return Err(GpuError::Shape("past_key and past_value must be given together".into())),
        }
        let kv = past_len + k4.s;
        let (b, h, sq, dv) = (q4.b, q4.h, q4.s, v4.d);

        let yshape = if rank == 3 { vec![b, sq, h * dv] } else { vec![b, h, sq, dv] };
        let yst = if rank == 3 { [sq * h * dv, dv, h * dv] } else { [h * sq * dv, sq * dv, dv] };
        let y = ctx.alloc(DType::F32, yshape)?;
        let rows = b * h * sq;
        let scratch = ctx.alloc(DType::F32, vec![rows, kv])?;
        let qk = ctx.alloc(DType::F32, if want(3) { vec![b, h, sq, kv] } else { vec![1] })?;

        let mut p = AttentionParams {
            rows,
            q_heads: h,
            q_seq: sq,
            kv,
            head_size: q4.d,
            v_head_size: dv,
            group: h / hk,
            q_strides: q4.st.to_vec(),
            k_strides: kst.to_vec(),
            v_strides: vst.to_vec(),
            y_strides: yst.to_vec(),
            ..AttentionParams::default()
        };
        if let Some(m) = mask {
            let mr = m.shape.len();
            if mr == 0 || mr > 4 {
                return Err(GpuError::Shape(format!("attn_mask must have rank 1 to 4, got {:?}", m.shape)));
            }
            let mut ms = [1usize; 4];
            ms[4 - mr..].copy_from_slice(&m.shape);
            let target = [b, h, sq, kv];
            if (0..3).any(|a| ms[a] != 1 && ms[a] != target[a]) || ms[3] > kv {
                return Err(GpuError::Shape(format!("attn_mask {:?} does not broadcast to {target:?}", m.shape)));
            }
            let cs = contiguous(&ms);
            let st: Vec<usize> = (0..3).map(|a| if ms[a] == 1 { 0 } else { cs[a] }).collect();
            p.mask_kind = (if m.dtype == DType::Bool { mask_kind::BOOL } else { mask_kind::ADDITIVE }) as usize;
            p.mask_strides = st;
            p.mask_len = ms[3];
        }
        let sqrt_scale = (a.scale.map_or(1.0 / (q4.d as f64).sqrt(), f64::from)).sqrt() as f32;
        p.sqrt_scale = sqrt_scale;
        p.softcap = a.softcap;
        p.is_causal = usize::from(a.is_causal);
        // Windows past i32 are unbounded (never reached by a position).
        p.left_window = a.left_window_size.min(i64::from(i32::MAX));
        p.right_window = a.right_window_size.min(i64::from(i32::MAX));
        p.past_len = past_len as i64;
        if let Some(n) = nonpad {
            if n.numel() != b {
                return Err(GpuError::Shape(format!("nonpad_kv_seqlen must have {b} elements")));
            }
            p.has_nonpad = 1;
        }
        p.qk_mode = if want(3) { a.qk_matmul_output_mode as usize } else { qk_output::NONE as usize };
        let p = p.words()?;
        let mbuf = mask.unwrap_or(q);
        let nbuf = nonpad.unwrap_or(q);
        if rows > 0 {
            let g = ctx.groups(rows)?;
            ctx.dispatch(attend, &p, &y, &[&scratch, &qk, q, &kbuf, &vbuf, mbuf, nbuf], g)?;
        }
        ctx.release(scratch);
        let mut outs = vec![y];
        outs.extend(outs_kv);
        outs.push(qk);
        outs.truncate(self.n.outputs.len().max(1));
        Ok(outs)
    }
}

impl Exec<'_> {
    /// `RotaryEmbedding` (`rotary.wgsl`).
    fn rotary(
        &self,
        ctx: &mut Ctx,
        k: &Kernel,
        interleaved: bool,
        num_heads: Option<i64>,
        dim: i64,
    ) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let (cos, sin) = (self.input(1)?, self.input(2)?);
        let pos = self.opt_input(3);
        let (b, h, s, d, three) = match *x.shape.as_slice() {
            [b, h, s, d] => (b, h, s, d, false),
            [b, s, hidden] => {
                let h = match num_heads {
                    Some(h) if h > 0 && hidden % h as usize == 0 => h as usize,
                    _ => return Err(GpuError::Shape("3-D RotaryEmbedding input needs num_heads dividing it".into())),
                };
                (b, h, s, hidden / h, true)
            }
            _ => return Err(GpuError::Shape(format!("RotaryEmbedding input {:?} must be 3-D or 4-D", x.shape))),
        };
        let rot = match dim {
            0 => d,
            n if n > 0 && n as usize <= d && n % 2 == 0 => n as usize,
            n => return Err(GpuError::Shape(format!("rotary_embedding_dim {n} does not fit head size {d}"))),
        };
        if rot % 2 != 0 {
            return Err(GpuError::Shape(format!("rotated size {rot} must be even")));
        }
        let half = rot / 2;
        if cos.shape != sin.shape || cos.shape.last() != Some(&half) {
            return Err(GpuError::Shape(format!("caches {:?} / {:?} must end in {half}", cos.shape, sin.shape)));
        }
        match pos {
            Some(p) => {
                if p.shape != [b, s] || cos.shape.len() != 2 {
                    return Err(GpuError::Shape("position_ids must be [batch, seq] with 2-D caches".into()));
                }
                if let Some(ids) = self.host(3)
                    && ids.to_i64_vec().iter().any(|&id| id < 0 || id as u64 >= cos.shape[0] as u64)
                {
                    return Err(GpuError::Shape("position id out of range of the caches".into()));
                }
            }
            None => {
                if cos.shape != [b, s, half] {
                    return Err(GpuError::Shape(format!("caches must have shape [{b}, {s}, {half}]")));
                }
            }
        }
        let y = ctx.alloc(x.dtype, x.shape.clone())?;
        let n = y.numel();
        let p = RotaryParams {
            n,
            heads: h,
            seq: s,
            head_size: d,
            rotated: rot,
            interleaved: usize::from(interleaved),
            three_d: usize::from(three),
            has_position_ids: usize::from(pos.is_some()),
        };
        ctx.dispatch_n(k, &p.words()?, &y, &[x, cos, sin, pos.unwrap_or(x)], n)?;
        Ok(vec![y])
    }
}
