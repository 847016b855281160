//! Data movement (`movement.wgsl`): views that share their input's buffer
//! (Reshape, Flatten, Squeeze, Unsqueeze, constants), strided copies
//! (Transpose, Concat, Slice, Split, Expand, Tile, DepthToSpace /
//! SpaceToDepth), Gather, GatherElements, Trilu, Pad and CenterCropPad.

use super::*;
use crate::kernels::MAX_RANK;
use crate::shape::{broadcast, bstrides, check_rank, contiguous, f32w, norm_axis};
use crate::wgsl::{Params, wgsl_codes, wgsl_params};
use strata_ir::ops::tensor::{BlockOrder, PadMode};

wgsl_codes! {
    /// `PAD_MODE` of `pad`.
    pub(crate) mod pad_mode: PAD { CONSTANT = 0, EDGE = 1, REFLECT = 2, WRAP = 3 }
}

wgsl_params! {
    /// `copy_strided`: `n` elements of `shape` (rank `rank`) from `in_off` +
    /// coordinates . `in_strides` (signed) to `out_off` + coordinates . `out_strides`.
    pub(crate) struct CopyStridedParams {
        n: u32, rank: u32, in_off: i32, out_off: u32, shape: [u32; 8], in_strides: [i32; 8], out_strides: [u32; 8],
    }
    /// `gather` along one axis of size `axis_dim`, `inner` elements after it, `nidx` indices.
    pub(crate) struct GatherParams { n: u32, axis_dim: u32, inner: u32, nidx: u32 }
    /// `trilu` over trailing `rows` x `cols` matrices, diagonal `k`, `upper` (0/1).
    pub(crate) struct TriluParams { n: u32, rows: u32, cols: u32, k: i32, upper: u32 }
    /// `pad`: the input (`in_shape`, `in_strides`) starts at `pad_begin` in
    /// the output (`out_shape`); `value` is the constant's 32-bit word.
    pub(crate) struct PadParams {
        n: u32, rank: u32, value: u32, out_shape: [u32; 8], in_shape: [u32; 8], pad_begin: [i32; 8], in_strides: [u32; 8],
    }
    /// `gather_elements` along `axis` (size `axis_dim`) with indices of `idx_shape`.
    pub(crate) struct GatherElementsParams {
        n: u32, rank: u32, axis: u32, axis_dim: u32, idx_shape: [u32; 8], data_strides: [u32; 8],
    }
}

/// How a data-movement node runs.
#[derive(Debug)]
pub(crate) enum Plan {
    /// A view of the input's buffer (or the constant uploaded at compile time).
    View(View),
    /// A strided copy with `copy_strided`.
    Strided {
        copy: Kernel,
        op: Strided,
    },
    Gather {
        k: Kernel,
        axis: i64,
    },
    /// A `gather` of the slices the condition (input 1, read on the host)
    /// keeps, along `axis` or over the flattened input.
    Compress {
        k: Kernel,
        axis: Option<i64>,
    },
    GatherElements {
        k: Kernel,
        axis: i64,
    },
    Trilu {
        k: Kernel,
        upper: i64,
    },
    /// `pad`, its mode (`constant`, `edge` or `reflect`) an override of the kernel.
    Pad {
        k: Kernel,
        pads: Option<Vec<i64>>,
        value: Option<f32>,
        constant: bool,
    },
    CenterCropPad {
        k: Kernel,
        axes: Option<Vec<i64>>,
    },
}

/// Operators whose output shares the input's buffer.
#[derive(Debug)]
pub(crate) enum View {
    Constant,
    Reshape { allowzero: i64, shape: Option<Vec<i64>> },
    Flatten { axis: i64 },
    Squeeze { axes: Option<Vec<i64>> },
    Unsqueeze { axes: Option<Vec<i64>> },
}

/// Operators that are strided copies.
#[derive(Debug)]
pub(crate) enum Strided {
    Transpose {
        perm: Option<Vec<i64>>,
    },
    Concat {
        axis: i64,
    },
    Slice {
        starts: Option<Vec<i64>>,
        ends: Option<Vec<i64>>,
        axes: Option<Vec<i64>>,
    },
    Split {
        axis: i64,
        num_outputs: Option<i64>,
        split: Option<Vec<i64>>,
    },
    Expand,
    Tile,
    /// DepthToSpace (`to_space`) or SpaceToDepth, in CRD or DCR order.
    SpaceDepth {
        blocksize: i64,
        crd: bool,
        to_space: bool,
    },
}

/// Plan an operator of the `TensorOp` family: every operator is named
/// here; generators, indexed reads and scatters go to their own planners,
/// the rest is data movement planned here.
#[deny(clippy::wildcard_enum_match_arm)]
pub(super) fn plan(v: &NodeView, t: &T, k: &mut Kernels) -> std::result::Result<super::Plan, String> {
    let movement = match t {
        T::ConstantOfShape { .. } | T::Range {} | T::EyeLike { .. } => {
            return Ok(super::Plan::Generate(generate::plan(v, t, k)?));
        }
        T::GatherND { .. } | T::ReverseSequence { .. } => return Ok(super::Plan::Index(index::plan(v, t, k)?)),
        T::ScatterElements { .. }
        | T::ScatterND { .. }
        | T::Scatter { .. }
        | T::TensorScatter { .. }
        | T::OneHot { .. } => return Ok(super::Plan::Scatter(scatter::plan(v, t, k)?)),
        // not supported here
        T::Shape { .. } | T::Size { .. } | T::NonZero { .. } | T::Unique { .. } | T::ImageDecoder { .. } => {
            return not_implemented(t.name());
        }
        T::Constant { value } => {
            if gpu_dtype(value.dtype()) {
                Ok(Plan::View(View::Constant))
            } else {
                Err(format!("constant of type {}", value.dtype()))
            }
        }
        T::Reshape { allowzero, shape } => {
            v.dev(0)?;
            v.host(1, "shape")?;
            Ok(Plan::View(View::Reshape { allowzero: *allowzero, shape: shape.clone() }))
        }
        T::Expand {} => {
            v.dev(0)?;
            if v.input(1).is_none() {
                return Err("Expand without a shape".into());
            }
            v.host(1, "shape")?;
            Ok(Plan::Strided { copy: k.copy(), op: Strided::Expand })
        }
        T::Flatten { axis } => {
            v.dev(0)?;
            Ok(Plan::View(View::Flatten { axis: *axis }))
        }
        T::Squeeze { axes } => {
            v.dev(0)?;
            v.host(1, "axes")?;
            Ok(Plan::View(View::Squeeze { axes: axes.clone() }))
        }
        T::Unsqueeze { axes } => {
            v.dev(0)?;
            v.host(1, "axes")?;
            Ok(Plan::View(View::Unsqueeze { axes: axes.clone() }))
        }
        T::Transpose { perm } => {
            v.dev(0)?;
            Ok(Plan::Strided { copy: k.copy(), op: Strided::Transpose { perm: perm.clone() } })
        }
        T::Concat { axis } => {
            let d = v.dev(0)?;
            for i in 0..v.n.inputs.len() {
                if v.dev(i)? != d {
                    return Err("Concat inputs differ in type".into());
                }
            }
            Ok(Plan::Strided { copy: k.copy(), op: Strided::Concat { axis: *axis } })
        }
        T::Slice { starts, ends, axes } => {
            v.dev(0)?;
            for (i, w) in [(1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")] {
                v.host(i, w)?;
            }
            Ok(Plan::Strided {
                copy: k.copy(),
                op: Strided::Slice { starts: starts.clone(), ends: ends.clone(), axes: axes.clone() },
            })
        }
        T::Split { axis, num_outputs, split } => {
            v.dev(0)?;
            v.host(1, "split")?;
            Ok(Plan::Strided {
                copy: k.copy(),
                op: Strided::Split { axis: *axis, num_outputs: *num_outputs, split: split.clone() },
            })
        }
        T::Gather { axis } => {
            v.dev(0)?;
            v.int(1, "Gather indices")?;
            Ok(Plan::Gather { k: k.get(Shader::Movement, "gather", &[]), axis: *axis })
        }
        T::DepthToSpace { blocksize, mode } | T::SpaceToDepth { blocksize, mode } => {
            v.dev(0)?;
            let to_space = matches!(t, T::DepthToSpace { .. });
            Ok(Plan::Strided {
                copy: k.copy(),
                op: Strided::SpaceDepth { blocksize: *blocksize, crd: *mode == BlockOrder::Crd, to_space },
            })
        }
        T::Tile {} => {
            v.dev(0)?;
            v.host(1, "repeats")?;
            Ok(Plan::Strided { copy: k.copy(), op: Strided::Tile })
        }
        T::Trilu { upper } => {
            v.dev(0)?;
            v.host(1, "k")?;
            Ok(Plan::Trilu { k: k.get(Shader::Movement, "trilu", &[]), upper: *upper })
        }
        T::Compress { axis } => {
            v.dev(0)?;
            v.host(1, "condition")?;
            Ok(Plan::Compress { k: k.get(Shader::Movement, "gather", &[]), axis: *axis })
        }
        T::GatherElements { axis } => {
            v.dev(0)?;
            v.int(1, "GatherElements indices")?;
            Ok(Plan::GatherElements { k: k.get(Shader::Movement, "gather_elements", &[]), axis: *axis })
        }
        T::Pad { mode, pads, value } => {
            v.dev(0)?;
            v.host(1, "pads")?;
            v.host(2, "constant_value")?;
            v.host(3, "axes")?;
            let m = match mode {
                PadMode::Constant => pad_mode::CONSTANT,
                PadMode::Edge => pad_mode::EDGE,
                PadMode::Reflect => pad_mode::REFLECT,
                PadMode::Wrap => pad_mode::WRAP,
            };
            let k = k.get(Shader::Movement, "pad", &[("PAD_MODE", m)]);
            Ok(Plan::Pad { k, pads: pads.clone(), value: *value, constant: m == pad_mode::CONSTANT })
        }
        T::CenterCropPad { axes } => {
            v.dev(0)?;
            v.host(1, "shape")?;
            Ok(Plan::CenterCropPad {
                k: k.get(Shader::Movement, "pad", &[("PAD_MODE", pad_mode::CONSTANT)]),
                axes: axes.clone(),
            })
        }
    };
    movement.map(super::Plan::Movement)
}

impl Exec<'_> {
    /// Strided copy of `shape` from `src` into `dst` (`copy_strided`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy(
        &self,
        ctx: &mut Ctx,
        k: &Kernel,
        dst: &GpuTensor,
        src: &GpuTensor,
        shape: &[usize],
        in_off: i64,
        in_strides: &[i64],
        out_off: usize,
        out_strides: &[usize],
    ) -> Result<()> {
        check_rank(shape)?;
        let n = strata_ir::tensor::checked_numel(shape).ok_or_else(|| GpuError::Limit("shape overflows".into()))?;
        let p = CopyStridedParams {
            n,
            rank: shape.len(),
            in_off,
            out_off,
            shape: shape.to_vec(),
            in_strides: in_strides.to_vec(),
            out_strides: out_strides.to_vec(),
        };
        ctx.dispatch_n(k, &p.words()?, dst, &[src], n)
    }
    pub(super) fn movement(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let out = self.out_dtype(0)?;
        match plan {
            Plan::View(v) => self.view(v),
            Plan::Strided { copy, op } => self.strided(ctx, copy, op),
            Plan::Gather { k, axis } => {
                let x = self.input(0)?;
                let idx = self.input(1)?;
                let a = norm_axis(*axis, x.shape.len())?;
                let dim = x.shape[a];
                if let Some(h) = self.host(1) {
                    for v in h.to_i64_vec() {
                        if v < -(dim as i64) || v >= dim as i64 {
                            return Err(GpuError::Value(format!("Gather index {v} out of range for axis size {dim}")));
                        }
                    }
                }
                Ok(vec![gather(ctx, k, x, idx, a, out)?])
            }
            Plan::Compress { k, axis } => {
                let x = self.input(0)?;
                let cond = self
                    .host(1)
                    .ok_or_else(|| GpuError::Unsupported("the Compress condition must be known on the host".into()))?;
                let (src, a) = match axis {
                    Some(ax) => (x.clone(), norm_axis(*ax, x.shape.len())?),
                    None => (GpuTensor { shape: vec![x.numel()], ..x.clone() }, 0),
                };
                if cond.shape().len() != 1 || cond.numel() > src.shape[a] {
                    return Err(GpuError::Shape(format!(
                        "condition of shape {:?} for an axis of {} elements",
                        cond.shape(),
                        src.shape[a]
                    )));
                }
                let keep: Vec<i64> =
                    cond.to_f64_vec().iter().enumerate().filter(|(_, c)| **c != 0.0).map(|(i, _)| i as i64).collect();
                let idx = TensorData::from_i64(vec![keep.len()], &keep).map_err(|e| GpuError::Shape(e.to_string()))?;
                let idx = ctx.dev.upload(&idx)?;
                Ok(vec![gather(ctx, k, &src, &idx, a, out)?])
            }
            Plan::Trilu { k: kern, upper } => {
                let x = self.input(0)?;
                let r = x.shape.len();
                if r < 2 {
                    return Err(GpuError::Shape("Trilu needs rank >= 2".into()));
                }
                let k = match self.host_i64(1)? {
                    Some(v) => *v.first().ok_or_else(|| GpuError::Shape("empty k".into()))?,
                    None => 0,
                };
                let k = k.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                let y = ctx.alloc(out, x.shape.clone())?;
                let n = y.numel();
                let p = TriluParams {
                    n,
                    rows: x.shape[r - 2],
                    cols: x.shape[r - 1],
                    k: i64::from(k),
                    upper: usize::from(*upper != 0),
                };
                ctx.dispatch_n(kern, &p.words()?, &y, &[x], n)?;
                Ok(vec![y])
            }
            Plan::GatherElements { k, axis } => {
                let (x, idx) = (self.input(0)?, self.input(1)?);
                let r = x.shape.len();
                check_rank(&x.shape)?;
                let a = norm_axis(*axis, r)?;
                if idx.shape.len() != r {
                    return Err(GpuError::Shape(format!(
                        "GatherElements indices rank {} != data rank {r}",
                        idx.shape.len()
                    )));
                }
                let dim = x.shape[a];
                if let Some(h) = self.host(1)
                    && let Some(v) = h.to_i64_vec().into_iter().find(|&v| v < -(dim as i64) || v >= dim as i64)
                {
                    return Err(GpuError::Value(format!("GatherElements index {v} out of range for axis size {dim}")));
                }
                let y = ctx.alloc(out, idx.shape.clone())?;
                let n = y.numel();
                if n > 0 && dim == 0 {
                    return Err(GpuError::Value("GatherElements from an empty axis".into()));
                }
                let p = GatherElementsParams {
                    n,
                    rank: r,
                    axis: a,
                    axis_dim: dim,
                    idx_shape: idx.shape.clone(),
                    data_strides: contiguous(&x.shape),
                };
                ctx.dispatch_n(k, &p.words()?, &y, &[x, idx], n)?;
                Ok(vec![y])
            }
            Plan::Pad { k, pads, value, constant } => {
                let x = self.input(0)?;
                let r = x.shape.len();
                check_rank(&x.shape)?;
                let pads = self
                    .host_i64(1)?
                    .or_else(|| pads.clone())
                    .ok_or_else(|| GpuError::Shape("Pad without pads".into()))?;
                let axes: Vec<usize> = match self.host_i64(3)? {
                    Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
                    None => (0..r).collect(),
                };
                if pads.len() != 2 * axes.len() {
                    return Err(GpuError::Shape(format!("{} pads for {} axes", pads.len(), axes.len())));
                }
                let mut begin = vec![0i64; r];
                let mut end = vec![0i64; r];
                for (k, &a) in axes.iter().enumerate() {
                    begin[a] = pads[k];
                    end[a] = pads[k + axes.len()];
                }
                let mut shape = Vec::with_capacity(r);
                for i in 0..r {
                    let d = x.shape[i] as i64 + begin[i] + end[i];
                    if d < 0 {
                        return Err(GpuError::Shape("negative padded size".into()));
                    }
                    if x.shape[i] == 0 && d > 0 && !*constant {
                        return Err(GpuError::Shape("edge/reflect padding of an empty axis".into()));
                    }
                    shape.push(d as usize);
                }
                let cv = match self.host(2) {
                    Some(h) if h.numel() >= 1 => h.to_f64_vec()[0],
                    _ => f64::from(value.unwrap_or(0.0)),
                };
                let word = match word_class(x.dtype) {
                    Some(crate::device::Word::F32) => f32w(cv as f32),
                    Some(crate::device::Word::Bool) => u32::from(cv != 0.0),
                    Some(crate::device::Word::U32) => (cv as i64).clamp(0, u32::MAX as i64) as u32,
                    _ => (cv as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32 as u32,
                };
                Ok(vec![pad(ctx, k, x, out, shape, &begin, word)?])
            }
            Plan::CenterCropPad { k, axes } => self.center_crop_pad(ctx, k, axes),
        }
    }

    /// Views of the input's buffer: no dispatch.
    fn view(&self, v: &View) -> Result<Vec<GpuTensor>> {
        let out = self.out_dtype(0)?;
        match v {
            View::Constant => {
                let v = self.n.outputs[0].ok_or_else(|| GpuError::Shape("Constant without output".into()))?;
                let c = self.g.consts.get(&v).cloned();
                c.map(|c| vec![c]).ok_or_else(|| {
                    GpuError::Value(
                        self.g.not_uploaded.get(&v).cloned().unwrap_or_else(|| "constant not uploaded".into()),
                    )
                })
            }
            View::Reshape { allowzero, shape } => {
                let x = self.input(0)?;
                let spec = match self.host_i64(1)? {
                    Some(s) => s,
                    None => shape.clone().ok_or_else(|| GpuError::Shape("Reshape without a shape".into()))?,
                };
                let mut dims = Vec::with_capacity(spec.len());
                let mut infer = None;
                for (i, &d) in spec.iter().enumerate() {
                    if d == -1 {
                        if infer.replace(i).is_some() {
                            return Err(GpuError::Shape("more than one -1 in Reshape".into()));
                        }
                        dims.push(1);
                    } else if d == 0 && *allowzero == 0 {
                        dims.push(
                            *x.shape.get(i).ok_or_else(|| GpuError::Shape("0 in Reshape beyond input rank".into()))?,
                        );
                    } else if d < 0 {
                        return Err(GpuError::Shape(format!("invalid Reshape dimension {d}")));
                    } else {
                        dims.push(usize::try_from(d).map_err(|_| GpuError::Shape("dimension too large".into()))?);
                    }
                }
                let known =
                    strata_ir::tensor::checked_numel(&dims).ok_or_else(|| GpuError::Shape("shape overflows".into()))?;
                if let Some(i) = infer {
                    if known == 0 || x.numel() % known != 0 {
                        return Err(GpuError::Shape(format!("cannot reshape {:?} to {spec:?}", x.shape)));
                    }
                    dims[i] = x.numel() / known;
                }
                if strata_ir::tensor::checked_numel(&dims) != Some(x.numel()) {
                    return Err(GpuError::Shape(format!("cannot reshape {:?} to {spec:?}", x.shape)));
                }
                Ok(vec![x.view(out, dims)])
            }
            View::Flatten { axis } => {
                let x = self.input(0)?;
                let r = x.shape.len() as i64;
                let a = if *axis < 0 { axis + r } else { *axis };
                if !(0..=r).contains(&a) {
                    return Err(GpuError::Shape(format!("Flatten axis {axis} out of range")));
                }
                let a = a as usize;
                let outer: usize = x.shape[..a].iter().product();
                let inner: usize = x.shape[a..].iter().product();
                Ok(vec![x.view(out, vec![outer, inner])])
            }
            View::Squeeze { axes } => {
                let x = self.input(0)?;
                let axes = match self.host_i64(1)? {
                    Some(a) => Some(a),
                    None => axes.clone(),
                };
                let r = x.shape.len();
                let drop: Vec<usize> = match axes {
                    Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
                    None => (0..r).filter(|&i| x.shape[i] == 1).collect(),
                };
                for &d in &drop {
                    if x.shape[d] != 1 {
                        return Err(GpuError::Shape(format!("cannot squeeze axis {d} of size {}", x.shape[d])));
                    }
                }
                let dims = (0..r).filter(|i| !drop.contains(i)).map(|i| x.shape[i]).collect();
                Ok(vec![x.view(out, dims)])
            }
            View::Unsqueeze { axes } => {
                let x = self.input(0)?;
                let axes = match self.host_i64(1)? {
                    Some(a) => a,
                    None => axes.clone().ok_or_else(|| GpuError::Shape("Unsqueeze without axes".into()))?,
                };
                let r = x.shape.len() + axes.len();
                let mut ins: Vec<usize> = axes.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?;
                ins.sort_unstable();
                ins.dedup();
                if ins.len() != axes.len() {
                    return Err(GpuError::Shape("repeated Unsqueeze axis".into()));
                }
                let mut src = x.shape.iter();
                let dims = (0..r).map(|i| if ins.contains(&i) { 1 } else { *src.next().unwrap_or(&1) }).collect();
                Ok(vec![x.view(out, dims)])
            }
        }
    }

    /// Strided copies with `copy_strided`.
    fn strided(&self, ctx: &mut Ctx, copy: &Kernel, op: &Strided) -> Result<Vec<GpuTensor>> {
        let out = self.out_dtype(0)?;
        match op {
            Strided::Transpose { perm } => {
                let x = self.input(0)?;
                let r = x.shape.len();
                let perm: Vec<usize> = match perm {
                    Some(p) => p.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
                    None => (0..r).rev().collect(),
                };
                let mut seen = vec![false; r];
                if perm.len() != r || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
                    return Err(GpuError::Shape(format!("invalid permutation {perm:?}")));
                }
                let cs = contiguous(&x.shape);
                let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
                let is: Vec<i64> = perm.iter().map(|&p| cs[p] as i64).collect();
                let y = ctx.alloc(out, shape.clone())?;
                self.copy(ctx, copy, &y, x, &shape, 0, &is, 0, &contiguous(&shape))?;
                Ok(vec![y])
            }
            Strided::Concat { axis } => {
                let first = self.input(0)?;
                let r = first.shape.len();
                let a = norm_axis(*axis, r)?;
                let mut shape = first.shape.clone();
                shape[a] = 0;
                for i in 0..self.n.inputs.len() {
                    let t = self.input(i)?;
                    if t.shape.len() != r || (0..r).any(|k| k != a && t.shape[k] != first.shape[k]) {
                        return Err(GpuError::Shape(format!(
                            "Concat shapes {:?} and {:?} differ",
                            first.shape, t.shape
                        )));
                    }
                    shape[a] += t.shape[a];
                }
                let y = ctx.alloc(out, shape.clone())?;
                let os = contiguous(&shape);
                let mut at = 0usize;
                for i in 0..self.n.inputs.len() {
                    let t = self.input(i)?;
                    let is: Vec<i64> = contiguous(&t.shape).iter().map(|&s| s as i64).collect();
                    self.copy(ctx, copy, &y, t, &t.shape, 0, &is, at * os[a], &os)?;
                    at += t.shape[a];
                }
                Ok(vec![y])
            }
            Strided::Slice { starts, ends, axes } => {
                let x = self.input(0)?;
                let sliced = strata_ir::ops::tensor::resolve_slice(
                    &x.shape,
                    starts,
                    ends,
                    axes,
                    |i| self.host_i64(i),
                    GpuError::Shape,
                )?;
                let cs = contiguous(&x.shape);
                let mut shape = x.shape.clone();
                let mut is: Vec<i64> = cs.iter().map(|&s| s as i64).collect();
                let mut off = 0i64;
                for sa in sliced {
                    shape[sa.axis] = sa.len;
                    off += sa.start as i64 * cs[sa.axis] as i64;
                    is[sa.axis] = cs[sa.axis] as i64 * sa.step;
                }
                let y = ctx.alloc(out, shape.clone())?;
                self.copy(ctx, copy, &y, x, &shape, off, &is, 0, &contiguous(&shape))?;
                Ok(vec![y])
            }
            Strided::Split { axis, num_outputs, split } => {
                let x = self.input(0)?;
                let a = norm_axis(*axis, x.shape.len())?;
                let dim = x.shape[a];
                let k = self.n.outputs.len();
                let sizes: Vec<usize> = match self.host_i64(1)?.or_else(|| split.clone()) {
                    Some(s) => s
                        .iter()
                        .map(|&v| usize::try_from(v).map_err(|_| GpuError::Shape("negative split".into())))
                        .collect::<Result<_>>()?,
                    None => {
                        let parts = num_outputs.map(|n| n as usize).unwrap_or(k).max(1);
                        let each = dim.div_ceil(parts);
                        (0..parts).map(|i| each.min(dim.saturating_sub(i * each))).collect()
                    }
                };
                if sizes.iter().sum::<usize>() != dim || sizes.len() != k {
                    return Err(GpuError::Shape(format!(
                        "split {sizes:?} does not match axis size {dim} and {k} outputs"
                    )));
                }
                let cs = contiguous(&x.shape);
                let is: Vec<i64> = cs.iter().map(|&s| s as i64).collect();
                let mut res = Vec::with_capacity(k);
                let mut at = 0usize;
                for &sz in &sizes {
                    let mut shape = x.shape.clone();
                    shape[a] = sz;
                    let y = ctx.alloc(x.dtype, shape.clone())?;
                    self.copy(ctx, copy, &y, x, &shape, (at * cs[a]) as i64, &is, 0, &contiguous(&shape))?;
                    at += sz;
                    res.push(y);
                }
                Ok(res)
            }
            Strided::Expand => {
                let x = self.input(0)?;
                let spec = self.host_i64(1)?.ok_or_else(|| GpuError::Shape("Expand without shape".into()))?;
                let spec: Vec<usize> = spec
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| GpuError::Shape("negative dimension".into())))
                    .collect::<Result<_>>()?;
                let shape = broadcast(&[&x.shape, &spec])?;
                let is: Vec<i64> = bstrides(&x.shape, &shape).iter().map(|&s| s as i64).collect();
                let y = ctx.alloc(out, shape.clone())?;
                self.copy(ctx, copy, &y, x, &shape, 0, &is, 0, &contiguous(&shape))?;
                Ok(vec![y])
            }
            Strided::SpaceDepth { blocksize, crd, to_space } => {
                let x = self.input(0)?;
                if x.shape.len() != 4 {
                    let name = if *to_space { "DepthToSpace" } else { "SpaceToDepth" };
                    return Err(GpuError::Shape(format!("{name} needs a 4-D input")));
                }
                let b = usize::try_from(*blocksize)
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| GpuError::Shape("bad blocksize".into()))?;
                let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                let (view, perm, shape) = if *to_space {
                    if c % (b * b) != 0 {
                        return Err(GpuError::Shape(format!("channels {c} not divisible by blocksize^2")));
                    }
                    let cc = c / (b * b);
                    let shape = vec![n, cc, h * b, w * b];
                    if *crd {
                        (vec![n, cc, b, b, h, w], [0, 1, 4, 2, 5, 3], shape)
                    } else {
                        (vec![n, b, b, cc, h, w], [0, 3, 4, 1, 5, 2], shape)
                    }
                } else {
                    if h % b != 0 || w % b != 0 {
                        return Err(GpuError::Shape(format!("spatial size {h}x{w} not divisible by blocksize {b}")));
                    }
                    let perm = if *crd { [0, 1, 3, 5, 2, 4] } else { [0, 3, 5, 1, 2, 4] };
                    (vec![n, c, h / b, b, w / b, b], perm, vec![n, c * b * b, h / b, w / b])
                };
                let cs = contiguous(&view);
                let oshape: Vec<usize> = perm.iter().map(|&p| view[p]).collect();
                let is: Vec<i64> = perm.iter().map(|&p| cs[p] as i64).collect();
                let y = ctx.alloc(out, shape)?;
                self.copy(ctx, copy, &y, x, &oshape, 0, &is, 0, &contiguous(&oshape))?;
                Ok(vec![y])
            }
            Strided::Tile => {
                let x = self.input(0)?;
                let r = x.shape.len();
                let reps = self.host_i64(1)?.ok_or_else(|| GpuError::Shape("Tile without repeats".into()))?;
                if reps.len() != r {
                    return Err(GpuError::Shape(format!("Tile repeats has {} entries for rank {r}", reps.len())));
                }
                if 2 * r > MAX_RANK {
                    return Err(GpuError::Unsupported(format!(
                        "Tile of rank {r} (at most {} on the GPU)",
                        MAX_RANK / 2
                    )));
                }
                let reps: Vec<usize> = reps
                    .iter()
                    .map(|&v| usize::try_from(v).map_err(|_| GpuError::Shape(format!("negative repeat {v}"))))
                    .collect::<Result<_>>()?;
                let cs = contiguous(&x.shape);
                let mut view = Vec::with_capacity(2 * r);
                let mut is = Vec::with_capacity(2 * r);
                let mut shape = Vec::with_capacity(r);
                for k in 0..r {
                    view.extend([reps[k], x.shape[k]]);
                    is.extend([0, cs[k] as i64]);
                    shape.push(
                        reps[k]
                            .checked_mul(x.shape[k])
                            .ok_or_else(|| GpuError::Limit("Tile output overflows".into()))?,
                    );
                }
                let y = ctx.alloc(out, shape)?;
                self.copy(ctx, copy, &y, x, &view, 0, &is, 0, &contiguous(&view))?;
                Ok(vec![y])
            }
        }
    }

    /// `CenterCropPad` (target shape read on the host).
    fn center_crop_pad(&self, ctx: &mut Ctx, k: &Kernel, axes: &Option<Vec<i64>>) -> Result<Vec<GpuTensor>> {
        let x = self.input(0)?;
        let r = x.shape.len();
        check_rank(&x.shape)?;
        let target = self.host_i64(1)?.ok_or_else(|| GpuError::Shape("CenterCropPad without a shape".into()))?;
        let axes: Vec<usize> = match axes {
            Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
            None => (0..r).collect(),
        };
        if axes.len() != target.len() {
            return Err(GpuError::Shape(format!("{} sizes for {} axes", target.len(), axes.len())));
        }
        let mut shape = x.shape.clone();
        let mut begin = vec![0i64; r];
        for (&a, &t) in axes.iter().zip(&target) {
            let t = usize::try_from(t).map_err(|_| GpuError::Shape(format!("negative size {t}")))?;
            let d = x.shape[a];
            shape[a] = t;
            begin[a] = if t < d { -(((d - t) / 2) as i64) } else { ((t - d) / 2) as i64 };
        }
        Ok(vec![pad(ctx, k, x, x.dtype, shape, &begin, 0)?])
    }
}

/// `pad` of `x` into a new tensor of `shape`: the input starts at offset
/// `begin` per axis (negative: cropped); elements outside it are `word`
/// (constant mode) or taken from the edge / reflected.
fn pad(
    ctx: &mut Ctx,
    k: &Kernel,
    x: &GpuTensor,
    dtype: DType,
    shape: Vec<usize>,
    begin: &[i64],
    word: u32,
) -> Result<GpuTensor> {
    let r = x.shape.len();
    let y = ctx.alloc(dtype, shape)?;
    let n = y.numel();
    let p = PadParams {
        n,
        rank: r,
        value: word as usize,
        out_shape: y.shape.clone(),
        in_shape: x.shape.clone(),
        pad_begin: begin[..r].to_vec(),
        in_strides: contiguous(&x.shape),
    };
    ctx.dispatch_n(k, &p.words()?, &y, &[x], n)?;
    Ok(y)
}

/// `gather` of `idx` (in range) along axis `a` of `x`: `x`'s shape with
/// axis `a` replaced by `idx`'s.
fn gather(ctx: &mut Ctx, k: &Kernel, x: &GpuTensor, idx: &GpuTensor, a: usize, out: DType) -> Result<GpuTensor> {
    let dim = x.shape[a];
    let mut shape = x.shape[..a].to_vec();
    shape.extend_from_slice(&idx.shape);
    shape.extend_from_slice(&x.shape[a + 1..]);
    let y = ctx.alloc(out, shape)?;
    let n = y.numel();
    if n > 0 && dim == 0 {
        return Err(GpuError::Value("Gather from an empty axis".into()));
    }
    let inner: usize = x.shape[a + 1..].iter().product();
    let p = GatherParams { n, axis_dim: dim, inner: inner.max(1), nidx: idx.numel().max(1) };
    ctx.dispatch_n(k, &p.words()?, &y, &[x, idx], n)?;
    Ok(y)
}
