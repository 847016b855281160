//! Fuzz the model loaders: arbitrary bytes as an ONNX protobuf or a
//! `.strata` artifact must give a model or an error, never a panic, abort or
//! unbounded allocation. Loaded models are also run once on generated data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::{Session, SessionOptions, Tensor, Value, ValueType};

fuzz_target!(|data: &[u8]| {
    let opts = SessionOptions { max_tensor_elements: 1 << 16, ..Default::default() };
    let Ok(s) = Session::from_bytes(data, opts.clone()) else { return };
    // Round-trip through the artifact format too.
    if let Ok(bytes) = strata::ir::artifact::write(s.model()) {
        let _ = Session::from_bytes(&bytes, opts);
    }
    let mut feeds = Vec::new();
    for i in s.inputs() {
        let ValueType::Tensor { dtype, shape } = &i.ty else { return };
        let dims: Vec<usize> = shape.as_deref().unwrap_or(&[]).iter().map(|d| match d {
            strata::Dim::Known(n) if *n < 64 => *n as usize,
            _ => 1,
        }).collect();
        let n: usize = dims.iter().product();
        let Ok(t) = (if *dtype == strata::DType::String {
            Tensor::from_strings(dims, vec![String::new(); n])
        } else {
            Tensor::from_f64(*dtype, dims, &vec![0.5; if dtype.is_complex() { 2 * n } else { n }])
        }) else { return };
        feeds.push((i.name.clone(), Value::Tensor(t)));
    }
    let refs: Vec<(&str, Value)> = feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let _ = s.run(&refs);
});
