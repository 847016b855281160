//! The vocabulary of shape inference, shared by the rules each op family
//! declares next to its variants (`ElementwiseOp::infer`, `TensorOp::infer`,
//! ...) and by the pass that applies them ([`crate::infer`]): what is known
//! about one input of a node ([`In`]), broadcasting, axis normalisation.
//! It imports only element types, value types and tensors, so the op
//! families can use it without importing the inference pass.

use crate::dtype::DType;
use crate::tensor::TensorData;
use crate::types::{Dim, ValueType};

/// Output types of one node, as far as they can be inferred (`None` where
/// unknown), or the contradiction that makes the node invalid.
pub type Outs = Result<Vec<Option<ValueType>>, String>;

/// What inference knows about one input of a node.
pub struct In<'a> {
    /// Its type, when known.
    pub ty: Option<&'a ValueType>,
    /// Its value, when it is a constant.
    pub konst: Option<&'a TensorData>,
}

impl In<'_> {
    /// Element type of a tensor input.
    pub fn dtype(&self) -> Option<DType> {
        self.ty.and_then(|t| t.dtype())
    }
    /// Shape of a tensor input of known rank.
    pub fn shape(&self) -> Option<&[Dim]> {
        match self.ty {
            Some(ValueType::Tensor { shape: Some(s), .. }) => Some(s),
            _ => None,
        }
    }
    /// Values of a constant integer input.
    pub fn ints(&self) -> Option<Vec<i64>> {
        self.konst.filter(|t| t.dtype().is_int()).map(|t| t.to_i64_vec())
    }
}

/// The first input's element type and shape (the starting point of most rules).
pub(crate) fn first(ins: &[In]) -> (Option<DType>, Option<Vec<Dim>>) {
    let i0 = ins.first();
    (i0.and_then(|i| i.dtype()), i0.and_then(|i| i.shape()).map(|s| s.to_vec()))
}

/// One output of element type `d` (when known) and the given shape.
pub(crate) fn same(d: Option<DType>, shape: Option<Vec<Dim>>) -> Vec<Option<ValueType>> {
    vec![d.map(|d| t(d, shape))]
}

/// Known dimensions.
pub(crate) fn known(v: &[usize]) -> Vec<Dim> {
    v.iter().map(|&d| Dim::Known(d as u64)).collect()
}

/// A tensor type.
pub(crate) fn t(dtype: DType, shape: Option<Vec<Dim>>) -> ValueType {
    ValueType::Tensor { dtype, shape }
}

/// The shape of a matrix product of operands of rank ≥ 2 (batch axes
/// broadcast); `None` when unknown, `Err` when the inner sizes differ.
pub(crate) fn matmul(a: Option<&[Dim]>, b: Option<&[Dim]>) -> Result<Option<Vec<Dim>>, String> {
    let (Some(a), Some(b)) = (a, b) else { return Ok(None) };
    if a.len() < 2 || b.len() < 2 {
        return Ok(None);
    }
    let (k1, k2) = (&a[a.len() - 1], &b[b.len() - 2]);
    if let (Dim::Known(x), Dim::Known(y)) = (k1, k2)
        && x != y
    {
        return Err(format!("MatMul inner dimensions differ: {x} and {y}"));
    }
    let batch = broadcast(&[Some(&a[..a.len() - 2]), Some(&b[..b.len() - 2])])?;
    Ok(batch.map(|mut v| {
        v.push(a[a.len() - 2].clone());
        v.push(b[b.len() - 1].clone());
        v
    }))
}

/// Broadcast two dimensions; `Err` when they certainly differ.
fn bdim(a: &Dim, b: &Dim) -> Result<Dim, String> {
    Ok(match (a, b) {
        (Dim::Known(1), x) | (x, Dim::Known(1)) => x.clone(),
        (Dim::Known(x), Dim::Known(y)) if x != y => return Err(format!("dimensions {x} and {y} cannot broadcast")),
        (x, y) if x == y => x.clone(),
        (Dim::Known(x), _) | (_, Dim::Known(x)) => Dim::Known(*x),
        _ => Dim::Unknown,
    })
}

/// Multidirectional broadcast of shapes (None if any is unknown).
pub fn broadcast(shapes: &[Option<&[Dim]>]) -> Result<Option<Vec<Dim>>, String> {
    let mut out: Vec<Dim> = Vec::new();
    for s in shapes {
        let Some(s) = s else { return Ok(None) };
        let rank = out.len().max(s.len());
        let mut next = vec![Dim::Known(1); rank];
        for (i, d) in next.iter_mut().enumerate() {
            let a = if i + out.len() >= rank { out[i + out.len() - rank].clone() } else { Dim::Known(1) };
            let b = if i + s.len() >= rank { s[i + s.len() - rank].clone() } else { Dim::Known(1) };
            *d = bdim(&a, &b)?;
        }
        out = next;
    }
    Ok(Some(out))
}

/// The broadcast shape of every input.
pub(crate) fn broadcast_all(ins: &[In]) -> Result<Option<Vec<Dim>>, String> {
    broadcast(&ins.iter().map(|i| i.shape()).collect::<Vec<_>>())
}

/// A possibly negative axis normalised for `rank`.
pub(crate) fn norm(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// The shape of a reduction over `axes` (all axes when none are given,
/// unless `noop`).
pub(crate) fn reduce_shape(s: Option<&[Dim]>, axes: Option<Vec<i64>>, keepdims: bool, noop: bool) -> Option<Vec<Dim>> {
    let s = s?;
    let axes: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a.iter().map(|&x| norm(x, s.len())).collect::<Option<_>>()?,
        _ if noop => return Some(s.to_vec()),
        _ => (0..s.len()).collect(),
    };
    Some(
        s.iter()
            .enumerate()
            .filter_map(|(i, d)| match (axes.contains(&i), keepdims) {
                (true, true) => Some(Dim::Known(1)),
                (true, false) => None,
                (false, _) => Some(d.clone()),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        let a = [Dim::Sym("n".into()), Dim::Known(3)];
        let b = [Dim::Known(1), Dim::Known(3)];
        assert_eq!(broadcast(&[Some(&a), Some(&b)]).unwrap(), Some(a.to_vec()));
        assert!(broadcast(&[Some(&[Dim::Known(2)][..]), Some(&[Dim::Known(3)][..])]).is_err());
    }
}
