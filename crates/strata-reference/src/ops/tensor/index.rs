//! Indexing kernels: Slice, Gather, GatherElements, GatherND, Scatter,
//! ScatterElements, ScatterND, TensorScatter, Compress, NonZero, OneHot,
//! ReverseSequence, Trilu and Unique.

use std::cmp::Ordering;

use strata_ir::ops::TensorOp;

use super::{ints, map_indices, norm_index, real_axis, take, zero_like};
use crate::bail;
use crate::error::{KResult, KernelError};
use crate::ops::{Args, Ctx, one};
use crate::util::{check_numel, ravel, strides};
use crate::value::{Data, Tensor, Value};

/// Run one indexing operator.
pub fn run(op: &TensorOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use TensorOp::*;
    let x = args.tensor(0)?;
    match op {
        Slice { starts, ends, axes } => slice(args, x, starts, ends, axes),
        Gather { axis } => gather(x, args.tensor(1)?, *axis),
        GatherElements { axis } => gather_elements(x, args.tensor(1)?, *axis),
        GatherND { batch_dims } => gather_nd(x, args.tensor(1)?, *batch_dims),
        Scatter { axis } => scatter_elements(x, args.tensor(1)?, args.tensor(2)?, *axis, Reduction::None),
        ScatterElements { axis, reduction } => scatter_elements(x, args.tensor(1)?, args.tensor(2)?, *axis, *reduction),
        ScatterND { reduction } => scatter_nd(x, args.tensor(1)?, args.tensor(2)?, *reduction),
        TensorScatter { axis, mode } => tensor_scatter(x, args.tensor(1)?, args.opt_tensor(2)?, *axis, mode),
        Compress { axis } => compress(x, args.tensor(1)?, *axis),
        NonZero {} => nonzero(x),
        OneHot { axis } => one_hot(x, args.tensor(1)?, args.tensor(2)?, *axis),
        ReverseSequence { batch_axis, time_axis } => reverse_sequence(x, args.tensor(1)?, *batch_axis, *time_axis),
        Trilu { upper } => {
            let k = match args.opt_tensor(1)? {
                Some(t) => match ints(t, "k")?.as_slice() {
                    [k] => *k,
                    _ => bail!("k must hold a single value, got shape {:?}", t.shape),
                },
                None => 0,
            };
            trilu(x, k, *upper != 0)
        }
        Unique { axis, sorted } => unique(x, *axis, *sorted != 0),
        // Routed here only by `tensor.rs`, whose match names every operator.
        other => bail!("internal: {} is not an indexing operator", other.name()),
    }
}

/// Slice: per axis, a start, an end (exclusive) and a step (may be
/// negative); starts and ends are clamped to the dimension.
fn slice(
    args: &Args,
    x: &Tensor,
    a_starts: &Option<Vec<i64>>,
    a_ends: &Option<Vec<i64>>,
    a_axes: &Option<Vec<i64>>,
) -> KResult<Vec<Value>> {
    let what = ["", "starts", "ends", "axes", "steps"];
    let input = |i: usize| args.opt_tensor(i)?.map(|t| ints(t, what[i])).transpose();
    let sliced = strata_ir::ops::tensor::resolve_slice(&x.shape, a_starts, a_ends, a_axes, input, KernelError::new)?;
    // Per input axis: first index and step.
    let mut first = vec![0i128; x.rank()];
    let mut step = vec![1i128; x.rank()];
    let mut out_shape = x.shape.clone();
    for sa in sliced {
        first[sa.axis] = sa.start as i128;
        step[sa.axis] = sa.step as i128;
        out_shape[sa.axis] = sa.len;
    }
    let idx = map_indices(&out_shape, |o| {
        let src: Vec<usize> = (0..o.len()).map(|a| (first[a] + o[a] as i128 * step[a]) as usize).collect();
        Ok(ravel(&src, &x.shape))
    })?;
    one(take(x, out_shape, &idx)?)
}

/// Gather: pick entries along `axis` by the index tensor.
fn gather(x: &Tensor, ind: &Tensor, axis: i64) -> KResult<Vec<Value>> {
    if x.rank() == 0 {
        bail!("cannot gather from a scalar");
    }
    let axis = real_axis(axis, x.rank())?;
    let d = x.shape[axis];
    let indices = ints(ind, "indices")?.into_iter().map(|i| norm_index(i, d, "index")).collect::<KResult<Vec<_>>>()?;
    let mut out_shape = x.shape[..axis].to_vec();
    out_shape.extend_from_slice(&ind.shape);
    out_shape.extend_from_slice(&x.shape[axis + 1..]);
    check_numel(&out_shape)?;
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis + 1..].iter().product();
    let mut idx = Vec::new();
    for o in 0..outer {
        for &k in &indices {
            idx.extend((0..inner).map(|j| (o * d + k) * inner + j));
        }
    }
    one(take(x, out_shape, &idx)?)
}

/// Check that `ind` has `x`'s rank and fits inside it on every axis but
/// `axis` (ScatterElements / GatherElements).
fn check_elements_shape(x: &Tensor, ind: &Tensor, axis: usize) -> KResult<()> {
    if ind.rank() != x.rank() {
        bail!("indices have rank {} but data has rank {}", ind.rank(), x.rank());
    }
    for k in 0..x.rank() {
        if k != axis && ind.shape[k] > x.shape[k] {
            bail!("indices shape {:?} does not fit data shape {:?} on axis {k}", ind.shape, x.shape);
        }
    }
    Ok(())
}

/// GatherElements: output[i..] = x[i.. with axis replaced by indices[i..]].
fn gather_elements(x: &Tensor, ind: &Tensor, axis: i64) -> KResult<Vec<Value>> {
    let axis = real_axis(axis, x.rank())?;
    check_elements_shape(x, ind, axis)?;
    let indices = ints(ind, "indices")?;
    let mut pos = 0;
    let idx = map_indices(&ind.shape, |o| {
        let mut src = o.to_vec();
        src[axis] = norm_index(indices[pos], x.shape[axis], "index")?;
        pos += 1;
        Ok(ravel(&src, &x.shape))
    })?;
    one(take(x, ind.shape.clone(), &idx)?)
}

/// Validate a GatherND/ScatterND index tensor and return its tuples, each
/// resolved to the flat offset of the slice it addresses inside one batch,
/// plus the tuple length.
fn nd_offsets(x: &Tensor, ind: &Tensor, batch_dims: usize) -> KResult<(Vec<usize>, usize)> {
    let q = ind.rank();
    if q == 0 {
        bail!("indices must have rank at least 1");
    }
    let m = ind.shape[q - 1];
    if batch_dims + m > x.rank() {
        bail!("index tuples of length {m} (batch_dims {batch_dims}) exceed data rank {}", x.rank());
    }
    let st = strides(&x.shape);
    let values = ints(ind, "indices")?;
    let mut offsets = Vec::with_capacity(values.len().checked_div(m).unwrap_or(0));
    let n_tuples: usize = ind.shape[..q - 1].iter().product();
    for t in 0..n_tuples {
        let mut off = 0;
        for k in 0..m {
            let a = batch_dims + k;
            off += norm_index(values[t * m + k], x.shape[a], "index")? * st[a];
        }
        offsets.push(off);
    }
    Ok((offsets, m))
}

/// GatherND: gather slices addressed by index tuples, with leading batch
/// dimensions shared between data and indices.
fn gather_nd(x: &Tensor, ind: &Tensor, batch_dims: i64) -> KResult<Vec<Value>> {
    let q = ind.rank();
    if batch_dims < 0 || (batch_dims > 0 && batch_dims as usize >= q.min(x.rank())) {
        bail!("batch_dims {batch_dims} is out of range for data rank {} and indices rank {q}", x.rank());
    }
    let b = batch_dims as usize;
    if ind.shape[..b] != x.shape[..b] {
        bail!("batch dimensions of data {:?} and indices {:?} differ", x.shape, ind.shape);
    }
    let (offsets, m) = nd_offsets(x, ind, b)?;
    let mut out_shape = ind.shape[..q - 1].to_vec();
    out_shape.extend_from_slice(&x.shape[b + m..]);
    check_numel(&out_shape)?;
    let slice: usize = x.shape[b + m..].iter().product();
    let batch_size: usize = x.shape[b..].iter().product();
    // Tuples per batch entry.
    let per_batch: usize = ind.shape[b..q - 1].iter().product();
    let mut idx = Vec::new();
    for (t, &off) in offsets.iter().enumerate() {
        let base = (t / per_batch.max(1)) * batch_size + off;
        idx.extend((0..slice).map(|j| base + j));
    }
    one(take(x, out_shape, &idx)?)
}

/// How scattered values combine with the existing ones (the IR's
/// decoded `reduction`).
use strata_ir::ops::tensor::ScatterReduction as Reduction;

/// `dst[i] = reduction(dst[i], src[j])`.
fn apply(dst: &mut Data, i: usize, src: &Data, j: usize, red: Reduction) -> KResult<()> {
    match (dst, src) {
        (Data::F(d), Data::F(s)) => {
            let (a, b) = (d[i], s[j]);
            d[i] = match red {
                Reduction::None => b,
                Reduction::Add => a + b,
                Reduction::Mul => a * b,
                _ if a.is_nan() || b.is_nan() => f64::NAN,
                Reduction::Max => a.max(b),
                Reduction::Min => a.min(b),
            };
        }
        (Data::I(d), Data::I(s)) => {
            let (a, b) = (d[i], s[j]);
            // Wrapping in i128 then at the output width equals wrapping at the width.
            d[i] = match red {
                Reduction::None => b,
                Reduction::Add => a.wrapping_add(b),
                Reduction::Mul => a.wrapping_mul(b),
                Reduction::Max => a.max(b),
                Reduction::Min => a.min(b),
            };
        }
        (Data::B(d), Data::B(s)) if red == Reduction::None => d[i] = s[j],
        (Data::S(d), Data::S(s)) if red == Reduction::None => d[i] = s[j].clone(),
        (Data::B(_), Data::B(_)) | (Data::S(_), Data::S(_)) => bail!("reduction is not supported for this type"),
        _ => bail!("updates and data have different types"),
    }
    Ok(())
}

/// ScatterElements (and the older Scatter).
fn scatter_elements(x: &Tensor, ind: &Tensor, upd: &Tensor, axis: i64, red: Reduction) -> KResult<Vec<Value>> {
    let axis = real_axis(axis, x.rank())?;
    check_elements_shape(x, ind, axis)?;
    if upd.shape != ind.shape || upd.dtype != x.dtype {
        bail!("updates {} {:?} do not match indices {:?} / data {}", upd.dtype, upd.shape, ind.shape, x.dtype);
    }
    let indices = ints(ind, "indices")?;
    let targets = {
        let mut pos = 0;
        map_indices(&ind.shape, |o| {
            let mut dst = o.to_vec();
            dst[axis] = norm_index(indices[pos], x.shape[axis], "index")?;
            pos += 1;
            Ok(ravel(&dst, &x.shape))
        })?
    };
    let mut out = x.data.clone();
    for (j, &i) in targets.iter().enumerate() {
        apply(&mut out, i, &upd.data, j, red)?;
    }
    one(Tensor::new(x.dtype, x.shape.clone(), out)?)
}

/// ScatterND: write update slices at the positions given by index tuples.
fn scatter_nd(x: &Tensor, ind: &Tensor, upd: &Tensor, red: Reduction) -> KResult<Vec<Value>> {
    let (offsets, m) = nd_offsets(x, ind, 0)?;
    let q = ind.rank();
    let mut want = ind.shape[..q - 1].to_vec();
    want.extend_from_slice(&x.shape[m..]);
    if upd.shape != want || upd.dtype != x.dtype {
        bail!("updates {} {:?} should be {} {want:?}", upd.dtype, upd.shape, x.dtype);
    }
    let slice: usize = x.shape[m..].iter().product();
    let mut out = x.data.clone();
    for (t, &off) in offsets.iter().enumerate() {
        for j in 0..slice {
            apply(&mut out, off + j, &upd.data, t * slice + j, red)?;
        }
    }
    one(Tensor::new(x.dtype, x.shape.clone(), out)?)
}

/// TensorScatter: write `update` into a cache along `axis`, starting for
/// each batch entry (axis 0) at its write index; `circular` wraps around.
fn tensor_scatter(
    past: &Tensor,
    upd: &Tensor,
    wi: Option<&Tensor>,
    axis: i64,
    mode: &strata_ir::ops::tensor::CacheMode,
) -> KResult<Vec<Value>> {
    let circular = *mode == strata_ir::ops::tensor::CacheMode::Circular;
    let r = past.rank();
    let axis = real_axis(axis, r)?;
    if axis == 0 {
        bail!("axis must not be the batch axis 0");
    }
    if upd.rank() != r || upd.dtype != past.dtype {
        bail!("update {} {:?} does not match the cache {} {:?}", upd.dtype, upd.shape, past.dtype, past.shape);
    }
    for k in 0..r {
        if (k != axis && upd.shape[k] != past.shape[k]) || (k == axis && upd.shape[k] > past.shape[k]) {
            bail!("update shape {:?} does not fit cache shape {:?}", upd.shape, past.shape);
        }
    }
    let (max_len, len) = (past.shape[axis], upd.shape[axis]);
    let batch = past.shape[0];
    let writes = match wi {
        Some(t) => ints(t, "write_indices")?,
        None => vec![0; batch],
    };
    if writes.len() != batch {
        bail!("write_indices has {} entries for batch size {batch}", writes.len());
    }
    for &w in &writes {
        if w < 0 || (!circular && w as u64 + len as u64 > max_len as u64) || (circular && w as u64 >= max_len as u64) {
            bail!("write index {w} is out of range for {len} entries in a cache of length {max_len}");
        }
    }
    // Cache elements first, then update elements; pick per output element.
    let all = Data::concat(&[&past.data, &upd.data])?;
    let base = past.numel();
    let idx = map_indices(&past.shape, |o| {
        let w = writes[o[0]] as usize;
        // Position of this cache entry relative to the write start, if after it.
        let rel = if circular { Some((o[axis] + max_len - w) % max_len) } else { o[axis].checked_sub(w) };
        Ok(match rel {
            Some(rel) if rel < len => {
                let mut src = o.to_vec();
                src[axis] = rel;
                base + ravel(&src, &upd.shape)
            }
            _ => ravel(o, &past.shape),
        })
    })?;
    one(Tensor::new(past.dtype, past.shape.clone(), all.gather(&idx))?)
}

/// Compress: keep the entries along `axis` (or of the flattened input)
/// whose condition is true; the condition may be shorter than the axis.
fn compress(x: &Tensor, cond: &Tensor, axis: Option<i64>) -> KResult<Vec<Value>> {
    if cond.rank() != 1 {
        bail!("condition must be 1-D, got shape {:?}", cond.shape);
    }
    let c = cond.b()?;
    let (view_shape, axis) = match axis {
        None => (vec![x.numel()], 0),
        Some(a) => (x.shape.clone(), real_axis(a, x.rank())?),
    };
    if c.len() > view_shape[axis] {
        bail!("condition has {} entries for a dimension of size {}", c.len(), view_shape[axis]);
    }
    let keep: Vec<usize> = (0..c.len()).filter(|&i| c[i]).collect();
    let mut out_shape = view_shape.clone();
    out_shape[axis] = keep.len();
    let idx = map_indices(&out_shape, |o| {
        let mut src = o.to_vec();
        src[axis] = keep[o[axis]];
        Ok(ravel(&src, &view_shape))
    })?;
    one(take(x, out_shape, &idx)?)
}

/// NonZero: coordinates of the non-zero elements, shape [rank, count].
fn nonzero(x: &Tensor) -> KResult<Vec<Value>> {
    let nz: Vec<bool> = match &x.data {
        Data::F(v) => v.iter().map(|&a| a != 0.0).collect(),
        Data::I(v) => v.iter().map(|&a| a != 0).collect(),
        Data::B(v) => v.clone(),
        Data::S(_) => bail!("NonZero does not support strings"),
    };
    // A scalar counts as a one-element vector.
    let shape = if x.rank() == 0 { vec![1] } else { x.shape.clone() };
    let r = shape.len();
    let hits: Vec<usize> = (0..nz.len()).filter(|&i| nz[i]).collect();
    let mut out = vec![0i64; r * hits.len()];
    for (j, &flat) in hits.iter().enumerate() {
        for (k, c) in crate::util::unravel(flat, &shape).into_iter().enumerate() {
            out[k * hits.len() + j] = c as i64;
        }
    }
    one(Tensor::i64s(vec![r, hits.len()], out)?)
}

/// OneHot: a new `depth`-sized axis holding `values[1]` at each index and
/// `values[0]` elsewhere; out-of-range indices give an all-off row.
fn one_hot(ind: &Tensor, depth: &Tensor, values: &Tensor, axis: i64) -> KResult<Vec<Value>> {
    let depth = depth.scalar_f64()?;
    if !(depth >= 1.0 && depth <= i64::MAX as f64) {
        bail!("depth must be a positive number, got {depth}");
    }
    let depth = depth as i64;
    if values.numel() != 2 {
        bail!("values must hold exactly two elements (off, on), got shape {:?}", values.shape);
    }
    let r = ind.rank() as i64;
    if axis < -r - 1 || axis > r {
        bail!("axis {axis} is out of range for output rank {}", r + 1);
    }
    let axis = if axis < 0 { axis + r + 1 } else { axis } as usize;
    let indices: Vec<i64> = ind.to_f64()?.into_iter().map(|v| v as i64).collect();
    let mut out_shape = ind.shape.clone();
    out_shape.insert(axis, depth as usize);
    check_numel(&out_shape)?;
    let pick = map_indices(&out_shape, |o| {
        let mut pos = o.to_vec();
        let class = pos.remove(axis) as i64;
        let mut v = indices[ravel(&pos, &ind.shape)];
        if v < 0 {
            v += depth;
        }
        Ok(usize::from(v == class))
    })?;
    one(Tensor::new(values.dtype, out_shape, values.data.gather(&pick))?)
}

/// ReverseSequence: reverse the first `lens[b]` time steps of each batch
/// entry `b`.
fn reverse_sequence(x: &Tensor, lens: &Tensor, batch_axis: i64, time_axis: i64) -> KResult<Vec<Value>> {
    if x.rank() < 2 {
        bail!("input must have rank at least 2, got shape {:?}", x.shape);
    }
    let (b_ax, t_ax) = (real_axis(batch_axis, x.rank())?, real_axis(time_axis, x.rank())?);
    if b_ax == t_ax {
        bail!("batch_axis and time_axis must differ");
    }
    let lens = ints(lens, "sequence_lens")?;
    if lens.len() != x.shape[b_ax] {
        bail!("sequence_lens has {} entries for batch size {}", lens.len(), x.shape[b_ax]);
    }
    for &l in &lens {
        if l < 0 || l as u64 > x.shape[t_ax] as u64 {
            bail!("sequence length {l} is out of range for {} time steps", x.shape[t_ax]);
        }
    }
    let idx = map_indices(&x.shape, |o| {
        let l = lens[o[b_ax]] as usize;
        let mut src = o.to_vec();
        if o[t_ax] < l {
            src[t_ax] = l - 1 - o[t_ax];
        }
        Ok(ravel(&src, &x.shape))
    })?;
    one(take(x, x.shape.clone(), &idx)?)
}

/// Trilu: keep the upper (col - row >= k) or lower (col - row <= k)
/// triangle of the last two axes; zero the rest.
fn trilu(x: &Tensor, k: i64, upper: bool) -> KResult<Vec<Value>> {
    let r = x.rank();
    if r < 2 {
        bail!("input must have rank at least 2, got shape {:?}", x.shape);
    }
    let all = Data::concat(&[&x.data, &zero_like(&x.data)])?;
    let zero = x.numel();
    let idx = map_indices(&x.shape, |o| {
        let diff = o[r - 1] as i128 - o[r - 2] as i128;
        let keep = if upper { diff >= k as i128 } else { diff <= k as i128 };
        Ok(if keep { ravel(o, &x.shape) } else { zero })
    })?;
    one(Tensor::new(x.dtype, x.shape.clone(), all.gather(&idx))?)
}

/// Order two elements of the same data (NaN after every number, strings
/// lexicographically).
fn cmp_elem(d: &Data, a: usize, b: usize) -> Ordering {
    match d {
        Data::F(v) => match (v[a].is_nan(), v[b].is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => v[a].partial_cmp(&v[b]).unwrap_or(Ordering::Equal),
        },
        Data::I(v) => v[a].cmp(&v[b]),
        Data::B(v) => v[a].cmp(&v[b]),
        Data::S(v) => v[a].cmp(&v[b]),
    }
}

/// Unique: the distinct elements (or slices along `axis`), sorted or in
/// order of first occurrence, with first indices, inverse indices and
/// counts.
fn unique(x: &Tensor, axis: Option<i64>, sorted: bool) -> KResult<Vec<Value>> {
    let (view_shape, axis) = match axis {
        None => (vec![x.numel()], 0),
        Some(a) => (x.shape.clone(), real_axis(a, x.rank())?),
    };
    if view_shape.is_empty() {
        bail!("cannot take unique slices of a scalar");
    }
    let n = view_shape[axis];
    // Flat element indices of each slice along the axis, in row-major order.
    let mut slice_shape = view_shape.clone();
    slice_shape[axis] = 1;
    let slices: Vec<Vec<usize>> = (0..n)
        .map(|s| {
            map_indices(&slice_shape, |o| {
                let mut src = o.to_vec();
                src[axis] = s;
                Ok(ravel(&src, &view_shape))
            })
        })
        .collect::<KResult<_>>()?;
    let cmp_slices = |a: usize, b: usize| {
        slices[a]
            .iter()
            .zip(&slices[b])
            .map(|(&i, &j)| cmp_elem(&x.data, i, j))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    };
    // Stable sort, so each run of equal slices starts with its first occurrence.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| cmp_slices(a, b));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &s in &order {
        match groups.last_mut() {
            Some(g) if cmp_slices(g[0], s) == Ordering::Equal => g.push(s),
            _ => groups.push(vec![s]),
        }
    }
    if !sorted {
        groups.sort_by_key(|g| g[0]);
    }
    let mut inverse = vec![0i64; n];
    for (u, g) in groups.iter().enumerate() {
        for &s in g {
            inverse[s] = u as i64;
        }
    }
    let firsts: Vec<usize> = groups.iter().map(|g| g[0]).collect();
    let mut out_shape = view_shape.clone();
    out_shape[axis] = groups.len();
    let idx = map_indices(&out_shape, |o| {
        let mut src = o.to_vec();
        src[axis] = firsts[o[axis]];
        Ok(ravel(&src, &view_shape))
    })?;
    let y = take(x, out_shape, &idx)?;
    let u = groups.len();
    Ok(vec![
        Value::Tensor(y),
        Value::Tensor(Tensor::i64s(vec![u], firsts.iter().map(|&f| f as i64).collect())?),
        Value::Tensor(Tensor::i64s(vec![n], inverse)?),
        Value::Tensor(Tensor::i64s(vec![u], groups.iter().map(|g| g.len() as i64).collect())?),
    ])
}
