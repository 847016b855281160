//! Reference kernels for the attention-style part of `strata_ir::ops::NnOp`
//! (see `nn.rs`): `Attention`, `FlexAttention`, `LinearAttention`,
//! `RotaryEmbedding`, `CausalConvWithState` and `SwiGLU`.
//!
//! Each operator lives in a submodule; this file holds the dispatch, the
//! helpers they share (a rank-4 `(batch, heads, sequence, size)` array and
//! a softmax that mirrors the spec's reference rounding) and `SwiGLU`.

use strata_ir::DType;
use strata_ir::ops::NnOp;

use crate::bail;
use crate::error::KResult;
use crate::ops::elementwise::sigmoid;
use crate::ops::{Args, Ctx, one};
use crate::value::{Tensor, Value};

mod conv_state;
mod flex;
mod linear;
mod rotary;
mod sdpa;

/// Run one operator of this part of the family.
pub fn run(op: &NnOp, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    match op {
        NnOp::Attention { .. } => {
            let attrs = op.attention_attrs().ok_or_else(|| crate::error::KernelError::new("Attention attributes"))?;
            sdpa::attention(&attrs, args)
        }
        NnOp::FlexAttention { prob_mod, scale, score_mod, softmax_precision } => {
            flex::flex_attention(*scale, *score_mod, *prob_mod, *softmax_precision, args, ctx)
        }
        NnOp::LinearAttention { chunk_size: _, kv_num_heads, q_num_heads, scale, update_rule } => {
            linear::linear_attention(*q_num_heads, *kv_num_heads, *scale, *update_rule, args)
        }
        NnOp::RotaryEmbedding { interleaved, num_heads, rotary_embedding_dim } => {
            rotary::rotary_embedding(*interleaved != 0, *num_heads, *rotary_embedding_dim, args)
        }
        NnOp::CausalConvWithState { activation } => conv_state::causal_conv_with_state(*activation, args),
        NnOp::SwiGLU { alpha } => swiglu(*alpha, args),
        // Routed here only by `nn.rs`, whose match names every operator.
        other => bail!("internal: {} is not an operator of this part of the family", other.name()),
    }
}

/// `SwiGLU`: `Y = A * sigmoid(alpha * A) * B` for equal-shaped `A` and `B`.
///
/// Like the spec's reference, every step is rounded to the input type, so
/// half-precision results match it to the last bit.
fn swiglu(alpha: f32, args: &Args) -> KResult<Vec<Value>> {
    let a = args.tensor(0)?;
    let b = args.tensor(1)?;
    if a.shape != b.shape {
        bail!("A {:?} and B {:?} must have identical shapes (no broadcasting)", a.shape, b.shape);
    }
    if a.dtype != b.dtype {
        bail!("A ({}) and B ({}) must have the same type", a.dtype, b.dtype);
    }
    let dt = a.dtype;
    let (av, bv) = (floats(a, "A")?, floats(b, "B")?);
    let r = |x: f64| dt.round_float(x);
    let alpha = f64::from(alpha);
    let y = av
        .iter()
        .zip(bv)
        .map(|(&x, &y)| {
            let gate = r(sigmoid(r(alpha * x)));
            r(r(x * gate) * y)
        })
        .collect();
    one(Tensor::from_f(dt, a.shape.clone(), y)?)
}

/// The elements of a floating-point tensor, or an error naming the input.
fn floats<'a>(t: &'a Tensor, what: &str) -> KResult<&'a [f64]> {
    if !t.dtype.is_float() {
        bail!("{what} must be a floating-point tensor, got {}", t.dtype);
    }
    t.f()
}

/// A positive head count from an attribute.
fn head_count(v: Option<i64>, name: &str) -> KResult<usize> {
    match v {
        Some(n) if n > 0 => Ok(n as usize),
        Some(n) => bail!("{name} must be positive, got {n}"),
        None => bail!("attribute {name} is required for 3-D inputs"),
    }
}

/// The float type named by a `softmax_precision`-style ONNX type code.
fn float_type_code(code: i64, name: &str) -> KResult<DType> {
    match DType::from_onnx_code(code) {
        Some(d) if d.is_float() => Ok(d),
        _ => bail!("{name} {code} is not a floating-point type"),
    }
}

/// Read Q, K and V as `(batch, heads, seq, size)` arrays and check that they
/// agree (batch, K/V heads and length, Q/K head size, grouped-query heads).
/// Returns them with the number of query heads per key/value head.
fn qkv(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    q_heads: Option<usize>,
    kv_heads: Option<usize>,
) -> KResult<(Bhsd, Bhsd, Bhsd, usize)> {
    let q4 = Bhsd::from_tensor(q, q_heads, "Q")?;
    let k4 = Bhsd::from_tensor(k, kv_heads, "K")?;
    let v4 = Bhsd::from_tensor(v, kv_heads, "V")?;
    if k4.b != q4.b || v4.b != q4.b {
        bail!("Q, K and V must have the same batch size");
    }
    if k4.h != v4.h || k4.s != v4.s {
        bail!("K {:?} and V {:?} must agree in heads and sequence length", k4.shape(), v4.shape());
    }
    if k4.d != q4.d {
        bail!("Q and K head sizes differ ({} vs {})", q4.d, k4.d);
    }
    if k4.h == 0 || q4.h % k4.h != 0 {
        bail!("the query head count {} must be a multiple of the key/value head count {}", q4.h, k4.h);
    }
    let group = q4.h / k4.h;
    Ok((q4, k4, v4, group))
}

/// A dense rank-4 float array laid out as `(batch, heads, seq, size)`.
#[derive(Debug, Clone)]
struct Bhsd {
    b: usize,
    h: usize,
    s: usize,
    d: usize,
    v: Vec<f64>,
}

impl Bhsd {
    /// Flat position of element `(b, h, s, d)`.
    fn idx(&self, b: usize, h: usize, s: usize, d: usize) -> usize {
        ((b * self.h + h) * self.s + s) * self.d + d
    }

    fn at(&self, b: usize, h: usize, s: usize, d: usize) -> f64 {
        self.v[self.idx(b, h, s, d)]
    }

    fn shape(&self) -> Vec<usize> {
        vec![self.b, self.h, self.s, self.d]
    }

    /// Read a float tensor: rank 4 is taken as is; rank 3 `(batch, seq,
    /// heads * size)` is split into `heads` (which must then be given).
    fn from_tensor(t: &Tensor, heads: Option<usize>, what: &str) -> KResult<Bhsd> {
        let v = floats(t, what)?;
        match (t.rank(), heads) {
            (4, _) => Ok(Bhsd { b: t.shape[0], h: t.shape[1], s: t.shape[2], d: t.shape[3], v: v.to_vec() }),
            (3, Some(h)) => {
                let (b, s, hidden) = (t.shape[0], t.shape[1], t.shape[2]);
                if h == 0 || hidden % h != 0 {
                    bail!("{what}: last dimension {hidden} is not divisible by the head count {h}");
                }
                let d = hidden / h;
                let mut out = Bhsd { b, h, s, d, v: vec![0.0; v.len()] };
                for bi in 0..b {
                    for si in 0..s {
                        for hi in 0..h {
                            for di in 0..d {
                                let src = (bi * s + si) * hidden + hi * d + di;
                                let dst = out.idx(bi, hi, si, di);
                                out.v[dst] = v[src];
                            }
                        }
                    }
                }
                Ok(out)
            }
            (3, None) => bail!("{what}: 3-D input needs a head count"),
            (r, _) => bail!("{what} must have rank 3 or 4, got rank {r}"),
        }
    }

    /// The data packed back to 3-D `(batch, seq, heads * size)` order.
    fn packed(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.v.len());
        for b in 0..self.b {
            for s in 0..self.s {
                for h in 0..self.h {
                    for d in 0..self.d {
                        out.push(self.at(b, h, s, d));
                    }
                }
            }
        }
        out
    }

    /// `self` followed by `next` along the sequence axis.
    fn concat_seq(&self, next: &Bhsd, what: &str) -> KResult<Bhsd> {
        if (self.b, self.h, self.d) != (next.b, next.h, next.d) {
            bail!("{what} shape {:?} does not match the new entries {:?}", self.shape(), next.shape());
        }
        let s = self.s + next.s;
        let mut v = Vec::with_capacity(self.b * self.h * s * self.d);
        for b in 0..self.b {
            for h in 0..self.h {
                for si in 0..self.s {
                    v.extend((0..self.d).map(|d| self.at(b, h, si, d)));
                }
                for si in 0..next.s {
                    v.extend((0..self.d).map(|d| next.at(b, h, si, d)));
                }
            }
        }
        Ok(Bhsd { b: self.b, h: self.h, s, d: self.d, v })
    }
}

/// Maximum of a row that, like numpy's `max`, is NaN if any element is
/// NaN (and `-inf` for an empty row).
fn nan_max(row: &[f64]) -> f64 {
    let mut m = f64::NEG_INFINITY;
    for &x in row {
        if x.is_nan() {
            return f64::NAN;
        }
        if x > m {
            m = x;
        }
    }
    m
}

/// Sum of `xs` rounded to `dt`. bfloat16 sums are rounded after every
/// addition, in order, as numpy does for that type (it has no wider
/// accumulator for it); other types are summed exactly and rounded once.
fn round_sum(xs: &[f64], dt: DType) -> f64 {
    if dt == DType::BF16 {
        xs.iter().fold(0.0, |acc, &x| dt.round_float(acc + x))
    } else {
        dt.round_float(xs.iter().sum::<f64>())
    }
}

/// Softmax of one row computed step by step in type `dt` (each step rounded
/// to `dt`, as the spec's reference does). With `zero_if_all_masked`, an
/// all-`-inf` row gives zeros instead of NaN.
fn softmax_row(row: &[f64], dt: DType, zero_if_all_masked: bool) -> Vec<f64> {
    let r = |x: f64| dt.round_float(x);
    let mut max = nan_max(row);
    if zero_if_all_masked && max == f64::NEG_INFINITY {
        max = 0.0;
    }
    let exps: Vec<f64> = row.iter().map(|&x| r(libm::exp(r(x - max)))).collect();
    let mut sum = round_sum(&exps, dt);
    if zero_if_all_masked && sum == 0.0 {
        sum = 1.0;
    }
    exps.iter().map(|&e| r(e / sum)).collect()
}
