//! The attributes of the recurrent layers RNN, GRU and LSTM, decoded once
//! ([`NnOp::recurrent_attrs`], checked at import) into what every backend
//! runs: the cell, the direction(s), the layout and, per direction, the
//! activation functions with their parameters.

use serde::{Deserialize, Serialize};

use super::NnOp;
use crate::attr::{AttrType, AttrValue};

crate::attr::attr_enum! {
    /// The `direction` attribute of RNN, GRU and LSTM.
    pub enum Direction {
        Forward = "forward",
        Reverse = "reverse",
        Bidirectional = "bidirectional",
    }
}

impl Direction {
    /// 1, or 2 for a bidirectional layer.
    pub fn num_directions(&self) -> usize {
        match self {
            Direction::Bidirectional => 2,
            Direction::Forward | Direction::Reverse => 1,
        }
    }

    /// Whether direction `d` (0 or 1) walks the sequence from its end: the
    /// only direction of a reverse layer, the second of a bidirectional one.
    pub fn runs_reverse(&self, d: usize) -> bool {
        *self == Direction::Reverse || d == 1
    }
}

/// An activation function a recurrent layer may name (matched
/// case-insensitively, as ONNX runtimes do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    Relu,
    Tanh,
    Sigmoid,
    /// `alpha * x + beta`
    Affine,
    LeakyRelu,
    ThresholdedRelu,
    /// `alpha * tanh(beta * x)`
    ScaledTanh,
    HardSigmoid,
    Elu,
    Softsign,
    Softplus,
}

impl Activation {
    /// Every activation, in declaration order.
    pub const ALL: &'static [Activation] = &[
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Affine,
        Activation::LeakyRelu,
        Activation::ThresholdedRelu,
        Activation::ScaledTanh,
        Activation::HardSigmoid,
        Activation::Elu,
        Activation::Softsign,
        Activation::Softplus,
    ];

    /// The ONNX spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::Tanh => "Tanh",
            Activation::Sigmoid => "Sigmoid",
            Activation::Affine => "Affine",
            Activation::LeakyRelu => "LeakyRelu",
            Activation::ThresholdedRelu => "ThresholdedRelu",
            Activation::ScaledTanh => "ScaledTanh",
            Activation::HardSigmoid => "HardSigmoid",
            Activation::Elu => "Elu",
            Activation::Softsign => "Softsign",
            Activation::Softplus => "Softplus",
        }
    }

    /// The activation named `s`, ignoring ASCII case.
    pub fn from_name(s: &str) -> Option<Activation> {
        Activation::ALL.iter().copied().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// Default `(alpha, beta)` of the functions that take them, in the
    /// order they consume `activation_alpha` / `activation_beta`.
    fn defaults(self) -> (Option<f64>, Option<f64>) {
        match self {
            Activation::Affine => (Some(1.0), Some(0.0)),
            Activation::LeakyRelu => (Some(0.01), None),
            Activation::ThresholdedRelu | Activation::Elu => (Some(1.0), None),
            Activation::ScaledTanh => (Some(1.0), Some(1.0)),
            Activation::HardSigmoid => (Some(0.2), Some(0.5)),
            _ => (None, None),
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AttrType for Vec<Activation> {
    fn from_attr(v: &AttrValue) -> Result<Self, String> {
        <Vec<String>>::from_attr(v)?
            .iter()
            .map(|s| Activation::from_name(s).ok_or_else(|| format!("unknown activation function '{s}'")))
            .collect()
    }
}

/// An activation function with its parameters (0 where it takes none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationFn {
    pub kind: Activation,
    pub alpha: f64,
    pub beta: f64,
}

/// Which cell a recurrent layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Rnn,
    Gru { linear_before_reset: bool },
    Lstm { input_forget: bool },
}

impl Cell {
    /// Gate blocks stacked in `W` and `R` (RNN `i`, GRU `z r h`, LSTM `i o f c`).
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 3,
            Cell::Lstm { .. } => 4,
        }
    }

    /// The activations of one direction when none are given (f, g, h as
    /// the cell uses them); their number is the number each direction takes.
    pub fn default_activations(self) -> &'static [Activation] {
        match self {
            Cell::Rnn => &[Activation::Tanh],
            Cell::Gru { .. } => &[Activation::Sigmoid, Activation::Tanh],
            Cell::Lstm { .. } => &[Activation::Sigmoid, Activation::Tanh, Activation::Tanh],
        }
    }
}

/// The decoded attributes of an RNN, GRU or LSTM node.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentAttrs {
    pub cell: Cell,
    pub direction: Direction,
    /// The `hidden_size` attribute, if given (it must match `R`).
    pub hidden_size: Option<usize>,
    /// `layout` 1: batch-major `X`, `Y` and states.
    pub batch_major: bool,
    /// Bound of every activation's input (`[-clip, clip]`); non-negative.
    pub clip: Option<f32>,
    /// Per direction, the cell's activations with their parameters.
    pub activations: Vec<Vec<ActivationFn>>,
}

impl RecurrentAttrs {
    /// Number of directions (1 or 2).
    pub fn num_directions(&self) -> usize {
        self.direction.num_directions()
    }

    /// Whether every activation is the cell's default one.
    pub fn default_activations(&self) -> bool {
        let d = self.cell.default_activations();
        self.activations.iter().all(|acts| acts.iter().map(|a| a.kind).eq(d.iter().copied()))
    }
}

/// Resolve activation names and their parameters: `activation_alpha` /
/// `activation_beta` values are consumed in order by the functions that
/// take them, the ONNX defaults filling in when a list runs out; a
/// bidirectional layer given one direction's list uses it for both.
fn decode_activations(
    cell: Cell,
    dirs: usize,
    names: Option<&[Activation]>,
    alphas: Option<&[f32]>,
    betas: Option<&[f32]>,
) -> Result<Vec<Vec<ActivationFn>>, String> {
    let per_dir = cell.default_activations().len();
    let mut list: Vec<Activation> = names.unwrap_or(cell.default_activations()).to_vec();
    if list.len() == per_dir && dirs == 2 {
        list = [list.clone(), list].concat();
    }
    if list.len() != per_dir * dirs {
        return Err(format!("expected {} activation functions, got {}", per_dir * dirs, list.len()));
    }
    let mut alphas = alphas.unwrap_or(&[]).iter().map(|&a| a as f64);
    let mut betas = betas.unwrap_or(&[]).iter().map(|&b| b as f64);
    let fns: Vec<ActivationFn> = list
        .into_iter()
        .map(|kind| {
            let (da, db) = kind.defaults();
            let alpha = da.map_or(0.0, |d| alphas.next().unwrap_or(d));
            let beta = db.map_or(0.0, |d| betas.next().unwrap_or(d));
            ActivationFn { kind, alpha, beta }
        })
        .collect();
    Ok(fns.chunks(per_dir).map(<[ActivationFn]>::to_vec).collect())
}

impl NnOp {
    /// The decoded attributes of RNN, GRU or LSTM (an error for any other
    /// operator, or for attributes that do not fit together).
    pub fn recurrent_attrs(&self) -> Result<RecurrentAttrs, String> {
        let cell = match self {
            NnOp::RNN { .. } => Cell::Rnn,
            NnOp::GRU { linear_before_reset, .. } => Cell::Gru { linear_before_reset: *linear_before_reset },
            NnOp::LSTM { input_forget, .. } => Cell::Lstm { input_forget: *input_forget },
            other => return Err(format!("{} is not a recurrent layer", other.name())),
        };
        let (NnOp::RNN { activation_alpha, activation_beta, activations, clip, direction, hidden_size, layout }
        | NnOp::GRU {
            activation_alpha, activation_beta, activations, clip, direction, hidden_size, layout, ..
        }
        | NnOp::LSTM {
            activation_alpha, activation_beta, activations, clip, direction, hidden_size, layout, ..
        }) = self
        else {
            return Err(format!("{} is not a recurrent layer", self.name()));
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
        let hidden_size = match hidden_size {
            None => None,
            Some(h) => Some(usize::try_from(*h).map_err(|_| format!("hidden_size must not be negative, got {h}"))?),
        };
        let activations = decode_activations(
            cell,
            direction.num_directions(),
            activations.as_deref(),
            activation_alpha.as_deref(),
            activation_beta.as_deref(),
        )?;
        Ok(RecurrentAttrs { cell, direction: *direction, hidden_size, batch_major, clip: *clip, activations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gru(direction: Direction, names: Option<Vec<Activation>>, alphas: Option<Vec<f32>>) -> NnOp {
        NnOp::GRU {
            activation_alpha: alphas,
            activation_beta: None,
            activations: names,
            clip: None,
            direction,
            hidden_size: Some(3),
            layout: 0,
            linear_before_reset: true,
        }
    }

    #[test]
    fn defaults_and_one_list_for_both_directions() {
        let a = gru(Direction::Bidirectional, None, None).recurrent_attrs().unwrap();
        assert_eq!(a.num_directions(), 2);
        assert!(a.default_activations());
        let names = vec![Activation::LeakyRelu, Activation::HardSigmoid];
        let a = gru(Direction::Bidirectional, Some(names), Some(vec![0.5])).recurrent_attrs().unwrap();
        assert_eq!(a.activations.len(), 2);
        // The one alpha goes to the first function that takes one; the rest default.
        assert_eq!(a.activations[0][0], ActivationFn { kind: Activation::LeakyRelu, alpha: 0.5, beta: 0.0 });
        assert_eq!(a.activations[0][1], ActivationFn { kind: Activation::HardSigmoid, alpha: 0.2, beta: 0.5 });
        assert_eq!(a.activations[1][0].alpha, 0.01);
        assert!(!a.default_activations());
    }

    #[test]
    fn inconsistent_attributes_are_errors() {
        let e = gru(Direction::Forward, Some(vec![Activation::Tanh]), None).recurrent_attrs().unwrap_err();
        assert!(e.contains("expected 2 activation functions, got 1"), "{e}");
        let e = <Vec<Activation>>::from_attr(&AttrValue::Strings(vec!["tanh".into(), "Swish".into()])).unwrap_err();
        assert!(e.contains("'Swish'"), "{e}");
        assert_eq!(Activation::from_name("sIgMoId"), Some(Activation::Sigmoid));
        let e = Direction::from_attr(&AttrValue::String("sideways".into())).unwrap_err();
        assert!(e.contains("'sideways'") && e.contains("bidirectional"), "{e}");
    }
}
