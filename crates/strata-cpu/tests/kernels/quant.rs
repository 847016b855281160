//! Quantisation and integer products against the reference, bit for bit.

use strata_ir::ops::QuantOp as Q;
use strata_ir::window::AutoPad;
use strata_ir::{DType, Op, TensorData};
use strata_test_support::harness::{Floats, Tol, check_against_reference};

use super::{Cpu, data, model};
use strata_cpu::CpuBackend;

fn t(d: DType, shape: &[usize], vals: &[f64]) -> TensorData {
    TensorData::from_f64(d, shape.to_vec(), vals).expect("valid")
}

/// Pseudo-random integers in `[lo, hi]` of type `d`.
fn ints(d: DType, shape: &[usize], lo: i64, hi: i64, seed: u64) -> TensorData {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let v: Vec<f64> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (lo + ((s >> 33) % (hi - lo + 1) as u64) as i64) as f64
        })
        .collect();
    t(d, shape, &v)
}

fn exact(m: strata_ir::Model, inputs: &[TensorData]) {
    for threads in [1, 2] {
        check_against_reference(&Cpu(CpuBackend::new(threads)), m.clone(), inputs, Tol::EXACT, Floats::All);
    }
}

#[test]
fn quantize_and_dequantize_match_the_reference_bit_for_bit() {
    let x = data(&[2, 3, 8], 7, -4.0, 4.0);
    let q = |axis, block_size| {
        Op::Quant(Q::QuantizeLinear { axis, block_size, output_dtype: None, saturate: 1, precision: None })
    };
    // Per tensor (uint8), per axis (int8), blocked (int4), float8.
    let cases: Vec<(Op, TensorData, TensorData)> = vec![
        (q(1, 0), t(DType::F32, &[], &[0.031]), t(DType::U8, &[], &[128.0])),
        (q(1, 0), t(DType::F32, &[3], &[0.02, 0.05, 0.1]), t(DType::I8, &[3], &[-3.0, 0.0, 5.0])),
        (q(2, 4), data(&[2, 3, 2], 3, 0.2, 0.9), t(DType::I4, &[2, 3, 2], &[0.0; 12])),
        (q(1, 0), t(DType::F32, &[], &[0.5]), t(DType::F8E4M3FN, &[], &[0.0])),
    ];
    for (op, scale, zp) in cases {
        let to = zp.dtype();
        let m = model(op, &[("x", &x)], &[("s", scale.clone()), ("z", zp.clone())], &["x", "s", "z"], &[("y", to)]);
        exact(m, std::slice::from_ref(&x));
        // And back.
        let y = ints(to, &[2, 3, 8], 0, 7, 3);
        if to.is_int() {
            let dq = Op::Quant(Q::DequantizeLinear {
                axis: if scale.shape().len() == 1 { 1 } else { 2 },
                block_size: if scale.shape().len() == 3 { 4 } else { 0 },
                output_dtype: None,
            });
            let m = model(dq, &[("y", &y)], &[("s", scale), ("z", zp)], &["y", "s", "z"], &[("x", DType::F32)]);
            exact(m, &[y]);
        }
    }
    // float16 output from an int8 input and a float16 scale.
    let y = ints(DType::I8, &[4, 5], -128, 127, 9);
    let dq = Op::Quant(Q::DequantizeLinear { axis: 1, block_size: 0, output_dtype: None });
    let m = model(dq, &[("y", &y)], &[("s", t(DType::F16, &[], &[0.0123]))], &["y", "s"], &[("x", DType::F16)]);
    exact(m, &[y]);
}

#[test]
fn dynamic_quantization_matches_the_reference() {
    for (lo, hi) in [(-3.0, 5.0), (0.5, 2.0), (-2.0, -1.0)] {
        let x = data(&[3, 17], 11, lo, hi);
        let op = Op::Quant(Q::DynamicQuantizeLinear {});
        let m = model(op, &[("x", &x)], &[], &["x"], &[("y", DType::U8), ("s", DType::F32), ("z", DType::U8)]);
        exact(m, &[x]);
    }
}

#[test]
fn integer_matrix_products_match_the_reference() {
    let a = ints(DType::U8, &[2, 5, 7], 0, 255, 1);
    let b = ints(DType::I8, &[7, 6], -128, 127, 2);
    let (az, bz) = (ints(DType::U8, &[5], 0, 255, 3), ints(DType::I8, &[6], -128, 127, 4));
    let m = model(
        Op::Quant(Q::MatMulInteger {}),
        &[("a", &a)],
        &[("b", b.clone()), ("az", az), ("bz", bz)],
        &["a", "b", "az", "bz"],
        &[("y", DType::I32)],
    );
    exact(m, std::slice::from_ref(&a));
    let weights = vec![
        ("as", t(DType::F32, &[], &[0.02])),
        ("az", t(DType::U8, &[], &[120.0])),
        ("b", b),
        ("bs", t(DType::F32, &[6], &[0.01, 0.02, 0.03, 0.015, 0.05, 0.004])),
        ("bz", t(DType::I8, &[6], &[0.0, 1.0, -2.0, 3.0, 0.0, -1.0])),
        ("ys", t(DType::F32, &[], &[0.7])),
        ("yz", t(DType::U8, &[], &[100.0])),
    ];
    let m = model(
        Op::Quant(Q::QLinearMatMul {}),
        &[("a", &a)],
        &weights,
        &["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
        &[("y", DType::U8)],
    );
    exact(m, &[a]);
}

#[test]
fn integer_convolutions_match_the_reference() {
    let x = ints(DType::U8, &[2, 4, 7, 6], 0, 255, 5);
    let w = ints(DType::I8, &[6, 2, 3, 3], -128, 127, 6);
    let conv = |qlinear: bool, pads: Option<Vec<i64>>, strides: Option<Vec<i64>>, auto_pad: AutoPad| {
        let (dilations, kernel_shape, group) = (None, None, 2);
        Op::Quant(if qlinear {
            Q::QLinearConv { auto_pad, dilations, group, kernel_shape, pads, strides }
        } else {
            Q::ConvInteger { auto_pad, dilations, group, kernel_shape, pads, strides }
        })
    };
    for (pads, strides, auto_pad) in [
        (Some(vec![1, 0, 2, 1]), Some(vec![2, 1]), AutoPad::NotSet),
        (None, None, AutoPad::SameUpper),
        (None, Some(vec![1, 2]), AutoPad::Valid),
    ] {
        let m = model(
            conv(false, pads.clone(), strides.clone(), auto_pad),
            &[("x", &x)],
            &[
                ("w", w.clone()),
                ("xz", t(DType::U8, &[], &[128.0])),
                ("wz", t(DType::I8, &[6], &[0.0, 1.0, -1.0, 2.0, 0.0, 3.0])),
            ],
            &["x", "w", "xz", "wz"],
            &[("y", DType::I32)],
        );
        exact(m, std::slice::from_ref(&x));
        let weights = vec![
            ("xs", t(DType::F32, &[], &[0.05])),
            ("xz", t(DType::U8, &[], &[128.0])),
            ("w", w.clone()),
            ("ws", t(DType::F32, &[6], &[0.01, 0.02, 0.004, 0.03, 0.008, 0.015])),
            ("wz", t(DType::I8, &[], &[0.0])),
            ("ys", t(DType::F32, &[], &[0.9])),
            ("yz", t(DType::I8, &[], &[-5.0])),
            ("b", ints(DType::I32, &[6], -3000, 3000, 7)),
        ];
        let m = model(
            conv(true, pads, strides, auto_pad),
            &[("x", &x)],
            &weights,
            &["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
            &[("y", DType::I8)],
        );
        exact(m, std::slice::from_ref(&x));
    }
}
