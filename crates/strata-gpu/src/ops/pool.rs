//! Pooling: `MaxPool` / `AveragePool` over 1 or 2 spatial axes with
//! `pool.wgsl`; over 3 axes, with MaxPool's indices output, and `LpPool`
//! with `poolnd.wgsl`; and `Col2Im`, which shares the window geometry.
//! Geometry comes from `strata_ir::window`, as on every backend.

use strata_ir::window::{WindowAttrs, positive};

use super::conv::{grid2, pad, spatial_rank, window, window_attrs};
use super::*;
use crate::wgsl::{Params, wgsl_codes, wgsl_params};

/// Pooling function of `poolnd.wgsl` (`mode` parameter).
#[derive(Debug, Clone, Copy)]
pub(crate) enum PoolMode {
    Max { storage_col: bool },
    Average { count_include_pad: bool },
    Lp { p: i64 },
}

/// A pooling node's attributes.
#[derive(Debug)]
pub(crate) struct PoolAttrs {
    w: WindowAttrs,
    kernel: Vec<i64>,
    mode: PoolMode,
}

wgsl_params! {
    /// `pool.wgsl`'s `pool2d`: NCHW planes of `h x w` (1-D as `h = 1`).
    pub(crate) struct Pool2dParams {
        n: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32, dh: u32, dw: u32,
        pad_top: u32, pad_left: u32, pad_bottom: u32, pad_right: u32, count_include_pad: u32,
    }
}

wgsl_params! {
    /// `poolnd.wgsl`'s `pool_nd`: `n` outputs over `nsp` spatial axes of
    /// `shape` (`in_size` elements per plane) giving `out_shape`
    /// (`out_size`); `mode` from [`pool_mode`], `p` LpPool's exponent;
    /// MaxPool's indices written when `want_indices`, column-major when
    /// `storage_col` (storage_order 1).
    pub(crate) struct PoolNdParams {
        n: u32, nsp: u32, mode: u32, count_include_pad: u32, p: u32, out_size: u32, in_size: u32,
        want_indices: u32, storage_col: u32,
        shape: [u32; 3], out_shape: [u32; 3], kernel: [u32; 3], strides: [u32; 3], dilations: [u32; 3],
        pad_begin: [u32; 3], pad_end: [u32; 3],
    }
    /// `poolnd.wgsl`'s `col2im`: `n` image elements over `nsp` spatial axes,
    /// `block_size` kernel offsets (the product of `block`) and `blocks`
    /// blocks (`blocks_per_axis`).
    pub(crate) struct Col2imParams {
        n: u32, nsp: u32, channels: u32, block_size: u32, blocks: u32,
        image: [u32; 4], block: [u32; 4], strides: [u32; 4], dilations: [u32; 4], pad_begin: [u32; 4],
        blocks_per_axis: [u32; 4],
    }
}

wgsl_codes! {
    /// `PoolNdParams::mode`: the pooling function.
    pub(crate) mod pool_mode: POOL { MAX = 0, AVERAGE = 1, LP = 2 }
}

/// How a pooling node runs.
#[derive(Debug)]
pub(crate) enum Plan {
    /// `pool2d` (max or average by its override) over 1 or 2 spatial axes.
    Pool2d { k: Kernel, a: PoolAttrs },
    /// `pool_nd` over 1 to 3 spatial axes, with MaxPool's indices when wanted.
    PoolNd { k: Kernel, a: PoolAttrs },
    /// `col2im`, image and block shapes read on the host.
    Col2Im { k: Kernel, w: WindowAttrs },
}

/// Plan MaxPool, AveragePool, LpPool or Col2Im.
pub(super) fn plan(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match o {
        NnOp::MaxPool { kernel_shape, storage_order, .. } => {
            let mode = PoolMode::Max { storage_col: *storage_order != 0 };
            pool(v, k, PoolAttrs { w: window_attrs(o)?, kernel: kernel_shape.clone(), mode })
        }
        NnOp::AveragePool { count_include_pad, kernel_shape, .. } => {
            let mode = PoolMode::Average { count_include_pad: *count_include_pad };
            pool(v, k, PoolAttrs { w: window_attrs(o)?, kernel: kernel_shape.clone(), mode })
        }
        NnOp::LpPool { kernel_shape, p, .. } => {
            let mode = PoolMode::Lp { p: *p };
            pool_nd(v, k, PoolAttrs { w: window_attrs(o)?, kernel: kernel_shape.clone(), mode })
        }
        NnOp::Col2Im { .. } => {
            v.float(0)?;
            v.host(1, "image_shape")?;
            v.host(2, "block_shape")?;
            Ok(Plan::Col2Im { k: k.get(Shader::PoolNd, "col2im", &[]), w: window_attrs(o)? })
        }
        other => not_implemented(other.name()),
    }
}

/// MaxPool / AveragePool: `pool.wgsl` unless the input is 3-D (rank 5) or
/// MaxPool's indices are wanted.
fn pool(v: &NodeView, k: &mut Kernels, a: PoolAttrs) -> std::result::Result<Plan, String> {
    if v.rank(0) == Some(5) || v.n.outputs.iter().skip(1).any(|o| o.is_some()) {
        return pool_nd(v, k, a);
    }
    v.float(0)?;
    v.only_first_output()?;
    spatial_rank(v, Some(a.kernel.len()))?;
    let average = u32::from(matches!(a.mode, PoolMode::Average { .. }));
    Ok(Plan::Pool2d { k: k.get(Shader::Pool, "pool2d", &[("MODE", average)]), a })
}

/// Pooling with `poolnd.wgsl` (1 to 3 spatial axes).
fn pool_nd(v: &NodeView, k: &mut Kernels, a: PoolAttrs) -> std::result::Result<Plan, String> {
    v.float(0)?;
    match v.rank(0) {
        Some(3..=5) => {}
        Some(r) => return Err(format!("pooling of a rank-{r} input")),
        None => return Err("input rank unknown".into()),
    }
    Ok(Plan::PoolNd { k: k.get(Shader::PoolNd, "pool_nd", &[]), a })
}

impl Exec<'_> {
    pub(super) fn pool(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::Pool2d { k, a } => {
                let x = self.input(0)?;
                let r = x.shape.len();
                if !(r == 3 || r == 4) {
                    return Err(GpuError::Unsupported(format!("pooling of rank {r} input")));
                }
                let kernel = positive(&a.kernel, r - 2, "kernel_shape").map_err(GpuError::Shape)?;
                let win = window(&a.w, &x.shape[2..], kernel)?;
                let sp = grid2(&x.shape[2..], &win)?;
                let mut shape = x.shape[..2].to_vec();
                shape.extend_from_slice(&win.out);
                let y = ctx.alloc(DType::F32, shape)?;
                let n = y.numel();
                let p = Pool2dParams {
                    n,
                    h: sp.input[0],
                    w: sp.input[1],
                    oh: sp.out[0],
                    ow: sp.out[1],
                    kh: sp.kernel[0],
                    kw: sp.kernel[1],
                    sh: sp.strides[0],
                    sw: sp.strides[1],
                    dh: sp.dilations[0],
                    dw: sp.dilations[1],
                    pad_top: pad(sp.pad_begin[0])?,
                    pad_left: pad(sp.pad_begin[1])?,
                    pad_bottom: pad(sp.pad_end[0])?,
                    pad_right: pad(sp.pad_end[1])?,
                    count_include_pad: usize::from(matches!(a.mode, PoolMode::Average { count_include_pad: true })),
                };
                ctx.dispatch_n(k, &p.words()?, &y, &[x], n)?;
                Ok(vec![y])
            }
            Plan::PoolNd { k, a } => self.pool_nd(ctx, k, a),
            Plan::Col2Im { k, w } => self.col2im(ctx, k, w),
        }
    }

    /// Max, average or Lp pooling with `poolnd.wgsl`.
    fn pool_nd(&self, ctx: &mut Ctx, k: &Kernel, a: &PoolAttrs) -> Result<Vec<GpuTensor>> {
        let (code, include, p, col) = match a.mode {
            PoolMode::Max { storage_col } => (pool_mode::MAX, false, 1, storage_col),
            PoolMode::Average { count_include_pad } => (pool_mode::AVERAGE, count_include_pad, 1, false),
            PoolMode::Lp { p } => (pool_mode::LP, false, p, false),
        };
        let x = self.input(0)?;
        let r = x.shape.len();
        if !(3..=5).contains(&r) {
            return Err(GpuError::Unsupported(format!("pooling of a rank-{r} input")));
        }
        if p <= 0 {
            return Err(GpuError::Shape(format!("LpPool p must be positive, got {p}")));
        }
        let nsp = r - 2;
        let kernel = positive(&a.kernel, nsp, "kernel_shape").map_err(GpuError::Shape)?;
        let win = window(&a.w, &x.shape[2..], kernel)?;
        let mut shape = x.shape[..2].to_vec();
        shape.extend_from_slice(&win.out);
        let y = ctx.alloc(DType::F32, shape.clone())?;
        let want_idx = self.wants(1);
        let idx =
            ctx.alloc(if want_idx { self.out_dtype(1)? } else { DType::I32 }, if want_idx { shape } else { vec![1] })?;
        let total = y.numel();
        let out_size: usize = y.shape[2..].iter().product();
        let in_size: usize = x.shape[2..].iter().product();
        if want_idx && x.numel() > i32::MAX as usize {
            return Err(GpuError::Limit("MaxPool indices exceed i32".into()));
        }
        let prm = PoolNdParams {
            n: total,
            nsp,
            mode: code as usize,
            count_include_pad: usize::from(include),
            p: p as usize,
            out_size: out_size.max(1),
            in_size,
            want_indices: usize::from(want_idx),
            storage_col: usize::from(col),
            shape: x.shape[2..].to_vec(),
            out_shape: win.out[..nsp].to_vec(),
            kernel: win.kernel[..nsp].to_vec(),
            strides: win.strides[..nsp].to_vec(),
            dilations: win.dilations[..nsp].to_vec(),
            pad_begin: pads(&win.pad_begin[..nsp])?,
            pad_end: pads(&win.pad_end[..nsp])?,
        };
        ctx.dispatch_n(k, &prm.words()?, &y, &[x, &idx], total)?;
        let mut outs = vec![y];
        if want_idx {
            outs.push(idx);
        }
        Ok(outs)
    }

    /// `Col2Im` (image and block shapes read on the host), up to 4 spatial axes.
    fn col2im(&self, ctx: &mut Ctx, k: &Kernel, w: &WindowAttrs) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let dims = |i: usize, what: &str| -> Result<Vec<usize>> {
            self.host_i64(i)?
                .ok_or_else(|| GpuError::Shape(format!("Col2Im without {what}")))?
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| GpuError::Shape(format!("negative {what} {d}"))))
                .collect()
        };
        let image = dims(1, "image_shape")?;
        let block = dims(2, "block_shape")?;
        let nsp = image.len();
        if nsp == 0 || nsp > 4 || block.len() != nsp || block.contains(&0) || x.shape.len() != 3 {
            return Err(GpuError::Shape(format!("Col2Im of {:?} with image {image:?}, block {block:?}", x.shape)));
        }
        let kk: usize = block.iter().product();
        if x.shape[1] % kk != 0 {
            return Err(GpuError::Shape(format!("{} channels are not a multiple of {kk}", x.shape[1])));
        }
        let win = window(w, &image, block.clone())?;
        let l: usize = win.out.iter().product();
        if l != x.shape[2] {
            return Err(GpuError::Shape(format!("input has {} blocks, the geometry gives {l}", x.shape[2])));
        }
        let (n, c) = (x.shape[0], x.shape[1] / kk);
        let mut shape = vec![n, c];
        shape.extend_from_slice(&image);
        let y = ctx.alloc(x.dtype, shape)?;
        let total = y.numel();
        let p = Col2imParams {
            n: total,
            nsp,
            channels: c,
            block_size: kk,
            blocks: l,
            image: image[..nsp].to_vec(),
            block: block[..nsp].to_vec(),
            strides: win.strides[..nsp].to_vec(),
            dilations: win.dilations[..nsp].to_vec(),
            pad_begin: pads(&win.pad_begin[..nsp])?,
            blocks_per_axis: win.out[..nsp].to_vec(),
        };
        ctx.dispatch_n(k, &p.words()?, &y, &[x], total)?;
        Ok(vec![y])
    }
}

/// (Non-negative) paddings as kernel parameters.
fn pads(p: &[i64]) -> Result<Vec<usize>> {
    p.iter().map(|&p| usize::try_from(p).map_err(|_| GpuError::Shape(format!("negative padding {p}")))).collect()
}
