//! Reductions (`reduce.wgsl`): the `Reduce*` operators, global pooling,
//! ArgMax / ArgMin; and the scans and selections along one axis of
//! `rowwise.wgsl`: CumSum / CumProd and TopK.

use super::*;
use crate::shape::{check_rank, contiguous, lines, norm_axis};
use crate::wgsl::{Params, wgsl_codes, wgsl_params};

wgsl_codes! {
    /// `OP` of `reduce`.
    pub(crate) mod reduce_op: REDUCE {
        SUM = 0, MEAN = 1, MAX = 2, MIN = 3, PROD = 4, SUM_SQUARE = 5, L1 = 6, L2 = 7, LOG_SUM = 8, LOG_SUM_EXP = 9,
    }
    /// `OP` of `arg_reduce`.
    pub(crate) mod arg_op: ARG { MAX = 0, MIN = 1 }
}

wgsl_params! {
    /// `reduce` and `arg_reduce`: `n` outputs, each over `red_n` inputs.
    /// An output's first input is at its coordinates in `keep_shape` (rank
    /// `rank`) times `in_strides`; the reduced ones add their coordinates in
    /// `red_shape` times `red_strides`. `select_last` (arg_reduce): ties
    /// pick the last index.
    pub(crate) struct ReduceParams {
        n: u32, rank: u32, red_n: u32, select_last: u32,
        keep_shape: [u32; 8], in_strides: [u32; 8], red_shape: [u32; 8], red_strides: [u32; 8],
    }
}

/// How a reduction runs.
#[derive(Debug)]
pub(crate) enum Plan {
    /// `reduce` over `axes` (input 1 when given, read on the host).
    Reduce { k: Kernel, axes: Option<Vec<i64>>, keepdims: bool, noop_with_empty_axes: bool },
    /// `reduce` over every spatial axis, kept.
    GlobalPool { k: Kernel },
    /// `arg_reduce` (ArgMin by its override).
    Arg { k: Kernel, axis: i64, keepdims: bool, select_last_index: bool },
    /// `cumulate` along the axis of input 1.
    Cumulate { k: Kernel, product: bool, exclusive: bool, reverse: bool },
    /// `top_k`, k from input 1: values and indices.
    TopK { k: Kernel, axis: i64, largest: bool },
}

/// Reduce op code of `reduce.wgsl` for a reduction operator.
fn reduce_code(r: &R) -> Option<u32> {
    Some(match r {
        R::ReduceSum { .. } => reduce_op::SUM,
        R::ReduceMean { .. } => reduce_op::MEAN,
        R::ReduceMax { .. } => reduce_op::MAX,
        R::ReduceMin { .. } => reduce_op::MIN,
        R::ReduceProd { .. } => reduce_op::PROD,
        R::ReduceSumSquare { .. } => reduce_op::SUM_SQUARE,
        R::ReduceL1 { .. } => reduce_op::L1,
        R::ReduceL2 { .. } => reduce_op::L2,
        R::ReduceLogSum { .. } => reduce_op::LOG_SUM,
        R::ReduceLogSumExp { .. } => reduce_op::LOG_SUM_EXP,
        _ => return None,
    })
}

/// Plan a reduction, ArgMax/ArgMin, CumSum/CumProd or TopK.
pub(super) fn plan(v: &NodeView, r: &R, k: &mut Kernels) -> std::result::Result<Plan, String> {
    if let (Some(code), Some(p)) = (reduce_code(r), r.reduce_params()) {
        // Integer and bool words: ReduceMax / ReduceMin, exact.
        let d = v.dev(0)?;
        if !is_float_word(d) && !matches!(code, reduce_op::MAX | reduce_op::MIN) {
            return Err(format!("input 0 is {d}; {} runs on floats only (integers: ReduceMax, ReduceMin)", r.name()));
        }
        v.host(1, "axes")?;
        return Ok(Plan::Reduce {
            k: k.get(Shader::Reduce, "reduce", &[("OP", code), ("DT", dt_code(d))]),
            axes: p.axes.map(<[i64]>::to_vec),
            keepdims: p.keepdims,
            noop_with_empty_axes: p.noop_with_empty_axes,
        });
    }
    match r {
        R::ArgMax { axis, keepdims, select_last_index } | R::ArgMin { axis, keepdims, select_last_index } => {
            v.float(0)?;
            let op = if matches!(r, R::ArgMin { .. }) { arg_op::MIN } else { arg_op::MAX };
            Ok(Plan::Arg {
                k: k.get(Shader::Reduce, "arg_reduce", &[("OP", op)]),
                axis: *axis,
                keepdims: *keepdims != 0,
                select_last_index: *select_last_index != 0,
            })
        }
        R::CumSum { exclusive, reverse } | R::CumProd { exclusive, reverse } => {
            let d = v.dev(0)?;
            if !is_f32_or_i32(dt_code(d)) || matches!(d, DType::I64 | DType::U64) {
                return Err(format!("{} on {d} (the GPU accumulates float32 or 32-bit integers)", r.name()));
            }
            v.host(1, "axis")?;
            Ok(Plan::Cumulate {
                k: k.get(Shader::Rowwise, "cumulate", &[("DT", dt_code(d))]),
                product: matches!(r, R::CumProd { .. }),
                exclusive: *exclusive != 0,
                reverse: *reverse != 0,
            })
        }
        R::TopK { axis, largest, .. } => {
            let d = v.dev(0)?;
            if !is_f32_or_i32(dt_code(d)) {
                return Err(format!("TopK on {d}"));
            }
            v.host(1, "k")?;
            let k = k.get(Shader::Rowwise, "top_k", &[("DT", dt_code(d))]);
            Ok(Plan::TopK { k, axis: *axis, largest: *largest != 0 })
        }
        other => not_implemented(other.name()),
    }
}

/// Plan GlobalAveragePool or GlobalMaxPool (a reduction over the spatial axes).
pub(super) fn plan_global_pool(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    v.float(0)?;
    let op = if matches!(o, NnOp::GlobalAveragePool {}) { reduce_op::MEAN } else { reduce_op::MAX };
    Ok(Plan::GlobalPool { k: k.get(Shader::Reduce, "reduce", &[("OP", op)]) })
}

impl Exec<'_> {
    pub(super) fn reduce_family(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let rank = x.shape.len();
        match plan {
            Plan::Reduce { k, axes, keepdims, noop_with_empty_axes } => {
                let ax = self.host_i64(1)?.or_else(|| axes.clone()).unwrap_or_default();
                let list: Vec<usize> = if ax.is_empty() {
                    if *noop_with_empty_axes {
                        return Ok(vec![x.clone()]);
                    }
                    (0..rank).collect()
                } else {
                    ax.iter().map(|&a| norm_axis(a, rank)).collect::<Result<_>>()?
                };
                Ok(vec![self.reduce(ctx, k, x, &list, *keepdims)?])
            }
            Plan::GlobalPool { k } => {
                let axes: Vec<usize> = (2..rank).collect();
                Ok(vec![self.reduce(ctx, k, x, &axes, true)?])
            }
            Plan::Arg { k, axis, keepdims, select_last_index } => {
                check_rank(&x.shape)?;
                let a = norm_axis(*axis, rank)?;
                if x.shape[a] == 0 {
                    return Err(GpuError::Shape("arg reduction over an empty axis".into()));
                }
                let cs = contiguous(&x.shape);
                let keep: Vec<usize> = (0..rank).map(|i| if i == a { 1 } else { x.shape[i] }).collect();
                let red: Vec<usize> = (0..rank).map(|i| if i == a { x.shape[i] } else { 1 }).collect();
                let shape: Vec<usize> =
                    if *keepdims { keep.clone() } else { (0..rank).filter(|&i| i != a).map(|i| x.shape[i]).collect() };
                let y = ctx.alloc(self.out_dtype(0)?, shape)?;
                let n = y.numel();
                let p = ReduceParams {
                    n,
                    rank,
                    red_n: x.shape[a],
                    select_last: usize::from(*select_last_index),
                    keep_shape: keep,
                    in_strides: cs.clone(),
                    red_shape: red,
                    red_strides: cs,
                };
                ctx.dispatch_n(k, &p.words()?, &y, &[x], n)?;
                Ok(vec![y])
            }
            Plan::Cumulate { k, product, exclusive, reverse } => {
                let a = self.host_i64(1)?.ok_or_else(|| GpuError::Shape("missing axis".into()))?;
                if a.len() != 1 || x.shape.is_empty() {
                    return Err(GpuError::Shape("axis must be a scalar and the input of rank >= 1".into()));
                }
                let (rows, l, inner) = lines(&x.shape, norm_axis(a[0], rank)?);
                let y = ctx.alloc(x.dtype, x.shape.clone())?;
                if inner > 0 {
                    let p = rowwise::CumulateParams {
                        lines: rows,
                        len: l,
                        inner,
                        product: usize::from(*product),
                        exclusive: usize::from(*exclusive),
                        reverse: usize::from(*reverse),
                    };
                    ctx.dispatch_n(k, &p.words()?, &y, &[x], rows)?;
                }
                Ok(vec![y])
            }
            Plan::TopK { k: kern, axis, largest } => {
                let k = match self.host_i64(1)? {
                    Some(k) if k.len() == 1 => k[0],
                    _ => return Err(GpuError::Shape("TopK needs a scalar k".into())),
                };
                let a = norm_axis(*axis, rank)?;
                let k = usize::try_from(k).ok().filter(|&k| k <= x.shape[a]).ok_or_else(|| {
                    GpuError::Shape(format!("k = {k} is out of range for axis length {}", x.shape[a]))
                })?;
                let (rows, l, inner) = lines(&x.shape, a);
                let mut shape = x.shape.clone();
                shape[a] = k;
                let vals = ctx.alloc(x.dtype, shape.clone())?;
                let idx = ctx.alloc(self.out_dtype(1)?, shape)?;
                if inner > 0 && k > 0 {
                    let p = rowwise::TopKParams { lines: rows, len: l, inner, k, largest: usize::from(*largest) };
                    ctx.dispatch_n(kern, &p.words()?, &vals, &[x, &idx], rows)?;
                }
                Ok(vec![vals, idx])
            }
        }
    }

    /// `reduce` of `x` over `axes`.
    fn reduce(&self, ctx: &mut Ctx, k: &Kernel, x: &GpuTensor, axes: &[usize], keepdims: bool) -> Result<GpuTensor> {
        check_rank(&x.shape)?;
        let r = x.shape.len();
        let cs = contiguous(&x.shape);
        let keep: Vec<usize> = (0..r).map(|i| if axes.contains(&i) { 1 } else { x.shape[i] }).collect();
        let red: Vec<usize> = (0..r).map(|i| if axes.contains(&i) { x.shape[i] } else { 1 }).collect();
        let red_n: usize = red.iter().product();
        // An empty integer max/min is the type's extreme, which int64's i32 words cannot hold.
        if red_n == 0 && !is_float_word(x.dtype) && x.dtype != DType::Bool {
            return Err(GpuError::Unsupported(format!("an empty {} reduction", x.dtype)));
        }
        let shape: Vec<usize> =
            if keepdims { keep.clone() } else { (0..r).filter(|i| !axes.contains(i)).map(|i| x.shape[i]).collect() };
        let y = ctx.alloc(if is_float_word(x.dtype) { DType::F32 } else { x.dtype }, shape)?;
        let n = y.numel();
        let p = ReduceParams {
            n,
            rank: r,
            red_n,
            select_last: 0,
            keep_shape: keep,
            in_strides: cs.clone(),
            red_shape: red,
            red_strides: cs,
        };
        ctx.dispatch_n(k, &p.words()?, &y, &[x], n)?;
        Ok(y)
    }
}
