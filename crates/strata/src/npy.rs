//! Reading and writing NumPy `.npy` files (format versions 1–3), the
//! tensor file format users already have.

use crate::error::Error;
use crate::{DType, Tensor};

fn err(m: impl Into<String>) -> Error {
    Error::Input(format!(".npy: {}", m.into()))
}

fn descr_of(d: DType) -> Option<&'static str> {
    Some(match d {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::F16 => "<f2",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::I16 => "<i2",
        DType::U16 => "<u2",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
        DType::I64 => "<i8",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
        _ => return None,
    })
}

fn dtype_of(descr: &str) -> Option<DType> {
    let d = descr.replace('=', "<");
    DType::ALL.iter().copied().find(|t| descr_of(*t).is_some_and(|x| x == d || x.replace('|', "<") == d))
}

/// Parse `.npy` bytes into a tensor.
pub fn read(bytes: &[u8]) -> Result<Tensor, Error> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(err("not a .npy file (bad magic)"));
    }
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err("truncated header"));
            }
            (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12)
        }
        v => return Err(err(format!("unsupported format version {v}"))),
    };
    let header = bytes.get(start..start + hlen).ok_or_else(|| err("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| err("header is not UTF-8"))?;
    let field = |key: &str| -> Result<&str, Error> {
        let at = header.find(&format!("'{key}'")).ok_or_else(|| err(format!("header has no '{key}'")))?;
        Ok(header[at + key.len() + 2..].trim_start().trim_start_matches(':').trim_start())
    };
    let descr_s = field("descr")?;
    let descr = descr_s.trim_start_matches('\'').split('\'').next().unwrap_or("");
    if field("fortran_order")?.starts_with("True") {
        return Err(err("Fortran-order arrays are not supported"));
    }
    let shape_s = field("shape")?;
    let inner = shape_s.trim_start_matches('(').split(')').next().unwrap_or("");
    let shape: Vec<usize> = inner
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| err(format!("bad shape '{inner}'"))))
        .collect::<Result<_, _>>()?;
    let dtype = dtype_of(descr).ok_or_else(|| err(format!("unsupported dtype '{descr}'")))?;
    let data = &bytes[start + hlen..];
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| err("shape overflows"))?;
    let need = dtype.byte_len(n).ok_or_else(|| err("size overflows"))?;
    if data.len() != need {
        return Err(err(format!("data has {} bytes, {dtype} shape {shape:?} needs {need}", data.len())));
    }
    Ok(Tensor::from_bytes(dtype, shape, strata_ir::Buffer::from_vec(data.to_vec()))?)
}

/// Serialise a tensor as `.npy` (version 1.0).
pub fn write(t: &Tensor) -> Result<Vec<u8>, Error> {
    let descr = descr_of(t.dtype()).ok_or_else(|| err(format!("{} tensors cannot be written as .npy", t.dtype())))?;
    let shape = match t.shape().len() {
        0 => "()".to_string(),
        1 => format!("({},)", t.shape()[0]),
        _ => format!("({})", t.shape().iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(t.bytes().map(|b| b.as_slice()).unwrap_or(&[]));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let t = Tensor::from_f32(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let b = write(&t).unwrap();
        assert_eq!(read(&b).unwrap(), t);
        let s = Tensor::from_i64(vec![], &[7]).unwrap();
        assert_eq!(read(&write(&s).unwrap()).unwrap(), s);
    }
}
