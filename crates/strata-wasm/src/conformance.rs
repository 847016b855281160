//! The ONNX node suite in the browser: `runCase` runs one conformance case
//! (model bytes plus the serialized `TensorProto`/`SequenceProto`/
//! `OptionalProto` inputs and expected outputs of each data set) on the
//! chosen backends and compares the outputs with the same rule as the native
//! suite (`strata_conformance::compare_values` with the ONNX runner's
//! tolerance: rtol 1e-3, atol 1e-7, exact shape and dtype, NaN matches NaN).
//!
//! Used by `web/conformance.html`; the case list and the expectation
//! manifests come from `cargo xtask serve`.

use std::sync::Once;

use js_sys::{Array, Object, Uint8Array};
use strata::Value;
use strata_conformance::{SuiteKind, compare_values};
use wasm_bindgen::prelude::*;

use crate::{WasmSession, get, set};

/// Record panic messages on `globalThis.strataLastPanic` before the module
/// aborts, so the page can report what went wrong (the previous hook still
/// runs).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = js_sys::Reflect::set(
                &js_sys::global(),
                &JsValue::from_str("strataLastPanic"),
                &JsValue::from_str(&info.to_string()),
            );
            previous(info);
        }));
    });
}

/// `{inputs, outputs}` of one data set: arrays of serialized protobuf values.
fn byte_list(data_set: &JsValue, key: &str) -> Result<Vec<Vec<u8>>, JsError> {
    let v = get(data_set, key)?;
    if !Array::is_array(&v) {
        return Err(JsError::new(&format!("data set '{key}' must be an array of Uint8Array")));
    }
    Array::from(&v)
        .iter()
        .map(|b| {
            b.dyn_into::<Uint8Array>()
                .map(|a| a.to_vec())
                .map_err(|_| JsError::new(&format!("data set '{key}' must be an array of Uint8Array")))
        })
        .collect()
}

enum Outcome {
    Pass,
    Fail(String),
    Error(String),
}

async fn run(ws: &WasmSession, data_sets: &Array) -> Result<Outcome, JsError> {
    let session = ws.session()?;
    if data_sets.length() == 0 {
        return Ok(Outcome::Error("case has no test data sets".into()));
    }
    for ds in data_sets.iter() {
        let ds_name = get(&ds, "name")?.as_string().unwrap_or_else(|| "test_data_set".into());
        let inputs = byte_list(&ds, "inputs")?;
        let outputs = byte_list(&ds, "outputs")?;
        let mut feeds: Vec<(String, Value)> = Vec::new();
        for (i, bytes) in inputs.iter().enumerate() {
            let Some(info) = session.inputs().get(i) else {
                return Ok(Outcome::Error(format!("{ds_name}: more input files than model inputs")));
            };
            match strata_onnx::decode_value(bytes, &info.ty) {
                Ok(v) => feeds.push((info.name.clone(), v)),
                Err(e) => return Ok(Outcome::Error(format!("{ds_name}: input {i}: {e}"))),
            }
        }
        let refs: Vec<(&str, Value)> = feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let outs = match session.run_async(&refs).await {
            Ok(o) => o,
            Err(e) => return Ok(Outcome::Error(e.to_string())),
        };
        if outs.len() != outputs.len() {
            return Ok(Outcome::Fail(format!("{ds_name}: {} outputs, expected {}", outs.len(), outputs.len())));
        }
        for (i, bytes) in outputs.iter().enumerate() {
            let info = &session.outputs()[i];
            let expected = match strata_onnx::decode_value(bytes, &info.ty) {
                Ok(v) => v,
                Err(e) => return Ok(Outcome::Error(format!("{ds_name}: expected output {i}: {e}"))),
            };
            if let Err(m) = compare_values(&outs[i].1, &expected, SuiteKind::OnnxNode.tolerance()) {
                return Ok(Outcome::Fail(format!("{ds_name}: output '{}': {m}", info.name)));
            }
        }
    }
    Ok(Outcome::Pass)
}

/// Run one ONNX node case and compare it with its expected outputs.
///
/// `model`: the `.onnx` bytes; `dataSets`: `[{name, inputs: Uint8Array[],
/// outputs: Uint8Array[]}]` (the `input_N.pb` / `output_N.pb` files in
/// order); `backends`/`strict` as for `WasmSession.create` (which awaits the
/// WebGPU device when `webgpu` is requested). Resolves to `{status: 'pass' |
/// 'fail' | 'error', message, backends}` where `backends` lists the backends
/// the placement used. A case that cannot load or run is
/// an `error` result, not an exception; only malformed arguments throw.
#[wasm_bindgen(js_name = runCase)]
pub async fn run_case(
    model: Vec<u8>,
    data_sets: Array,
    backends: Vec<String>,
    strict: bool,
) -> Result<Object, JsError> {
    install_panic_hook();
    let result = Object::new();
    let (outcome, used) = match WasmSession::create(model, backends, strict).await {
        Err(e) => {
            let message: String = JsValue::from(e).unchecked_into::<js_sys::Error>().message().into();
            (Outcome::Error(message), Array::new())
        }
        Ok(ws) => {
            let used = Array::new();
            for p in ws.placement()?.iter() {
                let b = get(&p, "backend")?;
                if !used.includes(&b, 0) {
                    used.push(&b);
                }
            }
            (run(&ws, &data_sets).await?, used)
        }
    };
    let (status, message) = match outcome {
        Outcome::Pass => ("pass", String::new()),
        Outcome::Fail(m) => ("fail", m),
        Outcome::Error(m) => ("error", m),
    };
    set(&result, "status", status);
    set(&result, "message", message);
    set(&result, "backends", used);
    Ok(result)
}
