//! The importer's one registry table: which ONNX operator (domain, name,
//! opset range) becomes which IR operator, and the attribute rewrites that
//! normalise older opset forms.
//!
//! Operators whose IR name equals their ONNX name and that need no rewrite
//! are found without an entry here.

use strata_ir::{AttrValue, DType, Op, TensorData};

/// Rewrites a node's attributes before the IR parses them.
pub type Fixup = fn(&mut Vec<(String, AttrValue)>) -> Result<(), String>;

/// One row of the table.
pub struct Mapping {
    pub domain: &'static str,
    pub onnx: &'static str,
    /// Applies to opset versions in `since..until`.
    pub since: i64,
    pub until: i64,
    pub ir: &'static str,
    pub fixup: Option<Fixup>,
}

const ANY: i64 = i64::MAX;

/// Domains we import, with the highest opset version we understand.
pub const DOMAINS: &[(&str, i64)] =
    &[("", 28), ("ai.onnx.ml", 5), ("ai.onnx.preview.training", 1), ("ai.onnx.preview", 1)];

/// The table.
pub static TABLE: &[Mapping] = &[
    Mapping { domain: "", onnx: "Softmax", since: 1, until: 13, ir: "SoftmaxLegacy", fixup: None },
    Mapping { domain: "", onnx: "LogSoftmax", since: 1, until: 13, ir: "LogSoftmaxLegacy", fixup: None },
    Mapping { domain: "", onnx: "Hardmax", since: 1, until: 13, ir: "HardmaxLegacy", fixup: None },
    Mapping { domain: "", onnx: "Scan", since: 8, until: 9, ir: "Scan8", fixup: None },
    Mapping { domain: "", onnx: "Resize", since: 10, until: 11, ir: "Upsample", fixup: None },
    Mapping { domain: "", onnx: "GridSample", since: 16, until: 20, ir: "GridSample", fixup: Some(grid_sample_16) },
    Mapping { domain: "", onnx: "Constant", since: 1, until: ANY, ir: "Constant", fixup: Some(constant) },
    Mapping { domain: "", onnx: "DFT", since: 17, until: 20, ir: "DFT", fixup: Some(dft_17) },
];

/// Find the IR operator for an ONNX node.
pub fn lookup(domain: &str, op_type: &str, opset: i64) -> Option<(&'static str, Option<Fixup>)> {
    let domain = if domain == "ai.onnx" { "" } else { domain };
    if let Some(m) =
        TABLE.iter().find(|m| m.domain == domain && m.onnx == op_type && (m.since..m.until).contains(&opset))
    {
        return Some((m.ir, m.fixup));
    }
    // Same-named operators, if the IR knows the name.
    Op::all_names().into_iter().find(|n| *n == op_type).map(|n| (n, None))
}

#[allow(clippy::ptr_arg)] // matches the `Fixup` signature
fn grid_sample_16(attrs: &mut Vec<(String, AttrValue)>) -> Result<(), String> {
    for (name, v) in attrs.iter_mut() {
        if name == "mode"
            && let AttrValue::String(s) = v
        {
            *s = match s.as_str() {
                "bilinear" => "linear".into(),
                "bicubic" => "cubic".into(),
                other => other.into(),
            };
        }
    }
    Ok(())
}

/// DFT-17 takes `axis` as an attribute defaulting to 1 (DFT-20 defaults to -2).
fn dft_17(attrs: &mut Vec<(String, AttrValue)>) -> Result<(), String> {
    if !attrs.iter().any(|(n, _)| n == "axis") {
        attrs.push(("axis".into(), AttrValue::Int(1)));
    }
    Ok(())
}

fn constant(attrs: &mut Vec<(String, AttrValue)>) -> Result<(), String> {
    if attrs.len() != 1 {
        return Err(format!("Constant needs exactly one value attribute, found {}", attrs.len()));
    }
    let (name, v) = attrs.pop().unwrap();
    let bad = |e: strata_ir::IrError| e.to_string();
    let t = match (name.as_str(), v) {
        ("value" | "sparse_value", AttrValue::Tensor(t)) => t,
        ("value_float", AttrValue::Float(f)) => TensorData::from_f32(vec![], &[f]).map_err(bad)?,
        ("value_floats", AttrValue::Floats(f)) => TensorData::from_f32(vec![f.len()], &f).map_err(bad)?,
        ("value_int", AttrValue::Int(i)) => TensorData::from_i64(vec![], &[i]).map_err(bad)?,
        ("value_ints", AttrValue::Ints(i)) => TensorData::from_i64(vec![i.len()], &i).map_err(bad)?,
        ("value_string", AttrValue::String(s)) => TensorData::from_strings(vec![], vec![s]).map_err(bad)?,
        ("value_strings", AttrValue::Strings(s)) => TensorData::from_strings(vec![s.len()], s).map_err(bad)?,
        (n, v) => return Err(format!("Constant attribute '{n}' has unexpected value {v:?}")),
    };
    let _ = DType::F32;
    attrs.push(("value".into(), AttrValue::Tensor(t)));
    Ok(())
}
