//! Sandboxed loading of untrusted models.
//!
//! Owns the host side of running a model inside the `wasm32-wasip1` build of
//! the engine (the `strata-wasi` guest) under wasmtime: the options (a cap on
//! the guest's linear memory, a wall-clock deadline, the engine's own limits),
//! the typed errors, locating the guest module, and — with the non-default
//! cargo feature `wasmtime` — [`Sandbox`], which compiles the guest once and
//! runs each request in a fresh instance. A malicious or broken model can at
//! worst make that call fail: the guest's only imports are in-memory
//! standard streams (no files, no network, no environment, no clocks), it has
//! at most `memory_limit_bytes` of memory and `deadline` of time, and the host
//! process keeps running.
//!
//! The guest is built by cargo, not by this crate: `cargo build -p strata-wasi
//! --release --target wasm32-wasip1` (what `cargo xtask sandbox` does). It is
//! found through [`GUEST_ENV`] or next to the running executable in the cargo
//! target directory (see [`locate_guest`]).
//!
//! Results are those of the native reference backend, bit for bit: the
//! reference kernels compute in `f64` with `libm`, identically on every target.

use std::path::PathBuf;
use std::time::Duration;

pub use strata_wasi::GuestOptions;

#[cfg(feature = "wasmtime")]
mod sandbox;
#[cfg(feature = "wasmtime")]
mod wasi;
#[cfg(feature = "wasmtime")]
pub use sandbox::Sandbox;

/// Environment variable naming the guest module (`strata-wasi.wasm`).
pub const GUEST_ENV: &str = "STRATA_WASI_GUEST";

/// Where cargo puts the guest inside a target directory.
pub const GUEST_IN_TARGET_DIR: &str = "wasm32-wasip1/release/strata-wasi.wasm";

/// Largest linear memory a wasm32 guest can have (4 GiB).
pub const WASM32_MAX_MEMORY: usize = 1 << 32;

/// Limits of one sandboxed run.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxOptions {
    /// Cap on the guest's linear memory (model, weights, activations, the
    /// engine's own data), in bytes; at most [`WASM32_MAX_MEMORY`]. Default 2 GiB.
    pub memory_limit_bytes: usize,
    /// Wall-clock time a run (parse, validate, run, encode outputs) may take. Default 60 s.
    pub deadline: Duration,
    /// The engine's own limits inside the sandbox (largest tensor, node
    /// count, `Loop` iterations), and its options.
    pub session: GuestOptions,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            memory_limit_bytes: 2 << 30,
            deadline: Duration::from_secs(60),
            session: GuestOptions::default(),
        }
    }
}

/// Why a sandboxed call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The guest tried to grow its memory past the cap.
    #[error("memory limit of {limit} bytes exceeded (the guest asked for {requested} bytes)")]
    MemoryLimit {
        /// The cap.
        limit: usize,
        /// The memory size the guest asked for.
        requested: usize,
    },
    /// The run did not finish in time.
    #[error("deadline of {} ms exceeded", .deadline.as_millis())]
    Deadline {
        /// The deadline.
        deadline: Duration,
    },
    /// The engine refused the model or its inputs (its own message, which
    /// names the node and operator where there is one).
    #[error("model error: {message}")]
    Model {
        /// Where the engine stopped.
        stage: strata_wasi::ErrorStage,
        /// The engine's message.
        message: String,
    },
    /// The guest stopped abnormally (a trap such as stack exhaustion, or an abort).
    #[error("guest trapped: {0}")]
    Trap(String),
    /// The guest module was not found.
    #[error(
        "the sandbox guest was not found ({0}); build it with `cargo build -p strata-wasi --release --target wasm32-wasip1` (or `cargo xtask sandbox`) or set {GUEST_ENV}"
    )]
    GuestNotFound(String),
    /// The guest module could not be read, compiled or linked.
    #[error("cannot load the sandbox guest: {0}")]
    Guest(String),
    /// An input cannot be sent to the guest.
    #[error("invalid input: {0}")]
    Input(String),
    /// The guest's answer could not be decoded.
    #[error("sandbox protocol error: {0}")]
    Protocol(String),
}

/// Find the guest module: the file named by [`GUEST_ENV`] if set, else
/// [`GUEST_IN_TARGET_DIR`] under any ancestor directory of the running
/// executable (so `target/debug/strata` and test binaries in
/// `target/debug/deps/` find `target/wasm32-wasip1/release/strata-wasi.wasm`).
pub fn locate_guest() -> Result<PathBuf, SandboxError> {
    if let Some(p) = std::env::var_os(GUEST_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(SandboxError::GuestNotFound(format!("{GUEST_ENV}={} is not a file", p.display())))
        };
    }
    let exe = std::env::current_exe()
        .map_err(|e| SandboxError::GuestNotFound(format!("cannot locate the running executable: {e}")))?;
    for dir in exe.ancestors().skip(1) {
        let candidate = dir.join(GUEST_IN_TARGET_DIR);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(SandboxError::GuestNotFound(format!(
        "no {GUEST_IN_TARGET_DIR} above {} and {GUEST_ENV} is not set",
        exe.display()
    )))
}
