"""Sequential, error-corrected data-aware rounding (seedcore.sequential)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import seedcore  # noqa: E402
from seedcore import sequential  # noqa: E402
from seedcore.errors import SeedError  # noqa: E402


from test_bias_correction import _data, _net  # noqa: E402  conv -> depthwise -> linear, channels of mixed scale


def test_corrected_weight_is_the_ridge_solution():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6))
    # the earlier layers' errors as a systematic distortion of the inputs (compensable) plus noise (not)
    xt = x @ (np.eye(6) + 0.2 * rng.standard_normal((6, 6))) + 0.01 * rng.standard_normal((500, 6))
    w = rng.standard_normal((1, 4, 6))
    h = (xt.T @ xt / 500)[None]
    d = ((x - xt).T @ xt / 500)[None]
    got = sequential.corrected_weight(w, h, d, damp=0.01)[0]
    lam = 0.01 * np.mean(np.diag(h[0]))
    # minimise ‖X Wᵀ − X̃ W′ᵀ‖²/R + λ‖W′ − W‖²: the normal equations
    want = np.linalg.solve(h[0] + lam * np.eye(6), (xt.T @ x / 500 + lam * np.eye(6)) @ w[0].T).T
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the corrected weights reproduce the original outputs from the perturbed inputs better
    assert np.sum((x @ w[0].T - xt @ got.T) ** 2) < 0.5 * np.sum((x @ w[0].T - xt @ w[0].T) ** 2)
    # few rows per input: shrunk toward W
    few = sequential.corrected_weight(w, h, d, damp=0.01, rows=6)[0]
    assert 0 < np.abs(few - w[0]).sum() < 0.5 * np.abs(got - w[0]).sum()
    # nothing to correct when the inputs are the original ones
    np.testing.assert_array_equal(sequential.corrected_weight(w, h, np.zeros_like(d), 0.01), w)


class _MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(32, 64)
        self.fc2 = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


@pytest.mark.parametrize("codec", ["q4", "prng:3"])
def test_a_later_layer_compensates_an_earlier_layers_error(tmp_path, codec):
    """fc1 coarse, fc2 nearly exact (float16): encoded against fc1's real outputs, fc2
    takes back much of fc1's error; encoded alone, it cannot."""
    torch.manual_seed(0)
    net = _MLP().eval()
    g = torch.Generator().manual_seed(1)
    mix = torch.randn(32, 32, generator=g) * 0.3 + torch.eye(32)
    cal = torch.randn(512, 32, generator=g) @ mix
    test = torch.randn(256, 32, generator=g) @ mix
    with torch.no_grad():
        ref = net(test).numpy()
    errs = {}
    for seq in (False, True):
        seed = seedcore.extract(net, codec="raw", bits=16, rules=[("fc1.weight", codec)], example_inputs=(cal[:2],),
                                calibration=(cal,), gptq=True, bias_correction=True, sequential=seq,
                                progress=False)
        assert seed.provenance["options"]["sequential"] is seq
        if seq:
            assert seed.provenance["sequential"] == {"tensors": 2}
            assert seed.provenance["bias_correction"] == {"biases": 2}
        seed.save(tmp_path / f"s{seq}.seed")
        got = seedcore.assemble(tmp_path / f"s{seq}.seed")(test.numpy())
        errs[seq] = float(np.mean((got - ref) ** 2))
    assert errs[True] < 0.75 * errs[False], errs


@pytest.mark.parametrize("codec", ["q4", "prng"])
def test_sequential_is_not_worse_on_a_small_cnn(tmp_path, codec):
    """A shallow untrained CNN with a depthwise layer (grouped statistics): closer on held-out inputs."""
    net = _net()
    cal, test = _data(128, 1), _data(64, 2)
    with torch.no_grad():
        ref = net(test).numpy()
    errs = {}
    for seq in (False, True):
        seed = seedcore.extract(net, codec=codec, bits=3 if codec == "prng" else None, example_inputs=(cal[:2],),
                                calibration=(cal,), gptq=True, bias_correction=True, sequential=seq,
                                progress=False)
        if seq:
            # every conv / linear weight (conv, dw, fc) goes through the sequential pass
            assert seed.provenance["sequential"] == {"tensors": 3}
        seed.save(tmp_path / f"s{seq}.seed")
        got = seedcore.assemble(tmp_path / f"s{seq}.seed")(test.numpy())
        errs[seq] = float(np.mean((got - ref) ** 2))
    assert errs[True] < 0.98 * errs[False], errs


def test_sequential_is_deterministic_and_keeps_exact_tensors_exact(tmp_path):
    net = _net()
    cal = _data(32, 1)
    rules = [("dw.weight", "raw")]  # float32: stored as it is, not corrected
    seeds = [seedcore.extract(net, codec="q8", example_inputs=(cal[:2],), calibration=(cal,), sequential=True,
                              rules=rules, progress=False, provenance=False) for _ in range(2)]
    for i, s in enumerate(seeds):
        s.save(tmp_path / f"{i}.seed")
    assert (tmp_path / "0.seed").read_bytes() == (tmp_path / "1.seed").read_bytes()
    assert seeds[0].entry("dw.weight").codec == "raw"
    np.testing.assert_array_equal(seeds[0].decode_reference("dw.weight"), net.dw.weight.detach().numpy())


def test_sequential_needs_a_module():
    with pytest.raises(SeedError, match="needs a module"):
        seedcore.extract({"w": np.ones((4, 32), np.float32)}, codec="q4", sequential=True, progress=False)


def test_calibration_that_does_not_fit_the_graph_is_a_clear_error():
    net = _net()
    cal = _data(8, 1)
    with pytest.raises(SeedError, match=r"input|shape"):
        seedcore.extract(net, codec="q4", example_inputs=(cal[:2],), calibration=(np.ones((4, 5), np.float32),),
                         sequential=True, progress=False)
