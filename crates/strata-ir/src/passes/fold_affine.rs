//! Folding the per-channel affine maps after a Conv into its weights and
//! bias: an inference-mode BatchNormalization, and `Mul`, `Add` or `Sub`
//! (the Conv's output minus the constant) by a float32 weight that is one
//! value or one per output channel (shape `[M, 1, ...]`, `[1, M, 1, ...]`
//! and the like, broadcasting along the output-channel axis only).
//!
//! Each is `y·s + t` per output channel `m`, so `conv(x, W, B)·s + t =
//! conv(x, W', B')` with `W'[m] = W[m]·s[m]` and `B'[m] = B[m]·s[m] + t[m]`
//! (a BatchNormalization: `s = scale / sqrt(var + epsilon)`, `t = bias -
//! mean·s`), computed in f64 and rounded once to f32; the result differs
//! from the nodes run one after the other by rounding only. A chain of such
//! nodes folds one after the other. Folded when the Conv's weights (and
//! bias) are float32 weights, its output is read by the folded node alone,
//! and that node has its one output; new weights are added (the old ones
//! may be shared).

use crate::dtype::DType;
use crate::graph::{Graph, Model, ValueId};
use crate::ops::{ElementwiseOp, NnOp, Op};
use crate::tensor::TensorData;

/// A float32 weight's values.
fn weight(g: &Graph, v: Option<ValueId>) -> Option<Vec<f64>> {
    let t = g.initializer(v?)?;
    (t.dtype() == DType::F32).then(|| t.to_f64_vec())
}

/// The values of weight `v` per output channel of a Conv output of rank
/// `rank` with `m` channels, if it broadcasts along that axis only.
fn per_channel(g: &Graph, v: Option<ValueId>, rank: usize, m: usize) -> Option<Vec<f64>> {
    let t = g.initializer(v?)?;
    let shape = t.shape();
    if t.dtype() != DType::F32 || shape.len() > rank {
        return None;
    }
    let vals = t.to_f64_vec();
    // Right-aligned against [N, M, spatial...]: every axis but the channel one is 1.
    let ok = shape.iter().enumerate().all(|(i, &d)| d == 1 || (rank - shape.len() + i == 1 && d == m));
    match vals.len() {
        1 if ok => Some(vec![vals[0]; m]),
        n if ok && n == m => Some(vals),
        _ => None,
    }
}

/// The affine map `(s, t)` per channel that node `n` applies to the
/// Conv output `y` (rank `rank`, `m` channels), if it is one this pass folds.
fn affine(g: &Graph, n: &crate::graph::Node, y: ValueId, rank: usize, m: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let input = |i: usize| n.inputs.get(i).copied().flatten();
    match &n.op {
        Op::Nn(NnOp::BatchNormalization { epsilon, training_mode: 0, .. }) if input(0) == Some(y) => {
            let (scale, shift, mean, var) =
                (weight(g, input(1))?, weight(g, input(2))?, weight(g, input(3))?, weight(g, input(4))?);
            if [&scale, &shift, &mean, &var].iter().any(|p| p.len() != m) {
                return None;
            }
            let s: Vec<f64> = (0..m).map(|c| scale[c] / (var[c] + *epsilon as f64).sqrt()).collect();
            let t = (0..m).map(|c| shift[c] - mean[c] * s[c]).collect();
            Some((s, t))
        }
        Op::Elementwise(e @ (ElementwiseOp::Mul {} | ElementwiseOp::Add {} | ElementwiseOp::Sub {}))
            if n.inputs.len() == 2 =>
        {
            let other = if input(0) == Some(y) {
                input(1)
            } else if input(1) == Some(y) && !matches!(e, ElementwiseOp::Sub {}) {
                input(0)
            } else {
                return None;
            };
            let c = per_channel(g, other, rank, m)?;
            Some(match e {
                ElementwiseOp::Mul {} => (c, vec![0.0; m]),
                ElementwiseOp::Add {} => (vec![1.0; m], c),
                _ => (vec![1.0; m], c.iter().map(|v| -v).collect()),
            })
        }
        _ => None,
    }
}

/// Fold every foldable per-channel affine node after a Conv of the main
/// graph (chains one after the other); returns how many were folded.
pub fn fold_conv_affine(model: &mut Model) -> usize {
    let mut total = 0;
    loop {
        let folded = fold_once(model);
        total += folded;
        if folded == 0 {
            return total;
        }
    }
}

fn fold_once(model: &mut Model) -> usize {
    let uses = super::Uses::of(model);
    let g = model.graph_mut(model.main);
    let mut folded = 0;
    let mut remove = vec![false; g.nodes.len()];
    let mut changed = vec![false; g.nodes.len()];
    for ai in 0..g.nodes.len() {
        let node = &g.nodes[ai];
        let [Some(out)] = node.outputs.as_slice() else { continue };
        let out = *out;
        // The Conv output this node reads (its first input that a Conv makes).
        let Some((y, ci)) = node.inputs.iter().flatten().find_map(|v| {
            uses.producer(*v).filter(|&ci| matches!(g.nodes[ci].op, Op::Nn(NnOp::Conv { .. }))).map(|ci| (*v, ci))
        }) else {
            continue;
        };
        if changed[ci] || remove[ci] || !uses.private(g, y) {
            continue;
        }
        let conv = &g.nodes[ci];
        if conv.outputs.len() != 1 {
            continue;
        }
        let w_id = conv.inputs.get(1).copied().flatten();
        let Some(w) = w_id.and_then(|v| g.initializer(v)).filter(|t| t.dtype() == DType::F32) else { continue };
        let shape = w.shape().to_vec();
        let m = shape.first().copied().unwrap_or(0);
        if m == 0 {
            continue;
        }
        let Some((s, t)) = affine(g, node, y, shape.len(), m) else { continue };
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
        let new_w: Vec<f32> = wv.iter().enumerate().map(|(i, x)| (x * s[i / per.max(1)]) as f32).collect();
        let new_b: Vec<f32> = (0..m).map(|c| (bias[c] * s[c] + t[c]) as f32).collect();
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
        changed[ci] = true;
        remove[ai] = true;
        folded += 1;
    }
    super::remove_marked(g, &remove);
    folded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Graph, Node, ValueType};
    use crate::window::AutoPad;

    /// x -> Conv(w [2, 1, 1, 1], no bias) -> y, then `tail` builds the rest
    /// from y; returns the model and the value ids by name.
    fn conv_then(tail: impl FnOnce(&mut Graph, ValueId) -> ValueId) -> Model {
        let mut g = Graph { name: "t".into(), ..Default::default() };
        let x = g.add_value("x", ValueType::tensor(DType::F32));
        let y = g.add_value("y", ValueType::tensor(DType::F32));
        let w = g.add_value("w", ValueType::tensor(DType::F32));
        g.initializers.push((w, TensorData::from_f32(vec![2, 1, 1, 1], &[2.0, 3.0]).expect("tensor")));
        g.inputs.push(x);
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
        let z = tail(&mut g, y);
        g.outputs.push(z);
        Model { graphs: vec![g], main: crate::GraphId(0), opsets: vec![], producer: String::new(), metadata: vec![] }
    }

    /// `op(a, constant)` (or `op(constant, a)` when `first`), the constant of `shape`.
    fn binary(g: &mut Graph, op: ElementwiseOp, a: ValueId, shape: Vec<usize>, v: &[f32], first: bool) -> ValueId {
        let c = g.add_value(format!("c{}", g.values.len()), ValueType::tensor(DType::F32));
        g.initializers.push((c, TensorData::from_f32(shape, v).expect("tensor")));
        let out = g.add_value(format!("v{}", g.values.len()), ValueType::tensor(DType::F32));
        let inputs = if first { vec![Some(c), Some(a)] } else { vec![Some(a), Some(c)] };
        g.add_node(Node {
            name: format!("n{}", g.nodes.len()),
            op: Op::Elementwise(op),
            inputs,
            outputs: vec![Some(out)],
        });
        out
    }

    fn weights(m: &Model) -> (Vec<f64>, Vec<f64>) {
        let g = m.main_graph();
        let n = &g.nodes[0];
        let get = |i: usize| g.initializer(n.inputs[i].expect("input")).expect("weight").to_f64_vec();
        (get(1), get(2))
    }

    #[test]
    fn a_chain_of_per_channel_mul_add_sub_folds_into_the_conv() {
        use ElementwiseOp as E;
        // ((conv · [2, 1]) + 1) - [0.5, 4], then 3 · that (constant first).
        let mut m = conv_then(|g, y| {
            let a = binary(g, E::Mul {}, y, vec![1, 2, 1, 1], &[2.0, 1.0], false);
            let b = binary(g, E::Add {}, a, vec![], &[1.0], false);
            let c = binary(g, E::Sub {}, b, vec![2, 1, 1], &[0.5, 4.0], false);
            binary(g, E::Mul {}, c, vec![1], &[3.0], true)
        });
        assert_eq!(fold_conv_affine(&mut m), 4);
        assert_eq!(m.main_graph().nodes.len(), 1);
        assert_eq!(m.main_graph().nodes[0].outputs, vec![Some(*m.main_graph().outputs.first().expect("output"))]);
        // W' = W·2·3 per channel [2, 1]; B' = ((0·s + 1) - c)·3.
        assert_eq!(weights(&m), (vec![12.0, 9.0], vec![1.5, -9.0]));
    }

    #[test]
    fn constants_that_vary_along_another_axis_or_are_subtracted_from_do_not_fold() {
        use ElementwiseOp as E;
        let mut m = conv_then(|g, y| binary(g, E::Mul {}, y, vec![1, 1, 1, 2], &[2.0, 1.0], false));
        assert_eq!(fold_conv_affine(&mut m), 0);
        let mut m = conv_then(|g, y| binary(g, E::Sub {}, y, vec![1], &[2.0], true));
        assert_eq!(fold_conv_affine(&mut m), 0);
        // A rank above the output's would broadcast the output itself.
        let mut m = conv_then(|g, y| binary(g, E::Add {}, y, vec![1, 1, 2, 1, 1], &[2.0, 1.0], false));
        assert_eq!(fold_conv_affine(&mut m), 0);
    }

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
        assert_eq!(fold_conv_affine(&mut m), 1);
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
