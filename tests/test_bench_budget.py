from _bench_smoke import check_quick


def test_budget_quick(tmp_path):
    check_quick("budget", tmp_path, [
        "**stats seed**", "**prng 4 bpw seed**", "**prng 4 bpw seed, lr 0.01**",
        "**q8 seed (plain quantisation), lr 0.01**",
        "**random init**", "| n = 10 |", "| n = 100 |", "Smallest budget reaching", "<!-- budget:end -->"],
        ["budget-heatmap", "budget-lines"])
