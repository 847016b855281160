"""Time onnxruntime (CPU) on every case of the onnx-models suite.

Usage: bench_ort.py SUITE_DIR ITERATIONS  -> JSON {case: {"min_ms", "median_ms"}} on stdout.
"""
import json
import os
import sys
import time

import onnxruntime as ort
from onnx import TensorProto, numpy_helper


def main():
    suite, iters = sys.argv[1], int(sys.argv[2])
    result = {}
    for case in sorted(os.listdir(suite)):
        d = os.path.join(suite, case)
        if not os.path.isdir(d):
            continue
        sess = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
        ds = os.path.join(d, "test_data_set_0")
        feeds = {}
        for k, meta in enumerate(sess.get_inputs()):
            t = TensorProto()
            with open(os.path.join(ds, f"input_{k}.pb"), "rb") as f:
                t.ParseFromString(f.read())
            feeds[meta.name] = numpy_helper.to_array(t)
        sess.run(None, feeds)
        times = []
        for _ in range(iters):
            s = time.perf_counter()
            sess.run(None, feeds)
            times.append((time.perf_counter() - s) * 1e3)
        times.sort()
        result[case] = {"min_ms": times[0], "median_ms": times[len(times) // 2]}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
