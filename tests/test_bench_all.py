"""`seedcore bench all` and the list of benchmarks: every name the CLI offers has its
script, `all --quick` covers every script with a quick mode, quick numbers are never
written. (Each script's own --quick run is tested in tests/test_bench_NAME.py.)"""

import os

import pytest
from _bench_smoke import ROOT, import_bench, run_bench

from seedcore import cli


def _run(*args):
    return run_bench("all", *args, timeout=120)


def _all_module():
    return import_bench("all")


def test_every_cli_benchmark_has_its_script():
    for name in cli.BENCHMARKS:
        assert os.path.isfile(os.path.join(ROOT, "bench", f"{name}.py")), name
    bench_all = _all_module()
    quick = [n for n, _, q in bench_all.SCRIPTS if q]
    # every script with a quick mode is offered by `seedcore bench`, and so is `all`
    assert set(quick) | {"all"} <= set(cli.BENCHMARKS)
    for name in ("compare", "rd", "ablate", "zeroshot", "budget", "scaling", "perf", "ram"):
        assert name in quick, name


def test_all_quick_dry_run_lists_every_quick_script():
    r = _run("--quick", "--dry-run")
    assert r.returncode == 0, r.stderr
    bench_all = _all_module()
    for name, _, quick in bench_all.SCRIPTS:
        line = f"=== bench {name}:"
        if quick:
            assert line in r.stdout and "--quick" in r.stdout.split(line, 1)[1].splitlines()[0]
        else:
            assert line not in r.stdout


def test_all_full_dry_run_writes_each_section():
    r = _run("--write", "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("=== bench ")]
    assert len(lines) == len(_all_module().SCRIPTS)
    assert all(ln.endswith("--write") for ln in lines)


@pytest.mark.parametrize("args, message", [
    (("--quick", "--write"), "not written"),
    (("--only", "nosuch", "--dry-run"), "no benchmark named 'nosuch'"),
])
def test_all_refuses(args, message):
    r = _run(*args)
    assert r.returncode != 0
    assert message in r.stderr


def test_cli_bench_rejects_unknown_name(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "nosuch"])
    assert e.value.code != 0
