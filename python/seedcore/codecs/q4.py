"""``q4``: 32-weight blocks, a binary16 scale and 32 4-bit values each (ggml Q4_0, spec 3.3)."""

from __future__ import annotations

import numpy as np

from . import blockq
from ._util import element_count

NAME = "q4"


def validate_params(params: dict, shape: tuple, dtype: str) -> None:
    blockq.validate_params(NAME, params)


def expected_length(shape, params) -> int:
    return blockq.expected_length_q4(shape)


def encode(x: np.ndarray, options: dict) -> tuple[dict, bytes]:
    block = options.get("block", blockq.BLOCK)
    if block != blockq.BLOCK:
        raise ValueError(f"q4: block must be {blockq.BLOCK}, got {block!r}")
    return {"block": blockq.BLOCK}, blockq.encode_q4(x)


def decode(payload, shape, dtype: str, params: dict) -> np.ndarray:
    validate_params(params, tuple(shape), dtype)
    return blockq.decode_q4(payload, element_count(shape)).reshape(tuple(shape))
