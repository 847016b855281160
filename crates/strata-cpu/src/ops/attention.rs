//! The attention-style part of the `nn` family on f32: `Attention`
//! (scaled dot-product attention; `FlexAttention` without its modifier
//! subgraphs runs on the same kernel), `RotaryEmbedding`, `LinearAttention`,
//! `CausalConvWithState` and `SwiGLU`.
//!
//! `Attention` runs per (batch, key/value head): the query rows of every
//! query head sharing that key/value head (grouped-query attention) are one
//! left operand, so `Q·Kᵀ` and `P·V` are two packed GEMMs (`crate::gemm`)
//! per block of query rows, with the bias (mask, causal frontier, sliding
//! window, padding), the soft cap and the softmax applied row by row in
//! between. The items are fixed by the shapes, so results are the same
//! bits for any thread count. Rounding follows the reference's steps (Q and
//! K each scaled by `sqrt(scale)` first, the bias added to the capped
//! scores, an all-masked row giving zeros), in f32.
//!
//! `LinearAttention`, `CausalConvWithState` and `SwiGLU` are in `linear.rs`.

use strata_ir::DType;
use strata_ir::ops::NnOp as N;
use strata_ir::ops::nn::{AttentionAttrs, ConvStateActivation};

use super::{Ctx, Kernel, NodeInfo, input, unsupported};
use crate::error::{Result, bail};
use crate::gemm::{PackedA, PackedB, gemm};
use crate::narrow::{narrow, widen};
use crate::tensor::{CpuTensor, Data, is_half};

mod linear;
use linear::{CausalConvKernel, LinearAttentionKernel, SwiGluKernel};

/// Query rows per GEMM block (bounds the score scratch to this many rows).
const ROW_BLOCK: usize = 256;
/// At most this many query rows per (batch, key/value head) run without
/// the GEMM (packing K and V would cost more than the products).
const DIRECT_ROWS: usize = 8;

// ------------------------------------------------------------- helpers

/// Input `i` when given.
fn opt<'t>(inputs: &[Option<&'t CpuTensor>], i: usize) -> Option<&'t CpuTensor> {
    inputs.get(i).copied().flatten()
}

/// Every given input `i` is of one of `ins[i]` (no input past `ins`), every
/// given output of one of `outs`.
fn require(info: &NodeInfo, ins: &[&[DType]], outs: &[DType]) -> Result<()> {
    for (i, v) in info.node.inputs.iter().enumerate() {
        let Some(v) = v else { continue };
        let val = info.graph.value(*v);
        let Some(allowed) = ins.get(i) else {
            return Err(unsupported(format!("input {i} ('{}') is not read by this kernel", val.name)));
        };
        match val.ty.dtype() {
            Some(d) if allowed.contains(&d) => {}
            Some(d) => {
                return Err(unsupported(format!("'{}' is {d} (this kernel takes {})", val.name, names(allowed))));
            }
            None => return Err(unsupported(format!("'{}' has no known tensor type", val.name))),
        }
    }
    for v in info.node.outputs.iter().flatten() {
        let val = info.graph.value(*v);
        match val.ty.dtype() {
            Some(d) if outs.contains(&d) => {}
            Some(d) => return Err(unsupported(format!("'{}' is {d} (this kernel makes {})", val.name, names(outs)))),
            None => return Err(unsupported(format!("'{}' has no known tensor type", val.name))),
        }
    }
    Ok(())
}

fn names(ds: &[DType]) -> String {
    ds.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// Which of the node's outputs are wanted.
fn wanted(info: &NodeInfo) -> Vec<bool> {
    info.node.outputs.iter().map(Option::is_some).collect()
}

/// The outputs in node order; unwanted positions get an empty placeholder.
fn outputs(want: &[bool], mut made: Vec<Option<CpuTensor>>) -> Vec<CpuTensor> {
    made.resize_with(want.len(), || None);
    made.into_iter().map(|t| t.unwrap_or_else(|| CpuTensor::f32(vec![0], vec![]))).collect()
}

/// A positive head count from an attribute.
fn head_count(v: Option<i64>, name: &str) -> Result<usize> {
    match v {
        Some(n) if n > 0 => usize::try_from(n).or_else(|_| bail!("{name} {n} is too large")),
        Some(n) => bail!("{name} must be positive, got {n}"),
        None => bail!("attribute {name} is required for 3-D inputs"),
    }
}

/// A rank-3 or rank-4 operand seen as `(batch, heads, seq, size)`: rank 4
/// is that layout, rank 3 is `(batch, seq, heads · size)` (`packed`).
#[derive(Debug, Clone, Copy)]
struct Bhsd {
    b: usize,
    h: usize,
    s: usize,
    d: usize,
    packed: bool,
}

impl Bhsd {
    fn of(shape: &[usize], heads: Option<usize>, what: &str) -> Result<Bhsd> {
        match (shape, heads) {
            (&[b, h, s, d], _) => Ok(Bhsd { b, h, s, d, packed: false }),
            (&[b, s, hidden], Some(h)) => {
                if h == 0 || hidden % h != 0 {
                    bail!("{what}: last dimension {hidden} is not divisible by the head count {h}");
                }
                Ok(Bhsd { b, h, s, d: hidden / h, packed: true })
            }
            (&[_, _, _], None) => bail!("{what}: 3-D input needs a head count"),
            _ => bail!("{what} must have rank 3 or 4, got shape {shape:?}"),
        }
    }

    /// Offset of the `d` values of `(b, h, s)` in the operand's own layout.
    fn row(&self, b: usize, h: usize, s: usize) -> usize {
        if self.packed { ((b * self.s + s) * self.h + h) * self.d } else { ((b * self.h + h) * self.s + s) * self.d }
    }

    /// Copy `src` (this layout) into `dst`, a `(b, h, total, d)` array, at
    /// sequence positions `at .. at + s`.
    fn copy_into(&self, src: &[f32], dst: &mut [f32], total: usize, at: usize) {
        let d = self.d;
        for b in 0..self.b {
            for h in 0..self.h {
                for s in 0..self.s {
                    let o = ((b * self.h + h) * total + at + s) * d;
                    dst[o..o + d].copy_from_slice(&src[self.row(b, h, s)..][..d]);
                }
            }
        }
    }
}

// ----------------------------------------------------------- Attention

/// The attention mask as an additive bias, its shape left-padded to rank 4.
struct MaskBias {
    shape: [usize; 4],
    bias: Vec<f32>,
}

impl MaskBias {
    fn new(m: &CpuTensor, target: [usize; 4]) -> Result<MaskBias> {
        let rank = m.shape.len();
        if rank == 0 || rank > 4 {
            bail!("attn_mask must have rank 1 to 4, got shape {:?}", m.shape);
        }
        let bias: Vec<f32> = match &m.data {
            Data::Bool(v) => v.iter().map(|&keep| if keep != 0 { 0.0 } else { f32::NEG_INFINITY }).collect(),
            Data::F32(v) => v.to_vec(),
            _ => bail!("attn_mask must be bool or float32, got {}", m.dtype),
        };
        let mut shape = [1usize; 4];
        shape[4 - rank..].copy_from_slice(&m.shape);
        for axis in 0..3 {
            if shape[axis] != 1 && shape[axis] != target[axis] {
                bail!("attn_mask shape {:?} does not broadcast to {target:?}", m.shape);
            }
        }
        if shape[3] > target[3] {
            bail!("attn_mask shape {:?} has more keys than the total sequence length {}", m.shape, target[3]);
        }
        Ok(MaskBias { shape, bias })
    }

    /// The mask's row for query `i` of head `h` in batch `b` (keys past its
    /// end are masked).
    fn row(&self, b: usize, h: usize, i: usize) -> &[f32] {
        let pick = |x: usize, n: usize| if n == 1 { 0 } else { x };
        let [s0, s1, s2, s3] = self.shape;
        let flat = ((pick(b, s0) * s1 + pick(h, s1)) * s2 + pick(i, s2)) * s3;
        &self.bias[flat..flat + s3]
    }
}

struct AttentionKernel {
    p: AttentionAttrs,
    /// Which of `Y, present_key, present_value, qk_matmul_output` are wanted.
    want: Vec<bool>,
    /// `FlexAttention` without modifier subgraphs: rank 4 only, the scale
    /// rounded to f32 before its square root, and a softmax without the
    /// all-masked rule (an all `-inf` row is NaN).
    flex: bool,
    /// Float16/bfloat16 `Attention`: (input type, softmax type). Inputs are
    /// widened, computed in f32 with every intermediate the reference rounds
    /// rounded to its type, and outputs rounded back.
    half: Option<(DType, DType)>,
}

/// What the row step of one (batch, key/value head) item needs.
struct RowCtx<'a> {
    p: &'a AttentionAttrs,
    mask: Option<&'a MaskBias>,
    nonpad: Option<&'a [i64]>,
    past_len: usize,
    sq: usize,
    zero_if_all_masked: bool,
}

impl RowCtx<'_> {
    /// Turn the scores of query `i` of head `h` in batch `b` into
    /// probabilities in place, copying the intermediate the
    /// `qk_matmul_output_mode` names into `qk`. `bias` is scratch of `kv`.
    #[inline(always)]
    fn row(&self, b: usize, h: usize, i: usize, s: &mut [f32], bias: &mut [f32], mut qk: Option<&mut [f32]>) {
        let p = self.p;
        let mode = p.qk_matmul_output_mode;
        let mut expose = |m: i64, s: &[f32]| {
            if m == mode
                && let Some(q) = qk.as_deref_mut()
            {
                q.copy_from_slice(s);
            }
        };
        expose(0, s);
        if p.softcap > 0.0 {
            let c = p.softcap;
            for x in s.iter_mut() {
                *x = crate::math::tanh(*x / c) * c;
            }
        }
        expose(1, s);
        self.bias(b, h, i, bias);
        for (x, &m) in s.iter_mut().zip(bias.iter()) {
            *x += m;
        }
        expose(2, s);
        let all_masked = bias.iter().all(|&m| m == f32::NEG_INFINITY);
        if all_masked {
            s.fill(0.0);
        } else {
            softmax_row(s, self.zero_if_all_masked);
        }
        expose(3, s);
    }

    /// As [`RowCtx::row`] for float16/bfloat16 inputs, every step rounded
    /// as the reference rounds it: to the input type `dt`, the softmax in
    /// `st` (`s` holds the raw scores, already rounded to `dt`).
    fn row_rounded(
        &self,
        types: (DType, DType),
        at: (usize, usize, usize),
        s: &mut [f32],
        bias: &mut [f32],
        mut qk: Option<&mut [f32]>,
    ) {
        let ((dt, st), (b, h, i)) = (types, at);
        let (p, mode) = (self.p, self.p.qk_matmul_output_mode);
        let r = |x: f64| dt.round_float(x);
        let rs = |x: f64| st.round_float(x);
        let mut x: Vec<f64> = s.iter().map(|&v| f64::from(v)).collect();
        let mut expose = |m: i64, x: &[f64]| {
            if m == mode
                && let Some(q) = qk.as_deref_mut()
            {
                q.iter_mut().zip(x).for_each(|(o, &v)| *o = v as f32);
            }
        };
        expose(0, &x);
        if p.softcap > 0.0 {
            let c = f64::from(p.softcap);
            x.iter_mut().for_each(|v| *v = r(r(libm::tanh(r(*v / c))) * c));
        }
        expose(1, &x);
        self.bias(b, h, i, bias);
        x.iter_mut().zip(bias.iter()).for_each(|(v, &m)| *v = r(*v + f64::from(m)));
        expose(2, &x);
        if bias.iter().all(|&m| m == f32::NEG_INFINITY) {
            x.fill(0.0);
        } else {
            let mut max = f64::NEG_INFINITY;
            for v in x.iter_mut() {
                *v = rs(*v);
                max = if v.is_nan() || max.is_nan() { f64::NAN } else { max.max(*v) };
            }
            if max == f64::NEG_INFINITY {
                max = 0.0;
            }
            x.iter_mut().for_each(|v| *v = rs(libm::exp(rs(*v - max))));
            let mut sum =
                if st == DType::BF16 { x.iter().fold(0.0, |acc, &e| rs(acc + e)) } else { rs(x.iter().sum::<f64>()) };
            if sum == 0.0 {
                sum = 1.0;
            }
            x.iter_mut().for_each(|v| *v = r(rs(*v / sum)));
        }
        expose(3, &x);
        s.iter_mut().zip(&x).for_each(|(o, &v)| *o = v as f32);
    }

    /// The bias of query `i` of head `h` in batch `b` against every key:
    /// mask, causal frontier, sliding window and padding.
    #[inline(always)]
    fn bias(&self, b: usize, h: usize, i: usize, bias: &mut [f32]) {
        let p = self.p;
        match self.mask {
            Some(m) => {
                let mrow = m.row(b, h, i);
                bias[..mrow.len()].copy_from_slice(mrow);
                bias[mrow.len()..].fill(f32::NEG_INFINITY);
            }
            None => bias.fill(0.0),
        }
        let (causal, left, right) = (p.is_causal, p.left_window_size, p.right_window_size);
        let limit = self.nonpad.map(|n| n[b]);
        if causal || left >= 0 || right >= 0 || limit.is_some() {
            // Valid keys before the query block (may be negative).
            let offset = match limit {
                Some(n) => i128::from(n) - self.sq as i128,
                None => self.past_len as i128,
            };
            let pos = i as i128 + offset;
            let (left, right) = (i128::from(left), i128::from(right));
            for (j, bj) in bias.iter_mut().enumerate() {
                let j = j as i128;
                let dist = pos - j;
                if causal && j > pos {
                    *bj += f32::NEG_INFINITY;
                }
                if (left >= 0 && dist > left) || (right >= 0 && -dist > right) {
                    *bj += f32::NEG_INFINITY;
                }
                if limit.is_some_and(|n| j >= i128::from(n)) {
                    *bj += f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// Softmax of a row in place, as the reference's: the maximum is NaN if any
/// element is; with `zero_if_all_masked`, an all `-inf` row gives zeros.
#[inline(always)]
fn softmax_row(s: &mut [f32], zero_if_all_masked: bool) {
    let (mut max, mut nan) = (f32::NEG_INFINITY, false);
    for &x in s.iter() {
        nan |= x.is_nan();
        max = if x > max { x } else { max };
    }
    if nan {
        max = f32::NAN;
    } else if zero_if_all_masked && max == f32::NEG_INFINITY {
        max = 0.0;
    }
    for x in s.iter_mut() {
        *x = crate::math::exp(*x - max);
    }
    let mut sum = crate::simd::sum_lanes(s, |x| x);
    if zero_if_all_masked && sum == 0.0 {
        sum = 1.0;
    }
    for x in s.iter_mut() {
        *x /= sum;
    }
}

/// Dot product in `LANES` partial sums added in a fixed order (vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = crate::simd::LANES;
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Scores of `q.len() / d` query rows against every key (`k` rows of `d`,
/// each mapped by `scale` first, as the GEMM path's keys are) into `s`.
#[inline(always)]
fn scores_direct(q: &[f32], k: &[f32], scale: impl Fn(f32) -> f32, scaled: &mut [f32], s: &mut [f32]) {
    let d = scaled.len();
    if d == 0 {
        return;
    }
    let kv = k.len() / d;
    for (j, krow) in k.chunks_exact(d).enumerate() {
        scaled.iter_mut().zip(krow).for_each(|(o, &x)| *o = scale(x));
        for (r, qrow) in q.chunks_exact(d).enumerate() {
            s[r * kv + j] = dot(qrow, scaled);
        }
    }
}

/// `y += p · V` for the few rows of `p` (each `kv` long, `kv` rows of V of
/// `dv`), reading V once.
#[inline(always)]
fn values_direct(p: &[f32], kv: usize, v: &[f32], dv: usize, y: &mut [f32]) {
    if kv == 0 || dv == 0 {
        return;
    }
    for (j, vrow) in v.chunks_exact(dv).enumerate() {
        for (prow, yrow) in p.chunks_exact(kv).zip(y.chunks_exact_mut(dv)) {
            let pj = prow[j];
            yrow.iter_mut().zip(vrow).for_each(|(o, &x)| *o += pj * x);
        }
    }
}

impl Kernel for AttentionKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let p = &self.p;
        let half = self.half;
        // Float16/bfloat16 operands widened (exactly) to f32.
        let widened: Vec<Option<CpuTensor>> = inputs
            .iter()
            .map(|t| match t {
                Some(t) if half.is_some() && is_half(t.dtype) => widen(t).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        let inputs: Vec<Option<&CpuTensor>> = inputs.iter().zip(&widened).map(|(t, w)| w.as_ref().or(*t)).collect();
        let inputs = &inputs[..];
        // Rounding to the input type where the reference rounds.
        let rnd = |x: f32| match half {
            Some((dt, _)) => dt.round_float(f64::from(x)) as f32,
            None => x,
        };
        let (q, k, v) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let (mask, past_key, past_value, nonpad) = (opt(inputs, 3), opt(inputs, 4), opt(inputs, 5), opt(inputs, 6));
        let rank = q.shape.len();
        if k.shape.len() != rank || v.shape.len() != rank {
            bail!("Q, K and V must have the same rank, got {}, {} and {}", rank, k.shape.len(), v.shape.len());
        }
        let (qh, kvh) = match rank {
            3 if !self.flex => {
                (Some(head_count(p.q_num_heads, "q_num_heads")?), Some(head_count(p.kv_num_heads, "kv_num_heads")?))
            }
            4 => (None, None),
            r if self.flex => bail!("Q, K and V must have rank 4, got rank {r}"),
            r => bail!("Q, K and V must have rank 3 or 4, got rank {r}"),
        };
        let (q4, k4, v4) = (Bhsd::of(&q.shape, qh, "Q")?, Bhsd::of(&k.shape, kvh, "K")?, Bhsd::of(&v.shape, kvh, "V")?);
        if k4.b != q4.b || v4.b != q4.b {
            bail!("Q, K and V must have the same batch size");
        }
        if k4.h != v4.h || k4.s != v4.s {
            bail!("K {:?} and V {:?} must agree in heads and sequence length", k.shape, v.shape);
        }
        if k4.d != q4.d {
            bail!("Q and K head sizes differ ({} vs {})", q4.d, k4.d);
        }
        if k4.h == 0 || q4.h % k4.h != 0 {
            bail!("the query head count {} must be a multiple of the key/value head count {}", q4.h, k4.h);
        }
        let (batch, hq, hkv, sq, dk, dv) = (q4.b, q4.h, k4.h, q4.s, q4.d, v4.d);
        let group = hq / hkv;

        // The KV cache: past entries, then the new ones.
        let past = match (past_key, past_value) {
            (Some(pk), Some(pv)) => {
                if nonpad.is_some() {
                    bail!("nonpad_kv_seqlen cannot be combined with past_key/past_value");
                }
                let (pk4, pv4) = match (&pk.shape[..], &pv.shape[..]) {
                    (&[_, _, _, _], &[_, _, _, _]) => {
                        (Bhsd::of(&pk.shape, None, "past_key")?, Bhsd::of(&pv.shape, None, "past_value")?)
                    }
                    _ => bail!("past_key and past_value must have rank 4"),
                };
                if pk4.s != pv4.s {
                    bail!("past_key and past_value sequence lengths differ ({} vs {})", pk4.s, pv4.s);
                }
                if (pk4.b, pk4.h, pk4.d) != (batch, hkv, dk) || (pv4.b, pv4.h, pv4.d) != (batch, hkv, dv) {
                    bail!(
                        "past_key {:?} / past_value {:?} do not match the new entries {:?} / {:?}",
                        pk.shape,
                        pv.shape,
                        [batch, hkv, k4.s, dk],
                        [batch, hkv, v4.s, dv]
                    );
                }
                Some((pk, pk4, pv, pv4))
            }
            (None, None) => None,
            _ => bail!("past_key and past_value must be given together"),
        };
        let past_len = past.as_ref().map_or(0, |(_, pk4, _, _)| pk4.s);
        let nonpad: Option<Vec<i64>> = match nonpad {
            Some(t) => {
                if t.dtype != DType::I64 || t.numel() != batch {
                    bail!("nonpad_kv_seqlen must be int64 of shape ({batch},), got {} {:?}", t.dtype, t.shape);
                }
                Some(t.to_i64()?)
            }
            None => None,
        };
        let kv = past_len + k4.s;
        for shape in [[batch, hq, sq, kv], [batch, hq, sq, dv], [batch, hkv, kv, dk], [batch, hkv, kv, dv]] {
            ctx.check_numel(&shape)?;
        }
        let mask = match mask {
            Some(m) => Some(MaskBias::new(m, [batch, hq, sq, kv])?),
            None => None,
        };

        // Q and K are each scaled by sqrt(scale), rounded to f32.
        let scale = match p.scale {
            Some(s) => f64::from(s),
            None => 1.0 / (dk as f64).sqrt(),
        };
        let sqrt_scale = match half {
            _ if self.flex => f64::from(scale as f32).sqrt() as f32,
            Some((dt, _)) => dt.round_float(scale.sqrt()) as f32,
            None => scale.sqrt() as f32,
        };
        let mut qs = vec![0.0f32; batch * hq * sq * dk];
        q4.copy_into(q.as_f32()?, &mut qs, sq, 0);
        qs.iter_mut().for_each(|x| *x = rnd(*x * sqrt_scale));
        let mut keys = vec![0.0f32; batch * hkv * kv * dk];
        let mut values = vec![0.0f32; batch * hkv * kv * dv];
        if let Some((pk, pk4, pv, pv4)) = &past {
            pk4.copy_into(pk.as_f32()?, &mut keys, kv, 0);
            pv4.copy_into(pv.as_f32()?, &mut values, kv, 0);
        }
        k4.copy_into(k.as_f32()?, &mut keys, kv, past_len);
        v4.copy_into(v.as_f32()?, &mut values, kv, past_len);
        let want_qk = self.want.get(3).copied().unwrap_or(false);
        let rc =
            RowCtx { p, mask: mask.as_ref(), nonpad: nonpad.as_deref(), past_len, sq, zero_if_all_masked: !self.flex };
        let rows = group * sq;
        let work = (batch * hq * sq * kv).saturating_mul(dk + dv + 8);
        // A few query rows (decoding): direct dot products and row updates
        // reading K and V once; otherwise packed GEMMs.
        let direct = rows <= DIRECT_ROWS;
        // One item per (batch, key/value head): its Y rows and scores.
        let parts = ctx.pool.map(batch * hkv, work, |item| {
            let (b, hk) = (item / hkv, item % hkv);
            let qrows = &qs[(b * hq + hk * group) * sq * dk..][..rows * dk];
            let kmat = &keys[item * kv * dk..][..kv * dk];
            let vmat = &values[item * kv * dv..][..kv * dv];
            let packed = (!direct).then(|| {
                let ks: Vec<f32> = kmat.iter().map(|&x| rnd(x * sqrt_scale)).collect();
                (PackedB::pack(&ks, dk, kv, 1, dk), PackedB::pack(vmat, kv, dv, dv, 1))
            });
            let mut y = vec![0.0f32; rows * dv];
            let mut qk = vec![0.0f32; if want_qk { rows * kv } else { 0 }];
            let mut bias = vec![0.0f32; kv];
            let mut scaled_key = vec![0.0f32; dk];
            for r0 in (0..rows).step_by(ROW_BLOCK) {
                let m = ROW_BLOCK.min(rows - r0);
                let mut s = vec![0.0f32; m * kv];
                let qblock = &qrows[r0 * dk..(r0 + m) * dk];
                match &packed {
                    Some((pk, _)) if dk > 0 && kv > 0 => {
                        gemm(ctx.pool, &PackedA::pack(qblock, m, dk, dk, 1), pk, &mut s, kv);
                    }
                    Some(_) => {}
                    None => crate::simd::vectorized(
                        #[inline(always)]
                        || scores_direct(qblock, kmat, |x| rnd(x * sqrt_scale), &mut scaled_key, &mut s),
                    ),
                }
                crate::simd::vectorized(
                    #[inline(always)]
                    || {
                        for rr in 0..m {
                            let r = r0 + rr;
                            let qk_row = if want_qk { Some(&mut qk[r * kv..(r + 1) * kv]) } else { None };
                            let srow = &mut s[rr * kv..(rr + 1) * kv];
                            let at = (b, hk * group + r / sq, r % sq);
                            match half {
                                None => rc.row(at.0, at.1, at.2, srow, &mut bias, qk_row),
                                Some(types) => {
                                    srow.iter_mut().for_each(|x| *x = rnd(*x));
                                    rc.row_rounded(types, at, srow, &mut bias, qk_row);
                                }
                            }
                        }
                    },
                );
                let yblock = &mut y[r0 * dv..(r0 + m) * dv];
                match &packed {
                    Some((_, pv)) if kv > 0 && dv > 0 => {
                        gemm(ctx.pool, &PackedA::pack(&s, m, kv, kv, 1), pv, yblock, dv)
                    }
                    Some(_) => {}
                    None => crate::simd::vectorized(
                        #[inline(always)]
                        || values_direct(&s, kv, vmat, dv, yblock),
                    ),
                }
            }
            (y, qk)
        });
        let mut made: Vec<Option<CpuTensor>> = vec![None; 4];
        if self.want.first().copied().unwrap_or(false) {
            let y: Vec<f32> = if rank == 3 {
                // Back to (batch, seq, heads · size).
                let mut out = vec![0.0f32; batch * sq * hq * dv];
                for (item, (part, _)) in parts.iter().enumerate() {
                    let (b, hk) = (item / hkv, item % hkv);
                    for r in 0..rows {
                        let (h, i) = (hk * group + r / sq, r % sq);
                        out[((b * sq + i) * hq + h) * dv..][..dv].copy_from_slice(&part[r * dv..(r + 1) * dv]);
                    }
                }
                out
            } else {
                parts.iter().flat_map(|(y, _)| y.iter().copied()).collect()
            };
            let shape = if rank == 3 { vec![batch, sq, hq * dv] } else { vec![batch, hq, sq, dv] };
            made[0] = Some(CpuTensor::f32(shape, y));
        }
        if self.want.get(1).copied().unwrap_or(false) {
            made[1] = Some(CpuTensor::f32(vec![batch, hkv, kv, dk], keys));
        }
        if self.want.get(2).copied().unwrap_or(false) {
            made[2] = Some(CpuTensor::f32(vec![batch, hkv, kv, dv], values));
        }
        if want_qk {
            let qk: Vec<f32> = parts.into_iter().flat_map(|(_, qk)| qk).collect();
            made[3] = Some(CpuTensor::f32(vec![batch, hq, sq, kv], qk));
        }
        if let Some((dt, _)) = half {
            for t in made.iter_mut() {
                if let Some(f) = t.take() {
                    *t = Some(narrow(f, dt)?);
                }
            }
        }
        Ok(outputs(&self.want, made))
    }
}

// ----------------------------------------------------- RotaryEmbedding

struct RotaryKernel {
    interleaved: bool,
    num_heads: Option<i64>,
    rotary_embedding_dim: i64,
}

impl Kernel for RotaryKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (x, cos, sin) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let position_ids = opt(inputs, 3);
        let heads = match x.shape.len() {
            3 => Some(head_count(self.num_heads, "num_heads")?),
            4 => None,
            r => bail!("input must have rank 3 or 4, got rank {r}"),
        };
        let x4 = Bhsd::of(&x.shape, heads, "input")?;
        let rot = match usize::try_from(self.rotary_embedding_dim) {
            Ok(0) => x4.d,
            Ok(n) if n <= x4.d && n % 2 == 0 => n,
            _ => bail!(
                "rotary_embedding_dim {} must be even and at most the head size {}",
                self.rotary_embedding_dim,
                x4.d
            ),
        };
        if rot % 2 != 0 {
            bail!("the rotated size {rot} must be even");
        }
        let half = rot / 2;
        if cos.shape != sin.shape {
            bail!("cos_cache {:?} and sin_cache {:?} must have the same shape", cos.shape, sin.shape);
        }
        if cos.shape.last() != Some(&half) {
            bail!(
                "the last dimension of cos_cache/sin_cache {:?} must be rotary_embedding_dim / 2 = {half}",
                cos.shape
            );
        }
        let (batch, seq) = (x4.b, x4.s);
        // For each (batch, position) the offset of its row in the caches.
        let cache_row: Vec<usize> = match position_ids {
            Some(p) => {
                if p.shape != [batch, seq] {
                    bail!("position_ids must have shape [{batch}, {seq}], got {:?}", p.shape);
                }
                if cos.shape.len() != 2 {
                    bail!("with position_ids, cos_cache/sin_cache must be 2-D, got {:?}", cos.shape);
                }
                let max_pos = cos.shape[0];
                let mut rows = Vec::with_capacity(batch * seq);
                for id in p.to_i64()? {
                    match usize::try_from(id) {
                        Ok(i) if i < max_pos => rows.push(i * half),
                        _ => bail!("position id {id} is out of range for a cache of {max_pos} positions"),
                    }
                }
                rows
            }
            None => {
                if cos.shape != [batch, seq, half] {
                    bail!(
                        "without position_ids, cos_cache/sin_cache must have shape [{batch}, {seq}, {half}], got {:?}",
                        cos.shape
                    );
                }
                (0..batch * seq).map(|n| n * half).collect()
            }
        };
        let (cv, sv) = (cos.as_f32()?, sin.as_f32()?);
        let mut out = x.as_f32()?.to_vec();
        let interleaved = self.interleaved;
        let row_len = x4.d;
        let items = batch * x4.h * seq;
        // Rows are disjoint in either layout: rotate each in place.
        let rotate = |row: &mut [f32], b: usize, s: usize| {
            let at = cache_row[b * seq + s];
            let (c, sn) = (&cv[at..at + half], &sv[at..at + half]);
            for i in 0..half {
                let (p1, p2) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
                let (x1, x2) = (row[p1], row[p2]);
                row[p1] = c[i] * x1 - sn[i] * x2;
                row[p2] = sn[i] * x1 + c[i] * x2;
            }
        };
        // Row `n` of the buffer is (b, s, h) when packed, (b, h, s) otherwise.
        let (h_n, packed) = (x4.h, x4.packed);
        ctx.pool.for_each_chunk(&mut out, row_len.max(1), items.saturating_mul(rot * 3), |n, row| {
            let (b, s) = if packed { (n / (seq * h_n), (n / h_n) % seq) } else { (n / (h_n * seq), n % seq) };
            rotate(row, b, s);
        });
        Ok(vec![CpuTensor::f32(x.shape.clone(), out)])
    }
}

// ------------------------------------------------------------- builder

/// The softmax runs in f32: a `softmax_precision` of float32 or float64
/// (within the tolerance of a float32 output) or none.
fn check_softmax_precision(code: Option<i64>) -> Result<()> {
    match code.map(DType::from_onnx_code) {
        None | Some(Some(DType::F32 | DType::F64)) => Ok(()),
        Some(Some(d)) => Err(unsupported(format!("softmax_precision {d}"))),
        Some(None) => Err(unsupported("an unknown softmax_precision")),
    }
}

/// Build the kernel of one attention-style operator (routed here by
/// `nn::build`, which names every operator).
pub(crate) fn build(op: &N, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    const F: &[DType] = &[DType::F32];
    Ok(match op {
        N::Attention { .. } => {
            let p = op.attention_attrs().ok_or_else(|| unsupported("no attention attributes"))?;
            // Q's type; K, V, the cache and the outputs must share it.
            let dt = match info.in_dtype(0) {
                Some(d @ (DType::F32 | DType::F16 | DType::BF16)) => d,
                _ => DType::F32,
            };
            let same: &[DType] = &[dt];
            let mask: &[DType] = &[DType::F32, DType::F16, DType::BF16, DType::Bool];
            require(info, &[same, same, same, mask, same, same, &[DType::I64]], same)?;
            let st = match p.softmax_precision.map(DType::from_onnx_code) {
                None => dt,
                Some(Some(d @ (DType::F32 | DType::F64))) => d,
                Some(Some(d @ (DType::F16 | DType::BF16))) if dt != DType::F32 => d,
                Some(Some(d)) => return Err(unsupported(format!("softmax_precision {d}"))),
                Some(None) => return Err(unsupported("an unknown softmax_precision")),
            };
            if !(0..=3).contains(&p.qk_matmul_output_mode) {
                return Err(unsupported(format!("qk_matmul_output_mode {}", p.qk_matmul_output_mode)));
            }
            if p.left_window_size < -1 || p.right_window_size < -1 {
                return Err(unsupported("window sizes below -1"));
            }
            let half = (dt != DType::F32).then_some((dt, st));
            Box::new(AttentionKernel { p, want: wanted(info), flex: false, half })
        }
        N::FlexAttention { .. } => {
            // (With score_mod or prob_mod it has subgraphs: refused by `ops::build`.)
            let p = op.attention_attrs().ok_or_else(|| unsupported("no attention attributes"))?;
            require(info, &[F, F, F], F)?;
            check_softmax_precision(p.softmax_precision)?;
            Box::new(AttentionKernel { p, want: wanted(info), flex: true, half: None })
        }
        N::RotaryEmbedding { interleaved, num_heads, rotary_embedding_dim } => {
            require(info, &[F, F, F, &[DType::I64]], F)?;
            Box::new(RotaryKernel {
                interleaved: *interleaved != 0,
                num_heads: *num_heads,
                rotary_embedding_dim: *rotary_embedding_dim,
            })
        }
        N::LinearAttention { chunk_size: _, kv_num_heads, q_num_heads, scale, update_rule } => {
            require(info, &[F, F, F, F, F, F], F)?;
            Box::new(LinearAttentionKernel {
                q_num_heads: *q_num_heads,
                kv_num_heads: *kv_num_heads,
                scale: *scale,
                update_rule: *update_rule,
                want: wanted(info),
            })
        }
        N::SwiGLU { alpha } => {
            require(info, &[F, F], F)?;
            Box::new(SwiGluKernel { alpha: *alpha })
        }
        N::CausalConvWithState { activation } => {
            require(info, &[F, F, F, F], F)?;
            Box::new(CausalConvKernel { silu: *activation == ConvStateActivation::Silu })
        }
        other => return Err(unsupported(format!("internal: {} is not an attention-style operator", other.name()))),
    })
}
