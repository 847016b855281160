//! Reference kernels for `strata_ir::ops::TensorOp`, split by theme:
//! `layout` (reshaping, transposing, concatenating, splitting, expanding),
//! `index` (slicing, gathering, scattering, selecting, masking, unique),
//! `pad` (padding and centre crop/pad) and `create` (constants, ranges,
//! identity-like matrices and random generators).
//!
//! Data movement kernels compute, for every output element, the flat index
//! of the input element it comes from and then move elements with
//! [`Data::gather`], so every element class (float, integer, bool, string)
//! is moved exactly.

use strata_ir::ops::TensorOp;

use super::{Args, Ctx};
use crate::bail;
use crate::error::KResult;
use crate::util::strides;
use crate::value::{Data, Tensor, Value};

mod create;
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
        Reshape { .. }
        | Flatten { .. }
        | Squeeze { .. }
        | Unsqueeze { .. }
        | Transpose { .. }
        | Concat { .. }
        | Split { .. }
        | Expand { .. }
        | Tile { .. }
        | DepthToSpace { .. }
        | SpaceToDepth { .. }
        | Shape { .. }
        | Size { .. } => layout::run(op, args, ctx),
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
        ImageDecoder { .. } => {
            bail!("ImageDecoder is not supported by the reference backend (it has no image codecs)")
        }
        Constant { .. }
        | ConstantOfShape { .. }
        | Range { .. }
        | EyeLike { .. }
        | RandomNormal { .. }
        | RandomUniform { .. }
        | RandomNormalLike { .. }
        | RandomUniformLike { .. }
        | Bernoulli { .. }
        | Multinomial { .. } => create::run(op, args, ctx),
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
