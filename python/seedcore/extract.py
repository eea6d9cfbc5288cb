"""``seedcore.extract``: a model's weights -> a ``Seed``.

Sources: a torch ``nn.Module`` (its state dict), a state dict (torch tensors or
numpy arrays), or a path to a ``.safetensors`` file (parsed here with numpy) or a
``.pt`` / ``.pth`` / ``.bin`` file (``torch.load(weights_only=True)``: plain
tensors only, never arbitrary pickled objects).  torch is imported only when a
torch object or file is involved.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import json
import math
import mmap
import os
import re
import struct
import time
from collections.abc import Mapping
from typing import Any, Iterable, Sequence

import numpy as np

from ._version import __version__
from .codecs import get_codec
from .errors import SeedError
from .format import CODEC_NAMES, FLOAT_DTYPES, INTEGER_DTYPES, TensorEntry, _JSONRefusal, _object_without_duplicates
from .seed import Seed

#: default bit rates per codec, and the values of ``bits`` each codec accepts
_RAW_STORAGE_FOR_BITS = {32: "float32", 16: "float16"}
_RAW_STORAGE_NAMES = {"float32": "float32", "fp32": "float32", "f32": "float32", "32": "float32",
                      "float16": "float16", "fp16": "float16", "f16": "float16", "16": "float16",
                      "bfloat16": "bfloat16", "bf16": "bfloat16"}
_GENERIC_FILE_NAMES = {"model", "pytorch_model", "weights", "checkpoint", "state_dict", "diffusion_pytorch_model"}

_SAFETENSORS_DTYPES = {
    "F64": ("float64", "<f8"), "F32": ("float32", "<f4"), "F16": ("float16", "<f2"),
    "BF16": ("bfloat16", "<u2"), "I64": ("int64", "<i8"), "I32": ("int32", "<i4"),
    "I16": ("int16", "<i2"), "I8": ("int8", "i1"), "U8": ("uint8", "u1"), "BOOL": ("bool", "u1"),
}
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


# ---------------------------------------------------------------------------
# sources -> (name, array-like, dtype) triples


class _Source:
    """Named tensors from one source, converted to numpy one at a time."""

    def __init__(self, items: list, model_name: str, description: str, extra: dict):
        self.items = items  # [(name, obj, dtype or None)]; obj: numpy array or torch tensor
        self.model_name = model_name
        self.description = description
        self.extra = extra


def _is_torch_tensor(v: Any) -> bool:
    return type(v).__module__.startswith("torch") and hasattr(v, "detach") and hasattr(v, "dtype")


def _torch_dtype_name(t) -> str:
    name = str(t.dtype).replace("torch.", "")
    return name


def _dtype_of(where: str, name: str, v: Any) -> str:
    if _is_torch_tensor(v):
        dt = _torch_dtype_name(v)
    else:
        dt = "bool" if v.dtype == np.bool_ else v.dtype.name
        if dt == "object" or v.dtype.kind == "V":
            dt = str(v.dtype)
    if dt not in FLOAT_DTYPES and dt not in INTEGER_DTYPES:
        raise SeedError(
            f"{where}: tensor {name!r}: dtype {dt} is not supported (supported: "
            f"{', '.join(FLOAT_DTYPES + INTEGER_DTYPES)})")
    return dt


def _to_numpy(v: Any, dtype: str) -> np.ndarray:
    """Floating tensors -> float32 or float64 numpy; integer ones -> their dtype."""
    if _is_torch_tensor(v):
        t = v.detach().cpu()
        if dtype in ("bfloat16", "float16"):
            t = t.float()
        return t.contiguous().numpy()
    return np.asarray(v)


def _model_name_from_path(path: str) -> str:
    p = os.path.abspath(path)
    stem = os.path.splitext(os.path.basename(p))[0]
    if stem.lower() not in _GENERIC_FILE_NAMES:
        return stem
    d = os.path.dirname(p)
    while d and os.path.basename(d):
        base = os.path.basename(d)
        if base.lower() not in _GENERIC_FILE_NAMES:
            return base
        d = os.path.dirname(d)
    return stem


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def read_safetensors(path: str) -> list:
    """[(name, numpy array)] from a .safetensors file, memory-mapped; bfloat16
    tensors come back as float32 (exact)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise SeedError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise SeedError(f"{path}: safetensors header: file is {size} bytes, too short")
        (hlen,) = struct.unpack("<Q", f.read(8))
        if hlen > _MAX_SAFETENSORS_HEADER or 8 + hlen > size:
            raise SeedError(f"{path}: safetensors header: length {hlen} does not fit the {size}-byte file")
        try:
            header = json.loads(f.read(hlen).decode("utf-8"), object_pairs_hook=_object_without_duplicates)
        except (UnicodeDecodeError, ValueError, _JSONRefusal) as e:
            raise SeedError(f"{path}: safetensors header: invalid JSON ({e})") from None
        if not isinstance(header, dict):
            raise SeedError(f"{path}: safetensors header: not a JSON object")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    data_start = 8 + hlen
    data_len = size - data_start
    out = []
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name!r}"
        if not isinstance(spec, dict) or not {"dtype", "shape", "data_offsets"} <= set(spec):
            raise SeedError(f"{where}: entry needs dtype, shape and data_offsets")
        st = spec["dtype"]
        if not isinstance(st, str) or st not in _SAFETENSORS_DTYPES:
            raise SeedError(f"{where}: safetensors dtype {st!r} is not supported")
        dtype, np_dtype = _SAFETENSORS_DTYPES[st]
        shape = spec["shape"]
        offs = spec["data_offsets"]
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(type(d) is int and 0 <= d < 2 ** 32 for d in shape)
                or not isinstance(offs, list) or len(offs) != 2
                or not all(type(o) is int for o in offs)):
            raise SeedError(f"{where}: malformed shape or data_offsets (at most 8 dimensions, each < 2^32)")
        begin, end = offs
        n = math.prod(shape)
        itemsize = np.dtype(np_dtype).itemsize
        if not 0 <= begin <= end <= data_len or end - begin != n * itemsize:
            raise SeedError(f"{where}: data_offsets {offs} do not fit shape {shape} and the file")
        arr = np.frombuffer(mm, dtype=np_dtype, count=n, offset=data_start + begin).reshape(shape)
        if dtype == "bfloat16":
            arr = (arr.astype(np.uint32) << np.uint32(16)).view(np.float32)
        elif dtype == "bool":
            arr = arr.astype(np.bool_)
        out.append((name, arr, dtype))
    return out


def _all_tensors(d: Mapping) -> bool:
    return len(d) > 0 and all(isinstance(k, str) and (_is_torch_tensor(v) or isinstance(v, np.ndarray))
                              for k, v in d.items())


def _read_torch_file(path: str) -> Mapping:
    try:
        import torch
    except ImportError:
        raise SeedError(f"{path}: reading .pt/.bin files needs torch (pip install 'seedcore[extract]')") from None
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError as e:
        raise SeedError(f"{path}: cannot read: {e.strerror or e}") from None
    except Exception as e:  # UnpicklingError for arbitrary objects, RuntimeError for junk
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SeedError(
            f"{path}: refused: not a plain tensor file; torch.load(weights_only=True) failed "
            f"({type(e).__name__}: {first[:300]})") from None
    if isinstance(obj, Mapping) and not _all_tensors(obj):
        for key in ("state_dict", "model_state_dict", "model", "module", "weights"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and _all_tensors(inner):
                return inner
    if not isinstance(obj, Mapping):
        raise SeedError(f"{path}: holds a {type(obj).__name__}, not a mapping of tensor names to tensors")
    return obj


def _source(src: Any, name: str | None) -> _Source:
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not os.path.exists(path):
            raise SeedError(f"{path}: no such file")
        if os.path.isdir(path):
            raise SeedError(f"{path}: is a folder; give the .safetensors or .pt file inside it")
        lower = path.lower()
        extra = {"source_sha256": _sha256(path), "source_bytes": os.path.getsize(path)}
        model = name or _model_name_from_path(path)
        if lower.endswith(".safetensors"):
            items = read_safetensors(path)
            src_desc = os.path.abspath(path)
            return _Source(items, model, src_desc, extra)
        if lower.endswith((".pt", ".pth", ".bin", ".ckpt")):
            sd = _read_torch_file(path)
            return _Source(_state_dict_items(sd, path), model, os.path.abspath(path), extra)
        raise SeedError(f"{path}: unknown file type; extract reads .safetensors, .pt, .pth and .bin files")
    if isinstance(src, Mapping):
        return _Source(_state_dict_items(src, "state dict"), name or "model",
                       f"state dict ({len(src)} entries)", {})
    if hasattr(src, "state_dict") and callable(src.state_dict):
        sd = src.state_dict()
        cls = type(src)
        return _Source(_state_dict_items(sd, cls.__name__), name or cls.__name__,
                       f"torch.nn.Module {cls.__module__}.{cls.__qualname__}", {})
    raise SeedError(
        f"extract: cannot read a {type(src).__name__}; give an nn.Module, a state dict, or a path to a "
        ".safetensors / .pt / .bin file")


def _state_dict_items(sd: Mapping, where: str) -> list:
    items = []
    for k, v in sd.items():
        if not isinstance(k, str):
            raise SeedError(f"{where}: key {k!r} is not a string; a state dict maps names to tensors")
        if isinstance(v, np.generic):
            v = np.asarray(v)
        if not (_is_torch_tensor(v) or isinstance(v, np.ndarray)):
            raise SeedError(f"{where}: entry {k!r} is a {type(v).__name__}, not a tensor")
        items.append((k, v, None))
    return items


# ---------------------------------------------------------------------------
# codec choice


class _Rule:
    def __init__(self, pattern: Any, codec: str, options: dict):
        self.source = pattern if isinstance(pattern, str) else getattr(pattern, "pattern", str(pattern))
        if isinstance(pattern, re.Pattern):
            self._match = lambda name: pattern.fullmatch(name) is not None
        elif isinstance(pattern, str) and pattern.startswith("re:"):
            try:
                rx = re.compile(pattern[3:])
            except re.error as e:
                raise SeedError(f"rule {pattern!r}: bad regular expression: {e}") from None
            self._match = lambda name: rx.fullmatch(name) is not None
        elif isinstance(pattern, str):
            self._match = lambda name: fnmatch.fnmatchcase(name, pattern)
        else:
            raise SeedError(f"rule pattern {pattern!r} must be a string or a compiled regex")
        self.codec = codec
        self.options = options

    def matches(self, name: str) -> bool:
        return self._match(name)


def _ecq_bits_ok(b: float) -> bool:
    from .codecs import ecq

    return math.isfinite(b) and ecq.BITS_MIN <= b <= ecq.BITS_MAX


def parse_codec_spec(spec: str) -> tuple[str, dict]:
    """'q8', 'prng:3', 'raw:float16', 'stats:4', 'ecq:3' -> (codec, options)."""
    codec, _, arg = str(spec).partition(":")
    codec = codec.strip().lower()
    if codec not in CODEC_NAMES:
        raise SeedError(f"unknown codec {codec!r} (known: {', '.join(CODEC_NAMES)})")
    if not arg:
        return codec, {}
    arg = arg.strip()
    if codec == "prng":
        try:
            return codec, {"bits": float(arg)}
        except ValueError:
            raise SeedError(f"codec {spec!r}: prng takes a bit rate (3, 4 or 4.5)") from None
    if codec == "raw":
        if arg.lower() not in _RAW_STORAGE_NAMES:
            raise SeedError(f"codec {spec!r}: raw storage must be float32, float16 or bfloat16")
        return codec, {"storage": _RAW_STORAGE_NAMES[arg.lower()]}
    if codec == "ecq":
        try:
            b = float(arg)
        except ValueError:
            b = None
        if b is None or not _ecq_bits_ok(b):
            raise SeedError(f"codec {spec!r}: ecq takes a bit rate between 0.25 and 12 (bits per weight)")
        return codec, {"bits": b}
    if codec == "stats":
        try:
            return codec, {"k": int(arg)}
        except ValueError:
            raise SeedError(f"codec {spec!r}: stats takes the number of singular values k") from None
    raise SeedError(f"codec {spec!r}: {codec} takes no argument")


def _make_rules(rules: Iterable | None) -> list:
    out = []
    for r in rules or ():
        if isinstance(r, str):
            pattern, sep, codec_spec = r.rpartition("=")
            if not sep or not pattern:
                raise SeedError(f"rule {r!r} must look like PATTERN=CODEC")
            r = (pattern, codec_spec)
        if not isinstance(r, (tuple, list)) or len(r) not in (2, 3):
            raise SeedError(f"rule {r!r} must be (pattern, codec) or (pattern, codec, options)")
        codec, options = parse_codec_spec(r[1])
        if len(r) == 3:
            if not isinstance(r[2], Mapping):
                raise SeedError(f"rule {r!r}: options must be a dict")
            options = {**options, **dict(r[2])}
        out.append(_Rule(r[0], codec, options))
    return out


def _default_options(codec: str, bits: Any) -> dict:
    """Options from ``bits`` for the codec named by ``codec=``; a clear error when
    ``bits`` makes no sense for it."""
    if codec == "prng":
        from .codecs import prng

        b = 4 if bits is None else bits
        try:
            prng.preset(b)
        except ValueError:
            raise SeedError(f"bits={bits!r}: prng has presets for bits = 3, 4 and 4.5") from None
        return {"bits": float(b)}
    if codec == "raw":
        if bits is None:
            return {"storage": "float32"}
        try:
            b = float(bits)
        except (TypeError, ValueError):
            b = None
        if b not in (32.0, 16.0):
            raise SeedError(f"bits={bits!r}: raw stores 32 (float32) or 16 (float16) bits")
        return {"storage": _RAW_STORAGE_FOR_BITS[int(b)]}
    if codec == "q8":
        if bits is not None and bits != 8:
            raise SeedError(f"bits={bits!r} contradicts codec q8 (8 bits, 8.5 bits per weight with scales)")
        return {}
    if codec == "q4":
        if bits is not None and bits not in (4, 4.5):
            raise SeedError(f"bits={bits!r} contradicts codec q4 (4 bits, 4.5 bits per weight with scales)")
        return {}
    if codec == "stats":
        if bits is not None:
            raise SeedError(f"bits={bits!r}: the stats codec has no bit rate")
        return {}
    if codec == "ecq":
        try:
            b = 4.0 if bits is None else float(bits)
        except (TypeError, ValueError):
            b = float("nan")
        if not _ecq_bits_ok(b):
            raise SeedError(f"bits={bits!r}: ecq takes a bit rate between 0.25 and 12 (bits per weight)")
        return {"bits": b}
    raise SeedError(f"unknown codec {codec!r} (known: {', '.join(CODEC_NAMES)})")


def choose_codec(name: str, dtype: str, ndim: int, codec: str, default_options: dict,
                 rules: Sequence[_Rule], bits: Any = None) -> tuple[str, dict]:
    """The codec and options for one tensor: integer and bool tensors are raw; then
    the first matching rule; then 1-D and 0-D floating tensors stay raw float32
    (except under ``stats``); then ``codec``."""
    if dtype in INTEGER_DTYPES:
        return "raw", {}
    for rule in rules:
        if rule.matches(name):
            opts = dict(rule.options)
            if rule.codec == "prng" and "bits" not in opts and not {"C", "P", "K"} & set(opts):
                opts["bits"] = float(bits) if (codec == "prng" and bits is not None) else 4.0
            if rule.codec == "ecq" and "bits" not in opts and "step" not in opts:
                opts["bits"] = float(bits) if (codec == "ecq" and bits is not None) else 4.0
            return rule.codec, opts
    if ndim <= 1 and codec != "stats":
        return "raw", {"storage": "float32"}
    return codec, dict(default_options)


# ---------------------------------------------------------------------------
# extract


def _json_safe(v: Any) -> Any:
    if isinstance(v, float):
        return int(v) if v.is_integer() else v
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    return str(v)


def _progress_bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="w", unit_scale=True, desc=desc, dynamic_ncols=True)


def extract(
    src: Any,
    codec: str | None = None,
    bits: float | int | None = None,
    rules: Sequence | None = None,
    name: str | None = None,
    progress: bool = True,
    *,
    threads: int = 0,
    provenance: bool = True,
    example_inputs: Any = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_axes: Mapping | None = None,
    target_bpw: float | None = None,
    calibration: Any = None,
    gptq: bool | None = None,
    bias_correction: bool | None = None,
    allocation_metric: str = "weight",
    sequential: bool | None = None,
    candidates: Sequence[str] | None = None,
) -> Seed:
    """Encodes a model's weights into a ``Seed``.

    src      an ``nn.Module``, a state dict (torch tensors or numpy arrays), or a
             path to a ``.safetensors`` / ``.pt`` / ``.pth`` / ``.bin`` file.
    codec    one of raw, q8, q4, prng, stats, ecq, for every tensor that no rule names
             (default: prng; with ``example_inputs`` and no ``bits``, rate
             allocation at ``DEFAULT_TARGET_BPW`` = 5.25 bits per weight, see
             ``target_bpw``).
             By default 1-D and 0-D floating tensors (biases, norms) stay raw
             float32, except under ``stats``; integer and bool tensors are raw.
    bits     prng: 3, 4 (default) or 4.5 bits per weight; raw: 32 (default) or
             16; ecq: the codes' entropy in bits per weight, 0.25 to 12 (default
             4; the step is chosen to meet it); q8 / q4 / stats: leave it out.
    rules    [(pattern, codec[, options])], first match wins; a pattern is an
             fnmatch glob ("encoder.*.weight"), "re:<regex>" or a compiled regex
             (full match).  codec may carry an argument: "prng:3",
             "raw:float16", "stats:4", "ecq:3".  A string "PATTERN=CODEC" also works.
    name     the model name stored in the file (default: from the source).
    progress a tqdm bar over the tensors (weighted by size) when tqdm is installed.
    threads  threads for the prng seed search (0 = all cores).
    provenance  record creation time, options and source digest in the metadata
             (turn off for byte-reproducible files).
    example_inputs  with an ``nn.Module``: also capture its forward pass as the
             seed's graph (``seedcore.capture.capture``: torch.fx, batch norms
             folded into the convolutions before them, checked against the module
             with the numpy reference executor).  The seed's tensors are then the
             graph's weights (the state dict with folded convolutions replacing
             their originals and the batch norms' tensors dropped).  Without it
             the seed carries weights only.
    input_names, output_names, dynamic_axes  passed to ``capture`` (default:
             forward's argument names, "output", axis 0 of every input is "batch").
    target_bpw  rate allocation (needs ``example_inputs``): every tensor that
             would get ``codec`` (no rule names it, 2+ dimensions) gets the
             codec among ``candidates`` (by default prng 3 / 4 / 4.5, q4, q8,
             raw float16 and ecq at 1.5 to 8 bits per weight) that minimises
             the model's predicted output distortion under an average of
             ``target_bpw`` bits per weight over the whole file (sensitivity
             measured on the native executor; see ``seedcore.allocate``).
             ``codec`` must then be "prng" and ``bits`` left out.
    calibration  inputs for rate allocation and ``gptq``, in the form of
             ``example_inputs`` (or a dict by input name); default: ``example_inputs``.
    gptq     data-aware rounding (``seedcore.gptq``): q4 / q8 / prng weights of
             linear and ungrouped conv2d layers are encoded by GPTQ-style error
             feedback against their inputs' second moments on ``calibration``,
             shrunk toward the identity when there are few calibration rows per
             input (``gptq.shrunk``; same file format, lower output error).
             Needs ``example_inputs``.
             Default: on with rate allocation, off otherwise.
    bias_correction  after encoding, shift the (raw float32) bias of each conv2d /
             linear node so that its per-channel output mean on ``calibration``
             matches the original model's, layer by layer (``seedcore.bias_correction``;
             same file format).  Needs ``example_inputs``.  Default: on with rate
             allocation, off otherwise.
    sequential  encode the weights of conv2d / linear nodes one layer at a time in
             graph order, each against the inputs that the already encoded layers
             before it produce, with the original model's outputs as the target
             (``seedcore.sequential``; same file format): later layers take back
             part of the earlier layers' error instead of compounding it.  Biases
             are corrected on the way when ``bias_correction`` is on.  Needs
             ``example_inputs``.  Default: on with ``gptq``.
    allocation_metric  how rate allocation measures a candidate codec's error:
             "weight" (default: the squared weight error of plain rounding, times
             the tensor's measured sensitivity) or "output" (with gptq: the output
             error tr(ΔW H ΔWᵀ) that data-aware rounding leaves, on sampled rows,
             with gptq's own q4 encoding as the sensitivity probe).  Measured at
             4 bpw with the fixed-rate candidates (the defaults then): "output"
             gives MobileNetV2 89 % top-1 agreement against 87.5 %, MiniLM a mean
             cosine of 0.982 against 0.985, and it encodes about twice as slowly,
             so it is opt-in (docs/findings.md).
    candidates  the codec specs rate allocation chooses from (default
             ``seedcore.allocate.DEFAULT_CANDIDATES``: prng:3, prng:4, prng:4.5,
             q4, q8, raw:float16 and the entropy-coded codec (docs/format.md 3.6)
             at ecq:1.5 … ecq:8); ``seedcore.allocate.FIXED_RATE_CANDIDATES``
             leaves ecq out (the default before it joined: faster decoding,
             lower quality for the same size).
    """
    t0 = time.perf_counter()
    if allocation_metric not in ("weight", "output"):
        raise SeedError(f"extract: allocation_metric must be 'weight' or 'output', got {allocation_metric!r}")
    if codec is None:
        codec = "prng"
        if example_inputs is not None and bits is None and target_bpw is None:
            target_bpw = DEFAULT_TARGET_BPW
    codec = str(codec).lower()
    if codec not in CODEC_NAMES:
        raise SeedError(f"unknown codec {codec!r} (known: {', '.join(CODEC_NAMES)})")
    default_options = _default_options(codec, bits)
    rule_list = _make_rules(rules)
    if target_bpw is not None:
        if example_inputs is None:
            raise SeedError("extract: target_bpw (rate allocation) needs a module and example_inputs: "
                            "the sensitivity of each tensor is measured by running the captured graph")
        if codec != "prng" or bits is not None:
            raise SeedError("extract: target_bpw chooses the codec and bits of each tensor; "
                            "leave codec at 'prng' and bits out")
    if candidates is not None:
        if target_bpw is None:
            raise SeedError("extract: candidates are the codecs rate allocation chooses from; they need rate "
                            "allocation (target_bpw; the default for a module with example_inputs and no codec "
                            "or bits)")
        if isinstance(candidates, str) or not all(isinstance(c, str) for c in candidates):
            raise SeedError(f"extract: candidates must be a list of codec specs such as 'q8' or 'ecq:3', "
                            f"got {candidates!r}")
        candidates = [str(c) for c in candidates]
        for c in candidates:
            parse_codec_spec(c)  # a clear error for an unknown codec or bad argument
    if gptq is None:
        gptq = target_bpw is not None
    if gptq and example_inputs is None:
        raise SeedError("extract: gptq (data-aware rounding) needs a module and example_inputs")
    if bias_correction is None:
        bias_correction = target_bpw is not None
    if sequential is None:
        sequential = bool(gptq)
    if sequential and example_inputs is None:
        raise SeedError("extract: sequential encoding needs a module and example_inputs")
    if bias_correction and example_inputs is None:
        raise SeedError("extract: bias_correction needs a module and example_inputs")
    if target_bpw is None and not gptq and not bias_correction and not sequential and calibration is not None:
        raise SeedError("extract: calibration inputs are only used with target_bpw, gptq, bias_correction "
                        "or sequential")
    graph = None
    if example_inputs is not None:
        source, graph = _captured_source(src, name, example_inputs, input_names, output_names, dynamic_axes)
    elif input_names is not None or output_names is not None or dynamic_axes is not None:
        raise SeedError("extract: input_names, output_names and dynamic_axes need example_inputs")
    else:
        source = _source(src, name)
    where = source.description

    plan = []
    total = 0
    for tname, obj, dtype_hint in source.items:
        dtype = dtype_hint or _dtype_of(where, tname, obj)
        shape = tuple(int(d) for d in obj.shape)
        c, opts = choose_codec(tname, dtype, len(shape), codec, default_options, rule_list, bits)
        if c == "prng":
            from .codecs import prng

            if "bits" in opts:
                try:
                    prng.preset(opts["bits"])
                except ValueError as e:
                    raise SeedError(f"{where}: tensor {tname!r}: {e}") from None
        plan.append((tname, obj, dtype, shape, c, opts))
        total += math.prod(shape)

    hessians: dict = {}
    from . import gptq as _gptq

    if gptq and not (sequential and allocation_metric == "weight"):
        # (the sequential pass measures the Hessians itself, on the encoded model's inputs)

        # every tensor gptq may encode: with rate allocation, the allocation measures its candidates' errors
        # as gptq leaves them (the Hessians of the tensors it does not give a gptq codec are dropped below)
        names = [p[0] for p in plan if target_bpw is not None or _gptq.eligible(p[4], p[5], p[3])]
        cal = calibration if calibration is not None else example_inputs
        from .allocate import calibration_arrays

        calibration_arrays(graph, cal)  # a clear SeedError for inputs that do not fit the graph
        if isinstance(cal, Mapping):
            order = [s["name"] for s in graph["inputs"]]
            missing = [n for n in order if n not in cal]
            if missing:
                raise SeedError(f"extract: calibration has no input {missing[0]!r}")
            cal = tuple(cal[n] for n in order)
        rows: dict = {}
        hessians = _gptq.collect_hessians(src, cal, graph, names, rows)
        # few calibration rows per input column: shrink H toward the identity (gptq.shrunk), so that
        # neither gptq nor the allocation's output metric trusts directions the calibration left empty
        hessians = {n: _gptq.shrunk(h, rows[n]) for n, h in hessians.items()}

    allocation = None
    if target_bpw is not None:
        allocation = _allocate_rates(plan, graph, rule_list, calibration if calibration is not None
                                     else example_inputs, target_bpw, threads, progress, where,
                                     hessians if allocation_metric == "output" else None, candidates)
        chosen = {ch.name: (ch.codec, ch.options) for ch in allocation.choices}
        plan = [(tname, obj, dtype, shape) + chosen.get(tname, (c, opts))
                for tname, obj, dtype, shape, c, opts in plan]
    if hessians:
        hessians = {p[0]: hessians[p[0]] for p in plan if p[0] in hessians and _gptq.eligible(p[4], p[5], p[3])}

    # sequential, error-corrected data-aware rounding (seedcore.sequential): the weights of conv2d / linear
    # nodes that get a lossy codec are encoded last, in graph order, against the inputs the encoded layers
    # before them produce; their biases are corrected on the way
    seq_names: list = []
    if sequential:
        from .sequential import weight_nodes as _seq_nodes

        lossy = {p[0] for p in plan if p[2] in FLOAT_DTYPES and len(p[3]) >= 2
                 and not (p[4] == "raw" and p[5].get("storage", "float32") == "float32") and p[4] != "stats"}
        seq_names = [node["in"][1] for _, node in _seq_nodes(graph) if node["in"][1] in lossy]
    seq_set = set(seq_names)

    desc = "extract (rate-allocated)" if allocation is not None else f"extract {codec}"
    bar = _progress_bar(progress, total, desc)
    encoded: dict = {}  # name -> (TensorEntry, payload)
    counts: dict = {}
    gptq_done: list = []
    decoded: dict = {}  # floating tensors as the file will give them back (for bias correction)
    keep_decoded = bias_correction or sequential

    def encode_one(tname, x, dtype, shape, c, opts, h=None):
        options = dict(opts)
        done = [0]
        if c == "stats":
            options.setdefault("name", tname)
        if c == "prng":
            options.setdefault("threads", threads)
            if bar is not None:
                def _tick(k, _bar=bar, _done=done):
                    _done[0] += k
                    _bar.update(k)
                options["progress"] = _tick
        if h is None and tname in hessians:
            h = hessians[tname]
        try:
            if h is not None and _gptq.eligible(c, options, shape):
                params, payload, dq = _gptq.encode(c, options, x, h, threads=threads,
                                                  progress=options.get("progress"))
                gptq_done.append(tname)
                decoded[tname] = dq
            else:
                params, payload = get_codec(c).encode(x, options)
                if keep_decoded:
                    exact = dtype not in FLOAT_DTYPES or (c == "raw" and params.get("storage") == "float32")
                    decoded[tname] = (x if exact else
                                      get_codec(c).decode(payload, shape, "float32", params).reshape(shape))
        except ValueError as e:
            raise SeedError(f"{where}: tensor {tname!r}: {e}") from None
        if bar is not None:
            bar.update(x.size - done[0])
        encoded[tname] = (TensorEntry(tname, shape, dtype, c, params), payload)
        counts[c] = counts.get(c, 0) + 1

    originals: dict = {}
    corrected: dict = {}
    try:
        for tname, obj, dtype, shape, c, opts in plan:
            if bar is not None:
                bar.set_postfix_str(tname[-40:], refresh=False)
            x = _to_numpy(obj, dtype)
            n = x.size
            if dtype in FLOAT_DTYPES:
                bad = int(np.count_nonzero(~np.isfinite(x)))
                if bad:
                    raise SeedError(
                        f"{where}: tensor {tname!r}: {bad} of {n} values are not finite (NaN or infinity);"
                        " seedcore refuses to encode them")
                with np.errstate(over="ignore"):
                    x = np.asarray(x, dtype=np.float32, order="C")
                bad = int(np.count_nonzero(~np.isfinite(x)))
                if bad:
                    raise SeedError(f"{where}: tensor {tname!r}: {bad} values overflow float32")
            else:
                x = np.asarray(x, order="C")
            if sequential:
                originals[tname] = x
            if tname in seq_set:
                continue  # encoded by the sequential pass below
            encode_one(tname, x, dtype, shape, c, opts)
            del x
        if sequential:
            from .sequential import encode_sequential

            spec = {p[0]: p for p in plan}
            current = {k: (decoded[k] if k in decoded else v) for k, v in originals.items()}

            def enc(tname, target, h):
                _, _, dtype, shape, c, opts = spec[tname]
                if bar is not None:
                    bar.set_postfix_str(tname[-40:], refresh=False)
                encode_one(tname, target, dtype, shape, c, opts, h if gptq else None)
                return decoded[tname]
            raw32 = ([e.name for e, _ in encoded.values() if e.codec == "raw" and e.dtype == "float32"
                      and e.params.get("storage", "float32") == "float32" and len(e.shape) == 1]
                     if bias_correction else [])
            cal = calibration if calibration is not None else example_inputs
            try:
                corrected = encode_sequential(graph, originals, current, cal, seq_names, enc, biases=raw32,
                                              damp=_gptq.DAMP, threads=threads)
            except SeedError as e:
                raise SeedError(f"{where}: {e}") from None
            for b, v in corrected.items():
                e = encoded[b][0]
                params, payload = get_codec("raw").encode(v, dict(e.params))
                encoded[b] = (TensorEntry(e.name, e.shape, e.dtype, "raw", params), payload)
    finally:
        if bar is not None:
            bar.close()
    tensors = [encoded[p[0]] for p in plan]
    del originals

    if bias_correction and not sequential:
        corrected = _correct_biases(plan, tensors, decoded, graph, calibration if calibration is not None
                                    else example_inputs, threads, where)
    del decoded

    prov = None
    if provenance:
        prov = {
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "tool": f"seedcore {__version__}",
            "source": source.description,
            **source.extra,
            "options": {
                "codec": codec,
                "bits": bits,
                "target_bpw": target_bpw,
                "gptq": bool(gptq),
                "sequential": bool(sequential),
                **({"allocation_metric": allocation_metric} if target_bpw is not None else {}),
                **({"candidates": list(candidates)} if candidates is not None else {}),
                "rules": [[r.source, r.codec, r.options] for r in rule_list],
            },
            "codecs": counts,
            **({"rate_allocation": allocation.summary()} if allocation is not None else {}),
            **({"gptq": {"tensors": len(gptq_done), "damp": _gptq.DAMP}} if gptq else {}),
            **({"bias_correction": {"biases": len(corrected)}} if bias_correction else {}),
            **({"sequential": {"tensors": len(seq_names)}} if sequential else {}),
            "encode_seconds": round(time.perf_counter() - t0, 3),
            "numpy": np.__version__,
        }
        import sys

        if "torch" in sys.modules:
            prov["torch"] = str(sys.modules["torch"].__version__)
        prov = _json_safe(prov)
    if graph is not None:
        from .graph_ref import validate_graph

        validate_graph(graph, {e.name: e.shape for e, _ in tensors}, {e.name: e.dtype for e, _ in tensors})
    return Seed(tensors, model_name=source.model_name, model_source=source.description, graph=graph,
                provenance=prov)


def _correct_biases(plan: list, tensors: list, decoded: dict, graph: dict, calibration: Any, threads: int,
                    where: str) -> dict:
    """Bias correction (``seedcore.bias_correction``) of the encoded ``tensors``, in
    place: the raw float32 biases it corrects are re-encoded.  Returns them."""
    from .bias_correction import correct_biases

    original = {p[0]: (np.asarray(_to_numpy(p[1], p[2]), np.float32) if p[2] in FLOAT_DTYPES
                       else decoded[p[0]]) for p in plan}
    raw32 = [e.name for e, _ in tensors if e.codec == "raw" and e.params.get("storage", "float32") == "float32"
             and e.dtype == "float32" and len(e.shape) == 1]
    try:
        fixed = correct_biases(graph, original, decoded, calibration, biases=raw32, threads=threads)
    except SeedError as e:
        raise SeedError(f"{where}: {e}") from None
    for i, (e, _) in enumerate(tensors):
        if e.name in fixed:
            params, payload = get_codec("raw").encode(fixed[e.name], dict(e.params))
            tensors[i] = (TensorEntry(e.name, e.shape, e.dtype, "raw", params), payload)
    return fixed


#: the average bits per weight of ``extract(module, example_inputs=...)`` when
#: neither ``codec`` nor ``bits`` is given (rate allocation, ``seedcore.allocate``).
#: 5.25: the lowest of the rates tried (4, 4.5, 5, 5.25, 5.5) at which MobileNetV2 keeps
#: ≥ 95 % top-1 agreement both on the 200 judged image crops and on 1,000 others
#: (bench/RESULTS.md, quality-mobilenet; docs/findings.md item 12); llama.cpp's Q5_K_M
#: sits at about 5.7
DEFAULT_TARGET_BPW = 5.25


def _allocate_rates(plan: list, graph: dict, rule_list: list, calibration: Any, target_bpw: float,
                    threads: int, progress: bool, where: str, hessians: Mapping | None = None,
                    candidates: Sequence[str] | None = None):
    """Runs ``allocate.allocate`` over the tensors of ``plan`` that no rule names
    and that would get the default codec (floating, 2+ dimensions)."""
    import json

    from .allocate import allocate, payload_bits

    names, weights, fixed = [], {}, 0
    n_weights = 0
    for tname, obj, dtype, shape, c, opts in plan:
        if dtype in FLOAT_DTYPES:
            n_weights += math.prod(shape)
        weights[tname] = np.asarray(_to_numpy(obj, dtype), dtype=np.float32 if dtype in FLOAT_DTYPES else None)
        if dtype in FLOAT_DTYPES and len(shape) >= 2 and not any(r.matches(tname) for r in rule_list):
            names.append(tname)
        else:
            fixed += payload_bits(c, opts, shape, weights[tname]) if c != "stats" else 0
    # the rest of the file: header and model fields, per tensor its JSON entry (about 130
    # bytes plus its name, twice with the allocation's record) and 64-byte alignment
    # (32 on average), the graph
    fixed += 8 * (1024 + sum(162 + 2 * len(p[0]) for p in plan) + len(json.dumps(graph)))
    if not names:
        raise SeedError(f"{where}: target_bpw: no tensor left to allocate (rules name every 2-D tensor)")
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(names), unit="tensor", desc="rate allocation", dynamic_ncols=True)
        except ImportError:
            bar = None

    def tick(name: str) -> None:
        if bar is not None:
            bar.set_postfix_str(name[-40:], refresh=False)
            bar.update(1)
    t0 = time.perf_counter()
    try:
        result = allocate(graph, weights, names, calibration, float(target_bpw), n_weights, fixed,
                          threads=threads, progress=tick, hessians=hessians or None,
                          **({"candidates": candidates} if candidates is not None else {}))
        result.seconds = time.perf_counter() - t0
        return result
    finally:
        if bar is not None:
            bar.close()


def _captured_source(src: Any, name: str | None, example_inputs: Any, input_names, output_names,
                     dynamic_axes) -> tuple[_Source, dict]:
    """(the graph's weights as a source, the graph) for ``extract(module, example_inputs=...)``."""
    if not (hasattr(src, "state_dict") and callable(getattr(src, "forward", None))
            and type(src).__module__ != "builtins"):
        raise SeedError(f"extract: example_inputs needs a torch.nn.Module, got {type(src).__name__}")
    from .capture import capture

    graph, weights = capture(src, example_inputs, input_names=input_names, output_names=output_names,
                             dynamic_axes=dynamic_axes)
    cls = type(src)
    source = _Source(_state_dict_items(weights, cls.__name__), name or cls.__name__,
                     f"torch.nn.Module {cls.__module__}.{cls.__qualname__}", {"graph_nodes": len(graph["nodes"])})
    return source, graph
