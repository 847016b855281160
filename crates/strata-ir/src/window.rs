//! Sliding-window geometry shared by convolution and pooling on every
//! backend: attribute checks, output sizes and padding for each `auto_pad`
//! mode and `ceil_mode`. Pure arithmetic on attribute values, so every
//! backend agrees on shapes by construction.

crate::attr::attr_enum! {
    /// The `auto_pad` attribute of convolution and pooling: explicit `pads`
    /// (`NOTSET`, also spelled as an empty string), no padding (`VALID`), or
    /// an output size of `ceil(input / stride)` with the odd padding at the
    /// end (`SAME_UPPER`) or the start (`SAME_LOWER`).
    pub enum AutoPad {
        NotSet = "NOTSET" | "",
        Valid = "VALID",
        SameUpper = "SAME_UPPER",
        SameLower = "SAME_LOWER",
    }
}

impl AutoPad {
    /// `SAME_UPPER` or `SAME_LOWER`.
    pub fn is_same(&self) -> bool {
        matches!(self, AutoPad::SameUpper | AutoPad::SameLower)
    }
}

/// Largest stride, dilation, kernel size or padding accepted. Far beyond
/// any real model, it keeps all window index arithmetic inside `i64`.
pub const MAX_GEOMETRY: i64 = 1 << 32;

/// Check that `v` has `n` values, each at least 1 (and at most [`MAX_GEOMETRY`]).
pub fn positive(v: &[i64], n: usize, what: &str) -> Result<Vec<usize>, String> {
    if v.len() != n {
        return Err(format!("{what} has {} values, expected {n} (one per spatial axis)", v.len()));
    }
    v.iter()
        .map(|&d| {
            if !(1..=MAX_GEOMETRY).contains(&d) {
                return Err(format!("{what} must be positive (and at most {MAX_GEOMETRY}), got {v:?}"));
            }
            Ok(d as usize)
        })
        .collect()
}

/// A per-spatial-axis attribute of `n` values that must each be at least 1
/// (strides, dilations, kernel sizes); `default` when absent.
pub fn axis_attr(v: &Option<Vec<i64>>, n: usize, default: i64, what: &str) -> Result<Vec<usize>, String> {
    match v {
        None => Ok(vec![default.max(1) as usize; n]),
        Some(v) => positive(v, n, what),
    }
}

/// The `pads` attribute as (begin, end) per spatial axis; zeros when absent.
pub fn pads_attr(pads: &Option<Vec<i64>>, n: usize) -> Result<(Vec<i64>, Vec<i64>), String> {
    match pads {
        None => Ok((vec![0; n], vec![0; n])),
        Some(p) => {
            if p.len() != 2 * n {
                return Err(format!(
                    "pads has {} values, expected {} (begin and end per spatial axis)",
                    p.len(),
                    2 * n
                ));
            }
            if p.iter().any(|&v| !(0..=MAX_GEOMETRY).contains(&v)) {
                return Err(format!("pads must not be negative (nor above {MAX_GEOMETRY}), got {p:?}"));
            }
            Ok((p[..n].to_vec(), p[n..].to_vec()))
        }
    }
}

/// Where a sliding window (kernel) sits over the spatial axes: output size
/// and the padding before and after the input, per spatial axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pad_begin: Vec<i64>,
    pub pad_end: Vec<i64>,
    pub out: Vec<usize>,
}

impl Window {
    /// Work out the window geometry for spatial input sizes `input`.
    ///
    /// `auto_pad` is NOTSET (explicit `pads`), VALID (no padding) or
    /// SAME_UPPER / SAME_LOWER (output size `ceil(input / stride)`, the
    /// padding split evenly with the odd one at the end / at the start).
    /// With `ceil_mode` the output size is rounded up, dropping a last
    /// window that would start in the end padding.
    pub fn new(
        input: &[usize],
        kernel: Vec<usize>,
        strides: Vec<usize>,
        dilations: Vec<usize>,
        pads: &Option<Vec<i64>>,
        auto_pad: AutoPad,
        ceil_mode: bool,
    ) -> Result<Window, String> {
        let n = input.len();
        if kernel.len() != n || strides.len() != n || dilations.len() != n {
            return Err(format!("window attributes do not match the {n} spatial axes"));
        }
        let (mut pad_begin, mut pad_end) = pads_attr(pads, n)?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            // i128 keeps every product of attribute values from overflowing.
            let (len, k, s, d) = (input[i] as i128, kernel[i] as i128, strides[i] as i128, dilations[i] as i128);
            let extent = (k - 1) * d + 1;
            let size = match auto_pad {
                AutoPad::NotSet => {
                    let span = len + pad_begin[i] as i128 + pad_end[i] as i128 - extent;
                    if span < 0 {
                        return Err(format!(
                            "kernel extent {extent} is larger than padded input size along spatial axis {i}"
                        ));
                    }
                    if ceil_mode {
                        let mut size = (span + s - 1) / s + 1;
                        // The last window must start inside the input or the begin padding.
                        if (size - 1) * s >= len + pad_begin[i] as i128 {
                            size -= 1;
                        }
                        size
                    } else {
                        span / s + 1
                    }
                }
                AutoPad::Valid => {
                    pad_begin[i] = 0;
                    pad_end[i] = 0;
                    let span = len - extent;
                    if span < 0 {
                        return Err(format!(
                            "kernel extent {extent} is larger than input size {len} along spatial axis {i}"
                        ));
                    }
                    span / s + 1
                }
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let size = (len + s - 1) / s;
                    let total = ((size - 1) * s + extent - len).max(0);
                    let small = total / 2;
                    let (b, e) =
                        if auto_pad == AutoPad::SameUpper { (small, total - small) } else { (total - small, small) };
                    pad_begin[i] = i64::try_from(b).map_err(|_| "padding too large".to_string())?;
                    pad_end[i] = i64::try_from(e).map_err(|_| "padding too large".to_string())?;
                    size
                }
            };
            match usize::try_from(size) {
                Ok(v) => out.push(v),
                Err(_) => return Err(format!("output size {size} along spatial axis {i} is out of range")),
            }
        }
        Ok(Window { kernel, strides, dilations, pad_begin, pad_end, out })
    }

    /// Input coordinate along axis `i` of kernel tap `k` of output position
    /// `o` (negative or past the end when it falls in the padding).
    pub fn input_pos(&self, i: usize, o: usize, k: usize) -> i64 {
        o as i64 * self.strides[i] as i64 - self.pad_begin[i] + k as i64 * self.dilations[i] as i64
    }
}

/// A [`Window`] as fixed-rank kernels take it: `N` spatial axes, the
/// problem's axes last and any leading ones of size 1 (unit kernel, stride
/// and dilation, no padding), with the input sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow<const N: usize> {
    /// Spatial input sizes.
    pub input: [usize; N],
    /// Spatial output sizes.
    pub out: [usize; N],
    /// Kernel sizes.
    pub kernel: [usize; N],
    /// Strides.
    pub strides: [usize; N],
    /// Dilations.
    pub dilations: [usize; N],
    /// Padding before the input.
    pub pad_begin: [i64; N],
    /// Padding after the input.
    pub pad_end: [i64; N],
}

impl Window {
    /// This window over spatial input sizes `input` as a [`FixedWindow`] of
    /// `N` axes; `None` if it has more than `N` spatial axes.
    pub fn fixed<const N: usize>(&self, input: &[usize]) -> Option<FixedWindow<N>> {
        let n = input.len();
        if n > N || self.out.len() != n {
            return None;
        }
        let mut f = FixedWindow {
            input: [1; N],
            out: [1; N],
            kernel: [1; N],
            strides: [1; N],
            dilations: [1; N],
            pad_begin: [0; N],
            pad_end: [0; N],
        };
        for (i, j) in (N - n..N).enumerate() {
            f.input[j] = input[i];
            f.out[j] = self.out[i];
            f.kernel[j] = self.kernel[i];
            f.strides[j] = self.strides[i];
            f.dilations[j] = self.dilations[i];
            f.pad_begin[j] = self.pad_begin[i];
            f.pad_end[j] = self.pad_end[i];
        }
        Some(f)
    }
}

/// The geometry attributes of a convolution or pooling node as the IR holds
/// them (`NnOp::window_attrs`), the one place a backend reads them from;
/// [`WindowAttrs::window`] resolves them for given input sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowAttrs {
    /// How padding is chosen.
    pub auto_pad: AutoPad,
    /// Round output sizes up (pooling; always `false` for convolutions).
    pub ceil_mode: bool,
    /// Kernel sizes (required for pooling, else read from the weights).
    pub kernel_shape: Option<Vec<i64>>,
    /// Strides, 1 per axis when absent.
    pub strides: Option<Vec<i64>>,
    /// Dilations, 1 per axis when absent.
    pub dilations: Option<Vec<i64>>,
    /// Explicit pads (begin values, then end values).
    pub pads: Option<Vec<i64>>,
}

impl WindowAttrs {
    /// The geometry of `kernel` over spatial input sizes `input`.
    pub fn window(&self, input: &[usize], kernel: Vec<usize>) -> Result<Window, String> {
        let n = input.len();
        let strides = axis_attr(&self.strides, n, 1, "strides")?;
        let dilations = axis_attr(&self.dilations, n, 1, "dilations")?;
        Window::new(input, kernel, strides, dilations, &self.pads, self.auto_pad, self.ceil_mode)
    }
}

/// ConvTranspose geometry: output spatial sizes and the padding removed at
/// the start of each axis, from `pads` / `auto_pad`, `output_padding` and
/// `output_shape` (which some exporters write with the batch and channel
/// axes, and `output_padding` with begin and end values).
#[allow(clippy::too_many_arguments)]
pub fn transpose_geometry(
    in_sp: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    pads: &Option<Vec<i64>>,
    auto_pad: AutoPad,
    output_padding: &Option<Vec<i64>>,
    output_shape: &Option<Vec<i64>>,
) -> Result<(Vec<usize>, Vec<i64>), String> {
    let nsp = in_sp.len();
    if kernel.len() != nsp || strides.len() != nsp || dilations.len() != nsp {
        return Err(format!("window attributes do not match the {nsp} spatial axes"));
    }
    let out_pad: Vec<i64> = match output_padding {
        None => vec![0; nsp],
        // Some exporters write begin and end values; only the first half counts.
        Some(p) if p.len() == nsp || p.len() == 2 * nsp => p[..nsp].to_vec(),
        Some(p) => return Err(format!("output_padding has {} values, expected {nsp}", p.len())),
    };
    if out_pad.iter().any(|&p| p < 0) {
        return Err(format!("output_padding must not be negative, got {out_pad:?}"));
    }
    let requested: Option<Vec<i64>> = match output_shape {
        None if auto_pad.is_same() => Some(in_sp.iter().zip(strides).map(|(&i, &s)| i as i64 * s as i64).collect()),
        None => None,
        // Some exporters include the batch and channel axes.
        Some(s) if s.len() == nsp + 2 => Some(s[2..].to_vec()),
        Some(s) if s.len() == nsp => Some(s.clone()),
        Some(s) => return Err(format!("output_shape has {} values, expected {nsp}", s.len())),
    };

    // Natural output size without padding, and the begin padding per axis.
    let mut pad_begin = vec![0i64; nsp];
    let mut out_sp = vec![0usize; nsp];
    let (pb_attr, pe_attr) = match auto_pad {
        AutoPad::NotSet => pads_attr(pads, nsp)?,
        AutoPad::Valid | AutoPad::SameUpper | AutoPad::SameLower => (vec![0; nsp], vec![0; nsp]),
    };
    for i in 0..nsp {
        let full = strides[i] as i128 * (in_sp[i] as i128 - 1)
            + out_pad[i] as i128
            + (kernel[i] as i128 - 1) * dilations[i] as i128
            + 1;
        let (size, begin) = match &requested {
            Some(req) => {
                // The total padding that gives the requested size, split
                // with the odd one at the end (SAME_UPPER) or the start.
                let total = full - req[i] as i128;
                let half = total.div_euclid(2);
                (req[i] as i128, if auto_pad == AutoPad::SameUpper { half } else { total - half })
            }
            None => (full - pb_attr[i] as i128 - pe_attr[i] as i128, pb_attr[i] as i128),
        };
        out_sp[i] = match usize::try_from(size) {
            Ok(v) => v,
            Err(_) => return Err(format!("output size {size} along spatial axis {i} is out of range")),
        };
        pad_begin[i] = match i64::try_from(begin) {
            Ok(v) => v,
            Err(_) => return Err(format!("padding {begin} along spatial axis {i} is out of range")),
        };
    }
    Ok((out_sp, pad_begin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_upper_and_lower_split_odd_padding() {
        let up = Window::new(&[5], vec![4], vec![1], vec![1], &None, AutoPad::SameUpper, false).unwrap();
        assert_eq!((up.out[0], up.pad_begin[0], up.pad_end[0]), (5, 1, 2));
        let lo = Window::new(&[5], vec![4], vec![1], vec![1], &None, AutoPad::SameLower, false).unwrap();
        assert_eq!((lo.pad_begin[0], lo.pad_end[0]), (2, 1));
    }

    #[test]
    fn ceil_mode_drops_a_window_starting_in_end_padding() {
        let w = Window::new(&[4], vec![2], vec![2], vec![1], &Some(vec![0, 1]), AutoPad::NotSet, true).unwrap();
        assert_eq!(w.out, vec![2]);
        let w = Window::new(&[5], vec![2], vec![2], vec![1], &None, AutoPad::NotSet, true).unwrap();
        assert_eq!(w.out, vec![3]);
    }

    #[test]
    fn hostile_geometry_is_an_error() {
        assert!(Window::new(&[3], vec![9], vec![1], vec![1], &None, AutoPad::NotSet, false).is_err());
        assert!(pads_attr(&Some(vec![-1, 0]), 1).is_err());
        assert!(axis_attr(&Some(vec![0]), 1, 1, "strides").is_err());
    }
}
