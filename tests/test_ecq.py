"""The entropy-coded codec ``ecq`` (spec 3.6): the step search, the native rANS
encoder, the numpy reference decoder against an independent encoder
(tests/make_vectors.py), the native decoder against the reference, refused
payloads, and its place in extract, gptq and rate allocation."""

import struct

import numpy as np
import pytest

import seedcore
from conftest import same_bits
from make_vectors import ecq_payload
from seedcore import format as fmt
from seedcore.allocate import payload_bits, squared_error
from seedcore.assemble import decode_file
from seedcore.codecs import ecq
from seedcore.extract import parse_codec_spec
from seedcore.format import TensorEntry

rng = np.random.default_rng(99)


def _params(step, chunk, payload):
    return {"step": float(np.float32(step)), "chunk": chunk, "bytes": len(payload)}


@pytest.mark.parametrize("n,chunk", [(0, 256), (1, 256), (255, 256), (256, 256), (257, 256), (5000, 1024),
                                     (3000, 1 << 20)])
def test_reference_decoder_inverts_an_independent_encoder(n, chunk):
    q = np.round(rng.laplace(0, 4, n)).astype(np.int64)
    payload = ecq_payload(q, chunk)
    step = 0.037
    got = ecq.decode(payload, (n,), "float32", _params(step, chunk, payload))
    assert same_bits(got, q.astype(np.float32) * np.float32(step))


def test_reference_decoder_with_a_given_table():
    """Zero-frequency symbols, frequency-1 symbols and unused ones: the table, not the counts."""
    freqs = [1, 0, 16000, 16000, 0, 766, 1]
    q = rng.choice([-3, -1, 0, 2, 3], 900, p=[0.002, 0.49, 0.49, 0.016, 0.002])
    payload = ecq_payload(q, 300, freqs, lo=-3)
    got = ecq.decode(payload, (30, 30), "float32", _params(0.5, 300, payload))
    assert same_bits(got, (q.astype(np.float32) * np.float32(0.5)).reshape(30, 30))


@pytest.mark.parametrize("bits", [1.0, 2.0, 3.0, 4.5, 6.0])
def test_step_meets_the_bit_rate(bits):
    x = rng.standard_normal(20000).astype(np.float32) * 0.02
    step = ecq.step_for(x, bits)
    h = ecq.entropy(ecq.codes(x, step))
    assert bits - 0.02 <= h <= bits
    assert float(np.float32(step)) == step


def test_native_encoder_round_trip_and_rate():
    x = (rng.standard_normal((300, 200)) * np.geomspace(1e-3, 1.0, 200)).astype(np.float32)  # channels of
    params, payload = ecq.encode(x, {"bits": 3.0})  # very different scale
    ecq.validate_params(params, x.shape, "float32")
    assert params["bytes"] == len(payload) == ecq.expected_length(x.shape, params)
    got = ecq.decode(payload, x.shape, "float32", params)
    q = ecq.codes(x, params["step"])
    assert same_bits(got, q.astype(np.float32) * np.float32(params["step"]))
    # within 1 % of the zeroth-order entropy, plus the table and the per-chunk offsets and states
    ideal = ecq.entropy(q) * q.size / 8
    table = 8 + 2 * (q.max() - q.min() + 2) + 8 * -(-q.size // params["chunk"])
    assert ideal <= len(payload) <= 1.01 * ideal + table
    # a uniform quantiser: every error within half a step, about step² / 12 on the large
    # channels and the small channels' whole (smaller) variance
    d = np.abs(got.astype(np.float64) - x)
    assert d.max() <= params["step"] / 2 * (1 + 1e-6)
    assert np.mean(d[:, -50:] ** 2) == pytest.approx(params["step"] ** 2 / 12, rel=0.1)
    assert np.mean(d[:, :50] ** 2) == pytest.approx(np.mean(x[:, :50].astype(np.float64) ** 2), rel=0.1)


def test_native_encoder_edge_cases():
    for q in (np.zeros(0, np.int64), np.full(700, -9), np.array([-16384, 16383, 0] * 90),
              np.array([2**24 - 5, 2**24] * 200)):
        params, payload = ecq.encode_codes(q, 0.25, 256)
        got = ecq.decode(payload, (q.size,), "float32", params)
        assert same_bits(got, q.astype(np.float32) * np.float32(0.25))
    with pytest.raises(ValueError, match="32768"):
        ecq.encode_codes(np.array([0, 40000]), 1.0)
    with pytest.raises(ValueError, match="2\\^24"):
        ecq.encode_codes(np.array([2**24 + 1]), 1.0)


def _write(path, entries):
    fmt.write_seed(path, model_name="ecq", model_source="test", tensors=entries)
    return str(path)


def test_native_decoder_matches_the_reference(tmp_path):
    entries = []
    for i, (shape, bits, dtype) in enumerate((((64, 3, 3, 3), 2.0, "float32"), ((40000,), 5.0, "float16"),
                                              ((7, 13), 0.5, "bfloat16"), ((0, 5), 3.0, "float32"))):
        x = (rng.standard_normal(shape) * 0.1).astype(np.float32)
        params, payload = ecq.encode(x, {"bits": bits, "chunk": 1024})
        entries.append((TensorEntry(f"t{i}", shape, dtype, "ecq", params), payload))
    q = np.round(rng.laplace(0, 30, 3000)).astype(np.int64)  # the independent encoder's payload too
    p = ecq_payload(q, 512)
    entries.append((TensorEntry("indep", (3000,), "float32", "ecq", _params(1e-3, 512, p)), p))
    path = _write(tmp_path / "m.seed", entries)
    ref = seedcore.load(path).decode_all_reference()
    for threads in (1, 0):
        got = decode_file(path, threads=threads)
        for name, v in ref.items():
            assert same_bits(got[name], v), (name, threads)


def _corrupt_cases(payload: bytes, n: int, chunk: int):
    S = struct.unpack_from("<I", payload, 0)[0]
    A = 8 + 2 * S + (2 if S % 2 else 0)
    nc = -(-n // chunk)
    B = A + 4 * nc
    b = bytearray(payload)
    yield "stream byte", bytes(b[:B + 6] + bytes([b[B + 6] ^ 0x5A]) + b[B + 7:])
    f0 = struct.unpack_from("<H", payload, 8)[0]
    yield "frequency sum", bytes(b[:8] + struct.pack("<H", f0 + 1) + b[10:])
    yield "alphabet 0", bytes(struct.pack("<I", 0) + b[4:])
    yield "alphabet too large", bytes(struct.pack("<I", 32769) + b[4:])
    yield "lo out of range", bytes(b[:4] + struct.pack("<i", -(2**24) - 1) + b[8:])
    e0 = struct.unpack_from("<I", payload, A)[0]
    yield "offset", bytes(b[:A] + struct.pack("<I", e0 + 1) + b[A + 4:])
    yield "initial state", bytes(b[:B] + struct.pack("<I", 1 << 31) + b[B + 4:])


def test_corrupt_payloads_are_refused(tmp_path):
    q = np.round(rng.laplace(0, 3, 1000)).astype(np.int64)
    params, payload = ecq.encode_codes(q, 0.01, 256)
    for what, bad in _corrupt_cases(payload, 1000, 256):
        assert len(bad) == len(payload)
        with pytest.raises(ValueError):
            ecq.decode(bad, (1000,), "float32", params)
        path = _write(tmp_path / "bad.seed", [(TensorEntry("w", (1000,), "float32", "ecq", params), bad)])
        with pytest.raises(seedcore.SeedError, match="'w'"):
            decode_file(path)
        (tmp_path / "bad.seed").unlink()


@pytest.mark.parametrize("chunk_at", [0, 3, 7, 8, 9, 10])
def test_a_corrupt_stream_in_any_decoding_group_is_named(tmp_path, chunk_at):
    """12 chunks of 256 (the last partial): the native decoder takes chunks 0-7 eight
    side by side, 8-9 two side by side, 10-11 one at a time; a changed byte in the
    middle of any chunk's stream is refused with that chunk named."""
    n = 11 * 256 + 100
    q = np.round(rng.laplace(0, 3, n)).astype(np.int64)
    params, payload = ecq.encode_codes(q, 0.01, 256)
    S = struct.unpack_from("<I", payload, 0)[0]
    A = 8 + 2 * S + (2 if S % 2 else 0)
    B = A + 4 * 12
    e = (0,) + struct.unpack_from("<12I", payload, A)
    at = B + (e[chunk_at] + e[chunk_at + 1]) // 2
    bad = payload[:at] + bytes([payload[at] ^ 0x5A]) + payload[at + 1:]
    path = _write(tmp_path / "bad.seed", [(TensorEntry("w", (n,), "float32", "ecq", params), bad)])
    for threads in (1, 2):
        with pytest.raises(seedcore.SeedError, match=f"'w'.*chunk {chunk_at}:"):
            decode_file(path, threads=threads)


def test_nonzero_padding_is_refused(tmp_path):
    q = np.array([0, 1, 2] * 100)  # S = 3: odd, two bytes of padding after the table
    params, payload = ecq.encode_codes(q, 1.0, 256)
    pad = 8 + 2 * 3
    bad = payload[:pad] + b"\x01" + payload[pad + 1:]
    with pytest.raises(ValueError, match="padding"):
        ecq.decode(bad, (300,), "float32", params)
    path = _write(tmp_path / "pad.seed", [(TensorEntry("w", (300,), "float32", "ecq", params), bad)])
    with pytest.raises(seedcore.SeedError):
        decode_file(path)


@pytest.mark.parametrize("params,match", [
    ({"step": 0.1, "chunk": 256, "bytes": 20}, "binary32"),  # 0.1 is not a binary32 value
    ({"step": 2.0 ** -101, "chunk": 256, "bytes": 20}, "2\\^-100"),
    ({"step": 1.0, "chunk": 255, "bytes": 20}, "chunk"),
    ({"step": 1.0, "chunk": 256, "bytes": 7}, "bytes"),
    ({"step": 1.0, "chunk": 256}, "keys"),
])
def test_params_are_checked(params, match):
    with pytest.raises(ValueError, match=match):
        ecq.validate_params(params, (10,), "float32")


def test_integer_tensors_are_refused():
    with pytest.raises(ValueError, match="floating"):
        ecq.validate_params({"step": 1.0, "chunk": 256, "bytes": 20}, (10,), "int32")


def test_extract_with_ecq_and_codec_specs():
    assert parse_codec_spec("ecq:3") == ("ecq", {"bits": 3.0})
    for bad in ("ecq:0.1", "ecq:13", "ecq:x"):
        with pytest.raises(seedcore.SeedError, match="ecq"):
            parse_codec_spec(bad)
    sd = {"a.weight": (rng.standard_normal((256, 128)) * 0.05).astype(np.float32),
          "a.bias": rng.standard_normal(256).astype(np.float32),
          "b.weight": (rng.standard_normal((64, 256)) * 0.05).astype(np.float32)}
    seed = seedcore.extract(sd, codec="ecq", bits=3, rules=[("b.*", "ecq:5")], progress=False)
    got = seed.decode_all_reference()
    for name, bits in (("a.weight", 3.0), ("b.weight", 5.0)):
        e = seed.entry(name)
        assert e.codec == "ecq"
        assert 8 * e.params["bytes"] / sd[name].size == pytest.approx(bits, abs=0.1)
        d = got[name] - sd[name]
        assert np.mean(d ** 2) == pytest.approx(e.params["step"] ** 2 / 12, rel=0.2)
    assert seed.entry("a.bias").codec == "raw"
    with pytest.raises(seedcore.SeedError, match="bits"):
        seedcore.extract(sd, codec="ecq", bits=20, progress=False)


def test_allocation_sizes_and_errors_are_the_encoders():
    w = (rng.standard_normal((96, 80)) * 0.03).astype(np.float32)
    for spec in ("ecq:2", "ecq:4.5"):
        codec, opts = parse_codec_spec(spec)
        params, payload = ecq.encode(w, opts)
        assert payload_bits(codec, opts, w.shape, w) == 8 * len(payload)
        d = ecq.decode(payload, w.shape, "float32", params) - w
        assert squared_error(codec, opts, w) == pytest.approx(float((d.astype(np.float64) ** 2).sum()), rel=1e-6)
    with pytest.raises(seedcore.SeedError, match="values"):
        payload_bits("ecq", {"bits": 3.0}, w.shape)


def test_gptq_with_ecq_lowers_the_output_error():
    """Same step, codes chosen by error feedback: lower tr(ΔW H ΔWᵀ) on the inputs' second moment."""
    from seedcore import gptq

    k, rows = 128, 64
    mix = rng.standard_normal((k, k)) * 0.3 + np.eye(k)
    x = rng.standard_normal((4096, k)) @ mix  # correlated inputs
    h = x.T @ x / len(x)
    w = (rng.standard_normal((rows, k)) * 0.05).astype(np.float32)
    opts = {"bits": 3.0}
    params, payload, dec = gptq.encode("ecq", opts, w, h)
    assert params["step"] == ecq.step_for(w, 3.0) and params["bytes"] == len(payload)
    assert same_bits(ecq.decode(payload, w.shape, "float32", params), dec)
    plain = ecq.round_trip(w, opts)[0]

    def herr(v):
        d = np.asarray(v, np.float64) - w
        return float(np.einsum("ij,jk,ik->", d, h, d))
    assert herr(dec) < 0.7 * herr(plain)
    # the step is kept, so the size moves only a little
    assert abs(len(payload) - ecq.round_trip(w, opts)[1]) < 0.1 * len(payload)


@pytest.mark.parametrize("n,chunk,nc", [(1, 2048, 1), (16384, 2048, 8), (100_000, 12544, 8),
                                        (10_000_000, 16384, 611)])
def test_default_chunk_gives_eight_streams_where_it_can(n, chunk, nc):
    assert ecq.default_chunk(n) == chunk and -(-n // chunk) == nc
    x = np.linspace(-1, 1, min(n, 100_000), dtype=np.float32)
    assert ecq.encode(x, {"bits": 3})[0]["chunk"] == ecq.default_chunk(x.size)
    assert ecq.encode(x, {"bits": 3, "chunk": 256})[0]["chunk"] == 256  # an explicit chunk wins
