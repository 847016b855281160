//! Elementwise kernels: activations, broadcasting binaries, Where and casts.

use super::*;
use strata_ir::dtype::E8M0Round;
use strata_ir::ops::elementwise::GeluApprox;

#[test]
fn unary_activations() {
    let x = data(&[3, 5, 7], 1, -6.0, 6.0);
    let cases: Vec<(Op, Tol)> = vec![
        (Op::Elementwise(E::Relu {}), EXACT),
        (Op::Elementwise(E::Abs {}), EXACT),
        (Op::Elementwise(E::Neg {}), EXACT),
        (Op::Elementwise(E::Floor {}), EXACT),
        (Op::Elementwise(E::Ceil {}), EXACT),
        (Op::Elementwise(E::Round {}), EXACT),
        (Op::Elementwise(E::Sign {}), EXACT),
        (Op::Elementwise(E::LeakyRelu { alpha: 0.1 }), ULPS),
        (Op::Elementwise(E::HardSigmoid { alpha: 0.2, beta: 0.5 }), ULPS),
        (Op::Elementwise(E::HardSwish {}), ULPS),
        (Op::Elementwise(E::Clip { min: Some(-1.5), max: Some(2.0) }), EXACT),
        (Op::Elementwise(E::Softsign {}), ULPS),
        (Op::Elementwise(E::Reciprocal {}), ULPS),
        (Op::Elementwise(E::Sigmoid {}), TRANSC),
        (Op::Elementwise(E::Tanh {}), TRANSC),
        (Op::Elementwise(E::Exp {}), TRANSC),
        (Op::Elementwise(E::Erf {}), TRANSC),
        (Op::Elementwise(E::Gelu { approximate: GeluApprox::None }), TRANSC),
        (Op::Elementwise(E::Gelu { approximate: GeluApprox::Tanh }), TRANSC),
        (Op::Elementwise(E::Softplus {}), TRANSC),
        (Op::Elementwise(E::Elu { alpha: 1.0 }), TRANSC),
        (Op::Elementwise(E::Selu { alpha: 1.67, gamma: 1.05 }), TRANSC),
        (Op::Elementwise(E::Mish {}), TRANSC),
        (Op::Elementwise(E::Swish { alpha: 1.0 }), TRANSC),
    ];
    for (op, tol) in cases {
        eprintln!("{}", op.name());
        check(unary_model(op), vec![x.clone()], tol);
    }
    // Small arguments, where naive tanh/softplus formulas cancel.
    let small = data(&[64], 3, -0.01, 0.01);
    for op in [E::Tanh {}, E::Mish {}, E::Gelu { approximate: GeluApprox::Tanh }, E::Sigmoid {}] {
        check(unary_model(Op::Elementwise(op)), vec![small.clone()], TRANSC);
    }
    let neg = data(&[64], 4, -12.0, -6.0);
    for op in [E::Mish {}, E::Softplus {}] {
        check(unary_model(Op::Elementwise(op)), vec![neg.clone()], TRANSC);
    }
    let pos = data(&[4, 9], 2, 0.01, 50.0);
    check(unary_model(Op::Elementwise(E::Log {})), vec![pos.clone()], TRANSC);
    check(unary_model(Op::Elementwise(E::Sqrt {})), vec![pos], ULPS);
}

#[test]
fn binary_broadcasting() {
    let a = data(&[2, 3, 4], 3, -3.0, 3.0);
    let b = data(&[3, 1], 4, 0.5, 2.0);
    for (op, tol) in [
        (E::Add {}, EXACT),
        (E::Sub {}, EXACT),
        (E::Mul {}, EXACT),
        (E::Div {}, ULPS),
        (E::Max {}, EXACT),
        (E::Min {}, EXACT),
        (E::Pow {}, Tol { atol: 1e-6, rtol: 1e-5 }),
        (E::Equal {}, EXACT),
        (E::Greater {}, EXACT),
        (E::LessOrEqual {}, EXACT),
        (E::PRelu {}, EXACT),
    ] {
        eprintln!("{}", op.name());
        let m = Builder::new()
            .input("a", DType::F32)
            .input("b", DType::F32)
            .node(Op::Elementwise(op), &["a", "b"], &["y"])
            .output("y")
            .build();
        check(m, vec![a.clone(), b.clone()], tol);
    }
    // Variadic Sum and Mean over three broadcast inputs.
    for op in [E::Sum {}, E::Mean {}] {
        let m = Builder::new()
            .input("a", DType::F32)
            .input("b", DType::F32)
            .input("c", DType::F32)
            .node(Op::Elementwise(op), &["a", "b", "c"], &["y"])
            .output("y")
            .build();
        check(m, vec![a.clone(), b.clone(), data(&[4], 5, -1.0, 1.0)], ULPS);
    }
}

#[test]
fn where_and_cast() {
    let x = data(&[2, 5], 6, -2.0, 2.0);
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("zero", TensorData::from_f32(vec![], &[0.0]).expect("scalar"))
        .node(Op::Elementwise(E::Greater {}), &["x", "zero"], &["c"])
        .node(Op::Elementwise(E::Neg {}), &["x"], &["n"])
        .node(Op::Elementwise(E::Where {}), &["c", "x", "n"], &["y"])
        .node(Op::Elementwise(E::Cast { to: DType::I32, saturate: 1, round_mode: E8M0Round::Up }), &["x"], &["i"])
        .node(Op::Elementwise(E::Cast { to: DType::F32, saturate: 1, round_mode: E8M0Round::Up }), &["c"], &["cf"])
        .output("y")
        .output("i")
        .output("cf")
        .output("c")
        .build();
    check(m, vec![x], EXACT);
}

#[test]
fn large_tensor_uses_2d_dispatch() {
    let n = 65_535 * 64 + 1000;
    let x = data(&[n], 7, -1.0, 1.0);
    check(unary_model(Op::Elementwise(E::Relu {})), vec![x], EXACT);
}
