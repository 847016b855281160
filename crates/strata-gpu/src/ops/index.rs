//! Index-driven copies: `GatherND` and `ReverseSequence` (`index.wgsl`).

use super::*;
use crate::kernels::MAX_RANK;
use crate::shape::{contiguous, norm_axis};
use crate::wgsl::wgsl_params;

wgsl_params! {
    /// `gather_nd`: output element i copies element i % `slice` of the
    /// slice addressed by index tuple i / `slice` (`k` indices into the
    /// data axes `dims` of `strides`); `per_batch` tuples per batch entry
    /// of `batch_stride` elements.
    pub(crate) struct GatherNdParams {
        n: u32, k: u32, slice: u32, per_batch: u32, batch_stride: u32, dims: [u32; 8], strides: [u32; 8],
    }
    /// `reverse_sequence`: batch and time axes of the input.
    pub(crate) struct ReverseSequenceParams {
        n: u32, batch_stride: u32, batch_len: u32, time_stride: u32, time_len: u32,
    }
}

/// How an index-driven copy runs.
#[derive(Debug)]
pub(crate) enum Plan {
    GatherNd { k: Kernel, batch_dims: i64 },
    ReverseSequence { k: Kernel, batch_axis: i64, time_axis: i64 },
}

/// Plan `GatherND` or `ReverseSequence`.
pub(super) fn plan(v: &NodeView, t: &T, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match t {
        T::GatherND { batch_dims } => {
            v.dev(0)?;
            v.int(1, "indices")?;
            Ok(Plan::GatherNd { k: k.get(Shader::Index, "gather_nd", &[]), batch_dims: *batch_dims })
        }
        T::ReverseSequence { batch_axis, time_axis } => {
            v.dev(0)?;
            v.int(1, "sequence_lens")?;
            let k = k.get(Shader::Index, "reverse_sequence", &[]);
            Ok(Plan::ReverseSequence { k, batch_axis: *batch_axis, time_axis: *time_axis })
        }
        other => not_implemented(other.name()),
    }
}

impl Exec<'_> {
    pub(super) fn index(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::GatherNd { k, batch_dims } => self.gather_nd(ctx, k, *batch_dims),
            Plan::ReverseSequence { k, batch_axis, time_axis } => {
                self.reverse_sequence(ctx, k, *batch_axis, *time_axis)
            }
        }
    }

    /// `GatherND`.
    fn gather_nd(&self, ctx: &mut Ctx, kern: &Kernel, batch_dims: i64) -> Result<Vec<GpuTensor>> {
        let (x, ind) = (self.input(0)?, self.input(1)?);
        let q = ind.shape.len();
        let b = usize::try_from(batch_dims).map_err(|_| GpuError::Shape("negative batch_dims".into()))?;
        if q == 0 || b >= q || b > x.shape.len() || ind.shape[..b] != x.shape[..b] {
            return Err(GpuError::Shape(format!("indices {:?} do not match data {:?}", ind.shape, x.shape)));
        }
        let k = ind.shape[q - 1];
        if b + k > x.shape.len() || k > MAX_RANK {
            return Err(GpuError::Shape(format!("index tuples of {k} exceed data {:?}", x.shape)));
        }
        if x.shape[b..b + k].contains(&0) && ind.numel() > 0 {
            return Err(GpuError::Shape("GatherND from an empty axis".into()));
        }
        let mut shape = ind.shape[..q - 1].to_vec();
        shape.extend_from_slice(&x.shape[b + k..]);
        let slice: usize = x.shape[b + k..].iter().product();
        let per_batch: usize = ind.shape[b..q - 1].iter().product();
        let batch_stride: usize = x.shape[b..].iter().product();
        let y = ctx.alloc(x.dtype, shape)?;
        let n = y.numel();
        let cs = contiguous(&x.shape);
        let p = GatherNdParams {
            n,
            k,
            slice: slice.max(1),
            per_batch: per_batch.max(1),
            batch_stride,
            dims: x.shape[b..b + k].to_vec(),
            strides: cs[b..b + k].to_vec(),
        };
        ctx.dispatch_n(kern, &p.words()?, &y, &[x, ind], n)?;
        Ok(vec![y])
    }

    /// `ReverseSequence`.
    fn reverse_sequence(&self, ctx: &mut Ctx, k: &Kernel, batch_axis: i64, time_axis: i64) -> Result<Vec<GpuTensor>> {
        let (x, lens) = (self.input(0)?, self.input(1)?);
        let r = x.shape.len();
        if r < 2 {
            return Err(GpuError::Shape("ReverseSequence input must have rank >= 2".into()));
        }
        let (ba, ta) = (norm_axis(batch_axis, r)?, norm_axis(time_axis, r)?);
        if ba == ta || lens.numel() != x.shape[ba] {
            return Err(GpuError::Shape("invalid batch/time axes or sequence_lens".into()));
        }
        let cs = contiguous(&x.shape);
        let y = ctx.alloc(x.dtype, x.shape.clone())?;
        let n = y.numel();
        let p = ReverseSequenceParams {
            n,
            batch_stride: cs[ba],
            batch_len: x.shape[ba],
            time_stride: cs[ta],
            time_len: x.shape[ta],
        };
        ctx.dispatch_n(k, &p.words()?, &y, &[x, lens], n)?;
        Ok(vec![y])
    }
}
