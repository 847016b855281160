//! Strata's optimised CPU backend.
//!
//! Owns the fast host kernels: a packed, cache-blocked f32 GEMM with a
//! micro-kernel compiled for AVX-512 or AVX2 with FMA when the CPU has them
//! (and plain code elsewhere, which the compiler vectorises, e.g. for
//! `simd128` on wasm),
//! im2col and depthwise convolution, pooling, normalisation, elementwise
//! and data-movement kernels, and a scoped thread pool whose size is the
//! user's `threads` option.
//!
//! Results do not depend on the thread count: work is split into chunks
//! whose boundaries and summation order are fixed by the shapes alone, so
//! 1, 2 or 16 threads give the same bits. Between machines only the GEMM's
//! rounding may differ: with FMA each step is rounded once ([`gemm::fused`]).
//!
//! It depends only on `strata-ir` (and `thiserror`, `libm`): it sees the IR,
//! never the importer or other backends. Nodes it does not support are
//! reported by [`CpuBackend::supports`] with a reason, and the facade places
//! them elsewhere.

mod direct;
mod error;
pub mod gemm;
mod math;
mod narrow;
mod ops;
pub mod pool;
mod simd;
mod tensor;

use std::sync::Arc;

use strata_ir::{GraphId, Model, NodeId, ValueId};

pub use error::CpuError;
use error::Result;
use ops::{Ctx, Kernel, NodeInfo};
pub use pool::Pool;
pub use tensor::{CpuTensor, Data};

/// The CPU backend: a thread pool and resource limits.
#[derive(Debug, Clone)]
pub struct CpuBackend {
    pool: Arc<Pool>,
    max_elements: usize,
    max_live_bytes: u64,
    profile: bool,
    optimize: bool,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend::new(0)
    }
}

impl CpuBackend {
    /// A backend running kernels on `threads` threads (0: one per core).
    pub fn new(threads: usize) -> CpuBackend {
        CpuBackend {
            pool: Arc::new(Pool::new(threads)),
            max_elements: 1 << 28,
            max_live_bytes: u64::MAX,
            profile: false,
            optimize: true,
        }
    }

    /// Largest tensor (in elements) a kernel may create.
    pub fn with_max_elements(mut self, n: usize) -> CpuBackend {
        self.max_elements = n;
        self
    }

    /// Most bytes of tensors a run may hold at once (weights excluded).
    pub fn with_max_live_bytes(mut self, n: u64) -> CpuBackend {
        self.max_live_bytes = n;
        self
    }

    /// Time every node of every run (read with [`CompiledGraph::profile`]).
    /// Ignored on wasm, which has no clock in browsers.
    pub fn with_profiling(mut self, on: bool) -> CpuBackend {
        self.profile = on && !cfg!(target_family = "wasm");
        self
    }

    /// Whether compiling optimises the graph (on by default): per-channel
    /// affine maps after a Conv (an inference-mode BatchNormalization,
    /// Mul/Add/Sub by per-channel weights) are folded into the Conv's
    /// weights (`strata_ir::passes::fold_conv_affine`) and decomposed
    /// hard-sigmoid / hard-swish become one node
    /// (`strata_ir::passes::recognize_activations`, with GELU in its erf and
    /// tanh forms; results differ by
    /// rounding), then a producer (Conv, Gemm, MatMul, ...) and the float
    /// elementwise nodes after it, or an elementwise chain, become one node
    /// (`strata_ir::passes::fuse`) that runs in one pass and gives the same
    /// bits as the nodes it replaces.
    pub fn with_optimize(mut self, on: bool) -> CpuBackend {
        self.optimize = on;
        self
    }

    /// Most elementwise steps in one fused node.
    const MAX_FUSED_STEPS: usize = 16;

    /// The model this backend runs for `model`: fused unless optimisation
    /// is off (then the same).
    pub fn optimized(&self, model: Arc<Model>) -> Arc<Model> {
        if !self.optimize {
            return model;
        }
        let mut m = (*model).clone();
        let rules = strata_ir::passes::FuseRules {
            producer: &ops::fused::can_produce,
            step: &ops::fused::can_step,
            max_steps: Self::MAX_FUSED_STEPS,
        };
        let folded = strata_ir::passes::fold_conv_affine(&mut m) + strata_ir::passes::recognize_activations(&mut m);
        if strata_ir::passes::fuse(&mut m, &rules) + folded > 0 { Arc::new(m) } else { model }
    }

    /// Threads kernels use.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Whether node `node` of graph `graph` runs here, or why not.
    pub fn supports(&self, model: &Model, graph: GraphId, node: NodeId) -> Result<(), String> {
        let g = model.graph(graph);
        let info = NodeInfo { graph: g, node: g.node(node) };
        ops::kernel(&info).map(|_| ()).map_err(|e| match e {
            CpuError::Unsupported(why) => why,
            other => other.to_string(),
        })
    }

    /// Compile the main graph of `model`: nodes fused (see
    /// [`CpuBackend::with_optimize`]), every node built into a kernel
    /// (weights converted and packed once), and the last use of every value
    /// found so it is released as soon as it is dead.
    pub fn compile(&self, model: Arc<Model>) -> Result<CompiledGraph> {
        let model = self.optimized(model);
        let g = model.main_graph();
        let slot = |v: ValueId| v.0 as usize;
        // Only the weights this graph's nodes (or outputs) read are
        // converted: a partition shares the model's initializer table, which
        // may hold tensors of types this backend does not hold (they belong
        // to nodes placed elsewhere).
        let mut read = vec![false; g.values.len()];
        for v in g.nodes.iter().flat_map(|n| n.inputs.iter().flatten()).chain(&g.outputs) {
            if let Some(r) = read.get_mut(slot(*v)) {
                *r = true;
            }
        }
        let mut consts = vec![None; g.values.len()];
        for (v, t) in &g.initializers {
            if read.get(slot(*v)).copied().unwrap_or(false) {
                consts[slot(*v)] = Some(CpuTensor::from_host(t)?);
            }
        }
        let mut steps = Vec::with_capacity(g.nodes.len());
        for node in &g.nodes {
            let info = NodeInfo { graph: g, node };
            let kernel = ops::kernel(&info).map_err(|e| named(node, e))?;
            steps.push(Step {
                name: node.name.clone(),
                op: match &node.op {
                    strata_ir::Op::Fused(f) => f.kinds(),
                    op => op.name().to_string(),
                },
                members: match &node.op {
                    strata_ir::Op::Fused(f) => f.members.clone(),
                    _ => Vec::new(),
                },
                kernel,
                inputs: node.inputs.iter().map(|v| v.map(slot)).collect(),
                outputs: node.outputs.iter().map(|v| v.map(slot)).collect(),
                release: Vec::new(),
            });
        }
        // Release each computed value after its last reader (graph outputs
        // and weights are kept).
        let mut last = vec![None; g.values.len()];
        for (i, s) in steps.iter().enumerate() {
            for v in s.inputs.iter().flatten() {
                last[*v] = Some(i);
            }
        }
        let keep: std::collections::HashSet<usize> =
            g.outputs.iter().map(|v| slot(*v)).chain((0..consts.len()).filter(|&v| consts[v].is_some())).collect();
        for (v, l) in last.iter().enumerate() {
            if let Some(i) = l
                && !keep.contains(&v)
            {
                steps[*i].release.push(v);
            }
        }
        let times = if self.profile { (0..steps.len()).map(|_| Default::default()).collect() } else { Vec::new() };
        Ok(CompiledGraph {
            backend: self.clone(),
            times,
            values: g.values.len(),
            inputs: g.inputs.iter().map(|v| slot(*v)).collect(),
            outputs: g.outputs.iter().map(|v| slot(*v)).collect(),
            consts,
            steps,
            spare: Spare::default(),
        })
    }
}

/// A clock for profiling. On wasm it is never read (profiling is off
/// there) and does not reference the system clock, so the wasm32-wasip1
/// engine imports no clock.
mod clock {
    #[derive(Clone, Copy)]
    pub struct Clock(#[cfg(not(target_family = "wasm"))] std::time::Instant);

    impl Clock {
        pub fn now() -> Clock {
            Clock(
                #[cfg(not(target_family = "wasm"))]
                std::time::Instant::now(),
            )
        }
        pub fn elapsed_nanos(&self) -> u64 {
            #[cfg(not(target_family = "wasm"))]
            return self.0.elapsed().as_nanos() as u64;
            #[cfg(target_family = "wasm")]
            0
        }
    }
}

fn named(node: &strata_ir::Node, e: CpuError) -> CpuError {
    match e {
        CpuError::Node { .. } => e,
        CpuError::Unsupported(m) => CpuError::Node {
            node: node.name.clone(),
            op: node.op.name().to_string(),
            message: format!("not supported: {m}"),
        },
        CpuError::Kernel(m) => CpuError::Node { node: node.name.clone(), op: node.op.name().to_string(), message: m },
    }
}

struct Step {
    name: String,
    op: String,
    /// The nodes a fused step stands for (empty otherwise).
    members: Vec<String>,
    kernel: Box<dyn Kernel>,
    inputs: Vec<Option<usize>>,
    outputs: Vec<Option<usize>>,
    release: Vec<usize>,
}

/// A graph compiled for the CPU backend. `Send + Sync`; runs may overlap.
pub struct CompiledGraph {
    backend: CpuBackend,
    /// Per step, when profiling: (nanoseconds, runs).
    times: Vec<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
    values: usize,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    /// The weights, by value slot (read in place, never copied into a run's values).
    consts: Vec<Option<CpuTensor>>,
    steps: Vec<Step>,
    spare: Spare,
}

/// Buffers of float32 tensors a run has released, reused for later
/// outputs (of the same run and of the next runs) instead of fresh zeroed
/// memory. Bounded: at most [`SPARE_BUFFERS`] buffers, holding no more
/// bytes than the larger of the live tensors' and the previous run's peak
/// of live tensors (so memory stays within twice the peak a run needs).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    list: std::sync::Mutex<Vec<Vec<f32>>>,
    /// Bytes kept between runs: the last run's peak of live tensors.
    keep: std::sync::atomic::AtomicU64,
}

/// Most buffers kept.
const SPARE_BUFFERS: usize = 16;

impl Spare {
    /// The smallest kept buffer of capacity at least `n` (and at most 4·`n`,
    /// so a small output does not hold a large buffer).
    fn take(&self, n: usize) -> Option<Vec<f32>> {
        let mut list = self.list.lock().ok()?;
        let best = (0..list.len())
            .filter(|&i| list[i].capacity() >= n && list[i].capacity() <= n.saturating_mul(4).max(1024))
            .min_by_key(|&i| list[i].capacity())?;
        Some(list.swap_remove(best))
    }

    /// Keep `t`'s buffer if `t` is an unshared float32 tensor, within the
    /// bounds above with `live` bytes of live tensors (the largest buffers go first).
    fn put(&self, t: CpuTensor, live: u64) {
        let Data::F32(v) = t.data else { return };
        let Ok(v) = std::sync::Arc::try_unwrap(v) else { return };
        if v.capacity() < 256 {
            return;
        }
        let Ok(mut list) = self.list.lock() else { return };
        list.push(v);
        Self::trim(&mut list, live.max(self.keep.load(std::sync::atomic::Ordering::Relaxed)));
    }

    fn trim(list: &mut Vec<Vec<f32>>, budget: u64) {
        let bytes = |l: &Vec<Vec<f32>>| l.iter().map(|b| b.capacity() as u64 * 4).sum::<u64>();
        while list.len() > SPARE_BUFFERS || (bytes(list) > budget && !list.is_empty()) {
            let largest = (0..list.len()).max_by_key(|&i| list[i].capacity()).unwrap_or(0);
            list.swap_remove(largest);
        }
    }

    /// At the end of a run whose live tensors peaked at `peak` bytes: keep
    /// at most that many bytes of buffers for the next run.
    fn end_run(&self, peak: u64) {
        self.keep.store(peak, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut list) = self.list.lock() {
            Self::trim(&mut list, peak);
        }
    }
}

fn bytes_of(t: &CpuTensor) -> u64 {
    t.numel() as u64 * t.data.elem_bytes() as u64
}

impl CompiledGraph {
    /// The names of the compiled steps in run order (a fused node's name
    /// joins its members' names with `+`).
    pub fn step_names(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.name.clone()).collect()
    }

    /// Time spent in each node so far, when compiled with profiling:
    /// (node name, op name, nanoseconds, runs), in graph order.
    pub fn profile(&self) -> Vec<(String, String, u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        self.steps
            .iter()
            .zip(&self.times)
            .map(|(s, (ns, runs))| (s.name.clone(), s.op.clone(), ns.load(Relaxed), runs.load(Relaxed)))
            .collect()
    }

    /// The fused nodes: (operator names joined by `+`, the names of the
    /// nodes each replaces), in graph order.
    pub fn fused_groups(&self) -> Vec<(String, Vec<String>)> {
        self.steps.iter().filter(|s| !s.members.is_empty()).map(|s| (s.op.clone(), s.members.clone())).collect()
    }

    /// Run with the graph inputs in order; returns the graph outputs in order.
    pub fn run(&self, inputs: &[&CpuTensor]) -> Result<Vec<CpuTensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(CpuError::Kernel(format!(
                "graph takes {} inputs, {} were given",
                self.inputs.len(),
                inputs.len()
            )));
        }
        // Workers stay awake between this run's kernels.
        let _busy = self.backend.pool.busy();
        let mut env: Vec<Option<CpuTensor>> = vec![None; self.values];
        let mut live = 0u64;
        let mut peak = 0u64;
        for (v, t) in self.inputs.iter().zip(inputs) {
            env[*v] = Some((*t).clone());
            live += bytes_of(t);
        }
        let ctx = Ctx { pool: &self.backend.pool, max_elements: self.backend.max_elements, spare: Some(&self.spare) };
        for (si, s) in self.steps.iter().enumerate() {
            let started = (!self.times.is_empty()).then(clock::Clock::now);
            let node_err = |message: String| CpuError::Node { node: s.name.clone(), op: s.op.clone(), message };
            let args: Vec<Option<&CpuTensor>> =
                s.inputs.iter().map(|v| v.and_then(|v| env[v].as_ref().or(self.consts[v].as_ref()))).collect();
            if let Some(i) = s.inputs.iter().zip(&args).position(|(v, a)| v.is_some() && a.is_none()) {
                return Err(node_err(format!("input {i} has not been computed")));
            }
            let outs = s.kernel.run(&ctx, &args).map_err(|e| match e {
                CpuError::Kernel(m) | CpuError::Unsupported(m) => node_err(m),
                other => other,
            })?;
            if let (Some(t0), Some((ns, runs))) = (started, self.times.get(si)) {
                use std::sync::atomic::Ordering::Relaxed;
                ns.fetch_add(t0.elapsed_nanos(), Relaxed);
                runs.fetch_add(1, Relaxed);
            }
            if outs.len() < s.outputs.iter().flatten().count() {
                return Err(node_err(format!("kernel produced {} outputs", outs.len())));
            }
            for (slot, t) in s.outputs.iter().zip(outs) {
                if let Some(v) = slot {
                    live += bytes_of(&t);
                    env[*v] = Some(t);
                }
            }
            peak = peak.max(live);
            if live > self.backend.max_live_bytes {
                return Err(node_err(format!(
                    "live tensors take {live} bytes, more than the memory limit of {} bytes",
                    self.backend.max_live_bytes
                )));
            }
            for v in &s.release {
                if let Some(t) = env[*v].take() {
                    live = live.saturating_sub(bytes_of(&t));
                    self.spare.put(t, live);
                }
            }
        }
        self.spare.end_run(peak);
        self.outputs
            .iter()
            .map(|v| {
                env[*v]
                    .clone()
                    .or_else(|| self.consts[*v].clone())
                    .ok_or_else(|| CpuError::Kernel("a graph output was not computed".into()))
            })
            .collect()
    }
}

/// Convert a host tensor for this backend.
pub fn upload(t: &strata_ir::TensorData) -> Result<CpuTensor> {
    CpuTensor::from_host(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(s: &Spare) -> (usize, u64) {
        let list = s.list.lock().expect("lock");
        (list.len(), list.iter().map(|b| b.capacity() as u64 * 4).sum())
    }

    #[test]
    fn spare_buffers_stay_within_the_live_bytes_and_the_last_peak() {
        let s = Spare::default();
        let t = |n: usize| CpuTensor::f32(vec![n], vec![0.0; n]);
        // During a run: never more bytes than the live tensors (the largest go first).
        s.put(t(1000), 10_000);
        s.put(t(2000), 12_000);
        assert_eq!(kept(&s), (2, 12_000));
        s.put(t(4000), 6_000);
        assert_eq!(kept(&s), (1, 4_000));
        // Kept for the next run up to the run's peak, which also bounds the
        // next run while its live tensors are fewer.
        s.end_run(6_000);
        assert_eq!(kept(&s), (1, 4_000));
        s.put(t(256), 100);
        assert_eq!(kept(&s), (2, 5_024));
        s.end_run(3_000);
        assert_eq!(kept(&s), (1, 1_024));
        // Small buffers are not kept; at most SPARE_BUFFERS are.
        s.put(t(10), u64::MAX);
        assert_eq!(kept(&s).0, 1);
        for _ in 0..40 {
            s.put(t(300), u64::MAX);
        }
        assert_eq!(kept(&s).0, SPARE_BUFFERS);
        // A buffer taken is the smallest that fits, never one over 4x the request.
        let b = s.take(280).expect("a 300-value buffer fits");
        assert!(b.capacity() >= 280 && b.capacity() <= 4 * 280);
        assert!(s.take(100_000).is_none());
    }
}
