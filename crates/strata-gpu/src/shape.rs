//! Host-side shape arithmetic of the kernels: 32-bit parameter words,
//! contiguous and broadcast strides, axis normalisation.

use crate::error::{GpuError, Result};
use crate::kernels::MAX_RANK;

/// `x` as a 32-bit kernel parameter, or a limit error.
pub(crate) fn u32c(x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| GpuError::Limit(format!("size {x} exceeds 32-bit GPU indexing")))
}

/// Row-major strides of `shape`.
pub(crate) fn contiguous(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// The broadcast shape of `shapes` (numpy rules).
pub(crate) fn broadcast(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let r = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; r];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[r - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(GpuError::Shape(format!("shapes {shapes:?} do not broadcast")));
            }
        }
    }
    Ok(out)
}

/// Strides of `shape` read as `out` under broadcasting (0 along broadcast axes).
pub(crate) fn bstrides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let cs = contiguous(shape);
    let off = out.len() - shape.len();
    (0..out.len()).map(|i| if i < off || shape[i - off] == 1 { 0 } else { cs[i - off] }).collect()
}

/// The strided kernels index at most [`MAX_RANK`] axes.
pub(crate) fn check_rank(shape: &[usize]) -> Result<()> {
    if shape.len() > MAX_RANK {
        Err(GpuError::Unsupported(format!("rank {} exceeds the GPU kernels' limit of {MAX_RANK}", shape.len())))
    } else {
        Ok(())
    }
}

/// `axis` (negative counts from the end) as an index below `rank`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(GpuError::Shape(format!("axis {axis} out of range for rank {rank}")))
    }
}

/// Write `vals` as 32-bit words into `p` from index `at`.
pub(crate) fn put(p: &mut [u32], at: usize, vals: &[usize]) -> Result<()> {
    for (i, &v) in vals.iter().enumerate() {
        p[at + i] = u32c(v)?;
    }
    Ok(())
}

/// The bits of an f32 parameter.
pub(crate) fn f32w(x: f32) -> u32 {
    x.to_bits()
}

/// `(lines, L, inner)` of `shape` along `axis`: the kernels of one
/// invocation per line.
pub(crate) fn lines(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let l = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    (outer * inner, l, inner)
}
