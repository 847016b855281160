//! The iteration rules of Loop and Scan (opset 9+), shared by the reference
//! kernels and by sessions that run these nodes on the host while their
//! bodies run on other backends: when a loop stops, how scan inputs are
//! sliced, how the scan outputs of the iterations are collected and
//! stacked, and what an output of a body that never ran looks like.

use strata_ir::ValueType;

use super::{index_axis, stack};
use crate::bail;
use crate::error::KResult;
use crate::util::{check_numel, norm_axis};
use crate::value::Tensor;

/// Whether Loop runs iteration `iter`: not past the trip count `max_trips`,
/// and, when the `cond` input is given (`cond_input`), while the body's
/// last condition `cond` holds (without that input the body's condition is
/// passed along but never ends the loop, as the spec says). A loop that
/// would run more than `limit` iterations fails.
pub fn loop_runs(max_trips: Option<i64>, cond_input: Option<bool>, cond: bool, iter: i64, limit: u64) -> KResult<bool> {
    if max_trips.is_some_and(|m| iter >= m) || cond_input.is_some() && !cond {
        return Ok(false);
    }
    if iter as u64 >= limit {
        bail!("loop did not finish within {limit} iterations (the session's max_loop_iterations)");
    }
    Ok(true)
}

/// A per-input or per-output attribute entry (missing entries are 0).
pub(super) fn attr_at(list: Option<&[i64]>, i: usize) -> i64 {
    list.and_then(|l| l.get(i).copied()).unwrap_or(0)
}

/// A scan direction flag: 0 forward, 1 reverse.
pub(super) fn direction(d: i64) -> KResult<bool> {
    match d {
        0 => Ok(false),
        1 => Ok(true),
        other => bail!("scan direction must be 0 or 1, got {other}"),
    }
}

/// Scan's inputs (opset 9+), each sliced along its axis in its direction;
/// all have the same length along their axes.
pub struct ScanInputs<'a> {
    inputs: Vec<(&'a Tensor, usize, bool)>,
    len: usize,
}

impl<'a> ScanInputs<'a> {
    /// The scan inputs with the node's `scan_input_axes` and `scan_input_directions`.
    pub fn new(tensors: &[&'a Tensor], axes: Option<&[i64]>, dirs: Option<&[i64]>) -> KResult<Self> {
        let mut inputs = Vec::with_capacity(tensors.len());
        let mut len = None;
        for (j, t) in tensors.iter().enumerate() {
            if t.rank() == 0 {
                bail!("scan input {j} must have rank at least 1");
            }
            let axis = norm_axis(attr_at(axes, j), t.rank())?;
            let l = t.shape[axis];
            if let Some(prev) = len
                && prev != l
            {
                bail!("scan inputs have different sequence lengths ({prev} and {l})");
            }
            len = Some(l);
            inputs.push((*t, axis, direction(attr_at(dirs, j))?));
        }
        Ok(ScanInputs { inputs, len: len.unwrap_or(0) })
    }

    /// The number of iterations.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no iterations.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Iteration `it`'s slice of every scan input.
    pub fn slices(&self, it: usize) -> KResult<Vec<Tensor>> {
        self.inputs
            .iter()
            .map(|(t, axis, rev)| index_axis(t, *axis, if *rev { self.len - 1 - it } else { it }))
            .collect()
    }
}

/// The scan outputs of the iterations so far: every iteration gives the
/// same number of them; their total size is bounded like any tensor's.
#[derive(Default)]
pub struct ScanOutputs {
    parts: Vec<Vec<Tensor>>,
    elements: usize,
    iterations: usize,
}

impl ScanOutputs {
    /// Append one iteration's scan outputs.
    pub fn push(&mut self, vals: Vec<Tensor>) -> KResult<()> {
        if self.iterations == 0 {
            self.parts = vec![Vec::new(); vals.len()];
        } else if vals.len() != self.parts.len() {
            bail!("the body returned a varying number of scan outputs");
        }
        for (k, t) in vals.into_iter().enumerate() {
            self.elements = self.elements.saturating_add(t.numel());
            check_numel(&[self.elements])?;
            self.parts[k].push(t);
        }
        self.iterations += 1;
        Ok(())
    }

    /// Loop's scan outputs: each stacked along a new first axis.
    pub fn stack_loop(self) -> KResult<Vec<Tensor>> {
        self.parts.iter().map(|p| stack(p, 0)).collect()
    }

    /// Scan's outputs: each stacked along its `scan_output_axes` entry (a
    /// new axis), in iteration order or reversed per `scan_output_directions`.
    pub fn stack_scan(self, axes: Option<&[i64]>, dirs: Option<&[i64]>) -> KResult<Vec<Tensor>> {
        let mut out = Vec::with_capacity(self.parts.len());
        for (k, mut parts) in self.parts.into_iter().enumerate() {
            if direction(attr_at(dirs, k))? {
                parts.reverse();
            }
            let rank = parts.first().map_or(0, |p| p.rank()) + 1;
            out.push(stack(&parts, norm_axis(attr_at(axes, k), rank)?)?);
        }
        Ok(out)
    }
}

/// An output of a loop or scan body that never ran, typed from the body's
/// declared output type `ty`: `[0, element dims...]` when the element shape
/// is known, else `[0]` (float32 when even the type is unknown).
pub fn empty_scan_output(ty: Option<&ValueType>) -> KResult<Tensor> {
    let dtype = ty.and_then(|t| t.dtype()).unwrap_or(strata_ir::DType::F32);
    let mut shape = vec![0usize];
    if let Some(ValueType::Tensor { shape: Some(dims), .. }) = ty {
        let known: Option<Vec<usize>> = dims
            .iter()
            .map(|d| if let strata_ir::Dim::Known(n) = d { usize::try_from(*n).ok() } else { None })
            .collect();
        if let Some(k) = known {
            shape.extend(k);
        }
    }
    Tensor::zeros(dtype, shape)
}
