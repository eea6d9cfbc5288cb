"""seedcore.extract: sources, codec choice, rules, refusals, provenance."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

import seedcore
from conftest import rel_mse
from seedcore import SeedError
from seedcore.model import write_safetensors


def codecs_of(seed):
    return {e.name: e.codec for e in seed.tensors}


def test_numpy_state_dict_defaults(small_state_dict):
    seed = seedcore.extract(small_state_dict, codec="q8", progress=False)
    assert codecs_of(seed) == {"layer.0.weight": "q8", "layer.0.bias": "raw", "layer.1.weight": "q8",
                               "norm.weight": "raw", "position_ids": "raw"}
    e = {t.name: t for t in seed.tensors}
    assert e["layer.0.bias"].params == {"storage": "float32"}
    assert e["position_ids"].params == {"storage": "int64"} and e["position_ids"].dtype == "int64"
    assert seed.names == list(small_state_dict)  # order kept
    for name, x in small_state_dict.items():
        y = seed.decode_reference(name)
        assert y.shape == x.shape
        if x.dtype.kind == "f" and x.ndim >= 2:
            assert rel_mse(y, x) < 1e-4
        else:
            assert np.array_equal(y, x)


def test_stats_codec_takes_every_float_tensor(small_state_dict):
    seed = seedcore.extract(small_state_dict, codec="stats", progress=False)
    assert codecs_of(seed) == {"layer.0.weight": "stats", "layer.0.bias": "stats", "layer.1.weight": "stats",
                               "norm.weight": "stats", "position_ids": "raw"}
    e = {t.name: t for t in seed.tensors}
    assert e["layer.0.weight"].params["k"] == 8 and e["layer.0.bias"].params["k"] == 0
    again = seedcore.extract(small_state_dict, codec="stats", progress=False, provenance=False)
    assert [bytes(again.payload(n)) for n in again.names] == [bytes(seed.payload(n)) for n in seed.names]


def test_rules_first_match_wins(small_state_dict):
    rules = [("layer.1.*", "q4"), ("re:layer\\.\\d\\.bias", "raw:float16"), ("*.weight", "stats:2"),
             ("position_ids", "q8")]
    seed = seedcore.extract(small_state_dict, codec="q8", rules=rules, progress=False)
    e = {t.name: t for t in seed.tensors}
    assert e["layer.1.weight"].codec == "q4"
    assert e["layer.0.bias"].codec == "raw" and e["layer.0.bias"].params == {"storage": "float16"}
    assert e["layer.0.weight"].codec == "stats" and e["layer.0.weight"].params["k"] == 2
    assert e["norm.weight"].codec == "stats"  # a rule overrides the 1-D default
    assert e["position_ids"].codec == "raw"  # integer tensors are always raw
    # string rules as on the command line, and options dicts
    seed = seedcore.extract(small_state_dict, codec="raw", rules=["layer.0.weight=q4",
                                                                   ("*.bias", "raw", {"storage": "bfloat16"})],
                            progress=False)
    e = {t.name: t for t in seed.tensors}
    assert e["layer.0.weight"].codec == "q4" and e["layer.0.bias"].params == {"storage": "bfloat16"}
    assert e["layer.1.weight"].params == {"storage": "float32"}


def test_bits(small_state_dict):
    seed = seedcore.extract(small_state_dict, codec="raw", bits=16, progress=False)
    assert {t.name: t.params.get("storage") for t in seed.tensors}["layer.0.weight"] == "float16"
    for codec, bits in (("prng", 5), ("prng", 2), ("raw", 8), ("q8", 4), ("q4", 8), ("stats", 4)):
        with pytest.raises(SeedError, match="bits"):
            seedcore.extract(small_state_dict, codec=codec, bits=bits, progress=False)
    seedcore.extract(small_state_dict, codec="q8", bits=8, progress=False)
    seedcore.extract(small_state_dict, codec="q4", bits=4, progress=False)
    with pytest.raises(SeedError, match="unknown codec"):
        seedcore.extract(small_state_dict, codec="q3", progress=False)
    with pytest.raises(SeedError, match="unknown codec"):
        seedcore.extract(small_state_dict, codec="q8", rules=[("*", "zip")], progress=False)
    with pytest.raises(SeedError, match="rule"):
        seedcore.extract(small_state_dict, codec="q8", rules=["no-equals-sign"], progress=False)


def test_torch_sources(tmp_path, small_state_dict):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(40, 48), torch.nn.ReLU(), torch.nn.Linear(48, 16),
                              torch.nn.BatchNorm1d(16))
    seed = seedcore.extract(net, codec="q8", progress=False)
    assert seed.model_name == "Sequential"
    sd = net.state_dict()
    assert seed.names == list(sd)
    e = {t.name: t for t in seed.tensors}
    assert e["3.num_batches_tracked"].dtype == "int64" and e["3.num_batches_tracked"].codec == "raw"
    assert rel_mse(seed.decode_reference("0.weight"), sd["0.weight"].numpy()) < 1e-4
    # torch state dict with bf16 / fp16 / fp64 tensors
    mixed = {"a": torch.randn(8, 32).to(torch.bfloat16), "b": torch.randn(8, 32).half(),
             "c": torch.randn(8, 32, dtype=torch.float64), "d": torch.tensor([True, False])}
    seed = seedcore.extract(mixed, codec="raw", progress=False)
    e = {t.name: t for t in seed.tensors}
    assert [e[k].dtype for k in "abcd"] == ["bfloat16", "float16", "float64", "bool"]
    assert np.array_equal(seed.decode_reference("a"), mixed["a"].float().numpy())
    assert np.array_equal(seed.decode_reference("d"), mixed["d"].numpy())
    # .pt files: plain, nested under "state_dict", and a .bin
    torch.save(sd, tmp_path / "m.pt")
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "ckpt.pt")
    torch.save(sd, tmp_path / "pytorch_model.bin")
    for f in ("m.pt", "ckpt.pt", "pytorch_model.bin"):
        s = seedcore.extract(str(tmp_path / f), codec="q8", progress=False)
        assert s.names == list(sd), f
    assert seedcore.extract(str(tmp_path / "m.pt"), codec="q8", progress=False).model_name == "m"


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/seedcore_pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2, 2), "payload": Evil()}, path)
    with pytest.raises(SeedError, match="evil.pt") as e:
        seedcore.extract(str(path), codec="q8", progress=False)
    assert "weights_only" in str(e.value)
    assert not os.path.exists("/tmp/seedcore_pwned")
    # a raw pickle with a .bin suffix too
    with open(tmp_path / "evil.bin", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(SeedError, match="evil.bin"):
        seedcore.extract(str(tmp_path / "evil.bin"), codec="q8", progress=False)
    assert not os.path.exists("/tmp/seedcore_pwned")
    # tensors but not a mapping
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(SeedError, match="list.pt.*not a mapping"):
        seedcore.extract(str(tmp_path / "list.pt"), codec="q8", progress=False)


def test_safetensors_source(tmp_path, small_state_dict):
    path = tmp_path / "mymodel.safetensors"
    write_safetensors(path, small_state_dict)
    seed = seedcore.extract(str(path), codec="q8", progress=False)
    assert seed.names == list(small_state_dict)
    assert seed.model_name == "mymodel"
    prov = seed.provenance
    assert prov["source"] == str(path) and len(prov["source_sha256"]) == 64
    assert prov["options"]["codec"] == "q8" and prov["tool"] == f"seedcore {seedcore.__version__}"
    assert prov["codecs"] == {"q8": 2, "raw": 3}
    json.dumps(prov)
    # bf16 safetensors written by the safetensors package
    from safetensors.torch import save_file

    save_file({"w": torch.randn(4, 64).to(torch.bfloat16)}, str(tmp_path / "bf.safetensors"))
    s = seedcore.extract(str(tmp_path / "bf.safetensors"), codec="raw", progress=False)
    assert s.tensors[0].dtype == "bfloat16"
    # broken safetensors
    with open(tmp_path / "junk.safetensors", "wb") as f:
        f.write(b"\xff" * 20)
    with pytest.raises(SeedError, match="junk.safetensors"):
        seedcore.extract(str(tmp_path / "junk.safetensors"), progress=False)


def test_bad_sources(tmp_path):
    with pytest.raises(SeedError, match="no such file"):
        seedcore.extract(str(tmp_path / "missing.safetensors"), progress=False)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(SeedError, match="unknown file type"):
        seedcore.extract(str(tmp_path / "x.txt"), progress=False)
    with pytest.raises(SeedError, match="cannot read"):
        seedcore.extract(42, progress=False)
    with pytest.raises(SeedError, match="not a tensor"):
        seedcore.extract({"a": [1, 2, 3]}, progress=False)
    with pytest.raises(SeedError, match="not supported"):
        seedcore.extract({"a": np.zeros(3, np.complex64)}, progress=False)


def test_non_finite_weight_is_refused():
    x = np.ones((8, 8), np.float32)
    x[1, 2] = np.nan
    x[3, 3] = np.inf
    for codec in ("q8", "raw", "stats"):
        with pytest.raises(SeedError, match=r"'bad.weight'.*2 of 64 values are not finite"):
            seedcore.extract({"bad.weight": x}, codec=codec, progress=False)
    with pytest.raises(SeedError, match="bias"):
        seedcore.extract({"bias": np.array([np.nan], np.float32)}, codec="q8", progress=False)
    with pytest.raises(SeedError, match="overflow float32"):
        seedcore.extract({"w": np.full((2, 2), 1e300)}, codec="q8", progress=False)


def test_fp16_overflowing_scale_names_the_tensor():
    with pytest.raises(SeedError, match="'big'.*raw"):
        seedcore.extract({"big": np.full((4, 32), 1e7, np.float32)}, codec="q8", progress=False)


def test_progress_bar_and_no_tqdm(monkeypatch, capsys, small_state_dict):
    seedcore.extract(small_state_dict, codec="q8", progress=True)
    err = capsys.readouterr().err
    assert "extract q8" in err and "100%" in err
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *a, **k):
        if name.startswith("tqdm"):
            raise ImportError("no tqdm")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    seedcore.extract(small_state_dict, codec="q8", progress=True)  # silently no bar
    assert "extract" not in capsys.readouterr().err


def test_prng_presets_through_extract(capsys):
    from seedcore.codecs import prng

    rng = np.random.default_rng(3)
    sd = {"w": rng.standard_normal((24, 64)).astype(np.float32), "b": np.zeros(24, np.float32)}
    for bits, (C, P, K) in ((3, (12, 4, 16)), (4, (8, 3, 16)), (4.5, (8, 4, 16))):
        seed = seedcore.extract(sd, codec="prng", bits=bits, progress=True, threads=1)
        e = seed.tensors[0]
        assert e.codec == "prng" and (e.params["C"], e.params["P"], e.params["K"]) == (C, P, K)
        assert seed.tensors[1].codec == "raw"
        assert seed.info().tensors[0].bpw == pytest.approx((K + 4 + 4 * P) / C, rel=0.02)
        assert rel_mse(seed.decode_reference("w"), sd["w"]) < 0.06
        assert "extract prng" in capsys.readouterr().err
    # a prng rule under another codec defaults to 4 bits
    seed = seedcore.extract(sd, codec="q8", rules=[("w", "prng")], progress=False)
    assert seed.tensors[0].params["C"] == 8 and seed.tensors[0].params["P"] == 3
    assert prng.bits_per_weight(8, 3, 16) == 4.0


@pytest.mark.parametrize("header, match", [
    ({"a": {"dtype": [], "shape": [1], "data_offsets": [0, 4]}}, "dtype"),
    ({"a": {"dtype": "F32", "shape": [2**40, 2**40, 0], "data_offsets": [0, 0]}}, "2\\^32"),
    ({"a": {"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}}, "8 dimensions"),
])
def test_malformed_safetensors_headers_are_seed_errors(tmp_path, header, match):
    p = tmp_path / "bad.safetensors"
    raw = json.dumps(header).encode()
    p.write_bytes(len(raw).to_bytes(8, "little") + raw + b"\0" * 4)
    with pytest.raises(SeedError, match=match) as e:
        seedcore.extract(str(p), codec="raw", progress=False)
    assert str(p) in str(e.value)


def test_safetensors_duplicate_keys_are_refused(tmp_path):
    p = tmp_path / "dup.safetensors"
    raw = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    p.write_bytes(len(raw).to_bytes(8, "little") + raw + b"\0" * 4)
    with pytest.raises(SeedError, match="duplicate key"):
        seedcore.extract(str(p), codec="raw", progress=False)
