"""Data-aware rounding (seedcore.gptq): same format, lower output error."""

import numpy as np
import pytest

from seedcore import SeedError, gptq
from seedcore.codecs import prng, q4, q8

torch = pytest.importorskip("torch")

CODECS = [("q8", q8, {}), ("q4", q4, {}), ("prng", prng, {"bits": 4})]


@pytest.mark.parametrize("name, mod, opts", CODECS)
@pytest.mark.parametrize("cols", [64, 76])  # 76: blocks shared by two rows, a zero-padded last one
def test_identity_hessian_is_plain_rounding(name, mod, opts, cols):
    """With uncorrelated, equal-power inputs there is nothing to compensate:
    the payload is byte for byte the plain encoder's."""
    w = np.random.default_rng(0).standard_normal((47, cols)).astype(np.float32)
    params, payload, deq = gptq.encode(name, opts, w, np.eye(cols))
    p2, pay2 = mod.encode(w, opts)
    assert params == p2 and payload == pay2
    np.testing.assert_array_equal(deq, mod.decode(payload, w.shape, "float32", params))


@pytest.mark.parametrize("name, mod, opts", CODECS)
@pytest.mark.parametrize("cols", [96, 100])  # 100: not a multiple of any block
def test_correlated_inputs_lower_the_output_error(name, mod, opts, cols):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((41, cols)).astype(np.float32)
    x = rng.standard_normal((3000, cols)) @ rng.standard_normal((cols, cols)) * 0.3 + rng.standard_normal((3000, cols))
    cal, test = x[:2000], x[2000:]
    params, payload, deq = gptq.encode(name, opts, w, cal.T @ cal / len(cal))
    got = mod.decode(payload, w.shape, "float32", params)
    np.testing.assert_array_equal(deq, got)  # the returned tensor is what a reader decodes
    p2, pay2 = mod.encode(w, opts)
    plain = mod.decode(pay2, w.shape, "float32", p2)
    err = lambda q: np.linalg.norm((q - w) @ test.T)  # noqa: E731 - held-out inputs
    assert err(got) < 0.9 * err(plain)


def test_shapes_and_eligibility():
    assert gptq.eligible("q4", {}, (8, 64)) and gptq.eligible("q8", {}, (4, 8, 2, 2))
    assert not gptq.eligible("q4", {}, (8, 48)) and not gptq.eligible("raw", {}, (8, 64))
    assert gptq.eligible("q4", {}, (8, 80)) and gptq.eligible("prng", {"bits": 3}, (8, 1280))
    assert gptq.eligible("prng", {"bits": 3}, (8, 24)) and not gptq.eligible("prng", {"bits": 4}, (8, 12))
    w = np.ones((4, 48), np.float32)
    with pytest.raises(SeedError, match="not a multiple"):
        gptq.encode("q4", {}, w, np.eye(48))
    with pytest.raises(SeedError, match="does not match"):
        gptq.encode("q8", {}, w[:, :32], np.eye(16))


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, stride=2)
        self.pw = torch.nn.Conv2d(8, 16, 1)
        self.fc = torch.nn.Linear(16 * 4 * 4, 32)
        self.out = torch.nn.Linear(32, 5)

    def forward(self, x):
        h = torch.relu(self.pw(torch.relu(self.conv(x))))
        return self.out(torch.relu(self.fc(h.flatten(1))))


def test_hessians_measure_the_layer_output_change():
    """tr(ΔW H ΔWᵀ) is the mean squared change of the layer's output per position:
    checks the column order of unfold against the weight's flattening."""
    from seedcore.capture import capture

    torch.manual_seed(0)
    net = _Net().eval()
    x = torch.randn(6, 3, 8, 8)
    graph, _ = capture(net, (x[:2],))
    hs = gptq.collect_hessians(net, (x,), graph, ["pw.weight", "fc.weight", "out.weight"])
    assert set(hs) == {"pw.weight", "fc.weight", "out.weight"}  # conv.weight: 27 columns, not asked
    hs.update(gptq.collect_hessians(net, (x,), graph, ["conv.weight"]))
    acts = {}
    hooks = [getattr(net, n).register_forward_pre_hook(lambda m, a, n=n: acts.__setitem__(n, a[0]))
             for n in ("conv", "pw", "fc")]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    g = torch.Generator().manual_seed(3)
    for name, layer in (("conv", net.conv), ("pw", net.pw)):
        dw = torch.randn(layer.weight.shape, generator=g, dtype=torch.float64)
        dy = torch.nn.functional.conv2d(acts[name].double(), dw, stride=layer.stride, padding=layer.padding)
        want = float((dy ** 2).sum()) / (dy.shape[0] * dy.shape[2] * dy.shape[3])
        d2 = dw.reshape(dw.shape[0], -1).numpy()
        got = float(np.trace(d2 @ hs[f"{name}.weight"] @ d2.T))
        assert got == pytest.approx(want, rel=1e-9)
    dw = torch.randn(net.fc.weight.shape, generator=g, dtype=torch.float64)
    dy = acts["fc"].double() @ dw.T
    got = float(np.trace(dw.numpy() @ hs["fc.weight"] @ dw.numpy().T))
    assert got == pytest.approx(float((dy ** 2).sum()) / dy.shape[0], rel=1e-9)


def test_extract_with_gptq_is_closer_on_held_out_inputs(tmp_path):
    import seedcore

    torch.manual_seed(0)
    net = _Net().eval()
    mix = torch.randn(3, 3) * 0.8 + torch.eye(3)  # correlated colour channels
    def data(n, seed):
        gen = torch.Generator().manual_seed(seed)
        return torch.einsum("ij,njhw->nihw", mix, torch.randn(n, 3, 8, 8, generator=gen))
    cal, test = data(256, 1), data(64, 2)
    with torch.no_grad():
        ref = net(test).numpy()
    errs = {}
    for g in (False, True):
        seed = seedcore.extract(net, codec="q4", example_inputs=(cal[:2],), calibration=(cal,) if g else None, gptq=g,
                                progress=False)
        assert seed.provenance["options"]["gptq"] is g
        if g:
            assert seed.provenance["gptq"]["tensors"] == 2  # fc and out (256, 32 columns); conv 27, pw 8
        seed.save(tmp_path / f"g{g}.seed")
        got = seedcore.assemble(tmp_path / f"g{g}.seed")(test.numpy())
        errs[g] = float(np.mean((got - ref) ** 2))
    assert errs[True] < 0.8 * errs[False]


def test_gptq_needs_a_module():
    import seedcore

    with pytest.raises(SeedError, match="needs a module"):
        seedcore.extract({"w": np.ones((4, 32), np.float32)}, codec="q4", gptq=True, progress=False)


def test_shrunk_hessian_generalises_from_few_rows():
    """Fitted on fewer calibration rows than columns, gptq hides its error in the
    directions the rows leave empty; other inputs from the same distribution do not
    leave them empty.  Shrinking H toward the identity by k / rows (``gptq.shrunk``,
    what extract and the sequential pass use) lowers the error on held-out inputs
    (measured: about half), and beats plain rounding, which the unshrunk fit does not."""
    rng = np.random.default_rng(0)
    k, r = 256, 64
    a = rng.standard_normal((k, k)) / np.sqrt(k)
    chol = np.linalg.cholesky(a @ a.T + 0.05 * np.eye(k))
    w = rng.standard_normal((48, k)).astype(np.float32)
    xs, xt = rng.standard_normal((r, k)) @ chol.T, rng.standard_normal((4096, k)) @ chol.T
    h, ht = xs.T @ xs / r, xt.T @ xt / len(xt)

    def held_out(d):
        e = np.asarray(d, np.float64) - w
        return float(np.einsum("ij,jk,ik->", e, ht, e))

    hs = gptq.shrunk(h, r)
    np.testing.assert_allclose(hs - h, np.eye(k) * np.mean(np.diag(h)) * k / r, rtol=1e-12, atol=0)
    assert gptq.shrunk(h, 100 * k)[0, 0] == pytest.approx(h[0, 0] * 1.0 + np.mean(np.diag(h)) / 100)
    fitted = held_out(gptq.encode("q4", {}, w, h, threads=1)[2])
    shrunk = held_out(gptq.encode("q4", {}, w, hs, threads=1)[2])
    plain = held_out(q4.decode(q4.encode(w, {})[1], w.shape, "float32", {"block": 32}))
    # unshrunk, gptq on 64 rows for 256 columns does worse than plain rounding on new inputs
    assert shrunk < 0.97 * plain and plain < fitted and shrunk < 0.7 * fitted, (fitted, shrunk, plain)


def test_collect_hessians_counts_rows():
    from seedcore.capture import capture

    torch.manual_seed(0)
    net = _Net().eval()
    x = torch.randn(5, 3, 8, 8)
    graph, _ = capture(net, (x[:2],))
    counts = {}
    hs = gptq.collect_hessians(net, (x,), graph, ["pw.weight", "fc.weight"], counts)
    assert set(counts) == set(hs)
    acts = {}
    hooks = [getattr(net, n).register_forward_pre_hook(lambda m, a, n=n: acts.__setitem__(n, a[0]))
             for n in ("pw", "fc")]
    with torch.no_grad():
        net(x)
    for hk in hooks:
        hk.remove()
    a = acts["pw"]
    assert counts["pw.weight"] == a.shape[0] * a.shape[2] * a.shape[3]  # a 1x1 conv: one row per position
    assert counts["fc.weight"] == acts["fc"].reshape(-1, acts["fc"].shape[-1]).shape[0]
