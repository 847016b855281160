//! Neural-network operators: MatMul (batch broadcasting, 1-D operands),
//! Gemm, Conv and pooling in 1-D and 2-D (1-D as 2-D with a unit height;
//! window geometry from `strata_ir::window`), global pooling,
//! BatchNormalization (inference) and Dropout (inference: identity).

use burn_backend::ops::{ConvOptions, PadMode};
use burn_backend::tensor::FloatTensor;
use burn_backend::{Backend, Scalar, TensorMetadata};
use strata_ir::ops::NnOp as N;
use strata_ir::window::{AutoPad, Window, WindowAttrs, positive};

use super::elementwise::{Binary, broadcast_binary};
use super::{NodeInfo, Out, Unsupported, broadcast, expand_to, input};
use crate::tensor::BurnTensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    Max,
    Avg {
        count_include_pad: bool,
    },
    /// LpPool: the p-th root of the window's sum of |x|^p.
    Lp(i64),
}

/// A compiled Nn node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Nn {
    MatMul,
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    },
    Conv {
        window: WindowAttrs,
        group: usize,
        kernel_shape: Option<Vec<i64>>,
    },
    Pool {
        pool: Pool,
        window: WindowAttrs,
    },
    Global(Pool),
    BatchNorm {
        epsilon: f32,
    },
    /// Inference Dropout: the input, and an all-true mask when asked for.
    Identity {
        mask: bool,
    },
}

/// The declared rank of input `i` or of its weight.
fn rank(info: &NodeInfo, i: usize) -> Option<usize> {
    info.in_rank(i).or_else(|| info.constant(i).map(|t| t.shape().len()))
}

/// The input is [N, C, L] or [N, C, H, W]: its declared rank, else the
/// weights' (Conv) or the window's (pooling, `kernel_shape`).
fn spatial_1d_2d(info: &NodeInfo, window: &WindowAttrs) -> Result<(), Unsupported> {
    let from_window = window.kernel_shape.as_ref().map(|k| k.len() + 2);
    match rank(info, 0).or_else(|| rank(info, 1)).or(from_window) {
        Some(3 | 4) => Ok(()),
        Some(r) => Err(format!("{}-D windows (burn runs 1-D and 2-D)", r.saturating_sub(2))),
        None => Err("input rank unknown".into()),
    }
}

fn no_negative_pads(w: &WindowAttrs) -> Result<(), Unsupported> {
    if w.pads.as_ref().is_some_and(|p| p.iter().any(|&v| v < 0)) {
        return Err("negative pads".into());
    }
    Ok(())
}

pub(crate) fn plan(op: &N, info: &NodeInfo) -> Result<Nn, Unsupported> {
    let k = match op {
        N::MatMul {} => Nn::MatMul,
        N::Gemm { alpha, beta, transA, transB, .. } => {
            if rank(info, 0).is_some_and(|r| r != 2) || rank(info, 1).is_some_and(|r| r != 2) {
                return Err("Gemm operands are not 2-D".into());
            }
            Nn::Gemm { alpha: *alpha, beta: *beta, trans_a: *transA != 0, trans_b: *transB != 0 }
        }
        N::Conv { group, kernel_shape, .. } => {
            let window = op.window_attrs().ok_or("Conv without window attributes")?;
            spatial_1d_2d(info, &window)?;
            no_negative_pads(&window)?;
            let group = usize::try_from(*group).ok().filter(|&g| g > 0).ok_or("group must be positive")?;
            Nn::Conv { window, group, kernel_shape: kernel_shape.clone() }
        }
        N::MaxPool { .. } | N::AveragePool { .. } | N::LpPool { .. } => {
            let window = op.window_attrs().ok_or("pooling without window attributes")?;
            spatial_1d_2d(info, &window)?;
            no_negative_pads(&window)?;
            let pool = match op {
                N::AveragePool { count_include_pad, .. } => {
                    // burn's average pooling pads symmetrically, divides by
                    // the full window or the valid part, and has no dilation.
                    if window.ceil_mode {
                        return Err("AveragePool with ceil_mode (burn's rounding differs)".into());
                    }
                    if window.auto_pad.is_same() {
                        return Err("AveragePool with auto_pad SAME (asymmetric padding)".into());
                    }
                    if window.dilations.as_ref().is_some_and(|d| d.iter().any(|&v| v != 1)) {
                        return Err("AveragePool with dilations (burn has none)".into());
                    }
                    if let Some(p) = &window.pads
                        && window.auto_pad == AutoPad::NotSet
                        && p[..p.len() / 2] != p[p.len() / 2..]
                    {
                        return Err(format!("AveragePool with asymmetric pads {p:?}"));
                    }
                    Pool::Avg { count_include_pad: *count_include_pad }
                }
                N::LpPool { p, .. } => {
                    if window.dilations.as_ref().is_some_and(|d| d.iter().any(|&v| v != 1)) {
                        return Err("LpPool with dilations (burn's sum pooling has none)".into());
                    }
                    if *p < 1 {
                        return Err(format!("LpPool with p={p}"));
                    }
                    Pool::Lp(*p)
                }
                _ => {
                    if info.outputs_given() > 1 {
                        return Err("MaxPool's Indices output".into());
                    }
                    Pool::Max
                }
            };
            Nn::Pool { pool, window }
        }
        N::GlobalAveragePool {} | N::GlobalMaxPool {} | N::GlobalLpPool { .. } => {
            if rank(info, 0).is_some_and(|r| r < 3) {
                return Err("global pooling of fewer than 3 axes".into());
            }
            Nn::Global(match op {
                N::GlobalMaxPool {} => Pool::Max,
                N::GlobalLpPool { p } if *p >= 1 => Pool::Lp(*p),
                N::GlobalLpPool { p } => return Err(format!("GlobalLpPool with p={p}")),
                _ => Pool::Avg { count_include_pad: false },
            })
        }
        N::BatchNormalization { epsilon, training_mode, spatial, .. } => {
            if *training_mode != 0 || info.outputs_given() > 1 {
                return Err("BatchNormalization in training mode".into());
            }
            if spatial.is_some_and(|s| s != 1) {
                return Err("BatchNormalization with spatial=0".into());
            }
            Nn::BatchNorm { epsilon: *epsilon }
        }
        N::Dropout { .. } => {
            if info.has_input(2) {
                match info.constant(2) {
                    Some(t) if t.to_f64_vec().iter().all(|&v| v == 0.0) => {}
                    _ => return Err("Dropout in training mode (or unknown mode)".into()),
                }
            }
            if info.in_dtype(0) != Some(strata_ir::DType::F32) {
                return Err("Dropout of non-float32 data".into());
            }
            info.require_held(&[1, 2])?;
            return Ok(Nn::Identity { mask: info.node.outputs.get(1).is_some_and(|o| o.is_some()) });
        }
        _ => return Err(format!("no {} kernel on burn", op.name())),
    };
    info.require_f32(&[])?;
    Ok(k)
}

/// Geometry of a window over `x` ([N, C, spatial...]) with kernel sizes
/// `kernel`, as 2-D (a 1-D window gets a unit first axis).
struct Geometry2d {
    window: Window,
    stride: [usize; 2],
    dilation: [usize; 2],
    kernel: [usize; 2],
    pad_begin: [usize; 2],
    pad_end: [usize; 2],
    input: [usize; 2],
}

fn geometry(attrs: &WindowAttrs, spatial: &[usize], kernel: Vec<usize>) -> Result<Geometry2d, String> {
    let window = attrs.window(spatial, kernel)?;
    let f = window.fixed::<2>(spatial).ok_or("more than 2 spatial axes")?;
    let pad = |v: [i64; 2]| -> Result<[usize; 2], String> {
        Ok([usize::try_from(v[0]).map_err(|_| "negative pads")?, usize::try_from(v[1]).map_err(|_| "negative pads")?])
    };
    Ok(Geometry2d {
        stride: f.strides,
        dilation: f.dilations,
        kernel: f.kernel,
        pad_begin: pad(f.pad_begin)?,
        pad_end: pad(f.pad_end)?,
        input: f.input,
        window,
    })
}

/// `x` ([N, C, spatial...], rank 3 or 4) as burn rank 4.
fn as_4d<B: Backend>(x: &BurnTensor<B>) -> Result<FloatTensor<B>, String> {
    match x.shape.as_slice() {
        [n, c, l] => Ok(x.reshaped(&[*n, *c, 1, *l])),
        [_, _, _, _] => Ok(x.f()?),
        s => Err(format!("input of shape {s:?} is not [N, C, L] or [N, C, H, W]")),
    }
}

/// A burn rank-4 result as the logical shape [N, C, out...].
fn from_4d<B: Backend>(p: FloatTensor<B>, n: usize, c: usize, out: &[usize]) -> BurnTensor<B> {
    let mut shape = vec![n, c];
    shape.extend_from_slice(out);
    let t = BurnTensor::<B>::new(p.shape().to_vec(), p);
    let p = t.reshaped(&shape);
    BurnTensor::new(shape, p)
}

fn matmul<B: Backend>(a: &BurnTensor<B>, b: &BurnTensor<B>) -> Result<BurnTensor<B>, String> {
    if a.shape.is_empty() || b.shape.is_empty() {
        return Err("MatMul of a scalar".into());
    }
    let a2 = if a.shape.len() == 1 { vec![1, a.shape[0]] } else { a.shape.clone() };
    let b2 = if b.shape.len() == 1 { vec![b.shape[0], 1] } else { b.shape.clone() };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return Err(format!("shapes {:?} and {:?} do not multiply", a.shape, b.shape));
    }
    let batch = broadcast(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
    let full = |t: &BurnTensor<B>, s2: &[usize], rows: usize, cols: usize| {
        let mut to = batch.clone();
        to.extend([rows, cols]);
        let t = BurnTensor::<B>::new(s2.to_vec(), t.reshaped(s2));
        expand_to(&t, &to)
    };
    let p = B::float_matmul(full(a, &a2, m, k), full(b, &b2, k, n));
    let mut shape = batch.clone();
    if a.shape.len() > 1 {
        shape.push(m);
    }
    if b.shape.len() > 1 {
        shape.push(n);
    }
    let t = BurnTensor::<B>::new(p.shape().to_vec(), p);
    let p = t.reshaped(&shape);
    Ok(BurnTensor::new(shape, p))
}

/// A per-channel vector ([C]) broadcast over `x` ([N, C, ...]).
fn per_channel<B: Backend>(v: &BurnTensor<B>, x: &[usize]) -> Result<FloatTensor<B>, String> {
    if x.len() < 2 || v.shape != [x[1]] {
        return Err(format!("per-channel operand of shape {:?} does not fit input {x:?}", v.shape));
    }
    let mut s = vec![1; x.len()];
    s[1] = x[1];
    let t = BurnTensor::<B>::new(s.clone(), v.reshaped(&s));
    Ok(expand_to(&t, x))
}

/// |x|^p.
fn lp_power<B: Backend>(x: FloatTensor<B>, p: i64) -> FloatTensor<B> {
    let a = B::float_abs(x);
    match p {
        1 => a,
        2 => B::float_mul(a.clone(), a),
        p => B::float_powf_scalar(a, Scalar::from(p as f32)),
    }
}

/// s^(1/p).
fn lp_root<B: Backend>(s: FloatTensor<B>, p: i64) -> FloatTensor<B> {
    match p {
        1 => s,
        2 => B::float_sqrt(s),
        p => B::float_powf_scalar(s, Scalar::from(1.0 / p as f32)),
    }
}

impl Nn {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Out<B> {
        let x = input(ins, 0)?;
        match self {
            Nn::Identity { mask } => {
                let mut outs = vec![x.clone()];
                if *mask {
                    let ones = B::bool_ones(crate::tensor::burn_shape(&x.shape), device, crate::tensor::BOOL);
                    outs.push(BurnTensor::of(x.shape.clone(), strata_ir::DType::Bool, crate::tensor::Prim::Bool(ones)));
                }
                Ok(outs)
            }
            Nn::MatMul => Ok(vec![matmul(x, input(ins, 1)?)?]),
            Nn::Gemm { alpha, beta, trans_a, trans_b } => {
                let w = input(ins, 1)?;
                if x.shape.len() != 2 || w.shape.len() != 2 {
                    return Err("Gemm operands are not 2-D".into());
                }
                let (mut a, mut b) = (x.clone(), w.clone());
                if *trans_a {
                    a = BurnTensor::new(vec![a.shape[1], a.shape[0]], B::float_transpose(a.f()?));
                }
                if *trans_b {
                    b = BurnTensor::new(vec![b.shape[1], b.shape[0]], B::float_transpose(b.f()?));
                }
                let mut y = matmul(&a, &b)?;
                if *alpha != 1.0 {
                    y = BurnTensor::new(y.shape.clone(), B::float_mul_scalar(y.f()?, Scalar::from(*alpha)));
                }
                if let Some(c) = ins.get(2).copied().flatten()
                    && *beta != 0.0
                {
                    let mut c = c.clone();
                    if *beta != 1.0 {
                        c = BurnTensor::new(c.shape.clone(), B::float_mul_scalar(c.f()?, Scalar::from(*beta)));
                    }
                    if broadcast(&c.shape, &y.shape)? != y.shape {
                        return Err(format!("C of shape {:?} does not broadcast to {:?}", c.shape, y.shape));
                    }
                    y = broadcast_binary(Binary::Add, &y, &c)?;
                }
                Ok(vec![y])
            }
            Nn::Conv { window, group, kernel_shape } => {
                let w = input(ins, 1)?;
                let r = x.shape.len();
                if w.shape.len() != r || !(3..=4).contains(&r) {
                    return Err(format!("input {:?} and weights {:?} are not 1-D or 2-D", x.shape, w.shape));
                }
                let kernel = w.shape[2..].to_vec();
                if kernel.contains(&0) {
                    return Err(format!("empty kernel in weights {:?}", w.shape));
                }
                if let Some(k) = kernel_shape
                    && k.iter().map(|&v| v as usize).ne(kernel.iter().copied())
                {
                    return Err(format!("kernel_shape {k:?} does not match weights {:?}", w.shape));
                }
                let (n, c, m) = (x.shape[0], x.shape[1], w.shape[0]);
                if c != w.shape[1] * group || m % group != 0 {
                    return Err(format!("{c} input channels, weights {:?} and group {group} disagree", w.shape));
                }
                let g = geometry(window, &x.shape[2..], kernel)?;
                let options = ConvOptions {
                    stride: g.stride,
                    padding: [(g.pad_begin[0], g.pad_end[0]), (g.pad_begin[1], g.pad_end[1])],
                    dilation: g.dilation,
                    groups: *group,
                };
                let bias = match ins.get(2).copied().flatten() {
                    Some(b) if b.shape == [m] => Some(b.f()?),
                    Some(b) => return Err(format!("bias of shape {:?} for {m} output channels", b.shape)),
                    None => None,
                };
                let p = B::conv2d(as_4d(x)?, as_4d(w)?, bias, options);
                Ok(vec![from_4d(p, n, m, &g.window.out)])
            }
            Nn::Pool { pool, window } => {
                let r = x.shape.len();
                if !(3..=4).contains(&r) {
                    return Err(format!("input {:?} is not 1-D or 2-D", x.shape));
                }
                let (n, c) = (x.shape[0], x.shape[1]);
                let kernel = positive(window.kernel_shape.as_ref().ok_or("no kernel_shape")?, r - 2, "kernel_shape")?;
                let g = geometry(window, &x.shape[2..], kernel)?;
                // Explicit padding (any padding, and the extra end padding
                // of ceil_mode) for pooling run unpadded.
                let fo = g.window.fixed::<2>(&x.shape[2..]).ok_or("more than 2 spatial axes")?.out;
                let mut pads = [(0, 0); 4];
                for i in 0..2 {
                    let extent = (g.kernel[i] - 1) * g.dilation[i] + 1;
                    let need = ((fo[i] - 1) * g.stride[i] + extent).saturating_sub(g.input[i] + g.pad_begin[i]);
                    pads[2 + i] = (g.pad_begin[i], need);
                }
                let padded = |fill: f32, p: FloatTensor<B>| {
                    if pads.iter().any(|&(b, e)| b + e > 0) {
                        B::float_pad(p, &pads, PadMode::Constant(fill))
                    } else {
                        p
                    }
                };
                let p = match pool {
                    Pool::Max => {
                        let p = padded(f32::NEG_INFINITY, as_4d(x)?);
                        B::max_pool2d(p, g.kernel, g.stride, [0, 0], g.dilation, false)
                    }
                    Pool::Lp(lp) => {
                        // Zeros add nothing to the sum: mean over the full window times its size.
                        let pw = padded(0.0, lp_power::<B>(as_4d(x)?, *lp));
                        let mean = B::avg_pool2d(pw, g.kernel, g.stride, [0, 0], true, false);
                        let sum = B::float_mul_scalar(mean, Scalar::from((g.kernel[0] * g.kernel[1]) as f32));
                        lp_root::<B>(sum, *lp)
                    }
                    Pool::Avg { count_include_pad } => {
                        if g.pad_begin != g.pad_end {
                            return Err("asymmetric padding".into());
                        }
                        B::avg_pool2d(as_4d(x)?, g.kernel, g.stride, g.pad_begin, *count_include_pad, false)
                    }
                };
                Ok(vec![from_4d(p, n, c, &g.window.out)])
            }
            Nn::Global(pool) => {
                let r = x.shape.len();
                if r < 3 || x.shape[2..].contains(&0) {
                    return Err(format!("cannot pool input of shape {:?}", x.shape));
                }
                let mut p = x.f()?;
                if let Pool::Lp(lp) = pool {
                    p = lp_power::<B>(p, *lp);
                }
                for d in 2..r {
                    p = match pool {
                        Pool::Max => B::float_max_dim(p, d),
                        Pool::Avg { .. } => B::float_mean_dim(p, d),
                        Pool::Lp(_) => B::float_sum_dim(p, d),
                    };
                }
                if let Pool::Lp(lp) = pool {
                    p = lp_root::<B>(p, *lp);
                }
                let shape: Vec<usize> = (0..r).map(|i| if i < 2 { x.shape[i] } else { 1 }).collect();
                Ok(vec![BurnTensor::new(shape, p)])
            }
            Nn::BatchNorm { epsilon } => {
                let s = &x.shape;
                let arg = |i: usize| -> Result<FloatTensor<B>, String> { per_channel(input(ins, i)?, s) };
                let (scale, bias, mean, var) = (arg(1)?, arg(2)?, arg(3)?, arg(4)?);
                let std = B::float_sqrt(B::float_add_scalar(var, Scalar::from(*epsilon)));
                let y = B::float_div(B::float_sub(x.f()?, mean), std);
                let y = B::float_add(B::float_mul(y, scale), bias);
                Ok(vec![BurnTensor::new(s.clone(), y)])
            }
        }
    }
}
