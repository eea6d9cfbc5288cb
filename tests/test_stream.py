"""Bounded-RAM assembly (issue 6): seedcore.assemble(seed, out=...) streams tensor by
tensor; the files equal the in-memory assembly's (safetensors: byte for byte; ONNX:
the same outputs in onnxruntime, weights as external data); --max-ram refuses a plan
that does not fit before decoding; peak RSS stays within the issue's bounds, measured
in child processes."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import seedcore
from seedcore import SeedError
from seedcore.cli import main
from seedcore.stream import OVERHEAD_BYTES, check_max_ram, parse_size, plan_assembly

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

MiB = 2**20


class SmallNet(torch.nn.Module):
    """Conv (+ folded batch norm), linear layers (transposed in ONNX), an embedding
    (gather) and an integer buffer: every way a weight reaches an initializer."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc1 = torch.nn.Linear(8, 32)
        self.fc2 = torch.nn.Linear(32, 10)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return self.fc2(torch.relu(self.fc1(y)))


@pytest.fixture(scope="module")
def small_seed(tmp_path_factory):
    torch.manual_seed(0)
    net = SmallNet().eval()
    x = torch.randn(2, 3, 12, 12)
    path = tmp_path_factory.mktemp("stream") / "small.seed"
    seedcore.extract(net, example_inputs=(x,), codec="q8", progress=False).save(path)
    return path, x.numpy()


def ort_run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("codec", ["prng", "q8", "q4", "raw"])
def test_streamed_safetensors_equal_in_memory_bytes(tmp_path, small_state_dict, codec):
    sd = dict(small_state_dict, empty=np.zeros((0, 3), np.float32), flags=np.array([True, False]),
              half=np.linspace(-1, 1, 24, dtype=np.float16).reshape(4, 6))
    seed_path = tmp_path / "w.seed"
    seedcore.extract(sd, codec=codec, progress=False).save(seed_path)
    seedcore.assemble(seed_path).save(tmp_path / "mem.safetensors")
    for threads in (1, 2):
        res = seedcore.assemble(seed_path, out=tmp_path / "st.safetensors", threads=threads)
        assert (tmp_path / "st.safetensors").read_bytes() == (tmp_path / "mem.safetensors").read_bytes()
        assert res.n_tensors == len(sd) and res.nbytes == os.path.getsize(tmp_path / "st.safetensors")
    from safetensors.numpy import load_file
    back = load_file(str(tmp_path / "st.safetensors"))
    model = seedcore.assemble(seed_path)
    assert all(np.array_equal(back[k], model[k]) for k in sd)
    # A loaded Seed and an unsaved one stream the same bytes.
    seedcore.assemble(seedcore.load(seed_path), out=tmp_path / "a.safetensors")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "st.safetensors").read_bytes()


def test_streamed_onnx_runs_like_in_memory_export(tmp_path, small_seed):
    seed_path, x = small_seed
    model = seedcore.assemble(seed_path)
    model.export_onnx(tmp_path / "mem.onnx")
    res = seedcore.assemble(seed_path, out=tmp_path / "st.onnx")
    data = tmp_path / "st.onnx.data"
    assert res.data_path == str(data) and res.data_bytes == os.path.getsize(data)
    proto = onnx.load(str(tmp_path / "st.onnx"), load_external_data=False)
    external = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    # Every weight is a reference into st.onnx.data (4096-aligned); only tiny constants inline.
    assert len(external) >= 6
    for t in external:
        info = {e.key: e.value for e in t.external_data}
        assert info["location"] == "st.onnx.data" and int(info["offset"]) % 4096 == 0
    assert all(len(t.raw_data) <= 64 for t in proto.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL)
    onnx.checker.check_model(str(tmp_path / "st.onnx"), full_check=True)
    got, want = ort_run(tmp_path / "st.onnx", x), ort_run(tmp_path / "mem.onnx", x)
    assert np.array_equal(got, want)
    np.testing.assert_allclose(got, model(x), rtol=0, atol=1e-4)
    # The same initializers, value for value.
    loaded = onnx.load(str(tmp_path / "st.onnx"))
    mem = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "mem.onnx")).graph.initializer}
    for t in loaded.graph.initializer:
        assert np.array_equal(onnx.numpy_helper.to_array(t), mem[t.name]), t.name
    # opset choice reaches the streamed model
    seedcore.assemble(seed_path, out=tmp_path / "o13.onnx", opset=13)
    assert onnx.load(str(tmp_path / "o13.onnx"), load_external_data=False).opset_import[0].version == 13
    assert np.array_equal(ort_run(tmp_path / "o13.onnx", x), want)


def test_stream_refusals(tmp_path, small_state_dict, small_seed):
    seedcore.extract(small_state_dict, codec="q8", progress=False).save(tmp_path / "w.seed")
    with pytest.raises(SeedError, match="weights only"):
        seedcore.assemble(tmp_path / "w.seed", out=tmp_path / "w.onnx")
    with pytest.raises(SeedError, match="supported outputs"):
        seedcore.assemble(tmp_path / "w.seed", out=tmp_path / "w.npz")
    with pytest.raises(SeedError, match="opset"):
        seedcore.assemble(small_seed[0], out=tmp_path / "x.onnx", opset=5)
    (tmp_path / "junk.seed").write_bytes(b"SEED" + b"\0" * 100)
    with pytest.raises(SeedError, match="junk.seed"):
        seedcore.assemble(tmp_path / "junk.seed", out=tmp_path / "j.safetensors")
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".onnx", ".data", ".npz", ".tmp")
                or p.name.startswith(".")]


def test_parse_size():
    assert parse_size("512M") == 512 * MiB
    assert parse_size("1.5G") == int(1.5 * 2**30)
    assert parse_size("300k") == 300 * 1024
    assert parse_size("64MiB") == 64 * MiB
    assert parse_size(1000) == 1000
    for bad in ("", "lots", "-5M", "0", "5X", 0):
        with pytest.raises(SeedError):
            parse_size(bad)


def test_max_ram_plan_and_refusal(tmp_path, small_seed, capsys):
    seed_path, _ = small_seed
    rng = np.random.default_rng(1)
    big = {"big.weight": rng.standard_normal((1024, 1024)).astype(np.float32),   # 4 MiB decoded
           "small.weight": rng.standard_normal((64, 64)).astype(np.float32)}
    seedcore.extract(big, codec="q8", progress=False).save(tmp_path / "big.seed")
    plan = plan_assembly(tmp_path / "big.seed", tmp_path / "o.safetensors")
    assert plan.mode == "stream:safetensors" and plan.largest_name == "big.weight"
    assert plan.largest_bytes == 4 * MiB and plan.total_bytes == 4 * MiB + 64 * 64 * 4
    assert plan.need_bytes == 4 * MiB + OVERHEAD_BYTES
    mem = plan_assembly(tmp_path / "big.seed")
    assert mem.mode == "in-memory" and mem.need_bytes == mem.total_bytes + OVERHEAD_BYTES
    check_max_ram(plan, "21M")
    with pytest.raises(SeedError, match=r"big.seed: assembling \(stream:safetensors\) needs about 20.0 MiB.*"
                                        r"'big.weight'.*budget of 19.0 MiB"):
        check_max_ram(plan, "19M")
    with pytest.raises(SeedError, match="in-memory.*stream it to a file"):
        seedcore.assemble(tmp_path / "big.seed", max_ram="10M")
    assert len(seedcore.assemble(tmp_path / "big.seed", max_ram="64M")) == 2
    with pytest.raises(SeedError, match="budget"):
        seedcore.assemble(tmp_path / "big.seed", out=tmp_path / "o.safetensors", max_ram="1M")
    # The CLI: one line, status 2, nothing written.
    with pytest.raises(SystemExit) as e:
        main(["assemble", str(tmp_path / "big.seed"), "-o", str(tmp_path / "o.safetensors"), "--max-ram", "512k"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs about 20.0 MiB" in err and "budget of 0.5 MiB" in err
    assert not (tmp_path / "o.safetensors").exists()
    with pytest.raises(SystemExit):
        main(["assemble", str(tmp_path / "big.seed"), "-o", str(tmp_path / "o.safetensors"), "--max-ram", "lots"])
    assert "cannot read the size 'lots'" in capsys.readouterr().err
    assert main(["assemble", str(tmp_path / "big.seed"), "-o", str(tmp_path / "o.safetensors"),
                 "--max-ram", "512M"]) == 0
    assert "streamed tensor by tensor" in capsys.readouterr().out
    assert main(["assemble", str(seed_path), "-o", str(tmp_path / "g.onnx"), "--max-ram", "64M"]) == 0
    assert "g.onnx.data" in capsys.readouterr().out


# --- peak RSS, in child processes --------------------------------------------------------
_CHILD = textwrap.dedent("""
    import json, sys
    import numpy, onnx, seedcore
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    seed, out = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
    with open("/proc/self/clear_refs", "w") as f:   # peak RSS := RSS now
        f.write("5")
    base = status("VmRSS")
    held = seedcore.assemble(seed, out=out, threads=2)
    print(json.dumps({"above": status("VmHWM") - base, "peak": status("VmHWM")}))
""")


def peak_above_baseline(seed, out=None) -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD, str(seed)] + ([str(out)] if out else []),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def wide_mlp_seed(tmp_path_factory):
    """A 44 MB (fp32) MLP with its graph: 11 M values, largest tensor 16 MiB."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 1024),
                              torch.nn.ReLU(), torch.nn.Linear(1024, 2048), torch.nn.ReLU(),
                              torch.nn.Linear(2048, 1000)).eval()
    path = tmp_path_factory.mktemp("rss") / "mlp.seed"
    seedcore.extract(net, example_inputs=(torch.randn(1, 1024),), codec="q8", progress=False).save(path)
    return path


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_peak_rss_bounds_wide_mlp(tmp_path, wide_mlp_seed):
    plan = plan_assembly(wide_mlp_seed)
    assert plan.total_bytes > 40 * MiB and plan.largest_bytes == 16 * MiB
    mem = peak_above_baseline(wide_mlp_seed)
    assert mem["above"] <= 1.1 * plan.total_bytes + 16 * MiB, mem
    for out in ("m.safetensors", "m.onnx"):
        st = peak_above_baseline(wide_mlp_seed, tmp_path / out)
        assert st["above"] <= plan.largest_bytes + 16 * MiB, (out, st)
        assert st["peak"] < 512e6
    x = np.random.default_rng(0).standard_normal((2, 1024)).astype(np.float32)
    np.testing.assert_allclose(ort_run(tmp_path / "m.onnx", x), seedcore.assemble(wide_mlp_seed)(x),
                               rtol=0, atol=1e-4)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_peak_rss_bounds_mobilenet_v2(tmp_path):
    from seedcore import zoo

    try:
        net = zoo.load_mobilenet_v2()
    except Exception as e:  # pragma: no cover - the weights package is missing
        pytest.skip(f"MobileNetV2 weights: {e}")
    seed = tmp_path / "mnv2.seed"
    seedcore.extract(net, example_inputs=(torch.randn(1, 3, 224, 224),), codec="q8", progress=False).save(seed)
    plan = plan_assembly(seed)
    assert plan.n_tensors > 100 and plan.total_bytes > 13 * MiB
    mem = peak_above_baseline(seed)
    assert mem["above"] <= 1.1 * plan.total_bytes + 16 * MiB, mem
    for out in ("m.safetensors", "m.onnx"):
        st = peak_above_baseline(seed, tmp_path / out)
        assert st["above"] <= plan.largest_bytes + 16 * MiB, (out, st)
        assert st["peak"] < 512e6  # a 3.5 M-parameter model, whole process


def test_native_decode_into_and_release(tmp_path, small_state_dict):
    from seedcore import _native

    seedcore.extract(small_state_dict, codec="prng", progress=False).save(tmp_path / "w.seed")
    want = seedcore.assemble(tmp_path / "w.seed")
    with _native.SeedFile(str(tmp_path / "w.seed")) as sf:
        specs = {s["name"]: s for s in sf.tensor_specs}
        assert list(specs) == list(small_state_dict)
        assert specs["position_ids"]["dtype"] == "int64" and specs["layer.0.weight"]["shape"] == (48, 40)
        buf = np.empty(max(s["nbytes"] for s in specs.values()), np.uint8)
        for name, s in specs.items():
            for _ in range(2):  # decoding again after its pages were released gives the same
                view = buf[:s["nbytes"]].view(s["dtype"]).reshape(s["shape"])
                sf.decode_into(name, view, threads=2)
                assert np.array_equal(view, want[name]), name
                sf.release_payload(name)
        with pytest.raises(SeedError, match="dtype"):
            sf.decode_into("layer.0.weight", np.empty(48 * 40, np.float64))
        with pytest.raises(SeedError, match="elements"):
            sf.decode_into("layer.0.weight", np.empty(10, np.float32))
        with pytest.raises(SeedError, match="C-contiguous"):
            sf.decode_into("layer.0.weight", np.empty((40, 48), np.float32).T)
        with pytest.raises(SeedError, match="nope"):
            sf.decode_into("nope", np.empty(1, np.float32))
        sf.verify()  # releases every payload after its check
        assert np.array_equal(sf.decode("layer.1.weight"), want["layer.1.weight"])


def test_cli_bench_names(capsys):
    from seedcore.cli import BENCHMARKS

    assert "ram" in BENCHMARKS
    for name in BENCHMARKS:  # every listed benchmark exists in the checkout, with --quick and --write
        text = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench", f"{name}.py")).read()
        assert "--quick" in text and "--write" in text
    with pytest.raises(SystemExit) as e:
        main(["bench", "nope"])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
