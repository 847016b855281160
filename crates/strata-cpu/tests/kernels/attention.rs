//! Attention-family kernels (Attention, FlexAttention, RotaryEmbedding,
//! LinearAttention, CausalConvWithState, SwiGLU) against the reference.

use super::*;

fn attention(is_causal: bool, heads: Option<(i64, i64)>, mode: i64, softcap: f32, window: (i64, i64)) -> Op {
    Op::Nn(N::Attention {
        is_causal: i64::from(is_causal),
        q_num_heads: heads.map(|h| h.0),
        kv_num_heads: heads.map(|h| h.1),
        qk_matmul_output_mode: mode,
        scale: None,
        softcap,
        softmax_precision: None,
        left_window_size: window.0,
        right_window_size: window.1,
    })
}

#[test]
fn attention_matches_the_reference() {
    // 4-D, grouped-query (4 query heads over 2 key/value heads), causal,
    // a boolean mask broadcast over heads, a KV cache, every qk output mode;
    // 5 new queries (the GEMM path) and 1 (decoding: the direct path).
    for sq in [5, 1] {
        let (b, hq, hkv, past, d, dv) = (2, 4, 2, 3, 8, 6);
        let q = data(&[b, hq, sq, d], 80, -1.0, 1.0);
        let k = data(&[b, hkv, sq, d], 81, -1.0, 1.0);
        let v = data(&[b, hkv, sq, dv], 82, -1.0, 1.0);
        let keep: Vec<u8> = (0..b * sq * (past + sq)).map(|i| u8::from(i % 7 != 3)).collect();
        let mask = TensorData::from_bytes(DType::Bool, vec![b, 1, sq, past + sq], strata_ir::Buffer::from_vec(keep))
            .expect("valid");
        let pk = data(&[b, hkv, past, d], 83, -1.0, 1.0);
        let pv = data(&[b, hkv, past, dv], 84, -1.0, 1.0);
        let outs = [("y", DType::F32), ("pk_out", DType::F32), ("pv_out", DType::F32), ("qk", DType::F32)];
        for (mode, softcap, window) in [(0, 0.0, (-1, -1)), (1, 2.0, (-1, -1)), (2, 0.0, (2, -1)), (3, 1.5, (-1, 0))] {
            let m = model(
                attention(true, None, mode, softcap, window),
                &[("q", &q), ("k", &k), ("v", &v), ("mask", &mask)],
                &[("pk", pk.clone()), ("pv", pv.clone())],
                &["q", "k", "v", "mask", "pk", "pv"],
                &outs,
            );
            let inputs = [q.clone(), k.clone(), v.clone(), mask.clone()];
            let one = check_with(m.clone(), &inputs, d + past + sq, 1);
            let other = check_with(m, &inputs, d + past + sq, 3);
            assert_eq!(other, one, "sq {sq}, mode {mode}: thread count changed the bits");
        }
    }
    // 3-D inputs with head counts, a float mask of rank 2, no cache.
    let q3 = data(&[2, 6, 3 * 4], 85, -2.0, 2.0);
    let k3 = data(&[2, 7, 4], 86, -2.0, 2.0);
    let v3 = data(&[2, 7, 5], 87, -2.0, 2.0);
    let fmask = data(&[6, 7], 88, -1.0, 0.0);
    let m = model(
        attention(false, Some((3, 1)), 0, 0.0, (-1, -1)),
        &[("q", &q3), ("k", &k3), ("v", &v3), ("mask", &fmask)],
        &[],
        &["q", "k", "v", "mask"],
        &[("y", DType::F32)],
    );
    check(m, &[q3, k3, v3, fmask], 4 + 7);
    // Bfloat16 and float16: every intermediate rounded where the reference
    // rounds it, so the results are within one unit of its last place.
    for dt in [DType::BF16, DType::F16] {
        let narrow = |t: &TensorData| TensorData::from_f64(dt, t.shape().to_vec(), &t.to_f64_vec()).expect("valid");
        let (q, k, v) = (
            narrow(&data(&[1, 4, 3, 8], 92, -1.0, 1.0)),
            narrow(&data(&[1, 2, 4, 8], 93, -1.0, 1.0)),
            narrow(&data(&[1, 2, 4, 8], 94, -1.0, 1.0)),
        );
        let m = model(
            attention(true, None, 3, 0.0, (-1, -1)),
            &[("q", &q), ("k", &k), ("v", &v)],
            &[],
            &["q", "k", "v", "", "", "", ""],
            &[("y", dt), ("pk", dt), ("pv", dt), ("qk", dt)],
        );
        let tol = Tol { atol: 1e-6, rtol: if dt == DType::BF16 { 1.0 / 128.0 } else { 1.0 / 1024.0 } };
        check_against_reference(&Cpu(CpuBackend::new(2)), m, &[q, k, v], tol, Floats::All);
    }
    // FlexAttention without modifier subgraphs: plain grouped-query attention.
    let (q, k, v) =
        (data(&[2, 4, 3, 8], 89, -1.0, 1.0), data(&[2, 2, 5, 8], 90, -1.0, 1.0), data(&[2, 2, 5, 3], 91, -1.0, 1.0));
    let flex = Op::Nn(N::FlexAttention { prob_mod: None, scale: Some(0.3), score_mod: None, softmax_precision: None });
    let m = model(flex, &[("q", &q), ("k", &k), ("v", &v)], &[], &["q", "k", "v"], &[("y", DType::F32)]);
    check(m, &[q, k, v], 8 + 5);
}

#[test]
fn rotary_embedding_matches_the_reference() {
    let rotary = |interleaved: i64, num_heads: Option<i64>, dim: i64| {
        Op::Nn(N::RotaryEmbedding { interleaved, num_heads, rotary_embedding_dim: dim })
    };
    // 3-D input with position ids into a 2-D cache, half the head rotated.
    let x = data(&[2, 5, 3 * 8], 90, -1.0, 1.0);
    let cos = data(&[11, 2], 91, -1.0, 1.0);
    let sin = data(&[11, 2], 92, -1.0, 1.0);
    let pos = ints(&[2, 5], &[0, 1, 2, 3, 4, 10, 9, 3, 3, 0]);
    let m = model(
        rotary(0, Some(3), 4),
        &[("x", &x), ("pos", &pos)],
        &[("cos", cos), ("sin", sin)],
        &["x", "cos", "sin", "pos"],
        &[("y", DType::F32)],
    );
    check(m, &[x, pos], 2);
    // 4-D interleaved, whole head, a per-position cache.
    let x = data(&[2, 3, 5, 6], 93, -1.0, 1.0);
    let cos = data(&[2, 5, 3], 94, -1.0, 1.0);
    let sin = data(&[2, 5, 3], 95, -1.0, 1.0);
    let m = model(
        rotary(1, None, 0),
        &[("x", &x), ("cos", &cos), ("sin", &sin)],
        &[],
        &["x", "cos", "sin"],
        &[("y", DType::F32)],
    );
    check(m, &[x, cos, sin], 2);
}

#[test]
fn linear_attention_conv_state_and_swiglu_match_the_reference() {
    use strata_ir::ops::nn::{ConvStateActivation, LinearUpdate};
    // LinearAttention, gated delta rule, grouped heads, with a past state.
    let (b, t, hq, hkv, dk, dv) = (2, 6, 4, 2, 3, 5);
    let q = data(&[b, t, hq * dk], 100, -1.0, 1.0);
    let k = data(&[b, t, hkv * dk], 101, -1.0, 1.0);
    let v = data(&[b, t, hkv * dv], 102, -1.0, 1.0);
    let past = data(&[b, hkv, dk, dv], 103, -1.0, 1.0);
    let decay = data(&[b, t, hkv * dk], 104, -0.5, 0.0);
    let beta = data(&[b, t, hkv], 105, 0.0, 1.0);
    let op = Op::Nn(N::LinearAttention {
        chunk_size: 64,
        kv_num_heads: hkv as i64,
        q_num_heads: hq as i64,
        scale: 0.0,
        update_rule: LinearUpdate::GatedDelta,
    });
    let m = model(
        op,
        &[("q", &q), ("k", &k), ("v", &v)],
        &[("past", past), ("decay", decay), ("beta", beta)],
        &["q", "k", "v", "past", "decay", "beta"],
        &[("y", DType::F32), ("state", DType::F32)],
    );
    check(m, &[q, k, v], dk + t);
    // CausalConvWithState with SiLU, bias and a carried state.
    let x = data(&[2, 3, 7], 106, -2.0, 2.0);
    let op = Op::Nn(N::CausalConvWithState { activation: ConvStateActivation::Silu });
    let m = model(
        op,
        &[("x", &x)],
        &[
            ("w", data(&[3, 1, 4], 107, -1.0, 1.0)),
            ("b", data(&[3], 108, -1.0, 1.0)),
            ("s", data(&[2, 3, 3], 109, -1.0, 1.0)),
        ],
        &["x", "w", "b", "s"],
        &[("y", DType::F32), ("state", DType::F32)],
    );
    check(m, &[x], 4);
    // SwiGLU.
    let (a, b) = (data(&[3, 40], 112, -4.0, 4.0), data(&[3, 40], 113, -2.0, 2.0));
    let m = model(Op::Nn(N::SwiGLU { alpha: 1.5 }), &[("a", &a), ("b", &b)], &[], &["a", "b"], &[("y", DType::F32)]);
    check(m, &[a, b], 4);
}

#[test]
fn attention_with_a_bad_mask_fails_with_the_node_named() {
    let q = data(&[1, 2, 3, 4], 110, -1.0, 1.0);
    let mask = data(&[3, 3, 3], 111, -1.0, 0.0);
    let m = model(
        attention(false, None, 0, 0.0, (-1, -1)),
        &[("q", &q), ("mask", &mask)],
        &[],
        &["q", "q", "q", "mask"],
        &[("y", DType::F32)],
    );
    let compiled = CpuBackend::new(2).compile(Arc::new(m)).expect("compiles");
    let ins = [CpuTensor::from_host(&q).expect("uploads"), CpuTensor::from_host(&mask).expect("uploads")];
    let e = compiled.run(&[&ins[0], &ins[1]]).expect_err("fails").to_string();
    assert!(e.contains("'n0'") && e.contains("attn_mask"), "{e}");
}
