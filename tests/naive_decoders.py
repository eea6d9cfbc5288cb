"""Element-by-element decoders written straight from docs/format.md, with Python
integers and numpy float32 scalars: slow, independent of the vectorised
reference decoders in seedcore.codecs, used to cross-check them."""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32
M32 = 0xFFFFFFFF
TAPS = {8: 0xB8, 9: 0x110, 10: 0x240, 11: 0x500, 12: 0xE08, 13: 0x1C80, 14: 0x3802,
        15: 0x6000, 16: 0xB400}


def _read_bits(buf: bytes, start_bit: int, width: int) -> int:
    v = 0
    for t in range(width):
        bit = start_bit + t
        v |= ((buf[bit // 8] >> (bit % 8)) & 1) << t
    return v


def prng_decode(payload: bytes, n: int, C: int, P: int, K: int, e0: int) -> np.ndarray:
    payload = bytes(payload)
    nb = -(-n // C)
    s1, s2 = -(-nb * K // 8), -(-nb // 2)
    seeds_b, exps_b, mants_b = payload[:s1], payload[s1:s1 + s2], payload[s1 + s2:]
    out = np.zeros(nb * C, dtype=np.float32)
    for b in range(nb):
        s = _read_bits(seeds_b, b * K, K)
        assert 1 <= s < (1 << K)
        E = _read_bits(exps_b, b * 4, 4)
        m = []
        for j in range(P):
            v = _read_bits(mants_b, (b * P + j) * 4, 4)
            m.append(v - 16 if v >= 8 else v)
        states = [s]
        for _ in range(C * P - 1):
            v = states[-1]
            lsb = v & 1
            v >>= 1
            if lsb:
                v ^= TAPS[K]
            states.append(v)
        scale = F32(math.ldexp(1.0, E + e0 - (K - 1)))
        for i in range(C):
            acc = sum((states[j * C + i] - (1 << (K - 1))) * m[j] for j in range(P))
            out[b * C + i] = F32(acc) * scale
    return out[:n]


def fmix32(h: int) -> int:
    h &= M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    h ^= h >> 16
    return h


def stats_hash(s: int, stream: int, idx: int) -> int:
    key = fmix32((s + 0x9E3779B9 * (stream + 1)) & M32)
    return fmix32(key ^ idx)


def stats_gauss(s: int, stream: int, idx: int) -> np.float32:
    h = stats_hash(s, stream, idx)
    b = (h & 0xFF) + ((h >> 8) & 0xFF) + ((h >> 16) & 0xFF) + (h >> 24)
    return F32(b - 510) * F32(1 / math.sqrt(21845))


def stats_decode(payload: bytes, shape, k: int, s: int, elements=None) -> dict:
    """{flat index: value} for the chosen elements (default: all)."""
    vals = np.frombuffer(bytes(payload), dtype="<f4")
    mean, std, sp, sig = vals[0], vals[1], vals[2], vals[3:3 + k]
    n = int(np.prod(shape)) if len(shape) else 1
    if n == 0:
        return {}
    if len(shape) >= 2:
        cols = n // shape[0]
    else:
        cols = n
    ssum = 0.0
    for x in sig:
        ssum += float(x) * float(x)
    noise = F32(math.sqrt(max(float(std) ** 2 - ssum / n, 0.0)))
    c = [F32(float(x) / math.sqrt(n)) for x in sig]
    T = 0 if float(sp) == 0 else min(math.floor(float(sp) * 2.0**32), 2**32 - 1)
    out = {}
    for idx in (range(n) if elements is None else elements):
        r, col = divmod(idx, cols)
        v = noise * stats_gauss(s, 0, idx)
        for i in range(k):
            v = v + (c[i] * stats_gauss(s, 2 + 2 * i, r)) * stats_gauss(s, 3 + 2 * i, col)
        v = v + F32(mean)
        if stats_hash(s, 1, idx) < T:
            v = F32(0)
        out[idx] = F32(v)
    return out


def blockq_decode(payload: bytes, n: int, codec: str) -> np.ndarray:
    payload = bytes(payload)
    nb = -(-n // 32)
    out = np.zeros(n, dtype=np.float32)
    for i in range(n):
        b, w = divmod(i, 32)
        d = F32(np.frombuffer(payload[2 * b:2 * b + 2], dtype="<f2")[0])
        if codec == "q8":
            q = np.frombuffer(payload[2 * nb + 32 * b + w:2 * nb + 32 * b + w + 1], dtype=np.int8)[0]
        else:
            byte = payload[2 * nb + 16 * b + (w % 16)]
            q = (byte & 0xF) if w < 16 else (byte >> 4)
            q = q - 8
        out[i] = d * F32(q)
    return out


def ecq_decode(payload: bytes, n: int, step: float, chunk: int) -> np.ndarray:
    """Spec 3.6 read element by element (no validation beyond what decoding needs)."""
    p = bytes(payload)
    S = int.from_bytes(p[0:4], "little")
    lo = int.from_bytes(p[4:8], "little", signed=True)
    f = [int.from_bytes(p[8 + 2 * s:10 + 2 * s], "little") for s in range(S)]
    A = 8 + 2 * S + (2 if S % 2 else 0)
    nc = -(-n // chunk)
    B = A + 4 * nc
    e = [int.from_bytes(p[A + 4 * i:A + 4 * i + 4], "little") for i in range(nc)]
    out = np.zeros(n, dtype=np.float32)
    for i in range(nc):
        pos, end = B + (e[i - 1] if i else 0), B + e[i]
        x = int.from_bytes(p[pos:pos + 4], "little")
        pos += 4
        for j in range(i * chunk, min((i + 1) * chunk, n)):
            r = x % 2**15
            s, F = 0, 0
            while not F <= r < F + f[s]:
                F += f[s]
                s += 1
            x = f[s] * (x // 2**15) + r - F
            while x < 2**23:
                assert pos < end
                x = x * 256 + p[pos]
                pos += 1
            out[j] = F32(lo + s) * F32(step)
        assert x == 2**23 and pos == end
    return out
