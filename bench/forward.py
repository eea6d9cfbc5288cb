"""Native forward pass vs onnxruntime, both single-threaded, in one run.

    python bench/forward.py MODEL.seed MODEL.onnx [--batch 1 32] [--seq 128] [--repeats 15]
    python bench/forward.py --gemm            # GEMM alone vs numpy matmul (OPENBLAS_NUM_THREADS=1)

The .seed must carry a graph (metadata.graph); its tensors are decoded natively and
handed to seedcore._native.Graph. Inputs are made from the graph's input specs:
float32 inputs ~ N(0, 1); int64 inputs named like *mask* are ones, other int64
inputs are token ids in [0, 1000). Symbolic dims: "batch"-like first dims take
--batch, the others --seq. Prints medians and the ratio onnxruntime_time / native_time
(> 1 means native is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_inputs(specs, batch: int, seq: int, rng):
    feeds = {}
    for s in specs:
        shape = [d if isinstance(d, int) else (batch if i == 0 else seq) for i, d in enumerate(s["shape"])]
        if s["dtype"] == "float32":
            feeds[s["name"]] = rng.standard_normal(shape).astype(np.float32)
        elif "mask" in s["name"]:
            feeds[s["name"]] = np.ones(shape, dtype=np.int64)
        else:
            feeds[s["name"]] = rng.integers(0, 1000, size=shape).astype(np.int64)
    return feeds


def bench_model(args) -> None:
    import onnxruntime as ort

    from seedcore import _native

    f = _native.SeedFile(args.seed)
    meta = json.loads(f.metadata_json)
    if not meta.get("graph"):
        sys.exit(f"{args.seed}: the seed carries no graph")
    weights = f.decode_all(threads=1)
    weights = {k: (v if v.dtype in (np.float32, np.int64) else v.astype(np.float32)) for k, v in weights.items()}
    graph = _native.Graph(json.dumps(meta["graph"]), weights)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
    onnx_inputs = [i.name for i in sess.get_inputs()]
    rng = np.random.default_rng(0)
    print(f"model {os.path.basename(args.seed)}  isa={_native.cpu_features()['isa']}  threads=1  "
          f"median of {args.repeats}")
    print(f"{'batch':>5} {'native ms':>10} {'ort ms':>10} {'ort/native':>10} {'max |diff|/scale':>17}")
    for batch in args.batch:
        feeds = make_inputs(graph.input_specs, batch, args.seq, rng)
        ort_feeds = {k: v for k, v in feeds.items() if k in onnx_inputs}
        nat = graph.run(feeds, threads=1)
        ref = sess.run(None, ort_feeds)
        first = graph.output_names[0]
        scale = max(float(np.max(np.abs(ref[0]))), 1e-12)
        diff = float(np.max(np.abs(nat[first] - ref[0]))) / scale
        t_nat = median_time(lambda: graph.run(feeds, threads=1), args.repeats)
        t_ort = median_time(lambda: sess.run(None, ort_feeds), args.repeats)
        print(f"{batch:>5} {t_nat * 1e3:>10.2f} {t_ort * 1e3:>10.2f} {t_ort / t_nat:>10.2f} {diff:>17.2e}")


def bench_gemm(args) -> None:
    from seedcore import _native

    rng = np.random.default_rng(0)
    shapes = [(128, 384, 1536), (128, 1536, 384), (128, 384, 384), (16, 384, 1536), (4096, 384, 1536)]
    print(f"GEMM y = x·Wᵀ (linear node), median of {args.repeats}, single thread; numpy: x @ W.T "
          f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')})")
    print(f"{'M':>5} {'K':>5} {'N':>5} {'impl':>6} {'native ms':>10} {'GFLOP/s':>8} {'numpy ms':>9} {'np/native':>9}")
    for m, k, n in shapes:
        g = {"version": 1, "inputs": [{"name": "x", "dtype": "float32", "shape": [m, k]}],
             "outputs": [{"name": "y", "dtype": "float32", "shape": [m, n]}],
             "nodes": [{"op": "linear", "in": ["x", "w"], "out": ["y"], "attrs": {}, "path": "fc"}]}
        w = rng.standard_normal((n, k)).astype(np.float32)
        x = rng.standard_normal((m, k)).astype(np.float32)
        graph = _native.Graph(json.dumps(g), {"w": w})
        t_np = median_time(lambda: x @ w.T, args.repeats)
        for impl in args.impls:
            t = median_time(lambda: graph.run({"x": x}, threads=1, impl=impl), args.repeats)
            print(f"{m:>5} {k:>5} {n:>5} {impl:>6} {t * 1e3:>10.3f} {2 * m * n * k / t / 1e9:>8.1f} "
                  f"{t_np * 1e3:>9.3f} {t_np / t:>9.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("seed", nargs="?")
    p.add_argument("onnx", nargs="?")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    p.add_argument("--seq", type=int, default=128, help="size of non-batch symbolic dims")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--gemm", action="store_true", help="benchmark the GEMM alone against numpy")
    p.add_argument("--impls", nargs="+", default=["auto"])
    args = p.parse_args()
    if args.gemm:
        bench_gemm(args)
    elif args.seed and args.onnx:
        bench_model(args)
    else:
        p.error("give MODEL.seed MODEL.onnx, or --gemm")


if __name__ == "__main__":
    main()
