//! `GridSample` on the GPU (`sample.wgsl`): 1 to 3 spatial axes, nearest,
//! linear and cubic modes, zeros/border/reflection padding; and
//! `AffineGrid`, which makes such grids.

use super::*;
use crate::wgsl::{wgsl_codes, wgsl_params};
use strata_ir::resample::{SampleMode, SamplePadding};

wgsl_params! {
    /// `sample.wgsl`'s `grid_sample`: `n` outputs of `channels` channels,
    /// `nsp` spatial axes of `in_shape`, `out_size` points per channel;
    /// `mode` and `padding` from [`grid_mode`] and [`grid_padding`].
    pub(crate) struct GridSampleParams {
        n: u32, channels: u32, nsp: u32, align_corners: u32, mode: u32, padding: u32, out_size: u32,
        in_shape: [u32; 3],
    }
    /// `sample.wgsl`'s `affine_grid`: `n` values, `nsp` spatial axes of `size`.
    pub(crate) struct AffineGridParams { n: u32, nsp: u32, align_corners: u32, size: [u32; 3] }
}

wgsl_codes! {
    /// GridSample's interpolation (`GridSampleParams::mode`).
    pub(crate) mod grid_mode: GRID_MODE { NEAREST = 0, LINEAR = 1, CUBIC = 2 }
    /// GridSample's padding (`GridSampleParams::padding`).
    pub(crate) mod grid_padding: GRID_PAD { ZEROS = 0, BORDER = 1, REFLECTION = 2 }
}

/// How a sampling node runs.
#[derive(Debug)]
pub(crate) enum Plan {
    /// `grid_sample` with the `sample.wgsl` mode and padding codes.
    GridSample { k: Kernel, align_corners: bool, mode: u32, padding: u32 },
    /// `affine_grid`, the size read on the host.
    AffineGrid { k: Kernel, align_corners: bool },
}

/// Plan GridSample or AffineGrid.
pub(super) fn plan(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match o {
        NnOp::GridSample { align_corners, mode, padding_mode } => {
            v.float(0)?;
            v.float(1)?;
            let mode = grid_mode_code(*mode);
            let padding = grid_padding_code(*padding_mode);
            match v.rank(0) {
                Some(3..=5) => {}
                Some(r) => return Err(format!("GridSample of a rank-{r} input")),
                None => return Err("input rank unknown".into()),
            }
            let k = k.get(Shader::Sample, "grid_sample", &[]);
            Ok(Plan::GridSample { k, align_corners: *align_corners != 0, mode, padding })
        }
        NnOp::AffineGrid { align_corners } => {
            v.float(0)?;
            v.host(1, "size")?;
            Ok(Plan::AffineGrid { k: k.get(Shader::Sample, "affine_grid", &[]), align_corners: *align_corners != 0 })
        }
        other => not_implemented(other.name()),
    }
}

/// `MODE` code of `sample.wgsl` for a GridSample mode.
fn grid_mode_code(mode: SampleMode) -> u32 {
    match mode {
        SampleMode::Nearest => grid_mode::NEAREST,
        SampleMode::Linear => grid_mode::LINEAR,
        SampleMode::Cubic => grid_mode::CUBIC,
    }
}

/// Padding code of `sample.wgsl` for a GridSample padding mode.
fn grid_padding_code(mode: SamplePadding) -> u32 {
    match mode {
        SamplePadding::Zeros => grid_padding::ZEROS,
        SamplePadding::Border => grid_padding::BORDER,
        SamplePadding::Reflection => grid_padding::REFLECTION,
    }
}

impl Exec<'_> {
    pub(super) fn sample(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::GridSample { k, align_corners, mode, padding } => {
                self.grid_sample(ctx, k, *align_corners, *mode, *padding)
            }
            Plan::AffineGrid { k, align_corners } => self.affine_grid(ctx, k, *align_corners),
        }
    }

    /// `GridSample`.
    fn grid_sample(&self, ctx: &mut Ctx, k: &Kernel, align: bool, mode: u32, pad: u32) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let grid = self.input(1)?;
        let r = x.shape.len();
        if !(3..=5).contains(&r) {
            return Err(GpuError::Unsupported(format!("GridSample of a rank-{r} input")));
        }
        let nsp = r - 2;
        let (n, c) = (x.shape[0], x.shape[1]);
        if grid.shape.len() != r || grid.shape[0] != n || grid.shape[r - 1] != nsp {
            return Err(GpuError::Shape(format!("grid {:?} does not match X {:?}", grid.shape, x.shape)));
        }
        let out_sp = &grid.shape[1..=nsp];
        let mut shape = vec![n, c];
        shape.extend_from_slice(out_sp);
        let y = ctx.alloc(DType::F32, shape)?;
        let total = y.numel();
        if total > 0 && x.shape[2..].contains(&0) {
            return Err(GpuError::Shape("GridSample from an empty spatial axis".into()));
        }
        let out_size: usize = out_sp.iter().product();
        let p = GridSampleParams {
            n: total,
            channels: c,
            nsp,
            align_corners: usize::from(align),
            mode: mode as usize,
            padding: pad as usize,
            out_size: out_size.max(1),
            in_shape: x.shape[2..].to_vec(),
        };
        ctx.dispatch_n(k, &p.words()?, &y, &[x, grid], total)?;
        Ok(vec![y])
    }
}

impl Exec<'_> {
    /// `AffineGrid` (size read on the host; theta on the device).
    fn affine_grid(&self, ctx: &mut Ctx, k: &Kernel, align: bool) -> Result<Vec<GpuTensor>> {
        let theta = self.input(0)?;
        let size = self.host_i64(1)?.ok_or_else(|| GpuError::Shape("AffineGrid without a size".into()))?;
        let size: Vec<usize> = size
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| GpuError::Shape(format!("negative size {d}"))))
            .collect::<Result<_>>()?;
        let nsp = match size.len() {
            4 => 2,
            5 => 3,
            k => return Err(GpuError::Shape(format!("size must have 4 or 5 values, got {k}"))),
        };
        let n = size[0];
        if theta.shape != [n, nsp, nsp + 1] {
            return Err(GpuError::Shape(format!("theta {:?} must be [{n}, {nsp}, {}]", theta.shape, nsp + 1)));
        }
        let mut shape = vec![n];
        shape.extend_from_slice(&size[2..]);
        shape.push(nsp);
        let y = ctx.alloc(theta.dtype, shape)?;
        let total = y.numel();
        if total > 0 && size[2..].contains(&0) {
            return Ok(vec![y]);
        }
        let p = AffineGridParams { n: total, nsp, align_corners: usize::from(align), size: size[2..].to_vec() };
        ctx.dispatch_n(k, &p.words()?, &y, &[theta], total)?;
        Ok(vec![y])
    }
}
