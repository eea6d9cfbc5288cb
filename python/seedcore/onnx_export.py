"""Graph IR (docs/format.md section 4) + assembled weights -> a standard ONNX model.

Built with the ``onnx`` package only (``onnx.helper``): every IR node becomes one or
a few ONNX nodes valid at the chosen opset, the weights the graph uses become
float32 / int64 initializers, symbolic dimensions become ``dim_param``.  The result
passes ``onnx.checker.check_model(full_check=True)`` before it is written
(atomically).  Used by ``Model.export_onnx``.

Opset-dependent choices (supported opsets: ``MIN_OPSET`` ... ``MAX_OPSET``):
  gelu        ``Gelu`` at opset >= 20, otherwise Div/Erf/Add/Mul (or the tanh formula)
  layer_norm  ``LayerNormalization`` at >= 17 when it has a weight, otherwise decomposed
  reductions  ``axes`` an input of ReduceMean/ReduceMax/ReduceL2 from opset 18
              (ReduceSum: from 13), an attribute before
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np

from .errors import SeedError
from .format import atomic_output

MIN_OPSET = 13
MAX_OPSET = 21

_FLOAT, _INT = "float32", "int64"

# ops whose output has the dtype of their first input
_UNARY = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "exp": "Exp", "sqrt": "Sqrt",
          "neg": "Neg", "identity": "Identity"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow"}
_SCALAR = {"add_scalar": "Add", "sub_scalar": "Sub", "mul_scalar": "Mul", "div_scalar": "Div",
           "pow_scalar": "Pow"}
_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax"}

def _onnx():
    try:
        import onnx
        from onnx import helper
    except ImportError:
        raise SeedError('ONNX export needs the onnx package: pip install "seedcore[onnx]"') from None
    return onnx, helper


def graph_weights(graph: Mapping, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weights the graph's nodes use, as the IR's dtypes: float32 for floating
    tensors, int64 for integer and bool ones (section 4: integer tensors are int64)."""
    used: dict[str, np.ndarray] = {}
    for node in graph.get("nodes", []):
        for name in node.get("in", []):
            if name is not None and name in weights and name not in used:
                a = np.asarray(weights[name])
                if a.dtype != np.float32 and a.dtype.kind == "f":
                    a = a.astype(np.float32)
                elif a.dtype.kind in "iub" and a.dtype != np.int64:
                    a = a.astype(np.int64)
                used[name] = a
    return used


def check_graph(graph: Any, weights: Mapping[str, np.ndarray], where: str = "graph") -> None:
    """Validates ``graph`` completely (section 4) against the weights' shapes, with
    the reference validator; ``SeedError`` naming the node, op and path."""
    from .graph_ref import validate_graph

    try:
        validate_graph(graph, {k: np.shape(v) for k, v in weights.items()},
                       {k: np.asarray(v).dtype for k, v in weights.items()})
    except SeedError as e:
        raise SeedError(f"{where}: {e}" if where else str(e)) from None


class _Builder:
    def __init__(self, graph: Mapping, weights: Mapping[str, np.ndarray], opset: int):
        self.onnx, self.helper = _onnx()
        self.opset = opset
        self.graph = graph
        self.weights = weights
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.dtype: dict[str, str] = {}
        self.taken: set[str] = set(weights)
        for spec in graph["inputs"]:
            self.taken.add(spec["name"])
            self.dtype[spec["name"]] = spec["dtype"]
        for node in graph["nodes"]:
            self.taken.update(node["out"])
        self.counter = 0
        self.consts: dict[tuple, str] = {}
        self.transposed: dict[str, str] = {}

    # -- names and constants -------------------------------------------------------
    def fresh(self, hint: str) -> str:
        while True:
            self.counter += 1
            name = f"{hint}__{self.counter}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def weight(self, name: str) -> str:
        if name not in self.inits:
            self.inits[name] = self.weights[name]
            self.dtype[name] = _INT if self.weights[name].dtype == np.int64 else _FLOAT
        return name

    def value(self, name: str) -> str:
        return self.weight(name) if name in self.weights and name not in self.dtype else name

    def const(self, values, dtype: str) -> str:
        a = np.asarray(values, dtype=np.float32 if dtype == _FLOAT else np.int64)
        key = (dtype, a.shape, a.tobytes())
        if key not in self.consts:
            name = self.fresh("const")
            self.inits[name] = a
            self.dtype[name] = dtype
            self.consts[key] = name
        return self.consts[key]

    def add(self, op: str, ins: list, out: str | None = None, dtype: str = _FLOAT, **attrs) -> str:
        out = out or self.fresh(op.lower())
        self.nodes.append(self.helper.make_node(op, ins, [out], **attrs))
        self.dtype[out] = dtype
        return out

    def reduce(self, op: str, x: str, axes, keepdims: int, out=None) -> str:
        axes = [int(a) for a in axes]
        dtype = self.dtype[x]
        axes_as_input = self.opset >= (13 if op == "ReduceSum" else 18)
        if axes_as_input:
            ins = [x] + ([self.const(axes, _INT)] if axes else [])
            return self.add(op, ins, out, dtype, keepdims=keepdims)
        kw = {"axes": axes} if axes else {}
        return self.add(op, [x], out, dtype, keepdims=keepdims, **kw)

    def transposed_weight(self, name: str):
        """The value of the initializer holding weight ``name`` transposed (2-D)."""
        return np.ascontiguousarray(self.weights[name].T)

    def initializer(self, name: str, value):
        """The TensorProto of initializer ``name``."""
        return self.onnx.numpy_helper.from_array(np.asarray(value, order="C"), name)

    # -- the nodes ---------------------------------------------------------------
    def build(self):
        for node in self.graph["nodes"]:
            ins = [None if n is None else self.value(n) for n in node["in"]]
            out = node["out"][0]
            handler = getattr(self, "op_" + node["op"], None)
            if handler is None:
                handler = self.generic
            handler(node, ins, out, node["attrs"])
        return self.model()

    def generic(self, node, ins, out, attrs):
        op = node["op"]
        if op in _UNARY:
            self.add(_UNARY[op], ins, out, self.dtype[ins[0]])
        elif op in _BINARY:
            a, b = ins
            if self.dtype[a] != self.dtype[b]:
                self.refuse(node, f"operands have different dtypes ({self.dtype[a]} and {self.dtype[b]})")
            if op in ("div", "pow") and self.dtype[a] == _INT:
                self.refuse(node, "div and pow on int64 tensors are not defined; cast to float32 first")
            self.add(_BINARY[op], [a, b], out, self.dtype[a])
        elif op in _SCALAR:
            x, v = ins[0], attrs["value"]
            if self.dtype[x] == _INT:
                if op in ("div_scalar", "pow_scalar") or not float(v).is_integer():
                    self.refuse(node, f"value {v!r} on an int64 tensor is not defined; cast to float32 first")
                c = self.const(int(v), _INT)
            else:
                c = self.const(float(v), _FLOAT)
            pair = [c, x] if attrs.get("reverse", False) else [x, c]
            self.add(_SCALAR[op], pair, out, self.dtype[x])
        elif op in _REDUCE:
            x = ins[0]
            if op == "mean" and self.dtype[x] == _INT:
                self.refuse(node, "mean of an int64 tensor is not defined; cast to float32 first")
            if not attrs["axes"]:  # an empty list reduces nothing (numpy's axis=())
                self.add("Identity", [x], out, self.dtype[x])
            else:
                self.reduce(_REDUCE[op], x, attrs["axes"], int(bool(attrs["keepdim"])), out)
        else:  # pragma: no cover - validate_graph knows every op
            self.refuse(node, "the op cannot be mapped to ONNX")

    def refuse(self, node, why: str):
        raise SeedError(f"ONNX export: {node['op']} (from {node['path']!r}): {why}")

    def op_linear(self, node, ins, out, attrs):
        x, w, b = (ins + [None])[:3]
        if w in self.inits and w in self.weights:
            if w not in self.transposed:
                name = self.fresh(w + ".T")
                self.inits[name] = self.transposed_weight(w)
                self.dtype[name] = _FLOAT
                self.transposed[w] = name
            wt = self.transposed[w]  # W itself is dropped unless another node uses it
        else:
            wt = self.add("Transpose", [w], perm=[1, 0])
        if b is None:
            self.add("MatMul", [x, wt], out)
        else:
            self.add("Add", [self.add("MatMul", [x, wt]), b], out)

    def op_matmul(self, node, ins, out, attrs):
        self.add("MatMul", ins, out)

    def op_conv2d(self, node, ins, out, attrs):
        w = self.weights.get(node["in"][1])
        kw = {}
        if w is not None and w.ndim == 4:
            kw["kernel_shape"] = [int(w.shape[2]), int(w.shape[3])]
        p = [int(v) for v in attrs["padding"]]
        self.add("Conv", [i for i in ins if i is not None], out,
                 strides=[int(v) for v in attrs["stride"]], pads=p + p,
                 dilations=[int(v) for v in attrs["dilation"]], group=int(attrs["groups"]), **kw)

    def op_max_pool2d(self, node, ins, out, attrs):
        p = [int(v) for v in attrs["padding"]]
        self.add("MaxPool", ins, out, kernel_shape=[int(v) for v in attrs["kernel"]],
                 strides=[int(v) for v in attrs["stride"]], pads=p + p)

    def op_avg_pool_global(self, node, ins, out, attrs):
        self.add("GlobalAveragePool", ins, out)

    def op_batch_norm(self, node, ins, out, attrs):
        self.add("BatchNormalization", ins, out, epsilon=float(attrs["eps"]))

    def op_layer_norm(self, node, ins, out, attrs):
        x, w, b = (ins + [None, None])[:3]
        eps = float(attrs["eps"])
        if self.opset >= 17 and w is not None:
            self.add("LayerNormalization", [x, w] + ([b] if b is not None else []), out,
                     axis=-1, epsilon=eps)
            return
        mu = self.reduce("ReduceMean", x, [-1], 1)
        d = self.add("Sub", [x, mu])
        var = self.reduce("ReduceMean", self.add("Mul", [d, d]), [-1], 1)
        y = self.add("Div", [d, self.add("Sqrt", [self.add("Add", [var, self.const(eps, _FLOAT)])])])
        if w is not None:
            y = self.add("Mul", [y, w], None if b is not None else out)
        if b is not None:
            y = self.add("Add", [y, b], out)
        if y != out:
            self.add("Identity", [y], out)

    def op_embedding(self, node, ins, out, attrs):
        ids, w = ins
        self.add("Gather", [w, ids], out, self.dtype[w], axis=0)

    def op_arange_like(self, node, ins, out, attrs):
        n = self.add("Gather", [self.add("Shape", ins, dtype=_INT), self.const(int(attrs["axis"]), _INT)],
                     dtype=_INT, axis=0)
        self.add("Range", [self.const(0, _INT), n, self.const(1, _INT)], out, _INT)

    def op_select(self, node, ins, out, attrs):
        self.add("Gather", [ins[0], self.const(int(attrs["index"]), _INT)], out, self.dtype[ins[0]],
                 axis=int(attrs["axis"]))

    def op_gelu(self, node, ins, out, attrs):
        x = ins[0]
        approx = attrs["approximate"]
        if approx not in ("none", "tanh"):
            raise SeedError(f"ONNX export: gelu (from {node['path']!r}): approximate must be "
                            f"'none' or 'tanh', got {approx!r}")
        if self.opset >= 20:
            self.add("Gelu", [x], out, approximate=approx)
            return
        half = self.add("Mul", [x, self.const(0.5, _FLOAT)])
        if approx == "none":
            inner = self.add("Erf", [self.add("Div", [x, self.const(math.sqrt(2.0), _FLOAT)])])
        else:
            cube = self.add("Mul", [self.add("Mul", [x, x]), x])
            s = self.add("Add", [x, self.add("Mul", [cube, self.const(0.044715, _FLOAT)])])
            inner = self.add("Tanh", [self.add("Mul", [s, self.const(math.sqrt(2.0 / math.pi), _FLOAT)])])
        self.add("Mul", [half, self.add("Add", [inner, self.const(1.0, _FLOAT)])], out)

    def op_clamp(self, node, ins, out, attrs):
        x = ins[0]
        dt = self.dtype[x]
        lo, hi = attrs["min"], attrs["max"]
        conv = float if dt == _FLOAT else int  # int64: bounds truncated, as the reference
        args = [x, "" if lo is None else self.const(conv(lo), dt), "" if hi is None else self.const(conv(hi), dt)]
        while args[-1] == "":
            args.pop()
        self.add("Clip", args, out, dt)

    def op_softmax(self, node, ins, out, attrs):
        self.add("Softmax", ins, out, axis=int(attrs["axis"]))

    def op_normalize(self, node, ins, out, attrs):
        x = ins[0]
        n = self.reduce("ReduceL2", x, [int(attrs["axis"])], 1)
        self.add("Div", [x, self.add("Max", [n, self.const(float(attrs["eps"]), _FLOAT)])], out)

    def op_reshape(self, node, ins, out, attrs):
        self.add("Reshape", [ins[0], self.const([int(v) for v in attrs["shape"]], _INT)], out,
                 self.dtype[ins[0]])

    def op_flatten(self, node, ins, out, attrs):
        x = ins[0]
        start, end = int(attrs["start"]), int(attrs["end"])
        dt = self.dtype[x]
        if start >= 0 and end == -1:  # the common case: keep the leading sizes (0 = copy)
            self.add("Reshape", [x, self.const([0] * start + [-1], _INT)], out, dt)
            return
        shape = self.add("Shape", [x], dtype=_INT)
        big = 2**62
        parts = []
        if start != 0:
            parts.append(self.add("Slice", [shape, self.const([0], _INT), self.const([start], _INT)], dtype=_INT))
        parts.append(self.const([-1], _INT))
        if end != -1:
            parts.append(self.add("Slice", [shape, self.const([end + 1], _INT), self.const([big], _INT)],
                                  dtype=_INT))
        target = parts[0] if len(parts) == 1 else self.add("Concat", parts, dtype=_INT, axis=0)
        self.add("Reshape", [x, target], out, dt)

    def op_transpose(self, node, ins, out, attrs):
        self.add("Transpose", ins, out, self.dtype[ins[0]], perm=[int(v) for v in attrs["perm"]])

    def op_unsqueeze(self, node, ins, out, attrs):
        self.add("Unsqueeze", [ins[0], self.const([int(attrs["axis"])], _INT)], out, self.dtype[ins[0]])

    def op_cast(self, node, ins, out, attrs):
        to = attrs["dtype"]
        if to not in (_FLOAT, _INT):
            raise SeedError(f"ONNX export: cast (from {node['path']!r}): dtype must be float32 or int64, "
                            f"got {to!r}")
        self.add("Cast", ins, out, to, to=1 if to == _FLOAT else 7)

    # -- the model ---------------------------------------------------------------
    def model(self):
        onnx, helper = self.onnx, self.helper
        tp = {_FLOAT: onnx.TensorProto.FLOAT, _INT: onnx.TensorProto.INT64}

        def vi(spec):
            return helper.make_tensor_value_info(spec["name"], tp[spec["dtype"]], list(spec["shape"]))

        outputs = []
        for spec in self.graph["outputs"]:
            name = spec["name"]
            produced = self.dtype.get(name)
            if produced is not None and produced != spec["dtype"]:
                raise SeedError(f"ONNX export: output {name!r} is {produced}, its spec says {spec['dtype']}")
            if name in {s["name"] for s in self.graph["inputs"]}:  # an input passed through
                alias = self.fresh(name)
                self.add("Identity", [name], alias, spec["dtype"])
                spec = dict(spec, name=alias)
            outputs.append(vi(spec))
        used = {i for n in self.nodes for i in n.input}
        inits = [self.initializer(name, a) for name, a in self.inits.items() if name in used]
        g = helper.make_graph(self.nodes, "seedcore", [vi(s) for s in self.graph["inputs"]], outputs,
                              initializer=inits)
        ir = min(_ir_version_for(self.opset), onnx.IR_VERSION)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)],
                                 ir_version=ir, producer_name="seedcore")


def _ir_version_for(opset: int) -> int:
    import onnx

    for _release, ir, ai_onnx, *_ in onnx.helper.VERSION_TABLE:
        if ai_onnx >= opset:
            return ir
    return onnx.IR_VERSION


def build_onnx(graph: Mapping, weights: Mapping[str, np.ndarray], opset: int = 17,
               name: str = "model", check: bool = True):
    """The ``onnx.ModelProto`` for ``graph`` over ``weights`` (checked with
    ``onnx.checker.check_model(full_check=True)`` unless ``check`` is false)."""
    onnx, _ = _onnx()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise SeedError(f"ONNX export: opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    check_graph(graph, weights, where=f"{name}: graph")
    used = graph_weights(graph, weights)
    model = _Builder(graph, used, opset).build()
    model.graph.name = name or "seedcore"
    if check:
        size = model.ByteSize()
        if size >= 2**31 - 2**20:
            raise SeedError(f"ONNX export: the model is {size / 2**30:.1f} GiB; models over 2 GiB "
                            "(ONNX external data) are not supported yet")
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:  # onnx.checker.ValidationError, shape inference errors
            raise SeedError(f"ONNX export of {name!r} at opset {opset} failed the ONNX checker: "
                            f"{str(e).strip().splitlines()[0] if str(e).strip() else e!r}") from None
    return model


def export_onnx(path: str | os.PathLike, graph: Mapping, weights: Mapping[str, np.ndarray],
                opset: int = 17, name: str = "model") -> int:
    """Writes the ONNX model atomically to ``path``; returns its size in bytes."""
    path = os.fspath(path)
    model = build_onnx(graph, weights, opset=opset, name=name)
    data = model.SerializeToString()
    with atomic_output(path) as f:
        f.write(data)
    return len(data)
