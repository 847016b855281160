//! The backend interface and the reference backend's implementation.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use strata_ir::{GraphId, HostValue, Model, NodeId};

use crate::error::Error;

/// A boxed future (not `Send`: in browsers futures are single-threaded).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Whether a backend can run a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Yes,
    /// No, with the reason shown to users.
    No(String),
}

/// A value living in a backend's memory.
pub struct DeviceValue {
    /// The backend that owns it.
    pub backend: String,
    /// Backend-specific payload.
    pub payload: Box<dyn Any + Send + Sync>,
}

/// A compiled piece of a graph on one backend.
pub trait CompiledPartition: Send + Sync {
    /// Run with device inputs (in the order given at compile time).
    fn run<'a>(&'a self, inputs: Vec<&'a DeviceValue>) -> BoxFuture<'a, Result<Vec<DeviceValue>, Error>>;
    /// Time spent per node so far, if the backend measures it (compiled
    /// with profiling): (node, op, nanoseconds, runs). Empty otherwise; the
    /// session then times the partition as a whole.
    fn profile(&self) -> Vec<(String, String, u64, u64)> {
        Vec::new()
    }
    /// Groups of nodes compiled into one fused node: (operator names joined
    /// by `+`, node names in graph order). Empty where nothing was fused.
    fn fused_groups(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }
}

/// A place to run IR nodes: it reports what it supports, compiles
/// subgraphs, owns its memory and moves values to and from the host.
pub trait Backend: Send + Sync {
    /// Stable name (`reference`, `cpu`, `gpu`).
    fn name(&self) -> &str;
    /// Can this backend run node `node` of graph `graph`?
    fn supports(&self, model: &Model, graph: GraphId, node: NodeId) -> Support;
    /// Compile a model (a partition extracted from the user's model; backends see only IR).
    fn compile(&self, model: Arc<Model>) -> Result<Box<dyn CompiledPartition>, Error>;
    /// Move a host value into this backend's memory.
    fn upload(&self, v: &HostValue) -> Result<DeviceValue, Error>;
    /// Move a value back to the host (asynchronous: a GPU readback may not block).
    fn download<'a>(&'a self, v: &'a DeviceValue) -> BoxFuture<'a, Result<HostValue, Error>>;
    /// Whether values live in separate device memory (uploads and downloads
    /// are real transfers). The reference backend works in host memory.
    fn is_device(&self) -> bool {
        true
    }
    /// Cumulative counters for benchmarks, e.g. `("dispatches", n)`.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// A monotonic clock for profiling: `std::time::Instant` where the platform
/// has one; on wasm32 in a browser (no `Instant`) profiling reads zero.
#[derive(Clone, Copy)]
pub(crate) struct Clock(#[cfg(not(target_family = "wasm"))] std::time::Instant);

impl Clock {
    pub(crate) fn now() -> Clock {
        Clock(
            #[cfg(not(target_family = "wasm"))]
            std::time::Instant::now(),
        )
    }
    pub(crate) fn elapsed_nanos(&self) -> u64 {
        #[cfg(not(target_family = "wasm"))]
        return self.0.elapsed().as_nanos() as u64;
        #[cfg(target_family = "wasm")]
        0
    }
}

/// Drive a future to completion on the current thread (native builds).
pub fn block_on<F: Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// The reference backend: every operator, on the host, for correctness.
#[derive(Debug, Default)]
pub struct ReferenceBackend;

struct RefPartition {
    model: Arc<Model>,
}

impl CompiledPartition for RefPartition {
    fn run<'a>(&'a self, inputs: Vec<&'a DeviceValue>) -> BoxFuture<'a, Result<Vec<DeviceValue>, Error>> {
        Box::pin(async move {
            let interp = strata_reference::Interpreter::new(&self.model).map_err(|e| Error::Backend(e.to_string()))?;
            let mut ins = Vec::with_capacity(inputs.len());
            for v in inputs {
                let r = v
                    .payload
                    .downcast_ref::<strata_reference::Value>()
                    .ok_or_else(|| Error::Backend("reference backend was given a foreign device value".into()))?;
                ins.push(r.clone());
            }
            let outs = interp.run_graph(self.model.main, ins, vec![]).map_err(|e| Error::Backend(e.to_string()))?;
            Ok(outs.into_iter().map(|v| DeviceValue { backend: "reference".into(), payload: Box::new(v) }).collect())
        })
    }
}

impl Backend for ReferenceBackend {
    fn name(&self) -> &str {
        "reference"
    }
    fn supports(&self, _model: &Model, _graph: GraphId, _node: NodeId) -> Support {
        Support::Yes
    }
    fn compile(&self, model: Arc<Model>) -> Result<Box<dyn CompiledPartition>, Error> {
        Ok(Box::new(RefPartition { model }))
    }
    fn is_device(&self) -> bool {
        false
    }
    fn upload(&self, v: &HostValue) -> Result<DeviceValue, Error> {
        let r = strata_reference::Value::from_host(v).map_err(|e| Error::Input(e.0))?;
        Ok(DeviceValue { backend: "reference".into(), payload: Box::new(r) })
    }
    fn download<'a>(&'a self, v: &'a DeviceValue) -> BoxFuture<'a, Result<HostValue, Error>> {
        Box::pin(async move {
            let r = v
                .payload
                .downcast_ref::<strata_reference::Value>()
                .ok_or_else(|| Error::Backend("reference backend was given a foreign device value".into()))?;
            r.to_host().map_err(|e| Error::Backend(e.0))
        })
    }
}
