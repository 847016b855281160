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

fn attention(is_causal: bool, heads: Option<(i64, i64)>, mode: i64, softcap: f32, window: (i64, i64)) -> Op {
    Op::Nn(N::Attention {
        is_causal: i64::from(is_causal),
        q_num_heads: heads.map(|h| h.0),
        kv_num_heads: heads.map(|h| h.1),
        qk_matmul_output_mode: mode,
        scale: None,
        softcap,
        softmax_precision: None,
        left_window_size: window.0,
        right_window_size: window.1,
    })
}

#[test]
fn attention_matches_the_reference() {
    // 4-D, grouped-query (4 query heads over 2 key/value heads), causal,
    // a boolean mask broadcast over heads, a KV cache, every qk output mode;
    // 5 new queries (the GEMM path) and 1 (decoding: the direct path).
    for sq in [5, 1] {
        let (b, hq, hkv, past, d, dv) = (2, 4, 2, 3, 8, 6);
        let q = data(&[b, hq, sq, d], 80, -1.0, 1.0);
        let k = data(&[b, hkv, sq, d], 81, -1.0, 1.0);
        let v = data(&[b, hkv, sq, dv], 82, -1.0, 1.0);
        let keep: Vec<u8> = (0..b * sq * (past + sq)).map(|i| u8::from(i % 7 != 3)).collect();
        let mask = TensorData::from_bytes(DType::Bool, vec![b, 1, sq, past + sq], strata_ir::Buffer::from_vec(keep))
            .expect("valid");
        let pk = data(&[b, hkv, past, d], 83, -1.0, 1.0);
        let pv = data(&[b, hkv, past, dv], 84, -1.0, 1.0);
        let outs = [("y", DType::F32), ("pk_out", DType::F32), ("pv_out", DType::F32), ("qk", DType::F32)];
        for (mode, softcap, window) in [(0, 0.0, (-1, -1)), (1, 2.0, (-1, -1)), (2, 0.0, (2, -1)), (3, 1.5, (-1, 0))] {
            let m = model(
                attention(true, None, mode, softcap, window),
                &[("q", &q), ("k", &k), ("v", &v), ("mask", &mask)],
                &[("pk", pk.clone()), ("pv", pv.clone())],
                &["q", "k", "v", "mask", "pk", "pv"],
                &outs,
            );
            let inputs = [q.clone(), k.clone(), v.clone(), mask.clone()];
            let one = check_with(m.clone(), &inputs, d + past + sq, 1);
            let other = check_with(m, &inputs, d + past + sq, 3);
            assert_eq!(other, one, "sq {sq}, mode {mode}: thread count changed the bits");
        }
    }
    // 3-D inputs with head counts, a float mask of rank 2, no cache.
    let q3 = data(&[2, 6, 3 * 4], 85, -2.0, 2.0);
    let k3 = data(&[2, 7, 4], 86, -2.0, 2.0);
    let v3 = data(&[2, 7, 5], 87, -2.0, 2.0);
    let fmask = data(&[6, 7], 88, -1.0, 0.0);
    let m = model(
        attention(false, Some((3, 1)), 0, 0.0, (-1, -1)),
        &[("q", &q3), ("k", &k3), ("v", &v3), ("mask", &fmask)],
        &[],
        &["q", "k", "v", "mask"],
        &[("y", DType::F32)],
    );
    check(m, &[q3, k3, v3, fmask], 4 + 7);
    // Bfloat16 and float16: every intermediate rounded where the reference
    // rounds it, so the results are within one unit of its last place.
    for dt in [DType::BF16, DType::F16] {
        let narrow = |t: &TensorData| TensorData::from_f64(dt, t.shape().to_vec(), &t.to_f64_vec()).expect("valid");
        let (q, k, v) = (
            narrow(&data(&[1, 4, 3, 8], 92, -1.0, 1.0)),
            narrow(&data(&[1, 2, 4, 8], 93, -1.0, 1.0)),
            narrow(&data(&[1, 2, 4, 8], 94, -1.0, 1.0)),
        );
        let m = model(
            attention(true, None, 3, 0.0, (-1, -1)),
            &[("q", &q), ("k", &k), ("v", &v)],
            &[],
            &["q", "k", "v", "", "", "", ""],
            &[("y", dt), ("pk", dt), ("pv", dt), ("qk", dt)],
        );
        let tol = Tol { atol: 1e-6, rtol: if dt == DType::BF16 { 1.0 / 128.0 } else { 1.0 / 1024.0 } };
        check_against_reference(&Cpu(CpuBackend::new(2)), m, &[q, k, v], tol, Floats::All);
    }
    // FlexAttention without modifier subgraphs: plain grouped-query attention.
    let (q, k, v) =
        (data(&[2, 4, 3, 8], 89, -1.0, 1.0), data(&[2, 2, 5, 8], 90, -1.0, 1.0), data(&[2, 2, 5, 3], 91, -1.0, 1.0));
    let flex = Op::Nn(N::FlexAttention { prob_mod: None, scale: Some(0.3), score_mod: None, softmax_precision: None });
    let m = model(flex, &[("q", &q), ("k", &k), ("v", &v)], &[], &["q", "k", "v"], &[("y", DType::F32)]);
    check(m, &[q, k, v], 8 + 5);
}

#[test]
fn rotary_embedding_matches_the_reference() {
    let rotary = |interleaved: i64, num_heads: Option<i64>, dim: i64| {
        Op::Nn(N::RotaryEmbedding { interleaved, num_heads, rotary_embedding_dim: dim })
    };
    // 3-D input with position ids into a 2-D cache, half the head rotated.
    let x = data(&[2, 5, 3 * 8], 90, -1.0, 1.0);
    let cos = data(&[11, 2], 91, -1.0, 1.0);
    let sin = data(&[11, 2], 92, -1.0, 1.0);
    let pos = ints(&[2, 5], &[0, 1, 2, 3, 4, 10, 9, 3, 3, 0]);
    let m = model(
        rotary(0, Some(3), 4),
        &[("x", &x), ("pos", &pos)],
        &[("cos", cos), ("sin", sin)],
        &["x", "cos", "sin", "pos"],
        &[("y", DType::F32)],
    );
    check(m, &[x, pos], 2);
    // 4-D interleaved, whole head, a per-position cache.
    let x = data(&[2, 3, 5, 6], 93, -1.0, 1.0);
    let cos = data(&[2, 5, 3], 94, -1.0, 1.0);
    let sin = data(&[2, 5, 3], 95, -1.0, 1.0);
    let m = model(
        rotary(1, None, 0),
        &[("x", &x), ("cos", &cos), ("sin", &sin)],
        &[],
        &["x", "cos", "sin"],
        &[("y", DType::F32)],
    );
    check(m, &[x, cos, sin], 2);
}

#[test]
fn linear_attention_conv_state_and_swiglu_match_the_reference() {
    use strata_ir::ops::nn::{ConvStateActivation, LinearUpdate};
    // LinearAttention, gated delta rule, grouped heads, with a past state.
    let (b, t, hq, hkv, dk, dv) = (2, 6, 4, 2, 3, 5);
    let q = data(&[b, t, hq * dk], 100, -1.0, 1.0);
    let k = data(&[b, t, hkv * dk], 101, -1.0, 1.0);
    let v = data(&[b, t, hkv * dv], 102, -1.0, 1.0);
    let past = data(&[b, hkv, dk, dv], 103, -1.0, 1.0);
    let decay = data(&[b, t, hkv * dk], 104, -0.5, 0.0);
    let beta = data(&[b, t, hkv], 105, 0.0, 1.0);
    let op = Op::Nn(N::LinearAttention {
        chunk_size: 64,
        kv_num_heads: hkv as i64,
        q_num_heads: hq as i64,
        scale: 0.0,
        update_rule: LinearUpdate::GatedDelta,
    });
    let m = model(
        op,
        &[("q", &q), ("k", &k), ("v", &v)],
        &[("past", past), ("decay", decay), ("beta", beta)],
        &["q", "k", "v", "past", "decay", "beta"],
        &[("y", DType::F32), ("state", DType::F32)],
    );
    check(m, &[q, k, v], dk + t);
    // CausalConvWithState with SiLU, bias and a carried state.
    let x = data(&[2, 3, 7], 106, -2.0, 2.0);
    let op = Op::Nn(N::CausalConvWithState { activation: ConvStateActivation::Silu });
    let m = model(
        op,
        &[("x", &x)],
        &[
            ("w", data(&[3, 1, 4], 107, -1.0, 1.0)),
            ("b", data(&[3], 108, -1.0, 1.0)),
            ("s", data(&[2, 3, 3], 109, -1.0, 1.0)),
        ],
        &["x", "w", "b", "s"],
        &[("y", DType::F32), ("state", DType::F32)],
    );
    check(m, &[x], 4);
    // SwiGLU.
    let (a, b) = (data(&[3, 40], 112, -4.0, 4.0), data(&[3, 40], 113, -2.0, 2.0));
    let m = model(Op::Nn(N::SwiGLU { alpha: 1.5 }), &[("a", &a), ("b", &b)], &[], &["a", "b"], &[("y", DType::F32)]);
    check(m, &[a, b], 4);
}

#[test]
fn attention_with_a_bad_mask_fails_with_the_node_named() {
    let q = data(&[1, 2, 3, 4], 110, -1.0, 1.0);
    let mask = data(&[3, 3, 3], 111, -1.0, 0.0);
    let m = model(
        attention(false, None, 0, 0.0, (-1, -1)),
        &[("q", &q), ("mask", &mask)],
        &[],
        &["q", "q", "q", "mask"],
        &[("y", DType::F32)],
    );
    let compiled = CpuBackend::new(2).compile(Arc::new(m)).expect("compiles");
    let ins = [CpuTensor::from_host(&q).expect("uploads"), CpuTensor::from_host(&mask).expect("uploads")];
    let e = compiled.run(&[&ins[0], &ins[1]]).expect_err("fails").to_string();
    assert!(e.contains("'n0'") && e.contains("attn_mask"), "{e}");
}
