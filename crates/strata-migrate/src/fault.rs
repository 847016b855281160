//! Deliberate faults, to prove that a bring-up report names the right node.
//!
//! [`FaultInjector`] wraps any [`Backend`] and makes the kernel of every
//! node with a given name wrong: when it compiles a partition containing the
//! node, it rewrites the partition so that the node's first output gets
//! [`FAULT_OFFSET`] added before anyone reads it. Nodes elsewhere are
//! untouched, so the perturbed node is the first divergence in both the
//! per-operator and the staged phase.
//!
//! The wrapper works with any backend (reference, cpu, gpu) without changes
//! to it: wrap the backend returned by [`strata::create_backend`]. The
//! `strata migrate` command wraps its target when the environment variable
//! [`FAULT_ENV`] names a node (or with `--inject-fault NODE`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use strata::ir::ops::ElementwiseOp;
use strata::ir::{GraphId, Model, Node, NodeId, Op, ValueType};
use strata::{Backend, CompiledPartition, DType, DeviceValue, Error, Support, Tensor, Value};

/// Environment variable naming a node whose kernel `strata migrate` makes wrong.
pub const FAULT_ENV: &str = "STRATA_MIGRATE_INJECT_FAULT";

/// What the faulty kernel adds to every element of the node's first output.
pub const FAULT_OFFSET: f64 = 0.25;

/// A backend whose kernel for the node(s) named `node` is wrong on purpose.
pub struct FaultInjector {
    inner: Arc<dyn Backend>,
    node: String,
    name: String,
}

impl FaultInjector {
    /// Wrap `inner`; the node(s) named `node` get wrong outputs. The wrapper
    /// is named `<inner>+fault` so that a session keeps the plain reference
    /// backend apart from a faulty wrapped reference.
    pub fn new(inner: Arc<dyn Backend>, node: impl Into<String>) -> Self {
        let name = format!("{}+fault", inner.name());
        FaultInjector { inner, node: node.into(), name }
    }
}

/// Rewrite `model`'s main graph so that the first output of every node named
/// `node` is increased by [`FAULT_OFFSET`] (float outputs; others unchanged).
/// Returns whether a node was perturbed.
pub fn perturb(model: &mut Model, node: &str) -> bool {
    let main = model.main;
    let g = model.graph_mut(main);
    let mut changed = false;
    let mut i = 0;
    while i < g.nodes.len() {
        if g.nodes[i].name != node {
            i += 1;
            continue;
        }
        let Some(Some(out)) = g.nodes[i].outputs.first().copied() else {
            i += 1;
            continue;
        };
        let ty = g.value(out).ty.clone();
        let dtype = match ty.dtype() {
            Some(d) if d.is_float() => d,
            Some(_) => {
                i += 1;
                continue;
            }
            None => DType::F32,
        };
        let Ok(offset) = Tensor::from_f64(dtype, vec![], &[FAULT_OFFSET]) else {
            i += 1;
            continue;
        };
        let raw = g.add_value(format!("{node}/unperturbed"), ty);
        let c = g.add_value(format!("{node}/fault"), ValueType::Tensor { dtype, shape: Some(vec![]) });
        g.initializers.push((c, offset));
        g.nodes[i].outputs[0] = Some(raw);
        g.nodes.insert(
            i + 1,
            Node {
                name: format!("{node}/fault"),
                op: Op::Elementwise(ElementwiseOp::Add {}),
                inputs: vec![Some(raw), Some(c)],
                outputs: vec![Some(out)],
            },
        );
        changed = true;
        i += 2;
    }
    changed
}

impl Backend for FaultInjector {
    fn name(&self) -> &str {
        &self.name
    }
    fn supports(&self, model: &Model, graph: GraphId, node: NodeId) -> Support {
        self.inner.supports(model, graph, node)
    }
    fn compile(&self, model: Arc<Model>) -> Result<Box<dyn CompiledPartition>, Error> {
        if model.main_graph().nodes.iter().any(|n| n.name == self.node) {
            let mut m = Model::clone(&model);
            perturb(&mut m, &self.node);
            return self.inner.compile(Arc::new(m));
        }
        self.inner.compile(model)
    }
    fn upload(&self, v: &Value) -> Result<DeviceValue, Error> {
        self.inner.upload(v)
    }
    fn download<'a>(&'a self, v: &'a DeviceValue) -> Pin<Box<dyn Future<Output = Result<Value, Error>> + 'a>> {
        self.inner.download(v)
    }
}

/// A reference run whose kernel for the node(s) named `node` is wrong on
/// purpose (its first output increased by [`FAULT_OFFSET`], and every later
/// node computed from that): a fault on the reference side, to prove that a
/// third opinion sides with a correct target. Carved values keep the value
/// ids of `model`. Errors if no node of that name has a float output.
pub fn carve_with_reference_fault(
    model: &Model,
    inputs: &[(&str, Value)],
    node: &str,
) -> Result<crate::Carved, crate::MigrateError> {
    let mut faulty = model.clone();
    if !perturb(&mut faulty, node) {
        return Err(crate::MigrateError::Input(format!("no node named '{node}' with a float output to perturb")));
    }
    let mut carved = crate::carve(&faulty, inputs)?;
    carved.values.truncate(model.main_graph().values.len());
    Ok(carved)
}
