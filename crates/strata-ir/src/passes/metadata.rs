//! Shape bookkeeping: `Shape`, `Size`, and the small values computed only
//! from them, from small constants and from the scalars and small integer
//! vectors the graph takes as inputs (shape arguments such as a target
//! size, a window length, Range bounds). Small means an integer / bool
//! vector of rank <= 1 or a single value of any numeric type (a scale such as
//! `1 / sqrt(head_size)`, a padding value cast to the data's type). A
//! session keeps these on the host (they are metadata, not compute), and a
//! device backend need not take them; everything else is compute.

use std::collections::HashSet;

use crate::DType;
use crate::graph::{Graph, Node};
use crate::ops::{ElementwiseOp, Op, TensorOp};
use crate::types::{Dim, ValueId, ValueType};

/// Whether `n` is bookkeeping, given the values already known to be
/// metadata (`meta`: outputs of earlier bookkeeping nodes).
pub fn is_bookkeeping(g: &Graph, n: &Node, meta: &HashSet<ValueId>) -> bool {
    if matches!(n.op, Op::Tensor(TensorOp::Shape { .. } | TensorOp::Size {})) {
        return true;
    }
    let small_output = |v: &ValueId| match &g.value(*v).ty {
        ValueType::Tensor { dtype: DType::I64 | DType::I32 | DType::Bool, shape } => {
            shape.as_ref().is_none_or(|s| s.len() <= 1)
        }
        ValueType::Tensor { dtype, shape: Some(s) } => one_element(s) && numeric(*dtype),
        _ => false,
    };
    let small_const = |v: &ValueId| g.initializer(*v).is_some_and(|t| t.numel() <= 64);
    let shape_input = |v: &ValueId| {
        g.inputs.contains(v)
            && match &g.value(*v).ty {
                ValueType::Tensor { dtype: DType::I64 | DType::I32, shape: Some(s) } => match &s[..] {
                    [] => true,
                    [Dim::Known(k)] => *k <= 64,
                    _ => false,
                },
                // A scalar argument (Range bounds, a window length).
                ValueType::Tensor { dtype, shape: Some(s) } => s.is_empty() && numeric(*dtype),
                _ => false,
            }
    };
    // CastLike reads only the type of its second input.
    let read = match n.op {
        Op::Elementwise(ElementwiseOp::CastLike { .. }) => 1,
        _ => n.inputs.len(),
    };
    n.op.subgraphs().is_empty()
        && n.outputs.iter().flatten().next().is_some()
        && n.outputs.iter().flatten().all(small_output)
        && n.inputs.iter().take(read).flatten().all(|v| meta.contains(v) || small_const(v) || shape_input(v))
}

/// A scalar, or a tensor of rank <= 1 holding one element.
fn one_element(s: &[Dim]) -> bool {
    matches!(s, [] | [Dim::Known(1)])
}

/// Integer, float or bool (not string or complex).
fn numeric(d: DType) -> bool {
    !matches!(d, DType::String | DType::C64 | DType::C128)
}

/// The outputs of every bookkeeping node of `g` (nodes in order).
pub fn metadata_values(g: &Graph) -> HashSet<ValueId> {
    let mut meta = HashSet::new();
    for n in &g.nodes {
        if is_bookkeeping(g, n, &meta) {
            meta.extend(n.outputs.iter().flatten().copied());
        }
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_on_shapes_is_bookkeeping_and_on_data_is_not() {
        let mut g = Graph::default();
        let x = g.add_value("x", ValueType::Tensor { dtype: DType::F32, shape: Some(vec![Dim::Known(4)]) });
        let v = |d| ValueType::Tensor { dtype: d, shape: Some(vec![Dim::Known(1)]) };
        let big = ValueType::Tensor { dtype: DType::I64, shape: Some(vec![Dim::Known(100)]) };
        let (s, one, d, data, e) = (
            g.add_value("s", v(DType::I64)),
            g.add_value("one", v(DType::I64)),
            g.add_value("d", v(DType::I64)),
            g.add_value("data", big.clone()),
            g.add_value("e", v(DType::I64)),
        );
        g.inputs = vec![x, data];
        g.initializers.push((one, crate::TensorData::from_i64(vec![1], &[1]).expect("valid")));
        let node = |op, inputs: Vec<ValueId>, out| Node {
            name: String::new(),
            op,
            inputs: inputs.into_iter().map(Some).collect(),
            outputs: vec![Some(out)],
        };
        g.nodes.push(node(Op::Tensor(TensorOp::Shape { start: 0, end: None }), vec![x], s));
        g.nodes.push(node(Op::Elementwise(ElementwiseOp::Sub {}), vec![s, one], d));
        g.nodes.push(node(Op::Elementwise(ElementwiseOp::Sub {}), vec![data, one], e));
        let meta = metadata_values(&g);
        assert!(meta.contains(&s) && meta.contains(&d));
        assert!(!meta.contains(&e));
    }

    #[test]
    fn scalars_derived_from_shapes_are_bookkeeping_and_vectors_of_floats_are_not() {
        let mut g = Graph::default();
        let scalar = |d| ValueType::Tensor { dtype: d, shape: Some(vec![]) };
        let (size, f, scale, like, pad, range) = (
            g.add_value("size", scalar(DType::I32)),
            g.add_value("f", scalar(DType::F32)),
            g.add_value("scale", scalar(DType::F32)),
            g.add_value("like", ValueType::Tensor { dtype: DType::F16, shape: Some(vec![Dim::Known(8)]) }),
            g.add_value("pad", scalar(DType::F16)),
            g.add_value("range", ValueType::Tensor { dtype: DType::F32, shape: Some(vec![Dim::Unknown]) }),
        );
        g.inputs = vec![size, like];
        let node = |op, inputs: Vec<ValueId>, out| Node {
            name: String::new(),
            op,
            inputs: inputs.into_iter().map(Some).collect(),
            outputs: vec![Some(out)],
        };
        let cast = Op::Elementwise(ElementwiseOp::Cast {
            to: DType::F32,
            saturate: 1,
            round_mode: crate::dtype::E8M0Round::Up,
        });
        g.nodes.push(node(cast, vec![size], f));
        g.nodes.push(node(Op::Elementwise(ElementwiseOp::Sqrt {}), vec![f], scale));
        // The second input of CastLike gives only a type: data there does not make it compute.
        g.nodes.push(node(
            Op::Elementwise(ElementwiseOp::CastLike { saturate: 1, round_mode: crate::dtype::E8M0Round::Up }),
            vec![scale, like],
            pad,
        ));
        g.nodes.push(node(Op::Tensor(TensorOp::Range {}), vec![f, f, f], range));
        let meta = metadata_values(&g);
        assert!(meta.contains(&f) && meta.contains(&scale) && meta.contains(&pad));
        assert!(!meta.contains(&range), "a float vector is data, even when computed from shapes");
    }
}
