//! Reference kernels for `strata_ir::ops::MlOp` (the `ai.onnx.ml` domain):
//! ArrayFeatureExtractor, Binarizer, LabelEncoder, TreeEnsemble, Normalizer
//! and Scaler.

use std::collections::HashMap;

use strata_ir::ops::MlOp as M;
use strata_ir::{DType, TensorData};

use super::{Args, Ctx, one};
use crate::bail;
use crate::error::KResult;
use crate::util::check_numel;
use crate::value::{Data, Tensor, Value, data_class};

/// Run one operator of this family.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &M, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    match op {
        M::ArrayFeatureExtractor {} => array_feature_extractor(args.tensor(0)?, args.tensor(1)?),
        M::Binarizer { threshold } => {
            let x = args.tensor(0)?;
            let t = *threshold as f64;
            let v = x.to_f64()?.into_iter().map(|v| if v > t { 1.0 } else { 0.0 }).collect();
            one(Tensor::from_f64_any(x.dtype, x.shape.clone(), v)?)
        }
        M::LabelEncoder { .. } => label_encoder(op, args.tensor(0)?),
        M::TreeEnsemble { .. } => tree_ensemble(op, args.tensor(0)?),
        M::Normalizer { norm } => normalizer(args.tensor(0)?, *norm),
        M::Scaler { offset, scale } => {
            let x = args.tensor(0)?;
            let v = x.to_f64()?;
            let features = x.shape.last().copied().unwrap_or(1);
            let offset = offset.as_deref().unwrap_or(&[]);
            let scale = scale.as_deref().unwrap_or(&[]);
            // Each of offset/scale is empty (identity), one value, or one per feature.
            let pick = |list: &[f32], i: usize, identity: f64| -> KResult<f64> {
                match list.len() {
                    0 => Ok(identity),
                    1 => Ok(list[0] as f64),
                    n if n == features => Ok(list[i % features] as f64),
                    n => bail!("offset/scale has {n} values for {features} features"),
                }
            };
            let mut out = Vec::with_capacity(v.len());
            for (i, &x) in v.iter().enumerate() {
                out.push((x - pick(offset, i, 0.0)?) * pick(scale, i, 1.0)?);
            }
            one(Tensor::from_f(DType::F32, x.shape.clone(), out)?)
        }
    }
}

/// ArrayFeatureExtractor: pick entries of the last axis. The indices are
/// flattened; a 1-D input gives a `[1, k]` output.
fn array_feature_extractor(x: &Tensor, idx: &Tensor) -> KResult<Vec<Value>> {
    if !idx.dtype.is_int() {
        bail!("indices must be int64, got {}", idx.dtype);
    }
    let n = match x.shape.last() {
        Some(&n) => n,
        None => bail!("input must have rank at least 1"),
    };
    let picks: Vec<usize> = idx
        .to_i64()?
        .into_iter()
        .map(|i| {
            if i < 0 || i as usize >= n {
                bail!("index {i} is out of range for {n} features");
            }
            Ok(i as usize)
        })
        .collect::<KResult<_>>()?;
    let outer: usize = x.shape[..x.rank() - 1].iter().product();
    let mut flat = Vec::with_capacity(outer * picks.len());
    for o in 0..outer {
        flat.extend(picks.iter().map(|&i| o * n + i));
    }
    let shape = if x.rank() == 1 {
        vec![1, picks.len()]
    } else {
        let mut s = x.shape[..x.rank() - 1].to_vec();
        s.push(picks.len());
        s
    };
    one(Tensor::new(x.dtype, shape, x.data.gather(&flat))?)
}

/// A hashable label-encoder key. Floats are keyed by their bits with every
/// NaN made one NaN and -0 made +0, so NaN matches NaN and -0 matches 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    F(u64),
    I(i128),
    S(String),
    B(bool),
}

fn float_key(v: f64) -> Key {
    if v.is_nan() {
        Key::F(f64::NAN.to_bits())
    } else if v == 0.0 {
        Key::F(0f64.to_bits())
    } else {
        Key::F(v.to_bits())
    }
}

/// The elements of a tensor as keys.
fn keys_of(data: &Data) -> Vec<Key> {
    match data {
        Data::F(v) => v.iter().map(|&x| float_key(x)).collect(),
        Data::I(v) => v.iter().map(|&x| Key::I(x)).collect(),
        Data::S(v) => v.iter().map(|x| Key::S(x.clone())).collect(),
        Data::B(v) => v.iter().map(|&x| Key::B(x)).collect(),
    }
}

/// A 1-D tensor of values from a host tensor attribute.
fn host(t: &TensorData) -> KResult<Tensor> {
    Tensor::from_host(t)
}

/// LabelEncoder: map each element through the keys -> values table, with a
/// default for missing keys. The last duplicate key wins, as the spec says
/// (onnxruntime keeps the first).
fn label_encoder(op: &M, x: &Tensor) -> KResult<Vec<Value>> {
    let M::LabelEncoder {
        default_float,
        default_int64,
        default_string,
        default_tensor,
        keys_floats,
        keys_int64s,
        keys_strings,
        keys_tensor,
        values_floats,
        values_int64s,
        values_strings,
        values_tensor,
    } = op
    else {
        bail!("internal: not a LabelEncoder");
    };
    let keys: Tensor = match (keys_floats, keys_int64s, keys_strings, keys_tensor) {
        (Some(k), None, None, None) => {
            Tensor::from_f(DType::F32, vec![k.len()], k.iter().map(|&v| v as f64).collect())?
        }
        (None, Some(k), None, None) => Tensor::i64s(vec![k.len()], k.clone())?,
        (None, None, Some(k), None) => Tensor::from_s(vec![k.len()], k.clone())?,
        (None, None, None, Some(k)) => host(k)?,
        _ => bail!("exactly one of the keys_* attributes must be set"),
    };
    // The values table and the default, both in the output dtype.
    let (values, default): (Tensor, Tensor) = match (values_floats, values_int64s, values_strings, values_tensor) {
        (Some(v), None, None, None) => (
            Tensor::from_f(DType::F32, vec![v.len()], v.iter().map(|&x| x as f64).collect())?,
            Tensor::from_f(DType::F32, vec![1], vec![*default_float as f64])?,
        ),
        (None, Some(v), None, None) => {
            (Tensor::i64s(vec![v.len()], v.clone())?, Tensor::i64s(vec![1], vec![*default_int64])?)
        }
        (None, None, Some(v), None) => {
            (Tensor::from_s(vec![v.len()], v.clone())?, Tensor::from_s(vec![1], vec![default_string.clone()])?)
        }
        (None, None, None, Some(v)) => {
            let v = host(v)?;
            let d = match default_tensor {
                Some(d) => {
                    let d = host(d)?;
                    if d.dtype != v.dtype || d.numel() != 1 {
                        bail!("default_tensor must be one {} value, got {} of shape {:?}", v.dtype, d.dtype, d.shape);
                    }
                    d
                }
                None => match data_class(v.dtype) {
                    's' => Tensor::from_s(vec![1], vec!["_Unused".to_string()])?,
                    'i' => Tensor::from_i(v.dtype, vec![1], vec![-1])?,
                    'f' => Tensor::from_f(v.dtype, vec![1], vec![-0.0])?,
                    _ => bail!("unsupported values_tensor type {}", v.dtype),
                },
            };
            (v, d)
        }
        _ => bail!("exactly one of the values_* attributes must be set"),
    };
    if keys.numel() != values.numel() {
        bail!("{} keys but {} values", keys.numel(), values.numel());
    }
    if data_class(keys.dtype) != data_class(x.dtype) {
        bail!("input type {} does not match the key type {}", x.dtype, keys.dtype);
    }
    let table: HashMap<Key, usize> = keys_of(&keys.data).into_iter().enumerate().map(|(i, k)| (k, i)).collect();
    // Index `values.numel()` stands for the default.
    let idx: Vec<usize> = keys_of(&x.data).iter().map(|k| table.get(k).copied().unwrap_or(values.numel())).collect();
    let all = Data::concat(&[&values.data, &default.data])?;
    one(Tensor::new(values.dtype, x.shape.clone(), all.gather(&idx))?)
}

/// One tree node of TreeEnsemble's node table.
struct Branch {
    mode: u8,
    feature: usize,
    split: f64,
    members: Vec<f64>,
    nan_true: bool,
    /// (is_leaf, index) of the true and false branches.
    t: (bool, usize),
    f: (bool, usize),
}

/// The inverse error function, by bisection on `libm::erf` (NaN outside
/// `[-1, 1]`).
fn erf_inv(y: f64) -> f64 {
    if y.is_nan() || !(-1.0..=1.0).contains(&y) {
        return f64::NAN;
    }
    if y == -1.0 {
        return f64::NEG_INFINITY;
    }
    if y == 1.0 {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (-6.0f64, 6.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if libm::erf(mid) < y {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// TreeEnsemble (ai.onnx.ml v5): walk every tree for every row of `[N, F]`
/// input, aggregate leaf weights per target, then apply the post transform.
/// Post transforms are numbered as in the spec (1 SOFTMAX, 2 LOGISTIC;
/// onnxruntime 1.32 swaps these two). MIN/MAX give 0 for a target no leaf
/// reached.
fn tree_ensemble(op: &M, x: &Tensor) -> KResult<Vec<Value>> {
    let M::TreeEnsemble {
        aggregate_function,
        leaf_targetids,
        leaf_weights,
        membership_values,
        n_targets,
        nodes_falseleafs,
        nodes_falsenodeids,
        nodes_featureids,
        nodes_hitrates: _,
        nodes_missing_value_tracks_true,
        nodes_modes,
        nodes_splits,
        nodes_trueleafs,
        nodes_truenodeids,
        post_transform,
        tree_roots,
    } = op
    else {
        bail!("internal: not a TreeEnsemble");
    };
    if !x.dtype.is_float() {
        bail!("input must be float16, float or double, got {}", x.dtype);
    }
    let (rows, n_feat) = match x.shape.as_slice() {
        [n, f] => (*n, *f),
        [f] => (1, *f),
        s => bail!("input must have shape [N, F], got {s:?}"),
    };
    let xs = x.f()?;
    // Thresholds are compared in the input's precision.
    let to_x = |v: f64| x.dtype.round_float(v);
    let modes = host(nodes_modes)?.to_i64()?;
    let splits = host(nodes_splits)?.to_f64()?;
    let n_nodes = modes.len();
    for (name, len) in [
        ("nodes_splits", splits.len()),
        ("nodes_featureids", nodes_featureids.len()),
        ("nodes_truenodeids", nodes_truenodeids.len()),
        ("nodes_falsenodeids", nodes_falsenodeids.len()),
        ("nodes_trueleafs", nodes_trueleafs.len()),
        ("nodes_falseleafs", nodes_falseleafs.len()),
    ] {
        if len != n_nodes {
            bail!("{name} has {len} entries, nodes_modes has {n_nodes}");
        }
    }
    let weights = host(leaf_weights)?.to_f64()?;
    let n_leaves = weights.len();
    if leaf_targetids.len() != n_leaves {
        bail!("leaf_targetids has {} entries, leaf_weights has {n_leaves}", leaf_targetids.len());
    }
    let n_targets = match n_targets {
        Some(n) if *n >= 0 => *n as usize,
        Some(n) => bail!("n_targets must be non-negative, got {n}"),
        None => leaf_targetids.iter().map(|&t| t.max(0) as usize + 1).max().unwrap_or(0),
    };
    if let Some(&t) = leaf_targetids.iter().find(|&&t| t < 0 || t as usize >= n_targets) {
        bail!("leaf target id {t} is out of range for {n_targets} targets");
    }
    let tracks = nodes_missing_value_tracks_true.as_deref().unwrap_or(&[]);
    if !tracks.is_empty() && tracks.len() != n_nodes {
        bail!("nodes_missing_value_tracks_true has {} entries for {n_nodes} nodes", tracks.len());
    }
    // Membership sets, NaN-delimited, in the order BRANCH_MEMBER nodes appear.
    let member_vals = match membership_values {
        Some(m) => host(m)?.to_f64()?,
        None => vec![],
    };
    let mut member_sets = member_vals.split(|v| v.is_nan());
    let target = |leaf: bool, i: i64, what: &str| -> KResult<(bool, usize)> {
        let bound = if leaf { n_leaves } else { n_nodes };
        if i < 0 || i as usize >= bound {
            bail!("{what} {i} is out of range ({bound} {})", if leaf { "leaves" } else { "nodes" });
        }
        Ok((leaf, i as usize))
    };
    let mut nodes = Vec::with_capacity(n_nodes);
    for i in 0..n_nodes {
        let mode = modes[i];
        if !(0..=6).contains(&mode) {
            bail!("unknown node mode {mode}");
        }
        let members = if mode == 6 {
            match member_sets.next() {
                Some(s) => s.iter().map(|&v| to_x(v)).collect(),
                None => bail!("membership_values has no set for member node {i}"),
            }
        } else {
            vec![]
        };
        let feature = nodes_featureids[i];
        if feature < 0 || feature as usize >= n_feat {
            bail!("feature id {feature} is out of range for {n_feat} features");
        }
        nodes.push(Branch {
            mode: mode as u8,
            feature: feature as usize,
            split: to_x(splits[i]),
            members,
            nan_true: tracks.get(i).is_some_and(|&t| t != 0),
            t: target(nodes_trueleafs[i] != 0, nodes_truenodeids[i], "true branch")?,
            f: target(nodes_falseleafs[i] != 0, nodes_falsenodeids[i], "false branch")?,
        });
    }
    let roots: Vec<usize> =
        tree_roots.iter().map(|&r| target(false, r, "tree root").map(|(_, i)| i)).collect::<KResult<_>>()?;
    let out_shape = vec![rows, n_targets];
    check_numel(&out_shape)?;
    let mut out = Vec::with_capacity(rows * n_targets);
    for r in 0..rows {
        let row = &xs[r * n_feat..(r + 1) * n_feat];
        // (sum, min, max, count) of the leaf weights reaching each target.
        let mut sum = vec![0.0f64; n_targets];
        let mut min = vec![f64::INFINITY; n_targets];
        let mut max = vec![f64::NEG_INFINITY; n_targets];
        let mut hit = vec![false; n_targets];
        for &root in &roots {
            let mut at = root;
            let mut steps = 0;
            let leaf = loop {
                let n = &nodes[at];
                let v = row[n.feature];
                let go_true = if v.is_nan() && n.nan_true {
                    true
                } else {
                    match n.mode {
                        0 => v <= n.split,
                        1 => v < n.split,
                        2 => v >= n.split,
                        3 => v > n.split,
                        4 => v == n.split,
                        5 => v != n.split,
                        _ => n.members.contains(&v),
                    }
                };
                let (is_leaf, next) = if go_true { n.t } else { n.f };
                if is_leaf {
                    break next;
                }
                at = next;
                steps += 1;
                if steps > n_nodes {
                    bail!("the tree rooted at node {root} has a cycle");
                }
            };
            let t = leaf_targetids[leaf] as usize;
            let w = weights[leaf];
            sum[t] += w;
            min[t] = min[t].min(w);
            max[t] = max[t].max(w);
            hit[t] = true;
        }
        let mut scores: Vec<f64> = (0..n_targets)
            .map(|t| match aggregate_function {
                0 => Ok(if roots.is_empty() { 0.0 } else { sum[t] / roots.len() as f64 }),
                1 => Ok(sum[t]),
                2 => Ok(if hit[t] { min[t] } else { 0.0 }),
                3 => Ok(if hit[t] { max[t] } else { 0.0 }),
                other => bail!("unknown aggregate_function {other}"),
            })
            .collect::<KResult<_>>()?;
        post(&mut scores, *post_transform)?;
        out.extend(scores);
    }
    one(Tensor::from_f(x.dtype, out_shape, out)?)
}

/// Apply a tree-ensemble post transform to one row of scores.
fn post(scores: &mut [f64], transform: i64) -> KResult<()> {
    match transform {
        0 => {}
        1 | 3 => {
            // SOFTMAX, or SOFTMAX_ZERO which keeps zero scores at zero.
            let keep_zero = transform == 3;
            let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut total = 0.0;
            for s in scores.iter_mut() {
                *s = if keep_zero && *s == 0.0 { 0.0 } else { libm::exp(*s - m) };
                total += *s;
            }
            if total > 0.0 {
                for s in scores.iter_mut() {
                    *s /= total;
                }
            }
        }
        2 => scores.iter_mut().for_each(|s| *s = crate::ops::elementwise::sigmoid(*s)),
        4 => scores.iter_mut().for_each(|s| *s = std::f64::consts::SQRT_2 * erf_inv(2.0 * *s - 1.0)),
        other => bail!("unknown post_transform {other}"),
    }
    Ok(())
}

/// Normalizer: scale each row of `[N, C]` (or the one row of `[C]`) by its
/// max (MAX), sum of absolute values (L1) or Euclidean norm (L2); a zero
/// divisor leaves the row unchanged. Output is float.
fn normalizer(x: &Tensor, norm: strata_ir::ops::ml::RowNorm) -> KResult<Vec<Value>> {
    let cols = match x.shape.as_slice() {
        [c] | [_, c] => *c,
        s => bail!("input must have shape [C] or [N, C], got {s:?}"),
    };
    let v = x.to_f64()?;
    let mut out = Vec::with_capacity(v.len());
    for row in v.chunks(cols.max(1)) {
        let div = match norm {
            strata_ir::ops::ml::RowNorm::Max => row.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            strata_ir::ops::ml::RowNorm::L1 => row.iter().map(|x| x.abs()).sum(),
            strata_ir::ops::ml::RowNorm::L2 => libm::sqrt(row.iter().map(|x| x * x).sum()),
        };
        out.extend(row.iter().map(|&x| if div == 0.0 { x } else { x / div }));
    }
    one(Tensor::from_f(DType::F32, x.shape.clone(), out)?)
}
