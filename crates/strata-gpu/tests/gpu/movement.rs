//! Data movement, exact against the reference.

use super::*;
use strata_ir::ops::tensor::{BlockOrder, PadMode};

#[test]
fn reshape_then_split_is_exact() {
    let x = data(&[2, 3, 4, 5], 28, -5.0, 5.0);
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("shape", i64s(vec![3], &[6, -1, 5]))
        .weight("split", i64s(vec![2], &[1, 3]))
        .node(Op::Tensor(T::Reshape { allowzero: 0, shape: None }), &["x", "shape"], &["r"])
        .node(Op::Tensor(T::Split { axis: 1, num_outputs: None, split: None }), &["r", "split"], &["s0", "s1"])
        .output("s0")
        .output("s1")
        .build();
    check(m, vec![x.clone()], EXACT);
}

#[test]
fn movement_ops_one_by_one() {
    let x = data(&[2, 3, 4, 5], 29, -5.0, 5.0);
    let single = |op: Op, extra: Vec<(&str, TensorData)>| {
        let mut b = Builder::new();
        b.input("x", DType::F32);
        let mut ins = vec!["x".to_string()];
        for (name, t) in extra {
            b.weight(name, t);
            ins.push(name.to_string());
        }
        let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
        b.typed("y", DType::F32).node(op, &refs, &["y"]).output("y").build()
    };
    let cases: Vec<(&str, Model)> = vec![
        ("transpose", single(Op::Tensor(T::Transpose { perm: Some(vec![2, 0, 3, 1]) }), vec![])),
        (
            "slice",
            single(
                Op::Tensor(T::Slice { starts: None, ends: None, axes: None }),
                vec![
                    ("starts", i64s(vec![2], &[3, -1])),
                    ("ends", i64s(vec![2], &[0, -100])),
                    ("axes", i64s(vec![2], &[1, 2])),
                    ("steps", i64s(vec![2], &[-1, -2])),
                ],
            ),
        ),
        (
            "pad-reflect",
            single(
                Op::Tensor(T::Pad { mode: PadMode::Reflect, pads: None, value: None }),
                vec![("pads", i64s(vec![8], &[0, 1, 0, 2, 1, 0, 2, 1]))],
            ),
        ),
        (
            "pad-edge",
            single(
                Op::Tensor(T::Pad { mode: PadMode::Edge, pads: None, value: None }),
                vec![("pads", i64s(vec![8], &[0, 1, 0, 2, 1, 0, 2, 1]))],
            ),
        ),
        (
            "pad-constant",
            single(
                Op::Tensor(T::Pad { mode: PadMode::Constant, pads: None, value: None }),
                vec![("pads", i64s(vec![8], &[0, 1, 0, 2, 1, 0, 2, 1]))],
            ),
        ),
        ("unsqueeze", single(Op::Tensor(T::Unsqueeze { axes: None }), vec![("axes", i64s(vec![1], &[0]))])),
        ("flatten", single(Op::Tensor(T::Flatten { axis: 2 }), vec![])),
        ("expand", single(Op::Tensor(T::Expand {}), vec![("shape", i64s(vec![5], &[2, 1, 3, 4, 5]))])),
        ("gather", single(Op::Tensor(T::Gather { axis: 2 }), vec![("idx", i64s(vec![2, 2], &[0, -1, 2, 1]))])),
        ("depth-to-space-dcr", single(Op::Tensor(T::DepthToSpace { blocksize: 1, mode: BlockOrder::Dcr }), vec![])),
        ("tile", single(Op::Tensor(T::Tile {}), vec![("reps", i64s(vec![4], &[2, 1, 3, 1]))])),
        (
            "gather-elements",
            single(
                Op::Tensor(T::GatherElements { axis: 1 }),
                vec![("idx", i64s(vec![2, 2, 4, 1], &[0, 2, -1, 1, 2, 0, 1, -3, 1, 1, 0, 2, 2, 2, 0, -2]))],
            ),
        ),
    ];
    for (name, m) in cases {
        eprintln!("{name}");
        check(m, vec![x.clone()], EXACT);
    }
    let m = Builder::new()
        .input("x", DType::F32)
        .node(Op::Tensor(T::Concat { axis: 1 }), &["x", "x"], &["y"])
        .output("y")
        .build();
    check(m, vec![x.clone()], EXACT);
    for mode in ["DCR", "CRD"] {
        let m = Builder::new()
            .input("x", DType::F32)
            .typed("y", DType::F32)
            .node(
                Op::Tensor(T::DepthToSpace { blocksize: 2, mode: BlockOrder::from_name(mode).unwrap() }),
                &["x"],
                &["y"],
            )
            .output("y")
            .build();
        check(m, vec![data(&[2, 8, 3, 2], 44, -1.0, 1.0)], EXACT);
    }
    for mode in ["DCR", "CRD"] {
        let m = Builder::new()
            .input("x", DType::F32)
            .typed("y", DType::F32)
            .node(
                Op::Tensor(T::SpaceToDepth { blocksize: 2, mode: BlockOrder::from_name(mode).unwrap() }),
                &["x"],
                &["y"],
            )
            .output("y")
            .build();
        check(m, vec![data(&[2, 3, 4, 6], 45, -1.0, 1.0)], EXACT);
    }
    // Gather with indices given at run time (int64, range-checked on upload).
    let m = Builder::new()
        .input("x", DType::F32)
        .input("i", DType::I64)
        .node(Op::Tensor(T::Gather { axis: 0 }), &["x", "i"], &["y"])
        .output("y")
        .build();
    check(m, vec![x, i64s(vec![3], &[1, 0, -1])], EXACT);
}
