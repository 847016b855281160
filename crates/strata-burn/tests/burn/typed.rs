//! (Part of the `burn` test binary.) Differential tests of the burn backend's typed and newer families
//! against the reference backend: int64/bool tensors, Cast, comparisons
//! and Where, run-time shape/axes/starts operands read from the device,
//! Gather/Slice/Split/Pad/Tile, normalisations, ConvTranspose with
//! asymmetric padding, Resize, ArgMax and CumSum. Integer and bool
//! outputs must be exact; float outputs agree within a small bound.

use super::{Burn, data};
use strata_burn::FlexBackend;
use strata_ir::ops::{ElementwiseOp as E, NnOp as N, ReduceOp as R, TensorOp as T};
use strata_ir::window::AutoPad;
use strata_ir::{DType, Model, NodeId, Op, TensorData};
use strata_test_support::harness::{Floats, Tol, check_against_reference};
use strata_test_support::ir::Builder;

fn ints(shape: &[usize], v: &[i64]) -> TensorData {
    TensorData::from_i64(shape.to_vec(), v).expect("valid")
}

/// One node over graph inputs (all fed at run time, so shape and axes
/// operands are read from the device) with outputs of the given types.
fn node(op: Op, ins: &[(&str, &TensorData)], outs: &[(&str, DType)]) -> Model {
    let names: Vec<&str> = ins.iter().map(|(n, _)| *n).collect();
    Builder::one_node(op, ins, &[], &names, outs, None).build()
}

fn check(m: Model, inputs: &[&TensorData], k: usize) {
    let tol = Tol { atol: 2e-7 * k.max(1) as f64, rtol: 2e-6 };
    let inputs: Vec<TensorData> = inputs.iter().map(|t| (*t).clone()).collect();
    check_against_reference(&Burn(FlexBackend::default()), m, &inputs, tol, Floats::F32Only);
}

#[test]
fn integer_and_bool_tensors_match_exactly() {
    let a = ints(&[2, 3], &[5, -7, 3, 0, 12, -1]);
    let b = ints(&[3], &[2, 3, -4]);
    for op in [E::Add {}, E::Sub {}, E::Mul {}, E::Div {}, E::Max {}, E::Min {}] {
        check(node(Op::Elementwise(op), &[("a", &a), ("b", &b)], &[("y", DType::I64)]), &[&a, &b], 1);
    }
    for fmod in [0, 1] {
        check(node(Op::Elementwise(E::Mod { fmod }), &[("a", &a), ("b", &b)], &[("y", DType::I64)]), &[&a, &b], 1);
    }
    for op in [E::Equal {}, E::Less {}, E::LessOrEqual {}, E::Greater {}, E::GreaterOrEqual {}] {
        check(node(Op::Elementwise(op), &[("a", &a), ("b", &b)], &[("y", DType::Bool)]), &[&a, &b], 1);
    }
    let x = data(&[2, 3], 1, -2.0, 2.0);
    let y = data(&[3], 2, -2.0, 2.0);
    let c = TensorData::from_f64(DType::Bool, vec![2, 3], &[1.0, 0.0, 0.0, 1.0, 1.0, 0.0]).expect("valid");
    let d = TensorData::from_f64(DType::Bool, vec![3], &[1.0, 1.0, 0.0]).expect("valid");
    check(node(Op::Elementwise(E::Less {}), &[("x", &x), ("y", &y)], &[("z", DType::Bool)]), &[&x, &y], 1);
    for op in [E::And {}, E::Or {}, E::Xor {}] {
        check(node(Op::Elementwise(op), &[("c", &c), ("d", &d)], &[("z", DType::Bool)]), &[&c, &d], 1);
    }
    check(node(Op::Elementwise(E::Not {}), &[("c", &c)], &[("z", DType::Bool)]), &[&c], 1);
    check(
        node(Op::Elementwise(E::Where {}), &[("c", &c), ("x", &x), ("y", &y)], &[("z", DType::F32)]),
        &[&c, &x, &y],
        1,
    );
    check(
        node(Op::Elementwise(E::Where {}), &[("c", &c), ("a", &a), ("b", &b)], &[("z", DType::I64)]),
        &[&c, &a, &b],
        1,
    );
}

#[test]
fn casts_between_held_types_match_exactly() {
    let x = data(&[2, 4], 3, -5.0, 5.0);
    let a = ints(&[2, 4], &[0, 1, -3, 7, 9, 0, -2, 4]);
    let cast = |to| Op::Elementwise(E::Cast { to, saturate: 1, round_mode: strata_ir::dtype::E8M0Round::Up });
    for (src, to) in [(&x, DType::I64), (&x, DType::I32), (&x, DType::Bool), (&a, DType::F32), (&a, DType::Bool)] {
        check(node(cast(to), &[("x", src)], &[("y", to)]), &[src], 1);
    }
    let b = TensorData::from_f64(DType::Bool, vec![3], &[1.0, 0.0, 1.0]).expect("valid");
    for to in [DType::F32, DType::I64] {
        check(node(cast(to), &[("b", &b)], &[("y", to)]), &[&b], 1);
    }
    // float16/bfloat16/float64 are held: cast there and back.
    for to in [DType::F16, DType::BF16, DType::F64] {
        let mut b = Builder::one_node(cast(to), &[("x", &x)], &[], &["x"], &[("y", to)], None);
        b.typed("z", DType::F32).node(cast(DType::F32), &["y"], &["z"]).output("z");
        check(b.build(), &[&x], 1);
    }
    let m = node(cast(DType::U8), &[("x", &x)], &[("y", DType::U8)]);
    let why = FlexBackend::default().supports(&m, m.main, NodeId(0)).expect_err("uint8 is not held");
    assert!(why.contains("uint8"), "{why}");
}

#[test]
fn run_time_operands_are_read_from_the_device() {
    let x = data(&[2, 3, 4], 4, -1.0, 1.0);
    let f = DType::F32;
    let shape = ints(&[3], &[4, 0, -1]);
    check(
        node(Op::Tensor(T::Reshape { allowzero: 0, shape: None }), &[("x", &x), ("s", &shape)], &[("y", f)]),
        &[&x, &shape],
        1,
    );
    let axes = ints(&[2], &[0, -1]);
    check(node(Op::Tensor(T::Unsqueeze { axes: None }), &[("x", &x), ("a", &axes)], &[("y", f)]), &[&x, &axes], 1);
    let to = ints(&[4], &[2, 2, 3, 4]);
    let one = data(&[2, 1, 3, 1], 5, -1.0, 1.0);
    check(node(Op::Tensor(T::Expand {}), &[("x", &one), ("s", &to)], &[("y", f)]), &[&one, &to], 1);
    let (st, en, ax, sp) = (ints(&[2], &[3, 0]), ints(&[2], &[-5, 3]), ints(&[2], &[2, 1]), ints(&[2], &[-2, 2]));
    let slice = Op::Tensor(T::Slice { starts: None, ends: None, axes: None });
    check(
        node(slice, &[("x", &x), ("s", &st), ("e", &en), ("a", &ax), ("p", &sp)], &[("y", f)]),
        &[&x, &st, &en, &ax, &sp],
        1,
    );
    let reps = ints(&[3], &[2, 1, 3]);
    check(node(Op::Tensor(T::Tile {}), &[("x", &x), ("r", &reps)], &[("y", f)]), &[&x, &reps], 1);
    let rax = ints(&[1], &[1]);
    let sum = Op::Reduce(R::ReduceSum { axes: None, keepdims: 0, noop_with_empty_axes: 0 });
    check(node(sum, &[("x", &x), ("a", &rax)], &[("y", f)]), &[&x, &rax], 3);
    let (lo, hi) = (data(&[], 6, -0.5, -0.4), data(&[], 7, 0.3, 0.4));
    let clip = Op::Elementwise(E::Clip { min: None, max: None });
    check(node(clip, &[("x", &x), ("lo", &lo), ("hi", &hi)], &[("y", f)]), &[&x, &lo, &hi], 1);
    let idx = ints(&[2, 2], &[2, -1, 0, 1]);
    check(node(Op::Tensor(T::Gather { axis: 1 }), &[("x", &x), ("i", &idx)], &[("y", f)]), &[&x, &idx], 1);
    let split = ints(&[2], &[1, 3]);
    let m = node(
        Op::Tensor(T::Split { axis: -1, num_outputs: None, split: None }),
        &[("x", &x), ("s", &split)],
        &[("y0", f), ("y1", f)],
    );
    check(m, &[&x, &split], 1);
    let pads = ints(&[6], &[0, 1, 2, 0, 0, 1]);
    for mode in [
        strata_ir::ops::tensor::PadMode::Constant,
        strata_ir::ops::tensor::PadMode::Reflect,
        strata_ir::ops::tensor::PadMode::Edge,
    ] {
        check(
            node(Op::Tensor(T::Pad { mode, pads: None, value: None }), &[("x", &x), ("p", &pads)], &[("y", f)]),
            &[&x, &pads],
            1,
        );
    }
}

#[test]
fn normalisations_match_the_reference() {
    let x = data(&[2, 4, 3, 5], 8, -2.0, 2.0);
    let (scale, bias) = (data(&[3, 5], 9, 0.5, 1.5), data(&[3, 5], 10, -0.5, 0.5));
    let ln = Op::Nn(N::LayerNormalization { axis: -2, epsilon: 1e-5, stash_type: 1 });
    let m = node(
        ln,
        &[("x", &x), ("s", &scale), ("b", &bias)],
        &[("y", DType::F32), ("mean", DType::F32), ("inv", DType::F32)],
    );
    check(m, &[&x, &scale, &bias], 15);
    let (cs, cb) = (data(&[4], 11, 0.5, 1.5), data(&[4], 12, -0.5, 0.5));
    let inst = Op::Nn(N::InstanceNormalization { epsilon: 1e-5 });
    check(node(inst, &[("x", &x), ("s", &cs), ("b", &cb)], &[("y", DType::F32)]), &[&x, &cs, &cb], 15);
    let gn = Op::Nn(N::GroupNormalization { epsilon: 1e-5, num_groups: 2, stash_type: 1 });
    check(node(gn, &[("x", &x), ("s", &cs), ("b", &cb)], &[("y", DType::F32)]), &[&x, &cs, &cb], 30);
}

#[test]
fn conv_transpose_with_asymmetric_padding_matches_the_reference() {
    let x = data(&[1, 2, 4, 5], 13, -1.0, 1.0);
    let w = data(&[2, 3, 3, 2], 14, -1.0, 1.0);
    let b = data(&[3], 15, -1.0, 1.0);
    for (pads, output_padding, strides) in [
        (Some(vec![0, 1, 2, 0]), None, Some(vec![2, 1])),
        (Some(vec![1, 1, 1, 1]), Some(vec![1, 0]), Some(vec![2, 2])),
        (None, None, None),
    ] {
        let op = Op::Nn(N::ConvTranspose {
            auto_pad: AutoPad::NotSet,
            dilations: None,
            group: 1,
            kernel_shape: None,
            output_padding,
            output_shape: None,
            pads,
            strides,
        });
        check(node(op, &[("x", &x), ("w", &w), ("b", &b)], &[("y", DType::F32)]), &[&x, &w, &b], 12);
    }
}

#[test]
fn resize_argmax_and_cumsum_match_the_reference() {
    use strata_ir::resample::{AspectRatioPolicy, Coord, NearestMode, ResizeMode};
    let x = data(&[1, 2, 3, 4], 16, -1.0, 1.0);
    let scales = TensorData::from_f32(vec![4], &[1.0, 1.0, 1.7, 0.6]).expect("valid");
    let empty = TensorData::from_f32(vec![0], &[]).expect("valid");
    for (mode, coord) in [
        (ResizeMode::Nearest, Coord::Asymmetric),
        (ResizeMode::Linear, Coord::HalfPixel),
        (ResizeMode::Linear, Coord::AlignCorners),
        (ResizeMode::Cubic, Coord::PytorchHalfPixel),
    ] {
        let op = Op::Nn(N::Resize {
            antialias: false,
            axes: None,
            coordinate_transformation_mode: coord,
            cubic_coeff_a: -0.75,
            exclude_outside: false,
            extrapolation_value: 0.0,
            keep_aspect_ratio_policy: AspectRatioPolicy::Stretch,
            mode,
            nearest_mode: NearestMode::Floor,
        });
        check(node(op, &[("x", &x), ("roi", &empty), ("s", &scales)], &[("y", DType::F32)]), &[&x, &empty, &scales], 4);
    }
    let arg = Op::Reduce(R::ArgMax { axis: -1, keepdims: 0, select_last_index: 0 });
    check(node(arg, &[("x", &x)], &[("y", DType::I64)]), &[&x], 1);
    let axis = ints(&[], &[2]);
    for (exclusive, reverse) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        let op = Op::Reduce(R::CumSum { exclusive, reverse });
        check(node(op, &[("x", &x), ("a", &axis)], &[("y", DType::F32)]), &[&x, &axis], 3);
    }
}
