"""Which tensors train: the one selection rule shared by on-device fine-tuning
(``seedcore.Finetune(train=...)``) and thermal annealing / the evolutionary search
(``seedcore.Anneal(train=...)``), so the same spec means the same tensors in both.

A spec is one of
    "all"            every floating weight the graph reads
    "head"           the weights of the last layer (the last node that reads a weight)
    "last:K"         the weights of the last K layers (K >= 1)
    "biases_norms"   the one-dimensional floating weights: biases and norm scales/shifts
    "re:PATTERN"     the weights whose name matches the regular expression (re.search)
    [names...]       exactly these weights (each must exist and be floating)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from .errors import SeedError

SPECS = ("all", "head", "last:K", "biases_norms", "re:PATTERN", "a list of names")


def _layers(graph: Mapping, floating: set[str]) -> list[list[str]]:
    """The floating weights each node reads, for the nodes that read any, in node order."""
    layers = []
    for node in graph.get("nodes", []):
        names = []
        for v in node.get("in", []):
            if v in floating and v not in names:
                names.append(v)
        if names:
            layers.append(names)
    return layers


def select_trainable(graph: Mapping | None, weights: Mapping[str, np.ndarray], spec) -> list[str]:
    """The names of the weights ``spec`` selects, in ``weights`` order; SeedError when
    the spec is malformed or selects nothing."""
    floating = [n for n, w in weights.items() if np.issubdtype(np.asarray(w).dtype, np.floating)]
    fset = set(floating)
    if isinstance(spec, (list, tuple)):
        chosen = set()
        for n in spec:
            if not isinstance(n, str):
                raise SeedError(f"train: names must be strings, got {n!r}")
            if n not in weights:
                raise SeedError(f"train: the model has no tensor named {n!r}")
            if n not in fset:
                raise SeedError(f"train: tensor {n!r} is not floating point and cannot train")
            chosen.add(n)
        what = "the names given"
    elif isinstance(spec, str):
        what = repr(spec)
        if spec == "all":
            chosen = set(fset) if graph is None else {n for layer in _layers(graph, fset) for n in layer}
        elif spec == "biases_norms":
            chosen = {n for n in floating if np.asarray(weights[n]).ndim == 1}
        elif spec == "head" or spec.startswith("last:"):
            if spec == "head":
                k = 1
            else:
                try:
                    k = int(spec[5:])
                except ValueError:
                    k = 0
                if k < 1:
                    raise SeedError(f"train: {spec!r} needs a whole number of layers >= 1 (e.g. 'last:2')")
            if graph is None:
                raise SeedError(f"train: {spec!r} needs the model's graph (a seed extracted with example_inputs)")
            chosen = {n for layer in _layers(graph, fset)[-k:] for n in layer}
        elif spec.startswith("re:"):
            try:
                pat = re.compile(spec[3:])
            except re.error as e:
                raise SeedError(f"train: bad regular expression {spec[3:]!r}: {e}") from None
            chosen = {n for n in floating if pat.search(n)}
        else:
            raise SeedError(f"train: unknown selection {spec!r} (one of: {', '.join(SPECS)})")
    else:
        raise SeedError(f"train: expected a string or a list of names, got {type(spec).__name__}")
    out = [n for n in floating if n in chosen]
    if not out:
        raise SeedError(f"train: {what} selects no trainable tensor")
    return out
