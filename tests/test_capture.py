"""seedcore.capture: torch modules -> graph IR, checked with the numpy
reference executor; extract(module, example_inputs=...) round trips."""

import numpy as np
import pytest

import torch
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import seedcore  # noqa: E402
from seedcore import SeedError, zoo  # noqa: E402
from seedcore.capture import capture, rel_error  # noqa: E402
from seedcore.graph_ref import run_graph, validate_graph  # noqa: E402


def torch_out(module, *xs):
    with torch.no_grad():
        return module(*[torch.as_tensor(x) for x in xs]).numpy()


def check(name, graph, weights, module, feeds):
    got = run_graph(graph, weights, feeds)[graph["outputs"][0]["name"]]
    err = rel_error(got, torch_out(module, *feeds.values()))
    print(f"{name}: graph_ref vs torch, max abs error / max |output| = {err:.2e}")
    assert err <= 1e-4
    return err


def test_mlp():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 4),
                        nn.Tanh()).train()
    g, w = capture(mlp, torch.randn(2, 8))
    assert mlp.training  # mode restored
    validate_graph(g, {k: v.shape for k, v in w.items()})
    assert [n["op"] for n in g["nodes"]] == ["linear", "relu", "linear", "gelu", "linear", "tanh"]
    assert [n["out"][0] for n in g["nodes"]] == ["v0", "v1", "v2", "v3", "v4", "output"]
    assert g["nodes"][2]["in"] == ["v1", "3.weight", "3.bias"] and g["nodes"][2]["path"] == "3"
    assert g["inputs"] == [{"name": "input", "dtype": "float32", "shape": ["batch", 8]}]
    assert g["outputs"] == [{"name": "output", "dtype": "float32", "shape": ["batch", 4]}]
    mlp.eval()
    check("MLP", g, w, mlp, {"input": np.random.default_rng(0).standard_normal((7, 8)).astype(np.float32)})


def test_lenet_dynamic_batch():
    torch.manual_seed(0)
    lenet = zoo.LeNet().eval()
    g, w = capture(lenet, torch.randn(2, 1, 28, 28), input_names=["image"], output_names=["logits"])
    assert g["inputs"][0]["shape"] == ["batch", 1, 28, 28] and g["outputs"][0]["shape"] == ["batch", 10]
    assert [n["op"] for n in g["nodes"]][:3] == ["conv2d", "relu", "max_pool2d"]
    x5 = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32)  # captured at 2, run at 5
    check("LeNet batch 5", g, w, lenet, {"image": x5})


@pytest.fixture(scope="module")
def mobilenet():
    return zoo.load_mobilenet_v2(), zoo.sample_image_crops(2)


def test_mobilenet_v2_folded(mobilenet):
    model, x = mobilenet
    g, w = capture(model, x)
    ops = [n["op"] for n in g["nodes"]]
    assert "batch_norm" not in ops and ops.count("conv2d") == 52
    assert {"add", "clamp", "avg_pool_global", "flatten", "linear"} <= set(ops)
    assert not any(k.startswith("features.0.1.") for k in w)  # the stem's batch norm is folded away
    assert "features.0.0.bias" in w and w["features.0.0.weight"].shape == (32, 3, 3, 3)
    depthwise = [n for n in g["nodes"] if n["op"] == "conv2d" and n["attrs"]["groups"] > 1]
    assert len(depthwise) == 17
    check("MobileNetV2 batch 2", g, w, model, {"x": x})


def test_minilm_padded_batch():
    model, tokenize = zoo.load_minilm()
    ids, mask = tokenize(["a short one", "a noticeably longer sentence, padded the least of all three", "hi"])
    assert int(mask.sum(1).min()) < ids.shape[1]
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    g, w = capture(model, (ids, mask), output_names=["sentence_embedding"], dynamic_axes=axes)
    assert g["inputs"][0] == {"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"]}
    assert g["outputs"] == [{"name": "sentence_embedding", "dtype": "float32", "shape": ["batch", 384]}]
    ops = {n["op"] for n in g["nodes"]}
    assert {"embedding", "arange_like", "select", "layer_norm", "matmul", "softmax", "gelu", "normalize"} <= ops
    assert "embeddings.word_embeddings.weight" in w
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    check("MiniLM batch 3 (padded)", g, w, model, feeds)


def test_batch_norm_folding_is_exact():
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=True)
            self.bn = nn.BatchNorm2d(8)
            self.bn2 = nn.BatchNorm2d(8)  # after an add: not folded

        def forward(self, x):
            y = F.relu(self.bn(self.conv(x)))
            return self.bn2(y + 1.0)

    net = Net()
    for bn in (net.bn, net.bn2):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    x = torch.randn(2, 3, 9, 9)
    g, w = capture(net, x)
    assert [n["op"] for n in g["nodes"]] == ["conv2d", "relu", "add_scalar", "batch_norm"]
    assert not any(k.startswith("bn.") for k in w) and "bn2.running_var" in w
    err = check("conv+BN folded", g, w, net, {"x": x.numpy()})
    assert err < 1e-5


class _Upsampler(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2.0)


def test_unsupported_op_names_op_and_path():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), _Upsampler()))
    with pytest.raises(SeedError, match=r"torch\.nn\.functional\.interpolate at module path '1\.1'"):
        capture(net, torch.randn(1, 1, 8, 8))
    net = nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU())
    with pytest.raises(SeedError, match=r"torch\.nn\.LeakyReLU at module path '1'"):
        seedcore.extract(net, example_inputs=torch.randn(2, 4), progress=False)

    class Cat(nn.Module):
        def forward(self, x):
            return torch.cat([x, x], dim=1)

    with pytest.raises(SeedError, match=r"torch\.cat"):
        capture(Cat(), torch.randn(2, 3))

    class Slice(nn.Module):
        def forward(self, x):
            return x[:, :2]

    with pytest.raises(SeedError, match="slice"):
        capture(Slice(), torch.randn(2, 3))


def test_capture_refuses_what_would_not_run():
    class FixedBatch(nn.Module):  # a hard-coded batch size cannot follow the dynamic axis
        def forward(self, x):
            return x.reshape(2, 12) * 2.0

    with pytest.raises(SeedError, match="does not run when the dynamic axes change size"):
        capture(FixedBatch(), torch.randn(2, 3, 4))
    g, _ = capture(FixedBatch(), torch.randn(2, 3, 4), dynamic_axes={})  # fixed shapes: fine
    assert g["inputs"][0]["shape"] == [2, 3, 4]

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(SeedError, match="cannot trace"):
        capture(Branchy(), torch.randn(2, 3))
    with pytest.raises(SeedError, match="int64"):
        capture(nn.Linear(3, 3), torch.zeros(2, 3, dtype=torch.int32))


def test_extract_with_graph_round_trip(mobilenet, tmp_path):
    model, x = mobilenet
    seed = seedcore.extract(model, codec="raw", example_inputs=x, progress=False)
    assert seed.graph is not None
    path = str(tmp_path / "mobilenet.seed")
    seed.save(path)
    loaded = seedcore.load(path)
    assert loaded.graph == seed.graph
    names = {e.name for e in loaded.tensors}
    refs = {i for n in loaded.graph["nodes"] for i in n["in"] if i is not None}
    graph_inputs = {s["name"] for s in loaded.graph["inputs"]}
    assert refs - graph_inputs - {o for n in loaded.graph["nodes"] for o in n["out"]} <= names
    assembled = seedcore.assemble(path)
    check("MobileNetV2 raw seed, assembled", assembled.graph, assembled.state_dict(), model, {"x": x})


def test_extract_without_example_inputs_is_weights_only():
    seed = seedcore.extract(nn.Linear(3, 2), codec="raw", progress=False)
    assert seed.graph is None
    with pytest.raises(SeedError, match="need example_inputs"):
        seedcore.extract(nn.Linear(3, 2), codec="raw", progress=False, input_names=["x"])
