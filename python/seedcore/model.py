"""``Model``: assembled (decoded) weights, and a small safetensors writer."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Iterator, Mapping

import numpy as np

from .errors import SeedError

_SAFETENSORS_DTYPE = {
    "float32": "F32", "float16": "F16", "float64": "F64", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
}
SUPPORTED_OUTPUTS = (".safetensors",)


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> int:
    """Writes ``tensors`` as a safetensors file (atomically); returns its size.

    The format: u64 little-endian header length, a JSON header mapping each name to
    {dtype, shape, data_offsets} (plus ``__metadata__``, strings only), padded with
    spaces to a multiple of 8, then the tensors' bytes back to back."""
    path = os.fspath(path)
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    arrays = []
    offset = 0
    for name, a in tensors.items():
        a = np.asarray(a)
        dt = "bool" if a.dtype == np.bool_ else a.dtype.name
        if dt not in _SAFETENSORS_DTYPE:
            raise SeedError(f"{path}: tensor {name!r}: dtype {a.dtype} cannot be written to safetensors")
        a = np.asarray(a, dtype=a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype, order="C")
        header[name] = {"dtype": _SAFETENSORS_DTYPE[dt], "shape": [int(d) for d in a.shape],
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(len(raw).to_bytes(8, "little"))
            f.write(raw)
            for a in arrays:
                if a.nbytes:
                    f.write(memoryview(a.reshape(-1)).cast("B"))
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
    return 8 + len(raw) + offset


class Model:
    """Assembled weights: name -> numpy array (float32 for floating tensors, the
    stored dtype for integer ones), in the seed's tensor order."""

    def __init__(self, tensors: Mapping[str, np.ndarray], *, name: str = "model", source: str = "",
                 graph=None, seed_path: str | None = None, decode_seconds: float | None = None):
        self._tensors = dict(tensors)
        self.name = name
        self.source = source
        self.graph = graph
        self.seed_path = seed_path
        self.decode_seconds = decode_seconds

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

    def save(self, path: str | os.PathLike) -> int:
        """Writes the weights; ``.safetensors`` is the supported output.  Returns the size."""
        path = os.fspath(path)
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in SUPPORTED_OUTPUTS:
            raise SeedError(
                f"{path}: cannot write {suffix or 'files without a suffix'}; supported outputs: "
                f"{', '.join(SUPPORTED_OUTPUTS)} (ONNX export is not implemented yet)")
        meta = {"format": "pt", "seedcore.model": self.name, "seedcore.source": self.source}
        if self.seed_path:
            meta["seedcore.seed"] = os.path.basename(self.seed_path)
        return write_safetensors(path, self._tensors, meta)

    def __repr__(self) -> str:
        return (f"Model({self.name!r}, {len(self)} tensors, {self.n_params:,} values, "
                f"{self.nbytes / 2**20:.1f} MiB)")
