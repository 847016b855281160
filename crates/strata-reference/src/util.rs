//! Small helpers shared by kernels: shapes, strides, axes, broadcasting and
//! allocation limits.

use std::cell::Cell;

use crate::bail;
use crate::error::KResult;

/// The default for the most iterations a `Loop` may run (lowered per thread
/// with [`set_max_loop_iterations`]). A loop whose trip count and condition
/// would let it go further is treated as runaway and fails.
pub const MAX_LOOP_ITERATIONS: i64 = 1 << 24;

thread_local! {
    static MAX_ELEMENTS: Cell<usize> = const { Cell::new(1 << 28) };
    static LOOP_ITERATION_LIMIT: Cell<u64> = const { Cell::new(MAX_LOOP_ITERATIONS as u64) };
    static MAX_LIVE_BYTES: Cell<u64> = const { Cell::new(u64::MAX) };
    static LIVE_BYTES: Cell<u64> = const { Cell::new(0) };
}

/// Set the most bytes the values computed by running graphs may hold at
/// once on this thread (all graphs on the stack together: an outer graph's
/// live values count while a subgraph runs). Weights and caller-owned inputs
/// are not counted here (the session checks weights when it loads).
pub fn set_max_live_bytes(n: u64) {
    MAX_LIVE_BYTES.with(|c| c.set(n));
}

/// Bytes of computed values currently live on this thread.
pub fn live_bytes() -> u64 {
    LIVE_BYTES.with(|c| c.get())
}

/// Account for `n` more live bytes; fails (without counting them) when that
/// would pass the limit set by [`set_max_live_bytes`].
pub(crate) fn charge_live_bytes(n: u64) -> KResult<()> {
    let limit = MAX_LIVE_BYTES.with(|c| c.get());
    let now = LIVE_BYTES.with(|c| c.get());
    match now.checked_add(n) {
        Some(total) if total <= limit => {
            LIVE_BYTES.with(|c| c.set(total));
            Ok(())
        }
        _ => bail!(
            "live tensors would need {} bytes, more than the memory limit of {limit} bytes",
            now.saturating_add(n)
        ),
    }
}

/// Give back bytes accounted with [`charge_live_bytes`].
pub(crate) fn release_live_bytes(n: u64) {
    LIVE_BYTES.with(|c| c.set(c.get().saturating_sub(n)));
}

/// Set the largest tensor (in elements) kernels may create on this thread.
pub fn set_max_elements(n: usize) {
    MAX_ELEMENTS.with(|c| c.set(n));
}

/// The largest tensor (in elements) kernels may create on this thread.
pub fn max_elements() -> usize {
    MAX_ELEMENTS.with(|c| c.get())
}

/// Set the most iterations one `Loop` may run on this thread (default
/// [`MAX_LOOP_ITERATIONS`]); a longer loop fails as runaway.
pub fn set_max_loop_iterations(n: u64) {
    LOOP_ITERATION_LIMIT.with(|c| c.set(n));
}

/// The current per-thread `Loop` iteration limit.
pub fn max_loop_iterations() -> u64 {
    LOOP_ITERATION_LIMIT.with(|c| c.get())
}

/// Element count of `shape`, failing on overflow or when it exceeds the
/// allocation limit. Call it before allocating an output whose shape comes
/// from input values.
pub fn check_numel(shape: &[usize]) -> KResult<usize> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let limit = MAX_ELEMENTS.with(|c| c.get());
    match n {
        Some(n) if n <= limit => Ok(n),
        _ => bail!("output shape {shape:?} exceeds the limit of {limit} elements"),
    }
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Multi-index of a flat index.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        if shape[i] > 0 {
            idx[i] = flat % shape[i];
            flat /= shape[i];
        }
    }
    idx
}

/// Flat index of a multi-index.
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |a, (&i, &d)| a * d + i)
}

/// Normalise a possibly negative axis against a rank.
pub fn norm_axis(axis: i64, rank: usize) -> KResult<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r.max(1) && !(r == 0 && axis == 0) {
        bail!("axis {axis} is out of range for rank {rank}");
    }
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// Normalise a list of axes; rejects duplicates.
pub fn norm_axes(axes: &[i64], rank: usize) -> KResult<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = norm_axis(a, rank)?;
        if out.contains(&n) {
            bail!("axis {a} appears more than once");
        }
        out.push(n);
    }
    Ok(out)
}

/// The multidirectional (numpy) broadcast of several shapes.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> KResult<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                bail!("shapes {:?} cannot be broadcast together", shapes);
            }
        }
    }
    Ok(out)
}

/// For each element of `out_shape`, the flat index of the element of a
/// tensor of `in_shape` that broadcasts to it.
pub fn broadcast_map(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let n: usize = out_shape.iter().product();
    let off = out_shape.len() - in_shape.len();
    let in_strides = strides(in_shape);
    let mut map = Vec::with_capacity(n);
    let mut idx = vec![0usize; out_shape.len()];
    for _ in 0..n {
        let mut f = 0;
        for (k, &d) in in_shape.iter().enumerate() {
            if d != 1 {
                f += idx[off + k] * in_strides[k];
            }
        }
        map.push(f);
        // increment the multi-index
        for k in (0..out_shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    map
}

/// Convert i64 dimensions to usize, rejecting negatives.
pub fn to_dims(v: &[i64], what: &str) -> KResult<Vec<usize>> {
    v.iter()
        .map(|&d| {
            if d < 0 {
                Err(crate::error::KernelError::new(format!("{what}: negative dimension {d}")))
            } else {
                Ok(d as usize)
            }
        })
        .collect()
}
