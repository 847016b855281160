//! Operators with typed attributes, one module per op family.
//!
//! Each family is one enum declared with [`op_family!`]: a variant per
//! operator, a field per attribute (with its default). Adding an operator
//! means adding one variant here and one kernel in each backend that runs it.
//! Variant names are the operator names of the IR; importers map their own
//! operator names (and opset versions) onto them.
//!
//! Fields hold decoded semantics, not raw ONNX values: string modes are
//! enums (for example [`crate::window::AutoPad`], [`recurrent::Direction`],
//! the Resize modes of [`crate::resample`]), 0/1 flags are `bool`, an
//! Einsum equation is a parsed [`crate::einsum::Equation`]. Each is
//! decoded and checked by its [`crate::attr::AttrType`] when the operator
//! is parsed, and checks that span several attributes (the recurrent
//! layers' [`RecurrentAttrs`]) run in [`Op::check`], so an invalid
//! attribute is an import error naming the node.

use serde::{Deserialize, Serialize};

use crate::attr::AttrReader;
use crate::types::GraphId;

/// Declares an op family enum with typed attributes and its parser.
///
/// A field `name: T = default` is optional with that default; `name: T`
/// is required unless `T` is an `Option`.
#[macro_export]
macro_rules! op_family {
    (
        $(#[$fm:meta])*
        pub enum $Family:ident {
            $(
                $(#[$vm:meta])*
                $Var:ident { $( $field:ident : $ty:ty $(= $default:expr)? ),* $(,)? }
            ),* $(,)?
        }
    ) => {
        $(#[$fm])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[allow(clippy::upper_case_acronyms, non_snake_case)]
        pub enum $Family {
            $( $(#[$vm])* $Var { $( $field : $ty ),* } ),*
        }

        #[allow(non_snake_case)]
        impl $Family {
            /// Names of all operators of this family.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($Var)),*];

            /// The operator's name.
            pub fn name(&self) -> &'static str {
                match self { $( Self::$Var { .. } => stringify!($Var) ),* }
            }

            /// Build the operator `name` from its attributes; `None` if this
            /// family has no operator of that name.
            #[allow(unused_variables, clippy::redundant_closure_call)]
            pub fn parse(name: &str, attrs: &mut $crate::attr::AttrReader) -> Option<Result<Self, String>> {
                match name {
                    $(
                        stringify!($Var) => Some((|| -> Result<Self, String> {
                            Ok(Self::$Var { $( $field: $crate::op_field!(attrs, $field, $ty $(, $default)?) ),* })
                        })()),
                    )*
                    _ => None,
                }
            }
        }
    };
}

/// Reads one attribute field (helper of [`op_family!`]).
#[macro_export]
macro_rules! op_field {
    ($attrs:ident, $field:ident, $ty:ty) => {
        $attrs.required::<$ty>(stringify!($field))?
    };
    ($attrs:ident, $field:ident, $ty:ty, $default:expr) => {
        $attrs.or::<$ty>(stringify!($field), $default)?
    };
}

pub mod control;
pub mod elementwise;
pub mod fused;
pub mod ml;
pub mod nn;
pub mod quant;
pub mod random;
pub mod recurrent;
pub mod reduce;
pub mod signal;
pub mod tensor;
pub mod text;

pub use control::ControlOp;
pub use elementwise::ElementwiseOp;
pub use fused::FusedOp;
pub use ml::MlOp;
pub use nn::NnOp;
pub use quant::QuantOp;
pub use random::RandomOp;
pub use recurrent::RecurrentAttrs;
pub use reduce::ReduceOp;
pub use signal::SignalOp;
pub use tensor::TensorOp;
pub use text::TextOp;

/// Any operator of the IR.
///
/// Not `#[non_exhaustive]`: every crate that dispatches on operators
/// matches every family (and, inside it, every operator), so adding one is
/// a compile error wherever it must be handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Families differ in size; nodes are few compared with tensor data, so
// boxing variants would only add indirection.
#[allow(clippy::large_enum_variant)]
pub enum Op {
    Elementwise(ElementwiseOp),
    Reduce(ReduceOp),
    Nn(NnOp),
    Tensor(TensorOp),
    Quant(QuantOp),
    Control(ControlOp),
    Text(TextOp),
    Signal(SignalOp),
    Ml(MlOp),
    /// A group of nodes fused by an optimisation pass (never imported).
    Fused(FusedOp),
    Random(RandomOp),
}

impl Op {
    /// The operator's name.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Elementwise(o) => o.name(),
            Op::Reduce(o) => o.name(),
            Op::Nn(o) => o.name(),
            Op::Tensor(o) => o.name(),
            Op::Quant(o) => o.name(),
            Op::Control(o) => o.name(),
            Op::Text(o) => o.name(),
            Op::Signal(o) => o.name(),
            Op::Ml(o) => o.name(),
            Op::Fused(_) => "Fused",
            Op::Random(o) => o.name(),
        }
    }

    /// Build IR operator `name` from attributes. Unknown operators and
    /// unknown, missing or mistyped attributes are errors.
    pub fn parse(name: &str, mut attrs: AttrReader) -> Result<Op, String> {
        let r = &mut attrs;
        let op = if let Some(o) = ElementwiseOp::parse(name, r) {
            o.map(Op::Elementwise)
        } else if let Some(o) = ReduceOp::parse(name, r) {
            o.map(Op::Reduce)
        } else if let Some(o) = NnOp::parse(name, r) {
            o.map(Op::Nn)
        } else if let Some(o) = TensorOp::parse(name, r) {
            o.map(Op::Tensor)
        } else if let Some(o) = QuantOp::parse(name, r) {
            o.map(Op::Quant)
        } else if let Some(o) = ControlOp::parse(name, r) {
            o.map(Op::Control)
        } else if let Some(o) = TextOp::parse(name, r) {
            o.map(Op::Text)
        } else if let Some(o) = SignalOp::parse(name, r) {
            o.map(Op::Signal)
        } else if let Some(o) = MlOp::parse(name, r) {
            o.map(Op::Ml)
        } else if let Some(o) = RandomOp::parse(name, r) {
            o.map(Op::Random)
        } else {
            return Err(format!("unsupported operator '{name}'"));
        }?;
        let unused = attrs.unused();
        if !unused.is_empty() {
            return Err(format!("unsupported attribute(s) {unused:?} for operator '{name}'"));
        }
        op.check()?;
        Ok(op)
    }

    /// Checks between attributes that their types alone cannot express
    /// (each field is already decoded and checked on its own): run by
    /// [`Op::parse`] at import and by [`crate::Model::validate`].
    pub fn check(&self) -> Result<(), String> {
        match self {
            Op::Nn(o) => o.check(),
            _ => Ok(()),
        }
    }

    /// Subgraphs held by this operator (bodies of control flow).
    pub fn subgraphs(&self) -> Vec<GraphId> {
        match self {
            Op::Control(c) => c.subgraphs(),
            Op::Nn(n) => n.subgraphs(),
            _ => vec![],
        }
    }

    /// True if the operator's outputs are pure functions of its inputs
    /// (no randomness), so it may be constant-folded.
    pub fn is_deterministic(&self) -> bool {
        !matches!(self, Op::Random(_))
    }

    /// True for the operators known to only move data: each output value
    /// is an input value (or a constant) copied exactly, never computed —
    /// layout changes, gathers, padding, Trilu, Identity, Where and
    /// inference-mode Dropout. A backend that widens narrow element types
    /// need not round such outputs back. `false` promises nothing.
    pub fn moves_data(&self) -> bool {
        matches!(
            self,
            Op::Tensor(
                TensorOp::Constant { .. }
                    | TensorOp::Reshape { .. }
                    | TensorOp::Flatten { .. }
                    | TensorOp::Squeeze { .. }
                    | TensorOp::Unsqueeze { .. }
                    | TensorOp::Transpose { .. }
                    | TensorOp::Concat { .. }
                    | TensorOp::Slice { .. }
                    | TensorOp::Split { .. }
                    | TensorOp::Gather { .. }
                    | TensorOp::GatherElements { .. }
                    | TensorOp::Expand {}
                    | TensorOp::Tile {}
                    | TensorOp::Pad { .. }
                    | TensorOp::DepthToSpace { .. }
                    | TensorOp::SpaceToDepth { .. }
                    | TensorOp::Trilu { .. }
            ) | Op::Elementwise(ElementwiseOp::Identity {} | ElementwiseOp::Where {})
                | Op::Nn(NnOp::Dropout { .. })
        )
    }

    /// Every operator name the IR knows.
    pub fn all_names() -> Vec<&'static str> {
        [
            ElementwiseOp::NAMES,
            ReduceOp::NAMES,
            NnOp::NAMES,
            TensorOp::NAMES,
            QuantOp::NAMES,
            ControlOp::NAMES,
            TextOp::NAMES,
            SignalOp::NAMES,
            MlOp::NAMES,
            RandomOp::NAMES,
        ]
        .concat()
    }
}
