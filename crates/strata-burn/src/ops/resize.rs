//! Resize and Upsample on float32, every mode: the sampling plan (output
//! sizes, per-axis source indices and weights, extrapolation) comes from
//! `strata_ir::resample`, and burn applies it axis by axis — for each tap
//! a `select` of the source rows times a weight vector broadcast along the
//! axis, summed — with the extrapolation value where the plan has no source.

use burn_backend::tensor::FloatTensor;
use burn_backend::{Backend, Scalar, TensorData};
use strata_ir::ops::NnOp as N;
use strata_ir::resample::{self, AxisPlan, AxisTable};

use super::{NodeInfo, Out, Unsupported, expand_to, input, numel};
use crate::tensor::{BOOL, BurnTensor, FLOAT};

/// A compiled Resize or Upsample node (the operator kept: its decoded
/// attributes borrow from it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resize {
    op: N,
}

/// Plan Resize/Upsample (`None`: another operator).
pub(crate) fn plan(op: &N, info: &NodeInfo) -> Option<Result<Resize, Unsupported>> {
    if !matches!(op, N::Resize { .. } | N::Upsample { .. }) {
        return None;
    }
    Some(info.require_f32(&[1, 2, 3]).map(|()| Resize { op: op.clone() }))
}

/// A given, non-empty operand as f64 / i64 values.
fn floats<B: Backend>(ins: &[Option<&BurnTensor<B>>], i: usize) -> Result<Option<Vec<f64>>, String> {
    match ins.get(i).copied().flatten() {
        Some(t) if numel(&t.shape)? > 0 => Ok(Some(t.host_f64()?)),
        _ => Ok(None),
    }
}

/// Apply one axis table to `x` (burn shape `shape`), returning the new data.
fn apply<B: Backend>(
    x: FloatTensor<B>,
    shape: &mut Vec<usize>,
    axis: usize,
    table: &AxisTable,
    extrapolation: f64,
    device: &B::Device,
) -> FloatTensor<B> {
    let len_out = table.len();
    let taps = table.iter().map(|e| e.as_ref().map_or(0, |t| t.len())).max().unwrap_or(0).max(1);
    let mut out_shape = shape.clone();
    out_shape[axis] = len_out;
    let mut along = vec![1; shape.len()];
    along[axis] = len_out;
    let vector = |v: Vec<f32>| {
        let t = BurnTensor::<B>::new(vec![len_out], B::float_from_data(TensorData::new(v, vec![len_out]), device));
        expand_to(&t.with_shape(along.clone()), &out_shape)
    };
    let mut acc: Option<FloatTensor<B>> = None;
    for k in 0..taps {
        let idx: Vec<i64> =
            table.iter().map(|e| e.as_ref().and_then(|t| t.get(k)).map_or(0, |&(j, _)| j as i64)).collect();
        let w: Vec<f32> =
            table.iter().map(|e| e.as_ref().and_then(|t| t.get(k)).map_or(0.0, |&(_, w)| w as f32)).collect();
        let ids = B::int_from_data(TensorData::new(idx, vec![len_out]), device);
        let picked = B::float_select(x.clone(), axis, ids);
        let term = if w.iter().all(|&v| v == 1.0) { picked } else { B::float_mul(picked, vector(w)) };
        acc = Some(match acc {
            None => term,
            Some(a) => B::float_add(a, term),
        });
    }
    let mut y = acc.expect("at least one tap");
    if table.iter().any(|e| e.is_none()) {
        let m: Vec<f32> = table.iter().map(|e| if e.is_none() { 1.0 } else { 0.0 }).collect();
        let mask = B::float_greater_elem(vector(m), Scalar::from(0.5f32), BOOL);
        let fill = B::float_full(
            burn_backend::Shape::from(out_shape.clone()),
            Scalar::from(extrapolation as f32),
            device,
            FLOAT,
        );
        y = B::float_mask_where(y, mask, fill);
    }
    *shape = out_shape;
    y
}

/// Output sizes, scales, regions of interest and the per-axis plan.
type Sampling = (Vec<usize>, Vec<f64>, Vec<(f64, f64)>, AxisPlan);

impl Resize {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Out<B> {
        let x = input(ins, 0)?;
        let r = x.shape.len();
        let (out_dims, scales, roi, plan): Sampling = match &self.op {
            N::Upsample { mode, scales } => {
                let scales: Vec<f64> = match floats(ins, 1)? {
                    Some(s) => s,
                    None => scales.as_ref().ok_or("Upsample without scales")?.iter().map(|&v| v as f64).collect(),
                };
                if scales.len() != r {
                    return Err(format!("scales has {} values, expected {r}", scales.len()));
                }
                let out =
                    x.shape.iter().zip(&scales).map(|(&d, &s)| resample::scaled_len(d, s)).collect::<Result<_, _>>()?;
                (out, scales, vec![(0.0, 1.0); r], AxisPlan::upsample(*mode))
            }
            op => {
                let a = op.resize_attrs().ok_or("not a Resize")?;
                let plan = resample::plan(&a);
                let roi = floats(ins, 1)?;
                let scales = floats(ins, 2)?;
                let sizes = match ins.get(3).copied().flatten() {
                    Some(t) if numel(&t.shape)? > 0 => Some(t.host_ints()?),
                    _ => None,
                };
                let g = resample::geometry(&x.shape, &a, &plan, roi.as_deref(), scales.as_deref(), sizes.as_deref())?;
                (g.out_dims, g.scales, g.roi, plan)
            }
        };
        if numel(&out_dims)? == 0 || numel(&x.shape)? == 0 {
            return Err("Resize to or from an empty tensor".into());
        }
        let tables = resample::axis_tables(&x.shape, &out_dims, &scales, &roi, &plan)?;
        let mut shape = x.shape.clone();
        let mut p = x.reshaped(&shape);
        if r == 0 {
            return Ok(vec![x.clone()]);
        }
        for (axis, table) in &tables {
            p = apply::<B>(p, &mut shape, *axis, table, plan.extrapolation_value, device);
        }
        Ok(vec![BurnTensor::new(shape, p)])
    }
}
