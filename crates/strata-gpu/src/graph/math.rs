//! Float functions beyond `elementwise.wgsl`'s set (inverse and hyperbolic
//! trigonometry) and `SwiGLU`, in `math.wgsl`.

use super::*;

/// `OP` override of `math.wgsl`'s `unary_math`.
pub(crate) fn math_code(e: &E) -> Option<u32> {
    Some(match e {
        E::Acos {} => 0,
        E::Acosh {} => 1,
        E::Asin {} => 2,
        E::Asinh {} => 3,
        E::Atanh {} => 4,
        E::Sinh {} => 5,
        E::Cosh {} => 6,
        _ => return None,
    })
}

impl Exec<'_> {
    /// One of the `math_code` functions.
    pub(super) fn unary_math(&self, ctx: &mut Ctx) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let y = ctx.alloc(x.dtype, x.shape.clone())?;
        let n = y.numel();
        ctx.dispatch_n(&self.pipes[0], &[u32c(n)?], &y, &[x], n)?;
        Ok(vec![y])
    }

    /// `SwiGLU`: `A * sigmoid(alpha * A) * B` for equal shapes.
    pub(super) fn swiglu(&self, ctx: &mut Ctx, alpha: f32) -> Result<Vec<GpuTensor>> {
        let (a, b) = (self.input(0)?, self.input(1)?);
        if a.shape != b.shape {
            return Err(GpuError::Shape(format!("SwiGLU inputs {:?} and {:?} differ", a.shape, b.shape)));
        }
        let y = ctx.alloc(a.dtype, a.shape.clone())?;
        let n = y.numel();
        ctx.dispatch_n(&self.pipes[0], &[u32c(n)?, f32w(alpha)], &y, &[a, b], n)?;
        Ok(vec![y])
    }
}

impl Exec<'_> {
    /// `RotaryEmbedding` (`rotary.wgsl`).
    pub(super) fn rotary(
        &self,
        ctx: &mut Ctx,
        interleaved: i64,
        num_heads: Option<i64>,
        dim: i64,
    ) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let (cos, sin) = (self.input(1)?, self.input(2)?);
        let pos = self.opt_input(3);
        let (b, h, s, d, three) = match *x.shape.as_slice() {
            [b, h, s, d] => (b, h, s, d, false),
            [b, s, hidden] => {
                let h = match num_heads {
                    Some(h) if h > 0 && hidden % h as usize == 0 => h as usize,
                    _ => return Err(GpuError::Shape("3-D RotaryEmbedding input needs num_heads dividing it".into())),
                };
                (b, h, s, hidden / h, true)
            }
            _ => return Err(GpuError::Shape(format!("RotaryEmbedding input {:?} must be 3-D or 4-D", x.shape))),
        };
        let rot = match dim {
            0 => d,
            n if n > 0 && n as usize <= d && n % 2 == 0 => n as usize,
            n => return Err(GpuError::Shape(format!("rotary_embedding_dim {n} does not fit head size {d}"))),
        };
        if rot % 2 != 0 {
            return Err(GpuError::Shape(format!("rotated size {rot} must be even")));
        }
        let half = rot / 2;
        if cos.shape != sin.shape || cos.shape.last() != Some(&half) {
            return Err(GpuError::Shape(format!("caches {:?} / {:?} must end in {half}", cos.shape, sin.shape)));
        }
        match pos {
            Some(p) => {
                if p.shape != [b, s] || cos.shape.len() != 2 {
                    return Err(GpuError::Shape("position_ids must be [batch, seq] with 2-D caches".into()));
                }
                if let Some(ids) = self.host(3)
                    && ids.to_i64_vec().iter().any(|&id| id < 0 || id as u64 >= cos.shape[0] as u64)
                {
                    return Err(GpuError::Shape("position id out of range of the caches".into()));
                }
            }
            None => {
                if cos.shape != [b, s, half] {
                    return Err(GpuError::Shape(format!("caches must have shape [{b}, {s}, {half}]")));
                }
            }
        }
        let y = ctx.alloc(x.dtype, x.shape.clone())?;
        let n = y.numel();
        let mut p = [0u32; 8];
        put(
            &mut p,
            0,
            &[n, h, s, d, rot, usize::from(interleaved != 0), usize::from(three), usize::from(pos.is_some())],
        )?;
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, cos, sin, pos.unwrap_or(x)], n)?;
        Ok(vec![y])
    }
}
