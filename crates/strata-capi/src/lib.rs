//! The C API of Strata: a small, stable ABI for C, C++, Swift, Go and any
//! language with a C FFI. The header is `include/strata.h` (generated from
//! this file by cbindgen; doc comments become header comments).
//!
//! Conventions:
//! - Objects are opaque handles ([`StrataOptions`], [`StrataSession`],
//!   [`StrataTensor`]) created by `*_create*` functions and released by the
//!   matching `*_free` function (which accepts `NULL`).
//! - Every other function returns a [`StrataStatus`]; results come back
//!   through out-parameters, written only on success. On failure the
//!   message is available from [`strata_last_error`] on the same thread.
//! - A session is thread-safe: `strata_session_run` may be called on one
//!   session from many threads at once. Options and tensors may be shared
//!   between threads for reading; do not free an object while another
//!   thread uses it.
//! - No Rust panic crosses into the caller: each entry point catches it
//!   and returns `STRATA_STATUS_INTERNAL_ERROR`.
//! - Untrusted models are safe to load: sizes are checked before
//!   allocating, and resource limits ([`strata_options_set_limits`]) turn
//!   runaway models into `STRATA_STATUS_RUN_FAILED` / `LOAD_FAILED` errors.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use strata::ir::{Buffer, Dim, ValueType};
use strata::{DType, Session, SessionOptions, Tensor, Value};

/// Result of every fallible call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrataStatus {
    /// Success.
    Ok = 0,
    /// A pointer was `NULL`, an index out of range, a string not UTF-8, or
    /// a value otherwise invalid.
    InvalidArgument = 1,
    /// The model could not be read, parsed, validated or compiled.
    LoadFailed = 2,
    /// Running the model failed (bad inputs, a kernel error, a limit hit).
    RunFailed = 3,
    /// The request is valid but not supported (for example string tensors).
    Unsupported = 4,
    /// A bug inside Strata (a caught panic); the message says where.
    InternalError = 5,
}

/// Element type of a tensor; the values are the ONNX `TensorProto.DataType` codes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrataDtype {
    /// Unknown or not declared.
    Undefined = 0,
    Float = 1,
    Uint8 = 2,
    Int8 = 3,
    Uint16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    /// Strings (not supported by the tensor functions of this API).
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    Uint32 = 12,
    Uint64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    Bfloat16 = 16,
    Float8e4m3fn = 17,
    Float8e4m3fnuz = 18,
    Float8e5m2 = 19,
    Float8e5m2fnuz = 20,
    Uint4 = 21,
    Int4 = 22,
    Float4e2m1 = 23,
    Float8e8m0 = 24,
    Uint2 = 25,
    Int2 = 26,
}

const C_DTYPES: [StrataDtype; 27] = [
    StrataDtype::Undefined,
    StrataDtype::Float,
    StrataDtype::Uint8,
    StrataDtype::Int8,
    StrataDtype::Uint16,
    StrataDtype::Int16,
    StrataDtype::Int32,
    StrataDtype::Int64,
    StrataDtype::String,
    StrataDtype::Bool,
    StrataDtype::Float16,
    StrataDtype::Double,
    StrataDtype::Uint32,
    StrataDtype::Uint64,
    StrataDtype::Complex64,
    StrataDtype::Complex128,
    StrataDtype::Bfloat16,
    StrataDtype::Float8e4m3fn,
    StrataDtype::Float8e4m3fnuz,
    StrataDtype::Float8e5m2,
    StrataDtype::Float8e5m2fnuz,
    StrataDtype::Uint4,
    StrataDtype::Int4,
    StrataDtype::Float4e2m1,
    StrataDtype::Float8e8m0,
    StrataDtype::Uint2,
    StrataDtype::Int2,
];

fn to_c_dtype(d: Option<DType>) -> StrataDtype {
    d.and_then(|d| C_DTYPES.get(usize::try_from(d.onnx_code()).ok()?).copied()).unwrap_or(StrataDtype::Undefined)
}

/// Options for creating a session (backend preference, strictness, limits).
pub struct StrataOptions {
    options: SessionOptions,
}

/// Declared name, type and shape of a model input or output, kept in C form.
struct Io {
    name: CString,
    dtype: StrataDtype,
    /// Rank, or -1 when the rank is unknown.
    rank: i64,
    /// Dimensions, -1 for symbolic or unknown ones.
    dims: Vec<i64>,
}

/// A loaded model, ready to run. Thread-safe.
pub struct StrataSession {
    session: Session,
    inputs: Vec<Io>,
    outputs: Vec<Io>,
}

/// A dense tensor: element type, shape and bytes (owned, or borrowed from the caller).
pub struct StrataTensor {
    tensor: Tensor,
    dims: Vec<i64>,
}

type Failure = (StrataStatus, String);

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Run `f` for an entry point: clear the last error, catch panics, record failures.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> StrataStatus {
    set_error("");
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => StrataStatus::Ok,
        Ok(Err((status, msg))) => {
            set_error(&msg);
            status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(&format!("internal error (panic): {what}"));
            StrataStatus::InternalError
        }
    }
}

fn invalid(msg: impl Into<String>) -> Failure {
    (StrataStatus::InvalidArgument, msg.into())
}

/// A shared reference from a possibly null pointer.
///
/// # Safety
/// `p` is null or points to a live `T`.
unsafe fn get<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: guaranteed by the caller.
    unsafe { p.as_ref() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// An exclusive reference from a possibly null pointer.
///
/// # Safety
/// `p` is null or points to a live `T` no one else is using.
unsafe fn get_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: guaranteed by the caller.
    unsafe { p.as_mut() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// Write `v` to the out-parameter `out`.
///
/// # Safety
/// `out` is null or valid for writes.
unsafe fn put<T>(out: *mut T, v: T, what: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-null and valid for writes per the caller.
    unsafe { out.write(v) };
    Ok(())
}

/// A UTF-8 string from a C string.
///
/// # Safety
/// `s` is null or a NUL-terminated string.
unsafe fn string<'a>(s: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if s.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-null and NUL-terminated per the caller.
    unsafe { CStr::from_ptr(s) }.to_str().map_err(|_| invalid(format!("{what} is not UTF-8")))
}

/// The message of the last failed call on this thread ("" after a
/// successful call). Never `NULL`. Valid until the next call into this API
/// on the same thread; copy it to keep it.
#[unsafe(no_mangle)]
pub extern "C" fn strata_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The version of this library, such as "0.1.0" (a static string).
#[unsafe(no_mangle)]
pub extern "C" fn strata_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

// ---------------------------------------------------------------------------
// Options

/// Create options with the defaults (backend "cpu", the optimised CPU
/// backend, with per-node fallback to "reference"; not strict; default
/// limits). Free with `strata_options_free`.
///
/// # Safety
/// `out` must be valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_options_create(out: *mut *mut StrataOptions) -> StrataStatus {
    guard(|| {
        let o = Box::new(StrataOptions { options: SessionOptions::default() });
        // SAFETY: per the contract.
        unsafe { put(out, Box::into_raw(o), "out") }
    })
}

/// Free options (`NULL` is ignored). Sessions created with them stay valid.
///
/// # Safety
/// `options` is `NULL` or was created by `strata_options_create` and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_options_free(options: *mut StrataOptions) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !options.is_null() {
            // SAFETY: created by Box::into_raw and freed once, per the contract.
            drop(unsafe { Box::from_raw(options) });
        }
    }));
}

/// Prefer the backend `name` ("cpu", the default, and "reference"; "gpu" when built).
/// Nodes it cannot run fall back to the reference backend unless strict.
///
/// # Safety
/// `options` is a live options handle (or `NULL`); `name` is a NUL-terminated string (or `NULL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_options_set_backend(options: *mut StrataOptions, name: *const c_char) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let (o, name) = unsafe { (get_mut(options, "options")?, string(name, "name")?) };
        if !strata::backend_names().contains(&name) {
            return Err(invalid(format!("unknown backend '{name}' (known: {:?})", strata::backend_names())));
        }
        o.options.backends = vec![name.to_string()];
        Ok(())
    })
}

/// Fail at session creation, instead of falling back to the reference
/// backend, when the preferred backend cannot run a node.
///
/// # Safety
/// `options` is a live options handle (or `NULL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_options_set_strict(options: *mut StrataOptions, strict: bool) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let o = unsafe { get_mut(options, "options") }?;
        o.options.strict = strict;
        Ok(())
    })
}

/// Set the number of threads the `cpu` backend's kernels use (0, the
/// default: one per core). Results are the same for every thread count.
///
/// # Safety
/// `options` is a live options handle (or `NULL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_options_set_threads(options: *mut StrataOptions, threads: u32) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let o = unsafe { get_mut(options, "options") }?;
        o.options.threads = threads as usize;
        Ok(())
    })
}

/// Set resource limits for untrusted models; 0 keeps a limit's default.
/// `max_tensor_elements`: largest tensor a kernel may create;
/// `max_nodes`: largest number of nodes a model may have;
/// `max_loop_iterations`: most iterations one `Loop` may run.
///
/// # Safety
/// `options` is a live options handle (or `NULL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_options_set_limits(
    options: *mut StrataOptions,
    max_tensor_elements: u64,
    max_nodes: u64,
    max_loop_iterations: u64,
) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let o = unsafe { get_mut(options, "options") }?;
        let size = |v: u64, what: &str| usize::try_from(v).map_err(|_| invalid(format!("{what} is too large")));
        if max_tensor_elements != 0 {
            o.options.max_tensor_elements = size(max_tensor_elements, "max_tensor_elements")?;
        }
        if max_nodes != 0 {
            o.options.max_nodes = size(max_nodes, "max_nodes")?;
        }
        if max_loop_iterations != 0 {
            o.options.max_loop_iterations = max_loop_iterations;
        }
        Ok(())
    })
}

/// Set the most host memory, in bytes, a model may use (its weights, and
/// the tensors live at once during a run on the CPU); 0 means no limit.
///
/// # Safety
/// `options` is a live options handle (or `NULL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_options_set_memory_limit(options: *mut StrataOptions, max_bytes: u64) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let o = unsafe { get_mut(options, "options") }?;
        o.options.max_memory_bytes = if max_bytes == 0 { u64::MAX } else { max_bytes };
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Sessions

fn io_list(infos: &[strata::IoInfo]) -> Vec<Io> {
    infos
        .iter()
        .map(|i| {
            let (dtype, rank, dims) = match &i.ty {
                ValueType::Tensor { dtype, shape: Some(s) } => (
                    to_c_dtype(Some(*dtype)),
                    s.len() as i64,
                    s.iter()
                        .map(|d| match d {
                            Dim::Known(n) => i64::try_from(*n).unwrap_or(-1),
                            _ => -1,
                        })
                        .collect(),
                ),
                ValueType::Tensor { dtype, shape: None } => (to_c_dtype(Some(*dtype)), -1, Vec::new()),
                _ => (StrataDtype::Undefined, -1, Vec::new()),
            };
            Io { name: CString::new(i.name.replace('\0', " ")).unwrap_or_default(), dtype, rank, dims }
        })
        .collect()
}

fn finish_session(r: Result<Session, strata::Error>, out: *mut *mut StrataSession) -> Result<(), Failure> {
    let session = r.map_err(|e| (StrataStatus::LoadFailed, e.to_string()))?;
    let s = Box::new(StrataSession { inputs: io_list(session.inputs()), outputs: io_list(session.outputs()), session });
    let p = Box::into_raw(s);
    // SAFETY: `out` was checked non-null by the caller of this helper.
    unsafe { out.write(p) };
    Ok(())
}

/// Load a model file (`.onnx`, or a `.strata` artifact, which is
/// memory-mapped: do not modify the file while the session lives).
/// `options` may be `NULL` for the defaults. Free with `strata_session_free`.
///
/// # Safety
/// `path` is a NUL-terminated string; `options` is `NULL` or live; `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_create_from_file(
    path: *const c_char,
    options: *const StrataOptions,
    out: *mut *mut StrataSession,
) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let path = unsafe { string(path, "path")? };
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: per the contract.
        let opts = unsafe { options.as_ref() }.map(|o| o.options.clone()).unwrap_or_default();
        finish_session(Session::from_path(path, opts), out)
    })
}

/// Load a model from bytes (ONNX protobuf or `.strata` artifact). The
/// bytes are not kept: they may be freed once this returns. `options` may
/// be `NULL` for the defaults. Free with `strata_session_free`.
///
/// # Safety
/// `data` points to `len` readable bytes; `options` is `NULL` or live; `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_create_from_bytes(
    data: *const u8,
    len: usize,
    options: *const StrataOptions,
    out: *mut *mut StrataSession,
) -> StrataStatus {
    guard(|| {
        if data.is_null() || out.is_null() {
            return Err(invalid("data or out is NULL"));
        }
        // SAFETY: `len` readable bytes at `data` per the contract.
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        // SAFETY: per the contract.
        let opts = unsafe { options.as_ref() }.map(|o| o.options.clone()).unwrap_or_default();
        finish_session(Session::from_bytes(bytes, opts), out)
    })
}

/// Free a session (`NULL` is ignored). No run may be in progress on it.
/// Tensors it returned stay valid.
///
/// # Safety
/// `session` is `NULL` or was created by this API and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_free(session: *mut StrataSession) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !session.is_null() {
            // SAFETY: created by Box::into_raw and freed once, per the contract.
            drop(unsafe { Box::from_raw(session) });
        }
    }));
}

/// Number of model inputs.
///
/// # Safety
/// `session` is live (or `NULL`); `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_input_count(session: *const StrataSession, out: *mut usize) -> StrataStatus {
    // SAFETY: per the contract.
    guard(|| unsafe { put(out, get(session, "session")?.inputs.len(), "out") })
}

/// Number of model outputs (the length of the array `strata_session_run` fills).
///
/// # Safety
/// `session` is live (or `NULL`); `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_output_count(session: *const StrataSession, out: *mut usize) -> StrataStatus {
    // SAFETY: per the contract.
    guard(|| unsafe { put(out, get(session, "session")?.outputs.len(), "out") })
}

/// Look up input or output `index`.
///
/// # Safety
/// `session` is live or `NULL`.
unsafe fn io<'a>(session: *const StrataSession, output: bool, index: usize) -> Result<&'a Io, Failure> {
    // SAFETY: per the caller's contract.
    let s = unsafe { get(session, "session")? };
    let (list, what) = if output { (&s.outputs, "output") } else { (&s.inputs, "input") };
    list.get(index)
        .ok_or_else(|| invalid(format!("{what} index {index} is out of range (the model has {})", list.len())))
}

/// Name of input `index` (owned by the session: valid until it is freed).
///
/// # Safety
/// `session` is live (or `NULL`); `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_input_name(
    session: *const StrataSession,
    index: usize,
    out: *mut *const c_char,
) -> StrataStatus {
    // SAFETY: per the contract.
    guard(|| unsafe { put(out, io(session, false, index)?.name.as_ptr(), "out") })
}

/// Name of output `index` (owned by the session: valid until it is freed).
///
/// # Safety
/// `session` is live (or `NULL`); `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_output_name(
    session: *const StrataSession,
    index: usize,
    out: *mut *const c_char,
) -> StrataStatus {
    // SAFETY: per the contract.
    guard(|| unsafe { put(out, io(session, true, index)?.name.as_ptr(), "out") })
}

/// Declared element type of input `index` (`STRATA_DTYPE_UNDEFINED` for non-tensors).
///
/// # Safety
/// `session` is live (or `NULL`); `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_input_dtype(
    session: *const StrataSession,
    index: usize,
    out: *mut StrataDtype,
) -> StrataStatus {
    // SAFETY: per the contract.
    guard(|| unsafe { put(out, io(session, false, index)?.dtype, "out") })
}

/// Declared element type of output `index` (`STRATA_DTYPE_UNDEFINED` for non-tensors).
///
/// # Safety
/// `session` is live (or `NULL`); `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_output_dtype(
    session: *const StrataSession,
    index: usize,
    out: *mut StrataDtype,
) -> StrataStatus {
    // SAFETY: per the contract.
    guard(|| unsafe { put(out, io(session, true, index)?.dtype, "out") })
}

/// Declared shape of input or output `index`.
///
/// # Safety
/// As for the public shape functions.
unsafe fn io_shape(
    session: *const StrataSession,
    output: bool,
    index: usize,
    rank: *mut i64,
    dims: *mut *const i64,
) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let io = unsafe { io(session, output, index)? };
        if rank.is_null() || dims.is_null() {
            return Err(invalid("rank or dims is NULL"));
        }
        // SAFETY: both non-null and valid for writes per the contract.
        unsafe {
            rank.write(io.rank);
            dims.write(io.dims.as_ptr());
        }
        Ok(())
    })
}

/// Declared shape of input `index`: `*rank` is the rank (-1 when unknown)
/// and `*dims` points to `rank` dimensions, -1 for symbolic ones such as a
/// batch size (owned by the session: valid until it is freed).
///
/// # Safety
/// `session` is live (or `NULL`); `rank` and `dims` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_input_shape(
    session: *const StrataSession,
    index: usize,
    rank: *mut i64,
    dims: *mut *const i64,
) -> StrataStatus {
    // SAFETY: same contract.
    unsafe { io_shape(session, false, index, rank, dims) }
}

/// Declared shape of output `index`, as for `strata_session_input_shape`.
///
/// # Safety
/// `session` is live (or `NULL`); `rank` and `dims` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_output_shape(
    session: *const StrataSession,
    index: usize,
    rank: *mut i64,
    dims: *mut *const i64,
) -> StrataStatus {
    // SAFETY: same contract.
    unsafe { io_shape(session, true, index, rank, dims) }
}

/// Run the model. `names[i]` names the input `inputs[i]` (`count` of each;
/// every model input must be given). On success `outputs` (an array of
/// `output_count` pointers, at least the model's output count) receives
/// one new tensor per model output, in model order; free each with
/// `strata_tensor_free`. May be called from many threads at once.
///
/// # Safety
/// `session` is live; `names` and `inputs` point to `count` valid entries
/// (may be `NULL` when `count` is 0); `outputs` is valid for `output_count` writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_session_run(
    session: *const StrataSession,
    names: *const *const c_char,
    inputs: *const *const StrataTensor,
    count: usize,
    outputs: *mut *mut StrataTensor,
    output_count: usize,
) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let s = unsafe { get(session, "session")? };
        if count > 0 && (names.is_null() || inputs.is_null()) {
            return Err(invalid("names or inputs is NULL"));
        }
        if outputs.is_null() {
            return Err(invalid("outputs is NULL"));
        }
        if output_count < s.outputs.len() {
            return Err(invalid(format!(
                "the outputs array holds {output_count} tensors, the model has {} outputs",
                s.outputs.len()
            )));
        }
        let mut given: Vec<(&str, Value)> = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: `count` entries in each array per the contract.
            let (name, t) = unsafe { (*names.add(i), *inputs.add(i)) };
            // SAFETY: each entry is a C string / live tensor per the contract.
            let (name, t) = unsafe { (string(name, "input name")?, get(t, "input tensor")?) };
            given.push((name, Value::Tensor(t.tensor.clone())));
        }
        let result = s.session.run(&given).map_err(|e| (StrataStatus::RunFailed, e.to_string()))?;
        let mut made: Vec<*mut StrataTensor> = Vec::with_capacity(result.len());
        for (name, v) in result {
            match v {
                Value::Tensor(t) => made.push(Box::into_raw(Box::new(wrap(t)))),
                other => {
                    for p in made {
                        // SAFETY: created just above by Box::into_raw.
                        drop(unsafe { Box::from_raw(p) });
                    }
                    return Err((
                        StrataStatus::Unsupported,
                        format!("output '{name}' is {}, not a tensor", other.describe()),
                    ));
                }
            }
        }
        for (i, p) in made.into_iter().enumerate() {
            // SAFETY: `output_count` >= the number of outputs, checked above.
            unsafe { outputs.add(i).write(p) };
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Tensors

fn wrap(tensor: Tensor) -> StrataTensor {
    let dims = tensor.shape().iter().map(|&d| d as i64).collect();
    StrataTensor { tensor, dims }
}

/// Caller memory lent to a tensor (see `strata_tensor_create`).
struct Borrowed {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the bytes are only read, and the caller promises (documented on
// `strata_tensor_create`) that they stay valid and unchanged while shared.
unsafe impl Send for Borrowed {}
// SAFETY: as above; shared reads of immutable memory.
unsafe impl Sync for Borrowed {}

impl AsRef<[u8]> for Borrowed {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` is non-null and valid for `len` bytes for this
        // value's lifetime, per the contract of `strata_tensor_create`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Validate a dtype and shape and wrap `bytes` as a tensor.
///
/// # Safety
/// `dims` points to `rank` readable values (or is `NULL` when `rank` is 0).
unsafe fn make_tensor(
    dtype: StrataDtype,
    dims: *const i64,
    rank: usize,
    bytes: impl FnOnce() -> Buffer,
    out: *mut *mut StrataTensor,
) -> Result<(), Failure> {
    if out.is_null() {
        return Err(invalid("out is NULL"));
    }
    if rank > 0 && dims.is_null() {
        return Err(invalid("dims is NULL"));
    }
    if dtype == StrataDtype::String || dtype == StrataDtype::Undefined {
        return Err((StrataStatus::Unsupported, format!("cannot create a tensor of type {dtype:?} from bytes")));
    }
    let dt = DType::from_onnx_code(dtype as i64).ok_or_else(|| invalid("unknown dtype"))?;
    let dims: &[i64] = if rank == 0 {
        &[]
    } else {
        // SAFETY: `rank` readable values per the contract.
        unsafe { std::slice::from_raw_parts(dims, rank) }
    };
    let shape = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| invalid(format!("negative dimension in shape {dims:?}"))))
        .collect::<Result<Vec<usize>, Failure>>()?;
    let t = Tensor::from_bytes(dt, shape, bytes()).map_err(|e| invalid(e.to_string()))?;
    // SAFETY: checked non-null above; valid for writes per the contract.
    unsafe { out.write(Box::into_raw(Box::new(wrap(t)))) };
    Ok(())
}

/// Create a tensor that BORROWS `data` (`byte_len` bytes, little-endian
/// elements in row-major order, sub-byte types packed) without copying.
/// `byte_len` must equal the size the dtype and shape need.
///
/// Lifetime: the memory must stay valid and unmodified until this tensor
/// is freed AND every output tensor of every `strata_session_run` it was
/// passed to is freed (outputs may share input bytes, for example through
/// `Identity` or `Reshape`). Use `strata_tensor_create_copy` when that is
/// inconvenient.
///
/// # Safety
/// `dims` points to `rank` values; `data` points to `byte_len` readable bytes
/// living as long as described above; `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_tensor_create(
    dtype: StrataDtype,
    dims: *const i64,
    rank: usize,
    data: *const c_void,
    byte_len: usize,
    out: *mut *mut StrataTensor,
) -> StrataStatus {
    guard(|| {
        if data.is_null() && byte_len > 0 {
            return Err(invalid("data is NULL"));
        }
        let owner = Borrowed { ptr: data.cast(), len: byte_len };
        // SAFETY: per the contract.
        unsafe { make_tensor(dtype, dims, rank, || Buffer::from_owner(Arc::new(owner)), out) }
    })
}

/// Create a tensor holding a copy of `data` (`byte_len` bytes, laid out as
/// for `strata_tensor_create`); the caller's memory may be reused at once.
///
/// # Safety
/// `dims` points to `rank` values; `data` points to `byte_len` readable bytes; `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_tensor_create_copy(
    dtype: StrataDtype,
    dims: *const i64,
    rank: usize,
    data: *const c_void,
    byte_len: usize,
    out: *mut *mut StrataTensor,
) -> StrataStatus {
    guard(|| {
        if data.is_null() && byte_len > 0 {
            return Err(invalid("data is NULL"));
        }
        let bytes = if byte_len == 0 {
            Vec::new()
        } else {
            // SAFETY: `byte_len` readable bytes per the contract.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), byte_len) }.to_vec()
        };
        // SAFETY: per the contract.
        unsafe { make_tensor(dtype, dims, rank, || Buffer::from_vec(bytes), out) }
    })
}

/// Free a tensor (`NULL` is ignored).
///
/// # Safety
/// `tensor` is `NULL` or was created by this API and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_tensor_free(tensor: *mut StrataTensor) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !tensor.is_null() {
            // SAFETY: created by Box::into_raw and freed once, per the contract.
            drop(unsafe { Box::from_raw(tensor) });
        }
    }));
}

/// Element type of a tensor.
///
/// # Safety
/// `tensor` is live (or `NULL`); `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_tensor_dtype(tensor: *const StrataTensor, out: *mut StrataDtype) -> StrataStatus {
    // SAFETY: per the contract.
    guard(|| unsafe { put(out, to_c_dtype(Some(get(tensor, "tensor")?.tensor.dtype())), "out") })
}

/// Shape of a tensor: `*rank` dimensions at `*dims` (owned by the tensor:
/// valid until it is freed).
///
/// # Safety
/// `tensor` is live (or `NULL`); `rank` and `dims` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_tensor_shape(
    tensor: *const StrataTensor,
    rank: *mut usize,
    dims: *mut *const i64,
) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let t = unsafe { get(tensor, "tensor")? };
        // SAFETY: per the contract.
        unsafe {
            put(rank, t.dims.len(), "rank")?;
            put(dims, t.dims.as_ptr(), "dims")
        }
    })
}

/// The tensor's bytes (read-only; layout as for `strata_tensor_create`),
/// valid until the tensor is freed. For `STRATA_DTYPE_FLOAT`, `*data` is
/// `*byte_len / 4` floats.
///
/// # Safety
/// `tensor` is live (or `NULL`); `data` and `byte_len` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strata_tensor_data(
    tensor: *const StrataTensor,
    data: *mut *const c_void,
    byte_len: *mut usize,
) -> StrataStatus {
    guard(|| {
        // SAFETY: per the contract.
        let t = unsafe { get(tensor, "tensor")? };
        let b = t.tensor.bytes().ok_or_else(|| (StrataStatus::Unsupported, "string tensors have no bytes".into()))?;
        let bytes = b.as_slice();
        // SAFETY: per the contract.
        unsafe {
            put(byte_len, bytes.len(), "byte_len")?;
            put(data, bytes.as_ptr().cast(), "data")
        }
    })
}

/// The README's Rust snippets, compiled as doc tests here (this crate
/// depends on `strata`, and the facade's own `lib.rs` stays untouched).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_prefer_the_cpu_backend() {
        let mut o = std::ptr::null_mut();
        // SAFETY: `o` is valid for writes; the handle is freed once.
        unsafe {
            assert_eq!(strata_options_create(&mut o), StrataStatus::Ok);
            assert_eq!((*o).options.backends, vec!["cpu".to_string()]);
            assert!(!(*o).options.strict);
            strata_options_free(o);
        }
    }
}
