//! Element types: narrow floats, small and 64-bit integers, quantisation.

use super::*;
use strata_ir::dtype::E8M0Round;
use strata_ir::ops::elementwise::ShiftDirection;

fn cast(to: DType, saturate: i64) -> Op {
    Op::Elementwise(E::Cast { to, saturate, round_mode: E8M0Round::Up })
}

#[test]
fn casts_round_to_narrow_floats_like_the_reference() {
    // Ties, overflow thresholds, subnormals, signed zero, NaN and infinities
    // of float16, bfloat16, the float8 kinds and float4e2m1, then random values.
    let mut v: Vec<f32> = vec![
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        65504.0,
        65519.99,
        65520.0,
        1e-8,
        2f32.powi(-25),
        3.0 * 2f32.powi(-26),
        -0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        448.0,
        464.0,
        470.0,
        1e6,
        -1e6,
        240.0,
        248.0,
        57344.0,
        61440.0,
        1e-3,
        -2.5e-3,
        0.25,
        5.0,
        7.0,
        1.0 + 2f32.powi(-8),
        f32::from_bits(0x3f80_8000),
        f32::from_bits(0x3f81_8000),
        f32::MAX,
        1e-40,
    ];
    let r = data(&[64], 41, -300.0, 300.0).to_f64_vec();
    v.extend(r.iter().map(|&x| x as f32));
    v.extend(r.iter().map(|&x| (x * 1e-4) as f32));
    let x = TensorData::from_f32(vec![v.len()], &v).expect("valid");
    let mut b = Builder::new();
    b.input("x", DType::F32);
    let targets = [
        (DType::F16, 1),
        (DType::BF16, 1),
        (DType::F8E4M3FN, 1),
        (DType::F8E4M3FN, 0),
        (DType::F8E4M3FNUZ, 1),
        (DType::F8E4M3FNUZ, 0),
        (DType::F8E5M2, 1),
        (DType::F8E5M2, 0),
        (DType::F8E5M2FNUZ, 1),
        (DType::F8E5M2FNUZ, 0),
        (DType::F4E2M1, 1),
        (DType::F8E8M0, 1),
        (DType::F8E8M0, 0),
    ];
    for (i, (to, sat)) in targets.iter().enumerate() {
        let (y, z) = (format!("y{i}"), format!("z{i}"));
        // Narrow, then widen again (the widening aliases the words).
        b.node(cast(*to, *sat), &["x"], &[&y]).node(cast(DType::F32, 1), &[&y], &[&z]).output(&y).output(&z);
    }
    for mode in ["down", "nearest"] {
        let y = format!("e8m0_{mode}");
        b.node(
            Op::Elementwise(E::Cast {
                to: DType::F8E8M0,
                saturate: 1,
                round_mode: E8M0Round::from_name(mode).unwrap(),
            }),
            &["x"],
            &[&y],
        );
        b.output(&y);
    }
    check(b.build(), vec![x], EXACT);
}

#[test]
fn narrow_float_arithmetic_is_rounded_to_the_type() {
    let a = data(&[4, 8], 42, -4.0, 4.0).to_f64_vec();
    let c = data(&[4, 8], 43, -4.0, 4.0).to_f64_vec();
    for d in [DType::F16, DType::BF16] {
        let x = TensorData::from_f64(d, vec![4, 8], &a).expect("valid");
        let y = TensorData::from_f64(d, vec![4, 8], &c).expect("valid");
        let m = Builder::new()
            .input("x", d)
            .input("y", d)
            .node(Op::Elementwise(E::Mul {}), &["x", "y"], &["p"])
            .node(Op::Elementwise(E::Sub {}), &["p", "x"], &["s"])
            .node(Op::Elementwise(E::Relu {}), &["s"], &["r"])
            .output("s")
            .output("r")
            .build();
        // f32 products of two 11- or 8-bit significands are exact, so
        // rounding once to the type matches the reference exactly.
        check(m, vec![x, y], EXACT);
    }
}

#[test]
fn small_and_unsigned_integers_wrap_like_numpy() {
    let i8s = |v: &[i128]| TensorData::from_i128(DType::I8, vec![v.len()], v).expect("valid");
    let x = i8s(&[127, -128, 100, -100, 5, -7, 64, 1]);
    let y = i8s(&[1, -1, 100, 27, 3, 2, 2, 9]);
    let m = Builder::new()
        .input("x", DType::I8)
        .input("y", DType::I8)
        .node(Op::Elementwise(E::Add {}), &["x", "y"], &["add"])
        .node(Op::Elementwise(E::Mul {}), &["x", "y"], &["mul"])
        .node(Op::Elementwise(E::Neg {}), &["x"], &["neg"])
        .node(Op::Elementwise(E::Div {}), &["x", "y"], &["div"])
        .node(Op::Elementwise(E::Mod { fmod: 0 }), &["x", "y"], &["mod"])
        .node(Op::Elementwise(E::Pow {}), &["x", "y"], &["pow"])
        .node(Op::Elementwise(E::BitShift { direction: ShiftDirection::Left }), &["x", "y"], &["shl"])
        .node(Op::Elementwise(E::BitShift { direction: ShiftDirection::Right }), &["x", "y"], &["shr"])
        .node(cast(DType::U8, 1), &["x"], &["u"])
        .node(Op::Elementwise(E::Sub {}), &["u", "u"], &["zero"])
        .node(Op::Elementwise(E::Sub {}), &["zero", "u"], &["negu"])
        .output("add")
        .output("mul")
        .output("neg")
        .output("div")
        .output("mod")
        .output("pow")
        .output("shl")
        .output("shr")
        .output("negu")
        .build();
    check(m, vec![x, y], EXACT);

    // uint32 beyond i32::MAX: comparisons, division and casts see unsigned values.
    let u = TensorData::from_i128(DType::U32, vec![4], &[4_000_000_000, 7, 2_147_483_648, 0]).expect("valid");
    let w = TensorData::from_i128(DType::U32, vec![4], &[3, 4_000_000_000, 2_147_483_647, 1]).expect("valid");
    let m = Builder::new()
        .input("u", DType::U32)
        .input("w", DType::U32)
        .node(Op::Elementwise(E::Greater {}), &["u", "w"], &["gt"])
        .node(Op::Elementwise(E::Div {}), &["u", "w"], &["div"])
        .node(Op::Elementwise(E::Sub {}), &["u", "w"], &["sub"])
        .node(Op::Elementwise(E::Max {}), &["u", "w"], &["max"])
        .node(cast(DType::F32, 1), &["u"], &["f"])
        .node(cast(DType::U16, 1), &["u"], &["h"])
        .output("gt")
        .output("div")
        .output("sub")
        .output("max")
        .output("f")
        .output("h")
        .build();
    check(m, vec![u, w], EXACT);
}

#[test]
fn quantize_and_dequantize_match_the_reference() {
    use strata_ir::ops::QuantOp;
    let x = data(&[2, 3, 4], 44, -300.0, 300.0);
    let scale = TensorData::from_f32(vec![3], &[2.0, 0.7, 3.0]).expect("valid");
    let zp = TensorData::from_i128(DType::I8, vec![3], &[0, -3, 5]).expect("valid");
    let q =
        Op::Quant(QuantOp::QuantizeLinear { axis: 1, block_size: 0, output_dtype: None, saturate: 1, precision: None });
    let dq = Op::Quant(QuantOp::DequantizeLinear { axis: 1, block_size: 0, output_dtype: None });
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("s", scale)
        .weight("z", zp)
        .typed("q", DType::I8)
        .typed("d", DType::F32)
        .node(q, &["x", "s", "z"], &["q"])
        .node(dq, &["q", "s", "z"], &["d"])
        .output("q")
        .output("d")
        .build();
    check(m, vec![x], EXACT);
}

#[test]
fn int64_overflow_and_division_by_zero_are_errors() {
    let Some(b) = backend() else { return };
    let run = |m: Model, inputs: Vec<TensorData>| -> Result<(), GpuError> {
        let c = b.compile(Arc::new(m))?;
        let dev: Vec<_> = inputs.iter().map(|t| b.upload(t)).collect::<Result<_, _>>()?;
        let refs: Vec<_> = dev.iter().collect();
        pollster::block_on(c.run(&refs)).map(|_| ())
    };
    let add = |d: DType| {
        Builder::new()
            .input_rank("x", d, 2)
            .input_rank("y", d, 2)
            .node(Op::Elementwise(E::Add {}), &["x", "y"], &["s"])
            .output("s")
            .build()
    };
    let big = i64s(vec![1, 2], &[1 << 30, 5]);
    assert!(
        run(add(DType::I64), vec![big.clone(), i64s(vec![1, 2], &[1 << 30, 6])])
            .is_err_and(|e| { matches!(&e, GpuError::Value(m) if m.contains("does not fit")) })
    );
    assert_eq!(run(add(DType::I64), vec![big.clone(), i64s(vec![1, 2], &[(1 << 30) - 1, -6])]).ok(), Some(()));
    let u = |v: &[i128]| TensorData::from_i128(DType::U64, vec![1, 2], v).expect("valid");
    assert!(run(add(DType::U64), vec![u(&[4_000_000_000, 1]), u(&[300_000_000, 1])]).is_err());
    let div = Builder::new()
        .input_rank("x", DType::I32, 2)
        .input_rank("y", DType::I32, 2)
        .node(Op::Elementwise(E::Div {}), &["x", "y"], &["q"])
        .output("q")
        .build();
    let i32s = |v: &[i128]| TensorData::from_i128(DType::I32, vec![1, 2], v).expect("valid");
    let r = run(div, vec![i32s(&[4, 5]), i32s(&[2, 0])]);
    assert!(matches!(&r, Err(GpuError::Value(m)) if m.contains("division by zero")), "{r:?}");
}
