"""Native forward pass vs onnxruntime, both single-threaded, in one run.

    python bench/forward.py MODEL.seed MODEL.onnx [--batch 1 32] [--seq 128] [--repeats 15]
    python bench/forward.py --gemm            # linear / 1x1 conv nodes vs numpy and onnxruntime
    python bench/forward.py --zoo [--write]   # MiniLM and MobileNetV2 (seeds + ONNX cached in bench/out/)

The .seed must carry a graph (metadata.graph); its tensors are decoded natively and
handed to seedcore._native.Graph. Inputs are made from the graph's input specs:
float32 inputs ~ N(0, 1); int64 inputs named like *mask* are ones, other int64
inputs are token ids in [0, 1000). Symbolic dims: "batch"-like first dims take
--batch, the others --seq. Native and onnxruntime calls alternate (interleaved), so
load on a shared machine falls on both alike. Prints medians and the ratio
onnxruntime_time / native_time (> 1 means native is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _common import median_time, median_times_interleaved  # noqa: E402


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


def bench_model(args) -> list[dict]:
    return measure_model(args.seed, args.onnx, args.batch, args.seq, args.repeats)


def measure_model(seed_path: str, onnx_path: str, batches, seq: int, repeats: int) -> list[dict]:
    import onnxruntime as ort

    from seedcore import _native

    f = _native.SeedFile(seed_path)
    meta = json.loads(f.metadata_json)
    if not meta.get("graph"):
        sys.exit(f"{seed_path}: the seed carries no graph")
    weights = f.decode_all(threads=1)
    weights = {k: (v if v.dtype in (np.float32, np.int64) else v.astype(np.float32)) for k, v in weights.items()}
    graph = _native.Graph(json.dumps(meta["graph"]), weights)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    onnx_inputs = [i.name for i in sess.get_inputs()]
    rng = np.random.default_rng(0)
    print(f"model {os.path.basename(seed_path)}  isa={_native.cpu_features()['isa']}  threads=1  "
          f"median of {repeats}")
    print(f"{'batch':>5} {'native ms':>10} {'ort ms':>10} {'ort/native':>10} {'max |diff|/scale':>17}")
    rows = []
    for batch in batches:
        feeds = make_inputs(graph.input_specs, batch, seq, rng)
        ort_feeds = {k: v for k, v in feeds.items() if k in onnx_inputs}
        nat = graph.run(feeds, threads=1)
        ref = sess.run(None, ort_feeds)
        first = graph.output_names[0]
        scale = max(float(np.max(np.abs(ref[0]))), 1e-12)
        diff = float(np.max(np.abs(nat[first] - ref[0]))) / scale
        # native and onnxruntime alternate call by call (load on a shared machine hits both alike)
        t_nat, t_ort = median_times_interleaved([lambda: graph.run(feeds, threads=1),
                                                 lambda: sess.run(None, ort_feeds)], repeats, warmup=2)
        print(f"{batch:>5} {t_nat * 1e3:>10.2f} {t_ort * 1e3:>10.2f} {t_ort / t_nat:>10.2f} {diff:>17.2e}")
        rows.append({"batch": batch, "native": t_nat, "ort": t_ort, "diff": diff})
    return rows


def zoo_files(name: str) -> tuple[str, str]:
    """A q8 seed with its graph and the ONNX export of the assembled model, cached
    in bench/out/ (the codec does not change the forward pass's speed)."""
    import torch

    import seedcore
    from seedcore import zoo
    from _common import OUT

    OUT.mkdir(exist_ok=True)
    seed_path, onnx_path = OUT / f"{name}-graph-q8.seed", OUT / f"{name}-graph-q8.onnx"
    if not (seed_path.exists() and onnx_path.exists()):
        if name == "minilm":
            module, tokenize = zoo.load_minilm()
            example = tuple(torch.as_tensor(t) for t in tokenize(["an example sentence", "another"]))
            axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
            kw = dict(input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                      dynamic_axes=axes)
        else:
            module = zoo.load_mobilenet_v2()
            example = (torch.as_tensor(zoo.sample_image_crops(n=2)),)
            kw = dict(input_names=["image"], output_names=["logits"])
        seedcore.extract(module, example_inputs=example, codec="q8", progress=False, **kw).save(seed_path)
        seedcore.assemble(seed_path).export_onnx(onnx_path)
    return str(seed_path), str(onnx_path)


def bench_zoo(args) -> None:
    import seedcore
    from _common import machine, write_section

    results = {}
    for name, seq in (("minilm", 128), ("mobilenet_v2", 224)):
        seed_path, onnx_path = zoo_files(name)
        results[name] = measure_model(seed_path, onnx_path, args.batch, seq, args.repeats)
    lines = ["<!-- forward:begin -->", "## Native forward pass vs onnxruntime (issue 3)", "",
             f"Command: `python bench/forward.py --zoo --write --repeats {args.repeats}` · machine: {machine()} · kernels: "
             f"{seedcore.cpu_features()['isa']} (GEMM may use AVX-512 where the CPU has it) · "
             f"{time.strftime('%Y-%m-%d')}", "",
             "Both single-threaded, the same seed (q8 weights; the codec does not change the forward "
             "pass), median of " + str(args.repeats) + " runs, native and onnxruntime calls interleaved. "
             "MiniLM: seq 128 (random ids, full mask); "
             "MobileNetV2: 224×224. Ratio > 1 means native is faster.", "",
             "| model | batch | native ms | onnxruntime ms | onnxruntime / native | max diff / scale |",
             "|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for r in rows:
            lines.append(f"| {name} | {r['batch']} | {r['native'] * 1e3:.1f} | {r['ort'] * 1e3:.1f} | "
                         f"{r['ort'] / r['native']:.2f}× | {r['diff']:.1e} |")
    lines += ["", "Target (issue 3): native ≥ 1× onnxruntime single-threaded.", "<!-- forward:end -->"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section("forward", text)


def _ort_session(nodes, inputs, outputs, inits):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def bench_gemm(args) -> None:
    """linear (y = x·Wᵀ + b, MiniLM-like) and 1x1 conv2d (MobileNetV2-like) nodes alone,
    native vs numpy (OpenBLAS) vs onnxruntime, all single-threaded."""
    from onnx import helper

    from seedcore import _native

    rng = np.random.default_rng(0)
    try:
        import onnxruntime  # noqa: F401
        have_ort = True
    except ImportError:
        have_ort = False
    # (kind, M, K, N): linear M tokens x K in -> N out; conv: M pixels (HxW), K in-channels, N out-channels
    shapes = [("linear", 128, 384, 1536), ("linear", 128, 1536, 384), ("linear", 128, 384, 384),
              ("linear", 1, 384, 384), ("linear", 16, 384, 1536), ("conv1x1", 3136, 32, 16),
              ("conv1x1", 3136, 24, 144), ("conv1x1", 784, 192, 32), ("conv1x1", 196, 384, 64)]
    print(f"single thread, median of {args.repeats}; numpy: x @ W.T + b (OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}); ort: onnxruntime Gemm / Conv; "
          f"isa={_native.cpu_features()['isa']}; load {os.getloadavg()[0]:.2f}")
    print(f"{'kind':>8} {'M':>5} {'K':>5} {'N':>5} {'impl':>6} {'native ms':>10} {'GFLOP/s':>8} "
          f"{'numpy ms':>9} {'ort ms':>8} {'np/nat':>7} {'ort/nat':>7}")
    for kind, m, k, n in shapes:
        w = rng.standard_normal((n, k)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        if kind == "linear":
            x = rng.standard_normal((m, k)).astype(np.float32)
            node = {"op": "linear", "in": ["x", "w", "b"], "out": ["y"], "attrs": {}, "path": "fc"}
            gshape_in, gshape_out = [m, k], [m, n]
            weights = {"w": w, "b": bias}
            t_np = median_time(lambda: x @ w.T + bias, args.repeats, warmup=2)
            sess = have_ort and _ort_session([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
                                             [("x", [m, k])], [("y", [m, n])], {"w": w, "b": bias})
        else:
            hw = int(round(m ** 0.5))
            x = rng.standard_normal((1, k, hw, hw)).astype(np.float32)
            node = {"op": "conv2d", "in": ["x", "w", "b"], "out": ["y"], "path": "conv",
                    "attrs": {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}}
            gshape_in, gshape_out = [1, k, hw, hw], [1, n, hw, hw]
            weights = {"w": w.reshape(n, k, 1, 1), "b": bias}
            x2 = x.reshape(k, m)
            t_np = median_time(lambda: w @ x2 + bias[:, None], args.repeats, warmup=2)
            sess = have_ort and _ort_session([helper.make_node("Conv", ["x", "w", "b"], ["y"])],
                                             [("x", gshape_in)], [("y", gshape_out)],
                                             {"w": w.reshape(n, k, 1, 1), "b": bias})
        g = {"version": 1, "inputs": [{"name": "x", "dtype": "float32", "shape": gshape_in}],
             "outputs": [{"name": "y", "dtype": "float32", "shape": gshape_out}], "nodes": [node]}
        graph = _native.Graph(json.dumps(g), weights)
        t_ort = median_time(lambda: sess.run(None, {"x": x}), args.repeats, warmup=2) if sess else float("nan")
        for impl in args.impls:
            t = median_time(lambda: graph.run({"x": x}, threads=1, impl=impl), args.repeats, warmup=2)
            print(f"{kind:>8} {m:>5} {k:>5} {n:>5} {impl:>6} {t * 1e3:>10.3f} {2 * m * n * k / t / 1e9:>8.1f} "
                  f"{t_np * 1e3:>9.3f} {t_ort * 1e3:>8.3f} {t_np / t:>7.2f} {t_ort / t:>7.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("seed", nargs="?")
    p.add_argument("onnx", nargs="?")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    p.add_argument("--seq", type=int, default=128, help="size of non-batch symbolic dims")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--gemm", action="store_true", help="benchmark linear / 1x1 conv nodes alone against numpy and onnxruntime")
    p.add_argument("--impls", nargs="+", default=["auto"])
    p.add_argument("--zoo", action="store_true", help="MiniLM and MobileNetV2, built and cached in bench/out/")
    p.add_argument("--write", action="store_true", help="with --zoo: replace the forward section of bench/RESULTS.md")
    args = p.parse_args()
    if args.gemm:
        bench_gemm(args)
    elif args.zoo:
        bench_zoo(args)
    elif args.seed and args.onnx:
        bench_model(args)
    else:
        p.error("give MODEL.seed MODEL.onnx, --zoo or --gemm")


if __name__ == "__main__":
    main()
