"""One onnxruntime (CPU) benchmark worker, driven by crates/strata-bench.

Usage: bench_ort_worker.py MODEL NPY_DIR THREADS

Loads MODEL with THREADS intra-op threads, reads the inputs NPY_DIR/input_K.npy
(in the order of the session's inputs), runs once, prints
`ready LOAD_MS BASE_KIB`, then answers each `run` line on stdin with the run's
milliseconds and `quit` with `rss PEAK_KIB`.
"""
import os
import resource
import sys
import time


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    model, npy_dir, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import numpy as np
    import onnxruntime as ort

    base = rss_kib()
    feeds_list = []
    k = 0
    while os.path.exists(os.path.join(npy_dir, f"input_{k}.npy")):
        feeds_list.append(np.load(os.path.join(npy_dir, f"input_{k}.npy")))
        k += 1
    start = time.perf_counter()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    feeds = {meta.name: v for meta, v in zip(sess.get_inputs(), feeds_list)}
    sess.run(None, feeds)
    load_ms = (time.perf_counter() - start) * 1e3
    print(f"ready {load_ms:.3f} {base}", flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            t = time.perf_counter()
            sess.run(None, feeds)
            print(f"{(time.perf_counter() - t) * 1e3:.6f}", flush=True)
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(f"rss {peak}", flush=True)
            return


if __name__ == "__main__":
    main()
