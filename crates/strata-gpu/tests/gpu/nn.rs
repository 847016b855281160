//! Matrix products, convolutions, pooling, resizing, reductions and normalisations.

use super::*;

#[test]
fn matmul_batched_broadcast() {
    let cases: [(&[usize], &[usize]); 5] = [
        (&[5, 7], &[7, 4]),
        (&[2, 1, 5, 7], &[3, 7, 4]),
        (&[7], &[3, 7, 4]),
        (&[2, 5, 7], &[7]),
        (&[33, 70], &[70, 19]),
    ];
    for (sa, sb) in cases {
        let m = Builder::new()
            .input("a", DType::F32)
            .input("b", DType::F32)
            .node(Op::Nn(NnOp::MatMul {}), &["a", "b"], &["y"])
            .output("y")
            .build();
        let k = sa[sa.len() - 1];
        check(m, vec![data(sa, 8, -1.0, 1.0), data(sb, 9, -1.0, 1.0)], reduction(k));
    }
}

#[test]
fn gemm_transposed_with_bias() {
    let m = Builder::new()
        .input("a", DType::F32)
        .weight("b", data(&[6, 9], 10, -1.0, 1.0))
        .weight("c", data(&[6], 11, -1.0, 1.0))
        .node(
            Op::Nn(NnOp::Gemm { alpha: 0.5, beta: 2.0, transA: 1, transB: 1, broadcast: None }),
            &["a", "b", "c"],
            &["y"],
        )
        .output("y")
        .build();
    check(m, vec![data(&[9, 5], 12, -1.0, 1.0)], reduction(9));
}

#[test]
fn conv_groups_pads_strides_dilations() {
    let conv = |pads: Vec<i64>, strides: Vec<i64>, dil: Vec<i64>, group: i64| {
        Op::Nn(NnOp::Conv {
            auto_pad: strata_ir::window::AutoPad::NotSet,
            dilations: Some(dil),
            group,
            kernel_shape: None,
            pads: Some(pads),
            strides: Some(strides),
        })
    };
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("w", data(&[6, 2, 3, 3], 13, -1.0, 1.0))
        .weight("b", data(&[6], 14, -1.0, 1.0))
        .node(conv(vec![1, 2, 0, 1], vec![2, 1], vec![1, 2], 2), &["x", "w", "b"], &["y"])
        .output("y")
        .build();
    check(m, vec![data(&[2, 4, 9, 11], 15, -1.0, 1.0)], reduction(2 * 9 + 1));
    // 1-D convolution with SAME_UPPER padding and no bias.
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("w", data(&[3, 2, 4], 16, -1.0, 1.0))
        .node(
            Op::Nn(NnOp::Conv {
                auto_pad: strata_ir::window::AutoPad::SameUpper,
                dilations: None,
                group: 1,
                kernel_shape: None,
                pads: None,
                strides: Some(vec![2]),
            }),
            &["x", "w"],
            &["y"],
        )
        .output("y")
        .build();
    check(m, vec![data(&[1, 2, 13], 17, -1.0, 1.0)], reduction(8));
    // Rank known from the input alone.
    let m = Builder::new()
        .input_rank("x", DType::F32, 4)
        .input("w", DType::F32)
        .node(conv(vec![0, 0, 0, 0], vec![1, 1], vec![1, 1], 1), &["x", "w"], &["y"])
        .output("y")
        .build();
    check(m, vec![data(&[1, 3, 5, 5], 31, -1.0, 1.0), data(&[2, 3, 2, 2], 32, -1.0, 1.0)], reduction(12));
}

#[test]
fn pooling() {
    let x = data(&[2, 3, 8, 7], 18, -1.0, 1.0);
    let mp = Op::Nn(NnOp::MaxPool {
        auto_pad: strata_ir::window::AutoPad::NotSet,
        ceil_mode: true,
        dilations: None,
        kernel_shape: vec![3, 2],
        pads: Some(vec![1, 0, 1, 1]),
        storage_order: 0,
        strides: Some(vec![2, 2]),
    });
    check(pool_model(mp), vec![x.clone()], EXACT);
    for include in [false, true] {
        let ap = Op::Nn(NnOp::AveragePool {
            auto_pad: strata_ir::window::AutoPad::NotSet,
            ceil_mode: false,
            count_include_pad: include,
            dilations: None,
            kernel_shape: vec![3, 3],
            pads: Some(vec![1, 1, 1, 1]),
            strides: Some(vec![1, 2]),
        });
        check(pool_model(ap), vec![x.clone()], reduction(9));
    }
    check(pool_model(Op::Nn(NnOp::GlobalAveragePool {})), vec![x], reduction(56));
}

#[test]
fn conv_transpose() {
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("w", data(&[4, 3, 3, 2], 34, -1.0, 1.0))
        .weight("b", data(&[6], 35, -1.0, 1.0))
        .node(
            Op::Nn(NnOp::ConvTranspose {
                auto_pad: strata_ir::window::AutoPad::NotSet,
                dilations: Some(vec![1, 2]),
                group: 2,
                kernel_shape: None,
                output_padding: Some(vec![1, 0]),
                output_shape: None,
                pads: Some(vec![1, 0, 0, 1]),
                strides: Some(vec![2, 3]),
            }),
            &["x", "w", "b"],
            &["y"],
        )
        .output("y")
        .build();
    check(m, vec![data(&[2, 4, 5, 4], 36, -1.0, 1.0)], reduction(2 * 6 + 1));
}

#[test]
fn resize_modes() {
    let x = data(&[1, 2, 5, 4], 37, -1.0, 1.0);
    for (mode, coord, nearest, scales) in [
        ("nearest", "asymmetric", "floor", [1.0f32, 1.0, 2.0, 3.0]),
        ("nearest", "half_pixel", "round_prefer_floor", [1.0, 1.0, 0.6, 1.7]),
        ("nearest", "tf_half_pixel_for_nn", "round_prefer_ceil", [1.0, 1.0, 2.0, 2.0]),
        ("nearest", "half_pixel_symmetric", "ceil", [1.0, 1.0, 1.3, 0.7]),
        ("linear", "pytorch_half_pixel", "round_prefer_floor", [1.0, 1.0, 0.2, 1.0]),
        ("linear", "half_pixel", "round_prefer_floor", [1.0, 1.0, 2.0, 2.0]),
        ("linear", "align_corners", "round_prefer_floor", [1.0, 1.0, 1.6, 2.5]),
        ("linear", "pytorch_half_pixel", "round_prefer_floor", [1.0, 1.0, 0.5, 1.5]),
        ("linear", "asymmetric", "round_prefer_floor", [1.0, 1.0, 3.0, 0.75]),
    ] {
        eprintln!("{mode} {coord} {nearest}");
        let op = Op::Nn(NnOp::Resize {
            antialias: false,
            axes: None,
            coordinate_transformation_mode: strata_ir::resample::Coord::from_name(coord).expect("mode"),
            cubic_coeff_a: -0.75,
            exclude_outside: false,
            extrapolation_value: 0.0,
            keep_aspect_ratio_policy: strata_ir::resample::AspectRatioPolicy::Stretch,
            mode: strata_ir::resample::ResizeMode::from_name(mode).expect("mode"),
            nearest_mode: strata_ir::resample::NearestMode::from_name(nearest).expect("mode"),
        });
        let m = Builder::new()
            .input("x", DType::F32)
            .weight("scales", TensorData::from_f32(vec![4], &scales).expect("scales"))
            .node(op, &["x", "", "scales"], &["y"])
            .output("y")
            .build();
        check(m, vec![x.clone()], Tol { atol: 1e-6, rtol: 1e-6 });
    }
    // `sizes` for the two spatial axes only.
    let op = Op::Nn(NnOp::Resize {
        antialias: false,
        axes: Some(vec![-2, -1]),
        coordinate_transformation_mode: strata_ir::resample::Coord::HalfPixel,
        cubic_coeff_a: -0.75,
        exclude_outside: false,
        extrapolation_value: 0.0,
        keep_aspect_ratio_policy: strata_ir::resample::AspectRatioPolicy::Stretch,
        mode: strata_ir::resample::ResizeMode::Linear,
        nearest_mode: strata_ir::resample::NearestMode::RoundPreferFloor,
    });
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("sizes", i64s(vec![2], &[7, 3]))
        .node(op, &["x", "", "", "sizes"], &["y"])
        .output("y")
        .build();
    check(m, vec![x], Tol { atol: 1e-6, rtol: 1e-6 });
}

// ---------------------------------------------------------------- reductions, normalisation

#[test]
fn reductions_and_softmax() {
    let x = data(&[3, 4, 5], 19, -2.0, 2.0);
    let axes = Some(vec![0, 2]);
    for (op, tol) in [
        (R::ReduceSum { axes: axes.clone(), keepdims: 1, noop_with_empty_axes: 0 }, reduction(15)),
        (R::ReduceMean { axes: axes.clone(), keepdims: 0, noop_with_empty_axes: 0 }, reduction(15)),
        (R::ReduceMax { axes: Some(vec![-1]), keepdims: 1, noop_with_empty_axes: 0 }, EXACT),
        (R::ReduceMin { axes: None, keepdims: 0, noop_with_empty_axes: 0 }, EXACT),
        (R::ReduceLogSumExp { axes: Some(vec![1]), keepdims: 1, noop_with_empty_axes: 0 }, TRANSC),
        (R::Softmax { axis: 1 }, TRANSC),
        (R::LogSoftmax { axis: -1 }, TRANSC),
    ] {
        eprintln!("{}", op.name());
        check(unary_model(Op::Reduce(op)), vec![x.clone()], tol);
    }
}

#[test]
fn arg_reductions() {
    // Ties included: values on a coarse grid.
    let v: Vec<f32> = (0..60).map(|i| ((i * 7) % 5) as f32).collect();
    let x = TensorData::from_f32(vec![3, 4, 5], &v).expect("valid");
    for (axis, keepdims, last) in [(0, 1, 0), (1, 0, 1), (-1, 1, 1), (2, 0, 0)] {
        for op in [
            R::ArgMax { axis, keepdims, select_last_index: last },
            R::ArgMin { axis, keepdims, select_last_index: last },
        ] {
            check(unary_model(Op::Reduce(op)), vec![x.clone()], EXACT);
        }
    }
}

#[test]
fn trilu_upper_lower() {
    let x = data(&[2, 4, 5], 40, -1.0, 1.0);
    for (upper, k) in [(1, 0), (0, 1), (1, -2), (0, -1)] {
        let m = Builder::new()
            .input("x", DType::F32)
            .weight("k", i64s(vec![], &[k]))
            .node(Op::Tensor(T::Trilu { upper }), &["x", "k"], &["y"])
            .output("y")
            .build();
        check(m, vec![x.clone()], EXACT);
    }
}

#[test]
fn layer_and_batch_norm() {
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("s", data(&[4, 6], 20, 0.5, 1.5))
        .weight("b", data(&[4, 6], 21, -1.0, 1.0))
        .node(Op::Nn(NnOp::LayerNormalization { axis: -2, epsilon: 1e-5, stash_type: 1 }), &["x", "s", "b"], &["y"])
        .output("y")
        .build();
    check(m, vec![data(&[3, 4, 6], 22, -2.0, 2.0)], Tol { atol: 1e-5, rtol: 1e-5 });
    // With the optional Mean and InvStdDev outputs, and RMSNormalization.
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("s", data(&[6], 41, 0.5, 1.5))
        .typed("mean", DType::F32)
        .typed("inv", DType::F32)
        .node(
            Op::Nn(NnOp::LayerNormalization { axis: -1, epsilon: 1e-5, stash_type: 1 }),
            &["x", "s"],
            &["y", "mean", "inv"],
        )
        .node(Op::Nn(NnOp::RMSNormalization { axis: -1, epsilon: 1e-5, stash_type: 1 }), &["x", "s"], &["r"])
        .output("y")
        .output("mean")
        .output("inv")
        .output("r")
        .build();
    check(m, vec![data(&[3, 4, 6], 42, -2.0, 2.0)], Tol { atol: 1e-5, rtol: 1e-5 });
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("s", data(&[3], 23, 0.5, 1.5))
        .weight("b", data(&[3], 24, -1.0, 1.0))
        .weight("mean", data(&[3], 25, -1.0, 1.0))
        .weight("var", data(&[3], 26, 0.5, 2.0))
        .node(
            Op::Nn(NnOp::BatchNormalization { epsilon: 1e-5, momentum: 0.9, training_mode: 0, spatial: None }),
            &["x", "s", "b", "mean", "var"],
            &["y"],
        )
        .output("y")
        .build();
    check(m, vec![data(&[2, 3, 4, 5], 27, -2.0, 2.0)], Tol { atol: 1e-6, rtol: 2e-6 });
}

/// InstanceNormalization (3-D spatial), GroupNormalization with per-channel
/// (opset 21) and per-group (opset 18) parameters, and LRN with odd and even
/// window sizes (the window reaches past both channel edges).
#[test]
fn instance_group_norm_and_lrn() {
    let norm = |op: NnOp, params: &[usize], x: &[usize], seed: u32| {
        let m = Builder::new()
            .input("x", DType::F32)
            .weight("s", data(params, seed, 0.5, 1.5))
            .weight("b", data(params, seed + 1, -1.0, 1.0))
            .node(Op::Nn(op), &["x", "s", "b"], &["y"])
            .output("y")
            .build();
        check(m, vec![data(x, seed + 2, -2.0, 3.0)], Tol { atol: 1e-5, rtol: 1e-5 });
    };
    norm(NnOp::InstanceNormalization { epsilon: 1e-5 }, &[3], &[2, 3, 4, 5, 6], 60);
    norm(NnOp::GroupNormalization { epsilon: 1e-3, num_groups: 2, stash_type: 1 }, &[6], &[2, 6, 7, 3], 70);
    norm(NnOp::GroupNormalization { epsilon: 1e-5, num_groups: 3, stash_type: 1 }, &[3], &[2, 6, 5], 80);
    for size in [1, 4, 5] {
        let m = Builder::new()
            .input("x", DType::F32)
            .node(Op::Nn(NnOp::LRN { alpha: 2e-3, beta: 0.6, bias: 1.5, size }), &["x"], &["y"])
            .output("y")
            .build();
        check(m, vec![data(&[2, 7, 3, 4], 90, -3.0, 3.0)], Tol { atol: 1e-6, rtol: 1e-5 });
    }
}

// The tiled products (64x64 output tiles, K in slices of 16): sizes that are
// not multiples of a tile or slice, K = 1, thin products, batch broadcasting.
#[test]
fn matmul_tiled_awkward_shapes() {
    let cases: [(&[usize], &[usize]); 7] = [
        (&[65, 1], &[1, 70]),
        (&[1, 300], &[300, 129]),
        (&[130, 17], &[17, 1]),
        (&[64, 64], &[64, 64]),
        (&[2, 3, 67, 33], &[33, 65]),
        (&[97, 45], &[2, 45, 130]),
        (&[3, 1, 70, 20], &[1, 2, 20, 66]),
    ];
    for (sa, sb) in cases {
        let m = Builder::new()
            .input("a", DType::F32)
            .input("b", DType::F32)
            .node(Op::Nn(NnOp::MatMul {}), &["a", "b"], &["y"])
            .output("y")
            .build();
        let k = sa[sa.len() - 1];
        check(m, vec![data(sa, 40, -1.0, 1.0), data(sb, 41, -1.0, 1.0)], reduction(k));
    }
}

#[test]
fn gemm_tiled_transposes_and_broadcast_c() {
    // (transA, transB, M, N, K, C shape)
    type Case = (i64, i64, usize, usize, usize, &'static [usize]);
    let cases: [Case; 4] = [
        (0, 0, 70, 130, 33, &[130]),
        (1, 0, 65, 66, 1, &[65, 1]),
        (0, 1, 129, 3, 200, &[129, 3]),
        (1, 1, 80, 90, 17, &[1]),
    ];
    for (ta, tb, m, n, k, cs) in cases {
        let a = if ta != 0 { [k, m] } else { [m, k] };
        let b = if tb != 0 { [n, k] } else { [k, n] };
        let model = Builder::new()
            .input("a", DType::F32)
            .weight("b", data(&b, 42, -1.0, 1.0))
            .weight("c", data(cs, 43, -1.0, 1.0))
            .node(
                Op::Nn(NnOp::Gemm { alpha: 0.75, beta: -1.5, transA: ta, transB: tb, broadcast: None }),
                &["a", "b", "c"],
                &["y"],
            )
            .output("y")
            .build();
        check(model, vec![data(&a, 44, -1.0, 1.0)], reduction(k + 2));
    }
}

// Convolutions with at least 8 output channels per group run as an implicit
// matrix product (`conv2d_gemm`): groups, strides, dilations, pads, 1-D, a
// long reduction, channel and position counts that are not tile multiples.
#[test]
fn conv_implicit_gemm() {
    let conv = |pads: Vec<i64>, strides: Vec<i64>, dil: Vec<i64>, group: i64| {
        Op::Nn(NnOp::Conv {
            auto_pad: strata_ir::window::AutoPad::NotSet,
            dilations: Some(dil),
            group,
            kernel_shape: None,
            pads: Some(pads),
            strides: Some(strides),
        })
    };
    // (x, w, pads, strides, dilations, group, bias)
    type Case = (&'static [usize], &'static [usize], Vec<i64>, Vec<i64>, Vec<i64>, i64, bool);
    let cases: [Case; 5] = [
        (&[2, 4, 9, 11], &[18, 2, 3, 3], vec![1, 2, 0, 1], vec![2, 1], vec![1, 2], 2, true),
        (&[1, 3, 20, 21], &[70, 3, 3, 3], vec![1, 1, 1, 1], vec![1, 1], vec![1, 1], 1, true),
        (&[2, 40, 37, 1], &[9, 40, 5, 1], vec![0, 0, 0, 0], vec![1, 1], vec![1, 1], 1, false),
        (&[1, 6, 17], &[24, 2, 4], vec![3, 1], vec![3], vec![2], 3, true),
        (&[1, 8, 10, 10], &[16, 8, 1, 1], vec![0, 0, 0, 0], vec![2, 2], vec![1, 1], 1, false),
    ];
    for (i, (xs, ws, pads, strides, dil, group, bias)) in cases.into_iter().enumerate() {
        let seed = 50 + 3 * i as u32;
        let mut b = Builder::new();
        b.input("x", DType::F32).weight("w", data(ws, seed, -1.0, 1.0));
        let mut ins = vec!["x", "w"];
        if bias {
            b.weight("b", data(&ws[..1], seed + 1, -1.0, 1.0));
            ins.push("b");
        }
        let m = b.node(conv(pads, strides, dil, group), &ins, &["y"]).output("y").build();
        let k: usize = ws[1..].iter().product();
        check(m, vec![data(xs, seed + 2, -1.0, 1.0)], reduction(k + 1));
    }
}
