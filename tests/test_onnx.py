"""ONNX export (docs/format.md section 4 -> ONNX): every IR op, exported alone at
several opsets and run in onnxruntime, agrees with a reference (numpy / torch, and
seedcore.graph_ref when it is there) within 1e-5 of the output's scale."""

import math

import numpy as np
import pytest

import onnx
import onnxruntime as ort
import torch
F = torch.nn.functional

from seedcore import SeedError  # noqa: E402
from seedcore.model import Model  # noqa: E402
from seedcore.graph_ref import OPS  # noqa: E402
from seedcore.onnx_export import build_onnx  # noqa: E402

try:
    from seedcore.graph_ref import run_graph
except ImportError:  # written in parallel; the per-case references below stand alone
    run_graph = None

rng = np.random.default_rng(0)


def f32(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def session(model):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def spec(name, a):
    return {"name": name, "dtype": "int64" if a.dtype == np.int64 else "float32", "shape": list(a.shape)}


def one_op(op, inputs, weights=None, attrs=None, n_in=None):
    """A graph of one node: ``inputs`` (graph inputs, dict) then ``weights`` (dict) feed it
    in that order; None entries in ``weights`` become null (optional) inputs."""
    weights = dict(weights or {})
    ins = list(inputs) + [None if w is None else k for k, w in weights.items()]
    graph = {"version": 1, "inputs": [spec(k, v) for k, v in inputs.items()], "outputs": [],
             "nodes": [{"op": op, "in": ins, "out": ["y"], "attrs": dict(attrs or {}), "path": "m"}]}
    return graph, {k: v for k, v in weights.items() if v is not None}


def check(graph, weights, inputs, expected, opset=17, tol=1e-5):
    expected = np.asarray(expected)
    graph["outputs"] = [spec("y", expected)]
    model = build_onnx(graph, weights, opset=opset, name="t")
    got = session(model).run(None, inputs)[0]
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1e-30)
    err = float(np.max(np.abs(got.astype(np.float64) - expected))) if expected.size else 0.0
    assert err <= tol * scale, f"max error {err:g} vs scale {scale:g}"
    if run_graph is not None:
        ref = run_graph(graph, weights, inputs)["y"]
        assert np.asarray(ref).shape == expected.shape
        assert float(np.max(np.abs(np.asarray(ref, np.float64) - expected), initial=0.0)) <= tol * scale
    return model


def gelu_ref(x, approximate):
    return F.gelu(T(x), approximate=approximate).numpy()


X4 = f32(2, 3, 7, 6)
X3 = f32(2, 5, 8)
IDS = np.array([[0, 3, 9, 1], [2, 2, 7, 0]], np.int64)

# (id, op, inputs, weights, attrs, reference)
CASES = [
    ("linear", "linear", {"x": X3}, {"W": f32(6, 8), "b": f32(6)}, {},
     lambda i, w: i["x"] @ w["W"].T + w["b"]),
    ("linear_nobias", "linear", {"x": f32(4, 8)}, {"W": f32(3, 8), "b": None}, {},
     lambda i, w: i["x"] @ w["W"].T),
    ("matmul", "matmul", {"a": f32(2, 1, 3, 4), "b": f32(5, 4, 6)}, {}, {},
     lambda i, w: i["a"] @ i["b"]),
    ("conv2d", "conv2d", {"x": X4}, {"W": f32(4, 3, 3, 3), "b": f32(4)},
     {"stride": [2, 1], "padding": [1, 0], "dilation": [1, 1], "groups": 1},
     lambda i, w: F.conv2d(T(i["x"]), T(w["W"]), T(w["b"]), stride=(2, 1), padding=(1, 0)).numpy()),
    ("conv2d_depthwise_dilated", "conv2d", {"x": f32(1, 4, 9, 9)}, {"W": f32(4, 1, 3, 3), "b": None},
     {"stride": [1, 1], "padding": [2, 2], "dilation": [2, 2], "groups": 4},
     lambda i, w: F.conv2d(T(i["x"]), T(w["W"]), None, padding=2, dilation=2, groups=4).numpy()),
    ("max_pool2d", "max_pool2d", {"x": X4}, {}, {"kernel": [3, 2], "stride": [2, 2], "padding": [1, 1]},
     lambda i, w: F.max_pool2d(T(i["x"]), (3, 2), (2, 2), (1, 1)).numpy()),
    ("avg_pool_global", "avg_pool_global", {"x": X4}, {}, {},
     lambda i, w: i["x"].mean(axis=(2, 3), keepdims=True)),
    ("batch_norm", "batch_norm", {"x": X4},
     {"g": f32(3), "b": f32(3), "m": f32(3), "v": f32(3, lo=0.5, hi=2.0)}, {"eps": 1e-5},
     lambda i, w: ((i["x"] - w["m"][:, None, None]) / np.sqrt(w["v"][:, None, None] + 1e-5)
                   * w["g"][:, None, None] + w["b"][:, None, None])),
    ("layer_norm", "layer_norm", {"x": X3}, {"W": f32(8), "b": f32(8)}, {"eps": 1e-12},
     lambda i, w: F.layer_norm(T(i["x"]), (8,), T(w["W"]), T(w["b"]), 1e-12).numpy()),
    ("layer_norm_noaffine", "layer_norm", {"x": X3}, {"W": None, "b": None}, {"eps": 1e-5},
     lambda i, w: F.layer_norm(T(i["x"]), (8,), None, None, 1e-5).numpy()),
    ("embedding", "embedding", {"ids": IDS}, {"W": f32(10, 6)}, {},
     lambda i, w: w["W"][i["ids"]]),
    ("arange_like", "arange_like", {"x": X3}, {}, {"axis": -1},
     lambda i, w: np.arange(8, dtype=np.int64)),
    ("select", "select", {"x": X3}, {}, {"axis": 1, "index": 0},
     lambda i, w: i["x"][:, 0]),
    ("select_negative", "select", {"x": X3}, {}, {"axis": -1, "index": -1},
     lambda i, w: i["x"][..., -1]),
    *[(op, op, {"x": f32(3, 4, lo=0.1) if op == "sqrt" else f32(3, 4)}, {}, {}, fn) for op, fn in [
        ("relu", lambda i, w: np.maximum(i["x"], 0)), ("tanh", lambda i, w: np.tanh(i["x"])),
        ("sigmoid", lambda i, w: 1 / (1 + np.exp(-i["x"].astype(np.float64)))),
        ("exp", lambda i, w: np.exp(i["x"])), ("sqrt", lambda i, w: np.sqrt(i["x"])),
        ("neg", lambda i, w: -i["x"]), ("identity", lambda i, w: i["x"])]],
    ("gelu", "gelu", {"x": f32(4, 9, lo=-5, hi=5)}, {}, {"approximate": "none"},
     lambda i, w: gelu_ref(i["x"], "none")),
    ("gelu_tanh", "gelu", {"x": f32(4, 9, lo=-5, hi=5)}, {}, {"approximate": "tanh"},
     lambda i, w: gelu_ref(i["x"], "tanh")),
    ("relu6", "clamp", {"x": f32(3, 5, lo=-8, hi=8)}, {}, {"min": 0, "max": 6},
     lambda i, w: np.clip(i["x"], 0, 6)),
    ("clamp_min", "clamp", {"x": f32(3, 5)}, {}, {"min": -0.5, "max": None},
     lambda i, w: np.maximum(i["x"], -0.5)),
    ("clamp_max", "clamp", {"x": f32(3, 5)}, {}, {"min": None, "max": 0.25},
     lambda i, w: np.minimum(i["x"], 0.25)),
    *[(op, op, {"a": f32(2, 3, 4, lo=0.5) if op == "pow" else f32(2, 3, 4)},
       {"b": f32(3, 1, lo=0.5) if op in ("div", "pow") else f32(3, 1)}, {}, fn) for op, fn in [
        ("add", lambda i, w: i["a"] + w["b"]), ("sub", lambda i, w: i["a"] - w["b"]),
        ("mul", lambda i, w: i["a"] * w["b"]), ("div", lambda i, w: i["a"] / w["b"]),
        ("pow", lambda i, w: i["a"] ** w["b"])]],
    *[(f"{op}{'_rev' if rev else ''}", op, {"x": f32(3, 4, lo=0.5)}, {}, {"value": v, "reverse": rev}, fn)
      for op, v, rev, fn in [
        ("add_scalar", 1.5, False, lambda i, w: i["x"] + 1.5),
        ("sub_scalar", 1.0, True, lambda i, w: 1.0 - i["x"]),
        ("sub_scalar", 2, False, lambda i, w: i["x"] - 2),
        ("mul_scalar", -1e30, False, lambda i, w: i["x"] * np.float32(-1e30)),
        ("div_scalar", 8.0, False, lambda i, w: i["x"] / 8),
        ("div_scalar", 2.0, True, lambda i, w: 2 / i["x"]),
        ("pow_scalar", 3, False, lambda i, w: i["x"] ** 3),
        ("pow_scalar", 2.0, True, lambda i, w: 2.0 ** i["x"])]],
    ("softmax", "softmax", {"x": f32(2, 3, 7, lo=-30, hi=30)}, {}, {"axis": -1},
     lambda i, w: torch.softmax(T(i["x"]), -1).numpy()),
    ("sum", "sum", {"x": X4}, {}, {"axes": [1, -1], "keepdim": False}, lambda i, w: i["x"].sum((1, 3))),
    ("sum_no_axes", "sum", {"x": X3}, {}, {"axes": [], "keepdim": False}, lambda i, w: i["x"]),
    ("sum_int", "sum", {"ids": IDS}, {}, {"axes": [1], "keepdim": True}, lambda i, w: IDS.sum(1, keepdims=True)),
    ("mean", "mean", {"x": X3}, {}, {"axes": [1], "keepdim": True}, lambda i, w: i["x"].mean(1, keepdims=True)),
    ("max", "max", {"x": X3}, {}, {"axes": [-1], "keepdim": False}, lambda i, w: i["x"].max(-1)),
    ("normalize", "normalize", {"x": X3}, {}, {"axis": -1, "eps": 1e-12},
     lambda i, w: F.normalize(T(i["x"]), dim=-1).numpy()),
    ("normalize_zero", "normalize", {"x": np.zeros((2, 3), np.float32)}, {}, {"axis": 1, "eps": 1e-12},
     lambda i, w: np.zeros((2, 3), np.float32)),
    ("reshape", "reshape", {"x": X3}, {}, {"shape": [0, -1, 2, 4]}, lambda i, w: i["x"].reshape(2, 5, 2, 4)),
    ("flatten", "flatten", {"x": X4}, {}, {"start": 1, "end": -1}, lambda i, w: i["x"].reshape(2, -1)),
    ("flatten_head", "flatten", {"x": X4}, {}, {"start": 0, "end": 1}, lambda i, w: i["x"].reshape(6, 7, 6)),
    ("flatten_middle", "flatten", {"x": X4}, {}, {"start": 1, "end": 2}, lambda i, w: i["x"].reshape(2, 21, 6)),
    ("flatten_negative", "flatten", {"x": X4}, {}, {"start": -3, "end": -2},
     lambda i, w: i["x"].reshape(2, 21, 6)),
    ("transpose", "transpose", {"x": X4}, {}, {"perm": [0, 2, 1, 3]}, lambda i, w: i["x"].transpose(0, 2, 1, 3)),
    ("unsqueeze", "unsqueeze", {"x": X3}, {}, {"axis": 1}, lambda i, w: i["x"][:, None]),
    ("unsqueeze_negative", "unsqueeze", {"x": X3}, {}, {"axis": -1}, lambda i, w: i["x"][..., None]),
    ("cast_to_int", "cast", {"x": f32(3, 4, lo=-5, hi=5)}, {}, {"dtype": "int64"},
     lambda i, w: np.trunc(i["x"]).astype(np.int64)),
    ("cast_to_float", "cast", {"ids": IDS}, {}, {"dtype": "float32"}, lambda i, w: IDS.astype(np.float32)),
    ("int_scalar_ops", "mul_scalar", {"ids": IDS}, {}, {"value": 3}, lambda i, w: IDS * 3),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_every_op(case):
    _, op, inputs, weights, attrs, ref = case
    graph, w = one_op(op, inputs, weights, attrs)
    expected = ref(inputs, w)
    expected = np.asarray(expected, dtype=np.int64 if np.asarray(expected).dtype.kind == "i" else np.float32)
    check(graph, w, inputs, expected)


def test_cases_cover_every_op():
    assert {c[1] for c in CASES} == set(OPS)


OPSET_CASES = [c for c in CASES if c[1] in ("gelu", "layer_norm", "sum", "mean", "max", "normalize",
                                             "unsqueeze", "clamp", "arange_like", "flatten")]


@pytest.mark.parametrize("opset", [13, 18, 20, 21])
def test_opset_variants(opset):
    for _, op, inputs, weights, attrs, ref in OPSET_CASES:
        graph, w = one_op(op, inputs, weights, attrs)
        model = check(graph, w, inputs, np.asarray(ref(inputs, w)), opset=opset)
        types = {n.op_type for n in model.graph.node}
        if op == "gelu":
            assert ("Gelu" in types) == (opset >= 20)
        if op == "layer_norm" and "W" in w:
            assert ("LayerNormalization" in types) == (opset >= 17)
        assert model.opset_import[0].version == opset


def mlp_graph():
    """x (batch, 8) -> linear -> gelu -> layer_norm -> linear -> normalize: a small
    encoder-like chain with a symbolic batch."""
    w = {"l1.weight": f32(16, 8), "l1.bias": f32(16), "ln.weight": f32(16), "ln.bias": f32(16),
         "l2.weight": f32(4, 16), "unused": f32(3)}
    graph = {"version": 1,
             "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 8]}],
             "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 4]}],
             "nodes": [
                 {"op": "linear", "in": ["x", "l1.weight", "l1.bias"], "out": ["h1"], "attrs": {}, "path": "l1"},
                 {"op": "gelu", "in": ["h1"], "out": ["h2"], "attrs": {"approximate": "none"}, "path": "act"},
                 {"op": "layer_norm", "in": ["h2", "ln.weight", "ln.bias"], "out": ["h3"],
                  "attrs": {"eps": 1e-5}, "path": "ln"},
                 {"op": "linear", "in": ["h3", "l2.weight", None], "out": ["h4"], "attrs": {}, "path": "l2"},
                 {"op": "normalize", "in": ["h4"], "out": ["y"], "attrs": {"axis": -1, "eps": 1e-12},
                  "path": "norm"}]}
    return graph, w


def mlp_ref(w, x):
    h = F.linear(T(x), T(w["l1.weight"]), T(w["l1.bias"]))
    h = F.layer_norm(F.gelu(h), (16,), T(w["ln.weight"]), T(w["ln.bias"]), 1e-5)
    return F.normalize(F.linear(h, T(w["l2.weight"])), dim=-1).numpy()


def test_dynamic_batch_and_export_file(tmp_path):
    graph, w = mlp_graph()
    model = Model(w, name="mlp", graph=graph)
    path = tmp_path / "mlp.onnx"
    size = model.export_onnx(path)
    assert size == path.stat().st_size
    assert not [p for p in tmp_path.iterdir() if p.name != "mlp.onnx"]  # no temporary left behind
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 8
    assert "unused" not in {i.name for i in proto.graph.initializer}
    assert all(i.data_type == onnx.TensorProto.FLOAT for i in proto.graph.initializer)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5, 32):
        x = f32(batch, 8)
        got = sess.run(None, {"x": x})[0]
        assert got.shape == (batch, 4)
        np.testing.assert_allclose(got, mlp_ref(w, x), rtol=0, atol=1e-5)
    # Model.save picks the format from the suffix
    model.save(tmp_path / "again.onnx")
    assert (tmp_path / "again.onnx").read_bytes() == path.read_bytes()


def attention_graph():
    """MiniLM-style self-attention with a mask and mean pooling: int64 inputs, cast,
    scalar ops, arange_like + embedding (positions), reshape 0/-1, transpose, matmul,
    softmax, unsqueeze, sum, div, normalize -- all with symbolic batch and seq."""
    H, D, V = 2, 4, 11
    E = H * D
    w = {"tok": f32(V, E), "pos": f32(16, E), "q.w": f32(E, E), "q.b": f32(E), "k.w": f32(E, E),
         "k.b": f32(E), "v.w": f32(E, E), "v.b": f32(E)}

    def n(op, ins, out, **attrs):
        return {"op": op, "in": ins, "out": [out], "attrs": attrs, "path": "enc." + out}

    nodes = [
        n("embedding", ["ids", "tok"], "te"),
        n("arange_like", ["ids"], "posid", axis=1),
        n("embedding", ["posid", "pos"], "pe"),
        n("add", ["te", "pe"], "x"),
        n("cast", ["mask"], "maskf", dtype="float32"),
        n("sub_scalar", ["maskf"], "inv", value=1.0, reverse=True),
        n("mul_scalar", ["inv"], "bias0", value=-3.4028234663852886e38, reverse=False),
        n("unsqueeze", ["bias0"], "bias1", axis=1),
        n("unsqueeze", ["bias1"], "bias", axis=1),
    ]
    for h in "qkv":
        nodes += [n("linear", ["x", f"{h}.w", f"{h}.b"], f"{h}0"),
                  n("reshape", [f"{h}0"], f"{h}1", shape=[0, 0, H, D]),
                  n("transpose", [f"{h}1"], f"{h}2", perm=[0, 2, 1, 3])]
    nodes += [
        n("transpose", ["k2"], "kt", perm=[0, 1, 3, 2]),
        n("matmul", ["q2", "kt"], "s0"),
        n("div_scalar", ["s0"], "s1", value=math.sqrt(D)),
        n("add", ["s1", "bias"], "s2"),
        n("softmax", ["s2"], "p", axis=-1),
        n("matmul", ["p", "v2"], "c0"),
        n("transpose", ["c0"], "c1", perm=[0, 2, 1, 3]),
        n("reshape", ["c1"], "c2", shape=[0, 0, -1]),
        n("unsqueeze", ["maskf"], "m3", axis=-1),
        n("mul", ["c2", "m3"], "c3"),
        n("sum", ["c3"], "num", axes=[1], keepdim=False),
        n("sum", ["m3"], "den0", axes=[1], keepdim=False),
        n("clamp", ["den0"], "den", min=1e-9, max=None),
        n("div", ["num", "den"], "pooled"),
        n("normalize", ["pooled"], "emb", axis=1, eps=1e-12),
    ]
    graph = {"version": 1,
             "inputs": [{"name": "ids", "dtype": "int64", "shape": ["batch", "seq"]},
                        {"name": "mask", "dtype": "int64", "shape": ["batch", "seq"]}],
             "outputs": [{"name": "emb", "dtype": "float32", "shape": ["batch", E]}],
             "nodes": nodes}
    return graph, w, (H, D)


def attention_ref(w, ids, mask, H, D):
    t = {k: T(v) for k, v in w.items()}
    x = t["tok"][T(ids)] + t["pos"][: ids.shape[1]]
    B, S = ids.shape
    q, k, v = (F.linear(x, t[f"{h}.w"], t[f"{h}.b"]).reshape(B, S, H, D).transpose(1, 2) for h in "qkv")
    bias = (1.0 - T(mask).float())[:, None, None, :] * torch.finfo(torch.float32).min
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + bias, -1)
    c = (p @ v).transpose(1, 2).reshape(B, S, H * D)
    m = T(mask).float()[..., None]
    return F.normalize((c * m).sum(1) / (m.sum(1).clamp(min=1e-9)), dim=1).numpy()


@pytest.mark.parametrize("opset", [13, 17])
def test_attention_block_symbolic_batch_and_seq(opset):
    graph, w, (H, D) = attention_graph()
    sess = session(build_onnx(graph, w, opset=opset))
    for B, S in ((1, 3), (3, 7)):
        ids = rng.integers(0, 11, (B, S)).astype(np.int64)
        mask = np.ones((B, S), np.int64)
        mask[-1, S // 2:] = 0
        got = sess.run(None, {"ids": ids, "mask": mask})[0]
        np.testing.assert_allclose(got, attention_ref(w, ids, mask, H, D), rtol=0, atol=1e-5)
        if run_graph is not None:
            ref = run_graph(graph, w, {"ids": ids, "mask": mask})["emb"]
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


def test_refusals(tmp_path):
    graph, w = mlp_graph()
    with pytest.raises(SeedError, match="opset"):
        build_onnx(graph, w, opset=12)
    bad = {**graph, "nodes": graph["nodes"] + [{"op": "fft", "in": ["y"], "out": ["z"], "attrs": {},
                                                 "path": "spectral"}]}
    with pytest.raises(SeedError, match="fft.*spectral|spectral.*fft"):
        build_onnx(bad, w)
    missing = dict(w)
    del missing["l1.bias"]
    with pytest.raises(SeedError, match="l1.bias"):
        build_onnx(graph, missing)
    dup = {**graph, "nodes": [dict(graph["nodes"][0], out=["x"])] + graph["nodes"][1:]}
    with pytest.raises(SeedError, match="'x'"):
        build_onnx(dup, w)
    ints, _ = one_op("div_scalar", {"ids": IDS}, {}, {"value": 2})
    ints["outputs"] = [spec("y", IDS)]
    with pytest.raises(SeedError, match="int64"):
        build_onnx(ints, {})
    with pytest.raises(SeedError, match="weights only"):
        Model(w).export_onnx(tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_cli_assemble_onnx(tmp_path, small_state_dict):
    import seedcore
    from seedcore.cli import main

    graph, w = mlp_graph()
    seed = seedcore.extract(w, codec="raw", progress=False)
    seed.graph = graph
    seed.save(tmp_path / "mlp.seed")
    for args, opset in (([], 17), (["--opset", "13"], 13), (["--opset", "20"], 20)):
        out = tmp_path / f"mlp{opset}.onnx"
        assert main(["assemble", str(tmp_path / "mlp.seed"), "-o", str(out), *args]) == 0
        proto = onnx.load(str(out))
        assert proto.opset_import[0].version == opset
        x = f32(3, 8)
        got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_allclose(got, mlp_ref(w, x), rtol=0, atol=1e-5)
    assert main(["assemble", str(tmp_path / "mlp.seed"), "-o", str(tmp_path / "w.safetensors")]) == 0


def test_cli_assemble_errors(tmp_path, small_state_dict, capsys):
    import seedcore
    from seedcore.cli import main

    seedcore.extract(small_state_dict, codec="q8", progress=False).save(tmp_path / "w.seed")
    graph, w = mlp_graph()
    seed = seedcore.extract(w, codec="raw", progress=False)
    seed.graph = graph
    seed.save(tmp_path / "g.seed")
    for args, match in (
            (["w.seed", "-o", "x.onnx"], "weights only.*example_inputs.*supported outputs: .safetensors"),
            (["g.seed", "-o", "x.pt"], "supported outputs: .safetensors, .onnx"),
            (["g.seed", "-o", "x"], "without a suffix"),
            (["g.seed", "-o", "x.onnx", "--opset", "9"], "opset"),
            (["g.seed", "-o", "x.safetensors", "--opset", "17"], "--opset applies to .onnx")):
        with pytest.raises(SystemExit) as e:
            main(["assemble", str(tmp_path / args[0]), *[str(tmp_path / a) if a.startswith("x") else a
                                                         for a in args[1:]]])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("seedcore: error: ")
        import re

        assert re.search(match, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.seed", "w.seed"]
