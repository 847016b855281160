//! QuantizeLinear and DequantizeLinear (`quantize` / `dequantize` of
//! `elementwise.wgsl`): per-tensor, per-axis and blocked scales.

use strata_ir::ops::QuantOp;

use super::*;

/// The `qparam_index` words locating the scale (or zero point) of shape `p`
/// for each element of `x`: [inner, dim, block, outer stride, block stride,
/// inner stride].
fn qindex(x: &[usize], p: &[usize], axis: i64, block: i64) -> Result<[usize; 6]> {
    if p.iter().product::<usize>() == 1 {
        return Ok([1, 1, 1, 0, 0, 0]);
    }
    let ax = norm_axis(axis, x.len())?;
    let inner: usize = x[ax + 1..].iter().product();
    let dim = x[ax];
    if block == 0 {
        if p != [dim] {
            return Err(GpuError::Shape(format!("scale of shape {p:?} for input {x:?} along axis {ax}")));
        }
        return Ok([inner.max(1), dim.max(1), 1, 0, 1, 0]);
    }
    let bs = usize::try_from(block).ok().filter(|&b| b > 0).ok_or_else(|| GpuError::Shape("bad block_size".into()))?;
    let blocks = dim.div_ceil(bs);
    let mut want = x.to_vec();
    want[ax] = blocks;
    if p != want.as_slice() {
        return Err(GpuError::Shape(format!("blocked scale of shape {p:?} for input {x:?}: expected {want:?}")));
    }
    Ok([inner.max(1), dim.max(1), bs, blocks * inner, inner, 1])
}

impl Exec<'_> {
    pub(super) fn quant(&self, ctx: &mut Ctx, q: &QuantOp) -> Result<Vec<GpuTensor>> {
        let (x, s) = (self.input(0)?, self.input(1)?);
        let z = self.opt_input(2);
        let to = self.out_dtype(0)?;
        let mut p = vec![0u32; 18];
        let (axis, block) = match q {
            QuantOp::QuantizeLinear { axis, block_size, .. } | QuantOp::DequantizeLinear { axis, block_size, .. } => {
                (*axis, *block_size)
            }
            other => return Err(GpuError::Unsupported(format!("operator {}", other.name()))),
        };
        put(&mut p, 2, &qindex(&x.shape, &s.shape, axis, block)?)?;
        // Float8 zero points of DequantizeLinear are zero by definition and ignored.
        let z = z.filter(|_| {
            !matches!(q, QuantOp::DequantizeLinear { .. })
                || !matches!(x.dtype, DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ)
        });
        if let Some(z) = z {
            put(&mut p, 8, &qindex(&x.shape, &z.shape, axis, block)?)?;
            p[14] = 1;
        }
        if let QuantOp::QuantizeLinear { precision, .. } = q {
            p[1] = u32::from(to.int_range().is_none());
            let (lo, hi) = to.int_range().unwrap_or((0, 0));
            p[15] = lo as i32 as u32;
            p[16] = hi as i32 as u32;
            p[17] = support::quant_work(x.dtype, s.dtype, *precision).map_err(GpuError::Unsupported)?;
        }
        let y = ctx.alloc(to, x.shape.clone())?;
        let n = y.numel();
        p[0] = u32c(n)?;
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, s, z.unwrap_or(s)], n)?;
        Ok(vec![y])
    }
}
