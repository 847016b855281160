//! Classify one input with a real model through the public `strata` API,
//! printing the top class as `top class=<index> score=<score>` (the same
//! line as `examples/c-classify`, so the two outputs compare as text).
//!
//! Usage: `rust-classify MODEL INPUT.npy` (MODEL: `.onnx` or `.strata`;
//! INPUT: a float32 `.npy` array for the model's first input).

use strata::{Session, SessionOptions, Value};

fn main() {
    if let Err(e) = run() {
        eprintln!("rust-classify: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input] = args.as_slice() else {
        return Err("usage: rust-classify MODEL INPUT.npy".into());
    };
    let session = Session::from_path(model, SessionOptions::default())?;
    let x = strata::npy::read(&std::fs::read(input)?)?;
    let name = session.inputs()[0].name.clone();
    let outputs = session.run(&[(name.as_str(), Value::Tensor(x))])?;
    let scores = outputs[0].1.as_tensor().ok_or("the first output is not a tensor")?.to_f64_vec();
    let (best, score) = scores
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bs), (i, &s)| if s > bs { (i, s) } else { (bi, bs) });
    // Scores are float32; print them as the C example does (`%.6f` of the float).
    println!("top class={best} score={:.6}", score as f32);
    Ok(())
}
