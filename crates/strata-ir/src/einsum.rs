//! Einsum equations: parsed and checked once, at import
//! ([`Equation`], the type of `Einsum`'s `equation` attribute), and resolved
//! against operand shapes into index variables and per-operand steps
//! ([`Equation::resolve`]) that a backend's contraction loop walks.
//!
//! Supported forms: explicit (`ij,jk->ik`) or implicit output (the
//! ellipsis axes, then the letters seen exactly once, alphabetically),
//! repeated letters within a term (diagonals) and a broadcasting ellipsis
//! (`...`). Whitespace is ignored.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::attr::{AttrType, AttrValue};

/// One subscript of an einsum term: a letter or the ellipsis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscript {
    Letter(char),
    Ellipsis,
}

/// A parsed einsum equation. Serialised as its text, which is parsed (and
/// so checked) again when read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Equation {
    text: String,
    inputs: Vec<Vec<Subscript>>,
    /// `None`: implicit output.
    output: Option<Vec<Subscript>>,
}

/// Parse one term ("ij", "...k", "b...").
fn parse_term(t: &str) -> Result<Vec<Subscript>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(ch) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("...") {
            if out.contains(&Subscript::Ellipsis) {
                return Err(format!("term '{t}' has more than one ellipsis"));
            }
            out.push(Subscript::Ellipsis);
            rest = after;
        } else if ch.is_ascii_alphabetic() {
            out.push(Subscript::Letter(ch));
            rest = &rest[1..];
        } else {
            return Err(format!("invalid character '{ch}' in einsum term '{t}'"));
        }
    }
    Ok(out)
}

impl Equation {
    /// Parse and check an equation (syntax, and that every output letter
    /// appears in an input term and only once in the output).
    pub fn parse(text: &str) -> Result<Equation, String> {
        let eq: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (lhs, rhs) = match eq.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (eq.as_str(), None),
        };
        let inputs: Vec<Vec<Subscript>> = lhs.split(',').map(parse_term).collect::<Result<_, _>>()?;
        let output = match rhs {
            None => None,
            Some(r) => {
                let t = parse_term(r)?;
                for (i, s) in t.iter().enumerate() {
                    if let Subscript::Letter(l) = s {
                        if !inputs.iter().any(|term| term.contains(s)) {
                            return Err(format!("output subscript '{l}' does not appear in the inputs"));
                        }
                        if t[..i].contains(s) {
                            return Err(format!("output subscript '{l}' appears more than once"));
                        }
                    }
                }
                Some(t)
            }
        };
        Ok(Equation { text: text.to_string(), inputs, output })
    }

    /// The equation as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The subscripts of each operand's term.
    pub fn inputs(&self) -> &[Vec<Subscript>] {
        &self.inputs
    }

    /// The output term if given explicitly (`None`: implicit output).
    pub fn output(&self) -> Option<&[Subscript]> {
        self.output.as_deref()
    }

    /// Resolve the equation against the operand shapes.
    pub fn resolve(&self, shapes: &[&[usize]]) -> Result<Contraction, String> {
        if self.inputs.len() != shapes.len() {
            return Err(format!(
                "equation '{}' has {} operand terms, got {} inputs",
                self.text,
                self.inputs.len(),
                shapes.len()
            ));
        }
        // Size of every letter, and the broadcast shape of the ellipsis axes.
        let mut letters: BTreeMap<char, usize> = BTreeMap::new();
        let mut counts: BTreeMap<char, usize> = BTreeMap::new();
        let mut ell_shape: Vec<usize> = Vec::new();
        let mut any_ellipsis = false;
        for (term, shape) in self.inputs.iter().zip(shapes) {
            let n_letters = term.iter().filter(|s| **s != Subscript::Ellipsis).count();
            let has_ell = term.contains(&Subscript::Ellipsis);
            if shape.len() < n_letters || (!has_ell && shape.len() != n_letters) {
                return Err(format!("operand of shape {shape:?} does not match its einsum term"));
            }
            let ell_rank = shape.len() - n_letters;
            let mut axis = 0;
            for s in term {
                match s {
                    Subscript::Ellipsis => {
                        any_ellipsis = true;
                        ell_shape = broadcast(&ell_shape, &shape[axis..axis + ell_rank])?;
                        axis += ell_rank;
                    }
                    Subscript::Letter(l) => {
                        let d = shape[axis];
                        if let Some(&prev) = letters.get(l)
                            && prev != d
                        {
                            return Err(format!("subscript '{l}' has sizes {prev} and {d}"));
                        }
                        letters.insert(*l, d);
                        *counts.entry(*l).or_insert(0) += 1;
                        axis += 1;
                    }
                }
            }
        }
        let ne = ell_shape.len();
        let out_term: Vec<Subscript> = match &self.output {
            Some(t) => t.clone(),
            None => {
                let mut t = if any_ellipsis { vec![Subscript::Ellipsis] } else { vec![] };
                t.extend(counts.iter().filter(|(_, n)| **n == 1).map(|(l, _)| Subscript::Letter(*l)));
                t
            }
        };
        // Index variables: the ellipsis axes first, then one per letter.
        let letter_var = |l: char| ne + letters.keys().position(|&k| k == l).unwrap_or(0);
        let mut sizes = ell_shape;
        sizes.extend(letters.values());
        let mut out_vars = Vec::new();
        for s in &out_term {
            match s {
                Subscript::Ellipsis => out_vars.extend(0..ne),
                Subscript::Letter(l) => out_vars.push(letter_var(*l)),
            }
        }
        let sum_vars: Vec<usize> = (0..sizes.len()).filter(|v| !out_vars.contains(v)).collect();
        let out_shape: Vec<usize> = out_vars.iter().map(|&v| sizes[v]).collect();
        // Per operand, the flat-index step of each variable; repeated
        // letters add their strides (walking a diagonal) and broadcast
        // axes step 0.
        let mut steps = Vec::with_capacity(shapes.len());
        for (term, shape) in self.inputs.iter().zip(shapes) {
            let st = row_strides(shape);
            let mut step = vec![0usize; sizes.len()];
            let ell_rank = shape.len() - term.iter().filter(|s| **s != Subscript::Ellipsis).count();
            let mut axis = 0;
            for s in term {
                match s {
                    Subscript::Ellipsis => {
                        for e in 0..ell_rank {
                            if shape[axis] != 1 {
                                step[ne - ell_rank + e] += st[axis];
                            }
                            axis += 1;
                        }
                    }
                    Subscript::Letter(l) => {
                        step[letter_var(*l)] += st[axis];
                        axis += 1;
                    }
                }
            }
            steps.push(step);
        }
        Ok(Contraction { sizes, out_vars, sum_vars, out_shape, steps })
    }
}

/// Row-major strides of `shape`.
fn row_strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1].saturating_mul(shape[i + 1]);
    }
    st
}

/// Numpy-style broadcast of two shapes.
fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let rank = a.len().max(b.len());
    let mut out = vec![1usize; rank];
    for s in [a, b] {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(format!("ellipsis shapes {a:?} and {b:?} cannot be broadcast together"));
            }
        }
    }
    Ok(out)
}

/// An equation resolved against operand shapes: index variables (the
/// ellipsis axes first, then one per letter in alphabetical order), which
/// of them index the output and which are summed, and how far each
/// variable moves in every operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contraction {
    /// Extent of each index variable.
    pub sizes: Vec<usize>,
    /// The variables of the output axes, in output order.
    pub out_vars: Vec<usize>,
    /// The summed variables, in increasing order.
    pub sum_vars: Vec<usize>,
    /// The output shape (`sizes` of `out_vars`).
    pub out_shape: Vec<usize>,
    /// Per operand, the flat-index step of each variable (row-major operands).
    pub steps: Vec<Vec<usize>>,
}

impl fmt::Display for Equation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Equation {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Equation::parse(&s)
    }
}

impl From<Equation> for String {
    fn from(e: Equation) -> String {
        e.text
    }
}

impl AttrType for Equation {
    fn from_attr(v: &AttrValue) -> Result<Self, String> {
        Equation::parse(&String::from_attr(v)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_product_and_implicit_output() {
        let c = Equation::parse("ij, jk -> ik").unwrap().resolve(&[&[2, 3], &[3, 4]]).unwrap();
        assert_eq!((c.out_shape.clone(), c.sum_vars.clone()), (vec![2, 4], vec![1]));
        assert_eq!(c.steps, vec![vec![3, 1, 0], vec![0, 4, 1]]);
        let c = Equation::parse("...ij,...jk").unwrap().resolve(&[&[5, 2, 3], &[1, 3, 4]]).unwrap();
        assert_eq!(c.out_shape, vec![5, 2, 4]);
        let d = Equation::parse("ii").unwrap().resolve(&[&[3, 3]]).unwrap();
        assert_eq!((d.out_shape, d.steps), (vec![], vec![vec![4]]));
    }

    #[test]
    fn bad_equations_are_refused() {
        for (eq, what) in [
            ("ij,jk->iz", "does not appear"),
            ("ij->ii", "more than once"),
            ("i1,j", "invalid character"),
            ("......i", "more than one ellipsis"),
        ] {
            let e = Equation::parse(eq).unwrap_err();
            assert!(e.contains(what), "{eq}: {e}");
        }
        let e = Equation::parse("ij,jk").unwrap().resolve(&[&[2, 3]]).unwrap_err();
        assert!(e.contains("2 operand terms, got 1 inputs"), "{e}");
        assert!(Equation::parse("ij,jk").unwrap().resolve(&[&[2, 3], &[4, 5]]).is_err());
    }

    #[test]
    fn serialised_as_text_and_checked_when_read() {
        let eq = Equation::parse("ij,jk->ik").unwrap();
        let bytes = postcard::to_allocvec(&eq).unwrap();
        assert_eq!(postcard::from_bytes::<Equation>(&bytes).unwrap(), eq);
        let bad = postcard::to_allocvec(&"ij->q".to_string()).unwrap();
        assert!(postcard::from_bytes::<Equation>(&bad).is_err());
    }
}
