//! The in-place `narrow` kernel (`elementwise.wgsl`) that follows a node
//! computing values of a type narrower than its 32-bit storage word.

use strata_ir::dtype::E8M0Round;
use strata_ir::ops::{ElementwiseOp as E, QuantOp};
use strata_ir::{DType, Graph, Node, Op};

use crate::wgsl::{wgsl_codes, wgsl_params};

/// Parameters of the in-place `narrow` kernel (`elementwise.wgsl`) after
/// [n]: what makes a computed 32-bit word exactly representable in `d`
/// (wrap integers to the type's width, round floats to nearest even with
/// the type's overflow rules; `saturate` is Cast's attribute for the float8
/// kinds, `e8m0` its rounding of float8e8m0, nearest for other ops). `None` when every word already is (f32, i32, u32, bool, and the
/// 64-bit integers, whose range is checked instead).
pub(crate) fn narrow_params(d: DType, saturate: bool, e8m0: E8M0Round) -> Option<NarrowParams> {
    use DType::*;
    let small = |man: usize, emin: i64, max: f32, flags: usize| {
        Some(NarrowParams {
            kind: narrowing::SMALL as usize,
            man,
            emin,
            max_bits: max.to_bits() as usize,
            flags,
            ..Default::default()
        })
    };
    let sat = if saturate { 4 } else { 0 };
    match d {
        I2 | I4 | I8 | I16 | U2 | U4 | U8 | U16 => Some(NarrowParams {
            kind: narrowing::WRAP as usize,
            bits: d.bits(),
            signed: usize::from(d.is_signed_int()),
            ..Default::default()
        }),
        BF16 => Some(NarrowParams { kind: narrowing::BF16 as usize, ..Default::default() }),
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
            Some(NarrowParams {
                kind: narrowing::E8M0 as usize,
                mode,
                saturate: usize::from(saturate),
                ..Default::default()
            })
        }
        _ => None,
    }
}

wgsl_codes! {
    /// What `narrow` does to a word (`NarrowParams::kind`).
    pub(crate) mod narrowing: NARROW {
        /// Wrap an integer to `bits` bits (two's complement when `signed`).
        WRAP = 1,
        /// Round to bfloat16.
        BF16 = 2,
        /// `round_small`: `man` mantissa bits, minimum normal exponent
        /// `emin`, largest finite value `max_bits`, `flags`.
        SMALL = 3,
        /// `round_e8m0` with rounding `mode` and `saturate`.
        E8M0 = 4,
        /// Test-only fault injection: a deliberately wrong value (`float`
        /// says how the words are read).
        FAULT = 5,
    }
}

wgsl_params! {
    /// `elementwise.wgsl`'s in-place `narrow` of `n` words: `kind` (a
    /// [`narrowing`] code) and the fields that kind reads.
    pub(crate) struct NarrowParams {
        n: u32, kind: u32, bits: u32, signed: u32, man: u32, emin: i32, max_bits: u32, flags: u32,
        mode: u32, saturate: u32, float: u32,
    }
}

/// Per output of node `n`: the `narrow` parameters its computed values
/// need before they are exact in the output's type. Data movement copies
/// values that are exact already and needs none.
pub(crate) fn plan(g: &Graph, n: &Node) -> Vec<Option<NarrowParams>> {
    let moves = n.op.moves_data();
    let saturate = match &n.op {
        Op::Elementwise(E::Cast { saturate, .. } | E::CastLike { saturate, .. })
        | Op::Quant(QuantOp::QuantizeLinear { saturate, .. }) => *saturate != 0,
        _ => false,
    };
    let e8m0 = match &n.op {
        Op::Elementwise(E::Cast { round_mode, .. } | E::CastLike { round_mode, .. }) => *round_mode,
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
