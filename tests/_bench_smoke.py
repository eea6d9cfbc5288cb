"""Runs a bench/NAME.py script in --quick mode (the issue-5 smoke tests)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_bench(name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join("bench", f"{name}.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def check_quick(name: str, tmp_path, labels, plots) -> str:
    r = run_bench(name, "--quick", "--plots", str(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for label in labels:
        assert label in r.stdout, f"{label!r} missing from the output of bench/{name}.py --quick"
    for p in plots:
        f = tmp_path / f"{p}.png"
        assert f.exists() and f.stat().st_size > 1000, f
    refused = run_bench(name, "--quick", "--write", timeout=120)
    assert refused.returncode != 0 and "--quick" in refused.stderr
    return r.stdout


def import_bench(name: str):
    """bench/NAME.py as a module (the bench folder is not a package)."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)
