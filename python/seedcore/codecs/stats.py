"""``stats``: a tensor's statistics instead of its values (spec 3.5).

The payload is ``mean, std, sparsity, sigma_1 .. sigma_k`` (binary32).  Decoding
gives a deterministic pseudo-random tensor with that mean, standard deviation,
fraction of exact zeros and leading singular values.  It carries no pre-trained
knowledge: it is a starting point for on-device training.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from ._util import F32, as_bytes_view, check_keys, check_length, element_count, is_int

NAME = "stats"
DEFAULT_K = 8
MAX_K = 64

_M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9
Z = np.float32(1.0 / math.sqrt(21845.0))  # binary64 then rounded: unit-variance gauss
_ROW_CHUNK_ELEMENTS = 1 << 20
_MAX_MAGNITUDE = 2.0 ** 100  # keeps every decoding intermediate finite (format.md 3.5)


def rows_cols(shape) -> tuple[int, int]:
    """rows = shape[0], cols = the rest, for 2+ dimensions; 1 x n otherwise."""
    shape = tuple(int(d) for d in shape)
    if len(shape) >= 2:
        return shape[0], element_count(shape[1:])
    return 1, element_count(shape)


def max_k(shape) -> int:
    if len(shape) < 2:
        return 0
    rows, cols = rows_cols(shape)
    return min(MAX_K, rows, cols)


def validate_params(params: dict, shape: tuple, dtype: str) -> None:
    check_keys(params, ("k", "seed"), NAME)
    k, s = params["k"], params["seed"]
    if not is_int(s) or not 0 <= s < 2**32:
        raise ValueError(f"stats seed must be an integer in 0..2^32-1, got {s!r}")
    limit = max_k(shape)
    if not is_int(k) or not 0 <= k <= limit:
        raise ValueError(f"stats k must be an integer in 0..{limit} for shape {list(shape)}, got {k!r}")


def expected_length(shape, params) -> int:
    return 4 * (3 + params["k"])


def seed_for_name(name: str) -> int:
    """The default ``seed`` param: a u32 derived from the tensor name, so files are reproducible."""
    return zlib.crc32(name.encode("utf-8")) & _M32


# ---------------------------------------------------------------------------
# hashing (u32 arithmetic modulo 2^32)


def _fmix32_int(h: int) -> int:
    h &= _M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h.astype(np.uint32, copy=True)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def key(s: int, stream: int) -> int:
    return _fmix32_int((s + _GOLDEN * (stream + 1)) & _M32)


def hash_u32(s: int, stream: int, idx: np.ndarray) -> np.ndarray:
    return _fmix32(np.uint32(key(s, stream)) ^ idx.astype(np.uint32))


def gauss(s: int, stream: int, idx: np.ndarray) -> np.ndarray:
    h = hash_u32(s, stream, idx)
    total = (
        (h & np.uint32(0xFF)).astype(np.int32)
        + ((h >> np.uint32(8)) & np.uint32(0xFF)).astype(np.int32)
        + ((h >> np.uint32(16)) & np.uint32(0xFF)).astype(np.int32)
        + (h >> np.uint32(24)).astype(np.int32)
        - np.int32(510)
    )
    return total.astype(np.float32) * Z


# ---------------------------------------------------------------------------
# encoder


def singular_values(a: np.ndarray, k: int) -> np.ndarray:
    """The k largest singular values of a (rows x cols), descending, float64."""
    if k == 0:
        return np.zeros(0)
    rows, cols = a.shape
    try:
        import torch  # noqa: F401  (faster on big matrices)

        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))
        g = t.T @ t if cols <= rows else t @ t.T
        ev = torch.linalg.eigvalsh(g).numpy()
    except ImportError:
        a64 = np.asarray(a, dtype=np.float64)
        g = a64.T @ a64 if cols <= rows else a64 @ a64.T
        ev = np.linalg.eigvalsh(g)
    ev = np.sort(np.maximum(ev, 0.0))[::-1][:k]
    return np.sqrt(ev)


def init_std(shape) -> float:
    """The standard deviation of torch's default initialisation of a weight of this
    shape (uniform in +-1/sqrt(fan_in), fan_in = the product of the dimensions after
    the first), for 2+ dimensions; 0 (zeros, the usual bias init) otherwise."""
    if len(shape) < 2:
        return 0.0
    return 1.0 / math.sqrt(3.0 * max(element_count(tuple(shape)[1:]), 1))


def encode(x: np.ndarray, options: dict) -> tuple[dict, bytes]:
    """options: ``k`` (default 8, clipped to min(rows, cols, 64); 0 for < 2-D),
    ``seed`` (u32) or ``name`` (the seed is then crc32 of the name; default 0).

    Ablations (benchmarks only; the file format is unchanged, only what is written
    into it): ``keep_moments=False`` writes mean 0 and the std of torch's default
    initialisation (``init_std``) instead of the tensor's, the singular values
    scaled by the same factor; ``keep_sparsity=False`` writes sparsity 0 and the
    mean / std of all elements (zeros included). ``k=0`` drops the spectrum."""
    x = np.asarray(x, dtype=np.float32)
    shape = x.shape
    n = x.size
    limit = max_k(shape)
    k = options.get("k", DEFAULT_K)
    if not is_int(k) or k < 0:
        raise ValueError(f"stats: k must be a non-negative integer, got {k!r}")
    k = min(k, limit)
    if "seed" in options:
        seed = int(options["seed"])
    else:
        seed = seed_for_name(options["name"]) if options.get("name") else 0
    if n == 0:
        mean = std = sparsity = 0.0
        sig = np.zeros(0)
        k = 0
    else:
        # mean and std of the non-zero elements: decoding zeroes a `sparsity`
        # fraction after adding the mean, so this reproduces all three
        x64 = x.astype(np.float64).reshape(-1)
        nonzero = x64[x64 != 0] if options.get("keep_sparsity", True) else x64
        sparsity = 1.0 - nonzero.size / n
        mean = float(np.mean(nonzero)) if nonzero.size else 0.0
        std = float(np.sqrt(np.mean((nonzero - mean) ** 2))) if nonzero.size else 0.0
        rows, cols = rows_cols(shape)
        sig = singular_values((x64 - mean).reshape(rows, cols), k) if k else np.zeros(0)
        if not options.get("keep_moments", True):
            new_std = init_std(shape)
            sig = sig * (new_std / std) if std > 0 else np.zeros_like(sig)
            mean, std = 0.0, new_std
    values = np.array([mean, std, sparsity, *sig], dtype=np.float64).astype(np.float32)
    values[1] = max(values[1], F32(0))
    values[2] = min(max(values[2], F32(0)), F32(1))
    if not np.all(np.isfinite(values)) or np.abs(values).max() > _MAX_MAGNITUDE:
        raise ValueError("stats: the statistics exceed 2^100 in magnitude; store this tensor raw")
    params = {"k": int(k), "seed": int(seed) & _M32}
    return params, values.astype("<f4").tobytes()


# ---------------------------------------------------------------------------
# reference decoder


def read_values(payload, k: int):
    buf = as_bytes_view(payload)
    check_length(buf, 4 * (3 + k), NAME)
    v = np.frombuffer(buf, dtype="<f4", count=3 + k).astype(np.float32)
    mean, std, sparsity, sig = v[0], v[1], v[2], v[3:]
    if not np.all(np.isfinite(v)):
        raise ValueError("stats payload holds a non-finite value")
    if np.abs(v).max() > _MAX_MAGNITUDE:
        raise ValueError("stats payload holds a value above 2^100 in magnitude")
    if not std >= 0:
        raise ValueError(f"stats std is {float(std)!r}, must be >= 0")
    if not 0 <= sparsity <= 1:
        raise ValueError(f"stats sparsity is {float(sparsity)!r}, must be in [0, 1]")
    if k and (np.any(sig < 0) or np.any(sig[1:] > sig[:-1])):
        raise ValueError("stats singular values must be non-negative and non-increasing")
    return mean, std, sparsity, sig


def constants(n: int, std: np.float32, sparsity: np.float32, sig: np.ndarray):
    """noise, c_i and T, computed in binary64 as the spec says."""
    ssum = 0.0
    for s in sig:
        ssum += float(s) * float(s)
    std64 = float(std)
    noise = np.float32(math.sqrt(max(std64 * std64 - ssum / n, 0.0)))
    root_n = math.sqrt(n)
    c = [np.float32(float(s) / root_n) for s in sig]
    t = 0 if float(sparsity) == 0 else min(math.floor(float(sparsity) * 4294967296.0), 2**32 - 1)
    return noise, c, t


def decode(payload, shape, dtype: str, params: dict) -> np.ndarray:
    validate_params(params, tuple(shape), dtype)
    shape = tuple(int(d) for d in shape)
    k, s = params["k"], params["seed"]
    mean, std, sparsity, sig = read_values(payload, k)
    n = element_count(shape)
    out = np.empty(n, dtype=np.float32)
    if n == 0:
        return out.reshape(shape)
    rows, cols = rows_cols(shape)
    noise, c, t = constants(n, std, sparsity, sig)
    mean32 = np.float32(mean)
    col_idx = np.arange(cols, dtype=np.uint32)
    col_g = [gauss(s, 3 + 2 * i, col_idx) for i in range(k)]
    step = max(1, _ROW_CHUNK_ELEMENTS // max(cols, 1))
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        row_idx = np.arange(r0, r1, dtype=np.uint32)
        idx = (row_idx[:, None] * np.uint32(cols) + col_idx[None, :]).reshape(-1)
        v = noise * gauss(s, 0, idx)
        v = v.reshape(r1 - r0, cols)
        for i in range(k):
            a = c[i] * gauss(s, 2 + 2 * i, row_idx)  # c_i x gauss(row), binary32
            v = v + a[:, None] * col_g[i][None, :]  # then x gauss(col), then add
        v = v + mean32
        if t:
            zero = hash_u32(s, 1, idx).reshape(v.shape) < np.uint32(t)
            v[zero] = np.float32(0)
        out[r0 * cols : r1 * cols] = v.reshape(-1)
    return out.reshape(shape)
