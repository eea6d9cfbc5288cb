"""Data-aware rounding (GPTQ-style error feedback) for the block codecs and ecq.

Plain encoding rounds every weight block to its nearest code. But a layer's
output error is ``ΔW X``, not ``ΔW``: what matters is the error weighted by the
second moment of the layer's inputs, ``H = E[x xᵀ]``. GPTQ (Frantar et al.,
"GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers", 2022) encodes the input columns of a weight matrix left to right
and, after each group, moves the group's rounding error onto the columns not yet
encoded, where the inputs' correlations let it be compensated:

    W[:, rest] -= E_g · U_gg⁻¹ · U_g,rest        U = upper Cholesky factor of H⁻¹

(for a group of one column this is GPTQ's ``err / U_jj · U_j,rest``). The file
format does not change: the result is an ordinary q4 / q8 / prng / ecq payload, decoded
as any other; only the encoder's choice of codes differs.

Applies to ``linear`` weights and ungrouped ``conv2d`` weights (columns = input
features, or input channel × kernel positions as ``unfold`` orders them) whose
column count is a multiple of the codec's block (32 for q4/q8, C for prng; ecq,
whose step is the tensor's, rounds one weight at a time: GPTQ's own case), so
that every block lies in one row, or at least two blocks: then the few blocks
that a row shares with the next are encoded last, from the compensated values
(see ``encode``). ``H`` is measured on calibration inputs with
torch forward hooks (``collect_hessians``) and, before gptq uses it, shrunk
toward the identity by k / R for k columns and R calibration rows (``shrunk``):
fitted on few rows, gptq hides its error in directions those rows leave empty,
which new inputs fill (on held-out inputs it then does worse than plain rounding;
see tests/test_gptq.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import SeedError

#: GPTQ's damping: λ = DAMP · mean(diag H) added to the diagonal.
DAMP = 0.01
GROUPED_CODECS = ("q4", "q8", "prng", "ecq")


def block_size(codec: str, params_or_options: Mapping) -> int:
    if codec in ("q4", "q8"):
        return 32
    if codec == "ecq":  # one step for the whole tensor: every weight is a block of its own
        return 1
    if codec == "prng":
        from .codecs import prng

        o = params_or_options
        if "C" in o:
            return int(o["C"])
        return prng.preset(o.get("bits", 4.5))[0]
    raise SeedError(f"gptq: codec {codec!r} has no block structure")


def weight_nodes(graph: Mapping) -> dict[str, dict]:
    """weight name -> the node that reads it as W, for linear and ungrouped conv2d."""
    out: dict[str, dict] = {}
    for node in graph.get("nodes", []):
        op = node.get("op")
        if op not in ("linear", "conv2d") or len(node["in"]) < 2:
            continue
        if op == "conv2d" and node["attrs"].get("groups", 1) != 1:
            continue
        w = node["in"][1]
        if w in out:  # read by two nodes: their inputs differ; leave it to plain rounding
            out[w] = None
        else:
            out[w] = node
    return {k: v for k, v in out.items() if v is not None}


def collect_hessians(module, calibration: Any, graph: Mapping, names: Sequence[str],
                     counts: dict | None = None) -> dict[str, np.ndarray]:
    """H = mean over calibration rows of x xᵀ (float64) for each weight in ``names``
    read by a linear / ungrouped conv2d node, from forward pre-hooks on the module
    at the node's path. ``calibration``: the module's positional inputs (a tensor or
    a tuple of tensors).  ``counts``, if given, receives the number of rows behind
    each H."""
    import torch
    import torch.nn.functional as F

    nodes = weight_nodes(graph)
    acc: dict[str, list] = {}
    hooks = []
    try:
        for name in names:
            node = nodes.get(name)
            if node is None or not node.get("path"):
                continue
            try:
                mod = module.get_submodule(node["path"])
            except AttributeError:
                continue
            if node["op"] == "conv2d":
                a = node["attrs"]
                if not isinstance(mod, torch.nn.Conv2d):
                    continue
                ks = tuple(mod.kernel_size)

                def hook(m, args, _name=name, _a=a, _ks=ks):
                    x = args[0].detach()
                    cols = F.unfold(x.float(), _ks, dilation=tuple(_a["dilation"]), padding=tuple(_a["padding"]),
                                    stride=tuple(_a["stride"]))  # [N, K, L]
                    rows = cols.transpose(1, 2).reshape(-1, cols.shape[1]).double()
                    _add(acc, _name, rows)
            else:
                if not isinstance(mod, torch.nn.Linear):
                    continue

                def hook(m, args, _name=name):
                    x = args[0].detach()
                    _add(acc, _name, x.reshape(-1, x.shape[-1]).double())
            hooks.append(mod.register_forward_pre_hook(hook))
        args = calibration if isinstance(calibration, (tuple, list)) else (calibration,)
        with torch.no_grad():
            module(*args)
    finally:
        for h in hooks:
            h.remove()
    if counts is not None:
        counts.update({k: int(n) for k, (_, n) in acc.items()})
    return {k: (h / max(n, 1)).numpy() for k, (h, n) in acc.items()}


def shrunk(h: np.ndarray, rows: int) -> np.ndarray:
    """H + mean(diag H) · (k / rows) · I for k columns: the second moment measured on
    ``rows`` rows, shrunk toward a multiple of the identity the fewer rows there are
    per column.  With fewer rows than columns H is singular, and gptq, fitted on the
    same rows, hides its error in H's null space, which other inputs do not leave
    empty: an error measured in the shrunk metric does not reward that."""
    k = h.shape[0]
    out = np.array(h, dtype=np.float64, copy=True)
    out[np.diag_indices_from(out)] += float(np.mean(np.diag(out))) * (k / max(int(rows), 1))
    return out


def _add(acc: dict, name: str, rows) -> None:
    h = rows.T @ rows
    if name in acc:
        acc[name][0] += h
        acc[name][1] += rows.shape[0]
    else:
        acc[name] = [h, rows.shape[0]]


def _upper_inverse_cholesky(h: np.ndarray, damp: float) -> np.ndarray:
    """U with Uᵀ U = (H + λI)⁻¹, U upper triangular; dead inputs (zero diagonal) get 1."""
    h = np.array(h, dtype=np.float64, copy=True)
    diag = np.diag(h).copy()
    dead = diag <= 0
    h[dead, dead] = 1.0
    lam = damp * float(np.mean(np.diag(h)))
    h[np.diag_indices_from(h)] += lam
    for _ in range(6):
        try:
            hinv = np.linalg.inv(np.linalg.cholesky(h))  # L⁻¹, H⁻¹ = L⁻ᵀ L⁻¹
            hinv = hinv.T @ hinv
            return np.linalg.cholesky(hinv).T
        except np.linalg.LinAlgError:
            lam *= 10
            h[np.diag_indices_from(h)] += lam
    raise SeedError("gptq: the calibration Hessian is not positive definite even with damping")


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _blockq_group(wg: np.ndarray, codec: str, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One 32-column group of a q4/q8 matrix with GPTQ inside the group: returns
    (scales float16 [rows], codes int8 [rows, 32] as stored, dequantised [rows, 32], scaled errors [rows, 32])."""
    w = wg.astype(np.float64, copy=True)
    rows, g = w.shape
    w32 = w.astype(np.float32)
    with np.errstate(over="ignore"):  # the scales as the plain encoders compute them (float32)
        if codec == "q8":
            d16 = (np.max(np.abs(w32), axis=1) / np.float32(127)).astype(np.float16)
        else:
            mx = w32[np.arange(rows), np.argmax(np.abs(w32), axis=1)]
            d16 = (mx / np.float32(-8)).astype(np.float16)
    if not np.all(np.isfinite(d16)):
        raise SeedError(f"gptq: a {codec} block scale overflows float16")
    d = d16.astype(np.float32)
    safe = np.where(d == 0, np.float32(1), d)
    codes = np.zeros((rows, g), np.int8)
    deq = np.zeros((rows, g))
    errs = np.zeros((rows, g))
    for j in range(g):
        x = w[:, j]
        r = _round_half_away(x.astype(np.float32) / safe)
        if codec == "q8":
            q = np.where(d == 0, 0, np.clip(r, -127, 127))
            v = (d * q.astype(np.float32)).astype(np.float64)
        else:
            q = np.where(d == 0, 8, np.clip(r + 8, 0, 15))
            v = (d * (q - 8).astype(np.float32)).astype(np.float64)
        codes[:, j] = q
        deq[:, j] = v
        e = (x - v) / u[j, j]
        errs[:, j] = e
        if j + 1 < g:
            w[:, j + 1:] -= np.outer(e, u[j, j + 1:g])
    return d16, codes, deq, errs


class _Blocks:
    """Per-block quantisation of one codec: ``quantize(blocks [n, g] float64, u_gg or None)``
    -> (fields per block, dequantised [n, g], F [n, g]) where the error fed onto the later
    columns is ``F @ U[g, rest]`` (None: plain rounding, no feedback)."""

    def __init__(self, codec: str, options: Mapping, w: np.ndarray):
        self.codec = codec
        if codec in ("q4", "q8"):
            self.g = 32
            self.params = {"block": 32}
            return
        if codec == "ecq":
            from .codecs import ecq

            self.g = 1
            self.step, self.chunk = ecq.choose_step(np.asarray(w, np.float32), dict(options))
            self.params = {"step": self.step, "chunk": self.chunk}
            return
        from .codecs import prng

        opts = dict(options)
        if {"C", "P", "K"} & set(opts):
            C, P, K = (int(opts.get(x, dflt)) for x, dflt in zip("CPK", prng.preset(4.5)))
        else:
            C, P, K = prng.preset(opts.get("bits", 4.5))
        e0 = int(opts["exp_bias"]) if "exp_bias" in opts else prng.choose_exp_bias(np.asarray(w, np.float32))
        self.params = {"C": C, "P": P, "K": K, "exp_bias": e0}
        prng.validate_params(self.params, tuple(w.shape), "float32")
        self.g, self.P, self.K, self.e0 = C, P, K, e0
        self.tabs = prng.search_tables(C, P, K)
        self.table = prng.basis_table(C, P, K)
        self.cand = int(opts.get("candidates", 32))
        self.impl = str(opts.get("impl", "auto"))
        self.threads = 0

    def empty(self, nb: int) -> tuple:
        if self.codec in ("q4", "q8"):
            return np.zeros(nb, np.float16), np.zeros((nb, 32), np.int8)
        if self.codec == "ecq":
            return (np.zeros(nb, np.int64),)
        return np.zeros(nb, np.uint32), np.zeros(nb, np.uint8), np.zeros((nb, self.P), np.int8)

    def quantize(self, blocks: np.ndarray, u: np.ndarray | None):
        g = self.g
        if self.codec in ("q4", "q8"):
            d, q, deq, errs = _blockq_group(blocks, self.codec, np.eye(g) if u is None else u)
            return (d, q), deq, (None if u is None else errs)
        if self.codec == "ecq":
            from .codecs import ecq

            q = ecq.codes(blocks, self.step)  # [n, 1]
            deq = (q.astype(np.float32) * np.float32(self.step)).astype(np.float64)
            return (q[:, 0],), deq, (None if u is None else (blocks - deq) / u[0, 0])
        from . import _native

        q_tab, basis, pinv = self.tabs
        s, e, m, _, _ = _native.prng_search(np.ascontiguousarray(blocks, dtype=np.float32), q_tab, basis, pinv,
                                            self.K, self.e0, self.cand, self.impl, self.threads)
        uu = self.table[np.asarray(s, np.int64) - 1].astype(np.int32)  # (n, C, P)
        acc = np.einsum("rcp,rp->rc", uu, np.asarray(m, np.int32))
        scale = np.ldexp(np.float32(1.0), np.asarray(e, np.int32) + (self.e0 - (self.K - 1))).astype(np.float32)
        deq = (acc.astype(np.float32) * scale[:, None]).astype(np.float64)
        fb = None if u is None else np.linalg.solve(u.T, (blocks - deq).T).T  # E · U_gg⁻¹
        return (s, e, m), deq, fb

    def payload(self, fields: tuple) -> bytes:
        """The payload of the encoded ``fields`` (ecq: also completes ``params``)."""
        if self.codec == "ecq":
            from .codecs import ecq

            self.params, payload = ecq.encode_codes(fields[0], self.step, self.chunk)
            return payload
        if self.codec == "q8":
            return fields[0].astype("<f2").tobytes() + fields[1].tobytes()
        if self.codec == "q4":
            qu = fields[1].astype(np.uint8)
            return fields[0].astype("<f2").tobytes() + (qu[:, :16] | (qu[:, 16:] << np.uint8(4))).tobytes()
        from .codecs import prng

        seeds, exps, mants = fields
        return (prng._pack_bits(seeds.reshape(-1), self.K) + prng._pack_nibbles(exps.reshape(-1))
                + prng._pack_nibbles(mants.reshape(-1)))


def encode(codec: str, options: Mapping, w: np.ndarray, h: np.ndarray, *, damp: float = DAMP,
           threads: int = 0, progress: Callable[[int], None] | None = None) -> tuple[dict, bytes, np.ndarray]:
    """Encodes ``w`` (float32, [rows, ...]; columns = its trailing dims flattened)
    with ``codec`` (q4, q8 or prng) choosing codes by GPTQ against ``h``.
    Returns (params, payload, the decoded tensor).

    The codecs cut the flattened tensor into blocks of g weights.  When the column
    count k is a multiple of g every block lies in one row.  Otherwise the rows
    fall into phases (where the row starts within a block); for each phase the
    blocks inside the row are encoded first, in column order, with the error fed
    onto all later columns of the row, including the ones at either end of the row
    that share a block with the row before or after; those blocks are encoded last
    (plain rounding of the compensated values)."""
    shape = w.shape
    if codec not in GROUPED_CODECS:
        raise SeedError(f"gptq: codec {codec!r} has no block structure")
    w2 = np.asarray(w, dtype=np.float64).reshape(shape[0], -1).copy()
    rows, k = w2.shape
    if h.shape != (k, k):
        raise SeedError(f"gptq: Hessian shape {h.shape} does not match {k} columns")
    g = block_size(codec, options)
    if k % g and k < 2 * g:
        raise SeedError(f"gptq: {k} columns are not a multiple of the {codec} block ({g}) "
                        f"nor at least two blocks")
    blk = _Blocks(codec, options, w)
    blk.threads = threads
    n = rows * k
    nb = -(-n // g)
    fields = blk.empty(nb)
    flat = np.zeros(nb * g)
    done = np.zeros(nb, bool)
    heads = (-(np.arange(rows, dtype=np.int64) * k)) % g
    reported = 0
    for h0 in np.unique(heads):
        rs = np.nonzero(heads == h0)[0]
        m = (k - int(h0)) // g
        perm = np.r_[np.arange(h0, h0 + m * g), np.arange(h0 + m * g, k), np.arange(0, h0)].astype(np.int64)
        u = _upper_inverse_cholesky(h if h0 == 0 and m * g == k else h[np.ix_(perm, perm)], damp)
        wp = w2[np.ix_(rs, perm)]
        first = (rs * k + h0) // g  # the flat index of each row's first whole block
        for j in range(m):
            a, b = j * g, (j + 1) * g
            f, deq, fb = blk.quantize(wp[:, a:b], u[a:b, a:b])
            idx = first + j
            for dst, src in zip(fields, f):
                dst[idx] = src
            flat.reshape(nb, g)[idx] = deq
            done[idx] = True
            if b < k:
                wp[:, b:] -= fb @ u[a:b, b:]
            if progress is not None:
                progress(len(rs) * g)
                reported += len(rs) * g
        w2[np.ix_(rs, perm[m * g:])] = wp[:, m * g:]
    left = np.nonzero(~done)[0]
    if left.size:  # the blocks shared by two rows (and a zero-padded last one)
        vals = np.zeros(nb * g)
        vals[:n] = w2.reshape(-1)
        f, deq, _ = blk.quantize(vals.reshape(nb, g)[left], None)
        for dst, src in zip(fields, f):
            dst[left] = src
        flat.reshape(nb, g)[left] = deq
    if progress is not None and n > reported:
        progress(n - reported)
    out = flat[:n].astype(np.float32).reshape(shape)
    payload = blk.payload(fields)
    return dict(blk.params), payload, out


def eligible(codec: str, options: Mapping, shape: Sequence[int]) -> bool:
    """Whether ``encode`` takes the tensor: a block codec, 2+ dimensions, and columns
    a multiple of the block or at least two blocks."""
    if codec not in GROUPED_CODECS or len(shape) < 2:
        return False
    k = int(np.prod(shape[1:]))
    g = block_size(codec, options)
    return k % g == 0 or k >= 2 * g
