import re

from _bench_smoke import check_quick


def test_zeroshot_quick(tmp_path):
    out = check_quick("zeroshot", tmp_path, [
        "### LeNet", "fp32 (the trained LeNet)", "fp16 (raw float16)", "| q8 |", "q4 (Q4_0-style)", "prng 4 bpw",
        "stats (k = 8)", "random init (mean of 2", "chance", "**Finding", "<!-- zeroshot:end -->"], ["zeroshot"])
    # the critical test, on the LeNet: q8 keeps the trained accuracy, stats does not
    row = r"\| (q8|stats \(k = 8\)) \|[^|]*\|[^|]*\| ([0-9.]+) \|"
    acc = {m.group(1): float(m.group(2)) for m in re.finditer(row, out)}
    assert acc["q8"] > 0.8 and acc["stats (k = 8)"] < 0.2
