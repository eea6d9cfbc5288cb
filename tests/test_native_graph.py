"""The native forward pass (seedcore._native.Graph) on hand-written IR graphs that
exercise every op of docs/format.md section 4, against the numpy reference executor
(seedcore.graph_ref.run_graph), plus determinism and refusals."""
import json

import numpy as np
import pytest

from seedcore import _native
from seedcore.errors import SeedError
from seedcore import graph_ref
from seedcore.graph_ref import run_graph

RNG = np.random.default_rng(7)
IMPLS = ["scalar"] + [i for i in ("avx2", "neon") if _native.cpu_features().get(i)]


def f32(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def node(op, ins, out, attrs=None, path=None):
    return {"op": op, "in": ins, "out": [out], "attrs": attrs or {}, "path": path or op}


def graph(inputs, outputs, nodes):
    def spec(name, dtype, shape):
        return {"name": name, "dtype": dtype, "shape": shape}
    return {"version": 1, "inputs": [spec(*i) for i in inputs], "outputs": [spec(*o) for o in outputs], "nodes": nodes}


def check(g, weights, inputs, rtol=1e-5, threads=(1, 3)):
    ref = run_graph(g, weights, inputs)
    native = _native.Graph(json.dumps(g), weights)
    for impl in IMPLS:
        first = None
        for t in threads:
            out = native.run(inputs, threads=t, impl=impl)
            assert list(out) == [o["name"] for o in g["outputs"]]
            for name, r in ref.items():
                y = out[name]
                assert y.dtype == r.dtype and y.shape == r.shape, (name, y.dtype, y.shape, r.dtype, r.shape)
                scale = max(float(np.max(np.abs(r))) if r.size else 0.0, 1e-6)
                if r.dtype == np.int64:
                    np.testing.assert_array_equal(y, r)
                else:
                    np.testing.assert_allclose(y, r, rtol=0, atol=rtol * scale, err_msg=f"{name} impl={impl}")
            if first is None:
                first = out
            else:  # thread count never changes a bit
                for name in out:
                    assert np.array_equal(first[name], out[name]), (name, impl, t)
    return native


UNARY_CASES = [
    ("relu", {}), ("tanh", {}), ("sigmoid", {}), ("exp", {}), ("neg", {}),
    ("gelu", {"approximate": "none"}), ("gelu", {"approximate": "tanh"}),
    ("clamp", {"min": 0, "max": 6}), ("clamp", {"min": None, "max": 0.5}), ("clamp", {"min": -0.25, "max": None}),
    ("softmax", {"axis": -1}), ("softmax", {"axis": 1}),
    ("normalize", {"axis": -1, "eps": 1e-12}), ("normalize", {"axis": 0, "eps": 1e-12}),
    ("sum", {"axes": [1], "keepdim": False}), ("mean", {"axes": [0, -1], "keepdim": True}),
    ("max", {"axes": [2], "keepdim": False}), ("sum", {"axes": [], "keepdim": False}),
    ("reshape", {"shape": [0, -1]}), ("reshape", {"shape": [12, 5]}), ("flatten", {"start": 1, "end": -1}),
    ("flatten", {"start": 0, "end": 1}), ("transpose", {"perm": [2, 0, 1]}), ("transpose", {"perm": [1, 0, 2]}),
    ("unsqueeze", {"axis": -1}), ("unsqueeze", {"axis": 0}), ("select", {"axis": 1, "index": -1}),
    ("select", {"axis": 2, "index": 0}), ("identity", {}), ("cast", {"dtype": "int64"}),
    ("arange_like", {"axis": 1}),
]
for op in ("add", "sub", "mul", "div", "pow"):
    UNARY_CASES.append((op + "_scalar", {"value": 1.5}))
    UNARY_CASES.append((op + "_scalar", {"value": 2.0, "reverse": True}))


def out_shape(op, attrs, *args):
    """The output shape, from the reference's own kernel."""
    return [int(d) for d in np.shape(graph_ref.KERNELS[op](*args, **attrs))]


@pytest.mark.parametrize("op,attrs", UNARY_CASES, ids=[f"{o}-{i}" for i, (o, _) in enumerate(UNARY_CASES)])
def test_single_input_ops(op, attrs):
    x = f32(3, 4, 5, scale=2.0)
    if op == "pow_scalar" and not attrs.get("reverse"):
        x = np.abs(x) + 0.1
    if op == "cast":
        x = x * 10
    out_dtype = "int64" if op in ("cast", "arange_like") else "float32"
    g = graph([("x", "float32", ["a", 4, 5])], [("y", out_dtype, out_shape(op, attrs, x))],
              [node(op, ["x"], "y", attrs)])
    check(g, {}, {"x": x})


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
@pytest.mark.parametrize("sa,sb", [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)),
                                   ((1,), (2, 3)), ((), (3,)), ((5, 1, 1), (1, 6, 7))])
def test_binary_broadcasting(op, sa, sb):
    a, b = f32(*sa), f32(*sb)
    if op == "pow":
        a = np.abs(a) + 0.5
    if op == "div":
        b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
    g = graph([("a", "float32", list(sa)), ("b", "float32", list(sb))],
              [("y", "float32", out_shape(op, {}, a, b))], [node(op, ["a", "b"], "y")])
    check(g, {}, {"a": a, "b": b})


def test_int64_arithmetic():
    ids = RNG.integers(-50, 50, size=(2, 6)).astype(np.int64)
    nodes = [node("add", ["ids", "ids"], "a"), node("mul_scalar", ["a"], "b", {"value": 3}),
             node("sub_scalar", ["b"], "c", {"value": 1, "reverse": True}), node("neg", ["c"], "d"),
             node("clamp", ["d"], "e", {"min": -20, "max": 40}), node("sum", ["e"], "s", {"axes": [1], "keepdim": False}),
             node("max", ["e"], "m", {"axes": [0], "keepdim": True}), node("cast", ["e"], "f", {"dtype": "float32"})]
    g = graph([("ids", "int64", ["b", 6])], [("s", "int64", ["b"]), ("m", "int64", [1, 6]), ("f", "float32", ["b", 6])],
              nodes)
    check(g, {}, {"ids": ids})


@pytest.mark.parametrize("shape_x,out", [((2, 7, 33), 17), ((1, 384), 1536), ((5, 1), 1), ((40, 16), 200)])
def test_linear(shape_x, out):
    x = f32(*shape_x)
    w, b = f32(out, shape_x[-1], scale=0.2), f32(out)
    g = graph([("x", "float32", list(shape_x))], [("y", "float32", list(shape_x[:-1]) + [out]),
                                                   ("z", "float32", list(shape_x[:-1]) + [out])],
              [node("linear", ["x", "w", "b"], "y"), node("linear", ["x", "w", None], "z")])
    check(g, {"w": w, "b": b}, {"x": x}, rtol=1e-5)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 7, 9), (2, 3, 9, 4)), ((2, 1, 5, 6), (3, 6, 2)),
                                   ((1, 17), (17, 33)), ((4, 2, 8, 64), (1, 64, 8))])
def test_matmul(sa, sb):
    a, b = f32(*sa), f32(*sb)
    g = graph([("a", "float32", list(sa)), ("b", "float32", list(sb))],
              [("y", "float32", out_shape("matmul", {}, a, b))], [node("matmul", ["a", "b"], "y")])
    check(g, {}, {"a": a, "b": b})


CONV_CASES = [  # N, C, H, W, OC, KH, KW, stride, padding, dilation, groups
    (1, 3, 16, 16, 8, 3, 3, (2, 2), (1, 1), (1, 1), 1),
    (2, 8, 9, 11, 8, 3, 3, (1, 1), (1, 1), (1, 1), 8),
    (2, 12, 14, 14, 12, 3, 3, (2, 2), (1, 1), (1, 1), 12),
    (1, 6, 10, 10, 12, 1, 1, (1, 1), (0, 0), (1, 1), 1),
    (1, 4, 11, 9, 6, 3, 2, (2, 1), (1, 0), (2, 1), 2),
    (2, 1, 28, 28, 6, 5, 5, (1, 1), (2, 2), (1, 1), 1),
    (1, 6, 8, 8, 12, 3, 3, (1, 1), (2, 2), (2, 2), 6),
    # depthwise planes wider than 64 padded columns: stride 2 runs in place (masked edge
    # loads); stride 1, padding 2 and a dilated one through the padded copy
    (1, 4, 13, 70, 4, 3, 3, (1, 1), (1, 1), (1, 1), 4),
    (2, 3, 11, 85, 3, 3, 3, (2, 2), (1, 1), (1, 1), 3),
    (1, 2, 9, 67, 2, 3, 3, (2, 2), (2, 2), (1, 1), 2),
    (1, 2, 10, 66, 2, 3, 3, (1, 1), (2, 2), (2, 2), 2),
    # 1x1 convs over small planes (7x7, 5x5), K past one chunk
    (2, 40, 7, 7, 64, 1, 1, (1, 1), (0, 0), (1, 1), 1),
    (1, 300, 5, 5, 64, 1, 1, (1, 1), (0, 0), (1, 1), 1),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_and_pools(case):
    n, c, h, w, oc, kh, kw, s, p, d, gr = case
    x, wt, b = f32(n, c, h, w), f32(oc, c // gr, kh, kw, scale=0.3), f32(oc)
    attrs = {"stride": list(s), "padding": list(p), "dilation": list(d), "groups": gr}
    y = graph_ref.KERNELS["conv2d"](x, wt, b, **attrs)
    pool = {"kernel": [2, 2], "stride": [2, 2], "padding": [1, 1]}
    mp = graph_ref.KERNELS["max_pool2d"](y, **pool)
    g = graph([("x", "float32", ["n", c, h, w])],
              [("y", "float32", ["n"] + list(y.shape[1:])), ("m", "float32", ["n"] + list(mp.shape[1:])),
               ("g", "float32", ["n", oc, 1, 1]), ("nb", "float32", ["n"] + list(y.shape[1:]))],
              [node("conv2d", ["x", "w", "b"], "y", attrs), node("max_pool2d", ["y"], "m", pool),
               node("avg_pool_global", ["y"], "g"),
               node("conv2d", ["x", "w", None], "y2", attrs),
               node("batch_norm", ["y2", "bw", "bb", "bm", "bv"], "nb", {"eps": 1e-5})])
    weights = {"w": wt, "b": b, "bw": f32(oc), "bb": f32(oc), "bm": f32(oc), "bv": np.abs(f32(oc)) + 0.5}
    check(g, weights, {"x": x}, rtol=2e-5)


def minilm_like_graph(d=32, heads=4, ffn=64, vocab=50):
    hd = d // heads
    w = {"emb": f32(vocab, d), "pos": f32(16, d), "ln_w": f32(d), "ln_b": f32(d),
         "q_w": f32(d, d, scale=0.2), "q_b": f32(d), "k_w": f32(d, d, scale=0.2), "k_b": f32(d),
         "v_w": f32(d, d, scale=0.2), "v_b": f32(d), "o_w": f32(d, d, scale=0.2), "o_b": f32(d),
         "f1_w": f32(ffn, d, scale=0.2), "f1_b": f32(ffn), "f2_w": f32(d, ffn, scale=0.2), "f2_b": f32(d)}
    N = node
    nodes = [
        N("embedding", ["ids", "emb"], "we"), N("arange_like", ["ids"], "pid", {"axis": 1}),
        N("embedding", ["pid", "pos"], "pe"), N("add", ["we", "pe"], "e"),
        N("layer_norm", ["e", "ln_w", "ln_b"], "h", {"eps": 1e-12}),
        N("cast", ["mask"], "mf", {"dtype": "float32"}),
        N("sub_scalar", ["mf"], "inv", {"value": 1.0, "reverse": True}),
        N("mul_scalar", ["inv"], "bias", {"value": -1e4}),
        N("unsqueeze", ["bias"], "b1", {"axis": 1}), N("unsqueeze", ["b1"], "b2", {"axis": 1}),
    ]
    for name in ("q", "k", "v"):
        nodes += [N("linear", ["h", f"{name}_w", f"{name}_b"], f"{name}0", path=f"attn.{name}"),
                  N("reshape", [f"{name}0"], f"{name}1", {"shape": [0, 0, heads, hd]}),
                  N("transpose", [f"{name}1"], f"{name}2", {"perm": [0, 2, 1, 3]})]
    nodes += [
        N("transpose", ["k2"], "kt", {"perm": [0, 1, 3, 2]}), N("matmul", ["q2", "kt"], "s0"),
        N("div_scalar", ["s0"], "s1", {"value": float(np.sqrt(hd))}), N("add", ["s1", "b2"], "s2"),
        N("softmax", ["s2"], "p", {"axis": -1}), N("matmul", ["p", "v2"], "c0"),
        N("transpose", ["c0"], "c1", {"perm": [0, 2, 1, 3]}), N("reshape", ["c1"], "c2", {"shape": [0, 0, -1]}),
        N("linear", ["c2", "o_w", "o_b"], "o"), N("add", ["o", "h"], "r1"),
        N("layer_norm", ["r1", "ln_w", "ln_b"], "h2", {"eps": 1e-12}),
        N("linear", ["h2", "f1_w", "f1_b"], "f1"), N("gelu", ["f1"], "f1g", {"approximate": "none"}),
        N("linear", ["f1g", "f2_w", "f2_b"], "f2"), N("add", ["f2", "h2"], "r2"),
        N("unsqueeze", ["mf"], "m3", {"axis": -1}), N("mul", ["r2", "m3"], "masked"),
        N("sum", ["masked"], "tot", {"axes": [1], "keepdim": False}),
        N("sum", ["m3"], "cnt0", {"axes": [1], "keepdim": False}),
        N("clamp", ["cnt0"], "cnt", {"min": 1e-9, "max": None}), N("div", ["tot", "cnt"], "mean"),
        N("normalize", ["mean"], "emb_out", {"axis": 1, "eps": 1e-12}),
        N("select", ["r2"], "cls", {"axis": 1, "index": 0}), N("tanh", ["cls"], "pooled"),
    ]
    g = graph([("ids", "int64", ["batch", "seq"]), ("mask", "int64", ["batch", "seq"])],
              [("emb_out", "float32", ["batch", d]), ("pooled", "float32", ["batch", d])], nodes)
    return g, w


@pytest.mark.parametrize("batch,seq", [(1, 7), (3, 16)])
def test_minilm_like_encoder(batch, seq):
    g, w = minilm_like_graph()
    ids = RNG.integers(0, 50, size=(batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[0, seq // 2:] = 0
    check(g, w, {"ids": ids, "mask": mask}, rtol=1e-5)


def test_api_specs_and_input_conversion():
    g, w = minilm_like_graph()
    native = _native.Graph(json.dumps(g), w)
    assert native.input_names == ["ids", "mask"] and native.output_names == ["emb_out", "pooled"]
    assert native.input_specs[0] == {"name": "ids", "dtype": "int64", "shape": ["batch", "seq"]}
    assert native.output_specs[0]["shape"] == ["batch", 32]
    ids = RNG.integers(0, 50, size=(2, 5)).astype(np.int32)  # converted to int64
    mask = np.ones((5, 2), dtype=np.int64).T  # not C-contiguous: converted
    out = native.run({"ids": ids, "mask": mask})
    ref = run_graph(g, w, {"ids": ids.astype(np.int64), "mask": np.ascontiguousarray(mask)})
    np.testing.assert_allclose(out["emb_out"], ref["emb_out"], atol=1e-5)


def test_run_errors():
    g, w = minilm_like_graph()
    native = _native.Graph(json.dumps(g), w)
    ids = np.zeros((2, 5), dtype=np.int64)
    with pytest.raises(SeedError, match="missing input 'mask'"):
        native.run({"ids": ids})
    with pytest.raises(SeedError, match="unknown input 'x'"):
        native.run({"ids": ids, "mask": ids, "x": ids})
    with pytest.raises(SeedError, match="'mask'.*expected int64"):
        native.run({"ids": ids, "mask": ids.astype(np.float32)})
    with pytest.raises(SeedError, match="seq"):
        native.run({"ids": ids, "mask": np.zeros((2, 6), dtype=np.int64)})
    with pytest.raises(SeedError, match=r"node 0 \(embedding.*outside \[0, 50\)"):
        native.run({"ids": ids + 50, "mask": ids})
    with pytest.raises(SeedError, match="impl"):
        native.run({"ids": ids, "mask": ids}, impl="sse9")


def test_bad_graphs_rejected():
    g, w = minilm_like_graph()

    def bad(mutate, pattern, weights=w):
        h = json.loads(json.dumps(g))
        mutate(h)
        with pytest.raises(SeedError, match=pattern):
            _native.Graph(json.dumps(h), weights)

    bad(lambda h: h["nodes"][3].update(op="plus"), r"node 3 \(plus, path 'add'\): unknown op")
    bad(lambda h: h["nodes"][4]["attrs"].update(axis=1), "unknown attribute 'axis'")
    bad(lambda h: h["nodes"][4]["attrs"].pop("eps"), "missing attribute 'eps'")
    bad(lambda h: h["nodes"][4]["attrs"].update(eps="small"), "'eps'")
    bad(lambda h: h["nodes"][0]["in"].__setitem__(1, "nope"), "'nope' is not a graph input")
    bad(lambda h: h["nodes"][1]["out"].__setitem__(0, "we"), "'we' is already used")
    bad(lambda h: h["nodes"][0]["in"].__setitem__(0, "h"), "'h' is not a graph input")  # used before defined
    bad(lambda h: h["nodes"][0]["in"].__setitem__(0, "mask_f"), "not a graph input")
    bad(lambda h: h["nodes"][0].update(extra=1), "unknown key 'extra'")
    bad(lambda h: h.update(version=2), "version")
    bad(lambda h: h["outputs"][0].update(dtype="int64"), "declared int64")
    bad(lambda h: h["nodes"][0]["in"].__setitem__(0, "emb"), "is float32, expected int64")
    bad(lambda h: None, r"bias 'q_b'", {**w, "q_b": f32(3)})
    bad(lambda h: None, r"must be 2-D", {**w, "q_w": f32(32 * 32)})
    bad(lambda h: None, r"not C-contiguous", {**w, "q_w": np.asfortranarray(f32(32, 32))})


def test_conv2d_weight_from_a_graph_input_is_checked_at_run_time():
    """A weight that is a graph input is not checked when the graph is built; the
    executor must check its rank and groups before indexing its shape."""
    attrs = {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 2}
    g = graph([("x", "float32", [1, 4, 5, 5]), ("w", "float32", ["a", "b"])],
              [("y", "float32", [1, 3, 5, 5])], [node("conv2d", ["x", "w", None], "y", attrs, "conv")])
    ex = _native.Graph(json.dumps(g), {})
    with pytest.raises(SeedError, match=r"conv.*4-D"):
        ex.run({"x": f32(1, 4, 5, 5), "w": f32(2, 1)})
    g["inputs"][1]["shape"] = [3, 2, 1, 1]
    ex = _native.Graph(json.dumps(g), {})
    with pytest.raises(SeedError, match="groups"):
        ex.run({"x": f32(1, 4, 5, 5), "w": f32(3, 2, 1, 1)})


def test_input_list_has_one_item_per_slot():
    """format.md 4: `in` has exactly one item per input; an absent optional input is null."""
    g = graph([("x", "float32", ["n", 3])], [("y", "float32", ["n", 2])],
              [node("linear", ["x", "w"], "y", path="fc")])
    with pytest.raises(SeedError, match=r"fc.*takes 3 inputs"):
        _native.Graph(json.dumps(g), {"w": f32(2, 3)})
    g["nodes"][0]["in"] = ["x", "w", None]
    out = _native.Graph(json.dumps(g), {"w": f32(2, 3)}).run({"x": f32(4, 3)})
    assert out["y"].shape == (4, 2)



# name: (inputs, nodes, weights, intermediates that fusion removes, final outputs, output rank)
FUSION_CASES = {
    # conv2d -> clamp (ReLU6), pointwise and depthwise
    "conv_relu6": (
        [("x", "float32", [2, 8, 9, 9])],
        [node("conv2d", ["x", "w", "b"], "h", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}),
         node("clamp", ["h"], "y", {"min": 0, "max": 6}),
         node("conv2d", ["y", "dw", "db"], "h2", {"stride": [2, 2], "padding": [1, 1], "dilation": [1, 1], "groups": 16}),
         node("clamp", ["h2"], "y2", {"min": 0, "max": 6})],
        {"w": f32(16, 8, 1, 1, scale=2.0), "b": f32(16), "dw": f32(16, 1, 3, 3, scale=2.0), "db": f32(16)},
        ["h", "h2"], ["y2"], 4),
    # conv2d -> add (residual): pointwise, pointwise + clamp, depthwise, the conv second,
    # and a broadcast residual (added after the conv, not in its epilogue)
    "conv_residual": (
        [("x", "float32", [2, 8, 9, 9]), ("r1", "float32", [8, 1, 1])],
        [node("conv2d", ["x", "w", "b"], "h", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}),
         node("add", ["h", "x"], "y"),
         node("conv2d", ["y", "w", None], "h2", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}),
         node("clamp", ["h2"], "c2", {"min": 0, "max": 6}),
         node("add", ["y", "c2"], "y2"),
         node("conv2d", ["y2", "dw", "db"], "h3", {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 8}),
         node("add", ["h3", "y2"], "y3"),
         node("conv2d", ["y3", "w", "b"], "h4", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}),
         node("add", ["h4", "r1"], "y4")],
        {"w": f32(8, 8, 1, 1, scale=0.5), "b": f32(8), "dw": f32(8, 1, 3, 3, scale=0.5), "db": f32(8)},
        ["h", "y", "h2", "y2", "h3", "y3", "h4"], ["y4"], 4),
    # 1x1 expansion [-> clamp] -> depthwise 3x3 [-> clamp]: stride 2 and 1, without the
    # middle clamp, a 112x112 plane (two channel blocks of the expansion), and an
    # expansion over more channels than one K chunk (its weight not read packed)
    "expand_depthwise": (
        [("x", "float32", [2, 8, 9, 9]), ("x2", "float32", [1, 4, 112, 112]), ("x3", "float32", [1, 260, 5, 5])],
        [node("conv2d", ["x", "we", "be"], "e", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}),
         node("clamp", ["e"], "ec", {"min": 0, "max": 6}),
         node("conv2d", ["ec", "wd", "bd"], "d", {"stride": [2, 2], "padding": [1, 1], "dilation": [1, 1], "groups": 16}),
         node("clamp", ["d"], "y", {"min": 0, "max": 6}),
         node("conv2d", ["x", "we", None], "e2", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}),
         node("conv2d", ["e2", "wd", None], "y2", {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 16}),
         node("conv2d", ["x2", "we2", "be"], "e3", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}),
         node("clamp", ["e3"], "ec3", {"min": 0, "max": 6}),
         node("conv2d", ["ec3", "wd", "bd"], "y3", {"stride": [2, 2], "padding": [1, 1], "dilation": [1, 1], "groups": 16}),
         node("conv2d", ["x3", "we3", "be"], "e4", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}),
         node("clamp", ["e4"], "ec4", {"min": 0, "max": 6}),
         node("conv2d", ["ec4", "wd", "bd"], "y4", {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 16})],
        {"we": f32(16, 8, 1, 1), "be": f32(16), "wd": f32(16, 1, 3, 3), "bd": f32(16), "we2": f32(16, 4, 1, 1),
         "we3": f32(16, 260, 1, 1, scale=0.1)},
        ["e", "ec", "d", "e2", "e3", "ec3", "e4", "ec4"], ["y", "y2", "y3", "y4"], 4),
    # 1x1 conv -> clamp -> add (residual) over a 7x7 plane (ragged column panels)
    "small_plane_pointwise": (
        [("x", "float32", [2, 64, 7, 7])],
        [node("conv2d", ["x", "w", "b"], "h", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}),
         node("clamp", ["h"], "c", {"min": 0, "max": 6}),
         node("add", ["x", "c"], "y")],
        {"w": f32(64, 64, 1, 1, scale=0.3), "b": f32(64)}, ["h", "c"], ["y"], 4),
    # linear -> gelu
    "linear_gelu": (
        [("x", "float32", [3, 5, 24])],
        [node("linear", ["x", "w", "b"], "h"), node("gelu", ["h"], "y", {"approximate": "none"})],
        {"w": f32(40, 24), "b": f32(40)}, ["h"], ["y"], 3),
    # add -> layer_norm (residual), with and without affine parameters, and a broadcast add
    "residual_layer_norm": (
        [("x", "float32", [2, 5, 16]), ("r", "float32", [2, 5, 16]), ("r1", "float32", [5, 16])],
        [node("add", ["x", "r"], "h"), node("layer_norm", ["h", "w", "b"], "y", {"eps": 1e-5}),
         node("add", ["r", "x"], "h2"), node("layer_norm", ["h2", None, None], "y2", {"eps": 1e-12}),
         node("add", ["x", "r1"], "h3"), node("layer_norm", ["h3", "w", None], "y3", {"eps": 1e-6})],
        {"w": f32(16), "b": f32(16)}, ["h", "h2", "h3"], ["y", "y2", "y3"], 3),
    # matmul -> mul_scalar -> add (broadcast mask) -> softmax; the mask first; no scale
    "attention_softmax": (
        [("q", "float32", [2, 3, 7, 4]), ("k", "float32", [2, 3, 4, 7]), ("mask", "float32", [2, 1, 1, 7])],
        [node("matmul", ["q", "k"], "s"), node("mul_scalar", ["s"], "t", {"value": 0.5}),
         node("add", ["t", "mask"], "u"), node("softmax", ["u"], "p", {"axis": -1}),
         node("mul_scalar", ["s"], "t2", {"value": 0.25, "reverse": True}),
         node("add", ["mask", "t2"], "u2"), node("softmax", ["u2"], "p2", {"axis": -1}),
         node("add", ["s", "s"], "u3"), node("softmax", ["u3"], "p3", {"axis": -1})],
        {}, ["t", "u", "t2", "u2", "u3"], ["p", "p2", "p3"], 4),
}


@pytest.mark.parametrize("case", sorted(FUSION_CASES))
def test_fusions_are_bit_identical(case):
    """Nodes fused at load (conv+clamp, conv+add, expansion+depthwise, linear+gelu, scale+mask+softmax) against the same
    nodes kept apart (their intermediates made graph outputs, which prevents fusion): the
    same bits for every kernel set, and within tolerance of the numpy reference."""
    inputs, nodes, weights, intermediates, finals, rank = FUSION_CASES[case]
    feeds = {name: f32(*shape, scale=3.0) for name, _, shape in inputs}
    if "mask" in feeds:
        feeds["mask"] = np.where(RNG.random(feeds["mask"].shape) < 0.3, -10000.0, 0.0).astype(np.float32)

    def outputs(names):  # symbolic shapes: the reference and the executor fill them in
        return [{"name": n, "dtype": "float32", "shape": [f"{n}_{d}" for d in range(rank)]} for n in names]

    g_fused = dict(graph(inputs, [], nodes), outputs=outputs(finals))
    g_apart = dict(graph(inputs, [], nodes), outputs=outputs(intermediates + finals))
    check(g_fused, weights, feeds)
    fused, apart = _native.Graph(json.dumps(g_fused), weights), _native.Graph(json.dumps(g_apart), weights)
    for impl in IMPLS:
        a, b = fused.run(feeds, impl=impl), apart.run(feeds, impl=impl)
        for n in finals:
            assert np.array_equal(a[n], b[n]), (case, impl, n)


def test_batch_separable_graph_runs_in_chunks_with_the_same_bits():
    """A CNN whose nodes all act per sample runs its batch in chunks of `threads` samples
    (Graph::run): threads=1 (5 chunks), 3 (chunks of 3 and 2) and 5 (one pass) give the
    same bits, and match the reference."""
    conv = {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}
    nodes = [node("conv2d", ["x", "w1", "b1"], "h1", conv), node("clamp", ["h1"], "a1", {"min": 0, "max": 6}),
             node("conv2d", ["a1", "w2", None], "h2", dict(conv, groups=8)), node("add", ["h2", "a1"], "r"),
             node("avg_pool_global", ["r"], "p"), node("flatten", ["p"], "f", {"start": 1, "end": -1}),
             node("linear", ["f", "fc", "fb"], "y")]
    g = graph([("x", "float32", ["batch", 3, 10, 10])], [("y", "float32", ["batch", 7])], nodes)
    w = {"w1": f32(8, 3, 3, 3), "b1": f32(8), "w2": f32(8, 1, 3, 3), "fc": f32(7, 8), "fb": f32(7)}
    check(g, w, {"x": f32(5, 3, 10, 10)}, threads=(1, 3, 5))
