//! QuantizeLinear and DequantizeLinear (`quantize` / `dequantize` of
//! `elementwise.wgsl`): per-tensor, per-axis and blocked scales.

use super::*;
use crate::shape::norm_axis;
use crate::wgsl::{Params, wgsl_params};

wgsl_params! {
    /// `quantize` / `dequantize` of `elementwise.wgsl` over `n` elements:
    /// where each element's scale and zero point are ([`qindex`]: x's
    /// elements after the axis, the axis' size, the block size, then the
    /// outer, block and inner strides), whether there is a zero point, and
    /// for `quantize` whether the output is a float type, the integer
    /// output's range and the working precision (0 f32, 1 f16, 2 bf16).
    pub(crate) struct QuantParams {
        n: u32, float_out: u32, scale_index: [u32; 6], zero_index: [u32; 6], has_zero: u32, lo: i32, hi: i32, work: u32,
    }
}

/// How a (de)quantisation runs: one `quantize` or `dequantize` dispatch.
#[derive(Debug)]
pub(crate) struct Plan {
    k: Kernel,
    axis: i64,
    block_size: i64,
    /// QuantizeLinear: the working precision code (0 f32, 1 f16, 2 bf16).
    quantize: Option<u32>,
}

/// Plan QuantizeLinear or DequantizeLinear.
pub(super) fn plan(v: &NodeView, q: &QuantOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    let out = v.n.outputs.first().copied().flatten().and_then(|o| v.g.value(o).ty.dtype());
    let out = out.ok_or("output of unknown type")?;
    match q {
        QuantOp::QuantizeLinear { precision, axis, block_size, .. } => {
            v.float(0)?;
            v.float(1)?;
            let work = quant_work(v.dt(0)?, v.dt(1)?, *precision)?;
            let float_out =
                matches!(out, DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F4E2M1);
            let int_out = matches!(
                out,
                DType::U8 | DType::I8 | DType::U16 | DType::I16 | DType::U4 | DType::I4 | DType::U2 | DType::I2
            );
            if !float_out && !int_out {
                return Err(format!("QuantizeLinear to {out}"));
            }
            let zdt = if v.input(2).is_some() { dt_code(v.dev(2)?) } else { word_type::F32 };
            let k = k.get(Shader::Elementwise, "quantize", &[("DT", zdt)]);
            Ok(Plan { k, axis: *axis, block_size: *block_size, quantize: Some(work) })
        }
        QuantOp::DequantizeLinear { axis, block_size, .. } => {
            let x = v.dev(0)?;
            v.float(1)?;
            if x == DType::I32 || !(word_class(x) == Some(Word::I32) || is_float_word(x)) {
                return Err(format!("DequantizeLinear of {x} is not done on the GPU"));
            }
            if !is_float_word(out) {
                return Err(format!("DequantizeLinear to {out}"));
            }
            if v.input(2).is_some() {
                v.dev(2)?;
            }
            let k = k.get(Shader::Elementwise, "dequantize", &[("DT", dt_code(x))]);
            Ok(Plan { k, axis: *axis, block_size: *block_size, quantize: None })
        }
        other => not_implemented(other.name()),
    }
}

/// QuantizeLinear's working precision as the `round_work` code of
/// `elementwise.wgsl` (0 f32, 1 f16, 2 bf16): the `precision` attribute, or
/// the input's type when it equals the scale's, else float32.
fn quant_work(x: DType, scale: DType, precision: Option<DType>) -> std::result::Result<u32, String> {
    let work = precision.unwrap_or(if x == scale { x } else { DType::F32 });
    match work {
        DType::F32 => Ok(0),
        DType::F16 => Ok(1),
        DType::BF16 => Ok(2),
        d => Err(format!("QuantizeLinear in {d} precision is not done on the GPU")),
    }
}

/// The `qparam_index` words locating the scale (or zero point) of shape `p`
/// for each element of `x`: [inner, dim, block, outer stride, block stride,
/// inner stride].
fn qindex(x: &[usize], p: &[usize], axis: i64, block: i64) -> Result<[usize; 6]> {
    if p.iter().product::<usize>() == 1 {
        return Ok([1, 1, 1, 0, 0, 0]);
    }
    let ax = norm_axis(axis, x.len())?;
    let inner: usize = x[ax + 1..].iter().product();
    let dim = x[ax];
    if block == 0 {
        if p != [dim] {
            return Err(GpuError::Shape(format!("scale of shape {p:?} for input {x:?} along axis {ax}")));
        }
        return Ok([inner.max(1), dim.max(1), 1, 0, 1, 0]);
    }
    let bs = usize::try_from(block).ok().filter(|&b| b > 0).ok_or_else(|| GpuError::Shape("bad block_size".into()))?;
    let blocks = dim.div_ceil(bs);
    let mut want = x.to_vec();
    want[ax] = blocks;
    if p != want.as_slice() {
        return Err(GpuError::Shape(format!("blocked scale of shape {p:?} for input {x:?}: expected {want:?}")));
    }
    Ok([inner.max(1), dim.max(1), bs, blocks * inner, inner, 1])
}

impl Exec<'_> {
    pub(super) fn quant(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let (x, s) = (self.input(0)?, self.input(1)?);
        let z = self.opt_input(2);
        let to = self.out_dtype(0)?;
        let (axis, block) = (plan.axis, plan.block_size);
        let mut p =
            QuantParams { scale_index: qindex(&x.shape, &s.shape, axis, block)?.to_vec(), ..Default::default() };
        // Float8 zero points of DequantizeLinear are zero by definition and ignored.
        let z = z.filter(|_| {
            plan.quantize.is_some()
                || !matches!(x.dtype, DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ)
        });
        if let Some(z) = z {
            p.zero_index = qindex(&x.shape, &z.shape, axis, block)?.to_vec();
            p.has_zero = 1;
        }
        if let Some(work) = plan.quantize {
            p.float_out = usize::from(to.int_range().is_none());
            let (lo, hi) = to.int_range().unwrap_or((0, 0));
            // Quantised types are at most 16 bits wide.
            p.lo = lo.clamp(i32::MIN.into(), i32::MAX.into()) as i64;
            p.hi = hi.clamp(i32::MIN.into(), i32::MAX.into()) as i64;
            p.work = work as usize;
        }
        let y = ctx.alloc(to, x.shape.clone())?;
        let n = y.numel();
        p.n = n;
        ctx.dispatch_n(&plan.k, &p.words()?, &y, &[x, s, z.unwrap_or(s)], n)?;
        Ok(vec![y])
    }
}
