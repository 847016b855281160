//! `CausalConvWithState` (opset 27): a causal depthwise 1-D convolution
//! that carries its last `k - 1` inputs from one call to the next.
//!
//! Each channel's sequence is prefixed with `past_state` (zeros when
//! omitted), convolved with that channel's kernel without further padding,
//! optionally passed through SiLU, and the last `k - 1` positions of the
//! prefixed sequence become `present_state`.

use super::floats;
use crate::bail;
use crate::error::KResult;
use crate::ops::Args;
use crate::ops::elementwise::sigmoid;
use crate::value::{Tensor, Value};
use strata_ir::ops::nn::ConvStateActivation;

/// Run `CausalConvWithState`; outputs are `output, present_state`.
pub fn causal_conv_with_state(activation: ConvStateActivation, args: &Args) -> KResult<Vec<Value>> {
    let silu = activation == ConvStateActivation::Silu;
    let input = args.tensor(0)?;
    let weight = args.tensor(1)?;
    let bias = args.opt_tensor(2)?;
    let past = args.opt_tensor(3)?;
    if input.rank() != 3 {
        bail!("input must have rank 3 (batch, channels, length), got {:?}", input.shape);
    }
    let (batch, channels, len) = (input.shape[0], input.shape[1], input.shape[2]);
    if weight.rank() != 3 || weight.shape[0] != channels || weight.shape[1] != 1 || weight.shape[2] == 0 {
        bail!("weight must have shape [{channels}, 1, k] with k >= 1, got {:?}", weight.shape);
    }
    let k = weight.shape[2];
    let x = floats(input, "input")?;
    let w = floats(weight, "weight")?;
    let bias = match bias {
        Some(b) => {
            if b.shape != [channels] {
                bail!("bias must have shape [{channels}], got {:?}", b.shape);
            }
            floats(b, "bias")?.to_vec()
        }
        None => vec![0.0; channels],
    };
    let past = match past {
        Some(p) => {
            if p.shape != [batch, channels, k - 1] {
                bail!("past_state must have shape [{batch}, {channels}, {}], got {:?}", k - 1, p.shape);
            }
            floats(p, "past_state")?.to_vec()
        }
        None => vec![0.0; batch * channels * (k - 1)],
    };

    let dt = input.dtype;
    let r = |v: f64| dt.round_float(v);
    let mut out = Vec::with_capacity(batch * channels * len);
    let mut present = Vec::with_capacity(batch * channels * (k - 1));
    for b in 0..batch {
        for c in 0..channels {
            // The channel's sequence prefixed with its carried state.
            let bc = b * channels + c;
            let mut padded = past[bc * (k - 1)..(bc + 1) * (k - 1)].to_vec();
            padded.extend_from_slice(&x[bc * len..(bc + 1) * len]);
            for l in 0..len {
                let mut acc = 0.0;
                for (tap, &wt) in w[c * k..(c + 1) * k].iter().enumerate() {
                    acc += wt * padded[l + tap];
                }
                let y = r(acc + bias[c]);
                out.push(if silu { r(y * sigmoid(y)) } else { y });
            }
            present.extend_from_slice(&padded[len..]);
        }
    }
    Ok(vec![
        Value::Tensor(Tensor::from_f(dt, input.shape.clone(), out)?),
        Value::Tensor(Tensor::from_f(dt, vec![batch, channels, k - 1], present)?),
    ])
}
