"""``raw``: values stored as they are, float32 / float16 / bfloat16 for floating
tensors, the tensor's own dtype for integer and bool tensors (spec 3.1)."""

from __future__ import annotations

import numpy as np

from ._util import as_bytes_view, check_keys, check_length, element_count

NAME = "raw"

FLOAT_STORAGES = ("float32", "float16", "bfloat16")
FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
INTEGER_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "bool")
ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
            "int16": 2, "int8": 1, "uint8": 1, "bool": 1}
_LE = {"float32": "<f4", "float16": "<f2", "int64": "<i8", "int32": "<i4", "int16": "<i2",
       "int8": "i1", "uint8": "u1", "bool": "u1"}
_NATIVE = {"int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
           "uint8": np.uint8, "bool": np.bool_}


def validate_params(params: dict, shape: tuple, dtype: str) -> None:
    check_keys(params, ("storage",), NAME)
    s = params["storage"]
    if dtype in INTEGER_DTYPES:
        if s != dtype:
            raise ValueError(f"raw storage for a {dtype} tensor must be {dtype!r}, got {s!r}")
    elif s not in FLOAT_STORAGES:
        raise ValueError(
            f"raw storage for a {dtype} tensor must be one of {', '.join(FLOAT_STORAGES)}, got {s!r}"
        )


def expected_length(shape, params) -> int:
    return element_count(shape) * ITEMSIZE[params["storage"]]


def float32_to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """binary32 -> upper 16 bits, round to nearest even (x finite)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = (u + np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)
    return r.astype(np.uint16)


def encode(x: np.ndarray, options: dict) -> tuple[dict, bytes]:
    """x: a finite float32 array (storage float32 / float16 / bfloat16 from
    options["storage"], default float32), or an integer / bool array stored as is."""
    x = np.asarray(x)
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
        dtype = "bool" if x.dtype == np.bool_ else x.dtype.name
        if dtype not in _NATIVE:
            raise ValueError(f"raw: unsupported integer dtype {x.dtype}")
        storage = options.get("storage", dtype)
        if storage != dtype:
            raise ValueError(f"raw: a {dtype} tensor is stored as {dtype}, not {storage!r}")
        return {"storage": dtype}, np.ascontiguousarray(x).astype(_LE[dtype]).tobytes()
    storage = options.get("storage", "float32")
    if storage not in FLOAT_STORAGES:
        raise ValueError(f"raw: storage must be one of {', '.join(FLOAT_STORAGES)}, got {storage!r}")
    x = np.asarray(x, dtype=np.float32, order="C")
    if storage == "float32":
        data = x.astype("<f4")
    elif storage == "float16":
        with np.errstate(over="ignore"):
            data = x.astype("<f2")
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise ValueError(f"raw float16: {bad} values overflow float16 (max 65504); use float32 storage")
    else:
        data = float32_to_bfloat16_bits(x).astype("<u2")
        if np.any((data.astype(np.uint16) & 0x7F80) == 0x7F80):
            raise ValueError("raw bfloat16: values overflow bfloat16; use float32 storage")
    return {"storage": storage}, data.tobytes()


def decode(payload, shape, dtype: str, params: dict) -> np.ndarray:
    """Reference decoder: floating dtypes give float32, integer dtypes their own."""
    validate_params(params, tuple(shape), dtype)
    buf = as_bytes_view(payload)
    check_length(buf, expected_length(shape, params), NAME)
    storage = params["storage"]
    n = element_count(shape)
    if storage == "bfloat16":
        bits = np.frombuffer(buf, dtype="<u2", count=n).astype(np.uint32) << np.uint32(16)
        out = bits.view(np.float32)
    elif storage in ("float32", "float16"):
        out = np.frombuffer(buf, dtype=_LE[storage], count=n).astype(np.float32)
    else:
        raw = np.frombuffer(buf, dtype=_LE[storage], count=n)
        if storage == "bool":
            if np.any(raw > 1):
                raise ValueError(f"raw bool payload holds {int(np.count_nonzero(raw > 1))} bytes other than 0 or 1")
            out = raw.astype(np.bool_)
        else:
            out = raw.astype(_NATIVE[storage])
    return out.reshape(tuple(shape))
