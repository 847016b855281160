//! Direct convolution and transposed convolution over 1 or 2 spatial axes
//! (`conv.wgsl`). Window geometry comes from `strata_ir::window`, as on
//! every backend.

use strata_ir::window::{FixedWindow, Window, WindowAttrs, axis_attr, transpose_geometry};

use super::*;
use crate::kernels::TILE;
use crate::shape::u32c;
use crate::wgsl::{Params, wgsl_params};

wgsl_params! {
    /// `conv2d`, `conv2d_gemm` and `conv_transpose2d`: `n` outputs, `c`
    /// input channels of `h x w`, `m` output channels of `oh x ow`, kernel
    /// `kh x kw`, strides, dilations, the leading pads, `groups`, and whether
    /// a bias is bound. 1-D runs as H = 1.
    pub(crate) struct ConvParams {
        n: u32, c: u32, h: u32, w: u32, m: u32, oh: u32, ow: u32, kh: u32, kw: u32,
        sh: u32, sw: u32, dh: u32, dw: u32, pad_top: u32, pad_left: u32, groups: u32, has_bias: u32,
    }
}
// The fused epilogue's parameters start at word `EP`.
const _: () = assert!(ConvParams::LAYOUT.words() <= super::fused::wgsl::EP);

/// How a convolution runs: one dispatch over the output, of the implicit
/// matrix product `gemm` or (few output channels per group) the direct `k`.
#[derive(Debug)]
pub(crate) enum Plan {
    Conv {
        k: Kernel,
        gemm: Kernel,
        w: WindowAttrs,
        group: i64,
    },
    ConvTranspose {
        k: Kernel,
        w: WindowAttrs,
        group: i64,
        output_padding: Option<Vec<i64>>,
        output_shape: Option<Vec<i64>>,
    },
}

/// The window attributes of a convolution or pooling node, as the IR gives them.
pub(crate) fn window_attrs(o: &NnOp) -> std::result::Result<WindowAttrs, String> {
    o.window_attrs().ok_or_else(|| format!("{} has no window attributes", o.name()))
}

/// The geometry of `kernel` over spatial input sizes `input`.
pub(crate) fn window(a: &WindowAttrs, input: &[usize], kernel: Vec<usize>) -> Result<Window> {
    a.window(input, kernel).map_err(GpuError::Shape)
}

/// Output channels per group from which a convolution runs as an implicit
/// matrix product (`conv2d_gemm`, 64-channel tiles); below, the direct kernel
/// (one output per invocation) wastes less of each tile (depthwise: 1).
const GEMM_MIN_CHANNELS: usize = 8;

/// The 2-D kernels take 1-D (rank-3) and 2-D (rank-4) problems.
pub(crate) fn spatial_rank(v: &NodeView, kernel_rank: Option<usize>) -> std::result::Result<(), String> {
    match v.rank(0).or_else(|| v.rank(1)).or(kernel_rank.map(|k| k + 2)) {
        Some(3 | 4) => Ok(()),
        Some(r) => Err(format!("only 1-D and 2-D spatial kernels run on the GPU (input rank {r})")),
        None => Err("input rank unknown".into()),
    }
}

/// Plan `Conv` or `ConvTranspose` (float operands, 1 or 2 spatial axes).
pub(super) fn plan(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    v.float(0)?;
    v.float(1)?;
    if v.input(2).is_some() {
        v.float(2)?;
    }
    match o {
        NnOp::Conv { group, kernel_shape, .. } => {
            spatial_rank(v, kernel_shape.as_ref().map(Vec::len))?;
            Ok(Plan::Conv {
                k: k.get(Shader::Conv, "conv2d", &[]),
                gemm: k.get(Shader::Conv, "conv2d_gemm", &[]),
                w: window_attrs(o)?,
                group: *group,
            })
        }
        NnOp::ConvTranspose { group, kernel_shape, output_padding, output_shape, .. } => {
            spatial_rank(v, kernel_shape.as_ref().map(Vec::len))?;
            Ok(Plan::ConvTranspose {
                k: k.get(Shader::Conv, "conv_transpose2d", &[]),
                w: window_attrs(o)?,
                group: *group,
                output_padding: output_padding.clone(),
                output_shape: output_shape.clone(),
            })
        }
        other => not_implemented(other.name()),
    }
}

/// Per-axis geometry as the 2-D kernels take it (a 1-D problem gets a
/// leading unit axis).
pub(crate) type Grid2 = FixedWindow<2>;

/// `w` over spatial input sizes `inp` (1 or 2 axes) as a [`Grid2`].
pub(crate) fn grid2(inp: &[usize], w: &Window) -> Result<Grid2> {
    let r = inp.len();
    match w.fixed::<2>(inp) {
        Some(g) if r >= 1 => Ok(g),
        _ => Err(GpuError::Unsupported(format!("{r} spatial axes (the kernel takes 1 or 2)"))),
    }
}

/// A padding of a [`Grid2`] as a kernel parameter.
pub(crate) fn pad(p: i64) -> Result<usize> {
    usize::try_from(p).map_err(|_| GpuError::Shape(format!("negative padding {p}")))
}

fn group_of(group: i64) -> Result<usize> {
    usize::try_from(group).ok().filter(|&g| g > 0).ok_or_else(|| GpuError::Shape("bad group".into()))
}

impl Exec<'_> {
    pub(super) fn conv(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        match plan {
            Plan::Conv { k, gemm, w: attrs, group } => {
                let (x, w) = (self.input(0)?, self.input(1)?);
                let r = x.shape.len();
                if !(r == 3 || r == 4) || w.shape.len() != r {
                    return Err(GpuError::Unsupported(format!(
                        "Conv of rank {r} input and rank {} weights",
                        w.shape.len()
                    )));
                }
                let g = group_of(*group)?;
                let (nb, c) = (x.shape[0], x.shape[1]);
                let m = w.shape[0];
                if c % g != 0 || m % g != 0 || w.shape[1] * g != c {
                    return Err(GpuError::Shape(format!("Conv channels: input {c}, weights {:?}, group {g}", w.shape)));
                }
                let win = window(attrs, &x.shape[2..], w.shape[2..].to_vec())?;
                let sp = grid2(&x.shape[2..], &win)?;
                let bias = self.opt_input(2);
                if let Some(b) = bias
                    && b.numel() != m
                {
                    return Err(GpuError::Shape(format!("Conv bias has {} elements, expected {m}", b.numel())));
                }
                let mut shape = vec![nb, m];
                shape.extend_from_slice(&win.out);
                let y = ctx.alloc(DType::F32, shape)?;
                let n = y.numel();
                let p = ConvParams {
                    n,
                    c,
                    h: sp.input[0],
                    w: sp.input[1],
                    m,
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
                    groups: g,
                    has_bias: usize::from(bias.is_some()),
                }
                .words()?;
                let ins = [x, w, bias.unwrap_or(w)];
                let mg = m / g;
                // Position tiles, channel tiles, image x group (the direct
                // kernel when a dimension is past the dispatch limit).
                let t = TILE as usize;
                let grid = [(sp.out[0] * sp.out[1]).div_ceil(t), mg.div_ceil(t), nb * g];
                let max = ctx.dev.limits.max_compute_workgroups_per_dimension as usize;
                if n > 0 && mg >= GEMM_MIN_CHANNELS && grid.iter().all(|&d| d <= max) {
                    // The input planes and weights stay addressable in 32 bits.
                    u32c(x.numel())?;
                    u32c(w.numel())?;
                    self.dispatch_out(ctx, gemm, 1, &p, &y, &ins, grid.map(|d| d as u32))?;
                } else if n > 0 {
                    let groups = ctx.groups(n)?;
                    self.dispatch_out(ctx, k, 0, &p, &y, &ins, groups)?;
                }
                Ok(vec![y])
            }
            Plan::ConvTranspose { k, w: attrs, group, output_padding, output_shape } => {
                let (x, w) = (self.input(0)?, self.input(1)?);
                let r = x.shape.len();
                if !(r == 3 || r == 4) || w.shape.len() != r {
                    return Err(GpuError::Unsupported(format!("ConvTranspose of rank {r}")));
                }
                let g = group_of(*group)?;
                let (nb, c) = (x.shape[0], x.shape[1]);
                if w.shape[0] != c || c % g != 0 {
                    return Err(GpuError::Shape(format!("ConvTranspose channels: input {c}, weights {:?}", w.shape)));
                }
                let m = w.shape[1] * g;
                let nsp = r - 2;
                let kernel = &w.shape[2..];
                let s = axis_attr(&attrs.strides, nsp, 1, "strides").map_err(GpuError::Shape)?;
                let d = axis_attr(&attrs.dilations, nsp, 1, "dilations").map_err(GpuError::Shape)?;
                let (out_sp, pad_begin) = transpose_geometry(
                    &x.shape[2..],
                    kernel,
                    &s,
                    &d,
                    &attrs.pads,
                    attrs.auto_pad,
                    output_padding,
                    output_shape,
                )
                .map_err(GpuError::Shape)?;
                // in, out, kernel, stride, pad_begin, dilation per axis (1-D: a leading unit axis).
                let mut geo = [[1usize, 1, 1, 1, 0, 1]; 2];
                for i in 0..nsp {
                    let pb = usize::try_from(pad_begin[i])
                        .map_err(|_| GpuError::Shape(format!("negative padding {}", pad_begin[i])))?;
                    geo[i + 2 - nsp] = [x.shape[2 + i], out_sp[i], kernel[i], s[i], pb, d[i]];
                }
                let bias = self.opt_input(2);
                if bias.is_some_and(|b| b.numel() != m) {
                    return Err(GpuError::Shape(format!("ConvTranspose bias must have {m} elements")));
                }
                let mut shape = vec![nb, m];
                shape.extend_from_slice(&out_sp);
                let y = ctx.alloc(DType::F32, shape)?;
                let n = y.numel();
                let prm = ConvParams {
                    n,
                    c,
                    h: geo[0][0],
                    w: geo[1][0],
                    m,
                    oh: geo[0][1],
                    ow: geo[1][1],
                    kh: geo[0][2],
                    kw: geo[1][2],
                    sh: geo[0][3],
                    sw: geo[1][3],
                    dh: geo[0][5],
                    dw: geo[1][5],
                    pad_top: geo[0][4],
                    pad_left: geo[1][4],
                    groups: g,
                    has_bias: usize::from(bias.is_some()),
                }
                .words()?;
                if n > 0 {
                    let groups = ctx.groups(n)?;
                    self.dispatch_out(ctx, k, 0, &prm, &y, &[x, w, bias.unwrap_or(w)], groups)?;
                }
                Ok(vec![y])
            }
        }
    }
}
