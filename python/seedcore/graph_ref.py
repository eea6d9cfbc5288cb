"""The numpy reference executor of the graph IR (docs/format.md, section 4).

``validate_graph`` checks a graph's structure exactly as the spec says;
``run_graph`` runs it on named weights and inputs.  Straightforward numpy:
float32 math (float32 storage, BLAS accumulation), int64 ids.  The native
executor and the ONNX exporter are tested against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np

from .errors import SeedError

GRAPH_VERSION = 1
GRAPH_KEYS = ("version", "inputs", "outputs", "nodes")
SPEC_KEYS = ("name", "dtype", "shape")
NODE_KEYS = ("op", "in", "out", "attrs", "path")
VALUE_DTYPES = ("float32", "int64")

_REQUIRED = object()


def _is_int(v) -> bool:
    return type(v) is int


def _is_num(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _int_list(n: int | None, minimum: int | None = None):
    def check(v):
        if not isinstance(v, list) or (n is not None and len(v) != n) or not all(_is_int(x) for x in v):
            return f"a list of {n if n is not None else 'any number of'} integers"
        if minimum is not None and any(x < minimum for x in v):
            return f"integers ≥ {minimum}"
        return None
    return check


def _int(minimum: int | None = None):
    def check(v):
        if not _is_int(v):
            return "an integer"
        if minimum is not None and v < minimum:
            return f"an integer ≥ {minimum}"
        return None
    return check


def _number(v):
    return None if _is_num(v) else "a finite number"


def _number_nonneg(v):
    return None if _is_num(v) and v >= 0 else "a finite number >= 0"


def _number_or_null(v):
    return None if v is None or _is_num(v) else "a finite number or null"


def _bool(v):
    return None if type(v) is bool else "true or false"


def _one_of(*choices):
    def check(v):
        return None if v in choices and isinstance(v, str) else "one of " + ", ".join(map(repr, choices))
    return check


def _positive_number(v):
    return None if _is_num(v) and v > 0 else "a positive finite number"


# op -> (number of inputs, indices of optional inputs, {attr: (check, default)})
_UNARY = (1, (), {})
OPS: dict[str, tuple[int, tuple, dict]] = {
    "linear": (3, (2,), {}),
    "matmul": (2, (), {}),
    "conv2d": (3, (2,), {"stride": (_int_list(2, 1), _REQUIRED), "padding": (_int_list(2, 0), _REQUIRED),
                         "dilation": (_int_list(2, 1), _REQUIRED), "groups": (_int(1), _REQUIRED)}),
    "max_pool2d": (1, (), {"kernel": (_int_list(2, 1), _REQUIRED), "stride": (_int_list(2, 1), _REQUIRED),
                           "padding": (_int_list(2, 0), _REQUIRED)}),
    "avg_pool_global": _UNARY,
    "batch_norm": (5, (), {"eps": (_number_nonneg, _REQUIRED)}),
    "layer_norm": (3, (1, 2), {"eps": (_number_nonneg, _REQUIRED)}),
    "embedding": (2, (), {}),
    "arange_like": (1, (), {"axis": (_int(), _REQUIRED)}),
    "select": (1, (), {"axis": (_int(), _REQUIRED), "index": (_int(), _REQUIRED)}),
    "relu": _UNARY, "tanh": _UNARY, "sigmoid": _UNARY, "exp": _UNARY, "sqrt": _UNARY, "neg": _UNARY,
    "gelu": (1, (), {"approximate": (_one_of("none", "tanh"), _REQUIRED)}),
    "clamp": (1, (), {"min": (_number_or_null, _REQUIRED), "max": (_number_or_null, _REQUIRED)}),
    "softmax": (1, (), {"axis": (_int(), _REQUIRED)}),
    "normalize": (1, (), {"axis": (_int(), _REQUIRED), "eps": (_number_nonneg, _REQUIRED)}),
    "reshape": (1, (), {"shape": (_int_list(None, -1), _REQUIRED)}),
    "flatten": (1, (), {"start": (_int(), _REQUIRED), "end": (_int(), _REQUIRED)}),
    "transpose": (1, (), {"perm": (_int_list(None), _REQUIRED)}),
    "unsqueeze": (1, (), {"axis": (_int(), _REQUIRED)}),
    "cast": (1, (), {"dtype": (_one_of("float32", "int64"), _REQUIRED)}),
    "identity": _UNARY,
}
for _op in ("add", "sub", "mul", "div", "pow"):
    OPS[_op] = (2, (), {})
    OPS[_op + "_scalar"] = (1, (), {"value": (_number, _REQUIRED), "reverse": (_bool, False)})
for _op in ("sum", "mean", "max"):
    OPS[_op] = (1, (), {"axes": (_int_list(None), _REQUIRED), "keepdim": (_bool, _REQUIRED)})


# Value dtypes (section 4): what each input of an op takes ("f" float32, "i" int64,
# "*" either) and the dtype of its output ("f", "i", "in0" = input 0's, "attr" = the
# cast's dtype).  The native validator holds the same table (op_schemas, graph.cpp).
_F1 = (("f",), "f")
_ANY1 = (("*",), "in0")
DTYPE_RULES: dict[str, tuple[tuple, str]] = {
    "linear": (("f", "f", "f"), "f"), "matmul": (("f", "f"), "f"), "conv2d": (("f", "f", "f"), "f"),
    "max_pool2d": _F1, "avg_pool_global": _F1, "batch_norm": (("f",) * 5, "f"),
    "layer_norm": (("f", "f", "f"), "f"), "embedding": (("i", "f"), "f"), "arange_like": (("*",), "i"),
    "select": _ANY1, "gelu": _F1, "clamp": _ANY1, "softmax": _F1, "normalize": _F1, "reshape": _ANY1,
    "flatten": _ANY1, "transpose": _ANY1, "unsqueeze": _ANY1, "cast": (("*",), "attr"), "identity": _ANY1,
    "relu": _F1, "tanh": _F1, "sigmoid": _F1, "exp": _F1, "sqrt": _F1, "neg": _ANY1,
    "add": (("*", "*"), "in0"), "sub": (("*", "*"), "in0"), "mul": (("*", "*"), "in0"),
    "div": (("f", "f"), "f"), "pow": (("f", "f"), "f"),
    "add_scalar": _ANY1, "sub_scalar": _ANY1, "mul_scalar": _ANY1,
    "div_scalar": (("f",), "in0"), "pow_scalar": (("f",), "in0"),
    "sum": _ANY1, "mean": (("f",), "in0"), "max": _ANY1,
}
_DTYPE_NAME = {"f": "float32", "i": "int64"}


def _ir_dtype(dtype: Any) -> str | None:
    """A tensor's dtype as the IR sees it: "f" (float32) or "i" (int64); None if unknown."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype == "bfloat16":  # not a numpy dtype
        return "f"
    kind = np.dtype(dtype).kind
    return "f" if kind == "f" else "i" if kind in "iub" else None


def _check_dtypes(where: str, op: str, ins: list, attrs: dict, dtypes: dict) -> str | None:
    """Checks the node's input dtypes where known; returns its output's ("f"/"i"/None)."""
    kinds, out = DTYPE_RULES[op]
    have = [dtypes.get(name) if name is not None else None for name in ins]
    for k, (name, want, got) in enumerate(zip(ins, kinds, have)):
        if name is not None and got is not None and want != "*" and got != want:
            raise SeedError(f"{where}: input {k} {name!r} is {_DTYPE_NAME[got]}, expected {_DTYPE_NAME[want]}")
    if op in ("add", "sub", "mul") and None not in have[:2] and have[0] != have[1]:
        raise SeedError(f"{where}: inputs {ins[0]!r} and {ins[1]!r} have different dtypes")
    if op in ("add_scalar", "sub_scalar", "mul_scalar") and have[0] == "i" and float(attrs["value"]) != \
            math.floor(float(attrs["value"])):
        raise SeedError(f"{where}: a non-integer value on int64 input {ins[0]!r}; cast to float32 first")
    if out == "in0":
        return have[0]
    if out == "attr":
        return "f" if attrs["dtype"] == "float32" else "i"
    return out


def _node_where(i: int, node: Any) -> str:
    if isinstance(node, dict):
        op = node.get("op")
        path = node.get("path")
        return f"graph: node {i} ({op if isinstance(op, str) else '?'}" + (
            f", path {path!r})" if isinstance(path, str) else ")")
    return f"graph: node {i}"


def _check_spec(where: str, spec: Any) -> None:
    if not isinstance(spec, dict) or set(spec) != set(SPEC_KEYS):
        keys = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise SeedError(f"{where}: needs exactly the keys name, dtype, shape (got {keys})")
    if not isinstance(spec["name"], str) or not spec["name"]:
        raise SeedError(f"{where}: name must be a non-empty string")
    if spec["dtype"] not in VALUE_DTYPES:
        raise SeedError(f"{where} {spec['name']!r}: dtype {spec['dtype']!r} is not float32 or int64")
    shape = spec["shape"]
    if not isinstance(shape, list) or not all(
            (_is_int(d) and d >= 0) or (isinstance(d, str) and d) for d in shape):
        raise SeedError(f"{where} {spec['name']!r}: shape must be a list of non-negative integers "
                        f"and non-empty strings, got {shape!r}")


def validate_graph(graph: Any, weight_shapes: Mapping[str, Any],
                   weight_dtypes: Mapping[str, Any] | None = None) -> None:
    """Checks ``graph`` against section 4 of the spec: the exact key sets, known
    ops, their input counts and exact attributes (types and ranges), that every
    value name is defined before it is used and defined once, that every graph
    output is produced, and the dtype rules (each op's input dtypes, declared
    output dtypes) wherever a value's dtype is known.  ``weight_shapes``: name ->
    shape (or array) of the file's tensors; ``weight_dtypes``: name -> dtype
    (default: the arrays' dtypes where ``weight_shapes`` holds arrays).  Raises
    ``SeedError`` naming the node index, op and path."""
    if not isinstance(graph, dict):
        raise SeedError(f"graph: must be an object, got {type(graph).__name__}")
    if set(graph) != set(GRAPH_KEYS):
        raise SeedError(f"graph: needs exactly the keys {', '.join(GRAPH_KEYS)} (got {sorted(graph)})")
    if graph["version"] != GRAPH_VERSION or not _is_int(graph["version"]):
        raise SeedError(f"graph: version {graph['version']!r} is not supported (only {GRAPH_VERSION})")
    for key in ("inputs", "outputs", "nodes"):
        if not isinstance(graph[key], list):
            raise SeedError(f"graph: {key} must be a list")
    if not graph["outputs"]:
        raise SeedError("graph: outputs is empty")
    defined: dict[str, str] = {name: "a tensor of the file" for name in weight_shapes}
    if weight_dtypes is None:
        weight_dtypes = {k: v.dtype for k, v in weight_shapes.items() if hasattr(v, "dtype")}
    dtypes: dict[str, str | None] = {k: _ir_dtype(weight_dtypes.get(k)) for k in weight_shapes}
    for j, spec in enumerate(graph["inputs"]):
        _check_spec(f"graph: input {j}", spec)
        if spec["name"] in defined:
            raise SeedError(f"graph: input {j} {spec['name']!r}: the name is already {defined[spec['name']]}")
        defined[spec["name"]] = f"graph input {j}"
        dtypes[spec["name"]] = "f" if spec["dtype"] == "float32" else "i"
    for i, node in enumerate(graph["nodes"]):
        where = _node_where(i, node)
        if not isinstance(node, dict) or set(node) != set(NODE_KEYS):
            keys = sorted(node) if isinstance(node, dict) else type(node).__name__
            raise SeedError(f"{where}: needs exactly the keys op, in, out, attrs, path (got {keys})")
        op = node["op"]
        if not isinstance(op, str) or op not in OPS:
            raise SeedError(f"{where}: unknown op {op!r}")
        if not isinstance(node["path"], str):
            raise SeedError(f"{where}: path must be a string")
        n_in, optional, attr_spec = OPS[op]
        ins = node["in"]
        if not isinstance(ins, list) or len(ins) != n_in:
            raise SeedError(f"{where}: takes exactly {n_in} inputs"
                            + (" (an optional one as null)" if optional else "") + f", got {ins!r}")
        for k, name in enumerate(ins):
            if name is None:
                if k not in optional:
                    raise SeedError(f"{where}: input {k} is required, got null")
                continue
            if not isinstance(name, str):
                raise SeedError(f"{where}: input {k} must be a value name, got {name!r}")
            if name not in defined:
                raise SeedError(f"{where}: input {k} {name!r} is not defined before this node "
                                "(neither a graph input, a tensor of the file nor an earlier output)")
        outs = node["out"]
        if not isinstance(outs, list) or len(outs) != 1:
            raise SeedError(f"{where}: out must be a list of exactly one value name, got {outs!r}")
        for name in outs:
            if not isinstance(name, str) or not name:
                raise SeedError(f"{where}: output name must be a non-empty string, got {name!r}")
            if name in defined:
                raise SeedError(f"{where}: output {name!r} reuses a name that is already {defined[name]}")
            defined[name] = f"the output of node {i}"
        attrs = node["attrs"]
        if not isinstance(attrs, dict):
            raise SeedError(f"{where}: attrs must be an object")
        unknown = sorted(set(attrs) - set(attr_spec))
        if unknown:
            raise SeedError(f"{where}: unknown attribute(s) {', '.join(unknown)} "
                            f"(the op takes: {', '.join(attr_spec) or 'none'})")
        for a, (check, default) in attr_spec.items():
            if a not in attrs:
                if default is _REQUIRED:
                    raise SeedError(f"{where}: attribute {a!r} is missing")
                continue
            problem = check(attrs[a])
            if problem:
                raise SeedError(f"{where}: attribute {a!r} must be {problem}, got {attrs[a]!r}")
        _check_static(where, op, ins, attrs, weight_shapes)
        dtypes[outs[0]] = _check_dtypes(where, op, ins, attrs, dtypes)
    for j, spec in enumerate(graph["outputs"]):
        _check_spec(f"graph: output {j}", spec)
        origin = defined.get(spec["name"])
        if origin is None or origin == "a tensor of the file":
            raise SeedError(f"graph: output {j} {spec['name']!r} is not produced by a node nor a graph input")
        made = dtypes.get(spec["name"])
        if made is not None and _DTYPE_NAME[made] != spec["dtype"]:
            raise SeedError(f"graph: output {j} {spec['name']!r} is declared {spec['dtype']} but the graph "
                            f"makes it {_DTYPE_NAME[made]}")
    names = [s["name"] for s in graph["outputs"]]
    if len(set(names)) != len(names):
        raise SeedError("graph: outputs name the same value twice")


def _check_static(where: str, op: str, ins: list, attrs: dict, weight_shapes: Mapping) -> None:
    """Checks that need only the weights' shapes."""
    def shape(k):
        name = ins[k] if k < len(ins) else None
        if name is None or name not in weight_shapes:
            return None
        s = weight_shapes[name]
        return tuple(getattr(s, "shape", s))

    if op == "linear":
        w, b = shape(1), shape(2)
        if w is not None and len(w) != 2:
            raise SeedError(f"{where}: weight {ins[1]!r} must be 2-D, has shape {list(w)}")
        if w is not None and b is not None and b != (w[0],):
            raise SeedError(f"{where}: bias {ins[2]!r} has shape {list(b)}, expected [{w[0]}]")
    elif op == "conv2d":
        w, b = shape(1), shape(2)
        if w is not None:
            if len(w) != 4:
                raise SeedError(f"{where}: weight {ins[1]!r} must be 4-D (out, in/groups, kh, kw), "
                                f"has shape {list(w)}")
            if w[0] % attrs["groups"]:
                raise SeedError(f"{where}: {w[0]} output channels are not divisible by groups={attrs['groups']}")
            if b is not None and b != (w[0],):
                raise SeedError(f"{where}: bias {ins[2]!r} has shape {list(b)}, expected [{w[0]}]")
    elif op == "embedding":
        w = shape(1)
        if w is not None and len(w) != 2:
            raise SeedError(f"{where}: table {ins[1]!r} must be 2-D, has shape {list(w)}")
    elif op == "transpose":
        if sorted(attrs["perm"]) != list(range(len(attrs["perm"]))):
            raise SeedError(f"{where}: perm {attrs['perm']} is not a permutation of 0..{len(attrs['perm']) - 1}")
    elif op == "reshape":
        if sum(1 for d in attrs["shape"] if d == -1) > 1:
            raise SeedError(f"{where}: shape {attrs['shape']} has more than one -1")
    elif op == "max_pool2d":
        k, p = attrs["kernel"], attrs["padding"]
        if any(2 * p[i] > k[i] for i in range(2)):
            raise SeedError(f"{where}: padding {p} exceeds half the kernel {k}")


# ---------------------------------------------------------------------------
# execution


def _axis(a: int, ndim: int) -> int:
    if not -ndim <= a < ndim:
        raise ValueError(f"axis {a} is out of range for a {ndim}-D tensor")
    return a % ndim


def _f32(x):
    return np.asarray(x, dtype=np.float32)


def _need_float(x, what="input"):
    if x.dtype != np.float32:
        raise ValueError(f"{what} must be float32, got {x.dtype}")
    return x


def _linear(x, w, b=None):
    _need_float(x)
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input shape {list(x.shape)} does not match weight shape {list(w.shape)}")
    y = np.matmul(x, w.T)
    if b is not None:
        y = y + b
    return y


def _matmul(a, b):
    _need_float(a, "a")
    _need_float(b, "b")
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul needs two tensors of at least 2 dimensions, got {list(a.shape)} and {list(b.shape)}")
    return np.matmul(a, b)


def _pad_hw(x, ph, pw, value):
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _conv2d(x, w, b=None, *, stride, padding, dilation, groups):
    _need_float(x)
    if x.ndim != 4:
        raise ValueError(f"input must be 4-D NCHW, got shape {list(x.shape)}")
    n, c, h, wd = x.shape
    co, cig, kh, kw = w.shape
    if c != cig * groups or co % groups:
        raise ValueError(f"input has {c} channels; weight {list(w.shape)} with groups={groups} expects {cig * groups}")
    sh, sw = stride
    dh, dw = dilation
    xp = _pad_hw(x, padding[0], padding[1], 0.0)
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"input {list(x.shape)} is smaller than the kernel {kh}x{kw}")
    cog = co // groups
    wg = w.reshape(groups, cog, cig, kh, kw)
    out = np.zeros((n, groups, cog, ho * wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            xs = xp[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
            xs = xs.reshape(n, groups, cig, ho * wo)
            wk = wg[:, :, :, i, j]  # [groups, cog, cig]
            if cig == 1:
                out += xs * wk[None]  # depthwise: [n,g,1,hw] * [1,g,cog,1]
            else:
                out += np.matmul(wk[None], xs)
    out = out.reshape(n, co, ho, wo)
    if b is not None:
        out += b.reshape(1, co, 1, 1)
    return out


def _max_pool2d(x, *, kernel, stride, padding):
    _need_float(x)
    if x.ndim != 4:
        raise ValueError(f"input must be 4-D NCHW, got shape {list(x.shape)}")
    kh, kw = kernel
    sh, sw = stride
    xp = _pad_hw(x, padding[0], padding[1], -np.inf)
    ho = (xp.shape[2] - kh) // sh + 1
    wo = (xp.shape[3] - kw) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"input {list(x.shape)} is smaller than the pooling window {kh}x{kw}")
    out = None
    for i in range(kh):
        for j in range(kw):
            xs = xp[:, :, i: i + sh * (ho - 1) + 1: sh, j: j + sw * (wo - 1) + 1: sw]
            out = xs.copy() if out is None else np.maximum(out, xs)
    return out


def _avg_pool_global(x):
    _need_float(x)
    if x.ndim != 4:
        raise ValueError(f"input must be 4-D NCHW, got shape {list(x.shape)}")
    return x.mean(axis=(2, 3), keepdims=True, dtype=np.float32)


def _channel_shape(x, v, name):
    if x.ndim < 2 or v.shape != (x.shape[1],):
        raise ValueError(f"{name} has shape {list(v.shape)}, expected [{x.shape[1] if x.ndim > 1 else '?'}]")
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def _batch_norm(x, weight, bias, mean, var, *, eps):
    _need_float(x)
    w = _channel_shape(x, weight, "weight")
    b = _channel_shape(x, bias, "bias")
    m = _channel_shape(x, mean, "mean")
    v = _channel_shape(x, var, "var")
    return (x - m) / np.sqrt(v + np.float32(eps)) * w + b


def _layer_norm(x, w=None, b=None, *, eps):
    _need_float(x)
    d = x.shape[-1] if x.ndim else None
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and t.shape != (d,):
            raise ValueError(f"{name} has shape {list(t.shape)}, expected [{d}]")
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    y = xc / np.sqrt(var + np.float32(eps))
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def _embedding(ids, w):
    if ids.dtype != np.int64:
        raise ValueError(f"ids must be int64, got {ids.dtype}")
    if w.ndim != 2:
        raise ValueError(f"table must be 2-D, has shape {list(w.shape)}")
    if ids.size and (ids.min() < 0 or ids.max() >= w.shape[0]):
        bad = ids[(ids < 0) | (ids >= w.shape[0])].reshape(-1)[0]
        raise ValueError(f"id {int(bad)} is outside [0, {w.shape[0]})")
    return _f32(w)[ids]


def _arange_like(x, *, axis):
    return np.arange(x.shape[_axis(axis, x.ndim)], dtype=np.int64)


def _select(x, *, axis, index):
    ax = _axis(axis, x.ndim)
    size = x.shape[ax]
    if not -size <= index < size:
        raise ValueError(f"index {index} is out of range for axis {axis} of size {size}")
    return np.take(x, index, axis=ax)


def _gelu(x, *, approximate):
    _need_float(x)
    if approximate == "tanh":
        x64 = x.astype(np.float64)
        return _f32(0.5 * x64 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64 ** 3))))
    from math import erf
    erf_v = np.vectorize(erf, otypes=[np.float64])
    x64 = x.astype(np.float64)
    return _f32(0.5 * x64 * (1.0 + erf_v(x64 / math.sqrt(2.0))))


def _clamp(x, *, min, max):  # noqa: A002 - the attribute names
    y = x
    if min is not None:
        y = np.maximum(y, np.asarray(min, dtype=x.dtype))
    if max is not None:
        y = np.minimum(y, np.asarray(max, dtype=x.dtype))
    return y


def _same_dtype(a, b):
    if a.dtype != b.dtype:
        raise ValueError(f"operands have different dtypes ({a.dtype} and {b.dtype})")


_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "pow": np.power}


def _binary(op):
    def f(a, b):
        _same_dtype(a, b)
        np.broadcast_shapes(a.shape, b.shape)
        if op == "div":
            if a.dtype == np.int64:
                raise ValueError("div on int64 tensors is not defined; cast to float32 first")
            return np.divide(a, b)
        if op == "pow" and a.dtype == np.int64:
            raise ValueError("pow on int64 tensors is not defined; cast to float32 first")
        return _BINARY[op](a, b)
    return f


def _scalar_op(op):
    def f(x, *, value, reverse=False):
        if x.dtype == np.int64:
            if op in ("div", "pow") or not float(value).is_integer():
                raise ValueError(f"{op}_scalar with value {value!r} on an int64 tensor is not defined; "
                                 "cast to float32 first")
            v = np.int64(value)
        else:
            v = np.float32(value)
        a, b = (v, x) if reverse else (x, v)
        return np.asarray({"add": np.add, "sub": np.subtract, "mul": np.multiply,
                           "div": np.divide, "pow": np.power}[op](a, b), dtype=x.dtype)
    return f


def _unary(fn, float_only=True):
    def f(x):
        if float_only:
            _need_float(x)
        return fn(x)
    return f


def _softmax(x, *, axis):
    _need_float(x)
    ax = _axis(axis, x.ndim)
    e = np.exp(x - x.max(axis=ax, keepdims=True))
    return e / e.sum(axis=ax, keepdims=True)


def _reduce(fn):
    def f(x, *, axes, keepdim):
        ax = tuple(sorted({_axis(a, x.ndim) for a in axes}))
        if len(ax) != len(axes):
            raise ValueError(f"axes {axes} name an axis twice")
        if fn is np.max and any(x.shape[a] == 0 for a in ax):
            raise ValueError("max over an empty axis")
        if fn is np.mean and x.dtype == np.int64:
            raise ValueError("mean of an int64 tensor is not defined; cast to float32 first")
        return np.asarray(fn(x, axis=ax, keepdims=keepdim), dtype=x.dtype)
    return f


def _normalize(x, *, axis, eps):
    _need_float(x)
    ax = _axis(axis, x.ndim)
    norm = np.sqrt((x * x).sum(axis=ax, keepdims=True))
    return x / np.maximum(norm, np.float32(eps))


def _reshape(x, *, shape):
    if len(shape) > x.ndim and any(d == 0 for d in shape[x.ndim:]):
        raise ValueError(f"shape {shape}: an item 0 at position ≥ {x.ndim} has no input size to copy")
    out = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    if -1 in out:
        k = out.index(-1)
        known = math.prod(d for i, d in enumerate(out) if i != k)
        if known == 0 or x.size % known:
            raise ValueError(f"cannot reshape {list(x.shape)} to {shape}")
        out[k] = x.size // known
    if math.prod(out) != x.size:
        raise ValueError(f"cannot reshape {list(x.shape)} ({x.size} elements) to {shape} -> {out}")
    return x.reshape(out)


def _flatten(x, *, start, end):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = _axis(start, x.ndim), _axis(end, x.ndim)
    if s > e:
        raise ValueError(f"start {start} comes after end {end}")
    return x.reshape(x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])


def _transpose(x, *, perm):
    if sorted(p % x.ndim if -x.ndim <= p < x.ndim else p for p in perm) != list(range(x.ndim)):
        raise ValueError(f"perm {perm} is not a permutation of the {x.ndim} axes")
    return np.transpose(x, [p % x.ndim for p in perm])


def _unsqueeze(x, *, axis):
    return np.expand_dims(x, _axis(axis, x.ndim + 1))


def _cast(x, *, dtype):
    if dtype == "int64":
        if x.dtype == np.float32 and not np.isfinite(x).all():
            raise ValueError("cannot cast a non-finite value to int64")
        return np.trunc(x).astype(np.int64) if x.dtype == np.float32 else x.astype(np.int64)
    return x.astype(np.float32)


KERNELS: dict[str, Callable] = {
    "linear": _linear, "matmul": _matmul, "conv2d": _conv2d, "max_pool2d": _max_pool2d,
    "avg_pool_global": _avg_pool_global, "batch_norm": _batch_norm, "layer_norm": _layer_norm,
    "embedding": _embedding, "arange_like": _arange_like, "select": _select,
    "relu": _unary(lambda x: np.maximum(x, np.float32(0))), "tanh": _unary(np.tanh),
    "sigmoid": _unary(lambda x: _f32(1.0 / (1.0 + np.exp(-x.astype(np.float64))))),
    "exp": _unary(np.exp), "sqrt": _unary(np.sqrt), "neg": _unary(np.negative, float_only=False),
    "gelu": _gelu, "clamp": _clamp, "softmax": _softmax,
    "sum": _reduce(np.sum), "mean": _reduce(np.mean), "max": _reduce(np.max),
    "normalize": _normalize, "reshape": _reshape, "flatten": _flatten, "transpose": _transpose,
    "unsqueeze": _unsqueeze, "cast": _cast, "identity": lambda x: x,
}
for _op in ("add", "sub", "mul", "div", "pow"):
    KERNELS[_op] = _binary(_op)
    KERNELS[_op + "_scalar"] = _scalar_op(_op)
assert set(KERNELS) == set(OPS)

_NP_DTYPES = {"float32": np.float32, "int64": np.int64}


def _bind_shape(where: str, name: str, spec_shape: list, actual: tuple, symbols: dict) -> None:
    if len(spec_shape) != len(actual):
        raise SeedError(f"{where} {name!r}: expected {len(spec_shape)} dimensions {spec_shape}, "
                        f"got shape {list(actual)}")
    for k, (d, a) in enumerate(zip(spec_shape, actual)):
        if isinstance(d, str):
            if symbols.setdefault(d, a) != a:
                raise SeedError(f"{where} {name!r}: dimension {k} ({d!r}) is {a}, but {d!r} is "
                                f"{symbols[d]} elsewhere")
        elif d != a:
            raise SeedError(f"{where} {name!r}: dimension {k} is {a}, expected {d} (shape {spec_shape})")


def _execute(graph: dict, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> tuple:
    """(every value by name, the symbolic dims bound by the inputs): run_graph without the outputs."""
    validate_graph(graph, {k: np.shape(v) for k, v in weights.items()},
                   {k: np.asarray(v).dtype for k, v in weights.items()})
    if not isinstance(inputs, Mapping):
        raise SeedError(f"graph inputs must be a mapping name -> array, got {type(inputs).__name__}")
    names = [s["name"] for s in graph["inputs"]]
    extra = sorted(set(inputs) - set(names))
    if extra:
        raise SeedError(f"graph: unknown input(s) {', '.join(map(repr, extra))} (the graph takes "
                        f"{', '.join(map(repr, names))})")
    env: dict[str, np.ndarray] = {}
    symbols: dict[str, int] = {}
    for spec in graph["inputs"]:
        name = spec["name"]
        if name not in inputs:
            raise SeedError(f"graph: input {name!r} is missing")
        x = np.asarray(inputs[name])
        if x.dtype != _NP_DTYPES[spec["dtype"]]:
            raise SeedError(f"graph: input {name!r} must be {spec['dtype']}, got {x.dtype}")
        _bind_shape("graph: input", name, spec["shape"], x.shape, symbols)
        env[name] = x

    used = {n for node in graph["nodes"] for n in node["in"] if n is not None}
    for name in used:
        if name in weights and name not in env:
            w = np.asarray(weights[name])
            if w.dtype.kind == "f":
                w = _f32(w)
            elif w.dtype.kind in "iub":
                w = w.astype(np.int64)
            env[name] = w

    for i, node in enumerate(graph["nodes"]):
        args = [None if n is None else env[n] for n in node["in"]]
        op = node["op"]
        attrs = dict(node["attrs"])
        try:
            with np.errstate(all="ignore"):
                y = KERNELS[op](*args, **attrs)
        except (ValueError, IndexError) as e:
            raise SeedError(f"{_node_where(i, node)}: {e} (input shapes "
                            f"{[None if a is None else list(a.shape) for a in args]})") from None
        y = np.asarray(y)
        if y.dtype not in (np.float32, np.int64):
            y = y.astype(np.int64 if y.dtype.kind in "iub" else np.float32)
        env[node["out"][0]] = y
    return env, symbols


def value_shapes(graph: dict, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> dict:
    """{value name: shape} of every graph input and node output when ``graph``
    runs (on the reference executor) on ``weights`` and ``inputs``, as ``run_graph``
    takes them; e.g. to declare intermediate values as outputs."""
    env, _ = _execute(graph, weights, inputs)
    return {k: tuple(v.shape) for k, v in env.items() if k not in weights or k in inputs}


def run_graph(graph: dict, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> dict:
    """Runs ``graph`` (validated first) on ``weights`` (name -> array; floating
    ones are used as float32) and ``inputs`` (name -> array, dtype exactly as the
    graph's input spec says, shapes matching its fixed and symbolic dims).
    Returns {output name: array}.  Any problem is a ``SeedError`` naming the
    input or the node (index, op, path)."""
    env, symbols = _execute(graph, weights, inputs)
    out = {}
    for spec in graph["outputs"]:
        y = env[spec["name"]]
        if y.dtype != _NP_DTYPES[spec["dtype"]]:
            raise SeedError(f"graph: output {spec['name']!r} is {y.dtype}, the graph says {spec['dtype']}")
        _bind_shape("graph: output", spec["name"], spec["shape"], y.shape, symbols)
        out[spec["name"]] = y
    return out
