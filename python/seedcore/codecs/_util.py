"""Small helpers shared by the codec modules (no dependency on the rest of seedcore)."""

from __future__ import annotations

import numpy as np

F32 = np.float32


def element_count(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def is_int(v) -> bool:
    return type(v) is int  # bool is not an integer here


def check_keys(params: dict, keys: tuple, codec: str) -> None:
    if not isinstance(params, dict):
        raise ValueError(f"{codec} params must be an object, got {type(params).__name__}")
    if set(params) != set(keys):
        raise ValueError(
            f"{codec} params must have exactly the keys {sorted(keys)}, got {sorted(params)}"
        )


def as_bytes_view(payload) -> memoryview:
    return memoryview(payload).cast("B")


def check_length(payload: memoryview, expected: int, codec: str) -> None:
    if len(payload) != expected:
        raise ValueError(f"{codec} payload is {len(payload)} bytes, expected {expected}")


def round_half_away(v: np.ndarray) -> np.ndarray:
    """roundf(): halves away from zero (what ggml's quantizers use)."""
    return np.copysign(np.floor(np.abs(v) + F32(0.5)), v)


def float32_to_float16_checked(d: np.ndarray, codec: str) -> np.ndarray:
    """Rounds per-block scales to binary16 (round-to-nearest-even) and refuses overflow."""
    with np.errstate(over="ignore"):
        h = d.astype(np.float16)
    if not np.all(np.isfinite(h)):
        big = float(np.max(np.abs(d)))
        raise ValueError(
            f"{codec}: a block scale of {big:.6g} overflows float16 (max 65504); "
            "store this tensor with codec 'raw' instead"
        )
    return h
