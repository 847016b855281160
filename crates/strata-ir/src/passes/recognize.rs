//! Activations recognised from their decomposed ONNX form, so that a
//! backend runs one step instead of four:
//!
//! - `Div(Clip(Add(x, 3), 0, 6), 6)` → `HardSigmoid(x)` (alpha 1/6, beta 1/2),
//! - `Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)` → `HardSwish(x)`,
//!
//! with the additions and multiplications in either operand order and the
//! division also as a multiplication by 1/6 ([`recognize_hard_activations`]);
//! and GELU, exact (`erf`) or in its `tanh` form, however an exporter wrote
//! it out ([`recognize_gelu`]): a cone of arithmetic nodes over one value
//! `x` and scalar weights that contains an `Erf` or a `Tanh` is evaluated
//! (in f64, at fixed points) and rewritten when it computes GELU there. The
//! results differ from the decomposed nodes by rounding only. Rewritten when
//! every intermediate value is read inside the pattern alone and is not a
//! graph output.

use std::collections::HashMap;

use crate::dtype::DType;
use crate::graph::{Graph, Model, Node, ValueId};
use crate::ops::elementwise::GeluApprox;
use crate::ops::{ElementwiseOp as E, Op};

/// Every activation this module recognises; returns how many were rewritten.
pub fn recognize_activations(model: &mut Model) -> usize {
    recognize_hard_activations(model) + recognize_gelu(model)
}

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
    let uses = super::Uses::of(model);
    let g = model.graph_mut(model.main);
    // A value read only by the node that consumes it in the pattern.
    let private = |v: ValueId| uses.private(g, v);
    let made_by = |v: ValueId| uses.producer(v).filter(|&i| g.nodes[i].outputs.len() == 1);
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
    super::remove_marked(g, &remove);
    count
}

/// An arithmetic node of a GELU cone, evaluated at `x` (f64).
fn eval_node(op: &E, args: &[f64]) -> Option<f64> {
    Some(match (op, args) {
        (E::Mul {}, [a, b]) => a * b,
        (E::Add {}, [a, b]) => a + b,
        (E::Sub {}, [a, b]) => a - b,
        (E::Div {}, [a, b]) => a / b,
        (E::Pow {}, [a, b]) => a.powf(*b),
        (E::Tanh {}, [a]) => a.tanh(),
        (E::Erf {}, [a]) => erf(*a),
        (E::Sqrt {}, [a]) => a.sqrt(),
        (E::Neg {}, [a]) => -a,
        _ => return None,
    })
}

/// erf in f64 to about 1e-13 (Taylor series below 3, the asymptotic bound
/// above: enough to tell GELU's two forms apart, which differ by 1e-3).
fn erf(x: f64) -> f64 {
    let a = x.abs();
    if a >= 6.0 {
        return x.signum();
    }
    // erf(x) = 2/sqrt(pi) · Σ (-1)^n x^(2n+1) / (n! (2n+1)).
    let (mut term, mut sum, x2) = (a, a, a * a);
    for n in 1..200 {
        term *= -x2 / n as f64;
        let t = term / (2 * n + 1) as f64;
        sum += t;
        if t.abs() < 1e-17 * sum.abs() {
            break;
        }
    }
    (2.0 / std::f64::consts::PI.sqrt() * sum).clamp(-1.0, 1.0).copysign(x)
}

/// GELU at `x`: exact, or in its tanh form.
fn gelu(x: f64, approx: GeluApprox) -> f64 {
    match approx {
        GeluApprox::Tanh => 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
        _ => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
    }
}

/// Recognise every GELU written out in arithmetic nodes of the main graph;
/// returns how many were rewritten.
pub fn recognize_gelu(model: &mut Model) -> usize {
    let uses = super::Uses::of(model);
    let g = model.graph_mut(model.main);
    let arith = |n: &Node| {
        matches!(
            n.op,
            Op::Elementwise(
                E::Mul {}
                    | E::Add {}
                    | E::Sub {}
                    | E::Div {}
                    | E::Pow {}
                    | E::Tanh {}
                    | E::Erf {}
                    | E::Sqrt {}
                    | E::Neg {}
            )
        ) && n.outputs.len() == 1
    };
    let mut used = vec![false; g.nodes.len()];
    let mut rewrites: Vec<(usize, ValueId, GeluApprox, Vec<usize>)> = Vec::new();
    // Outputs last to first, so the largest cone is tried before its parts.
    for yi in (0..g.nodes.len()).rev() {
        if used[yi] || !arith(&g.nodes[yi]) {
            continue;
        }
        // The cone: arithmetic nodes behind y whose outputs are read only
        // inside it; leaves are scalar weights or the one value x.
        let mut cone = vec![yi];
        let mut leaves: Vec<ValueId> = Vec::new();
        let mut k = 0;
        let mut ok = true;
        while k < cone.len() && ok {
            for v in g.nodes[cone[k]].inputs.clone() {
                let Some(v) = v else {
                    ok = false;
                    break;
                };
                if scalar(g, Some(v)).is_some() {
                    continue;
                }
                // Only values read once, by the cone, are inside it: a value
                // read more often (x itself, read by several nodes) is a leaf.
                let single = uses.private(g, v);
                match uses.producer(v) {
                    Some(pi) if single && !used[pi] && arith(&g.nodes[pi]) && cone.len() < 24 => {
                        if !cone.contains(&pi) {
                            cone.push(pi);
                        }
                    }
                    _ => {
                        if !leaves.contains(&v) {
                            leaves.push(v);
                        }
                    }
                }
            }
            k += 1;
        }
        if !ok || cone.len() < 4 {
            continue;
        }
        let approx = if cone.iter().any(|&i| matches!(g.nodes[i].op, Op::Elementwise(E::Tanh {}))) {
            GeluApprox::Tanh
        } else if cone.iter().any(|&i| matches!(g.nodes[i].op, Op::Elementwise(E::Erf {}))) {
            GeluApprox::None
        } else {
            continue;
        };
        let [x] = leaves.as_slice() else { continue };
        if g.value(*x).ty.dtype() != Some(DType::F32) {
            continue;
        }
        // Evaluate the cone at fixed points, its nodes in graph order.
        let mut order = cone.clone();
        order.sort_unstable();
        let matches = [-4.0, -2.5, -1.3, -0.7, -0.1, 0.0, 0.2, 0.9, 1.7, 3.1].iter().all(|&xv: &f64| {
            let mut vals: HashMap<ValueId, f64> = HashMap::from([(*x, xv)]);
            for &i in &order {
                let n = &g.nodes[i];
                let args: Option<Vec<f64>> = n
                    .inputs
                    .iter()
                    .map(|v| v.and_then(|v| vals.get(&v).copied().or_else(|| scalar(g, Some(v)).map(f64::from))))
                    .collect();
                let Op::Elementwise(op) = &n.op else { return false };
                match args.and_then(|a| eval_node(op, &a)) {
                    Some(r) => vals.insert(n.outputs[0].unwrap_or(ValueId(u32::MAX)), r),
                    None => return false,
                };
            }
            let got = vals.get(&g.nodes[yi].outputs[0].unwrap_or(ValueId(u32::MAX))).copied();
            let want = gelu(xv, approx);
            got.is_some_and(|r| (r - want).abs() <= 1e-6 * (1.0 + want.abs()))
        });
        if !matches {
            continue;
        }
        cone.iter().for_each(|&i| used[i] = true);
        rewrites.push((yi, *x, approx, cone[1..].to_vec()));
    }
    let count = rewrites.len();
    let mut remove = vec![false; g.nodes.len()];
    for (yi, x, approx, nodes) in rewrites {
        let y = &mut g.nodes[yi];
        y.op = Op::Elementwise(E::Gelu { approximate: approx });
        y.inputs = vec![Some(x)];
        nodes.into_iter().for_each(|i| remove[i] = true);
    }
    super::remove_marked(g, &remove);
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

    #[test]
    fn gelu_in_its_tanh_and_erf_forms_however_written() {
        // The tanh form as a jax2tf export writes it: x · (0.5 · (1 + tanh(c · (x + x · (x · 0.044715))))).
        let mut b = B(Graph { name: "t".into(), ..Default::default() });
        let x = b.value();
        b.0.inputs.push(x);
        let k = b.constant(0.044715);
        let a = b.node(E::Mul {}, vec![k, x]);
        let a = b.node(E::Mul {}, vec![x, a]);
        let a = b.node(E::Mul {}, vec![x, a]);
        let a = b.node(E::Add {}, vec![x, a]);
        let c = b.constant((2.0 / std::f32::consts::PI).sqrt());
        let a = b.node(E::Mul {}, vec![c, a]);
        let t = b.node(E::Tanh {}, vec![a]);
        let one = b.constant(1.0);
        let u = b.node(E::Add {}, vec![one, t]);
        let half = b.constant(0.5);
        let v = b.node(E::Mul {}, vec![half, u]);
        let y = b.node(E::Mul {}, vec![x, v]);
        let mut m = b.model(y);
        assert_eq!(recognize_gelu(&mut m), 1);
        assert_eq!(ops(&m), vec!["Gelu"]);
        let n = &m.main_graph().nodes[0];
        assert!(matches!(n.op, Op::Elementwise(E::Gelu { approximate: GeluApprox::Tanh })));
        assert_eq!((n.inputs.clone(), n.outputs.clone()), (vec![Some(x)], vec![Some(y)]));
        // The exact form: (x · 0.5) · (erf(x / sqrt 2) + 1), with Pow-free arithmetic.
        let mut b = B(Graph { name: "t".into(), ..Default::default() });
        let x = b.value();
        b.0.inputs.push(x);
        let r2 = b.constant(std::f32::consts::SQRT_2);
        let a = b.node(E::Div {}, vec![x, r2]);
        let e = b.node(E::Erf {}, vec![a]);
        let one = b.constant(1.0);
        let u = b.node(E::Add {}, vec![e, one]);
        let half = b.constant(0.5);
        let h = b.node(E::Mul {}, vec![x, half]);
        let y = b.node(E::Mul {}, vec![h, u]);
        let mut m = b.model(y);
        assert_eq!(recognize_activations(&mut m), 1);
        assert!(matches!(m.main_graph().nodes[0].op, Op::Elementwise(E::Gelu { approximate: GeluApprox::None })));
    }

    #[test]
    fn cones_that_are_not_gelu_or_share_values_stay() {
        // x · tanh(softplus-free) — x · (1 + tanh(x)) / 2 is not GELU.
        let build = |share: bool| {
            let mut b = B(Graph { name: "t".into(), ..Default::default() });
            let x = b.value();
            b.0.inputs.push(x);
            let k = b.constant(0.044715);
            let a = b.node(E::Mul {}, vec![x, k]);
            let a = b.node(E::Mul {}, vec![a, x]);
            let a = b.node(E::Mul {}, vec![a, x]);
            let a = b.node(E::Add {}, vec![x, a]);
            let c = b.constant(if share { (2.0 / std::f32::consts::PI).sqrt() } else { 1.0 });
            let a2 = b.node(E::Mul {}, vec![a, c]);
            let t = b.node(E::Tanh {}, vec![a2]);
            let one = b.constant(1.0);
            let u = b.node(E::Add {}, vec![t, one]);
            let half = b.constant(0.5);
            let v = b.node(E::Mul {}, vec![u, half]);
            let y = b.node(E::Mul {}, vec![v, x]);
            if share {
                b.0.outputs.push(a);
            }
            b.model(y)
        };
        let mut m = build(false);
        assert_eq!(recognize_gelu(&mut m), 0, "tanh(x + 0.044715 x^3) without the sqrt(2/pi) factor");
        let mut m = build(true);
        assert_eq!(recognize_gelu(&mut m), 0, "an intermediate value is a graph output");
    }
}
