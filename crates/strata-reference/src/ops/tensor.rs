//! Reference kernels for `strata_ir::ops::TensorOp`: the layout kernels
//! (reshaping, transposing, concatenating, splitting, expanding) here, with
//! their helpers in `layout`, the others split by theme:
//! `index` (slicing, gathering, scattering, selecting, masking, unique),
//! `pad` (padding and centre crop/pad) and `create` (constants, ranges,
//! identity-like matrices and random generators).
//!
//! Data movement kernels compute, for every output element, the flat index
//! of the input element it comes from and then move elements with
//! [`Data::gather`], so every element class (float, integer, bool, string)
//! is moved exactly.

use strata_ir::ops::TensorOp;
use strata_ir::ops::tensor::BlockOrder;

use super::{Args, Ctx, one};
use crate::bail;
use crate::error::KResult;
use crate::util::{broadcast_map, broadcast_shapes, check_numel, ravel, strides, to_dims};
use crate::value::{Data, Tensor, Value};
use layout::{axes_input, concat, dims4, reshape_dims, slice_axis};

mod create;
mod image;
mod index;
mod layout;
mod pad;

/// Run one operator of this family: every operator is named here, routed
/// to the submodule holding its kernel (whose own match names only its
/// operators).
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &TensorOp, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use TensorOp::*;
    match op {
        Reshape { allowzero, shape } => {
            let x = args.tensor(0)?;
            let spec = match (args.opt_tensor(1)?, shape) {
                (Some(s), _) => ints(s, "shape")?,
                (None, Some(s)) => s.clone(),
                (None, None) => bail!("Reshape needs a shape input"),
            };
            let dims = reshape_dims(&x.shape, &spec, *allowzero != 0)?;
            one(x.clone().reshape(dims)?)
        }
        Flatten { axis } => {
            let x = args.tensor(0)?;
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
            let x = args.tensor(0)?;
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
            let x = args.tensor(0)?;
            let Some(axes) = axes_input(args, axes)? else { bail!("Unsqueeze needs axes") };
            let out_rank = x.rank() + axes.len();
            let axes = real_axes(&axes, out_rank)?;
            let mut rest = x.shape.iter();
            let dims =
                (0..out_rank).map(|i| if axes.contains(&i) { 1 } else { rest.next().copied().unwrap_or(1) }).collect();
            one(x.clone().reshape(dims)?)
        }
        Transpose { perm } => {
            let x = args.tensor(0)?;
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
        Concat { axis } => {
            args.tensor(0)?;
            concat(&args.tensors()?, *axis)
        }
        Split { axis, num_outputs, split } => {
            let x = args.tensor(0)?;
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
            let x = args.tensor(0)?;
            let shape = to_dims(&ints(args.tensor(1)?, "shape")?, "shape")?;
            let out = broadcast_shapes(&[&x.shape, &shape])?;
            check_numel(&out)?;
            one(take(x, out.clone(), &broadcast_map(&x.shape, &out))?)
        }
        Tile {} => {
            let x = args.tensor(0)?;
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
            let x = args.tensor(0)?;
            let (n, c, h, w, b) = dims4(x, *blocksize)?;
            if c % (b * b) != 0 {
                bail!("channels {c} are not divisible by blocksize² {}", b * b);
            }
            let c2 = c / (b * b);
            // View as 6-D, move the block axes next to H and W, view as 4-D.
            let (tmp, perm) = match mode {
                BlockOrder::Dcr => (vec![n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2]),
                BlockOrder::Crd => (vec![n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3]),
            };
            let y = permute(&x.clone().reshape(tmp)?, &perm)?;
            one(y.reshape(vec![n, c2, h * b, w * b])?)
        }
        SpaceToDepth { blocksize, mode } => {
            let x = args.tensor(0)?;
            let (n, c, h, w, b) = dims4(x, *blocksize)?;
            if h % b != 0 || w % b != 0 {
                bail!("spatial size {h}x{w} is not divisible by blocksize {b}");
            }
            let tmp = vec![n, c, h / b, b, w / b, b];
            let perm = match mode {
                BlockOrder::Dcr => [0, 3, 5, 1, 2, 4],
                BlockOrder::Crd => [0, 1, 3, 5, 2, 4],
            };
            let y = permute(&x.clone().reshape(tmp)?, &perm)?;
            one(y.reshape(vec![n, c * b * b, h / b, w / b])?)
        }
        Shape { start, end } => {
            let x = args.tensor(0)?;
            let r = x.rank() as i64;
            let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let s = clamp(*start);
            let e = clamp(end.unwrap_or(r)).max(s);
            let dims: Vec<i64> = x.shape[s..e].iter().map(|&d| d as i64).collect();
            one(Tensor::i64s(vec![dims.len()], dims)?)
        }
        Size {} => one(Tensor::i64s(vec![], vec![args.tensor(0)?.numel() as i64])?),
        Slice { .. }
        | Gather { .. }
        | GatherElements { .. }
        | GatherND { .. }
        | Scatter { .. }
        | ScatterElements { .. }
        | ScatterND { .. }
        | TensorScatter { .. }
        | Compress { .. }
        | NonZero { .. }
        | OneHot { .. }
        | ReverseSequence { .. }
        | Trilu { .. }
        | Unique { .. } => index::run(op, args, ctx),
        Pad { .. } | CenterCropPad { .. } => pad::run(op, args, ctx),
        ImageDecoder { pixel_format } => image::decode(args, *pixel_format),
        Constant { .. } | ConstantOfShape { .. } | Range { .. } | EyeLike { .. } => create::run(op, args, ctx),
    }
}

/// Visit every multi-index of `shape` in row-major order and collect what
/// `f` returns for each (typically a flat source index).
fn map_indices<T>(shape: &[usize], mut f: impl FnMut(&[usize]) -> KResult<T>) -> KResult<Vec<T>> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        out.push(f(&idx)?);
        // Advance the multi-index like an odometer.
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    Ok(out)
}

/// A tensor of `like`'s dtype and the given shape whose elements are
/// `like`'s elements at the flat indices `idx` (all must be in range).
fn take(like: &Tensor, shape: Vec<usize>, idx: &[usize]) -> KResult<Tensor> {
    Tensor::new(like.dtype, shape, like.data.gather(idx))
}

/// `t` with its axes permuted: output axis `k` is input axis `perm[k]`.
/// `perm` must be a permutation of `0..t.rank()`.
fn permute(t: &Tensor, perm: &[usize]) -> KResult<Tensor> {
    let out_shape: Vec<usize> = perm.iter().map(|&p| t.shape[p]).collect();
    let st = strides(&t.shape);
    let idx = map_indices(&out_shape, |o| Ok(o.iter().zip(perm).map(|(&i, &p)| i * st[p]).sum()))?;
    take(t, out_shape, &idx)
}

/// Integer elements of a shape/axes/indices tensor as i64 (integer tensors
/// only; values outside the i64 range are rejected).
fn ints(t: &Tensor, what: &str) -> KResult<Vec<i64>> {
    match &t.data {
        Data::I(v) => v
            .iter()
            .map(|&x| match i64::try_from(x) {
                Ok(x) => Ok(x),
                Err(_) => bail!("{what}: value {x} is out of the int64 range"),
            })
            .collect(),
        _ => bail!("{what} must be an integer tensor, got {}", t.dtype),
    }
}

/// Normalise a possibly negative index into `0..dim`, or fail naming it.
fn norm_index(i: i64, dim: usize, what: &str) -> KResult<usize> {
    let d = dim as i128;
    let j = i as i128;
    if j < -d || j >= d {
        bail!("{what} {i} is out of range for a dimension of size {dim}");
    }
    Ok(if j < 0 { (j + d) as usize } else { j as usize })
}

/// One element of the "zero" of a data class (0, 0.0, false or "").
fn zero_like(d: &Data) -> Data {
    match d {
        Data::F(_) => Data::F(vec![0.0]),
        Data::I(_) => Data::I(vec![0]),
        Data::B(_) => Data::B(vec![false]),
        Data::S(_) => Data::S(vec![String::new()]),
    }
}

/// Normalise an axis of a tensor that must have at least one dimension.
fn real_axis(axis: i64, rank: usize) -> KResult<usize> {
    if rank == 0 {
        bail!("axis {axis} is out of range for a scalar");
    }
    crate::util::norm_axis(axis, rank)
}

/// Normalise a list of distinct axes of a tensor of rank `rank`.
fn real_axes(axes: &[i64], rank: usize) -> KResult<Vec<usize>> {
    if rank == 0 && !axes.is_empty() {
        bail!("axes {axes:?} are out of range for a scalar");
    }
    crate::util::norm_axes(axes, rank)
}
