//! The in-place `narrow` kernel (`elementwise.wgsl`) that follows a node
//! computing values of a type narrower than its 32-bit storage word.

use strata_ir::dtype::E8M0Round;
use strata_ir::ops::{ElementwiseOp as E, NnOp, QuantOp, TensorOp as T};
use strata_ir::{DType, Graph, Node, Op};

/// Parameters of the in-place `narrow` kernel (`elementwise.wgsl`) after
/// [n]: what makes a computed 32-bit word exactly representable in `d`
/// (wrap integers to the type's width, round floats to nearest even with
/// the type's overflow rules; `saturate` is Cast's attribute for the float8
/// kinds, `e8m0` its rounding of float8e8m0, nearest for other ops). `None` when every word already is (f32, i32, u32, bool, and the
/// 64-bit integers, whose range is checked instead).
pub(crate) fn narrow_params(d: DType, saturate: bool, e8m0: E8M0Round) -> Option<[u32; 5]> {
    use DType::*;
    // round_small: mantissa bits, minimum normal exponent, largest finite value, flags.
    let small = |man: u32, emin: i32, max: f32, flags: u32| Some([3, man, emin as u32, max.to_bits(), flags]);
    let sat = if saturate { 4 } else { 0 };
    match d {
        I2 | I4 | I8 | I16 | U2 | U4 | U8 | U16 => Some([1, d.bits() as u32, u32::from(d.is_signed_int()), 0, 0]),
        BF16 => Some([2, 0, 0, 0, 0]),
        F16 => small(10, -14, 65504.0, 1),
        F8E4M3FN => small(3, -6, 448.0, sat),
        F8E4M3FNUZ => small(3, -7, 240.0, 2 | sat),
        F8E5M2 => small(2, -14, 57344.0, 1 | sat),
        F8E5M2FNUZ => small(2, -15, 57344.0, 2 | sat),
        F4E2M1 => small(1, 0, 6.0, 8),
        F8E8M0 => {
            let mode = match e8m0 {
                E8M0Round::Up => 0,
                E8M0Round::Down => 1,
                E8M0Round::Nearest => 2,
            };
            Some([4, mode, u32::from(saturate), 0, 0])
        }
        _ => None,
    }
}

/// Per output of node `n`: the `narrow` parameters its computed values
/// need before they are exact in the output's type. Data movement copies
/// values that are exact already and needs none.
pub(crate) fn plan(g: &Graph, n: &Node) -> Vec<Option<[u32; 5]>> {
    let moves = matches!(
        n.op,
        Op::Tensor(
            T::Constant { .. }
                | T::Reshape { .. }
                | T::Flatten { .. }
                | T::Squeeze { .. }
                | T::Unsqueeze { .. }
                | T::Transpose { .. }
                | T::Concat { .. }
                | T::Slice { .. }
                | T::Split { .. }
                | T::Gather { .. }
                | T::GatherElements { .. }
                | T::Expand {}
                | T::Tile {}
                | T::Pad { .. }
                | T::DepthToSpace { .. }
                | T::SpaceToDepth { .. }
                | T::Trilu { .. }
        ) | Op::Elementwise(E::Identity {} | E::Where {})
            | Op::Nn(NnOp::Dropout { .. })
    );
    let saturate = match &n.op {
        Op::Elementwise(E::Cast { saturate, .. } | E::CastLike { saturate, .. })
        | Op::Quant(QuantOp::QuantizeLinear { saturate, .. }) => *saturate != 0,
        _ => false,
    };
    let e8m0 = match &n.op {
        Op::Elementwise(E::Cast { round_mode, .. } | E::CastLike { round_mode, .. }) => {
            E8M0Round::parse(round_mode).unwrap_or(E8M0Round::Nearest)
        }
        _ => E8M0Round::Nearest,
    };
    n.outputs
        .iter()
        .map(|o| {
            if moves {
                return None;
            }
            narrow_params(g.value((*o)?).ty.dtype()?, saturate, e8m0)
        })
        .collect()
}
