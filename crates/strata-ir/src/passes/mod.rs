//! Graph passes and a small pass manager.
//!
//! Passes: dead-code elimination, constant folding (through an
//! [`Evaluator`] supplied by a backend, since the IR has no kernels),
//! shape-subgraph folding once input dimensions are known (bind symbolic
//! dimensions, re-infer shapes, replace `Shape`/`Size` of fully known tensors
//! by constants, then fold what depends on them), and, run by the backends
//! that opt in on the partitions they compile, per-channel affine maps
//! (BatchNormalization, Mul/Add/Sub by per-channel weights) folded into the
//! Conv before them ([`fold_conv_affine`]), hard-sigmoid and hard-swish
//! recognised from their decomposed form ([`recognize_hard_activations`])
//! and fusion of producers with the elementwise nodes after them ([`fuse`]).

use std::collections::HashMap;

pub mod fold_affine;
pub mod fuse;
pub mod metadata;
pub mod recognize;
pub use fold_affine::fold_conv_affine;
pub use fuse::{FuseRules, fuse};
pub use metadata::{is_bookkeeping, metadata_values};
pub use recognize::{recognize_activations, recognize_gelu, recognize_hard_activations};

use crate::error::IrError;
use crate::graph::{Dim, Graph, GraphId, Model, Node, ValueId, ValueType};
use crate::ops::{Op, QuantOp, TensorOp};
use crate::tensor::TensorData;

/// Values of graph `graph` that its nodes' subgraphs capture (read from
/// inside a branch or loop body, so read outside any local rewrite).
fn captured_values(model: &Model, graph: GraphId) -> std::collections::HashSet<ValueId> {
    model
        .graph(graph)
        .nodes
        .iter()
        .flat_map(|n| n.op.subgraphs())
        .flat_map(|sg| model.graph(sg).captures.iter().map(|(outer, _)| *outer))
        .collect()
}

/// Who reads and who makes each value of the main graph, for the local
/// rewrites (folding into a Conv, recognising activations).
struct Uses {
    /// Nodes reading each value (a node reading it twice counts twice).
    readers: HashMap<ValueId, usize>,
    /// The node making each value.
    producer: HashMap<ValueId, usize>,
    captured: std::collections::HashSet<ValueId>,
}

impl Uses {
    fn of(model: &Model) -> Uses {
        let g = model.main_graph();
        let mut readers: HashMap<ValueId, usize> = HashMap::new();
        let mut producer: HashMap<ValueId, usize> = HashMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            for v in n.inputs.iter().flatten() {
                *readers.entry(*v).or_default() += 1;
            }
            for v in n.outputs.iter().flatten() {
                producer.insert(*v, i);
            }
        }
        Uses { readers, producer, captured: captured_values(model, model.main) }
    }

    /// Whether `v` is read once, by one node, and is neither an output of
    /// graph `g` nor read from a subgraph: a rewrite may hide it.
    fn private(&self, g: &Graph, v: ValueId) -> bool {
        self.readers.get(&v) == Some(&1) && !g.outputs.contains(&v) && !self.captured.contains(&v)
    }

    /// The node making `v`.
    fn producer(&self, v: ValueId) -> Option<usize> {
        self.producer.get(&v).copied()
    }
}

/// Drop the nodes marked in `remove` (one flag per node, in order).
fn remove_marked(g: &mut Graph, remove: &[bool]) {
    let mut i = 0;
    g.nodes.retain(|_| {
        let keep = !remove[i];
        i += 1;
        keep
    });
}

/// Computes a node's outputs from constant inputs (implemented by a backend).
pub trait Evaluator {
    /// `None` when the node cannot be evaluated (it is then kept).
    fn eval(&self, node: &Node, inputs: &[Option<TensorData>]) -> Option<Vec<TensorData>>;
}

/// One graph transformation.
pub trait Pass {
    fn name(&self) -> &str;
    /// Transform the model; returns whether anything changed.
    fn run(&self, model: &mut Model) -> Result<bool, IrError>;
}

/// Runs passes in order, repeating the sequence until nothing changes
/// (at most `max_rounds` times).
pub struct PassManager<'a> {
    passes: Vec<Box<dyn Pass + 'a>>,
    pub max_rounds: usize,
}

impl<'a> PassManager<'a> {
    pub fn new() -> Self {
        PassManager { passes: Vec::new(), max_rounds: 4 }
    }
    pub fn with(mut self, p: impl Pass + 'a) -> Self {
        self.passes.push(Box::new(p));
        self
    }
    /// Run to a fixed point; returns the names of passes that changed something.
    pub fn run(&self, model: &mut Model) -> Result<Vec<String>, IrError> {
        let mut log = Vec::new();
        for _ in 0..self.max_rounds {
            let mut changed = false;
            for p in &self.passes {
                if p.run(model)? {
                    changed = true;
                    log.push(p.name().to_string());
                }
            }
            if !changed {
                break;
            }
        }
        model.validate()?;
        Ok(log)
    }
}

impl Default for PassManager<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// Dead-code elimination.
pub struct DeadCode;
impl Pass for DeadCode {
    fn name(&self) -> &str {
        "dead-code"
    }
    fn run(&self, model: &mut Model) -> Result<bool, IrError> {
        Ok(eliminate_dead_code(model) > 0)
    }
}

/// Constant folding of the main graph with an evaluator; outputs larger than
/// `max_elements` are not folded (they would bloat the model), except
/// `DequantizeLinear` of constant weights (their float values are what the
/// kernels read).
pub struct FoldConstants<'e> {
    pub evaluator: &'e dyn Evaluator,
    pub max_elements: usize,
}
impl Pass for FoldConstants<'_> {
    fn name(&self) -> &str {
        "fold-constants"
    }
    fn run(&self, model: &mut Model) -> Result<bool, IrError> {
        Ok(fold_constants(model, self.evaluator, self.max_elements) > 0)
    }
}

/// Bind symbolic input dimensions to values, re-infer shapes and turn
/// `Shape`/`Size` of fully known tensors into constants.
pub struct BindDims(pub HashMap<String, u64>);
impl Pass for BindDims {
    fn name(&self) -> &str {
        "bind-dims"
    }
    fn run(&self, model: &mut Model) -> Result<bool, IrError> {
        bind_dims(model, &self.0)
    }
}

/// Remove nodes whose outputs are never used (dead-code elimination), in
/// every graph of the model. Returns the number of nodes removed.
pub fn eliminate_dead_code(model: &mut Model) -> usize {
    let mut removed = 0;
    for gi in 0..model.graphs.len() {
        let g = &model.graphs[gi];
        let mut live = vec![false; g.values.len()];
        for &o in &g.outputs {
            live[o.0 as usize] = true;
        }
        let mut keep = vec![false; g.nodes.len()];
        for (ni, n) in g.nodes.iter().enumerate().rev() {
            if n.outputs.iter().flatten().any(|v| live[v.0 as usize]) {
                keep[ni] = true;
                for v in n.inputs.iter().flatten() {
                    live[v.0 as usize] = true;
                }
                for sg in n.op.subgraphs() {
                    for (outer, _) in &model.graphs[sg.0 as usize].captures {
                        live[outer.0 as usize] = true;
                    }
                }
            }
        }
        let g = &mut model.graphs[gi];
        let before = g.nodes.len();
        let mut i = 0;
        g.nodes.retain(|_| {
            let k = keep[i];
            i += 1;
            k
        });
        g.initializers.retain(|(v, _)| live[v.0 as usize]);
        removed += before - g.nodes.len();
    }
    removed
}

/// Fold main-graph nodes whose inputs are all constant. Returns the number folded.
pub fn fold_constants(model: &mut Model, ev: &dyn Evaluator, max_elements: usize) -> usize {
    let main = model.main;
    let g = model.graph_mut(main);
    let mut consts: HashMap<ValueId, TensorData> = g.initializers.iter().cloned().collect();
    let mut folded = 0;
    let mut kept = Vec::with_capacity(g.nodes.len());
    for node in std::mem::take(&mut g.nodes) {
        let foldable = node.op.is_deterministic()
            && node.op.subgraphs().is_empty()
            && node.inputs.iter().flatten().all(|v| consts.contains_key(v))
            && node.outputs.iter().all(|o| o.is_some());
        if foldable {
            let inputs: Vec<Option<TensorData>> = node.inputs.iter().map(|v| v.map(|v| consts[&v].clone())).collect();
            // A dequantised weight is folded whatever its size: every
            // backend reads the float values anyway, and the integer ones go.
            let dequantise = matches!(node.op, Op::Quant(QuantOp::DequantizeLinear { .. }));
            if let Some(outs) = ev.eval(&node, &inputs)
                && outs.len() >= node.outputs.len()
                && (dequantise || outs.iter().all(|t| t.numel() <= max_elements))
            {
                for (o, t) in node.outputs.iter().flatten().zip(outs) {
                    consts.insert(*o, t.clone());
                    g.initializers.push((*o, t));
                }
                folded += 1;
                continue;
            }
        }
        kept.push(node);
    }
    g.nodes = kept;
    folded
}

/// See [`BindDims`]. Returns whether anything changed.
pub fn bind_dims(model: &mut Model, dims: &HashMap<String, u64>) -> Result<bool, IrError> {
    let main = model.main;
    let mut changed = false;
    {
        let g = model.graph_mut(main);
        for &i in &g.inputs.clone() {
            if let ValueType::Tensor { shape: Some(s), .. } = &mut g.value_mut(i).ty {
                for d in s.iter_mut() {
                    if let Dim::Sym(name) = d
                        && let Some(&n) = dims.get(name.as_str())
                    {
                        *d = Dim::Known(n);
                        changed = true;
                    }
                }
            }
        }
    }
    crate::infer::infer_types(model)?;
    let g = model.graph_mut(main);
    let mut new_consts = Vec::new();
    g.nodes.retain(|n| {
        let (Some(Some(src)), Some(Some(out))) = (n.inputs.first(), n.outputs.first()) else { return true };
        let ValueType::Tensor { shape: Some(s), .. } = &g.values[src.0 as usize].ty else { return true };
        let Some(known): Option<Vec<i64>> =
            s.iter().map(|d| if let Dim::Known(n) = d { Some(*n as i64) } else { None }).collect()
        else {
            return true;
        };
        let t = match &n.op {
            Op::Tensor(TensorOp::Shape { start, end }) => {
                let r = known.len() as i64;
                let c = |v: i64| if v < 0 { (v + r).clamp(0, r) } else { v.clamp(0, r) } as usize;
                let (a, b) = (c(*start), c(end.unwrap_or(r)));
                let part = if a < b { known[a..b].to_vec() } else { vec![] };
                TensorData::from_i64(vec![part.len()], &part)
            }
            Op::Tensor(TensorOp::Size {}) => TensorData::from_i64(vec![], &[known.iter().product()]),
            _ => return true,
        };
        match t {
            Ok(t) => {
                new_consts.push((*out, t));
                false
            }
            Err(_) => true,
        }
    });
    changed |= !new_consts.is_empty();
    g.initializers.extend(new_consts);
    Ok(changed)
}
