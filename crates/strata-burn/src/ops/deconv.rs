//! ConvTranspose in 1-D and 2-D (1-D as 2-D with a unit height): burn's
//! `conv_transpose2d` without padding gives the full output; the ONNX
//! output is a window of it (geometry — pads, `auto_pad`, `output_padding`,
//! `output_shape` — from `strata_ir::window::transpose_geometry`), zero
//! where it reaches past the full output, so every padding form runs,
//! asymmetric included. The bias is added per channel afterwards.

use burn_backend::ops::{ConvTransposeOptions, PadMode};
use burn_backend::{Backend, Slice, TensorMetadata};
use strata_ir::ops::NnOp as N;
use strata_ir::window::{AutoPad, axis_attr, transpose_geometry};

use super::{NodeInfo, Out, Unsupported, expand_to, input};
use crate::tensor::BurnTensor;

/// A compiled ConvTranspose node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Deconv {
    auto_pad: AutoPad,
    dilations: Option<Vec<i64>>,
    group: usize,
    kernel_shape: Option<Vec<i64>>,
    output_padding: Option<Vec<i64>>,
    output_shape: Option<Vec<i64>>,
    pads: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
}

/// Plan ConvTranspose (`None`: another operator).
pub(crate) fn plan(op: &N, info: &NodeInfo) -> Option<Result<Deconv, Unsupported>> {
    let N::ConvTranspose { auto_pad, dilations, group, kernel_shape, output_padding, output_shape, pads, strides } = op
    else {
        return None;
    };
    let check = || -> Result<Deconv, Unsupported> {
        let rank = info.in_rank(0).or_else(|| info.constant(1).map(|t| t.shape().len()));
        if !matches!(rank, Some(3 | 4)) {
            return Err(format!("ConvTranspose of rank {rank:?} (burn runs 1-D and 2-D)"));
        }
        let group = usize::try_from(*group).ok().filter(|&g| g > 0).ok_or("group must be positive")?;
        info.require_f32(&[])?;
        Ok(Deconv {
            auto_pad: *auto_pad,
            dilations: dilations.clone(),
            group,
            kernel_shape: kernel_shape.clone(),
            output_padding: output_padding.clone(),
            output_shape: output_shape.clone(),
            pads: pads.clone(),
            strides: strides.clone(),
        })
    };
    Some(check())
}

/// A 1-D attribute as its 2-D form (a unit first axis).
fn two<T: Copy>(v: &[T], one: T) -> [T; 2] {
    if v.len() == 1 { [one, v[0]] } else { [v[0], v[1]] }
}

impl Deconv {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>]) -> Out<B> {
        let (x, w) = (input(ins, 0)?, input(ins, 1)?);
        let r = x.shape.len();
        if w.shape.len() != r || !(3..=4).contains(&r) {
            return Err(format!("input {:?} and weights {:?} are not 1-D or 2-D", x.shape, w.shape));
        }
        let nsp = r - 2;
        let (n, c) = (x.shape[0], x.shape[1]);
        if w.shape[0] != c || c % self.group != 0 {
            return Err(format!("{c} input channels, weights {:?} and group {}", w.shape, self.group));
        }
        let m = w.shape[1] * self.group;
        let kernel = w.shape[2..].to_vec();
        if let Some(k) = &self.kernel_shape
            && k.iter().map(|&v| v as usize).ne(kernel.iter().copied())
        {
            return Err(format!("kernel_shape {k:?} does not match weights {:?}", w.shape));
        }
        let strides = axis_attr(&self.strides, nsp, 1, "strides")?;
        let dilations = axis_attr(&self.dilations, nsp, 1, "dilations")?;
        let (out, pad_begin) = transpose_geometry(
            &x.shape[2..],
            &kernel,
            &strides,
            &dilations,
            &self.pads,
            self.auto_pad,
            &self.output_padding,
            &self.output_shape,
        )?;
        let as4 = |t: &BurnTensor<B>| {
            let mut s = t.shape[..2].to_vec();
            s.extend(two(&t.shape[2..], 1));
            t.reshaped(&s)
        };
        let options = ConvTransposeOptions::new(two(&strides, 1), [0, 0], [0, 0], two(&dilations, 1), self.group);
        let full = B::conv_transpose2d(as4(x), as4(w), None, options);
        let dims = full.shape().to_vec();
        // Window [begin, begin + out) of the full output, zero outside it.
        let (out2, begin2) = (two(&out, 1), two(&pad_begin, 0));
        let mut pads = [(0usize, 0usize); 4];
        let mut slices = vec![Slice::new(0, Some(n as isize), 1), Slice::new(0, Some(m as isize), 1)];
        for i in 0..2 {
            let b = begin2[i];
            let before = (-b).max(0) as usize;
            let end = b + out2[i] as i64;
            let after = (end - dims[2 + i] as i64).max(0) as usize;
            pads[2 + i] = (before, after);
            let start = b + before as i64;
            slices.push(Slice::new(start as isize, Some((start + out2[i] as i64) as isize), 1));
        }
        let mut y = full;
        if pads.iter().any(|&(b, e)| b + e > 0) {
            y = B::float_pad(y, &pads, PadMode::Constant(0.0));
        }
        let y = B::float_slice(y, &slices);
        let mut shape = vec![n, m];
        shape.extend_from_slice(&out);
        let mut y = BurnTensor::<B>::new(vec![n, m, out2[0], out2[1]], y).with_shape(shape.clone());
        if let Some(b) = ins.get(2).copied().flatten() {
            if b.shape != [m] {
                return Err(format!("bias of shape {:?} for {m} output channels", b.shape));
            }
            let mut s = vec![1; r];
            s[1] = m;
            let bias = expand_to(&b.with_shape(s), &shape);
            y = BurnTensor::new(shape.clone(), B::float_add(y.f()?, bias));
        }
        Ok(vec![y])
    }
}
