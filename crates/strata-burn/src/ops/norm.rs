//! Normalisations over trailing or spatial axes, from burn's mean, sqrt
//! and broadcast arithmetic: LayerNormalization (with its optional Mean and
//! InvStdDev outputs), RMSNormalization, InstanceNormalization,
//! GroupNormalization and LpNormalization (p = 1, 2).

use burn_backend::tensor::FloatTensor;
use burn_backend::{Backend, Scalar};
use strata_ir::ops::NnOp as N;

use super::{NodeInfo, Out, Unsupported, axis, broadcast, expand_to, input, numel};
use crate::tensor::BurnTensor;

/// A compiled normalisation node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Norm {
    /// Layer (`rms`: no centring) normalisation over axes `axis..`.
    Layer {
        axis: i64,
        epsilon: f32,
        rms: bool,
    },
    Instance {
        epsilon: f32,
    },
    Group {
        epsilon: f32,
        groups: usize,
    },
    Lp {
        axis: i64,
        p: i64,
    },
}

/// Plan the operators of this module (`None`: not one of them).
pub(crate) fn plan(op: &N, info: &NodeInfo) -> Option<Result<Norm, Unsupported>> {
    let k = match op {
        N::LayerNormalization { axis, epsilon, .. } => Norm::Layer { axis: *axis, epsilon: *epsilon, rms: false },
        N::RMSNormalization { axis, epsilon, .. } => Norm::Layer { axis: *axis, epsilon: *epsilon, rms: true },
        N::InstanceNormalization { epsilon } => Norm::Instance { epsilon: *epsilon },
        N::GroupNormalization { epsilon, num_groups, .. } => match usize::try_from(*num_groups) {
            Ok(g) if g > 0 => Norm::Group { epsilon: *epsilon, groups: g },
            _ => return Some(Err("num_groups must be positive".into())),
        },
        N::LpNormalization { axis, p } if matches!(p, 1 | 2) => Norm::Lp { axis: *axis, p: *p },
        N::LpNormalization { p, .. } => return Some(Err(format!("LpNormalization with p={p}"))),
        _ => return None,
    };
    Some(info.require_f32(&[]).map(|()| k))
}

/// Mean over `dims` of `p` (burn shape `shape`), the dims kept.
fn mean_over<B: Backend>(mut p: FloatTensor<B>, dims: &[usize]) -> FloatTensor<B> {
    for &d in dims {
        p = B::float_mean_dim(p, d);
    }
    p
}

/// `v` (kept-dims shape `kept`) broadcast back over `shape`.
fn back<B: Backend>(v: FloatTensor<B>, kept: &[usize], shape: &[usize]) -> FloatTensor<B> {
    expand_to(&BurnTensor::<B>::new(kept.to_vec(), v), shape)
}

/// Normalise `x` (burn shape `shape`) over `dims`: returns (y, mean, inv std),
/// the last two with `dims` kept as 1.
fn normalise<B: Backend>(
    x: FloatTensor<B>,
    shape: &[usize],
    dims: &[usize],
    epsilon: f32,
    centre: bool,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let kept: Vec<usize> = (0..shape.len()).map(|i| if dims.contains(&i) { 1 } else { shape[i] }).collect();
    let mean = mean_over::<B>(x.clone(), dims);
    let centred = if centre { B::float_sub(x, back::<B>(mean.clone(), &kept, shape)) } else { x };
    let var = mean_over::<B>(B::float_mul(centred.clone(), centred.clone()), dims);
    let inv = B::float_recip(B::float_sqrt(B::float_add_scalar(var, Scalar::from(epsilon))));
    let y = B::float_mul(centred, back::<B>(inv.clone(), &kept, shape));
    (y, mean, inv)
}

/// A per-channel vector ([C]) broadcast over `shape` ([N, C, ...]).
fn per_channel<B: Backend>(v: &BurnTensor<B>, shape: &[usize]) -> Result<FloatTensor<B>, String> {
    if shape.len() < 2 || v.shape != [shape[1]] {
        return Err(format!("per-channel operand of shape {:?} does not fit input {shape:?}", v.shape));
    }
    let mut s = vec![1; shape.len()];
    s[1] = shape[1];
    Ok(expand_to(&BurnTensor::<B>::new(s.clone(), v.reshaped(&s)), shape))
}

impl Norm {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>]) -> Out<B> {
        let x = input(ins, 0)?;
        let s = x.shape.clone();
        let r = s.len();
        if numel(&s)? == 0 {
            return Err("normalisation of an empty tensor".into());
        }
        match self {
            Norm::Layer { axis: a, epsilon, rms } => {
                let a = axis(*a, r)?;
                let dims: Vec<usize> = (a..r).collect();
                let (mut y, mean, inv) = normalise::<B>(x.f()?, &s, &dims, *epsilon, !rms);
                for i in [1, 2] {
                    if let Some(t) = ins.get(i).copied().flatten() {
                        if broadcast(&t.shape, &s)? != s {
                            return Err(format!("operand of shape {:?} does not broadcast to {s:?}", t.shape));
                        }
                        let v = expand_to(t, &s);
                        y = if i == 1 { B::float_mul(y, v) } else { B::float_add(y, v) };
                    }
                }
                let kept: Vec<usize> = (0..r).map(|i| if i >= a { 1 } else { s[i] }).collect();
                Ok(vec![BurnTensor::new(s.clone(), y), BurnTensor::new(kept.clone(), mean), BurnTensor::new(kept, inv)])
            }
            Norm::Instance { epsilon } => {
                if r < 3 {
                    return Err(format!("InstanceNormalization of shape {s:?}"));
                }
                let dims: Vec<usize> = (2..r).collect();
                let (y, _, _) = normalise::<B>(x.f()?, &s, &dims, *epsilon, true);
                let y = B::float_mul(y, per_channel(input(ins, 1)?, &s)?);
                Ok(vec![BurnTensor::new(s.clone(), B::float_add(y, per_channel(input(ins, 2)?, &s)?))])
            }
            Norm::Group { epsilon, groups } => {
                if r < 2 || s[1] % groups != 0 {
                    return Err(format!("{groups} groups for input {s:?}"));
                }
                let mut g = vec![s[0], *groups, s[1] / groups];
                g.extend_from_slice(&s[2..]);
                let dims: Vec<usize> = (2..g.len()).collect();
                let (y, _, _) = normalise::<B>(x.reshaped(&g), &g, &dims, *epsilon, true);
                let y = BurnTensor::<B>::new(g, y).reshaped(&s);
                let y = B::float_mul(y, per_channel(input(ins, 1)?, &s)?);
                Ok(vec![BurnTensor::new(s.clone(), B::float_add(y, per_channel(input(ins, 2)?, &s)?))])
            }
            Norm::Lp { axis: a, p } => {
                let a = axis(*a, r)?;
                let v = x.f()?;
                let n = if *p == 1 {
                    B::float_sum_dim(B::float_abs(v.clone()), a)
                } else {
                    B::float_sqrt(B::float_sum_dim(B::float_mul(v.clone(), v.clone()), a))
                };
                // A zero norm divides a zero vector: by 1, giving zeros.
                let zero = B::float_equal_elem(n.clone(), Scalar::from(0.0f32), crate::tensor::BOOL);
                let n = B::float_mask_fill(n, zero, Scalar::from(1.0f32));
                let mut kept = s.clone();
                kept[a] = 1;
                Ok(vec![BurnTensor::new(s.clone(), B::float_div(v, back::<B>(n, &kept, &s)))])
            }
        }
    }
}
