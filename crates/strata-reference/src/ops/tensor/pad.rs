//! Padding kernels: Pad (constant, reflect, edge and wrap modes; negative
//! pads crop) and CenterCropPad.
//!
//! Both map every output coordinate to an input coordinate or to "fill";
//! the input elements and one fill element are laid end to end so the
//! output is a single gather.

use strata_ir::ops::TensorOp;
use strata_ir::ops::tensor::PadMode;

use super::{ints, map_indices, real_axes, zero_like};
use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, Ctx, one};
use crate::util::{check_numel, ravel, to_dims};
use crate::value::{Data, Tensor, Value};

/// Run one padding operator.
pub fn run(op: &TensorOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    match op {
        TensorOp::Pad { mode, pads, value } => {
            let (pads, fill, axes) = match pads {
                // Pre-opset-11 form: attributes, all axes.
                Some(p) => (p.clone(), attr_fill(&x.data, value.unwrap_or(0.0)), None),
                None => {
                    let pads = ints(args.tensor(1)?, "pads")?;
                    let fill = match args.opt_tensor(2)? {
                        Some(c) if c.numel() == 1 => {
                            if c.dtype != x.dtype {
                                bail!("constant_value is {} but data is {}", c.dtype, x.dtype);
                            }
                            c.data.clone()
                        }
                        Some(c) if c.numel() > 1 => bail!("constant_value must be a scalar, got shape {:?}", c.shape),
                        _ => zero_like(&x.data),
                    };
                    let axes = args.opt_tensor(3)?.map(|t| ints(t, "axes")).transpose()?;
                    (pads, fill, axes)
                }
            };
            pad(x, &pads, fill, axes, *mode)
        }
        TensorOp::CenterCropPad { axes } => {
            let shape = to_dims(&ints(args.tensor(1)?, "shape")?, "shape")?;
            let axes = match axes {
                Some(a) => real_axes(a, x.rank())?,
                None => (0..x.rank()).collect(),
            };
            if shape.len() != axes.len() {
                bail!("shape has {} entries for {} axes", shape.len(), axes.len());
            }
            // Per axis: input coordinate = output coordinate + offset.
            let mut out_shape = x.shape.clone();
            let mut offset = vec![0i128; x.rank()];
            for (&a, &t) in axes.iter().zip(&shape) {
                let d = x.shape[a];
                out_shape[a] = t;
                // Crop keeps the centre (rounding the start down); padding
                // places the input at the centre (rounding the start down).
                offset[a] = if t < d { ((d - t) / 2) as i128 } else { -(((t - d) / 2) as i128) };
            }
            check_numel(&out_shape)?;
            let src = |o: &[usize]| -> Option<Vec<usize>> {
                (0..o.len())
                    .map(|a| {
                        let p = o[a] as i128 + offset[a];
                        (p >= 0 && p < x.shape[a] as i128).then_some(p as usize)
                    })
                    .collect()
            };
            gather_with_fill(x, zero_like(&x.data), out_shape, src)
        }
        // Routed here only by `tensor.rs`, whose match names every operator.
        other => bail!("internal: {} is not a padding operator", other.name()),
    }
}

/// The fill element for the old `value` attribute, in `data`'s class.
fn attr_fill(data: &Data, v: f32) -> Data {
    match data {
        Data::F(_) => Data::F(vec![v as f64]),
        Data::I(_) => Data::I(vec![v as i128]),
        Data::B(_) => Data::B(vec![v != 0.0]),
        Data::S(_) => Data::S(vec![String::new()]),
    }
}

/// Output of `out_shape` whose element at `o` is `x[src(o)]`, or `fill`
/// where `src` gives `None`.
fn gather_with_fill(
    x: &Tensor,
    fill: Data,
    out_shape: Vec<usize>,
    src: impl Fn(&[usize]) -> Option<Vec<usize>>,
) -> KResult<Vec<Value>> {
    let all = Data::concat(&[&x.data, &fill])?;
    let fill_at = x.numel();
    let idx = map_indices(&out_shape, |o| Ok(src(o).map_or(fill_at, |s| ravel(&s, &x.shape))))?;
    one(Tensor::new(x.dtype, out_shape, all.gather(&idx))?)
}

/// Pad: `pads` holds all begin amounts then all end amounts for `axes`
/// (default: every axis). Negative amounts crop first; the remaining part is
/// then padded according to `mode`.
fn pad(x: &Tensor, pads: &[i64], fill: Data, axes: Option<Vec<i64>>, mode: PadMode) -> KResult<Vec<Value>> {
    let r = x.rank();
    let axes = match axes {
        Some(a) => real_axes(&a, r)?,
        None => (0..r).collect(),
    };
    let n = axes.len();
    if pads.len() != 2 * n {
        bail!("pads has {} entries, expected {} for {n} axes", pads.len(), 2 * n);
    }
    // Per axis: elements cropped at the start, kept length, padding at the start.
    let mut crop = vec![0usize; r];
    let mut kept = x.shape.clone();
    let mut before = vec![0usize; r];
    let mut out_shape = x.shape.clone();
    for (k, &a) in axes.iter().enumerate() {
        let (b, e) = (pads[k] as i128, pads[n + k] as i128);
        let d = x.shape[a] as i128;
        let (cb, ce) = ((-b).max(0), (-e).max(0));
        if cb + ce > d {
            bail!("pads {} and {} crop more than the {d} elements of axis {a}", pads[k], pads[n + k]);
        }
        let (pb, pe) = (b.max(0), e.max(0));
        let len = d - cb - ce;
        if len == 0 && pb + pe > 0 && mode != PadMode::Constant {
            bail!("cannot pad an empty axis {a} in {mode} mode");
        }
        let out = len + pb + pe;
        if out > usize::MAX as i128 / 2 {
            bail!("padded size of axis {a} is too large");
        }
        crop[a] = cb as usize;
        kept[a] = len as usize;
        before[a] = pb as usize;
        out_shape[a] = out as usize;
    }
    check_numel(&out_shape)?;
    let src = |o: &[usize]| -> Option<Vec<usize>> {
        (0..o.len())
            .map(|a| {
                let p = o[a] as i128 - before[a] as i128;
                let d = kept[a] as i128;
                let q = if (0..d).contains(&p) {
                    p
                } else {
                    match mode {
                        PadMode::Edge => p.clamp(0, d - 1),
                        PadMode::Wrap => p.rem_euclid(d),
                        PadMode::Reflect if d == 1 => 0,
                        PadMode::Reflect => {
                            // Mirror without repeating the edge: period 2(d-1).
                            let q = p.rem_euclid(2 * (d - 1));
                            if q >= d { 2 * (d - 1) - q } else { q }
                        }
                        PadMode::Constant => return None,
                    }
                };
                Some(crop[a] + q as usize)
            })
            .collect()
    };
    gather_with_fill(x, fill, out_shape, src)
}
