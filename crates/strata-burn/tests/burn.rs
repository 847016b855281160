//! Differential tests of the burn backend (on burn-flex) against the
//! reference backend: small IR graphs over broadcasting, MatMul/Gemm,
//! convolution and pooling geometry, normalisation and layout chains.
//! Float outputs must agree within a bound growing with the reduction
//! length; unsupported nodes must say why; a failure inside burn must be
//! an error naming the node.
#![cfg(feature = "flex")]

use std::sync::Arc;

use strata_burn::{BurnError, FlexBackend};
use strata_ir::ops::{ElementwiseOp as E, NnOp as N, ReduceOp as R, TensorOp as T};
use strata_ir::window::AutoPad;
use strata_ir::{DType, Model, NodeId, Op, TensorData};
use strata_test_support::harness::{Floats, Target, Tol, check_against_reference, reason};
use strata_test_support::ir::Builder;

#[path = "burn/typed.rs"]
mod typed;

/// Deterministic pseudo-random floats in [lo, hi).
fn data(shape: &[usize], seed: u32, lo: f32, hi: f32) -> TensorData {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            lo + (hi - lo) * ((s >> 8) as f32 / (1u32 << 24) as f32)
        })
        .collect();
    TensorData::from_f32(shape.to_vec(), &v).expect("valid")
}

fn ints(v: &[i64]) -> TensorData {
    TensorData::from_i64(vec![v.len()], v).expect("valid")
}

/// One node over graph inputs `ins` and weights; one float32 output `y`.
fn one(op: Op, ins: &[(&str, &TensorData)], weights: &[(&str, TensorData)], node_ins: &[&str]) -> Model {
    Builder::one_node(op, ins, weights, node_ins, &[("y", DType::F32)], None).build()
}

struct Burn(FlexBackend);

impl Target for Burn {
    const NAME: &'static str = "burn";
    fn supports(&self, m: &Model, node: NodeId) -> Result<(), String> {
        reason(self.0.supports(m, m.main, node))
    }
    fn runs(&self, m: Model, inputs: &[TensorData]) -> Vec<Vec<TensorData>> {
        let compiled = self.0.compile(Arc::new(m)).expect("compiles");
        let ins: Vec<_> = inputs.iter().map(|t| self.0.upload(t).expect("uploads")).collect();
        let refs: Vec<_> = ins.iter().collect();
        vec![compiled.run(&refs).expect("runs").iter().map(|t| t.to_host().expect("downloads")).collect()]
    }
}

/// Burn against the reference: `2e-7 · k + 2e-6 · |ref|` (k: reduction length).
fn check(m: Model, inputs: &[TensorData], k: usize) {
    let tol = Tol { atol: 2e-7 * k.max(1) as f64, rtol: 2e-6 };
    check_against_reference(&Burn(FlexBackend::default()), m, inputs, tol, Floats::F32Only);
}

#[test]
fn broadcasting_arithmetic_matches_the_reference() {
    let a = data(&[2, 3, 4], 1, -2.0, 2.0);
    let b = data(&[3, 1], 2, 0.5, 2.0);
    let s = data(&[], 3, 1.0, 2.0);
    for op in [E::Add {}, E::Sub {}, E::Mul {}, E::Div {}] {
        check(one(Op::Elementwise(op), &[("a", &a), ("b", &b)], &[], &["a", "b"]), &[a.clone(), b.clone()], 1);
    }
    let p = data(&[2, 3, 4], 4, 0.5, 2.0);
    check(one(Op::Elementwise(E::Pow {}), &[("p", &p), ("s", &s)], &[], &["p", "s"]), &[p.clone(), s.clone()], 1);
    // Variadic Max/Min over three ranks, one operand a weight.
    for op in [E::Max {}, E::Min {}, E::Sum {}, E::Mean {}] {
        let m = one(Op::Elementwise(op), &[("a", &a), ("s", &s)], &[("w", data(&[4], 5, -1.0, 1.0))], &["a", "w", "s"]);
        check(m, &[a.clone(), s.clone()], 3);
    }
}

#[test]
fn unary_operators_match_the_reference() {
    let x = data(&[3, 5], 6, -0.9, 0.9);
    for op in
        [E::Abs {}, E::Neg {}, E::Exp {}, E::Sin {}, E::Tanh {}, E::Sigmoid {}, E::Relu {}, E::Floor {}, E::Atan {}]
    {
        check(one(Op::Elementwise(op), &[("x", &x)], &[], &["x"]), std::slice::from_ref(&x), 4);
    }
    let clip = Op::Elementwise(E::Clip { min: Some(-0.5), max: Some(0.25) });
    check(one(clip, &[("x", &x)], &[], &["x"]), std::slice::from_ref(&x), 1);
}

#[test]
fn matmul_and_gemm_match_the_reference() {
    let a = data(&[2, 1, 3, 4], 7, -1.0, 1.0);
    let b = data(&[5, 4, 2], 8, -1.0, 1.0);
    check(one(Op::Nn(N::MatMul {}), &[("a", &a), ("b", &b)], &[], &["a", "b"]), &[a.clone(), b.clone()], 4);
    let v = data(&[4], 9, -1.0, 1.0);
    check(one(Op::Nn(N::MatMul {}), &[("a", &a), ("v", &v)], &[], &["a", "v"]), &[a.clone(), v.clone()], 4);
    check(one(Op::Nn(N::MatMul {}), &[("v", &v), ("b", &b)], &[], &["v", "b"]), &[v.clone(), b.clone()], 4);
    let x = data(&[6, 3], 10, -1.0, 1.0);
    let gemm = Op::Nn(N::Gemm { alpha: 0.5, beta: 2.0, transA: 1, transB: 1, broadcast: None });
    let m = one(
        gemm,
        &[("x", &x)],
        &[("w", data(&[4, 6], 11, -1.0, 1.0)), ("c", data(&[4], 12, -1.0, 1.0))],
        &["x", "w", "c"],
    );
    check(m, &[x], 6);
}

fn conv(auto_pad: AutoPad, group: i64, pads: Option<Vec<i64>>, strides: Option<Vec<i64>>, dil: Option<Vec<i64>>) -> Op {
    Op::Nn(N::Conv { auto_pad, dilations: dil, group, kernel_shape: None, pads, strides })
}

#[test]
fn convolutions_match_the_reference() {
    type Case = (Vec<usize>, Vec<usize>, i64, AutoPad, Option<Vec<i64>>, Option<Vec<i64>>, Option<Vec<i64>>);
    let cases: Vec<Case> = vec![
        (vec![1, 3, 9, 9], vec![8, 3, 3, 3], 1, AutoPad::NotSet, Some(vec![1, 1, 1, 1]), None, None),
        (
            vec![2, 4, 10, 7],
            vec![6, 2, 3, 2],
            2,
            AutoPad::NotSet,
            Some(vec![0, 1, 2, 0]),
            Some(vec![2, 1]),
            Some(vec![1, 2]),
        ),
        (vec![1, 6, 11, 11], vec![6, 1, 3, 3], 6, AutoPad::SameUpper, None, Some(vec![2, 2]), None),
        (vec![2, 4, 17], vec![5, 4, 3], 1, AutoPad::NotSet, Some(vec![2, 1]), Some(vec![2]), None),
    ];
    for (xs, ws, group, auto_pad, pads, strides, dil) in cases {
        let x = data(&xs, 13, -1.0, 1.0);
        let k = ws[1..].iter().product();
        let bias = data(&[ws[0]], 15, -1.0, 1.0);
        let model = one(
            conv(auto_pad, group, pads, strides, dil),
            &[("x", &x)],
            &[("w", data(&ws, 14, -1.0, 1.0)), ("b", bias)],
            &["x", "w", "b"],
        );
        check(model, &[x], k);
    }
}

#[test]
fn pooling_matches_the_reference() {
    let x = data(&[2, 3, 9, 8], 16, -1.0, 1.0);
    let max = Op::Nn(N::MaxPool {
        auto_pad: AutoPad::NotSet,
        ceil_mode: true,
        dilations: None,
        kernel_shape: vec![3, 2],
        pads: Some(vec![1, 0, 0, 1]),
        storage_order: 0,
        strides: Some(vec![2, 2]),
    });
    check(one(max, &[("x", &x)], &[], &["x"]), std::slice::from_ref(&x), 1);
    for count_include_pad in [false, true] {
        let avg = Op::Nn(N::AveragePool {
            auto_pad: AutoPad::NotSet,
            ceil_mode: false,
            count_include_pad,
            dilations: None,
            kernel_shape: vec![3, 3],
            pads: Some(vec![1, 1, 1, 1]),
            strides: Some(vec![2, 1]),
        });
        check(one(avg, &[("x", &x)], &[], &["x"]), std::slice::from_ref(&x), 9);
    }
    check(one(Op::Nn(N::GlobalAveragePool {}), &[("x", &x)], &[], &["x"]), std::slice::from_ref(&x), 72);
}

#[test]
fn a_chain_of_layout_normalisation_and_softmax_matches_the_reference() {
    let x = data(&[2, 3, 4, 5], 17, -1.0, 1.0);
    let c = |s| data(&[3], s, 0.5, 1.5);
    let mut b = Builder::new();
    b.input_exact("x", &x)
        .weight("scale", c(18))
        .weight("bias", c(19))
        .weight("mean", c(20))
        .weight("var", c(21))
        .weight("shape", ints(&[2, 3, -1]))
        .weight("axes", ints(&[0]));
    b.node(
        Op::Nn(N::BatchNormalization { epsilon: 1e-5, momentum: 0.9, training_mode: 0, spatial: None }),
        &["x", "scale", "bias", "mean", "var"],
        &["bn"],
    )
    .node(Op::Tensor(T::Reshape { allowzero: 0, shape: None }), &["bn", "shape"], &["r"])
    .node(Op::Tensor(T::Transpose { perm: Some(vec![0, 2, 1]) }), &["r"], &["t"])
    .node(Op::Reduce(R::Softmax { axis: -1 }), &["t"], &["s"])
    .node(Op::Tensor(T::Concat { axis: 1 }), &["s", "t"], &["cat"])
    .node(Op::Tensor(T::Unsqueeze { axes: None }), &["cat", "axes"], &["y"])
    .output("y");
    check(b.build(), &[x], 20);
}

#[test]
fn unsupported_nodes_say_why() {
    let burn = FlexBackend::default();
    let i = TensorData::from_f64(DType::U8, vec![2], &[1.0, 2.0]).expect("valid");
    let m = Builder::one_node(
        Op::Elementwise(E::Add {}),
        &[("a", &i), ("b", &i)],
        &[],
        &["a", "b"],
        &[("y", DType::U8)],
        None,
    )
    .build();
    let why = burn.supports(&m, m.main, NodeId(0)).expect_err("uint8 is not held");
    assert!(why.contains("uint8") && why.contains("float32"), "{why}");

    let x = data(&[1, 1, 5, 5], 22, -1.0, 1.0);
    let avg = Op::Nn(N::AveragePool {
        auto_pad: AutoPad::NotSet,
        ceil_mode: false,
        count_include_pad: false,
        dilations: None,
        kernel_shape: vec![2, 2],
        pads: Some(vec![0, 0, 1, 1]),
        strides: None,
    });
    let m = one(avg, &[("x", &x)], &[], &["x"]);
    let why = burn.supports(&m, m.main, NodeId(0)).expect_err("asymmetric average pooling");
    assert!(why.contains("asymmetric"), "{why}");

    let pad = Op::Tensor(T::Pad { mode: strata_ir::ops::tensor::PadMode::Wrap, pads: None, value: None });
    let m = one(pad, &[("x", &x)], &[("p", ints(&[0, 0, 1, 1, 0, 0, 1, 1]))], &["x", "p"]);
    let why = burn.supports(&m, m.main, NodeId(0)).expect_err("wrap padding");
    assert!(why.contains("wrap"), "{why}");
}

#[test]
fn a_panic_inside_burn_is_an_error_naming_the_node() {
    let x = data(&[2, 3], 23, -1.0, 1.0);
    let burn = FlexBackend::default().with_fault(Some("second"));
    let compiled = burn.compile(two_nodes(&x)).expect("compiles");
    let input = burn.upload(&x).expect("uploads");
    match compiled.run(&[&input]) {
        Err(BurnError::Panicked { node, op, message }) => {
            assert_eq!((node.as_str(), op.as_str()), ("second", "Exp"));
            assert!(!message.is_empty());
        }
        other => panic!("expected a node-named panic error, got {other:?}"),
    }
    // The same graph without the fault runs.
    let clean = FlexBackend::default().compile(two_nodes(&x)).expect("compiles");
    assert!(clean.run(&[&input]).is_ok());
}

/// Relu (`first`) then Exp (`second`).
fn two_nodes(x: &TensorData) -> Arc<Model> {
    let mut b = Builder::new();
    b.input_exact("x", x)
        .node_named("first", Op::Elementwise(E::Relu {}), &["x"], &["r"])
        .node_named("second", Op::Elementwise(E::Exp {}), &["r"], &["y"])
        .output("y");
    Arc::new(b.build())
}
