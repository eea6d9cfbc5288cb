"""``seedcore demo``: end to end on a tiny stand-in BERT (seconds) and on the real
all-MiniLM-L6-v2 with the q8 codec (the default prng codec takes minutes to
encode the first time; the codec is selectable for exactly this reason)."""

import json
import os
import shutil

import pytest

from seedcore import SeedError  # noqa: E402
from seedcore.cli import main  # noqa: E402
from seedcore.demo import CALIBRATION_SENTENCES, cache_key, run_demo  # noqa: E402

@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, minilm_path):
    """A 1-layer, 8-wide BERT with random weights, the real tokenizer and config keys."""
    import torch
    from safetensors.torch import save_file

    from seedcore.zoo import MiniLM

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = {"vocab_size": 30522, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 16, "max_position_embeddings": 64, "type_vocab_size": 2,
              "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    module = MiniLM(config)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / "model.safetensors"))
    shutil.copy(os.path.join(os.path.dirname(minilm_path), "tokenizer.json"), folder / "tokenizer.json")
    return str(folder)


def test_demo_tiny_cached_second_run(tiny_bert, tmp_path):
    lines = []
    kw = dict(model_dir=tiny_bert, codec="q8", cache_dir=str(tmp_path), progress=False, out=lines.append,
              sentences=["a short one", "a somewhat longer sentence about seeds and models", "x"])
    first = run_demo(**kw)
    assert not first["cache_hit"] and os.path.exists(first["seed_path"])
    assert first["native_cos_min"] > 0.99 and first["ort_cos_min"] > 0.99
    assert first["ort_vs_native_max_abs"] < 1e-4
    assert first["ratio"] > 3.5 and first["peak_rss_mib"] > 0
    text = "\n".join(lines)
    for word in ("seed", "ratio", "bits per weight", "extract", "assemble", "native", "onnxruntime",
                 "cosine", "peak RAM"):
        assert word in text, word
    lines.clear()
    second = run_demo(**kw)
    assert second["cache_hit"] and second["seed_path"] == first["seed_path"]
    assert "cache hit" in "\n".join(lines)
    assert second["native_cos_mean"] == pytest.approx(first["native_cos_mean"], abs=1e-7)
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(first["seed_path"])]  # no leftovers


def test_demo_default_is_rate_allocated(tiny_bert, tmp_path):
    lines = []
    res = run_demo(model_dir=tiny_bert, cache_dir=str(tmp_path), progress=False, out=lines.append)
    from seedcore.extract import DEFAULT_TARGET_BPW
    assert f"codec default (rate allocation, {DEFAULT_TARGET_BPW:g} bits per weight)" in lines[0]
    assert res["bpw"] <= DEFAULT_TARGET_BPW and res["native_cos_min"] > 0.9
    from seedcore import load
    ra = load(res["seed_path"]).provenance["rate_allocation"]
    n = len(CALIBRATION_SENTENCES)  # the calibration set, not the two sentences the graph is captured on
    assert ra["target_bpw"] == DEFAULT_TARGET_BPW and ra["calibration"].startswith(f"input_ids [{n}, ")
    assert load(res["seed_path"]).provenance["options"]["gptq"] is True


def test_cache_key_follows_the_source(tmp_path):
    src = tmp_path / "model.safetensors"
    src.write_bytes(b"1234")
    a = cache_key(str(src), "prng", 4)
    assert a != cache_key(str(src), "prng", 3) != cache_key(str(src), "q8", None)
    src.write_bytes(b"12345")
    assert cache_key(str(src), "prng", 4) != a


def test_cache_key_follows_the_default(tmp_path, monkeypatch):
    """A seed cached under the old default (target, candidates) is not reused after it changes."""
    import importlib
    allocate, extract = (importlib.import_module(f"seedcore.{m}") for m in ("allocate", "extract"))  # the modules
    src = tmp_path / "model.safetensors"
    src.write_bytes(b"1234")
    a = cache_key(str(src), None, None)
    assert a == cache_key(str(src), None, None)
    monkeypatch.setattr(extract, "DEFAULT_TARGET_BPW", 4.0)
    b = cache_key(str(src), None, None)
    monkeypatch.setattr(allocate, "DEFAULT_CANDIDATES", allocate.FIXED_RATE_CANDIDATES)
    c = cache_key(str(src), None, None)
    assert len({a, b, c}) == 3
    assert cache_key(str(src), "q8", None) == cache_key(str(src), "q8", None)  # an explicit codec: no default in it


def test_missing_extra_and_bad_model_dir(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(SeedError, match=r'onnxruntime.*pip install "seedcore\[demo\]"'):
        run_demo(model_dir=str(tmp_path), cache_dir=str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", real)
    with pytest.raises(SeedError, match="config.json is missing"):
        run_demo(model_dir=str(tmp_path), cache_dir=str(tmp_path))


def test_cli_demo_tiny(tiny_bert, tmp_path, capsys):
    assert main(["demo", "--model-dir", tiny_bert, "--codec", "raw", "--cache-dir", str(tmp_path), "-q",
                 "--sentences", "hello there", "general kenobi"]) == 0
    out = capsys.readouterr().out
    assert "codec raw" in out and "cosine vs torch: mean 1.0000" in out


def test_demo_real_minilm_q8(tmp_path):
    """The real model, offline, q8 (seconds to encode); in CI too."""
    res = run_demo(codec="q8", cache_dir=str(tmp_path), progress=False, out=lambda s: None)
    assert res["n_float_params"] > 22_000_000
    assert res["native_cos_mean"] > 0.999 and res["ort_cos_mean"] > 0.999
    assert res["ort_vs_native_max_abs"] < 1e-4
    assert 3.5 < res["ratio"] < 3.9 and res["bpw"] < 9
