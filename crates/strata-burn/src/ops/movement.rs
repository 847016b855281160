//! Layout operators: Reshape, Flatten, Squeeze, Unsqueeze, Expand (new
//! logical shapes over the same elements), Transpose (burn's permute) and
//! Concat (burn's cat). Shape and axes operands are read at compile time,
//! so they must be weights.

use burn_backend::Backend;
use strata_ir::ops::TensorOp as T;

use super::{NodeInfo, Out, Unsupported, axis, broadcast, expand_to, input, numel};
use crate::tensor::BurnTensor;

/// A compiled layout node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Move {
    Reshape { shape: Vec<i64>, allowzero: bool },
    Flatten { axis: i64 },
    Squeeze { axes: Option<Vec<i64>> },
    Unsqueeze { axes: Vec<i64> },
    Expand { shape: Vec<i64> },
    Transpose { perm: Option<Vec<i64>> },
    Concat { axis: i64 },
}

pub(crate) fn plan(op: &T, info: &NodeInfo) -> Result<Move, Unsupported> {
    // Attribute first (older opsets), else the constant operand 1.
    let operand = |attr: &Option<Vec<i64>>, what: &str| -> Result<Option<Vec<i64>>, Unsupported> {
        match attr {
            Some(v) => Ok(Some(v.clone())),
            None if info.has_input(1) => info.const_ints(1, what).map(Some),
            None => Ok(None),
        }
    };
    let k = match op {
        T::Reshape { allowzero, shape } => Move::Reshape {
            shape: operand(shape, "Reshape's shape")?.ok_or("Reshape without a shape")?,
            allowzero: *allowzero != 0,
        },
        T::Flatten { axis } => Move::Flatten { axis: *axis },
        T::Squeeze { axes } => Move::Squeeze { axes: operand(axes, "Squeeze's axes")? },
        T::Unsqueeze { axes } => {
            Move::Unsqueeze { axes: operand(axes, "Unsqueeze's axes")?.ok_or("Unsqueeze without axes")? }
        }
        T::Expand {} => Move::Expand { shape: info.const_ints(1, "Expand's shape")? },
        T::Transpose { perm } => Move::Transpose { perm: perm.clone() },
        T::Concat { axis } => Move::Concat { axis: *axis },
        _ => return Err(format!("no {} kernel on burn", op.name())),
    };
    // Every input of Concat is data; input 1 of the others is a shape or axes operand.
    info.require_f32(if matches!(k, Move::Concat { .. }) { &[] } else { &[1] })?;
    Ok(k)
}

/// The output shape of Reshape.
fn reshape(input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let total = numel(input)?;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or(format!("shape entry {i} copies a missing axis"))?),
            d if d >= 0 => out.push(d as usize),
            _ => return Err(format!("invalid shape {spec:?}")),
        }
    }
    let known = numel(&out)?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(format!("cannot reshape {input:?} to {spec:?}"));
        }
        out[i] = total / known;
    }
    if numel(&out)? != total {
        return Err(format!("cannot reshape {input:?} to {spec:?}"));
    }
    Ok(out)
}

impl Move {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>]) -> Out<B> {
        let x = input(ins, 0)?;
        let r = x.shape.len();
        let same_elements = |shape: Vec<usize>| -> Out<B> {
            let p = x.reshaped(&shape);
            Ok(vec![BurnTensor::new(shape, p)])
        };
        match self {
            Move::Reshape { shape, allowzero } => same_elements(reshape(&x.shape, shape, *allowzero)?),
            Move::Flatten { axis: a } => {
                let a = if *a < 0 { *a + r as i64 } else { *a };
                if a < 0 || a > r as i64 {
                    return Err(format!("axis {a} is out of range for rank {r}"));
                }
                let (head, tail) = x.shape.split_at(a as usize);
                same_elements(vec![numel(head)?, numel(tail)?])
            }
            Move::Squeeze { axes } => {
                let drop: Vec<usize> = match axes {
                    Some(a) => a.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?,
                    None => (0..r).filter(|&i| x.shape[i] == 1).collect(),
                };
                if let Some(&i) = drop.iter().find(|&&i| x.shape[i] != 1) {
                    return Err(format!("axis {i} of {:?} is not 1", x.shape));
                }
                same_elements((0..r).filter(|i| !drop.contains(i)).map(|i| x.shape[i]).collect())
            }
            Move::Unsqueeze { axes } => {
                let n = r + axes.len();
                let mut new: Vec<usize> = axes.iter().map(|&a| axis(a, n)).collect::<Result<_, _>>()?;
                new.sort_unstable();
                if new.windows(2).any(|w| w[0] == w[1]) {
                    return Err(format!("repeated axes {axes:?}"));
                }
                let mut it = x.shape.iter();
                let shape = (0..n).map(|i| if new.contains(&i) { 1 } else { *it.next().unwrap_or(&1) }).collect();
                same_elements(shape)
            }
            Move::Expand { shape } => {
                let spec: Vec<usize> = shape
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| format!("invalid shape {shape:?}")))
                    .collect::<Result<_, _>>()?;
                let out = broadcast(&x.shape, &spec)?;
                numel(&out)?;
                Ok(vec![BurnTensor::new(out.clone(), expand_to(x, &out))])
            }
            Move::Transpose { perm } => {
                let perm: Vec<usize> = match perm {
                    Some(p) => p.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?,
                    None => (0..r).rev().collect(),
                };
                let mut seen = perm.clone();
                seen.sort_unstable();
                if seen != (0..r).collect::<Vec<_>>() {
                    return Err(format!("perm {perm:?} is not a permutation of rank {r}"));
                }
                let shape: Vec<usize> = perm.iter().map(|&i| x.shape[i]).collect();
                if r < 2 {
                    return same_elements(shape);
                }
                Ok(vec![BurnTensor::new(shape, B::float_permute(x.prim.clone(), &perm))])
            }
            Move::Concat { axis: a } => {
                let parts: Vec<&BurnTensor<B>> = ins.iter().flatten().copied().collect();
                if r == 0 {
                    return Err("Concat of scalars".into());
                }
                let a = axis(*a, r)?;
                let mut shape = x.shape.clone();
                shape[a] = 0;
                for p in &parts {
                    if p.shape.len() != r || (0..r).any(|i| i != a && p.shape[i] != x.shape[i]) {
                        return Err(format!("shapes {:?} and {:?} do not concatenate on axis {a}", x.shape, p.shape));
                    }
                    shape[a] += p.shape[a];
                }
                let prims = parts.iter().filter(|p| p.shape[a] > 0).map(|p| p.prim.clone()).collect::<Vec<_>>();
                if prims.is_empty() {
                    return Err("Concat of empty tensors".into());
                }
                Ok(vec![BurnTensor::new(shape, B::float_cat(prims, a))])
            }
        }
    }
}
