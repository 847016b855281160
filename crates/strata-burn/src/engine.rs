//! The engine: support query, compilation of one partition into steps,
//! and runs, generic over `burn_backend::Backend`.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use burn_backend::Backend;
use strata_ir::{GraphId, Model, NodeId, ValueId};

use crate::error::{BurnError, Result};
use crate::ops::{Kernel, NodeInfo, plan};
use crate::tensor::BurnTensor;

/// A Strata backend on the burn tensor backend `B` (see
/// [`FlexBackend`](crate::FlexBackend)).
pub struct BurnBackend<B: Backend> {
    device: B::Device,
    /// Test-only: the node whose step makes burn panic (see [`BurnBackend::with_fault`]).
    fault: Option<String>,
    _b: PhantomData<fn() -> B>,
}

impl<B: Backend> Clone for BurnBackend<B> {
    fn clone(&self) -> Self {
        BurnBackend { device: self.device.clone(), fault: self.fault.clone(), _b: PhantomData }
    }
}

impl<B: Backend> std::fmt::Debug for BurnBackend<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BurnBackend({:?})", self.device)
    }
}

impl<B: Backend> Default for BurnBackend<B> {
    fn default() -> Self {
        BurnBackend::new(B::Device::default())
    }
}

struct Step {
    name: String,
    op: String,
    kernel: Kernel,
    inputs: Vec<Option<usize>>,
    outputs: Vec<Option<usize>>,
    release: Vec<usize>,
}

/// A graph compiled for a burn backend. Runs may overlap.
pub struct CompiledGraph<B: Backend> {
    device: B::Device,
    fault: Option<String>,
    values: usize,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    consts: Vec<(usize, BurnTensor<B>)>,
    steps: Vec<Step>,
}

/// The message of a caught panic.
fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast_ref::<&str>().map_or_else(|| "(no message)".to_string(), |s| s.to_string()),
    }
}

impl<B: Backend> BurnBackend<B> {
    /// The engine on `device`.
    pub fn new(device: B::Device) -> Self {
        BurnBackend { device, fault: None, _b: PhantomData }
    }

    /// Test-only: compiled graphs ask burn to reshape the first input of
    /// node `node` to a size it does not have, inside the node's step, so
    /// burn itself panics there (proving that such a panic becomes an
    /// error naming the node).
    #[doc(hidden)]
    pub fn with_fault(mut self, node: Option<&str>) -> Self {
        self.fault = node.map(String::from);
        self
    }

    /// The burn device tensors live on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Whether node `node` of graph `graph` runs here, or why not.
    pub fn supports(&self, model: &Model, graph: GraphId, node: NodeId) -> std::result::Result<(), String> {
        let g = model.graph(graph);
        plan(&NodeInfo { graph: g, node: g.node(node) }).map(|_| ())
    }

    /// Upload a host tensor (float32, int64, int32, bool).
    pub fn upload(&self, t: &strata_ir::TensorData) -> Result<BurnTensor<B>> {
        catch_unwind(AssertUnwindSafe(|| BurnTensor::from_host(t, &self.device)))
            .unwrap_or_else(|p| Err(BurnError::Tensor(format!("burn panicked on upload: {}", panic_message(p)))))
    }

    /// Compile the main graph of `model` (one partition): every node
    /// planned into a step, the float32 weights its nodes read uploaded
    /// once, and the last use of every value found so it is released.
    pub fn compile(&self, model: Arc<Model>) -> Result<CompiledGraph<B>> {
        let g = model.main_graph();
        let slot = |v: ValueId| v.0 as usize;
        let mut steps = Vec::with_capacity(g.nodes.len());
        for node in &g.nodes {
            let kernel = plan(&NodeInfo { graph: g, node }).map_err(|why| BurnError::Node {
                node: node.name.clone(),
                op: node.op.name().to_string(),
                message: format!("not supported: {why}"),
            })?;
            steps.push(Step {
                name: node.name.clone(),
                op: node.op.name().to_string(),
                kernel,
                inputs: node.inputs.iter().map(|v| v.map(slot)).collect(),
                outputs: node.outputs.iter().map(|v| v.map(slot)).collect(),
                release: Vec::new(),
            });
        }
        // Weights of the held types that steps read (constant shape and axes
        // operands are also read by the planner); others belong to nodes
        // placed elsewhere.
        let read: std::collections::HashSet<usize> = steps
            .iter()
            .flat_map(|s| s.inputs.iter().flatten().copied())
            .chain(g.outputs.iter().map(|v| slot(*v)))
            .collect();
        let mut consts = Vec::new();
        for (v, t) in &g.initializers {
            if read.contains(&slot(*v)) && crate::tensor::held(t.dtype()) {
                consts.push((slot(*v), self.upload(t)?));
            }
        }
        let mut last = vec![None; g.values.len()];
        for (i, s) in steps.iter().enumerate() {
            for v in s.inputs.iter().flatten() {
                last[*v] = Some(i);
            }
        }
        let keep: std::collections::HashSet<usize> =
            g.outputs.iter().map(|v| slot(*v)).chain(consts.iter().map(|(v, _)| *v)).collect();
        for (v, l) in last.iter().enumerate() {
            if let Some(i) = l
                && !keep.contains(&v)
            {
                steps[*i].release.push(v);
            }
        }
        Ok(CompiledGraph {
            device: self.device.clone(),
            fault: self.fault.clone(),
            values: g.values.len(),
            inputs: g.inputs.iter().map(|v| slot(*v)).collect(),
            outputs: g.outputs.iter().map(|v| slot(*v)).collect(),
            consts,
            steps,
        })
    }
}

impl<B: Backend> CompiledGraph<B> {
    /// The names of the compiled steps in run order.
    pub fn step_names(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.name.clone()).collect()
    }

    /// Run with the graph inputs in order; returns the graph outputs in order.
    pub fn run(&self, inputs: &[&BurnTensor<B>]) -> Result<Vec<BurnTensor<B>>> {
        if inputs.len() != self.inputs.len() {
            return Err(BurnError::Tensor(format!(
                "graph takes {} inputs, {} were given",
                self.inputs.len(),
                inputs.len()
            )));
        }
        let mut env: Vec<Option<BurnTensor<B>>> = vec![None; self.values];
        for (v, t) in &self.consts {
            env[*v] = Some(t.clone());
        }
        for (v, t) in self.inputs.iter().zip(inputs) {
            env[*v] = Some((*t).clone());
        }
        for s in &self.steps {
            let node_err = |message: String| BurnError::Node { node: s.name.clone(), op: s.op.clone(), message };
            let args: Vec<Option<&BurnTensor<B>>> = s.inputs.iter().map(|v| v.and_then(|v| env[v].as_ref())).collect();
            // Every burn call of the node runs inside this closure: a panic
            // in burn is this node's error, not the caller's crash.
            let faulty = self.fault.as_deref() == Some(s.name.as_str());
            let outs = catch_unwind(AssertUnwindSafe(|| {
                if faulty && let Some(Some(x)) = args.first() {
                    let n = x.shape.iter().product::<usize>() + 1;
                    let _ = x.prim.clone().reshape(burn_backend::Shape::from(vec![n]));
                }
                s.kernel.run(&args, &self.device)
            }))
            .map_err(|p| BurnError::Panicked { node: s.name.clone(), op: s.op.clone(), message: panic_message(p) })?
            .map_err(node_err)?;
            if outs.len() < s.outputs.iter().flatten().count() {
                return Err(node_err(format!("kernel produced {} outputs", outs.len())));
            }
            for (slot, t) in s.outputs.iter().zip(outs) {
                if let Some(v) = slot {
                    env[*v] = Some(t);
                }
            }
            for v in &s.release {
                env[*v] = None;
            }
        }
        self.outputs
            .iter()
            .map(|v| env[*v].clone().ok_or_else(|| BurnError::Tensor("a graph output was not computed".into())))
            .collect()
    }
}
