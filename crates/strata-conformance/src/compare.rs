//! Comparing outputs with expected values.

use strata::Value;
use strata_ir::DType;

/// Tolerance for float comparison: `|a - e| <= atol + rtol * |e|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

impl Tolerance {
    /// The ONNX backend test runner's rule.
    pub const ONNX: Tolerance = Tolerance { rtol: 1e-3, atol: 1e-7 };
    /// Real models against onnxruntime.
    pub const MODELS: Tolerance = Tolerance { rtol: 1e-4, atol: 1e-5 };
}

/// Compare an actual value with the expected one; `Err` says how they differ.
/// Shapes and element types must match exactly; NaN matches NaN; integers,
/// bools and strings must be equal.
pub fn compare_values(actual: &Value, expected: &Value, tol: Tolerance) -> Result<(), String> {
    match (actual, expected) {
        (Value::Tensor(a), Value::Tensor(e)) => {
            if a.dtype() != e.dtype() {
                return Err(format!("dtype {} != expected {}", a.dtype(), e.dtype()));
            }
            if a.shape() != e.shape() {
                return Err(format!("shape {:?} != expected {:?}", a.shape(), e.shape()));
            }
            if a.dtype() == DType::String {
                let (x, y) = (a.strings().unwrap_or(&[]), e.strings().unwrap_or(&[]));
                if let Some(i) = (0..x.len()).find(|&i| x[i] != y[i]) {
                    return Err(format!("element {i}: {:?} != expected {:?}", x[i], y[i]));
                }
                return Ok(());
            }
            if !a.dtype().is_float() && !a.dtype().is_complex() {
                let (x, y) = (a.to_i128_vec(), e.to_i128_vec());
                if let Some(i) = (0..x.len()).find(|&i| x[i] != y[i]) {
                    return Err(format!("element {i}: {} != expected {}", x[i], y[i]));
                }
                return Ok(());
            }
            let (x, y) = (a.to_f64_vec(), e.to_f64_vec());
            let mut worst: Option<(usize, f64)> = None;
            let mut bad = 0usize;
            for i in 0..x.len() {
                let (p, q) = (x[i], y[i]);
                let ok = if p.is_nan() || q.is_nan() {
                    p.is_nan() && q.is_nan()
                } else if p.is_infinite() || q.is_infinite() {
                    p == q
                } else {
                    (p - q).abs() <= tol.atol + tol.rtol * q.abs()
                };
                if !ok {
                    bad += 1;
                    let err = if p.is_nan() || q.is_nan() { f64::INFINITY } else { (p - q).abs() };
                    if worst.is_none_or(|(_, w)| err > w) {
                        worst = Some((i, err));
                    }
                }
            }
            match worst {
                None => Ok(()),
                Some((i, err)) => Err(format!(
                    "{bad} of {} elements differ; worst at {i}: {} vs expected {} (abs err {err:.3e})",
                    x.len(),
                    x[i],
                    y[i]
                )),
            }
        }
        (Value::Sequence { items: a, .. }, Value::Sequence { items: e, .. }) => {
            if a.len() != e.len() {
                return Err(format!("sequence length {} != expected {}", a.len(), e.len()));
            }
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                compare_values(x, y, tol).map_err(|m| format!("sequence item {i}: {m}"))?;
            }
            Ok(())
        }
        (Value::Optional { value: a, .. }, Value::Optional { value: e, .. }) => match (a, e) {
            (None, None) => Ok(()),
            (Some(x), Some(y)) => compare_values(x, y, tol),
            (None, Some(_)) => Err("optional is empty, expected a value".into()),
            (Some(_), None) => Err("optional has a value, expected empty".into()),
        },
        // An optional output compared with a plain expected value (and vice versa).
        (Value::Optional { value: Some(x), .. }, y) => compare_values(x, y, tol),
        (x, Value::Optional { value: Some(y), .. }) => compare_values(x, y, tol),
        (a, e) => Err(format!("value kind {} != expected {}", a.describe(), e.describe())),
    }
}
