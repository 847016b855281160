//! WGSL generated from a fused program: the function
//! `epilogue(v: f32, i: u32) -> f32` computing the program's steps for
//! output position `i` (`v` is the producer's value there), the bindings
//! of its operands and their broadcast indexing. It is either spliced into
//! a producer kernel that has an `epilogue` hook (`conv.wgsl`,
//! `matmul.wgsl`) or wrapped into a kernel of its own, one invocation per
//! output element.
//!
//! The scalar functions (sigmoid, tanh, erf, pow...) are the prelude's
//! (`shaders/prelude.wgsl`), which every kernel module starts with, so a
//! fused step computes what its unfused kernel computes.
//!
//! Operand `j` is read at `operand_index(i, j)`: parameters from word
//! [`EP`] hold the output's rank and dimensions and, per operand, a mode
//! (0: same shape as the output, read at `i`; 1: broadcast) and its
//! strides over the output's axes (0 along broadcast axes).

use std::fmt::Write;

use strata_ir::ops::ElementwiseOp as E;
use strata_ir::ops::fused::{Operand, Step};

use crate::kernels::{MAX_RANK, PRELUDE, Shader};
use crate::ops::elementwise;

/// First parameter word of the program (the producer kernels use fewer).
pub(crate) const EP: usize = 64;
/// Most operands a program binds (the parameter block holds their strides).
pub(crate) const MAX_SLOTS: usize = (128 - EP - 1 - MAX_RANK) / (1 + MAX_RANK);

/// How the program reads one of the fused node's inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Arg {
    /// A scalar constant, written into the source.
    Literal(f32),
    /// A tensor bound as operand `j`.
    Slot(u32),
}

/// A float constant, bit-exact (non-finite values through `f32_bits`,
/// since a constant infinity or NaN is a shader-creation error).
fn lit(x: f32) -> String {
    if x.is_finite() {
        format!("bitcast<f32>(0x{:08x}u)", x.to_bits())
    } else {
        format!("f32_bits(0x{:08x}u)", x.to_bits())
    }
}

/// The WGSL expression of one step over its argument atoms (`None` for an
/// absent optional argument), or `None` if the step cannot run fused. The
/// float unary functions are the elementwise family's table
/// ([`elementwise::UNARY_F32`]), so the fused and unfused kernels agree.
fn expr(op: &E, a: &[Option<String>]) -> Option<String> {
    let x = a.first()?.as_ref()?;
    let unary = a.len() == 1;
    let y = if a.len() == 2 { a[1].as_ref() } else { None };
    if unary
        && !matches!(op, E::Clip { .. })
        && let Some((code, alpha, beta)) = elementwise::unary_code(op)
    {
        return elementwise::unary_f32_expr(code, x, &lit(alpha), &lit(beta));
    }
    Some(match op {
        E::Identity {} if unary => x.clone(),
        E::Clip { min, max } if a.len() <= 3 => {
            // Bounds from the inputs, else the attributes; NaN stays NaN.
            let lo = a.get(1).cloned().flatten().or(min.map(lit));
            let hi = a.get(2).cloned().flatten().or(max.map(lit));
            let mut e = x.clone();
            if let Some(lo) = lo {
                e = format!("select({e}, {lo}, {e} < {lo})");
            }
            if let Some(hi) = hi {
                e = format!("min_keep_nan({e}, {hi})");
            }
            e
        }
        E::Add {} => format!("({x} + {})", y?),
        E::Sub {} => format!("({x} - {})", y?),
        E::Mul {} => format!("({x} * {})", y?),
        E::Div {} => format!("({x} / {})", y?),
        E::Pow {} => format!("pow_f({x}, {})", y?),
        E::PRelu {} => format!("select({x}, {x} * {y}, {x} < 0.0)", y = y?),
        E::Max {} => format!("max_nan({x}, {})", y?),
        E::Min {} => format!("min_nan({x}, {})", y?),
        // Integer, boolean, comparison and the other operators (or another
        // number of arguments) are not fused.
        _ => return None,
    })
}

/// Whether `op` with `args` arguments can be a step of a generated program.
pub(crate) fn supported(op: &E, args: usize) -> bool {
    let atoms: Vec<Option<String>> = (0..args).map(|k| Some(format!("a{k}"))).collect();
    expr(op, &atoms).is_some()
}

/// Small functions the step expressions use besides `elementwise.wgsl`'s.
const LOCAL: &str = "
fn max_nan(x: f32, y: f32) -> f32 {
    return select(max(x, y), f32_bits(0x7fc00000u), is_nan_f(x) || is_nan_f(y));
}

fn min_nan(x: f32, y: f32) -> f32 {
    return select(min(x, y), f32_bits(0x7fc00000u), is_nan_f(x) || is_nan_f(y));
}

fn min_keep_nan(x: f32, hi: f32) -> f32 {
    return select(x, hi, x > hi);
}
";

/// The program's WGSL: operand bindings `first_binding ..`, their indexing,
/// the scalar functions and `fn epilogue`. `args` says how each
/// `Operand::Input` is read; `slots` operands are bound.
pub(crate) fn program(steps: &[Step], args: &[Arg], slots: usize, first_binding: usize) -> Result<String, String> {
    if steps.is_empty() {
        return Err("a fused program without steps".into());
    }
    if slots > MAX_SLOTS {
        return Err(format!("{slots} operands; a fused program binds at most {MAX_SLOTS}"));
    }
    let mut s = String::new();
    let w = |s: &mut String, t: std::fmt::Arguments| s.write_fmt(t).map_err(|e| e.to_string());
    w(&mut s, format_args!("\n// ---- fused program (generated by strata-gpu)\n\nconst EP: u32 = {EP}u;\n"))?;
    for j in 0..slots {
        w(&mut s, format_args!("@group(0) @binding({}) var<storage, read> e{j}: array<f32>;\n", first_binding + j))?;
    }
    s.push_str(
        "
fn operand_index(i: u32, j: u32) -> u32 {
    let base = EP + 9u + 9u * j;
    if P(base) == 0u {
        return i;
    }
    var rem = i;
    var off = 0u;
    for (var d = P(EP); d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = P(EP + 1u + k);
        off = off + (rem % dim) * P(base + 1u + k);
        rem = rem / dim;
    }
    return off;
}

",
    );
    s.push_str(LOCAL);
    s.push_str("\nfn epilogue(v: f32, i: u32) -> f32 {\n");
    for j in 0..slots {
        w(&mut s, format_args!("    let a{j} = e{j}[operand_index(i, {j}u)];\n"))?;
    }
    for (k, step) in steps.iter().enumerate() {
        let atoms = step
            .args
            .iter()
            .map(|a| match *a {
                Operand::Producer => Ok(Some("v".to_string())),
                Operand::Step(j) if (j as usize) < k => Ok(Some(format!("s{j}"))),
                Operand::Step(j) => Err(format!("step {k} reads step {j}")),
                Operand::Absent => Ok(None),
                Operand::Input(n) => match args.get(n as usize) {
                    Some(Arg::Literal(x)) => Ok(Some(lit(*x))),
                    Some(Arg::Slot(j)) if (*j as usize) < slots => Ok(Some(format!("a{j}"))),
                    _ => Err(format!("step {k} reads input {n}, which the program does not bind")),
                },
            })
            .collect::<Result<Vec<_>, String>>()?;
        let e = expr(&step.op, &atoms).ok_or_else(|| format!("{} cannot run in a fused program", step.op.name()))?;
        w(&mut s, format_args!("    let s{k} = {e};\n"))?;
    }
    w(&mut s, format_args!("    return s{};\n}}\n", steps.len() - 1))?;
    Ok(s)
}

/// The identity epilogue of the producer kernels, replaced by a program.
const HOOK: &str = "fn epilogue(v: f32, i: u32) -> f32 {\n    return v;\n}\n";

/// A producer kernel's source with `program` (made with first binding
/// [`producer_bindings`])
/// as its epilogue.
pub(crate) fn with_epilogue(shader: Shader, program: &str) -> Result<String, String> {
    let src = shader.source();
    if !src.contains(HOOK) {
        return Err(format!("{} has no epilogue hook", shader.name()));
    }
    Ok(src.replacen(HOOK, program, 1))
}

/// The first binding after a producer kernel family's own (binding 0 is
/// the parameter block), where a program's operands go.
pub(crate) fn producer_bindings(shader: Shader) -> usize {
    shader.family().bindings.len() + 1
}

/// A kernel of its own running `program` (made with first binding 2) over
/// every output element: `out[i] = epilogue(v, i)`, where `v` is operand 0
/// when the program has a producer (its output, computed before), else 0.
pub(crate) fn standalone(program: &str, producer_slot: bool) -> String {
    let v = if producer_slot { "e0[operand_index(i, 0u)]" } else { "0.0" };
    format!(
        "{PRELUDE}
// Strata GPU: a fused elementwise program (generated).
// params [n, ...] ; program parameters from word {EP}

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
{program}
@compute @workgroup_size(64)
fn fused(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lidx: u32) {{
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {{
        return;
    }}
    out[i] = epilogue({v}, i);
}}
"
    )
}

/// First binding of a standalone program's operands.
pub(crate) const STANDALONE_BINDINGS: usize = 2;
