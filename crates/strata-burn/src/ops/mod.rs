//! Kernels, one module per op family (mirroring `strata-ir/src/ops`, at a
//! much smaller scale).
//!
//! [`plan`] turns one IR node into a [`Kernel`] (attributes checked and
//! constant shape operands read once), or says why this backend does not
//! run it; the same function answers the support query, so what is
//! reported supported is exactly what compiles. Kernels hold no burn
//! types: [`Kernel::run`] is generic over `burn_backend::Backend`.

use burn_backend::Backend;
use burn_backend::tensor::FloatTensor;
use strata_ir::{DType, Graph, Node, Op, TensorData, ValueId};

use crate::tensor::{BurnTensor, Prim, burn_shape, held};

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod deconv;
pub(crate) mod elementwise;
pub(crate) mod index;
pub(crate) mod loss;
pub(crate) mod movement;
pub(crate) mod nn;
pub(crate) mod norm;
pub(crate) mod recurrent;
pub(crate) mod reduce;
pub(crate) mod resize;
pub(crate) mod typed;

/// Why a node does not run here (shown to users in the placement report).
pub(crate) type Unsupported = String;

/// Result of a kernel: its outputs, or a message the engine pins on the node.
pub(crate) type Out<B> = Result<Vec<BurnTensor<B>>, String>;

/// A compiled node.
#[derive(Debug, Clone)]
pub(crate) enum Kernel {
    Elementwise(elementwise::Elementwise),
    Nn(nn::Nn),
    Reduce(reduce::Reduce),
    Move(movement::Move),
    Norm(norm::Norm),
    Deconv(deconv::Deconv),
    Resize(resize::Resize),
    Index(index::Index),
    Loss(loss::Loss),
    Recurrent(recurrent::Recurrent),
    Attention(attention::Attention),
}

impl Kernel {
    /// Run on the node's inputs (`None`: omitted, or a constant operand
    /// read at compile time).
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Out<B> {
        match self {
            Kernel::Elementwise(k) => k.run(ins),
            Kernel::Nn(k) => k.run(ins, device),
            Kernel::Reduce(k) => k.run(ins, device),
            Kernel::Move(k) => k.run(ins, device),
            Kernel::Norm(k) => k.run(ins),
            Kernel::Deconv(k) => k.run(ins),
            Kernel::Resize(k) => k.run(ins, device),
            Kernel::Index(k) => k.run(ins, device),
            Kernel::Loss(k) => k.run(ins, device),
            Kernel::Recurrent(k) => k.run(ins, device),
            Kernel::Attention(k) => k.run(ins, device),
        }
    }
}

/// A node being compiled, with what is known about its operands.
pub(crate) struct NodeInfo<'a> {
    pub graph: &'a Graph,
    pub node: &'a Node,
}

impl<'a> NodeInfo<'a> {
    fn value(&self, v: Option<&Option<ValueId>>) -> Option<ValueId> {
        v.copied().flatten()
    }
    /// Whether input `i` is given.
    pub fn has_input(&self, i: usize) -> bool {
        self.value(self.node.inputs.get(i)).is_some()
    }
    /// Input `i` when it is a weight (known at compile time).
    pub fn constant(&self, i: usize) -> Option<&'a TensorData> {
        self.value(self.node.inputs.get(i)).and_then(|v| self.graph.initializer(v))
    }
    /// Declared rank of input `i`, when known.
    pub fn in_rank(&self, i: usize) -> Option<usize> {
        let v = self.value(self.node.inputs.get(i))?;
        match &self.graph.value(v).ty {
            strata_ir::ValueType::Tensor { shape: Some(s), .. } => Some(s.len()),
            _ => None,
        }
    }
    /// Number of outputs the node gives (omitted optional ones not counted).
    pub fn outputs_given(&self) -> usize {
        self.node.outputs.iter().flatten().count()
    }
    /// Every given input and output is float32, except the inputs in
    /// `operands` (shape operands, read at compile time).
    pub fn require_f32(&self, operands: &[usize]) -> Result<(), Unsupported> {
        let ins = self.node.inputs.iter().enumerate().filter(|(i, _)| !operands.contains(i)).map(|(_, v)| v);
        for &v in ins.chain(&self.node.outputs).flatten() {
            let val = self.graph.value(v);
            match val.ty.dtype() {
                Some(DType::F32) => {}
                Some(d) => {
                    return Err(format!("'{}' is {d} (this operator runs float32 on burn)", val.name));
                }
                None => return Err(format!("'{}' has no known tensor type", val.name)),
            }
        }
        Ok(())
    }
    /// Declared element type of input `i`, when known.
    pub fn in_dtype(&self, i: usize) -> Option<DType> {
        let v = self.value(self.node.inputs.get(i))?;
        self.graph.value(v).ty.dtype()
    }
    /// Every given input and output is of a held type (float32, int64,
    /// int32, bool), except the inputs in `operands`.
    pub fn require_held(&self, operands: &[usize]) -> Result<(), Unsupported> {
        let ins = self.node.inputs.iter().enumerate().filter(|(i, _)| !operands.contains(i)).map(|(_, v)| v);
        for &v in ins.chain(&self.node.outputs).flatten() {
            let val = self.graph.value(v);
            match val.ty.dtype() {
                Some(d) if held(d) => {}
                Some(d) => {
                    return Err(format!(
                        "'{}' is {d} (the burn backend holds float32/64, float16, bfloat16, int64, int32, bool)",
                        val.name
                    ));
                }
                None => return Err(format!("'{}' has no known tensor type", val.name)),
            }
        }
        Ok(())
    }
    /// Integer operand `i`: a weight read now, or an int64/int32 input
    /// read from the device when the node runs (shapes, axes, pads...).
    pub fn ints(&self, i: usize, what: &str) -> Result<Ints, Unsupported> {
        if let Some(t) = self.constant(i) {
            return match t.dtype() {
                DType::I64 | DType::I32 => Ok(Ints::Const(t.to_i64_vec())),
                d => Err(format!("{what} operand is {d}")),
            };
        }
        match self.in_dtype(i) {
            Some(DType::I64 | DType::I32) => Ok(Ints::Input(i)),
            Some(d) => Err(format!("{what} operand is {d}")),
            None => Err(format!("{what} operand has no known type")),
        }
    }
    /// [`NodeInfo::ints`] when input `i` is given.
    pub fn opt_ints(&self, i: usize, what: &str) -> Result<Option<Ints>, Unsupported> {
        if self.has_input(i) { self.ints(i, what).map(Some) } else { Ok(None) }
    }
}

/// Compile one node, or say why this backend does not run it. Every
/// family is named here; inside a family, operators without a kernel fall
/// to a catch-all "no kernel" arm (this backend runs a subset).
#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn plan(info: &NodeInfo) -> Result<Kernel, Unsupported> {
    if !info.node.op.subgraphs().is_empty() {
        return Err("operators with subgraphs run elsewhere".into());
    }
    match &info.node.op {
        Op::Elementwise(op) => elementwise::plan(op, info).map(Kernel::Elementwise),
        Op::Nn(op) => {
            if let Some(k) = norm::plan(op, info) {
                return k.map(Kernel::Norm);
            }
            if let Some(k) = deconv::plan(op, info) {
                return k.map(Kernel::Deconv);
            }
            if let Some(k) = resize::plan(op, info) {
                return k.map(Kernel::Resize);
            }
            if let Some(k) = recurrent::plan(op, info) {
                return k.map(Kernel::Recurrent);
            }
            if let Some(k) = attention::plan(op, info) {
                return k.map(Kernel::Attention);
            }
            nn::plan(op, info).map(Kernel::Nn)
        }
        Op::Reduce(op) => match loss::plan(op, info) {
            Some(k) => k.map(Kernel::Loss),
            None => reduce::plan(op, info).map(Kernel::Reduce),
        },
        Op::Tensor(op) => match index::plan(op, info) {
            Some(k) => k.map(Kernel::Index),
            None => movement::plan(op, info).map(Kernel::Move),
        },
        // Whole families not run here (they fall back to the reference, or
        // to the host for control flow).
        Op::Fused(_) | Op::Quant(_) | Op::Control(_) | Op::Text(_) | Op::Signal(_) | Op::Ml(_) | Op::Random(_) => {
            Err(format!("no {} kernel on burn", info.node.op.name()))
        }
    }
}

/// An integer operand: known at compile time, or read from input `i` when
/// the node runs (a small tensor read back to the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ints {
    Const(Vec<i64>),
    Input(usize),
}

impl Ints {
    /// The values, reading the input from the device if need be.
    pub(crate) fn get<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>]) -> Result<Vec<i64>, String> {
        match self {
            Ints::Const(v) => Ok(v.clone()),
            Ints::Input(i) => input(ins, *i)?.host_ints(),
        }
    }
}

/// [`Ints::get`] of an optional operand.
pub(crate) fn opt_get<B: Backend>(
    o: &Option<Ints>,
    ins: &[Option<&BurnTensor<B>>],
) -> Result<Option<Vec<i64>>, String> {
    o.as_ref().map(|o| o.get(ins)).transpose()
}

/// Input `i` (present), or an error naming it.
pub(crate) fn input<'t, B: Backend>(ins: &[Option<&'t BurnTensor<B>>], i: usize) -> Result<&'t BurnTensor<B>, String> {
    ins.get(i).copied().flatten().ok_or_else(|| format!("input {i} is missing"))
}

/// Normalise a possibly negative axis for a rank.
pub(crate) fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    if a < -r || a >= r.max(1) {
        return Err(format!("axis {a} is out of range for rank {rank}"));
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}

/// Numpy broadcast of two shapes.
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let x = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let y = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

/// `t` broadcast to `to` in burn: first reshaped to the same rank (burn
/// broadcasts only between equal ranks), then expanded where it differs.
pub(crate) fn expand_to<B: Backend>(t: &BurnTensor<B>, to: &[usize]) -> FloatTensor<B> {
    let mut same_rank = vec![1; to.len().saturating_sub(t.shape.len())];
    same_rank.extend_from_slice(&t.shape);
    let p = t.reshaped(&same_rank);
    if same_rank == to { p } else { B::float_expand(p, burn_shape(to)) }
}

/// `t` (any kind) broadcast to `to`, as [`expand_to`].
pub(crate) fn expand_prim<B: Backend>(t: &BurnTensor<B>, to: &[usize]) -> Prim<B> {
    let mut same_rank = vec![1; to.len().saturating_sub(t.shape.len())];
    same_rank.extend_from_slice(&t.shape);
    let p = t.reshaped_prim(&same_rank);
    if same_rank == to { p } else { p.expand(burn_shape(to)) }
}

/// Elements of a shape, checked.
pub(crate) fn numel(shape: &[usize]) -> Result<usize, String> {
    strata_ir::tensor::checked_numel(shape).ok_or_else(|| format!("shape {shape:?} is too large"))
}
