//! `Attention` (opsets 23-24) on the GPU: the host resolves layouts (3-D or
//! 4-D inputs, grouped-query heads, the KV cache, the mask's broadcast) and
//! `attention.wgsl` computes one query row per invocation. With
//! `past_key`/`past_value` the caches are concatenated with K and V into
//! `present_key`/`present_value` by strided copies first, and the scores
//! read those. Float masks of any float type are read as the f32 words
//! they are stored in.

use super::*;

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
    /// `Attention`. Pipelines: 0 `copy_strided`, 1 `attention`.
    pub(super) fn attention(&self, ctx: &mut Ctx, o: &NnOp) -> Result<Vec<GpuTensor>> {
        let NnOp::Attention {
            is_causal,
            kv_num_heads,
            q_num_heads,
            qk_matmul_output_mode,
            scale,
            softcap,
            left_window_size,
            right_window_size,
            ..
        } = o
        else {
            return Err(GpuError::Unsupported(format!("operator {}", o.name())));
        };
        let (q, k, v) = (self.input(0)?, self.input(1)?, self.input(2)?);
        let rank = q.shape.len();
        if k.shape.len() != rank || v.shape.len() != rank {
            return Err(GpuError::Shape("Q, K and V must have the same rank".into()));
        }
        let q4 = Bhsd::new(q, *q_num_heads, "Q")?;
        let k4 = Bhsd::new(k, *kv_num_heads, "K")?;
        let v4 = Bhsd::new(v, *kv_num_heads, "V")?;
        if k4.b != q4.b || v4.b != q4.b || k4.h != v4.h || k4.s != v4.s || k4.d != q4.d {
            return Err(GpuError::Shape(format!("Q {:?}, K {:?} and V {:?} do not agree", q.shape, k.shape, v.shape)));
        }
        if k4.h == 0 || q4.h % k4.h != 0 {
            return Err(GpuError::Shape("query heads must be a multiple of key/value heads".into()));
        }
        if !(0..=3).contains(qk_matmul_output_mode) || *left_window_size < -1 || *right_window_size < -1 {
            return Err(GpuError::Shape("invalid qk_matmul_output_mode or window size".into()));
        }
        let mask = self.opt_input(3);
        let past = (self.opt_input(4), self.opt_input(5));
        let nonpad = self.opt_input(6);
        let want = |i: usize| self.n.outputs.get(i).copied().flatten().is_some();

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
                    self.copy(ctx, &pres, cache, &pshape, 0, &is, 0, &os)?;
                    let nshape = [batch, hk, nb.s, nb.d];
                    let is: Vec<i64> = [nb.st[0], nb.st[1], nb.st[2], 1].iter().map(|&x| x as i64).collect();
                    self.copy(ctx, &pres, new, &nshape, 0, &is, past_len * nb.d, &os)?;
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
                            self.copy(ctx, &pres, new, &shape, 0, &is, 0, &contiguous(&shape))?;
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

        let mut p = vec![0u32; 32];
        put(&mut p, 0, &[rows, h, sq, kv, q4.d, dv, h / hk])?;
        put(&mut p, 7, &q4.st)?;
        put(&mut p, 10, &kst)?;
        put(&mut p, 13, &vst)?;
        put(&mut p, 16, &yst)?;
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
            p[19] = if m.dtype == DType::Bool { 2 } else { 1 };
            put(&mut p, 20, &st)?;
            p[23] = u32c(ms[3])?;
        }
        let sqrt_scale = (scale.map_or(1.0 / (q4.d as f64).sqrt(), f64::from)).sqrt() as f32;
        p[24] = f32w(sqrt_scale);
        p[25] = f32w(*softcap);
        p[26] = u32::from(*is_causal != 0);
        p[27] = *left_window_size as i32 as u32;
        p[28] = *right_window_size as i32 as u32;
        p[29] = u32c(past_len)?;
        if let Some(n) = nonpad {
            if n.numel() != b {
                return Err(GpuError::Shape(format!("nonpad_kv_seqlen must have {b} elements")));
            }
            p[30] = 1;
        }
        p[31] = if want(3) { *qk_matmul_output_mode as u32 } else { 4 };
        let mbuf = mask.unwrap_or(q);
        let nbuf = nonpad.unwrap_or(q);
        if rows > 0 {
            let g = ctx.groups(rows)?;
            ctx.dispatch(&self.pipes[1], &p, &y, &[&scratch, &qk, q, &kbuf, &vbuf, mbuf, nbuf], g);
        }
        ctx.release(scratch);
        let mut outs = vec![y];
        outs.extend(outs_kv);
        outs.push(qk);
        outs.truncate(self.n.outputs.len().max(1));
        Ok(outs)
    }
}
