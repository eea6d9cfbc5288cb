"""Sequential, error-corrected data-aware rounding: each layer is encoded against
the inputs it will really see.

Data-aware rounding (``seedcore.gptq``) minimises a layer's own output error
``‖ΔW X‖²`` on the original model's inputs ``X``.  In a deep network the layers
before it are encoded too, so at run time the layer sees ``X̃ ≠ X`` and the
errors compound (docs/findings.md, failure mode 5).  Here the layers are encoded
one at a time in graph order, each against the inputs ``X̃`` that the already
encoded (and bias-corrected) layers before it produce, with the original model's
output as the target (the asymmetric calibration of GPTAQ: Li et al., "GPTAQ:
Efficient Finetuning-Free Quantization for Asymmetric Calibration", ICML 2025;
here in a simpler two-step form: a ridge-regression correction of W, then
data-aware rounding of the corrected weights against H̃):

    minimise  ‖W X − W′ X̃‖² / R + λ‖W′ − W‖²
    ⇒  W′ = W + W · D · (H̃ + λI)⁻¹,   D = (X − X̃) X̃ᵀ / R,   H̃ = X̃ X̃ᵀ / R

over the R rows of the calibration inputs (a linear layer's input vectors, or a
convolution's unfolded patches; per group for grouped convolutions), with
λ = mean(diag H̃) · (DAMP + k / R) for k inputs: GPTQ's damping, plus a shrinkage
toward W that grows as the rows per input get few (a classifier calibrated on a
few dozen images is hardly corrected; fitted without it, the correction
followed the calibration rows and made MiniLM worse on other sentences).
``W′`` is then encoded with its codec (by ``gptq.encode`` against ``H̃``, shrunk
by the same k / R rule (``gptq.shrunk``), where it applies, plainly otherwise;
gptq fitted on few rows hides its error in directions the calibration rows leave
empty, and other inputs do not: the shrinkage took MiniLM from 0.9818 to 0.9849
mean cosine on held-out sentences), so what the
earlier layers' rounding did to this layer's inputs is compensated where the
inputs' correlations allow it.  Each node's bias is corrected right after its
weight (``seedcore.bias_correction``'s rule: the output's per-channel mean on the
calibration inputs is the original model's), so the next layer's ``X̃`` includes
it.  The format does not change; deterministic for given weights and inputs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import SeedError

#: calibration rows per unfold when accumulating a convolution's statistics (bounds memory)
CHUNK = 4


def weight_nodes(graph: Mapping) -> list[tuple[int, dict]]:
    """(index, node) of each conv2d / linear node whose weight (in[1]) is read by no other node."""
    from .bias_correction import value_reads

    reads = value_reads(graph)
    out = []
    for i, node in enumerate(graph.get("nodes", [])):
        if node.get("op") in ("conv2d", "linear") and len(node["in"]) >= 2 and reads.get(node["in"][1]) == 1:
            out.append((i, node))
    return out


def _prefix(graph: Mapping, upto: int, value: str, rank: int) -> dict:
    g = copy.deepcopy(dict(graph))
    g["nodes"] = g["nodes"][:upto]
    g["outputs"] = [{"name": value, "dtype": "float32", "shape": [f"_sq{k}" for k in range(rank)]}]
    return g


def _rows(node: Mapping, x: np.ndarray, groups: int, kk: int, kernel: tuple):
    """Yields the node's input rows as float64 [R, groups, kk] (chunks of the calibration rows)."""
    if node["op"] == "linear":
        yield np.asarray(x, np.float64).reshape(-1, groups, kk)
        return
    import torch
    import torch.nn.functional as F

    a = node["attrs"]
    for s in range(0, x.shape[0], CHUNK):
        t = torch.from_numpy(np.ascontiguousarray(x[s:s + CHUNK]))
        cols = F.unfold(t, kernel, dilation=tuple(a["dilation"]), padding=tuple(a["padding"]),
                        stride=tuple(a["stride"]))  # [N, Cin·kh·kw, L], channel-major
        yield cols.transpose(1, 2).reshape(-1, groups, kk).numpy().astype(np.float64)


def _stats(node: Mapping, x: np.ndarray, xt: np.ndarray, groups: int, kk: int, kernel: tuple = ()):
    """(H̃ [G, kk, kk], D [G, kk, kk], mean x [G, kk], mean x̃ [G, kk]) over all rows."""
    h = np.zeros((groups, kk, kk))
    d = np.zeros((groups, kk, kk))
    mx = np.zeros((groups, kk))
    mt = np.zeros((groups, kk))
    n = 0
    for r, rt in zip(_rows(node, x, groups, kk, kernel), _rows(node, xt, groups, kk, kernel)):
        h += np.einsum("rgi,rgj->gij", rt, rt, optimize=True)
        d += np.einsum("rgi,rgj->gij", r - rt, rt, optimize=True)
        mx += r.sum(0)
        mt += rt.sum(0)
        n += r.shape[0]
    n = max(n, 1)
    return h / n, d / n, mx / n, mt / n, n


def corrected_weight(w: np.ndarray, h: np.ndarray, d: np.ndarray, damp: float, rows: int = 0) -> np.ndarray:
    """W′ = W + W D (H̃ + λI)⁻¹ per group (``w`` as [G, out per group, kk]), with
    λ = mean(diag H̃) · (damp + kk / rows): the correction is a ridge regression
    fitted on ``rows`` calibration rows for kk inputs, and the fewer rows per input,
    the more it is shrunk toward W (0 rows: damp alone)."""
    out = np.empty_like(w)
    kk = w.shape[2]
    for g in range(w.shape[0]):
        hg = h[g].copy()
        dead = np.diag(hg) <= 0
        hg[dead, dead] = 1.0
        lam = float(np.mean(np.diag(hg))) * (damp + (kk / rows if rows > 0 else 0.0))
        hg[np.diag_indices_from(hg)] += lam
        try:
            # (W D) (H̃ + λI)⁻¹ = solve((H̃ + λI)ᵀ, (W D)ᵀ)ᵀ; H̃ is symmetric
            corr = np.linalg.solve(hg, (w[g] @ d[g]).T).T
        except np.linalg.LinAlgError:
            corr = np.zeros_like(w[g])
        out[g] = w[g] + corr
    return out


def encode_sequential(graph: Mapping, original: Mapping[str, np.ndarray], current: dict,
                      calibration: Any, weights: Sequence[str],
                      encode: Callable[[str, np.ndarray, np.ndarray | None], np.ndarray], *,
                      biases: Sequence[str] = (), damp: float = 0.01, threads: int = 0,
                      progress: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Encodes the ``weights`` (names of conv2d / linear weights, ``weight_nodes``) in
    graph order against the inputs the encoded prefix produces, and corrects the
    ``biases`` (float32 biases of those nodes or of others) on the way.

    original  every tensor the graph reads, as the source model has it (float32)
    current   the same names as they will decode: tensors outside ``weights`` already
              encoded and decoded; updated in place as the pass goes on
    encode    encode(name, W′ float32, H̃ [kk, kk] float64 or None for grouped convs)
              -> the decoded tensor; called once per name of ``weights``
    Returns the corrected biases {name: float32}."""
    from .allocate import calibration_arrays
    from .gptq import shrunk
    from .graph_ref import value_shapes
    from .model import Model

    inputs = calibration_arrays(graph, calibration)
    from .bias_correction import biased_nodes

    want_w = set(weights)
    # bias correction's rule: a conv2d / linear bias read by that node alone (one shared is left as it is)
    want_b = {node["in"][2] for _, node in biased_nodes(graph, biases)}
    todo = [(i, node) for i, node in weight_nodes(graph)
            if node["in"][1] in want_w or (len(node["in"]) > 2 and node["in"][2] in want_b)]
    missing = want_w - {node["in"][1] for _, node in todo}
    if missing:
        raise SeedError(f"sequential encoding: {sorted(missing)[0]!r} is not the weight of a conv2d / linear node "
                        f"read by that node alone")
    if not todo:
        return {}
    ref_w = {k: np.asarray(v) for k, v in original.items()}
    ranks = {k: len(v) for k, v in value_shapes(graph, ref_w, {k: v[:1] for k, v in inputs.items()}).items()}
    fixed: dict[str, np.ndarray] = {}
    for i, node in todo:
        wname = node["in"][1]
        bname = node["in"][2] if len(node["in"]) > 2 else None
        if progress is not None:
            progress(wname)
        src = node["in"][0]
        g = _prefix(graph, i, src, ranks[src])
        x = next(iter(Model(ref_w, graph=g, name="sequential").run(inputs, threads=threads).values()))
        xt = next(iter(Model(current, graph=g, name="sequential").run(inputs, threads=threads).values()))
        w = np.asarray(original[wname], np.float32)
        cout = w.shape[0]
        groups = int(node["attrs"].get("groups", 1)) if node["op"] == "conv2d" else 1
        kk = int(np.prod(w.shape[1:]))
        if cout % groups:
            raise SeedError(f"sequential encoding: {wname!r}: {cout} output channels in {groups} groups")
        h, d, mx, mt, nrows = _stats(node, np.asarray(x, np.float32), np.asarray(xt, np.float32), groups, kk,
                              tuple(int(k) for k in w.shape[2:]))
        w3 = w.astype(np.float64).reshape(groups, cout // groups, kk)
        if wname in want_w:
            target = corrected_weight(w3, h, d, damp, nrows).reshape(w.shape).astype(np.float32)
            if not np.all(np.isfinite(target)):
                target = w
            # gptq rounds against H̃ shrunk by the same rows-per-input rule as the correction
            hh = shrunk(h[0], nrows) if groups == 1 else None
            dec = np.asarray(encode(wname, target, hh), np.float32).reshape(w.shape)
            current[wname] = dec
        else:
            dec = np.asarray(current[wname], np.float32)
        if bname is not None and bname in want_b:
            # output mean: W E[x] + b originally, W_enc E[x̃] + b′ now
            d3 = dec.astype(np.float64).reshape(groups, cout // groups, kk)
            shift = (np.einsum("goi,gi->go", w3, mx) - np.einsum("goi,gi->go", d3, mt)).reshape(-1)
            b = np.asarray(original[bname], np.float64) + shift
            if b.shape != (cout,) or not np.all(np.isfinite(b)):
                raise SeedError(f"sequential encoding: bias {bname!r} could not be corrected")
            fixed[bname] = b.astype(np.float32)
            current[bname] = fixed[bname]
    return fixed
