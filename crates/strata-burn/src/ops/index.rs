//! Indexed and structural data movement: GatherElements (burn's gather,
//! negative indices wrapped on the host), Trilu (a triangle mask built from
//! the matrix geometry, filled with zeros), OneHot (an equality of the
//! indices against a range) and DepthToSpace/SpaceToDepth (reshape,
//! permute, reshape).

use burn_backend::{Backend, Scalar, TensorData};
use strata_ir::DType;
use strata_ir::ops::TensorOp as T;
use strata_ir::ops::tensor::BlockOrder;

use super::{NodeInfo, Out, Unsupported, axis, input, numel};
use crate::tensor::{BOOL, BurnTensor, FLOAT, INT, Prim, burn_shape};

/// A compiled indexing node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Index {
    GatherElements { axis: i64 },
    Trilu { upper: bool },
    OneHot { axis: i64 },
    DepthToSpace { block: usize, order: BlockOrder },
    SpaceToDepth { block: usize, order: BlockOrder },
}

/// Plan the operators of this module (`None`: another operator).
pub(crate) fn plan(op: &T, info: &NodeInfo) -> Option<Result<Index, Unsupported>> {
    let block =
        |b: i64| usize::try_from(b).ok().filter(|&b| b > 0).ok_or_else(|| "blocksize must be positive".to_string());
    let k = match op {
        T::GatherElements { axis } => Ok(Index::GatherElements { axis: *axis }),
        T::Trilu { upper } => Ok(Index::Trilu { upper: *upper != 0 }),
        T::OneHot { axis } => Ok(Index::OneHot { axis: *axis }),
        T::DepthToSpace { blocksize, mode } => {
            block(*blocksize).map(|b| Index::DepthToSpace { block: b, order: *mode })
        }
        T::SpaceToDepth { blocksize, mode } => {
            block(*blocksize).map(|b| Index::SpaceToDepth { block: b, order: *mode })
        }
        _ => return None,
    };
    let check = |k: Index| -> Result<Index, Unsupported> {
        match &k {
            Index::GatherElements { .. } => {
                if !matches!(info.in_dtype(1), Some(DType::I64 | DType::I32)) {
                    return Err("GatherElements indices are not int64/int32".into());
                }
                if info.in_dtype(0) == Some(DType::Bool) {
                    return Err("GatherElements of bool data".into());
                }
                info.require_held(&[])?;
            }
            Index::Trilu { .. } => {
                info.opt_ints(1, "Trilu's k")?;
                info.require_held(&[1])?;
            }
            Index::OneHot { .. } => {
                if info.in_dtype(2) != Some(DType::F32) && info.in_dtype(2) != Some(DType::I64) {
                    return Err("OneHot values are neither float32 nor int64".into());
                }
                info.require_held(&[])?;
            }
            _ => info.require_held(&[])?,
        }
        Ok(k)
    };
    Some(k.and_then(check))
}

/// The elements of input `i` as one scalar.
fn scalar<B: Backend>(ins: &[Option<&BurnTensor<B>>], i: usize, what: &str) -> Result<f64, String> {
    match input(ins, i)?.host_f64()?.as_slice() {
        [v] => Ok(*v),
        _ => Err(format!("{what} is not a scalar")),
    }
}

impl Index {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Out<B> {
        let x = input(ins, 0)?;
        let r = x.shape.len();
        match self {
            Index::GatherElements { axis: a } => {
                let idx = input(ins, 1)?;
                if idx.shape.len() != r || r == 0 {
                    return Err(format!("indices {:?} and data {:?} differ in rank", idx.shape, x.shape));
                }
                let a = axis(*a, r)?;
                let len = x.shape[a] as i64;
                let mut v = idx.host_ints()?;
                for i in &mut v {
                    if *i < -len || *i >= len {
                        return Err(format!("index {i} is out of range for axis {a} of {:?}", x.shape));
                    }
                    if *i < 0 {
                        *i += len;
                    }
                }
                if numel(&idx.shape)? == 0 {
                    return Err("GatherElements with no indices".into());
                }
                let ids = B::int_from_data(TensorData::new(v, burn_shape(&idx.shape)), device);
                let p = match &x.prim {
                    Prim::Float(p) => Prim::Float(B::float_gather(a, p.clone(), ids)),
                    Prim::Int(p) => Prim::Int(B::int_gather(a, p.clone(), ids)),
                    Prim::Bool(_) => return Err("GatherElements of bool data".into()),
                };
                Ok(vec![BurnTensor::of(idx.shape.clone(), x.dtype, p)])
            }
            Index::Trilu { upper } => {
                if r < 2 {
                    return Err("Trilu of fewer than 2 axes".into());
                }
                let k = match ins.get(1).copied().flatten() {
                    Some(t) => match t.host_ints()?.as_slice() {
                        [v] => *v,
                        _ => return Err("Trilu's k is not a scalar".into()),
                    },
                    None => 0,
                };
                if numel(&x.shape)? == 0 {
                    return Ok(vec![x.clone()]);
                }
                let (rows, cols) = (x.shape[r - 2], x.shape[r - 1]);
                let drop: Vec<bool> = (0..rows * cols)
                    .map(|e| {
                        let d = (e % cols) as i64 - (e / cols) as i64;
                        if *upper { d < k } else { d > k }
                    })
                    .collect();
                let mut ms = vec![1; r];
                ms[r - 2] = rows;
                ms[r - 1] = cols;
                let mask = B::bool_from_data(TensorData::new(drop, burn_shape(&ms)), device);
                let mask = if ms == x.shape { mask } else { B::bool_expand(mask, burn_shape(&x.shape)) };
                let p = match &x.prim {
                    Prim::Float(p) => Prim::Float(B::float_mask_fill(p.clone(), mask, Scalar::from(0.0f32))),
                    Prim::Int(p) => Prim::Int(B::int_mask_fill(p.clone(), mask, Scalar::from(0i64))),
                    Prim::Bool(p) => Prim::Bool(B::bool_mask_fill(p.clone(), mask, Scalar::from(false))),
                };
                Ok(vec![BurnTensor::of(x.shape.clone(), x.dtype, p)])
            }
            Index::OneHot { axis: a } => {
                let depth = scalar(ins, 1, "OneHot's depth")?;
                if depth < 1.0 {
                    return Err(format!("OneHot depth {depth}"));
                }
                let depth = depth as usize;
                let values = input(ins, 2)?.host_f64()?;
                let [off, on] = values[..] else { return Err("OneHot values are not two".into()) };
                let a = axis(*a, r + 1)?;
                let idx: Vec<i64> = x
                    .host_f64()?
                    .into_iter()
                    .map(|v| {
                        let v = v.trunc() as i64;
                        if v < 0 { v + depth as i64 } else { v }
                    })
                    .collect();
                let mut shape = x.shape.clone();
                shape.insert(a, depth);
                let mut is = x.shape.clone();
                is.insert(a, 1);
                let mut rs = vec![1; r + 1];
                rs[a] = depth;
                if numel(&shape)? == 0 {
                    return Err("OneHot of an empty tensor".into());
                }
                let ids =
                    B::int_expand(B::int_from_data(TensorData::new(idx, burn_shape(&is)), device), burn_shape(&shape));
                let range = B::int_reshape(B::int_arange(0..depth as i64, device, INT), burn_shape(&rs));
                let hit = B::int_equal(ids, B::int_expand(range, burn_shape(&shape)), BOOL);
                let dtype = input(ins, 2)?.dtype;
                let p = if dtype == DType::F32 {
                    let base = B::float_full(burn_shape(&shape), Scalar::from(off as f32), device, FLOAT);
                    Prim::Float(B::float_mask_fill(base, hit, Scalar::from(on as f32)))
                } else {
                    let base = B::int_full(burn_shape(&shape), Scalar::from(off as i64), device, INT);
                    Prim::Int(B::int_mask_fill(base, hit, Scalar::from(on as i64)))
                };
                Ok(vec![BurnTensor::of(shape, dtype, p)])
            }
            Index::DepthToSpace { block: b, order } => {
                let [n, c, h, w] = x.shape[..] else { return Err("DepthToSpace of other than 4 axes".into()) };
                let b = *b;
                if c % (b * b) != 0 {
                    return Err(format!("{c} channels for blocksize {b}"));
                }
                let cc = c / (b * b);
                let (split, perm) = match order {
                    BlockOrder::Dcr => (vec![n, b, b, cc, h, w], [0, 3, 4, 1, 5, 2]),
                    BlockOrder::Crd => (vec![n, cc, b, b, h, w], [0, 1, 4, 2, 5, 3]),
                };
                let t = x.with_shape(split);
                let p = t.prim.clone().permute(&perm);
                let dims: Vec<usize> = perm.iter().map(|&i| t.shape[i]).collect();
                Ok(vec![BurnTensor::of(dims, x.dtype, p).with_shape(vec![n, cc, h * b, w * b])])
            }
            Index::SpaceToDepth { block: b, order } => {
                let [n, c, h, w] = x.shape[..] else { return Err("SpaceToDepth of other than 4 axes".into()) };
                let b = *b;
                if h % b != 0 || w % b != 0 {
                    return Err(format!("{h}x{w} for blocksize {b}"));
                }
                let t = x.with_shape(vec![n, c, h / b, b, w / b, b]);
                let perm = match order {
                    BlockOrder::Dcr => [0, 3, 5, 1, 2, 4],
                    BlockOrder::Crd => [0, 1, 3, 5, 2, 4],
                };
                let p = t.prim.clone().permute(&perm);
                let dims: Vec<usize> = perm.iter().map(|&i| t.shape[i]).collect();
                Ok(vec![BurnTensor::of(dims, x.dtype, p).with_shape(vec![n, c * b * b, h / b, w / b])])
            }
        }
    }
}
