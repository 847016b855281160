//! Runtime values exchanged with a session: tensors, sequences and optionals.

use crate::tensor::TensorData;
use crate::types::ValueType;

/// A value on the host: what a session takes as input and gives as output.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HostValue {
    Tensor(TensorData),
    /// A sequence; `elem` is the element type (needed when it is empty).
    Sequence {
        elem: ValueType,
        items: Vec<HostValue>,
    },
    /// An optional; `elem` is the type of the value when present.
    Optional {
        elem: ValueType,
        value: Option<Box<HostValue>>,
    },
}

impl HostValue {
    /// The tensor, if this value is one.
    pub fn as_tensor(&self) -> Option<&TensorData> {
        match self {
            HostValue::Tensor(t) => Some(t),
            _ => None,
        }
    }
    /// A short description of the value's type and shape.
    pub fn describe(&self) -> String {
        match self {
            HostValue::Tensor(t) => format!("{}{:?}", t.dtype(), t.shape()),
            HostValue::Sequence { items, elem } => format!("seq<{elem}> of {}", items.len()),
            HostValue::Optional { value: Some(v), .. } => format!("optional({})", v.describe()),
            HostValue::Optional { value: None, elem } => format!("optional<{elem}>(none)"),
        }
    }
}
