"""The native decoder equals the numpy reference decoder bit for bit, for every
codec, on the scalar path and on the AVX2 path (this x86 machine has AVX2)."""

import platform

import numpy as np
import pytest

import seedcore
from conftest import same_bits
from make_vectors import random_blockq, random_prng, stats_payload
from seedcore import format as fmt
from seedcore.assemble import cpu_features, decode_file
from seedcore.codecs import CODECS
from seedcore.format import TensorEntry


def implementations():
    impls = ["scalar", "auto"]
    f = cpu_features()
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert f["avx2"], "expected AVX2 on this machine: the AVX2 path must be tested, not skipped"
        impls.append("avx2")
    if f.get("neon"):
        impls.append("neon")
    return impls


def check_native_equals_reference(tmp_path, tensors, name="t.seed"):
    """Writes the tensors, decodes with every implementation, compares bits."""
    path = str(tmp_path / name)
    fmt.write_seed(path, model_name="native-test", model_source="", tensors=tensors)
    seed = seedcore.load(path)
    ref = {e.name: seed.decode_reference(e.name) for e in seed.tensors}
    for impl in implementations():
        for threads in (1, 2):
            got = decode_file(path, impl=impl, threads=threads)
            assert list(got) == list(ref)
            for k in ref:
                assert same_bits(got[k], ref[k]), (impl, threads, k)
    return ref


def encoded(name, x, codec, options=None, dtype="float32"):
    params, payload = CODECS[codec].encode(x, dict(options or {}))
    return TensorEntry(name, x.shape, dtype, codec, params), payload


SHAPES = [(1,), (31,), (33,), (100, 7), (3, 5, 64), (4097,)]


@pytest.mark.parametrize("codec", ["q8", "q4"])
def test_blockq_random(tmp_path, codec):
    rng = np.random.default_rng(11)
    t = [encoded(f"x{i}", (rng.standard_normal(s) * rng.uniform(1e-3, 10)).astype(np.float32), codec)
         for i, s in enumerate(SHAPES)]
    t += [(TensorEntry(f"arb{n}", (n,), "float32", codec, {"block": 32}), random_blockq(rng, n, codec))
          for n in (45, 4000)]
    check_native_equals_reference(tmp_path, t)


def test_raw_random(tmp_path):
    rng = np.random.default_rng(12)
    t = []
    for storage in ("float32", "float16", "bfloat16"):
        for i, s in enumerate(SHAPES):
            x = (rng.standard_normal(s) * 100).astype(np.float32)
            t.append(encoded(f"{storage}{i}", x, "raw", {"storage": storage}))
    bits = rng.integers(0, 1 << 16, 5000).astype(np.uint16)
    bits = bits[(bits & 0x7F80) != 0x7F80]  # finite bf16 / fp16 patterns alike
    bits16 = bits[(bits & 0x7C00) != 0x7C00]
    t.append((TensorEntry("bf16bits", bits.shape, "bfloat16", "raw", {"storage": "bfloat16"}), bits.tobytes()))
    t.append((TensorEntry("f16bits", bits16.shape, "float16", "raw", {"storage": "float16"}), bits16.tobytes()))
    for dt in ("int64", "int32", "int16", "int8", "uint8"):
        info = np.iinfo(dt)
        x = rng.integers(info.min, info.max, 333, dtype=dt, endpoint=True)
        t.append(encoded(dt, x, "raw", dtype=dt))
    t.append(encoded("bool", rng.random(77) < 0.5, "raw", dtype="bool"))
    check_native_equals_reference(tmp_path, t)


def test_prng_random_payloads(tmp_path):
    rng = np.random.default_rng(13)
    t = []
    for K in range(8, 17):
        for C, P in ((1, 1), (8, 3), (8, 4), (12, 4), (7, 5), (64, 8), (16, 2)):
            n = int(rng.integers(1, 600))
            e0 = int(rng.integers(-30, 10))
            params, payload = random_prng(rng, n, C, P, K, e0)
            t.append((TensorEntry(f"K{K}C{C}P{P}", (n,), "float32", "prng", params), payload))
    for e0 in (-100, 100):
        params, payload = random_prng(rng, 4096, 8, 4, 16, e0)
        t.append((TensorEntry(f"big{e0}", (64, 64), "float32", "prng", params), payload))
    check_native_equals_reference(tmp_path, t)


def test_stats_random(tmp_path):
    rng = np.random.default_rng(14)
    t = []
    for i, s in enumerate([(1,), (50,), (7, 9), (64, 100), (16, 3, 3, 3), (300, 2), (2, 3000)]):
        x = (rng.standard_normal(s) + rng.uniform(-1, 1)).astype(np.float32)
        x[rng.random(s) < rng.uniform(0, 0.5)] = 0
        t.append(encoded(f"enc{i}", x, "stats", {"seed": int(rng.integers(0, 2**32)), "k": 64}))
    t.append((TensorEntry("all_zero", (9, 9), "float32", "stats", {"k": 0, "seed": 5}),
              stats_payload(1.0, 1.0, 1.0, ())))
    t.append((TensorEntry("kmax", (70, 70), "float32", "stats", {"k": 64, "seed": 2**32 - 1}),
              stats_payload(0.1, 2.0, 0.3, tuple(np.linspace(50, 0, 64)))))
    check_native_equals_reference(tmp_path, t)


def test_minilm_slices_every_codec(tmp_path, minilm):
    """Real weights: a few slices of all-MiniLM-L6-v2 through every codec."""
    sl = {
        "q": minilm["encoder.layer.0.attention.self.query.weight"][:96],
        "emb": minilm["embeddings.word_embeddings.weight"][1000:1100],
        "ffn": minilm["encoder.layer.5.intermediate.dense.weight"][:50],
        "bias": minilm["encoder.layer.2.output.dense.bias"],
    }
    t = []
    for name, x in sl.items():
        x = np.ascontiguousarray(x, dtype=np.float32)
        for codec, opts in (("q8", {}), ("q4", {}), ("stats", {"name": name}), ("raw", {"storage": "float16"}),
                            ("raw", {"storage": "bfloat16"}), ("prng", {"bits": 4.5}), ("prng", {"bits": 3})):
            tag = f"{name}.{codec}.{opts.get('storage', opts.get('bits', ''))}"
            if codec == "prng":
                x_ = x[:24] if x.ndim == 2 else x  # keep the seed search short
                t.append(encoded(tag, x_, codec, opts))
            else:
                t.append(encoded(tag, x, codec, opts))
    check_native_equals_reference(tmp_path, t)
