"""seedcore.graph_ref: the numpy reference executor and the graph validator."""

import copy

import numpy as np
import pytest

from seedcore import SeedError
from seedcore.graph_ref import OPS, run_graph, validate_graph

W = {"fc.weight": np.arange(12, dtype=np.float32).reshape(3, 4) / 10, "fc.bias": np.ones(3, np.float32),
     "emb": np.arange(10, dtype=np.float32).reshape(5, 2)}


def graph(nodes, inputs=None, outputs=None):
    return {"version": 1,
            "inputs": inputs or [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}],
            "outputs": outputs or [{"name": "y", "dtype": "float32", "shape": ["batch", 3]}],
            "nodes": nodes}


def node(op, ins, out, attrs=None, path="m"):
    return {"op": op, "in": ins, "out": [out], "attrs": attrs or {}, "path": path}


GOOD = graph([node("linear", ["x", "fc.weight", "fc.bias"], "h"), node("relu", ["h"], "y")])


def test_linear_relu():
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = run_graph(GOOD, W, {"x": x})["y"]
    np.testing.assert_allclose(y, np.maximum(x @ W["fc.weight"].T + 1, 0), rtol=1e-6)


def test_small_ops_against_numpy():
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    cases = [
        ("reshape", {"shape": [0, -1]}, x.reshape(2, 12)),
        ("flatten", {"start": 1, "end": 2}, x.reshape(2, 12)),
        ("transpose", {"perm": [2, 0, 1]}, x.transpose(2, 0, 1)),
        ("unsqueeze", {"axis": -1}, x[..., None]),
        ("select", {"axis": 1, "index": -1}, x[:, -1]),
        ("softmax", {"axis": -1}, np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
        ("sum", {"axes": [0, 2], "keepdim": True}, x.sum((0, 2), keepdims=True)),
        ("max", {"axes": [1], "keepdim": False}, x.max(1)),
        ("clamp", {"min": 0, "max": None}, np.maximum(x, 0)),
        ("sub_scalar", {"value": 1.0, "reverse": True}, 1 - x),
        ("div_scalar", {"value": 2}, x / 2),
        ("normalize", {"axis": -1, "eps": 1e-12}, x / np.linalg.norm(x, axis=-1, keepdims=True)),
        ("layer_norm", {"eps": 1e-5}, (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)),
        ("gelu", {"approximate": "tanh"}, 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    ]
    for op, attrs, want in cases:
        ins = ["x", None, None] if op == "layer_norm" else ["x"]
        g = graph([node(op, ins, "y", attrs)], inputs=[{"name": "x", "dtype": "float32", "shape": [2, 3, 4]}],
                  outputs=[{"name": "y", "dtype": "float32", "shape": list(want.shape)}])
        np.testing.assert_allclose(run_graph(g, {}, {"x": x})["y"], want, rtol=1e-5, atol=1e-6, err_msg=op)


def test_embedding_arange_cast():
    g = graph([node("embedding", ["ids", "emb"], "e"), node("arange_like", ["ids"], "pos", {"axis": 1}),
               node("cast", ["pos"], "pf", {"dtype": "float32"}), node("unsqueeze", ["pf"], "pu", {"axis": -1}),
               node("add", ["e", "pu"], "y")],
              inputs=[{"name": "ids", "dtype": "int64", "shape": ["batch", "seq"]}],
              outputs=[{"name": "y", "dtype": "float32", "shape": ["batch", "seq", 2]}])
    ids = np.array([[0, 4, 2]], np.int64)
    np.testing.assert_array_equal(run_graph(g, W, {"ids": ids})["y"], W["emb"][ids] + np.arange(3)[:, None])
    with pytest.raises(SeedError, match="id 7 is outside"):
        run_graph(g, W, {"ids": np.array([[7]], np.int64)})


def test_ops_are_the_spec_table():
    """Every op of docs/format.md section 4's table, and nothing else."""
    import os
    import re

    text = open(os.path.join(os.path.dirname(__file__), "..", "docs", "format.md"), encoding="utf-8").read()
    table = text[text.index("| op | in | attrs | semantics |"):text.index("Clarifications (normative")]
    spec_ops = set()
    for line in table.splitlines()[2:]:
        if line.startswith("|"):
            spec_ops |= set(re.findall(r"`([a-z0-9_]+)`", line.split("|")[1]))
    assert spec_ops == set(OPS) and len(OPS) == 39


@pytest.mark.parametrize("mutate, message", [
    (lambda g: g.pop("version"), "exactly the keys"),
    (lambda g: g.update(version=2), "version 2"),
    (lambda g: g["nodes"][0].update(op="conv3d"), r"node 0 \(conv3d, path 'm'\): unknown op"),
    (lambda g: g["nodes"][0].update(attrs={"eps": 1}), "unknown attribute"),
    (lambda g: g["nodes"][0].update(extra=1), "exactly the keys op, in, out, attrs, path"),
    (lambda g: g["nodes"][1].update({"in": ["nope"]}), r"node 1 \(relu.*'nope' is not defined"),
    (lambda g: g["nodes"][0].update({"in": ["x", "missing.weight", None]}), "'missing.weight' is not defined"),
    (lambda g: g["nodes"][0].update({"in": ["x", "fc.weight"]}), "exactly 3 inputs"),
    (lambda g: g["nodes"][0].update({"in": ["x", None, None]}), "input 1 is required"),
    (lambda g: g["nodes"][0].update(out=["x"]), "reuses a name"),
    (lambda g: g["nodes"][0].update(out=["fc.bias"]), "reuses a name"),
    (lambda g: g["nodes"][1].update(out=["z"]), "output 0 'y' is not produced"),
    (lambda g: g["nodes"].reverse(), "not defined before"),
    (lambda g: g["inputs"][0].update(dtype="float16"), "float16"),
    (lambda g: g["inputs"][0].update(shape=[-1, 4]), "shape must be"),
    (lambda g: g["nodes"][0].update({"in": ["x", "emb", "fc.bias"]}), "bias 'fc.bias' has shape"),
    (lambda g: g["nodes"].insert(1, node("clamp", ["h"], "c", {"min": 0})), "attribute 'max' is missing"),
    (lambda g: g["nodes"].insert(1, node("reshape", ["h"], "c", {"shape": [-1, -1]})), "more than one -1"),
    (lambda g: g["nodes"].insert(1, node("gelu", ["h"], "c", {"approximate": "erf"})), "approximate"),
    (lambda g: g["nodes"].insert(1, node("mul_scalar", ["h"], "c", {"value": True})), "finite number"),
    (lambda g: g["nodes"].insert(1, node("normalize", ["h"], "c", {"axis": -1, "eps": -1e-12})), ">= 0"),
    (lambda g: g["nodes"].insert(1, node("layer_norm", ["h", None, None], "c", {"eps": -1.0})), ">= 0"),
    (lambda g: g["nodes"].insert(1, node("transpose", ["h"], "c", {"perm": [1, 1]})), "not a permutation"),
    (lambda g: g["nodes"].insert(1, node("embedding", ["h", "emb"], "c")),
     r"input 0 'h' is float32, expected int64"),
    (lambda g: [g["nodes"].insert(1, node("gelu", ["hi"], "c", {"approximate": "none"})),
                g["nodes"].insert(1, node("cast", ["h"], "hi", {"dtype": "int64"}))],
     r"input 0 'hi' is int64, expected float32"),
    (lambda g: [g["nodes"].insert(1, node("add", ["h", "hi"], "c")),
                g["nodes"].insert(1, node("cast", ["h"], "hi", {"dtype": "int64"}))], "different dtypes"),
    (lambda g: [g["nodes"].insert(1, node("mul_scalar", ["hi"], "c", {"value": 0.5})),
                g["nodes"].insert(1, node("cast", ["h"], "hi", {"dtype": "int64"}))], "non-integer value"),
    (lambda g: g["outputs"][0].update(dtype="int64"), "declared int64 but the graph makes it float32"),
    (lambda g: g["nodes"].insert(1, node("transpose", ["h"], "c", {"perm": [0, 2]})), "not a permutation"),
])
def test_malformed_graphs(mutate, message):
    g = copy.deepcopy(GOOD)
    mutate(g)
    with pytest.raises(SeedError, match=message):
        validate_graph(g, {k: v.shape for k, v in W.items()})


def test_weight_dtypes_follow_the_arrays():
    validate_graph(GOOD, W)                                   # arrays: their dtypes are checked
    bad = {**W, "fc.weight": W["fc.weight"].astype(np.int64)}
    with pytest.raises(SeedError, match=r"input 1 'fc.weight' is int64, expected float32"):
        validate_graph(GOOD, bad)
    with pytest.raises(SeedError, match=r"input 1 'fc.weight' is int64, expected float32"):
        validate_graph(GOOD, {k: v.shape for k, v in W.items()}, {"fc.weight": "int32"})
    validate_graph(GOOD, {k: v.shape for k, v in W.items()}, {"fc.weight": "bfloat16"})


def test_bad_inputs_at_run_time():
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(SeedError, match="must be float32, got float64"):
        run_graph(GOOD, W, {"x": x.astype(np.float64)})
    with pytest.raises(SeedError, match="dimension 1 is 5, expected 4"):
        run_graph(GOOD, W, {"x": np.zeros((2, 5), np.float32)})
    with pytest.raises(SeedError, match="'x' is missing"):
        run_graph(GOOD, W, {})
    bad_w = dict(W, **{"fc.weight": np.zeros((3, 5), np.float32)})
    with pytest.raises(SeedError, match=r"node 0 \(linear, path 'm'\): input shape \[2, 4\] does not match"):
        run_graph(GOOD, bad_w, {"x": x})
    two = graph([node("add", ["x", "x2"], "y")], inputs=[
        {"name": "x", "dtype": "float32", "shape": ["batch", 3]}, {"name": "x2", "dtype": "float32", "shape": ["batch", 3]}])
    with pytest.raises(SeedError, match="'batch' is 2 elsewhere"):
        run_graph(two, {}, {"x": np.zeros((2, 3), np.float32), "x2": np.zeros((3, 3), np.float32)})
