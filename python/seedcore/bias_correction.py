"""Bias correction after quantisation (empirical, layer by layer).

Rounding a layer's weights changes the mean of its outputs: E[ΔW x] is not zero
when the inputs x have a non-zero mean (ReLU / ReLU6 outputs are never negative),
and the shift adds up through the network.  Nagel et al. ("Data-Free Quantization
Through Weight Equalization and Bias Correction", 2019) shift each layer's bias by
the expected output error.  Here the expectation is measured on calibration
inputs, in graph order: for each ``conv2d`` / ``linear`` node with a bias, the
per-output-channel mean of its output in the encoded model (every earlier layer
already encoded and corrected) is set to its mean in the original model,

    b ← b + E[y_original] − E[y_encoded]

(over the batch and every other axis than the channel one: axis 1 for conv2d,
the last for linear).  The biases are separate float32 tensors of the file, so
the format does not change; only their stored values do.  Deterministic for
given weights and calibration inputs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import SeedError

#: calibration rows per native forward pass (bounds the memory of intermediate values)
CHUNK = 8


def value_reads(graph: Mapping) -> dict[str, int]:
    """{value name: how many node inputs read it}."""
    reads: dict[str, int] = {}
    for node in graph.get("nodes", []):
        for n in node["in"]:
            if n is not None:
                reads[n] = reads.get(n, 0) + 1
    return reads


def biased_nodes(graph: Mapping, biases: Sequence[str] | None = None) -> list[tuple[int, dict]]:
    """(index, node) of each conv2d / linear node whose bias is a file tensor read by
    no other node (and, with ``biases``, one of those names)."""
    reads = value_reads(graph)
    allowed = None if biases is None else set(biases)
    out = []
    for i, node in enumerate(graph.get("nodes", [])):
        if node.get("op") not in ("conv2d", "linear") or len(node["in"]) < 3 or node["in"][2] is None:
            continue
        b = node["in"][2]
        if reads.get(b, 0) != 1 or (allowed is not None and b not in allowed):
            continue
        out.append((i, node))
    return out


def _with_outputs(graph: Mapping, upto: int, names: Sequence[str], shapes: Mapping[str, tuple]) -> dict:
    """The graph's first ``upto`` nodes with ``names`` as its outputs (each dim a
    symbol of its own: the executor checks only the rank then)."""
    g = copy.deepcopy(dict(graph))
    g["nodes"] = g["nodes"][:upto]
    g["outputs"] = [{"name": n, "dtype": "float32", "shape": [f"_bc{i}_{k}" for k in range(len(shapes[n]))]}
                    for i, n in enumerate(names)]
    return g


def _channel_sums(model, inputs: Mapping[str, np.ndarray], axes: Mapping[str, int], threads: int) -> dict:
    """{output name: (per-channel sum over every other axis, float64; count)} over all rows."""
    rows = next(iter(inputs.values())).shape[0]
    acc: dict[str, list] = {}
    for a in range(0, rows, CHUNK):
        part = {k: v[a:a + CHUNK] for k, v in inputs.items()}
        for name, y in model.run(part, threads=threads).items():
            y = np.asarray(y, np.float64)
            ax = axes[name] % y.ndim
            s = y.sum(axis=tuple(i for i in range(y.ndim) if i != ax))
            n = y.size // y.shape[ax]
            if name in acc:
                acc[name][0] += s
                acc[name][1] += n
            else:
                acc[name] = [s, n]
    return {k: s / max(n, 1) for k, (s, n) in acc.items()}


def correct_biases(graph: Mapping, original: Mapping[str, np.ndarray], encoded: Mapping[str, np.ndarray],
                   calibration: Any, *, biases: Sequence[str] | None = None, threads: int = 0,
                   progress: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Corrected biases {name: float32 array} for the conv2d / linear nodes of
    ``graph`` (``biased_nodes``), given the original weights and the encoded ones
    as decoded (both: every tensor the graph reads) and calibration inputs (as
    ``extract`` takes them).  ``encoded``'s biases are the starting values."""
    from .allocate import calibration_arrays
    from .graph_ref import value_shapes
    from .model import Model

    nodes = biased_nodes(graph, biases)
    if not nodes:
        return {}
    inputs = calibration_arrays(graph, calibration)
    rows = {v.shape[0] if v.ndim else 0 for v in inputs.values()}
    if len(rows) != 1 or 0 in rows:
        raise SeedError(f"bias correction: the calibration inputs need one common batch axis, got "
                        f"{ {k: list(v.shape) for k, v in inputs.items()} }")
    for name in {n for _, node in nodes for n in node["in"][1:3]}:
        if name not in original or name not in encoded:
            raise SeedError(f"bias correction: tensor {name!r} is missing")
    # the rank of each value, from one calibration row on the reference executor
    ref_w = {k: np.asarray(v) for k, v in original.items()}
    shapes = value_shapes(graph, ref_w, {k: v[:1] for k, v in inputs.items()})
    outs = [node["out"][0] for _, node in nodes]
    axes = {node["out"][0]: (1 if node["op"] == "conv2d" else -1) for _, node in nodes}
    last = max(i for i, _ in nodes) + 1
    want = _channel_sums(Model(ref_w, graph=_with_outputs(graph, last, outs, shapes), name="bias correction"),
                         inputs, axes, threads)
    cur = {k: np.asarray(v) for k, v in encoded.items()}
    fixed: dict[str, np.ndarray] = {}
    for i, node in nodes:
        out, b = node["out"][0], node["in"][2]
        if progress is not None:
            progress(b)
        g = _with_outputs(graph, i + 1, [out], shapes)
        got = _channel_sums(Model(cur, graph=g, name="bias correction"), inputs, axes, threads)[out]
        bias = np.asarray(cur[b], np.float64)
        if bias.shape != got.shape:
            raise SeedError(f"bias correction: bias {b!r} has shape {list(bias.shape)}, the output of its "
                            f"node has {got.shape[0]} channels")
        new = (bias + (want[out] - got)).astype(np.float32)
        if not np.all(np.isfinite(new)):
            raise SeedError(f"bias correction: bias {b!r} would not be finite (the calibration outputs overflow)")
        cur[b] = new
        fixed[b] = new
    return fixed
