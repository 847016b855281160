//! The sandbox proper: the guest compiled once by wasmtime (cranelift), a
//! fresh instance per run whose only imports are the in-memory WASI streams
//! of `wasi.rs`, a resource limiter for the memory cap, and epoch
//! interruption driven by a ticker thread for the deadline.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use strata::Value;
use strata_wasi::{RequestHeader, Response, WireValue};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, ResourceLimiter, Store, Trap, UpdateDeadline};

use crate::wasi::{HasIo, Io};
use crate::{SandboxError, SandboxOptions, WASM32_MAX_MEMORY};

/// Period of the epoch ticker: at each tick a running guest compares the
/// wall clock with its deadline, so deadlines hold to within about one tick.
const TICK: Duration = Duration::from_millis(5);
/// Native stack wasm frames may use (deep recursion in the guest fails with
/// a "call stack exhausted" trap beyond it).
const WASM_STACK_BYTES: usize = 16 << 20;
/// Stack of the thread each run executes on: the wasm stack plus room for the host.
const RUN_THREAD_STACK_BYTES: usize = WASM_STACK_BYTES + (8 << 20);
/// What the guest may write to standard error (kept for trap messages).
const STDERR_BYTES: usize = 64 << 10;

/// Increments the engine's epoch every [`TICK`] until dropped.
struct Ticker {
    _stop: Sender<()>,
}

impl Ticker {
    fn start(engine: Engine) -> Result<Ticker, SandboxError> {
        let (stop, rx): (Sender<()>, Receiver<()>) = channel();
        std::thread::Builder::new()
            .name("strata-sandbox-epoch".into())
            .spawn(move || {
                // Ends when every sender (every Sandbox sharing this engine) is gone.
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(TICK) {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| SandboxError::Guest(format!("cannot start the deadline timer thread: {e}")))?;
        Ok(Ticker { _stop: stop })
    }
}

/// Per-run memory cap; remembers that the guest hit it.
struct Limiter {
    limit: usize,
    exceeded: Option<usize>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = Some(desired);
            // An error (not `Ok(false)`) traps at once, so the guest cannot
            // swallow the failure and carry on.
            return Err(wasmtime::format_err!("memory limit of {} bytes exceeded", self.limit));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references only; the guest never needs many.
        Ok(desired <= 1 << 20)
    }

    fn instances(&self) -> usize {
        1
    }
    fn memories(&self) -> usize {
        1
    }
    fn tables(&self) -> usize {
        4
    }
}

struct GuestState {
    io: Io,
    limiter: Limiter,
}

impl HasIo for GuestState {
    fn io(&mut self) -> &mut Io {
        &mut self.io
    }
}

/// The engine in a wasm sandbox. Compiling the guest takes seconds, so
/// create one `Sandbox` and reuse it (or share its compiled guest with
/// [`Sandbox::with_options`]); each [`Sandbox::run`] gets a fresh instance
/// and nothing of one run is visible to the next. `Send + Sync`.
pub struct Sandbox {
    engine: Engine,
    pre: InstancePre<GuestState>,
    options: SandboxOptions,
    _ticker: Arc<Ticker>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Compile the guest found by [`crate::locate_guest`].
    pub fn new(options: SandboxOptions) -> Result<Sandbox, SandboxError> {
        Sandbox::from_file(&crate::locate_guest()?, options)
    }

    /// Compile the guest module at `path` (`strata-wasi.wasm`).
    pub fn from_file(path: &Path, options: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let bytes =
            std::fs::read(path).map_err(|e| SandboxError::Guest(format!("cannot read {}: {e}", path.display())))?;
        Sandbox::from_wasm(&bytes, options)
    }

    /// Compile a guest module from its bytes.
    pub fn from_wasm(wasm: &[u8], options: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let guest = |e: wasmtime::Error| SandboxError::Guest(format!("{e:#}"));
        let mut config = Config::new();
        // (wasmtime requires the async stack to be at least the wasm stack, even unused.)
        config.epoch_interruption(true).max_wasm_stack(WASM_STACK_BYTES).async_stack_size(WASM_STACK_BYTES);
        let engine = Engine::new(&config).map_err(guest)?;
        let module = Module::new(&engine, wasm).map_err(guest)?;
        let mut linker: Linker<GuestState> = Linker::new(&engine);
        crate::wasi::add_to_linker(&mut linker).map_err(guest)?;
        let pre = linker.instantiate_pre(&module).map_err(guest)?;
        let ticker = Arc::new(Ticker::start(engine.clone())?);
        Ok(Sandbox { engine, pre, options, _ticker: ticker })
    }

    /// The same compiled guest with other limits (cheap: nothing is recompiled).
    pub fn with_options(&self, options: SandboxOptions) -> Sandbox {
        Sandbox { engine: self.engine.clone(), pre: self.pre.clone(), options, _ticker: self._ticker.clone() }
    }

    /// The limits of this sandbox's runs.
    pub fn options(&self) -> &SandboxOptions {
        &self.options
    }

    /// Parse, validate and run `model` (ONNX protobuf or `.strata` artifact)
    /// with named `inputs` inside the sandbox, on the reference backend;
    /// returns every output by name, in model order, as a native
    /// [`strata::Session::run`] would.
    pub fn run(&self, model: &[u8], inputs: &[(&str, Value)]) -> Result<Vec<(String, Value)>, SandboxError> {
        let mut wire = Vec::with_capacity(inputs.len());
        for (name, v) in inputs {
            let w = WireValue::from_value(v)
                .ok_or_else(|| SandboxError::Input(format!("input '{name}' ({}) cannot be sent", v.describe())))?;
            wire.push((name.to_string(), w));
        }
        let header = RequestHeader { options: self.options.session.clone(), inputs: wire };
        let request = strata_wasi::encode_request(&header, model).map_err(|e| SandboxError::Input(e.to_string()))?;
        drop(header);
        // Wasm frames run on the calling thread's stack: give them a thread
        // with a known, large one.
        let response = std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .name("strata-sandbox-run".into())
                .stack_size(RUN_THREAD_STACK_BYTES)
                .spawn_scoped(s, || self.call(request))
                .map_err(|e| SandboxError::Guest(format!("cannot start the sandbox thread: {e}")))?;
            worker.join().map_err(|_| SandboxError::Trap("the sandbox thread panicked".into()))?
        })?;
        match response {
            Response::Outputs(outs) => Ok(outs.into_iter().map(|(n, v)| (n, v.into_value())).collect()),
            Response::Error { stage, message } => Err(SandboxError::Model { stage, message }),
        }
    }

    /// One run in a fresh store and instance.
    fn call(&self, request: Vec<u8>) -> Result<Response, SandboxError> {
        let limit = self.options.memory_limit_bytes.min(WASM32_MAX_MEMORY);
        // The response is built in guest memory first, so it is never larger than the cap.
        let io = Io::new(request, limit, STDERR_BYTES);
        let mut store = Store::new(&self.engine, GuestState { io, limiter: Limiter { limit, exceeded: None } });
        store.limiter(|s| &mut s.limiter);
        // At every tick the guest checks the wall clock, so a ticker thread
        // that falls behind (a busy machine) does not stretch the deadline.
        let until = Instant::now().checked_add(self.options.deadline);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(match until {
                Some(until) if Instant::now() >= until => UpdateDeadline::Interrupt,
                _ => UpdateDeadline::Continue(1),
            })
        });
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()));
        if let Some(requested) = store.data().limiter.exceeded {
            return Err(SandboxError::MemoryLimit { limit, requested });
        }
        if let Err(e) = result {
            let exit = store.data().io.exit;
            if exit != Some(0) {
                let guest_said = String::from_utf8_lossy(&store.data().io.stderr).trim().to_string();
                let said = if guest_said.is_empty() { String::new() } else { format!(" (guest stderr: {guest_said})") };
                return Err(match (e.downcast_ref::<Trap>(), exit) {
                    (Some(Trap::Interrupt), _) => SandboxError::Deadline { deadline: self.options.deadline },
                    (_, Some(code)) => SandboxError::Trap(format!("the guest exited with status {code}{said}")),
                    (Some(trap), _) => SandboxError::Trap(format!("{trap}{said}")),
                    (None, None) => SandboxError::Trap(format!("{e:#}{said}")),
                });
            }
        }
        let stdout = std::mem::take(&mut store.data_mut().io.stdout);
        drop(store);
        strata_wasi::decode_response(&stdout).map_err(|e| SandboxError::Protocol(e.to_string()))
    }
}
