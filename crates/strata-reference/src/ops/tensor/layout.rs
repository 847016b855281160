//! Helpers of the layout kernels (Reshape, Flatten, Squeeze, Unsqueeze,
//! Transpose, Concat, Split, Expand, Tile, DepthToSpace, SpaceToDepth,
//! Shape and Size), which `tensor.rs` runs itself.

use super::{ints, map_indices, real_axis, take};
use crate::bail;
use crate::error::KResult;
use crate::ops::Args;
use crate::util::ravel;
use crate::value::{Data, Tensor, Value};

/// Axes from input 1 when present, else from the (older) attribute.
pub(super) fn axes_input(args: &Args, attr: &Option<Vec<i64>>) -> KResult<Option<Vec<i64>>> {
    Ok(match args.opt_tensor(1)? {
        Some(t) => Some(ints(t, "axes")?),
        None => attr.clone(),
    })
}

/// The output shape of Reshape: `0` copies the input dimension (unless
/// `allowzero`), one `-1` is inferred from the element count.
pub(super) fn reshape_dims(in_shape: &[usize], spec: &[i64], allowzero: bool) -> KResult<Vec<usize>> {
    let total: usize = in_shape.iter().product();
    let mut dims = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        if d == -1 {
            if infer.is_some() {
                bail!("shape {spec:?} has more than one -1");
            }
            infer = Some(i);
            dims.push(1);
        } else if d == 0 && !allowzero {
            match in_shape.get(i) {
                Some(&v) => dims.push(v),
                None => bail!("shape {spec:?} copies dimension {i} (0) but the input has rank {}", in_shape.len()),
            }
        } else if d < 0 {
            bail!("shape {spec:?} has invalid dimension {d}");
        } else {
            match usize::try_from(d) {
                Ok(v) => dims.push(v),
                Err(_) => bail!("shape dimension {d} is too large"),
            }
        }
    }
    if allowzero && infer.is_some() && spec.contains(&0) {
        bail!("shape {spec:?} has both 0 and -1 with allowzero=1");
    }
    let Some(known) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        bail!("shape {spec:?} is too large");
    };
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            bail!("cannot reshape {in_shape:?} to {spec:?}: the -1 dimension cannot be inferred");
        }
        dims[i] = total / known;
    } else if known != total {
        bail!("cannot reshape {in_shape:?} ({total} elements) to {spec:?}");
    }
    Ok(dims)
}

/// Concatenate tensors along `axis`.
pub(super) fn concat(ts: &[&Tensor], axis: i64) -> KResult<Vec<Value>> {
    let Some(first) = ts.first() else { bail!("Concat needs at least one input") };
    let r = first.rank();
    let axis = real_axis(axis, r)?;
    if r == 0 {
        bail!("cannot concatenate scalars");
    }
    for t in ts {
        if t.dtype != first.dtype {
            bail!("inputs have different types {} and {}", first.dtype, t.dtype);
        }
        let same = t.rank() == r && (0..r).all(|k| k == axis || t.shape[k] == first.shape[k]);
        if !same {
            bail!("cannot concatenate shapes {:?} and {:?} along axis {axis}", first.shape, t.shape);
        }
    }
    let outer: usize = first.shape[..axis].iter().product();
    let inner: usize = first.shape[axis + 1..].iter().product();
    let mut out_shape = first.shape.clone();
    out_shape[axis] = ts.iter().map(|t| t.shape[axis]).sum();
    // All inputs end to end; then pick, for each outer index, each input's block.
    let all = Data::concat(&ts.iter().map(|t| &t.data).collect::<Vec<_>>())?;
    let mut offsets = Vec::with_capacity(ts.len());
    let mut off = 0;
    for t in ts {
        offsets.push(off);
        off += t.numel();
    }
    let mut idx = Vec::with_capacity(off);
    for o in 0..outer {
        for (t, &base) in ts.iter().zip(&offsets) {
            let block = t.shape[axis] * inner;
            idx.extend((0..block).map(|j| base + o * block + j));
        }
    }
    Ok(vec![Value::Tensor(Tensor::new(first.dtype, out_shape, all.gather(&idx))?)])
}

/// The sub-tensor `start..start + len` along `axis` (must be in range).
pub(super) fn slice_axis(t: &Tensor, axis: usize, start: usize, len: usize) -> KResult<Tensor> {
    let mut shape = t.shape.clone();
    shape[axis] = len;
    let idx = map_indices(&shape, |o| {
        let mut src = o.to_vec();
        src[axis] += start;
        Ok(ravel(&src, &t.shape))
    })?;
    take(t, shape, &idx)
}

/// Dimensions of a rank-4 input and a validated block size.
pub(super) fn dims4(x: &Tensor, blocksize: i64) -> KResult<(usize, usize, usize, usize, usize)> {
    if x.rank() != 4 {
        bail!("expected a rank-4 input, got shape {:?}", x.shape);
    }
    if blocksize < 1 {
        bail!("blocksize must be positive, got {blocksize}");
    }
    let b = usize::try_from(blocksize).unwrap_or(usize::MAX);
    // The block-expanded sizes must be representable (the input may be empty).
    let dims = [x.shape[0], x.shape[1], x.shape[2], x.shape[3], b, b];
    if dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d.max(1))).is_none() {
        bail!("blocksize {blocksize} is too large for shape {:?}", x.shape);
    }
    Ok((x.shape[0], x.shape[1], x.shape[2], x.shape[3], b))
}
