"""``Model(x)`` / ``Model.run`` / specs: numpy in, numpy out on the native executor;
input errors and weights-only seeds give SeedError."""

import numpy as np
import pytest

import seedcore
from seedcore import SeedError
from seedcore.model import Model

from test_onnx import attention_graph, attention_ref, mlp_graph, mlp_ref

rng = np.random.default_rng(1)


def two_output_graph():
    graph, w = mlp_graph()
    graph = dict(graph, outputs=graph["outputs"] + [{"name": "h1", "dtype": "float32", "shape": ["batch", 16]}])
    return graph, w


def test_weights_only_model_says_how_to_capture(small_state_dict, tmp_path):
    model = seedcore.assemble(seedcore.extract(small_state_dict, codec="q8", progress=False))
    assert model.graph is None
    for call in (lambda: model(np.zeros((1, 40), np.float32)), lambda: model.run({"x": np.zeros(1)}),
                 lambda: model.input_specs, lambda: model.output_specs,
                 lambda: model.export_onnx(tmp_path / "m.onnx")):
        with pytest.raises(SeedError, match=r"weights only.*extract\(module, example_inputs=\.\.\.\)"):
            call()


def test_specs():
    graph, w = attention_graph()[:2]
    model = Model(w, graph=graph)
    assert model.input_specs == [{"name": "ids", "dtype": "int64", "shape": ["batch", "seq"]},
                                 {"name": "mask", "dtype": "int64", "shape": ["batch", "seq"]}]
    assert model.output_specs == [{"name": "emb", "dtype": "float32", "shape": ["batch", 8]}]
    model.input_specs[0]["shape"].append(3)  # copies: the graph is untouched
    assert graph["inputs"][0]["shape"] == ["batch", "seq"]
    assert "graph of" in repr(model)


def test_input_errors_are_seed_errors():
    graph, w = attention_graph()[:2]
    model = Model(w, graph=graph, name="enc")
    ids = np.zeros((2, 5), np.int64)
    cases = [
        (lambda: model(ids), "missing \\['mask'\\]"),
        (lambda: model(ids, ids, ids), "takes 2 input"),
        (lambda: model(ids, mask=ids, ids=ids), "given twice"),
        (lambda: model.run({"ids": ids, "mask": ids, "other": ids}), "unknown \\['other'\\]"),
        (lambda: model(ids.astype(np.float32), ids), "'ids' must be an integer array"),
        (lambda: model(ids, np.zeros((2, 5, 1), np.int64)), "'mask' must have 2 dimensions"),
        (lambda: model(ids, np.zeros((2, 4), np.int64)), "'seq'.*is 4.*is 5"),
        (lambda: model.run([ids, ids]), "takes a dict"),
    ]
    for call, match in cases:
        with pytest.raises(SeedError, match=match):
            call()
    mlp = Model(mlp_graph()[1], graph=mlp_graph()[0])
    with pytest.raises(SeedError, match="'x' must have shape \\(batch, 8\\)"):
        mlp(np.zeros((3, 7), np.float32))
    with pytest.raises(SeedError, match="floating"):
        mlp(np.zeros((3, 8), np.int64))


def test_call_and_run_match_torch():
    graph, w = mlp_graph()
    model = Model(w, graph=graph, name="mlp")
    for batch in (1, 4):
        x = rng.standard_normal((batch, 8)).astype(np.float32)
        y = model(x)
        assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == (batch, 4)
        np.testing.assert_allclose(y, mlp_ref(w, x), rtol=0, atol=1e-5)
        np.testing.assert_array_equal(model.run({"x": x})["y"], y)
        np.testing.assert_array_equal(model(x=x.astype(np.float64), threads=2), y)  # cast to float32
    graph, w, (H, D) = attention_graph()
    enc = Model(w, graph=graph)
    ids = rng.integers(0, 11, (3, 6))
    mask = np.ones((3, 6), np.int32)
    mask[0, 4:] = 0
    got = enc(ids, mask)  # int32 / platform ints are accepted for int64 inputs
    np.testing.assert_allclose(got, attention_ref(w, ids.astype(np.int64), mask.astype(np.int64), H, D),
                               rtol=0, atol=1e-5)
    np.testing.assert_array_equal(enc(mask=mask, ids=ids), got)


def test_several_outputs_and_determinism():
    graph, w = two_output_graph()
    model = Model(w, graph=graph)
    x = rng.standard_normal((2, 8)).astype(np.float32)
    y, h1 = model(x)
    out = model.run({"x": x}, threads=2)
    assert list(out) == ["y", "h1"]
    np.testing.assert_array_equal(out["y"], y)
    np.testing.assert_array_equal(out["h1"], h1)
    np.testing.assert_array_equal(model(x)[0], y)


def test_native_and_onnx_agree(tmp_path):
    import onnxruntime as ort
    graph, w, _ = attention_graph()
    model = Model(w, graph=graph)
    model.export_onnx(tmp_path / "enc.onnx", opset=18)
    sess = ort.InferenceSession(str(tmp_path / "enc.onnx"), providers=["CPUExecutionProvider"])
    ids = rng.integers(0, 11, (2, 9)).astype(np.int64)
    mask = np.ones_like(ids)
    np.testing.assert_allclose(sess.run(None, {"ids": ids, "mask": mask})[0], model(ids, mask),
                               rtol=0, atol=1e-5)


def test_bad_graph_is_a_seed_error():
    graph, w = mlp_graph()
    del w["l1.bias"]
    with pytest.raises(SeedError, match="l1.bias"):
        Model(w, graph=graph)(np.zeros((1, 8), np.float32))


def test_threads_zero_means_all_cores(tmp_path):
    graph, weights = mlp_graph()
    from seedcore.model import Model
    model = Model(weights, name="mlp", graph=graph)
    x = rng.standard_normal((5, graph["inputs"][0]["shape"][1])).astype(np.float32)
    np.testing.assert_array_equal(model.run({graph["inputs"][0]["name"]: x}, threads=0)[graph["outputs"][0]["name"]],
                                  model.run({graph["inputs"][0]["name"]: x}, threads=1)[graph["outputs"][0]["name"]])
