"""The ``.seed`` file format, version 1 (docs/format.md): constants, writer, reader.

The reader is pure Python (``struct``, ``json``, ``zlib``, ``mmap``) and refuses
anything the spec does not allow, with a ``SeedError`` that names the file, the
part of it and what is wrong.  It memory-maps the file, so opening a large seed
costs little beyond reading its payloads once for their checksums.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, Mapping, Sequence

from ._version import __version__
from .errors import SeedError

# ---------------------------------------------------------------------------
# Constants (docs/format.md, sections 1 and 2)

MAGIC = b"SEEDCORE"
FORMAT_VERSION = 1
HEADER_SIZE = 64
METADATA_OFFSET = 64
MIN_METADATA_LENGTH = 2
MAX_METADATA_LENGTH = 16 * 1024 * 1024
ALIGNMENT = 64
MAX_JSON_DEPTH = 64
MAX_NAME_BYTES = 1024
MAX_DIMS = 8
DIM_LIMIT = 2**32  # each dimension d < DIM_LIMIT
ELEMENT_LIMIT = 2**32  # n < ELEMENT_LIMIT
U32_LIMIT = 2**32

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
INTEGER_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "bool")
DTYPES = FLOAT_DTYPES + INTEGER_DTYPES
CODEC_NAMES = ("raw", "q8", "q4", "prng", "stats", "ecq")

# offset 0: magic, 8: format_version, 12: header_size, 16: metadata_offset,
# 24: metadata_length, 32: data_offset, 40: file_length, 48: flags,
# 52: reserved (8 bytes), 60: header_crc32
_HEADER = struct.Struct("<8sIIQQQQI8sI")
assert _HEADER.size == HEADER_SIZE

_TENSOR_KEYS = ("name", "shape", "dtype", "codec", "params", "offset", "length", "crc32")
_TOP_LEVEL_KEYS = ("format", "format_version", "model", "tool", "tensors", "graph", "provenance")


def align64(x: int) -> int:
    """The smallest multiple of 64 that is >= x."""
    return (x + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def element_count(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def decoded_itemsize(dtype: str) -> int:
    """Bytes per element of the decoded tensor (floating dtypes decode to float32)."""
    return {"int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1}.get(dtype, 4)


def physical_memory() -> int | None:
    """The machine's physical memory in bytes, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _is_int(v: Any) -> bool:
    return type(v) is int  # bool is not an integer here


# ---------------------------------------------------------------------------
# Tensor entries


@dataclass(frozen=True)
class TensorEntry:
    """One entry of the metadata's ``tensors`` list."""

    name: str
    shape: tuple
    dtype: str
    codec: str
    params: dict = field(hash=False)
    offset: int = 0
    length: int = 0
    crc32: int = 0

    @property
    def n(self) -> int:
        return element_count(self.shape)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "shape": [int(d) for d in self.shape],
            "dtype": self.dtype,
            "codec": self.codec,
            "params": dict(self.params),
            "offset": int(self.offset),
            "length": int(self.length),
            "crc32": int(self.crc32),
        }


def _codec_module(codec: str):
    from .codecs import get_codec

    return get_codec(codec)


def validate_tensor_description(name: Any, shape: Any, dtype: Any, codec: Any, params: Any) -> int:
    """Checks the codec-independent and codec rules of one tensor entry (everything
    except offset and crc32).  Raises ValueError; returns the codec's expected
    payload length."""
    if not isinstance(name, str):
        raise ValueError(f"'name' must be a string, got {type(name).__name__}")
    try:
        name_bytes = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"name {name!r} is not valid UTF-8 (lone surrogate)") from None
    if not 1 <= name_bytes <= MAX_NAME_BYTES:
        raise ValueError(f"name is {name_bytes} bytes of UTF-8, allowed 1..{MAX_NAME_BYTES}")
    if not isinstance(shape, (list, tuple)):
        raise ValueError(f"'shape' must be a list of integers, got {type(shape).__name__}")
    if len(shape) > MAX_DIMS:
        raise ValueError(f"shape has {len(shape)} dimensions, at most {MAX_DIMS} allowed")
    for d in shape:
        if not _is_int(d):
            raise ValueError(f"shape {list(shape)!r} holds a non-integer dimension {d!r}")
        if not 0 <= d < DIM_LIMIT:
            raise ValueError(f"shape dimension {d} outside 0..2^32-1")
    n = element_count(shape)
    if n >= ELEMENT_LIMIT:
        raise ValueError(f"shape {list(shape)} has {n} elements, must be < 2^32")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (allowed: {', '.join(DTYPES)})")
    if not isinstance(codec, str) or codec not in CODEC_NAMES:
        raise ValueError(f"unknown codec {codec!r} (allowed: {', '.join(CODEC_NAMES)})")
    if dtype in INTEGER_DTYPES and codec != "raw":
        raise ValueError(f"dtype {dtype} tensors must use codec 'raw', not {codec!r}")
    if not isinstance(params, dict):
        raise ValueError(f"'params' must be an object, got {type(params).__name__}")
    mod = _codec_module(codec)
    mod.validate_params(params, tuple(shape), dtype)
    return int(mod.expected_length(tuple(shape), params))


# ---------------------------------------------------------------------------
# JSON


class _JSONRefusal(Exception):
    pass


def _object_without_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise _JSONRefusal(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def _refuse_constant(name):
    raise _JSONRefusal(f"{name} is not a JSON value")


def _json_depth(value: Any) -> int:
    """Nesting depth (a scalar is 0, [] or {} is 1), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in v)
    return deepest


def parse_metadata(raw: bytes) -> Any:
    """Strict RFC 8259 parse of the metadata block; raises ValueError."""
    if raw[:3] == b"\xef\xbb\xbf":
        raise ValueError("JSON starts with a UTF-8 byte order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not valid UTF-8 at byte {e.start}") from None
    try:
        value = json.loads(
            text, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
        )
    except _JSONRefusal as e:
        raise ValueError(f"invalid JSON: {e}") from None
    except RecursionError:
        raise ValueError(f"JSON nesting deeper than {MAX_JSON_DEPTH}") from None
    except ValueError as e:  # JSONDecodeError, over-long integers
        raise ValueError(f"invalid JSON: {e}") from None
    if _json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nesting deeper than {MAX_JSON_DEPTH}")
    try:  # an escaped lone surrogate ("\\ud800") parses, but is no Unicode text
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("invalid JSON: a string holds a lone UTF-16 surrogate escape") from None
    return value


def encode_metadata(
    *,
    model_name: str,
    model_source: str,
    entries: Sequence[TensorEntry],
    graph: Any = None,
    provenance: Mapping | None = None,
    tool_version: str = __version__,
) -> bytes:
    meta = {
        "format": "seedcore",
        "format_version": FORMAT_VERSION,
        "model": {"name": str(model_name), "source": str(model_source)},
        "tool": {"name": "seedcore", "version": str(tool_version)},
        "tensors": [e.to_json() for e in entries],
        "graph": graph,
        "provenance": None if provenance is None else dict(provenance),
    }
    data = json.dumps(meta, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return data.encode("utf-8")


# ---------------------------------------------------------------------------
# Writer


@dataclass(frozen=True)
class Layout:
    """Where everything goes in a file: computed before writing."""

    metadata: bytes
    entries: tuple  # TensorEntry with offsets and crc32 filled in
    data_offset: int
    file_length: int


def plan_layout(
    *,
    model_name: str,
    model_source: str,
    tensors: Sequence[tuple[TensorEntry, bytes]],
    graph: Any = None,
    provenance: Mapping | None = None,
    tool_version: str = __version__,
) -> Layout:
    """Assigns offsets and checksums.  The offsets depend on the metadata length,
    which depends on the offsets' digits: iterate until it is stable."""
    lengths = [len(memoryview(p).cast("B")) for _, p in tensors]
    crcs = [zlib.crc32(p) & 0xFFFFFFFF for _, p in tensors]
    data_offset = align64(HEADER_SIZE + 2)
    for _ in range(64):
        entries = []
        off = data_offset
        for (e, _), ln, crc in zip(tensors, lengths, crcs):
            entries.append(
                TensorEntry(e.name, tuple(e.shape), e.dtype, e.codec, dict(e.params), off, ln, crc)
            )
            off = align64(off + ln)
        metadata = encode_metadata(
            model_name=model_name,
            model_source=model_source,
            entries=entries,
            graph=graph,
            provenance=provenance,
            tool_version=tool_version,
        )
        new_data_offset = align64(HEADER_SIZE + len(metadata))
        if new_data_offset == data_offset:
            return Layout(metadata, tuple(entries), data_offset, off)
        data_offset = new_data_offset
    raise RuntimeError("metadata layout did not converge")  # pragma: no cover


def _header_bytes(metadata: bytes, data_offset: int, file_length: int) -> bytes:
    head = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        HEADER_SIZE,
        METADATA_OFFSET,
        len(metadata),
        data_offset,
        file_length,
        0,
        b"\0" * 8,
        0,
    )[:60]
    crc = zlib.crc32(metadata, zlib.crc32(head)) & 0xFFFFFFFF
    return head + struct.pack("<I", crc)



@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yields a file to write ``path``'s new content to. It is a temporary file in
    the same folder; on success it is flushed, synced, given the permissions a new
    file would get, renamed over ``path`` and the folder is synced; on any error
    it is removed and ``path`` is left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        os.close(fd)
        with open(tmp, "wb") as f:  # by name, so that f.name is the temporary path
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename durable; not possible on every platform
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def write_seed(
    path: str | os.PathLike,
    *,
    model_name: str,
    model_source: str,
    tensors: Sequence[tuple[TensorEntry, bytes]],
    graph: Any = None,
    provenance: Mapping | None = None,
    tool_version: str = __version__,
) -> int:
    """Writes a version-1 seed file atomically and returns its size in bytes.

    ``tensors`` is a sequence of (entry, payload); the entry's offset, length and
    crc32 are ignored and recomputed.  Every entry is validated first so that the
    writer never produces a file its own reader refuses."""
    path = os.fspath(path)
    seen = set()
    for e, payload in tensors:
        try:
            expected = validate_tensor_description(e.name, list(e.shape), e.dtype, e.codec, e.params)
        except ValueError as err:
            raise SeedError(f"{path}: tensor {e.name!r}: {err}") from None
        if e.name in seen:
            raise SeedError(f"{path}: tensor {e.name!r}: duplicate tensor name")
        seen.add(e.name)
        got = len(memoryview(payload).cast("B"))
        if got != expected:
            raise SeedError(
                f"{path}: tensor {e.name!r}: payload is {got} bytes, codec {e.codec} expects {expected}"
            )
    try:
        layout = plan_layout(
            model_name=model_name,
            model_source=model_source,
            tensors=tensors,
            graph=graph,
            provenance=provenance,
            tool_version=tool_version,
        )
    except UnicodeEncodeError as e:
        raise SeedError(f"{path}: metadata: the string {e.object[max(0, e.start - 20):e.end + 20]!r} "
                        "holds a lone surrogate, which UTF-8 cannot encode") from None
    if len(layout.metadata) > MAX_METADATA_LENGTH:
        raise SeedError(
            f"{path}: metadata: {len(layout.metadata)} bytes, more than the {MAX_METADATA_LENGTH} allowed"
        )
    header = _header_bytes(layout.metadata, layout.data_offset, layout.file_length)

    with atomic_output(path) as f:
        f.write(header)
        f.write(layout.metadata)
        f.write(b"\0" * (layout.data_offset - HEADER_SIZE - len(layout.metadata)))
        pos = layout.data_offset
        for entry, (_, payload) in zip(layout.entries, tensors):
            assert pos == entry.offset
            f.write(payload)
            end = entry.offset + entry.length
            f.write(b"\0" * (align64(end) - end))
            pos = align64(end)
        assert pos == layout.file_length
    return layout.file_length


# ---------------------------------------------------------------------------
# Reader


@dataclass(frozen=True)
class Header:
    magic: bytes
    format_version: int
    header_size: int
    metadata_offset: int
    metadata_length: int
    data_offset: int
    file_length: int
    flags: int
    reserved: bytes
    header_crc32: int


class SeedReader:
    """A validated, memory-mapped seed file.

    Opening checks the whole file as the spec requires: header field by field,
    header CRC, metadata, tensor entries, the offset chain, zero padding and (with
    ``verify_payloads``) every payload CRC.  ``max_bytes`` bounds the total decoded
    size (default: the machine's physical memory)."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        verify_payloads: bool = True,
        max_bytes: int | None = None,
    ):
        self.path = os.fspath(path)
        self._mm = None
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < HEADER_SIZE:
                    self._fail("header", f"file is {size} bytes, shorter than the {HEADER_SIZE}-byte header (truncated?)")
                header = self._check_header(f.read(HEADER_SIZE), size)
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise SeedError(f"{self.path}: cannot read: {e.strerror or e}") from None
        try:
            self._open(header, size, verify_payloads, max_bytes)
        except BaseException:
            self.close()
            raise

    # -- helpers
    def _fail(self, part: str, what: str):
        raise SeedError(f"{self.path}: {part}: {what}")

    def _check_header(self, raw: bytes, size: int) -> Header:
        h = Header(*_HEADER.unpack(raw))
        if h.magic != MAGIC:
            self._fail("header", f"magic is {h.magic!r}, expected {MAGIC!r} (not a seed file)")
        if h.format_version != FORMAT_VERSION:
            self._fail(
                "header",
                f"format_version is {h.format_version}; this reader knows version {FORMAT_VERSION} only",
            )
        if h.header_size != HEADER_SIZE:
            self._fail("header", f"header_size is {h.header_size}, expected {HEADER_SIZE}")
        if h.metadata_offset != METADATA_OFFSET:
            self._fail("header", f"metadata_offset is {h.metadata_offset}, expected {METADATA_OFFSET}")
        if not MIN_METADATA_LENGTH <= h.metadata_length <= MAX_METADATA_LENGTH:
            self._fail(
                "header",
                f"metadata_length is {h.metadata_length}, allowed {MIN_METADATA_LENGTH}..{MAX_METADATA_LENGTH}",
            )
        if h.data_offset != align64(HEADER_SIZE + h.metadata_length):
            self._fail(
                "header",
                f"data_offset is {h.data_offset}, expected {align64(HEADER_SIZE + h.metadata_length)}"
                f" = align64(64 + metadata_length)",
            )
        if h.file_length != size:
            self._fail(
                "header",
                f"file_length is {h.file_length} but the file is {size} bytes (truncated or extended?)",
            )
        if h.flags != 0:
            self._fail("header", f"flags is {h.flags:#x}, must be 0 in version 1")
        if h.reserved != b"\0" * 8:
            self._fail("header", "reserved bytes 52..59 are not zero")
        if h.data_offset > size:
            self._fail(
                "header",
                f"metadata ends at {HEADER_SIZE + h.metadata_length}, data_offset {h.data_offset} is past the"
                f" end of the {size}-byte file (truncated?)",
            )
        return h

    def _open(self, h: Header, size: int, verify_payloads: bool, max_bytes: int | None):
        mm = self._mm
        meta_end = HEADER_SIZE + h.metadata_length
        metadata_raw = mm[HEADER_SIZE:meta_end]
        crc = zlib.crc32(metadata_raw, zlib.crc32(mm[0:60])) & 0xFFFFFFFF
        if crc != h.header_crc32:
            self._fail(
                "header",
                f"header_crc32 is {h.header_crc32:#010x} but header+metadata checksum to {crc:#010x}"
                " (corrupt header or metadata)",
            )
        try:
            meta = parse_metadata(metadata_raw)
        except ValueError as e:
            self._fail("metadata", str(e))
        self.header = h
        self.file_length = size
        self.metadata_length = h.metadata_length
        self.data_offset = h.data_offset
        self.metadata = meta
        self._validate_metadata(meta, h)

        # padding between metadata and data
        if any(mm[meta_end : h.data_offset]):
            self._fail("padding", f"bytes {meta_end}..{h.data_offset - 1} after the metadata are not zero")

        # offset chain
        expected_offset = h.data_offset
        for i, e in enumerate(self.tensors):
            part = f"tensor {i} {e.name!r}"
            if e.offset != expected_offset:
                self._fail(
                    part,
                    f"offset is {e.offset}, expected {expected_offset} (payloads are back to back, 64-byte aligned)",
                )
            end = e.offset + e.length
            if end > size:
                self._fail(part, f"payload [{e.offset}, {end}) runs past the end of the {size}-byte file")
            expected_offset = align64(end)
        if size != expected_offset:
            self._fail(
                "header",
                f"file_length is {size} but the payloads end at {expected_offset}"
                " (trailing bytes or missing payloads)",
            )

        # memory bound before anyone allocates
        total = sum(e.n * decoded_itemsize(e.dtype) for e in self.tensors)
        self.decoded_bytes = total
        limit = physical_memory() if max_bytes is None else int(max_bytes)
        if limit is not None and total > limit:
            self._fail(
                "tensors",
                f"the tensors decode to {total} bytes, more than the {limit} bytes this reader may use",
            )

        # padding after each payload, then payload checksums
        for i, e in enumerate(self.tensors):
            end = e.offset + e.length
            if any(mm[end : align64(end)]):
                self._fail(f"padding after tensor {i} {e.name!r}", f"bytes {end}..{align64(end) - 1} are not zero")
        if verify_payloads:
            self.verify_payloads()

    def _validate_metadata(self, meta: Any, h: Header):
        if not isinstance(meta, dict):
            self._fail("metadata", f"top level is a JSON {type(meta).__name__}, expected an object")
        for key in _TOP_LEVEL_KEYS:
            if key not in meta:
                self._fail("metadata", f"required key {key!r} is missing")
        if meta["format"] != "seedcore":
            self._fail("metadata", f"'format' is {meta['format']!r}, expected 'seedcore'")
        if not _is_int(meta["format_version"]) or meta["format_version"] != h.format_version:
            self._fail(
                "metadata",
                f"'format_version' is {meta['format_version']!r}, the header says {h.format_version}",
            )
        for key, fields in (("model", ("name", "source")), ("tool", ("name", "version"))):
            obj = meta[key]
            if not isinstance(obj, dict):
                self._fail("metadata", f"{key!r} must be an object")
            for k in fields:
                if not isinstance(obj.get(k), str):
                    self._fail("metadata", f"'{key}.{k}' must be a string")
            extra = sorted(set(obj) - set(fields))
            if extra:
                self._fail("metadata", f"{key!r} has unknown keys {extra}")
        if not (meta["provenance"] is None or isinstance(meta["provenance"], dict)):
            self._fail("metadata", "'provenance' must be null or an object")
        tensors = meta["tensors"]
        if not isinstance(tensors, list):
            self._fail("metadata", "'tensors' must be a list")
        entries = []
        names = set()
        for i, t in enumerate(tensors):
            part = f"tensor {i}"
            if not isinstance(t, dict):
                self._fail(part, "entry is not an object")
            if isinstance(t.get("name"), str):
                part = f"tensor {i} {t['name']!r}"
            missing = [k for k in _TENSOR_KEYS if k not in t]
            if missing:
                self._fail(part, f"missing keys {missing}")
            extra = sorted(set(t) - set(_TENSOR_KEYS))
            if extra:
                self._fail(part, f"unknown keys {extra}")
            try:
                expected = validate_tensor_description(t["name"], t["shape"], t["dtype"], t["codec"], t["params"])
            except ValueError as e:
                self._fail(part, str(e))
            if t["name"] in names:
                self._fail(part, "duplicate tensor name")
            names.add(t["name"])
            for k in ("offset", "length"):
                if not _is_int(t[k]) or t[k] < 0:
                    self._fail(part, f"{k!r} must be a non-negative integer, got {t[k]!r}")
            if not _is_int(t["crc32"]) or not 0 <= t["crc32"] < U32_LIMIT:
                self._fail(part, f"'crc32' must be an integer in 0..2^32-1, got {t['crc32']!r}")
            if t["length"] != expected:
                self._fail(
                    part,
                    f"length is {t['length']} but codec {t['codec']} with shape {t['shape']} and params"
                    f" {t['params']} needs exactly {expected} bytes",
                )
            entries.append(
                TensorEntry(
                    t["name"], tuple(t["shape"]), t["dtype"], t["codec"], dict(t["params"]),
                    t["offset"], t["length"], t["crc32"],
                )
            )
        self.tensors = entries
        self.model_name = meta["model"]["name"]
        self.model_source = meta["model"]["source"]
        self.tool = dict(meta["tool"])
        self.graph = meta["graph"]
        self.provenance = meta["provenance"]

    # -- public
    def verify_payloads(self):
        for i, e in enumerate(self.tensors):
            crc = zlib.crc32(self.payload(i)) & 0xFFFFFFFF
            if crc != e.crc32:
                self._fail(
                    f"tensor {i} {e.name!r}",
                    f"payload checksum is {crc:#010x}, the metadata says {e.crc32:#010x} (corrupt payload)",
                )

    def payload(self, i: int) -> memoryview:
        e = self.tensors[i]
        return memoryview(self._mm)[e.offset : e.offset + e.length]

    def close(self):
        mm, self._mm = self._mm, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:  # a decoded view still points into it; let GC close it
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_seed(path: str | os.PathLike, **kwargs) -> SeedReader:
    return SeedReader(path, **kwargs)


__all__ = [
    "MAGIC", "FORMAT_VERSION", "HEADER_SIZE", "METADATA_OFFSET", "MIN_METADATA_LENGTH",
    "MAX_METADATA_LENGTH", "ALIGNMENT", "MAX_JSON_DEPTH", "MAX_NAME_BYTES", "MAX_DIMS",
    "FLOAT_DTYPES", "INTEGER_DTYPES", "DTYPES", "CODEC_NAMES", "align64", "element_count",
    "TensorEntry", "Layout", "plan_layout", "write_seed", "SeedReader", "read_seed",
    "parse_metadata", "encode_metadata", "validate_tensor_description", "Header",
]
