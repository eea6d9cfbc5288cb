#!/usr/bin/env python3
"""Every benchmark, one after the other: ``seedcore bench all [--quick] [--write]``.

Without --quick this runs each script's full measurement (hours on a 2-core machine: the
MiniLM encodes alone take minutes each; seeds are cached in bench/out/ after the first run).
With --write each script replaces its own section of bench/RESULTS.md and its plots in
bench/plots/, so a full ``--write`` run regenerates the whole file.

With --quick only the scripts that have a quick mode run, each on small inputs, each checking
that every table it prints is complete and finite (the CI smoke test); nothing is written.

The scripts run in separate processes, in the order below (the timing-sensitive ones last is
not attempted: each takes /tmp/seedcore-bench.lock itself where it times things). A failing
script does not stop the others; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

#: (name, extra arguments of the full run, has a --quick mode)
SCRIPTS = [
    ("decode", [], False),
    ("minilm_weights", [], False),
    ("quality", [], False),
    ("forward", ["--zoo"], False),
    ("train", ["--all"], False),
    ("anneal", [], False),
    ("ram", [], True),
    ("compare", [], True),
    ("rd", [], True),
    ("ablate", [], True),
    ("zeroshot", [], True),
    ("budget", [], True),
    ("scaling", [], True),
    ("perf", [], True),
]


def commands(quick: bool, write: bool, plots: str | None, only=None, skip=()) -> list[tuple[str, list[str]]]:
    names = [n for n, _, _ in SCRIPTS]
    for n in list(only or []) + list(skip):
        if n not in names:
            raise SystemExit(f"bench/all.py: no benchmark named {n!r} (have: {', '.join(names)})")
    out = []
    for name, extra, has_quick in SCRIPTS:
        if (only and name not in only) or name in skip or (quick and not has_quick):
            continue
        script = os.path.join(HERE, f"{name}.py")
        if not os.path.isfile(script):
            raise SystemExit(f"bench/all.py: {script} is missing")
        cmd = [sys.executable, script]
        if quick:
            cmd += ["--quick"] + (["--plots", plots] if plots and name != "ram" else [])
        else:
            cmd += extra + (["--write"] if write else [])
        out.append((name, cmd))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the small CI runs of the scripts that have one")
    ap.add_argument("--write", action="store_true", help="each script replaces its section of bench/RESULTS.md "
                                                         "and its plots (full runs only)")
    ap.add_argument("--plots", metavar="DIR", help="with --quick: where the plots go (default: a temporary folder)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    ap.add_argument("--skip", nargs="+", default=[], metavar="NAME", help="leave these out")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args(argv)
    if args.quick and args.write:
        ap.error("--quick numbers are not written to bench/RESULTS.md: drop --write, or --quick")
    with tempfile.TemporaryDirectory(prefix="seedcore-bench-plots-") as tmp:
        cmds = commands(args.quick, args.write, args.plots or tmp, args.only, args.skip)
        results = []
        for name, cmd in cmds:
            print(f"\n=== bench {name}: {' '.join(cmd[1:])}", flush=True)
            if args.dry_run:
                continue
            t0 = time.perf_counter()
            rc = subprocess.call(cmd, cwd=os.path.dirname(HERE))
            results.append((name, rc, time.perf_counter() - t0))
    if args.dry_run:
        return 0
    print("\n| benchmark | exit | seconds |\n|---|---|---|")
    for name, rc, sec in results:
        print(f"| {name} | {rc} | {sec:.0f} |")
    failed = [n for n, rc, _ in results if rc != 0]
    if failed:
        print(f"bench/all.py: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
