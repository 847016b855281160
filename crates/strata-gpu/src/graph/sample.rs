//! `GridSample` on the GPU (`sample.wgsl`): 1 to 3 spatial axes, nearest,
//! linear and cubic modes, zeros/border/reflection padding.

use super::*;

/// `MODE` code of `sample.wgsl` for a GridSample mode.
pub(crate) fn grid_mode_code(mode: &str) -> std::result::Result<u32, String> {
    match mode {
        "nearest" => Ok(0),
        "linear" | "bilinear" => Ok(1),
        "cubic" | "bicubic" => Ok(2),
        other => Err(format!("GridSample mode '{other}'")),
    }
}

/// Padding code of `sample.wgsl` for a GridSample padding mode.
pub(crate) fn grid_padding_code(mode: &str) -> std::result::Result<u32, String> {
    match mode {
        "zeros" => Ok(0),
        "border" => Ok(1),
        "reflection" => Ok(2),
        other => Err(format!("GridSample padding_mode '{other}'")),
    }
}

impl Exec<'_> {
    /// `GridSample`.
    pub(super) fn grid_sample(&self, ctx: &mut Ctx, align: i64, mode: &str, padding: &str) -> Result<Vec<GpuTensor>> {
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
        let mode = grid_mode_code(mode).map_err(GpuError::Unsupported)?;
        let pad = grid_padding_code(padding).map_err(GpuError::Unsupported)?;
        let out_sp = &grid.shape[1..=nsp];
        let mut shape = vec![n, c];
        shape.extend_from_slice(out_sp);
        let y = ctx.alloc(DType::F32, shape)?;
        let total = y.numel();
        if total > 0 && x.shape[2..].contains(&0) {
            return Err(GpuError::Shape("GridSample from an empty spatial axis".into()));
        }
        let out_size: usize = out_sp.iter().product();
        let mut p = vec![0u32; 10];
        put(&mut p, 0, &[total, c, nsp, usize::from(align != 0), mode as usize, pad as usize])?;
        put(&mut p, 6, &x.shape[2..])?;
        p[9] = u32c(out_size.max(1))?;
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[x, grid], total)?;
        Ok(vec![y])
    }
}

impl Exec<'_> {
    /// `AffineGrid` (size read on the host; theta on the device).
    pub(super) fn affine_grid(&self, ctx: &mut Ctx, align: i64) -> Result<Vec<GpuTensor>> {
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
        let mut p = vec![0u32; 8];
        put(&mut p, 0, &[total, nsp, usize::from(align != 0)])?;
        put(&mut p, 4, &size[2..])?;
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[theta], total)?;
        Ok(vec![y])
    }
}
