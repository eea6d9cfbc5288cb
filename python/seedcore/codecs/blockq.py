"""Block quantizers with a per-block binary16 scale, ggml's Q8_0 and Q4_0
(spec 3.2 and 3.3).  ``q8.py`` and ``q4.py`` expose them as codec modules."""

from __future__ import annotations

import numpy as np

from ._util import (
    F32, as_bytes_view, ceil_div, check_keys, check_length, element_count,
    float32_to_float16_checked, is_int, round_half_away,
)

BLOCK = 32


def validate_params(codec: str, params: dict) -> None:
    check_keys(params, ("block",), codec)
    b = params["block"]
    if not is_int(b) or b != BLOCK:
        raise ValueError(f"{codec} block must be {BLOCK} in format version 1, got {b!r}")


def _blocks(x: np.ndarray) -> np.ndarray:
    """x flattened, zero-padded to whole blocks, as (nb, 32) float32."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    nb = ceil_div(flat.size, BLOCK)
    if nb * BLOCK != flat.size:
        flat = np.concatenate([flat, np.zeros(nb * BLOCK - flat.size, np.float32)])
    return flat.reshape(nb, BLOCK)


def _safe_quotient(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """x / d per block in float32, 0 where the scale is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = x / d[:, None]
    v[np.broadcast_to(d[:, None] == 0, v.shape)] = 0
    return v


def encode_q8(x: np.ndarray) -> bytes:
    """Q8_0: d = max|x| / 127 rounded to binary16, q = round(x / d)."""
    blocks = _blocks(x)
    amax = np.max(np.abs(blocks), axis=1) if blocks.size else np.zeros(0, np.float32)
    d16 = float32_to_float16_checked(amax / F32(127), "q8")
    d = d16.astype(np.float32)
    q = np.clip(round_half_away(_safe_quotient(blocks, d)), -127, 127).astype(np.int8)
    return d16.astype("<f2").tobytes() + q.tobytes()


def encode_q4(x: np.ndarray) -> bytes:
    """Q4_0: mx = the element of largest magnitude (signed), d = mx / -8 rounded to
    binary16, q = clip(round(x / d) + 8, 0, 15)."""
    blocks = _blocks(x)
    nb = blocks.shape[0]
    if nb:
        mx = blocks[np.arange(nb), np.argmax(np.abs(blocks), axis=1)]
    else:
        mx = np.zeros(0, np.float32)
    d16 = float32_to_float16_checked(mx / F32(-8), "q4")
    d = d16.astype(np.float32)
    q = np.clip(round_half_away(_safe_quotient(blocks, d)) + F32(8), 0, 15).astype(np.uint8)
    packed = (q[:, :16] | (q[:, 16:] << np.uint8(4))).astype(np.uint8)
    return d16.astype("<f2").tobytes() + packed.tobytes()


def _scales(buf, nb: int, codec: str) -> np.ndarray:
    """The binary16 block scales as float32; each must be finite (format.md 3.2)."""
    h = np.frombuffer(buf, dtype="<u2", count=nb)
    bad = np.flatnonzero((h & 0x7C00) == 0x7C00)
    if bad.size:
        raise ValueError(f"{codec} block {int(bad[0])} has a scale that is not finite")
    return h.view("<f2").astype(np.float32)


def decode_q8(payload, n: int) -> np.ndarray:
    buf = as_bytes_view(payload)
    nb = ceil_div(n, BLOCK)
    check_length(buf, 34 * nb, "q8")
    d = _scales(buf, nb, "q8")
    q = np.frombuffer(buf, dtype=np.int8, count=nb * BLOCK, offset=2 * nb).reshape(nb, BLOCK)
    x = d[:, None] * q.astype(np.float32)  # one binary32 multiply per element
    return x.reshape(-1)[:n]


def decode_q4(payload, n: int) -> np.ndarray:
    buf = as_bytes_view(payload)
    nb = ceil_div(n, BLOCK)
    check_length(buf, 18 * nb, "q4")
    d = _scales(buf, nb, "q4")
    packed = np.frombuffer(buf, dtype=np.uint8, count=nb * 16, offset=2 * nb).reshape(nb, 16)
    nib = np.concatenate([packed & np.uint8(0x0F), packed >> np.uint8(4)], axis=1)
    q = nib.astype(np.int8) - np.int8(8)
    x = d[:, None] * q.astype(np.float32)
    return x.reshape(-1)[:n]


def expected_length_q8(shape) -> int:
    return 34 * ceil_div(element_count(shape), BLOCK)


def expected_length_q4(shape) -> int:
    return 18 * ceil_div(element_count(shape), BLOCK)
