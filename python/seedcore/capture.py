"""torch ``nn.Module`` -> the seedcore graph IR (docs/format.md, section 4).

``capture(module, example_inputs)`` traces the module with ``torch.fx``
(``symbolic_trace``-style: torch.nn layers stay whole, as ``call_module`` nodes,
so a ``Conv2d`` / ``Linear`` / ``LayerNorm`` maps onto one IR op and keeps its
module path and parameter names; torch.export would decompose everything into
ATen ops and lose that mapping, for no gain on inference graphs), runs it once on
the example inputs to learn every value's dtype and rank, maps each node onto
IR ops, folds a BatchNorm that follows a Conv2d into the convolution, and
finally checks the result: the numpy reference executor (``graph_ref``) must
reproduce the module's outputs on the example inputs, and again on inputs
whose dynamic axes have a different size.  Anything it cannot express is a
``SeedError`` naming the op and the module path.

torch is imported here only; ``seedcore`` does not import this module unless
``extract`` is given ``example_inputs``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np
import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F

from . import graph_ref
from .errors import SeedError

#: the largest relative error (max |graph_ref - torch| / max |torch|) accepted at capture
CAPTURE_RTOL = 1e-4

_DTYPES = {torch.float32: "float32", torch.int64: "int64"}


class _Tensor:
    """An IR value: its name (temporary until the graph is finished)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Dim:
    """``x.size(axis)`` / ``x.shape[axis]`` of an IR value, not yet used."""

    __slots__ = ("src", "axis")

    def __init__(self, src: fx.Node, axis: int):
        self.src, self.axis = src, axis


class _Shape:
    """``x.shape`` / ``x.size()`` of an IR value."""

    __slots__ = ("src",)

    def __init__(self, src: fx.Node):
        self.src = src


class _Unsupported(Exception):
    def __init__(self, what: str, why: str = ""):
        super().__init__(what)
        self.what, self.why = what, why


def _fn_name(fn: Any) -> str:
    mod = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", None) or repr(fn)
    if mod.startswith("torch._C") or mod == "torch._tensor" or (not mod and "built-in method" in repr(fn)):
        mod = "torch"
    if mod == "_operator":
        mod = "operator"
    return f"{mod}.{name}" if mod else name


def _module_name(m: nn.Module) -> str:
    cls = type(m)
    if cls.__module__.startswith("torch.nn.") and getattr(nn, cls.__name__, None) is cls:
        return f"torch.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _pair(v, what: str) -> list:
    if isinstance(v, int):
        return [v, v]
    v = list(v)
    if len(v) == 1:
        v = v * 2
    if len(v) != 2 or not all(isinstance(x, int) for x in v):
        raise _Unsupported(what, f"expects 2 integers, got {v!r}")
    return [int(x) for x in v]


def _arg(args, kwargs, i: int, name: str, default: Any = None):
    if i < len(args):
        return args[i]
    return kwargs.get(name, default)


class _Tracer(fx.Tracer):
    """Keeps torch.nn layers whole (the default) and records every node's module path."""


class _Recorder(fx.Interpreter):
    def __init__(self, gm):
        super().__init__(gm)
        self.values: dict = {}

    def run_node(self, n):
        v = super().run_node(n)
        self.values[n] = v
        return v


class _Capture:
    def __init__(self, module: nn.Module, gm: fx.GraphModule, tracer: _Tracer, values: dict):
        self.module = module
        self.gm = gm
        self.tracer = tracer
        self.values = values
        self.nodes: list[dict] = []
        self.env: dict = {}  # fx node -> _Tensor | _Dim | _Shape | python constant
        self.counter = 0
        self.extra_weights: dict[str, np.ndarray] = {}  # tensors the graph needs beyond the state dict
        self.replaced: dict[str, np.ndarray] = {}  # folded conv weights / biases
        self.dropped: set[str] = set()  # state-dict names of folded batch norms
        self.folded: dict[fx.Node, fx.Node] = {}  # batch-norm node -> its conv node
        self.modules = dict(module.named_modules())

    # ---- helpers
    def path(self, n: fx.Node) -> str:
        if n.op == "call_module":
            return str(n.target)
        if n.op == "get_attr":
            return str(n.target).rpartition(".")[0]
        return self.tracer.node_name_to_scope.get(n.name, ("", None))[0] or ""

    def emit(self, op: str, ins: list, attrs: dict, path: str) -> _Tensor:
        out = _Tensor(f"%{self.counter}")
        self.counter += 1
        self.nodes.append({"op": op, "in": list(ins),
                           "out": [out], "attrs": attrs, "path": path})
        return out

    def val(self, n: fx.Node):
        return self.values.get(n)

    def rank(self, a) -> int:
        return self.val(a).dim()

    def dtype(self, a) -> str:
        v = self.val(a)
        dt = _DTYPES.get(v.dtype)
        if dt is None:
            raise _Unsupported(f"a {str(v.dtype).replace('torch.', '')} tensor",
                               "the graph IR has float32 and int64 tensors only")
        return dt

    def tensor(self, a, what: str = "operand") -> _Tensor:
        """The IR value of fx argument ``a`` (must be a tensor)."""
        if isinstance(a, fx.Node):
            v = self.env[a]
            if isinstance(v, _Tensor):
                return v
            raise _Unsupported(f"a {what} computed from tensor sizes",
                               "sizes read from tensors cannot be used as values; use flatten / unflatten / "
                               "reshape with -1, or torch.arange(x.size(i))")
        raise _Unsupported(f"a constant {type(a).__name__} {what}", "expected a tensor")

    def weight(self, name: str, t: torch.Tensor | None) -> str | None:
        """The name of a module tensor the graph reads (added to the weights if
        the state dict lacks it)."""
        if t is None:
            return None
        if name not in self.state_names and name not in self.replaced:
            self.extra_weights[name] = _np(t)
        return name

    def is_tensor(self, a) -> bool:
        return isinstance(a, fx.Node) and isinstance(self.env.get(a), _Tensor)

    def const(self, a):
        """A python constant argument, resolving ``x.dim()`` style values."""
        if isinstance(a, fx.Node):
            v = self.env[a]
            if isinstance(v, (_Tensor, _Dim, _Shape)):
                raise _Unsupported("a tensor or size where a constant is needed")
            return v
        if isinstance(a, (list, tuple)):
            return type(a)(self.const(x) for x in a)
        return a

    # ---- batch-norm folding
    def plan_folding(self) -> None:
        for n in self.gm.graph.nodes:
            if n.op != "call_module" or not isinstance(self.modules.get(n.target), nn.BatchNorm2d):
                continue
            src = n.args[0] if n.args else None
            if not (isinstance(src, fx.Node) and src.op == "call_module"
                    and type(self.modules.get(src.target)) is nn.Conv2d and len(src.users) == 1):
                continue
            bn = self.modules[n.target]
            if not bn.track_running_stats or bn.running_mean is None:
                continue
            conv = self.modules[src.target]
            with torch.no_grad():
                w = conv.weight.detach().double()
                b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
                scale = (bn.weight.detach().double() if bn.weight is not None else 1.0) / torch.sqrt(
                    bn.running_var.detach().double() + bn.eps)
                shift = bn.bias.detach().double() if bn.bias is not None else 0.0
                wf = (w * scale.reshape(-1, 1, 1, 1)).float()
                bf = ((b - bn.running_mean.detach().double()) * scale + shift).float()
            self.replaced[f"{src.target}.weight"] = wf.numpy()
            self.replaced[f"{src.target}.bias"] = bf.numpy()
            self.folded[n] = src
            for k in bn.state_dict():
                self.dropped.add(f"{n.target}.{k}")

    # ---- node mapping
    def run(self) -> None:
        self.state_names = set(self.module.state_dict())
        self.plan_folding()
        for n in self.gm.graph.nodes:
            if n.op in ("placeholder", "output"):
                continue
            try:
                self.env[n] = self.map_node(n)
            except _Unsupported as e:
                where = self.path(n) or "(top level)"
                raise SeedError(
                    f"capture: {e.what} at module path {where!r} (fx node {n.name!r}) cannot be expressed "
                    f"in the seedcore graph IR" + (f": {e.why}" if e.why else "")) from None

    def map_node(self, n: fx.Node):
        if n.op == "get_attr":
            t = _fetch_attr(self.gm, n.target)
            if not isinstance(t, torch.Tensor):
                return t
            name = str(n.target)
            if name in self.dropped:
                raise _Unsupported(f"batch-norm tensor {name!r} read directly", "its batch norm was folded")
            self.weight(name, t)
            return _Tensor(name)
        if n.op == "call_module":
            return self.map_module(n, self.modules[n.target])
        if n.op == "call_function":
            return self.map_call(n, _fn_name(n.target), n.target, list(n.args), dict(n.kwargs))
        if n.op == "call_method":
            return self.map_call(n, f"torch.Tensor.{n.target}", str(n.target), list(n.args), dict(n.kwargs))
        raise _Unsupported(f"fx node kind {n.op!r}")

    def map_module(self, n: fx.Node, m: nn.Module):
        p = str(n.target)
        x = n.args[0] if n.args else None
        name = _module_name(m)
        if n in self.folded:
            return self.env[self.folded[n]]
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity)):
            return self.env[x]
        if len(n.args) != 1 or n.kwargs:
            raise _Unsupported(name, "called with more than one argument")
        X = self.tensor(x)
        if type(m) is nn.Linear:
            return self.emit("linear", [X.name, self.weight(f"{p}.weight", m.weight),
                                        self.weight(f"{p}.bias", m.bias)], {}, p)
        if type(m) is nn.Conv2d:
            if m.padding_mode != "zeros":
                raise _Unsupported(name, f"padding_mode {m.padding_mode!r} (only 'zeros')")
            pad = _conv_padding(m.padding, m.kernel_size, m.dilation, m.stride, name)
            bias = m.bias
            if f"{p}.bias" in self.replaced:
                bias = True
            b = f"{p}.bias" if bias is True else self.weight(f"{p}.bias", bias)
            return self.emit("conv2d", [X.name, self.weight(f"{p}.weight", m.weight), b],
                             {"stride": _pair(m.stride, name), "padding": pad,
                              "dilation": _pair(m.dilation, name), "groups": int(m.groups)}, p)
        if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d):
            if not m.track_running_stats or m.running_mean is None:
                raise _Unsupported(name, "track_running_stats=False uses batch statistics at inference")
            c = m.num_features
            w = self.weight(f"{p}.weight", m.weight if m.weight is not None else torch.ones(c))
            b = self.weight(f"{p}.bias", m.bias if m.bias is not None else torch.zeros(c))
            return self.emit("batch_norm", [X.name, w, b, self.weight(f"{p}.running_mean", m.running_mean),
                                            self.weight(f"{p}.running_var", m.running_var)],
                             {"eps": float(m.eps)}, p)
        if type(m) is nn.LayerNorm:
            if len(m.normalized_shape) != 1:
                raise _Unsupported(name, f"normalized_shape {tuple(m.normalized_shape)} (only the last axis)")
            return self.emit("layer_norm", [X.name, self.weight(f"{p}.weight", m.weight),
                                            self.weight(f"{p}.bias", getattr(m, "bias", None))],
                             {"eps": float(m.eps)}, p)
        if type(m) is nn.Embedding:
            if m.max_norm is not None:
                raise _Unsupported(name, "max_norm renormalises rows at lookup")
            return self.emit("embedding", [X.name, self.weight(f"{p}.weight", m.weight)], {}, p)
        if type(m) is nn.ReLU:
            return self.emit("relu", [X.name], {}, p)
        if type(m) in (nn.ReLU6, nn.Hardtanh):
            return self.emit("clamp", [X.name], {"min": float(m.min_val), "max": float(m.max_val)}, p)
        if type(m) is nn.Tanh:
            return self.emit("tanh", [X.name], {}, p)
        if type(m) is nn.Sigmoid:
            return self.emit("sigmoid", [X.name], {}, p)
        if type(m) is nn.SiLU:
            s = self.emit("sigmoid", [X.name], {}, p)
            return self.emit("mul", [X.name, s.name], {}, p)
        if type(m) is nn.GELU:
            return self.emit("gelu", [X.name], {"approximate": str(m.approximate)}, p)
        if type(m) is nn.Softmax:
            if m.dim is None:
                raise _Unsupported(name, "dim=None")
            return self.emit("softmax", [X.name], {"axis": int(m.dim)}, p)
        if type(m) is nn.Flatten:
            return self.emit("flatten", [X.name], {"start": int(m.start_dim), "end": int(m.end_dim)}, p)
        if type(m) is nn.MaxPool2d:
            return self.max_pool(X, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                                 m.return_indices, name, p)
        if type(m) is nn.AdaptiveAvgPool2d:
            return self.global_pool(X, m.output_size, name, p)
        raise _Unsupported(name)

    def max_pool(self, X, kernel, stride, padding, dilation, ceil_mode, return_indices, name, p):
        if ceil_mode or return_indices or _pair(dilation, name) != [1, 1]:
            raise _Unsupported(name, "ceil_mode, return_indices and dilation are not supported")
        k = _pair(kernel, name)
        s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _pair(stride, name)
        return self.emit("max_pool2d", [X.name], {"kernel": k, "stride": s, "padding": _pair(padding, name)}, p)

    def global_pool(self, X, output_size, name, p):
        if output_size not in (1, (1, 1), [1, 1], (1,), [1]):
            raise _Unsupported(name, f"output_size {output_size!r} (only 1, the global average)")
        return self.emit("avg_pool_global", [X.name], {}, p)

    # ---- functions and methods
    def map_call(self, n: fx.Node, name: str, target, args: list, kwargs: dict):
        p = self.path(n)
        fn = target
        key = _CANON.get(fn) if not isinstance(fn, str) else _METHOD_ALIASES.get(fn)
        if key is None:
            raise _Unsupported(name)

        if key == "getattr":
            obj, attr = args[0], args[1]
            if attr == "shape":
                self.tensor(obj)
                return _Shape(obj)
            if attr == "ndim":
                return self.rank(obj)
            if attr == "T" and self.rank(obj) == 2:
                return self.emit("transpose", [self.tensor(obj).name], {"perm": [1, 0]}, p)
            raise _Unsupported(f"torch.Tensor.{attr}")
        if key == "getitem":
            return self.getitem(n, args[0], args[1], p)
        if key == "size":
            self.tensor(args[0])
            d = _arg(args, kwargs, 1, "dim")
            if d is None:
                return _Shape(args[0])
            return _Dim(args[0], int(d) % self.rank(args[0]))
        if key in ("dim", "ndimension"):
            return self.rank(args[0])
        if key == "arange":
            return self.arange(args, kwargs, name, p)
        if key in ("alias", "dropout"):
            if key == "dropout" and _arg(args, kwargs, 2, "training", True) and self.module.training:
                raise _Unsupported(name, "dropout in training mode")
            return self.env[args[0]] if isinstance(args[0], fx.Node) else args[0]

        x = args[0] if args else kwargs.get("input")
        if key in ("add", "sub", "mul", "div", "pow"):
            other = _arg(args, kwargs, 1, "other" if key != "pow" else "exponent")
            if key in ("add", "sub") and _arg(args, kwargs, 2, "alpha", 1) != 1:
                raise _Unsupported(name, "alpha != 1")
            if key == "div" and _arg(args, kwargs, 2, "rounding_mode") is not None:
                raise _Unsupported(name, "rounding_mode")
            return self.binary(n, key, x, other, name, p)
        if key in ("rsub",):
            return self.binary(n, "sub", args[1], x, name, p)
        if key == "matmul":
            a, b = self.tensor(x), self.tensor(args[1] if len(args) > 1 else kwargs["other"])
            if self.rank(x) < 2 or self.rank(args[1] if len(args) > 1 else kwargs["other"]) < 2:
                raise _Unsupported(name, "matmul of a 1-D tensor (the IR's matmul needs both ≥ 2-D)")
            return self.emit("matmul", [a.name, b.name], {}, p)
        X = self.tensor(x)
        if key in ("relu", "tanh", "sigmoid", "exp", "sqrt", "neg"):
            self.need_float(x, name) if key != "neg" else None
            return self.emit(key, [X.name], {}, p)
        if key == "rsqrt":
            s = self.emit("sqrt", [X.name], {}, p)
            return self.emit("div_scalar", [s.name], {"value": 1.0, "reverse": True}, p)
        if key == "silu":
            s = self.emit("sigmoid", [X.name], {}, p)
            return self.emit("mul", [X.name, s.name], {}, p)
        if key == "relu6":
            return self.emit("clamp", [X.name], {"min": 0.0, "max": 6.0}, p)
        if key == "hardtanh":
            lo, hi = _arg(args, kwargs, 1, "min_val", -1.0), _arg(args, kwargs, 2, "max_val", 1.0)
            return self.emit("clamp", [X.name], {"min": float(lo), "max": float(hi)}, p)
        if key in ("clamp", "clamp_min", "clamp_max"):
            if key == "clamp":
                lo, hi = _arg(args, kwargs, 1, "min"), _arg(args, kwargs, 2, "max")
            elif key == "clamp_min":
                lo, hi = _arg(args, kwargs, 1, "min"), None
            else:
                lo, hi = None, _arg(args, kwargs, 1, "max")
            lo, hi = self.const(lo), self.const(hi)
            if not all(v is None or isinstance(v, (int, float)) for v in (lo, hi)):
                raise _Unsupported(name, "tensor bounds (only numbers)")
            return self.emit("clamp", [X.name], {"min": None if lo is None else float(lo),
                                                  "max": None if hi is None else float(hi)}, p)
        if key == "gelu":
            return self.emit("gelu", [X.name], {"approximate": str(_arg(args, kwargs, 1, "approximate", "none"))}, p)
        if key == "softmax":
            d = _arg(args, kwargs, 1, "dim")
            if d is None or _arg(args, kwargs, 3 if fn is F.softmax else 2, "dtype") is not None:
                raise _Unsupported(name, "dim=None or dtype=")
            return self.emit("softmax", [X.name], {"axis": int(d)}, p)
        if key in ("sum", "mean", "amax"):
            dims = _arg(args, kwargs, 1, "dim")
            keep = bool(_arg(args, kwargs, 2, "keepdim", False))
            if kwargs.get("dtype") is not None:
                raise _Unsupported(name, "dtype=")
            if dims is None:
                dims = list(range(self.rank(x)))
            dims = [int(dims)] if isinstance(dims, int) else [int(d) for d in dims]
            if key == "mean":
                self.need_float(x, name)
            return self.emit({"amax": "max"}.get(key, key), [X.name], {"axes": dims, "keepdim": keep}, p)
        if key == "layer_norm":
            shape = list(_arg(args, kwargs, 1, "normalized_shape"))
            if len(shape) != 1:
                raise _Unsupported(name, f"normalized_shape {shape} (only the last axis)")
            w, b = _arg(args, kwargs, 2, "weight"), _arg(args, kwargs, 3, "bias")
            return self.emit("layer_norm", [X.name, None if w is None else self.tensor(w).name,
                                            None if b is None else self.tensor(b).name],
                             {"eps": float(_arg(args, kwargs, 4, "eps", 1e-5))}, p)
        if key == "normalize":
            if float(_arg(args, kwargs, 1, "p", 2.0)) != 2.0 or _arg(args, kwargs, 4, "out") is not None:
                raise _Unsupported(name, "p != 2")
            return self.emit("normalize", [X.name], {"axis": int(_arg(args, kwargs, 2, "dim", 1)),
                                                     "eps": float(_arg(args, kwargs, 3, "eps", 1e-12))}, p)
        if key == "embedding":
            w = _arg(args, kwargs, 1, "weight")
            if _arg(args, kwargs, 3, "max_norm") is not None:
                raise _Unsupported(name, "max_norm")
            return self.emit("embedding", [X.name, self.tensor(w).name], {}, p)
        if key == "linear":
            w, b = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
            return self.emit("linear", [X.name, self.tensor(w).name, None if b is None else self.tensor(b).name], {}, p)
        if key == "conv2d":
            w, b = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
            wv = self.val(w)
            stride = _pair(_arg(args, kwargs, 3, "stride", 1), name)
            dil = _pair(_arg(args, kwargs, 5, "dilation", 1), name)
            pad = _conv_padding(_arg(args, kwargs, 4, "padding", 0), tuple(wv.shape[2:]), dil, stride, name)
            return self.emit("conv2d", [X.name, self.tensor(w).name, None if b is None else self.tensor(b).name],
                             {"stride": stride, "padding": pad, "dilation": dil,
                              "groups": int(_arg(args, kwargs, 6, "groups", 1))}, p)
        if key == "max_pool2d":
            return self.max_pool(X, _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                                 _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 4, "dilation", 1),
                                 _arg(args, kwargs, 5, "ceil_mode", False),
                                 _arg(args, kwargs, 6, "return_indices", False), name, p)
        if key == "adaptive_avg_pool2d":
            return self.global_pool(X, self.const(_arg(args, kwargs, 1, "output_size")), name, p)
        if key == "flatten":
            return self.emit("flatten", [X.name], {"start": int(_arg(args, kwargs, 1, "start_dim", 0)),
                                                   "end": int(_arg(args, kwargs, 2, "end_dim", -1))}, p)
        if key == "unflatten":
            d, sizes = int(_arg(args, kwargs, 1, "dim")), [int(s) for s in self.const(_arg(args, kwargs, 2, "sizes"))]
            r = self.rank(x)
            d %= r
            after = list(self.val(x).shape[d + 1:])
            if after and -1 not in sizes and len(after) == 1:
                after = [-1]
            shape = [0] * d + sizes + [int(s) for s in after]
            return self.emit("reshape", [X.name], {"shape": shape}, p)
        if key in ("view", "reshape"):
            shape = args[1:] if key == "view" or len(args) > 1 else [kwargs.get("shape")]
            if len(shape) == 1 and isinstance(shape[0], (list, tuple, fx.Node)) and not (
                    isinstance(shape[0], fx.Node) and isinstance(self.env[shape[0]], _Dim)):
                shape = shape[0]
                if isinstance(shape, fx.Node):
                    sv = self.env[shape]
                    if isinstance(sv, _Shape) and sv.src is x:
                        return X
                    raise _Unsupported(name, "a shape taken from another tensor")
            return self.emit("reshape", [X.name], {"shape": self.reshape_items(x, list(shape), name)}, p)
        if key in ("permute",):
            dims = args[1:] if len(args) > 1 else [kwargs.get("dims")]
            if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
                dims = dims[0]
            return self.emit("transpose", [X.name], {"perm": [int(d) for d in dims]}, p)
        if key in ("transpose", "t"):
            r = self.rank(x)
            if key == "t":
                d0, d1 = 0, 1
                if r < 2:
                    return X
            else:
                d0, d1 = int(_arg(args, kwargs, 1, "dim0")) % r, int(_arg(args, kwargs, 2, "dim1")) % r
            perm = list(range(r))
            perm[d0], perm[d1] = perm[d1], perm[d0]
            return self.emit("transpose", [X.name], {"perm": perm}, p)
        if key == "unsqueeze":
            return self.emit("unsqueeze", [X.name], {"axis": int(_arg(args, kwargs, 1, "dim"))}, p)
        if key == "squeeze":
            d = _arg(args, kwargs, 1, "dim")
            if d is None or isinstance(d, (list, tuple)):
                raise _Unsupported(name, "squeeze without a single dim")
            r = self.rank(x)
            d = int(d) % r
            if self.val(x).shape[d] != 1:
                return X
            # merging a size-1 axis into a neighbour removes it, whatever the other sizes
            start = d - 1 if d > 0 else 0
            return self.emit("flatten", [X.name], {"start": start, "end": start + 1}, p) if r > 1 else \
                self.emit("reshape", [X.name], {"shape": []}, p)
        if key in ("float", "long", "to", "type", "type_as"):
            return self.cast(n, x, X, p, name)
        raise _Unsupported(name)

    def need_float(self, x, name):
        if self.dtype(x) != "float32":
            raise _Unsupported(name, "on an int64 tensor")

    def cast(self, n, x, X, p, name):
        want = self.val(n)
        if not isinstance(want, torch.Tensor):
            raise _Unsupported(name)
        src, dst = self.dtype(x), _DTYPES.get(want.dtype)
        if dst is None:
            raise _Unsupported(f"{name} to {want.dtype}", "the graph IR has float32 and int64 tensors only")
        return X if src == dst else self.emit("cast", [X.name], {"dtype": dst}, p)

    def as_dtype(self, a, want: str, p: str) -> _Tensor:
        X = self.tensor(a)
        return X if self.dtype(a) == want else self.emit("cast", [X.name], {"dtype": want}, p)

    def binary(self, n, op, a, b, name, p):
        a, b = self.const(a) if not isinstance(a, fx.Node) else a, self.const(b) if not isinstance(b, fx.Node) else b
        ta, tb = self.is_tensor(a), self.is_tensor(b)
        if isinstance(a, fx.Node) and not ta or isinstance(b, fx.Node) and not tb:
            if not (ta or tb):
                raise _Unsupported(name, "arithmetic on sizes read from tensors")
            raise _Unsupported(name, "arithmetic with a size read from a tensor; sizes are not values in the IR")
        out = self.val(n)
        want = _DTYPES.get(out.dtype) if isinstance(out, torch.Tensor) else None
        if want is None:
            raise _Unsupported(name, f"result dtype {getattr(out, 'dtype', type(out).__name__)}")
        if ta and tb:
            return self.emit(op, [self.as_dtype(a, want, p).name, self.as_dtype(b, want, p).name], {}, p)
        x, v, reverse = (a, b, False) if ta else (b, a, True)
        if not isinstance(v, (int, float, bool)):
            raise _Unsupported(name, f"a {type(v).__name__} operand")
        X = self.as_dtype(x, want, p)
        attrs = {"value": float(v) if want == "float32" else int(v)}
        if reverse:
            attrs["reverse"] = True
        return self.emit(op + "_scalar", [X.name], attrs, p)

    def reshape_items(self, x, items: list, name: str) -> list:
        out = []
        for i, d in enumerate(items):
            if isinstance(d, fx.Node):
                v = self.env[d]
                if isinstance(v, _Dim) and v.src is x and v.axis == i:
                    out.append(0)
                    continue
                if isinstance(v, int):
                    d = v
                else:
                    raise _Unsupported(name, f"item {i} of the shape is a size read from a tensor; only "
                                             "x.size(i) of the tensor being reshaped, at position i, is expressible "
                                             "(as 0); use -1 or flatten / unflatten")
            if not isinstance(d, int) or d < -1:
                raise _Unsupported(name, f"shape item {d!r}")
            if d == 0:
                raise _Unsupported(name, "a literal 0 in the shape (an empty axis)")
            out.append(int(d))
        return out

    def arange(self, args, kwargs, name, p):
        if len(args) != 1 or any(kwargs.get(k) not in (None,) for k in ("dtype", "out")) or \
                set(kwargs) - {"dtype", "device", "layout", "requires_grad", "pin_memory", "out"}:
            raise _Unsupported(name, "only torch.arange(x.size(i)) (one argument) is expressible")
        end = args[0]
        if isinstance(end, fx.Node) and isinstance(self.env[end], _Dim):
            dim = self.env[end]
            return self.emit("arange_like", [self.tensor(dim.src).name], {"axis": dim.axis}, p)
        raise _Unsupported(name, "only torch.arange(x.size(i)) is expressible (arange_like)")

    def getitem(self, n, obj, idx, p):
        if isinstance(obj, fx.Node) and isinstance(self.env[obj], _Shape):
            if not isinstance(idx, int):
                raise _Unsupported("slicing a tensor's shape")
            src = self.env[obj].src
            return _Dim(src, idx % self.rank(src))
        if isinstance(obj, fx.Node) and not isinstance(self.env[obj], _Tensor):
            v = self.env[obj]
            if isinstance(v, (list, tuple)):
                return v[idx]
            raise _Unsupported("indexing a non-tensor value")
        X = self.tensor(obj)
        items = list(idx) if isinstance(idx, tuple) else [idx]
        r = self.rank(obj)
        n_axes = sum(1 for it in items if isinstance(it, (int, slice)))
        axis = 0  # axis of the current (partially indexed) value
        cur = X
        for it in items:
            if it is Ellipsis:
                axis += r - n_axes
            elif it is None:
                cur = self.emit("unsqueeze", [cur.name], {"axis": axis}, p)
                axis += 1
            elif isinstance(it, slice):
                if it != slice(None):
                    raise _Unsupported("slicing a tensor (x[a:b])", "the graph IR has no slice op")
                axis += 1
            elif isinstance(it, int):
                cur = self.emit("select", [cur.name], {"axis": axis, "index": int(it)}, p)
            else:
                raise _Unsupported(f"indexing a tensor with a {type(it).__name__}")
        return cur


def _fetch_attr(root: nn.Module, target: str):
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _np(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.float()
    return t.contiguous().numpy().copy()


def _conv_padding(padding, kernel, dilation, stride, name) -> list:
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0]
        if padding == "same":
            k, d = _pair(kernel, name), _pair(dilation, name)
            if _pair(stride, name) != [1, 1] or any((d[i] * (k[i] - 1)) % 2 for i in range(2)):
                raise _Unsupported(name, "padding='same' that is not symmetric")
            return [d[i] * (k[i] - 1) // 2 for i in range(2)]
        raise _Unsupported(name, f"padding {padding!r}")
    return _pair(padding, name)


def _build_canon() -> dict:
    c = {
        operator.add: "add", torch.add: "add", operator.sub: "sub", torch.sub: "sub", torch.subtract: "sub",
        operator.mul: "mul", torch.mul: "mul", torch.multiply: "mul", operator.truediv: "div", torch.div: "div",
        torch.true_divide: "div", torch.divide: "div", operator.pow: "pow", torch.pow: "pow", torch.rsub: "rsub",
        operator.matmul: "matmul", torch.matmul: "matmul", torch.bmm: "matmul", torch.mm: "matmul",
        operator.neg: "neg", torch.neg: "neg", operator.getitem: "getitem", getattr: "getattr",
        torch.relu: "relu", F.relu: "relu", F.relu6: "relu6", F.hardtanh: "hardtanh",
        torch.clamp: "clamp", torch.clip: "clamp", torch.clamp_min: "clamp_min", torch.clamp_max: "clamp_max",
        torch.tanh: "tanh", F.tanh: "tanh", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
        torch.exp: "exp", torch.sqrt: "sqrt", torch.rsqrt: "rsqrt", F.gelu: "gelu", F.silu: "silu",
        torch.softmax: "softmax", F.softmax: "softmax", torch.sum: "sum", torch.mean: "mean", torch.amax: "amax",
        F.layer_norm: "layer_norm", F.normalize: "normalize", F.embedding: "embedding", F.linear: "linear",
        F.conv2d: "conv2d", F.max_pool2d: "max_pool2d", F.adaptive_avg_pool2d: "adaptive_avg_pool2d",
        F.dropout: "dropout", torch.flatten: "flatten", torch.reshape: "reshape", torch.transpose: "transpose",
        torch.permute: "permute", torch.unsqueeze: "unsqueeze", torch.squeeze: "squeeze", torch.arange: "arange",
        torch.unflatten: "unflatten", torch.t: "t",
    }
    if hasattr(F, "_max_pool2d"):
        c[F._max_pool2d] = "max_pool2d"
    return c


_CANON = _build_canon()
_METHOD_ALIASES = {"contiguous": "alias", "detach": "alias", "cpu": "alias", "clone": "alias",
                   "add": "add", "sub": "sub", "mul": "mul", "div": "div", "pow": "pow", "matmul": "matmul",
                   "neg": "neg", "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "exp": "exp",
                   "sqrt": "sqrt", "rsqrt": "rsqrt", "softmax": "softmax", "sum": "sum", "mean": "mean",
                   "amax": "amax", "clamp": "clamp", "clip": "clamp", "clamp_min": "clamp_min",
                   "clamp_max": "clamp_max", "flatten": "flatten", "unflatten": "unflatten", "view": "view",
                   "reshape": "reshape", "permute": "permute", "transpose": "transpose", "t": "t",
                   "unsqueeze": "unsqueeze", "squeeze": "squeeze", "size": "size", "dim": "dim",
                   "ndimension": "ndimension", "float": "float", "long": "long", "to": "to", "type": "type",
                   "type_as": "type_as"}


# ---------------------------------------------------------------------------


def _as_tensor(x, where: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise SeedError(f"capture: {where} is a {type(x).__name__}; example inputs must be tensors or numpy arrays")
    if x.dtype not in _DTYPES:
        hint = " (use int64 ids)" if not x.is_floating_point() else " (use float32)"
        raise SeedError(f"capture: {where} is {str(x.dtype).replace('torch.', '')}; graph inputs are float32 or "
                        f"int64{hint}")
    return x.detach().cpu()


def _flatten_outputs(out, output_names):
    if isinstance(out, Mapping):
        keys, vals = [str(k) for k in out.keys()], list(out.values())
    elif isinstance(out, (list, tuple)):
        keys, vals = None, list(out)
    else:
        keys, vals = None, [out]
    if output_names is not None:
        names = [str(s) for s in output_names]
        if len(names) != len(vals):
            raise SeedError(f"capture: {len(names)} output names for {len(vals)} outputs")
    elif keys is not None:
        names = keys
    else:
        names = ["output"] if len(vals) == 1 else [f"output{k}" for k in range(len(vals))]
    return names, vals


def _dynamic_spec(names: list, example: list, dynamic_axes) -> dict:
    """input name -> {axis: symbol}"""
    if dynamic_axes is None:
        return {nm: ({0: "batch"} if t.dim() >= 1 else {}) for nm, t in zip(names, example)}
    if not isinstance(dynamic_axes, Mapping):
        raise SeedError("capture: dynamic_axes must be a dict {input name: {axis: symbol}} (or a list of axes)")
    out = {}
    for nm, t in zip(names, example):
        spec = dynamic_axes.get(nm, {})
        if isinstance(spec, (list, tuple)):
            spec = {a: ("batch" if a % max(t.dim(), 1) == 0 else f"{nm}_dim{a % t.dim()}") for a in spec}
        axes = {}
        for a, sym in dict(spec).items():
            if not isinstance(a, int) or not -t.dim() <= a < t.dim():
                raise SeedError(f"capture: dynamic_axes[{nm!r}]: axis {a!r} is out of range for a {t.dim()}-D input")
            if not isinstance(sym, str) or not sym:
                raise SeedError(f"capture: dynamic_axes[{nm!r}][{a}]: the symbol must be a non-empty string")
            axes[a % t.dim()] = sym
        out[nm] = axes
    unknown = sorted(set(dynamic_axes) - set(names))
    if unknown:
        raise SeedError(f"capture: dynamic_axes names unknown input(s) {unknown} (inputs: {names})")
    return out


def _resize(a: np.ndarray, sizes: dict) -> np.ndarray:
    for axis, new in sizes.items():
        a = np.take(a, np.arange(new) % a.shape[axis], axis=axis)
    return a


def rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref| (0 for an all-zero reference equal to ``got``)."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return math.inf
    if ref.size == 0:
        return 0.0
    diff = float(np.max(np.abs(got - ref)))
    scale = float(np.max(np.abs(ref)))
    return diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)


def capture(module: nn.Module, example_inputs, input_names: Sequence[str] | None = None,
            output_names: Sequence[str] | None = None, dynamic_axes: Mapping | None = None,
            *, check: bool = True, rtol: float = CAPTURE_RTOL) -> tuple[dict, dict]:
    """Traces ``module`` into the graph IR.  Returns ``(graph, weights)``:
    ``graph`` is the JSON-ready dict of docs/format.md section 4; ``weights`` maps
    every tensor name the graph reads (and the rest of the state dict, minus folded
    batch norms) to a numpy array (floating ones float32).

    example_inputs  a tensor / numpy array, or a tuple of them (float32 or int64),
                    passed positionally to ``forward``.
    input_names     names of the graph inputs (default: forward's argument names).
    output_names    names of the outputs (default: "output", or "output0"...; a
                    dict output gives its keys).
    dynamic_axes    {input name: {axis: symbol}} (or a list of axes); default: axis
                    0 of every input is "batch".  When given, it lists every
                    dynamic axis (inputs it does not name are fixed).
    check           verify with ``graph_ref`` that the graph reproduces the
                    module's outputs (max abs error ≤ ``rtol`` × max |output|) on
                    the example inputs and on inputs whose dynamic axes are one
                    longer; a mismatch is a ``SeedError``.

    The module is captured in inference mode: ``eval()`` is set while tracing and
    checking, and the previous mode restored afterwards."""
    if not isinstance(module, nn.Module):
        raise SeedError(f"capture: expected a torch.nn.Module, got {type(module).__name__}")
    ex = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [example_inputs]
    ex = [_as_tensor(x, f"example input {i}") for i, x in enumerate(ex)]
    was_training = {m: m.training for m in module.modules()}
    module.eval()
    try:
        return _capture(module, ex, input_names, output_names, dynamic_axes, check, rtol)
    finally:
        for m, t in was_training.items():
            m.training = t


def _capture(module, ex, input_names, output_names, dynamic_axes, check, rtol):
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as e:  # data-dependent control flow, unsupported Python on proxies ...
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SeedError(f"capture: torch.fx cannot trace {type(module).__name__}.forward: "
                        f"{type(e).__name__}: {msg[:400]}") from None
    gm = fx.GraphModule(tracer.root, graph)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(ex):
        raise SeedError(f"capture: forward takes {len(placeholders)} inputs "
                        f"({', '.join(str(n.target) for n in placeholders)}), {len(ex)} example inputs given")
    names = [str(n.target).lstrip("*") for n in placeholders] if input_names is None else [str(s) for s in input_names]
    if len(names) != len(ex) or len(set(names)) != len(names):
        raise SeedError(f"capture: input_names {names} must name the {len(ex)} inputs once each")
    dyn = _dynamic_spec(names, ex, dynamic_axes)

    rec = _Recorder(gm)
    with torch.no_grad():
        try:
            rec.run(*ex)
        except Exception as e:
            raise SeedError(f"capture: running the traced module on the example inputs failed: "
                            f"{type(e).__name__}: {str(e)[:400]}") from None
    cap = _Capture(module, gm, tracer, rec.values)
    for n, name in zip(placeholders, names):
        cap.env[n] = _Tensor(name)
    cap.run()

    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    out_names, out_args = _flatten_outputs(out_node.args[0], output_names)
    out_values = []
    for k, (oname, a) in enumerate(zip(out_names, out_args)):
        if not isinstance(a, fx.Node) or not isinstance(cap.env.get(a), _Tensor):
            raise SeedError(f"capture: output {k} ({oname!r}) is not a tensor computed by the module")
        if _DTYPES.get(rec.values[a].dtype) is None:
            raise SeedError(f"capture: output {k} ({oname!r}) is {rec.values[a].dtype}; outputs are float32 or int64")
        out_values.append(cap.env[a])

    state = {k: _np(v) for k, v in module.state_dict().items() if k not in cap.dropped}
    state.update(cap.replaced)
    for k, v in cap.extra_weights.items():
        state.setdefault(k, v)

    g = _finish(cap, names, ex, dyn, out_names, out_values, rec, out_args, state)
    if check:
        _check(module, g, state, ex, names, dyn, rtol)
    return g, state


def _finish(cap, names, ex, dyn, out_names, out_values, rec, out_args, state) -> dict:
    taken = set(state) | set(names)
    for o in out_names:
        if o in taken:
            raise SeedError(f"capture: output name {o!r} is already the name of an input or a weight")
    if len(set(out_names)) != len(out_names):
        raise SeedError(f"capture: output names {out_names} are not unique")
    # outputs that are inputs or weights, or the same value twice, get an identity node
    nodes = cap.nodes
    produced = {nd["out"][0].name for nd in nodes}
    final: dict[str, str] = {}  # temporary name -> output name
    for o, t in zip(out_names, out_values):
        if t.name not in produced or t.name in final:
            t = cap.emit("identity", [t.name], {}, "")
        final[t.name] = o
    # name every node output: graph outputs by their names, the rest v0, v1, ...
    rename: dict[str, str] = {}
    k = 0
    for nd in nodes:
        tmp = nd["out"][0].name
        if tmp in final:
            rename[tmp] = final[tmp]
        else:
            while f"v{k}" in taken:
                k += 1
            rename[tmp] = f"v{k}"
            k += 1
    out_nodes = [{"op": nd["op"], "in": [None if x is None else rename.get(x, x) for x in nd["in"]],
                  "out": [rename[nd["out"][0].name]], "attrs": _integral(nd["attrs"]), "path": nd["path"]}
                 for nd in nodes]
    inputs = [{"name": nm, "dtype": _DTYPES[t.dtype],
               "shape": [dyn[nm].get(a, int(s)) for a, s in enumerate(t.shape)]}
              for nm, t in zip(names, ex)]
    outputs = []
    for o, a in zip(out_names, out_args):
        v = rec.values[a]
        outputs.append({"name": o, "dtype": _DTYPES[v.dtype], "shape": [int(s) for s in v.shape]})
    return {"version": 1, "inputs": inputs, "outputs": outputs, "nodes": out_nodes}


def _integral(v):
    """Integral floats -> ints (the metadata writes integers without a fraction, section 2)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    if isinstance(v, dict):
        return {k: _integral(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_integral(x) for x in v]
    return v


def _run_torch(module, arrays):
    with torch.no_grad():
        out = module(*[torch.from_numpy(a) for a in arrays])
    _, vals = _flatten_outputs(out, None)
    return [v.detach().cpu().numpy() for v in vals]


def _compare(g, state, feeds, ref, rtol, when):
    try:
        got = graph_ref.run_graph(g, state, feeds)
    except SeedError as e:
        raise SeedError(f"capture: the captured graph fails in the reference executor {when}: {e}") from None
    for spec, r in zip(g["outputs"], ref):
        y = got[spec["name"]]
        err = rel_error(y, r)
        if not err <= rtol:
            raise SeedError(f"capture: output {spec['name']!r} of the captured graph differs from the module's "
                            f"{when}: relative error {err:.3g} > {rtol:g} (shapes {list(y.shape)} vs "
                            f"{list(r.shape)})")
    return got


def _check(module, g, state, ex, names, dyn, rtol) -> None:
    arrays = [t.numpy() for t in ex]
    ref = _run_torch(module, arrays)
    _compare(g, state, dict(zip(names, arrays)), ref, rtol, "on the example inputs")
    # the dynamic axes: every symbol one longer (a different increment per symbol),
    # and output dims that follow a symbol become that symbol
    symbols = sorted({s for axes in dyn.values() for s in axes.values()})
    if not symbols:
        return
    sizes0 = {}
    for nm, t in zip(names, ex):
        for a, s in dyn[nm].items():
            sizes0.setdefault(s, int(t.shape[a]))
    if any(v == 0 for v in sizes0.values()):
        return
    sizes1 = {s: sizes0[s] + 1 + i for i, s in enumerate(symbols)}
    arrays1 = [_resize(a, {ax: sizes1[s] for ax, s in dyn[nm].items()}) for nm, a in zip(names, arrays)]
    try:
        ref1 = _run_torch(module, arrays1)
    except Exception as e:
        raise SeedError(f"capture: the module does not run when the dynamic axes change size ({sizes1}): "
                        f"{type(e).__name__}: {str(e)[:300]}; give dynamic_axes for the axes that may vary") from None
    for spec, r0, r1 in zip(g["outputs"], ref, ref1):
        shape = []
        for k, (d0, d1) in enumerate(zip(r0.shape, r1.shape)):
            if d0 == d1:
                shape.append(int(d0))
                continue
            match = [s for s in symbols if sizes0[s] == d0 and sizes1[s] == d1]
            shape.append(match[0] if match else f"{spec['name']}_dim{k}")
        if len(r0.shape) != len(r1.shape):
            raise SeedError(f"capture: output {spec['name']!r} changes rank with the dynamic axes")
        spec["shape"] = shape
    _compare(g, state, dict(zip(names, arrays1)), ref1, rtol, f"with dynamic sizes {sizes1}")
