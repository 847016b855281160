//! Attributes are decoded into the IR's typed op fields at import: valid
//! ones arrive as enums, flags and parsed equations; invalid modes,
//! directions, flags and equations are import errors that name the node,
//! its operator and the attribute.

#[path = "attributes/legacy_opsets.rs"]
mod legacy_opsets;

use strata_ir::Op;
use strata_ir::ops::NnOp;
use strata_ir::ops::recurrent::{Activation, Cell, Direction};
use strata_ir::resample::{Coord, NearestMode, ResizeMode};
use strata_ir::window::AutoPad;
use strata_onnx::import::import_proto;
use strata_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TypeProto, TypeTensor, TypeValue,
    ValueInfoProto, attribute_type,
};

/// A float value of unknown shape (rank unknown at import).
fn float_value(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TypeTensor { elem_type: 1, shape: None })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn string_attr(name: &str, v: &str) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::STRING, s: v.as_bytes().to_vec(), ..Default::default() }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INT, i: v, ..Default::default() }
}

fn strings_attr(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRINGS,
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

/// A one-node model (opset 22) named `node` with float inputs and outputs.
fn one_node(op_type: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> ModelProto {
    let node = NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: "node".into(),
        op_type: op_type.into(),
        attribute: attrs,
        ..Default::default()
    };
    ModelProto {
        ir_version: 10,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 22 }],
        graph: Some(GraphProto {
            node: vec![node],
            name: "g".into(),
            input: inputs.iter().filter(|s| !s.is_empty()).map(|s| float_value(s)).collect(),
            output: outputs.iter().map(|s| float_value(s)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn the_op(m: &ModelProto) -> Op {
    let model = import_proto(m, None).expect("imports");
    model.graph(model.main).nodes[0].op.clone()
}

/// Import must fail with a message naming the node, the operator and every `parts`.
fn rejected(m: &ModelProto, parts: &[&str]) {
    let e = import_proto(m, None).expect_err("must be rejected").to_string();
    assert!(e.contains("node 'node'"), "{e}");
    assert!(e.contains(&format!("op '{}'", m.graph.as_ref().unwrap().node[0].op_type)), "{e}");
    for p in parts {
        assert!(e.contains(p), "expected {p:?} in: {e}");
    }
}

fn resize(attrs: Vec<AttributeProto>) -> ModelProto {
    one_node("Resize", &["x", "", "scales"], &["y"], attrs)
}

#[test]
fn resize_modes_are_enums() {
    let m = resize(vec![
        string_attr("mode", "linear"),
        string_attr("coordinate_transformation_mode", "align_corners"),
        int_attr("antialias", 1),
    ]);
    let Op::Nn(op) = the_op(&m) else { panic!("not an nn op") };
    let a = op.resize_attrs().expect("Resize");
    assert_eq!(a.mode, ResizeMode::Linear);
    assert_eq!(a.coordinate_transformation_mode, Coord::AlignCorners);
    assert_eq!(a.nearest_mode, NearestMode::RoundPreferFloor);
    assert!(a.antialias && !a.exclude_outside);
}

#[test]
fn invalid_resize_attributes_are_import_errors() {
    rejected(
        &resize(vec![string_attr("mode", "bilinear")]),
        &["attribute 'mode'", "'bilinear'", "nearest, linear, cubic"],
    );
    rejected(
        &resize(vec![string_attr("coordinate_transformation_mode", "half-pixel")]),
        &["attribute 'coordinate_transformation_mode'", "'half-pixel'", "half_pixel"],
    );
    rejected(&resize(vec![string_attr("nearest_mode", "round")]), &["attribute 'nearest_mode'", "'round'"]);
    rejected(
        &resize(vec![string_attr("keep_aspect_ratio_policy", "fit")]),
        &["attribute 'keep_aspect_ratio_policy'", "'fit'", "not_larger"],
    );
    rejected(&resize(vec![int_attr("exclude_outside", 2)]), &["attribute 'exclude_outside'", "expected 0 or 1"]);
}

fn lstm(attrs: Vec<AttributeProto>) -> ModelProto {
    one_node("LSTM", &["x", "w", "r"], &["y"], attrs)
}

#[test]
fn recurrent_attributes_are_decoded_once() {
    let m = lstm(vec![
        string_attr("direction", "bidirectional"),
        int_attr("hidden_size", 4),
        int_attr("input_forget", 1),
        strings_attr("activations", &["sigmoid", "TANH", "Relu"]),
    ]);
    let Op::Nn(op) = the_op(&m) else { panic!("not an nn op") };
    let a = op.recurrent_attrs().expect("LSTM");
    assert_eq!(
        (a.cell, a.direction, a.hidden_size),
        (Cell::Lstm { input_forget: true }, Direction::Bidirectional, Some(4))
    );
    // One direction's list serves both directions.
    assert_eq!(a.activations.len(), 2);
    assert_eq!(a.activations[1][2].kind, Activation::Relu);
}

#[test]
fn invalid_recurrent_attributes_are_import_errors() {
    rejected(
        &lstm(vec![string_attr("direction", "sideways")]),
        &["attribute 'direction'", "'sideways'", "bidirectional"],
    );
    rejected(
        &lstm(vec![strings_attr("activations", &["Sigmoid", "Gelu", "Tanh"])]),
        &["attribute 'activations'", "'Gelu'"],
    );
    rejected(
        &lstm(vec![strings_attr("activations", &["Sigmoid", "Tanh"])]),
        &["expected 3 activation functions, got 2"],
    );
    rejected(&lstm(vec![int_attr("layout", 2)]), &["layout must be 0 or 1, got 2"]);
    rejected(&lstm(vec![int_attr("input_forget", 3)]), &["attribute 'input_forget'", "expected 0 or 1"]);
    let gru = one_node("GRU", &["x", "w", "r"], &["y"], vec![string_attr("direction", "Forward")]);
    rejected(&gru, &["attribute 'direction'", "'Forward'"]);
}

#[test]
fn einsum_equations_are_parsed_at_import() {
    let m = one_node("Einsum", &["a", "b"], &["y"], vec![string_attr("equation", "ij, jk -> ik")]);
    let Op::Nn(NnOp::Einsum { equation }) = the_op(&m) else { panic!("not Einsum") };
    assert_eq!(equation.as_str(), "ij, jk -> ik");
    assert_eq!(equation.inputs().len(), 2);
    for (eq, why) in [
        ("ij,jk->iq", "output subscript 'q' does not appear in the inputs"),
        ("ij->ii", "output subscript 'i' appears more than once"),
        ("i2,jk->ik", "invalid character '2'"),
    ] {
        let m = one_node("Einsum", &["a", "b"], &["y"], vec![string_attr("equation", eq)]);
        rejected(&m, &["attribute 'equation'", why]);
    }
}

#[test]
fn auto_pad_and_pooling_flags_are_typed() {
    let pool = |attrs| one_node("MaxPool", &["x"], &["y"], attrs);
    let kernel = || AttributeProto {
        name: "kernel_shape".into(),
        r#type: attribute_type::INTS,
        ints: vec![2, 2],
        ..Default::default()
    };
    let m = pool(vec![kernel(), string_attr("auto_pad", "SAME_LOWER"), int_attr("ceil_mode", 1)]);
    let Op::Nn(NnOp::MaxPool { auto_pad, ceil_mode, .. }) = the_op(&m) else { panic!("not MaxPool") };
    assert_eq!((auto_pad, ceil_mode), (AutoPad::SameLower, true));
    rejected(&pool(vec![kernel(), string_attr("auto_pad", "SAME")]), &["attribute 'auto_pad'", "'SAME'", "SAME_UPPER"]);
}

#[test]
fn string_modes_of_elementwise_movement_scatter_and_loss_ops_are_enums() {
    use strata_ir::ops::elementwise::{GeluApprox, ShiftDirection};
    use strata_ir::ops::reduce::LossReduction;
    use strata_ir::ops::tensor::{BlockOrder, PadMode, ScatterReduction};
    use strata_ir::ops::{ElementwiseOp as E, ReduceOp as R, TensorOp as T};

    let op = |t: &str, ins: &[&str], attrs| the_op(&one_node(t, ins, &["y"], attrs));
    assert_eq!(
        op("Gelu", &["x"], vec![string_attr("approximate", "tanh")]),
        Op::Elementwise(E::Gelu { approximate: GeluApprox::Tanh })
    );
    assert_eq!(op("Gelu", &["x"], vec![]), Op::Elementwise(E::Gelu { approximate: GeluApprox::None }));
    assert_eq!(
        op("BitShift", &["x", "s"], vec![string_attr("direction", "RIGHT")]),
        Op::Elementwise(E::BitShift { direction: ShiftDirection::Right })
    );
    let Op::Tensor(T::Pad { mode, .. }) = op("Pad", &["x", "p"], vec![string_attr("mode", "wrap")]) else {
        panic!("not Pad")
    };
    assert_eq!(mode, PadMode::Wrap);
    let Op::Tensor(T::DepthToSpace { mode, .. }) =
        op("DepthToSpace", &["x"], vec![int_attr("blocksize", 2), string_attr("mode", "CRD")])
    else {
        panic!("not DepthToSpace")
    };
    assert_eq!(mode, BlockOrder::Crd);
    assert_eq!(
        op("ScatterND", &["x", "i", "u"], vec![string_attr("reduction", "max")]),
        Op::Tensor(T::ScatterND { reduction: ScatterReduction::Max })
    );
    let Op::Reduce(R::NegativeLogLikelihoodLoss { reduction, .. }) =
        op("NegativeLogLikelihoodLoss", &["x", "t"], vec![])
    else {
        panic!("not NegativeLogLikelihoodLoss")
    };
    assert_eq!(reduction, LossReduction::Mean);

    rejected(
        &one_node("Gelu", &["x"], &["y"], vec![string_attr("approximate", "fast")]),
        &["attribute 'approximate'", "'fast'", "none, tanh"],
    );
    rejected(
        &one_node("BitShift", &["x", "s"], &["y"], vec![string_attr("direction", "left")]),
        &["attribute 'direction'", "'left'", "LEFT, RIGHT"],
    );
    rejected(
        &one_node("Pad", &["x", "p"], &["y"], vec![string_attr("mode", "mirror")]),
        &["attribute 'mode'", "'mirror'", "constant, reflect, edge, wrap"],
    );
    rejected(
        &one_node("ScatterElements", &["x", "i", "u"], &["y"], vec![string_attr("reduction", "sum")]),
        &["attribute 'reduction'", "'sum'", "none, add, mul, max, min"],
    );
    rejected(
        &one_node("SoftmaxCrossEntropyLoss", &["x", "t"], &["y"], vec![string_attr("reduction", "avg")]),
        &["attribute 'reduction'", "'avg'", "none, sum, mean"],
    );
    rejected(
        &one_node("SpaceToDepth", &["x"], &["y"], vec![int_attr("blocksize", 2), string_attr("mode", "RDC")]),
        &["attribute 'mode'", "'RDC'", "DCR, CRD"],
    );
}

#[test]
fn grid_sample_and_upsample_modes_are_enums_with_their_old_spellings() {
    use strata_ir::resample::{SampleMode, SamplePadding, UpsampleMode};
    let op = |t: &str, ins: &[&str], attrs| the_op(&one_node(t, ins, &["y"], attrs));
    let Op::Nn(NnOp::GridSample { mode, padding_mode, .. }) =
        op("GridSample", &["x", "g"], vec![string_attr("mode", "bicubic"), string_attr("padding_mode", "border")])
    else {
        panic!("not GridSample")
    };
    assert_eq!((mode, padding_mode), (SampleMode::Cubic, SamplePadding::Border));
    let Op::Nn(NnOp::GridSample { mode, padding_mode, .. }) = op("GridSample", &["x", "g"], vec![]) else {
        panic!("not GridSample")
    };
    assert_eq!((mode, padding_mode), (SampleMode::Linear, SamplePadding::Zeros));
    rejected(
        &one_node("GridSample", &["x", "g"], &["y"], vec![string_attr("padding_mode", "wrap")]),
        &["attribute 'padding_mode'", "'wrap'", "zeros, border, reflection"],
    );
    let upsample = |mode: &str| {
        let mut m = one_node("Upsample", &["x", "s"], &["y"], vec![string_attr("mode", mode)]);
        m.opset_import[0].version = 9;
        m
    };
    let Op::Nn(NnOp::Upsample { mode, .. }) = the_op(&upsample("bilinear")) else { panic!("not Upsample") };
    assert_eq!(mode, UpsampleMode::Linear);
    rejected(&upsample("cubic"), &["attribute 'mode'", "'cubic'", "nearest, linear"]);
    rejected(
        &one_node("StringNormalizer", &["x"], &["y"], vec![string_attr("case_change_action", "lower")]),
        &["attribute 'case_change_action'", "'lower'", "NONE, LOWER, UPPER"],
    );
}
