//! Tensors generated from host parameters on the GPU (`generate.wgsl`):
//! `ConstantOfShape`, `Range`, `EyeLike`, the window functions (Hann,
//! Hamming, Blackman), and `Dropout` in inference mode (its input, and an
//! all-true mask).

use super::*;
use crate::shape::f32w;
use crate::wgsl::wgsl_params;

wgsl_params! {
    /// `generate.wgsl`'s `fill`: every element is `word`.
    pub(crate) struct FillParams { n: u32, word: u32 }
    /// `generate.wgsl`'s `range`: `start + i * delta`, read as f32 (`DT` 0)
    /// or as i32 (`start_int`, `delta_int`).
    pub(crate) struct RangeParams { n: u32, start: f32, delta: f32, start_int: i32, delta_int: i32 }
    /// `generate.wgsl`'s `eye`: `one` (the output type's bits of 1) where
    /// column - row == k, else 0.
    pub(crate) struct EyeParams { n: u32, cols: u32, k: i32, one: u32 }
    /// `generate.wgsl`'s `window`: `n` values of window `kind` (0 Hann,
    /// 1 Hamming, 2 Blackman) with period `denom` (size, or size - 1 when
    /// symmetric; 0 gives NaN, as the formula does).
    pub(crate) struct WindowParams { n: u32, denom: u32, kind: u32 }
}

/// How a generating node runs.
#[derive(Debug)]
pub(crate) enum Plan {
    /// A `fill` with `value` (zero when absent) over the shape of input 0.
    ConstantOfShape { fill: Kernel, value: Option<TensorData> },
    /// `range` from the host scalars start, limit, delta.
    Range { k: Kernel },
    /// `eye` of input 0's shape, diagonal `k`.
    EyeLike { eye: Kernel, k: i64 },
    /// The input itself; the mask, when wanted, a `fill`.
    Dropout { fill: Option<Kernel> },
    /// `window` of the length in input 0 (read on the host).
    Window { k: Kernel, kind: u32, periodic: bool },
}

/// Plan HannWindow (`kind` 0), HammingWindow (1) or BlackmanWindow (2):
/// float32 output, the size read on the host.
pub(super) fn plan_window(
    v: &NodeView,
    kind: u32,
    output_datatype: DType,
    periodic: i64,
    k: &mut Kernels,
) -> std::result::Result<Plan, String> {
    if output_datatype != DType::F32 {
        return Err(format!("window of type {output_datatype} (the GPU kernel writes float32)"));
    }
    v.host(0, "size")?;
    Ok(Plan::Window { k: k.get(Shader::Generate, "window", &[]), kind, periodic: periodic != 0 })
}

/// Plan `ConstantOfShape`, `Range` or `EyeLike`.
pub(super) fn plan(v: &NodeView, t: &T, k: &mut Kernels) -> std::result::Result<Plan, String> {
    match t {
        T::ConstantOfShape { value } => {
            v.host(0, "shape")?;
            if let Some(c) = value
                && !gpu_dtype(c.dtype())
            {
                return Err(format!("ConstantOfShape value of type {}", c.dtype()));
            }
            Ok(Plan::ConstantOfShape { fill: k.get(Shader::Generate, "fill", &[]), value: value.clone() })
        }
        T::Range {} => {
            let d = v.dev(0)?;
            if !is_f32_or_i32(dt_code(d)) {
                return Err(format!("Range on {d}"));
            }
            for (i, w) in [(0, "start"), (1, "limit"), (2, "delta")] {
                v.host(i, w)?;
            }
            Ok(Plan::Range { k: k.get(Shader::Generate, "range", &[("DT", dt_code(d))]) })
        }
        T::EyeLike { k: diag, .. } => {
            v.dev(0)?;
            Ok(Plan::EyeLike { eye: k.get(Shader::Generate, "eye", &[]), k: *diag })
        }
        other => not_implemented(other.name()),
    }
}

/// Plan `Dropout`: inference mode only (no `training_mode` input, or a constant false one).
pub(super) fn plan_dropout(v: &NodeView, k: &mut Kernels) -> std::result::Result<Plan, String> {
    v.dev(0)?;
    if let Some(t) = v.input(2) {
        match v.g.initializer(t) {
            Some(c) if c.to_i64_vec().iter().all(|&x| x == 0) => {}
            None if !v.need_const => {}
            _ => return Err("Dropout in training mode (training_mode input not a constant false)".into()),
        }
    }
    Ok(Plan::Dropout { fill: v.wants(1).then(|| k.get(Shader::Generate, "fill", &[])) })
}

/// The 32-bit device word of a one-element host tensor (f32 bits, i32 for
/// integers, 0/1 for bool), or why it cannot be represented.
fn scalar_word(t: &TensorData) -> Result<u32> {
    if t.numel() != 1 {
        return Err(GpuError::Shape(format!("expected one element, got shape {:?}", t.shape())));
    }
    Ok(match word_class(t.dtype()) {
        Some(Word::F32) => f32w(t.to_f64_vec()[0] as f32),
        Some(Word::Bool) => u32::from(t.to_f64_vec()[0] != 0.0),
        Some(Word::I32) => {
            let v = t.to_i64_vec()[0];
            i32::try_from(v).map_err(|_| GpuError::Value(format!("{v} does not fit in i32")))? as u32
        }
        Some(Word::U32) => {
            let v = t.to_i64_vec()[0];
            u32::try_from(v).map_err(|_| GpuError::Value(format!("{v} does not fit in u32")))?
        }
        None => return Err(GpuError::Unsupported(format!("{} values", t.dtype()))),
    })
}

impl Exec<'_> {
    pub(super) fn generate(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let out = self.out_dtype(0)?;
        match plan {
            Plan::Dropout { fill } => {
                if self.has_input(2) {
                    match self.host(2) {
                        Some(t) if t.to_i64_vec().iter().all(|&x| x == 0) => {}
                        _ => return Err(GpuError::Unsupported("Dropout in training mode".into())),
                    }
                }
                let x = self.input(0)?;
                let mut outs = vec![x.clone()];
                if let Some(fill) = fill {
                    let mask = ctx.alloc(DType::Bool, x.shape.clone())?;
                    let n = mask.numel();
                    ctx.dispatch_n(fill, &FillParams { n, word: 1 }.words()?, &mask, &[], n)?;
                    outs.push(mask);
                }
                Ok(outs)
            }
            Plan::ConstantOfShape { fill, value } => {
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
                ctx.dispatch_n(fill, &FillParams { n, word: word as usize }.words()?, &y, &[], n)?;
                Ok(vec![y])
            }
            Plan::Range { k } => {
                let vals: Vec<&TensorData> = (0..3)
                    .map(|i| {
                        self.host(i)
                            .ok_or_else(|| GpuError::Unsupported(format!("Range input {i} must be known on the host")))
                    })
                    .collect::<Result<_>>()?;
                if vals.iter().any(|v| v.numel() != 1) {
                    return Err(GpuError::Shape("Range inputs must be scalars".into()));
                }
                let p = if is_float_word(out) {
                    let [s, l, d] = [0, 1, 2].map(|i| vals[i].to_f64_vec()[0]);
                    if d == 0.0 || !d.is_finite() || !s.is_finite() || !l.is_finite() {
                        return Err(GpuError::Shape("Range needs finite values and a non-zero delta".into()));
                    }
                    let n = ((l - s) / d).ceil().max(0.0);
                    if n > u32::MAX as f64 {
                        return Err(GpuError::Limit("Range too long".into()));
                    }
                    RangeParams { n: n as usize, start: s as f32, delta: d as f32, ..Default::default() }
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
                    RangeParams {
                        n: usize::try_from(n).map_err(|_| GpuError::Limit("Range too long".into()))?,
                        start_int: s as i64,
                        delta_int: d as i64,
                        ..Default::default()
                    }
                };
                let y = ctx.alloc(out, vec![p.n])?;
                ctx.dispatch_n(k, &p.words()?, &y, &[], p.n)?;
                Ok(vec![y])
            }
            Plan::Window { k, kind, periodic } => {
                let size = match self.host_i64(0)?.as_deref() {
                    Some(&[s]) => s,
                    _ => return Err(GpuError::Shape("the window size must be a scalar known on the host".into())),
                };
                let n = usize::try_from(size).map_err(|_| GpuError::Shape(format!("window size {size} < 0")))?;
                if u32::try_from(n).is_err() {
                    return Err(GpuError::Limit(format!("window size {n}")));
                }
                let denom = if *periodic { n } else { n.saturating_sub(1) };
                let y = ctx.alloc(out, vec![n])?;
                ctx.dispatch_n(k, &WindowParams { n, denom, kind: *kind as usize }.words()?, &y, &[], n)?;
                Ok(vec![y])
            }
            Plan::EyeLike { eye, k } => {
                let x = self.input(0)?;
                if x.shape.len() != 2 {
                    return Err(GpuError::Shape(format!("EyeLike input must be 2-D, got {:?}", x.shape)));
                }
                let one = if is_float_word(out) { f32w(1.0) } else { 1 };
                let k = (*k).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
                let y = ctx.alloc(out, x.shape.clone())?;
                let n = y.numel();
                let p = EyeParams { n, cols: x.shape[1].max(1), k, one: one as usize };
                ctx.dispatch_n(eye, &p.words()?, &y, &[], n)?;
                Ok(vec![y])
            }
        }
    }
}
