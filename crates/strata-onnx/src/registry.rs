//! The importer's one registry table: which ONNX operator (domain, name,
//! opset range) becomes which IR operator, and the attribute rewrites that
//! normalise older opset forms.
//!
//! Operators whose IR name equals their ONNX name and that need no rewrite
//! are found without an entry here.

use strata_ir::{AttrValue, DType, Op, TensorData};

/// Rewrites a node's attributes before the IR parses them.
pub type Fixup = fn(&mut Vec<(String, AttrValue)>) -> Result<(), String>;

/// A rewrite of an older opset's node that reaches beyond its attributes:
/// the importer carries it out (`import::legacy`), adding nodes before the
/// node where an operand must be reshaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Binary operators before opset 7: `broadcast=1` with `axis` aligns the
    /// second operand's dimensions with the first's starting at `axis`
    /// (today's numpy broadcasting aligns trailing dimensions); without
    /// `axis` it is suffix matching, which numpy broadcasting already is.
    BroadcastAxis,
    /// PRelu before opset 7: a slope of more than one element is per
    /// channel, aligned at axis 1.
    PReluSlope,
    /// BatchNormalization before opset 9: `is_test` (before opset 7;
    /// inference is what runs) and `spatial` (`spatial=0`: statistics per
    /// activation, shaped [C, D1, ...], become elementwise operators).
    BatchNorm,
    /// The experimental ImageScaler of opsets 1-9: `scale * x + bias[c]`
    /// over [N, C, H, W] becomes `Mul` then `Add` of constants.
    ImageScaler,
}

/// One row of the table.
pub struct Mapping {
    pub domain: &'static str,
    pub onnx: &'static str,
    /// Applies to opset versions in `since..until`.
    pub since: i64,
    pub until: i64,
    pub ir: &'static str,
    pub fixup: Option<Fixup>,
    pub rewrite: Option<Rewrite>,
}

const ANY: i64 = i64::MAX;

/// Domains we import, with the highest opset version we understand.
pub const DOMAINS: &[(&str, i64)] =
    &[("", 28), ("ai.onnx.ml", 5), ("ai.onnx.preview.training", 1), ("ai.onnx.preview", 1)];

/// A default-domain row.
const fn row(onnx: &'static str, since: i64, until: i64, ir: &'static str, fixup: Option<Fixup>) -> Mapping {
    Mapping { domain: "", onnx, since, until, ir, fixup, rewrite: None }
}

/// A default-domain operator of opsets before `until` whose node `rewrite` rewrites.
const fn legacy(onnx: &'static str, until: i64, rewrite: Rewrite) -> Mapping {
    Mapping { domain: "", onnx, since: 1, until, ir: onnx, fixup: None, rewrite: Some(rewrite) }
}

/// The table.
pub static TABLE: &[Mapping] = &[
    row("Softmax", 1, 13, "SoftmaxLegacy", None),
    row("LogSoftmax", 1, 13, "LogSoftmaxLegacy", None),
    row("Hardmax", 1, 13, "HardmaxLegacy", None),
    row("Scan", 8, 9, "Scan8", None),
    row("Resize", 10, 11, "Upsample", None),
    row("GridSample", 16, 20, "GridSample", Some(grid_sample_16)),
    row("Constant", 1, ANY, "Constant", Some(constant)),
    row("DFT", 17, 20, "DFT", Some(dft_17)),
    row("Pad", 1, 2, "Pad", Some(pad_1)),
    row("Concat", 1, 4, "Concat", Some(concat_1)),
    row("Cast", 1, 6, "Cast", Some(cast_1)),
    row("Upsample", 1, 7, "Upsample", Some(upsample_1)),
    legacy("Add", 7, Rewrite::BroadcastAxis),
    legacy("Sub", 7, Rewrite::BroadcastAxis),
    legacy("Mul", 7, Rewrite::BroadcastAxis),
    legacy("Div", 7, Rewrite::BroadcastAxis),
    legacy("Pow", 7, Rewrite::BroadcastAxis),
    legacy("And", 7, Rewrite::BroadcastAxis),
    legacy("Or", 7, Rewrite::BroadcastAxis),
    legacy("Xor", 7, Rewrite::BroadcastAxis),
    legacy("Equal", 7, Rewrite::BroadcastAxis),
    legacy("Greater", 7, Rewrite::BroadcastAxis),
    legacy("Less", 7, Rewrite::BroadcastAxis),
    legacy("PRelu", 7, Rewrite::PReluSlope),
    legacy("BatchNormalization", 9, Rewrite::BatchNorm),
    legacy("ImageScaler", 10, Rewrite::ImageScaler),
];

/// Attributes of opsets before `until` that carry nothing for inference
/// (`consumed_inputs`: in-place hints of opsets 1-6): accepted and dropped.
pub const IGNORED_ATTRS: &[(&str, i64)] = &[("consumed_inputs", 7)];

/// What the importer does with one ONNX node: the IR operator it parses, the
/// attribute fixup before parsing and the node-level rewrite, if any.
pub struct Found {
    pub ir: &'static str,
    pub fixup: Option<Fixup>,
    pub rewrite: Option<Rewrite>,
}

/// Find the IR operator for an ONNX node.
pub fn lookup(domain: &str, op_type: &str, opset: i64) -> Option<Found> {
    let domain = if domain == "ai.onnx" { "" } else { domain };
    if let Some(m) =
        TABLE.iter().find(|m| m.domain == domain && m.onnx == op_type && (m.since..m.until).contains(&opset))
    {
        return Some(Found { ir: m.ir, fixup: m.fixup, rewrite: m.rewrite });
    }
    // Same-named operators, if the IR knows the name.
    Op::all_names().into_iter().find(|n| *n == op_type).map(|ir| Found { ir, fixup: None, rewrite: None })
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

/// Concat before opset 4: `axis` is optional and defaults to 1.
fn concat_1(attrs: &mut Vec<(String, AttrValue)>) -> Result<(), String> {
    if !attrs.iter().any(|(n, _)| n == "axis") {
        attrs.push(("axis".into(), AttrValue::Int(1)));
    }
    Ok(())
}

/// Pad-1 names its attribute `paddings` (`pads` since opset 2).
#[allow(clippy::ptr_arg)] // matches the `Fixup` signature
fn pad_1(attrs: &mut Vec<(String, AttrValue)>) -> Result<(), String> {
    for (name, _) in attrs.iter_mut() {
        if name == "paddings" {
            *name = "pads".into();
        }
    }
    Ok(())
}

/// Cast before opset 6 names its target type as a string (`"FLOAT"`).
#[allow(clippy::ptr_arg)] // matches the `Fixup` signature
fn cast_1(attrs: &mut Vec<(String, AttrValue)>) -> Result<(), String> {
    const NAMES: &[&str] = &[
        "UNDEFINED",
        "FLOAT",
        "UINT8",
        "INT8",
        "UINT16",
        "INT16",
        "INT32",
        "INT64",
        "STRING",
        "BOOL",
        "FLOAT16",
        "DOUBLE",
        "UINT32",
        "UINT64",
    ];
    for (name, v) in attrs.iter_mut() {
        if name == "to"
            && let AttrValue::String(s) = v
        {
            let code = NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(s))
                .filter(|&c| c > 0)
                .ok_or_else(|| format!("attribute 'to': unknown type name '{s}'"))?;
            *v = AttrValue::Int(code as i64);
        }
    }
    Ok(())
}

/// The experimental Upsample of opsets 1-6 scales [N, C, H, W] by
/// `height_scale` and `width_scale`; today's form is `scales` per axis.
fn upsample_1(attrs: &mut Vec<(String, AttrValue)>) -> Result<(), String> {
    let mut take = |name: &str| match attrs.iter().position(|(n, _)| n == name).map(|i| attrs.remove(i).1) {
        None => Err(format!("attribute '{name}' is required")),
        Some(AttrValue::Float(f)) => Ok(f),
        Some(other) => Err(format!("attribute '{name}' must be a float, found {other:?}")),
    };
    let (h, w) = (take("height_scale")?, take("width_scale")?);
    attrs.push(("scales".into(), AttrValue::Floats(vec![1.0, 1.0, h, w])));
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
