"""Encoders and numpy reference decoders, codec by codec (no native code)."""

import numpy as np
import pytest

import naive_decoders as nd
from conftest import rel_mse, same_bits
from seedcore.codecs import CODECS, get_codec, q4, q8, raw, stats

rng = np.random.default_rng(1234)


def roundtrip(codec, x, options=None, dtype="float32"):
    mod = CODECS[codec]
    params, payload = mod.encode(x, dict(options or {}))
    mod.validate_params(params, x.shape, dtype)
    assert len(payload) == mod.expected_length(x.shape, params)
    y = mod.decode(payload, x.shape, dtype, params)
    assert y.shape == x.shape
    return params, payload, y


def test_registry_interface():
    assert set(CODECS) == {"raw", "q8", "q4", "prng", "stats", "ecq"}
    for name, mod in CODECS.items():
        assert mod.NAME == name
        for fn in ("validate_params", "expected_length", "encode", "decode"):
            assert callable(getattr(mod, fn)), (name, fn)
    with pytest.raises(ValueError, match="unknown codec"):
        get_codec("q9")


# ---- raw


@pytest.mark.parametrize("storage", ["float32", "float16", "bfloat16"])
def test_raw_float_storages(storage):
    x = rng.standard_normal((7, 9)).astype(np.float32)
    params, payload, y = roundtrip("raw", x, {"storage": storage})
    assert params == {"storage": storage}
    assert y.dtype == np.float32
    if storage == "float32":
        assert same_bits(x, y)
    elif storage == "float16":
        assert same_bits(x.astype(np.float16).astype(np.float32), y)
    else:
        assert rel_mse(y, x) < 1e-4


def test_raw_bfloat16_rounds_to_nearest_even():
    # 1 + 2^-8 is exactly halfway between two bf16 values: ties to even (1.0);
    # 1 + 3*2^-8 ties up to 1 + 2^-6; just above a half rounds up.
    x = np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -(1 + 2**-8), 0.0, -0.0], np.float32)
    _, payload = raw.encode(x, {"storage": "bfloat16"})
    y = raw.decode(payload, x.shape, "bfloat16", {"storage": "bfloat16"})
    assert y.tolist() == [1.0, 1 + 2**-6, 1 + 2**-7, -1.0, 0.0, -0.0]
    assert np.signbit(y[-1])


def test_raw_overflow_refused():
    with pytest.raises(ValueError, match="float16"):
        raw.encode(np.array([1e5], np.float32), {"storage": "float16"})
    with pytest.raises(ValueError, match="bfloat16"):
        raw.encode(np.array([3.4028235e38], np.float32), {"storage": "bfloat16"})


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8", "bool"])
def test_raw_integer_dtypes_exact(dtype):
    info = np.iinfo(dtype) if dtype != "bool" else None
    if info is None:
        x = rng.random((3, 4)) < 0.5
    else:
        x = rng.integers(info.min, info.max, (3, 4), dtype=dtype, endpoint=True)
    params, payload, y = roundtrip("raw", x, dtype=dtype)
    assert params == {"storage": dtype}
    assert y.dtype == x.dtype and np.array_equal(x, y)


def test_raw_bool_bytes_must_be_0_or_1():
    with pytest.raises(ValueError, match="0 or 1"):
        raw.decode(bytes([0, 1, 2]), (3,), "bool", {"storage": "bool"})


def test_raw_params_validation():
    with pytest.raises(ValueError):
        raw.validate_params({"storage": "int8"}, (3,), "float32")
    with pytest.raises(ValueError):
        raw.validate_params({"storage": "float32"}, (3,), "int64")
    with pytest.raises(ValueError, match="exactly the keys"):
        raw.validate_params({"storage": "float32", "x": 1}, (3,), "float32")
    with pytest.raises(ValueError, match="payload"):
        raw.decode(b"\0" * 5, (2,), "float32", {"storage": "float32"})


# ---- q8 / q4


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 1000])
def test_q8_roundtrip(n):
    x = rng.standard_normal(n).astype(np.float32)
    params, payload, y = roundtrip("q8", x)
    assert params == {"block": 32}
    assert len(payload) == 34 * (-(-n // 32))
    if n:
        assert rel_mse(y, x) < 1e-4


def test_q8_is_ggml_q8_0():
    x = rng.standard_normal((4, 64)).astype(np.float32)
    _, payload = q8.encode(x, {})
    nb = 8
    d = np.frombuffer(payload[: 2 * nb], "<f2")
    blocks = x.reshape(nb, 32)
    expected_d = (np.abs(blocks).max(axis=1) / np.float32(127)).astype(np.float16)
    assert np.array_equal(d, expected_d)
    q = np.frombuffer(payload[2 * nb :], np.int8).reshape(nb, 32)
    assert np.abs(q).max() <= 127
    # each value is within half a step of x / d (d the rounded scale)
    err = np.abs(q - blocks / d.astype(np.float32)[:, None])
    assert err.max() <= 0.5 + 1e-4


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 1000])
def test_q4_roundtrip(n):
    x = rng.standard_normal(n).astype(np.float32)
    params, payload, y = roundtrip("q4", x)
    assert params == {"block": 32}
    assert len(payload) == 18 * (-(-n // 32))
    if n >= 32:
        assert 0.002 < rel_mse(y, x) < 0.02  # Q4_0 level on Gaussian data


def test_q4_is_ggml_q4_0():
    x = rng.standard_normal(64).astype(np.float32)
    x[5] = -4.0  # signed maximum of block 0 is negative: d > 0, x[5] -> nibble 0 (value -8)
    _, payload = q4.encode(x, {})
    d = np.frombuffer(payload[:4], "<f2").astype(np.float32)
    assert d[0] == np.float32(np.float16(-4.0 / -8))
    y = q4.decode(payload, (64,), "float32", {"block": 32})
    assert y[5] == -4.0
    nib = np.frombuffer(payload[4:], np.uint8)
    assert nib[5] & 0xF == 0


def test_blockq_fp16_scale_overflow_is_refused():
    x = np.full(32, 1e7, np.float32)
    for mod in (q8, q4):
        with pytest.raises(ValueError, match="raw"):
            mod.encode(x, {})


def test_blockq_params():
    for mod in (q8, q4):
        with pytest.raises(ValueError):
            mod.validate_params({"block": 64}, (64,), "float32")
        with pytest.raises(ValueError):
            mod.validate_params({"block": True}, (64,), "float32")
        with pytest.raises(ValueError):
            mod.validate_params({}, (64,), "float32")


@pytest.mark.parametrize("codec", ["q8", "q4"])
def test_blockq_reference_matches_naive(codec):
    x = (rng.standard_normal(77) * 3).astype(np.float32)
    _, payload, y = roundtrip(codec, x)
    assert same_bits(y, nd.blockq_decode(payload, 77, codec))


# ---- stats


def test_stats_reproduces_statistics():
    # a low-rank matrix plus noise, dense
    u = rng.standard_normal((300, 3)) * np.array([5.0, 3.0, 2.0])
    x = (u @ rng.standard_normal((3, 200)) / 10 + rng.standard_normal((300, 200)) * 0.05 + 0.3).astype(np.float32)
    params, payload, y = roundtrip("stats", x, {"k": 8, "name": "w"})
    assert params["k"] == 8 and params["seed"] == stats.seed_for_name("w")
    assert len(payload) == 4 * 11
    vals = np.frombuffer(payload, "<f4")
    assert np.isclose(vals[0], x.mean(dtype=np.float64), rtol=1e-5)
    assert np.isclose(vals[1], x.std(dtype=np.float64), rtol=1e-5)
    assert vals[2] == 0
    sv_true = np.linalg.svd(x.astype(np.float64) - x.mean(dtype=np.float64), compute_uv=False)[:8]
    assert np.allclose(vals[3:], sv_true, rtol=1e-4)
    # the decoded tensor has those statistics, approximately
    assert abs(y.mean() - x.mean()) < 0.02 * x.std()
    assert abs(y.std() / x.std() - 1) < 0.15  # random outer products: norms fluctuate
    sv_dec = np.linalg.svd(y.astype(np.float64) - y.mean(), compute_uv=False)[:3]
    assert np.allclose(sv_dec, sv_true[:3], rtol=0.25)


def test_stats_sparsity_and_determinism():
    x = rng.standard_normal((64, 50)).astype(np.float32)
    x[rng.random(x.shape) < 0.4] = 0
    p1, b1, y1 = roundtrip("stats", x, {"name": "relu"})
    p2, b2, y2 = roundtrip("stats", x, {"name": "relu"})
    assert p1 == p2 and b1 == b2 and same_bits(y1, y2)
    sp = np.frombuffer(b1, "<f4")[2]
    assert np.isclose(sp, np.mean(x == 0))
    assert abs(np.mean(y1 == 0) - sp) < 0.03
    # a different seed gives a different tensor with the same statistics
    p3, _, y3 = roundtrip("stats", x, {"name": "other"})
    assert p3["seed"] != p1["seed"] and not np.array_equal(y1, y3)


def test_stats_k_rules():
    assert roundtrip("stats", rng.standard_normal(10).astype(np.float32))[0]["k"] == 0
    assert roundtrip("stats", np.float32(rng.standard_normal()).reshape(()))[0]["k"] == 0
    assert roundtrip("stats", rng.standard_normal((3, 100)).astype(np.float32))[0]["k"] == 3
    assert roundtrip("stats", rng.standard_normal((100, 70)).astype(np.float32), {"k": 100})[0]["k"] == 64
    params, _, y = roundtrip("stats", np.zeros((0, 5), np.float32))
    assert params["k"] == 0 and y.shape == (0, 5)
    with pytest.raises(ValueError, match="k must be"):
        stats.validate_params({"k": 1, "seed": 0}, (10,), "float32")
    with pytest.raises(ValueError, match="k must be"):
        stats.validate_params({"k": 4, "seed": 0}, (3, 100), "float32")
    with pytest.raises(ValueError, match="seed"):
        stats.validate_params({"k": 0, "seed": 2**32}, (10,), "float32")


def test_stats_payload_rules():
    good = np.array([0.0, 1.0, 0.5, 3.0, 2.0], "<f4")
    stats.decode(good.tobytes(), (4, 4), "float32", {"k": 2, "seed": 0})
    for bad, what in (([0.0, -1.0, 0.5, 3.0, 2.0], "std"), ([0.0, 1.0, 1.5, 3.0, 2.0], "sparsity"),
                      ([0.0, 1.0, 0.5, 2.0, 3.0], "non-increasing"), ([np.nan, 1.0, 0.5, 3.0, 2.0], "finite"),
                      ([0.0, 1.0, 0.5, 3.0, -1.0], "non-negative")):
        with pytest.raises(ValueError, match=what):
            stats.decode(np.array(bad, "<f4").tobytes(), (4, 4), "float32", {"k": 2, "seed": 0})


def test_stats_reference_matches_naive_decoder():
    x = rng.standard_normal((9, 13)).astype(np.float32) + 0.5
    x[rng.random(x.shape) < 0.2] = 0
    params, payload, y = roundtrip("stats", x, {"k": 5, "seed": 77})
    d = nd.stats_decode(payload, x.shape, params["k"], params["seed"])
    assert same_bits(y.reshape(-1), np.array([d[i] for i in range(x.size)], np.float32))


def test_stats_hash_constants():
    # fmix32 is MurmurHash3's finalizer: known values
    assert stats._fmix32_int(0) == 0
    assert stats._fmix32_int(1) == 0x514E28B7
    assert stats.Z == np.float32(1 / np.sqrt(21845.0))
    idx = np.arange(1000, dtype=np.uint32)
    assert [int(v) for v in stats.hash_u32(5, 1, idx[:50])] == [nd.stats_hash(5, 1, i) for i in range(50)]
    g = stats.gauss(5, 0, idx)
    assert abs(float(g.std()) - 1) < 0.1  # unit variance


# ---- prng reference decoder (the encoder is the lead's; tested in test_prng*)


def test_prng_reference_decoder_matches_naive():
    from make_vectors import random_prng

    r = np.random.default_rng(5)
    for K, C, P, e0, n in ((8, 3, 2, -5, 20), (13, 8, 4, 10, 41), (16, 12, 4, -14, 60)):
        params, payload = random_prng(r, n, C, P, K, e0)
        y = CODECS["prng"].decode(payload, (n,), "float32", params)
        assert same_bits(y, nd.prng_decode(payload, n, C, P, K, e0))


def test_stats_ablation_options():
    # the benchmarks' ablations write other statistics into the same format
    x = (rng.standard_normal((40, 30)) * 0.3 + 0.2).astype(np.float32)
    x[rng.random(x.shape) < 0.25] = 0
    _, full, _ = roundtrip("stats", x, {"k": 4})
    _, no_mom, y = roundtrip("stats", x, {"k": 4, "keep_moments": False})
    f, m = np.frombuffer(full, "<f4"), np.frombuffer(no_mom, "<f4")
    assert m[0] == 0 and np.isclose(m[1], 1 / np.sqrt(3 * 30)) and m[2] == f[2]
    assert np.allclose(m[3:], f[3:] * m[1] / f[1], rtol=1e-5)
    assert abs(y[y != 0].std() / m[1] - 1) < 0.2
    _, no_sp, y = roundtrip("stats", x, {"keep_sparsity": False})
    s = np.frombuffer(no_sp, "<f4")
    assert s[2] == 0 and np.isclose(s[0], x.mean(dtype=np.float64), rtol=1e-5) and np.mean(y == 0) < 0.01
    _, bias, y = roundtrip("stats", x[0], {"keep_moments": False})
    assert np.frombuffer(bias, "<f4")[:2].tolist() == [0, 0] and not y[y != 0].size
