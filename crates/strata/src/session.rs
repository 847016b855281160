//! Sessions: load, place, compile and run a model.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use strata_ir::{Dim, GraphId, HostValue, Model, NodeId, ValueId, ValueType};

use crate::backend::{Backend, CompiledPartition, DeviceValue, Support, block_on};
use crate::control::{Branch, HostControl, ValueMap};
use crate::error::Error;
pub use crate::options::SessionOptions;

/// Name and declared type of a model input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct IoInfo {
    pub name: String,
    pub ty: ValueType,
}

/// Where one node runs, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub node: String,
    pub op: String,
    pub backend: String,
    /// Why the preferred backends did not take it (empty when the first did).
    pub reason: String,
}

struct Partition {
    work: Work,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
    /// With `profile`: (nanoseconds, runs) of the whole partition.
    time: (std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64),
    /// What the partition is, for the profile: (label, op kind).
    label: (String, String),
}

/// Time spent in one node (or one partition, where its backend does not
/// time nodes) over the runs of a session created with
/// [`SessionOptions::profile`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileEntry {
    /// Node name, or a partition label such as `"12 nodes from 'conv1'"`.
    pub node: String,
    /// Operator name (`"(partition)"` for a partition, `"If"`, `"Loop"` or `"Scan"` for host control flow).
    pub op: String,
    pub backend: String,
    /// Total time over `runs` runs.
    pub total: std::time::Duration,
    pub runs: u64,
}

/// Nodes a backend runs as one fused node ([`Session::fused_groups`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FusedGroup {
    pub backend: String,
    /// Operator names joined by `+`, e.g. `Conv+Add+Clip+Mul+Div`.
    pub ops: String,
    /// The nodes' names, in graph order.
    pub nodes: Vec<String>,
}

/// What a partition runs.
enum Work {
    /// Nodes compiled for one backend (index into `Session::backends`).
    Compiled { backend: usize, compiled: Box<dyn CompiledPartition> },
    /// An `If`, `Loop` or `Scan` the host runs, each branch or body as a
    /// session of its own whose nodes are placed like a model's.
    Host(Box<HostControl>),
}

impl Partition {
    /// Add one run's time (when profiling).
    fn record(&self, started: Option<crate::backend::Clock>) {
        if let Some(t0) = started {
            use std::sync::atomic::Ordering::Relaxed;
            self.time.0.fetch_add(t0.elapsed_nanos(), Relaxed);
            self.time.1.fetch_add(1, Relaxed);
        }
    }
}

/// `assign` marker for a node the host runs as control flow.
const HOST_CONTROL: usize = usize::MAX;

/// A loaded model, ready to run. `Send + Sync`: `run` may be called from many threads.
pub struct Session {
    /// Host↔device transfers since creation: (uploads, downloads).
    transfers: (std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64),
    model: Arc<Model>,
    backends: Vec<Arc<dyn Backend>>,
    partitions: Vec<Partition>,
    placement: Vec<Placement>,
    inputs: Vec<IoInfo>,
    outputs: Vec<IoInfo>,
    options: SessionOptions,
}

impl Session {
    /// Load a model from a file (`.onnx`, or `.strata` artifact).
    pub fn from_path(path: impl AsRef<Path>, options: SessionOptions) -> Result<Session, Error> {
        let path = path.as_ref();
        let model = load_model_path(path)?;
        Session::from_model(model, options)
    }

    /// Load a model from bytes (ONNX protobuf).
    pub fn from_bytes(bytes: &[u8], options: SessionOptions) -> Result<Session, Error> {
        let model = load_model_bytes(bytes)?;
        Session::from_model(model, options)
    }

    /// Build a session from IR.
    pub fn from_model(model: Model, options: SessionOptions) -> Result<Session, Error> {
        let mut backends: Vec<Arc<dyn Backend>> = Vec::new();
        for name in &options.backends {
            backends.push(crate::create_backend_with(name, &options)?);
        }
        Session::from_model_with_backends(model, backends, options)
    }

    /// Build a session from IR with backend instances given by the caller
    /// (in order of preference; `options.backends` is ignored), for tools
    /// and tests that bring their own [`Backend`]. Fallback rules are those
    /// of [`Session::from_model`].
    pub fn from_model_with_backends(
        model: Model,
        backends: Vec<Arc<dyn Backend>>,
        options: SessionOptions,
    ) -> Result<Session, Error> {
        Session::build(model, backends, options, Default::default())
    }

    /// [`Session::from_model_with_backends`], with main-graph inputs known
    /// to be shape metadata (an `If` branch's captures that were metadata in
    /// the outer graph).
    pub(crate) fn build(
        mut model: Model,
        mut backends: Vec<Arc<dyn Backend>>,
        options: SessionOptions,
        meta_inputs: std::collections::HashSet<ValueId>,
    ) -> Result<Session, Error> {
        model.validate()?;
        check_limits(&model, &options)?;
        fold_and_bind(&mut model, &options)?;
        let (candidates, reference) = add_reference_backend(&mut backends, &options)?;
        let model = Arc::new(model);
        let placed = place(&model, &mut backends, candidates, reference, &options, meta_inputs)?;
        let partitions = partition(&model, &backends, &placed.assign, placed.host_control)?;
        let placement = nest_branch_placement(placed.placement, placed.nested);
        let g = model.main_graph();
        let io = |ids: &[ValueId]| {
            ids.iter().map(|&v| IoInfo { name: g.value(v).name.clone(), ty: g.value(v).ty.clone() }).collect()
        };
        Ok(Session {
            transfers: Default::default(),
            inputs: io(&g.inputs),
            outputs: io(&g.outputs),
            model: model.clone(),
            backends,
            partitions,
            placement,
            options,
        })
    }

    /// The groups of nodes backends fused into one node when compiling
    /// their partitions (empty with [`SessionOptions::optimize`] off), in
    /// graph order.
    pub fn fused_groups(&self) -> Vec<FusedGroup> {
        let mut out = Vec::new();
        for p in &self.partitions {
            if let Work::Compiled { backend, compiled } = &p.work {
                let name = self.backends[*backend].name();
                out.extend(compiled.fused_groups().into_iter().map(|(ops, nodes)| FusedGroup {
                    backend: name.to_string(),
                    ops,
                    nodes,
                }));
            }
        }
        out
    }

    /// Where the time went in the runs so far, in graph order (empty unless
    /// the session was created with [`SessionOptions::profile`]): per node
    /// for backends that time their nodes, per partition otherwise. Host
    /// control flow (`If`, `Loop`, `Scan`) is one entry with its own time
    /// (choosing a branch, feeding and collecting), followed by its branches'
    /// or body's entries, named `NODE/BRANCH/inner node`; the entries' times
    /// add up to the session's.
    pub fn profile(&self) -> Vec<ProfileEntry> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.options.profile {
            return Vec::new();
        }
        let mut out = Vec::new();
        for p in &self.partitions {
            let (backend, nodes) = match &p.work {
                Work::Compiled { backend, compiled } => {
                    (self.backends[*backend].name().to_string(), compiled.profile())
                }
                Work::Host(ctl) => {
                    // The control node's own time (choosing, feeding,
                    // collecting), then its branches' nodes by path.
                    let mut inner = Vec::new();
                    for (label, session) in ctl.branches() {
                        inner.extend(session.profile().into_iter().map(|mut e| {
                            e.node = format!("{}/{label}/{}", ctl.node, e.node);
                            e
                        }));
                    }
                    let nested: u128 = inner.iter().map(|e| e.total.as_nanos()).sum();
                    let own = u128::from(p.time.0.load(Relaxed)).saturating_sub(nested);
                    out.push(ProfileEntry {
                        node: p.label.0.clone(),
                        op: p.label.1.clone(),
                        backend: "host".to_string(),
                        total: std::time::Duration::from_nanos(u64::try_from(own).unwrap_or(u64::MAX)),
                        runs: p.time.1.load(Relaxed),
                    });
                    out.extend(inner);
                    continue;
                }
            };
            if nodes.is_empty() {
                out.push(ProfileEntry {
                    node: p.label.0.clone(),
                    op: p.label.1.clone(),
                    backend,
                    total: std::time::Duration::from_nanos(p.time.0.load(Relaxed)),
                    runs: p.time.1.load(Relaxed),
                });
            } else {
                out.extend(nodes.into_iter().map(|(node, op, ns, runs)| ProfileEntry {
                    node,
                    op,
                    backend: backend.clone(),
                    total: std::time::Duration::from_nanos(ns),
                    runs,
                }));
            }
        }
        out
    }

    /// The model's inputs.
    pub fn inputs(&self) -> &[IoInfo] {
        &self.inputs
    }
    /// The model's outputs.
    pub fn outputs(&self) -> &[IoInfo] {
        &self.outputs
    }
    /// The IR the session runs.
    pub fn model(&self) -> &Model {
        &self.model
    }
    /// Where each node of the main graph runs.
    pub fn placement(&self) -> &[Placement] {
        &self.placement
    }

    fn count(&self, b: &dyn Backend, upload: bool) {
        if b.is_device() {
            let c = if upload { &self.transfers.0 } else { &self.transfers.1 };
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Host↔device transfers since the session was created: `(uploads,
    /// downloads)` of values to and from device backends (host-memory
    /// backends such as `reference` do not count).
    pub fn transfer_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.transfers.0.load(Relaxed), self.transfers.1.load(Relaxed))
    }

    /// A value on the host: downloaded (once) if it lives on a device.
    async fn host_value(
        &self,
        v: ValueId,
        host: &mut ValueMap<HostValue>,
        device: &ValueMap<(usize, DeviceValue)>,
    ) -> Result<HostValue, Error> {
        if let Some(h) = host.get(&v) {
            return Ok(h.clone());
        }
        if let Some((bi, dv)) = device.get(&v) {
            let h = self.backends[*bi].download(dv).await?;
            self.count(&*self.backends[*bi], false);
            host.insert(v, h.clone());
            return Ok(h);
        }
        let g = self.model.main_graph();
        g.initializer(v)
            .map(|t| HostValue::Tensor(t.clone()))
            .ok_or_else(|| Error::Backend(format!("value '{}' is not available", g.value(v).name)))
    }

    /// Cumulative counters of the session's backends, e.g. `("gpu", "dispatches", n)`.
    pub fn backend_counters(&self) -> Vec<(String, &'static str, u64)> {
        self.backends
            .iter()
            .flat_map(|b| b.counters().into_iter().map(move |(k, v)| (b.name().to_string(), k, v)))
            .collect()
    }

    /// Run with named inputs; returns every output by name, in model order.
    pub fn run(&self, inputs: &[(&str, HostValue)]) -> Result<Vec<(String, HostValue)>, Error> {
        block_on(self.run_async(inputs))
    }

    /// Asynchronous [`Session::run`] (for hosts where blocking is not allowed).
    pub async fn run_async(&self, inputs: &[(&str, HostValue)]) -> Result<Vec<(String, HostValue)>, Error> {
        let g = self.model.main_graph();
        for (k, (name, _)) in inputs.iter().enumerate() {
            if !self.inputs.iter().any(|i| i.name == *name) {
                let known: Vec<&str> = self.inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(Error::Input(format!("unknown input '{name}' (the model's inputs are {known:?})")));
            }
            if inputs[..k].iter().any(|(other, _)| other == name) {
                return Err(Error::Input(format!("input '{name}' is given twice")));
            }
        }
        let mut syms: Vec<(&str, usize)> = Vec::new();
        let mut host: ValueMap<HostValue> = ValueMap::default();
        for (info, &id) in self.inputs.iter().zip(&g.inputs) {
            let v = inputs
                .iter()
                .find(|(name, _)| *name == info.name)
                .map(|(_, v)| v)
                .ok_or_else(|| Error::Input(format!("missing input '{}'", info.name)))?;
            check_value(&info.name, &info.ty, v, &mut syms)?;
            host.insert(id, v.clone());
        }
        strata_reference::util::set_max_elements(self.options.max_tensor_elements);
        strata_reference::util::set_max_loop_iterations(self.options.max_loop_iterations);
        strata_reference::util::set_max_live_bytes(self.options.max_memory_bytes);
        // Values currently on a device: id -> (backend index, value).
        let mut device: ValueMap<(usize, DeviceValue)> = ValueMap::default();
        for p in &self.partitions {
            let started = self.options.profile.then(crate::backend::Clock::now);
            let (backend, compiled) = match &p.work {
                Work::Compiled { backend, compiled } => (*backend, compiled),
                Work::Host(ctl) => {
                    let mut vals = ValueMap::default();
                    for &v in &p.inputs {
                        vals.insert(v, self.host_value(v, &mut host, &device).await?);
                    }
                    let outs = ctl.run(&vals, self.options.max_loop_iterations).await?;
                    for (id, v) in ctl.outputs.iter().zip(outs) {
                        if let (Some(id), Some(v)) = (id, v) {
                            host.insert(*id, v);
                        }
                    }
                    p.record(started);
                    continue;
                }
            };
            let b = &self.backends[backend];
            let mut staged: Vec<DeviceValue> = Vec::new();
            let mut order: Vec<Result<usize, ValueId>> = Vec::new();
            for &v in &p.inputs {
                match device.get(&v) {
                    Some((bi, _)) if *bi == backend => order.push(Err(v)),
                    Some((bi, dv)) => {
                        let h = self.backends[*bi].download(dv).await?;
                        self.count(&*self.backends[*bi], false);
                        staged.push(b.upload(&h)?);
                        self.count(&**b, true);
                        host.insert(v, h);
                        order.push(Ok(staged.len() - 1));
                    }
                    None => {
                        let h = host
                            .get(&v)
                            .ok_or_else(|| Error::Backend(format!("value '{}' is not available", g.value(v).name)))?;
                        staged.push(b.upload(h)?);
                        self.count(&**b, true);
                        order.push(Ok(staged.len() - 1));
                    }
                }
            }
            let args: Vec<&DeviceValue> = order
                .iter()
                .map(|o| match o {
                    Ok(i) => &staged[*i],
                    Err(v) => &device[v].1,
                })
                .collect();
            let outs = compiled.run(args).await?;
            for (&id, dv) in p.outputs.iter().zip(outs) {
                device.insert(id, (backend, dv));
            }
            p.record(started);
        }
        let mut result = Vec::with_capacity(g.outputs.len());
        for (info, &id) in self.outputs.iter().zip(&g.outputs) {
            let v = match device.get(&id) {
                Some((bi, dv)) => {
                    self.count(&*self.backends[*bi], false);
                    self.backends[*bi].download(dv).await?
                }
                None => match (host.get(&id), g.initializer(id)) {
                    (Some(v), _) => v.clone(),
                    // An output that constant folding turned into a weight.
                    (None, Some(t)) => HostValue::Tensor(t.clone()),
                    (None, None) => return Err(Error::Backend(format!("output '{}' was not computed", info.name))),
                },
            };
            result.push((info.name.clone(), v));
        }
        Ok(result)
    }
}

/// Main-graph nodes a session keeps on the host whatever the backend, with
/// the reason: control flow (`If`, `Loop`, `Scan`, when a device backend is used) and shape
/// bookkeeping (`Shape`, `Size` and small int vectors computed only from
/// them). Bring-up tools report these as host work, not as target gaps.
pub fn host_side_nodes(model: &Model) -> Vec<Option<String>> {
    let g = model.main_graph();
    let mut meta = std::collections::HashSet::new();
    g.nodes
        .iter()
        .map(|n| {
            if crate::control::host_subgraphs(n).is_some() {
                return Some("control flow: the host runs the branch or body".to_string());
            }
            let b = strata_ir::passes::is_bookkeeping(g, n, &meta);
            if b {
                meta.extend(n.outputs.iter().flatten().copied());
                return Some("host bookkeeping (shape metadata, not compute)".to_string());
            }
            None
        })
        .collect()
}

/// Session building, step 1: refuse models over the node-count or weight-memory limits.
fn check_limits(model: &Model, options: &SessionOptions) -> Result<(), Error> {
    let total_nodes: usize = model.graphs.iter().map(|g| g.nodes.len()).sum();
    if total_nodes > options.max_nodes {
        return Err(Error::Load(format!(
            "model has {total_nodes} nodes, more than the limit of {}",
            options.max_nodes
        )));
    }
    let weight_bytes: u64 = model
        .graphs
        .iter()
        .flat_map(|g| g.initializers.iter())
        .map(|(_, t)| {
            t.bytes().map_or(0, |b| b.len() as u64) + t.strings().map_or(0, |s| s.iter().map(|x| x.len() as u64).sum())
        })
        .sum();
    if weight_bytes > options.max_memory_bytes {
        return Err(Error::Load(format!(
            "model weights take {weight_bytes} bytes, more than the memory limit of {} bytes",
            options.max_memory_bytes
        )));
    }
    Ok(())
}

/// Session building, step 2: bind the given symbolic dimensions and fold
/// constant subgraphs (the reference kernels evaluate them), as the options ask.
fn fold_and_bind(model: &mut Model, options: &SessionOptions) -> Result<(), Error> {
    if options.fold_constants || !options.dims.is_empty() {
        use strata_ir::passes::{BindDims, DeadCode, FoldConstants, PassManager};
        let ev = strata_reference::ConstEvaluator;
        strata_reference::util::set_max_elements(options.max_tensor_elements);
        let mut pm = PassManager::new();
        if !options.dims.is_empty() {
            pm = pm.with(BindDims(options.dims.iter().cloned().collect()));
        }
        if options.fold_constants {
            pm = pm.with(FoldConstants { evaluator: &ev, max_elements: 1 << 20 }).with(DeadCode);
        }
        pm.run(model)?;
    }
    Ok(())
}

/// Session building, step 3: add the reference backend where it is needed
/// (as the fallback unless `strict`; for the nodes outside `target_nodes`).
/// Returns how many backends a node may be placed on and the reference's
/// index, if any.
fn add_reference_backend(
    backends: &mut Vec<Arc<dyn Backend>>,
    options: &SessionOptions,
) -> Result<(usize, Option<usize>), Error> {
    if !options.strict && !backends.iter().any(|b| b.name() == "reference") {
        backends.push(crate::create_backend("reference")?);
    }
    // Backends a node may be placed on (the reference added below for
    // `target_nodes` under `strict` is not a fallback).
    let candidates = backends.len();
    let mut reference = backends.iter().position(|b| b.name() == "reference");
    if options.target_nodes.is_some() && reference.is_none() {
        backends.push(crate::create_backend("reference")?);
        reference = Some(backends.len() - 1);
    }
    Ok((candidates, reference))
}

/// The outcome of placing the main graph's nodes.
struct Placed {
    /// Each node's backend index ([`HOST_CONTROL`] for control flow the host runs).
    assign: Vec<usize>,
    /// Each node's placement, in node order.
    placement: Vec<Placement>,
    /// The control-flow nodes the host runs, by node index.
    host_control: HashMap<usize, HostControl>,
    /// The placement of branch and body nodes: the node's index, the nested name, the placement.
    nested: Vec<(usize, String, Placement)>,
}

/// Session building, step 4: place each node of the main graph on the first
/// backend that supports it (`If`, `Loop` and `Scan` as host control flow
/// with branch and body sessions, shape bookkeeping on the host under `strict`).
fn place(
    model: &Arc<Model>,
    backends: &mut Vec<Arc<dyn Backend>>,
    candidates: usize,
    reference: Option<usize>,
    options: &SessionOptions,
    meta_inputs: std::collections::HashSet<ValueId>,
) -> Result<Placed, Error> {
    let g = model.main_graph();
    // Place each node on the first backend that supports it.
    let mut assign = Vec::with_capacity(g.nodes.len());
    let mut placement = Vec::with_capacity(g.nodes.len());
    let mut meta: std::collections::HashSet<ValueId> = meta_inputs;
    let mut host_control: HashMap<usize, HostControl> = HashMap::new();
    let mut placement_nested: Vec<(usize, String, Placement)> = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if let (Some(targets), Some(ri)) = (&options.target_nodes, reference)
            && !targets.contains(&n.name)
        {
            assign.push(ri);
            placement.push(Placement {
                node: n.name.clone(),
                op: n.op.name().to_string(),
                backend: backends[ri].name().to_string(),
                reason: "not a target node".into(),
            });
            continue;
        }
        if let Some(subgraphs) = crate::control::host_subgraphs(n)
            && backends.iter().take(candidates).any(|b| b.name() != "reference")
        {
            let mut sessions: Vec<Branch> = Vec::with_capacity(subgraphs.len());
            for (label, gid) in subgraphs {
                let op = n.op.name();
                let s = crate::control::branch_session(model, gid, &backends[..candidates], options, &meta)
                    .map_err(|e| Error::Placement(format!("node '{}' ({op}) {label}: {e}", n.name)))?;
                for p in s.0.placement() {
                    placement_nested.push((i, format!("{}/{label}/{}", n.name, p.node), p.clone()));
                }
                sessions.push(s);
            }
            assign.push(HOST_CONTROL);
            host_control.insert(i, crate::control::host_control(n, sessions)?);
            placement.push(Placement {
                node: n.name.clone(),
                op: n.op.name().to_string(),
                backend: "host".into(),
                reason: "control flow: the host runs the chosen branch or each iteration of the body, \
                         whose nodes are placed on their own (listed as NODE/BRANCH/...)"
                    .into(),
            });
            continue;
        }
        let mut reasons = Vec::new();
        let mut chosen = None;
        for (bi, b) in backends.iter().enumerate().take(candidates) {
            match b.supports(model, model.main, NodeId(i as u32)) {
                Support::Yes => {
                    chosen = Some(bi);
                    break;
                }
                Support::No(r) => reasons.push(format!("{}: {r}", b.name())),
            }
        }
        let bookkeeping = strata_ir::passes::is_bookkeeping(g, n, &meta);
        if bookkeeping {
            meta.extend(n.outputs.iter().flatten().copied());
        }
        if chosen.is_none() && options.strict && bookkeeping {
            // Shape metadata is not compute: even strict placement keeps it
            // on the host, and says so in the placement report.
            let ri = match backends.iter().position(|b| b.name() == "reference") {
                Some(ri) => ri,
                None => {
                    backends.push(crate::create_backend("reference")?);
                    backends.len() - 1
                }
            };
            assign.push(ri);
            placement.push(Placement {
                node: n.name.clone(),
                op: n.op.name().to_string(),
                backend: backends[ri].name().to_string(),
                reason: format!("host bookkeeping (shape metadata, not compute); {}", reasons.join("; ")),
            });
            continue;
        }
        let Some(bi) = chosen else {
            return Err(Error::Placement(format!(
                "node '{}' ({}) cannot run: {}",
                n.name,
                n.op.name(),
                reasons.join("; ")
            )));
        };
        assign.push(bi);
        placement.push(Placement {
            node: n.name.clone(),
            op: n.op.name().to_string(),
            backend: backends[bi].name().to_string(),
            reason: reasons.join("; "),
        });
    }
    Ok(Placed { assign, placement, host_control, nested: placement_nested })
}

/// Session building, step 5: cut the main graph into contiguous runs of
/// nodes on one backend and compile each; control flow the host runs is a
/// partition of its own.
fn partition(
    model: &Arc<Model>,
    backends: &[Arc<dyn Backend>],
    assign: &[usize],
    mut host_control: HashMap<usize, HostControl>,
) -> Result<Vec<Partition>, Error> {
    let g = model.main_graph();
    let mut partitions = Vec::new();
    let mut start = 0;
    while start < g.nodes.len() {
        if let Some(ctl) = host_control.remove(&start) {
            let n = &g.nodes[start];
            partitions.push(Partition {
                inputs: ctl.reads(),
                outputs: n.outputs.iter().flatten().copied().collect(),
                work: Work::Host(Box::new(ctl)),
                time: Default::default(),
                label: (n.name.clone(), n.op.name().to_string()),
            });
            start += 1;
            continue;
        }
        let mut end = start + 1;
        while end < g.nodes.len() && assign[end] == assign[start] && !host_control.contains_key(&end) {
            end += 1;
        }
        let (sub, inputs, outputs) = extract(model, start..end);
        let compiled = backends[assign[start]].compile(Arc::new(sub))?;
        let label = match end - start {
            1 => (g.nodes[start].name.clone(), g.nodes[start].op.name().to_string()),
            n => (format!("{n} nodes from '{}'", g.nodes[start].name), "(partition)".to_string()),
        };
        partitions.push(Partition {
            work: Work::Compiled { backend: assign[start], compiled },
            inputs,
            outputs,
            time: Default::default(),
            label,
        });
        start = end;
    }
    Ok(partitions)
}

/// Session building, step 6: list branch nodes right after their `If` in the placement report.
fn nest_branch_placement(
    placement: Vec<Placement>,
    placement_nested: Vec<(usize, String, Placement)>,
) -> Vec<Placement> {
    let mut nested: HashMap<usize, Vec<Placement>> = HashMap::new();
    for (i, name, p) in placement_nested {
        nested.entry(i).or_default().push(Placement { node: name, ..p });
    }
    placement
        .into_iter()
        .enumerate()
        .flat_map(|(i, p)| std::iter::once(p).chain(nested.remove(&i).unwrap_or_default()))
        .collect()
}

/// Check a value given for input `name` against its declared type
/// (symbolic dimensions must agree across inputs: `syms`).
fn check_value<'a>(
    name: &str,
    ty: &'a ValueType,
    v: &HostValue,
    syms: &mut Vec<(&'a str, usize)>,
) -> Result<(), Error> {
    match (ty, v) {
        (ValueType::Tensor { dtype, shape }, HostValue::Tensor(t)) => {
            if t.dtype() != *dtype {
                return Err(Error::Input(format!("input '{name}' must be {dtype}, got {}", t.dtype())));
            }
            if let Some(dims) = shape {
                if dims.len() != t.shape().len() {
                    return Err(Error::Input(format!(
                        "input '{name}' must have rank {} ({}), got shape {:?}",
                        dims.len(),
                        ty,
                        t.shape()
                    )));
                }
                for (i, (d, &n)) in dims.iter().zip(t.shape()).enumerate() {
                    match d {
                        Dim::Known(k) if *k as usize != n => {
                            return Err(Error::Input(format!(
                                "input '{name}' dimension {i} must be {k}, got {n} (shape {:?})",
                                t.shape()
                            )));
                        }
                        Dim::Sym(s) => {
                            let prev = match syms.iter().find(|(name, _)| name == s) {
                                Some(&(_, prev)) => prev,
                                None => {
                                    syms.push((s.as_str(), n));
                                    n
                                }
                            };
                            if prev != n {
                                return Err(Error::Input(format!(
                                    "input '{name}' dimension {i} ('{s}') is {n}, but '{s}' is {prev} elsewhere"
                                )));
                            }
                        }
                        _ => {}
                    }
                }
            }
            Ok(())
        }
        (ValueType::Tensor { .. }, other) => {
            Err(Error::Input(format!("input '{name}' must be a tensor, got {}", other.describe())))
        }
        (ValueType::Sequence(_), HostValue::Sequence { .. })
        | (ValueType::Optional(_), HostValue::Optional { .. })
        | (ValueType::Unknown, _) => Ok(()),
        (ValueType::Optional(inner), other) => check_value(name, inner, other, syms),
        (t, other) => Err(Error::Input(format!("input '{name}' must be {t}, got {}", other.describe()))),
    }
}

/// Extract nodes `range` of the main graph as a model of its own, with the
/// values it reads from outside as inputs and the values used after it as outputs.
fn extract(model: &Model, range: std::ops::Range<usize>) -> (Model, Vec<ValueId>, Vec<ValueId>) {
    let g = model.main_graph();
    if range.start == 0 && range.end == g.nodes.len() {
        return (model.clone(), g.inputs.clone(), g.outputs.clone());
    }
    let mut produced = vec![false; g.values.len()];
    for n in &g.nodes[range.clone()] {
        for o in n.outputs.iter().flatten() {
            produced[o.0 as usize] = true;
        }
    }
    let is_init = |v: ValueId| g.initializer(v).is_some();
    let mut inputs: Vec<ValueId> = Vec::new();
    for n in &g.nodes[range.clone()] {
        let mut reads: Vec<ValueId> = n.inputs.iter().flatten().copied().collect();
        for sg in n.op.subgraphs() {
            reads.extend(model.graph(sg).captures.iter().map(|(o, _)| *o));
        }
        for v in reads {
            if !produced[v.0 as usize] && !is_init(v) && !inputs.contains(&v) {
                inputs.push(v);
            }
        }
    }
    let mut outputs: Vec<ValueId> = Vec::new();
    let later_reads: Vec<ValueId> = g.nodes[range.end..]
        .iter()
        .flat_map(|n| {
            let mut r: Vec<ValueId> = n.inputs.iter().flatten().copied().collect();
            for sg in n.op.subgraphs() {
                r.extend(model.graph(sg).captures.iter().map(|(o, _)| *o));
            }
            r
        })
        .chain(g.outputs.iter().copied())
        .collect();
    for n in &g.nodes[range.clone()] {
        for &o in n.outputs.iter().flatten() {
            if later_reads.contains(&o) && !outputs.contains(&o) {
                outputs.push(o);
            }
        }
    }
    let mut sub = model.clone();
    let main: &mut strata_ir::Graph = sub.graph_mut(GraphId(model.main.0));
    main.nodes = g.nodes[range].to_vec();
    main.inputs = inputs.clone();
    main.outputs = outputs.clone();
    (sub, inputs, outputs)
}

/// Load a model file by content: `.strata` artifacts (recognised by their
/// magic), anything else as ONNX.
///
/// Artifacts are memory-mapped and their weights used in place, not copied:
/// the map lives as long as the model (and every tensor sharing its
/// weights). The file must not be modified or truncated while it is mapped.
pub fn load_model_path(path: &Path) -> Result<Model, Error> {
    use std::io::Read;
    let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut head = Vec::with_capacity(strata_ir::artifact::MAGIC.len());
    file.by_ref().take(strata_ir::artifact::MAGIC.len() as u64).read_to_end(&mut head).map_err(io)?;
    if head == strata_ir::artifact::MAGIC {
        #[cfg(not(target_family = "wasm"))]
        {
            // SAFETY: the map is read-only and private to this process; the
            // artifact reader validates every length and offset, and its
            // checksum, before using the bytes. As with any memory map, the
            // file must not be truncated by another process while mapped
            // (documented above).
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
            return strata_ir::artifact::read_owner(Arc::new(map)).map_err(Error::from);
        }
        #[cfg(target_family = "wasm")]
        {
            let bytes = std::fs::read(path).map_err(io)?;
            return strata_ir::artifact::read(&bytes).map_err(Error::from);
        }
    }
    let mut bytes = head;
    file.read_to_end(&mut bytes).map_err(io)?;
    load_onnx(&bytes, path.parent())
}

/// Load a model from bytes: a `.strata` artifact or an ONNX protobuf.
pub fn load_model_bytes(bytes: &[u8]) -> Result<Model, Error> {
    if bytes.starts_with(strata_ir::artifact::MAGIC) {
        return strata_ir::artifact::read(bytes).map_err(Error::from);
    }
    load_onnx(bytes, None)
}

#[cfg(feature = "onnx")]
fn load_onnx(bytes: &[u8], dir: Option<&Path>) -> Result<Model, Error> {
    strata_onnx::import_bytes(bytes, dir).map_err(|e| Error::Load(e.to_string()))
}

#[cfg(not(feature = "onnx"))]
fn load_onnx(_bytes: &[u8], _dir: Option<&Path>) -> Result<Model, Error> {
    Err(Error::Load("this build loads only .strata artifacts (the ONNX importer is not linked)".into()))
}
