"""examples/edge_app.py runs (CI runs pytest, so this is how the example runs in CI):
on a small seed it makes, natively and through onnxruntime, with the same result as
assembling in this process; a RAM budget it cannot meet is refused cleanly."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import seedcore

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "edge_app.py")


@pytest.fixture(scope="module")
def seed_path(tmp_path_factory):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 14 * 14, 10)).eval()
    path = tmp_path_factory.mktemp("edge") / "tiny.seed"
    seedcore.extract(net, example_inputs=(torch.randn(1, 3, 16, 16),), codec="q8", progress=False).save(path)
    return path


def run_app(*args):
    return subprocess.run([sys.executable, APP, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_edge_app_native_and_onnx(seed_path):
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    want = seedcore.assemble(seed_path)(x)
    sums = []
    for extra in ([], ["--onnx"]):
        res = run_app(seed_path, *extra)
        assert res.returncode == 0, res.stderr
        assert "needs about" in res.stdout
        m = re.search(r"output \(1, 10\), argmax (\d+), sum (\S+)", res.stdout)
        assert m, res.stdout
        assert int(m.group(1)) == int(np.argmax(want))
        sums.append(float(m.group(2)))
    np.testing.assert_allclose(sums, [want.sum()] * 2, rtol=0, atol=1e-4)
    assert os.path.exists(str(seed_path)[:-5] + ".onnx.data")


def test_edge_app_refuses_a_budget_it_cannot_meet(seed_path):
    res = run_app(seed_path, "--max-ram", "1k")
    assert res.returncode == 1
    assert res.stderr.startswith("edge_app: ") and "budget" in res.stderr and "Traceback" not in res.stderr
