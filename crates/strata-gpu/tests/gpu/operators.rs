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
