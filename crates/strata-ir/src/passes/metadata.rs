//! Shape bookkeeping: `Shape`, `Size`, and small integer / bool vectors
//! computed only from them and small constants. A session keeps these on
//! the host (they are metadata, not compute), and a device backend need
//! not take them; everything else of the same types is compute.

use std::collections::HashSet;

use crate::DType;
use crate::graph::{Graph, Node};
use crate::ops::{Op, TensorOp};
use crate::types::{ValueId, ValueType};

/// Whether `n` is bookkeeping, given the values already known to be
/// metadata (`meta`: outputs of earlier bookkeeping nodes).
pub fn is_bookkeeping(g: &Graph, n: &Node, meta: &HashSet<ValueId>) -> bool {
    if matches!(n.op, Op::Tensor(TensorOp::Shape { .. } | TensorOp::Size {})) {
        return true;
    }
    let int_vector = |v: &ValueId| match &g.value(*v).ty {
        ValueType::Tensor { dtype: DType::I64 | DType::I32 | DType::Bool, shape } => {
            shape.as_ref().is_none_or(|s| s.len() <= 1)
        }
        _ => false,
    };
    let small_const = |v: &ValueId| g.initializer(*v).is_some_and(|t| t.numel() <= 64);
    n.op.subgraphs().is_empty()
        && n.outputs.iter().flatten().next().is_some()
        && n.outputs.iter().flatten().all(int_vector)
        && n.inputs.iter().flatten().all(|v| meta.contains(v) || small_const(v))
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
    use crate::ops::ElementwiseOp;
    use crate::types::Dim;

    #[test]
    fn arithmetic_on_shapes_is_bookkeeping_and_on_data_is_not() {
        let mut g = Graph::default();
        let x = g.add_value("x", ValueType::Tensor { dtype: DType::F32, shape: Some(vec![Dim::Known(4)]) });
        let v = |d| ValueType::Tensor { dtype: d, shape: Some(vec![Dim::Known(1)]) };
        let (s, one, d, data, e) = (
            g.add_value("s", v(DType::I64)),
            g.add_value("one", v(DType::I64)),
            g.add_value("d", v(DType::I64)),
            g.add_value("data", v(DType::I64)),
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
}
