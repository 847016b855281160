//! Type and shape inference.
//!
//! Fills in the type of every value whose type is unknown, from the types of
//! node inputs and, where an operator's output shape depends on an input's
//! *values* (Reshape's shape, Slice's starts...), from constant inputs.
//! Dimensions stay symbolic where they are (`batch`), and become unknown
//! where they cannot be derived. Contradictions that are certain (MatMul
//! inner dimensions that differ, shapes that cannot broadcast) are errors
//! naming the node.

use crate::dtype::DType;
use crate::error::IrError;
use crate::graph::{Dim, GraphId, Model, Node, ValueId, ValueType};
use crate::ops::{ControlOp, ElementwiseOp as E, NnOp as N, Op, ReduceOp as R, TensorOp as T};
use crate::tensor::TensorData;

/// What inference knows about one input of a node.
struct In<'a> {
    ty: Option<&'a ValueType>,
    konst: Option<&'a TensorData>,
}

impl In<'_> {
    fn dtype(&self) -> Option<DType> {
        self.ty.and_then(|t| t.dtype())
    }
    fn shape(&self) -> Option<&[Dim]> {
        match self.ty {
            Some(ValueType::Tensor { shape: Some(s), .. }) => Some(s),
            _ => None,
        }
    }
    fn ints(&self) -> Option<Vec<i64>> {
        self.konst.filter(|t| t.dtype().is_int()).map(|t| t.to_i64_vec())
    }
}

fn known(v: &[usize]) -> Vec<Dim> {
    v.iter().map(|&d| Dim::Known(d as u64)).collect()
}

fn t(dtype: DType, shape: Option<Vec<Dim>>) -> ValueType {
    ValueType::Tensor { dtype, shape }
}

/// Broadcast two dimensions; `Err` when they certainly differ.
fn bdim(a: &Dim, b: &Dim) -> Result<Dim, String> {
    Ok(match (a, b) {
        (Dim::Known(1), x) | (x, Dim::Known(1)) => x.clone(),
        (Dim::Known(x), Dim::Known(y)) if x != y => return Err(format!("dimensions {x} and {y} cannot broadcast")),
        (x, y) if x == y => x.clone(),
        (Dim::Known(x), _) | (_, Dim::Known(x)) => Dim::Known(*x),
        _ => Dim::Unknown,
    })
}

/// Multidirectional broadcast of shapes (None if any is unknown).
pub fn broadcast(shapes: &[Option<&[Dim]>]) -> Result<Option<Vec<Dim>>, String> {
    let mut out: Vec<Dim> = Vec::new();
    for s in shapes {
        let Some(s) = s else { return Ok(None) };
        let rank = out.len().max(s.len());
        let mut next = vec![Dim::Known(1); rank];
        for (i, d) in next.iter_mut().enumerate() {
            let a = if i + out.len() >= rank { out[i + out.len() - rank].clone() } else { Dim::Known(1) };
            let b = if i + s.len() >= rank { s[i + s.len() - rank].clone() } else { Dim::Known(1) };
            *d = bdim(&a, &b)?;
        }
        out = next;
    }
    Ok(Some(out))
}

fn norm(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

fn reduce_shape(s: Option<&[Dim]>, axes: Option<Vec<i64>>, keepdims: bool, noop: bool) -> Option<Vec<Dim>> {
    let s = s?;
    let axes: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a.iter().map(|&x| norm(x, s.len())).collect::<Option<_>>()?,
        _ if noop => return Some(s.to_vec()),
        _ => (0..s.len()).collect(),
    };
    Some(
        s.iter()
            .enumerate()
            .filter_map(|(i, d)| match (axes.contains(&i), keepdims) {
                (true, true) => Some(Dim::Known(1)),
                (true, false) => None,
                (false, _) => Some(d.clone()),
            })
            .collect(),
    )
}

/// Output types of one node, as far as they can be inferred: one step per
/// operator family; other families' outputs stay unknown.
fn infer_node(node: &Node, ins: &[In]) -> Result<Vec<Option<ValueType>>, String> {
    match &node.op {
        Op::Elementwise(e) => infer_elementwise(e, ins),
        Op::Reduce(r) => infer_reduce(r, ins),
        Op::Nn(n) => infer_nn(n, ins),
        Op::Tensor(tn) => infer_tensor(tn, node, ins),
        _ => Ok(vec![None]),
    }
}

/// Output types of an elementwise node: the first input's or the broadcast shape.
fn infer_elementwise(e: &E, ins: &[In]) -> Result<Vec<Option<ValueType>>, String> {
    let i0 = ins.first();
    let d0 = i0.and_then(|i| i.dtype());
    let s0 = i0.and_then(|i| i.shape()).map(|s| s.to_vec());
    let same = |shape: Option<Vec<Dim>>| vec![d0.map(|d| t(d, shape))];
    let bshape = || broadcast(&ins.iter().map(|i| i.shape()).collect::<Vec<_>>());
    let out = match e {
        E::Equal {}
        | E::Greater {}
        | E::GreaterOrEqual {}
        | E::Less {}
        | E::LessOrEqual {}
        | E::And {}
        | E::Or {}
        | E::Xor {} => vec![Some(t(DType::Bool, bshape()?))],
        E::IsNaN {} | E::IsInf { .. } => vec![Some(t(DType::Bool, s0))],
        E::Not {} => vec![Some(t(DType::Bool, s0))],
        E::Where {} => {
            let d = ins.get(1).and_then(|i| i.dtype());
            vec![d.map(|d| Ok::<_, String>(t(d, bshape()?))).transpose()?]
        }
        E::Cast { to, .. } => vec![Some(t(*to, s0))],
        E::CastLike { .. } => vec![ins.get(1).and_then(|i| i.dtype()).map(|d| t(d, s0))],
        E::BitCast { to } => vec![Some(t(*to, s0))],
        E::Identity {} => vec![i0.and_then(|i| i.ty.cloned())],
        E::Add {}
        | E::Sub {}
        | E::Mul {}
        | E::Div {}
        | E::Pow {}
        | E::Mod { .. }
        | E::BitShift { .. }
        | E::BitwiseAnd {}
        | E::BitwiseOr {}
        | E::BitwiseXor {}
        | E::Max {}
        | E::Min {}
        | E::Mean {}
        | E::Sum {}
        | E::PRelu {} => same(bshape()?),
        _ => same(s0),
    };
    Ok(out)
}

/// Output types of a reduction node: the input shape with the reduced axes kept as 1 or dropped.
fn infer_reduce(r: &R, ins: &[In]) -> Result<Vec<Option<ValueType>>, String> {
    let i0 = ins.first();
    let d0 = i0.and_then(|i| i.dtype());
    let s0 = i0.and_then(|i| i.shape()).map(|s| s.to_vec());
    let same = |shape: Option<Vec<Dim>>| vec![d0.map(|d| t(d, shape))];
    let out = {
        let keep = |k: &i64| *k != 0;
        if let Some(p) = r.reduce_params() {
            let axes = match ins.get(1).map(|i| i.ints()) {
                Some(Some(a)) => Some(a),
                Some(None) => return Ok(same(None)),
                None => p.axes.map(<[i64]>::to_vec),
            };
            return Ok(same(reduce_shape(s0.as_deref(), axes, p.keepdims, p.noop_with_empty_axes)));
        }
        match r {
            R::ArgMax { axis, keepdims, .. } | R::ArgMin { axis, keepdims, .. } => {
                vec![Some(t(DType::I64, reduce_shape(s0.as_deref(), Some(vec![*axis]), keep(keepdims), false)))]
            }
            R::TopK { .. } => vec![d0.map(|d| t(d, None)), Some(t(DType::I64, None))],
            R::SoftmaxCrossEntropyLoss { .. } | R::NegativeLogLikelihoodLoss { .. } => {
                vec![d0.map(|d| t(d, None)), d0.map(|d| t(d, None))]
            }
            _ => same(s0),
        }
    };
    Ok(out)
}

/// Output types of a neural-network node (matrix products, convolution, pooling, normalisation, recurrent layers, ...).
fn infer_nn(n: &N, ins: &[In]) -> Result<Vec<Option<ValueType>>, String> {
    let i0 = ins.first();
    let d0 = i0.and_then(|i| i.dtype());
    let s0 = i0.and_then(|i| i.shape()).map(|s| s.to_vec());
    let same = |shape: Option<Vec<Dim>>| vec![d0.map(|d| t(d, shape))];
    let out = match n {
        N::MatMul {} => {
            let (a, b) = (ins.first().and_then(|i| i.shape()), ins.get(1).and_then(|i| i.shape()));
            let shape = match (a, b) {
                (Some(a), Some(b)) if a.len() >= 2 && b.len() >= 2 => {
                    let (k1, k2) = (&a[a.len() - 1], &b[b.len() - 2]);
                    if let (Dim::Known(x), Dim::Known(y)) = (k1, k2)
                        && x != y
                    {
                        return Err(format!("MatMul inner dimensions differ: {x} and {y}"));
                    }
                    let batch = broadcast(&[Some(&a[..a.len() - 2]), Some(&b[..b.len() - 2])])?;
                    batch.map(|mut v| {
                        v.push(a[a.len() - 2].clone());
                        v.push(b[b.len() - 1].clone());
                        v
                    })
                }
                _ => None,
            };
            same(shape)
        }
        N::Gemm { transA, transB, .. } => {
            let (a, b) = (ins.first().and_then(|i| i.shape()), ins.get(1).and_then(|i| i.shape()));
            let shape = match (a, b) {
                (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => {
                    let m = if *transA != 0 { &a[1] } else { &a[0] };
                    let n = if *transB != 0 { &b[0] } else { &b[1] };
                    Some(vec![m.clone(), n.clone()])
                }
                _ => None,
            };
            same(shape)
        }
        N::BatchNormalization { .. }
        | N::InstanceNormalization { .. }
        | N::LpNormalization { .. }
        | N::MeanVarianceNormalization { .. }
        | N::LRN { .. } => same(s0),
        N::LayerNormalization { .. } | N::GroupNormalization { .. } | N::RMSNormalization { .. } => same(s0),
        N::Dropout { .. } => vec![d0.map(|d| t(d, s0.clone())), Some(t(DType::Bool, s0))],
        N::GlobalAveragePool {} | N::GlobalMaxPool {} | N::GlobalLpPool { .. } => same(
            s0.map(|s| s.iter().enumerate().map(|(i, d)| if i >= 2 { Dim::Known(1) } else { d.clone() }).collect()),
        ),
        N::NonMaxSuppression { .. } => vec![Some(t(DType::I64, Some(vec![Dim::Unknown, Dim::Known(3)])))],
        N::RNN { direction, hidden_size, layout, .. }
        | N::GRU { direction, hidden_size, layout, .. }
        | N::LSTM { direction, hidden_size, layout, .. } => {
            // Y, Y_h (and Y_c for LSTM), from X [seq, batch, input]
            // (layout 0) or [batch, seq, input] (layout 1).
            let dirs = Dim::Known(direction.num_directions() as u64);
            let h = hidden_size.filter(|h| *h > 0).map_or(Dim::Unknown, |h| Dim::Known(h as u64));
            let x = s0.filter(|s| s.len() == 3);
            let (y, yh) = match (x, *layout) {
                (Some(x), 0) => {
                    (Some(vec![x[0].clone(), dirs.clone(), x[1].clone(), h.clone()]), Some(vec![dirs, x[1].clone(), h]))
                }
                (Some(x), 1) => {
                    (Some(vec![x[0].clone(), x[1].clone(), dirs.clone(), h.clone()]), Some(vec![x[0].clone(), dirs, h]))
                }
                _ => (None, None),
            };
            let mut outs = vec![d0.map(|d| t(d, y)), d0.map(|d| t(d, yh.clone()))];
            if matches!(n, N::LSTM { .. }) {
                outs.push(d0.map(|d| t(d, yh)));
            }
            outs
        }
        _ => same(None),
    };
    Ok(out)
}

/// Output types of a data-movement or tensor-creation node.
fn infer_tensor(tn: &T, node: &Node, ins: &[In]) -> Result<Vec<Option<ValueType>>, String> {
    let i0 = ins.first();
    let d0 = i0.and_then(|i| i.dtype());
    let s0 = i0.and_then(|i| i.shape()).map(|s| s.to_vec());
    let same = |shape: Option<Vec<Dim>>| vec![d0.map(|d| t(d, shape))];
    let out = match tn {
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
            let shape =
                ins.first().and_then(|i| i.ints()).map(|v| v.iter().map(|&x| Dim::Known(x.max(0) as u64)).collect());
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
            same(shape)
        }
        T::Transpose { perm } => same(s0.map(|s| {
            let p: Vec<usize> = perm
                .clone()
                .map(|p| p.iter().map(|&x| x as usize).collect())
                .unwrap_or_else(|| (0..s.len()).rev().collect());
            p.iter().map(|&i| s.get(i).cloned().unwrap_or(Dim::Unknown)).collect()
        })),
        T::Unsqueeze { axes } => {
            let axes = ins.get(1).and_then(|i| i.ints()).or(axes.clone());
            same(s0.zip(axes).and_then(|(s, a)| {
                let r = s.len() + a.len();
                let a: Vec<usize> = a.iter().map(|&x| norm(x, r)).collect::<Option<_>>()?;
                let mut it = s.into_iter();
                Some(
                    (0..r)
                        .map(|i| if a.contains(&i) { Dim::Known(1) } else { it.next().unwrap_or(Dim::Unknown) })
                        .collect(),
                )
            }))
        }
        T::Squeeze { axes } => {
            let axes = ins.get(1).and_then(|i| i.ints()).or(axes.clone());
            same(s0.and_then(|s| match axes {
                Some(a) => {
                    let a: Vec<usize> = a.iter().map(|&x| norm(x, s.len())).collect::<Option<_>>()?;
                    Some(s.iter().enumerate().filter(|(i, _)| !a.contains(i)).map(|(_, d)| d.clone()).collect())
                }
                None if s.iter().all(|d| matches!(d, Dim::Known(_))) => {
                    Some(s.iter().filter(|d| **d != Dim::Known(1)).cloned().collect())
                }
                None => None,
            }))
        }
        T::Flatten { axis } => same(s0.and_then(|s| {
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
        })),
        T::Concat { axis } => {
            let shapes: Option<Vec<&[Dim]>> = ins.iter().map(|i| i.shape()).collect();
            same(shapes.and_then(|ss| {
                let first = ss.first()?;
                let a = norm(*axis, first.len())?;
                let mut out = first.to_vec();
                let sum: Option<u64> =
                    ss.iter().map(|s| if let Some(Dim::Known(n)) = s.get(a) { Some(*n) } else { None }).sum();
                out[a] = sum.map(Dim::Known).unwrap_or(Dim::Unknown);
                Some(out)
            }))
        }
        T::Gather { axis } => {
            let idx = ins.get(1).and_then(|i| i.shape());
            same(s0.zip(idx).and_then(|(s, ix)| {
                let a = norm(*axis, s.len())?;
                let mut out = s[..a].to_vec();
                out.extend_from_slice(ix);
                out.extend_from_slice(&s[a + 1..]);
                Some(out)
            }))
        }
        T::NonZero {} => {
            vec![Some(t(DType::I64, s0.map(|s| vec![Dim::Known(s.len().max(1) as u64), Dim::Unknown])))]
        }
        T::Range {} => same(Some(vec![Dim::Unknown])),
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
        | T::GatherND { .. } => (0..node.outputs.len().max(1)).map(|_| d0.map(|d| t(d, None))).collect(),
        T::GatherElements { .. } => same(ins.get(1).and_then(|i| i.shape()).map(|s| s.to_vec())),
        T::Scatter { .. }
        | T::ScatterElements { .. }
        | T::ScatterND { .. }
        | T::Trilu { .. }
        | T::ReverseSequence { .. } => same(s0),
        T::RandomNormal { dtype, shape, .. } | T::RandomUniform { dtype, shape, .. } => {
            vec![Some(t(*dtype, Some(shape.iter().map(|&d| Dim::Known(d.max(0) as u64)).collect())))]
        }
        _ => vec![None],
    };
    Ok(out)
}

/// Infer types of every graph of the model; known types are kept.
///
/// Graphs are visited from the main graph down: before a node's subgraphs
/// are inferred, the values they capture get the outer graph's types, and an
/// `If` whose branches agree on an output's type gives it to its output.
pub fn infer_types(model: &mut Model) -> Result<(), IrError> {
    let mut done = vec![false; model.graphs.len()];
    let main = model.main;
    infer_graph(model, main, &mut done)?;
    for gi in 0..model.graphs.len() {
        if !done[gi] {
            infer_graph(model, GraphId(gi as u32), &mut done)?;
        }
    }
    Ok(())
}

fn infer_graph(model: &mut Model, gid: GraphId, done: &mut [bool]) -> Result<(), IrError> {
    // Each graph is inferred once (a malformed model could share or cycle
    // subgraphs; validation reports that, inference just stops).
    match done.get_mut(gid.0 as usize) {
        Some(d) if !*d => *d = true,
        _ => return Ok(()),
    }
    let g = model.graph(gid);
    let mut consts: Vec<Option<TensorData>> = vec![None; g.values.len()];
    for (v, t) in &g.initializers {
        consts[v.0 as usize] = Some(t.clone());
    }
    for ni in 0..model.graph(gid).nodes.len() {
        let subgraphs = model.graph(gid).nodes[ni].op.subgraphs();
        for &sg in &subgraphs {
            if sg.0 as usize >= model.graphs.len() {
                continue;
            }
            let captures = model.graph(sg).captures.clone();
            for (outer, inner) in captures {
                let ty = model.graph(gid).values.get(outer.0 as usize).map(|v| v.ty.clone());
                if let (Some(ty), Some(v)) = (ty, model.graph_mut(sg).values.get_mut(inner.0 as usize)) {
                    v.ty = merge(&v.ty, &ty);
                }
            }
            infer_graph(model, sg, done)?;
        }
        let g = model.graph(gid);
        let node = &g.nodes[ni];
        if let Op::Tensor(T::Constant { value }) = &node.op
            && let Some(Some(o)) = node.outputs.first()
        {
            consts[o.0 as usize] = Some(value.clone());
        }
        let ins: Vec<In> = node
            .inputs
            .iter()
            .map(|v| match v {
                Some(id) => In {
                    ty: Some(&g.values[id.0 as usize].ty).filter(|t| **t != ValueType::Unknown),
                    konst: consts[id.0 as usize].as_ref(),
                },
                None => In { ty: None, konst: None },
            })
            .collect();
        let mut outs = infer_node(node, &ins).map_err(|message| IrError::Inference {
            node: node.name.clone(),
            op: node.op.name().to_string(),
            message,
        })?;
        if let Op::Control(ControlOp::If { then_branch, else_branch }) = &node.op {
            outs = if_output_types(model, *then_branch, *else_branch, node.outputs.len());
        }
        let g = model.graph_mut(gid);
        let targets: Vec<(usize, ValueId)> =
            g.nodes[ni].outputs.iter().enumerate().filter_map(|(i, o)| o.map(|o| (i, o))).collect();
        for (i, o) in targets {
            if let Some(Some(ty)) = outs.get(i) {
                let v = &mut g.values[o.0 as usize];
                v.ty = merge(&v.ty, ty);
            }
        }
    }
    Ok(())
}

/// Output types of an `If`: where both branches give an output the same
/// tensor element type, that type, with the dimensions both agree on (a
/// dimension they disagree on is unknown; a rank they disagree on leaves the
/// shape unknown).
fn if_output_types(model: &Model, then_branch: GraphId, else_branch: GraphId, n: usize) -> Vec<Option<ValueType>> {
    let out_ty = |gid: GraphId, i: usize| -> Option<ValueType> {
        let g = model.graphs.get(gid.0 as usize)?;
        g.outputs.get(i).map(|v| g.value(*v).ty.clone())
    };
    (0..n)
        .map(|i| match (out_ty(then_branch, i)?, out_ty(else_branch, i)?) {
            (ValueType::Tensor { dtype: a, shape: sa }, ValueType::Tensor { dtype: b, shape: sb }) if a == b => {
                let shape = match (sa, sb) {
                    (Some(x), Some(y)) if x.len() == y.len() => {
                        Some(x.iter().zip(&y).map(|(p, q)| if p == q { p.clone() } else { Dim::Unknown }).collect())
                    }
                    _ => None,
                };
                Some(ValueType::Tensor { dtype: a, shape })
            }
            _ => None,
        })
        .collect()
}

/// Combine a declared type with an inferred one, keeping what is more specific.
fn merge(declared: &ValueType, inferred: &ValueType) -> ValueType {
    match (declared, inferred) {
        (ValueType::Unknown, x) => x.clone(),
        (ValueType::Tensor { dtype, shape: None }, ValueType::Tensor { shape: s, .. }) => {
            ValueType::Tensor { dtype: *dtype, shape: s.clone() }
        }
        (ValueType::Tensor { dtype, shape: Some(a) }, ValueType::Tensor { shape: Some(b), .. })
            if a.len() == b.len() =>
        {
            ValueType::Tensor {
                dtype: *dtype,
                shape: Some(
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| if matches!(x, Dim::Unknown) { y.clone() } else { x.clone() })
                        .collect(),
                ),
            }
        }
        (d, _) => d.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        let a = [Dim::Sym("n".into()), Dim::Known(3)];
        let b = [Dim::Known(1), Dim::Known(3)];
        assert_eq!(broadcast(&[Some(&a), Some(&b)]).unwrap(), Some(a.to_vec()));
        assert!(broadcast(&[Some(&[Dim::Known(2)][..]), Some(&[Dim::Known(3)][..])]).is_err());
    }
}
