//! The handles and value types that graphs, attributes and operators all
//! name: [`GraphId`], [`ValueId`], [`NodeId`], [`Dim`] and [`ValueType`].
//!
//! They live apart from [`crate::graph`] so that the operators (`ops/`) and
//! their attributes (`attr`) can name them without importing the graph
//! module that itself holds operators: the dependencies go one way,
//! `graph` → `ops` → `attr` → `types`. [`crate::graph`] re-exports them.

use serde::{Deserialize, Serialize};

use crate::dtype::DType;

/// Handle of a graph in a [`Model`](crate::Model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GraphId(pub u32);
/// Handle of a value in a [`Graph`](crate::Graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId(pub u32);
/// Handle of a node in a [`Graph`](crate::Graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// One dimension of a shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dim {
    /// A known size.
    Known(u64),
    /// A named symbolic size (such as `batch`).
    Sym(String),
    /// Unknown and unnamed.
    Unknown,
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// The type of a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ValueType {
    /// A tensor; `shape` is `None` when the rank is unknown.
    Tensor { dtype: DType, shape: Option<Vec<Dim>> },
    /// A sequence of values of one type.
    Sequence(Box<ValueType>),
    /// An optional value.
    Optional(Box<ValueType>),
    /// A map (ai.onnx.ml); keys are scalars.
    Map { key: DType, value: Box<ValueType> },
    /// Not known (yet).
    Unknown,
}

impl ValueType {
    /// A tensor type of known dtype and unknown shape.
    pub fn tensor(dtype: DType) -> Self {
        ValueType::Tensor { dtype, shape: None }
    }
    /// The element type of a tensor type.
    pub fn dtype(&self) -> Option<DType> {
        match self {
            ValueType::Tensor { dtype, .. } => Some(*dtype),
            _ => None,
        }
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueType::Tensor { dtype, shape: Some(s) } => {
                let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
                write!(f, "{dtype}[{}]", dims.join(", "))
            }
            ValueType::Tensor { dtype, shape: None } => write!(f, "{dtype}[*]"),
            ValueType::Sequence(t) => write!(f, "seq({t})"),
            ValueType::Optional(t) => write!(f, "optional({t})"),
            ValueType::Map { key, value } => write!(f, "map({key}, {value})"),
            ValueType::Unknown => f.write_str("?"),
        }
    }
}
