//! The tolerance policy: how closely a backend's output of one operator must
//! match the reference backend's, decided in one place.
//!
//! [`rule_for`] maps an operator, its output element type and its reduction
//! length to a [`Rule`]; [`compare_with_rule`] applies a rule and reports the
//! rule it applied with the maximum absolute error, maximum relative error
//! and maximum ULP distance. [`node_rule`] derives the reduction length and
//! the magnitude scale from a node's actual inputs.
//!
//! The policy, with `eps` the machine epsilon of the output type
//! (f32: 2^-23, f16: 2^-10, bf16: 2^-7, f64: 2^-52):
//!
//! - **Exact**: data movement (reshape, gather, concat, ...), selection
//!   (max/min pooling and reductions, arg-max, top-k, relu, clip, ...),
//!   comparisons, and every op whose output is an integer, bool or string.
//! - **ULP bound** for elementwise float ops, per op (declared next to the
//!   operator, `strata_ir::ops::ElementwiseOp::ulp_budget`): 2 ULP for
//!   `Add`/`Sub`/`Mul` and similar arithmetic, 4 for `Div`/`Sqrt`/`Reciprocal`,
//!   16 for `Exp`/`Log`/`Tanh`/`Sigmoid`/`Erf` and other transcendental
//!   functions, 64 for compositions (`Pow`, `Gelu`, trigonometry, ...).
//!   Elements below 1 in magnitude may instead be off by `max_ulp · eps`
//!   absolutely (ULP counts explode near zeros of functions such as `sin`).
//! - **Accumulation bound** for products and reductions (MatMul, Gemm, Conv,
//!   Reduce*, pooling averages, softmax, normalisations, recurrent layers):
//!   `|a - e| <= K · eps · S + 4 · eps · |e|`, where `K` is the reduction
//!   length (K of a MatMul, C/group·kh·kw of a Conv, the number of reduced
//!   elements of a Reduce*) and `S` the magnitude scale of the inputs
//!   (`max|x| · max|w|` (+ `max|bias|`) for products, `max|x|` otherwise, and
//!   at least `max|e|`). `K · eps` is twice the classical worst-case bound
//!   `γ_K ≈ K · u` (u = eps/2) of a length-K sum in any order; the relative
//!   term covers the final rounding and fused epilogues. An element within
//!   4 ULP always passes.
//! - **f16/bf16** (and narrower floats): ULP bounds and accumulation bounds
//!   are doubled, since backends may keep intermediates in the narrow type.
//! - Every float rule also accepts errors up to the smallest normal number of
//!   the type (backends may flush subnormals to zero). NaN matches only NaN,
//!   infinities match only themselves.
//! - Random generators are compared by shape and type only.

use serde::{Deserialize, Serialize};
use strata::Value;
use strata_ir::DType;
use strata_ir::ops::{NnOp, QuantOp, ReduceOp, SignalOp};
use strata_ir::{Op, dtype};

/// How the outputs of one operator are compared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Rule {
    /// Every element equal (NaN matches NaN).
    Exact,
    /// At most `max_ulp` units in the last place of the output type apart
    /// (or within `max_ulp · eps` absolutely for elements below 1 in magnitude).
    Ulp { max_ulp: u64 },
    /// `|a - e| <= atol_per_scale · S + rtol · |e|` where `S` is the input
    /// magnitude scale given at comparison time; `k` is the reduction length.
    Accumulation { k: u64, atol_per_scale: f64, rtol: f64 },
    /// Shape and type only (non-deterministic operators).
    ShapeOnly,
}

impl Rule {
    /// A short human-readable statement of the rule.
    pub fn describe(&self) -> String {
        match self {
            Rule::Exact => "exact".into(),
            Rule::Ulp { max_ulp } => format!("ulp<={max_ulp}"),
            Rule::Accumulation { k, atol_per_scale, rtol } => {
                format!("abs<={atol_per_scale:.3e}*S+{rtol:.3e}*|e| (K={k})")
            }
            Rule::ShapeOnly => "shape-only".into(),
        }
    }
}

/// Computes a rule's scale `S` from the expected value.
pub type ScaleFn = fn(&Value) -> f64;

/// The end-to-end rule for a float value computed from inputs that were
/// themselves computed on a target (a staged run): errors propagate, so the
/// bound is relative to the tensor's largest magnitude,
/// `|a - e| <= t · max|e| + t · |e|` with `t = 1e-4` for f32/f64 and `1e-2`
/// for 16-bit and narrower floats. Returns the rule and the function giving
/// its scale `S = max|e|` from the expected value; `None` for non-float types
/// (which stay exact).
pub fn propagated_rule(d: DType) -> Option<(Rule, ScaleFn)> {
    if !d.is_float() {
        return None;
    }
    let t = if d.bits() >= 32 { 1e-4 } else { 1e-2 };
    fn max_abs(v: &Value) -> f64 {
        v.as_tensor()
            .map(|t| t.to_f64_vec().iter().filter(|x| x.is_finite()).fold(0.0f64, |a, x| a.max(x.abs())))
            .unwrap_or(0.0)
    }
    Some((Rule::Accumulation { k: 0, atol_per_scale: t, rtol: t }, max_abs))
}

/// Machine epsilon (distance from 1 to the next number) of a float type; 0 for others.
pub fn epsilon(d: DType) -> f64 {
    match d {
        DType::F64 | DType::C128 => f64::EPSILON,
        DType::F32 | DType::C64 => f32::EPSILON as f64,
        DType::F16 => 2f64.powi(-10),
        DType::BF16 => 2f64.powi(-7),
        DType::F8E4M3FN | DType::F8E4M3FNUZ => 2f64.powi(-3),
        DType::F8E5M2 | DType::F8E5M2FNUZ => 2f64.powi(-2),
        DType::F4E2M1 => 0.5,
        DType::F8E8M0 => 1.0,
        _ => 0.0,
    }
}

/// Smallest positive normal number of a float type; 0 for others.
pub fn min_normal(d: DType) -> f64 {
    match d {
        DType::F64 | DType::C128 => f64::MIN_POSITIVE,
        DType::F32 | DType::C64 | DType::BF16 => f32::MIN_POSITIVE as f64,
        DType::F16 => 2f64.powi(-14),
        DType::F8E4M3FN => 2f64.powi(-6),
        DType::F8E4M3FNUZ => 2f64.powi(-7),
        DType::F8E5M2 => 2f64.powi(-14),
        DType::F8E5M2FNUZ => 2f64.powi(-15),
        DType::F4E2M1 => 1.0,
        DType::F8E8M0 => 2f64.powi(-127),
        _ => 0.0,
    }
}

/// True for float types narrower than f32, whose bounds are doubled.
fn is_narrow_float(d: DType) -> bool {
    d.is_float() && !matches!(d, DType::F32 | DType::F64)
}

/// The rule for an operator whose output has element type `dtype` and whose
/// reduction length is `reduction_len` (1 for elementwise operators).
pub fn rule_for(op: &Op, dtype: DType, reduction_len: u64) -> Rule {
    if !op.is_deterministic() {
        return Rule::ShapeOnly;
    }
    if !dtype.is_float() && !dtype.is_complex() {
        return Rule::Exact;
    }
    let eps = epsilon(dtype);
    let widen = if is_narrow_float(dtype) { 2 } else { 1 };
    let accumulate = || {
        let k = reduction_len.max(1);
        Rule::Accumulation { k, atol_per_scale: k as f64 * eps * widen as f64, rtol: 4.0 * eps * widen as f64 }
    };
    match op {
        Op::Elementwise(e) => match e.ulp_budget() {
            None => Rule::Exact,
            Some(u) => Rule::Ulp { max_ulp: u * widen },
        },
        Op::Tensor(_) | Op::Control(_) | Op::Text(_) => Rule::Exact,
        Op::Reduce(
            ReduceOp::ReduceMax { .. }
            | ReduceOp::ReduceMin { .. }
            | ReduceOp::ArgMax { .. }
            | ReduceOp::ArgMin { .. }
            | ReduceOp::TopK { .. }
            | ReduceOp::Hardmax { .. }
            | ReduceOp::HardmaxLegacy { .. },
        ) => Rule::Exact,
        Op::Nn(
            NnOp::MaxPool { .. }
            | NnOp::GlobalMaxPool {}
            | NnOp::MaxUnpool { .. }
            | NnOp::MaxRoiPool { .. }
            | NnOp::Dropout { .. }
            | NnOp::NonMaxSuppression { .. },
        ) => Rule::Exact,
        Op::Signal(SignalOp::HannWindow { .. } | SignalOp::HammingWindow { .. } | SignalOp::BlackmanWindow { .. }) => {
            Rule::Ulp { max_ulp: 64 * widen }
        }
        Op::Quant(QuantOp::DequantizeLinear { .. }) => Rule::Ulp { max_ulp: 2 * widen },
        _ => accumulate(),
    }
}

/// A comparison's result: the rule applied and the worst errors seen.
///
/// Non-finite errors (a NaN where a number was expected, a wrong infinity)
/// are reported as `f64::MAX` / `u64::MAX` so the report stays valid JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The rule, as [`Rule::describe`] states it (with the scale used, if any).
    pub rule: String,
    /// Whether every element satisfied the rule.
    pub pass: bool,
    /// Largest `|a - e|`.
    pub max_abs: f64,
    /// Largest `|a - e| / max(|e|, smallest normal)`.
    pub max_rel: f64,
    /// Largest distance in units in the last place of the element type
    /// (for integers: the integer difference).
    pub max_ulp: u64,
    /// Elements compared.
    pub elements: usize,
    /// Elements outside the rule.
    pub mismatches: usize,
    /// What went wrong first (type or shape mismatch, worst element), if anything.
    pub message: Option<String>,
}

impl Comparison {
    fn new(rule: String) -> Self {
        Comparison {
            rule,
            pass: true,
            max_abs: 0.0,
            max_rel: 0.0,
            max_ulp: 0,
            elements: 0,
            mismatches: 0,
            message: None,
        }
    }

    fn fail(rule: String, message: String) -> Self {
        Comparison {
            pass: false,
            message: Some(message),
            max_abs: f64::MAX,
            max_rel: f64::MAX,
            ..Comparison::new(rule)
        }
    }

    /// Merge another comparison (of a sibling value) into this one.
    pub fn merge(&mut self, other: &Comparison) {
        self.pass &= other.pass;
        self.max_abs = self.max_abs.max(other.max_abs);
        self.max_rel = self.max_rel.max(other.max_rel);
        self.max_ulp = self.max_ulp.max(other.max_ulp);
        self.elements += other.elements;
        self.mismatches += other.mismatches;
        if self.message.is_none() {
            self.message.clone_from(&other.message);
        }
    }
}

/// Order-preserving integer image of a float's bit pattern in type `d`:
/// neighbouring representable numbers differ by 1, and +0 equals -0.
fn ordered_bits(d: DType, v: f64) -> i128 {
    let (bits, width): (u64, u32) = match d {
        DType::F64 | DType::C128 => (v.to_bits(), 64),
        DType::F32 | DType::C64 => ((v as f32).to_bits() as u64, 32),
        DType::F8E8M0 => return dtype::encode_float_bits(d, v, false) as i128,
        _ => (dtype::encode_float_bits(d, v, false) as u64, d.bits() as u32),
    };
    let sign = 1u64 << (width - 1);
    if bits & sign != 0 { -((bits & !sign) as i128) } else { bits as i128 }
}

/// Distance between two numbers of type `d` in units in the last place.
pub fn ulp_distance(d: DType, a: f64, e: f64) -> u64 {
    if a.is_nan() || e.is_nan() {
        return if a.is_nan() && e.is_nan() { 0 } else { u64::MAX };
    }
    let diff = (ordered_bits(d, a) - ordered_bits(d, e)).unsigned_abs();
    u64::try_from(diff).unwrap_or(u64::MAX)
}

/// Compare `actual` with `expected` under `rule`. `scale` is the input
/// magnitude `S` of [`Rule::Accumulation`] (ignored by other rules).
/// Element types and shapes must match exactly under every rule.
pub fn compare_with_rule(actual: &Value, expected: &Value, rule: Rule, scale: f64) -> Comparison {
    let label = match rule {
        Rule::Accumulation { .. } => format!("{} S={scale:.3e}", rule.describe()),
        _ => rule.describe(),
    };
    match (actual, expected) {
        (Value::Tensor(a), Value::Tensor(e)) => {
            if a.dtype() != e.dtype() {
                return Comparison::fail(label, format!("dtype {} != expected {}", a.dtype(), e.dtype()));
            }
            if a.shape() != e.shape() {
                return Comparison::fail(label, format!("shape {:?} != expected {:?}", a.shape(), e.shape()));
            }
            let mut c = Comparison::new(label);
            c.elements = a.numel();
            if rule == Rule::ShapeOnly {
                return c;
            }
            let d = a.dtype();
            if d == DType::String {
                let (x, y) = (a.strings().unwrap_or(&[]), e.strings().unwrap_or(&[]));
                for i in 0..x.len().min(y.len()) {
                    if x[i] != y[i] {
                        c.mismatches += 1;
                        if c.message.is_none() {
                            c.message = Some(format!("element {i}: {:?} != expected {:?}", x[i], y[i]));
                        }
                    }
                }
                c.pass = c.mismatches == 0;
                if !c.pass {
                    c.max_ulp = u64::MAX;
                    c.max_abs = f64::MAX;
                    c.max_rel = f64::MAX;
                }
                return c;
            }
            if !d.is_float() && !d.is_complex() {
                let (x, y) = (a.to_i128_vec(), e.to_i128_vec());
                for i in 0..x.len().min(y.len()) {
                    let diff = (x[i] - y[i]).unsigned_abs();
                    if diff != 0 {
                        c.mismatches += 1;
                        let abs = diff as f64;
                        c.max_abs = c.max_abs.max(abs);
                        c.max_rel = c.max_rel.max(abs / (y[i].unsigned_abs() as f64).max(1.0));
                        c.max_ulp = c.max_ulp.max(u64::try_from(diff).unwrap_or(u64::MAX));
                        if c.message.is_none() {
                            c.message = Some(format!("element {i}: {} != expected {}", x[i], y[i]));
                        }
                    }
                }
                c.pass = c.mismatches == 0;
                return c;
            }
            compare_floats(&mut c, d, &a.to_f64_vec(), &e.to_f64_vec(), rule, scale);
            c
        }
        (Value::Sequence { items: a, .. }, Value::Sequence { items: e, .. }) => {
            if a.len() != e.len() {
                return Comparison::fail(label, format!("sequence length {} != expected {}", a.len(), e.len()));
            }
            let mut c = Comparison::new(label);
            for (x, y) in a.iter().zip(e) {
                c.merge(&compare_with_rule(x, y, rule, scale));
            }
            c
        }
        (Value::Optional { value: a, .. }, Value::Optional { value: e, .. }) => match (a, e) {
            (None, None) => Comparison::new(label),
            (Some(x), Some(y)) => compare_with_rule(x, y, rule, scale),
            (None, Some(_)) => Comparison::fail(label, "optional is empty, expected a value".into()),
            (Some(_), None) => Comparison::fail(label, "optional has a value, expected empty".into()),
        },
        (a, e) => Comparison::fail(label, format!("value kind {} != expected {}", a.describe(), e.describe())),
    }
}

fn compare_floats(c: &mut Comparison, d: DType, x: &[f64], y: &[f64], rule: Rule, scale: f64) {
    let eps = epsilon(d);
    let floor = min_normal(d);
    let max_e = y.iter().filter(|v| v.is_finite()).fold(0f64, |m, v| m.max(v.abs()));
    let s = scale.max(max_e);
    let mut worst: Option<(usize, f64)> = None;
    for i in 0..x.len().min(y.len()) {
        let (a, e) = (x[i], y[i]);
        let ulp = ulp_distance(d, a, e);
        let (abs, rel) = if a.is_nan() || e.is_nan() || a.is_infinite() || e.is_infinite() {
            if ulp == 0 || a == e { (0.0, 0.0) } else { (f64::MAX, f64::MAX) }
        } else {
            let abs = (a - e).abs();
            (abs, abs / e.abs().max(floor).max(f64::MIN_POSITIVE))
        };
        let ok = if abs == f64::MAX {
            false
        } else if ulp == 0 {
            true
        } else if rule == Rule::Exact {
            false
        } else if abs <= floor {
            true
        } else {
            match rule {
                Rule::Exact | Rule::ShapeOnly => rule == Rule::ShapeOnly,
                Rule::Ulp { max_ulp } => ulp <= max_ulp || (e.abs() < 1.0 && abs <= max_ulp as f64 * eps),
                Rule::Accumulation { atol_per_scale, rtol, .. } => {
                    ulp <= 4 || abs <= atol_per_scale * s + rtol * e.abs()
                }
            }
        };
        c.max_abs = c.max_abs.max(abs);
        c.max_rel = c.max_rel.max(rel);
        c.max_ulp = c.max_ulp.max(ulp);
        if !ok {
            c.mismatches += 1;
            if worst.is_none_or(|(_, w)| abs > w) {
                worst = Some((i, abs));
            }
        }
    }
    c.pass = c.mismatches == 0;
    if let Some((i, abs)) = worst {
        c.message = Some(format!(
            "{} of {} elements outside {}; worst at {i}: {} vs expected {} (abs err {abs:.3e})",
            c.mismatches,
            x.len(),
            rule.describe(),
            x[i],
            y[i]
        ));
    }
}

fn shape_of(v: Option<&Value>) -> Option<&[usize]> {
    v.and_then(|v| v.as_tensor()).map(|t| t.shape())
}

fn numel(s: &[usize]) -> u64 {
    s.iter().map(|&d| d as u64).product()
}

/// Axis `a` (possibly negative) of a rank-`r` shape, clamped into range.
fn axis(a: i64, r: usize) -> usize {
    let r = r as i64;
    (if a < 0 { a + r } else { a }).clamp(0, (r - 1).max(0)) as usize
}

/// The reduction length of a node: how many products or terms each output
/// element sums (K of a MatMul, C/group·kh·kw of a Conv, the number of
/// reduced elements of a Reduce*, ...), from its operator and actual inputs
/// and outputs; 1 for elementwise operators. Approximate where an operator
/// mixes several sums (recurrent layers, attention, einsum): then it errs
/// on the large side.
pub fn reduction_length(op: &Op, inputs: &[Option<&Value>], outputs: &[Option<&Value>]) -> u64 {
    let in0 = shape_of(inputs.first().copied().flatten());
    let in1 = shape_of(inputs.get(1).copied().flatten());
    let out0 = shape_of(outputs.first().copied().flatten());
    let ratio = || match (in0, out0) {
        (Some(i), Some(o)) => numel(i) / numel(o).max(1),
        _ => 1,
    };
    let tail = |s: Option<&[usize]>, from: usize| s.map_or(1, |s| numel(s.get(from..).unwrap_or(&[])));
    let k = match op {
        Op::Nn(n) => match n {
            NnOp::MatMul {} => in0.and_then(|s| s.last().copied()).unwrap_or(1) as u64,
            NnOp::Gemm { transA, .. } => {
                in0.and_then(|s| s.get(if *transA != 0 { 0 } else { 1 }).copied()).unwrap_or(1) as u64
            }
            NnOp::Conv { .. } | NnOp::DeformConv { .. } => tail(in1, 1),
            NnOp::ConvTranspose { .. } => in1.map_or(1, |s| s.first().copied().unwrap_or(1) as u64) * tail(in1, 2),
            NnOp::Einsum { .. } => match (in0, in1, out0) {
                (Some(a), Some(b), Some(o)) => {
                    ((numel(a) as f64 * numel(b) as f64 / numel(o).max(1) as f64).sqrt()) as u64
                }
                _ => ratio(),
            },
            NnOp::GlobalAveragePool {} | NnOp::GlobalLpPool { .. } | NnOp::InstanceNormalization { .. } => tail(in0, 2),
            NnOp::AveragePool { kernel_shape, .. } | NnOp::LpPool { kernel_shape, .. } => {
                kernel_shape.iter().map(|&k| k.max(1) as u64).product()
            }
            NnOp::LayerNormalization { axis: a, .. } | NnOp::RMSNormalization { axis: a, .. } => {
                in0.map_or(1, |s| numel(&s[axis(*a, s.len())..]))
            }
            NnOp::GroupNormalization { num_groups, .. } => in0.map_or(1, |s| {
                numel(s) / (s.first().copied().unwrap_or(1) as u64 * (*num_groups).max(1) as u64).max(1)
            }),
            NnOp::LpNormalization { axis: a, .. } => {
                in0.map_or(1, |s| s.get(axis(*a, s.len())).copied().unwrap_or(1) as u64)
            }
            NnOp::MeanVarianceNormalization { axes } => {
                in0.map_or(1, |s| axes.iter().map(|&a| s.get(axis(a, s.len())).copied().unwrap_or(1) as u64).product())
            }
            NnOp::LRN { size, .. } => (*size).max(1) as u64,
            NnOp::Attention { .. } | NnOp::FlexAttention { .. } | NnOp::LinearAttention { .. } => {
                let d = in0.and_then(|s| s.last().copied()).unwrap_or(1) as u64;
                let seq = in1.and_then(|s| s.iter().rev().nth(1).copied()).unwrap_or(1) as u64;
                d + seq
            }
            NnOp::RNN { .. } | NnOp::GRU { .. } | NnOp::LSTM { .. } => {
                let steps = in0.and_then(|s| s.first().copied()).unwrap_or(1) as u64;
                let w = in1.and_then(|s| s.last().copied()).unwrap_or(1) as u64;
                let r = shape_of(inputs.get(2).copied().flatten()).and_then(|s| s.last().copied()).unwrap_or(1) as u64;
                steps * (w + r)
            }
            NnOp::Resize { .. } | NnOp::Upsample { .. } | NnOp::GridSample { .. } | NnOp::RoiAlign { .. } => 16,
            _ => 1,
        },
        Op::Reduce(r) => match r {
            ReduceOp::Softmax { axis: a } | ReduceOp::LogSoftmax { axis: a } => {
                in0.map_or(1, |s| s.get(axis(*a, s.len())).copied().unwrap_or(1) as u64)
            }
            ReduceOp::SoftmaxLegacy { axis: a } | ReduceOp::LogSoftmaxLegacy { axis: a } => {
                in0.map_or(1, |s| numel(&s[axis(*a, s.len())..]))
            }
            ReduceOp::CumSum { .. } | ReduceOp::CumProd { .. } => {
                in0.and_then(|s| s.iter().max().copied()).unwrap_or(1) as u64
            }
            _ => ratio(),
        },
        Op::Signal(SignalOp::DFT { .. } | SignalOp::STFT { .. }) => {
            in0.and_then(|s| s.iter().max().copied()).unwrap_or(1) as u64
        }
        Op::Quant(QuantOp::QLinearConv { .. }) => tail(shape_of(inputs.get(3).copied().flatten()), 1),
        Op::Quant(QuantOp::QLinearMatMul {}) => in0.and_then(|s| s.last().copied()).unwrap_or(1) as u64,
        _ => 1,
    };
    k.max(1)
}

fn max_abs(v: Option<&Value>) -> f64 {
    match v.and_then(|v| v.as_tensor()) {
        Some(t) if t.dtype().is_float() => {
            t.to_f64_vec().iter().filter(|x| x.is_finite()).fold(0f64, |m, x| m.max(x.abs()))
        }
        _ => 0.0,
    }
}

/// The input magnitude scale `S` of [`Rule::Accumulation`] for a node:
/// `max|in0| · max|in1| + max|in2|` for products (MatMul, Gemm, Conv,
/// ConvTranspose, Einsum), the largest `max|x|` over float inputs otherwise.
pub fn input_scale(op: &Op, inputs: &[Option<&Value>]) -> f64 {
    let m = |i: usize| max_abs(inputs.get(i).copied().flatten());
    match op {
        Op::Nn(
            NnOp::MatMul {} | NnOp::Gemm { .. } | NnOp::Conv { .. } | NnOp::ConvTranspose { .. } | NnOp::Einsum { .. },
        ) => m(0) * m(1) + m(2),
        _ => (0..inputs.len()).map(m).fold(0.0, f64::max),
    }
}

/// The rule and scale for one output of a node, from the node's operator and
/// its actual inputs and outputs.
pub fn node_rule(op: &Op, out_dtype: DType, inputs: &[Option<&Value>], outputs: &[Option<&Value>]) -> (Rule, f64) {
    let k = reduction_length(op, inputs, outputs);
    (rule_for(op, out_dtype, k), input_scale(op, inputs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata::Tensor;
    use strata_ir::ops::{ElementwiseOp, RandomOp, TensorOp};

    fn f32v(v: &[f32]) -> Value {
        Value::Tensor(Tensor::from_f32(vec![v.len()], v).unwrap())
    }

    fn next_up(x: f32, n: u32) -> f32 {
        f32::from_bits(x.to_bits() + n)
    }

    #[test]
    fn data_movement_and_integer_ops_are_exact() {
        let reshape = Op::Tensor(TensorOp::Reshape { allowzero: 0, shape: None });
        assert_eq!(rule_for(&reshape, DType::F32, 1), Rule::Exact);
        assert_eq!(rule_for(&Op::Elementwise(ElementwiseOp::Add {}), DType::I64, 1), Rule::Exact);
        assert_eq!(rule_for(&Op::Elementwise(ElementwiseOp::Relu {}), DType::F32, 1), Rule::Exact);
        assert_eq!(rule_for(&Op::Nn(NnOp::MatMul {}), DType::I32, 64), Rule::Exact);
        assert_eq!(rule_for(&Op::Elementwise(ElementwiseOp::Less {}), DType::Bool, 1), Rule::Exact);
    }

    #[test]
    fn elementwise_ops_get_per_op_ulp_bounds() {
        let ulp = |op: ElementwiseOp, d| match rule_for(&Op::Elementwise(op), d, 1) {
            Rule::Ulp { max_ulp } => max_ulp,
            r => panic!("expected a ULP rule, got {r:?}"),
        };
        let add = ulp(ElementwiseOp::Add {}, DType::F32);
        let exp = ulp(ElementwiseOp::Exp {}, DType::F32);
        assert!(add <= 4, "add: {add}");
        assert!(exp > add, "exp {exp} should be looser than add {add}");
        assert!(ulp(ElementwiseOp::Tanh {}, DType::F32) > add);
        assert!(ulp(ElementwiseOp::Erf {}, DType::F32) > add);
        assert!(ulp(ElementwiseOp::Sigmoid {}, DType::F32) > add);
        assert!(ulp(ElementwiseOp::Exp {}, DType::F16) > exp);
    }

    #[test]
    fn accumulation_bound_grows_with_reduction_length_and_narrow_types() {
        let mm = Op::Nn(NnOp::MatMul {});
        let atol = |d, k| match rule_for(&mm, d, k) {
            Rule::Accumulation { atol_per_scale, .. } => atol_per_scale,
            r => panic!("expected an accumulation rule, got {r:?}"),
        };
        assert!(atol(DType::F32, 1024) > atol(DType::F32, 16));
        assert_eq!(atol(DType::F32, 100), 100.0 * f32::EPSILON as f64);
        assert!(atol(DType::F16, 100) > atol(DType::F32, 100));
        assert!(atol(DType::BF16, 100) > atol(DType::F16, 100));
        let sum = Op::Reduce(ReduceOp::ReduceSum { axes: None, keepdims: 1, noop_with_empty_axes: 0 });
        assert!(matches!(rule_for(&sum, DType::F32, 10), Rule::Accumulation { k: 10, .. }));
    }

    #[test]
    fn reduction_length_of_matmul_conv_and_reduce() {
        let t = |s: Vec<usize>| Value::Tensor(Tensor::from_f32(s.clone(), &vec![1.0; s.iter().product()]).unwrap());
        let (a, b, o) = (t(vec![2, 3, 5]), t(vec![5, 7]), t(vec![2, 3, 7]));
        assert_eq!(reduction_length(&Op::Nn(NnOp::MatMul {}), &[Some(&a), Some(&b)], &[Some(&o)]), 5);
        let conv = Op::Nn(NnOp::Conv {
            auto_pad: strata_ir::window::AutoPad::NotSet,
            dilations: None,
            group: 1,
            kernel_shape: None,
            pads: None,
            strides: None,
        });
        let (x, w, y) = (t(vec![1, 4, 6, 6]), t(vec![8, 4, 3, 3]), t(vec![1, 8, 4, 4]));
        assert_eq!(reduction_length(&conv, &[Some(&x), Some(&w)], &[Some(&y)]), 36);
        let mean = Op::Reduce(ReduceOp::ReduceMean { axes: Some(vec![1]), keepdims: 1, noop_with_empty_axes: 0 });
        let (x, y) = (t(vec![2, 10, 3]), t(vec![2, 1, 3]));
        assert_eq!(reduction_length(&mean, &[Some(&x)], &[Some(&y)]), 10);
        assert_eq!(input_scale(&Op::Nn(NnOp::MatMul {}), &[Some(&f32v(&[2.0, -3.0])), Some(&f32v(&[0.5]))]), 1.5);
    }

    #[test]
    fn ulp_distance_counts_representable_steps() {
        assert_eq!(ulp_distance(DType::F32, 1.0, next_up(1.0, 3) as f64), 3);
        assert_eq!(ulp_distance(DType::F32, 0.0, -0.0), 0);
        assert_eq!(ulp_distance(DType::F32, -f32::MIN_POSITIVE as f64, f32::MIN_POSITIVE as f64), 2 << 23);
        assert_eq!(ulp_distance(DType::F16, 1.0, 1.0 + 2f64.powi(-10)), 1);
        assert_eq!(ulp_distance(DType::F32, f64::NAN, f64::NAN), 0);
        assert_eq!(ulp_distance(DType::F32, f64::NAN, 1.0), u64::MAX);
    }

    #[test]
    fn comparison_reports_rule_errors_and_verdict() {
        let e = f32v(&[1.0, 2.0, -4.0]);
        let a = f32v(&[1.0, next_up(2.0, 2), -4.0]);
        let c = compare_with_rule(&a, &e, Rule::Ulp { max_ulp: 2 }, 0.0);
        assert!(c.pass, "{c:?}");
        assert_eq!(c.max_ulp, 2);
        assert_eq!(c.rule, "ulp<=2");
        assert!(c.max_abs > 0.0 && c.max_rel > 0.0);
        let c = compare_with_rule(&a, &e, Rule::Exact, 0.0);
        assert!(!c.pass);
        assert_eq!(c.mismatches, 1);
        assert!(c.message.as_deref().unwrap_or("").contains("worst at 1"), "{c:?}");
        let wrong = f32v(&[1.0, 2.5, -4.0]);
        let rule = rule_for(&Op::Nn(NnOp::MatMul {}), DType::F32, 8);
        assert!(!compare_with_rule(&wrong, &e, rule, 4.0).pass);
        let near = f32v(&[1.0, 2.0 + 1e-6, -4.0]);
        let c = compare_with_rule(&near, &e, rule, 4.0);
        assert!(c.pass && c.rule.starts_with("abs<="), "{c:?}");
        let nan = f32v(&[1.0, f32::NAN, -4.0]);
        let c = compare_with_rule(&nan, &e, rule, 4.0);
        assert!(!c.pass && c.max_abs == f64::MAX && c.max_ulp == u64::MAX);
        let short = f32v(&[1.0]);
        assert!(!compare_with_rule(&short, &e, Rule::ShapeOnly, 0.0).pass);
    }

    #[test]
    fn random_ops_are_compared_by_shape_only() {
        let op =
            Op::Random(RandomOp::RandomUniform { dtype: DType::F32, high: 1.0, low: 0.0, seed: None, shape: vec![2] });
        assert_eq!(rule_for(&op, DType::F32, 1), Rule::ShapeOnly);
        assert!(compare_with_rule(&f32v(&[0.1, 0.2]), &f32v(&[0.7, 0.9]), Rule::ShapeOnly, 0.0).pass);
    }
}
