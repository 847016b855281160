//! The `.strata` artifact: a compiled model that loads without any importer.
//!
//! Layout (little-endian):
//! ```text
//! 0   magic    b"STRATA\0\0"
//! 8   version  u32   (format version, see VERSION)
//! 12  flags    u32   (0)
//! 16  ir_len   u64   postcard-encoded IR (weights removed)
//! 24  blob_len u64   weight blob
//! 32  crc32    u32   of everything after the 64-byte header
//! 36  reserved up to 64
//! 64  IR bytes, zero-padded to a multiple of 64
//! ..  weight blob: each tensor 64-byte aligned
//! ```
//! Weights are read in place from the file's bytes (no copy) when the
//! caller hands over a shared owner of them (for example a memory map).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dtype::DType;
use crate::error::IrError;
use crate::graph::Model;
use crate::tensor::{Buffer, TensorData};

/// File magic.
pub const MAGIC: &[u8; 8] = b"STRATA\0\0";
/// The format version this build writes. Version 2: operator attributes
/// hold decoded semantics (mode enums, `bool` flags, Einsum equations as
/// text checked when read), which changes the encoded layout of the ops.
/// Version 3: the remaining string modes are enums too (Gelu, BitShift,
/// Cast's `round_mode`, Pad, DepthToSpace/SpaceToDepth, the scatters,
/// TensorScatter, the losses, GridSample, Upsample, CausalConvWithState,
/// LinearAttention). Version 4: the random generators left `TensorOp` for
/// their own family, `Op::Random`, which renumbers `TensorOp`'s variants.
pub const VERSION: u32 = 4;
/// The oldest format version this build reads (earlier versions encoded
/// raw attribute strings where this one has enums, or the random
/// generators among the tensor operators).
pub const MIN_VERSION: u32 = 4;
/// The deepest nesting of subgraphs (`If`, `Loop`, `Scan` bodies) an
/// artifact may have. Deeper or cyclic nesting is refused when reading, so
/// a hostile file cannot exhaust the stack of code that walks subgraphs.
pub const MAX_SUBGRAPH_DEPTH: usize = 64;
const HEADER: usize = 64;
const ALIGN: usize = 64;

#[derive(Serialize, Deserialize)]
struct WeightRef {
    graph: u32,
    value: u32,
    dtype: DType,
    shape: Vec<usize>,
    offset: u64,
    len: u64,
}

#[derive(Serialize, Deserialize)]
struct Body {
    model: Model,
    weights: Vec<WeightRef>,
    /// String initializers cannot live in the byte blob.
    string_weights: Vec<(u32, u32, TensorData)>,
}

fn pad(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(ALIGN) {
        v.push(0);
    }
}

/// Serialise a model to `.strata` bytes.
pub fn write(model: &Model) -> Result<Vec<u8>, IrError> {
    let mut m = model.clone();
    let mut blob = Vec::new();
    let mut weights = Vec::new();
    let mut string_weights = Vec::new();
    for (gi, g) in m.graphs.iter_mut().enumerate() {
        for (v, t) in std::mem::take(&mut g.initializers) {
            match t.bytes() {
                Some(b) => {
                    pad(&mut blob);
                    weights.push(WeightRef {
                        graph: gi as u32,
                        value: v.0,
                        dtype: t.dtype(),
                        shape: t.shape().to_vec(),
                        offset: blob.len() as u64,
                        len: b.len() as u64,
                    });
                    blob.extend_from_slice(b.as_slice());
                }
                None => string_weights.push((gi as u32, v.0, t)),
            }
        }
    }
    let ir = postcard::to_allocvec(&Body { model: m, weights, string_weights })
        .map_err(|e| IrError::Artifact(e.to_string()))?;
    let mut payload = ir.clone();
    pad(&mut payload);
    payload.extend_from_slice(&blob);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(ir.len() as u64).to_le_bytes());
    out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.resize(HEADER, 0);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Read `.strata` bytes (copies them once into a shared buffer).
pub fn read(bytes: &[u8]) -> Result<Model, IrError> {
    read_shared(Buffer::from_vec(bytes.to_vec()))
}

/// Read `.strata` bytes held by a shared owner; weights point into it.
pub fn read_shared(file: Buffer) -> Result<Model, IrError> {
    let bytes = file.as_slice();
    let bad = |m: String| IrError::Artifact(m);
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(bad("not a .strata file (bad magic or too short)".into()));
    }
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let version = u32_at(8);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(bad(format!(
            "format version {version} is not supported (this build reads versions {MIN_VERSION} to {VERSION}){}",
            if version > VERSION { "; it was written by a newer Strata" } else { "" }
        )));
    }
    let ir_len = u64_at(16) as usize;
    let blob_len = u64_at(24) as usize;
    let crc = u32_at(32);
    let payload = &bytes[HEADER..];
    if crc32fast::hash(payload) != crc {
        return Err(bad("checksum mismatch: the file is corrupt or truncated".into()));
    }
    let ir_padded = ir_len.div_ceil(ALIGN).checked_mul(ALIGN).ok_or_else(|| bad("bad IR length".into()))?;
    if ir_padded.checked_add(blob_len) != Some(payload.len()) {
        return Err(bad("section lengths do not match the file size".into()));
    }
    let body: Body = postcard::from_bytes(&payload[..ir_len]).map_err(|e| bad(format!("cannot decode IR: {e}")))?;
    let mut model = body.model;
    let blob_start = HEADER + ir_padded;
    for w in body.weights {
        let g = model.graphs.get_mut(w.graph as usize).ok_or_else(|| bad("weight refers to a missing graph".into()))?;
        let (off, len) = (usize::try_from(w.offset).ok(), usize::try_from(w.len).ok());
        let (Some(off), Some(len)) = (off, len) else { return Err(bad("weight range overflows".into())) };
        if off.checked_add(len).is_none_or(|e| e > blob_len) {
            return Err(bad("weight range is outside the blob".into()));
        }
        let buf = file.slice(blob_start + off, len).ok_or_else(|| bad("weight range is outside the file".into()))?;
        let t = TensorData::from_bytes(w.dtype, w.shape, buf)?;
        if w.value as usize >= g.values.len() {
            return Err(bad("weight refers to a missing value".into()));
        }
        g.initializers.push((crate::graph::ValueId(w.value), t));
    }
    for (gi, v, t) in body.string_weights {
        let g = model.graphs.get_mut(gi as usize).ok_or_else(|| bad("weight refers to a missing graph".into()))?;
        g.initializers.push((crate::graph::ValueId(v), t));
    }
    model.validate()?;
    check_subgraph_nesting(&model)?;
    Ok(model)
}

/// Refuse subgraph references that form a cycle or nest more than
/// [`MAX_SUBGRAPH_DEPTH`] levels below the main graph (walked without recursion).
fn check_subgraph_nesting(model: &Model) -> Result<(), IrError> {
    let n = model.graphs.len();
    let children = |g: usize| -> Vec<usize> {
        model.graphs[g].nodes.iter().flat_map(|node| node.op.subgraphs()).map(|s| s.0 as usize).collect()
    };
    // 0: not seen, 1: on the current path, 2: done (height known).
    let mut state = vec![0u8; n];
    let mut height = vec![0usize; n];
    let main = model.main.0 as usize;
    if main >= n {
        return Err(IrError::Artifact("the main graph is missing".into()));
    }
    let too_deep = || IrError::Artifact(format!("subgraphs nest more than {MAX_SUBGRAPH_DEPTH} levels deep"));
    state[main] = 1;
    let mut path: Vec<(usize, Vec<usize>, usize)> = vec![(main, children(main), 0)];
    while let Some((g, kids, next)) = path.last_mut() {
        if let Some(&c) = kids.get(*next) {
            *next += 1;
            let Some(st) = state.get(c).copied() else {
                return Err(IrError::Artifact(format!("graph #{g} refers to a missing subgraph #{c}")));
            };
            match st {
                1 => {
                    return Err(IrError::Artifact(format!(
                        "subgraph '{}' contains itself (a cycle of subgraph references)",
                        model.graphs[c].name
                    )));
                }
                2 if path.len() + height[c] > MAX_SUBGRAPH_DEPTH => return Err(too_deep()),
                2 => {}
                _ => {
                    if path.len() >= MAX_SUBGRAPH_DEPTH {
                        return Err(too_deep());
                    }
                    state[c] = 1;
                    path.push((c, children(c), 0));
                }
            }
        } else {
            let g = *g;
            let h = kids.iter().map(|&c| height[c] + 1).max().unwrap_or(0);
            height[g] = h;
            state[g] = 2;
            path.pop();
        }
    }
    Ok(())
}

/// Read from a shared owner of bytes such as a memory map.
pub fn read_owner(owner: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Result<Model, IrError> {
    read_shared(Buffer::from_owner(owner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::AttrReader;
    use crate::graph::{Graph, GraphId, Node, ValueType};
    use crate::{AttrValue, Op};

    /// One node of `name` with `attrs`, reading `n_in` inputs.
    fn one_node(name: &str, attrs: Vec<(&str, AttrValue)>, n_in: usize) -> Model {
        let attrs = attrs.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        let op = Op::parse(name, AttrReader::new(attrs)).expect("valid op");
        let mut g = Graph::default();
        let inputs: Vec<_> = (0..n_in).map(|i| g.add_value(format!("x{i}"), ValueType::tensor(DType::F32))).collect();
        let y = g.add_value("y", ValueType::tensor(DType::F32));
        g.add_node(Node {
            name: "n".into(),
            op,
            inputs: inputs.iter().map(|&v| Some(v)).collect(),
            outputs: vec![Some(y)],
        });
        g.inputs = inputs;
        g.outputs = vec![y];
        Model { graphs: vec![g], main: GraphId(0), opsets: vec![], producer: String::new(), metadata: vec![] }
    }

    #[test]
    fn typed_attributes_survive_a_round_trip() {
        let s = |v: &str| AttrValue::String(v.into());
        for m in [
            one_node("Einsum", vec![("equation", s("ij,jk->ik"))], 2),
            one_node("LSTM", vec![("direction", s("bidirectional")), ("input_forget", AttrValue::Int(1))], 3),
            one_node("Resize", vec![("mode", s("cubic")), ("coordinate_transformation_mode", s("asymmetric"))], 1),
            one_node("MaxPool", vec![("kernel_shape", AttrValue::Ints(vec![2])), ("auto_pad", s("SAME_LOWER"))], 1),
        ] {
            let back = read(&write(&m).unwrap()).unwrap();
            assert_eq!(back.graphs[0].nodes, m.graphs[0].nodes);
        }
    }

    #[test]
    fn reading_checks_attributes_that_span_several_fields() {
        use crate::ops::NnOp;
        use crate::ops::recurrent::{Activation, Direction};
        let mut m = one_node("RNN", vec![], 3);
        m.graphs[0].nodes[0].op = Op::Nn(NnOp::RNN {
            activation_alpha: None,
            activation_beta: None,
            activations: Some(vec![Activation::Relu, Activation::Tanh]),
            clip: None,
            direction: Direction::Forward,
            hidden_size: None,
            layout: 0,
        });
        let e = read(&write(&m).unwrap()).unwrap_err().to_string();
        assert!(e.contains("node 'n' (RNN): expected 1 activation functions, got 2"), "{e}");
    }
}
