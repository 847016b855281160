//! Attribute values as they arrive from an importer, and their conversion
//! into the typed attribute fields of [`crate::ops`].

use serde::{Deserialize, Serialize};

use crate::dtype::DType;
use crate::tensor::TensorData;
use crate::types::{GraphId, ValueType};

/// An untyped attribute value, produced by an importer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AttrValue {
    Float(f32),
    Int(i64),
    String(String),
    Tensor(TensorData),
    Graph(GraphId),
    Type(ValueType),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Strings(Vec<String>),
    Tensors(Vec<TensorData>),
    Graphs(Vec<GraphId>),
}

impl AttrValue {
    fn kind(&self) -> &'static str {
        match self {
            AttrValue::Float(_) => "float",
            AttrValue::Int(_) => "int",
            AttrValue::String(_) => "string",
            AttrValue::Tensor(_) => "tensor",
            AttrValue::Graph(_) => "graph",
            AttrValue::Type(_) => "type",
            AttrValue::Floats(_) => "floats",
            AttrValue::Ints(_) => "ints",
            AttrValue::Strings(_) => "strings",
            AttrValue::Tensors(_) => "tensors",
            AttrValue::Graphs(_) => "graphs",
        }
    }
}

/// A Rust type that an attribute can be converted to.
pub trait AttrType: Sized {
    /// Convert, or say what was expected.
    fn from_attr(v: &AttrValue) -> Result<Self, String>;
    /// The value of a missing attribute that has no default (`None` means "required").
    fn when_missing() -> Option<Self> {
        None
    }
}

macro_rules! simple_attr {
    ($t:ty, $variant:ident, $what:literal) => {
        impl AttrType for $t {
            fn from_attr(v: &AttrValue) -> Result<Self, String> {
                match v {
                    AttrValue::$variant(x) => Ok(x.clone()),
                    other => Err(format!("expected {}, found {}", $what, other.kind())),
                }
            }
        }
    };
}
simple_attr!(i64, Int, "int");
simple_attr!(String, String, "string");
simple_attr!(Vec<i64>, Ints, "ints");
simple_attr!(Vec<String>, Strings, "strings");
simple_attr!(TensorData, Tensor, "tensor");
simple_attr!(Vec<TensorData>, Tensors, "tensors");
simple_attr!(GraphId, Graph, "graph");
simple_attr!(ValueType, Type, "type");

impl AttrType for f32 {
    fn from_attr(v: &AttrValue) -> Result<Self, String> {
        match v {
            AttrValue::Float(x) => Ok(*x),
            AttrValue::Int(i) => Ok(*i as f32),
            other => Err(format!("expected float, found {}", other.kind())),
        }
    }
}

impl AttrType for Vec<f32> {
    fn from_attr(v: &AttrValue) -> Result<Self, String> {
        match v {
            AttrValue::Floats(x) => Ok(x.clone()),
            AttrValue::Ints(x) => Ok(x.iter().map(|&i| i as f32).collect()),
            other => Err(format!("expected floats, found {}", other.kind())),
        }
    }
}

impl AttrType for bool {
    fn from_attr(v: &AttrValue) -> Result<Self, String> {
        match v {
            AttrValue::Int(0) => Ok(false),
            AttrValue::Int(1) => Ok(true),
            AttrValue::Int(i) => Err(format!("expected 0 or 1, found {i}")),
            other => Err(format!("expected int, found {}", other.kind())),
        }
    }
}

impl AttrType for DType {
    fn from_attr(v: &AttrValue) -> Result<Self, String> {
        match v {
            AttrValue::Int(code) => {
                DType::from_onnx_code(*code).ok_or_else(|| format!("unknown element type code {code}"))
            }
            other => Err(format!("expected int (element type), found {}", other.kind())),
        }
    }
}

impl<T: AttrType> AttrType for Option<T> {
    fn from_attr(v: &AttrValue) -> Result<Self, String> {
        T::from_attr(v).map(Some)
    }
    fn when_missing() -> Option<Self> {
        Some(None)
    }
}

/// Reads named attributes for one node, remembering which were used so that
/// unknown ones can be reported.
#[derive(Debug)]
pub struct AttrReader {
    attrs: Vec<(String, AttrValue, bool)>,
}

impl AttrReader {
    pub fn new(attrs: Vec<(String, AttrValue)>) -> Self {
        AttrReader { attrs: attrs.into_iter().map(|(n, v)| (n, v, false)).collect() }
    }

    fn take(&mut self, name: &str) -> Option<&AttrValue> {
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.attrs.iter_mut().find(|(n, _, _)| n == name).map(|(_, v, used)| {
            *used = true;
            &*v
        })
    }

    /// A required attribute (or `None` for `Option` fields).
    pub fn required<T: AttrType>(&mut self, name: &str) -> Result<T, String> {
        let clean = name.strip_prefix("r#").unwrap_or(name).to_string();
        match self.take(name) {
            Some(v) => T::from_attr(v).map_err(|e| format!("attribute '{clean}': {e}")),
            None => T::when_missing().ok_or_else(|| format!("missing required attribute '{clean}'")),
        }
    }

    /// An attribute with a default.
    pub fn or<T: AttrType>(&mut self, name: &str, default: T) -> Result<T, String> {
        let clean = name.strip_prefix("r#").unwrap_or(name).to_string();
        match self.take(name) {
            Some(v) => T::from_attr(v).map_err(|e| format!("attribute '{clean}': {e}")),
            None => Ok(default),
        }
    }

    /// Names of attributes never read.
    pub fn unused(&self) -> Vec<String> {
        self.attrs.iter().filter(|(_, _, u)| !u).map(|(n, _, _)| n.clone()).collect()
    }
}

/// Marker so serde derives on op families stay in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoAttrs;

/// Declares an enum for a string-valued mode attribute: one variant per
/// spelling the operator accepts (extra spellings after `|` are aliases),
/// with [`AttrType`] (so an unknown spelling is an import error naming the
/// accepted ones), serde, `as_str` (the canonical spelling) and `Display`.
macro_rules! attr_enum {
    (
        $(#[$m:meta])*
        pub enum $Name:ident {
            $( $(#[$vm:meta])* $Var:ident = $s:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $Name {
            $( $(#[$vm])* $Var ),+
        }

        impl $Name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$Name] = &[$($Name::$Var),+];

            /// The attribute's canonical spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $( $Name::$Var => $s ),+ }
            }

            /// The value spelled `s` (exactly as the operator defines it), if any.
            pub fn from_name(s: &str) -> Option<Self> {
                match s {
                    $( $s $(| $alias)* => Some($Name::$Var), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $Name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::attr::AttrType for $Name {
            fn from_attr(v: &$crate::attr::AttrValue) -> Result<Self, String> {
                let s = <String as $crate::attr::AttrType>::from_attr(v)?;
                $Name::from_name(&s).ok_or_else(|| {
                    let known: Vec<&str> = $Name::ALL.iter().map(|m| m.as_str()).collect();
                    format!("unknown value '{s}' (expected one of: {})", known.join(", "))
                })
            }
        }
    };
}
pub(crate) use attr_enum;
