"""Writes the decoder test vectors in tests/vectors/ (or the folder given).

For each NAME it writes ``NAME.seed`` and ``NAME.expected.bin``: every tensor of
the seed decoded by the numpy reference decoders, in file order, as raw
little-endian bytes concatenated (float32 for floating dtypes, the stored dtype
for integer ones, one byte per bool).  The native tests decode the same files
with the scalar, AVX2 and NEON paths and compare bytes.  ``bad/*.seed`` are
files every reader must refuse (the name says why).

Everything is deterministic: tests/test_vectors.py regenerates the folder and
checks that the committed files are identical, so they cannot drift from the
reference decoders.

    python tests/make_vectors.py [OUT_DIR]
"""

from __future__ import annotations

import os
import struct
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import seedcore  # noqa: F401  (installed)
except ImportError:  # run from a checkout without installing: the pure-Python parts suffice
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

from seedcore import format as fmt  # noqa: E402
from seedcore.codecs import q4, q8, raw, stats  # noqa: E402
from seedcore.format import TensorEntry  # noqa: E402
from seedcore.seed import load  # noqa: E402

TOOL_VERSION = "0.1.0"  # pinned so that a version bump does not change the vectors


# ---------------------------------------------------------------------------
# payload builders


def _bits_lsb_first(values, width: int) -> bytes:
    """values as an LSB-first stream of ``width``-bit fields (spec 3.4)."""
    acc = 0
    for i, v in enumerate(values):
        acc |= int(v) << (i * width)
    nbytes = -(-len(values) * width // 8)
    return acc.to_bytes(nbytes, "little") if nbytes else b""


def prng_payload(seeds, exps, mants, K: int) -> bytes:
    nib_m = [int(m) & 0xF for m in np.asarray(mants).reshape(-1)]
    return _bits_lsb_first(seeds, K) + _bits_lsb_first(exps, 4) + _bits_lsb_first(nib_m, 4)


def random_prng(rng, n: int, C: int, P: int, K: int, e0: int, *, edge_seeds=True):
    nb = -(-n // C)
    seeds = rng.integers(1, 1 << K, nb)
    if edge_seeds and nb >= 2:
        seeds[0], seeds[-1] = 1, (1 << K) - 1
    exps = rng.integers(0, 16, nb)
    if nb >= 2:
        exps[0], exps[-1] = 0, 15
    mants = rng.integers(-8, 8, (nb, P))
    if nb:
        mants[0, 0] = -8
        mants[-1, -1] = 7
    params = {"C": C, "P": P, "K": K, "exp_bias": e0}
    return params, prng_payload(seeds, exps, mants, K)


def random_blockq(rng, n: int, codec: str) -> bytes:
    """Arbitrary valid payloads, including what the encoders never write: negative,
    subnormal and zero scales, q = -128 (the values past n are 0 all the same)."""
    nb = -(-n // 32)
    d = (rng.standard_normal(nb) * 0.05).astype(np.float16)
    specials = np.array([0.0, -0.0, 6e-8, -6.1e-5, 65504.0, -1.0], dtype=np.float16)
    d[: min(nb, specials.size)] = specials[: min(nb, specials.size)]
    if codec == "q8":
        q = rng.integers(-128, 128, nb * 32).astype(np.int8)
        q[n:] = 0  # a partial block's values beyond n are written as 0
        return d.astype("<f2").tobytes() + q.tobytes()
    q = rng.integers(0, 16, nb * 32).astype(np.uint8)
    q[n:] = 8  # value 0, as the encoder pads
    q = q.reshape(nb, 32)
    nib = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    return d.astype("<f2").tobytes() + nib.tobytes()


def ecq_payload(codes, chunk: int, freqs=None, lo=None) -> bytes:
    """An ``ecq`` payload (spec 3.6) for integer ``codes``, written by this file's own
    rANS encoder (independent of the native one).  ``freqs`` (summing to 2^15, with
    ``lo`` the code of symbol 0) may give any valid table, including zero-frequency
    symbols and ones no code uses; by default the counts, scaled."""
    codes = [int(c) for c in np.asarray(codes).reshape(-1)]
    if freqs is None:
        lo = min(codes) if codes else 0
        S = (max(codes) - lo + 1) if codes else 1
        cnt = [0] * S
        for c in codes:
            cnt[c - lo] += 1
        if not codes:
            cnt[0] = 1
        total = sum(cnt)
        freqs = [max(1, c * 32768 // total) if c else 0 for c in cnt]
        while sum(freqs) != 32768:  # fix the sum on the largest frequencies
            i = max(range(S), key=lambda j: (freqs[j], -j))
            freqs[i] += 1 if sum(freqs) < 32768 else -1
    S = len(freqs)
    assert sum(freqs) == 32768 and all(freqs[c - lo] > 0 for c in codes)
    cum = [0]
    for f in freqs:
        cum.append(cum[-1] + f)
    streams = []
    for a in range(0, len(codes), chunk):
        x, out = 1 << 23, []
        for c in reversed(codes[a:a + chunk]):
            s = c - lo
            f = freqs[s]
            while x >= (f << 16):
                out.append(x & 0xFF)
                x >>= 8
            x = (x // f << 15) + x % f + cum[s]
        streams.append(struct.pack("<I", x) + bytes(reversed(out)))
    head = struct.pack("<Ii", S, lo) + struct.pack(f"<{S}H", *freqs) + (b"\0\0" if S % 2 else b"")
    ends = np.cumsum([len(t) for t in streams]).astype("<u4").tobytes()
    return head + ends + b"".join(streams)


def stats_payload(mean, std, sparsity, sigmas) -> bytes:
    return np.array([mean, std, sparsity, *sigmas], dtype="<f4").tobytes()


# ---------------------------------------------------------------------------
# the vector files


def _entry(name, shape, dtype, codec, params):
    return TensorEntry(name, tuple(shape), dtype, codec, params)


def vectors_raw(rng):
    t = []
    a = rng.standard_normal((3, 5)).astype(np.float32)
    t.append((_entry("f32", (3, 5), "float32", "raw", {"storage": "float32"}), raw.encode(a, {})[1]))
    special = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 6e-8, -6.1e-5, 1e-7, 3.14159], np.float32)
    h = np.concatenate([special, rng.standard_normal(23).astype(np.float32)])
    t.append((_entry("f16", (33,), "float16", "raw", {"storage": "float16"}),
              raw.encode(h, {"storage": "float16"})[1]))
    b = np.concatenate([special, np.array([3.0e38, -1.0e-38, 1.0e-40], np.float32),
                        rng.standard_normal(20).astype(np.float32) * 100])
    t.append((_entry("bf16", (3, 11), "bfloat16", "raw", {"storage": "bfloat16"}),
              raw.encode(b, {"storage": "bfloat16"})[1]))
    # arbitrary bf16 bit patterns (finite), decoded exactly
    bits = rng.integers(0, 1 << 16, 64).astype(np.uint16)
    bits = bits[(bits & 0x7F80) != 0x7F80][:40]
    t.append((_entry("bf16_bits", (bits.size,), "bfloat16", "raw", {"storage": "bfloat16"}),
              bits.astype("<u2").tobytes()))
    t.append((_entry("f64_as_f32", (2, 2, 2), "float64", "raw", {"storage": "float32"}),
              rng.standard_normal(8).astype("<f4").tobytes()))
    t.append((_entry("scalar", (), "float32", "raw", {"storage": "float32"}),
              np.array([42.5], "<f4").tobytes()))
    t.append((_entry("empty", (0, 4), "float32", "raw", {"storage": "float16"}), b""))
    i64 = np.array([[0, -1, 2**63 - 1], [-(2**63), 12345678901, -7]], dtype=np.int64)
    t.append((_entry("i64", (2, 3), "int64", "raw", {"storage": "int64"}), i64.astype("<i8").tobytes()))
    t.append((_entry("i32", (5,), "int32", "raw", {"storage": "int32"}),
              np.array([0, -1, 2**31 - 1, -(2**31), 77], "<i4").tobytes()))
    t.append((_entry("i16", (4,), "int16", "raw", {"storage": "int16"}),
              np.array([0, -1, 32767, -32768], "<i2").tobytes()))
    t.append((_entry("i8", (4,), "int8", "raw", {"storage": "int8"}),
              np.array([0, -1, 127, -128], "i1").tobytes()))
    t.append((_entry("u8", (2, 2), "uint8", "raw", {"storage": "uint8"}),
              np.array([0, 1, 128, 255], "u1").tobytes()))
    t.append((_entry("bool", (7,), "bool", "raw", {"storage": "bool"}),
              np.array([0, 1, 1, 0, 0, 0, 1], "u1").tobytes()))
    t.append((_entry("i64_position_ids", (1, 16), "int64", "raw", {"storage": "int64"}),
              np.arange(16, dtype="<i8").tobytes()))
    return t


def vectors_blockq(rng, codec: str):
    mod = {"q8": q8, "q4": q4}[codec]
    t = []
    for n, shape in ((0, (0,)), (1, (1,)), (31, (31,)), (32, (32,)), (33, (33,)), (400, (4, 100)),
                     (1000, (10, 10, 10))):
        x = (rng.standard_normal(n) * rng.uniform(0.01, 3)).astype(np.float32).reshape(shape)
        params, payload = mod.encode(x, {})
        t.append((_entry(f"enc_n{n}", shape, "float32", codec, params), payload))
    x = np.zeros((2, 64), np.float32)  # all-zero blocks: scale 0
    x[1, 40] = -3.0  # one non-zero value; q4 takes the signed maximum
    t.append((_entry("enc_sparse", (2, 64), "float32", codec, {"block": 32}), mod.encode(x, {})[1]))
    for n in (45, 256):
        t.append((_entry(f"arbitrary_n{n}", (n,), "float16", codec, {"block": 32}), random_blockq(rng, n, codec)))
    return t


def vectors_prng(rng):
    t = []
    # every K, a spread of C, P and exp_bias, partial last blocks
    configs = [
        (8, 1, 1, 0, 5), (9, 3, 2, -14, 40), (10, 8, 3, -10, 64), (11, 12, 4, 5, 100),
        (12, 8, 4, -20, 33), (13, 16, 8, -3, 161), (14, 64, 8, 0, 130), (15, 5, 5, 7, 23),
        (16, 8, 3, -14, 200), (16, 8, 4, -12, 96), (16, 12, 4, -13, 150), (16, 1, 1, 2, 3),
        (8, 64, 1, -1, 64), (16, 7, 7, 0, 50),
    ]
    for K, C, P, e0, n in configs:
        params, payload = random_prng(rng, n, C, P, K, e0)
        t.append((_entry(f"K{K}_C{C}_P{P}_e{e0}_n{n}", (n,), "float32", "prng", params), payload))
    # extreme exponents (spec: the product stays normal), multi-dimensional shapes, n = 0
    for K, e0 in ((8, -100), (8, 100), (16, -100), (16, 100)):
        params, payload = random_prng(rng, 48, 8, 4, K, e0)
        t.append((_entry(f"K{K}_exp_bias{e0}", (6, 8), "float32", "prng", params), payload))
    params, payload = random_prng(rng, 0, 8, 4, 16, -14)
    t.append((_entry("empty", (3, 0), "float32", "prng", params), payload))
    params, payload = random_prng(rng, 60, 12, 4, 16, -13)
    t.append((_entry("conv", (5, 3, 2, 2), "bfloat16", "prng", params), payload))
    return t


def vectors_ecq(rng):
    def entry(name, shape, dtype, step, chunk, payload):
        return (_entry(name, shape, dtype, "ecq", {"step": float(np.float32(step)), "chunk": chunk,
                                                   "bytes": len(payload)}), payload)
    t = []
    q = np.round(rng.laplace(0, 3, 1000)).astype(np.int64)  # 4 chunks of 256, the last partial
    t.append(entry("laplace_n1000", (10, 100), "float32", 0.0123, 256, ecq_payload(q, 256)))
    t.append(entry("empty", (0, 3), "float32", 1.0, 16384, ecq_payload([], 16384)))
    t.append(entry("one_symbol", (300,), "float16", 0.5, 256, ecq_payload([-5] * 300, 256)))
    q = rng.integers(-2500, 2500, 6000)  # a wide alphabet, odd size (padding), gaps of frequency 0
    t.append(entry("wide", (6000,), "bfloat16", 3.0e-4, 1024, ecq_payload(q, 1024)))
    # a table that is not the counts: unused symbols, the rarest ones with frequency 1
    freqs = [1, 0, 16000, 16000, 0, 766, 1] + [0] * 10
    q = rng.choice([-3, -1, 0, 2, 3], 700, p=[0.001, 0.49, 0.49, 0.018, 0.001])
    t.append(entry("given_table", (7, 100), "float32", 0.25, 512, ecq_payload(q, 512, freqs, lo=-3)))
    # extreme codes and steps: |q| = 2^24 exactly, steps 2^-100 and 2^100
    q = np.array([2**24 - 3, 2**24, 2**24 - 1] * 11)
    t.append(entry("top_codes", (33,), "float32", 2.0**-100, 256, ecq_payload(q, 256)))
    q = np.array([-(2**24), -(2**24) + 7, -(2**24) + 1] * 9)
    t.append(entry("bottom_codes", (3, 9), "float32", 2.0**100 / 2**26, 256, ecq_payload(q, 256)))
    q = np.round(rng.standard_normal(2000) * 40).astype(np.int64)
    t.append(entry("big_chunk", (2, 10, 10, 10), "float64", 2.0**100, 1 << 20, ecq_payload(q, 1 << 20)))
    return t


def vectors_stats(rng):
    t = []
    # encoder output on data with zeros and a low-rank part (k > 0 with sparsity)
    low = rng.standard_normal((24, 2)) @ rng.standard_normal((2, 40)) * 0.5
    x = (low + rng.standard_normal((24, 40)) * 0.1 + 0.25).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = 0
    params, payload = stats.encode(x, {"name": "lowrank_sparse"})
    t.append((_entry("lowrank_sparse", x.shape, "float32", "stats", params), payload))
    x = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    params, payload = stats.encode(x, {"name": "conv", "k": 4})
    t.append((_entry("conv", x.shape, "float32", "stats", params), payload))
    x = rng.standard_normal(50).astype(np.float32) * 0.02 + 1.0
    params, payload = stats.encode(x, {"name": "norm_weight"})
    assert params["k"] == 0
    t.append((_entry("norm_weight", x.shape, "float32", "stats", params), payload))
    # hand-written edge cases
    cases = [
        ("k0_2d", (7, 9), 0, 123, (-0.5, 2.0, 0.0, ())),
        ("k_max", (70, 70), 64, 0xFFFFFFFF, (0.01, 1.0, 0.1, tuple(np.linspace(40, 1, 64)))),
        ("std0", (5, 6), 2, 7, (3.0, 0.0, 0.25, (0.0, 0.0))),
        ("sigma_exceeds_std", (8, 8), 2, 9, (0.0, 0.1, 0.0, (50.0, 1.0))),  # noise clamps to 0
        ("all_zero", (4, 4), 0, 1, (1.0, 1.0, 1.0, ())),  # T = 2^32 - 1
        ("half_zero", (33,), 0, 2, (0.0, 1.0, 0.5, ())),
        ("scalar", (), 0, 3, (1.5, 0.5, 0.0, ())),
        ("empty", (0, 5), 0, 4, (0.0, 0.0, 0.0, ())),
        ("tall", (300, 2), 2, 5, (0.0, 1.0, 0.0, (10.0, 5.0))),
        ("wide", (1, 200), 1, 6, (0.0, 1.0, 0.01, (3.0,))),
    ]
    for name, shape, k, seed, (mean, std, sp, sig) in cases:
        t.append((_entry(name, shape, "float32", "stats", {"k": k, "seed": seed}),
                  stats_payload(mean, std, sp, sig)))
    return t


def expected_bytes(path: str) -> bytes:
    seed = load(path)
    parts = []
    for e in seed.tensors:
        a = seed.decode_reference(e.name)
        if a.dtype == np.bool_:
            parts.append(a.astype("u1").tobytes())
        else:
            parts.append(a.astype(a.dtype.newbyteorder("<")).tobytes())
    seed.close()
    return b"".join(parts)


def write_vector(out: str, name: str, tensors) -> None:
    path = os.path.join(out, name + ".seed")
    fmt.write_seed(path, model_name=f"vectors/{name}", model_source="tests/make_vectors.py",
                   tensors=tensors, tool_version=TOOL_VERSION)
    with open(os.path.join(out, name + ".expected.bin"), "wb") as f:
        f.write(expected_bytes(path))


# ---------------------------------------------------------------------------
# files every reader must refuse


def _rewrite_header(data: bytearray, **fields) -> bytearray:
    """Sets header fields and recomputes header_crc32 (so only the named field is wrong)."""
    offsets = {"format_version": (8, "<I"), "header_size": (12, "<I"), "metadata_offset": (16, "<Q"),
               "metadata_length": (24, "<Q"), "data_offset": (32, "<Q"), "file_length": (40, "<Q"),
               "flags": (48, "<I")}
    for k, v in fields.items():
        off, f = offsets[k]
        struct.pack_into(f, data, off, v)
    mlen = struct.unpack_from("<Q", data, 24)[0]
    meta = bytes(data[64 : 64 + mlen])
    struct.pack_into("<I", data, 60, zlib.crc32(meta, zlib.crc32(bytes(data[:60]))) & 0xFFFFFFFF)
    return data


def with_metadata(good: bytes, edit) -> bytes:
    """Re-encodes the metadata through ``edit`` (dict -> dict, or str -> str for
    edits JSON cannot express) and fixes the lengths and the header CRC, so only
    the edited part is wrong.  When the new metadata needs a different
    data_offset, the payloads move and every "offset" shifts with them."""
    import json
    import re

    mlen = struct.unpack_from("<Q", good, 24)[0]
    data_offset = struct.unpack_from("<Q", good, 32)[0]
    text = good[64 : 64 + mlen].decode("utf-8")
    try:
        new = edit(text)
    except (TypeError, AttributeError):
        new = json.dumps(edit(json.loads(text)), ensure_ascii=False, separators=(",", ":"))
    meta = new.encode("utf-8")
    new_do = fmt.align64(64 + len(meta))
    if new_do < data_offset:
        meta += b" " * (data_offset - 64 - len(meta))  # JSON whitespace: keeps data_offset
        new_do = data_offset
    shifted = new
    while new_do != data_offset:
        delta = new_do - data_offset
        shifted = re.sub(r'"offset":(\d+)', lambda m: f'"offset":{int(m.group(1)) + delta}', new)
        meta = shifted.encode("utf-8")
        if fmt.align64(64 + len(meta)) == new_do:
            break
        new_do = fmt.align64(64 + len(meta))
    out = bytearray(good[:64] + meta + b"\0" * (new_do - 64 - len(meta)) + good[data_offset:])
    return bytes(_rewrite_header(out, metadata_length=len(meta), data_offset=new_do,
                                 file_length=len(out)))


def _tensor_edit(i: int, **changes):
    def edit(meta):
        meta["tensors"][i].update(changes)
        return meta
    return edit


def bad_files(good: bytes) -> dict:
    """A small valid seed -> {name: bytes} of broken variants."""
    out = {}
    b = bytearray(good)
    b[0:8] = b"SEEDCORX"
    out["bad_magic"] = bytes(_rewrite_header(b))
    out["bad_version"] = bytes(_rewrite_header(bytearray(good), format_version=2))
    out["bad_flags"] = bytes(_rewrite_header(bytearray(good), flags=1))
    out["bad_header_crc"] = good[:60] + bytes([good[60] ^ 0x01]) + good[61:]
    out["truncated"] = good[:-1]
    out["truncated_header"] = good[:40]
    out["extended"] = good + b"\0" * 64
    flipped = bytearray(good)
    flipped[-70] ^= 0x40  # inside the last payload
    out["payload_bit_flip"] = bytes(flipped)
    out["offset_past_end"] = with_metadata(good, _tensor_edit(2, offset=1 << 40))
    out["length_mismatch"] = with_metadata(good, _tensor_edit(2, length=88))
    out["shape_past_end"] = with_metadata(good, _tensor_edit(2, shape=[1000], length=8000))
    out["unknown_codec"] = with_metadata(good, _tensor_edit(0, codec="q9"))
    out["unknown_dtype"] = with_metadata(good, _tensor_edit(0, dtype="float8"))
    out["bad_params"] = with_metadata(good, _tensor_edit(0, params={"block": 64}))
    out["duplicate_key"] = with_metadata(
        good, lambda s: s.replace('"format":"seedcore"', '"format":"seedcore","format":"seedcore"', 1))
    out["duplicate_name"] = with_metadata(good, _tensor_edit(1, name="w"))
    out["crc_mismatch"] = with_metadata(
        good, lambda m: _tensor_edit(1, crc32=m["tensors"][1]["crc32"] ^ 1)(m))
    return out


def bad_base() -> tuple[str, list]:
    """The small valid seed the bad files are made from."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 16)).astype(np.float32)
    t = [
        (_entry("w", (4, 16), "float32", "q8", {"block": 32}), q8.encode(x, {})[1]),
        (_entry("s", (4, 4), "float32", "stats", {"k": 0, "seed": 1}), stats_payload(0.0, 1.0, 0.0, ())),
        (_entry("ids", (10,), "int64", "raw", {"storage": "int64"}), np.arange(10, dtype="<i8").tobytes()),
    ]
    return "bad_base", t


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20250101)
    write_vector(out, "raw", vectors_raw(rng))
    write_vector(out, "q8", vectors_blockq(rng, "q8"))
    write_vector(out, "q4", vectors_blockq(rng, "q4"))
    write_vector(out, "prng", vectors_prng(rng))
    write_vector(out, "stats", vectors_stats(rng))
    write_vector(out, "ecq", vectors_ecq(np.random.default_rng(20261123)))
    write_vector(out, "empty", [])

    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    name, tensors = bad_base()
    base = os.path.join(bad, "base_valid.seed")
    fmt.write_seed(base, model_name="vectors/bad", model_source="tests/make_vectors.py",
                   tensors=tensors, tool_version=TOOL_VERSION)
    with open(base, "rb") as f:
        good = f.read()
    for bad_name, data in bad_files(good).items():
        with open(os.path.join(bad, bad_name + ".seed"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="Regenerate the decoder test vectors (numpy reference).")
    ap.add_argument("out", nargs="?", default=os.path.join(HERE, "vectors"),
                    help="output folder (default: tests/vectors)")
    main(ap.parse_args().out)
