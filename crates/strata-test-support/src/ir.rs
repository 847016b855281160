//! IR models built in code, mostly one node over a few inputs and weights.

use strata_ir::{DType, Dim, Graph, GraphId, Model, Node, Op, TensorData, ValueId, ValueType};

/// A tensor type with the exact shape (and element type) of `t`.
pub fn exact(t: &TensorData) -> ValueType {
    ValueType::Tensor { dtype: t.dtype(), shape: Some(t.shape().iter().map(|&d| Dim::Known(d as u64)).collect()) }
}

/// A model under construction: named values, nodes, inputs and weights.
/// Values are created on first mention; [`Builder::build`] infers types.
pub struct Builder {
    g: Graph,
    opset: i64,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// An empty main graph `t`, default-domain opset 21.
    pub fn new() -> Self {
        Builder { g: Graph { name: "t".into(), ..Default::default() }, opset: 21 }
    }

    /// One node `n0` running `op`: graph inputs `ins` typed exactly like
    /// the tensors they will receive, constant operands `weights`, node
    /// operands `node_ins` by name (`""` for an absent one) and the typed
    /// outputs `outs`, every one a graph output. With `out_rank`, outputs
    /// are declared of that rank (dimensions unknown); without, of unknown
    /// shape.
    pub fn one_node(
        op: Op,
        ins: &[(&str, &TensorData)],
        weights: &[(&str, TensorData)],
        node_ins: &[&str],
        outs: &[(&str, DType)],
        out_rank: Option<usize>,
    ) -> Self {
        let mut b = Builder::new();
        for (name, t) in ins {
            b.input_exact(name, t);
        }
        for (name, t) in weights {
            b.weight(name, t.clone());
        }
        for (name, dtype) in outs {
            let shape = out_rank.map(|r| vec![Dim::Unknown; r]);
            b.g.add_value(*name, ValueType::Tensor { dtype: *dtype, shape });
        }
        let names: Vec<&str> = outs.iter().map(|(n, _)| *n).collect();
        b.node(op, node_ins, &names);
        for n in names {
            b.output(n);
        }
        b
    }

    /// Import as default-domain opset `v` (21 unless set).
    pub fn opset(&mut self, v: i64) -> &mut Self {
        self.opset = v;
        self
    }

    /// The value named `name`, created (of unknown type) when new.
    pub fn val(&mut self, name: &str) -> ValueId {
        match self.g.find_value(name) {
            Some(v) => v,
            None => self.g.add_value(name, ValueType::Unknown),
        }
    }

    /// A graph input of element type `dtype`, shape unknown.
    pub fn input(&mut self, name: &str, dtype: DType) -> &mut Self {
        self.input_typed(name, ValueType::tensor(dtype))
    }

    /// A graph input of type `ty`.
    pub fn input_typed(&mut self, name: &str, ty: ValueType) -> &mut Self {
        let v = self.g.add_value(name, ty);
        self.g.inputs.push(v);
        self
    }

    /// A graph input typed exactly like `t` (element type and shape).
    pub fn input_exact(&mut self, name: &str, t: &TensorData) -> &mut Self {
        self.input_typed(name, exact(t))
    }

    /// An input of known rank (dimensions named, sizes left symbolic).
    pub fn input_rank(&mut self, name: &str, dtype: DType, rank: usize) -> &mut Self {
        let shape = (0..rank).map(|i| Dim::Sym(format!("{name}{i}"))).collect();
        self.input_typed(name, ValueType::Tensor { dtype, shape: Some(shape) })
    }

    /// Declare the element type of an intermediate or output value.
    pub fn typed(&mut self, name: &str, dtype: DType) -> &mut Self {
        self.g.add_value(name, ValueType::tensor(dtype));
        self
    }

    /// A constant operand (initializer) typed exactly like `t`.
    pub fn weight(&mut self, name: &str, t: TensorData) -> &mut Self {
        let ty = exact(&t);
        self.weight_typed(name, ty, t)
    }

    /// A constant operand (initializer) declared of type `ty`.
    pub fn weight_typed(&mut self, name: &str, ty: ValueType, t: TensorData) -> &mut Self {
        let v = self.g.add_value(name, ty);
        self.g.initializers.push((v, t));
        self
    }

    /// A node named `n{index}` reading `ins` (`""` for an absent operand)
    /// and writing `outs`.
    pub fn node(&mut self, op: Op, ins: &[&str], outs: &[&str]) -> &mut Self {
        let name = format!("n{}", self.g.nodes.len());
        self.node_named(&name, op, ins, outs)
    }

    /// A node named `name` reading `ins` (`""` for an absent operand) and
    /// writing `outs` (`""` for an output not produced).
    pub fn node_named(&mut self, name: &str, op: Op, ins: &[&str], outs: &[&str]) -> &mut Self {
        let inputs = ins.iter().map(|n| if n.is_empty() { None } else { Some(self.val(n)) }).collect();
        let outputs = outs.iter().map(|n| if n.is_empty() { None } else { Some(self.val(n)) }).collect();
        self.g.add_node(Node { name: name.into(), op, inputs, outputs });
        self
    }

    /// Make `name` a graph output.
    pub fn output(&mut self, name: &str) -> &mut Self {
        let v = self.val(name);
        self.g.outputs.push(v);
        self
    }

    /// Name the main graph (`t` unless set).
    pub fn graph_name(&mut self, name: &str) -> &mut Self {
        self.g.name = name.into();
        self
    }

    /// The model (main graph only), its types inferred.
    pub fn build(&mut self) -> Model {
        let mut m = self.build_as_declared();
        strata_ir::infer::infer_types(&mut m).expect("types infer");
        m
    }

    /// The model (main graph only) with the types as declared, nothing
    /// inferred.
    pub fn build_as_declared(&mut self) -> Model {
        Model {
            graphs: vec![std::mem::take(&mut self.g)],
            main: GraphId(0),
            opsets: vec![(String::new(), self.opset)],
            producer: "strata tests".into(),
            metadata: vec![],
        }
    }
}
