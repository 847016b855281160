//! Node-level rewrites of opsets 1-6 forms (`registry::Rewrite`) into
//! today's operators: the legacy attributes are consumed here, and where an
//! operand must be re-aligned, nodes computing the aligned operand are added
//! before the node, which then reads it.

use strata_ir::{AttrReader, AttrValue, Dim, GraphId, Model, Node, Op, TensorData, ValueId, ValueType};

use super::Importer;
use crate::registry::Rewrite;

type Attrs = Vec<(String, AttrValue)>;

/// Larger axes are refused before any arithmetic on them.
const MAX_RANK: i64 = 1 << 16;

/// Remove the integer attribute `name`, if present.
fn take_int(attrs: &mut Attrs, name: &str) -> Result<Option<i64>, String> {
    let Some(i) = attrs.iter().position(|(n, _)| n == name) else { return Ok(None) };
    match attrs.remove(i).1 {
        AttrValue::Int(v) => Ok(Some(v)),
        other => Err(format!("attribute '{name}' must be an integer, found {other:?}")),
    }
}

fn tensor_shape(ty: &ValueType) -> Option<Vec<Dim>> {
    match ty {
        ValueType::Tensor { shape: Some(s), .. } => Some(s.clone()),
        _ => None,
    }
}

impl Importer<'_> {
    /// Carry out `rw` on a node named `node` of graph `gid` whose inputs
    /// are resolved and whose attributes are not yet parsed; returns the IR
    /// operator the node becomes when that is no longer its own.
    pub(super) fn legacy(
        &mut self,
        rw: Rewrite,
        node: &str,
        gid: GraphId,
        attrs: &mut Attrs,
        inputs: &mut Vec<Option<ValueId>>,
        n_outputs: usize,
    ) -> Result<Option<&'static str>, String> {
        match rw {
            Rewrite::BroadcastAxis => {
                let broadcast = take_int(attrs, "broadcast")?.unwrap_or(0);
                let axis = take_int(attrs, "axis")?;
                match (broadcast, axis) {
                    (0, _) | (_, None) => {}
                    (_, Some(axis)) => self.align(node, gid, inputs, axis)?,
                }
            }
            Rewrite::PReluSlope => {
                // A slope of one element, or of rank(x) - 1 or more (e.g.
                // [C, 1, 1]), already broadcasts as numpy does; a slope of
                // unknown shape is left to it too.
                if let (Some(&Some(x)), Some(&Some(slope))) = (inputs.first(), inputs.get(1)) {
                    let [xs, ss] = self.shapes(gid, [x, slope]);
                    let per_channel = match (xs, ss) {
                        (_, Some(ss)) if ss.iter().all(|d| matches!(d, Dim::Known(1))) => false,
                        (Some(xs), Some(ss)) => ss.len() + 1 < xs.len(),
                        (None, Some(ss)) => ss.len() == 1,
                        (_, None) => false,
                    };
                    if per_channel {
                        self.align(node, gid, inputs, 1)?;
                    }
                }
            }
            Rewrite::BatchNorm => {
                let is_test = take_int(attrs, "is_test")?;
                let spatial = take_int(attrs, "spatial")?;
                if n_outputs > 1 && is_test == Some(0) {
                    return Err(format!(
                        "is_test=0 (training) with {n_outputs} outputs: only inference BatchNormalization is supported"
                    ));
                }
                if spatial == Some(0) {
                    if n_outputs > 1 {
                        return Err(format!("spatial=0 with {n_outputs} outputs: only inference is supported"));
                    }
                    return self.batch_norm_per_activation(node, gid, attrs, inputs).map(Some);
                }
            }
            Rewrite::ImageScaler => return self.image_scaler(node, gid, attrs, inputs).map(Some),
        }
        Ok(None)
    }

    /// ImageScaler: `scale * x + bias[c]` over [N, C, H, W]; the constants
    /// take `x`'s element type (`CastLike`). The node becomes the `Add`.
    fn image_scaler(
        &mut self,
        node: &str,
        gid: GraphId,
        attrs: &mut Attrs,
        inputs: &mut Vec<Option<ValueId>>,
    ) -> Result<&'static str, String> {
        let mut scale = 1.0;
        let mut bias = Vec::new();
        for (name, v) in attrs.drain(..) {
            match (name.as_str(), v) {
                ("scale", AttrValue::Float(f)) => scale = f,
                ("bias", AttrValue::Floats(b)) => bias = b,
                (n, v) => return Err(format!("attribute '{n}' is not an ImageScaler attribute of its type ({v:?})")),
            }
        }
        let [Some(x)] = inputs[..] else {
            return Err(format!("ImageScaler takes one input, found {}", inputs.len()));
        };
        let bad = |e: strata_ir::IrError| e.to_string();
        let scale = TensorData::from_f32(vec![], &[scale]).map_err(bad)?;
        let bias =
            (!bias.is_empty()).then(|| TensorData::from_f32(vec![bias.len(), 1, 1], &bias)).transpose().map_err(bad)?;
        let mut like_x = |t: TensorData| -> Result<ValueId, String> {
            let c = self.add(node, gid, "Constant", vec![("value".into(), AttrValue::Tensor(t))], vec![])?;
            self.add(node, gid, "CastLike", vec![], vec![c, x])
        };
        let scale = like_x(scale)?;
        let Some(bias) = bias else {
            *inputs = vec![Some(x), Some(scale)];
            return Ok("Mul");
        };
        let bias = like_x(bias)?;
        let scaled = self.add(node, gid, "Mul", vec![], vec![x, scale])?;
        *inputs = vec![Some(scaled), Some(bias)];
        Ok("Add")
    }

    /// BatchNormalization with `spatial=0`: scale, bias, mean and variance
    /// are [C, D1, ...], one per activation, so the node becomes
    /// `(x - mean) / sqrt(var + epsilon) * scale + bias` with each of them
    /// unsqueezed at axis 0 (numpy broadcasting over the batch). The node
    /// itself becomes the final `Add`.
    fn batch_norm_per_activation(
        &mut self,
        node: &str,
        gid: GraphId,
        attrs: &mut Attrs,
        inputs: &mut Vec<Option<ValueId>>,
    ) -> Result<&'static str, String> {
        let epsilon = match attrs.iter().position(|(n, _)| n == "epsilon").map(|i| attrs.remove(i).1) {
            None => 1e-5,
            Some(AttrValue::Float(e)) => e,
            Some(other) => return Err(format!("attribute 'epsilon' must be a float, found {other:?}")),
        };
        attrs.retain(|(n, _)| n != "momentum");
        if let Some((n, _)) = attrs.first() {
            return Err(format!("unsupported attribute '{n}' with spatial=0"));
        }
        let [Some(x), Some(scale), Some(bias), Some(mean), Some(var)] = inputs[..] else {
            return Err(format!("spatial=0 needs its 5 inputs, found {}", inputs.iter().flatten().count()));
        };
        let at0 = || vec![("axes".to_string(), AttrValue::Ints(vec![0]))];
        let scale = self.add(node, gid, "Unsqueeze", at0(), vec![scale])?;
        let bias = self.add(node, gid, "Unsqueeze", at0(), vec![bias])?;
        let mean = self.add(node, gid, "Unsqueeze", at0(), vec![mean])?;
        let var = self.add(node, gid, "Unsqueeze", at0(), vec![var])?;
        let eps = TensorData::from_f32(vec![], &[epsilon]).map_err(|e| e.to_string())?;
        let eps = self.add(node, gid, "Constant", vec![("value".into(), AttrValue::Tensor(eps))], vec![])?;
        let eps = self.add(node, gid, "CastLike", vec![], vec![eps, var])?;
        let var_eps = self.add(node, gid, "Add", vec![], vec![var, eps])?;
        let std = self.add(node, gid, "Sqrt", vec![], vec![var_eps])?;
        let centred = self.add(node, gid, "Sub", vec![], vec![x, mean])?;
        let normed = self.add(node, gid, "Div", vec![], vec![centred, std])?;
        let scaled = self.add(node, gid, "Mul", vec![], vec![normed, scale])?;
        *inputs = vec![Some(scaled), Some(bias)];
        Ok("Add")
    }

    fn shape_of(&self, gid: GraphId, v: ValueId) -> Option<Vec<Dim>> {
        tensor_shape(&self.graphs[gid.0 as usize].value(v).ty)
    }

    /// The shapes of `vs` in graph `gid`: declared (inputs, initializers,
    /// value_info), or else as type inference over the nodes imported so
    /// far derives them (run once, on a copy; weights share their bytes).
    fn shapes<const N: usize>(&self, gid: GraphId, vs: [ValueId; N]) -> [Option<Vec<Dim>>; N] {
        let declared = vs.map(|v| self.shape_of(gid, v));
        if declared.iter().all(Option::is_some) {
            return declared;
        }
        let mut m = Model {
            graphs: self.graphs.clone(),
            main: GraphId(0),
            opsets: Vec::new(),
            producer: String::new(),
            metadata: Vec::new(),
        };
        // A contradiction is reported by the import's own inference later.
        if strata_ir::infer::infer_types(&mut m).is_err() {
            return declared;
        }
        vs.map(|v| tensor_shape(&m.graph(gid).value(v).ty))
    }

    /// Replace input 1 by itself aligned with input 0 at `axis`: trailing
    /// dimensions of 1 are appended so that numpy broadcasting (aligning
    /// trailing dimensions) matches the legacy alignment at `axis`.
    fn align(&mut self, node: &str, gid: GraphId, inputs: &mut [Option<ValueId>], axis: i64) -> Result<(), String> {
        let (Some(&Some(a)), Some(&Some(b))) = (inputs.first(), inputs.get(1)) else {
            return Err("broadcasting at an axis needs both inputs".into());
        };
        if !(-MAX_RANK..MAX_RANK).contains(&axis) {
            return Err(format!("broadcast axis {axis} is out of range"));
        }
        let g = &self.graphs[gid.0 as usize];
        let (a_name, b_name) = (g.value(a).name.clone(), g.value(b).name.clone());
        let [a_shape, b_shape] = self.shapes(gid, [a, b]);
        let b_shape = b_shape.ok_or_else(|| {
            format!("broadcast at axis {axis}: the rank of input '{b_name}' is not known at import (declare its shape)")
        })?;
        let rb = b_shape.len() as i64;
        let ra = a_shape.map(|s| s.len() as i64);
        let bad = |ra: &dyn std::fmt::Display| {
            format!("input '{b_name}' of rank {rb} cannot be aligned at axis {axis} of input '{a_name}' (rank {ra})")
        };
        let trailing = match (axis, ra) {
            (..0, _) if rb > -axis || ra.is_some_and(|ra| -axis > ra) => {
                return Err(bad(&ra.map_or("unknown".into(), |r| r.to_string())));
            }
            (..0, _) => Some(-axis - rb),
            (_, Some(ra)) if axis + rb > ra => return Err(bad(&ra)),
            (_, Some(ra)) => Some(ra - axis - rb),
            (_, None) => None,
        };
        let aligned = match trailing {
            Some(0) => return Ok(()),
            Some(k) => {
                let axes: Vec<i64> = (1..=k).map(|i| -i).collect();
                self.add(node, gid, "Unsqueeze", vec![("axes".into(), AttrValue::Ints(axes))], vec![b])?
            }
            None => {
                // The rank of input 0 is known only when running: the
                // target shape is B's dimensions (Reshape's 0 = copy) then
                // one 1 per dimension of A after `axis + rank(B)`.
                let start = ("start".into(), AttrValue::Int(axis + rb));
                let tail = self.add(node, gid, "Shape", vec![start], vec![a])?;
                let count = self.add(node, gid, "Shape", vec![], vec![tail])?;
                let one = TensorData::from_i64(vec![1], &[1]).map_err(|e| e.to_string())?;
                let ones = self.add(
                    node,
                    gid,
                    "ConstantOfShape",
                    vec![("value".into(), AttrValue::Tensor(one))],
                    vec![count],
                )?;
                let zeros =
                    TensorData::from_i64(vec![rb as usize], &vec![0; rb as usize]).map_err(|e| e.to_string())?;
                let zeros =
                    self.add(node, gid, "Constant", vec![("value".into(), AttrValue::Tensor(zeros))], vec![])?;
                let target =
                    self.add(node, gid, "Concat", vec![("axis".into(), AttrValue::Int(0))], vec![zeros, ones])?;
                self.add(node, gid, "Reshape", vec![], vec![b, target])?
            }
        };
        inputs[1] = Some(aligned);
        Ok(())
    }

    /// Add a one-output node of IR operator `op` before node `node`; its
    /// output's type is left to inference.
    fn add(&mut self, node: &str, gid: GraphId, op: &str, attrs: Attrs, ins: Vec<ValueId>) -> Result<ValueId, String> {
        let g = &mut self.graphs[gid.0 as usize];
        let name = format!("{node}/legacy_{}_{op}", g.nodes.len());
        let op = Op::parse(op, AttrReader::new(attrs))?;
        let out = g.add_value(name.clone(), ValueType::Unknown);
        g.add_node(Node { name, op, inputs: ins.into_iter().map(Some).collect(), outputs: vec![Some(out)] });
        Ok(out)
    }
}
