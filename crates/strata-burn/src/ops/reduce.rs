//! Reductions over axes (ReduceSum/Mean/Max/Min/Prod/SumSquare/L1/L2/
//! LogSum/LogSumExp on burn's `*_dim`, which keep the reduced axis; axes
//! from an attribute, a weight, or an integer input read when the node
//! runs), ArgMax/ArgMin (int64, first index), CumSum (exclusive and reverse
//! from burn's cumsum and flip) and Softmax/LogSoftmax along one axis
//! (opset 13 and later; the older forms on the input flattened to 2-D).

use burn_backend::Backend;
use burn_backend::tensor::FloatTensor;
use strata_ir::DType;
use strata_ir::ops::ReduceOp as R;

use super::{Ints, NodeInfo, Out, Unsupported, axis, input, opt_get};
use crate::tensor::{BurnTensor, INT, Prim};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    SumSquare,
    L1,
    L2,
    LogSum,
    LogSumExp,
}

/// A compiled reduction or softmax node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reduce {
    Axes {
        how: How,
        axes: Option<Ints>,
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    Arg {
        max: bool,
        axis: i64,
        keepdims: bool,
        last: bool,
    },
    /// CumSum (`prod`: CumProd).
    CumSum {
        axis: Ints,
        exclusive: bool,
        reverse: bool,
        prod: bool,
    },
    Hardmax {
        axis: i64,
        legacy: bool,
    },
    TopK {
        axis: i64,
        largest: bool,
        k: Ints,
    },
    /// `legacy`: opset < 13, rows of the input flattened to 2-D at `axis`.
    Softmax {
        axis: i64,
        log: bool,
        legacy: bool,
    },
}

pub(crate) fn plan(op: &R, info: &NodeInfo) -> Result<Reduce, Unsupported> {
    let how = match op {
        R::ReduceSum { .. } => Some(How::Sum),
        R::ReduceMean { .. } => Some(How::Mean),
        R::ReduceMax { .. } => Some(How::Max),
        R::ReduceMin { .. } => Some(How::Min),
        R::ReduceProd { .. } => Some(How::Prod),
        R::ReduceSumSquare { .. } => Some(How::SumSquare),
        R::ReduceL1 { .. } => Some(How::L1),
        R::ReduceL2 { .. } => Some(How::L2),
        R::ReduceLogSum { .. } => Some(How::LogSum),
        R::ReduceLogSumExp { .. } => Some(How::LogSumExp),
        _ => None,
    };
    let k = match (op, how, op.reduce_params()) {
        (_, Some(how), Some(p)) => {
            let axes = match p.axes {
                Some(a) => Some(Ints::Const(a.to_vec())),
                None => info.opt_ints(1, "axes")?,
            };
            Reduce::Axes { how, axes, keepdims: p.keepdims, noop_with_empty_axes: p.noop_with_empty_axes }
        }
        (R::ArgMax { axis, keepdims, select_last_index } | R::ArgMin { axis, keepdims, select_last_index }, ..) => {
            if info.in_dtype(0) != Some(DType::F32) {
                return Err("ArgMax/ArgMin of non-float32 input".into());
            }
            info.require_held(&[])?;
            return Ok(Reduce::Arg {
                max: matches!(op, R::ArgMax { .. }),
                axis: *axis,
                keepdims: *keepdims != 0,
                last: *select_last_index != 0,
            });
        }
        (R::CumSum { exclusive, reverse } | R::CumProd { exclusive, reverse }, ..) => Reduce::CumSum {
            axis: info.ints(1, "the axis")?,
            exclusive: *exclusive != 0,
            reverse: *reverse != 0,
            prod: matches!(op, R::CumProd { .. }),
        },
        (R::Hardmax { axis }, ..) => Reduce::Hardmax { axis: *axis, legacy: false },
        (R::HardmaxLegacy { axis }, ..) => Reduce::Hardmax { axis: *axis, legacy: true },
        (R::TopK { axis, largest, sorted, k }, ..) => {
            if *sorted == 0 {
                return Err("TopK with sorted=0".into());
            }
            let k = match k {
                Some(k) => Ints::Const(vec![*k]),
                None => info.ints(1, "TopK's k")?,
            };
            if info.in_dtype(0) != Some(DType::F32) {
                return Err("TopK of non-float32 input".into());
            }
            info.require_held(&[1])?;
            return Ok(Reduce::TopK { axis: *axis, largest: *largest != 0, k });
        }
        (R::Softmax { axis }, ..) => Reduce::Softmax { axis: *axis, log: false, legacy: false },
        (R::LogSoftmax { axis }, ..) => Reduce::Softmax { axis: *axis, log: true, legacy: false },
        (R::SoftmaxLegacy { axis }, ..) => Reduce::Softmax { axis: *axis, log: false, legacy: true },
        (R::LogSoftmaxLegacy { axis }, ..) => Reduce::Softmax { axis: *axis, log: true, legacy: true },
        _ => return Err(format!("no {} kernel on burn", op.name())),
    };
    info.require_f32(&[1])?;
    if info.outputs_given() != 1 {
        return Err("more than one output".into());
    }
    Ok(k)
}

fn reduce_dim<B: Backend>(how: How, t: FloatTensor<B>, dim: usize) -> FloatTensor<B> {
    match how {
        How::Sum | How::SumSquare | How::L1 | How::L2 | How::LogSum | How::LogSumExp => B::float_sum_dim(t, dim),
        How::Mean => B::float_mean_dim(t, dim),
        How::Max => B::float_max_dim(t, dim),
        How::Min => B::float_min_dim(t, dim),
        How::Prod => B::float_prod_dim(t, dim),
    }
}

/// Reduce `p` over `dims` (kept, as size 1).
fn reduce_all<B: Backend>(how: How, mut p: FloatTensor<B>, dims: &[usize]) -> FloatTensor<B> {
    for &d in dims {
        p = reduce_dim::<B>(how, p, d);
    }
    p
}

/// A reduction over an empty axis: its identity (0 for sums, 1 for the
/// product, -inf for maxima and logarithms of sums, +inf for minima).
fn empty_reduction<B: Backend>(how: How, shape: Vec<usize>, device: &B::Device) -> Out<B> {
    let v = match how {
        How::Sum | How::SumSquare | How::L1 | How::L2 => 0.0,
        How::Prod => 1.0,
        How::Max | How::LogSum | How::LogSumExp => f32::NEG_INFINITY,
        How::Min => f32::INFINITY,
        How::Mean => return Err("mean over an empty axis".into()),
    };
    if super::numel(&shape)? == 0 {
        return Err("empty reduction result".into());
    }
    let p =
        B::float_full(crate::tensor::burn_shape(&shape), burn_backend::Scalar::from(v), device, crate::tensor::FLOAT);
    Ok(vec![BurnTensor::new(shape, p)])
}

/// `x` and the axis along which a softmax-like operator works: the legacy
/// forms (opset < 13) see the input flattened to 2-D at `axis`.
fn flat_rows<B: Backend>(x: &BurnTensor<B>, a: i64, legacy: bool) -> Result<(BurnTensor<B>, usize), String> {
    let r = x.shape.len();
    if !legacy {
        return Ok((x.clone(), axis(a, r)?));
    }
    let a = if a < 0 { a + r as i64 } else { a };
    if a < 0 || a > r as i64 {
        return Err(format!("axis {a} is out of range for rank {r}"));
    }
    let (head, tail) = x.shape.split_at(a as usize);
    Ok((x.with_shape(vec![super::numel(head)?, super::numel(tail)?]), 1))
}

impl Reduce {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Out<B> {
        let x = input(ins, 0)?;
        let r = x.shape.len();
        match self {
            Reduce::Axes { how, axes, keepdims, noop_with_empty_axes } => {
                let mut dims: Vec<usize> = match opt_get(axes, ins)? {
                    Some(a) if !a.is_empty() => a.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?,
                    _ if *noop_with_empty_axes => return Ok(vec![x.clone()]),
                    _ => (0..r).collect(),
                };
                dims.sort_unstable();
                dims.dedup();
                let shape: Vec<usize> = if *keepdims {
                    (0..r).map(|i| if dims.contains(&i) { 1 } else { x.shape[i] }).collect()
                } else {
                    (0..r).filter(|i| !dims.contains(i)).map(|i| x.shape[i]).collect()
                };
                if dims.iter().any(|&d| x.shape[d] == 0) {
                    return empty_reduction(*how, shape, device);
                }
                let p = x.f()?;
                let p = match how {
                    How::SumSquare | How::L2 => reduce_all::<B>(*how, B::float_mul(p.clone(), p), &dims),
                    How::L1 => reduce_all::<B>(*how, B::float_abs(p), &dims),
                    How::LogSumExp => {
                        // Shifted by the largest value (kept axes broadcast back).
                        let m = reduce_all::<B>(How::Max, p.clone(), &dims);
                        let kept: Vec<usize> = (0..r).map(|i| if dims.contains(&i) { 1 } else { x.shape[i] }).collect();
                        let mb = BurnTensor::<B>::new(kept, m.clone());
                        let shifted = B::float_sub(p, super::expand_to(&mb, &x.shape));
                        let s = reduce_all::<B>(How::Sum, B::float_exp(shifted), &dims);
                        B::float_add(B::float_log(s), m)
                    }
                    _ => reduce_all::<B>(*how, p, &dims),
                };
                let p = match how {
                    How::L2 => B::float_sqrt(p),
                    How::LogSum => B::float_log(p),
                    _ => p,
                };
                let t =
                    BurnTensor::<B>::new((0..r).map(|i| if dims.contains(&i) { 1 } else { x.shape[i] }).collect(), p);
                Ok(vec![t.with_shape(shape)])
            }
            Reduce::Arg { max, axis: a, keepdims, last } => {
                if r == 0 {
                    return Err("ArgMax/ArgMin of a scalar".into());
                }
                let d = axis(*a, r)?;
                if x.shape[d] == 0 {
                    return Err("ArgMax/ArgMin over an empty axis".into());
                }
                // The last extreme: the first of the input reversed along the axis.
                let v = if *last { B::float_flip(x.f()?, &[d]) } else { x.f()? };
                let mut p = if *max { B::float_argmax(v, d, INT) } else { B::float_argmin(v, d, INT) };
                if *last {
                    p = B::int_add_scalar(B::int_neg(p), burn_backend::Scalar::from(x.shape[d] as i64 - 1));
                }
                let mut kept = x.shape.clone();
                kept[d] = 1;
                let t = BurnTensor::of(kept.clone(), DType::I64, Prim::Int(p));
                let shape = if *keepdims { kept } else { (0..r).filter(|&i| i != d).map(|i| x.shape[i]).collect() };
                Ok(vec![t.with_shape(shape)])
            }
            Reduce::CumSum { axis: a, exclusive, reverse, prod } => {
                let a = match a.get(ins)?.as_slice() {
                    [v] => *v,
                    _ => return Err("the axis is not a scalar".into()),
                };
                if r == 0 || super::numel(&x.shape)? == 0 {
                    return Err("cumulative operator on a scalar or empty tensor".into());
                }
                let d = axis(a, r)?;
                let mut p = x.f()?;
                if *reverse {
                    p = B::float_flip(p, &[d]);
                }
                if *exclusive {
                    // Shift by one along the axis, the identity coming in first.
                    let mut pads = vec![(0, 0); r];
                    pads[d] = (1, 0);
                    let id = if *prod { 1.0 } else { 0.0 };
                    p = B::float_pad(p, &pads, burn_backend::ops::PadMode::Constant(id));
                    let slices: Vec<burn_backend::Slice> =
                        x.shape.iter().map(|&n| burn_backend::Slice::new(0, Some(n as isize), 1)).collect();
                    p = B::float_slice(p, &slices);
                }
                let mut c = if *prod { B::float_cumprod(p, d) } else { B::float_cumsum(p, d) };
                if *reverse {
                    c = B::float_flip(c, &[d]);
                }
                Ok(vec![BurnTensor::new(x.shape.clone(), c)])
            }
            Reduce::Hardmax { axis: a, legacy } => {
                if r == 0 || super::numel(&x.shape)? == 0 {
                    return Err("Hardmax of a scalar or empty tensor".into());
                }
                let (t, d) = flat_rows(x, *a, *legacy)?;
                let len = t.shape[d];
                let hit = B::float_argmax(t.f()?, d, INT);
                let mut rs = vec![1; t.shape.len()];
                rs[d] = len;
                let range = B::int_reshape(B::int_arange(0..len as i64, device, INT), crate::tensor::burn_shape(&rs));
                let to = crate::tensor::burn_shape(&t.shape);
                let eq = B::int_equal(B::int_expand(hit, to.clone()), B::int_expand(range, to), crate::tensor::BOOL);
                let y = B::bool_into_float(eq, crate::tensor::FLOAT);
                Ok(vec![BurnTensor::new(t.shape.clone(), y).with_shape(x.shape.clone())])
            }
            Reduce::TopK { axis: a, largest, k } => {
                let k = match k.get(ins)?.as_slice() {
                    [v] if *v >= 0 => *v as usize,
                    _ => return Err("TopK's k is not one non-negative value".into()),
                };
                if r == 0 {
                    return Err("TopK of a scalar".into());
                }
                let d = axis(*a, r)?;
                if k > x.shape[d] || k == 0 {
                    return Err(format!("k={k} for an axis of {}", x.shape[d]));
                }
                let (v, i) = B::float_sort_with_indices(x.f()?, d, *largest, INT);
                let mut slices: Vec<burn_backend::Slice> =
                    x.shape.iter().map(|&n| burn_backend::Slice::new(0, Some(n as isize), 1)).collect();
                slices[d] = burn_backend::Slice::new(0, Some(k as isize), 1);
                let mut shape = x.shape.clone();
                shape[d] = k;
                Ok(vec![
                    BurnTensor::new(shape.clone(), B::float_slice(v, &slices)),
                    BurnTensor::of(shape, DType::I64, Prim::Int(B::int_slice(i, &slices))),
                ])
            }
            Reduce::Softmax { axis: a, log, legacy } => {
                if r == 0 {
                    return Err("softmax of a scalar".into());
                }
                let (t, d) = flat_rows(x, *a, *legacy)?;
                if super::numel(&t.shape)? == 0 {
                    return Err("softmax of an empty tensor".into());
                }
                let p = if *log { B::log_softmax(t.f()?, d) } else { B::softmax(t.f()?, d) };
                Ok(vec![BurnTensor::new(t.shape.clone(), p).with_shape(x.shape.clone())])
            }
        }
    }
}
