//! Control flow (If, Loop, Scan), sequences and optionals.

use crate::dtype::DType;
use crate::types::{GraphId, ValueType};

crate::op_family! {
    /// Control-flow, sequence and optional operators.
    pub enum ControlOp {
        If { then_branch: GraphId, else_branch: GraphId },
        Loop { body: GraphId },
        Scan { body: GraphId, num_scan_inputs: i64, scan_input_axes: Option<Vec<i64>>,
               scan_input_directions: Option<Vec<i64>>, scan_output_axes: Option<Vec<i64>>,
               scan_output_directions: Option<Vec<i64>> },
        /// Opset-8 Scan: batched, with an optional `sequence_lens` first input.
        Scan8 { body: GraphId, num_scan_inputs: i64, directions: Option<Vec<i64>> },
        SequenceMap { body: GraphId },
        SequenceAt {},
        SequenceConstruct {},
        SequenceEmpty { dtype: DType = DType::F32 },
        SequenceErase {},
        SequenceInsert {},
        SequenceLength {},
        SplitToSequence { axis: i64 = 0, keepdims: i64 = 1 },
        ConcatFromSequence { axis: i64, new_axis: i64 = 0 },
        Optional { r#type: Option<ValueType> },
        OptionalGetElement {},
        OptionalHasElement {},
    }
}

impl ControlOp {
    /// Subgraphs held by this operator.
    pub fn subgraphs(&self) -> Vec<GraphId> {
        match self {
            ControlOp::If { then_branch, else_branch } => vec![*then_branch, *else_branch],
            ControlOp::Loop { body }
            | ControlOp::Scan { body, .. }
            | ControlOp::Scan8 { body, .. }
            | ControlOp::SequenceMap { body } => vec![*body],
            _ => vec![],
        }
    }
}

impl ControlOp {
    /// Shape inference: this family's output types stay unknown (`If` takes the types its branches agree on, in [`crate::infer`]).
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, _ins: &[crate::shape::In]) -> crate::shape::Outs {
        match self {
            ControlOp::If { .. }
            | ControlOp::Loop { .. }
            | ControlOp::Scan { .. }
            | ControlOp::Scan8 { .. }
            | ControlOp::SequenceMap { .. }
            | ControlOp::SequenceAt { .. }
            | ControlOp::SequenceConstruct { .. }
            | ControlOp::SequenceEmpty { .. }
            | ControlOp::SequenceErase { .. }
            | ControlOp::SequenceInsert { .. }
            | ControlOp::SequenceLength { .. }
            | ControlOp::SplitToSequence { .. }
            | ControlOp::ConcatFromSequence { .. }
            | ControlOp::Optional { .. }
            | ControlOp::OptionalGetElement { .. }
            | ControlOp::OptionalHasElement { .. } => Ok(vec![None]),
        }
    }
}
