//! Data movement on every element type this backend holds: reshapes share
//! storage, everything else is a gather through a computed index list
//! (strided views for Transpose, Slice and Expand), so it is exact.

use strata_ir::DType;
use strata_ir::ops::TensorOp as T;
use strata_ir::ops::tensor::{BlockOrder, PadMode};

use super::{Ctx, Kernel, NodeInfo, all_held, broadcast, broadcast_strides, input, strides, unsupported};
use crate::error::{CpuError, Result, bail};
use crate::tensor::{CpuTensor, Data, Elem, map_data};

/// Copy a strided view: element `idx` of `shape` reads
/// `v[base + Σ idx[d]·st[d]]` (callers guarantee every offset is in range).
/// Contiguous innermost rows are copied whole.
fn gather_strided<T: Copy>(v: &[T], shape: &[usize], base: isize, st: &[isize]) -> Vec<T> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let rank = shape.len();
    if rank == 0 {
        out.push(v[base as usize]);
        return out;
    }
    let (last, lst) = (shape[rank - 1], st[rank - 1]);
    let mut idx = vec![0usize; rank];
    let mut off = base;
    loop {
        if lst == 1 {
            out.extend_from_slice(&v[off as usize..off as usize + last]);
        } else if lst == 0 {
            out.extend(std::iter::repeat_n(v[off as usize], last));
        } else {
            out.extend((0..last as isize).map(|j| v[(off + j * lst) as usize]));
        }
        // Advance the outer axes.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            off += st[d];
            if idx[d] < shape[d] {
                break;
            }
            off -= st[d] * shape[d] as isize;
            idx[d] = 0;
        }
    }
}

/// A strided view of `x`, copied into a new tensor of `shape`.
fn view(x: &CpuTensor, shape: Vec<usize>, base: isize, st: &[isize]) -> CpuTensor {
    let (cs, cst) = coalesce(&shape, st);
    let data = map_data!(&x.data, |v| gather_strided(v, &cs, base, &cst));
    CpuTensor { dtype: x.dtype, shape, data }
}

/// The same view with unit axes dropped and axes merged where one steps
/// exactly over the next (so contiguous runs are as long as possible).
fn coalesce(shape: &[usize], st: &[isize]) -> (Vec<usize>, Vec<isize>) {
    let (mut s, mut t): (Vec<usize>, Vec<isize>) = (Vec::new(), Vec::new());
    for (&d, &k) in shape.iter().zip(st) {
        if d == 1 {
            continue;
        }
        match (s.last_mut(), t.last_mut()) {
            (Some(pd), Some(pk)) if *pk == k * d as isize => {
                *pd *= d;
                *pk = k;
            }
            _ => {
                s.push(d);
                t.push(k);
            }
        }
    }
    if shape.contains(&0) {
        return (vec![0], vec![1]);
    }
    (s, t)
}

/// Gather `idx` from `x` into a new tensor of `shape`.
fn take(x: &CpuTensor, shape: Vec<usize>, idx: &[usize]) -> CpuTensor {
    CpuTensor { dtype: x.dtype, shape, data: map_data!(&x.data, |v| idx.iter().map(|&i| v[i]).collect::<Vec<_>>()) }
}

fn istrides(shape: &[usize]) -> Vec<isize> {
    strides(shape).into_iter().map(|s| s as isize).collect()
}

/// An integer operand (shape, axes, indices) read as i64.
fn ints(inputs: &[Option<&CpuTensor>], i: usize) -> Result<Option<Vec<i64>>> {
    inputs.get(i).copied().flatten().map(|t| t.to_i64()).transpose()
}

/// Unique, normalised axes.
fn norm_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let i = super::axis(a, rank)?;
        if out.contains(&i) {
            bail!("axis {a} is given twice");
        }
        out.push(i);
    }
    Ok(out)
}

enum Move {
    Reshape {
        allowzero: bool,
        attr: Option<Vec<i64>>,
    },
    Flatten(i64),
    Squeeze(Option<Vec<i64>>),
    Unsqueeze(Option<Vec<i64>>),
    Transpose(Option<Vec<i64>>),
    Concat(i64),
    Split {
        axis: i64,
        attr: Option<Vec<i64>>,
        outputs: usize,
    },
    Slice {
        starts: Option<Vec<i64>>,
        ends: Option<Vec<i64>>,
        axes: Option<Vec<i64>>,
    },
    Gather(i64),
    Expand,
    Tile,
    Shape {
        start: i64,
        end: Option<i64>,
    },
    Size,
    Pad {
        mode: PadMode,
        attr: Option<Vec<i64>>,
        value: Option<f32>,
    },
    ConstantOfShape(CpuTensor),
    Constant(CpuTensor),
    /// `start, start + delta, …` before `limit` (float32, int32 or int64).
    Range,
    Trilu(bool),
    GatherElements(i64),
    /// DepthToSpace (`crd`: CRD mode) or SpaceToDepth (`to_depth`).
    Blocks {
        block: usize,
        crd: bool,
        to_depth: bool,
    },
}

struct MoveKernel(Move);

impl Kernel for MoveKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        if let Move::Constant(v) = &self.0 {
            return Ok(vec![v.clone()]);
        }
        let x = input(inputs, 0)?;
        let rank = x.shape.len();
        let one = |t: CpuTensor| Ok(vec![t]);
        match &self.0 {
            Move::Reshape { allowzero, attr } => {
                let spec = match ints(inputs, 1)? {
                    Some(s) => s,
                    None => attr.clone().ok_or_else(|| CpuError::Kernel("Reshape has no shape".into()))?,
                };
                one(x.reshaped(reshape_target(&x.shape, &spec, *allowzero)?)?)
            }
            Move::Flatten(a) => {
                let ax = if *a == rank as i64 { rank } else { super::axis(*a, rank)? };
                let outer = x.shape[..ax].iter().product();
                one(x.reshaped(vec![outer, x.shape[ax..].iter().product()])?)
            }
            Move::Squeeze(attr) => {
                let axes = match ints(inputs, 1)? {
                    Some(a) => Some(a),
                    None => attr.clone(),
                };
                let shape = match axes {
                    None => x.shape.iter().copied().filter(|&d| d != 1).collect(),
                    Some(a) => {
                        let ax = norm_axes(&a, rank)?;
                        if let Some(&bad) = ax.iter().find(|&&i| x.shape[i] != 1) {
                            bail!("cannot squeeze axis {bad} of size {}", x.shape[bad]);
                        }
                        (0..rank).filter(|i| !ax.contains(i)).map(|i| x.shape[i]).collect()
                    }
                };
                one(x.reshaped(shape)?)
            }
            Move::Unsqueeze(attr) => {
                let a = match ints(inputs, 1)? {
                    Some(a) => a,
                    None => attr.clone().ok_or_else(|| CpuError::Kernel("Unsqueeze has no axes".into()))?,
                };
                let out_rank = rank + a.len();
                let ax = norm_axes(&a, out_rank)?;
                let mut src = x.shape.iter();
                let shape =
                    (0..out_rank).map(|i| if ax.contains(&i) { 1 } else { *src.next().unwrap_or(&1) }).collect();
                one(x.reshaped(shape)?)
            }
            Move::Transpose(perm) => {
                let perm: Vec<usize> = match perm {
                    None => (0..rank).rev().collect(),
                    Some(p) => {
                        if p.len() != rank {
                            bail!("perm {p:?} does not match rank {rank}");
                        }
                        norm_axes(p, rank)?
                    }
                };
                let st = istrides(&x.shape);
                let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
                let pst: Vec<isize> = perm.iter().map(|&p| st[p]).collect();
                one(view(x, shape, 0, &pst))
            }
            Move::Concat(a) => concat(ctx, inputs, *a),
            Move::Split { axis, attr, outputs } => split(x, inputs, *axis, attr, *outputs),
            Move::Slice { starts, ends, axes } => slice(ctx, x, inputs, starts, ends, axes),
            Move::Gather(a) => gather(ctx, x, input(inputs, 1)?, *a),
            Move::Expand => {
                let spec = ints(inputs, 1)?.ok_or_else(|| CpuError::Kernel("Expand has no shape".into()))?;
                let spec: Vec<usize> = spec
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| CpuError::Kernel(format!("negative dimension {d}"))))
                    .collect::<Result<_>>()?;
                let shape = broadcast(&x.shape, &spec)?;
                ctx.check_numel(&shape)?;
                let st: Vec<isize> = broadcast_strides(&x.shape, &shape).into_iter().map(|s| s as isize).collect();
                one(view(x, shape, 0, &st))
            }
            Move::Tile => {
                let reps = ints(inputs, 1)?.ok_or_else(|| CpuError::Kernel("Tile has no repeats".into()))?;
                if reps.len() != rank || reps.iter().any(|&r| r < 0) {
                    bail!("repeats {reps:?} must be {rank} non-negative values");
                }
                let shape: Vec<usize> =
                    x.shape.iter().zip(&reps).map(|(&d, &r)| d.saturating_mul(r as usize)).collect();
                let n = ctx.check_numel(&shape)?;
                let (os, is) = (strides(&shape), strides(&x.shape));
                let idx: Vec<usize> =
                    (0..n).map(|o| (0..rank).map(|d| (o / os[d]) % shape[d] % x.shape[d] * is[d]).sum()).collect();
                one(take(x, shape, &idx))
            }
            Move::Shape { start, end } => {
                let clamp = |v: i64| -> usize {
                    let v = if v < 0 { v + rank as i64 } else { v };
                    v.clamp(0, rank as i64) as usize
                };
                let (s, e) = (clamp(*start), clamp(end.unwrap_or(rank as i64)));
                let dims: Vec<i64> = x.shape[s..e.max(s)].iter().map(|&d| d as i64).collect();
                one(CpuTensor::i64(vec![dims.len()], dims))
            }
            Move::Size => one(CpuTensor::i64(vec![], vec![x.numel() as i64])),
            Move::Pad { mode, attr, value } => pad(ctx, x, inputs, *mode, attr, *value),
            Move::Constant(v) => one(v.clone()),
            Move::Trilu(upper) => {
                if rank < 2 {
                    bail!("Trilu input must have rank at least 2, got shape {:?}", x.shape);
                }
                let k = match ints(inputs, 1)? {
                    Some(v) if v.len() == 1 => v[0],
                    Some(v) => bail!("k must be a scalar, got {} values", v.len()),
                    None => 0,
                };
                let (rows, cols) = (x.shape[rank - 2], x.shape[rank - 1]);
                let upper = *upper;
                let keep = move |i: usize| {
                    let (r, c) = ((i / cols.max(1)) % rows.max(1), i % cols.max(1));
                    let diff = c as i128 - r as i128;
                    if upper { diff >= k as i128 } else { diff <= k as i128 }
                };
                let data = map_data!(&x.data, |v| v
                    .iter()
                    .enumerate()
                    .map(|(i, &e)| if keep(i) { e } else { Default::default() })
                    .collect::<Vec<_>>());
                one(CpuTensor { dtype: x.dtype, shape: x.shape.clone(), data })
            }
            Move::Blocks { block, crd, to_depth } => {
                let b = *block;
                let [n, c, h, w] = x.shape[..] else { bail!("input must have rank 4, got {:?}", x.shape) };
                if b > (1 << 16) || h.checked_mul(b).is_none() || w.checked_mul(b).is_none() {
                    bail!("blocksize {b} is too large");
                }
                // Reshape to 6-D and read through a permutation.
                let (six, perm, out): ([usize; 6], [usize; 6], Vec<usize>) = if *to_depth {
                    if h % b != 0 || w % b != 0 {
                        bail!("spatial size {h}x{w} is not a multiple of blocksize {b}");
                    }
                    let perm = if *crd { [0, 1, 3, 5, 2, 4] } else { [0, 3, 5, 1, 2, 4] };
                    ([n, c, h / b, b, w / b, b], perm, vec![n, c * b * b, h / b, w / b])
                } else {
                    if c % (b * b) != 0 {
                        bail!("{c} channels are not a multiple of blocksize² ({})", b * b);
                    }
                    let out = vec![n, c / (b * b), h * b, w * b];
                    if *crd {
                        ([n, c / (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3], out)
                    } else {
                        ([n, b, b, c / (b * b), h, w], [0, 3, 4, 1, 5, 2], out)
                    }
                };
                let st = istrides(&six);
                let pshape: Vec<usize> = perm.iter().map(|&p| six[p]).collect();
                let pst: Vec<isize> = perm.iter().map(|&p| st[p]).collect();
                let t = view(x, pshape, 0, &pst);
                one(t.reshaped(out)?)
            }
            Move::GatherElements(a) => {
                let ind = input(inputs, 1)?;
                let ax = super::axis(*a, rank)?;
                if ind.shape.len() != rank {
                    bail!("indices of shape {:?} must have the rank of data {:?}", ind.shape, x.shape);
                }
                let idx = ind.to_i64()?;
                let (is, ds) = (strides(&ind.shape), strides(&x.shape));
                let dim = x.shape[ax] as i64;
                let mut src = Vec::with_capacity(idx.len());
                for (o, &j) in idx.iter().enumerate() {
                    let j = if j < 0 { j + dim } else { j };
                    if !(0..dim).contains(&j) {
                        bail!("GatherElements index {} is out of range for axis {ax} of size {dim}", idx[o]);
                    }
                    let mut off = 0;
                    for d in 0..rank {
                        let c = if d == ax { j as usize } else { (o / is[d]) % ind.shape[d] };
                        if c >= x.shape[d] {
                            bail!("indices of shape {:?} exceed data of shape {:?}", ind.shape, x.shape);
                        }
                        off += c * ds[d];
                    }
                    src.push(off);
                }
                one(take(x, ind.shape.clone(), &src))
            }
            Move::Range => one(range(ctx, x, input(inputs, 1)?, input(inputs, 2)?)?),
            Move::ConstantOfShape(v) => {
                let spec = x.to_i64()?;
                let shape: Vec<usize> = spec
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| CpuError::Kernel(format!("negative dimension {d}"))))
                    .collect::<Result<_>>()?;
                let n = ctx.check_numel(&shape)?;
                one(take(v, shape, &vec![0; n]))
            }
        }
    }
}

/// Range: the count is `max(ceil((limit - start) / delta), 0)`; floats are
/// computed in f64 and rounded once, as the reference does, integers exactly.
fn range(ctx: &Ctx, start: &CpuTensor, limit: &CpuTensor, delta: &CpuTensor) -> Result<CpuTensor> {
    for t in [start, limit, delta] {
        if t.numel() != 1 || t.dtype != start.dtype {
            bail!("start, limit and delta must be scalars of one type, got {} {:?}", t.dtype, t.shape);
        }
    }
    if let (Data::F32(s), Data::F32(l), Data::F32(d)) = (&start.data, &limit.data, &delta.data) {
        let (s, l, d) = (f64::from(s[0]), f64::from(l[0]), f64::from(d[0]));
        if d == 0.0 || !d.is_finite() || !s.is_finite() || !l.is_finite() {
            bail!("range needs a finite start and limit and a finite, non-zero delta");
        }
        let n = libm::ceil((l - s) / d).max(0.0);
        if n > (usize::MAX / 2) as f64 {
            bail!("range of {n} elements is too large");
        }
        let n = ctx.check_numel(&[n as usize])?;
        return Ok(CpuTensor::f32(vec![n], (0..n).map(|i| (s + i as f64 * d) as f32).collect()));
    }
    let (s, l, d) = (start.to_i64()?[0] as i128, limit.to_i64()?[0] as i128, delta.to_i64()?[0] as i128);
    if d == 0 {
        bail!("delta must not be 0");
    }
    let (span, step) = if d > 0 { (l - s, d) } else { (s - l, -d) };
    let n = if span > 0 { (span + step - 1) / step } else { 0 };
    let n = ctx.check_numel(&[usize::try_from(n).unwrap_or(usize::MAX)])?;
    let values = (0..n).map(|i| s + i as i128 * d);
    Ok(match start.dtype {
        DType::I32 => CpuTensor {
            dtype: DType::I32,
            shape: vec![n],
            data: Data::I32(std::sync::Arc::new(values.map(|v| v as i32).collect())),
        },
        _ => CpuTensor::i64(vec![n], values.map(|v| v as i64).collect()),
    })
}

/// The output shape of Reshape (`0` copies the input dimension unless
/// `allowzero`, one `-1` is inferred).
fn reshape_target(from: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total: usize = from.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => match from.get(i) {
                Some(&v) => out.push(v),
                None => bail!("shape {spec:?} copies dimension {i}, which {from:?} does not have"),
            },
            d if d >= 0 => out.push(d as usize),
            _ => bail!("invalid shape {spec:?}"),
        }
    }
    if let Some(i) = infer {
        let known = strata_ir::tensor::checked_numel(&out).unwrap_or(0);
        if known == 0 || !total.is_multiple_of(known) {
            bail!("cannot reshape {from:?} to {spec:?}");
        }
        out[i] = total / known;
    }
    Ok(out)
}

fn concat(ctx: &Ctx, inputs: &[Option<&CpuTensor>], a: i64) -> Result<Vec<CpuTensor>> {
    let xs: Vec<&CpuTensor> = inputs.iter().flatten().copied().collect();
    let first = xs.first().ok_or_else(|| CpuError::Kernel("Concat has no inputs".into()))?;
    let rank = first.shape.len();
    let ax = super::axis(a, rank)?;
    let mut shape = first.shape.clone();
    shape[ax] = 0;
    for t in &xs {
        if t.shape.len() != rank || t.dtype != first.dtype || (0..rank).any(|d| d != ax && t.shape[d] != first.shape[d])
        {
            bail!("Concat inputs {:?} and {:?} do not match off axis {ax}", first.shape, t.shape);
        }
        shape[ax] += t.shape[ax];
    }
    ctx.check_numel(&shape)?;
    let outer: usize = shape[..ax].iter().product();
    let inner: usize = shape[ax + 1..].iter().product();
    if let Some(t) = xs.iter().find(|t| t.dtype != first.dtype) {
        bail!("Concat inputs differ in type: {} and {}", first.dtype, t.dtype);
    }
    fn cat<T: Elem>(xs: &[&CpuTensor], ax: usize, outer: usize, inner: usize, total: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(total);
        for o in 0..outer {
            for t in xs {
                let v = T::of(&t.data).unwrap_or(&[]);
                let len = t.shape[ax] * inner;
                out.extend_from_slice(&v[o * len..(o + 1) * len]);
            }
        }
        out
    }
    let total = outer * shape[ax] * inner;
    let data = map_data!(&first.data, |v| {
        let _ = v;
        cat(&xs, ax, outer, inner, total)
    });
    Ok(vec![CpuTensor { dtype: first.dtype, shape, data }])
}

fn split(
    x: &CpuTensor,
    inputs: &[Option<&CpuTensor>],
    a: i64,
    attr: &Option<Vec<i64>>,
    outputs: usize,
) -> Result<Vec<CpuTensor>> {
    let rank = x.shape.len();
    let ax = super::axis(a, rank)?;
    let dim = x.shape[ax];
    let sizes: Vec<usize> = match ints(inputs, 1)?.or_else(|| attr.clone()) {
        Some(s) => {
            if s.len() != outputs || s.iter().any(|&v| v < 0) || s.iter().sum::<i64>() != dim as i64 {
                bail!("split {s:?} does not divide axis {ax} of size {dim} into {outputs} parts");
            }
            s.iter().map(|&v| v as usize).collect()
        }
        None => {
            // Equal parts, the last one smaller when it does not divide.
            let part = dim.div_ceil(outputs.max(1));
            (0..outputs).map(|i| part.min(dim.saturating_sub(i * part))).collect()
        }
    };
    let st = istrides(&x.shape);
    let mut out = Vec::with_capacity(outputs);
    let mut start = 0;
    for s in sizes {
        let mut shape = x.shape.clone();
        shape[ax] = s;
        out.push(view(x, shape, start as isize * st[ax], &st));
        start += s;
    }
    Ok(out)
}

fn slice(
    ctx: &Ctx,
    x: &CpuTensor,
    inputs: &[Option<&CpuTensor>],
    starts: &Option<Vec<i64>>,
    ends: &Option<Vec<i64>>,
    axes: &Option<Vec<i64>>,
) -> Result<Vec<CpuTensor>> {
    let sliced =
        strata_ir::ops::tensor::resolve_slice(&x.shape, starts, ends, axes, |i| ints(inputs, i), CpuError::Kernel)?;
    let st = istrides(&x.shape);
    let mut shape = x.shape.clone();
    let mut vst = st.clone();
    let mut base = 0isize;
    for sa in sliced {
        shape[sa.axis] = sa.len;
        base += sa.start as isize * st[sa.axis];
        vst[sa.axis] = st[sa.axis] * sa.step as isize;
    }
    ctx.check_numel(&shape)?;
    Ok(vec![view(x, shape, base, &vst)])
}

fn gather(ctx: &Ctx, x: &CpuTensor, ind: &CpuTensor, a: i64) -> Result<Vec<CpuTensor>> {
    let rank = x.shape.len();
    let ax = super::axis(a, rank)?;
    let dim = x.shape[ax] as i64;
    let idx = ind.to_i64()?;
    let mut shape = x.shape[..ax].to_vec();
    shape.extend_from_slice(&ind.shape);
    shape.extend_from_slice(&x.shape[ax + 1..]);
    ctx.check_numel(&shape)?;
    let outer: usize = x.shape[..ax].iter().product();
    let inner: usize = x.shape[ax + 1..].iter().product();
    let mut src = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in &idx {
            let j = if i < 0 { i + dim } else { i };
            if !(0..dim).contains(&j) {
                bail!("Gather index {i} is out of range for axis {ax} of size {dim}");
            }
            let s = (o * dim as usize + j as usize) * inner;
            src.extend(s..s + inner);
        }
    }
    Ok(vec![take(x, shape, &src)])
}

fn pad(
    ctx: &Ctx,
    x: &CpuTensor,
    inputs: &[Option<&CpuTensor>],
    mode: PadMode,
    attr: &Option<Vec<i64>>,
    value: Option<f32>,
) -> Result<Vec<CpuTensor>> {
    let rank = x.shape.len();
    let pads = match ints(inputs, 1)? {
        Some(p) => p,
        None => attr.clone().ok_or_else(|| CpuError::Kernel("Pad has no pads".into()))?,
    };
    let axes = match ints(inputs, 3)? {
        Some(a) => norm_axes(&a, rank)?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        bail!("pads has {} values, expected {}", pads.len(), 2 * axes.len());
    }
    let (mut before, mut after) = (vec![0i64; rank], vec![0i64; rank]);
    for (i, &a) in axes.iter().enumerate() {
        before[a] = pads[i];
        after[a] = pads[i + axes.len()];
    }
    // Negative amounts crop first; the kept part is then padded by `mode`.
    let mut shape = Vec::with_capacity(rank);
    let (mut crop, mut kept, mut pad_before) = (vec![0i64; rank], vec![0i64; rank], vec![0i64; rank]);
    for d in 0..rank {
        let len = x.shape[d] as i64;
        let (cb, ce) = (before[d].saturating_neg().max(0), after[d].saturating_neg().max(0));
        if cb.saturating_add(ce) > len {
            bail!("pads {pads:?} crop more than the {len} elements of axis {d}");
        }
        (crop[d], kept[d], pad_before[d]) = (cb, len - cb - ce, before[d].max(0));
        if kept[d] == 0 && mode != PadMode::Constant && (before[d] > 0 || after[d] > 0) {
            bail!("cannot pad an empty axis {d} in {mode} mode");
        }
        shape.push(kept[d].saturating_add(pad_before[d]).saturating_add(after[d].max(0)) as usize);
    }
    let n = ctx.check_numel(&shape)?;
    // The fill value: input 2, else (float32 only) the old `value` attribute, else zero.
    let attr_fill = CpuTensor::f32(vec![1], vec![value.unwrap_or(0.0)]);
    let fill = match inputs.get(2).copied().flatten() {
        Some(t) if t.dtype != x.dtype => bail!("Pad value is {}, the data {}", t.dtype, x.dtype),
        Some(t) => Some(t),
        None if x.dtype == strata_ir::DType::F32 => Some(&attr_fill),
        None => None,
    };
    let (os, is) = (strides(&shape), strides(&x.shape));
    // Source offset of every output element (`usize::MAX`: the fill value).
    let mut src = Vec::with_capacity(n);
    for o in 0..n {
        let mut off = 0usize;
        let mut inside = true;
        for d in 0..rank {
            let len = kept[d];
            let mut p = ((o / os[d]) % shape[d]) as i64 - pad_before[d];
            if p < 0 || p >= len {
                match mode {
                    PadMode::Edge => p = p.clamp(0, len - 1),
                    PadMode::Reflect if len > 1 => {
                        let period = 2 * (len - 1);
                        p = p.rem_euclid(period);
                        if p >= len {
                            p = period - p;
                        }
                    }
                    PadMode::Reflect => p = 0,
                    PadMode::Wrap => p = p.rem_euclid(len),
                    PadMode::Constant => inside = false,
                }
            }
            off += (crop[d] + p.max(0)) as usize * is[d];
        }
        src.push(if inside { off } else { usize::MAX });
    }
    fn pick<T: Elem + Default>(v: &[T], src: &[usize], fill: Option<&CpuTensor>) -> Vec<T> {
        let fill = fill.and_then(|t| T::of(&t.data)).and_then(|f| f.first().copied()).unwrap_or_default();
        src.iter().map(|&o| if o == usize::MAX { fill } else { v[o] }).collect()
    }
    let data = map_data!(&x.data, |v| pick(v, &src, fill));
    Ok(vec![CpuTensor { dtype: x.dtype, shape, data }])
}

#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn build(op: &T, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    let n_in = info.node.inputs.len();
    let ins: Vec<_> = (0..n_in).filter(|&i| info.has_input(i)).map(|i| info.in_dtype(i)).collect();
    let outs: Vec<_> =
        info.node.outputs.iter().enumerate().filter(|(_, o)| o.is_some()).map(|(i, _)| info.out_dtype(i)).collect();
    if !all_held(&ins) || !all_held(&outs) {
        return Err(unsupported("element types this backend does not hold"));
    }
    let int_operand = |i: usize| -> Result<()> {
        if info.has_input(i) && !matches!(info.in_dtype(i), Some(DType::I64 | DType::I32)) {
            return Err(unsupported(format!("input {i} must be an integer tensor")));
        }
        Ok(())
    };
    let m = match op {
        T::Reshape { allowzero, shape } => {
            int_operand(1)?;
            Move::Reshape { allowzero: *allowzero != 0, attr: shape.clone() }
        }
        T::Flatten { axis } => Move::Flatten(*axis),
        T::Squeeze { axes } => {
            int_operand(1)?;
            Move::Squeeze(axes.clone())
        }
        T::Unsqueeze { axes } => {
            int_operand(1)?;
            Move::Unsqueeze(axes.clone())
        }
        T::Transpose { perm } => Move::Transpose(perm.clone()),
        T::Concat { axis } => Move::Concat(*axis),
        T::Split { axis, num_outputs: _, split } => {
            int_operand(1)?;
            Move::Split { axis: *axis, attr: split.clone(), outputs: info.node.outputs.len() }
        }
        T::Slice { starts, ends, axes } => {
            (1..5).try_for_each(int_operand)?;
            Move::Slice { starts: starts.clone(), ends: ends.clone(), axes: axes.clone() }
        }
        T::Gather { axis } => {
            int_operand(1)?;
            Move::Gather(*axis)
        }
        T::Expand {} => {
            int_operand(1)?;
            Move::Expand
        }
        T::Tile {} => {
            int_operand(1)?;
            Move::Tile
        }
        T::Shape { start, end } => Move::Shape { start: *start, end: *end },
        T::Size {} => Move::Size,
        T::Pad { mode, pads, value } => {
            int_operand(1)?;
            int_operand(3)?;
            Move::Pad { mode: *mode, attr: pads.clone(), value: *value }
        }
        T::ConstantOfShape { value } => {
            int_operand(0)?;
            let v = match value {
                Some(v) if v.numel() == 1 => CpuTensor::from_host(v)?.reshaped(vec![1])?,
                Some(_) => return Err(unsupported("ConstantOfShape value must have one element")),
                None => CpuTensor::f32(vec![1], vec![0.0]),
            };
            Move::ConstantOfShape(v)
        }
        T::Constant { value } => Move::Constant(CpuTensor::from_host(value)?),
        T::DepthToSpace { blocksize, mode } | T::SpaceToDepth { blocksize, mode } => {
            let block =
                usize::try_from(*blocksize).ok().filter(|&b| b >= 1).ok_or_else(|| unsupported("blocksize < 1"))?;
            let to_depth = matches!(op, T::SpaceToDepth { .. });
            let crd = *mode == BlockOrder::Crd;
            Move::Blocks { block, crd, to_depth }
        }
        T::Range {} => {
            info.require_dtypes(&[DType::F32, DType::I32, DType::I64])?;
            Move::Range
        }
        T::Trilu { upper } => {
            int_operand(1)?;
            Move::Trilu(*upper != 0)
        }
        T::GatherElements { axis } => {
            int_operand(1)?;
            Move::GatherElements(*axis)
        }
        // not supported here
        T::GatherND { .. }
        | T::Scatter { .. }
        | T::ScatterElements { .. }
        | T::ScatterND { .. }
        | T::TensorScatter { .. }
        | T::CenterCropPad { .. }
        | T::EyeLike { .. }
        | T::OneHot { .. }
        | T::NonZero { .. }
        | T::Compress { .. }
        | T::ReverseSequence { .. }
        | T::Unique { .. }
        | T::ImageDecoder { .. } => return Err(unsupported(format!("no {} kernel", op.name()))),
    };
    Ok(Box::new(MoveKernel(m)))
}
