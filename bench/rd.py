#!/usr/bin/env python3
"""Rate–distortion (issue 5 part 3): fidelity against bits per weight for every codec,
per model (the MNIST LeNet, MobileNetV2, all-MiniLM-L6-v2), as plots and a table.

Codecs: raw float16, q8, q4, prng 3 / 4 / 4.5, the stats seed, rate allocation
(`extract(module, example_inputs=..., target_bpw=T)` with gptq) at several targets,
magnitude pruning at 50 / 75 / 90 % stored sparse (without and with fine-tuning),
gzip / lzma of the fp32 file. Fidelity and bits per weight are bench/compare.py's
(the same files, inputs and definitions): LeNet agreement with the fp32 model on the
1000 MNIST test images, MobileNetV2 top-1 agreement on the 200 fixed crops, MiniLM
mean embedding cosine on the 16 fixed sentences. Bits per weight = 8 x file bytes /
the float values of the fp32 file.

The points bench/compare.py measured are read from bench/out/compare.json (run it
first); only the rate allocations at the other targets are encoded here (cached in
bench/out/). MiniLM allocations take 8-17 minutes each on a 2-core machine: only the
ones already cached are used.

    python bench/rd.py [--quick] [--write] [--plots DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare  # noqa: E402
from seedcore import SeedError  # noqa: E402
from seedcore.extract import DEFAULT_TARGET_BPW  # noqa: E402

SECTION = "rd"
#: the targets of the rate-allocation curve; the default's comes from compare's default seed
TARGETS = tuple(sorted({3.0, 3.5, 4.0, 5.0, 6.0, DEFAULT_TARGET_BPW}))
QUICK_TARGETS = tuple(sorted({3.0, 4.0, DEFAULT_TARGET_BPW}))
FID = {"lenet": ("agree", "top-1 agreement with fp32"), "mobilenetv2": ("agree", "top-1 agreement with fp32"),
       "minilm": ("fid", "mean embedding cosine")}
FAMILY = {"fp32": "fp32", "fp16": "raw float16", "q8": "q8", "q4": "q4", "prng3": "prng", "prng4": "prng",
          "prng4.5": "prng", "stats": "stats seed", "gzip": "gzip / lzma (lossless)",
          "lzma": "gzip / lzma (lossless)", "default": "rate allocation", "prune50": "pruning",
          "prune75": "pruning", "prune90": "pruning", "prune50-ft": "pruning + fine-tuning",
          "prune75-ft": "pruning + fine-tuning", "prune90-ft": "pruning + fine-tuning", "student": "student"}


def allocation_rows(b: compare.Bench, targets, have: dict, cached_only: bool = False) -> list[dict]:
    """Rate allocation at each target (the default's comes from compare's rows)."""
    rows = []
    T = compare.Table(b, 0, lambda kind: False)
    for t in targets:
        kind = f"alloc{t:g}"
        if t == DEFAULT_TARGET_BPW and "default" in have:
            rows.append(dict(have["default"], what=f"rate allocation at {t:g} bpw (the default)", kind=kind))
            continue
        try:
            if cached_only and b.name != "minilm" and not b.seed_path(kind).exists():
                raise FileNotFoundError(b.seed_path(kind))
            path, enc = b.allocated(t)
        except FileNotFoundError as e:
            rows.append({"what": f"rate allocation at {t:g} bpw", "kind": kind, "not_run": True,
                         "why": f"not run: no cached seed ({Path(str(e)).name}; "
                                f"{'8-17' if b.name == 'minilm' else '2-9'} min per encode on this machine)"})
            continue
        except SeedError as e:  # e.g. a target below what the fixed tensors and the cheapest codec take
            rows.append({"what": f"rate allocation at {t:g} bpw", "kind": kind, "not_run": True,
                         "why": f"infeasible: {e}"})
            continue
        T.seed_row(f"rate allocation at {t:g} bpw", kind, path, enc)
        rows.append(dict(T.rows[-1], target=t))
    return rows


def points(name: str, compare_rows: list[dict], b: compare.Bench | None, targets,
           cached_only: bool = False) -> list[dict]:
    have = {r["kind"]: r for r in compare_rows}
    rows = [dict(r, family=FAMILY[r["kind"]]) for r in compare_rows if r["kind"] in FAMILY
            and r["kind"] != "default" and r.get("bpw") is not None]
    if b is not None:
        rows += [dict(r, family="rate allocation") for r in allocation_rows(b, targets, have, cached_only)]
    return rows


def quick_compare_rows(b: compare.Bench) -> list[dict]:
    """The LeNet points of compare.py's table, measured here (--quick: no json, no timing)."""
    T = compare.Table(b, 0, lambda kind: False)
    tensors, _ = b.fp32()
    T.add("fp32", "fp32", T.fp32_bytes, b.fidelity_tensors(tensors))
    compare.quant_rows(T)
    compare.prng_rows(T)
    compare.prune_rows(T)
    T.seed_row("default", "default", *b.default_seed())
    return T.rows


def plot(name: str, rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label = FID[name]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    fams = list(dict.fromkeys(r["family"] for r in rows if not r.get("not_run")))
    for fam in fams:
        pts = sorted((r["bpw"], r[key], r["kind"]) for r in rows if r["family"] == fam and not r.get("not_run"))
        xs, ys, ks = zip(*pts)
        line = "-" if fam in ("rate allocation", "pruning", "pruning + fine-tuning") else ""
        ax.plot(xs, ys, line + "o", label=fam, markersize=5)
        if fam in ("prng", "raw float16", "q8", "q4", "stats seed", "student"):
            for x, y, k in pts:
                ax.annotate(k, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator
    ax.xaxis.set_major_locator(FixedLocator([0.01, 0.1, 0.5, 1, 2, 4, 8, 16, 32]))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("bits per weight (log scale)")
    ax.set_ylabel(label)
    ax.set_title(f"{compare.TITLES[name]}: rate–distortion")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_table(name: str, rows: list[dict]) -> str:
    import _common
    key, label = FID[name]
    shown = sorted(rows, key=lambda r: (r.get("bpw") is None, r.get("bpw") or 0))
    shown = [dict(r, note=r.get("why", "")) for r in shown]
    return _common.markdown(shown, [("family", "codec family", "{}"), ("what", "point", "{}"),
                                    ("bpw", "bits/weight", "{:.2f}"), (key, label, "{:.4f}"), ("note", "", "{}")])


def best_under(rows: list[dict], key: str, bpw: float):
    ok = [r for r in rows if not r.get("not_run") and r["bpw"] <= bpw]
    return max(ok, key=lambda r: r[key]) if ok else None


def render(results: dict, command: str) -> str:
    import _common
    lines = [f"<!-- {SECTION}:begin -->", _common.header("Rate–distortion (issue 5)", command),
             "Fidelity against bits per weight for every codec; the points of bench/compare.py (same files, "
             "same inputs; see its section) plus rate allocation (`target_bpw`, gptq) at several targets. "
             "Bits per weight = 8 × file bytes / the float values of the fp32 file.", ""]
    for name, res in results.items():
        lines += [f"### {compare.TITLES[name]}", ""]
        if res.get("not_run"):
            lines += [f"**Not run**: {res['not_run']}", ""]
            continue
        key = FID[name][0]
        lines += [f"![{name} rate–distortion](plots/rd-{name}.png)", "", render_table(name, res["rows"]), ""]
        for cap in (3.0, 4.0, 5.0):
            r = best_under(res["rows"], key, cap)
            if r:
                lines.append(f"- best at ≤ {cap:g} bpw: {r['what']} ({r['bpw']:.2f} bpw, {FID[name][1]} "
                             f"{r[key]:.4f})")
        lines.append("")
    lines += [f"<!-- {SECTION}:end -->"]
    return "\n".join(lines) + "\n"


def check(results: dict) -> None:
    import _common
    for name, res in results.items():
        if not res.get("not_run"):
            _common.check_finite(f"rd {name}", [r for r in res["rows"] if not r.get("not_run")],
                                 ["bpw", FID[name][0]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the LeNet only, measured here (no compare.json), "
                    f"rate allocation at {', '.join(f'{t:g}' for t in QUICK_TARGETS)} bpw")
    ap.add_argument("--write", action="store_true", help="replace the rd section of bench/RESULTS.md and "
                    "write bench/plots/rd-*.png")
    ap.add_argument("--plots", default=None, help="folder for the PNGs (default: bench/plots with --write, "
                    "else a temporary folder)")
    ap.add_argument("--cached-only", action="store_true", help="use only the rate allocations already "
                    "cached in bench/out/ (the others are listed as not run)")
    args = ap.parse_args(argv)
    if args.quick and args.write:
        ap.error("--quick numbers never go into RESULTS.md: run --write without --quick")
    import _common
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            b = compare.LeNetBench(Path(tmp), True)
            results["lenet"] = {"rows": points("lenet", quick_compare_rows(b), b, QUICK_TARGETS)}
        else:
            if not compare.JSON_PATH.exists():
                raise SystemExit(f"bench/rd.py: {compare.JSON_PATH} is missing: run bench/compare.py first")
            measured = json.loads(compare.JSON_PATH.read_text())
            for name in compare.MODELS:
                if name not in measured or measured[name].get("not_run"):
                    results[name] = {"not_run": "not run: bench/compare.py has no measurement of it"}
                    continue
                print(f"[rd] {name}", file=sys.stderr)
                b = compare.BENCHES[name](_common.OUT, False)
                results[name] = {"rows": points(name, measured[name]["rows"], b, TARGETS, args.cached_only)}
        check(results)
        plots = Path(args.plots) if args.plots else (_common.PLOTS if args.write else Path(tmp))
        plots.mkdir(parents=True, exist_ok=True)
        for name, res in results.items():
            if not res.get("not_run"):
                plot(name, res["rows"], plots / f"rd-{name}.png")
        cmd = "python bench/rd.py --quick" if args.quick else "python bench/rd.py --write"
        text = render(results, cmd)
        print(text)
        if args.write:
            _common.write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
