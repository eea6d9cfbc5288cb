#!/usr/bin/env python3
"""A small edge app: load a seed, assemble it, run inference natively or in onnxruntime.

    python examples/edge_app.py model.seed [--onnx] [--max-ram 512M]

The seed must carry its graph (seedcore.extract(module, example_inputs=...)).
Needs only numpy and seedcore (--onnx: onnxruntime and onnx too)."""
import argparse
import os
import sys

import numpy as np

import seedcore

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("seed")
ap.add_argument("--onnx", action="store_true", help="stream to an ONNX file and run it in onnxruntime")
ap.add_argument("--max-ram", default="512M", help="refuse to assemble beyond this RAM budget")
args = ap.parse_args()

seed = seedcore.load(args.seed)                          # validates the whole file
out = os.path.splitext(args.seed)[0] + ".onnx" if args.onnx else None
print(seedcore.plan_assembly(args.seed, out))            # mode, largest tensor, RAM needed
inputs = {}
for spec in seed.graph["inputs"]:                        # a random input of the declared shape
    shape = [d if isinstance(d, int) else 1 for d in spec["shape"]]  # symbolic axes: 1
    inputs[spec["name"]] = (np.random.default_rng(0).standard_normal(shape).astype(np.float32)
                            if spec["dtype"] == "float32" else np.ones(shape, np.int64))
try:
    if args.onnx:                                        # bounded RAM: largest tensor + 16 MiB
        import onnxruntime as ort

        seedcore.assemble(seed, out=out, max_ram=args.max_ram)   # weights in out + ".data"
        y = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    else:                                                # native forward pass, no other deps
        model = seedcore.assemble(seed, max_ram=args.max_ram)
        y = model.run(inputs)[seed.graph["outputs"][0]["name"]]
except seedcore.SeedError as e:
    sys.exit(f"edge_app: {e}")
print(f"{seedcore.cpu_features()['isa']}: output {y.shape}, argmax {int(np.argmax(y.reshape(-1)))}, "
      f"sum {float(y.sum()):.6f}")
