"""``ecq``: entropy-coded uniform quantisation (spec 3.6).

Every weight becomes a multiple of one step per tensor, ``x = f32(q) × step``, and
the integer codes ``q`` are stored with a static rANS coder, so a tensor costs
about the zeroth-order entropy of its codes rather than a fixed number of bits per
weight.  With one step for the whole tensor, the squared error is spread evenly
(what minimises it for a given entropy, to first order), and channels of very
different scale cost what their values need: a small channel's codes are mostly
0 and ±1, which the coder stores in a fraction of a bit each.

``bits`` picks the step: the largest step whose codes have at most that entropy
(bits per weight) under plain rounding (``step_for``).  Data-aware rounding
(``seedcore.gptq``) keeps the step and chooses the codes, which moves the entropy
a little.  The rANS encoder is native (``seedcore._native.ecq_encode``); this
module holds the step search and the numpy reference decoder.
"""

from __future__ import annotations

import math

import numpy as np

from ._util import F32, as_bytes_view, ceil_div, check_keys, element_count, is_int, round_half_away

NAME = "ecq"

PROB_BITS = 15
PROB_SCALE = 1 << PROB_BITS
STATE_LOW = 1 << 23
MAX_SYMBOLS = 1 << 15
MAX_CODE = 1 << 24
STEP_MIN, STEP_MAX = 2.0 ** -100, 2.0 ** 100
CHUNK = 1 << 14            # elements per chunk at most by default (the unit of parallel decoding)
CHUNK_SMALL = 1 << 11      # ... and at least (default_chunk)
CHUNK_MIN, CHUNK_MAX = 256, 1 << 20
SEARCH_SAMPLE = 1 << 18    # elements the step search measures the entropy on (evenly spaced)
BITS_MIN, BITS_MAX = 0.25, 12.0
_KEYS = ("step", "chunk", "bytes")


def validate_params(params: dict, shape, dtype: str) -> None:
    check_keys(params, _KEYS, NAME)
    step = params["step"]
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
        raise ValueError(f"ecq param step must be a finite number, got {step!r}")
    if float(np.float32(step)) != float(step):
        raise ValueError(f"ecq param step must be a binary32 value, got {step!r}")
    if not STEP_MIN <= float(step) <= STEP_MAX:
        raise ValueError(f"ecq param step must be in [2^-100, 2^100], got {step!r}")
    if not is_int(params["chunk"]) or not CHUNK_MIN <= params["chunk"] <= CHUNK_MAX:
        raise ValueError(f"ecq param chunk must be an integer in {CHUNK_MIN}..{CHUNK_MAX}, got {params['chunk']!r}")
    if not is_int(params["bytes"]) or not 8 <= params["bytes"] < 1 << 40:
        raise ValueError(f"ecq param bytes must be an integer in 8..2^40-1, got {params['bytes']!r}")
    if dtype not in ("float32", "float16", "bfloat16", "float64"):
        raise ValueError(f"ecq encodes floating tensors only, not {dtype}")


def expected_length(shape, params) -> int:
    return int(params["bytes"])


def codes(x: np.ndarray, step: float) -> np.ndarray:
    """round_half_away(x / step) as int64 (binary32 division, as the decoder multiplies)."""
    return round_half_away(np.asarray(x, np.float32) / F32(step)).astype(np.int64)


def entropy(q: np.ndarray) -> float:
    """Zeroth-order entropy of integer codes, bits per element."""
    q = np.asarray(q).reshape(-1)
    if q.size == 0:
        return 0.0
    cnt = np.bincount(q - q.min())
    p = cnt[cnt > 0] / q.size
    return float(-(p * np.log2(p)).sum())


def step_for(x: np.ndarray, bits: float) -> float:
    """The step (a binary32 value) whose codes have an entropy of about ``bits`` bits
    per element (plain rounding): bisection on log(step), keeping the largest step
    found whose entropy is at most ``bits`` (a smaller step: more bits, less error),
    measured on at most ``SEARCH_SAMPLE`` evenly spaced elements (the whole tensor's
    entropy then differs by about a hundredth of a bit).  The step never makes the
    codes span more than the format's alphabet."""
    x = np.asarray(x, np.float32).reshape(-1)
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    if x.size > SEARCH_SAMPLE:
        x = x[np.linspace(0, x.size - 1, SEARCH_SAMPLE).round().astype(np.int64)]
    if amax == 0.0 or not math.isfinite(amax):
        return 1.0
    lo = max(2 * amax / (MAX_SYMBOLS - 2), STEP_MIN)  # finest step the alphabet allows
    hi = min(max(4 * amax, lo), STEP_MAX)              # every code 0
    if entropy(codes(x, lo)) <= bits:
        return _f32_step(lo)
    a, b = math.log(lo), math.log(hi)
    for _ in range(48):
        mid = 0.5 * (a + b)
        if entropy(codes(x, _f32_step(math.exp(mid)))) > bits:
            a = mid
        else:
            b = mid
    return _f32_step(math.exp(b))


def _f32_step(v: float) -> float:
    return float(np.float32(min(max(v, STEP_MIN), STEP_MAX)))


def _native():
    from .. import _native as nat

    return nat


def default_chunk(n: int) -> int:
    """The chunk an ``n``-element tensor gets unless one is asked for: at least 8 chunks
    where chunks of CHUNK_SMALL..CHUNK elements (multiples of 256) allow, because the
    native decoder runs up to 8 chunks' streams side by side (and threads share a tensor
    by chunks). Each chunk costs about 8 bytes (its offset and its final state)."""
    return min(CHUNK, max(CHUNK_SMALL, -(-n // (8 * 256)) * 256))


def encode_codes(q: np.ndarray, step: float, chunk: int | None = None) -> tuple[dict, bytes]:
    """(params, payload) for integer codes ``q`` (any shape, row-major) and ``step``;
    ``chunk`` by default ``default_chunk(q.size)``."""
    q = np.ascontiguousarray(np.asarray(q).reshape(-1))
    chunk = default_chunk(q.size) if chunk is None else chunk
    if q.size and (q.min() < -MAX_CODE or q.max() > MAX_CODE):
        raise ValueError(f"ecq: codes must lie in [-2^24, 2^24]; use a larger step than {step!r}")
    payload = bytes(_native().ecq_encode(q.astype(np.int32), int(chunk)))
    return {"step": float(np.float32(step)), "chunk": int(chunk), "bytes": len(payload)}, payload


def _options(options: dict) -> tuple[float | None, float | None, int | None]:
    step, bits = options.get("step"), options.get("bits")
    chunk = options.get("chunk")
    if chunk is not None and (not is_int(chunk) or not CHUNK_MIN <= chunk <= CHUNK_MAX):
        raise ValueError(f"ecq: chunk must be an integer in {CHUNK_MIN}..{CHUNK_MAX}, got {chunk!r}")
    if step is not None:
        step = float(step)
        if not (math.isfinite(step) and STEP_MIN <= step <= STEP_MAX):
            raise ValueError(f"ecq: step must be a finite number in [2^-100, 2^100], got {options['step']!r}")
    elif bits is None:
        raise ValueError("ecq needs a bit rate (bits=, e.g. 'ecq:3') or a step")
    else:
        bits = float(bits)
        if not BITS_MIN <= bits <= BITS_MAX:
            raise ValueError(f"ecq: bits must be in {BITS_MIN:g}..{BITS_MAX:g}, got {options['bits']!r}")
    return step, bits, None if chunk is None else int(chunk)


def choose_step(x: np.ndarray, options: dict) -> tuple[float, int]:
    """(step, chunk) that ``encode`` uses for ``x`` under ``options``."""
    step, bits, chunk = _options(options)
    chunk = default_chunk(int(np.size(x))) if chunk is None else chunk
    return (_f32_step(step) if step is not None else step_for(x, bits)), chunk


def encode(x: np.ndarray, options: dict) -> tuple[dict, bytes]:
    step, chunk = choose_step(x, options)
    return encode_codes(codes(x, step), step, chunk)


def round_trip(x: np.ndarray, options: dict) -> tuple[np.ndarray, int]:
    """(decode(encode(x)) as float32, payload bytes) without the reference decoder."""
    step, chunk = choose_step(x, options)
    q = codes(x, step)
    params, _ = encode_codes(q, step, chunk)
    return (q.astype(np.float32) * F32(step)).reshape(np.shape(x)), params["bytes"]


def _u32(b: memoryview, off: int, count: int) -> np.ndarray:
    return np.frombuffer(b, dtype="<u4", count=count, offset=off).astype(np.int64)


def decode(payload, shape, dtype: str, params: dict) -> np.ndarray:
    """The numpy reference decoder: every rule of spec 3.6, chunks decoded in lockstep."""
    validate_params(params, tuple(shape), dtype)
    n = element_count(shape)
    b = as_bytes_view(payload)
    m, chunk, step = params["bytes"], params["chunk"], F32(params["step"])
    if len(b) != m:
        raise ValueError(f"ecq payload is {len(b)} bytes, expected {m}")
    S = int(_u32(b, 0, 1)[0])
    lo = int(np.frombuffer(b, dtype="<i4", count=1, offset=4)[0])
    if not 1 <= S <= MAX_SYMBOLS:
        raise ValueError(f"ecq: alphabet size {S} is not in 1..{MAX_SYMBOLS}")
    if lo < -MAX_CODE or lo + S - 1 > MAX_CODE:
        raise ValueError(f"ecq: codes {lo}..{lo + S - 1} leave [-2^24, 2^24]")
    A = 8 + 2 * S + (2 if S % 2 else 0)
    nc = ceil_div(n, chunk)
    B = A + 4 * nc
    if B > m:
        raise ValueError(f"ecq: the table and {nc} stream offsets need {B} bytes, the payload has {m}")
    f = np.frombuffer(b, dtype="<u2", count=S, offset=8).astype(np.int64)
    if int(f.sum()) != PROB_SCALE:
        raise ValueError(f"ecq: the frequencies sum to {int(f.sum())}, not 2^15")
    if S % 2 and bytes(b[8 + 2 * S:A]) != b"\0\0":
        raise ValueError("ecq: the padding after the frequency table is not zero")
    ends = _u32(b, A, nc)
    starts = np.r_[0, ends[:-1]] if nc else ends
    if (nc == 0 and B != m) or (nc and (np.any(ends - starts < 4) or int(ends[-1]) != m - B)):
        raise ValueError(f"ecq: the stream offsets do not cut the {m - B} stream bytes into {nc} streams "
                         f"of at least 4 bytes each")
    cum = np.r_[0, np.cumsum(f)]
    slot2sym = np.repeat(np.arange(S), f)
    data = np.frombuffer(b, dtype=np.uint8, offset=B).astype(np.int64)
    out = np.zeros(nc * chunk, np.int64)
    if nc:
        lens = np.minimum(chunk, n - np.arange(nc) * chunk)
        pos = starts.copy()
        x = (data[pos] | (data[pos + 1] << 8) | (data[pos + 2] << 16) | (data[pos + 3] << 24))
        pos += 4
        if np.any((x < STATE_LOW) | (x >= 1 << 31)):
            raise ValueError(f"ecq: chunk {int(np.argmax((x < STATE_LOW) | (x >= 1 << 31)))} starts "
                             f"in a state outside [2^23, 2^31)")
        for t in range(int(lens.max())):
            live = np.nonzero(lens > t)[0]
            xs = x[live]
            r = xs & (PROB_SCALE - 1)
            s = slot2sym[r]
            xs = f[s] * (xs >> PROB_BITS) + r - cum[s]
            out[live * chunk + t] = s
            for _ in range(2):  # x ≥ 2^8 after a step, so two bytes always renormalise
                need = live[xs < STATE_LOW]
                if need.size == 0:
                    break
                sel = xs < STATE_LOW
                p = pos[need]
                if np.any(p >= ends[need]):
                    raise ValueError(f"ecq: chunk {int(need[np.argmax(p >= ends[need])])} reads past "
                                     f"the end of its stream")
                xs[sel] = (xs[sel] << 8) | data[p]
                pos[need] = p + 1
            x[live] = xs
        bad = (x != STATE_LOW) | (pos != ends)
        if np.any(bad):
            raise ValueError(f"ecq: chunk {int(np.argmax(bad))} does not end in the encoder's initial state "
                             f"with its stream consumed")
    return ((out[:n] + lo).astype(np.float32) * step).reshape(tuple(shape))
