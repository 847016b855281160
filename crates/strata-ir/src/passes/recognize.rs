//! Activations recognised from their decomposed ONNX form, so that a
//! backend runs one step instead of four:
//!
//! - `Div(Clip(Add(x, 3), 0, 6), 6)` → `HardSigmoid(x)` (alpha 1/6, beta 1/2),
//! - `Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)` → `HardSwish(x)`,
//!
//! with the additions and multiplications in either operand order and the
//! division also as a multiplication by 1/6. The results differ from the
//! decomposed nodes by rounding only (`x · clip(x/6 + 1/2, 0, 1)` against
//! `x · clip(x + 3, 0, 6) / 6`). Rewritten when every intermediate value is
//! read by the next node alone and is not a graph output.

use std::collections::HashMap;

use crate::dtype::DType;
use crate::graph::{Graph, Model, Node, ValueId};
use crate::ops::{ElementwiseOp as E, Op};

/// The one float32 value of weight `v`, if it has one element.
fn scalar(g: &Graph, v: Option<ValueId>) -> Option<f32> {
    let t = g.initializer(v?)?;
    (t.dtype() == DType::F32 && t.numel() == 1).then(|| t.to_f64_vec()[0] as f32)
}

/// For a binary node `n` of op `op` with one operand the constant `c`,
/// the other operand.
fn with_constant(g: &Graph, n: &Node, op: fn(&E) -> bool, c: f32, commutes: bool) -> Option<ValueId> {
    let Op::Elementwise(e) = &n.op else { return None };
    if !op(e) || n.inputs.len() != 2 {
        return None;
    }
    let (a, b) = (n.inputs[0]?, n.inputs[1]?);
    if scalar(g, Some(b)) == Some(c) {
        return Some(a);
    }
    (commutes && scalar(g, Some(a)) == Some(c)).then_some(b)
}

/// Whether `n` is `Clip(_, 0, 6)` (bounds as attributes or weights).
fn clip_0_6(g: &Graph, n: &Node) -> Option<ValueId> {
    let Op::Elementwise(E::Clip { min, max }) = &n.op else { return None };
    let lo = n.inputs.get(1).copied().flatten().map_or(*min, |v| scalar(g, Some(v)));
    let hi = n.inputs.get(2).copied().flatten().map_or(*max, |v| scalar(g, Some(v)));
    (lo == Some(0.0) && hi == Some(6.0)).then_some(n.inputs.first().copied().flatten()?)
}

/// Recognise every hard-sigmoid and hard-swish of the main graph; returns
/// how many were rewritten.
pub fn recognize_hard_activations(model: &mut Model) -> usize {
    let main = model.main;
    let captured = super::captured_values(model, main);
    let g = model.graph_mut(main);
    let mut readers: HashMap<ValueId, usize> = HashMap::new();
    for n in &g.nodes {
        for v in n.inputs.iter().flatten() {
            *readers.entry(*v).or_default() += 1;
        }
    }
    let mut producer: HashMap<ValueId, usize> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        for v in n.outputs.iter().flatten() {
            producer.insert(*v, i);
        }
    }
    // A value read only by the node that consumes it in the pattern.
    let private = |v: ValueId| readers.get(&v) == Some(&1) && !g.outputs.contains(&v) && !captured.contains(&v);
    let made_by = |v: ValueId| producer.get(&v).copied().filter(|&i| g.nodes[i].outputs.len() == 1);
    let mut rewrites: Vec<(usize, ValueId, E, Vec<usize>)> = Vec::new();
    let mut used = vec![false; g.nodes.len()];
    for di in 0..g.nodes.len() {
        let d = &g.nodes[di];
        // The final division by 6 (or multiplication by 1/6).
        let Some(scaled) = with_constant(g, d, |e| matches!(e, E::Div {}), 6.0, false)
            .or_else(|| with_constant(g, d, |e| matches!(e, E::Mul {}), 1.0 / 6.0, true))
        else {
            continue;
        };
        let Some(si) = made_by(scaled).filter(|_| private(scaled)) else { continue };
        // HardSigmoid: the scaled value is the Clip itself, of x + 3.
        let (clip_i, x) = if let Some(a) = clip_0_6(g, &g.nodes[si]) {
            (si, a)
        } else {
            // HardSwish: a multiplication of x by the Clip.
            let m = &g.nodes[si];
            if !matches!(m.op, Op::Elementwise(E::Mul {})) || m.inputs.len() != 2 {
                continue;
            }
            let (Some(p), Some(q)) = (m.inputs[0], m.inputs[1]) else { continue };
            let found = [(p, q), (q, p)].into_iter().find_map(|(x, c)| {
                let ci = made_by(c).filter(|_| private(c))?;
                let a = clip_0_6(g, &g.nodes[ci])?;
                Some((ci, a, x))
            });
            let Some((ci, a, x)) = found else { continue };
            // The Clip's input must be x + 3 (x the other factor).
            let Some(ai) = made_by(a).filter(|_| private(a)) else { continue };
            if with_constant(g, &g.nodes[ai], |e| matches!(e, E::Add {}), 3.0, true) != Some(x) {
                continue;
            }
            let nodes = vec![si, ci, ai];
            if nodes.iter().any(|&i| used[i]) || used[di] {
                continue;
            }
            nodes.iter().for_each(|&i| used[i] = true);
            used[di] = true;
            rewrites.push((di, x, E::HardSwish {}, nodes));
            continue;
        };
        let Some(ai) = made_by(x).filter(|_| private(x)) else { continue };
        let Some(input) = with_constant(g, &g.nodes[ai], |e| matches!(e, E::Add {}), 3.0, true) else { continue };
        let nodes = vec![clip_i, ai];
        if nodes.iter().any(|&i| used[i]) || used[di] {
            continue;
        }
        nodes.iter().for_each(|&i| used[i] = true);
        used[di] = true;
        rewrites.push((di, input, E::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }, nodes));
    }
    let count = rewrites.len();
    let mut remove = vec![false; g.nodes.len()];
    for (di, x, op, nodes) in rewrites {
        let d = &mut g.nodes[di];
        d.op = Op::Elementwise(op);
        d.inputs = vec![Some(x)];
        nodes.into_iter().for_each(|i| remove[i] = true);
    }
    let mut i = 0;
    g.nodes.retain(|_| {
        let keep = !remove[i];
        i += 1;
        keep
    });
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ValueType;
    use crate::tensor::TensorData;

    struct B(Graph);

    impl B {
        fn value(&mut self) -> ValueId {
            let n = self.0.values.len();
            self.0.add_value(format!("v{n}"), ValueType::tensor(DType::F32))
        }
        fn constant(&mut self, v: f32) -> ValueId {
            let c = self.value();
            self.0.initializers.push((c, TensorData::from_f32(vec![], &[v]).expect("tensor")));
            c
        }
        fn node(&mut self, op: E, inputs: Vec<ValueId>) -> ValueId {
            let out = self.value();
            let name = format!("n{}", self.0.nodes.len());
            self.0.add_node(Node {
                name,
                op: Op::Elementwise(op),
                inputs: inputs.into_iter().map(Some).collect(),
                outputs: vec![Some(out)],
            });
            out
        }
        fn model(mut self, out: ValueId) -> Model {
            self.0.outputs.push(out);
            Model {
                graphs: vec![self.0],
                main: crate::GraphId(0),
                opsets: vec![],
                producer: String::new(),
                metadata: vec![],
            }
        }
    }

    /// x + 3 (constant first when `swap`), clipped to [0, 6] by weights.
    fn relu6_of_x_plus_3(b: &mut B, x: ValueId, swap: bool) -> ValueId {
        let three = b.constant(3.0);
        let a = b.node(E::Add {}, if swap { vec![three, x] } else { vec![x, three] });
        let (lo, hi) = (b.constant(0.0), b.constant(6.0));
        b.node(E::Clip { min: None, max: None }, vec![a, lo, hi])
    }

    fn ops(m: &Model) -> Vec<String> {
        m.main_graph().nodes.iter().map(|n| n.op.name().to_string()).collect()
    }

    #[test]
    fn hard_swish_in_both_orders_and_with_a_multiplication_by_a_sixth() {
        for (swap, by_mul) in [(false, false), (true, true)] {
            let mut b = B(Graph { name: "t".into(), ..Default::default() });
            let x = b.value();
            b.0.inputs.push(x);
            let c = relu6_of_x_plus_3(&mut b, x, swap);
            let p = b.node(E::Mul {}, if swap { vec![c, x] } else { vec![x, c] });
            let y = if by_mul {
                let k = b.constant(1.0 / 6.0);
                b.node(E::Mul {}, vec![p, k])
            } else {
                let k = b.constant(6.0);
                b.node(E::Div {}, vec![p, k])
            };
            let mut m = b.model(y);
            assert_eq!(recognize_hard_activations(&mut m), 1);
            assert_eq!(ops(&m), vec!["HardSwish"]);
            assert_eq!(m.main_graph().nodes[0].inputs, vec![Some(x)]);
            assert_eq!(m.main_graph().nodes[0].outputs, vec![Some(y)]);
        }
    }

    #[test]
    fn hard_sigmoid_and_patterns_whose_values_are_read_elsewhere() {
        let mut b = B(Graph { name: "t".into(), ..Default::default() });
        let x = b.value();
        b.0.inputs.push(x);
        let c = relu6_of_x_plus_3(&mut b, x, false);
        let six = b.constant(6.0);
        let y = b.node(E::Div {}, vec![c, six]);
        let mut m = b.model(y);
        assert_eq!(recognize_hard_activations(&mut m), 1);
        assert_eq!(ops(&m), vec!["HardSigmoid"]);
        let Op::Elementwise(E::HardSigmoid { alpha, beta }) = m.main_graph().nodes[0].op else { panic!() };
        assert_eq!((alpha, beta), (1.0 / 6.0, 0.5));
        // The clipped value is also a graph output: nothing changes.
        let mut b = B(Graph { name: "t".into(), ..Default::default() });
        let x = b.value();
        b.0.inputs.push(x);
        let c = relu6_of_x_plus_3(&mut b, x, false);
        let six = b.constant(6.0);
        let y = b.node(E::Div {}, vec![c, six]);
        b.0.outputs.push(c);
        let mut m = b.model(y);
        assert_eq!(recognize_hard_activations(&mut m), 0);
        // Clipped to [0, 5]: not a hard sigmoid.
        let mut b = B(Graph { name: "t".into(), ..Default::default() });
        let x = b.value();
        b.0.inputs.push(x);
        let three = b.constant(3.0);
        let a = b.node(E::Add {}, vec![x, three]);
        let c = b.node(E::Clip { min: Some(0.0), max: Some(5.0) }, vec![a]);
        let six = b.constant(6.0);
        let y = b.node(E::Div {}, vec![c, six]);
        let mut m = b.model(y);
        assert_eq!(recognize_hard_activations(&mut m), 0);
    }
}
