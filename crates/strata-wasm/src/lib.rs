//! Strata in the browser: the wasm-bindgen surface behind the `strata` npm
//! package in `web/`.
//!
//! Owns the JavaScript-facing session API (create from bytes, input/output
//! metadata, asynchronous `run`, placement, release) and the conversion of
//! tensors between JavaScript (dtype name, dims, raw bytes) and Strata. The
//! ergonomic JavaScript wrapper (`Session.create`, typed-array `Tensor`s)
//! lives in `web/src/index.js`.
//!
//! Backends: `cpu` is the optimised `strata-cpu` backend compiled with
//! simd128 (nodes it cannot run fall back to the reference unless strict);
//! `reference` is the oracle, loadable by name; with the `webgpu` cargo feature, `webgpu` is the `strata-gpu` backend on the
//! browser's WebGPU. The device is requested asynchronously by
//! [`WasmSession::create`] (nothing blocks the main thread); when WebGPU is
//! unavailable the backend is skipped and the reason shows in every node's
//! placement (or, with `strict`, creation fails with it).

use js_sys::{Array, Object, Reflect, Uint8Array};
use strata::{DType, Dim, Session, SessionOptions, Tensor, Value, ValueType};
use wasm_bindgen::prelude::*;

#[cfg(feature = "conformance")]
mod conformance;

fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn get(obj: &JsValue, key: &str) -> Result<JsValue, JsError> {
    Reflect::get(obj, &JsValue::from_str(key)).map_err(|_| JsError::new(&format!("missing property '{key}'")))
}

fn set(obj: &Object, key: &str, v: impl Into<JsValue>) {
    // Setting a property on a plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &v.into());
}

/// The ONNX Runtime Web name of an element type.
fn type_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::F16 => "float16",
        DType::I8 => "int8",
        DType::U8 => "uint8",
        DType::I16 => "int16",
        DType::U16 => "uint16",
        DType::I32 => "int32",
        DType::U32 => "uint32",
        DType::I64 => "int64",
        DType::U64 => "uint64",
        DType::Bool => "bool",
        DType::String => "string",
        other => other.name(),
    }
}

fn parse_type(s: &str) -> Option<DType> {
    DType::ALL.iter().copied().find(|d| type_name(*d) == s)
}

fn dims_js(shape: &Option<Vec<Dim>>) -> Array {
    let a = Array::new();
    for d in shape.as_deref().unwrap_or(&[]) {
        a.push(&match d {
            Dim::Known(n) => JsValue::from_f64(*n as f64),
            Dim::Sym(s) => JsValue::from_str(s),
            Dim::Unknown => JsValue::NULL,
        });
    }
    a
}

/// A loaded model.
#[wasm_bindgen]
pub struct WasmSession {
    inner: Option<Session>,
    /// Requested backends that were skipped, with the reason (shown in placement).
    skipped: Vec<String>,
}

/// Engine backend names for the JavaScript names in `backends`, in order of
/// preference, and the requested backends skipped (with why). `gpu`: `None`
/// when the build has no WebGPU backend, else whether the device exists
/// (`Err` carries why not).
fn resolve_backends(
    backends: &[String],
    strict: bool,
    gpu: Option<Result<(), String>>,
) -> Result<(Vec<String>, Vec<String>), JsError> {
    let mut names: Vec<String> = Vec::new();
    let mut skipped = Vec::new();
    for b in backends {
        let name = match b.as_str() {
            // The optimised cpu backend (simd128 kernels); nodes it cannot
            // run fall back to the reference unless `strict`.
            "cpu" | "wasm" => "cpu",
            // The oracle, by name.
            "reference" => "reference",
            "webgpu" | "gpu" => match &gpu {
                Some(Ok(())) => "gpu",
                Some(Err(why)) if strict => return Err(JsError::new(&format!("webgpu is unavailable: {why}"))),
                Some(Err(why)) => {
                    skipped.push(format!("webgpu skipped: {why}"));
                    continue;
                }
                None if strict => {
                    return Err(JsError::new(
                        "the webgpu backend is not in this build (load the 'webgpu-full' variant)",
                    ));
                }
                None => {
                    skipped.push("webgpu skipped: not in this build (load the 'webgpu-full' variant)".into());
                    continue;
                }
            },
            other => {
                return Err(JsError::new(&format!("unknown backend '{other}' (use 'cpu', 'webgpu' or 'reference')")));
            }
        };
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    if names.is_empty() {
        if strict {
            return Err(JsError::new(&format!("no requested backend is available: {}", skipped.join("; "))));
        }
        names.push("cpu".into());
    }
    Ok((names, skipped))
}

/// Whether the WebGPU device exists (`None`: no WebGPU in this build). Never blocks.
fn gpu_status() -> Option<Result<(), String>> {
    #[cfg(all(feature = "webgpu", target_family = "wasm"))]
    return Some(strata::GpuBackendAdapter::new().map(|_| ()).map_err(|e| e.to_string()));
    #[cfg(not(all(feature = "webgpu", target_family = "wasm")))]
    None
}

/// Create the WebGPU device (once per page) by awaiting the adapter and
/// device requests, or replace it if it was lost (so after a "GPU device
/// lost" error, creating the session again recovers); then as [`gpu_status`].
async fn gpu_init() -> Option<Result<(), String>> {
    #[cfg(all(feature = "webgpu", target_family = "wasm"))]
    return Some(
        async {
            let gpu = strata::GpuBackendAdapter::init().await?;
            if gpu.is_lost() {
                gpu.recover().await?;
            }
            Ok::<(), strata::Error>(())
        }
        .await
        .map_err(|e| e.to_string()),
    );
    #[cfg(not(all(feature = "webgpu", target_family = "wasm")))]
    None
}

fn js_backend_name(engine: &str) -> &str {
    match engine {
        "gpu" => "webgpu",
        other => other,
    }
}

impl WasmSession {
    fn session(&self) -> Result<&Session, JsError> {
        self.inner.as_ref().ok_or_else(|| JsError::new("the session was released"))
    }
}

impl WasmSession {
    fn build(
        bytes: &[u8],
        backends: &[String],
        strict: bool,
        gpu: Option<Result<(), String>>,
    ) -> Result<Self, JsError> {
        let (names, skipped) = resolve_backends(backends, strict, gpu)?;
        let options = SessionOptions { backends: names, strict, ..Default::default() };
        let inner = Session::from_bytes(bytes, options).map_err(err)?;
        Ok(WasmSession { inner: Some(inner), skipped })
    }
}

#[wasm_bindgen]
impl WasmSession {
    /// Load a model from `.onnx` or `.strata` bytes. `backends`: names in
    /// order of preference (`cpu`, `webgpu`); `strict`: fail instead of
    /// falling back. Synchronous: `webgpu` is used only if an earlier
    /// [`WasmSession::create`] created the device (else it is skipped).
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8], backends: Vec<String>, strict: bool) -> Result<WasmSession, JsError> {
        Self::build(bytes, &backends, strict, gpu_status())
    }

    /// Load a model as the constructor does, first awaiting the WebGPU
    /// adapter and device when `backends` names `webgpu` (never blocking).
    pub async fn create(bytes: Vec<u8>, backends: Vec<String>, strict: bool) -> Result<WasmSession, JsError> {
        let gpu = if backends.iter().any(|b| b == "webgpu" || b == "gpu") { gpu_init().await } else { gpu_status() };
        Self::build(&bytes, &backends, strict, gpu)
    }

    /// The WebGPU adapter in use (name, API, device type), or `null` when
    /// no WebGPU device was created.
    #[wasm_bindgen(js_name = webgpuAdapter)]
    pub fn webgpu_adapter() -> Option<String> {
        #[cfg(all(feature = "webgpu", target_family = "wasm"))]
        return strata::GpuBackendAdapter::new().ok().map(|a| a.adapter_info());
        #[cfg(not(all(feature = "webgpu", target_family = "wasm")))]
        None
    }

    #[wasm_bindgen(getter, js_name = inputNames)]
    pub fn input_names(&self) -> Result<Vec<String>, JsError> {
        Ok(self.session()?.inputs().iter().map(|i| i.name.clone()).collect())
    }

    #[wasm_bindgen(getter, js_name = outputNames)]
    pub fn output_names(&self) -> Result<Vec<String>, JsError> {
        Ok(self.session()?.outputs().iter().map(|i| i.name.clone()).collect())
    }

    /// `[{name, type, dims}]` for the inputs (`dims` entries: number, symbol name, or null).
    #[wasm_bindgen(getter, js_name = inputMetadata)]
    pub fn input_metadata(&self) -> Result<Array, JsError> {
        Ok(metadata(self.session()?.inputs()))
    }

    #[wasm_bindgen(getter, js_name = outputMetadata)]
    pub fn output_metadata(&self) -> Result<Array, JsError> {
        Ok(metadata(self.session()?.outputs()))
    }

    /// `[{node, op, backend, reason}]`: where each node runs.
    pub fn placement(&self) -> Result<Array, JsError> {
        let a = Array::new();
        for p in self.session()?.placement() {
            let o = Object::new();
            set(&o, "node", p.node.as_str());
            set(&o, "op", p.op.as_str());
            set(&o, "backend", js_backend_name(&p.backend));
            let mut reasons: Vec<&str> = self.skipped.iter().map(String::as_str).collect();
            if !p.reason.is_empty() {
                reasons.push(&p.reason);
            }
            set(&o, "reason", reasons.join("; "));
            a.push(&o);
        }
        Ok(a)
    }

    /// Run. `feeds`: `{name: {type, dims, bytes: Uint8Array}}` (strings: `{type: 'string', dims, strings}`).
    /// Resolves to the same shape of object for the outputs.
    pub async fn run(&self, feeds: JsValue) -> Result<JsValue, JsError> {
        let session = self.session()?;
        let mut inputs: Vec<(String, Value)> = Vec::new();
        for info in session.inputs() {
            let v = get(&feeds, &info.name)?;
            if v.is_undefined() {
                return Err(JsError::new(&format!("missing input '{}'", info.name)));
            }
            inputs.push((info.name.clone(), tensor_from_js(&info.name, &v)?));
        }
        let refs: Vec<(&str, Value)> = inputs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let outs = session.run_async(&refs).await.map_err(err)?;
        let result = Object::new();
        for (name, v) in outs {
            set(&result, &name, tensor_to_js(&name, &v)?);
        }
        Ok(result.into())
    }

    /// Cumulative work counters since the session was created, for
    /// benchmarks: `{dispatches, submits, uploads, downloads}` (GPU compute
    /// dispatches and queue submissions; host↔device value transfers).
    pub fn counters(&self) -> Result<Object, JsError> {
        let session = self.session()?;
        let o = Object::new();
        for key in ["dispatches", "submits"] {
            let n: u64 = session.backend_counters().iter().filter(|(_, k, _)| *k == key).map(|(_, _, v)| v).sum();
            set(&o, key, n as f64);
        }
        let (up, down) = session.transfer_counts();
        set(&o, "uploads", up as f64);
        set(&o, "downloads", down as f64);
        Ok(o)
    }

    /// Nodes of a model (its main graph and control-flow branches), not
    /// counting `Constant` nodes, as loaded (before any folding or fusion):
    /// the denominator of dispatches per node in the browser benchmark.
    #[wasm_bindgen(js_name = modelNodeCount)]
    pub fn model_node_count(bytes: &[u8]) -> Result<u32, JsError> {
        let model = strata::load_model_bytes(bytes).map_err(err)?;
        let nodes = model.graphs.iter().flat_map(|g| &g.nodes);
        Ok(nodes.filter(|n| n.op.name() != "Constant").count() as u32)
    }

    /// Free the model and its memory now (the object is unusable afterwards).
    pub fn release(&mut self) {
        self.inner = None;
    }
}

fn metadata(io: &[strata::IoInfo]) -> Array {
    let a = Array::new();
    for i in io {
        let o = Object::new();
        set(&o, "name", i.name.as_str());
        match &i.ty {
            ValueType::Tensor { dtype, shape } => {
                set(&o, "type", type_name(*dtype));
                set(&o, "dims", dims_js(shape));
            }
            other => set(&o, "type", other.to_string()),
        }
        a.push(&o);
    }
    a
}

fn tensor_from_js(name: &str, v: &JsValue) -> Result<Value, JsError> {
    let ty =
        get(v, "type")?.as_string().ok_or_else(|| JsError::new(&format!("input '{name}': 'type' must be a string")))?;
    let dtype = parse_type(&ty).ok_or_else(|| JsError::new(&format!("input '{name}': unknown type '{ty}'")))?;
    let dims_v = get(v, "dims")?;
    let mut dims = Vec::new();
    for d in Array::from(&dims_v).iter() {
        let n = d
            .as_f64()
            .filter(|n| *n >= 0.0 && n.fract() == 0.0)
            .ok_or_else(|| JsError::new(&format!("input '{name}': dims must be non-negative integers")))?;
        dims.push(n as usize);
    }
    let t = if dtype == DType::String {
        let strings: Vec<String> =
            Array::from(&get(v, "strings")?).iter().map(|s| s.as_string().unwrap_or_default()).collect();
        Tensor::from_strings(dims, strings).map_err(|e| JsError::new(&format!("input '{name}': {e}")))?
    } else {
        let bytes = Uint8Array::new(&get(v, "bytes")?).to_vec();
        Tensor::from_bytes(dtype, dims, strata::ir::Buffer::from_vec(bytes))
            .map_err(|e| JsError::new(&format!("input '{name}': {e}")))?
    };
    Ok(Value::Tensor(t))
}

fn tensor_to_js(name: &str, v: &Value) -> Result<Object, JsError> {
    let t =
        v.as_tensor().ok_or_else(|| JsError::new(&format!("output '{name}' is not a tensor ({})", v.describe())))?;
    let o = Object::new();
    set(&o, "type", type_name(t.dtype()));
    let dims = Array::new();
    for &d in t.shape() {
        dims.push(&JsValue::from_f64(d as f64));
    }
    set(&o, "dims", dims);
    match (t.strings(), t.bytes()) {
        (Some(s), _) => set(&o, "strings", s.iter().map(|x| JsValue::from_str(x)).collect::<Array>()),
        (None, Some(b)) => set(&o, "bytes", Uint8Array::from(b.as_slice())),
        _ => {}
    }
    Ok(o)
}
