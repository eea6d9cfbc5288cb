"""The seedcore command, run as a subprocess like a user would."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import seedcore


def run(*args, check=True):
    exe = shutil.which("seedcore")
    assert exe, "the seedcore console script is not installed (pip install .)"
    r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def bad(*args, match=None):
    r = run(*args, check=False)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seedcore: error: "), r.stderr
    assert "Traceback" not in r.stderr
    if match:
        assert match in lines[0], lines[0]
    return lines[0]


def test_help_and_version():
    out = run("--help").stdout
    for cmd in ("extract", "inspect", "verify", "assemble"):
        assert cmd in out
        sub = run(cmd, "--help").stdout
        assert "usage: seedcore " + cmd in sub
    assert "prng" in run("extract", "--help").stdout and "--rule" in run("extract", "--help").stdout
    assert run("--version").stdout.strip() == f"seedcore {seedcore.__version__}"
    r = subprocess.run([sys.executable, "-m", "seedcore", "--version"], capture_output=True, text=True)
    assert r.stdout.strip() == f"seedcore {seedcore.__version__}"


def test_extract_inspect_verify_assemble_on_minilm(tmp_path, minilm_path, minilm):
    seed = tmp_path / "minilm.seed"
    r = run("extract", minilm_path, "-o", seed, "--codec", "q8", "--rule", "*.LayerNorm.*=raw:float16",
            "--name", "all-MiniLM-L6-v2")
    assert "wrote" in r.stdout and "bits per weight" in r.stdout
    assert "extract q8" in r.stderr  # the progress bar
    out = run("inspect", seed).stdout
    assert "all-MiniLM-L6-v2" in out and "encoder.layer.0.attention.self.query.weight" in out
    assert "q8" in out and "float16" in out
    info = json.loads(run("inspect", "--json", seed).stdout)
    assert info["n_tensors"] == len(minilm) and 8.5 < info["bpw"] < 9
    out = run("verify", seed).stdout
    assert out.startswith("OK")
    st = tmp_path / "minilm.safetensors"
    run("assemble", seed, "-o", st, "--threads", "2")
    from safetensors.numpy import load_file

    back = load_file(str(st))
    assert set(back) == set(minilm)
    w = "encoder.layer.3.output.dense.weight"
    x = minilm[w].astype(np.float64)
    assert np.mean((back[w] - x) ** 2) / np.mean(x**2) < 1e-4
    assert np.array_equal(back["embeddings.position_ids"], minilm["embeddings.position_ids"])


def test_extract_ecq_at_a_bit_rate(tmp_path, minilm_path, minilm):
    """--codec ecq --bits 3 and an ecq:5 rule: the payloads are about the codes' entropy,
    and the weights come back from the native decoder within a uniform quantiser's error."""
    seed = tmp_path / "ecq.seed"
    run("extract", minilm_path, "-o", seed, "--codec", "ecq", "--bits", "3", "-q",
        "--rule", "encoder.layer.5.*.weight=ecq:5")
    s = seedcore.load(seed)
    st = tmp_path / "ecq.safetensors"
    run("assemble", seed, "-o", st)
    from safetensors.numpy import load_file

    back = load_file(str(st))
    for name, bits in (("encoder.layer.0.attention.self.query.weight", 3),
                       ("encoder.layer.5.output.dense.weight", 5)):
        e = s.entry(name)
        assert e.codec == "ecq" and 8 * e.params["bytes"] / e.n == pytest.approx(bits, abs=0.05)
        assert np.max(np.abs(back[name] - minilm[name])) <= e.params["step"] / 2 * (1 + 1e-6)
    r = run("extract", minilm_path, "-o", tmp_path / "x.seed", "--codec", "ecq", "--bits", "20", check=False)
    assert r.returncode == 2 and "bits" in r.stderr


def test_bad_input_one_line_exit_2(tmp_path, minilm_path):
    bad("inspect", tmp_path / "missing.seed", match="missing.seed")
    junk = tmp_path / "junk.seed"
    junk.write_bytes(b"SEEDCORE" + b"\0" * 100)
    bad("inspect", junk, match="junk.seed")
    bad("verify", junk, match="junk.seed")
    bad("assemble", junk, "-o", tmp_path / "x.safetensors", match="junk.seed")
    seed = tmp_path / "ok.seed"
    run("extract", minilm_path, "-o", seed, "--codec", "stats", "-q")
    bad("assemble", seed, "-o", tmp_path / "x.onnx", match="supported outputs: .safetensors")
    bad("extract", minilm_path, "-o", tmp_path / "x.seed", "--codec", "prng", "--bits", "5", match="bits")
    bad("extract", minilm_path, "-o", tmp_path / "x.seed", "--codec", "zip")
    bad("extract", minilm_path, "-o", tmp_path / "x.bin", "--codec", "q8", match=".seed")
    bad("extract", minilm_path, "-o", tmp_path / "x.seed", "--rule", "oops", match="PATTERN=CODEC")
    bad("extract", tmp_path / "nothing.pt", "-o", tmp_path / "x.seed", match="nothing.pt")
    bad("extract")
    bad()
    bad("frobnicate")
    # a flipped payload byte is caught by verify
    data = bytearray(seed.read_bytes())
    data[-100] ^= 0x10
    flipped = tmp_path / "flipped.seed"
    flipped.write_bytes(bytes(data))
    bad("verify", flipped, match="flipped.seed")
