//! Data movement and tensor construction: reshaping, indexing, gathering and
//! scattering, padding, constants, ranges and random generators.

use crate::dtype::DType;
use crate::tensor::TensorData;

crate::attr::attr_enum! {
    /// Pad's `mode`: fill with a constant, or read the input reflected
    /// about its edges, clamped to them, or wrapped around.
    pub enum PadMode {
        Constant = "constant",
        Reflect = "reflect",
        Edge = "edge",
        Wrap = "wrap",
    }
}

crate::attr::attr_enum! {
    /// DepthToSpace / SpaceToDepth `mode`: depth-column-row or
    /// column-row-depth order of the moved channels.
    pub enum BlockOrder {
        Dcr = "DCR",
        Crd = "CRD",
    }
}

crate::attr::attr_enum! {
    /// ImageDecoder's `pixel_format`.
    pub enum PixelFormat {
        Rgb = "RGB",
        Bgr = "BGR",
        Grayscale = "Grayscale",
    }
}

crate::attr::attr_enum! {
    /// TensorScatter's `mode`: write positions past the cache's end are
    /// out of range (`linear`) or wrap around (`circular`).
    pub enum CacheMode {
        Linear = "linear",
        Circular = "circular",
    }
}

crate::attr::attr_enum! {
    /// ScatterElements / ScatterND `reduction`: how an update combines
    /// with the value it lands on.
    pub enum ScatterReduction {
        None = "none",
        Add = "add",
        Mul = "mul",
        Max = "max",
        Min = "min",
    }
}

crate::op_family! {
    /// Data-movement and tensor-construction operators.
    pub enum TensorOp {
        /// `shape` attribute is the opset-1 form.
        Reshape { allowzero: i64 = 0, shape: Option<Vec<i64>> },
        Flatten { axis: i64 = 1 },
        Squeeze { axes: Option<Vec<i64>> },
        Unsqueeze { axes: Option<Vec<i64>> },
        Transpose { perm: Option<Vec<i64>> },
        Concat { axis: i64 },
        Split { axis: i64 = 0, num_outputs: Option<i64>, split: Option<Vec<i64>> },
        /// `starts`/`ends`/`axes` attributes are the pre-opset-10 form.
        Slice { starts: Option<Vec<i64>>, ends: Option<Vec<i64>>, axes: Option<Vec<i64>> },
        Gather { axis: i64 = 0 },
        GatherElements { axis: i64 = 0 },
        GatherND { batch_dims: i64 = 0 },
        Scatter { axis: i64 = 0 },
        ScatterElements { axis: i64 = 0, reduction: ScatterReduction = ScatterReduction::None },
        ScatterND { reduction: ScatterReduction = ScatterReduction::None },
        /// Inputs: past cache, update, optional write indices (one per batch entry).
        TensorScatter { axis: i64 = -2, mode: CacheMode = CacheMode::Linear },
        Expand {},
        Tile {},
        /// `pads`/`value` attributes are the pre-opset-11 form.
        Pad { mode: PadMode = PadMode::Constant, pads: Option<Vec<i64>>, value: Option<f32> },
        CenterCropPad { axes: Option<Vec<i64>> },
        Shape { start: i64 = 0, end: Option<i64> },
        Size {},
        ConstantOfShape { value: Option<TensorData> },
        /// A constant; importers fold every `value_*` form into `value`.
        Constant { value: TensorData },
        Range {},
        EyeLike { dtype: Option<DType>, k: i64 = 0 },
        OneHot { axis: i64 = -1 },
        NonZero {},
        Compress { axis: Option<i64> },
        ReverseSequence { batch_axis: i64 = 1, time_axis: i64 = 0 },
        DepthToSpace { blocksize: i64, mode: BlockOrder = BlockOrder::Dcr },
        SpaceToDepth { blocksize: i64, mode: BlockOrder = BlockOrder::Dcr },
        Trilu { upper: i64 = 1 },
        Unique { axis: Option<i64>, sorted: i64 = 1 },
        ImageDecoder { pixel_format: PixelFormat = PixelFormat::Rgb },
    }
}

use crate::shape::{In, Outs, first, known, norm, same, t};
use crate::types::Dim;

impl TensorOp {
    /// Shape inference (of a node with `n_outputs` outputs): from the input
    /// shapes, and from constant inputs where the output shape depends on
    /// values (Reshape's shape, Unsqueeze's axes, ConstantOfShape, ...).
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, n_outputs: usize, ins: &[In]) -> Outs {
        use TensorOp as T;
        let (d0, s0) = first(ins);
        Ok(match self {
            T::Shape { start, end } => {
                let len = s0.as_ref().map(|s| {
                    let r = s.len() as i64;
                    let c = |v: i64| if v < 0 { (v + r).clamp(0, r) } else { v.clamp(0, r) };
                    (c(end.unwrap_or(r)) - c(*start)).max(0) as u64
                });
                vec![Some(t(DType::I64, Some(vec![len.map(Dim::Known).unwrap_or(Dim::Unknown)])))]
            }
            T::Size {} => vec![Some(t(DType::I64, Some(vec![])))],
            T::Constant { value } => vec![Some(t(value.dtype(), Some(known(value.shape()))))],
            T::ConstantOfShape { value } => {
                let d = value.as_ref().map(|v| v.dtype()).unwrap_or(DType::F32);
                let shape = ins
                    .first()
                    .and_then(|i| i.ints())
                    .map(|v| v.iter().map(|&x| Dim::Known(x.max(0) as u64)).collect());
                vec![Some(t(d, shape))]
            }
            T::Reshape { allowzero, .. } => {
                let shape = ins.get(1).and_then(|i| i.ints()).and_then(|target| {
                    let src = s0.as_deref();
                    let mut out: Vec<Dim> = Vec::with_capacity(target.len());
                    for (i, &v) in target.iter().enumerate() {
                        out.push(match v {
                            0 if *allowzero == 0 => src.and_then(|s| s.get(i)).cloned().unwrap_or(Dim::Unknown),
                            -1 => Dim::Unknown,
                            v if v >= 0 => Dim::Known(v as u64),
                            _ => return None,
                        });
                    }
                    // Resolve a single -1 when every other size is known.
                    if let (Some(src), Some(pos)) = (src, target.iter().position(|&v| v == -1)) {
                        let total: Option<u64> =
                            src.iter().map(|d| if let Dim::Known(n) = d { Some(*n) } else { None }).product();
                        let rest: Option<u64> = out
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| *i != pos)
                            .map(|(_, d)| if let Dim::Known(n) = d { Some(*n) } else { None })
                            .product();
                        if let (Some(t), Some(r)) = (total, rest)
                            && r > 0
                            && t % r == 0
                        {
                            out[pos] = Dim::Known(t / r);
                        }
                    }
                    Some(out)
                });
                same(d0, shape)
            }
            T::Transpose { perm } => same(
                d0,
                s0.map(|s| {
                    let p: Vec<usize> = perm
                        .clone()
                        .map(|p| p.iter().map(|&x| x as usize).collect())
                        .unwrap_or_else(|| (0..s.len()).rev().collect());
                    p.iter().map(|&i| s.get(i).cloned().unwrap_or(Dim::Unknown)).collect()
                }),
            ),
            T::Unsqueeze { axes } => {
                let axes = ins.get(1).and_then(|i| i.ints()).or(axes.clone());
                same(
                    d0,
                    s0.zip(axes).and_then(|(s, a)| {
                        let r = s.len() + a.len();
                        let a: Vec<usize> = a.iter().map(|&x| norm(x, r)).collect::<Option<_>>()?;
                        let mut it = s.into_iter();
                        Some(
                            (0..r)
                                .map(|i| if a.contains(&i) { Dim::Known(1) } else { it.next().unwrap_or(Dim::Unknown) })
                                .collect(),
                        )
                    }),
                )
            }
            T::Squeeze { axes } => {
                let axes = ins.get(1).and_then(|i| i.ints()).or(axes.clone());
                same(
                    d0,
                    s0.and_then(|s| match axes {
                        Some(a) => {
                            let a: Vec<usize> = a.iter().map(|&x| norm(x, s.len())).collect::<Option<_>>()?;
                            Some(s.iter().enumerate().filter(|(i, _)| !a.contains(i)).map(|(_, d)| d.clone()).collect())
                        }
                        None if s.iter().all(|d| matches!(d, Dim::Known(_))) => {
                            Some(s.iter().filter(|d| **d != Dim::Known(1)).cloned().collect())
                        }
                        None => None,
                    }),
                )
            }
            T::Flatten { axis } => same(
                d0,
                s0.and_then(|s| {
                    let r = s.len() as i64;
                    let a = if *axis < 0 { *axis + r } else { *axis };
                    let a = usize::try_from(a).ok().filter(|&a| a <= s.len())?;
                    let prod = |ds: &[Dim]| {
                        ds.iter()
                            .map(|d| if let Dim::Known(n) = d { Some(*n) } else { None })
                            .product::<Option<u64>>()
                            .map(Dim::Known)
                            .unwrap_or(Dim::Unknown)
                    };
                    Some(vec![prod(&s[..a]), prod(&s[a..])])
                }),
            ),
            T::Concat { axis } => {
                let shapes: Option<Vec<&[Dim]>> = ins.iter().map(|i| i.shape()).collect();
                same(
                    d0,
                    shapes.and_then(|ss| {
                        let first = ss.first()?;
                        let a = norm(*axis, first.len())?;
                        let mut out = first.to_vec();
                        let sum: Option<u64> =
                            ss.iter().map(|s| if let Some(Dim::Known(n)) = s.get(a) { Some(*n) } else { None }).sum();
                        out[a] = sum.map(Dim::Known).unwrap_or(Dim::Unknown);
                        Some(out)
                    }),
                )
            }
            T::Gather { axis } => {
                let idx = ins.get(1).and_then(|i| i.shape());
                same(
                    d0,
                    s0.zip(idx).and_then(|(s, ix)| {
                        let a = norm(*axis, s.len())?;
                        let mut out = s[..a].to_vec();
                        out.extend_from_slice(ix);
                        out.extend_from_slice(&s[a + 1..]);
                        Some(out)
                    }),
                )
            }
            T::NonZero {} => {
                vec![Some(t(DType::I64, s0.map(|s| vec![Dim::Known(s.len().max(1) as u64), Dim::Unknown])))]
            }
            T::Range {} => same(d0, Some(vec![Dim::Unknown])),
            T::EyeLike { dtype, .. } => vec![dtype.or(d0).map(|d| t(d, s0))],
            T::Unique { .. } => vec![
                d0.map(|d| t(d, None)),
                Some(t(DType::I64, None)),
                Some(t(DType::I64, None)),
                Some(t(DType::I64, None)),
            ],
            T::Expand {}
            | T::Tile {}
            | T::Pad { .. }
            | T::Slice { .. }
            | T::Split { .. }
            | T::OneHot { .. }
            | T::Compress { .. }
            | T::CenterCropPad { .. }
            | T::GatherND { .. } => (0..n_outputs.max(1)).map(|_| d0.map(|d| t(d, None))).collect(),
            T::GatherElements { .. } => same(d0, ins.get(1).and_then(|i| i.shape()).map(|s| s.to_vec())),
            T::Scatter { .. }
            | T::ScatterElements { .. }
            | T::ScatterND { .. }
            | T::Trilu { .. }
            | T::ReverseSequence { .. } => same(d0, s0),
            T::TensorScatter { .. } | T::DepthToSpace { .. } | T::SpaceToDepth { .. } | T::ImageDecoder { .. } => {
                vec![None]
            }
        })
    }
}

/// One sliced axis of a `Slice`: the output holds input indices `start`,
/// `start + step`, ... (`len` of them) along input axis `axis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceAxis {
    /// Input axis (normalised).
    pub axis: usize,
    /// First input index (0 when `len` is 0).
    pub start: usize,
    /// Step, never 0 (negative walks backwards).
    pub step: i64,
    /// Output length along the axis.
    pub len: usize,
}

/// `Slice`'s semantics over an input of `shape`, read by every backend:
/// negative starts and ends count from the end of their axis and are then
/// clamped to it (to `[0, d]` for positive steps, `[-1, d - 1]` for the end
/// of negative ones); `axes` (distinct, possibly negative) default to the
/// first `starts.len()` axes and `steps` (never 0) to 1.
pub fn slice_axes(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<SliceAxis>, String> {
    let (n, rank) = (starts.len(), shape.len());
    if n > rank {
        return Err(format!("{n} slice axes for an input of rank {rank}"));
    }
    let default_axes: Vec<i64> = (0..n as i64).collect();
    let axes = axes.unwrap_or(&default_axes);
    let ones = vec![1; n];
    let steps = steps.unwrap_or(&ones);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return Err("starts, ends, axes and steps must have the same length".into());
    }
    let mut seen = vec![false; rank];
    (0..n)
        .map(|k| {
            let a = axes[k];
            let axis = usize::try_from(if a < 0 { a + rank as i64 } else { a })
                .ok()
                .filter(|&x| x < rank)
                .ok_or_else(|| format!("slice axis {a} is out of range for rank {rank}"))?;
            if std::mem::replace(&mut seen[axis], true) {
                return Err(format!("slice axis {a} is repeated"));
            }
            let (d, s) = (shape[axis] as i128, steps[k] as i128);
            if s == 0 {
                return Err(format!("slice step for axis {axis} is 0"));
            }
            let from_end = |v: i64| if v < 0 { v as i128 + d } else { v as i128 };
            let (b, e) = if d == 0 {
                (0, 0)
            } else if s > 0 {
                (from_end(starts[k]).clamp(0, d), from_end(ends[k]).clamp(0, d))
            } else {
                (from_end(starts[k]).clamp(0, d - 1), from_end(ends[k]).clamp(-1, d - 1))
            };
            let len = if s > 0 && e > b {
                (e - b + s - 1) / s
            } else if s < 0 && b > e {
                (b - e - s - 1) / -s
            } else {
                0
            };
            let start = if len > 0 { b as usize } else { 0 };
            Ok(SliceAxis { axis, start, step: steps[k], len: len as usize })
        })
        .collect()
}

/// `Slice`'s attributes or inputs resolved over an input of `shape`, read by
/// every backend: the pre-opset-10 form's `starts`, `ends` and `axes`
/// attributes (unit steps), or else inputs 1 to 4 (starts, ends, axes,
/// steps), which `input` reads (`None` when absent); then [`slice_axes`].
/// `err` turns a message into the caller's error.
pub fn resolve_slice<E>(
    shape: &[usize],
    starts: &Option<Vec<i64>>,
    ends: &Option<Vec<i64>>,
    axes: &Option<Vec<i64>>,
    mut input: impl FnMut(usize) -> Result<Option<Vec<i64>>, E>,
    err: impl Fn(String) -> E,
) -> Result<Vec<SliceAxis>, E> {
    let (starts, ends, axes, steps) = match (starts, ends) {
        (Some(s), Some(e)) => (s.clone(), e.clone(), axes.clone(), None),
        (Some(_), None) | (None, Some(_)) => return Err(err("Slice needs both starts and ends".into())),
        (None, None) => (
            input(1)?.ok_or_else(|| err("Slice has no starts".into()))?,
            input(2)?.ok_or_else(|| err("Slice has no ends".into()))?,
            input(3)?,
            input(4)?,
        ),
    };
    slice_axes(shape, &starts, &ends, axes.as_deref(), steps.as_deref()).map_err(err)
}

#[cfg(test)]
mod slice_tests {
    use super::{SliceAxis, slice_axes};

    #[test]
    fn slice_axes_clamp_count_and_reject() {
        let s = |axis, start, step, len| SliceAxis { axis, start, step, len };
        assert_eq!(slice_axes(&[10], &[2], &[9], None, Some(&[3])).unwrap(), vec![s(0, 2, 3, 3)]);
        assert_eq!(slice_axes(&[10], &[-1], &[i64::MIN], None, Some(&[-4])).unwrap(), vec![s(0, 9, -4, 3)]);
        assert_eq!(slice_axes(&[4, 5], &[1], &[100], Some(&[-1]), None).unwrap(), vec![s(1, 1, 1, 4)]);
        assert_eq!(slice_axes(&[0], &[0], &[5], None, Some(&[-1])).unwrap(), vec![s(0, 0, -1, 0)]);
        assert_eq!(slice_axes(&[3], &[2], &[1], None, None).unwrap(), vec![s(0, 0, 1, 0)]);
        assert!(slice_axes(&[3], &[0], &[1], None, Some(&[0])).unwrap_err().contains("step"));
        assert!(slice_axes(&[3, 3], &[0, 0], &[1, 1], Some(&[1, -1]), None).unwrap_err().contains("repeated"));
        assert!(slice_axes(&[3], &[0], &[1], Some(&[1]), None).unwrap_err().contains("out of range"));
        assert!(slice_axes(&[3], &[0], &[1, 2], None, None).is_err());
    }
}
