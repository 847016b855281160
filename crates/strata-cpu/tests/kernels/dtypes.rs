//! Element types beyond float32: casts between every held type, integer
//! arithmetic on every integer width, comparisons, and float16 / bfloat16
//! nodes run through the float32 kernels.

use strata_ir::dtype::E8M0Round;
use strata_ir::ops::ElementwiseOp as E;
use strata_ir::ops::elementwise::ShiftDirection;
use strata_ir::{DType, Op, TensorData};
use strata_test_support::harness::{Floats, Tol, check_against_reference};

use super::{Cpu, check, conv, model};
use strata_cpu::CpuBackend;

/// Values exercising signs, fractions and the narrow types' ranges.
const VALUES: [f64; 12] = [0.0, -0.0, 1.0, -1.0, 2.5, -3.75, 7.0, 100.0, -100.0, 0.3, 12.5, -0.125];

fn tensor(d: DType, vals: &[f64]) -> TensorData {
    TensorData::from_f64(d, vec![vals.len()], vals).expect("valid")
}

const TYPES: [DType; 19] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::F8E4M3FN,
    DType::F8E4M3FNUZ,
    DType::F8E5M2,
    DType::F8E5M2FNUZ,
    DType::I64,
    DType::I32,
    DType::I16,
    DType::I8,
    DType::U64,
    DType::U32,
    DType::U16,
    DType::U8,
    DType::I4,
    DType::U4,
    DType::Bool,
];

#[test]
fn casts_between_every_held_type_match_the_reference_exactly() {
    for from in TYPES {
        // Unsigned sources hold non-negative values; floats going to
        // integers stay inside every integer range (outside it ONNX leaves
        // the result undefined).
        let vals: Vec<f64> = VALUES
            .iter()
            .map(|&v| if from.is_unsigned_int() { v.abs() } else { v })
            .map(|v| v.clamp(-7.0, 7.0))
            .collect();
        let x = tensor(from, &vals);
        for to in TYPES {
            for saturate in [0, 1] {
                let op = Op::Elementwise(E::Cast { to, saturate, round_mode: E8M0Round::Up });
                let m = model(op, &[("x", &x)], &[], &["x"], &[("y", to)]);
                check_against_reference(
                    &Cpu(CpuBackend::new(2)),
                    m,
                    std::slice::from_ref(&x),
                    Tol::EXACT,
                    Floats::F32Only,
                );
            }
        }
    }
    // float8e8m0 and float4e2m1 targets, with their own rounding.
    let x = tensor(DType::F32, &[0.0, 0.3, 1.0, 3.0, 5.5, -6.0, 1e30, 448.0]);
    for to in [DType::F8E8M0, DType::F4E2M1] {
        for round_mode in [E8M0Round::Up, E8M0Round::Down, E8M0Round::Nearest] {
            let op = Op::Elementwise(E::Cast { to, saturate: 1, round_mode });
            let m = model(op, &[("x", &x)], &[], &["x"], &[("y", to)]);
            check_against_reference(&Cpu(CpuBackend::new(1)), m, std::slice::from_ref(&x), Tol::EXACT, Floats::F32Only);
        }
    }
}

#[test]
fn integer_arithmetic_wraps_on_every_width_like_the_reference() {
    let ops = [
        E::Add {},
        E::Sub {},
        E::Mul {},
        E::Div {},
        E::Max {},
        E::Min {},
        E::Mod { fmod: 0 },
        E::Mod { fmod: 1 },
        E::BitwiseAnd {},
        E::BitwiseOr {},
        E::BitwiseXor {},
        E::BitShift { direction: ShiftDirection::Left },
        E::BitShift { direction: ShiftDirection::Right },
        E::Equal {},
        E::Less {},
        E::GreaterOrEqual {},
    ];
    let ints = [DType::I64, DType::I32, DType::I16, DType::I8, DType::U64, DType::U32, DType::U16, DType::U8];
    for d in ints {
        let a: Vec<f64> = [250.0, -7.0, 127.0, 3.0, -128.0, 60000.0]
            .iter()
            .map(|&v: &f64| if d.is_unsigned_int() { v.abs() } else { v })
            .collect();
        let b: Vec<f64> = [9.0, 2.0, 3.0, -5.0, 7.0, 70.0]
            .iter()
            .map(|&v: &f64| if d.is_unsigned_int() { v.abs() } else { v })
            .collect();
        let (x, y) = (tensor(d, &a), tensor(d, &b));
        for op in &ops {
            let shift = matches!(op, E::BitShift { .. });
            let y = if shift { tensor(d, &[1.0, 3.0, 0.0, 7.0, 2.0, 5.0]) } else { y.clone() };
            let out = if matches!(op, E::Equal {} | E::Less {} | E::GreaterOrEqual {}) { DType::Bool } else { d };
            let m = model(Op::Elementwise(op.clone()), &[("x", &x), ("y", &y)], &[], &["x", "y"], &[("z", out)]);
            check(m, &[x.clone(), y.clone()], 1);
        }
    }
    // Division by zero is an error naming the node, not a panic.
    let (x, z) = (tensor(DType::U8, &[1.0, 2.0]), tensor(DType::U8, &[1.0, 0.0]));
    let m = model(Op::Elementwise(E::Div {}), &[("x", &x), ("y", &z)], &[], &["x", "y"], &[("z", DType::U8)]);
    let compiled = CpuBackend::new(1).compile(std::sync::Arc::new(m)).expect("compiles");
    let ins: Vec<_> = [x, z].iter().map(|t| strata_cpu::CpuTensor::from_host(t).expect("uploads")).collect();
    let err = compiled.run(&ins.iter().collect::<Vec<_>>()).expect_err("divides by zero").to_string();
    assert!(err.contains("division by zero"), "{err}");
}

#[test]
fn half_precision_nodes_run_through_float32_and_round_back() {
    let tol = Tol { atol: 2e-3, rtol: 2e-3 };
    for d in [DType::F16, DType::BF16] {
        let x = tensor(d, &(0..48).map(|i| ((i * 37 % 23) as f64 - 11.0) / 8.0).collect::<Vec<_>>())
            .reshaped(vec![1, 3, 4, 4])
            .expect("reshapes");
        let w = tensor(d, &(0..54).map(|i| ((i * 13 % 17) as f64 - 8.0) / 16.0).collect::<Vec<_>>())
            .reshaped(vec![2, 3, 3, 3])
            .expect("reshapes");
        let conv = conv("NOTSET", 1, Some(vec![1, 1, 1, 1]), None, None);
        let m = model(conv, &[("x", &x)], &[("w", w)], &["x", "w"], &[("y", d)]);
        check_against_reference(&Cpu(CpuBackend::new(2)), m, std::slice::from_ref(&x), tol, Floats::All);
        for op in [E::Sigmoid {}, E::Exp {}, E::Neg {}, E::Acos {}] {
            let m = model(Op::Elementwise(op), &[("x", &x)], &[], &["x"], &[("y", d)]);
            check_against_reference(&Cpu(CpuBackend::new(1)), m, std::slice::from_ref(&x), tol, Floats::All);
        }
        let m = model(Op::Elementwise(E::Add {}), &[("x", &x), ("y", &x)], &[], &["x", "y"], &[("z", d)]);
        // A sum of two half values rounds once from f32: exactly the reference.
        check_against_reference(&Cpu(CpuBackend::new(1)), m, &[x.clone(), x.clone()], Tol::EXACT, Floats::All);
    }
}

#[test]
fn scatters_and_nonzero_on_other_types_match_the_reference_exactly() {
    use strata_ir::ops::TensorOp as T;
    use strata_ir::ops::tensor::ScatterReduction as Red;
    let idx = TensorData::from_i64(vec![2, 3], &[1, 0, 3, -1, 2, 0]).expect("valid");
    for d in [DType::F64, DType::I8, DType::U16, DType::F16, DType::BF16, DType::I4, DType::Bool] {
        let vals: Vec<f64> = VALUES.iter().map(|&v| v.abs().clamp(0.0, 7.0)).collect();
        let x = TensorData::from_f64(d, vec![3, 4], &vals).expect("valid");
        let u = TensorData::from_f64(d, vec![2, 3], &vals[6..]).expect("valid");
        let reds: &[Red] =
            if matches!(d, DType::Bool | DType::I4) { &[Red::None] } else { &[Red::None, Red::Add, Red::Max] };
        for &reduction in reds {
            let op = Op::Tensor(T::ScatterElements { axis: 1, reduction });
            let m = model(op, &[("x", &x)], &[("i", idx.clone()), ("u", u.clone())], &["x", "i", "u"], &[("y", d)]);
            check(m, std::slice::from_ref(&x), 0);
        }
        let m = model(Op::Tensor(T::NonZero {}), &[("x", &x)], &[], &["x"], &[("y", DType::I64)]);
        check(m, std::slice::from_ref(&x), 0);
    }
}

#[test]
fn log_sum_exp_of_float64_matches_the_reference_exactly() {
    use strata_ir::ops::ReduceOp as R;
    let vals: Vec<f64> = (0..24).map(|i| VALUES[i % VALUES.len()] * (1.0 + i as f64 / 7.0)).collect();
    let x = TensorData::from_f64(DType::F64, vec![2, 3, 4], &vals).expect("valid");
    for (axes, keepdims) in [(Some(vec![1]), 0), (None, 1), (Some(vec![0, -1]), 1)] {
        let op = Op::Reduce(R::ReduceLogSumExp { axes, keepdims, noop_with_empty_axes: 0 });
        check(model(op, &[("x", &x)], &[], &["x"], &[("y", DType::F64)]), std::slice::from_ref(&x), 0);
    }
}

#[test]
fn einsum_matches_the_reference_on_float32_and_float64() {
    use strata_ir::einsum::Equation;
    use strata_ir::ops::NnOp as N;
    for (eq, shapes) in [
        ("bij,bjk->bik", vec![vec![2, 3, 4], vec![2, 4, 5]]),
        ("ii->i", vec![vec![4, 4]]),
        ("...ij->...ji", vec![vec![2, 3, 4]]),
        ("i,i", vec![vec![6], vec![6]]),
        ("ij->", vec![vec![3, 5]]),
    ] {
        for d in [DType::F64, DType::F32] {
            let names = ["a", "b"];
            let xs: Vec<TensorData> = shapes
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let n: usize = s.iter().product();
                    let v: Vec<f64> = (0..n).map(|i| ((i * 7 + k * 3) % 11) as f64 / 4.0 - 1.2).collect();
                    TensorData::from_f64(d, s.clone(), &v).expect("valid")
                })
                .collect();
            let ins: Vec<(&str, &TensorData)> = names.iter().copied().zip(&xs).collect();
            let op = Op::Nn(N::Einsum { equation: Equation::parse(eq).expect("parses") });
            let m = model(op, &ins, &[], &names[..xs.len()], &[("y", d)]);
            // float64 sums in the reference's order: its bits.
            let tol = if d == DType::F64 { Tol::EXACT } else { Tol { atol: 1e-5, rtol: 1e-6 } };
            check_against_reference(&Cpu(CpuBackend::new(2)), m, &xs, tol, Floats::All);
        }
    }
}
