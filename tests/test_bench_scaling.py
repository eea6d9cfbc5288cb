"""Smoke test of bench/scaling.py --quick (issue 5, part 6): every table, finite numbers, plots."""

from _bench_smoke import import_bench, run_bench


def run(*args):
    return run_bench("scaling", *args)


def test_scaling_quick(tmp_path):
    res = run("--quick", "--plots", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    for label in ("### Fitted exponents", "### Every measurement", "fp32 safetensors (baseline)",
                  "| q8 |", "| q4 |", "| prng 4 bpw |", "| stats |", "MLP 4×50", "MLP 4×500", "LeNet",
                  "encoding seconds", "assembly seconds", "compression ratio"):
        assert label in out, label
    assert "nan" not in out.lower().replace("nanos", "")
    for key in ("ratio", "encode", "assemble"):
        assert (tmp_path / f"scaling-{key}.png").stat().st_size > 1000


def test_scaling_quick_write_refused():
    res = run("--quick", "--write")
    assert res.returncode == 2 and "--quick numbers never go into RESULTS.md" in res.stderr


def test_fit_recovers_a_known_exponent():
    scaling = import_bench("scaling")
    rows = [{"params": p, "t": 3e-9 * p ** 1.25} for p in (1e4, 1e5, 1e6, 1e7)]
    a, b, r2 = scaling.fit(rows, "t")
    assert abs(b - 1.25) < 1e-9 and abs(r2 - 1) < 1e-9
    assert scaling.fit(rows[:1], "t") is None
