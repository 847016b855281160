//! Layout and indexing operators on every held type: Reshape, Flatten,
//! Squeeze, Unsqueeze, Expand (new logical shapes over the same elements),
//! Transpose (burn's permute), Concat (burn's cat), Slice (burn's slice,
//! any step), Split, Gather (burn's select, negative indices wrapped),
//! Tile (cat of copies), Pad (constant, reflect, edge) and Identity. Shape,
//! axes, pads, starts/ends and repeats operands are weights read at compile
//! time or small integer inputs read from the device when the node runs.

use burn_backend::ops::PadMode as BurnPad;
use burn_backend::{Backend, Slice};
use strata_ir::DType;
use strata_ir::ops::TensorOp as T;
use strata_ir::ops::tensor::PadMode;

use super::{Ints, NodeInfo, Out, Unsupported, axis, broadcast, expand_prim, input, numel, opt_get};
use crate::tensor::{BurnTensor, Prim};

/// A compiled layout node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Move {
    Reshape {
        shape: Ints,
        allowzero: bool,
    },
    Flatten {
        axis: i64,
    },
    Squeeze {
        axes: Option<Ints>,
    },
    Unsqueeze {
        axes: Ints,
    },
    Expand {
        shape: Ints,
    },
    Transpose {
        perm: Option<Vec<i64>>,
    },
    Concat {
        axis: i64,
    },
    Slice {
        starts: Ints,
        ends: Ints,
        axes: Option<Ints>,
        steps: Option<Ints>,
    },
    Split {
        axis: i64,
        split: Option<Ints>,
        outputs: usize,
    },
    Gather {
        axis: i64,
    },
    Tile {
        repeats: Ints,
    },
    Pad {
        mode: PadMode,
        pads: Ints,
        value: Option<f32>,
        axes: Option<Ints>,
    },
    /// Shape and Size: int64 from the logical shape (no device read).
    Shape {
        start: i64,
        end: Option<i64>,
    },
    Size,
    ConstantOfShape {
        shape: Ints,
        dtype: DType,
        value: f64,
    },
    Range {
        dtype: DType,
    },
}

pub(crate) fn plan(op: &T, info: &NodeInfo) -> Result<Move, Unsupported> {
    // Attribute first (older opsets), else operand `i`.
    let operand = |attr: &Option<Vec<i64>>, i: usize, what: &str| -> Result<Option<Ints>, Unsupported> {
        match attr {
            Some(v) => Ok(Some(Ints::Const(v.clone()))),
            None => info.opt_ints(i, what),
        }
    };
    let (k, operands): (Move, &[usize]) = match op {
        T::Reshape { allowzero, shape } => (
            Move::Reshape {
                shape: operand(shape, 1, "Reshape's shape")?.ok_or("Reshape without a shape")?,
                allowzero: *allowzero != 0,
            },
            &[1],
        ),
        T::Flatten { axis } => (Move::Flatten { axis: *axis }, &[]),
        T::Squeeze { axes } => (Move::Squeeze { axes: operand(axes, 1, "Squeeze's axes")? }, &[1]),
        T::Unsqueeze { axes } => {
            (Move::Unsqueeze { axes: operand(axes, 1, "Unsqueeze's axes")?.ok_or("Unsqueeze without axes")? }, &[1])
        }
        T::Expand {} => (Move::Expand { shape: info.ints(1, "Expand's shape")? }, &[1]),
        T::Transpose { perm } => (Move::Transpose { perm: perm.clone() }, &[]),
        T::Concat { axis } => (Move::Concat { axis: *axis }, &[]),
        T::Slice { starts, ends, axes } => (
            Move::Slice {
                starts: operand(starts, 1, "Slice's starts")?.ok_or("Slice without starts")?,
                ends: operand(ends, 2, "Slice's ends")?.ok_or("Slice without ends")?,
                axes: operand(axes, 3, "Slice's axes")?,
                steps: if starts.is_some() { None } else { info.opt_ints(4, "Slice's steps")? },
            },
            &[1, 2, 3, 4],
        ),
        T::Split { axis, num_outputs, split } => {
            let split = operand(split, 1, "Split's split")?;
            if split.is_none() && num_outputs.is_some_and(|n| n as usize != info.node.outputs.len()) {
                return Err("Split's num_outputs differs from its outputs".into());
            }
            (Move::Split { axis: *axis, split, outputs: info.node.outputs.len() }, &[1])
        }
        T::Gather { axis } => {
            if !matches!(info.in_dtype(1), Some(DType::I64 | DType::I32)) {
                return Err("Gather indices are not int64/int32".into());
            }
            (Move::Gather { axis: *axis }, &[])
        }
        T::Tile {} => (Move::Tile { repeats: info.ints(1, "Tile's repeats")? }, &[1]),
        T::Pad { mode, pads, value } => {
            if *mode == PadMode::Wrap {
                return Err("Pad mode wrap (burn pads constant, reflect, edge)".into());
            }
            // A value operand (weight or computed) is read when the node runs.
            let value = *value;
            if info.in_dtype(0) == Some(DType::Bool) {
                return Err("Pad of bool tensors".into());
            }
            let pads = operand(pads, 1, "Pad's pads")?.ok_or("Pad without pads")?;
            (Move::Pad { mode: *mode, pads, value, axes: info.opt_ints(3, "Pad's axes")? }, &[1, 2, 3])
        }
        T::Shape { start, end } => (Move::Shape { start: *start, end: *end }, &[]),
        T::Size {} => (Move::Size, &[]),
        T::ConstantOfShape { value } => {
            let (dtype, value) = match value {
                Some(t) if t.numel() == 1 => (t.dtype(), t.to_f64_vec()[0]),
                Some(_) => return Err("ConstantOfShape value is not one element".into()),
                None => (DType::F32, 0.0),
            };
            (Move::ConstantOfShape { shape: info.ints(0, "ConstantOfShape's shape")?, dtype, value }, &[0])
        }
        T::Range {} => match info.in_dtype(0) {
            Some(d @ (DType::F32 | DType::I64 | DType::I32)) => (Move::Range { dtype: d }, &[]),
            d => return Err(format!("Range of {d:?}")),
        },
        _ => return Err(format!("no {} kernel on burn", op.name())),
    };
    info.require_held(operands)?;
    Ok(k)
}

/// The output shape of Reshape.
fn reshape(input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let total = numel(input)?;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or(format!("shape entry {i} copies a missing axis"))?),
            d if d >= 0 => out.push(d as usize),
            _ => return Err(format!("invalid shape {spec:?}")),
        }
    }
    let known = numel(&out)?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(format!("cannot reshape {input:?} to {spec:?}"));
        }
        out[i] = total / known;
    }
    if numel(&out)? != total {
        return Err(format!("cannot reshape {input:?} to {spec:?}"));
    }
    Ok(out)
}

/// Clamp a Slice bound as ONNX does for an axis of length `len`.
fn clamp_bound(v: i64, len: i64, step: i64) -> i64 {
    let v = if v < 0 { v + len } else { v };
    if step > 0 { v.clamp(0, len) } else { v.clamp(-1, len - 1) }
}

/// An empty tensor of `x`'s kind (burn cannot hold zero elements; the
/// primitive keeps one element, the logical shape says none).
fn empty<B: Backend>(x: &BurnTensor<B>, shape: Vec<usize>) -> BurnTensor<B> {
    let one = x.reshaped_prim(&x.shape).reshape(burn_backend::Shape::from(vec![numel(&x.shape).unwrap_or(0)]));
    let p = one.slice(&[Slice::new(0, Some(1), 1)]);
    BurnTensor::of(shape, x.dtype, p)
}

impl Move {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Out<B> {
        if let Some(out) = self.generate(ins, device) {
            return out;
        }
        let x = input(ins, 0)?;
        let r = x.shape.len();
        let same_elements = |shape: Vec<usize>| -> Out<B> { Ok(vec![x.with_shape(shape)]) };
        match self {
            Move::Shape { .. } | Move::Size | Move::ConstantOfShape { .. } | Move::Range { .. } => {
                unreachable!("generators are run by `generate`")
            }
            Move::Reshape { shape, allowzero } => same_elements(reshape(&x.shape, &shape.get(ins)?, *allowzero)?),
            Move::Flatten { axis: a } => {
                let a = if *a < 0 { *a + r as i64 } else { *a };
                if a < 0 || a > r as i64 {
                    return Err(format!("axis {a} is out of range for rank {r}"));
                }
                let (head, tail) = x.shape.split_at(a as usize);
                same_elements(vec![numel(head)?, numel(tail)?])
            }
            Move::Squeeze { axes } => {
                let drop: Vec<usize> = match opt_get(axes, ins)? {
                    Some(a) => a.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?,
                    None => (0..r).filter(|&i| x.shape[i] == 1).collect(),
                };
                if let Some(&i) = drop.iter().find(|&&i| x.shape[i] != 1) {
                    return Err(format!("axis {i} of {:?} is not 1", x.shape));
                }
                same_elements((0..r).filter(|i| !drop.contains(i)).map(|i| x.shape[i]).collect())
            }
            Move::Unsqueeze { axes } => {
                let axes = axes.get(ins)?;
                let n = r + axes.len();
                let mut new: Vec<usize> = axes.iter().map(|&a| axis(a, n)).collect::<Result<_, _>>()?;
                new.sort_unstable();
                if new.windows(2).any(|w| w[0] == w[1]) {
                    return Err(format!("repeated axes {axes:?}"));
                }
                let mut it = x.shape.iter();
                let shape = (0..n).map(|i| if new.contains(&i) { 1 } else { *it.next().unwrap_or(&1) }).collect();
                same_elements(shape)
            }
            Move::Expand { shape } => {
                let shape = shape.get(ins)?;
                let spec: Vec<usize> = shape
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| format!("invalid shape {shape:?}")))
                    .collect::<Result<_, _>>()?;
                let out = broadcast(&x.shape, &spec)?;
                if numel(&out)? == 0 {
                    return Ok(vec![empty(x, out)]);
                }
                Ok(vec![BurnTensor::of(out.clone(), x.dtype, expand_prim(x, &out))])
            }
            Move::Transpose { perm } => {
                let perm: Vec<usize> = match perm {
                    Some(p) => p.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?,
                    None => (0..r).rev().collect(),
                };
                let mut seen = perm.clone();
                seen.sort_unstable();
                if seen != (0..r).collect::<Vec<_>>() {
                    return Err(format!("perm {perm:?} is not a permutation of rank {r}"));
                }
                let shape: Vec<usize> = perm.iter().map(|&i| x.shape[i]).collect();
                if r < 2 || numel(&shape)? == 0 {
                    return same_elements(shape);
                }
                Ok(vec![BurnTensor::of(shape, x.dtype, x.prim.clone().permute(&perm))])
            }
            Move::Concat { axis: a } => {
                let parts: Vec<&BurnTensor<B>> = ins.iter().flatten().copied().collect();
                if r == 0 {
                    return Err("Concat of scalars".into());
                }
                let a = axis(*a, r)?;
                let mut shape = x.shape.clone();
                shape[a] = 0;
                for p in &parts {
                    if p.shape.len() != r || (0..r).any(|i| i != a && p.shape[i] != x.shape[i]) {
                        return Err(format!("shapes {:?} and {:?} do not concatenate on axis {a}", x.shape, p.shape));
                    }
                    shape[a] += p.shape[a];
                }
                let prims: Vec<Prim<B>> =
                    parts.iter().filter(|p| numel(&p.shape).unwrap_or(0) > 0).map(|p| p.prim.clone()).collect();
                if prims.is_empty() {
                    return Ok(vec![empty(x, shape)]);
                }
                Ok(vec![BurnTensor::of(shape, x.dtype, Prim::cat(prims, a)?)])
            }
            Move::Slice { starts, ends, axes, steps } => {
                let (starts, ends) = (starts.get(ins)?, ends.get(ins)?);
                let axes: Vec<usize> = match opt_get(axes, ins)? {
                    Some(a) => a.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?,
                    None => (0..starts.len()).collect(),
                };
                let steps = opt_get(steps, ins)?.unwrap_or_else(|| vec![1; starts.len()]);
                if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
                    return Err("Slice operands differ in length".into());
                }
                let mut slices: Vec<Slice> = x.shape.iter().map(|&d| Slice::new(0, Some(d as isize), 1)).collect();
                let mut shape = x.shape.clone();
                for k in 0..starts.len() {
                    let (a, step) = (axes[k], steps[k]);
                    if step == 0 {
                        return Err("Slice step 0".into());
                    }
                    let len = x.shape[a] as i64;
                    let (s, e) = (clamp_bound(starts[k], len, step), clamp_bound(ends[k], len, step));
                    let (span, by) = if step > 0 { ((e - s).max(0), step) } else { ((s - e).max(0), -step) };
                    let n = (span + by - 1) / by;
                    shape[a] = n as usize;
                    slices[a] = if step > 0 {
                        Slice::new(s as isize, Some(e as isize), step as isize)
                    } else {
                        // burn's negative steps walk a range [end+1, start] backwards.
                        Slice::new((e + 1) as isize, Some((s + 1) as isize), step as isize)
                    };
                }
                if numel(&shape)? == 0 {
                    return Ok(vec![empty(x, shape)]);
                }
                let p = x.reshaped_prim(&x.shape.iter().map(|&d| d.max(1)).collect::<Vec<_>>());
                let p = if r == 0 { p } else { p.slice(&slices) };
                Ok(vec![BurnTensor::of(shape, x.dtype, p)])
            }
            Move::Split { axis: a, split, outputs } => {
                let a = axis(*a, r)?;
                let len = x.shape[a];
                let sizes: Vec<usize> = match opt_get(split, ins)? {
                    Some(s) => {
                        s.iter().map(|&v| usize::try_from(v).map_err(|_| "negative split")).collect::<Result<_, _>>()?
                    }
                    None => {
                        let n = *outputs;
                        let chunk = len.div_ceil(n.max(1));
                        (0..n).map(|i| chunk.min(len.saturating_sub(i * chunk))).collect()
                    }
                };
                if sizes.iter().sum::<usize>() != len || sizes.len() != *outputs {
                    return Err(format!("split {sizes:?} does not cover axis {a} of {:?}", x.shape));
                }
                let mut outs = Vec::with_capacity(sizes.len());
                let mut at = 0;
                for s in sizes {
                    let mut shape = x.shape.clone();
                    shape[a] = s;
                    if s == 0 {
                        outs.push(empty(x, shape));
                        continue;
                    }
                    let mut slices: Vec<Slice> = x.shape.iter().map(|&d| Slice::new(0, Some(d as isize), 1)).collect();
                    slices[a] = Slice::new(at as isize, Some((at + s) as isize), 1);
                    outs.push(BurnTensor::of(shape, x.dtype, x.prim.clone().slice(&slices)));
                    at += s;
                }
                Ok(outs)
            }
            Move::Gather { axis: a } => {
                let idx = input(ins, 1)?;
                if r == 0 {
                    return Err("Gather from a scalar".into());
                }
                let a = axis(*a, r)?;
                let len = x.shape[a] as i64;
                let mut list = idx.host_ints()?;
                for v in &mut list {
                    if *v < -len || *v >= len {
                        return Err(format!("index {v} is out of range for axis {a} of {:?}", x.shape));
                    }
                    if *v < 0 {
                        *v += len;
                    }
                }
                let mut shape: Vec<usize> = x.shape[..a].to_vec();
                shape.extend_from_slice(&idx.shape);
                shape.extend_from_slice(&x.shape[a + 1..]);
                if list.is_empty() || numel(&shape)? == 0 {
                    return Ok(vec![empty(x, shape)]);
                }
                let n = list.len();
                let ids = B::int_from_data(burn_backend::TensorData::new(list, vec![n]), device);
                let p = x.prim.clone().select(a, ids);
                let t = BurnTensor::of(
                    x.shape[..a].iter().copied().chain([n]).chain(x.shape[a + 1..].iter().copied()).collect(),
                    x.dtype,
                    p,
                );
                Ok(vec![t.with_shape(shape)])
            }
            Move::Tile { repeats } => {
                let reps = repeats.get(ins)?;
                if reps.len() != r || reps.iter().any(|&v| v < 0) {
                    return Err(format!("repeats {reps:?} for rank {r}"));
                }
                let shape: Vec<usize> = x.shape.iter().zip(&reps).map(|(&d, &k)| d * k as usize).collect();
                if numel(&shape)? == 0 {
                    return Ok(vec![empty(x, shape)]);
                }
                let mut p = x.prim.clone();
                for (d, &k) in reps.iter().enumerate() {
                    if k > 1 {
                        p = Prim::cat(vec![p; k as usize], d)?;
                    }
                }
                Ok(vec![BurnTensor::of(shape, x.dtype, p)])
            }
            Move::Pad { mode, pads, value, axes } => {
                let value = match ins.get(2).copied().flatten() {
                    Some(t) => match t.host_f64()?.as_slice() {
                        [v] => Some(*v as f32),
                        _ => return Err("Pad value is not a scalar".into()),
                    },
                    None => *value,
                };
                let pads = pads.get(ins)?;
                let axes: Vec<usize> = match opt_get(axes, ins)? {
                    Some(a) => a.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?,
                    None => (0..r).collect(),
                };
                if pads.len() != 2 * axes.len() {
                    return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
                }
                if pads.iter().any(|&p| p < 0) {
                    return Err("negative pads".into());
                }
                let mut pairs = vec![(0usize, 0usize); r];
                let mut shape = x.shape.clone();
                for (k, &a) in axes.iter().enumerate() {
                    let (b, e) = (pads[k] as usize, pads[k + axes.len()] as usize);
                    pairs[a] = (b, e);
                    shape[a] += b + e;
                }
                let burn_mode = match mode {
                    PadMode::Constant => BurnPad::Constant(value.unwrap_or(0.0)),
                    PadMode::Reflect => BurnPad::Reflect,
                    PadMode::Edge => BurnPad::Edge,
                    PadMode::Wrap => return Err("Pad mode wrap".into()),
                };
                if numel(&x.shape)? == 0 {
                    return Err("Pad of an empty tensor".into());
                }
                let p = match &x.prim {
                    Prim::Float(p) => Prim::Float(B::float_pad(p.clone(), &pairs, burn_mode)),
                    Prim::Int(p) => Prim::Int(B::int_pad(p.clone(), &pairs, burn_mode)),
                    Prim::Bool(_) => return Err("Pad of bool tensors".into()),
                };
                Ok(vec![BurnTensor::of(shape, x.dtype, p)])
            }
        }
    }
}

/// A host-built int64 vector on the device.
fn int_vector<B: Backend>(v: Vec<i64>, shape: Vec<usize>, device: &B::Device) -> BurnTensor<B> {
    let n = v.len();
    let v = if v.is_empty() { vec![0] } else { v };
    let p = B::int_from_data(burn_backend::TensorData::new(v, vec![n.max(1)]), device);
    let t = BurnTensor::of(vec![n.max(1)], DType::I64, Prim::Int(p));
    if n == 0 { empty(&t, shape) } else { t.with_shape(shape) }
}

impl Move {
    /// Operators that make a tensor from shapes and scalars (`None`: another operator).
    fn generate<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Option<Out<B>> {
        let out = match self {
            Move::Shape { start, end } => (|| {
                let s = &input(ins, 0)?.shape;
                let r = s.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let (a, b) = (clamp(*start), clamp(end.unwrap_or(r)));
                let v: Vec<i64> = s[a..b.max(a)].iter().map(|&d| d as i64).collect();
                let n = v.len();
                Ok(vec![int_vector(v, vec![n], device)])
            })(),
            Move::Size => (|| {
                let n = numel(&input(ins, 0)?.shape)? as i64;
                Ok(vec![int_vector(vec![n], vec![], device)])
            })(),
            Move::ConstantOfShape { shape, dtype, value } => (|| {
                let spec = shape.get(ins)?;
                let shape: Vec<usize> = spec
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| format!("invalid shape {spec:?}")))
                    .collect::<Result<_, _>>()?;
                let n = numel(&shape)?;
                let b = crate::tensor::burn_shape(&[n.max(1)]);
                let prim = match dtype {
                    DType::F32 => Prim::Float(B::float_full(
                        b,
                        burn_backend::Scalar::from(*value as f32),
                        device,
                        crate::tensor::FLOAT,
                    )),
                    DType::I64 | DType::I32 => {
                        Prim::Int(B::int_full(b, burn_backend::Scalar::from(*value as i64), device, crate::tensor::INT))
                    }
                    DType::Bool if *value != 0.0 => Prim::Bool(B::bool_ones(b, device, crate::tensor::BOOL)),
                    DType::Bool => Prim::Bool(B::bool_zeros(b, device, crate::tensor::BOOL)),
                    d => return Err(format!("ConstantOfShape of {d}")),
                };
                let t = BurnTensor::of(vec![n.max(1)], *dtype, prim);
                Ok(vec![if n == 0 { empty(&t, shape) } else { t.with_shape(shape) }])
            })(),
            Move::Range { dtype } => (|| {
                let scalar = |i: usize| -> Result<f64, String> {
                    match input(ins, i)?.host_f64()?.as_slice() {
                        [v] => Ok(*v),
                        _ => Err("Range operands are scalars".into()),
                    }
                };
                let (start, limit, delta) = (scalar(0)?, scalar(1)?, scalar(2)?);
                if delta == 0.0 {
                    return Err("Range delta 0".into());
                }
                let n = ((limit - start) / delta).ceil().max(0.0) as usize;
                let idx = B::int_arange(0..n.max(1) as i64, device, crate::tensor::INT);
                let prim = if *dtype == DType::F32 {
                    let f = B::int_into_float(idx, crate::tensor::FLOAT);
                    let f = B::float_add_scalar(
                        B::float_mul_scalar(f, burn_backend::Scalar::from(delta as f32)),
                        burn_backend::Scalar::from(start as f32),
                    );
                    Prim::Float(f)
                } else {
                    let i = B::int_add_scalar(
                        B::int_mul_scalar(idx, burn_backend::Scalar::from(delta as i64)),
                        burn_backend::Scalar::from(start as i64),
                    );
                    Prim::Int(i)
                };
                let t = BurnTensor::of(vec![n.max(1)], *dtype, prim);
                Ok(vec![if n == 0 { empty(&t, vec![0]) } else { t }])
            })(),
            _ => return None,
        };
        Some(out)
    }
}
