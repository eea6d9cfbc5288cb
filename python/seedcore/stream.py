"""Bounded-RAM assembly: a seed decoded tensor by tensor, straight into a file.

``seedcore.assemble(seed, out="model.safetensors" | "model.onnx")`` lands here.  The
seed stays memory-mapped; each tensor is decoded into one reused buffer (as large as
the largest tensor), written, and its payload's pages are dropped from RSS, so the
peak memory above the interpreter's baseline is about the largest tensor plus a few
MB of working memory, whatever the model's size:

* ``.safetensors``: the header (every shape and dtype is known from the seed's
  metadata) and then the tensors, in the seed's order.  Byte for byte the file
  ``Model.save`` writes after an in-memory assembly.
* ``.onnx``: the graph (built by ``onnx_export`` as for ``Model.export_onnx``) with
  its weights as ONNX external data in ``NAME.onnx.data`` beside it; the ModelProto
  holds only references (location, offset, length; offsets 4096-aligned so that
  runtimes may map them).  Transposed and converted initializers are written a few
  MB at a time, without a second full-size copy.

``plan_assembly`` computes what a mode needs before anything is allocated, and
``check_max_ram`` refuses a plan that does not fit a budget (``--max-ram``).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SeedError
from .format import atomic_output

#: Working memory besides the decoded tensors: the chunk buffer (CHUNK_BYTES), the
#: headers, the graph and ONNX protos, allocator slack.
OVERHEAD_BYTES = 16 << 20
#: Transposed / converted initializers are written this many bytes at a time.
CHUNK_BYTES = 4 << 20
#: Alignment of each tensor inside NAME.onnx.data.
ONNX_DATA_ALIGN = 4096

_MODES = {None: "in-memory", ".safetensors": "stream:safetensors", ".onnx": "stream:onnx"}


@dataclass(frozen=True)
class AssemblyPlan:
    """What assembling a seed needs, computed from its metadata alone."""

    seed: str
    mode: str                  # "in-memory", "stream:safetensors" or "stream:onnx"
    n_tensors: int
    total_bytes: int           # all tensors decoded (the fp32 model)
    largest_bytes: int
    largest_name: str
    need_bytes: int            # estimated peak RAM above the interpreter's baseline

    def __str__(self) -> str:
        return (f"{self.seed}: {self.mode}, {self.n_tensors} tensors, {_mb(self.total_bytes)} decoded, "
                f"largest tensor {self.largest_name!r} {_mb(self.largest_bytes)}; "
                f"needs about {_mb(self.need_bytes)} of RAM")


@dataclass(frozen=True)
class StreamResult:
    """What a streamed assembly wrote."""

    path: str
    nbytes: int                # size of ``path``
    data_path: str | None      # ONNX: the external data file
    data_bytes: int
    n_tensors: int
    n_values: int
    plan: AssemblyPlan
    seconds: float


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def parse_size(text: Any) -> int:
    """``512M``, ``1.5G``, ``300k``, ``1048576`` (bytes; K/M/G/T are powers of 1024,
    an optional trailing ``B``/``iB``) -> bytes."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        if text <= 0:
            raise SeedError(f"a RAM budget must be positive, got {text}")
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not m:
        raise SeedError(f"cannot read the size {text!r} (examples: 512M, 1.5G, 300k, 1048576)")
    value = float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")
    if value < 1:
        raise SeedError(f"a RAM budget must be positive, got {text!r}")
    return int(value)


def _mode(out: str | None) -> str:
    if out is None:
        return _MODES[None]
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in _MODES:
        raise SeedError(f"{out}: cannot write {suffix or 'files without a suffix'}; supported outputs: "
                        ".safetensors, .onnx")
    return _MODES[suffix]


def plan_from_specs(seed: str, specs: list, out: str | None) -> AssemblyPlan:
    mode = _mode(out)
    total = sum(int(s["nbytes"]) for s in specs)
    largest = max(specs, key=lambda s: int(s["nbytes"]), default={"name": "", "nbytes": 0})
    # Streaming holds one decoded tensor at a time; transposed (ONNX linear weights) and
    # widened (integers -> int64) copies are made CHUNK_BYTES at a time, inside OVERHEAD_BYTES.
    need = (total if mode == "in-memory" else int(largest["nbytes"])) + OVERHEAD_BYTES
    return AssemblyPlan(seed, mode, len(specs), total, int(largest["nbytes"]), str(largest["name"]), need)


def plan_assembly(path: str | os.PathLike, out: str | os.PathLike | None = None) -> AssemblyPlan:
    """The plan for assembling the seed at ``path`` in memory (``out=None``) or
    streamed to ``out`` (.safetensors / .onnx); reads the metadata only."""
    from .assemble import _native

    path = os.fspath(path)
    with _native().SeedFile(path) as sf:
        return plan_from_specs(path, sf.tensor_specs, None if out is None else os.fspath(out))


def check_max_ram(plan: AssemblyPlan, max_ram: Any) -> None:
    """SeedError when ``plan`` needs more than ``max_ram`` (bytes or '512M')."""
    budget = parse_size(max_ram)
    if plan.need_bytes > budget:
        hint = ("; stream it to a file instead (out=NAME.safetensors or NAME.onnx), which needs only the "
                "largest tensor plus 16 MiB" if plan.mode == "in-memory" else "")
        raise SeedError(
            f"{plan.seed}: assembling ({plan.mode}) needs about {_mb(plan.need_bytes)} of RAM "
            f"({_mb(plan.total_bytes if plan.mode == 'in-memory' else plan.largest_bytes)} of tensors, "
            f"largest {plan.largest_name!r} {_mb(plan.largest_bytes)}, + {_mb(OVERHEAD_BYTES)} working memory), "
            f"more than the budget of {_mb(budget)}{hint}")


class _Decoder:
    """Decodes tensors of an open native SeedFile into one reused buffer."""

    def __init__(self, sf, specs: list, threads: int, impl: str):
        self.sf, self.threads, self.impl = sf, int(threads), str(impl)
        self.specs = {s["name"]: s for s in specs}
        largest = max((int(s["nbytes"]) for s in specs), default=0)
        # Pages are touched (and so counted) only as tensors need them.
        self.buffer = np.empty(max(largest, 1), dtype=np.uint8)
        self.current: str | None = None

    def decode(self, name: str) -> np.ndarray:
        """Tensor ``name``, valid until the next call (a view of the buffer)."""
        s = self.specs[name]
        view = self.buffer[: int(s["nbytes"])].view(np.dtype(s["dtype"])).reshape(s["shape"])
        if self.current != name:
            self.sf.decode_into(name, view, threads=self.threads, impl=self.impl)
            self.current = name
        return view


def _write_chunked(f, array: np.ndarray, dtype) -> int:
    """Writes ``array`` (any strides) as C-order ``dtype`` values, at most CHUNK_BYTES
    of converted data at a time; returns the bytes written."""
    dtype = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    if array.dtype == dtype and array.flags.c_contiguous:
        if array.nbytes:
            f.write(memoryview(array.reshape(-1)).cast("B"))
        return array.nbytes
    if array.ndim == 0:
        array = array.reshape(1)
    row_bytes = max(int(np.prod(array.shape[1:], dtype=np.int64)) * dtype.itemsize, 1)
    step = max(1, CHUNK_BYTES // row_bytes)
    written = 0
    for i in range(0, array.shape[0], step):
        chunk = np.ascontiguousarray(array[i:i + step], dtype=dtype)
        f.write(memoryview(chunk.reshape(-1)).cast("B"))
        written += chunk.nbytes
    return written


def stream_assemble(path: str, out: str, *, threads: int = 0, impl: str = "auto", opset: int = 17,
                    max_ram: Any = None, max_bytes: int | None = None) -> StreamResult:
    """Streams the seed at ``path`` into ``out`` (.safetensors or .onnx), see the module."""
    from .assemble import _native

    t0 = time.perf_counter()
    path, out = os.fspath(path), os.fspath(out)
    kwargs = {} if max_bytes is None else {"max_bytes": int(max_bytes)}
    with _native().SeedFile(path, **kwargs) as sf:
        specs = sf.tensor_specs
        plan = plan_from_specs(path, specs, out)
        if max_ram is not None:
            check_max_ram(plan, max_ram)
        meta = json.loads(sf.metadata_json)
        model = meta.get("model", {})
        name, source = model.get("name", "model"), model.get("source", "")
        if plan.mode == "stream:onnx":
            if meta.get("graph") is None:
                from .model import _NO_GRAPH
                raise SeedError(f"{path}: cannot write {out}: the seed {_NO_GRAPH}; for weights only, "
                                "supported outputs: .safetensors")
            nbytes, data_path, data_bytes = _stream_onnx(sf, specs, meta["graph"], out, name=name,
                                                         opset=opset, threads=threads, impl=impl)
        else:
            nbytes = _stream_safetensors(sf, specs, out, name=name, source=source, seed_path=path,
                                         threads=threads, impl=impl)
            data_path, data_bytes = None, 0
    n_values = sum(int(np.prod(s["shape"], dtype=np.int64)) for s in specs)
    return StreamResult(out, nbytes, data_path, data_bytes, len(specs), n_values, plan,
                        time.perf_counter() - t0)


def _stream_safetensors(sf, specs: list, out: str, *, name: str, source: str, seed_path: str,
                        threads: int, impl: str) -> int:
    from .model import safetensors_header, safetensors_metadata

    header, data_bytes = safetensors_header(
        out, [(s["name"], np.dtype(s["dtype"]), s["shape"]) for s in specs],
        safetensors_metadata(name, source, seed_path))
    decoder = _Decoder(sf, specs, threads, impl)
    with atomic_output(out) as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for s in specs:
            _write_chunked(f, decoder.decode(s["name"]), np.dtype(s["dtype"]))
    return 8 + len(header) + data_bytes


class _Deferred:
    """An initializer whose data is written later from seed tensor ``source``."""

    __slots__ = ("source", "transpose", "shape", "dtype")

    def __init__(self, source: str, transpose: bool, shape: tuple, dtype):
        self.source, self.transpose, self.shape, self.dtype = source, transpose, tuple(shape), np.dtype(dtype)


def _stream_onnx(sf, specs: list, graph: dict, out: str, *, name: str, opset: int, threads: int,
                 impl: str) -> tuple[int, str, int]:
    from .onnx_export import MAX_OPSET, MIN_OPSET, _Builder, _onnx, check_graph

    onnx, _ = _onnx()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise SeedError(f"ONNX export: opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    # Stand-ins with each weight's shape and IR dtype (float32 / int64) and no data
    # (zero strides): the builder needs only shapes and dtypes.
    placeholders = {}
    for s in specs:
        ir = np.float32 if np.dtype(s["dtype"]).kind == "f" else np.int64
        placeholders[s["name"]] = np.broadcast_to(np.zeros((), dtype=ir), tuple(s["shape"]))
    check_graph(graph, placeholders, where=f"{name}: graph")
    used = {n for node in graph.get("nodes", []) for n in node.get("in", []) if n in placeholders}
    weights = {k: v for k, v in placeholders.items() if k in used}

    data_path = out + ".data"
    location = os.path.basename(data_path)
    layout: list[tuple[_Deferred, int]] = []   # in file order
    offset = 0

    class StreamBuilder(_Builder):
        def transposed_weight(self, w):
            a = weights[w]
            return _Deferred(w, True, a.shape[::-1], a.dtype)

        def initializer(self, init_name, value):
            if isinstance(value, np.ndarray) and init_name in weights and value is weights[init_name]:
                value = _Deferred(init_name, False, value.shape, value.dtype)
            if not isinstance(value, _Deferred):
                return super().initializer(init_name, value)  # small constants stay inline
            nonlocal offset
            offset += -offset % ONNX_DATA_ALIGN
            length = int(np.prod(value.shape, dtype=np.int64)) * value.dtype.itemsize
            t = onnx.TensorProto()
            t.name = init_name
            t.data_type = onnx.TensorProto.FLOAT if value.dtype == np.float32 else onnx.TensorProto.INT64
            t.dims.extend(int(d) for d in value.shape)
            t.data_location = onnx.TensorProto.EXTERNAL
            for key, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
                entry = t.external_data.add()
                entry.key, entry.value = key, v
            layout.append((value, offset))
            offset += length
            return t

    model = StreamBuilder(graph, weights, opset).build()
    model.graph.name = name or "seedcore"

    decoder = _Decoder(sf, specs, threads, impl)
    # Decode each seed tensor once: initializers from one tensor (W and W.T) are adjacent
    # in decoding order when sorted by source, but file order is by offset; sort writes
    # by source and seek to each offset.
    with atomic_output(data_path) as f:
        for value, off in sorted(layout, key=lambda item: (item[0].source, item[1])):
            a = decoder.decode(value.source)
            f.seek(off)
            _write_chunked(f, a.T if value.transpose else a, value.dtype)
        f.truncate(offset)
    data = model.SerializeToString()
    try:
        with atomic_output(out) as f:
            f.write(data)
            f.flush()
            try:  # the temporary file sits beside the data file, so its location resolves
                onnx.checker.check_model(f.name, full_check=True)
            except Exception as e:
                raise SeedError(f"ONNX export of {name!r} at opset {opset} failed the ONNX checker: "
                                f"{str(e).strip().splitlines()[0] if str(e).strip() else e!r}") from None
    except BaseException:
        try:
            os.unlink(data_path)
        except OSError:
            pass
        raise
    return len(data), data_path, offset
