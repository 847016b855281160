"""Export the onnx-models suite's inputs and expected outputs as JSON (raw
little-endian bytes in base64) for the browser tests, which cannot parse
protobuf test data themselves.

Usage: export_browser_fixtures.py SUITE_DIR OUT_DIR
"""
import base64
import json
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper

NAMES = {np.float32: "float32", np.float64: "float64", np.int32: "int32", np.int64: "int64",
         np.uint8: "uint8", np.int8: "int8", np.bool_: "bool", np.float16: "float16"}


def load(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


def entry(name, a):
    return {"name": name, "type": NAMES[a.dtype.type], "dims": list(a.shape),
            "b64": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}


def main():
    suite, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for case in sorted(os.listdir(suite)):
        ds = os.path.join(suite, case, "test_data_set_0")
        if not os.path.isdir(ds):
            continue
        doc = {"inputs": [], "outputs": []}
        for kind in ("input", "output"):
            k = 0
            while os.path.exists(os.path.join(ds, f"{kind}_{k}.pb")):
                doc[kind + "s"].append(entry(*load(os.path.join(ds, f"{kind}_{k}.pb"))))
                k += 1
        with open(os.path.join(out, f"{case}.json"), "w") as f:
            json.dump(doc, f)
    with open(os.path.join(out, "COMPLETE"), "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main()
