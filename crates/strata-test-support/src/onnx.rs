//! ONNX models built in code from `strata-onnx`'s protobuf structs.
//!
//! Element types are the ONNX `TensorProto.DataType` numbers (1 = float,
//! 7 = int64, 9 = bool); a negative dimension is the symbolic dimension `n`.

use prost::Message;
use strata_ir::{HostValue, TensorData};
use strata_onnx::proto::*;

/// ONNX opset of the default domain that [`model`] imports.
pub const OPSET: i64 = 21;

/// A tensor type of element type `elem` and dimensions `dims` (a negative
/// dimension is the symbolic `n`).
pub fn tensor_type(elem: i32, dims: &[i64]) -> TypeProto {
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

/// A named value of a tensor type (see [`tensor_type`]).
pub fn vi(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto { name: name.into(), r#type: Some(tensor_type(elem, dims)), doc_string: String::new() }
}

/// A node of operator `op`, named `{op}_node`.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: format!("{op}_node"),
        op_type: op.into(),
        attribute: attrs,
        ..Default::default()
    }
}

/// The encoded bytes of a model (IR version 10, default-domain opset
/// [`OPSET`]) whose main graph `g` holds `nodes`, `inputs`, `outputs` and
/// the initializers `inits`.
pub fn model(
    nodes: Vec<NodeProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
) -> Vec<u8> {
    model_at(OPSET, nodes, inputs, outputs, inits)
}

/// As [`model`], importing default-domain opset `opset` (IR version 3 below
/// opset 7, as the files of those opsets were written).
pub fn model_at(
    opset: i64,
    nodes: Vec<NodeProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
) -> Vec<u8> {
    ModelProto {
        ir_version: if opset < 7 { 3 } else { 10 },
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
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

/// A float32 initializer `name` of dimensions `dims` holding `v`.
pub fn f32_init(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto { dims: dims.to_vec(), data_type: 1, float_data: v.to_vec(), name: name.into(), ..Default::default() }
}

/// An int64 initializer `name` of dimensions `dims` holding `v`.
pub fn i64_init(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto { dims: dims.to_vec(), data_type: 7, int64_data: v.to_vec(), name: name.into(), ..Default::default() }
}

/// An integer attribute.
pub fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INT, i: v, ..Default::default() }
}

/// A float attribute.
pub fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::FLOAT, f: v, ..Default::default() }
}

/// A float-list attribute.
pub fn floats_attr(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::FLOATS, floats: v.to_vec(), ..Default::default() }
}

/// An integer-list attribute.
pub fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INTS, ints: v.to_vec(), ..Default::default() }
}

/// A float32 tensor value of `shape` holding `v`.
pub fn f32s(shape: Vec<usize>, v: &[f32]) -> HostValue {
    HostValue::Tensor(TensorData::from_f32(shape, v).unwrap())
}

/// An int64 tensor value of `shape` holding `v`.
pub fn i64s(shape: Vec<usize>, v: &[i64]) -> HostValue {
    HostValue::Tensor(TensorData::from_i64(shape, v).unwrap())
}

/// Protobuf field `field` (length-delimited) holding `bytes`.
pub fn pb_field(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    prost::encoding::encode_key(field, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// Encoded `If` node (cond `c`, output `out`) whose then-branch is the
/// encoded graph `then_graph` and whose else-branch is `Identity(x)`.
pub fn if_node_bytes(out: &str, then_graph: &[u8]) -> Vec<u8> {
    let else_graph = GraphProto {
        node: vec![node("Identity", &["x"], &["e"], vec![])],
        name: "else".into(),
        output: vec![vi("e", 1, &[1])],
        ..Default::default()
    };
    let else_attr = AttributeProto { name: "else_branch".into(), r#type: 5, g: Some(else_graph), ..Default::default() };
    let then_attr = AttributeProto { name: "then_branch".into(), r#type: 5, ..Default::default() };
    let mut n = node("If", &["c"], &[out], vec![else_attr]).encode_to_vec();
    // NodeProto.attribute = 5, AttributeProto.g = 6.
    n.extend(pb_field(5, &[then_attr.encode_to_vec(), pb_field(6, then_graph)].concat()));
    n
}

/// An ONNX model whose `If` nodes nest `depth` levels deep through their
/// then-branches, encoded level by level (building it needs no recursion).
/// Inputs `c` (bool scalar) and `x` (float32[1]); output `y` is `x`.
pub fn nested_if_model(depth: usize) -> Vec<u8> {
    let mut graph = GraphProto {
        node: vec![node("Identity", &["x"], &["t"], vec![])],
        name: "leaf".into(),
        output: vec![vi("t", 1, &[1])],
        ..Default::default()
    }
    .encode_to_vec();
    for level in 1..depth {
        let out = format!("o{level}");
        let wrapper = GraphProto { name: format!("g{level}"), output: vec![vi(&out, 1, &[1])], ..Default::default() };
        // GraphProto.node = 1.
        graph = [wrapper.encode_to_vec(), pb_field(1, &if_node_bytes(&out, &graph))].concat();
    }
    let top = GraphProto {
        name: "main".into(),
        input: vec![vi("c", 9, &[]), vi("x", 1, &[1])],
        output: vec![vi("y", 1, &[1])],
        ..Default::default()
    };
    let top = [top.encode_to_vec(), pb_field(1, &if_node_bytes("y", &graph))].concat();
    let m = ModelProto {
        ir_version: 10,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        ..Default::default()
    };
    // ModelProto.graph = 7.
    [m.encode_to_vec(), pb_field(7, &top)].concat()
}

/// `Loop(m, cond, v)` whose body passes its condition and value through
/// unchanged, so it runs until its trip count `m`.
pub fn endless_loop_model() -> Vec<u8> {
    let body = GraphProto {
        name: "body".into(),
        node: vec![
            node("Identity", &["cond_in"], &["cond_out"], vec![]),
            node("Identity", &["v_in"], &["v_out"], vec![]),
        ],
        input: vec![vi("i", 7, &[]), vi("cond_in", 9, &[]), vi("v_in", 1, &[1])],
        output: vec![vi("cond_out", 9, &[]), vi("v_out", 1, &[1])],
        ..Default::default()
    };
    let body_attr = AttributeProto { name: "body".into(), r#type: 5, g: Some(body), ..Default::default() };
    model(
        vec![node("Loop", &["m", "cond", "v"], &["y"], vec![body_attr])],
        vec![vi("m", 7, &[]), vi("cond", 9, &[]), vi("v", 1, &[1])],
        vec![vi("y", 1, &[1])],
        vec![],
    )
}

/// `y = Add(x, w)` whose initializer `w` declares 10^12 float32 elements
/// but holds 16 bytes: refused at load, without allocating.
pub fn huge_declared_tensor_model() -> Vec<u8> {
    let big = TensorProto {
        dims: vec![1_000_000, 1_000_000],
        data_type: 1,
        name: "w".into(),
        raw_data: Some(vec![0; 16]),
        ..Default::default()
    };
    model(vec![node("Add", &["x", "w"], &["y"], vec![])], vec![vi("x", 1, &[1])], vec![vi("y", 1, &[1])], vec![big])
}

/// `y = ConstantOfShape(shape)`, `shape` an int64[2] input: a tensor as large
/// as its input asks, computed at run time.
pub fn constant_of_shape_model() -> Vec<u8> {
    model(
        vec![node("ConstantOfShape", &["shape"], &["y"], vec![])],
        vec![vi("shape", 7, &[2])],
        vec![vi("y", 1, &[-1, -1])],
        vec![],
    )
}

/// A chain of `n` unnamed `op` nodes from `x` to `y`, both float32 of
/// dimensions `dims`.
pub fn chain_model(op: &str, n: usize, dims: &[i64]) -> Vec<u8> {
    let nodes: Vec<NodeProto> = (0..n)
        .map(|i| {
            let a = if i == 0 { "x".to_string() } else { format!("v{i}") };
            let b = if i + 1 == n { "y".to_string() } else { format!("v{}", i + 1) };
            NodeProto { input: vec![a], output: vec![b], op_type: op.into(), ..Default::default() }
        })
        .collect();
    model(nodes, vec![vi("x", 1, dims)], vec![vi("y", 1, dims)], vec![])
}
