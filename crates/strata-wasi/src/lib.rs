//! The Strata engine as a WASI command, and the wire protocol it speaks.
//!
//! Owns the guest side of sandboxed loading: the `strata-wasi` binary is
//! built for `wasm32-wasip1` and run under wasmtime by `strata-sandbox`
//! (it also builds and runs natively, reading standard input and writing
//! standard output the same way). It reads one [`Request`] from standard
//! input (the model bytes, named inputs and session limits), parses,
//! validates and runs the model on the reference backend, and writes one
//! [`Response`] to standard output: the outputs by name, or the engine's
//! error message.
//!
//! The encoding is self-describing and little-endian: a request is the magic
//! [`REQUEST_MAGIC`], a `u32` protocol version, a `u64` header length, the
//! postcard-encoded [`RequestHeader`] and then the raw model bytes (so the
//! guest reads the model in place, without a second copy); a response is a
//! postcard-encoded [`Response`]. Tensors travel as element type, shape and
//! raw little-endian bytes (the IR's own serde form of a tensor).

use serde::{Deserialize, Serialize};
use strata::{Session, SessionOptions, Tensor, Value, ValueType};

/// First bytes of every request.
pub const REQUEST_MAGIC: &[u8; 4] = b"STRQ";
/// Version of the protocol; the guest refuses requests of another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// A value on the wire: the serialisable form of [`strata::Value`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireValue {
    /// A dense tensor (element type, shape, raw little-endian bytes or strings).
    Tensor(Tensor),
    /// A sequence with its element type.
    Sequence { elem: ValueType, items: Vec<WireValue> },
    /// An optional with the type of its value.
    Optional { elem: ValueType, value: Option<Box<WireValue>> },
}

impl WireValue {
    /// The wire form of a host value, or `None` for a kind of value this
    /// protocol version does not carry.
    pub fn from_value(v: &Value) -> Option<WireValue> {
        Some(match v {
            Value::Tensor(t) => WireValue::Tensor(t.clone()),
            Value::Sequence { elem, items } => WireValue::Sequence {
                elem: elem.clone(),
                items: items.iter().map(WireValue::from_value).collect::<Option<_>>()?,
            },
            Value::Optional { elem, value } => WireValue::Optional {
                elem: elem.clone(),
                value: match value {
                    Some(v) => Some(Box::new(WireValue::from_value(v)?)),
                    None => None,
                },
            },
            _ => return None,
        })
    }

    /// The host value.
    pub fn into_value(self) -> Value {
        match self {
            WireValue::Tensor(t) => Value::Tensor(t),
            WireValue::Sequence { elem, items } => {
                Value::Sequence { elem, items: items.into_iter().map(WireValue::into_value).collect() }
            }
            WireValue::Optional { elem, value } => {
                Value::Optional { elem, value: value.map(|v| Box::new(v.into_value())) }
            }
        }
    }
}

/// Session limits and options the guest applies (the engine's own limits,
/// inside the sandbox's memory cap and deadline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestOptions {
    /// [`SessionOptions::max_tensor_elements`].
    pub max_tensor_elements: u64,
    /// [`SessionOptions::max_nodes`].
    pub max_nodes: u64,
    /// [`SessionOptions::max_loop_iterations`].
    pub max_loop_iterations: u64,
    /// [`SessionOptions::fold_constants`].
    pub fold_constants: bool,
    /// [`SessionOptions::dims`].
    pub dims: Vec<(String, u64)>,
}

impl Default for GuestOptions {
    fn default() -> Self {
        GuestOptions::from_session_options(&SessionOptions::default())
    }
}

impl GuestOptions {
    /// The guest options matching a native session's options (backends,
    /// `strict` and `target_nodes` do not apply: the guest runs the
    /// reference backend only).
    pub fn from_session_options(o: &SessionOptions) -> GuestOptions {
        GuestOptions {
            max_tensor_elements: o.max_tensor_elements as u64,
            max_nodes: o.max_nodes as u64,
            max_loop_iterations: o.max_loop_iterations,
            fold_constants: o.fold_constants,
            dims: o.dims.clone(),
        }
    }

    /// The session options the guest runs with.
    pub fn session_options(&self) -> SessionOptions {
        // The guest runs the reference backend only (the same bits on every
        // target); `strict` and `target_nodes` stay off.
        SessionOptions {
            backends: vec!["reference".into()],
            max_tensor_elements: usize::try_from(self.max_tensor_elements).unwrap_or(usize::MAX),
            max_nodes: usize::try_from(self.max_nodes).unwrap_or(usize::MAX),
            max_loop_iterations: self.max_loop_iterations,
            fold_constants: self.fold_constants,
            dims: self.dims.clone(),
            ..SessionOptions::default()
        }
    }
}

/// Everything in a request except the model bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestHeader {
    /// Session options.
    pub options: GuestOptions,
    /// Named inputs.
    pub inputs: Vec<(String, WireValue)>,
}

/// A decoded request: the header and the model bytes it was sent with.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    /// Options and inputs.
    pub header: RequestHeader,
    /// The model (ONNX protobuf or `.strata` artifact).
    pub model: &'a [u8],
}

/// Which stage of the engine refused the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorStage {
    /// The request itself could not be decoded.
    Protocol,
    /// Parsing or validating the model (limits on declared sizes and node count included).
    Load,
    /// Running the model (inputs that do not match, kernel errors, runtime limits).
    Run,
}

/// The guest's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Every output by name, in model order.
    Outputs(Vec<(String, WireValue)>),
    /// The engine refused the model or its inputs; `message` is the engine's message.
    Error { stage: ErrorStage, message: String },
}

/// Why request or response bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Encode a request: magic, version, header length, header, model bytes.
pub fn encode_request(header: &RequestHeader, model: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let head = postcard::to_allocvec(header).map_err(|e| ProtocolError(format!("cannot encode request: {e}")))?;
    let mut out = Vec::with_capacity(16 + head.len() + model.len());
    out.extend_from_slice(REQUEST_MAGIC);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(model);
    Ok(out)
}

/// Decode a request; the model bytes are borrowed from `bytes`.
pub fn decode_request(bytes: &[u8]) -> Result<Request<'_>, ProtocolError> {
    let err = |m: String| ProtocolError(format!("bad request: {m}"));
    if bytes.len() < 16 || &bytes[..4] != REQUEST_MAGIC {
        return Err(err("no request magic".into()));
    }
    let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if version != PROTOCOL_VERSION {
        return Err(err(format!("protocol version {version}, this guest speaks {PROTOCOL_VERSION}")));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let head_len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| err("header length overflows".into()))?;
    let end =
        16usize.checked_add(head_len).filter(|&e| e <= bytes.len()).ok_or_else(|| err("truncated header".into()))?;
    let header: RequestHeader = postcard::from_bytes(&bytes[16..end]).map_err(|e| err(e.to_string()))?;
    Ok(Request { header, model: &bytes[end..] })
}

/// Encode a response.
pub fn encode_response(r: &Response) -> Result<Vec<u8>, ProtocolError> {
    postcard::to_allocvec(r).map_err(|e| ProtocolError(format!("cannot encode response: {e}")))
}

/// Decode a response.
pub fn decode_response(bytes: &[u8]) -> Result<Response, ProtocolError> {
    postcard::from_bytes(bytes).map_err(|e| ProtocolError(format!("bad response: {e}")))
}

/// Answer one request: parse, validate and run the model on the reference
/// backend. Errors of the engine become [`Response::Error`] with its message.
pub fn handle(bytes: &[u8]) -> Response {
    let request = match decode_request(bytes) {
        Ok(r) => r,
        Err(e) => return Response::Error { stage: ErrorStage::Protocol, message: e.to_string() },
    };
    let session = match Session::from_bytes(request.model, request.header.options.session_options()) {
        Ok(s) => s,
        Err(e) => return Response::Error { stage: ErrorStage::Load, message: e.to_string() },
    };
    let (names, values): (Vec<String>, Vec<WireValue>) = request.header.inputs.into_iter().unzip();
    let refs: Vec<(&str, Value)> =
        names.iter().map(String::as_str).zip(values.into_iter().map(WireValue::into_value)).collect();
    let outputs = match session.run(&refs) {
        Ok(o) => o,
        Err(e) => return Response::Error { stage: ErrorStage::Run, message: e.to_string() },
    };
    drop(refs);
    let mut wire = Vec::with_capacity(outputs.len());
    for (name, v) in outputs {
        match WireValue::from_value(&v) {
            Some(w) => wire.push((name, w)),
            None => {
                return Response::Error {
                    stage: ErrorStage::Run,
                    message: format!("output '{name}' ({}) cannot be sent back by this protocol", v.describe()),
                };
            }
        }
    }
    Response::Outputs(wire)
}

/// [`handle`], encoded: the bytes the guest writes to standard output.
pub fn serve(bytes: &[u8]) -> Vec<u8> {
    let response = handle(bytes);
    encode_response(&response).unwrap_or_else(|e| {
        let fallback = Response::Error { stage: ErrorStage::Run, message: e.to_string() };
        // A response holding only a string always encodes.
        encode_response(&fallback).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(model: &[u8], inputs: Vec<(String, WireValue)>) -> Vec<u8> {
        encode_request(&RequestHeader { options: GuestOptions::default(), inputs }, model).unwrap()
    }

    #[test]
    fn runs_the_example_model_like_a_native_session() {
        let model = strata::ir::artifact::write(&strata::examples::tiny_mlp()).unwrap();
        let x = Tensor::from_f32(vec![1, 4], &[1.0, -2.0, 0.5, 3.0]).unwrap();
        let bytes = serve(&request(&model, vec![("x".into(), WireValue::Tensor(x.clone()))]));
        let Response::Outputs(outs) = decode_response(&bytes).unwrap() else { panic!("expected outputs") };
        // The guest runs the reference backend (native sessions default to cpu).
        let native = Session::from_bytes(&model, GuestOptions::default().session_options())
            .unwrap()
            .run(&[("x", Value::Tensor(x))]);
        let native: Vec<(String, WireValue)> =
            native.unwrap().iter().map(|(n, v)| (n.clone(), WireValue::from_value(v).unwrap())).collect();
        assert_eq!(outs, native);
    }

    #[test]
    fn engine_and_protocol_errors_come_back_as_messages() {
        let model = strata::ir::artifact::write(&strata::examples::tiny_mlp()).unwrap();
        let r = decode_response(&serve(&request(&model, vec![]))).unwrap();
        assert!(
            matches!(&r, Response::Error { stage: ErrorStage::Run, message } if message.contains("missing input 'x'")),
            "{r:?}"
        );
        let r = decode_response(&serve(&request(b"not a model", vec![]))).unwrap();
        assert!(
            matches!(&r, Response::Error { stage: ErrorStage::Load, message } if message.contains("cannot")),
            "{r:?}"
        );
        let r = decode_response(&serve(b"garbage")).unwrap();
        assert!(matches!(&r, Response::Error { stage: ErrorStage::Protocol, .. }), "{r:?}");
        let mut wrong_version = request(&model, vec![]);
        wrong_version[4] = 9;
        let r = decode_response(&serve(&wrong_version)).unwrap();
        assert!(matches!(&r, Response::Error { message, .. } if message.contains("version 9")), "{r:?}");
    }
}
