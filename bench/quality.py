#!/usr/bin/env python3
"""Whole-model fidelity per codec (issue 3's acceptance numbers), baselines beside.

- all-MiniLM-L6-v2: mean / min cosine between the assembled model's sentence
  embeddings and the original torch model's, on 16 fixed sentences (the MiniLM
  seeds of bench/minilm_weights.py, cached in bench/out/, run by the native
  executor on the captured graph).
- MobileNetV2 (ImageNet): top-1 agreement with the original torch model on 200
  fixed crops of scikit-learn's sample photos (``zoo.sample_image_crops``), for
  each codec applied to every weight of 2+ dimensions (the default rules), and
  with the 21 per-channel-small tensors (< 32 weights per output channel: the
  first conv and the depthwise convs) kept as float16.
- The default extraction of a captured module: rate allocation (target_bpw,
  seedcore.allocate) at DEFAULT_TARGET_BPW (5.25) bpw over the default
  candidates (the fixed-rate codecs and the entropy-coded ecq) with data-aware
  rounding (gptq, seedcore.gptq), the sequential pass (seedcore.sequential) and
  bias correction (seedcore.bias_correction), calibrated on inputs other than
  the judged ones; beside it the same at 4 bpw, at 4 bpw without ecq
  (candidates=FIXED_RATE_CANDIDATES: the default before ecq joined), and with
  plain rounding (gptq=False, bias_correction=False, sequential=False) at the
  default rate, to show what the rate, ecq and the data-aware steps each add.
  MobileNetV2's rate-allocated seeds are also judged on 1,000 further crops
  (``sample_image_crops(1000, seed=7)``), a larger sample than the 200.

    python bench/quality.py [--only minilm|mobilenet] [--write] [--cached-baselines]

The two models have sections of their own in RESULTS.md (quality, quality-mobilenet);
--only measures and writes one of them and leaves the other as it is.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import seedcore
from seedcore.allocate import FIXED_RATE_CANDIDATES
from seedcore.demo import CALIBRATION_SENTENCES
from seedcore.extract import DEFAULT_TARGET_BPW

from _common import OUT, encoder_digest, machine, minilm_seed, minilm_seed_cached, write_section

SECTION = "quality"
SECTION_MOBILENET = "quality-mobilenet"
SENTENCES = [
    "The cat sits on the mat.", "A quick brown fox jumps over the lazy dog.",
    "Edge devices have little memory.", "Compression trades bits for accuracy.",
    "Seeds regenerate weights from a pseudo-random basis.", "I love pizza with extra cheese.",
    "The stock market fell sharply today.", "How do I reset my password?",
    "Rain is expected over the weekend.", "She plays the violin in an orchestra.",
    "Quantum computers use qubits.", "Our train was delayed by an hour.",
    "This recipe needs two eggs and flour.", "The museum opens at nine.",
    "Neural networks learn from data.", "He forgot his umbrella at home.",
]
MINILM_CODECS = [("q8", None, "q8 (baseline)"), ("q4", None, "q4 / Q4_0 (baseline)"),
                 ("prng", 4.5, "prng 4.5 bpw"), ("prng", 4, "prng 4 bpw everywhere"),
                 ("prng", 3, "prng 3 bpw"), ("stats", None, "stats (no knowledge; = random init)")]
MOBILENET_CODECS = [("raw", None), ("q8", None), ("q4", None), ("prng", 4.5), ("prng", 4)]
# (target bpw, extract options, cache tag): the default first; then 4 bpw with and without ecq, and plain
# rounding at the default rate, to show what each adds. MiniLM rows take 2 to 10 minutes each to encode (cached in
# bench/out/)
PLAIN = {"gptq": False, "bias_correction": False, "sequential": False}
WITHOUT_ECQ = {"candidates": FIXED_RATE_CANDIDATES}
# the ablations of the fixed-rate default at 4 bpw (allocation_metric="output", sequential=False, 6 bpw)
# were measured before ecq joined the candidates: docs/findings.md items 5 and 12
ALLOC_TARGETS = ((DEFAULT_TARGET_BPW, {}, "-seq"), (4.0, {}, "-seq"), (4.0, WITHOUT_ECQ, "-fixed"),
                 (DEFAULT_TARGET_BPW, PLAIN, ""))
MOBILENET_ALLOC_TARGETS = ((DEFAULT_TARGET_BPW, {}, ""), (4.0, {}, ""), (4.0, WITHOUT_ECQ, ""),
                           (DEFAULT_TARGET_BPW, PLAIN, ""))
#: the encodings judged per photo (mobilenet_photo_rows): label, extract options at the default rate
PHOTO_VARIANTS = ((f"default ({DEFAULT_TARGET_BPW:g} bpw)", {}), (f"plain rounding ({DEFAULT_TARGET_BPW:g} bpw)", PLAIN))
#: calibration crops of MobileNetV2 (``sample_image_crops(N, seed=1)``: others than the 200 judged)
MOBILENET_CALIBRATION = 64


def minilm_rows(cached_baselines: bool = False) -> list[dict]:
    """The MiniLM rows; ``cached_baselines``: the fixed-codec baseline seeds only where bench/out/
    has them already (the prng ones take 3 to 4 minutes each to encode), the others listed as not run."""
    import torch

    from seedcore import zoo
    module, tokenize = zoo.load_minilm()
    ids, mask = (np.asarray(t, dtype=np.int64) for t in tokenize(SENTENCES))
    with torch.no_grad():
        ref = module(torch.as_tensor(ids), torch.as_tensor(mask)).numpy().astype(np.float64)
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    graph = seedcore.extract(module, example_inputs=(torch.as_tensor(ids[:2]), torch.as_tensor(mask[:2])),
                             codec="raw", progress=False, input_names=["input_ids", "attention_mask"],
                             output_names=["sentence_embedding"], dynamic_axes=axes).graph
    rows = []
    for target, kw, tag in ALLOC_TARGETS:
        path, seconds, seed = minilm_allocated(module, tokenize, target, kw, tag)
        model = seedcore.assemble(path)
        out = model.run({"input_ids": ids, "attention_mask": mask})["sentence_embedding"].astype(np.float64)
        cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
        ra = seed.provenance["rate_allocation"]
        label = _allocation_label(target, kw)
        rows.append({"what": label, "bpw": seedcore.load(path).info().bpw,
                     "mean": float(cos.mean()), "min": float(cos.min()),
                     "pred": 1 - ra["predicted_distortion"] / 2, "counts": ra["counts"],
                     "seconds": seconds})
    for codec, bits, label in MINILM_CODECS:
        if cached_baselines and not minilm_seed_cached(codec, bits):
            rows.append({"what": label, "not_run": "not run: no cached seed (--cached-baselines)"})
            continue
        path, _ = minilm_seed(codec, bits)
        model = seedcore.assemble(path)
        model.graph = graph     # the weights-only seed + the captured graph (same tensor names)
        out = model.run({"input_ids": ids, "attention_mask": mask})["sentence_embedding"].astype(np.float64)
        cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
        rows.append({"what": label, "bpw": seedcore.load(path).info().bpw,
                     "mean": float(cos.mean()), "min": float(cos.min())})
    return rows


def _allocation_label(target: float, kw: dict) -> str:
    label = f"rate allocation at {target:g} bpw"
    if kw == PLAIN:
        label += ", plain rounding, no bias correction (gptq=False, bias_correction=False, sequential=False)"
    elif kw == WITHOUT_ECQ:
        label += (", the fixed-rate codecs only (candidates=FIXED_RATE_CANDIDATES: prng 3 / 4 / 4.5, q4, q8, "
                  "raw float16; the default before ecq joined them)")
    elif kw:
        label += ", " + ", ".join(f"{k}={v}" for k, v in kw.items())
    return f"**default**: {label}" if target == DEFAULT_TARGET_BPW and not kw else label


def minilm_allocated_path(target: float, tag: str = "-seq"):
    return OUT / f"minilm-alloc{target:g}{tag}-v{seedcore.__version__}-{encoder_digest()}.seed"


def minilm_allocated(module, tokenize, target: float, kw: dict | None = None, tag: str = "-seq"):
    """MiniLM extracted from the module with rate allocation at ``target`` bpw,
    calibrated on seedcore.demo's CALIBRATION_SENTENCES (not the test sentences);
    cached in bench/out/.  Returns (path, encode seconds, Seed)."""
    import torch

    path = minilm_allocated_path(target, tag)
    OUT.mkdir(exist_ok=True)
    if not path.exists():
        print(f"encoding MiniLM with rate allocation at {target:g} bpw (cached at {path}) ...", file=sys.stderr)
        cids, cmask = tokenize(list(CALIBRATION_SENTENCES))
        axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
        cids, cmask = torch.as_tensor(cids), torch.as_tensor(cmask)
        seedcore.extract(module, example_inputs=(cids[:2], cmask[:2]), calibration=(cids, cmask),
                         target_bpw=target, **(kw or {}),
                         input_names=["input_ids", "attention_mask"],
                         output_names=["sentence_embedding"], dynamic_axes=axes,
                         name="all-MiniLM-L6-v2").save(path)
    seed = seedcore.load(path)
    return path, float(seed.provenance["encode_seconds"]), seed


def _assembled(seed):
    """(path, model): ``seed`` saved as bench/out/mobilenet-quality.seed and assembled from there."""
    OUT.mkdir(exist_ok=True)
    path = OUT / "mobilenet-quality.seed"
    seed.save(path)
    return path, seedcore.assemble(path)


def _outputs(model, x: np.ndarray) -> np.ndarray:
    """The assembled MobileNetV2's logits on the crops ``x`` (all threads)."""
    return next(iter(model.run({model.input_specs[0]["name"]: x}, threads=0).values()))


def _per_photo(model, x: np.ndarray, logits: np.ndarray) -> dict:
    """Agreement and distortion of an assembled model on the crops of each photo
    (``sample_image_crops`` alternates them: even crops china.jpg, odd flower.jpg)."""
    out = _outputs(model, x)
    return {photo: {"agree": float((out[sl].argmax(1) == logits[sl].argmax(1)).mean()),
                    "dist": _distortion(out[sl], logits[sl])}
            for photo, sl in (("china", slice(0, None, 2)), ("flower", slice(1, None, 2)))}


def photo_crops(module) -> tuple[np.ndarray, np.ndarray]:
    """400 crops for the per-photo rows (neither the 200 judged above nor the
    calibration crops) and the original's logits on them."""
    import torch

    from seedcore import zoo
    x = zoo.sample_image_crops(n=400, seed=2)
    with torch.no_grad():
        return x, module(torch.as_tensor(x)).numpy()


def mobilenet_photo_rows(module, both: list[dict], x: np.ndarray, logits: np.ndarray) -> list[dict]:
    """Does the calibration generalise to another photo? ``both``: the default and plain
    rounding calibrated on crops of both photos, already judged per photo; here the
    same calibrated on 64 crops of china.jpg only and of flower.jpg only, judged on
    the 200 crops of each photo in ``x``."""
    import torch

    from seedcore import zoo
    cal_all = zoo.sample_image_crops(n=2 * MOBILENET_CALIBRATION, seed=1)
    rows = list(both)
    for photo, cal in (("china.jpg", cal_all[0::2]), ("flower.jpg", cal_all[1::2])):
        cal = torch.as_tensor(cal)
        for label, kw in PHOTO_VARIANTS:
            seed = seedcore.extract(module, example_inputs=(cal[:2],), calibration=(cal,),
                                    target_bpw=DEFAULT_TARGET_BPW, progress=False, **kw)
            rows.append({"what": label, "cal": f"{photo} only ({len(cal)} crops)",
                         **_per_photo(_assembled(seed)[1], x, logits)})
    return rows


def mobilenet_rows() -> tuple[list[dict], str, list[dict]]:
    """(rows, a note on how close the original's top two logits are on the crops,
    the per-photo rows of mobilenet_photo_rows)."""
    import torch

    from seedcore import zoo
    module = zoo.load_mobilenet_v2()
    x = zoo.sample_image_crops(n=200)
    with torch.no_grad():
        logits = module(torch.as_tensor(x)).numpy()
    ref = logits.argmax(1)
    top2 = np.sort(logits, axis=1)[:, -2:]
    margin_note = (f"{np.mean(top2[:, 1] - top2[:, 0] < 0.03 * logits.std()):.0%} of the 200 crops have a "
                   f"top-1 logit margin under 3 % of the logits' standard deviation "
                   f"(median margin {np.median(top2[:, 1] - top2[:, 0]) / logits.std():.0%} of it)")
    example = (torch.as_tensor(x[:2]),)
    base = seedcore.extract(module, example_inputs=example, codec="raw", progress=False)
    small = [t.name for t in base.tensors if len(t.shape) == 4 and int(np.prod(t.shape[1:])) < 32]
    nparams = sum(int(np.prod(t.shape)) for t in base.tensors)
    rows, both = [], []  # both: the default and plain rounding, judged per photo too
    x4, logits4 = photo_crops(module)
    xb = zoo.sample_image_crops(n=1000, seed=7)  # neither the 200 judged nor the calibration crops
    with torch.no_grad():
        refb = np.concatenate([module(torch.as_tensor(xb[i:i + 100])).numpy() for i in range(0, len(xb), 100)]).argmax(1)
    cal = torch.as_tensor(zoo.sample_image_crops(n=MOBILENET_CALIBRATION, seed=1))  # not the 200 judged
    for target, kw, _ in MOBILENET_ALLOC_TARGETS:
        seed = seedcore.extract(module, example_inputs=(cal[:2],), calibration=(cal,), target_bpw=target,
                                progress=False, **kw)
        path, model = _assembled(seed)
        out = _outputs(model, x)
        ra = seed.provenance["rate_allocation"]
        label = _allocation_label(target, kw)
        both += [{"what": what, "cal": f"both photos ({MOBILENET_CALIBRATION} crops)", **_per_photo(model, x4, logits4)}
                 for what, pkw in PHOTO_VARIANTS if target == DEFAULT_TARGET_BPW and kw == pkw]
        outb = np.concatenate([_outputs(model, xb[i:i + 100]) for i in range(0, len(xb), 100)])
        rows.append({"what": label, "bpw": 8 * path.stat().st_size / nparams, "agree": float((out.argmax(1) == ref).mean()),
                     "agree_b": float((outb.argmax(1) == refb).mean()),
                     "dist": _distortion(out, logits), "counts": ra["counts"],
                     "seconds": float(seed.provenance["encode_seconds"])})
    for codec, bits in MOBILENET_CODECS:
        for keep_small in ((False, True) if codec != "raw" else (False,)):
            rules = [(n, "raw:float16") for n in small] if keep_small else None
            seed = seedcore.extract(module, example_inputs=example, codec=codec, bits=bits, rules=rules,
                                    progress=False)
            path, model = _assembled(seed)
            out = _outputs(model, x)
            label = f"{codec}{f' {bits} bpw' if bits else ''}" + (
                f", the {len(small)} per-channel-small tensors float16" if keep_small else "")
            rows.append({"what": label, "bpw": 8 * path.stat().st_size / nparams,
                         "agree": float((out.argmax(1) == ref).mean()), "dist": _distortion(out, logits)})
    # q8 with every data-aware step (and the per-channel-small tensors float16): what a 95 % target costs today
    seed = seedcore.extract(module, example_inputs=(cal[:2],), calibration=(cal,), codec="q8",
                            rules=[(n, "raw:float16") for n in small], gptq=True, bias_correction=True,
                            sequential=True, progress=False)
    path, model = _assembled(seed)
    out = _outputs(model, x)
    rows.append({"what": f"q8, the {len(small)} per-channel-small tensors float16, with gptq, the sequential pass "
                         f"and bias correction (same calibration)", "bpw": 8 * path.stat().st_size / nparams,
                 "agree": float((out.argmax(1) == ref).mean()), "dist": _distortion(out, logits)})
    return rows, margin_note, mobilenet_photo_rows(module, both, x4, logits4)


def _distortion(out: np.ndarray, ref: np.ndarray) -> float:
    """‖logits′ − logits‖² / ‖logits‖² over the judged crops."""
    d = np.asarray(out, np.float64) - ref
    return float((d * d).sum() / (np.asarray(ref, np.float64) ** 2).sum())


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} × {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def render(minilm: list[dict], cached_baselines: bool = False) -> str:
    lines = [f"<!-- {SECTION}:begin -->", "## Whole-model fidelity per codec (issue 3)", "",
             f"Command: `python bench/quality.py --only minilm --write{' --cached-baselines' * cached_baselines}` · machine: {machine()} · "
             f"{time.strftime('%Y-%m-%d')}", "", f"all-MiniLM-L6-v2: cosine between the assembled and the original sentence embeddings, "
             f"{len(SENTENCES)} fixed sentences (native forward pass). Target with the default codec: "
             "mean ≥ 0.97.", "",
             "| seed | bits/weight | mean cosine | min cosine |", "|---|---|---|---|"]
    lines += [f"| {r['what']} | — | {r['not_run']} | |" if "not_run" in r else
              f"| {r['what']} | {r['bpw']:.2f} | {r['mean']:.4f} | {r['min']:.4f} |" for r in minilm]
    lines += ["", "Rate allocation (`extract(module, example_inputs=..., target_bpw=...)`, the default of a "
              f"captured module with {DEFAULT_TARGET_BPW:g} bpw over the fixed-rate codecs and ecq): each tensor's "
              "sensitivity measured on "
              f"{len(CALIBRATION_SENTENCES)} calibration sentences (seedcore.demo.CALIBRATION_SENTENCES, none of the 16 above), which also give "
              "the input second moments for data-aware rounding (gptq: error feedback onto the "
              "columns not yet encoded, `seedcore.gptq`) and the inputs of the sequential pass (each linear "
              "layer encoded against the inputs the already encoded layers before it produce, "
              "`seedcore.sequential`); codecs chosen:"]
    lines += [f"- {r['what']}: {_counts(r['counts'])}; predicted mean cosine {r['pred']:.4f}; "
              f"encoding {r['seconds']:.0f} s" for r in minilm if "counts" in r]
    lines += ["", "MobileNetV2: the next section.", "", f"<!-- {SECTION}:end -->"]
    return "\n".join(lines) + "\n"


def render_mobilenet(mobilenet: list[dict], margin_note: str, photos: list[dict]) -> str:
    lines = [f"<!-- {SECTION_MOBILENET}:begin -->", "## Whole-model fidelity per codec: MobileNetV2 (issue 3)", "",
             f"Command: `python bench/quality.py --only mobilenet --write` · machine: {machine()} · "
             f"{time.strftime('%Y-%m-%d')}", "", "MobileNetV2 (ImageNet): top-1 agreement with the original on 200 fixed crops of "
              "scikit-learn's sample photos (native forward pass; batch norm folded into the convs). "
              "Target with the default codec: ≥ 95 %. The per-channel-small tensors (< 32 weights per output channel: the first conv and the depthwise convs) are where 32-weight blocks span channels of very different scale after folding.", "",
              "Output distortion: ‖logits′ − logits‖² / ‖logits‖² on the 200 crops, a continuous measure "
              "beside agreement (which flips on near-ties).", "",
              "The rate-allocated seeds are also judged on 1,000 further crops "
              "(`sample_image_crops(1000, seed=7)`: neither the 200 judged nor the calibration crops), a "
              "larger sample of the same two photos.", "",
              "| seed | bits/weight | top-1 agreement | output distortion | agreement, 1,000 other crops |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['what']} | {r['bpw']:.2f} | {100 * r['agree']:.1f} % | {r['dist']:.2e} | "
              + (f"{100 * r['agree_b']:.1f} % |" if "agree_b" in r else "— |") for r in mobilenet]
    lines += ["", f"How fragile top-1 agreement is here: {margin_note}; a small output change flips those."]
    lines += ["", f"Rate allocation, data-aware rounding and the sequential pass calibrated on "
              f"{MOBILENET_CALIBRATION} other crops (`sample_image_crops({MOBILENET_CALIBRATION}, seed=1)`); "
              "codecs chosen:"]
    lines += [f"- {r['what']}: {_counts(r['counts'])}; encoding {r['seconds']:.0f} s" for r in mobilenet if "counts" in r]
    lines += ["", "Calibrated on other photos? The calibration crops and the judged crops above come from the same "
              "two photos. Below, the same encodings calibrated on crops of both photos or of one only, judged on "
              "200 further crops of each photo (`sample_image_crops(400, seed=2)`: even crops china.jpg, odd "
              "flower.jpg):", "",
              "| seed | calibrated on | china.jpg: agreement | distortion | flower.jpg: agreement | distortion |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['what']} | {r['cal']} | {100 * r['china']['agree']:.1f} % | {r['china']['dist']:.2e} | "
              f"{100 * r['flower']['agree']:.1f} % | {r['flower']['dist']:.2e} |" for r in photos]
    lines += ["", f"<!-- {SECTION_MOBILENET}:end -->"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="replace this script's sections of bench/RESULTS.md")
    ap.add_argument("--only", choices=("minilm", "mobilenet"), help="measure (and write) one model's section")
    ap.add_argument("--cached-baselines", action="store_true",
                    help="MiniLM's fixed-codec baseline rows only from seeds already cached in bench/out/ "
                         "(the others listed as not run)")
    args = ap.parse_args(argv)
    if args.write:
        _split_old_section()  # before either write: the other model's rows must survive
    if args.only != "mobilenet":
        text = render(minilm_rows(args.cached_baselines), args.cached_baselines)
        print(text)
        if args.write:
            write_section(SECTION, text)
    if args.only != "minilm":
        text = render_mobilenet(*mobilenet_rows())
        print(text)
        if args.write:
            write_section(SECTION_MOBILENET, text)
    return 0


def _split_old_section() -> None:
    """RESULTS.md from before the two sections: the MobileNetV2 part of the quality
    section moves out (its own section replaces it)."""
    from _common import RESULTS

    text = RESULTS.read_text() if RESULTS.exists() else ""
    begin, end = f"<!-- {SECTION}:begin -->", f"<!-- {SECTION}:end -->"
    if begin not in text or end not in text:
        return
    body = text.split(begin, 1)[1].split(end, 1)[0]
    cut = body.find("\nMobileNetV2 (ImageNet)")
    if cut >= 0:
        write_section(SECTION, begin + body[:cut] + "\nMobileNetV2: the next section.\n\n" + end + "\n\n"
                      f"<!-- {SECTION_MOBILENET}:begin -->\n<!-- {SECTION_MOBILENET}:end -->")


if __name__ == "__main__":
    sys.exit(main())
