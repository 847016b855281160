//! Normalisations along axes: BatchNormalization, LayerNormalization,
//! RMSNormalization, InstanceNormalization, GroupNormalization, LRN,
//! Softmax / LogSoftmax (`norm.wgsl`), LpNormalization and Hardmax
//! (`rowwise.wgsl`).

use super::*;
use crate::shape::{lines, norm_axis};
use crate::wgsl::{Params, wgsl_codes, wgsl_params};

wgsl_codes! {
    /// `MODE` of `softmax`.
    pub(crate) mod softmax_mode: SOFTMAX { EXP = 0, LOG = 1 }
    /// `MODE` of `layer_norm` and `row_stats`.
    pub(crate) mod layer_mode: LAYER { LAYER_NORM = 0, RMS_NORM = 1 }
}

wgsl_params! {
    /// `softmax`: `rows` rows of `row_len` elements, `inner` apart.
    pub(crate) struct SoftmaxParams { rows: u32, row_len: u32, inner: u32 }
    /// `layer_norm` and `row_stats` over `rows` contiguous rows of `row_len`;
    /// `stat` (row_stats): 0 the row mean, 1 the inverse standard deviation.
    /// Scale and bias are indexed by the position in the row when `groups`
    /// is 0 (LayerNormalization), else element `j` of row `r` reads
    /// `((r % groups) * row_len + j) / per` (instance and group norms:
    /// `groups` rows per batch entry, `per` elements per scale value).
    pub(crate) struct LayerNormParams { rows: u32, row_len: u32, eps: f32, has_bias: u32, stat: u32, groups: u32, per: u32 }
    /// `batch_norm` (inference) of `n` elements, `channels` channels of `inner` each.
    pub(crate) struct BatchNormParams { n: u32, channels: u32, inner: u32, eps: f32 }
    /// `lrn` of `n` elements, `channels` channels of `inner` each; the window
    /// spans `before` channels below and `after` above.
    pub(crate) struct LrnParams { n: u32, channels: u32, inner: u32, before: u32, after: u32, alpha_over_size: f32, beta: f32, bias: f32 }
}

/// How a normalisation runs.
#[derive(Debug)]
pub(crate) enum Plan {
    /// `batch_norm` (inference: running mean and variance).
    Batch { k: Kernel, epsilon: f32 },
    /// `layer_norm` (RMS by its override); `stats` computes the optional
    /// Mean and InvStdDev outputs.
    Layer { k: Kernel, stats: Kernel, axis: i64, epsilon: f32 },
    /// `softmax` (log-softmax by its override); `legacy`: the opset < 13
    /// form over all axes from `axis` on.
    Softmax { k: Kernel, axis: i64, legacy: bool },
    /// `hardmax`; `legacy` as for softmax.
    Hardmax { k: Kernel, axis: i64, legacy: bool },
    /// `lp_norm` with p = 1 or 2.
    Lp { k: Kernel, axis: i64, p: i64 },
    /// `layer_norm` over each channel (`groups` None: InstanceNormalization)
    /// or each group of channels (GroupNormalization).
    Grouped { k: Kernel, groups: Option<usize>, epsilon: f32 },
    /// `lrn`.
    Lrn { k: Kernel, size: usize, alpha: f32, beta: f32, bias: f32 },
}

/// Plan BatchNormalization, LayerNormalization, RMSNormalization or LpNormalization.
pub(super) fn plan(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match o {
        NnOp::BatchNormalization { training_mode, epsilon, .. } => {
            if *training_mode != 0 {
                return Err("BatchNormalization in training mode".into());
            }
            v.only_first_output()?;
            for i in 0..5 {
                v.float(i)?;
            }
            Ok(Plan::Batch { k: k.get(Shader::Norm, "batch_norm", &[]), epsilon: *epsilon })
        }
        NnOp::LayerNormalization { axis, epsilon, .. } | NnOp::RMSNormalization { axis, epsilon, .. } => {
            v.float(0)?;
            v.float(1)?;
            if v.input(2).is_some() {
                v.float(2)?;
            }
            let rms =
                if matches!(o, NnOp::RMSNormalization { .. }) { layer_mode::RMS_NORM } else { layer_mode::LAYER_NORM };
            Ok(Plan::Layer {
                k: k.get(Shader::Norm, "layer_norm", &[("MODE", rms)]),
                stats: k.get(Shader::Norm, "row_stats", &[("MODE", rms)]),
                axis: *axis,
                epsilon: *epsilon,
            })
        }
        NnOp::InstanceNormalization { epsilon } | NnOp::GroupNormalization { epsilon, .. } => {
            for i in 0..3 {
                v.float(i)?;
            }
            let groups = match o {
                NnOp::GroupNormalization { num_groups, stash_type, .. } => {
                    if *stash_type != 1 {
                        return Err(format!(
                            "GroupNormalization stash_type {stash_type} (the GPU computes in float32)"
                        ));
                    }
                    Some(usize::try_from(*num_groups).ok().filter(|g| *g > 0).ok_or("num_groups must be positive")?)
                }
                _ => None,
            };
            let k = k.get(Shader::Norm, "layer_norm", &[("MODE", layer_mode::LAYER_NORM)]);
            Ok(Plan::Grouped { k, groups, epsilon: *epsilon })
        }
        NnOp::LRN { alpha, beta, bias, size } => {
            v.float(0)?;
            let size = usize::try_from(*size).ok().filter(|s| *s > 0).ok_or("LRN size must be positive")?;
            Ok(Plan::Lrn { k: k.get(Shader::Norm, "lrn", &[]), size, alpha: *alpha, beta: *beta, bias: *bias })
        }
        NnOp::LpNormalization { axis, p } => {
            v.float(0)?;
            if !matches!(p, 1 | 2) {
                return Err(format!("LpNormalization p = {p}"));
            }
            Ok(Plan::Lp { k: k.get(Shader::Rowwise, "lp_norm", &[]), axis: *axis, p: *p })
        }
        other => not_implemented(other.name()),
    }
}

/// Plan Softmax, LogSoftmax or Hardmax (float input).
pub(super) fn plan_rowwise(v: &NodeView, r: &R, k: &mut Kernels) -> std::result::Result<Plan, String> {
    v.float(0)?;
    let softmax = |k: &mut Kernels, mode: u32| k.get(Shader::Norm, "softmax", &[("MODE", mode)]);
    match r {
        R::Softmax { axis } => Ok(Plan::Softmax { k: softmax(k, softmax_mode::EXP), axis: *axis, legacy: false }),
        R::SoftmaxLegacy { axis } => Ok(Plan::Softmax { k: softmax(k, softmax_mode::EXP), axis: *axis, legacy: true }),
        R::LogSoftmax { axis } => Ok(Plan::Softmax { k: softmax(k, softmax_mode::LOG), axis: *axis, legacy: false }),
        R::LogSoftmaxLegacy { axis } => {
            Ok(Plan::Softmax { k: softmax(k, softmax_mode::LOG), axis: *axis, legacy: true })
        }
        R::Hardmax { axis } => {
            Ok(Plan::Hardmax { k: k.get(Shader::Rowwise, "hardmax", &[]), axis: *axis, legacy: false })
        }
        R::HardmaxLegacy { axis } => {
            Ok(Plan::Hardmax { k: k.get(Shader::Rowwise, "hardmax", &[]), axis: *axis, legacy: true })
        }
        other => not_implemented(other.name()),
    }
}

impl Exec<'_> {
    pub(super) fn norm(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::Batch { k, epsilon } => {
                let x = self.input(0)?;
                if x.shape.len() < 2 {
                    return Err(GpuError::Shape("BatchNormalization input of rank < 2".into()));
                }
                let c = x.shape[1];
                let ps: Vec<&GpuTensor> = (1..5).map(|i| self.input(i)).collect::<Result<_>>()?;
                if ps.iter().any(|t| t.numel() != c) {
                    return Err(GpuError::Shape(format!("BatchNormalization parameters must have {c} elements")));
                }
                let inner: usize = x.shape[2..].iter().product();
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                let n = y.numel();
                let p = BatchNormParams { n, channels: c, inner: inner.max(1), eps: *epsilon };
                ctx.dispatch_n(k, &p.words()?, &y, &[x, ps[0], ps[1], ps[2], ps[3]], n)?;
                Ok(vec![y])
            }
            Plan::Layer { k, stats, axis, epsilon } => {
                let x = self.input(0)?;
                let a = norm_axis(*axis, x.shape.len())?;
                let l: usize = x.shape[a..].iter().product();
                let rows: usize = x.shape[..a].iter().product();
                let s = self.input(1)?;
                let b = self.opt_input(2);
                if s.numel() != l || b.is_some_and(|b| b.numel() != l) {
                    return Err(GpuError::Unsupported("normalisation with broadcast scale or bias".into()));
                }
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                let p = LayerNormParams {
                    rows,
                    row_len: l,
                    eps: *epsilon,
                    has_bias: usize::from(b.is_some()),
                    stat: 0,
                    groups: 0,
                    per: 1,
                };
                if l > 0 {
                    ctx.dispatch_n(k, &p.words()?, &y, &[x, s, b.unwrap_or(s)], rows)?;
                }
                let mut outs = vec![y];
                // Optional Mean and InvStdDev outputs: shape [d0..d(axis-1), 1, ..., 1].
                for o in 1..self.n.outputs.len() {
                    let mut shape = x.shape[..a].to_vec();
                    shape.resize(x.shape.len(), 1);
                    let st = ctx.alloc(DType::F32, shape)?;
                    if self.wants(o) && l > 0 {
                        let p2 = LayerNormParams { stat: usize::from(o == 2), ..p.clone() };
                        ctx.dispatch_n(stats, &p2.words()?, &st, &[x], rows)?;
                    }
                    outs.push(st);
                }
                Ok(outs)
            }
            Plan::Softmax { k, axis, legacy } => {
                let x = self.input(0)?;
                let rank = x.shape.len();
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                if rank == 0 {
                    return Err(GpuError::Shape("softmax of a scalar".into()));
                }
                let a = norm_axis(*axis, rank)?;
                let (l, inner) = if *legacy {
                    (x.shape[a..].iter().product::<usize>(), 1usize)
                } else {
                    (x.shape[a], x.shape[a + 1..].iter().product::<usize>())
                };
                if l == 0 || inner == 0 {
                    return Ok(vec![y]);
                }
                let rows = x.numel() / l;
                ctx.dispatch_n(k, &SoftmaxParams { rows, row_len: l, inner }.words()?, &y, &[x], rows)?;
                Ok(vec![y])
            }
            Plan::Hardmax { k, axis, legacy } => {
                let x = self.input(0)?;
                let rank = x.shape.len();
                let (rows, l, inner) = if *legacy {
                    let r = rank as i64;
                    let a = if *axis < 0 { axis + r } else { *axis };
                    if !(0..=r).contains(&a) {
                        return Err(GpuError::Shape(format!("axis {axis} out of range for rank {rank}")));
                    }
                    let a = a as usize;
                    (x.shape[..a].iter().product(), x.shape[a..].iter().product(), 1)
                } else {
                    lines(&x.shape, norm_axis(*axis, rank)?)
                };
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                if inner > 0 {
                    ctx.dispatch_n(k, &rowwise::HardmaxParams { lines: rows, len: l, inner }.words()?, &y, &[x], rows)?;
                }
                Ok(vec![y])
            }
            Plan::Grouped { k, groups, epsilon } => {
                let x = self.input(0)?;
                if x.shape.len() < 2 {
                    return Err(GpuError::Shape("normalisation input of rank < 2".into()));
                }
                let (n, c) = (x.shape[0], x.shape[1]);
                let spatial: usize = x.shape[2..].iter().product();
                let g = groups.unwrap_or(c);
                if c % g != 0 {
                    return Err(GpuError::Shape(format!("num_groups {g} does not divide the {c} channels")));
                }
                let (s, b) = (self.input(1)?, self.input(2)?);
                // Scale and bias per channel, or (GroupNormalization-18) per group.
                let per = match s.numel() {
                    k if k == c => spatial,
                    k if k == g => (c / g) * spatial,
                    k => return Err(GpuError::Shape(format!("scale has {k} elements for {c} channels in {g} groups"))),
                };
                if b.numel() != s.numel() {
                    return Err(GpuError::Shape(format!("bias has {} elements, scale {}", b.numel(), s.numel())));
                }
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                let (rows, row_len) = (n * g, (c / g) * spatial);
                if row_len > 0 {
                    let p = LayerNormParams {
                        rows,
                        row_len,
                        eps: *epsilon,
                        has_bias: 1,
                        stat: 0,
                        groups: g,
                        per: per.max(1),
                    };
                    ctx.dispatch_n(k, &p.words()?, &y, &[x, s, b], rows)?;
                }
                Ok(vec![y])
            }
            Plan::Lrn { k, size, alpha, beta, bias } => {
                let x = self.input(0)?;
                if x.shape.len() < 2 {
                    return Err(GpuError::Shape("LRN input of rank < 2".into()));
                }
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                let n = y.numel();
                if n > 0 {
                    let p = LrnParams {
                        n,
                        channels: x.shape[1],
                        inner: x.shape[2..].iter().product(),
                        before: (size - 1) / 2,
                        after: size / 2,
                        alpha_over_size: alpha / *size as f32,
                        beta: *beta,
                        bias: *bias,
                    };
                    ctx.dispatch_n(k, &p.words()?, &y, &[x], n)?;
                }
                Ok(vec![y])
            }
            Plan::Lp { k, axis, p } => {
                let x = self.input(0)?;
                let (rows, l, inner) = lines(&x.shape, norm_axis(*axis, x.shape.len())?);
                let y = ctx.alloc(DType::F32, x.shape.clone())?;
                if inner > 0 {
                    let p = rowwise::LpNormParams { lines: rows, len: l, inner, p: if *p == 1 { 1 } else { 2 } };
                    ctx.dispatch_n(k, &p.words()?, &y, &[x], rows)?;
                }
                Ok(vec![y])
            }
        }
    }
}
