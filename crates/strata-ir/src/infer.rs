//! Type and shape inference.
//!
//! Fills in the type of every value whose type is unknown, from the types of
//! node inputs and, where an operator's output shape depends on an input's
//! *values* (Reshape's shape, Slice's starts...), from constant inputs.
//! Dimensions stay symbolic where they are (`batch`), and become unknown
//! where they cannot be derived. Contradictions that are certain (MatMul
//! inner dimensions that differ, shapes that cannot broadcast) are errors
//! naming the node.

use crate::error::IrError;
use crate::graph::{Dim, GraphId, Model, ValueId, ValueType};
use crate::ops::{ControlOp, Op, TensorOp as T};
pub use crate::shape::broadcast;
use crate::shape::{In, Outs};
use crate::tensor::TensorData;

mod body;

/// Output types of one node (of `n_outputs` outputs), as far as they can
/// be inferred: each op family declares its rules next to its variants
/// (`ops/<family>.rs`), naming every operator.
#[deny(clippy::wildcard_enum_match_arm)]
fn infer_op(op: &Op, n_outputs: usize, ins: &[In]) -> Outs {
    match op {
        Op::Elementwise(o) => o.infer(ins),
        Op::Reduce(o) => o.infer(ins),
        Op::Nn(o) => o.infer(ins),
        Op::Tensor(o) => o.infer(n_outputs, ins),
        Op::Quant(o) => o.infer(ins),
        Op::Control(o) => o.infer(ins),
        Op::Text(o) => o.infer(ins),
        Op::Signal(o) => o.infer(ins),
        Op::Ml(o) => o.infer(ins),
        // Made by `passes::fuse` after inference, from nodes whose outputs
        // are already typed.
        Op::Fused(_) => Ok(vec![None]),
        Op::Random(o) => o.infer(ins),
    }
}

/// Infer types of every graph of the model; known types are kept.
///
/// Graphs are visited from the main graph down: before a node's subgraphs
/// are inferred, the values they capture get the outer graph's types, and an
/// `If` whose branches agree on an output's type gives it to its output.
pub fn infer_types(model: &mut Model) -> Result<(), IrError> {
    let mut done = vec![false; model.graphs.len()];
    let main = model.main;
    infer_graph(model, main, &mut done)?;
    for gi in 0..model.graphs.len() {
        if !done[gi] {
            infer_graph(model, GraphId(gi as u32), &mut done)?;
        }
    }
    Ok(())
}

fn infer_graph(model: &mut Model, gid: GraphId, done: &mut [bool]) -> Result<(), IrError> {
    // Each graph is inferred once (a malformed model could share or cycle
    // subgraphs; validation reports that, inference just stops).
    match done.get_mut(gid.0 as usize) {
        Some(d) if !*d => *d = true,
        _ => return Ok(()),
    }
    let g = model.graph(gid);
    let mut consts: Vec<Option<TensorData>> = vec![None; g.values.len()];
    for (v, t) in &g.initializers {
        consts[v.0 as usize] = Some(t.clone());
    }
    for ni in 0..model.graph(gid).nodes.len() {
        let subgraphs = model.graph(gid).nodes[ni].op.subgraphs();
        for &sg in &subgraphs {
            if sg.0 as usize >= model.graphs.len() {
                continue;
            }
            let captures = model.graph(sg).captures.clone();
            for (outer, inner) in captures {
                let ty = model.graph(gid).values.get(outer.0 as usize).map(|v| v.ty.clone());
                if let (Some(ty), Some(v)) = (ty, model.graph_mut(sg).values.get_mut(inner.0 as usize)) {
                    v.ty = merge(&v.ty, &ty);
                }
            }
            // A loop body's formal inputs get the types the node feeds them.
            let formals = body::formal_types(model.graph(gid), &model.graph(gid).nodes[ni]);
            for (i, ty) in formals {
                let Some(&inner) = model.graph(sg).inputs.get(i) else { continue };
                if let Some(v) = model.graph_mut(sg).values.get_mut(inner.0 as usize) {
                    v.ty = merge(&v.ty, &ty);
                }
            }
            infer_graph(model, sg, done)?;
        }
        let g = model.graph(gid);
        let node = &g.nodes[ni];
        if let Op::Tensor(T::Constant { value }) = &node.op
            && let Some(Some(o)) = node.outputs.first()
        {
            consts[o.0 as usize] = Some(value.clone());
        }
        let ins: Vec<In> = node
            .inputs
            .iter()
            .map(|v| match v {
                Some(id) => In {
                    ty: Some(&g.values[id.0 as usize].ty).filter(|t| **t != ValueType::Unknown),
                    konst: consts[id.0 as usize].as_ref(),
                },
                None => In { ty: None, konst: None },
            })
            .collect();
        let mut outs = infer_op(&node.op, node.outputs.len(), &ins).map_err(|message| IrError::Inference {
            node: node.name.clone(),
            op: node.op.name().to_string(),
            message,
        })?;
        if let Op::Control(ControlOp::If { then_branch, else_branch }) = &node.op {
            outs = if_output_types(model, *then_branch, *else_branch, node.outputs.len());
        }
        if let Some(body_outs) = body::output_types(model, model.graph(gid), node) {
            outs = body_outs;
        }
        let g = model.graph_mut(gid);
        let targets: Vec<(usize, ValueId)> =
            g.nodes[ni].outputs.iter().enumerate().filter_map(|(i, o)| o.map(|o| (i, o))).collect();
        for (i, o) in targets {
            if let Some(Some(ty)) = outs.get(i) {
                let v = &mut g.values[o.0 as usize];
                v.ty = merge(&v.ty, ty);
            }
        }
    }
    Ok(())
}

/// Output types of an `If`: where both branches give an output the same
/// tensor element type, that type, with the dimensions both agree on (a
/// dimension they disagree on is unknown; a rank they disagree on leaves the
/// shape unknown).
fn if_output_types(model: &Model, then_branch: GraphId, else_branch: GraphId, n: usize) -> Vec<Option<ValueType>> {
    let out_ty = |gid: GraphId, i: usize| -> Option<ValueType> {
        let g = model.graphs.get(gid.0 as usize)?;
        g.outputs.get(i).map(|v| g.value(*v).ty.clone())
    };
    (0..n)
        .map(|i| match (out_ty(then_branch, i)?, out_ty(else_branch, i)?) {
            (ValueType::Tensor { dtype: a, shape: sa }, ValueType::Tensor { dtype: b, shape: sb }) if a == b => {
                let shape = match (sa, sb) {
                    (Some(x), Some(y)) if x.len() == y.len() => {
                        Some(x.iter().zip(&y).map(|(p, q)| if p == q { p.clone() } else { Dim::Unknown }).collect())
                    }
                    _ => None,
                };
                Some(ValueType::Tensor { dtype: a, shape })
            }
            _ => None,
        })
        .collect()
}

/// Combine a declared type with an inferred one, keeping what is more specific.
pub(crate) fn merge(declared: &ValueType, inferred: &ValueType) -> ValueType {
    match (declared, inferred) {
        (ValueType::Unknown, x) => x.clone(),
        (ValueType::Tensor { dtype, shape: None }, ValueType::Tensor { shape: s, .. }) => {
            ValueType::Tensor { dtype: *dtype, shape: s.clone() }
        }
        (ValueType::Tensor { dtype, shape: Some(a) }, ValueType::Tensor { shape: Some(b), .. })
            if a.len() == b.len() =>
        {
            ValueType::Tensor {
                dtype: *dtype,
                shape: Some(
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| if matches!(x, Dim::Unknown) { y.clone() } else { x.clone() })
                        .collect(),
                ),
            }
        }
        (d, _) => d.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::AttrReader;
    use crate::dtype::DType;

    /// Every operator that parses without attributes has a shape-inference
    /// rule (each family's `infer` names every variant, which the compiler
    /// checks) that does not panic, whatever inputs it gets: none, unknown
    /// ones, or float32 tensors of one shape.
    #[test]
    fn every_operator_infers_without_panicking() {
        let f32_23 = ValueType::Tensor { dtype: DType::F32, shape: Some(vec![Dim::Known(2), Dim::Known(3)]) };
        let mut checked = 0;
        for name in Op::all_names() {
            let Ok(op) = Op::parse(name, AttrReader::new(vec![])) else { continue };
            for n in 0..4 {
                let unknown: Vec<In> = (0..n).map(|_| In { ty: None, konst: None }).collect();
                let outs = infer_op(&op, 1, &unknown).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(outs.iter().all(|o| o.as_ref().is_none_or(|t| t.dtype().is_some())), "{name}");
                let typed: Vec<In> = (0..n).map(|_| In { ty: Some(&f32_23), konst: None }).collect();
                let _ = infer_op(&op, 3, &typed);
            }
            checked += 1;
        }
        assert!(checked > 150, "only {checked} operators parse without attributes");
    }
}
