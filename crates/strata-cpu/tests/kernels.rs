//! Differential tests of the CPU backend against the reference backend:
//! small one-node models over the geometry and broadcasting corners
//! (groups, pads, strides, dilations, auto_pad, ceil_mode, batch
//! broadcasting, negative steps and indices). Float outputs must agree
//! within a bound that grows with the reduction length; data movement must
//! be exact; bad inputs must fail with an error naming the node.

use std::sync::Arc;
use strata_ir::ops::tensor::{BlockOrder, PadMode};

use strata_cpu::{CpuBackend, CpuTensor};
use strata_ir::ops::recurrent::Direction;
use strata_ir::ops::{ElementwiseOp as E, NnOp as N, ReduceOp as R, TensorOp as T};
use strata_ir::resample::{AspectRatioPolicy, Coord, NearestMode, ResizeMode};
use strata_ir::window::AutoPad;
use strata_ir::{DType, Model, NodeId, Op, TensorData};
use strata_test_support::harness::{Floats, Target, Tol, check_against_reference, reason};
use strata_test_support::ir::Builder;

#[path = "kernels/attention.rs"]
mod attention;
#[path = "kernels/dtypes.rs"]
mod dtypes;
#[path = "kernels/quant.rs"]
mod quant;

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

fn ints(shape: &[usize], v: &[i64]) -> TensorData {
    TensorData::from_i64(shape.to_vec(), v).expect("valid")
}

/// One node over graph inputs `ins` and weights; outputs typed `outs`.
fn model(
    op: Op,
    ins: &[(&str, &TensorData)],
    weights: &[(&str, TensorData)],
    node_ins: &[&str],
    outs: &[(&str, DType)],
) -> Model {
    Builder::one_node(op, ins, weights, node_ins, outs, None).build()
}

/// The CPU backend under test (with its thread count), run once.
struct Cpu(CpuBackend);

impl Target for Cpu {
    const NAME: &'static str = "cpu";
    fn supports(&self, m: &Model, node: NodeId) -> Result<(), String> {
        reason(self.0.supports(m, m.main, node))
    }
    fn runs(&self, m: Model, inputs: &[TensorData]) -> Vec<Vec<TensorData>> {
        let compiled = self.0.compile(Arc::new(m)).expect("compiles");
        let ins: Vec<CpuTensor> = inputs.iter().map(|t| CpuTensor::from_host(t).expect("uploads")).collect();
        let refs: Vec<&CpuTensor> = ins.iter().collect();
        vec![compiled.run(&refs).expect("runs").iter().map(|t| t.to_host().expect("downloads")).collect()]
    }
}

/// Run on the CPU backend (with `threads`) and on the reference; float32
/// outputs must agree to `2e-7 · k + 1e-6 · |ref|` where `k` is the
/// reduction length, everything else bit for bit.
fn check_with(m: Model, inputs: &[TensorData], k: usize, threads: usize) -> Vec<TensorData> {
    let tol = Tol { atol: 2e-7 * k.max(1) as f64, rtol: 1e-6 };
    check_against_reference(&Cpu(CpuBackend::new(threads)), m, inputs, tol, Floats::F32Only)
}

fn check(m: Model, inputs: &[TensorData], k: usize) {
    check_with(m, inputs, k, 2);
}

fn conv(
    auto_pad: &str,
    group: i64,
    pads: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
    dilations: Option<Vec<i64>>,
) -> Op {
    Op::Nn(N::Conv {
        auto_pad: AutoPad::from_name(auto_pad).expect("auto_pad"),
        dilations,
        group,
        kernel_shape: None,
        pads,
        strides,
    })
}

#[test]
fn conv_geometries_match_the_reference() {
    // (input shape, weight shape, group, auto_pad, pads, strides, dilations)
    type Case = (Vec<usize>, Vec<usize>, i64, &'static str, Option<Vec<i64>>, Option<Vec<i64>>, Option<Vec<i64>>);
    let cases: Vec<Case> = vec![
        (vec![1, 3, 9, 9], vec![8, 3, 3, 3], 1, "NOTSET", Some(vec![1, 1, 1, 1]), None, None),
        (vec![2, 4, 10, 7], vec![6, 2, 3, 2], 2, "NOTSET", Some(vec![0, 1, 2, 0]), Some(vec![2, 1]), Some(vec![1, 2])),
        (vec![1, 6, 11, 11], vec![6, 1, 3, 3], 6, "SAME_UPPER", None, Some(vec![2, 2]), None),
        (vec![1, 6, 8, 8], vec![6, 1, 5, 5], 6, "SAME_LOWER", None, None, Some(vec![2, 2])),
        (vec![1, 5, 6, 6], vec![7, 5, 1, 1], 1, "NOTSET", None, None, None),
        (vec![1, 5, 6, 6], vec![7, 5, 1, 1], 1, "NOTSET", None, Some(vec![2, 2]), None),
        (vec![1, 3, 8, 8], vec![4, 3, 4, 4], 1, "VALID", None, Some(vec![3, 3]), None),
        (vec![2, 4, 17], vec![5, 4, 3], 1, "NOTSET", Some(vec![2, 1]), Some(vec![2]), None),
        (vec![1, 2, 5, 6, 4], vec![3, 2, 2, 3, 2], 1, "NOTSET", Some(vec![1, 0, 1, 0, 1, 0]), None, None),
        // Depthwise, channel-blocked (13 channels: one partial block of 8),
        // with strides and dilations, in 1-D, 2-D and 3-D...
        (vec![2, 13, 7, 9], vec![13, 1, 3, 3], 13, "NOTSET", Some(vec![1, 1, 1, 1]), None, None),
        (
            vec![1, 13, 9, 10],
            vec![13, 1, 5, 3],
            13,
            "NOTSET",
            Some(vec![2, 0, 1, 2]),
            Some(vec![2, 3]),
            Some(vec![1, 2]),
        ),
        (vec![1, 9, 20], vec![9, 1, 5], 9, "SAME_UPPER", None, None, None),
        (vec![1, 10, 3, 5, 6], vec![10, 1, 2, 3, 3], 10, "NOTSET", Some(vec![1, 1, 1, 0, 1, 1]), None, None),
        // ...with runs of 8 and of 4 columns that every tap reaches, and
        // stride and dilation along the width...
        (vec![1, 11, 6, 30], vec![11, 1, 5, 5], 11, "NOTSET", Some(vec![2, 2, 2, 2]), None, None),
        (vec![1, 9, 5, 41], vec![9, 1, 3, 3], 9, "NOTSET", Some(vec![1, 1, 1, 1]), Some(vec![1, 2]), Some(vec![1, 2])),
        // ...and row by row (long rows).
        (vec![1, 3, 4, 70], vec![3, 1, 3, 3], 3, "SAME_LOWER", None, None, Some(vec![1, 2])),
        // A k × 1 kernel over H × 1 (the unit axis moves out of the way), and 1 × k over 1 × W.
        (vec![2, 4, 12, 1], vec![6, 4, 5, 1], 1, "NOTSET", Some(vec![2, 0, 1, 0]), Some(vec![2, 1]), None),
        (vec![1, 9, 11, 1], vec![9, 1, 3, 1], 9, "SAME_UPPER", None, None, None),
        (vec![1, 3, 1, 10], vec![2, 3, 1, 3], 1, "NOTSET", None, None, Some(vec![1, 2])),
        // Many column segments and row blocks of the GEMM, and an edge panel.
        (vec![1, 96, 9, 70], vec![100, 96, 3, 3], 1, "NOTSET", Some(vec![1, 1, 1, 1]), None, None),
    ];
    for (i, (xs, ws, g, ap, pads, strides, dil)) in cases.into_iter().enumerate() {
        let x = data(&xs, i as u32, -1.0, 1.0);
        let w = data(&ws, 100 + i as u32, -1.0, 1.0);
        let b = data(&[ws[0]], 200 + i as u32, -1.0, 1.0);
        let k: usize = ws[1..].iter().product();
        let op = conv(ap, g, pads, strides, dil);
        // Weights constant (packed at compile time) and with a bias...
        let m = model(
            op.clone(),
            &[("x", &x)],
            &[("w", w.clone()), ("b", b.clone())],
            &["x", "w", "b"],
            &[("y", DType::F32)],
        );
        check(m, std::slice::from_ref(&x), k);
        // ...and weights as a run-time input, without a bias.
        let m = model(op, &[("x", &x), ("w", &w)], &[], &["x", "w"], &[("y", DType::F32)]);
        check(m, &[x, w], k);
    }
}

#[test]
fn pooling_matches_the_reference() {
    let x = data(&[2, 3, 9, 8], 7, -2.0, 2.0);
    for (ceil, cip, pads, strides) in [
        (0, 0, Some(vec![1, 1, 1, 1]), Some(vec![2, 2])),
        (1, 0, Some(vec![0, 0, 1, 1]), Some(vec![2, 3])),
        (1, 1, Some(vec![1, 0, 1, 0]), Some(vec![2, 2])),
        (0, 1, None, None),
    ] {
        let avg = Op::Nn(N::AveragePool {
            auto_pad: AutoPad::NotSet,
            ceil_mode: ceil != 0,
            count_include_pad: cip != 0,
            dilations: None,
            kernel_shape: vec![3, 3],
            pads: pads.clone(),
            strides: strides.clone(),
        });
        check(model(avg, &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), 9);
        let max = Op::Nn(N::MaxPool {
            auto_pad: AutoPad::NotSet,
            ceil_mode: ceil != 0,
            dilations: Some(vec![1, 2]),
            kernel_shape: vec![3, 2],
            pads,
            storage_order: 0,
            strides,
        });
        check(model(max, &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), 1);
    }
    for op in [N::GlobalAveragePool {}, N::GlobalMaxPool {}] {
        check(model(Op::Nn(op), &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), 72);
    }
}

#[test]
fn matrix_products_match_the_reference() {
    for (a, b) in [
        (vec![2, 1, 5, 7], vec![3, 7, 4]),
        (vec![7], vec![2, 7, 3]),
        (vec![3, 5, 7], vec![7]),
        (vec![70, 130], vec![130, 90]),
    ] {
        let (x, y) = (data(&a, 1, -1.0, 1.0), data(&b, 2, -1.0, 1.0));
        let k = *a.last().unwrap_or(&1);
        let m = model(Op::Nn(N::MatMul {}), &[("a", &x), ("b", &y)], &[], &["a", "b"], &[("y", DType::F32)]);
        check(m, &[x.clone(), y.clone()], k);
        if b.len() == 2 {
            let m = model(Op::Nn(N::MatMul {}), &[("a", &x)], &[("b", y)], &["a", "b"], &[("y", DType::F32)]);
            check(m, &[x], k);
        }
    }
    let (a, b, c) = (data(&[6, 4], 3, -1.0, 1.0), data(&[5, 6], 4, -1.0, 1.0), data(&[5], 5, -1.0, 1.0));
    let gemm = Op::Nn(N::Gemm { alpha: 0.5, beta: 2.0, transA: 1, transB: 1, broadcast: None });
    check(model(gemm, &[("a", &a)], &[("b", b), ("c", c)], &["a", "b", "c"], &[("y", DType::F32)]), &[a], 6);
}

#[test]
fn normalisation_and_softmax_match_the_reference() {
    let x = data(&[2, 3, 4, 5], 9, -3.0, 3.0);
    let p = |s| data(&[3], s, 0.5, 1.5);
    let bn = Op::Nn(N::BatchNormalization { epsilon: 1e-5, momentum: 0.9, training_mode: 0, spatial: None });
    let m = model(
        bn,
        &[("x", &x)],
        &[("s", p(1)), ("b", p(2)), ("m", p(3)), ("v", p(4))],
        &["x", "s", "b", "m", "v"],
        &[("y", DType::F32)],
    );
    check(m, std::slice::from_ref(&x), 4);
    let ln = Op::Nn(N::LayerNormalization { axis: -2, epsilon: 1e-5, stash_type: 1 });
    let m = model(
        ln,
        &[("x", &x)],
        &[("s", data(&[4, 5], 5, 0.5, 1.5)), ("b", data(&[5], 6, -1.0, 1.0))],
        &["x", "s", "b"],
        &[("y", DType::F32)],
    );
    check(m, std::slice::from_ref(&x), 40);
    for axis in [-1, 1, 0] {
        for op in [R::Softmax { axis }, R::LogSoftmax { axis }] {
            check(model(Op::Reduce(op), &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), 8);
        }
    }
    for keepdims in [0, 1] {
        let axes = Some(vec![1, -1]);
        for op in [
            R::ReduceMean { axes: axes.clone(), keepdims, noop_with_empty_axes: 0 },
            R::ReduceSum { axes: axes.clone(), keepdims, noop_with_empty_axes: 0 },
            R::ReduceMax { axes: axes.clone(), keepdims, noop_with_empty_axes: 0 },
        ] {
            check(model(Op::Reduce(op), &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), 15);
        }
    }
}

#[test]
fn data_movement_is_exact() {
    let x = data(&[2, 3, 4], 11, -5.0, 5.0);
    let one = |op: T, extra: Vec<(&str, TensorData)>, names: &[&str]| {
        check(model(Op::Tensor(op), &[("x", &x)], &extra, names, &[("y", DType::F32)]), std::slice::from_ref(&x), 0);
    };
    one(T::Transpose { perm: Some(vec![2, 0, 1]) }, vec![], &["x"]);
    one(
        T::Slice { starts: None, ends: None, axes: None },
        vec![
            ("s", ints(&[2], &[-1, 3])),
            ("e", ints(&[2], &[-100, 0])),
            ("a", ints(&[2], &[2, 1])),
            ("st", ints(&[2], &[-2, -1])),
        ],
        &["x", "s", "e", "a", "st"],
    );
    one(T::Gather { axis: 1 }, vec![("i", ints(&[2, 2], &[2, -3, 0, 1]))], &["x", "i"]);
    one(T::Expand {}, vec![("s", ints(&[4], &[3, 2, 1, 4]))], &["x", "s"]);
    one(T::Tile {}, vec![("r", ints(&[3], &[2, 1, 3]))], &["x", "r"]);
    for mode in PadMode::ALL.iter().copied() {
        one(T::Pad { mode, pads: None, value: None }, vec![("p", ints(&[6], &[0, 2, 1, 1, -1, 2]))], &["x", "p"]);
    }
    one(T::Reshape { allowzero: 0, shape: None }, vec![("s", ints(&[3], &[0, -1, 2]))], &["x", "s"]);
    let concat = model(
        Op::Tensor(T::Concat { axis: -2 }),
        &[("x", &x)],
        &[("w", data(&[2, 2, 4], 3, 0.0, 1.0))],
        &["x", "w", "x"],
        &[("y", DType::F32)],
    );
    check(concat, std::slice::from_ref(&x), 0);
    let split = Op::Tensor(T::Split { axis: 2, num_outputs: None, split: None });
    check(
        model(split, &[("x", &x)], &[("s", ints(&[2], &[1, 3]))], &["x", "s"], &[("a", DType::F32), ("b", DType::F32)]),
        std::slice::from_ref(&x),
        0,
    );
    let sh = model(Op::Tensor(T::Shape { start: -2, end: None }), &[("x", &x)], &[], &["x"], &[("y", DType::I64)]);
    check(sh, std::slice::from_ref(&x), 0);
    let (i, j) = (ints(&[2, 3], &[1, -2, 3, 4, 5, 6]), ints(&[3], &[2, 2, 0]));
    for op in [E::Add {}, E::Mul {}, E::Sub {}] {
        check(
            model(Op::Elementwise(op), &[("i", &i), ("j", &j)], &[], &["i", "j"], &[("y", DType::I64)]),
            &[i.clone(), j.clone()],
            0,
        );
    }
    check(
        model(Op::Elementwise(E::Equal {}), &[("i", &i), ("j", &j)], &[], &["i", "j"], &[("y", DType::Bool)]),
        &[i.clone(), j.clone()],
        0,
    );
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let x = data(&[1, 16, 40, 40], 21, -1.0, 1.0);
    let w = data(&[32, 16, 3, 3], 22, -1.0, 1.0);
    let op = conv("SAME_UPPER", 1, None, None, None);
    let mk = || model(op.clone(), &[("x", &x)], &[("w", w.clone())], &["x", "w"], &[("y", DType::F32)]);
    let one = check_with(mk(), std::slice::from_ref(&x), 144, 1);
    for threads in [2, 3, 8] {
        assert_eq!(check_with(mk(), std::slice::from_ref(&x), 144, threads), one, "{threads} threads");
    }
    // Depthwise, both channel-blocked (short rows) and row by row.
    for shape in [[1, 21, 12, 16], [1, 5, 6, 80]] {
        let x = data(&shape, 23, -1.0, 1.0);
        let w = data(&[shape[1], 1, 3, 3], 24, -1.0, 1.0);
        let b = data(&[shape[1]], 25, -1.0, 1.0);
        let op = conv("SAME_UPPER", shape[1] as i64, None, None, None);
        let mk = || {
            model(
                op.clone(),
                &[("x", &x)],
                &[("w", w.clone()), ("b", b.clone())],
                &["x", "w", "b"],
                &[("y", DType::F32)],
            )
        };
        let one = check_with(mk(), std::slice::from_ref(&x), 9, 1);
        for threads in [2, 3] {
            assert_eq!(check_with(mk(), std::slice::from_ref(&x), 9, threads), one, "{shape:?} on {threads} threads");
        }
    }
}

#[test]
fn bad_inputs_fail_with_the_node_named() {
    let x = data(&[2, 3], 1, 0.0, 1.0);
    let run = |m: Model, inputs: &[TensorData]| -> String {
        let b = CpuBackend::new(2).with_max_elements(1 << 20);
        let compiled = b.compile(Arc::new(m)).expect("compiles");
        let ins: Vec<CpuTensor> = inputs.iter().map(|t| CpuTensor::from_host(t).expect("uploads")).collect();
        let refs: Vec<&CpuTensor> = ins.iter().collect();
        compiled.run(&refs).expect_err("fails").to_string()
    };
    let idx = ints(&[1], &[7]);
    let m = model(Op::Tensor(T::Gather { axis: 1 }), &[("x", &x), ("i", &idx)], &[], &["x", "i"], &[("y", DType::F32)]);
    let e = run(m, &[x.clone(), idx]);
    assert!(e.contains("'n0'") && e.contains("out of range"), "{e}");
    let huge = ints(&[4], &[1 << 20, 1 << 20, 1, 3]);
    let m = model(Op::Tensor(T::Expand {}), &[("x", &x), ("s", &huge)], &[], &["x", "s"], &[("y", DType::F32)]);
    let e = run(m, &[x.clone(), huge]);
    assert!(e.contains("'n0'") && e.contains("limit"), "{e}");
    let w = data(&[4, 5, 3, 3], 2, 0.0, 1.0);
    let x4 = data(&[1, 3, 8, 8], 3, 0.0, 1.0);
    let m =
        model(conv("NOTSET", 1, None, None, None), &[("x", &x4), ("w", &w)], &[], &["x", "w"], &[("y", DType::F32)]);
    let e = run(m, &[x4, w]);
    assert!(e.contains("'n0'") && e.contains("channels"), "{e}");
}

#[test]
fn range_matches_the_reference_and_bad_ranges_fail_with_the_node_named() {
    let scalar = |t: TensorData| t.reshaped(vec![]).expect("scalar");
    let range = |a: &TensorData, b: &TensorData, c: &TensorData, dt: DType| {
        model(Op::Tensor(T::Range {}), &[("s", a), ("l", b), ("d", c)], &[], &["s", "l", "d"], &[("y", dt)])
    };
    let f = |v: f32| scalar(TensorData::from_f32(vec![1], &[v]).expect("valid"));
    for (s, l, d) in [(1.0, 7.5, 0.5), (10.0, 1.0, -3.0), (1.0, 1.0, 1.0), (0.1, 0.35, 0.05), (-2.0, 3.0, 0.3)] {
        let (a, b, c) = (f(s), f(l), f(d));
        check(range(&a, &b, &c, DType::F32), &[a.clone(), b.clone(), c.clone()], 1);
    }
    let i = |v: i64| scalar(ints(&[1], &[v]));
    for (s, l, d) in [(0, 10, 3), (5, -7, -2), (3, 3, 1), (-4, 9, 13)] {
        let (a, b, c) = (i(s), i(l), i(d));
        check(range(&a, &b, &c, DType::I64), &[a.clone(), b.clone(), c.clone()], 1);
    }
    // A zero step and a range past the element limit fail with the node named.
    let run = |m: Model, inputs: &[TensorData]| -> String {
        let compiled = CpuBackend::new(1).with_max_elements(1 << 20).compile(Arc::new(m)).expect("compiles");
        let ins: Vec<CpuTensor> = inputs.iter().map(|t| CpuTensor::from_host(t).expect("uploads")).collect();
        let refs: Vec<&CpuTensor> = ins.iter().collect();
        compiled.run(&refs).expect_err("fails").to_string()
    };
    let (a, b, c) = (i(0), i(10), i(0));
    let e = run(range(&a, &b, &c, DType::I64), &[a, b, c]);
    assert!(e.contains("'n0'") && e.contains("delta"), "{e}");
    let (a, b, c) = (i(0), i(1 << 40), i(1));
    let e = run(range(&a, &b, &c, DType::I64), &[a, b, c]);
    assert!(e.contains("'n0'") && e.contains("limit"), "{e}");
}

#[test]
fn lrn_and_inference_dropout_match_the_reference() {
    let x = data(&[2, 7, 3, 5], 61, -2.0, 2.0);
    for size in [1, 2, 3, 5, 9] {
        let op = Op::Nn(N::LRN { alpha: 2e-3, beta: 0.75, bias: 1.5, size });
        check(model(op, &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), size as usize);
    }
    // Dropout with its mask: the input and all-true, with training_mode
    // absent or a constant false; with it true the node stays unsupported.
    let ratio = TensorData::from_f32(vec![], &[0.25]).expect("valid");
    let dropout = |training: Option<bool>| {
        let mut weights = vec![("r", ratio.clone())];
        let mut ins = vec!["x", "r"];
        if let Some(t) = training {
            weights.push(("t", TensorData::from_i128(DType::Bool, vec![], &[i128::from(t)]).expect("valid")));
            ins.push("t");
        }
        let op = Op::Nn(N::Dropout { seed: None, ratio: None, is_test: None });
        model(op, &[("x", &x)], &weights, &ins, &[("y", DType::F32), ("mask", DType::Bool)])
    };
    for training in [None, Some(false)] {
        check(dropout(training), std::slice::from_ref(&x), 1);
    }
    let m = dropout(Some(true));
    let why = CpuBackend::new(1).supports(&m, m.main, NodeId(0)).expect_err("training mode");
    assert!(why.contains("training"), "{why}");
}

#[test]
fn cumulative_sums_and_products_match_the_reference() {
    let x = data(&[3, 4, 5], 71, -1.5, 1.5);
    let xi = ints(&[2, 6], &[3, -1, 4, 1, -5, 9, 2, -6, 5, 3, -5, 8]);
    for (exclusive, reverse) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        for product in [false, true] {
            let op = if product { R::CumProd { exclusive, reverse } } else { R::CumSum { exclusive, reverse } };
            for axis in [0i64, 1, -1] {
                let a = ints(&[], &[axis]);
                let m = model(Op::Reduce(op.clone()), &[("x", &x), ("a", &a)], &[], &["x", "a"], &[("y", DType::F32)]);
                check(m, &[x.clone(), a.clone()], 5);
                let m = model(Op::Reduce(op.clone()), &[("x", &xi), ("a", &a)], &[], &["x", "a"], &[("y", DType::I64)]);
                check(m, &[xi.clone(), a], 1);
            }
        }
    }
}

#[test]
fn conv_transpose_matches_the_reference() {
    // (input, weight, group, strides, pads, output_padding, dilations)
    type Case = (Vec<usize>, Vec<usize>, i64, Vec<i64>, Option<Vec<i64>>, Option<Vec<i64>>, Option<Vec<i64>>);
    let cases: Vec<Case> = vec![
        (vec![1, 4, 5, 5], vec![4, 3, 3, 3], 1, vec![2, 2], Some(vec![1, 1, 1, 1]), Some(vec![1, 1]), None),
        (vec![2, 4, 4, 6], vec![4, 2, 2, 2], 2, vec![2, 2], None, None, None),
        (vec![1, 3, 7], vec![3, 2, 4], 1, vec![3], Some(vec![1, 2]), None, Some(vec![2])),
    ];
    for (i, (xs, ws, g, strides, pads, out_pad, dil)) in cases.into_iter().enumerate() {
        let x = data(&xs, 30 + i as u32, -1.0, 1.0);
        let w = data(&ws, 40 + i as u32, -1.0, 1.0);
        let b = data(&[ws[1] * g as usize], 50 + i as u32, -1.0, 1.0);
        let op = Op::Nn(N::ConvTranspose {
            auto_pad: AutoPad::NotSet,
            dilations: dil,
            group: g,
            kernel_shape: None,
            output_padding: out_pad,
            output_shape: None,
            pads,
            strides: Some(strides),
        });
        let k = ws[0] * ws[2..].iter().product::<usize>();
        let m = model(op.clone(), &[("x", &x)], &[("w", w.clone()), ("b", b)], &["x", "w", "b"], &[("y", DType::F32)]);
        check(m, std::slice::from_ref(&x), k);
        let m = model(op, &[("x", &x), ("w", &w)], &[], &["x", "w"], &[("y", DType::F32)]);
        check(m, &[x, w], k);
    }
}

#[test]
fn resize_matches_the_reference() {
    let x = data(&[1, 2, 5, 7], 60, -1.0, 1.0);
    let scales = TensorData::from_f32(vec![4], &[1.0, 1.0, 2.0, 0.6]).expect("valid");
    let sizes = ints(&[2], &[9, 4]);
    for (mode, coord) in [
        ("nearest", "half_pixel"),
        ("nearest", "asymmetric"),
        ("linear", "half_pixel"),
        ("linear", "align_corners"),
        ("linear", "pytorch_half_pixel"),
        ("cubic", "half_pixel"),
    ] {
        let op = |axes: Option<Vec<i64>>, antialias: i64| {
            Op::Nn(N::Resize {
                antialias: antialias != 0,
                axes,
                coordinate_transformation_mode: Coord::from_name(coord).expect("mode"),
                cubic_coeff_a: -0.75,
                exclude_outside: false,
                extrapolation_value: 0.0,
                keep_aspect_ratio_policy: AspectRatioPolicy::Stretch,
                mode: ResizeMode::from_name(mode).expect("mode"),
                nearest_mode: NearestMode::RoundPreferFloor,
            })
        };
        let m = model(op(None, 0), &[("x", &x)], &[("s", scales.clone())], &["x", "", "s"], &[("y", DType::F32)]);
        check(m, std::slice::from_ref(&x), 16);
        let m = model(
            op(Some(vec![-2, -1]), 1),
            &[("x", &x)],
            &[("z", sizes.clone())],
            &["x", "", "", "z"],
            &[("y", DType::F32)],
        );
        check(m, std::slice::from_ref(&x), 16);
    }
}

#[test]
fn lstm_matches_the_reference() {
    let (seq, batch, input, hidden) = (5, 3, 4, 6);
    for (direction, layout, input_forget) in
        [("forward", 0, 0), ("reverse", 1, 0), ("bidirectional", 0, 1), ("bidirectional", 1, 0)]
    {
        let nd = if direction == "bidirectional" { 2 } else { 1 };
        let xs = if layout == 0 { vec![seq, batch, input] } else { vec![batch, seq, input] };
        let st = if layout == 0 { vec![nd, batch, hidden] } else { vec![batch, nd, hidden] };
        let x = data(&xs, 70, -1.0, 1.0);
        let weights = vec![
            ("w", data(&[nd, 4 * hidden, input], 71, -0.5, 0.5)),
            ("r", data(&[nd, 4 * hidden, hidden], 72, -0.5, 0.5)),
            ("b", data(&[nd, 8 * hidden], 73, -0.5, 0.5)),
            ("h0", data(&st, 74, -1.0, 1.0)),
            ("c0", data(&st, 75, -1.0, 1.0)),
            ("p", data(&[nd, 3 * hidden], 76, -0.5, 0.5)),
        ];
        let op = Op::Nn(N::LSTM {
            activation_alpha: None,
            activation_beta: None,
            activations: None,
            clip: None,
            direction: Direction::from_name(direction).expect("direction"),
            hidden_size: Some(hidden as i64),
            layout,
            input_forget: input_forget != 0,
        });
        let m = model(
            op,
            &[("x", &x)],
            &weights,
            &["x", "w", "r", "b", "", "h0", "c0", "p"],
            &[("y", DType::F32), ("yh", DType::F32), ("yc", DType::F32)],
        );
        check(m, std::slice::from_ref(&x), 64);
    }
}

#[test]
fn more_reductions_normalisations_and_indexing_match_the_reference() {
    let x = data(&[2, 3, 4], 80, -2.0, 2.0);
    for op in [
        R::ReduceProd { axes: Some(vec![1]), keepdims: 1, noop_with_empty_axes: 0 },
        R::ReduceL1 { axes: Some(vec![0, 2]), keepdims: 0, noop_with_empty_axes: 0 },
        R::ReduceL2 { axes: None, keepdims: 1, noop_with_empty_axes: 0 },
    ] {
        check(model(Op::Reduce(op), &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), 24);
    }
    for (axis, last) in [(1, 0), (-1, 1), (0, 0)] {
        for op in [
            R::ArgMax { axis, keepdims: 1, select_last_index: last },
            R::ArgMin { axis, keepdims: 0, select_last_index: last },
        ] {
            check(model(Op::Reduce(op), &[("x", &x)], &[], &["x"], &[("y", DType::I64)]), std::slice::from_ref(&x), 0);
        }
    }
    let s = data(&[4], 81, 0.5, 1.5);
    let ln = Op::Nn(N::LayerNormalization { axis: -1, epsilon: 1e-5, stash_type: 1 });
    let outs = [("y", DType::F32), ("mean", DType::F32), ("inv", DType::F32)];
    check(model(ln, &[("x", &x)], &[("s", s.clone())], &["x", "s"], &outs), std::slice::from_ref(&x), 8);
    let rms = Op::Nn(N::RMSNormalization { axis: 1, epsilon: 1e-5, stash_type: 1 });
    check(
        model(rms, &[("x", &x)], &[("s", data(&[3, 4], 82, 0.5, 1.5))], &["x", "s"], &[("y", DType::F32)]),
        std::slice::from_ref(&x),
        24,
    );
    for (upper, k) in [(1, 0), (0, -1), (1, 2)] {
        let m = model(
            Op::Tensor(T::Trilu { upper }),
            &[("x", &x)],
            &[("k", ints(&[], &[k]))],
            &["x", "k"],
            &[("y", DType::F32)],
        );
        check(m, std::slice::from_ref(&x), 0);
    }
    let idx = ints(&[2, 2, 4], &[0, 1, 2, -1, 2, 0, 0, 1, 1, 1, -3, 0, 2, 2, 1, 0]);
    let m = model(
        Op::Tensor(T::GatherElements { axis: 1 }),
        &[("x", &x), ("i", &idx)],
        &[],
        &["x", "i"],
        &[("y", DType::F32)],
    );
    check(m, &[x.clone(), idx], 0);
}

#[test]
fn group_norms_topk_and_block_moves_match_the_reference() {
    let x = data(&[2, 6, 3, 4], 90, -2.0, 2.0);
    let inst = Op::Nn(N::InstanceNormalization { epsilon: 1e-5 });
    let p = |seed| data(&[6], seed, 0.5, 1.5);
    check(
        model(inst, &[("x", &x)], &[("s", p(91)), ("b", p(92))], &["x", "s", "b"], &[("y", DType::F32)]),
        std::slice::from_ref(&x),
        12,
    );
    let gn = Op::Nn(N::GroupNormalization { epsilon: 1e-5, num_groups: 3, stash_type: 1 });
    check(
        model(gn, &[("x", &x)], &[("s", p(93)), ("b", p(94))], &["x", "s", "b"], &[("y", DType::F32)]),
        std::slice::from_ref(&x),
        24,
    );
    for (axis, largest) in [(-1, 1), (1, 0)] {
        let op = Op::Reduce(R::TopK { axis, largest, sorted: 1, k: None });
        let m =
            model(op, &[("x", &x)], &[("k", ints(&[1], &[3]))], &["x", "k"], &[("v", DType::F32), ("i", DType::I64)]);
        check(m, std::slice::from_ref(&x), 0);
    }
    let y = data(&[1, 8, 2, 3], 95, -1.0, 1.0);
    for mode in BlockOrder::ALL.iter().copied() {
        let op = Op::Tensor(T::DepthToSpace { blocksize: 2, mode });
        check(model(op, &[("x", &y)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&y), 0);
    }
    let z = data(&[1, 2, 4, 6], 96, -1.0, 1.0);
    for mode in BlockOrder::ALL.iter().copied() {
        let op = Op::Tensor(T::SpaceToDepth { blocksize: 2, mode });
        check(model(op, &[("x", &z)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&z), 0);
    }
}

/// A Conv whose output feeds HardSwish written out (`y * clip(y + 3, 0, 6) / 6`,
/// a diamond), a per-channel affine and a residual Add of the graph input;
/// `tap` also makes the Clip's result a graph output.
fn conv_block(tap: bool) -> (Model, TensorData) {
    let x = data(&[2, 4, 6, 7], 31, -4.0, 4.0);
    let mut b = Builder::new();
    b.input_exact("x", &x)
        .weight("w", data(&[4, 4, 3, 3], 32, -0.5, 0.5))
        .weight("bias", data(&[4], 33, -1.0, 1.0))
        .weight("three", TensorData::from_f32(vec![], &[3.0]).expect("scalar"))
        .weight("zero", TensorData::from_f32(vec![], &[0.0]).expect("scalar"))
        .weight("six", TensorData::from_f32(vec![], &[6.0]).expect("scalar"))
        .weight("scale", data(&[4, 1, 1], 34, 0.5, 1.5));
    let conv = conv("NOTSET", 1, Some(vec![1, 1, 1, 1]), None, None);
    b.node_named("conv", conv, &["x", "w", "bias"], &["y"])
        .node_named("add3", Op::Elementwise(E::Add {}), &["y", "three"], &["a"])
        .node_named("clip", Op::Elementwise(E::Clip { min: None, max: None }), &["a", "zero", "six"], &["c"])
        .node_named("mul", Op::Elementwise(E::Mul {}), &["y", "c"], &["m"])
        .node_named("div", Op::Elementwise(E::Div {}), &["m", "six"], &["d"])
        .node_named("scale", Op::Elementwise(E::Mul {}), &["d", "scale"], &["e"])
        .node_named("residual", Op::Elementwise(E::Add {}), &["e", "x"], &["out"])
        .output("out");
    if tap {
        b.output("c");
    }
    (b.build(), x)
}

#[test]
fn fused_groups_give_the_bits_of_the_unfused_nodes() {
    let run = |m: Model, x: &TensorData, optimize: bool, threads: usize| {
        let backend = CpuBackend::new(threads).with_optimize(optimize);
        let compiled = backend.compile(Arc::new(m)).expect("compiles");
        let ins = [CpuTensor::from_host(x).expect("uploads")];
        let outs: Vec<TensorData> =
            compiled.run(&[&ins[0]]).expect("runs").iter().map(|t| t.to_host().expect("downloads")).collect();
        let steps = compiled.step_names();
        (outs, steps)
    };
    for tap in [false, true] {
        let (m, x) = conv_block(tap);
        let (_, plain_steps) = run(m.clone(), &x, false, 1);
        assert_eq!(plain_steps.len(), 7);
        // Optimising first rewrites the graph (the decomposed hard-swish
        // becomes one node, changing rounding only); fusing then gives the
        // bits of the rewritten nodes run one by one.
        let mut rewritten = m.clone();
        let recognised = strata_ir::passes::recognize_hard_activations(&mut rewritten);
        assert_eq!(recognised, usize::from(!tap), "tap {tap}");
        let (plain, _) = run(rewritten, &x, false, 1);
        let (fused, steps) = run(m.clone(), &x, true, 1);
        assert_eq!(fused, plain, "tap {tap}");
        if tap {
            // `c` is read outside: conv..clip and mul..residual cannot hide it.
            assert!(steps.len() > 1 && steps.iter().any(|s| s.ends_with("clip")), "{steps:?}");
        } else {
            assert_eq!(steps, ["conv+div+scale+residual"]);
        }
        for threads in [2, 3] {
            assert_eq!(run(m.clone(), &x, true, threads).0, plain, "{threads} threads");
        }
        check(m, &[x], 36);
    }
}

#[test]
fn activations_finished_in_the_convolution_give_the_bits_of_the_unfused_nodes() {
    // (input spatial, group, strides): the GEMM, direct, depthwise and
    // few-position paths each finish the activation themselves.
    let cases: [([usize; 2], i64, [i64; 2]); 5] =
        [([6, 40], 1, [1, 1]), ([9, 9], 1, [2, 2]), ([6, 40], 4, [1, 1]), ([5, 7], 4, [1, 1]), ([2, 2], 1, [1, 1])];
    for (sp, group, strides) in cases {
        for act in ["relu", "clip"] {
            let mut xv = data(&[1, 4, sp[0], sp[1]], 41, -3.0, 3.0);
            // A NaN input: Relu and Clip must pass the NaN windows through.
            let mut v: Vec<f32> = xv.to_f64_vec().iter().map(|&v| v as f32).collect();
            v[5] = f32::NAN;
            xv = TensorData::from_f32(vec![1, 4, sp[0], sp[1]], &v).expect("tensor");
            let mut b = Builder::new();
            b.input_exact("x", &xv)
                .weight("w", data(&[8, 4 / group as usize, 3, 3], 42, -0.5, 0.5))
                .weight("bias", data(&[8], 43, -1.0, 1.0))
                .weight("lo", TensorData::from_f32(vec![], &[-0.25]).expect("scalar"))
                .weight("hi", TensorData::from_f32(vec![], &[1.5]).expect("scalar"));
            let group = if group == 4 { 4 } else { 1 };
            b.node_named(
                "conv",
                conv("NOTSET", group, Some(vec![1, 1, 1, 1]), Some(strides.to_vec()), None),
                &["x", "w", "bias"],
                &["y"],
            );
            if act == "relu" {
                b.node_named("act", Op::Elementwise(E::Relu {}), &["y"], &["out"]);
            } else {
                b.node_named("act", Op::Elementwise(E::Clip { min: None, max: None }), &["y", "lo", "hi"], &["out"]);
            }
            let m = b.output("out").build();
            let run = |optimize: bool, threads: usize| {
                let compiled =
                    CpuBackend::new(threads).with_optimize(optimize).compile(Arc::new(m.clone())).expect("compiles");
                let ins = [CpuTensor::from_host(&xv).expect("uploads")];
                let out = compiled.run(&[&ins[0]]).expect("runs")[0].to_host().expect("downloads");
                (out.to_f64_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), compiled.step_names())
            };
            let (plain, _) = run(false, 1);
            for threads in [1, 2] {
                let (fused, steps) = run(true, threads);
                assert_eq!(steps, ["conv+act"], "{sp:?} {act}");
                assert_eq!(fused, plain, "{sp:?} group {group} {act}, {threads} threads");
            }
        }
    }
}

#[test]
fn the_reference_runs_a_fused_node_exactly_as_the_nodes_it_replaces() {
    let (m, x) = conv_block(false);
    let mut fused = m.clone();
    let yes = |_: &strata_ir::Graph, _: &strata_ir::Node| true;
    let rules = strata_ir::passes::FuseRules { producer: &yes, step: &yes, max_steps: 16 };
    assert_eq!(strata_ir::passes::fuse(&mut fused, &rules), 1);
    fused.validate().expect("valid");
    let host = [strata_ir::HostValue::Tensor(x)];
    let want = strata_reference::run_model(&m, &host).expect("runs");
    let got = strata_reference::run_model(&fused, &host).expect("runs");
    assert_eq!(got, want);
}

#[test]
fn clip_bounds_computed_by_a_node_keep_the_clip_out_of_the_group() {
    // The upper bound is a Constant node's output (no folding here): the Clip
    // must not join a group whose producer computes its bound.
    let x = data(&[2, 3, 5], 41, -8.0, 8.0);
    let mut b = Builder::new();
    b.input_exact("x", &x).weight("lo", TensorData::from_f32(vec![], &[-1.0]).expect("scalar"));
    let six = TensorData::from_f32(vec![], &[6.0]).expect("scalar");
    b.typed("hi", DType::F32)
        .node_named("k", Op::Tensor(T::Constant { value: six }), &[], &["hi"])
        .node_named("clip", Op::Elementwise(E::Clip { min: None, max: None }), &["x", "lo", "hi"], &["c"])
        .node_named("relu", Op::Elementwise(E::Relu {}), &["c"], &["y"])
        .output("y");
    let m = b.build();
    check(m, &[x], 1);
}

#[test]
fn batch_norm_after_conv_is_folded_into_its_weights() {
    let x = data(&[1, 3, 7, 6], 51, -2.0, 2.0);
    let mk = |tap: bool| {
        let mut b = Builder::new();
        b.input_exact("x", &x)
            .weight("w", data(&[5, 3, 3, 3], 52, -0.5, 0.5))
            .weight("b", data(&[5], 53, -1.0, 1.0))
            .weight("scale", data(&[5], 54, 0.5, 2.0))
            .weight("shift", data(&[5], 55, -1.0, 1.0))
            .weight("mean", data(&[5], 56, -0.5, 0.5))
            .weight("var", data(&[5], 57, 0.1, 2.0));
        let bn = N::BatchNormalization { epsilon: 1e-3, momentum: 0.9, training_mode: 0, spatial: None };
        b.node_named("conv", conv("SAME_UPPER", 1, None, None, None), &["x", "w", "b"], &["y"])
            .node_named("bn", Op::Nn(bn), &["y", "scale", "shift", "mean", "var"], &["z"])
            .node_named("relu", Op::Elementwise(E::Relu {}), &["z"], &["out"])
            .output("out");
        if tap {
            b.output("y");
        }
        b.build()
    };
    for tap in [false, true] {
        let m = mk(tap);
        let backend = CpuBackend::new(2);
        let compiled = backend.compile(Arc::new(m.clone())).expect("compiles");
        let steps = compiled.step_names();
        if tap {
            // The Conv's output is read outside: nothing to fold.
            assert!(steps.iter().any(|s| s.starts_with("bn")), "{steps:?}");
        } else {
            assert_eq!(steps, ["conv+relu"]);
        }
        check(m, std::slice::from_ref(&x), 27);
    }
}

#[test]
fn losses_hardmax_and_log_sum_exp_match_the_reference() {
    use strata_ir::ops::reduce::LossReduction;
    let x = data(&[3, 5, 2, 2], 90, -3.0, 3.0);
    let w = data(&[5], 91, 0.2, 2.0);
    let with_ii = ints(&[3, 2, 2], &[0, 4, 2, -1, 1, 3, 3, 0, -1, 2, 4, 1]);
    let valid = ints(&[3, 2, 2], &[0, 4, 2, 2, 1, 3, 3, 0, 1, 2, 4, 1]);
    for reduction in LossReduction::ALL.iter().copied() {
        for (ignore_index, t) in [(Some(-1), &with_ii), (None, &valid), (Some(3), &valid)] {
            for weighted in [false, true] {
                let (weights, names): (Vec<(&str, TensorData)>, &[&str]) =
                    if weighted { (vec![("w", w.clone())], &["x", "t", "w"]) } else { (vec![], &["x", "t"]) };
                let nll = Op::Reduce(R::NegativeLogLikelihoodLoss { ignore_index, reduction });
                let m = model(nll, &[("x", &x), ("t", t)], &weights, names, &[("l", DType::F32)]);
                check(m, &[x.clone(), t.clone()], 12);
                let sce = Op::Reduce(R::SoftmaxCrossEntropyLoss { ignore_index, reduction });
                let outs = [("l", DType::F32), ("lp", DType::F32)];
                check(model(sce.clone(), &[("x", &x), ("t", t)], &weights, names, &outs), &[x.clone(), t.clone()], 12);
                check(model(sce, &[("x", &x), ("t", t)], &weights, names, &outs[..1]), &[x.clone(), t.clone()], 12);
            }
        }
    }
    // A target out of range (and not ignored) fails with the node named.
    let nll = Op::Reduce(R::NegativeLogLikelihoodLoss { ignore_index: None, reduction: LossReduction::Mean });
    let m = model(nll, &[("x", &x), ("t", &with_ii)], &[], &["x", "t"], &[("l", DType::F32)]);
    let compiled = CpuBackend::new(2).compile(Arc::new(m)).expect("compiles");
    let ins = [CpuTensor::from_host(&x).expect("uploads"), CpuTensor::from_host(&with_ii).expect("uploads")];
    let e = compiled.run(&[&ins[0], &ins[1]]).expect_err("fails").to_string();
    assert!(e.contains("'n0'") && e.contains("out of range"), "{e}");
    // Hardmax picks the first of equal maxima.
    let ties = TensorData::from_f32(vec![2, 2, 3], &[1.0, 3.0, 3.0, 2.0, 2.0, 1.0, 0.0, 0.0, 0.0, 5.0, -1.0, 5.0])
        .expect("valid");
    for op in [R::Hardmax { axis: -1 }, R::Hardmax { axis: 1 }, R::HardmaxLegacy { axis: 1 }] {
        check(
            model(Op::Reduce(op), &[("x", &ties)], &[], &["x"], &[("y", DType::F32)]),
            std::slice::from_ref(&ties),
            0,
        );
    }
    for (axes, keepdims) in [(Some(vec![1]), 0), (None, 1), (Some(vec![0, 3]), 1)] {
        let op = Op::Reduce(R::ReduceLogSumExp { axes, keepdims, noop_with_empty_axes: 0 });
        check(model(op, &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), 60);
    }
}

#[test]
fn lp_pooling_axis_norms_and_grid_sampling_match_the_reference() {
    use strata_ir::resample::{SampleMode, SamplePadding};
    let x = data(&[2, 3, 9, 8], 95, -2.0, 2.0);
    for (p, pads, dilations) in [(1, Some(vec![1, 0, 1, 2]), None), (2, None, Some(vec![2, 1])), (3, None, None)] {
        let op = Op::Nn(N::LpPool {
            auto_pad: AutoPad::NotSet,
            ceil_mode: false,
            dilations,
            kernel_shape: vec![3, 2],
            p,
            pads,
            strides: Some(vec![2, 1]),
        });
        check(model(op, &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), 6);
    }
    for op in [
        N::LpNormalization { axis: 1, p: 1 },
        N::LpNormalization { axis: -1, p: 2 },
        N::MeanVarianceNormalization { axes: vec![0, 2, 3] },
        N::MeanVarianceNormalization { axes: vec![-1] },
    ] {
        check(model(Op::Nn(op), &[("x", &x)], &[], &["x"], &[("y", DType::F32)]), std::slice::from_ref(&x), 144);
    }
    let g2 = data(&[2, 5, 4, 2], 96, -1.3, 1.3);
    // Split by image across threads: the same bits on any thread count.
    let op = Op::Nn(N::GridSample { align_corners: 0, mode: SampleMode::Cubic, padding_mode: SamplePadding::Border });
    let mk = || model(op.clone(), &[("x", &x), ("g", &g2)], &[], &["x", "g"], &[("y", DType::F32)]);
    let one = check_with(mk(), &[x.clone(), g2.clone()], 16, 1);
    assert_eq!(check_with(mk(), &[x.clone(), g2.clone()], 16, 3), one);
    let x3 = data(&[1, 2, 4, 3, 5], 97, -2.0, 2.0);
    let g3 = data(&[1, 3, 2, 4, 3], 98, -1.3, 1.3);
    for mode in SampleMode::ALL.iter().copied() {
        for padding_mode in SamplePadding::ALL.iter().copied() {
            for align_corners in [0, 1] {
                let op = Op::Nn(N::GridSample { align_corners, mode, padding_mode });
                let m = model(op.clone(), &[("x", &x), ("g", &g2)], &[], &["x", "g"], &[("y", DType::F32)]);
                check(m, &[x.clone(), g2.clone()], 16);
                if mode != SampleMode::Cubic {
                    let m = model(op, &[("x", &x3), ("g", &g3)], &[], &["x", "g"], &[("y", DType::F32)]);
                    check(m, &[x3.clone(), g3.clone()], 8);
                }
            }
        }
    }
}

#[test]
fn indexed_moves_are_exact_and_bad_indices_fail() {
    use strata_ir::ops::tensor::ScatterReduction;
    let x = data(&[3, 4, 2], 99, -5.0, 5.0);
    let one = |op: T, extra: Vec<(&str, TensorData)>, names: &[&str], out: DType| {
        check(model(Op::Tensor(op), &[("x", &x)], &extra, names, &[("y", out)]), std::slice::from_ref(&x), 0);
    };
    let nd = ints(&[2, 2], &[2, -1, 0, 1]);
    let nd_upd = data(&[2, 2], 100, -1.0, 1.0);
    let el = ints(&[2, 2, 2], &[0, 3, -1, 2, 1, 1, 0, -4]);
    let el_upd = data(&[2, 2, 2], 101, -1.0, 1.0);
    for reduction in ScatterReduction::ALL.iter().copied() {
        let extra = vec![("i", nd.clone()), ("u", nd_upd.clone())];
        one(T::ScatterND { reduction }, extra, &["x", "i", "u"], DType::F32);
        let extra = vec![("i", el.clone()), ("u", el_upd.clone())];
        one(T::ScatterElements { axis: 1, reduction }, extra, &["x", "i", "u"], DType::F32);
    }
    one(T::GatherND { batch_dims: 0 }, vec![("i", nd.clone())], &["x", "i"], DType::F32);
    one(T::GatherND { batch_dims: 1 }, vec![("i", ints(&[3, 1], &[1, -2, 3]))], &["x", "i"], DType::F32);
    let cond = TensorData::from_i128(DType::Bool, vec![3], &[1, 0, 1]).expect("valid");
    for axis in [None, Some(1), Some(-3)] {
        one(T::Compress { axis }, vec![("c", cond.clone())], &["x", "c"], DType::F32);
    }
    one(T::NonZero {}, vec![], &["x"], DType::I64);
    let m = ints(&[2, 3], &[1, 0, -2, 4, 0, 5]);
    for axis in [-1, 0, 1] {
        let op = Op::Tensor(T::OneHot { axis });
        let w = [("d", ints(&[], &[4])), ("v", ints(&[2], &[-3, 7]))];
        check(model(op, &[("m", &m)], &w, &["m", "d", "v"], &[("y", DType::I64)]), std::slice::from_ref(&m), 0);
    }
    for (dtype, k) in [(None, 1), (Some(DType::I64), -2)] {
        let op = Op::Tensor(T::EyeLike { dtype, k });
        let out = dtype.unwrap_or(DType::I64);
        check(model(op, &[("m", &m)], &[], &["m"], &[("y", out)]), std::slice::from_ref(&m), 0);
    }
    // Out-of-range indices fail with the node named.
    let run = |m: Model, inputs: &[TensorData]| -> String {
        let compiled = CpuBackend::new(2).compile(Arc::new(m)).expect("compiles");
        let ins: Vec<CpuTensor> = inputs.iter().map(|t| CpuTensor::from_host(t).expect("uploads")).collect();
        let refs: Vec<&CpuTensor> = ins.iter().collect();
        compiled.run(&refs).expect_err("fails").to_string()
    };
    for bad in [ints(&[2, 2], &[3, 0, 0, 1]), ints(&[2, 2], &[0, -5, 0, 1])] {
        let op = Op::Tensor(T::ScatterND { reduction: ScatterReduction::None });
        let m = model(op, &[("x", &x), ("i", &bad)], &[("u", nd_upd.clone())], &["x", "i", "u"], &[("y", DType::F32)]);
        let e = run(m, &[x.clone(), bad]);
        assert!(e.contains("'n0'") && e.contains("out of range"), "{e}");
    }
    let bad = ints(&[2, 2, 2], &[0, 4, 0, 0, 0, 0, 0, 0]);
    let op = Op::Tensor(T::ScatterElements { axis: 1, reduction: ScatterReduction::Add });
    let m = model(op, &[("x", &x), ("i", &bad)], &[("u", el_upd)], &["x", "i", "u"], &[("y", DType::F32)]);
    let e = run(m, &[x.clone(), bad]);
    assert!(e.contains("'n0'") && e.contains("out of range"), "{e}");
}
