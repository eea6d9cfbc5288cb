"""The MNIST LeNet task shared by bench/ablate.py, zeroshot.py and budget.py: the fixed
4000/1000 split, the trained LeNet (the seeds' source), its seeds per codec (cached in
bench/out/), accuracy and agreement on the 1000 test images, and the --quick / --write /
--plots conventions of the issue-5 scripts."""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import seedcore

from _common import OUT, mnist_split, trained_lenet

# (label, codec, bits, rules) of the LeNet seeds, from 2x to the statistics-only end
CODECS = [
    ("fp16 (raw float16)", "raw", 16, None),
    ("q8", "q8", None, None),
    ("q4 (Q4_0-style)", "q4", None, None),
    ("prng 4.5 bpw", "prng", 4.5, None),
    ("prng 4 bpw", "prng", 4, None),
    ("prng 3 bpw", "prng", 3, None),
    ("stats (k = 8)", "stats", None, None),
]
QUICK_CODECS = ["fp16 (raw float16)", "q8", "q4 (Q4_0-style)", "prng 4 bpw", "stats (k = 8)"]


def parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="a small CI run that still produces every table (numbers not for RESULTS.md)")
    ap.add_argument("--write", action="store_true",
                    help="replace this script's section of bench/RESULTS.md and its plots in bench/plots/")
    ap.add_argument("--plots", default=None,
                    help="folder for the PNG plots (default: bench/plots with --write, else a temporary folder)")
    return ap


def check_args(ap: argparse.ArgumentParser, args) -> None:
    if args.quick and args.write:
        ap.error("--quick numbers never go into bench/RESULTS.md: run --write without --quick")


def plot_file(args, name: str) -> Path:
    """Where plot NAME goes: --plots DIR, else bench/plots/ (with --write), else a temporary folder."""
    from _common import plot_path
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
        return Path(args.plots) / f"{name}.png"
    if args.write:
        return plot_path(name)
    d = Path(tempfile.gettempdir()) / "seedcore-bench-plots"
    d.mkdir(exist_ok=True)
    return d / f"{name}.png"


def mean_sd(values) -> tuple[float, float]:
    v = [float(x) for x in values]
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def pm(values) -> str:
    m, s = mean_sd(values)
    return f"{m:.3f} ± {s:.3f}" if len(values) > 1 else f"{m:.3f}"


class Task:
    """The data, the trained LeNet and its seeds."""

    def __init__(self):
        import torch

        self.Xtr, self.ytr, self.Xte, self.yte = mnist_split()
        self.net = trained_lenet()
        with torch.no_grad():
            self.teacher_pred = self.net(torch.as_tensor(self.Xte)).argmax(1).numpy()
        self.teacher_acc = float((self.teacher_pred == self.yte).mean())
        self.fp32_bytes = 4 * sum(int(p.numel()) for p in self.net.state_dict().values())
        self.chance = float(np.bincount(self.yte).max() / len(self.yte))  # always the most frequent class
        self._paths: dict = {}

    def seed(self, codec: str, bits=None, rules=None, tag: str | None = None) -> Path:
        """The LeNet seed for (codec, bits, rules), cached in bench/out/ by seedcore version."""
        tag = tag or (f"{codec}{bits}" if bits is not None else codec)
        if tag in self._paths:
            return self._paths[tag]
        OUT.mkdir(exist_ok=True)
        path = OUT / f"lenet-e1-{tag}-v{seedcore.__version__}.seed"
        if not path.exists():
            import torch
            seed = seedcore.extract(self.net, codec=codec, bits=bits, rules=rules, progress=False,
                                    example_inputs=(torch.as_tensor(self.Xtr[:2]),))
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            seed.save(tmp)
            os.replace(tmp, path)
        self._paths[tag] = path
        return path

    def codec_seed(self, label: str) -> Path:
        _, codec, bits, rules = next(c for c in CODECS if c[0] == label)
        return self.seed(codec, bits, rules)

    def ratio(self, path) -> float:
        return self.fp32_bytes / os.path.getsize(path)

    def accuracy(self, model) -> float:
        return float((model(self.Xte).argmax(1) == self.yte).mean())

    def agreement(self, model) -> float:
        return float((model(self.Xte).argmax(1) == self.teacher_pred).mean())

    def train(self, path, n: int, *, seed: int = 0, init=None, finetune=None, anneal=None) -> tuple:
        """(test accuracy, seconds) of the seed at ``path`` (``init="random"``: a random init of
        its architecture) trained on the first ``n`` training samples."""
        t0 = time.perf_counter()
        if finetune is None and anneal is None:
            model = seedcore.assemble(path, seed=seed, init=init)
        else:
            model = seedcore.assemble(path, data=(self.Xtr[:n], self.ytr[:n]), finetune=finetune, anneal=anneal,
                                      seed=seed, init=init, progress=False)
        return self.accuracy(model), time.perf_counter() - t0
