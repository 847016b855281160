//! The public API: loading, running, artifacts, and clear errors (never a
//! panic or huge allocation) on bad models and bad inputs.

use prost::Message;
use strata::{DType, Error, Session, SessionOptions, Tensor, Value};
use strata_onnx::proto::*;

fn tensor_type(elem: i32, dims: &[i64]) -> TypeProto {
    TypeProto {
        value: Some(TypeValue::TensorType(TypeTensor {
            elem_type: elem,
            shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&d| Dimension {
                        value: Some(if d < 0 {
                            DimensionValue::DimParam("n".into())
                        } else {
                            DimensionValue::DimValue(d)
                        }),
                        denotation: String::new(),
                    })
                    .collect(),
            }),
        })),
        denotation: String::new(),
    }
}

fn vi(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto { name: name.into(), r#type: Some(tensor_type(elem, dims)), doc_string: String::new() }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: format!("{op}_node"),
        op_type: op.into(),
        attribute: attrs,
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
) -> Vec<u8> {
    ModelProto {
        ir_version: 10,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 21 }],
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: inits,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// y = x + x, x: float32[n, 3]
fn add_model() -> Vec<u8> {
    model(
        vec![node("Add", &["x", "x"], &["y"], vec![])],
        vec![vi("x", 1, &[-1, 3])],
        vec![vi("y", 1, &[-1, 3])],
        vec![],
    )
}

fn f32s(shape: Vec<usize>, v: &[f32]) -> Value {
    Value::Tensor(Tensor::from_f32(shape, v).unwrap())
}

#[test]
fn runs_a_model_from_bytes() -> anyhow::Result<()> {
    let s = Session::from_bytes(&add_model(), SessionOptions::default())?;
    assert_eq!(s.inputs()[0].name, "x");
    let out = s.run(&[("x", f32s(vec![2, 3], &[1., 2., 3., 4., 5., 6.]))])?;
    assert_eq!(out[0].0, "y");
    assert_eq!(out[0].1.as_tensor().unwrap().to_f64_vec(), vec![2., 4., 6., 8., 10., 12.]);
    Ok(())
}

#[test]
fn builtin_example_runs_and_artifact_roundtrips() -> anyhow::Result<()> {
    let m = strata::examples::tiny_mlp();
    let s = Session::from_model(m.clone(), SessionOptions::default())?;
    let x = f32s(vec![1, 4], &[1.0, -2.0, 0.5, 3.0]);
    let a = s.run(&[("x", x.clone())])?;
    let bytes = strata::ir::artifact::write(&m)?;
    let s2 = Session::from_bytes(&bytes, SessionOptions::default())?;
    let b = s2.run(&[("x", x)])?;
    assert_eq!(a, b);
    Ok(())
}

fn load_err(bytes: &[u8]) -> String {
    match Session::from_bytes(bytes, SessionOptions::default()) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_and_corrupt_protobuf_give_errors() {
    let m = add_model();
    for cut in [1, m.len() / 3, m.len() / 2, m.len() - 1] {
        let e = load_err(&m[..cut]);
        assert!(e.contains("cannot") || e.contains("invalid"), "{e}");
    }
    let mut corrupt = m.clone();
    for (i, b) in corrupt.iter_mut().enumerate() {
        if i % 7 == 3 {
            *b ^= 0x5a;
        }
    }
    let _ = Session::from_bytes(&corrupt, SessionOptions::default()); // must not panic
    assert!(load_err(b"\xff\xff\xff\xff garbage").contains("cannot"));
}

#[test]
fn huge_declared_tensor_is_rejected_without_allocating() {
    let big = TensorProto {
        dims: vec![1_000_000, 1_000_000],
        data_type: 1,
        name: "w".into(),
        raw_data: Some(vec![0; 16]),
        ..Default::default()
    };
    let m = model(
        vec![node("Add", &["x", "w"], &["y"], vec![])],
        vec![vi("x", 1, &[1])],
        vec![vi("y", 1, &[1])],
        vec![big],
    );
    let e = load_err(&m);
    assert!(e.contains("'w'") && e.contains("needs"), "{e}");
    // Declared in typed fields, without data.
    let big2 = TensorProto { dims: vec![1_000_000_000_000], data_type: 7, name: "w".into(), ..Default::default() };
    let m = model(
        vec![node("Add", &["x", "w"], &["y"], vec![])],
        vec![vi("x", 7, &[1])],
        vec![vi("y", 7, &[1])],
        vec![big2],
    );
    assert!(load_err(&m).contains("'w'"));
}

#[test]
fn huge_runtime_tensor_is_rejected() {
    // ConstantOfShape with a 10^12-element shape computed at run time.
    let m = model(
        vec![node("ConstantOfShape", &["shape"], &["y"], vec![])],
        vec![vi("shape", 7, &[2])],
        vec![vi("y", 1, &[-1, -1])],
        vec![],
    );
    let s = Session::from_bytes(&m, SessionOptions::default()).unwrap();
    let shape = Value::Tensor(Tensor::from_i64(vec![2], &[1_000_000, 1_000_000]).unwrap());
    let e = s.run(&[("shape", shape)]).unwrap_err().to_string();
    assert!(e.contains("ConstantOfShape") && (e.contains("limit") || e.contains("no reference kernel")), "{e}");
}

#[test]
fn gather_index_out_of_range_is_a_clear_error() {
    let m = model(
        vec![node("Gather", &["data", "idx"], &["y"], vec![])],
        vec![vi("data", 1, &[3]), vi("idx", 7, &[1])],
        vec![vi("y", 1, &[1])],
        vec![],
    );
    let s = Session::from_bytes(&m, SessionOptions::default()).unwrap();
    let e = s
        .run(&[
            ("data", f32s(vec![3], &[1., 2., 3.])),
            ("idx", Value::Tensor(Tensor::from_i64(vec![1], &[7]).unwrap())),
        ])
        .unwrap_err()
        .to_string();
    assert!(e.contains("Gather_node") && e.contains('7'), "{e}");
}

#[test]
fn wrong_inputs_are_reported_by_name() {
    let s = Session::from_bytes(&add_model(), SessionOptions::default()).unwrap();
    let e = s.run(&[("x", f32s(vec![2, 4], &[0.0; 8]))]).unwrap_err();
    assert!(matches!(e, Error::Input(_)) && e.to_string().contains("dimension 1 must be 3"), "{e}");
    let e = s.run(&[("x", Value::Tensor(Tensor::from_i64(vec![1, 3], &[1, 2, 3]).unwrap()))]).unwrap_err();
    assert!(e.to_string().contains("must be float32, got int64"), "{e}");
    let e = s.run(&[]).unwrap_err();
    assert!(e.to_string().contains("missing input 'x'"), "{e}");
    let e = s.run(&[("x", f32s(vec![1, 3], &[0.0; 3])), ("nope", f32s(vec![1], &[0.0]))]).unwrap_err();
    assert!(e.to_string().contains("unknown input 'nope'"), "{e}");
    let e = s.run(&[("x", f32s(vec![3], &[0.0; 3]))]).unwrap_err();
    assert!(e.to_string().contains("rank 2"), "{e}");
}

#[test]
fn artifact_checksum_and_version_are_checked() {
    let bytes = strata::ir::artifact::write(&strata::examples::tiny_mlp()).unwrap();
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    assert!(load_err(&bad).contains("checksum"));
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&99u32.to_le_bytes());
    let e = load_err(&newer);
    assert!(e.contains("version 99") && e.contains("newer"), "{e}");
    assert!(load_err(&bytes[..40]).contains(".strata"));
}

#[test]
fn unsupported_operator_error_names_op_domain_opset_and_node() {
    let m =
        model(vec![node("NoSuchOp", &["x"], &["y"], vec![])], vec![vi("x", 1, &[1])], vec![vi("y", 1, &[1])], vec![]);
    let e = load_err(&m);
    assert!(e.contains("NoSuchOp_node") && e.contains("NoSuchOp") && e.contains("ai.onnx") && e.contains("21"), "{e}");
}

#[test]
fn session_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Session>();
    let _ = DType::F32;
}

#[test]
fn recursive_model_local_function_is_rejected() {
    let f = FunctionProto {
        name: "Loopy".into(),
        domain: "local".into(),
        input: vec!["a".into()],
        output: vec!["b".into()],
        node: vec![NodeProto {
            op_type: "Loopy".into(),
            domain: "local".into(),
            input: vec!["a".into()],
            output: vec!["b".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let m = ModelProto {
        ir_version: 10,
        opset_import: vec![
            OperatorSetIdProto { domain: String::new(), version: 21 },
            OperatorSetIdProto { domain: "local".into(), version: 1 },
        ],
        graph: Some(GraphProto {
            node: vec![NodeProto {
                op_type: "Loopy".into(),
                domain: "local".into(),
                name: "call".into(),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![vi("x", 1, &[1])],
            output: vec![vi("y", 1, &[1])],
            ..Default::default()
        }),
        functions: vec![f],
        ..Default::default()
    }
    .encode_to_vec();
    let e = load_err(&m);
    assert!(e.contains("recursively"), "{e}");
}
