//! `DFT` on the GPU (`dft.wgsl`): direct sums along one axis, forward,
//! inverse, one-sided (rfft) and one-sided inverse (irfft).

use super::*;
use crate::kernels::MAX_RANK;
use crate::shape::contiguous;
use crate::wgsl::wgsl_params;

wgsl_params! {
    /// `dft.wgsl`: `n` outputs; the transform of length `len` along `axis`
    /// of the `rank` leading axes (without the last, which holds (re) or
    /// (re, im): `complex_in`, `out_last`) reading `n_in` inputs; `sign` -1
    /// forward, +1 inverse; `irfft` rebuilds the Hermitian spectrum. Shapes
    /// and strides are of the full tensors, without the last axis.
    pub(crate) struct DftParams {
        n: u32, rank: u32, axis: u32, len: u32, n_in: u32, complex_in: u32, irfft: u32, sign: i32, out_last: u32,
        out_shape: [u32; 8], in_strides: [u32; 8], out_strides: [u32; 8],
    }
}

/// How a DFT runs: one `dft` dispatch.
#[derive(Debug)]
pub(crate) struct Plan {
    k: Kernel,
    /// The attribute axis (opsets 17-19); opset 20 gives it as input 2.
    axis: Option<i64>,
    inverse: bool,
    onesided: bool,
}

/// Plan an operator of the `SignalOp` family (routed here whole, so every
/// operator is named): a DFT (float input; `dft_length` and `axis` inputs
/// read on the host).
#[deny(clippy::wildcard_enum_match_arm)]
pub(super) fn plan(v: &NodeView, s: &SignalOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match s {
        SignalOp::DFT { axis, inverse, onesided } => {
            v.float(0)?;
            v.host(1, "dft_length")?;
            v.host(2, "axis")?;
            Ok(Plan {
                k: k.get(Shader::Dft, "dft", &[]),
                axis: *axis,
                inverse: *inverse != 0,
                onesided: *onesided != 0,
            })
        }
        // Generated on the device (`generate.rs`), routed from the caller.
        SignalOp::HannWindow { .. } | SignalOp::HammingWindow { .. } | SignalOp::BlackmanWindow { .. } => {
            Err("window functions are planned as generators".into())
        }
        // not supported here
        SignalOp::STFT { .. } | SignalOp::MelWeightMatrix { .. } => not_implemented(s.name()),
    }
}

impl Exec<'_> {
    /// `DFT` (axis from the attribute, opsets 17-19, or input 2, opset 20;
    /// `dft_length` from input 1; both read on the host).
    pub(super) fn signal(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let Plan { k, axis: axis_attr, inverse, onesided } = plan;
        let (axis_attr, inverse, onesided) = (*axis_attr, *inverse, *onesided);
        let x = self.input(0)?;
        let r = x.shape.len();
        if r < 2 || !matches!(x.shape[r - 1], 1 | 2) || r - 1 > MAX_RANK {
            return Err(GpuError::Shape(format!("DFT input {:?} must end in 1 or 2", x.shape)));
        }
        let axis = match (axis_attr, self.host_i64(2)?) {
            (Some(a), _) => Some(a),
            (None, Some(t)) if t.len() == 1 => Some(t[0]),
            (None, Some(_)) => return Err(GpuError::Shape("DFT axis must be a scalar".into())),
            (None, None) => None,
        };
        let dft_length = match self.host_i64(1)? {
            Some(t) if t.len() == 1 => Some(t[0]),
            Some(_) => return Err(GpuError::Shape("dft_length must be a scalar".into())),
            None => None,
        };
        let geo = strata_ir::ops::signal::dft_geometry(&x.shape, axis, dft_length, inverse, onesided)
            .map_err(GpuError::Shape)?;
        let strata_ir::ops::signal::DftGeometry { axis: ax, n_in, len, out_shape: shape, .. } = geo;
        if u32::try_from(len).is_err() {
            return Err(GpuError::Shape("invalid DFT length".into()));
        }
        let y = ctx.alloc(x.dtype, shape.clone())?;
        let n = y.numel();
        let (is, os) = (contiguous(&x.shape), contiguous(&shape));
        let p = DftParams {
            n,
            rank: r - 1,
            axis: ax,
            len,
            n_in,
            complex_in: usize::from(x.shape[r - 1] == 2),
            irfft: usize::from(inverse && onesided),
            sign: if inverse { 1 } else { -1 },
            out_last: shape[r - 1],
            out_shape: shape[..r - 1].to_vec(),
            in_strides: is[..r - 1].to_vec(),
            out_strides: os[..r - 1].to_vec(),
        };
        ctx.dispatch_n(k, &p.words()?, &y, &[x], n)?;
        Ok(vec![y])
    }
}
