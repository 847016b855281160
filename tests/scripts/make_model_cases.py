"""Build the `onnx-models` suite: real pretrained models from pip wheels,
seeded inputs, and onnxruntime's outputs as expected values.

Usage: make_model_cases.py WHEELS_DIR OUT_DIR
WHEELS_DIR holds the wheels downloaded with `pip download --no-deps`.
Layout written: OUT/<case>/model.onnx, OUT/<case>/test_data_set_0/{input,output}_K.pb
"""
import glob
import os
import shutil
import sys
import zipfile

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper

# (case name, wheel glob, path of the model inside the wheel, input recipe)
# A recipe maps input name -> (shape, kind); kind: "bytes" int ids 0..255,
# "audio" float in [-1, 1], "image" float ~N(0,1), "zeros", or a constant.
MODELS = [
    ("magika_standard_v3_3", "magika-1.0.3-*.whl", "magika/models/standard_v3_3/model.onnx",
     {"bytes": ((2, 2048), "bytes")}),
    ("silero_vad", "silero_vad-6.2.3-*.whl", "silero_vad/data/silero_vad.onnx",
     {"input": ((1, 512), "audio"), "state": ((2, 1, 128), "small"), "sr": ((), ("int64", 16000))}),
    ("ppocrv4_det", "rapidocr_onnxruntime-1.4.4-*.whl", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
     {"x": ((1, 3, 96, 128), "image")}),
    ("ppocrv4_rec", "rapidocr_onnxruntime-1.4.4-*.whl", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
     {"x": ((1, 3, 48, 160), "image")}),
    ("ppocr_mobile_v2_cls", "rapidocr_onnxruntime-1.4.4-*.whl",
     "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
     {"x": ((1, 3, 48, 192), "image")}),
]

NP_TYPES = {
    "tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
    "tensor(float16)": np.float16, "tensor(double)": np.float64, "tensor(uint8)": np.uint8,
}


def make_input(rng, meta, recipe):
    shape, kind = recipe
    dtype = NP_TYPES[meta.type]
    if isinstance(kind, tuple):
        return np.array(kind[1], dtype=kind[0]).reshape(shape)
    if kind == "bytes":
        return rng.integers(0, 256, size=shape).astype(dtype)
    if kind == "audio":
        return (rng.random(size=shape) * 2 - 1).astype(dtype)
    if kind == "small":
        return (rng.standard_normal(size=shape) * 0.1).astype(dtype)
    if kind == "image":
        return rng.standard_normal(size=shape).astype(dtype)
    return np.zeros(shape, dtype=dtype)


def main():
    wheels, out = sys.argv[1], sys.argv[2]
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name, pattern, inner, recipes in MODELS:
        found = glob.glob(os.path.join(wheels, pattern))
        if not found:
            sys.exit(f"wheel {pattern} not found in {wheels}")
        case = os.path.join(tmp, name)
        os.makedirs(os.path.join(case, "test_data_set_0"))
        with zipfile.ZipFile(found[0]) as z, open(os.path.join(case, "model.onnx"), "wb") as f:
            f.write(z.read(inner))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(os.path.join(case, "model.onnx"), opts, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(20261125)
        feeds = {}
        for meta in sess.get_inputs():
            if meta.name not in recipes:
                sys.exit(f"{name}: no input recipe for '{meta.name}' {meta.type} {meta.shape}")
            feeds[meta.name] = make_input(rng, meta, recipes[meta.name])
        outputs = sess.run(None, feeds)
        ds = os.path.join(case, "test_data_set_0")
        for k, meta in enumerate(sess.get_inputs()):
            with open(os.path.join(ds, f"input_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(feeds[meta.name], meta.name).SerializeToString())
        for k, (meta, value) in enumerate(zip(sess.get_outputs(), outputs)):
            with open(os.path.join(ds, f"output_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(np.asarray(value), meta.name).SerializeToString())
        print(f"{name}: inputs {[ (m.name, feeds[m.name].shape) for m in sess.get_inputs()]}, "
              f"outputs {[np.asarray(o).shape for o in outputs]}")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    with open(os.path.join(out, "COMPLETE"), "w") as f:
        f.write(f"{len(MODELS)}\n")


if __name__ == "__main__":
    main()
