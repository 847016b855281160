//! ONNX `ModelProto` → IR [`Model`].

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use strata_ir::{AttrReader, AttrValue, Graph, GraphId, Model, Node, Op, ValueId, ValueType};

use crate::convert::{sparse_to_dense, tensor_from_proto, type_from_proto};
use crate::error::OnnxError;
use crate::proto;
use crate::registry::{self, DOMAINS};

mod legacy;

/// Decode and import an ONNX model from bytes. External data, if any,
/// is resolved against `base_dir`.
pub fn import_bytes(bytes: &[u8], base_dir: Option<&Path>) -> Result<Model, OnnxError> {
    let m = proto::ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    import_proto(&m, base_dir)
}

/// Import an ONNX model file (external data is read from its directory).
pub fn import_path(path: &Path) -> Result<Model, OnnxError> {
    let bytes = std::fs::read(path).map_err(|e| OnnxError::Io(format!("{}: {e}", path.display())))?;
    import_bytes(&bytes, path.parent())
}

struct Scope {
    graph: GraphId,
    names: HashMap<String, ValueId>,
}

struct Importer<'a> {
    graphs: Vec<Graph>,
    scopes: Vec<Scope>,
    opsets: HashMap<String, i64>,
    base_dir: Option<&'a Path>,
    functions: HashMap<(String, String), &'a proto::FunctionProto>,
    /// Model-local functions being expanded (to reject recursion).
    expanding: Vec<(String, String)>,
    node_count: usize,
}

/// Import a decoded `ModelProto`.
pub fn import_proto(m: &proto::ModelProto, base_dir: Option<&Path>) -> Result<Model, OnnxError> {
    let graph = m.graph.as_ref().ok_or_else(|| OnnxError::Invalid("model has no graph".into()))?;
    let mut opsets = HashMap::new();
    for o in &m.opset_import {
        let d = if o.domain == "ai.onnx" { String::new() } else { o.domain.clone() };
        opsets.insert(d, o.version);
    }
    if m.opset_import.is_empty() {
        // IR version 1-2 models may omit opset_import; they are opset 1.
        opsets.insert(String::new(), 1);
    }
    let mut imp = Importer {
        graphs: Vec::new(),
        scopes: Vec::new(),
        opsets,
        base_dir,
        functions: m.functions.iter().map(|f| ((f.domain.clone(), f.name.clone()), f)).collect(),
        expanding: Vec::new(),
        node_count: 0,
    };
    let main = imp.import_graph(graph, &[])?;
    let mut model = Model {
        graphs: imp.graphs,
        main,
        opsets: {
            let mut v: Vec<(String, i64)> = imp.opsets.into_iter().collect();
            v.sort();
            v
        },
        producer: format!("{} {}", m.producer_name, m.producer_version).trim().to_string(),
        metadata: m.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect(),
    };
    model.validate()?;
    strata_ir::infer::infer_types(&mut model)?;
    Ok(model)
}

impl<'a> Importer<'a> {
    fn graph_mut(&mut self, id: GraphId) -> &mut Graph {
        &mut self.graphs[id.0 as usize]
    }

    /// Resolve a name in the current scope, capturing it from enclosing
    /// scopes if needed.
    fn resolve(&mut self, name: &str) -> Option<ValueId> {
        let depth = self.scopes.len() - 1;
        let k = (0..=depth).rev().find(|&k| self.scopes[k].names.contains_key(name))?;
        let mut id = self.scopes[k].names[name];
        for j in k + 1..=depth {
            let outer_graph = self.scopes[j - 1].graph;
            let ty = self.graphs[outer_graph.0 as usize].value(id).ty.clone();
            let g = self.scopes[j].graph;
            let inner = self.graph_mut(g).add_value(name, ty);
            self.graph_mut(g).captures.push((id, inner));
            self.scopes[j].names.insert(name.to_string(), inner);
            id = inner;
        }
        Some(id)
    }

    fn define(&mut self, name: &str, ty: ValueType) -> ValueId {
        let scope = self.scopes.last_mut().unwrap();
        let g = scope.graph;
        let id = self.graphs[g.0 as usize].add_value(name, ty);
        self.scopes.last_mut().unwrap().names.insert(name.to_string(), id);
        id
    }

    fn import_graph(&mut self, gp: &proto::GraphProto, _outer: &[String]) -> Result<GraphId, OnnxError> {
        if self.scopes.len() > 64 {
            return Err(OnnxError::Invalid("subgraphs nested more than 64 deep".into()));
        }
        let gid = GraphId(self.graphs.len() as u32);
        self.graphs.push(Graph { name: gp.name.clone(), ..Default::default() });
        self.scopes.push(Scope { graph: gid, names: HashMap::new() });
        let result = self.import_graph_body(gp, gid);
        self.scopes.pop();
        result.map(|_| gid)
    }

    fn import_graph_body(&mut self, gp: &proto::GraphProto, gid: GraphId) -> Result<(), OnnxError> {
        let mut declared: HashMap<&str, ValueType> = HashMap::new();
        for vi in gp.value_info.iter().chain(gp.output.iter()) {
            if let Some(t) = &vi.r#type {
                declared.insert(&vi.name, type_from_proto(t)?);
            }
        }
        let mut init_names = std::collections::HashSet::new();
        for t in &gp.initializer {
            let data = tensor_from_proto(t, self.base_dir)?;
            let id = self.define(
                &t.name,
                ValueType::Tensor {
                    dtype: data.dtype(),
                    shape: Some(data.shape().iter().map(|&d| strata_ir::Dim::Known(d as u64)).collect()),
                },
            );
            self.graph_mut(gid).initializers.push((id, data));
            init_names.insert(t.name.as_str());
        }
        for s in &gp.sparse_initializer {
            let data = sparse_to_dense(s, self.base_dir)?;
            let name = s.values.as_ref().map(|v| v.name.clone()).unwrap_or_default();
            let id = self.define(&name, ValueType::tensor(data.dtype()));
            self.graph_mut(gid).initializers.push((id, data));
            init_names.insert(s.values.as_ref().map(|v| v.name.as_str()).unwrap_or(""));
        }
        for vi in &gp.input {
            if init_names.contains(vi.name.as_str()) {
                continue; // IR < 4: weights are listed as inputs; they stay constants.
            }
            let ty = match &vi.r#type {
                Some(t) => type_from_proto(t)?,
                None => ValueType::Unknown,
            };
            let id = self.define(&vi.name, ty);
            self.graph_mut(gid).inputs.push(id);
        }
        for np in &gp.node {
            self.import_node(np, gid, &declared)?;
        }
        for vo in &gp.output {
            let id = self.resolve(&vo.name).ok_or_else(|| {
                OnnxError::Invalid(format!("graph '{}': output '{}' is never produced", gp.name, vo.name))
            })?;
            if let Some(t) = &vo.r#type {
                let ty = type_from_proto(t)?;
                let v = self.graph_mut(gid).value_mut(id);
                if v.ty == ValueType::Unknown {
                    v.ty = ty;
                }
            }
            self.graph_mut(gid).outputs.push(id);
        }
        Ok(())
    }

    fn import_node(
        &mut self,
        np: &proto::NodeProto,
        gid: GraphId,
        declared: &HashMap<&str, ValueType>,
    ) -> Result<(), OnnxError> {
        self.node_count += 1;
        let name = if np.name.is_empty() { format!("{}_{}", np.op_type, self.node_count) } else { np.name.clone() };
        let domain = if np.domain == "ai.onnx" { "" } else { np.domain.as_str() };
        let opset = self.opsets.get(domain).copied().unwrap_or(0);
        let node_err = |message: String| OnnxError::Node {
            node: name.clone(),
            op: np.op_type.clone(),
            domain: if domain.is_empty() { "ai.onnx".into() } else { domain.into() },
            opset,
            message,
        };
        let key = (np.domain.clone(), np.op_type.clone());
        if let Some(f) = self.functions.get(&key).copied() {
            if self.expanding.contains(&key) || self.expanding.len() >= 16 {
                return Err(node_err(
                    "model-local functions call each other recursively (or nest deeper than 16)".into(),
                ));
            }
            self.expanding.push(key);
            let r = self.inline_function(np, f, gid, declared);
            self.expanding.pop();
            return r.map_err(|e| node_err(format!("while expanding model-local function: {e}")));
        }
        match DOMAINS.iter().find(|(d, _)| *d == domain) {
            None => return Err(node_err("unsupported operator domain".into())),
            Some((_, max)) if opset > *max => {
                return Err(node_err(format!("opset {opset} is newer than the newest supported ({max})")));
            }
            Some(_) if opset == 0 => return Err(node_err("the model does not import this operator's domain".into())),
            _ => {}
        }
        let found =
            registry::lookup(domain, &np.op_type, opset).ok_or_else(|| node_err("unsupported operator".into()))?;
        let mut attrs = Vec::with_capacity(np.attribute.len());
        for a in &np.attribute {
            if domain.is_empty() && registry::IGNORED_ATTRS.iter().any(|&(n, until)| n == a.name && opset < until) {
                continue;
            }
            let v = self.attr_value(a).map_err(|e| node_err(format!("attribute '{}': {e}", a.name)))?;
            attrs.push((a.name.clone(), v));
        }
        if let Some(f) = found.fixup {
            f(&mut attrs).map_err(node_err)?;
        }
        let mut inputs = Vec::with_capacity(np.input.len());
        for i in &np.input {
            if i.is_empty() {
                inputs.push(None);
            } else {
                inputs.push(Some(self.resolve(i).ok_or_else(|| node_err(format!("input '{i}' is not defined")))?));
            }
        }
        let mut ir = found.ir;
        if let Some(rw) = found.rewrite {
            let n_outputs = np.output.iter().filter(|o| !o.is_empty()).count();
            if let Some(r) = self.legacy(rw, &name, gid, &mut attrs, &mut inputs, n_outputs).map_err(node_err)? {
                ir = r;
            }
        }
        let op = Op::parse(ir, AttrReader::new(attrs)).map_err(node_err)?;
        let mut outputs = Vec::with_capacity(np.output.len());
        for o in &np.output {
            if o.is_empty() {
                outputs.push(None);
            } else {
                let ty = declared.get(o.as_str()).cloned().unwrap_or(ValueType::Unknown);
                outputs.push(Some(self.define(o, ty)));
            }
        }
        self.graph_mut(gid).add_node(Node { name, op, inputs, outputs });
        Ok(())
    }

    fn attr_value(&mut self, a: &proto::AttributeProto) -> Result<AttrValue, OnnxError> {
        use proto::attribute_type as t;
        if !a.ref_attr_name.is_empty() {
            return Err(OnnxError::Unsupported(format!(
                "attribute reference '{}' outside a function",
                a.ref_attr_name
            )));
        }
        let kind = if a.r#type != 0 { a.r#type } else { infer_attr_type(a) };
        Ok(match kind {
            t::FLOAT => AttrValue::Float(a.f),
            t::INT => AttrValue::Int(a.i),
            t::STRING => AttrValue::String(String::from_utf8_lossy(&a.s).into_owned()),
            t::TENSOR => AttrValue::Tensor(tensor_from_proto(
                a.t.as_ref().ok_or_else(|| OnnxError::Invalid("tensor attribute without tensor".into()))?,
                self.base_dir,
            )?),
            t::SPARSE_TENSOR => AttrValue::Tensor(sparse_to_dense(
                a.sparse_tensor.as_ref().ok_or_else(|| OnnxError::Invalid("sparse attribute without tensor".into()))?,
                self.base_dir,
            )?),
            t::GRAPH => AttrValue::Graph(self.import_graph(
                a.g.as_ref().ok_or_else(|| OnnxError::Invalid("graph attribute without graph".into()))?,
                &[],
            )?),
            t::TYPE_PROTO => AttrValue::Type(type_from_proto(
                a.tp.as_ref().ok_or_else(|| OnnxError::Invalid("type attribute without type".into()))?,
            )?),
            t::FLOATS => AttrValue::Floats(a.floats.clone()),
            t::INTS => AttrValue::Ints(a.ints.clone()),
            t::STRINGS => {
                AttrValue::Strings(a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
            }
            t::TENSORS => AttrValue::Tensors(
                a.tensors.iter().map(|x| tensor_from_proto(x, self.base_dir)).collect::<Result<_, _>>()?,
            ),
            t::GRAPHS => {
                let mut ids = Vec::new();
                for g in &a.graphs {
                    ids.push(self.import_graph(g, &[])?);
                }
                AttrValue::Graphs(ids)
            }
            other => return Err(OnnxError::Unsupported(format!("attribute type {other}"))),
        })
    }

    /// Expand a call to a model-local function into its body.
    fn inline_function(
        &mut self,
        np: &proto::NodeProto,
        f: &'a proto::FunctionProto,
        gid: GraphId,
        declared: &HashMap<&str, ValueType>,
    ) -> Result<(), OnnxError> {
        self.node_count += 1;
        let prefix = format!("{}__{}__", f.name, self.node_count);
        let mut rename: HashMap<&str, String> = HashMap::new();
        for (i, formal) in f.input.iter().enumerate() {
            rename.insert(formal, np.input.get(i).cloned().unwrap_or_default());
        }
        for (i, formal) in f.output.iter().enumerate() {
            rename.insert(formal, np.output.get(i).cloned().unwrap_or_default());
        }
        let mut call_attrs: HashMap<&str, &proto::AttributeProto> =
            np.attribute.iter().map(|a| (a.name.as_str(), a)).collect();
        for a in &f.attribute_proto {
            call_attrs.entry(&a.name).or_insert(a);
        }
        for (k, v) in f.opset_import.iter().map(|o| (o.domain.clone(), o.version)) {
            self.opsets.entry(if k == "ai.onnx" { String::new() } else { k }).or_insert(v);
        }
        for body in &f.node {
            let mut n = body.clone();
            for name in n.input.iter_mut().chain(n.output.iter_mut()) {
                if name.is_empty() {
                    continue;
                }
                *name = match rename.get(name.as_str()) {
                    Some(r) => r.clone(),
                    None => format!("{prefix}{name}"),
                };
            }
            let mut attrs = Vec::new();
            for a in &n.attribute {
                if a.ref_attr_name.is_empty() {
                    attrs.push(a.clone());
                } else if let Some(actual) = call_attrs.get(a.ref_attr_name.as_str()) {
                    let mut c = (*actual).clone();
                    c.name = a.name.clone();
                    attrs.push(c);
                }
            }
            n.attribute = attrs;
            n.name = format!("{prefix}{}", n.name);
            self.import_node(&n, gid, declared)?;
        }
        Ok(())
    }
}

fn infer_attr_type(a: &proto::AttributeProto) -> i32 {
    use proto::attribute_type as t;
    if a.t.is_some() {
        t::TENSOR
    } else if a.g.is_some() {
        t::GRAPH
    } else if !a.floats.is_empty() {
        t::FLOATS
    } else if !a.ints.is_empty() {
        t::INTS
    } else if !a.strings.is_empty() {
        t::STRINGS
    } else if !a.s.is_empty() {
        t::STRING
    } else if a.f != 0.0 {
        t::FLOAT
    } else {
        t::INT
    }
}
