"""``Model``: assembled (decoded) weights, and a small safetensors writer."""

from __future__ import annotations

import json
import os
from typing import Iterator, Mapping

import numpy as np

from .errors import SeedError
from .format import atomic_output

_SAFETENSORS_DTYPE = {
    "float32": "F32", "float16": "F16", "float64": "F64", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
}
SUPPORTED_OUTPUTS = (".safetensors", ".onnx")
_NO_GRAPH = ("carries weights only (no graph); capture the architecture with "
             "seedcore.extract(module, example_inputs=...)")


def safetensors_header(path: str, tensors, metadata: Mapping[str, str] | None = None) -> tuple[bytes, int]:
    """The length-prefixed part of a safetensors file before its data: the JSON header
    for ``tensors`` [(name, numpy dtype, shape)] (their data back to back in that
    order), padded with spaces to a multiple of 8.  Returns (header, data bytes)."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dtype, shape in tensors:
        dtype = np.dtype(dtype)
        dt = "bool" if dtype == np.bool_ else dtype.name
        if dt not in _SAFETENSORS_DTYPE:
            raise SeedError(f"{path}: tensor {name!r}: dtype {dtype} cannot be written to safetensors")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        header[name] = {"dtype": _SAFETENSORS_DTYPE[dt], "shape": [int(d) for d in shape],
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return raw, offset


def safetensors_metadata(name: str, source: str, seed_path: str | None) -> dict:
    """The ``__metadata__`` seedcore writes into an assembled model's safetensors."""
    meta = {"format": "pt", "seedcore.model": name, "seedcore.source": source}
    if seed_path:
        meta["seedcore.seed"] = os.path.basename(seed_path)
    return meta


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> int:
    """Writes ``tensors`` as a safetensors file (atomically); returns its size.

    The format: u64 little-endian header length, a JSON header mapping each name to
    {dtype, shape, data_offsets} (plus ``__metadata__``, strings only), padded with
    spaces to a multiple of 8, then the tensors' bytes back to back."""
    path = os.fspath(path)
    arrays = []
    for name, a in tensors.items():
        a = np.asarray(a)
        a = np.asarray(a, dtype=a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype, order="C")
        arrays.append((name, a))
    raw, offset = safetensors_header(path, [(n, a.dtype, a.shape) for n, a in arrays], metadata)
    arrays = [a for _, a in arrays]
    with atomic_output(path) as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for a in arrays:
            if a.nbytes:
                f.write(memoryview(a.reshape(-1)).cast("B"))
    return 8 + len(raw) + offset


class Model:
    """Assembled weights: name -> numpy array (float32 for floating tensors, the
    stored dtype for integer ones), in the seed's tensor order.

    With a graph (a seed extracted from a module with ``example_inputs``) it also
    runs: ``model(x)`` / ``model(a, b)`` (graph input order) / ``model(ids=..., mask=...)``
    return the output (a tuple when the graph has several), ``model.run({name: array})``
    returns ``{output name: array}``; numpy in, numpy out, on the native executor."""

    def __init__(self, tensors: Mapping[str, np.ndarray], *, name: str = "model", source: str = "",
                 graph=None, seed_path: str | None = None, decode_seconds: float | None = None):
        self._tensors = dict(tensors)
        self.name = name
        self.source = source
        self.graph = graph
        self.seed_path = seed_path
        self.decode_seconds = decode_seconds
        self.threads = 1  # default for __call__ / run; 0 = all cores
        self._executor = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """A new dict of the decoded arrays (the arrays themselves are shared)."""
        return dict(self._tensors)

    @property
    def names(self) -> list[str]:
        return list(self._tensors)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._tensors[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    @property
    def n_params(self) -> int:
        return sum(int(a.size) for a in self._tensors.values())

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self._tensors.values())

    # -- the graph ----------------------------------------------------------------
    def _graph(self, what: str) -> dict:
        if self.graph is None:
            raise SeedError(f"{self.name}: cannot {what}: the seed {_NO_GRAPH}")
        if not isinstance(self.graph, dict):
            raise SeedError(f"{self.name}: the graph must be a JSON object, got {type(self.graph).__name__}")
        return self.graph

    @property
    def input_specs(self) -> list[dict]:
        """The graph's inputs: [{"name", "dtype", "shape"}] (symbolic dimensions as strings)."""
        return [dict(s, shape=list(s["shape"])) for s in self._graph("list its inputs")["inputs"]]

    @property
    def output_specs(self) -> list[dict]:
        return [dict(s, shape=list(s["shape"])) for s in self._graph("list its outputs")["outputs"]]

    def _native_graph(self):
        if self._executor is None:
            graph = self._graph("run")
            from .onnx_export import check_graph, graph_weights

            check_graph(graph, self._tensors, where=f"{self.name}: graph")
            weights = graph_weights(graph, self._tensors)
            try:
                from . import _native
            except ImportError as e:  # pragma: no cover - a broken install
                raise ImportError(f"seedcore's native module is missing or broken ({e}); reinstall "
                                  "seedcore (pip install .)") from None
            if not hasattr(_native, "Graph"):  # pragma: no cover - an old build
                raise SeedError("this build of seedcore._native has no graph executor; rebuild seedcore")
            try:
                self._executor = _native.Graph(json.dumps(graph), weights)
            except SeedError:
                raise
            except (ValueError, RuntimeError, TypeError, KeyError, IndexError) as e:
                raise SeedError(f"{self.name}: graph: {e}") from None
        return self._executor

    def _prepare(self, inputs: Mapping) -> dict[str, np.ndarray]:
        specs = self._graph("run")["inputs"]
        names = [s["name"] for s in specs]
        extra = [k for k in inputs if k not in names]
        missing = [n for n in names if n not in inputs]
        if extra or missing:
            raise SeedError(f"{self.name}: inputs {names} expected"
                            + (f"; missing {missing}" if missing else "")
                            + (f"; unknown {extra}" if extra else ""))
        sizes: dict[str, tuple[int, str]] = {}
        out = {}
        for s in specs:
            name = s["name"]
            try:
                a = np.asarray(inputs[name])
            except Exception as e:
                raise SeedError(f"{self.name}: input {name!r}: not an array ({e})") from None
            want = s["dtype"]
            if want == "float32":
                if a.dtype.kind != "f":
                    raise SeedError(f"{self.name}: input {name!r} must be a floating array "
                                    f"(float32), got {a.dtype}")
                a = np.ascontiguousarray(a, dtype=np.float32)
            else:
                if a.dtype.kind not in "iu":
                    raise SeedError(f"{self.name}: input {name!r} must be an integer array "
                                    f"(int64), got {a.dtype}")
                if a.dtype.kind == "u" and a.size and int(a.max()) >= 2**63:
                    raise SeedError(f"{self.name}: input {name!r} has values beyond int64")
                a = np.ascontiguousarray(a, dtype=np.int64)
            shape = list(s["shape"])
            if a.ndim != len(shape):
                raise SeedError(f"{self.name}: input {name!r} must have {len(shape)} dimensions "
                                f"{_fmt_shape(shape)}, got shape {tuple(a.shape)}")
            for axis, (d, n) in enumerate(zip(shape, a.shape)):
                if isinstance(d, str):
                    if d in sizes and sizes[d][0] != n:
                        raise SeedError(f"{self.name}: input {name!r} axis {axis} ({d!r}) is {n}, but "
                                        f"{d!r} is {sizes[d][0]} in {sizes[d][1]!r}")
                    sizes.setdefault(d, (n, name))
                elif d != n:
                    raise SeedError(f"{self.name}: input {name!r} must have shape {_fmt_shape(shape)}, "
                                    f"got {tuple(a.shape)} (axis {axis} must be {d})")
            out[name] = a
        return out

    def run(self, inputs: Mapping[str, np.ndarray], threads: int | None = None) -> dict[str, np.ndarray]:
        """Runs the graph on the native executor: ``{input name: array}`` ->
        ``{output name: array}``.  ``threads``: 1 by default (``self.threads``), 0 = all cores."""
        if not isinstance(inputs, Mapping):
            raise SeedError(f"{self.name}: run() takes a dict {{input name: array}}, "
                            f"got {type(inputs).__name__}")
        arrays = self._prepare(inputs)
        executor = self._native_graph()
        t = self.threads if threads is None else threads
        if int(t) == 0:  # all cores, as documented; the executor takes a count
            t = os.cpu_count() or 1
        try:
            result = executor.run(arrays, threads=int(t))
        except SeedError:
            raise
        except (ValueError, RuntimeError, TypeError, KeyError, IndexError) as e:
            raise SeedError(f"{self.name}: {e}") from None
        return {s["name"]: result[s["name"]] for s in self.graph["outputs"]}

    def __call__(self, *args, **kwargs):
        """``model(x)``, ``model(a, b)`` (graph input order) or ``model(name=array, ...)``;
        ``threads=`` too, unless the graph has an input of that name.  Returns the
        output array, or a tuple of them when the graph has several outputs."""
        names = [s["name"] for s in self._graph("run")["inputs"]]
        threads = kwargs.pop("threads", None) if "threads" not in names else None
        if len(args) > len(names):
            raise SeedError(f"{self.name}: takes {len(names)} input(s) {names}, got {len(args)}")
        inputs = dict(zip(names, args))
        for k, v in kwargs.items():
            if k in inputs:
                raise SeedError(f"{self.name}: input {k!r} given twice")
            inputs[k] = v
        out = self.run(inputs, threads=threads)
        values = tuple(out.values())
        return values[0] if len(values) == 1 else values

    # -- training (issue 4) ------------------------------------------------------
    def finetune(self, data, finetune=None, *, seed: int = 0, progress=True):
        """Continues training in place on ``data = (X, y)`` with the native trainer
        (``seedcore.Finetune`` settings; default ``Finetune()``); returns the per-step
        losses (numpy float64). ``progress``: a tqdm bar (True), nothing (False) or a
        callable ``(step, loss)``. On an error the weights are left as they were."""
        from .train import finetune as _finetune

        return _finetune(self, data, finetune, seed=seed, progress=progress)

    def evaluate(self, X, y, *, batch_size: int = 256, threads: int | None = None) -> dict:
        """``{"loss", "accuracy", "n"}`` of the first output against ``y``: mean
        cross-entropy and accuracy for integer labels, mean squared error (no
        accuracy) for float targets."""
        from .train import evaluate as _evaluate

        return _evaluate(self, X, y, batch_size=batch_size, threads=threads)

    def with_new_head(self, n_classes: int, *, seed: int = 0) -> "Model":
        """A new Model with the last linear layer replaced by a freshly initialised
        one with ``n_classes`` outputs (seeded; same tensor names), for task
        adaptation: ``model.with_new_head(10).finetune((X, y), Finetune(train="head"))``."""
        from .train import with_new_head as _with_new_head

        return _with_new_head(self, n_classes, seed=seed)

    def export_onnx(self, path: str | os.PathLike, opset: int = 17) -> int:
        """Writes a standard ONNX model (graph + these weights as float32/int64
        initializers; symbolic dimensions as ``dim_param``), checked with
        ``onnx.checker.check_model(full_check=True)``, atomically.  Returns its size.
        Needs the ``onnx`` package (``pip install "seedcore[onnx]"``)."""
        from .onnx_export import export_onnx

        path = os.fspath(path)
        if self.graph is None:
            raise SeedError(f"{path}: cannot write ONNX: the seed {_NO_GRAPH}; for weights only, "
                            "supported outputs: .safetensors")
        return export_onnx(path, self._graph("export"), self._tensors, opset=opset, name=self.name)

    def save(self, path: str | os.PathLike, *, opset: int = 17) -> int:
        """Writes the model; the suffix picks the format: ``.safetensors`` (the
        weights) or ``.onnx`` (graph + weights, see ``export_onnx``).  Returns the size."""
        path = os.fspath(path)
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in SUPPORTED_OUTPUTS:
            raise SeedError(
                f"{path}: cannot write {suffix or 'files without a suffix'}; supported outputs: "
                f"{', '.join(SUPPORTED_OUTPUTS)}")
        if suffix == ".onnx":
            return self.export_onnx(path, opset=opset)
        return write_safetensors(path, self._tensors, safetensors_metadata(self.name, self.source, self.seed_path))

    def __repr__(self) -> str:
        graph = "" if self.graph is None else f", graph of {len(self.graph.get('nodes', []))} nodes"
        return (f"Model({self.name!r}, {len(self)} tensors, {self.n_params:,} values, "
                f"{self.nbytes / 2**20:.1f} MiB{graph})")


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
