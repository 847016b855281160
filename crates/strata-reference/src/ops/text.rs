//! Reference kernels for `strata_ir::ops::TextOp`: StringNormalizer,
//! StringConcat, StringSplit, RegexFullMatch and TfIdfVectorizer.

use std::collections::HashMap;
use strata_ir::ops::text::{CaseChange, TfIdfMode};

use strata_ir::DType;
use strata_ir::ops::TextOp as T;

use super::{Args, Ctx, one};
use crate::bail;
use crate::error::{KResult, KernelError};
use crate::util::{broadcast_map, broadcast_shapes, check_numel};
use crate::value::{Data, Tensor, Value};

/// Run one operator of this family.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &T, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    match op {
        T::StringNormalizer { case_change_action, is_case_sensitive, locale: _, stopwords } => string_normalizer(
            args.tensor(0)?,
            *case_change_action,
            *is_case_sensitive != 0,
            stopwords.as_deref().unwrap_or(&[]),
        ),
        T::StringConcat {} => {
            let (a, b) = (args.tensor(0)?, args.tensor(1)?);
            let shape = broadcast_shapes(&[&a.shape, &b.shape])?;
            let (sa, sb) = (a.s()?, b.s()?);
            let out = broadcast_map(&a.shape, &shape)
                .into_iter()
                .zip(broadcast_map(&b.shape, &shape))
                .map(|(i, j)| format!("{}{}", sa[i], sb[j]))
                .collect();
            one(Tensor::from_s(shape, out)?)
        }
        T::StringSplit { delimiter, maxsplit } => string_split(args.tensor(0)?, delimiter.as_deref(), *maxsplit),
        T::RegexFullMatch { pattern } => {
            let x = args.tensor(0)?;
            let pattern = match pattern {
                Some(p) => p,
                None => bail!("missing required attribute 'pattern'"),
            };
            let re = compile_re2(pattern)?;
            one(Tensor::from_b(x.shape.clone(), x.s()?.iter().map(|s| re.is_match(s)).collect())?)
        }
        T::TfIdfVectorizer {
            max_gram_length,
            max_skip_count,
            min_gram_length,
            mode,
            ngram_counts,
            ngram_indexes,
            pool_int64s,
            pool_strings,
            weights,
        } => tfidf(
            args.tensor(0)?,
            &TfIdf {
                max_gram_length: *max_gram_length,
                max_skip_count: *max_skip_count,
                min_gram_length: *min_gram_length,
                mode: *mode,
                ngram_counts,
                ngram_indexes,
                pool_int64s: pool_int64s.as_deref(),
                pool_strings: pool_strings.as_deref(),
                weights: weights.as_deref(),
            },
        ),
    }
}

/// StringNormalizer: drop elements equal to a stopword, then change case.
/// Input is `[C]` or `[1, C]`; if nothing is left the output is a single
/// empty string of shape `[1]` or `[1, 1]`.
fn string_normalizer(
    x: &Tensor,
    action: CaseChange,
    case_sensitive: bool,
    stopwords: &[String],
) -> KResult<Vec<Value>> {
    let two_dim = match x.shape.as_slice() {
        [_] => false,
        [1, _] => true,
        s => bail!("input must have shape [C] or [1, C], got {s:?}"),
    };
    let change: fn(&str) -> String = match action {
        CaseChange::Lower => str::to_lowercase,
        CaseChange::Upper => str::to_uppercase,
        CaseChange::None => str::to_string,
    };
    let is_stopword = |w: &str| {
        if case_sensitive {
            stopwords.iter().any(|s| s == w)
        } else {
            let w = w.to_lowercase();
            stopwords.iter().any(|s| s.to_lowercase() == w)
        }
    };
    let mut out: Vec<String> = x.s()?.iter().filter(|w| !is_stopword(w)).map(|w| change(w)).collect();
    if out.is_empty() {
        out.push(String::new());
    }
    let shape = if two_dim { vec![1, out.len()] } else { vec![out.len()] };
    one(Tensor::from_s(shape, out)?)
}

/// Whitespace as Python's `str.split()` sees it.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Split one string like Python's `str.split(sep, maxsplit)`: with no
/// separator, runs of whitespace separate and leading/trailing whitespace is
/// dropped (also from an unsplit remainder, as the spec and onnxruntime do);
/// `maxsplit` (if set) bounds the number of splits.
fn split_one<'a>(s: &'a str, sep: Option<&str>, maxsplit: Option<usize>) -> Vec<&'a str> {
    match sep {
        Some(sep) => match maxsplit {
            Some(m) => s.splitn(m + 1, sep).collect(),
            None => s.split(sep).collect(),
        },
        None => {
            let mut parts = Vec::new();
            let mut rest = s.trim_matches(is_py_space);
            while !rest.is_empty() {
                if maxsplit == Some(parts.len()) {
                    parts.push(rest);
                    break;
                }
                match rest.find(is_py_space) {
                    Some(i) => {
                        parts.push(&rest[..i]);
                        rest = rest[i..].trim_start_matches(is_py_space);
                    }
                    None => {
                        parts.push(rest);
                        break;
                    }
                }
            }
            parts
        }
    }
}

/// StringSplit: outputs the substrings padded with "" to the longest split
/// (one more axis) and the number of substrings of each element.
fn string_split(x: &Tensor, delimiter: Option<&str>, maxsplit: Option<i64>) -> KResult<Vec<Value>> {
    let sep = delimiter.filter(|d| !d.is_empty());
    let maxsplit = maxsplit.filter(|&m| m >= 0).map(|m| m as usize);
    let splits: Vec<Vec<&str>> = x.s()?.iter().map(|s| split_one(s, sep, maxsplit)).collect();
    let width = splits.iter().map(Vec::len).max().unwrap_or(0);
    let mut shape = x.shape.clone();
    shape.push(width);
    check_numel(&shape)?;
    let mut out = Vec::with_capacity(shape.iter().product());
    for parts in &splits {
        out.extend(parts.iter().map(|p| p.to_string()));
        out.extend(std::iter::repeat_n(String::new(), width - parts.len()));
    }
    let lengths = splits.iter().map(|p| p.len() as i64).collect();
    Ok(vec![Value::Tensor(Tensor::from_s(shape, out)?), Value::Tensor(Tensor::i64s(x.shape.clone(), lengths)?)])
}

/// Compile an RE2 pattern for full matching with the `regex` crate. RE2's
/// Perl classes (`\d \w \s \b` and negations) are ASCII-only while the
/// crate's are Unicode, so they are rewritten to ASCII forms; `[` inside a
/// class is a literal in RE2, as are `&` and `~`, so they are escaped.
fn compile_re2(pattern: &str) -> KResult<regex::Regex> {
    let mut out = String::new();
    let mut in_class = false;
    let mut class_start = false; // just after `[` or `[^`: a `]` here is a literal
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let at_start = class_start;
        class_start = false;
        match c {
            '\\' => {
                let e = match chars.next() {
                    Some(e) => e,
                    None => bail!("invalid regex pattern {pattern:?}: trailing backslash"),
                };
                let ascii = |class: &str, neg: bool| match (in_class, neg) {
                    (false, false) => format!("[{class}]"),
                    (false, true) => format!("[^{class}]"),
                    (true, false) => class.to_string(),
                    (true, true) => format!("[^{class}]"),
                };
                match e {
                    'd' | 'D' => out.push_str(&ascii("[:digit:]", e == 'D')),
                    'w' | 'W' => out.push_str(&ascii("[:word:]", e == 'W')),
                    's' | 'S' => out.push_str(&ascii("\\t\\n\\f\\r ", e == 'S')),
                    'b' if !in_class => out.push_str("(?-u:\\b)"),
                    'B' if !in_class => out.push_str("(?-u:\\B)"),
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // A POSIX class such as `[:alpha:]`: copy through `:]`.
                out.push('[');
                let mut prev = '[';
                for d in chars.by_ref() {
                    out.push(d);
                    if prev == ':' && d == ']' {
                        break;
                    }
                    prev = d;
                }
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            ']' if in_class && at_start => out.push_str("\\]"),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    regex::Regex::new(&format!("\\A(?:{out})\\z")).map_err(|e| {
        // The crate's messages span several lines; keep the error on one.
        let msg = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        KernelError::new(format!("invalid regex pattern {pattern:?}: {msg}"))
    })
}

/// Attributes of TfIdfVectorizer.
struct TfIdf<'a> {
    max_gram_length: i64,
    max_skip_count: i64,
    min_gram_length: i64,
    mode: TfIdfMode,
    ngram_counts: &'a [i64],
    ngram_indexes: &'a [i64],
    pool_int64s: Option<&'a [i64]>,
    pool_strings: Option<&'a [String]>,
    weights: Option<&'a [f32]>,
}

/// One token of an n-gram.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Tok {
    I(i128),
    S(String),
}

/// TfIdfVectorizer: count the pool's n-grams (with skips) in each row of
/// `[C]` or `[B, C]` input and weight the counts.
fn tfidf(x: &Tensor, a: &TfIdf) -> KResult<Vec<Value>> {
    let (min_n, max_n) = (a.min_gram_length, a.max_gram_length);
    if min_n < 1 || max_n < min_n {
        bail!("invalid gram lengths: min {min_n}, max {max_n}");
    }
    if a.max_skip_count < 0 {
        bail!("max_skip_count must be non-negative, got {}", a.max_skip_count);
    }
    if let Some(&c) = a.ngram_indexes.iter().find(|&&c| c < 0) {
        bail!("negative ngram index {c}");
    }
    let pool: Vec<Tok> = match (a.pool_int64s, a.pool_strings) {
        (Some(p), None) => p.iter().map(|&v| Tok::I(v as i128)).collect(),
        (None, Some(p)) => p.iter().map(|s| Tok::S(s.clone())).collect(),
        _ => bail!("exactly one of pool_int64s and pool_strings must be set"),
    };
    // Map each n-gram of the pool with a length in [min, max] to its output
    // column. N-grams are numbered in pool order over all lengths.
    let mut grams: HashMap<Vec<Tok>, usize> = HashMap::new();
    let mut gram_no = 0usize;
    for (level, &start) in a.ngram_counts.iter().enumerate() {
        let n = level + 1;
        let end = a.ngram_counts.get(level + 1).map_or(pool.len() as i64, |&e| e);
        if start < 0 || end < start || end as usize > pool.len() {
            bail!("ngram_counts {:?} do not fit a pool of {}", a.ngram_counts, pool.len());
        }
        let items = &pool[start as usize..end as usize];
        if !items.len().is_multiple_of(n) {
            bail!("pool level {n} has {} items, not a multiple of {n}", items.len());
        }
        for g in items.chunks(n) {
            let col = match a.ngram_indexes.get(gram_no) {
                Some(&c) => c as usize,
                None => bail!("ngram_indexes has fewer entries than the pool has n-grams"),
            };
            if n as i64 >= min_n && n as i64 <= max_n {
                grams.insert(g.to_vec(), col);
            }
            gram_no += 1;
        }
    }
    let out_size = a.ngram_indexes.iter().map(|&i| (i as usize).saturating_add(1)).max().unwrap_or(0);
    check_numel(&[out_size])?;
    let (rows, cols, out_shape) = match x.shape.as_slice() {
        [] => (1, 1, vec![out_size]),
        [c] => (1, *c, vec![out_size]),
        [b, c] => (*b, *c, vec![*b, out_size]),
        s => bail!("input must have shape [C] or [B, C], got {s:?}"),
    };
    check_numel(&out_shape)?;
    let toks: Vec<Tok> = match &x.data {
        Data::I(v) => v.iter().map(|&i| Tok::I(i)).collect(),
        Data::S(v) => v.iter().map(|s| Tok::S(s.clone())).collect(),
        _ => bail!("input must be int32, int64 or string, got {}", x.dtype),
    };
    let mut counts = vec![0u64; rows * out_size];
    for r in 0..rows {
        let row = &toks[r * cols..(r + 1) * cols];
        // N-grams longer than the row cannot occur.
        let longest = (max_n as usize).min(cols);
        for n in min_n as usize..=longest {
            // Unigrams have no gaps, so they are counted once.
            let max_step = if n == 1 { 1 } else { (a.max_skip_count as usize).saturating_add(1) };
            for step in 1..=max_step {
                if (n - 1).saturating_mul(step) >= cols {
                    break;
                }
                for start in 0..cols {
                    let last = start + (n - 1) * step;
                    if last >= cols {
                        break;
                    }
                    let g: Vec<Tok> = (0..n).map(|k| row[start + k * step].clone()).collect();
                    if let Some(&col) = grams.get(&g) {
                        counts[r * out_size + col] += 1;
                    }
                }
            }
        }
    }
    // weights[i] belongs to the i-th n-gram of the pool, which is counted
    // in column ngram_indexes[i]; columns default to weight 1.
    let mut col_weight = vec![1.0f64; out_size];
    if let Some(w) = a.weights {
        if w.len() != a.ngram_indexes.len() {
            bail!("weights has {} entries, ngram_indexes has {}", w.len(), a.ngram_indexes.len());
        }
        for (&col, &wi) in a.ngram_indexes.iter().zip(w) {
            col_weight[col as usize] = wi as f64;
        }
    }
    let weight = |i: usize| col_weight[i];
    let out: Vec<f64> = counts
        .iter()
        .enumerate()
        .map(|(p, &c)| {
            let col = p % out_size.max(1);
            match a.mode {
                TfIdfMode::Tf => c as f64,
                TfIdfMode::Idf => {
                    if c > 0 {
                        weight(col)
                    } else {
                        0.0
                    }
                }
                TfIdfMode::TfIdf => weight(col) * c as f64,
            }
        })
        .collect();
    one(Tensor::from_f(DType::F32, out_shape, out)?)
}
