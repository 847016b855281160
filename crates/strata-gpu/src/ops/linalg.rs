//! `Det` on the GPU (`det` of `math.wgsl`): one invocation per matrix, LU
//! decomposition with partial pivoting in private memory (matrices up to
//! [`DET_MAX`] x [`DET_MAX`]), as the reference does it.

use super::*;
use crate::wgsl::{Params, wgsl_params};

/// Largest matrix side `det` takes (its private copy holds DET_MAX² values).
pub(crate) const DET_MAX: usize = 16;

wgsl_params! {
    /// `math.wgsl`'s `det`: `count` matrices of side `side`, contiguous.
    pub(crate) struct DetParams { count: u32, side: u32 }
}

/// How Det runs: one `det` dispatch.
#[derive(Debug)]
pub(crate) struct Plan {
    k: Kernel,
}

/// Plan Det: float matrices in the last two axes.
pub(super) fn plan(v: &NodeView, k: &mut Kernels) -> std::result::Result<Plan, String> {
    v.float(0)?;
    Ok(Plan { k: k.get(Shader::Math, "det", &[]) })
}

impl Exec<'_> {
    pub(super) fn det(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let r = x.shape.len();
        if r < 2 || x.shape[r - 1] != x.shape[r - 2] {
            return Err(GpuError::Shape(format!("Det needs square matrices in the last two axes, got {:?}", x.shape)));
        }
        let side = x.shape[r - 1];
        if side > DET_MAX {
            return Err(GpuError::Unsupported(format!(
                "Det of {side}x{side} matrices (the kernel takes up to {DET_MAX})"
            )));
        }
        let y = ctx.alloc(DType::F32, x.shape[..r - 2].to_vec())?;
        let count = y.numel();
        ctx.dispatch_n(&plan.k, &DetParams { count, side }.words()?, &y, &[x], count)?;
        Ok(vec![y])
    }
}
