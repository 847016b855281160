//! Folding an inference-mode BatchNormalization into the Conv before it.
//!
//! `BN(conv(x, W, B)) = conv(x, W', B')` with, per output channel `m`,
//! `s = scale / sqrt(var + epsilon)`, `W'[m] = W[m] · s` and
//! `B'[m] = (B[m] - mean) · s + bias` (computed in f64, rounded once to
//! f32). The result differs from the two nodes run one after the other by
//! rounding only. Folded when the Conv's weights and the BN's parameters are
//! float32 weights, the Conv's output is read by the BN alone, and the BN
//! has its one output; new weights are added (the old ones may be shared).

use std::collections::HashMap;

use crate::dtype::DType;
use crate::graph::{Model, ValueId};
use crate::ops::{NnOp, Op};
use crate::tensor::TensorData;

/// Fold every foldable Conv → BatchNormalization pair of the main graph;
/// returns how many were folded.
pub fn fold_batch_norm(model: &mut Model) -> usize {
    let main = model.main;
    let captured = super::captured_values(model, main);
    let g = model.graph_mut(main);
    let mut readers: HashMap<ValueId, usize> = HashMap::new();
    for n in &g.nodes {
        for v in n.inputs.iter().flatten() {
            *readers.entry(*v).or_default() += 1;
        }
    }
    let weight = |g: &crate::graph::Graph, v: Option<ValueId>| -> Option<Vec<f64>> {
        let t = g.initializer(v?)?;
        (t.dtype() == DType::F32).then(|| t.to_f64_vec())
    };
    let mut folded = 0;
    let mut remove = vec![false; g.nodes.len()];
    for bi in 0..g.nodes.len() {
        let bn = &g.nodes[bi];
        let Op::Nn(NnOp::BatchNormalization { epsilon, training_mode: 0, .. }) = bn.op else { continue };
        let (Some(Some(y)), [Some(out)]) = (bn.inputs.first(), bn.outputs.as_slice()) else { continue };
        let (y, out) = (*y, *out);
        if readers.get(&y) != Some(&1) || g.outputs.contains(&y) || captured.contains(&y) {
            continue;
        }
        let Some(ci) = g.nodes[..bi].iter().position(|n| n.outputs.first() == Some(&Some(y))) else { continue };
        let conv = &g.nodes[ci];
        if !matches!(conv.op, Op::Nn(NnOp::Conv { .. })) || conv.outputs.len() != 1 {
            continue;
        }
        let input = |i: usize| bn.inputs.get(i).copied().flatten();
        let (Some(scale), Some(shift), Some(mean), Some(var)) =
            (weight(g, input(1)), weight(g, input(2)), weight(g, input(3)), weight(g, input(4)))
        else {
            continue;
        };
        let w_id = conv.inputs.get(1).copied().flatten();
        let Some(w) = w_id.and_then(|v| g.initializer(v)).filter(|t| t.dtype() == DType::F32) else { continue };
        let shape = w.shape().to_vec();
        let m = shape.first().copied().unwrap_or(0);
        if m == 0 || [&scale, &shift, &mean, &var].iter().any(|p| p.len() != m) {
            continue;
        }
        let b_id = conv.inputs.get(2).copied().flatten();
        let bias = match b_id {
            Some(v) => match weight(g, Some(v)) {
                Some(b) if b.len() == m => b,
                _ => continue,
            },
            None => vec![0.0; m],
        };
        let wv = w.to_f64_vec();
        let per = wv.len() / m;
        let s: Vec<f64> = (0..m).map(|c| scale[c] / (var[c] + epsilon as f64).sqrt()).collect();
        let new_w: Vec<f32> = wv.iter().enumerate().map(|(i, x)| (x * s[i / per.max(1)]) as f32).collect();
        let new_b: Vec<f32> = (0..m).map(|c| ((bias[c] - mean[c]) * s[c] + shift[c]) as f32).collect();
        let (Ok(wt), Ok(bt)) = (TensorData::from_f32(shape, &new_w), TensorData::from_f32(vec![m], &new_b)) else {
            continue;
        };
        let name = g.nodes[ci].name.clone();
        let w_ty = g.value(w_id.unwrap_or(y)).ty.clone();
        let wv_id = g.add_value(format!("{name}/folded_weight"), w_ty);
        let bv_id = g.add_value(
            format!("{name}/folded_bias"),
            crate::graph::ValueType::Tensor {
                dtype: DType::F32,
                shape: Some(vec![crate::graph::Dim::Known(m as u64)]),
            },
        );
        g.initializers.push((wv_id, wt));
        g.initializers.push((bv_id, bt));
        let conv = &mut g.nodes[ci];
        conv.inputs.resize(3, None);
        conv.inputs[1] = Some(wv_id);
        conv.inputs[2] = Some(bv_id);
        conv.outputs[0] = Some(out);
        remove[bi] = true;
        folded += 1;
    }
    let mut i = 0;
    g.nodes.retain(|_| {
        let keep = !remove[i];
        i += 1;
        keep
    });
    folded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Graph, Node, ValueType};
    use crate::window::AutoPad;

    #[test]
    fn the_bn_becomes_the_convs_weights_and_bias() {
        let mut g = Graph { name: "t".into(), ..Default::default() };
        let f = |g: &mut Graph, n: &str| g.add_value(n, ValueType::tensor(DType::F32));
        let (x, y, z) = (f(&mut g, "x"), f(&mut g, "y"), f(&mut g, "z"));
        let weight = |g: &mut Graph, n: &str, shape: Vec<usize>, v: &[f32]| {
            let id = f(g, n);
            g.initializers.push((id, TensorData::from_f32(shape, v).expect("tensor")));
            id
        };
        let w = weight(&mut g, "w", vec![2, 1, 1, 1], &[2.0, 3.0]);
        let ps: Vec<ValueId> =
            [("scale", [4.0, 1.0]), ("shift", [1.0, -1.0]), ("mean", [0.5, 2.0]), ("var", [3.0, 0.0])]
                .iter()
                .map(|(n, v)| weight(&mut g, n, vec![2], v))
                .collect();
        g.inputs.push(x);
        g.outputs.push(z);
        let conv = NnOp::Conv {
            auto_pad: AutoPad::NotSet,
            dilations: None,
            group: 1,
            kernel_shape: None,
            pads: None,
            strides: None,
        };
        g.add_node(Node {
            name: "conv".into(),
            op: Op::Nn(conv),
            inputs: vec![Some(x), Some(w)],
            outputs: vec![Some(y)],
        });
        let bn = NnOp::BatchNormalization { epsilon: 1.0, momentum: 0.9, training_mode: 0, spatial: None };
        let mut ins = vec![Some(y)];
        ins.extend(ps.iter().map(|p| Some(*p)));
        g.add_node(Node { name: "bn".into(), op: Op::Nn(bn), inputs: ins, outputs: vec![Some(z)] });
        let mut m = Model {
            graphs: vec![g],
            main: crate::GraphId(0),
            opsets: vec![],
            producer: String::new(),
            metadata: vec![],
        };
        assert_eq!(fold_batch_norm(&mut m), 1);
        let g = m.main_graph();
        assert_eq!(g.nodes.len(), 1);
        let n = &g.nodes[0];
        assert_eq!(n.outputs, vec![Some(z)]);
        let get = |i: usize| g.initializer(n.inputs[i].expect("input")).expect("weight").to_f64_vec();
        // s = scale / sqrt(var + 1) = [2, 1]; W' = W·s; B' = (0 - mean)·s + shift.
        assert_eq!(get(1), vec![4.0, 3.0]);
        assert_eq!(get(2), vec![0.0, -3.0]);
        assert_eq!(g.initializer(w).expect("old weight").to_f64_vec(), vec![2.0, 3.0], "shared weights untouched");
    }
}
