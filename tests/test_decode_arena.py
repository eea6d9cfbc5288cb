"""SeedFile.decode_all / decode return numpy views into one arena per call: 64-byte
aligned tensors, a 2 MiB-aligned mapping (advised for transparent huge pages) when the
arena is 2 MiB or more, kept alive by the arrays and unmapped when the last is gone."""

import gc
import sys

import numpy as np
import pytest

import seedcore
from conftest import same_bits
from seedcore import format as fmt
from seedcore.codecs import CODECS
from seedcore.format import TensorEntry

HUGE_PAGE = 2 << 20
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")


def native():
    from seedcore import _native
    return _native


def write(tmp_path, sizes, name="arena.seed"):
    rng = np.random.default_rng(5)
    tensors = []
    for i, n in enumerate(sizes):
        x = rng.standard_normal(n).astype(np.float32)
        params, payload = CODECS["q8"].encode(x, {})
        tensors.append((TensorEntry(f"t{i}", (n,), "float32", "q8", params), payload))
    ids = np.arange(7, dtype=np.int64)
    tensors.append((TensorEntry("ids", (7,), "int64", "raw", {"storage": "int64"}), ids.tobytes()))
    path = str(tmp_path / name)
    fmt.write_seed(path, model_name="arena", model_source="", tensors=tensors)
    return path


def mappings():
    """(start, end) of every mapping of this process."""
    out = set()
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = line.split()[0].split("-")
            out.add((int(lo, 16), int(hi, 16)))
    return out


def mapping_of(addr):
    return next(((lo, hi) for lo, hi in mappings() if lo <= addr < hi), None)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_views_into_one_aligned_arena(tmp_path):
    path = write(tmp_path, [1, 33, 700_001, 5, 300_000])  # about 4 MB of float32
    ref = {e.name: seedcore.load(path).decode_reference(e.name) for e in seedcore.load(path).tensors}
    with native().SeedFile(path) as sf:
        for threads in (1, 2):
            got = sf.decode_all(threads=threads)
            assert list(got) == list(ref)
            arrays = list(got.values())
            for k, a in got.items():
                assert same_bits(a, ref[k]), k
                assert a.ctypes.data % 64 == 0, k
                assert a.flags.c_contiguous and a.flags.writeable and not a.flags.owndata
            assert len({id(a.base) for a in arrays}) == 1  # one owner for all
            assert arrays[0].ctypes.data % HUGE_PAGE == 0
            ends = sorted((a.ctypes.data, a.ctypes.data + a.nbytes) for a in arrays)
            assert all(e <= s for (_, e), (s, _) in zip(ends, ends[1:]))  # disjoint
            arrays[2][:] = 1.0  # writing one tensor leaves the others alone
            assert same_bits(arrays[1], ref["t1"]) and same_bits(arrays[3], ref["t3"])
        one = sf.decode("t2")
        assert same_bits(one, ref["t2"]) and one.flags.writeable and one.ctypes.data % HUGE_PAGE == 0


@linux_only
def test_arena_lives_as_long_as_any_array(tmp_path):
    path = write(tmp_path, [600_000, 40, 500_000])
    with native().SeedFile(path) as sf:
        got = sf.decode_all()
        span = mapping_of(got["t0"].ctypes.data)
        assert span is not None
        keep = got["t1"]
        expect = keep.copy()
        del got
        gc.collect()
        assert span in mappings()  # t1 still holds the arena
        for _ in range(3):
            sf.decode_all()  # reuses freed memory, must not touch t1
        assert same_bits(keep, expect)
        del keep
        gc.collect()
        assert span not in mappings()  # the last view is gone: unmapped


@linux_only
def test_memory_does_not_grow_over_many_calls(tmp_path):
    path = write(tmp_path, [2_000_000, 1_000_000])  # 12 MB decoded
    with native().SeedFile(path) as sf:
        for _ in range(3):
            sf.decode_all()
        gc.collect()
        before = rss_bytes()
        for _ in range(40):
            d = sf.decode_all()
            del d
        gc.collect()
        assert rss_bytes() - before < 24 << 20  # 40 leaked arenas would be 480 MB


def test_empty_file_and_empty_tensor(tmp_path):
    path = str(tmp_path / "empty.seed")
    fmt.write_seed(path, model_name="e", model_source="", tensors=[])
    with native().SeedFile(path) as sf:
        assert dict(sf.decode_all()) == {}
    params, payload = CODECS["q8"].encode(np.zeros(0, np.float32), {})
    path = str(tmp_path / "zero.seed")
    fmt.write_seed(path, model_name="e", model_source="",
                   tensors=[(TensorEntry("z", (0, 3), "float32", "q8", params), payload)])
    with native().SeedFile(path) as sf:
        z = sf.decode_all()["z"]
        assert z.shape == (0, 3) and z.dtype == np.float32
