//! Differential tests of the operator families added beside the original
//! kernels (attention, einsum, scatter, row-wise operators, pooling over
//! three axes...): each small model runs on the GPU and on the reference
//! backend, and every output must agree within a stated tolerance.
//!
//! Without a GPU adapter the tests fail when `CI` is set and are skipped
//! with a loud message otherwise.

use super::{Builder, Tol, check_runs, data};

use strata_ir::ops::tensor::ScatterReduction;
use strata_ir::ops::{NnOp, ReduceOp as R, TensorOp as T};
use strata_ir::{DType, Model, Op, TensorData};

/// One node over graph inputs `ins` (typed like the tensors they will
/// receive) and constant operands `weights`; every output (with its
/// element type) is a graph output, of the first input's rank (dimensions
/// unknown), so integer outputs are not taken for shape metadata.
fn model(
    op: Op,
    ins: &[(&str, &TensorData)],
    weights: Vec<(&str, TensorData)>,
    node_ins: &[&str],
    outs: &[(&str, DType)],
) -> Model {
    let rank = ins.first().map_or(0, |(_, t)| t.shape().len());
    Builder::one_node(op, ins, &weights, node_ins, outs, Some(rank)).opset(24).build()
}

/// Run once on both backends; floats must agree to `atol + rtol * |ref|`,
/// everything else exactly.
fn check(m: Model, inputs: Vec<TensorData>, atol: f64, rtol: f64) {
    check_runs(m, &inputs, Tol { atol, rtol }, 1);
}

#[test]
fn einsum_patterns() {
    for (eq, shapes) in [
        ("ii->i", vec![vec![4, 4]]),
        ("bii->bi", vec![vec![2, 3, 3]]),
        ("i,i", vec![vec![5], vec![5]]),
        ("ij->", vec![vec![3, 4]]),
        ("bij,bjk->bik", vec![vec![2, 3, 4], vec![2, 4, 5]]),
        ("...ij,...jk", vec![vec![2, 3, 4], vec![4, 2]]),
        ("ij,jk,kl->il", vec![vec![2, 3], vec![3, 4], vec![4, 2]]),
    ] {
        let names: Vec<String> = (0..shapes.len()).map(|i| format!("x{i}")).collect();
        let inputs: Vec<TensorData> =
            shapes.iter().enumerate().map(|(i, s)| data(s, i as u32 + 1, -1.0, 1.0)).collect();
        let ins: Vec<(&str, &TensorData)> = names.iter().map(String::as_str).zip(&inputs).collect();
        let node_ins: Vec<&str> = names.iter().map(String::as_str).collect();
        let m = model(
            Op::Nn(NnOp::Einsum { equation: strata_ir::einsum::Equation::parse(eq).expect("equation") }),
            &ins,
            vec![],
            &node_ins,
            &[("y", DType::F32)],
        );
        check(m, inputs, 1e-5, 1e-5);
    }
}

#[test]
fn attention_gqa_mask_causal_past_and_scores() {
    let op = Op::Nn(NnOp::Attention {
        is_causal: 1,
        kv_num_heads: None,
        q_num_heads: None,
        qk_matmul_output_mode: 2,
        scale: Some(0.3),
        softcap: 2.0,
        softmax_precision: None,
        left_window_size: -1,
        right_window_size: -1,
    });
    let inputs = vec![
        data(&[2, 4, 3, 8], 1, -1.0, 1.0),
        data(&[2, 2, 3, 8], 2, -1.0, 1.0),
        data(&[2, 2, 3, 6], 3, -1.0, 1.0),
        data(&[3, 5], 4, -1.0, 0.0),
        data(&[2, 2, 2, 8], 5, -1.0, 1.0),
        data(&[2, 2, 2, 6], 6, -1.0, 1.0),
    ];
    let names = ["q", "k", "v", "mask", "pk", "pv"];
    let ins: Vec<(&str, &TensorData)> = names.iter().copied().zip(&inputs).collect();
    let m = model(
        op,
        &ins,
        vec![],
        &names,
        &[("y", DType::F32), ("present_k", DType::F32), ("present_v", DType::F32), ("qk", DType::F32)],
    );
    check(m, inputs, 1e-5, 1e-4);
}

#[test]
fn scatter_nd_with_duplicate_indices_adds_in_order() {
    let idx = TensorData::from_i64(vec![3, 1], &[1, 1, -1]).expect("valid");
    let (x, u) = (data(&[4, 3], 1, -1.0, 1.0), data(&[3, 3], 2, -1.0, 1.0));
    let m = model(
        Op::Tensor(T::ScatterND { reduction: ScatterReduction::Add }),
        &[("x", &x), ("u", &u)],
        vec![("i", idx)],
        &["x", "i", "u"],
        &[("y", DType::F32)],
    );
    check(m, vec![x, u], 1e-6, 1e-6);
}

#[test]
fn top_k_and_cumulative_sums() {
    let k = TensorData::from_i64(vec![1], &[3]).expect("valid");
    let x = data(&[2, 7, 3], 1, -1.0, 1.0);
    let m = model(
        Op::Reduce(R::TopK { axis: 1, largest: 0, sorted: 1, k: None }),
        &[("x", &x)],
        vec![("k", k)],
        &["x", "k"],
        &[("v", DType::F32), ("i", DType::I64)],
    );
    check(m, vec![x], 0.0, 0.0);
    let axis = TensorData::from_i64(vec![], &[-2]).expect("valid");
    let x = data(&[2, 5, 3], 2, -1.0, 1.0);
    let m = model(
        Op::Reduce(R::CumSum { exclusive: 1, reverse: 1 }),
        &[("x", &x)],
        vec![("a", axis)],
        &["x", "a"],
        &[("y", DType::F32)],
    );
    check(m, vec![x], 1e-6, 1e-5);
}

#[test]
fn pooling_over_three_axes_with_indices() {
    let x = data(&[1, 2, 5, 6, 7], 1, -1.0, 1.0);
    let m = model(
        Op::Nn(NnOp::MaxPool {
            auto_pad: strata_ir::window::AutoPad::NotSet,
            ceil_mode: true,
            dilations: Some(vec![1, 2, 1]),
            kernel_shape: vec![2, 2, 3],
            pads: Some(vec![0, 1, 1, 1, 0, 1]),
            storage_order: 0,
            strides: Some(vec![2, 1, 2]),
        }),
        &[("x", &x)],
        vec![],
        &["x"],
        &[("y", DType::F32), ("i", DType::I64)],
    );
    check(m, vec![x], 0.0, 0.0);
    let x = data(&[2, 3, 7, 6], 2, -1.0, 1.0);
    let m = model(
        Op::Nn(NnOp::LpPool {
            auto_pad: strata_ir::window::AutoPad::SameUpper,
            ceil_mode: false,
            dilations: None,
            kernel_shape: vec![3, 2],
            p: 3,
            pads: None,
            strides: Some(vec![2, 2]),
        }),
        &[("x", &x)],
        vec![],
        &["x"],
        &[("y", DType::F32)],
    );
    check(m, vec![x], 1e-5, 1e-4);
}

/// The training optimisers over two tensors per group, on the first step
/// and later ones (bias correction, decay, the first step's coefficient).
#[test]
fn training_optimisers() {
    use strata_ir::ops::nn::MomentumMode;
    let shapes: [&[usize]; 2] = [&[3, 5], &[7]];
    for (op, kinds, t) in [
        (NnOp::Adagrad { decay_factor: 0.1, epsilon: 1e-6, norm_coefficient: 0.01 }, 3, 3),
        (
            NnOp::Adam { alpha: 0.9, beta: 0.999, epsilon: 1e-6, norm_coefficient: 0.02, norm_coefficient_post: 0.0 },
            4,
            0,
        ),
        (NnOp::Adam { alpha: 0.8, beta: 0.95, epsilon: 1e-4, norm_coefficient: 0.0, norm_coefficient_post: 0.1 }, 4, 5),
        (NnOp::Momentum { alpha: 0.9, beta: 0.5, mode: MomentumMode::Standard, norm_coefficient: 0.01 }, 3, 0),
        (NnOp::Momentum { alpha: 0.7, beta: 0.3, mode: MomentumMode::Nesterov, norm_coefficient: 0.0 }, 3, 4),
    ] {
        // Groups X, G and the states; the states (squared sums) are positive.
        let mut tensors = Vec::new();
        for kind in 0..kinds {
            for (i, s) in shapes.iter().enumerate() {
                let (lo, hi) = if kind >= 2 { (0.1, 2.0) } else { (-2.0, 2.0) };
                tensors.push((format!("in{kind}_{i}"), data(s, (10 * kind + i) as u32, lo, hi)));
            }
        }
        let ins: Vec<(&str, &TensorData)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let weights = vec![
            ("r", TensorData::from_f32(vec![], &[0.05]).expect("valid")),
            ("t", TensorData::from_i64(vec![], &[t]).expect("valid")),
        ];
        let mut node_ins = vec!["r", "t"];
        node_ins.extend(ins.iter().map(|(n, _)| *n));
        let outs: Vec<String> = (0..(kinds - 1) * shapes.len()).map(|o| format!("out{o}")).collect();
        let out_types: Vec<(&str, DType)> = outs.iter().map(|o| (o.as_str(), DType::F32)).collect();
        let m = model(Op::Nn(op), &ins, weights, &node_ins, &out_types);
        check(m, tensors.into_iter().map(|(_, t)| t).collect(), 1e-6, 1e-5);
    }
}

/// Hann, Hamming and Blackman windows, periodic and symmetric, short and long.
#[test]
fn window_functions() {
    use strata_ir::ops::SignalOp as S;
    for size in [1i64, 2, 3, 10, 257, 1024] {
        for periodic in [1, 0] {
            if size == 1 && periodic == 0 {
                continue; // a period of 0: NaN by the formula
            }
            for op in [
                S::HannWindow { output_datatype: DType::F32, periodic },
                S::HammingWindow { output_datatype: DType::F32, periodic },
                S::BlackmanWindow { output_datatype: DType::F32, periodic },
            ] {
                let size_t = TensorData::from_i64(vec![], &[size]).expect("valid");
                let m = Builder::one_node(
                    Op::Signal(op),
                    &[],
                    &[("size", size_t)],
                    &["size"],
                    &[("y", DType::F32)],
                    Some(1),
                )
                .opset(24)
                .build();
                check(m, vec![], 2e-7, 4e-6);
            }
        }
    }
}

/// ReduceMax / ReduceMin on bool, int32 and int64 tensors (exact), an
/// empty bool reduction (false / true).
#[test]
fn integer_and_bool_max_min() {
    let ints = |dtype: DType, shape: Vec<usize>, seed: i64| {
        let n: usize = shape.iter().product();
        let v: Vec<i128> = (0..n as i64)
            .map(|i| (i * 7919 + seed * 104_729) % 201)
            .map(|v| if dtype == DType::Bool { i128::from(v % 3 == 0) } else { (v - 100) as i128 })
            .collect();
        TensorData::from_i128(dtype, shape, &v).expect("valid")
    };
    let cases = [
        ints(DType::Bool, vec![3, 4, 5], 1),
        ints(DType::I32, vec![3, 4, 5], 2),
        ints(DType::I64, vec![3, 4, 5], 3),
        ints(DType::Bool, vec![2, 0, 3], 4),
    ];
    for x in cases {
        for max in [true, false] {
            let (axes, keepdims) = (Some(vec![1]), 0);
            let op = if max {
                R::ReduceMax { axes, keepdims, noop_with_empty_axes: 0 }
            } else {
                R::ReduceMin { axes, keepdims, noop_with_empty_axes: 0 }
            };
            let m = model(Op::Reduce(op), &[("x", &x)], vec![], &["x"], &[("y", x.dtype())]);
            check(m, vec![x.clone()], 0.0, 0.0);
        }
    }
}

/// ConvTranspose sized by `output_shape` (the padding split SAME_UPPER
/// style) and by `auto_pad` SAME_UPPER / SAME_LOWER.
#[test]
fn conv_transpose_output_shape_and_same() {
    use strata_ir::window::AutoPad;
    let x = data(&[1, 2, 5, 6], 1, -1.0, 1.0);
    let w = data(&[2, 3, 3, 3], 2, -1.0, 1.0);
    for (auto_pad, output_shape) in [
        (AutoPad::NotSet, Some(vec![10, 12])),
        (AutoPad::NotSet, Some(vec![1, 3, 9, 13])),
        (AutoPad::SameUpper, None),
        (AutoPad::SameLower, None),
    ] {
        let op = NnOp::ConvTranspose {
            auto_pad,
            dilations: None,
            group: 1,
            kernel_shape: None,
            output_padding: None,
            output_shape,
            pads: None,
            strides: Some(vec![2, 2]),
        };
        let m = model(Op::Nn(op), &[("x", &x)], vec![("w", w.clone())], &["x", "w"], &[("y", DType::F32)]);
        check(m, vec![x.clone()], 1e-5, 1e-5);
    }
}

/// Compress along an axis (a condition shorter than the axis too) and over
/// the flattened input, the condition a constant or a graph input.
#[test]
fn compress_by_host_condition() {
    let x = data(&[4, 5, 3], 7, -1.0, 1.0);
    let cond = |v: &[bool]| {
        let b: Vec<u8> = v.iter().map(|&c| u8::from(c)).collect();
        TensorData::from_bytes(DType::Bool, vec![v.len()], strata_ir::tensor::Buffer::from_vec(b)).expect("valid")
    };
    for (axis, c) in [
        (Some(1), cond(&[true, false, true, true, false])),
        (Some(0), cond(&[false, true])),
        (Some(-1), cond(&[false, false, false])),
        (None, cond(&[true, false, false, true, true, false, true])),
    ] {
        let op = Op::Tensor(T::Compress { axis });
        let m = model(op.clone(), &[("x", &x)], vec![("c", c.clone())], &["x", "c"], &[("y", DType::F32)]);
        check(m, vec![x.clone()], 0.0, 0.0);
        let m = model(op, &[("x", &x), ("c", &c)], vec![], &["x", "c"], &[("y", DType::F32)]);
        check(m, vec![x.clone(), c], 0.0, 0.0);
    }
}

/// Det of batches of matrices (pivoting needed: random entries), sides 1 to 16.
#[test]
fn determinants() {
    for (shape, rtol) in
        [(vec![1usize, 1], 1e-6), (vec![2, 3, 4, 4], 1e-5), (vec![5, 5], 1e-5), (vec![2, 16, 16], 1e-4)]
    {
        let x = data(&shape, shape.len() as u32 + 30, -1.0, 1.0);
        let m = model(Op::Nn(NnOp::Det {}), &[("x", &x)], vec![], &["x"], &[("y", DType::F32)]);
        check(m, vec![x.clone()], 1e-6, rtol);
    }
}
