//! Pooling over 1 to 3 spatial axes (`poolnd.wgsl`): `LpPool`, and
//! `MaxPool` / `AveragePool` where `pool.wgsl`'s 2-D kernel does not apply
//! (3-D inputs, MaxPool's indices output); and `Col2Im`, which shares the
//! window geometry.

use super::*;

/// Window geometry along each spatial axis: `(output size, pad begin, pad end)`.
fn window(
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    pads: &Option<Vec<i64>>,
    auto_pad: &str,
    ceil: bool,
) -> Result<Vec<(usize, usize, usize)>> {
    let n = input.len();
    let p: Vec<usize> = match pads {
        Some(p) if p.len() == 2 * n => p
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| GpuError::Shape(format!("invalid pads {p:?}"))))
            .collect::<Result<_>>()?,
        Some(p) => return Err(GpuError::Shape(format!("pads {p:?} do not match {n} spatial axes"))),
        None => vec![0; 2 * n],
    };
    let mut res = Vec::with_capacity(n);
    for i in 0..n {
        let (len, k, s, d) = (input[i] as i128, kernel[i] as i128, strides[i] as i128, dilations[i] as i128);
        let ext = (k - 1) * d + 1;
        let (size, pb, pe) = match auto_pad {
            "NOTSET" | "" => {
                let (pb, pe) = (p[i] as i128, p[i + n] as i128);
                let span = len + pb + pe - ext;
                if span < 0 {
                    return Err(GpuError::Shape("kernel larger than the padded input".into()));
                }
                let size = if ceil {
                    let mut size = (span + s - 1) / s + 1;
                    if (size - 1) * s >= len + pb {
                        size -= 1;
                    }
                    size
                } else {
                    span / s + 1
                };
                (size, pb, pe)
            }
            "VALID" => {
                let span = len - ext;
                if span < 0 {
                    return Err(GpuError::Shape("kernel larger than the input".into()));
                }
                (span / s + 1, 0, 0)
            }
            "SAME_UPPER" | "SAME_LOWER" => {
                let size = (len + s - 1) / s;
                let total = ((size - 1) * s + ext - len).max(0);
                let small = total / 2;
                if auto_pad == "SAME_UPPER" { (size, small, total - small) } else { (size, total - small, small) }
            }
            other => return Err(GpuError::Unsupported(format!("auto_pad '{other}'"))),
        };
        let c = |v: i128| usize::try_from(v).map_err(|_| GpuError::Shape("window geometry out of range".into()));
        res.push((c(size)?, c(pb)?, c(pe)?));
    }
    Ok(res)
}

fn positive(v: &Option<Vec<i64>>, n: usize, what: &str) -> Result<Vec<usize>> {
    match v {
        None => Ok(vec![1; n]),
        Some(v) if v.len() == n => v
            .iter()
            .map(|&x| usize::try_from(x).ok().filter(|&x| x > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| GpuError::Shape(format!("invalid {what} {v:?}"))),
        Some(v) => Err(GpuError::Shape(format!("{what} {v:?} does not match {n} spatial axes"))),
    }
}

impl Exec<'_> {
    /// Max (mode 0), average (1) or Lp (2) pooling with `poolnd.wgsl`.
    pub(super) fn pool_nd(&self, ctx: &mut Ctx, o: &NnOp) -> Result<Vec<GpuTensor>> {
        let (mode, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, include, p, col) = match o {
            NnOp::MaxPool { auto_pad, ceil_mode, dilations, kernel_shape, pads, storage_order, strides } => {
                (0, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, 0, 1, *storage_order != 0)
            }
            NnOp::AveragePool { auto_pad, ceil_mode, count_include_pad, dilations, kernel_shape, pads, strides } => (
                1,
                auto_pad,
                ceil_mode,
                dilations,
                kernel_shape,
                pads,
                strides,
                i64::from(*count_include_pad),
                1,
                false,
            ),
            NnOp::LpPool { auto_pad, ceil_mode, dilations, kernel_shape, p, pads, strides } => {
                (2, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, 0, *p, false)
            }
            other => return Err(GpuError::Unsupported(format!("operator {}", other.name()))),
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
        let kernel = positive(&Some(kernel_shape.clone()), nsp, "kernel_shape")?;
        let s = positive(strides, nsp, "strides")?;
        let d = positive(dilations, nsp, "dilations")?;
        let win = window(&x.shape[2..], &kernel, &s, &d, pads, auto_pad.as_str(), *ceil_mode)?;
        let mut shape = x.shape[..2].to_vec();
        shape.extend(win.iter().map(|w| w.0));
        let y = ctx.alloc(DType::F32, shape.clone())?;
        let want_idx = self.n.outputs.get(1).copied().flatten().is_some();
        let idx =
            ctx.alloc(if want_idx { self.out_dtype(1)? } else { DType::I32 }, if want_idx { shape } else { vec![1] })?;
        let total = y.numel();
        let out_size: usize = y.shape[2..].iter().product();
        let in_size: usize = x.shape[2..].iter().product();
        if want_idx && x.numel() > i32::MAX as usize {
            return Err(GpuError::Limit("MaxPool indices exceed i32".into()));
        }
        let mut w = vec![0u32; 30];
        put(
            &mut w,
            0,
            &[total, nsp, mode, usize::from(include != 0), p as usize, out_size.max(1), in_size, usize::from(want_idx)],
        )?;
        for a in 0..nsp {
            put(&mut w, 8 + a, &[x.shape[2 + a]])?;
            put(&mut w, 11 + a, &[win[a].0])?;
            put(&mut w, 14 + a, &[kernel[a]])?;
            put(&mut w, 17 + a, &[s[a]])?;
            put(&mut w, 20 + a, &[d[a]])?;
            put(&mut w, 23 + a, &[win[a].1])?;
            put(&mut w, 26 + a, &[win[a].2])?;
        }
        w[29] = u32::from(col);
        ctx.dispatch_n(&self.pipes[0], &w, &y, &[x, &idx], total)?;
        let mut outs = vec![y];
        if want_idx {
            outs.push(idx);
        }
        Ok(outs)
    }
}

impl Exec<'_> {
    /// `Col2Im` (image and block shapes read on the host), up to 4 spatial axes.
    pub(super) fn col2im(
        &self,
        ctx: &mut Ctx,
        dilations: &Option<Vec<i64>>,
        pads: &Option<Vec<i64>>,
        strides: &Option<Vec<i64>>,
    ) -> Result<Vec<GpuTensor>> {
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
        let k: usize = block.iter().product();
        if x.shape[1] % k != 0 {
            return Err(GpuError::Shape(format!("{} channels are not a multiple of {k}", x.shape[1])));
        }
        let s = positive(strides, nsp, "strides")?;
        let d = positive(dilations, nsp, "dilations")?;
        let win = window(&image, &block, &s, &d, pads, "NOTSET", false)?;
        let l: usize = win.iter().map(|w| w.0).product();
        if l != x.shape[2] {
            return Err(GpuError::Shape(format!("input has {} blocks, the geometry gives {l}", x.shape[2])));
        }
        let (n, c) = (x.shape[0], x.shape[1] / k);
        let mut shape = vec![n, c];
        shape.extend_from_slice(&image);
        let y = ctx.alloc(x.dtype, shape)?;
        let total = y.numel();
        let mut p = vec![0u32; 32];
        put(&mut p, 0, &[total, nsp, c, k, l])?;
        for a in 0..nsp {
            put(&mut p, 8 + a, &[image[a]])?;
            put(&mut p, 12 + a, &[block[a]])?;
            put(&mut p, 16 + a, &[s[a]])?;
            put(&mut p, 20 + a, &[d[a]])?;
            put(&mut p, 24 + a, &[win[a].1])?;
            put(&mut p, 28 + a, &[win[a].0])?;
        }
        ctx.dispatch_n(&self.pipes[0], &p, &y, &[x], total)?;
        Ok(vec![y])
    }
}
