//! Kernels, one module per op family (mirroring `strata-ir/src/ops`).
//!
//! [`build`] turns one IR node into a [`Kernel`] (attributes checked and
//! constant operands prepared once, e.g. weights packed for the GEMM), or
//! says why this backend does not run it; the same function answers the
//! support query, so what is reported supported is exactly what compiles.

use strata_ir::{DType, Graph, Node, Op, TensorData, ValueId};

use crate::error::{CpuError, Result};
use crate::pool::Pool;
use crate::tensor::{CpuTensor, is_half, is_held};

pub(crate) mod attention;
pub(crate) mod cast;
pub(crate) mod conv;
mod conv_direct;
mod depthwise;
pub(crate) mod elementwise;
pub(crate) mod fused;
pub(crate) mod index;
pub(crate) mod logic;
pub(crate) mod loss;
pub(crate) mod movement;
pub(crate) mod nn;
pub(crate) mod norm;
pub(crate) mod quant;
pub(crate) mod recurrent;
pub(crate) mod reduce;
pub(crate) mod resize;
pub(crate) mod sample;
mod widen;

/// What a kernel gets besides its inputs.
pub(crate) struct Ctx<'a> {
    pub pool: &'a Pool,
    /// Largest tensor (elements) a kernel may create.
    pub max_elements: usize,
    /// Buffers of released float32 tensors, for [`Ctx::buffer`].
    pub spare: Option<&'a crate::Spare>,
}

impl Ctx<'_> {
    /// A buffer of `n` float32 values for an output the kernel overwrites
    /// entirely: a released tensor's buffer when one is large enough
    /// (its old values still in it), else zeros. Saves zeroing and the
    /// page faults of fresh memory on every run.
    pub fn buffer(&self, n: usize) -> Vec<f32> {
        match self.spare.and_then(|s| s.take(n)) {
            Some(mut v) => {
                if v.len() >= n {
                    v.truncate(n);
                } else {
                    v.resize(n, 0.0);
                }
                // Debug builds (the workspace tests) poison the old values,
                // so a kernel that leaves any of them shows NaNs.
                if cfg!(debug_assertions) {
                    v.fill(f32::NAN);
                }
                v
            }
            None => vec![0.0; n],
        }
    }

    /// Check an output size computed from input values before allocating it.
    pub fn check_numel(&self, shape: &[usize]) -> Result<usize> {
        match strata_ir::tensor::checked_numel(shape) {
            Some(n) if n <= self.max_elements => Ok(n),
            _ => Err(CpuError::Kernel(format!(
                "output of shape {shape:?} exceeds the tensor limit of {} elements",
                self.max_elements
            ))),
        }
    }
}

/// A compiled node.
pub(crate) trait Kernel: Send + Sync {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>>;

    /// [`Kernel::run`] followed by `act` on every output element, applied
    /// while each block of the output is still in cache; `None` where the
    /// kernel has no such epilogue (the caller then applies `act` itself).
    fn run_activated(
        &self,
        _ctx: &Ctx,
        _inputs: &[Option<&CpuTensor>],
        _act: crate::gemm::Activation,
    ) -> Option<Result<Vec<CpuTensor>>> {
        None
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
    /// Declared element type of input `i` (`None` if absent or untyped).
    pub fn in_dtype(&self, i: usize) -> Option<DType> {
        self.value(self.node.inputs.get(i)).and_then(|v| self.graph.value(v).ty.dtype())
    }
    /// Declared element type of output `i`.
    pub fn out_dtype(&self, i: usize) -> Option<DType> {
        self.value(self.node.outputs.get(i)).and_then(|v| self.graph.value(v).ty.dtype())
    }
    /// Whether input `i` is given.
    pub fn has_input(&self, i: usize) -> bool {
        self.value(self.node.inputs.get(i)).is_some()
    }
    /// Input `i` when it is a weight (known at compile time).
    pub fn constant(&self, i: usize) -> Option<&'a TensorData> {
        self.value(self.node.inputs.get(i)).and_then(|v| self.graph.initializer(v))
    }
    /// Every given input and output is a tensor of one of `allowed`.
    pub fn require_dtypes(&self, allowed: &[DType]) -> Result<()> {
        let ids = self.node.inputs.iter().chain(&self.node.outputs).flatten();
        for &v in ids {
            let val = self.graph.value(v);
            match val.ty.dtype() {
                Some(d) if allowed.contains(&d) => {}
                Some(d) => {
                    return Err(unsupported(format!("'{}' is {d} (this kernel takes {})", val.name, names(allowed))));
                }
                None => return Err(unsupported(format!("'{}' has no known tensor type", val.name))),
            }
        }
        Ok(())
    }
    /// Every given input and output is of a type most kernels compute on.
    pub fn require_native(&self) -> Result<()> {
        self.require_dtypes(&[DType::F32, DType::I64, DType::I32, DType::Bool])
    }
    /// Every given input and output is a tensor type this backend holds
    /// (for kernels generic over storage: data movement, `Where`, `Cast`).
    pub fn require_held(&self) -> Result<()> {
        let ids = self.node.inputs.iter().chain(&self.node.outputs).flatten();
        for &v in ids {
            let val = self.graph.value(v);
            match val.ty.dtype() {
                Some(d) if is_held(d) => {}
                Some(d) => {
                    return Err(unsupported(format!("'{}' is {d}, a type this backend does not hold", val.name)));
                }
                None => return Err(unsupported(format!("'{}' has no known tensor type", val.name))),
            }
        }
        Ok(())
    }
}

fn names(ds: &[DType]) -> String {
    ds.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// An `Unsupported` error.
pub(crate) fn unsupported(why: impl Into<String>) -> CpuError {
    CpuError::Unsupported(why.into())
}

/// Compile one node, or say why this backend does not run it: its kernel
/// from [`build`], or, for a float16/bfloat16 node no kernel takes
/// directly, its float32 kernel run through `widen`.
pub(crate) fn kernel(info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    match build(info) {
        Err(CpuError::Unsupported(_)) if has_half(info) => widen::build(info, build),
        other => other,
    }
}

/// Whether any input or output of the node is float16 or bfloat16.
fn has_half(info: &NodeInfo) -> bool {
    let ids = info.node.inputs.iter().chain(&info.node.outputs).flatten();
    ids.into_iter().any(|&v| info.graph.value(v).ty.dtype().is_some_and(is_half))
}

/// The kernel of one node on the types it has. Every operator of the IR is
/// named, here or in its family's `build`, so a new one is a compile error
/// until it is given a kernel or listed as not supported.
#[deny(clippy::wildcard_enum_match_arm)]
pub(crate) fn build(info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    if !info.node.op.subgraphs().is_empty() {
        return Err(unsupported("operators with subgraphs run elsewhere"));
    }
    let k = match &info.node.op {
        Op::Elementwise(op) => elementwise::build(op, info)?,
        Op::Nn(op) => nn::build(op, info)?,
        Op::Tensor(op) => movement::build(op, info)?,
        Op::Reduce(op) => reduce::build(op, info)?,
        Op::Fused(op) => fused::build(op, info)?,
        Op::Quant(op) => quant::build(op, info)?,
        // Whole families not run here (control flow runs in the session,
        // around the partitions; the others fall back to the reference).
        Op::Control(_) | Op::Text(_) | Op::Signal(_) | Op::Ml(_) | Op::Random(_) => {
            return Err(unsupported(format!("no {} kernel", info.node.op.name())));
        }
    };
    Ok(k)
}

/// Input `i` (present), or an error naming it.
pub(crate) fn input<'t>(inputs: &[Option<&'t CpuTensor>], i: usize) -> Result<&'t CpuTensor> {
    inputs.get(i).copied().flatten().ok_or_else(|| CpuError::Kernel(format!("input {i} is missing")))
}

/// Normalise a possibly negative axis for a rank.
pub(crate) fn axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if a < -r || a >= r.max(1) {
        return Err(CpuError::Kernel(format!("axis {a} is out of range for rank {rank}")));
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}

/// Row-major strides of a shape.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Numpy broadcast of two shapes.
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let x = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let y = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(CpuError::Kernel(format!("shapes {a:?} and {b:?} do not broadcast"))),
        };
    }
    Ok(out)
}

/// Strides to read an input of shape `from` broadcast to `to` (0 on broadcast axes).
pub(crate) fn broadcast_strides(from: &[usize], to: &[usize]) -> Vec<usize> {
    let s = strides(from);
    let off = to.len() - from.len();
    (0..to.len()).map(|i| if i < off || from[i - off] == 1 { 0 } else { s[i - off] }).collect()
}

/// Whether every type is held (for ops generic over element types).
pub(crate) fn all_held(ds: &[Option<DType>]) -> bool {
    ds.iter().all(|d| d.is_some_and(is_held))
}
