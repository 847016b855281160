//! Reductions over axes (ReduceSum/Mean/Max/Min, burn's `*_dim`, which
//! keep the reduced axis) and Softmax/LogSoftmax along one axis (opset 13
//! and later; the older forms flatten to 2-D and are not run here).

use burn_backend::Backend;
use burn_backend::tensor::FloatTensor;
use strata_ir::ops::ReduceOp as R;

use super::{NodeInfo, Out, Unsupported, axis, input};
use crate::tensor::BurnTensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    Sum,
    Mean,
    Max,
    Min,
}

/// A compiled reduction or softmax node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reduce {
    Axes { how: How, axes: Option<Vec<i64>>, keepdims: bool, noop_with_empty_axes: bool },
    Softmax { axis: i64, log: bool },
}

pub(crate) fn plan(op: &R, info: &NodeInfo) -> Result<Reduce, Unsupported> {
    let how = match op {
        R::ReduceSum { .. } => Some(How::Sum),
        R::ReduceMean { .. } => Some(How::Mean),
        R::ReduceMax { .. } => Some(How::Max),
        R::ReduceMin { .. } => Some(How::Min),
        _ => None,
    };
    let k = match (op, how, op.reduce_params()) {
        (_, Some(how), Some(p)) => {
            let axes = match p.axes {
                Some(a) => Some(a.to_vec()),
                None if info.has_input(1) => Some(info.const_ints(1, "axes")?),
                None => None,
            };
            Reduce::Axes { how, axes, keepdims: p.keepdims, noop_with_empty_axes: p.noop_with_empty_axes }
        }
        (R::Softmax { axis }, ..) => Reduce::Softmax { axis: *axis, log: false },
        (R::LogSoftmax { axis }, ..) => Reduce::Softmax { axis: *axis, log: true },
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
        How::Sum => B::float_sum_dim(t, dim),
        How::Mean => B::float_mean_dim(t, dim),
        How::Max => B::float_max_dim(t, dim),
        How::Min => B::float_min_dim(t, dim),
    }
}

impl Reduce {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>]) -> Out<B> {
        let x = input(ins, 0)?;
        let r = x.shape.len();
        match self {
            Reduce::Axes { how, axes, keepdims, noop_with_empty_axes } => {
                let mut dims: Vec<usize> = match axes {
                    Some(a) if !a.is_empty() => a.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?,
                    _ if *noop_with_empty_axes => return Ok(vec![x.clone()]),
                    _ => (0..r).collect(),
                };
                dims.sort_unstable();
                dims.dedup();
                if dims.iter().any(|&d| x.shape[d] == 0) {
                    return Err("reduction over an empty axis".into());
                }
                let mut p = x.prim.clone();
                for &d in &dims {
                    p = reduce_dim::<B>(*how, p, d);
                }
                let shape: Vec<usize> = if *keepdims {
                    (0..r).map(|i| if dims.contains(&i) { 1 } else { x.shape[i] }).collect()
                } else {
                    (0..r).filter(|i| !dims.contains(i)).map(|i| x.shape[i]).collect()
                };
                let t =
                    BurnTensor::<B>::new((0..r).map(|i| if dims.contains(&i) { 1 } else { x.shape[i] }).collect(), p);
                let p = t.reshaped(&shape);
                Ok(vec![BurnTensor::new(shape, p)])
            }
            Reduce::Softmax { axis: a, log } => {
                if r == 0 {
                    return Err("softmax of a scalar".into());
                }
                let d = axis(*a, r)?;
                let p = if *log { B::log_softmax(x.prim.clone(), d) } else { B::softmax(x.prim.clone(), d) };
                Ok(vec![BurnTensor::new(x.shape.clone(), p)])
            }
        }
    }
}
