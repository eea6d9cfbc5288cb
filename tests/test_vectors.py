"""The committed decoder test vectors: up to date, and decoded identically by
the numpy reference, the element-by-element spec decoders and the native core."""

import filecmp
import os
import subprocess
import sys

import numpy as np
import pytest

import naive_decoders as nd
import seedcore
from conftest import HERE, VECTORS
from seedcore.assemble import cpu_features, decode_file

NAMES = ["raw", "q8", "q4", "prng", "stats", "ecq", "empty"]


def test_vectors_are_up_to_date(tmp_path):
    """Regenerating the vectors gives byte-identical files: they cannot drift."""
    out = tmp_path / "vectors"
    subprocess.run([sys.executable, os.path.join(HERE, "make_vectors.py"), str(out)], check=True)
    committed = sorted(f for f in os.listdir(VECTORS) if f != "README.md")
    assert sorted(os.listdir(out)) == committed
    for sub in ("", "bad"):
        a, b = os.path.join(VECTORS, sub), os.path.join(out, sub)
        files = sorted(f for f in os.listdir(b) if os.path.isfile(os.path.join(b, f)))
        match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
        assert mismatch == [] and errors == [], (sub, mismatch, errors)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(VECTORS) for f in fs)
    assert total < 300_000


def _expected(name):
    with open(os.path.join(VECTORS, name + ".expected.bin"), "rb") as f:
        return f.read()


def _concat(arrays):
    return b"".join(a.astype("u1").tobytes() if a.dtype == np.bool_ else a.astype(a.dtype.newbyteorder("<")).tobytes()
                    for a in arrays)


@pytest.mark.parametrize("name", NAMES)
def test_reference_decoders_reproduce_expected(name):
    seed = seedcore.load(os.path.join(VECTORS, name + ".seed"))
    assert _concat([seed.decode_reference(e.name) for e in seed.tensors]) == _expected(name)


@pytest.mark.parametrize("name", ["q8", "q4", "prng", "stats", "ecq"])
def test_naive_spec_decoders_agree(name):
    """An independent, element-by-element reading of docs/format.md agrees with the
    vectorised reference decoders on every vector."""
    seed = seedcore.load(os.path.join(VECTORS, name + ".seed"))
    for e in seed.tensors:
        ref = seed.decode_reference(e.name).reshape(-1)
        payload = seed.payload(e.name)
        p = e.params
        if name == "prng":
            naive = nd.prng_decode(payload, e.n, p["C"], p["P"], p["K"], p["exp_bias"])
        elif name == "ecq":
            naive = nd.ecq_decode(payload, e.n, p["step"], p["chunk"])
        elif name == "stats":
            d = nd.stats_decode(payload, e.shape, p["k"], p["seed"])
            naive = np.array([d[i] for i in range(e.n)], np.float32)
        else:
            naive = nd.blockq_decode(payload, e.n, name)
        assert np.array_equal(ref.view(np.uint32), naive.view(np.uint32)), e.name


def impls():
    out = ["scalar", "auto"]
    if cpu_features().get("avx2"):
        out.append("avx2")
    return out


@pytest.mark.parametrize("name", NAMES)
def test_native_decoder_reproduces_expected(name):
    path = os.path.join(VECTORS, name + ".seed")
    seed = seedcore.load(path)
    for impl in impls():
        tensors = decode_file(path, impl=impl, threads=1)
        assert list(tensors) == seed.names
        for e in seed.tensors:
            assert tensors[e.name].shape == tuple(e.shape), (impl, e.name)
        assert _concat(list(tensors.values())) == _expected(name), impl
