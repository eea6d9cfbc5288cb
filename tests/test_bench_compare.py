"""Smoke test of bench/compare.py --quick (the LeNet comparison table) and of the
sparse storage it measures pruning with."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytest.importorskip("torch")
pytest.importorskip("mlxtend")
pytest.importorskip("safetensors")


def _bench():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import compare
    return compare


def test_sparse_roundtrip_keeps_exactly_the_largest(tmp_path):
    compare = _bench()
    rng = np.random.default_rng(0)
    t = {"w": rng.normal(size=(37, 11)).astype(np.float32), "b": rng.normal(size=5).astype(np.float32)}
    masks = compare.prune(t, 0.75)
    assert set(masks) == {"w"} and masks["w"].sum() == round(0.25 * t["w"].size)
    kept = np.abs(t["w"][masks["w"]])
    assert kept.min() >= np.abs(t["w"][~masks["w"]]).max()
    path = tmp_path / "p.safetensors"
    size = compare.save_sparse(path, t, masks)
    assert size == path.stat().st_size
    # 1 bit per weight + float16 non-zeros + the float32 vector, plus the header
    assert size < t["w"].size / 8 + 2 * masks["w"].sum() + 4 * 5 + 400
    got = compare.load_sparse(path)
    np.testing.assert_array_equal(got["b"], t["b"])
    want = np.where(masks["w"], t["w"], 0).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(got["w"], want)


def test_compare_quick(tmp_path):
    cmd = [sys.executable, "bench/compare.py", "--quick", "--plots", str(tmp_path)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    for label in ("### MNIST LeNet", "| fp32 (raw safetensors) |", "| fp16 ", "| q8 (Q8_0) |", "| q4 (Q4_0) |",
                  "| pruned 50 %, sparse |", "| pruned 90 %, sparse, fine-tuned |", "| gzip of the fp32 file",
                  "| lzma of the fp32 file", "| stats seed, zero-shot |", "| stats seed + 300 samples",
                  "| prng 3 bpw |", "| prng 4.5 bpw |", "**default seed**", "| random init, no data (baseline) |",
                  "| distilled student", "Pruning storage"):
        assert label in out, label


def test_compare_quick_write_is_refused():
    res = subprocess.run([sys.executable, "bench/compare.py", "--quick", "--write"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "--quick" in res.stderr
