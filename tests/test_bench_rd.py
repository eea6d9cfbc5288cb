"""Smoke test of bench/rd.py --quick (the LeNet rate–distortion table and plot)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytest.importorskip("torch")
pytest.importorskip("mlxtend")
pytest.importorskip("matplotlib")


def test_rd_quick(tmp_path):
    cmd = [sys.executable, "bench/rd.py", "--quick", "--plots", str(tmp_path)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    from seedcore.extract import DEFAULT_TARGET_BPW
    for label in ("### MNIST LeNet", f"| rate allocation | rate allocation at {DEFAULT_TARGET_BPW:g} bpw (the default) |",
                  "| rate allocation | rate allocation at 4 bpw |", "| q4 |", "| q8 |", "| prng | prng 3 bpw |",
                  "| pruning | pruned 75 %, sparse |", "| pruning + fine-tuning |", "| raw float16 |", "best at ≤ 4 bpw"):
        assert label in res.stdout, label
    png = tmp_path / "rd-lenet.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rd_quick_write_is_refused():
    res = subprocess.run([sys.executable, "bench/rd.py", "--quick", "--write"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "--quick" in res.stderr
