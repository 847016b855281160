//! Resize (opset 11+) on f32 (part of the `nn` family): the attributes
//! decoded in the IR (`NnOp::resize_attrs`), the shared sampling plan and
//! per-axis tables of `strata_ir::resample` applied one axis at a time;
//! nearest mode moves values exactly.

use strata_ir::DType;
use strata_ir::ops::NnOp;
use strata_ir::resample::{self, AxisPlan};

use super::nn::kerr;
use super::{Ctx, Kernel, NodeInfo, input, unsupported};
use crate::error::Result;
use crate::tensor::CpuTensor;

struct ResizeKernel {
    /// The node's operator (a Resize).
    op: NnOp,
    plan: AxisPlan,
}

impl Kernel for ResizeKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        let a = self.op.resize_attrs().ok_or_else(|| kerr("Resize without Resize attributes".into()))?;
        let plan = self.plan;
        let floats = |i: usize| -> Result<Option<Vec<f64>>> {
            match inputs.get(i).copied().flatten() {
                Some(t) => Ok(Some(t.as_f32()?.iter().map(|&v| v as f64).collect())),
                None => Ok(None),
            }
        };
        let (roi, scales) = (floats(1)?, floats(2)?);
        let sizes = inputs.get(3).copied().flatten().map(|t| t.to_i64()).transpose()?;
        let geo = resample::geometry(&x.shape, &a, &plan, roi.as_deref(), scales.as_deref(), sizes.as_deref())
            .map_err(kerr)?;
        ctx.check_numel(&geo.out_dims)?;
        let tables = resample::axis_tables(&x.shape, &geo.out_dims, &geo.scales, &geo.roi, &plan).map_err(kerr)?;
        let mut shape = x.shape.clone();
        let mut data: std::borrow::Cow<[f32]> = std::borrow::Cow::Borrowed(x.as_f32()?);
        let extrapolate = plan.extrapolation_value as f32;
        for (axis, table) in &tables {
            let len_in = shape[*axis];
            let outer: usize = shape[..*axis].iter().product();
            let inner: usize = shape[axis + 1..].iter().product();
            let block = table.len() * inner;
            let mut out = vec![0.0f32; outer * block];
            let src = &data[..];
            // Nearest sampling (every output reads one input with weight 1)
            // is a gather of indices: no per-element match on the taps.
            let picks: Option<Vec<usize>> = table
                .iter()
                .map(|e| match e.as_deref() {
                    Some(&[(j, 1.0)]) => Some(j),
                    _ => None,
                })
                .collect();
            ctx.pool.for_each_chunk(&mut out, block.max(1), outer * block * 4, |o, chunk| {
                let base = o * len_in * inner;
                if let Some(picks) = &picks {
                    if inner == 1 {
                        let row = &src[base..base + len_in];
                        for (d, &j) in chunk.iter_mut().zip(picks) {
                            *d = row[j];
                        }
                    } else {
                        for (dst, &j) in chunk.chunks_exact_mut(inner).zip(picks) {
                            dst.copy_from_slice(&src[base + j * inner..base + (j + 1) * inner]);
                        }
                    }
                    return;
                }
                if inner == 1 {
                    // The innermost axis: one sum per output element.
                    let row = &src[base..base + len_in];
                    for (d, entry) in chunk.iter_mut().zip(table) {
                        *d = match entry.as_deref() {
                            None => extrapolate,
                            Some(&[(j, 1.0)]) => row[j],
                            Some(taps) => taps.iter().fold(0.0f32, |acc, &(j, w)| acc + w as f32 * row[j]),
                        };
                    }
                    return;
                }
                for (e, entry) in table.iter().enumerate() {
                    let dst = &mut chunk[e * inner..(e + 1) * inner];
                    match entry {
                        None => dst.fill(extrapolate),
                        Some(taps) => {
                            dst.fill(0.0);
                            for &(j, w) in taps {
                                let (row, w) = (&src[base + j * inner..base + (j + 1) * inner], w as f32);
                                if taps.len() == 1 && w == 1.0 {
                                    dst.copy_from_slice(row);
                                } else {
                                    for (d, &v) in dst.iter_mut().zip(row) {
                                        *d += w * v;
                                    }
                                }
                            }
                        }
                    }
                }
            });
            shape[*axis] = table.len();
            data = std::borrow::Cow::Owned(out);
        }
        let data = data.into_owned();
        Ok(vec![CpuTensor::f32(shape, data)])
    }
}

/// Build a Resize kernel, or say which form is not supported here.
pub(crate) fn build(op: &NnOp, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    let attrs = op.resize_attrs().ok_or_else(|| unsupported(format!("{} is not Resize", op.name())))?;
    if info.in_dtype(0) != Some(DType::F32) || info.out_dtype(0) != Some(DType::F32) {
        return Err(unsupported("Resize runs on float32 data only"));
    }
    for i in [1, 2] {
        if info.has_input(i) && info.in_dtype(i) != Some(DType::F32) {
            return Err(unsupported(format!("Resize input {i} must be float32")));
        }
    }
    if info.has_input(3) && info.in_dtype(3) != Some(DType::I64) {
        return Err(unsupported("Resize sizes must be int64"));
    }
    let plan = resample::plan(&attrs);
    Ok(Box::new(ResizeKernel { op: op.clone(), plan }))
}
