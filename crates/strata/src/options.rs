//! [`SessionOptions`]: what a session may use and do.

/// Options for creating a [`Session`](crate::Session).
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Backends by stable name, in order of preference. Nodes no listed
    /// backend supports fall back to `reference` unless `strict` is set.
    /// Default: [`crate::DEFAULT_BACKEND`] (`cpu` when the `cpu` feature is
    /// on, as it is by default; `reference` otherwise).
    pub backends: Vec<String>,
    /// Fail instead of falling back to the reference backend.
    pub strict: bool,
    /// Largest tensor (in elements) a kernel may create.
    pub max_tensor_elements: usize,
    /// Largest number of nodes a model may have.
    pub max_nodes: usize,
    /// Most iterations one `Loop` may run before the run fails as runaway
    /// (default 2^24).
    pub max_loop_iterations: u64,
    /// Fold constant subgraphs (with reference kernels) before placement.
    pub fold_constants: bool,
    /// Values of symbolic input dimensions known ahead of time (such as
    /// `batch`): shapes are then inferred and shape subgraphs folded.
    pub dims: Vec<(String, u64)>,
    /// Restrict non-reference backends to these main-graph nodes (by name).
    /// Listed nodes are placed as usual (first preferred backend that
    /// supports them, reference fallback unless `strict`); every other node
    /// runs on the reference backend by request, so the reference backend is
    /// used for them even when `strict` is set. `None` (the default): no
    /// restriction. Used for staged bring-up of a backend (`strata-migrate`).
    pub target_nodes: Option<std::collections::BTreeSet<String>>,
    /// Most host memory, in bytes, a model may use: its weights (checked when
    /// the session is created) and, during a run, the tensors the reference
    /// backend holds live at once (checked after every node, so a run fails
    /// at the node that would pass the limit; one tensor is bounded by
    /// `max_tensor_elements`). Device memory is not counted. Default: no limit.
    pub max_memory_bytes: u64,
    /// Threads the `cpu` backend's kernels use (0, the default: one per
    /// core). Results are the same for every thread count.
    pub threads: usize,
    /// Measure where the time goes ([`crate::Session::profile`]): per node on
    /// backends that time their nodes (`cpu`), per partition elsewhere.
    /// Off by default (timing costs a clock read per node).
    pub profile: bool,
    /// Let backends optimise the partitions they compile (on by default):
    /// the `cpu` backend fuses producers (Conv, Gemm, MatMul, ...) with the
    /// float elementwise nodes after them, and elementwise chains, into one
    /// node each ([`crate::Session::fused_groups`]), with the same results;
    /// the `gpu` backend fuses the same way and runs each group as generated
    /// kernels (one dispatch for a conv or matrix product with its program).
    pub optimize: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            backends: vec![crate::DEFAULT_BACKEND.into()],
            strict: false,
            max_tensor_elements: 1 << 28,
            max_nodes: 1 << 20,
            max_loop_iterations: 1 << 24,
            fold_constants: true,
            dims: Vec::new(),
            target_nodes: None,
            max_memory_bytes: u64::MAX,
            threads: 0,
            profile: false,
            optimize: true,
        }
    }
}
