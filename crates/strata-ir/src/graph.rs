//! Graphs stored in arenas with typed handles.
//!
//! A [`Model`] owns every [`Graph`] (the main graph and the bodies of
//! control-flow operators) in one arena addressed by [`GraphId`]. Each graph
//! owns its values and nodes, addressed by [`ValueId`] and [`NodeId`]. Nodes
//! are kept in a topological order. A subgraph reads values of its parent
//! through explicit `captures`, so every data dependency is visible.

use serde::{Deserialize, Serialize};

use crate::error::IrError;
use crate::ops::Op;
use crate::tensor::TensorData;
pub use crate::types::{Dim, GraphId, NodeId, ValueId, ValueType};

/// A named value with its (possibly partial) type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Value {
    pub name: String,
    pub ty: ValueType,
}

/// One operator application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The node's name (made unique by importers when missing).
    pub name: String,
    pub op: Op,
    /// Inputs by position; `None` marks an omitted optional input.
    pub inputs: Vec<Option<ValueId>>,
    /// Outputs by position; `None` marks an unused optional output.
    pub outputs: Vec<Option<ValueId>>,
}

/// A graph: values, nodes in topological order, inputs, outputs and constant weights.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Graph {
    pub name: String,
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    /// Constant values (weights); they are not graph inputs.
    pub initializers: Vec<(ValueId, TensorData)>,
    /// Values of the parent graph read by this subgraph: (outer, inner).
    pub captures: Vec<(ValueId, ValueId)>,
}

impl Graph {
    /// Add a value and return its handle.
    pub fn add_value(&mut self, name: impl Into<String>, ty: ValueType) -> ValueId {
        self.values.push(Value { name: name.into(), ty });
        ValueId((self.values.len() - 1) as u32)
    }
    /// Add a node and return its handle.
    pub fn add_node(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        NodeId((self.nodes.len() - 1) as u32)
    }
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0 as usize]
    }
    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        &mut self.values[id.0 as usize]
    }
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }
    /// Node handles in topological order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len() as u32).map(NodeId)
    }
    /// The initializer of a value, if it is a constant weight.
    pub fn initializer(&self, id: ValueId) -> Option<&TensorData> {
        self.initializers.iter().find(|(v, _)| *v == id).map(|(_, t)| t)
    }
    /// Find a value by name.
    pub fn find_value(&self, name: &str) -> Option<ValueId> {
        self.values.iter().position(|v| v.name == name).map(|i| ValueId(i as u32))
    }
}

/// A whole model: the graph arena, the main graph and provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub graphs: Vec<Graph>,
    pub main: GraphId,
    /// Operator-set versions the model was written against: (domain, version).
    pub opsets: Vec<(String, i64)>,
    pub producer: String,
    pub metadata: Vec<(String, String)>,
}

impl Model {
    pub fn graph(&self, id: GraphId) -> &Graph {
        &self.graphs[id.0 as usize]
    }
    pub fn graph_mut(&mut self, id: GraphId) -> &mut Graph {
        &mut self.graphs[id.0 as usize]
    }
    pub fn main_graph(&self) -> &Graph {
        self.graph(self.main)
    }

    /// Check structural invariants: handles in range, each value defined
    /// once, nodes in topological order, subgraph captures valid. Errors name
    /// the node.
    pub fn validate(&self) -> Result<(), IrError> {
        for (gi, g) in self.graphs.iter().enumerate() {
            let nv = g.values.len();
            let check = |v: ValueId, what: &str| -> Result<(), IrError> {
                if (v.0 as usize) < nv {
                    Ok(())
                } else {
                    Err(IrError::Graph(format!("graph '{}': {what} refers to value #{} out of range", g.name, v.0)))
                }
            };
            let mut defined = vec![false; nv];
            let define = |defined: &mut Vec<bool>, v: ValueId, what: &str| -> Result<(), IrError> {
                check(v, what)?;
                if std::mem::replace(&mut defined[v.0 as usize], true) {
                    return Err(IrError::Graph(format!(
                        "graph '{}': value '{}' is defined more than once ({what})",
                        g.name,
                        g.value(v).name
                    )));
                }
                Ok(())
            };
            for &v in &g.inputs {
                define(&mut defined, v, "graph input")?;
            }
            for (v, _) in &g.initializers {
                // ONNX IR < 4 lists initializers as inputs too; allow that overlap.
                if !g.inputs.contains(v) {
                    define(&mut defined, *v, "initializer")?;
                }
            }
            for (_, inner) in &g.captures {
                define(&mut defined, *inner, "capture")?;
            }
            for n in &g.nodes {
                n.op.check().map_err(|e| IrError::Graph(format!("node '{}' ({}): {e}", n.name, n.op.name())))?;
                if let crate::ops::Op::Fused(f) = &n.op {
                    f.check(n.inputs.len()).map_err(|e| IrError::Graph(format!("node '{}': {e}", n.name)))?;
                }
                for sg in n.op.subgraphs() {
                    if sg.0 as usize >= self.graphs.len() || sg.0 as usize == gi {
                        return Err(IrError::Graph(format!(
                            "node '{}' ({}) has an invalid subgraph",
                            n.name,
                            n.op.name()
                        )));
                    }
                    for (outer, _) in &self.graph(sg).captures {
                        check(*outer, "capture")?;
                        if !defined[outer.0 as usize] {
                            return Err(IrError::Graph(format!(
                                "node '{}' ({}): subgraph reads '{}' before it is defined",
                                n.name,
                                n.op.name(),
                                g.value(*outer).name
                            )));
                        }
                    }
                }
                for v in n.inputs.iter().flatten() {
                    check(*v, "node input")?;
                    if !defined[v.0 as usize] {
                        return Err(IrError::Graph(format!(
                            "node '{}' ({}): input '{}' is not defined before use",
                            n.name,
                            n.op.name(),
                            g.value(*v).name
                        )));
                    }
                }
                for v in n.outputs.iter().flatten() {
                    define(&mut defined, *v, &format!("output of node '{}'", n.name))?;
                }
            }
            for &v in &g.outputs {
                check(v, "graph output")?;
                if !defined[v.0 as usize] {
                    return Err(IrError::Graph(format!(
                        "graph '{}': output '{}' is never produced",
                        g.name,
                        g.value(v).name
                    )));
                }
            }
        }
        Ok(())
    }
}
