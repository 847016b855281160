//! Nodes on float16 / bfloat16 tensors that no kernel takes directly run
//! as their float32 kernel: the node is compiled against a one-node copy of
//! its graph with those types (and constant operands) widened to float32;
//! at run time its half-precision inputs are widened (exactly) and its
//! half-precision outputs rounded to their type, to nearest-even, as ONNX
//! rounds a node's result. Arithmetic is in f32 (and f32-accumulated).

use std::collections::HashMap;

use strata_ir::{DType, Graph, Node, TensorData, ValueId, ValueType};

use super::{Ctx, Kernel, NodeInfo};
use crate::error::{CpuError, Result};
use crate::narrow::{narrow, widen};
use crate::tensor::{CpuTensor, is_half};

struct Widened {
    inner: Box<dyn Kernel>,
    /// Constant operands, widened once (by input position).
    consts: Vec<Option<CpuTensor>>,
    /// Each output's declared type when it is rounded back.
    narrow_to: Vec<Option<DType>>,
}

fn wide(d: DType) -> DType {
    if is_half(d) { DType::F32 } else { d }
}

/// Compile `info`'s node through `direct` on float32 in place of its
/// float16 / bfloat16 values.
pub(super) fn build(info: &NodeInfo, direct: fn(&NodeInfo) -> Result<Box<dyn Kernel>>) -> Result<Box<dyn Kernel>> {
    let g = info.graph;
    let mut wg = Graph { name: g.name.clone(), ..Graph::default() };
    let mut ids: HashMap<ValueId, ValueId> = HashMap::new();
    let mut map = |v: ValueId, wg: &mut Graph| -> Result<ValueId> {
        if let Some(&w) = ids.get(&v) {
            return Ok(w);
        }
        let val = g.value(v);
        let ty = match &val.ty {
            ValueType::Tensor { dtype, shape } => ValueType::Tensor { dtype: wide(*dtype), shape: shape.clone() },
            other => other.clone(),
        };
        let w = wg.add_value(val.name.clone(), ty);
        if let Some(t) = g.initializer(v) {
            let t = if is_half(t.dtype()) {
                TensorData::from_f64(DType::F32, t.shape().to_vec(), &t.to_f64_vec())
                    .map_err(|e| CpuError::Kernel(e.to_string()))?
            } else {
                t.clone()
            };
            wg.initializers.push((w, t));
        }
        ids.insert(v, w);
        Ok(w)
    };
    let mut inputs = Vec::with_capacity(info.node.inputs.len());
    for v in &info.node.inputs {
        inputs.push(match v {
            Some(v) => Some(map(*v, &mut wg)?),
            None => None,
        });
    }
    let mut outputs = Vec::with_capacity(info.node.outputs.len());
    for v in &info.node.outputs {
        outputs.push(match v {
            Some(v) => Some(map(*v, &mut wg)?),
            None => None,
        });
    }
    let node = Node { name: info.node.name.clone(), op: info.node.op.clone(), inputs, outputs };
    let inner = direct(&NodeInfo { graph: &wg, node: &node })?;
    let consts = info
        .node
        .inputs
        .iter()
        .map(|v| match v.and_then(|v| g.initializer(v)) {
            Some(t) if is_half(t.dtype()) => CpuTensor::from_host(t).and_then(|t| widen(&t)).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<Vec<_>>>()?;
    let narrow_to =
        info.node.outputs.iter().map(|v| v.and_then(|v| g.value(v).ty.dtype()).filter(|&d| is_half(d))).collect();
    Ok(Box::new(Widened { inner, consts, narrow_to }))
}

impl Kernel for Widened {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let mut owned: Vec<Option<CpuTensor>> = Vec::with_capacity(inputs.len());
        for (i, t) in inputs.iter().enumerate() {
            owned.push(match (t, self.consts.get(i).and_then(|c| c.as_ref())) {
                (Some(_), Some(c)) => Some(c.clone()),
                (Some(t), None) if is_half(t.dtype) => Some(widen(t)?),
                _ => None,
            });
        }
        let args: Vec<Option<&CpuTensor>> = inputs.iter().zip(&owned).map(|(t, w)| w.as_ref().or(*t)).collect();
        let outs = self.inner.run(ctx, &args)?;
        outs.into_iter()
            .enumerate()
            .map(|(i, t)| match self.narrow_to.get(i).copied().flatten() {
                Some(d) if t.dtype == DType::F32 => narrow(t, d),
                _ => Ok(t),
            })
            .collect()
    }
}
