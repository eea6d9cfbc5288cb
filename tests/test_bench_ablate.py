from _bench_smoke import check_quick


def test_ablate_quick(tmp_path):
    out = check_quick("ablate", tmp_path, [
        "### a. Assembly variants", "stats seed + pure SGD", "stats seed + pure annealing",
        "stats seed + hybrid (anneal ½, then SGD ½)", "stats seed + evolutionary", "random init + pure SGD",
        "q8 seed (plain quantisation), no data",
        "### b. Stats-seed ablation", "without the spectrum (k = 0)", "without the moments",
        "without the sparsity", "random init (torch's default rule)",
        "### c. Temperature schedules", "anneal (geometric)", "anneal (linear)", "anneal (cosine)",
        "anneal (adaptive)", "reheat=2",
        "### d. Compression–accuracy curve", "fp16 (raw float16)", "q4 (Q4_0-style)", "prng 4 bpw", "stats (k = 8)",
        "random init (no file)", "<!-- ablate:end -->"], ["ablate-ratio"])
    assert "nan" not in out.lower().split("<!-- ablate:begin -->")[1]


def test_cli_knows_the_benchmarks():
    from seedcore import cli

    for name in ("ablate", "zeroshot", "budget"):
        assert name in cli.BENCHMARKS
        args = cli.build_parser().parse_args(["bench", name, "--quick"])
        assert args.name == name and args.quick and not args.write
