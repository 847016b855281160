//! Types across a `Loop` or `Scan` body: the body's formal inputs get the
//! types the node feeds them (functions expanded from ONNX leave them
//! undeclared), and the node's outputs get the types of the body's
//! results (the carried values, and the scanned ones stacked).

use crate::graph::{Dim, Graph, Model, Node, ValueType};
use crate::ops::{ControlOp, Op};

fn scalar(dtype: crate::DType) -> ValueType {
    ValueType::Tensor { dtype, shape: Some(Vec::new()) }
}

fn input_type(g: &Graph, n: &Node, i: usize) -> Option<ValueType> {
    let v = n.inputs.get(i).copied().flatten()?;
    Some(g.value(v).ty.clone()).filter(|t| *t != ValueType::Unknown)
}

/// `axis` (negative counts from the end) of a rank-`rank` tensor.
fn norm(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a).ok().filter(|a| *a < rank)
}

fn at(list: &Option<Vec<i64>>, i: usize) -> i64 {
    list.as_ref().and_then(|l| l.get(i).copied()).unwrap_or(0)
}

/// `ty` with dimension `axis` removed (a scan input's slice).
fn without_axis(ty: ValueType, axis: i64) -> Option<ValueType> {
    match ty {
        ValueType::Tensor { dtype, shape: Some(mut s) } => {
            let a = norm(axis, s.len())?;
            s.remove(a);
            Some(ValueType::Tensor { dtype, shape: Some(s) })
        }
        ValueType::Tensor { dtype, shape: None } => Some(ValueType::Tensor { dtype, shape: None }),
        _ => None,
    }
}

/// `ty` with a dimension `len` inserted at `axis` (of the result's rank).
fn with_axis(ty: ValueType, axis: i64, len: Dim) -> Option<ValueType> {
    match ty {
        ValueType::Tensor { dtype, shape: Some(mut s) } => {
            let a = norm(axis, s.len() + 1)?;
            s.insert(a, len);
            Some(ValueType::Tensor { dtype, shape: Some(s) })
        }
        ValueType::Tensor { dtype, shape: None } => Some(ValueType::Tensor { dtype, shape: None }),
        _ => None,
    }
}

/// The types node `n` (a `Loop` or `Scan` of graph `g`) gives its body's
/// formal inputs, by input position; empty for other nodes.
pub(super) fn formal_types(g: &Graph, n: &Node) -> Vec<(usize, ValueType)> {
    let mut out = Vec::new();
    match &n.op {
        Op::Control(ControlOp::Loop { .. }) => {
            out.push((0, scalar(crate::DType::I64)));
            out.push((1, scalar(crate::DType::Bool)));
            // A carried value keeps its type and rank, not necessarily its
            // dimensions (a value grown by Concat each iteration).
            for i in 2..n.inputs.len() {
                match input_type(g, n, i) {
                    Some(ValueType::Tensor { dtype, shape }) => {
                        let shape = shape.map(|s| vec![Dim::Unknown; s.len()]);
                        out.push((i, ValueType::Tensor { dtype, shape }));
                    }
                    Some(t) => out.push((i, t)),
                    None => {}
                }
            }
        }
        Op::Control(ControlOp::Scan { num_scan_inputs, scan_input_axes, .. }) => {
            let Some(m) = usize::try_from(*num_scan_inputs).ok().filter(|m| *m <= n.inputs.len()) else {
                return out;
            };
            let states = n.inputs.len() - m;
            for i in 0..n.inputs.len() {
                let t = input_type(g, n, i);
                let t = if i < states { t } else { t.and_then(|t| without_axis(t, at(scan_input_axes, i - states))) };
                if let Some(t) = t {
                    out.push((i, t));
                }
            }
        }
        _ => {}
    }
    out
}

/// Output types of a `Loop` or `Scan` node from its (inferred) body; `None`
/// for other nodes.
pub(super) fn output_types(model: &Model, g: &Graph, n: &Node) -> Option<Vec<Option<ValueType>>> {
    let (body, skip, states, axes): (_, usize, usize, Option<&Option<Vec<i64>>>) = match &n.op {
        // Body outputs: (cond, carried..., scans...).
        Op::Control(ControlOp::Loop { body }) => (*body, 1, n.inputs.len().saturating_sub(2), None),
        // Body outputs: (states..., scans...).
        Op::Control(ControlOp::Scan { body, num_scan_inputs, scan_output_axes, .. }) => {
            let m = usize::try_from(*num_scan_inputs).ok()?;
            (*body, 0, n.inputs.len().checked_sub(m)?, Some(scan_output_axes))
        }
        _ => return None,
    };
    let b = model.graphs.get(body.0 as usize)?;
    // A Scan's sequence length, when its first scan input's is known.
    let scan_len = match &n.op {
        Op::Control(ControlOp::Scan { scan_input_axes, .. }) => match input_type(g, n, states) {
            Some(ValueType::Tensor { shape: Some(s), .. }) => {
                norm(at(scan_input_axes, 0), s.len()).map_or(Dim::Unknown, |a| s[a].clone())
            }
            _ => Dim::Unknown,
        },
        _ => Dim::Unknown,
    };
    let types = (0..n.outputs.len())
        .map(|k| {
            let v = b.outputs.get(skip + k)?;
            let ty = Some(b.value(*v).ty.clone()).filter(|t| *t != ValueType::Unknown)?;
            if k < states {
                return Some(ty);
            }
            match axes {
                None => with_axis(ty, 0, Dim::Unknown),
                Some(axes) => with_axis(ty, at(axes, k - states), scan_len.clone()),
            }
        })
        .collect();
    Some(types)
}
