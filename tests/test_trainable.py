"""The trainable-set rule shared by fine-tuning and annealing."""

import numpy as np
import pytest

from seedcore import SeedError
from seedcore.trainable import select_trainable

GRAPH = {"nodes": [
    {"op": "embedding", "in": ["ids", "emb.weight"], "out": ["e"]},
    {"op": "layer_norm", "in": ["e", "ln.weight", "ln.bias"], "out": ["h"]},
    {"op": "linear", "in": ["h", "fc1.weight", "fc1.bias"], "out": ["a"]},
    {"op": "gelu", "in": ["a"], "out": ["b"]},
    {"op": "gather", "in": ["b", "index"], "out": ["c"]},
    {"op": "linear", "in": ["c", "fc2.weight", "fc2.bias"], "out": ["y"]},
]}
W = {"emb.weight": np.zeros((10, 4), np.float32), "ln.weight": np.ones(4, np.float32),
     "ln.bias": np.zeros(4, np.float32), "fc1.weight": np.zeros((8, 4), np.float32),
     "fc1.bias": np.zeros(8, np.float32), "index": np.zeros(2, np.int64),
     "fc2.weight": np.zeros((3, 8), np.float32), "fc2.bias": np.zeros(3, np.float32)}


@pytest.mark.parametrize("spec, want", [
    ("all", [n for n in W if n != "index"]),
    ("head", ["fc2.weight", "fc2.bias"]),
    ("last:2", ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]),
    ("last:99", [n for n in W if n != "index"]),
    ("biases_norms", ["ln.weight", "ln.bias", "fc1.bias", "fc2.bias"]),
    ("re:^fc", ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]),
    (["fc2.bias", "emb.weight"], ["emb.weight", "fc2.bias"]),
])
def test_selection(spec, want):
    assert select_trainable(GRAPH, W, spec) == want


@pytest.mark.parametrize("spec, message", [
    ("last:0", "whole number"), ("last:x", "whole number"), ("heads", "unknown selection"),
    ("re:(", "bad regular expression"), ("re:nothing", "selects no trainable"),
    (["index"], "not floating"), (["missing"], "no tensor named"), (3, "expected a string"),
])
def test_bad_specs(spec, message):
    with pytest.raises(SeedError, match=message):
        select_trainable(GRAPH, W, spec)


def test_layer_specs_need_a_graph():
    assert select_trainable(None, W, "all") == [n for n in W if n != "index"]
    with pytest.raises(SeedError, match="needs the model's graph"):
        select_trainable(None, W, "head")
