"""The public Python API: names, Seed, Model, assemble, safetensors output."""

import os

import numpy as np
import pytest

import seedcore
from conftest import rel_mse, same_bits
from seedcore import Model, Seed, SeedError


def test_public_names():
    assert sorted(seedcore.__all__) == sorted(
        ["extract", "load", "assemble", "Seed", "Model", "SeedError", "cpu_features", "plan_assembly",
         "Finetune", "Anneal", "Evolve", "__version__"])
    for name in seedcore.__all__:
        assert hasattr(seedcore, name)
    assert issubclass(SeedError, ValueError)
    assert seedcore.__version__ == "0.1.0"


def test_version_matches_pyproject():
    import re

    from conftest import ROOT

    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        m = re.search(r'^version = "([^"]+)"', f.read(), re.M)
    assert m and m.group(1) == seedcore.__version__


def test_native_raises_the_same_seed_error(tmp_path):
    from seedcore import _native  # the native module must be built: no skip

    p = tmp_path / "junk.seed"
    p.write_bytes(b"x" * 100)
    with pytest.raises(SeedError) as e:
        _native.SeedFile(str(p))
    assert type(e.value) is SeedError and "junk.seed" in str(e.value)


def test_cpu_features():
    f = seedcore.cpu_features()
    assert f["isa"] in ("scalar", "avx2", "neon")
    import platform

    if platform.machine().lower() in ("x86_64", "amd64"):
        # this project's x86 machines (and CI) have AVX2: a missing path must not pass silently
        assert f["avx2"] is True, f
        if not f.get("forced_scalar"):
            assert f["isa"] == "avx2", f


def test_seed_save_load_info(tmp_path, small_state_dict):
    seed = seedcore.extract(small_state_dict, codec="q4", progress=False)
    info_before = seed.info()
    p = str(tmp_path / "m.seed")
    size = seed.save(p)
    assert size == os.path.getsize(p) == info_before.file_bytes
    loaded = seedcore.load(p)
    assert isinstance(loaded, Seed) and loaded.path == p
    info = loaded.info()
    assert info.file_bytes == size and info.n_tensors == 5
    n_float = sum(x.size for x in small_state_dict.values() if x.dtype.kind == "f")
    assert info.n_float_params == n_float
    assert info.bpw == pytest.approx(8 * size / n_float)
    payload = sum(t.bytes for t in info.tensors if t.dtype != "int64")
    assert info.payload_bpw == pytest.approx(8 * payload / n_float)
    rows = {t.name: t for t in info.tensors}
    assert rows["layer.0.weight"].codec == "q4" and rows["layer.0.weight"].bpw == pytest.approx(4.5)
    assert rows["layer.0.bias"].bpw == 32.0
    text = str(info)
    assert "layer.0.weight" in text and "q4" in text and "bits per float weight" in text
    d = info.as_dict()
    assert d["tensors"][0]["name"] == "layer.0.weight" and d["file_bytes"] == size
    assert [e.name for e in loaded.tensors] == list(small_state_dict)
    for e in loaded.tensors:
        assert same_bits(loaded.decode_reference(e.name), seed.decode_reference(e.name))
    assert "5 tensors" in repr(loaded)
    with pytest.raises(KeyError):
        loaded.decode_reference("nope")


def test_assemble_matches_reference(tmp_path, small_state_dict):
    seed = seedcore.extract(small_state_dict, codec="q8", progress=False)
    # an unsaved Seed
    model = seedcore.assemble(seed)
    assert isinstance(model, Model)
    sd = model.state_dict()
    assert list(sd) == list(small_state_dict)
    for name, x in small_state_dict.items():
        assert sd[name].shape == x.shape
        assert sd[name].dtype == (np.float32 if x.dtype.kind == "f" else x.dtype)
        assert same_bits(sd[name], seed.decode_reference(name))
    # a path, a loaded seed, threads
    p = str(tmp_path / "m.seed")
    seed.save(p)
    for src in (p, seedcore.load(p)):
        for threads in (1, 2, 0):
            sd2 = seedcore.assemble(src, threads=threads).state_dict()
            assert all(same_bits(sd2[k], sd[k]) for k in sd)
    assert "5 tensors" in repr(model)
    with pytest.raises(SeedError):
        seedcore.assemble(12)


def test_assemble_refuses_a_loaded_seed_whose_file_was_rewritten(tmp_path, small_state_dict):
    p = str(tmp_path / "m.seed")
    seedcore.extract(small_state_dict, codec="q8", progress=False).save(p)
    loaded = seedcore.load(p)
    other = {k: v + 1 if v.dtype.kind == "f" else v for k, v in small_state_dict.items()}
    seedcore.extract(other, codec="q4", progress=False).save(p)   # atomic replace under the loaded Seed
    with pytest.raises(SeedError, match="changed on disk after it was loaded"):
        seedcore.assemble(loaded)
    assert same_bits(seedcore.assemble(seedcore.load(p))["layer.1.weight"],
                     seedcore.load(p).decode_reference("layer.1.weight"))


def test_model_save_safetensors(tmp_path, small_state_dict):
    from safetensors.numpy import load_file

    seed = seedcore.extract(small_state_dict, codec="q8", progress=False)
    model = seedcore.assemble(seed)
    p = str(tmp_path / "out.safetensors")
    size = model.save(p)
    assert size == os.path.getsize(p)
    back = load_file(p)
    sd = model.state_dict()
    assert set(back) == set(sd)
    for k in sd:
        assert back[k].dtype == sd[k].dtype and np.array_equal(back[k], sd[k])
    with pytest.raises(SeedError, match="supported outputs: .safetensors"):
        model.save(str(tmp_path / "out.onnx"))
    # every dtype the decoder can produce
    from seedcore.model import write_safetensors

    arrays = {"f": np.ones((2, 3), np.float32), "h": np.ones(3, np.float16), "i8": np.arange(4, dtype=np.int8),
              "u8": np.arange(4, dtype=np.uint8), "i16": np.arange(3, dtype=np.int16),
              "i32": np.arange(3, dtype=np.int32), "i64": np.arange(3, dtype=np.int64),
              "b": np.array([True, False]), "e": np.zeros((0, 3), np.float32), "s": np.float32(2).reshape(())}
    write_safetensors(str(tmp_path / "all.safetensors"), arrays, {"k": "v"})
    back = load_file(str(tmp_path / "all.safetensors"))
    for k, a in arrays.items():
        assert back[k].dtype == a.dtype and np.array_equal(back[k], a), k


def test_extract_assemble_roundtrip_all_codecs(small_state_dict):
    for codec, limit in (("raw", 0.0), ("q8", 1e-4), ("q4", 0.02)):
        seed = seedcore.extract(small_state_dict, codec=codec, progress=False)
        sd = seedcore.assemble(seed).state_dict()
        for name, x in small_state_dict.items():
            if x.dtype.kind == "f":
                assert rel_mse(sd[name], x) <= limit, (codec, name)
            else:
                assert np.array_equal(sd[name], x)
