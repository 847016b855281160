//! Index-driven copies: `GatherND` and `ReverseSequence` (`index.wgsl`),
//! and `CenterCropPad` (`movement.wgsl`'s constant `pad` with negative pads
//! for cropping).

use super::*;

impl Exec<'_> {
    /// `GatherND`.
    pub(super) fn gather_nd(&self, ctx: &mut Ctx, batch_dims: i64) -> Result<Vec<GpuTensor>> {
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
        let mut p = vec![0u32; 24];
        put(&mut p, 0, &[n, k, slice.max(1), per_batch.max(1), batch_stride])?;
        put(&mut p, 8, &x.shape[b..b + k])?;
        put(&mut p, 16, &cs[b..b + k])?;
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, ind], n)?;
        Ok(vec![y])
    }

    /// `ReverseSequence`.
    pub(super) fn reverse_sequence(&self, ctx: &mut Ctx, batch_axis: i64, time_axis: i64) -> Result<Vec<GpuTensor>> {
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
        let mut p = [0u32; 5];
        put(&mut p, 0, &[n, cs[ba], x.shape[ba], cs[ta], x.shape[ta]])?;
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, lens], n)?;
        Ok(vec![y])
    }

    /// `CenterCropPad` (target shape read on the host).
    pub(super) fn center_crop_pad(&self, ctx: &mut Ctx, axes: &Option<Vec<i64>>) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let r = x.shape.len();
        check_rank(&x.shape)?;
        let target = self.host_i64(1)?.ok_or_else(|| GpuError::Shape("CenterCropPad without a shape".into()))?;
        let axes: Vec<usize> = match axes {
            Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
            None => (0..r).collect(),
        };
        if axes.len() != target.len() {
            return Err(GpuError::Shape(format!("{} sizes for {} axes", target.len(), axes.len())));
        }
        let mut shape = x.shape.clone();
        let mut begin = vec![0i64; r];
        for (&a, &t) in axes.iter().zip(&target) {
            let t = usize::try_from(t).map_err(|_| GpuError::Shape(format!("negative size {t}")))?;
            let d = x.shape[a];
            shape[a] = t;
            begin[a] = if t < d { -(((d - t) / 2) as i64) } else { ((t - d) / 2) as i64 };
        }
        let y = ctx.alloc(x.dtype, shape.clone())?;
        let n = y.numel();
        let mut p = vec![0u32; 36];
        p[0] = u32c(n)?;
        p[1] = r as u32;
        put(&mut p, 4, &shape)?;
        put(&mut p, 12, &x.shape)?;
        for i in 0..r {
            p[20 + i] = i32::try_from(begin[i]).map_err(|_| GpuError::Limit("offset exceeds i32".into()))? as u32;
        }
        put(&mut p, 28, &contiguous(&x.shape))?;
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[x], n)?;
        Ok(vec![y])
    }
}
