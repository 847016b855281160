//! `Einsum` on the GPU (`einsum.wgsl`): the host parses the equation
//! (explicit or implicit output, repeated letters, broadcasting ellipsis)
//! into index variables and per-operand steps; one generic contraction
//! kernel sums the products.

use std::collections::BTreeMap;

use super::*;
use crate::kernels::MAX_RANK;
use crate::shape::{broadcast, contiguous, put, u32c};

/// How an Einsum runs: one `einsum` contraction; the equation is resolved
/// against the operand shapes at run time.
#[derive(Debug)]
pub(crate) struct Plan {
    k: Kernel,
    equation: String,
}

/// Plan an Einsum of 1 to 4 float operands of one type.
pub(super) fn plan(v: &NodeView, equation: &str, k: &mut Kernels) -> std::result::Result<Plan, String> {
    let n = v.n.inputs.len();
    if n == 0 || n > MAX_OPERANDS {
        return Err(format!("Einsum of {n} operands (the GPU kernel takes 1 to 4)"));
    }
    let d = v.dt(0)?;
    for i in 0..n {
        v.float(i)?;
        if v.dt(i)? != d {
            return Err("Einsum operands differ in type".into());
        }
    }
    Ok(Plan { k: k.get(Shader::Einsum, "einsum", &[]), equation: equation.to_string() })
}

/// A subscript of an einsum term.
#[derive(Clone, Copy, PartialEq)]
enum Sub {
    Letter(char),
    Ellipsis,
}

fn parse_term(t: &str) -> Result<Vec<Sub>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(ch) = rest.chars().next() {
        if rest.starts_with("...") {
            if out.contains(&Sub::Ellipsis) {
                return Err(GpuError::Shape(format!("more than one ellipsis in einsum term '{t}'")));
            }
            out.push(Sub::Ellipsis);
            rest = &rest[3..];
        } else if ch.is_ascii_alphabetic() {
            out.push(Sub::Letter(ch));
            rest = &rest[1..];
        } else {
            return Err(GpuError::Shape(format!("invalid character '{ch}' in einsum term '{t}'")));
        }
    }
    Ok(out)
}

/// Most operands and index variables the kernel takes.
const MAX_OPERANDS: usize = 4;

impl Exec<'_> {
    /// `Einsum` on up to four float operands.
    pub(super) fn einsum(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let equation = plan.equation.as_str();
        let inputs: Vec<&GpuTensor> = (0..self.n.inputs.len()).map(|i| self.input(i)).collect::<Result<_>>()?;
        if inputs.is_empty() || inputs.len() > MAX_OPERANDS {
            return Err(GpuError::Unsupported(format!("Einsum of {} operands", inputs.len())));
        }
        let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
        let (lhs, rhs) = match eq.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (eq.as_str(), None),
        };
        let terms: Vec<Vec<Sub>> = lhs.split(',').map(parse_term).collect::<Result<_>>()?;
        if terms.len() != inputs.len() {
            return Err(GpuError::Shape(format!("equation '{equation}' does not match {} inputs", inputs.len())));
        }
        let mut letters: BTreeMap<char, usize> = BTreeMap::new();
        let mut counts: BTreeMap<char, usize> = BTreeMap::new();
        let mut ell_shape: Vec<usize> = Vec::new();
        let mut any_ellipsis = false;
        for (term, t) in terms.iter().zip(&inputs) {
            let n_letters = term.iter().filter(|s| **s != Sub::Ellipsis).count();
            let has_ell = term.contains(&Sub::Ellipsis);
            if t.shape.len() < n_letters || (!has_ell && t.shape.len() != n_letters) {
                return Err(GpuError::Shape(format!("operand {:?} does not match its einsum term", t.shape)));
            }
            let ell_rank = t.shape.len() - n_letters;
            let mut axis = 0;
            for s in term {
                match s {
                    Sub::Ellipsis => {
                        any_ellipsis = true;
                        ell_shape = broadcast(&[&ell_shape, &t.shape[axis..axis + ell_rank]])?;
                        axis += ell_rank;
                    }
                    Sub::Letter(l) => {
                        let d = t.shape[axis];
                        if letters.get(l).is_some_and(|&p| p != d) {
                            return Err(GpuError::Shape(format!("subscript '{l}' has two sizes")));
                        }
                        letters.insert(*l, d);
                        *counts.entry(*l).or_insert(0) += 1;
                        axis += 1;
                    }
                }
            }
        }
        let ne = ell_shape.len();
        let out_term: Vec<Sub> = match rhs {
            Some(r) => {
                let t = parse_term(r)?;
                for (i, s) in t.iter().enumerate() {
                    if let Sub::Letter(l) = s
                        && (!letters.contains_key(l) || t[..i].contains(s))
                    {
                        return Err(GpuError::Shape(format!("invalid output subscript '{l}'")));
                    }
                }
                t
            }
            None => {
                let mut t = if any_ellipsis { vec![Sub::Ellipsis] } else { vec![] };
                t.extend(counts.iter().filter(|(_, n)| **n == 1).map(|(l, _)| Sub::Letter(*l)));
                t
            }
        };
        let letter_var = |l: char| ne + letters.keys().position(|&k| k == l).unwrap_or(0);
        let mut sizes = ell_shape.clone();
        sizes.extend(letters.values());
        let mut out_vars = Vec::new();
        for s in &out_term {
            match s {
                Sub::Ellipsis => out_vars.extend(0..ne),
                Sub::Letter(l) => out_vars.push(letter_var(*l)),
            }
        }
        let sum_vars: Vec<usize> = (0..sizes.len()).filter(|v| !out_vars.contains(v)).collect();
        if out_vars.len() > MAX_RANK || sum_vars.len() > MAX_RANK {
            return Err(GpuError::Unsupported("Einsum with more than 8 output or summed indices".into()));
        }
        let out_shape: Vec<usize> = out_vars.iter().map(|&v| sizes[v]).collect();
        let mut p = vec![0u32; 20 + 16 * MAX_OPERANDS];
        for (term, t) in terms.iter().zip(&inputs) {
            let st = contiguous(&t.shape);
            let mut step = vec![0usize; sizes.len()];
            let ell_rank = t.shape.len() - term.iter().filter(|s| **s != Sub::Ellipsis).count();
            let mut axis = 0;
            for s in term {
                match s {
                    Sub::Ellipsis => {
                        for e in 0..ell_rank {
                            if t.shape[axis] != 1 {
                                step[ne - ell_rank + e] += st[axis];
                            }
                            axis += 1;
                        }
                    }
                    Sub::Letter(l) => {
                        step[letter_var(*l)] += st[axis];
                        axis += 1;
                    }
                }
            }
            let k = p[3] as usize;
            let o: Vec<usize> = out_vars.iter().map(|&v| step[v]).collect();
            let s: Vec<usize> = sum_vars.iter().map(|&v| step[v]).collect();
            put(&mut p, 20 + 16 * k, &o)?;
            put(&mut p, 28 + 16 * k, &s)?;
            p[3] += 1;
        }
        let y = ctx.alloc(inputs[0].dtype, out_shape.clone())?;
        let n = y.numel();
        p[0] = u32c(n)?;
        p[1] = out_vars.len() as u32;
        p[2] = sum_vars.len() as u32;
        put(&mut p, 4, &out_shape)?;
        put(&mut p, 12, &sum_vars.iter().map(|&v| sizes[v]).collect::<Vec<_>>())?;
        let mut ins = inputs.clone();
        while ins.len() < MAX_OPERANDS {
            ins.push(inputs[0]);
        }
        ctx.dispatch_n(&plan.k, &p, &y, &ins, n)?;
        Ok(vec![y])
    }
}
