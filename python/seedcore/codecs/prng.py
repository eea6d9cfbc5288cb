"""The ``prng`` codec: pseudo-random basis seeds (SeedLM-style).

Each block of C weights is stored as the seed of a K-bit LFSR plus P quantised
coefficients (4-bit mantissas sharing a 4-bit exponent). Decoding regenerates
the C x P basis from the seed and multiplies; see docs/format.md section 3.4
for the exact arithmetic. This module holds the encoder and the numpy
reference decoder.

The encoder's seed search is exact over all 2^K - 1 seeds. Its hot loop (a
least-squares lower bound for every block and seed, C*P + P multiply-adds each)
runs in the native core (``seedcore._native.prng_search``, AVX2/NEON/scalar);
``reference_search`` below is the same search by brute force in numpy, used by
the tests to show that the native search returns the optimum.

The quantisation procedure for one block under one seed (mirrored bit for bit
by ``quantize_block`` in cpp/src/encode/prng_search.cpp):

1. ``c = pinv(U/2^(K-1)) w`` in float64, summing over i in order;
2. ``e_min``: the smallest exponent at which every ``rint(c_j / 2^e)`` lies in
   [-8, 7]; try ``e_min - 1`` (clipped), ``e_min``, ``e_min + 1``, each clamped
   to the tensor's range ``[exp_bias, exp_bias + 15]``, keep the lowest error
   (ties: the smaller exponent). Starting from the exponent that fits the
   largest coefficient uses the whole mantissa range, unlike SeedLM's rule;
3. two sweeps of coordinate descent over the mantissas (each j, d = -1, +1),
   accepting a move when it strictly lowers the error.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._util import ceil_div, check_keys, element_count, is_int

NAME = "prng"

#: Galois LFSR feedback masks (maximal length), shifting right. Format constants.
TAPS = {8: 0xB8, 9: 0x110, 10: 0x240, 11: 0x500, 12: 0xE08, 13: 0x1C80, 14: 0x3802,
        15: 0x6000, 16: 0xB400}

#: bits per weight -> (C, P, K); bpw = (K + 4 + 4P) / C.
PRESETS = {3.0: (12, 4, 16), 4.0: (8, 3, 16), 4.5: (8, 4, 16)}

_KEYS = {"C", "P", "K", "exp_bias"}
_MANT_MIN, _MANT_MAX = -8, 7
_CHUNK_BLOCKS = 1 << 14  # blocks per native call: granularity of progress reports


def bits_per_weight(C: int, P: int, K: int) -> float:
    return (K + 4 + 4 * P) / C


def preset(bits) -> tuple[int, int, int]:
    """(C, P, K) for a preset bit rate: 3, 4 or 4.5 bits per weight."""
    try:
        return PRESETS[float(bits)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"prng has presets for bits = 3, 4 and 4.5, not {bits!r}") from None


def validate_params(params: dict, shape, dtype: str) -> None:
    check_keys(params, tuple(_KEYS), NAME)
    for k in _KEYS:
        if not is_int(params[k]):
            raise ValueError(f"prng param {k} must be an integer, got {params[k]!r}")
    C, P, K, e0 = params["C"], params["P"], params["K"], params["exp_bias"]
    if not 1 <= C <= 64:
        raise ValueError(f"prng param C must be in 1..64, got {C}")
    if not (1 <= P <= 8 and P <= C):
        raise ValueError(f"prng param P must be in 1..8 and <= C, got P={P}, C={C}")
    if not 8 <= K <= 16:
        raise ValueError(f"prng param K must be in 8..16, got {K}")
    if not -100 <= e0 <= 100:
        raise ValueError(f"prng param exp_bias must be in -100..100, got {e0}")
    if dtype not in ("float32", "float16", "bfloat16", "float64"):
        raise ValueError(f"prng encodes floating tensors only, not {dtype}")


def _sections(n: int, C: int, P: int, K: int) -> tuple[int, int, int, int]:
    nb = ceil_div(n, C)
    return nb, ceil_div(nb * K, 8), ceil_div(nb, 2), ceil_div(nb * P, 2)


def expected_length(shape, params) -> int:
    _, s1, s2, s3 = _sections(element_count(shape), params["C"], params["P"], params["K"])
    return s1 + s2 + s3


# ---------------------------------------------------------------- the basis

@functools.lru_cache(maxsize=None)
def lfsr_cycle(K: int) -> np.ndarray:
    """The 2^K - 1 states of the LFSR started at 1, in order (uint32)."""
    taps = TAPS[K]
    n = (1 << K) - 1
    out = np.empty(n, dtype=np.uint32)
    v = 1
    for k in range(n):
        out[k] = v
        lsb = v & 1
        v >>= 1
        if lsb:
            v ^= taps
    return out


@functools.lru_cache(maxsize=8)
def basis_table(C: int, P: int, K: int) -> np.ndarray:
    """int16 array (2^K - 1, C, P): row s - 1 holds U[i][j] = v_{jC+i} - 2^(K-1) for seed s."""
    cyc = lfsr_cycle(K)
    n = cyc.size
    pos = np.empty(n + 1, dtype=np.int64)
    pos[cyc] = np.arange(n)
    seeds = np.arange(1, n + 1)
    idx = (pos[seeds][:, None] + np.arange(C * P)[None, :]) % n
    states = cyc[idx].astype(np.int32) - (1 << (K - 1))        # (n, C*P), k = j*C + i
    table = states.reshape(n, P, C).transpose(0, 2, 1)          # (n, C, P)
    table = np.ascontiguousarray(table, dtype=np.int16)
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=4)
def search_tables(C: int, P: int, K: int):
    """(q, basis, pinv) for the seed search: q float32 (ceil(n/8), C*P, 8), the
    orthonormal bases of 8 seeds at a time (q[g, j*C + i, l] = Q[i][j] of seed
    index 8g + l); basis int16 (n, C, P); pinv float64 (n, P, C). A few bases are
    singular: their pseudo-inverse gives the minimum-norm least-squares
    coefficients, and their Q spans more than U does, so the lower bound stays a
    bound (only a looser one)."""
    basis = basis_table(C, P, K)
    n = basis.shape[0]
    u = basis.astype(np.float64) / float(1 << (K - 1))
    left, sing, vt = np.linalg.svd(u, full_matrices=False)      # left: (n, C, P)
    # Moore-Penrose: singular values below numpy.linalg.pinv's cutoff count as zero
    cutoff = 1e-15 * sing[:, :1]
    inv = np.divide(1.0, sing, out=np.zeros_like(sing), where=sing > cutoff)
    pinv = np.einsum("npk,nk,nck->npc", vt.transpose(0, 2, 1), inv, left)
    groups = ceil_div(n, 8)
    rows = np.zeros((C * P, groups * 8), dtype=np.float32)
    rows[:, :n] = left.transpose(2, 1, 0).reshape(P * C, n)   # row j*C + i = Q[i][j]
    q = np.ascontiguousarray(rows.reshape(C * P, groups, 8).transpose(1, 0, 2))
    pinv = np.ascontiguousarray(pinv)
    for a in (q, pinv):
        a.setflags(write=False)
    return q, basis, pinv


# -------------------------------------------------------- packing helpers

def _pack_bits(values: np.ndarray, K: int) -> bytes:
    if K == 16:
        return values.astype("<u2").tobytes()
    as_bytes = values.astype("<u4").view(np.uint8).reshape(-1, 4)
    bits = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :K]
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def _unpack_bits(buf: np.ndarray, count: int, K: int) -> np.ndarray:
    if K == 16:
        return buf[: 2 * count].view("<u2").astype(np.uint32)
    bits = np.unpackbits(buf, bitorder="little")[: count * K].reshape(count, K)
    weights = (1 << np.arange(K, dtype=np.uint32)).astype(np.uint32)
    return (bits.astype(np.uint32) * weights).sum(axis=1, dtype=np.uint32)


def _pack_nibbles(values: np.ndarray) -> bytes:
    v = (values.astype(np.int16) & 0xF).astype(np.uint8)
    if v.size % 2:
        v = np.append(v, np.uint8(0))
    return (v[0::2] | (v[1::2] << 4)).astype(np.uint8).tobytes()


def _unpack_nibbles(buf: np.ndarray, count: int) -> np.ndarray:
    out = np.empty(buf.size * 2, dtype=np.uint8)
    out[0::2] = buf & 0xF
    out[1::2] = buf >> 4
    return out[:count]


# ------------------------------------------------------- reference decoder

def decode(payload, shape, dtype: str, params: dict) -> np.ndarray:
    """numpy reference decoder (docs/format.md 3.4), bit-exact with the native one."""
    validate_params(params, shape, dtype)
    C, P, K, e0 = params["C"], params["P"], params["K"], params["exp_bias"]
    n = element_count(shape)
    buf = np.frombuffer(payload, dtype=np.uint8)
    if buf.size != expected_length(shape, params):
        raise ValueError(f"prng payload has {buf.size} bytes, shape {list(shape)} needs "
                         f"{expected_length(shape, params)}")
    nb, s1, s2, s3 = _sections(n, C, P, K)
    for section, start, end, used_bits in (("seed", 0, s1, nb * K),
                                           ("exponent", s1, s1 + s2, 4 * nb),
                                           ("mantissa", s1 + s2, s1 + s2 + s3, 4 * nb * P)):
        spare = 8 * (end - start) - used_bits
        if spare and buf[end - 1] >> (8 - spare):
            raise ValueError(f"prng {section} section: the {spare} unused bits of its last byte are not zero")
    seeds = _unpack_bits(buf[:s1], nb, K)
    exps = _unpack_nibbles(buf[s1:s1 + s2], nb).astype(np.int32)
    mants = _unpack_nibbles(buf[s1 + s2:], nb * P).astype(np.int32)
    mants = ((mants ^ 8) - 8).reshape(nb, P)
    if nb and (seeds.min() == 0 or seeds.max() >= (1 << K)):
        bad = int(np.flatnonzero((seeds == 0) | (seeds >= (1 << K)))[0])
        raise ValueError(f"prng block {bad} has seed {int(seeds[bad])}, outside 1..{(1 << K) - 1}")
    table = basis_table(C, P, K)
    out = np.empty(nb * C, dtype=np.float32)
    for b0 in range(0, nb, 1 << 16):
        b1 = min(nb, b0 + (1 << 16))
        u = table[seeds[b0:b1] - 1].astype(np.int32)           # (b, C, P)
        acc = np.zeros(u.shape[:2], dtype=np.int32)
        for j in range(P):
            acc += u[:, :, j] * mants[b0:b1, j, None]
        scale = np.ldexp(np.float32(1.0), exps[b0:b1] + (e0 - (K - 1)))
        out[b0 * C:b1 * C] = (acc.astype(np.float32) * scale.astype(np.float32)[:, None]).reshape(-1)
    return out[:n].reshape(tuple(shape))


# ------------------------------------------------------------ the encoder

def choose_exp_bias(x: np.ndarray) -> int:
    """The tensor's exponent range [e0, e0 + 15] reaches 2^3 above its largest
    weight: room for coefficients of ill-conditioned bases, and 16 octaves for
    the smaller blocks."""
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    if amax == 0.0:
        return 0
    return int(min(100, max(-100, math.ceil(math.log2(amax)) - 12)))


def encode(x: np.ndarray, options: dict) -> tuple[dict, bytes]:
    """Encode a float32 array. options: ``bits`` (3, 4, 4.5) or ``C``, ``P``, ``K``;
    ``candidates`` (shortlist size, speed only), ``impl`` ("auto", "scalar",
    "avx2", "neon"), ``threads`` (0 = all cores), ``progress`` (callable taking
    the number of weights just finished); ``exp_bias`` (default: from the
    largest weight, ``choose_exp_bias``)."""
    from .. import _native

    options = dict(options or {})
    if {"C", "P", "K"} & set(options):
        C, P, K = (int(options.get(k, d)) for k, d in zip("CPK", preset(4.5)))
    else:
        C, P, K = preset(options.get("bits", 4.5))
    w = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    n = w.size
    e0 = int(options["exp_bias"]) if "exp_bias" in options else choose_exp_bias(w)
    params = {"C": C, "P": P, "K": K, "exp_bias": e0}
    validate_params(params, x.shape, "float32")
    nb = ceil_div(n, C)
    blocks = np.zeros(nb * C, dtype=np.float32)
    blocks[:n] = w
    blocks = blocks.reshape(nb, C)
    q, basis, pinv = search_tables(C, P, K)
    seeds = np.empty(nb, dtype=np.uint32)
    exps = np.empty(nb, dtype=np.uint8)
    mants = np.empty((nb, P), dtype=np.int8)
    progress = options.get("progress")
    for b0 in range(0, nb, _CHUNK_BLOCKS):
        b1 = min(nb, b0 + _CHUNK_BLOCKS)
        s, e, m, _, _ = _native.prng_search(
            blocks[b0:b1], q, basis, pinv, K, params["exp_bias"],
            int(options.get("candidates", 32)), str(options.get("impl", "auto")),
            int(options.get("threads", 0)))
        seeds[b0:b1], exps[b0:b1], mants[b0:b1] = s, e, m
        if progress is not None:
            progress(min(n, b1 * C) - b0 * C)
    payload = _pack_bits(seeds, K) + _pack_nibbles(exps) + _pack_nibbles(mants.reshape(-1))
    return params, payload


# ------------------------------------------------- reference (brute force)

def _block_errors(w, u, m, e, K):
    """Squared error per candidate; u (S, C, P) int64, m (S, P), e (S,). Sums in order."""
    err = np.zeros(u.shape[0])
    for i in range(u.shape[1]):
        acc = np.zeros(u.shape[0], dtype=np.int64)
        for j in range(u.shape[2]):
            acc = acc + u[:, i, j] * m[:, j]
        d = w[i] - np.ldexp(acc.astype(np.float64), e - (K - 1))
        err = err + d * d
    return err


def quantize_all(w: np.ndarray, index: np.ndarray, C: int, P: int, K: int, exp_bias: int):
    """The quantisation procedure for one block w (float64, C) under every seed
    index in ``index``; returns (E, mantissas (S, P), errors). Mirrors
    quantize_block in cpp/src/encode/prng_search.cpp operation by operation."""
    _, basis, pinv = search_tables(C, P, K)
    u = basis[index].astype(np.int64)
    pv = pinv[index]
    S = index.size
    c = np.zeros((S, P))
    for i in range(C):
        c = c + pv[:, :, i] * w[i]
    amax = np.abs(c).max(axis=1)
    e_lo, e_hi = exp_bias, exp_bias + 15
    zero = amax == 0.0
    with np.errstate(divide="ignore"):
        e_min = np.where(zero, 0, np.floor(np.log2(np.where(zero, 1.0, amax)))).astype(np.int64) - 5

    def clipping(e):
        r = np.rint(np.ldexp(c, -e[:, None]))
        return ((r > _MANT_MAX) | (r < _MANT_MIN)).any(axis=1)

    while True:
        grow = clipping(e_min) & ~zero
        if not grow.any():
            break
        e_min = e_min + grow
    best_err = np.full(S, np.inf)
    best_e = np.full(S, e_lo, dtype=np.int64)
    m = np.zeros((S, P), dtype=np.int64)
    tried = []
    for de in (-1, 0, 1):
        e = np.clip(e_min + de, e_lo, e_hi)
        dup = np.zeros(S, dtype=bool)
        for t in tried:
            dup |= t == e
        tried.append(e)
        mm = np.clip(np.rint(np.ldexp(c, -e[:, None])), _MANT_MIN, _MANT_MAX).astype(np.int64)
        err = _block_errors(w, u, mm, e, K)
        take = ~dup & ~zero & ((err < best_err) | ((err == best_err) & (e < best_e)))
        best_err = np.where(take, err, best_err)
        best_e = np.where(take, e, best_e)
        m = np.where(take[:, None], mm, m)
    if zero.any():
        best_e = np.where(zero, e_lo, best_e)
        m[zero] = 0
        best_err = np.where(zero, _block_errors(w, u, m, best_e, K), best_err)
    live = ~zero
    for _ in range(2):
        for j in range(P):
            for d in (-1, 1):
                nv = m[:, j] + d
                ok = live & (nv >= _MANT_MIN) & (nv <= _MANT_MAX)
                trial = m.copy()
                trial[:, j] = np.where(ok, nv, m[:, j])
                err = _block_errors(w, u, trial, best_e, K)
                take = ok & (err < best_err)
                best_err = np.where(take, err, best_err)
                m = np.where(take[:, None], trial, m)
    return (best_e - exp_bias).astype(np.uint8), m.astype(np.int8), best_err


def reference_search(blocks: np.ndarray, C: int, P: int, K: int, exp_bias: int):
    """Brute force over every seed for each block (slow: tests only). Returns
    (seeds, E, mantissas, errors) like the native search."""
    n = (1 << K) - 1
    index = np.arange(n)
    out = ([], [], [], [])
    for w in np.asarray(blocks, dtype=np.float32).astype(np.float64):
        e, m, err = quantize_all(w, index, C, P, K, exp_bias)
        k = int(np.argmin(err))
        for lst, v in zip(out, (k + 1, e[k], m[k], err[k])):
            lst.append(v)
    return (np.array(out[0], dtype=np.uint32), np.array(out[1], dtype=np.uint8),
            np.array(out[2], dtype=np.int8).reshape(-1, P), np.array(out[3]))
