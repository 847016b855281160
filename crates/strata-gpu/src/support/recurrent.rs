//! The recurrent layers RNN, GRU and LSTM: their attributes (decoded once in
//! the IR, turned into kernel codes by [`Recurrent::parse`], shared by the
//! support check and the executor in `graph/recurrent.rs`) and the support
//! check.

use super::*;

pub(crate) use strata_ir::ops::recurrent::Cell;
use strata_ir::ops::recurrent::{Activation, Direction};

/// A recurrent node's attributes, checked.
#[derive(Debug, Clone)]
pub(crate) struct Recurrent {
    pub cell: Cell,
    /// 1 or 2 (bidirectional).
    pub dirs: usize,
    /// `direction` is "reverse" (a bidirectional layer's second direction
    /// always runs in reverse).
    pub reverse: bool,
    /// `layout` 1: batch-major inputs and outputs.
    pub batch_major: bool,
    pub clip: Option<f32>,
    pub hidden_size: Option<i64>,
    /// Per direction, per activation slot (f, g, h as the cell uses them):
    /// the `recurrent.wgsl` code and its alpha and beta.
    pub acts: Vec<[(u32, f32, f32); 3]>,
}

impl Recurrent {
    /// The attributes of an RNN, GRU or LSTM node, decoded by the IR
    /// (`NnOp::recurrent_attrs`), as `recurrent.wgsl` codes.
    pub(crate) fn parse(o: &NnOp) -> Result<Recurrent, String> {
        let a = o.recurrent_attrs()?;
        let code = |k: Activation| match k {
            Activation::Relu => 0,
            Activation::Tanh => 1,
            Activation::Sigmoid => 2,
            Activation::Affine => 3,
            Activation::LeakyRelu => 4,
            Activation::ThresholdedRelu => 5,
            Activation::ScaledTanh => 6,
            Activation::HardSigmoid => 7,
            Activation::Elu => 8,
            Activation::Softsign => 9,
            Activation::Softplus => 10,
        };
        let acts = a
            .activations
            .iter()
            .map(|fns| {
                let mut slots = [(0, 0.0, 0.0); 3];
                for (slot, f) in slots.iter_mut().zip(fns) {
                    *slot = (code(f.kind), f.alpha as f32, f.beta as f32);
                }
                slots
            })
            .collect();
        Ok(Recurrent {
            cell: a.cell,
            dirs: a.num_directions(),
            reverse: a.direction == Direction::Reverse,
            batch_major: a.batch_major,
            clip: a.clip,
            hidden_size: a.hidden_size.map(|h| h as i64),
            acts,
        })
    }
}

/// RNN, GRU and LSTM: float inputs (X, W, R, B, initial_h, initial_c, P),
/// integer sequence_lens. Pipelines: 0 `copy_strided` (initial and final
/// states), 1 `matmul` (input projection), 2 `recurrent_step`.
pub(super) fn check(v: &NodeView, o: &NnOp) -> Result<Vec<Spec>, String> {
    let rec = Recurrent::parse(o)?;
    for (i, what) in [(0, "X"), (1, "W"), (2, "R")] {
        v.float(i).map_err(|e| format!("{what}: {e}"))?;
    }
    let lstm = matches!(rec.cell, Cell::Lstm { .. });
    let mut optional = vec![(3, "B"), (5, "initial_h")];
    if lstm {
        optional.extend([(6, "initial_c"), (7, "P")]);
    }
    for (i, what) in optional {
        if v.input(i).is_some() {
            v.float(i).map_err(|e| format!("{what}: {e}"))?;
        }
    }
    if v.input(4).is_some() {
        match v.dt(4)? {
            DType::I32 | DType::I64 => {}
            d => return Err(format!("sequence_lens of type {d}")),
        }
    }
    for i in 0..3 {
        match v.rank(i) {
            Some(3) | None => {}
            Some(r) => return Err(format!("input {i} of rank {r}; RNN/GRU/LSTM inputs X, W, R have rank 3")),
        }
    }
    Ok(vec![copy_spec(), (Shader::Matmul, "matmul", vec![]), (Shader::Recurrent, "recurrent_step", vec![])])
}
