"""``Seed``: a seed file's metadata and payloads, in memory or memory-mapped."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from . import format as fmt
from .codecs import get_codec
from .errors import SeedError
from .format import FLOAT_DTYPES, TensorEntry


@dataclass(frozen=True)
class TensorInfo:
    """One row of ``Seed.info()``."""

    name: str
    shape: tuple
    dtype: str
    codec: str
    params: dict
    bytes: int  # payload bytes
    n: int  # element count
    bpw: float | None  # 8 * bytes / n (None for an empty tensor)

    def as_dict(self) -> dict:
        return {
            "name": self.name, "shape": list(self.shape), "dtype": self.dtype,
            "codec": self.codec, "params": dict(self.params), "bytes": self.bytes,
            "n": self.n, "bpw": self.bpw,
        }


@dataclass(frozen=True)
class SeedInfo:
    """What ``Seed.info()`` returns.  ``str(info)`` is a readable table.

    ``bpw`` is 8 x file bytes / float parameters (everything counted: header,
    metadata, padding, integer buffers); ``payload_bpw`` is 8 x the payload bytes
    of the floating tensors / float parameters."""

    model_name: str
    model_source: str
    path: str | None
    file_bytes: int
    metadata_bytes: int
    payload_bytes: int
    float_payload_bytes: int
    n_tensors: int
    n_params: int
    n_float_params: int
    bpw: float | None
    payload_bpw: float | None
    codecs: dict  # codec -> {"tensors": count, "params": elements, "bytes": payload bytes}
    tensors: tuple = field(default_factory=tuple)
    rate_allocation: dict | None = None  # the provenance record of a rate-allocated extraction

    def as_dict(self) -> dict:
        return {
            "model_name": self.model_name, "model_source": self.model_source, "path": self.path,
            "file_bytes": self.file_bytes, "metadata_bytes": self.metadata_bytes,
            "payload_bytes": self.payload_bytes, "float_payload_bytes": self.float_payload_bytes,
            "n_tensors": self.n_tensors, "n_params": self.n_params,
            "n_float_params": self.n_float_params, "bpw": self.bpw, "payload_bpw": self.payload_bpw,
            "codecs": {k: dict(v) for k, v in self.codecs.items()},
            "tensors": [t.as_dict() for t in self.tensors],
            "rate_allocation": self.rate_allocation,
        }

    def __str__(self) -> str:
        def fmt_bpw(v):
            return "-" if v is None else f"{v:.3f}"

        def fmt_params(p):
            return ",".join(f"{k}={v}" for k, v in p.items())

        rows = [("name", "shape", "dtype", "codec", "params", "bytes", "bpw")]
        for t in self.tensors:
            rows.append((t.name, "x".join(map(str, t.shape)) or "scalar", t.dtype, t.codec,
                         fmt_params(t.params), str(t.bytes), fmt_bpw(t.bpw)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        right = {5, 6}
        lines = [
            f"model    {self.model_name}  ({self.model_source})",
            f"file     {self.path or '(not saved)'}",
            f"size     {self.file_bytes:,} bytes ({_human(self.file_bytes)}), metadata "
            f"{self.metadata_bytes:,} bytes, payloads {self.payload_bytes:,} bytes",
            f"tensors  {self.n_tensors}, {self.n_params:,} values ({self.n_float_params:,} floating)",
            f"bpw      {fmt_bpw(self.bpw)} bits per float weight overall, "
            f"{fmt_bpw(self.payload_bpw)} payload only",
            "codecs   " + ", ".join(
                f"{c}: {v['tensors']} tensors, {v['params']:,} values, {v['bytes']:,} bytes"
                for c, v in self.codecs.items()),
        ]
        ra = self.rate_allocation
        if isinstance(ra, dict):
            lines.append(f"alloc    rate allocation at {ra.get('target_bpw')} bits per weight, calibrated on "
                         f"{ra.get('calibration')}; predicted output distortion "
                         f"{ra.get('predicted_distortion')} (relative squared error)")
        lines.append("")
        for j, r in enumerate(rows):
            cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
            lines.append("  ".join(cells).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _human(b: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{b:.1f} {unit}" if unit != "B" else f"{b} B"
        b /= 1024
    return str(b)  # pragma: no cover


class Seed:
    """A seed: model description, tensor entries and their encoded payloads.

    Made by ``seedcore.extract`` (payloads in memory) or ``seedcore.load``
    (payloads memory-mapped from the file).  ``save`` writes it, ``info``
    describes it, ``decode_reference`` decodes one tensor with the numpy
    reference decoders; ``seedcore.assemble`` decodes all of it natively."""

    def __init__(
        self,
        tensors: Sequence[tuple[TensorEntry, Any]] = (),
        *,
        model_name: str = "model",
        model_source: str = "",
        graph: Any = None,
        provenance: dict | None = None,
        tool: dict | None = None,
        path: str | None = None,
        _reader: fmt.SeedReader | None = None,
    ):
        self.model_name = str(model_name)
        self.model_source = str(model_source)
        self.graph = graph
        self.provenance = provenance
        self.tool = dict(tool) if tool else {"name": "seedcore", "version": _tool_version()}
        self.path = path
        self._reader = _reader
        self._entries: list[TensorEntry] = []
        self._payloads: list[Any] = []
        self._index: dict[str, int] = {}
        for entry, payload in tensors:
            self._add(entry, payload)

    # ---- construction
    @classmethod
    def _from_reader(cls, reader: fmt.SeedReader) -> "Seed":
        seed = cls(
            model_name=reader.model_name, model_source=reader.model_source, graph=reader.graph,
            provenance=reader.provenance, tool=reader.tool, path=reader.path, _reader=reader,
        )
        for i, e in enumerate(reader.tensors):
            seed._index[e.name] = len(seed._entries)
            seed._entries.append(e)
            seed._payloads.append(reader.payload(i))
        return seed

    def _add(self, entry: TensorEntry, payload: Any) -> None:
        if entry.name in self._index:
            raise SeedError(f"tensor {entry.name!r}: duplicate tensor name")
        payload = bytes(payload) if not isinstance(payload, (bytes, memoryview)) else payload
        try:
            expected = fmt.validate_tensor_description(
                entry.name, list(entry.shape), entry.dtype, entry.codec, entry.params)
        except ValueError as e:
            raise SeedError(f"tensor {entry.name!r}: {e}") from None
        if len(memoryview(payload).cast("B")) != expected:
            raise SeedError(f"tensor {entry.name!r}: payload is {len(payload)} bytes, expected {expected}")
        entry = TensorEntry(entry.name, tuple(int(d) for d in entry.shape), entry.dtype, entry.codec,
                            dict(entry.params), 0, expected, 0)
        self._index[entry.name] = len(self._entries)
        self._entries.append(entry)
        self._payloads.append(payload)

    # ---- access
    @property
    def tensors(self) -> list[TensorEntry]:
        """The tensor entries in file order (name, shape, dtype, codec, params, ...)."""
        return list(self._entries)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[TensorEntry]:
        return iter(list(self._entries))

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def entry(self, name: str) -> TensorEntry:
        try:
            return self._entries[self._index[name]]
        except KeyError:
            raise KeyError(f"no tensor named {name!r} in this seed") from None

    def payload(self, name: str) -> memoryview:
        """The encoded payload bytes of one tensor (read-only)."""
        self.entry(name)
        return memoryview(self._payloads[self._index[name]]).cast("B")

    def _where(self) -> str:
        return self.path or f"<seed {self.model_name}>"

    def decode_reference(self, name: str) -> np.ndarray:
        """Decodes one tensor with the numpy reference decoder (float32 for floating
        dtypes, the stored dtype for integer ones)."""
        e = self.entry(name)
        limit = fmt.physical_memory()
        need = e.n * fmt.decoded_itemsize(e.dtype)
        if limit is not None and need > limit:
            raise SeedError(f"{self._where()}: tensor {name!r}: decodes to {need} bytes, more than"
                            f" the {limit} bytes of memory")
        try:
            return get_codec(e.codec).decode(self.payload(name), e.shape, e.dtype, e.params)
        except ValueError as err:
            raise SeedError(f"{self._where()}: tensor {name!r}: {err}") from None

    def decode_all_reference(self) -> dict:
        return {e.name: self.decode_reference(e.name) for e in self._entries}

    # ---- layout, saving, info
    def _layout(self) -> fmt.Layout:
        return fmt.plan_layout(
            model_name=self.model_name, model_source=self.model_source,
            tensors=list(zip(self._entries, self._payloads)), graph=self.graph,
            provenance=self.provenance, tool_version=_tool_version(),
        )

    def _file_layout(self) -> fmt.Layout:
        """The layout of the loaded file as it is, or the layout ``save`` would write."""
        r = self._reader
        if r is not None and r._mm is not None:
            meta = bytes(r._mm[fmt.HEADER_SIZE : fmt.HEADER_SIZE + r.metadata_length])
            return fmt.Layout(meta, tuple(r.tensors), r.data_offset, r.file_length)
        return self._layout()

    @property
    def metadata(self) -> dict:
        """The metadata object as it is (or would be) written."""
        import json

        return json.loads(self._file_layout().metadata)

    def save(self, path: str | os.PathLike) -> int:
        """Writes the seed atomically; returns the file size in bytes."""
        path = os.fspath(path)
        if path.endswith(".safetensors"):
            raise SeedError(f"{path}: Seed.save writes a .seed file; use seedcore.assemble(seed).save()"
                            " for safetensors")
        size = fmt.write_seed(
            path, model_name=self.model_name, model_source=self.model_source,
            tensors=list(zip(self._entries, self._payloads)), graph=self.graph,
            provenance=self.provenance, tool_version=_tool_version(),
        )
        if self.path is None:
            self.path = path
        return size

    def info(self) -> SeedInfo:
        layout = self._file_layout()
        rows = []
        codecs: dict = {}
        n_params = n_float = payload = float_payload = 0
        for e in layout.entries:
            n = e.n
            rows.append(TensorInfo(e.name, tuple(e.shape), e.dtype, e.codec, dict(e.params), e.length,
                                   n, (8.0 * e.length / n) if n else None))
            n_params += n
            payload += e.length
            if e.dtype in FLOAT_DTYPES:
                n_float += n
                float_payload += e.length
            c = codecs.setdefault(e.codec, {"tensors": 0, "params": 0, "bytes": 0})
            c["tensors"] += 1
            c["params"] += n
            c["bytes"] += e.length
        return SeedInfo(
            model_name=self.model_name, model_source=self.model_source, path=self.path,
            file_bytes=layout.file_length, metadata_bytes=len(layout.metadata), payload_bytes=payload,
            float_payload_bytes=float_payload, n_tensors=len(rows), n_params=n_params,
            n_float_params=n_float,
            bpw=(8.0 * layout.file_length / n_float) if n_float else None,
            payload_bpw=(8.0 * float_payload / n_float) if n_float else None,
            codecs=codecs, tensors=tuple(rows),
            rate_allocation=self.provenance.get("rate_allocation") if isinstance(self.provenance, dict) else None,
        )

    def close(self) -> None:
        """Releases the memory map of a loaded seed (payload views become invalid)."""
        if self._reader is not None:
            self._payloads = [bytes(p) for p in self._payloads]
            self._reader.close()
            self._reader = None

    def __repr__(self) -> str:
        info = self.info()
        bpw = "-" if info.bpw is None else f"{info.bpw:.3f}"
        return (f"Seed({self.model_name!r}, {info.n_tensors} tensors, {info.n_params:,} values, "
                f"{info.file_bytes:,} bytes, {bpw} bpw)")


def _tool_version() -> str:
    from ._version import __version__

    return __version__


def load(path: str | os.PathLike, *, verify: bool = True, max_bytes: int | None = None) -> Seed:
    """Opens a ``.seed`` file, validating everything the spec requires (with
    ``verify``, every payload checksum too).  Payloads stay memory-mapped."""
    reader = fmt.SeedReader(path, verify_payloads=verify, max_bytes=max_bytes)
    return Seed._from_reader(reader)
