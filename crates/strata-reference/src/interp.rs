//! The graph interpreter: runs nodes in order, frees values after their
//! last use, and runs subgraphs for control-flow kernels.

use std::cell::RefCell;

use strata_ir::{Graph, GraphId, Model, NodeId, ValueType};

use crate::error::{KResult, KernelError, ReferenceError};
use crate::ops::{self, Args, Ctx};
use crate::value::{Tensor, Value};

/// Sees every node's inputs and outputs as they are computed (used to
/// carve per-operator test cases from a real run).
pub trait Observer {
    fn on_node(&mut self, graph: GraphId, node: NodeId, inputs: &[Option<Value>], outputs: &[Option<Value>]);
}

struct GraphPlan {
    /// Initializers converted once.
    constants: Vec<(usize, Tensor)>,
    /// For each value, the index of the last node that reads it (usize::MAX: kept).
    last_use: Vec<usize>,
}

/// Runs a model's graphs.
pub struct Interpreter<'m> {
    model: &'m Model,
    plans: Vec<GraphPlan>,
    observer: Option<RefCell<&'m mut dyn Observer>>,
}

impl<'m> Interpreter<'m> {
    /// Prepare a model (converts weights once).
    pub fn new(model: &'m Model) -> Result<Self, ReferenceError> {
        let mut plans = Vec::with_capacity(model.graphs.len());
        for g in &model.graphs {
            let mut constants = Vec::new();
            for (v, t) in &g.initializers {
                let t = Tensor::from_host(t)
                    .map_err(|e| ReferenceError::Input(format!("weight '{}': {e}", g.value(*v).name)))?;
                constants.push((v.0 as usize, t));
            }
            let mut last_use = vec![0usize; g.values.len()];
            for (i, n) in g.nodes.iter().enumerate() {
                for v in n.inputs.iter().flatten() {
                    last_use[v.0 as usize] = i;
                }
                for sg in n.op.subgraphs() {
                    for (outer, _) in &model.graph(sg).captures {
                        last_use[outer.0 as usize] = i;
                    }
                }
            }
            for o in &g.outputs {
                last_use[o.0 as usize] = usize::MAX;
            }
            plans.push(GraphPlan { constants, last_use });
        }
        Ok(Interpreter { model, plans, observer: None })
    }

    /// Attach an observer that sees every node's inputs and outputs.
    pub fn with_observer(mut self, o: &'m mut dyn Observer) -> Self {
        self.observer = Some(RefCell::new(o));
        self
    }

    /// Run graph `gid` with its formal inputs and captured outer values.
    pub fn run_graph(
        &self,
        gid: GraphId,
        inputs: Vec<Value>,
        captures: Vec<Value>,
    ) -> Result<Vec<Value>, ReferenceError> {
        let g: &Graph = self.model.graph(gid);
        let plan = &self.plans[gid.0 as usize];
        if inputs.len() != g.inputs.len() {
            return Err(ReferenceError::Input(format!(
                "graph '{}' takes {} inputs, got {}",
                g.name,
                g.inputs.len(),
                inputs.len()
            )));
        }
        let mut env: Vec<Option<Value>> = vec![None; g.values.len()];
        for (id, v) in g.inputs.iter().zip(inputs) {
            env[id.0 as usize] = Some(v);
        }
        for (i, t) in &plan.constants {
            env[*i] = Some(Value::Tensor(t.clone()));
        }
        for ((_, inner), v) in g.captures.iter().zip(captures) {
            env[inner.0 as usize] = Some(v);
        }
        // Bytes charged against the memory limit for each value this graph
        // computed; given back when the value is freed or the graph returns.
        let mut charged = Charged(vec![0u64; g.values.len()]);
        for (ni, node) in g.nodes.iter().enumerate() {
            let node_err = |message: String| ReferenceError::Node {
                node: node.name.clone(),
                op: node.op.name().to_string(),
                message,
            };
            let mut vals = Vec::with_capacity(node.inputs.len());
            for v in &node.inputs {
                vals.push(match v {
                    None => None,
                    Some(id) => {
                        let slot = &mut env[id.0 as usize];
                        // Move the value out on its last use, unless this node reads it
                        // twice or its own subgraphs capture it too.
                        let captured_here = node
                            .op
                            .subgraphs()
                            .iter()
                            .any(|sg| self.model.graph(*sg).captures.iter().any(|(outer, _)| outer == id));
                        let val = if plan.last_use[id.0 as usize] == ni
                            && self.observer.is_none()
                            && !captured_here
                            && node.inputs.iter().flatten().filter(|x| *x == id).nth(1).is_none()
                        {
                            slot.take()
                        } else {
                            slot.clone()
                        };
                        Some(val.ok_or_else(|| node_err(format!("input '{}' has no value", g.value(*id).name)))?)
                    }
                });
            }
            let args = Args { vals };
            let ctx = NodeCtx { interp: self, graph: g, node: ni, env: &env };
            let outs = ops::run(&node.op, &args, &ctx).map_err(|e| node_err(e.0))?;
            if outs.len() < node.outputs.iter().rposition(|o| o.is_some()).map_or(0, |p| p + 1) {
                return Err(node_err(format!(
                    "kernel produced {} outputs, node declares {}",
                    outs.len(),
                    node.outputs.len()
                )));
            }
            let outs: Vec<Option<Value>> = node
                .outputs
                .iter()
                .zip(outs.into_iter().map(Some).chain(std::iter::repeat(None)))
                .map(|(o, v)| o.and(v))
                .collect();
            if let Some(obs) = &self.observer {
                obs.borrow_mut().on_node(gid, NodeId(ni as u32), &args.vals, &outs);
            }
            drop(args);
            // Free values whose last reader was this node.
            if self.observer.is_none() {
                for v in node.inputs.iter().flatten() {
                    if plan.last_use[v.0 as usize] == ni {
                        env[v.0 as usize] = None;
                        charged.release(v.0 as usize);
                    }
                }
            }
            for (o, v) in node.outputs.iter().zip(outs) {
                if let Some(id) = o {
                    let bytes = v.as_ref().map_or(0, Value::host_bytes);
                    crate::util::charge_live_bytes(bytes).map_err(|e| node_err(e.0))?;
                    charged.release(id.0 as usize);
                    charged.0[id.0 as usize] = bytes;
                    env[id.0 as usize] = v;
                }
            }
        }
        let mut outputs = Vec::with_capacity(g.outputs.len());
        for o in &g.outputs {
            outputs.push(env[o.0 as usize].clone().ok_or_else(|| {
                ReferenceError::Input(format!("graph '{}': output '{}' was not computed", g.name, g.value(*o).name))
            })?);
        }
        Ok(outputs)
    }
}

/// Live bytes charged per value slot; whatever is still charged is given
/// back when the graph returns (normally or with an error).
struct Charged(Vec<u64>);

impl Charged {
    fn release(&mut self, slot: usize) {
        crate::util::release_live_bytes(std::mem::take(&mut self.0[slot]));
    }
}

impl Drop for Charged {
    fn drop(&mut self) {
        crate::util::release_live_bytes(self.0.iter().sum());
    }
}

struct NodeCtx<'a, 'm> {
    interp: &'a Interpreter<'m>,
    graph: &'a Graph,
    node: usize,
    env: &'a [Option<Value>],
}

impl Ctx for NodeCtx<'_, '_> {
    fn n_outputs(&self) -> usize {
        self.graph.nodes[self.node].outputs.len()
    }
    fn output_used(&self, i: usize) -> bool {
        matches!(self.graph.nodes[self.node].outputs.get(i), Some(Some(_)))
    }
    fn run_subgraph(&self, g: GraphId, inputs: Vec<Value>) -> KResult<Vec<Value>> {
        let sub = self.interp.model.graph(g);
        let mut captures = Vec::with_capacity(sub.captures.len());
        for (outer, _) in &sub.captures {
            captures.push(self.env[outer.0 as usize].clone().ok_or_else(|| {
                KernelError::new(format!("captured value '{}' has no value", self.graph.value(*outer).name))
            })?);
        }
        self.interp.run_graph(g, inputs, captures).map_err(|e| KernelError::new(format!("in subgraph: {e}")))
    }
    fn subgraph_input_type(&self, g: GraphId, i: usize) -> Option<ValueType> {
        let sub = self.interp.model.graph(g);
        sub.inputs.get(i).map(|v| sub.value(*v).ty.clone())
    }
    fn subgraph_output_type(&self, g: GraphId, i: usize) -> Option<ValueType> {
        let sub = self.interp.model.graph(g);
        sub.outputs.get(i).map(|v| sub.value(*v).ty.clone()).filter(|t| *t != ValueType::Unknown)
    }
}
