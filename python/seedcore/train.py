"""On-device fine-tuning (issue 4): ``Finetune``, the native training loop behind
``seedcore.assemble(seed, data=..., finetune=...)`` and ``Model.finetune``,
``Model.evaluate``, the random-initialisation baseline (``init="random"``) and
task adaptation with a new head (``Model.with_new_head``).

Everything numeric runs in the native core (``seedcore._native.Trainer``): the
forward pass, the backward pass, the loss, SGD / Adam and the seeded mini-batch
order. This module checks the data, picks what trains (``seedcore.trainable``),
shows progress and writes the trained weights back into the ``Model``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import SeedError

LOSSES = ("cross_entropy", "mse", "cosine")
OPTIMIZERS = ("sgd", "adam")


@dataclass
class Finetune:
    """Settings of on-device fine-tuning with the native trainer.

    steps         mini-batch updates (each one forward + backward + optimiser step)
    lr            learning rate
    batch_size    samples per step (the whole data set when it has fewer)
    optimizer     "sgd" (with ``momentum``) or "adam"
    momentum      SGD momentum (torch.optim.SGD semantics)
    weight_decay  L2 weight decay added to the gradient
    train         what trains: "all", "head", "last:K", "biases_norms", "re:PATTERN"
                  or a list of tensor names (``seedcore.trainable``)
    loss          "cross_entropy", "mse" or "cosine"; None: cross-entropy for integer
                  labels, MSE for float targets
    threads       native threads (results do not depend on it)
    betas, eps    Adam's

    The defaults (200 SGD steps of 32 samples, lr 0.1, momentum 0.5) were tuned on
    the LeNet / MNIST acceptance task (100-300 labelled samples), for a seed and for a
    random initialisation alike; other models usually want their own.
    """

    steps: int = 200
    lr: float = 0.1
    batch_size: int = 32
    optimizer: str = "sgd"
    momentum: float = 0.5
    weight_decay: float = 0.0
    train: Any = "all"
    loss: str | None = None
    threads: int = 1
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8

    def check(self) -> None:
        def whole(name, v, lo):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise SeedError(f"Finetune: {name} must be a whole number >= {lo}, got {v!r}")
        whole("steps", self.steps, 0)
        whole("batch_size", self.batch_size, 1)
        whole("threads", self.threads, 1)
        for name, v, lo, hi in (("lr", self.lr, 0.0, math.inf), ("momentum", self.momentum, 0.0, 1.0),
                                ("weight_decay", self.weight_decay, 0.0, math.inf)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(float(v)):
                raise SeedError(f"Finetune: {name} must be a finite number, got {v!r}")
        if not self.lr > 0:
            raise SeedError(f"Finetune: lr must be > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise SeedError(f"Finetune: momentum must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise SeedError(f"Finetune: weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.optimizer not in OPTIMIZERS:
            raise SeedError(f"Finetune: optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.loss is not None and self.loss not in LOSSES:
            raise SeedError(f"Finetune: loss must be one of {', '.join(LOSSES)} or None, got {self.loss!r}")
        if len(self.betas) != 2 or not all(0 <= float(b) < 1 for b in self.betas):
            raise SeedError(f"Finetune: betas must be two numbers in [0, 1), got {self.betas!r}")


# ---------------------------------------------------------------------------
# data

def _as_inputs(model, X) -> dict[str, np.ndarray]:
    """X (one array, a sequence in graph input order, or {input name: array}) ->
    {input name: array} checked against the graph's input specs."""
    specs = model._graph("train")["inputs"]
    names = [s["name"] for s in specs]
    if isinstance(X, Mapping):
        inputs = dict(X)
    elif isinstance(X, (list, tuple)) and len(names) > 1:
        if len(X) != len(names):
            raise SeedError(f"{model.name}: data: the model takes {len(names)} inputs {names}, got {len(X)} arrays")
        inputs = dict(zip(names, X))
    else:
        if len(names) != 1:
            raise SeedError(f"{model.name}: data: the model takes {len(names)} inputs {names}; give X as a "
                            "tuple in that order or a dict")
        inputs = {names[0]: X}
    try:
        arrays = model._prepare(inputs)
    except SeedError as e:
        raise SeedError(f"data does not fit the model: {e}") from None
    n = None
    for name, a in arrays.items():
        if a.ndim == 0:
            raise SeedError(f"{model.name}: data: input {name!r} has no sample axis")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise SeedError(f"{model.name}: data: input {name!r} has {a.shape[0]} samples, others {n}")
        if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
            bad = np.nonzero(~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1))[0]
            raise SeedError(f"{model.name}: data: input {name!r} has NaN or infinite values "
                            f"(sample {int(bad[0])}{' and others' if len(bad) > 1 else ''})")
    if not n:
        raise SeedError(f"{model.name}: data: no samples")
    return arrays


def _as_target(model, y, n: int, loss: str | None) -> tuple[np.ndarray, str]:
    try:
        t = np.asarray(y)
    except Exception as e:
        raise SeedError(f"{model.name}: data: the targets are not an array ({e})") from None
    out = model._graph("train")["outputs"][0]
    if t.ndim == 0 or t.shape[0] != n:
        raise SeedError(f"{model.name}: data: {n} samples but targets of shape {t.shape} "
                        "(one target per sample, on axis 0)")
    if loss is None:
        loss = "cross_entropy" if t.dtype.kind in "iub" else "mse"
    if loss == "cross_entropy":
        if t.dtype.kind not in "iub":
            raise SeedError(f"{model.name}: data: cross_entropy needs integer class labels, got {t.dtype}")
        t = t.astype(np.int64).reshape(-1)
        if t.shape[0] != n:
            raise SeedError(f"{model.name}: data: cross_entropy needs one label per sample, got shape {np.shape(y)}")
        classes = out["shape"][-1] if out["shape"] else None
        if isinstance(classes, int):
            bad = np.nonzero((t < 0) | (t >= classes))[0]
            if len(bad):
                raise SeedError(f"{model.name}: data: label {int(t[bad[0]])} of sample {int(bad[0])} is out of range "
                                f"[0, {classes}) (the model has {classes} outputs)")
    else:
        if t.dtype.kind != "f":
            raise SeedError(f"{model.name}: data: {loss} needs float targets, got {t.dtype}")
        t = np.ascontiguousarray(t, dtype=np.float32)
        if not np.isfinite(t).all():
            bad = np.nonzero(~np.isfinite(t.reshape(n, -1)).all(axis=1))[0]
            raise SeedError(f"{model.name}: data: the targets have NaN or infinite values (sample {int(bad[0])})")
    return np.ascontiguousarray(t), loss


def _split_data(data) -> tuple[Any, Any]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise SeedError("data must be a pair (X, y): inputs and targets")
    return data[0], data[1]


# ---------------------------------------------------------------------------
# frozen prefix: the part of the graph no trainable tensor reaches runs once

_ELEMENTWISE = {"relu", "tanh", "sigmoid", "exp", "sqrt", "neg", "gelu", "clamp", "add", "sub", "mul", "div", "pow",
                "add_scalar", "sub_scalar", "mul_scalar", "div_scalar", "pow_scalar", "identity", "cast", "linear",
                "conv2d", "max_pool2d", "avg_pool_global", "batch_norm", "layer_norm", "embedding"}


def _per_sample(node: dict) -> bool:
    """Whether the node treats axis 0 (the sample) apart, so that running it on
    chunks of samples gives the same values (a conservative list)."""
    op, a = node["op"], node["attrs"]
    if op in _ELEMENTWISE:
        return True  # binary ops: a weight operand broadcasts; two sample values pair up sample by sample
    if op in ("softmax", "normalize", "select", "unsqueeze", "arange_like"):
        return op != "arange_like" and a.get("axis", 0) != 0
    if op in ("sum", "mean", "max"):
        return bool(a.get("axes")) and 0 not in a["axes"]
    if op == "flatten":
        return a.get("start", 0) >= 1
    if op == "transpose":
        return list(a.get("perm", []))[:1] == [0]
    if op == "reshape":
        return list(a.get("shape", []))[:1] == [0]
    return False


def _split_frozen(graph: dict, trainable: Sequence[str]):
    """(prefix graph, suffix graph, boundary value) when the nodes before the first
    one reached by a trainable tensor hand exactly one float value to the rest and
    the graph inputs are used only by that prefix; else None."""
    nodes = graph["nodes"]
    tset = set(trainable)
    first = next((i for i, n in enumerate(nodes) if any(v in tset for v in n["in"] if v)), None)
    if not first:
        return None
    if not all(_per_sample(n) for n in nodes[:first]):
        return None  # the prefix runs in chunks of samples: only ops that treat samples apart
    produced = {n["out"][0] for n in nodes[:first]}
    inputs = {s["name"] for s in graph["inputs"]}
    crossing = []
    for n in nodes[first:]:
        for v in n["in"]:
            if v in inputs:
                return None
            if v in produced and v not in crossing:
                crossing.append(v)
    outputs = {s["name"] for s in graph["outputs"]}
    if len(crossing) != 1 or outputs & produced:
        return None
    b = crossing[0]
    prefix = {"version": graph["version"], "inputs": copy.deepcopy(graph["inputs"]),
              "outputs": [{"name": b, "dtype": "float32", "shape": None}], "nodes": copy.deepcopy(nodes[:first])}
    suffix = {"version": graph["version"], "inputs": [{"name": b, "dtype": "float32", "shape": None}],
              "outputs": copy.deepcopy(graph["outputs"]), "nodes": copy.deepcopy(nodes[first:])}
    return prefix, suffix, b


def _features(model, prefix: dict, b: str, arrays: dict, threads: int, batch: int = 64) -> np.ndarray | None:
    """The boundary value for every sample, from the frozen prefix on the native
    executor (chunks of ``batch``); None when the prefix cannot run alone."""
    from . import _native
    from .onnx_export import graph_weights

    prefix = copy.deepcopy(prefix)
    first = next(iter(arrays.values()))
    # symbolic sizes for the boundary's shape: it is checked only for its rank
    probe_in = {k: v[:1] for k, v in arrays.items()}
    try:
        ex = None
        for r in (2, 4, 3, 1, 5, 6, 7, 8):  # the boundary's rank is known only once it runs
            prefix["outputs"][0]["shape"] = ["batch"] + [f"_d{i}" for i in range(1, r)]
            try:
                ex = _native.Graph(json.dumps(prefix), graph_weights(prefix, model._tensors))
                ex.run(probe_in, threads=threads)
                break
            except SeedError:
                ex = None
        if ex is None:
            return None
        chunks = []
        for s in range(0, first.shape[0], batch):
            chunks.append(ex.run({k: v[s:s + batch] for k, v in arrays.items()}, threads=threads)[b])
        return np.ascontiguousarray(np.concatenate(chunks))
    except SeedError:
        return None


# ---------------------------------------------------------------------------
# the loop

def _progress(progress, total: int, desc: str):
    """-> (callback(step, loss) or None, close())"""
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress) and progress is not True:
        return (lambda step, loss: progress(int(step), float(loss))), lambda: None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return None, lambda: None
    bar = tqdm(total=total, desc=desc, unit="step", leave=False)
    state = {"last": 0}

    def cb(step, loss):
        bar.update(1)
        if step - state["last"] >= 10 or step == total:
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            state["last"] = step
    return cb, bar.close


def finetune(model, data, cfg: Finetune | None = None, *, seed: int = 0, progress=True) -> np.ndarray:
    """Fine-tunes ``model`` in place on ``data = (X, y)`` with the native trainer;
    returns the per-step losses. On an error (bad data, a diverging loss) the model
    is left as it was."""
    from . import _native
    from .onnx_export import check_graph, graph_weights
    from .trainable import select_trainable

    cfg = Finetune() if cfg is None else cfg
    if not isinstance(cfg, Finetune):
        raise SeedError(f"finetune: expected a seedcore.Finetune, got {type(cfg).__name__}")
    cfg.check()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SeedError(f"finetune: seed must be a whole number >= 0, got {seed!r}")
    graph = model._graph("fine-tune")
    check_graph(graph, model._tensors, where=f"{model.name}: graph")
    X, y = _split_data(data)
    arrays = _as_inputs(model, X)
    n = next(iter(arrays.values())).shape[0]
    target, loss = _as_target(model, y, n, cfg.loss)
    weights = graph_weights(graph, model._tensors)
    trainable = select_trainable(graph, weights, cfg.train)
    if cfg.steps == 0:
        return np.zeros(0)

    run_graph, run_arrays = graph, [arrays[s["name"]] for s in graph["inputs"]]
    split = _split_frozen(graph, trainable)
    if split is not None:
        prefix, suffix, b = split
        feats = _features(model, prefix, b, arrays, cfg.threads)
        if feats is not None:
            suffix["inputs"][0]["shape"] = ["batch"] + [int(d) for d in feats.shape[1:]]
            run_graph, run_arrays = suffix, [feats]
            weights = graph_weights(suffix, model._tensors)
    try:
        trainer = _native.Trainer(json.dumps(run_graph), weights, list(trainable), threads=int(cfg.threads),
                                  seed=int(seed))
    except SeedError as e:
        raise SeedError(f"{model.name}: {e}") from None
    cb, close = _progress(progress, int(cfg.steps), f"fine-tune {model.name}")
    try:
        losses = trainer.fit(run_arrays, target, steps=int(cfg.steps), batch_size=int(cfg.batch_size), loss=loss,
                             optimizer=cfg.optimizer, lr=float(cfg.lr), momentum=float(cfg.momentum),
                             weight_decay=float(cfg.weight_decay), beta1=float(cfg.betas[0]),
                             beta2=float(cfg.betas[1]), eps=float(cfg.eps), callback=cb)
    except SeedError as e:
        raise SeedError(f"{model.name}: {e}") from None
    finally:
        close()
    new = trainer.trained_weights()
    for name, a in new.items():
        if not np.isfinite(a).all():  # pragma: no cover - the trainer stops before this
            raise SeedError(f"{model.name}: training diverged: tensor {name!r} is not finite")
    for name, a in new.items():
        model._tensors[name] = a
    model._executor = None
    return losses


def evaluate(model, X, y, *, batch_size: int = 256, threads: int | None = None) -> dict:
    """{"loss", "accuracy" (integer labels only), "n"}: the mean cross-entropy (integer
    labels) or MSE (float targets) of the model's first output, over batches."""
    arrays = _as_inputs(model, X)
    n = next(iter(arrays.values())).shape[0]
    target, loss = _as_target(model, y, n, None)
    out_name = model._graph("evaluate")["outputs"][0]["name"]
    total, correct = 0.0, 0
    for s in range(0, n, batch_size):
        out = model.run({k: v[s:s + batch_size] for k, v in arrays.items()}, threads=threads)[out_name]
        out = out.astype(np.float64).reshape(out.shape[0], -1)
        t = target[s:s + batch_size]
        if loss == "cross_entropy":
            m = out.max(axis=1, keepdims=True)
            lse = np.log(np.exp(out - m).sum(axis=1)) + m[:, 0]
            total += float((lse - out[np.arange(len(t)), t]).sum())
            correct += int((out.argmax(axis=1) == t).sum())
        else:
            total += float(((out - t.reshape(len(t), -1)) ** 2).mean(axis=1).sum())
    result = {"loss": total / n, "n": int(n)}
    if loss == "cross_entropy":
        result["accuracy"] = correct / n
    return result


# ---------------------------------------------------------------------------
# random initialisation and new heads

def _kaiming_uniform(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    bound = 1.0 / math.sqrt(max(fan_in, 1))  # torch's default: kaiming_uniform_(a=sqrt(5))
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def random_init(graph: dict | None, tensors: Mapping[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """The same tensors re-initialised as torch does by default, seeded: conv2d and
    linear weights and biases Kaiming-uniform (bound 1/sqrt(fan_in)), layer/batch norm
    scales 1 and shifts 0 (running mean 0, variance 1), embeddings N(0, 1); any other
    floating tensor N(0, 0.02) (2+ dims) or 0 (1 dim). Integer tensors are kept."""
    rng = np.random.default_rng(seed)
    out = {}
    role: dict[str, tuple] = {}
    for node in (graph or {}).get("nodes", []):
        op, ins = node["op"], node["in"]
        if op in ("conv2d", "linear") and len(ins) > 1 and ins[1] in tensors:
            w = np.shape(tensors[ins[1]])
            fan_in = int(np.prod(w[1:])) if len(w) > 1 else 1
            role.setdefault(ins[1], ("kaiming", fan_in))
            if len(ins) > 2 and ins[2]:
                role.setdefault(ins[2], ("kaiming", fan_in))
        elif op in ("layer_norm", "batch_norm"):
            kinds = ["x", "one", "zero"] if op == "layer_norm" else ["x", "one", "zero", "zero", "one"]
            for v, k in zip(ins, kinds):
                if v and v in tensors and k != "x":
                    role.setdefault(v, (k,))
        elif op == "embedding" and ins[1] in tensors:
            role.setdefault(ins[1], ("normal", 1.0))
    for name, a in tensors.items():
        a = np.asarray(a)
        if a.dtype.kind != "f":
            out[name] = a
            continue
        r = role.get(name)
        if r is None:
            r = ("normal", 0.02) if a.ndim >= 2 else ("zero",)
        if r[0] == "kaiming":
            out[name] = _kaiming_uniform(rng, a.shape, r[1])
        elif r[0] == "one":
            out[name] = np.ones(a.shape, np.float32)
        elif r[0] == "zero":
            out[name] = np.zeros(a.shape, np.float32)
        else:
            out[name] = (rng.standard_normal(a.shape) * r[1]).astype(np.float32)
    return out


def with_new_head(model, n_classes: int, *, seed: int = 0):
    """A new Model whose last linear layer (the last node reading weights, a
    ``linear``) is replaced by a freshly initialised one with ``n_classes`` outputs
    (torch's default init, seeded; same tensor names); the output spec follows."""
    from .model import Model

    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise SeedError(f"with_new_head: n_classes must be a whole number >= 1, got {n_classes!r}")
    graph = copy.deepcopy(model._graph("replace its head"))
    tensors = dict(model._tensors)
    idx = None
    for i in range(len(graph["nodes"]) - 1, -1, -1):
        node = graph["nodes"][i]
        if any(v in tensors for v in node["in"] if v):
            idx = i
            break
    if idx is None or graph["nodes"][idx]["op"] != "linear":
        op = None if idx is None else graph["nodes"][idx]["op"]
        raise SeedError(f"{model.name}: with_new_head needs a model whose last layer is linear (it ends in {op!r})")
    node = graph["nodes"][idx]
    wname = node["in"][1]
    bname = node["in"][2] if len(node["in"]) > 2 else None
    k = int(np.shape(tensors[wname])[1])
    rng = np.random.default_rng(seed)
    tensors[wname] = _kaiming_uniform(rng, (int(n_classes), k), k)
    if bname:
        tensors[bname] = _kaiming_uniform(rng, (int(n_classes),), k)
    # the head's output size flows to the graph outputs through shape-keeping nodes
    for spec in graph["outputs"]:
        if spec["shape"] and isinstance(spec["shape"][-1], int):
            spec["shape"][-1] = int(n_classes)
    m = Model(tensors, name=model.name, source=model.source, graph=graph, seed_path=model.seed_path)
    m.threads = model.threads
    from .onnx_export import check_graph

    check_graph(graph, tensors, where=f"{model.name}: graph with a new head")
    return m
