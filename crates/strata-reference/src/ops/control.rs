//! Reference kernels for `strata_ir::ops::ControlOp`: If, Loop, Scan (opset 8
//! and 9+), SequenceMap, the sequence operators and the optional operators.
//!
//! Subgraphs run through [`Ctx::run_subgraph`]; captured outer values are
//! supplied by the interpreter. Sequences and optionals are plain
//! [`Value::Sequence`] / [`Value::Optional`] values.

use strata_ir::ValueType;
use strata_ir::ops::ControlOp as C;

pub mod iterate;

use self::iterate::{ScanInputs, ScanOutputs, attr_at, direction, empty_scan_output, loop_runs};
use super::{Args, Ctx, one};
use crate::bail;
use crate::error::{KResult, KernelError};
use crate::util::{check_numel, norm_axis};
use crate::value::{Data, Tensor, Value};

/// The default for the most iterations a Loop may run; it lives with the
/// other per-thread limits in [`crate::util`].
pub use crate::util::MAX_LOOP_ITERATIONS;

/// Run one operator of this family.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &C, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    match op {
        C::If { then_branch, else_branch } => {
            let cond = scalar_bool(args.tensor(0)?, "cond")?;
            ctx.run_subgraph(if cond { *then_branch } else { *else_branch }, vec![])
        }
        C::Loop { body } => run_loop(*body, args, ctx),
        C::Scan {
            body,
            num_scan_inputs,
            scan_input_axes,
            scan_input_directions,
            scan_output_axes,
            scan_output_directions,
        } => run_scan(
            *body,
            *num_scan_inputs,
            scan_input_axes.as_deref(),
            scan_input_directions.as_deref(),
            scan_output_axes.as_deref(),
            scan_output_directions.as_deref(),
            args,
            ctx,
        ),
        C::Scan8 { body, num_scan_inputs, directions } => {
            run_scan8(*body, *num_scan_inputs, directions.as_deref(), args, ctx)
        }
        C::SequenceMap { body } => run_sequence_map(*body, args, ctx),
        C::SequenceConstruct {} => {
            let items = args.tensors()?;
            let first = match items.first() {
                Some(t) => t.dtype,
                None => bail!("SequenceConstruct needs at least one input"),
            };
            if let Some(t) = items.iter().find(|t| t.dtype != first) {
                bail!("all inputs must have the same type, got {first} and {}", t.dtype);
            }
            Ok(vec![Value::Sequence {
                elem: ValueType::tensor(first),
                items: items.into_iter().map(|t| Value::Tensor(t.clone())).collect(),
            }])
        }
        C::SequenceEmpty { dtype } => Ok(vec![Value::Sequence { elem: ValueType::tensor(*dtype), items: vec![] }]),
        C::SequenceLength {} => {
            let (_, items) = sequence(args.value(0)?)?;
            one(Tensor::i64s(vec![], vec![items.len() as i64])?)
        }
        C::SequenceAt {} => {
            let (_, items) = sequence(args.value(0)?)?;
            let p = position(args.tensor(1)?, items.len(), false)?;
            Ok(vec![items[p].clone()])
        }
        C::SequenceErase {} => {
            let (elem, items) = sequence(args.value(0)?)?;
            let p = match args.opt_tensor(1)? {
                Some(t) => position(t, items.len(), false)?,
                None if items.is_empty() => bail!("cannot erase from an empty sequence"),
                None => items.len() - 1,
            };
            let mut items = items.to_vec();
            items.remove(p);
            Ok(vec![Value::Sequence { elem: elem.clone(), items }])
        }
        C::SequenceInsert {} => {
            let (elem, items) = sequence(args.value(0)?)?;
            let t = args.tensor(1)?;
            if let Some(d) = elem.dtype()
                && d != t.dtype
            {
                bail!("cannot insert a {} tensor into a sequence of {d} tensors", t.dtype);
            }
            let p = match args.opt_tensor(2)? {
                Some(pt) => position(pt, items.len(), true)?,
                None => items.len(),
            };
            let mut items = items.to_vec();
            items.insert(p, Value::Tensor(t.clone()));
            Ok(vec![Value::Sequence { elem: ValueType::tensor(t.dtype), items }])
        }
        C::SplitToSequence { axis, keepdims } => split_to_sequence(args, *axis, *keepdims),
        C::ConcatFromSequence { axis, new_axis } => {
            let (_, items) = sequence(args.value(0)?)?;
            let parts: Vec<&Tensor> = items.iter().map(|v| v.tensor()).collect::<Result<_, _>>()?;
            let first = match parts.first() {
                Some(t) => *t,
                None => bail!("cannot concatenate an empty sequence"),
            };
            match *new_axis {
                0 => {
                    let a = norm_axis(*axis, first.rank())?;
                    one(concat(&parts, a)?)
                }
                1 => {
                    let a = norm_axis(*axis, first.rank() + 1)?;
                    let expanded: Vec<Tensor> = parts.iter().map(|t| unsqueeze(t, a)).collect::<Result<_, _>>()?;
                    one(concat(&expanded.iter().collect::<Vec<_>>(), a)?)
                }
                other => bail!("new_axis must be 0 or 1, got {other}"),
            }
        }
        C::Optional { r#type } => match (args.opt_value(0), r#type) {
            (Some(v), _) => Ok(vec![Value::Optional { elem: v.value_type(), value: Some(Box::new(v.clone())) }]),
            (None, Some(ty)) => Ok(vec![Value::Optional { elem: ty.clone(), value: None }]),
            (None, None) => bail!("Optional without an input needs the 'type' attribute"),
        },
        C::OptionalGetElement {} => {
            let v = args.value(0)?;
            if let Value::Optional { value, .. } = v {
                match value {
                    Some(v) => Ok(vec![(**v).clone()]),
                    None => bail!("the optional input has no value"),
                }
            } else {
                Ok(vec![v.clone()])
            }
        }
        C::OptionalHasElement {} => {
            let has = match args.opt_value(0) {
                None => false,
                Some(Value::Optional { value, .. }) => value.is_some(),
                Some(_) => true,
            };
            one(Tensor::from_b(vec![], vec![has])?)
        }
    }
}

/// The single boolean of a one-element bool tensor.
fn scalar_bool(t: &Tensor, what: &str) -> KResult<bool> {
    let b = t.b().map_err(|_| KernelError::new(format!("{what} must be a bool tensor, got {}", t.dtype)))?;
    match b {
        [v] => Ok(*v),
        _ => bail!("{what} must hold exactly one element, got shape {:?}", t.shape),
    }
}

/// The element type and items of a sequence value.
fn sequence(v: &Value) -> KResult<(&ValueType, &[Value])> {
    match v {
        Value::Sequence { elem, items } => Ok((elem, items)),
        _ => bail!("expected a sequence input"),
    }
}

/// A position into a sequence of `len` items from a scalar integer tensor;
/// negative positions count from the back. `insert` allows `len` itself.
fn position(t: &Tensor, len: usize, insert: bool) -> KResult<usize> {
    if !t.dtype.is_int() || t.numel() != 1 {
        bail!("position must be a single integer, got {} of shape {:?}", t.dtype, t.shape);
    }
    let p = t.scalar_i64()?;
    let n = len as i64;
    let hi = if insert { n } else { n - 1 };
    if p < -n || p > hi {
        bail!("position {p} is out of range for a sequence of length {len}");
    }
    Ok(if p < 0 { (p + n) as usize } else { p as usize })
}

/// The elements of `t` at indices `idx` along `axis` (that axis gets length
/// `idx.len()`).
fn take(t: &Tensor, axis: usize, idx: &[usize]) -> KResult<Tensor> {
    let dim = t.shape[axis];
    if let Some(&bad) = idx.iter().find(|&&i| i >= dim) {
        bail!("index {bad} is out of range for axis {axis} of shape {:?}", t.shape);
    }
    let outer: usize = t.shape[..axis].iter().product();
    let inner: usize = t.shape[axis + 1..].iter().product();
    let mut flat = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            for r in 0..inner {
                flat.push((o * dim + i) * inner + r);
            }
        }
    }
    let mut shape = t.shape.clone();
    shape[axis] = idx.len();
    Tensor::new(t.dtype, shape, t.data.gather(&flat))
}

/// The slice of `t` at index `i` of `axis`, with that axis removed (also
/// used by sessions that run Scan on the host).
pub fn index_axis(t: &Tensor, axis: usize, i: usize) -> KResult<Tensor> {
    let mut s = take(t, axis, &[i])?;
    s.shape.remove(axis);
    Ok(s)
}

/// `t` with a new axis of length 1 inserted at `axis`.
fn unsqueeze(t: &Tensor, axis: usize) -> KResult<Tensor> {
    let mut s = t.clone();
    s.shape.insert(axis, 1);
    Ok(s)
}

/// Concatenate tensors of one dtype and rank along `axis`; all other
/// dimensions must agree.
fn concat(parts: &[&Tensor], axis: usize) -> KResult<Tensor> {
    let first = match parts.first() {
        Some(t) => *t,
        None => bail!("nothing to concatenate"),
    };
    if axis >= first.rank() {
        bail!("axis {axis} is out of range for rank {}", first.rank());
    }
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for p in parts {
        if p.dtype != first.dtype {
            bail!("cannot concatenate {} and {} tensors", first.dtype, p.dtype);
        }
        let same_rank = p.rank() == first.rank();
        if !same_rank || p.shape.iter().zip(&first.shape).enumerate().any(|(k, (a, b))| k != axis && a != b) {
            bail!("cannot concatenate shapes {:?} and {:?} along axis {axis}", first.shape, p.shape);
        }
        shape[axis] += p.shape[axis];
    }
    check_numel(&shape)?;
    // Lay all parts end to end, then pick elements in output order.
    let all = Data::concat(&parts.iter().map(|p| &p.data).collect::<Vec<_>>())?;
    let mut offsets = Vec::with_capacity(parts.len());
    let mut off = 0;
    for p in parts {
        offsets.push(off);
        off += p.numel();
    }
    let outer: usize = first.shape[..axis].iter().product();
    let inner: usize = first.shape[axis + 1..].iter().product();
    let mut flat = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for (p, &base) in parts.iter().zip(&offsets) {
            let chunk = p.shape[axis] * inner;
            flat.extend((0..chunk).map(|r| base + o * chunk + r));
        }
    }
    Tensor::new(first.dtype, shape, all.gather(&flat))
}

/// Stack same-shaped tensors along a new axis `axis` of the result (also
/// used by sessions that run Loop and Scan on the host).
pub fn stack(parts: &[Tensor], axis: usize) -> KResult<Tensor> {
    let expanded: Vec<Tensor> = parts.iter().map(|t| unsqueeze(t, axis)).collect::<Result<_, _>>()?;
    concat(&expanded.iter().collect::<Vec<_>>(), axis)
}

/// Loop: inputs `(M?, cond?, v_initial...)`; body `(iter, cond, v...) ->
/// (cond, v..., scan...)`; outputs `(v_final..., scan stacked on axis 0...)`.
/// As the spec says, the body's condition is ignored when the `cond` input
/// is omitted (onnxruntime stops on it anyway). Runs of more than
/// [`crate::util::max_loop_iterations`] fail.
fn run_loop(body: strata_ir::GraphId, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    let max_trips = match args.opt_tensor(0)? {
        Some(t) => {
            if !t.dtype.is_int() || t.numel() != 1 {
                bail!("M must be a single integer, got {} of shape {:?}", t.dtype, t.shape);
            }
            Some(t.scalar_i64()?)
        }
        None => None,
    };
    let cond_input = match args.opt_tensor(1)? {
        Some(t) => Some(scalar_bool(t, "cond")?),
        None => None,
    };
    let mut carried = Vec::new();
    for i in 2..args.len() {
        match args.opt_value(i) {
            Some(v) => carried.push(v.clone()),
            None => bail!("loop-carried input {i} is missing"),
        }
    }
    let n_carried = carried.len();
    let mut cond = cond_input.unwrap_or(true);
    let mut scans = ScanOutputs::default();
    let mut iter: i64 = 0;
    while loop_runs(max_trips, cond_input, cond, iter, crate::util::max_loop_iterations())? {
        let mut inputs =
            vec![Value::Tensor(Tensor::i64s(vec![], vec![iter])?), Value::Tensor(Tensor::from_b(vec![], vec![cond])?)];
        inputs.append(&mut carried);
        let outs = ctx.run_subgraph(body, inputs)?;
        if outs.len() < 1 + n_carried {
            bail!("loop body returned {} values, expected at least {}", outs.len(), 1 + n_carried);
        }
        let mut outs = outs.into_iter();
        let c = outs.next().ok_or_else(|| KernelError::new("loop body returned no condition"))?;
        cond = scalar_bool(c.tensor()?, "loop body condition")?;
        carried = outs.by_ref().take(n_carried).collect();
        scans.push(
            outs.map(|v| v.into_tensor().map_err(|_| KernelError::new("loop scan outputs must be tensors")))
                .collect::<KResult<_>>()?,
        )?;
        iter += 1;
    }
    let mut outputs = carried;
    if iter == 0 {
        for j in n_carried..ctx.n_outputs() {
            outputs.push(Value::Tensor(empty_scan_output(ctx.subgraph_output_type(body, 1 + j).as_ref())?));
        }
    } else {
        outputs.extend(scans.stack_loop()?.into_iter().map(Value::Tensor));
    }
    Ok(outputs)
}

/// Scan (opset 9+): inputs `(state..., scan_input...)`; body
/// `(state..., slice...) -> (state..., scan_out...)`.
#[allow(clippy::too_many_arguments)]
fn run_scan(
    body: strata_ir::GraphId,
    num_scan_inputs: i64,
    in_axes: Option<&[i64]>,
    in_dirs: Option<&[i64]>,
    out_axes: Option<&[i64]>,
    out_dirs: Option<&[i64]>,
    args: &Args,
    ctx: &dyn Ctx,
) -> KResult<Vec<Value>> {
    let n_in = args.len();
    if num_scan_inputs < 1 || num_scan_inputs as usize > n_in {
        bail!("num_scan_inputs {num_scan_inputs} does not fit {n_in} inputs");
    }
    let m = num_scan_inputs as usize;
    let n = n_in - m;
    let mut states = Vec::with_capacity(n);
    for i in 0..n {
        states.push(args.value(i)?.clone());
    }
    let tensors = (0..m).map(|j| args.tensor(n + j)).collect::<KResult<Vec<_>>>()?;
    let scan_in = ScanInputs::new(&tensors, in_axes, in_dirs)?;
    let mut scans = ScanOutputs::default();
    for it in 0..scan_in.len() {
        let mut inputs = states;
        inputs.extend(scan_in.slices(it)?.into_iter().map(Value::Tensor));
        let outs = ctx.run_subgraph(body, inputs)?;
        if outs.len() < n {
            bail!("scan body returned {} values, expected at least {n}", outs.len());
        }
        let mut outs = outs.into_iter();
        states = outs.by_ref().take(n).collect();
        scans.push(
            outs.map(|v| v.into_tensor().map_err(|_| KernelError::new("scan outputs must be tensors")))
                .collect::<KResult<_>>()?,
        )?;
    }
    let mut outputs = states;
    if scan_in.is_empty() {
        for j in n..ctx.n_outputs() {
            outputs.push(Value::Tensor(empty_scan_output(ctx.subgraph_output_type(body, j).as_ref())?));
        }
    }
    outputs.extend(scans.stack_scan(out_axes, out_dirs)?.into_iter().map(Value::Tensor));
    Ok(outputs)
}

/// Scan (opset 8): inputs `(sequence_lens?, state..., scan_input...)`, all
/// batched on axis 0 and scanned on axis 1. Scan outputs are
/// `[batch, max_len, ...]`, zero-filled past each batch entry's length.
fn run_scan8(
    body: strata_ir::GraphId,
    num_scan_inputs: i64,
    dirs: Option<&[i64]>,
    args: &Args,
    ctx: &dyn Ctx,
) -> KResult<Vec<Value>> {
    if args.is_empty() || num_scan_inputs < 1 || num_scan_inputs as usize > args.len() - 1 {
        bail!("num_scan_inputs {num_scan_inputs} does not fit {} inputs", args.len());
    }
    let m = num_scan_inputs as usize;
    let n = args.len() - 1 - m;
    let states: Vec<&Tensor> = (0..n).map(|i| args.tensor(1 + i)).collect::<Result<_, _>>()?;
    let scan_in: Vec<&Tensor> = (0..m).map(|j| args.tensor(1 + n + j)).collect::<Result<_, _>>()?;
    let batch = match scan_in[0].shape.first() {
        Some(&b) => b,
        None => bail!("scan inputs must have a batch axis"),
    };
    let max_len = match scan_in[0].shape.get(1) {
        Some(&l) => l,
        None => bail!("scan inputs must have shape [batch, sequence, ...]"),
    };
    for t in states.iter().chain(&scan_in) {
        if t.shape.first() != Some(&batch) {
            bail!("all state and scan inputs must have batch size {batch}, got shape {:?}", t.shape);
        }
    }
    for t in &scan_in {
        if t.shape.get(1) != Some(&max_len) {
            bail!("all scan inputs must have sequence length {max_len}, got shape {:?}", t.shape);
        }
    }
    let lens: Vec<usize> = match args.opt_tensor(0)? {
        Some(t) => {
            let v = t.to_i64()?;
            if v.len() != batch {
                bail!("sequence_lens has {} entries for batch size {batch}", v.len());
            }
            v.iter()
                .map(|&l| {
                    if l < 0 || l as usize > max_len {
                        bail!("sequence length {l} is out of range [0, {max_len}]");
                    }
                    Ok(l as usize)
                })
                .collect::<KResult<_>>()?
        }
        None => vec![max_len; batch],
    };
    let revs: Vec<bool> = (0..m).map(|j| direction(attr_at(dirs, j))).collect::<KResult<_>>()?;
    // Per batch entry: final states and the per-iteration scan outputs.
    let mut final_states: Vec<Vec<Tensor>> = vec![Vec::new(); n];
    let mut scans: Vec<Vec<Vec<Tensor>>> = Vec::new();
    let mut scan_elements = 0usize;
    for b in 0..batch {
        let mut st: Vec<Value> =
            states.iter().map(|t| index_axis(t, 0, b).map(Value::Tensor)).collect::<Result<_, _>>()?;
        let rows: Vec<Tensor> = scan_in.iter().map(|t| index_axis(t, 0, b)).collect::<Result<_, _>>()?;
        let mut per_iter: Vec<Vec<Tensor>> = Vec::new();
        for it in 0..lens[b] {
            let mut inputs = st;
            for (row, &rev) in rows.iter().zip(&revs) {
                let i = if rev { lens[b] - 1 - it } else { it };
                inputs.push(Value::Tensor(index_axis(row, 0, i)?));
            }
            let outs = ctx.run_subgraph(body, inputs)?;
            if outs.len() < n {
                bail!("scan body returned {} values, expected at least {n}", outs.len());
            }
            let mut outs = outs.into_iter();
            st = outs.by_ref().take(n).collect();
            let scan_vals: Vec<Value> = outs.collect();
            if it == 0 {
                per_iter = vec![Vec::new(); scan_vals.len()];
            } else if scan_vals.len() != per_iter.len() {
                bail!("scan body returned a varying number of scan outputs");
            }
            for (k, v) in scan_vals.into_iter().enumerate() {
                let t = v.into_tensor().map_err(|_| KernelError::new("scan outputs must be tensors"))?;
                scan_elements = scan_elements.saturating_add(t.numel());
                check_numel(&[scan_elements])?;
                per_iter[k].push(t);
            }
        }
        for (k, v) in st.into_iter().enumerate() {
            final_states[k].push(v.into_tensor()?);
        }
        scans.push(per_iter);
    }
    let mut outputs: Vec<Value> = Vec::new();
    for (parts, initial) in final_states.iter().zip(&states) {
        // With an empty batch the (empty) initial state is the final state.
        outputs.push(Value::Tensor(if parts.is_empty() { (*initial).clone() } else { stack(parts, 0)? }));
    }
    // The per-iteration shape and dtype of each scan output, from any batch
    // entry that ran at least once.
    let n_scan = scans.iter().map(|s| s.len()).max().unwrap_or(0);
    for k in 0..n_scan {
        let proto = match scans.iter().find_map(|s| s.get(k).and_then(|p| p.first())) {
            Some(t) => t.clone(),
            None => bail!("scan output {k} has no iterations"),
        };
        let mut rows = Vec::with_capacity(batch);
        for s in &scans {
            let mut parts: Vec<Tensor> = s.get(k).cloned().unwrap_or_default();
            while parts.len() < max_len {
                parts.push(Tensor::zeros(proto.dtype, proto.shape.clone())?);
            }
            rows.push(stack(&parts, 0)?);
        }
        outputs.push(Value::Tensor(stack(&rows, 0)?));
    }
    if n_scan == 0 {
        for j in n..ctx.n_outputs() {
            outputs.push(Value::Tensor(empty_scan_output(ctx.subgraph_output_type(body, j).as_ref())?));
        }
    }
    Ok(outputs)
}

/// SequenceMap: run the body once per item of the input sequence; further
/// sequence inputs are iterated alongside, tensor inputs passed whole.
fn run_sequence_map(body: strata_ir::GraphId, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    let (_, first) = sequence(args.value(0)?)?;
    let len = first.len();
    let mut extra = Vec::new();
    for i in 1..args.len() {
        let v = args.value(i)?;
        if let Value::Sequence { items, .. } = v
            && items.len() != len
        {
            bail!("input {i} is a sequence of length {}, expected {len}", items.len());
        }
        extra.push(v);
    }
    let mut results: Vec<Vec<Value>> = vec![Vec::new(); ctx.n_outputs()];
    for it in 0..len {
        let mut inputs = vec![first[it].clone()];
        for v in &extra {
            inputs.push(match v {
                Value::Sequence { items, .. } => items[it].clone(),
                other => (*other).clone(),
            });
        }
        let outs = ctx.run_subgraph(body, inputs)?;
        if outs.len() < results.len() {
            bail!("body returned {} values for {} outputs", outs.len(), results.len());
        }
        for (r, v) in results.iter_mut().zip(outs) {
            r.push(v);
        }
    }
    Ok(results
        .into_iter()
        .map(|items| Value::Sequence {
            elem: items.first().map(Value::value_type).unwrap_or(ValueType::Unknown),
            items,
        })
        .collect())
}

/// SplitToSequence: split along `axis` into equal pieces of a scalar size,
/// pieces of listed sizes, or (no `split`) single slices.
fn split_to_sequence(args: &Args, axis: i64, keepdims: i64) -> KResult<Vec<Value>> {
    let t = args.tensor(0)?;
    if t.rank() == 0 {
        bail!("cannot split a scalar");
    }
    let axis = norm_axis(axis, t.rank())?;
    let dim = t.shape[axis];
    let split = args.opt_tensor(1)?;
    let sizes: Vec<usize> = match split {
        None => vec![1; dim],
        Some(s) if s.rank() == 0 => {
            let k = s.scalar_i64()?;
            if k <= 0 {
                bail!("split size must be positive, got {k}");
            }
            let k = k as usize;
            let mut v = vec![k; dim / k];
            if dim % k > 0 {
                v.push(dim % k);
            }
            v
        }
        Some(s) if s.rank() == 1 => {
            let v = crate::util::to_dims(&s.to_i64()?, "split")?;
            if v.iter().try_fold(0usize, |a, &b| a.checked_add(b)) != Some(dim) {
                bail!("split sizes {v:?} do not sum to the axis length {dim}");
            }
            v
        }
        Some(s) => bail!("split must be a scalar or 1-D, got shape {:?}", s.shape),
    };
    let squeeze = split.is_none() && keepdims == 0;
    let mut items = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for len in sizes {
        let idx: Vec<usize> = (start..start + len).collect();
        let mut piece = take(t, axis, &idx)?;
        if squeeze {
            piece.shape.remove(axis);
        }
        items.push(Value::Tensor(piece));
        start += len;
    }
    Ok(vec![Value::Sequence { elem: ValueType::tensor(t.dtype), items }])
}
