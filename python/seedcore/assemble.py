"""``seedcore.assemble``: a seed -> decoded weights, with the native decoder."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from typing import Any

from .errors import SeedError
from .model import Model
from .seed import Seed


def _native():
    try:
        from . import _native
    except ImportError as e:  # pragma: no cover - a broken install
        raise ImportError(
            f"seedcore's native module is missing or broken ({e}); reinstall seedcore "
            "(pip install .) so that seedcore._native is built") from None
    return _native


def cpu_features() -> dict:
    """What the native decoder uses on this machine: {'isa': 'avx2'|'neon'|'scalar',
    'avx2': bool, 'fma': bool, 'neon': bool, 'forced_scalar': bool, ...}."""
    return dict(_native().cpu_features())


def decode_file(path: str, *, threads: int = 0, impl: str = "auto", max_bytes: int | None = None,
                verify: bool = False) -> dict:
    """Opens and checks ``path`` with the native reader (with ``verify``, every
    payload checksum first) and decodes every tensor: a dict name -> numpy array
    in file order.  Decoding checks each payload's checksum anyway."""
    return _decode_with_metadata(path, threads=threads, impl=impl, max_bytes=max_bytes, verify=verify)[1]


def _decode_with_metadata(path: str, *, threads: int, impl: str, max_bytes: int | None,
                          verify: bool = False) -> tuple[dict, dict]:
    """decode_file, plus the file's metadata as validated by the native reader."""
    native = _native()
    kwargs = {} if max_bytes is None else {"max_bytes": int(max_bytes)}
    with native.SeedFile(os.fspath(path), **kwargs) as sf:
        if verify:
            sf.verify()
        tensors = dict(sf.decode_all(threads=int(threads), impl=str(impl)))
        return json.loads(sf.metadata_json), tensors


def assemble(seed_or_path: Any, threads: int = 0, *, impl: str = "auto",
             max_bytes: int | None = None, out: str | os.PathLike | None = None, opset: int = 17,
             max_ram: int | str | None = None, data=None, finetune=None, anneal=None, seed: int = 0,
             init: str | None = None, progress=True):
    """Decodes a seed (a ``Seed`` or a path to a ``.seed`` file) with the native
    decoder.  ``threads``: 0 = all cores; ``impl``: "auto", "scalar", "avx2" or
    "neon" (all give the same bits).

    Without ``out``: returns a ``Model`` holding every tensor (peak RAM: the decoded
    model).  With ``out="model.safetensors"`` or ``"model.onnx"``: streams the seed
    tensor by tensor into that file (ONNX: weights as external data in
    ``model.onnx.data``), so peak RAM is the largest tensor + about 16 MiB; returns a
    ``StreamResult`` (``seedcore.stream``).  ``max_ram`` (bytes or "512M") refuses
    with ``SeedError`` before decoding anything when the plan does not fit.

    On-device assembly (issue 4): with ``data=(X, y)`` the model is then trained on
    the device with the native core: thermal annealing first when ``anneal`` is a
    ``seedcore.Anneal`` (or ``seedcore.Evolve``), then fine-tuning with ``finetune``
    (a ``seedcore.Finetune``; ``Finetune()`` when neither is given).  ``seed`` seeds
    everything random; ``init="random"`` replaces the decoded weights by a random
    initialisation of the same architecture (the honest baseline); ``progress``: a
    tqdm bar (True), nothing (False) or a callable ``(step, loss)``, called through
    both phases with the step counted on (annealing steps or generations first; the
    loss is the annealing energy there).  Training needs
    the model in memory: it cannot be combined with ``out`` (save the trained model
    with ``Model.save``)."""
    from .train import Finetune, random_init

    if init not in (None, "random"):
        raise SeedError(f"assemble: init must be None or 'random', got {init!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SeedError(f"assemble: seed must be a whole number >= 0, got {seed!r}")
    if data is None and (finetune is not None or anneal is not None):
        raise SeedError("assemble: finetune / anneal need data=(X, y), the local labelled samples")
    if finetune is not None and not isinstance(finetune, Finetune):
        raise SeedError(f"assemble: finetune must be a seedcore.Finetune, got {type(finetune).__name__}")
    if out is not None:
        if data is not None or init is not None:
            raise SeedError("assemble: out= streams the seed as it is; training (data=) and init= need the "
                            "model in memory (assemble without out=, then Model.save)")
        from .stream import stream_assemble

        with _seed_file_path(seed_or_path, max_bytes) as path:
            return stream_assemble(path, os.fspath(out), threads=threads, impl=impl, opset=opset,
                                   max_ram=max_ram, max_bytes=max_bytes)
    if max_ram is not None:
        from .stream import check_max_ram, plan_assembly

        with _seed_file_path(seed_or_path, max_bytes) as path:
            check_max_ram(plan_assembly(path), max_ram)
    model = _assemble(seed_or_path, threads, impl=impl, max_bytes=max_bytes)
    if init == "random":
        model._tensors = random_init(model.graph, model._tensors, seed=seed)
        model._executor = None
    if data is None:
        return model
    if anneal is not None:
        try:
            from .anneal import run_anneal
        except ImportError:
            raise SeedError("assemble: annealing is not available in this build of seedcore") from None
        from .train import _split_data

        X, y = _split_data(data)
        hist = run_anneal(model, X, y, anneal, seed=seed, progress=_phase_progress(progress, 0))
        done = len(hist["energies"])
    else:
        done = 0
    if finetune is None and anneal is None:
        finetune = Finetune()
    if finetune is not None:
        model.finetune(data, finetune, seed=seed, progress=_phase_progress(progress, done))
    return model


def _phase_progress(progress, offset: int):
    """assemble's progress callable is always ``(step, loss)``, counted on across the
    phases (annealing steps or generations, then fine-tuning steps); the annealing
    phase's (step, energy, temperature) is mapped onto it."""
    if not callable(progress) or progress is True:
        return progress

    def cb(step, loss, *_):
        progress(int(step) + offset, float(loss))
    return cb


def _assemble(seed_or_path: Any, threads: int = 0, *, impl: str = "auto",
              max_bytes: int | None = None) -> Model:
    t0 = time.perf_counter()
    if isinstance(seed_or_path, Seed):
        seed = seed_or_path
        reader = seed._reader
        if reader is not None and reader._mm is not None and seed.path and os.path.exists(seed.path):
            meta, tensors = _decode_with_metadata(seed.path, threads=threads, impl=impl, max_bytes=max_bytes)
            if meta != reader.metadata:  # rewritten since load: its tensors are not this Seed's
                raise SeedError(f"{seed.path}: the file changed on disk after it was loaded; "
                                "load it again (seedcore.load) or assemble the path")
        else:  # not saved yet: write it to a temporary file and decode that
            fd, tmp = tempfile.mkstemp(suffix=".seed")
            os.close(fd)
            try:
                _save_copy(seed, tmp)
                tensors = decode_file(tmp, threads=threads, impl=impl, max_bytes=max_bytes)
            finally:
                os.unlink(tmp)
        name, source, graph, path = seed.model_name, seed.model_source, seed.graph, seed.path
    elif isinstance(seed_or_path, (str, os.PathLike)):
        path = os.fspath(seed_or_path)
        meta, tensors = _decode_with_metadata(path, threads=threads, impl=impl, max_bytes=max_bytes)
        name, source, graph = meta["model"]["name"], meta["model"]["source"], meta["graph"]
    else:
        raise SeedError(f"assemble: expected a Seed or a path to a .seed file, got {type(seed_or_path).__name__}")
    return Model(tensors, name=name, source=source, graph=graph, seed_path=path,
                 decode_seconds=time.perf_counter() - t0)


@contextlib.contextmanager
def _seed_file_path(seed_or_path: Any, max_bytes: int | None):
    """A path to the seed's file: the path given, a loaded ``Seed``'s own file
    (checked unchanged since it was loaded), or a temporary copy of an unsaved one."""
    if isinstance(seed_or_path, (str, os.PathLike)):
        yield os.fspath(seed_or_path)
        return
    if not isinstance(seed_or_path, Seed):
        raise SeedError(f"assemble: expected a Seed or a path to a .seed file, got {type(seed_or_path).__name__}")
    seed = seed_or_path
    reader = seed._reader
    if reader is not None and reader._mm is not None and seed.path and os.path.exists(seed.path):
        native = _native()
        kwargs = {} if max_bytes is None else {"max_bytes": int(max_bytes)}
        with native.SeedFile(seed.path, **kwargs) as sf:
            if json.loads(sf.metadata_json) != reader.metadata:
                raise SeedError(f"{seed.path}: the file changed on disk after it was loaded; "
                                "load it again (seedcore.load) or assemble the path")
        yield seed.path
        return
    fd, tmp = tempfile.mkstemp(suffix=".seed")
    os.close(fd)
    try:
        _save_copy(seed, tmp)
        yield tmp
    finally:
        os.unlink(tmp)


def _save_copy(seed: Seed, path: str) -> None:
    """Writes ``seed`` to ``path`` without making ``path`` its home."""
    from . import format as fmt

    fmt.write_seed(path, model_name=seed.model_name, model_source=seed.model_source,
                   tensors=list(zip(seed._entries, seed._payloads)), graph=seed.graph,
                   provenance=seed.provenance)
