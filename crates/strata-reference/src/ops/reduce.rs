//! Reference kernels for `strata_ir::ops::ReduceOp`: reductions over axes,
//! arg-max/min, cumulative sums and products, softmax-like normalisations,
//! top-k and the two classification losses.
//!
//! Most kernels view the input along one axis as `outer × len × inner`: the
//! elements of one "line" along the axis are `base + j * inner` for
//! `j in 0..len`, with `base = o * len * inner + i`.

use std::cmp::Ordering;

use strata_ir::DType;
use strata_ir::ops::ReduceOp;
use strata_ir::ops::reduce::LossReduction;

use super::{Args, Ctx, one};
use crate::bail;
use crate::error::{KResult, KernelError};
use crate::util::{check_numel, norm_axes, norm_axis, ravel, unravel};
use crate::value::{Data, Tensor, Value};

/// Run one operator of this family.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &ReduceOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use ReduceOp as R;
    match op {
        R::ReduceSum { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::Sum)
        }
        R::ReduceMean { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::Mean)
        }
        R::ReduceMax { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::Max)
        }
        R::ReduceMin { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::Min)
        }
        R::ReduceProd { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::Prod)
        }
        R::ReduceL1 { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::L1)
        }
        R::ReduceL2 { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::L2)
        }
        R::ReduceLogSum { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::LogSum)
        }
        R::ReduceLogSumExp { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::LogSumExp)
        }
        R::ReduceSumSquare { axes, keepdims, noop_with_empty_axes } => {
            reduce(args, axes, *keepdims, *noop_with_empty_axes, Kind::SumSquare)
        }
        R::ArgMax { axis, keepdims, select_last_index } => {
            arg_extreme(args.tensor(0)?, *axis, *keepdims != 0, *select_last_index != 0, Ordering::Greater)
        }
        R::ArgMin { axis, keepdims, select_last_index } => {
            arg_extreme(args.tensor(0)?, *axis, *keepdims != 0, *select_last_index != 0, Ordering::Less)
        }
        R::CumSum { exclusive, reverse } => cumulative(args, *exclusive != 0, *reverse != 0, false),
        R::CumProd { exclusive, reverse } => cumulative(args, *exclusive != 0, *reverse != 0, true),
        R::Softmax { axis } => normalise(args.tensor(0)?, *axis, false, Norm::Softmax),
        R::LogSoftmax { axis } => normalise(args.tensor(0)?, *axis, false, Norm::LogSoftmax),
        R::Hardmax { axis } => normalise(args.tensor(0)?, *axis, false, Norm::Hardmax),
        R::SoftmaxLegacy { axis } => normalise(args.tensor(0)?, *axis, true, Norm::Softmax),
        R::LogSoftmaxLegacy { axis } => normalise(args.tensor(0)?, *axis, true, Norm::LogSoftmax),
        R::HardmaxLegacy { axis } => normalise(args.tensor(0)?, *axis, true, Norm::Hardmax),
        R::TopK { axis, largest, sorted: _, k } => top_k(args, *axis, *largest != 0, *k),
        R::SoftmaxCrossEntropyLoss { ignore_index, reduction } => loss(args, *ignore_index, reduction, true),
        R::NegativeLogLikelihoodLoss { ignore_index, reduction } => loss(args, *ignore_index, reduction, false),
    }
}

// ---------------------------------------------------------------------------
// Reductions over a set of axes

/// Which reduction to apply to each group of elements.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

/// The `Reduce*` operators. Axes come from input 1 when present, else from
/// the (older opsets') attribute. Empty axes mean "all axes", unless
/// `noop_with_empty_axes` is set: then nothing is reduced and every group
/// holds a single element (so e.g. ReduceSumSquare still squares, as the
/// ONNX reference implementation does).
fn reduce(args: &Args, attr_axes: &Option<Vec<i64>>, keepdims: i64, noop: i64, kind: Kind) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let axes: Vec<i64> = match args.opt_tensor(1)? {
        Some(t) => {
            if !t.dtype.is_int() {
                bail!("axes must be an integer tensor, got {}", t.dtype);
            }
            if t.rank() > 1 {
                bail!("axes must be 1-D, got shape {:?}", t.shape);
            }
            t.to_i64()?
        }
        None => attr_axes.clone().unwrap_or_default(),
    };
    let rank = x.rank();
    let mut reduced = vec![false; rank];
    if axes.is_empty() {
        if noop == 0 {
            reduced = vec![true; rank];
        }
    } else {
        for a in norm_axes(&axes, rank)? {
            reduced[a] = true;
        }
    }

    // Shape with reduced axes kept as 1, and the final output shape.
    let kept_shape: Vec<usize> = x.shape.iter().zip(&reduced).map(|(&d, &r)| if r { 1 } else { d }).collect();
    let out_shape: Vec<usize> = if keepdims != 0 {
        kept_shape.clone()
    } else {
        x.shape.iter().zip(&reduced).filter(|(_, r)| !**r).map(|(&d, _)| d).collect()
    };
    let out_n = check_numel(&kept_shape)?;

    // groups[o] = flat input indices reduced into output element o, in
    // row-major order (the order in which values are combined).
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); out_n];
    for flat in 0..x.numel() {
        let mut idx = unravel(flat, &x.shape);
        for (k, r) in reduced.iter().enumerate() {
            if *r {
                idx[k] = 0;
            }
        }
        groups[ravel(&idx, &kept_shape)].push(flat);
    }

    let t = match &x.data {
        Data::F(v) => {
            let out = groups.iter().map(|g| reduce_floats(g.iter().map(|&i| v[i]), kind)).collect();
            Tensor::from_f(x.dtype, out_shape, out)?
        }
        Data::I(v) => {
            let out = groups
                .iter()
                .map(|g| reduce_ints(&g.iter().map(|&i| v[i]).collect::<Vec<_>>(), kind, x.dtype))
                .collect::<KResult<_>>()?;
            Tensor::from_i(x.dtype, out_shape, out)?
        }
        Data::B(v) => {
            let out = match kind {
                // The empty case gives the identity: false for max, true for min.
                Kind::Max => groups.iter().map(|g| g.iter().any(|&i| v[i])).collect(),
                Kind::Min => groups.iter().map(|g| g.iter().all(|&i| v[i])).collect(),
                _ => bail!("this reduction does not support bool input"),
            };
            Tensor::from_b(out_shape, out)?
        }
        Data::S(_) => bail!("reductions do not support string input"),
    };
    one(t)
}

/// Reduce a group of float values (combined in the given order).
fn reduce_floats(vals: impl Iterator<Item = f64> + Clone, kind: Kind) -> f64 {
    let sum = |it: &mut dyn Iterator<Item = f64>| it.fold(0.0, |a, v| a + v);
    match kind {
        Kind::Sum => sum(&mut vals.clone()),
        Kind::Mean => {
            // An empty group gives 0/0 = NaN.
            let n = vals.clone().count() as f64;
            sum(&mut vals.clone()) / n
        }
        Kind::Max => vals.fold(f64::NEG_INFINITY, |a, v| if a.is_nan() || v.is_nan() { f64::NAN } else { a.max(v) }),
        Kind::Min => vals.fold(f64::INFINITY, |a, v| if a.is_nan() || v.is_nan() { f64::NAN } else { a.min(v) }),
        Kind::Prod => vals.fold(1.0, |a, v| a * v),
        Kind::L1 => sum(&mut vals.map(f64::abs)),
        Kind::L2 => libm::sqrt(sum(&mut vals.map(|v| v * v))),
        Kind::SumSquare => sum(&mut vals.map(|v| v * v)),
        Kind::LogSum => libm::log(sum(&mut vals.clone())),
        Kind::LogSumExp => {
            // Shift by the largest finite value for stability; with none (all
            // infinite, or empty) no shift is needed: exp(±inf) is exact.
            let m = vals.clone().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max);
            let m = if m.is_finite() { m } else { 0.0 };
            libm::log(sum(&mut vals.map(|v| libm::exp(v - m)))) + m
        }
    }
}

/// Reduce a group of integer values; the result stays an integer (wrapped
/// to `dtype` when the tensor is built).
fn reduce_ints(vals: &[i128], kind: Kind, dtype: DType) -> KResult<i128> {
    let sum = |f: &dyn Fn(i128) -> i128| vals.iter().fold(0i128, |a, &v| a.wrapping_add(f(v)));
    let (lo, hi) = dtype.int_range().unwrap_or((i128::MIN, i128::MAX));
    Ok(match kind {
        Kind::Sum => sum(&|v| v),
        Kind::Mean => {
            if vals.is_empty() {
                bail!("ReduceMean of an empty set is undefined for integer type {dtype}");
            }
            // Integer division truncates toward zero, like a cast of the true mean.
            sum(&|v| v) / vals.len() as i128
        }
        Kind::Max => vals.iter().copied().fold(lo, i128::max),
        Kind::Min => vals.iter().copied().fold(hi, i128::min),
        Kind::Prod => vals.iter().fold(1i128, |a, &v| a.wrapping_mul(v)),
        Kind::L1 => sum(&|v| v.wrapping_abs()),
        Kind::SumSquare => sum(&|v| v.wrapping_mul(v)),
        Kind::L2 => libm::sqrt(sum(&|v| v.wrapping_mul(v)) as f64) as i128,
        Kind::LogSum | Kind::LogSumExp => {
            let f: Vec<f64> = vals.iter().map(|&v| v as f64).collect();
            // `as` saturates, so -inf (log of 0) cannot panic.
            reduce_floats(f.iter().copied(), kind) as i128
        }
    })
}

// ---------------------------------------------------------------------------
// Helpers for operators working along one axis

/// `(outer, len, inner)` of `shape` around `axis` (`axis` may equal the rank
/// only for a scalar, which is treated as one line of one element).
fn layout(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape.iter().take(axis).product();
    let len = shape.get(axis).copied().unwrap_or(1);
    let inner = shape.iter().skip(axis + 1).product();
    (outer, len, inner)
}

/// Flat indices of every line along the axis of an `(outer, len, inner)` layout.
fn lines(outer: usize, len: usize, inner: usize) -> impl Iterator<Item = Vec<usize>> {
    (0..outer).flat_map(move |o| (0..inner).map(move |i| (0..len).map(|j| (o * len + j) * inner + i).collect()))
}

/// Total order on the elements of a numeric tensor by flat index; NaN sorts
/// above every number and equal to another NaN.
fn element_order(t: &Tensor) -> KResult<Box<dyn Fn(usize, usize) -> Ordering + '_>> {
    Ok(match &t.data {
        Data::F(v) => Box::new(move |a, b| match (v[a].is_nan(), v[b].is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            // Neither is NaN, so partial_cmp always answers.
            (false, false) => v[a].partial_cmp(&v[b]).unwrap_or(Ordering::Equal),
        }),
        Data::I(v) => Box::new(move |a, b| v[a].cmp(&v[b])),
        Data::B(v) => Box::new(move |a, b| v[a].cmp(&v[b])),
        Data::S(_) => bail!("expected a numeric tensor, got strings"),
    })
}

// ---------------------------------------------------------------------------
// ArgMax / ArgMin

/// Index of the first (or last) element along `axis` that is `want` than
/// every other (Greater for ArgMax, Less for ArgMin).
fn arg_extreme(x: &Tensor, axis: i64, keepdims: bool, last: bool, want: Ordering) -> KResult<Vec<Value>> {
    if x.rank() == 0 {
        bail!("input must have rank >= 1");
    }
    let axis = norm_axis(axis, x.rank())?;
    let (outer, len, inner) = layout(&x.shape, axis);
    if len == 0 {
        bail!("cannot take the arg-extreme over an empty axis {axis}");
    }
    let order = element_order(x)?;
    let mut out = Vec::with_capacity(outer * inner);
    for line in lines(outer, len, inner) {
        let mut best = 0usize;
        for j in 1..len {
            let c = order(line[j], line[best]);
            if c == want || (c == Ordering::Equal && last) {
                best = j;
            }
        }
        out.push(best as i64);
    }
    let mut shape = x.shape.clone();
    if keepdims {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    one(Tensor::i64s(shape, out)?)
}

// ---------------------------------------------------------------------------
// CumSum / CumProd

/// Running sum (or product) along the axis given by input 1.
fn cumulative(args: &Args, exclusive: bool, reverse: bool, product: bool) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let a = args.tensor(1)?;
    if !a.dtype.is_int() {
        bail!("axis must be an integer tensor, got {}", a.dtype);
    }
    if x.rank() == 0 {
        bail!("input must have rank >= 1");
    }
    let axis = norm_axis(a.scalar_i64()?, x.rank())?;
    let (outer, len, inner) = layout(&x.shape, axis);

    // Visit each line forward or backward; with `exclusive` an element gets
    // the accumulator before its own value is folded in.
    let order = |line: Vec<usize>| -> Vec<usize> { if reverse { line.into_iter().rev().collect() } else { line } };
    let t = match &x.data {
        Data::F(v) => {
            let mut out = vec![0.0; v.len()];
            for line in lines(outer, len, inner) {
                let mut acc = if product { 1.0 } else { 0.0 };
                for i in order(line) {
                    let next = if product { acc * v[i] } else { acc + v[i] };
                    out[i] = if exclusive { acc } else { next };
                    acc = next;
                }
            }
            Tensor::from_f(x.dtype, x.shape.clone(), out)?
        }
        Data::I(v) => {
            let mut out = vec![0i128; v.len()];
            for line in lines(outer, len, inner) {
                let mut acc: i128 = if product { 1 } else { 0 };
                for i in order(line) {
                    // Wrap to the element type at each step (i128 could overflow).
                    let next = x.dtype.wrap_int(if product { acc.wrapping_mul(v[i]) } else { acc.wrapping_add(v[i]) });
                    out[i] = if exclusive { acc } else { next };
                    acc = next;
                }
            }
            Tensor::from_i(x.dtype, x.shape.clone(), out)?
        }
        _ => bail!("expected a numeric tensor, got {}", x.dtype),
    };
    one(t)
}

// ---------------------------------------------------------------------------
// Softmax / LogSoftmax / Hardmax

/// Which normalisation to apply to each line.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Norm {
    Softmax,
    LogSoftmax,
    Hardmax,
}

/// Normalise along `axis` (opset ≥ 13) or, with `legacy`, along the rows of
/// the input coerced to 2-D `[prod(shape[..axis]), prod(shape[axis..])]`.
fn normalise(x: &Tensor, axis: i64, legacy: bool, norm: Norm) -> KResult<Vec<Value>> {
    let v = x.f().map_err(|_| KernelError::new(format!("expected a floating-point tensor, got {}", x.dtype)))?;
    let rank = x.rank();
    let (outer, len, inner) = if legacy {
        // The legacy axis may also equal the rank (one column per row).
        if axis < -(rank as i64) || axis > rank as i64 {
            bail!("axis {axis} is out of range for rank {rank}");
        }
        let a = if axis < 0 { (axis + rank as i64) as usize } else { axis as usize };
        (x.shape[..a].iter().product(), x.shape[a..].iter().product(), 1)
    } else {
        layout(&x.shape, norm_axis(axis, rank)?)
    };
    let mut out = vec![0.0; v.len()];
    for line in lines(outer, len, inner) {
        let max = line.iter().fold(f64::NEG_INFINITY, |m, &i| m.max(v[i]));
        match norm {
            Norm::Softmax | Norm::LogSoftmax => {
                let sum = line.iter().fold(0.0, |s, &i| s + libm::exp(v[i] - max));
                for &i in &line {
                    out[i] =
                        if norm == Norm::Softmax { libm::exp(v[i] - max) / sum } else { (v[i] - max) - libm::log(sum) };
                }
            }
            Norm::Hardmax => {
                // One-hot at the first maximum.
                if let Some(&i) = line.iter().find(|&&i| v[i] == max) {
                    out[i] = 1.0;
                }
            }
        }
    }
    one(Tensor::from_f(x.dtype, x.shape.clone(), out)?)
}

// ---------------------------------------------------------------------------
// TopK

/// The `k` largest (or smallest) elements along `axis`, with their indices;
/// always sorted, ties broken by the smaller index.
fn top_k(args: &Args, axis: i64, largest: bool, attr_k: Option<i64>) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let k = match args.opt_tensor(1)? {
        Some(t) => {
            if !t.dtype.is_int() {
                bail!("k must be an integer tensor, got {}", t.dtype);
            }
            t.scalar_i64()?
        }
        None => match attr_k {
            Some(k) => k,
            None => bail!("k is missing (neither input 1 nor the attribute is given)"),
        },
    };
    if x.rank() == 0 {
        bail!("input must have rank >= 1");
    }
    let axis = norm_axis(axis, x.rank())?;
    let (outer, len, inner) = layout(&x.shape, axis);
    if k < 0 || k as u64 > len as u64 {
        bail!("k = {k} is out of range for axis {axis} of size {len}");
    }
    let k = k as usize;
    let order = element_order(x)?;

    let mut out_shape = x.shape.clone();
    out_shape[axis] = k;
    let n = out_shape.iter().product();
    let mut picked = vec![0usize; n];
    let mut indices = vec![0i64; n];
    for (o, i) in (0..outer).flat_map(|o| (0..inner).map(move |i| (o, i))) {
        let line: Vec<usize> = (0..len).map(|j| (o * len + j) * inner + i).collect();
        let mut pos: Vec<usize> = (0..len).collect();
        // A stable sort keeps equal elements in index order.
        pos.sort_by(|&a, &b| {
            let c = order(line[a], line[b]);
            if largest { c.reverse() } else { c }
        });
        for (r, &p) in pos.iter().take(k).enumerate() {
            let dst = (o * k + r) * inner + i;
            picked[dst] = line[p];
            indices[dst] = p as i64;
        }
    }
    let values = Tensor::new(x.dtype, out_shape.clone(), x.data.gather(&picked))?;
    Ok(vec![Value::Tensor(values), Value::Tensor(Tensor::i64s(out_shape, indices)?)])
}

// ---------------------------------------------------------------------------
// SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss

/// Input 0 is `[N, C, d1..dk]` (scores for SCE, log-probabilities for NLL),
/// input 1 the class targets `[N, d1..dk]`, optional input 2 the per-class
/// weights `[C]`. Each element's loss is `-w[t] * logp[n, t, d]` (0 where the
/// target equals `ignore_index`); "mean" divides the sum by the sum of the
/// weights used. SCE also returns the log-probabilities.
fn loss(args: &Args, ignore_index: Option<i64>, reduction: &LossReduction, softmax: bool) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let target = args.tensor(1)?;
    let weight = args.opt_tensor(2)?;
    let xv = x.f().map_err(|_| KernelError::new(format!("expected a floating-point input, got {}", x.dtype)))?;
    if x.rank() < 2 {
        bail!("input must have rank >= 2 ([N, C, ...]), got shape {:?}", x.shape);
    }
    let (n, c) = (x.shape[0], x.shape[1]);
    let d: usize = x.shape[2..].iter().product();
    let mut want_target = vec![n];
    want_target.extend_from_slice(&x.shape[2..]);
    if target.shape != want_target {
        bail!("target shape {:?} does not match input shape {:?} (expected {:?})", target.shape, x.shape, want_target);
    }
    if !target.dtype.is_int() {
        bail!("target must be an integer tensor, got {}", target.dtype);
    }
    let tv = target.i()?;
    let wv = match weight {
        Some(w) => {
            if w.shape != [c] {
                bail!("weight shape {:?} does not match the {c} classes", w.shape);
            }
            Some(w.f().map_err(|_| KernelError::new("weight must be a floating-point tensor"))?)
        }
        None => None,
    };

    // Log-probabilities: the input itself (NLL) or its log-softmax over axis 1.
    let logp: Vec<f64> = if softmax {
        let mut out = vec![0.0; xv.len()];
        for line in lines(n, c, d) {
            let max = line.iter().fold(f64::NEG_INFINITY, |m, &i| m.max(xv[i]));
            let sum = line.iter().fold(0.0, |s, &i| s + libm::exp(xv[i] - max));
            for &i in &line {
                out[i] = (xv[i] - max) - libm::log(sum);
            }
        }
        out
    } else {
        xv.to_vec()
    };

    // Per-element weighted loss and weight, in row-major order of the target.
    let mut losses = Vec::with_capacity(n * d);
    let mut weights = Vec::with_capacity(n * d);
    for ni in 0..n {
        for di in 0..d {
            let t = tv[ni * d + di];
            if ignore_index.is_some_and(|ii| i128::from(ii) == t) {
                losses.push(0.0);
                weights.push(0.0);
                continue;
            }
            if t < 0 || t >= c as i128 {
                bail!("target {t} is out of range for {c} classes");
            }
            let t = t as usize;
            let w = wv.map_or(1.0, |w| w[t]);
            losses.push(-w * logp[(ni * c + t) * d + di]);
            weights.push(w);
        }
    }

    let loss = match reduction {
        LossReduction::None => Tensor::from_f(x.dtype, target.shape.clone(), losses)?,
        LossReduction::Sum => Tensor::from_f(x.dtype, vec![], vec![losses.iter().fold(0.0, |a, v| a + v)])?,
        // Zero total weight gives 0/0 = NaN, as in the ONNX reference.
        LossReduction::Mean => {
            let total = losses.iter().fold(0.0, |a, v| a + v);
            let wsum = weights.iter().fold(0.0, |a, v| a + v);
            Tensor::from_f(x.dtype, vec![], vec![total / wsum])?
        }
    };
    let mut outs = vec![Value::Tensor(loss)];
    if softmax {
        outs.push(Value::Tensor(Tensor::from_f(x.dtype, x.shape.clone(), logp)?));
    }
    Ok(outs)
}
