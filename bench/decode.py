#!/usr/bin/env python3
"""Decode benchmarks of issue 2, as ratios measured in one run.

1. Single-thread decode throughput (bytes of float32 written per second) of the
   native prng (3 / 4 / 4.5 bpw), q4 and q8 decoders, against the C library's
   memset over a buffer of the same size (much larger than the caches).
2. MiniLM (all-MiniLM-L6-v2): ``seedcore.assemble`` of its seed against loading
   its fp32 safetensors with the safetensors package (both from the page cache).

    python bench/decode.py            # prints a markdown section
    python bench/decode.py --write    # also replaces that section in bench/RESULTS.md

Medians of several runs after a warm-up. The MiniLM seed is cached in
bench/out/ (its first encoding takes a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import seedcore
from seedcore import _native

from _common import machine, median_time, minilm_path, minilm_seed, write_section

SECTION = "decode"


def random_payload(codec: str, params: dict, n: int, rng) -> bytes:
    """A valid payload of n weights with random content (speed does not depend on it)."""
    if codec in ("q8", "q4"):
        nb = -(-n // 32)
        scales = (rng.random(nb, dtype=np.float32) * 0.01 + 1e-3).astype("<f2").tobytes()
        per = 32 if codec == "q8" else 16
        return scales + rng.integers(0, 256, nb * per, dtype=np.uint8).tobytes()
    C, P, K = params["C"], params["P"], params["K"]
    nb = -(-n // C)
    seeds = rng.integers(1, 1 << K, nb, dtype=np.uint32).astype("<u2")
    assert K == 16
    exps = rng.integers(0, 256, -(-nb // 2), dtype=np.uint8)
    mants = rng.integers(0, 256, -(-nb * P // 2), dtype=np.uint8)
    return seeds.tobytes() + exps.tobytes() + mants.tobytes()


def throughput(n: int, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    out = np.empty(n, dtype=np.float32)
    memset_s = _native.bench_memset(out.nbytes, repeats)
    rows = [{"what": "memset (C library)", "bpw": "", "seconds": memset_s}]
    cases = [("q8", {"block": 32}, 8.5), ("q4", {"block": 32}, 4.5)]
    cases += [("prng", {"C": C, "P": P, "K": K, "exp_bias": -10}, (K + 4 + 4 * P) / C)
              for C, P, K in ((12, 4, 16), (8, 3, 16), (8, 4, 16))]
    for codec, params, bpw in cases:
        payload = random_payload(codec, params, n, rng)
        pj = json.dumps(params)
        secs = median_time(lambda: _native.decode_payload(codec, pj, [n], "float32", payload,
                                                          impl="auto", out=out), repeats)
        label = codec if codec != "prng" else f"prng C{params['C']} P{params['P']} K{params['K']}"
        rows.append({"what": label, "bpw": bpw, "seconds": secs})
    for r in rows:
        r["gbps"] = out.nbytes / r["seconds"] / 1e9
        r["ratio"] = memset_s / r["seconds"]
    return rows


def assemble_vs_load(fp32_path, seeds, repeats: int) -> list[dict]:
    """seedcore.assemble of each (label, seed path) with 1 thread and all cores against
    loading the fp32 safetensors file with safetensors.numpy.load_file (page cache)."""
    from safetensors.numpy import load_file
    load_s = median_time(lambda: load_file(str(fp32_path)), repeats)
    rows = [{"what": "fp32 safetensors load (safetensors.numpy.load_file)",
             "bytes": os.path.getsize(fp32_path), "seconds": load_s, "threads": None}]
    for label, path in seeds:
        for threads in (1, 0):
            secs = median_time(lambda: seedcore.assemble(str(path), threads=threads), repeats)
            rows.append({"what": f"assemble {label}, "
                                 f"{'1 thread' if threads == 1 else f'{os.cpu_count()} threads'}",
                         "bytes": os.path.getsize(path), "seconds": secs, "threads": threads})
    for r in rows:
        r["speedup"] = load_s / r["seconds"]
    return rows


def minilm(repeats: int) -> list[dict]:
    seeds = []
    for codec, bits in (("prng", 4), ("prng", 4.5), ("q4", 4), ("q8", 8)):
        path, _ = minilm_seed(codec, bits if codec == "prng" else None)
        seeds.append((f"{codec}{' ' + str(bits) + ' bpw' if codec == 'prng' else ''}", path))
    return assemble_vs_load(minilm_path(), seeds, repeats)


def render(tp: list[dict], ml: list[dict], n: int) -> str:
    feats = seedcore.cpu_features()
    lines = [f"<!-- {SECTION}:begin -->", "## Decode (issue 2)", "",
             f"Command: `python bench/decode.py --write` · machine: {machine()} · "
             f"kernels: {feats['isa']} · {time.strftime('%Y-%m-%d')}", "",
             f"### Single-thread decode throughput, {n / 1e6:.0f} M weights "
             f"({4 * n / 1e6:.0f} MB of float32 out)", "",
             "| decoder | bits/weight | GB/s written | ratio to memset |", "|---|---|---|---|"]
    for r in tp:
        bpw = f"{r['bpw']:.2f}" if r["bpw"] != "" else ""
        lines.append(f"| {r['what']} | {bpw} | {r['gbps']:.2f} | {r['ratio']:.2f}× |")
    lines += ["", "Target: prng and q4 ≥ 0.4× memset.", "",
              "### all-MiniLM-L6-v2 (22.7 M weights): assemble vs loading fp32 safetensors", "",
              "| what | file MB | ms | speed-up vs fp32 load |", "|---|---|---|---|"]
    for r in ml:
        lines.append(f"| {r['what']} | {r['bytes'] / 1e6:.1f} | {r['seconds'] * 1e3:.1f} | "
                     f"{r['speedup']:.2f}× |")
    lines += ["", "Target: ≥ 2× faster than the fp32 load. Both read from the page cache; "
              "assemble verifies every checksum and decodes every tensor.", f"<!-- {SECTION}:end -->"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=float, default=64, help="millions of weights per throughput run (default 64)")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (median; default 7)")
    ap.add_argument("--write", action="store_true", help="replace the decode section of bench/RESULTS.md")
    args = ap.parse_args(argv)
    n = int(args.weights * 1e6)
    tp = throughput(n, args.repeats)
    ml = minilm(args.repeats)
    text = render(tp, ml, n)
    print(text)
    if args.write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
