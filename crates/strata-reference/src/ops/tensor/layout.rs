//! Layout kernels: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
//! Split, Expand, Tile, DepthToSpace, SpaceToDepth, Shape and Size.

use strata_ir::ops::TensorOp;

use super::{ints, map_indices, permute, real_axes, real_axis, take};
use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, Ctx, one};
use crate::util::{broadcast_map, broadcast_shapes, check_numel, ravel, to_dims};
use crate::value::{Data, Tensor, Value};

/// Run one layout operator.
pub fn run(op: &TensorOp, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use TensorOp::*;
    let x = args.tensor(0)?;
    match op {
        Reshape { allowzero, shape } => {
            let spec = match (args.opt_tensor(1)?, shape) {
                (Some(s), _) => ints(s, "shape")?,
                (None, Some(s)) => s.clone(),
                (None, None) => bail!("Reshape needs a shape input"),
            };
            let dims = reshape_dims(&x.shape, &spec, *allowzero != 0)?;
            one(x.clone().reshape(dims)?)
        }
        Flatten { axis } => {
            let r = x.rank() as i64;
            if *axis < -r || *axis > r {
                bail!("axis {axis} is out of range for rank {r}");
            }
            let a = if *axis < 0 { axis + r } else { *axis } as usize;
            let outer: usize = x.shape[..a].iter().product();
            let inner: usize = x.shape[a..].iter().product();
            one(x.clone().reshape(vec![outer, inner])?)
        }
        Squeeze { axes } => {
            let axes = axes_input(args, axes)?;
            let dims = match axes {
                None => x.shape.iter().copied().filter(|&d| d != 1).collect(),
                Some(axes) => {
                    let axes = real_axes(&axes, x.rank())?;
                    for &a in &axes {
                        if x.shape[a] != 1 {
                            bail!("cannot squeeze axis {a} of size {}", x.shape[a]);
                        }
                    }
                    x.shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
                }
            };
            one(x.clone().reshape(dims)?)
        }
        Unsqueeze { axes } => {
            let Some(axes) = axes_input(args, axes)? else { bail!("Unsqueeze needs axes") };
            let out_rank = x.rank() + axes.len();
            let axes = real_axes(&axes, out_rank)?;
            let mut rest = x.shape.iter();
            let dims =
                (0..out_rank).map(|i| if axes.contains(&i) { 1 } else { rest.next().copied().unwrap_or(1) }).collect();
            one(x.clone().reshape(dims)?)
        }
        Transpose { perm } => {
            let r = x.rank();
            let perm: Vec<usize> = match perm {
                None => (0..r).rev().collect(),
                Some(p) => {
                    if p.len() != r {
                        bail!("perm {p:?} has {} entries for an input of rank {r}", p.len());
                    }
                    real_axes(p, r)?
                }
            };
            one(permute(x, &perm)?)
        }
        Concat { axis } => concat(&args.tensors()?, *axis),
        Split { axis, num_outputs, split } => {
            let axis = real_axis(*axis, x.rank())?;
            let dim = x.shape[axis];
            let sizes: Vec<usize> = match (args.opt_tensor(1)?, split, num_outputs) {
                (Some(s), _, _) => to_dims(&ints(s, "split")?, "split")?,
                (None, Some(s), _) => to_dims(s, "split")?,
                (None, None, Some(n)) => {
                    if *n < 1 {
                        bail!("num_outputs must be positive, got {n}");
                    }
                    // Chunks of ceil(dim / n); the last one takes what is left.
                    let n = *n as usize;
                    let chunk = dim.div_ceil(n);
                    if chunk * (n - 1) > dim {
                        bail!("cannot split a dimension of size {dim} into {n} outputs");
                    }
                    let mut s = vec![chunk; n - 1];
                    s.push(dim - chunk * (n - 1));
                    s
                }
                (None, None, None) => {
                    let n = ctx.n_outputs();
                    if n == 0 || dim % n != 0 {
                        bail!("cannot split a dimension of size {dim} into {n} equal outputs");
                    }
                    vec![dim / n; n]
                }
            };
            if sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s)) != Some(dim) {
                bail!("split sizes {sizes:?} do not add up to the dimension size {dim}");
            }
            let mut outs = Vec::with_capacity(sizes.len());
            let mut start = 0;
            for s in sizes {
                outs.push(Value::Tensor(slice_axis(x, axis, start, s)?));
                start += s;
            }
            Ok(outs)
        }
        Expand {} => {
            let shape = to_dims(&ints(args.tensor(1)?, "shape")?, "shape")?;
            let out = broadcast_shapes(&[&x.shape, &shape])?;
            check_numel(&out)?;
            one(take(x, out.clone(), &broadcast_map(&x.shape, &out))?)
        }
        Tile {} => {
            let reps = to_dims(&ints(args.tensor(1)?, "repeats")?, "repeats")?;
            if reps.len() != x.rank() {
                bail!("repeats has {} entries for an input of rank {}", reps.len(), x.rank());
            }
            let mut out = Vec::with_capacity(reps.len());
            for (&d, &r) in x.shape.iter().zip(&reps) {
                match d.checked_mul(r) {
                    Some(v) => out.push(v),
                    None => bail!("tiled dimension {d} x {r} overflows"),
                }
            }
            check_numel(&out)?;
            let idx = map_indices(&out, |o| {
                let src: Vec<usize> = o.iter().zip(&x.shape).map(|(&i, &d)| i % d).collect();
                Ok(ravel(&src, &x.shape))
            })?;
            one(take(x, out, &idx)?)
        }
        DepthToSpace { blocksize, mode } => {
            let (n, c, h, w, b) = dims4(x, *blocksize)?;
            if c % (b * b) != 0 {
                bail!("channels {c} are not divisible by blocksize² {}", b * b);
            }
            let c2 = c / (b * b);
            // View as 6-D, move the block axes next to H and W, view as 4-D.
            let (tmp, perm) = match mode.as_str() {
                "DCR" => (vec![n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2]),
                "CRD" => (vec![n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3]),
                m => bail!("unknown mode '{m}'"),
            };
            let y = permute(&x.clone().reshape(tmp)?, &perm)?;
            one(y.reshape(vec![n, c2, h * b, w * b])?)
        }
        SpaceToDepth { blocksize, mode } => {
            let (n, c, h, w, b) = dims4(x, *blocksize)?;
            if h % b != 0 || w % b != 0 {
                bail!("spatial size {h}x{w} is not divisible by blocksize {b}");
            }
            let tmp = vec![n, c, h / b, b, w / b, b];
            let perm = match mode.as_str() {
                "DCR" => [0, 3, 5, 1, 2, 4],
                "CRD" => [0, 1, 3, 5, 2, 4],
                m => bail!("unknown mode '{m}'"),
            };
            let y = permute(&x.clone().reshape(tmp)?, &perm)?;
            one(y.reshape(vec![n, c * b * b, h / b, w / b])?)
        }
        Shape { start, end } => {
            let r = x.rank() as i64;
            let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let s = clamp(*start);
            let e = clamp(end.unwrap_or(r)).max(s);
            let dims: Vec<i64> = x.shape[s..e].iter().map(|&d| d as i64).collect();
            one(Tensor::i64s(vec![dims.len()], dims)?)
        }
        Size {} => one(Tensor::i64s(vec![], vec![x.numel() as i64])?),
        // Routed here only by `tensor.rs`, whose match names every operator.
        other => bail!("internal: {} is not a layout operator", other.name()),
    }
}

/// Axes from input 1 when present, else from the (older) attribute.
fn axes_input(args: &Args, attr: &Option<Vec<i64>>) -> KResult<Option<Vec<i64>>> {
    Ok(match args.opt_tensor(1)? {
        Some(t) => Some(ints(t, "axes")?),
        None => attr.clone(),
    })
}

/// The output shape of Reshape: `0` copies the input dimension (unless
/// `allowzero`), one `-1` is inferred from the element count.
fn reshape_dims(in_shape: &[usize], spec: &[i64], allowzero: bool) -> KResult<Vec<usize>> {
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
fn concat(ts: &[&Tensor], axis: i64) -> KResult<Vec<Value>> {
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
fn dims4(x: &Tensor, blocksize: i64) -> KResult<(usize, usize, usize, usize, usize)> {
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
