//! Signal processing: Fourier transforms, windows and mel filters.

use crate::dtype::DType;

crate::op_family! {
    /// Signal-processing operators.
    pub enum SignalOp {
        /// `axis` attribute is the opset-17 form (later an input).
        DFT { axis: Option<i64>, inverse: i64 = 0, onesided: i64 = 0 },
        STFT { onesided: i64 = 1 },
        HannWindow { output_datatype: DType = DType::F32, periodic: i64 = 1 },
        HammingWindow { output_datatype: DType = DType::F32, periodic: i64 = 1 },
        BlackmanWindow { output_datatype: DType = DType::F32, periodic: i64 = 1 },
        MelWeightMatrix { output_datatype: DType = DType::F32 },
    }
}

/// The geometry of one `DFT`, defined once for every backend: which axis
/// is transformed, the transform length and the output shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DftGeometry {
    /// The transformed axis (normalised; never the last one).
    pub axis: usize,
    /// Input length along `axis`.
    pub n_in: usize,
    /// The transform length (`dft_length`, or inferred).
    pub len: usize,
    /// Output length along `axis` (`len / 2 + 1` for a one-sided forward
    /// transform).
    pub out_len: usize,
    /// The input's last axis is 2 (complex) rather than 1 (real).
    pub complex_in: bool,
    /// The output's last axis is 2 (complex); only a one-sided inverse
    /// transform gives real output.
    pub complex_out: bool,
    pub out_shape: Vec<usize>,
}

/// Resolve a `DFT` over an input of `shape` (rank ≥ 2, last axis 1 = real
/// or 2 = complex). `axis` is the attribute (opsets 17–19) or the input
/// (opset 20; default -2), `dft_length` the optional input.
pub fn dft_geometry(
    shape: &[usize],
    axis: Option<i64>,
    dft_length: Option<i64>,
    inverse: bool,
    onesided: bool,
) -> Result<DftGeometry, String> {
    let r = shape.len();
    if r < 2 || !matches!(shape[r - 1], 1 | 2) {
        return Err(format!(
            "input must have rank >= 2 and a last dimension of 1 (real) or 2 (complex), got shape {shape:?}"
        ));
    }
    let a = axis.unwrap_or(-2);
    let ri = r as i64;
    if a < -ri || a >= ri {
        return Err(format!("axis {a} is out of range for rank {r}"));
    }
    let ax = if a < 0 { (a + ri) as usize } else { a as usize };
    if ax == r - 1 {
        return Err(format!("axis {a} must not be the last (real/imaginary) dimension"));
    }
    let n_in = shape[ax];
    let len = match dft_length {
        Some(l) if l < 1 => return Err(format!("dft_length must be positive, got {l}")),
        Some(l) => usize::try_from(l).map_err(|_| format!("dft_length {l} is too large"))?,
        None if inverse && onesided => {
            if n_in < 1 {
                return Err("cannot infer dft_length from an empty axis".into());
            }
            2 * (n_in - 1)
        }
        None => n_in,
    };
    if len == 0 {
        return Err(format!("dft_length must be positive (axis {ax} of shape {shape:?} is too short)"));
    }
    let (out_len, complex_out) = if inverse && onesided {
        (len, false)
    } else if onesided {
        (len / 2 + 1, true)
    } else {
        (len, true)
    };
    let mut out_shape = shape.to_vec();
    out_shape[ax] = out_len;
    out_shape[r - 1] = if complex_out { 2 } else { 1 };
    Ok(DftGeometry { axis: ax, n_in, len, out_len, complex_in: shape[r - 1] == 2, complex_out, out_shape })
}

impl SignalOp {
    /// Shape inference: this family's output types stay unknown.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, _ins: &[crate::shape::In]) -> crate::shape::Outs {
        match self {
            SignalOp::DFT { .. }
            | SignalOp::STFT { .. }
            | SignalOp::HannWindow { .. }
            | SignalOp::HammingWindow { .. }
            | SignalOp::BlackmanWindow { .. }
            | SignalOp::MelWeightMatrix { .. } => Ok(vec![None]),
        }
    }
}
