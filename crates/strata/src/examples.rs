//! Small models built in code, used by docs, tests and the CLI's default run.

use strata_ir::ops::{ElementwiseOp, NnOp};
use strata_ir::{DType, Dim, Graph, GraphId, Model, Node, Op, TensorData, ValueType};

/// A two-layer perceptron `y = relu(x·W1 + b1)·W2 + b2` with fixed weights,
/// input `x: float32[batch, 4]`, output `y: float32[batch, 3]`.
pub fn tiny_mlp() -> Model {
    let mut g = Graph { name: "tiny_mlp".into(), ..Default::default() };
    let f = |dims: Vec<Dim>| ValueType::Tensor { dtype: DType::F32, shape: Some(dims) };
    let x = g.add_value("x", f(vec![Dim::Sym("batch".into()), Dim::Known(4)]));
    g.inputs.push(x);
    let w1v: Vec<f32> = (0..32).map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0).collect();
    let b1v: Vec<f32> = (0..8).map(|i| (i as f32 - 4.0) / 20.0).collect();
    let w2v: Vec<f32> = (0..24).map(|i| ((i * 5 % 13) as f32 - 6.0) / 10.0).collect();
    let b2v: Vec<f32> = vec![0.1, -0.2, 0.3];
    let weight = |g: &mut Graph, name: &str, shape: Vec<usize>, v: &[f32]| {
        let id = g.add_value(name, f(shape.iter().map(|&d| Dim::Known(d as u64)).collect()));
        g.initializers.push((id, TensorData::from_f32(shape, v).expect("valid weight")));
        id
    };
    let w1 = weight(&mut g, "w1", vec![4, 8], &w1v);
    let b1 = weight(&mut g, "b1", vec![8], &b1v);
    let w2 = weight(&mut g, "w2", vec![8, 3], &w2v);
    let b2 = weight(&mut g, "b2", vec![3], &b2v);
    let h = g.add_value("h", ValueType::tensor(DType::F32));
    let r = g.add_value("r", ValueType::tensor(DType::F32));
    let y = g.add_value("y", f(vec![Dim::Sym("batch".into()), Dim::Known(3)]));
    let gemm = |a, b, c, out, name: &str| Node {
        name: name.into(),
        op: Op::Nn(NnOp::Gemm { alpha: 1.0, beta: 1.0, transA: 0, transB: 0, broadcast: None }),
        inputs: vec![Some(a), Some(b), Some(c)],
        outputs: vec![Some(out)],
    };
    g.add_node(gemm(x, w1, b1, h, "fc1"));
    g.add_node(Node {
        name: "relu".into(),
        op: Op::Elementwise(ElementwiseOp::Relu {}),
        inputs: vec![Some(h)],
        outputs: vec![Some(r)],
    });
    g.add_node(gemm(r, w2, b2, y, "fc2"));
    g.outputs.push(y);
    Model {
        graphs: vec![g],
        main: GraphId(0),
        opsets: vec![(String::new(), 21)],
        producer: "strata examples".into(),
        metadata: vec![],
    }
}
