//! Models of opsets 1-6 import into today's operators and run on the
//! reference backend with the legacy semantics; expected values are
//! computed here from the operators' definitions in the ONNX changelog.

use super::float_value;
use strata_ir::HostValue;
use strata_onnx::import_bytes;
use strata_onnx::proto::{AttributeProto, NodeProto, TensorProto, ValueInfoProto, attribute_type};
use strata_test_support::onnx::{f32_init, f32s, float_attr, floats_attr, int_attr, ints_attr, model_at, node, vi};

/// Import the model at `opset` and run it on the reference backend.
fn run(
    opset: i64,
    nodes: Vec<NodeProto>,
    inputs: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
    feeds: &[HostValue],
) -> Result<Vec<HostValue>, String> {
    let bytes = model_at(opset, nodes, inputs, vec![float_value("y")], inits);
    let model = import_bytes(&bytes, None).map_err(|e| e.to_string())?;
    strata_reference::run_model(&model, feeds).map_err(|e| e.to_string())
}

fn floats(v: &HostValue) -> (Vec<usize>, Vec<f64>) {
    let t = v.as_tensor().expect("a tensor");
    (t.shape().to_vec(), t.to_f64_vec())
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "element {i}: got {g}, want {w}");
    }
}

/// 0, 1, 2, ... scaled and shifted: distinct values of both signs.
fn ramp(n: usize, scale: f32, shift: f32) -> Vec<f32> {
    (0..n).map(|i| i as f32 * scale + shift).collect()
}

#[test]
fn binary_broadcast_at_axis_aligns_the_second_operand() {
    // Add-6, A [2,3,4,5] + B [3,4] with broadcast=1, axis=1: B[c,h].
    let a = ramp(120, 0.5, -7.0);
    let b = ramp(12, 1.5, -3.0);
    let attrs = vec![int_attr("broadcast", 1), int_attr("axis", 1)];
    let out = run(
        6,
        vec![node("Add", &["a", "b"], &["y"], attrs)],
        vec![vi("a", 1, &[2, 3, 4, 5])],
        vec![f32_init("b", &[3, 4], &b)],
        &[f32s(vec![2, 3, 4, 5], &a)],
    )
    .expect("Add-6 with axis runs");
    let want: Vec<f64> = (0..120).map(|i| a[i] as f64 + b[(i / 5) % 12] as f64).collect();
    let (shape, got) = floats(&out[0]);
    assert_eq!(shape, [2, 3, 4, 5]);
    close(&got, &want);

    // Mul-1 (with consumed_inputs) where A's rank is unknown at import:
    // the aligned shape is computed when running. B [3] at axis 1 of [2,3,2].
    let a = ramp(12, 1.0, -5.0);
    let attrs = vec![int_attr("broadcast", 1), int_attr("axis", 1), ints_attr("consumed_inputs", &[0, 0])];
    let out = run(
        1,
        vec![node("Mul", &["a", "b"], &["y"], attrs)],
        vec![float_value("a")],
        vec![f32_init("b", &[3], &[2.0, -1.0, 0.5])],
        &[f32s(vec![2, 3, 2], &a)],
    )
    .expect("Mul-1 with axis and unknown rank runs");
    let want: Vec<f64> = (0..12).map(|i| a[i] as f64 * [2.0, -1.0, 0.5][(i / 2) % 3]).collect();
    let (shape, got) = floats(&out[0]);
    assert_eq!(shape, [2, 3, 2]);
    close(&got, &want);

    // Div-6 whose first operand's rank comes from inference over the nodes
    // before it (a Relu without value_info): one Unsqueeze, no shape arithmetic.
    let nodes = vec![
        node("Relu", &["x"], &["r"], vec![]),
        node("Div", &["r", "b"], &["y"], vec![int_attr("broadcast", 1), int_attr("axis", 0)]),
    ];
    let bytes =
        model_at(6, nodes, vec![vi("x", 1, &[2, 3])], vec![float_value("y")], vec![f32_init("b", &[2], &[2.0, 4.0])]);
    let model = import_bytes(&bytes, None).expect("Div-6 imports");
    let ops: Vec<&str> = model.graph(model.main).nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops, ["Relu", "Unsqueeze", "Div"]);
    let out = strata_reference::run_model(&model, &[f32s(vec![2, 3], &[-1.0, 2.0, 3.0, 4.0, -5.0, 6.0])])
        .expect("Div-6 runs");
    close(&floats(&out[0]).1, &[0.0, 1.0, 1.5, 1.0, 0.0, 1.5]);

    // Sub-6 with broadcast=1 and no axis: suffix matching, B [3] on [2,3].
    let out = run(
        6,
        vec![node("Sub", &["a", "b"], &["y"], vec![int_attr("broadcast", 1)])],
        vec![vi("a", 1, &[2, 3])],
        vec![f32_init("b", &[3], &[1.0, 2.0, 3.0])],
        &[f32s(vec![2, 3], &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0])],
    )
    .expect("Sub-6 suffix broadcast runs");
    close(&floats(&out[0]).1, &[9.0, 18.0, 27.0, 39.0, 48.0, 57.0]);

    // Greater-1 with axis 0: B [2] per row of A [2,3]; a bool result.
    let bytes = model_at(
        1,
        vec![node("Greater", &["a", "b"], &["y"], vec![int_attr("broadcast", 1), int_attr("axis", 0)])],
        vec![vi("a", 1, &[2, 3])],
        vec![vi("y", 9, &[2, 3])],
        vec![f32_init("b", &[2], &[2.0, 4.0])],
    );
    let model = import_bytes(&bytes, None).expect("Greater-1 imports");
    let out = strata_reference::run_model(&model, &[f32s(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])])
        .expect("Greater-1 runs");
    assert_eq!(out[0].as_tensor().unwrap().to_i64_vec(), [0, 0, 1, 0, 1, 1]);
}

#[test]
fn binary_broadcast_that_cannot_align_is_an_error_naming_the_node() {
    // B of rank 2 cannot start at axis 1 of a rank-2 A.
    let bytes = model_at(
        6,
        vec![node("Add", &["a", "b"], &["y"], vec![int_attr("broadcast", 1), int_attr("axis", 1)])],
        vec![vi("a", 1, &[2, 3])],
        vec![float_value("y")],
        vec![f32_init("b", &[2, 3], &[0.0; 6])],
    );
    let e = import_bytes(&bytes, None).expect_err("misaligned").to_string();
    assert!(e.contains("node 'Add_node'") && e.contains("cannot be aligned at axis 1"), "{e}");
    // An absurd axis is refused, not computed with.
    let bytes = model_at(
        6,
        vec![node("Div", &["a", "b"], &["y"], vec![int_attr("broadcast", 1), int_attr("axis", i64::MIN)])],
        vec![vi("a", 1, &[2, 3])],
        vec![float_value("y")],
        vec![f32_init("b", &[3], &[1.0; 3])],
    );
    let e = import_bytes(&bytes, None).expect_err("absurd axis").to_string();
    assert!(e.contains("node 'Div_node'") && e.contains("out of range"), "{e}");
    // B's rank unknown at import.
    let bytes = model_at(
        6,
        vec![node("Add", &["a", "b"], &["y"], vec![int_attr("broadcast", 1), int_attr("axis", 1)])],
        vec![vi("a", 1, &[2, 3]), float_value("b")],
        vec![float_value("y")],
        vec![],
    );
    let e = import_bytes(&bytes, None).expect_err("unknown rank").to_string();
    assert!(e.contains("node 'Add_node'") && e.contains("rank of input 'b' is not known"), "{e}");
}

/// BatchNormalization in inference: per channel `c` of [N, C, H, W].
fn batch_norm_expected(x: &[f32], s: &[f32], b: &[f32], m: &[f32], v: &[f32], eps: f32, hw: usize) -> Vec<f64> {
    let c = s.len();
    (0..x.len())
        .map(|i| {
            let k = (i / hw) % c;
            let x = x[i] as f64;
            (x - m[k] as f64) / (v[k] as f64 + eps as f64).sqrt() * s[k] as f64 + b[k] as f64
        })
        .collect()
}

#[test]
fn batch_normalization_with_is_test_spatial_and_consumed_inputs() {
    let x = ramp(24, 0.75, -8.0);
    let (s, b, m, v) = ([0.5f32, 2.0, -1.0], [0.1f32, -0.2, 0.3], [1.0f32, -2.0, 0.5], [0.25f32, 4.0, 1.5]);
    let inits =
        || vec![f32_init("s", &[3], &s), f32_init("bias", &[3], &b), f32_init("m", &[3], &m), f32_init("v", &[3], &v)];
    let want = batch_norm_expected(&x, &s, &b, &m, &v, 1e-3, 4);
    for (opset, mut attrs) in [(5, vec![ints_attr("consumed_inputs", &[0, 0, 0, 1, 1])]), (6, vec![])] {
        attrs.extend([int_attr("is_test", 1), int_attr("spatial", 1), float_attr("epsilon", 1e-3)]);
        let out = run(
            opset,
            vec![node("BatchNormalization", &["x", "s", "bias", "m", "v"], &["y"], attrs)],
            vec![vi("x", 1, &[2, 3, 2, 2])],
            inits(),
            &[f32s(vec![2, 3, 2, 2], &x)],
        )
        .unwrap_or_else(|e| panic!("BatchNormalization-{opset} runs: {e}"));
        close(&floats(&out[0]).1, &want);
    }
}

#[test]
fn batch_normalization_spatial_0_is_per_activation() {
    // X [2, 3, 2]; scale, bias, mean and var [3, 2]: one per (c, h).
    let x = ramp(12, 1.25, -6.0);
    let (s, b) = (ramp(6, 0.5, -1.0), ramp(6, -0.25, 0.5));
    let (m, v) = (ramp(6, 0.75, -2.0), ramp(6, 0.5, 0.25));
    let want: Vec<f64> = (0..12)
        .map(|i| {
            let k = i % 6;
            (x[i] as f64 - m[k] as f64) / (v[k] as f64 + 1e-2f32 as f64).sqrt() * s[k] as f64 + b[k] as f64
        })
        .collect();
    for (opset, mut attrs) in [(6, vec![int_attr("is_test", 1)]), (8, vec![])] {
        attrs.extend([int_attr("spatial", 0), float_attr("epsilon", 1e-2), float_attr("momentum", 0.9)]);
        let out = run(
            opset,
            vec![node("BatchNormalization", &["x", "s", "bias", "m", "v"], &["y"], attrs)],
            vec![vi("x", 1, &[2, 3, 2])],
            vec![
                f32_init("s", &[3, 2], &s),
                f32_init("bias", &[3, 2], &b),
                f32_init("m", &[3, 2], &m),
                f32_init("v", &[3, 2], &v),
            ],
            &[f32s(vec![2, 3, 2], &x)],
        )
        .unwrap_or_else(|e| panic!("BatchNormalization-{opset} spatial=0 runs: {e}"));
        let (shape, got) = floats(&out[0]);
        assert_eq!(shape, [2, 3, 2]);
        close(&got, &want);
    }
    // Training outputs are refused, naming the node.
    let bytes = model_at(
        6,
        vec![node("BatchNormalization", &["x", "s", "bias", "m", "v"], &["y", "rm"], vec![int_attr("is_test", 0)])],
        vec![vi("x", 1, &[2, 3, 2])],
        vec![float_value("y"), float_value("rm")],
        vec![
            f32_init("s", &[3], &[1.0; 3]),
            f32_init("bias", &[3], &[0.0; 3]),
            f32_init("m", &[3], &[0.0; 3]),
            f32_init("v", &[3], &[1.0; 3]),
        ],
    );
    let e = import_bytes(&bytes, None).expect_err("training form").to_string();
    assert!(e.contains("node 'BatchNormalization_node'") && e.contains("is_test=0"), "{e}");
}

#[test]
fn prelu_slope_is_per_channel_before_opset_7() {
    let x = ramp(24, 1.0, -12.0);
    let slope = [0.1f32, 0.5, 2.0];
    for opset in [1, 6] {
        let attrs = if opset == 1 { vec![ints_attr("consumed_inputs", &[0, 0])] } else { vec![] };
        let out = run(
            opset,
            vec![node("PRelu", &["x", "slope"], &["y"], attrs)],
            vec![vi("x", 1, &[2, 3, 2, 2])],
            vec![f32_init("slope", &[3], &slope)],
            &[f32s(vec![2, 3, 2, 2], &x)],
        )
        .unwrap_or_else(|e| panic!("PRelu-{opset} runs: {e}"));
        let want: Vec<f64> =
            (0..24).map(|i| if x[i] < 0.0 { slope[(i / 4) % 3] as f64 * x[i] as f64 } else { x[i] as f64 }).collect();
        close(&floats(&out[0]).1, &want);
    }
    // A slope already shaped to broadcast, [3, 1, 1], is left as it is.
    let out = run(
        6,
        vec![node("PRelu", &["x", "slope"], &["y"], vec![])],
        vec![vi("x", 1, &[2, 3, 2, 2])],
        vec![f32_init("slope", &[3, 1, 1], &slope)],
        &[f32s(vec![2, 3, 2, 2], &x)],
    )
    .expect("PRelu-6 with a [3, 1, 1] slope runs");
    let want: Vec<f64> =
        (0..24).map(|i| if x[i] < 0.0 { slope[(i / 4) % 3] as f64 * x[i] as f64 } else { x[i] as f64 }).collect();
    close(&floats(&out[0]).1, &want);
    // One shared slope stays as it is.
    let out = run(
        6,
        vec![node("PRelu", &["x", "slope"], &["y"], vec![])],
        vec![vi("x", 1, &[1, 2, 2])],
        vec![f32_init("slope", &[1], &[0.25])],
        &[f32s(vec![1, 2, 2], &[-4.0, 4.0, -8.0, 1.0])],
    )
    .expect("PRelu-6 with one slope runs");
    close(&floats(&out[0]).1, &[-1.0, 4.0, -2.0, 1.0]);
}

#[test]
fn gemm_with_broadcast_c_before_opset_7() {
    let (a, b) = (ramp(8, 0.5, -1.0), ramp(12, 0.25, -1.5));
    let (alpha, beta) = (0.5f32, 2.0f32);
    let gemm = |c: &[f64], cols: bool| -> Vec<f64> {
        let mut y = vec![0.0; 6];
        for i in 0..2 {
            for j in 0..3 {
                let dot: f64 = (0..4).map(|k| a[i * 4 + k] as f64 * b[k * 3 + j] as f64).sum();
                let cv = if c.len() == 1 {
                    c[0]
                } else if cols {
                    c[j]
                } else {
                    c[i * 3 + j]
                };
                y[i * 3 + j] = alpha as f64 * dot + beta as f64 * cv;
            }
        }
        y
    };
    for (dims, c) in [(vec![3i64], vec![1.0f32, -2.0, 3.0]), (vec![1], vec![0.5])] {
        let attrs = vec![int_attr("broadcast", 1), float_attr("alpha", alpha), float_attr("beta", beta)];
        let out = run(
            6,
            vec![node("Gemm", &["a", "b", "c"], &["y"], attrs)],
            vec![vi("a", 1, &[2, 4])],
            vec![f32_init("b", &[4, 3], &b), f32_init("c", &dims, &c)],
            &[f32s(vec![2, 4], &a)],
        )
        .unwrap_or_else(|e| panic!("Gemm-6 with C {dims:?} runs: {e}"));
        let c64: Vec<f64> = c.iter().map(|&v| v as f64).collect();
        let (shape, got) = floats(&out[0]);
        assert_eq!(shape, [2, 3]);
        close(&got, &gemm(&c64, true));
    }
}

#[test]
fn dropout_is_test_and_ratio_is_identity() {
    let x = ramp(6, 1.0, -2.0);
    let attrs = vec![int_attr("is_test", 1), float_attr("ratio", 0.3)];
    let out = run(
        6,
        vec![node("Dropout", &["x"], &["y"], attrs)],
        vec![vi("x", 1, &[2, 3])],
        vec![],
        &[f32s(vec![2, 3], &x)],
    )
    .expect("Dropout-6 runs");
    close(&floats(&out[0]).1, &x.iter().map(|&v| v as f64).collect::<Vec<_>>());
}

#[test]
fn old_concat_reshape_slice_pad_and_upsample_forms() {
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    // Concat-1 without `axis` joins along axis 1.
    let out = run(
        1,
        vec![node("Concat", &["a", "b"], &["y"], vec![])],
        vec![vi("a", 1, &[2, 1]), vi("b", 1, &[2, 2])],
        vec![],
        &[f32s(vec![2, 1], &[1.0, 2.0]), f32s(vec![2, 2], &[3.0, 4.0, 5.0, 6.0])],
    )
    .expect("Concat-1 runs");
    assert_eq!(floats(&out[0]), (vec![2, 3], vec![1.0, 3.0, 4.0, 2.0, 5.0, 6.0]));
    // Reshape-1: `shape` attribute, with consumed_inputs.
    let attrs = vec![ints_attr("shape", &[3, 2]), ints_attr("consumed_inputs", &[0])];
    let out = run(
        1,
        vec![node("Reshape", &["x"], &["y"], attrs)],
        vec![vi("x", 1, &[2, 3])],
        vec![],
        &[f32s(vec![2, 3], &x)],
    )
    .expect("Reshape-1 runs");
    assert_eq!(floats(&out[0]), (vec![3, 2], x.iter().map(|&v| v as f64).collect()));
    // Slice-1: starts/ends/axes attributes.
    let attrs = vec![ints_attr("starts", &[1]), ints_attr("ends", &[3]), ints_attr("axes", &[1])];
    let out =
        run(1, vec![node("Slice", &["x"], &["y"], attrs)], vec![vi("x", 1, &[2, 3])], vec![], &[f32s(vec![2, 3], &x)])
            .expect("Slice-1 runs");
    assert_eq!(floats(&out[0]), (vec![2, 2], vec![2.0, 3.0, 5.0, 6.0]));
    // Pad-1 (`paddings`) and Pad-2 (`pads`), constant value as an attribute.
    for (opset, name) in [(1, "paddings"), (2, "pads")] {
        let attrs = vec![ints_attr(name, &[0, 1, 0, 0]), float_attr("value", 9.0)];
        let out = run(
            opset,
            vec![node("Pad", &["x"], &["y"], attrs)],
            vec![vi("x", 1, &[2, 3])],
            vec![],
            &[f32s(vec![2, 3], &x)],
        )
        .unwrap_or_else(|e| panic!("Pad-{opset} runs: {e}"));
        assert_eq!(floats(&out[0]), (vec![2, 4], vec![9.0, 1.0, 2.0, 3.0, 9.0, 4.0, 5.0, 6.0]));
    }
    // Cast-1: the target type named by a string.
    let to = AttributeProto {
        name: "to".into(),
        r#type: attribute_type::STRING,
        s: b"INT32".to_vec(),
        ..Default::default()
    };
    let bytes = model_at(
        1,
        vec![node("Cast", &["x"], &["y"], vec![to])],
        vec![vi("x", 1, &[3])],
        vec![vi("y", 6, &[3])],
        vec![],
    );
    let model = import_bytes(&bytes, None).expect("Cast-1 imports");
    let out = strata_reference::run_model(&model, &[f32s(vec![3], &[1.5, -2.5, 7.0])]).expect("Cast-1 runs");
    assert_eq!(out[0].as_tensor().unwrap().dtype(), strata_ir::DType::I32);
    assert_eq!(out[0].as_tensor().unwrap().to_i64_vec(), [1, -2, 7]);
    // Upsample-7: `scales` attribute, nearest.
    let attrs = vec![floats_attr("scales", &[1.0, 2.0])];
    let out = run(
        7,
        vec![node("Upsample", &["x"], &["y"], attrs)],
        vec![vi("x", 1, &[1, 2])],
        vec![],
        &[f32s(vec![1, 2], &[1.0, 2.0])],
    )
    .expect("Upsample-7 runs");
    assert_eq!(floats(&out[0]), (vec![1, 4], vec![1.0, 1.0, 2.0, 2.0]));
}

#[test]
fn experimental_image_scaler_and_upsample_of_opset_1() {
    // ImageScaler: scale * x + bias[c] over [1, 2, 2, 2].
    let x = ramp(8, 1.0, -3.0);
    let attrs = vec![float_attr("scale", 0.5), floats_attr("bias", &[10.0, -10.0])];
    let out = run(
        6,
        vec![node("ImageScaler", &["x"], &["y"], attrs)],
        vec![vi("x", 1, &[1, 2, 2, 2])],
        vec![],
        &[f32s(vec![1, 2, 2, 2], &x)],
    )
    .expect("ImageScaler runs");
    let want: Vec<f64> = (0..8).map(|i| 0.5 * x[i] as f64 + [10.0, -10.0][i / 4]).collect();
    assert_eq!(floats(&out[0]).0, [1, 2, 2, 2]);
    close(&floats(&out[0]).1, &want);
    // Upsample-1: height_scale and width_scale, nearest.
    let attrs = vec![float_attr("height_scale", 2.0), float_attr("width_scale", 3.0)];
    let out = run(
        1,
        vec![node("Upsample", &["x"], &["y"], attrs)],
        vec![vi("x", 1, &[1, 1, 1, 2])],
        vec![],
        &[f32s(vec![1, 1, 1, 2], &[1.0, 2.0])],
    )
    .expect("Upsample-1 runs");
    assert_eq!(floats(&out[0]), (vec![1, 1, 2, 6], [[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]; 2].concat()));
}
