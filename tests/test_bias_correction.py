"""Bias correction after quantisation (seedcore.bias_correction)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import seedcore  # noqa: E402
from seedcore import bias_correction  # noqa: E402
from seedcore.errors import SeedError  # noqa: E402


class _Net(torch.nn.Module):
    """conv -> ReLU6 -> depthwise conv -> ReLU6 -> pool -> linear: inputs of the later
    layers are never negative, so rounding errors shift the output means."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.dw = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        h = torch.clamp(self.conv(x), 0, 6)
        h = torch.clamp(self.dw(h), 0, 6)
        return self.fc(h.mean((2, 3)))


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g) + 0.5


def _net():
    torch.manual_seed(0)
    net = _Net().eval()
    with torch.no_grad():  # channels of very different scale, as batch norm folding makes them
        net.dw.weight.mul_(torch.logspace(-2, 1, 16).reshape(16, 1, 1, 1))
    return net


def test_extract_with_bias_correction_is_closer_on_held_out_inputs(tmp_path):
    net = _net()
    cal, test = _data(64, 1), _data(64, 2)
    with torch.no_grad():
        ref = net(test).numpy()
    errs = {}
    for bc in (False, True):
        seed = seedcore.extract(net, codec="q4", example_inputs=(cal[:2],), calibration=(cal,) if bc else None,
                                bias_correction=bc, progress=False)
        if bc:
            assert seed.provenance["bias_correction"] == {"biases": 3}
        else:
            assert "bias_correction" not in seed.provenance
        entries = {e.name: e for e in seed.tensors}
        for b in ("conv.bias", "dw.bias", "fc.bias"):
            assert entries[b].codec == "raw" and entries[b].params == {"storage": "float32"}
        seed.save(tmp_path / f"b{bc}.seed")
        got = seedcore.assemble(tmp_path / f"b{bc}.seed")(test.numpy())
        errs[bc] = float(np.mean((got - ref) ** 2))
    assert errs[True] < 0.7 * errs[False]


def test_corrected_means_match_the_original_on_the_calibration_inputs():
    from seedcore.capture import capture
    from seedcore.graph_ref import run_graph

    net = _net()
    cal = _data(16, 1)
    graph, weights = capture(net, (cal[:2],))
    orig = {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, np.float32) for k, v in weights.items()}
    rng = np.random.default_rng(0)
    enc = {k: (v + rng.normal(0, 0.05, v.shape).astype(np.float32) + 0.02 if v.ndim > 1 else v)
           for k, v in orig.items()}
    fixed = bias_correction.correct_biases(graph, orig, enc, (cal,))
    assert set(fixed) == {"conv.bias", "dw.bias", "fc.bias"}
    x = {graph["inputs"][0]["name"]: cal.numpy()}
    want = run_graph(graph, orig, x)["output"].mean(0)
    before = run_graph(graph, enc, x)["output"].mean(0)
    after = run_graph(graph, {**enc, **fixed}, x)["output"].mean(0)
    assert np.abs(after - want).max() < 1e-4 < np.abs(before - want).max()
    # nothing to correct: the biases stay as they are
    same = bias_correction.correct_biases(graph, orig, orig, (cal,))
    for k, v in same.items():
        np.testing.assert_allclose(v, orig[k], atol=1e-5)


def test_bias_correction_needs_a_module():
    with pytest.raises(SeedError, match="bias_correction needs a module"):
        seedcore.extract({"w": np.ones((4, 32), np.float32)}, codec="q4", bias_correction=True, progress=False)


def test_bias_correction_names_a_missing_tensor():
    from seedcore.capture import capture

    net = _net()
    cal = _data(4, 1)
    graph, weights = capture(net, (cal[:2],))
    w = {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, np.float32) for k, v in weights.items()}
    with pytest.raises(SeedError, match="missing"):
        bias_correction.correct_biases(graph, {k: v for k, v in w.items() if k != "fc.bias"}, w, (cal,))
