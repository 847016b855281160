//! Tensors generated from host parameters on the GPU (`generate.wgsl`):
//! `ConstantOfShape`, `Range` and `EyeLike`.

use super::*;

/// The 32-bit device word of a one-element host tensor (f32 bits, i32 for
/// integers, 0/1 for bool), or why it cannot be represented.
fn scalar_word(t: &TensorData) -> Result<u32> {
    if t.numel() != 1 {
        return Err(GpuError::Shape(format!("expected one element, got shape {:?}", t.shape())));
    }
    Ok(match crate::device::word_class(t.dtype()) {
        Some(crate::device::Word::F32) => f32w(t.to_f64_vec()[0] as f32),
        Some(crate::device::Word::Bool) => u32::from(t.to_f64_vec()[0] != 0.0),
        Some(crate::device::Word::I32) => {
            let v = t.to_i64_vec()[0];
            i32::try_from(v).map_err(|_| GpuError::Value(format!("{v} does not fit in i32")))? as u32
        }
        Some(crate::device::Word::U32) => {
            let v = t.to_i64_vec()[0];
            u32::try_from(v).map_err(|_| GpuError::Value(format!("{v} does not fit in u32")))?
        }
        None => return Err(GpuError::Unsupported(format!("{} values", t.dtype()))),
    })
}

impl Exec<'_> {
    /// `Dropout` in inference mode: the input itself and, when asked for,
    /// an all-true mask (a fill, pipeline 0).
    pub(super) fn dropout_inference(&self, ctx: &mut Ctx) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let mut outs = vec![x.clone()];
        if self.n.outputs.get(1).copied().flatten().is_some() {
            let mask = ctx.alloc(DType::Bool, x.shape.clone())?;
            let n = mask.numel();
            ctx.dispatch_n(&self.pipes[0], &[u32c(n)?, 1], &mask, &[], n)?;
            outs.push(mask);
        }
        Ok(outs)
    }

    /// `ConstantOfShape`, `Range`, `EyeLike` (one pipeline each).
    pub(super) fn generate(&self, ctx: &mut Ctx, t: &T) -> Result<Vec<GpuTensor>> {
        let out = self.out_dtype(0)?;
        match t {
            T::ConstantOfShape { value } => {
                let dims =
                    self.host_i64(0)?.ok_or_else(|| GpuError::Shape("ConstantOfShape without a shape".into()))?;
                let shape: Vec<usize> = dims
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| GpuError::Shape(format!("negative dimension {d}"))))
                    .collect::<Result<_>>()?;
                let word = match value {
                    Some(v) => scalar_word(v)?,
                    None => 0,
                };
                let y = ctx.alloc(out, shape)?;
                let n = y.numel();
                ctx.dispatch_n(&self.pipes[0], &[u32c(n)?, word], &y, &[], n)?;
                Ok(vec![y])
            }
            T::Range {} => {
                let vals: Vec<&TensorData> = (0..3)
                    .map(|i| {
                        self.host(i)
                            .ok_or_else(|| GpuError::Unsupported(format!("Range input {i} must be known on the host")))
                    })
                    .collect::<Result<_>>()?;
                if vals.iter().any(|v| v.numel() != 1) {
                    return Err(GpuError::Shape("Range inputs must be scalars".into()));
                }
                let (n, p1, p2) = if support::is_float_word(out) {
                    let [s, l, d] = [0, 1, 2].map(|i| vals[i].to_f64_vec()[0]);
                    if d == 0.0 || !d.is_finite() || !s.is_finite() || !l.is_finite() {
                        return Err(GpuError::Shape("Range needs finite values and a non-zero delta".into()));
                    }
                    let n = ((l - s) / d).ceil().max(0.0);
                    if n > u32::MAX as f64 {
                        return Err(GpuError::Limit("Range too long".into()));
                    }
                    (n as usize, f32w(s as f32), f32w(d as f32))
                } else {
                    let [s, l, d] = [0, 1, 2].map(|i| i128::from(vals[i].to_i64_vec()[0]));
                    if d == 0 {
                        return Err(GpuError::Shape("Range delta must not be 0".into()));
                    }
                    let (span, step) = if d > 0 { (l - s, d) } else { (s - l, -d) };
                    let n = if span > 0 { (span + step - 1) / step } else { 0 };
                    let last = s + (n - 1).max(0) * d;
                    if i32::try_from(s).is_err() || i32::try_from(d).is_err() || i32::try_from(last).is_err() {
                        return Err(GpuError::Value("Range values exceed i32".into()));
                    }
                    (
                        usize::try_from(n).map_err(|_| GpuError::Limit("Range too long".into()))?,
                        s as i32 as u32,
                        d as i32 as u32,
                    )
                };
                let y = ctx.alloc(out, vec![n])?;
                ctx.dispatch_n(&self.pipes[0], &[u32c(n)?, p1, p2], &y, &[], n)?;
                Ok(vec![y])
            }
            T::EyeLike { k, .. } => {
                let x = self.input(0)?;
                if x.shape.len() != 2 {
                    return Err(GpuError::Shape(format!("EyeLike input must be 2-D, got {:?}", x.shape)));
                }
                let one = if support::is_float_word(out) { f32w(1.0) } else { 1 };
                let k = i32::try_from(*k).unwrap_or(if *k < 0 { i32::MIN } else { i32::MAX });
                let y = ctx.alloc(out, x.shape.clone())?;
                let n = y.numel();
                ctx.dispatch_n(&self.pipes[0], &[u32c(n)?, u32c(x.shape[1].max(1))?, k as u32, one], &y, &[], n)?;
                Ok(vec![y])
            }
            other => Err(GpuError::Unsupported(format!("operator {}", other.name()))),
        }
    }
}
