"""Thermal annealing and the evolutionary search on the device (issue 4): a seed's
assembled weights plus a few local labelled samples -> lower task loss, in the
dependency-free native core (no gradients, no torch).

    model = seedcore.assemble("lenet.seed")
    hist = run_anneal(model, X, y, seedcore.Anneal(steps=3000, train="head"), seed=0)
    hist = run_anneal(model, X, y, seedcore.Evolve(generations=100), seed=0)

``run_anneal`` changes the model's float32 arrays in place (``model.state_dict()``
shares them) and makes the model rebuild its native executor. The energy, the
proposals, the acceptance rule, the schedules and the prior are defined in
docs/training.md, section "Annealing".
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from .errors import SeedError

SCHEDULES = ("geometric", "linear", "cosine", "adaptive")
LOSSES = ("cross_entropy", "mse", "cosine")


@dataclass
class Anneal:
    """Simulated annealing with Metropolis acceptance.

    steps           proposals; each costs one forward pass on the batch
    t0              starting temperature; None: automatic, so that an average uphill
                    move of ``calibration`` probe proposals is accepted with p = 0.8
    t_end           final temperature; None: t0 / 1000
    schedule        "geometric" | "linear" | "cosine" | "adaptive" (cools by epochs of
                    max(10, steps/50) steps, faster when the energy fluctuates little
                    compared with T, slower when it fluctuates much)
    reheat          extra cycles: the steps split into reheat + 1 cycles, cycle c
                    starting at t0 * reheat_factor**c from the best state so far
    proposal_scale  initial step, in units of each tensor's standard deviation
    adapt_scale     Robbins-Monro adaptation of each tensor's step toward target_accept
    fraction        share of a tensor's values one proposal perturbs (at least one)
    prior           weight of the prior (w - mean_t)^2 / std_t^2 averaged over the
                    trainable values, mean_t / std_t the tensor's at the start; 0: off
    train           which tensors change (seedcore.trainable: "all", "head", "last:K",
                    "biases_norms", "re:PATTERN" or a list of names)
    loss            "cross_entropy" (integer labels), "mse" or "cosine" (float
                    targets [n, d]); None: cross_entropy for integer y, else mse
    batch_size      None: every sample in every evaluation; else a random batch of
                    this size, drawn afresh every resample_every steps
    keep_best       end at the best state seen (else the last one)
    threads         forward-pass threads (None: the model's ``threads``; 0: all cores);
                    results do not depend on it
    """

    steps: int = 2000
    t0: float | None = None
    t_end: float | None = None
    schedule: str = "geometric"
    reheat: int = 0
    reheat_factor: float = 0.5
    proposal_scale: float = 1.0
    adapt_scale: bool = True
    target_accept: float = 0.25
    fraction: float = 0.01
    prior: float = 0.0
    train: Any = "all"
    loss: str | None = None
    batch_size: int | None = None
    resample_every: int = 20
    calibration: int = 20
    keep_best: bool = True
    threads: int | None = None

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise SeedError(f"Anneal: unknown schedule {self.schedule!r} (one of: {', '.join(SCHEDULES)})")
        _check_loss(self.loss, "Anneal")

    def _native_config(self) -> dict:
        return {
            "steps": _int(self.steps, "steps"), "t0": float(self.t0 or 0.0), "t_end": float(self.t_end or 0.0),
            "schedule": self.schedule, "reheat": _int(self.reheat, "reheat"),
            "reheat_factor": float(self.reheat_factor), "proposal_scale": float(self.proposal_scale),
            "adapt_scale": bool(self.adapt_scale), "target_accept": float(self.target_accept),
            "fraction": float(self.fraction), "prior": float(self.prior),
            "batch_size": _int(self.batch_size or 0, "batch_size"),
            "resample_every": _int(self.resample_every, "resample_every"),
            "calibration": _int(self.calibration, "calibration"), "keep_best": bool(self.keep_best),
        }


@dataclass
class Evolve:
    """The evolutionary search, with the same energy as ``Anneal``.

    generations     generations after the initial population; forward passes in all:
                    population + generations * (population - elite)
    population      individuals (each a copy of the trainable values); the first is
                    the model itself, the others its mutants
    elite           the best ``elite`` pass unchanged to the next generation
    tournament      a parent is the best of this many random individuals
    mutation_scale  Gaussian mutation step, in units of each tensor's standard deviation
    fraction        share of each tensor's values one mutation changes (at least one)
    crossover       probability that a child takes each tensor from one of two parents
                    at random (else it copies one parent)
    adapt_scale     the 1/5 success rule: the scale grows x1.22 when more than a fifth
                    of a generation's children beat their parent, else shrinks
    prior, train, loss, batch_size (a fresh batch per generation), threads: as Anneal
    """

    generations: int = 50
    population: int = 16
    elite: int = 2
    tournament: int = 3
    mutation_scale: float = 1.0
    fraction: float = 0.01
    crossover: float = 0.5
    adapt_scale: bool = True
    prior: float = 0.0
    train: Any = "all"
    loss: str | None = None
    batch_size: int | None = None
    threads: int | None = None

    def __post_init__(self):
        _check_loss(self.loss, "Evolve")

    def _native_config(self) -> dict:
        return {
            "generations": _int(self.generations, "generations"), "population": _int(self.population, "population"),
            "elite": _int(self.elite, "elite"), "tournament": _int(self.tournament, "tournament"),
            "mutation_scale": float(self.mutation_scale), "fraction": float(self.fraction),
            "crossover": float(self.crossover), "adapt_scale": bool(self.adapt_scale), "prior": float(self.prior),
            "batch_size": _int(self.batch_size or 0, "batch_size"),
        }


def _check_loss(loss, who: str) -> None:
    if loss is not None and loss not in LOSSES:
        raise SeedError(f"{who}: unknown loss {loss!r} (one of: {', '.join(LOSSES)})")


def _int(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise SeedError(f"{what} must be a whole number, got {v!r}")
    return int(v)


def _inputs(model, X) -> list[np.ndarray]:
    specs = model._graph("anneal")["inputs"]
    names = [s["name"] for s in specs]
    if isinstance(X, Mapping):
        given = dict(X)
    elif isinstance(X, (tuple, list)) and len(names) > 1:
        if len(X) != len(names):
            raise SeedError(f"{model.name}: the graph takes {len(names)} inputs {names}, got {len(X)} arrays")
        given = dict(zip(names, X))
    else:
        if len(names) != 1:
            raise SeedError(f"{model.name}: the graph takes {len(names)} inputs {names}: pass a dict or a tuple")
        given = {names[0]: X}
    arrays = model._prepare(given)
    return [arrays[n] for n in names]


def run_anneal(model, X, y, cfg: Union[Anneal, Evolve], *, seed: int = 0,
               progress: Union[None, bool, Callable[[int, float, float], Any]] = None,
               threads: int | None = None) -> dict:
    """Anneals (``Anneal``) or evolves (``Evolve``) the trainable weights of ``model``
    (a ``seedcore.Model`` with a graph) to lower the loss on ``X``, ``y``.

    X         the graph's input: an array [n, ...] (one-input graphs), or a dict /
              tuple of arrays in the graph's input order
    y         integer labels [n] (cross_entropy) or float targets [n, d]
    seed      the run's only source of randomness: same seed, same weights and
              history, whatever the thread count
    progress  None, True (a tqdm bar, when tqdm is installed) or a callable
              (step, energy, temperature); called at most ~20 times a second
              (Evolve: (generation, best energy, mutation scale))

    Returns the history: energies (anneal: the current state's, per step; evolve:
    the best, per generation), temperatures, acceptance (anneal: over the last 100
    steps; evolve: share of children that beat their parent), scales,
    initial_energy, best_energy, final_energy, t0, t_end, evaluations (forward
    passes), accepted, rejected_nonfinite, seconds, plus mode, loss, trainable."""
    from . import _native
    from .onnx_export import check_graph, graph_weights
    from .trainable import select_trainable

    if not isinstance(cfg, (Anneal, Evolve)):
        raise SeedError(f"run_anneal: cfg must be seedcore.Anneal or seedcore.Evolve, got {type(cfg).__name__}")
    mode = "anneal" if isinstance(cfg, Anneal) else "evolve"
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise SeedError(f"{mode}: seed must be a whole number in [0, 2**64), got {seed!r}")
    graph = model._graph(mode)
    check_graph(graph, model._tensors, where=f"{model.name}: graph")
    inputs = _inputs(model, X)
    n = int(inputs[0].shape[0]) if inputs and inputs[0].ndim else 0

    try:
        ya = np.asarray(y)
    except Exception as e:
        raise SeedError(f"{mode}: y is not an array ({e})") from None
    loss = cfg.loss or ("cross_entropy" if ya.dtype.kind in "iub" else "mse")
    labels = targets = None
    if loss == "cross_entropy":
        if ya.dtype.kind not in "iub":
            raise SeedError(f"{mode}: cross_entropy needs integer class labels, got {ya.dtype}")
        if ya.ndim != 1:
            raise SeedError(f"{mode}: labels must be one per sample (shape [n]), got shape {ya.shape}")
        if ya.dtype.kind == "u" and ya.size and int(ya.max()) >= 2**63:
            raise SeedError(f"{mode}: labels beyond int64")
        labels = np.ascontiguousarray(ya, dtype=np.int64)
    else:
        if ya.dtype.kind not in "fiu":
            raise SeedError(f"{mode}: {loss} needs numeric targets [n, d], got {ya.dtype}")
        if ya.ndim < 1:
            raise SeedError(f"{mode}: {loss} needs targets [n, d], got a scalar")
        targets = np.ascontiguousarray(ya.reshape(len(ya), -1) if ya.ndim != 1 else ya.reshape(-1, 1),
                                       dtype=np.float32)
    if len(ya) != n:
        raise SeedError(f"{mode}: {len(ya)} labels/targets for {n} samples: X and y must have the same length")

    names = select_trainable(graph, model._tensors, cfg.train)
    weights = graph_weights(graph, model._tensors)
    unused = [nm for nm in names if nm not in weights]
    if unused:
        raise SeedError(f"{mode}: train selects {unused[:3]}, which the graph does not use")
    for nm in names:  # the model's own arrays, changed in place
        a = model._tensors[nm]
        if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable):
            a = np.array(a, dtype=np.float32, order="C")
            model._tensors[nm] = a
        weights[nm] = a

    t = threads if threads is not None else (cfg.threads if cfg.threads is not None else model.threads)
    t = int(t)
    if t == 0:
        t = os.cpu_count() or 1
    if t < 0:
        raise SeedError(f"{mode}: threads must be >= 0, got {t}")

    config = cfg._native_config()
    config["seed"] = int(seed)
    total = config["steps"] if mode == "anneal" else config["generations"]
    callback, close = _progress(progress, total, mode)
    try:
        hist = _native.anneal(json.dumps(graph), weights, names, inputs, labels, targets, mode, config, loss,
                              threads=t, progress=callback, what=f"{model.name}: data")
    finally:
        model._executor = None  # the packed copies in the old executor are stale
        close()
    out = {k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v) for k, v in hist.items()}
    out.update(mode=mode, loss=loss, trainable=names)
    return out


def _progress(progress, total: int, mode: str):
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    if progress is not True:
        raise SeedError(f"{mode}: progress must be None, True or a callable, got {type(progress).__name__}")
    try:
        from tqdm.auto import tqdm
    except ImportError:  # no tqdm: a plain line on stderr
        start = time.perf_counter()

        def line(step, energy, temp):
            print(f"\r{mode} {step}/{total} E={energy:.4g} {'T' if mode == 'anneal' else 'scale'}={temp:.3g} "
                  f"{time.perf_counter() - start:.1f}s", end="" if step < total else "\n", file=sys.stderr)
        return line, lambda: None
    bar = tqdm(total=total, desc=mode, unit="step" if mode == "anneal" else "gen")
    last = [0]

    def update(step, energy, temp):
        bar.update(step - last[0])
        last[0] = step
        bar.set_postfix({"E": f"{energy:.4g}", "T" if mode == "anneal" else "scale": f"{temp:.3g}"}, refresh=False)
    return update, bar.close


__all__ = ["Anneal", "Evolve", "run_anneal", "SCHEDULES"]

