//! Conversion of protobuf tensors, types and values to IR types.

use std::path::Path;

use strata_ir::tensor::checked_numel;
use strata_ir::{Buffer, DType, Dim, HostValue, TensorData, ValueType};

use crate::error::OnnxError;
use crate::proto;

/// Largest external-data read we accept for one tensor (16 GiB).
const MAX_EXTERNAL_BYTES: u64 = 16 << 30;

fn dtype_of(code: i32, what: &str) -> Result<DType, OnnxError> {
    DType::from_onnx_code(code as i64)
        .ok_or_else(|| OnnxError::Invalid(format!("{what}: unknown element type code {code}")))
}

fn shape_of(dims: &[i64], what: &str) -> Result<Vec<usize>, OnnxError> {
    let shape: Vec<usize> = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| OnnxError::Invalid(format!("{what}: negative dimension {d}"))))
        .collect::<Result<_, _>>()?;
    checked_numel(&shape).ok_or_else(|| OnnxError::Invalid(format!("{what}: shape {dims:?} overflows")))?;
    Ok(shape)
}

/// Read a `TensorProto` into a [`TensorData`]. `base_dir` resolves external data.
pub fn tensor_from_proto(t: &proto::TensorProto, base_dir: Option<&Path>) -> Result<TensorData, OnnxError> {
    let what = if t.name.is_empty() { "tensor".to_string() } else { format!("tensor '{}'", t.name) };
    let dtype = dtype_of(t.data_type, &what)?;
    let shape = shape_of(&t.dims, &what)?;
    let n = checked_numel(&shape).unwrap_or(0);
    let bad = |m: String| OnnxError::Invalid(format!("{what}: {m}"));
    if dtype == DType::String {
        if t.string_data.len() != n {
            return Err(bad(format!("has {} strings, shape {shape:?} needs {n}", t.string_data.len())));
        }
        let strings = t.string_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        return TensorData::from_strings(shape, strings).map_err(|e| bad(e.to_string()));
    }
    let need = dtype.byte_len(n).ok_or_else(|| bad("size overflows".into()))?;
    if t.data_location == 1 {
        let bytes = read_external(t, base_dir, need, &what)?;
        return TensorData::from_bytes(dtype, shape, Buffer::from_vec(bytes)).map_err(|e| bad(e.to_string()));
    }
    if let Some(raw) = &t.raw_data {
        if raw.len() != need {
            return Err(bad(format!("raw_data has {} bytes, {dtype} shape {shape:?} needs {need}", raw.len())));
        }
        return TensorData::from_bytes(dtype, shape, Buffer::from_vec(raw.clone())).map_err(|e| bad(e.to_string()));
    }
    let count_err =
        |have: usize, want: usize, field: &str| bad(format!("{field} has {have} values, shape {shape:?} needs {want}"));
    // Grows only after each branch has checked the value count against the shape.
    let mut out = Vec::new();
    match dtype {
        DType::F32 | DType::C64 => {
            let want = if dtype == DType::C64 { 2 * n } else { n };
            if t.float_data.len() != want {
                return Err(count_err(t.float_data.len(), want, "float_data"));
            }
            t.float_data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::F64 | DType::C128 => {
            let want = if dtype == DType::C128 { 2 * n } else { n };
            if t.double_data.len() != want {
                return Err(count_err(t.double_data.len(), want, "double_data"));
            }
            t.double_data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::I64 => {
            if t.int64_data.len() != n {
                return Err(count_err(t.int64_data.len(), n, "int64_data"));
            }
            t.int64_data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::U32 | DType::U64 => {
            if t.uint64_data.len() != n {
                return Err(count_err(t.uint64_data.len(), n, "uint64_data"));
            }
            let w = dtype.bits() / 8;
            t.uint64_data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()[..w]));
        }
        d if d.bits() < 8 => {
            // Sub-byte types: each int32 holds one packed byte.
            if t.int32_data.len() != need {
                return Err(count_err(t.int32_data.len(), need, "int32_data"));
            }
            t.int32_data.iter().for_each(|&v| out.push(v as u8));
        }
        d => {
            // int8/16/32, uint8/16, bool, float16/bfloat16 and float8: bit patterns in int32_data.
            if t.int32_data.len() != n {
                return Err(count_err(t.int32_data.len(), n, "int32_data"));
            }
            let w = d.bits() / 8;
            t.int32_data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()[..w]));
        }
    }
    TensorData::from_bytes(dtype, shape, Buffer::from_vec(out)).map_err(|e| bad(e.to_string()))
}

fn read_external(
    t: &proto::TensorProto,
    base_dir: Option<&Path>,
    need: usize,
    what: &str,
) -> Result<Vec<u8>, OnnxError> {
    let bad = |m: String| OnnxError::Invalid(format!("{what}: external data: {m}"));
    let base = base_dir
        .ok_or_else(|| bad("the model was loaded from bytes; load it from a path to resolve external data".into()))?;
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for e in &t.external_data {
        match e.key.as_str() {
            "location" => location = Some(e.value.clone()),
            "offset" => offset = e.value.parse().map_err(|_| bad(format!("bad offset '{}'", e.value)))?,
            "length" => length = Some(e.value.parse::<u64>().map_err(|_| bad(format!("bad length '{}'", e.value)))?),
            _ => {}
        }
    }
    let location = location.ok_or_else(|| bad("no location".into()))?;
    let rel = Path::new(&location);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(bad(format!("location '{location}' escapes the model directory")));
    }
    let len = length.unwrap_or(need as u64);
    if len != need as u64 || len > MAX_EXTERNAL_BYTES {
        return Err(bad(format!("length {len} does not match the {need} bytes the shape needs")));
    }
    use std::io::{Read, Seek, SeekFrom};
    let path = base.join(rel);
    let mut f = std::fs::File::open(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let file_len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(bad(format!("range {offset}+{len} is past the end of {} ({file_len} bytes)", path.display())));
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| bad(e.to_string()))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).map_err(|e| bad(e.to_string()))?;
    Ok(buf)
}

/// Densify a sparse tensor (COO indices, flat or per-dimension).
pub fn sparse_to_dense(s: &proto::SparseTensorProto, base_dir: Option<&Path>) -> Result<TensorData, OnnxError> {
    let values = tensor_from_proto(
        s.values.as_ref().ok_or_else(|| OnnxError::Invalid("sparse tensor without values".into()))?,
        base_dir,
    )?;
    let indices = tensor_from_proto(
        s.indices.as_ref().ok_or_else(|| OnnxError::Invalid("sparse tensor without indices".into()))?,
        base_dir,
    )?;
    let shape = shape_of(&s.dims, "sparse tensor")?;
    let n = checked_numel(&shape).unwrap_or(0);
    if n > (1 << 26) {
        return Err(OnnxError::Invalid(format!("sparse tensor of shape {shape:?} is too large to densify")));
    }
    let nnz = values.numel();
    let idx = indices.to_i64_vec();
    let flat: Vec<usize> = if indices.shape().len() == 2 {
        let r = shape.len();
        (0..nnz)
            .map(|k| {
                let mut f = 0usize;
                for d in 0..r {
                    f = f * shape[d] + idx.get(k * r + d).copied().unwrap_or(0).max(0) as usize;
                }
                f
            })
            .collect()
    } else {
        idx.iter().map(|&i| i.max(0) as usize).collect()
    };
    if flat.len() != nnz || flat.iter().any(|&f| f >= n.max(1) && n > 0) {
        return Err(OnnxError::Invalid("sparse tensor indices out of range".into()));
    }
    let dtype = values.dtype();
    if dtype == DType::String {
        let mut out = vec![String::new(); n];
        for (k, &f) in flat.iter().enumerate() {
            out[f] = values.strings().unwrap()[k].clone();
        }
        return TensorData::from_strings(shape, out).map_err(|e| OnnxError::Invalid(e.to_string()));
    }
    let v = values.to_f64_vec();
    let mut out = vec![0f64; n];
    for (k, &f) in flat.iter().enumerate() {
        out[f] = v[k];
    }
    if dtype.is_int() {
        let vi = values.to_i128_vec();
        let mut oi = vec![0i128; n];
        for (k, &f) in flat.iter().enumerate() {
            oi[f] = vi[k];
        }
        return TensorData::from_i128(dtype, shape, &oi).map_err(|e| OnnxError::Invalid(e.to_string()));
    }
    TensorData::from_f64(dtype, shape, &out).map_err(|e| OnnxError::Invalid(e.to_string()))
}

/// Convert a `TypeProto`.
pub fn type_from_proto(t: &proto::TypeProto) -> Result<ValueType, OnnxError> {
    use proto::TypeValue;
    Ok(match &t.value {
        None => ValueType::Unknown,
        Some(TypeValue::TensorType(tt)) | Some(TypeValue::SparseTensorType(tt)) => {
            if tt.elem_type == 0 {
                return Ok(ValueType::Unknown);
            }
            let dtype = dtype_of(tt.elem_type, "type")?;
            let shape = tt.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(proto::DimensionValue::DimValue(v)) if *v >= 0 => Dim::Known(*v as u64),
                        // "?" is the conventional spelling of "unknown", not a shared name.
                        Some(proto::DimensionValue::DimParam(p)) if !p.is_empty() && p != "?" => Dim::Sym(p.clone()),
                        _ => Dim::Unknown,
                    })
                    .collect()
            });
            ValueType::Tensor { dtype, shape }
        }
        Some(TypeValue::SequenceType(s)) => ValueType::Sequence(Box::new(
            s.elem_type.as_deref().map(type_from_proto).transpose()?.unwrap_or(ValueType::Unknown),
        )),
        Some(TypeValue::OptionalType(s)) => ValueType::Optional(Box::new(
            s.elem_type.as_deref().map(type_from_proto).transpose()?.unwrap_or(ValueType::Unknown),
        )),
        Some(TypeValue::MapType(m)) => ValueType::Map {
            key: dtype_of(m.key_type, "map key")?,
            value: Box::new(m.value_type.as_deref().map(type_from_proto).transpose()?.unwrap_or(ValueType::Unknown)),
        },
    })
}

fn decode<M: prost::Message + Default>(bytes: &[u8], what: &str) -> Result<M, OnnxError> {
    M::decode(bytes).map_err(|e| OnnxError::Decode(format!("{what}: {e}")))
}

fn seq_value(s: &proto::SequenceProto, elem_hint: Option<&ValueType>) -> Result<HostValue, OnnxError> {
    let mut items = Vec::new();
    for t in &s.tensor_values {
        items.push(HostValue::Tensor(tensor_from_proto(t, None)?));
    }
    for t in &s.sparse_tensor_values {
        items.push(HostValue::Tensor(sparse_to_dense(t, None)?));
    }
    let inner_hint = match elem_hint {
        Some(ValueType::Sequence(e)) => Some(&**e),
        Some(ValueType::Optional(e)) => Some(&**e),
        _ => None,
    };
    for q in &s.sequence_values {
        items.push(seq_value(q, inner_hint)?);
    }
    for o in &s.optional_values {
        items.push(opt_value(o, inner_hint)?);
    }
    let elem = match (elem_hint, items.first()) {
        (Some(t), _) if *t != ValueType::Unknown => t.clone(),
        (_, Some(HostValue::Tensor(t))) => ValueType::tensor(t.dtype()),
        _ => ValueType::Unknown,
    };
    Ok(HostValue::Sequence { elem, items })
}

fn opt_value(o: &proto::OptionalProto, elem_hint: Option<&ValueType>) -> Result<HostValue, OnnxError> {
    let inner_hint = match elem_hint {
        Some(ValueType::Sequence(e)) => Some(&**e),
        _ => None,
    };
    let value = if let Some(t) = &o.tensor_value {
        Some(HostValue::Tensor(tensor_from_proto(t, None)?))
    } else if let Some(t) = &o.sparse_tensor_value {
        Some(HostValue::Tensor(sparse_to_dense(t, None)?))
    } else if let Some(s) = &o.sequence_value {
        Some(seq_value(s, inner_hint)?)
    } else if let Some(q) = &o.optional_value {
        Some(opt_value(q, None)?)
    } else {
        None
    };
    let elem = match (elem_hint, &value) {
        (Some(t), _) if *t != ValueType::Unknown => t.clone(),
        (_, Some(HostValue::Tensor(t))) => ValueType::tensor(t.dtype()),
        _ => ValueType::Unknown,
    };
    Ok(HostValue::Optional { elem, value: value.map(Box::new) })
}

/// Decode a serialised `TensorProto`, `SequenceProto` or `OptionalProto`
/// (as in ONNX test data), choosing by the declared type.
pub fn decode_value(bytes: &[u8], ty: &ValueType) -> Result<HostValue, OnnxError> {
    match ty {
        ValueType::Sequence(elem) => seq_value(&decode::<proto::SequenceProto>(bytes, "SequenceProto")?, Some(elem)),
        ValueType::Optional(elem) => opt_value(&decode::<proto::OptionalProto>(bytes, "OptionalProto")?, Some(elem)),
        ValueType::Map { .. } => Err(OnnxError::Unsupported("map values are not supported".into())),
        _ => Ok(HostValue::Tensor(tensor_from_proto(&decode::<proto::TensorProto>(bytes, "TensorProto")?, None)?)),
    }
}

/// Decode a serialised `TensorProto`.
pub fn decode_tensor(bytes: &[u8]) -> Result<TensorData, OnnxError> {
    tensor_from_proto(&decode::<proto::TensorProto>(bytes, "TensorProto")?, None)
}
