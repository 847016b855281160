//! Convolutions: Conv, ConvTranspose, DeformConv and Col2Im.
//!
//! Every output element is computed on its own as a sum over input
//! channels (outer) and kernel taps (inner, row-major), then the bias is
//! added: one fixed summation order, no im2col.

use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, one};
use crate::util::{check_numel, strides as row_strides};
use crate::value::{Tensor, Value};

use super::{WindowAttrs, attrs_window, axis_attr, next_index, positive, split_nc};

/// The kernel's spatial shape from the weights, checked against the
/// `kernel_shape` attribute when present.
fn kernel_of(w: &Tensor, kernel_shape: &Option<Vec<i64>>) -> KResult<Vec<usize>> {
    let k = w.shape[2..].to_vec();
    if k.contains(&0) {
        bail!("weights have an empty kernel, shape {:?}", w.shape);
    }
    if let Some(ks) = kernel_shape
        && (ks.len() != k.len() || ks.iter().zip(&k).any(|(&a, &b)| a != b as i64))
    {
        bail!("kernel_shape {ks:?} does not match the weights' shape {:?}", w.shape);
    }
    Ok(k)
}

/// Validate `group` (at least 1, dividing both channel counts).
fn groups(group: i64, channels_in: usize, channels_out: usize) -> KResult<usize> {
    let g = match usize::try_from(group) {
        Ok(g) if g >= 1 => g,
        _ => bail!("group must be positive, got {group}"),
    };
    if !channels_in.is_multiple_of(g) || !channels_out.is_multiple_of(g) {
        bail!("group {g} does not divide the channel counts ({channels_in} in, {channels_out} out)");
    }
    Ok(g)
}

/// The optional bias as `m` values (zeros when absent).
fn bias_values(b: Option<&Tensor>, m: usize) -> KResult<Vec<f64>> {
    match b {
        None => Ok(vec![0.0; m]),
        Some(b) => {
            if b.shape != [m] {
                bail!("bias must have shape [{m}], got {:?}", b.shape);
            }
            Ok(b.f()?.to_vec())
        }
    }
}

/// Kernel taps of the window at output position `opos` that land inside
/// the input: (flat kernel index, flat spatial input index) pairs.
fn conv_taps(win: &strata_ir::window::Window, in_sp: &[usize], opos: &[usize]) -> Vec<(usize, usize)> {
    let n = in_sp.len();
    let in_strides = row_strides(in_sp);
    let mut taps = Vec::new();
    let mut k = vec![0usize; n];
    let mut kflat = 0;
    loop {
        let mut flat = Some(0usize);
        for i in 0..n {
            let p = win.input_pos(i, opos[i], k[i]);
            if p < 0 || p >= in_sp[i] as i64 {
                flat = None;
                break;
            }
            flat = flat.map(|f| f + p as usize * in_strides[i]);
        }
        if let Some(f) = flat {
            taps.push((kflat, f));
        }
        kflat += 1;
        if !next_index(&mut k, &win.kernel) {
            break;
        }
    }
    taps
}

/// Conv: `Y[n, m, o] = B[m] + sum_{c in m's group, k} X[n, c, o*s - pad + k*d] * W[m, c, k]`.
pub(super) fn conv(args: &Args, a: &WindowAttrs, group: i64) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let w = args.tensor(1)?;
    let (n, c, in_sp) = split_nc(x, 1, "X")?;
    let nsp = in_sp.len();
    if w.rank() != x.rank() {
        bail!("weights of shape {:?} do not match input rank {}", w.shape, x.rank());
    }
    let (m, cg) = (w.shape[0], w.shape[1]);
    let kernel = kernel_of(w, &a.kernel_shape)?;
    let g = groups(group, c, m)?;
    if cg * g != c {
        bail!("weights have {cg} channels per group, input has {c} channels in {g} group(s)");
    }
    let bias = bias_values(args.opt_tensor(2)?, m)?;
    let win = attrs_window(a, &in_sp, kernel)?;
    let mut out_shape = vec![n, m];
    out_shape.extend(&win.out);
    check_numel(&out_shape)?;

    let (xv, wv) = (x.f()?, w.f()?);
    let in_size: usize = in_sp.iter().product();
    let out_size: usize = win.out.iter().product();
    let k_size: usize = win.kernel.iter().product();
    let mg = m / g;
    let mut y = vec![0.0; out_shape.iter().product()];
    let mut opos = vec![0usize; nsp];
    for o_flat in 0..out_size {
        let taps = conv_taps(&win, &in_sp, &opos);
        for b in 0..n {
            for mo in 0..m {
                let grp = mo / mg;
                let mut acc = 0.0;
                for ci in 0..cg {
                    let x_base = (b * c + grp * cg + ci) * in_size;
                    let w_base = (mo * cg + ci) * k_size;
                    for &(kf, xf) in &taps {
                        acc += xv[x_base + xf] * wv[w_base + kf];
                    }
                }
                y[(b * m + mo) * out_size + o_flat] = acc + bias[mo];
            }
        }
        next_index(&mut opos, &win.out);
    }
    one(Tensor::from_f(x.dtype, out_shape, y)?)
}

/// ConvTranspose (the gradient of Conv): every input element spreads
/// `X[n, c, i] * W[c, m, k]` onto output position `i*s - pad + k*d`.
/// Computed per output element by finding the (input, tap) pairs that land
/// on it.
pub(super) fn conv_transpose(
    args: &Args,
    a: &WindowAttrs,
    group: i64,
    output_padding: &Option<Vec<i64>>,
    output_shape: &Option<Vec<i64>>,
) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let w = args.tensor(1)?;
    let (n, c, in_sp) = split_nc(x, 1, "X")?;
    let nsp = in_sp.len();
    if w.rank() != x.rank() {
        bail!("weights of shape {:?} do not match input rank {}", w.shape, x.rank());
    }
    if w.shape[0] != c {
        bail!("weights have {} input channels, X has {c}", w.shape[0]);
    }
    let kernel = kernel_of(w, &a.kernel_shape)?;
    let g = groups(group, c, c)?;
    let mg = w.shape[1];
    let m = mg * g;
    let cg = c / g;
    let bias = bias_values(args.opt_tensor(2)?, m)?;
    let strides = axis_attr(&a.strides, nsp, 1, "strides")?;
    let dilations = axis_attr(&a.dilations, nsp, 1, "dilations")?;
    let (out_sp, pad_begin) = strata_ir::window::transpose_geometry(
        &in_sp,
        &kernel,
        &strides,
        &dilations,
        &a.pads,
        a.auto_pad,
        output_padding,
        output_shape,
    )
    .map_err(crate::error::KernelError::new)?;
    let mut out_shape = vec![n, m];
    out_shape.extend(&out_sp);
    check_numel(&out_shape)?;

    let (xv, wv) = (x.f()?, w.f()?);
    let in_strides = row_strides(&in_sp);
    let in_size: usize = in_sp.iter().product();
    let out_size: usize = out_sp.iter().product();
    let k_size: usize = kernel.iter().product();
    let mut y = vec![0.0; out_shape.iter().product()];
    let mut opos = vec![0usize; nsp];
    for o_flat in 0..out_size {
        // (flat kernel index, flat input index) pairs landing on `opos`.
        let mut taps = Vec::new();
        let mut k = vec![0usize; nsp];
        let mut kflat = 0;
        loop {
            let mut flat = Some(0usize);
            for i in 0..nsp {
                let t = opos[i] as i64 + pad_begin[i] - k[i] as i64 * dilations[i] as i64;
                let s = strides[i] as i64;
                if t < 0 || t % s != 0 || t / s >= in_sp[i] as i64 {
                    flat = None;
                    break;
                }
                flat = flat.map(|f| f + (t / s) as usize * in_strides[i]);
            }
            if let Some(f) = flat {
                taps.push((kflat, f));
            }
            kflat += 1;
            if !next_index(&mut k, &kernel) {
                break;
            }
        }
        for b in 0..n {
            for mo in 0..m {
                let (grp, m_local) = (mo / mg, mo % mg);
                let mut acc = 0.0;
                for ci in 0..cg {
                    let ch = grp * cg + ci;
                    let x_base = (b * c + ch) * in_size;
                    let w_base = (ch * mg + m_local) * k_size;
                    for &(kf, xf) in &taps {
                        acc += xv[x_base + xf] * wv[w_base + kf];
                    }
                }
                y[(b * m + mo) * out_size + o_flat] = acc + bias[mo];
            }
        }
        next_index(&mut opos, &out_sp);
    }
    one(Tensor::from_f(x.dtype, out_shape, y)?)
}

/// Value of `plane` (row-major, `shape`) at a fractional position by
/// multilinear interpolation, with zeros outside the plane.
fn sample_linear_zeros(plane: &[f64], shape: &[usize], pos: &[f64]) -> f64 {
    let n = shape.len();
    let lo: Vec<f64> = pos.iter().map(|&p| libm::floor(p)).collect();
    let st = row_strides(shape);
    let mut acc = 0.0;
    // Each corner of the surrounding cell: bit i set means the upper neighbour along axis i.
    for corner in 0..(1usize << n) {
        let mut weight = 1.0;
        let mut flat = Some(0usize);
        for i in 0..n {
            let upper = corner >> (n - 1 - i) & 1 == 1;
            let frac = pos[i] - lo[i];
            weight *= if upper { frac } else { 1.0 - frac };
            let idx = lo[i] + if upper { 1.0 } else { 0.0 };
            if !(idx >= 0.0 && idx < shape[i] as f64) {
                flat = None;
                break;
            }
            flat = flat.map(|f| f + idx as usize * st[i]);
        }
        if let Some(f) = flat {
            acc += weight * plane[f];
        }
    }
    acc
}

/// DeformConv: a convolution whose kernel taps are moved by learned
/// fractional `offset`s (sampled bilinearly, zero outside the input) and
/// optionally scaled by a `mask`.
pub(super) fn deform_conv(args: &Args, a: &WindowAttrs, group: i64, offset_group: i64) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let w = args.tensor(1)?;
    let offset = args.tensor(2)?;
    let (n, c, in_sp) = split_nc(x, 1, "X")?;
    let nsp = in_sp.len();
    if w.rank() != x.rank() {
        bail!("weights of shape {:?} do not match input rank {}", w.shape, x.rank());
    }
    let (m, cg) = (w.shape[0], w.shape[1]);
    let kernel = kernel_of(w, &a.kernel_shape)?;
    let g = groups(group, c, m)?;
    if cg * g != c {
        bail!("weights have {cg} channels per group, input has {c} channels in {g} group(s)");
    }
    let og = groups(offset_group, c, c)?;
    let bias = bias_values(args.opt_tensor(3)?, m)?;
    let win = attrs_window(a, &in_sp, kernel)?;
    let k_size: usize = win.kernel.iter().product();
    let mut off_shape = vec![n, og * k_size * nsp];
    off_shape.extend(&win.out);
    if offset.shape != off_shape {
        bail!("offset must have shape {off_shape:?}, got {:?}", offset.shape);
    }
    let mask = args.opt_tensor(4)?;
    if let Some(mk) = mask {
        let mut mask_shape = vec![n, og * k_size];
        mask_shape.extend(&win.out);
        if mk.shape != mask_shape {
            bail!("mask must have shape {mask_shape:?}, got {:?}", mk.shape);
        }
    }
    let mut out_shape = vec![n, m];
    out_shape.extend(&win.out);
    check_numel(&out_shape)?;

    let (xv, wv, ov) = (x.f()?, w.f()?, offset.f()?);
    let mv = mask.map(|t| t.f()).transpose()?;
    let in_size: usize = in_sp.iter().product();
    let out_size: usize = win.out.iter().product();
    let (mg, c_per_og) = (m / g, c / og);
    let mut y = vec![0.0; out_shape.iter().product()];
    let mut opos = vec![0usize; nsp];
    for o_flat in 0..out_size {
        for b in 0..n {
            // Sampling position of every (offset group, kernel tap), and its mask.
            let mut samples = Vec::with_capacity(og * k_size);
            for gi in 0..og {
                let mut k = vec![0usize; nsp];
                for kf in 0..k_size {
                    let mut pos = Vec::with_capacity(nsp);
                    for i in 0..nsp {
                        let ch = (gi * k_size + kf) * nsp + i;
                        let shift = ov[(b * off_shape[1] + ch) * out_size + o_flat];
                        pos.push(win.input_pos(i, opos[i], k[i]) as f64 + shift);
                    }
                    let scale = match mv {
                        Some(mv) => mv[(b * og * k_size + gi * k_size + kf) * out_size + o_flat],
                        None => 1.0,
                    };
                    samples.push((pos, scale));
                    next_index(&mut k, &win.kernel);
                }
            }
            for mo in 0..m {
                let grp = mo / mg;
                let mut acc = 0.0;
                for ci in 0..cg {
                    let ch = grp * cg + ci;
                    let gi = ch / c_per_og;
                    let plane = &xv[(b * c + ch) * in_size..(b * c + ch + 1) * in_size];
                    for kf in 0..k_size {
                        let (pos, scale) = &samples[gi * k_size + kf];
                        let v = sample_linear_zeros(plane, &in_sp, pos);
                        acc += v * scale * wv[(mo * cg + ci) * k_size + kf];
                    }
                }
                y[(b * m + mo) * out_size + o_flat] = acc + bias[mo];
            }
        }
        next_index(&mut opos, &win.out);
    }
    one(Tensor::from_f(x.dtype, out_shape, y)?)
}

/// Col2Im: sum sliding blocks (columns) back into an image; the inverse
/// layout of im2col. Input `(N, C * prod(block), L)`, output `(N, C, image...)`.
pub(super) fn col2im(args: &Args, a: &WindowAttrs) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let image = args.tensor(1)?.to_i64()?;
    let block = args.tensor(2)?.to_i64()?;
    let nsp = image.len();
    if nsp == 0 {
        bail!("image_shape must not be empty");
    }
    let image: Vec<usize> = image
        .iter()
        .map(|&d| match usize::try_from(d) {
            Ok(d) => Ok(d),
            Err(_) => bail!("image_shape must not be negative, got {d}"),
        })
        .collect::<KResult<_>>()?;
    let block = positive(&block, nsp, "block_shape")?;
    if x.rank() != 3 {
        bail!("input must have rank 3 (N, C * prod(block_shape), L), got shape {:?}", x.shape);
    }
    let k_size = block.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let k_size = match k_size {
        Some(k) if k > 0 && x.shape[1] % k == 0 => k,
        _ => bail!("input dimension 1 ({}) is not a multiple of prod(block_shape) {block:?}", x.shape[1]),
    };
    let win = attrs_window(a, &image, block)?;
    let l_size = win.out.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let l_size = match l_size {
        Some(l) if l == x.shape[2] => l,
        _ => bail!("input has {} blocks, the geometry gives {:?}", x.shape[2], win.out),
    };
    let (n, c) = (x.shape[0], x.shape[1] / k_size);
    let mut out_shape = vec![n, c];
    out_shape.extend(&image);
    check_numel(&out_shape)?;
    let img_size: usize = image.iter().product();
    let img_strides = row_strides(&image);
    let xv = x.f()?;
    let mut y = vec![0.0; out_shape.iter().product()];
    for b in 0..n {
        for ch in 0..c {
            let mut k = vec![0usize; nsp];
            for kf in 0..k_size {
                let mut l = vec![0usize; nsp];
                for lf in 0..l_size {
                    let mut flat = Some(0usize);
                    for i in 0..nsp {
                        let p = win.input_pos(i, l[i], k[i]);
                        if p < 0 || p >= image[i] as i64 {
                            flat = None;
                            break;
                        }
                        flat = flat.map(|f| f + p as usize * img_strides[i]);
                    }
                    if let Some(f) = flat {
                        y[(b * c + ch) * img_size + f] += xv[((b * c + ch) * k_size + kf) * l_size + lf];
                    }
                    next_index(&mut l, &win.out);
                }
                next_index(&mut k, &win.kernel);
            }
        }
    }
    one(Tensor::from_f(x.dtype, out_shape, y)?)
}
