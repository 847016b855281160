//! `ScatterElements`, `ScatterND` (with reductions) and `OneHot` on the GPU
//! (`scatter.wgsl`). The scatters copy the data into the output first
//! (`copy_strided`) and then apply the updates; `TensorScatter` writes an
//! update into a KV cache the same way.

use super::*;
use crate::kernels::MAX_RANK;
use crate::shape::{check_rank, contiguous, norm_axis};
use crate::wgsl::{wgsl_codes, wgsl_params};
use strata_ir::ops::tensor::ScatterReduction;

wgsl_params! {
    /// `scatter_elements`: one invocation per index line along `axis`
    /// (`line_shape` is the indices' shape with the axis set to 1).
    pub(crate) struct ScatterElementsParams {
        lines: u32, rank: u32, axis: u32, idx_axis_len: u32, data_axis_len: u32,
        line_shape: [u32; 8], out_strides: [u32; 8], idx_strides: [u32; 8],
    }
    /// `scatter_nd`: one invocation per element of a slice; index tuples of
    /// `k` address the first `k` axes of the data.
    pub(crate) struct ScatterNdParams { slice: u32, tuples: u32, k: u32, data_shape: [u32; 8], data_strides: [u32; 8] }
    /// `one_hot`: `depth` classes inserted before `inner` elements; the
    /// indices are f32 when `float_indices` is 1.
    pub(crate) struct OneHotParams { n: u32, depth: u32, inner: u32, float_indices: u32 }
    /// `tensor_scatter`: one invocation per update element.
    pub(crate) struct TensorScatterParams {
        n: u32, rank: u32, axis: u32, max_len: u32, circular: u32, has_write_indices: u32,
        /// Update elements per batch entry (the batch axis is axis 0).
        per_batch: u32,
        upd_shape: [u32; 8], out_strides: [u32; 8],
    }
}

wgsl_codes! {
    /// `scatter.wgsl`'s `RED` override: how an update combines with the
    /// element it hits.
    pub(crate) mod reduction: RED { NONE = 0, ADD = 1, MUL = 2, MAX = 3, MIN = 4 }
}

/// How a scatter node runs: `copy` the data into the output, then `k`.
#[derive(Debug)]
pub(crate) enum Plan {
    /// `ScatterElements` and the legacy `Scatter`.
    Elements {
        copy: Kernel,
        k: Kernel,
        axis: i64,
    },
    Nd {
        copy: Kernel,
        k: Kernel,
    },
    TensorScatter {
        copy: Kernel,
        k: Kernel,
        axis: i64,
        circular: bool,
    },
    OneHot {
        k: Kernel,
        axis: i64,
    },
}

/// Plan a scatter or `OneHot`.
pub(super) fn plan(v: &NodeView, t: &T, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match t {
        T::ScatterElements { reduction, axis } => {
            let (copy, kern) = scatter(v, *reduction, "scatter_elements", k)?;
            Ok(Plan::Elements { copy, k: kern, axis: *axis })
        }
        T::Scatter { axis } => {
            let (copy, kern) = scatter(v, ScatterReduction::None, "scatter_elements", k)?;
            Ok(Plan::Elements { copy, k: kern, axis: *axis })
        }
        T::ScatterND { reduction } => {
            let (copy, kern) = scatter(v, *reduction, "scatter_nd", k)?;
            Ok(Plan::Nd { copy, k: kern })
        }
        T::TensorScatter { mode, axis } => {
            let d = v.dev(0)?;
            if v.dev(1)? != d {
                return Err("update and cache differ in type".into());
            }
            if v.input(2).is_some() {
                v.int(2, "write_indices")?;
            }
            let circular = *mode == strata_ir::ops::tensor::CacheMode::Circular;
            let (copy, kern) = (k.copy(), k.get(Shader::Scatter, "tensor_scatter", &[]));
            Ok(Plan::TensorScatter { copy, k: kern, axis: *axis, circular })
        }
        T::OneHot { axis } => {
            let d = v.dev(0)?;
            if !is_f32_or_i32(dt_code(d)) {
                return Err(format!("OneHot indices of type {d}"));
            }
            v.host(1, "depth")?;
            v.dev(2)?;
            Ok(Plan::OneHot { k: k.get(Shader::Scatter, "one_hot", &[]), axis: *axis })
        }
        other => not_implemented(other.name()),
    }
}

/// ScatterElements / ScatterND: data and updates of one type, int indices.
fn scatter(
    v: &NodeView,
    reduction: ScatterReduction,
    entry: &'static str,
    k: &mut Kernels,
) -> std::result::Result<(Kernel, Kernel), String> {
    let d = v.dev(0)?;
    if v.dev(2)? != d {
        return Err("updates and data differ in type".into());
    }
    v.int(1, "indices")?;
    let red = reduction_code(reduction);
    let dt = dt_code(d);
    if red != reduction::NONE && (!is_f32_or_i32(dt) || matches!(d, DType::I64 | DType::U64)) {
        return Err(format!("scatter reduction '{reduction}' on {d}"));
    }
    Ok((k.copy(), k.get(Shader::Scatter, entry, &[("DT", dt), ("RED", red)])))
}

/// `RED` override of `scatter.wgsl` for a reduction attribute.
fn reduction_code(r: ScatterReduction) -> u32 {
    match r {
        ScatterReduction::None => reduction::NONE,
        ScatterReduction::Add => reduction::ADD,
        ScatterReduction::Mul => reduction::MUL,
        ScatterReduction::Max => reduction::MAX,
        ScatterReduction::Min => reduction::MIN,
    }
}

impl Exec<'_> {
    pub(super) fn scatter(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::Elements { copy, k, axis } => self.scatter_elements(ctx, copy, k, *axis),
            Plan::Nd { copy, k } => self.scatter_nd(ctx, copy, k),
            Plan::TensorScatter { copy, k, axis, circular } => self.tensor_scatter(ctx, copy, k, *axis, *circular),
            Plan::OneHot { k, axis } => self.one_hot(ctx, k, *axis),
        }
    }

    /// A contiguous copy of input 0 (the data to scatter into).
    fn scatter_base(&self, ctx: &mut Ctx, copy: &Kernel) -> Result<GpuTensor> {
        let x = self.input(0)?;
        let y = ctx.alloc(x.dtype, x.shape.clone())?;
        let cs = contiguous(&x.shape);
        let is: Vec<i64> = cs.iter().map(|&s| s as i64).collect();
        if x.numel() > 0 {
            self.copy(ctx, copy, &y, x, &x.shape, 0, &is, 0, &cs)?;
        }
        Ok(y)
    }

    /// `ScatterElements` (and the legacy `Scatter`).
    fn scatter_elements(&self, ctx: &mut Ctx, copy: &Kernel, k: &Kernel, axis: i64) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let (ind, upd) = (self.input(1)?, self.input(2)?);
        let r = x.shape.len();
        check_rank(&x.shape)?;
        let a = norm_axis(axis, r)?;
        if ind.shape.len() != r || upd.shape != ind.shape {
            return Err(GpuError::Shape(format!(
                "indices {:?} and updates {:?} must have the data's rank and agree",
                ind.shape, upd.shape
            )));
        }
        if (0..r).any(|k| k != a && ind.shape[k] > x.shape[k]) {
            return Err(GpuError::Shape(format!("indices {:?} exceed data {:?}", ind.shape, x.shape)));
        }
        if x.shape[a] == 0 && ind.numel() > 0 {
            return Err(GpuError::Shape("scatter into an empty axis".into()));
        }
        self.check_indices(1, x.shape[a])?;
        let y = self.scatter_base(ctx, copy)?;
        let mut lines_shape = ind.shape.clone();
        lines_shape[a] = 1;
        let lines: usize = lines_shape.iter().product();
        if ind.numel() > 0 {
            let p = ScatterElementsParams {
                lines,
                rank: r,
                axis: a,
                idx_axis_len: ind.shape[a],
                data_axis_len: x.shape[a],
                line_shape: lines_shape,
                out_strides: contiguous(&x.shape),
                idx_strides: contiguous(&ind.shape),
            };
            ctx.dispatch_n(k, &p.words()?, &y, &[ind, upd], lines)?;
        }
        Ok(vec![y])
    }

    /// `ScatterND`.
    fn scatter_nd(&self, ctx: &mut Ctx, copy: &Kernel, kern: &Kernel) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let (ind, upd) = (self.input(1)?, self.input(2)?);
        let q = ind.shape.len();
        if q == 0 {
            return Err(GpuError::Shape("ScatterND indices must have rank >= 1".into()));
        }
        let k = ind.shape[q - 1];
        if k > x.shape.len() || k > MAX_RANK {
            return Err(GpuError::Shape(format!("index tuples of {k} for data of rank {}", x.shape.len())));
        }
        let mut want = ind.shape[..q - 1].to_vec();
        want.extend_from_slice(&x.shape[k..]);
        if upd.shape != want {
            return Err(GpuError::Shape(format!("updates {:?} should be {want:?}", upd.shape)));
        }
        if x.shape[..k].contains(&0) && ind.numel() > 0 {
            return Err(GpuError::Shape("scatter into an empty axis".into()));
        }
        if let Some(h) = self.host(1) {
            let v = h.to_i64_vec();
            for (i, &ix) in v.iter().enumerate() {
                let d = x.shape[i % k.max(1)] as i64;
                if ix < -d || ix >= d {
                    return Err(GpuError::Shape(format!("index {ix} out of range for dimension {d}")));
                }
            }
        }
        let y = self.scatter_base(ctx, copy)?;
        let slice: usize = x.shape[k..].iter().product();
        let tuples: usize = ind.shape[..q - 1].iter().product();
        if slice > 0 && tuples > 0 {
            let p = ScatterNdParams {
                slice,
                tuples,
                k,
                data_shape: x.shape[..k].to_vec(),
                data_strides: contiguous(&x.shape)[..k].to_vec(),
            };
            ctx.dispatch_n(kern, &p.words()?, &y, &[ind, upd], slice)?;
        }
        Ok(vec![y])
    }

    /// Index input `i`, when known on the host, must lie in `[-dim, dim)`.
    fn check_indices(&self, i: usize, dim: usize) -> Result<()> {
        if let Some(h) = self.host(i) {
            let d = dim as i64;
            if let Some(bad) = h.to_i64_vec().into_iter().find(|&ix| ix < -d || ix >= d) {
                return Err(GpuError::Shape(format!("index {bad} out of range for dimension {d}")));
            }
        }
        Ok(())
    }

    /// `OneHot` (depth read on the host, values on the device).
    fn one_hot(&self, ctx: &mut Ctx, k: &Kernel, axis: i64) -> Result<Vec<GpuTensor>> {
        let ind = self.input(0)?;
        let depth = match self.host(1) {
            Some(t) if t.numel() == 1 => t.to_f64_vec()[0],
            _ => return Err(GpuError::Shape("OneHot depth must be a scalar known on the host".into())),
        };
        if !(depth >= 1.0 && depth <= i32::MAX as f64) {
            return Err(GpuError::Shape(format!("invalid OneHot depth {depth}")));
        }
        let depth = depth as usize;
        let vals = self.input(2)?;
        if vals.numel() != 2 {
            return Err(GpuError::Shape("OneHot values must hold two elements".into()));
        }
        let r = ind.shape.len() as i64;
        if axis < -r - 1 || axis > r {
            return Err(GpuError::Shape(format!("OneHot axis {axis} out of range")));
        }
        let a = if axis < 0 { axis + r + 1 } else { axis } as usize;
        let mut shape = ind.shape.clone();
        shape.insert(a, depth);
        let inner: usize = ind.shape[a..].iter().product();
        let y = ctx.alloc(vals.dtype, shape)?;
        let n = y.numel();
        let p = OneHotParams { n, depth, inner: inner.max(1), float_indices: usize::from(is_float_word(ind.dtype)) };
        ctx.dispatch_n(k, &p.words()?, &y, &[ind, vals], n)?;
        Ok(vec![y])
    }
}

impl Exec<'_> {
    /// `TensorScatter`: inputs past cache, update, optional write indices.
    fn tensor_scatter(
        &self,
        ctx: &mut Ctx,
        copy: &Kernel,
        k: &Kernel,
        axis: i64,
        circular: bool,
    ) -> Result<Vec<GpuTensor>> {
        let (past, upd) = (self.input(0)?, self.input(1)?);
        let wi = self.opt_input(2);
        let r = past.shape.len();
        check_rank(&past.shape)?;
        let a = norm_axis(axis, r)?;
        if a == 0 {
            return Err(GpuError::Shape("TensorScatter axis must not be the batch axis".into()));
        }
        if upd.shape.len() != r
            || (0..r).any(|k| (k != a && upd.shape[k] != past.shape[k]) || upd.shape[k] > past.shape[k])
        {
            return Err(GpuError::Shape(format!("update {:?} does not fit cache {:?}", upd.shape, past.shape)));
        }
        let (max_len, len, batch) = (past.shape[a], upd.shape[a], past.shape[0]);
        if wi.is_some_and(|w| w.numel() != batch) {
            return Err(GpuError::Shape(format!("write_indices must have {batch} entries")));
        }
        if let Some(h) = self.host(2)
            && h.to_i64_vec().iter().any(|&w| {
                w < 0
                    || (!circular && w as u64 + len as u64 > max_len as u64)
                    || (circular && w as u64 >= max_len as u64)
            })
        {
            return Err(GpuError::Shape("write index out of range of the cache".into()));
        }
        let y = self.scatter_base(ctx, copy)?;
        let n = upd.numel();
        if n > 0 {
            let p = TensorScatterParams {
                n,
                rank: r,
                axis: a,
                max_len,
                circular: usize::from(circular),
                has_write_indices: usize::from(wi.is_some()),
                per_batch: upd.shape.iter().skip(1).product(),
                upd_shape: upd.shape.clone(),
                out_strides: contiguous(&past.shape),
            };
            ctx.dispatch_n(k, &p.words()?, &y, &[wi.unwrap_or(upd), upd], n)?;
        }
        Ok(vec![y])
    }
}
