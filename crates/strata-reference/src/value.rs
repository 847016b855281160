//! The reference backend's own value representation.
//!
//! For obviousness every float type is held as `f64` (each result rounded to
//! its declared type), every integer type as `i128` (each result wrapped to
//! its declared width), bools as `bool` and strings as `String`. Kernels then
//! need one code path per class of type, not one per type.

use strata_ir::{DType, HostValue, TensorData, ValueType};

use crate::error::KernelError;

/// Element storage by class.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F(Vec<f64>),
    I(Vec<i128>),
    B(Vec<bool>),
    S(Vec<String>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
            Data::B(v) => v.len(),
            Data::S(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Pick elements by index (data movement: exact for every class).
    pub fn gather(&self, idx: &[usize]) -> Data {
        match self {
            Data::F(v) => Data::F(idx.iter().map(|&i| v[i]).collect()),
            Data::I(v) => Data::I(idx.iter().map(|&i| v[i]).collect()),
            Data::B(v) => Data::B(idx.iter().map(|&i| v[i]).collect()),
            Data::S(v) => Data::S(idx.iter().map(|&i| v[i].clone()).collect()),
        }
    }
    /// Concatenate data of the same class.
    pub fn concat(parts: &[&Data]) -> Result<Data, KernelError> {
        let first = parts.first().ok_or_else(|| KernelError::new("nothing to concatenate"))?;
        Ok(match first {
            Data::F(_) => Data::F(parts.iter().map(|p| p.as_f()).collect::<Result<Vec<_>, _>>()?.concat()),
            Data::I(_) => Data::I(parts.iter().map(|p| p.as_i()).collect::<Result<Vec<_>, _>>()?.concat()),
            Data::B(_) => Data::B(parts.iter().map(|p| p.as_b()).collect::<Result<Vec<_>, _>>()?.concat()),
            Data::S(_) => Data::S(parts.iter().map(|p| p.as_s()).collect::<Result<Vec<_>, _>>()?.concat()),
        })
    }
    pub fn as_f(&self) -> Result<&[f64], KernelError> {
        match self {
            Data::F(v) => Ok(v),
            _ => Err(KernelError::new("expected floating-point data")),
        }
    }
    pub fn as_i(&self) -> Result<&[i128], KernelError> {
        match self {
            Data::I(v) => Ok(v),
            _ => Err(KernelError::new("expected integer data")),
        }
    }
    pub fn as_b(&self) -> Result<&[bool], KernelError> {
        match self {
            Data::B(v) => Ok(v),
            _ => Err(KernelError::new("expected bool data")),
        }
    }
    pub fn as_s(&self) -> Result<&[String], KernelError> {
        match self {
            Data::S(v) => Ok(v),
            _ => Err(KernelError::new("expected string data")),
        }
    }
}

/// A dense tensor of the reference backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Data,
}

/// Which [`Data`] class holds a dtype.
pub fn data_class(d: DType) -> char {
    if d == DType::Bool {
        'b'
    } else if d == DType::String {
        's'
    } else if d.is_int() {
        'i'
    } else {
        'f'
    }
}

impl Tensor {
    /// Build from data of the right class, rounding/wrapping to `dtype`.
    pub fn new(dtype: DType, shape: Vec<usize>, data: Data) -> Result<Tensor, KernelError> {
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(KernelError::new(format!("internal: {} elements for shape {shape:?}", data.len())));
        }
        let data = match (data_class(dtype), data) {
            ('f', Data::F(v)) => Data::F(v.into_iter().map(|x| dtype.round_float(x)).collect()),
            ('i', Data::I(v)) => Data::I(v.into_iter().map(|x| dtype.wrap_int(x)).collect()),
            ('b', d @ Data::B(_)) | ('s', d @ Data::S(_)) => d,
            (c, d) => {
                return Err(KernelError::new(format!(
                    "internal: {dtype} tensor built from {:?} data",
                    data_kind(&d, c)
                )));
            }
        };
        Ok(Tensor { dtype, shape, data })
    }
    /// A float tensor (values rounded to `dtype`).
    pub fn from_f(dtype: DType, shape: Vec<usize>, v: Vec<f64>) -> Result<Tensor, KernelError> {
        Tensor::new(dtype, shape, Data::F(v))
    }
    /// An integer tensor (values wrapped to `dtype`).
    pub fn from_i(dtype: DType, shape: Vec<usize>, v: Vec<i128>) -> Result<Tensor, KernelError> {
        Tensor::new(dtype, shape, Data::I(v))
    }
    pub fn from_b(shape: Vec<usize>, v: Vec<bool>) -> Result<Tensor, KernelError> {
        Tensor::new(DType::Bool, shape, Data::B(v))
    }
    pub fn from_s(shape: Vec<usize>, v: Vec<String>) -> Result<Tensor, KernelError> {
        Tensor::new(DType::String, shape, Data::S(v))
    }
    /// An int64 tensor.
    pub fn i64s(shape: Vec<usize>, v: Vec<i64>) -> Result<Tensor, KernelError> {
        Tensor::from_i(DType::I64, shape, v.into_iter().map(i128::from).collect())
    }
    /// Build from f64 values converting to any numeric dtype (floats rounded,
    /// ints truncated toward zero and wrapped, bool as `!= 0`).
    pub fn from_f64_any(dtype: DType, shape: Vec<usize>, v: Vec<f64>) -> Result<Tensor, KernelError> {
        match data_class(dtype) {
            'f' => Tensor::from_f(dtype, shape, v),
            'i' => Tensor::from_i(dtype, shape, v.into_iter().map(|x| x as i128).collect()),
            'b' => Tensor::from_b(shape, v.into_iter().map(|x| x != 0.0).collect()),
            _ => Err(KernelError::new("cannot build a string tensor from numbers")),
        }
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn f(&self) -> Result<&[f64], KernelError> {
        self.data.as_f()
    }
    pub fn i(&self) -> Result<&[i128], KernelError> {
        self.data.as_i()
    }
    pub fn b(&self) -> Result<&[bool], KernelError> {
        self.data.as_b()
    }
    pub fn s(&self) -> Result<&[String], KernelError> {
        self.data.as_s()
    }
    /// Numeric elements as f64 (bool as 0/1).
    pub fn to_f64(&self) -> Result<Vec<f64>, KernelError> {
        Ok(match &self.data {
            Data::F(v) => v.clone(),
            Data::I(v) => v.iter().map(|&x| x as f64).collect(),
            Data::B(v) => v.iter().map(|&x| x as u8 as f64).collect(),
            Data::S(_) => return Err(KernelError::new("expected a numeric tensor, got strings")),
        })
    }
    /// Integer elements as i64 (for shapes, axes and indices).
    pub fn to_i64(&self) -> Result<Vec<i64>, KernelError> {
        Ok(match &self.data {
            Data::I(v) => v.iter().map(|&x| x as i64).collect(),
            Data::B(v) => v.iter().map(|&x| x as i64).collect(),
            Data::F(v) => v.iter().map(|&x| x as i64).collect(),
            Data::S(_) => return Err(KernelError::new("expected an integer tensor, got strings")),
        })
    }
    /// The single element of a one-element tensor, as f64.
    pub fn scalar_f64(&self) -> Result<f64, KernelError> {
        let v = self.to_f64()?;
        if v.len() != 1 {
            return Err(KernelError::new(format!("expected a single value, got shape {:?}", self.shape)));
        }
        Ok(v[0])
    }
    /// The single element of a one-element tensor, as i64.
    pub fn scalar_i64(&self) -> Result<i64, KernelError> {
        let v = self.to_i64()?;
        if v.len() != 1 {
            return Err(KernelError::new(format!("expected a single value, got shape {:?}", self.shape)));
        }
        Ok(v[0])
    }
    /// Same data, new shape (element count must match).
    pub fn reshape(mut self, shape: Vec<usize>) -> Result<Tensor, KernelError> {
        if shape.iter().product::<usize>() != self.numel() {
            return Err(KernelError::new(format!("cannot reshape {:?} to {shape:?}", self.shape)));
        }
        self.shape = shape;
        Ok(self)
    }
    /// Empty tensor of a dtype and shape filled with zero / false / "".
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Tensor, KernelError> {
        let n = shape.iter().product();
        let data = match data_class(dtype) {
            'f' => Data::F(vec![0.0; n]),
            'i' => Data::I(vec![0; n]),
            'b' => Data::B(vec![false; n]),
            _ => Data::S(vec![String::new(); n]),
        };
        Tensor::new(dtype, shape, data)
    }

    /// Convert from the IR host tensor.
    pub fn from_host(t: &TensorData) -> Result<Tensor, KernelError> {
        let dtype = t.dtype();
        let shape = t.shape().to_vec();
        let data = match data_class(dtype) {
            _ if dtype.is_complex() => return Err(KernelError::new("complex tensors are not supported")),
            'f' => Data::F(t.to_f64_vec()),
            'i' => Data::I(t.to_i128_vec()),
            'b' => Data::B(t.to_i128_vec().into_iter().map(|x| x != 0).collect()),
            _ => Data::S(t.strings().unwrap_or(&[]).to_vec()),
        };
        Ok(Tensor { dtype, shape, data })
    }

    /// Convert to the IR host tensor.
    pub fn to_host(&self) -> Result<TensorData, KernelError> {
        let e = |e: strata_ir::IrError| KernelError::new(e.to_string());
        match &self.data {
            Data::F(v) => TensorData::from_f64(self.dtype, self.shape.clone(), v).map_err(e),
            Data::I(v) => TensorData::from_i128(self.dtype, self.shape.clone(), v).map_err(e),
            Data::B(v) => TensorData::from_i128(
                DType::Bool,
                self.shape.clone(),
                &v.iter().map(|&b| b as i128).collect::<Vec<_>>(),
            )
            .map_err(e),
            Data::S(v) => TensorData::from_strings(self.shape.clone(), v.clone()).map_err(e),
        }
    }
}

fn data_kind(d: &Data, _c: char) -> &'static str {
    match d {
        Data::F(_) => "float",
        Data::I(_) => "integer",
        Data::B(_) => "bool",
        Data::S(_) => "string",
    }
}

/// A runtime value: tensor, sequence or optional.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Tensor(Tensor),
    Sequence { elem: ValueType, items: Vec<Value> },
    Optional { elem: ValueType, value: Option<Box<Value>> },
}

impl Value {
    /// Bytes this value holds in the reference representation (f64 / i128
    /// elements, strings by length), for the memory limit.
    pub fn host_bytes(&self) -> u64 {
        match self {
            Value::Tensor(t) => match &t.data {
                Data::F(v) => 8 * v.len() as u64,
                Data::I(v) => 16 * v.len() as u64,
                Data::B(v) => v.len() as u64,
                Data::S(v) => v.iter().map(|s| 24 + s.len() as u64).sum(),
            },
            Value::Sequence { items, .. } => items.iter().map(Value::host_bytes).sum(),
            Value::Optional { value, .. } => value.as_ref().map_or(0, |v| v.host_bytes()),
        }
    }

    pub fn tensor(&self) -> Result<&Tensor, KernelError> {
        match self {
            Value::Tensor(t) => Ok(t),
            _ => Err(KernelError::new("expected a tensor, got a sequence or optional")),
        }
    }
    pub fn into_tensor(self) -> Result<Tensor, KernelError> {
        match self {
            Value::Tensor(t) => Ok(t),
            _ => Err(KernelError::new("expected a tensor, got a sequence or optional")),
        }
    }
    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Tensor(t) => ValueType::tensor(t.dtype),
            Value::Sequence { elem, .. } => ValueType::Sequence(Box::new(elem.clone())),
            Value::Optional { elem, .. } => ValueType::Optional(Box::new(elem.clone())),
        }
    }
    pub fn from_host(v: &HostValue) -> Result<Value, KernelError> {
        Ok(match v {
            HostValue::Tensor(t) => Value::Tensor(Tensor::from_host(t)?),
            HostValue::Sequence { elem, items } => Value::Sequence {
                elem: elem.clone(),
                items: items.iter().map(Value::from_host).collect::<Result<_, _>>()?,
            },
            HostValue::Optional { elem, value } => Value::Optional {
                elem: elem.clone(),
                value: value.as_ref().map(|v| Value::from_host(v).map(Box::new)).transpose()?,
            },
            _ => return Err(KernelError::new("unsupported host value")),
        })
    }
    pub fn to_host(&self) -> Result<HostValue, KernelError> {
        Ok(match self {
            Value::Tensor(t) => HostValue::Tensor(t.to_host()?),
            Value::Sequence { elem, items } => HostValue::Sequence {
                elem: elem.clone(),
                items: items.iter().map(Value::to_host).collect::<Result<_, _>>()?,
            },
            Value::Optional { elem, value } => HostValue::Optional {
                elem: elem.clone(),
                value: value.as_ref().map(|v| v.to_host().map(Box::new)).transpose()?,
            },
        })
    }
}
