"""Rate allocation: which codec (and so how many bits) each tensor gets, from a
measured sensitivity, under an average bits-per-weight budget.

``seedcore.extract(module, example_inputs=..., target_bpw=4.0)`` calls
``allocate``.  The model is a captured graph, so the sensitivity is measured on
the native executor, on calibration inputs (``calibration=``, or the example
inputs):

1. Distortion D = ‖y′ − y‖² / ‖y‖² over the graph's floating outputs y on the
   calibration inputs (for L2-normalised embeddings D ≈ 2 (1 − cosine)).
2. Per tensor t, one probe: t alone goes through the q4 codec (exact, cheap);
   D_t / ‖ΔW_t‖² is its gain g_t, the distortion per unit of squared weight error.
3. Per tensor and candidate codec c, the squared weight error E_t(c): exact for
   raw float16, q8 and q4; for the prng presets (whose seed search is the slow
   part) estimated on a fixed sample of the tensor's blocks and scaled up.
   With data-aware rounding (``hessians``: the second moment H of a tensor's
   layer inputs, ``seedcore.gptq``), a tensor's errors are measured in the output
   metric instead, tr(ΔW H ΔWᵀ), for the probe as for every candidate, and the
   candidates that gptq can encode are encoded that way (on up to ``GPTQ_ROWS``
   evenly spaced rows, scaled up: the rows are encoded independently), so the
   allocation sees what the rounding will really leave.  The probe is then the
   q4 encoding gptq makes (``gptq_probe``): gptq moves the error into directions
   that H weighs little, and the graph weighs those directions differently from H
   (on MobileNetV2 a gptq-encoded expansion conv costs about twice what a plain
   rounding probe predicts, a projection conv half), so the gain is measured on
   the kind of error the encoding leaves.
4. The predicted distortion is Σ_t g_t E_t(c_t) (errors of different tensors
   add, to first order; the tests and the bench check the prediction against
   the assembled model).  Minimise it under Σ_t bits_t(c_t) ≤ budget: a
   multiple-choice knapsack solved by dynamic programming over 65,536 budget
   units, then a greedy pass that spends what the rounding left over.

Everything is deterministic for given weights and calibration inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import SeedError

#: the fixed-rate codecs (codec spec strings as in ``rules``), cheapest first: the
#: candidates of rate allocation before the entropy-coded codec joined them;
#: ``extract(..., candidates=FIXED_RATE_CANDIDATES)`` for the "without ecq" ablation
FIXED_RATE_CANDIDATES = ("prng:3", "prng:4", "prng:4.5", "q4", "q8", "raw:float16")
#: the codecs a tensor may get by default: the fixed-rate ones plus the entropy-coded
#: codec at a ladder of rates (docs/format.md 3.6).  Measured on MobileNetV2 and MiniLM
#: it spends the same budget better than the fixed-rate codecs alone (bench/RESULTS.md,
#: quality sections; docs/findings.md item 12)
DEFAULT_CANDIDATES = FIXED_RATE_CANDIDATES + tuple(f"ecq:{b:g}" for b in (1.5, 2, 2.25, 2.5, 2.75, 3, 3.25, 3.5,
                                                                          3.75, 4, 4.5, 5, 5.5, 6, 7, 8))
#: the name under which ``DEFAULT_CANDIDATES`` was opt-in; kept for old scripts
ECQ_CANDIDATES = DEFAULT_CANDIDATES
#: blocks of a tensor whose prng error is measured exactly before scaling up
PRNG_SAMPLE_BLOCKS = 1024
#: rows of a tensor encoded by gptq to measure a candidate's output-metric error
GPTQ_ROWS = 64


@dataclass
class TensorChoice:
    name: str
    codec: str
    options: dict
    bits: int              # payload bits
    gain: float            # distortion per unit of squared weight error
    predicted: float       # gain × squared weight error of the chosen codec
    errors: dict = field(default_factory=dict)  # candidate spec -> squared weight error


@dataclass
class Allocation:
    target_bpw: float
    budget_bits: int       # payload bits the allocated tensors may use
    choices: list          # [TensorChoice]
    predicted_distortion: float
    calibration: str       # a description of the calibration inputs
    seconds: float = 0.0   # time the allocation took (set by extract)

    def summary(self) -> dict:
        counts: dict = {}
        for c in self.choices:
            counts[_spec_label(c.codec, c.options)] = counts.get(_spec_label(c.codec, c.options), 0) + 1
        return {"target_bpw": self.target_bpw, "calibration": self.calibration,
                "predicted_distortion": float(f"{self.predicted_distortion:.6g}"),
                "seconds": round(self.seconds, 2),
                "chosen": {c.name: _spec_label(c.codec, c.options) for c in self.choices},
                "counts": counts}


def _spec_label(codec: str, options: Mapping) -> str:
    if codec == "prng":
        b = options.get("bits")
        return f"prng:{b:g}" if b is not None else "prng"
    if codec == "raw":
        return f"raw:{options.get('storage', 'float32')}"
    if codec == "ecq" and options.get("bits") is not None:
        return f"ecq:{options['bits']:g}"
    return codec


def payload_bits(codec: str, options: Mapping, shape: Sequence[int], w: np.ndarray | None = None) -> int:
    """Payload bits of a tensor under (codec, options), from the codec's layout;
    for ``ecq``, whose size depends on the values, those of ``w`` (the tensor)
    encoded with plain rounding (data-aware rounding keeps the step and moves the
    size by a fraction of a percent)."""
    from .codecs import ecq, get_codec, prng

    if codec == "ecq":
        if w is None:
            raise SeedError("payload_bits: the ecq payload size depends on the tensor's values")
        return 8 * ecq.round_trip(np.asarray(w, np.float32), dict(options))[1]
    if codec == "prng":
        if {"C", "P", "K"} & set(options):  # explicit parameters, as prng.encode reads them
            C, P, K = (int(options.get(k, d)) for k, d in zip("CPK", prng.preset(4.5)))
        else:
            C, P, K = prng.preset(options.get("bits", 4))
        params = {"C": C, "P": P, "K": K}
    elif codec == "raw":
        params = {"storage": options.get("storage", "float32")}
    elif codec == "stats":
        from .codecs import stats
        params = {"k": int(options.get("k", stats.max_k(tuple(shape))))}
    else:
        params = {}
    return 8 * int(get_codec(codec).expected_length(tuple(shape), params))


def _round_trip(codec: str, options: Mapping, w: np.ndarray, threads: int) -> np.ndarray:
    from .codecs import get_codec

    opts = dict(options)
    if codec == "ecq":  # decode(encode(w)) without the reference decoder: the codes times the step
        from .codecs import ecq

        return ecq.round_trip(w, opts)[0]
    if codec == "prng":
        opts["threads"] = threads
    params, payload = get_codec(codec).encode(w, opts)
    return get_codec(codec).decode(payload, w.shape, "float32", params).reshape(w.shape)


def squared_error(codec: str, options: Mapping, w: np.ndarray, threads: int = 0,
                  sample_blocks: int = PRNG_SAMPLE_BLOCKS) -> float:
    """‖W − decode(encode(W))‖² (float64).  For prng, measured on ``sample_blocks``
    blocks spread evenly over the tensor (with the whole tensor's exponent range)
    and scaled to the tensor's size; exact for every other codec and for tensors
    of at most that many blocks."""
    flat = np.ascontiguousarray(w, dtype=np.float32).reshape(-1)
    if codec == "prng":
        from .codecs import prng

        C, _, _ = prng.preset(options.get("bits", 4))
        nb = -(-flat.size // C)
        if nb > sample_blocks:
            pick = np.linspace(0, nb - 1, sample_blocks).round().astype(np.int64)
            padded = np.zeros(nb * C, np.float32)
            padded[:flat.size] = flat
            sample = padded.reshape(nb, C)[pick].reshape(-1)
            opts = dict(options, threads=threads, exp_bias=prng.choose_exp_bias(flat))
            got = _round_trip("prng", opts, sample, threads)
            d = got.astype(np.float64) - sample
            return float(d @ d) * (flat.size / sample.size)
    got = _round_trip(codec, options, flat, threads)
    d = got.astype(np.float64).reshape(-1) - flat
    return float(d @ d)


def _h_error(d: np.ndarray, h: np.ndarray) -> float:
    """tr(D H Dᵀ) for D = a tensor's error as [rows, columns]."""
    d2 = np.asarray(d, np.float64).reshape(-1, h.shape[0])
    return float(np.einsum("ij,ij->", d2 @ h, d2))


def h_error(codec: str, options: Mapping, w: np.ndarray, h: np.ndarray, threads: int = 0,
            rows: int = GPTQ_ROWS) -> float:
    """tr(ΔW H ΔWᵀ) of ``w`` (float32, [rows, ...] with columns = its trailing dims)
    encoded with (codec, options): by gptq where it applies (``gptq.eligible``),
    otherwise by plain rounding.  Block codecs are measured on ``rows`` evenly
    spaced rows (prng with the whole tensor's exponent range) and scaled up."""
    from . import gptq

    w = np.ascontiguousarray(w, dtype=np.float32)
    w2 = w.reshape(w.shape[0], -1)
    n = w2.shape[0]
    if codec in ("raw", "q8", "q4") and not gptq.eligible(codec, options, w.shape):
        return _h_error(_round_trip(codec, options, w2.reshape(-1), threads).reshape(w2.shape) - w2, h)
    pick = np.linspace(0, n - 1, min(n, rows)).round().astype(np.int64)
    pick = np.unique(pick)
    sample = np.ascontiguousarray(w2[pick])
    opts = dict(options)
    if codec == "prng":
        from .codecs import prng

        opts["exp_bias"] = prng.choose_exp_bias(w2)
        opts["threads"] = threads
    if codec == "ecq":  # the whole tensor's step, as its encoding will use
        from .codecs import ecq

        opts["step"] = ecq.choose_step(w2, opts)[0]
    if gptq.eligible(codec, options, w.shape):
        _, _, got = gptq.encode(codec, opts, sample, h, threads=threads)
    else:
        got = _round_trip(codec, opts, sample.reshape(-1), threads).reshape(sample.shape)
    return _h_error(got - sample, h) * (n / len(pick))


def calibration_arrays(graph: Mapping, inputs: Any) -> dict:
    """``inputs`` (a dict by input name, one array / tensor, or a tuple in the
    graph's input order) as {input name: numpy array}."""
    names = [s["name"] for s in graph["inputs"]]

    def arr(v, what):
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        a = np.asarray(v)
        if a.dtype == object or a.dtype.kind not in "biuf":
            raise SeedError(f"calibration input {what!r}: expected a numeric array, got {type(v).__name__}")
        return a

    if isinstance(inputs, Mapping):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise SeedError(f"calibration inputs lack graph input(s) {missing}")
        return {n: arr(inputs[n], n) for n in names}
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    if len(inputs) != len(names):
        raise SeedError(f"calibration: {len(inputs)} input(s) given, the graph has {len(names)} ({names})")
    return {n: arr(v, n) for n, v in zip(names, inputs)}


def _outputs(model, inputs: dict, threads: int) -> np.ndarray:
    outs = model.run(inputs, threads=threads)
    parts = [np.asarray(v, np.float64).reshape(-1) for v in outs.values() if np.asarray(v).dtype.kind == "f"]
    if not parts:
        raise SeedError("rate allocation: the graph has no floating output to measure distortion on")
    return np.concatenate(parts)


def _knapsack(options: list, budget: int, buckets: int = 1 << 16) -> list:
    """Multiple-choice knapsack: per item one of its (bits, distortion) options,
    minimising the total distortion with total bits ≤ budget.  Dynamic programming
    over the budget cut into ``buckets`` equal units, each option's bits rounded
    up to whole units (so the result always fits; it loses at most one unit per
    item against the exact optimum).  Returns the chosen option per item."""
    unit = max(1.0, budget / buckets)
    size = int(budget // unit)
    inf = np.inf
    best = np.zeros(size + 1)               # best[u]: least distortion within u units
    picks = np.empty((len(options), size + 1), np.int16)
    for t, opts in enumerate(options):
        new = np.full(size + 1, inf)
        arg = np.zeros(size + 1, np.int16)
        for i, (bits, dist) in enumerate(opts):
            cost = int(math.ceil(bits / unit))
            if cost > size:
                continue
            cand = np.full(size + 1, inf)
            cand[cost:] = best[:size + 1 - cost] + dist
            better = cand < new
            new[better] = cand[better]
            arg[better] = i
        best = new
        picks[t] = arg
    if not np.isfinite(best[size]):
        raise SeedError("rate allocation: no choice of codecs fits the budget")
    sel, u = [0] * len(options), size
    for t in range(len(options) - 1, -1, -1):
        i = int(picks[t][u])
        sel[t] = i
        u -= int(math.ceil(options[t][i][0] / unit))
    return sel


def allocate(graph: Mapping, weights: Mapping[str, np.ndarray], names: Sequence[str],
             calibration: Any, target_bpw: float, n_weights: int, fixed_bits: int,
             candidates: Sequence[str] = DEFAULT_CANDIDATES, threads: int = 0,
             progress: Callable[[str], None] | None = None,
             hessians: Mapping[str, np.ndarray] | None = None, gptq_probe: bool = True) -> Allocation:
    """Chooses a codec for each tensor of ``names`` (float32 arrays in ``weights``).

    n_weights   the model's floating weight count (the bits-per-weight denominator)
    fixed_bits  bits the rest of the file takes (other tensors, metadata), so the
                allocated tensors get target_bpw × n_weights − fixed_bits
    progress    called with a short status string per tensor
    hessians    {name: H} for the tensors that data-aware rounding encodes (``seedcore.gptq``):
                their errors are measured as tr(ΔW H ΔWᵀ), by gptq where it applies.
    gptq_probe  with ``hessians``: the sensitivity probe is gptq's q4 encoding (where gptq
                applies) rather than plain q4 rounding"""
    from . import gptq as _gptq
    from .extract import parse_codec_spec
    from .model import Model

    if not (isinstance(target_bpw, (int, float)) and math.isfinite(target_bpw) and target_bpw > 0):
        raise SeedError(f"target_bpw must be a positive number, got {target_bpw!r}")
    specs = [parse_codec_spec(c) for c in candidates]
    if not specs:
        raise SeedError("rate allocation needs at least one candidate codec")
    for codec, _ in specs:
        if codec == "stats":
            raise SeedError("rate allocation: the stats codec carries no pre-trained knowledge; "
                            "it is not a candidate")
    budget = int(target_bpw * n_weights) - int(fixed_bits)
    # each candidate's payload bits per tensor, measured once (ecq's encode the tensor)
    bits = {n: [payload_bits(c, o, weights[n].shape, weights[n]) for c, o in specs] for n in names}
    cheapest = sum(min(b) for b in bits.values())
    if budget < cheapest:
        raise SeedError(
            f"target_bpw={target_bpw:g} cannot be met: the other tensors and the metadata take "
            f"{fixed_bits / n_weights:.2f} bits per weight and the cheapest candidate for the rest "
            f"{cheapest / n_weights:.2f}")

    inputs = calibration_arrays(graph, calibration)
    desc = ", ".join(f"{k} {list(v.shape)}" for k, v in inputs.items())
    base = {k: np.asarray(v) for k, v in weights.items()}
    ref = _outputs(Model(base, graph=graph, name="calibration"), inputs, threads)
    ref_energy = float(ref @ ref) or 1.0

    rows = []
    for name in names:
        if progress is not None:
            progress(name)
        w = np.ascontiguousarray(base[name], dtype=np.float32)
        h = None if hessians is None else hessians.get(name)
        if h is not None and (w.ndim < 2 or h.shape != (int(np.prod(w.shape[1:])),) * 2):
            h = None
        if h is not None and gptq_probe and _gptq.eligible("q4", {}, w.shape):
            _, _, probe = _gptq.encode("q4", {}, w.reshape(w.shape[0], -1), h, threads=threads)
            probe = np.asarray(probe, np.float32).reshape(w.shape)
        else:
            probe = _round_trip("q4", {}, w.reshape(-1), threads).reshape(w.shape)
        d = probe.astype(np.float64).reshape(-1) - w.reshape(-1)
        probe_err = float(d @ d) if h is None else _h_error(d, h)
        if probe_err > 0:
            got = _outputs(Model({**base, name: probe}, graph=graph, name="calibration"), inputs, threads)
            gain = float(((got - ref) ** 2).sum()) / ref_energy / probe_err
        else:
            gain = 0.0
        options = []
        for (codec, opts), nbits in zip(specs, bits[name]):
            if h is not None:
                e = h_error(codec, opts, w, h, threads)
            else:
                e = probe_err if (codec, opts) == ("q4", {}) else squared_error(codec, opts, w, threads)
            options.append((codec, opts, nbits, gain * e, e))
        rows.append((name, gain, options))

    sel = _knapsack([[(o[2], o[3]) for o in opts] for _, _, opts in rows], budget)
    # Spend what the bucketed costs left over: the upgrade with the best distortion drop per bit that fits.
    spare = budget - sum(rows[t][2][i][2] for t, i in enumerate(sel))
    while True:
        best = None
        for t, (_, _, opts) in enumerate(rows):
            cur = opts[sel[t]]
            for i, cand in enumerate(opts):
                extra = cand[2] - cur[2]
                drop = cur[3] - cand[3]
                if extra <= 0 or extra > spare or drop <= 0:
                    continue
                if best is None or drop / extra > best[0]:
                    best = (drop / extra, t, i, extra)
        if best is None:
            break
        _, t, i, extra = best
        sel[t] = i
        spare -= extra

    choices = []
    for (name, gain, opts), i in zip(rows, sel):
        codec, o, bits, pred, _ = opts[i]
        choices.append(TensorChoice(name, codec, dict(o), bits, gain, pred,
                                    {_spec_label(c, oo): e for c, oo, _, _, e in opts}))
    return Allocation(float(target_bpw), budget, choices, sum(c.predicted for c in choices), desc)
