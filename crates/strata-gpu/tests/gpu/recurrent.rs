//! RNN, GRU and LSTM on the GPU against the reference backend, over what
//! the ONNX node cases leave out: both layouts with every optional input,
//! sequence_lens with zero and partial lengths in both directions, clip,
//! input_forget, GRU linear_before_reset, non-default activations with
//! their alpha/beta, missing outputs and an empty sequence.
//!
//! Without a GPU adapter the tests fail when `CI` is set and are skipped
//! with a loud message otherwise.

use super::{Builder, Tol, backend, check_runs, data};

use strata_ir::ops::NnOp;
use strata_ir::{DType, Model, NodeId, Op, TensorData, ValueType};

/// Where an operand of the node comes from.
enum Src {
    /// A graph input, fed at run time.
    Input(TensorData),
    /// An initializer.
    Weight(TensorData),
    Absent,
}

/// One recurrent node: operands in ONNX order, outputs wanted (Y, Y_h, Y_c).
fn model(op: NnOp, operands: Vec<Src>, wanted: &[bool]) -> (Model, Vec<TensorData>) {
    let mut b = Builder::new();
    let mut inputs = Vec::new();
    let mut node_ins = Vec::new();
    for (i, s) in operands.into_iter().enumerate() {
        let name = format!("in{i}");
        match s {
            Src::Input(t) => {
                b.input(&name, t.dtype());
                inputs.push(t);
            }
            Src::Weight(t) => {
                b.weight_typed(&name, ValueType::tensor(t.dtype()), t);
            }
            Src::Absent => {
                node_ins.push(String::new());
                continue;
            }
        }
        node_ins.push(name);
    }
    let outs: Vec<String> =
        wanted.iter().enumerate().map(|(k, &w)| if w { format!("out{k}") } else { String::new() }).collect();
    let ins: Vec<&str> = node_ins.iter().map(String::as_str).collect();
    let out_names: Vec<&str> = outs.iter().map(String::as_str).collect();
    b.node_named("rec", Op::Nn(op), &ins, &out_names);
    for name in out_names.iter().filter(|n| !n.is_empty()) {
        b.output(name);
    }
    (b.opset(22).build(), inputs)
}

/// Run on the GPU (twice: the second run reuses pooled buffers) and on
/// the reference; every output must agree within `atol + rtol * |ref|`.
fn check(model: Model, inputs: Vec<TensorData>, atol: f64, rtol: f64) {
    check_runs(model, &inputs, Tol { atol, rtol }, 2);
}

fn i32s(v: &[i128]) -> TensorData {
    TensorData::from_i128(DType::I32, vec![v.len()], v).expect("valid")
}

fn lstm(direction: &str, layout: i64, clip: Option<f32>, input_forget: i64) -> NnOp {
    NnOp::LSTM {
        activation_alpha: None,
        activation_beta: None,
        activations: None,
        clip,
        direction: strata_ir::ops::recurrent::Direction::from_name(direction).expect("direction"),
        hidden_size: Some(5),
        layout,
        input_forget: input_forget != 0,
    }
}

/// Operands of a layer with `gates` gate blocks: X [seq, batch, input]
/// (or [batch, seq, input] for layout 1), every optional operand present.
fn operands(gates: usize, dirs: usize, seq: usize, batch: usize, layout: i64, lens: &[i128], lstm: bool) -> Vec<Src> {
    let (input, hidden) = (3, 5);
    let x = if layout == 0 { [seq, batch, input] } else { [batch, seq, input] };
    let state = if layout == 0 { [dirs, batch, hidden] } else { [batch, dirs, hidden] };
    let mut v = vec![
        Src::Input(data(&x, 1, -1.5, 1.5)),
        Src::Weight(data(&[dirs, gates * hidden, input], 2, -0.6, 0.6)),
        Src::Weight(data(&[dirs, gates * hidden, hidden], 3, -0.6, 0.6)),
        Src::Weight(data(&[dirs, 2 * gates * hidden], 4, -0.4, 0.4)),
        Src::Weight(i32s(lens)),
        Src::Input(data(&state, 5, -1.0, 1.0)),
    ];
    if lstm {
        v.push(Src::Input(data(&state, 6, -1.0, 1.0)));
        v.push(Src::Weight(data(&[dirs, 3 * hidden], 7, -0.5, 0.5)));
    }
    v
}

const ATOL: f64 = 2e-5;
const RTOL: f64 = 2e-5;

#[test]
fn lstm_every_operand_both_layouts_and_lengths() {
    for layout in [0, 1] {
        for (direction, dirs) in [("forward", 1), ("reverse", 1), ("bidirectional", 2)] {
            let ops = operands(4, dirs, 4, 3, layout, &[4, 0, 2], true);
            let (m, ins) = model(lstm(direction, layout, None, 0), ops, &[true, true, true]);
            check(m, ins, ATOL, RTOL);
        }
    }
}

#[test]
fn lstm_clip_and_input_forget() {
    let ops = operands(4, 2, 5, 2, 0, &[5, 3], true);
    let (m, ins) = model(lstm("bidirectional", 0, Some(0.7), 1), ops, &[true, true, true]);
    check(m, ins, ATOL, RTOL);
}

#[test]
fn lstm_missing_outputs_and_operands() {
    // Only Y_c wanted; no B, sequence_lens, initial states or peepholes.
    let mut ops = operands(4, 1, 3, 2, 0, &[3, 3], true);
    for i in [3, 4, 5, 6, 7] {
        ops[i] = Src::Absent;
    }
    let (m, ins) = model(lstm("forward", 0, None, 0), ops, &[false, false, true]);
    check(m, ins, ATOL, RTOL);
    // Only Y_h, of layout 1.
    let ops = operands(4, 2, 3, 2, 1, &[1, 3], true);
    let (m, ins) = model(lstm("bidirectional", 1, None, 0), ops, &[false, true]);
    check(m, ins, ATOL, RTOL);
}

#[test]
fn gru_linear_before_reset_layouts_and_activations() {
    for lbr in [0, 1] {
        for layout in [0, 1] {
            let op = NnOp::GRU {
                activation_alpha: Some(vec![0.3]),
                activation_beta: Some(vec![0.4, 0.9]),
                activations: Some(vec![
                    strata_ir::ops::recurrent::Activation::HardSigmoid,
                    strata_ir::ops::recurrent::Activation::ScaledTanh,
                    strata_ir::ops::recurrent::Activation::Sigmoid,
                    strata_ir::ops::recurrent::Activation::Softsign,
                ]),
                clip: None,
                direction: strata_ir::ops::recurrent::Direction::Bidirectional,
                hidden_size: Some(5),
                layout,
                linear_before_reset: lbr != 0,
            };
            let ops = operands(3, 2, 4, 3, layout, &[2, 4, 0], false);
            let (m, ins) = model(op, ops, &[true, true]);
            check(m, ins, ATOL, RTOL);
        }
    }
}

#[test]
fn rnn_activations_with_alpha_and_beta() {
    let pairs: [(&str, &str); 4] =
        [("Relu", "LeakyRelu"), ("Affine", "ThresholdedRelu"), ("Elu", "Softplus"), ("Tanh", "Sigmoid")];
    for (a, b) in pairs {
        let op = NnOp::RNN {
            activation_alpha: Some(vec![0.2, 0.5]),
            activation_beta: Some(vec![0.1]),
            activations: Some(vec![
                strata_ir::ops::recurrent::Activation::from_name(a).expect("name"),
                strata_ir::ops::recurrent::Activation::from_name(b).expect("name"),
            ]),
            clip: Some(2.5),
            direction: strata_ir::ops::recurrent::Direction::Bidirectional,
            hidden_size: None,
            layout: 0,
        };
        let ops = operands(1, 2, 3, 2, 0, &[3, 1], false);
        let (m, ins) = model(op, ops, &[true, true]);
        check(m, ins, ATOL, RTOL);
    }
}

#[test]
fn empty_sequence_gives_zero_states() {
    let mut ops = operands(4, 1, 0, 2, 0, &[0, 0], true);
    ops[4] = Src::Absent;
    let (m, ins) = model(lstm("forward", 0, None, 0), ops, &[true, true, true]);
    check(m, ins, ATOL, RTOL);
}

#[test]
fn inconsistent_activations_have_a_reason() {
    let Some(b) = backend() else { return };
    let op = NnOp::RNN {
        activation_alpha: None,
        activation_beta: None,
        activations: Some(vec![
            strata_ir::ops::recurrent::Activation::Relu,
            strata_ir::ops::recurrent::Activation::Tanh,
        ]),
        clip: None,
        direction: strata_ir::ops::recurrent::Direction::Forward,
        hidden_size: None,
        layout: 0,
    };
    let (m, _) = model(op, operands(1, 1, 2, 1, 0, &[2], false), &[true, true]);
    let why = b.supports(&m, m.main, NodeId(0)).expect_err("refused");
    assert!(why.contains("expected 1 activation functions, got 2"), "{why}");
}
