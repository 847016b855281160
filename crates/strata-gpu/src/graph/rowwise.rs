//! Operators along one axis (`rowwise.wgsl`): `Hardmax`, `LpNormalization`,
//! `CumSum`/`CumProd` and `TopK`, one invocation per line.

use super::*;

/// `(lines, L, inner)` of `shape` along `axis`.
fn lines(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let l = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    (outer * inner, l, inner)
}

impl Exec<'_> {
    /// `Hardmax` (opset 13 and the legacy 2-D form).
    pub(super) fn hardmax(&self, ctx: &mut Ctx, axis: i64, legacy: bool) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let rank = x.shape.len();
        let (rows, l, inner) = if legacy {
            let r = rank as i64;
            let a = if axis < 0 { axis + r } else { axis };
            if !(0..=r).contains(&a) {
                return Err(GpuError::Shape(format!("axis {axis} out of range for rank {rank}")));
            }
            let a = a as usize;
            (x.shape[..a].iter().product(), x.shape[a..].iter().product(), 1)
        } else {
            lines(&x.shape, norm_axis(axis, rank)?)
        };
        let y = ctx.alloc(DType::F32, x.shape.clone())?;
        if inner > 0 {
            ctx.dispatch_n(&self.pipes[0], &[u32c(rows)?, u32c(l)?, u32c(inner)?], &y, &[x], rows)?;
        }
        Ok(vec![y])
    }

    /// `LpNormalization` (p = 1 or 2).
    pub(super) fn lp_norm(&self, ctx: &mut Ctx, axis: i64, p: i64) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let (rows, l, inner) = lines(&x.shape, norm_axis(axis, x.shape.len())?);
        let y = ctx.alloc(DType::F32, x.shape.clone())?;
        if inner > 0 {
            let p = [u32c(rows)?, u32c(l)?, u32c(inner)?, if p == 1 { 1 } else { 2 }];
            ctx.dispatch_n(&self.pipes[0], &p, &y, &[x], rows)?;
        }
        Ok(vec![y])
    }

    /// `CumSum` / `CumProd` (axis from input 1, read on the host).
    pub(super) fn cumulate(
        &self,
        ctx: &mut Ctx,
        product: bool,
        exclusive: i64,
        reverse: i64,
    ) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let a = self.host_i64(1)?.ok_or_else(|| GpuError::Shape("missing axis".into()))?;
        if a.len() != 1 || x.shape.is_empty() {
            return Err(GpuError::Shape("axis must be a scalar and the input of rank >= 1".into()));
        }
        let (rows, l, inner) = lines(&x.shape, norm_axis(a[0], x.shape.len())?);
        let y = ctx.alloc(x.dtype, x.shape.clone())?;
        if inner > 0 {
            let p = [rows, l, inner, usize::from(product), usize::from(exclusive != 0), usize::from(reverse != 0)];
            let mut w = [0u32; 6];
            put(&mut w, 0, &p)?;
            ctx.dispatch_n(&self.pipes[0], &w, &y, &[x], rows)?;
        }
        Ok(vec![y])
    }

    /// `TopK` (k from input 1, read on the host): values and int64 indices.
    pub(super) fn top_k(&self, ctx: &mut Ctx, axis: i64, largest: i64) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let k = match self.host_i64(1)? {
            Some(k) if k.len() == 1 => k[0],
            _ => return Err(GpuError::Shape("TopK needs a scalar k".into())),
        };
        let a = norm_axis(axis, x.shape.len())?;
        let k = usize::try_from(k)
            .ok()
            .filter(|&k| k <= x.shape[a])
            .ok_or_else(|| GpuError::Shape(format!("k = {k} is out of range for axis length {}", x.shape[a])))?;
        let (rows, l, inner) = lines(&x.shape, a);
        let mut shape = x.shape.clone();
        shape[a] = k;
        let vals = ctx.alloc(x.dtype, shape.clone())?;
        let idx = ctx.alloc(self.out_dtype(1)?, shape)?;
        if inner > 0 && k > 0 {
            let mut w = [0u32; 5];
            put(&mut w, 0, &[rows, l, inner, k, usize::from(largest != 0)])?;
            ctx.dispatch_n(&self.pipes[0], &w, &vals, &[x, &idx], rows)?;
        }
        Ok(vec![vals, idx])
    }
}
