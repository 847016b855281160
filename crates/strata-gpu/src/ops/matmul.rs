//! Matrix products (`matmul.wgsl`, tiled and batched): `MatMul` with
//! numpy broadcasting of the batch axes, and `Gemm`.

use super::*;
use crate::kernels::TILE;
use crate::shape::{broadcast, bstrides, check_rank, u32c};
use crate::wgsl::{Params, wgsl_params};

wgsl_params! {
    /// `matmul`: `batch` products of `m x k` by `k x n` (optionally
    /// transposed), the batch axes `batch_shape` (rank `batch_rank`) with
    /// per-operand element strides; `alpha * A B + beta * C` with C read at
    /// `row * c_stride_m + col * c_stride_n` when `has_c`.
    pub(crate) struct MatmulParams {
        m: u32, n: u32, k: u32, batch: u32, batch_rank: u32, trans_a: u32, trans_b: u32, has_c: u32,
        alpha: f32, beta: f32, c_stride_m: u32, c_stride_n: u32,
        batch_shape: [u32; 8], a_batch_stride: [u32; 8], b_batch_stride: [u32; 8],
    }
}
// The fused epilogue's parameters start at word `EP`.
const _: () = assert!(MatmulParams::LAYOUT.words() <= super::fused::wgsl::EP);

/// How a matrix product runs: one `matmul` dispatch.
#[derive(Debug)]
pub(crate) enum Plan {
    MatMul { k: Kernel },
    Gemm { k: Kernel, alpha: f32, beta: f32, trans_a: bool, trans_b: bool },
}

/// Plan `MatMul` or `Gemm` (float operands).
pub(super) fn plan(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    v.float(0)?;
    v.float(1)?;
    match o {
        NnOp::MatMul {} => Ok(Plan::MatMul { k: k.get(Shader::Matmul, "matmul", &[]) }),
        NnOp::Gemm { alpha, beta, transA, transB, .. } => {
            if v.input(2).is_some() {
                v.float(2)?;
            }
            Ok(Plan::Gemm {
                k: k.get(Shader::Matmul, "matmul", &[]),
                alpha: *alpha,
                beta: *beta,
                trans_a: *transA != 0,
                trans_b: *transB != 0,
            })
        }
        other => not_implemented(other.name()),
    }
}

impl Exec<'_> {
    pub(super) fn matmul_family(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::MatMul { k } => Ok(vec![self.matmul(ctx, k, self.input(0)?, self.input(1)?)?]),
            Plan::Gemm { k, alpha, beta, trans_a, trans_b } => self.gemm(ctx, k, *alpha, *beta, *trans_a, *trans_b),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm(&self, ctx: &mut Ctx, k: &Kernel, alpha: f32, beta: f32, ta: bool, tb: bool) -> Result<Vec<GpuTensor>> {
        let (a, b) = (self.input(0)?, self.input(1)?);
        if a.shape.len() != 2 || b.shape.len() != 2 {
            return Err(GpuError::Shape("Gemm needs 2-D inputs".into()));
        }
        let (m, kk) = if ta { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
        let (k2, n) = if tb { (b.shape[1], b.shape[0]) } else { (b.shape[0], b.shape[1]) };
        if kk != k2 {
            return Err(GpuError::Shape(format!("Gemm shapes {:?} and {:?} do not match", a.shape, b.shape)));
        }
        let c = self.opt_input(2);
        let cs = match c {
            Some(c) => {
                if broadcast(&[&c.shape, &[m, n]])? != [m, n] {
                    return Err(GpuError::Shape(format!("Gemm C {:?} does not broadcast to [{m}, {n}]", c.shape)));
                }
                let s = bstrides(&c.shape, &[m, n]);
                Some((s[0], s[1]))
            }
            None => None,
        };
        let y = ctx.alloc(DType::F32, vec![m, n])?;
        let p = self.mm_params(m, n, kk, 1, &[], &[], &[], ta, tb, cs, alpha, beta)?;
        self.mm_dispatch(ctx, k, &p, &y, a, b, c.unwrap_or(a), m, n, 1)?;
        Ok(vec![y])
    }

    fn matmul(&self, ctx: &mut Ctx, kern: &Kernel, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        if a.shape.is_empty() || b.shape.is_empty() {
            return Err(GpuError::Shape("MatMul of a scalar".into()));
        }
        let a2 = if a.shape.len() == 1 { vec![1, a.shape[0]] } else { a.shape.clone() };
        let b2 = if b.shape.len() == 1 { vec![b.shape[0], 1] } else { b.shape.clone() };
        let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
        let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
        if k != k2 {
            return Err(GpuError::Shape(format!("MatMul shapes {:?} and {:?} do not match", a.shape, b.shape)));
        }
        let ab = &a2[..a2.len() - 2];
        let bb = &b2[..b2.len() - 2];
        let batch = broadcast(&[ab, bb])?;
        check_rank(&batch)?;
        let bs_a: Vec<usize> = bstrides(ab, &batch).iter().map(|s| s * m * k).collect();
        let bs_b: Vec<usize> = bstrides(bb, &batch).iter().map(|s| s * k * n).collect();
        let mut shape = batch.clone();
        if a.shape.len() > 1 {
            shape.push(m);
        }
        if b.shape.len() > 1 {
            shape.push(n);
        }
        let y = ctx.alloc(DType::F32, shape)?;
        let nb: usize = batch.iter().product();
        let p = self.mm_params(m, n, k, nb, &batch, &bs_a, &bs_b, false, false, None, 1.0, 0.0)?;
        self.mm_dispatch(ctx, kern, &p, &y, a, b, b, m, n, nb)?;
        Ok(y)
    }

    #[allow(clippy::too_many_arguments)]
    /// The parameters of `matmul.wgsl`: `nb` products of `m x k` by `k x n`,
    /// batch strides per operand, optional transposes and a broadcast C.
    pub(super) fn mm_params(
        &self,
        m: usize,
        n: usize,
        k: usize,
        nb: usize,
        batch: &[usize],
        bs_a: &[usize],
        bs_b: &[usize],
        ta: bool,
        tb: bool,
        c: Option<(usize, usize)>,
        alpha: f32,
        beta: f32,
    ) -> Result<Vec<u32>> {
        let (c_stride_m, c_stride_n) = c.unwrap_or((0, 0));
        let p = MatmulParams {
            m,
            n,
            k,
            batch: nb,
            batch_rank: batch.len(),
            trans_a: usize::from(ta),
            trans_b: usize::from(tb),
            has_c: usize::from(c.is_some()),
            alpha,
            beta,
            c_stride_m,
            c_stride_n,
            batch_shape: batch.to_vec(),
            a_batch_stride: bs_a.to_vec(),
            b_batch_stride: bs_b.to_vec(),
        }
        .words()?;
        // Products must stay addressable in 32 bits.
        u32c(nb.saturating_mul(m).saturating_mul(n))?;
        u32c(nb.saturating_mul(m).saturating_mul(k))?;
        u32c(nb.saturating_mul(k).saturating_mul(n))?;
        Ok(p)
    }

    #[allow(clippy::too_many_arguments)]
    fn mm_dispatch(
        &self,
        ctx: &mut Ctx,
        k: &Kernel,
        p: &[u32],
        y: &GpuTensor,
        a: &GpuTensor,
        b: &GpuTensor,
        c: &GpuTensor,
        m: usize,
        n: usize,
        nb: usize,
    ) -> Result<()> {
        if m == 0 || n == 0 || nb == 0 {
            return Ok(());
        }
        let max = ctx.dev.limits.max_compute_workgroups_per_dimension as usize;
        let gx = n.div_ceil(TILE as usize);
        let gy = m.div_ceil(TILE as usize);
        if gx > max || gy > max || nb > max {
            return Err(GpuError::Limit(format!(
                "matrix product {nb}x{m}x{n} exceeds the dispatch limit of {max} workgroups per dimension"
            )));
        }
        self.dispatch_out(ctx, k, 0, p, y, &[a, b, c], [gx as u32, gy as u32, nb as u32])
    }
}
