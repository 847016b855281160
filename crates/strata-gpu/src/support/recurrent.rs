//! The recurrent layers RNN, GRU and LSTM: their attributes resolved once
//! ([`Recurrent::parse`], shared by the support check and the executor in
//! `graph/recurrent.rs`) and the support check.

use super::*;

/// Which cell a recurrent node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    Rnn,
    Gru { linear_before_reset: bool },
    Lstm { input_forget: bool },
}

impl Cell {
    /// Gate blocks stacked in `W` and `R` (RNN `i`, GRU `z r h`, LSTM `i o f c`).
    pub(crate) fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 3,
            Cell::Lstm { .. } => 4,
        }
    }

    fn default_activations(self) -> &'static [&'static str] {
        match self {
            Cell::Rnn => &["Tanh"],
            Cell::Gru { .. } => &["Sigmoid", "Tanh"],
            Cell::Lstm { .. } => &["Sigmoid", "Tanh", "Tanh"],
        }
    }
}

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
    /// Resolve the attributes of an RNN, GRU or LSTM node. Activation names
    /// are matched case-insensitively; `activation_alpha` /
    /// `activation_beta` values are consumed in order by the functions
    /// that take them, the ONNX defaults filling in when a list runs out;
    /// a bidirectional layer given one direction's list uses it for both.
    pub(crate) fn parse(o: &NnOp) -> Result<Recurrent, String> {
        let (cell, alphas, betas, names, clip, direction, hidden_size, layout) = match o {
            NnOp::RNN { activation_alpha, activation_beta, activations, clip, direction, hidden_size, layout } => {
                (Cell::Rnn, activation_alpha, activation_beta, activations, clip, direction, hidden_size, layout)
            }
            NnOp::GRU {
                activation_alpha,
                activation_beta,
                activations,
                clip,
                direction,
                hidden_size,
                layout,
                linear_before_reset,
            } => (
                Cell::Gru { linear_before_reset: *linear_before_reset != 0 },
                activation_alpha,
                activation_beta,
                activations,
                clip,
                direction,
                hidden_size,
                layout,
            ),
            NnOp::LSTM {
                activation_alpha,
                activation_beta,
                activations,
                clip,
                direction,
                hidden_size,
                layout,
                input_forget,
            } => (
                Cell::Lstm { input_forget: *input_forget != 0 },
                activation_alpha,
                activation_beta,
                activations,
                clip,
                direction,
                hidden_size,
                layout,
            ),
            other => return Err(format!("{} is not a recurrent layer", other.name())),
        };
        let (dirs, reverse) = match direction.as_str() {
            "forward" => (1, false),
            "reverse" => (1, true),
            "bidirectional" => (2, false),
            d => return Err(format!("unknown direction '{d}'")),
        };
        let batch_major = match layout {
            0 => false,
            1 => true,
            l => return Err(format!("layout must be 0 or 1, got {l}")),
        };
        if let Some(c) = clip
            && (c.is_nan() || *c < 0.0)
        {
            return Err(format!("clip must be non-negative, got {c}"));
        }
        let per_dir = cell.default_activations().len();
        let mut list: Vec<String> = match names {
            Some(n) => n.clone(),
            None => cell.default_activations().iter().map(|s| s.to_string()).collect(),
        };
        if list.len() == per_dir && dirs == 2 {
            list = [list.clone(), list].concat();
        }
        if list.len() != per_dir * dirs {
            return Err(format!("expected {} activation functions, got {}", per_dir * dirs, list.len()));
        }
        let mut alphas = alphas.as_deref().unwrap_or(&[]).iter().copied();
        let mut betas = betas.as_deref().unwrap_or(&[]).iter().copied();
        let mut codes = Vec::with_capacity(list.len());
        for name in &list {
            let mut alpha = |default: f32| alphas.next().unwrap_or(default);
            let code = match name.to_ascii_lowercase().as_str() {
                "relu" => (0, 0.0, 0.0),
                "tanh" => (1, 0.0, 0.0),
                "sigmoid" => (2, 0.0, 0.0),
                "affine" => {
                    let a = alpha(1.0);
                    (3, a, betas.next().unwrap_or(0.0))
                }
                "leakyrelu" => (4, alpha(0.01), 0.0),
                "thresholdedrelu" => (5, alpha(1.0), 0.0),
                "scaledtanh" => {
                    let a = alpha(1.0);
                    (6, a, betas.next().unwrap_or(1.0))
                }
                "hardsigmoid" => {
                    let a = alpha(0.2);
                    (7, a, betas.next().unwrap_or(0.5))
                }
                "elu" => (8, alpha(1.0), 0.0),
                "softsign" => (9, 0.0, 0.0),
                "softplus" => (10, 0.0, 0.0),
                other => return Err(format!("activation function '{other}' is not supported on the GPU")),
            };
            codes.push(code);
        }
        let acts = codes
            .chunks(per_dir)
            .map(|c| {
                let mut a = [(0, 0.0, 0.0); 3];
                a[..c.len()].copy_from_slice(c);
                a
            })
            .collect();
        Ok(Recurrent { cell, dirs, reverse, batch_major, clip: *clip, hidden_size: *hidden_size, acts })
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
