"""Smoke test of bench/perf.py --quick (issue 5, part 7): every table, finite numbers, the plot;
and the timing lock it takes in a full run."""

import fcntl
import os
import subprocess
import sys

from _bench_smoke import ROOT, import_bench, run_bench


def run(*args):
    return run_bench("perf", *args, timeout=900)


def test_perf_quick(tmp_path):
    res = run("--quick", "--plots", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    for label in ("### Summary", "| measure | unit | seedcore | baseline | baseline is | ratio | target | met? |",
                  "memset", "decode prng C8 P3 K16", "decode q4", "MobileNetV2: assemble q4, 1 thread",
                  "fp32 safetensors load", "peak RSS, in-memory assemble", "MobileNetV2 forward, batch 1",
                  "MobileNetV2 forward, batch 32", "onnxruntime", "LeNet SGD, batch 32, 1 thread", "PyTorch",
                  "### Decode throughput", "### Peak RSS", "### Forward pass", "### SGD steps per second"):
        assert label in out, label
    assert (tmp_path / "perf-ratios.png").stat().st_size > 1000


def test_perf_quick_write_refused():
    res = run("--quick", "--write")
    assert res.returncode == 2 and "--quick numbers never go into RESULTS.md" in res.stderr


def _perf():
    return import_bench("perf")


def test_timing_lock_is_exclusive_and_released(tmp_path):
    perf = _perf()
    lock = str(tmp_path / "bench.lock")
    with perf.timing_lock(lock):
        with open(lock) as other:  # another open file: the lock is held
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                raise AssertionError("the timing lock was not held")
            except BlockingIOError:
                pass
    with open(lock) as other:  # released afterwards
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_timing_lock_held_by_a_parent_does_not_deadlock(tmp_path):
    # `flock LOCK python ...` holds the lock in the parent: the script must not wait for itself.
    lock = str(tmp_path / "bench.lock")
    code = (f"import sys; sys.path.insert(0, {os.path.join(ROOT, 'bench')!r}); import perf\n"
            f"with perf.timing_lock({lock!r}): print('inside')")
    res = subprocess.run(["flock", lock, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "inside" in res.stdout, res.stderr
